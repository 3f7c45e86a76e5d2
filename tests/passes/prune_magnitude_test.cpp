// prune-magnitude: exactly the asked fraction of the smallest weights becomes zero, per layer
// or across layers; the first and last layers stay dense by default.
#include <catch2/catch.hpp>
#include <cmath>

#include "passes/pass_test_util.h"
#include "whittle/passes/registry.h"

using namespace whittle;

namespace {

ir::Model threeConvs() {
  testing::GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8, 6, 6});
  ir::Value* a = b.node("Relu", {b.node("Conv", {x, b.weight("wa", {16, 8, 3, 3})}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "first")});
  ir::Value* m = b.node("Relu", {b.node("Conv", {a, b.weight("wb", {16, 16, 1, 1}), b.weight("bb", {16})}, {}, "middle")});
  ir::Value* y = b.node("Conv", {m, b.weight("wc", {8, 16, 1, 1})}, {}, "last");
  b.output(y, ir::DataType::kFloat, {1, 8, 6, 6});
  return b.build(17);
}

const ir::Tensor* weightOf(const ir::Graph& g, const std::string& node) {
  for (const ir::Node* n : g.nodes()) {
    if (n->name() == node) return n->input(1)->constant();
  }
  return nullptr;
}

int64_t zeros(const ir::Tensor* t) {
  int64_t z = 0;
  for (float v : t->values<float>()) z += v == 0.0f ? 1 : 0;
  return z;
}

}  // namespace

TEST_CASE("prune-magnitude per layer reaches the sparsity exactly and skips first and last", "[passes][prune]") {
  ir::Model model = threeConvs();
  auto run = testing::runPipelineOn(model, "prune-magnitude{sparsity=0.3}");
  const ir::Graph& g = *run.after.graph;
  CHECK(zeros(weightOf(g, "first")) == 0);
  CHECK(zeros(weightOf(g, "last")) == 0);
  const ir::Tensor* w = weightOf(g, "middle");
  REQUIRE(w != nullptr);
  CHECK(zeros(w) == std::llround(0.3 * 256));
  // The zeros are the smallest: every kept |w| is at least every pruned original |w|.
  const ir::Tensor* orig = weightOf(*model.graph, "middle");
  float maxPruned = 0, minKept = INFINITY;
  for (int64_t i = 0; i < w->numel(); ++i) {
    float o = std::fabs(orig->values<float>()[i]);
    if (w->values<float>()[i] == 0.0f) maxPruned = std::max(maxPruned, o);
    else minKept = std::min(minKept, o);
  }
  CHECK(maxPruned <= minKept);
  CHECK(run.stats.back().counters.at("layers-pruned") == 1);
  auto out = testing::runModel(run.after, testing::randomFeeds(run.after, 3));
  CHECK(out.size() == 1);
}

TEST_CASE("prune-magnitude with scope=global uses one threshold over all layers", "[passes][prune]") {
  ir::Model model = threeConvs();
  auto run = testing::runPipelineOn(model, "prune-magnitude{sparsity=0.7,scope=global,exclude-first-last=false}");
  const ir::Graph& g = *run.after.graph;
  int64_t total = 16 * 8 * 9 + 16 * 16 + 8 * 16;
  int64_t z = zeros(weightOf(g, "first")) + zeros(weightOf(g, "middle")) + zeros(weightOf(g, "last"));
  CHECK(z == std::llround(0.7 * static_cast<double>(total)));
  CHECK(run.stats.back().counters.at("weights-total") == total);
  // One threshold: the layers end up with different sparsities.
  CHECK(zeros(weightOf(g, "first")) != std::llround(0.7 * 16 * 8 * 9));
}

TEST_CASE("prune-magnitude rejects bad options", "[passes][prune]") {
  auto entries = passes::parsePipeline("prune-magnitude");
  REQUIRE(entries.isOk());
  const passes::PassInfo& info = *entries->front().info;
  CHECK_FALSE(info.factory(passes::PassOptions(std::map<std::string, std::string>{{"sparsity", "1.5"}})).isOk());
  CHECK_FALSE(info.factory(passes::PassOptions(std::map<std::string, std::string>{{"scope", "row"}})).isOk());
  CHECK(info.factory(passes::PassOptions(std::map<std::string, std::string>{{"scope", "global"}})).isOk());
}

TEST_CASE("prune-magnitude leaves depthwise convolutions dense unless told otherwise", "[passes][prune]") {
  testing::GraphBuilder b(23);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8, 6, 6});
  ir::Value* a = b.node("Conv", {x, b.weight("wa", {16, 8, 1, 1})}, {}, "first");
  ir::Value* d = b.node("Conv", {a, b.weight("wd", {16, 1, 3, 3})},
                        {ir::Attribute::makeInt("group", 16), ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "depthwise");
  ir::Value* m = b.node("Conv", {d, b.weight("wm", {16, 16, 1, 1})}, {}, "middle");
  b.output(b.node("Conv", {m, b.weight("wc", {8, 16, 1, 1})}, {}, "last"), ir::DataType::kFloat, {1, 8, 6, 6});
  ir::Model model = b.build(17);

  auto byDefault = testing::runPipelineOn(model, "prune-magnitude{sparsity=0.5}");
  CHECK(zeros(weightOf(*byDefault.after.graph, "depthwise")) == 0);
  CHECK(zeros(weightOf(*byDefault.after.graph, "middle")) == 16 * 16 / 2);

  auto all = testing::runPipelineOn(model, "prune-magnitude{sparsity=0.5,exclude-depthwise=false}");
  CHECK(zeros(weightOf(*all.after.graph, "depthwise")) == 16 * 9 / 2);
  CHECK(zeros(weightOf(*all.after.graph, "middle")) == 16 * 16 / 2);
}
