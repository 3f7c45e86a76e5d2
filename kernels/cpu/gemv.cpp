#include "cpu/gemv.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace whittle::runtime::cpu {

bool int8GemvAvailable() {
  static const bool has =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  return has;
}

namespace {

/// B [k, n] in blocks of `cols` columns x `group` rows (k and n padded with zeros): block (nb, kb)
/// at (nb * kGroups + kb) * cols * group, element (row kb * group + r, column nb * cols + c) at
/// c * group + r. The layout of both packed forms (int8: 16 x 4, float: 64 x 1).
template <typename T>
std::vector<T> packBlocks(const T* b, int64_t k, int64_t n, int64_t ldb, int64_t cols, int64_t group) {
  const int64_t kGroups = (k + group - 1) / group, nBlocks = (n + cols - 1) / cols;
  std::vector<T> data(static_cast<size_t>(kGroups * nBlocks * cols * group), T{0});
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      data[static_cast<size_t>(((j / cols) * kGroups + r / group) * cols * group + (j % cols) * group + r % group)] =
          b[r * ldb + j];
    }
  }
  return data;
}

}  // namespace

PackedInt8B packInt8B(const int8_t* b, int64_t k, int64_t n, int64_t ldb) {
  PackedInt8B p;
  p.k = k;
  p.n = n;
  p.kBlocks = (k + 3) / 4;
  p.nBlocks = (n + 15) / 16;
  p.data = packBlocks(b, k, n, ldb, 16, 4);
  p.colSums.assign(static_cast<size_t>(n), 0);
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t j = 0; j < n; ++j) p.colSums[static_cast<size_t>(j)] += b[r * ldb + j];
  }
  return p;
}

namespace {

/// One row: out[j] = sum_r a[r] * B[r, j] (no zero point), four column blocks at a time.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void rowVnni(const uint32_t* aWords, const PackedInt8B& b,
                                                                    int32_t* out) {
  const int64_t kb = b.kBlocks;
  const int8_t* base = b.data.data();
  int64_t nb = 0;
  for (; nb + 4 <= b.nBlocks; nb += 4) {
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
    const int8_t* p0 = base + nb * kb * 64;
    const int8_t* p1 = p0 + kb * 64;
    const int8_t* p2 = p1 + kb * 64;
    const int8_t* p3 = p2 + kb * 64;
    for (int64_t r = 0; r < kb; ++r) {
      const __m512i a = _mm512_set1_epi32(static_cast<int32_t>(aWords[r]));
      acc0 = _mm512_dpbusd_epi32(acc0, a, _mm512_loadu_si512(p0 + r * 64));
      acc1 = _mm512_dpbusd_epi32(acc1, a, _mm512_loadu_si512(p1 + r * 64));
      acc2 = _mm512_dpbusd_epi32(acc2, a, _mm512_loadu_si512(p2 + r * 64));
      acc3 = _mm512_dpbusd_epi32(acc3, a, _mm512_loadu_si512(p3 + r * 64));
    }
    const __m512i accs[4] = {acc0, acc1, acc2, acc3};
    for (int64_t q = 0; q < 4; ++q) {
      const int64_t col = (nb + q) * 16;
      const int64_t left = std::min<int64_t>(16, b.n - col);
      _mm512_mask_storeu_epi32(out + col, static_cast<__mmask16>((1u << left) - 1u), accs[q]);
    }
  }
  for (; nb < b.nBlocks; ++nb) {
    __m512i acc = _mm512_setzero_si512();
    const int8_t* p = base + nb * kb * 64;
    for (int64_t r = 0; r < kb; ++r) {
      acc = _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(static_cast<int32_t>(aWords[r])), _mm512_loadu_si512(p + r * 64));
    }
    const int64_t col = nb * 16;
    const int64_t left = std::min<int64_t>(16, b.n - col);
    _mm512_mask_storeu_epi32(out + col, static_cast<__mmask16>((1u << left) - 1u), acc);
  }
}

}  // namespace

void int8GemmPacked(int64_t m, const uint8_t* a, int64_t lda, int32_t aZero, const PackedInt8B& b, int32_t* acc,
                    int64_t ldacc) {
  thread_local std::vector<uint32_t> words;  // a row as vpdpbusd reads it; called once per recurrent step
  words.resize(static_cast<size_t>(b.kBlocks));
  for (int64_t i = 0; i < m; ++i) {
    const uint8_t* row = a + i * lda;
    // Four uint8 of the row per word, the last group padded with zeros (B's padding rows are zero).
    std::memset(words.data(), 0, words.size() * sizeof(uint32_t));
    std::memcpy(words.data(), row, static_cast<size_t>(b.k));
    int32_t* out = acc + i * ldacc;
    rowVnni(words.data(), b, out);
    for (int64_t j = 0; j < b.n; ++j) out[j] -= aZero * b.colSums[static_cast<size_t>(j)];
  }
}

bool floatGemmPackedAvailable() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

PackedFloatB packFloatB(const float* b, int64_t k, int64_t n, int64_t ldb) {
  PackedFloatB p;
  p.k = k;
  p.n = n;
  p.nBlocks = (n + 63) / 64;
  p.data = packBlocks(b, k, n, ldb, 64, 1);
  return p;
}

namespace {

/// ROWS rows of c over the block of 64 columns at `p` (rows 0..k-1 of the block, 64 floats each):
/// VECS accumulators of 16 columns per row over the whole k, so that each load of B serves
/// every row. A last block with fewer than 64 real columns runs only the vectors that hold
/// some (PP-style GRUs of 3 x 112 = 336 gate columns: 21 vectors, not 24).
template <int ROWS, int VECS>
__attribute__((target("avx512f"), always_inline)) inline void floatBlock(const float* a, int64_t lda, const float* p,
                                                                         int64_t k, int64_t col0, int64_t n, float* c,
                                                                         int64_t ldc) {
  __m512 acc[ROWS][VECS];
  for (int i = 0; i < ROWS; ++i) {
    for (int q = 0; q < VECS; ++q) acc[i][q] = _mm512_setzero_ps();
  }
  for (int64_t r = 0; r < k; ++r, p += 64) {
    __m512 w[VECS];
    for (int q = 0; q < VECS; ++q) w[q] = _mm512_loadu_ps(p + 16 * q);
    for (int i = 0; i < ROWS; ++i) {
      const __m512 x = _mm512_set1_ps(a[i * lda + r]);
      for (int q = 0; q < VECS; ++q) acc[i][q] = _mm512_fmadd_ps(x, w[q], acc[i][q]);
    }
  }
  for (int q = 0; q < VECS; ++q) {
    const int64_t col = col0 + q * 16;
    const int64_t left = std::min<int64_t>(16, n - col);
    const auto mask = static_cast<__mmask16>(left == 16 ? 0xffffu : (1u << left) - 1u);
    for (int i = 0; i < ROWS; ++i) _mm512_mask_storeu_ps(c + i * ldc + col, mask, acc[i][q]);
  }
}

/// ROWS rows of c, block by block of 64 columns.
template <int ROWS>
__attribute__((target("avx512f"))) void floatRows(const float* a, int64_t lda, const PackedFloatB& b, float* c,
                                                 int64_t ldc) {
  for (int64_t nb = 0; nb < b.nBlocks; ++nb) {
    const float* p = b.data.data() + nb * b.k * 64;
    const int64_t col0 = nb * 64;
    switch (std::min<int64_t>(4, (b.n - col0 + 15) / 16)) {
      case 1: floatBlock<ROWS, 1>(a, lda, p, b.k, col0, b.n, c, ldc); break;
      case 2: floatBlock<ROWS, 2>(a, lda, p, b.k, col0, b.n, c, ldc); break;
      case 3: floatBlock<ROWS, 3>(a, lda, p, b.k, col0, b.n, c, ldc); break;
      default: floatBlock<ROWS, 4>(a, lda, p, b.k, col0, b.n, c, ldc); break;
    }
  }
}

}  // namespace

void floatGemmPacked(int64_t m, const float* a, int64_t lda, const PackedFloatB& b, float* c, int64_t ldc) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) floatRows<4>(a + i * lda, lda, b, c + i * ldc, ldc);
  switch (m - i) {
    case 3: floatRows<3>(a + i * lda, lda, b, c + i * ldc, ldc); break;
    case 2: floatRows<2>(a + i * lda, lda, b, c + i * ldc, ldc); break;
    case 1: floatRows<1>(a + i * lda, lda, b, c + i * ldc, ldc); break;
    default: break;
  }
}

}  // namespace whittle::runtime::cpu
