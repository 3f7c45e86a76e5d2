#!/usr/bin/env python3
"""One-node models of the com.microsoft transformer ops, with ONNX Runtime's outputs.

usage: transformer_ort_cases.py OUT_DIR

Writes OUT_DIR/NAME.onnx and OUT_DIR/NAME.npz for every case and prints the case names, one a
line. The npz holds each graph input under its name and ONNX Runtime's outputs (CPU provider,
1 thread, graph optimizations off, so that the op itself is what runs) as expected_<output name>.
tests/kernels/cpu/transformer_test.cpp runs the same models on whittle and compares.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

MS = "com.microsoft"


def model_of(op, inputs, attrs, outputs, domain=MS, opset=17, initializers=(), int_outputs=()):
    """inputs: list of (name, array) or None for an absent optional input; initializers: names
    among them stored as initializers."""
    names, infos, inits, feeds = [], [], [], {}
    for item in inputs:
        if item is None:
            names.append("")
            continue
        name, value = item
        names.append(name)
        if name in initializers:
            inits.append(onnx.numpy_helper.from_array(value, name))
        else:
            infos.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape))
            feeds[name] = value
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node(op, names, outputs, name="node", domain=domain, **attrs)
    outs = [helper.make_tensor_value_info(o, TensorProto.INT32 if o in int_outputs else TensorProto.FLOAT, None)
            for o in outputs if o]
    graph = helper.make_graph([node], "case", infos, outs, inits)
    imports = [helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    return model, feeds


def run_ort(model, feeds):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the test reads this script's output as case names
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


class Cases:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.rng = np.random.default_rng(2026)

    def f(self, *shape, lo=-1.0, hi=1.0):
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    def add(self, name, op, inputs, attrs=None, outputs=("y",), domain=MS, opset=17, initializers=(), int_outputs=()):
        model, feeds = model_of(op, inputs, attrs or {}, list(outputs), domain, opset, initializers, int_outputs)
        results = run_ort(model, feeds)
        arrays = dict(feeds)
        for out, value in zip([o for o in outputs if o], results):
            arrays["expected_" + out] = np.ascontiguousarray(value)
        onnx.save(model, os.path.join(self.out_dir, name + ".onnx"))
        np.savez(os.path.join(self.out_dir, name + ".npz"), **arrays)
        print(name)


def gelu_cases(c):
    x = c.f(2, 3, 8, lo=-4, hi=4)
    b = c.f(8)
    c.add("gelu", "Gelu", [("x", x)])
    c.add("fast_gelu", "FastGelu", [("x", x)])
    c.add("fast_gelu_bias", "FastGelu", [("x", x), ("b", b)], initializers=("b",))
    c.add("bias_gelu", "BiasGelu", [("x", x), ("b", b)])
    c.add("quick_gelu", "QuickGelu", [("x", x)])
    c.add("quick_gelu_alpha", "QuickGelu", [("x", x)], {"alpha": 1.0})


def norm_cases(c):
    B, S, H = 2, 3, 16
    x, skip = c.f(B, S, H, lo=-3, hi=3), c.f(B, S, H)
    gamma, beta, bias = c.f(H, lo=0.5, hi=1.5), c.f(H), c.f(H)
    outs4 = ("y", "mean", "inv_std", "sum")
    c.add("skip_ln_full", "SkipLayerNormalization", [("x", x), ("skip", skip), ("gamma", gamma), ("beta", beta),
                                                     ("bias", bias)], {"epsilon": 1e-5}, outs4)
    c.add("skip_ln_plain", "SkipLayerNormalization", [("x", x), ("skip", skip), ("gamma", gamma)])
    c.add("skip_ln_sum_only", "SkipLayerNormalization",
          [("x", x), ("skip", skip), ("gamma", gamma), ("beta", beta)], {}, ("y", "", "", "sum"))
    c.add("skip_ln_broadcast_1sh", "SkipLayerNormalization",
          [("x", x), ("skip", c.f(1, S, H)), ("gamma", gamma), ("beta", beta)])
    c.add("skip_ln_broadcast_sh", "SkipLayerNormalization",
          [("x", x), ("skip", c.f(S, H)), ("gamma", gamma), ("beta", beta)])
    c.add("skip_ln_2d", "SkipLayerNormalization", [("x", c.f(5, H)), ("skip", c.f(5, H)), ("gamma", gamma),
                                                   ("beta", beta)])
    c.add("skip_simplified_full", "SkipSimplifiedLayerNormalization",
          [("x", x), ("skip", skip), ("gamma", gamma), ("bias", bias)], {"epsilon": 1e-6}, outs4)
    c.add("skip_simplified_plain", "SkipSimplifiedLayerNormalization", [("x", x), ("skip", skip), ("gamma", gamma)])
    c.add("simplified_ln", "SimplifiedLayerNormalization", [("x", x), ("scale", gamma)], {"epsilon": 1e-6},
          ("y", "inv_std"), domain="")
    c.add("simplified_ln_axis1", "SimplifiedLayerNormalization", [("x", x), ("scale", c.f(S, H))], {"axis": 1},
          ("y", "inv_std"), domain="")
    c.add("layer_norm_opset13", "LayerNormalization", [("x", x), ("scale", gamma), ("b", beta)],
          {"epsilon": 1e-5}, ("y", "mean", "inv_std"), domain="", opset=13)


def fused_matmul_cases(c):
    c.add("fmm_alpha", "FusedMatMul", [("a", c.f(2, 3, 4)), ("b", c.f(2, 4, 5))], {"alpha": 0.125})
    c.add("fmm_transA", "FusedMatMul", [("a", c.f(2, 4, 3)), ("b", c.f(4, 5))], {"transA": 1})
    c.add("fmm_transB", "FusedMatMul", [("a", c.f(2, 3, 4)), ("b", c.f(2, 5, 4))], {"transB": 1, "alpha": 2.0})
    c.add("fmm_transAB_broadcast", "FusedMatMul", [("a", c.f(2, 1, 4, 3)), ("b", c.f(3, 5, 4))],
          {"transA": 1, "transB": 1})
    c.add("fmm_transBatchA", "FusedMatMul", [("a", c.f(3, 4, 2, 5)), ("b", c.f(4, 2, 5, 6))], {"transBatchA": 1})
    c.add("fmm_transBatchA_transA", "FusedMatMul", [("a", c.f(5, 4, 2, 3)), ("b", c.f(4, 2, 5, 6))],
          {"transBatchA": 1, "transA": 1})
    c.add("fmm_transBatchB", "FusedMatMul", [("a", c.f(4, 2, 3, 5)), ("b", c.f(5, 4, 2, 6))], {"transBatchB": 1})
    c.add("fmm_transBatchB_transB", "FusedMatMul", [("a", c.f(4, 2, 3, 5)), ("b", c.f(6, 4, 2, 5))],
          {"transBatchB": 1, "transB": 1, "alpha": 0.5})
    c.add("fmm_2d_weight", "FusedMatMul", [("a", c.f(2, 3, 8)), ("w", c.f(6, 8))], {"transB": 1},
          initializers=("w",))
    c.add("fmm_vector_b", "FusedMatMul", [("a", c.f(2, 3, 4)), ("b", c.f(4))], {"alpha": 3.0})


def rotary_cases(c):
    B, S, N, H = 2, 4, 2, 8
    cos, sin = c.f(16, H // 2), c.f(16, H // 2)
    pid = np.array([[0, 1, 2, 3], [5, 6, 7, 8]], np.int64)
    x = c.f(B, S, N * H)
    c.add("rotary", "RotaryEmbedding", [("x", x), ("pid", pid), ("cos", cos), ("sin", sin)], {"num_heads": N})
    c.add("rotary_interleaved", "RotaryEmbedding", [("x", x), ("pid", pid), ("cos", cos), ("sin", sin)],
          {"num_heads": N, "interleaved": 1})
    c.add("rotary_pid_offset", "RotaryEmbedding",
          [("x", x), ("pid", np.array([3], np.int64)), ("cos", cos), ("sin", sin)], {})
    c.add("rotary_partial", "RotaryEmbedding", [("x", x), ("pid", pid), ("cos", cos[:, :2].copy()),
                                                ("sin", sin[:, :2].copy())],
          {"num_heads": N, "rotary_embedding_dim": 4, "interleaved": 1})
    c.add("rotary_bnsh", "RotaryEmbedding", [("x", c.f(B, N, S, H)), ("pid", pid), ("cos", cos), ("sin", sin)],
          {"interleaved": 0})


def attention_cases(c):
    B, S, Din, N, H = 2, 4, 12, 3, 4
    D = N * H
    x = c.f(B, S, Din)
    w, bias = c.f(Din, 3 * D, lo=-0.5, hi=0.5), c.f(3 * D)
    base = [("x", x), ("w", w), ("bias", bias)]
    inits = ("w", "bias")
    c.add("attention", "Attention", base, {"num_heads": N}, initializers=inits)
    c.add("attention_no_bias", "Attention", [("x", x), ("w", w)], {"num_heads": N}, initializers=inits)
    c.add("attention_mask_end", "Attention", base + [("mask", np.array([3, 4], np.int32))], {"num_heads": N},
          initializers=inits)
    c.add("attention_mask_end_start", "Attention", base + [("mask", np.array([3, 4, 1, 0], np.int32))],
          {"num_heads": N}, initializers=inits)
    raw = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], np.int32)
    c.add("attention_mask_raw", "Attention", base + [("mask", raw)], {"num_heads": N}, initializers=inits)
    c.add("attention_mask_raw_filter", "Attention", base + [("mask", raw)],
          {"num_heads": N, "mask_filter_value": -1e9}, initializers=inits)
    raw3 = (c.rng.uniform(0, 1, (B, S, S)) > 0.3).astype(np.int32)
    raw3[:, :, 0] = 1
    c.add("attention_mask_3d", "Attention", base + [("mask", raw3)], {"num_heads": N}, initializers=inits)
    c.add("attention_unidirectional", "Attention", base, {"num_heads": N, "unidirectional": 1}, initializers=inits)
    c.add("attention_unidirectional_mask", "Attention", base + [("mask", raw)],
          {"num_heads": N, "unidirectional": 1}, initializers=inits)
    c.add("attention_scale", "Attention", base, {"num_heads": N, "scale": 0.1}, initializers=inits)
    wq = c.f(Din, D + D + 2 * N, lo=-0.5, hi=0.5)
    c.add("attention_qkv_sizes", "Attention", [("x", x), ("w", wq), ("bias", c.f(2 * D + 2 * N))],
          {"num_heads": N, "qkv_hidden_sizes": [D, D, 2 * N]}, initializers=("w", "bias"))
    c.add("attention_bias_input", "Attention", base + [None, None, ("ab", c.f(1, N, S, S, lo=-2, hi=2))],
          {"num_heads": N}, initializers=inits)
    P = 3
    past = c.f(2, B, N, P, H)
    c.add("attention_past_present", "Attention", base + [None, ("past", past)],
          {"num_heads": N, "unidirectional": 1}, ("y", "present"), initializers=inits)
    c.add("attention_past_mask", "Attention",
          base + [("mask", np.array([[1] * (P + S), [0, 1] + [1] * (P + S - 2)], np.int32)), ("past", past)],
          {"num_heads": N, "unidirectional": 1}, ("y", "present"), initializers=inits)


def mha_cases(c):
    B, S, L, N, H = 2, 3, 5, 2, 4
    D = N * H
    q, k, v = c.f(B, S, D), c.f(B, L, D), c.f(B, L, D)
    bias = c.f(3 * D)
    c.add("mha", "MultiHeadAttention", [("q", q), ("k", k), ("v", v)], {"num_heads": N})
    c.add("mha_bias", "MultiHeadAttention", [("q", q), ("k", k), ("v", v), ("bias", bias)], {"num_heads": N},
          initializers=("bias",))
    dv = 2 * N
    c.add("mha_value_hidden", "MultiHeadAttention",
          [("q", q), ("k", k), ("v", c.f(B, L, dv)), ("bias", c.f(2 * D + dv))], {"num_heads": N})
    c.add("mha_bnsh_kv", "MultiHeadAttention", [("q", q), ("k", c.f(B, N, L, H)), ("v", c.f(B, N, L, H)),
                                                ("bias", bias)], {"num_heads": N})
    c.add("mha_mask_1d", "MultiHeadAttention",
          [("q", q), ("k", k), ("v", v), None, ("m", np.array([2, 5], np.int32))], {"num_heads": N})
    c.add("mha_mask_2d", "MultiHeadAttention",
          [("q", q), ("k", k), ("v", v), None, ("m", np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int32))],
          {"num_heads": N})
    m3 = (c.rng.uniform(0, 1, (B, S, L)) > 0.4).astype(np.int32)
    m3[:, :, 1] = 1
    c.add("mha_mask_3d", "MultiHeadAttention", [("q", q), ("k", k), ("v", v), None, ("m", m3)],
          {"num_heads": N, "scale": 0.7})
    c.add("mha_attention_bias", "MultiHeadAttention",
          [("q", q), ("k", k), ("v", v), ("bias", bias), None, ("ab", c.f(B, 1, S, L, lo=-2, hi=2))],
          {"num_heads": N})
    P = 2
    ks, vs = c.f(B, S, D), c.f(B, S, D)
    c.add("mha_past_causal", "MultiHeadAttention",
          [("q", q), ("k", ks), ("v", vs), ("bias", bias), None, None, ("pk", c.f(B, N, P, H)),
           ("pv", c.f(B, N, P, H))], {"num_heads": N, "unidirectional": 1}, ("y", "present_k", "present_v"))
    c.add("mha_causal", "MultiHeadAttention", [("q", q), ("k", ks), ("v", vs)], {"num_heads": N, "unidirectional": 1})


def embed_cases(c):
    B, S, H, V, P, G = 2, 5, 8, 12, 7, 2
    ids = c.rng.integers(0, V, (B, S)).astype(np.int32)
    seg = c.rng.integers(0, G, (B, S)).astype(np.int32)
    word, pos, segment = c.f(V, H), c.f(P, H), c.f(G, H)
    gamma, beta = c.f(H, lo=0.5, hi=1.5), c.f(H)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], np.int32)
    tables = ("word", "pos", "segment", "gamma", "beta")
    c.add("embed_ln", "EmbedLayerNormalization",
          [("ids", ids), ("seg", seg), ("word", word), ("pos", pos), ("segment", segment), ("gamma", gamma),
           ("beta", beta), ("mask", mask)], {"epsilon": 1e-12}, ("y", "mask_index", "sum"), initializers=tables,
          int_outputs=("mask_index",))
    c.add("embed_ln_no_segment_no_mask", "EmbedLayerNormalization",
          [("ids", ids), None, ("word", word), ("pos", pos), None, ("gamma", gamma), ("beta", beta)], {},
          ("y", "mask_index"), initializers=tables, int_outputs=("mask_index",))
    c.add("embed_ln_position_ids", "EmbedLayerNormalization",
          [("ids", ids), ("seg", seg), ("word", word), ("pos", pos), ("segment", segment), ("gamma", gamma),
           ("beta", beta), ("mask", mask), ("pid", c.rng.integers(0, P, (B, S)).astype(np.int32))], {},
          ("y", "mask_index"), initializers=tables, int_outputs=("mask_index",))
    c.add("embed_ln_position_ids_row", "EmbedLayerNormalization",
          [("ids", ids), ("seg", seg), ("word", word), ("pos", pos), ("segment", segment), ("gamma", gamma),
           ("beta", beta), None, ("pid", np.array([[6, 5, 4, 3, 2]], np.int32))], {}, ("y", "mask_index"),
          initializers=tables, int_outputs=("mask_index",))


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    os.makedirs(argv[0], exist_ok=True)
    c = Cases(argv[0])
    gelu_cases(c)
    norm_cases(c)
    fused_matmul_cases(c)
    rotary_cases(c)
    attention_cases(c)
    mha_cases(c)
    embed_cases(c)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
