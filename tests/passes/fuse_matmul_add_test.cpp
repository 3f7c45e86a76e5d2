// fuse-matmul-add: MatMul + Add -> Gemm where the shapes allow it.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::DataType;

TEST_CASE("fuse-matmul-add turns MatMul + Add into Gemm", "[passes][fuse-matmul-add]") {
  std::vector<int64_t> cDims = GENERATE(std::vector<int64_t>{5}, std::vector<int64_t>{1, 5}, std::vector<int64_t>{3, 1},
                                        std::vector<int64_t>{3, 5}, std::vector<int64_t>{});
  bool constantB = GENERATE(true, false);
  INFO("C rank " << cDims.size() << ", constant B " << constantB);
  testing::GraphBuilder b(61);
  ir::Value* x = b.input("x", DataType::kFloat, {3, 4});
  ir::Value* w = constantB ? b.weight("B", {4, 5}) : b.input("B", DataType::kFloat, {4, 5});
  ir::Value* y = b.node("Add", {b.node("MatMul", {x, w}), b.weight("C", cDims)});
  b.output(y, DataType::kFloat, {3, 5});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "fuse-matmul-add");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Gemm"});
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-matmul-add leaves the graph unchanged when it must", "[passes][fuse-matmul-add]") {
  testing::GraphBuilder b(62);
  SECTION("A has rank 3") {
    ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
    b.output(b.node("Add", {b.node("MatMul", {x, b.weight("B", {4, 5})}), b.weight("C", {5})}), DataType::kFloat,
             {2, 3, 5});
    testing::requireUnchanged(b.build(13), "fuse-matmul-add");
  }
  SECTION("the MatMul output has two users") {
    ir::Value* x = b.input("x", DataType::kFloat, {3, 4});
    ir::Value* m = b.node("MatMul", {x, b.weight("B", {4, 5})});
    b.output(b.node("Add", {m, b.weight("C", {5})}), DataType::kFloat, {3, 5});
    b.output(b.node("Relu", {m}), DataType::kFloat, {3, 5});
    testing::requireUnchanged(b.build(13), "fuse-matmul-add");
  }
  SECTION("the MatMul output is a graph output") {
    ir::Value* x = b.input("x", DataType::kFloat, {3, 4});
    ir::Value* m = b.node("MatMul", {x, b.weight("B", {4, 5})});
    b.output(m, DataType::kFloat, {3, 5});
    b.output(b.node("Add", {m, b.weight("C", {5})}), DataType::kFloat, {3, 5});
    testing::requireUnchanged(b.build(13), "fuse-matmul-add");
  }
  SECTION("C would broadcast the result to a larger shape") {
    ir::Value* x = b.input("x", DataType::kFloat, {1, 4});
    b.output(b.node("Add", {b.node("MatMul", {x, b.weight("B", {4, 5})}), b.weight("C", {3, 5})}), DataType::kFloat,
             {3, 5});
    testing::requireUnchanged(b.build(13), "fuse-matmul-add");
  }
}
