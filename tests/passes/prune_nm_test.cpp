// prune-nm: at most n of every m weights along the reduction axis stay nonzero, the largest
// ones; layers whose reduction length is not a multiple of m stay dense.
#include <catch2/catch.hpp>
#include <cmath>

#include "passes/pass_test_util.h"
#include "whittle/analysis/sparsity.h"

using namespace whittle;

namespace {

ir::Model mixedLayers() {
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 4, 4});
  ir::Value* a = b.node("Conv", {x, b.weight("w_rgb", {8, 3, 3, 3})}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "rgb");
  ir::Value* c = b.node("Conv", {b.node("Relu", {a}), b.weight("w_conv", {16, 8, 3, 3})}, {}, "conv");  // [1,16,2,2]
  ir::Value* f = b.node("Flatten", {c}, {ir::Attribute::makeInt("axis", 1)});                          // [1,64]
  ir::Value* g = b.node("Gemm", {f, b.weight("w_gemm", {12, 64}), b.weight("b_gemm", {12})},
                        {ir::Attribute::makeInt("transB", 1)}, "gemm");
  ir::Value* y = b.node("MatMul", {g, b.weight("w_mm", {12, 8})}, {}, "matmul");
  b.output(y, ir::DataType::kFloat, {1, 8});
  return b.build(17);
}

}  // namespace

TEST_CASE("prune-nm makes every reduction group 2:4, keeping the largest", "[passes][prune]") {
  ir::Model model = mixedLayers();
  auto run = testing::runPipelineOn(model, "prune-nm{n=2,m=4}");
  CHECK(run.stats.back().counters.at("layers-pruned") == 3);
  CHECK(run.stats.back().counters.at("layers-skipped") == 1);  // the RGB Conv: 3 input channels
  auto layers = analysis::nmStructure(*run.after.graph, 2, 4);
  REQUIRE(layers.size() == 4);
  for (const auto& l : layers) {
    INFO(l.node);
    if (l.node == "rgb") {
      CHECK_FALSE(l.applicable);
      CHECK(l.zeros == 0);
      continue;
    }
    CHECK(l.compliant());
    CHECK(l.zeros * 2 == l.elements);  // exactly half: random weights have no zeros of their own
  }
  // Within each group the kept weights are the two largest of the original four.
  ir::Graph& before = *model.graph;
  ir::Graph& after = *run.after.graph;
  for (const auto& pw : analysis::prunableWeights(after)) {
    if (pw.node->name() == "rgb") continue;
    const ir::Tensor* orig = nullptr;
    for (ir::Node* n : before.nodes()) {
      if (n->name() == pw.node->name()) orig = n->input(1)->constant();
    }
    REQUIRE(orig != nullptr);
    auto groups = analysis::reductionGroups(*pw.node, pw.tensor->dims(), 4);
    REQUIRE(groups);
    for (size_t g = 0; g < groups->size(); g += 4) {
      float minKept = INFINITY, maxDropped = 0;
      for (size_t j = 0; j < 4; ++j) {
        int64_t i = (*groups)[g + j];
        float o = std::fabs(orig->values<float>()[i]);
        if (pw.tensor->values<float>()[i] == 0.0f) maxDropped = std::max(maxDropped, o);
        else minKept = std::min(minKept, o);
      }
      CHECK(maxDropped <= minKept);
    }
  }
  auto out = testing::runModel(run.after, testing::randomFeeds(run.after, 9));
  CHECK(out[0].second.numel() == 8);
}

TEST_CASE("prune-nm 1:2 halves groups of two", "[passes][prune]") {
  ir::Model model = mixedLayers();
  auto run = testing::runPipelineOn(model, "prune-nm{n=1,m=2}");
  for (const auto& l : analysis::nmStructure(*run.after.graph, 1, 2)) {
    if (l.applicable) CHECK(l.compliant());
  }
  // 2:4 needs more than 1:2 gives: a 1:2 layer is 2:4 as well.
  for (const auto& l : analysis::nmStructure(*run.after.graph, 2, 4)) {
    if (l.applicable) CHECK(l.compliant());
  }
}
