// The layout ops' kernels (kernels/cpu/conv_layout.cpp): ChannelGather channels last against a
// naive gather, for float32 maps that take each path of the 16-output chunks (one to eight
// windows, element by element, windows clamped to the end of the row, a short last chunk), for
// bytes (64-output chunks) and for a channel count below 16 and 2-byte elements (the scalar loop).
#include <catch2/catch.hpp>
#include <numeric>

#include "support/graph_builder.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::GraphBuilder;

namespace {

/// y[p, j] = x[p, map[j]] for every pixel p of a channels-last x [N, H, W, C].
ir::Tensor naiveGather(const ir::Tensor& x, const std::vector<int64_t>& map) {
  std::vector<int64_t> dims = x.dims();
  const int64_t c = dims[3];
  dims[3] = static_cast<int64_t>(map.size());
  ir::Tensor y(x.dtype(), dims);
  const size_t size = ir::elementSize(x.dtype());
  const int64_t pixels = dims[0] * dims[1] * dims[2];
  for (int64_t p = 0; p < pixels; ++p) {
    for (size_t j = 0; j < map.size(); ++j) {
      std::memcpy(y.mutableRawData() + (static_cast<size_t>(p) * map.size() + j) * size,
                  x.rawData() + static_cast<size_t>(p * c + map[j]) * size, size);
    }
  }
  return y;
}

ir::Tensor runGather(const ir::Tensor& x, const std::vector<int64_t>& map, int threads) {
  GraphBuilder gb(3);
  ir::Value* in = gb.input("x", x.dtype(), x.dims());
  gb.output(gb.node("ChannelGather", {in},
                    {ir::Attribute::makeInts("channels", map), ir::Attribute::makeInt("channels_last", 1)}, "gather",
                    "com.whittle.internal"));
  gb.importDomain("com.whittle.internal", 1);
  return whittle::testing::runOutputs(gb.build(18), {{"x", x}}, threads)[0];
}

/// ShuffleNet's channel shuffle of c channels in g groups: output j reads (j % g) * (c / g) + j / g.
std::vector<int64_t> shuffle(int64_t c, int64_t g) {
  std::vector<int64_t> map;
  for (int64_t j = 0; j < c; ++j) map.push_back((j % g) * (c / g) + j / g);
  return map;
}

std::vector<int64_t> range(int64_t from, int64_t to, int64_t step = 1) {
  std::vector<int64_t> map;
  for (int64_t j = from; j < to; j += step) map.push_back(j);
  return map;
}

}  // namespace

TEST_CASE("ChannelGather channels last matches a naive gather", "[kernels][layout]") {
  struct Case {
    const char* what;
    int64_t c;
    std::vector<int64_t> map;
  };
  std::vector<int64_t> reversed = range(0, 40);
  std::reverse(reversed.begin(), reversed.end());
  std::vector<int64_t> scattered = {0, 47, 3, 29, 16, 1, 46, 30, 8, 40, 2, 33, 5, 18, 44, 11, 7};
  const std::vector<Case> cases = {
      {"split, first half", 48, range(0, 24)},
      {"split, second half (windows clamped to the row's end)", 58, range(29, 58)},
      {"shuffle of two groups", 48, shuffle(48, 2)},
      {"shuffle of three groups", 72, shuffle(72, 3)},
      {"shuffle of four groups", 64, shuffle(64, 4)},
      {"shuffle of eight groups (a window per output)", 128, shuffle(128, 8)},
      {"shuffle of sixteen groups (element by element)", 256, shuffle(256, 16)},
      {"shuffle, channels not a multiple of 16", 40, shuffle(40, 2)},
      {"reversed", 40, reversed},
      {"scattered (element by element), repeats", 48, scattered},
      {"every third channel", 96, range(0, 96, 3)},
      {"exactly 16 channels", 16, shuffle(16, 2)},
      {"fewer than 16 channels", 12, shuffle(12, 3)},
  };
  GraphBuilder gb(17);
  for (const Case& c : cases) {
    INFO(c.what);
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat, {2, 3, 5, c.c});
    for (int threads : {1, 2}) {
      ir::Tensor y = runGather(x, c.map, threads);
      ir::Tensor want = naiveGather(x, c.map);
      REQUIRE(y.dims() == want.dims());
      CHECK(std::memcmp(y.rawData(), want.rawData(), want.byteSize()) == 0);
    }
  }
  SECTION("1-byte elements (64 outputs a vpermb, windows masked at the row's end)") {
    for (const Case& c : cases) {
      INFO(c.what);
      ir::Tensor x = gb.randomTensor(ir::DataType::kUint8, {1, 3, 5, c.c}, 0, 255);
      ir::Tensor y = runGather(x, c.map, 1);
      ir::Tensor want = naiveGather(x, c.map);
      REQUIRE(y.dims() == want.dims());
      CHECK(std::memcmp(y.rawData(), want.rawData(), want.byteSize()) == 0);
    }
  }
  SECTION("2-byte elements") {
    ir::Tensor x = gb.randomTensor(ir::DataType::kFloat16, {1, 2, 3, 32});
    ir::Tensor y = runGather(x, shuffle(32, 2), 1);
    ir::Tensor want = naiveGather(x, shuffle(32, 2));
    CHECK(std::memcmp(y.rawData(), want.rawData(), want.byteSize()) == 0);
  }
}
