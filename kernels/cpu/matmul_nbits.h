#pragma once
// Low-bit weight-only matrix products (com.microsoft MatMulNBits, and block-wise
// DequantizeLinear -> MatMul, which the lowering turns into MatMulNBits):
//
//   Y[m, n] = sum_k A[m, k] * W[k, n] + bias[n],   W[k, n] = (q[n, k] - z[n, b]) * s[n, b],  b = k / block
//
// The weights stay packed in memory (see PackedNBits). Three paths compute the same product:
// a scalar reference, AVX2 and AVX-512 (picked from what the CPU has). Up to kGemvMaxRows rows
// of A, each block of W is dequantized into registers and multiplied there (memory-bound GEMV:
// 4-bit weights are read once, at half a byte each); more rows dequantize W (all of it, up to
// kMaxPanelBytes) into a float buffer in oneDNN's own blocked weight layout (kPanelBlock below;
// AVX-512 transposes 16 columns x 16 k of packed bytes in registers), in parallel over blocks of
// columns, and multiply it with one oneDNN matmul primitive per shape that reads that layout as it
// is and runs on the session's threads.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/tensor.h"

namespace whittle::runtime {
class KernelRegistry;
}  // namespace whittle::runtime

namespace whittle::runtime::cpu {
/// com.microsoft GatherBlockQuantized (kernels/cpu/gather_block_quantized.cpp).
void registerGatherBlockQuantizedKernel(KernelRegistry& registry);
}  // namespace whittle::runtime::cpu

namespace whittle::runtime::cpu::nbits {

/// Rows of A up to which the register (GEMV) path runs; above, dequantized panels and a GEMM.
inline constexpr int64_t kGemvMaxRows = 4;

/// The weights of one MatMulNBits, packed for the kernels.
struct PackedNBits {
  int64_t k = 0, n = 0;
  int64_t bits = 4;        ///< 4 or 8.
  int64_t blockSize = 0;   ///< A power of two, at least 16.
  int blockShift = 0;      ///< log2(blockSize): block of k = k >> blockShift (no division in the loops).
  int64_t kPad = 0;        ///< K rounded up to whole blocks and to a multiple of 32.
  int64_t scaleBlocks = 0; ///< kPad / blockSize, rounded up: scale entries per column.
  /// q per column, kPad values each, column after column. 4 bits: groups of 32 k in 16 bytes,
  /// byte j holding k = j (low nibble) and k = j + 16 (high nibble), so that one 16-byte load
  /// gives two vectors of 16 consecutive k. 8 bits: one byte per k.
  std::vector<uint8_t> q;
  /// Per column and block: W = q * scale + offset (offset = -zero_point * scale). Padding
  /// blocks have scale 0 and offset 0; k from K to the end of the last block dequantize to
  /// -zero_point * scale, which the kernels multiply by zero (A's padding) or skip (the GEMM reads K).
  std::vector<float> scale, offset;

  int64_t columnBytes() const { return bits == 4 ? kPad / 2 : kPad; }
};

/// Instruction sets of the kernels.
enum class Isa { kScalar, kAvx2, kAvx512 };
/// The best one this CPU runs.
Isa bestIsa();
const char* isaName(Isa isa);

/// Packs MatMulNBits inputs: B uint8 [N, blocks, block * bits / 8] (any shape of that many
/// bytes), scales float [N * blocks], zero points optional: uint8 packed like B (bits per
/// block, low nibble first, each column starting on a byte) or float [N * blocks]; absent
/// means 2^(bits-1). `who` names the node in messages.
Expected<PackedNBits> packMatMulNBits(const ir::Tensor& b, const ir::Tensor& scales, const ir::Tensor* zeroPoints,
                                      int64_t k, int64_t n, int64_t bits, int64_t blockSize, const std::string& who);

/// Columns per block of a dequantized panel: each block is k-major, [roundUp(K, 16)][64], the
/// blocks one after another (oneDNN's BA16a64b weight layout); k from K and columns from N are 0.
inline constexpr int64_t kPanelBlock = 64;

/// Bytes of float weights one dequantized panel may take: a weight whose float copy is larger is
/// dequantized and multiplied in panels of as many whole blocks of kPanelBlock columns as fit.
inline constexpr int64_t kMaxPanelBytes = int64_t{16} << 20;

/// y[m, cols] (row stride ldy) = a[m, K] * b[K, cols], b a dequantized panel in blocks of
/// kPanelBlock columns (above).
using PanelGemm = std::function<Status(int64_t m, int64_t cols, const float* a, const float* b, float* y, int64_t ldy)>;

/// y[M, N] = a[M, K] * W + bias (bias may be null), with `isa`'s kernels and up to `threads`
/// threads. `scratch` is reused between calls (above kGemvMaxRows rows it holds the dequantized
/// panel: K x N floats, up to kMaxPanelBytes). `gemm` multiplies the dequantized panels above
/// kGemvMaxRows rows (the kernel passes oneDNN's matmul primitive); empty: dnnl_sgemm.
Status matmul(const PackedNBits& w, const float* a, int64_t m, const float* bias, float* y, int threads, Isa isa,
              std::vector<float>& scratch, const PanelGemm& gemm = {});

/// Runs fn(n0, n1) over [0, n) in `threads` contiguous ranges whose starts are multiples of `align`.
template <typename F>
void parallelColumns(int64_t n, int threads, int64_t align, F&& fn) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads, n / std::max<int64_t>(align, 1)));
  if (chunks <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  auto bound = [&](int64_t c) { return c == chunks ? n : n * c / chunks / align * align; };
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = bound(c), e = bound(c + 1);
    if (e > b) fn(b, e);
  }
}

// ---- accuracy_level 4: int8 activations (matmul_nbits_int8.cpp) ----
//
// ONNX Runtime's meaning of accuracy_level 4 (MLAS's "CompInt8"): each row of A is quantized per
// block of K (the weight's block): symmetric int8, scale sa = max|a| / 127, q = round-half-even(a *
// (127 / max|a|)). Then, per output, with the weight W = s * q_w + o (o = -zero_point * s):
//
//   y = sum_b sa[b] * s[b] * dot(q_a, q_w)[b]  +  sum_b o[b] * (sa[b] * sum(q_a)[b])
//
// dot() is an integer dot product: AVX-512 VNNI vpdpbusd multiplies unsigned bytes by signed bytes,
// and the weights' codes are unsigned (0..15, 0..255) with the zero point kept out of the product
// (the second sum), so the weights go in as the unsigned operand and A's int8 as the signed one:
// no +128 offset and no sign correction is needed.

/// The weights of one MatMulNBits repacked for int8 dot products: N in panels of 16 columns, each
/// panel K-major in octets of 8 k: 4 bits: 64 bytes per octet, byte 4c + j holding k = j (low
/// nibble) and k = j + 4 (high nibble) of column c (one mask gives vpdpbusd's 16 x 4 bytes for
/// k 0..3, a shift and a mask those for k 4..7); 8 bits: 128 bytes per octet, k 0..3 then 4..7.
struct PackedNBitsI8 {
  int64_t k = 0, n = 0, bits = 4, blockSize = 0;
  int64_t blocks = 0;  ///< ceil(K / blockSize).
  int64_t kq = 0;      ///< blocks * blockSize: the k each quantized row of A holds.
  int64_t octets = 0;  ///< ceil(K / 8): the octets of k each panel holds (the last block may stop short).
  int64_t panels = 0;  ///< ceil(N / 16).
  std::vector<uint8_t> q;
  /// [panels][blocks][16]: scale and offset of each column of a panel (0 past N).
  std::vector<float> scale, offset;

  int64_t octetBytes() const { return bits == 4 ? 64 : 128; }
  int64_t panelBytes() const { return octets * octetBytes(); }
};

/// Repacks column-layout weights (packMatMulNBits) for the int8 kernels.
PackedNBitsI8 packInt8(const PackedNBits& w);

/// Rows of A quantized per block: q [m][kq] (zeros past K), scale and scaled sum [m][blocks].
struct QuantizedRows {
  std::vector<int8_t> q;
  std::vector<float> scale, sum;  ///< sa, and sa * sum(q) (the zero points' term)
};

/// Quantizes a [m, k] per block of `blockSize` into `out` (AVX-512 when `vector`; the same bits either way).
void quantizeRows(const float* a, int64_t m, int64_t k, int64_t blockSize, int64_t kq, bool vector, QuantizedRows& out);

/// Whether this CPU runs the VNNI kernel (AVX-512 F, BW, VL and VNNI).
bool int8VnniAvailable();

/// y[M, N] = a[M, K] * W + bias with int8 activations: the VNNI kernel when `vnni`, else the
/// scalar reference. `scratch` holds the quantized rows between calls.
Status matmulInt8(const PackedNBitsI8& w, const float* a, int64_t m, const float* bias, float* y, int threads, bool vnni,
                  QuantizedRows& scratch);

/// Dequantizes columns [n0, n1) into dst, column after column, kPad floats each (W transposed).
void dequantizeColumns(const PackedNBits& w, int64_t n0, int64_t n1, float* dst, Isa isa);
/// Dequantizes columns [n0, n1) k-major: dst[k * ld + (c - n0)] for k < rows (a multiple of
/// 16, at most kPad; W as the MatMul reads it). AVX-512 transposes 16 columns at a time in registers; `column` is scratch.
void dequantizeKMajor(const PackedNBits& w, int64_t n0, int64_t n1, float* dst, int64_t ld, int64_t rows, Isa isa,
                      std::vector<float>& column);
/// Dequantizes columns [n0, n1) as one panel of the GEMM path (kPanelBlock above).
void dequantizePanel(const PackedNBits& w, int64_t n0, int64_t n1, float* dst, Isa isa, std::vector<float>& column);

}  // namespace whittle::runtime::cpu::nbits
