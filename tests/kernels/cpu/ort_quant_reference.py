#!/usr/bin/env python3
"""ONNX Runtime reference outputs for the quantized-model tests (tests/kernels/cpu/quant_models_test.cpp).

    ort_quant_reference.py MODEL DIR [--no-optimize]

Reads DIR/input_K.pb (K = 0, 1, ... while the files exist; ONNX TensorProto files named after the
model's first input or not) and writes DIR/output_K.pb: ONNX Runtime's first output for each, on
1 thread. --no-optimize disables ONNX Runtime's graph optimizations, so that a QDQ model runs as
written (float ops between QuantizeLinear/DequantizeLinear) instead of as fused int8 kernels.

Exit code 3 when numpy, onnx or onnxruntime is missing (the caller skips the comparison).
"""
import argparse
import os
import sys

try:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
except ImportError as e:
    print(f"missing python module: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("dir")
    p.add_argument("--no-optimize", action="store_true")
    args = p.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    if args.no_optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    output = session.get_outputs()[0].name

    k = 0
    while os.path.exists(os.path.join(args.dir, f"input_{k}.pb")):
        x = numpy_helper.to_array(onnx.load_tensor(os.path.join(args.dir, f"input_{k}.pb")))
        y = session.run([output], {feed: x})[0]
        onnx.save_tensor(numpy_helper.from_array(y, output), os.path.join(args.dir, f"output_{k}.pb"))
        k += 1
    if k == 0:
        print(f"no input_0.pb in {args.dir}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
