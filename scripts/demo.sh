#!/usr/bin/env bash
# The README's first command: set up, build, and run the main job on the bundled demo model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p out
echo "== whittle inspect models/demo_cnn.onnx"
./build/whittle inspect models/demo_cnn.onnx
