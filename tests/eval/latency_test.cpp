// Latency statistics by hand, and interleaved timing of real sessions.
#include "whittle/eval/latency.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "support/compare_models.h"

namespace whittle::eval {
namespace {

TEST_CASE("percentile interpolates between ranks like numpy", "[eval][latency]") {
  std::vector<double> v = {4, 1, 3, 2};
  CHECK(percentile(v, 50) == Approx(2.5));
  CHECK(percentile(v, 90) == Approx(3.7));
  CHECK(percentile(v, 0) == 1.0);
  CHECK(percentile(v, 100) == 4.0);
  CHECK(percentile({}, 50) == 0.0);
  CHECK(percentile({7}, 99) == 7.0);
}

TEST_CASE("latencyStats: percentiles, mean, extremes, spread and throughput", "[eval][latency]") {
  LatencyStats s = latencyStats({4, 1, 3, 2}, /*batch=*/8);
  CHECK(s.runs == 4);
  CHECK(s.batch == 8);
  CHECK(s.p50Ms == Approx(2.5));
  CHECK(s.p90Ms == Approx(3.7));
  CHECK(s.p99Ms == Approx(3.97));
  CHECK(s.meanMs == Approx(2.5));
  CHECK(s.minMs == 1.0);
  CHECK(s.maxMs == 4.0);
  // Sample variance: (2.25 + 0.25 + 0.25 + 2.25) / 3.
  CHECK(s.stddevMs == Approx(std::sqrt(5.0 / 3.0)));
  CHECK(s.throughput == Approx(8 * 1000.0 / 2.5));

  LatencyStats one = latencyStats({2}, 1);
  CHECK(one.stddevMs == 0.0);
  CHECK(one.throughput == Approx(500.0));
  LatencyStats none = latencyStats({}, 4);
  CHECK(none.runs == 0);
  CHECK(none.throughput == 0.0);
  CHECK(none.cpuP50Ms == 0.0);
}

TEST_CASE("latencyStats summarizes the runs' CPU times apart from their wall times", "[eval][latency]") {
  LatencyStats s = latencyStats({40, 10, 30, 20}, 1, {3, 1, 2, 6});
  CHECK(s.p50Ms == Approx(25.0));
  CHECK(s.cpuP50Ms == Approx(2.5));
  CHECK(s.cpuMeanMs == Approx(3.0));
  CHECK(latencyStats({40}, 1).cpuMeanMs == 0.0);  // no CPU times given
}

TEST_CASE("samplesPerRun counts samples, not the first input's first dim", "[eval][latency]") {
  data::Batch b;
  b.count = 3;
  // A recurrent state [2, batch, 128] first: its dim 0 is not the batch.
  b.inputs.emplace_back("state", ir::Tensor(ir::DataType::kFloat, {2, 3, 128}));
  b.inputs.emplace_back("x", ir::Tensor(ir::DataType::kFloat, {3, 16}));
  CHECK(samplesPerRun(b, std::nullopt) == 3);
  // A model with a fixed batch of 4: the last batch of 3 was padded to 4.
  CHECK(samplesPerRun(b, 4) == 4);
  // Whole-window samples: a sample fills the input [8, 512], batch axis included, so a run
  // holds one sample (Dataset::fixedBatch() is 1), not 8.
  data::Batch window;
  window.count = 1;
  window.inputs.emplace_back("x", ir::Tensor(ir::DataType::kFloat, {8, 512}));
  CHECK(samplesPerRun(window, 1) == 1);
}

TEST_CASE("measureLatency times every session, interleaved, after the warm-up", "[eval][latency]") {
  auto a = runtime::Session::create(testing::mlp());
  REQUIRE(a.isOk());
  ir::Model damaged = testing::mlp();
  testing::perturb(damaged, "w1");
  auto b = runtime::Session::create(damaged);
  REQUIRE(b.isOk());
  std::vector<runtime::NamedTensor> feeds;
  feeds.emplace_back("x", testing::GraphBuilder(3).randomTensor(ir::DataType::kFloat, {3, 4}));

  LatencyOptions options;
  options.warmupRuns = 2;
  options.runs = 5;
  options.batch = 3;  // x [3, 4]
  std::vector<std::pair<int64_t, int64_t>> progress;
  options.progress = [&](std::string_view phase, int64_t done, int64_t total) {
    CHECK(phase == "latency");
    progress.emplace_back(done, total);
  };
  runtime::Session* sessions[] = {a->get(), b->get()};
  auto stats = measureLatency(sessions, feeds, options);
  REQUIRE(stats.isOk());
  REQUIRE(stats->size() == 2);
  for (const LatencyStats& s : *stats) {
    CHECK(s.runs == 5);
    CHECK(s.batch == 3);
    CHECK(s.minMs > 0);
    CHECK(s.minMs <= s.p50Ms);
    CHECK(s.p50Ms <= s.maxMs);
    CHECK(s.throughput > 0);
    CHECK(s.cpuP50Ms >= 0);
    CHECK(s.cpuMeanMs >= 0);
  }
  REQUIRE(progress.size() == 7);  // warm-up rounds count too
  CHECK(progress.back() == std::pair<int64_t, int64_t>{7, 7});

  CHECK(warmUp(sessions, feeds, 1).isOk());
}

TEST_CASE("measureLatency passes on the session's error", "[eval][latency]") {
  auto a = runtime::Session::create(testing::mlp());
  REQUIRE(a.isOk());
  std::vector<runtime::NamedTensor> wrong;
  wrong.emplace_back("not_x", ir::Tensor(ir::DataType::kFloat, {1, 4}));
  runtime::Session* sessions[] = {a->get()};
  auto stats = measureLatency(sessions, wrong, {});
  REQUIRE_FALSE(stats.isOk());
  CHECK_FALSE(warmUp(sessions, wrong, 1).isOk());
}

}  // namespace
}  // namespace whittle::eval
