#!/usr/bin/env bash
# The README's second command: set up, build, and run every test (ctest over the Catch2 suite,
# which includes the ONNX Runtime interop tests). Tests tagged [slow] are left to benchmarks/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 900
