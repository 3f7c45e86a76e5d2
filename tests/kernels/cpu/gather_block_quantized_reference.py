"""com.microsoft GatherBlockQuantized models and ONNX Runtime's outputs on them, for
tests/kernels/cpu/gather_block_quantized_test.cpp.

    gather_block_quantized_reference.py DIR
writes DIR/NAME.onnx and DIR/NAME.npz (arrays ids and y) per case and prints the case names.
Cases: int4 and uint4 tables with and without zero points, uint8 tables packed 4 bits a byte
(MatMulNBits' convention: default zero point 8) with and without zero points, blocks of 16 and
32, a 3-D table gathered along axis 1."""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
rng = np.random.default_rng(16)


def pack4(values):
    flat = (values.reshape(-1) & 15).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, 0)
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


def case(name, kind, dims, block, with_zp, gather_axis, ids):
    last = dims[-1]
    blocks = (last + block - 1) // block
    sdims = list(dims[:-1]) + [blocks]
    scales = rng.uniform(0.01, 0.1, size=sdims).astype(np.float32)
    if kind == "int4":
        q = rng.integers(-8, 8, size=dims)
        z = rng.integers(-8, 8, size=sdims)
        data = helper.make_tensor("data", TensorProto.INT4, dims, pack4(q).tobytes(), raw=True)
        zp = helper.make_tensor("zp", TensorProto.INT4, sdims, pack4(z).tobytes(), raw=True)
    elif kind == "uint4":
        q = rng.integers(0, 16, size=dims)
        z = rng.integers(0, 16, size=sdims)
        data = helper.make_tensor("data", TensorProto.UINT4, dims, pack4(q).tobytes(), raw=True)
        zp = helper.make_tensor("zp", TensorProto.UINT4, sdims, pack4(z).tobytes(), raw=True)
    else:  # uint8, 4 bits a byte along the last axis
        q = rng.integers(0, 16, size=dims)
        z = rng.integers(0, 16, size=sdims)
        packed = pack4(q).reshape(list(dims[:-1]) + [last // 2])
        zpacked = np.stack([pack4(row) for row in z.reshape(-1, blocks)]).reshape(list(sdims[:-1]) + [(blocks + 1) // 2])
        data = numpy_helper.from_array(packed, "data")
        zp = numpy_helper.from_array(zpacked, "zp")
    inits = [data, numpy_helper.from_array(scales, "scales")]
    inputs = ["data", "ids", "scales"]
    if with_zp:
        inits.append(zp)
        inputs.append("zp")
    attrs = dict(gather_axis=gather_axis, quantize_axis=len(dims) - 1, block_size=block)
    if kind == "uint8":
        attrs["bits"] = 4
    node = helper.make_node("GatherBlockQuantized", inputs, ["y"], domain="com.microsoft", **attrs)
    ids = np.array(ids, dtype=np.int64)
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info("ids", TensorProto.INT64, list(ids.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=10)
    path = os.path.join(out, name)
    onnx.save(model, path + ".onnx")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    y = ort.InferenceSession(path + ".onnx", so, providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    np.savez(path + ".npz", ids=ids, y=y)
    print(name)


case("int4_zp", "int4", [10, 64], 32, True, 0, [[3, 0, 9], [9, 2, 3]])
case("int4", "int4", [10, 48], 16, False, 0, [1, 7])
case("uint4_zp", "uint4", [7, 32], 16, True, 0, [[6], [0]])
case("uint8_zp", "uint8", [12, 64], 16, True, 0, [[11, 4, 5, 0]])
case("uint8", "uint8", [12, 96], 32, False, 0, [2, 2, 10])
case("int4_axis1", "int4", [2, 5, 32], 16, True, 1, [4, 1, 0])
