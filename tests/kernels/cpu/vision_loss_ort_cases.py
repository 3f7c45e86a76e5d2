#!/usr/bin/env python3
"""One-node models of the sampling, detection, loss and long-tail ops, with ONNX Runtime's
outputs, for the kernel tests of kernels/cpu/{loss,grid_sample,col2im_deform_conv,detection,
einsum,selection,math_misc}.cpp.

usage: vision_loss_ort_cases.py DIR

Writes, for each case NAME, DIR/NAME.onnx and DIR/NAME.npz (the graph inputs by name, and
out_<i> for ONNX Runtime's output i, CPU provider, 1 thread) and prints the case names, one a
line. Case names start with the op's family (loss_, gridsample_, affinegrid_, col2im_,
deformconv_, roialign_, nms_, centercroppad_, einsum_, det_, shrink_, compress_, unique_).
A case that ONNX Runtime cannot run is an error: every case here is one it runs.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

OUT = sys.argv[1]
ort.set_default_logger_severity(3)  # RoiAlign max mode warns on every session
rng = np.random.default_rng(1914)
NAMES = []

NP_TO_ONNX = {np.float32: onnx.TensorProto.FLOAT, np.float64: onnx.TensorProto.DOUBLE,
              np.int64: onnx.TensorProto.INT64, np.int32: onnx.TensorProto.INT32, np.bool_: onnx.TensorProto.BOOL,
              np.uint8: onnx.TensorProto.UINT8}


def case(name, op, inputs, n_out=1, opset=20, constants=(), **attrs):
    """inputs: list of (name, array) or None for an absent optional input; constants: names fed
    as initializers (ONNX Runtime wants some inputs constant for shape inference)."""
    in_names, graph_inputs, inits, feeds = [], [], [], {}
    for item in inputs:
        if item is None:
            in_names.append("")
            continue
        nm, arr = item
        in_names.append(nm)
        if nm in constants:
            inits.append(numpy_helper.from_array(arr, nm))
        else:
            graph_inputs.append(helper.make_tensor_value_info(nm, NP_TO_ONNX[arr.dtype.type], arr.shape))
            feeds[nm] = arr
    out_names = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, in_names, out_names, **attrs)
    graph = helper.make_graph([node], name, graph_inputs,
                              [helper.make_value_info(o, onnx.TypeProto()) for o in out_names],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    onnx.save(model, os.path.join(OUT, name + ".onnx"))
    arrays = dict(feeds)
    for i, o in enumerate(outs):
        arrays[f"out_{i}"] = np.array(o, order="C")  # not ascontiguousarray: it makes scalars 1-D
    np.savez(os.path.join(OUT, name + ".npz"), **arrays)
    NAMES.append(name)


def f(*shape, lo=-1.0, hi=1.0, dtype=np.float32):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


# ---- losses ----
for dt in (np.float32, np.float64):
    tag = "f32" if dt == np.float32 else "f64"
    for shape in ((4, 5), (3, 5, 6), (2, 4, 3, 5)):
        target_shape = (shape[0],) + shape[2:]
        t = rng.integers(0, shape[1], size=target_shape).astype(np.int64)
        t.flat[0] = 1  # the ignored class occurs
        w = f(shape[1], lo=0.2, hi=2.0, dtype=dt)
        for red in ("none", "sum", "mean"):
            for weighted in (False, True):
                for ii in (None, 1):
                    attrs = {"reduction": red}
                    if ii is not None:
                        attrs["ignore_index"] = ii
                    sfx = f"{tag}_{len(shape)}d_{red}{'_w' if weighted else ''}{'_ii' if ii is not None else ''}"
                    x = f(*shape, dtype=dt)
                    ins = [("x", x), ("t", t)] + ([("w", w)] if weighted else [])
                    case(f"loss_nll_{sfx}", "NegativeLogLikelihoodLoss", ins, opset=13, **attrs)
                    case(f"loss_sce_{sfx}", "SoftmaxCrossEntropyLoss", ins, n_out=2, opset=13, **attrs)

# ---- GridSample (opset 20: 4-D and 5-D) ----
for mode in ("linear", "nearest", "cubic"):
    for pad in ("zeros", "border", "reflection"):
        for ac in (0, 1):
            x = f(2, 3, 5, 7)
            g = f(2, 4, 6, 2, lo=-1.4, hi=1.4)
            case(f"gridsample_{mode}_{pad}_ac{ac}", "GridSample", [("x", x), ("g", g)], mode=mode,
                 padding_mode=pad, align_corners=ac)
for mode in ("linear", "nearest"):
    for pad in ("zeros", "border", "reflection"):
        x = f(1, 2, 3, 4, 5)
        g = f(1, 2, 3, 4, 3, lo=-1.3, hi=1.3)
        case(f"gridsample_5d_{mode}_{pad}", "GridSample", [("x", x), ("g", g)], mode=mode, padding_mode=pad)
case("gridsample_opset16_bicubic", "GridSample", [("x", f(1, 2, 4, 5)), ("g", f(1, 3, 3, 2, lo=-1.2, hi=1.2))],
     opset=16, mode="bicubic", padding_mode="border")
case("gridsample_f64", "GridSample", [("x", f(1, 2, 4, 5, dtype=np.float64)),
                                      ("g", f(1, 3, 3, 2, dtype=np.float64))], mode="linear")

# ---- AffineGrid ----
for ac in (0, 1):
    case(f"affinegrid_2d_ac{ac}", "AffineGrid", [("theta", f(2, 2, 3)), ("size", np.array([2, 3, 5, 7], np.int64))],
         constants=("size",), align_corners=ac)
    case(f"affinegrid_3d_ac{ac}", "AffineGrid", [("theta", f(2, 3, 4)), ("size", np.array([2, 1, 3, 4, 5], np.int64))],
         constants=("size",), align_corners=ac)

# ---- Col2Im ----
case("col2im_basic", "Col2Im", [("x", f(2, 6, 9)), ("image", np.array([4, 5], np.int64)),
                                 ("block", np.array([2, 3], np.int64))], constants=("image", "block"), opset=18)
case("col2im_strided_padded", "Col2Im", [("x", f(1, 8, 9)), ("image", np.array([5, 5], np.int64)),
                                          ("block", np.array([2, 2], np.int64))], constants=("image", "block"),
     opset=18, strides=[2, 2], pads=[1, 1, 1, 1])
case("col2im_dilated", "Col2Im", [("x", f(1, 12, 8)), ("image", np.array([4, 6], np.int64)),
                                   ("block", np.array([2, 2], np.int64))], constants=("image", "block"),
     opset=18, dilations=[2, 2])

# ---- DeformConv ----
for name, (c, oc, grp, og, k, stride, pad, dil, with_mask, with_bias) in {
        "basic": (2, 3, 1, 1, 3, 1, 1, 1, False, False),
        "groups_mask_bias": (4, 6, 2, 2, 3, 1, 1, 1, True, True),
        "strided_dilated": (2, 2, 1, 2, 2, 2, 0, 2, True, False)}.items():
    h, w = 7, 8
    oh = (h + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
    ow = (w + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
    ins = [("x", f(2, c, h, w)), ("w", f(oc, c // grp, k, k)), ("off", f(2, og * k * k * 2, oh, ow, lo=-2, hi=2)),
           ("b", f(oc)) if with_bias else None, ("m", f(2, og * k * k, oh, ow, lo=0, hi=1)) if with_mask else None]
    while ins[-1] is None:
        ins.pop()
    case(f"deformconv_{name}", "DeformConv", ins, opset=19, group=grp, offset_group=og, kernel_shape=[k, k],
         strides=[stride, stride], pads=[pad] * 4, dilations=[dil, dil])

# ---- RoiAlign ----
for mode in ("avg", "max"):
    for ctm in ("half_pixel", "output_half_pixel"):
        for sr in (0, 2):
            x = f(2, 3, 12, 10)
            rois = np.array([[0, 0, 9, 9], [2.5, 1.5, 7.2, 11.0], [-2, 3, 4, 8], [1, 1, 1.5, 1.2], [3, 3, 30, 30]],
                            np.float32)
            bi = np.array([0, 1, 1, 0, 1], np.int64)
            case(f"roialign_{mode}_{ctm}_sr{sr}", "RoiAlign", [("x", x), ("rois", rois), ("bi", bi)], opset=16,
                 mode=mode, coordinate_transformation_mode=ctm, output_height=3, output_width=4, sampling_ratio=sr,
                 spatial_scale=0.75)
case("roialign_no_rois", "RoiAlign", [("x", f(1, 2, 6, 6)), ("rois", np.zeros((0, 4), np.float32)),
                                       ("bi", np.zeros((0,), np.int64))], opset=16, output_height=2, output_width=2)

# ---- NonMaxSuppression ----
def boxes(b, n):
    c = rng.uniform(0, 10, size=(b, n, 2))
    s = rng.uniform(0.5, 3, size=(b, n, 2))
    return np.concatenate([c - s / 2, c + s / 2], axis=2).astype(np.float32)


for cpb in (0, 1):
    for st in (None, 0.3):
        bx = boxes(2, 40)
        if cpb == 1:
            bx = np.concatenate([(bx[..., :2] + bx[..., 2:]) / 2, bx[..., 2:] - bx[..., :2]], axis=2)
        sc = f(2, 3, 40, lo=0, hi=1)
        ins = [("boxes", bx), ("scores", sc), ("max", np.array([7], np.int64)), ("iou", np.array([0.4], np.float32))]
        if st is not None:
            ins.append(("score", np.array([st], np.float32)))
        case(f"nms_cpb{cpb}_{'st' if st is not None else 'nost'}", "NonMaxSuppression", ins, opset=11,
             constants=("max", "iou", "score"), center_point_box=cpb)
case("nms_no_boxes", "NonMaxSuppression", [("boxes", np.zeros((1, 0, 4), np.float32)),
                                            ("scores", np.zeros((1, 2, 0), np.float32)),
                                            ("max", np.array([5], np.int64))], opset=11, constants=("max",))
case("nms_flipped_ties", "NonMaxSuppression",
     [("boxes", np.array([[[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1.1], [5, 5, 6, 6]]], np.float32)),
      ("scores", np.array([[[0.5, 0.5, 0.5, 0.5]]], np.float32)), ("max", np.array([10], np.int64)),
      ("iou", np.array([0.5], np.float32))], opset=11, constants=("max", "iou"))

# ---- CenterCropPad ----
case("centercroppad_mixed", "CenterCropPad", [("x", f(7, 6, 3)), ("shape", np.array([4, 9], np.int64))], opset=18,
     constants=("shape",), axes=[0, 1])
case("centercroppad_all", "CenterCropPad", [("x", f(5, 8, 2)), ("shape", np.array([6, 3, 2], np.int64))], opset=18,
     constants=("shape",))

# ---- Einsum ----
EINSUM = [
    ("matmul", "ij,jk->ik", [(3, 4), (4, 5)]),
    ("batch_matmul", "bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("attention_scores", "bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),
    ("ellipsis_broadcast", "...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 2)]),
    ("diagonal", "ii->i", [(4, 4)]),
    ("trace", "ii", [(5, 5)]),
    ("sum_all", "ij->", [(3, 4)]),
    ("outer", "i,j->ij", [(3,), (4,)]),
    ("implicit", "ij,jk", [(3, 4), (4, 2)]),
    ("implicit_transpose", "ba", [(3, 4)]),
    ("three_operands", "ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]),
    ("hadamard_reduce", "ij,ij->i", [(3, 5), (3, 5)]),
    ("mixed_private", "ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]),
    ("repeated_in_two", "iij,jk->ik", [(3, 3, 4), (4, 2)]),
    ("uppercase", "Ab,bC->AC", [(2, 3), (3, 4)]),
    ("ellipsis_middle", "a...c,c->a...", [(2, 3, 4, 5), (5,)]),
]
for name, eq, shapes in EINSUM:
    ins = [(f"x{i}", f(*s)) for i, s in enumerate(shapes)]
    case(f"einsum_{name}", "Einsum", ins, opset=12, equation=eq)
case("einsum_int64", "Einsum", [("a", rng.integers(-5, 5, size=(3, 4)).astype(np.int64)),
                                ("b", rng.integers(-5, 5, size=(4, 2)).astype(np.int64))], opset=12, equation="ij,jk->ik")
case("einsum_f64", "Einsum", [("a", f(3, 4, dtype=np.float64)), ("b", f(4, 3, dtype=np.float64))], opset=12,
     equation="ij,ji->")

# ---- Shrink, Compress, Unique (ONNX Runtime 1.32 has no Det kernel: see math_misc_test.cpp) ----
case("shrink_soft", "Shrink", [("x", f(4, 5, lo=-3, hi=3))], opset=9, lambd=0.7, bias=0.3)
case("shrink_int32", "Shrink", [("x", rng.integers(-6, 6, size=(10,)).astype(np.int32))], opset=9, lambd=2.0, bias=1.0)
case("compress_axis1", "Compress", [("x", f(3, 5, 2)), ("c", np.array([1, 0, 1, 1, 0], np.bool_))], opset=11, axis=1)
case("compress_flat_short", "Compress", [("x", f(2, 3)), ("c", np.array([0, 1, 1, 0], np.bool_))], opset=11)
vals = rng.integers(0, 4, size=(12,)).astype(np.float32)
case("unique_sorted", "Unique", [("x", vals)], n_out=4, opset=11)
case("unique_unsorted", "Unique", [("x", vals)], n_out=4, opset=11, sorted=0)
rows = rng.integers(0, 2, size=(6, 3)).astype(np.int64)
case("unique_axis0_int64", "Unique", [("x", rows)], n_out=4, opset=11, axis=0)
case("unique_axis1_unsorted", "Unique", [("x", rows.T.copy())], n_out=4, opset=11, axis=1, sorted=0)

print("\n".join(NAMES))
