#pragma once
// Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019) for depthwise ->
// pointwise pairs, as MobileNet-style blocks have them:
//     y = Conv_pw(act(Conv_dw(x)))     act: none, Relu, or Clip(0, c) (ReLU6)
// Channel i of the depthwise output is scaled by 1/s_i and the pointwise weights that read it by
// s_i, with s_i = sqrt(r_dw,i / r_pw,i) (r: the largest |weight| of the channel on each side), so
// that both sides of every channel have the same weight range. Relu commutes with a positive
// scale; Clip(0, c) does so only where the channel stays below the clip: a channel whose
// calibrated depthwise output exceeds c keeps s_i = 1, and the others take s_i >= max_i / c so
// that the scaled channel cannot reach the clip on the calibration data. The model computes the
// same function (on the calibration data, float rounding aside); per-tensor activation ranges
// of the depthwise outputs become even across channels, which is what int8 activations gain.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/quant/calibration.h"

namespace whittle::tune {

/// A depthwise Conv, its activation (Relu, Clip(0, c) or none) and the 1x1 Conv reading it.
struct EqualizePair {
  std::string depthwise, pointwise;
  std::string activation;  ///< "", "Relu" or "Clip"
  double clipMax = 0;      ///< Clip's upper bound
  std::string depthwiseOutput;  ///< the depthwise Conv's output (before the activation)
  /// The tensors whose ranges change (the depthwise output and the activation's).
  std::vector<std::string> rescaled;
};

/// Every such pair whose intermediate values nothing else reads and whose weights are constants
/// used there alone.
std::vector<EqualizePair> equalizePairs(const ir::Model& model);

struct EqualizeStats {
  int64_t pairs = 0;
  int64_t channelsScaled = 0;
  int64_t channelsPinned = 0;  ///< Clip channels that reach the clip on the calibration data: left alone
  std::vector<std::string> rescaled;  ///< tensors whose ranges changed
};

/// Equalizes every pair of `model`; `provider` measures the per-channel maximum of the
/// depthwise outputs before a Clip (one calibration run; none when no pair has a Clip).
Expected<EqualizeStats> equalize(ir::Model& model, quant::CalibrationProvider* provider);

}  // namespace whittle::tune
