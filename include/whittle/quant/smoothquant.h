#pragma once
// SmoothQuant (Xiao et al. 2023): int8 activations of a transformer fail on a few input
// channels whose values are 10-100x the rest (one per-tensor step must cover them). Scaling
// each input channel down and the matching weight row up moves that difficulty into the
// weights, exactly:  x W = (x / s) (diag(s) W),  s_j = max|x_j|^alpha / max|W_j|^(1 - alpha).
//
// alpha (the migration strength) is chosen per layer input from the calibration statistics,
// by the output error that W8A8 quantization of the smoothed pair is expected to make per row
// of x (round-off modeled as uniform noise of variance step^2 / 12, but never more than the
// value's own energy: a value below half a step rounds to zero):
//   activations, per tensor:  sum_j min((R / 255)^2 / 12, E[x_j^2] / s_j^2) * s_j^2 * sum_n W_nj^2,
//                             R = max(0, max_j hi_j / s_j) - min(0, min_j lo_j / s_j)
//                             (uint8 asymmetric over the smoothed tensor's range, as quantize-dynamic
//                             and quantize-int8 quantize activations; lo_j, hi_j: channel j's min and max)
//   weights, per output n:    sum_n sum_j min((max_j |W_nj| s_j / 127)^2 / 12, (W_nj s_j)^2) * E[x_j^2] / s_j^2
// "no smoothing" (s = 1) is a candidate too, so a layer is only changed where the model says
// it gains.

#include <cstdint>
#include <span>
#include <vector>

namespace whittle::quant {

struct SmoothOptions {
  double alpha = -1;  ///< in [0, 1]: this alpha everywhere; < 0: searched per layer input
  int grid = 20;      ///< alpha candidates 0, 1/grid, ..., 1 when searching
  bool perChannelWeights = true;  ///< the weights are quantized per output channel (else per tensor)
};

struct SmoothResult {
  std::vector<float> scales;  ///< s, K values (all 1 when smoothing does not help)
  double alpha = -1;          ///< the chosen alpha; < 0: not smoothed
  double errorBefore = 0;     ///< modeled W8A8 output error without smoothing
  double errorAfter = 0;      ///< with s
};

/// Per-channel statistics of the input over the calibration data.
struct ChannelStats {
  std::span<const float> lo, hi;        ///< min x_j, max x_j
  std::span<const double> meanSquare;   ///< E[x_j^2]
};

/// `weights`: the [N_i, K] row-major weights that share one input with K channels.
SmoothResult searchSmoothScales(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows,
                                int64_t k, const ChannelStats& x, const SmoothOptions& options = {});

/// The modeled W8A8 output error (above) of the pair smoothed by `s`.
double smoothedW8A8Error(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows, int64_t k,
                         const ChannelStats& x, std::span<const float> s, bool perChannelWeights = true);

}  // namespace whittle::quant
