// GPTQ with Eigen (include/whittle/quant/gptq.h).
#include "whittle/quant/gptq.h"

#include <Eigen/Dense>
#include <algorithm>
#include <numeric>

namespace whittle::quant {

namespace {
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}  // namespace

Expected<GptqFactor> factorGptq(std::span<const double> xtx, int64_t k, const GptqOptions& options) {
  if (static_cast<int64_t>(xtx.size()) != k * k) {
    return invalidInput("gptq: the Hessian has " + std::to_string(xtx.size()) + " values, expected " + std::to_string(k * k));
  }
  GptqFactor f;
  f.k = k;
  f.dead.assign(static_cast<size_t>(k), 0);
  std::vector<double> diag(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    diag[static_cast<size_t>(i)] = xtx[static_cast<size_t>(i * k + i)];
    if (diag[static_cast<size_t>(i)] == 0) {  // dead channel: H_kk = 1, its weights zeroed
      diag[static_cast<size_t>(i)] = 1;
      f.dead[static_cast<size_t>(i)] = 1;
    }
  }
  f.perm.resize(static_cast<size_t>(k));
  std::iota(f.perm.begin(), f.perm.end(), 0);
  if (options.actOrder) {
    std::stable_sort(f.perm.begin(), f.perm.end(),
                     [&](int64_t a, int64_t b) { return diag[static_cast<size_t>(a)] > diag[static_cast<size_t>(b)]; });
  }
  // A = J P H P^T J (visiting order, reversed): A(i, j) = H(perm[k-1-i], perm[k-1-j]).
  Eigen::MatrixXd A(k, k);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t pj = f.perm[static_cast<size_t>(k - 1 - j)];
    for (int64_t i = 0; i < k; ++i) {
      const int64_t pi = f.perm[static_cast<size_t>(k - 1 - i)];
      A(i, j) = pi == pj ? diag[static_cast<size_t>(pi)] : xtx[static_cast<size_t>(pi * k + pj)];
    }
  }
  const double meanDiag = std::accumulate(diag.begin(), diag.end(), 0.0) / static_cast<double>(std::max<int64_t>(1, k));
  double damp = options.dampPercent * meanDiag;
  for (int attempt = 0;; ++attempt) {
    Eigen::MatrixXd Ad = A;
    Ad.diagonal().array() += damp;
    Eigen::LLT<Eigen::MatrixXd> llt(Ad);
    if (llt.info() == Eigen::Success) {
      Eigen::MatrixXd Linv = Eigen::MatrixXd::Identity(k, k);
      llt.matrixL().solveInPlace(Linv);
      // U = J L^-1 J: U(i, j) = L^-1(k-1-i, k-1-j), upper triangular.
      f.u.assign(static_cast<size_t>(k * k), 0.0f);
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = i; j < k; ++j) f.u[static_cast<size_t>(i * k + j)] = static_cast<float>(Linv(k - 1 - i, k - 1 - j));
      }
      return f;
    }
    if (attempt >= 4) return invalidInput("gptq: the Hessian is not positive definite even with dampening " + std::to_string(damp));
    damp = std::max(damp * 10, 1e-8);
  }
}

Expected<BlockQuantized> quantizeGptq(std::span<const float> w, int64_t rows, int64_t k, std::span<const double> xtx,
                                      const BlockConfig& config, const GptqOptions& options) {
  WH_ASSIGN_OR_RETURN(GptqFactor factor, factorGptq(xtx, k, options));
  return quantizeGptq(w, rows, k, xtx, factor, config, options);
}

Expected<BlockQuantized> quantizeGptq(std::span<const float> w, int64_t rows, int64_t k, std::span<const double> xtx,
                                      const GptqFactor& factor, const BlockConfig& config, const GptqOptions& options) {
  if (static_cast<int64_t>(xtx.size()) != k * k || factor.k != k) {
    return invalidInput("gptq: the Hessian has " + std::to_string(xtx.size()) + " values and its factor " +
                        std::to_string(factor.k) + " channels, expected " + std::to_string(k));
  }
  std::vector<float> importance(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) importance[static_cast<size_t>(i)] = static_cast<float>(xtx[static_cast<size_t>(i * k + i)]);
  // 1. Static block parameters from the float weight.
  BlockQuantized q = quantizeRtn(w, rows, k, config, importance);
  // 2. Working copy W^T in the visiting order: K x N, row i = input channel perm[i]
  // (contiguous over outputs); dead channels zeroed.
  const std::vector<int64_t>& perm = factor.perm;
  RowMajorF W(k, rows);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t c = perm[static_cast<size_t>(i)];
    if (factor.dead[static_cast<size_t>(c)]) {
      W.row(i).setZero();
      continue;
    }
    for (int64_t n = 0; n < rows; ++n) W(i, n) = w[static_cast<size_t>(n * k + c)];
  }
  Eigen::Map<const RowMajorF> U(factor.u.data(), k, k);
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
