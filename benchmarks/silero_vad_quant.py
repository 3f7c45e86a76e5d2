#!/usr/bin/env python3
"""Silero VAD v6 quantized to int8 by whittle (inside its If branches) and by ONNX Runtime,
run as the silero-vad package runs it: one 512-sample window at a time with 64 samples of the
previous window before it (576 in all), the state carried from one window to the next, 16 kHz.

The repository and ../shared hold no speech recording, so the audio is synthetic and
speech-like: voiced syllables (a glottal pulse train at a gliding pitch of 90-220 Hz through
three formant resonators of a random vowel, with a syllable envelope) in phrases, separated by
pauses of low noise, with a little background noise throughout. Calibration audio and test
audio are drawn with different seeds.

For each model: the speech probability of every window against the float32 model's (ONNX
Runtime, 1 thread): the largest and mean absolute difference, and the share of windows whose
speech/non-speech decision at 0.5 agrees; and the time per window (ONNX Runtime, 1 thread, all
optimizations on; interleaved rounds, medians).

    .venv/bin/python benchmarks/silero_vad_quant.py [--binary build/whittle]
        [--model .cache/corpus/silero-vad-v6.onnx] [--seconds 30] [--work /tmp/silero-quant]
        [--whittle-args "--exclude-nodes .*stft/Conv"]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

SR = 16000
WINDOW, CONTEXT = 512, 64


def speech_like(seconds, seed):
    """Synthetic speech-like audio in [-1, 1] (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = rng.normal(0, 0.003, n)
    t = 0
    vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]
    while t < n:
        t += int(rng.uniform(0.3, 1.2) * SR)  # a pause
        phrase_end = min(n, t + int(rng.uniform(0.8, 2.5) * SR))
        while t < phrase_end:
            length = int(rng.uniform(0.12, 0.3) * SR)
            length = min(length, n - t)
            if length <= 0:
                break
            f0 = np.linspace(rng.uniform(110, 220), rng.uniform(90, 180), length)
            phase = np.cumsum(2 * np.pi * f0 / SR)
            source = (np.sin(phase) > 0.95).astype(float) + rng.normal(0, 0.05, length)
            voiced = np.zeros(length)
            for formant, bandwidth in zip(vowels[rng.integers(len(vowels))], (80, 100, 120)):
                r = np.exp(-np.pi * bandwidth / SR)
                a1, a2 = -2 * r * np.cos(2 * np.pi * formant / SR), r * r
                y1 = y2 = 0.0
                res = np.empty(length)
                for i, s in enumerate(source):  # a two-pole resonator
                    y = s - a1 * y1 - a2 * y2
                    res[i] = y
                    y2, y1 = y1, y
                voiced += res / (np.abs(res).max() + 1e-9)
            envelope = np.sin(np.linspace(0, np.pi, length)) ** 0.7
            out[t:t + length] += 0.25 * envelope * voiced / 3
            t += length + int(rng.uniform(0.01, 0.08) * SR)
    return np.clip(out, -1, 1).astype(np.float32)


def windows(audio):
    """[N, 576]: each 512-sample window with the 64 samples before it (zeros first)."""
    count = len(audio) // WINDOW
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), audio[:count * WINDOW]])
    return np.stack([padded[k * WINDOW:k * WINDOW + CONTEXT + WINDOW] for k in range(count)])


def session(path, optimized=True):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def stream(sess, xs):
    """Speech probabilities of every window, and the states fed to each."""
    state = np.zeros((2, 1, 128), np.float32)
    probs, states = [], []
    for x in xs:
        states.append(state)
        out, state = sess.run(None, {"input": x[None], "state": state, "sr": np.array(SR, np.int64)})
        probs.append(float(out.reshape(-1)[0]))
    return np.array(probs), states


def ort_static(model, path, xs, states):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"input": x[None], "state": s, "sr": np.array(SR, np.int64)} for x, s in zip(xs, states)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(model, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def ort_dynamic(model, path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(model, path, weight_type=QuantType.QInt8)


def count_ops(path):
    import onnx
    model = onnx.load(path)
    counts = {}

    def walk(graph):
        for n in graph.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
    walk(model.graph)
    return counts


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default="build/whittle")
    p.add_argument("--model", default=".cache/corpus/silero-vad-v6.onnx")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--calib-seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--work", default="/tmp/silero-quant")
    p.add_argument("--whittle-args", default="", help="more options for whittle optimize, one string")
    args = p.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    calib_x = windows(speech_like(args.calib_seconds, seed=1))
    test_x = windows(speech_like(args.seconds, seed=2))
    fp32 = session(args.model, optimized=False)
    _, calib_states = stream(fp32, calib_x)
    ref, _ = stream(fp32, test_x)
    print(f"audio: {len(test_x)} test windows ({args.seconds:g} s), {len(calib_x)} calibration windows; "
          f"speech (p > 0.5) in {np.mean(ref > 0.5):.0%} of the test windows")

    np.save(os.path.join(args.work, "calib.npy"), calib_x)
    np.save(os.path.join(args.work, "zeros_2x1x128.npy"), np.zeros((2, 1, 128), np.float32))
    models = {"whittle int8": os.path.join(args.work, "whittle_int8.onnx")}
    cmd = [args.binary, "optimize", args.model, "-o", models["whittle int8"], "--quantize", "int8",
           "--calib", os.path.join(args.work, "calib.npy"), "--fixed-input", "sr=16000",
           "--fixed-input", "state=" + os.path.join(args.work, "zeros_2x1x128.npy"), "--carry-state", "stateN=state"] + args.whittle_args.split()
    print("$ " + " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True)
    print(done.stdout.strip()[-2000:], done.stderr.strip()[-2000:], sep="\n")
    if done.returncode != 0:
        return 1
    try:
        models["ORT quantize_static"] = os.path.join(args.work, "ort_static.onnx")
        ort_static(args.model, models["ORT quantize_static"], calib_x, calib_states)
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        print(f"ORT quantize_static: {type(e).__name__}: {e}")
        del models["ORT quantize_static"]
    try:
        models["ORT quantize_dynamic"] = os.path.join(args.work, "ort_dynamic.onnx")
        ort_dynamic(args.model, models["ORT quantize_dynamic"])
    except Exception as e:  # noqa: BLE001
        print(f"ORT quantize_dynamic: {type(e).__name__}: {e}")
        del models["ORT quantize_dynamic"]

    print("\n| model | quantized ops (all bodies) | max abs diff of p | mean abs diff | decisions agree |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, path in models.items():
        ops = count_ops(path)
        q = {k: v for k, v in ops.items() if k in ("QuantizeLinear", "DequantizeLinear", "ConvInteger",
                                                  "DynamicQuantizeLinear", "MatMulInteger", "QLinearConv")}
        try:
            probs, _ = stream(session(path), test_x)
        except Exception as e:  # noqa: BLE001
            print(f"| {label} | {q} | ORT cannot run it: {str(e).splitlines()[0][:120]} | | |")
            continue
        d = np.abs(probs - ref)
        print(f"| {label} | {q} | {d.max():.4f} | {d.mean():.4f} | {np.mean((probs > 0.5) == (ref > 0.5)):.1%} |")

    # Speed: ONNX Runtime, 1 thread, interleaved rounds over the same windows.
    sessions = {"float32": session(args.model)}
    for label, path in models.items():
        try:
            sessions[label] = session(path)
        except Exception:  # noqa: BLE001
            pass
    times = {label: [] for label in sessions}
    xs = test_x[:200]
    for _ in range(args.rounds):
        for label, s in sessions.items():
            start = time.perf_counter()
            stream(s, xs)
            times[label].append((time.perf_counter() - start) / len(xs) * 1e3)
    base = statistics.median(times["float32"])
    print(f"\nONNX Runtime, 1 thread, ms per window (median of {args.rounds} interleaved rounds of {len(xs)} windows):")
    for label, ts in times.items():
        m = statistics.median(ts)
        print(f"  {label}: {m:.3f} ms ({base / m:.2f}x float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
