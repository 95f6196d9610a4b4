#!/usr/bin/env bash
# Configures (once) and builds moe-mlir into build/ (Release, Ninja, ccache
# when present). Shared by the demo and the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build -j "$(nproc)"
