#!/usr/bin/env python3
"""Checks an optimized model against its original with ONNX's checker and ONNX Runtime, on a
real input that fits the model (see ../shared/models/README.md for each model's
preprocessing). Used by tests/passes/optimize_models_test.cpp.

    python3 tests/passes/optimize_models.py ORIGINAL.onnx OPTIMIZED.onnx OUT_DIR

Writes OUT_DIR/input_K.npy with OUT_DIR/input_K.name (the input fed to both models, for the
whittle runtime side of the test) and OUT_DIR/report.json:
    {"checker": "ok" | message, "full_check": "ok" | "skipped: ..." | message,
     "outputs": [{"name", "norm_rel", "max_abs"}, ...]}
where norm_rel = ||optimized - original|| / ||original|| on ONNX Runtime's outputs. Exits
non-zero only when something could not be run; the C++ test judges the numbers."""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")
DATA = os.path.join(SHARED, "data")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def photo(name, size):
    """An RGB photo from data/photos resized to size = (width, height), as float32 HWC 0..255."""
    image = Image.open(os.path.join(DATA, "photos", name)).convert("RGB").resize(size, Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def imagenet_crop():
    """The first ImageNet sample image, centre-cropped to 224 (its short side is 256), RGB HWC 0..255."""
    image = Image.open(os.path.join(DATA, "imagenet-sample", "images", "n01440764_tench.JPEG")).convert("RGB")
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)


def first_bin(folder):
    files = sorted(f for f in os.listdir(os.path.join(DATA, folder)) if f.endswith(".bin"))
    with open(os.path.join(DATA, folder, files[0]), "rb") as f:
        return f.read()


def nchw(hwc):
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)[None])


def real_inputs(model_file):
    """{input name: array} for the model, from the shared data set that fits it."""
    base = os.path.basename(model_file)
    if base.startswith("mnist"):
        tensor = onnx.TensorProto()
        with open(os.path.join(DATA, "mnist-8-test-data", "test_data_set_0", "input_0.pb"), "rb") as f:
            tensor.ParseFromString(f.read())
        return {"Input3": onnx.numpy_helper.to_array(tensor).astype(np.float32)}
    if base.startswith("squeezenet"):
        bgr = imagenet_crop()[:, :, ::-1] - np.array([104, 117, 123], dtype=np.float32)
        x = nchw(bgr)
        return {"data_0": x.astype(np.float16) if "fp16" in base else x}
    if base.startswith("mobilenetv2"):
        return {"input": nchw((imagenet_crop() / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)}
    if "resnet8" in base:
        return {"input_1": np.frombuffer(first_bin("cifar10-200"), np.uint8).reshape(1, 32, 32, 3).astype(np.float32)}
    if "vww" in base:
        return {"input_1": (np.frombuffer(first_bin("vww-400"), np.uint8).reshape(1, 96, 96, 3) / 255.0).astype(np.float32)}
    if "kws" in base:
        q = np.frombuffer(first_bin("kws-1000"), np.int8).reshape(1, 49, 10, 1)
        if "int8_qdq" in base:
            return {"input_1": q.copy()}
        return {"input_1": ((q.astype(np.float32) - 83.0) * 0.5847029).astype(np.float32)}
    if base.startswith("ultraface"):
        return {"input": nchw((photo("s_l.jpg", (320, 240)) - 127.0) / 128.0).astype(np.float32)}
    if base.startswith("retinaface"):
        bgr = photo("s_l.jpg", (320, 240))[:, :, ::-1] - np.array([104, 117, 123], dtype=np.float32)
        return {"input": nchw(bgr).astype(np.float32)}
    if base.startswith("yolo-fastest"):
        return {"input.1": nchw(photo("hpc203_person.jpg", (352, 352))[:, :, ::-1] / 255.0).astype(np.float32)}
    if base.startswith("super_resolution"):
        image = Image.open(os.path.join(DATA, "photos", "selfie.jpg")).convert("YCbCr").resize((224, 224), Image.BILINEAR)
        y = np.asarray(image, dtype=np.float32)[:, :, 0] / 255.0
        return {"input": y[None, None].astype(np.float32)}
    if base.startswith("vittrack"):
        mean_bgr, std_bgr = IMAGENET_MEAN, IMAGENET_STD  # the README: applied in BGR order
        full = photo("selfie.jpg", (256, 256))[:, :, ::-1]
        template = full[64:192, 64:192]
        prep = lambda a: nchw((a / 255.0 - mean_bgr) / std_bgr).astype(np.float32)
        return {"template": prep(template), "search": prep(full)}
    if base.startswith("all-MiniLM"):
        test = np.load(os.path.join(DATA, "clinc150", "test.npz"))
        return {"input_ids": test["input_ids"][:2].copy(), "attention_mask": test["attention_mask"][:2].copy()}
    raise SystemExit(f"optimize_models.py: no real input known for {base}")


def run_ort(path, feeds):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Compare the graphs themselves, not what ORT's own optimizer makes of them.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return names, session.run(None, feeds)


def check(path, full):
    try:
        onnx.checker.check_model(path, full_check=full)
        return "ok"
    except Exception as e:  # the checker raises several types
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    original, optimized, out = sys.argv[1:]
    report = {"checker": check(optimized, False)}
    # The strict check (with shape inference) is required only where the original passes it.
    report["full_check"] = check(optimized, True) if check(original, True) == "ok" else "skipped: the original fails it"
    feeds = real_inputs(original)
    for k, (name, value) in enumerate(feeds.items()):
        np.save(os.path.join(out, f"input_{k}.npy"), value)
        with open(os.path.join(out, f"input_{k}.name"), "w") as f:
            f.write(name)
    names, expected = run_ort(original, feeds)
    opt_names, actual = run_ort(optimized, feeds)
    report["output_names_equal"] = names == opt_names
    report["outputs"] = []
    for name, e, a in zip(names, expected, actual):
        e64, a64 = e.astype(np.float64), a.astype(np.float64)
        same_shape = e.shape == a.shape
        norm_rel = float(np.linalg.norm(a64 - e64) / max(np.linalg.norm(e64), 1e-30)) if same_shape else float("inf")
        max_abs = float(np.max(np.abs(a64 - e64))) if same_shape and e.size else 0.0
        report["outputs"].append({"name": name, "norm_rel": norm_rel, "max_abs": max_abs,
                                  "same_shape": same_shape, "same_dtype": e.dtype == a.dtype})
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
