#!/usr/bin/env python3
"""Makes a QDQ model with ONNX Runtime's quantize_static and ONNX Runtime's outputs on it, for
tests/runtime/lower_qdq_test.cpp: whittle must run ORT's QDQ models in int8 and agree with ORT.

    qdq_reference.py MODEL OUT_DIR [--samples N]

Writes OUT_DIR/qdq.onnx (QDQ, per-channel int8 weights, uint8 activations, MinMax on
`samples` seeded inputs), and OUT_DIR/x_K.npy / y_K.npy: seeded inputs and ORT's first output.
"""
import argparse
import os

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--samples", type=int, default=3)
    args = ap.parse_args()
    model = onnx.load(args.model)
    inits = {i.name for i in model.graph.initializer}
    inp = [i for i in model.graph.input if i.name not in inits][0]
    shape = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(7)
    # Inputs in the range of normalized images.
    samples = [rng.uniform(-2.0, 2.0, shape).astype(np.float32) for _ in range(args.samples * 2)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{inp.name: s} for s in samples[: args.samples]])

        def get_next(self):
            return next(self.it, None)

    # Per-channel DequantizeLinear (axis) needs opset 13.
    source = args.model
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset < 13:
        source = os.path.join(args.out_dir, "opset13.onnx")
        onnx.save(onnx.version_converter.convert_version(model, 13), source)
    qdq = os.path.join(args.out_dir, "qdq.onnx")
    quantize_static(source, qdq, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(qdq, options, providers=["CPUExecutionProvider"])
    for k, x in enumerate(samples[args.samples:]):
        np.save(os.path.join(args.out_dir, f"x_{k}.npy"), x)
        np.save(os.path.join(args.out_dir, f"y_{k}.npy"), session.run(None, {inp.name: x})[0])


if __name__ == "__main__":
    main()
