#!/usr/bin/env bash
# The README's first command: set up, build, and run the main job on the bundled demo model:
# inspect it, optimize it at -O2 (checking the IR and the ONNX checker after every pass), and
# inspect the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p out
echo "== whittle inspect models/demo_cnn.onnx"
./build/whittle inspect models/demo_cnn.onnx
echo
echo "== whittle optimize models/demo_cnn.onnx -o out/demo_cnn.opt.onnx -O2 --verify-each"
./build/whittle optimize models/demo_cnn.onnx -o out/demo_cnn.opt.onnx -O2 --verify-each
echo
echo "== whittle inspect out/demo_cnn.opt.onnx"
./build/whittle inspect out/demo_cnn.opt.onnx
