// InputStatsCollector: X^T X, mean |x|, min, max, max |x| and mean x^2 over batches equal the direct sums; a padded batch
// counts its real samples only; a tensor with the wrong channel count is an error.
#include "whittle/quant/collectors.h"

#include <catch2/catch.hpp>
#include <cmath>

using namespace whittle;

TEST_CASE("the input statistics collector streams X^T X and mean |x|", "[quant][weights][calibration]") {
  const int64_t k = 3;
  quant::InputStatsCollector c(k, /*secondMoment=*/true);
  // Batch 1: [1, 2, 3] rows (2 rows); batch 2: padded to 2 samples of 1 row, 1 real.
  ir::Tensor a = ir::Tensor::fromVector(ir::DataType::kFloat, {1, 2, 3}, std::vector<float>{1, -2, 0, 3, 1, -1});
  ir::Tensor b = ir::Tensor::fromVector(ir::DataType::kFloat, {2, 1, 3}, std::vector<float>{2, 0, 4, 9, 9, 9});
  REQUIRE(c.collect("x", a, 1).isOk());
  REQUIRE(c.collect("x", b, 1).isOk());
  CHECK(c.rows() == 3);
  const std::vector<std::vector<double>> x{{1, -2, 0}, {3, 1, -1}, {2, 0, 4}};
  std::vector<double> h = c.secondMoment();
  REQUIRE(h.size() == 9);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      double e = 0;
      for (const auto& r : x) e += r[static_cast<size_t>(i)] * r[static_cast<size_t>(j)];
      CHECK(h[static_cast<size_t>(i * 3 + j)] == Approx(e / 3));
    }
  }
  std::vector<float> m = c.meanAbs();
  CHECK(m[0] == Approx(2.0f));
  CHECK(m[1] == Approx(1.0f));
  CHECK(m[2] == Approx(5.0f / 3));
  // max |x| and mean x^2 per channel (SmoothQuant), over the real rows only (not the 9s).
  CHECK(c.maxAbs() == std::vector<float>{3, 2, 4});
  CHECK(c.minValue() == std::vector<float>{1, -2, -1});
  CHECK(c.maxValue() == std::vector<float>{3, 1, 4});
  std::vector<double> sq = c.meanSquare();
  CHECK(sq[0] == Approx(14.0 / 3));
  CHECK(sq[1] == Approx(5.0 / 3));
  CHECK(sq[2] == Approx(17.0 / 3));
  ir::Tensor wrong(ir::DataType::kFloat, {2, 4});
  CHECK_FALSE(c.collect("x", wrong, 1).isOk());
}
