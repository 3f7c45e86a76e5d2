"""Weight-only quantized MatMul models made with ONNX Runtime's own RTN block quantizer (the C++
functions that onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer calls), and
ONNX Runtime's outputs on them, for tests/kernels/cpu/matmul_nbits_test.cpp.

    nbits_ort_reference.py DIR
writes, for each case NAME, DIR/NAME.onnx and DIR/NAME.npz (arrays a and y: ONNX Runtime's
output at 1 thread), and prints the case names, one a line. Cases: 4 and 8 bits, blocks 32
and 128, symmetric and not, as com.microsoft MatMulNBits (nbits) and, for 4 bits, as opset-21
block-wise DequantizeLinear -> MatMul (qdq); K = 200 (not a multiple of either block),
N = 47, A [2, 3, K] and [1, K] and [64, K]. The MatMulNBits models also come with accuracy_level 4
(NAME_acc4: ONNX Runtime quantizes A to int8 per block), their npz holding y_float as well: ONNX
Runtime's output on the same weights at accuracy_level 0.

The qdq models run with ONNX Runtime's graph optimizations off: with them on, ONNX Runtime fuses
DequantizeLinear -> MatMul into MatMulNBits at accuracy level 4 (its session option
session.qdq_matmulnbits_accuracy_level defaults to 4: activations quantized to int8), which is
0.7 % off the ONNX definition on these models; unoptimized it computes the definition exactly,
as onnx.reference does."""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits, quantize_qdq_matmul_4bits

out = sys.argv[1]
K, N = 200, 47
rng = np.random.default_rng(16)
w = rng.normal(size=(K, N)).astype(np.float32) * 0.1
bias = rng.normal(size=(N,)).astype(np.float32)


def nbits_model(bits, block, sym, with_bias, accuracy_level=0):
    k_blocks = (K + block - 1) // block
    kpack = 8 // bits
    padded = np.pad(w, ((0, k_blocks * block - K), (0, 0)))
    packed = np.zeros((N, k_blocks, block // kpack), dtype=np.uint8)
    zp = np.zeros((N, (k_blocks + kpack - 1) // kpack), dtype=np.uint8)
    scales = np.zeros((N, k_blocks), dtype=np.float32)
    (quantize_matmul_4bits if bits == 4 else quantize_matmul_8bits)(packed, padded, scales, zp, block, N, K, sym)
    inits = [numpy_helper.from_array(packed, "B"), numpy_helper.from_array(scales.reshape(-1), "scales")]
    inputs = ["a", "B", "scales"]
    if not sym:
        inits.append(numpy_helper.from_array(zp.reshape(-1), "zp"))
        inputs.append("zp")
    if with_bias:
        inputs += [""] * (5 - len(inputs)) + ["bias"]
        inits.append(numpy_helper.from_array(bias, "bias"))
    node = helper.make_node("MatMulNBits", inputs, ["y"], domain="com.microsoft", K=K, N=N, bits=bits, block_size=block,
                            accuracy_level=accuracy_level)
    return [node], inits, [helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]


def qdq_model(block, sym):
    k_blocks = (K + block - 1) // block
    packed = np.zeros((K * N + 1) // 2, dtype=np.uint8)
    zp = np.zeros((N * k_blocks + 1) // 2, dtype=np.uint8)
    scales = np.zeros((k_blocks, N), dtype=np.float32)
    quantize_qdq_matmul_4bits(packed, w, scales, zp, block, N, K, sym)
    qtype = TensorProto.INT4 if sym else TensorProto.UINT4
    q = helper.make_tensor("q", qtype, [K, N], packed.tobytes(), raw=True)
    inits = [q, numpy_helper.from_array(scales, "s")]
    dq_inputs = ["q", "s"]
    if not sym:
        inits.append(helper.make_tensor("z", qtype, [k_blocks, N], zp.tobytes(), raw=True))
        dq_inputs.append("z")
    nodes = [helper.make_node("DequantizeLinear", dq_inputs, ["w"], axis=0, block_size=block),
             helper.make_node("MatMul", ["a", "w"], ["y"])]
    return nodes, inits, [helper.make_opsetid("", 21)]


so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.log_severity_level = 3
plain = ort.SessionOptions()
plain.intra_op_num_threads = 1
plain.log_severity_level = 3
plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
cases = []
for bits in (4, 8):
    for block in (32, 128):
        for sym in (True, False):
            name = f"nbits_b{bits}_k{block}_{'sym' if sym else 'asym'}"
            cases.append((name, nbits_model(bits, block, sym, not sym)))
            cases.append((name + "_acc4", nbits_model(bits, block, sym, not sym, accuracy_level=4)))
for block in (32, 128):
    for sym in (True, False):
        cases.append((f"qdq_b4_k{block}_{'sym' if sym else 'asym'}", qdq_model(block, sym)))
float_models = {}
for name, (nodes, inits, opsets) in cases:
    for shape_name, a_shape in (("m6", [2, 3, K]), ("m1", [1, K]), ("m64", [64, K])):
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
        model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
        path = os.path.join(out, f"{name}_{shape_name}")
        onnx.save(model, path + ".onnx")
        a = rng.normal(size=a_shape).astype(np.float32)
        options = plain if name.startswith("qdq") else so
        y = ort.InferenceSession(path + ".onnx", options, providers=["CPUExecutionProvider"]).run(None, {"a": a})[0]
        arrays = {"a": a, "y": y}
        if name.endswith("_acc4"):
            level0 = float_models[f"{name[:-len('_acc4')]}_{shape_name}"]
            arrays["y_float"] = ort.InferenceSession(level0, so, providers=["CPUExecutionProvider"]).run(None, {"a": a})[0]
        else:
            float_models[f"{name}_{shape_name}"] = path + ".onnx"
        np.savez(path + ".npz", **arrays)
        print(f"{name}_{shape_name}")
