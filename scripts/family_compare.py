#!/usr/bin/env python3
"""Forward-pass time of every Res2Net variant, res2net against PyTorch, side
by side in one run.

Usage:

    /usr/bin/python3 scripts/make_timm_fixtures.py --full DIR
    /usr/bin/python3 scripts/family_compare.py --bin bin/res2net --dir DIR
        [--rounds 2] [--iters 8] [--warmup 1] [--configs 1x1,8x2]

For each seeded checkpoint DIR/NAME.pth that make_timm_fixtures.py writes,
`res2net bench` and scripts/bench_torch.py run in alternation (the machine
is shared and noisy: compare the ratios) and the median ms per image of
each is printed as a Markdown table for the README. ONNX Runtime is left
out: scripts/export_onnx.py builds only the Holocron model.
"""

import argparse
import glob
import json
import os
import statistics

from bench_compare import HERE, PYTHON, alternate, configs, label


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default="bin/res2net")
    p.add_argument("--dir", required=True, help="folder of make_timm_fixtures.py --full")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--configs", default="1x1,8x2")
    args = p.parse_args()

    ms = lambda r: json.loads(r[2])["median_ms_per_image"]  # noqa: E731
    cfgs = configs(args.configs)
    head = ["model"] + [f"{label(b, t)}: res2net / PyTorch ms (ratio)" for b, t in cfgs]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for weights in sorted(glob.glob(os.path.join(args.dir, "*.pth"))):
        cells = [os.path.basename(weights)[: -len(".pth")]]
        for batch, threads in cfgs:
            common = ["--batch-size", str(batch), "--threads", str(threads),
                      "--iters", str(max(3, args.iters // batch)), "--warmup", str(args.warmup),
                      "--format", "json"]
            go, torch = (statistics.median(r) for r in alternate(args.rounds, [
                [args.bin, "bench", "--weights", weights] + common,
                [PYTHON, os.path.join(HERE, "bench_torch.py"), "--weights", weights] + common,
            ], ms))
            cells.append(f"{go:.1f} / {torch:.1f} ({go / torch:.2f}x)")
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
