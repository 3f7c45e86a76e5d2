// fuse-transpose-into-gemm: 2-D Transposes of Gemm inputs absorbed into transA / transB.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

TEST_CASE("fuse-transpose-into-gemm absorbs Transposes of A and B", "[passes][fuse-transpose-into-gemm]") {
  bool explicitPerm = GENERATE(true, false);
  int transB = GENERATE(0, 1);
  INFO("explicit perm " << explicitPerm << ", transB " << transB);
  testing::GraphBuilder b(71);
  std::vector<Attribute> perm;
  if (explicitPerm) perm.push_back(Attribute::makeInts("perm", {1, 0}));
  ir::Value* x = b.input("x", DataType::kFloat, {4, 3});                                           // A = x^T: [3, 4]
  ir::Value* w = b.weight("w", transB ? std::vector<int64_t>{4, 5} : std::vector<int64_t>{5, 4});  // B = w^T
  ir::Value* xt = b.node("Transpose", {x}, perm);
  ir::Value* wt = b.node("Transpose", {w}, perm);
  ir::Value* y = b.node("Gemm", {xt, wt, b.weight("c", {5})}, {Attribute::makeInt("transB", transB)});
  b.output(y, DataType::kFloat, {3, 5});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "fuse-transpose-into-gemm");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Gemm"});
  const ir::Node* gemm = run.after.graph->nodes()[0];
  CHECK(gemm->attrInt("transA", 0) == 1);
  CHECK(gemm->attrInt("transB", 0) == 1 - transB);
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-transpose-into-gemm leaves other Transposes alone", "[passes][fuse-transpose-into-gemm]") {
  testing::GraphBuilder b(72);
  SECTION("a Gemm without Transposes") {
    ir::Value* x = b.input("x", DataType::kFloat, {3, 4});
    b.output(b.node("Gemm", {x, b.weight("w", {4, 5})}), DataType::kFloat, {3, 5});
    testing::requireUnchanged(b.build(13), "fuse-transpose-into-gemm");
  }
  SECTION("a Transpose that is not a 2-D swap feeds a MatMul, not a Gemm") {
    ir::Value* x = b.input("x", DataType::kFloat, {2, 4, 3});
    ir::Value* t = b.node("Transpose", {x}, {Attribute::makeInts("perm", {0, 2, 1})});
    b.output(b.node("MatMul", {t, b.weight("w", {4, 5})}), DataType::kFloat, {2, 3, 5});
    testing::requireUnchanged(b.build(13), "fuse-transpose-into-gemm");
  }
}
