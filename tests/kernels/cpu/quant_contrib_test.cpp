// The com.microsoft quantized ops (QLinearAdd, QLinearMul, QLinearGlobalAveragePool,
// QLinearConcat, QLinearLeakyRelu, QLinearSigmoid, QLinearAveragePool) against scalar
// references: dequantize, compute in double, quantize. ONNX Runtime's float arithmetic
// (fused multiply-adds, float sums) may land on the other side of a rounding tie, so the
// element-wise and average-pool ops are allowed one quantization step; the integer-sum and
// table ops must match exactly.
#include <catch2/catch.hpp>

#include "kernels/cpu/quant_test_util.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;

namespace {

constexpr const char* kMs = "com.microsoft";

struct BinaryCase {
  std::vector<int64_t> a, b;
};

const std::vector<BinaryCase> kBinaryCases = {
    {{2, 3, 4, 5}, {2, 3, 4, 5}}, {{2, 3, 4, 5}, {5}}, {{2, 3, 4, 5}, {3, 1, 1}}, {{2, 3, 4, 5}, {}},
    {{}, {2, 3}},                 {{1, 1000}, {1000}}, {{17}, {17}},             {{70001}, {70001}},
    {{64, 1}, {1, 16}},
    // SE gates: [N, C, H, W] by [N, C, 1, 1] either way round, and a broadcast over a middle axis.
    {{1, 16, 12, 12}, {1, 16, 1, 1}}, {{2, 5, 1, 1}, {2, 5, 3, 7}}, {{2, 3, 4, 5}, {2, 1, 4, 5}},
};

}  // namespace

TEST_CASE("QLinearAdd and QLinearMul match dequantize-compute-quantize within one step", "[kernels][quant]") {
  std::mt19937_64 rng(21);
  for (const char* op : {"QLinearAdd", "QLinearMul"}) {
    const bool isAdd = std::string(op) == "QLinearAdd";
    for (DataType type : {DataType::kUint8, DataType::kInt8}) {
      for (const BinaryCase& c : kBinaryCases) {
        CAPTURE(op, ir::dataTypeName(type), c.a, c.b);
        const std::vector<int32_t> a = randomInts(rng, numel(c.a), typeMin(type), typeMax(type));
        const std::vector<int32_t> b = randomInts(rng, numel(c.b), typeMin(type), typeMax(type));
        const float sa = 0.03f, sb = 0.02f, sc = isAdd ? 0.05f : 0.6f;
        const int32_t za = type == DataType::kUint8 ? 120 : 5, zb = type == DataType::kUint8 ? 131 : -3,
                      zc = type == DataType::kUint8 ? 128 : 1;
        GraphBuilder gb;
        ir::Value* av = gb.input("a", type, c.a);
        ir::Value* bv = gb.input("b", type, c.b);
        gb.output(gb.node(op, {av, gb.constant("sa", scalar(sa)), gb.constant("za", scalar(type, za)), bv, gb.constant("sb", scalar(sb)),
                               gb.constant("zb", scalar(type, zb)), gb.constant("sc", scalar(sc)), gb.constant("zc", scalar(type, zc))},
                          {}, "", kMs));
        auto out = runOutputs(gb.build(13), {{"a", intTensor(type, c.a, a)}, {"b", intTensor(type, c.b, b)}}, 2);
        const std::vector<int64_t> od = testing::broadcastDims(c.a, c.b);
        REQUIRE(out[0].dims() == od);
        std::vector<int32_t> expected(static_cast<size_t>(numel(od)));
        for (int64_t i = 0; i < numel(od); ++i) {
          const double x = sa * static_cast<double>(a[static_cast<size_t>(testing::broadcastIndex(od, c.a, i))] - za);
          const double y = sb * static_cast<double>(b[static_cast<size_t>(testing::broadcastIndex(od, c.b, i))] - zb);
          const double r = std::nearbyint((isAdd ? x + y : x * y) / sc) + zc;
          expected[static_cast<size_t>(i)] = static_cast<int32_t>(std::clamp<double>(r, typeMin(type), typeMax(type)));
        }
        checkInts(out[0], expected, 1);
      }
    }
  }
}

TEST_CASE("QLinearMul by a broadcast gate equals QLinearMul by the gate written out", "[kernels][quant]") {
  // A squeeze-excitation gate [N, C, 1, 1] (and a scalar, on either side) runs the contiguous
  // one-value path; it must give the very bytes of the element-by-element product.
  std::mt19937_64 rng(23);
  for (DataType type : {DataType::kUint8, DataType::kInt8}) {
    for (const BinaryCase& c : std::vector<BinaryCase>{{{2, 6, 5, 7}, {2, 6, 1, 1}}, {{1, 9, 3, 4}, {}}, {{2, 6, 1, 1}, {2, 6, 5, 7}}}) {
      CAPTURE(ir::dataTypeName(type), c.a, c.b);
      const std::vector<int64_t> od = testing::broadcastDims(c.a, c.b);
      const std::vector<int32_t> a = randomInts(rng, numel(c.a), typeMin(type), typeMax(type));
      const std::vector<int32_t> b = randomInts(rng, numel(c.b), typeMin(type), typeMax(type));
      auto expand = [&](const std::vector<int32_t>& v, const std::vector<int64_t>& dims) {
        std::vector<int32_t> out(static_cast<size_t>(numel(od)));
        for (int64_t i = 0; i < numel(od); ++i) out[static_cast<size_t>(i)] = v[static_cast<size_t>(testing::broadcastIndex(od, dims, i))];
        return out;
      };
      auto run = [&](const std::vector<int64_t>& ad, const std::vector<int32_t>& av, const std::vector<int64_t>& bd,
                     const std::vector<int32_t>& bv) {
        GraphBuilder gb;
        ir::Value* x = gb.input("a", type, ad);
        ir::Value* y = gb.input("b", type, bd);
        gb.output(gb.node("QLinearMul", {x, gb.constant("sa", scalar(0.03f)), gb.constant("za", scalar(type, 7)), y,
                                         gb.constant("sb", scalar(0.021f)), gb.constant("zb", scalar(type, -2)),
                                         gb.constant("sc", scalar(0.37f)), gb.constant("zc", scalar(type, 3))},
                          {}, "", kMs));
        return runOutputs(gb.build(13), {{"a", intTensor(type, ad, av)}, {"b", intTensor(type, bd, bv)}}, 1)[0];
      };
      ir::Tensor broadcast = run(c.a, a, c.b, b);
      ir::Tensor full = run(od, expand(a, c.a), od, expand(b, c.b));
      CHECK(broadcast.bitwiseEqual(full));
    }
  }
}

TEST_CASE("QLinearGlobalAveragePool matches the integer sum and MLAS requantisation", "[kernels][quant]") {
  std::mt19937_64 rng(22);
  for (bool channelsLast : {false, true}) {
    for (DataType type : {DataType::kUint8, DataType::kInt8}) {
      for (const std::vector<int64_t>& nchw : std::vector<std::vector<int64_t>>{{1, 64, 7, 7}, {2, 3, 5, 5}, {1, 17, 1, 9}, {2, 5, 6}}) {
        CAPTURE(channelsLast, ir::dataTypeName(type), nchw);
        std::vector<int64_t> dims = nchw;
        if (channelsLast) {
          dims.push_back(dims[1]);
          dims.erase(dims.begin() + 1);
        }
        const int64_t n = nchw[0], c = nchw[1], hw = numel(nchw) / (n * c);
        const std::vector<int32_t> x = randomInts(rng, numel(dims), typeMin(type), typeMax(type));
        const float sx = 0.02f, sy = 0.015f;
        const int32_t zx = type == DataType::kUint8 ? 100 : -4, zy = type == DataType::kUint8 ? 90 : 3;
        GraphBuilder gb;
        ir::Value* xv = gb.input("x", type, dims);
        gb.output(gb.node("QLinearGlobalAveragePool", {xv, gb.constant("sx", scalar(sx)), gb.constant("zx", scalar(type, zx)),
                                                       gb.constant("sy", scalar(sy)), gb.constant("zy", scalar(type, zy))},
                          {ir::Attribute::makeInt("channels_last", channelsLast ? 1 : 0)}, "", kMs));
        auto out = runOutputs(gb.build(13), {{"x", intTensor(type, dims, x)}});
        std::vector<int64_t> yDims(dims.size(), 1);
        yDims[0] = n;
        yDims[channelsLast ? yDims.size() - 1 : 1] = c;
        REQUIRE(out[0].dims() == yDims);
        std::vector<int32_t> expected;
        for (int64_t b = 0; b < n; ++b) {
          for (int64_t ch = 0; ch < c; ++ch) {
            int64_t sum = -static_cast<int64_t>(zx) * hw;
            for (int64_t p = 0; p < hw; ++p) sum += x[static_cast<size_t>(channelsLast ? (b * hw + p) * c + ch : (b * c + ch) * hw + p)];
            expected.push_back(refRequantize(sum, sx / (sy * static_cast<float>(hw)), zy, type));
          }
        }
        checkInts(out[0], expected);
      }
    }
  }
}

TEST_CASE("QLinearConcat requantises each input to the output's parameters", "[kernels][quant]") {
  std::mt19937_64 rng(23);
  for (DataType type : {DataType::kUint8, DataType::kInt8}) {
    for (int64_t axis : {1, -1, 0}) {
      CAPTURE(ir::dataTypeName(type), axis);
      const std::vector<std::vector<int64_t>> dims = axis == 1    ? std::vector<std::vector<int64_t>>{{2, 3, 4}, {2, 5, 4}, {2, 1, 4}}
                                                     : axis == -1 ? std::vector<std::vector<int64_t>>{{2, 3, 4}, {2, 3, 2}, {2, 3, 7}}
                                                                  : std::vector<std::vector<int64_t>>{{2, 3, 4}, {1, 3, 4}, {3, 3, 4}};
      const float ys = 0.05f;
      const int32_t yz = type == DataType::kUint8 ? 128 : 0;
      const std::vector<float> xs{0.05f, 0.02f, 0.1f};
      const std::vector<int32_t> xz{yz, yz + 7, yz - 9};
      GraphBuilder gb;
      std::vector<ir::Value*> ins{gb.constant("ys", scalar(ys)), gb.constant("yz", scalar(type, yz))};
      std::vector<runtime::NamedTensor> feeds;
      std::vector<std::vector<int32_t>> values;
      for (size_t i = 0; i < dims.size(); ++i) {
        const std::string name = "x" + std::to_string(i);
        ins.push_back(gb.input(name, type, dims[i]));
        ins.push_back(gb.constant(name + "s", scalar(xs[i])));
        ins.push_back(gb.constant(name + "z", scalar(type, xz[i])));
        values.push_back(randomInts(rng, numel(dims[i]), typeMin(type), typeMax(type)));
        feeds.emplace_back(name, intTensor(type, dims[i], values.back()));
      }
      gb.output(gb.node("QLinearConcat", ins, {ir::Attribute::makeInt("axis", axis)}, "", kMs));
      auto out = runOutputs(gb.build(13), feeds);
      const size_t ax = static_cast<size_t>(axis < 0 ? axis + 3 : axis);
      int64_t outer = 1;
      for (size_t d = 0; d < ax; ++d) outer *= dims[0][d];
      std::vector<int32_t> expected;
      for (int64_t o = 0; o < outer; ++o) {
        for (size_t i = 0; i < dims.size(); ++i) {
          const int64_t row = numel(dims[i]) / outer;
          for (int64_t k = 0; k < row; ++k) {
            const int32_t q = values[i][static_cast<size_t>(o * row + k)];
            expected.push_back(refQuantize(static_cast<float>(q - xz[i]) * xs[i], ys, yz, type));
          }
        }
      }
      checkInts(out[0], expected);
    }
  }
}

TEST_CASE("QLinearLeakyRelu and QLinearSigmoid apply the function to every dequantized value", "[kernels][quant]") {
  for (DataType type : {DataType::kUint8, DataType::kInt8}) {
    for (const char* op : {"QLinearLeakyRelu", "QLinearSigmoid"}) {
      CAPTURE(ir::dataTypeName(type), op);
      const bool leaky = std::string(op) == "QLinearLeakyRelu";
      std::vector<int32_t> x;
      for (int32_t v = typeMin(type); v <= typeMax(type); ++v) x.push_back(v);
      const float xs = 0.05f, ys = leaky ? 0.04f : 1.0f / 256.0f;
      const int32_t xz = type == DataType::kUint8 ? 128 : 0, yz = leaky ? xz : typeMin(type);
      GraphBuilder gb;
      ir::Value* xv = gb.input("x", type, {16, 16});
      std::vector<ir::Attribute> attrs;
      if (leaky) attrs.push_back(ir::Attribute::makeFloat("alpha", 0.1f));
      gb.output(gb.node(op, {xv, gb.constant("xs", scalar(xs)), gb.constant("xz", scalar(type, xz)), gb.constant("ys", scalar(ys)),
                             gb.constant("yz", scalar(type, yz))},
                        attrs, "", kMs));
      auto out = runOutputs(gb.build(13), {{"x", intTensor(type, {16, 16}, x)}});
      std::vector<int32_t> expected;
      for (int32_t q : x) {
        const float v = static_cast<float>(q - xz) * xs;
        const float f = leaky ? (v >= 0.0f ? v : v * 0.1f) : 1.0f / (1.0f + std::exp(-v));
        expected.push_back(refQuantize(f, ys, yz, type));
      }
      checkInts(out[0], expected, leaky ? 0 : 1);
    }
  }
}

TEST_CASE("QLinearAveragePool averages dequantized values", "[kernels][quant]") {
  std::mt19937_64 rng(24);
  struct PoolCase {
    std::vector<int64_t> x, kernel, strides, pads;
    bool includePad, ceil, channelsLast;
  };
  const std::vector<PoolCase> cases = {
      {{1, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0, 0, 0}, false, false, false},
      {{2, 5, 7, 7}, {3, 3}, {1, 1}, {1, 1, 1, 1}, false, false, false},
      {{2, 5, 7, 7}, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, false, false},
      {{1, 4, 7, 6}, {3, 2}, {2, 2}, {0, 0, 0, 0}, false, true, false},
      {{1, 6, 6, 16}, {3, 3}, {1, 1}, {1, 1, 1, 1}, false, false, true},
      {{2, 3, 11}, {4}, {3}, {1, 2}, true, false, false},
      // ShuffleNet's shortcut pools (3x3, stride 2, padded) and its final 7x7 one, on planes with
      // windows inside the columns and clipped at both ends.
      {{1, 4, 9, 40}, {3, 3}, {2, 2}, {1, 1, 1, 1}, false, false, false},
      {{1, 3, 10, 33}, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, true, false},
      {{1, 5, 7, 7}, {7, 7}, {1, 1}, {0, 0, 0, 0}, false, false, false},
      {{1, 9, 12, 20}, {3, 5}, {1, 3}, {1, 2, 1, 2}, false, false, true},
  };
  for (const PoolCase& c : cases) {
    for (DataType type : {DataType::kUint8, DataType::kInt8}) {
      CAPTURE(c.x, c.kernel, c.includePad, c.ceil, c.channelsLast, ir::dataTypeName(type));
      const std::vector<int32_t> x = randomInts(rng, numel(c.x), typeMin(type), typeMax(type));
      const float xs = 0.03f, ys = 0.02f;
      const int32_t xz = type == DataType::kUint8 ? 110 : 2, yz = type == DataType::kUint8 ? 120 : -1;
      GraphBuilder gb;
      ir::Value* xv = gb.input("x", type, c.x);
      gb.output(gb.node("QLinearAveragePool",
                        {xv, gb.constant("xs", scalar(xs)), gb.constant("xz", scalar(type, xz)), gb.constant("ys", scalar(ys)),
                         gb.constant("yz", scalar(type, yz))},
                        {ir::Attribute::makeInts("kernel_shape", c.kernel), ir::Attribute::makeInts("strides", c.strides),
                         ir::Attribute::makeInts("pads", c.pads), ir::Attribute::makeInt("count_include_pad", c.includePad),
                         ir::Attribute::makeInt("ceil_mode", c.ceil), ir::Attribute::makeInt("channels_last", c.channelsLast)},
                        "", kMs));
      auto out = runOutputs(gb.build(13), {{"x", intTensor(type, c.x, x)}});
      // Reference over an NCHW view.
      const size_t sp = c.kernel.size();
      std::vector<int64_t> nchw = c.x;
      if (c.channelsLast) {
        nchw.insert(nchw.begin() + 1, nchw.back());
        nchw.pop_back();
      }
      std::vector<int64_t> outSp;
      for (size_t i = 0; i < sp; ++i) {
        const int64_t span = nchw[i + 2] + c.pads[i] + c.pads[i + sp] - c.kernel[i];
        int64_t o = (c.ceil ? (span + c.strides[i] - 1) / c.strides[i] : span / c.strides[i]) + 1;
        if (c.ceil && (o - 1) * c.strides[i] >= nchw[i + 2] + c.pads[i]) --o;
        outSp.push_back(o);
      }
      const int64_t n = nchw[0], ch = nchw[1], inSize = numel(nchw) / (n * ch), outSize = numel(outSp);
      std::vector<int32_t> expected(static_cast<size_t>(n * ch * outSize));
      // ONNX Runtime's float arithmetic: the terms summed in float in the window's row-major order.
      std::vector<int32_t> expectedFloat(expected.size());
      std::vector<int64_t> oi(sp), ii(sp);
      for (int64_t b = 0; b < n; ++b) {
        for (int64_t k = 0; k < ch; ++k) {
          for (int64_t o = 0; o < outSize; ++o) {
            int64_t rem = o;
            for (size_t d = sp; d-- > 0;) {
              oi[d] = rem % outSp[d];
              rem /= outSp[d];
            }
            double sum = 0;
            float sumFloat = 0.0f;
            int64_t count = 0;
            for (int64_t p = 0; p < inSize; ++p) {
              int64_t r2 = p;
              bool inside = true;
              for (size_t d = sp; d-- > 0;) {
                ii[d] = r2 % nchw[d + 2];
                r2 /= nchw[d + 2];
                const int64_t start = oi[d] * c.strides[d] - c.pads[d];
                inside = inside && ii[d] >= start && ii[d] < start + c.kernel[d];
              }
              if (!inside) continue;
              const int64_t src = c.channelsLast ? (b * inSize + p) * ch + k : (b * ch + k) * inSize + p;
              sum += xs * static_cast<double>(x[static_cast<size_t>(src)] - xz);
              sumFloat += xs * static_cast<float>(x[static_cast<size_t>(src)] - xz);
              ++count;
            }
            const int64_t divisor = c.includePad ? numel(c.kernel) : count;
            const double r = std::nearbyint(sum / static_cast<double>(divisor) / ys) + yz;
            const int64_t dst = c.channelsLast ? (b * outSize + o) * ch + k : (b * ch + k) * outSize + o;
            expected[static_cast<size_t>(dst)] = static_cast<int32_t>(std::clamp<double>(r, typeMin(type), typeMax(type)));
            const float avg = sumFloat / static_cast<float>(divisor);
            const auto q = static_cast<int32_t>(std::nearbyint(avg / ys + static_cast<float>(yz)));
            expectedFloat[static_cast<size_t>(dst)] = std::clamp(q, typeMin(type), typeMax(type));
          }
        }
      }
      checkInts(out[0], expected, 1);
      checkInts(out[0], expectedFloat, 0);
    }
  }
}
