// Subnormal constants flushed to zero: shared by the flush-subnormals pass and the runtime's
// lowering (see whittle/ir/fold.h).
#include <cmath>
#include <cstring>
#include <limits>

#include "whittle/ir/fold.h"

namespace whittle::ir {
namespace {

template <typename T>
bool isSubnormal(T v) {
  return v != T(0) && std::fabs(v) < std::numeric_limits<T>::min();
}

template <typename T>
int64_t countIn(const Tensor& t) {
  int64_t n = 0;
  for (T v : t.values<T>()) n += isSubnormal(v) ? 1 : 0;
  return n;
}

template <typename T>
Tensor flushed(const Tensor& t) {
  Tensor out(t.dtype(), t.dims());
  T* dst = out.mutableData<T>();
  const T* src = t.data<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) dst[i] = isSubnormal(src[i]) ? std::copysign(T(0), src[i]) : src[i];
  return out;
}

// t is float32 or float64 with at least one subnormal (the caller counted).
Tensor flushedCopy(const Tensor& t) {
  return t.dtype() == DataType::kFloat ? flushed<float>(t) : flushed<double>(t);
}

}  // namespace

int64_t countSubnormals(const Tensor& t) {
  if (t.rawData() == nullptr) return 0;
  if (t.dtype() == DataType::kFloat) return countIn<float>(t);
  if (t.dtype() == DataType::kDouble) return countIn<double>(t);
  return 0;
}

std::optional<Tensor> flushSubnormals(const Tensor& t) {
  if (countSubnormals(t) == 0) return std::nullopt;
  return flushedCopy(t);
}

SubnormalFlush flushSubnormalConstants(Graph& graph) {
  SubnormalFlush done;
  auto flush = [&](const Tensor& t) -> std::optional<Tensor> {
    int64_t n = countSubnormals(t);
    if (n == 0) return std::nullopt;
    done.tensors += 1;
    done.elements += n;
    return flushedCopy(t);
  };
  for (Value* v : graph.initializers()) {
    if (auto t = flush(*v->constant())) v->setConstant(std::move(*t));
  }
  for (Node* n : graph.nodes()) {
    if (n->opType() != "Constant" || !n->domain().empty()) continue;
    const Attribute* value = n->findAttribute("value");
    if (value == nullptr || value->kind != Attribute::Kind::kTensor) continue;
    if (auto t = flush(value->t)) {
      Attribute changed = *value;
      changed.t = std::move(*t);
      n->setAttribute(std::move(changed));
    }
  }
  return done;
}

}  // namespace whittle::ir
