"""Compare res2net with PyTorch and ONNX Runtime, side by side in one run.

Usage:

    /usr/bin/python3 scripts/bench_compare.py --bin bin/res2net --weights full.pth
        [--onnx full.onnx] [--rounds 3] [--iters 20] [--warmup 3]
        [--precisions fp32,bf16] [--configs 1x1,1x2,8x1,8x2,32x2] [--baseline OLD_BIN]
        [--photo testdata/photos/astronaut.jpg] [--only forward,predict,folder]

The machine is shared and noisy, so every figure is a ratio of runtimes
measured in alternation (res2net, PyTorch, ONNX Runtime, res2net, ...) and
medians over the rounds are quoted. Three comparisons:

forward   `res2net bench` vs scripts/bench_torch.py vs scripts/ort/bench_ort.js
          (onnxruntime-node, CPU, graph optimisation "all", on
          scripts/export_onnx.py's export of the same checkpoint): median
          ms per image of the forward pass for every batch x threads
          configuration (--configs, BATCHxTHREADS), in fp32 and, with bf16
          in --precisions, res2net's `--precision bf16` against its fp32.
          Each pass is the whole batch; passes per run are --iters divided
          by the batch size, at least 5.
predict   one photo, whole process: `res2net predict` vs
          scripts/predict_torch.py (import torch, build, torch.load,
          preprocess, top 5); wall time and peak RSS of each process.
folder    a folder of 64 photos (the test photos repeated), batch 8, all
          threads: ms per image of `res2net predict DIR` (whole process,
          loading included, over 64) vs scripts/folder_torch.py (1 / its
          images/s: DataLoader loop, loading excluded).

onnxruntime-node is installed into scripts/ort/node_modules with `npm ci`
(from scripts/ort/package-lock.json) when it is missing, and the ONNX file
is exported next to the checkpoint when it is missing or older. Prints
Markdown tables for the README.
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


def alternate(rounds, cmds, measure):
    """Run the commands in alternation, rounds times; return one list of
    measures per command."""
    results = [[] for _ in cmds]
    for _ in range(rounds):
        for cmd, res in zip(cmds, results):
            res.append(measure(run(cmd)))
    return results


ORT_DIR = os.path.join(HERE, "ort")
NODE = shutil.which("node") or "node"


def ensure_ort(args):
    """Install onnxruntime-node and export the ONNX file when missing."""
    if not os.path.isdir(os.path.join(ORT_DIR, "node_modules", "onnxruntime-node")):
        # The CPU libraries ship in the npm package; the install script
        # only downloads the CUDA ones, which need the network and a GPU.
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=ORT_DIR, check=True)
    if not os.path.exists(args.onnx) or os.path.getmtime(args.onnx) < os.path.getmtime(args.weights):
        subprocess.run([PYTHON, os.path.join(HERE, "export_onnx.py"), args.weights, args.onnx], check=True)


def supports_bf16(binary):
    """Whether `res2net bench --precision` takes bf16."""
    help_text = subprocess.run([binary, "bench", "--help"], capture_output=True, text=True).stdout
    return any("--precision" in line and "bf16" in line for line in help_text.splitlines())


def configs(spec):
    """Parse "1x1,8x2" into [(1, 1), (8, 2)]."""
    out = []
    for item in spec.split(","):
        batch, threads = (int(v) for v in item.split("x"))
        out.append((batch, threads))
    return out


def label(batch, threads):
    return f"batch {batch}, {threads} thread{'s' if threads > 1 else ''}"


def forward(args):
    """Returns the fp32 and bf16 tables' rows."""
    ensure_ort(args)
    bf16 = "bf16" in args.precisions.split(",")
    if bf16 and not supports_bf16(args.bin):
        print(f"note: {args.bin} bench has no --precision bf16; bf16 rows skipped", file=sys.stderr)
        bf16 = False
    fp32_rows, bf16_rows = [], []
    ms = lambda r: json.loads(r[2])["median_ms_per_image"]  # noqa: E731
    for batch, threads in configs(args.configs):
        iters = max(5, args.iters // batch)
        common = ["--batch-size", str(batch), "--threads", str(threads),
                  "--iters", str(iters), "--warmup", str(args.warmup), "--format", "json"]
        go = [args.bin, "bench", "--weights", args.weights] + common
        cmds = [
            go,
            [PYTHON, os.path.join(HERE, "bench_torch.py"), "--weights", args.weights] + common,
            [NODE, os.path.join(ORT_DIR, "bench_ort.js"), "--model", args.onnx] + common,
        ]
        if bf16:
            cmds.append(go + ["--precision", "bf16"])
        if args.baseline:
            cmds.append([args.baseline, "bench", "--weights", args.weights] + common)
        times = [statistics.median(r) for r in alternate(args.rounds, cmds, ms)]
        g, t, o = times[:3]
        base = times[-1] if args.baseline else None
        fp32_rows.append((label(batch, threads), g, t, o, base))
        if bf16:
            bf16_rows.append((label(batch, threads), times[3], g, o))
    return fp32_rows, bf16_rows


def predict(args):
    go, torch = alternate(
        args.rounds,
        [[args.bin, "predict", "--weights", args.weights, args.photo],
         [PYTHON, os.path.join(HERE, "predict_torch.py"), "--weights", args.weights, args.photo]],
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
            [[args.bin, "predict", "--weights", args.weights, "--batch-size", "8", "--format", "csv", tmp],
             [PYTHON, os.path.join(HERE, "folder_torch.py"), "--weights", args.weights, "--batch-size", "8", tmp]],
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
    ap.add_argument("--onnx", help="ONNX export of --weights (default: beside it, .onnx)")
    ap.add_argument("--baseline", help="another res2net binary to time in the same alternation (fp32), such as an older build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20, help="timed passes at batch 1 (fewer, at least 5, for larger batches)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--configs", default="1x1,1x2,8x1,8x2,32x2", help="BATCHxTHREADS,...")
    ap.add_argument("--photo", default=os.path.join(ROOT, "testdata", "photos", "astronaut.jpg"))
    ap.add_argument("--only", default="forward,predict,folder")
    args = ap.parse_args()
    if args.onnx is None:
        args.onnx = os.path.splitext(args.weights)[0] + ".onnx"
    if args.rounds < 1 or args.iters < 1 or args.warmup < 0:
        ap.error("--rounds and --iters must be >= 1, --warmup >= 0")

    only = args.only.split(",")
    if "forward" in only:
        fp32_rows, bf16_rows = forward(args)
        base_head = " | baseline | res2net / baseline" if args.baseline else ""
        print(f"| forward, ms per image | res2net | PyTorch | ORT | res2net / PyTorch | res2net / ORT{base_head} |")
        print("| --- | --- | --- | --- | --- | ---" + (" | --- | ---" if args.baseline else "") + " |")
        for what, g, t, o, base in fp32_rows:
            base_cols = f" | {base:.1f} | {g / base:.2f}x" if base else ""
            print(f"| {what} | {g:.1f} | {t:.1f} | {o:.1f} | {g / t:.2f}x | {g / o:.2f}x{base_cols} |")
        if bf16_rows:
            print()
            print("| forward, ms per image | res2net bf16 | res2net fp32 | ORT fp32 | fp32 / bf16 (speed-up) | bf16 / ORT |")
            print("| --- | --- | --- | --- | --- | --- |")
            for what, b, g, o in bf16_rows:
                print(f"| {what} | {b:.1f} | {g:.1f} | {o:.1f} | {g / b:.2f}x | {b / o:.2f}x |")
        print()
    rows = []
    for name in only:
        if name != "forward":
            rows += {"predict": predict, "folder": folder}[name](args)
    if rows:
        print("| measure | Go | PyTorch | Go / PyTorch (time) |")
        print("| --- | --- | --- | --- |")
        for what, g, t, ratio in rows:
            print(f"| {what} | {g} | {t} | {ratio:.2f}x |")
        print()
    print("Ratios are times over times (peak RSS over peak RSS in the memory row):")
    print("below 1 means res2net is faster (smaller), except the speed-up column.")
    print("The folder row compares time per image: Go's whole process over 64, and")
    print("1 / PyTorch's images/s.")


if __name__ == "__main__":
    main()
