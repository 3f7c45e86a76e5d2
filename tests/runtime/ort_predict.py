#!/usr/bin/env python3
"""ONNX Runtime's top-1 predictions on preprocessed input tensors, for the accuracy tests.

    python3 tests/runtime/ort_predict.py MODEL.onnx INPUT_NAME OUT.txt CHUNK.npy [CHUNK.npy ...]

Each CHUNK.npy holds samples along axis 0, already preprocessed (the tensors whittle ran).
They are fed one sample at a time when the model's first input dim is a fixed 1, else a whole
chunk at a time. OUT.txt gets one line per sample, in order: the argmax over the sample's
first output (flattened). ONNX Runtime runs with all graph optimizations on, one thread."""
import sys

import numpy as np
import onnxruntime as ort


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    model, input_name, out_path, chunks = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    first_dim = next(i.shape[0] for i in session.get_inputs() if i.name == input_name)
    step = 1 if first_dim == 1 else None
    predictions = []
    for chunk in chunks:
        x = np.load(chunk)
        size = step or len(x)
        for start in range(0, len(x), size):
            y = session.run(None, {input_name: x[start:start + size]})[0]
            predictions.extend(int(p) for p in y.reshape(y.shape[0], -1).argmax(axis=1))
    with open(out_path, "w") as f:
        f.write("".join(f"{p}\n" for p in predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
