#!/usr/bin/env python3
"""A model fused by ONNX Runtime's transformer tools, with ONNX Runtime's outputs on it.

usage: transformer_fuse_models.py MODEL OUT_DIR DATA.npz SAMPLES MODEL_TYPE NUM_HEADS HIDDEN

Writes into OUT_DIR, for two fusions of MODEL:
  optimizer.onnx  onnxruntime.transformers.optimizer.optimize_model(model_type=MODEL_TYPE,
                  num_heads, hidden_size, opt_level=0, use_gpu=False): the fusion passes alone
                  (SkipLayerNormalization, BiasGelu, Attention, ... where they match).
                  opt_level 1 and 2 only add an ONNX Runtime session's own optimizations first,
                  which the second file has, and import torch, which the project does not need.
  ort_level2.onnx ONNX Runtime 1.32's CPU session optimizations at ORT_ENABLE_EXTENDED, saved
                  with optimized_model_filepath (FusedMatMul, BiasGelu, ...).
and for each NAME.onnx a NAME.npz with the inputs (the first SAMPLES rows of every array of
DATA.npz, under their names) and ONNX Runtime's outputs on the fused file (graph optimizations
off) as expected_<output name>. Prints one line per file: NAME and its com.microsoft op counts.
"""
import collections
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def ms_ops(path):
    model = onnx.load(path, load_external_data=False)
    counts = collections.Counter(n.op_type for n in model.graph.node if n.domain == "com.microsoft")
    return " ".join(f"{op}={n}" for op, n in sorted(counts.items()))


def reference(path, feeds):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def main(argv):
    if len(argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    model, out_dir, data, samples, model_type, heads, hidden = argv
    os.makedirs(out_dir, exist_ok=True)
    from onnxruntime.transformers.optimizer import optimize_model  # noqa: PLC0415 (needs sympy)

    fused = optimize_model(model, model_type=model_type, num_heads=int(heads), hidden_size=int(hidden),
                           opt_level=0, use_gpu=False)
    fused.save_model_to_file(os.path.join(out_dir, "optimizer.onnx"))

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = os.path.join(out_dir, "ort_level2.onnx")
    ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    arrays = np.load(data)
    feeds = {k: np.ascontiguousarray(v[: int(samples)]) for k, v in arrays.items()}
    for name in ("optimizer", "ort_level2"):
        path = os.path.join(out_dir, name + ".onnx")
        outputs = reference(path, feeds)
        np.savez(os.path.join(out_dir, name + ".npz"), **feeds,
                 **{"expected_" + k: np.ascontiguousarray(v) for k, v in outputs.items()})
        print(name, ms_ops(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
