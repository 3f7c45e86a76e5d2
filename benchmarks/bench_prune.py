#!/usr/bin/env python3
"""Pruning on squeezenet1.1 and mobilenetv2-12-rebuilt-fp32: top-1 on the 900 evaluation
images of ../shared/data/imagenet-sample (class index not divisible by 10) for magnitude
pruning at sparsity 0.3/0.5/0.7, 2:4, and channel pruning, with MACs, parameters and whittle
latency (fp32 and pruned interleaved by `whittle compare`).

usage: .venv/bin/python benchmarks/bench_prune.py [--binary build-e/whittle] [--update-results]
Writes the `prune` section of benchmarks/RESULTS.md with --update-results.
"""
import argparse
import datetime
import json
import os
import subprocess
import tempfile

import numpy as np

from bench_common import cpu_model, update_results  # noqa: E402  (beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
IMAGES = os.path.join(SHARED, "data", "imagenet-sample")

MODELS = {
    "squeezenet1.1": "resize=256,crop=224,bgr,mean=104:117:123",
    "mobilenetv2-12-rebuilt-fp32": "resize=256,crop=224,rgb,scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225",
}
CONFIGS = [
    ("magnitude 0.3", "prune-magnitude{sparsity=0.3}"),
    ("magnitude 0.5", "prune-magnitude{sparsity=0.5}"),
    ("magnitude 0.7", "prune-magnitude{sparsity=0.7}"),
    ("magnitude 0.5 global", "prune-magnitude{sparsity=0.5,scope=global}"),
    ("wanda 0.3", "prune-wanda{sparsity=0.3}"),
    ("wanda 0.5", "prune-wanda{sparsity=0.5}"),
    ("wanda 0.7", "prune-wanda{sparsity=0.7}"),
    ("wanda 0.3 per layer", "prune-wanda{sparsity=0.3,scope=layer}"),
    ("wanda 0.5 per layer", "prune-wanda{sparsity=0.5,scope=layer}"),
    ("2:4", "prune-nm{n=2,m=4}"),
    ("channels 0.1", "prune-channels{ratio=0.1}"),
    ("channels 0.3", "prune-channels{ratio=0.3}"),
]


def split_folder(root, name, calibration):
    """A folder of symlinks with labels.tsv: the 100 calibration images (class % 10 == 0) or the 900 others."""
    folder = os.path.join(root, name)
    os.makedirs(folder)
    items = []
    with open(os.path.join(IMAGES, "labels.tsv")) as f, open(os.path.join(folder, "labels.tsv"), "w") as out:
        for line in f:
            line = line.strip()
            if not line:
                continue
            path, cls = line.split("\t")
            if (int(cls) % 10 == 0) != calibration:
                continue
            base = os.path.basename(path)
            os.symlink(os.path.join(IMAGES, path), os.path.join(folder, base))
            out.write(f"{base}\t{cls}\n")
            items.append((os.path.join(IMAGES, path), int(cls)))
    return folder, items


def crops(items):
    """uint8 RGB [N, 224, 224, 3]: short side resized to 256 (bilinear), centre crop 224."""
    from PIL import Image
    out = np.empty((len(items), 224, 224, 3), np.uint8)
    for i, (path, _) in enumerate(items):
        im = Image.open(path).convert("RGB")
        w, h = im.size
        s = 256 / min(w, h)
        im = im.resize((max(256, round(w * s)), max(256, round(h * s))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - 224) // 2, (h - 224) // 2
        out[i] = np.asarray(im.crop((left, top, left + 224, top + 224)))
    return out


def to_input(rgb, name):
    x = rgb.astype(np.float32)
    if name == "squeezenet1.1":
        x = x[..., ::-1] - np.array([104, 117, 123], np.float32)
    else:
        x = (x / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def ort_top1(path, name, images, labels):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    correct = 0
    for rgb, y in zip(images, labels):
        out = session.run(None, {input_name: to_input(rgb, name)})[0]
        correct += int(np.argmax(out.reshape(-1)) == y)
    return 100.0 * correct / len(labels)


def inspect(binary, path):
    r = subprocess.run([binary, "inspect", path, "--json"], capture_output=True, text=True, check=True)
    d = json.loads(r.stdout)
    return d["macs"]["total"], d["parameters"]["total"], d["sparsity"]["fraction"], d["sparsity"]["nm"]["compliantLayers"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    p.add_argument("--update-results", action="store_true")
    p.add_argument("--latency-runs", type=int, default=20)
    p.add_argument("--calib-size", type=int, default=32)
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, evaluation = split_folder(tmp, "eval900", calibration=False)
        calib, _ = split_folder(tmp, "calib100", calibration=True)
        assert len(evaluation) == 900
        images = crops(evaluation)
        labels = [y for _, y in evaluation]
        for name, pre in MODELS.items():
            fp32 = os.path.join(SHARED, "models", name + ".onnx")
            base = os.path.join(tmp, name + ".O2.onnx")
            subprocess.run([a.binary, "optimize", fp32, "-o", base], check=True, capture_output=True)
            macs, params, sparsity, nm = inspect(a.binary, base)
            top = ort_top1(base, name, images, labels)
            rows.append({"model": name, "config": "fp32 (-O2)", "macs": macs, "params": params, "sparsity": sparsity,
                         "nm": nm, "top1": top})
            print(json.dumps(rows[-1]), flush=True)
            for label, pipeline in CONFIGS:
                out = os.path.join(tmp, f"{name}.{len(rows)}.onnx")
                cmd = [a.binary, "optimize", base, "-o", out, "-O0", "--passes", pipeline]
                if "wanda" in pipeline:
                    cmd += ["--calib", calib, "--calib-size", str(a.calib_size), "--preprocess", pre]
                r = subprocess.run(cmd, capture_output=True, text=True)
                row = {"model": name, "config": label, "pipeline": pipeline}
                if r.returncode != 0:
                    row["error"] = (r.stderr.strip().splitlines() or ["optimize failed"])[-1][:160]
                    rows.append(row)
                    continue
                row["macs"], row["params"], row["sparsity"], row["nm"] = inspect(a.binary, out)
                row["top1"] = ort_top1(out, name, images, labels)
                c = subprocess.run([a.binary, "compare", base, out, "--data", folder, "--preprocess", pre, "--json", "-",
                                    "--limit", "1", "--latency-runs", str(a.latency_runs), "--no-progress", "--batch", "1",
                                    "--threads", "1"], capture_output=True, text=True)
                if c.returncode not in (0, 3):
                    row["latency_error"] = (c.stderr.strip().splitlines() or ["compare failed"])[-1][:160]
                else:
                    d = json.loads(c.stdout)
                    row["p50_fp32"] = d["latency"]["original"]["p50_ms"]
                    row["p50"] = d["latency"]["optimized"]["p50_ms"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    text = render(rows, a)
    print(text)
    if a.update_results:
        update_results("prune", text)


def render(rows, a):
    out = ["## Pruning (prune-magnitude, prune-wanda, prune-nm, prune-channels)", "",
           f"Command: `.venv/bin/python benchmarks/bench_prune.py --binary {os.path.relpath(a.binary, ROOT)} --update-results`  ",
           f"Machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}; {datetime.date.today().isoformat()}; shared with "
           "other helpers' builds while it ran, so latencies are noisy: read the ratio column (fp32 and pruned runs "
           f"interleaved by `whittle compare --limit 1 --latency-runs {a.latency_runs}`, 1 thread, batch 1, p50).  ",
           "Data: the 900 evaluation images of ../shared/data/imagenet-sample (class index not divisible by 10), "
           "short side 256 (bilinear), centre crop 224; top-1 computed with ONNX Runtime (1 thread) on the emitted "
           "models, for speed on the shared machine (the models are plain ONNX; whittle's runtime gives the same "
           "classes up to float rounding). Wanda calibrates on the first "
           f"{a.calib_size} of the 100 images whose class index is divisible by 10. "
           "Baseline: the model after `whittle optimize -O2`; each row runs one pruning pass on it "
           "(`optimize -O0 --passes PIPELINE`), no fine-tuning. First and last prunable layers and depthwise "
           "convolutions stay dense for magnitude and Wanda (their defaults; squeezenet's last Conv holds 41 % of its weights, so model-wide sparsity is lower "
           "than the per-layer figure). MACs and parameters from `whittle inspect`; '2:4 layers': layers whose every "
           "group of 4 along the reduction axis has at most 2 nonzeros.", "",
           "| model | pruning | top-1 (900) | weight sparsity | 2:4 layers | MACs | parameters | whittle p50 ms (fp32 → pruned) | latency ratio |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['config']} | error: {r['error']} | | | | | | |")
            continue
        lat = f"{r['p50_fp32']:.2f} → {r['p50']:.2f} | {r['p50_fp32'] / r['p50']:.2f}×" if "p50" in r else " | "
        out.append(f"| {r['model']} | {r['config']} | {r['top1']:.2f} % | {r['sparsity'] * 100:.1f} % | {r['nm']} | "
                   f"{r['macs'] / 1e6:.1f} M | {r['params']:,} | {lat} |")
    out += ["", "Wanda against magnitude at the same sparsity (top-1 on the 900 images; per-layer magnitude vs Wanda "
            "per output as in the paper / Wanda per layer):"]
    by = {(r["model"], r["config"]): r.get("top1") for r in rows}
    for model in MODELS:
        parts = []
        for s in ("0.3", "0.5", "0.7"):
            m, w, wl = by.get((model, f"magnitude {s}")), by.get((model, f"wanda {s}")), by.get((model, f"wanda {s} per layer"))
            if m is None or w is None:
                continue
            best = max(x for x in (w, wl) if x is not None)
            verdict = "Wanda better" if best > m else "magnitude better" if best < m else "equal"
            parts.append(f"{s}: {m:.2f} % vs {w:.2f} %" + (f" / {wl:.2f} %" if wl is not None else "") + f" ({verdict})")
        out.append(f"- {model}: " + "; ".join(parts))
    out += ["", "Notes: unstructured and 2:4 sparsity leave MACs and whittle latency unchanged (the CPU kernels are "
            "dense; 2:4 is for sparse tensor cores); channel pruning removes whole channels, so MACs, parameters and "
            "latency drop. Convs whose channels reach an Add (MobileNetV2's residual projections), a Softmax or a graph "
            "output are left whole. No fine-tuning follows any pruning here, so accuracy falls fast with sparsity."]
    return "\n".join(out)


if __name__ == "__main__":
    main()
