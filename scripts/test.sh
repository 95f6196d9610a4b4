#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test (lit
# and pytest suites, all under CTest). The last lines are ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec ctest --test-dir build --output-on-failure -j "$(nproc)"
