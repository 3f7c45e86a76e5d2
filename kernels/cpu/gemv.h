#pragma once
// Products of a few rows by a constant matrix, for the steps of the recurrent kernels (H_{t-1}
// R^T at batch 1), where a general GEMM call costs more than the arithmetic:
// - uint8 x int8 with exact int32 sums (DynamicQuantizeLSTM): the int8 matrix is packed once,
//   when the kernel is made, into the layout AVX-512 VNNI's vpdpbusd reads (16 columns x 4 rows
//   per 64 bytes), so that a step streams it once with no per-call packing;
// - float32 (LSTM, RNN, GRU with linear_before_reset): packed once in blocks of 64 columns, each
//   block's sums in AVX-512 registers over the whole k.
// Where the CPU lacks the instructions, the *Available() functions are false and callers keep
// their general path (oneDNN).

#include <cstdint>
#include <vector>

namespace whittle::runtime::cpu {

/// B [k, n] int8 in blocks of 16 columns x 4 rows (k and n padded with zeros), block (nb, kb) at
/// (nb * kBlocks + kb) * 64, element (row 4kb + r, column 16nb + c) at c * 4 + r; with its column sums.
struct PackedInt8B {
  int64_t k = 0;
  int64_t n = 0;
  int64_t kBlocks = 0;
  int64_t nBlocks = 0;
  std::vector<int8_t> data;
  std::vector<int32_t> colSums;
};

/// Whether this CPU runs int8GemmPacked (AVX-512 F, BW and VNNI).
bool int8GemvAvailable();

/// Packs B [k, n] (rows ldb apart).
PackedInt8B packInt8B(const int8_t* b, int64_t k, int64_t n, int64_t ldb);

/// acc[i, j] (rows ldacc apart) = sum over r of (a[i, r] - aZero) * B[r, j] for i < m, with a
/// uint8 [m, k] (rows lda apart). Exact: the same int32 sums as any other order. Needs
/// int8GemvAvailable().
void int8GemmPacked(int64_t m, const uint8_t* a, int64_t lda, int32_t aZero, const PackedInt8B& b, int32_t* acc,
                    int64_t ldacc);

/// B [k, n] float32 in blocks of 64 columns (n padded with zeros), block nb holding rows 0..k-1
/// of its 64 columns contiguously at nb * k * 64: a pass over k reads it in order. (Read in
/// place, a row-major B with rows 4 KB apart thrashed the cache sets: 90 us for 256 x 1024.)
struct PackedFloatB {
  int64_t k = 0;
  int64_t n = 0;
  int64_t nBlocks = 0;
  std::vector<float> data;
};

/// Whether this CPU runs floatGemmPacked (AVX-512 F).
bool floatGemmPackedAvailable();

/// Packs B [k, n] (rows ldb apart).
PackedFloatB packFloatB(const float* b, int64_t k, int64_t n, int64_t ldb);

/// c[i, j] (rows ldc apart) = sum over r of a[i, r] * B[r, j] for i < m, j < n, with a [m, k]
/// (rows lda apart). Needs floatGemmPackedAvailable().
void floatGemmPacked(int64_t m, const float* a, int64_t lda, const PackedFloatB& b, float* c, int64_t ldc);

}  // namespace whittle::runtime::cpu
