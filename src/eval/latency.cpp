// Interleaved timed runs and their statistics.
#include "whittle/eval/latency.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace whittle::eval {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  double pos = std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, values.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

LatencyStats latencyStats(const std::vector<double>& ms, int64_t batch, const std::vector<double>& cpuMs) {
  LatencyStats s;
  s.runs = static_cast<int64_t>(ms.size());
  s.batch = batch;
  if (ms.empty()) return s;
  s.p50Ms = percentile(ms, 50);
  s.p90Ms = percentile(ms, 90);
  s.p99Ms = percentile(ms, 99);
  double sum = 0;
  for (double m : ms) sum += m;
  s.meanMs = sum / static_cast<double>(ms.size());
  auto [lo, hi] = std::minmax_element(ms.begin(), ms.end());
  s.minMs = *lo;
  s.maxMs = *hi;
  double var = 0;
  for (double m : ms) var += (m - s.meanMs) * (m - s.meanMs);
  s.stddevMs = ms.size() > 1 ? std::sqrt(var / static_cast<double>(ms.size() - 1)) : 0.0;
  s.throughput = s.meanMs > 0 ? static_cast<double>(batch) * 1000.0 / s.meanMs : 0.0;
  if (!cpuMs.empty()) {
    s.cpuP50Ms = percentile(cpuMs, 50);
    double cpuSum = 0;
    for (double m : cpuMs) cpuSum += m;
    s.cpuMeanMs = cpuSum / static_cast<double>(cpuMs.size());
  }
  return s;
}

namespace {

/// Runs `rounds` rounds; round i runs session (i + k) mod n as the k-th. When `ms` is given,
/// each run's wall time goes to ms[session] and its process CPU time to cpuMs[session], for
/// rounds from `timedFrom` on.
Status runRounds(std::span<runtime::Session* const> sessions, const std::vector<runtime::NamedTensor>& feeds,
                 int64_t rounds, int64_t timedFrom, std::vector<std::vector<double>>* ms,
                 std::vector<std::vector<double>>* cpuMs, const ProgressFn& progress) {
  using Clock = std::chrono::steady_clock;
  const size_t n = sessions.size();
  // Through runValues, so that a model whose outputs are sequences or maps (ZipMap) is timed too.
  const std::vector<runtime::NamedValue> values(feeds.begin(), feeds.end());
  for (int64_t i = 0; i < rounds; ++i) {
    for (size_t k = 0; k < n; ++k) {
      size_t which = (static_cast<size_t>(i) + k) % n;
      const double cpuStart = processCpuMs();
      auto start = Clock::now();
      auto out = sessions[which]->runValues(values);
      auto end = Clock::now();
      const double cpuEnd = processCpuMs();
      if (!out.isOk()) return out.status();
      if (ms != nullptr && i >= timedFrom) {
        (*ms)[which].push_back(std::chrono::duration<double, std::milli>(end - start).count());
        (*cpuMs)[which].push_back(cpuEnd - cpuStart);
      }
    }
    if (progress) progress("latency", i + 1, rounds);
  }
  return Status::ok();
}

}  // namespace

Status warmUp(std::span<runtime::Session* const> sessions, const std::vector<runtime::NamedTensor>& feeds, int runs) {
  return runRounds(sessions, feeds, std::max(runs, 0), 0, nullptr, nullptr, nullptr);
}

Expected<std::vector<LatencyStats>> measureLatency(std::span<runtime::Session* const> sessions,
                                                   const std::vector<runtime::NamedTensor>& feeds,
                                                   const LatencyOptions& options) {
  int64_t warmup = std::max(options.warmupRuns, 0);
  int64_t total = warmup + std::max(options.runs, 0);
  std::vector<std::vector<double>> ms(sessions.size()), cpuMs(sessions.size());
  WH_RETURN_IF_ERROR(runRounds(sessions, feeds, total, warmup, &ms, &cpuMs, options.progress));
  std::vector<LatencyStats> stats;
  for (size_t i = 0; i < ms.size(); ++i) stats.push_back(latencyStats(ms[i], options.batch, cpuMs[i]));
  return stats;
}

int64_t samplesPerRun(const data::Batch& batch, std::optional<int64_t> fixedBatch) {
  return fixedBatch ? std::max(*fixedBatch, batch.count) : batch.count;
}

}  // namespace whittle::eval
