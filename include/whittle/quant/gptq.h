#pragma once
// GPTQ (Frantar et al. 2022): block-wise quantization that compensates each quantized input
// channel's error on the channels not yet quantized, using the layer Hessian H = 2 X^T X of
// the calibration inputs, so that the layer output X W moves as little as possible.
//
// For a weight of N rows x K (K the reduction axis), with H K x K:
//   1. block scales and zero points are chosen first from the float weight (RTN with the
//      clipping search weighed by diag H): "static groups", so that act-order keeps the
//      contiguous blocks that DequantizeLinear and MatMulNBits store;
//   2. dead channels (H_kk = 0) get H_kk = 1 and zero weights; with act-order, channels are
//      visited in decreasing H_kk; H += damp * mean(diag H) * I;
//   3. U = the upper Cholesky factor of H^-1; for each channel k in order (lazily, `blockSize`
//      channels at a time): q_k = quant(w_k), e = (w_k - q_k) / U_kk, and every later
//      channel j moves by -e * U_kj.
// Steps 2-3's factor depends on H alone, so weights that read one input (q/k/v, gate/up)
// share one GptqFactor. U comes without forming H^-1: with J the reversal permutation and
// J H J = L L^T, H = (J L J)(J L J)^T, so U = J L^-1 J (one Cholesky and one triangular
// inverse, half the flops of inverting H and factoring the inverse).

#include <cstdint>
#include <span>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/quant/blockwise.h"

namespace whittle::quant {

struct GptqOptions {
  double dampPercent = 0.01;  ///< of the mean of diag H
  bool actOrder = true;
  int64_t blockSize = 128;    ///< channels per lazy batch update
};

/// Steps 2-3's part that depends on H alone: the channel order, the dead channels and U.
struct GptqFactor {
  int64_t k = 0;
  std::vector<int64_t> perm;  ///< visiting order (identity without act-order)
  std::vector<char> dead;     ///< per original channel: H_kk == 0 (its weights are zeroed)
  std::vector<float> u;       ///< U, K x K row-major (upper triangle), in the visiting order
};

/// The factor of `xtx` (K x K, row-major, symmetric) under `options`. An error when H stays
/// singular after raising the dampening.
Expected<GptqFactor> factorGptq(std::span<const double> xtx, int64_t k, const GptqOptions& options);

/// Quantizes `w` ([N, K] row-major) with a factor of its inputs' second moment `xtx`
/// (whose diagonal also weighs the static blocks' clipping search).
Expected<BlockQuantized> quantizeGptq(std::span<const float> w, int64_t rows, int64_t k, std::span<const double> xtx,
                                      const GptqFactor& factor, const BlockConfig& config, const GptqOptions& options);

/// Quantizes `w` ([N, K] row-major) with the second moment `xtx` of its inputs (K x K,
/// row-major, symmetric). An error when H stays singular after raising the dampening.
Expected<BlockQuantized> quantizeGptq(std::span<const float> w, int64_t rows, int64_t k, std::span<const double> xtx,
                                      const BlockConfig& config, const GptqOptions& options);

/// The layer output error sum over rows n of d_n^T H d_n, d_n = w_n - dequantized q_n, relative
/// to sum w_n^T H w_n: E||x W - x W_q||^2 / E||x W||^2 over the calibration inputs.
double relativeOutputError(std::span<const float> w, const BlockQuantized& q, std::span<const double> xtx);

}  // namespace whittle::quant
