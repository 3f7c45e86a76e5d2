// The few-row products (kernels/cpu/gemv.h): the VNNI uint8 x int8 one against plain int32 sums and
// the float32 one against double sums, on sizes that leave partial blocks of rows (k % 4) and
// columns (n % 16, n % 64), with and without a zero point.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/gemv.h"

using namespace whittle::runtime::cpu;

TEST_CASE("int8GemmPacked gives the exact int32 sums of (a - zero) * B", "[kernels][int8]") {
  if (!int8GemvAvailable()) {
    WARN("this CPU has no AVX-512 VNNI: int8GemmPacked is not used here");
    return;
  }
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 256, 1024}, {1, 6, 24}, {3, 29, 70}, {5, 4, 16}, {2, 1, 1}}) {
    INFO("m " << m << " k " << k << " n " << n);
    const int64_t ldb = n + 3, lda = k + 2, ldacc = n + 1;
    std::vector<int8_t> b(static_cast<size_t>(k * ldb));
    for (int8_t& v : b) v = static_cast<int8_t>(s8(rng));
    std::vector<uint8_t> a(static_cast<size_t>(m * lda));
    for (uint8_t& v : a) v = static_cast<uint8_t>(u8(rng));
    const PackedInt8B packed = packInt8B(b.data(), k, n, ldb);
    for (int32_t zero : {0, 131}) {
      std::vector<int32_t> got(static_cast<size_t>(m * ldacc), -7);
      int8GemmPacked(m, a.data(), lda, zero, packed, got.data(), ldacc);
      int mismatches = 0;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          int32_t expected = 0;
          for (int64_t r = 0; r < k; ++r) expected += (static_cast<int32_t>(a[i * lda + r]) - zero) * b[r * ldb + j];
          mismatches += got[i * ldacc + j] != expected ? 1 : 0;
        }
        // Past n the row is not written.
        if (ldacc > n) CHECK(got[i * ldacc + n] == -7);
      }
      CHECK(mismatches == 0);
    }
  }
}

TEST_CASE("floatGemmPacked gives the float32 product of a few rows", "[kernels]") {
  if (!floatGemmPackedAvailable()) {
    WARN("this CPU has no AVX-512: floatGemmPacked is not used here");
    return;
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 256, 1024}, {2, 7, 70}, {1, 3, 5}, {2, 64, 128}, {3, 5, 64}, {7, 33, 100}, {8, 256, 1024},
                               // last blocks of 2 and 1 vectors (a GRU's 3 x 112 gates), 48 rows (its input projection)
                               {5, 9, 96}, {1, 112, 336}, {48, 56, 672}}) {
    INFO("m " << m << " k " << k << " n " << n);
    const int64_t lda = k + 1, ldb = n + 5, ldc = n + 2;
    std::vector<float> a(static_cast<size_t>(m * lda)), b(static_cast<size_t>(k * ldb));
    for (float& v : a) v = u(rng);
    for (float& v : b) v = u(rng);
    std::vector<float> c(static_cast<size_t>(m * ldc), 42.f);
    floatGemmPacked(m, a.data(), lda, packFloatB(b.data(), k, n, ldb), c.data(), ldc);
    double worst = 0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double expected = 0, scale = 0;
        for (int64_t r = 0; r < k; ++r) {
          expected += static_cast<double>(a[i * lda + r]) * b[r * ldb + j];
          scale += std::abs(static_cast<double>(a[i * lda + r]) * b[r * ldb + j]);
        }
        worst = std::max(worst, std::abs(c[i * ldc + j] - expected) / std::max(scale, 1e-30));
      }
      CHECK(c[i * ldc + n] == 42.f);  // past n the row is not written
    }
    CHECK(worst < 1e-6);  // float32 rounding of k terms, relative to the sum of magnitudes
  }
}
