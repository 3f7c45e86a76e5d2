#!/usr/bin/env python3
"""int8 on old-opset detectors: what whittle's own opset converter buys, beside ONNX Runtime.

    .venv/bin/python benchmarks/bench_opset_quant.py [--binary build/whittle] [--update-results]

The shared detectors are opset 9 (ultraface) and 11 (retinaface, yolo-fastestv2). Per-channel
int8 weights need DequantizeLinear-13, so the model must be converted first. Three int8 models
per detector, all calibrated on the same tensors and all evaluated in ONNX Runtime:
  - whittle `optimize --quantize int8` (converts to opset 13 itself, per-channel weights);
  - whittle `--per-tensor`: what the earlier silent fallback produced (no conversion needed);
  - ONNX Runtime `quantize_static` (QDQ, MinMax, per-channel) on the model converted to opset 13
    with onnx.version_converter (ORT's quantizer does not convert by itself).
Calibration: 32 images of ../shared/data/imagenet-sample (class index divisible by 10);
evaluation: the 17 photos of ../shared/data/photos, which no quantizer saw. Preprocessing is
done once here (PIL) and fed as tensors to all three, so nothing differs but the quantizer.
Measures, int8 against fp32 in ONNX Runtime over the 17 photos: SQNR of each output (signal and
noise summed over all photos), the lowest SQNR of any channel along each output's last axis
(what a concatenated box/score output hides), and for ultraface the fp32 faces (score > 0.7,
NMS IoU 0.3) that the int8 model finds again (IoU >= 0.5)."""
import argparse
import datetime
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from PIL import Image

from bench_common import cpu_model, update_results  # noqa: E402  (beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
PHOTOS = os.path.join(SHARED, "data", "photos")
IMAGENET = os.path.join(SHARED, "data", "imagenet-sample")


def prep_ultraface(img):
    x = np.asarray(img.convert("RGB").resize((320, 240), Image.BILINEAR), dtype=np.float32)
    return ((x - 127.0) / 128.0).transpose(2, 0, 1)


def prep_retinaface(img):
    x = np.asarray(img.convert("RGB").resize((320, 240), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]
    return (x - np.array([104, 117, 123], np.float32)).transpose(2, 0, 1)


def prep_yolo(img):
    x = np.asarray(img.convert("RGB").resize((352, 352), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]
    return (x / 255.0).transpose(2, 0, 1)


MODELS = {
    "ultraface_version-RFB-320": ("input", prep_ultraface),
    "retinaface_mbnet0.25": ("input", prep_retinaface),
    "yolo-fastestv2_352": ("input.1", prep_yolo),
}


def calib_images():
    names = []
    with open(os.path.join(IMAGENET, "labels.tsv")) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) % 10 == 0:
                names.append(parts[0])
    return [os.path.join(IMAGENET, n) for n in sorted(names)[:32]]


def eval_images():
    return [os.path.join(PHOTOS, n) for n in sorted(os.listdir(PHOTOS)) if n.endswith(".jpg")]


def tensors(paths, prep):
    return np.stack([prep(Image.open(p)) for p in paths]).astype(np.float32)


def run_ort(path, name, batch):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    outs = [sess.run(None, {name: batch[i:i + 1]}) for i in range(len(batch))]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def sqnr(ref, got):
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(signal / noise)


def min_channel_sqnr(ref, got):
    r = ref.reshape(-1, ref.shape[-1]).astype(np.float64)
    g = got.reshape(-1, got.shape[-1]).astype(np.float64)
    return min(sqnr(r[:, c], g[:, c]) for c in range(r.shape[1]))


def nms(boxes, scores, iou_threshold):
    order = np.argsort(-scores)
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        order = np.array([j for j in order[1:] if iou(boxes[i], boxes[j]) <= iou_threshold], dtype=np.int64)
    return boxes[keep]


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def faces(scores, boxes):
    """ultraface: per photo, the boxes with face score > 0.7 after NMS at IoU 0.3."""
    found = []
    for s, b in zip(scores, boxes):
        mask = s[:, 1] > 0.7
        found.append(nms(b[mask], s[mask, 1], 0.3) if mask.any() else np.zeros((0, 4), np.float32))
    return found


def kept_faces(ref_outs, got_outs):
    ref, got = faces(*ref_outs), faces(*got_outs)
    total = sum(len(r) for r in ref)
    kept = sum(sum(1 for box in r if any(iou(box, g) >= 0.5 for g in gs)) for r, gs in zip(ref, got))
    return kept, total


class Reader(CalibrationDataReader):
    def __init__(self, name, batch):
        self.items = iter([{name: batch[i:i + 1]} for i in range(len(batch))])

    def get_next(self):
        return next(self.items, None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    ap.add_argument("--update-results", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, (input_name, prep) in MODELS.items():
            src = os.path.join(SHARED, "models", model + ".onnx")
            calib = tensors(calib_images(), prep)
            evaluation = tensors(eval_images(), prep)
            calib_path = os.path.join(tmp, model + ".calib.npy")
            np.save(calib_path, calib)
            opset = next(o.version for o in onnx.load(src).opset_import if o.domain in ("", "ai.onnx"))
            variants = {}
            for label, extra in (("whittle per-channel", []), ("whittle per-tensor", ["--per-tensor"])):
                out = os.path.join(tmp, f"{model}.{len(variants)}.onnx")
                cmd = [args.binary, "optimize", src, "-o", out, "--quantize", "int8", "--calib", calib_path,
                       "--input-name", input_name, "--calib-size", str(len(calib))] + extra
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                variants[label] = out
            converted = os.path.join(tmp, model + ".opset13.onnx")
            onnx.save(version_converter.convert_version(onnx.load(src), 13), converted)
            ort_out = os.path.join(tmp, model + ".ort.onnx")
            quantize_static(converted, ort_out, Reader(input_name, calib), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            variants["ORT quantize_static"] = ort_out
            ref = run_ort(src, input_name, evaluation)
            out_names = [o.name for o in ort.InferenceSession(src, providers=["CPUExecutionProvider"]).get_outputs()]
            for label, path in variants.items():
                got = run_ort(path, input_name, evaluation)
                row = {"model": model, "opset": opset, "quantizer": label,
                       "sqnr": ", ".join(f"{n} {sqnr(r, g):.1f}" for n, r, g in zip(out_names, ref, got)),
                       "min_channel": min(min_channel_sqnr(r, g) for r, g in zip(ref, got))}
                if model.startswith("ultraface"):
                    row["faces"] = "%d / %d" % kept_faces(ref, got)
                rows.append(row)
                print(row, flush=True)
    lines = [
        "## int8 on old-opset detectors: whittle's opset conversion vs ONNX Runtime quantize_static",
        "",
        "Command: `.venv/bin/python benchmarks/bench_opset_quant.py --update-results`  ",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}; ONNX Runtime {ort.__version__}; "
        f"{datetime.date.today().isoformat()}.  ",
        "Calibration: 32 images of ../shared/data/imagenet-sample (class index divisible by 10); evaluation: the 17 "
        "photos of ../shared/data/photos, which no quantizer saw; the same preprocessed tensors for all three "
        "quantizers. whittle per-channel converts the model to opset 13 with its own converter (upgrade-opset); "
        "whittle per-tensor is what its earlier silent fallback produced; ORT's `quantize_static` (QDQ, MinMax, "
        "per-channel, uint8 activations) runs on the model converted to opset 13 by onnx.version_converter. "
        "All int8 models run in ONNX Runtime against the fp32 model. SQNR in dB, signal and noise summed over "
        "the photos; 'lowest channel' is the lowest SQNR of any channel along an output's last axis; ultraface "
        "faces: fp32 detections (score > 0.7, NMS IoU 0.3) found again by the int8 model at IoU ≥ 0.5.",
        "",
        "| model (opset) | quantizer | SQNR per output (dB) | lowest channel (dB) | ultraface faces kept |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['model']} ({r['opset']}) | {r['quantizer']} | {r['sqnr']} | {r['min_channel']:.1f} | "
                     f"{r.get('faces', '—')} |")
    text = "\n".join(lines)
    print(text)
    if args.update_results:
        update_results("opset-quant", text)


if __name__ == "__main__":
    sys.exit(main())
