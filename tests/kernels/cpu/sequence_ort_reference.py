"""Sequence, optional and ZipMap models and ONNX Runtime's outputs on them, for
tests/kernels/cpu/sequence_test.cpp.

    sequence_ort_reference.py DIR
writes DIR/NAME.onnx and DIR/NAME.npz per case and prints the case names. The arrays: in.INPUT
per graph input; per graph output K, out.K for a tensor, out.K.length and out.K.I (element I)
for a sequence of tensors, out.K.keys and out.K.values ([rows, classes]) for ZipMap's sequence
of maps."""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

out = sys.argv[1]
rng = np.random.default_rng(14)
FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def tensor(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def seq_type(name, elem):
    return helper.make_value_info(name, helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, None)))


def case(name, nodes, inputs, outputs, feeds, opset=18):
    graph = helper.make_graph(nodes, name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    onnx.save(model, os.path.join(out, name + ".onnx"))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    results = session.run(None, feeds)
    arrays = {"in." + k: v for k, v in feeds.items()}
    for k, r in enumerate(results):
        if isinstance(r, list) and r and isinstance(r[0], dict):  # ZipMap
            keys = sorted(r[0].keys())
            arrays[f"out.{k}.keys"] = np.array(keys, dtype=np.int64)
            arrays[f"out.{k}.values"] = np.array([[row[key] for key in keys] for row in r], dtype=np.float32)
        elif isinstance(r, list):
            arrays[f"out.{k}.length"] = np.array(len(r), dtype=np.int64)
            for i, e in enumerate(r):
                arrays[f"out.{k}.{i}"] = np.asarray(e)
        else:
            arrays[f"out.{k}"] = np.asarray(r)
    np.savez(os.path.join(out, name + ".npz"), **arrays)
    print(name)


x = rng.standard_normal((3, 7)).astype(np.float32)

# SplitToSequence by sizes, then the elements edited and joined again.
case(
    "split_edit_concat",
    [
        helper.make_node("SplitToSequence", ["x", "sizes"], ["parts"], axis=1),
        helper.make_node("SequenceErase", ["parts", "minus_one"], ["erased"]),
        helper.make_node("SequenceInsert", ["erased", "y", "zero"], ["inserted"]),
        helper.make_node("SequenceAt", ["inserted", "one"], ["second"]),
        helper.make_node("SequenceLength", ["inserted"], ["length"]),
        helper.make_node("ConcatFromSequence", ["inserted"], ["joined"], axis=1),
    ],
    [tensor("x", FLOAT, [3, 7]), tensor("sizes", INT64, [3]), tensor("y", FLOAT, [3, 2]),
     tensor("zero", INT64, []), tensor("one", INT64, []), tensor("minus_one", INT64, [])],
    [seq_type("inserted", FLOAT), tensor("second", FLOAT, None), tensor("length", INT64, None),
     tensor("joined", FLOAT, None)],
    {"x": x, "sizes": np.array([2, 4, 1], np.int64), "y": rng.standard_normal((3, 2)).astype(np.float32),
     "zero": np.array(0, np.int64), "one": np.array(1, np.int64), "minus_one": np.array(-1, np.int64)},
)

# SplitToSequence in chunks of a scalar size (the last one shorter), each chunk an output; and
# without split, keepdims=0 (one row each), stacked again along a new last axis.
case(
    "chunks_and_stack",
    [
        helper.make_node("SplitToSequence", ["x", "three"], ["chunks"], axis=-1),
        helper.make_node("SplitToSequence", ["x"], ["rows"], axis=0, keepdims=0),
        helper.make_node("ConcatFromSequence", ["rows"], ["stacked"], axis=-1, new_axis=1),
    ],
    [tensor("x", FLOAT, [3, 7]), tensor("three", INT64, [])],
    [seq_type("chunks", FLOAT), seq_type("rows", FLOAT), tensor("stacked", FLOAT, None)],
    {"x": x, "three": np.array(3, np.int64)},
)

# ZipMap with int64 labels over [N, C] probabilities.
probabilities = rng.random((4, 3)).astype(np.float32)
case(
    "zipmap_int64",
    [helper.make_node("ZipMap", ["p"], ["maps"], domain="ai.onnx.ml", classlabels_int64s=[3, 10, 42])],
    [tensor("p", FLOAT, [4, 3])],
    [helper.make_value_info("maps", helper.make_sequence_type_proto(helper.make_map_type_proto(INT64, helper.make_tensor_type_proto(FLOAT, None))))],
    {"p": probabilities},
)
