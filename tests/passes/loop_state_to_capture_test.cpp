// loop-state-to-capture: a Loop's carried value that the body hands back unchanged becomes a
// capture of its initial value (tf2onnx's form of LSTM kernels), the outputs stay exactly the
// same, ONNX Runtime runs the result, and quantize-int8 then keeps no float copy of the weight.
#include <catch2/catch.hpp>


#include "passes/ort_outputs.h"
#include "passes/pass_test_util.h"
#include "quant/quant_test_util.h"
#include "support/graph_queries.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/subgraph.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/quant/calibration.h"

using namespace whittle;

namespace {

const ir::Node* loopNode(const ir::Model& model) {
  for (const ir::Node* n : model.graph->nodes()) {
    if (n->opType() == "Loop") return n;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("loop-state-to-capture turns a state handed back unchanged into a capture; outputs unchanged; ORT runs it",
          "[passes][control-flow][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the control-flow models and the ONNX Runtime check")) return;
  testing::TempDir dir;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/subgraph_quant_models.py";
  REQUIRE(testing::shell(testing::python() + " " + testing::shellQuote(script) + " " + testing::shellQuote(dir.path())) == 0);
  auto model = onnx_io::load(dir.file("loop_state_weight.onnx"));
  REQUIRE(model.isOk());
  auto run = testing::runPipelineOn(*model, "loop-state-to-capture");
  CHECK(run.rewrites() == 1);
  const ir::Node* loop = loopNode(run.after);
  REQUIRE(loop != nullptr);
  // (M, cond, h): the weight left the signature; the body reads it from the main graph.
  CHECK(loop->numInputs() == 3);
  CHECK(loop->numOutputs() == 1);
  REQUIRE(loop->implicitInputs().size() == 1);
  CHECK(loop->implicitInputs()[0]->name() == "w");
  auto body = onnx_io::loadSubgraph(*loop->findAttribute("body"), loop->describe());
  REQUIRE(body.isOk());
  CHECK(body->numFormalInputs == 3);
  CHECK(body->captures == std::vector<std::string>{"w"});
  CHECK(body->graph->outputs().size() == 2);
  // The interface is unchanged: y from the Loop, w_final now the weight itself.
  REQUIRE(run.after.graph->outputs().size() == 2);
  CHECK(run.after.graph->outputs()[0]->name() == "y");
  CHECK(run.after.graph->outputs()[1]->name() == "w_final");
  auto feeds = testing::randomFeeds(*model, 3);
  auto before = testing::runModel(*model, feeds);
  auto after = testing::runModel(run.after, feeds);
  REQUIRE(after.size() == 2);
  for (size_t i = 0; i < 2; ++i) CHECK(testing::normRelativeError(after[i].second, before[i].second) == 0.0);
  CHECK(testing::normRelativeError(testing::ortOutput(run.after, feeds[0].second), before[0].second) < 1e-6);

  SECTION("then quantize-int8 keeps no float copy of the weight") {
    // As tf2onnx writes it, nothing reads the Loop's final weight: drop that graph output.
    ir::Model hidden = model->clone();
    hidden.graph->removeOutput(1);
    auto data = testing::randomCalibrationSet(hidden, dir, 16, 5, -1.0, 1.0);
    quant::StandardCalibrationProvider provider(std::nullopt, data.get(), {});
    for (const char* pipeline : {"quantize-int8", "loop-state-to-capture,quantize-int8"}) {
      INFO(pipeline);
      const bool captured = std::string(pipeline) != "quantize-int8";
      ir::Model q = hidden.clone();
      passes::PassContext ctx(q);
      ctx.calibration = &provider;
      auto parsed = passes::parsePipeline(pipeline);
      REQUIRE(parsed.isOk());
      REQUIRE(passes::runPipeline(q, *parsed, ctx, {}).isOk());
      // The float [8, 8] weight stays only where the state still carries it through the loop;
      // as a capture, the body's int8 copy replaces it and the main graph lets it go.
      int64_t floatWeights = 0;
      for (const ir::Value* v : q.graph->initializers()) {
        floatWeights += v->dtype() == ir::DataType::kFloat && v->constant()->numel() == 64 ? 1 : 0;
      }
      CHECK(floatWeights == (captured ? 0 : 1));
      const ir::Node* l = loopNode(q);
      REQUIRE(l != nullptr);
      CHECK(l->numInputs() == (captured ? 3u : 4u));
      CHECK(l->implicitInputs().empty());  // the body reads its own int8 copy, not the float weight
      auto out = testing::runModel(q, feeds);
      CHECK(testing::normRelativeError(out[0].second, before[0].second) < 0.05);
      CHECK(testing::normRelativeError(testing::ortOutput(q, feeds[0].second), before[0].second) < 0.05);
    }
  }
}
