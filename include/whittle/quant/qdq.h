#pragma once
// Graph surgery shared by the quantize passes: QuantizeLinear/DequantizeLinear pairs on
// activations, int8 weights behind DequantizeLinear, int32 biases and channel axes by op. The
// opset the quantized model needs comes from passes::upgradeOpset (whittle/passes/upgrade_opset.h).

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/quant/quant_math.h"

namespace whittle::quant {

/// The per-channel axis of the weight of `node` (its input `inputIndex`, of rank `rank`):
/// Conv 0 (output channels), ConvTranspose 1, Gemm 0 with transB=1 else 1, MatMul input B
/// of rank 2: 1 (columns). -1 when the op has no per-channel form that ONNX Runtime fuses.
int64_t weightChannelAxis(const ir::Node& node, size_t inputIndex, int64_t rank);

/// A scalar initializer holding `scale` (float32) and one holding `zeroPoint` of `dtype`.
ir::Value* addScaleInitializer(ir::Graph& graph, const std::string& base, const std::vector<float>& scales, bool scalar);
ir::Value* addZeroPointInitializer(ir::Graph& graph, const std::string& base, ir::DataType dtype,
                                   const std::vector<int32_t>& zeroPoints, bool scalar);

/// Inserts t → QuantizeLinear → DequantizeLinear → t' and moves every use of `t` (and its
/// place among the graph outputs, under its name) to t'. Returns the QuantizeLinear output.
ir::Value* insertQdqPair(ir::Graph& graph, ir::Value* t, const QuantParams& params);

/// An int8 initializer made from `weight` and a DequantizeLinear of it (per channel along
/// `axis`, or per tensor with -1). Returns the DequantizeLinear output; `scales` receives
/// the weight scales.
Expected<ir::Value*> addWeightDq(ir::Graph& graph, const ir::Tensor& weight, const std::string& base, int64_t axis,
                                 bool reduceRange, std::vector<float>* scales);

/// An int32 initializer made from a float `bias` and a DequantizeLinear of it (axis 0 when
/// there are several scales). Returns the DequantizeLinear output.
Expected<ir::Value*> addBiasDq(ir::Graph& graph, const ir::Tensor& bias, const std::string& base, float inputScale,
                               const std::vector<float>& weightScales);

// The QDQ groups themselves (which nodes form one, and their QOperator form) are defined in
// whittle/quant/qdq_groups.h.

}  // namespace whittle::quant
