// SmoothQuant's per-layer migration strength (include/whittle/quant/smoothquant.h).
#include "whittle/quant/smoothquant.h"

#include <algorithm>
#include <cmath>

namespace whittle::quant {

double smoothedW8A8Error(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows, int64_t k,
                         std::span<const float> maxAbs, std::span<const double> meanSquare, std::span<const float> s,
                         bool perChannelWeights) {
  double range = 0, inputEnergy = 0;  // M, and sum_j E[x_j^2] / s_j^2
  for (int64_t j = 0; j < k; ++j) {
    const double sj = s[static_cast<size_t>(j)];
    range = std::max(range, static_cast<double>(maxAbs[static_cast<size_t>(j)]) / sj);
    inputEnergy += meanSquare[static_cast<size_t>(j)] / (sj * sj);
  }
  const double actStep = range / 127.5;
  double actError = 0, weightError = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const float* w = weights[i].data();
    double tensorMax = 0, weightSteps = 0;  // per tensor: max over all; per channel: sum of step^2
    for (int64_t n = 0; n < rows[i]; ++n) {
      double rowMax = 0;
      for (int64_t j = 0; j < k; ++j) {
        const double v = static_cast<double>(w[n * k + j]) * s[static_cast<size_t>(j)];
        actError += v * v;
        rowMax = std::max(rowMax, std::fabs(v));
      }
      tensorMax = std::max(tensorMax, rowMax);
      weightSteps += (rowMax / 127) * (rowMax / 127);
    }
    if (!perChannelWeights) weightSteps = static_cast<double>(rows[i]) * (tensorMax / 127) * (tensorMax / 127);
    weightError += weightSteps / 12 * inputEnergy;
  }
  return actStep * actStep / 12 * actError + weightError;
}

SmoothResult searchSmoothScales(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows,
                                int64_t k, std::span<const float> maxAbs, std::span<const double> meanSquare,
                                const SmoothOptions& options) {
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
      const double a = std::max(maxAbs[static_cast<size_t>(j)], kFloor), w = std::max(wMax[static_cast<size_t>(j)], kFloor);
      s[static_cast<size_t>(j)] = static_cast<float>(std::clamp(std::pow(a, alpha) / std::pow(w, 1 - alpha), 1e-4, 1e4));
    }
    return s;
  };
  SmoothResult result;
  result.scales.assign(static_cast<size_t>(k), 1.0f);
  result.errorBefore = smoothedW8A8Error(weights, rows, k, maxAbs, meanSquare, result.scales, options.perChannelWeights);
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
    const double e = smoothedW8A8Error(weights, rows, k, maxAbs, meanSquare, s, options.perChannelWeights);
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
