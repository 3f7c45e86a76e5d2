#pragma once
// The one definition of a QDQ node group (after ONNX Runtime's qdq_selectors.h, which its
// optimizer and its execution providers share). Three users ask it:
//  - quantize-int8, where to insert QuantizeLinear/DequantizeLinear pairs (qdqOpRule);
//  - quantize-int8{format=qoperator}, which QDQ groups become QOperator ops;
//  - the runtime's QDQ lowering (runtime::lowerQdqGroups), which QDQ groups run as int8 kernels;
// so that what the pass emits is what the converters recognise, by construction.
//
// A group, in QDQ form:
//   DQ(x1), ..., DQ(W), DQ(b) -> target -> [Relu | Clip] -> Q
// and in QOperator form, one node reading the quantized tensors:
//   Conv                          QLinearConv (bias requantized to int32 at x_scale * w_scale)
//   MatMul                        QLinearMatMul
//   Add, Mul, Sum of two          com.microsoft QLinearAdd, QLinearMul (Sum as QLinearAdd)
//   AveragePool, GlobalAveragePool com.microsoft QLinearAveragePool, QLinearGlobalAveragePool
//   Concat                        com.microsoft QLinearConcat
//   MaxPool, Reshape, Transpose,  the op itself on the quantized tensor, when the DQ and the Q
//   Flatten, Squeeze, Unsqueeze,  have the same scale and zero point
//   Identity, Slice, Gather,
//   Resize (nearest, not
//   tf_crop_and_resize)
//   Gemm, ConvTranspose, Resize   no QOperator form: the group stays in QDQ form
//   (interpolating), Sigmoid,     (the runtime's lowering runs the unary ones, and any chain of
//   HardSigmoid, HardSwish,       element-wise ops of one quantized tensor, as a 256-entry table:
//   LeakyRelu, Tanh, PRelu        runtime::lowerQdqLookups; PRelu with a slope per channel as
//                                 com.whittle.internal QLinearPRelu: runtime::lowerQdqPRelus)
// A Relu or Clip between the target (Conv, MatMul, Gemm, ConvTranspose, Add, Mul) and the Q is
// part of the group when the Q's saturation does what it does: the Q's lowest code is at or
// above the activation's lower bound, and its highest code at or below the upper bound
// (Relu: the Q's zero point is its type's lowest value).
//
// The groups are plain data: nodes of the graph. A rewrite reads values from the nodes when
// it runs, so that rewriting one group leaves the others valid.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "whittle/ir/graph.h"
#include "whittle/ir/match.h"

namespace whittle::quant {

/// What a group computes.
enum class QdqGroupKind {
  kConv,           ///< Conv
  kConvTranspose,  ///< ConvTranspose (QDQ form only)
  kMatMul,         ///< MatMul
  kGemm,           ///< Gemm (QDQ form only)
  kBinary,         ///< Add, Mul, Sum of two inputs
  kAveragePool,    ///< AveragePool, GlobalAveragePool
  kConcat,         ///< Concat
  kDataMovement,   ///< MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Identity, Resize, Slice, Gather
  kUnary,          ///< Sigmoid, HardSigmoid, HardSwish, LeakyRelu, Tanh, PRelu (QDQ form only)
};

/// "conv", "matmul", ... for messages and statistics.
std::string_view qdqGroupKindName(QdqGroupKind kind);

/// What an input of a group's target carries.
enum class QdqInputRole {
  kActivation,          ///< A quantized activation (per-tensor DQ of a Q).
  kWeight,              ///< A constant quantized to int8 (DQ of a constant, per tensor or per channel).
  kWeightOrActivation,  ///< MatMul's B: a weight when constant, else an activation.
  kBias,                ///< A constant bias, int32 at x_scale * w_scale (or float, requantized).
  kParameter,           ///< Not quantized: a shape, axes, Resize's roi/scales/sizes.
};

/// Whether and how an op can be the target of a QDQ group, from the op alone (its type,
/// domain, attributes, outputs): the conditions that do not depend on Q/DQ nodes around it.
struct QdqOpRule {
  QdqGroupKind kind = QdqGroupKind::kConv;
  /// The role of each input of the op (absent optional inputs included, by position).
  std::vector<QdqInputRole> inputs;
  /// The output keeps the (single) quantized input's scale and zero point: data movement.
  bool sameParams = false;
  /// A Relu or Clip right after the op can be folded into the output's quantization.
  bool absorbsActivation = false;
  /// Worth a group only when every activation input is quantized already (data movement,
  /// pools, Concat, Add/Mul): alone, it would only add rounding error.
  bool needsQuantizedInputs = false;
  /// The QOperator op and domain of the group ("" when it has none and stays in QDQ form).
  std::string qoperatorOp;
  std::string qoperatorDomain;

  /// The input holding the role, or -1.
  int inputWith(QdqInputRole role) const;
};

/// The rule for `node`, or nullopt with `reason` (when given) saying why the op cannot be a
/// group: an op outside the list above, another domain, MaxPool with Indices, AveragePool
/// with dilations (QLinearAveragePool has none), Gemm with transA, an op with several outputs.
std::optional<QdqOpRule> qdqOpRule(const ir::Node& node, std::string* reason = nullptr);

/// Whether `node` is an element-wise op that the runtime folds into a table lookup when every
/// value it reads is a function of one quantized tensor (its other operands one-element float
/// constants): Sigmoid, Tanh, Relu, LeakyRelu, HardSigmoid, HardSwish, Clip, Elu, Exp, Neg, Abs,
/// Softplus, Erf, Sqrt, Reciprocal, Identity, Mish, Add, Sub, Mul, Div, Max, Min, Pow, PRelu in the
/// default domain. quantize-int8 quantizes the end of such a chain where an int8 group reads it
/// (a Concat of SiLU or HardSwish outputs), and runtime::lowerQdqLookups folds it.
bool isTableOp(const ir::Node& node);

/// How groups are selected.
struct QdqGroupOptions {
  /// What counts as a constant (scales, zero points, weights): kModel for a model that will be
  /// saved (quantize-int8), kSession for a session's private graph (the lowering).
  ir::ConstantScope scope = ir::ConstantScope::kModel;
  /// Values that must survive (a session's extra outputs): never fused away. Graph inputs,
  /// outputs, initializers and values captured by subgraphs never are either.
  std::unordered_set<const ir::Value*> keep;
  /// Conv groups only with the weight zero points that the runtime's int8 convolution runs on
  /// oneDNN: 0 for int8 weights, 128 for uint8 (the lowering). Any other (ONNX Runtime's
  /// quantize_static can write them) would run the int32 reference, 100x slower than the float
  /// model; such a group stays QDQ and runs as its definition, a float Conv of the dequantized
  /// weights.
  bool centredConvWeightsOnly = false;
};

/// One QDQ group: nodes of the graph.
struct QdqGroup {
  QdqGroupKind kind = QdqGroupKind::kConv;
  QdqOpRule rule;
  ir::Node* target = nullptr;
  /// The Relu or Clip that the output Q absorbs, or nullptr.
  ir::Node* activation = nullptr;
  /// The output QuantizeLinear.
  ir::Node* output = nullptr;
  /// Per input of the target: its DequantizeLinear, or nullptr (a parameter, an absent input,
  /// a float constant bias).
  std::vector<ir::Node*> inputs;
  /// Whether the group has a QOperator form that every condition of it holds for.
  bool hasQOperatorForm() const { return !rule.qoperatorOp.empty(); }
};

/// The group whose output is the QuantizeLinear `q`, or why there is none.
struct QdqGroupMatch {
  std::optional<QdqGroup> group;
  /// One line naming the node and the condition that failed (empty on a match).
  std::string reason;
};

/// Matches the group ending at `q`. Conditions, cheapest first: `q` is a default-domain
/// QuantizeLinear to uint8/int8 with one constant scale and zero point; its input is the
/// output of the target (or of a Relu/Clip it absorbs) read by nothing else and not pinned;
/// the target has a rule; every activation input is a per-tensor DequantizeLinear of
/// uint8/int8 with constant parameters; weights are DQs of constants (QOperator form: per
/// tensor or per output channel, Conv axis 0, MatMul axis 1 of a 2-D B); a bias is a float
/// constant or a DQ of an int32 constant with one value per output channel; Add/Mul, the pools
/// and Concat read and write one type; data movement has equal parameters on both sides.
QdqGroupMatch matchQdqGroup(const ir::Node& q, const QdqGroupOptions& options = {});

/// Every group of `graph`, in the order of their QuantizeLinear nodes. `refused` (when given)
/// receives the reasons of QuantizeLinear nodes that end no group.
std::vector<QdqGroup> selectQdqGroups(const ir::Graph& graph, const QdqGroupOptions& options = {},
                                      std::vector<std::string>* refused = nullptr);

/// Replaces `group` (which must have a QOperator form) by its QOperator node: target,
/// activation and Q go, the new node's output takes over the Q's output (name and readers);
/// the DQs stay for their other readers, or for the caller to remove when unread. Returns the
/// new node, or nullptr (graph unchanged) when the bias cannot be requantized.
ir::Node* rewriteAsQOperator(ir::Graph& graph, const QdqGroup& group, ir::ConstantScope scope);

/// Matches at every QuantizeLinear of `graph`, in graph order, and rewrites each group with a
/// QOperator form at once (so that later matches see earlier rewrites). Returns how many.
/// Unread DequantizeLinear nodes are left for the caller.
int64_t rewriteQdqGroupsAsQOperator(ir::Graph& graph, const QdqGroupOptions& options = {});

}  // namespace whittle::quant
