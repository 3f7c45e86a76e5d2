// Entry points of the shape and data-movement kernels: Reshape, Flatten, Squeeze and
// Unsqueeze as views of their input's device bytes; Shape and Constant (small host values
// uploaded); Transpose, Slice, Concat and Expand as strided copies (data.cu); Gather.
#include <algorithm>

#include "cuda/cuda_common.h"

namespace whittle::runtime::cuda {
namespace {

using ir::DataType;

std::optional<int64_t> axisIn(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

Status runReshape(KernelContext& ctx, const ConstInts& ints) {
  const ir::Tensor& x = ctx.input(0);
  WH_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ints.get(ctx, 1, "shape"));
  const bool allowZero = ctx.node().attrInt("allowzero", 0) != 0;
  int64_t known = 1;
  int inferred = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allowZero) {
      if (i >= x.dims().size()) return ctx.error("shape copies a dimension the input does not have");
      shape[i] = x.dims()[i];
    }
    if (shape[i] == -1) {
      if (inferred >= 0) return ctx.error("shape has more than one -1");
      inferred = static_cast<int>(i);
    } else if (shape[i] < 0) {
      return ctx.error("shape has a negative dimension");
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0) {
    if (known == 0 || x.numel() % known != 0) return ctx.error("cannot infer the -1 dimension");
    shape[static_cast<size_t>(inferred)] = x.numel() / known;
    known *= shape[static_cast<size_t>(inferred)];
  }
  if (known != x.numel()) return ctx.error("shape does not match the input's element count");
  ctx.setOutput(0, viewAs(x, shape));
  return Status::ok();
}

Status runFlatten(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  auto axis = axisIn(ctx.node().attrInt("axis", 1), x.rank() + 1);
  if (!axis) return ctx.error("axis out of range");
  int64_t outer = 1;
  for (int64_t i = 0; i < *axis; ++i) outer *= x.dims()[static_cast<size_t>(i)];
  ctx.setOutput(0, viewAs(x, {outer, outer == 0 ? 0 : x.numel() / outer}));
  return Status::ok();
}

/// Squeeze/Unsqueeze axes: an attribute before opset 13, an input from 13 on.
Expected<std::vector<int64_t>> axesOf(KernelContext& ctx, int64_t opset, const ConstInts& ints) {
  if (opset >= 13) {
    if (!ctx.hasInput(1)) return std::vector<int64_t>{};
    return ints.get(ctx, 1, "axes");
  }
  return ctx.node().attrInts("axes");
}

Expected<std::unique_ptr<Kernel>> makeSqueeze(const KernelCreateInfo& info) {
  const int64_t opset = info.opset;
  const bool unsqueeze = info.node.opType() == "Unsqueeze";
  ConstInts ints(info);
  return makeFunctionKernel([opset, unsqueeze, ints](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(std::vector<int64_t> axes, axesOf(ctx, opset, ints));
    std::vector<int64_t> dims;
    if (unsqueeze) {
      const int64_t rank = x.rank() + static_cast<int64_t>(axes.size());
      std::vector<bool> inserted(static_cast<size_t>(rank), false);
      for (int64_t a : axes) {
        auto n = axisIn(a, rank);
        if (!n || inserted[static_cast<size_t>(*n)]) return ctx.error("axes out of range or repeated");
        inserted[static_cast<size_t>(*n)] = true;
      }
      size_t from = 0;
      for (int64_t i = 0; i < rank; ++i) dims.push_back(inserted[static_cast<size_t>(i)] ? 1 : x.dims()[from++]);
    } else {
      std::vector<bool> drop(x.dims().size(), false);
      for (int64_t a : axes) {
        auto n = axisIn(a, x.rank());
        if (!n || x.dims()[static_cast<size_t>(*n)] != 1) return ctx.error("squeezes an axis that is not of size 1");
        drop[static_cast<size_t>(*n)] = true;
      }
      for (size_t i = 0; i < x.dims().size(); ++i) {
        const bool squeeze = axes.empty() ? x.dims()[i] == 1 : drop[i];
        if (!squeeze) dims.push_back(x.dims()[i]);
      }
    }
    ctx.setOutput(0, viewAs(x, dims));
    return Status::ok();
  });
}

/// A host tensor as a device output (Shape's dims, a Constant's value).
Status emitHost(KernelContext& ctx, const ir::Tensor& host) {
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, host.dtype(), host.dims()));
  if (host.byteSize() > 0) {
    WH_CUDA(ctx.describe(), cudaMemcpyAsync(dptr(*y), host.rawData(), host.byteSize(), cudaMemcpyHostToDevice,
                                            cudaContext(ctx).stream()));
    // The host tensor goes away when we return: wait for the copy.
    WH_CUDA(ctx.describe(), cudaStreamSynchronize(cudaContext(ctx).stream()));
  }
  return Status::ok();
}

Status runShape(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  int64_t start = ctx.node().attrInt("start", 0);
  int64_t end = ctx.node().attrInt("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  std::vector<int64_t> dims(x.dims().begin() + start, x.dims().begin() + end);
  return emitHost(ctx, ir::Tensor::fromVector(DataType::kInt64, {static_cast<int64_t>(dims.size())}, dims));
}

Expected<std::unique_ptr<Kernel>> makeConstant(const KernelCreateInfo& info) {
  const ir::Attribute* value = info.node.findAttribute("value");
  if (value == nullptr || value->isOpaque() || value->tensors.empty()) {
    return info.unsupported("Constant without a tensor 'value' is not supported by the cuda runtime");
  }
  // Uploaded once, when the kernel is made; every run shares the device copy.
  WH_ASSIGN_OR_RETURN(ir::Tensor device, uploadTensor(value->tensors.front(), cudaContext(info.context), info.node.describe()));
  return makeFunctionKernel([device](KernelContext& ctx) -> Status {
    ctx.setOutput(0, device);
    return Status::ok();
  });
}

Status copyWalk(KernelContext& ctx, const ir::Tensor& src, ir::Tensor& dst, const std::optional<StridedWalk>& walk) {
  if (!walk) return ctx.unsupported("rank above 8 after collapsing is not supported by the cuda runtime");
  const size_t bytes = ir::elementSize(src.dtype());
  if (bytes != 1 && bytes != 2 && bytes != 4 && bytes != 8) {
    return ctx.unsupported(std::string(ir::dataTypeName(src.dtype())) + " is not supported by the cuda runtime");
  }
  WH_CUDA(ctx.describe(), launchStridedCopy(bytes, dptr(src), dptr(dst), *walk, cudaContext(ctx).stream()));
  return Status::ok();
}

Status runTranspose(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  std::vector<int64_t> perm = ctx.node().attrInts("perm");
  if (perm.empty()) {
    for (int64_t i = x.rank(); i-- > 0;) perm.push_back(i);
  }
  std::vector<int64_t> outDims;
  auto walk = planTranspose(x.dims(), perm, outDims);
  if (!walk) return ctx.error("perm is not a permutation of the input's axes (or the rank is above 8)");
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), outDims));
  return copyWalk(ctx, x, *y, walk);
}

Status runConcat(KernelContext& ctx) {
  const ir::Tensor& first = ctx.input(0);
  auto axis = axisIn(ctx.node().attrInt("axis", 0), first.rank());
  if (!axis) return ctx.error("axis out of range");
  std::vector<int64_t> outDims = first.dims();
  outDims[static_cast<size_t>(*axis)] = 0;
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    const ir::Tensor& t = ctx.input(i);
    if (t.dtype() != first.dtype() || t.rank() != first.rank()) return ctx.error("inputs differ in type or rank");
    outDims[static_cast<size_t>(*axis)] += t.dims()[static_cast<size_t>(*axis)];
  }
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, first.dtype(), outDims));
  int64_t offset = 0;
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    const ir::Tensor& t = ctx.input(i);
    auto walk = planConcatPart(t.dims(), outDims, *axis, offset);
    if (!walk && t.numel() != 0) return ctx.error("input " + std::to_string(i) + " does not fit the output");
    if (t.numel() != 0) WH_RETURN_IF_ERROR(copyWalk(ctx, t, *y, walk));
    offset += t.dims()[static_cast<size_t>(*axis)];
  }
  return Status::ok();
}

Status runSlice(KernelContext& ctx, const ConstInts& ints) {
  const ir::Tensor& x = ctx.input(0);
  const auto rank = static_cast<int64_t>(x.dims().size());
  WH_ASSIGN_OR_RETURN(std::vector<int64_t> starts, ints.get(ctx, 1, "starts"));
  WH_ASSIGN_OR_RETURN(std::vector<int64_t> ends, ints.get(ctx, 2, "ends"));
  std::vector<int64_t> axes, steps;
  if (ctx.hasInput(3)) {
    WH_ASSIGN_OR_RETURN(axes, ints.get(ctx, 3, "axes"));
  } else {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (ctx.hasInput(4)) {
    WH_ASSIGN_OR_RETURN(steps, ints.get(ctx, 4, "steps"));
  } else {
    steps.assign(starts.size(), 1);
  }
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    return ctx.error("starts, ends, axes and steps differ in length");
  }
  std::vector<int64_t> st(static_cast<size_t>(rank), 0), sp(static_cast<size_t>(rank), 1), out = x.dims();
  for (size_t i = 0; i < starts.size(); ++i) {
    auto a = axisIn(axes[i], rank);
    if (!a) return ctx.error("axis out of range");
    const int64_t dim = x.dims()[static_cast<size_t>(*a)];
    const int64_t step = steps[i];
    if (step == 0) return ctx.error("step is 0");
    int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
    int64_t count;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      count = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      count = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    st[static_cast<size_t>(*a)] = count > 0 ? s : 0;
    sp[static_cast<size_t>(*a)] = step;
    out[static_cast<size_t>(*a)] = count;
  }
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), out));
  if (y->numel() == 0) return Status::ok();
  return copyWalk(ctx, x, *y, planSlice(x.dims(), st, sp, out));
}

Status runExpand(KernelContext& ctx, const ConstInts& ints) {
  const ir::Tensor& x = ctx.input(0);
  WH_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ints.get(ctx, 1, "shape"));
  auto outDims = broadcastDims({x.dims(), shape});
  if (!outDims) return ctx.error("shape does not broadcast with the input");
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), *outDims));
  return copyWalk(ctx, x, *y, planExpand(x.dims(), *outDims));
}

Expected<std::unique_ptr<Kernel>> makeGather(const KernelCreateInfo& info) {
  const int check = cudaContext(info.context).registerCheck(info.node.describe());
  return makeFunctionKernel([check](KernelContext& ctx) -> Status {
    const ir::Tensor& data = ctx.input(0);
    const ir::Tensor& indices = ctx.input(1);
    WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "indices", indices.dtype(), {DataType::kInt64, DataType::kInt32}));
    auto axis = axisIn(ctx.node().attrInt("axis", 0), data.rank());
    if (!axis) return ctx.error("axis out of range");
    const size_t bytes = ir::elementSize(data.dtype());
    if (bytes != 1 && bytes != 2 && bytes != 4 && bytes != 8) {
      return ctx.unsupported(std::string(ir::dataTypeName(data.dtype())) + " is not supported by the cuda runtime");
    }
    std::vector<int64_t> outDims(data.dims().begin(), data.dims().begin() + *axis);
    outDims.insert(outDims.end(), indices.dims().begin(), indices.dims().end());
    outDims.insert(outDims.end(), data.dims().begin() + *axis + 1, data.dims().end());
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, data.dtype(), outDims));
    CudaContext& c = cudaContext(ctx);
    WH_CUDA(ctx.describe(), launchGather(bytes, dptr(data), dptr(indices), indices.dtype() == DataType::kInt64, dptr(*y),
                                         planGather(data.dims(), *axis, indices.numel()), c.badIndexWord(), check, c.stream()));
    return Status::ok();
  });
}

template <Status (*Fn)(KernelContext&)>
Expected<std::unique_ptr<Kernel>> plain(const KernelCreateInfo&) {
  return makeFunctionKernel(Fn);
}

/// A kernel whose constant integer inputs are read once, when it is made.
template <Status (*Fn)(KernelContext&, const ConstInts&)>
Expected<std::unique_ptr<Kernel>> withInts(const KernelCreateInfo& info) {
  ConstInts ints(info);
  return makeFunctionKernel([ints](KernelContext& ctx) { return Fn(ctx, ints); });
}

}  // namespace

void registerShapeKernels(KernelRegistry& r) {
  r.add("", "Reshape", 5, withInts<runReshape>);
  r.add("", "Flatten", 1, plain<runFlatten>);
  r.add("", "Squeeze", 1, makeSqueeze);
  r.add("", "Unsqueeze", 1, makeSqueeze);
  r.add("", "Shape", 1, plain<runShape>);
  r.add("", "Constant", 1, makeConstant);
  r.add("", "Transpose", 1, plain<runTranspose>);
  r.add("", "Concat", 1, plain<runConcat>);
  r.add("", "Slice", 10, withInts<runSlice>);
  r.add("", "Expand", 8, withInts<runExpand>);
  r.add("", "Gather", 1, makeGather);
}

}  // namespace whittle::runtime::cuda
