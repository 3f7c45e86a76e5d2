#!/usr/bin/env python3
"""Reference shapes for tests/ir/shape_inference_test.cpp, independent of whittle.

Usage:
  shape_reference.py MODEL OUT.json [--dims INPUT=D0,D1,...]... [--upgrade OPSET UPGRADED.onnx]

For the model, and with --upgrade also for a copy converted to OPSET by onnx.version_converter
(written to UPGRADED.onnx for whittle to load), it writes:

  symbolic   onnx.shape_inference (strict off, data propagation on) of the model as it is:
             {value: {"dtype": int, "dims": [int | "param" | null] or null}}
  concrete   the same with the graph inputs fixed to the concrete dims
  ort        the output shapes ONNX Runtime produces for those inputs: {output: [int, ...]}
  feeds      the concrete dims: {input: [int, ...]}

Concrete dims come from --dims; any other dim that is not fixed in the model is 1.
"""

import argparse
import copy
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import shape_inference, version_converter


def type_json(t):
    if not t.HasField("tensor_type"):
        return None
    tt = t.tensor_type
    out = {"dtype": tt.elem_type, "dims": None}
    if tt.HasField("shape"):
        out["dims"] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
    return out


def inferred(model):
    m = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    values = {}
    for vi in list(m.graph.value_info) + list(m.graph.output):
        t = type_json(vi.type)
        if t is not None:
            values[vi.name] = t
    return values


def feeds_for(model, dims):
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = dims.get(i.name, shape)
    return feeds


def fixed(model, feeds):
    m = copy.deepcopy(model)
    for i in m.graph.input:
        if i.name in feeds:
            for d, v in zip(i.type.tensor_type.shape.dim, feeds[i.name]):
                d.Clear()
                d.dim_value = v
    return m


def ort_shapes(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    arrays = {}
    for i in sess.get_inputs():
        dt = onnx.helper.tensor_dtype_to_np_dtype(
            next(x for x in model.graph.input if x.name == i.name).type.tensor_type.elem_type)
        shape = feeds[i.name]
        if np.issubdtype(dt, np.floating):
            arrays[i.name] = rng.random(shape).astype(dt)
        elif dt == np.int64 or dt == np.int32:
            arrays[i.name] = np.ones(shape, dtype=dt)  # token ids and masks
        else:
            arrays[i.name] = rng.integers(-20, 20, size=shape).astype(dt)
    outs = sess.run(None, arrays)
    return {o.name: list(r.shape) for o, r in zip(sess.get_outputs(), outs)}


def reference(model, dims):
    feeds = feeds_for(model, dims)
    concrete = fixed(model, feeds)
    return {
        "symbolic": inferred(model),
        "concrete": inferred(concrete),
        "ort": ort_shapes(model, feeds),
        "feeds": feeds,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--dims", action="append", default=[])
    ap.add_argument("--upgrade", nargs=2, metavar=("OPSET", "PATH"))
    args = ap.parse_args()
    dims = {}
    for spec in args.dims:
        name, values = spec.split("=", 1)
        dims[name] = [int(v) for v in values.split(",")]
    model = onnx.load(args.model)
    result = {"original": reference(model, dims)}
    if args.upgrade:
        opset, path = int(args.upgrade[0]), args.upgrade[1]
        upgraded = version_converter.convert_version(model, opset)
        upgraded.ir_version = max(upgraded.ir_version, 10)
        onnx.save(upgraded, path)
        result["upgraded"] = reference(upgraded, dims)
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
