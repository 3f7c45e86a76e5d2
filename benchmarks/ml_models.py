#!/usr/bin/env python3
"""whittle against ONNX Runtime on a folder of classical ML models (sklearn, LightGBM, XGBoost).

usage: ml_models.py MODELS_DIR [--whittle BIN] [--baseline-binary BIN] [--optimize] [--json OUT]

MODELS_DIR holds NAME.onnx and NAME.x.npy (the rows to run; benchmarks/ml_build_models.py writes
such a folder, but any model works: this script needs only numpy, onnx and onnxruntime). Per model
it runs ONNX Runtime (CPU, 1 thread) and `whittle run` on the same rows and reports whether whittle
ran it, the largest absolute difference over the float outputs and the share of equal values over
the integer and string outputs (the labels). A ZipMap output (a list of maps) is compared key by
key. --baseline-binary adds a column for a second whittle (whether it ran the model). --optimize
also writes `whittle optimize NAME.onnx -O2` and runs the result in ONNX Runtime against the
original model (it must load and give the same outputs).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort


def ort_run(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))


def read_whittle_output(folder, name):
    """A tensor (NAME.npy) or a sequence of maps (NAME/K.keys.npy + NAME/K.values.npy) as a list of dicts."""
    path = os.path.join(folder, name + ".npy")
    if os.path.exists(path):
        return np.load(path, allow_pickle=True)
    seq = os.path.join(folder, name)
    if os.path.isdir(seq):
        count = len(glob.glob(os.path.join(seq, "*.keys.npy")))
        maps = []
        for k in range(count):
            keys = np.load(os.path.join(seq, f"{k}.keys.npy"), allow_pickle=True)
            values = np.load(os.path.join(seq, f"{k}.values.npy"), allow_pickle=True)
            maps.append(dict(zip(keys.tolist(), values.tolist())))
        return maps
    return None


def as_array(value):
    """A list of maps (ZipMap) as a [rows, keys] array in sorted key order; anything else as is."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = sorted(value[0].keys())
        return np.array([[row[k] for k in keys] for row in value], dtype=np.float64)
    return np.asarray(value)


def compare(expected, actual):
    """(max abs diff over floats or None, equal share over labels or None, error or None)."""
    diff, agree = None, None
    for name, e in expected.items():
        if name not in actual or actual[name] is None:
            return None, None, f"no output {name}"
        e, a = as_array(e), as_array(actual[name])
        if e.shape != a.shape:
            return None, None, f"{name}: shape {a.shape}, ONNX Runtime {e.shape}"
        if e.dtype.kind == "f":
            d = float(np.max(np.abs(e.astype(np.float64) - a.astype(np.float64)))) if e.size else 0.0
            diff = d if diff is None else max(diff, d)
        else:
            share = float(np.mean(e == a)) if e.size else 1.0
            agree = share if agree is None else min(agree, share)
    return diff, agree, None


def whittle_run(binary, model, x_path, out_dir):
    result = subprocess.run([binary, "run", model, "--input", x_path, "-o", out_dir, "--threads", "1"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit {result.returncode}"
    return None


def ops_of(path):
    model = onnx.load(path)
    ml = sorted({n.op_type for n in model.graph.node if n.domain == "ai.onnx.ml"})
    return ", ".join(ml) if ml else "(ai.onnx only)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models_dir")
    parser.add_argument("--whittle", default=os.path.join(os.path.dirname(__file__), "..", "build", "whittle"))
    parser.add_argument("--baseline-binary", help="a second whittle: does it run each model")
    parser.add_argument("--optimize", action="store_true", help="also check whittle optimize -O2 in ONNX Runtime")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    rows = []
    for model in sorted(glob.glob(os.path.join(args.models_dir, "*.onnx"))):
        name = os.path.basename(model)[:-5]
        x_path = os.path.join(args.models_dir, name + ".x.npy")
        x = np.load(x_path)
        expected = ort_run(model, x)
        row = {"model": name, "ops": ops_of(model), "rows": int(x.shape[0])}
        with tempfile.TemporaryDirectory() as tmp:
            if args.baseline_binary:
                row["baseline_runs"] = whittle_run(args.baseline_binary, model, x_path, os.path.join(tmp, "b")) is None
            error = whittle_run(args.whittle, model, x_path, os.path.join(tmp, "w"))
            row["runs"] = error is None
            if error is None:
                actual = {n: read_whittle_output(os.path.join(tmp, "w"), n) for n in expected}
                row["max_abs_diff"], row["label_agreement"], error = compare(expected, actual)
            if args.optimize:
                optimized = os.path.join(tmp, "opt.onnx")
                result = subprocess.run([args.whittle, "optimize", model, "-o", optimized, "-O2"],
                                        capture_output=True, text=True)
                if result.returncode != 0:
                    row["optimize"] = "failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
                else:
                    try:
                        d, a, e = compare(expected, ort_run(optimized, x))
                        row["optimize"] = e or f"ORT loads it; max diff {d if d is not None else 0:.2g}" + (
                            f", labels {a:.0%}" if a is not None else "")
                    except Exception as ex:  # ORT refuses the emitted model
                        row["optimize"] = f"ORT fails: {str(ex).splitlines()[0]}"
        if error:
            row["error"] = error
        rows.append(row)

    header = ["model", "ai.onnx.ml ops"]
    if args.baseline_binary:
        header.append("runs before")
    header += ["runs", "max abs diff vs ORT", "label agreement"]
    if args.optimize:
        header.append("optimize -O2 in ORT")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = [r["model"], r["ops"]]
        if args.baseline_binary:
            cells.append("yes" if r["baseline_runs"] else "no")
        cells.append("yes" if r["runs"] else "no: " + r.get("error", ""))
        d, a = r.get("max_abs_diff"), r.get("label_agreement")
        cells.append("" if d is None else f"{d:.2g}")
        cells.append("" if a is None else f"{a:.0%}")
        if args.optimize:
            cells.append(r.get("optimize", ""))
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    failed = [r["model"] for r in rows if not r["runs"] or r.get("error")]
    print(f"{len(rows) - len(failed)} of {len(rows)} models run and compare", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
