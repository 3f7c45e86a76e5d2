#!/usr/bin/env python3
"""The opset-23 Attention node alone at sequence 128 and 512: whittle's kernel beside ONNX Runtime's.

usage: .venv/bin/python benchmarks/attention_onnx_bench.py [--binary build/whittle] [--rounds 3]

One-node models Q, K, V [1, 8, S, 64] (is_causal 0 and 1), the same seeded inputs for both
runtimes, 1 thread, on the CPU clock (whittle bench --json's cpuMs.mean per run; ONNX Runtime timed
with time.process_time over the same number of runs), alternating which goes first, for
--rounds rounds; a figure is the median over rounds. Prints a Markdown table.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper


def model(seq, causal, heads=8, size=64):
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, heads, seq, size]) for n in "qkv"]
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=causal)
    graph = helper.make_graph([node], "attention", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    m.ir_version = 10
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/whittle")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| S | is_causal | whittle CPU ms | ORT CPU ms | whittle / ORT |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as d:
        for seq in (128, 512):
            for causal in (0, 1):
                path = os.path.join(d, f"a{seq}_{causal}.onnx")
                onnx.save(model(seq, causal), path)
                inputs = []
                feeds = {}
                for n in "qkv":
                    a = rng.standard_normal((1, 8, seq, 64)).astype(np.float32)
                    np.save(os.path.join(d, n + ".npy"), a)
                    inputs += ["-i", f"{n}={os.path.join(d, n + '.npy')}"]
                    feeds[n] = a
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                w, o = [], []
                for r in range(args.rounds):
                    def run_whittle():
                        out = subprocess.run([args.binary, "bench", path, "--threads", "1", "--json", "--iterations",
                                              str(args.iterations), "--warmup", "3"] + inputs,
                                             capture_output=True, text=True, check=True).stdout
                        w.append(json.loads(out)["cpuMs"]["mean"])

                    def run_ort():
                        for _ in range(3):
                            sess.run(None, feeds)
                        t = time.process_time()
                        for _ in range(args.iterations):
                            sess.run(None, feeds)
                        o.append((time.process_time() - t) * 1000 / args.iterations)

                    for fn in ((run_whittle, run_ort) if r % 2 == 0 else (run_ort, run_whittle)):
                        fn()
                mw, mo = statistics.median(w), statistics.median(o)
                print(f"| {seq} | {causal} | {mw:.2f} | {mo:.2f} | {mw / mo:.2f} |")


if __name__ == "__main__":
    main()
