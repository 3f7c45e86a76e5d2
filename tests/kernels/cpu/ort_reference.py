#!/usr/bin/env python3
"""Reference outputs from ONNX Runtime for whittle's model tests.

usage: ort_reference.py MODEL.onnx OUT_DIR INPUT_NAME=INPUT.npy [...]

Runs MODEL on the CPU execution provider (1 thread, all graph optimizations) with the given
inputs and writes output_<i>.npy into OUT_DIR, in the model's output order.
"""
import os
import sys

import numpy as np
import onnxruntime as ort


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    model, out_dir = argv[0], argv[1]
    feeds = {}
    for item in argv[2:]:
        name, path = item.split("=", 1)
        feeds[name] = np.load(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds)
    os.makedirs(out_dir, exist_ok=True)
    for i, value in enumerate(outputs):
        np.save(os.path.join(out_dir, f"output_{i}.npy"), np.ascontiguousarray(value))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
