// Parameters: constants used as weights or biases, followed through ops that only move or
// re-type them (docs/inspect-schema.md has the rule).
#include <algorithm>
#include <unordered_map>

#include "analysis/stats_internal.h"

namespace whittle::analysis::detail {
namespace {

using ir::DataType;

/// What a constant read by input `slot` of a node is.
enum class SlotRole { kWeight, kNotWeight, kData };

// Inputs that hold weights whatever their size.
const std::unordered_map<std::string, std::vector<int>> kWeightSlots = {{"Conv", {1, 2}},
                                                                        {"ConvTranspose", {1, 2}},
                                                                        {"Gemm", {0, 1, 2}},
                                                                        {"MatMul", {0, 1}},
                                                                        {"BatchNormalization", {1, 2, 3, 4}},
                                                                        {"InstanceNormalization", {1, 2}},
                                                                        {"LayerNormalization", {1, 2}},
                                                                        {"GroupNormalization", {1, 2}},
                                                                        {"PRelu", {1}},
                                                                        {"LSTM", {1, 2, 3}},
                                                                        {"GRU", {1, 2, 3}},
                                                                        {"RNN", {1, 2, 3}},
                                                                        {"Gather", {0}},
                                                                        {"QLinearConv", {0, 3, 8}},
                                                                        {"QLinearMatMul", {0, 3}},
                                                                        {"ConvInteger", {0, 1}},
                                                                        {"MatMulInteger", {0, 1}},
                                                                        {"QGemm", {0, 3, 6}}};

// Inputs that never hold weights: quantization parameters and shape-like operands.
const std::unordered_map<std::string, std::vector<int>> kNonWeightSlots = {{"QuantizeLinear", {1, 2}},
                                                                           {"DequantizeLinear", {1, 2}},
                                                                           {"QLinearConv", {1, 2, 4, 5, 6, 7}},
                                                                           {"QLinearMatMul", {1, 2, 4, 5, 6, 7}},
                                                                           {"ConvInteger", {2, 3}},
                                                                           {"MatMulInteger", {2, 3}},
                                                                           {"QGemm", {1, 2, 4, 5, 7, 8}},
                                                                           {"QLinearAdd", {1, 2, 4, 5, 6, 7}},
                                                                           {"QLinearMul", {1, 2, 4, 5, 6, 7}},
                                                                           {"QLinearGlobalAveragePool", {1, 2, 3, 4}},
                                                                           {"QLinearAveragePool", {1, 2, 3, 4}},
                                                                           {"QLinearLeakyRelu", {1, 2, 3, 4}},
                                                                           {"QLinearSigmoid", {1, 2, 3, 4}},
                                                                           {"QLinearSoftmax", {1, 2, 3, 4}},
                                                                           {"Reshape", {1}},
                                                                           {"Slice", {1, 2, 3, 4}},
                                                                           {"Resize", {1, 2, 3}},
                                                                           {"Upsample", {1}},
                                                                           {"Expand", {1}},
                                                                           {"Tile", {1}},
                                                                           {"Pad", {1, 2, 3}},
                                                                           {"Gather", {1}},
                                                                           {"GatherElements", {1}},
                                                                           {"GatherND", {1}},
                                                                           {"Squeeze", {1}},
                                                                           {"Unsqueeze", {1}},
                                                                           {"Split", {1}},
                                                                           {"Clip", {1, 2}},
                                                                           {"TopK", {1}},
                                                                           {"ReduceMean", {1}},
                                                                           {"ReduceSum", {1}},
                                                                           {"ReduceMax", {1}},
                                                                           {"ReduceMin", {1}},
                                                                           {"ReduceProd", {1}},
                                                                           {"ReduceL2", {1}},
                                                                           {"ConstantOfShape", {0}},
                                                                           {"Range", {0, 1, 2}},
                                                                           {"OneHot", {1, 2}},
                                                                           {"CumSum", {1}},
                                                                           {"Dropout", {1, 2}},
                                                                           {"NonMaxSuppression", {2, 3, 4}},
                                                                           {"Trilu", {1}}};

bool listed(const std::unordered_map<std::string, std::vector<int>>& table, const std::string& op, int slot) {
  auto it = table.find(op);
  return it != table.end() && std::find(it->second.begin(), it->second.end(), slot) != it->second.end();
}

SlotRole slotRole(const ir::Node& n, int slot) {
  const std::string& op = n.opType();
  if (listed(kWeightSlots, op, slot)) return SlotRole::kWeight;
  if (listed(kNonWeightSlots, op, slot)) return SlotRole::kNotWeight;
  if (op == "QLinearConcat") return slot >= 2 && (slot - 2) % 3 == 0 ? SlotRole::kData : SlotRole::kNotWeight;
  // An unknown QLinear op: its other inputs are taken for scales and zero points.
  if (op.rfind("QLinear", 0) == 0 && !kNonWeightSlots.contains(op)) return SlotRole::kNotWeight;
  return SlotRole::kData;
}

}  // namespace

bool isParameterDtype(DataType t) {
  switch (t) {
    case DataType::kFloat:
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kDouble:
    case DataType::kInt8:
    case DataType::kUint8:
    case DataType::kInt16:
    case DataType::kUint16:
    case DataType::kInt32:
    case DataType::kInt4:
    case DataType::kUint4:
      return true;
    default:
      return false;
  }
}

bool isPassThrough(const ir::Node& n, int slot) {
  static const std::unordered_set<std::string> kOps = {"Identity", "Cast",      "Reshape", "Transpose",
                                                       "Squeeze",  "Unsqueeze", "Flatten", "DequantizeLinear"};
  return slot == 0 && kOps.contains(n.opType());
}

void finalUses(const ir::Value* v, std::vector<ir::Value::Use>& out, std::unordered_set<const ir::Value*>& seen) {
  for (const ir::Value::Use& use : v->uses()) {
    if (use.implicit()) continue;
    const ir::Value* next = use.user->output(0);
    if (isPassThrough(*use.user, use.index) && next != nullptr) {
      if (seen.insert(next).second) finalUses(next, out, seen);
    } else {
      out.push_back(use);
    }
  }
}

std::vector<std::pair<const ir::Value*, const ir::Tensor*>> graphConstants(const ir::Graph& g) {
  std::vector<std::pair<const ir::Value*, const ir::Tensor*>> out;
  for (const ir::Value* v : g.initializers()) out.emplace_back(v, v->constant());
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "Constant" && n->numOutputs() == 1 && n->output(0) != nullptr) {
      if (const ir::Tensor* t = constantTensor(n->output(0))) out.emplace_back(n->output(0), t);
    }
  }
  return out;
}

ParameterStats countParameters(const ir::Graph& g) {
  ParameterStats stats;
  for (const auto& [v, t] : graphConstants(g)) {
    if (!isParameterDtype(t->dtype())) continue;
    std::vector<ir::Value::Use> uses;
    std::unordered_set<const ir::Value*> seen;
    finalUses(v, uses, seen);
    // t is captured by copy: clang before 16 cannot capture a structured binding.
    bool weight = std::any_of(uses.begin(), uses.end(), [&, t = t](const ir::Value::Use& u) {
      SlotRole role = slotRole(*u.user, u.index);
      return role == SlotRole::kWeight || (role == SlotRole::kData && t->numel() > 1);
    });
    if (!weight) continue;
    DtypeCount& d = stats.byDtype[std::string(ir::dataTypeName(t->dtype()))];
    int64_t bytes = static_cast<int64_t>(ir::storageBytes(t->dtype(), t->numel()));
    d.count += t->numel();
    d.bytes += bytes;
    stats.total += t->numel();
    stats.bytes += bytes;
    ++stats.tensors;
  }
  return stats;
}

}  // namespace whittle::analysis::detail
