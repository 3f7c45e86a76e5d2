#!/usr/bin/env python3
"""Round-trip interop check: does a model that whittle loaded and saved (no passes) run in
ONNX Runtime with bit-identical outputs to the original?

Usage: roundtrip.py ORIGINAL SAVED [ORIGINAL SAVED ...]

For every pair it
  - runs the ONNX checker (onnx.checker.check_model, full check) on the saved model,
  - compares file sizes (the saved model and its external data together),
  - runs both models in ONNX Runtime (CPUExecutionProvider, one thread, the same session
    options for both) on the same seeded random inputs of each input's dtype and shape,
  - and requires every output to have the same name, dtype, shape and bytes.
It prints one line per pair and exits 0 when every pair passes, 1 when one fails, and 77
(skip) when numpy, onnx or onnxruntime cannot be imported.

Symbolic input dims become 1. When the original model cannot run that way (a detector whose
height and width are symbolic), the non-batch symbolic dims are retried at 32, 64, 128, 256.
"""

import os
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as error:  # the C++ test decides whether a skip is acceptable
    print(f"SKIP: {error}")
    sys.exit(77)

SEED = 1234
RETRY_SIZES = (32, 64, 128, 256)
# The saved model re-encodes typed tensor fields as raw_data: sizes move a little, not much.
SIZE_RATIO_MIN = 0.5
SIZE_RATIO_MAX = 1.1
SIZE_SLACK_BYTES = 4096

NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32,
    "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


def total_size(path):
    """Bytes of the model file plus every external-data file it refers to."""
    model = onnx.load(path, load_external_data=False)
    locations = set()

    def visit(graph):
        for t in graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                locations.update(e.value for e in t.external_data if e.key == "location")
        for node in graph.node:
            for a in node.attribute:
                if a.HasField("t") and a.t.data_location == onnx.TensorProto.EXTERNAL:
                    locations.update(e.value for e in a.t.external_data if e.key == "location")
                if a.HasField("g"):
                    visit(a.g)
                for g in a.graphs:
                    visit(g)

    visit(model.graph)
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.getsize(path) + sum(os.path.getsize(os.path.join(folder, loc)) for loc in locations)


def make_session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def random_inputs(session, other_dim):
    """Seeded random inputs; symbolic dims are 1 for the batch axis, `other_dim` elsewhere."""
    rng = np.random.default_rng(SEED)
    feeds = {}
    for info in session.get_inputs():
        if info.type not in NUMPY_TYPES:
            raise ValueError(f"input '{info.name}' has type {info.type}, which this script cannot generate")
        dtype = NUMPY_TYPES[info.type]
        shape = [d if isinstance(d, int) and d >= 0 else (1 if axis == 0 else other_dim) for axis, d in enumerate(info.shape)]
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            value = rng.integers(0, 2, shape).astype(np.bool_)
        elif np.issubdtype(dtype, np.signedinteger) and np.iinfo(dtype).bits == 8:
            value = rng.integers(-128, 128, shape).astype(dtype)
        elif dtype == np.uint8:
            value = rng.integers(0, 256, shape).astype(dtype)
        else:  # wider integers are usually indices or sizes: keep them small
            value = rng.integers(0, 4, shape).astype(dtype)
        feeds[info.name] = value
    return feeds


def run_original(session):
    """Runs the original model; returns (feeds, outputs)."""
    last_error = None
    for other_dim in (1,) + RETRY_SIZES:
        feeds = random_inputs(session, other_dim)
        try:
            return feeds, session.run(None, feeds)
        except Exception as error:  # noqa: BLE001 - any runtime failure means: try other sizes
            last_error = error
    raise RuntimeError(f"the original model does not run on random inputs: {last_error}")


def compare(original_path, saved_path):
    """Returns (ok, one-line summary)."""
    name = os.path.basename(original_path)
    try:
        onnx.checker.check_model(saved_path, full_check=True)
    except Exception as error:  # noqa: BLE001
        return False, f"{name}: the ONNX checker rejects the saved model: {str(error).splitlines()[0]}"

    original_size = total_size(original_path)
    saved_size = total_size(saved_path)
    ratio = saved_size / max(original_size, 1)
    if not (SIZE_RATIO_MIN * original_size <= saved_size <= SIZE_RATIO_MAX * original_size + SIZE_SLACK_BYTES):
        return False, f"{name}: saved size {saved_size} bytes is far from the original's {original_size} (x{ratio:.3f})"

    reference = make_session(original_path)
    candidate = make_session(saved_path)
    ref_inputs = [(i.name, i.type, i.shape) for i in reference.get_inputs()]
    cand_inputs = [(i.name, i.type, i.shape) for i in candidate.get_inputs()]
    if ref_inputs != cand_inputs:
        return False, f"{name}: inputs differ: {ref_inputs} vs {cand_inputs}"
    ref_names = [o.name for o in reference.get_outputs()]
    cand_names = [o.name for o in candidate.get_outputs()]
    if ref_names != cand_names:
        return False, f"{name}: output names differ: {ref_names} vs {cand_names}"

    feeds, expected = run_original(reference)
    actual = candidate.run(None, feeds)
    for out_name, e, a in zip(ref_names, expected, actual):
        e = np.asarray(e)
        a = np.asarray(a)
        if e.dtype != a.dtype or e.shape != a.shape:
            return False, f"{name}: output '{out_name}' is {a.dtype}{list(a.shape)}, expected {e.dtype}{list(e.shape)}"
        if e.tobytes() != a.tobytes():
            differing = int(np.count_nonzero(e.view(np.uint8) != a.view(np.uint8)))
            return False, f"{name}: output '{out_name}' differs in {differing} of {e.nbytes} bytes"
    shapes = ", ".join(f"{n}{list(np.asarray(e).shape)}" for n, e in zip(ref_names, expected))
    return True, (f"{name}: {len(expected)} output(s) bit-identical ({shapes}); checker ok; "
                  f"size {original_size} -> {saved_size} bytes (x{ratio:.3f})")


def main(argv):
    if len(argv) < 2 or len(argv) % 2 != 0:
        print("usage: roundtrip.py ORIGINAL SAVED [ORIGINAL SAVED ...]", file=sys.stderr)
        return 2
    ort.set_default_logger_severity(3)
    failures = 0
    for original, saved in zip(argv[0::2], argv[1::2]):
        try:
            ok, line = compare(original, saved)
        except Exception as error:  # noqa: BLE001 - report and go on with the next model
            ok, line = False, f"{os.path.basename(original)}: {type(error).__name__}: {error}"
        print(("OK   " if ok else "FAIL ") + line, flush=True)
        failures += 0 if ok else 1
    print(f"{len(argv) // 2 - failures} of {len(argv) // 2} models round-trip bit-identically", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
