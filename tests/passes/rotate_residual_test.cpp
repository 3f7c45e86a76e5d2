// rotate-residual: an exact rewrite of a Llama-style residual stream (embedding, RMSNorms with
// their gamma, writers adding into the stream, a tied LM head) that leaves the outputs unchanged;
// with an outlier channel in the stream it lowers the error of 4-bit weights that follow; models
// whose residual stream something else reads are left alone, with a note.
#include <catch2/catch.hpp>
#include <cmath>

#include "passes/calib_test_util.h"
#include "passes/pass_test_util.h"
#include "support/graph_queries.h"

using namespace whittle;

namespace {

constexpr int64_t kVocab = 40, kHidden = 48, kInner = 32, kTokens = 12;

// A weight as trained LLMs have them: mostly small, with rare large entries (1 in 32 is 10x) that
// set the 4-bit block steps.
ir::Value* spiky(testing::GraphBuilder& b, const std::string& name, std::vector<int64_t> dims, double range = 1.0) {
  ir::Tensor t = b.randomTensor(ir::DataType::kFloat, std::move(dims), -range, range);
  float* p = t.mutableData<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (b.rng()() % 32 == 0) p[i] *= 10.0f;
  }
  return b.constant(name, std::move(t));
}

// h = RMSNorm(x) * gamma (decomposed as exported: Mul(x, x), ReduceMean, Add eps, Sqrt, Div, Mul).
ir::Value* rmsNorm(testing::GraphBuilder& b, ir::Value* x, const std::string& name) {
  ir::Value* ms = b.node("ReduceMean", {b.node("Mul", {x, x})}, {ir::Attribute::makeInts("axes", {-1})});
  ir::Value* rms = b.node("Sqrt", {b.node("Add", {ms, b.constant(name + "_eps", {}, {1e-5f})})});
  return b.node("Mul", {b.node("Div", {x, rms}), b.weight(name + "_gamma", {kHidden}, ir::DataType::kFloat, 0.5, 1.5)}, {}, name);
}

// ids[1, 12] -> Gather(E[40, 48]) = h0; two blocks h += MatMul(Relu(MatMul(RMSNorm(h), A)), O);
// logits = MatMul(RMSNorm(h), Transpose(E)). Channel `loud` of E is `gain` times larger: the
// residual stream's outlier channel. The block weights have rare large entries (spiky()).
ir::Model decoder(float gain, int loud = 5, bool residualOutput = false) {
  testing::GraphBuilder b(11);
  ir::Value* ids = b.input("ids", ir::DataType::kInt64, {1, kTokens});
  ir::Tensor e = b.randomTensor(ir::DataType::kFloat, {kVocab, kHidden});
  float* ep = e.mutableData<float>();
  for (int64_t v = 0; v < kVocab; ++v) ep[v * kHidden + loud] *= gain;
  ir::Value* table = b.constant("embed", std::move(e));
  ir::Value* h = b.node("Gather", {table, ids}, {ir::Attribute::makeInt("axis", 0)}, "embed_gather");
  for (int i = 0; i < 2; ++i) {
    const std::string l = "layer" + std::to_string(i);
    ir::Value* n = rmsNorm(b, h, l + "_norm");
    ir::Value* a = b.node("Relu", {b.node("MatMul", {n, spiky(b, l + "_a", {kHidden, kInner})}, {}, l + "_in_proj")});
    h = b.node("Add", {h, b.node("MatMul", {a, spiky(b, l + "_o", {kInner, kHidden}, 0.3)}, {}, l + "_out_proj")});
  }
  if (residualOutput) b.output(h, ir::DataType::kFloat, {1, kTokens, kHidden});
  ir::Value* head = b.node("Transpose", {table}, {ir::Attribute::makeInts("perm", {1, 0})});
  b.output(b.node("MatMul", {rmsNorm(b, h, "final_norm"), head}, {}, "lm_head"), ir::DataType::kFloat, {1, kTokens, kVocab});
  return b.build(17);
}

std::vector<runtime::NamedTensor> tokenFeeds(uint64_t seed) {
  testing::GraphBuilder rng(seed);
  return {{"ids", rng.randomTensor(ir::DataType::kInt64, {1, kTokens}, 0, kVocab - 1)}};
}

// The norm-relative logits error of `model` against `reference` over a few token sequences.
double logitsError(const ir::Model& reference, const ir::Model& model) {
  double num = 0, den = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    auto feeds = tokenFeeds(seed);
    auto a = testing::runModel(reference, feeds), b = testing::runModel(model, feeds);
    const auto va = a.front().second.values<float>(), vb = b.front().second.values<float>();
    for (size_t i = 0; i < va.size(); ++i) {
      num += (va[i] - vb[i]) * (va[i] - vb[i]);
      den += va[i] * va[i];
    }
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("rotate-residual is exact: gammas folded into the readers, the tied LM head untied", "[passes][rotate]") {
  for (const char* rotation : {"hadamard", "random"}) {
    INFO(rotation);
    ir::Model model = decoder(20.0f);
    auto run = testing::runPipelineOn(model, std::string("rotate-residual{rotation=") + rotation + "}");
    const auto& c = run.stats.back().counters;
    CHECK(c.at("rotated-norms") == 3);
    CHECK(c.at("rotated-writers") == 2);
    CHECK(c.at("hidden-size") == kHidden);
    // The three gamma Muls are gone (the squares stay), so is the head's Transpose.
    CHECK(testing::countOps(*run.after.graph, "Mul") == 3);
    CHECK(testing::countOps(*run.after.graph, "Transpose") == 0);
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      auto feeds = tokenFeeds(seed);
      auto a = testing::runModel(model, feeds), b = testing::runModel(run.after, feeds);
      CHECK(testing::normRelativeError(b.front().second, a.front().second) < 1e-5);
    }
  }
}

TEST_CASE("rotate-residual before 4-bit weights lowers the error an outlier channel causes", "[passes][rotate]") {
  ir::Model model = decoder(20.0f);
  const std::string quantize = "quantize-weights{bits=4,block=16,embedding-bits=8}";
  auto plain = testing::runPipelineOn(model, quantize);
  auto rotated = testing::runPipelineOn(model, "rotate-residual," + quantize);
  // Every weight is quantized: two DequantizeLinear per block, the table, and (rotated) the head.
  CHECK(testing::countOps(*plain.after.graph, "DequantizeLinear") == 5);
  CHECK(testing::countOps(*rotated.after.graph, "DequantizeLinear") == 6);
  // embedding-bits covers the untied head too: 8-bit table and head, 4-bit blocks elsewhere.
  auto int8Weights = [](const ir::Model& m) {
    int n = 0;
    for (const ir::Node* node : m.graph->nodes()) n += node->opType() == "DequantizeLinear" && node->input(0)->dtype() == ir::DataType::kInt8;
    return n;
  };
  CHECK(int8Weights(plain.after) == 1);
  CHECK(int8Weights(rotated.after) == 2);
  const double before = logitsError(model, plain.after), after = logitsError(model, rotated.after);
  INFO("4-bit logits error " << before << ", rotated first " << after);
  CHECK(after < 0.8 * before);  // measured 0.184 against 0.261
}

TEST_CASE("rotate-residual leaves a model alone when something else reads the residual stream", "[passes][rotate]") {
  ir::Model model = decoder(1.0f, 5, /*residualOutput=*/true);
  ir::Model after = model.clone();
  auto p = passes::parsePipeline("rotate-residual");
  REQUIRE(p.isOk());
  passes::PassContext ctx(after);
  auto stats = passes::runPipeline(after, *p, ctx, {});
  REQUIRE(stats.isOk());
  CHECK(stats->back().rewrites == 0);
  CHECK(testing::graphText(after) == testing::graphText(model));
  bool noted = false;
  for (const std::string& n : ctx.notes()) noted = noted || n.find("is a graph output") != std::string::npos;
  CHECK(noted);
  CHECK_FALSE(passes::parsePipeline("rotate-residual{rotation=givens}").isOk());
}
