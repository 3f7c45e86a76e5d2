// Block-wise weight quantization: RTN error bounds for 4 and 8 bits, the clipping search,
// short last blocks, and the MatMulNBits / DequantizeLinear layouts bit by bit.
#include "whittle/quant/blockwise.h"

#include <catch2/catch.hpp>
#include <random>

using namespace whittle;

namespace {

std::vector<float> uniformWeights(int64_t n, double lo, double hi, uint64_t seed = 3) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(static_cast<float>(lo), static_cast<float>(hi));
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = d(rng);
  return w;
}

}  // namespace

TEST_CASE("RTN reconstruction error stays within the rounding bound for 4 and 8 bits", "[quant][weights]") {
  const int64_t rows = 48, k = 128;
  std::vector<float> w = uniformWeights(rows * k, -1, 1);
  quant::BlockConfig c4{4, 32, true, false};
  quant::BlockQuantized q4 = quant::quantizeRtn(w, rows, k, c4);
  CHECK(q4.blocks == 4);
  // Uniform weights, step s = max|w| / 7: error variance s^2 / 12 against E[w^2] = 1/3.
  const double e4 = quant::relativeWeightError(w, q4);
  CHECK(e4 < 0.006);
  CHECK(e4 > 0.001);
  quant::BlockConfig c8{8, 32, true, false};
  const double e8 = quant::relativeWeightError(w, quant::quantizeRtn(w, rows, k, c8));
  CHECK(e8 < 2.5e-5);
  // The clipping search never does worse than plain min/max.
  quant::BlockConfig search = c4;
  search.clipSearch = true;
  CHECK(quant::relativeWeightError(w, quant::quantizeRtn(w, rows, k, search)) <= e4);
  // Per output channel (block 0) with 8 bits: one block per row.
  quant::BlockConfig perRow{8, 0, true, true};
  REQUIRE(quant::checkBlockConfig(perRow).isOk());
  CHECK(quant::quantizeRtn(w, rows, k, perRow).blocks == 1);
}

TEST_CASE("asymmetric blocks fit one-sided weights better than symmetric ones", "[quant][weights]") {
  const int64_t rows = 16, k = 64;
  std::vector<float> w = uniformWeights(rows * k, 0.5, 2.0);
  const double sym = quant::relativeWeightError(w, quant::quantizeRtn(w, rows, k, {4, 32, true, true}));
  const double asym = quant::relativeWeightError(w, quant::quantizeRtn(w, rows, k, {4, 32, false, true}));
  CHECK(asym < 0.5 * sym);
}

TEST_CASE("a block that does not divide K leaves the last block short", "[quant][weights]") {
  const int64_t rows = 4, k = 80;
  std::vector<float> w = uniformWeights(rows * k, -1, 1);
  quant::BlockQuantized q = quant::quantizeRtn(w, rows, k, {4, 32, true, true});
  CHECK(q.blocks == 3);
  CHECK(quant::relativeWeightError(w, q) < 0.01);
  ir::Tensor b = quant::packMatMulNBitsWeight(q);
  CHECK(b.dims() == std::vector<int64_t>{4, 3, 16});
  // The padding of the last block (k 80..95) holds the zero point, 8 for symmetric blocks.
  const uint8_t* bytes = b.data<uint8_t>();
  for (int64_t j = 8; j < 16; ++j) CHECK(bytes[2 * 16 + j] == 0x88);
}

TEST_CASE("MatMulNBits and DequantizeLinear layouts put the even element in the low nibble", "[quant][weights]") {
  // One row of 32 values: codes count up from the zero point.
  std::vector<float> w(32);
  for (int i = 0; i < 32; ++i) w[static_cast<size_t>(i)] = static_cast<float>((i % 16) - 8);
  quant::BlockQuantized q = quant::quantizeRtn(w, 1, 32, {4, 32, false, false});
  REQUIRE(q.scales[0] == Approx(1.0f));
  REQUIRE(q.zeroPoints[0] == 8);
  ir::Tensor b = quant::packMatMulNBitsWeight(q);
  CHECK(b.data<uint8_t>()[0] == 0x10);  // codes 0 (low) and 1 (high)
  CHECK(b.data<uint8_t>()[1] == 0x32);
  ir::Tensor zp = quant::packMatMulNBitsZeroPoints(q);
  CHECK(zp.dims() == std::vector<int64_t>{1, 1});
  CHECK(zp.data<uint8_t>()[0] == 0x08);
  quant::QdqTensors t = quant::toQdqTensors(q, /*transposed=*/true);
  CHECK(t.values.dtype() == ir::DataType::kUint4);
  CHECK(t.values.dims() == std::vector<int64_t>{32, 1});
  CHECK(t.values.data<uint8_t>()[0] == 0x10);
  CHECK(t.scales.dims() == std::vector<int64_t>{1, 1});
  REQUIRE(t.zeroPoints.has_value());
  CHECK(t.zeroPoints->dtype() == ir::DataType::kUint4);
  // Symmetric: signed int4 values, no zero point; -8 is 0x8 in two's complement.
  quant::BlockQuantized s = quant::quantizeRtn(w, 1, 32, {4, 32, true, false});
  quant::QdqTensors ts = quant::toQdqTensors(s, /*transposed=*/false);
  CHECK(ts.values.dtype() == ir::DataType::kInt4);
  CHECK_FALSE(ts.zeroPoints.has_value());
  CHECK(s.dequantized(0, 0) == Approx(-8.0f).margin(0.6f));
}

TEST_CASE("bits and block sizes outside what the formats store are refused", "[quant][weights]") {
  CHECK_FALSE(quant::checkBlockConfig({3, 32, true, true}).isOk());
  CHECK_FALSE(quant::checkBlockConfig({4, 24, true, true}).isOk());
  CHECK_FALSE(quant::checkBlockConfig({4, 8, true, true}).isOk());
  CHECK_FALSE(quant::checkBlockConfig({4, 0, true, true}).isOk());
  CHECK(quant::checkBlockConfig({8, 0, true, true}).isOk());
  CHECK(quant::checkBlockConfig({4, 256, false, true}).isOk());
}
