// MatMulNBits at accuracy_level 4: int8 activations, integer dot products (see matmul_nbits.h,
// "accuracy_level 4"). The scalar reference and the AVX-512 VNNI kernel compute the same integer
// dot products from the same quantized rows; only the order of the float sums differs.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/matmul_nbits.h"

namespace whittle::runtime::cpu::nbits {
namespace {

constexpr int64_t kPanel = 16;  // columns per panel: one vpdpbusd's int32 lanes

/// Code of column `col` at k in the column layout of packMatMulNBits.
int32_t columnCode(const PackedNBits& w, int64_t col, int64_t k) {
  const uint8_t* q = w.q.data() + col * w.columnBytes();
  if (w.bits == 8) return q[k];
  const int64_t j = k % 32;
  const uint8_t byte = q[k / 32 * 16 + (j & 15)];
  return j < 16 ? (byte & 15) : (byte >> 4);
}

/// Code of column `col` at k in the int8 layout (PackedNBitsI8).
int32_t panelCode(const PackedNBitsI8& w, int64_t col, int64_t k) {
  const int64_t c = col % kPanel, j = k % 8;
  const uint8_t* octet = w.q.data() + col / kPanel * w.panelBytes() + k / 8 * w.octetBytes();
  if (w.bits == 8) return octet[j / 4 * 64 + 4 * c + (j & 3)];
  const uint8_t byte = octet[4 * c + (j & 3)];
  return j < 4 ? (byte & 15) : (byte >> 4);
}

// ---- scalar reference ----

void quantizeBlockScalar(const float* a, int64_t len, int64_t blockSize, int8_t* q, float& scale, float& sum) {
  float amax = 0.0f;
  for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(a[i]));
  const float inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
  int32_t total = 0;
  for (int64_t i = 0; i < blockSize; ++i) {
    // nearbyint rounds half to even in the default mode, as vcvtps2dq does.
    const int32_t v = i < len ? static_cast<int32_t>(std::nearbyint(a[i] * inverse)) : 0;
    q[i] = static_cast<int8_t>(v);
    total += v;
  }
  scale = amax / 127.0f;
  sum = scale * static_cast<float>(total);
}

void matmulScalar(const PackedNBitsI8& w, const QuantizedRows& qa, int64_t m, float* y, int64_t n0, int64_t n1) {
  for (int64_t r = 0; r < m; ++r) {
    const int8_t* ar = qa.q.data() + r * w.kq;
    for (int64_t col = n0; col < n1; ++col) {
      const int64_t at = col / kPanel * w.blocks * kPanel + col % kPanel;
      float acc = 0.0f;
      for (int64_t b = 0; b < w.blocks; ++b) {
        int32_t dot = 0;
        const int64_t end = std::min((b + 1) * w.blockSize, w.octets * 8);
        for (int64_t k = b * w.blockSize; k < end; ++k) dot += ar[k] * panelCode(w, col, k);
        const float s = w.scale[static_cast<size_t>(at + b * kPanel)], o = w.offset[static_cast<size_t>(at + b * kPanel)];
        acc += static_cast<float>(dot) * (qa.scale[static_cast<size_t>(r * w.blocks + b)] * s) +
               o * qa.sum[static_cast<size_t>(r * w.blocks + b)];
      }
      y[r * w.n + col] = acc;
    }
  }
}

// ---- AVX-512 VNNI ----

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define WH_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

WH_VNNI void quantizeBlockAvx512(const float* a, int64_t len, int64_t blockSize, int8_t* q, float& scale, float& sum) {
  __m512 amax = _mm512_setzero_ps();
  for (int64_t i = 0; i < len; i += 16) {
    const __mmask16 mask = len - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (len - i)) - 1);
    amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask, a + i)));
  }
  const float top = _mm512_reduce_max_ps(amax);
  const __m512 inverse = _mm512_set1_ps(top != 0.0f ? 127.0f / top : 0.0f);
  __m512i total = _mm512_setzero_si512();
  for (int64_t i = 0; i < blockSize; i += 16) {
    const int64_t left = std::max<int64_t>(0, std::min<int64_t>(16, len - i));
    const __mmask16 mask = left == 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, a + i), inverse));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(v));
    total = _mm512_add_epi32(total, v);
  }
  scale = top / 127.0f;
  sum = scale * static_cast<float>(_mm512_reduce_add_epi32(total));
}

/// Rows [r0, r0 + R) x panels [p0, p0 + CV): per block, integer sums in int32 lanes (one lane per
/// column), then scaled into float accumulators.
template <int R, int CV>
WH_VNNI void tileVnni(const PackedNBitsI8& w, const QuantizedRows& qa, int64_t r0, int64_t p0, float* y) {
  const int64_t perBlock = w.blockSize / 8, ob = w.octetBytes();
  const __m512i low = _mm512_set1_epi8(15);
  __m512 f[R][CV];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < CV; ++c) f[r][c] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < w.blocks; ++b) {
    __m512i acc[R][CV];
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < CV; ++c) acc[r][c] = _mm512_setzero_si512();
    }
    const uint8_t* wb[CV];
    for (int c = 0; c < CV; ++c) wb[c] = w.q.data() + (p0 + c) * w.panelBytes() + b * perBlock * ob;
    const int8_t* ab = qa.q.data() + r0 * w.kq + b * w.blockSize;
    const int64_t octets = std::min(perBlock, w.octets - b * perBlock);  // the last block stops at K
    for (int64_t o = 0; o < octets; ++o) {
      __m512i lo[CV], hi[CV];
      for (int c = 0; c < CV; ++c) {
        if (w.bits == 4) {
          const __m512i bytes = _mm512_loadu_si512(wb[c] + o * 64);
          lo[c] = _mm512_and_si512(bytes, low);
          hi[c] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low);
        } else {
          lo[c] = _mm512_loadu_si512(wb[c] + o * 128);
          hi[c] = _mm512_loadu_si512(wb[c] + o * 128 + 64);
        }
      }
      for (int r = 0; r < R; ++r) {
        int32_t a0, a1;
        std::memcpy(&a0, ab + r * w.kq + o * 8, 4);
        std::memcpy(&a1, ab + r * w.kq + o * 8 + 4, 4);
        const __m512i x0 = _mm512_set1_epi32(a0), x1 = _mm512_set1_epi32(a1);
        for (int c = 0; c < CV; ++c) {
          // Weights (unsigned codes) first, A's int8 second: vpdpbusd's u8 x s8.
          acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], lo[c], x0);
          acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], hi[c], x1);
        }
      }
    }
    for (int c = 0; c < CV; ++c) {
      const size_t at = static_cast<size_t>(((p0 + c) * w.blocks + b) * kPanel);
      const __m512 sv = _mm512_loadu_ps(w.scale.data() + at), ov = _mm512_loadu_ps(w.offset.data() + at);
      for (int r = 0; r < R; ++r) {
        const size_t ra = static_cast<size_t>((r0 + r) * w.blocks + b);
        const __m512 s = _mm512_mul_ps(sv, _mm512_set1_ps(qa.scale[ra]));
        f[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][c]), s, f[r][c]);
        f[r][c] = _mm512_fmadd_ps(ov, _mm512_set1_ps(qa.sum[ra]), f[r][c]);
      }
    }
  }
  for (int c = 0; c < CV; ++c) {
    const int64_t col = (p0 + c) * kPanel, left = std::min<int64_t>(kPanel, w.n - col);
    const __mmask16 mask = left == kPanel ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + (r0 + r) * w.n + col, mask, f[r][c]);
  }
}

template <int CV>
void rowsVnni(const PackedNBitsI8& w, const QuantizedRows& qa, int64_t r0, int64_t r1, int64_t p, float* y) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) tileVnni<4, CV>(w, qa, r, p, y);
  switch (r1 - r) {
    case 1: tileVnni<1, CV>(w, qa, r, p, y); break;
    case 2: tileVnni<2, CV>(w, qa, r, p, y); break;
    case 3: tileVnni<3, CV>(w, qa, r, p, y); break;
    default: break;
  }
}

/// Panels [p0, p1) for every row: rows in blocks of 64 (their quantized A stays in cache while the
/// panels go by), panels in pairs (two independent chains per row for M = 1).
void panelsVnni(const PackedNBitsI8& w, const QuantizedRows& qa, int64_t m, float* y, int64_t p0, int64_t p1) {
  for (int64_t rb = 0; rb < m; rb += 64) {
    const int64_t re = std::min(m, rb + 64);
    int64_t p = p0;
    if (re - rb == 1) {
      for (; p + 8 <= p1; p += 8) tileVnni<1, 8>(w, qa, rb, p, y);
    }
    if (re - rb <= 2) {  // token generation: four weight streams in flight (the registers allow it up to 2 rows)
      for (; p + 4 <= p1; p += 4) rowsVnni<4>(w, qa, rb, re, p, y);
    }
    for (; p + 2 <= p1; p += 2) rowsVnni<2>(w, qa, rb, re, p, y);
    if (p < p1) rowsVnni<1>(w, qa, rb, re, p, y);
  }
}

#pragma GCC diagnostic pop

}  // namespace

bool int8VnniAvailable() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return has;
}

PackedNBitsI8 packInt8(const PackedNBits& w) {
  PackedNBitsI8 p;
  p.k = w.k;
  p.n = w.n;
  p.bits = w.bits;
  p.blockSize = w.blockSize;
  p.blocks = (w.k + w.blockSize - 1) / w.blockSize;
  p.kq = p.blocks * w.blockSize;
  p.octets = (w.k + 7) / 8;
  p.panels = (w.n + kPanel - 1) / kPanel;
  p.q.assign(static_cast<size_t>(p.panels * p.panelBytes()), 0);
  p.scale.assign(static_cast<size_t>(p.panels * p.blocks * kPanel), 0.0f);
  p.offset.assign(p.scale.size(), 0.0f);
  for (int64_t col = 0; col < w.n; ++col) {
    const int64_t c = col % kPanel;
    uint8_t* panel = p.q.data() + col / kPanel * p.panelBytes();
    for (int64_t k = 0; k < w.k; ++k) {  // k past K stay 0 (A's quantized rows are 0 there too)
      const auto v = static_cast<uint8_t>(columnCode(w, col, k));
      uint8_t* octet = panel + k / 8 * p.octetBytes();
      const int64_t j = k % 8;
      if (p.bits == 8) {
        octet[j / 4 * 64 + 4 * c + (j & 3)] = v;
      } else {
        octet[4 * c + (j & 3)] |= static_cast<uint8_t>(j < 4 ? v : v << 4);
      }
    }
    for (int64_t b = 0; b < p.blocks; ++b) {
      const size_t at = static_cast<size_t>((col / kPanel * p.blocks + b) * kPanel + c);
      p.scale[at] = w.scale[static_cast<size_t>(col * w.scaleBlocks + b)];
      p.offset[at] = w.offset[static_cast<size_t>(col * w.scaleBlocks + b)];
    }
  }
  return p;
}

void quantizeRows(const float* a, int64_t m, int64_t k, int64_t blockSize, int64_t kq, bool vector, QuantizedRows& out) {
  const int64_t blocks = kq / blockSize;
  out.q.resize(static_cast<size_t>(m * kq));
  out.scale.resize(static_cast<size_t>(m * blocks));
  out.sum.resize(out.scale.size());
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * blockSize, len = std::max<int64_t>(0, std::min(blockSize, k - k0));
      const size_t at = static_cast<size_t>(r * blocks + b);
      int8_t* q = out.q.data() + r * kq + k0;
      if (vector) {
        quantizeBlockAvx512(a + r * k + k0, len, blockSize, q, out.scale[at], out.sum[at]);
      } else {
        quantizeBlockScalar(a + r * k + k0, len, blockSize, q, out.scale[at], out.sum[at]);
      }
    }
  }
}

Status matmulInt8(const PackedNBitsI8& w, const float* a, int64_t m, const float* bias, float* y, int threads, bool vnni,
                  QuantizedRows& scratch) {
  if (m == 0) return Status::ok();
  quantizeRows(a, m, w.k, w.blockSize, w.kq, vnni, scratch);
  // Enough weight bytes per thread to pay for the fork.
  const int useThreads = static_cast<int>(std::min<int64_t>(threads, m * w.n * w.kq / (1 << 17) + 1));
  if (vnni) {
    parallelColumns(w.panels, useThreads, 1, [&](int64_t p0, int64_t p1) { panelsVnni(w, scratch, m, y, p0, p1); });
  } else {
    parallelColumns(w.n, useThreads, kPanel,
                    [&](int64_t n0, int64_t n1) { matmulScalar(w, scratch, m, y, n0, n1); });
  }
  if (bias != nullptr) {
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < w.n; ++c) y[r * w.n + c] += bias[c];
    }
  }
  return Status::ok();
}

}  // namespace whittle::runtime::cpu::nbits
