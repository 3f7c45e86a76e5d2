#!/usr/bin/env python3
"""Where an image classifier's int8 error comes from: one thing quantized at a time.

Simulates whittle's int8 scheme in ONNX Runtime with float math (graph optimizations off, so
QuantizeLinear/DequantizeLinear run as written): weights symmetric int8 per output channel,
activations uint8 with a minmax range over the calibration images at every Conv output (after its
Clip where one follows: the Clip's range is the tensor's), residual Add, pooled features and the
logits. Variants keep a set of tensors float, per-channel (one scale per channel of axis 1) or
16-bit, and report the class-output SQNR, top-1 agreement with fp32 and the top-1 drop on every
--every-th evaluation image. Session 16 (benchmarks/RESULTS.md) ran it on MobileNetV2:

  .venv/bin/python benchmarks/int8_error_sources.py ../shared/models/mobilenetv2-12-rebuilt-fp32.onnx \\
      --calib calib --eval eval --every 3

(calib/ and eval/: folders of images with a labels.tsv, as in RESULTS.md's accuracy-aware section).
--ort adds ONNX Runtime's quantize_static (QDQ, per channel, MinMax) on the same split.

--repairs (session 17) prints instead the range methods (minmax, --percentile) and bias correction
(each Conv's mean output shift from its own quantization, from fp32 activations) on per-tensor,
per-channel and one-zero-point-per-channel activations; --fold-only the per-channel rows with the
input scales folded into the 8-bit weights, as whittle's lowering runs them (exact only for
depthwise Convs), also with the channel ranges widened to at least 1/4 or 1/16 of the widest;
--groups-only channels bucketed into --sets sets by range, one scale each; --emit DIR writes the
variants as standard QDQ models (opset 13, QuantizeLinear/DequantizeLinear axis=1 for per channel)
for `whittle compare` and `whittle bench`.
"""
import argparse
import copy
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper
from onnx import numpy_helper as nh
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load_images(folder):
    """Images of `folder`'s labels.tsv: shorter side to 256 (bilinear), centre 224 crop, RGB, ImageNet mean/std."""
    rows = [line.split("\t") for line in open(os.path.join(folder, "labels.tsv")).read().splitlines() if line.strip()]
    xs, ys = [], []
    for name, label in rows:
        im = Image.open(os.path.join(folder, name)).convert("RGB")
        w, h = im.size
        s = 256 / min(w, h)
        im = im.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - 224) // 2, (h - 224) // 2
        a = (np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) / 255 - MEAN) / STD
        xs.append(a.transpose(2, 0, 1))
        ys.append(int(label))
    return np.stack(xs), np.array(ys)


def session(model):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class Simulator:
    def __init__(self, path, calib):
        self.base = onnx.load(path)
        g = self.base.graph
        self.input = g.input[0].name
        self.init = {i.name: i for i in g.initializer}
        prod = {o: n for n in g.node for o in n.output}
        uses = {}
        for n in g.node:
            for i in n.input:
                uses.setdefault(i, []).append(n)
        self.convs = [n for n in g.node if n.op_type == "Conv"]
        kinds = {self.input: "input"}
        for i, n in enumerate(self.convs):
            out, readers = n.output[0], uses.get(n.output[0], [])
            if len(readers) == 1 and readers[0].op_type in ("Clip", "Relu"):
                kind = "stem" if i == 0 else "dw" if attr(n, "group", 1) > 1 else "expand"
                kinds[readers[0].output[0]] = kind
            else:
                kinds[out] = "proj"
        for n in g.node:
            if n.op_type == "Add" and n.input[0] not in self.init and n.input[1] not in self.init:
                kinds[n.output[0]] = "add"
            if n.op_type in ("GlobalAveragePool", "AveragePool"):
                kinds[n.output[0]] = "pool"
        logits = prod[g.output[0].name]
        while logits.op_type == "Identity":
            logits = prod[logits.input[0]]
        kinds[logits.output[0]] = "logits"
        self.output = g.output[0].name
        self.logits = logits.output[0]
        self.kinds = kinds
        self.sites = [self.input] + [t for n in g.node for t in n.output if t in kinds]
        self.weights = {n.input[1]: (i, 0) for i, n in enumerate(self.convs)}
        for n in g.node:
            if n.op_type in ("MatMul", "Gemm") and n.input[1] in self.init:
                self.weights[n.input[1]] = ("gemm", 1 if n.op_type == "MatMul" or not attr(n, "transB", 0) else 0)
        self.names = {t: self._node_name(prod, t) for t in self.sites}
        self._observe(calib)

    def _node_name(self, prod, t):
        if t == self.input:
            return "input"
        n = prod[t]
        if n.op_type in ("Clip", "Relu"):
            n = prod[n.input[0]]
        return n.name or t

    def _site_session(self):
        """A session of the fp32 model with every site an output, and its output names."""
        m = copy.deepcopy(self.base)
        for t in self.sites:
            if t not in (self.input, self.output):
                m.graph.output.append(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
        return session(m), [o.name for o in m.graph.output]

    def _observe(self, calib):
        """Per-channel (axis 1) minimum and maximum of every site over the calibration images."""
        s, outs = self._site_session()
        self.lo, self.hi = {}, {}
        for i in range(0, len(calib), 10):
            got = dict(zip(outs, s.run(outs, {self.input: calib[i:i + 10]})))
            got[self.input] = calib[i:i + 10]
            got.setdefault(self.logits, got[self.output])
            for t in self.sites:
                a = got[t]
                axes = tuple(j for j in range(a.ndim) if j != 1)
                lo, hi = a.min(axis=axes), a.max(axis=axes)
                self.lo[t] = np.minimum(self.lo[t], lo) if t in self.lo else lo
                self.hi[t] = np.maximum(self.hi[t], hi) if t in self.hi else hi
        self.calib = calib
        self.pct = {}
        self.spread = 0  # 0: each channel its own range
        self.groups = 0  # 0: each channel its own range

    def percentile(self, p):
        """Per-channel and per-tensor ranges at percentile `p` of both tails, as whittle's `percentile`
        method: a histogram of HIST bins over [-R, R] (R the largest magnitude seen), lower edge of the bin
        where (1-p) of the values lie below, upper edge where p do; clamped to the minmax range."""
        if p in self.pct:
            return self.pct[p]
        bins = 2048
        s, outs = self._site_session()
        counts = {}
        rng = {t: float(max(np.abs(self.lo[t]).max(), np.abs(self.hi[t]).max(), 1e-12)) for t in self.sites}
        for i in range(0, len(self.calib), 10):
            got = dict(zip(outs, s.run(outs, {self.input: self.calib[i:i + 10]})))
            got[self.input] = self.calib[i:i + 10]
            got.setdefault(self.logits, got[self.output])
            for t in self.sites:
                a = got[t]
                c = a.shape[1] if a.ndim > 1 else 1
                a = np.moveaxis(a.reshape(a.shape[0], c, -1), 1, 0).reshape(c, -1)
                b = np.clip(((a + rng[t]) / (2 * rng[t]) * bins).astype(np.int64), 0, bins - 1)
                b += np.arange(c)[:, None] * bins
                h = np.bincount(b.ravel(), minlength=c * bins).reshape(c, bins)
                counts[t] = counts[t] + h if t in counts else h
        lo, hi = {}, {}
        w = 2 * np.array([rng[t] for t in self.sites]) / bins
        for k, t in enumerate(self.sites):
            def edges(h):
                cum = np.cumsum(h, axis=-1)
                total = cum[..., -1:]
                li = np.argmax(cum > (1 - p / 100) * total, axis=-1)
                hi_ = np.argmax(cum >= p / 100 * total, axis=-1)
                return -rng[t] + li * w[k], -rng[t] + (hi_ + 1) * w[k]
            l_c, h_c = edges(counts[t])
            l_t, h_t = edges(counts[t].sum(0))
            lo[t] = (np.clip(l_c, self.lo[t], self.hi[t]), float(np.clip(l_t, self.lo[t].min(), self.hi[t].max())))
            hi[t] = (np.clip(h_c, self.lo[t], self.hi[t]), float(np.clip(h_t, self.lo[t].min(), self.hi[t].max())))
        self.pct[p] = (lo, hi)
        return self.pct[p]

    def qparams(self, t, mode, ranges=None):
        """Scale, zero point and top level of site `t` quantized as `mode` (see build)."""
        per_channel = mode in ("pc", "pcz")
        if ranges is None:
            lo, hi = (self.lo[t], self.hi[t]) if per_channel else (self.lo[t].min(), self.hi[t].max())
        else:
            lo, hi = ranges[0][t][0 if per_channel else 1], ranges[1][t][0 if per_channel else 1]
        levels = 65535 if mode == "u16" else 255
        lo, hi = np.minimum(lo, 0), np.maximum(hi, 0)
        if per_channel and self.spread:
            # Channel ranges widened to at least 1/spread of the widest: the folded weights keep
            # more of their 8 bits (w xs[c] spans at most `spread` within a row).
            width = np.maximum(hi - lo, (hi - lo).max() / self.spread)
            grow = width - (hi - lo)
            share = np.where(hi - lo > 0, -lo / np.maximum(hi - lo, 1e-30), 0.0)
            lo, hi = lo - grow * share, hi + grow * (1 - share)
        if per_channel and self.groups:
            # Channels bucketed by range into `groups` sets of equal count, each set one scale and
            # zero point (a convolution split by input-channel set, each part a per-tensor int8 GEMM).
            order = np.argsort(hi - lo)
            for part in [p for p in np.array_split(order, self.groups) if len(p)]:
                lo[part], hi[part] = lo[part].min(), hi[part].max()
        if mode == "pcz" and np.any(lo < 0):
            # One zero point for the tensor (128): each channel's scale covers its larger side.
            scale = np.maximum(2 * np.maximum(-lo, hi) / levels, 1e-12).astype(np.float32)
            return scale, np.full_like(scale, 128.0), levels
        scale = np.maximum((hi - lo) / levels, 1e-12).astype(np.float32)
        return scale, np.clip(np.round(-lo / scale), 0, levels), levels

    def bias_shifts(self, acts, weights, ranges=None, fold=False):
        """Bias correction as whittle's (the per-layer variant): each Conv's mean output shift from its own
        quantization, computed from the fp32 model's activations over the calibration images,
        E[conv(fq(x), wq)] - E[conv(x, w)] = sum wq * E[fq(x)] - w * E[x] per output channel (padding
        ignored). Returns bias initializer -> shift to subtract."""
        wq = {ini.name: nh.to_array(ini) for ini in self.build(acts, weights, ranges=ranges, fold=fold).graph.initializer if ini.name in self.weights}
        convs = [n for n in self.convs if len(n.input) > 2 and n.input[1] in wq and n.input[0] in self.kinds]
        m = copy.deepcopy(self.base)
        for n in convs:
            if n.input[0] not in (self.input, self.output):
                m.graph.output.append(helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
        names = [o.name for o in m.graph.output]
        s = session(m)
        mean, mean_q = {}, {}
        for i in range(0, len(self.calib), 10):
            got = dict(zip(names, s.run(names, {self.input: self.calib[i:i + 10]})))
            got[self.input] = self.calib[i:i + 10]
            for n in convs:
                t = n.input[0]
                if t in mean and i in mean[t][1]:
                    continue
                a = got[t]
                q = a
                if acts.get(t):
                    sc, z, levels = self.qparams(t, acts[t], ranges)
                    shape = (1, -1, 1, 1) if np.size(sc) > 1 else ()
                    sc, z = np.reshape(sc, shape), np.reshape(z, shape)
                    q = (np.clip(np.round(a / sc) + z, 0, levels) - z) * sc
                k = len(self.calib) / 10
                mean[t] = (mean.get(t, (0, set()))[0] + a.mean(axis=(0, 2, 3)) / k, mean.get(t, (0, set()))[1] | {i})
                mean_q[t] = mean_q.get(t, 0) + q.mean(axis=(0, 2, 3)) / k
        shifts = {}
        for n in convs:
            w, w_q = nh.to_array(self.init[n.input[1]]), wq[n.input[1]]
            x, x_q = mean[n.input[0]][0], mean_q[n.input[0]]
            g = attr(n, "group", 1)
            cin = w.shape[1]
            xs, xqs = x.reshape(g, 1, cin), x_q.reshape(g, 1, cin)
            o = w.shape[0] // g
            wr, wqr = w.reshape(g, o, cin, -1).sum(-1), w_q.reshape(g, o, cin, -1).sum(-1)
            shifts[n.input[2]] = ((wqr * xqs).sum(-1) - (wr * xs).sum(-1)).reshape(-1)
        return shifts

    def build(self, acts, weights, ranges=None, bias=None, fold=False):
        """acts: site -> 'pt' (uint8 per tensor), 'pc' (per channel), 'pcz' (per-channel scale, one zero
        point per tensor: 0 where the range starts at 0, else 128 with a symmetric range), 'u16' (16-bit per
        tensor); absent: float. weights: conv index or 'gemm' -> True to quantize (int8 per output channel).
        ranges: (lo, hi) from `percentile` instead of minmax; bias: bias initializer -> shift to subtract.
        fold: a regular Conv whose input is per channel gets the weights whittle's lowering runs, the input
        scales folded in and requantized per output channel: w' = q(w * s_x[c]) / s_x[c] (exact for depthwise)."""
        conv_of = {n.input[1]: n for n in self.convs}
        m = copy.deepcopy(self.base)
        g = m.graph
        for ini in g.initializer:
            if bias and ini.name in bias:
                b = nh.to_array(ini)
                ini.CopyFrom(nh.from_array((b - bias[ini.name]).astype(np.float32), ini.name))
        for ini in g.initializer:
            if ini.name in self.weights and weights.get(self.weights[ini.name][0]):
                w = nh.to_array(ini)
                axis = self.weights[ini.name][1]
                sx = np.ones((1,) * w.ndim, np.float32)
                n = conv_of.get(ini.name)
                if fold and n is not None and acts.get(n.input[0]) in ("pc", "pcz") and attr(n, "group", 1) == 1:
                    sx = np.reshape(self.qparams(n.input[0], acts[n.input[0]], ranges)[0], (1, -1) + (1,) * (w.ndim - 2))
                w = w * sx
                red = tuple(j for j in range(w.ndim) if j != axis)
                scale = np.maximum(np.abs(w).max(axis=red, keepdims=True) / 127, 1e-12)
                w = np.clip(np.round(w / scale), -127, 127) * scale / sx
                ini.CopyFrom(nh.from_array(w.astype(np.float32), ini.name))
        const = []

        def tensor(name, value, shape):
            arr = np.asarray(value, np.float32)
            const.append(nh.from_array(arr.reshape(shape) if arr.size > 1 else arr.reshape(1), name))
            return name

        def fake_quant(t):
            mode = acts.get(t)
            if mode is None:
                return [], None
            scale, zero, levels = self.qparams(t, mode, ranges)
            if mode == "pt":
                const.append(nh.from_array(np.asarray(scale, np.float32), t + "_s"))
                const.append(nh.from_array(np.asarray(zero).astype(np.uint8), t + "_z"))
                return [helper.make_node("QuantizeLinear", [t, t + "_s", t + "_z"], [t + "_q"]),
                        helper.make_node("DequantizeLinear", [t + "_q", t + "_s", t + "_z"], [t + "_fq"])], t + "_fq"
            # Per channel or 16-bit: the same arithmetic in float ops (opset 12 has neither).
            shape = (1, -1, 1, 1) if np.size(scale) > 1 else (1,)
            s, z = tensor(t + "_s", scale, shape), tensor(t + "_z", zero, shape)
            lo_q, hi_q = tensor(t + "_l", 0.0, (1,)), tensor(t + "_h", float(levels), (1,))
            steps = [("Div", [t, s]), ("Round", None), ("Add", [None, z]), ("Max", [None, lo_q]), ("Min", [None, hi_q]),
                     ("Sub", [None, z]), ("Mul", [None, s])]
            nodes, prev = [], t
            for k, (op, ins) in enumerate(steps):
                ins = [prev] if ins is None else [prev if i is None else i for i in ins]
                prev = f"{t}_fq{k}"
                nodes.append(helper.make_node(op, ins, [prev]))
            return nodes, prev

        renamed, nodes = {}, []
        pre, r = fake_quant(self.input)
        if r:
            renamed[self.input] = r
        nodes += pre
        for n in list(g.node):
            for j, i in enumerate(n.input):
                if i in renamed:
                    n.input[j] = renamed[i]
            nodes.append(n)
            for t in n.output:
                if t in self.kinds and t != self.input:
                    q, r = fake_quant(t)
                    if r:
                        nodes += q
                        renamed[t] = r
        del g.node[:]
        g.node.extend(nodes)
        g.initializer.extend(const)
        for o in g.output:
            if o.name in renamed:
                g.node.append(helper.make_node("Identity", [renamed[o.name]], [o.name + "_int8"]))
                o.name += "_int8"
        return m


def emit_qdq(sim, acts, ranges=None, bias=None):
    """The variant as a standard QDQ model (opset 13): activations QuantizeLinear/DequantizeLinear
    uint8, per tensor or per channel (axis=1, a scale and zero point per channel), Conv weights int8
    per output channel behind a DequantizeLinear, biases float (bias correction applied), the rest
    as in the model: what whittle's runtime lowers to its int8 kernels (a Conv folds per-channel
    scales into its weights) and runs the remaining QDQ in float."""
    from onnx import version_converter
    m = version_converter.convert_version(copy.deepcopy(sim.base), 13)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    for name, shift in (bias or {}).items():
        inits[name].CopyFrom(nh.from_array((nh.to_array(inits[name]) - shift).astype(np.float32), name))
    nodes, const, renamed = [], [], {}
    for n in sim.convs:
        w = nh.to_array(inits[n.input[1]])
        scale = np.maximum(np.abs(w).max(axis=(1, 2, 3)) / 127, 1e-12).astype(np.float32)
        q = np.clip(np.round(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
        base = n.input[1]
        const += [nh.from_array(q, base + "_q"), nh.from_array(scale, base + "_ws"),
                  nh.from_array(np.zeros(len(scale), np.int8), base + "_wz")]
        nodes.append(helper.make_node("DequantizeLinear", [base + "_q", base + "_ws", base + "_wz"], [base + "_dq"], axis=0))
        renamed[base] = base + "_dq"

    def pair(t):
        mode = acts.get(t)
        if mode is None:
            return []
        sc, z, _ = sim.qparams(t, mode, ranges)
        # One float32 step down: 255 * scale may round above a Clip's bound (6), and then the
        # Q's saturation is not the Clip's and the Conv group stays float.
        sc = np.nextafter(np.asarray(sc, np.float32), np.float32(0))
        per_channel = np.size(sc) > 1
        const.append(nh.from_array(np.asarray(sc, np.float32).reshape(-1 if per_channel else ()), t + "_s"))
        const.append(nh.from_array(np.asarray(z).astype(np.uint8).reshape(-1 if per_channel else ()), t + "_z"))
        extra = {"axis": 1} if per_channel else {}
        renamed[t] = t + "_dq"
        return [helper.make_node("QuantizeLinear", [t, t + "_s", t + "_z"], [t + "_q"], **extra),
                helper.make_node("DequantizeLinear", [t + "_q", t + "_s", t + "_z"], [t + "_dq"], **extra)]

    nodes += pair(sim.input)
    for n in list(g.node):
        for j, i in enumerate(n.input):
            if i in renamed:
                n.input[j] = renamed[i]
        nodes.append(n)
        for t in n.output:
            if t in sim.kinds and t != sim.input and t != sim.output:
                nodes += pair(t)
    for i in [i for i in g.initializer if i.name in renamed and i.name != sim.input]:
        g.initializer.remove(i)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(const)
    onnx.checker.check_model(m)
    return m


def logits(model, x, name):
    s = session(model)
    return np.concatenate([s.run(None, {name: x[i:i + 25]})[0] for i in range(0, len(x), 25)]).reshape(len(x), -1)


def scores(ref, got, labels):
    sqnr = 10 * np.log10((ref ** 2).sum() / max(((ref - got) ** 2).sum(), 1e-30))
    agree = (ref.argmax(1) == got.argmax(1)).mean() * 100
    drop = ((ref.argmax(1) == labels).mean() - (got.argmax(1) == labels).mean()) * 100
    return sqnr, agree, drop


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--calib", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--every", type=int, default=3, help="evaluate on every N-th evaluation image")
    ap.add_argument("--per-tensor", action="store_true", help="also each activation tensor quantized alone")
    ap.add_argument("--ort", action="store_true", help="also ONNX Runtime's quantize_static on the same split")
    ap.add_argument("--repairs", action="store_true",
                    help="only the range/bias/per-channel combinations (percentile at --percentile, bias correction)")
    ap.add_argument("--percentile", type=float, default=99.99)
    ap.add_argument("--emit", metavar="DIR", help="with --repairs: write the variants below as QDQ models to DIR "
                    "(pt.onnx: per tensor; pc.onnx: per channel; exact.onnx: per channel on the stem and expansion "
                    "outputs; pc4.onnx: per channel, ranges at least 1/4 of the widest; each with bias correction) "
                    "and stop")
    ap.add_argument("--sets", type=int, nargs="+", default=[2, 4], help="with --groups-only: the numbers of sets")
    ap.add_argument("--emit-only", help="with --emit: only these (comma-separated)")
    ap.add_argument("--groups-only", action="store_true", help="with --repairs: only the rows with channels "
                    "bucketed into 2 and 4 sets by range, each set one scale (not folded)")
    ap.add_argument("--fold-only", action="store_true", help="with --repairs: only the per-channel rows with the "
                    "input scales folded into the weights (what whittle's int8 convolutions run)")
    args = ap.parse_args()
    calib, _ = load_images(args.calib)
    xe, ye = load_images(args.eval)
    xe, ye = xe[::args.every], ye[::args.every]
    sim = Simulator(args.model, calib)
    ref = logits(sim.base, xe, sim.input)
    all_w = {i: True for i in range(len(sim.convs))} | {"gemm": True}
    all_a = {t: "pt" for t in sim.sites}
    kinds = sorted(set(sim.kinds.values()))
    print(f"{len(calib)} calibration images, {len(xe)} evaluation images; fp32 top-1 "
          f"{(ref.argmax(1) == ye).mean() * 100:.2f} %; sites: " +
          ", ".join(f"{k} {sum(v == k for v in sim.kinds.values())}" for k in kinds))
    print("| quantized | class SQNR dB | agreement % | top-1 drop pp |\n| --- | --- | --- | --- |")

    def row(name, acts, weights):
        s, a, d = scores(ref, logits(sim.build(acts, weights), xe, sim.input), ye)
        print(f"| {name} | {s:.1f} | {a:.2f} | {d:.2f} |", flush=True)

    def kind_set(mode, only=None, but=None):
        return {t: mode for t in sim.sites if (only is None or sim.kinds[t] in only) and (but is None or sim.kinds[t] not in but)}

    if args.repairs:
        pc = all_a | kind_set("pc", but={"pool", "logits"})
        pcz = all_a | kind_set("pcz", but={"pool", "logits"})
        pct = sim.percentile(args.percentile)

        def repaired(name, acts, ranges, fold=False, bias_only=False):
            if not bias_only:
                s, a, d = scores(ref, logits(sim.build(acts, all_w, ranges=ranges, fold=fold), xe, sim.input), ye)
                print(f"| {name} | {s:.1f} | {a:.2f} | {d:.2f} |", flush=True)
            shifts = sim.bias_shifts(acts, all_w, ranges, fold=fold)
            s, a, d = scores(ref, logits(sim.build(acts, all_w, ranges=ranges, bias=shifts, fold=fold), xe, sim.input), ye)
            print(f"| {name} + bias correction | {s:.1f} | {a:.2f} | {d:.2f} |", flush=True)

        p = f"percentile {args.percentile:g}"
        if args.emit:
            os.makedirs(args.emit, exist_ok=True)
            exact = all_a | kind_set("pc", only={"stem", "expand"})
            # The image input stays per tensor: its channels' zero points differ, and a padded Conv
            # (the stem) takes one zero point, so whittle would run the stem in float.
            pc_in = pc | {sim.input: "pt"}
            for name, acts in [v for v in (("pt", all_a), ("pc", pc_in), ("exact", exact), ("pc4", pc_in))
                               if not args.emit_only or v[0] in args.emit_only.split(",")]:
                sim.spread = 4 if name == "pc4" else 0
                # Bias correction for the weights whittle runs: the per-channel input scales folded in.
                m = emit_qdq(sim, acts, bias=sim.bias_shifts(acts, all_w, fold=True))
                s_, a_, d_ = scores(ref, logits(m, xe, sim.input), ye)
                print(f"| {name}.onnx + bias correction, in ONNX Runtime | {s_:.1f} | {a_:.2f} | {d_:.2f} |", flush=True)
                onnx.save(m, os.path.join(args.emit, name + ".onnx"))
            return 0
        if args.groups_only:
            for k in args.sets:
                sim.groups = k
                repaired(f"per channel set: {k} sets of channels by range, each one scale, minmax", pc, None)
            return 0
        if args.fold_only:
            exact = all_a | kind_set("pc", only={"stem", "expand"})
            repaired("per channel where the fold is exact (stem and expansion outputs, read by depthwise), minmax",
                     exact, None, fold=True)
            for k in (4, 16):
                sim.spread = k
                repaired(f"per channel, channel ranges at least 1/{k} of the widest, minmax, folded", pc, None, fold=True)
            sim.spread = 0
            repaired(f"per-channel scale, one zero point per tensor, {p}, folded", pcz, pct, fold=True)
            repaired("per-channel scale, one zero point per tensor, minmax, folded", pcz, None, fold=True)
            repaired(f"per channel, {p}, folded", pc, pct, fold=True)
            return 0
        repaired("per tensor, minmax", all_a, None)
        repaired(f"per tensor, {p}", all_a, pct)
        repaired("per channel, minmax", pc, None)
        repaired(f"per channel, {p}", pc, pct)
        repaired("per-channel scale, one zero point per tensor, minmax", pcz, None)
        repaired(f"per-channel scale, one zero point per tensor, {p}", pcz, pct)
        return 0
    row("everything (weights per channel, activations per tensor)", all_a, all_w)
    row("weights only", {}, all_w)
    row("activations only", all_a, {})
    for k in kinds:
        row(f"only the {k} activations", kind_set("pt", only={k}), {})
    for k in kinds:
        row(f"everything but the {k} activations", kind_set("pt", but={k}), all_w)
    row("everything, add + proj activations per channel", all_a | kind_set("pc", only={"add", "proj"}), all_w)
    row("everything, activations per channel (pool, logits per tensor)",
        all_a | kind_set("pc", but={"pool", "logits"}), all_w)
    row("everything, add activations 16-bit", all_a | kind_set("u16", only={"add"}), all_w)
    row("everything, add + proj activations 16-bit", all_a | kind_set("u16", only={"add", "proj"}), all_w)
    if args.per_tensor:
        print("\n| activation alone | kind | node | class SQNR dB | agreement % |\n| --- | --- | --- | --- | --- |")
        alone = []
        for t in sim.sites:
            s, a, _ = scores(ref, logits(sim.build({t: "pt"}, {}), xe, sim.input), ye)
            alone.append((s, a, t))
        for s, a, t in sorted(alone):
            print(f"| {t} | {sim.kinds[t]} | {sim.names[t]} | {s:.1f} | {a:.2f} |", flush=True)
    if args.ort:
        from onnx import version_converter
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.i = 0

            def get_next(self):
                if self.i >= len(calib):
                    return None
                self.i += 10
                return {sim.input: calib[self.i - 10:self.i]}

        tmp = tempfile.mkdtemp(prefix="int8_sources")
        onnx.save(version_converter.convert_version(onnx.load(args.model), 13), f"{tmp}/m13.onnx")
        quantize_static(f"{tmp}/m13.onnx", f"{tmp}/ort_qdq.onnx", Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        s = ort.InferenceSession(f"{tmp}/ort_qdq.onnx", so, providers=["CPUExecutionProvider"])
        got = np.concatenate([s.run(None, {sim.input: xe[i:i + 25]})[0] for i in range(0, len(xe), 25)]).reshape(len(xe), -1)
        sq, a, d = scores(ref, got, ye)
        print(f"\nONNX Runtime quantize_static (QDQ, per channel, MinMax; its int8 kernels): SQNR {sq:.1f} dB, "
              f"agreement {a:.2f} %, top-1 drop {d:.2f} pp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
