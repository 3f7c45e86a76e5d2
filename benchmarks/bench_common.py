"""What the benchmark scripts share: benchmarks/RESULTS.md is made of sections, each owned by
one script and delimited by `<!-- BEGIN name -->` / `<!-- END name -->`; a script replaces only
its own section (appending it when missing) and never touches the others."""
import os
import statistics
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def update_results(section, text, path=RESULTS):
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    content = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in content and end in content:
        start, stop = content.index(begin), content.index(end) + len(end)
        content = content[:start] + block + content[stop:]
    else:
        content = content.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.replace(tmp, path)


def cpu_model():
    """The CPU's model name, for the machine line of every section."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


# Which clock a timing reads (`--clock` of the scripts that time runtimes). "wall": elapsed time,
# what a user waits for. "cpu": CPU time of the process (every thread), which at one thread
# leaves out the time a run waited for a core: on a machine shared with builds it compares two
# runtimes more fairly (caches and memory bandwidth stay shared). whittle reports both
# (`whittle bench --json`: `latencyMs`, `cpuMs`); ONNX Runtime is timed in this process.
CLOCKS = ("wall", "cpu")


def whittle_p50(bench_json, clock="wall"):
    """The p50 milliseconds of a parsed `whittle bench --json` output on `clock`."""
    return bench_json["cpuMs" if clock == "cpu" else "latencyMs"]["p50"]


def ort_median_ms(session, feeds, iterations, warmup=3, clock="wall"):
    """Median milliseconds of `iterations` ONNX Runtime runs on `clock`, after `warmup` untimed ones."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(iterations):
        start = now()
        session.run(None, feeds)
        times.append((now() - start) * 1000.0)
    return statistics.median(times)


def ort_quantize_static(model, out, samples, quant_format="QDQ", **options):
    """ONNX Runtime's quantize_static of `model` into `out` (QDQ or "QOperator", per-channel, MinMax)
    on `samples`, an iterable of feed dicts; `options` go to quantize_static as they are
    (op_types_to_quantize, extra_options, ...). Per-channel QDQ needs DequantizeLinear's axis (opset
    13): quantize_static does not upgrade by itself and writes a model ORT refuses, so a model
    below opset 13 is converted first (ORT's quantization guide asks for it), to out + ".opset13.onnx"."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_static

    m = onnx.load(model)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        m = version_converter.convert_version(m, 13)
        m.ir_version = max(m.ir_version, 7)  # the converter keeps IR 3, which ORT reads as pre-opset-13
        model = out + ".opset13.onnx"
        onnx.save(m, model)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    quantize_static(model, out, Reader(), quant_format=getattr(QuantFormat, quant_format), per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax, **options)
