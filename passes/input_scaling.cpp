// Per-channel input scaling of a MatMul/Gemm group (passes/input_scaling.h).
#include "input_scaling.h"

#include "whittle/ir/match.h"

namespace whittle::passes {
namespace {

// A constant float [K] (or [..., K] of K values) read by `user` alone.
bool isChannelVector(const ir::Value* v, int64_t k) {
  const ir::Tensor* t = v != nullptr ? ir::constantOf(v) : nullptr;
  return t != nullptr && t->dtype() == ir::DataType::kFloat && t->numel() == k && !t->dims().empty() &&
         t->dims().back() == k && v->uses().size() == 1 && !v->isGraphOutput();
}

bool onlyReadBy(const ir::Value* v, const std::set<const ir::Node*>& group) {
  if (v->isGraphOutput() || !v->hasUses()) return false;
  for (const auto& u : v->uses()) {
    if (!group.contains(u.user)) return false;
  }
  return true;
}

bool singleUse(const ir::Value* v) { return v != nullptr && v->uses().size() == 1 && !v->isGraphOutput(); }

void divideVector(ir::Value* v, std::span<const float> s) {
  ir::Tensor t = *ir::constantOf(v);
  float* d = t.mutableData<float>();
  for (size_t c = 0; c < s.size(); ++c) d[c] /= s[c];
  v->setConstant(std::move(t));
}

}  // namespace

InputAbsorber findInputAbsorber(ir::Value* x, int64_t k, const std::set<const ir::Node*>& group,
                                const std::function<bool(const ir::Value*)>& weightUsable) {
  if (!onlyReadBy(x, group)) return {};
  ir::Node* p = x->producer();
  if (p == nullptr || !p->domain().empty()) return {};
  auto matmulWeight = [&](ir::Node* mm) -> ir::Value* {
    if (mm == nullptr || mm->opType() != "MatMul" || !mm->domain().empty()) return nullptr;
    ir::Value* w = mm->input(1);
    const ir::Tensor* t = ir::constantOf(w);
    if (t == nullptr || t->dtype() != ir::DataType::kFloat || t->rank() != 2 || t->dims()[1] != k || !singleUse(w)) {
      return nullptr;
    }
    return weightUsable(w) ? w : nullptr;
  };
  // y = LayerNormalization(z, scale, bias) over the last axis: scale and bias / s.
  if (p->opType() == "LayerNormalization" && p->output(0) == x) {
    const int64_t axis = p->attrInt("axis", -1);
    const auto& shape = x->type().shape;
    const bool lastAxis = axis == -1 || (shape && !shape->empty() && axis == static_cast<int64_t>(shape->size()) - 1);
    ir::Value* bias = p->numInputs() > 2 ? p->input(2) : nullptr;
    if (lastAxis && isChannelVector(p->input(1), k) && (bias == nullptr || isChannelVector(bias, k))) {
      InputAbsorber a;
      a.layerNorm = p;
      return a;
    }
    return {};
  }
  if (ir::Value* w = matmulWeight(p)) return {nullptr, nullptr, w, nullptr};
  // y = Add(Mul(z, gamma), beta): a decomposed LayerNorm's affine part.
  if (p->opType() == "Add") {
    for (int side = 0; side < 2; ++side) {
      ir::Value* beta = p->input(static_cast<size_t>(side));
      ir::Value* other = p->input(static_cast<size_t>(1 - side));
      if (!isChannelVector(beta, k) || !singleUse(other) || other->producer() == nullptr) continue;
      ir::Node* mul = other->producer();
      if (mul->opType() != "Mul" || !mul->domain().empty()) continue;
      for (int m = 0; m < 2; ++m) {
        if (isChannelVector(mul->input(static_cast<size_t>(m)), k)) return {mul->input(static_cast<size_t>(m)), beta, nullptr, nullptr};
      }
    }
    return {};
  }
  if (p->opType() != "Mul") return {};
  for (int side = 0; side < 2; ++side) {
    ir::Value* c = p->input(static_cast<size_t>(side));
    if (isChannelVector(c, k)) return {c, nullptr, nullptr, nullptr};
  }
  // Mul(act(gate), up) with up = MatMul(h, U): the columns of U.
  for (int side = 0; side < 2; ++side) {
    ir::Value* operand = p->input(static_cast<size_t>(side));
    if (!singleUse(operand)) continue;
    if (ir::Value* w = matmulWeight(operand->producer())) return {nullptr, nullptr, w, nullptr};
  }
  return {};
}

void divideAbsorber(const InputAbsorber& a, std::span<const float> s, bool divideWeight) {
  if (a.layerNorm != nullptr) {
    divideVector(a.layerNorm->input(1), s);
    if (a.layerNorm->numInputs() > 2 && a.layerNorm->input(2) != nullptr) divideVector(a.layerNorm->input(2), s);
  }
  if (a.vector != nullptr) divideVector(a.vector, s);
  if (a.shift != nullptr) divideVector(a.shift, s);
  if (a.weight != nullptr && divideWeight) {
    ir::Tensor t = *ir::constantOf(a.weight);
    float* d = t.mutableData<float>();
    const int64_t rows = t.dims()[0], k = t.dims()[1];
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t c = 0; c < k; ++c) d[i * k + c] /= s[static_cast<size_t>(c)];
    }
    a.weight->setConstant(std::move(t));
  }
}

ir::Node* insertInputScale(ir::Graph& graph, ir::Value* x, std::span<const float> s, const std::vector<ir::Node*>& group,
                           const std::string& suffix) {
  const int64_t k = static_cast<int64_t>(s.size());
  std::vector<float> inv(s.size());
  for (size_t c = 0; c < s.size(); ++c) inv[c] = 1.0f / s[c];
  ir::Value* invS = graph.addInitializer(graph.uniqueValueName(x->name() + "_" + suffix + "_inv_scale"),
                                         ir::Tensor::fromVector(ir::DataType::kFloat, {k}, inv));
  const std::set<const ir::Node*> members(group.begin(), group.end());
  ir::Node* first = nullptr;
  for (ir::Node* n : graph.nodes()) {
    if (members.contains(n)) {
      first = n;
      break;
    }
  }
  ir::Node* mul = graph.addNode("Mul", {x, invS}, {x->name() + "_" + suffix}, graph.uniqueNodeName(x->name() + "_" + suffix + "_Mul"),
                                "", first);
  mul->output(0)->mutableType() = x->type();
  for (ir::Node* n : group) n->replaceInput(x, mul->output(0));
  return mul;
}

}  // namespace whittle::passes
