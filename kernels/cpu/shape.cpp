// The shape family: ops that move, view or make tensors without arithmetic on their values.
// This file registers the whole family and holds the zero-copy views (Reshape, Flatten,
// Squeeze, Unsqueeze) and the shape-computing sources (Shape, Size, Constant,
// ConstantOfShape, Range, EyeLike). The other ops live in shape_*.cpp.
#include <cmath>
#include <cstring>

#include "cpu/families.h"
#include "cpu/shape_internal.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

// ---- Reshape, Flatten, Squeeze, Unsqueeze: views sharing the input buffer ----

/// The output dims of Reshape: 0 copies the input dim (unless allowzero), -1 is inferred.
Expected<std::vector<int64_t>> reshapeDims(const KernelContext& ctx, const std::vector<int64_t>& in,
                                           const std::vector<int64_t>& shape, bool allowZero) {
  int64_t numel = dimProduct(in);
  std::vector<int64_t> out(shape.size());
  int64_t known = 1;
  int inferAt = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t v = shape[i];
    if (v == 0 && !allowZero) {
      if (i >= in.size()) {
        return ctx.error("shape " + shapeToString(shape) + " copies dim " + std::to_string(i) +
                         " of an input of shape " + shapeToString(in));
      }
      v = in[i];
    } else if (v == -1) {
      if (inferAt >= 0) return ctx.error("shape " + shapeToString(shape) + " has more than one -1");
      inferAt = static_cast<int>(i);
      continue;
    } else if (v < 0) {
      return ctx.error("shape " + shapeToString(shape) + " has a negative dim");
    }
    out[i] = v;
    known *= v;
  }
  if (inferAt >= 0) {
    if (known == 0 || numel % known != 0) {
      return ctx.error("cannot reshape " + shapeToString(in) + " to " + shapeToString(shape));
    }
    out[static_cast<size_t>(inferAt)] = numel / known;
  } else if (known != numel) {
    return ctx.error("cannot reshape " + shapeToString(in) + " (" + std::to_string(numel) + " elements) to " +
                     shapeToString(shape));
  }
  return out;
}

KernelPtr makeReshape(const KernelCreateInfo& info) {
  bool allowZero = info.node.attrInt("allowzero", 0) != 0;
  bool fromAttribute = info.opset < 5;
  std::vector<int64_t> attrShape = info.node.attrInts("shape");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    std::vector<int64_t> shape = attrShape;
    if (!fromAttribute) {
      if (!ctx.hasInput(1)) return ctx.error("input 'shape' is missing");
      WH_ASSIGN_OR_RETURN(shape, readIntInput(ctx, 1, "shape"));
    }
    WH_ASSIGN_OR_RETURN(auto dims, reshapeDims(ctx, x.dims(), shape, allowZero));
    ctx.setOutput(0, viewWithDims(x, std::move(dims)));
    return Status::ok();
  });
}

KernelPtr makeFlatten(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", 1);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    int64_t rank = x.rank();
    int64_t axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
    if (axis < 0 || axis > rank) {
      return ctx.error("axis " + std::to_string(axisAttr) + " is out of range for rank " + std::to_string(rank));
    }
    auto a = static_cast<size_t>(axis);
    ctx.setOutput(0, viewWithDims(x, {dimProduct(x.dims(), 0, a), dimProduct(x.dims(), a, x.dims().size())}));
    return Status::ok();
  });
}

/// Axes from the attribute (before `inputSince`) or from optional input 1.
Expected<std::optional<std::vector<int64_t>>> axesOf(const KernelContext& ctx, bool fromInput,
                                                     const std::optional<std::vector<int64_t>>& attrAxes) {
  if (!fromInput) return attrAxes;
  if (!ctx.hasInput(1)) return std::optional<std::vector<int64_t>>{};
  WH_ASSIGN_OR_RETURN(auto axes, readIntInput(ctx, 1, "axes"));
  return std::optional<std::vector<int64_t>>(std::move(axes));
}

KernelPtr makeSqueeze(const KernelCreateInfo& info) {
  bool fromInput = info.opset >= 13;
  std::optional<std::vector<int64_t>> attrAxes;
  if (info.node.hasAttribute("axes")) attrAxes = info.node.attrInts("axes");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(auto axes, axesOf(ctx, fromInput, attrAxes));
    std::vector<bool> drop(x.dims().size(), false);
    if (axes) {
      for (int64_t a : *axes) {
        WH_ASSIGN_OR_RETURN(int64_t axis, normalizeAxisOrError(ctx, a, x.rank(), "axis"));
        if (x.dims()[static_cast<size_t>(axis)] != 1) {
          return ctx.error("cannot squeeze axis " + std::to_string(a) + " of shape " + shapeToString(x.dims()));
        }
        drop[static_cast<size_t>(axis)] = true;
      }
    } else {
      for (size_t i = 0; i < drop.size(); ++i) drop[i] = x.dims()[i] == 1;
    }
    std::vector<int64_t> dims;
    for (size_t i = 0; i < drop.size(); ++i) {
      if (!drop[i]) dims.push_back(x.dims()[i]);
    }
    ctx.setOutput(0, viewWithDims(x, std::move(dims)));
    return Status::ok();
  });
}

KernelPtr makeUnsqueeze(const KernelCreateInfo& info) {
  bool fromInput = info.opset >= 13;
  std::optional<std::vector<int64_t>> attrAxes = info.node.attrInts("axes");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(auto axes, axesOf(ctx, fromInput, attrAxes));
    if (!axes) return ctx.error("input 'axes' is missing");
    int64_t outRank = x.rank() + static_cast<int64_t>(axes->size());
    std::vector<bool> inserted(static_cast<size_t>(outRank), false);
    for (int64_t a : *axes) {
      WH_ASSIGN_OR_RETURN(int64_t axis, normalizeAxisOrError(ctx, a, outRank, "axis"));
      if (inserted[static_cast<size_t>(axis)]) return ctx.error("axis " + std::to_string(a) + " is repeated");
      inserted[static_cast<size_t>(axis)] = true;
    }
    std::vector<int64_t> dims;
    size_t next = 0;
    for (size_t i = 0; i < inserted.size(); ++i) dims.push_back(inserted[i] ? 1 : x.dims()[next++]);
    ctx.setOutput(0, viewWithDims(x, std::move(dims)));
    return Status::ok();
  });
}

// ---- Shape, Size ----

KernelPtr makeShape(const KernelCreateInfo& info) {
  int64_t startAttr = info.node.attrInt("start", 0);
  std::optional<int64_t> endAttr;
  if (info.node.hasAttribute("end")) endAttr = info.node.attrInt("end", 0);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const auto& dims = ctx.input(0).dims();
    auto rank = static_cast<int64_t>(dims.size());
    auto clampAxis = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
    int64_t start = clampAxis(startAttr);
    int64_t end = endAttr ? clampAxis(*endAttr) : rank;
    int64_t n = std::max<int64_t>(end - start, 0);
    auto* out = ctx.allocateOutput(0, ir::DataType::kInt64, {n}).mutableData<int64_t>();
    for (int64_t i = 0; i < n; ++i) out[i] = dims[static_cast<size_t>(start + i)];
    return Status::ok();
  });
}

KernelPtr makeSize(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    *ctx.allocateOutput(0, ir::DataType::kInt64, {}).mutableData<int64_t>() = ctx.input(0).numel();
    return Status::ok();
  });
}

// ---- Constant, ConstantOfShape ----

KernelPtr makeConstant(const KernelCreateInfo& info) {
  const ir::Node& node = info.node;
  ir::Tensor value;
  if (const ir::Attribute* a = node.findAttribute("value")) {
    if (a->kind != ir::Attribute::Kind::kTensor) return info.unsupported("attribute 'value' is not a dense tensor");
    value = a->t;
  } else if (const ir::Attribute* a = node.findAttribute("value_float")) {
    value = ir::Tensor::fromVector(ir::DataType::kFloat, {}, std::vector<float>{a->f});
  } else if (const ir::Attribute* a = node.findAttribute("value_floats")) {
    value = ir::Tensor::fromVector(ir::DataType::kFloat, {static_cast<int64_t>(a->floats.size())}, a->floats);
  } else if (const ir::Attribute* a = node.findAttribute("value_int")) {
    value = ir::Tensor::fromVector(ir::DataType::kInt64, {}, std::vector<int64_t>{a->i});
  } else if (const ir::Attribute* a = node.findAttribute("value_ints")) {
    value = ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(a->ints.size())}, a->ints);
  } else if (const ir::Attribute* a = node.findAttribute("value_string")) {
    value = ir::Tensor::strings({}, {a->s});
  } else if (const ir::Attribute* a = node.findAttribute("value_strings")) {
    value = ir::Tensor::strings({static_cast<int64_t>(a->strings.size())}, a->strings);
  } else if (node.hasAttribute("sparse_value")) {
    return info.unsupported("attribute 'sparse_value' is not supported");
  } else {
    return info.error("has no value attribute");
  }
  return makeFunctionKernel([value](KernelContext& ctx) -> Status {
    ctx.setOutput(0, value);
    return Status::ok();
  });
}

KernelPtr makeConstantOfShape(const KernelCreateInfo& info) {
  ir::Tensor value = ir::Tensor::fromVector(ir::DataType::kFloat, {1}, std::vector<float>{0.0f});
  if (const ir::Attribute* a = info.node.findAttribute("value")) {
    if (a->kind != ir::Attribute::Kind::kTensor || a->t.numel() != 1) {
      return info.error("attribute 'value' must be a one-element tensor");
    }
    value = a->t;
  }
  if (!isByteCopyable(value.dtype())) {
    return info.unsupported("value dtype " + std::string(ir::dataTypeName(value.dtype())) + " is not supported");
  }
  return makeFunctionKernel([value](KernelContext& ctx) -> Status {
    WH_ASSIGN_OR_RETURN(auto dims, readIntInput(ctx, 0, "shape"));
    for (int64_t d : dims) {
      if (d < 0) return ctx.error("shape " + shapeToString(dims) + " has a negative dim");
    }
    ir::Tensor& out = ctx.allocateOutput(0, value.dtype(), dims);
    fillElements(out.mutableRawData(), value.rawData(), out.numel(), ir::elementSize(value.dtype()));
    return Status::ok();
  });
}

// ---- Range ----

template <typename T>
Status runRange(KernelContext& ctx) {
  T start = ctx.input(0).data<T>()[0];
  T limit = ctx.input(1).data<T>()[0];
  T delta = ctx.input(2).data<T>()[0];
  if (delta == T(0)) return ctx.error("delta is zero");
  int64_t n;
  if constexpr (std::is_floating_point_v<T>) {
    n = static_cast<int64_t>(std::max(std::ceil((static_cast<double>(limit) - start) / delta), 0.0));
  } else {
    auto span = static_cast<int64_t>(limit) - static_cast<int64_t>(start);
    auto step = static_cast<int64_t>(delta);
    n = span / step + ((span % step != 0) && ((span > 0) == (step > 0)) ? 1 : 0);
    n = std::max<int64_t>(n, 0);
  }
  T* out = ctx.allocateOutput(0, ctx.input(0).dtype(), {n}).template mutableData<T>();
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(start + static_cast<T>(i) * delta);
  return Status::ok();
}

KernelPtr makeRange(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    for (size_t i = 0; i < 3; ++i) {
      if (ctx.input(i).numel() != 1) return ctx.error("inputs must be scalars");
      if (ctx.input(i).dtype() != ctx.input(0).dtype()) return ctx.error("inputs must have the same dtype");
    }
    switch (ctx.input(0).dtype()) {
      case ir::DataType::kFloat:
        return runRange<float>(ctx);
      case ir::DataType::kDouble:
        return runRange<double>(ctx);
      case ir::DataType::kInt16:
        return runRange<int16_t>(ctx);
      case ir::DataType::kInt32:
        return runRange<int32_t>(ctx);
      case ir::DataType::kInt64:
        return runRange<int64_t>(ctx);
      default:
        return ctx.unsupported("dtype " + std::string(ir::dataTypeName(ctx.input(0).dtype())) + " is not supported");
    }
  });
}

// ---- EyeLike ----

KernelPtr makeEyeLike(const KernelCreateInfo& info) {
  std::optional<ir::DataType> dtypeAttr;
  if (info.node.hasAttribute("dtype")) dtypeAttr = static_cast<ir::DataType>(info.node.attrInt("dtype", 1));
  int64_t k = info.node.attrInt("k", 0);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    if (x.rank() != 2) return ctx.error("input must be 2-D, got " + shapeToString(x.dims()));
    ir::DataType dtype = dtypeAttr.value_or(x.dtype());
    ScalarBytes one;
    if (!scalarBytes(1.0, dtype, one)) {
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(dtype)) + " is not supported");
    }
    int64_t rows = x.dims()[0], cols = x.dims()[1];
    ir::Tensor& out = ctx.allocateOutput(0, dtype, {rows, cols});
    size_t es = ir::elementSize(dtype);
    std::byte* dst = out.mutableRawData();
    std::memset(dst, 0, static_cast<size_t>(rows * cols) * es);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t c = r + k;
      if (c >= 0 && c < cols) std::memcpy(dst + static_cast<size_t>(r * cols + c) * es, one.data(), es);
    }
    return Status::ok();
  });
}

}  // namespace

void registerShapeKernels(KernelRegistry& registry) {
  registry.add("", "Reshape", 1, makeReshape);
  registry.add("", "Flatten", 1, makeFlatten);
  registry.add("", "Squeeze", 1, makeSqueeze);
  registry.add("", "Unsqueeze", 1, makeUnsqueeze);
  registry.add("", "Shape", 1, makeShape);
  registry.add("", "Size", 1, makeSize);
  registry.add("", "Constant", 1, makeConstant);
  registry.add("", "ConstantOfShape", 9, makeConstantOfShape);
  registry.add("", "Range", 11, makeRange);
  registry.add("", "EyeLike", 9, makeEyeLike);
  registerShapeLayoutKernels(registry);
  registerShapeGatherKernels(registry);
  registerShapeResizeKernels(registry);
  registerShapeMiscKernels(registry);
}

}  // namespace whittle::runtime::cpu
