// MatMulNBits at accuracy_level 4 (int8 activations): the per-block quantization of A (ONNX
// Runtime's rule, rounding half to even, the AVX-512 path bit-identical to the scalar one), and
// the scalar reference and the VNNI kernel against the exact product of the quantized A with the
// dequantized weights, and against the float product within the bound int8 rounding of A allows.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "cpu/matmul_nbits.h"
#include "support/nbits_data.h"

using namespace whittle;
using runtime::cpu::nbits::QuantizedRows;
using testing::makeData;
using testing::NBitsCase;
using testing::NBitsData;

TEST_CASE("int8 rows: scale max|a| / 127, round half to even, zeros past K, vector = scalar", "[kernels][nbits]") {
  // Block 16, max|a| = 127: the inverse scale is exactly 1, so the ties stay ties.
  std::vector<float> a = {127.0f, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, -126.6f, 0.49f, 3.0f, 0, 0, 0, 0, 0, 0, 0, -2.0f, 1.0f};
  const std::vector<int8_t> want = {127, 2, -4, 0, 0, 2, -127, 0, 3, 0, 0, 0, 0, 0, 0, 0, -127, 64};
  std::vector<bool> modes = {false};
  if (runtime::cpu::nbits::int8VnniAvailable()) modes.push_back(true);
  for (bool vector : modes) {
    CAPTURE(vector);
    QuantizedRows q;
    runtime::cpu::nbits::quantizeRows(a.data(), 1, 18, 16, 32, vector, q);
    REQUIRE(q.q.size() == 32);
    for (size_t i = 0; i < want.size(); ++i) CHECK(int(q.q[i]) == int(want[i]));
    for (size_t i = want.size(); i < 32; ++i) CHECK(int(q.q[i]) == 0);
    CHECK(q.scale[0] == 1.0f);
    CHECK(q.sum[0] == 127 + 2 - 4 + 2 - 127 + 3);
    CHECK(q.scale[1] == 2.0f / 127.0f);
    CHECK(q.sum[1] == Approx((2.0 / 127.0) * (-127 + 64)));  // 1 * 127 / 2 = 63.5 rounds to 64
  }
  if (modes.size() == 2) {  // random rows, K off the block: the two paths give the same bits
    std::mt19937_64 rng(3);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> r(5 * 300);
    for (float& v : r) v = nd(rng);
    QuantizedRows s, v;
    runtime::cpu::nbits::quantizeRows(r.data(), 5, 300, 64, 320, false, s);
    runtime::cpu::nbits::quantizeRows(r.data(), 5, 300, 64, 320, true, v);
    CHECK(s.q == v.q);
    CHECK(s.scale == v.scale);
    CHECK(s.sum == v.sum);
  }
}

namespace {

/// The exact product of A as quantized (per block) with the dequantized weights, and the bound on
/// its distance from the float product: sum_k |w| * max|a in k's block| / 254 (half a step of A).
void int8Reference(const NBitsCase& c, const NBitsData& d, std::vector<double>& exact, std::vector<double>& slack) {
  const int64_t blocks = (c.k + c.block - 1) / c.block;
  QuantizedRows q;
  runtime::cpu::nbits::quantizeRows(d.a.data(), c.m, c.k, c.block, blocks * c.block, false, q);
  exact.assign(static_cast<size_t>(c.m * c.n), 0.0);
  slack.assign(exact.size(), 1e-6);
  for (int64_t r = 0; r < c.m; ++r) {
    for (int64_t col = 0; col < c.n; ++col) {
      double acc = c.bias ? d.bias[static_cast<size_t>(col)] : 0.0, bound = 0.0;
      for (int64_t k = 0; k < c.k; ++k) {
        const double sa = q.scale[static_cast<size_t>(r * blocks + k / c.block)];
        const double w = d.w[static_cast<size_t>(k * c.n + col)];
        acc += sa * q.q[static_cast<size_t>(r * blocks * c.block + k)] * w;
        bound += std::abs(w) * sa * 127.0 / 254.0;
      }
      exact[static_cast<size_t>(r * c.n + col)] = acc;
      slack[static_cast<size_t>(r * c.n + col)] += bound;
    }
  }
}

}  // namespace

TEST_CASE("int8-activation MatMulNBits: scalar reference and VNNI against the exact quantized product", "[kernels][nbits]") {
  const std::vector<NBitsCase> cases = {
      // m, k, n, bits, block, zero points, bias
      {1, 64, 16, 4, 32, false, false},  {1, 100, 7, 4, 32, true, true},    {1, 576, 33, 4, 128, false, false},
      {3, 40, 9, 4, 16, true, false},    {2, 200, 31, 8, 64, true, true},   {1, 130, 5, 8, 128, false, true},
      {4, 48, 17, 4, 16, false, true},   {5, 100, 7, 4, 32, true, true},    {512, 96, 70, 4, 32, true, true},
      {512, 130, 33, 8, 64, false, false}, {17, 300, 200, 4, 128, true, false}, {70, 576, 48, 4, 128, false, false},
      // M = 1 runs 8 panels at a time, M = 2 four: N = 150 and 100 leave pairs and single panels after them.
      {1, 200, 150, 4, 32, true, true},  {2, 136, 100, 8, 16, true, false},  {1, 256, 130, 8, 128, false, true},
  };
  std::mt19937_64 rng(41);
  for (const NBitsCase& c : cases) {
    for (bool floatZp : {false, true}) {
      if (floatZp && !c.zeroPoints) continue;
      NBitsCase cc = c;
      cc.floatZeroPoints = floatZp;
      const NBitsData d = makeData(cc, rng);
      auto packed = runtime::cpu::nbits::packMatMulNBits(d.b, d.scales, cc.zeroPoints ? &d.zp : nullptr, cc.k, cc.n, cc.bits,
                                                         cc.block, "t");
      REQUIRE(packed.isOk());
      const runtime::cpu::nbits::PackedNBitsI8 w = runtime::cpu::nbits::packInt8(*packed);
      std::vector<double> exact, slack;
      int8Reference(cc, d, exact, slack);
      std::vector<bool> modes = {false};
      if (runtime::cpu::nbits::int8VnniAvailable()) modes.push_back(true);
      for (bool vnni : modes) {
        for (int threads : {1, 2}) {
          CAPTURE(cc.m, cc.k, cc.n, cc.bits, cc.block, cc.zeroPoints, floatZp, cc.bias, vnni, threads);
          std::vector<float> y(static_cast<size_t>(cc.m * cc.n), -7.0f);
          QuantizedRows scratch;
          REQUIRE(runtime::cpu::nbits::matmulInt8(w, d.a.data(), cc.m, cc.bias ? d.bias.data() : nullptr, y.data(), threads,
                                                  vnni, scratch)
                      .isOk());
          // Against the exact quantized product: float rounding of the sums only.
          double worst = 0, worstFloat = 0;
          for (int64_t r = 0; r < cc.m; ++r) {
            for (int64_t col = 0; col < cc.n; ++col) {
              const size_t i = static_cast<size_t>(r * cc.n + col);
              double mag = 1e-6, full = cc.bias ? d.bias[static_cast<size_t>(col)] : 0.0;
              for (int64_t k = 0; k < cc.k; ++k) {
                const double p = d.a[static_cast<size_t>(r * cc.k + k)] * d.w[static_cast<size_t>(k * cc.n + col)];
                mag += std::abs(p);
                full += p;
              }
              worst = std::max(worst, std::abs(y[i] - exact[i]) / mag);
              worstFloat = std::max(worstFloat, std::abs(y[i] - full) / slack[i]);
            }
          }
          CHECK(worst < 2e-6 * std::sqrt(static_cast<double>(cc.k)) + 1e-6);
          // Against the float product: within half a quantization step of A per term.
          CHECK(worstFloat <= 1.0);
        }
      }
    }
  }
}
