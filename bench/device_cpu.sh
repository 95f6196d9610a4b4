#!/usr/bin/env bash
# bench/harness.py on a machine without LLVM (the lent device machine: 16
# cores, onnxruntime, PyTorch, no MLIR): the moe-mlir artifacts and moe-run
# are built here and carried; the machine regenerates the same seeded
# weights and ONNX forms, runs the carried artifacts beside its own
# onnxruntime and PyTorch, and checks every output against float64.
#
#   here:  bench/device_cpu.sh --pack [DIR [WORK]]  (compiles into DIR, default devcarry/)
#   there: bench/device_cpu.sh [DIR] [OUT]    (results.json and the log into OUT)
#
# Python: the python3 on PATH (numpy, onnx, onnxruntime; torch optional).
set -euo pipefail
cd "$(dirname "$0")/.."
SYSTEMS_MOE=(moe-default moe-b8)
SYSTEMS_PEERS=(ort-loop ort-moe ort-qmoe torch)
if [[ "${1:-}" == "--pack" ]]; then
  dir=${2:-devcarry}
  mkdir -p "$dir/bin" "$dir/medium"
  cp build/bin/moe-run "$dir/bin/"
  work=${3:-out/harness}  # the harness's folder here (its weights are reused)
  python3 bench/harness.py --sizes medium --systems "${SYSTEMS_MOE[@]}" --tokens 1 \
    --work "$work" >/dev/null
  for s in "${SYSTEMS_MOE[@]}"; do
    cp "$work/medium/$s.moe" "$work/medium/$s.json" "$dir/medium/"
  done
  du -sh "$dir"
  exit 0
fi
dir=${1:-devcarry}
out=${2:-${OUT:-out/device}}
mkdir -p "$out"
# The artifacts that were carried (the device's 64 MiB carry may not hold
# every packed one).
SYSTEMS_MOE=()
for f in "$dir"/medium/*.moe; do SYSTEMS_MOE+=("$(basename "$f" .moe)"); done
export MOE_MLIR_BUILD=$PWD/$dir PYTHONUNBUFFERED=1
python3 bench/harness.py --sizes medium --systems "${SYSTEMS_MOE[@]}" "${SYSTEMS_PEERS[@]}" \
  --prebuilt "$dir/medium" --tokens 1 4 16 512 2048 --torch-python python3 \
  --work /tmp/moe-harness 2>&1 | tee "$out/harness.log"
cp /tmp/moe-harness/results.json "$out/"
