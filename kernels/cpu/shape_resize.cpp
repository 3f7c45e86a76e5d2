// Resize (opsets 10, 11, 13, 18, 19) and Upsample (opsets 7, 9).
//
// Every resized axis gets a plan once per shape: for each output index, the source indices
// and weights of its taps (1 for nearest, 2 for linear, 4 for cubic, more for antialiased
// downsampling) and whether it lies outside the crop (tf_crop_and_resize). Interpolation is
// separable, so:
//   - nearest is one gather over all axes that moves elements by byte size (every dtype),
//     copying an output row when it repeats the previous one;
//   - linear on the last two axes (bilinear on NCHW, the YOLO-style upsampler) has a fused
//     2-D kernel;
//   - everything else (cubic, antialias, 1-D, 3-D, ...) resizes one axis at a time in float32,
//     which is also the plain reference for the fused kernel.
// Coordinates follow the ONNX reference (onnx/reference/ops/op_resize.py), computed in double.
#include <omp.h>

#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "cpu/shape_internal.h"

namespace whittle::runtime::cpu {

namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize
};
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kSimple };
enum class AspectPolicy { kStretch, kNotLarger, kNotSmaller };

struct ResizeAttrs {
  bool upsample = false;  // the Upsample op
  int64_t opset = 0;
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kHalfPixel;
  NearestMode nearest = NearestMode::kRoundPreferFloor;
  double cubicA = -0.75;
  bool excludeOutside = false;
  double extrapolation = 0.0;
  bool antialias = false;
  std::vector<int64_t> axes;
  AspectPolicy policy = AspectPolicy::kStretch;
  std::vector<float> upsampleScales;  // Upsample-7 attribute
};

/// How one axis is resampled: `taps` (source index, weight) pairs per output index.
struct AxisPlan {
  bool identity = true;
  int64_t inDim = 0;
  int64_t outDim = 0;
  int taps = 1;
  std::vector<int64_t> index;    // outDim * taps, clamped to [0, inDim)
  std::vector<float> weight;     // outDim * taps
  std::vector<uint8_t> outside;  // outDim: 1 where the value is the extrapolation value
  bool anyOutside = false;
  int64_t repeat = 0;  // nearest: output i reads input i / repeat (0: no such factor)
};

/// Sets plan.repeat when a nearest plan repeats every source index `repeat` times in order
/// (integer upsampling with floor-like rounding, the common 2x case).
void detectRepeat(AxisPlan& p) {
  if (p.taps != 1 || p.anyOutside || p.inDim == 0 || p.outDim % p.inDim != 0) return;
  int64_t f = p.outDim / p.inDim;
  for (int64_t i = 0; i < p.outDim; ++i) {
    if (p.index[static_cast<size_t>(i)] != i / f) return;
  }
  p.repeat = f;
}

#if defined(__SSE2__)
/// d[2i] = d[2i+1] = s[i] for n 32-bit elements.
inline void repeat2x32(uint32_t* d, const uint32_t* s, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_loadu_ps(reinterpret_cast<const float*>(s + i));
    _mm_storeu_ps(reinterpret_cast<float*>(d + 2 * i), _mm_unpacklo_ps(v, v));
    _mm_storeu_ps(reinterpret_cast<float*>(d + 2 * i + 4), _mm_unpackhi_ps(v, v));
  }
  for (; i < n; ++i) d[2 * i] = d[2 * i + 1] = s[i];
}
#endif

double cubicKernel(double x, double a) {
  x = std::fabs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

/// The source coordinate of output index `x` along an axis (ONNX reference formulas).
double sourceCoordinate(const ResizeAttrs& at, double x, double scale, int64_t inDim, int64_t outDim, double roiStart,
                        double roiEnd) {
  double outWidth = scale * static_cast<double>(inDim);
  auto in = static_cast<double>(inDim);
  switch (at.coord) {
    case Coord::kAlignCorners:
      return outWidth == 1 ? 0.0 : x * (in - 1) / (outWidth - 1);
    case Coord::kAsymmetric:
      return x / scale;
    case Coord::kTfHalfPixelForNn:
      return (x + 0.5) / scale;
    case Coord::kTfCropAndResize: {
      double v =
          outWidth == 1 ? (roiEnd - roiStart) * (in - 1) / 2 : x * (roiEnd - roiStart) * (in - 1) / (outWidth - 1);
      return v + roiStart * (in - 1);
    }
    case Coord::kPytorchHalfPixel:
      return outWidth == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    case Coord::kHalfPixelSymmetric: {
      double adjustment = static_cast<double>(outDim) / outWidth;
      double offset = in / 2 * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case Coord::kHalfPixel:
      break;
  }
  return (x + 0.5) / scale - 0.5;
}

AxisPlan planAxis(const ResizeAttrs& at, int64_t inDim, int64_t outDim, double scale, double roiStart, double roiEnd) {
  AxisPlan p;
  p.identity = false;
  p.inDim = inDim;
  p.outDim = outDim;
  bool aa = at.antialias && scale < 1.0 && at.mode != Mode::kNearest;
  int start = 0;  // offset of the first tap from the base index
  if (at.mode == Mode::kNearest) {
    p.taps = 1;
  } else if (at.mode == Mode::kLinear) {
    start = aa ? static_cast<int>(std::floor(-1.0 / scale) + 1) : 0;
    p.taps = 2 - 2 * start;
  } else {
    start = aa ? static_cast<int>(std::floor(-2.0 / scale) + 1) : -1;
    p.taps = 2 - 2 * start;
  }
  auto taps = static_cast<size_t>(p.taps);
  p.index.resize(static_cast<size_t>(outDim) * taps);
  p.weight.resize(static_cast<size_t>(outDim) * taps);
  p.outside.assign(static_cast<size_t>(outDim), 0);
  std::vector<double> w(taps);
  for (int64_t o = 0; o < outDim; ++o) {
    double x = sourceCoordinate(at, static_cast<double>(o), scale, inDim, outDim, roiStart, roiEnd);
    if (at.coord == Coord::kTfCropAndResize && (x < 0 || x > static_cast<double>(inDim - 1))) {
      p.outside[static_cast<size_t>(o)] = 1;
      p.anyOutside = true;
    }
    size_t at0 = static_cast<size_t>(o) * taps;
    if (at.mode == Mode::kNearest) {
      int64_t i;
      double base = std::floor(x), ratio = x - base;
      switch (at.nearest) {
        case NearestMode::kRoundPreferFloor:
          i = static_cast<int64_t>(ratio <= 0.5 ? base : base + 1);
          break;
        case NearestMode::kRoundPreferCeil:
          i = static_cast<int64_t>(ratio < 0.5 ? base : base + 1);
          break;
        case NearestMode::kFloor:
          i = static_cast<int64_t>(base);
          break;
        case NearestMode::kCeil:
          i = static_cast<int64_t>(std::ceil(x));
          break;
        case NearestMode::kSimple:
        default:
          i = scale < 1.0 ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(x);
          break;
      }
      p.index[at0] = std::clamp<int64_t>(i, 0, inDim - 1);
      p.weight[at0] = 1.0f;
      continue;
    }
    // Base and ratio in (0, 1]: an exact integer x uses the pixel on its left with ratio 1.
    double base = std::floor(x);
    double ratio = x - base;
    if (ratio == 0) {
      base -= 1;
      ratio = 1;
    }
    double sum = 0;
    for (size_t t = 0; t < taps; ++t) {
      double d = static_cast<double>(start + static_cast<int>(t)) - ratio;  // tap offset from x
      double v;
      if (at.mode == Mode::kLinear) {
        v = aa ? std::clamp(1 - std::fabs(d * scale), 0.0, 1.0) : 1 - std::fabs(d);
      } else {
        v = cubicKernel(aa ? d * scale : d, at.cubicA);
      }
      w[t] = v;
      sum += v;
    }
    if (aa && sum != 0) {
      for (double& v : w) v /= sum;
    }
    if (at.excludeOutside) {
      double kept = 0;
      for (size_t t = 0; t < taps; ++t) {
        int64_t i = static_cast<int64_t>(base) + start + static_cast<int64_t>(t);
        if (i < 0 || i >= inDim) w[t] = 0;
        kept += w[t];
      }
      if (kept != 0) {
        for (double& v : w) v /= kept;
      }
    }
    for (size_t t = 0; t < taps; ++t) {
      int64_t i = static_cast<int64_t>(base) + start + static_cast<int64_t>(t);
      p.index[at0 + t] = std::clamp<int64_t>(i, 0, inDim - 1);
      p.weight[at0 + t] = static_cast<float>(w[t]);
    }
  }
  return p;
}

/// An explicit identity plan with `taps` taps (the first carries the weight).
AxisPlan identityPlan(int64_t dim, int taps) {
  AxisPlan p;
  p.identity = false;
  p.inDim = p.outDim = dim;
  p.taps = taps;
  p.index.assign(static_cast<size_t>(dim * taps), 0);
  p.weight.assign(static_cast<size_t>(dim * taps), 0.0f);
  p.outside.assign(static_cast<size_t>(dim), 0);
  for (int64_t o = 0; o < dim; ++o) {
    for (int t = 0; t < taps; ++t) p.index[static_cast<size_t>(o * taps + t)] = o;
    p.weight[static_cast<size_t>(o * taps)] = 1.0f;
  }
  return p;
}

template <typename Fn>
void parallelRanges(int64_t count, bool parallel, Fn&& fn) {
  if (!parallel || count < 2 || omp_get_max_threads() == 1) {
    fn(int64_t{0}, count);
    return;
  }
#pragma omp parallel
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t begin = count * t / nt, end = count * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

/// One output row of a nearest resize along the last axis: d[i] = s[index[i]], with a
/// vectorised path for 2x upsampling of 32-bit elements.
template <size_t kSize>
void nearestRow(std::byte* d, const std::byte* s, const AxisPlan& last, size_t es) {
  const int64_t* idx = last.index.data();
  if constexpr (kSize == 0) {
    for (int64_t i = 0; i < last.outDim; ++i) {
      std::memcpy(d + static_cast<size_t>(i) * es, s + static_cast<size_t>(idx[i]) * es, es);
    }
  } else {
    using E = typename ElementOf<kSize>::type;
    auto* de = reinterpret_cast<E*>(d);
    const auto* se = reinterpret_cast<const E*>(s);
#if defined(__SSE2__)
    if constexpr (kSize == 4) {
      if (last.repeat == 2) {
        repeat2x32(de, se, last.inDim);
        return;
      }
    }
#endif
    if (last.repeat > 0) {
      int64_t f = last.repeat;
      for (int64_t i = 0; i < last.inDim; ++i) {
        for (int64_t k = 0; k < f; ++k) de[i * f + k] = se[i];
      }
      return;
    }
    for (int64_t i = 0; i < last.outDim; ++i) de[i] = se[idx[i]];
  }
}

/// Nearest: out[i0, ..., in] = x[idx0[i0], ..., idxn[in]], by bytes.
void nearestGather(const ir::Tensor& x, std::byte* dst, const std::vector<int64_t>& outDims,
                   const std::vector<AxisPlan>& plans, const ScalarBytes& extrapolation) {
  size_t rank = outDims.size();
  size_t es = ir::elementSize(x.dtype());
  std::vector<int64_t> inStrides = contiguousStrides(x.dims());
  int64_t rowLen = outDims.back();
  int64_t rows = dimProduct(outDims) / std::max<int64_t>(rowLen, 1);
  if (rowLen == 0 || rows == 0) return;
  const AxisPlan& last = plans.back();
  const std::byte* src = x.rawData();
  auto rowBytes = static_cast<size_t>(rowLen) * es;
  // Per outer axis and output index: the source offset in elements, or -1 outside the crop.
  std::vector<std::vector<int64_t>> offsets(rank - 1);
  for (size_t k = 0; k + 1 < rank; ++k) {
    const AxisPlan& p = plans[k];
    offsets[k].resize(static_cast<size_t>(outDims[k]));
    for (int64_t o = 0; o < outDims[k]; ++o) {
      bool outside = !p.identity && p.anyOutside && p.outside[static_cast<size_t>(o)] != 0;
      int64_t i = p.identity ? o : p.index[static_cast<size_t>(o)];
      offsets[k][static_cast<size_t>(o)] = outside ? -1 : i * inStrides[k];
    }
  }
  parallelRanges(rows, rows * rowLen > kShapeParallelGrain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> index(rank - 1, 0);
    int64_t rem = begin;
    for (size_t k = rank - 1; k-- > 0;) {
      index[k] = rem % outDims[k];
      rem /= outDims[k];
    }
    int64_t previousSource = -1;
    withElementSize(es, [&](auto size) {
      constexpr size_t kSize = decltype(size)::value;
      for (int64_t r = begin; r < end; ++r) {
        std::byte* d = dst + static_cast<size_t>(r) * rowBytes;
        int64_t source = 0;
        bool outside = false;
        for (size_t k = 0; k + 1 < rank; ++k) {
          int64_t off = offsets[k][static_cast<size_t>(index[k])];
          outside = outside || off < 0;
          source += off;
        }
        if (outside) {
          fillElements(d, extrapolation.data(), rowLen, es);
          previousSource = -1;
        } else if (source == previousSource) {
          std::memcpy(d, d - rowBytes, rowBytes);
        } else {
          const std::byte* s = src + static_cast<size_t>(source) * es;
          if (last.identity) {
            std::memcpy(d, s, rowBytes);
          } else {
            nearestRow<kSize>(d, s, last, es);
          }
          if (!last.identity && last.anyOutside) {
            for (int64_t i = 0; i < rowLen; ++i) {
              if (last.outside[static_cast<size_t>(i)])
                std::memcpy(d + static_cast<size_t>(i) * es, extrapolation.data(), es);
            }
          }
          previousSource = source;
        }
        for (size_t k = rank - 1; k-- > 0;) {
          if (++index[k] < outDims[k]) break;
          index[k] = 0;
        }
      }
    });
  });
}

/// One separable pass: dst[o, j, i] = sum_t w[j,t] * src[o, idx[j,t], i] (float32).
void resizeAxis(const float* src, float* dst, int64_t outer, int64_t inner, const AxisPlan& p, float extrapolation) {
  int64_t items = outer * p.outDim;
  auto taps = static_cast<size_t>(p.taps);
  parallelRanges(items, items * inner * p.taps > kShapeParallelGrain, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      int64_t o = item / p.outDim, j = item % p.outDim;
      float* d = dst + item * inner;
      if (p.anyOutside && p.outside[static_cast<size_t>(j)]) {
        for (int64_t i = 0; i < inner; ++i) d[i] = extrapolation;
        continue;
      }
      const int64_t* idx = p.index.data() + static_cast<size_t>(j) * taps;
      const float* w = p.weight.data() + static_cast<size_t>(j) * taps;
      const float* base = src + o * p.inDim * inner;
      if (inner == 1) {
        float acc = 0;
        for (size_t t = 0; t < taps; ++t) acc += w[t] * base[idx[t]];
        d[0] = acc;
        continue;
      }
      const float* s0 = base + idx[0] * inner;
      float w0 = w[0];
      for (int64_t i = 0; i < inner; ++i) d[i] = w0 * s0[i];
      for (size_t t = 1; t < taps; ++t) {
        const float* s = base + idx[t] * inner;
        float wt = w[t];
        if (wt == 0.0f) continue;
        for (int64_t i = 0; i < inner; ++i) d[i] += wt * s[i];
      }
    }
  });
}

/// Bilinear on the last two axes: planes of [inH, inW] to [outH, outW] (float32). Each source row
/// is interpolated along x once into a row of outW (kept while consecutive output rows read it:
/// an 8x upsample reads each pair of source rows 8 times), then an output row is the blend of two
/// such rows, a plain vector loop. The arithmetic is the same as one pixel at a time:
/// wy0 * (wx0 a + wx1 b) + wy1 * (wx0 c + wx1 d).
void bilinear2d(const float* src, float* dst, int64_t planes, const AxisPlan& py, const AxisPlan& px) {
  int64_t inH = py.inDim, inW = px.inDim, outH = py.outDim, outW = px.outDim;
  int64_t items = planes * outH;
  parallelRanges(items, items * outW > kShapeParallelGrain, [&](int64_t begin, int64_t end) {
    const int64_t* xi = px.index.data();
    const float* xw = px.weight.data();
    std::vector<float> rowA(static_cast<size_t>(outW)), rowB(static_cast<size_t>(outW));
    float* h0 = rowA.data();
    float* h1 = rowB.data();
    int64_t k0 = -1, k1 = -1;  // the source rows (plane * inH + y) that h0 and h1 hold
    auto alongX = [&](int64_t key, float* h) {
      const float* r = src + key * inW;
      for (int64_t ox = 0; ox < outW; ++ox) h[ox] = xw[2 * ox] * r[xi[2 * ox]] + xw[2 * ox + 1] * r[xi[2 * ox + 1]];
    };
    for (int64_t item = begin; item < end; ++item) {
      int64_t plane = item / outH, oy = item % outH;
      int64_t key0 = plane * inH + py.index[static_cast<size_t>(2 * oy)];
      int64_t key1 = plane * inH + py.index[static_cast<size_t>(2 * oy + 1)];
      if (key0 == k1 && key0 != k0) {  // the lower row of the last pair is the upper one now
        std::swap(h0, h1);
        std::swap(k0, k1);
      }
      if (k0 != key0) {
        alongX(key0, h0);
        k0 = key0;
      }
      if (k1 != key1) {
        alongX(key1, h1);
        k1 = key1;
      }
      const float wy0 = py.weight[static_cast<size_t>(2 * oy)], wy1 = py.weight[static_cast<size_t>(2 * oy + 1)];
      float* d = dst + item * outW;
      for (int64_t ox = 0; ox < outW; ++ox) d[ox] = wy0 * h0[ox] + wy1 * h1[ox];
    }
  });
}

class ResizeKernel final : public Kernel {
 public:
  ResizeKernel(ResizeAttrs attrs, bool bytesNhwc) : attrs_(std::move(attrs)), bytesNhwc_(bytesNhwc) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    WH_RETURN_IF_ERROR(plan(ctx, x));
    bool identity = true;
    for (const AxisPlan& p : plans_) identity = identity && p.identity;
    if (identity) {
      ctx.setOutput(0, viewWithDims(x, outDims_));
      return Status::ok();
    }
    if (attrs_.mode == Mode::kNearest) {
      ScalarBytes extrapolation{};
      scalarBytes(attrs_.extrapolation, x.dtype(), extrapolation);
      ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), outDims_);
      if (x.rank() == 0 || out.numel() == 0) return Status::ok();
      if (bytesNhwc_) {  // NCHW dims over NHWC bytes: the same gather with the axes in memory order
        if (x.rank() != 4 || ir::elementSize(x.dtype()) != 1) return ctx.error("expects 4-D bytes in the channels-last plan");
        const std::vector<int64_t> order = {0, 2, 3, 1};
        std::vector<int64_t> inDims(4), outDims(4);
        std::vector<AxisPlan> plans(4);
        for (size_t i = 0; i < 4; ++i) {
          const auto a = static_cast<size_t>(order[i]);
          inDims[i] = x.dims()[a];
          outDims[i] = outDims_[a];
          plans[i] = plans_[a];
        }
        nearestGather(viewWithDims(x, inDims), out.mutableRawData(), outDims, plans, extrapolation);
        return Status::ok();
      }
      nearestGather(x, out.mutableRawData(), outDims_, plans_, extrapolation);
      return Status::ok();
    }
    ir::DataType dt = x.dtype();
    if (dt != ir::DataType::kFloat && dt != ir::DataType::kFloat16 && dt != ir::DataType::kBFloat16 &&
        dt != ir::DataType::kDouble) {
      return ctx.unsupported("mode linear/cubic on dtype " + std::string(ir::dataTypeName(dt)) + " is not supported");
    }
    if (dt == ir::DataType::kFloat) {
      ir::Tensor& out = ctx.allocateOutput(0, dt, outDims_);
      if (out.numel() != 0) interpolate(x.data<float>(), x.dims(), out.mutableData<float>());
      return Status::ok();
    }
    ir::Tensor wide = toFloat32(x);
    ir::Tensor result(ir::DataType::kFloat, outDims_);
    if (result.numel() != 0) interpolate(wide.data<float>(), x.dims(), result.mutableData<float>());
    ir::Tensor narrow = fromFloat32(result, dt);
    ir::Tensor& out = ctx.allocateOutput(0, dt, outDims_);
    std::memcpy(out.mutableRawData(), narrow.rawData(), static_cast<size_t>(out.numel()) * ir::elementSize(dt));
    return Status::ok();
  }

 private:
  /// Linear or cubic, float32: the fused bilinear kernel when only the last two axes are
  /// resized with two taps each, else one separable pass per resized axis.
  void interpolate(const float* src, const std::vector<int64_t>& inDims, float* dst) {
    size_t rank = inDims.size();
    bool fused = rank >= 2 && attrs_.mode == Mode::kLinear;
    for (size_t k = 0; fused && k < rank; ++k) {
      const AxisPlan& p = plans_[k];
      fused = k + 2 >= rank ? (p.identity || (p.taps == 2 && !p.anyOutside)) : p.identity;
    }
    if (fused) {
      if (plans_[rank - 2].identity) plans_[rank - 2] = identityPlan(inDims[rank - 2], 2);
      if (plans_[rank - 1].identity) plans_[rank - 1] = identityPlan(inDims[rank - 1], 2);
      bilinear2d(src, dst, dimProduct(inDims, 0, rank - 2), plans_[rank - 2], plans_[rank - 1]);
      return;
    }
    std::vector<int64_t> dims = inDims;
    size_t remaining = 0;
    for (const AxisPlan& p : plans_) remaining += p.identity ? 0 : 1;
    const float* cur = src;
    int flip = 0;
    for (size_t k = 0; k < rank; ++k) {
      const AxisPlan& p = plans_[k];
      if (p.identity) continue;
      --remaining;
      int64_t outer = dimProduct(dims, 0, k), inner = dimProduct(dims, k + 1, rank);
      dims[k] = p.outDim;
      float* out = dst;
      if (remaining > 0) {
        std::vector<float>& buf = flip == 0 ? bufA_ : bufB_;
        buf.resize(static_cast<size_t>(dimProduct(dims)));
        out = buf.data();
        flip ^= 1;
      }
      resizeAxis(cur, out, outer, inner, p, static_cast<float>(attrs_.extrapolation));
      cur = out;
    }
  }

  /// Reads scales/sizes/roi and (re)builds the per-axis plans when they or the shape changed.
  Status plan(KernelContext& ctx, const ir::Tensor& x) {
    std::vector<double> scales, roi;
    std::vector<int64_t> sizes;
    auto readDoubles = [&](size_t i) {
      const ir::Tensor& t = ctx.input(i);
      std::vector<double> v(static_cast<size_t>(t.numel()));
      for (size_t k = 0; k < v.size(); ++k) v[k] = t.valueAsDouble(static_cast<int64_t>(k));
      return v;
    };
    if (attrs_.upsample && attrs_.opset < 9) {
      scales.assign(attrs_.upsampleScales.begin(), attrs_.upsampleScales.end());
    } else if (attrs_.upsample || attrs_.opset < 11) {
      if (!ctx.hasInput(1)) return ctx.error("input 'scales' is missing");
      scales = readDoubles(1);
    } else {
      if (ctx.hasInput(1)) roi = readDoubles(1);
      if (ctx.hasInput(2) && ctx.input(2).numel() > 0) scales = readDoubles(2);
      if (ctx.hasInput(3) && ctx.input(3).numel() > 0) {
        WH_ASSIGN_OR_RETURN(sizes, readIntInput(ctx, 3, "sizes"));
      }
    }
    std::vector<double> key(x.dims().begin(), x.dims().end());
    key.push_back(-1);
    key.insert(key.end(), scales.begin(), scales.end());
    key.push_back(-2);
    key.insert(key.end(), sizes.begin(), sizes.end());
    key.push_back(-3);
    key.insert(key.end(), roi.begin(), roi.end());
    if (key == planKey_) return Status::ok();
    planKey_.clear();

    size_t rank = x.dims().size();
    std::vector<int64_t> axes;
    for (int64_t a : attrs_.axes) {
      WH_ASSIGN_OR_RETURN(int64_t axis, normalizeAxisOrError(ctx, a, static_cast<int64_t>(rank), "axis"));
      axes.push_back(axis);
    }
    if (axes.empty()) {
      for (size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int64_t>(i));
    }
    size_t n = axes.size();
    if (scales.empty() == sizes.empty()) return ctx.error("exactly one of 'scales' and 'sizes' must be given");
    if ((!scales.empty() && scales.size() != n) || (!sizes.empty() && sizes.size() != n)) {
      return ctx.error("scales/sizes must hold " + std::to_string(n) + " values for input " + shapeToString(x.dims()));
    }
    std::vector<double> fullScale(rank, 1.0), roiStart(rank, 0.0), roiEnd(rank, 1.0);
    if (attrs_.coord == Coord::kTfCropAndResize) {
      if (roi.size() != 2 * n) return ctx.error("roi must hold " + std::to_string(2 * n) + " values");
      for (size_t i = 0; i < n; ++i) {
        roiStart[static_cast<size_t>(axes[i])] = roi[i];
        roiEnd[static_cast<size_t>(axes[i])] = roi[n + i];
      }
    }
    outDims_ = x.dims();
    if (!sizes.empty()) {
      for (size_t i = 0; i < n; ++i) {
        auto a = static_cast<size_t>(axes[i]);
        if (sizes[i] < 0) return ctx.error("sizes " + shapeToString(sizes) + " has a negative entry");
        outDims_[a] = sizes[i];
        fullScale[a] = x.dims()[a] == 0 ? 1.0 : static_cast<double>(sizes[i]) / static_cast<double>(x.dims()[a]);
      }
      if (attrs_.policy != AspectPolicy::kStretch) {
        double s = fullScale[static_cast<size_t>(axes[0])];
        for (int64_t a : axes) {
          double v = fullScale[static_cast<size_t>(a)];
          s = attrs_.policy == AspectPolicy::kNotLarger ? std::min(s, v) : std::max(s, v);
        }
        for (int64_t a : axes) {
          fullScale[static_cast<size_t>(a)] = s;
          outDims_[static_cast<size_t>(a)] =
              static_cast<int64_t>(s * static_cast<double>(x.dims()[static_cast<size_t>(a)]) + 0.5);
        }
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        auto a = static_cast<size_t>(axes[i]);
        if (!(scales[i] > 0)) return ctx.error("scales must be positive");
        if (attrs_.upsample && scales[i] < 1) return ctx.error("Upsample scales must be at least 1");
        fullScale[a] = scales[i];
        outDims_[a] = static_cast<int64_t>(scales[i] * static_cast<double>(x.dims()[a]));
      }
    }
    plans_.assign(rank, AxisPlan{});
    for (size_t a = 0; a < rank; ++a) {
      int64_t in = x.dims()[a], out = outDims_[a];
      bool sameSpan =
          attrs_.coord != Coord::kTfCropAndResize || (std::fabs(roiStart[a]) < 1e-9 && std::fabs(roiEnd[a] - 1) < 1e-9);
      if (in == out && std::fabs(fullScale[a] - 1.0) < 1e-9 && sameSpan) continue;
      if (in == 0 && out != 0) return ctx.error("cannot resize an empty axis of " + shapeToString(x.dims()));
      if (in == 0 || out == 0) {
        plans_[a].identity = false;
        plans_[a].inDim = in;
        plans_[a].outDim = out;
        continue;
      }
      plans_[a] = planAxis(attrs_, in, out, fullScale[a], roiStart[a], roiEnd[a]);
      detectRepeat(plans_[a]);
    }
    planKey_ = std::move(key);
    return Status::ok();
  }

  ResizeAttrs attrs_;
  std::vector<double> planKey_;
  std::vector<int64_t> outDims_;
  std::vector<AxisPlan> plans_;
  std::vector<float> bufA_, bufB_;
  bool bytesNhwc_;  ///< X and Y: NCHW dims over NHWC bytes (quant::channelsLastValues; nearest only)
};

Expected<std::unique_ptr<Kernel>> makeResizeKernel(const KernelCreateInfo& info, bool upsample) {
  const ir::Node& node = info.node;
  ResizeAttrs at;
  at.upsample = upsample;
  at.opset = info.opset;
  std::string mode = node.attrString("mode", "nearest");
  if (mode == "nearest") {
    at.mode = Mode::kNearest;
  } else if (mode == "linear" || mode == "bilinear") {
    at.mode = Mode::kLinear;
  } else if (mode == "cubic" && !upsample && info.opset >= 11) {
    at.mode = Mode::kCubic;
  } else {
    return info.unsupported("mode '" + mode + "' is not supported");
  }
  if (upsample || info.opset < 11) {
    at.coord = Coord::kAsymmetric;
    at.nearest = NearestMode::kSimple;
    if (upsample && info.opset < 9) {
      at.upsampleScales = node.attrFloats("scales");
      if (at.upsampleScales.empty()) return info.error("attribute 'scales' is missing");
    }
  } else {
    std::string coord = node.attrString("coordinate_transformation_mode", "half_pixel");
    if (coord == "half_pixel") {
      at.coord = Coord::kHalfPixel;
    } else if (coord == "half_pixel_symmetric" && info.opset >= 19) {
      at.coord = Coord::kHalfPixelSymmetric;
    } else if (coord == "pytorch_half_pixel") {
      at.coord = Coord::kPytorchHalfPixel;
    } else if (coord == "align_corners") {
      at.coord = Coord::kAlignCorners;
    } else if (coord == "asymmetric") {
      at.coord = Coord::kAsymmetric;
    } else if (coord == "tf_half_pixel_for_nn" && info.opset < 13) {
      at.coord = Coord::kTfHalfPixelForNn;
    } else if (coord == "tf_crop_and_resize") {
      at.coord = Coord::kTfCropAndResize;
    } else {
      return info.unsupported("coordinate_transformation_mode '" + coord + "' is not supported");
    }
    std::string nearest = node.attrString("nearest_mode", "round_prefer_floor");
    if (nearest == "round_prefer_floor") {
      at.nearest = NearestMode::kRoundPreferFloor;
    } else if (nearest == "round_prefer_ceil") {
      at.nearest = NearestMode::kRoundPreferCeil;
    } else if (nearest == "floor") {
      at.nearest = NearestMode::kFloor;
    } else if (nearest == "ceil") {
      at.nearest = NearestMode::kCeil;
    } else {
      return info.unsupported("nearest_mode '" + nearest + "' is not supported");
    }
    at.cubicA = node.attrFloat("cubic_coeff_a", -0.75f);
    at.excludeOutside = node.attrInt("exclude_outside", 0) != 0;
    at.extrapolation = node.attrFloat("extrapolation_value", 0.0f);
    if (info.opset >= 18) {
      at.antialias = node.attrInt("antialias", 0) != 0;
      at.axes = node.attrInts("axes");
      std::string policy = node.attrString("keep_aspect_ratio_policy", "stretch");
      if (policy == "stretch") {
        at.policy = AspectPolicy::kStretch;
      } else if (policy == "not_larger") {
        at.policy = AspectPolicy::kNotLarger;
      } else if (policy == "not_smaller") {
        at.policy = AspectPolicy::kNotSmaller;
      } else {
        return info.unsupported("keep_aspect_ratio_policy '" + policy + "' is not supported");
      }
    }
  }
  const bool bytesNhwc = at.mode == Mode::kNearest && info.channelsLastInt8(node.input(0));
  return std::unique_ptr<Kernel>(std::make_unique<ResizeKernel>(std::move(at), bytesNhwc));
}

}  // namespace

void registerShapeResizeKernels(KernelRegistry& registry) {
  registry.add("", "Resize", 10,
               [](const KernelCreateInfo& info) { return makeResizeKernel(info, /*upsample=*/false); });
  registry.add("", "Upsample", 7,
               [](const KernelCreateInfo& info) { return makeResizeKernel(info, /*upsample=*/true); });
}

}  // namespace whittle::runtime::cpu
