// analysis/sparsity: reduction-axis groups of Conv/Gemm/MatMul weights and their N:M structure.
#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "whittle/analysis/sparsity.h"

using namespace whittle;

TEST_CASE("reductionGroups walks input channels, then K", "[analysis][sparsity]") {
  testing::GraphBuilder b(1);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 3, 3});
  ir::Value* c = b.node("Conv", {x, b.weight("w", {2, 4, 1, 2})}, {}, "conv");
  ir::Value* f = b.node("Flatten", {c});
  ir::Value* g = b.node("Gemm", {f, b.weight("wg", {3, 8})}, {ir::Attribute::makeInt("transB", 1)}, "gemm");
  ir::Value* y = b.node("MatMul", {g, b.weight("wm", {3, 2})}, {}, "mm");
  b.output(y, ir::DataType::kFloat, {1, 2});
  ir::Model model = b.build(17);
  auto layers = analysis::prunableWeights(*model.graph);
  REQUIRE(layers.size() == 3);
  // Conv [O=2, C=4, 1, 2]: output 0, kernel position 0: channels 0..3 at offsets 0, 2, 4, 6.
  auto conv = analysis::reductionGroups(*layers[0].node, layers[0].tensor->dims(), 4);
  REQUIRE(conv);
  CHECK(conv->size() == 16);
  CHECK(std::vector<int64_t>(conv->begin(), conv->begin() + 8) == std::vector<int64_t>{0, 2, 4, 6, 1, 3, 5, 7});
  // Gemm with transB: [N=3, K=8]: rows are contiguous groups.
  auto gemm = analysis::reductionGroups(*layers[1].node, layers[1].tensor->dims(), 4);
  REQUIRE(gemm);
  CHECK(std::vector<int64_t>(gemm->begin(), gemm->begin() + 4) == std::vector<int64_t>{0, 1, 2, 3});
  // MatMul [K=3, N=2]: K = 3 is not a multiple of 4 (nor of 2).
  CHECK_FALSE(analysis::reductionGroups(*layers[2].node, layers[2].tensor->dims(), 4));
  auto mm = analysis::reductionGroups(*layers[2].node, layers[2].tensor->dims(), 3);
  REQUIRE(mm);
  CHECK(*mm == std::vector<int64_t>{0, 2, 4, 1, 3, 5});
}

TEST_CASE("nmStructure counts zeros and compliant groups", "[analysis][sparsity]") {
  testing::GraphBuilder b(2);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8});
  // K = 8, N = 2: column 0 reads {0, 0, 2, 2} and {0, 0, 3, 0} (both 2:4), column 1
  // reads {1, 1, 0, 1} twice (three nonzeros: not 2:4).
  std::vector<float> w = {0, 1, 0, 1, 2, 0, 2, 1, 0, 1, 0, 1, 3, 0, 0, 1};
  ir::Value* y = b.node("MatMul", {x, b.constant("w", {8, 2}, w)}, {}, "mm");
  b.output(y, ir::DataType::kFloat, {1, 2});
  ir::Model model = b.build(17);
  auto layers = analysis::nmStructure(*model.graph, 2, 4);
  REQUIRE(layers.size() == 1);
  const auto& l = layers[0];
  CHECK(l.node == "mm");
  CHECK(l.elements == 16);
  CHECK(l.zeros == 7);
  CHECK(l.applicable);
  CHECK(l.groups == 4);
  CHECK(l.compliantGroups == 2);
  CHECK_FALSE(l.compliant());
}

TEST_CASE("nmStructure reads int8 weights behind DequantizeLinear against their zero points", "[analysis][sparsity]") {
  testing::GraphBuilder b(3);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4});
  // q[4, 2], per-column zero points {0, 5}: column 0 {0, 3, 0, 7} is 2:4; column 1 {5, 1, 2, 5} as well.
  std::vector<int8_t> q = {0, 5, 3, 1, 0, 2, 7, 5};
  ir::Value* qv = b.constant("q", ir::Tensor::fromVector(ir::DataType::kInt8, {4, 2}, q));
  ir::Value* scale = b.constant("s", {2}, {0.1f, 0.2f});
  ir::Value* zp = b.constant("zp", ir::Tensor::fromVector(ir::DataType::kInt8, {2}, std::vector<int8_t>{0, 5}));
  ir::Value* w = b.node("DequantizeLinear", {qv, scale, zp}, {ir::Attribute::makeInt("axis", 1)});
  ir::Value* y = b.node("MatMul", {x, w}, {}, "mm");
  b.output(y, ir::DataType::kFloat, {1, 2});
  ir::Model model = b.build(17);
  auto layers = analysis::nmStructure(*model.graph, 2, 4);
  REQUIRE(layers.size() == 1);
  CHECK(layers[0].weight == "q");
  CHECK(layers[0].zeros == 4);
  CHECK(layers[0].groups == 2);
  CHECK(layers[0].compliant());
}
