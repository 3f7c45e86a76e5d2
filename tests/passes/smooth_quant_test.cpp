// smooth-quant: an exact rewrite (outputs unchanged) that folds 1/s into the RMSNorm-style Mul,
// a LayerNormalization or the up projection of a gated MLP, or adds an explicit Mul where no
// producer can take it; with a loud input channel it lowers the error of dynamic int8 that
// follows; bad options and missing calibration are errors.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "passes/calib_test_util.h"
#include "passes/pass_test_util.h"
#include "support/graph_queries.h"

using namespace whittle;

namespace {

constexpr int kLoud = 3;

// x[2, 4, 16] -> Mul(gamma) = h -> MatMul(Wq), MatMul(Wk)          (h: folded into gamma)
//             q + k -> Relu = r -> MatMul(Wo) = o                   (r: an explicit Mul)
//             gated MLP on h: Mul(Sigmoid(MatMul(h, G)), MatMul(h, U)) = m -> MatMul(m, D)
//                                                                   (m: folded into U's columns)
ir::Model blockModel() {
  testing::GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 4, 16});
  ir::Value* h = b.node("Mul", {x, b.weight("gamma", {16}, ir::DataType::kFloat, 0.5, 1.5)}, {}, "norm");
  ir::Value* q = b.node("MatMul", {h, b.weight("wq", {16, 8})}, {}, "q_proj");
  ir::Value* k = b.node("MatMul", {h, b.weight("wk", {16, 8})}, {}, "k_proj");
  ir::Value* r = b.node("Relu", {b.node("Add", {q, k})});
  ir::Value* o = b.node("MatMul", {r, b.weight("wo", {8, 16})}, {}, "o_proj");
  ir::Value* g = b.node("Sigmoid", {b.node("MatMul", {h, b.weight("wg", {16, 12})}, {}, "gate_proj")});
  ir::Value* up = b.node("MatMul", {h, b.weight("wu", {16, 12})}, {}, "up_proj");
  ir::Value* d = b.node("MatMul", {b.node("Mul", {g, up}, {}, "gate_mul"), b.weight("wd", {12, 16})}, {}, "down_proj");
  b.output(b.node("Add", {o, d}), ir::DataType::kFloat, {2, 4, 16});
  return b.build(17);
}

const ir::Tensor& constantNamed(const ir::Graph& g, const std::string& name) {
  for (const ir::Value* v : g.initializers()) {
    if (v->name() == name) return *v->constant();
  }
  FAIL("no initializer " << name);
  throw std::logic_error("unreachable");
}

// The norm-relative output error of `model` against `reference` on loud feeds.
double loudError(const ir::Model& reference, const ir::Model& model) {
  return testing::loudOutputError(reference, model, kLoud, 60.0f);
}

}  // namespace

TEST_CASE("smooth-quant rescales exactly: folded into the norm weight and the up projection, else a Mul",
          "[passes][smoothquant]") {
  ir::Model model = blockModel();
  ir::Model after = model.clone();
  testing::RandomInputsProvider provider(kLoud, 60.0f);
  // alpha fixed: every input is smoothed (auto leaves the inputs that do not gain alone).
  auto stats = testing::runWith(after, "smooth-quant{alpha=0.5}", &provider);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  REQUIRE(ir::verify(*after.graph).isOk());
  CHECK(provider.calls == 1);
  const auto& c = stats->back().counters;
  // Inputs: h (q, k, gate, up: folded into gamma), r (explicit Mul), m (folded into U).
  CHECK(c.at("inputs-smoothed") == 3);
  CHECK(c.at("inputs-folded") == 2);
  CHECK(c.at("weights-scaled") == 6);
  CHECK(testing::countOps(*after.graph, "Mul") == 3);  // norm, gate_mul and the explicit one
  // The loud channel of x shrinks most: gamma[kLoud] divided by the largest s.
  const auto g0 = constantNamed(*model.graph, "gamma").values<float>();
  const auto g1 = constantNamed(*after.graph, "gamma").values<float>();
  for (int j = 0; j < 16; ++j) {
    if (j != kLoud) CHECK(g1[kLoud] / g0[kLoud] < g1[static_cast<size_t>(j)] / g0[static_cast<size_t>(j)]);
  }
  testing::requireSameOutputs(model, after);
  CHECK(loudError(model, after) < 1e-5);
}

TEST_CASE("smooth-quant before dynamic int8 lowers the error a loud channel causes", "[passes][smoothquant]") {
  ir::Model model = blockModel();
  ir::Model plain = model.clone(), smoothed = model.clone();
  REQUIRE(testing::runWith(plain, "quantize-dynamic").isOk());
  testing::RandomInputsProvider provider(kLoud, 60.0f);
  auto s = testing::runWith(smoothed, "smooth-quant,quantize-dynamic", &provider);
  INFO(s.status().message());
  REQUIRE(s.isOk());
  const double before = loudError(model, plain), after = loudError(model, smoothed);
  INFO("dynamic int8 error " << before << ", with smooth-quant " << after);
  CHECK(after < 0.6 * before);
}

TEST_CASE("smooth-quant takes a LayerNormalization's scale and bias, and a fixed alpha", "[passes][smoothquant]") {
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {3, 16});
  ir::Value* ln = b.node("LayerNormalization", {x, b.weight("scale", {16}, ir::DataType::kFloat, 0.5, 1.5), b.weight("bias", {16})},
                         {ir::Attribute::makeInt("axis", -1)}, "ln");
  ir::Value* y = b.node("Gemm", {ln, b.weight("w", {8, 16}), b.weight("c", {8})}, {ir::Attribute::makeInt("transB", 1)}, "fc");
  b.output(y, ir::DataType::kFloat, {3, 8});
  ir::Model model = b.build(17);
  ir::Model after = model.clone();
  testing::RandomInputsProvider provider(kLoud, 60.0f);
  auto stats = testing::runWith(after, "smooth-quant{alpha=0.5}", &provider);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(stats->back().counters.at("inputs-folded") == 1);
  CHECK(testing::countOps(*after.graph, "Mul") == 0);
  const auto s0 = constantNamed(*model.graph, "scale").values<float>(), s1 = constantNamed(*after.graph, "scale").values<float>();
  const auto b0 = constantNamed(*model.graph, "bias").values<float>(), b1 = constantNamed(*after.graph, "bias").values<float>();
  for (size_t j = 0; j < 16; ++j) CHECK(s1[j] / s0[j] == Approx(b1[j] / b0[j]));
  testing::requireSameOutputs(model, after);
}

TEST_CASE("smooth-quant scales an input the residual reads too by a Mul on the MatMul branch", "[passes][smoothquant]") {
  // Post-LN: h = LayerNorm(x) feeds the MatMul and the residual Add.
  testing::GraphBuilder b(8);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 16});
  ir::Value* h = b.node("LayerNormalization", {x, b.weight("scale", {16}), b.weight("bias", {16})}, {}, "ln");
  ir::Value* y = b.node("MatMul", {h, b.weight("w", {16, 16})}, {}, "fc");
  b.output(b.node("Add", {y, h}, {}, "residual"), ir::DataType::kFloat, {4, 16});
  ir::Model model = b.build(17);
  ir::Model after = model.clone(), kept = model.clone();
  testing::RandomInputsProvider provider(kLoud, 60.0f);
  auto stats = testing::runWith(after, "smooth-quant{alpha=0.5}", &provider);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(stats->back().counters.at("inputs-smoothed") == 1);
  CHECK(stats->back().counters.at("inputs-folded") == 0);
  REQUIRE(testing::countOps(*after.graph, "Mul") == 1);
  // The residual still reads the unscaled h; the LayerNorm is untouched.
  const auto s0 = constantNamed(*model.graph, "scale").values<float>(), s1 = constantNamed(*after.graph, "scale").values<float>();
  CHECK(std::equal(s0.begin(), s0.end(), s1.begin(), s1.end()));
  testing::requireSameOutputs(model, after);
  // Without explicit Muls the input is left alone.
  testing::RandomInputsProvider again(kLoud, 60.0f);
  auto none = testing::runWith(kept, "smooth-quant{alpha=0.5,explicit-mul=false}", &again);
  REQUIRE(none.isOk());
  CHECK(none->back().counters.at("inputs-smoothed") == 0);
  CHECK(testing::graphText(kept) == testing::graphText(model));
}

TEST_CASE("smooth-quant: bad options and missing calibration are errors", "[passes][smoothquant]") {
  ir::Model model = blockModel();
  for (const char* bad : {"smooth-quant{alpha=1.5}", "smooth-quant{alpha=half}", "smooth-quant{grid=0}"}) {
    INFO(bad);
    ir::Model m = model.clone();
    CHECK_FALSE(testing::runWith(m, bad).isOk());
  }
  ir::Model m = model.clone();
  auto noCalib = testing::runWith(m, "smooth-quant");
  REQUIRE_FALSE(noCalib.isOk());
  CHECK(noCalib.status().message().find("--calib") != std::string::npos);
}
