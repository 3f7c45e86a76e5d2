#pragma once
// Matchers: the small questions that every local rewrite asks of a node and its neighbours
// (is this op in the default domain, is this value read once, is it a constant, a scalar).
// One copy serves the passes (ONNX to ONNX) and the runtime's lowering of a session's
// private graph; they differ only in what counts as a constant (ConstantScope).
//
//   if (ir::Node* conv = ir::producerIs(bn.input(0), "Conv")) { ... }   // read only by bn
//   auto eps = ir::scalarConstant(add.input(1));                        // nullopt unless constant

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "whittle/ir/graph.h"

namespace whittle::ir {

/// Which values count as constants.
enum class ConstantScope {
  /// A model that will be saved and run elsewhere: initializers that no caller can override
  /// (those also listed as graph inputs can be fed), and outputs of Constant nodes.
  kModel,
  /// A session's private graph: every initializer (the session never feeds a graph input
  /// that has one); a Constant node is a kernel like any other.
  kSession,
};

/// Whether `node` is in the default ONNX domain ("" or "ai.onnx").
bool isDefaultDomain(const Node& node);
/// Whether `node` is in the default domain and its op is one of `ops`.
bool isDefaultDomainOp(const Node& node, std::initializer_list<std::string_view> ops);

/// The only use of `v` when it has exactly one and that one is an explicit input, else
/// nullptr. A graph output is not a use: check isGraphOutput() where that matters.
const Value::Use* onlyUse(const Value* v);
/// Whether `v` has exactly one (explicit) use and is not a graph output: a rewrite may fold
/// it away into its reader.
bool hasSingleUse(const Value& v);
/// The node producing `v` when it is the default-domain `op`, else nullptr. With
/// `singleUse`, also requires hasSingleUse(v).
Node* producerIs(const Value* v, std::string_view op, bool singleUse = true);
/// For a binary node, the input that is not `one` (nullptr if `one` is not an input).
Value* otherInput(const Node& node, const Value* one);

/// The constant tensor behind `v` in `scope`, or nullptr.
const Tensor* constantOf(const Value* v, ConstantScope scope = ConstantScope::kModel);
/// Whether `t` holds float, float16, bfloat16 or double values.
bool isFloatTensor(const Tensor& t);
/// Whether `v` is a constant (constantOf) of a floating-point type.
bool isFloatConstant(const Value* v, ConstantScope scope = ConstantScope::kModel);
/// The value of a constant holding one (non-string) element, of any rank.
std::optional<double> scalarConstant(const Value* v, ConstantScope scope = ConstantScope::kModel);
/// Whether `v` is a one-element constant equal to `expected` within `tol` relative.
bool isScalarConstant(const Value* v, double expected, double tol = 1e-6,
                      ConstantScope scope = ConstantScope::kModel);
/// The tensor a Constant node produces, from any of its attribute forms (value,
/// value_float(s), value_int(s)); nullopt for sparse and string forms.
std::optional<Tensor> constantNodeValue(const Node& node);

/// The dims of `v` when its rank is known (unknown dims as -1), or nullopt.
std::optional<std::vector<int64_t>> knownRankDims(const Value* v);

/// Whether every use of `from` may be redirected to `to` without changing the model's
/// interface (a graph output fed straight from a graph input or initializer needs a node).
bool canForward(const Value* from, const Value* to);

/// Whether removing `node` would change what the graph computes or does even though nothing
/// reads its outputs (ops with subgraphs other than If).
bool hasSideEffects(const Node& node);
/// Whether `node` can go: no output is read or is a graph output, and no side effects.
bool isTriviallyDead(const Node& node);

}  // namespace whittle::ir
