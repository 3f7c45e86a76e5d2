// fuse-gemm-bn: BatchNormalization folded into the preceding Gemm.
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

TEST_CASE("fuse-gemm-bn folds BatchNormalization into Gemm", "[passes][fuse-gemm-bn]") {
  bool transB = GENERATE(false, true);
  int cKind = GENERATE(0, 1, 2);  // no C, C of [N], scalar C
  INFO("transB " << transB << ", C kind " << cKind);
  testing::GraphBuilder b(41);
  ir::Value* x = b.input("x", DataType::kFloat, {3, 8});
  std::vector<ir::Value*> in = {x, b.weight("B", transB ? std::vector<int64_t>{5, 8} : std::vector<int64_t>{8, 5})};
  if (cKind == 1) in.push_back(b.weight("C", {5}));
  if (cKind == 2) in.push_back(b.weight("C", {1}));
  ir::Value* g = b.node("Gemm", in,
                        {Attribute::makeFloat("alpha", 0.5f), Attribute::makeFloat("beta", 2.0f),
                         Attribute::makeInt("transB", transB ? 1 : 0)});
  b.output(batchNorm(b, g, 5), DataType::kFloat, {3, 5});
  ir::Model model = b.build(15);
  auto run = testing::runPipelineOn(model, "fuse-gemm-bn");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Gemm"});
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-gemm-bn leaves the graph unchanged when it must", "[passes][fuse-gemm-bn]") {
  testing::GraphBuilder b(42);
  ir::Value* x = b.input("x", DataType::kFloat, {3, 8});
  SECTION("the Gemm output has two users") {
    ir::Value* g = b.node("Gemm", {x, b.weight("B", {8, 5})});
    b.output(batchNorm(b, g, 5), DataType::kFloat, {3, 5});
    b.output(b.node("Relu", {g}), DataType::kFloat, {3, 5});
    testing::requireUnchanged(b.build(15), "fuse-gemm-bn");
  }
  SECTION("the Gemm output is a graph output") {
    ir::Value* g = b.node("Gemm", {x, b.weight("B", {8, 5})});
    b.output(g, DataType::kFloat, {3, 5});
    b.output(batchNorm(b, g, 5), DataType::kFloat, {3, 5});
    testing::requireUnchanged(b.build(15), "fuse-gemm-bn");
  }
  SECTION("B is not a constant") {
    ir::Value* g = b.node("Gemm", {x, b.input("B", DataType::kFloat, {8, 5})});
    b.output(batchNorm(b, g, 5), DataType::kFloat, {3, 5});
    testing::requireUnchanged(b.build(15), "fuse-gemm-bn");
  }
  SECTION("training mode") {
    ir::Value* g = b.node("Gemm", {x, b.weight("B", {8, 5})});
    b.output(batchNorm(b, g, 5, {Attribute::makeInt("training_mode", 1)}), DataType::kFloat, {3, 5});
    testing::requireUnchanged(b.build(15), "fuse-gemm-bn");
  }
}
