// 2-D max and average pooling of channels-last float32 tensors with AVX-512: every output
// pixel is a running max / sum over the window's input rows, 16 channels per vector (a
// masked tail for the rest); and the global pools' loops (channels-last sums, the max of a
// channels-first plane). About twice as fast as oneDNN 2.6's channels-last pooling on
// SqueezeNet's pools. The scalar reference is referencePool (pool_reference.cpp).
#include "cpu/pool_nhwc.h"

#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace whittle::runtime::cpu {

bool channelsLastPoolAvailable() {
  static const bool available = __builtin_cpu_supports("avx512f") != 0;
  return available;
}

namespace {

struct Window {
  int64_t begin, end;  ///< first and one-past-last tap inside the input
  int64_t padded;      ///< taps inside input + explicit pads (count_include_pad divisor)
};

/// The taps of output position `o` along one dim that land inside the input.
Window window(int64_t o, int64_t stride, int64_t dilation, int64_t kernel, int64_t padBegin, int64_t padEnd,
              int64_t in) {
  int64_t start = o * stride - padBegin;
  Window w{kernel, 0, 0};
  for (int64_t k = 0; k < kernel; ++k) {
    int64_t pos = start + k * dilation;
    if (pos < in + padEnd) ++w.padded;
    if (pos < 0 || pos >= in) continue;
    w.begin = std::min(w.begin, k);
    w.end = k + 1;
  }
  if (w.begin >= w.end) w.begin = w.end = 0;
  return w;
}

/// The taps of every output column, computed once per call (they do not depend on the row).
struct Column {
  Window taps;
  int64_t first;  ///< input column of the window's first tap
};

// GCC 12 warns about the undefined pass-through operand inside _mm512_max_ps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
/// Reduces `lanes` (a multiple of 16, at most 64) channels of a kh x kw grid of rows starting
/// at x into y: up to four independent accumulators, so that the max/add latency of one tap
/// chain overlaps the next.
/// kFixedH x kFixedW (when not 0) is the window, known at compile time (fully unrolled taps).
template <bool kMax, int kVectors, int kFixedH = 0, int kFixedW = 0>
__attribute__((target("avx512f"), always_inline)) inline void poolVectors(const float* x, float* y, int64_t rowStride,
                                                                          int64_t colStride, int64_t windowH,
                                                                          int64_t windowW, float scale) {
  const int64_t kh = kFixedH > 0 ? kFixedH : windowH, kw = kFixedW > 0 ? kFixedW : windowW;
  __m512 acc[kVectors];
  for (int v = 0; v < kVectors; ++v) acc[v] = _mm512_loadu_ps(x + 16 * v);
  for (int64_t i = 0; i < kh; ++i) {
    const float* row = x + i * rowStride;
    for (int64_t j = i == 0 ? 1 : 0; j < kw; ++j) {
      for (int v = 0; v < kVectors; ++v) {
        __m512 in = _mm512_loadu_ps(row + j * colStride + 16 * v);
        acc[v] = kMax ? _mm512_max_ps(acc[v], in) : _mm512_add_ps(acc[v], in);
      }
    }
  }
  for (int v = 0; v < kVectors; ++v) {
    if (!kMax) acc[v] = _mm512_mul_ps(acc[v], _mm512_set1_ps(scale));
    _mm512_storeu_ps(y + 16 * v, acc[v]);
  }
}

/// One output pixel: reduces a kh x kw grid (at least one tap) of C-channel rows starting at x.
template <bool kMax, int kFixedH = 0, int kFixedW = 0>
__attribute__((target("avx512f"), always_inline)) inline void poolPixel(const float* x, float* y, int64_t c,
                                                                        int64_t rowStride, int64_t colStride,
                                                                        int64_t kh, int64_t kw, float scale) {
  int64_t ch = 0;
  for (; ch + 64 <= c; ch += 64) {
    poolVectors<kMax, 4, kFixedH, kFixedW>(x + ch, y + ch, rowStride, colStride, kh, kw, scale);
  }
  if (ch + 32 <= c) {
    poolVectors<kMax, 2, kFixedH, kFixedW>(x + ch, y + ch, rowStride, colStride, kh, kw, scale);
    ch += 32;
  }
  if (ch + 16 <= c) {
    poolVectors<kMax, 1, kFixedH, kFixedW>(x + ch, y + ch, rowStride, colStride, kh, kw, scale);
    ch += 16;
  }
  if (ch == c) return;
  auto mask = static_cast<__mmask16>((1u << (c - ch)) - 1u);
  __m512 acc = kMax ? _mm512_set1_ps(-std::numeric_limits<float>::infinity()) : _mm512_setzero_ps();
  for (int64_t i = 0; i < kh; ++i) {
    const float* row = x + i * rowStride + ch;
    for (int64_t j = 0; j < kw; ++j) {
      __m512 v = _mm512_maskz_loadu_ps(mask, row + j * colStride);
      acc = kMax ? _mm512_max_ps(acc, v) : _mm512_add_ps(acc, v);
    }
  }
  if (!kMax) acc = _mm512_mul_ps(acc, _mm512_set1_ps(scale));
  _mm512_mask_storeu_ps(y + ch, mask, acc);
}
#pragma GCC diagnostic pop

/// Output row `i` of image `b`: every pixel inlined into one loop (a call per pixel and the
/// per-pixel window arithmetic cost more than the taps on small channel counts).
template <bool kMax>
__attribute__((target("avx512f"))) void poolRow(const PoolGeometry& g, bool countIncludePad,
                                                const std::vector<Column>& columns, int64_t b, int64_t i,
                                                const float* x, float* y) {
  int64_t c = g.src[1], h = g.src[2], w = g.src[3];
  int64_t oh = g.dst[2], ow = g.dst[3];
  Window wh = window(i, g.strides[0], g.dilations[0], g.kernel[0], g.padBegin[0], g.padEnd[0], h);
  int64_t ih0 = i * g.strides[0] - g.padBegin[0] + wh.begin * g.dilations[0];
  int64_t kh = wh.end - wh.begin;
  int64_t rowStride = g.dilations[0] * w * c, colStride = g.dilations[1] * c;
  const float* image = x + (b * h + ih0) * w * c;
  float* out = y + (b * oh + i) * ow * c;
  for (int64_t j = 0; j < ow; ++j, out += c) {
    const Column& col = columns[static_cast<size_t>(j)];
    int64_t kw = col.taps.end - col.taps.begin;
    if (kh == 0 || kw == 0) {
      std::fill(out, out + c, kMax ? std::numeric_limits<float>::lowest() : 0.0f);
      continue;
    }
    int64_t divisor = countIncludePad ? wh.padded * col.taps.padded : kh * kw;
    const float* first = image + col.first * c;
    const float scale = 1.0f / static_cast<float>(divisor);
    // The common full windows unrolled (a 2x2 stride-1 pool over 16 channels spent more time
    // on loop control than on its four loads).
    if (kh == 2 && kw == 2) {
      poolPixel<kMax, 2, 2>(first, out, c, rowStride, colStride, kh, kw, scale);
    } else if (kh == 3 && kw == 3) {
      poolPixel<kMax, 3, 3>(first, out, c, rowStride, colStride, kh, kw, scale);
    } else {
      poolPixel<kMax>(first, out, c, rowStride, colStride, kh, kw, scale);
    }
  }
}

}  // namespace

void channelsLastPool2d(const PoolGeometry& g, bool max, bool countIncludePad, const float* x, float* y) {
  int64_t n = g.src[0], c = g.src[1], w = g.src[3];
  int64_t oh = g.dst[2], ow = g.dst[3];
  std::vector<Column> columns;
  columns.reserve(static_cast<size_t>(ow));
  for (int64_t j = 0; j < ow; ++j) {
    Window ww = window(j, g.strides[1], g.dilations[1], g.kernel[1], g.padBegin[1], g.padEnd[1], w);
    columns.push_back({ww, j * g.strides[1] - g.padBegin[1] + ww.begin * g.dilations[1]});
  }
  int64_t rows = n * oh;
#pragma omp parallel for if (rows * ow * c > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    (max ? poolRow<true> : poolRow<false>)(g, countIncludePad, columns, r / oh, r % oh, x, y);
  }
}

// GCC 12 warns about the undefined pass-through operand inside _mm512_max_ps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) float channelsFirstPlaneMax(const float* x, int64_t n) {
  // Every lane starts from x[0], so a nan there reaches the result and a nan elsewhere is
  // skipped, as in the scalar loop (_mm512_max_ps(a, b) is a > b ? a : b lane by lane).
  __m512 acc[4];
  for (__m512& a : acc) a = _mm512_set1_ps(x[0]);
  int64_t s = 0;
  for (; s + 64 <= n; s += 64) {
    for (int v = 0; v < 4; ++v) acc[v] = _mm512_max_ps(_mm512_loadu_ps(x + s + 16 * v), acc[v]);
  }
  for (; s + 16 <= n; s += 16) acc[0] = _mm512_max_ps(_mm512_loadu_ps(x + s), acc[0]);
  float lanes[64];
  for (int v = 0; v < 4; ++v) _mm512_storeu_ps(lanes + 16 * v, acc[v]);
  float best = x[0];
  for (float l : lanes) best = l > best ? l : best;
  for (; s < n; ++s) best = x[s] > best ? x[s] : best;
  return best;
}
#pragma GCC diagnostic pop

// GCC 12 warns about the undefined pass-through operand inside _mm512_cvtps_pd.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void channelsLastSumRows(const float* x, double* acc, int64_t spatial, int64_t c) {
  // Blocks of 64 channels stay in eight accumulators across all rows; then 8 at a time; the
  // rest scalar.
  int64_t ch = 0;
  for (; ch + 64 <= c; ch += 64) {
    __m512d sum[8];
    for (int v = 0; v < 8; ++v) sum[v] = _mm512_loadu_pd(acc + ch + 8 * v);
    for (int64_t s = 0; s < spatial; ++s) {
      const float* row = x + s * c + ch;
      for (int v = 0; v < 8; ++v) sum[v] = _mm512_add_pd(sum[v], _mm512_cvtps_pd(_mm256_loadu_ps(row + 8 * v)));
    }
    for (int v = 0; v < 8; ++v) _mm512_storeu_pd(acc + ch + 8 * v, sum[v]);
  }
  for (; ch + 8 <= c; ch += 8) {
    __m512d sum = _mm512_loadu_pd(acc + ch);
    for (int64_t s = 0; s < spatial; ++s) sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm256_loadu_ps(x + s * c + ch)));
    _mm512_storeu_pd(acc + ch, sum);
  }
  for (; ch < c; ++ch) {
    for (int64_t s = 0; s < spatial; ++s) acc[ch] += static_cast<double>(x[s * c + ch]);
  }
}
#pragma GCC diagnostic pop

}  // namespace whittle::runtime::cpu
