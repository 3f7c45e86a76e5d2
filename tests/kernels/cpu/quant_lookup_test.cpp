// com.whittle.internal QLinearLookup (kernels/cpu/quant_lookup.cpp): Y[i] = Table[byte of X[i]],
// on lengths that exercise the 64-byte vector body and the scalar tail, at 1 and 2 threads.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/cpu/quant_test_util.h"
#include "whittle/runtime/backend.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;

TEST_CASE("QLinearLookup maps every byte through its table", "[kernels][quant]") {
  std::mt19937_64 rng(7);
  for (DataType xType : {DataType::kUint8, DataType::kInt8}) {
    for (DataType yType : {DataType::kUint8, DataType::kInt8}) {
      for (int64_t n : {int64_t{1}, int64_t{63}, int64_t{64}, int64_t{1000}, int64_t{70000}}) {
        CAPTURE(static_cast<int>(xType), static_cast<int>(yType), n);
        const int32_t xlo = xType == DataType::kInt8 ? -128 : 0, ylo = yType == DataType::kInt8 ? -128 : 0;
        const std::vector<int32_t> xs = randomInts(rng, n, xlo, xlo + 255);
        const std::vector<int32_t> table = randomInts(rng, 256, ylo, ylo + 255);
        GraphBuilder gb;
        ir::Value* x = gb.input("x", xType, {n});
        ir::Value* t = gb.constant("table", intTensor(yType, {256}, table));
        gb.output(gb.node("QLinearLookup", {x, t}, {}, "lut", "com.whittle.internal"), yType, {n});
        ir::Model model = gb.build(13);
        for (int threads : {1, 2}) {
          const std::vector<ir::Tensor> out = runOutputs(model, {{"x", intTensor(xType, {n}, xs)}}, threads);
          REQUIRE(out.size() == 1);
          REQUIRE(out[0].dtype() == yType);
          int64_t wrong = 0;
          for (int64_t i = 0; i < n; ++i) {
            const auto byte = static_cast<uint8_t>(xs[static_cast<size_t>(i)]);
            const int32_t want = table[byte];
            const int32_t got = yType == DataType::kInt8 ? out[0].data<int8_t>()[i] : out[0].data<uint8_t>()[i];
            wrong += got != want;
          }
          CHECK(wrong == 0);
        }
      }
    }
  }
}
