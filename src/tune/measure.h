#pragma once
// The tuner's measuring side: the evaluation data read once (inputs kept in memory when they
// fit), the float model's outputs kept as the reference (in memory up to a budget, then in a
// temporary file), and one quantized model measured against them on whittle's runtime with the
// evaluation engine's accumulators.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "whittle/data/dataset.h"
#include "whittle/ir/graph.h"
#include "whittle/tune/tune.h"
#include "tune/detections.h"
#include "tune/output_store.h"

namespace whittle::tune {

/// The order a Reference keeps `batches` batches of the data set in: every stride-th batch from
/// the first, then from the second, ... (stride the ceiling of sqrt(batches)), so that the first
/// ones of the order (a measurement's first samples) spread across the whole data set. The
/// ranking samples used to be the first files: on the 900 ImageNet images sorted by class the
/// fully quantized MobileNetV2 agrees with fp32 on 97.1 % of the first 104 and 94.3 % of all.
std::vector<int64_t> spreadOrder(int64_t batches);

/// The reference: inputs (or where to read them), the float model's outputs and the labels.
class Reference {
 public:
  /// Runs `floatModel` over `spec` (opened for the model's inputs) and keeps its outputs.
  /// `cacheBytes` bounds what is kept in memory between trials (TuneRequest::evalCacheBytes):
  /// the float outputs up to a quarter of it (the rest in a temporary file), the inputs when
  /// they all fit in the other three quarters (else every trial reads them again).
  static Expected<std::unique_ptr<Reference>> build(const ir::Model& floatModel, const data::DatasetSpec& spec,
                                                    int threads, int64_t cacheBytes);

  int64_t samples() const { return samples_; }
  bool hasLabels() const { return hasLabels_; }
  /// The output of class scores ([N, C] or [N, C, 1, ...]), or -1.
  int classOutput() const { return classOutput_; }
  int64_t classes() const { return classes_; }
  /// Whether every label is a class index of classOutput() (< classes()).
  bool labelsFit() const { return labelsFit_; }
  const std::vector<std::string>& outputNames() const { return outputNames_; }
  /// The float model's own measurements (top-1, speed; errors are zero).
  const Metrics& own() const { return own_; }
  std::vector<std::string> notes;

  /// Measures `model` against the reference on every sample (`full`) and on the first
  /// `firstSamples` of them in spreadOrder() (`first`, whole batches: at least that many), in one
  /// pass.
  struct Measured {
    Metrics full;
    Metrics first;
  };
  /// With `workers` > 1 that many sessions of `model` (each on `threads` threads) run batches
  /// side by side while this thread accumulates them in batch order, so the metrics are the same
  /// as with one; msPerSample is then each run's time with the others running beside it.
  Expected<Measured> measure(const ir::Model& model, int64_t firstSamples, bool firstOnly, int threads,
                             int workers = 1);
  /// Reads the per-channel SQNR of each output along the axis `rules` give it (the last axis
  /// when no rule names it) from now on. An error when a rule names no output of the model or an
  /// axis outside an output's rank.
  Status setChannelAxes(const std::vector<ChannelAxisRule>& rules);
  /// Measures the thresholded F1 and the SQNR of the score elements of `specs` (pooled) from now
  /// on (Metrics::scoreF1Pct, scoreSqnrDb); a peaks spec counts its maps' peaks (tune/peaks.h)
  /// where the others count elements, into the same F1. An error when an output is not one of the
  /// model's, the axis is outside its rank, the channels are not on that axis, a peaks spec's
  /// output has no map on its last two axes after the channel axis, or no float score of any
  /// spec is above its threshold (an F1 over no detection says nothing; one spec without any is
  /// a note: PicoDet's finest stride may hold no detection on the data).
  Status setScores(const std::vector<ScoreSpec>& specs);
  /// Measures the box F1 of the decoded detections (Metrics::boxF1Pct) and the SQNR of the outputs
  /// the decoder reads (decodedSqnrDb) from now on: the decoder at `path` (tune/detections.h) runs
  /// on the float outputs of every sample here, and on each measured model's. An error when the
  /// decoder does not fit the model's outputs, or decodes no float detection on the data.
  Status setDetections(const std::string& path);
  /// The inputs of the first batch (what the tuner times per-node latency on).
  Expected<std::vector<data::NamedTensor>> firstInputs() {
    WH_ASSIGN_OR_RETURN(data::Batch b, batch(0));
    return std::move(b.inputs);
  }

 private:
  Expected<data::Batch> batch(size_t index);
  /// The output dims of batch `b` (those of the first batch, their batch axis as `b` ran).
  std::vector<std::vector<int64_t>> batchDims(size_t b) const;
  /// batch() for the measuring workers: reading the data set (when the inputs are not cached)
  /// takes this lock.
  std::mutex readMutex_;

  std::unique_ptr<data::Dataset> data_;
  int64_t batchSize_ = 1;
  int64_t samples_ = 0;
  bool hasLabels_ = false;
  int classOutput_ = -1;
  int64_t classes_ = 0;
  bool labelsFit_ = true;
  std::vector<std::string> outputNames_;
  /// Channels along one axis of an output: element i is in channel (i / inner) % channels
  /// (one channel for rank < 2: the output is its own channel).
  using Layout = eval::ChannelLayout;
  std::vector<std::vector<int64_t>> dims_;             ///< per output, of the first batch
  std::vector<Layout> channels_;                       ///< per output, the per-channel SQNR's axis
  struct Scored {
    ScoreSpec spec;
    size_t output = 0;
    Layout layout;
    int64_t height = 1, width = 1;  ///< the map of a peaks spec (the output's last two axes)
  };
  std::vector<Scored> scores_;
  std::unique_ptr<DetectionDecoder> decoder_;           ///< --detections
  std::vector<std::vector<eval::Detections>> decoded_;  ///< [batch][sample]: the float model's
  std::vector<int64_t> order_;                         ///< position -> data set batch (spreadOrder)
  std::vector<data::Batch> cached_;                    ///< every batch, when they fit
  std::vector<int64_t> counts_;                        ///< real samples per batch
  std::vector<int64_t> rows_;                          ///< batch dim as run
  std::vector<std::vector<int64_t>> labels_;           ///< per batch
  std::unique_ptr<OutputStore> outs_;                  ///< [batch][output] real elements
  Metrics own_;
};

}  // namespace whittle::tune
