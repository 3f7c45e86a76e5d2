"""A tiny causal "language model" for the perplexity test, and its perplexity in numpy.

    perplexity_reference.py DIR
writes DIR/lm.onnx (input_ids [batch, seq] int64 -> Gather(E) -> MatMul(W) -> logits
[batch, seq, vocab]), DIR/lm_half.onnx (W halved) and DIR/ids.npz (input_ids), and prints the
perplexity of each model: exp(mean over sequences and positions t < seq-1 of
logsumexp(logits[b, t]) - logits[b, t, ids[b, t+1]])."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
rng = np.random.default_rng(16)
vocab, hidden, batch, seq = 37, 8, 5, 11
emb = rng.normal(size=(vocab, hidden)).astype(np.float32)
w = rng.normal(size=(hidden, vocab)).astype(np.float32)
ids = rng.integers(0, vocab, size=(batch, seq)).astype(np.int64)


def model(weight):
    g = helper.make_graph(
        [helper.make_node("Gather", ["E", "input_ids"], ["h"]), helper.make_node("MatMul", ["h", "W"], ["logits"])],
        "lm", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", vocab])],
        [numpy_helper.from_array(emb, "E"), numpy_helper.from_array(weight, "W")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def perplexity(weight):
    logits = (emb[ids].astype(np.float64) @ weight.astype(np.float64))[:, :-1]
    m = logits.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[..., 0]
    target = np.take_along_axis(logits, ids[:, 1:, None], axis=-1)[..., 0]
    return float(np.exp((lse - target).mean()))


onnx.save(model(w), os.path.join(out, "lm.onnx"))
onnx.save(model(w * 0.5), os.path.join(out, "lm_half.onnx"))
np.savez(os.path.join(out, "ids.npz"), input_ids=ids)
print(f"{perplexity(w):.12g} {perplexity(w * 0.5):.12g} {batch * (seq - 1)}")
