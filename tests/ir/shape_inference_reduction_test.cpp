// Shape rules of reductions: axes as attribute (ReduceSum before opset 13, the others before
// 18) or as input, keepdims, noop_with_empty_axes, axes whose values are not known; ArgMax.
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::typeOf;

TEST_CASE("Reductions: axes attribute at opset 13, axes input for ReduceSum", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "8", "4", "4"}));
  ir::Value* mean = b.node("ReduceMean", {x}, {ints("axes", {2, 3}), intAttr("keepdims", 0)});
  ir::Value* sum = b.node("ReduceSum", {x, b.constantInt64("a", {1}, {1})});
  ir::Value* all = b.node("ReduceMax", {x}, {intAttr("keepdims", 0)});
  ir::Value* arg = b.node("ArgMax", {x}, {intAttr("axis", 1), intAttr("keepdims", 0)});
  ir::Value* argKeep = b.node("ArgMin", {x}, {intAttr("axis", -1)});
  ir::Model model;
  testing::buildAndInfer(b, model, 13);
  CHECK(typeOf(mean) == "float32[batch,8]");
  CHECK(typeOf(sum) == "float32[batch,1,4,4]");
  CHECK(typeOf(all) == "float32[]");
  CHECK(typeOf(arg) == "int64[batch,4,4]");
  CHECK(typeOf(argKeep) == "int64[batch,8,4,1]");
}

TEST_CASE("Reductions at opset 18: axes input, noop_with_empty_axes, axes not known", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"batch", "1", "4", "4"}));
  ir::Value* axesIn = b.input("axes", DataType::kInt64, {2});
  ir::Value* mean = b.node("ReduceMean", {x, b.constantInt64("a", {1}, {-1})}, {intAttr("keepdims", 0)});
  ir::Value* all = b.node("ReduceL2", {x});
  ir::Value* noop = b.node("ReduceSumSquare", {x}, {intAttr("noop_with_empty_axes", 1)});
  ir::Value* keep = b.node("ReduceMax", {x, axesIn});
  ir::Value* drop = b.node("ReduceMin", {x, axesIn}, {intAttr("keepdims", 0)});
  ir::Value* numel =
      b.node("ReduceProd", {b.node("Shape", {b.input("s", DataType::kFloat, {2, 3, 4})})}, {intAttr("keepdims", 0)});
  ir::Value* flat = b.node("Reshape", {b.input("t", DataType::kFloat, {2, 3, 4}),
                                       b.node("Unsqueeze", {numel, b.constantInt64("u", {1}, {0})})});
  ir::Model model;
  testing::buildAndInfer(b, model, 18);
  CHECK(typeOf(mean) == "float32[batch,1,4]");
  CHECK(typeOf(all) == "float32[1,1,1,1]");
  CHECK(typeOf(noop) == "float32[batch,1,4,4]");
  CHECK(typeOf(keep) == "float32[?,1,?,?]");
  CHECK(typeOf(drop) == "float32[?,?]");
  CHECK(typeOf(numel) == "int64[]");
  CHECK(typeOf(flat) == "float32[24]");
}
