#!/usr/bin/env bash
# Installs everything moe-mlir needs to build and test, idempotently.
# Debian packages through apt, Python packages into the `python3` on PATH.
# A second run only checks and prints nothing but a one-line summary.
set -euo pipefail

APT_PKGS=(
  cmake ninja-build ccache gcc g++ pkg-config libgtest-dev
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools clang-22 lld-22
  libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
  libopenblas-dev liblapacke-dev
  openmpi-bin libopenmpi-dev
)
PIP_PKGS=(onnx onnxruntime numpy lit pytest)
export PIP_ROOT_USER_ACTION=ignore

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
pip_missing=()
for p in "${PIP_PKGS[@]}"; do
  "$PY" -m pip show -q "$p" >/dev/null 2>&1 || pip_missing+=("$p")
done
if [ ${#pip_missing[@]} -gt 0 ]; then
  echo "setup: installing Python packages: ${pip_missing[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${pip_missing[@]}"
fi
echo "setup: dependencies present"
