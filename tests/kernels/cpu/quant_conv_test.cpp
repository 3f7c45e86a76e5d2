// QLinearConv and ConvInteger on the CPU runtime against a naive integer convolution and MLAS's
// requantisation, bit for bit, over one shape list (channel counts at, below and above 16 and 64,
// 1x1 / 3x3 / strided / padded / asymmetric / dilated / grouped / depthwise, 1-D and 3-D) and
// parameter variants that take each path: oneDNN u8s8 and s8s8, uint8 weights shifted to int8,
// non-zero weight zero points (oneDNN on shifted weights plus window sums) and runtime weights
// (reference), few channels with long windows (im2col + GEMM). Also: a chain of quantized ops,
// which the runtime runs on NHWC activations, gives the same bytes as the ops run one by one.
#include <catch2/catch.hpp>
#include <limits>
#include <map>

#include "cpu/quant_common.h"
#include "kernels/cpu/quant_test_util.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;

namespace {

struct ConvShape {
  std::vector<int64_t> x;
  int64_t m;
  std::vector<int64_t> kernel, strides, pads, dilations;
  int64_t group = 1;
};

const std::vector<ConvShape> kShapes = {
    {{1, 1, 5, 7}, 1, {3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{1, 3, 16, 16}, 16, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
    {{2, 15, 9, 9}, 17, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
    {{1, 16, 8, 8}, 16, {1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{1, 17, 7, 7}, 15, {1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{1, 63, 6, 6}, 65, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}},
    {{1, 64, 5, 5}, 64, {3, 3}, {1, 1}, {0, 1, 1, 0}, {1, 1}},
    {{1, 65, 4, 4}, 63, {1, 1}, {2, 2}, {0, 0, 0, 0}, {1, 1}},
    {{1, 32, 9, 9}, 32, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 32},
    {{1, 24, 10, 10}, 24, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 24},
    {{1, 8, 6, 6}, 12, {3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 4},
    // Grouped and padded (MobileNetV3's 5x5 depthwise layers: strided along H, asymmetric pads).
    {{1, 40, 3, 17}, 40, {5, 5}, {2, 1}, {2, 2, 1, 2}, {1, 1}, 40},
    // 5x5 and larger depthwise: the exact float route (batch 2, dilated; 7x7; 17 channels).
    {{2, 24, 6, 20}, 24, {5, 5}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 24},
    {{1, 17, 9, 9}, 17, {7, 7}, {1, 2}, {3, 3, 3, 3}, {1, 1}, 17},
    {{2, 8, 6, 6}, 12, {3, 3}, {1, 1}, {1, 0, 0, 1}, {1, 1}, 4},
    {{1, 4, 11, 11}, 6, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}},
    {{1, 6, 7, 9}, 5, {2, 4}, {1, 3}, {1, 0, 0, 2}, {1, 1}},
    {{2, 5, 20}, 7, {5}, {2}, {1, 2}, {1}},
    {{1, 80, 40}, 64, {3}, {1}, {1, 1}, {1}},      // Whisper's first Conv1d, shortened
    {{1, 64, 40}, 48, {3}, {2}, {1, 1}, {2}},      // strided and dilated 1-D
    {{1, 16, 30}, 16, {5}, {1}, {2, 2}, {1}, 16},  // depthwise 1-D
    // Few channels, long windows: im2col + GEMM (openWakeWord's mel front end, shortened;
    // padded and dilated; 2-D with two channels).
    {{1, 1, 1400}, 21, {512}, {160}, {0, 0}, {1}},
    {{2, 1, 300}, 9, {128}, {7}, {5, 3}, {2}},
    {{1, 2, 12, 80}, 8, {4, 64}, {2, 3}, {1, 2, 0, 3}, {1, 1}},
    {{1, 3, 5, 6, 7}, 4, {3, 3, 3}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, {1, 1, 1}},
    // Along H alone (W = 1, a 1-wide kernel): described to oneDNN along W (magika's 5x1 over
    // [256, 512, 1], shortened; strided, padded and dilated along H).
    {{1, 32, 40, 1}, 24, {5, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}},
    {{2, 8, 33, 1}, 16, {3, 1}, {2, 1}, {2, 0, 1, 0}, {2, 1}},
};

struct Variant {
  const char* name;
  DataType xType, wType, yType;
  int32_t xZp, yZp;
  int32_t wZpBase;     // the weights' zero point (per channel: base + channel % 3 when perChannelZp)
  bool perChannelZp;
  bool perChannelScale;
  bool bias;
  bool constW;
};

const std::vector<Variant> kVariants = {
    {"u8s8 per-channel", DataType::kUint8, DataType::kInt8, DataType::kUint8, 7, 3, 0, false, true, true, true},
    {"s8s8 per-tensor", DataType::kInt8, DataType::kInt8, DataType::kInt8, -5, 2, 0, false, false, false, true},
    {"u8u8 zp 128", DataType::kUint8, DataType::kUint8, DataType::kUint8, 0, 0, 128, false, true, true, true},
    {"u8u8 zp per channel", DataType::kUint8, DataType::kUint8, DataType::kInt8, 100, -3, 10, true, true, true, true},
    // ORT's quantize_static with WeightSymmetric=False: int8 weights, off-centre zero points.
    {"u8s8 zp per channel", DataType::kUint8, DataType::kInt8, DataType::kUint8, 7, 3, -7, true, true, true, true},
    {"s8s8 zp per tensor", DataType::kInt8, DataType::kInt8, DataType::kInt8, -5, 2, 9, false, false, false, true},
    {"runtime weights", DataType::kUint8, DataType::kInt8, DataType::kUint8, 7, 3, 0, false, true, true, false},
};

std::vector<ir::Attribute> convAttrs(const ConvShape& s) {
  return {ir::Attribute::makeInts("kernel_shape", s.kernel), ir::Attribute::makeInts("strides", s.strides),
          ir::Attribute::makeInts("pads", s.pads), ir::Attribute::makeInts("dilations", s.dilations),
          ir::Attribute::makeInt("group", s.group)};
}

RefConv refOf(const ConvShape& s) {
  RefConv r;
  r.x = s.x;
  r.w = {s.m, s.x[1] / s.group};
  r.w.insert(r.w.end(), s.kernel.begin(), s.kernel.end());
  r.strides = s.strides;
  r.pads = s.pads;
  r.dilations = s.dilations;
  r.group = s.group;
  return r;
}

}  // namespace

TEST_CASE("QLinearConv matches a naive integer convolution and MLAS requantisation", "[kernels][quant]") {
  std::mt19937_64 rng(11);
  for (const ConvShape& s : kShapes) {
    for (const Variant& v : kVariants) {
      CAPTURE(s.x, s.m, s.kernel, s.group, v.name);
      const RefConv ref = refOf(s);
      const std::vector<int32_t> x = randomInts(rng, numel(s.x), typeMin(v.xType), typeMax(v.xType));
      std::vector<int32_t> wZp(v.perChannelZp ? static_cast<size_t>(s.m) : 1);
      for (size_t i = 0; i < wZp.size(); ++i) wZp[i] = v.wZpBase + static_cast<int32_t>(i % 3);
      std::vector<int32_t> w = randomInts(rng, numel(ref.w), -20, 20);
      const int64_t perOc = numel(ref.w) / s.m;
      for (size_t i = 0; i < w.size(); ++i) {
        w[i] = std::clamp(w[i] + wZp[wZp.size() == 1 ? 0 : i / static_cast<size_t>(perOc)], typeMin(v.wType), typeMax(v.wType));
      }
      const std::vector<float> wScales = randomFloats(rng, v.perChannelScale ? s.m : 1, 0.005f, 0.02f);
      const std::vector<int32_t> bias = randomInts(rng, s.m, -2000, 2000);
      const float xScale = 0.02f;
      const std::vector<int64_t> acc = ref.run(x, v.xZp, w, wZp);
      const int64_t outSpatial = numel(ref.outDims()) / (s.x[0] * s.m);
      int64_t maxAbs = 1;
      for (size_t i = 0; i < acc.size(); ++i) {
        const int64_t oc = static_cast<int64_t>(i) / outSpatial % s.m;
        maxAbs = std::max<int64_t>(maxAbs, std::llabs(acc[i] + (v.bias ? bias[static_cast<size_t>(oc)] : 0)));
      }
      const float yScale = static_cast<float>(maxAbs) * xScale * 0.0125f / 110.0f;  // some saturation
      std::vector<int32_t> expected(acc.size());
      for (size_t i = 0; i < acc.size(); ++i) {
        const auto oc = static_cast<size_t>(static_cast<int64_t>(i) / outSpatial % s.m);
        const float scale = xScale * wScales[wScales.size() == 1 ? 0 : oc] / yScale;
        expected[i] = refRequantize(acc[i] + (v.bias ? bias[oc] : 0), scale, v.yZp, v.yType);
      }
      for (int threads : {1, 2}) {
        GraphBuilder gb;
        ir::Value* xv = gb.input("x", v.xType, s.x);
        ir::Value* wv = v.constW ? gb.constant("w", intTensor(v.wType, ref.w, w)) : gb.input("w", v.wType, ref.w);
        ir::Value* ws = gb.constant("ws", v.perChannelScale ? floatTensor({s.m}, wScales) : scalar(wScales[0]));
        ir::Value* wz = gb.constant("wz", v.perChannelZp ? intTensor(v.wType, {s.m}, wZp) : scalar(v.wType, wZp[0]));
        ir::Value* b = v.bias ? gb.constant("b", intTensor(DataType::kInt32, {s.m}, bias)) : nullptr;
        gb.output(gb.node("QLinearConv",
                          {xv, gb.constant("xs", scalar(xScale)), gb.constant("xz", scalar(v.xType, v.xZp)), wv, ws, wz,
                           gb.constant("ys", scalar(yScale)), gb.constant("yz", scalar(v.yType, v.yZp)), b},
                          convAttrs(s)));
        std::vector<runtime::NamedTensor> feeds{{"x", intTensor(v.xType, s.x, x)}};
        if (!v.constW) feeds.emplace_back("w", intTensor(v.wType, ref.w, w));
        auto out = runOutputs(gb.build(13), feeds, threads);
        REQUIRE(out[0].dtype() == v.yType);
        REQUIRE(out[0].dims() == ref.outDims());
        checkInts(out[0], expected);
      }
    }
  }
}

TEST_CASE("A depthwise QLinearConv at the float route's bound is exact", "[kernels][quant]") {
  // 22 x 22 = 484 taps (the route takes up to 514), every x at the far end of its zero point and
  // every weight -128 or 127: sums of up to 484 * 255 * 128 < 2^24, exact in float32. A 23 x 23
  // kernel (529 taps) is past the bound and takes oneDNN's int8 kernel; both give the reference.
  std::mt19937_64 rng(41);
  for (int64_t k : {22, 23}) {
    for (DataType xType : {DataType::kUint8, DataType::kInt8}) {
      CAPTURE(k, ir::dataTypeName(xType));
      const ConvShape s{{1, 16, k + 2, k + 3}, 16, {k, k}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 16};
      const RefConv ref = refOf(s);
      const int32_t xZp = xType == DataType::kUint8 ? 0 : 127;
      const std::vector<int32_t> x(static_cast<size_t>(numel(s.x)), xType == DataType::kUint8 ? 255 : -128);
      // Mostly one sign per channel (so that the sums are large), one weight in ten flipped.
      std::vector<int32_t> w = randomInts(rng, numel(ref.w), 0, 9);
      for (size_t i = 0; i < w.size(); ++i) {
        const bool negative = (i / static_cast<size_t>(k * k)) % 2 == 0;
        w[i] = (w[i] == 0) != negative ? -128 : 127;
      }
      const std::vector<int64_t> acc = ref.run(x, xZp, w, {0});
      const int64_t outSpatial = numel(ref.outDims()) / s.m, ow = ref.outDims()[3];
      // Scale 1 and a bias that brings the inside pixels' sums (each channel's largest) to 50: an
      // error in the lowest bit of a sum shows there; the pixels at the edges saturate.
      std::vector<int32_t> bias(static_cast<size_t>(s.m));
      for (int64_t oc = 0; oc < s.m; ++oc) {
        const int64_t inside = acc[static_cast<size_t>(oc * outSpatial + 2 * ow + 2)];
        CHECK(std::llabs(inside) > (int64_t{1} << 22));
        bias[static_cast<size_t>(oc)] = static_cast<int32_t>(50 - inside);
      }
      const float xScale = 1.0f, wScale = 1.0f, yScale = 1.0f;
      std::vector<int32_t> expected(acc.size());
      for (size_t i = 0; i < acc.size(); ++i) {
        const auto oc = static_cast<size_t>(static_cast<int64_t>(i) / outSpatial);
        expected[i] = refRequantize(acc[i] + bias[oc], xScale * wScale / yScale, 0, xType);
      }
      GraphBuilder gb;
      gb.output(
          gb.node("QLinearConv",
                  {gb.input("x", xType, s.x), gb.constant("xs", scalar(xScale)), gb.constant("xz", scalar(xType, xZp)),
                   gb.constant("w", intTensor(DataType::kInt8, ref.w, w)), gb.constant("ws", scalar(wScale)),
                   gb.constant("wz", scalar(DataType::kInt8, 0)), gb.constant("ys", scalar(yScale)),
                   gb.constant("yz", scalar(xType, 0)), gb.constant("b", intTensor(DataType::kInt32, {s.m}, bias))},
                  convAttrs(s)));
      auto out = runOutputs(gb.build(13), {{"x", intTensor(xType, s.x, x)}}, 1);
      checkInts(out[0], expected);
    }
  }
}

TEST_CASE("The depthwise float route finishes as oneDNN's int8 convolution, biases near the int32 limits included",
          "[kernels][quant]") {
  // Two equal channels through a 5x5 depthwise QLinearConv (the float route) against one channel
  // through a one-group QLinearConv (oneDNN's int8 kernel): the same bytes per channel, padded
  // (oneDNN's source zero point) and unpadded (x_zp folded into the bias), with biases a dead
  // channel has (near -2^31 and 2^31) and ordinary ones.
  std::mt19937_64 rng(43);
  for (DataType xType : {DataType::kUint8, DataType::kInt8}) {
    for (int64_t pad : {0, 2}) {
      for (int32_t bias :
           {std::numeric_limits<int32_t>::min() + 90, std::numeric_limits<int32_t>::max() - 1000, -1234}) {
        CAPTURE(ir::dataTypeName(xType), pad, bias);
        const int64_t h = 9, w = 11;
        const int32_t xZp = xType == DataType::kUint8 ? 46 : -20;
        const std::vector<int32_t> plane = randomInts(rng, h * w, typeMin(xType), typeMax(xType));
        const std::vector<int32_t> wv = randomInts(rng, 25, -127, 127);
        auto conv = [&](int64_t c) {
          std::vector<int32_t> x, weights, biases;
          for (int64_t i = 0; i < c; ++i) {
            x.insert(x.end(), plane.begin(), plane.end());
            weights.insert(weights.end(), wv.begin(), wv.end());
            biases.push_back(bias);
          }
          GraphBuilder gb;
          gb.output(gb.node(
              "QLinearConv",
              {gb.input("x", xType, {1, c, h, w}), gb.constant("xs", scalar(0.05f)),
               gb.constant("xz", scalar(xType, xZp)),
               gb.constant("w", intTensor(DataType::kInt8, {c, 1, 5, 5}, weights)),
               gb.constant("ws", floatTensor({c}, std::vector<float>(static_cast<size_t>(c), 3e-9f))),
               gb.constant("wz", intTensor(DataType::kInt8, {c}, std::vector<int32_t>(static_cast<size_t>(c), 0))),
               gb.constant("ys", scalar(0.02f)), gb.constant("yz", scalar(xType, 3)),
               gb.constant("b", intTensor(DataType::kInt32, {c}, biases))},
              {ir::Attribute::makeInts("kernel_shape", {5, 5}), ir::Attribute::makeInts("pads", {pad, pad, pad, pad}),
               ir::Attribute::makeInt("group", c)}));
          return runOutputs(gb.build(13), {{"x", intTensor(xType, {1, c, h, w}, x)}}, 1)[0];
        };
        const ir::Tensor two = conv(2), one = conv(1);
        const auto* a = reinterpret_cast<const uint8_t*>(two.rawData());
        const auto* b = reinterpret_cast<const uint8_t*>(one.rawData());
        const int64_t n = one.numel();
        CHECK(std::equal(a, a + n, b));
        CHECK(std::equal(a + n, a + 2 * n, b));
      }
    }
  }
}

TEST_CASE("ConvInteger matches a naive integer convolution", "[kernels][quant]") {
  std::mt19937_64 rng(12);
  for (const ConvShape& s : kShapes) {
    for (int variant = 0; variant < 3; ++variant) {
      // 0: u8 x, s8 w with zero point 0 (oneDNN); 1: u8 w with a per-channel zero point; 2: runtime w.
      CAPTURE(s.x, s.m, s.kernel, s.group, variant);
      const RefConv ref = refOf(s);
      const DataType wType = variant == 1 ? DataType::kUint8 : DataType::kInt8;
      const std::vector<int32_t> x = randomInts(rng, numel(s.x), 0, 255);
      std::vector<int32_t> wZp{0};
      if (variant == 1) wZp = randomInts(rng, s.m, 20, 40);
      const std::vector<int32_t> w = randomInts(rng, numel(ref.w), variant == 1 ? 0 : -60, 60);
      const int32_t xZp = 131;
      const std::vector<int64_t> acc = ref.run(x, xZp, w, wZp);
      GraphBuilder gb;
      ir::Value* xv = gb.input("x", DataType::kUint8, s.x);
      ir::Value* wv = variant == 2 ? gb.input("w", wType, ref.w) : gb.constant("w", intTensor(wType, ref.w, w));
      ir::Value* wz = gb.constant("wz", wZp.size() == 1 ? scalar(wType, wZp[0]) : intTensor(wType, {s.m}, wZp));
      gb.output(gb.node("ConvInteger", {xv, wv, gb.constant("xz", scalar(DataType::kUint8, xZp)), wz}, convAttrs(s)));
      std::vector<runtime::NamedTensor> feeds{{"x", intTensor(DataType::kUint8, s.x, x)}};
      if (variant == 2) feeds.emplace_back("w", intTensor(wType, ref.w, w));
      auto out = runOutputs(gb.build(10), feeds, 2);
      REQUIRE(out[0].dtype() == DataType::kInt32);
      REQUIRE(out[0].dims() == ref.outDims());
      checkInts(out[0], std::vector<int32_t>(acc.begin(), acc.end()));
    }
  }
}

TEST_CASE("ConvInteger with any weight zero point and a run-time x_zero_point matches the reference", "[kernels][quant]") {
  // oneDNN runs the convolution on shifted weights and the window sums add (wantZp - wz[m]) * S.
  struct ZpVariant {
    const char* name;
    DataType xType, wType;
    int32_t xZpLo, xZpHi;  // the x_zero_points fed, run after run, into one session
    int32_t wZpLo, wZpHi;  // per channel in [lo, hi]; lo == hi: per tensor
    bool wZpGiven;
  };
  const std::vector<ZpVariant> variants = {
      {"u8 x, u8 w per-tensor zp (onnx dynamic quantization)", DataType::kUint8, DataType::kUint8, 0, 255, 121, 121, true},
      {"u8 x, s8 w per-channel zp", DataType::kUint8, DataType::kInt8, 100, 160, -9, 9, true},
      {"s8 x, s8 w per-tensor zp", DataType::kInt8, DataType::kInt8, -20, 20, 5, 5, true},
      {"s8 x, u8 w per-channel zp", DataType::kInt8, DataType::kUint8, -3, 3, 90, 170, true},
      {"u8 x, u8 w without zp (0)", DataType::kUint8, DataType::kUint8, 60, 70, 0, 0, false},
  };
  std::mt19937_64 rng(13);
  for (const ConvShape& s : kShapes) {
    if (s.x.size() == 5) continue;  // 3-D runs the reference, covered above
    for (const ZpVariant& v : variants) {
      CAPTURE(s.x, s.m, s.kernel, s.strides, s.pads, s.group, v.name);
      const RefConv ref = refOf(s);
      const std::vector<int32_t> wZp = v.wZpLo == v.wZpHi ? std::vector<int32_t>{v.wZpLo} : randomInts(rng, s.m, v.wZpLo, v.wZpHi);
      const std::vector<int32_t> w = randomInts(rng, numel(ref.w), typeMin(v.wType), typeMax(v.wType));
      for (int threads : {1, 2}) {
        GraphBuilder gb;
        ir::Value* xv = gb.input("x", v.xType, s.x);
        ir::Value* xz = gb.input("xz", v.xType, {});
        ir::Value* wz = v.wZpGiven ? gb.constant("wz", wZp.size() == 1 ? scalar(v.wType, wZp[0]) : intTensor(v.wType, {s.m}, wZp)) : nullptr;
        std::vector<ir::Value*> ins{xv, gb.constant("w", intTensor(v.wType, ref.w, w)), xz};
        if (wz != nullptr) ins.push_back(wz);
        gb.output(gb.node("ConvInteger", ins, convAttrs(s)));
        runtime::SessionOptions options;
        options.threads = threads;
        auto session = runtime::Session::create(gb.build(10), options);
        REQUIRE(session.isOk());
        for (int round = 0; round < 3; ++round) {  // a new x and x_zero_point each run, as DynamicQuantizeLinear gives
          const int32_t xZp = randomInts(rng, 1, v.xZpLo, v.xZpHi)[0];
          const std::vector<int32_t> x = randomInts(rng, numel(s.x), typeMin(v.xType), typeMax(v.xType));
          const std::vector<int64_t> acc = ref.run(x, xZp, w, wZp);
          auto out = (*session)->run({{"x", intTensor(v.xType, s.x, x)}, {"xz", scalar(v.xType, xZp)}});
          REQUIRE(out.isOk());
          const ir::Tensor& y = (*out)[0].second;
          REQUIRE(y.dtype() == DataType::kInt32);
          REQUIRE(y.dims() == ref.outDims());
          checkInts(y, std::vector<int32_t>(acc.begin(), acc.end()));
        }
      }
    }
  }
}

TEST_CASE("QLinearConv reports channel mismatches and unsupported types", "[kernels][quant]") {
  GraphBuilder gb;
  ir::Value* x = gb.input("x", DataType::kUint8, {1, 3, 4, 4});
  gb.output(gb.node("QLinearConv",
                    {x, gb.constant("xs", scalar(0.1f)), gb.constant("xz", scalar(DataType::kUint8, 0)),
                     gb.constant("w", intTensor(DataType::kInt8, {2, 2, 1, 1}, {1, 2, 3, 4})), gb.constant("ws", scalar(0.1f)),
                     gb.constant("wz", scalar(DataType::kInt8, 0)), gb.constant("ys", scalar(0.1f)),
                     gb.constant("yz", scalar(DataType::kUint8, 0))},
                    {}, "qc"));
  auto session = runtime::Session::create(gb.build(13));
  REQUIRE(session.isOk());
  auto out = (*session)->run({{"x", intTensor(DataType::kUint8, {1, 3, 4, 4}, std::vector<int32_t>(48, 1))}});
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().code() == StatusCode::kInvalidInput);
  CHECK_THAT(out.status().message(), Catch::Contains("qc") && Catch::Contains("channels"));
}

// ---- channels-last chains ----

namespace {

// The session's outputs of `model` at one and two threads against the model run one node at a
// time (NCHW, no plan): the same bytes.
void checkBytesOfNodeByNode(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds) {
  const std::vector<ir::Tensor> expected = runNodeByNode(model, feeds);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    auto out = runOutputs(model, feeds, threads);
    REQUIRE(out.size() == expected.size());
    for (size_t i = 0; i < out.size(); ++i) CHECK(out[i].bitwiseEqual(expected[i]));
  }
}

// A quantized block: Q -> conv 3x3 (padded, x_zp != 0) -> conv 1x1 (x_zp folded) -> add with the
// first conv -> depthwise 3x3 s2 -> global average pool -> DQ, and a second output that
// dequantizes the depthwise conv (so that value stays NCHW). The int8 weights' zero points are
// wZp + channel % 3.
ir::Model quantizedBlock(std::mt19937_64& rng, int64_t c, int64_t hw, DataType actType, int32_t wZp = 0) {
  GraphBuilder gb;
  gb.importDomain("com.microsoft", 1);
  const int32_t zp = actType == DataType::kUint8 ? 120 : -8;
  auto act = [&](const std::string& name, float scale, int32_t z) {
    return std::pair{gb.constant(name + "_s", scalar(scale)), gb.constant(name + "_z", scalar(actType, z))};
  };
  auto conv = [&](ir::Value* x, std::pair<ir::Value*, ir::Value*> xq, int64_t m, int64_t k, int64_t group, int64_t stride,
                  std::pair<ir::Value*, ir::Value*> yq, const std::string& name) {
    const int64_t inC = name == "c1" ? c : 16;  // the first conv reads x, the others 16 channels
    const std::vector<int64_t> wd{m, inC / group, k, k};
    std::vector<int32_t> zps(static_cast<size_t>(m), wZp), wv = randomInts(rng, numel(wd), -40, 40);
    for (size_t i = 0; i < zps.size(); ++i) zps[i] += wZp == 0 ? 0 : static_cast<int32_t>(i % 3);
    for (size_t i = 0; i < wv.size(); ++i) wv[i] += zps[i / static_cast<size_t>(numel(wd) / m)];
    ir::Value* w = gb.constant(name + "_w", intTensor(DataType::kInt8, wd, wv));
    ir::Value* ws = gb.constant(name + "_ws", floatTensor({m}, randomFloats(rng, m, 0.004f, 0.01f)));
    ir::Value* wz = gb.constant(name + "_wz", intTensor(DataType::kInt8, {m}, zps));
    ir::Value* b = gb.constant(name + "_b", intTensor(DataType::kInt32, {m}, randomInts(rng, m, -500, 500)));
    const int64_t p = k / 2;
    return gb.node("QLinearConv", {x, xq.first, xq.second, w, ws, wz, yq.first, yq.second, b},
                   {ir::Attribute::makeInts("kernel_shape", {k, k}), ir::Attribute::makeInts("strides", {stride, stride}),
                    ir::Attribute::makeInts("pads", {p, p, p, p}), ir::Attribute::makeInt("group", group)},
                   name);
  };
  ir::Value* x = gb.input("x", DataType::kFloat, {2, c, hw, hw});
  auto q0 = act("q0", 0.02f, zp), q1 = act("q1", 0.05f, zp + 3), q2 = act("q2", 0.04f, zp - 5), q3 = act("q3", 0.06f, zp + 1),
       q4 = act("q4", 0.05f, zp), q5 = act("q5", 0.03f, zp + 2);
  ir::Value* xq = gb.node("QuantizeLinear", {x, q0.first, q0.second}, {}, "q");
  ir::Value* c1 = conv(xq, q0, 16, 3, 1, 1, q1, "c1");
  ir::Value* c2 = conv(c1, q1, 16, 1, 1, 1, q2, "c2");
  ir::Value* add = gb.node("QLinearAdd", {c1, q1.first, q1.second, c2, q2.first, q2.second, q3.first, q3.second}, {}, "add",
                           "com.microsoft");
  ir::Value* c3 = conv(add, q3, 16, 3, 16, 2, q4, "c3");
  ir::Value* gap = gb.node("QLinearGlobalAveragePool", {c3, q4.first, q4.second, q5.first, q5.second},
                           {ir::Attribute::makeInt("channels_last", 0)}, "gap", "com.microsoft");
  gb.output(gb.node("DequantizeLinear", {gap, q5.first, q5.second}, {}, "dq"));
  gb.output(gb.node("DequantizeLinear", {c3, q4.first, q4.second}, {}, "dq_c3"));
  return gb.build(13);
}

}  // namespace

TEST_CASE("A chain of quantized ops on NHWC activations gives the bytes of the ops run one by one", "[kernels][quant]") {
  std::mt19937_64 rng(13);
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    for (auto [c, wZp] : {std::pair<int64_t, int32_t>{3, 0}, {16, 0}, {16, -7}}) {
      CAPTURE(ir::dataTypeName(act), c, wZp);
      ir::Model model = quantizedBlock(rng, c, 9, act, wZp);
      const ir::Tensor x = floatTensor({2, c, 9, 9}, randomFloats(rng, 2 * c * 81, -2.5f, 2.5f));
      const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", x}});
      for (int threads : {1, 2}) {
        auto out = runOutputs(model, {{"x", x}}, threads);
        REQUIRE(out.size() == expected.size());
        for (size_t i = 0; i < out.size(); ++i) CHECK(out[i].bitwiseEqual(expected[i]));
      }
    }
  }
}

TEST_CASE("Extra outputs inside a chain of quantized ops come back NCHW", "[kernels][quant][runtime]") {
  // c1, c2 and add would stay channels-last inside the session; asked for as extra outputs
  // (per-layer comparison, calibration), they must come back in the standard layout.
  std::mt19937_64 rng(17);
  ir::Model model = quantizedBlock(rng, 16, 9, DataType::kUint8);
  const ir::Tensor x = floatTensor({2, 16, 9, 9}, randomFloats(rng, 2 * 16 * 81, -2.5f, 2.5f));
  const std::vector<std::string> extra = {"c1", "c2", "add", "dq"};
  const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", x}}, {"c1", "c2", "add"});
  const auto out = runLowered(model, {{"x", x}}, extra);
  // "dq" is already a graph output: it comes back once, in its place.
  REQUIRE(out.size() == expected.size());
  for (size_t i = 0; i < out.size(); ++i) {
    CAPTURE(i, out[i].first);
    CHECK(out[i].second.bitwiseEqual(expected[i]));
  }
  CHECK(out[0].first == "dq");
  CHECK(out[2].first == "c1");

  runtime::SessionOptions options;
  options.extraOutputs = {"no_such_value"};
  auto bad = runtime::Session::create(model, options);
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().message().find("no_such_value") != std::string::npos);
}

namespace {

/// The one output of `model` on x (input "x"), at 1 and 2 threads, has the bytes of the ops run
/// one by one (NCHW), and the channels-last plan holds each of `inPlan`.
void checkChannelsLastChain(const ir::Model& model, const ir::Tensor& x, const std::vector<const char*>& inPlan) {
  checkBytesOfNodeByNode(model, {{"x", x}});
  auto plan = runtime::cpu::quant::channelsLastValues(*model.graph);
  for (const char* name : inPlan) {
    CAPTURE(name);
    CHECK(plan.contains(model.graph->findValue(name)));
  }
}

}  // namespace

TEST_CASE("MaxPool and channel QLinearConcat between int8 convolutions keep the chain's bytes", "[kernels][quant]") {
  // q -> conv -> MaxPool 3x3/2 (ceil) -> {conv 1x1, conv 3x3} -> QLinearConcat (requantizing one
  // input) -> conv -> DQ: the runtime keeps all of it NHWC; the one-by-one run is NCHW.
  std::mt19937_64 rng(29);
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    CAPTURE(ir::dataTypeName(act));
    GraphBuilder gb;
    gb.importDomain("com.microsoft", 1);
    const int32_t zp = act == DataType::kUint8 ? 110 : -10;
    auto s = [&](const std::string& n, float v) { return gb.constant(n, scalar(v)); };
    auto z = [&](const std::string& n, int32_t v) { return gb.constant(n, scalar(act, v)); };
    auto conv = [&](ir::Value* x, ir::Value* xs, ir::Value* xz, int64_t c, int64_t m, int64_t k, ir::Value* ys,
                    ir::Value* yz, const std::string& name) {
      const std::vector<int64_t> wd{m, c, k, k};
      ir::Value* w = gb.constant(name + "_w", intTensor(DataType::kInt8, wd, randomInts(rng, numel(wd), -50, 50)));
      ir::Value* ws = gb.constant(name + "_ws", floatTensor({m}, randomFloats(rng, m, 0.004f, 0.01f)));
      ir::Value* wz = gb.constant(name + "_wz", intTensor(DataType::kInt8, {m}, std::vector<int32_t>(m, 0)));
      const int64_t p = k / 2;
      return gb.node("QLinearConv", {x, xs, xz, w, ws, wz, ys, yz},
                     {ir::Attribute::makeInts("kernel_shape", {k, k}), ir::Attribute::makeInts("pads", {p, p, p, p})}, name);
    };
    ir::Value* x = gb.input("x", DataType::kFloat, {2, 8, 15, 15});
    ir::Value* xq = gb.node("QuantizeLinear", {x, s("s0", 0.02f), z("z0", zp)}, {}, "q");
    ir::Value* c1 = conv(xq, s("s0b", 0.02f), z("z0b", zp), 8, 16, 3, s("s1", 0.05f), z("z1", zp + 2), "c1");
    ir::Value* pool = gb.node("MaxPool", {c1},
                              {ir::Attribute::makeInts("kernel_shape", {3, 3}), ir::Attribute::makeInts("strides", {2, 2}),
                               ir::Attribute::makeInt("ceil_mode", 1)},
                              "pool");
    ir::Value* e1 = conv(pool, s("s1b", 0.05f), z("z1b", zp + 2), 16, 8, 1, s("s2", 0.04f), z("z2", zp), "e1");
    ir::Value* e3 = conv(pool, s("s1c", 0.05f), z("z1c", zp + 2), 16, 8, 3, s("s3", 0.06f), z("z3", zp + 1), "e3");
    ir::Value* cat = gb.node("QLinearConcat",
                             {s("s4", 0.06f), z("z4", zp + 1), e1, s("s2b", 0.04f), z("z2b", zp), e3, s("s3b", 0.06f),
                              z("z3b", zp + 1)},
                             {ir::Attribute::makeInt("axis", 1)}, "cat", "com.microsoft");
    ir::Value* c2 = conv(cat, s("s4b", 0.06f), z("z4b", zp + 1), 16, 4, 3, s("s5", 0.05f), z("z5", zp), "c2");
    gb.output(gb.node("DequantizeLinear", {c2, s("s5b", 0.05f), z("z5b", zp)}, {}, "dq"));
    ir::Model model = gb.build(13);
    const ir::Tensor xv = floatTensor({2, 8, 15, 15}, randomFloats(rng, 2 * 8 * 225, -2.5f, 2.5f));
    checkChannelsLastChain(model, xv, {"q", "c1", "pool", "e1", "e3", "cat"});  // the plan covers the whole chain
  }
}

TEST_CASE("QuantizeLinear into the channels-last plan transposes many channels in blocks with the bytes of NCHW",
          "[kernels][quant]") {
  // Q of [2, C, 19, 17] (323 pixels: a full 256-pixel tile and a ragged one) -> conv 1x1 -> DQ:
  // C = 83 is a full 64-channel block and a ragged one, neither a multiple of 16 (the 16x16
  // transposes' edges); C = 32 one block of whole 16x16 transposes; C = 3 the interleave.
  std::mt19937_64 rng(31);
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    for (int64_t c : {83, 32, 3}) {
      CAPTURE(ir::dataTypeName(act), c);
      GraphBuilder gb;
      const int32_t zp = act == DataType::kUint8 ? 117 : -6;
      auto s = [&](const std::string& n, float v) { return gb.constant(n, scalar(v)); };
      auto z = [&](const std::string& n, int32_t v) { return gb.constant(n, scalar(act, v)); };
      const std::vector<int64_t> xd{2, c, 19, 17}, wd{8, c, 1, 1};
      ir::Value* x = gb.input("x", DataType::kFloat, xd);
      ir::Value* xq = gb.node("QuantizeLinear", {x, s("s0", 0.02f), z("z0", zp)}, {}, "q");
      ir::Value* w = gb.constant("w", intTensor(DataType::kInt8, wd, randomInts(rng, numel(wd), -50, 50)));
      ir::Value* c1 = gb.node("QLinearConv",
                              {xq, s("s0b", 0.02f), z("z0b", zp), w, gb.constant("ws", floatTensor({8}, randomFloats(rng, 8, 0.004f, 0.01f))),
                               gb.constant("wz", intTensor(DataType::kInt8, {8}, std::vector<int32_t>(8, 0))), s("s1", 0.3f),
                               z("z1", zp + 1)},
                              {ir::Attribute::makeInts("kernel_shape", {1, 1})}, "c1");
      gb.output(gb.node("DequantizeLinear", {c1, s("s1b", 0.3f), z("z1b", zp + 1)}, {}, "dq"));
      const ir::Model model = gb.build(13);
      const ir::Tensor xv = floatTensor(xd, randomFloats(rng, numel(xd), -3.0f, 3.0f));
      checkChannelsLastChain(model, xv, {"q"});  // the conv's x is NHWC bytes
    }
  }
}

TEST_CASE("A long-window convolution (im2col + GEMM) in a quantized chain gives the bytes of the ops run one by one",
          "[kernels][quant]") {
  // Q -> QLinearConv with one input channel and a 128-tap window (the GEMM path) -> a 3-tap conv
  // over its channels (oneDNN's direct path) -> DQ: the first conv's x and y may live channels-last.
  std::mt19937_64 rng(19);
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    for (int32_t wZp : {0, -7}) {
      CAPTURE(ir::dataTypeName(act), wZp);
      GraphBuilder gb;
      const int32_t zp = act == DataType::kUint8 ? 120 : -8;
      auto q = [&](const std::string& name, float scale, int32_t z) {
        return std::pair{gb.constant(name + "_s", scalar(scale)), gb.constant(name + "_z", scalar(act, z))};
      };
      auto conv = [&](ir::Value* x, std::pair<ir::Value*, ir::Value*> xq, int64_t c, int64_t m, int64_t k, int64_t stride,
                      int64_t pad, std::pair<ir::Value*, ir::Value*> yq, const std::string& name) {
        const std::vector<int64_t> wd{m, c, k};
        std::vector<int32_t> zps(static_cast<size_t>(m), wZp), wv = randomInts(rng, numel(wd), -40, 40);
        for (size_t i = 0; i < zps.size(); ++i) zps[i] += wZp == 0 ? 0 : static_cast<int32_t>(i % 3);
        for (size_t i = 0; i < wv.size(); ++i) wv[i] += zps[i / static_cast<size_t>(c * k)];
        return gb.node("QLinearConv",
                       {x, xq.first, xq.second, gb.constant(name + "_w", intTensor(DataType::kInt8, wd, wv)),
                        gb.constant(name + "_ws", floatTensor({m}, randomFloats(rng, m, 0.002f, 0.004f))),
                        gb.constant(name + "_wz", intTensor(DataType::kInt8, {m}, zps)), yq.first, yq.second,
                        gb.constant(name + "_b", intTensor(DataType::kInt32, {m}, randomInts(rng, m, -500, 500)))},
                       {ir::Attribute::makeInts("kernel_shape", {k}), ir::Attribute::makeInts("strides", {stride}),
                        ir::Attribute::makeInts("pads", {pad, pad})},
                       name);
      };
      ir::Value* x = gb.input("x", DataType::kFloat, {2, 1, 700});
      auto q0 = q("q0", 0.02f, zp), q1 = q("q1", 0.2f, zp + 3), q2 = q("q2", 0.3f, zp - 2);
      ir::Value* xq = gb.node("QuantizeLinear", {x, q0.first, q0.second}, {}, "q");
      ir::Value* c1 = conv(xq, q0, 1, 24, 128, 16, 9, q1, "c1");
      ir::Value* c2 = conv(c1, q1, 24, 16, 3, 1, 1, q2, "c2");
      gb.output(gb.node("DequantizeLinear", {c2, q2.first, q2.second}, {}, "dq"));
      const ir::Model model = gb.build(13);
      const ir::Tensor xt = floatTensor({2, 1, 700}, randomFloats(rng, 1400, -2.5f, 2.5f));
      const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", xt}});
      for (int threads : {1, 2}) {
        auto out = runOutputs(model, {{"x", xt}}, threads);
        REQUIRE(out.size() == expected.size());
        for (size_t i = 0; i < out.size(); ++i) CHECK(out[i].bitwiseEqual(expected[i]));
      }
    }
  }
}

TEST_CASE("MaxPool on channels-last bytes gives the bytes of the NCHW pool for any channel count", "[kernels][quant]") {
  // q -> MaxPool -> conv 1x1 -> DQ: the pool reads and writes NHWC bytes (64 channels a vector,
  // the last block masked); the one-by-one run pools NCHW planes.
  std::mt19937_64 rng(31);
  struct PoolShape {
    int64_t c, h, w, k, stride, pad;
    bool ceil;
  };
  const std::vector<PoolShape> shapes = {
      {24, 17, 17, 3, 2, 1, false}, {64, 9, 9, 3, 1, 1, false}, {70, 8, 11, 2, 2, 0, true}, {130, 6, 7, 3, 2, 0, true}, {5, 7, 7, 5, 1, 2, false}};
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    for (const PoolShape& ps : shapes) {
      CAPTURE(ir::dataTypeName(act), ps.c, ps.h, ps.w, ps.k, ps.stride, ps.pad, ps.ceil);
      GraphBuilder gb;
      const int32_t zp = act == DataType::kUint8 ? 100 : -7;
      auto s = [&](const std::string& n, float v) { return gb.constant(n, scalar(v)); };
      auto z = [&](const std::string& n, int32_t v) { return gb.constant(n, scalar(act, v)); };
      ir::Value* x = gb.input("x", DataType::kFloat, {1, ps.c, ps.h, ps.w});
      ir::Value* xq = gb.node("QuantizeLinear", {x, s("s0", 0.02f), z("z0", zp)}, {}, "q");
      ir::Value* pool = gb.node("MaxPool", {xq},
                                {ir::Attribute::makeInts("kernel_shape", {ps.k, ps.k}), ir::Attribute::makeInts("strides", {ps.stride, ps.stride}),
                                 ir::Attribute::makeInts("pads", {ps.pad, ps.pad, ps.pad, ps.pad}), ir::Attribute::makeInt("ceil_mode", ps.ceil)},
                                "pool");
      const std::vector<int64_t> wd{8, ps.c, 1, 1};
      ir::Value* w = gb.constant("w", intTensor(DataType::kInt8, wd, randomInts(rng, numel(wd), -50, 50)));
      ir::Value* conv = gb.node("QLinearConv",
                                {pool, s("s0b", 0.02f), z("z0b", zp), w, gb.constant("ws", floatTensor({8}, randomFloats(rng, 8, 0.002f, 0.006f))),
                                 gb.constant("wz", intTensor(DataType::kInt8, {8}, std::vector<int32_t>(8, 0))), s("s1", 0.05f), z("z1", zp)},
                                {ir::Attribute::makeInts("kernel_shape", {1, 1})}, "conv");
      gb.output(gb.node("DequantizeLinear", {conv, s("s1b", 0.05f), z("z1b", zp)}, {}, "dq"));
      ir::Model model = gb.build(13);
      const ir::Tensor xv = floatTensor({1, ps.c, ps.h, ps.w}, randomFloats(rng, ps.c * ps.h * ps.w, -2.5f, 2.5f));
      const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", xv}});
      for (int threads : {1, 2}) {
        auto out = runOutputs(model, {{"x", xv}}, threads);
        REQUIRE(out.size() == 1);
        CHECK(out[0].bitwiseEqual(expected[0]));
      }
      CHECK(runtime::cpu::quant::channelsLastValues(*model.graph).contains(model.graph->findValue("pool")));
    }
  }
}

TEST_CASE("AveragePool, ChannelGather and nearest Resize on channels-last bytes give the bytes of the NCHW ops",
          "[kernels][quant]") {
  // q -> conv 3x3 -> QLinearAveragePool 3x3/2 -> ChannelGather (a shuffle of two groups, then the
  // odd half) -> nearest Resize x2 -> conv 1x1 -> QLinearAveragePool over the whole image (one
  // pixel) -> Flatten -> DQ: ShuffleNet's blocks and an FPN's upsampling. The runtime keeps the
  // chain NHWC up to the one-pixel pool, whose [N, C, 1, 1] bytes the Flatten reads as they are;
  // the one-by-one run is NCHW.
  std::mt19937_64 rng(37);
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    for (int64_t c : {24, 70, 132}) {
      for (bool includePad : {false, true}) {
        CAPTURE(ir::dataTypeName(act), c, includePad);
        GraphBuilder gb;
        gb.importDomain("com.microsoft", 1);
        gb.importDomain("com.whittle.internal", 1);
        const int32_t zp = act == DataType::kUint8 ? 100 : -6;
        auto s = [&](const std::string& n, float v) { return gb.constant(n, scalar(v)); };
        auto z = [&](const std::string& n, int32_t v) { return gb.constant(n, scalar(act, v)); };
        auto conv = [&](ir::Value* x, const std::string& xq, int64_t in, int64_t m, int64_t k, const std::string& yq,
                        const std::string& name) {
          const std::vector<int64_t> wd{m, in, k, k};
          const int64_t p = k / 2;
          return gb.node("QLinearConv",
                         {x, s(name + "_xs", 0.02f), z(name + "_xz", xq == "q" ? zp : zp + 2),
                          gb.constant(name + "_w", intTensor(DataType::kInt8, wd, randomInts(rng, numel(wd), -50, 50))),
                          gb.constant(name + "_ws", floatTensor({m}, randomFloats(rng, m, 0.002f, 0.006f))),
                          gb.constant(name + "_wz", intTensor(DataType::kInt8, {m}, std::vector<int32_t>(m, 0))),
                          s(name + "_ys", 0.05f), z(name + "_yz", zp + 2)},
                         {ir::Attribute::makeInts("kernel_shape", {k, k}), ir::Attribute::makeInts("pads", {p, p, p, p})},
                         name);
        };
        auto pool = [&](ir::Value* x, std::vector<int64_t> k, std::vector<int64_t> strides, std::vector<int64_t> pads,
                        float ys, int32_t yz, const std::string& name) {
          return gb.node("QLinearAveragePool", {x, s(name + "_xs", 0.05f), z(name + "_xz", zp + 2), s(name + "_ys", ys), z(name + "_yz", yz)},
                         {ir::Attribute::makeInts("kernel_shape", k), ir::Attribute::makeInts("strides", strides),
                          ir::Attribute::makeInts("pads", pads), ir::Attribute::makeInt("count_include_pad", includePad)},
                         name, "com.microsoft");
        };
        ir::Value* x = gb.input("x", DataType::kFloat, {1, 8, 13, 11});
        ir::Value* xq = gb.node("QuantizeLinear", {x, s("s0", 0.02f), z("z0", zp)}, {}, "q");
        ir::Value* c1 = conv(xq, "q", 8, c, 3, "c1", "c1");
        ir::Value* p1 = pool(c1, {3, 3}, {2, 2}, {1, 1, 1, 1}, 0.05f, zp + 2, "pool");  // 7 x 6
        std::vector<int64_t> map;
        for (int64_t j = c / 2; j < c; ++j) map.push_back((j % 2) * (c / 2) + j / 2);  // the odd half of a shuffle
        ir::Value* g = gb.node("ChannelGather", {p1}, {ir::Attribute::makeInts("channels", map)}, "gather",
                               "com.whittle.internal");
        ir::Value* r = gb.node("Resize", {g, gb.constant("roi", floatTensor({0}, {})), gb.constant("scales", floatTensor({4}, {1, 1, 2, 2}))},
                               {ir::Attribute::makeString("mode", "nearest")}, "resize");  // 14 x 12
        ir::Value* c2 = conv(r, "c1", c / 2, 16, 1, "c2", "c2");
        ir::Value* p2 = pool(c2, {14, 12}, {1, 1}, {0, 0, 0, 0}, 0.03f, zp, "gpool");
        ir::Value* flat = gb.node("Flatten", {p2}, {}, "flat");
        gb.output(gb.node("DequantizeLinear", {flat, s("s9", 0.03f), z("z9", zp)}, {}, "dq"));
        ir::Model model = gb.build(13);
        const ir::Tensor xv = floatTensor({1, 8, 13, 11}, randomFloats(rng, 8 * 13 * 11, -2.5f, 2.5f));
        checkChannelsLastChain(model, xv, {"c1", "pool", "gather", "resize", "c2", "gpool"});
      }
    }
  }
}

namespace {

// A QLinearConv of x (act bytes, scale xs, zero point xz) by seeded int8 weights [m, inC / group,
// k, k] with zero points 0 and "same" pads, to act bytes at (ys, yz); the constants are named
// after `name`.
ir::Value* byteConv(GraphBuilder& gb, std::mt19937_64& rng, DataType act, ir::Value* x, float xs, int32_t xz, int64_t inC,
                    int64_t m, int64_t k, int64_t group, const std::vector<int64_t>& strides, float ys, int32_t yz,
                    const std::string& name) {
  auto s = [&](const std::string& n, float v) { return gb.constant(n, scalar(v)); };
  auto z = [&](const std::string& n, int32_t v) { return gb.constant(n, scalar(act, v)); };
  const std::vector<int64_t> wd{m, inC / group, k, k};
  const int64_t p = k / 2;
  return gb.node("QLinearConv",
                 {x, s(name + "_xs", xs), z(name + "_xz", xz),
                  gb.constant(name + "_w", intTensor(DataType::kInt8, wd, randomInts(rng, numel(wd), -50, 50))),
                  gb.constant(name + "_ws", floatTensor({m}, randomFloats(rng, m, 0.004f, 0.01f))),
                  gb.constant(name + "_wz", intTensor(DataType::kInt8, {m}, std::vector<int32_t>(m, 0))), s(name + "_ys", ys),
                  z(name + "_yz", yz)},
                 {ir::Attribute::makeInts("kernel_shape", {k, k}), ir::Attribute::makeInts("strides", strides),
                  ir::Attribute::makeInts("pads", {p, p, p, p}), ir::Attribute::makeInt("group", group)},
                 name);
}

}  // namespace

TEST_CASE("An NHWC input's Transpose and QLinearAveragePool in a channels-last chain keep the chain's bytes",
          "[kernels][quant]") {
  // x [N, H, W, C] -> Transpose [0, 3, 1, 2] -> Q -> conv 3x3 -> QLinearAveragePool -> {conv 1x1 -> DQ,
  // DQ}: the session quantizes before the Transpose (which then keeps the bytes), the convs and
  // the pool read NHWC, the pool writes NHWC for the conv and NCHW for the DQ (two pools, one per
  // reader). The one-by-one run transposes floats and pools NCHW planes.
  std::mt19937_64 rng(37);
  struct PoolCase {
    int64_t k, stride, pad;
    bool includePad, ceil;
  };
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    for (const PoolCase& pc : {PoolCase{3, 2, 1, false, false}, PoolCase{3, 2, 1, true, true},
                               PoolCase{7, 1, 0, false, false}, PoolCase{2, 2, 0, false, true}}) {
      CAPTURE(ir::dataTypeName(act), pc.k, pc.stride, pc.pad, pc.includePad, pc.ceil);
      GraphBuilder gb;
      gb.importDomain("com.microsoft", 1);
      const int32_t zp = act == DataType::kUint8 ? 105 : -9;
      auto s = [&](const std::string& n, float v) { return gb.constant(n, scalar(v)); };
      auto z = [&](const std::string& n, int32_t v) { return gb.constant(n, scalar(act, v)); };
      auto conv = [&](ir::Value* x, float xs, int32_t xz, int64_t c, int64_t m, int64_t k, float ys, int32_t yz,
                      const std::string& name) { return byteConv(gb, rng, act, x, xs, xz, c, m, k, 1, {1, 1}, ys, yz, name); };
      ir::Value* x = gb.input("x", DataType::kFloat, {2, 7, 7, 3});
      ir::Value* xt = gb.node("Transpose", {x}, {ir::Attribute::makeInts("perm", {0, 3, 1, 2})}, "t");
      ir::Value* xq = gb.node("QuantizeLinear", {xt, s("s0", 0.02f), z("z0", zp)}, {}, "q");
      ir::Value* c1 = conv(xq, 0.02f, zp, 3, 24, 3, 0.05f, zp + 2, "c1");
      auto pool = [&](const std::string& name, float ys, int32_t yz) {
        return gb.node(
            "QLinearAveragePool",
            {c1, s(name + "_xs", 0.05f), z(name + "_xz", zp + 2), s(name + "_ys", ys), z(name + "_yz", yz)},
            {ir::Attribute::makeInts("kernel_shape", {pc.k, pc.k}),
             ir::Attribute::makeInts("strides", {pc.stride, pc.stride}),
             ir::Attribute::makeInts("pads", {pc.pad, pc.pad, pc.pad, pc.pad}),
             ir::Attribute::makeInt("count_include_pad", pc.includePad), ir::Attribute::makeInt("ceil_mode", pc.ceil)},
            name, "com.microsoft");
      };
      ir::Value* p1 = pool("p1", 0.03f, zp);
      ir::Value* p2 = pool("p2", 0.045f, zp - 3);
      ir::Value* c2 = conv(p1, 0.03f, zp, 24, 8, 1, 0.05f, zp, "c2");
      gb.output(gb.node("DequantizeLinear", {c2, s("s5", 0.05f), z("z5", zp)}, {}, "dq"));
      gb.output(gb.node("DequantizeLinear", {p2, s("s6", 0.045f), z("z6", zp - 3)}, {}, "dq_pool"));
      ir::Model model = gb.build(13);
      checkBytesOfNodeByNode(model, {{"x", floatTensor({2, 7, 7, 3}, randomFloats(rng, 2 * 49 * 3, -2.5f, 2.5f))}});
      // After the session's lowering the whole chain is channels-last but the pool the DQ reads.
      ir::Model lowered = model.clone();
      REQUIRE(runtime::lowerForCpu(*lowered.graph).isOk());
      const ir::Node* first = lowered.graph->nodes().front();
      CHECK(first->opType() == "QuantizeLinear");
      CHECK(first->input(0)->name() == "x");
      auto plan = runtime::cpu::quant::channelsLastValues(*lowered.graph);
      const ir::Node* c1Node = lowered.graph->findValue("c1")->producer();
      CHECK(plan.contains(c1Node->input(0)));  // the Transpose's output
      CHECK(plan.contains(lowered.graph->findValue("c1")));
      CHECK(plan.contains(lowered.graph->findValue("p1")));
      CHECK_FALSE(plan.contains(lowered.graph->findValue("p2")));
    }
  }
}

TEST_CASE("Squeeze-excitation blocks behind strided convolutions stay channels-last when the input's dims are symbols",
          "[kernels][quant]") {
  // x [N, 3, H, W] (symbols or unnamed, as PaddleOCR's classifiers give) -> Q -> conv 3x3 s2 -> conv 1x1 ->
  // conv 5x5 depthwise (s2 or s(2, 1)) -> SE: QLinearGlobalAveragePool -> conv 1x1 -> conv 1x1 ->
  // QLinearMul by the gate -> conv 1x1 -> QLinearAdd with a same-size branch -> conv 1x1 -> DQ. The plan
  // carries the symbols through the convolutions (the same formula of the same symbol is the same
  // size), so the gate's Mul and the residual Add read NHWC bytes; channel counts whose rows end
  // in a partial vector (3, 40, 200) test the gate's and the pool's tiled rows.
  std::mt19937_64 rng(41);
  for (DataType act : {DataType::kUint8, DataType::kInt8}) {
    for (int64_t c : {3, 40, 200}) {
      for (int64_t strideW : {1, 2}) {
        CAPTURE(ir::dataTypeName(act), c, strideW);
        GraphBuilder gb;
        gb.importDomain("com.microsoft", 1);
        const int32_t zp = act == DataType::kUint8 ? 115 : -6;
        auto s = [&](const std::string& n, float v) { return gb.constant(n, scalar(v)); };
        auto z = [&](const std::string& n, int32_t v) { return gb.constant(n, scalar(act, v)); };
        auto conv = [&](ir::Value* x, float xs, int32_t xz, int64_t inC, int64_t m, int64_t k, int64_t group,
                        const std::vector<int64_t>& strides, float ys, int32_t yz, const std::string& name) {
          return byteConv(gb, rng, act, x, xs, xz, inC, m, k, group, strides, ys, yz, name);
        };
        // PaddleOCR v5's [n, 3, h, w], or rapidocr's [, 3, ?, ?] (an unnamed batch, one name for both).
        ir::Value* x = strideW == 1 ? gb.symbolicInput("x", DataType::kFloat,
                                                       {ir::Dim::symbolic("n"), ir::Dim::known(3), ir::Dim::symbolic("h"),
                                                        ir::Dim::symbolic("w")})
                                    : gb.symbolicInput("x", DataType::kFloat,
                                                       {ir::Dim{}, ir::Dim::known(3), ir::Dim::symbolic("?"), ir::Dim::symbolic("?")});
        ir::Value* xq = gb.node("QuantizeLinear", {x, s("s0", 0.02f), z("z0", zp)}, {}, "q");
        ir::Value* c1 = conv(xq, 0.02f, zp, 3, 8, 3, 1, {2, 2}, 0.05f, zp + 2, "c1");
        ir::Value* c2 = conv(c1, 0.05f, zp + 2, 8, c, 1, 1, {1, 1}, 0.04f, zp, "c2");
        ir::Value* dw = conv(c2, 0.04f, zp, c, c, 5, c, {2, strideW}, 0.06f, zp + 1, "dw");
        ir::Value* gap = gb.node("QLinearGlobalAveragePool", {dw, s("g_xs", 0.06f), z("g_xz", zp + 1), s("g_ys", 0.03f), z("g_yz", zp)},
                                 {ir::Attribute::makeInt("channels_last", 0)}, "gap", "com.microsoft");
        ir::Value* se1 = conv(gap, 0.03f, zp, c, 8, 1, 1, {1, 1}, 0.02f, zp, "se1");
        ir::Value* se2 = conv(se1, 0.02f, zp, 8, c, 1, 1, {1, 1}, 0.01f, zp - 20, "se2");
        ir::Value* mul = gb.node("QLinearMul",
                                 {dw, s("m_as", 0.06f), z("m_az", zp + 1), se2, s("m_bs", 0.01f), z("m_bz", zp - 20), s("m_cs", 0.05f),
                                  z("m_cz", zp + 3)},
                                 {}, "mul", "com.microsoft");
        ir::Value* p1 = conv(mul, 0.05f, zp + 3, c, 16, 1, 1, {1, 1}, 0.05f, zp, "p1");
        ir::Value* p2 = conv(p1, 0.05f, zp, 16, 16, 3, 1, {1, 1}, 0.05f, zp - 1, "p2");  // stride 1, same size
        ir::Value* add = gb.node("QLinearAdd",
                                 {p1, s("a_as", 0.05f), z("a_az", zp), p2, s("a_bs", 0.05f), z("a_bz", zp - 1), s("a_cs", 0.07f),
                                  z("a_cz", zp)},
                                 {}, "add", "com.microsoft");
        ir::Value* tail = conv(add, 0.07f, zp, 16, 4, 1, 1, {1, 1}, 0.07f, zp, "tail");
        gb.output(gb.node("DequantizeLinear", {tail, s("s9", 0.07f), z("z9", zp)}, {}, "dq"));
        ir::Model model = gb.build(13);
        for (auto [h, w] : {std::pair<int64_t, int64_t>{19, 23}, {12, 40}}) {
          CAPTURE(h, w);
          checkBytesOfNodeByNode(model, {{"x", floatTensor({1, 3, h, w}, randomFloats(rng, 3 * h * w, -2.5f, 2.5f))}});
        }
        auto plan = runtime::cpu::quant::channelsLastValues(*model.graph);
        for (const char* name : {"c1", "c2", "dw", "mul", "p1", "p2", "add"}) {
          CAPTURE(name);
          CHECK(plan.contains(model.graph->findValue(name)));
        }
      }
    }
  }
}
