// AWQ scale search (include/whittle/quant/awq.h).
#include "whittle/quant/awq.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

namespace whittle::quant {

AwqResult searchAwqScales(const std::vector<std::span<const float>>& weights, const std::vector<int64_t>& rows, int64_t k,
                          std::span<const double> xtx, std::span<const float> meanAbs, const BlockConfig& config, int grid,
                          int64_t maxRows) {
  Eigen::Map<const Eigen::MatrixXd> H(xtx.data(), k, k);
  // The rows that enter the search.
  std::vector<std::vector<float>> sub;
  for (size_t i = 0; i < weights.size(); ++i) {
    const int64_t n = rows[i];
    const int64_t stride = std::max<int64_t>(1, n / std::max<int64_t>(1, maxRows));
    std::vector<float> w;
    for (int64_t r = 0; r < n; r += stride) {
      w.insert(w.end(), weights[i].begin() + r * k, weights[i].begin() + (r + 1) * k);
    }
    sub.push_back(std::move(w));
  }
  BlockConfig plain = config;
  plain.clipSearch = false;
  auto errorFor = [&](const std::vector<float>& s) {
    double total = 0;
    for (const std::vector<float>& w : sub) {
      const int64_t n = static_cast<int64_t>(w.size()) / k;
      std::vector<float> scaled(w.size());
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t c = 0; c < k; ++c) scaled[static_cast<size_t>(r * k + c)] = w[static_cast<size_t>(r * k + c)] * s[static_cast<size_t>(c)];
      }
      BlockQuantized q = quantizeRtn(scaled, n, k, plain);
      Eigen::MatrixXd D(k, n);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t c = 0; c < k; ++c) {
          D(c, r) = static_cast<double>(w[static_cast<size_t>(r * k + c)]) -
                    static_cast<double>(q.dequantized(r, c)) / static_cast<double>(s[static_cast<size_t>(c)]);
        }
      }
      total += (H * D).cwiseProduct(D).sum();
    }
    return total;
  };
  AwqResult result;
  result.scales.assign(static_cast<size_t>(k), 1.0f);
  result.errorBefore = errorFor(result.scales);
  result.errorAfter = result.errorBefore;
  for (int g = 1; g < grid; ++g) {
    const double alpha = static_cast<double>(g) / static_cast<double>(grid);
    std::vector<float> s(static_cast<size_t>(k));
    float lo = 0, hi = 0;
    for (int64_t c = 0; c < k; ++c) {
      const float v = static_cast<float>(std::pow(std::max(static_cast<double>(meanAbs[static_cast<size_t>(c)]), 1e-4), alpha));
      s[static_cast<size_t>(c)] = v;
      lo = c == 0 ? v : std::min(lo, v);
      hi = c == 0 ? v : std::max(hi, v);
    }
    const float norm = std::sqrt(lo * hi);
    for (float& v : s) v = std::clamp(v / norm, 1e-4f, 1e4f);
    const double e = errorFor(s);
    if (e < result.errorAfter) {
      result.errorAfter = e;
      result.alpha = alpha;
      result.scales = std::move(s);
    }
  }
  return result;
}

}  // namespace whittle::quant
