// quantize-dynamic: MatMul/Gemm with constant weights become DynamicQuantizeLinear +
// MatMulInteger with int8 weights; the result stays close to float on whittle's runtime.
#include <catch2/catch.hpp>
#include <cmath>

#include "passes/pass_test_util.h"
#include "support/graph_queries.h"

using namespace whittle;

namespace {

ir::Model transformerBlock() {
  testing::GraphBuilder b(8);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 4, 16});
  ir::Value* h = b.node("MatMul", {x, b.weight("w1", {16, 32})}, {}, "proj_in");
  ir::Value* r = b.node("Relu", {h}, {}, "act");
  ir::Value* y = b.node("MatMul", {r, b.weight("w2", {32, 8})}, {}, "proj_out");
  ir::Value* z = b.node("MatMul", {y, b.node("Transpose", {y}, {ir::Attribute::makeInts("perm", {0, 2, 1})})}, {}, "scores");
  b.output(z, ir::DataType::kFloat, {2, 4, 4});
  return b.build(17);
}

using testing::countOps;

}  // namespace

TEST_CASE("quantize-dynamic quantizes MatMuls with constant weights", "[passes][quantize-dynamic]") {
  ir::Model model = transformerBlock();
  auto run = testing::runPipelineOn(model, "quantize-dynamic");
  const ir::Graph& g = *run.after.graph;
  CHECK(countOps(g, "MatMulInteger") == 2);
  CHECK(countOps(g, "DynamicQuantizeLinear") == 2);
  CHECK(countOps(g, "MatMul") == 1);  // activation x activation stays float
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() != "MatMulInteger") continue;
    CHECK(n->input(1)->constant()->dtype() == ir::DataType::kInt8);
    CHECK(n->input(3)->constant()->numel() == n->input(1)->constant()->dims()[1]);  // per column
  }
  auto feeds = testing::randomFeeds(model, 4);
  auto ya = testing::runModel(model, feeds);
  auto yb = testing::runModel(run.after, feeds);
  CHECK(testing::normRelativeError(yb[0].second, ya[0].second) < 0.03);
}

TEST_CASE("quantize-dynamic leaves excluded and non-constant MatMuls alone", "[passes][quantize-dynamic]") {
  ir::Model model = transformerBlock();
  auto run = testing::runPipelineOn(model, "quantize-dynamic{exclude-nodes=proj_.*}");
  CHECK(countOps(*run.after.graph, "MatMulInteger") == 0);
  CHECK(countOps(*run.after.graph, "MatMul") == 3);
  auto tensorWise = testing::runPipelineOn(model, "quantize-dynamic{per-channel=false,exclude-nodes=proj_out}");
  CHECK(countOps(*tensorWise.after.graph, "MatMulInteger") == 1);
  for (const ir::Node* n : tensorWise.after.graph->nodes()) {
    if (n->opType() == "MatMulInteger") CHECK(n->input(3)->constant()->numel() == 1);
  }
}
