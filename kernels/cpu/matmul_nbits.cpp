// Low-bit weight-only matrix products: com.microsoft MatMulNBits (see matmul_nbits.h).
//
//   MatMulNBits(A, B, scales, zero_points?, g_idx?, bias?), attributes K, N, bits, block_size:
//   Y[..., n] = sum_k A[..., k] * (q[n, k] - z[n, k / block]) * s[n, k / block] + bias[n]
//
// Packing happens once at kernel creation when B, scales and zero points are constants (they
// are, in every model the quantizers write), else on every run. A must be float32; g_idx, when
// present, must be the trivial k / block_size (act-order permutations are refused).
#include "cpu/matmul_nbits.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <oneapi/dnnl/dnnl.h>

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>

#include "cpu/dnnl_glue.h"
#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {
namespace nbits {
namespace {

using ir::DataType;

int64_t roundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

std::string dtypeName(DataType t) { return std::string(ir::dataTypeName(t)); }

float readFloat(const ir::Tensor& t, int64_t i) { return static_cast<float>(t.valueAsDouble(i)); }

// ---- scalar ----

/// Dequantizes one column (kPad values).
void dequantizeColumnScalar(const PackedNBits& w, int64_t col, float* dst) {
  const uint8_t* q = w.q.data() + col * w.columnBytes();
  const float* s = w.scale.data() + col * w.scaleBlocks;
  const float* o = w.offset.data() + col * w.scaleBlocks;
  for (int64_t k = 0; k < w.kPad; ++k) {
    int32_t v;
    if (w.bits == 4) {
      const int64_t g = k / 32, j = k % 32;
      const uint8_t byte = q[g * 16 + (j & 15)];
      v = j < 16 ? (byte & 15) : (byte >> 4);
    } else {
      v = q[k];
    }
    const int64_t b = k >> w.blockShift;
    dst[k] = std::fma(static_cast<float>(v), s[b], o[b]);  // as the vector paths round it
  }
}

void gemvScalar(const PackedNBits& w, const float* a, int64_t m, float* y, int64_t n0, int64_t n1) {
  std::vector<float> col(static_cast<size_t>(w.kPad));
  for (int64_t n = n0; n < n1; ++n) {
    dequantizeColumnScalar(w, n, col.data());
    for (int64_t r = 0; r < m; ++r) {
      const float* ar = a + r * w.kPad;
      float acc = 0.0f;
      for (int64_t k = 0; k < w.kPad; ++k) acc += ar[k] * col[static_cast<size_t>(k)];
      y[r * w.n + n] = acc;
    }
  }
}

// ---- AVX2 ----

// GCC 12's intrinsics headers build vectors from _mm*_undefined_*(), which -Wmaybe-uninitialized
// reports once inlined here (a false positive; pool_nhwc.cpp and normalization_softmax.cpp do the same).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define WH_AVX2 __attribute__((target("avx2,fma")))

WH_AVX2 inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// The four vectors of 8 weights of k group g (32 k) of a column.
WH_AVX2 inline void dequantGroupAvx2(const PackedNBits& w, const uint8_t* q, const float* s, const float* o, int64_t g,
                                     __m256 out[4]) {
  const int64_t k0 = g * 32;
  __m256i v[4];
  if (w.bits == 4) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + g * 16));
    const __m128i mask = _mm_set1_epi8(15);
    const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    v[0] = _mm256_cvtepu8_epi32(lo);
    v[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
    v[2] = _mm256_cvtepu8_epi32(hi);
    v[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
  } else {
    const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k0));
    const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k0 + 16));
    v[0] = _mm256_cvtepu8_epi32(b0);
    v[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(b0, 8));
    v[2] = _mm256_cvtepu8_epi32(b1);
    v[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(b1, 8));
  }
  for (int i = 0; i < 4; ++i) {
    const int64_t b = (k0 + 8 * i) >> w.blockShift;
    out[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v[i]), _mm256_broadcast_ss(s + b), _mm256_broadcast_ss(o + b));
  }
}

WH_AVX2 void dequantizeColumnAvx2(const PackedNBits& w, int64_t col, float* dst) {
  const uint8_t* q = w.q.data() + col * w.columnBytes();
  const float* s = w.scale.data() + col * w.scaleBlocks;
  const float* o = w.offset.data() + col * w.scaleBlocks;
  for (int64_t g = 0; g < w.kPad / 32; ++g) {
    __m256 v[4];
    dequantGroupAvx2(w, q, s, o, g, v);
    for (int i = 0; i < 4; ++i) _mm256_storeu_ps(dst + g * 32 + 8 * i, v[i]);
  }
}

template <int R>
WH_AVX2 void gemvAvx2Rows(const PackedNBits& w, const float* a, float* y, int64_t n0, int64_t n1) {
  const int64_t groups = w.kPad / 32;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* q = w.q.data() + n * w.columnBytes();
    const float* s = w.scale.data() + n * w.scaleBlocks;
    const float* o = w.offset.data() + n * w.scaleBlocks;
    __m256 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
      __m256 v[4];
      dequantGroupAvx2(w, q, s, o, g, v);
      for (int r = 0; r < R; ++r) {
        const float* ar = a + r * w.kPad + g * 32;
        acc[r][0] = _mm256_fmadd_ps(v[0], _mm256_loadu_ps(ar), acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(v[1], _mm256_loadu_ps(ar + 8), acc[r][1]);
        acc[r][0] = _mm256_fmadd_ps(v[2], _mm256_loadu_ps(ar + 16), acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(v[3], _mm256_loadu_ps(ar + 24), acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) y[r * w.n + n] = hsum256(_mm256_add_ps(acc[r][0], acc[r][1]));
  }
}

void gemvAvx2(const PackedNBits& w, const float* a, int64_t m, float* y, int64_t n0, int64_t n1) {
  switch (m) {
    case 1: gemvAvx2Rows<1>(w, a, y, n0, n1); break;
    case 2: gemvAvx2Rows<2>(w, a, y, n0, n1); break;
    case 3: gemvAvx2Rows<3>(w, a, y, n0, n1); break;
    default: gemvAvx2Rows<4>(w, a, y, n0, n1); break;
  }
}

// ---- AVX-512 ----

#define WH_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

/// The two vectors of 16 weights of k group g (32 k) of a column.
WH_AVX512 inline void dequantGroupAvx512(const PackedNBits& w, const uint8_t* q, const float* s, const float* o,
                                         int64_t g, __m512& w0, __m512& w1) {
  const int64_t k0 = g * 32;
  __m512i v0, v1;
  if (w.bits == 4) {
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + g * 16)));
    v0 = _mm512_and_si512(bytes, _mm512_set1_epi32(15));
    v1 = _mm512_srli_epi32(bytes, 4);
  } else {
    v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k0)));
    v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k0 + 16)));
  }
  const int64_t b0 = k0 >> w.blockShift, b1 = (k0 + 16) >> w.blockShift;
  w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v0), _mm512_set1_ps(s[b0]), _mm512_set1_ps(o[b0]));
  w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v1), _mm512_set1_ps(s[b1]), _mm512_set1_ps(o[b1]));
}

WH_AVX512 void dequantizeColumnAvx512(const PackedNBits& w, int64_t col, float* dst) {
  const uint8_t* q = w.q.data() + col * w.columnBytes();
  const float* s = w.scale.data() + col * w.scaleBlocks;
  const float* o = w.offset.data() + col * w.scaleBlocks;
  for (int64_t g = 0; g < w.kPad / 32; ++g) {
    __m512 w0, w1;
    dequantGroupAvx512(w, q, s, o, g, w0, w1);
    _mm512_storeu_ps(dst + g * 32, w0);
    _mm512_storeu_ps(dst + g * 32 + 16, w1);
  }
}

/// R rows of A, two columns at a time (four independent accumulator chains per row).
template <int R>
WH_AVX512 void gemvAvx512Rows(const PackedNBits& w, const float* a, float* y, int64_t n0, int64_t n1) {
  const int64_t groups = w.kPad / 32, cb = w.columnBytes();
  int64_t n = n0;
  for (; n + 2 <= n1; n += 2) {
    const uint8_t* q = w.q.data() + n * cb;
    const float* s = w.scale.data() + n * w.scaleBlocks;
    const float* o = w.offset.data() + n * w.scaleBlocks;
    __m512 acc[R][4];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
      __m512 w0, w1, x0, x1;
      dequantGroupAvx512(w, q, s, o, g, w0, w1);
      dequantGroupAvx512(w, q + cb, s + w.scaleBlocks, o + w.scaleBlocks, g, x0, x1);
      for (int r = 0; r < R; ++r) {
        const __m512 a0 = _mm512_loadu_ps(a + r * w.kPad + g * 32), a1 = _mm512_loadu_ps(a + r * w.kPad + g * 32 + 16);
        acc[r][0] = _mm512_fmadd_ps(w0, a0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(w1, a1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(x0, a0, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(x1, a1, acc[r][3]);
      }
    }
    for (int r = 0; r < R; ++r) {
      y[r * w.n + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
      y[r * w.n + n + 1] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][2], acc[r][3]));
    }
  }
  for (; n < n1; ++n) {
    const uint8_t* q = w.q.data() + n * cb;
    const float* s = w.scale.data() + n * w.scaleBlocks;
    const float* o = w.offset.data() + n * w.scaleBlocks;
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
      __m512 w0, w1;
      dequantGroupAvx512(w, q, s, o, g, w0, w1);
      for (int r = 0; r < R; ++r) {
        acc[r][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(a + r * w.kPad + g * 32), acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(a + r * w.kPad + g * 32 + 16), acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) y[r * w.n + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
  }
}

void gemvAvx512(const PackedNBits& w, const float* a, int64_t m, float* y, int64_t n0, int64_t n1) {
  switch (m) {
    case 1: gemvAvx512Rows<1>(w, a, y, n0, n1); break;
    case 2: gemvAvx512Rows<2>(w, a, y, n0, n1); break;
    case 3: gemvAvx512Rows<3>(w, a, y, n0, n1); break;
    default: gemvAvx512Rows<4>(w, a, y, n0, n1); break;
  }
}

/// Transposes the 16 x 16 floats in r (row i in r[i]) in registers.
WH_AVX512 inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4i + c], 128-bit lane L: column 4L + c of rows 4i .. 4i + 3.
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  // Column 4L + c gathers lane L of r[c], r[4 + c], r[8 + c], r[12 + c].
  for (int c = 0; c < 4; ++c) {
    const __m512 a = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), b = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 e = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88), f = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    t[c] = _mm512_shuffle_f32x4(a, e, 0x88);
    t[8 + c] = _mm512_shuffle_f32x4(a, e, 0xdd);
    t[4 + c] = _mm512_shuffle_f32x4(b, f, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(b, f, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

/// r[c] byte j -> r[j] byte c: a 16 x 16 byte transpose in four rounds of 128-bit unpacks
/// (pairs of rows, then fours, eights and sixteens; 64 cheap shuffles for 256 bytes).
WH_AVX512 inline void transposeBytes16x16(__m128i r[16]) {
  __m128i a[16], b[16];
  // a[8h + p]: j in [8h, 8h + 8), one 16-bit unit per j holding rows 2p, 2p + 1.
  for (int p = 0; p < 8; ++p) {
    a[p] = _mm_unpacklo_epi8(r[2 * p], r[2 * p + 1]);
    a[8 + p] = _mm_unpackhi_epi8(r[2 * p], r[2 * p + 1]);
  }
  // b[4f + q]: j in [4f, 4f + 4), one 32-bit unit per j holding rows 4q .. 4q + 3.
  for (int h = 0; h < 2; ++h) {
    for (int q = 0; q < 4; ++q) {
      b[8 * h + q] = _mm_unpacklo_epi16(a[8 * h + 2 * q], a[8 * h + 2 * q + 1]);
      b[8 * h + 4 + q] = _mm_unpackhi_epi16(a[8 * h + 2 * q], a[8 * h + 2 * q + 1]);
    }
  }
  // a[2e + s]: j in [2e, 2e + 2), one 64-bit unit per j holding rows 8s .. 8s + 7.
  for (int f = 0; f < 4; ++f) {
    for (int s = 0; s < 2; ++s) {
      a[4 * f + s] = _mm_unpacklo_epi32(b[4 * f + 2 * s], b[4 * f + 2 * s + 1]);
      a[4 * f + 2 + s] = _mm_unpackhi_epi32(b[4 * f + 2 * s], b[4 * f + 2 * s + 1]);
    }
  }
  for (int e = 0; e < 8; ++e) {
    r[2 * e] = _mm_unpacklo_epi64(a[2 * e], a[2 * e + 1]);
    r[2 * e + 1] = _mm_unpackhi_epi64(a[2 * e], a[2 * e + 1]);
  }
}

/// 4 bits: columns [c0, c0 + 16) k-major (as dequantizeKMajor16Avx512), transposing the packed
/// bytes instead of the floats: byte j of a column's 32-k group holds k = j and k = j + 16, so
/// after a 16 x 16 byte transpose, vector j holds those two k of all 16 columns; each becomes 16
/// floats with the 16 columns' scale and offset of its block (gathered once per block).
/// SmolLM2's 576 x 1536 and 1536 x 576, one core, CPU clock on a loaded machine: about 6.4 G weights/s with
/// the float transposes, 9.1 with these.
WH_AVX512 void dequantizeKMajor16Nibbles(const PackedNBits& w, int64_t c0, float* dst, int64_t ld, int64_t rows) {
  const int64_t cb = w.columnBytes();
  const uint8_t* q = w.q.data() + c0 * cb;
  const float* s = w.scale.data() + c0 * w.scaleBlocks;
  const float* o = w.offset.data() + c0 * w.scaleBlocks;
  const __m512i perColumn = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(static_cast<int32_t>(w.scaleBlocks)));
  const __m512i mask = _mm512_set1_epi32(15);
  int64_t cached = -1;
  __m512 sv = _mm512_setzero_ps(), ov = _mm512_setzero_ps();
// The 16 columns' scale and offset of block b (a macro: a lambda would not carry the target attributes).
#define WH_NIBBLE_BLOCK(b)                                   \
  if ((b) != cached) {                                       \
    cached = (b);                                            \
    sv = _mm512_i32gather_ps(perColumn, s + cached, 4);      \
    ov = _mm512_i32gather_ps(perColumn, o + cached, 4);      \
  }
  for (int64_t g = 0; g * 32 < rows; ++g) {
    __m128i r[16];
    for (int c = 0; c < 16; ++c) r[c] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + c * cb + g * 16));
    transposeBytes16x16(r);
    float* d = dst + g * 32 * ld;
    WH_NIBBLE_BLOCK((g * 32) >> w.blockShift)
    const __m512 s0 = sv, o0 = ov;
    if (g * 32 + 16 >= rows) {  // the last 16 k of the panel: the low nibbles only
      for (int j = 0; j < 16; ++j) {
        const __m512i v = _mm512_and_si512(_mm512_cvtepu8_epi32(r[j]), mask);
        _mm512_storeu_ps(d + j * ld, _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), s0, o0));
      }
      break;
    }
    WH_NIBBLE_BLOCK((g * 32 + 16) >> w.blockShift)
    for (int j = 0; j < 16; ++j) {
      const __m512i v = _mm512_cvtepu8_epi32(r[j]);
      _mm512_storeu_ps(d + j * ld, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, mask)), s0, o0));
      _mm512_storeu_ps(d + (16 + j) * ld, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), sv, ov));
    }
  }
#undef WH_NIBBLE_BLOCK
}

/// Columns [c0, c0 + 16) dequantized k-major: dst[k * ld + j] for k < rows (a multiple of 16,
/// at most kPad), 32 k at a time (each column's two vectors of 16 k, transposed in registers).
WH_AVX512 void dequantizeKMajor16Avx512(const PackedNBits& w, int64_t c0, float* dst, int64_t ld, int64_t rows) {
  if (w.bits == 4) {
    dequantizeKMajor16Nibbles(w, c0, dst, ld, rows);
    return;
  }
  const int64_t cb = w.columnBytes();
  for (int64_t g = 0; g * 32 < rows; ++g) {
    __m512 lo[16], hi[16];
    for (int j = 0; j < 16; ++j) {
      const int64_t c = c0 + j;
      dequantGroupAvx512(w, w.q.data() + c * cb, w.scale.data() + c * w.scaleBlocks, w.offset.data() + c * w.scaleBlocks, g,
                         lo[j], hi[j]);
    }
    transpose16x16(lo);
    transpose16x16(hi);
    float* d = dst + g * 32 * ld;
    for (int kk = 0; kk < 16; ++kk) _mm512_storeu_ps(d + kk * ld, lo[kk]);
    if (g * 32 + 16 >= rows) break;
    for (int kk = 0; kk < 16; ++kk) _mm512_storeu_ps(d + (16 + kk) * ld, hi[kk]);
  }
}

#pragma GCC diagnostic pop

void dequantizeColumn(const PackedNBits& w, int64_t col, float* dst, Isa isa) {
  switch (isa) {
    case Isa::kAvx512: dequantizeColumnAvx512(w, col, dst); break;
    case Isa::kAvx2: dequantizeColumnAvx2(w, col, dst); break;
    default: dequantizeColumnScalar(w, col, dst); break;
  }
}

float* alignTo64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) / 64 * 64);
}

/// Columns per dequantized panel of the GEMM path: all of N (rounded up to kPanelBlock), unless
/// that panel would pass kMaxPanelBytes; then as many whole blocks of kPanelBlock as fit.
int64_t panelColumns(const PackedNBits& w) {
  const int64_t fit = kMaxPanelBytes / static_cast<int64_t>(sizeof(float)) / std::max<int64_t>(roundUp(w.k, 16), 1);
  return std::clamp<int64_t>(fit / kPanelBlock * kPanelBlock, kPanelBlock, roundUp(w.n, kPanelBlock));
}

}  // namespace

Isa bestIsa() {
  static const Isa isa = [] {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
      return Isa::kAvx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kScalar;
  }();
  return isa;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    default: return "scalar";
  }
}

Expected<PackedNBits> packMatMulNBits(const ir::Tensor& b, const ir::Tensor& scales, const ir::Tensor* zeroPoints,
                                      int64_t k, int64_t n, int64_t bits, int64_t blockSize, const std::string& who) {
  auto fail = [&](const std::string& m) { return invalidInput(who + ": " + m); };
  if (bits != 4 && bits != 8) return unimplemented(who + ": bits=" + std::to_string(bits) + " is not supported (4 and 8 are)");
  if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0) {
    return fail("block_size must be a power of two of at least 16, got " + std::to_string(blockSize));
  }
  if (k <= 0 || n <= 0) return fail("K and N must be positive, got K=" + std::to_string(k) + " N=" + std::to_string(n));
  const int64_t blocks = (k + blockSize - 1) / blockSize, blob = blockSize * bits / 8;
  if (b.dtype() != DataType::kUint8 || b.numel() != n * blocks * blob) {
    return fail("B must be uint8 with N * ceil(K / block_size) * block_size * bits / 8 = " + std::to_string(n * blocks * blob) +
                " bytes, got " + dtypeName(b.dtype()) + " " + shapeToString(b.dims()));
  }
  if ((scales.dtype() != DataType::kFloat && scales.dtype() != DataType::kFloat16) || scales.numel() != n * blocks) {
    return fail("scales must be float with N * ceil(K / block_size) = " + std::to_string(n * blocks) + " values, got " +
                dtypeName(scales.dtype()) + " " + shapeToString(scales.dims()));
  }
  const int64_t zpBytesPerCol = (blocks * bits + 7) / 8;
  bool floatZp = false;
  if (zeroPoints != nullptr) {
    if (zeroPoints->dtype() == DataType::kUint8) {
      if (zeroPoints->numel() != n * zpBytesPerCol) {
        return fail("uint8 zero_points must have " + std::to_string(n * zpBytesPerCol) + " bytes, got " +
                    shapeToString(zeroPoints->dims()));
      }
    } else if (zeroPoints->dtype() == scales.dtype() && zeroPoints->numel() == n * blocks) {
      floatZp = true;
    } else {
      return fail("zero_points must be uint8 (packed) or of the scales' type and size, got " + dtypeName(zeroPoints->dtype()) +
                  " " + shapeToString(zeroPoints->dims()));
    }
  }
  PackedNBits w;
  w.k = k;
  w.n = n;
  w.bits = bits;
  w.blockSize = blockSize;
  while ((int64_t{1} << w.blockShift) < blockSize) ++w.blockShift;
  w.kPad = roundUp(blocks * blockSize, 32);
  w.scaleBlocks = (w.kPad + blockSize - 1) / blockSize;
  w.q.assign(static_cast<size_t>(n * w.columnBytes()), 0);
  w.scale.assign(static_cast<size_t>(n * w.scaleBlocks), 0.0f);
  w.offset.assign(static_cast<size_t>(n * w.scaleBlocks), 0.0f);
  const auto* src = reinterpret_cast<const uint8_t*>(b.rawData());
  const auto* zp = zeroPoints != nullptr && !floatZp ? reinterpret_cast<const uint8_t*>(zeroPoints->rawData()) : nullptr;
  const float defaultZp = static_cast<float>(1 << (bits - 1));
  for (int64_t c = 0; c < n; ++c) {
    const uint8_t* col = src + c * blocks * blob;
    uint8_t* dst = w.q.data() + c * w.columnBytes();
    for (int64_t kk = 0; kk < k; ++kk) {  // k beyond K stays 0 (its scale is 0 too)
      uint8_t v = bits == 4 ? static_cast<uint8_t>((col[kk / 2] >> ((kk & 1) * 4)) & 15) : col[kk];
      if (bits == 4) {
        const int64_t g = kk / 32, j = kk % 32;
        dst[g * 16 + (j & 15)] |= static_cast<uint8_t>(j < 16 ? v : v << 4);
      } else {
        dst[kk] = v;
      }
    }
    for (int64_t bl = 0; bl < blocks; ++bl) {
      const float s = readFloat(scales, c * blocks + bl);
      float z = defaultZp;
      if (floatZp) {
        z = readFloat(*zeroPoints, c * blocks + bl);
      } else if (zp != nullptr) {
        const uint8_t byte = zp[c * zpBytesPerCol + bl * bits / 8];
        z = static_cast<float>(bits == 4 ? (byte >> ((bl & 1) * 4)) & 15 : byte);
      }
      w.scale[static_cast<size_t>(c * w.scaleBlocks + bl)] = s;
      w.offset[static_cast<size_t>(c * w.scaleBlocks + bl)] = -z * s;
    }
  }
  return w;
}

void dequantizeColumns(const PackedNBits& w, int64_t n0, int64_t n1, float* dst, Isa isa) {
  for (int64_t c = n0; c < n1; ++c) dequantizeColumn(w, c, dst + (c - n0) * w.kPad, isa);
}

void dequantizeKMajor(const PackedNBits& w, int64_t n0, int64_t n1, float* dst, int64_t ld, int64_t rows, Isa isa,
                      std::vector<float>& column) {
  int64_t c = n0;
  if (isa == Isa::kAvx512) {
    for (; c + 16 <= n1; c += 16) dequantizeKMajor16Avx512(w, c, dst + (c - n0), ld, rows);
  }
  // The rest (and the AVX2 and scalar paths) a column at a time, written out with a stride.
  column.resize(static_cast<size_t>(w.kPad));
  for (; c < n1; ++c) {
    dequantizeColumn(w, c, column.data(), isa);
    for (int64_t k = 0; k < rows; ++k) dst[k * ld + (c - n0)] = column[static_cast<size_t>(k)];
  }
}

/// Rows of a panel block: K rounded up to 16 (the blocked layout's k blocks).
int64_t blockRows(const PackedNBits& w) { return roundUp(w.k, 16); }

void dequantizePanel(const PackedNBits& w, int64_t n0, int64_t n1, float* dst, Isa isa, std::vector<float>& column) {
  const int64_t rows = blockRows(w);
  for (int64_t c0 = n0; c0 < n1; c0 += kPanelBlock) {
    float* block = dst + (c0 - n0) / kPanelBlock * rows * kPanelBlock;
    const int64_t cols = std::min(kPanelBlock, n1 - c0);
    dequantizeKMajor(w, c0, c0 + cols, block, kPanelBlock, rows, isa, column);
    // k from K to the block's end multiply A's absent columns, and columns past N make outputs
    // nobody reads: zero, so that whatever the GEMM does with them adds nothing.
    for (int64_t k = w.k; k < rows; ++k) std::fill_n(block + k * kPanelBlock, cols, 0.0f);
    if (cols < kPanelBlock) {
      for (int64_t k = 0; k < rows; ++k) std::fill_n(block + k * kPanelBlock + cols, kPanelBlock - cols, 0.0f);
    }
  }
}

Status matmul(const PackedNBits& w, const float* a, int64_t m, const float* bias, float* y, int threads, Isa isa,
              std::vector<float>& scratch, const PanelGemm& gemm) {
  if (m == 0) return Status::ok();
  if (m <= kGemvMaxRows) {
    // A padded to kPad (the padding multiplies weights whose scale is 0).
    scratch.assign(static_cast<size_t>(m * w.kPad), 0.0f);
    for (int64_t r = 0; r < m; ++r) std::memcpy(scratch.data() + r * w.kPad, a + r * w.k, static_cast<size_t>(w.k) * sizeof(float));
    const float* ap = scratch.data();
    // Enough columns per thread to pay for the fork.
    const int useThreads = static_cast<int>(std::min<int64_t>(threads, w.n * w.kPad / (1 << 16) + 1));
    parallelColumns(w.n, useThreads, 16, [&](int64_t n0, int64_t n1) {
      switch (isa) {
        case Isa::kAvx512: gemvAvx512(w, ap, m, y, n0, n1); break;
        case Isa::kAvx2: gemvAvx2(w, ap, m, y, n0, n1); break;
        default: gemvScalar(w, ap, m, y, n0, n1); break;
      }
    });
  } else {
    // One panel of all N columns (when it fits kMaxPanelBytes), dequantized in parallel over blocks
    // of kPanelBlock columns, then one GEMM over it that oneDNN runs on the session's threads.
    const int64_t panel = panelColumns(w), rows = blockRows(w);
    // 64-byte aligned (a vector's bytes in one cache line, for the stores here and the GEMM's loads).
    scratch.resize(static_cast<size_t>(rows * panel + 16));
    float* buf = alignTo64(scratch.data());
    const int dequantThreads = static_cast<int>(std::min<int64_t>(threads, w.n * w.kPad / (1 << 16) + 1));
    for (int64_t n0 = 0; n0 < w.n; n0 += panel) {
      const int64_t n1 = std::min(w.n, n0 + panel);
      // The panel in oneDNN's blocked weight layout (BA16a64b): the GEMM reads it as it is.
      parallelColumns(n1 - n0, dequantThreads, kPanelBlock, [&](int64_t c0, int64_t c1) {
        std::vector<float> column;
        dequantizePanel(w, n0 + c0, n0 + c1, buf + c0 / kPanelBlock * rows * kPanelBlock, isa, column);
      });
      if (gemm) {
        WH_RETURN_IF_ERROR(gemm(m, n1 - n0, a, buf, y + n0, w.n));
        continue;
      }
      for (int64_t c0 = n0; c0 < n1; c0 += kPanelBlock) {
        const float* block = buf + (c0 - n0) / kPanelBlock * rows * kPanelBlock;
        const dnnl_status_t st = dnnl_sgemm('N', 'N', m, std::min(kPanelBlock, n1 - c0), w.k, 1.0f, a, w.k, block, kPanelBlock,
                                            0.0f, y + c0, w.n);
        if (st != dnnl_success) return internalError("dnnl_sgemm failed with status " + std::to_string(st));
      }
    }
  }
  if (bias != nullptr) {
    for (int64_t r = 0; r < m; ++r) {
      float* yr = y + r * w.n;
      for (int64_t c = 0; c < w.n; ++c) yr[c] += bias[c];
    }
  }
  return Status::ok();
}

}  // namespace nbits

namespace {

using ir::DataType;
using nbits::dtypeName;

/// com.microsoft MatMulNBits.
class MatMulNBitsKernel final : public Kernel {
 public:
  static Expected<std::unique_ptr<Kernel>> create(const KernelCreateInfo& info) {
    auto kernel = std::make_unique<MatMulNBitsKernel>(info);
    WH_RETURN_IF_ERROR(kernel->prepare(info));
    return std::unique_ptr<Kernel>(std::move(kernel));
  }

  explicit MatMulNBitsKernel(const KernelCreateInfo& info)
      : engine_(engineOf(info.context)),
        k_(info.node.attrInt("K", 0)),
        n_(info.node.attrInt("N", 0)),
        bits_(info.node.attrInt("bits", 4)),
        blockSize_(info.node.attrInt("block_size", 0)),
        isa_(nbits::bestIsa()),
        // accuracy_level 4 asks for int8 activations (ONNX Runtime's CompInt8); a CPU without
        // AVX-512 VNNI keeps float activations (the level is the least accuracy allowed, as in ORT).
        int8_(info.node.attrInt("accuracy_level", 0) == 4 && nbits::int8VnniAvailable()) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& a = ctx.input(0);
    if (a.dtype() != DataType::kFloat) return ctx.unsupported("A of dtype " + dtypeName(a.dtype()) + " is not supported (float32 is)");
    if (a.rank() < 1 || a.dims().back() != k_) {
      return ctx.error("A " + shapeToString(a.dims()) + " must end in K = " + std::to_string(k_));
    }
    if (!packed_) {
      WH_RETURN_IF_ERROR(checkGroupIndex(ctx.describe(), ctx.hasInput(4) ? &ctx.input(4) : nullptr));
      WH_ASSIGN_OR_RETURN(nbits::PackedNBits w, nbits::packMatMulNBits(ctx.input(1), ctx.input(2), ctx.hasInput(3) ? &ctx.input(3) : nullptr,
                                                                      k_, n_, bits_, blockSize_, ctx.describe()));
      setWeights(std::move(w));
    }
    const float* bias = nullptr;
    if (ctx.hasInput(5)) {
      const ir::Tensor& b = ctx.input(5);
      if (b.dtype() != DataType::kFloat || b.numel() != n_) {
        return ctx.error("bias must be float32 with N = " + std::to_string(n_) + " values, got " + dtypeName(b.dtype()) + " " +
                         shapeToString(b.dims()));
      }
      bias = b.data<float>();
    }
    std::vector<int64_t> outDims = a.dims();
    outDims.back() = n_;
    const int64_t m = a.numel() / k_;
    ir::Tensor& y = ctx.allocateOutput(0, DataType::kFloat, outDims);
    dnnl::stream& stream = streamOf(ctx.context());
    nbits::PanelGemm gemm = [this, &stream](int64_t rows, int64_t cols, const float* src, const float* wei, float* dst,
                                            int64_t ldy) { return panelGemm(stream, rows, cols, src, wei, dst, ldy); };
    // One buffer per thread for every MatMulNBits: the dequantized panel is a whole weight in float
    // (up to kMaxPanelBytes), which a buffer per node would keep alive for each of them.
    if (int8_) {
      thread_local nbits::QuantizedRows rows;
      return nbits::matmulInt8(weightsI8_, a.data<float>(), m, bias, y.mutableData<float>(), ctx.threads(), true, rows);
    }
    thread_local std::vector<float> scratch;
    return nbits::matmul(weights_, a.data<float>(), m, bias, y.mutableData<float>(), ctx.threads(), isa_, scratch, gemm);
  }

 private:
  Status prepare(const KernelCreateInfo& info) {
    const std::string who = info.node.describe();
    if (k_ <= 0 || n_ <= 0) return invalidInput(who + ": attributes K and N must be positive");
    const ir::Tensor* b = info.constantInput(1);
    const ir::Tensor* scales = info.constantInput(2);
    const bool hasZp = info.node.numInputs() > 3 && info.node.input(3) != nullptr;
    const ir::Tensor* zp = hasZp ? info.constantInput(3) : nullptr;
    const bool hasGidx = info.node.numInputs() > 4 && info.node.input(4) != nullptr;
    const ir::Tensor* gidx = hasGidx ? info.constantInput(4) : nullptr;
    if (b == nullptr || scales == nullptr || (hasZp && zp == nullptr) || (hasGidx && gidx == nullptr)) return Status::ok();
    WH_RETURN_IF_ERROR(checkGroupIndex(who, gidx));
    WH_ASSIGN_OR_RETURN(nbits::PackedNBits w, nbits::packMatMulNBits(*b, *scales, zp, k_, n_, bits_, blockSize_, who));
    setWeights(std::move(w));
    packed_ = true;
    return Status::ok();
  }

  /// Keeps the layout the kernel runs: the column layout, or the int8 panels made from it.
  void setWeights(nbits::PackedNBits w) {
    if (int8_) {
      weightsI8_ = nbits::packInt8(w);
    } else {
      weights_ = std::move(w);
    }
  }

  /// g_idx maps each k to its block; only the trivial k / block_size is supported.
  Status checkGroupIndex(const std::string& who, const ir::Tensor* gidx) const {
    if (gidx == nullptr) return Status::ok();
    if (gidx->numel() != k_) return invalidInput(who + ": g_idx must have K = " + std::to_string(k_) + " values, got " + shapeToString(gidx->dims()));
    for (int64_t i = 0; i < k_; ++i) {
      if (static_cast<int64_t>(gidx->valueAsDouble(i)) != i / blockSize_) {
        return unimplemented(who + ": g_idx that reorders blocks (act-order) is not supported; g_idx[" + std::to_string(i) +
                             "] = " + std::to_string(static_cast<int64_t>(gidx->valueAsDouble(i))) + ", expected " +
                             std::to_string(i / blockSize_));
      }
    }
    return Status::ok();
  }

  /// dst[rows, cols] (stride ldy) = src[rows, K] * wei[K, cols] (stride ldb) on a oneDNN matmul
  /// primitive made once per shape: on SmolLM2's 576 x 1536 at M = 128 it took 4.5 ms where dnnl_sgemm
  /// took 7.1 ms on the same transposed panels.
  Status panelGemm(dnnl::stream& stream, int64_t rows, int64_t cols, const float* src, const float* wei, float* dst,
                   int64_t ldy) {
    using dnnl::memory;
    // oneDNN's brgemm takes the blocked weights only with a dense dst (a strided one falls to its
    // reference kernel, 1000x slower): a panel narrower than N (a weight over kMaxPanelBytes) has
    // its product go to a dense buffer, then into y.
    const auto key = std::make_tuple(rows, cols, cols);
    const Plan* plan = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);  // map nodes stay put: the plan outlives the lock
      auto it = primitives_.find(key);
      if (it == primitives_.end()) {
        try {
          memory::desc srcMd({rows, k_}, memory::data_type::f32, memory::dims{k_, 1});
          memory::desc weiMd({k_, cols}, memory::data_type::f32, memory::format_tag::BA16a64b);
          memory::desc dstMd({rows, cols}, memory::data_type::f32, memory::dims{cols, 1});
          dnnl::primitive_attr attr;
          attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
          // Each call brings its own scratchpad: when panels ran on several threads at once through
          // the same primitive, its library-held one was shared, and two threads on it corrupted a
          // panel now and then (0.17 relative error in 1 run of 20).
          attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
          dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(srcMd, weiMd, dstMd), attr, engine_);
          it = primitives_.emplace(key, Plan{dnnl::matmul(pd), srcMd, weiMd, dstMd, pd.scratchpad_desc()}).first;
        } catch (const dnnl::error& e) {
          return internalError("MatMulNBits: oneDNN matmul for a " + std::to_string(rows) + " x " + std::to_string(cols) +
                               " panel: " + e.what());
        }
      }
      plan = &it->second;
    }
    try {
      memory s(plan->src, engine_, const_cast<float*>(src));
      memory w(plan->wei, engine_, const_cast<float*>(wei));
      thread_local std::vector<std::byte> scratchpad;
      scratchpad.resize(plan->scratchpad.get_size());
      memory sp(plan->scratchpad, engine_, scratchpad.data());
      if (cols == ldy) {  // y's rows are dense already
        memory d(plan->dst, engine_, dst);
        plan->primitive.execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d}, {DNNL_ARG_SCRATCHPAD, sp}});
        return Status::ok();
      }
      thread_local std::vector<float> dense;
      dense.resize(static_cast<size_t>(rows * cols));
      memory d(plan->dst, engine_, dense.data());
      plan->primitive.execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d}, {DNNL_ARG_SCRATCHPAD, sp}});
      for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * ldy, dense.data() + r * cols, static_cast<size_t>(cols) * sizeof(float));
    } catch (const dnnl::error& e) {
      return internalError(std::string("MatMulNBits: oneDNN matmul failed: ") + e.what());
    }
    return Status::ok();
  }

  struct Plan {
    dnnl::matmul primitive;
    dnnl::memory::desc src, wei, dst, scratchpad;
  };
  dnnl::engine engine_;
  std::mutex mutex_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Plan> primitives_;
  int64_t k_, n_, bits_, blockSize_;
  nbits::Isa isa_;
  bool int8_;
  bool packed_ = false;
  nbits::PackedNBits weights_;
  nbits::PackedNBitsI8 weightsI8_;
};

}  // namespace

void registerMatMulNBitsKernels(KernelRegistry& registry) {
  registry.add("com.microsoft", "MatMulNBits", 1, MatMulNBitsKernel::create);
  registerGatherBlockQuantizedKernel(registry);
}

}  // namespace whittle::runtime::cpu
