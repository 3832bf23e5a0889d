"""Classify every image under a folder with PyTorch (throughput reference).

Usage:

    /usr/bin/python3 scripts/folder_torch.py DIR [--weights PATH] [--batch-size 8]
        [--workers 0] [--threads N] [--print]

The PyTorch counterpart of running the Go CLI on a folder: an ImageFolder-like
Dataset (every file under DIR with an image extension, sorted, recursively)
applies the torchvision eval transform to Image.open(p).convert("RGB"), and a
DataLoader (batch 8, --workers processes, no shuffling) feeds the network in
eval mode under torch.inference_mode(). Without --weights the seeded random
init of scripts/reference.py is used. Prints images/s over the whole loop
(decode + preprocess + forward; model loading excluded) and, with --print,
one "<path>\t<class index>\t<probability>" line per image.
"""

import argparse
import os
import sys
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

# Extensions Pillow and the Go CLI both read.
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageFiles(Dataset):
    """Images under root (recursive, sorted), eval-transformed."""

    def __init__(self, root):
        self.paths = sorted(
            os.path.join(d, f)
            for d, _, files in os.walk(root)
            for f in files
            if f.lower().endswith(EXTENSIONS)
        )
        self.transform = reference.eval_transform()

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB")), i


def main():
    ap = argparse.ArgumentParser(description="Classify a folder of images with PyTorch.")
    ap.add_argument("dir")
    ap.add_argument("--weights", help="checkpoint (default: seeded random init)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader num_workers")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch.set_num_threads (default: all CPUs, as the Go CLI)")
    ap.add_argument("--print", action="store_true", help="print each image's top-1")
    args = ap.parse_args()
    torch.set_num_threads(max(1, args.threads))

    if args.weights:
        model = reference.build_for(reference.load_state_dict(args.weights))
    else:
        model = reference.build_full()
        reference.seeded_init(model, 0, (2, 3, 64, 64))
        model.eval()
    data = ImageFiles(args.dir)
    if len(data) == 0:
        sys.exit(f"folder_torch: no images under {args.dir}")
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=False,
                        num_workers=args.workers)

    start = time.perf_counter()
    with torch.inference_mode():
        for x, idx in loader:
            probs = torch.softmax(model(x), dim=1)
            if args.print:
                p, c = probs.max(dim=1)
                for i, ci, pi in zip(idx.tolist(), c.tolist(), p.tolist()):
                    print(f"{data.paths[i]}\t{ci}\t{pi:.4f}")
    elapsed = time.perf_counter() - start
    print(f"{len(data)} images in {elapsed:.2f} s: {len(data) / elapsed:.2f} images/s "
          f"(batch {args.batch_size}, {args.workers} workers, "
          f"{torch.get_num_threads()} threads)", file=sys.stderr if args.print else sys.stdout)


if __name__ == "__main__":
    main()
