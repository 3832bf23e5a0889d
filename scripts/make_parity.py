"""Write full-size parity fixtures (too big to commit) for `make parity`.

Usage:

    /usr/bin/python3 scripts/make_parity.py [DIR]

DIR defaults to $PARITY_DIR, else /tmp/res2net-parity. Writes:

    full.pth           seeded full-size Res2Net-50 26w x 4s state dict in the
                       LEGACY (non-zip) format, like the published checkpoint
                       (~95 MB; same keys, shapes and dtypes)
    input.npy          float32 2x3x224x224, seeded normal
    logits.npy         float32 2x10, eval-mode logits of full.pth on input.npy
    photos.logits.npy  float32 Nx10, logits on the torchvision tensor of every
                       file in testdata/photos/manifest.json, in that order
    photos.json        {"files": [...]}: the row order of photos.logits.npy
                       (names relative to testdata/photos)

Deterministic (seeded; the checkpoint bytes are stable across runs); takes a
few seconds. Run scripts/make_fixtures.py first if testdata/photos is missing.
"""

import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from make_fixtures import TESTDATA, save_legacy, save_npy, torchvision_tensor  # noqa: E402

FULL_SEED = 20240602
FULL_CALIB_SHAPE = (4, 3, 224, 224)
INPUT_SEED = 5678


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PARITY_DIR", "/tmp/res2net-parity")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    model = reference.check_full_against_tsv()
    reference.seeded_init(model, FULL_SEED, FULL_CALIB_SHAPE)
    model.eval()
    save_legacy(model.state_dict(), os.path.join(out, "full.pth"))

    x = torch.randn((2, 3, 224, 224), generator=torch.Generator().manual_seed(INPUT_SEED))
    photos_dir = os.path.join(TESTDATA, "photos")
    with open(os.path.join(photos_dir, "manifest.json")) as f:
        files = json.load(f)["files"]
    tensors = torch.stack([torchvision_tensor(os.path.join(photos_dir, e["file"]))[0] for e in files])
    with torch.no_grad():
        logits = model(x)
        photo_logits = model(tensors)

    save_npy(os.path.join(out, "input.npy"), x.numpy())
    save_npy(os.path.join(out, "logits.npy"), logits.numpy())
    save_npy(os.path.join(out, "photos.logits.npy"), photo_logits.numpy())
    with open(os.path.join(out, "photos.json"), "w") as f:
        json.dump({"files": [e["file"] for e in files]}, f, indent=1)
        f.write("\n")
    print(f"parity fixtures written to {out}")


if __name__ == "__main__":
    main()
