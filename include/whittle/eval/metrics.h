#pragma once
// The metric primitives of the evaluation engine: accumulators that take one chunk of
// elements (or one sample of class scores) at a time, so that a data set of any size streams
// through them. This header and src/eval/metrics.cpp depend on nothing beyond common and ir:
// passes, which sit below the rest of eval, include them too (convert-fp16's tolerance search).

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "whittle/ir/tensor.h"

namespace whittle::eval {

/// The first `count` elements of a numeric tensor as float (every element when `count` < 0).
std::vector<float> floatValues(const ir::Tensor& tensor, int64_t count = -1);

/// Error of a tensor against a reference, summed over every element seen:
///   cosine = sum(r*t) / sqrt(sum(r^2) * sum(t^2))
///   sqnr   = 10 * log10(sum(r^2) / sum((t - r)^2))   (dB; +infinity when t == r everywhere)
///   max and mean of |t - r|.
/// Sums are kept in double.
class ErrorAccumulator {
 public:
  /// Adds elements of the reference `ref` and the tested tensor `test` (same length).
  void add(std::span<const float> ref, std::span<const float> test);

  int64_t count() const { return count_; }
  /// 1 when both are all zero, 0 when only one is.
  double cosine() const;
  /// +infinity when the noise is zero, -infinity when the signal is zero and the noise is not.
  double sqnrDb() const;
  double maxAbsError() const { return maxAbs_; }
  double meanAbsError() const { return count_ > 0 ? sumAbs_ / static_cast<double>(count_) : 0.0; }
  double signalPower() const { return sumRefSq_; }
  double noisePower() const { return sumNoiseSq_; }

 private:
  int64_t count_ = 0;
  double sumRefSq_ = 0;
  double sumTestSq_ = 0;
  double sumDot_ = 0;
  double sumNoiseSq_ = 0;
  double sumAbs_ = 0;
  double maxAbs_ = 0;
};

/// Error per channel along one axis of a tensor: elements are laid out row-major, so with C
/// channels on that axis and `inner` elements per step of it (the product of the dims after it)
/// element i belongs to channel (i / inner) % C; the last axis has inner = 1. A detector that
/// concatenates box coordinates (hundreds of pixels) with scores (0..1) along its last axis has
/// an output SQNR that the boxes dominate; the scores' collapse shows only in their own channel
/// ([N, C, H, W] maps and YOLOv8's [1, 4+C, A] rows hold theirs on axis 1). Sums are kept in double.
class ChannelErrorAccumulator {
 public:
  /// Adds elements of `ref` and `test` (same length, a multiple of `channels` * `inner`, both
  /// >= 1). The first call fixes the channel count; a later call with another count is an error.
  void add(std::span<const float> ref, std::span<const float> test, int64_t channels, int64_t inner = 1);

  int64_t channels() const { return static_cast<int64_t>(refSq_.size()); }
  /// SQNR of channel `c` in dB (as ErrorAccumulator::sqnrDb()).
  double sqnrDb(int64_t c) const;
  /// The lowest SQNR over the channels whose reference is not all zero (a channel with no
  /// signal has nothing to lose), and that channel; +infinity and -1 when there is none.
  std::pair<double, int64_t> minSqnrDb() const;

 private:
  std::vector<double> refSq_;
  std::vector<double> noiseSq_;
};

/// F1 in percent of detections matched between a reference and a tested run:
///   200 |both| / (|reference| + |tested|), and 100 when neither side has any.
double f1Pct(int64_t both, int64_t reference, int64_t tested);

/// Threshold decisions of a tested tensor against a reference: an element is positive when it
/// is above the threshold (a detector's score: the anchor or cell becomes a detection). What a
/// detector's decoded output loses shows here before box regression and NMS: an int8 score that
/// crosses the threshold the other way adds or drops a detection, however small its error.
///   F1 = 2 |both positive| / (|reference positives| + |test positives|)
/// A NaN is never positive.
class ThresholdF1Accumulator {
 public:
  /// Adds elements of `ref` and `test` (same length).
  void add(std::span<const float> ref, std::span<const float> test, double threshold);

  int64_t referencePositives() const { return ref_; }
  int64_t testPositives() const { return test_; }
  int64_t bothPositive() const { return both_; }
  /// F1 in percent; 100 when neither side has a positive.
  double f1Pct() const;

 private:
  int64_t ref_ = 0;
  int64_t test_ = 0;
  int64_t both_ = 0;
};

/// Decoded detections of one sample: boxes as corners (x1, y1, x2, y2), four floats each, a
/// score per box and, when the detector has classes, a class per box (empty: one class).
struct Detections {
  std::vector<float> boxes;
  std::vector<float> scores;
  std::vector<int64_t> classes;
  size_t size() const { return scores.size(); }
};

/// Intersection over union of two corner-form boxes (0 when the union is empty).
double boxIou(const float* a, const float* b);

/// Tested detections matched to reference ones, as a detector's evaluation matches them: each
/// tested box, highest score first (ties: the earlier box), takes the unmatched reference box of
/// its class with the highest IoU (the first on a tie) when that IoU reaches `iouThreshold`.
/// Returns the number matched.
int64_t matchDetections(const Detections& ref, const Detections& test, double iouThreshold = 0.5);

/// Box F1 of tested detections against reference ones, summed over samples:
///   F1 = 2 |matched| / (|reference boxes| + |tested boxes|)   (matchDetections per sample)
/// What a detector's user sees: a duplicate box that NMS lets through, or a box that moved, counts
/// where a score or peak count cannot see it.
class BoxF1Accumulator {
 public:
  void add(const Detections& ref, const Detections& test, double iouThreshold = 0.5);

  int64_t referenceBoxes() const { return ref_; }
  int64_t testBoxes() const { return test_; }
  int64_t matched() const { return matched_; }
  /// F1 in percent; 100 when neither side has a box.
  double f1Pct() const { return eval::f1Pct(matched_, ref_, test_); }

 private:
  int64_t ref_ = 0;
  int64_t test_ = 0;
  int64_t matched_ = 0;
};

/// The largest error relative to the largest reference magnitude, over every element seen:
///   max |t - r| / max(max |r|, 1e-12)
/// over the elements whose reference is finite; +infinity as soon as the tested value is not
/// finite where the reference is (an overflow of the tested run).
class RelativeErrorAccumulator {
 public:
  /// Adds elements of the reference `ref` and the tested tensor `test` (same length).
  void add(std::span<const float> ref, std::span<const float> test);

  int64_t count() const { return count_; }
  double value() const;

 private:
  int64_t count_ = 0;
  double maxRef_ = 0;
  double maxDiff_ = 0;
  bool overflow_ = false;
};

/// RelativeErrorAccumulator over one pair of tensors; +infinity when their element counts differ.
double relativeError(const ir::Tensor& reference, const ir::Tensor& test);

/// Indices of the `k` largest scores, largest first; ties go to the lower index; NaN sorts last.
std::vector<int64_t> topK(std::span<const float> scores, int k);

/// Top-1 / top-5 accuracy against labels and top-1 agreement between two models' rows of
/// class scores.
class ClassificationAccumulator {
 public:
  /// Adds one sample: the class scores of both models (same length; `optimized` empty when one
  /// model is evaluated) and its label (-1: none).
  void add(std::span<const float> original, std::span<const float> optimized, int64_t label);

  int64_t samples() const { return samples_; }
  int64_t labelled() const { return labelled_; }
  /// Samples added with both models' scores.
  int64_t pairs() const { return pairs_; }
  /// Fractions in [0, 1]; 0 when nothing was added. Agreement is over pairs().
  double agreement() const;
  double top1Original() const;
  double top5Original() const;
  double top1Optimized() const;
  double top5Optimized() const;

 private:
  int64_t samples_ = 0;
  int64_t labelled_ = 0;
  int64_t pairs_ = 0;
  int64_t agree_ = 0;
  int64_t top1Orig_ = 0;
  int64_t top5Orig_ = 0;
  int64_t top1Opt_ = 0;
  int64_t top5Opt_ = 0;
};

/// Perplexity of a causal language model: the mean next-token negative log-likelihood over
/// every position but the last of each sequence,
///   nll = sum over b, t < S-1 of [ logsumexp(logits[b, t, :]) - logits[b, t, tokens[b, t+1]] ]
///   perplexity = exp(nll / count)
/// with logits [B, S, V] and tokens [B, S] (the model's input ids). Sums in double.
class PerplexityAccumulator {
 public:
  /// Adds `batch` sequences of `seq` positions; `logits` holds batch * seq * vocab values.
  /// Returns false (adding nothing) when a token is outside [0, vocab).
  bool add(std::span<const float> logits, std::span<const int64_t> tokens, int64_t batch, int64_t seq, int64_t vocab);

  int64_t count() const { return count_; }
  /// exp(mean NLL); 0 when nothing was added.
  double perplexity() const;
  double meanNll() const { return count_ > 0 ? nll_ / static_cast<double>(count_) : 0.0; }

 private:
  int64_t count_ = 0;
  double nll_ = 0;
};

}  // namespace whittle::eval
