"""Export a Res2Net checkpoint to ONNX for the ONNX Runtime side of
scripts/bench_compare.py.

Usage:

    /usr/bin/python3 scripts/export_onnx.py WEIGHTS OUT.onnx

Builds the network WEIGHTS describes (scripts/reference.py), loads it, and
writes torch.onnx.export's graph with a dynamic batch dimension (input
"input", N x 3 x 224 x 224; output "logits"). Debian's torch writes ONNX
without the onnx Python package.
"""

import os
import sys

import torch

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

OPSET = 17


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    weights, out = sys.argv[1], sys.argv[2]
    model = reference.build_for(reference.load_state_dict(weights))
    model.eval()
    x = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(model, x, out, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
