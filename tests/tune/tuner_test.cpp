#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "support/temp_dir.h"
#include "tune/tune_test_util.h"
#include "whittle/common/file_util.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/tune/tune.h"

namespace whittle {
namespace {

tune::TuneRequest requestFor(const testing::TempDir& dir, const std::string& model) {
  tune::TuneRequest r;
  r.optimize.inputPath = model;
  r.optimize.outputPath = dir.file("out.onnx");
  r.optimize.quantize.mode = QuantizeMode::kInt8;
  r.optimize.calibration.data = data::DatasetSpec{};
  r.optimize.calibration.data->path = dir.file("calib.npy");
  r.optimize.calibration.threads = 1;
  r.eval = data::DatasetSpec{};
  r.eval->path = dir.file("eval.npy");
  r.rankingSamples = 48;
  r.timeBudgetSeconds = 120;
  return r;
}

int countOp(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node* node : g.nodes()) n += node->opType() == op;
  return n;
}

TEST_CASE("tune: the hostile layer ranks first and is exactly what falls back", "[tune]") {
  testing::TempDir dir;
  std::string model = testing::writeHostileModel(dir);
  tune::TuneRequest r = requestFor(dir, model);
  r.budget.minSqnrDb = 15;
  r.trialLogPath = dir.file("trials.json");
  auto result = tune::tune(r);
  INFO(result.status().message());
  REQUIRE(result.isOk());

  // The baseline misses the budget: one activation scale serves channel 0 and the other 15.
  REQUIRE(!result->trials.empty());
  const tune::Trial& baseline = result->trials.front();
  CHECK(baseline.stage == "baseline");
  CHECK(baseline.fullData);
  CHECK(baseline.metrics.minChannelSqnrDb < 15);
  CHECK_FALSE(baseline.meetsBudget);

  REQUIRE(result->sensitivity.size() == 3);  // mm1, hostile, mm3
  CHECK(result->sensitivity[0].node == "hostile");
  CHECK(result->sensitivity[0].rank == 1);
  REQUIRE(result->sensitivity[0].gainDb.has_value());
  CHECK(*result->sensitivity[0].gainDb > 10);

  INFO(result->shortfall);
  CHECK(result->met);
  CHECK(result->shortfall.empty());
  REQUIRE(result->best >= 0);
  const tune::Trial& best = result->trials[static_cast<size_t>(result->best)];
  CHECK(best.floatNodes == std::vector<std::string>{"hostile"});
  CHECK(best.meetsBudget);
  REQUIRE(result->fellBack.size() == 1);
  CHECK(result->fellBack[0].first == "hostile");

  // The written model: hostile's MatMul reads float, the others are quantized; the pipeline says so.
  auto written = onnx_io::load(r.optimize.outputPath);
  REQUIRE(written.isOk());
  CHECK(countOp(*written->graph, "QuantizeLinear") > 0);
  std::string pipeline;
  for (const auto& [k, v] : written->metadata) {
    if (k == "whittle.pipeline") pipeline = v;
  }
  CHECK_THAT(pipeline, Catch::Contains("float-nodes=hostile"));

  // The trial log: every trial with what changed and what it measured.
  auto text = readFile(r.trialLogPath);
  REQUIRE(text.isOk());
  nlohmann::json log = nlohmann::json::parse(*text);
  CHECK(log["schema"] == "whittle.tune/1");
  CHECK(log["met"] == true);
  CHECK(log["budget"]["min_sqnr_db"] == 15.0);
  REQUIRE(log["trials"].size() == result->trials.size());
  for (const auto& t : log["trials"]) {
    CHECK(t.contains("change"));
    CHECK(t["metrics"].contains("min_channel_sqnr_db"));
    CHECK(t["parameter_bytes"].get<int64_t>() > 0);
    CHECK(t["metrics"]["ms_per_sample"].get<double>() >= 0);
  }
  CHECK(log["sensitivity"][0]["node"] == "hostile");
  CHECK(log["fell_back"][0]["node"] == "hostile");
}

TEST_CASE("tune: trials are deterministic", "[tune]") {
  testing::TempDir dir;
  std::string model = testing::writeHostileModel(dir);
  tune::TuneRequest r = requestFor(dir, model);
  r.budget.minSqnrDb = 15;
  r.optimize.outputPath.clear();
  auto a = tune::tune(r);
  auto b = tune::tune(r);
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  REQUIRE(a->trials.size() == b->trials.size());
  for (size_t i = 0; i < a->trials.size(); ++i) {
    CHECK(a->trials[i].change == b->trials[i].change);
    CHECK(a->trials[i].metrics.minChannelSqnrDb == b->trials[i].metrics.minChannelSqnrDb);
  }
}

TEST_CASE("tune: an unreachable budget returns the best model with the shortfall", "[tune]") {
  testing::TempDir dir;
  std::string model = testing::writeHostileModel(dir);
  tune::TuneRequest r = requestFor(dir, model);
  r.budget.minSqnrDb = 500;  // int8 weights never reach it
  auto result = tune::tune(r);
  INFO(result.status().message());
  REQUIRE(result.isOk());
  CHECK_FALSE(result->met);
  CHECK_THAT(result->shortfall, Catch::Contains("SQNR") && Catch::Contains("500"));
  REQUIRE(result->best >= 0);
  CHECK(onnx_io::load(r.optimize.outputPath).isOk());
}

TEST_CASE("tune: sensitivity only ranks and writes nothing", "[tune]") {
  testing::TempDir dir;
  std::string model = testing::writeHostileModel(dir);
  tune::TuneRequest r = requestFor(dir, model);
  r.sensitivityOnly = true;
  auto result = tune::tune(r);
  INFO(result.status().message());
  REQUIRE(result.isOk());
  REQUIRE_FALSE(result->sensitivity.empty());
  CHECK(result->sensitivity[0].node == "hostile");
  for (const auto& t : result->trials) CHECK((t.stage == "baseline" || t.stage == "sensitivity"));
  CHECK_FALSE(std::filesystem::exists(r.optimize.outputPath));
}

TEST_CASE("tune: bad input is a one-line error naming the flag", "[tune]") {
  testing::TempDir dir;
  std::string model = testing::writeHostileModel(dir);
  tune::TuneRequest r = requestFor(dir, model);

  SECTION("no budget") { CHECK_THAT(tune::tune(r).status().message(), Catch::Contains("--min-sqnr")); }
  SECTION("a budget without evaluation data") {
    r.budget.minSqnrDb = 20;
    r.eval.reset();
    CHECK_THAT(tune::tune(r).status().message(), Catch::Contains("--eval"));
  }
  SECTION("an accuracy budget without labels") {
    r.budget.maxAccuracyDropPp = 1;
    auto s = tune::tune(r).status();
    CHECK(s.code() == StatusCode::kInvalidInput);
    CHECK_THAT(s.message(), Catch::Contains("--max-accuracy-drop needs labels"));
  }
  SECTION("labels that do not match the data") {
    r.budget.maxAccuracyDropPp = 1;
    r.eval->labels = dir.file("few_labels.txt");
    auto s = tune::tune(r).status();
    CHECK(s.code() == StatusCode::kInvalidInput);
    CHECK_THAT(s.message(), Catch::Contains("10 labels") && Catch::Contains("96"));
  }
  SECTION("an accuracy budget with labels runs") {
    r.budget.maxAccuracyDropPp = 100;
    r.eval->labels = dir.file("labels.txt");
    auto result = tune::tune(r);
    INFO(result.status().message());
    REQUIRE(result.isOk());
    CHECK(result->met);
    CHECK(result->reference.top1Pct.has_value());
  }
}

}  // namespace
}  // namespace whittle
