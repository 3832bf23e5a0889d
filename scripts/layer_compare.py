"""Time each conv layer of res2net and of ONNX Runtime on the same network.

Usage:

    /usr/bin/python3 scripts/layer_compare.py --bin bin/res2net --weights full.pth
        [--onnx full.onnx] [--threads 1] [--batch-size 1] [--rounds 3] [--iters 20]

Runs `res2net bench --layers` and scripts/ort/bench_ort.js --profile in
alternation, --rounds times each, and prints a Markdown table of the convs
grouped by shape (kernel, stride, input size, channels): the median over
the rounds of each one's time per pass, and the ratio. ORT's graph
optimisations fuse BatchNorm and the activations into its convs as res2net
does, and run the 1x1 convs in a channel-blocked layout whose channel
counts are rounded up to whole blocks, so shapes are matched on channels in
blocks of 16. The rows say where one runtime's pass gains on the other's;
time outside the convs (pools, adds, ORT's layout reorders) is the last row.

The ONNX file is exported next to the checkpoint when missing or older,
and onnxruntime-node installed, as scripts/bench_compare.py does.
"""

import argparse
import collections
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import bench_compare

HERE = os.path.dirname(os.path.abspath(__file__))

# Channels are matched in blocks of this many (ORT's NCHWc block is 8 or
# 16 wide on AVX-512; 16 covers both).
CHANNEL_BLOCK = 16


def key(kernel, stride, height, cin, cout):
    """The shape a conv is matched on between the two runtimes."""
    blocks = lambda c: -(-c // CHANNEL_BLOCK)
    return (kernel, stride, height, blocks(cin), blocks(cout))


def ours(args):
    """One run of res2net bench --layers: {key: (layer name, convs, ms)}, pass ms."""
    out = subprocess.run(
        [args.bin, "bench", "--weights", args.weights, "--threads", str(args.threads),
         "--batch-size", str(args.batch_size), "--iters", str(args.iters), "--layers",
         "--quiet", "--format", "json"], check=True, capture_output=True, text=True).stdout
    res = json.loads(out)
    layers = {}
    for l in res["layers"]:
        m = re.match(r"conv (\d+)x\d+/(\d+) (\d+)->(\d+)(?: g\d+)? at (\d+)x\d+", l["layer"])
        k = key(int(m[1]), int(m[2]), int(m[5]), int(m[3]), int(m[4]))
        name, convs, ms = layers.get(k, (l["layer"], 0, 0.0))
        layers[k] = (name, convs + l["convs"], ms + l["median_ms_per_pass"])
    return layers, res["median_ms_per_image"] * args.batch_size


def ort(args, workdir):
    """One profiled ORT run: {key: ms per pass}, ms per pass outside the convs, pass ms."""
    prefix = os.path.join(workdir, "ort")
    for old in glob.glob(prefix + "*.json"):
        os.remove(old)
    subprocess.run(
        ["node", os.path.join(HERE, "ort", "bench_ort.js"), "--model", args.onnx,
         "--threads", str(args.threads), "--batch-size", str(args.batch_size),
         "--warmup", "3", "--iters", str(args.iters), "--profile", prefix, "--format", "json"],
        check=True, capture_output=True, text=True)
    events = json.load(open(glob.glob(prefix + "*.json")[0]))
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")[3:]
    convs = [collections.defaultdict(float) for _ in runs]
    other = [0.0 for _ in runs]
    passes = [(end - start) / 1e3 for start, end in runs]
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        run = next((i for i, (s, t) in enumerate(runs) if s <= e["ts"] <= t), None)
        if run is None:
            continue
        a = e["args"]
        if a.get("op_name") not in ("Conv", "FusedConv"):
            other[run] += e["dur"] / 1e3
            continue
        x, w = a["input_type_shape"][0]["float"], a["input_type_shape"][1]["float"]
        oh = a["output_type_shape"][0]["float"][2]
        convs[run][key(w[2], x[2] // oh, x[2], x[1], w[0])] += e["dur"] / 1e3
    keys = set().union(*convs)
    median = lambda vals: statistics.median(vals)
    return ({k: median([c.get(k, 0.0) for c in convs]) for k in keys},
            median(other), median(passes))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--onnx")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    args.onnx = args.onnx or os.path.splitext(args.weights)[0] + ".onnx"
    bench_compare.ensure_ort(args)

    mine, theirs = collections.defaultdict(list), collections.defaultdict(list)
    names, counts = {}, {}
    other_ours, other_ort, pass_ours, pass_ort = [], [], [], []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            layers, total = ours(args)
            for k, (name, convs, ms) in layers.items():
                names[k], counts[k] = name, convs
                mine[k].append(ms)
            pass_ours.append(total)
            other_ours.append(total - sum(ms for _, _, ms in layers.values()))
            convs, other, total = ort(args, workdir)
            for k, ms in convs.items():
                theirs[k].append(ms)
            other_ort.append(other)
            pass_ort.append(total)

    med = lambda vals: statistics.median(vals) if vals else 0.0
    print(f"batch {args.batch_size}, {args.threads} thread(s), median of {args.rounds} rounds, ms per pass\n")
    print("| convs (res2net's shape) | count | res2net | ORT | res2net / ORT |")
    print("| --- | --- | --- | --- | --- |")
    sum_ours = sum_ort = 0.0
    for k in sorted(set(mine) | set(theirs), key=lambda k: (-k[2], names.get(k, ""))):
        a, b = med(mine.get(k, [])), med(theirs.get(k, []))
        sum_ours, sum_ort = sum_ours + a, sum_ort + b
        ratio = f"{a / b:.2f}x" if a and b else "-"
        print(f"| {names.get(k, 'ORT only: k=%d s=%d %d px' % k[:3])} | {counts.get(k, '-')} | {a:.2f} | {b:.2f} | {ratio} |")
    print(f"| all convs | | {sum_ours:.2f} | {sum_ort:.2f} | {sum_ours / sum_ort:.2f}x |")
    print(f"| outside the convs | | {med(other_ours):.2f} | {med(other_ort):.2f} | |")
    print(f"| whole pass (profiled) | | {med(pass_ours):.2f} | {med(pass_ort):.2f} | {med(pass_ours) / med(pass_ort):.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
