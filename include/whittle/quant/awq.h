#pragma once
// AWQ (Lin et al. 2023), activation-aware weight quantization: the weights of the input
// channels that carry large activations matter most, so scale them up before quantizing and
// the input down by the same factor:  x W = (x / s) (diag(s) W).
// s_k = mean|x_k|^alpha, normalized by sqrt(max s * min s); alpha is searched over a grid of
// `grid` values in [0, 1) for the one that minimizes the output error of every weight that
// shares the input, E||x W - (x / s) Q(diag(s) W)||^2 = sum_n d_n^T H d_n with
// d = W - diag(1/s) Q(diag(s) W) and H = E[x^T x], computed from the collected second moment
// (no activations are stored). The quantization inside the search is RTN without the clipping
// search; the caller quantizes the scaled weight afterwards (RTN with clipping, importance
// diag(H) / s^2).

#include <cstdint>
#include <span>
#include <vector>

#include "whittle/quant/blockwise.h"

namespace whittle::quant {

struct AwqResult {
  std::vector<float> scales;  ///< s, K values (all 1 when no alpha > 0 beats alpha = 0)
  double alpha = 0;
  double errorBefore = 0;     ///< summed output error at alpha = 0
  double errorAfter = 0;      ///< at the chosen alpha
};

/// `weights`: the [N_i, K] row-major weights that share one input, with `rows[i]` = N_i.
/// `xtx`: E[x^T x] (K x K), `meanAbs`: E|x_k|. Up to `maxRows` rows of each weight (evenly
/// strided) enter the search, to bound its cost.
AwqResult searchAwqScales(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows, int64_t k,
                          std::span<const double> xtx, std::span<const float> meanAbs, const BlockConfig& config,
                          int grid = 20, int64_t maxRows = 128);

}  // namespace whittle::quant
