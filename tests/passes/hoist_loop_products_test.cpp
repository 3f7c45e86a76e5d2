// hoist-loop-products: a Loop body's MatMul of a row gathered from a main-graph tensor by a
// constant becomes one product before the Loop, gathered per step; the outputs stay the same
// (up to float summation order), ONNX Runtime runs the result, and a gather along the last axis
// is left alone.
#include <catch2/catch.hpp>

#include "passes/ort_outputs.h"
#include "passes/pass_test_util.h"
#include "support/graph_queries.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/subgraph.h"

using namespace whittle;

TEST_CASE("hoist-loop-products moves a gathered row's product before the Loop; outputs unchanged; ORT runs it",
          "[passes][control-flow][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the control-flow models and the ONNX Runtime check")) return;
  testing::TempDir dir;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/subgraph_quant_models.py";
  REQUIRE(testing::shell(testing::python() + " " + testing::shellQuote(script) + " " + testing::shellQuote(dir.path())) == 0);
  auto model = onnx_io::load(dir.file("loop_gather_matmul.onnx"));
  REQUIRE(model.isOk());
  auto run = testing::runPipelineOn(*model, "hoist-loop-products");
  CHECK(run.rewrites() == 1);
  // The main graph: Relu, the hoisted MatMul of xs by the body's W (copied out), then the Loop
  // reading the product as a capture.
  const ir::Graph& g = *run.after.graph;
  CHECK(testing::countOps(g, "MatMul") == 1);
  const ir::Node* loop = nullptr;
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "Loop") loop = n;
  }
  REQUIRE(loop != nullptr);
  auto body = onnx_io::loadSubgraph(*loop->findAttribute("body"), loop->describe());
  REQUIRE(body.isOk());
  // In the body: h's product by R and the last-axis gather's product stay; the step's row of
  // the product replaces the other.
  CHECK(testing::countOps(*body->graph, "MatMul") == 2);
  CHECK(testing::countOps(*body->graph, "Gather") == 2);
  bool readsProduct = false;
  for (const std::string& c : body->captures) readsProduct = readsProduct || c.find("_hoisted") != std::string::npos;
  CHECK(readsProduct);
  auto feeds = testing::randomFeeds(*model, 3);
  auto before = testing::runModel(*model, feeds);
  auto after = testing::runModel(run.after, feeds);
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < before.size(); ++i) CHECK(testing::normRelativeError(after[i].second, before[i].second) < 1e-6);
  CHECK(testing::normRelativeError(testing::ortOutput(run.after, feeds[0].second), before[0].second) < 1e-6);
}
