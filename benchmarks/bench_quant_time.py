#!/usr/bin/env python3
"""Quantization time on SmolLM2-135M: whittle's passes against ONNX Runtime's quantizers for the
same method, in one run on one machine, regenerating the `quant-time` section of benchmarks/RESULTS.md.

    PYTHONPATH=DIR_WITH_ONNX_IR .venv/bin/python benchmarks/bench_quant_time.py --update-results

Each job is one process that loads the fp32 model, quantizes it and saves the result; its wall time
and CPU time (user + system, all threads: `resource.getrusage(RUSAGE_CHILDREN)`) are what the table
shows. CPU time is the figure to compare on a machine shared with other jobs.

Methods (block 128, symmetric, 4 bits; whittle at -O0 so that only the quantization runs):
- rtn: ORT `MatMulNBitsQuantizer` with `DefaultWeightOnlyQuantConfig` (MLAS round-to-nearest) against
  `quantize-weights{method=rtn, clip-search=false, embeddings=false}`, both as com.microsoft MatMulNBits.
- gptq: ORT `GPTQWeightOnlyQuantConfig` (percdamp 0.01, no act-order, per-channel) against
  `quantize-weights{method=gptq, act-order=false, embeddings=false}`, both on the first --gptq-windows
  windows of calib_512.npz.
- gptq-default (whittle only, timed beside the gptq row's ORT figure): whittle's recommended GPTQ,
  `quantize-weights{bits=4,block=128,method=gptq,embedding-bits=8}` (act-order, the tied embedding and
  LM head 8-bit, QDQ), on the same windows.
- dynamic: ORT `quantize_dynamic` (int8 weights per channel) against `quantize-dynamic`.
- keep-sensitive (whittle only, no ORT counterpart): `quantize-dynamic{keep-sensitive=10}` on 4 calibration
  windows, the session-11 command (smooth-quant first is left out: it is its own pass).
ORT's quantizer imports onnx_ir, which requirements.txt does not pin: set PYTHONPATH to a folder that has it.

ORT's GPTQ (the gptq row) runs through its neural_compressor code, which imports torch. torch is never a
dependency of whittle or its tests (not in requirements.txt): run this script from a benchmark-only venv
outside the repository that has it, e.g.
    python3 -m venv /work/s13/benchvenv
    /work/s13/benchvenv/bin/pip install onnxruntime==1.32.0 onnx numpy onnx_ir
    /work/s13/benchvenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
(where only PyPI's CUDA wheel is reachable: `pip install --no-deps torch`, then filelock networkx jinja2
fsspec sympy and the few nvidia-* libraries it fails to load without; it imports and runs on the CPU).
Without torch the gptq row is timed for whittle alone and says why.

--perplexity-windows N adds the WikiText-2 perplexity of every model written (benchmarks/perplexity.py over
the first N windows of eval_512.npz, ONNX Runtime, 1 thread, DequantizeLinear -> MatMul kept in float).
"""
import argparse
import datetime
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import cpu_model, update_results  # noqa: E402
from bench_nbits import FP32_CANDIDATES, ROOT, SHARED  # noqa: E402

CALIB = os.path.join(SHARED, "data", "wikitext2", "calib_512.npz")

ORT_RTN = """
import sys, onnx
from onnxruntime.quantization import matmul_nbits_quantizer as mnq
model = onnx.load(sys.argv[1])
config = mnq.DefaultWeightOnlyQuantConfig(block_size=128, is_symmetric=True)
q = mnq.MatMulNBitsQuantizer(model, block_size=128, is_symmetric=True, algo_config=config)
q.process()
q.model.save_model_to_file(sys.argv[2], use_external_data_format=False)
"""

ORT_GPTQ = """
import sys, numpy as np, onnx
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization import matmul_nbits_quantizer as mnq
ids = np.load(sys.argv[3])["input_ids"][: int(sys.argv[4])].astype(np.int64)
class Reader(CalibrationDataReader):
    def __init__(self):
        self.rows = iter([{"input_ids": ids[i : i + 1]} for i in range(len(ids))])
    def get_next(self):
        return next(self.rows, None)
model = onnx.load(sys.argv[1])
config = mnq.GPTQWeightOnlyQuantConfig(calibration_data_reader=Reader(), percdamp=0.01, block_size=128,
                                       actorder=False, mse=False, perchannel=True)
q = mnq.MatMulNBitsQuantizer(model, block_size=128, is_symmetric=True, algo_config=config)
q.process()
q.model.save_model_to_file(sys.argv[2], use_external_data_format=False)
"""

ORT_DYNAMIC = """
import sys
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic(sys.argv[1], sys.argv[2], per_channel=True, weight_type=QuantType.QInt8)
"""


def timed(cmd, timeout=None):
    """(wall s, CPU s, finished) of one process; stopped after `timeout` s (then finished is False)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:  # killed and waited for: its CPU time is in RUSAGE_CHILDREN
        r = None
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r is not None and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}...: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r is not None


def perplexity(model, windows):
    """WikiText-2 perplexity of `model` (benchmarks/perplexity.py, first `windows` windows, 1 thread)."""
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "perplexity.py"), model,
                        "--data", os.path.join(SHARED, "data", "wikitext2", "eval_512.npz"), "--windows", str(windows),
                        "--dq-accuracy-level", "0"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"perplexity.py {model}: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
    return float(r.stdout.split("perplexity ")[1].split()[0])


def whittle_cmd(binary, fp32, out, passes, calib_size=None):
    cmd = [binary, "optimize", fp32, "-o", out, "-O", "0", "--passes", passes]
    if calib_size is not None:
        cmd += ["--calib", CALIB, "--calib-size", str(calib_size)]
    return cmd


def jobs(a, tmp):
    """(method, whittle command, ORT command or None, why ORT is not run), in --methods order."""
    py = sys.executable
    out = lambda name: os.path.join(tmp, name + ".onnx")  # noqa: E731
    rows = []
    # ORT's GPTQ runs through its neural_compressor code, which needs torch (not in requirements.txt).
    gptq_ort = importlib.util.find_spec("torch") is not None
    if "rtn" in a.methods:
        rows.append(("RTN 4-bit", whittle_cmd(a.binary, a.fp32, out("w_rtn"), "quantize-weights{bits=4,block=128,symmetric=true,"
                                                                                    "method=rtn,clip-search=false,embeddings=false,format=matmulnbits}"),
                     [py, "-c", ORT_RTN, a.fp32, out("o_rtn")], ""))
    if "gptq" in a.methods.split(","):
        rows.append((f"GPTQ 4-bit, {a.gptq_windows} calibration windows",
                     whittle_cmd(a.binary, a.fp32, out("w_gptq"), "quantize-weights{bits=4,block=128,symmetric=true,method=gptq,"
                                                                     "act-order=false,embeddings=false,format=matmulnbits}", a.gptq_windows),
                     [py, "-c", ORT_GPTQ, a.fp32, out("o_gptq"), CALIB, str(a.gptq_windows)] if gptq_ort else None,
                     "" if gptq_ort else "not run: its GPTQ imports torch, which this environment lacks"))
    if "gptq-default" in a.methods.split(","):
        rows.append((f"GPTQ 4-bit, whittle's default (act-order, `embedding-bits=8`, QDQ), {a.gptq_windows} calibration windows",
                     whittle_cmd(a.binary, a.fp32, out("w_gptqd"), "quantize-weights{bits=4,block=128,method=gptq,embedding-bits=8}",
                                 a.gptq_windows), None, "see the GPTQ row"))
    if "dynamic" in a.methods:
        rows.append(("dynamic int8 (W8A8)", whittle_cmd(a.binary, a.fp32, out("w_dyn"), "quantize-dynamic"),
                     [py, "-c", ORT_DYNAMIC, a.fp32, out("o_dyn")], ""))
    if "keep-sensitive" in a.methods:
        rows.append(("`quantize-dynamic{keep-sensitive=10}`, 4 calibration windows",
                     whittle_cmd(a.binary, a.fp32, out("w_ks"), "quantize-dynamic{keep-sensitive=10}", 4), None,
                     "no counterpart"))
    order = [m.strip() for m in a.methods.split(",")]
    keys = {"RTN": "rtn", "GPTQ 4-bit, whittle's default": "gptq-default", "GPTQ": "gptq", "dynamic": "dynamic",
            "`quantize-dynamic{keep": "keep-sensitive"}
    key = lambda row: next(order.index(v) for k, v in keys.items() if row[0].startswith(k))  # noqa: E731
    return sorted(rows, key=key)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    ap.add_argument("--fp32", default=next((p for p in FP32_CANDIDATES if os.path.exists(p)), FP32_CANDIDATES[-1]))
    ap.add_argument("--methods", default="rtn,gptq,dynamic,keep-sensitive",
                    help="comma-separated: rtn, gptq, gptq-default, dynamic, keep-sensitive (gptq's ORT side needs torch: "
                         "a benchmark-only venv, see above)")
    ap.add_argument("--gptq-windows", type=int, default=8)
    ap.add_argument("--baseline-binary", help="an earlier build of whittle, timed on keep-sensitive and gptq in the same run")
    ap.add_argument("--perplexity-windows", type=int, default=0,
                    help="also the perplexity of each model written, on the first N windows of eval_512.npz (0: not measured)")
    ap.add_argument("--ort-timeout", type=float, default=0,
                    help="stop an ONNX Runtime job after this many seconds and report its time as a lower bound (0: none)")
    ap.add_argument("--label", default="", help="appended to the section's title and its RESULTS.md marker, e.g. 'session 13'")
    ap.add_argument("--update-results", action="store_true")
    a = ap.parse_args()
    import onnxruntime as ort

    ppl = (lambda model: perplexity(model, a.perplexity_windows)) if a.perplexity_windows > 0 else None
    lines = []
    loads = [os.getloadavg()[0]]
    fp32_ppl = ppl(a.fp32) if ppl else None
    with tempfile.TemporaryDirectory() as tmp:
        for method, wcmd, ocmd, why in jobs(a, tmp):
            w = timed(wcmd)
            print(method, "whittle", w, flush=True)
            o = timed(ocmd, a.ort_timeout or None) if ocmd else None
            print(method, "ORT", o, flush=True)
            b = None
            if a.baseline_binary and ("keep-sensitive" in method or (method.startswith("GPTQ") and "default" not in method)):
                b = timed([a.baseline_binary] + wcmd[1:])
            loads.append(os.getloadavg()[0])
            print(method, "baseline", b, "load", loads[-1], flush=True)
            fmt = lambda t: (f"{t[0]:.1f} s / {t[1]:.1f} s" if t[2] else f"> {t[0]:.0f} s / > {t[1]:.0f} s (stopped)") if t else "—"  # noqa: E731
            ratio = (f"{w[1] / o[1]:.2f}" if o[2] else f"< {w[1] / o[1]:.2f}") if o else "—"
            line = f"| {method} | {fmt(w)} | {fmt(o) if o else why} | {ratio} |" + (f" {fmt(b)} |" if a.baseline_binary else "")
            if ppl:
                pw = ppl(wcmd[wcmd.index("-o") + 1]) if not method.startswith("dynamic") and "keep-sensitive" not in method else None
                po = ppl(ocmd[4]) if o and o[2] and not method.startswith("dynamic") else None
                rel = lambda p: f"{p:.2f} ({100 * (p / fp32_ppl - 1):+.1f} %)" if p else "—"  # noqa: E731
                print(method, "perplexity whittle", pw, "ORT", po, flush=True)
                line += f" {rel(pw)} | {rel(po)} |"
            lines.append(line)
    passes = " ".join(a.methods.split(","))
    text = "\n".join([
        f"## Quantization time on SmolLM2-135M: whittle vs ONNX Runtime's quantizers{f' ({a.label})' if a.label else ''}",
        "",
        f"Command: `{'BENCHVENV/bin/python' if 'gptq' in a.methods.split(',') else 'PYTHONPATH=DIR_WITH_ONNX_IR .venv/bin/python'} "
        f"benchmarks/bench_quant_time.py --methods {a.methods} "
        f"--gptq-windows {a.gptq_windows}{' --baseline-binary B0' if a.baseline_binary else ''}"
        f"{f' --perplexity-windows {a.perplexity_windows}' if a.perplexity_windows else ''}"
        f"{f' --ort-timeout {a.ort_timeout:g}' if a.ort_timeout else ''} --update-results`  ",
        f"Machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}, shared with other jobs; ONNX Runtime {ort.__version__}; "
        f"{datetime.date.today().isoformat()}. One process per job (load the fp32 model, quantize, save); "
        "wall / CPU time (user + system, all threads). Methods: benchmarks/bench_quant_time.py's docstring "
        f"({passes}).",
        "",
        f"Load average (1 min) before and after each job: {', '.join(f'{x:.1f}' for x in loads)}."
        + (f" Perplexity: benchmarks/perplexity.py, first {a.perplexity_windows} windows of eval_512.npz, "
           f"fp32 {fp32_ppl:.2f}." if ppl else ""),
        "",
        "| method | whittle wall / CPU | ONNX Runtime wall / CPU | whittle / ORT, CPU |"
        + (" whittle before (B0) wall / CPU |" if a.baseline_binary else "")
        + (" perplexity, whittle | perplexity, ONNX Runtime |" if ppl else ""),
        "| --- | --- | --- | --- |" + (" --- |" if a.baseline_binary else "") + (" --- | --- |" if ppl else ""),
    ] + lines)
    print(text)
    if a.update_results:
        update_results("quant-time" + (f" {a.label}" if a.label else ""), text)


if __name__ == "__main__":
    main()
