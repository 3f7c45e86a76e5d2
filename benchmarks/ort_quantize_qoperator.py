#!/usr/bin/env python3
"""A QOperator int8 model as ONNX Runtime's quantize_static writes it with asymmetric weights
(WeightSymmetric=False): QLinearConv whose int8 weights have per-channel zero points anywhere in
-128..127, the case whittle's QLinearConv once ran on its int32 reference (benchmarks/RESULTS.md,
session 12). Calibrates on the samples of a benchmarks/corpus.py work folder:

    .venv/bin/python benchmarks/ort_quantize_qoperator.py MODEL.onnx WORK/NAME/calib.npz OUT.onnx

then time it: bench_vs_ort.py corpus-speed --file NAME=OUT.onnx ...
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import QuantType
from onnxruntime.quantization.shape_inference import quant_pre_process

from bench_common import ort_quantize_static  # noqa: E402  (beside this script)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model, calib, out = sys.argv[1:]
    arrays = np.load(calib)
    names = list(arrays.keys())
    samples = [{k: arrays[k][i] for k in names} for i in range(arrays[names[0]].shape[0])]
    pre = out + ".pre.onnx"
    quant_pre_process(model, pre, skip_symbolic_shape=True)
    ort_quantize_static(pre, out, samples, quant_format="QOperator", activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                        extra_options={"WeightSymmetric": False, "ActivationSymmetric": False})
    m = onnx.load(out)
    inits = {i.name: i for i in m.graph.initializer}
    zps = np.concatenate([numpy_helper.to_array(inits[n.input[5]]).ravel() for n in m.graph.node if n.op_type == "QLinearConv"])
    print(f"{out}: {zps.size} QLinearConv weight zero points, {int((zps != 0).sum())} not 0, range {zps.min()}..{zps.max()}")


if __name__ == "__main__":
    main()
