#!/usr/bin/env python3
"""Side-by-side latency of whittle's CPU runtime and ONNX Runtime on the same model, inputs
and thread count, interleaved in rounds so that machine noise hits both alike.

For each (model, threads, batch) the script writes one set of seeded random inputs as .npy,
then runs `whittle bench --input ...` and an ONNX Runtime session (all graph optimizations
on, intra-op threads = threads, sequential execution) in alternation for --rounds rounds of
--iterations timed runs each; a row's figure is the median over rounds of each round's
median. The ratio whittle / ORT below 1.0 means whittle is faster.

    python3 benchmarks/bench_vs_ort.py                      # the default table
    python3 benchmarks/bench_vs_ort.py --models squeezenet1.1 --threads 1 --batch 1
    python3 benchmarks/bench_vs_ort.py --update-results     # rewrite the table in RESULTS.md
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(ROOT, "..", "shared", "models")
DEFAULT_MODELS = ["squeezenet1.1", "mobilenetv2-12-rebuilt-fp32", "mobilenetv2-12-int8", "mnist-8"]
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
             "tensor(uint8)": np.uint8, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def make_inputs(session, batch, seed, out_dir):
    rng = np.random.default_rng(seed)
    feeds, args = {}, []
    for i, info in enumerate(session.get_inputs()):
        shape = [d if isinstance(d, int) else None for d in info.shape]
        if shape and shape[0] is None:
            shape[0] = batch
        elif shape and isinstance(shape[0], int) and shape[0] == 1 and batch != 1:
            raise SystemExit(f"{info.name}: fixed batch 1, cannot bench batch {batch}")
        shape = [1 if d is None else d for d in shape]
        dtype = ORT_TYPES[info.type]
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape).astype(dtype)
        else:
            value = rng.integers(0, 10, size=shape).astype(dtype)
        path = os.path.join(out_dir, f"input_{i}.npy")
        np.save(path, value)
        feeds[info.name] = value
        args += ["--input", f"{info.name}={path}"]
    return feeds, args


def ort_round(session, feeds, iterations, warmup):
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def whittle_round(binary, model, threads, batch, input_args, iterations, warmup):
    cmd = [binary, "bench", model, "--threads", str(threads), "--batch", str(batch), "--iterations",
           str(iterations), "--warmup", str(warmup), "--json"] + input_args
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"whittle bench exited {result.returncode}")
    return json.loads(result.stdout)["latency_ms"]["p50"]


def bench_row(binary, name, threads, batch, rounds, iterations, warmup):
    model = os.path.join(MODELS_DIR, name + ".onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory() as tmp:
        feeds, input_args = make_inputs(session, batch, seed=threads * 100 + batch, out_dir=tmp)
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(whittle_round(binary, model, threads, batch, input_args, iterations, warmup))
            theirs.append(ort_round(session, feeds, iterations, warmup))
    w, o = statistics.median(ours), statistics.median(theirs)
    return {"model": name, "threads": threads, "batch": batch, "whittle_ms": w, "ort_ms": o, "ratio": w / o}


def table(rows):
    lines = ["| model | threads | batch | whittle p50 (ms) | ORT p50 (ms) | whittle / ORT |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['threads']} | {r['batch']} | error: {r['error']} | | |")
            continue
        lines.append(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['whittle_ms']:.3f} | "
                     f"{r['ort_ms']:.3f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--update-results", action="store_true", help="rewrite the runtime table in RESULTS.md")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()

    rows = []
    for name in args.models:
        for threads in args.threads:
            for batch in args.batch:
                try:
                    row = bench_row(args.binary, name, threads, batch, args.rounds, args.iterations, args.warmup)
                except (RuntimeError, SystemExit) as e:
                    row = {"model": name, "threads": threads, "batch": batch, "error": str(e).splitlines()[0]}
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    text = table(rows)
    print()
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    if args.update_results:
        update_results(text, " ".join(sys.argv[1:]))


def update_results(text, argv):
    path = os.path.join(ROOT, "benchmarks", "RESULTS.md")
    begin, end = "<!-- runtime-vs-ort:begin -->", "<!-- runtime-vs-ort:end -->"
    content = open(path).read() if os.path.exists(path) else "# Benchmark results\n\n" + begin + "\n" + end + "\n"
    cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
    block = (f"{begin}\nCommand: `python3 benchmarks/bench_vs_ort.py {argv}`  \n"
             f"Machine: {cpu}, {os.cpu_count()} cores; ONNX Runtime {ort.__version__}; "
             f"{time.strftime('%Y-%m-%d')}\n\n{text}\n{end}")
    start, stop = content.index(begin), content.index(end) + len(end)
    with open(path, "w") as f:
        f.write(content[:start] + block + content[stop:])


if __name__ == "__main__":
    main()
