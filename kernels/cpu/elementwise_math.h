#pragma once
// Branch-free float32 versions of exp, expm1, log, tanh, sigmoid, softplus, erf and erfc that
// GCC vectorises inside the elementwise loops (libm calls do not vectorise). Accuracy against
// the double-precision libm result: relative error below 1e-6 over the whole range (checked
// in tests/kernels/cpu/elementwise_unary_test.cpp). Double inputs use libm.
//
// Every public function handles nan, +-inf and the overflow/underflow ends explicitly; results
// that would be float subnormals flush to zero (absolute error below 1.2e-38). The *Core
// functions skip that handling for callers that know their argument's range.
//
// A translation unit using these must be compiled with "no-trapping-math" (see the pragma at
// the top of elementwise_unary.cpp): otherwise GCC keeps the selects as branches, and a
// composition of several functions becomes branchy scalar code (tens of times slower).

#include <bit>
#include <cmath>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <cstdint>
#include <limits>

/// Forces inlining: GCC does not inline plain inline functions into the per-ISA clones of
/// WH_SIMD_CLONES loops (their target differs), and a call per element stops vectorisation.
#define WH_ALWAYS_INLINE __attribute__((always_inline)) inline

namespace whittle::runtime::cpu {

/// e^x. Cody-Waite reduction x = n ln2 + r, degree-6 polynomial for e^r (Cephes expf).
WH_ALWAYS_INLINE float expFast(float x) {
  constexpr float kMax = 88.72283935546875f;  // largest x with a finite result
  constexpr float kMin = -87.33654022216796875f;  // smallest x with a normal result
  // NaN clamps to kMin too (the comparison is false), so that n below converts to an integer
  // without undefined behaviour; the result is NaN all the same (last line).
  float xc = x >= kMin ? x : kMin;
  xc = xc > kMax ? kMax : xc;
  // Round to nearest by adding and subtracting 1.5 * 2^23 (vectorises without SSE4.1).
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  // 2^n from the exponent bits; n reaches 128 near kMax, so apply it as 2^(n-1) * 2.
  auto ni = static_cast<int32_t>(n);
  int32_t high = ni > 127 ? 1 : 0;
  float scale = std::bit_cast<float>((ni - high + 127) << 23);
  float y = p * scale * (high != 0 ? 2.0f : 1.0f);
  y = x > kMax ? std::numeric_limits<float>::infinity() : y;
  y = x < kMin ? 0.0f : y;
  return x != x ? x : y;
}

/// e^x for x in [-87.33, 88.37] (no clamping or special values, for callers that know their
/// range: 2^n stays a normal float).
WH_ALWAYS_INLINE float expCore(float x) {
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  auto ni = static_cast<int32_t>(n);
  return p * std::bit_cast<float>((ni + 127) << 23);
}

/// log(x) for positive, normal, finite x (no special values).
WH_ALWAYS_INLINE float logCore(float x) {
  uint32_t b = std::bit_cast<uint32_t>(x);
  auto e = static_cast<int32_t>(b >> 23) - 126;
  float m = std::bit_cast<float>((b & 0x007fffffu) | 0x3f000000u);  // in [0.5, 1)
  bool lowM = m < 0.707106781186547524f;
  e -= lowM ? 1 : 0;
  m = (lowM ? m + m : m) - 1.0f;
  float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  auto fe = static_cast<float>(e);
  float y = p * m * z;
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  y = m + y;
  return y + fe * 0.693359375f;
}

/// e^x - 1, accurate near 0 (a Taylor polynomial for |x| < 0.5).
WH_ALWAYS_INLINE float expm1Fast(float x) {
  float p = 1.0f / 362880.0f;
  p = p * x + 1.0f / 40320.0f;
  p = p * x + 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  float small = (p * x) * x + x;
  float big = expFast(x) - 1.0f;
  return std::fabs(x) < 0.5f ? small : big;
}

/// Natural logarithm (Cephes logf): x = m 2^e with m in [sqrt(1/2), sqrt(2)), degree-8
/// polynomial for log(m).
WH_ALWAYS_INLINE float logFast(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  // Scale subnormals up by 2^23 so that the exponent field is meaningful.
  bool sub = bits < 0x00800000u;
  float xs = sub ? x * 8388608.0f : x;
  uint32_t b = std::bit_cast<uint32_t>(xs);
  auto e = static_cast<int32_t>((b >> 23) & 0xffu) - 126;
  float m = std::bit_cast<float>((b & 0x007fffffu) | 0x3f000000u);  // in [0.5, 1)
  bool lowM = m < 0.707106781186547524f;
  e -= lowM ? 1 : 0;
  m = lowM ? m + m - 1.0f : m - 1.0f;
  float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float fe = static_cast<float>(e) - (sub ? 23.0f : 0.0f);
  float y = p * m * z;
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  y = m + y;
  y = y + fe * 0.693359375f;
  y = x == std::numeric_limits<float>::infinity() ? x : y;
  y = x == 0.0f ? -std::numeric_limits<float>::infinity() : y;
  y = (x < 0.0f || x != x) ? std::numeric_limits<float>::quiet_NaN() : y;
  return y;
}

/// log(1 + e^x) = max(x, 0) + log1p(e^-|x|), with log1p(e) = log(u) e / (u - 1), u = 1 + e:
/// never overflows and keeps the tiny results of very negative x. Only the core exp and log
/// run (their arguments stay in range), which keeps the composition branch-free.
WH_ALWAYS_INLINE float softplusFast(float x) {
  float ax = std::fabs(x);
  float na = ax < 87.0f ? -ax : -87.0f;
  float e = expCore(na);  // in [1.6e-38, 1]
  float u = 1.0f + e;     // in [1, 2]
  float d = u - 1.0f;
  float lp = d == 0.0f ? e : logCore(u) * (e / d);
  float y = (x > 0.0f ? x : 0.0f) + lp;
  return x != x ? x : y;
}

/// Hyperbolic tangent: Eigen's rational approximation (odd degree 13 over even degree 6),
/// clamped to +-7.9053 where it reaches 1, and tanh(x) = x below |x| 0.0004.
WH_ALWAYS_INLINE float tanhFast(float a) {
  float x = a < 7.90531110763549805f ? a : 7.90531110763549805f;
  x = x > -7.90531110763549805f ? x : -7.90531110763549805f;
  float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  float y = p / q;
  y = std::fabs(a) < 0.0004f ? a : y;
  return a != a ? a : y;
}

/// 1 / (1 + e^-x).
WH_ALWAYS_INLINE float sigmoidFast(float x) {
  float y = 1.0f / (1.0f + expFast(-x));
  return x != x ? x : y;
}

/// erfc(z) for z >= 0 (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). z is
/// clamped to 9 (erfc(9) = 4e-37), which keeps the exponent in expCore's range.
WH_ALWAYS_INLINE float erfcPositiveFast(float z) {
  z = z < 9.0f ? z : 9.0f;
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * expCore(p - z * z);
}

/// The error function: Eigen's rational approximation (odd degree 13 over even degree 8),
/// clamped to +-4 where erf rounds to +-1 in float.
WH_ALWAYS_INLINE float erfFast(float a) {
  float x = a < 4.0f ? a : 4.0f;
  x = x > -4.0f ? x : -4.0f;
  float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 - 2.10102402082508e-06f;
  p = p * x2 - 5.69250639462346e-05f;
  p = p * x2 - 7.34990630326855e-04f;
  p = p * x2 - 2.95459980854025e-03f;
  p = p * x2 - 1.60960333262415e-02f;
  p = p * x;
  float q = -1.45660718464996e-05f;
  q = q * x2 - 2.13374055278905e-04f;
  q = q * x2 - 1.68282697438203e-03f;
  q = q * x2 - 7.37332916720468e-03f;
  q = q * x2 - 1.42647390514189e-02f;
  float y = p / q;
  return a != a ? a : y;
}

/// erfc(x) for any x: erfc(-x) = 2 - erfc(x). Keeps its relative accuracy in the tail where
/// 1 - erf(x) would cancel (Gelu of negative x).
WH_ALWAYS_INLINE float erfcFast(float x) {
  float e = erfcPositiveFast(std::fabs(x));
  float y = x < 0.0f ? 2.0f - e : e;
  return x != x ? x : y;
}

/// y = sqrt(x), exact. GCC does not vectorise std::sqrt unless -fno-math-errno is on the
/// command line (a function-level optimize pragma does not reach it), so this uses SSE's
/// sqrtps directly, which every x86-64 has and which is IEEE-exact.
WH_ALWAYS_INLINE void sqrtFloats(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__SSE2__)
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(y + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#endif
  for (; i < n; ++i) y[i] = std::sqrt(x[i]);
}

}  // namespace whittle::runtime::cpu
