#!/usr/bin/env bash
# The main job on the bundled example: installs what is missing, builds,
# shows the example MoE layer in the moe dialect, dumps its weights and
# evaluates it with the float64 reference evaluator, and checks the result
# against onnxruntime running the same layer as com.microsoft.MoE; compresses
# it with moe-opt; then compiles the ONNX model with moe-compile (without and
# with compression), runs both artifacts with moe-run and compares size,
# error and latency.
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

echo "== compare with onnxruntime on examples/tiny_moe.onnx (the same layer as com.microsoft.MoE) =="
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

echo "== import examples/tiny_moe.onnx, raise it to moe.layer, compress it (default compression) =="
build/bin/moe-translate --import-onnx examples/tiny_moe.onnx -o "$out/imported.mlir"
build/bin/moe-opt "$out/imported.mlir" --onnx-shape-inference --moe-raise-experts \
  --moe-dump-layers="$out/raised" -o "$out/raised.mlir"
for setting in default rank4; do
  extra=""; [ "$setting" = rank4 ] && extra=" rank=4"
  build/bin/moe-opt "$out/raised.mlir" \
    --moe-compress-pipeline="report=$out/$setting.json calibration=examples/tiny_moe_tokens.npy$extra" \
    --moe-dump-layers="$out/$setting" -o "$out/$setting.mlir"
done
grep -o 'moe.clustered_layer[^{]*{[^}]*}' "$out/default.mlir" | cut -c1-160
PYTHONPATH=python python3 - "$out" <<'PY'
import json, sys
import numpy as np
import onnxruntime as ort
from moe_mlir import reference as ref
out = sys.argv[1]
tokens = np.load("examples/tiny_moe_tokens.npy")
sess = ort.InferenceSession("examples/tiny_moe.onnx", providers=["CPUExecutionProvider"])
want = sess.run(None, {sess.get_inputs()[0].name: tokens})[0].astype(np.float64)
raised = ref.evaluate(ref.load_layer(f"{out}/raised/layer_0.npz"), tokens)
rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)
print(f"raised moe.layer vs onnxruntime: rel L2 {rel(raised, want):.2e}")
for setting, what in (("default", "clusters of 4, rank 16, INT4 factors, FP16 bases"),
                      ("rank4", "the same at rank 4")):
    compressed = ref.evaluate(ref.load_layer(f"{out}/{setting}/layer_0.npz"), tokens)
    layer = json.load(open(f"{out}/{setting}.json"))["layers"][0]
    print(f"compressed, {what}:")
    print(f"  parameters {layer['params']['before']['total']} -> {layer['params']['after']['total']}"
          f" ({layer['compression_ratio']['params']:.2f}x), bytes {layer['bytes']['before']['total']}"
          f" -> {layer['bytes']['after']['total']} ({layer['compression_ratio']['bytes']:.2f}x)")
    print(f"  output vs onnxruntime: rel L2 {rel(compressed, want):.2e}"
          f" (report: {layer['calibration']['output_relative_error']:.2e}, routing agreement"
          f" {layer['calibration']['routing_agreement']['exact_set_match']:.2f})")
sys.exit(0 if rel(raised, want) <= 1e-5 else 1)
PY

echo "== compile examples/tiny_moe.onnx with moe-compile, run it with moe-run =="
tokens=examples/tiny_moe_tokens.npy
build/bin/moe-compile examples/tiny_moe.onnx -o "$out/tiny_uncompressed.moe" --no-compress
build/bin/moe-compile examples/tiny_moe.onnx -o "$out/tiny_compressed.moe" \
  --report="$out/tiny_compressed.json"
for kind in uncompressed compressed; do
  build/bin/moe-run "$out/tiny_$kind.moe" --describe > "$out/tiny_$kind.txt"
  build/bin/moe-run "$out/tiny_$kind.moe" --input tokens="$tokens" \
    --output output="$out/tiny_$kind.npy" --bench 20 | tail -n 1 > "$out/tiny_$kind.bench.json"
done
sed 's/^/  /' "$out/tiny_compressed.txt"
PYTHONPATH=python python3 - "$out" "$tokens" <<'PY'
import json, os, re, sys
import numpy as np
import onnxruntime as ort
out, tokens = sys.argv[1], np.load(sys.argv[2])
rel = lambda a, b: float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))
sess = ort.InferenceSession("examples/tiny_moe.onnx", providers=["CPUExecutionProvider"])
want = sess.run(None, {"tokens": tokens})[0].astype(np.float64)
layer = json.load(open(f"{out}/tiny_compressed.json"))["layers"][0]
params = {"uncompressed": layer["params"]["before"]["total"],
          "compressed": layer["params"]["after"]["total"]}
stats = {}
for kind in ("uncompressed", "compressed"):
    described = open(f"{out}/tiny_{kind}.txt").read()
    weights = int(re.search(r"^weights: \d+ \((\d+) bytes\)", described, re.M).group(1))
    bench = json.load(open(f"{out}/tiny_{kind}.bench.json"))
    stats[kind] = (weights, bench, np.load(f"{out}/tiny_{kind}.npy"))
    print(f"{kind:>12}: {params[kind]} parameters, weights {weights} bytes"
          f" (artifact {os.path.getsize(f'{out}/tiny_{kind}.moe')} bytes);"
          f" {bench['tokens']} tokens in {bench['median_ms']:.3f} ms median"
          f" (p90 {bench['p90_ms']:.3f} ms, {bench['tokens_per_s']:.0f} tokens/s, 20 runs)")
(w0, _, y0), (w1, _, y1) = stats["uncompressed"], stats["compressed"]
print(f"weight bytes {w0} -> {w1}: {w0 / w1:.2f}x fewer;"
      f" parameters {params['uncompressed']} -> {params['compressed']}"
      f" ({params['uncompressed'] / params['compressed']:.2f}x)")
print(f"uncompressed moe-run vs onnxruntime: rel L2 {rel(y0, want):.2e}")
print(f"compressed vs uncompressed moe-run: rel L2 {rel(y1, y0):.2e}")
sys.exit(0 if rel(y0, want) <= 1e-5 else 1)
PY
