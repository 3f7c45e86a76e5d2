// The CPU lowering's step F (see lowering.h): float16 computed in float32.
//
// Before: y = Relu(Conv(x16, W16, B16))                      every value float16
// After:  y = Cast<float16>(Relu(Conv(Cast<float>(x16), W32, B32)))   float32 inside, the
//         constants widened once, one Cast where a float16 value enters or leaves the region
//
// The CPU has no float16 arithmetic of its own: each float16 kernel widened its inputs, ran in
// float32 and rounded its output, a round trip through memory per op, and the Conv could not
// stay channels last or take its activation as a post-op. ONNX Runtime does the same on the
// CPU (its InsertCastTransformer), so its outputs are the float32 computation rounded once.
// Requires: shape-inferred value types (a value whose dtype is unknown keeps its node out).
#include <unordered_map>
#include <unordered_set>

#include "whittle/ir/fold.h"
#include "whittle/ir/match.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {
namespace {

/// Ops whose float16 result is their float32 result rounded: no attribute names a dtype, and
/// each floating input or output is T (widened together) or a float type of its own.
bool widenableOp(const ir::Node& n) {
  static const std::unordered_set<std::string> kOps = {
      // convolutions and linear algebra
      "Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum",
      // activations and other unary math
      "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu", "Gelu",
      "Softplus", "Softsign", "Mish", "Clip", "Abs", "Neg", "Sqrt", "Reciprocal", "Exp", "Log", "Erf", "Floor",
      "Ceil", "Round", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Sign",
      "ThresholdedRelu", "Shrink",
      // binary and variadic elementwise
      "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where",
      // pools and normalizations
      "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "BatchNormalization",
      "InstanceNormalization", "LayerNormalization", "LRN", "Softmax", "LogSoftmax",
      // reductions
      "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceL1", "ReduceProd", "ReduceSumSquare",
      "ReduceLogSum", "ReduceLogSumExp", "CumSum",
      // data movement
      "Concat", "Split", "Slice", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Pad", "Resize",
      "Upsample", "DepthToSpace", "SpaceToDepth", "Tile", "Expand", "Gather", "Identity", "Dropout"};
  return ir::isDefaultDomain(n) && kOps.contains(n.opType());
}

bool isHalf(const ir::Value* v) { return v != nullptr && v->dtype() == ir::DataType::kFloat16; }

/// Whether `n` runs in float32 when its float16 values are widened: an op of the list that
/// reads or writes float16, whose every value has a known dtype and none is read by a subgraph.
bool widenable(const ir::Node& n) {
  if (!widenableOp(n) || n.hasSubgraphs()) return false;
  bool half = false;
  for (const ir::Value* v : n.inputs()) {
    if (v == nullptr) continue;
    if (v->dtype() == ir::DataType::kUndefined) return false;
    half = half || isHalf(v);
  }
  for (const ir::Value* v : n.outputs()) {
    if (v == nullptr) continue;
    if (v->dtype() == ir::DataType::kUndefined || v->hasImplicitUses()) return false;
    half = half || isHalf(v);
  }
  return half;
}

ir::Attribute castTo(ir::DataType to) { return ir::Attribute::makeInt("to", static_cast<int64_t>(to)); }

}  // namespace

int64_t widenFloat16(ir::Graph& graph, const std::vector<std::string>& keep) {
  std::unordered_set<const ir::Value*> kept;
  for (const std::string& name : keep) {
    if (const ir::Value* v = graph.findValue(name)) kept.insert(v);
  }
  std::unordered_set<const ir::Node*> region;
  for (const ir::Node* n : graph.nodes()) {
    if (widenable(*n)) region.insert(n);
  }
  if (region.empty()) return 0;
  std::unordered_map<ir::Value*, ir::Value*> wide;  // a float16 value from outside -> its float32 copy
  for (ir::Node* n : graph.nodes()) {
    if (!region.contains(n)) continue;
    for (size_t i = 0; i < n->numInputs(); ++i) {
      ir::Value* in = n->input(i);
      if (!isHalf(in) || (in->producer() != nullptr && region.contains(in->producer()))) continue;
      ir::Value*& w = wide[in];
      if (w == nullptr) {
        if (const ir::Tensor* c = ir::constantOf(in, ir::ConstantScope::kSession)) {
          w = graph.addInitializer(in->name() + "_f32", ir::fromDoubles(ir::DataType::kFloat, c->dims(), ir::toDoubles(*c)));
        } else {  // a graph input or the output of a node outside: widened where first read
          ir::Node* cast = graph.addNode("Cast", {in}, {in->name() + "_f32"}, graph.uniqueNodeName(in->name() + "_widen"),
                                         "", n);
          cast->setAttribute(castTo(ir::DataType::kFloat));
          w = cast->output(0);
        }
        if (!w->isInitializer()) {
          w->mutableType() = in->type();
          w->mutableType().dtype = ir::DataType::kFloat;
        }
      }
      n->setInput(i, w);
    }
    ir::Node* after = n;  // where the next narrowing Cast goes (keeps the list topological)
    for (ir::Value* out : n->outputs()) {
      if (!isHalf(out)) continue;
      std::vector<std::pair<ir::Node*, size_t>> outside;
      for (const ir::Value::Use& use : out->uses()) {
        if (!use.implicit() && !region.contains(use.user)) outside.emplace_back(use.user, static_cast<size_t>(use.index));
      }
      const bool narrow = out->isGraphOutput() || kept.contains(out) || !outside.empty();
      out->mutableType().dtype = ir::DataType::kFloat;
      if (!narrow) continue;
      // The float16 value keeps its name (graph outputs, kept values and readers outside find
      // it); the float32 one is renamed.
      const std::string name = out->name();
      WH_CHECK(graph.renameValue(out, graph.uniqueValueName(name + "_f32")).isOk());
      ir::Value* half = graph.addValue(name);
      half->mutableType() = out->type();
      half->mutableType().dtype = ir::DataType::kFloat16;
      ir::Node* cast = graph.addNodeWithOutputs("Cast", {out}, {half}, graph.uniqueNodeName(name + "_narrow"));
      cast->setAttribute(castTo(ir::DataType::kFloat16));
      graph.moveAfter(cast, after);
      after = cast;
      for (auto [user, slot] : outside) user->setInput(slot, half);
      for (size_t i = 0; i < graph.outputs().size(); ++i) {
        if (graph.outputs()[i] == out) graph.setOutput(i, half);
      }
    }
  }
  // The float16 constants that only the region read go; the session holds one copy of a weight.
  std::vector<ir::Value*> unread;
  for (const auto& [half, w] : wide) {
    if (half->isInitializer() && !half->hasUses() && !half->isGraphInput() && !half->isGraphOutput()) {
      unread.push_back(half);
    }
  }
  graph.eraseValues(unread);
  return static_cast<int64_t>(region.size());
}

}  // namespace whittle::runtime
