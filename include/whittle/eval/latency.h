#pragma once
// Latency measurement: timed runs of one or more sessions on the same feeds, interleaved so
// that drift in the machine's load falls on every session alike, summarized in one
// LatencyStats. `whittle compare` times two sessions, `whittle bench` one.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "whittle/common/process_clock.h"
#include "whittle/common/status.h"
#include "whittle/data/dataset.h"
#include "whittle/runtime/session.h"

namespace whittle::eval {

/// Called as work goes on: `phase` ("accuracy", "per-layer", "latency", ...), work done and the
/// total in that phase.
using ProgressFn = std::function<void(std::string_view phase, int64_t done, int64_t total)>;

/// Latency of one session: milliseconds per run of one batch, over the timed runs.
struct LatencyStats {
  int64_t runs = 0;
  int64_t batch = 0;  ///< Samples per run.
  double meanMs = 0, p50Ms = 0, p90Ms = 0, p99Ms = 0, minMs = 0, maxMs = 0;
  double stddevMs = 0;    ///< Sample standard deviation; 0 for one run.
  double throughput = 0;  ///< Samples per second, from the mean.
  /// CPU time of the whole process per run (every thread's, kernel time included), mean and
  /// median. On a machine shared with other work the wall clock also counts the time the run
  /// waited for a core; at one thread the CPU time does not, so it compares two runtimes
  /// measured under load more fairly (caches and memory bandwidth are still shared).
  double cpuMeanMs = 0, cpuP50Ms = 0;
};

/// The q-th percentile (0..100) of `values` by linear interpolation between closest ranks
/// (numpy's default); 0 for an empty list.
double percentile(std::vector<double> values, double q);

/// The statistics of run times `ms` (one per timed run) of batches of `batch` samples, and of
/// the runs' process CPU times `cpuMs` (empty: the CPU figures stay 0).
LatencyStats latencyStats(const std::vector<double>& ms, int64_t batch, const std::vector<double>& cpuMs = {});

/// CPU time the whole process has used so far (common/process_clock.h).
using ::whittle::processCpuMs;

/// Runs every session `runs` times on `feeds`, untimed, interleaved as measureLatency does.
Status warmUp(std::span<runtime::Session* const> sessions, const std::vector<runtime::NamedTensor>& feeds, int runs);

struct LatencyOptions {
  /// Untimed rounds first, then timed rounds; a round runs every session once.
  int warmupRuns = 3;
  int runs = 20;
  /// Samples per run, for LatencyStats::batch and the throughput.
  int64_t batch = 1;
  /// Called after each round, warm-up included, with phase "latency".
  ProgressFn progress;
};

/// Times each session on `feeds` with a steady clock and the process CPU clock around
/// Session::run (which includes allocating the outputs). Round i runs the sessions in turn starting at session i mod n, so
/// that none always goes first. Returns one LatencyStats per session, in order.
Expected<std::vector<LatencyStats>> measureLatency(std::span<runtime::Session* const> sessions,
                                                   const std::vector<runtime::NamedTensor>& feeds,
                                                   const LatencyOptions& options);

/// The samples one run of `batch` processes, padding included: the model's fixed batch size
/// when the data set has one (`Dataset::fixedBatch()`: the batch was padded up to it; 1 when a
/// sample is a whole input), else the batch's samples. Not a dim of the feeds: the first
/// input may be a recurrent state [2, batch, 128], a scalar, a fixed input or a whole window.
int64_t samplesPerRun(const data::Batch& batch, std::optional<int64_t> fixedBatch);

}  // namespace whittle::eval
