#pragma once
// Adaptive weight rounding for depthwise convolutions (the AdaRound objective, solved exactly):
// round-to-nearest makes each int8 weight as close as it can be to its float value, but what
// matters is the layer's output. For an output channel with float weights w (K = kh * kw taps
// of one input channel), scale s and integer weights q, the output error on an input patch x is
// (s q - w) . x, and its mean square over the calibration data is
//     E[((s q - w) . x)^2] = (s q - w)^T H (s q - w),   H = E[x x^T]  (K x K, per input channel).
// Each weight may round down or up (floor or ceil of w / s, as AdaRound allows); with K <= 16
// free choices every combination is tried (a Gray-code walk updates the quadratic in O(K) per
// step), so the result is the rounding with the least output error on the calibration patches,
// never worse than round-to-nearest by this measure. Depthwise layers are where this pays: a
// 3x3 channel has 9 weights, so one rounding step of one weight is a large share of its output.
//
// It runs on the QDQ model quantize-int8 wrote (as bias correction does): the int8 weights of
// each depthwise Conv's DequantizeLinear are replaced, the scales are kept. H is measured once
// on the float model's input of the layer (zero padding included), over the first calibration
// samples.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/quant/calibration.h"

namespace whittle::tune {

/// A depthwise Conv (2-D, one input channel per group) with int8 weights from a
/// DequantizeLinear, and a float twin of the same name.
struct RoundingSite {
  std::string node;
  std::string floatInput;  ///< its input in the float model
  int64_t channels = 0;    ///< input channels (= groups)
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t padTop = 0, padLeft = 0, padBottom = 0, padRight = 0;
  std::string autoPad;  ///< "SAME_UPPER"/"SAME_LOWER": pads from the input size
  int64_t taps() const { return kh * kw; }
};

/// The depthwise Convs of `quantized` that can be rounded again.
std::vector<RoundingSite> roundingSites(const ir::Model& quantized, const ir::Model& floatModel);

/// Per input channel, the second moment of the layer's input patches: sum over every output
/// position of x x^T (K x K, zero padding included).
class PatchMomentCollector final : public quant::TensorCollector {
 public:
  PatchMomentCollector(const RoundingSite& site, int64_t maxSamples);
  Status collect(const std::string& name, const ir::Tensor& value, int64_t samples) override;
  /// E[x x^T] per channel, row-major K x K each, channel after channel.
  std::vector<double> moments() const;
  const RoundingSite& site() const { return site_; }

 private:
  RoundingSite site_;
  int64_t maxSamples_;
  int64_t samples_ = 0;
  int64_t positions_ = 0;
  std::vector<double> sum_;  ///< channels * K * K
};

struct PatchMoments {
  RoundingSite site;
  std::vector<double> moments;  ///< channels * K * K
};

/// Runs the float model over the provider's calibration data once and measures every site
/// (the first `maxSamples` samples count).
Expected<std::map<std::string, PatchMoments>> measurePatchMoments(const ir::Model& floatModel,
                                                                  const std::vector<RoundingSite>& sites,
                                                                  quant::CalibrationProvider& provider,
                                                                  int64_t maxSamples = 32);

/// The rounding of one channel: float weights w (K), per-channel scale, integer range, and the
/// K x K moment H. Returns the integers with the least (s q - w)^T H (s q - w) among floor/ceil
/// choices (exhaustive for up to 16 free choices, else coordinate descent from nearest).
std::vector<int32_t> roundChannel(const float* w, int64_t k, float scale, int32_t lo, int32_t hi, const double* h);

struct RoundingStats {
  int64_t layers = 0;
  int64_t channels = 0;
  int64_t weightsChanged = 0;  ///< integers that differ from round-to-nearest
  double errorBefore = 0;      ///< sum over channels of the output mean-square error, nearest
  double errorAfter = 0;       ///< the same, after
};

/// Replaces the int8 weights of every site of `quantized` named in `moments` by the adaptive
/// rounding of the float twin's weights under the DequantizeLinear's own scales.
Expected<RoundingStats> roundWeights(ir::Model& quantized, const ir::Model& floatModel,
                                     const std::map<std::string, PatchMoments>& moments);

}  // namespace whittle::tune
