#!/usr/bin/env python3
"""Writes the tiny Mixtral-like example layer (python3 on PATH: CPython 3.11
with numpy and onnx).

examples/tiny_moe.mlir          moe.layer, E=8 H=32 I=64 k=2, silu GLU, softmax
                                then top-k, renormalised; dense_resource weights.
                                Experts share structure as trained ones do: two
                                groups of four, each expert its group's base plus
                                a residual with a decaying spectrum.
examples/tiny_moe_tokens.npy    64 float32 tokens (64, 32)
examples/tiny_moe_expected.npy  float64 reference output on them (5, 32)
examples/tiny_moe.onnx          the same layer as router + com.microsoft.MoE

Everything comes from fixed seeds, so rerunning rewrites identical files.
"""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))

import numpy as np  # noqa: E402

from moe_mlir import mlir_text, reference  # noqa: E402
from moe_mlir.synth import random_tokens, structured_layer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(REPO, "examples"), help="output folder")
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX model (no onnx module)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    arrays, meta, _ = structured_layer(2025, num_experts=8, groups=2, hidden=32, inter=64,
                                       top_k=2, noise=0.3, decay=0.7, activation="silu",
                                       glu=True, scoring="softmax", order="score_then_topk",
                                       normalize=True)
    tokens = random_tokens(2026, 64, 32)
    expected = reference.evaluate({"meta": meta, **arrays}, tokens)

    path = os.path.join(args.out, "tiny_moe.mlir")
    with open(path, "w") as f:
        f.write(mlir_text.layer_to_mlir(arrays, meta, "tiny_moe"))
    np.save(os.path.join(args.out, "tiny_moe_tokens.npy"), tokens)
    np.save(os.path.join(args.out, "tiny_moe_expected.npy"), expected)
    written = [path, "tiny_moe_tokens.npy", "tiny_moe_expected.npy"]
    if not args.no_onnx:
        import onnx

        from moe_mlir.onnx_models import ort_moe_model

        onnx.save(ort_moe_model(arrays, meta), os.path.join(args.out, "tiny_moe.onnx"))
        written.append("tiny_moe.onnx")
    print("wrote", ", ".join(os.path.basename(p) for p in written), "in", args.out)


if __name__ == "__main__":
    main()
