"""Writes small seed inputs for the libFuzzer harnesses (scripts/fuzz.sh runs it once per harness).

    python fuzz/make_seeds.py HARNESS OUT_DIR

HARNESS is model_load, optimize, npy, npz, image, labels or pipeline. Models are tiny graphs
that each pass of -O2 rewrites, plus models whose tensors use external data in the files that
fuzz::modelFolder() (fuzz/fuzz_util.h) creates: weights.bin (1024 float32 0, 1, 2, ...),
sub/more.bin (256 bytes) and ../outside.bin, which the loader must refuse.
"""

import io
import os
import sys
import zipfile

import numpy as np


def write(out_dir, name, data):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)


# ----------------------------------------------------------------------------- models

def models(out_dir):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    F = TensorProto.FLOAT

    def const(name, array):
        return numpy_helper.from_array(np.asarray(array), name)

    def save(name, nodes, inputs, outputs, inits=(), opset=17, ir_version=8):
        graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = ir_version
        write(out_dir, name + ".onnx", model.SerializeToString())

    def info(name, shape, dtype=F):
        return helper.make_tensor_value_info(name, dtype, shape)

    def external(name, dtype, dims, location, offset=None, length=None):
        t = TensorProto()
        t.name = name
        t.data_type = dtype
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", offset), ("length", length)):
            if value is not None:
                entry = t.external_data.add()
                entry.key = key
                entry.value = str(value)
        return t

    x3 = [info("x", [3])]
    y3 = [info("y", [3])]
    n = helper.make_node
    save("add_relu", [n("Add", ["x", "w"], ["s"]), n("Relu", ["s"], ["y"])], x3, y3, [const("w", np.float32([1, 2, 3]))])
    save("ext_aligned", [n("Add", ["x", "w"], ["y"])], x3, y3, [external("w", F, [3], "weights.bin", 0, 12)])
    save("ext_unaligned", [n("Add", ["x", "w"], ["y"])], x3, y3, [external("w", F, [3], "weights.bin", 4, 12)])
    save("ext_no_length", [n("Add", ["x", "w"], ["y"])], x3, y3, [external("w", F, [3], "weights.bin", 128)])
    save("ext_sub", [n("Cast", ["w"], ["c"], to=F), n("Add", ["x", "c"], ["y"])], x3, y3,
         [external("w", TensorProto.UINT8, [3], "sub/more.bin", 1, 3)])
    save("ext_escape", [n("Add", ["x", "w"], ["y"])], x3, y3, [external("w", F, [3], "../outside.bin", 0, 12)])
    save("ext_constant", [n("Constant", [], ["w"], value=external("", F, [3], "weights.bin", 64, 12)),
                          n("Add", ["x", "w"], ["y"])], x3, y3)

    xi = [info("x", [1, 2, 5, 5])]
    yo = [info("y", None)]
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    c4 = lambda name, v: const(name, np.full(4, v, np.float32))  # noqa: E731
    save("conv_bn", [n("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
                     n("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]), n("Relu", ["bn"], ["y"])], xi, yo,
         [const("W", w), c4("B", 0.1), c4("s", 1.5), c4("b", 0.2), c4("m", 0.3), c4("v", 2.0)])
    save("conv_mul_add", [n("Conv", ["x", "W"], ["c"]), n("Mul", ["c", "k"], ["m"]), n("Add", ["m", "a"], ["y"])], xi, yo,
         [const("W", w), const("k", np.float32([1, 2, 3, 4]).reshape(1, 4, 1, 1)),
          const("a", np.float32([4, 3, 2, 1]).reshape(1, 4, 1, 1))])
    save("pad_conv", [n("Pad", ["x", "p"], ["pd"]), n("Conv", ["pd", "W"], ["y"])], xi, yo,
         [const("p", np.int64([0, 0, 1, 1, 0, 0, 1, 1])), const("W", w)])
    save("conv_add_residual", [n("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), n("Conv", ["c", "W2"], ["d"], pads=[1, 1, 1, 1]),
                               n("Add", ["c", "d"], ["y"])], xi, yo,
         [const("W", w), const("W2", rng.standard_normal((4, 4, 3, 3)).astype(np.float32))])

    xm = [info("x", [2, 4])]
    save("matmul_add", [n("MatMul", ["x", "W"], ["mm"]), n("Add", ["mm", "b"], ["y"])], xm, yo,
         [const("W", rng.standard_normal((4, 3)).astype(np.float32)), const("b", np.float32([1, 2, 3]))])
    save("matmul_bn", [n("MatMul", ["x", "W"], ["mm"]), n("BatchNormalization", ["mm", "s", "b", "m", "v"], ["y"])], xm, yo,
         [const("W", rng.standard_normal((4, 3)).astype(np.float32))] +
         [const(k, np.float32([1, 2, 3]) * i) for i, k in enumerate(["s", "b", "m", "v"], 1)])
    save("gemm_bn", [n("Gemm", ["x", "W", "c"], ["g"], transB=1), n("BatchNormalization", ["g", "s", "b", "m", "v"], ["y"])],
         xm, yo, [const("W", rng.standard_normal((3, 4)).astype(np.float32)), const("c", np.float32([0, 1, 2]))] +
         [const(k, np.float32([1, 2, 3]) * i) for i, k in enumerate(["s", "b", "m", "v"], 1)])
    save("transpose_gemm", [n("Transpose", ["x"], ["t"], perm=[1, 0]), n("Gemm", ["t", "W"], ["y"])], xm, yo,
         [const("W", rng.standard_normal((2, 3)).astype(np.float32))])
    save("cancel_transposes", [n("Transpose", ["x"], ["t"], perm=[1, 0]), n("Transpose", ["t"], ["y"], perm=[1, 0])], xm, yo)
    save("identity_chain", [n("Identity", ["x"], ["i"]), n("Dropout", ["i"], ["d"]), n("Reshape", ["d", "shape"], ["r"]),
                            n("Reshape", ["r", "shape2"], ["y"])], xm, yo,
         [const("shape", np.int64([4, 2])), const("shape2", np.int64([8]))])
    save("cse", [n("Relu", ["x"], ["a"]), n("Relu", ["x"], ["b"]), n("Add", ["a", "b"], ["y"])], xm, yo)
    save("fold", [n("Constant", [], ["k"], value=const("", np.float32([[1, 2, 3, 4]]))), n("Mul", ["k", "two"], ["k2"]),
                  n("Shape", ["x"], ["sh"]), n("Gather", ["sh", "zero"], ["g"], axis=0), n("Unsqueeze", ["g", "zero1"], ["u"]),
                  n("Concat", ["u", "m1"], ["s2"], axis=0), n("Reshape", ["x", "s2"], ["r"]), n("Add", ["r", "k2"], ["y"])],
         xm, yo, [const("two", np.float32(2)), const("zero", np.int64(0)), const("zero1", np.int64([0])),
                  const("m1", np.int64([-1]))])
    ln = [info("x", [2, 8])]
    save("layernorm", [n("ReduceMean", ["x"], ["mu"], axes=[-1]), n("Sub", ["x", "mu"], ["d"]), n("Pow", ["d", "two"], ["p"]),
                       n("ReduceMean", ["p"], ["var"], axes=[-1]), n("Add", ["var", "eps"], ["ve"]), n("Sqrt", ["ve"], ["sd"]),
                       n("Div", ["d", "sd"], ["nrm"]), n("Mul", ["nrm", "g"], ["sc"]), n("Add", ["sc", "b"], ["y"])], ln, yo,
         [const("two", np.float32(2)), const("eps", np.float32(1e-5)), const("g", np.ones(8, np.float32)),
          const("b", np.zeros(8, np.float32))], opset=17)
    save("gelu", [n("Div", ["x", "sqrt2"], ["d"]), n("Erf", ["d"], ["e"]), n("Add", ["e", "one"], ["a"]),
                  n("Mul", ["x", "a"], ["m"]), n("Mul", ["m", "half"], ["y"])], ln, yo,
         [const("sqrt2", np.float32(1.4142135)), const("one", np.float32(1)), const("half", np.float32(0.5))], opset=20,
         ir_version=9)
    then_graph = helper.make_graph([n("Add", ["x", "w"], ["t"])], "then", [], [info("t", [3])])
    else_graph = helper.make_graph([n("Sub", ["x", "w"], ["e"])], "else", [], [info("e", [3])])
    save("if_capture", [n("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)],
         x3 + [info("cond", [], TensorProto.BOOL)], y3, [const("w", np.float32([1, 2, 3]))])
    save("old_ir_init_input", [n("Add", ["x", "w"], ["y"])], x3 + [info("w", [3])], y3, [const("w", np.float32([1, 2, 3]))],
         opset=9, ir_version=3)
    save("dequant", [n("DequantizeLinear", ["q", "sc", "zp"], ["dq"]), n("Add", ["x", "dq"], ["y"])], x3, y3,
         [const("q", np.int8([1, -2, 3])), const("sc", np.float32(0.5)), const("zp", np.int8(0))], opset=13)


# ----------------------------------------------------------------------------- arrays

def npy_bytes(array, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, array)
    else:
        np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


def npys(out_dir):
    arrays = {
        "f4": np.arange(12, dtype=np.float32).reshape(3, 4),
        "f2": np.arange(6, dtype=np.float16),
        "i8_scalar": np.int64(7),
        "u1_empty": np.zeros((0, 3), np.uint8),
        "b1": np.array([True, False, True]),
        "i2_3d": np.arange(24, dtype=np.int16).reshape(2, 3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        "big_endian": np.arange(4, dtype=">i4"),
    }
    for name, array in arrays.items():
        write(out_dir, name + ".npy", npy_bytes(array))
    write(out_dir, "v2.npy", npy_bytes(np.arange(5, dtype=np.uint16), version=(2, 0)))
    write(out_dir, "v3.npy", npy_bytes(np.arange(5, dtype=np.int8), version=(3, 0)))


def npzs(out_dir):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.arange(5, dtype=np.int64)
    for name, saver in (("stored", np.savez), ("deflated", np.savez_compressed)):
        buf = io.BytesIO()
        saver(buf, input=a, labels=b)
        write(out_dir, name + ".npz", buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("big.npy", "w", force_zip64=True) as f:
            f.write(npy_bytes(np.zeros((64, 16), np.uint8)))
        z.writestr("folder/", b"")
        z.writestr("notes.txt", b"not an array")
    write(out_dir, "zip64.npz", buf.getvalue())


# ----------------------------------------------------------------------------- images

def images(out_dir):
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8), "RGB")
    grey = rgb.convert("L")

    def save(name, image, fmt, **kwargs):
        buf = io.BytesIO()
        image.save(buf, fmt, **kwargs)
        write(out_dir, name, buf.getvalue())

    save("rgb.jpg", rgb, "JPEG", quality=90)
    save("grey.jpg", grey, "JPEG")
    save("progressive.jpg", rgb, "JPEG", progressive=True)
    save("subsampled.jpg", rgb, "JPEG", subsampling=2)
    save("cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    save("rgb.png", rgb, "PNG")
    save("grey.png", grey, "PNG")
    save("rgba.png", rgb.convert("RGBA"), "PNG")
    save("palette.png", rgb.convert("P"), "PNG")
    save("interlaced.png", rgb, "PNG", interlace=1)
    save("la.png", rgb.convert("LA"), "PNG")
    save("bilevel.png", rgb.convert("1"), "PNG")
    save("grey16.png", Image.fromarray(rng.integers(0, 65536, (5, 7), dtype=np.uint16)), "PNG")


# ----------------------------------------------------------------------------- labels, pipelines

def labels(out_dir):
    write(out_dir, "labels.tsv", b"images/a.JPEG\t0\nimages/b.JPEG\t17\n")
    write(out_dir, "y_labels.csv", b"a.bin,10,7\nb.bin,10,0\n")
    write(out_dir, "generic.csv", b"file,label\na.png,1\nb.png,2\n")
    write(out_dir, "one_per_line.txt", b"3\n1\n\n4\n")
    idx = bytes([0, 0, 8, 1, 0, 0, 0, 4, 7, 2, 1, 0])
    write(out_dir, "labels-idx1-ubyte", idx)
    import gzip
    write(out_dir, "labels-idx1-ubyte.gz", gzip.compress(idx))


def pipelines(out_dir):
    seeds = {
        "o2.txt": "fold-constants,eliminate-dead,fuse-conv-bn,fuse-matmul-add",
        "options.txt": "quantize-int8{method=entropy,per-channel=false,op-types=Conv;MatMul},convert-fp16{keep-io-types}",
        "prune.txt": "prune-nm{n=2,m=4}, eliminate-identity ,,cse",
        "recipe.json": '[{"pass": "fold-constants", "max-growth-bytes": 1024}, "eliminate-dead",'
                       ' {"pass": "quantize-dynamic", "per-channel": false}]',
        "recipe_object.json": '{"passes": [{"pass": "fuse-conv-bn"}]}',
        "recipe.yaml": "---\n- pass: fold-constants  # comment\n  max-growth-bytes: 4096\n- pass: 'convert-bf16'\n"
                       "  block-ops: \"Resize;TopK\"\n-\n  pass: cse\n",
    }
    for name, text in seeds.items():
        write(out_dir, name, text.encode())


def main():
    harness, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    makers = {"model_load": models, "optimize": models, "npy": npys, "npz": npzs, "image": images, "labels": labels,
              "pipeline": pipelines}
    makers[harness](out_dir)


if __name__ == "__main__":
    main()
