// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear, and the registration of the whole
// quantized family (the other ops live in quant_conv.cpp, quant_matmul.cpp, quant_contrib.cpp).
//
//   QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point)
//   DequantizeLinear: y = (x - zero_point) * scale
// per tensor (one scale), per axis (a 1-D scale along `axis`) or blocked (opset 21: a scale of
// x's rank whose `axis` dim is ceil(x.dims[axis] / block_size)). The arithmetic is MLAS's: a
// true division for quantize, float(int32(x) - zp) * scale for dequantize.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "cpu/families.h"
#include "cpu/float8.h"
#include "cpu/kernel_util.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu {

namespace quant {
namespace {

using ir::DataType;

constexpr int64_t kParallelMin = 65536;

// ---- scalar-parameter row loops (the hot paths) and per-element ones (blocked) ----

template <typename Y>
WH_QUANT_SIMD void quantizeRow(const float* x, Y* y, int64_t n, float scale, int32_t zp, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<Y>(clampRoundAddZp(x[i] / scale, lo, hi, zp));
}

template <typename Y>
void quantizeRowPerElement(const float* x, Y* y, int64_t n, const float* scale, const int32_t* zp, IntRange r) {
  for (int64_t i = 0; i < n; ++i) {
    int32_t z = zp != nullptr ? zp[i] : 0;
    y[i] = static_cast<Y>(
        clampRoundAddZp(x[i] / scale[i], static_cast<float>(r.lo - z), static_cast<float>(r.hi - z), z));
  }
}

template <typename X>
WH_QUANT_SIMD void dequantizeRow(const X* x, float* y, int64_t n, float scale, int32_t zp) {
  using Wide = std::conditional_t<sizeof(X) >= 4, int64_t, int32_t>;  // int32 x - zp must not overflow
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<Wide>(x[i]) - zp) * scale;
}

// How scale and zero point map onto x: per tensor, per axis or blocked along `axis`.
struct AxisLayout {
  enum class Mode { kTensor, kAxis, kBlocked } mode = Mode::kTensor;
  int64_t outer = 1;     // product of dims before the axis
  int64_t axisDim = 1;   // x.dims[axis]
  int64_t inner = 1;     // product of dims after the axis
  int64_t blockSize = 0;
  int64_t scaleAxisDim = 1;
};

Expected<AxisLayout> axisLayout(const KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& scale,
                                const ir::Tensor* zp, int64_t axisAttr, int64_t blockSize) {
  AxisLayout l;
  if (zp != nullptr && zp->numel() != scale.numel()) {
    return ctx.error("zero point has " + std::to_string(zp->numel()) + " values but scale has " +
                     std::to_string(scale.numel()));
  }
  if (scale.numel() == 1 && blockSize <= 0) {
    l.inner = x.numel();
    return l;
  }
  auto axis = normalizeAxis(axisAttr, x.rank());
  if (!axis || x.rank() == 0) return ctx.error("axis " + std::to_string(axisAttr) + " is out of range for rank " + std::to_string(x.rank()));
  for (int64_t d = 0; d < *axis; ++d) l.outer *= x.dims()[static_cast<size_t>(d)];
  l.axisDim = x.dims()[static_cast<size_t>(*axis)];
  for (int64_t d = *axis + 1; d < x.rank(); ++d) l.inner *= x.dims()[static_cast<size_t>(d)];
  if (blockSize > 0) {
    l.mode = AxisLayout::Mode::kBlocked;
    l.blockSize = blockSize;
    l.scaleAxisDim = (l.axisDim + blockSize - 1) / blockSize;
    bool ok = scale.rank() == x.rank();
    for (int64_t d = 0; ok && d < x.rank(); ++d) {
      int64_t want = d == *axis ? l.scaleAxisDim : x.dims()[static_cast<size_t>(d)];
      ok = scale.dims()[static_cast<size_t>(d)] == want;
    }
    if (!ok) {
      return ctx.error("blocked scale has shape " + shapeToString(scale.dims()) + ", expected x's shape " +
                       shapeToString(x.dims()) + " with dim " + std::to_string(*axis) + " = " +
                       std::to_string(l.scaleAxisDim));
    }
    return l;
  }
  if (scale.rank() != 1 || scale.numel() != l.axisDim) {
    return ctx.error("per-axis scale has shape " + shapeToString(scale.dims()) + ", expected [" +
                     std::to_string(l.axisDim) + "] (x dim " + std::to_string(*axis) + ")");
  }
  l.mode = AxisLayout::Mode::kAxis;
  l.scaleAxisDim = l.axisDim;
  return l;
}

// Calls fn(rowOffset, count, scaleIndex) for each run of elements sharing one scale, or, for
// blocked layouts, fn(rowOffset, count, -1 - firstScaleIndex) for runs of `inner` elements
// whose scales are contiguous.
template <typename F>
void forEachRun(const AxisLayout& l, F&& fn) {
  if (l.mode == AxisLayout::Mode::kTensor) {
    const int64_t n = l.inner;
    const int64_t chunks = n > kParallelMin ? std::min<int64_t>(omp_get_max_threads() * 4, n / 16384) : 1;
#pragma omp parallel for if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
      fn(begin, end - begin, int64_t{0});
    }
    return;
  }
  const int64_t rows = l.outer * l.axisDim;
#pragma omp parallel for if (rows * l.inner > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r / l.axisDim, a = r % l.axisDim;
    if (l.mode == AxisLayout::Mode::kAxis) {
      fn(r * l.inner, l.inner, a);
    } else {
      fn(r * l.inner, l.inner, -1 - (o * l.scaleAxisDim + a / l.blockSize) * l.inner);
    }
  }
}

// x as float32 (float16, bfloat16 and int32 inputs are widened).
Expected<ir::Tensor> floatInput(const KernelContext& ctx, const ir::Tensor& x) {
  switch (x.dtype()) {
    case DataType::kFloat: return x;
    case DataType::kFloat16:
    case DataType::kBFloat16: return toFloat32(x);
    case DataType::kInt32: {
      ir::Tensor out(DataType::kFloat, x.dims());
      float* dst = out.mutableData<float>();
      for (int64_t i = 0; i < x.numel(); ++i) dst[i] = static_cast<float>(x.data<int32_t>()[i]);
      return out;
    }
    default: return ctx.unsupported("input x of dtype " + typeName(x.dtype()) + " is not supported");
  }
}

// ---- QuantizeLinear ----

class QuantizeLinearKernel final : public Kernel {
 public:
  explicit QuantizeLinearKernel(const KernelCreateInfo& info)
      : axis_(info.node.attrInt("axis", 1)),
        blockSize_(info.node.attrInt("block_size", 0)),
        outputDtypeAttr_(info.node.attrInt("output_dtype", 0)),
        saturate_(info.node.attrInt("saturate", 1) != 0),
        channelsLast_(info.channelsLastInt8(info.node.output(0))) {}

  static Expected<std::unique_ptr<Kernel>> create(const KernelCreateInfo& info) {
    auto kernel = std::make_unique<QuantizeLinearKernel>(info);
    DataType out = info.inputTypes.size() > 2 && info.inputTypes[2] != DataType::kUndefined
                       ? info.inputTypes[2]
                       : kernel->outputDtypeAttr_ != 0 ? static_cast<DataType>(kernel->outputDtypeAttr_) : DataType::kUint8;
    if (info.node.input(2) == nullptr || info.inputTypes[2] != DataType::kUndefined) {
      WH_RETURN_IF_ERROR(checkOutputType(info.node, out));
    }
    return std::unique_ptr<Kernel>(std::move(kernel));
  }

  Status run(KernelContext& ctx) override {
    const ir::Tensor& xIn = ctx.input(0);
    const ir::Tensor& scaleT = ctx.input(1);
    const ir::Tensor* zpT = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
    DataType outType = zpT != nullptr ? zpT->dtype()
                       : outputDtypeAttr_ != 0 ? static_cast<DataType>(outputDtypeAttr_) : DataType::kUint8;
    WH_RETURN_IF_ERROR(checkOutputType(ctx.node(), outType));
    WH_ASSIGN_OR_RETURN(ir::Tensor x, floatInput(ctx, xIn));
    WH_ASSIGN_OR_RETURN(AxisLayout layout, axisLayout(ctx, x, scaleT, zpT, axis_, blockSize_));
    WH_ASSIGN_OR_RETURN(std::vector<float> scales, readScales(scaleT, ctx.node(), "y_scale"));
    std::vector<int32_t> zps;
    if (zpT != nullptr) { WH_ASSIGN_OR_RETURN(zps, readZeroPoints(*zpT, ctx.node(), "y_zero_point")); }
    ir::Tensor& y = ctx.allocateOutput(0, outType, x.dims());
    if (isNarrow(outType)) return quantizeNarrow(x, layout, scales, zps, y);
    const IntRange range = *intRange(outType);
    const float* xd = x.data<float>();
    auto runAll = [&](auto* yd) {
      using Y = std::remove_pointer_t<decltype(yd)>;
      if (channelsLast_) return quantizeChannelsLast(ctx, x, yd, scales[0], zps.empty() ? 0 : zps[0], range);
      forEachRun(layout, [&](int64_t offset, int64_t count, int64_t s) {
        if (s >= 0) {
          const int32_t z = zps.empty() ? 0 : zps[static_cast<size_t>(s)];
          quantizeRow<Y>(xd + offset, yd + offset, count, scales[static_cast<size_t>(s)], z,
                         static_cast<float>(range.lo - z), static_cast<float>(range.hi - z));
        } else {
          const auto first = static_cast<size_t>(-1 - s);
          quantizeRowPerElement<Y>(xd + offset, yd + offset, count, scales.data() + first,
                                   zps.empty() ? nullptr : zps.data() + first, range);
        }
      });
      return Status::ok();
    };
    switch (outType) {
      case DataType::kUint8: return runAll(y.mutableData<uint8_t>());
      case DataType::kInt8: return runAll(y.mutableData<int8_t>());
      case DataType::kUint16: return runAll(y.mutableData<uint16_t>());
      default: return runAll(y.mutableData<int16_t>());
    }
  }

 private:
  static bool isNarrow(DataType t) { return t == DataType::kInt4 || t == DataType::kUint4 || float8::isFloat8(t); }

  static Status checkOutputType(const ir::Node& node, DataType t) {
    switch (t) {
      case DataType::kUint8:
      case DataType::kInt8:
      case DataType::kUint16:
      case DataType::kInt16: return Status::ok();
      default:
        if (isNarrow(t)) return Status::ok();
        return unimplemented(node.describe() + ": output dtype " + typeName(t) +
                             " is not supported (uint8, int8, uint16, int16, uint4, int4 and the float8 types are)");
    }
  }

  // int4/uint4 (packed two to a byte, the first in the low nibble) and float8 outputs, one
  // element at a time: x / scale in float as for the 8-bit types, then saturate(round half to
  // even + zp) for int4, or float8's own round to nearest even (and the `saturate` rule) of
  // x / scale + zp. Not a hot path: such tensors are weights, quantized offline.
  Status quantizeNarrow(const ir::Tensor& x, const AxisLayout& layout, const std::vector<float>& scales,
                        const std::vector<int32_t>& zps, ir::Tensor& y) const {
    const DataType outType = y.dtype();
    const float* xd = x.data<float>();
    auto* yd = reinterpret_cast<uint8_t*>(y.mutableRawData());
    const bool isFloat8 = float8::isFloat8(outType);
    const float8::Format format = isFloat8 ? float8::formatOf(outType) : float8::Format{};
    const IntRange range = isFloat8 ? IntRange{0, 0} : *intRange(outType);
    if (!isFloat8) std::fill(yd, yd + y.byteSize(), uint8_t{0});
    // Serial, not forEachRun: two runs of packed nibbles may meet inside one byte.
    auto one = [&](int64_t i, size_t s) {
      const float v = xd[i] / scales[s];
      const int32_t z = zps.empty() ? 0 : zps[s];
      if (isFloat8) {
        yd[i] = float8::fromDouble(static_cast<double>(v) + z, format, saturate_);
        return;
      }
      const int32_t q = clampRoundAddZp(v, static_cast<float>(range.lo - z), static_cast<float>(range.hi - z), z);
      const auto nibble = static_cast<uint8_t>(q & 0xf);
      yd[i / 2] = static_cast<uint8_t>(yd[i / 2] | (i % 2 == 0 ? nibble : nibble << 4));
    };
    const int64_t rows = layout.mode == AxisLayout::Mode::kTensor ? 1 : layout.outer * layout.axisDim;
    for (int64_t r = 0; r < rows; ++r) {
      if (layout.mode == AxisLayout::Mode::kTensor) {
        for (int64_t i = 0; i < layout.inner; ++i) one(i, 0);
        continue;
      }
      const int64_t o = r / layout.axisDim, a = r % layout.axisDim;
      for (int64_t j = 0; j < layout.inner; ++j) {
        const int64_t s = layout.mode == AxisLayout::Mode::kAxis
                              ? a
                              : (o * layout.scaleAxisDim + a / layout.blockSize) * layout.inner + j;
        one(r * layout.inner + j, static_cast<size_t>(s));
      }
    }
    return Status::ok();
  }

  // y is NHWC while its dims stay NCHW (the channels-last plan): quantize a tile of each channel
  // plane, then interleave the tile's channels: the 1 to 4 channels of images by a vectorised
  // interleave, more (densenet's BatchNorm-Relu-Quantize before every conv: 64 to 1024) in blocks
  // of kBlock channels x kTile pixels transposed 16x16 bytes at a time (SSE2), each pixel's row of
  // the block written whole (a byte at a time with stride C before: densenet121's 63 quantizes
  // took 4.75 ms CPU a run, 3.05 ms after, against ORT's 1.7 ms of Quantize and 2.5 of Transposes).
  template <typename Y>
  static Status quantizeChannelsLast(const KernelContext& ctx, const ir::Tensor& x, Y* y, float scale, int32_t zp, IntRange range) {
    if constexpr (sizeof(Y) != 1) {
      return internalError(ctx.describe() + ": the channels-last plan is for 8-bit outputs only");
    }
    if (x.rank() != 4) return ctx.error("a channels-last output needs a 4-D input, got " + shapeToString(x.dims()));
    const int64_t n = x.dims()[0], c = x.dims()[1], hw = x.dims()[2] * x.dims()[3];
    const float lo = static_cast<float>(range.lo - zp), hi = static_cast<float>(range.hi - zp);
    const float* xd = x.data<float>();
    auto* yb = reinterpret_cast<uint8_t*>(y);
    if (c > 4) {
      constexpr int64_t kTile = 256, kBlock = 64;
#pragma omp parallel for collapse(2) if (x.numel() > kParallelMin)
      for (int64_t b = 0; b < n; ++b) {
        for (int64_t p0 = 0; p0 < hw; p0 += kTile) {
          alignas(64) Y planes[kTile * kBlock];
          const int64_t len = std::min(kTile, hw - p0);
          for (int64_t c0 = 0; c0 < c; c0 += kBlock) {
            const int64_t cs = std::min(kBlock, c - c0);
            for (int64_t k = 0; k < cs; ++k) {
              quantizeRow<Y>(xd + (b * c + c0 + k) * hw + p0, planes + k * kTile, len, scale, zp, lo, hi);
            }
            transposeBytes(reinterpret_cast<const uint8_t*>(planes), kTile, yb + (b * hw + p0) * c + c0, c, cs, len);
          }
        }
      }
      return Status::ok();
    }
    constexpr int64_t kTile = 1024;
#pragma omp parallel for collapse(2) if (x.numel() > kParallelMin)
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t p0 = 0; p0 < hw; p0 += kTile) {
        alignas(64) Y planes[kTile * 4];
        const int64_t len = std::min(kTile, hw - p0);
        for (int64_t k = 0; k < c; ++k) quantizeRow<Y>(xd + (b * c + k) * hw + p0, planes + k * kTile, len, scale, zp, lo, hi);
        const auto* pl = reinterpret_cast<const uint8_t*>(planes);
        uint8_t* out = yb + (b * hw + p0) * c;
        switch (c) {
          case 1: std::copy_n(pl, len, out); break;
          case 2: interleave<2>(pl, kTile, out, len); break;
          case 3: interleave<3>(pl, kTile, out, len); break;
          default: interleave<4>(pl, kTile, out, len); break;
        }
      }
    }
    return Status::ok();
  }

  // out[p * C + k] = planes[k * planeStride + p] for k < C, p < n.
  template <int C>
  WH_QUANT_SIMD static void interleave(const uint8_t* __restrict planes, int64_t planeStride, uint8_t* __restrict out, int64_t n) {
    for (int64_t p = 0; p < n; ++p) {
      for (int k = 0; k < C; ++k) out[p * C + k] = planes[k * planeStride + p];
    }
  }

  int64_t axis_;
  int64_t blockSize_;
  int64_t outputDtypeAttr_;
  bool saturate_;
  bool channelsLast_;
};

// ---- DequantizeLinear ----

class DequantizeLinearKernel final : public Kernel {
 public:
  explicit DequantizeLinearKernel(const KernelCreateInfo& info)
      : axis_(info.node.attrInt("axis", 1)),
        blockSize_(info.node.attrInt("block_size", 0)),
        outputDtypeAttr_(info.node.attrInt("output_dtype", 0)) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& scaleT = ctx.input(1);
    const ir::Tensor* zpT = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
    if (zpT != nullptr && zpT->dtype() != x.dtype()) {
      return ctx.error("x_zero_point is " + typeName(zpT->dtype()) + " but x is " + typeName(x.dtype()));
    }
    DataType outType = outputDtypeAttr_ != 0 ? static_cast<DataType>(outputDtypeAttr_) : scaleT.dtype();
    if (outType != DataType::kFloat && outType != DataType::kFloat16 && outType != DataType::kBFloat16) {
      return ctx.unsupported("output dtype " + typeName(outType) + " is not supported (float32, float16, bfloat16 are)");
    }
    WH_ASSIGN_OR_RETURN(AxisLayout layout, axisLayout(ctx, x, scaleT, zpT, axis_, blockSize_));
    WH_ASSIGN_OR_RETURN(std::vector<float> scales, readScales(scaleT, ctx.node(), "x_scale"));
    std::vector<int32_t> zps;
    if (zpT != nullptr) { WH_ASSIGN_OR_RETURN(zps, readZeroPoints(*zpT, ctx.node(), "x_zero_point")); }

    ir::Tensor yFloat;
    float* yd = nullptr;
    if (outType == DataType::kFloat) {
      yd = ctx.allocateOutput(0, DataType::kFloat, x.dims()).mutableData<float>();
    } else {
      yFloat = ir::Tensor(DataType::kFloat, x.dims());
      yd = yFloat.mutableData<float>();
    }
    Status status = Status::ok();
    auto runAll = [&](auto* xd) {
      using X = std::remove_const_t<std::remove_pointer_t<decltype(xd)>>;
      forEachRun(layout, [&](int64_t offset, int64_t count, int64_t s) {
        if (s >= 0) {
          dequantizeRow<X>(xd + offset, yd + offset, count, scales[static_cast<size_t>(s)],
                           zps.empty() ? 0 : zps[static_cast<size_t>(s)]);
        } else {
          const auto first = static_cast<size_t>(-1 - s);
          for (int64_t i = 0; i < count; ++i) {
            const int32_t z = zps.empty() ? 0 : zps[first + static_cast<size_t>(i)];
            yd[offset + i] = static_cast<float>(static_cast<int64_t>(xd[offset + i]) - z) * scales[first + static_cast<size_t>(i)];
          }
        }
      });
    };
    switch (x.dtype()) {
      case DataType::kUint8: runAll(x.data<uint8_t>()); break;
      case DataType::kInt8: runAll(x.data<int8_t>()); break;
      case DataType::kUint16: runAll(x.data<uint16_t>()); break;
      case DataType::kInt16: runAll(x.data<int16_t>()); break;
      case DataType::kInt32: runAll(x.data<int32_t>()); break;
      case DataType::kUint4:
      case DataType::kInt4: {
        std::vector<int8_t> unpacked(static_cast<size_t>(x.numel()));
        const auto* bytes = reinterpret_cast<const uint8_t*>(x.rawData());
        for (int64_t i = 0; i < x.numel(); ++i) {
          unpacked[static_cast<size_t>(i)] = static_cast<int8_t>(int4At(bytes, i, x.dtype() == DataType::kInt4));
        }
        runAll(static_cast<const int8_t*>(unpacked.data()));
        break;
      }
      default:
        if (!isFloat8(x.dtype())) return ctx.unsupported("input x of dtype " + typeName(x.dtype()) + " is not supported");
        status = dequantizeFloat8(x, layout, scales, zps, yd);
    }
    WH_RETURN_IF_ERROR(status);
    if (outType != DataType::kFloat) ctx.setOutput(0, fromFloat32(yFloat, outType));
    return Status::ok();
  }

 private:
  // y = (float(x) - zp) * scale for the float8 types.
  static Status dequantizeFloat8(const ir::Tensor& x, const AxisLayout& layout, const std::vector<float>& scales,
                                 const std::vector<int32_t>& zps, float* yd) {
    float table[256];
    for (int i = 0; i < 256; ++i) table[i] = float8ToFloat(static_cast<uint8_t>(i), x.dtype());
    const auto* xd = reinterpret_cast<const uint8_t*>(x.rawData());
    forEachRun(layout, [&](int64_t offset, int64_t count, int64_t s) {
      for (int64_t i = 0; i < count; ++i) {
        const size_t si = s >= 0 ? static_cast<size_t>(s) : static_cast<size_t>(-1 - s + i);
        const float z = zps.empty() ? 0.0f : static_cast<float>(zps[si]);
        yd[offset + i] = (table[xd[offset + i]] - z) * scales[si];
      }
    });
    return Status::ok();
  }

  int64_t axis_;
  int64_t blockSize_;
  int64_t outputDtypeAttr_;
};

// ---- DynamicQuantizeLinear ----

// y_scale = (max(x, 0) - min(x, 0)) / 255 (1 when that is 0), y_zero_point =
// round(clamp(-min / y_scale, 0, 255)), y = QuantizeLinear(x, y_scale, y_zero_point), as ONNX
// Runtime computes them.
Status dynamicQuantizeLinear(KernelContext& ctx) {
  const ir::Tensor& xIn = ctx.input(0);
  if (xIn.dtype() != DataType::kFloat) return ctx.unsupported("input x of dtype " + typeName(xIn.dtype()) + " is not supported (float32 is)");
  const float* x = xIn.data<float>();
  const int64_t n = xIn.numel();
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  const float initialZp = 0.0f - lo / scale;
  const auto zp = static_cast<int32_t>(roundHalfEvenSmall(std::clamp(initialZp, 0.0f, 255.0f)));
  uint8_t* y = ctx.allocateOutput(0, DataType::kUint8, xIn.dims()).mutableData<uint8_t>();
  quantizeRow<uint8_t>(x, y, n, scale, zp, static_cast<float>(0 - zp), static_cast<float>(255 - zp));
  if (ctx.hasOutput(1)) ctx.allocateOutput(1, DataType::kFloat, {}).mutableData<float>()[0] = scale;
  if (ctx.hasOutput(2)) ctx.allocateOutput(2, DataType::kUint8, {}).mutableData<uint8_t>()[0] = static_cast<uint8_t>(zp);
  return Status::ok();
}

}  // namespace
}  // namespace quant

void registerQuantKernels(KernelRegistry& registry) {
  registry.add("", "QuantizeLinear", 10, quant::QuantizeLinearKernel::create);
  registry.add("", "DequantizeLinear", 10, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<quant::DequantizeLinearKernel>(info));
  });
  registry.add("", "DynamicQuantizeLinear", 11, [](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> {
    return makeFunctionKernel(quant::dynamicQuantizeLinear);
  });
  quant::registerQuantConvKernels(registry);
  quant::registerQuantMatMulKernels(registry);
  quant::registerQuantContribKernels(registry);
  quant::registerQuantLookupKernels(registry);
  quant::registerQuantPReluKernels(registry);
}

}  // namespace whittle::runtime::cpu
