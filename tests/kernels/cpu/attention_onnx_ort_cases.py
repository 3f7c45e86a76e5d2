#!/usr/bin/env python3
"""One-node models of the opset-23/24 Attention, RMSNormalization and RotaryEmbedding, with
their expected outputs.

usage: attention_onnx_ort_cases.py OUT_DIR

Writes OUT_DIR/NAME.onnx and OUT_DIR/NAME.npz for every case and prints the case names, one a
line. The npz holds each graph input under its name and the expected outputs as
expected_<output name>: ONNX Runtime's (CPU provider, 1 thread, graph optimizations off), which
are checked here against this file's float64 formulas of the ONNX spec; where ONNX Runtime
refuses a case the spec allows (its Attention rejects an attn_mask shorter than the keys or
broadcast over heads with a batch > 1) the float64 formulas give the expected outputs, and the
name ends in "_spec". The nodes are built with onnx.helper without the checker: onnx 1.16 does
not know opset 23. tests/kernels/cpu/attention_onnx_test.cpp runs the same models on whittle.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

RNG = np.random.default_rng(23)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- float64 formulas of the spec

def rms_norm(x, scale, axis=-1, epsilon=1e-5):
    x = x.astype(np.float64)
    axis = axis % x.ndim
    ms = np.mean(x * x, axis=tuple(range(axis, x.ndim)), keepdims=True)
    return x / np.sqrt(ms + epsilon) * scale.astype(np.float64)


def rotary(x, cos, sin, position_ids=None, interleaved=0, num_heads=0, rotary_embedding_dim=0):
    x = x.astype(np.float64)
    shape = x.shape
    if x.ndim == 4:
        x = x.transpose(0, 2, 1, 3)  # [B, S, N, H]
    else:
        x = x.reshape(shape[0], shape[1], num_heads, -1)
    r = rotary_embedding_dim or x.shape[3]
    if position_ids is not None:
        c, s = cos[position_ids], sin[position_ids]
    else:
        c, s = cos, sin
    c = c.astype(np.float64)[:, :, None, :]
    s = s.astype(np.float64)[:, :, None, :]
    y = x.copy()
    if interleaved:
        a, b = x[..., 0:r:2], x[..., 1:r:2]
        y[..., 0:r:2] = a * c - b * s
        y[..., 1:r:2] = a * s + b * c
    else:
        a, b = x[..., : r // 2], x[..., r // 2 : r]
        y[..., : r // 2] = a * c - b * s
        y[..., r // 2 : r] = a * s + b * c
    return y.reshape(shape) if len(shape) == 3 else y.transpose(0, 2, 1, 3)


def attention(q, k, v, mask=None, past_k=None, past_v=None, nonpad=None, scale=None, is_causal=0,
              q_num_heads=0, kv_num_heads=0, softcap=0.0, qk_matmul_output_mode=0):
    rank3 = q.ndim == 3
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    if rank3:
        b = q.shape[0]
        q = q.reshape(b, q.shape[1], q_num_heads, -1).transpose(0, 2, 1, 3)
        k = k.reshape(b, k.shape[1], kv_num_heads, -1).transpose(0, 2, 1, 3)
        v = v.reshape(b, v.shape[1], kv_num_heads, -1).transpose(0, 2, 1, 3)
    if past_k is not None:
        k = np.concatenate([past_k.astype(np.float64), k], axis=2)
        v = np.concatenate([past_v.astype(np.float64), v], axis=2)
    B, Hq, Sq, D = q.shape
    T = k.shape[2]
    P = 0 if past_k is None else past_k.shape[2]
    group = Hq // k.shape[1]
    kk, vv = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    qk = (q @ kk.transpose(0, 1, 3, 2)) * (scale if scale else 1 / np.sqrt(D))
    raw = qk.copy()
    if softcap > 0:
        qk = softcap * np.tanh(qk / softcap)
    capped = qk.copy()
    bias = np.zeros((B, Hq, Sq, T))
    if mask is not None:
        m = mask
        if m.dtype == np.bool_:
            m = np.where(m, 0.0, -np.inf)
        m = m.astype(np.float64)
        pad = T - m.shape[-1]
        m = np.concatenate([m, np.full(m.shape[:-1] + (pad,), -np.inf)], axis=-1) if pad else m
        bias = bias + m
    if is_causal:
        i = np.arange(Sq)[:, None]
        j = np.arange(T)[None, :]
        for b in range(B):
            off = P if (past_k is not None or nonpad is None) else nonpad[b] - Sq
            bias[b] += np.where(j <= i + off, 0.0, -np.inf)
    if nonpad is not None:
        for b in range(B):
            bias[b, :, :, nonpad[b]:] = -np.inf
    qk = qk + bias
    masked = qk.copy()
    mx = np.max(qk, axis=-1, keepdims=True)
    e = np.exp(qk - np.where(np.isinf(mx), 0, mx))
    s = np.sum(e, axis=-1, keepdims=True)
    p = np.where(s > 0, e / np.where(s > 0, s, 1), 0.0)
    y = p @ vv
    if rank3:
        y = y.transpose(0, 2, 1, 3).reshape(B, Sq, -1)
    qk_out = {0: raw, 1: capped, 2: masked, 3: p}[qk_matmul_output_mode]
    return [y, k, v, qk_out]


# ---------------------------------------------------------------- cases

class Cases:
    def __init__(self, out_dir):
        self.out_dir = out_dir

    def add(self, name, op, inputs, attrs, outputs, expected, opset=23):
        """inputs: (name, array) pairs, or None for an absent optional input; expected: the float64
        formulas' outputs, one per output name ("" for an absent output)."""
        names, infos, feeds = [], [], {}
        for item in inputs:
            if item is None:
                names.append("")
                continue
            n, value = item
            names.append(n)
            infos.append(helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape))
            feeds[n] = value
        while names and names[-1] == "":
            names.pop()
        node = helper.make_node(op, names, outputs, name="node", **attrs)
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o]
        graph = helper.make_graph([node], "case", infos, outs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 10
        want = [e for o, e in zip(outputs, expected) if o]
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.log_severity_level = 4
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            got = session.run(None, feeds)
        except Exception:  # noqa: BLE001 - ONNX Runtime refuses some cases the spec allows
            got = None
        if got is None:
            name += "_spec"
            got = [np.asarray(w, dtype=np.float32) for w in want]
        else:
            for o, g, w in zip([o for o in outputs if o], got, want):
                if g.shape != w.shape or not np.allclose(g, w, rtol=1e-4, atol=1e-5, equal_nan=True):
                    raise SystemExit(f"{name}: ONNX Runtime's {o} differs from the spec's formulas")
        arrays = dict(feeds)
        for o, g in zip([o for o in outputs if o], got):
            arrays["expected_" + o] = g
        onnx.save(model, os.path.join(self.out_dir, name + ".onnx"))
        np.savez(os.path.join(self.out_dir, name + ".npz"), **arrays)
        print(name)


def rms_cases(c):
    for name, shape, axis, sshape, eps in (("last", (2, 5, 16), -1, (16,), 1e-5),
                                           ("last_odd", (3, 37), -1, (37,), 1e-6),
                                           ("two_axes", (2, 4, 3, 8), -2, (3, 8), 1e-5),
                                           ("bcast_scale", (2, 4, 3, 8), 2, (1, 8), 1e-3),
                                           ("axis0", (4, 6), 0, (6,), 1e-5)):
        x, s = f32(*shape), f32(*sshape)
        c.add(f"RMSNormalization_{name}", "RMSNormalization", [("x", x), ("scale", s)],
              {"axis": axis, "epsilon": eps}, ["y"], [rms_norm(x, s, axis, eps)])


def rotary_cases(c):
    B, S, N, H = 2, 5, 3, 8
    for inter in (0, 1):
        for rot in (0, 4):
            r = rot or H
            cos, sin = f32(12, r // 2), f32(12, r // 2)
            ids = RNG.integers(0, 12, size=(B, S)).astype(np.int64)
            x4 = f32(B, N, S, H)
            attrs = {"interleaved": inter, "rotary_embedding_dim": rot}
            c.add(f"RotaryEmbedding_bnsh_i{inter}_r{rot}", "RotaryEmbedding",
                  [("x", x4), ("cos", cos), ("sin", sin), ("ids", ids)], attrs, ["y"],
                  [rotary(x4, cos, sin, ids, inter, 0, rot)])
            x3 = f32(B, S, N * H)
            c.add(f"RotaryEmbedding_bsd_i{inter}_r{rot}", "RotaryEmbedding",
                  [("x", x3), ("cos", cos), ("sin", sin), ("ids", ids)], dict(attrs, num_heads=N), ["y"],
                  [rotary(x3, cos, sin, ids, inter, N, rot)])
            cb, sb = f32(B, S, r // 2), f32(B, S, r // 2)
            c.add(f"RotaryEmbedding_noids_i{inter}_r{rot}", "RotaryEmbedding",
                  [("x", x4), ("cos", cb), ("sin", sb)], attrs, ["y"], [rotary(x4, cb, sb, None, inter, 0, rot)])


def attention_cases(c):
    def add(name, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None, outputs=("y",), opset=23, **attrs):
        inputs = [("q", q), ("k", k), ("v", v), None if mask is None else ("mask", mask),
                  None if past_k is None else ("past_k", past_k), None if past_v is None else ("past_v", past_v),
                  None if nonpad is None else ("nonpad", nonpad)]
        expected = attention(q, k, v, mask, past_k, past_v, nonpad, attrs.get("scale"), attrs.get("is_causal", 0),
                             attrs.get("q_num_heads", 0), attrs.get("kv_num_heads", 0), attrs.get("softcap", 0.0),
                             attrs.get("qk_matmul_output_mode", 0))
        c.add(f"Attention_{name}", "Attention", inputs, attrs, list(outputs), expected, opset)

    B, H, S, D = 2, 3, 7, 8
    q, k, v = f32(B, H, S, D), f32(B, H, S, D), f32(B, H, S, 5)
    add("mha", q, k, v)
    add("causal", q, k, v, is_causal=1)
    add("scale", q, k, v, scale=0.3)
    add("cross", q, f32(B, H, 11, D), f32(B, H, 11, 5))
    add("causal_cross", f32(B, H, 4, D), f32(B, H, 9, D), f32(B, H, 9, 5), is_causal=1)
    add("gqa", f32(B, 6, S, D), f32(B, 2, S, D), f32(B, 2, S, D), is_causal=1)
    add("mqa", f32(1, 4, S, D), f32(1, 1, S, D), f32(1, 1, S, D))
    add("rank3", f32(B, S, 4 * D), f32(B, 9, 2 * D), f32(B, 9, 2 * 6), q_num_heads=4, kv_num_heads=2)
    add("rank3_causal", f32(B, S, 2 * D), f32(B, S, 2 * D), f32(B, S, 2 * D), q_num_heads=2, kv_num_heads=2,
        is_causal=1)
    add("bool_mask_2d", q, k, v, mask=RNG.random((S, S)) > 0.3)
    add("float_mask_4d", q, k, v, mask=f32(B, H, S, S))
    add("float_mask_b11s", q, k, v, mask=f32(B, 1, 1, S))
    add("bool_mask_b11s", q, k, v, mask=RNG.random((B, 1, 1, S)) > 0.2)
    full = RNG.random((B, H, S, S)) > 0.3
    full[0, 1, 2, :] = False
    add("bool_mask_masked_row", q, k, v, mask=full)
    add("mask_short", q, k, v, mask=f32(S, 5))
    add("mask_and_causal", q, k, v, mask=f32(1, H, S, S), is_causal=1)
    pk, pv = f32(B, H, 4, D), f32(B, H, 4, 5)
    add("past", f32(B, H, 2, D), f32(B, H, 2, D), f32(B, H, 2, 5), past_k=pk, past_v=pv, is_causal=1,
        outputs=("y", "present_k", "present_v"))
    add("past_rank3", f32(B, 1, 3 * D), f32(B, 1, 3 * D), f32(B, 1, 3 * 5), past_k=pk, past_v=pv, q_num_heads=3,
        kv_num_heads=3, outputs=("y", "present_k", "present_v"))
    add("present_no_past", q, k, v, outputs=("y", "present_k", "present_v"))
    add("softcap", q, k, v, softcap=2.0)
    add("softcap_causal", q, k, v, softcap=2.0, is_causal=1)
    for mode in range(4):
        add(f"qk_mode{mode}", q, k, v, mask=f32(S, S), softcap=0.0, qk_matmul_output_mode=mode,
            outputs=("y", "", "", "qk"))
    for mode in range(3):
        add(f"qk_mode{mode}_softcap", q, k, v, mask=f32(S, S), softcap=3.0, qk_matmul_output_mode=mode,
            outputs=("y", "", "", "qk"))
    add("softmax_double", q, k, v, softmax_precision=11)
    nonpad = np.array([5, 7], dtype=np.int64)
    add("nonpad", q, k, v, nonpad=nonpad, opset=24)
    add("nonpad_causal", f32(B, H, 2, D), f32(B, H, 9, D), f32(B, H, 9, 5), nonpad=np.array([4, 9], dtype=np.int64),
        is_causal=1, opset=24)
    add("opset24", q, k, v, is_causal=1, opset=24)
    add("long", f32(1, 2, 200, 32), f32(1, 2, 200, 32), f32(1, 2, 200, 32), is_causal=1)
    # Several 64-row query blocks, each with its own key limit.
    lq, lk, lv = f32(2, 2, 130, 16), f32(2, 2, 130, 16), f32(2, 2, 130, 16)
    add("long_bool_mask_causal", lq, lk, lv, mask=RNG.random((2, 1, 130, 130)) > 0.2, is_causal=1)
    add("long_nonpad_causal", lq, lk, lv, nonpad=np.array([100, 130], dtype=np.int64), is_causal=1, opset=24)
    add("long_past_causal", f32(1, 2, 70, 16), f32(1, 2, 70, 16), f32(1, 2, 70, 16), past_k=f32(1, 2, 5, 16),
        past_v=f32(1, 2, 5, 16), is_causal=1)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    c = Cases(out)
    rms_cases(c)
    rotary_cases(c)
    attention_cases(c)


if __name__ == "__main__":
    main()
