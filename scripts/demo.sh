#!/usr/bin/env bash
# The README's first command: set up, build, and run the main job on the bundled demo model:
# inspect it, optimize it at -O2 (checking the IR and the ONNX checker after every pass), and
# inspect the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
WHITTLE_TARGET=whittle bash scripts/build.sh  # the binary only; scripts/test.sh builds the tests
mkdir -p out
echo "== whittle inspect models/demo_cnn.onnx"
./build/whittle inspect models/demo_cnn.onnx
echo
echo "== whittle optimize models/demo_cnn.onnx -o out/demo_cnn.opt.onnx -O2 --verify-each"
./build/whittle optimize models/demo_cnn.onnx -o out/demo_cnn.opt.onnx -O2 --verify-each
echo
echo "== whittle inspect out/demo_cnn.opt.onnx"
./build/whittle inspect out/demo_cnn.opt.onnx
echo
echo "== whittle optimize models/demo_cnn.onnx -o out/demo_cnn.int8.onnx --quantize int8 --calib models/demo_data/calib_images.npy"
./build/whittle optimize models/demo_cnn.onnx -o out/demo_cnn.int8.onnx --quantize int8 \
  --calib models/demo_data/calib_images.npy
echo
echo "== whittle compare models/demo_cnn.onnx out/demo_cnn.int8.onnx (report: out/demo_compare.html)"
./build/whittle compare models/demo_cnn.onnx out/demo_cnn.int8.onnx --data models/demo_data/test_images.npy \
  --labels models/demo_data/test_labels.txt --per-layer --report out/demo_compare.html \
  --max-accuracy-drop 1 --min-agreement 95 --max-size-ratio 0.5
