"""Start-up and folder throughput of `res2net predict`, side by side.

Usage:

    /usr/bin/python3 scripts/startup_compare.py --weights full.pth
        [--bin bin/res2net] [--rounds 7] [--photo testdata/photos/astronaut.jpg]
        [--batch-size 4] [--threads 2] [--only predict,folder]

predict   one photo, whole process, in alternation: `res2net predict` with
          its cache of packed weights in place (the usual run), the same
          with an empty cache (the first run, which reads the checkpoint
          and writes the cache), and scripts/predict_torch.py (import
          torch, build, torch.load, preprocess, top 5). Median wall time
          and median peak RSS (rusage) of each; ratios over PyTorch.
folder    64 photos (the test photos repeated) in a folder:
          `res2net predict DIR` (whole process, cache in place) against
          `res2net bench` at the same --batch-size and --threads, in
          alternation. Images/s of each (predict: 64 over the process's
          wall time) and their ratio.

Each res2net run gets RES2NET_HOME set to a private temporary directory,
so the user's cache is never read or written. The machine is shared and
noisy: quote the medians and ratios, which come from runs interleaved in
one session. Prints Markdown tables.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_compare import HERE, PYTHON, ROOT, run  # noqa: E402

PACKED = "packed"  # the cache's folder under RES2NET_HOME (cmd/res2net packedDir)
MIN_AGE = 2.0  # seconds: a checkpoint changed more recently is not cached (packcache.DefaultMinAge)
FOLDER_SIZE = 64


def with_home(home, cmd):
    """run(cmd) with RES2NET_HOME=home."""
    old = os.environ.get("RES2NET_HOME")
    os.environ["RES2NET_HOME"] = home
    try:
        return run(cmd)
    finally:
        if old is None:
            del os.environ["RES2NET_HOME"]
        else:
            os.environ["RES2NET_HOME"] = old


def warm_cache(args, home):
    """Run predict, unless home holds a cache already, so that it does."""
    packed = os.path.join(home, PACKED)
    if os.path.isdir(packed) and os.listdir(packed):
        return
    st = os.stat(args.weights)
    age = time.time() - max(st.st_mtime, st.st_ctime)
    if age < MIN_AGE:
        time.sleep(MIN_AGE - age + 0.1)
    with_home(home, [args.bin, "predict", "--weights", args.weights, "--quiet", args.photo])
    if not os.path.isdir(packed) or not os.listdir(packed):
        sys.exit(f"{args.bin} predict wrote no cache under {packed}")


def predict(args, home):
    warm_cache(args, home)
    go = [args.bin, "predict", "--weights", args.weights, "--quiet", args.photo]
    torch = [PYTHON, os.path.join(HERE, "predict_torch.py"), "--weights", args.weights, args.photo]
    res = {"cached": [], "first run": [], "torch": []}
    for _ in range(args.rounds):
        res["cached"].append(with_home(home, go))
        with tempfile.TemporaryDirectory() as cold:
            res["first run"].append(with_home(cold, go))
        res["torch"].append(run(torch))
    med = {k: (statistics.median(w for w, _, _ in v), statistics.median(r for _, r, _ in v)) for k, v in res.items()}
    tw, trss = med["torch"]
    rows = []
    for name, label in (("cached", "res2net predict, cache in place"), ("first run", "res2net predict, first run (empty cache)")):
        w, rss = med[name]
        rows.append((label, f"{w * 1000:.0f} ms", f"{w / tw:.3f}x", f"{rss:.0f} MiB", f"{rss / trss:.2f}x"))
    rows.append(("scripts/predict_torch.py", f"{tw * 1000:.0f} ms", "1x", f"{trss:.0f} MiB", "1x"))
    print(f"One photo ({os.path.relpath(args.photo, ROOT)}), whole process, medians of {args.rounds} alternating rounds:")
    print()
    print("| run | wall time | / PyTorch | peak RSS | / PyTorch |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def folder(args, home):
    warm_cache(args, home)
    photos = os.path.join(ROOT, "testdata", "photos")
    files = sorted(f for f in os.listdir(photos) if not f.endswith((".npy", ".json")))
    common = ["--weights", args.weights, "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    iters = max(5, FOLDER_SIZE // args.batch_size)
    bench = [args.bin, "bench"] + common + ["--iters", str(iters), "--warmup", "2", "--format", "json"]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(FOLDER_SIZE):
            src = files[i % len(files)]
            shutil.copy(os.path.join(photos, src), os.path.join(tmp, f"{i:02d}-{src}"))
        go = [args.bin, "predict"] + common + ["--quiet", "--format", "csv", tmp]
        pred, ben = [], []
        for _ in range(args.rounds):
            wall, _, _ = with_home(home, go)
            pred.append(FOLDER_SIZE / wall)
            _, _, out = with_home(home, bench)
            ben.append(json.loads(out)["images_per_second"])
    p, b = statistics.median(pred), statistics.median(ben)
    print(f"Folder of {FOLDER_SIZE} photos, batch {args.batch_size}, {args.threads} threads, "
          f"medians of {args.rounds} alternating rounds:")
    print()
    print("| run | images/s | / bench |")
    print("| --- | --- | --- |")
    print(f"| res2net predict DIR (whole process) | {p:.2f} | {p / b:.2f}x |")
    print(f"| res2net bench (forward passes only) | {b:.2f} | 1x |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "res2net"))
    ap.add_argument("--weights", required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--photo", default=os.path.join(ROOT, "testdata", "photos", "astronaut.jpg"))
    ap.add_argument("--batch-size", type=int, default=4, help="folder: predict's default")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="folder: default all CPUs, as predict's")
    ap.add_argument("--only", default="predict,folder")
    args = ap.parse_args()
    if args.rounds < 1 or args.batch_size < 1 or args.threads < 1:
        ap.error("--rounds, --batch-size and --threads must be >= 1")
    args.weights = os.path.abspath(args.weights)
    with tempfile.TemporaryDirectory(prefix="res2net-startup-") as home:
        for name in args.only.split(","):
            {"predict": predict, "folder": folder}[name](args, home)


if __name__ == "__main__":
    main()
