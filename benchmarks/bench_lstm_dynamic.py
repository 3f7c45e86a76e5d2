#!/usr/bin/env python3
"""Dynamic int8 of the LSTM models in the corpus: whittle's `quantize-dynamic{lstm=true}` against
ONNX Runtime's `quantize_dynamic`, both writing com.microsoft DynamicQuantizeLSTM.

    .venv/bin/python benchmarks/bench_lstm_dynamic.py [--models a,b] [--rounds 3] [--iterations 20]

For each model (corpus/models.tsv rows, fetched by scripts/fetch_corpus.sh): the fp32 model, whittle's
dynamic int8 model and ONNX Runtime's (QInt8 weights, per-channel, its defaults otherwise). Per model,
on corpus.py's seed-0 inputs: the file sizes; every output's norm-relative error against the fp32
model in ONNX Runtime (optimizations off); and the latency of whittle on its own int8 file and of
ONNX Runtime (all optimizations) on the same file and on fp32, 1 thread, interleaved rounds, on the
CPU clock (the process's CPU time per run, fair on a loaded machine). Prints a Markdown table.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_vs_ort  # noqa: E402
import corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODELS = "g2p-id-encoder,g2p-id-decoder,ppocr-rec-v2,ddddocr-rec"


def ort_dynamic(src, dst):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True)


def count_ops(path, op):
    return sum(1 for n in onnx.load(path).graph.node if n.op_type == op)


def worst_error(path, feeds, expected):
    actual, err = corpus.ort_run(path, feeds)
    if err:
        return err
    errs = corpus.errors(actual, expected)
    return errs if isinstance(errs, str) else f"{max(e[0] for e in errs):.1e}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    p.add_argument("--corpus", default=os.path.join(ROOT, ".cache", "corpus"))
    p.add_argument("--models", default=DEFAULT_MODELS)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    bench_vs_ort.CLOCK = "cpu"
    rows = {r["name"]: r for r in corpus.read_corpus_list()}
    print("| model | LSTMs | fp32 file | whittle int8 file | ORT int8 file | whittle int8 error | ORT int8 error "
          "| whittle on its int8 / ORT on it | ORT on it / ORT fp32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in a.models.split(","):
        src = os.path.join(a.corpus, name + ".onnx")
        if name not in rows or not os.path.exists(src):
            sys.exit(f"bench_lstm_dynamic: no corpus model {name} (bash scripts/fetch_corpus.sh)")
        with tempfile.TemporaryDirectory() as tmp:
            ours, theirs = os.path.join(tmp, "whittle.onnx"), os.path.join(tmp, "ort.onnx")
            subprocess.run([a.binary, "optimize", src, "-o", ours, "--passes", "quantize-dynamic{lstm=true}"],
                           check=True, capture_output=True)
            ort_dynamic(src, theirs)
            feeds = corpus.make_feeds(onnx.load(src), rows[name]["inputs"], 0)
            expected, err = corpus.ort_run(src, feeds)
            if err:
                sys.exit(f"bench_lstm_dynamic: {name}: {err}")
            input_args = []
            for i, (k, v) in enumerate(feeds.items()):
                np.save(os.path.join(tmp, f"in{i}.npy"), v)
                input_args += ["-i", f"{k}={os.path.join(tmp, f'in{i}.npy')}"]
            session, fp32 = bench_vs_ort.ort_session(ours, 1), bench_vs_ort.ort_session(src, 1)
            names = {i.name for i in session.get_inputs()}
            run_feeds = {k: v for k, v in feeds.items() if k in names}
            w, o, f = bench_vs_ort.interleaved([
                lambda: bench_vs_ort.whittle_round(a.binary, ours, 1, input_args, a.iterations, a.warmup),
                lambda: bench_vs_ort.ort_round(session, run_feeds, a.iterations, a.warmup),
                lambda: bench_vs_ort.ort_round(fp32, run_feeds, a.iterations, a.warmup)], a.rounds)
            mb = lambda path: f"{os.path.getsize(path) / 1e6:.2f} MB"  # noqa: E731
            print(f"| {name} | {count_ops(ours, 'DynamicQuantizeLSTM')} of {count_ops(src, 'LSTM')} | {mb(src)} | {mb(ours)} "
                  f"| {mb(theirs)} | {worst_error(ours, feeds, expected)} | {worst_error(theirs, feeds, expected)} "
                  f"| {w / o:.2f} ({w:.3f} / {o:.3f} ms) | {o / f:.2f} ({f:.3f} ms fp32) |", flush=True)


if __name__ == "__main__":
    main()
