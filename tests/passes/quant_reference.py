#!/usr/bin/env python3
"""ONNX Runtime checks for the quantize pass tests.

    quant_reference.py mnist MODEL.onnx MNIST_DIR [--first N]
        prints 'accuracy CORRECT TOTAL' of MODEL on the MNIST test set (pixels 0..255 float).
    quant_reference.py runall MODEL.onnx OUT_DIR NAME=INPUT.npy...
        runs MODEL in ONNX Runtime (all graph optimizations on, so QDQ groups are fused into
        int8 kernels) on the named inputs and writes every output K as OUT_DIR/output_K.npy
        (tests/passes/ort_outputs.h).
    quant_reference.py ops MODEL.onnx
        prints the op types of the graph ORT optimized (one per line), to see what it fused."""
import gzip
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort


def session(path, optimized_path=None):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist(model, folder, first):
    images = read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
    if first > 0:
        images, labels = images[:first], labels[:first]
    s = session(model)
    name = s.get_inputs()[0].name
    correct = 0
    for img, label in zip(images, labels):
        out = s.run(None, {name: img.astype(np.float32).reshape(1, 1, 28, 28)})[0]
        correct += int(np.argmax(out) == label)
    print(f"accuracy {correct} {len(labels)}")


def main():
    cmd = sys.argv[1]
    if cmd == "mnist":
        first = int(sys.argv[sys.argv.index("--first") + 1]) if "--first" in sys.argv else 0
        mnist(sys.argv[2], sys.argv[3], first)
    elif cmd == "runall":
        s = session(sys.argv[2])
        feeds = {}
        for arg in sys.argv[4:]:
            name, path = arg.split("=", 1)
            feeds[name] = np.load(path)
        for k, y in enumerate(s.run(None, feeds)):
            np.save(os.path.join(sys.argv[3], "output_%d.npy" % k), y)
    elif cmd == "ops":
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "opt.onnx")
            session(sys.argv[2], out)
            import onnx
            for n in onnx.load(out).graph.node:
                print(n.op_type)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
