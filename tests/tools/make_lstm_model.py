#!/usr/bin/env python3
"""A small sequence classifier with a bidirectional LSTM, and data for it.

usage: make_lstm_model.py OUT_DIR

Writes OUT_DIR/lstm.onnx (x [batch, 16, 8] -> Transpose -> LSTM (bidirectional, hidden 12,
bias) -> Y_h -> Transpose -> Reshape [batch, 24] -> MatMul + Add -> logits [batch, 5]) and
OUT_DIR/data.npy (32 seeded samples [32, 16, 8]).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[0]
    rng = np.random.default_rng(7)
    seq, feat, hidden, classes = 16, 8, 12, 5

    def init(name, shape, scale):
        return numpy_helper.from_array(rng.uniform(-scale, scale, shape).astype(np.float32), name)

    inits = [init("W", (2, 4 * hidden, feat), 0.4), init("R", (2, 4 * hidden, hidden), 0.3),
             init("B", (2, 8 * hidden), 0.1), init("fc_w", (2 * hidden, classes), 0.5), init("fc_b", (classes,), 0.1),
             numpy_helper.from_array(np.array([-1, 2 * hidden], dtype=np.int64), "flat_shape")]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2], name="to_time_major"),
        helper.make_node("LSTM", ["x_t", "W", "R", "B"], ["", "h_n"], hidden_size=hidden, direction="bidirectional",
                         name="lstm"),
        helper.make_node("Transpose", ["h_n"], ["h_b"], perm=[1, 0, 2], name="to_batch_major"),
        helper.make_node("Reshape", ["h_b", "flat_shape"], ["h_flat"], name="flatten"),
        helper.make_node("MatMul", ["h_flat", "fc_w"], ["fc"], name="fc"),
        helper.make_node("Add", ["fc", "fc_b"], ["logits"], name="fc_bias"),
    ]
    graph = helper.make_graph(nodes, "lstm_classifier",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", seq, feat])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "lstm.onnx"))
    np.save(os.path.join(out, "data.npy"), rng.standard_normal((32, seq, feat)).astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
