// The lowering's step G2 (src/runtime/lower_contrib_gelu.cpp): ONNX Runtime's contrib Gelu,
// BiasGelu and FastGelu become ONNX Gelu after a bias Add, computing the contrib formulas.
#include <catch2/catch.hpp>

#include <cmath>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/kernel_harness.h"
#include "support/lowering_check.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using whittle::testing::countOps;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;

TEST_CASE("com.microsoft BiasGelu, Gelu and FastGelu lower to ONNX Gelu and keep their formulas", "[runtime][lowering]") {
  GraphBuilder b(41);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3, 16});
  ir::Value* bias = b.weight("bias", {16}, ir::DataType::kFloat, -2.0, 2.0);
  ir::Value* biasGelu = b.node("BiasGelu", {x, bias}, {}, "bias_gelu", "com.microsoft");
  ir::Value* gelu = b.node("Gelu", {x}, {}, "gelu", "com.microsoft");
  ir::Value* fast = b.node("FastGelu", {x, bias}, {}, "fast_gelu", "com.microsoft");
  ir::Value* fastNoBias = b.node("FastGelu", {x}, {}, "fast_gelu_nobias", "com.microsoft");
  for (ir::Value* v : {biasGelu, gelu, fast, fastNoBias}) b.output(v, ir::DataType::kFloat, {2, 3, 16});
  ir::Model model = b.build(17);

  ir::Model m = lowered(model);
  CHECK(countOps(*m.graph, "Gelu") == 4);
  for (const ir::Node* n : m.graph->nodes()) CHECK(n->domain().empty());
  int tanh = 0;
  for (const ir::Node* n : m.graph->nodes()) tanh += n->opType() == "Gelu" && n->attrString("approximate", "") == "tanh";
  CHECK(tanh == 2);
  CHECK(countOps(*m.graph, "Add") == 2);

  const ir::Tensor xs = b.randomTensor(ir::DataType::kFloat, {2, 3, 16}, -4.0, 4.0);
  auto outs = testing::runOutputs(model, {{"x", xs}});  // the session lowers
  REQUIRE(outs.size() == 4);
  const float* bv = bias->constant()->data<float>();
  auto erfGelu = [](double u) { return 0.5 * u * (1.0 + std::erf(u / std::sqrt(2.0))); };
  auto tanhGelu = [](double u) { return 0.5 * u * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u))); };
  for (int64_t i = 0; i < xs.numel(); ++i) {
    const double u = xs.data<float>()[i], ub = u + bv[i % 16];
    INFO("element " << i);
    CHECK(outs[0].data<float>()[i] == Approx(erfGelu(ub)).margin(1e-5));
    CHECK(outs[1].data<float>()[i] == Approx(erfGelu(u)).margin(1e-5));
    CHECK(outs[2].data<float>()[i] == Approx(tanhGelu(ub)).margin(1e-5));
    CHECK(outs[3].data<float>()[i] == Approx(tanhGelu(u)).margin(1e-5));
  }
}

TEST_CASE("A BiasGelu whose bias is not a vector over the last axis stays as it is", "[runtime][lowering]") {
  GraphBuilder b(42);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 16});
  b.output(b.node("BiasGelu", {x, b.weight("bias", {2, 16})}, {}, "bias_gelu", "com.microsoft"), ir::DataType::kFloat,
           {2, 16});
  ir::Model m = lowered(b.build(17));
  CHECK(countOps(*m.graph, "BiasGelu") == 1);
  CHECK(countOps(*m.graph, "Gelu") == 0);
}
