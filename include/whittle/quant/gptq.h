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

#include <cstdint>
#include <span>

#include "whittle/common/status.h"
#include "whittle/quant/blockwise.h"

namespace whittle::quant {

struct GptqOptions {
  double dampPercent = 0.01;  ///< of the mean of diag H
  bool actOrder = true;
  int64_t blockSize = 128;    ///< channels per lazy batch update
};

/// Quantizes `w` ([N, K] row-major) with the second moment `xtx` of its inputs (K x K,
/// row-major, symmetric). An error when H stays singular after raising the dampening.
Expected<BlockQuantized> quantizeGptq(std::span<const float> w, int64_t rows, int64_t k, std::span<const double> xtx,
                                      const BlockConfig& config, const GptqOptions& options);

/// The layer output error sum over rows n of d_n^T H d_n, d_n = w_n - dequantized q_n, relative
/// to sum w_n^T H w_n: E||x W - x W_q||^2 / E||x W||^2 over the calibration inputs.
double relativeOutputError(std::span<const float> w, const BlockQuantized& q, std::span<const double> xtx);

}  // namespace whittle::quant
