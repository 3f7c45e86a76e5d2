#pragma once
// What one slot of a running graph holds: a tensor (nearly always), or one of ONNX's other
// value types, a sequence, a map or an optional. The composite kinds are immutable and shared
// (copying a Value copies two pointers), so that SequenceInsert, Identity and the loop-carried
// values of a Loop share their elements' buffers instead of copying them. A tensor Value is an
// ir::Tensor and a null pointer: kernels of tensor ops read `tensor()` as before.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/tensor.h"

namespace whittle::runtime {

enum class ValueKind { kTensor, kSequence, kMap, kOptional };

/// "tensor", "sequence", "map", "optional": for messages.
std::string_view valueKindName(ValueKind kind);

class Value {
 public:
  /// No value (an output a kernel has not set yet).
  Value() = default;
  /// A tensor (implicit: a tensor is the common case).
  Value(ir::Tensor tensor) : tensor_(std::move(tensor)) {}  // NOLINT(google-explicit-constructor)

  /// A sequence of values of one kind; `elementType` is the element tensors' dtype where
  /// known (SequenceEmpty's dtype; kUndefined for a sequence of sequences or maps).
  static Value sequence(std::vector<Value> elements, ir::DataType elementType = ir::DataType::kUndefined);
  /// A map from `keys` (1-D, int64 or string) to `values` (1-D, one per key), as ZipMap writes.
  static Value map(ir::Tensor keys, ir::Tensor values);
  /// An optional holding `element`.
  static Value optional(Value element);
  /// An optional holding nothing.
  static Value none();

  /// Whether anything is set (a default-constructed Value is not).
  bool defined() const { return composite_ != nullptr || tensor_.dtype() != ir::DataType::kUndefined; }
  ValueKind kind() const { return composite_ ? composite_->kind : ValueKind::kTensor; }
  bool isTensor() const { return composite_ == nullptr; }

  /// The tensor; an empty tensor (dtype undefined) for the other kinds.
  const ir::Tensor& tensor() const { return tensor_; }
  ir::Tensor& mutableTensor() { return tensor_; }

  /// Sequence: the elements; optional: zero or one element.
  const std::vector<Value>& elements() const;
  /// Sequence: the elements' dtype where known.
  ir::DataType elementType() const;
  /// Optional: whether it holds a value.
  bool hasElement() const { return kind() == ValueKind::kOptional && !composite_->elements.empty(); }
  /// Map: keys and values.
  const ir::Tensor& mapKeys() const;
  const ir::Tensor& mapValues() const;

  /// "tensor float32 [2,3]", "sequence of 3 (tensor float32 [2])", "optional (none)": for messages.
  std::string describe() const;

 private:
  struct Composite {
    ValueKind kind;
    ir::DataType elementType = ir::DataType::kUndefined;
    std::vector<Value> elements;  // sequence elements; an optional's element
    ir::Tensor keys, values;      // map
  };
  ir::Tensor tensor_;
  std::shared_ptr<const Composite> composite_;
};

/// Applies `fn` to every tensor inside `value` (the tensor itself, or the elements, map keys and
/// values, recursively) and returns the value rebuilt from the results: a backend's copies at
/// the graph's edges.
Expected<Value> mapTensors(const Value& value, const std::function<Expected<ir::Tensor>(const ir::Tensor&)>& fn);

}  // namespace whittle::runtime
