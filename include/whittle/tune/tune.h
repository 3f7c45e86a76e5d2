#pragma once
// Accuracy-aware int8 quantization: `whittle optimize --quantize int8 --eval DATA` with a budget
// (--max-accuracy-drop, --min-agreement, --min-sqnr, --min-score-f1, --min-box-f1). The tuner
// quantizes the model, measures it against the float model on the evaluation data with whittle's
// runtime, ranks the quantized nodes by how much of the output error each one causes
// (sensitivity), and repairs, cheapest first, until the budget holds or the time is up:
//   1. a better range method for all tensors, then per tensor for the most sensitive nodes
//      (minmax, percentile, entropy, mse, chosen by the measured output error); cross-layer
//      equalization of depthwise -> pointwise Conv pairs and bias correction (each kept when it
//      lowers the measured error), before ranking;
//   2. the output-decoding tail (the ops after the last Conv/MatMul/Gemm, with that op) kept
//      float, when that is what hurts;
//   3. the most harmful nodes kept float, one at a time, in the order of measured gain per
//      measured cost (the float node's latency), re-measured each time; one stays only when it
//      moves the budget's own measure beyond the noise of the samples it flips (tune/accept.h),
//      and once the budget holds, minimize quantizes float nodes again, dearest first.
// Calibration observations are made once, on the first trial, and every later trial reuses them
// (ranges are chosen per tensor from the stored observations). Trials are deterministic. The
// best model found is always returned, whether or not the budget holds.
//
//   tune::TuneRequest request;
//   request.optimize.inputPath = "model.onnx";
//   request.optimize.outputPath = "model.int8.onnx";
//   request.optimize.quantize.mode = QuantizeMode::kInt8;
//   request.optimize.calibration.data = data::DatasetSpec{.path = "calib/"};
//   request.eval = data::DatasetSpec{.path = "eval/"};
//   request.budget.maxAccuracyDropPp = 0.5;
//   auto result = tune::tune(request);   // result->met, result->trials, result->sensitivity

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "whittle/common/status.h"
#include "whittle/data/dataset.h"
#include "whittle/eval/channel_axis.h"
#include "whittle/optimize.h"

namespace whittle::tune {

/// A detector's scores (--scores OUTPUT[:axis=A]:CHANNELS:THRESHOLD): the elements of one output
/// in a range of channels along one of its axes (the last unless `axis` says otherwise), each a
/// detection when above the threshold. ultraface "scores:1:0.7": column 1 of [1, A, 2] is the
/// face probability, kept above 0.7; CenterFace "537:axis=1:0:0.2": the heatmap, channel 0 of
/// [1, 1, H, W]; YOLOv8 "output0:axis=1:4-21:0.25": the class rows of [1, 4+C, A].
struct ScoreSpec {
  std::string output;
  int64_t firstChannel = 0;
  int64_t lastChannel = -1;  ///< inclusive; -1: every channel
  double threshold = 0.5;
  int64_t axis = -1;         ///< the channel axis, negative from the end as in ONNX (-1: the last)
  /// Peaks instead of cells (":peaks[=K[/R]]", a CenterNet-style heatmap): 0 counts every element
  /// above the threshold; K (odd, >= 3) counts an element only when it is also the largest of its
  /// K x K neighbourhood on the output's last two axes (the map; the channel axis is before them),
  /// as the decoder's max-pool NMS keeps it, and a float peak is found again when an int8 peak is
  /// within `peakRadius` cells (Chebyshev distance). A face is one peak amid many cells above the
  /// threshold: counting cells weighs a blob by its area, counting peaks weighs it once.
  int64_t peakWindow = 0;
  int64_t peakRadius = 1;  ///< default K / 2 (1 for K = 3)
  /// "scores:1:0.7" as parseScoreSpec reads it (":axis=A" only when it is not the last).
  std::string text() const;
};

/// "OUTPUT[:axis=A]:CHANNELS:THRESHOLD[:peaks[=K[/R]]]" with CHANNELS a channel C, a range A-B,
/// or * (every channel) and A an axis (negative from the end); `peaks` counts local maxima of the
/// map in a K x K window (K odd, default 3) matched within R cells (default K / 2). The output name
/// may itself hold ':' (the fields are split off from the right).
Expected<ScoreSpec> parseScoreSpec(const std::string& text);
/// The matching radius of a peaks field that names only the window K: K / 2, at least 1.
int64_t defaultPeakRadius(int64_t window);

/// The --channel-axis rules live with the evaluation engine (compare reads them too).
using eval::ChannelAxisRule;
using eval::channelAxisOf;
using eval::parseChannelAxis;

/// What the quantized model must keep; every budget given must hold.
struct Budget {
  std::optional<double> maxAccuracyDropPp;  ///< top-1 percentage points below the float model (needs labels)
  std::optional<double> minAgreementPct;    ///< top-1 agreement with the float model, percent
  std::optional<double> minSqnrDb;          ///< the lowest SQNR over every output and every channel (channelAxes)
  /// F1 of the quantized model's thresholded scores against the float model's, percent
  /// (eval::ThresholdF1Accumulator over `scores`, every evaluation sample): a detector's
  /// detections appear and vanish where a score crosses its threshold, which an SQNR does not
  /// bound (a crowd of faces near the threshold loses some at 27 dB). Needs `scores`.
  std::optional<double> minScoreF1Pct;
  /// The scores of --min-score-f1: one spec per output (or per channel range); the F1 and the
  /// score SQNR pool the elements of every spec (PicoDet's four stride outputs, one budget).
  std::vector<ScoreSpec> scores;
  /// F1 of the quantized model's decoded detections against the float model's, percent, boxes
  /// matched at IoU 0.5 (eval::BoxF1Accumulator, per class when the decoder gives classes),
  /// every evaluation sample: the detector's own post-processing, written by the user as an ONNX
  /// graph (`detections`), decides what a detection is. Needs `detections`.
  std::optional<double> minBoxF1Pct;
  /// The decoder of --min-box-f1 (--detections DECODER.onnx): inputs are outputs of the model (by
  /// name), outputs are boxes [N, 4] (x1, y1, x2, y2), scores [N] and optionally classes [N].
  std::string detections;
  /// The channel axes of the per-channel SQNR (--min-sqnr and the ranking): every output's last
  /// axis when empty.
  std::vector<ChannelAxisRule> channelAxes;

  bool any() const { return maxAccuracyDropPp || minAgreementPct || minSqnrDb || minScoreF1Pct || minBoxF1Pct; }
  /// "accuracy drop <= 0.5 pp", "agreement >= 99 %", ... joined by " and ".
  std::string text() const;
};

struct TuneRequest {
  /// The model, level, quantization (mode int8; its method is the starting method), calibration
  /// data (or a loaded table) and the output path. Its report request, when set, gets the
  /// tuning section. Half-precision conversion cannot be combined with tuning.
  OptimizeRequest optimize;
  /// The evaluation data (labels beside it or named in the spec).
  std::optional<data::DatasetSpec> eval;
  Budget budget;
  /// Wall-clock limit for the whole search (seconds); the best model so far is returned at it.
  double timeBudgetSeconds = 600;
  /// Rank the nodes only: no repair, no model written.
  bool sensitivityOnly = false;
  /// Measure one slice of the sensitivity analysis (with sensitivityOnly): the nodes at
  /// positions p of the per-layer ranking with p % shardCount == shardIndex. Each shard is
  /// deterministic and independent of the others (the per-layer ranking is the same in
  /// every shard), so N shards can run as an array job; their trial logs merge (mergeLogs).
  /// shardCount 0: no sharding.
  int shardIndex = 0;
  int shardCount = 0;
  /// Trial logs of sensitivity shards (or of any earlier run of the same model): their
  /// measured gains are taken instead of measured again; nodes none of them measured are
  /// measured here.
  std::vector<std::string> mergeLogs;
  /// Samples (the first of the evaluation data) that rank nodes and choose ranges; the budget
  /// is always checked on all of them.
  int64_t rankingSamples = 100;
  /// Threads of the runtime sessions.
  int threads = 1;
  /// Sessions that measure one trial side by side on the evaluation data, each on `threads`
  /// threads, its batches accumulated in order (the same metrics as one session). 0: the cores
  /// divided by `threads`. Per-node profiles (the fallback's measured cost) stay one session.
  int workers = 0;
  /// Order the fallback by the measured speed cost of each float node (a per-node profile of the
  /// float and the quantized model, src/tune/cost.cpp); false: by the graph estimate alone, which
  /// does not depend on the machine's timing (a reproducible search).
  bool measureCost = true;
  /// A speed floor against the float model, by the measured profile (needs measureCost): a
  /// fallback candidate that would bring the estimated speedup (float time over the quantized
  /// time plus the measured cost of every float node) under it is not tried. 0: none.
  double minSpeedup = 0;
  /// Memory the evaluation data keeps between trials (`--eval-cache`): the float model's outputs
  /// up to a quarter of it, the rest of them in an unnamed temporary file; the inputs when they
  /// all fit in the other three quarters, else every trial reads (decodes) them again. The
  /// tuner's memory then does not grow with the number of evaluation samples.
  int64_t evalCacheBytes = int64_t{1024} << 20;
  /// Write the trial log (JSON, schema whittle.tune/1) here.
  std::string trialLogPath;
  /// Progress lines ("trial 3: ...").
  std::function<void(const std::string& line)> progress;
};

/// What one trial measured.
struct Metrics {
  int64_t samples = 0;
  double outputSqnrDb = 0;      ///< the lowest output SQNR
  double minChannelSqnrDb = 0;  ///< the lowest over outputs and their channels (Budget::channelAxes)
  std::string worstOutput;      ///< the output holding minChannelSqnrDb
  int64_t worstChannel = -1;
  std::optional<double> top1Pct;       ///< with labels and a class-score output
  std::optional<double> agreementPct;  ///< with a class-score output
  double classSqnrDb = 0;              ///< the class-score output's SQNR (with one; else the lowest output's)
  std::optional<double> scoreF1Pct;    ///< with Budget::scores: the thresholded scores' F1 against the float model
  double scoreSqnrDb = 0;              ///< with Budget::scores: the SQNR of those score elements
  std::optional<double> boxF1Pct;      ///< with Budget::detections: the decoded boxes' F1 against the float model
  double decodedSqnrDb = 0;            ///< with Budget::detections: the lowest SQNR of the outputs the decoder reads
  double msPerSample = 0;              ///< the quantized model's run time over the data, per sample
  /// Per sample of the class-score output, in data order: top-1 equals the label (with labels),
  /// top-1 equals the float model's. What the fallback's acceptance counts flips on.
  std::vector<uint8_t> correct;
  std::vector<uint8_t> agrees;
};

struct Trial {
  int index = 0;
  std::string stage;   ///< "baseline", "method", "equalize", "bias", "sensitivity", "range", "tail", "fallback", "minimize"
  std::string change;  ///< what this trial changed, one line
  std::vector<std::string> floatNodes;             ///< nodes kept float
  std::map<std::string, std::string> methods;      ///< per-tensor range methods differing from the default
  std::string defaultMethod;
  bool equalized = false;       ///< cross-layer equalization of depthwise -> pointwise pairs
  bool biasCorrected = false;   ///< biases corrected by each layer's mean output shift
  Metrics metrics;
  std::optional<double> accuracyDropPp;
  bool fullData = false;  ///< measured on every evaluation sample (else on the ranking samples)
  bool meetsBudget = false;
  bool kept = false;  ///< the search kept this change
  std::string verdict;  ///< a fallback's acceptance: the flips of the budget's measure against the noise
  int64_t parameterBytes = 0;
  double seconds = 0;  ///< this trial's time (quantize + measure)
};

/// One quantized node's share of the output error.
struct Sensitivity {
  std::string node;
  std::string opType;
  /// Cheap pass: the SQNR lost across the node in the all-quantized model (its inputs' SQNR
  /// minus its output's, per layer against the float model), dB.
  double localLossDb = 0;
  /// Measured: the ranking metric with this node float minus with every node quantized, dB
  /// (positive: keeping it float helps). Absent when the time ran out first.
  std::optional<double> gainDb;
  int rank = 0;  ///< 1 = most harmful
};

struct TuneResult {
  ir::Model model;  ///< the best model found (empty graph with sensitivityOnly)
  bool met = false;
  /// One line: how far the best model is from the budget (empty when met).
  std::string shortfall;
  Metrics reference;  ///< the float model's own (top-1, speed)
  std::vector<Trial> trials;
  std::vector<Sensitivity> sensitivity;  ///< ranked, most harmful first
  int best = -1;                         ///< index into trials
  /// Nodes kept float in the best model, each with why.
  std::vector<std::pair<std::string, std::string>> fellBack;
  std::vector<std::string> notes;
  /// The pipeline of the best model, in canonical text (also in its metadata).
  std::string pipeline;
  double seconds = 0;
  /// Present when the optimize request asked for a report.
  std::optional<report::CompareResult> report;
};

/// "I/N" (--shard) as (I, N); an error unless 0 <= I < N.
Expected<std::pair<int, int>> parseShard(const std::string& text);

/// Runs the search. Bad input (no budget, no evaluation data, an accuracy budget without
/// labels, labels that do not fit the data) is an error naming the flag; a budget that cannot
/// be met is not an error: `met` is false and `shortfall` says by how much.
Expected<TuneResult> tune(const TuneRequest& request);

/// The trial log (schema "whittle.tune/1"): budget, reference, every trial, the ranking, the
/// choice and what fell back.
nlohmann::json tuneResultJson(const TuneRequest& request, const TuneResult& result);

/// What `whittle optimize` prints after a search: the ranking, the notes, what fell back and
/// the best trial, one line each.
std::string tuneResultText(const TuneRequest& request, const TuneResult& result);

/// --time-budget's text ("90", "90s", "10m", "1h") as seconds; an error names the flag.
Expected<double> parseDuration(const std::string& text);

}  // namespace whittle::tune
