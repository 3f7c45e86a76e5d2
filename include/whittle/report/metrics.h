#pragma once
// Error and accuracy metrics of `whittle compare`, accumulated one batch at a time so that a
// data set of any size streams through them.

#include <cstdint>
#include <span>
#include <vector>

namespace whittle::report {

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

/// Indices of the `k` largest scores, largest first; ties go to the lower index.
std::vector<int64_t> topK(std::span<const float> scores, int k);

/// Top-1 / top-5 accuracy against labels and top-1 agreement between two models' rows of
/// class scores.
class ClassificationAccumulator {
 public:
  /// Adds one sample: the class scores of both models (same length) and its label (-1: none).
  void add(std::span<const float> original, std::span<const float> optimized, int64_t label);

  int64_t samples() const { return samples_; }
  int64_t labelled() const { return labelled_; }
  /// Fractions in [0, 1]; 0 when nothing was added.
  double agreement() const;
  double top1Original() const;
  double top5Original() const;
  double top1Optimized() const;
  double top5Optimized() const;

 private:
  int64_t samples_ = 0;
  int64_t labelled_ = 0;
  int64_t agree_ = 0;
  int64_t top1Orig_ = 0;
  int64_t top5Orig_ = 0;
  int64_t top1Opt_ = 0;
  int64_t top5Opt_ = 0;
};

/// The q-th percentile (0..100) of `values` by linear interpolation between closest ranks
/// (numpy's default); 0 for an empty list.
double percentile(std::vector<double> values, double q);

}  // namespace whittle::report
