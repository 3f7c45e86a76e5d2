// whittle compare as a library call on small built graphs (self, damaged copy, QDQ copy, bad
// inputs, gates) and on the shared models and images. The evaluation engine under it has its
// own tests in tests/eval/.
#include "whittle/report/compare.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>

#include "support/compare_models.h"
#include "support/graph_builder.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/report/report.h"

namespace whittle::report {
namespace {

using testing::Files;
using testing::GraphBuilder;
using testing::mlp;
using testing::perturb;
using testing::save;
using testing::TempDir;
using testing::writeData;

CompareOptions quick() {
  CompareOptions o;
  o.perLayer = true;
  o.latencyRuns = 3;
  o.warmupRuns = 1;
  o.batchSize = 5;  // 12 samples: batches of 5, 5, 2
  return o;
}

TEST_CASE("compare: a model against itself is exact", "[report][compare]") {
  TempDir dir;
  Files f = writeData(dir);
  std::string a = save(mlp(), dir, "a.onnx");
  data::DatasetSpec spec;
  spec.path = f.data;
  spec.labels = f.labels;
  auto r = compareFiles(a, a, spec, quick(), {}, {});
  REQUIRE(r.isOk());
  CHECK(r->samples == 12);
  REQUIRE(r->outputs.size() == 1);
  const OutputMetrics& o = r->outputs[0];
  CHECK(o.elements == 12 * 5);
  CHECK(std::isinf(o.sqnrDb));
  CHECK(o.sqnrDb > 0);
  CHECK(o.maxAbsError == 0.0);
  CHECK(o.cosine == Approx(1.0));
  REQUIRE(o.agreement);
  CHECK(*o.agreement == 1.0);
  CHECK(o.hasAccuracy);
  CHECK(o.top1Original == o.top1Optimized);
  REQUIRE(r->layers.size() == 4);
  CHECK(r->layers[0].tensor == "h1");
  CHECK(r->layers[3].tensor == "r2");
  for (const auto& l : r->layers) CHECK(std::isinf(l.sqnrDb));
  CHECK_FALSE(firstErrorJump(r->layers));
  CHECK(r->sizeRatio() == 1.0);
  CHECK(r->originalLatency.runs == 3);
  CHECK(r->optimizedLatency.batch == 5);
  CHECK(r->opDelta().empty());
}

TEST_CASE("compare: a damaged layer shows in the per-layer SQNR there and not before", "[report][compare]") {
  TempDir dir;
  Files f = writeData(dir);
  ir::Model damaged = mlp();
  perturb(damaged, "w2");
  std::string a = save(mlp(), dir, "a.onnx");
  std::string b = save(damaged, dir, "b.onnx");
  data::DatasetSpec spec;
  spec.path = f.data;
  auto r = compareFiles(a, b, spec, quick(), {}, {});
  REQUIRE(r.isOk());
  REQUIRE(r->layers.size() == 4);
  CHECK(std::isinf(r->layers[0].sqnrDb));     // h1
  CHECK(std::isinf(r->layers[1].sqnrDb));     // r1
  CHECK(std::isfinite(r->layers[2].sqnrDb));  // h2: the damaged MatMul
  CHECK(r->layers[2].sqnrDb < 40);
  auto jump = firstErrorJump(r->layers);
  REQUIRE(jump);
  CHECK(*jump == 2);
  CHECK(std::isfinite(r->outputs[0].sqnrDb));
  CHECK_FALSE(r->outputs[0].hasAccuracy);  // no labels given
}

TEST_CASE("compare: activations match through a QDQ pair", "[report][compare]") {
  TempDir dir;
  Files f = writeData(dir);
  ir::Model q = testing::mlpWithQdqOnR1();
  std::string a = save(mlp(), dir, "a.onnx");
  std::string b = save(q, dir, "q.onnx");
  data::DatasetSpec spec;
  spec.path = f.data;
  auto r = compareFiles(a, b, spec, quick(), {}, {});
  REQUIRE(r.isOk());
  REQUIRE(r->layers.size() == 4);
  CHECK(r->layers[1].match == "qdq");
  CHECK(std::isinf(r->layers[0].sqnrDb));
  // uint8 with step 0.02 on values of a few units: rounding noise, well above 20 dB.
  CHECK(std::isfinite(r->layers[1].sqnrDb));
  CHECK(r->layers[1].sqnrDb > 20);
  CHECK(r->opDelta().at("QuantizeLinear") == 1);
  CHECK(r->opDelta().at("DequantizeLinear") == 1);
}

TEST_CASE("compare: a fused chain matches the last value it computes", "[report][compare]") {
  testing::FusedPair p = testing::fusedChain();
  TempDir dir;
  ir::Tensor xs = GraphBuilder(5).randomTensor(ir::DataType::kFloat, {6, 4});
  REQUIRE(data::writeNpy(xs, dir.file("x.npy")).isOk());
  data::DatasetSpec spec;
  spec.path = dir.file("x.npy");
  CompareOptions options = quick();
  auto r = compareFiles(save(p.original, dir, "a.onnx"), save(p.optimized, dir, "b.onnx"), spec, options, {}, {});
  REQUIRE(r.isOk());
  REQUIRE(r->layers.size() == 1);
  CHECK(r->layers[0].match == "fused-name");
  CHECK(std::isinf(r->layers[0].sqnrDb));  // the same computation
}

TEST_CASE("compare: --output picks the output classification reads; unknown names and metrics are errors",
          "[report][compare]") {
  TempDir dir;
  Files f = writeData(dir);
  std::string a = save(mlp(), dir, "a.onnx");
  data::DatasetSpec spec;
  spec.path = f.data;
  spec.labels = f.labels;
  CompareOptions options = quick();
  options.perLayer = false;
  const std::string output = testing::mlp().graph->outputs()[0]->name();
  options.output = output;
  auto r = compareFiles(a, a, spec, options, {}, {});
  REQUIRE(r.isOk());
  CHECK(r->outputs[0].hasAccuracy);
  CHECK_FALSE(r->outputs[0].perplexityOriginal);  // not a [batch, seq, vocab] output, and not asked for
  options.output = "no_such_output";
  auto missing = compareFiles(a, a, spec, options, {}, {});
  REQUIRE_FALSE(missing.isOk());
  CHECK_THAT(missing.status().message(), Catch::Contains("'no_such_output'") && Catch::Contains("no output of that name"));
  options.output = output;
  options.metrics = {"bleu"};
  auto unknown = compareFiles(a, a, spec, options, {}, {});
  REQUIRE_FALSE(unknown.isOk());
  CHECK_THAT(unknown.status().message(), Catch::Contains("unknown metric 'bleu'"));
}

/// x[N, 4] times k, seen as maps [N, 2, 2] (axis 1: two channels of two elements).
ir::Model scaledMaps(const std::vector<float>& k) {
  GraphBuilder b(5);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(4)});
  ir::Value* y = b.node("Mul", {x, b.constant("k", {4}, k)}, {}, "scaled");
  ir::Value* maps = b.node("Reshape", {y, b.constantInt64("shape", {3}, {-1, 2, 2})}, {}, "maps");
  b.output(maps, ir::DataType::kFloat, {-1, 2, 2});
  ir::Model m = b.build();
  m.graph->outputs()[0]->mutableType().shape =
      std::vector<ir::Dim>{ir::Dim::symbolic("batch"), ir::Dim::known(2), ir::Dim::known(2)};
  return m;
}

TEST_CASE("compare: --channel-axis reads the per-channel SQNR on the axis asked; the min-channel-sqnr gate",
          "[report][compare]") {
  TempDir dir;
  Files f = writeData(dir);
  // The optimized model halves channel 1 of axis 1 (elements 2 and 3): SQNR 20 log10(2) there.
  std::string a = save(scaledMaps({1, 1, 1, 1}), dir, "a.onnx");
  std::string b = save(scaledMaps({1, 1, 0.5f, 0.5f}), dir, "b.onnx");
  data::DatasetSpec spec;
  spec.path = f.data;
  CompareOptions options = quick();
  options.perLayer = false;

  auto last = compareFiles(a, b, spec, options, {}, {});
  REQUIRE(last.isOk());
  const OutputMetrics& l = last->outputs[0];
  CHECK(l.channelAxis == 2);  // the default: the last axis mixes both halves into each channel
  CHECK(l.channels == 2);
  CHECK(l.minChannelSqnrDb > 6.03);

  options.channelAxes = {*eval::parseChannelAxis("maps=1")};
  Gates gate;
  gate.minChannelSqnr = 10;
  auto maps = compareFiles(a, b, spec, options, gate, {});
  REQUIRE(maps.isOk());
  const OutputMetrics& m = maps->outputs[0];
  CHECK(m.channelAxis == 1);
  CHECK(m.minChannel == 1);
  CHECK(m.minChannelSqnrDb == Approx(20 * std::log10(2.0)).margin(1e-4));
  CHECK(m.sqnrDb > m.minChannelSqnrDb);
  REQUIRE(maps->gates.size() == 1);
  CHECK_FALSE(maps->gates[0].passed);
  CHECK_THAT(maps->gates[0].message, Catch::Contains("min-channel-sqnr: lowest channel SQNR 6.0") &&
                                          Catch::Contains("at 'maps' channel 1 of 2 on axis 1 < 10 dB"));
  gate.minChannelSqnr = 6;
  auto passes = compareFiles(a, b, spec, options, gate, {});
  REQUIRE(passes.isOk());
  CHECK(passes->gates[0].passed);

  options.channelAxes = {*eval::parseChannelAxis("logits=1")};
  auto unknown = compareFiles(a, b, spec, options, {}, {});
  REQUIRE_FALSE(unknown.isOk());
  CHECK_THAT(unknown.status().message(), Catch::Contains("--channel-axis logits=1: the model has no output 'logits'"));
  options.channelAxes = {*eval::parseChannelAxis("3")};
  auto far = compareFiles(a, b, spec, options, {}, {});
  REQUIRE_FALSE(far.isOk());
  CHECK_THAT(far.status().message(), Catch::Contains("--channel-axis 3: output 'maps' has rank 3"));
}

TEST_CASE("compare: bad inputs are errors that name the problem", "[report][compare]") {
  TempDir dir;
  Files f = writeData(dir);
  std::string a = save(mlp(), dir, "a.onnx");
  data::DatasetSpec spec;
  spec.path = f.data;

  SECTION("missing model file") {
    auto r = compareFiles(a, dir.file("missing.onnx"), spec, quick(), {}, {});
    REQUIRE_FALSE(r.isOk());
    CHECK(exitCodeFor(r.status()) == 2);
    CHECK(r.status().message().find("missing.onnx") != std::string::npos);
  }
  SECTION("different inputs") {
    GraphBuilder bld;
    ir::Value* x = bld.input("y", ir::DataType::kFloat, {1, 4});
    bld.output(bld.node("Relu", {x}, {}, "out"), ir::DataType::kFloat, {1, 4});
    std::string other = save(bld.build(), dir, "other.onnx");
    auto r = compareFiles(a, other, spec, quick(), {}, {});
    REQUIRE_FALSE(r.isOk());
    CHECK(exitCodeFor(r.status()) == 2);
    CHECK(r.status().message().find("different inputs") != std::string::npos);
  }
  SECTION("accuracy gate without labels") {
    Gates gates;
    gates.maxAccuracyDrop = 1.0;
    auto r = compareFiles(a, a, spec, quick(), gates, {});
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("--max-accuracy-drop needs labels") != std::string::npos);
  }
  SECTION("labels that fit no output") {
    std::ofstream(dir.file("big.txt")) << "7\n7\n7\n7\n7\n7\n7\n7\n7\n7\n7\n7\n";
    spec.labels = dir.file("big.txt");
    auto r = compareFiles(a, a, spec, quick(), {}, {});
    REQUIRE_FALSE(r.isOk());
    CHECK(exitCodeFor(r.status()) == 2);
    CHECK(r.status().message().find("class scores") != std::string::npos);
  }
}

CompareResult handMade() {
  CompareResult r;
  OutputMetrics o;
  o.name = "prob";
  o.sqnrDb = 25.0;
  o.classScores = true;
  o.classes = 10;
  o.agreement = 0.985;
  o.hasAccuracy = true;
  o.top1Original = 0.76;
  o.top1Optimized = 0.752;
  r.outputs.push_back(o);
  r.originalLatency.runs = r.optimizedLatency.runs = 10;
  r.originalLatency.p50Ms = 3.0;
  r.optimizedLatency.p50Ms = 2.0;
  r.original.fileBytes = 1000;
  r.optimized.fileBytes = 280;
  return r;
}

TEST_CASE("evaluateGates: each gate passes and fails at its threshold", "[report][compare]") {
  CompareResult r = handMade();
  auto one = [&](Gates g) {
    REQUIRE(evaluateGates(r, g).isOk());
    REQUIRE(r.gates.size() == 1);
    return r.gates[0];
  };
  Gates g;
  g.maxAccuracyDrop = 1.0;  // drop 0.8 pp
  CHECK(one(g).passed);
  CHECK(one(g).measured == Approx(0.8));
  g.maxAccuracyDrop = 0.5;
  CHECK_FALSE(one(g).passed);
  CHECK(one(g).message.rfind("max-accuracy-drop: ", 0) == 0);

  g = {};
  g.minAgreement = 98.0;
  CHECK(one(g).passed);
  g.minAgreement = 99.0;
  CHECK_FALSE(one(g).passed);

  g = {};
  g.minSqnr = 20;
  CHECK(one(g).passed);
  g.minSqnr = 30;
  CHECK_FALSE(one(g).passed);

  g = {};
  g.minSpeedup = 1.5;  // 3 / 2
  CHECK(one(g).passed);
  g.minSpeedup = 1.6;
  CHECK_FALSE(one(g).passed);

  g = {};
  g.maxSizeRatio = 0.3;  // 0.28
  CHECK(one(g).passed);
  g.maxSizeRatio = 0.25;
  CHECK_FALSE(one(g).passed);
  CHECK_FALSE(r.gatesPassed());
  CHECK(verdict(r) == "FAIL");

  CHECK(evaluateGates(r, {}).isOk());
  CHECK(verdict(r) == "MEASURED");

  r.outputs[0].hasAccuracy = false;
  r.outputs[0].agreement.reset();
  Gates acc;
  acc.maxAccuracyDrop = 1;
  CHECK_FALSE(evaluateGates(r, acc).isOk());
  Gates agree;
  agree.minAgreement = 99;
  CHECK_FALSE(evaluateGates(r, agree).isOk());
}

const char* kSqueezenetPreprocess = "resize=256,crop=224,bgr,mean=104:117:123";

TEST_CASE("compare on shared models: squeezenet1.1 against itself and a damaged copy", "[report][compare][shared]") {
  auto model = testing::sharedPath("models/squeezenet1.1.onnx");
  if (!model) return;
  auto images = testing::sharedPath("data/imagenet-sample");
  if (!images) return;
  TempDir dir;
  data::DatasetSpec spec;
  spec.path = *images;
  spec.limit = 50;
  auto pre = data::parsePreprocessSpec(kSqueezenetPreprocess);
  REQUIRE(pre.isOk());
  spec.preprocess = *pre;
  CompareOptions options = quick();

  auto self = compareFiles(*model, *model, spec, options, {}, {});
  REQUIRE(self.isOk());
  CHECK(self->samples == 50);
  REQUIRE(self->outputs.size() == 1);
  CHECK(std::isinf(self->outputs[0].sqnrDb));
  REQUIRE(self->outputs[0].agreement);
  CHECK(*self->outputs[0].agreement == 1.0);
  CHECK(self->outputs[0].hasAccuracy);
  CHECK(self->outputs[0].top1Original > 0.4);  // 60.7 % on the full sample
  CHECK(self->layers.size() > 30);
  for (const auto& l : self->layers) CHECK(std::isinf(l.sqnrDb));

  // Damage the 9th Conv's weights.
  auto loaded = onnx_io::load(*model);
  REQUIRE(loaded.isOk());
  std::vector<ir::Node*> convs;
  for (ir::Node* n : loaded->graph->nodes()) {
    if (n->opType() == "Conv") convs.push_back(n);
  }
  REQUIRE(convs.size() > 9);
  ir::Node* victim = convs[8];
  perturb(*loaded, victim->input(1)->name());
  std::string damaged = save(*loaded, dir, "damaged.onnx");
  auto r = compareFiles(*model, damaged, spec, options, {}, {});
  REQUIRE(r.isOk());
  size_t at = r->layers.size();
  for (size_t i = 0; i < r->layers.size(); ++i) {
    if (r->layers[i].tensor == victim->output(0)->name()) at = i;
  }
  REQUIRE(at < r->layers.size());
  INFO("damaged layer " << victim->output(0)->name() << " at " << at);
  for (size_t i = 0; i < at; ++i) CHECK(std::isinf(r->layers[i].sqnrDb));
  CHECK(std::isfinite(r->layers[at].sqnrDb));
  auto jump = firstErrorJump(r->layers);
  REQUIRE(jump);
  CHECK(*jump == at);
  CHECK(std::isfinite(r->outputs[0].sqnrDb));
}

TEST_CASE("compare on shared models: mnist-8 against itself on MNIST", "[report][compare][shared]") {
  auto model = testing::sharedPath("models/mnist-8.onnx");
  if (!model) return;
  auto mnist = testing::sharedPath("data/mnist");
  if (!mnist) return;
  data::DatasetSpec spec;
  spec.path = *mnist;
  spec.limit = 300;
  auto r = compareFiles(*model, *model, spec, quick(), {}, {});
  REQUIRE(r.isOk());
  CHECK(r->samples == 300);
  REQUIRE(r->outputs.size() == 1);
  CHECK(std::isinf(r->outputs[0].sqnrDb));
  REQUIRE(r->outputs[0].agreement);
  CHECK(*r->outputs[0].agreement == 1.0);
  REQUIRE(r->outputs[0].hasAccuracy);
  CHECK(r->outputs[0].top1Original > 0.95);  // 98.91 % on all 10,000
  CHECK(r->outputs[0].top1Original == r->outputs[0].top1Optimized);
  for (const auto& l : r->layers) CHECK(std::isinf(l.sqnrDb));
}

}  // namespace
}  // namespace whittle::report

namespace whittle::report {
namespace {

// Each fp32 model of ../shared against itself: exact outputs, 100 % agreement where the model
// classifies, and error metrics alone for a detector whose outputs are not class scores.
TEST_CASE("compare on shared models: each fp32 model against itself is exact", "[report][compare][shared]") {
  struct Case {
    const char* model;
    const char* data;
    const char* preprocess;
    bool classifier;
  };
  const Case cases[] = {
      {"models/mobilenetv2-12-rebuilt-fp32.onnx", "data/imagenet-sample",
       "resize=256,crop=224,rgb,scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225", true},
      {"models/mlperftiny_ic_resnet8.onnx", "data/cifar10-200", "", true},
      {"models/mlperftiny_vww_96_float.onnx", "data/vww-400", "scale=1/255", true},
      {"models/ultraface_version-RFB-320.onnx", "data/photos", "resize=320x240,rgb,mean=127,std=128", false},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.model) {
      auto model = testing::sharedPath(c.model);
      if (!model) continue;
      auto data = testing::sharedPath(c.data);
      if (!data) continue;
      data::DatasetSpec spec;
      spec.path = *data;
      spec.limit = 16;
      if (*c.preprocess != '\0') {
        auto pre = data::parsePreprocessSpec(c.preprocess);
        REQUIRE(pre.isOk());
        spec.preprocess = *pre;
      }
      CompareOptions options = quick();
      options.batchSize = 8;
      auto r = compareFiles(*model, *model, spec, options, {}, {});
      if (!r.isOk()) {
        // The CPU runtime may lack an op of this model: then the error names it (exit code 2).
        INFO(r.status().message());
        CHECK(r.status().message().find("not supported") != std::string::npos);
        WARN("skipped " << c.model << ": " << r.status().message());
        continue;
      }
      INFO(r->dataset);
      CHECK(r->samples > 0);
      for (const auto& o : r->outputs) {
        CHECK(std::isinf(o.sqnrDb));
        CHECK(o.maxAbsError == 0.0);
      }
      const OutputMetrics* cls = r->classification();
      if (c.classifier) {
        REQUIRE(cls != nullptr);
        CHECK(*cls->agreement == 1.0);
        CHECK(cls->hasAccuracy);
      } else {
        CHECK(cls == nullptr);
      }
      for (const auto& l : r->layers) CHECK(std::isinf(l.sqnrDb));
    }
  }
}

}  // namespace
}  // namespace whittle::report
