// Scale and zero-point math against a plain scalar reference (written here from the ONNX
// QuantizeLinear definition, independently of src/quant/quant_math.cpp).
#include "whittle/quant/quant_math.h"

#include <catch2/catch.hpp>
#include <cfenv>
#include <cmath>

#include "support/graph_builder.h"
#include "whittle/quant/qdq.h"

using namespace whittle;

namespace {

// Round half to even without nearbyint: floor, then look at the remainder.
double roundHalfEven(double v) {
  double f = std::floor(v);
  double r = v - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return std::fmod(f, 2.0) == 0 ? f : f + 1;
}

int32_t referenceQuantize(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  double q = roundHalfEven(static_cast<double>(x) / scale) + zp;
  return static_cast<int32_t>(std::min<double>(std::max<double>(q, lo), hi));
}

}  // namespace

TEST_CASE("quantizeValue rounds half to even and saturates", "[quant]") {
  CHECK(quant::quantizeValue(2.5f, 1.0f, 0, -128, 127) == 2);
  CHECK(quant::quantizeValue(3.5f, 1.0f, 0, -128, 127) == 4);
  CHECK(quant::quantizeValue(-2.5f, 1.0f, 0, -128, 127) == -2);
  CHECK(quant::quantizeValue(-3.5f, 1.0f, 0, -128, 127) == -4);
  CHECK(quant::quantizeValue(0.5f, 0.5f, 10, 0, 255) == 11);
  CHECK(quant::quantizeValue(1000.0f, 1.0f, 0, -128, 127) == 127);
  CHECK(quant::quantizeValue(-1000.0f, 1.0f, 0, -128, 127) == -128);
  CHECK(quant::quantizeValue(-1000.0f, 1.0f, 5, 0, 255) == 0);
  CHECK(quant::quantizeValue(std::nanf(""), 1.0f, 7, 0, 255) == 7);
  testing::GraphBuilder b(3);
  ir::Tensor t = b.randomTensor(ir::DataType::kFloat, {4096}, -300, 300);
  for (float x : t.values<float>()) {
    for (float s : {0.37f, 1.0f, 2.0f}) {
      CHECK(quant::quantizeValue(x, s, 128, 0, 255) == referenceQuantize(x, s, 128, 0, 255));
      CHECK(quant::quantizeValue(x, s, 0, -128, 127) == referenceQuantize(x, s, 0, -128, 127));
    }
  }
}

TEST_CASE("activation parameters: uint8 asymmetric and int8 symmetric", "[quant]") {
  // uint8: [-1, 3] -> scale 4/255, zero point round(1 / scale) = round(63.75) = 64.
  quant::QuantParams u = quant::activationParams(-1.0f, 3.0f, ir::DataType::kUint8);
  CHECK(u.dtype == ir::DataType::kUint8);
  CHECK(u.scale == Approx(4.0 / 255.0));
  CHECK(u.zeroPoint == 64);
  // The range is stretched to hold 0: [2, 5] behaves as [0, 5].
  quant::QuantParams pos = quant::activationParams(2.0f, 5.0f, ir::DataType::kUint8);
  CHECK(pos.scale == Approx(5.0 / 255.0));
  CHECK(pos.zeroPoint == 0);
  quant::QuantParams neg = quant::activationParams(-6.0f, -1.0f, ir::DataType::kUint8);
  CHECK(neg.zeroPoint == 255);
  // int8 symmetric: scale = max|x| / 127, zero point 0.
  quant::QuantParams s = quant::activationParams(-1.0f, 3.0f, ir::DataType::kInt8);
  CHECK(s.dtype == ir::DataType::kInt8);
  CHECK(s.scale == Approx(3.0 / 127.0));
  CHECK(s.zeroPoint == 0);
  // A degenerate range still gives a usable scale.
  CHECK(quant::activationParams(0.0f, 0.0f, ir::DataType::kUint8).scale == 1.0f);
  // Zero is exact in uint8: quantize(0) dequantizes to 0.
  for (float lo : {-0.3f, -1.7f, -10.0f}) {
    quant::QuantParams p = quant::activationParams(lo, 4.2f, ir::DataType::kUint8);
    int32_t q = quant::quantizeValue(0.0f, p.scale, p.zeroPoint, 0, 255);
    CHECK((q - p.zeroPoint) * p.scale == 0.0f);
  }
}

TEST_CASE("weights: per-channel axes, per-tensor and reduce-range against a scalar reference", "[quant]") {
  testing::GraphBuilder b(11);
  ir::Tensor w = b.randomTensor(ir::DataType::kFloat, {4, 3, 2, 2}, -2, 2);
  for (int64_t axis : {-1, 0, 1, 3}) {
    for (bool reduce : {false, true}) {
      INFO("axis " << axis << " reduce-range " << reduce);
      auto q = quant::quantizeWeight(w, axis, reduce);
      REQUIRE(q.isOk());
      int64_t channels = axis < 0 ? 1 : w.dims()[axis];
      REQUIRE(static_cast<int64_t>(q->scales.size()) == channels);
      CHECK(q->values.dtype() == ir::DataType::kInt8);
      const int top = reduce ? 63 : 127;
      // Reference: strides of the channel axis computed directly.
      int64_t inner = 1;
      if (axis >= 0) {
        for (int64_t d = axis + 1; d < w.rank(); ++d) inner *= w.dims()[d];
      }
      std::vector<double> absMax(channels, 0);
      for (int64_t i = 0; i < w.numel(); ++i) {
        int64_t c = axis < 0 ? 0 : (i / inner) % channels;
        absMax[c] = std::max(absMax[c], std::fabs(static_cast<double>(w.data<float>()[i])));
      }
      for (int64_t c = 0; c < channels; ++c) CHECK(q->scales[c] == Approx(absMax[c] / top).epsilon(1e-6));
      for (int64_t i = 0; i < w.numel(); ++i) {
        int64_t c = axis < 0 ? 0 : (i / inner) % channels;
        int32_t ref = referenceQuantize(w.data<float>()[i], q->scales[c], 0, -top, top);
        CHECK(q->values.data<int8_t>()[i] == ref);
      }
    }
  }
  CHECK_FALSE(quant::quantizeWeight(w, 4).isOk());
}

TEST_CASE("biases are int32 with scale = input scale x weight scale", "[quant]") {
  ir::Tensor bias = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {3}, {0.5f, -1.25f, 1e9f});
  std::vector<float> scales;
  auto q = quant::quantizeBias(bias, 0.1f, {0.01f, 0.02f, 1e-6f}, &scales);
  REQUIRE(q.isOk());
  REQUIRE(scales.size() == 3);
  CHECK(scales[0] == Approx(0.001f));
  CHECK(q->dtype() == ir::DataType::kInt32);
  CHECK(q->data<int32_t>()[0] == referenceQuantize(0.5f, 0.1f * 0.01f, 0, INT32_MIN, INT32_MAX));
  CHECK(q->data<int32_t>()[1] == referenceQuantize(-1.25f, 0.1f * 0.02f, 0, INT32_MIN, INT32_MAX));
  CHECK(q->data<int32_t>()[2] == INT32_MAX);  // saturated
  CHECK_FALSE(quant::quantizeBias(bias, 0.1f, {0.1f, 0.2f}, nullptr).isOk());
}

TEST_CASE("the per-channel weight axis follows the op", "[quant]") {
  testing::GraphBuilder b(1);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 8, 8});
  ir::Value* conv = b.node("Conv", {x, b.weight("w", {6, 4, 3, 3})});
  ir::Node* convNode = conv->producer();
  ir::Value* deconv = b.node("ConvTranspose", {conv, b.weight("wt", {6, 5, 3, 3})});
  ir::Node* deconvNode = deconv->producer();
  ir::Value* flat = b.node("Flatten", {deconv});
  ir::Value* gemm = b.node("Gemm", {flat, b.weight("g", {10, 5 * 10 * 10})}, {ir::Attribute::makeInt("transB", 1)});
  ir::Node* gemmNode = gemm->producer();
  ir::Value* mm = b.node("MatMul", {gemm, b.weight("m", {10, 7})});
  CHECK(quant::weightChannelAxis(*convNode, 1, 4) == 0);
  CHECK(quant::weightChannelAxis(*deconvNode, 1, 4) == 1);
  CHECK(quant::weightChannelAxis(*gemmNode, 1, 2) == 0);
  CHECK(quant::weightChannelAxis(*mm->producer(), 1, 2) == 1);
  CHECK(quant::weightChannelAxis(*mm->producer(), 1, 3) == -1);
  gemmNode->setAttribute(ir::Attribute::makeInt("transB", 0));
  CHECK(quant::weightChannelAxis(*gemmNode, 1, 2) == 1);
}
