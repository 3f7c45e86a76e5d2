// ir::Tensor element access for the packed and 8-bit float types of newer opsets.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "whittle/ir/tensor.h"

using namespace whittle;

namespace {

ir::Tensor bytesTensor(ir::DataType type, std::vector<int64_t> dims, const std::vector<uint8_t>& bytes) {
  ir::Tensor t(type, std::move(dims));
  REQUIRE(t.byteSize() == bytes.size());
  std::memcpy(t.mutableRawData(), bytes.data(), bytes.size());
  return t;
}

}  // namespace

TEST_CASE("valueAsDouble decodes the float8 types", "[ir][tensor]") {
  SECTION("E4M3FN: bias 7, no infinities, S.1111.111 is NaN") {
    auto t = bytesTensor(ir::DataType::kFloat8E4M3FN, {5}, {0x38, 0x7E, 0x01, 0xB8, 0x7F});
    CHECK(t.valueAsDouble(0) == 1.0);
    CHECK(t.valueAsDouble(1) == 448.0);
    CHECK(t.valueAsDouble(2) == std::ldexp(1.0, -9));
    CHECK(t.valueAsDouble(3) == -1.0);
    CHECK(std::isnan(t.valueAsDouble(4)));
  }
  SECTION("E4M3FNUZ: bias 8, 0x80 is NaN") {
    auto t = bytesTensor(ir::DataType::kFloat8E4M3FNUZ, {3}, {0x40, 0x7F, 0x80});
    CHECK(t.valueAsDouble(0) == 1.0);
    CHECK(t.valueAsDouble(1) == 240.0);
    CHECK(std::isnan(t.valueAsDouble(2)));
  }
  SECTION("E5M2: bias 15 with IEEE infinities and NaNs") {
    auto t = bytesTensor(ir::DataType::kFloat8E5M2, {5}, {0x3C, 0x7B, 0x7C, 0xFC, 0x7D});
    CHECK(t.valueAsDouble(0) == 1.0);
    CHECK(t.valueAsDouble(1) == 57344.0);
    CHECK(t.valueAsDouble(2) == INFINITY);
    CHECK(t.valueAsDouble(3) == -INFINITY);
    CHECK(std::isnan(t.valueAsDouble(4)));
  }
  SECTION("E5M2FNUZ: bias 16, 0x80 is NaN") {
    auto t = bytesTensor(ir::DataType::kFloat8E5M2FNUZ, {2}, {0x40, 0x80});
    CHECK(t.valueAsDouble(0) == 1.0);
    CHECK(std::isnan(t.valueAsDouble(1)));
  }
}

TEST_CASE("valueAsDouble decodes packed 4-bit types, low nibble first", "[ir][tensor]") {
  auto i4 = bytesTensor(ir::DataType::kInt4, {3}, {0x7F, 0x08});
  CHECK(i4.valueAsDouble(0) == -1.0);
  CHECK(i4.valueAsDouble(1) == 7.0);
  CHECK(i4.valueAsDouble(2) == -8.0);
  auto u4 = bytesTensor(ir::DataType::kUint4, {2}, {0x7F});
  CHECK(u4.valueAsDouble(0) == 15.0);
  CHECK(u4.valueAsDouble(1) == 7.0);
  auto f4 = bytesTensor(ir::DataType::kFloat4E2M1, {4}, {0x72, 0xF1});
  CHECK(f4.valueAsDouble(0) == 1.0);
  CHECK(f4.valueAsDouble(1) == 6.0);
  CHECK(f4.valueAsDouble(2) == 0.5);
  CHECK(f4.valueAsDouble(3) == -6.0);
}

TEST_CASE("byteSize counts the elements, not the buffer behind them", "[ir][tensor]") {
  auto buffer = ir::Buffer::allocate(64);
  ir::Tensor t(ir::DataType::kFloat, {3}, buffer);
  CHECK(t.byteSize() == 12);
  ir::Tensor other(ir::DataType::kFloat, {3});
  std::memcpy(other.mutableRawData(), t.rawData(), 12);
  CHECK(t.bitwiseEqual(other));
}
