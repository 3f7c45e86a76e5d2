#pragma once
// Plain scalar references for Conv, ConvTranspose and the fused epilogues: the ground truth
// for tests, and the path for dtypes and shapes that oneDNN does not take (float64, empty
// tensors). Tensors are channels first (ONNX order), row major.

#include <optional>
#include <string>
#include <vector>

#include "cpu/conv_params.h"
#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace dnnl {
class post_ops;
}  // namespace dnnl

namespace whittle::runtime::cpu {

/// y = Conv(x, w) + b, accumulating in double. `b` may be null.
template <typename T>
void referenceConv(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y);

/// y = ConvTranspose(x, w) + b, accumulating in double. `b` may be null.
template <typename T>
void referenceConvTranspose(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y);

/// One step of a fused epilogue: an activation or the residual sum.
struct ConvPostOp {
  /// ONNX op type of the activation (Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid,
  /// HardSwish, Elu, Swish, Gelu (the exact, erf form), Linear), or "Sum" for adding input Z.
  std::string op;
  float alpha = 0;
  float beta = 0;
  bool isSum() const { return op == "Sum"; }
};

/// The epilogue of a FusedConv node from its post_ops / post_op_params attributes.
Expected<std::vector<ConvPostOp>> readConvPostOps(const ir::Node& node);

/// Whether `op` names an activation that FusedConv runs as a post-op.
bool isFusableActivation(const std::string& op);

/// Appends `ops` to a oneDNN post-op chain.
void appendDnnlPostOps(const std::vector<ConvPostOp>& ops, dnnl::post_ops& chain);

/// Applies activation `op` to one value (not Sum).
double applyActivation(const ConvPostOp& op, double v);

}  // namespace whittle::runtime::cpu
