#!/usr/bin/env python3
"""int8 quantization, whittle against ONNX Runtime's quantize_static, on the ImageNet sample.

    .venv/bin/python benchmarks/bench_quant.py [--binary build-c/whittle] [--update-results]

Split of ../shared/data/imagenet-sample: calibrate on the 100 images whose class index is
divisible by 10, evaluate on the other 900. For each model: fp32 top-1; whittle int8
(`whittle optimize --quantize int8`, default settings) and ORT quantize_static (QDQ, MinMax,
per-channel, otherwise its defaults) evaluated in ONNX Runtime, and whittle's int8 also in
whittle's runtime (`whittle compare`); optimize time and peak memory of both quantizers
(/usr/bin/time -v, interleaved runs), and the int8 file size against fp32. Writes the
`quantization` section of benchmarks/RESULTS.md with --update-results."""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from bench_common import cpu_model, ort_quantize_static, update_results  # noqa: E402  (beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
IMAGES = os.path.join(SHARED, "data", "imagenet-sample")

MODELS = {
    # name: (whittle --preprocess, channel order, scale, mean, std, goal in pp)
    "squeezenet1.1": ("resize=256,crop=224,bgr,mean=104:117:123", "bgr", 1.0, [104, 117, 123], [1, 1, 1], 0.5),
    "mobilenetv2-12-rebuilt-fp32": ("resize=256,crop=224,rgb,scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225",
                                    "rgb", 1 / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 1.0),
}


def split():
    calib, evaluation = [], []
    with open(os.path.join(IMAGES, "labels.tsv")) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            path, cls = line.split("\t")
            (calib if int(cls) % 10 == 0 else evaluation).append((path, int(cls)))
    return calib, evaluation


def make_folder(root, name, items):
    folder = os.path.join(root, name)
    os.makedirs(folder)
    with open(os.path.join(folder, "labels.tsv"), "w") as f:
        for path, cls in items:
            base = os.path.basename(path)
            os.symlink(os.path.join(IMAGES, path), os.path.join(folder, base))
            f.write(f"{base}\t{cls}\n")
    return folder


def preprocess(path, spec):
    """resize short side 256 (PIL bilinear), centre crop 224, channel order, normalise; NCHW."""
    from PIL import Image
    _, order, scale, mean, std, _ = spec
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if min(w, h) != 256:
        if w < h:
            img = img.resize((256, int(256 * h / w)), Image.BILINEAR)
        else:
            img = img.resize((int(256 * w / h), 256), Image.BILINEAR)
        w, h = img.size
    left, top = int(round((w - 224) / 2.0)), int(round((h - 224) / 2.0))
    img = img.crop((left, top, left + 224, top + 224))
    a = np.asarray(img, dtype=np.float64)
    if order == "bgr":
        a = a[:, :, ::-1]
    a = (a * scale - np.array(mean)) / np.array(std)
    return a.transpose(2, 0, 1)[None].astype(np.float32)


def ort_session(path):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.log_severity_level = 3
    o.intra_op_num_threads = 1
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def ort_top1(model, tensors, labels):
    s = ort_session(model)
    name = s.get_inputs()[0].name
    correct = 0
    for x, y in zip(tensors, labels):
        out = s.run(None, {name: x})[0]
        correct += int(np.argmax(out.reshape(-1)) == y)
    return 100.0 * correct / len(labels)


def ort_quantize(model, out, calib_folder, name):
    """Run in a subprocess of its own (so that /usr/bin/time measures it alone)."""
    spec = MODELS[name]
    files = sorted(f for f in os.listdir(calib_folder) if f.endswith(".JPEG"))
    input_name = ort_session(model).get_inputs()[0].name
    ort_quantize_static(model, out, ({input_name: preprocess(os.path.join(calib_folder, f), spec)} for f in files))


def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (seconds, peak RSS in MiB, stdout)."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024.0
    return seconds, rss, r.stdout


def whittle_top1(binary, fp32, int8, eval_folder, spec):
    r = subprocess.run([binary, "compare", fp32, int8, "--data", eval_folder, "--preprocess", spec[0], "--json", "-",
                        "--latency-runs", "0", "--no-progress", "--batch", "1"], capture_output=True, text=True)
    if r.returncode not in (0, 3):
        return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "whittle compare failed"
    doc = json.loads(r.stdout)
    for out in doc.get("outputs", []):
        acc = out.get("accuracy") or {}
        if "top1_optimized_pct" in acc:
            return acc["top1_optimized_pct"], None
    return None, "no top-1 in whittle compare's JSON"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--rounds", type=int, default=2, help="interleaved quantizer runs per model (best time kept)")
    p.add_argument("--update-results", action="store_true")
    p.add_argument("--ort-quantize", nargs=4, metavar=("MODEL", "OUT", "CALIB", "NAME"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.ort_quantize:
        ort_quantize(*a.ort_quantize)
        return
    import onnxruntime as ort
    calib, evaluation = split()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        calib_folder = make_folder(tmp, "calib", calib)
        eval_folder = make_folder(tmp, "eval", evaluation)
        labels = [c for _, c in evaluation]
        for name in a.models:
            spec = MODELS[name]
            fp32 = os.path.join(SHARED, "models", name + ".onnx")
            w8 = os.path.join(tmp, name + ".whittle.int8.onnx")
            o8 = os.path.join(tmp, name + ".ort.int8.onnx")
            wcmd = [a.binary, "optimize", fp32, "-o", w8, "--quantize", "int8", "--calib", calib_folder,
                    "--preprocess", spec[0], "--json"]
            ocmd = [sys.executable, os.path.abspath(__file__), "--ort-quantize", fp32, o8, calib_folder, name]
            wt, ot = [], []
            for _ in range(a.rounds):  # interleaved
                wt.append(timed(wcmd)[:2])
                ot.append(timed(ocmd)[:2])
            tensors = [preprocess(os.path.join(IMAGES, path), spec) for path, _ in evaluation]
            row = {"model": name, "goal_pp": spec[5]}
            row["fp32"] = ort_top1(fp32, tensors, labels)
            row["whittle_int8_ort"] = ort_top1(w8, tensors, labels)
            row["ort_int8"] = ort_top1(o8, tensors, labels)
            row["whittle_int8_whittle"], row["whittle_runtime_note"] = whittle_top1(a.binary, fp32, w8, eval_folder, spec)
            row.update(speed_row(a.binary, fp32, w8, tmp))
            row["whittle_s"] = min(t for t, _ in wt)
            row["ort_s"] = min(t for t, _ in ot)
            row["whittle_mib"] = max(m for _, m in wt)
            row["ort_mib"] = max(m for _, m in ot)
            size = os.path.getsize(fp32)
            row["whittle_size_pct"] = 100.0 * os.path.getsize(w8) / size
            row["ort_size_pct"] = 100.0 * os.path.getsize(o8) / size
            print(json.dumps(row), flush=True)
            rows.append(row)
    text = render(rows, a, ort.__version__)
    print(text)
    if a.update_results:
        update_results("quantization", text)


def speed_row(binary, fp32, int8, tmp, rounds=5, iterations=50):
    """p50 latency at 1 thread, batch 1, on the same seeded input, interleaved over rounds:
    whittle on the fp32 model, whittle and ONNX Runtime on whittle's int8 model."""
    from bench_vs_ort import interleaved, make_inputs, ort_round, ort_session, whittle_round
    session = ort_session(int8, 1)
    feeds, input_args = make_inputs(session, "int8", 1, 7, tmp)
    w_fp32, w_int8, ort_int8 = interleaved(
        [lambda: whittle_round(binary, fp32, 1, input_args, iterations, 5),
         lambda: whittle_round(binary, int8, 1, input_args, iterations, 5),
         lambda: ort_round(session, feeds, iterations, 5)], rounds)
    return {"w_fp32_ms": w_fp32, "w_int8_ms": w_int8, "ort_int8_ms": ort_int8}


def render(rows, a, ort_version):
    machine = f"{os.cpu_count()} cores (`nproc`), {cpu_model()}"
    out = ["## int8 quantization: whittle vs ONNX Runtime quantize_static", "",
           f"Command: `.venv/bin/python benchmarks/bench_quant.py --binary {os.path.relpath(a.binary, ROOT)} --update-results`  ",
           f"Machine: {machine}; ONNX Runtime {ort_version}; {datetime.date.today().isoformat()}.  ",
           "Data: ../shared/data/imagenet-sample, calibrated on the 100 images whose class index is divisible by 10, "
           "evaluated on the other 900. whittle: `optimize --quantize int8` at default settings (QDQ, minmax, "
           "per-channel int8 weights, uint8 activations, Relu/Clip folded). ORT: `quantize_static(quant_format=QDQ, "
           "per_channel=True, calibrate_method=MinMax)`, otherwise its defaults, on the model converted to opset 13 by onnx.version_converter when older (squeezenet1.1 is opset 7; without it ORT writes an invalid model; the conversion is inside ORT's timing). Both int8 models evaluated in ONNX "
           "Runtime (1 thread); whittle's int8 also in whittle's runtime (`whittle compare`). Times: best of "
           f"{a.rounds} interleaved runs of each quantizer (calibration included, image decoding included for both), "
           "peak RSS from /usr/bin/time -v. The machine was shared with other jobs (builds) while this ran, so "
           "times are noisy.", "",
           "| model | fp32 top-1 | whittle int8 top-1 (ORT) | drop | whittle int8 (whittle runtime) | ORT int8 top-1 | ORT drop | goal | optimize s whittle / ORT | peak MiB whittle / ORT | size vs fp32 whittle / ORT |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    notes = []
    for r in rows:
        drop = r["fp32"] - r["whittle_int8_ort"]
        odrop = r["fp32"] - r["ort_int8"]
        wr = f"{r['whittle_int8_whittle']:.2f} %" if r["whittle_int8_whittle"] is not None else "n/a"
        goal_ok = drop <= r["goal_pp"] and drop < odrop
        out.append(f"| {r['model']} | {r['fp32']:.2f} % | {r['whittle_int8_ort']:.2f} % | {drop:+.2f} pp | {wr} | "
                   f"{r['ort_int8']:.2f} % | {odrop:+.2f} pp | ≤ {r['goal_pp']} pp and < ORT: "
                   f"{'met' if goal_ok else 'missed'} | {r['whittle_s']:.2f} / {r['ort_s']:.2f} "
                   f"({r['ort_s'] / r['whittle_s']:.1f}×) | {r['whittle_mib']:.0f} / {r['ort_mib']:.0f} | "
                   f"{r['whittle_size_pct']:.1f} % / {r['ort_size_pct']:.1f} % |")
        if not goal_ok:
            why = []
            if drop > r["goal_pp"]:
                why.append(f"drop {drop:.2f} pp > {r['goal_pp']} pp")
            if drop >= odrop:
                why.append(f"not smaller than ORT's {odrop:.2f} pp")
            notes.append(f"- {r['model']}: accuracy goal missed ({'; '.join(why)}). On 900 images one image is "
                         "0.11 pp. `whittle compare --per-layer` (4 images) shows the SQNR at 41 dB after the first Conv, "
                         "19 dB after the first linear-bottleneck Conv (no Relu6, wide range) and down to 9 dB at the "
                         "last 1x1 Conv; what would close it: choosing the range per "
                         "tensor (a quick trial on 300 of the images gained one image with mse or entropy over minmax, "
                         "not significant) or keeping the most sensitive layers in float (not tried yet).")
        if r["ort_s"] / r["whittle_s"] < 3:
            notes.append(f"- {r['model']}: optimize time goal (3× faster than quantize_static) missed: "
                         f"{r['ort_s'] / r['whittle_s']:.1f}×. Calibration runs the model with every calibrated "
                         "activation as an extra output (which keeps the runtime from fusing across them) on all "
                         "cores, observes the tensors in parallel, and decodes the JPEGs one by one. What would "
                         "close it: observing inside the fused kernels' epilogues so that the calibration run "
                         "keeps its fusions, and decoding the next batch while the model runs.")
        if r["whittle_mib"] >= r["ort_mib"]:
            notes.append(f"- {r['model']}: peak memory not lower than quantize_static's.")
        if r["whittle_size_pct"] > 27:
            notes.append(f"- {r['model']}: size {r['whittle_size_pct']:.1f} % > 27 % goal: the int8 weights alone are "
                         "25 %; int32 biases, per-channel scales and zero points and the Q/DQ nodes add the rest. What "
                         "would close it: sharing one scale/zero-point initializer between pairs with equal "
                         "parameters and shorter generated names.")
        if r.get("whittle_runtime_note"):
            notes.append(f"- {r['model']}: whittle runtime column: {r['whittle_runtime_note']}")
    out += ["", "Speed, 1 thread, batch 1, seeded random input, p50 over 5 interleaved rounds of 50 runs: whittle "
            "on the fp32 model and on its own int8 model; ONNX Runtime (all optimizations on) on the same int8 model. "
            "Goals: int8 at least 2× faster than fp32 in whittle (squeezenet1.1), and at least as fast as ONNX Runtime "
            "on the same int8 model.", "",
            "| model | whittle fp32 (ms) | whittle int8 (ms) | int8 speed-up | ORT int8 (ms) | whittle / ORT on int8 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "w_int8_ms" not in r:
            continue
        out.append(f"| {r['model']} | {r['w_fp32_ms']:.3f} | {r['w_int8_ms']:.3f} | "
                   f"{r['w_fp32_ms'] / r['w_int8_ms']:.2f}× | {r['ort_int8_ms']:.3f} | "
                   f"{r['w_int8_ms'] / r['ort_int8_ms']:.2f} |")
        if r["model"] == "squeezenet1.1" and r["w_fp32_ms"] / r["w_int8_ms"] < 2:
            notes.append(f"- {r['model']}: int8 speed-up goal (2×) missed.")
        if r["w_int8_ms"] > r["ort_int8_ms"]:
            notes.append(f"- {r['model']}: whittle's int8 run is slower than ONNX Runtime's on the same model.")
    if notes:
        out += ["", "Notes:"] + notes
    return "\n".join(out)


if __name__ == "__main__":
    main()
