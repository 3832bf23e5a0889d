"""Independent PyTorch definition of Res2Net-50 (26w x 4s), Holocron semantics.

This is the reference the Go implementation is checked against. It restates
the published model (see testdata/reference/FACTS.md) with module names
chosen so that ``state_dict()`` keys are exactly those of the published
checkpoint:

    features.0/1/2/3                 stem: conv 7x7 s2, BN, ReLU, maxpool 3/2/1
    features.{4..7}.B.conv.{0..5}    bottleneck: 1x1, BN, ReLU, Res2 unit, 1x1, BN
    features.S.B.conv.3.conv.I.{0,1} Res2 branch I: 3x3 conv, BN (ReLU at .2)
    features.S.0.downsample.{0,1}    first block of each stage: 1x1 conv, BN
    head                             Linear(4 * planes[3], classes)

The network is parametrised by (layers, planes, stem_channels, base_width,
scale, classes), so a tiny configuration with the same structure can be used
for small committed fixtures.

``seeded_init`` gives a deterministic random initialisation with non-trivial
BatchNorm parameters and running statistics that keep activations O(1)
through all blocks, so logits are well spread and any wiring mistake on the Go
side shows up as a large difference.

Usage (self-check; asserts the full config matches the published state dict):

    /usr/bin/python3 scripts/reference.py
"""

import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

STATE_DICT_TSV = os.environ.get(
    "RES2NET_STATE_DICT_TSV", "/work/shared/reference/res2net50_26w_4s_state_dict.tsv"
)

# Published model: Res2Net-50 26w x 4s, 10 Imagenette classes.
FULL = dict(
    layers=(3, 4, 6, 3),
    planes=(64, 128, 256, 512),
    stem_channels=64,
    base_width=26,
    scale=4,
    classes=10,
)

# Same structure, tiny widths (Res2 widths 1, 3, 6, 13) for committed fixtures.
TINY = dict(
    layers=(3, 4, 6, 3),
    planes=(4, 8, 16, 32),
    stem_channels=8,
    base_width=26,
    scale=4,
    classes=10,
)

FULL_PARAMS = 23_670_610
EXPANSION = 4


# Imagenette classes in logit order.
CLASSES = (
    "tench", "English springer", "cassette player", "chain saw", "church",
    "French horn", "garbage truck", "gas pump", "golf ball", "parachute",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_bn_relu(cin, cout, kernel, stride, relu=True):
    """conv (no bias, 'same' padding) + BN (+ ReLU), as a Sequential 0/1/2."""
    mods = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        mods.append(nn.ReLU(inplace=True))
    return nn.Sequential(*mods)


class Res2Unit(nn.Module):
    """The multi-scale unit ``conv.3``.

    Splits the input into ``scale`` groups of ``width`` channels. Branch i
    (i < scale-1) is a 3x3 conv-BN-ReLU with the block's stride. In the first
    block of a stage (``first``) branch i sees split i alone and the last
    split goes through AvgPool2d(3, stride, 1) (count_include_pad=True, even
    when stride is 1). In other blocks branch i sees out[i-1] + split[i] and
    the last split passes through unchanged.
    """

    def __init__(self, width, scale, stride, first):
        super().__init__()
        self.width = width
        self.first = first
        self.conv = nn.ModuleList(
            [conv_bn_relu(width, width, 3, stride) for _ in range(scale - 1)]
        )
        self.pool = nn.AvgPool2d(3, stride, 1) if first else None

    def forward(self, x):
        splits = torch.split(x, self.width, dim=1)
        outs = []
        for i, branch in enumerate(self.conv):
            inp = splits[i] if (self.first or i == 0) else outs[-1] + splits[i]
            outs.append(branch(inp))
        last = splits[-1]
        outs.append(self.pool(last) if self.first else last)
        return torch.cat(outs, dim=1)


class Bottle2neck(nn.Module):
    """Res2Net bottleneck: ``conv`` = [1x1, BN, ReLU, Res2Unit, 1x1, BN]."""

    def __init__(self, cin, planes, stride, downsample, base_width, scale):
        super().__init__()
        width = planes * base_width // 64
        out = planes * EXPANSION
        self.conv = nn.Sequential(
            nn.Conv2d(cin, width * scale, 1, bias=False),
            nn.BatchNorm2d(width * scale),
            nn.ReLU(inplace=True),
            Res2Unit(width, scale, stride, first=downsample),
            nn.Conv2d(width * scale, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.downsample = None
        if downsample:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv(x) + identity)


class GlobalAvgPool(nn.Module):
    """Mean over H and W, flattened to N x C."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def build(layers, planes, stem_channels, base_width, scale, classes):
    """Return nn.Sequential(features, pool, head) for the given config."""
    feats = [
        nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(stem_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    cin = stem_channels
    for s, (n, p) in enumerate(zip(layers, planes)):
        stride = 1 if s == 0 else 2
        blocks = []
        for b in range(n):
            blocks.append(
                Bottle2neck(cin, p, stride if b == 0 else 1, b == 0, base_width, scale)
            )
            cin = p * EXPANSION
        feats.append(nn.Sequential(*blocks))
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(*feats),
            pool=GlobalAvgPool(),
            head=nn.Linear(cin, classes),
        )
    )


def build_full():
    return build(**FULL)


def build_tiny():
    return build(**TINY)


def param_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def eval_transform():
    """torchvision transform the published accuracy was measured with.

    Apply to ``Image.open(p).convert("RGB")``; gives a float32 3x224x224 tensor.
    """
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(232, interpolation=T.InterpolationMode.BILINEAR),
        T.CenterCrop(224),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def load_state_dict(path):
    """torch.load a checkpoint; unwrap {"state_dict"|"model": sd} and "module."."""
    sd = torch.load(path, map_location="cpu")
    # As pkg/checkpoint (unwrap, maxWrapDepth) does: "state_dict" before
    # "model", up to 4 wrappers deep.
    for _ in range(4):
        key = next((k for k in ("state_dict", "model")
                    if isinstance(sd, dict) and isinstance(sd.get(k), dict)), None)
        if key is None:
            break
        sd = sd[key]
    return {
        (k[len("module."):] if k.startswith("module.") else k):
            (v.float() if v.is_floating_point() else v)
        for k, v in sd.items()
    }


def build_for(sd):
    """Eval-mode model for a state dict: full or tiny widths, classes from head."""
    cfg = dict(FULL if sd["features.0.weight"].shape[0] == FULL["stem_channels"] else TINY)
    cfg["classes"] = sd["head.weight"].shape[0]
    model = build(**cfg)
    model.load_state_dict(sd)
    return model.eval()


def _is_block_output_bn(name):
    """Last BN of a bottleneck branch or of a downsample (added residually)."""
    return name.endswith("conv.5") or name.endswith("downsample.1")


def calibration_batch(shape, generator):
    """Half i.i.d. normal noise, half smooth noise (like natural images).

    Calibrating on white noise alone lets activations of spatially correlated
    inputs (photos) grow tenfold through the network; the smooth half keeps
    both kinds of input O(1).
    """
    n, c, h, w = shape
    white = torch.randn((n // 2, c, h, w), generator=generator)
    low = torch.randn((n - n // 2, c, max(h // 16, 2), max(w // 16, 2)), generator=generator)
    smooth = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return torch.cat([white, smooth / smooth.std()])


@torch.no_grad()
def seeded_init(model, seed, calib_shape, residual_bn=None):
    """Deterministic init with realistic, non-trivial BatchNorm.

    1. Conv weights: Kaiming normal (fan_in, ReLU gain); head: normal with a
       std that spreads logits over several units.
    2. Running statistics are calibrated on a seeded ``calibration_batch`` of
       ``calib_shape`` in train mode (cumulative average), then perturbed
       (mean shifted by 0.1 std, var scaled by 0.8..1.25) so BN is not an
       exact normaliser and folding mistakes are visible.
    3. gamma: 0.5..1.0 for the BN that feeds a residual sum, 0.8..1.5
       otherwise; beta: -0.2..0.2 (0..0.3 before ReLU so units stay alive).
    num_batches_tracked gets a seeded int64 value (ignored by consumers).
    ``residual_bn(name)`` tells the BNs that feed a residual sum apart by
    module name (Holocron's names by default).
    """
    residual_bn = residual_bn or _is_block_output_bn
    g = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            # in_channels / groups: a grouped conv's fan-in is one group's.
            fan_in = m.weight.shape[1] * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            if residual_bn(name):
                m.weight.copy_(uniform(m.weight.shape, 0.5, 1.0))
                m.bias.copy_(uniform(m.bias.shape, -0.2, 0.2))
            else:
                m.weight.copy_(uniform(m.weight.shape, 0.8, 1.5))
                m.bias.copy_(uniform(m.bias.shape, 0.0, 0.3))
        elif isinstance(m, nn.Linear):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (4.0 / m.in_features) ** 0.5)
            m.bias.copy_(uniform(m.bias.shape, -0.5, 0.5))

    # Calibrate running stats so every BN sees roughly normalised inputs.
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batch
    model.train()
    model(calibration_batch(calib_shape, g))
    model.eval()
    for m in bns:
        m.momentum = 0.1
        std = m.running_var.sqrt()
        m.running_mean.add_(0.1 * std * torch.randn(m.running_mean.shape, generator=g))
        m.running_var.mul_(uniform(m.running_var.shape, 0.8, 1.25))
        # Round the calibrated stats to a coarse grid (relative 2^-10) so the
        # saved values do not depend on the last bits of the calibration run.
        m.running_mean.copy_(m.running_mean.half().float())
        m.running_var.copy_(m.running_var.half().float())
        m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=g)))
    return model


def check_full_against_tsv(path=STATE_DICT_TSV):
    """Assert full-config keys, shapes, dtypes (in order) equal the published TSV."""
    model = build_full()
    sd = model.state_dict()
    want = []
    with open(path) as f:
        header = f.readline().split()
        assert header == ["key", "shape", "dtype"], header
        for line in f:
            key, shape, dtype = line.rstrip("\n").split("\t")
            want.append((key, shape, dtype))
    got = []
    for k, v in sd.items():
        shape = "scalar" if v.dim() == 0 else "x".join(str(d) for d in v.shape)
        got.append((k, shape, str(v.dtype).replace("torch.", "")))
    assert len(got) == len(want) == 512, (len(got), len(want))
    for a, b in zip(got, want):
        assert a == b, f"state dict mismatch: got {a}, want {b}"
    n = param_count(model)
    assert n == FULL_PARAMS, f"param count {n} != {FULL_PARAMS}"
    return model


def main():
    check_full_against_tsv()
    tiny = build_tiny()
    tiny.eval()
    with torch.no_grad():
        y = tiny(torch.zeros(1, 3, 64, 64))
    assert y.shape == (1, 10), y.shape
    print(f"ok: full state dict matches {STATE_DICT_TSV} (512 entries, {FULL_PARAMS:,} params);"
          f" tiny params {param_count(tiny):,}")


if __name__ == "__main__":
    sys.exit(main())
