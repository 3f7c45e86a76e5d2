#include "whittle/quant/quant_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace whittle::quant {

int32_t qmin(ir::DataType dtype, bool reduceRange) {
  switch (dtype) {
    case ir::DataType::kUint8: return 0;
    case ir::DataType::kInt8: return reduceRange ? -64 : -128;
    case ir::DataType::kInt32: return std::numeric_limits<int32_t>::min();
    default: return 0;
  }
}

int32_t qmax(ir::DataType dtype, bool reduceRange) {
  switch (dtype) {
    case ir::DataType::kUint8: return reduceRange ? 127 : 255;
    case ir::DataType::kInt8: return reduceRange ? 63 : 127;
    case ir::DataType::kInt32: return std::numeric_limits<int32_t>::max();
    default: return 0;
  }
}

int32_t quantizeValue(float x, float scale, int32_t zeroPoint, int32_t lo, int32_t hi) {
  if (std::isnan(x)) return zeroPoint;
  // Double keeps x / scale exact enough that the tie cases of round-half-even are the true ones.
  double q = std::nearbyint(static_cast<double>(x) / static_cast<double>(scale)) + zeroPoint;
  q = std::clamp(q, static_cast<double>(lo), static_cast<double>(hi));
  return static_cast<int32_t>(q);
}

QuantParams activationParams(float lo, float hi, ir::DataType dtype, bool reduceRange) {
  QuantParams p;
  p.dtype = dtype;
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (dtype == ir::DataType::kInt8) {
    float absMax = std::max(std::fabs(lo), std::fabs(hi));
    int32_t top = reduceRange ? 63 : 127;
    p.scale = absMax > 0 ? absMax / static_cast<float>(top) : 1.0f;
    p.zeroPoint = 0;
    return p;
  }
  int32_t qlo = qmin(dtype, reduceRange), qhi = qmax(dtype, reduceRange);
  if (hi - lo <= 0) {
    p.scale = 1.0f;
    p.zeroPoint = qlo;
    return p;
  }
  p.scale = (hi - lo) / static_cast<float>(qhi - qlo);
  double zp = std::nearbyint(qlo - static_cast<double>(lo) / p.scale);
  p.zeroPoint = static_cast<int32_t>(std::clamp(zp, static_cast<double>(qlo), static_cast<double>(qhi)));
  return p;
}

float weightScale(float absMax, bool reduceRange) {
  if (!(absMax > 0) || !std::isfinite(absMax)) return 1.0f;
  return absMax / (reduceRange ? 63.0f : 127.0f);
}

Expected<QuantizedWeight> quantizeWeight(const ir::Tensor& weight, int64_t axis, bool reduceRange) {
  if (weight.dtype() != ir::DataType::kFloat) {
    return invalidInput("quantizeWeight: expected a float32 weight, got " + std::string(ir::dataTypeName(weight.dtype())));
  }
  if (axis < -1 || axis >= weight.rank()) {
    return invalidInput("quantizeWeight: axis " + std::to_string(axis) + " is outside a weight of rank " +
                        std::to_string(weight.rank()));
  }
  const int64_t n = weight.numel();
  int64_t channels = 1, inner = n;
  if (axis >= 0) {
    channels = weight.dims()[axis];
    inner = 1;
    for (int64_t d = axis + 1; d < weight.rank(); ++d) inner *= weight.dims()[d];
  }
  const float* src = weight.data<float>();
  std::vector<float> absMax(channels, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = axis >= 0 ? (i / inner) % channels : 0;
    absMax[c] = std::max(absMax[c], std::fabs(src[i]));
  }
  QuantizedWeight out;
  out.axis = axis;
  out.scales.resize(channels);
  for (int64_t c = 0; c < channels; ++c) out.scales[c] = weightScale(absMax[c], reduceRange);
  out.values = ir::Tensor(ir::DataType::kInt8, weight.dims());
  int8_t* dst = out.values.mutableData<int8_t>();
  const int32_t top = reduceRange ? 63 : 127;
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = axis >= 0 ? (i / inner) % channels : 0;
    dst[i] = static_cast<int8_t>(quantizeValue(src[i], out.scales[c], 0, -top, top));
  }
  return out;
}

Expected<ir::Tensor> quantizeBias(const ir::Tensor& bias, float inputScale, const std::vector<float>& weightScales,
                                  std::vector<float>* scalesOut) {
  if (bias.dtype() != ir::DataType::kFloat) {
    return invalidInput("quantizeBias: expected a float32 bias, got " + std::string(ir::dataTypeName(bias.dtype())));
  }
  const int64_t n = bias.numel();
  if (weightScales.size() != 1 && static_cast<int64_t>(weightScales.size()) != n) {
    return invalidInput("quantizeBias: " + std::to_string(weightScales.size()) + " weight scales for a bias of " +
                        std::to_string(n) + " elements");
  }
  std::vector<float> scales(weightScales.size());
  for (size_t c = 0; c < weightScales.size(); ++c) scales[c] = inputScale * weightScales[c];
  ir::Tensor out(ir::DataType::kInt32, bias.dims());
  int32_t* dst = out.mutableData<int32_t>();
  const float* src = bias.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    float s = scales[scales.size() == 1 ? 0 : i];
    dst[i] = quantizeValue(src[i], s, 0, qmin(ir::DataType::kInt32), qmax(ir::DataType::kInt32) );
  }
  if (scalesOut != nullptr) *scalesOut = std::move(scales);
  return out;
}

}  // namespace whittle::quant
