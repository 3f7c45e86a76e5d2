// MaxPool, AveragePool, LpPool, the global pools and MaxUnpool.
//
// float32 MaxPool (without Indices) and AveragePool run on oneDNN's pooling (with
// dilations), channels last on channelsLastPool2d; 2-D MaxPool of NCHW planes (int8/uint8 in QDQ
// models, float32 without dilation) runs maxPool2dPlanes, a separable max; ceil_mode becomes extra end padding, which oneDNN's max and exclude-padding
// average treat as ONNX does. The rest (Indices, LpPool, integer and float64 dtypes, average
// pooling that counts padding while ceil_mode windows overhang it) runs the scalar
// reference in pool_reference.cpp. Global pools are plain loops.
//
// The CPU lowering may give these ops channels-last inputs or outputs: it re-creates them in
// the com.whittle.internal domain with the ints channels_last_in / channels_last_out (the
// global pools write [N, 1, 1, C] for channels last: the same memory as [N, C, 1, 1]).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "cpu/dnnl_glue.h"
#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/pool_nhwc.h"
#include "cpu/pool_reference.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu {

void registerPoolNormKernels(KernelRegistry& registry);

namespace {

using dt = dnnl::memory::data_type;

struct PoolPlan {
  std::vector<int64_t> xDims;  ///< physical
  PoolGeometry geo;
  bool reference = false;
  bool channelsLast2d = false;  ///< runs channelsLastPool2d
  /// What channelsLastPool2d is given: geo, or for blocked X and Y ([N, C / 16, H, W, 16]) the
  /// same memory as N * C / 16 channels-last images of 16 channels.
  PoolGeometry nhwcGeo;
  bool planes2d = false;        ///< max or average pool of NCHW float32 planes: maxPool2dPlanes, averagePool2dPlanes
  PoolGeometry planesGeo;       ///< its 2-D geometry (a 1-D pool as planes of one row)
  dnnl::pooling_v2_forward pool;
  dnnl::memory src, dst, userDst;
  bool reorderDst = false;
  dnnl::reorder dstReorder;
  DnnlArgs args;
};

/// The column windows of a 2-D pool's rows: outputs [first, last) have their whole window inside
/// the row; clippedMax maxes an output's window clipped to the row (padding never wins).
struct RowWindows {
  int64_t iw, kw, sw, pl, first = 0, last;
  explicit RowWindows(const PoolGeometry& g)
      : iw(g.src[3]), kw(g.kernel[1]), sw(g.strides[1]), pl(g.padBegin[1]), last(g.dst[3]) {
    while (first < last && first * sw - pl < 0) ++first;
    while (last > first && (last - 1) * sw - pl + kw > iw) --last;
  }
  template <typename T>
  T clippedMax(const T* row, int64_t o) const {
    const int64_t c0 = std::max<int64_t>(o * sw - pl, 0), c1 = std::min<int64_t>(o * sw - pl + kw, iw);
    T m = row[c0];
    for (int64_t c = c0 + 1; c < c1; ++c) m = std::max(m, row[c]);
    return m;
  }
};

/// One plane of maxPool2dPlanes: the max over each row window first (the windows inside the row
/// column by column across all of them, which vectorises; the clipped ones at the ends one by
/// one, each in the same order as before), then over the rows of each column window. `rows` is
/// IH * OW scratch.
template <typename T>
inline void maxPoolPlane(const PoolGeometry& g, const T* xp, T* yp, T* rows) {
  const int64_t ih = g.src[2], iw = g.src[3], oh = g.dst[2], ow = g.dst[3];
  const int64_t kh = g.kernel[0], kw = g.kernel[1], sh = g.strides[0], sw = g.strides[1];
  const int64_t pt = g.padBegin[0], pl = g.padBegin[1];
  const RowWindows windows(g);
  const int64_t first = windows.first, last = windows.last;
  auto clipped = [&](const T* xr, T* out, int64_t o) { out[o] = windows.clippedMax(xr, o); };
  for (int64_t r = 0; r < ih; ++r) {
    const T* xr = xp + r * iw;
    T* out = rows + r * ow;
    for (int64_t o = 0; o < first; ++o) clipped(xr, out, o);
    T* inside = out + first;
    const T* start = xr + first * sw - pl;
    const int64_t len = last - first;
    for (int64_t j = 0; j < len; ++j) inside[j] = start[j * sw];
    for (int64_t kx = 1; kx < kw; ++kx) {
      if (sw == 1) {
        for (int64_t j = 0; j < len; ++j) inside[j] = std::max(inside[j], start[j + kx]);
      } else {
        for (int64_t j = 0; j < len; ++j) inside[j] = std::max(inside[j], start[j * sw + kx]);
      }
    }
    for (int64_t o = std::max(last, first); o < ow; ++o) clipped(xr, out, o);
  }
  for (int64_t o = 0; o < oh; ++o) {
    const int64_t r0 = std::max<int64_t>(o * sh - pt, 0), r1 = std::min<int64_t>(o * sh - pt + kh, ih);
    T* out = yp + o * ow;
    std::memcpy(out, rows + r0 * ow, static_cast<size_t>(ow) * sizeof(T));
    for (int64_t r = r0 + 1; r < r1; ++r) {
      const T* in = rows + r * ow;
      for (int64_t c = 0; c < ow; ++c) out[c] = std::max(out[c], in[c]);
    }
  }
}

/// maxPoolPlane for a column stride above 1 (densenet's and ResNet's 3x3/2 stem pools): its row pass
/// gathered kw strided elements an output, a scalar loop (densenet121's int8 stem pool: 0.40 ms of
/// CPU a run, 64 x 112 x 112 bytes). Here the rows of each output row's window are maxed first
/// (contiguous), then kw columns at stride 1 (contiguous), and only the last pick strides: one
/// strided element an output, over OH rows rather than IH. `scratch` is 2 * IW.
template <typename T>
inline void maxPoolPlaneColumnsFirst(const PoolGeometry& g, const T* xp, T* yp, T* scratch) {
  const RowWindows windows(g);
  const int64_t first = windows.first, last = windows.last, iw = windows.iw, kw = windows.kw;
  const int64_t ih = g.src[2], oh = g.dst[2], ow = g.dst[3], kh = g.kernel[0], sh = g.strides[0], pt = g.padBegin[0];
  T* col = scratch;       // the max over the window's rows, per input column
  T* run = scratch + iw;  // run[c] = max(col[c], ..., col[c + kw - 1])
  for (int64_t o = 0; o < oh; ++o) {
    const int64_t r0 = std::max<int64_t>(o * sh - pt, 0), r1 = std::min<int64_t>(o * sh - pt + kh, ih);
    std::memcpy(col, xp + r0 * iw, static_cast<size_t>(iw) * sizeof(T));
    for (int64_t r = r0 + 1; r < r1; ++r) {
      const T* in = xp + r * iw;
      for (int64_t c = 0; c < iw; ++c) col[c] = std::max(col[c], in[c]);
    }
    T* out = yp + o * ow;
    for (int64_t q = 0; q < first; ++q) out[q] = windows.clippedMax(col, q);
    for (int64_t q = std::max(last, first); q < ow; ++q) out[q] = windows.clippedMax(col, q);
    if (last <= first) continue;
    const int64_t runs = iw - kw + 1;
    std::memcpy(run, col, static_cast<size_t>(runs) * sizeof(T));
    for (int64_t k = 1; k < kw; ++k) {
      for (int64_t c = 0; c < runs; ++c) run[c] = std::max(run[c], col[c + k]);
    }
    const T* start = run + first * windows.sw - windows.pl;
    for (int64_t j = 0; j < last - first; ++j) out[first + j] = start[j * windows.sw];
  }
}

// The byte planes compiled for AVX-512, AVX2 and baseline (baseline x86-64 has no signed byte max).
WH_QUANT_SIMD void maxPoolPlaneU8(const PoolGeometry& g, const uint8_t* xp, uint8_t* yp, uint8_t* rows) {
  if (g.strides[1] > 1) return maxPoolPlaneColumnsFirst(g, xp, yp, rows);
  maxPoolPlane(g, xp, yp, rows);
}
WH_QUANT_SIMD void maxPoolPlaneS8(const PoolGeometry& g, const int8_t* xp, int8_t* yp, int8_t* rows) {
  if (g.strides[1] > 1) return maxPoolPlaneColumnsFirst(g, xp, yp, rows);
  maxPoolPlane(g, xp, yp, rows);
}

/// 2-D max pooling of NCHW planes without dilation (int8/uint8, and float32 where oneDNN's only
/// plain-layout pooling is its slow simple_nchw): the max over each row window first, then over
/// the rows of each column window. Windows are clipped to the input (padding never wins).
template <typename T>
void maxPool2dPlanes(const PoolGeometry& g, const T* x, T* y) {
  const int64_t planes = g.src[0] * g.src[1], ih = g.src[2], iw = g.src[3], oh = g.dst[2], ow = g.dst[3];
#pragma omp parallel
  {
    std::vector<T> rows(static_cast<size_t>(std::max(ih * ow, 2 * g.src[3])));  // either pass order's scratch
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const T* xp = x + p * ih * iw;
      T* yp = y + p * oh * ow;
      if constexpr (std::is_same_v<T, uint8_t>) maxPoolPlaneU8(g, xp, yp, rows.data());
      else if constexpr (std::is_same_v<T, int8_t>) maxPoolPlaneS8(g, xp, yp, rows.data());
      else maxPoolPlane(g, xp, yp, rows.data());
    }
  }
}

/// 2-D average pooling of float32 NCHW planes without dilation, separable as maxPool2dPlanes is:
/// each row window's sum first (the windows inside a row side by side, which vectorises), then the
/// sum over the rows of each column window, divided by the window's count (the cells inside the
/// input, or inside the padded input with count_include_pad). oneDNN's plain-layout pooling is a
/// scalar loop: 6.5 ms for a 3/3 pool over [1, 80, 16000] where this takes a tenth.
void averagePool2dPlanes(const PoolGeometry& g, bool includePad, const float* x, float* y) {
  const int64_t planes = g.src[0] * g.src[1], ih = g.src[2], iw = g.src[3], oh = g.dst[2], ow = g.dst[3];
  const int64_t kh = g.kernel[0], kw = g.kernel[1], sh = g.strides[0], sw = g.strides[1];
  const int64_t pt = g.padBegin[0], pl = g.padBegin[1];
  const RowWindows windows(g);
  const int64_t first = windows.first, last = windows.last;
  // Each output's divisor, a product of its row and column extents.
  std::vector<float> colCount(static_cast<size_t>(ow)), rowCount(static_cast<size_t>(oh));
  for (int64_t q = 0; q < ow; ++q) {
    const int64_t c = q * sw - pl;
    const int64_t lo = includePad ? std::max<int64_t>(c, -pl) : std::max<int64_t>(c, 0);
    const int64_t hi = includePad ? std::min<int64_t>(c + kw, iw + g.padEnd[1]) : std::min<int64_t>(c + kw, iw);
    colCount[static_cast<size_t>(q)] = static_cast<float>(hi - lo);
  }
  for (int64_t o = 0; o < oh; ++o) {
    const int64_t r = o * sh - pt;
    const int64_t lo = includePad ? std::max<int64_t>(r, -pt) : std::max<int64_t>(r, 0);
    const int64_t hi = includePad ? std::min<int64_t>(r + kh, ih + g.padEnd[0]) : std::min<int64_t>(r + kh, ih);
    rowCount[static_cast<size_t>(o)] = static_cast<float>(hi - lo);
  }
#pragma omp parallel
  {
    std::vector<float> rows(static_cast<size_t>(ih * ow));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* xp = x + p * ih * iw;
      float* yp = y + p * oh * ow;
      for (int64_t r = 0; r < ih; ++r) {
        const float* xr = xp + r * iw;
        float* out = rows.data() + r * ow;
        auto clipped = [&](int64_t q) {
          const int64_t c0 = std::max<int64_t>(q * sw - pl, 0), c1 = std::min<int64_t>(q * sw - pl + kw, iw);
          float sum = 0;
          for (int64_t c = c0; c < c1; ++c) sum += xr[c];
          out[q] = sum;
        };
        for (int64_t q = 0; q < first; ++q) clipped(q);
        const float* start = xr + first * sw - pl;
        const int64_t len = last - first;
        float* inside = out + first;
        for (int64_t j = 0; j < len; ++j) inside[j] = start[j * sw];
        for (int64_t kx = 1; kx < kw; ++kx) {
          for (int64_t j = 0; j < len; ++j) inside[j] += start[j * sw + kx];
        }
        for (int64_t q = std::max(last, first); q < ow; ++q) clipped(q);
      }
      for (int64_t o = 0; o < oh; ++o) {
        const int64_t r0 = std::max<int64_t>(o * sh - pt, 0), r1 = std::min<int64_t>(o * sh - pt + kh, ih);
        float* out = yp + o * ow;
        std::fill(out, out + ow, 0.0f);
        for (int64_t r = r0; r < r1; ++r) {
          const float* in = rows.data() + r * ow;
          for (int64_t q = 0; q < ow; ++q) out[q] += in[q];
        }
        const float rc = rowCount[static_cast<size_t>(o)];
        for (int64_t q = 0; q < ow; ++q) out[q] /= rc * colCount[static_cast<size_t>(q)];
      }
    }
  }
}

/// Output pixel (o, q)'s window of a 2-D pool clipped to the input: rows [r0, r1), columns [c0, c1).
struct ClippedWindow {
  int64_t r0, r1, c0, c1;
};
inline ClippedWindow clippedWindow(const PoolGeometry& g, int64_t o, int64_t q) {
  const int64_t r = o * g.strides[0] - g.padBegin[0], c = q * g.strides[1] - g.padBegin[1];
  return {std::max<int64_t>(r, 0), std::min<int64_t>(r + g.kernel[0], g.src[2]), std::max<int64_t>(c, 0),
          std::min<int64_t>(c + g.kernel[1], g.src[3])};
}

/// One output row `o` of image `b` of maxPool2dBytesNhwc: each output pixel is the max of the
/// window's pixels, C bytes at a time.
template <typename T>
void maxPoolRowBytesNhwc(const PoolGeometry& g, const T* x, T* y, int64_t b, int64_t o) {
  const int64_t c = g.src[1], ih = g.src[2], iw = g.src[3], oh = g.dst[2], ow = g.dst[3];
  for (int64_t q = 0; q < ow; ++q) {
    const auto [r0, r1, c0, c1] = clippedWindow(g, o, q);
    T* out = y + ((b * oh + o) * ow + q) * c;
    std::memcpy(out, x + ((b * ih + r0) * iw + c0) * c, static_cast<size_t>(c) * sizeof(T));
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t s = r == r0 ? c0 + 1 : c0; s < c1; ++s) {
        const T* in = x + ((b * ih + r) * iw + s) * c;
        for (int64_t k = 0; k < c; ++k) out[k] = std::max(out[k], in[k]);
      }
    }
  }
}

#if defined(__x86_64__)
bool hasAvx512Bytes() {
  static const bool yes = __builtin_cpu_supports("avx512bw") != 0;
  return yes;
}

// maxPoolRowBytesNhwc with AVX-512BW: 64 bytes of a pixel at a time, the last block masked (a
// 24-channel ShuffleNet stem took one 16-byte vector and eight scalar steps per tap before;
// baseline x86-64 has no signed byte max, so int8 ran scalar).
template <bool kSigned>
__attribute__((target("avx512f,avx512bw"))) void maxPoolRowBytesAvx512(const PoolGeometry& g, const uint8_t* x, uint8_t* y,
                                                                       int64_t b, int64_t o) {
  const int64_t c = g.src[1], ih = g.src[2], iw = g.src[3], oh = g.dst[2], ow = g.dst[3];
  for (int64_t q = 0; q < ow; ++q) {
    const auto [r0, r1, c0, c1] = clippedWindow(g, o, q);
    uint8_t* out = y + ((b * oh + o) * ow + q) * c;
    for (int64_t k = 0; k < c; k += 64) {
      const __mmask64 m = c - k >= 64 ? ~__mmask64{0} : (__mmask64{1} << (c - k)) - 1;
      __m512i acc = _mm512_maskz_loadu_epi8(m, x + ((b * ih + r0) * iw + c0) * c + k);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t s = c0; s < c1; ++s) {
          const __m512i v = _mm512_maskz_loadu_epi8(m, x + ((b * ih + r) * iw + s) * c + k);
          acc = kSigned ? _mm512_max_epi8(acc, v) : _mm512_max_epu8(acc, v);
        }
      }
      _mm512_mask_storeu_epi8(out + k, m, acc);
    }
  }
}
#endif

/// maxPool2dPlanes over NHWC bytes (dims in `g` are NCHW), one output row at a time.
template <typename T>
void maxPool2dBytesNhwc(const PoolGeometry& g, const T* x, T* y) {
  const int64_t n = g.src[0], oh = g.dst[2];
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t o = 0; o < oh; ++o) {
#if defined(__x86_64__)
      if (hasAvx512Bytes()) {
        maxPoolRowBytesAvx512<std::is_same_v<T, int8_t>>(g, reinterpret_cast<const uint8_t*>(x), reinterpret_cast<uint8_t*>(y), b, o);
        continue;
      }
#endif
      maxPoolRowBytesNhwc(g, x, y, b, o);
    }
  }
}

class PoolKernel final : public Kernel {
 public:
  static Expected<std::unique_ptr<Kernel>> create(const KernelCreateInfo& info, PoolKind kind) {
    std::unique_ptr<PoolKernel> k(new PoolKernel(engineOf(info.context), kind));
    k->what_ = info.node.describe();
    k->opType_ = info.node.opType();
    WH_ASSIGN_OR_RETURN(k->attrs_, readPoolAttrs(info.node));
    // In a quantized chain the int8 kernels keep their activations NHWC (quant_common.h).
    k->bytesNhwc_ = kind == PoolKind::kMax && info.channelsLastInt8(info.node.input(0));
    k->inLayout_ = layoutAttr(info.node, "channels_last_in");
    k->outLayout_ = layoutAttr(info.node, "channels_last_out");
    if (kind == PoolKind::kLp && !(k->attrs_.p > 0)) return info.error("p must be positive");
    if (kind == PoolKind::kMax && info.node.output(1) != nullptr && k->inLayout_ != Layout::kChannelsFirst) {
      return info.error("Indices need a channels-first input");
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    ir::DataType type = x.dtype();
    bool wantIndices = kind_ == PoolKind::kMax && ctx.hasOutput(1);
    bool half = type == ir::DataType::kFloat16 || type == ir::DataType::kBFloat16;
    if ((type == ir::DataType::kFloat || half) && !wantIndices && kind_ != PoolKind::kLp) {
      // float16/bfloat16 take the float32 kernels on a widened copy (max is exact; average
      // rounds once, at the end, as the scalar path does).
      ir::Tensor xf = half ? toFloat32(x) : x;
      WH_ASSIGN_OR_RETURN(PoolPlan * plan, planFor(xf.dims()));
      if (plan->channelsLast2d || plan->planes2d || !plan->reference) {
        std::vector<int64_t> yDims = physicalDims(plan->geo.dst, outLayout_);
        std::optional<ir::Tensor> wide;
        if (half) wide.emplace(ir::DataType::kFloat, yDims);
        ir::Tensor& y = half ? *wide : ctx.allocateOutput(0, type, yDims);
        if (plan->planes2d && kind_ == PoolKind::kAverage) {
          averagePool2dPlanes(plan->planesGeo, attrs_.countIncludePad, xf.data<float>(), y.mutableData<float>());
        } else if (plan->planes2d) {
          maxPool2dPlanes<float>(plan->planesGeo, xf.data<float>(), y.mutableData<float>());
        } else if (plan->channelsLast2d) {
          channelsLastPool2d(plan->nhwcGeo, kind_ == PoolKind::kMax, attrs_.countIncludePad, xf.data<float>(),
                             y.mutableData<float>());
        } else {
          WH_RETURN_IF_ERROR(runDnnl(ctx, *plan, xf, y));
        }
        if (half) ctx.setOutput(0, fromFloat32(y, type));
        return Status::ok();
      }
      if (half) return runReference<float>(ctx, xf, type);
    }
    if ((type == ir::DataType::kUint8 || type == ir::DataType::kInt8) && kind_ == PoolKind::kMax && !wantIndices &&
        x.rank() == 4 && inLayout_ == Layout::kChannelsFirst && outLayout_ == Layout::kChannelsFirst) {
      WH_ASSIGN_OR_RETURN(PoolGeometry g, resolvePool(attrs_, x.dims(), what_));
      if (g.dilations[0] == 1 && g.dilations[1] == 1) {
        ir::Tensor& y = ctx.allocateOutput(0, type, g.dst);
        if (type == ir::DataType::kUint8) {
          (bytesNhwc_ ? maxPool2dBytesNhwc<uint8_t> : maxPool2dPlanes<uint8_t>)(g, x.data<uint8_t>(), y.mutableData<uint8_t>());
        } else {
          (bytesNhwc_ ? maxPool2dBytesNhwc<int8_t> : maxPool2dPlanes<int8_t>)(g, x.data<int8_t>(), y.mutableData<int8_t>());
        }
        return Status::ok();
      }
    }
    if (bytesNhwc_) return ctx.error("expects a 2-D int8/uint8 input in the channels-last plan");
    switch (type) {
      case ir::DataType::kFloat:
        return runReference<float>(ctx, x, x.dtype());
      case ir::DataType::kDouble:
        return runReference<double>(ctx, x, x.dtype());
      case ir::DataType::kFloat16:
      case ir::DataType::kBFloat16:
        return runReference<float>(ctx, toFloat32(x), type);
      case ir::DataType::kInt8:
        if (kind_ == PoolKind::kMax) return runReference<int8_t>(ctx, x, type);
        break;
      case ir::DataType::kUint8:
        if (kind_ == PoolKind::kMax) return runReference<uint8_t>(ctx, x, type);
        break;
      default:
        break;
    }
    return ctx.unsupported("dtype " + std::string(ir::dataTypeName(type)) + " is not supported");
  }

 private:
  PoolKernel(dnnl::engine& engine, PoolKind kind) : engine_(engine), kind_(kind) {}

  Expected<PoolPlan*> planFor(const std::vector<int64_t>& xDims) {
    for (auto& p : plans_) {
      if (p->xDims == xDims) return p.get();
    }
    auto plan = std::make_unique<PoolPlan>();
    plan->xDims = xDims;
    WH_ASSIGN_OR_RETURN(plan->geo, resolvePool(attrs_, logicalDims(xDims, inLayout_), what_));
    const PoolGeometry& g = plan->geo;
    bool overhang = g.padEndEffective != g.padEnd;
    bool empty = false;
    for (int64_t d : g.dst) empty = empty || d == 0;
    for (int64_t d : g.src) empty = empty || d == 0;
    plan->reference = empty || g.src.size() > 5 || (kind_ == PoolKind::kAverage && attrs_.countIncludePad && overhang);
    const bool blocks = inLayout_ == Layout::kBlocked16 && outLayout_ == Layout::kBlocked16;
    plan->channelsLast2d = !empty && g.src.size() == 4 &&
                           ((inLayout_ == Layout::kChannelsLast && outLayout_ == Layout::kChannelsLast) || blocks) &&
                           channelsLastPoolAvailable();
    plan->nhwcGeo = g;
    if (blocks) {  // oneDNN's nChw16c pooling took 1.40 ms where this takes 0.83 (32 x 900 x 120, 2x2/2)
      for (std::vector<int64_t>* d : {&plan->nhwcGeo.src, &plan->nhwcGeo.dst}) {
        (*d)[0] *= (*d)[1] / kChannelBlock;
        (*d)[1] = kChannelBlock;
      }
    }
    // oneDNN pools plain NCHW with a scalar loop (simple_nchw: 15 ns an output, 2 ms for one
    // 10x118x158 map in MTCNN's P-Net); the separable max is exact and vectorizes its row pass.
    // Average pools too, where every window touches the input (a window all padding has no count
    // to divide by without it); a 1-D pool (SincNet's, over 16,000-sample rows) is the same loop over
    // planes of one row: oneDNN's scalar loop took 12.6 ms for pyannote's first [1, 80, 15983] k3/s3
    // max pool.
    const bool undilated = std::all_of(g.dilations.begin(), g.dilations.end(), [](int64_t d) { return d == 1; });
    bool touches = true;
    for (size_t i = 0; i < g.kernel.size(); ++i) touches = touches && g.padBegin[i] < g.kernel[i] && g.padEndEffective[i] < g.kernel[i];
    plan->planes2d = !plan->reference && (kind_ == PoolKind::kMax || (kind_ == PoolKind::kAverage && touches)) &&
                     (g.src.size() == 4 || g.src.size() == 3) && inLayout_ == Layout::kChannelsFirst &&
                     outLayout_ == Layout::kChannelsFirst && undilated;
    plan->planesGeo = g;
    if (plan->planes2d && g.src.size() == 3) {
      PoolGeometry& rows = plan->planesGeo;
      rows.src.insert(rows.src.begin() + 2, 1);
      rows.dst.insert(rows.dst.begin() + 2, 1);
      for (std::vector<int64_t>* v : {&rows.kernel, &rows.strides, &rows.dilations}) v->insert(v->begin(), 1);
      for (std::vector<int64_t>* v : {&rows.padBegin, &rows.padEnd, &rows.padEndEffective}) v->insert(v->begin(), 0);
    }
    if (plan->channelsLast2d || plan->planes2d) plan->reference = true;  // no oneDNN primitive needed
    for (size_t i = 0; i < g.kernel.size() && !plan->reference; ++i) {
      // oneDNN wants every window to touch the input.
      int64_t extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
      plan->reference = g.padBegin[i] >= extent || g.padEndEffective[i] >= extent;
    }
    if (!plan->reference) {
      try {
        dnnl::algorithm alg = kind_ == PoolKind::kMax  ? dnnl::algorithm::pooling_max
                              : attrs_.countIncludePad ? dnnl::algorithm::pooling_avg_include_padding
                                                       : dnnl::algorithm::pooling_avg_exclude_padding;
        dnnl::memory::desc src = activationDesc(g.src, dt::f32, inLayout_);
        dnnl::memory::desc dst = activationDesc(g.dst, dt::f32, inLayout_);
        dnnl::memory::dims dil;
        for (int64_t d : g.dilations) dil.push_back(d - 1);
        dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src, dst, toDnnlDims(g.strides),
                                            toDnnlDims(g.kernel), dil, toDnnlDims(g.padBegin),
                                            toDnnlDims(g.padEndEffective));
        dnnl::pooling_v2_forward::primitive_desc pd(desc, engine_);
        plan->pool = dnnl::pooling_v2_forward(pd);
        plan->src = dnnl::memory(src, engine_, DNNL_MEMORY_NONE);
        plan->userDst = dnnl::memory(activationDesc(g.dst, dt::f32, outLayout_), engine_, DNNL_MEMORY_NONE);
        plan->reorderDst = plan->userDst.get_desc() != dst;
        plan->dst = plan->reorderDst ? dnnl::memory(dst, engine_) : plan->userDst;
        if (plan->reorderDst) plan->dstReorder = dnnl::reorder(plan->dst, plan->userDst);
        plan->args.set(DNNL_ARG_SRC, plan->src);
        plan->args.set(DNNL_ARG_DST, plan->dst);
        if (pd.workspace_desc().get_size() != 0) {
          plan->args.set(DNNL_ARG_WORKSPACE, dnnl::memory(pd.workspace_desc(), engine_));
        }
      } catch (const dnnl::error&) {
        plan->reference = true;
      }
    }
    if (plans_.size() >= 8) plans_.pop_back();
    plans_.insert(plans_.begin(), std::move(plan));
    return plans_.front().get();
  }

  /// Runs the oneDNN primitive of `plan` on float32 `x` into float32 `y` (physical dims).
  Status runDnnl(KernelContext& ctx, PoolPlan& plan, const ir::Tensor& x, ir::Tensor& y) {
    dnnl::stream& stream = streamOf(ctx.context());
    return dnnlCall(what_, [&] {
      plan.src.set_data_handle(const_cast<std::byte*>(x.rawData()));
      plan.userDst.set_data_handle(y.mutableRawData());
      plan.args.execute(plan.pool, stream);
      if (plan.reorderDst) plan.dstReorder.execute(stream, plan.dst, plan.userDst);
      stream.wait();
    });
  }

  /// Runs the scalar pool in T on `x` (already widened for float16/bfloat16); the output
  /// gets dtype `outType`.
  template <typename T>
  Status runReference(KernelContext& ctx, const ir::Tensor& x, ir::DataType outType) {
    std::vector<int64_t> logical = logicalDims(x.dims(), inLayout_);
    WH_ASSIGN_OR_RETURN(PoolGeometry g, resolvePool(attrs_, logical, what_));
    ir::Tensor xf = x;
    if (inLayout_ != Layout::kChannelsFirst) {
      xf = ir::Tensor(x.dtype(), logical);
      permuteLayout(x.rawData(), xf.mutableRawData(), logical, inLayout_, Layout::kChannelsFirst, sizeof(T));
    }
    ir::Tensor yf(x.dtype(), g.dst);
    int64_t* indices = nullptr;
    if (kind_ == PoolKind::kMax && ctx.hasOutput(1)) {
      indices = ctx.allocateOutput(1, ir::DataType::kInt64, g.dst).mutableData<int64_t>();
    }
    referencePool<T>(g, kind_, attrs_.countIncludePad, attrs_.p, attrs_.storageOrder, xf.data<T>(), yf.mutableData<T>(),
                     indices);
    if (outLayout_ != Layout::kChannelsFirst) {
      ir::Tensor permuted(x.dtype(), physicalDims(g.dst, outLayout_));
      permuteLayout(yf.rawData(), permuted.mutableRawData(), g.dst, Layout::kChannelsFirst, outLayout_, sizeof(T));
      yf = permuted;
    }
    ctx.setOutput(0, outType == x.dtype() ? yf : fromFloat32(yf, outType));
    return Status::ok();
  }

  dnnl::engine& engine_;
  PoolKind kind_;
  std::string what_;
  std::string opType_;
  PoolAttrs attrs_;
  Layout inLayout_ = Layout::kChannelsFirst;
  Layout outLayout_ = Layout::kChannelsFirst;
  bool bytesNhwc_ = false;  ///< X and Y: NCHW dims over NHWC bytes
  std::vector<std::unique_ptr<PoolPlan>> plans_;
};

/// Reduces every channel over the spatial dims: mean, max or Lp norm. The output is
/// [N, C, 1, ...] in ONNX order whatever the input layout.
template <typename T>
void globalPool(const T* x, T* y, int64_t n, int64_t c, int64_t spatial, Layout layout, PoolKind kind, double p) {
  if (layout == Layout::kChannelsFirst) {
    int64_t planes = n * c;
#pragma omp parallel for if (planes * spatial > 32768)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = x + plane * spatial;
      if (kind == PoolKind::kMax) {
        if constexpr (std::is_same_v<T, float>) {
          if (spatial > 0 && channelsLastPoolAvailable()) {
            y[plane] = channelsFirstPlaneMax(xp, spatial);
            continue;
          }
        }
        T best = spatial > 0 ? xp[0] : T(0);
        for (int64_t s = 1; s < spatial; ++s) best = xp[s] > best ? xp[s] : best;
        y[plane] = best;
      } else if (kind == PoolKind::kAverage) {
        // Eight double partial sums: one float sum over a 80 x 112 plane drifted by 1e-4
        // relative (ReduceMean in ONNX Runtime sums in blocks), and one chain waits on each add.
        double acc[8] = {};
        int64_t s = 0;
        for (; s + 8 <= spatial; s += 8) {
          for (int64_t l = 0; l < 8; ++l) acc[l] += static_cast<double>(xp[s + l]);
        }
        for (; s < spatial; ++s) acc[0] += static_cast<double>(xp[s]);
        const double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        y[plane] = spatial > 0 ? static_cast<T>(sum / static_cast<double>(spatial)) : T(0);
      } else {
        double acc = 0;
        for (int64_t s = 0; s < spatial; ++s) acc += std::pow(std::fabs(static_cast<double>(xp[s])), p);
        y[plane] = static_cast<T>(std::pow(acc, 1.0 / p));
      }
    }
    return;
  }
  // Channels last: stream through the rows, keeping one accumulator per channel.
  for (int64_t b = 0; b < n; ++b) {
    const T* xb = x + b * spatial * c;
    T* yb = y + b * c;
    if (kind == PoolKind::kLp) {
      for (int64_t ch = 0; ch < c; ++ch) {
        double acc = 0;
        for (int64_t s = 0; s < spatial; ++s) acc += std::pow(std::fabs(static_cast<double>(xb[s * c + ch])), p);
        yb[ch] = static_cast<T>(std::pow(acc, 1.0 / p));
      }
      continue;
    }
    if (spatial == 0) {
      std::fill(yb, yb + c, T(0));
      continue;
    }
    if (kind == PoolKind::kAverage) {  // per-channel sums in double, as above
      std::vector<double> acc(static_cast<size_t>(c), 0.0);
      if constexpr (std::is_same_v<T, float>) {
        if (channelsLastPoolAvailable()) {
          channelsLastSumRows(xb, acc.data(), spatial, c);
        } else {
          for (int64_t s = 0; s < spatial; ++s) {
            for (int64_t ch = 0; ch < c; ++ch) acc[static_cast<size_t>(ch)] += static_cast<double>(xb[s * c + ch]);
          }
        }
      } else {
        for (int64_t s = 0; s < spatial; ++s) {
          const T* row = xb + s * c;
          for (int64_t ch = 0; ch < c; ++ch) acc[static_cast<size_t>(ch)] += static_cast<double>(row[ch]);
        }
      }
      for (int64_t ch = 0; ch < c; ++ch) yb[ch] = static_cast<T>(acc[static_cast<size_t>(ch)] / static_cast<double>(spatial));
      continue;
    }
    std::copy(xb, xb + c, yb);
    for (int64_t s = 1; s < spatial; ++s) {
      const T* row = xb + s * c;
      for (int64_t ch = 0; ch < c; ++ch) yb[ch] = row[ch] > yb[ch] ? row[ch] : yb[ch];
    }
  }
}

Expected<std::unique_ptr<Kernel>> createGlobalPool(const KernelCreateInfo& info, PoolKind kind) {
  Layout layout = layoutAttr(info.node, "channels_last_in");
  // Channels last, the output [N, C, 1, ..., 1] is the same memory under the dims [N, 1, ..., 1, C].
  const bool channelsLastOut = layoutAttr(info.node, "channels_last_out") != Layout::kChannelsFirst;
  double p = static_cast<double>(info.node.attrInt("p", 2));
  if (const ir::Attribute* a = info.node.findAttribute("p"); a != nullptr && a->kind == ir::Attribute::Kind::kFloat) {
    p = a->f;
  }
  if (kind == PoolKind::kLp && !(p > 0)) return info.error("p must be positive");
  return makeFunctionKernel([layout, channelsLastOut, kind, p](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    if (x.rank() < 3) return ctx.error("input must have rank 3 or more, got " + shapeToString(x.dims()));
    std::vector<int64_t> logical = logicalDims(x.dims(), layout);
    int64_t n = logical[0], c = logical[1], spatial = 1;
    for (size_t i = 2; i < logical.size(); ++i) spatial *= logical[i];
    std::vector<int64_t> outDims(logical.size(), 1);
    outDims[0] = n;
    outDims[channelsLastOut ? outDims.size() - 1 : 1] = c;
    ir::DataType type = x.dtype();
    if (type == ir::DataType::kFloat) {
      ir::Tensor& y = ctx.allocateOutput(0, type, outDims);
      globalPool<float>(x.data<float>(), y.mutableData<float>(), n, c, spatial, layout, kind, p);
    } else if (type == ir::DataType::kDouble) {
      ir::Tensor& y = ctx.allocateOutput(0, type, outDims);
      globalPool<double>(x.data<double>(), y.mutableData<double>(), n, c, spatial, layout, kind, p);
    } else if (type == ir::DataType::kFloat16 || type == ir::DataType::kBFloat16) {
      ir::Tensor xf = toFloat32(x);
      ir::Tensor yf(ir::DataType::kFloat, outDims);
      globalPool<float>(xf.data<float>(), yf.mutableData<float>(), n, c, spatial, layout, kind, p);
      ctx.setOutput(0, fromFloat32(yf, type));
    } else {
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(type)) + " is not supported");
    }
    return Status::ok();
  });
}

/// MaxUnpool: scatters X into a zero tensor at the flat positions in I (as MaxPool's Indices
/// give them), then places that tensor at the start of output_shape when one is given.
Expected<std::unique_ptr<Kernel>> createMaxUnpool(const KernelCreateInfo& info) {
  std::vector<int64_t> kernel = info.node.attrInts("kernel_shape");
  if (kernel.empty()) return info.error("kernel_shape is required");
  std::vector<int64_t> strides = info.node.attrInts("strides"), pads = info.node.attrInts("pads");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& indices = ctx.input(1);
    size_t n = kernel.size();
    if (x.rank() != static_cast<int64_t>(n) + 2) return ctx.error("X must have rank " + std::to_string(n + 2));
    if (indices.dims() != x.dims() || indices.dtype() != ir::DataType::kInt64) {
      return ctx.error("I must be int64 with the shape of X");
    }
    // Indices address the shape the pooling came from; output_shape, when given, only
    // pads (or cuts) that shape at the end of each dim, as the ONNX reference does.
    std::vector<int64_t> inferred = {x.dims()[0], x.dims()[1]};
    for (size_t i = 0; i < n; ++i) {
      int64_t s = strides.empty() ? 1 : strides[i];
      int64_t p = pads.empty() ? 0 : pads[i] + pads[n + i];
      inferred.push_back((x.dims()[i + 2] - 1) * s + kernel[i] - p);
    }
    std::vector<int64_t> outDims = inferred;
    if (ctx.hasInput(2)) {
      WH_ASSIGN_OR_RETURN(outDims, readInts(ctx.input(2), "output_shape"));
      if (outDims.size() != n + 2) return ctx.error("output_shape must have " + std::to_string(n + 2) + " values");
    }
    size_t es = ir::elementSize(x.dtype());
    if (es == 0) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), outDims);
    std::memset(y.mutableRawData(), 0, static_cast<size_t>(y.numel()) * es);
    int64_t inferredTotal = 1;
    for (int64_t d : inferred) inferredTotal *= d;
    const int64_t* idx = indices.data<int64_t>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (idx[i] < 0 || idx[i] >= inferredTotal) {
        return ctx.error("index " + std::to_string(idx[i]) + " is out of range");
      }
      // Flat index in `inferred` -> flat index in `outDims`; dropped when outside.
      int64_t rest = idx[i], flat = 0, stride = 1;
      bool inside = true;
      for (size_t d = inferred.size(); d-- > 0;) {
        int64_t coord = rest % inferred[d];
        rest /= inferred[d];
        inside = inside && coord < outDims[d];
        flat += coord * stride;
        stride *= outDims[d];
      }
      if (!inside) continue;
      std::memcpy(y.mutableRawData() + flat * static_cast<int64_t>(es), x.rawData() + i * static_cast<int64_t>(es), es);
    }
    return Status::ok();
  });
}

}  // namespace

void registerPoolKernels(KernelRegistry& registry) {
  auto pool = [](PoolKind kind) {
    return [kind](const KernelCreateInfo& info) { return PoolKernel::create(info, kind); };
  };
  auto global = [](PoolKind kind) {
    return [kind](const KernelCreateInfo& info) { return createGlobalPool(info, kind); };
  };
  for (const char* domain : {"", kInternalDomain}) {
    registry.add(domain, "MaxPool", 1, pool(PoolKind::kMax));
    registry.add(domain, "AveragePool", 1, pool(PoolKind::kAverage));
    registry.add(domain, "GlobalAveragePool", 1, global(PoolKind::kAverage));
    registry.add(domain, "GlobalMaxPool", 1, global(PoolKind::kMax));
  }
  registry.add("", "LpPool", 1, pool(PoolKind::kLp));
  registry.add("", "GlobalLpPool", 1, global(PoolKind::kLp));
  registry.add("", "MaxUnpool", 9, createMaxUnpool);
  registerPoolNormKernels(registry);
}

}  // namespace whittle::runtime::cpu
