// Entry points of the row and pooling kernels (nn.cu) and of quantization (data.cu):
// Softmax/LogSoftmax, LayerNormalization/RMSNormalization, Max/AveragePool,
// GlobalAverage/MaxPool, QuantizeLinear and DequantizeLinear.
#include <cmath>

#include "cuda/cuda_common.h"

namespace whittle::runtime::cuda {
namespace {

using ir::DataType;

std::optional<int64_t> axisIn(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

Status checkFloat(KernelContext& ctx, const ir::Tensor& t, ElemType& type) {
  WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "input", t.dtype(), {DataType::kFloat, DataType::kFloat16}));
  elemType(t.dtype(), type);
  return Status::ok();
}

Expected<std::unique_ptr<Kernel>> makeSoftmax(const KernelCreateInfo& info) {
  const bool log = info.node.opType() == "LogSoftmax";
  const bool coerce2d = info.opset < 13;
  return makeFunctionKernel([log, coerce2d](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    ElemType type{};
    WH_RETURN_IF_ERROR(checkFloat(ctx, x, type));
    auto axis = axisIn(ctx.node().attrInt("axis", coerce2d ? 1 : -1), std::max<int64_t>(x.rank(), 1));
    if (!axis) return ctx.error("axis out of range");
    if (!coerce2d && *axis != x.rank() - 1) {
      return ctx.unsupported("Softmax over an axis other than the last is not supported by the cuda runtime");
    }
    const RowGeometry g = rowsFrom(x.dims(), *axis);
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), x.dims()));
    WH_CUDA(ctx.describe(), launchSoftmax(type, dptr(x), dptr(*y), g.rows, g.cols, log, cudaContext(ctx).stream()));
    return Status::ok();
  });
}

Expected<std::unique_ptr<Kernel>> makeLayerNorm(const KernelCreateInfo& info) {
  const bool rms = info.node.opType() == "RMSNormalization";
  for (size_t o = 1; o < info.node.numOutputs(); ++o) {
    if (info.node.output(o) != nullptr) {
      return info.unsupported("the Mean and InvStdDev outputs are not supported by the cuda runtime");
    }
  }
  return makeFunctionKernel([rms](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& scale = ctx.input(1);
    ElemType type{};
    WH_RETURN_IF_ERROR(checkFloat(ctx, x, type));
    auto axis = axisIn(ctx.node().attrInt("axis", -1), x.rank());
    if (!axis) return ctx.error("axis out of range");
    const RowGeometry g = rowsFrom(x.dims(), *axis);
    const ir::Tensor* bias = !rms && ctx.hasInput(2) ? &ctx.input(2) : nullptr;
    if (scale.dtype() != x.dtype() || scale.numel() != g.cols || (bias && (bias->dtype() != x.dtype() || bias->numel() != g.cols))) {
      return ctx.unsupported("scale and bias must have the normalised shape and the input's type on the cuda runtime");
    }
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), x.dims()));
    WH_CUDA(ctx.describe(), launchLayerNorm(type, dptr(x), dptr(scale), bias ? dptr(*bias) : nullptr, dptr(*y), g.rows, g.cols,
                                            ctx.node().attrFloat("epsilon", 1e-5f), rms, cudaContext(ctx).stream()));
    return Status::ok();
  });
}

Status runGlobalPool(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  ElemType type{};
  WH_RETURN_IF_ERROR(checkFloat(ctx, x, type));
  if (x.rank() < 3) return ctx.error("input must have rank 3 or more");
  const RowGeometry g = rowsFrom(x.dims(), 2);
  std::vector<int64_t> dims = x.dims();
  for (size_t i = 2; i < dims.size(); ++i) dims[i] = 1;
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), dims));
  WH_CUDA(ctx.describe(), launchRowReduce(type, dptr(x), dptr(*y), g.rows, g.cols, ctx.node().opType() == "GlobalMaxPool",
                                          cudaContext(ctx).stream()));
  return Status::ok();
}

/// Output size and the padding before, for one spatial axis.
Status poolAxis(KernelContext& ctx, const std::string& autoPad, bool ceilMode, int64_t in, int64_t k, int64_t s, int64_t d,
                int64_t padBegin, int64_t padEnd, int64_t& out, int64_t& padBefore) {
  const int64_t extent = (k - 1) * d + 1;
  if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>(0, (out - 1) * s + extent - in);
    padBefore = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
    return Status::ok();
  }
  if (autoPad == "VALID") {
    padBegin = padEnd = 0;
  } else if (autoPad != "NOTSET") {
    return ctx.error("unknown auto_pad " + autoPad);
  }
  const int64_t span = in + padBegin + padEnd - extent;
  if (span < 0) return ctx.error("kernel larger than the padded input");
  out = (ceilMode ? (span + s - 1) / s : span / s) + 1;
  // A last window that starts in the end padding is dropped (as ONNX Runtime does).
  if (ceilMode && (out - 1) * s >= in + padBegin) --out;
  padBefore = padBegin;
  return Status::ok();
}

Expected<std::unique_ptr<Kernel>> makePool(const KernelCreateInfo& info) {
  const ir::Node& node = info.node;
  const bool max = node.opType() == "MaxPool";
  if (max && node.numOutputs() > 1 && node.output(1) != nullptr) {
    return info.unsupported("MaxPool's Indices output is not supported by the cuda runtime");
  }
  const std::vector<int64_t> kernel = node.attrInts("kernel_shape");
  if (kernel.size() != 2) return info.unsupported("only 2-D pooling is supported by the cuda runtime");
  return makeFunctionKernel([max, kernel](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    ElemType type{};
    WH_RETURN_IF_ERROR(checkFloat(ctx, x, type));
    if (x.rank() != 4) return ctx.error("input must be NCHW");
    const ir::Node& n = ctx.node();
    const auto strides = n.attrInts("strides", {1, 1});
    const auto dil = n.attrInts("dilations", {1, 1});
    const auto pads = n.attrInts("pads", {0, 0, 0, 0});
    if (strides.size() != 2 || dil.size() != 2 || pads.size() != 4) return ctx.error("strides, dilations or pads have the wrong length");
    const std::string autoPad = n.attrString("auto_pad", "NOTSET");
    const bool ceilMode = n.attrInt("ceil_mode", 0) != 0;
    Pool2d p;
    p.n = x.dims()[0];
    p.c = x.dims()[1];
    p.h = x.dims()[2];
    p.w = x.dims()[3];
    p.kh = kernel[0];
    p.kw = kernel[1];
    p.sh = strides[0];
    p.sw = strides[1];
    p.dh = dil[0];
    p.dw = dil[1];
    p.max = max;
    p.countIncludePad = n.attrInt("count_include_pad", 0) != 0;
    WH_RETURN_IF_ERROR(poolAxis(ctx, autoPad, ceilMode, p.h, p.kh, p.sh, p.dh, pads[0], pads[2], p.oh, p.ph));
    WH_RETURN_IF_ERROR(poolAxis(ctx, autoPad, ceilMode, p.w, p.kw, p.sw, p.dw, pads[1], pads[3], p.ow, p.pw));
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), {p.n, p.c, p.oh, p.ow}));
    WH_CUDA(ctx.describe(), launchPool2d(type, dptr(x), dptr(*y), p, cudaContext(ctx).stream()));
    return Status::ok();
  });
}

/// The geometry of Quantize/DequantizeLinear's scale over x: per tensor, per axis or per block.
Expected<QuantGeometry> quantGeometry(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& scale) {
  QuantGeometry g;
  const int64_t blockSize = ctx.node().attrInt("block_size", 0);
  if (scale.numel() == 1 && blockSize == 0) {
    g.inner = x.numel();
    return g;
  }
  auto axis = axisIn(ctx.node().attrInt("axis", 1), x.rank());
  if (!axis) return ctx.error("axis out of range");
  const RowGeometry outer = rowsFrom(x.dims(), *axis);
  g.outer = outer.rows;
  g.axisDim = x.dims()[static_cast<size_t>(*axis)];
  g.inner = g.axisDim == 0 ? 0 : outer.cols / g.axisDim;
  if (blockSize > 0) {
    g.blockSize = blockSize;
    if (scale.numel() != g.outer * ((g.axisDim + blockSize - 1) / blockSize) * g.inner) {
      return ctx.error("block-wise scale has the wrong number of elements");
    }
  } else if (scale.numel() != g.axisDim) {
    return ctx.error("per-axis scale must have one element per index of the axis");
  }
  return g;
}

Status runQuantize(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  const ir::Tensor& scale = ctx.input(1);
  ElemType xType{};
  WH_RETURN_IF_ERROR(checkFloat(ctx, x, xType));
  if (scale.dtype() != x.dtype()) return ctx.unsupported("a scale of another type than x is not supported by the cuda runtime");
  const DataType qType = ctx.hasInput(2) ? ctx.input(2).dtype() : static_cast<DataType>(ctx.node().attrInt("output_dtype", 2));
  WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "output", qType, {DataType::kUint8, DataType::kInt8}));
  ElemType q{};
  elemType(qType, q);
  WH_ASSIGN_OR_RETURN(QuantGeometry g, quantGeometry(ctx, x, scale));
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, qType, x.dims()));
  WH_CUDA(ctx.describe(), launchQuantize(xType, dptr(x), dptr(scale), q, ctx.hasInput(2) ? dptr(ctx.input(2)) : nullptr,
                                         dptr(*y), g, cudaContext(ctx).stream()));
  return Status::ok();
}

Status runDequantize(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  const ir::Tensor& scale = ctx.input(1);
  WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "input", x.dtype(), {DataType::kUint8, DataType::kInt8, DataType::kInt32}));
  ElemType q{}, yType{};
  elemType(x.dtype(), q);
  WH_RETURN_IF_ERROR(checkFloat(ctx, scale, yType));
  if (ctx.hasInput(2) && ctx.input(2).dtype() != x.dtype()) return ctx.error("zero point and input differ in type");
  WH_ASSIGN_OR_RETURN(QuantGeometry g, quantGeometry(ctx, x, scale));
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, scale.dtype(), x.dims()));
  WH_CUDA(ctx.describe(), launchDequantize(q, dptr(x), dptr(scale), yType, ctx.hasInput(2) ? dptr(ctx.input(2)) : nullptr,
                                           dptr(*y), g, cudaContext(ctx).stream()));
  return Status::ok();
}

template <Status (*Fn)(KernelContext&)>
Expected<std::unique_ptr<Kernel>> plain(const KernelCreateInfo&) {
  return makeFunctionKernel(Fn);
}

}  // namespace

void registerNnKernels(KernelRegistry& r) {
  r.add("", "Softmax", 1, makeSoftmax);
  r.add("", "LogSoftmax", 1, makeSoftmax);
  r.add("", "LayerNormalization", 17, makeLayerNorm);
  r.add("", "RMSNormalization", 23, makeLayerNorm);
  r.add("", "MaxPool", 1, makePool);
  r.add("", "AveragePool", 1, makePool);
  r.add("", "GlobalAveragePool", 1, plain<runGlobalPool>);
  r.add("", "GlobalMaxPool", 1, plain<runGlobalPool>);
  r.add("", "QuantizeLinear", 10, plain<runQuantize>);
  r.add("", "DequantizeLinear", 10, plain<runDequantize>);
}

}  // namespace whittle::runtime::cuda
