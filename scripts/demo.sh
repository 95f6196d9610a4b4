#!/usr/bin/env bash
# The main job on the bundled example: installs what is missing, builds,
# shows the example MoE layer in the moe dialect, dumps its weights and
# evaluates it with the float64 reference evaluator, and checks the result
# against onnxruntime running the same layer as com.microsoft.MoE.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
out=out/demo
rm -rf "$out" && mkdir -p "$out"

echo "== examples/tiny_moe.mlir through moe-opt (weights elided) =="
build/bin/moe-opt examples/tiny_moe.mlir --mlir-elide-resource-strings-if-larger=16 |
  sed '/^{-#/,$d'

echo "== dump the layer, evaluate it in float64 =="
build/bin/moe-opt examples/tiny_moe.mlir --moe-dump-layers="$out/layers" -o /dev/null
PYTHONPATH=python python3 -m moe_mlir.reference "$out/layers/layer_0.npz" \
  examples/tiny_moe_tokens.npy -o "$out/reference.npy"

echo "== compare with onnxruntime on examples/tiny_moe.onnx =="
PYTHONPATH=python python3 - "$out/reference.npy" <<'PY'
import sys
import numpy as np
import onnxruntime as ort
ref = np.load(sys.argv[1])
tokens = np.load("examples/tiny_moe_tokens.npy")
sess = ort.InferenceSession("examples/tiny_moe.onnx", providers=["CPUExecutionProvider"])
ort_out = sess.run(None, {sess.get_inputs()[0].name: tokens})[0].astype(np.float64)
err = np.linalg.norm(ort_out - ref) / np.linalg.norm(ref)
print(f"tokens {tokens.shape}, output {ref.shape}, rel L2 (reference vs onnxruntime): {err:.2e}")
sys.exit(0 if err <= 1e-6 else 1)
PY
