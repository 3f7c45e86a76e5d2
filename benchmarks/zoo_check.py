#!/usr/bin/env python3
"""Runs the exporter zoo (benchmarks/export_zoo.py) through whittle against ONNX Runtime.

usage: zoo_check.py run      --binary B --dir D [--models GLOB,GLOB]
       zoo_check.py optimize --binary B --dir D [--models ...] [--what O2,dyn,int8,fp16,w4]
       zoo_check.py speed    --binary B --dir D [--models ...] [--rounds 3]

run:      `whittle run` on each D/NAME-MODE.onnx with D/NAME.inputs.npz; the largest difference of
          each output from ONNX Runtime's on the same file (from torch's reference where ORT
          cannot run the file), or whittle's one-line error.
optimize: for each optimization (-O2, --quantize dynamic, --quantize int8 calibrated on the
          example input, --convert fp16, 4-bit quantize-weights) the optimized file in ONNX
          Runtime (does it load; output SQNR in dB against the original in ORT) and in whittle
          (SQNR against ORT on the optimized file), and the file size.
speed:    1 thread, CPU clock: `whittle bench -i D/NAME.inputs.npz --json` p50 against ONNX
          Runtime's median process CPU time per run on the same input, alternating rounds.
One JSON line per model file. Needs only the project venv (numpy, onnxruntime).
"""
import argparse, glob, json, os, statistics, subprocess, tempfile, time
import numpy as np
import onnxruntime as ort

OPTIMIZATIONS = {
    "O2": ["-O2"],
    "dyn": ["--quantize", "dynamic"],
    "int8": ["--quantize", "int8", "--calib", "{inputs}"],
    "fp16": ["--convert", "fp16"],
    "w4": ["--passes", "quantize-weights{bits=4,block=32,symmetric=true}"],
}


def sqnr_db(ref, out):
    ref = ref.astype(np.float64); out = out.astype(np.float64)
    noise = np.sum((ref - out) ** 2)
    return float("inf") if noise == 0 else round(float(10 * np.log10(np.sum(ref ** 2) / noise + 1e-30)), 1)


def files(d, patterns):
    found = sorted({f for p in patterns for f in glob.glob(os.path.join(d, p + ".onnx"))})
    return [(f, os.path.basename(f)[:-5].rsplit("-", 1)[0]) for f in found]


def ort_session(path, threads=None):
    so = ort.SessionOptions()
    if threads: so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feeds_for(session, inputs):
    return {i.name: inputs[i.name].astype(np.float16) if i.type == "tensor(float16)" else inputs[i.name]
            for i in session.get_inputs()}


def whittle_run(binary, path, npz):
    out = tempfile.mkdtemp()
    p = subprocess.run([binary, "run", path, "-o", out, "-i", npz], capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["?"])[-1][:300]
    return out, None


def check_run(a, path, name):
    npz = os.path.join(a.dir, name + ".inputs.npz")
    inputs, ref = np.load(npz), np.load(os.path.join(a.dir, name + ".ref.npz"))
    row = {}
    try:
        s = ort_session(path); theirs = s.run(None, feeds_for(s, inputs))
    except Exception as e:
        row["ort"] = str(e).splitlines()[0][:200]; theirs = None
    out, err = whittle_run(a.binary, path, npz)
    if err: row["whittle"] = err; return row
    diffs = []
    for k in range(len(ref.files)):
        f = os.path.join(out, f"out{k}.npy")
        if not os.path.exists(f): diffs.append("missing"); continue
        mine, want = np.load(f), (theirs[k] if theirs is not None else ref[f"out{k}"])
        diffs.append(f"shape {mine.shape} vs {want.shape}" if mine.shape != want.shape
                     else float(np.max(np.abs(mine.astype(np.float64) - want))) if mine.size else 0.0)
    row["vs_ort" if theirs is not None else "vs_torch"] = diffs
    return row


def check_optimize(a, path, name):
    npz = os.path.join(a.dir, name + ".inputs.npz")
    inputs = np.load(npz)
    s0 = ort_session(path); ref = s0.run(None, feeds_for(s0, inputs))
    row, work = {}, tempfile.mkdtemp()
    for what in a.what.split(","):
        out = os.path.join(work, f"{what}.onnx")
        args = [a.binary, "optimize", path, "-o", out] + [x.replace("{inputs}", npz) for x in OPTIMIZATIONS[what]]
        p = subprocess.run(args, capture_output=True, text=True)
        if p.returncode != 0:
            row[what] = "optimize exit %d: %s" % (p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1][:200]); continue
        try:
            s = ort_session(out); theirs = s.run(None, feeds_for(s, inputs))
        except Exception as e:
            row[what] = "ORT: " + str(e).splitlines()[0][:200]; continue
        ent = {"sqnr_vs_original": [sqnr_db(r, t) for r, t in zip(ref, theirs) if r.shape == t.shape],
               "MB": round(os.path.getsize(out) / 1e6, 2)}
        mine, err = whittle_run(a.binary, out, npz)
        if err: ent["whittle"] = err
        else:
            ent["whittle_vs_ort_db"] = [sqnr_db(t, np.load(os.path.join(mine, o.name + ".npy")))
                                        for o, t in zip(s.get_outputs(), theirs) if os.path.exists(os.path.join(mine, o.name + ".npy"))]
        row[what] = ent
    return row


def check_speed(a, path, name):
    npz = os.path.join(a.dir, name + ".inputs.npz")
    inputs = np.load(npz)
    try:
        s = ort_session(path, threads=1); feeds = feeds_for(s, inputs)
    except Exception as e:
        return {"ORT": str(e).splitlines()[0][:200]}
    mine, theirs = [], []
    for _ in range(a.rounds):
        p = subprocess.run([a.binary, "bench", path, "--threads", "1", "--iterations", str(a.iterations), "--warmup", "2",
                            "--json", "-i", npz], capture_output=True, text=True)
        if p.returncode != 0: return {"whittle": (p.stderr.strip().splitlines() or ["?"])[-1][:200]}
        mine.append(json.loads(p.stdout)["cpuMs"]["p50"])
        for _ in range(2): s.run(None, feeds)
        times = []
        for _ in range(a.iterations):
            t = time.process_time(); s.run(None, feeds); times.append((time.process_time() - t) * 1000)
        theirs.append(statistics.median(times))
    w, o = statistics.median(mine), statistics.median(theirs)
    return {"whittle_ms": round(w, 3), "ort_ms": round(o, 3), "ratio": round(w / o, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["run", "optimize", "speed"])
    ap.add_argument("--binary", default="build/whittle")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--models", default="*", help="comma-separated globs of NAME-MODE (default: every file)")
    ap.add_argument("--what", default=",".join(OPTIMIZATIONS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    a = ap.parse_args()
    check = {"run": check_run, "optimize": check_optimize, "speed": check_speed}[a.mode]
    for path, name in files(a.dir, a.models.split(",")):
        print(os.path.basename(path)[:-5], json.dumps(check(a, path, name)), flush=True)


if __name__ == "__main__":
    main()
