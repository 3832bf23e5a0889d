"""Make the README's explain/train-head examples from shipped photos.

    /usr/bin/python3 scripts/make_beyond_examples.py [--bin bin/res2net]

1. Writes a small labelled folder (WORK/data/<class>/): 15 augmented views
   (random crops of 55-90% of each side, every other one mirrored, shorter
   side 150-300 pixels) of each of three shipped photos: astronaut, cat
   (chelsea), coffee. Seeded, so the same files every run.
2. Runs `res2net train-head` on it with the committed tiny checkpoint
   (testdata/tiny/tiny_zip.pth, seeded random weights: the pictures show
   the mechanics, not a trained network's attention).
3. Runs `res2net explain` with the new checkpoint on two shipped photos and
   writes docs/explain-chelsea.png and docs/explain-astronaut.png.

WORK is a fresh temporary folder (its own RES2NET_HOME too); the script
prints the commands and their output, which the README quotes.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile

from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = os.path.join(ROOT, "testdata", "photos")
CLASSES = {"astronaut": "astronaut.jpg", "cat": "chelsea.palette.png", "coffee": "coffee.png"}
VIEWS = 15
SEED = 11


def make_data(out):
    rng = random.Random(SEED)
    for cls in sorted(CLASSES):
        src = Image.open(os.path.join(PHOTOS, CLASSES[cls])).convert("RGB")
        W, H = src.size
        os.makedirs(os.path.join(out, cls))
        for i in range(VIEWS):
            w, h = int(W * (0.55 + 0.35 * rng.random())), int(H * (0.55 + 0.35 * rng.random()))
            x, y = rng.randint(0, W - w), rng.randint(0, H - h)
            im = src.crop((x, y, x + w, y + h))
            if i % 2:
                im = ImageOps.mirror(im)
            s = 150 + rng.randint(0, 150)
            im = im.resize((s, round(s * h / w)) if w < h else (round(s * w / h), s), Image.LANCZOS)
            im.save(os.path.join(out, cls, "%s-%02d.%s" % (cls, i, "jpg" if i % 2 == 0 else "png")))


def run(cmd, env):
    print("$ " + " ".join(cmd))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    sys.stdout.write(out.stdout)
    sys.stdout.write(out.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "res2net"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="res2net-examples-")
    env = dict(os.environ, RES2NET_HOME=os.path.join(work, "home"))
    data = os.path.join(work, "data")
    make_data(data)
    model = os.path.join(work, "pets.safetensors")
    run([args.bin, "train-head", data, "--weights", "testdata/tiny/tiny_zip.pth", "-o", model], env)
    os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
    for photo, name in (("chelsea.palette.png", "explain-chelsea.png"), ("astronaut.jpg", "explain-astronaut.png")):
        run([args.bin, "explain", os.path.join("testdata", "photos", photo), "--weights", model,
             "-o", os.path.join("docs", name)], env)
    run([args.bin, "predict", "--weights", model, "-k", "2", "testdata/photos/chelsea.palette.png"], env)


if __name__ == "__main__":
    main()
