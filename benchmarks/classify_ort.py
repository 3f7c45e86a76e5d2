"""Top-1 accuracy of classifier ONNX models in ONNX Runtime, each against the first.

usage: classify_ort.py FP32 [OTHER ...] [--data ../shared/data/clinc150/test.npz]
                       [--labels ../shared/data/clinc150/test_labels.txt] [--output logits]
                       [--batch 1] [--threads 1]

The data is an .npz whose arrays are named after the model's inputs (input_ids, attention_mask,
one row per sample); the labels file holds one class index per line. Every model runs every
sample in batches of --batch (the whole set, in order), and the named output's argmax is the
prediction. Prints one line per model: top-1, and for the other models the drop in points
against the first and the top-1 agreement with it, so that whittle's evaluation (`whittle compare
... --output logits`) can be checked in a second runtime.
"""
import argparse
import os

import numpy as np
import onnxruntime as ort


def predictions(path, data, output, batch, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    missing = [n for n in names if n not in data]
    if missing:
        raise SystemExit(f"{path}: input(s) {', '.join(missing)} not in the data ({', '.join(data.files)})")
    n = len(data[names[0]])
    out = []
    for start in range(0, n, batch):
        feed = {k: data[k][start:start + batch] for k in names}
        out.append(np.asarray(sess.run([output], feed)[0]).argmax(axis=-1))
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default="../shared/data/clinc150/test.npz")
    ap.add_argument("--labels", default="../shared/data/clinc150/test_labels.txt")
    ap.add_argument("--output", default="logits")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    data = np.load(args.data)
    labels = np.loadtxt(args.labels, dtype=np.int64)
    reference = None
    for path in args.models:
        pred = predictions(path, data, args.output, args.batch, args.threads)
        if len(pred) != len(labels):
            raise SystemExit(f"{args.labels}: {len(labels)} labels for {len(pred)} samples")
        top1 = 100.0 * float((pred == labels).mean())
        line = f"{path}: top-1 {top1:.2f} % ({len(pred)} samples), {os.path.getsize(path) / 1e6:.1f} MB"
        if reference is None:
            reference = (pred, top1)
        else:
            line += (f", drop {reference[1] - top1:.2f} pp, agreement "
                     f"{100.0 * float((pred == reference[0]).mean()):.2f} %")
        print(line, flush=True)


if __name__ == "__main__":
    main()
