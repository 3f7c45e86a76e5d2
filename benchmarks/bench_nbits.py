#!/usr/bin/env python3
"""4-bit weight-only SmolLM2-135M: whittle's runtime against ONNX Runtime's MatMulNBits, and
perplexity of the 4-bit models, regenerating the `nbits` section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_nbits.py --update-results

Steps:
1. make: ONNX Runtime's MatMulNBitsQuantizer (RTN, 4 bits, block 128, symmetric) on the fp32
   model (--fp32, default /work/smollm2/SmolLM2-135M-Instruct-fp32.onnx or
   ../shared/models/smollm2/SmolLM2-135M-Instruct-fp32.onnx), once as com.microsoft
   MatMulNBits (quant_format QOperator) and once as opset-21 block-wise DequantizeLinear ->
   MatMul (quant_format QDQ, on the model converted to opset 21 by onnx.version_converter first:
   the quantizer raises the opset without converting ReduceMean's axes). Written to --work (default /tmp/whittle-nbits), reused when there.
   ORT's quantizer imports onnx_ir (and sympy), which requirements.txt does not pin: set
   PYTHONPATH to a folder that has them (`pip install --target DIR onnx-ir==1.0.0 sympy mpmath`).
2. perplexity: `whittle compare FP32 Q4 --metric perplexity --data eval_512.npz --limit W` for both
   4-bit files (W windows of 512 tokens, --windows).
3. latency, 1 thread: input_ids [1, 1] (one token, M = 1 in every MatMul) and [1, S] (prefill,
   --prefill, default 512): whittle (`whittle bench`) on both 4-bit files and on fp32, ONNX
   Runtime on the MatMulNBits file and on fp32, interleaved in rounds as bench_vs_ort.py does.

--files NAME=PATH ... instead takes MatMulNBits files made elsewhere (e.g. whittle's quantize-weights
with format=matmulnbits and accuracy-level=4) and compares the two runtimes on each same file:
perplexity in whittle (`whittle compare`) and in ONNX Runtime (benchmarks/perplexity.py), and latency
of both at one token and at the prefill shape (with --baseline-binary timed on every file too).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_vs_ort  # noqa: E402
from bench_common import CLOCKS, cpu_model, update_results  # noqa: E402
from bench_vs_ort import interleaved, ort_round, ort_session, whittle_round  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
FP32_CANDIDATES = ["/work/smollm2/SmolLM2-135M-Instruct-fp32.onnx",
                   os.path.join(SHARED, "models", "smollm2", "SmolLM2-135M-Instruct-fp32.onnx")]
EVAL = os.path.join(SHARED, "data", "wikitext2", "eval_512.npz")


def make_models(fp32, work, block):
    import onnx
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    out = {}
    for fmt, suffix in [(QuantFormat.QOperator, "nbits"), (QuantFormat.QDQ, "qdq")]:
        path = os.path.join(work, f"smollm2-q4-b{block}-sym-{suffix}.onnx")
        out[suffix] = path
        if os.path.exists(path):
            continue
        model = onnx.load(fp32)
        if fmt == QuantFormat.QDQ:
            # The QDQ form needs opset 21 (int4 DequantizeLinear with block_size), and ORT's quantizer
            # raises the opset without converting the graph: ReduceMean would keep its axes attribute,
            # which opset 18 moved to an input (ORT refuses that model). Convert first.
            from onnx import version_converter
            model = version_converter.convert_version(model, 21)
        q = MatMulNBitsQuantizer(model, bits=4, block_size=block, is_symmetric=True, quant_format=fmt)
        q.process()
        onnx.save(q.model.model, path + ".tmp", save_as_external_data=False)
        os.replace(path + ".tmp", path)
    return out


def perplexity(binary, fp32, q4, windows):
    cmd = [binary, "compare", fp32, q4, "--data", EVAL, "--metric", "perplexity", "--limit", str(windows),
           "--batch", "1", "--latency-runs", "0", "--json", "-", "--threads", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    p = json.loads(r.stdout)["outputs"][0]["perplexity"]
    return p["original"], p["optimized"]


def ort_perplexity(model, windows):
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "perplexity.py"), model, "--data", EVAL, "--windows", str(windows),
           "--threads", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return float(r.stdout.split("perplexity ")[1].split()[0])


def same_file_latency(binary, files, seq, rounds, iterations, tmp, baseline=None):
    """p50 ms of whittle (and `baseline`) and of ONNX Runtime on each of `files`, interleaved."""
    ids = np.random.default_rng(7).integers(0, 49152, size=(1, seq), dtype=np.int64)
    path = os.path.join(tmp, f"ids_{seq}.npy")
    np.save(path, ids)
    args = ["--input", f"input_ids={path}"]
    contenders, names = [], []
    for name, model in files.items():
        contenders.append(lambda m=model: whittle_round(binary, m, 1, args, iterations, 2))
        names.append(f"whittle {name}")
        if baseline:
            contenders.append(lambda m=model: whittle_round(baseline, m, 1, args, iterations, 2))
            names.append(f"baseline {name}")
        session = ort_session(model, 1)
        contenders.append(lambda s=session: ort_round(s, {"input_ids": ids}, iterations, 2))
        names.append(f"ORT {name}")
    return dict(zip(names, interleaved(contenders, rounds)))


def both_shapes(a, timer, models):
    """timer(...) at one token (unless --skip-one-token) and at the prefill shape."""
    with tempfile.TemporaryDirectory() as tmp:
        one = None if a.skip_one_token else timer(a.binary, models, 1, a.rounds, a.iterations, tmp, a.baseline_binary)
        print("M=1", one, flush=True)
        pre = timer(a.binary, models, a.prefill, a.rounds, a.prefill_iterations, tmp, a.baseline_binary)
        print(f"seq {a.prefill}", pre, flush=True)
    return one, pre


def compare_files(a):
    import onnxruntime as ort

    files = dict(f.split("=", 1) for f in a.files)
    ppl = {}
    if not a.skip_perplexity:
        for name, path in files.items():
            fp32, whittle = perplexity(a.binary, a.fp32, path, a.windows)
            ppl[name] = (fp32, whittle, ort_perplexity(path, a.windows))
            print(name, "perplexity fp32 / whittle / ORT", ppl[name], flush=True)
    one, pre = both_shapes(a, same_file_latency, files)
    out = [f"Command: `.venv/bin/python benchmarks/bench_nbits.py --files {' '.join(a.files)} --windows {a.windows} "
           f"--prefill {a.prefill} --clock {a.clock} --rounds {a.rounds}{' --baseline-binary B' if a.baseline_binary else ''}`; "
           f"ONNX Runtime {ort.__version__}, {cpu_model()}, 1 thread, {a.clock} clock, {datetime.date.today().isoformat()}.", ""]
    if ppl:
        out += [f"| file | fp32 perplexity | whittle runtime | ONNX Runtime | file MB |", "| --- | --- | --- | --- | --- |"]
        for name, (o, w, r) in ppl.items():
            out.append(f"| {name} | {o:.2f} | {w:.2f} ({100 * (w / o - 1):+.1f} %) | {r:.2f} ({100 * (r / o - 1):+.1f} %) | "
                       f"{os.path.getsize(files[name]) / 1e6:.1f} |")
        out.append("")
    cols = ["whittle", "baseline", "ORT"] if a.baseline_binary else ["whittle", "ORT"]
    out += ["| shape | file | " + " | ".join(f"{c} ms" for c in cols) + " | whittle / ORT |" +
            (" baseline / ORT |" if a.baseline_binary else ""), "| --- " * (len(cols) + 3 + bool(a.baseline_binary)) + "|"]
    for label, r in [("one token [1, 1]", one), (f"prefill [1, {a.prefill}]", pre)]:
        if r is None:
            continue
        for name in files:
            row = f"| {label} | {name} | " + " | ".join(f"{r[f'{c} {name}']:.2f}" for c in cols)
            row += f" | {r[f'whittle {name}'] / r[f'ORT {name}']:.2f} |"
            if a.baseline_binary:
                row += f" {r[f'baseline {name}'] / r[f'ORT {name}']:.2f} |"
            out.append(row)
    print("\n".join(out))


def latency(binary, models, seq, rounds, iterations, tmp, baseline=None):
    """p50 ms per contender: whittle on each model in `models`, ORT on the fp32 and MatMulNBits files, and
    the `baseline` build of whittle on the MatMulNBits file when given."""
    ids = np.random.default_rng(7).integers(0, 49152, size=(1, seq), dtype=np.int64)
    path = os.path.join(tmp, f"ids_{seq}.npy")
    np.save(path, ids)
    args = ["--input", f"input_ids={path}"]
    feeds = {"input_ids": ids}
    contenders, names = [], []
    for name, model in models.items():
        contenders.append(lambda m=model: whittle_round(binary, m, 1, args, iterations, 2))
        names.append(f"whittle {name}")
    if baseline:
        contenders.append(lambda: whittle_round(baseline, models["nbits"], 1, args, iterations, 2))
        names.append("baseline nbits")
    for name in ["fp32", "nbits"]:
        session = ort_session(models[name], 1)
        contenders.append(lambda s=session: ort_round(s, feeds, iterations, 2))
        names.append(f"ORT {name}")
    return dict(zip(names, interleaved(contenders, rounds)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    ap.add_argument("--fp32", default=next((p for p in FP32_CANDIDATES if os.path.exists(p)), FP32_CANDIDATES[-1]))
    ap.add_argument("--work", default="/tmp/whittle-nbits")
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--prefill-iterations", type=int, default=2)
    ap.add_argument("--skip-perplexity", action="store_true")
    ap.add_argument("--clock", choices=CLOCKS, default="wall",
                    help="wall: elapsed time per run; cpu: the process's CPU time per run (1 thread: leaves out waiting "
                    "for a core on a shared machine)")
    ap.add_argument("--baseline-binary", help="an earlier build of whittle, timed on the nbits file in the same rounds")
    ap.add_argument("--skip-one-token", action="store_true", help="time the prefill shape only")
    ap.add_argument("--update-results", action="store_true")
    ap.add_argument("--files", nargs="+", metavar="NAME=PATH",
                    help="compare the two runtimes on these MatMulNBits files instead of ORT's quantizer's (printed only)")
    a = ap.parse_args()
    bench_vs_ort.CLOCK = a.clock
    if a.files:
        compare_files(a)
        return
    import onnxruntime as ort

    os.makedirs(a.work, exist_ok=True)
    q4 = make_models(a.fp32, a.work, a.block)
    models = {"fp32": a.fp32, "nbits": q4["nbits"], "qdq": q4["qdq"]}
    ppl = {}
    if not a.skip_perplexity:
        for name in ["nbits", "qdq"]:
            ppl[name] = perplexity(a.binary, a.fp32, q4[name], a.windows)
            print(name, "perplexity", ppl[name], flush=True)
    one, pre = both_shapes(a, latency, models)
    sizes = {k: os.path.getsize(v) / 1e6 for k, v in models.items()}
    text = render(a, ort.__version__, ppl, one, pre, sizes)
    print(text)
    if a.update_results:
        update_results("nbits", text)


def render(a, ort_version, ppl, one, pre, sizes):
    out = [f"## 4-bit weight-only SmolLM2-135M: whittle vs ONNX Runtime MatMulNBits", "",
           f"Command: `PYTHONPATH=DIR_WITH_ONNX_IR .venv/bin/python benchmarks/bench_nbits.py --windows {a.windows} "
           f"--prefill {a.prefill} --clock {a.clock}{' --baseline-binary B' if a.baseline_binary else ''}"
           f"{' --skip-one-token' if a.skip_one_token else ''}{' --skip-perplexity' if a.skip_perplexity else ''} "
           "--update-results`  ",
           f"Machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}, shared with other jobs (builds) while this ran; "
           f"ONNX Runtime {ort_version}; {datetime.date.today().isoformat()}.  ",
           f"Models: ORT's `MatMulNBitsQuantizer(bits=4, block_size={a.block}, is_symmetric=True)` (RTN, accuracy_level "
           "unset) on the fp32 model, as com.microsoft MatMulNBits (`nbits`) and as opset-21 block-wise "
           "DequantizeLinear -> MatMul (`qdq`, which whittle's lowering turns into the same kernel). Latency: p50 of "
           f"`whittle bench` and of an ORT session (all graph optimizations), 1 thread, {a.clock} clock, median of {a.rounds} interleaved "
           "rounds; one token is input_ids [1, 1], prefill is input_ids [1, "
           f"{a.prefill}] (no KV cache: the model recomputes the whole sequence).", ""]
    if ppl:
        out += [f"Perplexity (`whittle compare FP32 Q4 --metric perplexity --data ../shared/data/wikitext2/eval_512.npz "
                f"--limit {a.windows}`: {a.windows} windows of 512 tokens, next-token NLL over positions 1..511):", "",
                "| model | fp32 | 4-bit | increase | file MB |", "| --- | --- | --- | --- | --- |"]
        for name in ["nbits", "qdq"]:
            o, q = ppl[name]
            out.append(f"| {name} | {o:.2f} | {q:.2f} | {100 * (q / o - 1):+.1f} % | {sizes[name]:.0f} (fp32 {sizes['fp32']:.0f}) |")
        out.append("")
    before = ["whittle nbits, baseline build", "baseline / ORT nbits"] if a.baseline_binary else []
    out += ["| shape | whittle fp32 | whittle nbits | whittle qdq | ORT fp32 | ORT nbits | " + " | ".join(before + [""])
            + "whittle nbits / ORT nbits |", "| --- " * (7 + len(before)) + "|"]
    for label, r in [("one token [1, 1]", one), (f"prefill [1, {a.prefill}]", pre)]:
        if r is None:
            continue
        base = (f"{r['baseline nbits']:.2f} ms | {r['baseline nbits'] / r['ORT nbits']:.2f} | " if a.baseline_binary else "")
        out.append(f"| {label} | {r['whittle fp32']:.2f} ms | {r['whittle nbits']:.2f} ms | {r['whittle qdq']:.2f} ms | "
                   f"{r['ORT fp32']:.2f} ms | {r['ORT nbits']:.2f} ms | {base}{r['whittle nbits'] / r['ORT nbits']:.2f} |")
    out += ["", NOTES]
    return "\n".join(out)


NOTES = """Notes:
- Both runtimes compute the 4-bit products in float32 here (the quantizer leaves accuracy_level unset, so
  ORT's MatMulNBits uses its fp32 path). ORT itself would run the `qdq` file at accuracy level 4 (int8
  activations; session option `session.qdq_matmulnbits_accuracy_level`, default 4), which is 0.7 % off the
  ONNX definition on the kernel tests' models; whittle computes the definition. ORT is not timed on `qdq`.
- The LM head (MatMul with the Transpose of the tied embedding) stays float32 in both files: ORT's
  quantizer only takes constant weights. whittle's session folds that Transpose once (before: 170 ms of a
  260 ms token, the Transpose ran on every call).
- The fp32 model in the `qdq` row is converted to opset 21 by onnx.version_converter before quantizing:
  ORT's quantizer raises the opset to 21 without converting ReduceMean's axes attribute (an input since
  opset 18), and ORT refuses that file.
- The machine had a load average around 7 on its 2 cores (other workers' builds and tests) during these
  runs, so single figures move by 10-20 % between runs; the interleaving keeps the ratios comparable."""


if __name__ == "__main__":
    main()
