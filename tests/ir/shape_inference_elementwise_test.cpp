// Shape rules of elementwise ops: broadcasting with symbolic dims, element types of
// comparisons and casts, normalization outputs, Dropout by opset, the quantization ops.
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::typeOf;

TEST_CASE("Elementwise ops broadcast and keep symbolic dims", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "1", "4"}));
  ir::Value* y = b.input("y", DataType::kFloat, {3, 1});
  ir::Value* n = b.symbolicInput("n", DataType::kFloat, dims({"N"}));
  ir::Value* m = b.symbolicInput("m", DataType::kFloat, dims({"M"}));
  ir::Value* relu = b.node("Relu", {x});
  ir::Value* add = b.node("Add", {relu, y});
  ir::Value* mixed = b.node("Mul", {n, m});
  ir::Value* same = b.node("Sub", {n, n});
  ir::Value* withOne = b.node("Div", {n, b.weight("one", {1})});
  ir::Value* less = b.node("Less", {x, y});
  ir::Value* cast = b.node("Cast", {x}, {intAttr("to", 7)});
  ir::Value* where = b.node("Where", {less, add, b.weight("zero", {1})});
  ir::Value* nan = b.node("IsNaN", {x});
  ir::Value* sum = b.node("Sum", {x, y, b.weight("v", {4})});
  ir::Value* castLike = b.node("CastLike", {x, b.weight("h", {1}, DataType::kFloat16)});
  ir::Value* prelu = b.node("PRelu", {x, b.weight("slope", {1})});
  ir::Value* clip = b.node("Clip", {x, b.weight("lo", {}), b.weight("hi", {})});
  ir::Value* logic = b.node("And", {b.node("Not", {less}), less});
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 17);
  CHECK(r.unresolved.empty());
  CHECK(r.conflicts.empty());
  CHECK(typeOf(relu) == "float32[batch,1,4]");
  CHECK(typeOf(add) == "float32[batch,3,4]");
  CHECK(typeOf(mixed) == "float32[?]");  // N or M: not known which
  CHECK(typeOf(same) == "float32[N]");
  CHECK(typeOf(withOne) == "float32[N]");
  CHECK(typeOf(less) == "bool[batch,3,4]");
  CHECK(typeOf(cast) == "int64[batch,1,4]");
  CHECK(typeOf(where) == "float32[batch,3,4]");
  CHECK(typeOf(nan) == "bool[batch,1,4]");
  CHECK(typeOf(sum) == "float32[batch,3,4]");
  CHECK(typeOf(castLike) == "float16[batch,1,4]");
  CHECK(typeOf(prelu) == "float32[batch,1,4]");
  CHECK(typeOf(clip) == "float32[batch,1,4]");
  CHECK(typeOf(logic) == "bool[batch,3,4]");
}

TEST_CASE("Incompatible broadcasts and unknown inputs leave the output unknown", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* bad = b.node("Add", {b.input("a", DataType::kFloat, {3}), b.input("b", DataType::kFloat, {4})});
  ir::Value* unknownRank = b.node("Add", {b.input("c", DataType::kFloat, {3}), b.node("Relu", {b.node("Foo", {})})});
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 17);
  CHECK(typeOf(bad) == "float32[*]");
  CHECK(typeOf(unknownRank) == "float32[*]");
  REQUIRE(r.unresolved.size() == 1);
  CHECK(r.unresolved[0]->opType() == "Foo");
}

TEST_CASE("Normalization outputs: LayerNormalization statistics, BatchNormalization, Softmax", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "seq", "384"}));
  std::vector<ir::Value*> ln = b.nodeN("LayerNormalization", {x, b.weight("s", {384}), b.weight("bias", {384})}, 3);
  std::vector<ir::Value*> ln1 =
      b.nodeN("LayerNormalization", {x, b.weight("s1", {1})}, 3, {intAttr("axis", 1), intAttr("stash_type", 11)});
  ir::Value* img = b.input("img", DataType::kFloat, {1, 8, 4, 4});
  std::vector<ir::Value*> bn = b.nodeN(
      "BatchNormalization", {img, b.weight("g", {8}), b.weight("be", {8}), b.weight("mu", {8}), b.weight("var", {8})},
      3, {intAttr("training_mode", 1)});
  ir::Value* sm = b.node("Softmax", {x}, {intAttr("axis", -1)});
  ir::Value* gn =
      b.node("GroupNormalization", {img, b.weight("gs", {2}), b.weight("gb", {2})}, {intAttr("num_groups", 2)});
  ir::Model model;
  testing::buildAndInfer(b, model, 18);
  CHECK(typeOf(ln[0]) == "float32[batch,seq,384]");
  CHECK(typeOf(ln[1]) == "float32[batch,seq,1]");
  CHECK(typeOf(ln[2]) == "float32[batch,seq,1]");
  CHECK(typeOf(ln1[1]) == "float64[batch,1,1]");
  CHECK(typeOf(bn[0]) == "float32[1,8,4,4]");
  CHECK(typeOf(bn[1]) == "float32[8]");
  CHECK(typeOf(sm) == "float32[batch,seq,384]");
  CHECK(typeOf(gn) == "float32[1,8,4,4]");
}

TEST_CASE("Dropout's mask is bool from opset 10, of the input's type before", "[ir][shape]") {
  for (int64_t opset : {7, 13}) {
    GraphBuilder b;
    std::vector<ir::Value*> d = b.nodeN("Dropout", {b.input("x", DataType::kFloat, {2, 3})}, 2);
    ir::Model model;
    testing::buildAndInfer(b, model, opset);
    INFO("opset " << opset);
    CHECK(typeOf(d[0]) == "float32[2,3]");
    CHECK(typeOf(d[1]) == (opset >= 10 ? "bool[2,3]" : "float32[2,3]"));
  }
}

TEST_CASE("QuantizeLinear and DequantizeLinear types follow the opset", "[ir][shape]") {
  SECTION("opset 13: the zero point's type, uint8 without one; dequantized to float") {
    GraphBuilder b;
    ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "4"}));
    ir::Value* scale = b.weight("scale", {}, DataType::kFloat, 0.1, 0.2);
    ir::Value* q8 = b.node("QuantizeLinear", {x, scale, b.weight("zp", {}, DataType::kInt8, 0, 0)});
    ir::Value* qu = b.node("QuantizeLinear", {x, scale});
    ir::Value* dq = b.node("DequantizeLinear", {q8, scale, b.weight("zp2", {}, DataType::kInt8, 0, 0)});
    std::vector<ir::Value*> dyn = b.nodeN("DynamicQuantizeLinear", {x}, 3);
    ir::Model model;
    testing::buildAndInfer(b, model, 13);
    CHECK(typeOf(q8) == "int8[batch,4]");
    CHECK(typeOf(qu) == "uint8[batch,4]");
    CHECK(typeOf(dq) == "float32[batch,4]");
    CHECK(typeOf(dyn[0]) == "uint8[batch,4]");
    CHECK(typeOf(dyn[1]) == "float32[]");
    CHECK(typeOf(dyn[2]) == "uint8[]");
  }
  SECTION("opset 21: output_dtype without a zero point; the scale's type when dequantizing") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat16, {4, 8});
    ir::Value* scale = b.weight("scale", {4, 1}, DataType::kFloat16, 0.1, 0.2);
    ir::Value* q4 = b.node("QuantizeLinear", {x, scale}, {intAttr("output_dtype", 22), intAttr("block_size", 8)});
    ir::Value* dq = b.node("DequantizeLinear", {q4, scale}, {intAttr("block_size", 8)});
    ir::Model model;
    testing::buildAndInfer(b, model, 21);
    CHECK(typeOf(q4) == "int4[4,8]");
    CHECK(typeOf(dq) == "float16[4,8]");
  }
}

TEST_CASE("com.microsoft QLinear elementwise ops and transformer ops", "[ir][shape]") {
  GraphBuilder b;
  auto qparams = [&](const std::string& name) {
    return std::vector<ir::Value*>{b.weight(name + "_s", {}, DataType::kFloat, 0.1, 0.2),
                                   b.weight(name + "_z", {}, DataType::kUint8, 128, 128)};
  };
  ir::Value* a = b.input("a", DataType::kUint8, {1, 8, 4, 4});
  ir::Value* c = b.input("c", DataType::kUint8, {1, 8, 1, 1});
  auto pa = qparams("a"), pc = qparams("c"), py = qparams("y");
  ir::Value* add = b.node("QLinearAdd", {a, pa[0], pa[1], c, pc[0], pc[1], py[0], py[1]}, {}, "", "com.microsoft");
  ir::Value* sig = b.node("QLinearSigmoid", {a, pa[0], pa[1], py[0], py[1]}, {}, "", "com.microsoft");
  ir::Value* h = b.symbolicInput("h", DataType::kFloat, dims({"batch", "seq", "64"}));
  std::vector<ir::Value*> skip =
      b.nodeN("SkipLayerNormalization", {h, h, b.weight("g", {64}), b.weight("bb", {64})}, 4, {}, "", "com.microsoft");
  ir::Value* gelu = b.node("Gelu", {h}, {}, "", "com.microsoft");
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 17);
  CHECK(r.unresolved.empty());
  CHECK(typeOf(add) == "uint8[1,8,4,4]");
  CHECK(typeOf(sig) == "uint8[1,8,4,4]");
  CHECK(typeOf(skip[0]) == "float32[batch,seq,64]");
  CHECK(typeOf(skip[1]) == "float32[batch,seq,1]");
  CHECK(typeOf(skip[3]) == "float32[batch,seq,64]");
  CHECK(typeOf(gelu) == "float32[batch,seq,64]");
}

TEST_CASE("Arithmetic on shape tensors follows their values", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "seq", "384"}));
  ir::Value* shape = b.node("Shape", {x});
  // [batch, seq, 384] * [1, 1, 2] / [1, 1, 4] = [batch, seq, 192]; then Where(Equal(s, -1), 1, s).
  ir::Value* doubled = b.node("Mul", {shape, b.constantInt64("two", {3}, {1, 1, 2})});
  ir::Value* halved = b.node("Div", {doubled, b.constantInt64("four", {3}, {1, 1, 4})});
  ir::Value* isMinus = b.node("Equal", {halved, b.constantInt64("minus", {}, {-1})});
  ir::Value* fixed = b.node("Where", {isMinus, b.constantInt64("ones", {3}, {1, 1, 1}), halved});
  ir::Value* y = b.node("Expand", {b.weight("w", {1, 1, 192}), fixed});
  ir::Value* r = b.node("Reshape", {x, b.node("Add", {halved, b.constantInt64("zero", {3}, {0, 0, 192})})});
  ir::Model model;
  testing::buildAndInfer(b, model, 17);
  CHECK(typeOf(isMinus) == "bool[3]");
  CHECK(typeOf(y) == "float32[batch,seq,192]");
  CHECK(typeOf(r) == "float32[batch,seq,384]");
}
