"""Loads an ONNX model with the ONNX checker and ONNX Runtime (CPU) and runs it once on
seeded random inputs. Used by tests/passes/convert_half_test.cpp: exit 0 when both accept it.

usage: convert_half_ort.py MODEL.onnx
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort

TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


def main(path):
    onnx.checker.check_model(onnx.load(path), full_check=True)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        dims = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, dims).astype(TYPES[i.type])
    outputs = session.run(None, feeds)
    for o in outputs:
        if not np.all(np.isfinite(o.astype(np.float64))):
            print("non-finite output", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
