// SmoothQuant's per-layer migration strength (include/whittle/quant/smoothquant.h).
#include "whittle/quant/smoothquant.h"

#include <algorithm>
#include <cmath>

namespace whittle::quant {

double smoothedW8A8Error(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows, int64_t k,
                         const ChannelStats& x, std::span<const float> s, bool perChannelWeights) {
  double hi = 0, lo = 0;  // the smoothed tensor's range (zero included)
  std::vector<double> energy(static_cast<size_t>(k));  // E[(x_j / s_j)^2]
  for (int64_t j = 0; j < k; ++j) {
    const size_t c = static_cast<size_t>(j);
    const double sj = s[c];
    hi = std::max(hi, static_cast<double>(x.hi[c]) / sj);
    lo = std::min(lo, static_cast<double>(x.lo[c]) / sj);
    energy[c] = x.meanSquare[c] / (sj * sj);
  }
  // Round-off of a value is uniform over one step, but never more than the value itself (a
  // value below half a step rounds to zero): per element, min(step^2 / 12, value^2).
  const double actStep = (hi - lo) / 255, actVar = actStep * actStep / 12;
  std::vector<double> columnEnergy(static_cast<size_t>(k), 0.0);  // sum_n (W_nj s_j)^2
  double weightError = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const float* w = weights[i].data();
    std::vector<double> rowMax(static_cast<size_t>(rows[i]), 0.0);
    double tensorMax = 0;
    for (int64_t n = 0; n < rows[i]; ++n) {
      for (int64_t j = 0; j < k; ++j) {
        rowMax[static_cast<size_t>(n)] = std::max(rowMax[static_cast<size_t>(n)], std::fabs(static_cast<double>(w[n * k + j]) * s[static_cast<size_t>(j)]));
      }
      tensorMax = std::max(tensorMax, rowMax[static_cast<size_t>(n)]);
    }
    for (int64_t n = 0; n < rows[i]; ++n) {
      const double step = (perChannelWeights ? rowMax[static_cast<size_t>(n)] : tensorMax) / 127, var = step * step / 12;
      for (int64_t j = 0; j < k; ++j) {
        const size_t c = static_cast<size_t>(j);
        const double v = static_cast<double>(w[n * k + j]) * s[c], v2 = v * v;
        columnEnergy[c] += v2;
        weightError += std::min(var, v2) * energy[c];
      }
    }
  }
  double actError = 0;
  for (size_t c = 0; c < energy.size(); ++c) actError += std::min(actVar, energy[c]) * columnEnergy[c];
  return actError + weightError;
}

SmoothResult searchSmoothScales(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows,
                                int64_t k, const ChannelStats& x, const SmoothOptions& options) {
  constexpr float kFloor = 1e-5f;
  // max |W_j| over every weight that reads channel j.
  std::vector<float> wMax(static_cast<size_t>(k), 0.0f);
  for (size_t i = 0; i < weights.size(); ++i) {
    for (int64_t n = 0; n < rows[i]; ++n) {
      for (int64_t j = 0; j < k; ++j) {
        wMax[static_cast<size_t>(j)] = std::max(wMax[static_cast<size_t>(j)], std::fabs(weights[i][static_cast<size_t>(n * k + j)]));
      }
    }
  }
  auto scalesFor = [&](double alpha) {
    std::vector<float> s(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) {
      const size_t c = static_cast<size_t>(j);
      const double a = std::max({std::fabs(x.lo[c]), std::fabs(x.hi[c]), kFloor}), w = std::max(wMax[c], kFloor);
      s[c] = static_cast<float>(std::clamp(std::pow(a, alpha) / std::pow(w, 1 - alpha), 1e-4, 1e4));
    }
    return s;
  };
  SmoothResult result;
  result.scales.assign(static_cast<size_t>(k), 1.0f);
  result.errorBefore = smoothedW8A8Error(weights, rows, k, x, result.scales, options.perChannelWeights);
  result.errorAfter = result.errorBefore;
  std::vector<double> candidates;
  if (options.alpha >= 0) {
    candidates.push_back(options.alpha);
  } else {
    const int grid = std::max(1, options.grid);
    for (int g = 0; g <= grid; ++g) candidates.push_back(static_cast<double>(g) / grid);
  }
  for (double alpha : candidates) {
    std::vector<float> s = scalesFor(alpha);
    const double e = smoothedW8A8Error(weights, rows, k, x, s, options.perChannelWeights);
    // A fixed alpha is applied as asked; a searched one only where it beats s = 1 by more than
    // rounding (a uniform s_j = c models the same error as s = 1).
    if (options.alpha >= 0 || e < result.errorAfter * (1 - 1e-9)) {
      result.errorAfter = e;
      result.alpha = alpha;
      result.scales = std::move(s);
    }
  }
  return result;
}

}  // namespace whittle::quant
