// Shape rules of the ops that compute shapes: the values of shape tensors are followed so that
// exporters' shape arithmetic keeps symbolic dims; Squeeze/Unsqueeze in both opset forms.
#include <catch2/catch.hpp>
#include <limits>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::typeOf;

TEST_CASE("Shape -> Gather -> Unsqueeze -> Concat -> Reshape keeps the batch dim symbolic", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "8", "2", "2"}));
  ir::Value* shape = b.node("Shape", {x});
  ir::Value* batch = b.node("Gather", {shape, b.constantInt64("zero", {}, {0})});
  ir::Value* unsq = b.node("Unsqueeze", {batch, b.constantInt64("axes", {1}, {0})});
  ir::Value* target = b.node("Concat", {unsq, b.constantInt64("rest", {1}, {-1})}, {intAttr("axis", 0)});
  ir::Value* flat = b.node("Reshape", {x, target});
  ir::Value* fc = b.node("MatMul", {flat, b.weight("w", {32, 10})});
  ir::Value* size = b.node("Size", {x});
  ir::Value* flatten = b.node("Flatten", {x}, {intAttr("axis", 2)});
  ir::Value* flatten0 = b.node("Flatten", {x}, {intAttr("axis", -3)});
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 13);
  CHECK(r.unresolved.empty());
  CHECK(typeOf(shape) == "int64[4]");
  CHECK(typeOf(batch) == "int64[]");
  CHECK(typeOf(unsq) == "int64[1]");
  CHECK(typeOf(target) == "int64[2]");
  CHECK(typeOf(flat) == "float32[batch,32]");
  CHECK(typeOf(fc) == "float32[batch,10]");
  CHECK(typeOf(size) == "int64[]");
  CHECK(typeOf(flatten) == "float32[?,4]");  // batch * 8 has no name
  CHECK(typeOf(flatten0) == "float32[batch,32]");
}

TEST_CASE("Transformer shape arithmetic: Range over the sequence, Expand, attention reshapes", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* ids = b.symbolicInput("ids", DataType::kInt64, dims({"batch", "seq"}));
  ir::Value* idsShape = b.node("Shape", {ids});
  ir::Value* seq = b.node("Gather", {idsShape, b.constantInt64("one", {}, {1})});
  ir::Value* positions = b.node("Range", {b.constantInt64("start", {}, {0}), seq, b.constantInt64("step", {}, {1})});
  ir::Value* pos2 = b.node("Unsqueeze", {positions, b.constantInt64("axes0", {1}, {0})});
  ir::Value* posIds = b.node("Expand", {pos2, idsShape});
  ir::Value* mask =
      b.node("ConstantOfShape", {idsShape},
             {ir::Attribute::makeTensor("value", ir::Tensor::fromVector<int64_t>(DataType::kInt64, {1}, {1}))});
  ir::Value* emb = b.node("Gather", {b.weight("table", {100, 384}), ids});
  ir::Value* posTable = b.node(
      "Slice", {b.weight("pos", {512, 384}), b.constantInt64("s0", {1}, {0}),
                b.node("Unsqueeze", {seq, b.constantInt64("axes1", {1}, {0})}), b.constantInt64("sa", {1}, {0})});
  ir::Value* h = b.node("Add", {emb, posTable});
  ir::Value* heads = b.node("Reshape", {h, b.constantInt64("split", {4}, {0, 0, 6, -1})});
  ir::Value* q = b.node("Transpose", {heads}, {ints("perm", {0, 2, 1, 3})});
  ir::Value* k = b.node("Transpose", {heads}, {ints("perm", {0, 2, 3, 1})});
  ir::Value* scores = b.node("MatMul", {q, k});
  ir::Value* back = b.node("Reshape", {b.node("Transpose", {q}, {ints("perm", {0, 2, 1, 3})}),
                                       b.node("Concat",
                                              {b.node("Slice", {b.node("Shape", {h}), b.constantInt64("b0", {1}, {0}),
                                                                b.constantInt64("b2", {1}, {2})}),
                                               b.constantInt64("hidden", {1}, {384})},
                                              {intAttr("axis", 0)})});
  ir::Model model;
  ir::ShapeInferenceResult r = testing::buildAndInfer(b, model, 17);
  CHECK(r.unresolved.empty());
  CHECK(typeOf(positions) == "int64[seq]");
  CHECK(typeOf(posIds) == "int64[batch,seq]");
  CHECK(typeOf(mask) == "int64[batch,seq]");
  CHECK(typeOf(emb) == "float32[batch,seq,384]");
  CHECK(typeOf(posTable) == "float32[seq,384]");
  CHECK(typeOf(h) == "float32[batch,seq,384]");
  CHECK(typeOf(heads) == "float32[batch,seq,6,64]");
  CHECK(typeOf(scores) == "float32[batch,6,seq,seq]");
  CHECK(typeOf(back) == "float32[batch,seq,384]");
}

TEST_CASE("Reshape: 0 copies a dim, -1 takes the rest, allowzero keeps a 0", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
  ir::Value* keep = b.node("Reshape", {x, b.constantInt64("t1", {3}, {0, -1, 2})});
  ir::Value* empty = b.input("e", DataType::kFloat, {4, 0});
  ir::Value* zero = b.node("Reshape", {empty, b.constantInt64("t2", {2}, {0, 4})}, {intAttr("allowzero", 1)});
  ir::Value* copied = b.node("Reshape", {empty, b.constantInt64("t3", {2}, {0, -1})});
  ir::Value* computed = b.node("Reshape", {x, b.node("Relu", {b.constantInt64("t4", {2}, {6, 4})})});
  ir::Model model;
  testing::buildAndInfer(b, model, 14);
  CHECK(typeOf(keep) == "float32[2,6,2]");
  CHECK(typeOf(zero) == "float32[0,4]");
  CHECK(typeOf(copied) == "float32[4,0]");
  CHECK(typeOf(computed) == "float32[?,?]");  // the target's values are not followed through Relu
}

TEST_CASE("Squeeze and Unsqueeze: axes as attribute before opset 13, as input after", "[ir][shape]") {
  SECTION("opset 11") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 1, 5});
    ir::Value* sq = b.node("Squeeze", {x}, {ints("axes", {0, -2})});
    ir::Value* all = b.node("Squeeze", {x});
    ir::Value* unsq = b.node("Unsqueeze", {x}, {ints("axes", {0, -1})});
    ir::Model model;
    testing::buildAndInfer(b, model, 11);
    CHECK(typeOf(sq) == "float32[3,5]");
    CHECK(typeOf(all) == "float32[3,5]");
    CHECK(typeOf(unsq) == "float32[1,1,3,1,5,1]");
  }
  SECTION("opset 13") {
    GraphBuilder b;
    ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"1", "N", "1", "5"}));
    ir::Value* sq = b.node("Squeeze", {x, b.constantInt64("a", {1}, {2})});
    ir::Value* all = b.node("Squeeze", {x});  // N could be 1: the rank is not known
    ir::Value* unsq = b.node("Unsqueeze", {x, b.constantInt64("b", {2}, {1, 3})});
    ir::Value* dup = b.node("Unsqueeze", {x, b.constantInt64("c", {2}, {1, 1})});
    ir::Model model;
    testing::buildAndInfer(b, model, 13);
    CHECK(typeOf(sq) == "float32[1,N,5]");
    CHECK(typeOf(all) == "float32[*]");
    CHECK(typeOf(unsq) == "float32[1,1,N,1,1,5]");
    CHECK(typeOf(dup) == "float32[*]");
  }
}

TEST_CASE("Constant, ConstantOfShape, Range, Expand, EyeLike, NonZero", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* two3 = b.node("Constant", {}, {ints("value_ints", {2, 3})});
  ir::Value* scalar = b.node("Constant", {}, {ir::Attribute::makeFloat("value_float", 1.5f)});
  ir::Value* tensor = b.node("Constant", {}, {ir::Attribute::makeTensor("value", ir::Tensor(DataType::kInt8, {4, 2}))});
  ir::Value* filled = b.node("ConstantOfShape", {two3});
  ir::Value* range = b.node(
      "Range", {b.constantInt64("r0", {}, {0}), b.constantInt64("r1", {}, {10}), b.constantInt64("r2", {}, {3})});
  ir::Value* down = b.node(
      "Range", {b.constantInt64("d0", {}, {10}), b.constantInt64("d1", {}, {0}), b.constantInt64("d2", {}, {-4})});
  ir::Value* frange =
      b.node("Range", {b.constant("f0", {}, {0.0f}), b.constant("f1", {}, {1.0f}), b.constant("f2", {}, {0.25f})});
  ir::Value* expanded =
      b.node("Expand", {b.input("x", DataType::kFloat, {3, 1}), b.constantInt64("to", {3}, {2, 1, 4})});
  ir::Value* eye = b.node("EyeLike", {b.input("m", DataType::kFloat, {3, 4})}, {intAttr("dtype", 7)});
  ir::Value* nz = b.node("NonZero", {b.input("z", DataType::kFloat, {3, 4})});
  ir::Value* fromRange =
      b.node("Reshape", {b.input("y", DataType::kFloat, {8}), b.node("Concat", {range}, {intAttr("axis", 0)})});
  ir::Model model;
  testing::buildAndInfer(b, model, 13);
  CHECK(typeOf(two3) == "int64[2]");
  CHECK(typeOf(scalar) == "float32[]");
  CHECK(typeOf(tensor) == "int8[4,2]");
  CHECK(typeOf(filled) == "float32[2,3]");
  CHECK(typeOf(range) == "int64[4]");
  CHECK(typeOf(down) == "int64[3]");
  CHECK(typeOf(frange) == "float32[4]");
  CHECK(typeOf(expanded) == "float32[2,3,4]");
  CHECK(typeOf(eye) == "int64[3,4]");
  CHECK(typeOf(nz) == "int64[2,?]");
  CHECK(typeOf(fromRange) == "float32[*]");  // [8, 3, 6, 9] does not hold 8 elements
}

TEST_CASE("Hostile shape tensors leave dims unknown instead of overflowing", "[ir][shape]") {
  GraphBuilder b;
  int64_t big = std::numeric_limits<int64_t>::max();
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* huge = b.node("Reshape", {x, b.constantInt64("h", {2}, {big, -1})});
  ir::Value* negative = b.node("ConstantOfShape", {b.constantInt64("n", {2}, {-5, 3})});
  ir::Value* longRange = b.node("Range", {b.constantInt64("a", {}, {std::numeric_limits<int64_t>::min()}),
                                          b.constantInt64("c", {}, {big}), b.constantInt64("d", {}, {1})});
  ir::Value* tiled = b.node("Tile", {x, b.constantInt64("t", {2}, {big, 2})});
  ir::Value* expanded = b.node("Expand", {x, b.constantInt64("e", {2}, {-1, 3})});
  ir::Model model;
  testing::buildAndInfer(b, model, 13);
  CHECK(typeOf(huge) == "float32[?,?]");
  CHECK(typeOf(negative) == "float32[?,3]");
  CHECK(typeOf(longRange) == "int64[?]");
  CHECK(typeOf(tiled) == "float32[?,6]");
  CHECK(typeOf(expanded) == "float32[2,3]");
}
