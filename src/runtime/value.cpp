#include "whittle/runtime/value.h"

#include <functional>

namespace whittle::runtime {

std::string_view valueKindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kTensor: return "tensor";
    case ValueKind::kSequence: return "sequence";
    case ValueKind::kMap: return "map";
    case ValueKind::kOptional: return "optional";
  }
  return "value";
}

Value Value::sequence(std::vector<Value> elements, ir::DataType elementType) {
  Value v;
  auto c = std::make_shared<Composite>();
  c->kind = ValueKind::kSequence;
  if (elementType == ir::DataType::kUndefined && !elements.empty() && elements.front().isTensor()) {
    elementType = elements.front().tensor().dtype();
  }
  c->elementType = elementType;
  c->elements = std::move(elements);
  v.composite_ = std::move(c);
  return v;
}

Value Value::map(ir::Tensor keys, ir::Tensor values) {
  Value v;
  auto c = std::make_shared<Composite>();
  c->kind = ValueKind::kMap;
  c->keys = std::move(keys);
  c->values = std::move(values);
  v.composite_ = std::move(c);
  return v;
}

Value Value::optional(Value element) {
  Value v;
  auto c = std::make_shared<Composite>();
  c->kind = ValueKind::kOptional;
  c->elements.push_back(std::move(element));
  v.composite_ = std::move(c);
  return v;
}

Value Value::none() {
  Value v;
  auto c = std::make_shared<Composite>();
  c->kind = ValueKind::kOptional;
  v.composite_ = std::move(c);
  return v;
}

const std::vector<Value>& Value::elements() const {
  static const std::vector<Value> kNone;
  return composite_ ? composite_->elements : kNone;
}

ir::DataType Value::elementType() const { return composite_ ? composite_->elementType : ir::DataType::kUndefined; }

const ir::Tensor& Value::mapKeys() const {
  static const ir::Tensor kEmpty;
  return composite_ ? composite_->keys : kEmpty;
}

const ir::Tensor& Value::mapValues() const {
  static const ir::Tensor kEmpty;
  return composite_ ? composite_->values : kEmpty;
}

namespace {

std::string tensorText(const ir::Tensor& t) {
  std::string s = "tensor " + std::string(ir::dataTypeName(t.dtype())) + " [";
  for (size_t i = 0; i < t.dims().size(); ++i) s += (i ? "," : "") + std::to_string(t.dims()[i]);
  return s + "]";
}

}  // namespace

std::string Value::describe() const {
  if (!defined()) return "no value";
  switch (kind()) {
    case ValueKind::kTensor: return tensorText(tensor_);
    case ValueKind::kSequence: {
      std::string s = "sequence of " + std::to_string(elements().size());
      if (!elements().empty()) s += " (" + elements().front().describe() + ", ...)";
      return s;
    }
    case ValueKind::kMap:
      return "map " + std::string(ir::dataTypeName(mapKeys().dtype())) + " -> " +
             std::string(ir::dataTypeName(mapValues().dtype())) + " of " + std::to_string(mapKeys().numel());
    case ValueKind::kOptional: return hasElement() ? "optional (" + elements().front().describe() + ")" : "optional (none)";
  }
  return "value";
}

Expected<Value> mapTensors(const Value& value, const std::function<Expected<ir::Tensor>(const ir::Tensor&)>& fn) {
  switch (value.kind()) {
    case ValueKind::kTensor: {
      if (!value.defined()) return value;
      WH_ASSIGN_OR_RETURN(ir::Tensor t, fn(value.tensor()));
      return Value(std::move(t));
    }
    case ValueKind::kSequence: {
      std::vector<Value> elements;
      elements.reserve(value.elements().size());
      for (const Value& e : value.elements()) {
        WH_ASSIGN_OR_RETURN(Value mapped, mapTensors(e, fn));
        elements.push_back(std::move(mapped));
      }
      return Value::sequence(std::move(elements), value.elementType());
    }
    case ValueKind::kMap: {
      WH_ASSIGN_OR_RETURN(ir::Tensor keys, fn(value.mapKeys()));
      WH_ASSIGN_OR_RETURN(ir::Tensor values, fn(value.mapValues()));
      return Value::map(std::move(keys), std::move(values));
    }
    case ValueKind::kOptional: {
      if (!value.hasElement()) return value;
      WH_ASSIGN_OR_RETURN(Value mapped, mapTensors(value.elements().front(), fn));
      return Value::optional(std::move(mapped));
    }
  }
  return value;
}

}  // namespace whittle::runtime
