// The evaluator on small built models: paired and single sessions, per-layer error, padding,
// a plugged-in task metric, and bad inputs.
#include "whittle/eval/evaluator.h"

#include <catch2/catch.hpp>
#include <cmath>

#include <sstream>

#include "support/compare_models.h"
#include "support/python.h"
#include "whittle/onnx_io/onnx_io.h"
#include "support/graph_builder.h"
#include "support/temp_dir.h"

namespace whittle::eval {
namespace {

using testing::Files;
using testing::mlp;
using testing::TempDir;

std::unique_ptr<data::Dataset> open(const Files& f, const ir::Model& model, bool labels) {
  data::DatasetSpec spec;
  spec.path = f.data;
  if (labels) spec.labels = f.labels;
  auto d = data::openDataset(spec, data::inputSpecs(*model.graph));
  REQUIRE(d.isOk());
  return std::move(d).value();
}

std::unique_ptr<runtime::Session> session(const ir::Model& model, std::vector<std::string> extra = {}) {
  runtime::SessionOptions options;
  options.extraOutputs = std::move(extra);
  auto s = runtime::Session::create(model, options);
  REQUIRE(s.isOk());
  return std::move(s).value();
}

/// A task metric for the tests: counts samples, batches and labels, and records what the
/// factory and every batch showed it.
struct Seen {
  OutputInfo info;
  std::vector<std::pair<int64_t, int64_t>> batches;  // (rows, count)
  int64_t labels = 0;
  size_t originalElements = 0, optimizedElements = 0;
};

class CountingMetric final : public MetricAccumulator {
 public:
  explicit CountingMetric(Seen& seen) : seen_(seen) {}
  Status add(const OutputBatch& batch) override {
    seen_.batches.emplace_back(batch.rows, batch.count);
    seen_.labels += static_cast<int64_t>(batch.labels.size());
    seen_.originalElements += batch.original.size();
    seen_.optimizedElements += batch.optimized.size();
    samples_ += batch.count;
    return Status::ok();
  }
  void finish(OutputMetrics& metrics) const override { metrics.task["samples"] = static_cast<double>(samples_); }

 private:
  Seen& seen_;
  int64_t samples_ = 0;
};

MetricFactory counting(Seen& seen) {
  return [&seen](const OutputInfo& info) -> std::unique_ptr<MetricAccumulator> {
    seen.info = info;
    return std::make_unique<CountingMetric>(seen);
  };
}

TEST_CASE("Evaluator: a model against itself is exact, output and layers", "[eval][evaluator]") {
  TempDir dir;
  Files f = testing::writeData(dir);
  ir::Model m = mlp();
  auto d = open(f, m, /*labels=*/true);
  EvalOptions options;
  options.batchSize = 5;
  options.layers = matchLayers(*m.graph, *m.graph);
  std::vector<std::string> names;
  for (const auto& l : options.layers) names.push_back(l.tensor);
  auto a = session(m, names);
  auto b = session(m, names);
  Seen seen;
  options.metrics.push_back(counting(seen));
  std::vector<int64_t> progress;
  options.progress = [&](std::string_view phase, int64_t done, int64_t total) {
    CHECK(phase == "accuracy + per-layer");
    CHECK(total == 12);
    progress.push_back(done);
  };

  auto r = Evaluator(*a, b.get(), options).run(*d);
  REQUIRE(r.isOk());
  CHECK(r->samples == 12);
  CHECK(r->batch == 5);
  CHECK(r->hasLabels);
  CHECK(r->notes.empty());
  CHECK(progress == std::vector<int64_t>{5, 10, 12});
  REQUIRE(r->outputs.size() == 1);
  const OutputMetrics& o = r->outputs[0];
  CHECK(o.name == "logits");
  CHECK(o.dims == std::vector<int64_t>{5, 5});
  CHECK(o.elements == 12 * 5);
  CHECK(std::isinf(o.sqnrDb));
  CHECK(o.maxAbsError == 0.0);
  CHECK(o.classScores);
  CHECK(o.classes == 5);
  REQUIRE(o.agreement);
  CHECK(*o.agreement == 1.0);
  CHECK(o.hasAccuracy);
  CHECK(o.top1Original == o.top1Optimized);
  CHECK(o.task.at("samples") == 12.0);
  REQUIRE(r->layers.size() == 4);
  for (const auto& l : r->layers) CHECK(std::isinf(l.sqnrDb));

  // What the plugged-in metric saw: the output, every batch, labels of the real samples.
  CHECK(seen.info.name == "logits");
  CHECK(seen.info.index == 0);
  CHECK(seen.info.paired);
  CHECK(seen.info.rows == 5);
  CHECK(seen.batches == std::vector<std::pair<int64_t, int64_t>>{{5, 5}, {5, 5}, {2, 2}});
  CHECK(seen.labels == 12);
  CHECK(seen.originalElements == 60);
  CHECK(seen.optimizedElements == 60);
}

TEST_CASE("Evaluator: a damaged layer shows in its own error and after it", "[eval][evaluator]") {
  TempDir dir;
  Files f = testing::writeData(dir);
  ir::Model m = mlp();
  ir::Model damaged = mlp();
  testing::perturb(damaged, "w2");
  EvalOptions options;
  options.layers = matchLayers(*m.graph, *damaged.graph);
  std::vector<std::string> names;
  for (const auto& l : options.layers) names.push_back(l.tensor);
  auto a = session(m, names);
  auto b = session(damaged, names);
  auto d = open(f, m, /*labels=*/false);
  auto r = Evaluator(*a, b.get(), options).run(*d);
  REQUIRE(r.isOk());
  CHECK_FALSE(r->hasLabels);
  REQUIRE(r->layers.size() == 4);
  CHECK(std::isinf(r->layers[1].sqnrDb));     // r1
  CHECK(std::isfinite(r->layers[2].sqnrDb));  // h2: the damaged MatMul
  CHECK(r->layers[2].sqnrDb < 40);
  CHECK(r->layers[2].maxAbsError > 0);
  const OutputMetrics& o = r->outputs[0];
  CHECK(std::isfinite(o.sqnrDb));
  CHECK(o.cosine < 1.0);
  CHECK(o.meanAbsError > 0);
  CHECK(o.maxAbsError >= o.meanAbsError);
  REQUIRE(o.agreement);
  CHECK_FALSE(o.hasAccuracy);  // no labels
}

TEST_CASE("Evaluator: one session measures accuracy alone", "[eval][evaluator]") {
  TempDir dir;
  Files f = testing::writeData(dir);
  ir::Model m = mlp();
  auto a = session(m);
  auto b = session(m);
  auto d = open(f, m, /*labels=*/true);
  auto paired = Evaluator(*a, b.get()).run(*d);
  REQUIRE(paired.isOk());

  Seen seen;
  EvalOptions options;
  options.metrics.push_back(counting(seen));
  auto r = Evaluator(*a, nullptr, options).run(*d);
  REQUIRE(r.isOk());
  CHECK(r->samples == 12);
  const OutputMetrics& o = r->outputs[0];
  CHECK(o.classScores);
  CHECK_FALSE(o.agreement);
  REQUIRE(o.hasAccuracy);
  CHECK(o.top1Original == paired->outputs[0].top1Original);
  CHECK(o.top5Original == paired->outputs[0].top5Original);
  CHECK(o.elements == 0);  // no error metrics without a second session
  CHECK_FALSE(seen.info.paired);
  CHECK(seen.optimizedElements == 0);
  CHECK(o.task.at("samples") == 12.0);
}

TEST_CASE("Evaluator: a fixed model batch pads the last batch, and padding is not measured", "[eval][evaluator]") {
  testing::GraphBuilder builder(9);
  ir::Value* x = builder.input("x", ir::DataType::kFloat, {5, 4});
  builder.output(builder.node("MatMul", {x, builder.weight("w", {4, 3})}, {}, "y"), ir::DataType::kFloat, {5, 3});
  ir::Model m = builder.build();
  TempDir dir;
  Files f = testing::writeData(dir);  // 12 samples: 5, 5 and 2 padded to 5
  auto d = open(f, m, /*labels=*/false);
  auto a = session(m);
  Seen seen;
  EvalOptions options;
  options.batchSize = 3;  // the model's 5 wins
  options.metrics.push_back(counting(seen));
  auto r = Evaluator(*a, a.get(), options).run(*d);
  REQUIRE(r.isOk());
  CHECK(r->batch == 5);
  CHECK(r->samples == 12);
  CHECK(r->outputs[0].elements == 12 * 3);
  CHECK(seen.batches == std::vector<std::pair<int64_t, int64_t>>{{5, 5}, {5, 5}, {5, 2}});
  CHECK(seen.originalElements == 12 * 3);
}

TEST_CASE("Evaluator: bad pairings are errors that name the problem", "[eval][evaluator]") {
  TempDir dir;
  Files f = testing::writeData(dir);
  ir::Model m = mlp();
  auto d = open(f, m, /*labels=*/false);
  auto a = session(m);

  SECTION("per-layer with one session") {
    EvalOptions options;
    options.layers = matchLayers(*m.graph, *m.graph);
    auto r = Evaluator(*a, nullptr, options).run(*d);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("two sessions") != std::string::npos);
  }
  SECTION("a different number of outputs") {
    auto b = session(m, {"h1"});  // h1 comes back as an output: the evaluator was not told it is a layer
    auto r = Evaluator(*a, b.get()).run(*d);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("different outputs") != std::string::npos);
  }
  SECTION("outputs of different sizes") {
    testing::GraphBuilder builder(9);
    ir::Value* x = builder.symbolicInput("x", ir::DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(4)});
    builder.output(builder.node("MatMul", {x, builder.weight("w", {4, 3})}, {}, "y"));
    auto b = session(builder.build());
    auto r = Evaluator(*a, b.get()).run(*d);
    REQUIRE_FALSE(r.isOk());
    CHECK(exitCodeFor(r.status()) == 2);
    CHECK(r.status().message().find("output 'logits'") != std::string::npos);
  }
  SECTION("a layer the session does not return") {
    EvalOptions options;
    options.layers = matchLayers(*m.graph, *m.graph);
    auto r = Evaluator(*a, a.get(), options).run(*d);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("per-layer: the session did not return 'h1'") != std::string::npos);
  }
}

TEST_CASE("checkSameInputs names both input lists", "[eval][evaluator]") {
  ir::Model m = mlp();
  CHECK(checkSameInputs(*m.graph, *m.graph).isOk());
  testing::GraphBuilder builder;
  ir::Value* y = builder.input("y", ir::DataType::kFloat, {1, 4});
  builder.output(builder.node("Relu", {y}, {}, "out"), ir::DataType::kFloat, {1, 4});
  ir::Model other = builder.build();
  Status s = checkSameInputs(*m.graph, *other.graph);
  REQUIRE_FALSE(s.isOk());
  CHECK(s.message().find("different inputs: original 'x' float32 [batch,4]; optimized 'y' float32 [1,4]") !=
        std::string::npos);
}

}  // namespace
}  // namespace whittle::eval

namespace whittle::eval {

TEST_CASE("Perplexity: a tiny causal LM against numpy, both sessions, and what it refuses", "[eval][evaluator][perplexity]") {
  if (!testing::requirePython("numpy, onnx", "to build the tiny LM and its numpy perplexity")) return;
  TempDir dir;
  std::string out;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/eval/perplexity_reference.py";
  REQUIRE(testing::shell(testing::python() + " " + testing::shellQuote(script) + " " + testing::shellQuote(dir.path()), &out) == 0);
  std::istringstream expected(out);
  double pplFull = 0, pplHalf = 0;
  int64_t positions = 0;
  expected >> pplFull >> pplHalf >> positions;
  REQUIRE(positions == 50);
  auto full = onnx_io::load(dir.path() + "/lm.onnx");
  auto half = onnx_io::load(dir.path() + "/lm_half.onnx");
  REQUIRE(full.isOk());
  REQUIRE(half.isOk());
  auto a = session(*full);
  auto b = session(*half);
  data::DatasetSpec spec;
  spec.path = dir.path() + "/ids.npz";
  auto d = data::openDataset(spec, data::inputSpecs(*full->graph));
  REQUIRE(d.isOk());
  EvalOptions options;
  options.batchSize = 2;  // batches of 2, 2 and 1 sequences
  options.metrics.push_back(perplexityMetric());
  auto r = Evaluator(*a, b.get(), options).run(**d);
  REQUIRE(r.isOk());
  const OutputMetrics& o = r->outputs[0];
  REQUIRE(o.perplexityOriginal);
  REQUIRE(o.perplexityOptimized);
  CHECK(*o.perplexityOriginal == Approx(pplFull).epsilon(1e-5));
  CHECK(*o.perplexityOptimized == Approx(pplHalf).epsilon(1e-5));
  CHECK(o.perplexityTokens == positions);

  // Only the named output; a missing token input is an error naming it.
  EvalOptions other;
  other.metrics = {perplexityMetric("input_ids", "not_logits")};
  auto none = Evaluator(*a, nullptr, other).run(**d);
  REQUIRE(none.isOk());
  CHECK_FALSE(none->outputs[0].perplexityOriginal);
  other.metrics = {perplexityMetric("tokens")};
  auto missing = Evaluator(*a, nullptr, other).run(**d);
  REQUIRE_FALSE(missing.isOk());
  CHECK_THAT(missing.status().message(), Catch::Contains("no input 'tokens'"));
}

}  // namespace whittle::eval
