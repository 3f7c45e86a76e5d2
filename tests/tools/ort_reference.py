#!/usr/bin/env python3
"""Runs a model with onnxruntime on .npy (or TensorProto .pb) inputs and saves each output
as OUT_DIR/NAME.npy.

    ort_reference.py MODEL OUT_DIR NAME=FILE...
"""
import os
import sys

import numpy as np
import onnxruntime as ort


def main():
    model, out_dir, feeds = sys.argv[1], sys.argv[2], sys.argv[3:]
    inputs = {}
    for item in feeds:
        name, path = item.split("=", 1)
        if path.endswith(".pb"):
            import onnx
            from onnx import numpy_helper

            inputs[name] = numpy_helper.to_array(onnx.load_tensor(path))
        else:
            inputs[name] = np.load(path)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for name, value in zip(names, sess.run(names, inputs)):
        np.save(os.path.join(out_dir, name + ".npy"), value)


if __name__ == "__main__":
    main()
