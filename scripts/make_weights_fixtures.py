#!/usr/bin/env python3
"""Writes the checkpoint fixtures of pkg/checkpoint/testdata with PyTorch.

Run from the repository root: /usr/bin/python3 scripts/make_weights_fixtures.py

Every torch case is saved by torch.save itself (legacy and/or zip format),
so the Go loader is tested against real PyTorch output. The safetensors
cases are written by save_safetensors below, from the format's
specification (the safetensors package is not installed here).
expected.json records, for each fixture that loads, the keys in order with
the shape and float32 values PyTorch reports (t.float().contiguous()),
num_batches_tracked left out.
"""
import collections
import io
import json
import os
import pickle
import sys
import tarfile
import zipfile

import torch

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import save_legacy  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pkg", "checkpoint", "testdata")

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.float64: "F64", torch.int64: "I64"}


def small_net_state():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, bias=False),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    bn = net[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    bn.num_batches_tracked.fill_(123)
    return net.state_dict()


def views_state():
    base = torch.arange(24, dtype=torch.float32) / 8 - 1
    shared = torch.linspace(-2, 2, 6)
    sd = collections.OrderedDict()
    sd["offset"] = base[5:17].view(3, 4)  # storage offset 5
    sd["transposed"] = base.view(4, 6).t()  # strides (1, 6)
    sd["strided"] = base.view(2, 3, 4)[:, ::2, 1:3]  # offset and gaps
    sd["shared_a"] = shared  # the same storage, entirely, twice
    sd["shared_b"] = shared
    sd["expanded"] = torch.tensor([1.0, 2.0, 3.0]).view(3, 1).expand(3, 4)  # stride 0
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["channels_last"] = (torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
                           .contiguous(memory_format=torch.channels_last))
    sd["half_t"] = (base.view(4, 6) * 3).half().t()
    sd["bf16_slice"] = (base * 5).bfloat16()[3:9]
    return sd


def record(expected, name, sd):
    expected[name] = [
        {"key": k, "shape": list(v.shape), "data": [float(x) for x in v.float().contiguous().view(-1)]}
        for k, v in sd.items() if not k.endswith("num_batches_tracked")
    ]


def save(name, obj, legacy):
    path = os.path.join(OUT, name)
    if legacy:
        save_legacy(obj, path)  # byte-stable storage keys
    else:
        torch.save(obj, path)


def save_safetensors(path, tensors, metadata=None, data_order=None):
    """Writes tensors as safetensors: an 8-byte little-endian header length,
    the JSON header (entries in the dict's order, padded with spaces to a
    multiple of 8 bytes as the Rust library does), then each tensor's
    little-endian bytes, in data_order (default: the dict's order)."""
    assert sys.byteorder == "little"
    header, blobs, offset = {}, {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for k in data_order or list(tensors):
        v = tensors[k].contiguous()
        blobs[k] = v.reshape(-1).view(torch.uint8).numpy().tobytes()
    offsets = {}
    for k in data_order or list(tensors):
        offsets[k] = [offset, offset + len(blobs[k])]
        offset += len(blobs[k])
    for k, v in tensors.items():
        header[k] = {"dtype": SAFETENSORS_DTYPES[v.dtype], "shape": list(v.shape), "data_offsets": offsets[k]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(os.path.join(OUT, path), "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for k in data_order or list(tensors):
            f.write(blobs[k])


def element_sizes(path):
    """Maps the storage keys of a zip checkpoint to their element sizes."""
    sizes = {}

    class Reader(pickle.Unpickler):
        def persistent_load(self, pid):
            _, storage_type, key, _, numel = pid
            sizes[key] = torch.empty(0, dtype=storage_type.dtype).element_size()
            return torch.empty(numel, dtype=storage_type.dtype).storage()

    with zipfile.ZipFile(path) as z:
        prefix = z.namelist()[0].split("/")[0]
        Reader(io.BytesIO(z.read(prefix + "/data.pkl"))).load()
    return sizes


def big_endian_copy(src, dst):
    """Rewrites a zip checkpoint as a big-endian machine would write it."""
    sizes = element_sizes(src)
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        prefix = z.namelist()[0].split("/")[0]
        for info in z.infolist():
            data = z.read(info)
            if info.filename.startswith(prefix + "/data/"):
                size = sizes[info.filename.rsplit("/", 1)[1]]
                data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
            out.writestr(info.filename.replace(prefix, "big_endian", 1), data)
        out.writestr("big_endian/byteorder", "big")


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {}

    sd = small_net_state()
    for legacy, name in [(True, "net_legacy.pth"), (False, "net_zip.pth")]:
        save(name, sd, legacy)
        record(expected, name, sd)

    for dtype, legacy, name in [
        (torch.float16, True, "net_f16_legacy.pth"),
        (torch.bfloat16, False, "net_bf16_zip.pth"),
        (torch.bfloat16, True, "net_bf16_legacy.pth"),
        (torch.float64, False, "net_f64_zip.pth"),
    ]:
        conv = collections.OrderedDict(
            (k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())
        save(name, conv, legacy)
        record(expected, name, conv)

    views = views_state()
    for legacy, name in [(True, "views_legacy.pth"), (False, "views_zip.pth")]:
        save(name, views, legacy)
        record(expected, name, views)

    wrapped = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    save("wrapped_model_zip.pth", {"model": wrapped, "epoch": 3, "args": argparse_like()}, False)
    record(expected, "wrapped_model_zip.pth", sd)
    save("wrapped_state_dict_legacy.pth", {"state_dict": wrapped, "optimizer": {"lr": 0.1}}, True)
    record(expected, "wrapped_state_dict_legacy.pth", sd)

    save("int_tensor_zip.pth", {"w": torch.ones(2), "index": torch.arange(3, dtype=torch.int32)}, False)
    save("nonfinite_legacy.pth", {"w": torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])}, True)
    save("module_legacy.pth", torch.nn.Linear(2, 1), True)
    save("not_a_dict_zip.pth", [torch.ones(1)], False)

    torch.jit.script(torch.nn.Linear(2, 1)).save(os.path.join(OUT, "torchscript.pt"))

    # A tar file with the members of PyTorch's pre-0.1.10 format.
    with tarfile.open(os.path.join(OUT, "old_tar.pth"), "w") as tar:
        for member in ["sys_info", "pickle", "tensors", "storages"]:
            info = tarfile.TarInfo(member)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"\0\0\0\0"))

    big_endian_copy(os.path.join(OUT, "net_zip.pth"), os.path.join(OUT, "net_bigendian_zip.pth"))
    record(expected, "net_bigendian_zip.pth", sd)

    # safetensors: header in state-dict order, data in reverse order,
    # num_batches_tracked as I64, metadata.
    save_safetensors("net.safetensors", sd, metadata={"format": "pt", "source": "make_weights_fixtures.py"},
                     data_order=list(sd)[::-1])
    record(expected, "net.safetensors", sd)
    dtypes = [torch.float16, torch.bfloat16, torch.float64, torch.float32]
    mixed = collections.OrderedDict(
        (k, v.to(dtypes[i % len(dtypes)]) if v.is_floating_point() else v) for i, (k, v) in enumerate(sd.items()))
    save_safetensors("module_mixed.safetensors", collections.OrderedDict(("module." + k, v) for k, v in mixed.items()))
    record(expected, "module_mixed.safetensors", mixed)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, sort_keys=True)


class Namespace:
    """Stands for argparse.Namespace, which training scripts often save."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def argparse_like():
    return Namespace(lr=0.1, arch="res2net50_26w_4s")


if __name__ == "__main__":
    main()
