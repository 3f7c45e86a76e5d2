"""Small float32 models with control flow and recurrent ops, and the check that a converted
(convert-fp16 / convert-bf16) model is valid: the ONNX checker accepts it, ONNX Runtime's CPU
provider loads and runs it, and its outputs match the float32 model's within a tolerance.
Used by tests/passes/convert_half_test.cpp.

usage: convert_half_models.py make OUTDIR
       convert_half_models.py check FP32.onnx CONVERTED.onnx TOLERANCE

make writes if.onnx, loop.onnx, scan.onnx, lstm.onnx, gru.onnx, rnn.onnx and nested.onnx
(a Loop whose body holds an If) to OUTDIR. Each reads float values from the enclosing graph
inside its subgraphs, or runs an op that ONNX Runtime's CPU provider has no half kernel for.
check exits 0 when the converted model passes, and prints the first failure otherwise; the
error it reports is max |converted - float32| / max |float32| over every output.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
F = TensorProto.FLOAT


def weight(name, shape, seed):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.uniform(-0.5, 0.5, shape).astype(np.float32), name)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def make_if(path):
    # h = Mul(x, w) is computed outside and read by both branches, as is the model input x.
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["h", "x"], ["t"], name="then_add")], "then_branch", [],
        [helper.make_tensor_value_info("t", F, [2, 4])])
    else_graph = helper.make_graph(
        [helper.make_node("Sub", ["h", "x"], ["e0"], name="else_sub"),
         helper.make_node("Mul", ["e0", "h"], ["e"], name="else_mul")], "else_branch", [],
        [helper.make_tensor_value_info("e", F, [2, 4])])
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["h"], name="scale"),
        helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"], name="positive"),
        helper.make_node("If", ["cond"], ["branch"], name="if", then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Relu", ["branch"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "if_outer_scope", [helper.make_tensor_value_info("x", F, [2, 4])],
                              [helper.make_tensor_value_info("y", F, [2, 4])],
                              [weight("w", [2, 4], 1), numpy_helper.from_array(np.array(0, np.float32), "zero")])
    save(graph, path)


def loop_body():
    # v_out = v_in * sigmoid(x) + k: k comes from the enclosing graph.
    return helper.make_graph(
        [helper.make_node("Mul", ["v_in", "gate"], ["gated"], name="body_mul"),
         helper.make_node("Add", ["gated", "k"], ["v_out"], name="body_add"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
        "loop_body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", F, [2, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", F, [2, 4])])


def make_loop(path):
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["gate"], name="gate"),
        helper.make_node("Mul", ["x", "w"], ["v0"], name="init"),
        helper.make_node("Loop", ["trips", "true", "v0"], ["v"], name="loop", body=loop_body()),
        helper.make_node("Add", ["v", "x"], ["y"], name="out"),
    ]
    graph = helper.make_graph(nodes, "loop_outer_scope", [helper.make_tensor_value_info("x", F, [2, 4])],
                              [helper.make_tensor_value_info("y", F, [2, 4])],
                              [weight("w", [2, 4], 2), weight("k", [2, 4], 3),
                               numpy_helper.from_array(np.array(3, np.int64), "trips"),
                               numpy_helper.from_array(np.array(True), "true")])
    save(graph, path)


def make_scan(path):
    # A running sum over the first axis, scaled by an outer-scope value.
    body = helper.make_graph(
        [helper.make_node("Mul", ["x_t", "scale"], ["xs"], name="body_scale"),
         helper.make_node("Add", ["s_in", "xs"], ["s_out"], name="body_add"),
         helper.make_node("Identity", ["s_out"], ["y_t"], name="body_out")],
        "scan_body", [helper.make_tensor_value_info("s_in", F, [4]), helper.make_tensor_value_info("x_t", F, [4])],
        [helper.make_tensor_value_info("s_out", F, [4]), helper.make_tensor_value_info("y_t", F, [4])])
    nodes = [
        helper.make_node("Tanh", ["x"], ["xt"], name="tanh"),
        helper.make_node("Abs", ["w"], ["scale"], name="scale"),
        helper.make_node("Scan", ["s0", "xt"], ["s", "ys"], name="scan", body=body, num_scan_inputs=1),
        helper.make_node("Mul", ["ys", "x"], ["y"], name="out"),
    ]
    graph = helper.make_graph(nodes, "scan_outer_scope", [helper.make_tensor_value_info("x", F, [5, 4])],
                              [helper.make_tensor_value_info("y", F, [5, 4]), helper.make_tensor_value_info("s", F, [4])],
                              [weight("w", [4], 4), weight("s0", [4], 5)])
    save(graph, path)


def make_rnn(path, op, gates):
    hidden, inputs = 3, 4
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["xs"], name="pre"),
        helper.make_node(op, ["xs", "W", "R", "B"], ["Y", "Y_h"], name=op.lower(), hidden_size=hidden),
        helper.make_node("Relu", ["Y"], ["y"], name="post"),
        helper.make_node("Add", ["Y_h", "Y_h"], ["h"], name="post_h"),
    ]
    graph = helper.make_graph(nodes, op.lower(), [helper.make_tensor_value_info("x", F, [5, 2, inputs])],
                              [helper.make_tensor_value_info("y", F, [5, 1, 2, hidden]),
                               helper.make_tensor_value_info("h", F, [1, 2, hidden])],
                              [weight("k", [inputs], 6), weight("W", [1, gates * hidden, inputs], 7),
                               weight("R", [1, gates * hidden, hidden], 8), weight("B", [1, 2 * gates * hidden], 9)])
    save(graph, path)


def make_nested(path):
    # A Loop whose body holds an If; the If's branches read the Loop body's value and a value
    # two scopes up.
    then_graph = helper.make_graph([helper.make_node("Add", ["v_in", "h"], ["t"], name="then_add")], "then_branch", [],
                                   [helper.make_tensor_value_info("t", F, [2, 4])])
    else_graph = helper.make_graph([helper.make_node("Sub", ["v_in", "h"], ["e"], name="else_sub")], "else_branch", [],
                                   [helper.make_tensor_value_info("e", F, [2, 4])])
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["i_f"], name="body_cast", to=F),
         helper.make_node("Less", ["i_f", "one"], ["first"], name="body_first"),
         helper.make_node("If", ["first"], ["v_out"], name="body_if", then_branch=then_graph, else_branch=else_graph),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
        "loop_body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", F, [2, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", F, [2, 4])])
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["h"], name="scale"),
        helper.make_node("Loop", ["trips", "true", "x"], ["v"], name="loop", body=body),
        helper.make_node("Relu", ["v"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "nested", [helper.make_tensor_value_info("x", F, [2, 4])],
                              [helper.make_tensor_value_info("y", F, [2, 4])],
                              [weight("w", [2, 4], 10), numpy_helper.from_array(np.array(3, np.int64), "trips"),
                               numpy_helper.from_array(np.array(True), "true"),
                               numpy_helper.from_array(np.array(1, np.float32), "one")])
    save(graph, path)


def make(outdir):
    os.makedirs(outdir, exist_ok=True)
    make_if(os.path.join(outdir, "if.onnx"))
    make_loop(os.path.join(outdir, "loop.onnx"))
    make_scan(os.path.join(outdir, "scan.onnx"))
    make_rnn(os.path.join(outdir, "lstm.onnx"), "LSTM", 4)
    make_rnn(os.path.join(outdir, "gru.onnx"), "GRU", 3)
    make_rnn(os.path.join(outdir, "rnn.onnx"), "RNN", 1)
    make_nested(os.path.join(outdir, "nested.onnx"))
    return 0


NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


def check(fp32_path, converted_path, tolerance):
    import onnxruntime as ort

    try:
        onnx.checker.check_model(onnx.load(converted_path), full_check=True)
    except Exception as e:  # noqa: BLE001 - any checker failure is the finding
        print(f"{converted_path}: ONNX checker: {str(e).splitlines()[0]}")
        return 1
    try:
        converted = ort.InferenceSession(converted_path, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        print(f"{converted_path}: ONNX Runtime does not load it: {str(e).splitlines()[0]}")
        return 1
    reference = ort.InferenceSession(fp32_path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in reference.get_inputs():
        dims = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, dims).astype(np.float32)
    # The converted model may take half inputs (keep-io-types=false).
    converted_feeds = {i.name: feeds[i.name].astype(NUMPY[i.type]) for i in converted.get_inputs()}
    # Each sign of the If condition: the sum of x decides the branch.
    worst = 0.0
    for flip in (1.0, -1.0):
        feeds_now = {k: (v * flip).astype(v.dtype) for k, v in feeds.items()}
        converted_now = {k: (v * flip).astype(v.dtype) for k, v in converted_feeds.items()}
        expected = reference.run(None, feeds_now)
        try:
            got = converted.run(None, converted_now)
        except Exception as e:  # noqa: BLE001
            print(f"{converted_path}: ONNX Runtime fails to run it: {str(e).splitlines()[0]}")
            return 1
        for name, e, g in zip([o.name for o in reference.get_outputs()], expected, got):
            g = g.astype(np.float64)
            if e.shape != g.shape:
                print(f"{converted_path}: output {name}: shape {g.shape}, expected {e.shape}")
                return 1
            scale = max(float(np.max(np.abs(e))), 1e-6)
            err = float(np.max(np.abs(g - e))) / scale
            worst = max(worst, err)
    print(f"{os.path.basename(converted_path)}: max relative error {worst:.3g}")
    if not worst <= tolerance:
        print(f"{converted_path}: error {worst:.3g} above {tolerance}")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        sys.exit(make(sys.argv[2]))
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], float(sys.argv[4])))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
