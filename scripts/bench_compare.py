"""Compare the Go binary with PyTorch, side by side in one run.

Usage:

    /usr/bin/python3 scripts/bench_compare.py --bin bin/res2net --weights full.pth
        [--rounds 5] [--iters 20] [--warmup 3] [--photo testdata/photos/astronaut.jpg]
        [--only forward,predict,folder]

The machine is shared and noisy, so every figure is a ratio of the two
measured in alternation (Go, PyTorch, Go, PyTorch, ...) and medians are
quoted. Three comparisons:

forward   `res2net bench` vs scripts/bench_torch.py: median ms per image of
          the forward pass at batch 1 and 8, 1 and 2 threads.
predict   one photo, whole process: `res2net predict` vs
          scripts/predict_torch.py (import torch, build, torch.load,
          preprocess, top 5); wall time and peak RSS of each process.
folder    a folder of 64 photos (the test photos repeated), batch 8, all
          threads: ms per image of `res2net predict DIR` (whole process,
          loading included, over 64) vs scripts/folder_torch.py (1 / its
          images/s: DataLoader loop, loading excluded).

Prints a Markdown table for the README.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = sys.executable


def run(cmd):
    """Run cmd; return (wall seconds, peak RSS MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Drain stderr alongside stdout: reading one pipe to the end while the
    # child blocks on the other, full one would deadlock. communicate()
    # would reap the child and lose its rusage, which os.wait4 gives.
    err_chunks = []
    drain = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()))
    drain.start()
    out = proc.stdout.read()
    drain.join()
    err = err_chunks[0]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def alternate(rounds, go_cmd, torch_cmd, measure):
    """Run the two commands in alternation; return their lists of measures."""
    go, torch = [], []
    for _ in range(rounds):
        go.append(measure(run(go_cmd)))
        torch.append(measure(run(torch_cmd)))
    return go, torch


def forward(args):
    rows = []
    for batch, threads in ((1, 1), (1, 2), (8, 1), (8, 2)):
        common = ["--weights", args.weights, "--batch-size", str(batch), "--threads", str(threads),
                  "--iters", str(args.iters), "--warmup", str(args.warmup), "--format", "json"]
        go, torch = alternate(
            args.rounds,
            [args.bin, "bench"] + common,
            [PYTHON, os.path.join(HERE, "bench_torch.py")] + common,
            lambda r: json.loads(r[2])["median_ms_per_image"],
        )
        g, t = statistics.median(go), statistics.median(torch)
        rows.append((f"forward, batch {batch}, {threads} thread{'s' if threads > 1 else ''}",
                     f"{g:.1f} ms/image", f"{t:.1f} ms/image", g / t))
    return rows


def predict(args):
    go, torch = alternate(
        args.rounds,
        [args.bin, "predict", "--weights", args.weights, args.photo],
        [PYTHON, os.path.join(HERE, "predict_torch.py"), "--weights", args.weights, args.photo],
        lambda r: (r[0], r[1]),
    )
    gw, tw = statistics.median(w for w, _ in go), statistics.median(w for w, _ in torch)
    grss, trss = max(r for _, r in go), max(r for _, r in torch)
    return [
        ("predict one photo, process wall time", f"{gw * 1000:.0f} ms", f"{tw * 1000:.0f} ms", gw / tw),
        ("predict one photo, peak RSS", f"{grss:.0f} MiB", f"{trss:.0f} MiB", grss / trss),
    ]


def folder(args):
    photos = os.path.join(ROOT, "testdata", "photos")
    files = sorted(f for f in os.listdir(photos) if not f.endswith((".npy", ".json")))
    n = 64
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            src = files[i % len(files)]
            shutil.copy(os.path.join(photos, src), os.path.join(tmp, f"{i:02d}-{src}"))
        go, torch = alternate(
            args.rounds,
            [args.bin, "predict", "--weights", args.weights, "--batch-size", "8", "--format", "csv", tmp],
            [PYTHON, os.path.join(HERE, "folder_torch.py"), "--weights", args.weights, "--batch-size", "8", tmp],
            lambda r: r,
        )
    # Seconds per image, so that the ratio is Go over PyTorch time like the
    # other rows.
    g = statistics.median(wall / n for wall, _, _ in go)
    t = statistics.median(1 / float(re.search(r"([\d.]+) images/s", out).group(1)) for _, _, out in torch)
    return [(f"folder of {n} photos, batch 8", f"{g * 1000:.1f} ms/image", f"{t * 1000:.1f} ms/image", g / t)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "res2net"))
    ap.add_argument("--weights", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--photo", default=os.path.join(ROOT, "testdata", "photos", "astronaut.jpg"))
    ap.add_argument("--only", default="forward,predict,folder")
    args = ap.parse_args()

    rows = []
    for name in args.only.split(","):
        rows += {"forward": forward, "predict": predict, "folder": folder}[name](args)
    print("| measure | Go | PyTorch | Go / PyTorch (time) |")
    print("| --- | --- | --- | --- |")
    for what, g, t, ratio in rows:
        print(f"| {what} | {g} | {t} | {ratio:.2f}x |")
    print("\nEvery ratio is Go's time over PyTorch's (peak RSS over peak RSS in the memory")
    print("row): below 1 means Go is faster (smaller). The folder row compares time per")
    print("image: Go's whole process over 64, and 1 / PyTorch's images/s.")


if __name__ == "__main__":
    main()
