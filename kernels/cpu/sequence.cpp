// Sequence and optional ops on runtime Values (whittle/runtime/value.h): SequenceEmpty,
// SequenceConstruct, SequenceInsert, SequenceAt, SequenceErase, SequenceLength,
// SplitToSequence, ConcatFromSequence, Optional, OptionalHasElement, OptionalGetElement, and
// ai.onnx.ml ZipMap (a sequence of maps, one per row). A sequence shares its elements'
// buffers: inserting, erasing or reading an element copies no tensor data; SplitToSequence
// and ConcatFromSequence copy, as the elements are separate tensors. SequenceMap is control
// flow (src/runtime/control_flow.cpp); Identity passes any value through (elementwise.cpp).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "cpu/families.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {
namespace {

std::string dimsText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string tensorText(const ir::Tensor& t) { return std::string(ir::dataTypeName(t.dtype())) + " " + dimsText(t.dims()); }

/// Input `i` as a sequence, or an error naming the node and what it got.
Expected<const Value*> sequenceInput(const KernelContext& ctx, size_t i) {
  if (!ctx.hasInput(i)) return ctx.error("input " + std::to_string(i) + " (a sequence) is missing");
  const Value& v = ctx.value(i);
  if (v.kind() != ValueKind::kSequence) {
    return ctx.error("input " + std::to_string(i) + " must be a sequence, got a " + v.describe());
  }
  return &v;
}

/// Input `i` as a tensor, or an error.
Expected<const ir::Tensor*> tensorInput(const KernelContext& ctx, size_t i, const std::string& what) {
  if (!ctx.hasInput(i)) return ctx.error(what + " (input " + std::to_string(i) + ") is missing");
  const Value& v = ctx.value(i);
  if (!v.isTensor()) return ctx.error(what + " must be a tensor, got a " + v.describe());
  return &v.tensor();
}

/// A position input: a scalar (or one-element) int32/int64 tensor.
Expected<int64_t> positionInput(const KernelContext& ctx, size_t i) {
  WH_ASSIGN_OR_RETURN(const ir::Tensor* t, tensorInput(ctx, i, "the position"));
  if ((t->dtype() != ir::DataType::kInt32 && t->dtype() != ir::DataType::kInt64) || t->numel() != 1) {
    return ctx.error("the position must be a single int32 or int64 element, got " + tensorText(*t));
  }
  return t->dtype() == ir::DataType::kInt32 ? int64_t{t->data<int32_t>()[0]} : t->data<int64_t>()[0];
}

/// `position` in [-n, n - 1] (or [-n, n] when `end` is allowed) made non-negative.
Expected<size_t> normalizePosition(const KernelContext& ctx, int64_t position, size_t size, bool endAllowed) {
  const int64_t n = static_cast<int64_t>(size);
  const int64_t hi = endAllowed ? n : n - 1;
  if (position < -n || position > hi) {
    return ctx.error("position " + std::to_string(position) + " is out of range for a sequence of " +
                     std::to_string(size) + " elements (valid: [" + std::to_string(-n) + ", " + std::to_string(hi) + "])");
  }
  return static_cast<size_t>(position < 0 ? position + n : position);
}

/// The element type a tensor must have to join `seq`; an error when it does not.
Status checkElementType(const KernelContext& ctx, const Value& seq, const ir::Tensor& t) {
  ir::DataType want = seq.elementType();
  if (want != ir::DataType::kUndefined && t.dtype() != want) {
    return ctx.error("the tensor is " + std::string(ir::dataTypeName(t.dtype())) + " but the sequence holds " +
                     std::string(ir::dataTypeName(want)));
  }
  return Status::ok();
}

/// The bytes of one element, for the copies of SplitToSequence and ConcatFromSequence; strings
/// and sub-byte types are refused.
Expected<size_t> copyableSize(const KernelContext& ctx, ir::DataType dtype) {
  size_t size = ir::elementSize(dtype);
  if (size == 0 || dtype == ir::DataType::kString) {
    return ctx.unsupported("tensors of type " + std::string(ir::dataTypeName(dtype)) + " are not supported");
  }
  return size;
}

// ---- SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceAt, SequenceErase, SequenceLength

Expected<std::unique_ptr<Kernel>> sequenceEmpty(const KernelCreateInfo& info) {
  int64_t code = info.node.attrInt("dtype", static_cast<int64_t>(ir::DataType::kFloat));
  if (code < 0 || code > INT32_MAX || !ir::isKnownDataType(static_cast<int32_t>(code)) || code == 0) {
    return info.error("dtype " + std::to_string(code) + " is not a tensor element type");
  }
  ir::DataType dtype = static_cast<ir::DataType>(code);
  return makeFunctionKernel([dtype](KernelContext& ctx) {
    ctx.setValue(0, Value::sequence({}, dtype));
    return Status::ok();
  });
}

Status sequenceConstruct(KernelContext& ctx) {
  std::vector<Value> elements;
  elements.reserve(ctx.numInputs());
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    WH_ASSIGN_OR_RETURN(const ir::Tensor* t, tensorInput(ctx, i, "input " + std::to_string(i)));
    if (!elements.empty() && t->dtype() != elements.front().tensor().dtype()) {
      return ctx.error("input " + std::to_string(i) + " is " + std::string(ir::dataTypeName(t->dtype())) + ", input 0 " +
                       std::string(ir::dataTypeName(elements.front().tensor().dtype())) +
                       " (a sequence holds one element type)");
    }
    elements.emplace_back(*t);
  }
  if (elements.empty()) return ctx.error("expects at least one input");
  ctx.setValue(0, Value::sequence(std::move(elements)));
  return Status::ok();
}

Status sequenceInsert(KernelContext& ctx) {
  WH_ASSIGN_OR_RETURN(const Value* seq, sequenceInput(ctx, 0));
  WH_ASSIGN_OR_RETURN(const ir::Tensor* t, tensorInput(ctx, 1, "the tensor to insert"));
  WH_RETURN_IF_ERROR(checkElementType(ctx, *seq, *t));
  size_t at = seq->elements().size();
  if (ctx.hasInput(2)) {
    WH_ASSIGN_OR_RETURN(int64_t position, positionInput(ctx, 2));
    WH_ASSIGN_OR_RETURN(at, normalizePosition(ctx, position, seq->elements().size(), /*endAllowed=*/true));
  }
  std::vector<Value> elements = seq->elements();
  elements.insert(elements.begin() + static_cast<std::ptrdiff_t>(at), Value(*t));
  ctx.setValue(0, Value::sequence(std::move(elements), t->dtype()));
  return Status::ok();
}

Status sequenceAt(KernelContext& ctx) {
  WH_ASSIGN_OR_RETURN(const Value* seq, sequenceInput(ctx, 0));
  WH_ASSIGN_OR_RETURN(int64_t position, positionInput(ctx, 1));
  WH_ASSIGN_OR_RETURN(size_t at, normalizePosition(ctx, position, seq->elements().size(), /*endAllowed=*/false));
  ctx.setValue(0, seq->elements()[at]);
  return Status::ok();
}

Status sequenceErase(KernelContext& ctx) {
  WH_ASSIGN_OR_RETURN(const Value* seq, sequenceInput(ctx, 0));
  if (seq->elements().empty()) return ctx.error("cannot erase from an empty sequence");
  size_t at = seq->elements().size() - 1;
  if (ctx.hasInput(1)) {
    WH_ASSIGN_OR_RETURN(int64_t position, positionInput(ctx, 1));
    WH_ASSIGN_OR_RETURN(at, normalizePosition(ctx, position, seq->elements().size(), /*endAllowed=*/false));
  }
  std::vector<Value> elements = seq->elements();
  elements.erase(elements.begin() + static_cast<std::ptrdiff_t>(at));
  ctx.setValue(0, Value::sequence(std::move(elements), seq->elementType()));
  return Status::ok();
}

Status sequenceLength(KernelContext& ctx) {
  WH_ASSIGN_OR_RETURN(const Value* seq, sequenceInput(ctx, 0));
  ir::Tensor& out = ctx.allocateOutput(0, ir::DataType::kInt64, {});
  out.mutableData<int64_t>()[0] = static_cast<int64_t>(seq->elements().size());
  return Status::ok();
}

// ---- SplitToSequence, ConcatFromSequence

class SplitToSequenceKernel final : public Kernel {
 public:
  SplitToSequenceKernel(int64_t axis, bool keepDims) : axis_(axis), keepDims_(keepDims) {}

  Status run(KernelContext& ctx) override {
    WH_ASSIGN_OR_RETURN(const ir::Tensor* in, tensorInput(ctx, 0, "the input"));
    const int64_t rank = in->rank();
    if (axis_ < -rank || axis_ >= rank) {
      return ctx.error("axis " + std::to_string(axis_) + " is out of range for the input " + tensorText(*in));
    }
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    const int64_t length = in->dims()[static_cast<size_t>(axis)];
    std::vector<int64_t> sizes;
    bool dropAxis = false;
    if (!ctx.hasInput(1)) {
      sizes.assign(static_cast<size_t>(length), 1);
      dropAxis = !keepDims_;
    } else {
      WH_ASSIGN_OR_RETURN(const ir::Tensor* split, tensorInput(ctx, 1, "split"));
      if ((split->dtype() != ir::DataType::kInt32 && split->dtype() != ir::DataType::kInt64) || split->rank() > 1) {
        return ctx.error("split must be an int32 or int64 scalar or 1-D tensor, got " + tensorText(*split));
      }
      auto at = [&](int64_t i) {
        return split->dtype() == ir::DataType::kInt32 ? int64_t{split->data<int32_t>()[i]} : split->data<int64_t>()[i];
      };
      if (split->rank() == 0) {
        const int64_t chunk = at(0);
        if (chunk <= 0) return ctx.error("split = " + std::to_string(chunk) + " must be positive");
        for (int64_t start = 0; start < length; start += chunk) sizes.push_back(std::min(chunk, length - start));
      } else {
        int64_t total = 0;
        for (int64_t i = 0; i < split->numel(); ++i) {
          if (at(i) < 0) return ctx.error("split[" + std::to_string(i) + "] = " + std::to_string(at(i)) + " is negative");
          sizes.push_back(at(i));
          total += at(i);
        }
        if (total != length) {
          return ctx.error("the split sizes add up to " + std::to_string(total) + ", the axis has " + std::to_string(length));
        }
      }
    }
    WH_ASSIGN_OR_RETURN(size_t esize, copyableSize(ctx, in->dtype()));
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= in->dims()[static_cast<size_t>(i)];
    for (int64_t i = axis + 1; i < rank; ++i) inner *= in->dims()[static_cast<size_t>(i)];
    const size_t innerBytes = static_cast<size_t>(inner) * esize;
    std::vector<Value> elements;
    elements.reserve(sizes.size());
    int64_t start = 0;
    for (int64_t size : sizes) {
      std::vector<int64_t> dims = in->dims();
      dims[static_cast<size_t>(axis)] = size;
      if (dropAxis) dims.erase(dims.begin() + axis);
      ir::Tensor part = ctx.allocateTensor(in->dtype(), std::move(dims));
      std::byte* dst = part.mutableRawData();
      const size_t chunkBytes = static_cast<size_t>(size) * innerBytes;
      for (int64_t o = 0; o < outer && chunkBytes > 0; ++o) {
        std::memcpy(dst + static_cast<size_t>(o) * chunkBytes,
                    in->rawData() + (static_cast<size_t>(o * length + start)) * innerBytes, chunkBytes);
      }
      elements.emplace_back(std::move(part));
      start += size;
    }
    ctx.setValue(0, Value::sequence(std::move(elements), in->dtype()));
    return Status::ok();
  }

 private:
  int64_t axis_;
  bool keepDims_;
};

class ConcatFromSequenceKernel final : public Kernel {
 public:
  ConcatFromSequenceKernel(int64_t axis, bool newAxis) : axis_(axis), newAxis_(newAxis) {}

  Status run(KernelContext& ctx) override {
    WH_ASSIGN_OR_RETURN(const Value* seq, sequenceInput(ctx, 0));
    const auto& elements = seq->elements();
    if (elements.empty()) return ctx.error("the sequence is empty: there is nothing to concatenate");
    for (size_t i = 0; i < elements.size(); ++i) {
      if (!elements[i].isTensor()) return ctx.error("element " + std::to_string(i) + " is a " + elements[i].describe());
    }
    const ir::Tensor& first = elements.front().tensor();
    const int64_t rank = first.rank() + (newAxis_ ? 1 : 0);
    if (axis_ < -rank || axis_ >= rank) {
      return ctx.error("axis " + std::to_string(axis_) + " is out of range for elements " + tensorText(first) +
                       (newAxis_ ? " with new_axis" : ""));
    }
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    // Each element seen with the concatenation axis in place (length 1 for new_axis).
    auto viewDims = [&](const ir::Tensor& t) {
      std::vector<int64_t> dims = t.dims();
      if (newAxis_) dims.insert(dims.begin() + axis, 1);
      return dims;
    };
    std::vector<int64_t> outDims = viewDims(first);
    outDims[static_cast<size_t>(axis)] = 0;
    for (size_t i = 0; i < elements.size(); ++i) {
      const ir::Tensor& t = elements[i].tensor();
      std::vector<int64_t> dims = viewDims(t);
      bool ok = t.dtype() == first.dtype() && static_cast<int64_t>(dims.size()) == rank;
      for (int64_t d = 0; ok && d < rank; ++d) {
        ok = d == axis || dims[static_cast<size_t>(d)] == outDims[static_cast<size_t>(d)];
      }
      if (!ok) {
        return ctx.error("element " + std::to_string(i) + " is " + tensorText(t) + ", element 0 " + tensorText(first) +
                         (newAxis_ ? " (stacked elements must agree in every dim)" : " (they must agree but along the axis)"));
      }
      outDims[static_cast<size_t>(axis)] += dims[static_cast<size_t>(axis)];
    }
    WH_ASSIGN_OR_RETURN(size_t esize, copyableSize(ctx, first.dtype()));
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= outDims[static_cast<size_t>(i)];
    for (int64_t i = axis + 1; i < rank; ++i) inner *= outDims[static_cast<size_t>(i)];
    const int64_t total = outDims[static_cast<size_t>(axis)];
    ir::Tensor& out = ctx.allocateOutput(0, first.dtype(), outDims);
    std::byte* dst = out.mutableRawData();
    const size_t innerBytes = static_cast<size_t>(inner) * esize;
    int64_t offset = 0;
    for (const Value& e : elements) {
      const ir::Tensor& t = e.tensor();
      const int64_t length = viewDims(t)[static_cast<size_t>(axis)];
      const size_t chunkBytes = static_cast<size_t>(length) * innerBytes;
      for (int64_t o = 0; o < outer && chunkBytes > 0; ++o) {
        std::memcpy(dst + static_cast<size_t>(o * total + offset) * innerBytes,
                    t.rawData() + static_cast<size_t>(o) * chunkBytes, chunkBytes);
      }
      offset += length;
    }
    return Status::ok();
  }

 private:
  int64_t axis_;
  bool newAxis_;
};

// ---- Optional, OptionalHasElement, OptionalGetElement

Status optional(KernelContext& ctx) {
  ctx.setValue(0, ctx.hasInput(0) ? Value::optional(ctx.value(0)) : Value::none());
  return Status::ok();
}

// A value that is not an optional counts as an optional holding it, at every opset, as in ONNX
// Runtime (where an optional is a value or nothing): a Loop whose body takes optional(seq) and
// gives back the sequence carries a plain sequence from the second iteration on. From opset 18
// on the input may also be absent: no element.
Status optionalHasElement(KernelContext& ctx) {
  bool has = false;
  if (ctx.hasInput(0)) {
    const Value& v = ctx.value(0);
    has = v.kind() == ValueKind::kOptional ? v.hasElement() : v.defined();
  }
  ir::Tensor& out = ctx.allocateOutput(0, ir::DataType::kBool, {});
  out.mutableData<uint8_t>()[0] = has ? 1 : 0;
  return Status::ok();
}

Status optionalGetElement(KernelContext& ctx) {
  if (!ctx.hasInput(0)) return ctx.error("the input is missing");
  const Value& v = ctx.value(0);
  if (v.kind() != ValueKind::kOptional) {
    ctx.setValue(0, v);
    return Status::ok();
  }
  if (!v.hasElement()) return ctx.error("the optional input holds no value");
  ctx.setValue(0, v.elements().front());
  return Status::ok();
}

// ---- ai.onnx.ml ZipMap

/// One map per row of X ([N, C] or [C]): class label c -> X[n, c], labels from
/// classlabels_int64s or classlabels_strings (exactly one of them, C entries).
class ZipMapKernel final : public Kernel {
 public:
  explicit ZipMapKernel(ir::Tensor labels) : labels_(std::move(labels)) {}

  Status run(KernelContext& ctx) override {
    WH_ASSIGN_OR_RETURN(const ir::Tensor* x, tensorInput(ctx, 0, "X"));
    if (x->dtype() != ir::DataType::kFloat) return ctx.error("X must be float32, got " + tensorText(*x));
    if (x->rank() != 1 && x->rank() != 2) return ctx.error("X must be [N, C] or [C], got " + tensorText(*x));
    const int64_t classes = x->dims().back();
    const int64_t rows = x->rank() == 2 ? x->dims()[0] : 1;
    if (classes != labels_.numel()) {
      return ctx.error("X has " + std::to_string(classes) + " columns but there are " + std::to_string(labels_.numel()) +
                       " class labels");
    }
    std::vector<Value> maps;
    maps.reserve(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      ir::Tensor values = ctx.allocateTensor(ir::DataType::kFloat, {classes});
      if (classes > 0) {
        std::memcpy(values.mutableRawData(), x->data<float>() + r * classes, static_cast<size_t>(classes) * sizeof(float));
      }
      maps.push_back(Value::map(labels_, std::move(values)));
    }
    ctx.setValue(0, Value::sequence(std::move(maps)));
    return Status::ok();
  }

 private:
  ir::Tensor labels_;
};

Expected<std::unique_ptr<Kernel>> zipMap(const KernelCreateInfo& info) {
  const ir::Attribute* ints = info.node.findAttribute("classlabels_int64s");
  const ir::Attribute* strings = info.node.findAttribute("classlabels_strings");
  if ((ints == nullptr) == (strings == nullptr)) {
    return info.error("exactly one of classlabels_int64s and classlabels_strings must be given");
  }
  ir::Tensor labels;
  if (ints != nullptr) {
    labels = ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(ints->ints.size())}, ints->ints);
  } else {
    labels = ir::Tensor::strings({static_cast<int64_t>(strings->strings.size())}, strings->strings);
  }
  return std::unique_ptr<Kernel>(std::make_unique<ZipMapKernel>(std::move(labels)));
}

}  // namespace

void registerSequenceKernels(KernelRegistry& registry) {
  auto plain = [](Status (*fn)(KernelContext&)) {
    return [fn](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> { return makeFunctionKernel(fn); };
  };
  registry.add("", "SequenceEmpty", 11, sequenceEmpty);
  registry.add("", "SequenceConstruct", 11, plain(sequenceConstruct));
  registry.add("", "SequenceInsert", 11, plain(sequenceInsert));
  registry.add("", "SequenceAt", 11, plain(sequenceAt));
  registry.add("", "SequenceErase", 11, plain(sequenceErase));
  registry.add("", "SequenceLength", 11, plain(sequenceLength));
  registry.add("", "SplitToSequence", 11, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<SplitToSequenceKernel>(info.node.attrInt("axis", 0),
                                                                           info.node.attrInt("keepdims", 1) != 0));
  });
  registry.add("", "ConcatFromSequence", 11, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    if (info.node.findAttribute("axis") == nullptr) return info.error("attribute 'axis' is required");
    const int64_t newAxis = info.node.attrInt("new_axis", 0);
    if (newAxis != 0 && newAxis != 1) return info.error("new_axis = " + std::to_string(newAxis) + " must be 0 or 1");
    return std::unique_ptr<Kernel>(std::make_unique<ConcatFromSequenceKernel>(info.node.attrInt("axis", 0), newAxis == 1));
  });
  registry.add("", "Optional", 15, plain(optional));
  registry.add("", "OptionalHasElement", 15, plain(optionalHasElement));
  registry.add("", "OptionalGetElement", 15, plain(optionalGetElement));
  registry.add("ai.onnx.ml", "ZipMap", 1, zipMap);
  for (const char* op : {"SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceAt", "SequenceErase",
                         "SequenceLength", "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalHasElement",
                         "OptionalGetElement", "Identity"}) {
    registry.markTakesValues("", op);
  }
  registry.markTakesValues("ai.onnx.ml", "ZipMap");
}

}  // namespace whittle::runtime::cpu
