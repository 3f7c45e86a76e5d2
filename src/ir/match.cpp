#include "whittle/ir/match.h"

#include <algorithm>
#include <cmath>

namespace whittle::ir {

bool isDefaultDomain(const Node& node) { return node.domain().empty() || node.domain() == "ai.onnx"; }

bool isDefaultDomainOp(const Node& node, std::initializer_list<std::string_view> ops) {
  if (!isDefaultDomain(node)) return false;
  return std::find(ops.begin(), ops.end(), std::string_view(node.opType())) != ops.end();
}

const Value::Use* onlyUse(const Value* v) {
  return v != nullptr && v->uses().size() == 1 && !v->uses()[0].implicit() ? &v->uses()[0] : nullptr;
}

bool hasSingleUse(const Value& v) { return onlyUse(&v) != nullptr && !v.isGraphOutput(); }

Node* producerIs(const Value* v, std::string_view op, bool singleUse) {
  if (v == nullptr || v->producer() == nullptr) return nullptr;
  Node* p = v->producer();
  if (!isDefaultDomainOp(*p, {op})) return nullptr;
  if (singleUse && !hasSingleUse(*v)) return nullptr;
  return p;
}

Value* otherInput(const Node& node, const Value* one) {
  if (node.numInputs() != 2) return nullptr;
  if (node.input(0) == one) return node.input(1);
  if (node.input(1) == one) return node.input(0);
  return nullptr;
}

const Tensor* constantOf(const Value* v, ConstantScope scope) {
  if (v == nullptr) return nullptr;
  if (scope == ConstantScope::kSession) return v->constant();
  if (v->isInitializer()) return v->isGraphInput() ? nullptr : v->constant();
  const Node* p = v->producer();
  if (p != nullptr && p->opType() == "Constant" && isDefaultDomain(*p)) {
    const Attribute* a = p->findAttribute("value");
    if (a != nullptr && a->kind == Attribute::Kind::kTensor) return &a->t;
  }
  return nullptr;
}

bool isFloatTensor(const Tensor& t) {
  DataType d = t.dtype();
  return d == DataType::kFloat || d == DataType::kFloat16 || d == DataType::kBFloat16 || d == DataType::kDouble;
}

bool isFloatConstant(const Value* v, ConstantScope scope) {
  const Tensor* t = constantOf(v, scope);
  return t != nullptr && isFloatTensor(*t);
}

std::optional<double> scalarConstant(const Value* v, ConstantScope scope) {
  const Tensor* t = constantOf(v, scope);
  if (t == nullptr || t->numel() != 1 || t->dtype() == DataType::kString) return std::nullopt;
  return t->valueAsDouble(0);
}

bool isScalarConstant(const Value* v, double expected, double tol, ConstantScope scope) {
  auto s = scalarConstant(v, scope);
  return s && std::fabs(*s - expected) <= tol * std::max(1.0, std::fabs(expected));
}

std::optional<Tensor> constantNodeValue(const Node& node) {
  using K = Attribute::Kind;
  if (node.attributes().size() != 1) return std::nullopt;
  const Attribute& a = node.attributes()[0];
  if (a.name == "value" && a.kind == K::kTensor) return a.t;
  if (a.name == "value_float" && a.kind == K::kFloat) return Tensor::fromVector(DataType::kFloat, {}, std::vector<float>{a.f});
  if (a.name == "value_int" && a.kind == K::kInt) return Tensor::fromVector(DataType::kInt64, {}, std::vector<int64_t>{a.i});
  if (a.name == "value_floats" && a.kind == K::kFloats) {
    return Tensor::fromVector(DataType::kFloat, {static_cast<int64_t>(a.floats.size())}, a.floats);
  }
  if (a.name == "value_ints" && a.kind == K::kInts) {
    return Tensor::fromVector(DataType::kInt64, {static_cast<int64_t>(a.ints.size())}, a.ints);
  }
  return std::nullopt;
}

std::optional<std::vector<int64_t>> knownRankDims(const Value* v) {
  if (v == nullptr) return std::nullopt;
  if (const Tensor* t = constantOf(v)) return t->dims();
  if (!v->type().shape) return std::nullopt;
  std::vector<int64_t> dims;
  dims.reserve(v->type().shape->size());
  for (const Dim& d : *v->type().shape) dims.push_back(d.isKnown() ? d.value : -1);
  return dims;
}

bool canForward(const Value* from, const Value* to) {
  if (from == nullptr || to == nullptr || from == to) return false;  // an omitted output or input forwards nothing
  if (from->hasImplicitUses()) return false;
  if (!from->isGraphOutput()) return true;
  return !to->isGraphInput() && !to->isGraphOutput() && !to->isInitializer();
}

bool hasSideEffects(const Node& node) { return node.hasSubgraphs() && node.opType() != "If"; }

bool isTriviallyDead(const Node& node) {
  if (hasSideEffects(node)) return false;
  for (const Value* out : node.outputs()) {
    if (out != nullptr && (out->hasUses() || out->isGraphOutput())) return false;
  }
  return true;
}

}  // namespace whittle::ir
