#!/usr/bin/python3
"""Write the fixtures of pkg/preprocess/testdata (deterministic).

Run with Debian's python3 (Pillow 9.4, torch 1.13, torchvision 0.14,
python3-skimage for the source photos) and libjpeg-turbo's cjpeg 2.1
(apt-get install libjpeg-turbo-progs) for JPEG variants Pillow cannot write:

    /usr/bin/python3 scripts/make_preprocess_fixtures.py

Every image file gets a reference made by the real libraries:

- formats/<name>         small images in every format and mode the Go
  package reads, cut from skimage photos; formats/<name>.rgb.npy is Pillow's
  Image.open(p).convert("RGB") (after ImageOps.exif_transpose for the
  orient_* files), uint8 HxWx3. formats/manifest.json lists them with
  whether the format is lossless.
- resize/<w>x<h>_<ow>x<oh>.npy  Pillow's resize((ow, oh), BILINEAR) of the
  synthetic pattern image pattern(w, h) (the Go test computes the same
  pattern), uint8.
- transform/*.npy        torchvision outputs: small-option eval transforms
  as float32 tensors, the default (232/224) and timm (256/224) transforms'
  uint8 crops (before ToTensor), and the ToTensor+Normalize table of all
  256 values; transform/geometry.json the resize sizes and crop offsets.
"""

import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin
from torchvision import transforms as T

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pkg", "preprocess", "testdata")
SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"


def photo(name, box, size):
    """A small, deterministic crop of a skimage photo."""
    im = Image.open(os.path.join(SKIMAGE, name)).convert("RGB")
    return im.crop(box).resize(size, Image.Resampling.LANCZOS)


def pattern(w, h):
    """Synthetic noisy RGB pattern; pkg/preprocess tests compute the same."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        v = (x * 73 + y * 151 + c * 29 + ((x * y) >> 3) * 7 + ((x ^ y) & 15) * 19) % 256
        out[..., c] = v
    return out


# --- a minimal PNG writer for what Pillow cannot save -----------------------

def png_chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)


def write_png(path, rows, width, height, depth, ctype, extra=b""):
    """rows: list of raw scanline bytes (without filter byte)."""
    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def write_png_interlaced(path, arr, depth, ctype, extra=b""):
    """An Adam7-interlaced PNG (Pillow cannot write one); arr is HxW or
    HxWxC, of uint8 or big-endian uint16 for depth 16."""
    h, w = arr.shape[:2]
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = arr[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.astype(">u2" if depth == 16 else np.uint8).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def write_tiff_rgba_associated(path, rgba):
    """An uncompressed little-endian TIFF with associated (premultiplied)
    alpha, ExtraSamples = 1, which Pillow cannot write (it opens it as RGBa)."""
    h, w, _ = rgba.shape
    pix = rgba.tobytes()
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value or offset
        (256, 4, 1, w), (257, 4, 1, h), (258, 3, 4, None), (259, 3, 1, 1), (262, 3, 1, 2),
        (273, 4, 1, None), (277, 3, 1, 4), (278, 4, 1, h), (279, 4, 1, len(pix)), (284, 3, 1, 1),
        (338, 3, 1, 1),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    bits_off = 8 + ifd_size
    pix_off = bits_off + 8
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if tag == 258:
            value = bits_off
        elif tag == 273:
            value = pix_off
        field = struct.pack("<HI", value, 0)[:4] if typ == 3 and count == 1 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, typ, count) + field
    out += struct.pack("<I", 0) + struct.pack("<4H", 8, 8, 8, 8) + pix
    with open(path, "wb") as f:
        f.write(bytes(out))


def pack_bits(values, depth):
    """Pack a row of small ints MSB first."""
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def jpeg_segments(data):
    """Split a JPEG into (marker, segment bytes) up to SOS, and the rest."""
    pos, segs = 2, []
    while True:
        marker = data[pos + 1]
        n = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xDA:
            return segs, data[pos:]
        segs.append((marker, data[pos:pos + 2 + n]))
        pos += 2 + n


def patch_jpeg(src, dst, drop_app0=False, adobe=None, ids=None):
    """Rewrite colour-space signals of a JPEG: drop the JFIF marker, add an
    Adobe marker with the given transform, or set the component ids."""
    data = open(src, "rb").read()
    segs, rest = jpeg_segments(data)
    out = bytearray(b"\xff\xd8")
    if adobe is not None:
        out += b"\xff\xee" + struct.pack(">H", 14) + b"Adobe" + bytes([0, 100, 0, 0, 0, 0, adobe])
    for marker, seg in segs:
        if marker == 0xE0 and drop_app0:
            continue
        if marker == 0xEE and adobe is not None:
            continue
        if marker in (0xC0, 0xC1, 0xC2) and ids:
            seg = bytearray(seg)
            for i, cid in enumerate(ids):
                seg[10 + 3 * i] = cid
            seg = bytes(seg)
        out += seg
    if ids:
        rest = bytearray(rest)
        for i, cid in enumerate(ids):  # first scan header
            rest[5 + 2 * i] = cid
        rest = bytes(rest)
    open(dst, "wb").write(bytes(out + rest))


def cut_jpeg(src, dst, keep):
    """Keep the headers and the first fraction keep of the first scan's
    entropy data, then end with EOI: libjpeg fills the rest with zeros
    (keep 0: no entropy data at all)."""
    with open(src, "rb") as f:
        data = f.read()
    sos = data.index(b"\xff\xda")
    start = sos + 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0]
    n = int((len(data) - 2 - start) * keep)
    body = data[start:start + n]
    if body.endswith(b"\xff"):
        body = body[:-1]
    with open(dst, "wb") as f:
        f.write(data[:start] + body + b"\xff\xd9")


def tga(imagetype, depth, w, h, body, flags=0x20, cmap=None, mapdepth=24, start=0, ident=b""):
    """A TGA file written field by field, for variants Pillow cannot save."""
    n = 0 if cmap is None else len(cmap) // (mapdepth // 8)
    head = struct.pack("<BBBHHBHHHHBB", len(ident), cmap is not None, imagetype, start, n,
                       mapdepth if cmap is not None else 0, 0, 0, w, h, depth, flags)
    return head + ident + (cmap or b"") + body


def write_bytes(data):
    def writer(path):
        with open(path, "wb") as f:
            f.write(data)
    return writer


def patch_gif_offset(src, dst, dx, dy):
    """Enlarge a single-frame GIF's logical screen by (dx, dy) and move the
    frame to (dx - 2, dy - 1), leaving uncovered borders on every side."""
    data = bytearray(open(src, "rb").read())
    w, h = struct.unpack("<HH", data[6:10])
    data[6:10] = struct.pack("<HH", w + dx, h + dy)
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while data[pos] == 0x21:  # skip extensions
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C
    data[pos + 1:pos + 5] = struct.pack("<HH", dx - 2, dy - 1)
    open(dst, "wb").write(bytes(data))


def main():
    if os.path.isdir(ROOT):
        for sub in ("formats", "resize", "transform"):
            shutil.rmtree(os.path.join(ROOT, sub), ignore_errors=True)
    fmt_dir = os.path.join(ROOT, "formats")
    os.makedirs(fmt_dir)
    manifest = []

    def save(name, is_lossless, im=None, writer=None, oriented=False, **kw):
        path = os.path.join(fmt_dir, name)
        if writer is not None:
            writer(path)
        else:
            im.save(path, **kw)
        ref = Image.open(path)
        if oriented:
            ref = ImageOps.exif_transpose(ref)
        rgb = np.array(ref.convert("RGB"))
        np.save(path + ".rgb.npy", rgb)
        manifest.append({"file": name, "lossless": is_lossless, "mode": Image.open(path).mode,
                         "width": rgb.shape[1], "height": rgb.shape[0], "oriented": oriented})

    rng = np.random.RandomState(1234)
    cat = photo("chelsea.png", (100, 20, 400, 240), (61, 45))     # odd size: chroma edges
    coffee = photo("coffee.png", (0, 0, 600, 400), (48, 32))
    astro = photo("astronaut.png", (100, 0, 400, 300), (40, 40))
    cat_a = np.array(cat)
    alpha = rng.randint(0, 256, cat_a.shape[:2]).astype(np.uint8)
    alpha[alpha < 80] = 0  # fully transparent pixels keep their colour in Pillow
    rgba = Image.fromarray(np.dstack([cat_a, alpha]), "RGBA")
    grey = cat.convert("L")
    pal = cat.quantize(colors=200, method=Image.Quantize.MEDIANCUT)

    # PNG
    save("rgb8.png", True, cat)
    save("rgba8.png", True, rgba)
    save("grey8.png", True, grey)
    save("la8.png", True, rgba.convert("LA"))
    save("grey1.png", True, grey.convert("1"))
    save("palette.png", True, pal)
    save("palette_trns.png", True, pal, transparency=bytes([255, 0, 128] + [255] * 20 + [0] * 5))
    save("rgb_trns.png", True, cat, transparency=tuple(int(v) for v in cat_a[3, 4]))
    g16 = (np.array(grey).astype(np.uint16) * 3 + rng.randint(0, 2, grey.size[::-1])).astype(np.uint16)
    g16[::4] *= 97  # some values above 255, which Pillow clips
    save("grey16.png", True, Image.fromarray(g16))
    h, w = cat_a.shape[:2]
    c16 = cat_a.astype(np.uint16) * 257 + rng.randint(0, 256, cat_a.shape).astype(np.uint16) % 257
    a16 = alpha.astype(np.uint16) * 257
    save("rgb16.png", True, writer=lambda p: write_png(p, [c16[y].astype(">u2").tobytes() for y in range(h)], w, h, 16, 2))
    save("rgba16.png", True, writer=lambda p: write_png(
        p, [np.dstack([c16, a16])[y].astype(">u2").tobytes() for y in range(h)], w, h, 16, 6))
    save("la16.png", True, writer=lambda p: write_png(
        p, [np.dstack([g16, a16])[y].astype(">u2").tobytes() for y in range(h)], w, h, 16, 4))
    save("grey16_trns.png", True, writer=lambda p: write_png(
        p, [g16[y].astype(">u2").tobytes() for y in range(h)], w, h, 16, 0,
        png_chunk(b"tRNS", struct.pack(">H", int(g16[0, 0])))))
    g_arr = np.array(grey)
    for depth in (2, 4):
        save(f"grey{depth}.png", True, writer=lambda p, d=depth: write_png(
            p, [pack_bits(g_arr[y] >> (8 - d), d) for y in range(h)], w, h, d, 0))
    save("palette4.png", True, cat.quantize(colors=16), bits=4)
    save("interlaced_rgb.png", True, writer=lambda p: write_png_interlaced(p, cat_a, 8, 2))
    save("interlaced_grey16.png", True, writer=lambda p: write_png_interlaced(p, g16, 16, 0))
    save("interlaced_grey16_trns.png", True, writer=lambda p: write_png_interlaced(
        p, g16, 16, 0, png_chunk(b"tRNS", struct.pack(">H", int(g16[0, 0])))))

    # JPEG (lossy: compared with a bound)
    save("q90_444.jpg", False, cat, quality=90, subsampling=0)
    save("q90_422.jpg", False, cat, quality=90, subsampling=1)
    save("q90_420.jpg", False, cat, quality=90, subsampling=2)
    save("q75_420_progressive.jpg", False, cat, quality=75, subsampling=2, progressive=True)
    save("q95_420_tiny.jpg", False, photo("coffee.png", (200, 100, 260, 150), (3, 5)), quality=95, subsampling=2)
    save("grey.jpg", False, grey, quality=90)
    save("cmyk.jpg", False, cat.convert("CMYK"), quality=95)
    cj = os.path.join(fmt_dir, "cmyk.jpg")
    save("ycck.jpg", False, writer=lambda p: patch_jpeg(cj, p, adobe=2))
    q444 = os.path.join(fmt_dir, "q90_444.jpg")
    save("adobe_rgb.jpg", False, writer=lambda p: patch_jpeg(q444, p, drop_app0=True, adobe=0))
    save("ids_rgb.jpg", False, writer=lambda p: patch_jpeg(q444, p, drop_app0=True, ids=b"RGB"))
    save("no_jfif.jpg", False, writer=lambda p: patch_jpeg(q444, p, drop_app0=True))
    big = photo("chelsea.png", (50, 0, 450, 300), (67, 51))
    with tempfile.TemporaryDirectory() as tmp:
        ppm = os.path.join(tmp, "in.ppm")
        big.save(ppm)
        scans = os.path.join(tmp, "scans.txt")
        with open(scans, "w") as f:
            f.write("0;\n1;\n2;\n")
        for name, args in [
            ("cjpeg_440.jpg", ["-sample", "1x2,1x1,1x1"]),
            ("cjpeg_411.jpg", ["-sample", "4x1,1x1,1x1"]),
            ("cjpeg_410.jpg", ["-sample", "4x2,1x1,1x1"]),
            ("cjpeg_mixed.jpg", ["-sample", "2x2,1x1,2x1"]),
            ("cjpeg_chroma_max.jpg", ["-sample", "1x1,2x2,1x1"]),
            ("cjpeg_3x2.jpg", ["-sample", "3x2,1x1,1x1"]),
            ("cjpeg_restart_rows.jpg", ["-restart", "1"]),
            ("cjpeg_restart_blocks.jpg", ["-restart", "3B", "-sample", "2x1,1x1,1x1"]),
            ("cjpeg_progressive_restart.jpg", ["-progressive", "-restart", "2B"]),
            ("cjpeg_optimize_q50.jpg", ["-optimize", "-quality", "50"]),
            ("cjpeg_q100_444.jpg", ["-quality", "100", "-sample", "1x1,1x1,1x1"]),
            ("cjpeg_rgb.jpg", ["-rgb"]),
            ("cjpeg_sequential_scans.jpg", ["-scans", scans]),
            ("cjpeg_grey_progressive.jpg", ["-grayscale", "-progressive"]),
        ]:
            save(name, False, writer=lambda p, a=args: subprocess.run(
                ["cjpeg", "-outfile", p] + a + [ppm], check=True))
    # Entropy data that runs out at a marker: libjpeg decodes the MCU where
    # it ran out with zero bits and leaves the rest of the interval grey.
    save("cmyk_no_data.jpg", False, writer=lambda p: cut_jpeg(cj, p, 0))
    save("baseline_cut.jpg", False, writer=lambda p: cut_jpeg(os.path.join(fmt_dir, "q90_420.jpg"), p, 0.45))
    save("restart_cut.jpg", False, writer=lambda p: cut_jpeg(os.path.join(fmt_dir, "cjpeg_restart_blocks.jpg"), p, 0.6))
    # A progressive file cut before its refinement scans complete: libjpeg
    # smooths the blocks whose low coefficients are incomplete.
    gp = os.path.join(fmt_dir, "cjpeg_grey_progressive.jpg")
    for keep in (0.1, 0.5, 0.8):
        save(f"progressive_grey_cut{int(keep * 100)}.jpg", False, writer=lambda p, k=keep: cut_jpeg(gp, p, k))
    # Files Pillow reads and the Go package refuses with a clear error.
    with tempfile.TemporaryDirectory() as tmp:
        ppm = os.path.join(tmp, "in.ppm")
        small_ppm = photo("chelsea.png", (50, 0, 450, 300), (16, 12))
        small_ppm.save(ppm)
        subprocess.run(["cjpeg", "-arithmetic", "-outfile", os.path.join(ROOT, "arithmetic.jpg"), ppm], check=True)
        small_ppm.save(os.path.join(ROOT, "animated.webp"), save_all=True, lossless=True,
                       append_images=[small_ppm.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
        small_ppm.convert("CMYK").save(os.path.join(ROOT, "cmyk.tif"))

    # GIF
    save("palette.gif", True, pal)
    save("palette_trns.gif", True, pal, transparency=7)
    save("grey.gif", True, grey)
    # A first frame smaller than the logical screen: Pillow fills the rest
    # with the transparent index, or index 0.
    for name, kw in (("offset.gif", {}), ("offset_trns.gif", {"transparency": 3})):
        src = os.path.join(fmt_dir, name)
        pal.save(src, **kw)
        save(name, True, writer=lambda p, s=src: patch_gif_offset(s, p, 5, 3))

    # BMP
    save("rgb24.bmp", True, coffee)
    save("palette8.bmp", True, coffee.quantize(colors=100))
    save("bilevel.bmp", True, coffee.convert("1"))
    save("grey8.bmp", True, coffee.convert("L"))
    save("rgba32.bmp", True, Image.fromarray(np.dstack([np.array(coffee), rng.randint(0, 256, (32, 48)).astype(np.uint8)]), "RGBA"))

    # TIFF
    save("rgb.tif", True, coffee)
    save("rgb_lzw.tif", True, coffee, compression="tiff_lzw")
    save("rgb_deflate.tif", True, coffee, compression="tiff_adobe_deflate")
    save("rgba.tif", True, Image.fromarray(np.dstack([np.array(coffee), rng.randint(0, 256, (32, 48)).astype(np.uint8)]), "RGBA"))
    a = rng.randint(0, 256, (32, 48, 1)).astype(np.uint16)
    a[:4] = 0
    a[4:8] = 255
    premul = np.dstack([np.array(coffee).astype(np.uint16) * a // 255, a]).astype(np.uint8)
    save("rgba_associated.tif", True, writer=lambda p: write_tiff_rgba_associated(p, premul))
    save("grey.tif", True, coffee.convert("L"), compression="packbits")
    save("grey16.tif", True, Image.fromarray((np.array(coffee.convert("L")).astype(np.uint16) * 5)))
    save("palette.tif", True, coffee.quantize(colors=64))

    # WebP
    save("lossless.webp", True, astro, lossless=True)
    save("lossless_rgba.webp", True, Image.fromarray(np.dstack([np.array(astro), rng.randint(0, 256, (40, 40)).astype(np.uint8)]), "RGBA"),
         lossless=True, exact=True)
    save("lossy.webp", False, cat, quality=80)
    save("lossy_rgba.webp", False, rgba, quality=80)

    # PPM, PGM, PBM (netpbm): what Pillow writes, then headers with
    # comments, other maxvals (scaled by Pillow) and the plain (text) forms.
    save("rgb.ppm", True, coffee)
    save("grey.pgm", True, coffee.convert("L"))
    save("bilevel.pbm", True, coffee.convert("1"))
    save("grey16.pgm", True, Image.fromarray(g16.astype(np.int32), "I"))
    cw, ch = coffee.size
    carr = np.array(coffee)
    save("comment.ppm", True, writer=write_bytes(b"P6 # a comment\n%d\t%d\r\n# another\n255\n" % (cw, ch) + carr.tobytes()))
    save("maxval100.ppm", True, writer=write_bytes(b"P6\n%d %d\n100\n" % (cw, ch) + carr.tobytes()))
    save("maxval4000.ppm", True, writer=write_bytes(
        b"P6\n%d %d\n4000\n" % (cw, ch) + (carr.astype(np.uint16) * 15 + 7).astype(">u2").tobytes()))
    garr = np.array(coffee.convert("L")).astype(np.uint16)
    save("maxval1000.pgm", True, writer=write_bytes(b"P5\n%d %d\n1000\n" % (cw, ch) + (garr * 4).astype(">u2").tobytes()))
    save("plain.pgm", True, writer=write_bytes(b"P2\n# plain grey\n%d %d 300\n" % (cw, ch) + b"\n".join(
        b" ".join(b"%d" % (v + v // 6) for v in row) for row in garr) + b"\n"))
    save("plain.ppm", True, writer=write_bytes(b"P3 %d %d 255\n" % (cw, ch) + b"\n".join(
        b" ".join(b"%d" % v for v in row.ravel()) + b" # row" for row in carr) + b"\n"))
    bits = (np.array(coffee.convert("1")) == 0).astype(np.uint8)
    save("plain.pbm", True, writer=write_bytes(b"P1\n%d %d\n" % (cw, ch) + b"\n".join(
        b"".join(b"%d" % v for v in row) for row in bits) + b"\n"))

    # TGA: what Pillow writes (bottom-up, raw and RLE), then 16-bit colour,
    # other orientations, palettes with an offset or 16-bit entries,
    # indices past the palette, an ID field and RLE packets across rows.
    for mode in ("RGB", "RGBA", "L", "LA", "P", "1"):
        src = pal if mode == "P" else (rgba if mode in ("RGBA", "LA") else cat)
        save(f"{'bilevel' if mode == '1' else mode.lower()}.tga", True, src.convert(mode))
        if mode != "1":
            save(f"{mode.lower()}_rle.tga", True, src.convert(mode), compression="tga_rle")
    tw, th = 5, 3
    bgr5 = struct.pack("<15H", *[(i * 2731 + 97) & 0xFFFF for i in range(tw * th)])
    save("bgr5.tga", True, writer=write_bytes(tga(2, 16, tw, th, bgr5)))
    grey15 = bytes(range(7, 7 + 3 * tw * th, 3))
    save("rtl_bottomup.tga", True, writer=write_bytes(tga(3, 8, tw, th, grey15, flags=0x10)))
    save("rtl.tga", True, writer=write_bytes(tga(3, 8, tw, th, grey15, flags=0x30)))
    save("palette_offset.tga", True, writer=write_bytes(tga(
        1, 8, tw, th, bytes([0, 1, 2, 3, 4, 5, 6, 7, 200, 9, 3, 2, 1, 0, 255]), cmap=bytes(range(40, 58)), start=2,
        ident=b"an id field")))
    save("palette16.tga", True, writer=write_bytes(tga(
        1, 8, tw, th, bytes(i % 4 for i in range(tw * th)), cmap=struct.pack("<4H", 0x7FFF, 0x0421, 0x1234, 0xFC00),
        mapdepth=16)))
    rle = bytes([0x06]) + bytes(range(21)) + bytes([0x82, 9, 8, 7]) + bytes([0x84, 1, 2, 3])  # literal across rows
    save("rle_across_rows.tga", True, writer=write_bytes(tga(10, 24, tw, 3, rle)))

    # EXIF orientation: Decode with Orient must match exif_transpose.
    small = photo("astronaut.png", (50, 0, 450, 250), (23, 14))
    for o in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = o
        save(f"orient{o}.png", True, small, oriented=True, exif=exif.tobytes())
    # PNG orientation also comes from ImageMagick's raw profile text or XMP.
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = exif.tobytes().hex()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(raw) // 2:8d}\n" + raw, zip=True)
    save("orient6_raw_profile.png", True, small, oriented=True, pnginfo=info)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf='
                  '"http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff='
                  '"http://ns.adobe.com/tiff/1.0/" tiff:Orientation="3"/></rdf:RDF></x:xmpmeta>', zip=True)
    save("orient3_xmp.png", True, small, oriented=True, pnginfo=info)
    save("orient6.jpg", False, small, oriented=True, quality=90, exif=exif.tobytes())
    exif[0x0112] = 8
    save("orient8.webp", True, small, oriented=True, lossless=True, exif=exif.tobytes())
    # Pillow 9.4 already applies a TIFF's orientation in open() (and
    # exif_transpose would apply it twice), so the reference is open().
    save("orient5.tif", True, small, tiffinfo={0x0112: 5})

    with open(os.path.join(fmt_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)

    # Resize: Pillow's BILINEAR on the synthetic pattern.
    rs_dir = os.path.join(ROOT, "resize")
    os.makedirs(rs_dir)
    cases = [
        ((1, 1), (9, 7)), ((5, 3), (40, 17)), ((97, 61), (13, 9)), ((300, 200), (100, 67)),
        ((350, 250), (70, 50)), ((7, 7), (3, 3)), ((64, 64), (64, 31)), ((64, 64), (17, 64)),
        ((1, 50), (7, 300)), ((50, 1), (300, 7)), ((451, 301), (150, 100)), ((333, 101), (229, 77)),
        ((2, 3), (1, 1)), ((640, 9), (5, 4)),
    ]
    for (w, h), (ow, oh) in cases:
        out = Image.fromarray(pattern(w, h)).resize((ow, oh), Image.Resampling.BILINEAR)
        np.save(os.path.join(rs_dir, f"{w}x{h}_{ow}x{oh}.npy"), np.array(out))

    # Transform: torchvision on Pillow images.
    tr_dir = os.path.join(ROOT, "transform")
    os.makedirs(tr_dir)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    table = T.Compose([T.ToTensor(), T.Normalize(mean, std)])(
        Image.fromarray(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)))
    np.save(os.path.join(tr_dir, "norm_table.npy"), table.numpy()[:, 0, :].astype(np.float32))
    src = os.path.join(fmt_dir, "rgb8.png")
    for resize, crop in ((40, 32), (24, 32), (25, 32), (45, 45), (61, 7)):
        tf = T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(crop),
                        T.ToTensor(), T.Normalize(mean, std)])
        t = tf(Image.open(src).convert("RGB"))
        np.save(os.path.join(tr_dir, f"rgb8_r{resize}_c{crop}.npy"), t.numpy().astype(np.float32))
    default = T.Compose([T.Resize(232, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(224)])
    for (w, h) in ((451, 301), (1, 5000), (5000, 1), (1, 1)):
        out = np.array(default(Image.fromarray(pattern(w, h))))
        if w == 1:
            out = out[:, :1]  # every column of a 1-pixel-wide source resizes alike
        if h == 1:
            out = out[:1]
        np.save(os.path.join(tr_dir, f"pattern_{w}x{h}_default.npy"), out)
    # timm's evaluation transform for 224 and crop_pct 0.875: Resize(256).
    timm = T.Compose([T.Resize(int(np.floor(224 / 0.875)), interpolation=T.InterpolationMode.BILINEAR),
                      T.CenterCrop(224)])
    for (w, h) in ((451, 301), (301, 451), (640, 480), (255, 700)):
        np.save(os.path.join(tr_dir, f"pattern_{w}x{h}_timm.npy"), np.array(timm(Image.fromarray(pattern(w, h)))))
    # The geometry torchvision computes (resized size, crop offsets after
    # its zero padding), for sizes that truncate, round halves and pad.
    from torchvision.transforms import functional as F
    geometry = []
    for (w, h, resize, crop) in ((451, 301, 232, 224), (451, 301, 256, 224), (1, 5000, 232, 224),
                                 (5000, 1, 256, 224), (640, 480, 0, 224), (100, 50, 0, 224),
                                 (225, 300, 225, 224), (226, 227, 0, 224), (333, 101, 99, 120),
                                 (4000, 3000, 232, 0), (7, 3, 5, 4)):
        rh, rw = (h, w) if resize == 0 else F._compute_resized_output_size((h, w), [resize])
        ch, cw = (rh, rw) if crop == 0 else (crop, crop)
        pl, pt = max(cw - rw, 0) // 2, max(ch - rh, 0) // 2
        ph, pw = rh + max(ch - rh, 0), rw + max(cw - rw, 0)
        top, left = int(round((ph - ch) / 2.0)) - pt, int(round((pw - cw) / 2.0)) - pl
        geometry.append({"w": w, "h": h, "resize": resize, "crop": crop,
                         "resized_w": rw, "resized_h": rh, "left": left, "top": top})
    with open(os.path.join(tr_dir, "geometry.json"), "w") as f:
        json.dump(geometry, f, indent=1)


if __name__ == "__main__":
    main()
