#!/usr/bin/env python3
"""Where `whittle run` and ONNX Runtime part on one model, node by node.

  python benchmarks/node_diff.py MODEL.onnx [--spec 'NAME=DTYPE[DIMS]@DIST ...'] [--binary build/whittle]

Inputs are drawn as benchmarks/corpus.py draws them (seed 0; --spec defaults to the model's row in
corpus/models.tsv, else the corpus defaults). Every node output whose type shape inference knows is
made a graph output; both runtimes run that model (ORT with its graph optimizations off, one
thread), and the script prints:

  1. the first nodes, in graph order, whose outputs differ by more than --threshold (norm-relative):
     where the two runs part, which may be float rounding that a later node amplifies (a
     QuantizeLinear flipping one step on a value near .5);
  2. the nodes that differ most when each is rerun alone in ORT on whittle's own inputs: a kernel
     that is off shows here, however small its inputs' differences; for elementwise ops with a
     float64 formula below, both runtimes' errors against float64 on those inputs.

Exposing every output keeps whittle from fusing across nodes (and from running QDQ groups as int8
kernels), so the last lines also give the final outputs' error for the original model, to check
that the exposed run still shows the gap, and against ORT with its own fusions on.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (input drawing, error measure, whittle output parsing)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# float64 formulas for elementwise ops, to say which runtime is off when the two part on one node
FLOAT64 = {
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "Tanh": np.tanh,
    "Exp": np.exp,
    "Log": np.log,
    "Sqrt": np.sqrt,
    "Reciprocal": lambda x: 1.0 / x,
    "Softplus": lambda x: np.log1p(np.exp(x)),
    "Relu": lambda x: np.maximum(x, 0.0),
}


def norm_rel(actual, expected):
    """Norm-relative error as corpus.py measures it; numeric arrays of two types compare in float64."""
    if actual.dtype != expected.dtype and actual.dtype.kind in "fiub" and expected.dtype.kind in "fiub":
        actual, expected = actual.astype(np.float64), expected.astype(np.float64)
    errs = corpus.errors([actual], [expected])
    return errs if isinstance(errs, str) else errs[0][0]


def ort_session(model, optimize=False):
    """One thread, graph optimizations off unless `optimize` (corpus.py's session)."""
    return corpus.ort_session(model, threads=1, optimize=optimize)


def expose_all(model):
    """(model with every typed node output as a graph output, [(node, output name)] in graph order)."""
    inferred = shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in list(inferred.graph.value_info) + list(inferred.graph.output)
             if v.type.HasField("tensor_type")}
    outputs = {o.name for o in model.graph.output}
    exposed = []
    for node in model.graph.node:
        for name in node.output:
            if name and types.get(name):
                if name not in outputs:
                    model.graph.output.append(helper.make_tensor_value_info(name, types[name], None))
                exposed.append((node, name))
    return model, exposed


def whittle_outputs(binary, path, inputs_npz, out_dir):
    actual, error, cmd = corpus.whittle_run(binary, path, inputs_npz, out_dir)
    if error is not None:
        sys.exit(f"node_diff.py: {cmd}: {error}")
    return actual


def rerun_alone(node, inputs, outputs, opsets, ir_version):
    """ORT's outputs of `node` alone on the given arrays (by name), or a one-line error."""
    given = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(inputs[n].dtype), list(inputs[n].shape))
             for n in node.input if n]
    wanted = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(outputs[n].dtype), None)
              for n in node.output if n in outputs]
    single = helper.make_model(helper.make_graph([node], "one", given, wanted), opset_imports=opsets, ir_version=ir_version)
    try:
        return ort_session(single.SerializeToString()).run(None, {n: inputs[n] for n in node.input if n})
    except Exception as e:  # ORT raises several exception types; all mean "cannot run alone"
        return corpus.one_line(str(e), 120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--spec", help="input spec as in corpus/models.tsv (default: the model's row there)")
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "whittle"))
    parser.add_argument("--work", default=None, help="folder for the exposed model and outputs (default: /tmp/node_diff-NAME)")
    parser.add_argument("--threshold", type=float, default=1e-5)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()

    name = os.path.basename(args.model)[:-5]
    spec = args.spec
    if spec is None:
        spec = next((row["inputs"] for row in corpus.read_corpus_list() if row["name"] == name), "")
    work = args.work or f"/tmp/node_diff-{name}"
    os.makedirs(work, exist_ok=True)

    original = onnx.load(args.model)
    feeds = corpus.make_feeds(original, spec, seed=0)
    inputs_npz = os.path.join(work, "inputs.npz")
    corpus.save_npz(inputs_npz, feeds)
    final_names = [o.name for o in original.graph.output]
    final_ort = ort_session(original.SerializeToString()).run(None, feeds)
    # ORT's own fusions (QDQ groups onto int8 kernels, as whittle's lowering does) move it this far
    final_ort_fused = ort_session(original.SerializeToString(), optimize=True).run(None, feeds)
    final_whittle = whittle_outputs(args.binary, args.model, inputs_npz, os.path.join(work, "original"))

    model, exposed = expose_all(onnx.load(args.model))
    exposed_path = os.path.join(work, "exposed.onnx")
    onnx.save(model, exposed_path)
    out_names = [o.name for o in model.graph.output]
    ort_values = dict(zip(out_names, ort_session(exposed_path).run(None, feeds)))
    whittle_values = dict(zip(out_names, whittle_outputs(args.binary, exposed_path, inputs_npz, os.path.join(work, "exposed"))))

    print(f"1. first nodes past {args.threshold:g} (norm-relative, whittle vs ORT, same graph):")
    shown = 0
    for node, out in exposed:
        err = norm_rel(whittle_values[out], ort_values[out])
        if isinstance(err, str) or err > args.threshold:
            print(f"   {node.op_type} {node.name} -> {out}: {err if isinstance(err, str) else f'{err:.2e}'}")
            shown += 1
            if shown == args.top:
                break
    if shown == 0:
        print("   none")

    known = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    known.update(feeds)
    known.update(whittle_values)
    opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")]
    local = []
    for node in model.graph.node:
        if any(n and n not in known for n in node.input) or not any(n in whittle_values for n in node.output):
            continue
        ort_alone = rerun_alone(node, known, whittle_values, opsets, model.ir_version)
        if isinstance(ort_alone, str):
            print(f"   (not rerun alone: {node.name}: {ort_alone})")
            continue
        ours = whittle_values[next(n for n in node.output if n in whittle_values)]
        err = norm_rel(ours, ort_alone[0])
        local.append((float("inf") if isinstance(err, str) else err, node))
    local.sort(key=lambda item: -item[0])
    print(f"2. nodes that differ most rerun alone in ORT on whittle's inputs ({len(local)} rerun):")
    for err, node in local[:args.top]:
        line = f"   {node.op_type} {node.name}: {err:.2e}"
        if node.op_type in FLOAT64 and err > args.threshold:
            x = known[node.input[0]].astype(np.float64)
            reference = FLOAT64[node.op_type](x)
            ort_alone = rerun_alone(node, known, whittle_values, opsets, model.ir_version)[0]
            line += (f"; vs float64 on the same input: whittle {norm_rel(whittle_values[node.output[0]], reference):.2e},"
                     f" ORT {norm_rel(ort_alone, reference):.2e}")
        print(line)

    print("final outputs, whittle vs ORT (original model / exposed model / original vs ORT optimized;"
          " ORT optimized vs ORT):")
    for k, out in enumerate(final_names):
        print(f"   {out}: {norm_rel(final_whittle[k], final_ort[k]):.2e} / {norm_rel(whittle_values[out], ort_values[out]):.2e}"
              f" / {norm_rel(final_whittle[k], final_ort_fused[k]):.2e}; {norm_rel(final_ort_fused[k], final_ort[k]):.2e}")


if __name__ == "__main__":
    main()
