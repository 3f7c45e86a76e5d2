// prune-channels: whole output channels go, with the matching inputs of their consumers
// (through Relu, MaxPool and Concat); the result equals the original model with those
// channels zeroed, and MACs and parameters drop. Convs feeding an Add are left whole.
#include <catch2/catch.hpp>
#include <set>

#include "passes/pass_test_util.h"
#include "whittle/analysis/model_stats.h"

using namespace whittle;

namespace {

// Biases hold distinct positive values, so a kept output channel is found by its bias.
ir::Value* distinctBias(testing::GraphBuilder& b, const std::string& name, int64_t n, float base) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(base + 0.01f * static_cast<float>(i + 1));
  return b.constant(name, {n}, v);
}

ir::Model fire() {
  testing::GraphBuilder b(31);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 8, 8});
  auto pads = ir::Attribute::makeInts("pads", {1, 1, 1, 1});
  ir::Value* s = b.node("Conv", {x, b.weight("w1", {8, 4, 3, 3}), distinctBias(b, "b1", 8, 0.0f)}, {pads}, "squeeze");
  ir::Value* p = b.node("MaxPool", {b.node("Relu", {s})}, {ir::Attribute::makeInts("kernel_shape", {2, 2}),
                                                         ir::Attribute::makeInts("strides", {2, 2})});
  ir::Value* e1 = b.node("Relu", {b.node("Conv", {p, b.weight("w2", {6, 8, 1, 1}), distinctBias(b, "b2", 6, 1.0f)}, {}, "expand1")});
  ir::Value* e3 = b.node("Relu", {b.node("Conv", {p, b.weight("w3", {6, 8, 3, 3}), distinctBias(b, "b3", 6, 2.0f)}, {pads}, "expand3")});
  ir::Value* c = b.node("Concat", {e1, e3}, {ir::Attribute::makeInt("axis", 1)});
  ir::Value* y = b.node("Conv", {c, b.weight("w4", {5, 12, 1, 1}), distinctBias(b, "b4", 5, 3.0f)}, {}, "classifier");
  b.output(y, ir::DataType::kFloat, {1, 5, 4, 4});
  return b.build(17);
}

const ir::Node* nodeNamed(const ir::Graph& g, const std::string& name) {
  for (const ir::Node* n : g.nodes()) {
    if (n->name() == name) return n;
  }
  return nullptr;
}

// The output channels of `name` that the pruned model no longer has, found by bias value.
std::vector<int64_t> removedChannels(const ir::Graph& before, const ir::Graph& after, const std::string& name) {
  const ir::Tensor* b0 = nodeNamed(before, name)->input(2)->constant();
  const ir::Tensor* b1 = nodeNamed(after, name)->input(2)->constant();
  std::set<float> kept(b1->values<float>().begin(), b1->values<float>().end());
  std::vector<int64_t> removed;
  for (int64_t i = 0; i < b0->numel(); ++i) {
    if (!kept.contains(b0->values<float>()[i])) removed.push_back(i);
  }
  return removed;
}

// The original model with output channels `removed` of Conv `name` zeroed (weights and bias).
void zeroChannels(ir::Graph& g, const std::string& name, const std::vector<int64_t>& removed) {
  ir::Node* n = nullptr;
  for (ir::Node* m : g.nodes()) {
    if (m->name() == name) n = m;
  }
  for (size_t slot : {size_t{1}, size_t{2}}) {
    ir::Tensor t = *n->input(slot)->constant();
    int64_t per = t.numel() / t.dims()[0];
    float* d = t.mutableData<float>();
    for (int64_t o : removed) std::fill(d + o * per, d + (o + 1) * per, 0.0f);
    n->input(slot)->setConstant(t);
  }
}

}  // namespace

TEST_CASE("prune-channels removes channels through Relu, MaxPool and Concat", "[passes][prune]") {
  ir::Model model = fire();
  auto run = testing::runPipelineOn(model, "prune-channels{ratio=0.25}");
  const ir::Graph& g = *run.after.graph;
  CHECK(run.stats.back().counters.at("layers-pruned") == 3);
  CHECK(run.stats.back().counters.at("channels-removed") == 2 + 1 + 1);
  CHECK(nodeNamed(g, "squeeze")->input(1)->constant()->dims() == std::vector<int64_t>{6, 4, 3, 3});
  CHECK(nodeNamed(g, "expand1")->input(1)->constant()->dims() == std::vector<int64_t>{5, 6, 1, 1});
  CHECK(nodeNamed(g, "expand3")->input(1)->constant()->dims() == std::vector<int64_t>{5, 6, 3, 3});
  // The classifier feeds the graph output: it keeps its 5 outputs and loses 2 inputs.
  CHECK(nodeNamed(g, "classifier")->input(1)->constant()->dims() == std::vector<int64_t>{5, 10, 1, 1});

  ir::Model zeroed = model.clone();
  for (const char* name : {"squeeze", "expand1", "expand3"}) {
    auto removed = removedChannels(*model.graph, g, name);
    CHECK(removed.size() == (std::string(name) == "squeeze" ? 2u : 1u));
    zeroChannels(*zeroed.graph, name, removed);
  }
  testing::requireSameOutputs(zeroed, run.after, /*tolerance=*/1e-5);

  auto before = analysis::computeStats(model, "");
  auto after = analysis::computeStats(run.after, "");
  REQUIRE(before.isOk());
  REQUIRE(after.isOk());
  CHECK(after->macs.total < before->macs.total);
  CHECK(after->parameters.total < before->parameters.total);
}

TEST_CASE("prune-channels leaves Convs that feed an Add whole", "[passes][prune]") {
  testing::GraphBuilder b(4);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8, 4, 4});
  ir::Value* a = b.node("Conv", {x, b.weight("wa", {8, 8, 1, 1})}, {}, "a");
  ir::Value* s = b.node("Add", {a, x});
  ir::Value* y = b.node("Conv", {s, b.weight("wb", {4, 8, 1, 1})}, {}, "b");
  b.output(y, ir::DataType::kFloat, {1, 4, 4, 4});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "prune-channels{ratio=0.5,norm=l2}");
  CHECK(run.stats.back().counters.at("layers-pruned") == 0);
  CHECK(nodeNamed(*run.after.graph, "a")->input(1)->constant()->dims()[0] == 8);
  testing::requireSameOutputs(model, run.after);
}
