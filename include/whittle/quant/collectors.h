#pragma once
// Streaming statistics of a layer's input for weight quantization (GPTQ, AWQ, the RTN
// clipping search), collected in one calibration pass (quant::collectStatistics):
//   X^T X   the K x K second moment of the input rows x (the last axis is the channel axis;
//           every other axis is rows), the layer Hessian of GPTQ up to a factor 2/rows;
//   mean|x| per channel, AWQ's activation magnitude;
//   min, max and mean x^2 per channel, SmoothQuant's activation range and the weight error's weighting.
// Memory is K x K floats (or K without the Hessian), whatever the number of samples.

#include <cstdint>
#include <mutex>
#include <vector>

#include "whittle/quant/calibration.h"

namespace whittle::quant {

/// Collects X^T X (optional) and sum |x| over the rows of one tensor with K channels.
class InputStatsCollector final : public TensorCollector {
 public:
  InputStatsCollector(int64_t channels, bool secondMoment);
  Status collect(const std::string& name, const ir::Tensor& value, int64_t samples) override;
  int64_t channels() const { return channels_; }
  /// Rows seen (every axis but the last, over all samples).
  int64_t rows() const { return rows_; }
  /// X^T X / rows, K x K row-major (symmetric); empty without the second moment.
  std::vector<double> secondMoment() const;
  /// mean |x| per channel.
  std::vector<float> meanAbs() const;
  /// max |x| per channel.
  std::vector<float> maxAbs() const;
  /// min x and max x per channel (+inf / -inf before any row).
  const std::vector<float>& minValue() const { return min_; }
  const std::vector<float>& maxValue() const { return max_; }
  /// mean x^2 per channel (the diagonal of the second moment, also without it).
  std::vector<double> meanSquare() const;

 private:
  int64_t channels_;
  bool wantSecond_;
  int64_t rows_ = 0;
  std::vector<float> xtx_;  // K x K, lower triangle accumulated
  std::vector<double> absSum_;
  std::vector<double> sqSum_;
  std::vector<float> min_, max_;
};

}  // namespace whittle::quant
