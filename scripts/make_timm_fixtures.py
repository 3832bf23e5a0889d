"""Write the timm-layout parity fixtures: tiny committed ones, or full-size ones.

Usage (from the repository root; deterministic):

    /usr/bin/python3 scripts/make_timm_fixtures.py            # testdata/timm/
    /usr/bin/python3 scripts/make_timm_fixtures.py --full DIR [--only NAME,...]

The tiny fixtures (testdata/timm/, committed) cover each structural kind of
the family (scripts/timm_reference.py TINY_KINDS: scale 2 and 8, cardinality
8, deep stem + avg-pool shortcut, 101 layers) at tiny widths:

    <kind>.pth           torch.save(state_dict) (zip), num_batches_tracked included
    <kind>.safetensors   the same state dict as safetensors, written by hand
                         (8-byte little-endian header length, JSON header with
                         __metadata__ {"format": "pt"}, raw little-endian data)
    input.npy            float32 2x3x35x29, seeded normal (odd sizes: ceil mode shows)
    <kind>.logits.npy    float32 2x10, eval-mode logits of the model on input.npy
    manifest.json        each kind's configuration, as Go's model.Config reads it

With --full, DIR gets one seeded full-size checkpoint per published variant
(VARIANTS), for `make parity`: <name>.pth (zip) and <name>.safetensors,
input.npy (2x3x224x224) and <name>.logits.npy (2x1000); <name>.photos.logits.npy
(Nx1000), the logits on timm's evaluation tensor of every file in
testdata/photos/manifest.json, in the order photos.json lists; a few
seconds and 100-190 MB per variant.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm_reference  # noqa: E402
from make_fixtures import TESTDATA, save_npy  # noqa: E402

TINY_SEED = 20261201
TINY_CALIB_SHAPE = (8, 3, 64, 64)
TINY_INPUT = (2, 3, 35, 29)
FULL_SEED = 20261202
FULL_CALIB_SHAPE = (4, 3, 224, 224)
FULL_INPUT = (2, 3, 224, 224)
INPUT_SEED = 777

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(sd, path):
    """Write sd as safetensors: tensors in state-dict order, back to back."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for key, t in sd.items():
        t = t.detach().contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dim() else t.reshape(1).view(torch.uint8).numpy().tobytes()
        header[key] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # pad the header so the data starts 8-aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def go_config(cfg):
    """cfg as Go's model.Config names it (the manifest's record)."""
    return dict(Layers=list(cfg["layers"]), Planes=list(cfg["planes"]), Stem=cfg["stem"],
                StemWidth=cfg["stem_width"], StemChannels=cfg["stem_channels"],
                BaseWidth=cfg["base_width"], Scale=cfg["scale"], Cardinality=cfg["cardinality"],
                Shortcut=cfg["shortcut"], Classes=cfg["classes"], Layout="timm")


def write(out, name, model, x):
    sd = model.state_dict()
    torch.save(sd, os.path.join(out, f"{name}.pth"))
    save_safetensors(sd, os.path.join(out, f"{name}.safetensors"))
    with torch.no_grad():
        save_npy(os.path.join(out, f"{name}.logits.npy"), model(x).numpy())


def make_tiny(out):
    os.makedirs(out, exist_ok=True)
    x = torch.randn(TINY_INPUT, generator=torch.Generator().manual_seed(INPUT_SEED))
    save_npy(os.path.join(out, "input.npy"), x.numpy())
    manifest = {}
    for i, (kind, cfg) in enumerate(timm_reference.TINY_KINDS.items()):
        model = timm_reference.seeded(cfg, TINY_SEED + i, TINY_CALIB_SHAPE)
        write(out, kind, model, x)
        manifest[kind] = dict(config=go_config(cfg), params=sum(p.numel() for p in model.parameters()))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("tiny timm fixtures written to", out)


def photo_tensors(out):
    """timm's evaluation tensors of the test photos; writes their order to photos.json."""
    from PIL import Image

    photos = os.path.join(TESTDATA, "photos")
    with open(os.path.join(photos, "manifest.json")) as f:
        files = [e["file"] for e in json.load(f)["files"]]
    transform = timm_reference.eval_transform()
    tensors = []
    for name in files:
        with Image.open(os.path.join(photos, name)) as im:
            tensors.append(transform(im.convert("RGB")))
    with open(os.path.join(out, "photos.json"), "w") as f:
        json.dump({"files": files}, f, indent=1)
        f.write("\n")
    return torch.stack(tensors)


def make_full(out, names):
    os.makedirs(out, exist_ok=True)
    x = torch.randn(FULL_INPUT, generator=torch.Generator().manual_seed(INPUT_SEED))
    save_npy(os.path.join(out, "input.npy"), x.numpy())
    photos = photo_tensors(out)
    for i, name in enumerate(timm_reference.VARIANTS):
        if name not in names:
            continue
        model = timm_reference.check_against_listing(name)
        reference_seed = FULL_SEED + i
        timm_reference.reference.seeded_init(model, reference_seed, FULL_CALIB_SHAPE,
                                             residual_bn=timm_reference.is_residual_bn)
        write(out, name, model.eval(), x)
        with torch.no_grad():
            save_npy(os.path.join(out, f"{name}.photos.logits.npy"), model(photos).numpy())
        print(f"{name}: written to {out}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="DIR", help="write full-size variants to DIR instead")
    ap.add_argument("--only", default=",".join(timm_reference.VARIANTS),
                    help="with --full: comma-separated variant names")
    args = ap.parse_args()
    torch.set_num_threads(1 if not args.full else min(2, os.cpu_count() or 1))
    torch.manual_seed(0)
    if args.full:
        names = args.only.split(",")
        unknown = set(names) - set(timm_reference.VARIANTS)
        if unknown:
            ap.error(f"unknown variants {sorted(unknown)}")
        make_full(args.full, names)
    else:
        make_tiny(os.path.join(TESTDATA, "timm"))


if __name__ == "__main__":
    main()
