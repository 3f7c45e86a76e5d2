#pragma once
// `whittle compare` (and `whittle optimize --report`) as one call: loads an original model and
// an optimized one, measures them on the same data set with the evaluation engine (eval::
// Evaluator for output error, accuracy and per-layer SQNR; eval::measureLatency), adds size
// and op changes, checks the CI gates and writes the reports. Works on any pair of models with
// the same inputs, whichever tool made the optimized one.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/data/dataset.h"
#include "whittle/eval/evaluator.h"
#include "whittle/eval/latency.h"
#include "whittle/eval/layers.h"
#include "whittle/ir/graph.h"
#include "whittle/runtime/device.h"

namespace whittle::report {

/// The measurements come from the evaluation engine (include/whittle/eval/).
using OutputMetrics = eval::OutputMetrics;
using LayerMetrics = eval::LayerMetrics;
using LatencyStats = eval::LatencyStats;
using ProgressFn = eval::ProgressFn;

/// Size and composition of one model.
struct ModelSummary {
  std::string path;
  int64_t fileBytes = -1;  ///< The .onnx file plus external data; -1 when not from a file.
  int64_t nodes = 0;
  int64_t parameters = 0;
  int64_t parameterBytes = 0;
  std::map<std::string, int64_t> parameterBytesByDtype;  ///< "float32" -> bytes.
  std::map<std::string, int64_t> opHistogram;            ///< Op type -> count.
  std::string pipeline;                                  ///< Metadata whittle.pipeline, if any.
  std::string producer;                                  ///< producer_name producer_version.
};

/// The thresholds of the CI gates; an unset one is not checked.
struct Gates {
  std::optional<double> maxAccuracyDrop;  ///< Percentage points of top-1 (needs labels).
  std::optional<double> minAgreement;     ///< Percent of samples with the same top-1 class.
  std::optional<double> minSqnr;          ///< dB, the lowest over the outputs.
  /// dB, the lowest over every output and every channel along its channel axis
  /// (CompareOptions::channelAxes): a score channel that collapsed behind box coordinates.
  std::optional<double> minChannelSqnr;
  std::optional<double> minSpeedup;       ///< Original p50 / optimized p50.
  std::optional<double> maxSizeRatio;     ///< Optimized file bytes / original file bytes.
  bool any() const { return maxAccuracyDrop || minAgreement || minSqnr || minChannelSqnr || minSpeedup || maxSizeRatio; }
};

/// One gate as checked.
struct GateResult {
  std::string name;  ///< "max-accuracy-drop", "min-agreement", "min-sqnr", "min-channel-sqnr", "min-speedup", "max-size-ratio".
  double threshold = 0;
  double measured = 0;
  bool passed = false;
  std::string message;  ///< "min-sqnr: 12.3 dB < 20 dB" (also on success: "... >= ...").
};

/// Everything `whittle compare` measured.
/// What accuracy-aware quantization did (whittle optimize with a budget, whittle/tune/tune.h):
/// the ranking, the trials and what fell back to float. The tuner fills it; the writers show it.
struct TuningSection {
  std::string budget;   ///< "top-1 drop <= 0.5 pp", ...
  bool met = false;
  std::string summary;  ///< one line: the best trial, or by how much the budget was missed
  struct Node {
    int rank = 0;
    std::string node;
    std::string opType;
    double localLossDb = 0;        ///< per-layer pass: SQNR lost across the node
    std::optional<double> gainDb;  ///< measured: ranking SQNR with the node float minus all quantized
  };
  std::vector<Node> sensitivity;  ///< most harmful first
  struct Trial {
    int index = 0;
    std::string stage;
    std::string change;
    bool fullData = false;
    bool best = false;
    bool meets = false;
    int floatNodes = 0;
    double sqnrDb = 0;  ///< the lowest over outputs and last-axis channels
    std::optional<double> agreementPct;
    std::optional<double> accuracyDropPp;
    int64_t parameterBytes = 0;
    double msPerSample = 0;
  };
  std::vector<Trial> trials;
  std::vector<std::pair<std::string, std::string>> fellBack;  ///< node, why
};

struct CompareResult {
  std::string dataset;  ///< Dataset::describe().
  int64_t samples = 0;
  int64_t batch = 0;
  int threads = 1;
  bool hasLabels = false;
  std::vector<OutputMetrics> outputs;
  bool perLayer = false;
  std::vector<LayerMetrics> layers;  ///< In the original graph's order.
  LatencyStats originalLatency, optimizedLatency;
  ModelSummary original, optimized;
  std::vector<GateResult> gates;
  /// What the comparison did differently from what was asked, one sentence each (a batch
  /// size it had to lower); printed, and in every report.
  std::vector<std::string> notes;

  /// Original p50 over optimized p50 (0 when unknown).
  double speedup() const;
  /// Optimized file bytes over original file bytes (0 when unknown).
  double sizeRatio() const;
  /// The lowest SQNR over the outputs.
  /// Present in the report of `whittle optimize` with an accuracy budget.
  std::optional<TuningSection> tuning;

  double minOutputSqnr() const;
  /// The lowest SQNR over every output and every channel of an output's last axis
  /// (OutputMetrics::minChannelSqnrDb): what a collapsed channel cannot hide from.
  double minChannelSqnr() const;
  /// The first output with accuracy, else the first with agreement; nullptr when none.
  const OutputMetrics* classification() const;
  /// The first output with a perplexity; nullptr when none.
  const OutputMetrics* perplexity() const;
  /// Optimized perplexity over original, minus one, in percent (0 when either is unknown).
  static double perplexityIncreasePct(const OutputMetrics& o);
  bool gatesPassed() const;
  /// Op type -> optimized count minus original count, for types whose counts differ.
  std::map<std::string, int64_t> opDelta() const;
};

struct CompareOptions {
  int threads = 1;
  /// Where each model runs (runtime::SessionOptions::device): the original on the CPU and the
  /// optimized on the GPU checks the GPU path against the CPU runtime.
  runtime::DeviceKind originalDevice = runtime::DeviceKind::kCpu;
  runtime::DeviceKind optimizedDevice = runtime::DeviceKind::kCpu;
  /// Samples per run when the model's batch dimension is free; a fixed batch size wins.
  int64_t batchSize = 8;
  /// Also measure per-layer SQNR (a run with every matched activation as an extra output).
  bool perLayer = false;
  /// Timed runs of each model (interleaved) and untimed warm-up runs before them.
  int latencyRuns = 20;
  int warmupRuns = 3;
  ProgressFn progress;
  /// Task metrics beyond the default error and classification ones: "perplexity" (causal LMs:
  /// logits [batch, seq, vocab] and the token ids of the input `tokensInput`).
  std::vector<std::string> metrics;
  std::string tokensInput = "input_ids";
  /// The graph output that classification and task metrics read; empty: every output they fit.
  /// Naming an output the original model lacks is an error.
  std::string output;
  /// Which axis of each output the per-channel SQNR reads (--channel-axis); the last axis of
  /// every output when empty. A rule naming an output the original lacks is an error.
  std::vector<eval::ChannelAxisRule> channelAxes;
};

/// Size, parameters, op histogram and pipeline of a model read from `path` ("" if none).
Expected<ModelSummary> summarizeModel(const ir::Model& model, const std::string& path);

/// Compares two loaded models on `dataset`, which must have been opened for the original
/// model's inputs; the optimized model's inputs must have the same names, types and shapes.
/// Gates are not evaluated (see evaluateGates).
Expected<CompareResult> compareModels(const ir::Model& original, const std::string& originalPath,
                                      const ir::Model& optimized, const std::string& optimizedPath,
                                      data::Dataset& dataset, const CompareOptions& options);

/// Checks the gates against `result` and stores them in result.gates. A gate that cannot be
/// measured is an error: max-accuracy-drop without labels, min-agreement without an output of
/// class scores, min-speedup without timed runs, max-size-ratio without file sizes.
Status evaluateGates(CompareResult& result, const Gates& gates);

/// Where to write reports; an empty path writes none. "-" writes to stdout (JSON, Markdown).
struct ReportPaths {
  std::string html;
  std::string json;
  std::string markdown;
  std::string junit;
};

/// Loads both models, opens `data` for the original, compares, checks `gates` and writes the
/// reports: the entry point that `whittle compare` and `whittle optimize --report` share.
/// A failed gate is not an error here: see CompareResult::gatesPassed().
Expected<CompareResult> compareFiles(const std::string& originalPath, const std::string& optimizedPath,
                                     const data::DatasetSpec& data, const CompareOptions& options, const Gates& gates,
                                     const ReportPaths& reports);

/// Writes the reports that `paths` names.
Status writeReports(const CompareResult& result, const ReportPaths& paths);

}  // namespace whittle::report
