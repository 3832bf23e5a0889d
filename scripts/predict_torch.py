"""End-to-end PyTorch classification of one image (wall-time reference).

Usage:

    /usr/bin/python3 scripts/predict_torch.py --weights PATH IMAGE [--topk 5] [--threads N]

The PyTorch counterpart of `res2net predict IMAGE`: import torch, build the
network (scripts/reference.py), torch.load the checkpoint, preprocess the
image with the torchvision eval transform (Image.open(p).convert("RGB"),
Resize(232), CenterCrop(224), ToTensor, Normalize) and print the top-k
Imagenette classes with softmax probabilities, one per line:

    <rank> <probability> <class index> <class name>

Time the whole process (e.g. `hyperfine` or `time`) to compare with the Go
binary; --timings prints a per-stage breakdown to stderr.
"""

import argparse
import os
import sys
import time

T0 = time.perf_counter()

import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="Classify one image with PyTorch.")
    ap.add_argument("image")
    ap.add_argument("--weights", required=True, help="checkpoint (.pth)")
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch.set_num_threads (default: all CPUs, as the Go CLI)")
    ap.add_argument("--timings", action="store_true", help="per-stage times on stderr")
    args = ap.parse_args()
    torch.set_num_threads(max(1, args.threads))

    t_import = time.perf_counter()
    model = reference.build_for(reference.load_state_dict(args.weights))
    t_load = time.perf_counter()
    with Image.open(args.image) as im:
        x = reference.eval_transform()(im.convert("RGB")).unsqueeze(0)
    t_pre = time.perf_counter()
    with torch.inference_mode():
        probs = torch.softmax(model(x), dim=1)[0]
    t_fwd = time.perf_counter()

    k = min(args.topk, probs.numel())
    values, indices = probs.topk(k)
    names = reference.CLASSES if probs.numel() == len(reference.CLASSES) else None
    for rank, (p, i) in enumerate(zip(values.tolist(), indices.tolist()), 1):
        name = names[i] if names else f"class {i}"
        print(f"{rank} {p:.4f} {i} {name}")
    if args.timings:
        ms = [1000 * (b - a) for a, b in
              ((T0, t_import), (t_import, t_load), (t_load, t_pre), (t_pre, t_fwd))]
        print("import {:.0f} ms, load {:.0f} ms, preprocess {:.0f} ms, forward {:.0f} ms"
              .format(*ms), file=sys.stderr)


if __name__ == "__main__":
    main()
