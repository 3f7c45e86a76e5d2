#pragma once
// The evaluation engine: runs one session, or an original and an optimized session side by
// side, over a data set one batch at a time, and accumulates metrics of every graph output
// (error, classification, and whatever MetricAccumulator a caller adds) and the error of
// matched activations (per layer). `whittle compare`, the reports and tuners call it; what it
// measures is independent of how the models were made.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/data/dataset.h"
#include "whittle/eval/channel_axis.h"
#include "whittle/eval/latency.h"
#include "whittle/eval/layers.h"
#include "whittle/ir/graph.h"
#include "whittle/runtime/session.h"

namespace whittle::eval {

/// The metrics of one graph output, over every sample of the data set. With one session only
/// the classification fields about the original are measured; the error fields keep their
/// defaults.
struct OutputMetrics {
  std::string name;
  std::vector<int64_t> dims;  ///< Of one batch of the original model's output.
  int64_t elements = 0;       ///< Elements compared, over all batches (padding excluded).
  double cosine = 1.0;
  double sqnrDb = 0;  ///< +infinity when the outputs are identical.
  double maxAbsError = 0;
  double meanAbsError = 0;
  /// Channels along the output's channel axis (errorMetric's --channel-axis rules; the last axis
  /// unless a rule says otherwise): 1 when the output has rank < 2 or that dim is 1.
  int64_t channels = 1;
  /// The lowest per-channel SQNR along that axis (ChannelErrorAccumulator), over channels whose
  /// reference is not all zero, and that channel (-1: none); equals sqnrDb with one channel.
  /// What a budget checks: an output's SQNR can hide a collapsed channel.
  double minChannelSqnrDb = 0;
  int64_t minChannel = -1;
  int64_t channelAxis = -1;  ///< The axis the channels were read on; -1 with one channel.
  /// The output holds one row of class scores per sample ([N, C] or [N, C, 1, 1], C >= 2):
  /// then top-1 agreement is measured, and top-1/top-5 accuracy when the labels fit (< C).
  bool classScores = false;
  int64_t classes = 0;
  std::optional<double> agreement;  ///< Fraction of samples with the same top-1 class.
  bool hasAccuracy = false;
  double top1Original = 0, top5Original = 0, top1Optimized = 0, top5Optimized = 0;  ///< Fractions.
  /// Task metrics by name, written by accumulators beyond the built-in ones.
  std::map<std::string, double> task;
  /// Causal-LM perplexity (perplexityMetric()) of both models, and the positions it averaged over.
  std::optional<double> perplexityOriginal, perplexityOptimized;
  int64_t perplexityTokens = 0;
};

/// One graph output as its first batch showed it: what a MetricFactory decides on.
struct OutputInfo {
  size_t index = 0;  ///< Among the graph outputs.
  std::string name;
  ir::DataType dtype = ir::DataType::kUndefined;  ///< The original's.
  std::vector<int64_t> dims;                      ///< The original's, for the first batch.
  int64_t rows = 0;                               ///< The first batch's first dim as run.
  bool paired = false;                            ///< Two sessions: an optimized output is there too.
};

/// One graph output of one batch, as an accumulator sees it.
struct OutputBatch {
  size_t output = 0;               ///< Index among the graph outputs.
  std::span<const int64_t> dims;   ///< The original's output dims for this batch, as run.
  int64_t rows = 0;                ///< The batch's first dim as run (padded when the model fixes it).
  int64_t count = 0;               ///< Real samples in the batch.
  std::span<const float> original;   ///< The original's elements of the real samples.
  std::span<const float> optimized;  ///< The optimized session's; empty with one session.
  std::span<const int64_t> labels;   ///< One per real sample (-1: none); empty without labels.
  const std::vector<runtime::NamedTensor>* inputs = nullptr;  ///< The batch's model inputs.
};

/// A metric over one graph output, fed batch by batch. Built-in: errorMetric() and
/// classificationMetric(); task metrics (perplexity, ...) implement it and write their values
/// into OutputMetrics::task.
class MetricAccumulator {
 public:
  virtual ~MetricAccumulator() = default;
  /// Adds one batch (called only when both outputs are numeric and have as many elements).
  /// An error stops the evaluation.
  virtual Status add(const OutputBatch& batch) = 0;
  /// Writes what was measured into `metrics`.
  virtual void finish(OutputMetrics& metrics) const = 0;
};

/// Makes the accumulator of one output when its first batch arrives; nullptr when the metric
/// does not apply to that output.
using MetricFactory = std::function<std::unique_ptr<MetricAccumulator>(const OutputInfo& output)>;

/// elements, cosine, SQNR, per-channel SQNR, max and mean |error| of the optimized output
/// against the original (ErrorAccumulator, ChannelErrorAccumulator); applies to every paired
/// output. The per-channel SQNR reads the axis `channelAxes` give each output (the last when
/// none does); a rule whose axis is outside an output's rank fails the evaluation at that
/// output's first batch, naming the rule.
MetricFactory errorMetric(std::vector<ChannelAxisRule> channelAxes = {});
/// classScores, classes, top-1 agreement and, when labels fit every sample (< C), top-1/top-5
/// accuracy of both sessions (ClassificationAccumulator); applies to numeric outputs of class
/// scores ([N, C] or [N, C, 1, ...], C >= 2).
MetricFactory classificationMetric();
/// classificationMetric() restricted to the graph output named `output`.
MetricFactory classificationMetric(const std::string& output);
/// errorMetric() and classificationMetric().
std::vector<MetricFactory> defaultMetrics();
/// Perplexity of a causal language model (PerplexityAccumulator) for both sessions: applies to
/// numeric outputs of rank 3 ([batch, seq, vocab] logits), only the one named `output` when it
/// is not empty; the token ids are the model input `tokensInput` ([batch, seq], int64 or int32).
/// A batch without that input, or with ids outside the vocabulary, is an error.
MetricFactory perplexityMetric(const std::string& tokensInput = "input_ids", const std::string& output = "");

struct EvalOptions {
  /// Samples per run when the model's batch dimension is free; a fixed batch size wins, and
  /// it is never larger than the data set.
  int64_t batchSize = 8;
  /// Activations to compare (from matchLayers): the original session must return each
  /// `tensor` and the optimized session each `optimizedTensor` as extra outputs. None may be
  /// a graph output (every returned tensor not named here is a graph output).
  std::vector<LayerMetrics> layers;
  /// The metrics of every graph output.
  std::vector<MetricFactory> metrics = defaultMetrics();
  /// Called after each batch with phase "accuracy" ("accuracy + per-layer" with layers).
  ProgressFn progress;
};

/// What the evaluator measured.
struct EvalResult {
  int64_t samples = 0;
  int64_t batch = 0;  ///< Samples per run as used.
  bool hasLabels = false;
  std::vector<OutputMetrics> outputs;  ///< In graph output order.
  /// The layers of EvalOptions::layers that could be compared (a float tensor in the original,
  /// numeric in the optimized, with as many elements), in that order, with their error.
  std::vector<LayerMetrics> layers;
  /// What the evaluation did differently from what was asked, one sentence each (a batch size
  /// it had to lower).
  std::vector<std::string> notes;
};

/// Runs sessions over a data set and accumulates metrics. The data set must have been opened
/// for the original model's inputs; an optimized session must take the same inputs and give
/// as many outputs, paired by position.
class Evaluator {
 public:
  /// `optimized` may be null: then the original alone is evaluated. Both sessions must outlive
  /// the evaluator.
  Evaluator(runtime::Session& original, runtime::Session* optimized, EvalOptions options = {});

  /// Evaluates every sample of `dataset`, from its first. When the model's input leaves the
  /// batch free but the first batch fails and a batch of one runs, it runs at batch 1 with a
  /// note (graphs that pin the batch behind a free input, common in detector exports).
  Expected<EvalResult> run(data::Dataset& dataset);

 private:
  runtime::Session& original_;
  runtime::Session* optimized_;
  EvalOptions options_;
};

/// An error naming both input lists unless the models take inputs of the same names, types and
/// compatible shapes (a symbolic dim matches any).
Status checkSameInputs(const ir::Graph& original, const ir::Graph& optimized);

}  // namespace whittle::eval
