// quantize-dynamic: MatMul/Gemm with constant weights become DynamicQuantizeLinear +
// MatMulInteger with int8 weights; the result stays close to float on whittle's runtime.
#include <catch2/catch.hpp>
#include <cmath>

#include "passes/calib_test_util.h"
#include "passes/ort_outputs.h"
#include "passes/pass_test_util.h"
#include "support/graph_queries.h"
#include "quant/quant_test_util.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/quant/calibration.h"

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

TEST_CASE("quantize-dynamic widens a float16 model to float32 and quantizes its MatMuls", "[passes][quantize-dynamic]") {
  // A float16 block (weights, activations, interface): the pass widens it first (widen-half),
  // then takes both weight MatMuls; the model still reads and writes float16.
  testing::GraphBuilder b(9);
  ir::Value* x = b.input("x", ir::DataType::kFloat16, {2, 4, 16});
  ir::Value* h = b.node("MatMul", {x, b.constant("w1", b.randomTensor(ir::DataType::kFloat16, {16, 32}))}, {}, "proj_in");
  ir::Value* y = b.node("MatMul", {b.node("Relu", {h}, {}, "act"),
                                   b.constant("w2", b.randomTensor(ir::DataType::kFloat16, {32, 8}))}, {}, "proj_out");
  b.output(y, ir::DataType::kFloat16, {2, 4, 8});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "quantize-dynamic");
  const ir::Graph& g = *run.after.graph;
  CHECK(countOps(g, "MatMulInteger") == 2);
  CHECK(g.inputs()[0]->dtype() == ir::DataType::kFloat16);
  CHECK(g.outputs()[0]->dtype() == ir::DataType::kFloat16);
  auto feeds = testing::randomFeeds(model, 4);
  auto ya = testing::runModel(model, feeds);
  auto yb = testing::runModel(run.after, feeds);
  REQUIRE(yb[0].second.dtype() == ir::DataType::kFloat16);
  CHECK(testing::normRelativeError(yb[0].second, ya[0].second) < 0.03);
}

TEST_CASE("quantize-dynamic quantizes Gemm as torch's nn.Linear exports it (transB = 1), alpha and beta included",
          "[passes][quantize-dynamic]") {
  // x [4, 24] · W^T (W [16, 24], transB = 1) · alpha + beta · C; and a transA = 1 Gemm, which stays float.
  for (auto [alpha, beta] : {std::pair{1.0f, 1.0f}, std::pair{0.5f, 2.0f}}) {
    INFO("alpha " << alpha << ", beta " << beta);
    testing::GraphBuilder b(12);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 24});
    ir::Value* y = b.node("Gemm", {x, b.weight("w", {16, 24}), b.weight("c", {16})},
                          {ir::Attribute::makeInt("transB", 1), ir::Attribute::makeFloat("alpha", alpha),
                           ir::Attribute::makeFloat("beta", beta)},
                          "linear");
    ir::Value* z = b.node("Gemm", {b.node("Transpose", {y}, {ir::Attribute::makeInts("perm", {1, 0})}), b.weight("v", {16, 8})},
                          {ir::Attribute::makeInt("transA", 1)}, "transposed_a");
    b.output(z, ir::DataType::kFloat, {4, 8});
    ir::Model model = b.build(17);
    auto run = testing::runPipelineOn(model, "quantize-dynamic");
    const ir::Graph& g = *run.after.graph;
    CHECK(countOps(g, "MatMulInteger") == 1);
    CHECK(countOps(g, "Gemm") == 1);  // transA = 1 stays float
    for (const ir::Node* n : g.nodes()) {
      if (n->opType() != "MatMulInteger") continue;
      CHECK(n->input(1)->constant()->dims() == std::vector<int64_t>{24, 16});  // stored [K, N]
      CHECK(n->input(3)->constant()->numel() == 16);                          // a scale per output column
    }
    auto feeds = testing::randomFeeds(model, 4);
    auto ya = testing::runModel(model, feeds);
    auto yb = testing::runModel(run.after, feeds);
    CHECK(testing::normRelativeError(yb[0].second, ya[0].second) < 0.03);
    if (testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime check")) {
      auto ort = testing::ortOutputs(run.after, feeds);
      REQUIRE(ort.size() == 1);
      CHECK(testing::normRelativeError(yb[0].second, ort[0]) < 1e-4);
    }
  }
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

TEST_CASE("quantize-dynamic folds weights computed from constants and quantizes them", "[passes][quantize-dynamic]") {
  // A weight written as ConstantOfShape then Mul (the light BVLC AlexNet's fills, scaled per
  // column here) is folded, then quantized like an initializer; the product of two activations
  // is not touched.
  testing::GraphBuilder b(9);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 4, 16});
  ir::Value* fill = b.node("ConstantOfShape", {b.constantInt64("wshape", {2}, {16, 8})},
                           {ir::Attribute::makeTensor("value", ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1}, {0.25f}))},
                           "fill");
  ir::Value* w = b.node("Mul", {fill, b.weight("per_column", {8})}, {}, "scale_w");
  ir::Value* y = b.node("MatMul", {x, w}, {}, "proj");
  b.output(b.node("MatMul", {y, b.node("Transpose", {y}, {ir::Attribute::makeInts("perm", {0, 2, 1})})}, {}, "scores"),
           ir::DataType::kFloat, {2, 4, 4});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "quantize-dynamic");
  const ir::Graph& g = *run.after.graph;
  CHECK(countOps(g, "ConstantOfShape") == 0);
  CHECK(countOps(g, "MatMulInteger") == 1);
  CHECK(countOps(g, "MatMul") == 1);
  auto feeds = testing::randomFeeds(model, 4);
  auto ya = testing::runModel(model, feeds);
  auto yb = testing::runModel(run.after, feeds);
  CHECK(testing::normRelativeError(yb[0].second, ya[0].second) < 0.03);
}

TEST_CASE("quantize-dynamic and quantize-int8 note the com.microsoft ops with weights they leave float",
          "[passes][quantize-dynamic][transformer]") {
  // ONNX Runtime's transformer optimizer packs Q, K and V weights into Attention, and its
  // level-2 fusions write MatMul by a constant times a scale as FusedMatMul: both stay float32,
  // and the passes say so; the plain MatMul beside them is still quantized.
  testing::GraphBuilder b(3);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 4, 16});
  ir::Value* a = b.node("Attention", {x, b.weight("qkv", {16, 48}), b.weight("qkv_bias", {48})},
                        {ir::Attribute::makeInt("num_heads", 4)}, "att", "com.microsoft");
  ir::Value* f = b.node("FusedMatMul", {a, b.weight("wf", {16, 16})}, {ir::Attribute::makeFloat("alpha", 0.5f)},
                        "fmm", "com.microsoft");
  ir::Value* y = b.node("MatMul", {f, b.weight("w", {16, 8})}, {}, "proj");
  b.output(y, ir::DataType::kFloat, {2, 4, 8});
  ir::Model model = b.build(17);
  auto feeds = testing::randomFeeds(model, 5);
  auto before = testing::runModel(model, feeds);
  for (const char* pass : {"quantize-dynamic", "quantize-int8"}) {
    CAPTURE(pass);
    ir::Model after = model.clone();
    passes::PassContext ctx(after);
    testing::TempDir dir;
    auto data = testing::randomCalibrationSet(model, dir, 8, 5);
    quant::StandardCalibrationProvider provider(std::nullopt, data.get(), {});
    if (std::string(pass) == "quantize-int8") ctx.calibration = &provider;
    auto pipeline = passes::parsePipeline(pass);
    REQUIRE(pipeline.isOk());
    auto stats = passes::runPipeline(after, *pipeline, ctx, {});
    INFO((stats.isOk() ? std::string() : stats.status().message()));
    REQUIRE(stats.isOk());
    int notes = 0;
    for (const std::string& n : ctx.notes()) {
      notes += n == std::string(pass) + ": com.microsoft.Attention 'att' stays float32 (no int8 form here; its weights stay float)";
      notes += n.find(std::string(pass) + ": com.microsoft.FusedMatMul 'fmm' stays float32") == 0;
    }
    INFO("notes: " << [&] {
      std::string all;
      for (const std::string& n : ctx.notes()) all += n + " | ";
      return all;
    }());
    CHECK(notes == 2);
    CHECK(countOps(*after.graph, "Attention") == 1);
    CHECK(countOps(*after.graph, "FusedMatMul") == 1);
    CHECK(countOps(*after.graph, "MatMul") + countOps(*after.graph, "MatMulInteger") == 1);
    CHECK(countOps(*after.graph, "MatMul") == (std::string(pass) == "quantize-int8" ? 1 : 0));
    auto out = testing::runModel(after, feeds);
    CHECK(testing::normRelativeError(out[0].second, before[0].second) < 0.05);
  }
}

namespace {

/// X [5, 2, 6] -> LSTM (bidirectional, hidden 8, with B and initial_h) -> Y, Y_h; `layout` 0
/// or 1 (then X is [2, 5, 6]).
ir::Model lstmModel(int64_t layout) {
  testing::GraphBuilder b(21);
  const int64_t dirs = 2, hidden = 8, input = 6;
  ir::Value* x = b.input("x", ir::DataType::kFloat, layout == 0 ? std::vector<int64_t>{5, 2, input} : std::vector<int64_t>{2, 5, input});
  ir::Value* w = b.weight("W", {dirs, 4 * hidden, input});
  ir::Value* r = b.weight("R", {dirs, 4 * hidden, hidden});
  ir::Value* bias = b.weight("B", {dirs, 8 * hidden});
  ir::Value* h0 = b.input("h0", ir::DataType::kFloat, layout == 0 ? std::vector<int64_t>{dirs, 2, hidden} : std::vector<int64_t>{2, dirs, hidden});
  ir::Graph& g = b.graph();
  ir::Node* n = g.addNode("LSTM", {x, w, r, bias, nullptr, h0}, {"y", "y_h"}, "enc_lstm");
  n->setAttribute(ir::Attribute::makeInt("hidden_size", hidden));
  n->setAttribute(ir::Attribute::makeString("direction", "bidirectional"));
  n->setAttribute(ir::Attribute::makeInt("layout", layout));
  b.output(n->output(0), ir::DataType::kFloat, layout == 0 ? std::vector<int64_t>{5, dirs, 2, hidden} : std::vector<int64_t>{2, 5, dirs, hidden});
  b.output(n->output(1), ir::DataType::kFloat, layout == 0 ? std::vector<int64_t>{dirs, 2, hidden} : std::vector<int64_t>{2, dirs, hidden});
  return b.build(14);
}

// Four MatMuls in a chain. The input of "planted" has one channel 40x louder (a Mul) and the
// matching weight row 40x smaller: the function is the same, but the per-tensor uint8 step
// over that input is 40x coarser, so W8A8 costs most there.
ir::Model plantedOutlierChain() {
  testing::GraphBuilder b(11);
  constexpr int64_t kWidth = 32, kLoud = 5;
  constexpr float kGain = 40.0f;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 8, kWidth});
  ir::Value* h = b.node("MatMul", {x, b.weight("w0", {kWidth, kWidth}, ir::DataType::kFloat, -0.3, 0.3)}, {}, "layer0");
  h = b.node("MatMul", {h, b.weight("w1", {kWidth, kWidth}, ir::DataType::kFloat, -0.3, 0.3)}, {}, "layer1");
  std::vector<float> gain(kWidth, 1.0f);
  gain[kLoud] = kGain;
  h = b.node("Mul", {h, b.constant("gain", {kWidth}, gain)}, {}, "loud");
  ir::Tensor w2 = b.randomTensor(ir::DataType::kFloat, {kWidth, kWidth}, -0.3, 0.3);
  float* row = w2.mutableData<float>() + kLoud * kWidth;
  for (int64_t c = 0; c < kWidth; ++c) row[c] /= kGain;
  h = b.node("MatMul", {h, b.constant("w2", std::move(w2))}, {}, "planted");
  h = b.node("MatMul", {h, b.weight("w3", {kWidth, kWidth}, ir::DataType::kFloat, -0.3, 0.3)}, {}, "layer3");
  b.output(h, ir::DataType::kFloat, {2, 8, kWidth});
  return b.build(17);
}

const ir::Node* nodeStartingWith(const ir::Graph& g, const std::string& prefix) {
  for (const ir::Node* n : g.nodes()) {
    if (n->name().rfind(prefix, 0) == 0) return n;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("quantize-dynamic{lstm=true} writes an LSTM as ONNX Runtime's DynamicQuantizeLSTM; ORT runs it alike",
          "[passes][quantize-dynamic][ort]") {
  ir::Model model = lstmModel(0);
  auto feeds = testing::randomFeeds(model, 9);
  auto before = testing::runModel(model, feeds);

  SECTION("by default the LSTM stays float, and the note names the option") {
    ir::Model after = model.clone();
    passes::PassContext ctx(after);
    auto pipeline = passes::parsePipeline("quantize-dynamic");
    REQUIRE(pipeline.isOk());
    REQUIRE(passes::runPipeline(after, *pipeline, ctx, {}).isOk());
    CHECK(countOps(*after.graph, "LSTM") == 1);
    bool named = false;
    for (const std::string& n : ctx.notes()) named = named || n.find("quantize-dynamic{lstm=true}") != std::string::npos;
    CHECK(named);
  }
  for (bool perChannel : {true, false}) {
    DYNAMIC_SECTION("per-channel=" << perChannel) {
      auto run = testing::runPipelineOn(model, std::string("quantize-dynamic{lstm=true,per-channel=") +
                                                   (perChannel ? "true" : "false") + "}");
      const ir::Graph& g = *run.after.graph;
      CHECK(countOps(g, "LSTM") == 0);
      REQUIRE(countOps(g, "DynamicQuantizeLSTM") == 1);
      CHECK(run.after.opsetVersion("com.microsoft") == 1);
      const ir::Node* q = nullptr;
      for (const ir::Node* n : g.nodes()) q = n->opType() == "DynamicQuantizeLSTM" ? n : q;
      REQUIRE(q->numInputs() == 12);
      CHECK(q->domain() == "com.microsoft");
      // W [2, 32, 6] and R [2, 32, 8] stored transposed, int8; scales per direction and gate row.
      CHECK(q->input(1)->constant()->dims() == std::vector<int64_t>{2, 6, 32});
      CHECK(q->input(2)->constant()->dims() == std::vector<int64_t>{2, 8, 32});
      CHECK(q->input(1)->constant()->dtype() == ir::DataType::kInt8);
      CHECK(q->input(8)->constant()->numel() == (perChannel ? 64 : 2));
      CHECK(q->input(10)->constant()->numel() == (perChannel ? 64 : 2));
      CHECK(q->input(9)->constant()->dtype() == ir::DataType::kInt8);
      CHECK(q->attrString("direction", "") == "bidirectional");
      auto after = testing::runModel(run.after, feeds);
      REQUIRE(after.size() == 2);
      for (size_t i = 0; i < 2; ++i) CHECK(testing::normRelativeError(after[i].second, before[i].second) < 0.03);
      // ONNX Runtime runs the emitted model with the same arithmetic (rounding ties aside).
      if (testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime check")) {
        auto ort = testing::ortOutputs(run.after, feeds);
        REQUIRE(ort.size() == 2);
        for (size_t i = 0; i < 2; ++i) CHECK(testing::normRelativeError(after[i].second, ort[i]) < 1e-4);
      }
    }
  }
  SECTION("layout 1 (batch first) stays float: the op has no layout attribute") {
    auto run = testing::runPipelineOn(lstmModel(1), "quantize-dynamic{lstm=true}");
    CHECK(countOps(*run.after.graph, "LSTM") == 1);
    CHECK(countOps(*run.after.graph, "DynamicQuantizeLSTM") == 0);
  }
}

TEST_CASE("quantize-dynamic keep-sensitive keeps the layer with a planted outlier input at 8-bit weight-only",
          "[passes][quantize-dynamic]") {
  const ir::Model model = plantedOutlierChain();
  ir::Model all = model.clone();
  REQUIRE(testing::runWith(all, "quantize-dynamic").isOk());
  // The default (3 x K candidates measured end to end) and every candidate measured.
  for (const std::string options : {"keep-sensitive=1", "keep-sensitive=1,sensitivity-candidates=4,sensitivity-samples=4"}) {
    INFO(options);
    ir::Model kept = model.clone();
    testing::RandomInputsProvider provider;
    auto stats = testing::runWith(kept, "quantize-dynamic{" + options + "}", &provider);
    INFO(stats.status().message());
    REQUIRE(stats.isOk());
    REQUIRE(ir::verify(*kept.graph).isOk());
    const ir::Graph& g = *kept.graph;
    CHECK(countOps(g, "MatMulInteger") == 3);
    const ir::Node* planted = nodeStartingWith(g, "planted");
    REQUIRE(planted != nullptr);
    CHECK(planted->opType() == "MatMulNBits");
    CHECK(planted->attrInt("bits", 0) == 8);
    const auto& counters = stats->front().counters;
    CHECK(counters.at("kept-sensitive") == 1);
    CHECK(counters.at("kept-weight-only") == 1);
    CHECK(counters.at("sensitivity-trials") >= 3);
    // Before against after: keeping it takes most of the W8A8 error away.
    const double allError = testing::loudOutputError(model, all, -1, 1.0f);
    const double keptError = testing::loudOutputError(model, kept, -1, 1.0f);
    INFO("all W8A8 " << allError << ", planted kept " << keptError);
    CHECK(keptError < 0.5 * allError);
    CHECK(keptError < 0.05);
  }
}

TEST_CASE("quantize-dynamic keep-sensitive: float kept layers, and calibration is required", "[passes][quantize-dynamic]") {
  const ir::Model model = plantedOutlierChain();
  ir::Model kept = model.clone();
  testing::RandomInputsProvider provider;
  auto stats = testing::runWith(kept, "quantize-dynamic{keep-sensitive=2,keep-format=float}", &provider);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(countOps(*kept.graph, "MatMulInteger") == 2);
  CHECK(countOps(*kept.graph, "MatMul") == 2);
  const ir::Node* planted = nodeStartingWith(*kept.graph, "planted");
  REQUIRE(planted != nullptr);
  CHECK(planted->opType() == "MatMul");
  testing::requireSameOutputs(model, kept, 0.05);

  ir::Model noCalib = model.clone();
  auto missing = testing::runWith(noCalib, "quantize-dynamic{keep-sensitive=1}");
  REQUIRE_FALSE(missing.isOk());
  CHECK(missing.status().message().find("--calib") != std::string::npos);
}

TEST_CASE("quantize-dynamic keep-sensitive: a trial (every weight quantized once, one layer swapped back to float) "
          "measures what quantizing all the others does",
          "[passes][quantize-dynamic]") {
  // The chain's MatMuls read each other's outputs, so a swapped layer reads a W8A8 chain's result.
  const ir::Model model = plantedOutlierChain();
  ir::Model kept = model.clone();
  testing::RandomInputsProvider provider;
  passes::PassContext ctx(kept);
  ctx.calibration = &provider;
  auto pipeline = passes::parsePipeline("quantize-dynamic{keep-sensitive=3,sensitivity-candidates=4,sensitivity-samples=4,"
                                        "keep-format=float}");
  REQUIRE(pipeline.isOk());
  REQUIRE(passes::runPipeline(kept, *pipeline, ctx, {}).isOk());
  std::string note;
  for (const std::string& n : ctx.notes()) note = n.find("keep-sensitive kept") != std::string::npos ? n : note;
  INFO(note);
  REQUIRE_FALSE(note.empty());
  // The same measure, the old way: the model with every MatMul but one quantized, on the same 4 feeds.
  std::vector<std::vector<runtime::NamedTensor>> feeds;
  for (uint64_t s = 0; s < 4; ++s) feeds.push_back(testing::loudFeeds(model, 100 + s, -1, 30.0f));
  auto error = [&](const std::string& exclude) {
    ir::Model q = model.clone();
    REQUIRE(testing::runWith(q, exclude.empty() ? "quantize-dynamic" : "quantize-dynamic{exclude-nodes=" + exclude + "}").isOk());
    double total = 0;
    for (const auto& feed : feeds) {
      const auto want = testing::runModel(model, feed), got = testing::runModel(q, feed);
      double err = 0, energy = 0;
      for (int64_t i = 0; i < want[0].second.numel(); ++i) {
        const double r = want[0].second.data<float>()[i], d = static_cast<double>(got[0].second.data<float>()[i]) - r;
        err += d * d;
        energy += r * r;
      }
      total += err / energy;
    }
    return total / static_cast<double>(feeds.size());
  };
  const double all = error("");
  int checked = 0;
  for (const std::string name : {"layer0", "layer1", "planted", "layer3"}) {
    const size_t at = note.find(name + " (gain ");
    if (at == std::string::npos) continue;  // not among the kept three: its gain is not printed
    const double printed = std::strtod(note.c_str() + at + name.size() + 7, nullptr);
    const double expected = all - error(name);
    INFO(name << ": note " << printed << ", quantizing the others " << expected);
    CHECK(std::abs(printed - expected) <= 2e-3 * std::abs(expected) + 1e-12);  // the note prints 3 digits
    ++checked;
  }
  CHECK(checked == 3);
}
