"""Perplexity of a causal LM ONNX model in ONNX Runtime.

usage: perplexity.py MODEL [--data ../shared/data/wikitext2/eval_512.npz] [--windows N] [--threads T]
                     [--dq-accuracy-level L]

The data is an .npz with input_ids [windows, seq]; each window runs as one batch of 1 and
the next-token NLL is taken over positions 1..seq-1 (the logits at position t predict token
t+1). Perplexity = exp(mean NLL over every predicted token of the windows used). --windows N
takes the first N windows (for speed; say so when reporting).

ONNX Runtime (1.32, graph optimizations on) fuses a block-wise DequantizeLinear -> MatMul into
MatMulNBits with the session option session.qdq_matmulnbits_accuracy_level, whose default 4
quantizes the MatMul's activations to int8 per block: the perplexity of a weight-only QDQ model
then includes that activation error (SmolLM2 8-bit weights: +1.3 % fused at level 4, +0.08 %
in float). --dq-accuracy-level 0 (or 1) keeps the fused MatMul in float; unset, ONNX Runtime's
default applies. It does not touch MatMulNBits nodes already in the model (their own
accuracy_level attribute applies). Prints one line:
  MODEL: perplexity P over N windows (T tokens), S s/window
"""
import argparse
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", default="../shared/data/wikitext2/eval_512.npz")
    ap.add_argument("--windows", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dq-accuracy-level", type=int, choices=range(5), default=None,
                    help="session.qdq_matmulnbits_accuracy_level (ONNX Runtime's default: 4, int8 activations)")
    args = ap.parse_args()
    ids = np.load(args.data)["input_ids"].astype(np.int64)
    if args.windows > 0:
        ids = ids[: args.windows]
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    if args.dq_accuracy_level is not None:
        so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", str(args.dq_accuracy_level))
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    total_nll, total_tokens = 0.0, 0
    start = time.perf_counter()
    for window in ids:
        logits = sess.run(None, {input_name: window[None, :]})[0][0].astype(np.float64)  # [seq, vocab]
        logits = logits[:-1]
        targets = window[1:]
        m = logits.max(axis=-1, keepdims=True)
        logz = np.log(np.exp(logits - m).sum(axis=-1)) + m[:, 0]
        nll = logz - logits[np.arange(len(targets)), targets]
        total_nll += float(nll.sum())
        total_tokens += len(targets)
    elapsed = time.perf_counter() - start
    ppl = float(np.exp(total_nll / total_tokens))
    level = "" if args.dq_accuracy_level is None else f" (DQ->MatMul accuracy level {args.dq_accuracy_level})"
    print(f"{args.model}{level}: perplexity {ppl:.2f} over {len(ids)} windows ({total_tokens} tokens), "
          f"{elapsed / len(ids):.2f} s/window")


if __name__ == "__main__":
    main()
