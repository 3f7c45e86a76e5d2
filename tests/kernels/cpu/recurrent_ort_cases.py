#!/usr/bin/env python3
"""LSTM, GRU and RNN models built with onnx.helper, with ONNX Runtime's outputs.

usage: recurrent_ort_cases.py OUT_DIR

Writes one folder per case into OUT_DIR: model.onnx, input_<name>.npy for every graph input,
and output_<i>.npy in the model's output order, computed by ONNX Runtime (CPU, 1 thread).
tests/kernels/cpu/recurrent_test.cpp runs the same models on whittle and compares.

ONNX Runtime 1.32 refuses layout 1 ("Batchwise recurrent operations are not supported"): for
those cases it runs the layout-0 twin of the model on transposed inputs, and its outputs are
transposed back.

Cases named DynamicQuantizeLSTM_* are com.microsoft DynamicQuantizeLSTM: W [dirs, input, 4H] and
R [dirs, H, 4H] quantized to int8 or uint8 with a scale and zero point per direction or per
output column.
"""
import itertools
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def make_model(op, opset, layout, names, values, fed_names, outputs, hidden, direction, attrs):
    """The model with `layout`; values hold X and the states in that layout."""
    feeds, inputs, inits = {}, [], []
    for name in names:
        if not name:
            continue
        v = values[name]
        if name in fed_names:
            feeds[name] = v
            dtype = TensorProto.INT32 if name == "sequence_lens" else TensorProto.FLOAT
            inputs.append(helper.make_tensor_value_info(name, dtype, v.shape))
        else:
            inits.append(onnx.numpy_helper.from_array(v, name))
    n_out = 3 if op == "LSTM" else 2
    out_names = [f"y{i}" if outputs[i] else "" for i in range(n_out)]
    while out_names[-1] == "":
        out_names.pop()
    attrs = dict(attrs)
    if opset >= 14:
        attrs["layout"] = layout
    node = helper.make_node(op, names, out_names, hidden_size=hidden, direction=direction, **attrs)
    graph = helper.make_graph([node], "recurrent", inputs,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in out_names if n],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, feeds


def build_case(rng, op, opset=14, direction="forward", layout=0, seq=5, batch=3, inp=4, hidden=6, bias=True,
               seq_lens=None, initial_h=False, initial_c=False, peephole=False, outputs=None, weights_fed=False,
               **attrs):
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    x_shape = (seq, batch, inp) if layout == 0 else (batch, seq, inp)
    state_shape = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    values = {
        "X": rng.uniform(-2, 2, x_shape),
        "W": rng.uniform(-0.7, 0.7, (dirs, g * hidden, inp)),
        "R": rng.uniform(-0.7, 0.7, (dirs, g * hidden, hidden)),
        "B": rng.uniform(-0.5, 0.5, (dirs, 2 * g * hidden)) if bias else None,
        "sequence_lens": np.array(seq_lens, dtype=np.int32) if seq_lens is not None else None,
        "initial_h": rng.uniform(-1, 1, state_shape) if initial_h else None,
        "initial_c": rng.uniform(-1, 1, state_shape) if initial_c else None,
        "P": rng.uniform(-0.5, 0.5, (dirs, 3 * hidden)) if peephole else None,
    }
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if op == "LSTM" else [])
    names = [n if values[n] is not None else "" for n in order]
    while names and names[-1] == "":
        names.pop()
    for name in names:
        if name and name != "sequence_lens":
            values[name] = values[name].astype(np.float32)
    fed_names = {"X", "sequence_lens", "initial_h", "initial_c"} | ({"W", "R", "B", "P"} if weights_fed else set())
    n_out = 3 if op == "LSTM" else 2
    outputs = outputs or [True] * n_out
    model, feeds = make_model(op, opset, layout, names, values, fed_names, outputs, hidden, direction, attrs)
    if layout == 0:
        return model, feeds, run_ort(model, feeds)
    # ONNX Runtime runs the layout-0 twin on transposed inputs.
    twin_values = dict(values)
    twin_values["X"] = np.ascontiguousarray(values["X"].transpose(1, 0, 2))
    for name in ("initial_h", "initial_c"):
        if values[name] is not None:
            twin_values[name] = np.ascontiguousarray(values[name].transpose(1, 0, 2))
    twin, twin_feeds = make_model(op, opset, 0, names, twin_values, fed_names, outputs, hidden, direction, attrs)
    results = run_ort(twin, twin_feeds)
    present = [i for i in range(n_out) if outputs[i]]
    back = []
    for i, value in zip(present, results):
        back.append(value.transpose(2, 0, 1, 3) if i == 0 else value.transpose(1, 0, 2))
    return model, feeds, back


def quantize(w, dtype, per_column):
    """w [dirs, K, N] float -> (q, scale, zero point), per direction or per column N."""
    qmin, qmax = (-128, 127) if dtype == np.int8 else (0, 255)
    if per_column:  # ONNX Runtime wants one zero point per direction: symmetric per column
        scale = (np.abs(w).max(axis=1) / 127).astype(np.float32)
        zero = np.full(scale.shape, 0 if dtype == np.int8 else 128, dtype=dtype)
    else:
        lo = np.minimum(w.min(axis=(1, 2)), 0)
        hi = np.maximum(w.max(axis=(1, 2)), 0)
        scale = ((hi - lo) / (qmax - qmin)).astype(np.float32)
        zero = np.clip(np.round(qmin - lo / scale), qmin, qmax).astype(dtype)
    shape = (w.shape[0], 1, w.shape[2]) if per_column else (w.shape[0], 1, 1)
    q = np.clip(np.round(w / scale.reshape(shape)) + zero.reshape(shape).astype(np.int32), qmin, qmax).astype(dtype)
    return q, scale, zero


def build_quantized_lstm(rng, direction="forward", seq=5, batch=3, inp=4, hidden=6, dtype=np.int8, per_column=False,
                         initial=False, seq_lens=None, weights_fed=False):
    dirs = 2 if direction == "bidirectional" else 1
    x = rng.uniform(-2, 2, (seq, batch, inp)).astype(np.float32)
    wq, ws, wz = quantize(rng.uniform(-0.7, 0.7, (dirs, inp, 4 * hidden)), dtype, per_column)
    rq, rs, rz = quantize(rng.uniform(-0.7, 0.7, (dirs, hidden, 4 * hidden)), dtype, per_column)
    values = {"X": x, "W": wq, "R": rq, "B": rng.uniform(-0.5, 0.5, (dirs, 8 * hidden)).astype(np.float32),
              "W_scale": ws, "W_zero_point": wz, "R_scale": rs, "R_zero_point": rz}
    if initial:
        values["initial_h"] = rng.uniform(-1, 1, (dirs, batch, hidden)).astype(np.float32)
        values["initial_c"] = rng.uniform(-1, 1, (dirs, batch, hidden)).astype(np.float32)
    if seq_lens is not None:
        values["sequence_lens"] = np.array(seq_lens, dtype=np.int32)
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "", "W_scale", "W_zero_point", "R_scale",
             "R_zero_point"]
    names = [n if n in values else "" for n in order]
    fed = {"X", "sequence_lens", "initial_h", "initial_c"} | ({"W", "R"} if weights_fed else set())
    feeds, inputs, inits = {}, [], []
    for name in names:
        if not name:
            continue
        v = values[name]
        if name in fed:
            feeds[name] = v
            inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape))
        else:
            inits.append(onnx.numpy_helper.from_array(v, name))
    node = helper.make_node("DynamicQuantizeLSTM", names, ["y0", "y1", "y2"], domain="com.microsoft",
                            hidden_size=hidden, direction=direction)
    graph = helper.make_graph([node], "dqlstm", inputs,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ["y0", "y1", "y2"]],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model, feeds, run_ort(model, feeds)


def quantized_cases():
    return [
        ("DynamicQuantizeLSTM_forward_int8", dict()),
        ("DynamicQuantizeLSTM_bidirectional_uint8_columns",
         dict(direction="bidirectional", dtype=np.uint8, per_column=True, initial=True)),
        ("DynamicQuantizeLSTM_reverse_int8_columns_lens", dict(direction="reverse", per_column=True, seq_lens=[5, 2, 4])),
        ("DynamicQuantizeLSTM_long_fed", dict(direction="bidirectional", seq=12, batch=2, inp=16, hidden=16,
                                              weights_fed=True, initial=True)),
    ]


def run_ort(model, feeds):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def cases():
    out = []
    for op, direction, layout in itertools.product(["RNN", "GRU", "LSTM"], ["forward", "reverse", "bidirectional"],
                                                   [0, 1]):
        lstm = op == "LSTM"
        out.append((f"{op}_{direction}_layout{layout}_all",
                    dict(op=op, direction=direction, layout=layout, seq_lens=[5, 3, 1], initial_h=True,
                         initial_c=lstm, peephole=lstm)))
        out.append((f"{op}_{direction}_layout{layout}_bare", dict(op=op, direction=direction, layout=layout,
                                                                  bias=False)))
    for op in ["RNN", "GRU", "LSTM"]:
        lstm = op == "LSTM"
        out.append((f"{op}_zero_length", dict(op=op, direction="bidirectional", seq_lens=[4, 0, 2], initial_h=True,
                                              initial_c=lstm)))
        out.append((f"{op}_clip", dict(op=op, clip=0.5, initial_h=True, peephole=lstm)))
        out.append((f"{op}_only_yh", dict(op=op, outputs=[False, True] + ([False] if lstm else []))))
        out.append((f"{op}_only_y", dict(op=op, outputs=[True, False] + ([False] if lstm else []))))
        out.append((f"{op}_opset7", dict(op=op, opset=7, direction="bidirectional", seq_lens=[5, 2, 4])))
        out.append((f"{op}_opset22", dict(op=op, opset=22, direction="reverse", seq_lens=[1, 5, 3])))
        out.append((f"{op}_fed_weights", dict(op=op, weights_fed=True, initial_h=True, peephole=lstm)))
    out.append(("GRU_linear_before_reset", dict(op="GRU", linear_before_reset=1, direction="bidirectional",
                                                seq_lens=[5, 4, 2], initial_h=True)))
    out.append(("GRU_linear_before_reset_layout1", dict(op="GRU", linear_before_reset=1, layout=1)))
    out.append(("LSTM_input_forget", dict(op="LSTM", input_forget=1, peephole=True, initial_c=True,
                                          direction="bidirectional")))
    out.append(("RNN_affine_relu", dict(op="RNN", direction="bidirectional", activations=["Affine", "Relu"],
                                        activation_alpha=[0.7], activation_beta=[0.1])))
    out.append(("RNN_leakyrelu_default", dict(op="RNN", activations=["LeakyRelu"])))
    out.append(("RNN_thresholdedrelu", dict(op="RNN", activations=["ThresholdedRelu"], activation_alpha=[0.2])))
    out.append(("RNN_elu_softsign", dict(op="RNN", direction="bidirectional", activations=["Elu", "Softsign"],
                                         activation_alpha=[0.5])))
    out.append(("GRU_hardsigmoid_scaledtanh", dict(op="GRU", activations=["HardSigmoid", "ScaledTanh"],
                                                   activation_alpha=[0.3, 1.2], activation_beta=[0.4, 0.8])))
    out.append(("GRU_softplus", dict(op="GRU", activations=["Sigmoid", "Softplus"], clip=2.0)))
    out.append(("LSTM_activations", dict(op="LSTM", direction="bidirectional",
                                         activations=["HardSigmoid", "Elu", "Softsign", "Sigmoid", "LeakyRelu",
                                                      "ScaledTanh"],
                                         activation_alpha=[0.25, 0.9, 0.2, 1.5], activation_beta=[0.5, 0.6],
                                         peephole=True, clip=3.0)))
    return out


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[0]
    rng = np.random.default_rng(14)
    for builder, listed in ((build_case, cases()), (build_quantized_lstm, quantized_cases())):
        for name, kwargs in listed:
            model, feeds, results = builder(rng, **kwargs)
            case_dir = os.path.join(out_dir, name)
            os.makedirs(case_dir)
            onnx.save(model, os.path.join(case_dir, "model.onnx"))
            for feed_name, value in feeds.items():
                np.save(os.path.join(case_dir, f"input_{feed_name}.npy"), value)
            for i, value in enumerate(results):
                np.save(os.path.join(case_dir, f"output_{i}.npy"), np.ascontiguousarray(value))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
