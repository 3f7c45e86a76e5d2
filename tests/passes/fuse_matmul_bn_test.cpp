// fuse-matmul-bn: BatchNormalization after a 2-D MatMul folded into a Gemm.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

namespace {

ir::Value* batchNorm(testing::GraphBuilder& b, ir::Value* x, int64_t n, std::vector<Attribute> attrs = {}) {
  return b.node("BatchNormalization",
                {x, b.weight("s", {n}, DataType::kFloat, 0.5, 1.5), b.weight("bb", {n}), b.weight("mean", {n}),
                 b.weight("var", {n}, DataType::kFloat, 0.2, 2.0)},
                attrs);
}

}  // namespace

TEST_CASE("fuse-matmul-bn turns MatMul + BatchNormalization into one Gemm", "[passes][fuse-matmul-bn]") {
  testing::GraphBuilder b(51);
  ir::Value* x = b.input("x", DataType::kFloat, {4, 6});
  ir::Value* y = batchNorm(b, b.node("MatMul", {x, b.weight("B", {6, 7})}), 7);
  b.output(y, DataType::kFloat, {4, 7});
  ir::Model model = b.build(15);
  auto run = testing::runPipelineOn(model, "fuse-matmul-bn");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Gemm"});
  CHECK(run.after.graph->outputs()[0]->name() == y->name());
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-matmul-bn leaves the graph unchanged when it must", "[passes][fuse-matmul-bn]") {
  testing::GraphBuilder b(52);
  SECTION("A has rank 3") {
    ir::Value* x = b.input("x", DataType::kFloat, {2, 4, 6});
    b.output(batchNorm(b, b.node("MatMul", {x, b.weight("B", {6, 4})}), 4), DataType::kFloat, {2, 4, 4});
    testing::requireUnchanged(b.build(15), "fuse-matmul-bn");
  }
  SECTION("the MatMul output has two users") {
    ir::Value* x = b.input("x", DataType::kFloat, {4, 6});
    ir::Value* m = b.node("MatMul", {x, b.weight("B", {6, 7})});
    b.output(batchNorm(b, m, 7), DataType::kFloat, {4, 7});
    b.output(b.node("Relu", {m}), DataType::kFloat, {4, 7});
    testing::requireUnchanged(b.build(15), "fuse-matmul-bn");
  }
  SECTION("B is not a constant") {
    ir::Value* x = b.input("x", DataType::kFloat, {4, 6});
    ir::Value* m = b.node("MatMul", {x, b.input("B", DataType::kFloat, {6, 7})});
    b.output(batchNorm(b, m, 7), DataType::kFloat, {4, 7});
    testing::requireUnchanged(b.build(15), "fuse-matmul-bn");
  }
  SECTION("training mode") {
    ir::Value* x = b.input("x", DataType::kFloat, {4, 6});
    ir::Value* m = b.node("MatMul", {x, b.weight("B", {6, 7})});
    b.output(batchNorm(b, m, 7, {Attribute::makeInt("training_mode", 1)}), DataType::kFloat, {4, 7});
    testing::requireUnchanged(b.build(15), "fuse-matmul-bn");
  }
}
