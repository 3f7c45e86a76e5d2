#pragma once
// Helpers shared by the fusion passes: constant inspection and per-channel weight math,
// done in double and rounded once to the weight's dtype.

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "whittle/ir/graph.h"

namespace whittle::passes {

/// Whether `node` is in the default domain and its op is one of `ops`.
bool isDefaultDomainOp(const ir::Node& node, std::initializer_list<std::string_view> ops);
/// Whether `v` has exactly one (explicit) use and is not a graph output.
bool hasSingleUse(const ir::Value& v);
bool isFloatTensor(const ir::Tensor& t);
/// Whether `v` is a constant (constantOf) with a float, float16, bfloat16 or double dtype.
bool isFloatConstant(const ir::Value* v);

std::vector<double> toDoubles(const ir::Tensor& t);
/// A tensor of `dtype` (float32, float16, bfloat16 or float64) from double values.
ir::Tensor fromDoubles(ir::DataType dtype, std::vector<int64_t> dims, const std::vector<double>& values);

/// Output channels of a Conv (W[0]) or ConvTranspose (W[1] * group).
int64_t outputChannels(const ir::Node& conv, const ir::Tensor& weight);
/// The Conv/ConvTranspose weight with every output channel c multiplied by factor[c].
ir::Tensor scaleOutputChannels(const ir::Node& conv, const ir::Tensor& weight, const std::vector<double>& factor);

/// The values of a constant that is either a scalar or has exactly `channels` elements laid
/// out along axis 1 of a rank-`rank` tensor ([C,1,1] for NCHW), broadcast to `channels`
/// values; empty when its shape is anything else.
std::vector<double> perChannelValues(const ir::Tensor& t, int64_t channels, int64_t rank);

}  // namespace whittle::passes

namespace whittle::passes {

/// For y = Op(a, b) with one of a, b the single-use output of a Conv whose weight (and bias,
/// if any) are float constants and the other a constant: the Conv, the constant operand's
/// per-channel values, and which input of the root the Conv feeds. Returns nullptr if the
/// pattern does not hold.
struct ConvWithConstant {
  ir::Node* conv = nullptr;
  std::vector<double> values;
  size_t convInput = 0;
};
ConvWithConstant matchConvWithConstant(const ir::Node& root);

/// Sets the Conv's weight and bias to new initializers named after them.
void replaceConvParameters(ir::Node& conv, ir::Tensor weight, ir::Tensor bias);

}  // namespace whittle::passes

namespace whittle::passes {

/// The dims of `v` when its rank is known (unknown dims as -1), or nullopt.
std::optional<std::vector<int64_t>> knownRankDims(const ir::Value* v);

/// BatchNormalization parameters folded to y = x * factor + shift, per channel, in double.
/// Returns false when `bn` is not an inference BN with float constant parameters of
/// `channels` elements.
bool bnAffine(const ir::Node& bn, int64_t channels, std::vector<double>& factor, std::vector<double>& shift);

}  // namespace whittle::passes

namespace whittle::passes {

/// The node producing `v` when it is the default-domain `op`, else nullptr. With
/// `singleUse`, also requires `v` to have one use and not be a graph output.
ir::Node* producerIs(const ir::Value* v, std::string_view op, bool singleUse = true);
/// Whether `v` is a constant holding one value (any rank) equal to `expected` within `tol`
/// relative.
bool isScalarConstant(const ir::Value* v, double expected, double tol = 1e-6);
/// The scalar value of a one-element float constant.
std::optional<double> scalarConstant(const ir::Value* v);
/// For a binary node, the input that is not `one` (nullptr if `one` is not an input).
ir::Value* otherInput(const ir::Node& node, const ir::Value* one);

}  // namespace whittle::passes

namespace whittle::passes {

/// The tensor a Constant node produces, from any of its attribute forms (value,
/// value_float(s), value_int(s)); nullopt for sparse and string forms.
std::optional<ir::Tensor> constantNodeValue(const ir::Node& node);

}  // namespace whittle::passes
