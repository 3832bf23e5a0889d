"""Regenerate the committed PyTorch fixtures under testdata/.

Usage (from the repository root; deterministic, takes a few seconds):

    /usr/bin/python3 scripts/make_fixtures.py [--only tiny,ops,photos]

Writes:
  testdata/tiny/    tiny Res2Net (scripts/reference.py TINY config) checkpoints in
                    every supported serialisation, an input and its logits, and
                    per-stage activations.
  testdata/ops/     per-operator input/parameter/output .npy files computed with
                    torch.nn.functional, plus ops/manifest.json.
  testdata/photos/  small public-domain photos from python3-skimage in several
                    formats, Pillow's decoded pixels, torchvision's resized crop
                    and the tiny model's logits, plus photos/manifest.json.

See testdata/README.md for the list of files. Needs Debian's python3-torch,
python3-torchvision, python3-pil and python3-skimage (no network).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "testdata")

TINY_SEED = 20240601
TINY_CALIB_SHAPE = (8, 3, 64, 64)
INPUT_SEED = 1234
OPS_SEED = 4321


def save_legacy(obj, path):
    """torch.save(obj, path, _use_new_zipfile_serialization=False), byte-stable.

    The legacy format names each storage by its C pointer (str(storage._cdata)),
    so two runs give different bytes and storage order. This runs torch's own
    _legacy_save with that one expression replaced by pointer-like keys
    allocated in first-use order, so regenerated files do not churn in git.
    """
    import inspect
    import textwrap

    import torch.serialization as ser

    src = textwrap.dedent(inspect.getsource(ser._legacy_save))
    needle = "storage_key = str(storage._cdata)"
    assert src.count(needle) == 1, "torch.serialization._legacy_save changed"
    src = src.replace(needle, "storage_key = _stable_key(storage._cdata)")
    keys = {}

    def stable_key(cdata):
        # Same length for all keys, so sorted() keeps first-use order.
        return keys.setdefault(cdata, str(94_000_000_000_000 + 4096 * len(keys)))

    scope = dict(vars(ser), _stable_key=stable_key)
    exec(compile(src, ser.__file__, "exec"), scope)
    with open(path, "wb") as f:
        scope["_legacy_save"](obj, f, ser.pickle, ser.DEFAULT_PROTOCOL)


def save_npy(path, array):
    """Write a C-contiguous little-endian .npy (float32 unless already uint8)."""
    a = np.ascontiguousarray(array)
    if a.dtype != np.uint8:
        a = a.astype("<f4")
    np.save(path, a, allow_pickle=False)


def tiny_model():
    """The seeded tiny model, in eval mode (shared with the photo logits)."""
    model = reference.build_tiny()
    reference.seeded_init(model, TINY_SEED, TINY_CALIB_SHAPE)
    return model.eval()


@torch.no_grad()
def stage_outputs(model, x):
    """Activations after the stem (features.2), maxpool (.3), stages .4-.7, pool."""
    outs = {}
    h = x
    for i, layer in enumerate(model.features):
        h = layer(h)
        if i >= 2:
            outs[f"features.{i}"] = h.clone()
    outs["pool"] = model.pool(h)
    return outs


def cast(sd, dtype):
    """Copy of sd with floating tensors converted to dtype (int64 kept)."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}


def logits_rounded(sd, dtype, x):
    """Logits on x of the tiny model whose weights were rounded to dtype."""
    model = reference.build_tiny().eval()
    model.load_state_dict(cast(cast(sd, dtype), torch.float32))
    with torch.no_grad():
        return model(x)


def make_tiny(out):
    os.makedirs(out, exist_ok=True)
    model = tiny_model()
    sd = model.state_dict()

    # Same serialisation as the published checkpoint (legacy, non-zip).
    save_legacy(sd, os.path.join(out, "tiny_legacy.pth"))
    torch.save(sd, os.path.join(out, "tiny_zip.pth"))
    torch.save(cast(sd, torch.float16), os.path.join(out, "tiny_f16.pth"))
    save_legacy(cast(sd, torch.bfloat16), os.path.join(out, "tiny_bf16.pth"))
    wrapped = {"model": {"module." + k: v for k, v in sd.items()}}
    torch.save(wrapped, os.path.join(out, "tiny_wrapped.pth"))

    g = torch.Generator().manual_seed(INPUT_SEED)
    x = torch.randn((2, 3, 64, 64), generator=g)
    # Odd, non-square size: exercises padding/stride edge arithmetic everywhere.
    x_odd = torch.randn((1, 3, 57, 83), generator=g)
    with torch.no_grad():
        logits = model(x)
        logits_odd = model(x_odd)
    logits_f16 = logits_rounded(sd, torch.float16, x)
    logits_bf16 = logits_rounded(sd, torch.bfloat16, x)

    save_npy(os.path.join(out, "input.npy"), x.numpy())
    save_npy(os.path.join(out, "logits.npy"), logits.numpy())
    save_npy(os.path.join(out, "logits_f16.npy"), logits_f16.numpy())
    save_npy(os.path.join(out, "logits_bf16.npy"), logits_bf16.numpy())
    save_npy(os.path.join(out, "input_odd.npy"), x_odd.numpy())
    save_npy(os.path.join(out, "logits_odd.npy"), logits_odd.numpy())
    for name, t in stage_outputs(model, x).items():
        save_npy(os.path.join(out, f"act.{name}.npy"), t.numpy())
    return model


def make_ops(out):
    """Per-op fixtures: <op>.<tensor>.npy and manifest.json describing each op."""
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(OPS_SEED)

    def randn(*shape):
        return torch.randn(shape, generator=g)

    def uniform(lo, hi, *shape):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    manifest = {}

    def emit(op, kind, attrs, **tensors):
        files = {}
        for role, t in tensors.items():
            name = f"{op}.{role}.npy"
            save_npy(os.path.join(out, name), t.numpy())
            files[role] = {"file": name, "shape": list(t.shape)}
        manifest[op] = {"op": kind, "attrs": attrs, "tensors": files}

    def conv(op, n, cin, h, w, cout, k, stride, pad, bias):
        x = randn(n, cin, h, w)
        wt = randn(cout, cin, k, k) * (2.0 / (cin * k * k)) ** 0.5
        b = randn(cout) if bias else None
        y = F.conv2d(x, wt, b, stride=stride, padding=pad)
        t = dict(input=x, weight=wt)
        if bias:
            t["bias"] = b
        emit(op, "conv2d", dict(stride=stride, padding=pad), **t, output=y)

    conv("conv3x3_s1", 2, 5, 9, 11, 7, 3, 1, 1, True)
    conv("conv3x3_s2", 2, 5, 9, 11, 7, 3, 2, 1, True)
    conv("conv3x3_s2_even", 1, 4, 8, 10, 6, 3, 2, 1, False)
    conv("conv7x7_s2", 2, 3, 17, 19, 8, 7, 2, 3, False)
    conv("conv1x1_s1", 2, 5, 9, 11, 7, 1, 1, 0, False)
    conv("conv1x1_s2", 2, 5, 9, 11, 7, 1, 2, 0, False)
    # Wider 1x1 with many channels: a GEMM with K and N not multiples of 8.
    conv("conv1x1_wide", 1, 67, 7, 9, 45, 1, 1, 0, True)

    x = randn(2, 5, 9, 11) * 2 + 0.5
    mean, var = randn(5) * 0.5, uniform(0.2, 3.0, 5)
    gamma, beta = uniform(0.5, 1.5, 5), randn(5) * 0.3
    y = F.batch_norm(x, mean, var, gamma, beta, training=False, eps=1e-5)
    emit("batchnorm", "batchnorm_eval", dict(eps=1e-5), input=x, weight=gamma, bias=beta,
         running_mean=mean, running_var=var, output=y)

    x = randn(2, 5, 9, 11) - 1.0  # mostly negative: padding must act as -inf
    emit("relu", "relu", {}, input=x, output=F.relu(x))
    emit("maxpool3_s2", "maxpool2d", dict(kernel=3, stride=2, padding=1),
         input=x, output=F.max_pool2d(x, 3, 2, 1))
    x = randn(2, 5, 9, 11)
    emit("avgpool3_s1", "avgpool2d", dict(kernel=3, stride=1, padding=1, count_include_pad=True),
         input=x, output=F.avg_pool2d(x, 3, 1, 1, count_include_pad=True))
    emit("avgpool3_s2", "avgpool2d", dict(kernel=3, stride=2, padding=1, count_include_pad=True),
         input=x, output=F.avg_pool2d(x, 3, 2, 1, count_include_pad=True))
    # Output flattened to N x C, as the model's pool does.
    emit("global_avgpool", "adaptive_avgpool2d_1", dict(flatten=True),
         input=x, output=F.adaptive_avg_pool2d(x, 1).flatten(1))

    x = randn(2, 13)
    wt, b = randn(10, 13) * 0.3, randn(10)
    emit("linear", "linear", {}, input=x, weight=wt, bias=b, output=F.linear(x, wt, b))
    # Wide range: a naive exp() overflows; softmax must subtract the max.
    x = torch.cat([randn(1, 10) * 3, randn(1, 10) * 40 + 60])
    emit("softmax", "softmax", dict(dim=1), input=x, output=F.softmax(x, dim=1))

    # Res2NeXt's grouped 3x3 (8 groups of 4 channels), at both strides; drawn
    # after the cases above so that theirs stay byte for byte.
    for op, stride in (("conv3x3_g8_s1", 1), ("conv3x3_g8_s2", 2)):
        x = randn(2, 32, 9, 11)
        wt = randn(32, 4, 3, 3) * (2.0 / 36) ** 0.5
        b = randn(32)
        y = F.conv2d(x, wt, b, stride=stride, padding=1, groups=8)
        emit(op, "conv2d", dict(stride=stride, padding=1, groups=8), input=x, weight=wt, bias=b, output=y)
    # timm's avg-pool shortcut, on an odd size so that ceil mode shows.
    x = randn(2, 5, 9, 7)
    emit("avgpool2_s2_ceil_exclude", "avgpool2d",
         dict(kernel=2, stride=2, padding=0, ceil_mode=True, count_include_pad=False),
         input=x, output=F.avg_pool2d(x, 2, 2, 0, ceil_mode=True, count_include_pad=False))

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


# --- photos -----------------------------------------------------------------

SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"

# Source photos from Debian's python3-skimage, with the licence stated in
# skimage/data/_fetchers.py (the docstring of the loader named below).
SOURCES = {
    "astronaut": dict(
        path=f"{SKIMAGE_DATA}/astronaut.png", loader="skimage.data.astronaut",
        licence="public domain (NASA Great Images; 'No known copyright restrictions, "
                "released into the public domain')",
        # Portrait crop; 300x400 resizes to 232x309, crop top round(42.5) = 42.
        box=(64, 0, 448, 512), size=(300, 400), mode="RGB"),
    "coffee": dict(
        path=f"{SKIMAGE_DATA}/coffee.png", loader="skimage.data.coffee",
        licence="CC0 (photographer Rachel Michetti; 'No copyright restrictions')",
        # Short side 192 < 232: torchvision upscales to 348x232.
        box=None, size=(288, 192), mode="RGB"),
    "chelsea": dict(
        path=f"{SKIMAGE_DATA}/chelsea.png", loader="skimage.data.chelsea",
        licence="CC0 (photographer Stefan van der Walt; 'No copyright restrictions')",
        # Short side exactly 232: Resize(232) keeps the size.
        box=(1, 0, 451, 300), size=(348, 232), mode="RGB"),
    "camera": dict(
        path=f"{SKIMAGE_DATA}/camera.png", loader="skimage.data.camera",
        licence="CC0 (photographer Lav Varshney; 'No copyright restrictions')",
        # Grey portrait; 240x330 resizes to 232x319, crop top round(47.5) = 48.
        box=(70, 0, 442, 512), size=(240, 330), mode="L"),
    "rocket": dict(
        path=f"{SKIMAGE_DATA}/rocket.jpg", loader="skimage.data.rocket",
        licence="public domain (SpaceX, DSCOVR launch; 'released in the public domain')",
        box=(0, 0, 640, 427), size=(360, 240), mode="RGB"),
}

# (file name, source, how to write it, lossless w.r.t. the resized source).
# Files sharing a source and decoding to the same pixels share one set of
# <source>.rgb/.crop/.logits fixtures; the script asserts that they do.
PHOTO_FILES = [
    ("astronaut.jpg", "astronaut", "jpeg_baseline_420_q90", False),
    ("astronaut.progressive.jpg", "astronaut", "jpeg_progressive_420_q90", False),
    ("astronaut.exif6.jpg", "astronaut", "jpeg_baseline_420_q90_exif_orientation_6", False),
    ("coffee.png", "coffee", "png_rgb", True),
    ("coffee.rgba.png", "coffee", "png_rgba", True),
    ("coffee.bmp", "coffee", "bmp_24bit", True),
    ("coffee.tiff", "coffee", "tiff_rgb_lzw", True),
    ("coffee.lossless.webp", "coffee", "webp_lossless", True),
    ("chelsea.palette.png", "chelsea", "png_palette", False),
    ("chelsea.gif", "chelsea", "gif", False),
    ("camera.grey.png", "camera", "png_grey", True),
    ("rocket.lossy.webp", "rocket", "webp_lossy_q80", False),
]


def _package_version(pkg):
    import subprocess

    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _source_image(src):
    from PIL import Image

    im = Image.open(src["path"]).convert(src["mode"])
    if src["box"] is not None:
        im = im.crop(src["box"])
    return im.resize(src["size"], Image.LANCZOS)


def _write_photo(im, path, how):
    from PIL import Image

    if how.startswith("jpeg"):
        kw = dict(quality=90, subsampling=2)  # 4:2:0, libjpeg-turbo baseline
        if "progressive" in how:
            kw["progressive"] = True
        if "exif_orientation_6" in how:
            exif = Image.Exif()
            exif[0x0112] = 6  # Orientation: rotate 90 CW to display
            kw["exif"] = exif.tobytes()
        im.save(path, "JPEG", **kw)
    elif how == "png_rgb" or how == "png_grey":
        im.save(path, "PNG")
    elif how == "png_rgba":
        # Alpha ramps left to right and is 0 in a band, over unchanged colour:
        # convert("RGB") must return the stored colour, not a composite.
        w, h = im.size
        a = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
        a[h // 3: h // 2, :] = 0
        rgba = im.copy()
        rgba.putalpha(Image.fromarray(a, "L"))
        rgba.save(path, "PNG")
    elif how == "bmp_24bit":
        im.save(path, "BMP")
    elif how == "tiff_rgb_lzw":
        im.save(path, "TIFF", compression="tiff_lzw")
    elif how == "webp_lossless":
        im.save(path, "WEBP", lossless=True)
    elif how == "webp_lossy_q80":
        im.save(path, "WEBP", quality=80)
    elif how in ("png_palette", "gif"):
        pal = im.quantize(colors=200, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        pal.save(path, "PNG" if how == "png_palette" else "GIF")
    else:
        raise ValueError(how)


def torchvision_tensor(path):
    """The published eval transform, exactly as torchvision applies it, and
    the uint8 224x224x3 crop it normalises (Resize + CenterCrop only).

    The crop is what gets committed: ToTensor divides uint8 values by 255, so
    the crop holds the tensor exactly at a quarter of the size; the script
    asserts that normalising it in float32 gives the tensor bit for bit.
    """
    from PIL import Image
    from torchvision import transforms as T

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        tensor = reference.eval_transform()(rgb)
        crop = T.Compose(reference.eval_transform().transforms[:2])(rgb)
    crop = np.asarray(crop)
    mean = torch.tensor(reference.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(reference.IMAGENET_STD).view(3, 1, 1)
    again = (torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 255 - mean) / std
    assert torch.equal(again, tensor), f"{path}: crop does not reproduce the tensor"
    return tensor, crop


def make_photos(out, model):
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    skimage_version = _package_version("python3-skimage")
    entries, done = [], {}
    for name, src_name, how, lossless in PHOTO_FILES:
        src = SOURCES[src_name]
        path = os.path.join(out, name)
        _write_photo(_source_image(src), path, how)
        with Image.open(path) as im:
            fmt, mode, size = im.format, im.mode, im.size
            exif = im.getexif().get(0x0112)
            rgb = np.asarray(im.convert("RGB"))
        if src_name in done:
            assert np.array_equal(done[src_name], rgb), f"{name} decodes differently"
        else:
            done[src_name] = rgb
            tensor, crop = torchvision_tensor(path)
            with torch.no_grad():
                logits = model(tensor.unsqueeze(0))
            save_npy(os.path.join(out, f"{src_name}.rgb.npy"), rgb)
            save_npy(os.path.join(out, f"{src_name}.crop.npy"), crop)
            save_npy(os.path.join(out, f"{src_name}.logits.npy"), logits.numpy())
        entries.append(dict(
            file=name,
            format=fmt,
            encoding=how,
            pillow_mode=mode,
            width=size[0],
            height=size[1],
            bytes=os.path.getsize(path),
            lossless=lossless,
            exif_orientation=exif,
            rgb=f"{src_name}.rgb.npy",
            crop=f"{src_name}.crop.npy",
            logits=f"{src_name}.logits.npy",
            source=dict(package="python3-skimage", package_version=skimage_version,
                        path=src["path"], loader=src["loader"], crop_box=src["box"],
                        licence=src["licence"]),
        ))
    manifest = dict(
        transform="Image.open(p).convert('RGB') -> Resize(232, BILINEAR) -> CenterCrop(224)"
                  " -> ToTensor -> Normalize(ImageNet mean/std)",
        rgb="Pillow Image.open(p).convert('RGB') as uint8 HxWx3",
        crop="torchvision Resize(232) + CenterCrop(224) of the RGB image, uint8 224x224x3;"
             " ToTensor + Normalize of it is the eval tensor, bit for bit",
        logits="testdata/tiny model (tiny_legacy.pth) on the tensor, float32 1x10",
        files=entries,
    )
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


# --- README -----------------------------------------------------------------

README_HEAD = """\
# testdata

Generated by `scripts/make_fixtures.py`; do not edit by hand (this file too).
Regenerate everything, byte for byte, with

    /usr/bin/python3 scripts/make_fixtures.py

(Debian packages python3-torch {torch}, python3-torchvision {torchvision},
python3-pil {pil}, python3-skimage {skimage}; no network). The reference network is
`scripts/reference.py` (Holocron Res2Net semantics, see
testdata/reference/FACTS.md). All `.npy` files are little-endian,
C-order, version 1.0, float32 (`<f4`) unless marked uint8 (`|u1`).

## reference/

Not generated: the facts about the published checkpoint (`FACTS.md`: URL,
hash, classes, evaluation transform, network semantics, parameter and MAC
totals) and its state dict as PyTorch lists it
(`res2net50_26w_4s_state_dict.tsv`: key, shape, dtype in file order),
which `pkg/model` checks `Config.StateDict()` against.

The state dicts of the nine timm variants, made with timm's code, are in
`reference/timm/<name>_state_dict.tsv` (same columns; the first line gives
timm's learnable parameter count), which `pkg/model` checks every preset's
`StateDict()` and parameter count against.

## timm/

Written by `scripts/make_timm_fixtures.py` (not by this script): tiny-width
networks of timm's layout (`scripts/timm_reference.py`, written from
FAMILY.md), one per structural kind: `26w_4s`, `48w_2s` (scale 2),
`14w_8s` (scale 8), `next_16w_4s_8x` (cardinality 8: groups of 1 to 8
channels), `d` (deep stem + avg-pool shortcut), `101` (3, 4, 23, 3 blocks).
For each kind `<k>`: `<k>.pth` (zip) and `<k>.safetensors` (written by
hand) hold the same seeded state dict, `<k>.logits.npy` its eval-mode
logits on `input.npy` (2x3x35x29); `manifest.json` gives each kind's
configuration and parameter count.

## tiny/

Tiny Res2Net: `reference.TINY` = Layers (3,4,6,3), Planes (4,8,16,32),
StemChannels 8, BaseWidth 26, Scale 4, Classes 10 (Res2 widths 1, 3, 6, 13;
{tiny_params:,} learnable parameters). Seeded init with calibrated,
non-trivial BatchNorm statistics (`reference.seeded_init`, seed {tiny_seed}).
Every checkpoint holds the same state dict, including the int64
`num_batches_tracked` scalars:

- `tiny_legacy.pth`: legacy non-zip format, as the published checkpoint
  (`torch.save(sd, f, _use_new_zipfile_serialization=False)`; storage keys
  are pointer-like decimal strings, made stable across runs).
- `tiny_zip.pth`: plain `torch.save` (zip).
- `tiny_f16.pth`: floating tensors as float16, zip.
- `tiny_bf16.pth`: floating tensors as bfloat16, legacy format.
- `tiny_wrapped.pth`: `{{"model": {{"module." + key: tensor}}}}`, zip.
- `input.npy` / `logits.npy`: eval-mode logits of the float32 model.
- `logits_f16.npy`, `logits_bf16.npy`: logits on `input.npy` of the model
  whose weights were rounded to float16 / bfloat16 and back to float32
  (what loading `tiny_f16.pth` / `tiny_bf16.pth` must give).
- `input_odd.npy` / `logits_odd.npy`: an odd, non-square 57x83 input.
- `act.<module>.npy`: activations for `input.npy` after `features.2` (stem
  ReLU), `features.3` (max pool), the stages `features.4`..`features.7`, and
  `pool` (N x C): for locating a mismatch.

## ops/

One case per operator, computed with `torch.nn.functional` in float32. Files
are `<case>.<role>.npy`; roles are `input`, `weight`, `bias`, `running_mean`,
`running_var` (batchnorm, eps 1e-5), `output`. `ops/manifest.json` gives each
case's operator, attributes (stride, padding, ...) and tensor shapes.
Padding of conv/pool is symmetric; avg pools use `count_include_pad=True`;
`global_avgpool` output is flattened to N x C; softmax is over dim 1 (its
second row has values near 100, so exp must be taken after subtracting the max).

## photos/

Small photos cut from images shipped in Debian's python3-skimage (path
/usr/lib/python3/dist-packages/skimage/data/, licences as stated in the
loader docstrings in skimage/data/_fetchers.py), resized with Pillow LANCZOS
and saved in several formats. For each source `<s>`, every file `<s>.*`
decodes (Pillow `Image.open(p).convert("RGB")`) to the same pixels (the
script asserts it), so the fixtures are per source:

- `<s>.rgb.npy`: uint8 H x W x 3, Pillow's `convert("RGB")` pixels.
- `<s>.crop.npy`: uint8 224x224x3, torchvision's Resize(232, BILINEAR) +
  CenterCrop(224) of those pixels. ToTensor (/255) + Normalize(ImageNet) of
  it in float32 is the eval tensor bit for bit (the script asserts it); the
  crop is committed instead of the float32 tensor at a quarter of the size.
- `<s>.logits.npy`: float32 1x10, the tiny model on the eval tensor.

`photos/manifest.json` lists every photo file with its format, encoding,
Pillow mode, size, lossless flag, EXIF orientation and fixture names, and the
source package, path and licence. Note `astronaut.exif6.jpg` carries EXIF
Orientation 6, which Pillow's `open` (and so the reference tensor) ignores.

| source | package file | licence | files |
| --- | --- | --- | --- |
"""


def _describe(path):
    """Shape and dtype of a .npy file; size, format and mode of an image."""
    if path.endswith(".npy"):
        a = np.load(path, mmap_mode="r")
        shape = "x".join(str(d) for d in a.shape) or "scalar"
        return f"{shape} {a.dtype}"
    if os.path.dirname(path).endswith("photos") and not path.endswith(".json"):
        from PIL import Image

        with Image.open(path) as im:
            return f"{im.width}x{im.height} {im.format} {im.mode}"
    return ""


def make_readme(path):
    sources = {}
    for name, src, _, _ in PHOTO_FILES:
        sources.setdefault(src, []).append(name)
    text = README_HEAD.format(
        torch=_package_version("python3-torch"),
        torchvision=_package_version("python3-torchvision"),
        pil=_package_version("python3-pil"),
        skimage=_package_version("python3-skimage"),
        tiny_params=reference.param_count(reference.build_tiny()), tiny_seed=TINY_SEED)
    for src, names in sources.items():
        s = SOURCES[src]
        text += f"| {src} | {s['path']} | {s['licence']} | {', '.join(names)} |\n"
    text += ("\n## Files\n\n| file | shape dtype (images: WxH format mode) | bytes |\n"
             "| --- | --- | --- |\n")
    total = 0
    for sub in ("tiny", "timm", "ops", "photos"):
        d = os.path.join(TESTDATA, sub)
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            size = os.path.getsize(p)
            total += size
            text += f"| {sub}/{name} | {_describe(p)} | {size:,} |\n"
    text += f"\nTotal: {total:,} bytes.\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="tiny,ops,photos",
                    help="comma-separated subset of tiny,ops,photos")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    torch.set_num_threads(1)  # bit-stable results independent of the machine
    torch.manual_seed(0)
    if "tiny" in parts:
        make_tiny(os.path.join(TESTDATA, "tiny"))
    if "ops" in parts:
        make_ops(os.path.join(TESTDATA, "ops"))
    if "photos" in parts:
        make_photos(os.path.join(TESTDATA, "photos"), tiny_model())
    make_readme(os.path.join(TESTDATA, "README.md"))
    print("fixtures written to", TESTDATA)


if __name__ == "__main__":
    main()
