#pragma once
// Scale and zero-point arithmetic of int8 quantization, shared by the quantize passes and
// their tests. The conventions are ONNX's QuantizeLinear:
//   q = saturate(round_half_even(x / scale) + zero_point)
//   x ≈ (q - zero_point) * scale
// Weights are int8 symmetric (zero point 0, range [-127, 127], or [-63, 63] with reduce-range
// for CPUs without VNNI), per output channel or per tensor. Activations are uint8 asymmetric
// (the real range, stretched to include 0, maps onto [0, 255]) or int8 symmetric (zero point
// 0, scale = max|x| / 127). Biases are int32 with scale = input scale × weight scale.

#include <cstdint>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/data_type.h"
#include "whittle/ir/tensor.h"

namespace whittle::quant {

/// The scale and zero point of one quantized tensor (or one channel of it).
struct QuantParams {
  float scale = 1.0f;
  int32_t zeroPoint = 0;
  ir::DataType dtype = ir::DataType::kUint8;
  bool operator==(const QuantParams&) const = default;
};

/// The representable range of an integer type: [0, 255] uint8, [-128, 127] int8, int32's.
/// With `reduceRange` the 7-bit range: [0, 127] uint8, [-64, 63] int8.
int32_t qmin(ir::DataType dtype, bool reduceRange = false);
int32_t qmax(ir::DataType dtype, bool reduceRange = false);

/// round_half_even(x / scale) + zeroPoint, saturated to [lo, hi]. NaN maps to zeroPoint.
int32_t quantizeValue(float x, float scale, int32_t zeroPoint, int32_t lo, int32_t hi);

/// The parameters of an activation whose calibrated range is [lo, hi]. uint8: asymmetric,
/// the range stretched to hold 0 so that 0 is exact; int8: symmetric, zero point 0. A range
/// of width 0 gives scale 1.
QuantParams activationParams(float lo, float hi, ir::DataType dtype, bool reduceRange = false);

/// The scale of an int8 symmetric weight (or channel) whose largest magnitude is `absMax`:
/// absMax / 127 (absMax / 63 with reduceRange); 1 when absMax is 0.
float weightScale(float absMax, bool reduceRange = false);

/// A weight quantized to int8, symmetric.
struct QuantizedWeight {
  ir::Tensor values;          ///< int8, the weight's dims.
  std::vector<float> scales;  ///< One per channel along `axis`, or one.
  int64_t axis = -1;          ///< The channel axis, or -1 for per-tensor.
};

/// Quantizes a float32 weight per channel along `axis` (0 <= axis < rank), or per tensor
/// when axis is -1. An axis outside the rank is an error naming it.
Expected<QuantizedWeight> quantizeWeight(const ir::Tensor& weight, int64_t axis, bool reduceRange = false);

/// Quantizes a float32 bias to int32 with scale inputScale × weightScales[c] (one weight
/// scale, or one per element of the bias), zero point 0, saturated to int32. Returns the
/// int32 tensor; `scalesOut` receives the scales (one per element, or one).
Expected<ir::Tensor> quantizeBias(const ir::Tensor& bias, float inputScale, const std::vector<float>& weightScales,
                                  std::vector<float>* scalesOut);

}  // namespace whittle::quant
