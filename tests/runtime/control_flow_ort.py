#!/usr/bin/env python3
"""Builds control-flow models with onnx.helper (If reading outer values and initializers, a
Loop with a nested If, loop-carried values that grow and scan outputs, Scan-16 with axes and
directions, an LSTM whose weights a nested If branch slices out of the main graph's Constant
nodes and initializers, as silero-vad does) and writes, per model, OUT/NAME/model.onnx and for each input set
OUT/NAME/set_S/input_K.npy (+ input_K.name) and ONNX Runtime's outputs OUT/NAME/set_S/output_K.npy.

    python tests/runtime/control_flow_ort.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F, B, I64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64


def vi(name, elem, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def if_outer():
    rng = np.random.default_rng(1)
    then_branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t0"]), helper.make_node("Add", ["t0", "bias"], ["t"])],
        "then", [], [vi("t", F)])
    else_branch = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["e0"]), helper.make_node("Tanh", ["e0"], ["e1"]),
         helper.make_node("MatMul", ["e1", "w"], ["e"])],
        "else", [], [vi("e", F)], [init("k", rng.standard_normal(4).astype(np.float32))])
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
         helper.make_node("Greater", ["s", "zero"], ["c"]),
         helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch),
         helper.make_node("Relu", ["y"], ["z"])],
        "if_outer", [vi("x", F, [3, 4])], [vi("z", F, [3, 5])],
        [init("w", rng.standard_normal((4, 5)).astype(np.float32)), init("bias", rng.standard_normal(5).astype(np.float32)),
         init("zero", np.float32(0))])
    sets = [[rng.standard_normal((3, 4)).astype(np.float32) + 1], [rng.standard_normal((3, 4)).astype(np.float32) - 1]]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sets


def loop_nested_if():
    rng = np.random.default_rng(2)
    then_branch = helper.make_graph([helper.make_node("Add", ["acc", "x"], ["t"])], "then", [], [vi("t", F)])
    else_branch = helper.make_graph([helper.make_node("Mul", ["acc", "scale"], ["e"])], "else", [], [vi("e", F)])
    body = helper.make_graph(
        [helper.make_node("Less", ["i", "half"], ["early"]),
         helper.make_node("If", ["early"], ["acc_out"], then_branch=then_branch, else_branch=else_branch),
         helper.make_node("Concat", ["grow", "x"], ["grow_out"], axis=0),
         helper.make_node("ReduceMax", ["acc_out"], ["m"], keepdims=0),
         helper.make_node("Less", ["m", "limit"], ["cond_out"]),
         helper.make_node("Sin", ["acc_out"], ["scan"])],
        "body", [vi("i", I64, []), vi("cond_in", B, []), vi("acc", F, [2]), vi("grow", F, [None])],
        [vi("cond_out", B, []), vi("acc_out", F, [2]), vi("grow_out", F, [None]), vi("scan", F, [2])],
        [init("half", np.int64(2))])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["M", "c", "acc0", "grow0"], ["acc_final", "grow_final", "scans"], body=body)],
        "loop_nested_if", [vi("M", I64, []), vi("c", B, []), vi("x", F, [2])],
        [vi("acc_final", F, [2]), vi("grow_final", F, [None]), vi("scans", F, [None, 2])],
        [init("acc0", np.zeros(2, np.float32)), init("grow0", np.ones(1, np.float32)),
         init("scale", np.float32(1.5)), init("limit", np.float32(40))])
    x = np.abs(rng.standard_normal(2).astype(np.float32)) + 1
    sets = [[np.int64(6), np.bool_(True), x], [np.int64(30), np.bool_(True), x], [np.int64(3), np.bool_(False), x]]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sets


def scan_axes():
    rng = np.random.default_rng(3)
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "a"], ["sa"]), helper.make_node("Mul", ["sa", "b"], ["s_out"]),
         helper.make_node("Tanh", ["s_out"], ["y1"]), helper.make_node("Sub", ["a", "offset"], ["y2"])],
        "body", [vi("s", F, [3]), vi("a", F, [3]), vi("b", F, [3])],
        [vi("s_out", F, [3]), vi("y1", F, [3]), vi("y2", F, [3])])
    graph = helper.make_graph(
        [helper.make_node("Scan", ["s0", "xa", "xb"], ["s_final", "y1s", "y2s"], body=body, num_scan_inputs=2,
                          scan_input_axes=[1, 0], scan_input_directions=[0, 1], scan_output_axes=[0, -1],
                          scan_output_directions=[1, 0])],
        "scan_axes", [vi("s0", F, [3]), vi("xa", F, [3, 4]), vi("xb", F, [4, 3])],
        [vi("s_final", F, [3]), vi("y1s", F, [4, 3]), vi("y2s", F, [3, 4])],
        [init("offset", rng.standard_normal(3).astype(np.float32))])
    sets = [[rng.standard_normal(3).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32),
             rng.standard_normal((4, 3)).astype(np.float32)]]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)]), sets


def if_nested_lstm():
    # silero-vad: the LSTM weights are Constant nodes of an enclosing graph, which a nested
    # branch slices into gates, reorders (PyTorch i, f, g, o to ONNX i, o, f, c), joins and
    # unsqueezes on every run; the runtime takes them as the branch's constants.
    rng = np.random.default_rng(4)
    H, I, T = 3, 2, 4
    w = rng.standard_normal((4 * H, I)).astype(np.float32)
    r = rng.standard_normal((4 * H, H)).astype(np.float32)
    b = rng.standard_normal(8 * H).astype(np.float32)

    def gates(src, prefix, nodes, inits):
        parts = []
        for k, gate in enumerate([0, 3, 1, 2]):
            inits += [init(f"{prefix}_s{k}", np.array([gate * H], np.int64)),
                      init(f"{prefix}_e{k}", np.array([(gate + 1) * H], np.int64))]
            nodes.append(helper.make_node("Slice", [src, f"{prefix}_s{k}", f"{prefix}_e{k}", "axis0"], [f"{prefix}_g{k}"]))
            parts.append(f"{prefix}_g{k}")
        nodes.append(helper.make_node("Concat", parts, [f"{prefix}_cat"], axis=0))
        nodes.append(helper.make_node("Unsqueeze", [f"{prefix}_cat", "axis0"], [f"{prefix}_3d"]))
        return f"{prefix}_3d"

    nodes, inits = [], [init("axis0", np.array([0], np.int64))]
    w3, r3 = gates("w", "w", nodes, inits), gates("r", "r", nodes, inits)
    nodes.append(helper.make_node("Unsqueeze", ["b", "axis0"], ["b2"]))
    nodes.append(helper.make_node("LSTM", ["x", w3, r3, "b2"], ["", "h"], hidden_size=H))
    inner_then = helper.make_graph(nodes, "inner_then", [], [vi("h", F)], inits)
    inner_else = helper.make_graph([helper.make_node("ReduceSum", ["w"], ["ws"], keepdims=1),
                                    helper.make_node("Mul", ["h0", "ws"], ["he"])], "inner_else", [], [vi("he", F)])
    outer_then = helper.make_graph(
        [helper.make_node("Not", ["d"], ["nd"]),
         helper.make_node("If", ["nd"], ["hi"], then_branch=inner_then, else_branch=inner_else),
         helper.make_node("Add", ["hi", "h0"], ["ht"])], "outer_then", [], [vi("ht", F)])
    outer_else = helper.make_graph([helper.make_node("Neg", ["h0"], ["hn"])], "outer_else", [], [vi("hn", F)])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w)),
         helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(b)),
         helper.make_node("If", ["c"], ["y"], then_branch=outer_then, else_branch=outer_else),
         helper.make_node("ReduceSum", ["w"], ["wsum"], keepdims=0)],
        "if_nested_lstm", [vi("c", B, []), vi("d", B, []), vi("x", F, [T, 1, I])],
        [vi("y", F, [1, 1, H]), vi("wsum", F, [])],
        [init("r", r), init("h0", np.zeros((1, 1, H), np.float32))])
    x = rng.standard_normal((T, 1, I)).astype(np.float32)
    sets = [[np.bool_(True), np.bool_(False), x], [np.bool_(True), np.bool_(True), x], [np.bool_(False), np.bool_(False), x]]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sets


def loop_carried_weights():
    # Paddle2ONNX: weights enter a Loop as carried values the body hands on unchanged (one
    # directly, one through an Identity), next to a carried value that starts as a constant and
    # changes; the runtime makes the first two constants of the body and leaves the third fed.
    rng = np.random.default_rng(5)
    body = helper.make_graph(
        [helper.make_node("Transpose", ["w_in"], ["wt"], perm=[1, 0]),
         helper.make_node("MatMul", ["acc", "wt"], ["m"]),
         helper.make_node("Add", ["m", "v_in"], ["acc_out"]),
         helper.make_node("Identity", ["w_in"], ["w_out"]),
         helper.make_node("Mul", ["s_in", "two"], ["s_out"]),
         helper.make_node("Add", ["acc_out", "s_in"], ["scan"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [vi("i", I64, []), vi("cond_in", B, []), vi("acc", F, [1, 3]), vi("w_in", F, [3, 3]),
                 vi("v_in", F, [3]), vi("s_in", F, [3])],
        [vi("cond_out", B, []), vi("acc_out", F, [1, 3]), vi("w_out", F, [3, 3]), vi("v_in", F, [3]),
         vi("s_out", F, [3]), vi("scan", F, [1, 3])],
        [init("two", np.float32(2))])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["v"], value=numpy_helper.from_array(rng.standard_normal(3).astype(np.float32))),
         helper.make_node("Loop", ["M", "", "x", "w", "v", "s"], ["acc_final", "w_final", "v_final", "s_final", "scans"],
                          body=body)],
        "loop_carried_weights", [vi("M", I64, []), vi("x", F, [1, 3])],
        [vi("acc_final", F, [1, 3]), vi("w_final", F, [3, 3]), vi("v_final", F, [3]), vi("s_final", F, [3]),
         vi("scans", F, [None, 1, 3])],
        [init("w", (rng.standard_normal((3, 3)) * 0.5).astype(np.float32)), init("s", np.ones(3, np.float32))])
    x = rng.standard_normal((1, 3)).astype(np.float32)
    sets = [[np.int64(3), x], [np.int64(0), x]]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sets


def main():
    out = sys.argv[1]
    for name, make in [("if_outer", if_outer), ("loop_nested_if", loop_nested_if), ("scan_axes", scan_axes),
                       ("if_nested_lstm", if_nested_lstm), ("loop_carried_weights", loop_carried_weights)]:
        model, sets = make()
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "model.onnx")
        onnx.save(model, path)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for s, inputs in enumerate(sets):
            set_dir = os.path.join(folder, f"set_{s}")
            os.makedirs(set_dir, exist_ok=True)
            feeds = {}
            for k, (info, value) in enumerate(zip(session.get_inputs(), inputs)):
                value = np.asarray(value)
                feeds[info.name] = value
                np.save(os.path.join(set_dir, f"input_{k}.npy"), value)
                with open(os.path.join(set_dir, f"input_{k}.name"), "w") as f:
                    f.write(info.name)
            for k, value in enumerate(session.run(None, feeds)):
                np.save(os.path.join(set_dir, f"output_{k}.npy"), value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
