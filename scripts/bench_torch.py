"""Benchmark PyTorch inference the way `res2net bench` measures the Go code.

Usage:

    /usr/bin/python3 scripts/bench_torch.py [--weights PATH] [--batch-size 1]
        [--threads 2] [--warmup 3] [--iters 20] [--size 224] [--format text|json]

Builds the full Res2Net-50 26w x 4s (scripts/reference.py), loads --weights if
given (any checkpoint torch.load reads: legacy or zip, wrapped or not; a tiny
checkpoint gives the tiny model; one in timm's layout the published timm
variant of its shapes, scripts/timm_reference.py) or else uses the seeded
random init, and
times forward passes on a seeded random fp32 batch of B x 3 x size x size in
eval mode under torch.inference_mode(). Each timed iteration is one forward
pass of the whole batch; per-image time is iteration time / B.

Reported: median and p90 (interpolated linearly between ranks, as
numpy.percentile and `res2net bench` compute it) ms per image, and
images/s = 1000 / median ms per image. JSON keys:
median_ms_per_image, p90_ms_per_image, images_per_second, batch_size,
threads, warmup, iters, image_size, torch_version.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
import timm_reference  # noqa: E402


def p90(values):
    """The 90th percentile, linear between ranks like numpy.percentile."""
    if len(values) == 1:  # quantiles needs two values before Python 3.13
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main():
    ap = argparse.ArgumentParser(description="Benchmark PyTorch Res2Net inference.")
    ap.add_argument("--weights", help="checkpoint path (default: seeded random init)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch.set_num_threads (default: all CPUs; Debian's torch would use 1)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--size", type=int, default=224, help="input height and width")
    ap.add_argument("--format", choices=("text", "json"), default="text")
    args = ap.parse_args()
    if args.batch_size < 1 or args.iters < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--batch-size, --iters and --threads must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    if args.weights:
        sd = reference.load_state_dict(args.weights)
        # timm's layout (conv1 / conv1.0 stem): the variant with these shapes.
        timm = "conv1.weight" in sd or "conv1.0.weight" in sd
        model = timm_reference.build_for(sd) if timm else reference.build_for(sd)
    else:
        model = reference.build_full()
        reference.seeded_init(model, 0, (2, 3, 64, 64))
        model.eval()

    x = torch.randn((args.batch_size, 3, args.size, args.size),
                    generator=torch.Generator().manual_seed(0))
    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.iters):
            start = time.perf_counter()
            model(x)
            elapsed = time.perf_counter() - start
            if i >= args.warmup:
                times.append(elapsed * 1000 / args.batch_size)

    median = statistics.median(times)
    result = dict(
        median_ms_per_image=median,
        p90_ms_per_image=p90(times),
        images_per_second=1000 / median,
        batch_size=args.batch_size,
        threads=args.threads,
        warmup=args.warmup,
        iters=args.iters,
        image_size=args.size,
        torch_version=torch.__version__,
    )
    if args.format == "json":
        print(json.dumps(result, indent=1))
    else:
        print(f"pytorch {torch.__version__}: batch {args.batch_size}, {args.threads} threads, "
              f"{args.iters} iters after {args.warmup} warmup, {args.size}x{args.size}")
        print(f"median {median:.2f} ms/image, p90 {result['p90_ms_per_image']:.2f} ms/image, "
              f"{result['images_per_second']:.2f} images/s")


if __name__ == "__main__":
    main()
