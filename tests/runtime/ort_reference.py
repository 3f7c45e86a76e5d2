#!/usr/bin/env python3
"""Writes seeded inputs for a model and ONNX Runtime's outputs on them, as .npy files:
OUT/input_K.npy (with OUT/input_K.name holding the input's name) and OUT/output_K.npy.

    python3 tests/runtime/ort_reference.py MODEL.onnx OUT_DIR [--seed N]

Inputs: float inputs are standard normal, scaled to the model's expected range where the
model's README gives one (mnist 0..255); int8/uint8 inputs uniform over the type; symbolic
dims are 1 (retinaface's H x W: 240 x 320)."""
import argparse
import os
import sys

import numpy as np
import onnxruntime as ort

TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
         "tensor(uint8)": np.uint8, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(a.seed)
    base = os.path.basename(a.model)
    feeds = {}
    for k, info in enumerate(session.get_inputs()):
        shape = [d if isinstance(d, int) else 1 for d in info.shape]
        if "retinaface" in base:
            shape = [1, 3, 240, 320]
        dtype = TYPES[info.type]
        if dtype in (np.int8, np.uint8):
            lim = np.iinfo(dtype)
            value = rng.integers(lim.min, lim.max + 1, size=shape).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            value = rng.integers(0, 10, size=shape).astype(dtype)
        elif "mnist" in base:
            value = rng.uniform(0, 255, size=shape).astype(dtype)
        elif "resnet8" in base or "vww" in base:
            value = rng.uniform(0, 255 if "resnet8" in base else 1, size=shape).astype(dtype)
        else:
            value = rng.standard_normal(shape).astype(dtype)
        feeds[info.name] = value
        np.save(os.path.join(a.out, f"input_{k}.npy"), value)
        with open(os.path.join(a.out, f"input_{k}.name"), "w") as f:
            f.write(info.name)
    for k, value in enumerate(session.run(None, feeds)):
        np.save(os.path.join(a.out, f"output_{k}.npy"), value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
