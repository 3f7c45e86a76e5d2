// GPTQ with Eigen (include/whittle/quant/gptq.h).
#include "whittle/quant/gptq.h"

#include <Eigen/Dense>
#include <algorithm>
#include <numeric>

namespace whittle::quant {

namespace {
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}  // namespace

Expected<BlockQuantized> quantizeGptq(std::span<const float> w, int64_t rows, int64_t k, std::span<const double> xtx,
                                      const BlockConfig& config, const GptqOptions& options) {
  if (static_cast<int64_t>(xtx.size()) != k * k) {
    return invalidInput("gptq: the Hessian has " + std::to_string(xtx.size()) + " values, expected " + std::to_string(k * k));
  }
  Eigen::MatrixXd H = Eigen::Map<const Eigen::MatrixXd>(xtx.data(), k, k);
  std::vector<float> importance(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) importance[static_cast<size_t>(i)] = static_cast<float>(H(i, i));
  // 1. Static block parameters from the float weight.
  BlockQuantized q = quantizeRtn(w, rows, k, config, importance);
  // Working copy W^T: K x N, row k = input channel k (contiguous over outputs).
  RowMajorF W(k, rows);
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t i = 0; i < k; ++i) W(i, n) = w[static_cast<size_t>(n * k + i)];
  }
  // 2. Dead channels, order, dampening.
  for (int64_t i = 0; i < k; ++i) {
    if (H(i, i) == 0) {
      H(i, i) = 1;
      W.row(i).setZero();
    }
  }
  std::vector<int64_t> perm(static_cast<size_t>(k));
  std::iota(perm.begin(), perm.end(), 0);
  if (options.actOrder) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return H(a, a) > H(b, b); });
    Eigen::MatrixXd P(k, k);
    RowMajorF WP(k, rows);
    for (int64_t i = 0; i < k; ++i) {
      WP.row(i) = W.row(perm[static_cast<size_t>(i)]);
      for (int64_t j = 0; j < k; ++j) P(i, j) = H(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
    }
    H = std::move(P);
    W = std::move(WP);
  }
  const double meanDiag = H.diagonal().mean();
  double damp = options.dampPercent * meanDiag;
  Eigen::MatrixXf U;
  for (int attempt = 0;; ++attempt) {
    Eigen::MatrixXd Hd = H;
    Hd.diagonal().array() += damp;
    Eigen::LLT<Eigen::MatrixXd> llt(Hd);
    if (llt.info() == Eigen::Success) {
      Eigen::MatrixXd Hinv = llt.solve(Eigen::MatrixXd::Identity(k, k));
      Hinv = 0.5 * (Hinv + Hinv.transpose());
      Eigen::LLT<Eigen::MatrixXd> inv(Hinv);
      if (inv.info() == Eigen::Success) {
        U = inv.matrixU().toDenseMatrix().cast<float>();
        break;
      }
    }
    if (attempt >= 4) return invalidInput("gptq: the Hessian is not positive definite even with dampening " + std::to_string(damp));
    damp = std::max(damp * 10, 1e-8);
  }
  // 3. Channel by channel, lazily in blocks.
  const int64_t step = std::max<int64_t>(1, options.blockSize);
  for (int64_t i1 = 0; i1 < k; i1 += step) {
    const int64_t i2 = std::min(k, i1 + step), count = i2 - i1;
    RowMajorF Err(count, rows);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = i1 + i;
      const int64_t channel = perm[static_cast<size_t>(at)];
      const float d = U(at, at);
      const int64_t b = channel / q.block;
      for (int64_t n = 0; n < rows; ++n) {
        const size_t pb = static_cast<size_t>(n * q.blocks + b);
        const BlockParams p{q.scales[pb], q.zeroPoints[pb]};
        const float v = W(at, n);
        const uint8_t code = quantizeValue(v, p, q.bits);
        q.codes[static_cast<size_t>(n * k + channel)] = code;
        const float deq = (static_cast<float>(code) - static_cast<float>(p.zeroPoint)) * p.scale;
        Err(i, n) = (v - deq) / d;
      }
      if (i + 1 < count) {
        W.middleRows(at + 1, count - i - 1).noalias() -= U.row(at).segment(at + 1, count - i - 1).transpose() * Err.row(i);
      }
    }
    if (i2 < k) W.bottomRows(k - i2).noalias() -= U.block(i1, i2, count, k - i2).transpose() * Err;
  }
  return q;
}

double relativeOutputError(std::span<const float> w, const BlockQuantized& q, std::span<const double> xtx) {
  const int64_t k = q.k;
  Eigen::Map<const Eigen::MatrixXd> H(xtx.data(), k, k);
  Eigen::MatrixXd D(k, q.rows), Wm(k, q.rows);
  for (int64_t n = 0; n < q.rows; ++n) {
    for (int64_t i = 0; i < k; ++i) {
      const double v = w[static_cast<size_t>(n * k + i)];
      Wm(i, n) = v;
      D(i, n) = v - static_cast<double>(q.dequantized(n, i));
    }
  }
  const double err = (H * D).cwiseProduct(D).sum();
  const double ref = (H * Wm).cwiseProduct(Wm).sum();
  return ref > 0 ? err / ref : err;
}

}  // namespace whittle::quant
