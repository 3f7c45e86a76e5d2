"""Old-opset models for the adapters of upgrade-opset, and their check in ONNX Runtime.

usage:
  upgrade_opset_cases.py make OUT_DIR
      writes OUT_DIR/<case>.onnx (built with onnx.helper at the case's old opset), the inputs
      OUT_DIR/<case>.npz, and OUT_DIR/cases.txt: "<case> <opset> <exact|close> <whittle|ort-only>"
      per line (close: 1e-5 relative; ort-only: whittle's runtime does not run the old form;
      refused: the conversion must fail with an error naming the node).
  upgrade_opset_cases.py check OUT_DIR
      for every OUT_DIR/<case>.to<N>.onnx that tests/passes/upgrade_opset_test.cpp wrote: the ONNX
      checker (full check) accepts it, it imports opset N, and ONNX Runtime gives the same outputs
      as for <case>.onnx on <case>.npz. One line per model; exit 1 if any fails.
  upgrade_opset_cases.py compare ORIGINAL UPGRADED [ORIGINAL UPGRADED ...]
      the same check (1e-5 relative) for real models, on seeded random inputs in [0, 1) (free
      dims 1). One line per pair; exit 1 if any fails.
"""
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
RNG = np.random.default_rng(7)


def model(nodes, inputs, outputs, opset, initializers=()):
    graph = helper.make_graph(nodes, "case", inputs, outputs, initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = {7: 4, 8: 4, 9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 16: 8, 17: 8, 18: 8}[opset]
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)  # outputs: shapes filled in by make()


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def rand(*shape):
    return RNG.uniform(-2, 2, shape).astype(np.float32)


CASES = []


def case(name, opset, tolerance="exact", runner="whittle"):
    def register(fn):
        CASES.append((name, opset, tolerance, runner, fn))
        return fn

    return register


# ---- Upsample -> Resize ----
@case("upsample7_nearest", 7)
def _():
    n = helper.make_node("Upsample", ["x"], ["y"], mode="nearest", scales=[1.0, 1.0, 2.0, 3.0])
    return model([n], [vi("x", F, [1, 2, 3, 4])], [vi("y", F, None)], 7), {"x": rand(1, 2, 3, 4)}


@case("upsample7_linear", 7, "close")
def _():
    n = helper.make_node("Upsample", ["x"], ["y"], mode="linear", scales=[1.0, 1.0, 2.0, 2.0])
    return model([n], [vi("x", F, [1, 2, 3, 4])], [vi("y", F, None)], 7), {"x": rand(1, 2, 3, 4)}


@case("upsample9_constant_scales", 9)
def _():
    n = helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")
    s = init("s", np.array([1, 1, 3, 2], np.float32))
    return model([n], [vi("x", F, [1, 2, 3, 4])], [vi("y", F, None)], 9, [s]), {"x": rand(1, 2, 3, 4)}


@case("upsample9_dynamic_scales", 9, "exact", "ort-only")
def _():
    n = helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")
    inputs = [vi("x", F, [1, 2, 3, 4]), vi("s", F, [4])]
    return model([n], inputs, [vi("y", F, None)], 9), {"x": rand(1, 2, 3, 4), "s": np.array([1, 1, 2, 3], np.float32)}


# ---- Resize ----
def resize10(name, mode, scales, tolerance):
    @case(name, 10, tolerance)
    def _():
        n = helper.make_node("Resize", ["x", "s"], ["y"], mode=mode)
        s = init("s", np.array(scales, np.float32))
        return model([n], [vi("x", F, [1, 2, 5, 7])], [vi("y", F, None)], 10, [s]), {"x": rand(1, 2, 5, 7)}


resize10("resize10_nearest_up", "nearest", [1, 1, 2, 2.5], "exact")
resize10("resize10_nearest_down", "nearest", [1, 1, 0.5, 0.6], "exact")
resize10("resize10_linear_up", "linear", [1, 1, 1.7, 2.3], "close")
resize10("resize10_linear_down", "linear", [1, 1, 0.6, 0.5], "close")


def resize11_tf(name, nearest_mode, scales):
    @case(name, 11)
    def _():
        n = helper.make_node("Resize", ["x", "roi", "s"], ["y"], mode="nearest",
                             coordinate_transformation_mode="tf_half_pixel_for_nn", **nearest_mode)
        inits = [init("roi", np.zeros([0], np.float32)), init("s", np.array(scales, np.float32))]
        return model([n], [vi("x", F, [1, 2, 5, 7])], [vi("y", F, None)], 11, inits), {"x": rand(1, 2, 5, 7)}


resize11_tf("resize11_tf_half_pixel_floor", {"nearest_mode": "floor"}, [1, 1, 2.5, 1.5])
resize11_tf("resize11_tf_half_pixel_round", {}, [1, 1, 0.6, 1.7])


# ---- attributes that became inputs ----
@case("slice1", 9)
def _():
    a = helper.make_node("Slice", ["x"], ["a"], starts=[1, -3], ends=[1000, -1], axes=[0, 2])
    b = helper.make_node("Slice", ["x"], ["b"], starts=[0, 1], ends=[2, 3])
    return model([a, b], [vi("x", F, [3, 4, 5])], [vi("a", F, None), vi("b", F, None)], 9), {"x": rand(3, 4, 5)}


@case("topk1", 9)
def _():
    n = helper.make_node("TopK", ["x"], ["v", "i"], k=3, axis=-1)
    outputs = [vi("v", F, None), vi("i", TensorProto.INT64, None)]
    return model([n], [vi("x", F, [2, 6])], outputs, 9), {"x": rand(2, 6)}


@case("pad2", 10)
def _():
    a = helper.make_node("Pad", ["x"], ["a"], pads=[0, 1, 2, 0, 2, 1], value=1.5)
    b = helper.make_node("Pad", ["x"], ["b"], pads=[0, 0, 1, 0, 0, 2], mode="reflect")
    c = helper.make_node("Pad", ["x"], ["c"], pads=[1, 0, 0, 0, 0, 0])
    outputs = [vi("a", F, None), vi("b", F, None), vi("c", F, None)]
    return model([a, b, c], [vi("x", F, [2, 3, 4])], outputs, 10), {"x": rand(2, 3, 4)}


@case("clip6", 10)
def _():
    a = helper.make_node("Clip", ["x"], ["a"], min=-0.5, max=0.7)
    b = helper.make_node("Clip", ["x"], ["b"], max=0.25)
    c = helper.make_node("Clip", ["x"], ["c"])
    outputs = [vi("a", F, None), vi("b", F, None), vi("c", F, None)]
    return model([a, b, c], [vi("x", F, [2, 5])], outputs, 10), {"x": rand(2, 5)}


@case("dropout7", 9)
def _():
    a = helper.make_node("Dropout", ["x"], ["a", "mask"], ratio=0.3)
    b = helper.make_node("Relu", ["a"], ["y"])
    return model([a, b], [vi("x", F, [2, 5])], [vi("y", F, None)], 9), {"x": rand(2, 5)}


@case("split2", 9)
def _():
    a = helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3])
    c = helper.make_node("Split", ["x"], ["c", "d"], axis=-1)
    outputs = [vi(n, F, None) for n in "abcd"]
    return model([a, c], [vi("x", F, [2, 4, 6])], outputs, 9), {"x": rand(2, 4, 6)}


@case("squeeze_unsqueeze11", 11)
def _():
    u = helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0, 3])
    s = helper.make_node("Squeeze", ["u"], ["s"], axes=[0])
    t = helper.make_node("Squeeze", ["u"], ["t"])
    outputs = [vi("u", F, None), vi("s", F, None), vi("t", F, None)]
    return model([u, s, t], [vi("x", F, [2, 3, 1])], outputs, 11), {"x": rand(2, 3, 1)}


@case("unsqueeze7", 7)
def _():
    u = helper.make_node("Unsqueeze", ["x"], ["u"], axes=[1])
    return model([u], [vi("x", F, [2, 3])], [vi("u", F, None)], 7), {"x": rand(2, 3)}


REDUCTIONS = [("ReduceSum", {"axes": [1], "keepdims": 0}), ("ReduceMean", {"axes": [-1]}), ("ReduceMax", {}),
              ("ReduceMin", {"axes": [0, 2]}), ("ReduceProd", {"axes": [2]}), ("ReduceL1", {"axes": [1]}),
              ("ReduceL2", {"axes": [1, 2]}), ("ReduceLogSum", {"axes": [2]}), ("ReduceLogSumExp", {"axes": [0]}),
              ("ReduceSumSquare", {"axes": [-2], "keepdims": 0})]


def reductions(name, opset):
    @case(name, opset, "close")
    def _():
        nodes, outputs, inits = [helper.make_node("Abs", ["x"], ["ax"])], [], []
        for i, (op, attrs) in enumerate(REDUCTIONS):
            inputs = ["ax" if op in ("ReduceL1", "ReduceL2", "ReduceLogSum") else "x"]
            attrs = dict(attrs)
            if op == "ReduceSum" and opset >= 13:  # ReduceSum-13 already takes axes as an input
                inits.append(init(f"axes{i}", np.array(attrs.pop("axes"), np.int64)))
                inputs.append(f"axes{i}")
            nodes.append(helper.make_node(op, inputs, [f"r{i}"], **attrs))
            outputs.append(vi(f"r{i}", F, None))
        return model(nodes, [vi("x", F, [3, 4, 5])], outputs, opset, inits), {"x": rand(3, 4, 5)}


reductions("reduce11", 11)
reductions("reduce13", 13)


# ---- changed meaning ----
@case("softmax11", 11, "close")
def _():
    a = helper.make_node("Softmax", ["x"], ["a"])
    b = helper.make_node("LogSoftmax", ["x"], ["b"], axis=2)
    c = helper.make_node("Hardmax", ["x"], ["c"], axis=0)
    d = helper.make_node("Softmax", ["z"], ["d"], axis=1)
    inputs = [vi("x", F, [2, 3, 4]), vi("z", F, [2, 5, 1, 1])]
    outputs = [vi(n, F, None) for n in "abcd"]
    return model([a, b, c, d], inputs, outputs, 11), {"x": rand(2, 3, 4), "z": rand(2, 5, 1, 1)}


@case("batchnorm7_spatial0", 7, "close", "ort-only")
def _():
    n = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0, epsilon=1e-3)
    shape = [3, 2, 2]
    inits = [init("s", rand(*shape)), init("b", rand(*shape)), init("m", rand(*shape)),
             init("v", RNG.uniform(0.5, 2, shape).astype(np.float32))]
    return model([n], [vi("x", F, [2, 3, 2, 2])], [vi("y", F, None)], 7, inits), {"x": rand(2, 3, 2, 2)}


@case("batchnorm9", 9, "close")
def _():
    n = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    inits = [init("s", rand(3)), init("b", rand(3)), init("m", rand(3)), init("v", RNG.uniform(0.5, 2, [3]).astype(np.float32))]
    return model([n], [vi("x", F, [2, 3, 2, 2])], [vi("y", F, None)], 9, inits), {"x": rand(2, 3, 2, 2)}


@case("scatter9", 9)
def _():
    n = helper.make_node("Scatter", ["x", "i", "u"], ["y"], axis=1)
    inits = [init("i", np.array([[1, 0, 2], [0, 2, 1]], np.int64)), init("u", rand(2, 3))]
    return model([n], [vi("x", F, [2, 3])], [vi("y", F, None)], 9, inits), {"x": rand(2, 3)}


@case("roialign10", 10, "close", "whittle")
def _():
    n = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], output_height=2, output_width=2, sampling_ratio=2)
    inits = [init("rois", np.array([[0.5, 0.5, 3.2, 4.1], [1, 0, 4, 3]], np.float32)),
             init("idx", np.array([0, 0], np.int64))]
    return model([n], [vi("x", F, [1, 2, 6, 6])], [vi("y", F, None)], 10, inits), {"x": rand(1, 2, 6, 6)}


@case("gridsample16", 16, "close", "whittle")
def _():
    n = helper.make_node("GridSample", ["x", "g"], ["y"], mode="bilinear", align_corners=0)
    grid = RNG.uniform(-1, 1, [1, 3, 4, 2]).astype(np.float32)
    return model([n], [vi("x", F, [1, 2, 5, 5])], [vi("y", F, None)], 16, [init("g", grid)]), {"x": rand(1, 2, 5, 5)}


@case("groupnorm18", 18, "close", "ort-only")
def _():
    n = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2, epsilon=1e-4)
    inits = [init("s", np.array([0.5, 2.0], np.float32)), init("b", np.array([0.1, -0.3], np.float32))]
    return model([n], [vi("x", F, [2, 4, 3, 3])], [vi("y", F, None)], 18, inits), {"x": rand(2, 4, 3, 3)}


@case("dft17", 17, "close", "ort-only")
def _():
    n = helper.make_node("DFT", ["x"], ["y"], axis=1, onesided=0)
    return model([n], [vi("x", F, [2, 8, 1])], [vi("y", F, None)], 17), {"x": rand(2, 8, 1)}


# ---- ops whose changes the table passes through ----
@case("compatible7", 7, "close")
def _():
    nodes = [
        helper.make_node("Gemm", ["x2", "w", "c"], ["g"], alpha=0.5, beta=2.0, transB=1),
        helper.make_node("MaxPool", ["x4"], ["mp"], kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 0, 0]),
        helper.make_node("AveragePool", ["x4"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("AveragePool", ["x4"], ["ap0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("DepthToSpace", ["x4"], ["d2s"], blocksize=2),
        helper.make_node("Concat", ["x4", "x4"], ["cat"], axis=1),
        helper.make_node("Flatten", ["x4"], ["fl"], axis=2),
        helper.make_node("Gather", ["x2", "gi"], ["ga"], axis=1),
        helper.make_node("Greater", ["x2", "k2"], ["gt"]),
        helper.make_node("Cast", ["gt"], ["gtf"], to=F),
        helper.make_node("Max", ["x2", "x2n"], ["mx"]),
        helper.make_node("Sum", ["x2", "x2n", "x2"], ["sm"]),
        helper.make_node("GlobalAveragePool", ["x4"], ["gap"]),
        helper.make_node("LeakyRelu", ["x2"], ["lr"], alpha=0.2),
        helper.make_node("HardSigmoid", ["x2"], ["hs"]),
        helper.make_node("Constant", [], ["k"], value=init("kv", np.array([1.5, -2.0], np.float32))),
        helper.make_node("Mul", ["x2", "k2"], ["mk"]),
    ]
    inits = [init("w", rand(2, 4)), init("c", rand(2)), init("gi", np.array([0, 3, 1], np.int64)),
             init("k2", rand(4))]
    inputs = [vi("x2", F, [2, 4]), vi("x2n", F, [2, 4]), vi("x4", F, [1, 4, 4, 4])]
    outs = ["g", "mp", "ap", "ap0", "d2s", "cat", "fl", "ga", "gtf", "mx", "sm", "gap", "lr", "hs", "k", "mk"]
    feeds = {"x2": rand(2, 4), "x2n": rand(2, 4), "x4": rand(1, 4, 4, 4)}
    return model(nodes, inputs, [vi(o, F, None) for o in outs], 7, inits), feeds


# ort-only: the C++ side feeds random integers to whittle's runtime, and Mod by 0 fails
@case("compatible10", 10, "exact", "ort-only")
def _():
    nodes = [
        helper.make_node("Mod", ["a", "b"], ["m"]),
        helper.make_node("Equal", ["a", "b"], ["e"]),
        helper.make_node("Where", ["e", "a", "b"], ["w"]),
        helper.make_node("NonZero", ["e"], ["nz"]),
        helper.make_node("Expand", ["a", "shape"], ["ex"]),
        helper.make_node("ConstantOfShape", ["shape"], ["cs"], value=init("v", np.array([3], np.int64))),
    ]
    inputs = [vi("a", TensorProto.INT64, [2, 3]), vi("b", TensorProto.INT64, [2, 3])]
    outputs = [vi(o, TensorProto.INT64, None) for o in ["m", "w", "nz", "ex", "cs"]]
    feeds = {"a": RNG.integers(1, 9, [2, 3]), "b": RNG.integers(1, 4, [2, 3])}
    return model(nodes, inputs, outputs, 10, [init("shape", np.array([2, 2, 3], np.int64))]), feeds


# ---- refused: the converter must stop with an error naming the node ----
@case("if_softmax11", 11, "exact", "refused")
def _():
    def branch(name, axis):
        n = helper.make_node("Softmax", ["x"], [name + "_y"], axis=axis)
        return helper.make_graph([n], name, [], [vi(name + "_y", F, [2, 3, 4])])

    n = helper.make_node("If", ["c"], ["y"], then_branch=branch("then", 1), else_branch=branch("else", 2))
    inputs = [vi("c", TensorProto.BOOL, []), vi("x", F, [2, 3, 4])]
    feeds = {"c": np.array(True), "x": rand(2, 3, 4)}
    return model([n], inputs, [vi("y", F, None)], 11), feeds


@case("resize10_dynamic_nearest", 10, "exact", "refused")
def _():
    n = helper.make_node("Resize", ["x", "s"], ["y"], mode="nearest")
    inputs = [vi("x", F, [1, 1, 4, 4]), vi("s", F, [4])]
    return model([n], inputs, [vi("y", F, None)], 10), {"x": rand(1, 1, 4, 4), "s": np.array([1, 1, 2, 2], np.float32)}


def make(out_dir):
    lines = []
    for name, opset, tolerance, runner, build in CASES:
        m, feeds = build()
        print(f"{name}: opset {opset}", file=sys.stderr)
        # Declare the outputs as ONNX Runtime computes them (the checker wants their shapes).
        outputs = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
        for declared, value in zip(m.graph.output, outputs):
            elem = helper.np_dtype_to_tensor_dtype(value.dtype)
            declared.CopyFrom(helper.make_tensor_value_info(declared.name, elem, list(value.shape)))
        try:
            onnx.checker.check_model(m, full_check=True)
        except onnx.checker.ValidationError as e:
            if "is deprecated" not in str(e):  # GroupNormalization-18: deprecated, still run by ORT
                raise
        onnx.save(m, os.path.join(out_dir, name + ".onnx"))
        np.savez(os.path.join(out_dir, name + ".npz"), **feeds)
        lines.append(f"{name} {opset} {tolerance} {runner}")
    with open(os.path.join(out_dir, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


def session(path):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # no warnings about initializers listed as inputs (old exporters)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def compare(original, upgraded, feeds, tolerance):
    """An error message, or None when the outputs agree."""
    m = onnx.load(upgraded)
    onnx.checker.check_model(m, full_check=True)
    a = session(original).run(None, feeds)
    b = session(upgraded).run(None, feeds)
    if len(a) != len(b):
        return f"{len(a)} outputs before, {len(b)} after"
    for i, (x, y) in enumerate(zip(a, b)):
        if x.shape != y.shape or x.dtype != y.dtype:
            return f"output {i}: {x.dtype}{list(x.shape)} before, {y.dtype}{list(y.shape)} after"
        if tolerance == "exact":
            if not np.array_equal(x, y, equal_nan=True):
                return f"output {i}: not identical (max |diff| {np.max(np.abs(x.astype(np.float64) - y)):.3g})"
        else:
            scale = max(float(np.max(np.abs(x))), 1e-30)
            err = float(np.max(np.abs(x.astype(np.float64) - y))) / scale
            if err > 1e-5:
                return f"output {i}: max |diff| / max |x| = {err:.3g} > 1e-5"
    return None


def check(out_dir):
    failed = 0
    count = 0
    with open(os.path.join(out_dir, "cases.txt")) as f:
        cases = [line.split() for line in f if line.strip()]
    for name, opset, tolerance, _ in cases:
        feeds = dict(np.load(os.path.join(out_dir, name + ".npz")))
        for upgraded in sorted(glob.glob(os.path.join(out_dir, name + ".to*.onnx"))):
            target = int(upgraded.rsplit(".to", 1)[1].split(".")[0])
            count += 1
            try:
                imported = {o.domain: o.version for o in onnx.load(upgraded).opset_import}
                error = None if imported.get("", imported.get("ai.onnx")) == target else f"imports {imported}"
                error = error or compare(os.path.join(out_dir, name + ".onnx"), upgraded, feeds, tolerance)
            except Exception as e:  # the checker or ORT refused the model
                error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            status = "ok" if error is None else "FAILED: " + error
            print(f"{name} opset {opset} -> {target}: {status}")
            failed += error is not None
    print(f"{count - failed} of {count} upgraded models agree with their originals in ONNX Runtime")
    return 1 if failed or count == 0 else 0


def compare_real(pairs):
    failed = 0
    for original, upgraded in pairs:
        rng = np.random.default_rng(0)
        feeds = {}
        for i in session(original).get_inputs():
            dims = [d if isinstance(d, int) else 1 for d in i.shape]
            dtype = np.float16 if i.type == "tensor(float16)" else np.float32
            feeds[i.name] = rng.uniform(0, 1, dims).astype(dtype)
        try:
            error = compare(original, upgraded, feeds, "close")
        except Exception as e:
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        print(f"{os.path.basename(upgraded)}: {'ok' if error is None else 'FAILED: ' + error}")
        failed += error is not None
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        sys.exit(make(sys.argv[2]))
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) >= 4 and len(sys.argv) % 2 == 0 and sys.argv[1] == "compare":
        sys.exit(compare_real(list(zip(sys.argv[2::2], sys.argv[3::2]))))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
