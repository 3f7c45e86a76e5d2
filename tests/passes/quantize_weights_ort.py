"""Checks quantize-weights' emitted models in ONNX Runtime (tests/passes/quantize_weights_test.cpp).

usage: quantize_weights_ort.py QDQ_MODEL [NBITS_MODEL]

The reference is the QDQ model with every constant DequantizeLinear replaced by its float
result computed here with numpy from the ONNX definition (block_size along `axis`, the last
block short). The QDQ model must match it in ONNX Runtime, and so must the MatMulNBits /
GatherBlockQuantized model when given (the same codes in ONNX Runtime's packing). Prints one
line per model with the max relative difference; exits 1 when one is above 1e-4.
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
import onnxruntime as ort


def dequantized_reference(model):
    inits = {i.name: i for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and all(i in inits for i in node.input if i):
            q = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
            s = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            z = (numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
                 if len(node.input) > 2 and node.input[2] else np.zeros_like(s))
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            axis = attrs.get("axis", 1)
            block = attrs.get("block_size", 0)
            if block > 0:
                s = np.repeat(s, block, axis=axis).take(range(q.shape[axis]), axis=axis)
                z = np.repeat(z, block, axis=axis).take(range(q.shape[axis]), axis=axis)
            y = ((q - z) * s).astype(np.float32)
            model.graph.initializer.append(numpy_helper.from_array(y, node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def feeds_for(model, rng):
    feeds = {}
    for i in model.graph.input:
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in i.type.tensor_type.shape.dim]
        if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            feeds[i.name] = rng.standard_normal(dims).astype(np.float32)
        else:
            feeds[i.name] = rng.integers(0, 4, dims).astype(np.int64)
    return feeds


def run(model_or_path, feeds):
    data = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else model_or_path
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def main():
    qdq = onnx.load(sys.argv[1])
    ref = dequantized_reference(onnx.load(sys.argv[1]))
    feeds = feeds_for(qdq, np.random.default_rng(7))
    expected = run(ref, feeds)
    worst = 0.0
    for path in sys.argv[1:]:
        got = run(path, feeds)
        err = max(float(np.max(np.abs(g - e)) / max(float(np.max(np.abs(e))), 1e-30)) for g, e in zip(got, expected))
        print(f"{path}: max relative difference {err:.3g}")
        worst = max(worst, err)
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
