#!/usr/bin/env python3
"""fp16/bf16 conversion on every shared fp32 model: top-1 agreement with fp32 on the shared
data where a model has some (whittle's runtime, `whittle compare`), output SQNR, file size
ratio, and whether the ONNX checker and ONNX Runtime accept the fp16 model.

usage: .venv/bin/python benchmarks/bench_half.py [--binary build/whittle] [--update-results]
Writes the `half` section of benchmarks/RESULTS.md with --update-results.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from bench_common import cpu_model, update_results  # noqa: E402  (beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
DATA = os.path.join(SHARED, "data")

IMAGENET_BGR = "resize=256,crop=224,bgr,mean=104:117:123"
IMAGENET_RGB = "resize=256,crop=224,rgb,scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225"

# model: (data, --preprocess or None); data None: seeded random inputs (SQNR only).
MODELS = {
    "mnist-8": (os.path.join(DATA, "mnist"), None),
    "squeezenet1.1": (os.path.join(DATA, "imagenet-sample"), IMAGENET_BGR),
    "mobilenetv2-12-rebuilt-fp32": (os.path.join(DATA, "imagenet-sample"), IMAGENET_RGB),
    "mlperftiny_ic_resnet8": (os.path.join(DATA, "cifar10-200"), None),
    "mlperftiny_vww_96_float": (os.path.join(DATA, "vww-400"), "scale=1/255,layout=nhwc"),
    "mlperftiny_kws_dscnn_float32io_int8w": (None, None),
    "ultraface_version-RFB-320": (None, None),
    "retinaface_mbnet0.25": (None, None),
    "yolo-fastestv2_352": (None, None),
    "super_resolution_subpixel_cnn_x3": (None, None),
    "vittrack_vitTracker": (None, None),
}


def random_inputs(model, folder):
    import onnx
    m = onnx.load(model, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(0)
    arrays = {}
    for i in m.graph.input:
        if i.name in inits:
            continue
        dims = [d.dim_value if d.dim_value > 0 else (8 if k == 0 else 1) for k, d in enumerate(i.type.tensor_type.shape.dim)]
        if dims and i.type.tensor_type.shape.dim[0].dim_value <= 0:
            dims[0] = 8
        arrays[i.name] = rng.uniform(0, 1, dims).astype(np.float32)
    path = os.path.join(folder, "random.npz")
    np.savez(path, **arrays)
    return path


def ort_check(path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "passes", "convert_half_ort.py"), path],
                       capture_output=True, text=True)
    return "yes" if r.returncode == 0 else "no: " + (r.stderr.strip().splitlines() or ["?"])[-1][:120]


def compare(binary, fp32, half, data, pre, limit=None):
    cmd = [binary, "compare", fp32, half, "--data", data, "--json", "-", "--latency-runs", "0", "--no-progress"]
    if limit:
        cmd += ["--limit", str(limit)]
    if pre:
        cmd += ["--preprocess", pre]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 3):
        return None, (r.stderr.strip().splitlines() or ["whittle compare failed"])[-1][:160]
    return json.loads(r.stdout), None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    p.add_argument("--update-results", action="store_true")
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--imagenet-limit", type=int, default=300, help="images of imagenet-sample per model (1000: all)")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models:
            data, pre = MODELS[name]
            fp32 = os.path.join(SHARED, "models", name + ".onnx")
            if data is None:
                data = random_inputs(fp32, tmp)
            for kind in ("fp16", "bf16", "fp16 tol 1e-3"):
                out = os.path.join(tmp, f"{name}.{kind.replace(' ', '_')}.onnx")
                cmd = [a.binary, "optimize", fp32, "-o", out, "--convert", kind.split()[0], "--json"]
                if "tol" in kind:  # mixed precision, measured on 8 samples of the data set
                    cmd += ["--tolerance", "1e-3", "--calib", data, "--calib-size", "8"] + (["--preprocess", pre] if pre else [])
                r = subprocess.run(cmd, capture_output=True, text=True)
                row = {"model": name, "type": kind}
                if r.returncode != 0:
                    row["error"] = (r.stderr.strip().splitlines() or ["optimize failed"])[-1][:160]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    continue
                stats = json.loads(r.stdout)
                conv = [s for s in stats["passes"] if s["pass"].startswith("convert-" + kind.split()[0])][0]["counters"]
                row["kept_fp32"] = conv.get("nodes-kept-float32", 0) + conv.get("nodes-kept-by-tolerance", 0)
                row["clamped"] = conv.get("weights-clamped", 0)
                row["size_ratio"] = os.path.getsize(out) / os.path.getsize(fp32)
                row["ort"] = ort_check(out) if kind.startswith("fp16") else "n/a"
                limit = a.imagenet_limit if "imagenet" in data else None
                doc, err = compare(a.binary, fp32, out, data, pre, limit)
                if err:
                    row["error"] = err
                else:
                    o = doc["outputs"][0]
                    row["samples"] = doc["dataset"]["samples"]
                    row["random"] = data.endswith("random.npz")
                    row["agreement"] = o.get("agreement_pct")
                    row["sqnr"] = min(x["sqnr_db"] if isinstance(x["sqnr_db"], (int, float)) else 999 for x in doc["outputs"])
                    acc = o.get("accuracy")
                    if acc:
                        row["top1"] = (acc["top1_original_pct"], acc["top1_optimized_pct"])
                rows.append(row)
                print(json.dumps(row), flush=True)
    text = render(rows, a)
    print(text)
    if a.update_results:
        update_results("half", text)


def render(rows, a):
    out = ["## fp16 / bf16 conversion (convert-fp16, convert-bf16)", "",
           f"Command: `.venv/bin/python benchmarks/bench_half.py --binary {os.path.relpath(a.binary, ROOT)} --imagenet-limit {a.imagenet_limit} --update-results`  ",
           f"Machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}; {datetime.date.today().isoformat()} "
           "(accuracy only: nothing here is timed).  ",
           "Each model: `whittle optimize MODEL --convert fp16|bf16` (-O2 first, keep-io-types, default block list), "
           "and `--convert fp16 --tolerance 1e-3 --calib DATA --calib-size 8` (mixed precision: nodes whose measured "
           "error crosses 1e-3 of the tensor's range stay float32; 'nodes kept fp32' counts them with the block list), "
           "then `whittle compare` fp32 vs converted, both on whittle's CPU runtime. Data: the first "
           f"{a.imagenet_limit} images of imagenet-sample for the ImageNet models (fewer than all 1000 because the "
           "shared 2-core machine was slow), mnist (10,000), cifar10-200, vww-400; models without labelled data here "
           "run on seeded random inputs (uniform 0..1; one sample for fixed batch 1, else 8; agreement is not meaningful there, SQNR over every output is). "
           "ORT: the ONNX checker (full_check) and ONNX Runtime 1-run load of the fp16 models (bf16 is not checked: "
           "ORT's CPU provider has no bf16 Conv).", "",
           "| model | type | samples | top-1 agreement | top-1 fp32 → half | min output SQNR | size vs fp32 | nodes kept fp32 | weights clamped | ORT loads |",
           "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if "error" in r and "samples" not in r:
            out.append(f"| {r['model']} | {r['type']} | | | | | {r.get('size_ratio', 0) * 100:.1f} % | | | error: {r['error']} |")
            continue
        agree = f"{r['agreement']:.2f} %" if r.get("agreement") is not None and not r.get("random") else "(random inputs)" if r.get("random") else "n/a"
        top1 = f"{r['top1'][0]:.2f} → {r['top1'][1]:.2f} %" if r.get("top1") else ""
        out.append(f"| {r['model']} | {r['type']} | {r['samples']} | {agree} | {top1} | {r['sqnr']:.1f} dB | "
                   f"{r['size_ratio'] * 100:.1f} % | {r['kept_fp32']} | {r['clamped']} | {r['ort']} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
