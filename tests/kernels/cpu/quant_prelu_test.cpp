// com.whittle.internal QLinearPRelu (kernels/cpu/quant_prelu.cpp) against its definition, the QDQ
// group's three float ops computed here one by one (DQ, PRelu, then ONNX's QuantizeLinear):
// equal bytes, for uint8 and int8 on both sides, slopes per channel and one slope, channels-first
// planes and [N, C] rows, lengths that leave vector tails, and a tensor large enough to run on
// two threads. (The channels-last rows are checked through a session in
// tests/runtime/lower_qdq_prelu_test.cpp.)
#include <catch2/catch.hpp>

#include <random>

#include "kernels/cpu/quant_test_util.h"
#include "whittle/runtime/session.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;

namespace {

struct Case {
  std::vector<int64_t> dims;
  bool perChannel;
};

int32_t definition(int32_t x, float slope, float xs, int32_t xz, float ys, int32_t yz, DataType yType) {
  float v = static_cast<float>(x - xz) * xs;
  v = v < 0.0f ? v * slope : v;
  return refQuantize(v, ys, yz, yType);
}

}  // namespace

TEST_CASE("QLinearPRelu equals DequantizeLinear, PRelu, QuantizeLinear computed one by one", "[kernels][quant]") {
  std::mt19937_64 rng(11);
  const std::vector<Case> cases = {{{1, 28, 5, 7}, true},  {{2, 3, 4, 4}, true},  {{3, 48}, true},
                                   {{1, 17}, true},         {{1000}, false},      {{2, 5, 3, 3}, false},
                                   {{1, 3, 200, 120}, true}};
  for (DataType xType : {DataType::kUint8, DataType::kInt8}) {
    for (DataType yType : {DataType::kUint8, DataType::kInt8}) {
      for (const Case& c : cases) {
        CAPTURE(ir::dataTypeName(xType), ir::dataTypeName(yType), c.dims, c.perChannel);
        const int64_t n = numel(c.dims);
        const int64_t channels = c.dims.size() >= 2 ? c.dims[1] : c.dims[0];
        const int32_t xlo = typeMin(xType), ylo = typeMin(yType);
        const std::vector<int32_t> xs = randomInts(rng, n, xlo, xlo + 255);
        // Slopes of both signs and above one, so that saturation is reached on both ends.
        const std::vector<float> slope = randomFloats(rng, c.perChannel ? channels : 1, -1.5f, 2.5f);
        const float xScale = 0.037f, yScale = 0.051f;
        const int32_t xZp = xlo + 117, yZp = ylo + 140;
        GraphBuilder gb;
        ir::Value* x = gb.input("x", xType, c.dims);
        ir::Value* node = gb.node(
            "QLinearPRelu",
            {x, gb.constant("xs", scalar(xScale)), gb.constant("xz", scalar(xType, xZp)),
             gb.constant("slope", floatTensor({static_cast<int64_t>(slope.size())}, slope)), gb.constant("ys", scalar(yScale)),
             gb.constant("yz", scalar(yType, yZp))},
            {}, "prelu", "com.whittle.internal");
        gb.output(node, yType, c.dims);
        ir::Model model = gb.build(13);
        const int64_t inner = c.dims.size() >= 2 ? n / (c.dims[0] * channels) : 1;
        std::vector<int32_t> want(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          const size_t ch = c.perChannel ? static_cast<size_t>((i / inner) % channels) : 0;
          want[static_cast<size_t>(i)] = definition(xs[static_cast<size_t>(i)], slope[ch], xScale, xZp, yScale, yZp, yType);
        }
        for (int threads : {1, 2}) {
          const std::vector<ir::Tensor> out = runOutputs(model, {{"x", intTensor(xType, c.dims, xs)}}, threads);
          REQUIRE(out.size() == 1);
          REQUIRE(out[0].dtype() == yType);
          CHECK(intsOf(out[0]) == want);
        }
      }
    }
  }
}

TEST_CASE("QLinearPRelu refuses a slope that is not one value or one per channel", "[kernels][quant]") {
  GraphBuilder gb;
  ir::Value* x = gb.input("x", DataType::kUint8, {1, 4, 2, 2});
  ir::Value* node = gb.node("QLinearPRelu",
                            {x, gb.constant("xs", scalar(0.1f)), gb.constant("xz", scalar(DataType::kUint8, 128)),
                             gb.constant("slope", floatTensor({3}, {0.1f, 0.2f, 0.3f})), gb.constant("ys", scalar(0.1f)),
                             gb.constant("yz", scalar(DataType::kUint8, 128))},
                            {}, "prelu", "com.whittle.internal");
  gb.output(node, DataType::kUint8, {1, 4, 2, 2});
  ir::Model model = gb.build(13);
  auto session = runtime::Session::create(model, {});
  REQUIRE(session.isOk());
  auto out = (*session)->run({{"x", intTensor(DataType::kUint8, {1, 4, 2, 2}, std::vector<int32_t>(16, 3))}});
  REQUIRE_FALSE(out.isOk());
  CHECK_THAT(out.status().message(), Catch::Contains("slope has 3 values"));
}
