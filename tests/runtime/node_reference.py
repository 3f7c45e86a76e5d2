#!/usr/bin/env python3
"""Recomputes the expected outputs of ONNX node-test cases whose stored outputs are wrong, from
the stored model and inputs, with a reference runtime: ONNX Runtime (its graph optimizations
off) or onnx.reference, as the case's line in node_expected_failures.txt names.

    python tests/runtime/node_reference.py OUT_DIR KIND:CASE_DIR [KIND:CASE_DIR ...]

KIND is `ort` or `onnx.reference`. For each case and each CASE_DIR/test_data_set_N it writes
OUT_DIR/CASE/test_data_set_N/output_K.pb (TensorProto files, as the node tests store them:
bfloat16 as uint16 bits) and OUT_DIR/CASE/reference.txt (the runtime and its version). Exits
non-zero with a one-line error naming the case when the reference cannot run it."""
import ctypes
import glob
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def read_inputs(model, data_dir):
    inputs = {}
    initializers = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    for k, info in enumerate(graph_inputs):
        path = os.path.join(data_dir, f"input_{k}.pb")
        if not os.path.exists(path):
            break  # optional inputs left out
        inputs[info.name] = (numpy_helper.to_array(onnx.load_tensor(path)), info.type.tensor_type.elem_type)
    return inputs


def ort_value_array(value):
    """An OrtValue as numpy; bfloat16 (numpy has none) as its uint16 bits."""
    if value.data_type() != "tensor(bfloat16)":
        return value.numpy()
    shape = value.shape()
    count = int(np.prod(shape))
    bits = (ctypes.c_uint16 * count).from_address(value.data_ptr())
    return np.frombuffer(bits, dtype=np.uint16).copy().reshape(shape)


def run_ort(model_path, model, inputs):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    feeds = {}
    for name, (array, elem_type) in inputs.items():
        if elem_type == TensorProto.BFLOAT16:
            feeds[name] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(array.view(np.uint16), TensorProto.BFLOAT16)
        else:
            feeds[name] = ort.OrtValue.ortvalue_from_numpy(array)
    return [ort_value_array(v) for v in session.run_with_ort_values(None, feeds)], f"onnxruntime {ort.__version__}"


def run_onnx_reference(model_path, model, inputs):
    from onnx.reference import ReferenceEvaluator
    feeds = {name: array for name, (array, _) in inputs.items()}
    return list(ReferenceEvaluator(model).run(None, feeds)), f"onnx.reference {onnx.__version__}"


RUNNERS = {"ort": run_ort, "onnx.reference": run_onnx_reference}


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out_root = sys.argv[1]
    for spec in sys.argv[2:]:
        kind, _, case_dir = spec.partition(":")
        name = os.path.basename(os.path.normpath(case_dir))
        if kind not in RUNNERS:
            print(f"{name}: unknown reference '{kind}' (ort or onnx.reference)", file=sys.stderr)
            return 2
        model_path = os.path.join(case_dir, "model.onnx")
        model = onnx.load(model_path)
        which = ""
        for data_dir in sorted(glob.glob(os.path.join(case_dir, "test_data_set_*"))):
            try:
                outputs, which = RUNNERS[kind](model_path, model, read_inputs(model, data_dir))
            except Exception as e:  # noqa: BLE001 - one line naming the case, whatever failed
                print(f"{name}: {kind} cannot run it: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                      file=sys.stderr)
                return 1
            out_dir = os.path.join(out_root, name, os.path.basename(data_dir))
            os.makedirs(out_dir, exist_ok=True)
            for k, array in enumerate(outputs):
                onnx.save_tensor(numpy_helper.from_array(np.asarray(array)), os.path.join(out_dir, f"output_{k}.pb"))
        with open(os.path.join(out_root, name, "reference.txt"), "w") as f:
            f.write(which + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
