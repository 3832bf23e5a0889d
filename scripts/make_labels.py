#!/usr/bin/env python3
"""Writes pkg/registry/labels/imagenet1k.txt: ImageNet-1k's 1000 class names
in logit order, one a line, as Debian's torchvision ships them
(torchvision.models._meta._IMAGENET_CATEGORIES).

Run from anywhere: /usr/bin/python3 scripts/make_labels.py
"""
import os
import sys

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__

from torchvision.models._meta import _IMAGENET_CATEGORIES  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pkg", "registry", "labels", "imagenet1k.txt")


def main():
    names = list(_IMAGENET_CATEGORIES)
    if len(names) != 1000:
        sys.exit(f"expected 1000 names, torchvision has {len(names)}")
    for i, n in enumerate(names):
        if not n or n != n.strip() or "\n" in n or "\r" in n:
            sys.exit(f"name {i} {n!r} cannot be written one a line")
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        for n in names:
            f.write(n + "\n")
    print(f"wrote {len(names)} names to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
