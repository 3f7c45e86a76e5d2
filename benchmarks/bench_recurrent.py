#!/usr/bin/env python3
"""Latency of LSTM, GRU and RNN on whittle's CPU runtime and on ONNX Runtime, side by side.

    .venv/bin/python benchmarks/bench_recurrent.py --update-results

Builds one-node models with onnx.helper (seeded random weights as initializers, bias present,
X fed; default activations) and times them with the conventions of bench_vs_ort.py: the same
.npy input for `whittle bench --json` and an ONNX Runtime session (all graph optimizations,
the same intra-op threads, sequential), interleaved for --rounds rounds of --iterations timed
runs after --warmup runs; a figure is the median over rounds of each round's median.
whittle / ORT below 1.0 means whittle is faster. Rewrites the recurrent-vs-ort section of
benchmarks/RESULTS.md with --update-results.
"""
import argparse
import datetime
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import cpu_model, update_results  # noqa: E402
import bench_vs_ort  # noqa: E402
from bench_vs_ort import interleaved, ort_round, ort_session, whittle_round  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}

# (op, direction, seq, batch, input, hidden)
CASES = [
    ("LSTM", "bidirectional", 64, 1, 128, 256),
    ("LSTM", "forward", 64, 1, 128, 256),
    ("LSTM", "bidirectional", 64, 8, 128, 256),
    ("GRU", "bidirectional", 64, 1, 128, 256),
    ("RNN", "bidirectional", 64, 1, 128, 256),
]


def build(op, direction, seq, batch, inp, hidden, path):
    rng = np.random.default_rng(0)
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    scale = 1.0 / np.sqrt(hidden)
    inits = [numpy_helper.from_array(rng.uniform(-scale, scale, s).astype(np.float32), n)
             for n, s in (("W", (dirs, g * hidden, inp)), ("R", (dirs, g * hidden, hidden)),
                          ("B", (dirs, 2 * g * hidden)))]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, ["X", "W", "R", "B"], outs, hidden_size=hidden, direction=direction)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                                                 [seq, batch, inp])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, path)
    x = rng.standard_normal((seq, batch, inp)).astype(np.float32)
    return x


def row(args, case):
    op, direction, seq, batch, inp, hidden = case
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.onnx")
        x = build(op, direction, seq, batch, inp, hidden, model)
        np.save(os.path.join(tmp, "x.npy"), x)
        session = ort_session(model, args.threads)
        feeds = {"X": x}
        input_args = ["--input", "X=" + os.path.join(tmp, "x.npy")]
        w, o = interleaved([
            lambda: whittle_round(args.binary, model, args.threads, input_args, args.iterations, args.warmup),
            lambda: ort_round(session, feeds, args.iterations, args.warmup)], args.rounds)
    return {"op": op, "direction": direction, "seq": seq, "batch": batch, "input": inp, "hidden": hidden,
            "whittle_ms": w, "ort_ms": o, "ratio": w / o}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall = elapsed time per run (default); cpu = the process's CPU time per run (fairer on a loaded machine)")
    parser.add_argument("--update-results", action="store_true", help="rewrite this section of benchmarks/RESULTS.md")
    args = parser.parse_args()
    bench_vs_ort.CLOCK = args.clock
    lines = ["| op | direction | seq | batch | input | hidden | whittle p50 (ms) | ORT p50 (ms) | whittle / ORT |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case in CASES:
        r = row(args, case)
        line = (f"| {r['op']} | {r['direction']} | {r['seq']} | {r['batch']} | {r['input']} | {r['hidden']} | "
                f"{r['whittle_ms']:.3f} | {r['ort_ms']:.3f} | {r['ratio']:.2f} |")
        print(line, flush=True)
        lines.append(line)
    if args.update_results:
        command = ".venv/bin/python benchmarks/bench_recurrent.py --update-results"
        for flag, value, default in (("--threads", args.threads, 1), ("--rounds", args.rounds, 5),
                                     ("--iterations", args.iterations, 30), ("--warmup", args.warmup, 5),
                                     ("--clock", args.clock, "wall")):
            if value != default:
                command += f" {flag} {value}"
        text = "\n".join([
            "## Recurrent ops: whittle vs ONNX Runtime", "", f"Command: `{command}`", "",
            f"Machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}; ONNX Runtime {ort.__version__}; "
            f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. {args.threads} thread(s); "
            f"{args.rounds} interleaved rounds of {args.iterations} timed runs (after {args.warmup} warm-up runs), "
            f"{'CPU time' if args.clock == 'cpu' else 'elapsed time'} per run; a "
            "figure is the median over rounds of each round's median. One-node models (opset 14, default "
            "activations, bias, X fed, Y/Y_h(/Y_c) all produced). The machine was shared with other jobs "
            "(builds) while this ran, so absolute figures are noisy; the ratios come from interleaved runs.", ""]
            + lines)
        update_results("recurrent-vs-ort", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
