// Streaming input statistics for weight quantization (include/whittle/quant/collectors.h).
// X^T X is accumulated with Eigen's symmetric rank update, one batch of rows at a time.
#include "whittle/quant/collectors.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

namespace whittle::quant {

InputStatsCollector::InputStatsCollector(int64_t channels, bool secondMoment)
    : channels_(channels), wantSecond_(secondMoment), absSum_(static_cast<size_t>(channels), 0.0),
      sqSum_(static_cast<size_t>(channels), 0.0),
      min_(static_cast<size_t>(channels), std::numeric_limits<float>::infinity()),
      max_(static_cast<size_t>(channels), -std::numeric_limits<float>::infinity()) {
  if (wantSecond_) xtx_.assign(static_cast<size_t>(channels * channels), 0.0f);
}

Status InputStatsCollector::collect(const std::string& name, const ir::Tensor& value, int64_t samples) {
  const auto& dims = value.dims();
  if (dims.empty() || dims.back() != channels_) {
    return invalidInput("calibration: tensor '" + name + "' has " + (dims.empty() ? std::string("no axes") : std::to_string(dims.back()) + " channels") +
                        ", expected " + std::to_string(channels_) + " on its last axis");
  }
  int64_t rows = value.numel() / std::max<int64_t>(1, channels_);
  // A padded last batch repeats its last sample: keep the real ones.
  if (dims.size() >= 2 && dims[0] > samples && samples > 0) rows = rows / dims[0] * samples;
  if (rows == 0) return Status::ok();
  const float* x = value.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < channels_; ++c) {
      const float v = x[r * channels_ + c], a = std::fabs(v);
      const size_t i = static_cast<size_t>(c);
      absSum_[i] += a;
      sqSum_[i] += static_cast<double>(v) * static_cast<double>(v);
      min_[i] = std::min(min_[i], v);
      max_[i] = std::max(max_[i], v);
    }
  }
  if (wantSecond_) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const RowMajor> X(x, rows, channels_);
    Eigen::Map<Eigen::MatrixXf> H(xtx_.data(), channels_, channels_);
    H.selfadjointView<Eigen::Lower>().rankUpdate(X.transpose());
  }
  rows_ += rows;
  return Status::ok();
}

std::vector<double> InputStatsCollector::secondMoment() const {
  if (!wantSecond_) return {};
  const int64_t k = channels_;
  std::vector<double> h(static_cast<size_t>(k * k));
  const double inv = rows_ > 0 ? 1.0 / static_cast<double>(rows_) : 0.0;
  // Column-major lower triangle: element (i, j), i >= j, at j * k + i.
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t i = j; i < k; ++i) {
      const double v = static_cast<double>(xtx_[static_cast<size_t>(j * k + i)]) * inv;
      h[static_cast<size_t>(i * k + j)] = v;
      h[static_cast<size_t>(j * k + i)] = v;
    }
  }
  return h;
}

std::vector<float> InputStatsCollector::meanAbs() const {
  std::vector<float> m(absSum_.size());
  for (size_t c = 0; c < m.size(); ++c) m[c] = rows_ > 0 ? static_cast<float>(absSum_[c] / static_cast<double>(rows_)) : 0.0f;
  return m;
}

std::vector<float> InputStatsCollector::maxAbs() const {
  std::vector<float> m(min_.size(), 0.0f);
  for (size_t c = 0; c < m.size(); ++c) m[c] = rows_ > 0 ? std::max(std::fabs(min_[c]), std::fabs(max_[c])) : 0.0f;
  return m;
}

std::vector<double> InputStatsCollector::meanSquare() const {
  std::vector<double> m(sqSum_.size());
  for (size_t c = 0; c < m.size(); ++c) m[c] = rows_ > 0 ? sqSum_[c] / static_cast<double>(rows_) : 0.0;
  return m;
}

}  // namespace whittle::quant
