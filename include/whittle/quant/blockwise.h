#pragma once
// Block-wise weight quantization (weight-only int4/int8): the numerical core of the
// quantize-weights pass and of the GPTQ and AWQ methods beside it (gptq.h, awq.h).
//
// A weight is seen as N rows of K values, the reduction axis K contiguous (a MatMul weight
// [K, N] transposed, a Gemm transB weight or an embedding table [V, H] as they are). Each row
// is cut into blocks of `block` values along K (the last one short when block does not
// divide K); a block has one scale s and one zero point z, and its values are stored as codes
//   q = clamp(round(w / s) + z, 0, 2^bits - 1),   w ~= (q - z) * s.
// Symmetric blocks have z = 2^(bits-1) (8 for 4 bits, 128 for 8 bits: ONNX Runtime's
// MatMulNBits default) and q - z in [-2^(bits-1), 2^(bits-1) - 1], so the same codes, shifted,
// are the int4/int8 values of a DequantizeLinear with no zero point.
//
// Round to nearest (RTN) chooses each block's (s, z) with an optional clipping search: the
// range is shrunk by factors 1.0, 0.95, ..., 0.5 (symmetric: also the "-8" trick that maps the
// largest-magnitude value onto -2^(bits-1)) and the candidate with the smallest
// reconstruction error sum_k h_k (w_k - (q_k - z) s)^2 wins, where h_k is the importance of
// input channel k (the diagonal of the calibration Hessian X^T X, or 1 without calibration):
// the expected output error of that block when the inputs are uncorrelated.

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/tensor.h"

namespace whittle::quant {

/// How a weight is cut and coded.
struct BlockConfig {
  int bits = 4;          ///< 4 or 8
  int64_t block = 128;   ///< values per block along K (0: one block per row, 8 bits only)
  bool symmetric = true;
  bool clipSearch = true;  ///< search a clipping of each block's range (RTN and the GPTQ/AWQ scales)
};

/// Checks bits/block: bits 4 or 8; block a power of two >= 16, or 0 (per row) with 8 bits.
Status checkBlockConfig(const BlockConfig& config);

/// A weight of N rows x K values in blocks, as codes, scales and zero points.
struct BlockQuantized {
  int64_t rows = 0;    ///< N
  int64_t k = 0;       ///< K, the values per row
  int64_t block = 0;   ///< values per block (K when the config said 0)
  int64_t blocks = 0;  ///< ceil(K / block) per row
  int bits = 4;
  bool symmetric = true;
  std::vector<uint8_t> codes;        ///< [N, K] unsigned codes in [0, 2^bits - 1]
  std::vector<float> scales;         ///< [N, blocks]
  std::vector<uint8_t> zeroPoints;   ///< [N, blocks]
  /// Value (row n, column k) of the dequantized weight.
  float dequantized(int64_t n, int64_t kk) const {
    const size_t b = static_cast<size_t>(n * blocks + kk / block);
    return (static_cast<float>(codes[static_cast<size_t>(n * k + kk)]) - static_cast<float>(zeroPoints[b])) * scales[b];
  }
  /// The dequantized weight, [N, K].
  std::vector<float> dequantize() const;
};

/// Scale and zero point of one block.
struct BlockParams {
  float scale = 1;
  int zeroPoint = 0;
};

/// Chooses (s, z) for the values `w` (one block), with the clipping search when asked;
/// `importance` (same length, may be empty) weighs the error of each value.
BlockParams chooseBlockParams(std::span<const float> w, std::span<const float> importance, int bits, bool symmetric,
                              bool clipSearch);

/// The code of w under (s, z).
inline uint8_t quantizeValue(float w, const BlockParams& p, int bits) {
  const int qmax = (1 << bits) - 1;
  float q = std::nearbyint(w / p.scale) + static_cast<float>(p.zeroPoint);
  q = q < 0 ? 0.0f : (q > static_cast<float>(qmax) ? static_cast<float>(qmax) : q);
  return static_cast<uint8_t>(q);
}

/// An empty BlockQuantized of N x K under `config` (codes, scales and zero points sized).
BlockQuantized makeBlockQuantized(int64_t rows, int64_t k, const BlockConfig& config);

/// Round to nearest: `w` is [N, K] row-major; `importance` is K values or empty.
BlockQuantized quantizeRtn(std::span<const float> w, int64_t rows, int64_t k, const BlockConfig& config,
                           std::span<const float> importance = {});

/// ONNX Runtime MatMulNBits' B: uint8 [N, blocks, block * bits / 8], the last block padded
/// with the zero point; 4-bit codes two to a byte, the even k in the low nibble.
ir::Tensor packMatMulNBitsWeight(const BlockQuantized& q);
/// MatMulNBits' zero points: uint8 [N, ceil(blocks * bits / 8)] (4 bits: the even block in
/// the low nibble).
ir::Tensor packMatMulNBitsZeroPoints(const BlockQuantized& q);

/// For DequantizeLinear (opset 21, block_size along one axis): the values as int4/int8
/// (symmetric, no zero point) or uint4/uint8 with `zeroPoints`; `transposed` lays them out
/// [K, N] (a MatMul weight, blocks along axis 0) instead of [N, K] (blocks along axis 1).
struct QdqTensors {
  ir::Tensor values;
  ir::Tensor scales;
  std::optional<ir::Tensor> zeroPoints;
};
QdqTensors toQdqTensors(const BlockQuantized& q, bool transposed);

/// sum over rows and k of h_k (w - w_q)^2 / sum h_k w^2: the weight error weighed by `importance`
/// (all ones when empty), relative to the weight.
double relativeWeightError(std::span<const float> w, const BlockQuantized& q, std::span<const float> importance = {});

}  // namespace whittle::quant
