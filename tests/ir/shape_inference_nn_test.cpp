// Shape rules of Conv, ConvTranspose, pooling, MatMul and Gemm, and of their integer and
// QLinear forms: window arithmetic with auto_pad, symbolic spatial dims, broadcasting.
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::stringAttr;
using testing::typeOf;

TEST_CASE("Conv output sizes: pads, strides, dilations, groups, auto_pad", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 9, 9});
  ir::Value* w = b.weight("w", {16, 3, 3, 3});
  ir::Value* padded = b.node("Conv", {x, w}, {ints("pads", {1, 1, 1, 1}), ints("strides", {2, 2})});
  ir::Value* same = b.node("Conv", {x, w}, {stringAttr("auto_pad", "SAME_UPPER"), ints("strides", {2, 2})});
  ir::Value* valid = b.node("Conv", {x, w}, {stringAttr("auto_pad", "VALID"), ints("strides", {2, 2})});
  ir::Value* dilated = b.node("Conv", {x, w}, {ints("dilations", {2, 2})});
  ir::Value* grouped = b.node("Conv", {x, b.weight("wg", {6, 1, 3, 3})}, {intAttr("group", 3)});
  ir::Value* oneD = b.node("Conv", {b.input("s", DataType::kFloat, {1, 2, 16}), b.weight("w1", {4, 2, 3})});
  ir::Value* kernelAttr = b.node("Conv", {x, w}, {ints("kernel_shape", {3, 3})});
  ir::Model model;
  testing::buildAndInfer(b, model, 17);
  CHECK(typeOf(padded) == "float32[1,16,5,5]");
  CHECK(typeOf(same) == "float32[1,16,5,5]");
  CHECK(typeOf(valid) == "float32[1,16,4,4]");
  CHECK(typeOf(dilated) == "float32[1,16,5,5]");
  CHECK(typeOf(grouped) == "float32[1,6,7,7]");
  CHECK(typeOf(oneD) == "float32[1,4,14]");
  CHECK(typeOf(kernelAttr) == "float32[1,16,7,7]");
}

TEST_CASE("Conv keeps symbolic spatial dims where the window keeps the size", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"N", "3", "H", "W"}));
  ir::Value* w = b.weight("w", {16, 3, 3, 3});
  ir::Value* keep = b.node("Conv", {x, w}, {ints("pads", {1, 1, 1, 1})});
  ir::Value* same = b.node("Conv", {x, w}, {stringAttr("auto_pad", "SAME_LOWER")});
  ir::Value* strided = b.node("Conv", {x, w}, {ints("pads", {1, 1, 1, 1}), ints("strides", {2, 2})});
  ir::Value* pointwise = b.node("Conv", {strided, b.weight("w2", {8, 16, 1, 1})});
  ir::Value* pool = b.node("MaxPool", {x}, {ints("kernel_shape", {3, 3}), ints("pads", {1, 1, 1, 1})});
  ir::Value* gap = b.node("GlobalAveragePool", {x});
  ir::Model model;
  testing::buildAndInfer(b, model, 17);
  CHECK(typeOf(keep) == "float32[N,16,H,W]");
  CHECK(typeOf(same) == "float32[N,16,H,W]");
  CHECK(typeOf(strided) == "float32[N,16,?,?]");
  CHECK(typeOf(pointwise) == "float32[N,8,?,?]");
  CHECK(typeOf(pool) == "float32[N,3,H,W]");
  CHECK(typeOf(gap) == "float32[N,3,1,1]");
}

TEST_CASE("ConvTranspose: strides, groups, output_padding, output_shape, auto_pad", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {1, 4, 5, 5});
  ir::Value* up = b.node("ConvTranspose", {x, b.weight("w", {4, 2, 3, 3})}, {ints("strides", {2, 2})});
  ir::Value* grouped = b.node(
      "ConvTranspose", {x, b.weight("wg", {4, 1, 3, 3})},
      {intAttr("group", 2), ints("pads", {1, 1, 1, 1}), ints("strides", {2, 2}), ints("output_padding", {1, 1})});
  ir::Value* fixed = b.node("ConvTranspose", {x, b.weight("wf", {4, 2, 3, 3})},
                            {ints("strides", {2, 2}), ints("output_shape", {12, 12})});
  ir::Value* same = b.node("ConvTranspose", {x, b.weight("ws", {4, 2, 3, 3})},
                           {ints("strides", {2, 2}), stringAttr("auto_pad", "SAME_UPPER")});
  ir::Model model;
  testing::buildAndInfer(b, model, 17);
  CHECK(typeOf(up) == "float32[1,2,11,11]");
  CHECK(typeOf(grouped) == "float32[1,2,10,10]");
  CHECK(typeOf(fixed) == "float32[1,2,12,12]");
  CHECK(typeOf(same) == "float32[1,2,10,10]");
}

TEST_CASE("Pooling: ceil_mode, indices, dilations, global pools, MaxUnpool", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 9, 9});
  ir::Value* pool = b.node("MaxPool", {x}, {ints("kernel_shape", {3, 3}), ints("strides", {2, 2})});
  std::vector<ir::Value*> ceil =
      b.nodeN("MaxPool", {x}, 2, {ints("kernel_shape", {2, 2}), ints("strides", {2, 2}), intAttr("ceil_mode", 1)});
  ir::Value* avg =
      b.node("AveragePool", {x},
             {ints("kernel_shape", {3, 3}), stringAttr("auto_pad", "SAME_UPPER"), ints("strides", {2, 2})});
  ir::Value* dilated = b.node("MaxPool", {x}, {ints("kernel_shape", {2, 2}), ints("dilations", {2, 2})});
  ir::Value* lp = b.node("LpPool", {x}, {ints("kernel_shape", {3, 3})});
  ir::Value* gmp = b.node("GlobalMaxPool", {x});
  ir::Value* unpool = b.node("MaxUnpool", {pool, b.node("Cast", {pool}, {intAttr("to", 7)})},
                             {ints("kernel_shape", {3, 3}), ints("strides", {2, 2})});
  ir::Model model;
  testing::buildAndInfer(b, model, 12);
  CHECK(typeOf(pool) == "float32[1,3,4,4]");
  CHECK(typeOf(ceil[0]) == "float32[1,3,5,5]");
  CHECK(typeOf(ceil[1]) == "int64[1,3,5,5]");
  CHECK(typeOf(avg) == "float32[1,3,5,5]");
  CHECK(typeOf(dilated) == "float32[1,3,7,7]");
  CHECK(typeOf(lp) == "float32[1,3,7,7]");
  CHECK(typeOf(gmp) == "float32[1,3,1,1]");
  CHECK(typeOf(unpool) == "float32[1,3,9,9]");
}

TEST_CASE("MatMul broadcasting, 1-D operands and Gemm transposes", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* a = b.symbolicInput("a", DataType::kFloat, dims({"batch", "seq", "64"}));
  ir::Value* proj = b.node("MatMul", {a, b.weight("w", {64, 32})});
  ir::Value* batched = b.node("MatMul", {b.input("p", DataType::kFloat, {2, 1, 3, 5}), b.weight("q", {4, 5, 6})});
  ir::Value* vecMat = b.node("MatMul", {b.weight("v", {5}), b.weight("m", {5, 6})});
  ir::Value* matVec = b.node("MatMul", {b.weight("m2", {3, 5}), b.weight("v2", {5})});
  ir::Value* dot = b.node("MatMul", {b.weight("v3", {5}), b.weight("v4", {5})});
  ir::Value* gemm = b.node("Gemm", {b.input("g", DataType::kFloat, {3, 2}), b.weight("gb", {5, 3})},
                           {intAttr("transA", 1), intAttr("transB", 1)});
  ir::Value* fc = b.node("Gemm", {b.symbolicInput("f", DataType::kFloat, dims({"batch", "8"})), b.weight("fw", {8, 4}),
                                  b.weight("fb", {4})});
  ir::Model model;
  testing::buildAndInfer(b, model, 13);
  CHECK(typeOf(proj) == "float32[batch,seq,32]");
  CHECK(typeOf(batched) == "float32[2,4,3,6]");
  CHECK(typeOf(vecMat) == "float32[6]");
  CHECK(typeOf(matVec) == "float32[3]");
  CHECK(typeOf(dot) == "float32[]");
  CHECK(typeOf(gemm) == "float32[2,5]");
  CHECK(typeOf(fc) == "float32[batch,4]");
}

TEST_CASE("Integer and QLinear compute ops: int32 accumulators, the output zero point's type", "[ir][shape]") {
  GraphBuilder b;
  auto scale = [&](const std::string& name) { return b.weight(name, {}, DataType::kFloat, 0.1, 0.2); };
  auto zp = [&](const std::string& name, DataType t) { return b.weight(name, {}, t, 0, 0); };
  ir::Value* x = b.symbolicInput("x", DataType::kUint8, dims({"N", "3", "8", "8"}));
  ir::Value* w = b.weight("w", {4, 3, 3, 3}, DataType::kInt8);
  ir::Value* qconv = b.node("QLinearConv",
                            {x, scale("xs"), zp("xz", DataType::kUint8), w, scale("ws"), zp("wz", DataType::kInt8),
                             scale("ys"), zp("yz", DataType::kUint8)},
                            {ints("pads", {1, 1, 1, 1})});
  ir::Value* iconv = b.node("ConvInteger", {x, w});
  ir::Value* a = b.input("a", DataType::kInt8, {2, 3, 5});
  ir::Value* bw = b.weight("bw", {5, 7}, DataType::kInt8);
  ir::Value* imm = b.node("MatMulInteger", {a, bw});
  ir::Value* qmm = b.node("QLinearMatMul", {a, scale("as"), zp("az", DataType::kInt8), bw, scale("bs"),
                                            zp("bz", DataType::kInt8), scale("cs"), zp("cz", DataType::kInt8)});
  ir::Value* qpool = b.node("QLinearGlobalAveragePool",
                            {qconv, scale("ps"), zp("pz", DataType::kUint8), scale("qs"), zp("qz", DataType::kUint8)},
                            {intAttr("channels_last", 0)}, "", "com.microsoft");
  ir::Value* nhwc = b.input("nhwc", DataType::kUint8, {1, 6, 6, 4});
  ir::Value* qavg = b.node(
      "QLinearAveragePool", {nhwc, scale("s1"), zp("z1", DataType::kUint8), scale("s2"), zp("z2", DataType::kUint8)},
      {ints("kernel_shape", {2, 2}), ints("strides", {2, 2}), intAttr("channels_last", 1)}, "", "com.microsoft");
  ir::Value* qgemm = b.node("QGemm",
                            {b.input("ga", DataType::kUint8, {2, 5}), scale("gs"), zp("gz", DataType::kUint8),
                             b.weight("gw", {7, 5}, DataType::kInt8), scale("gws"), zp("gwz", DataType::kInt8)},
                            {intAttr("transB", 1)}, "", "com.microsoft");
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 13);
  CHECK(r.unresolved.empty());
  CHECK(typeOf(qconv) == "uint8[N,4,8,8]");
  CHECK(typeOf(iconv) == "int32[N,4,6,6]");
  CHECK(typeOf(imm) == "int32[2,3,7]");
  CHECK(typeOf(qmm) == "int8[2,3,7]");
  CHECK(typeOf(qpool) == "uint8[N,4,1,1]");
  CHECK(typeOf(qavg) == "uint8[1,3,3,4]");
  CHECK(typeOf(qgemm) == "float32[2,7]");  // no y_scale: a float output
}

TEST_CASE("MatMulNBits: A's leading dims and N, in A's type", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* a = b.symbolicInput("a", DataType::kFloat, dims({"batch", "seq", "40"}));
  ir::Value* y = b.node("MatMulNBits",
                        {a, b.weight("q", {6, 2, 16}, DataType::kUint8), b.weight("s", {12})},
                        {intAttr("K", 40), intAttr("N", 6), intAttr("bits", 4), intAttr("block_size", 32)}, "",
                        "com.microsoft");
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 13);
  CHECK(r.unresolved.empty());
  CHECK(typeOf(y) == "float32[batch,seq,6]");
}

TEST_CASE("Einsum: explicit and implicit outputs, ellipsis broadcasting", "[ir][shape]") {
  GraphBuilder b;
  auto eq = [](const std::string& e) { return ir::Attribute::makeString("equation", e); };
  ir::Value* q = b.symbolicInput("q", DataType::kFloat, dims({"batch", "seq", "64"}));
  ir::Value* k = b.symbolicInput("k", DataType::kFloat, dims({"batch", "ctx", "64"}));
  ir::Value* scores = b.node("Einsum", {q, k}, {eq("bid, bjd -> bij")});
  ir::Value* implicit =
      b.node("Einsum", {b.input("a", DataType::kFloat, {2, 3}), b.weight("w", {3, 4})}, {eq("ij,jk")});
  ir::Value* ellipsis = b.node("Einsum", {b.input("x", DataType::kFloat, {5, 1, 2, 3}), b.weight("y", {4, 3, 6})},
                               {eq("...ij,...jk->...ik")});
  ir::Value* diagonal = b.node("Einsum", {b.input("m", DataType::kFloat, {4, 4})}, {eq("ii->i")});
  ir::Value* bad = b.node("Einsum", {q}, {eq("ij->ij")});  // rank 3 for two letters
  ir::Model model;
  testing::buildAndInfer(b, model, 12);
  CHECK(typeOf(scores) == "float32[batch,seq,ctx]");
  CHECK(typeOf(implicit) == "float32[2,4]");
  CHECK(typeOf(ellipsis) == "float32[5,4,2,6]");
  CHECK(typeOf(diagonal) == "float32[4]");
  CHECK(typeOf(bad) == "float32[*]");
}

TEST_CASE("LSTM, GRU and RNN outputs, with layout 1 from opset 14", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"seq", "batch", "10"}));
  std::vector<ir::Value*> lstm = b.nodeN("LSTM", {x, b.weight("w", {2, 80, 10}), b.weight("r", {2, 80, 20})}, 3,
                                         {intAttr("hidden_size", 20), stringAttr("direction", "bidirectional")});
  ir::Value* xb = b.symbolicInput("xb", DataType::kFloat, dims({"batch", "seq", "10"}));
  std::vector<ir::Value*> gru = b.nodeN("GRU", {xb, b.weight("gw", {1, 60, 10}), b.weight("gr", {1, 60, 20})}, 2,
                                        {intAttr("hidden_size", 20), intAttr("layout", 1)});
  ir::Model model;
  testing::buildAndInfer(b, model, 14);
  CHECK(typeOf(lstm[0]) == "float32[seq,2,batch,20]");
  CHECK(typeOf(lstm[1]) == "float32[2,batch,20]");
  CHECK(typeOf(lstm[2]) == "float32[2,batch,20]");
  CHECK(typeOf(gru[0]) == "float32[batch,seq,1,20]");
  CHECK(typeOf(gru[1]) == "float32[batch,1,20]");
}
