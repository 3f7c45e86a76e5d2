"""Perplexity of a causal LM ONNX model in ONNX Runtime.

usage: perplexity.py MODEL [--data ../shared/data/wikitext2/eval_512.npz] [--windows N] [--threads T]

The data is an .npz with input_ids [windows, seq]; each window runs as one batch of 1 and
the next-token NLL is taken over positions 1..seq-1 (the logits at position t predict token
t+1). Perplexity = exp(mean NLL over every predicted token of the windows used). --windows N
takes the first N windows (for speed; say so when reporting). Prints one line:
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
    args = ap.parse_args()
    ids = np.load(args.data)["input_ids"].astype(np.int64)
    if args.windows > 0:
        ids = ids[: args.windows]
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
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
    print(f"{args.model}: perplexity {ppl:.2f} over {len(ids)} windows ({total_tokens} tokens), "
          f"{elapsed / len(ids):.2f} s/window")


if __name__ == "__main__":
    main()
