#pragma once
// Helpers shared by the fusion passes on top of ir/match.h and ir/fold.h: per-channel
// constants after a Conv, and BatchNormalization as a per-channel affine map.

#include <cstdint>
#include <optional>
#include <vector>

#include "whittle/ir/fold.h"
#include "whittle/ir/graph.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

/// The values of a constant that is either a scalar or has exactly `channels` elements laid
/// out along axis 1 of a rank-`rank` tensor ([C,1,1] for NCHW), broadcast to `channels`
/// values; empty when its shape is anything else.
std::vector<double> perChannelValues(const ir::Tensor& t, int64_t channels, int64_t rank);

/// For y = Op(a, b) with one of a, b the single-use output of a Conv whose weight (and bias,
/// if any) are float constants and the other a constant: the Conv, the constant operand's
/// per-channel values, and which input of the root the Conv feeds. Returns nullopt if the
/// pattern does not hold.
struct ConvWithConstant {
  ir::Node* conv = nullptr;
  std::vector<double> values;
  size_t convInput = 0;
};
std::optional<ConvWithConstant> matchConvWithConstant(const ir::Node& root);

/// Sets the Conv's weight and bias to new initializers named after them.
void replaceConvParameters(ir::Node& conv, ir::Tensor weight, ir::Tensor bias);

/// BatchNormalization parameters folded to y = x * factor + shift, per channel, in double.
/// Returns false when `bn` is not an inference BN with float constant parameters of
/// `channels` elements.
bool bnAffine(const ir::Node& bn, int64_t channels, std::vector<double>& factor, std::vector<double>& shift);

/// Folds the nodes that compute any of `values` from constants alone (a weight written as a
/// ConstantOfShape fill, a Reshape or Transpose of an initializer), at any size: what the
/// quantization passes call before they choose their nodes, so that such a weight is quantized
/// as an initializer is and stored int8 (fold-constants keeps them, since a float copy of a
/// fill would grow the file). A value is left as it is when a node on its way to the
/// constants is not foldable (ir::foldableOp), reads a graph input, produces a graph output or
/// has no kernel. Returns how many nodes it folded.
Expected<int64_t> foldComputedConstants(ir::Model& model, const std::vector<const ir::Value*>& values, const PassContext& ctx);

struct DecodedBody;
/// The same inside a decoded If/Loop/Scan body (subgraph_bodies.h), one node deep: each of
/// `values` that one foldable node computes from constants of the body or captures of enclosing
/// constants becomes an initializer of the body (PaddlePaddle's GRU transposes its constant
/// weights inside the decoding Loop, so quantize-int8 saw activations there and requantized
/// them on every iteration). `opset`: the model's default-domain opset. Returns how many.
Expected<int64_t> foldBodyComputedConstants(DecodedBody& body, const std::vector<ir::Value*>& values, int64_t opset,
                                            const PassContext& ctx);

}  // namespace whittle::passes
