"""Independent PyTorch definition of the timm Res2Net family, timm's key layout.

Written from testdata/reference/FAMILY.md (and FACTS.md for the block
semantics), not from timm's code. Module names are chosen so that
``state_dict()`` keys are exactly those of timm's checkpoints:

    conv1, bn1                        7x7 stem (s2, pad 3), BN; ReLU; maxpool 3/2/1
    conv1.{0,1,3,4,6}, bn1            deep stem: 3x3 s2 conv, BN, ReLU, 3x3, BN,
                                      ReLU, 3x3, then bn1, ReLU, the same maxpool
    layerS.B.conv1, .bn1              1x1 reduce to width*scale, BN, ReLU
    layerS.B.convs.I, .bns.I          branch I: 3x3 conv (block stride, groups =
                                      cardinality), BN, ReLU
    layerS.B.conv3, .bn3              1x1 expand to 4*planes, BN
    layerS.B.downsample.{0,1}         conv shortcut: 1x1 conv (stride), BN
    layerS.B.downsample.{0,1,2}       avg-pool shortcut: AvgPool2d(2, stride,
                                      ceil_mode=True, count_include_pad=False)
                                      (Identity at stride 1), 1x1 conv, BN
    fc                                Linear(4 * planes[3], classes)

Block semantics are the Holocron ones (scripts/reference.py): split width
floor(planes * base_width / 64) * cardinality; in a stage's first block
(which has the shortcut) branch i sees split i alone and the last split is
AvgPool2d(3, stride, 1)'d; elsewhere branch i sees out[i-1] + split[i] and
the last split passes through; output ReLU(expand + shortcut).

Usage (self-check: every variant's keys, shapes, order and parameter count
against testdata/reference/timm/*.tsv):

    /usr/bin/python3 scripts/timm_reference.py
"""

import os
import sys

import torch
from torch import nn

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTINGS = os.path.join(ROOT, "testdata", "reference", "timm")
EXPANSION = 4
PLANES = (64, 128, 256, 512)


def timm_config(layers, base_width, scale, cardinality=1, deep=False):
    """A published variant: ImageNet-1k, planes 64..512, 64-channel stem."""
    return dict(layers=layers, planes=PLANES, stem="deep" if deep else "7x7",
                stem_width=32 if deep else 0, stem_channels=64, base_width=base_width,
                scale=scale, cardinality=cardinality,
                shortcut="avgpool" if deep else "conv", classes=1000)


L50, L101 = (3, 4, 6, 3), (3, 4, 23, 3)

# name: (config, learnable parameters, from FAMILY.md)
VARIANTS = {
    "res2net50_26w_4s": (timm_config(L50, 26, 4), 25_699_120),
    "res2net50_48w_2s": (timm_config(L50, 48, 2), 25_287_304),
    "res2net50_14w_8s": (timm_config(L50, 14, 8), 25_059_816),
    "res2net50_26w_6s": (timm_config(L50, 26, 6), 37_051_448),
    "res2net50_26w_8s": (timm_config(L50, 26, 8), 48_403_776),
    "res2net101_26w_4s": (timm_config(L101, 26, 4), 45_206_688),
    "res2next50": (timm_config(L50, 4, 4, cardinality=8), 24_671_464),
    "res2net50d": (timm_config(L50, 26, 4, deep=True), 25_718_352),
    "res2net101d": (timm_config(L101, 26, 4, deep=True), 45_225_920),
}


def tiny(planes, stem_channels, base_width, scale, cardinality=1, layers=L50, deep=False):
    return dict(layers=layers, planes=planes, stem="deep" if deep else "7x7",
                stem_width=4 if deep else 0, stem_channels=stem_channels, base_width=base_width,
                scale=scale, cardinality=cardinality,
                shortcut="avgpool" if deep else "conv", classes=10)


NARROW = (4, 8, 16, 32)

# Tiny widths, one per structural kind; pkg/model's tinyKinds() is the same list.
TINY_KINDS = {
    "26w_4s": tiny(NARROW, 8, 26, 4),
    "48w_2s": tiny(NARROW, 8, 48, 2),
    "14w_8s": tiny((8, 16, 32, 64), 16, 14, 8, layers=(2, 2, 2, 2)),
    # Groups of 1, 2, 4 and 8 channels.
    "next_16w_4s_8x": tiny(NARROW, 8, 16, 4, cardinality=8, layers=(2, 2, 2, 2)),
    "d": tiny(NARROW, 8, 26, 4, deep=True),
    "101": tiny(NARROW, 8, 26, 4, layers=L101),
}


class Bottle2neck(nn.Module):
    def __init__(self, cin, planes, stride, base_width, scale, cardinality, shortcut):
        super().__init__()
        width = planes * base_width // 64 * cardinality
        out = planes * EXPANSION
        self.width = width
        self.scale = scale
        # The projection shortcut and the unit's first-block mode go together.
        self.first = stride != 1 or cin != out
        # Registration order is state-dict order: conv1, bn1, convs, bns,
        # conv3, bn3, downsample.
        self.conv1 = nn.Conv2d(cin, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        branches = max(1, scale - 1)
        self.convs = nn.ModuleList([
            nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
            for _ in range(branches)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(branches)])
        self.pool = nn.AvgPool2d(3, stride, 1) if self.first and scale > 1 else None
        self.conv3 = nn.Conv2d(width * scale, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample = None
        if self.first and shortcut == "avgpool":
            pool = (nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
                    if stride != 1 else nn.Identity())
            self.downsample = nn.Sequential(pool, nn.Conv2d(cin, out, 1, bias=False), nn.BatchNorm2d(out))
        elif self.first:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        splits = torch.split(self.relu(self.bn1(self.conv1(x))), self.width, dim=1)
        outs = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            inp = splits[i] if (i == 0 or self.first) else outs[-1] + splits[i]
            outs.append(self.relu(bn(conv(inp))))
        if self.scale > 1:
            outs.append(self.pool(splits[-1]) if self.pool is not None else splits[-1])
        y = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class Res2Net(nn.Module):
    def __init__(self, layers, planes, stem, stem_width, stem_channels, base_width, scale,
                 cardinality, shortcut, classes):
        super().__init__()
        if stem == "deep":
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(stem_width), nn.ReLU(),
                nn.Conv2d(stem_width, stem_width, 3, padding=1, bias=False),
                nn.BatchNorm2d(stem_width), nn.ReLU(),
                nn.Conv2d(stem_width, stem_channels, 3, padding=1, bias=False))
        else:
            self.conv1 = nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.act1 = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = stem_channels
        for s, (n, p) in enumerate(zip(layers, planes)):
            blocks = []
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(Bottle2neck(cin, p, stride, base_width, scale, cardinality, shortcut))
                cin = p * EXPANSION
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def features(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for s in range(1, 5):
            x = getattr(self, f"layer{s}")(x)
        return x

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def eval_transform():
    """timm's evaluation transform for every variant (FAMILY.md): crop_pct
    0.875, so Resize(256, BILINEAR), CenterCrop(224), ImageNet mean/std.
    Apply to ``Image.open(p).convert("RGB")``."""
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(256, interpolation=T.InterpolationMode.BILINEAR),
        T.CenterCrop(224),
        T.ToTensor(),
        T.Normalize(reference.IMAGENET_MEAN, reference.IMAGENET_STD),
    ])


def is_residual_bn(name):
    """The BNs whose output is added to a shortcut: bn3 and the shortcut's BN."""
    return name.endswith(".bn3") or (".downsample." in name)


def seeded(cfg, seed, calib_shape):
    """Eval-mode model of cfg with reference.seeded_init's weights and statistics."""
    model = Res2Net(**cfg)
    reference.seeded_init(model, seed, calib_shape, residual_bn=is_residual_bn)
    return model.eval()


def build_for(sd):
    """Eval-mode model of the published variant whose state dict has sd's
    keys and shapes (classes from fc), loaded with sd."""
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    for name, (cfg, _) in VARIANTS.items():
        cfg = dict(cfg, classes=sd["fc.weight"].shape[0])
        model = Res2Net(**cfg)
        if {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes:
            model.load_state_dict(sd)
            return model.eval()
    raise ValueError("state dict matches no published timm variant")


def check_against_listing(name):
    """Assert the variant's keys, shapes, dtypes (in order) and parameters match its listing."""
    cfg, params = VARIANTS[name]
    model = Res2Net(**cfg)
    with open(os.path.join(LISTINGS, f"{name}_state_dict.tsv")) as f:
        header = f.readline()
        assert header.startswith("# key"), header
        want = [tuple(line.rstrip("\n").split("\t")) for line in f]
    got = [(k, "scalar" if v.dim() == 0 else "x".join(str(d) for d in v.shape),
            str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    assert got == want, f"{name}: state dict differs from its listing"
    n = reference.param_count(model)
    assert n == params, f"{name}: {n} parameters, want {params}"
    assert f"{params} learnable" in header, header
    return model


def main():
    for name in VARIANTS:
        check_against_listing(name)
    for kind, cfg in TINY_KINDS.items():
        model = Res2Net(**cfg).eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, 35, 29)).shape == (1, 10), kind
    print(f"ok: {len(VARIANTS)} variants match their listings in {LISTINGS}")
    for kind, cfg in TINY_KINDS.items():
        print(f"  tiny {kind}: {reference.param_count(Res2Net(**cfg)):,} params")


if __name__ == "__main__":
    sys.exit(main())
