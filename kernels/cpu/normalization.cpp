// Normalization ops (the softmax ops are in normalization_softmax.cpp).
//
//   LayerNormalization:  rows = X viewed as [prod(dims[:axis]), prod(dims[axis:])];
//                        Y = (X - mean) / sqrt(var + epsilon) * Scale + B per row,
//                        Mean and InvStdDev (optional outputs) = dims[:axis] + [1, ...].
//   InstanceNormalization: rows = (n, c) of [N, C, D...]; per-channel scale and B.
//   GroupNormalization:  rows = (n, g) of [N, G, C/G * D...]; scale and bias per channel
//                        (opset 21) or per group (opset 18).
//   MeanVarianceNormalization: Y = (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over `axes`.
//   LpNormalization:     Y = X / ||X||_p along `axis` (p = 1 or 2); a zero norm gives 0,
//                        as in ONNX Runtime.
//
// Row statistics are two-pass (mean, then the mean of squared deviations), accumulated in
// double: exact enough for long rows (InstanceNormalization over a whole image) and still
// cheap next to the pass that writes Y. float16/bfloat16 are widened to float32; float64
// runs the same templates in double.
#include <array>
#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/normalization_internal.h"

namespace whittle::runtime::cpu {
namespace {

using ir::DataType;

constexpr int64_t kParallelThreshold = 32768;

std::string dtypeName(DataType dtype) {
  return std::string(ir::dataTypeName(dtype));
}

bool isSupportedFloat(DataType dtype) {
  return dtype == DataType::kFloat || dtype == DataType::kDouble || isWidenedFloat(dtype);
}

Status checkDtype(const KernelContext& ctx, DataType dtype) {
  if (isSupportedFloat(dtype)) return Status::ok();
  return ctx.unsupported("dtype " + dtypeName(dtype) + " is not supported (float32, float16, bfloat16, float64)");
}

// ---------------------------------------------------------------------------------------
// Row kernels. Written once as always-inline templates; the float32 versions are compiled
// twice, for the baseline ISA and for AVX-512 (picked at run time), and the compiler
// vectorises each for its ISA. The float64 versions are the plain instantiation.

#define WH_INLINE [[gnu::always_inline]] inline

/// Mean and variance (population) of n values, two passes in double.
template <typename T>
WH_INLINE void rowMoments(const T* x, int64_t n, double& mean, double& var) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(x[i]) - mean;
    sq += d * d;
  }
  var = n > 0 ? sq / static_cast<double>(n) : 0.0;
}

/// One LayerNormalization row: y = (x - mean) * invStd * scale + bias (bias may be null).
template <typename T>
WH_INLINE void layerNormRow(const T* x, T* y, int64_t n, const T* scale, const T* bias, double eps, double& mean,
                            double& invStd) {
  double var;
  rowMoments(x, n, mean, var);
  invStd = 1.0 / std::sqrt(var + eps);
  const T m = static_cast<T>(mean), s = static_cast<T>(invStd);
  if (bias != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * s * scale[i] + bias[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * s * scale[i];
  }
}

/// One GroupNormalization row of `channels` x `spatial` values: normalised over the whole
/// row, then channel c scaled by scale[c * paramStride] and shifted by bias[c * paramStride].
template <typename T>
WH_INLINE void groupNormRow(const T* x, T* y, int64_t channels, int64_t spatial, const T* scale, const T* bias,
                            int64_t paramStride, double eps) {
  double mean, var;
  rowMoments(x, channels * spatial, mean, var);
  const double invStd = 1.0 / std::sqrt(var + eps);
  for (int64_t c = 0; c < channels; ++c) {
    const double a = invStd * static_cast<double>(scale[c * paramStride]);
    const T af = static_cast<T>(a);
    const T cf = static_cast<T>(static_cast<double>(bias[c * paramStride]) - mean * a);
    const T* xc = x + c * spatial;
    T* yc = y + c * spatial;
#pragma omp simd
    for (int64_t i = 0; i < spatial; ++i) yc[i] = xc[i] * af + cf;
  }
}

using LayerNormRowFn = void (*)(const float*, float*, int64_t, const float*, const float*, double, double&, double&);
using GroupNormRowFn = void (*)(const float*, float*, int64_t, int64_t, const float*, const float*, int64_t, double);

void layerNormRowBase(const float* x, float* y, int64_t n, const float* scale, const float* bias, double eps,
                      double& mean, double& invStd) {
  layerNormRow(x, y, n, scale, bias, eps, mean, invStd);
}
__attribute__((target("avx512f"))) void layerNormRowAvx512(const float* x, float* y, int64_t n, const float* scale,
                                                           const float* bias, double eps, double& mean,
                                                           double& invStd) {
  layerNormRow(x, y, n, scale, bias, eps, mean, invStd);
}
void groupNormRowBase(const float* x, float* y, int64_t channels, int64_t spatial, const float* scale,
                      const float* bias, int64_t paramStride, double eps) {
  groupNormRow(x, y, channels, spatial, scale, bias, paramStride, eps);
}
__attribute__((target("avx512f"))) void groupNormRowAvx512(const float* x, float* y, int64_t channels, int64_t spatial,
                                                           const float* scale, const float* bias, int64_t paramStride,
                                                           double eps) {
  groupNormRow(x, y, channels, spatial, scale, bias, paramStride, eps);
}

/// The row kernel for T: the AVX-512 build for float32 where the CPU has it.
template <typename T>
auto layerNormRowFor() {
  if constexpr (std::is_same_v<T, double>) {
    return &layerNormRow<double>;
  } else {
    return haveAvx512() ? &layerNormRowAvx512 : &layerNormRowBase;
  }
}
template <typename T>
auto groupNormRowFor() {
  if constexpr (std::is_same_v<T, double>) {
    return &groupNormRow<double>;
  } else {
    return haveAvx512() ? &groupNormRowAvx512 : &groupNormRowBase;
  }
}

/// Inputs of the kernels below as T (float32 or double): float16/bfloat16 are widened into
/// per-slot scratch (slots 0..3), and the output is computed into scratch and narrowed at the end.
template <typename T>
class TypedIo {
 public:
  const T* in(const ir::Tensor& t, size_t slot) {
    if constexpr (std::is_same_v<T, double>) {
      return t.data<double>();
    } else {
      return floatView(t, scratch_[slot]);
    }
  }
  /// The buffer to write output `y` into.
  T* out(ir::Tensor& y, size_t slot) {
    if (!isWidenedFloat(y.dtype())) return y.mutableData<T>();
    auto& s = scratch_[slot];
    if (s.size() < static_cast<size_t>(y.numel())) s.resize(static_cast<size_t>(y.numel()));
    return reinterpret_cast<T*>(s.data());
  }
  /// Narrows output `y` from its scratch slot when it was widened.
  void finish(ir::Tensor& y, size_t slot) {
    if (isWidenedFloat(y.dtype())) narrowFromFloat(y.dtype(), scratch_[slot].data(), y.mutableRawData(), y.numel());
  }

 private:
  std::array<std::vector<float>, 4> scratch_;
};

/// Calls fn(T{}) with T = double for float64 inputs and float otherwise.
template <typename F>
Status dispatchFloat(DataType dtype, F&& fn) {
  if (dtype == DataType::kDouble) return fn(double{});
  return fn(float{});
}

// ---------------------------------------------------------------------------------------
// LayerNormalization (opset 17).

class LayerNormKernel final : public Kernel {
 public:
  LayerNormKernel(int64_t axis, float epsilon) : axis_(axis), epsilon_(epsilon) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkDtype(ctx, x.dtype()));
    return dispatchFloat(x.dtype(), [&](auto tag) { return compute<decltype(tag)>(ctx); });
  }

 private:
  /// The parameter `t` (Scale or B) as `inner` values of T, broadcasting it to the normalized
  /// shape when it is smaller.
  template <typename T>
  Expected<const T*> parameter(const KernelContext& ctx, const ir::Tensor& t, const std::vector<int64_t>& normDims,
                               int64_t inner, size_t slot, TypedIo<T>& io, std::vector<T>& expanded) {
    if (t.dtype() != ctx.input(0).dtype()) return ctx.error("Scale and B must have the dtype of X");
    const T* values = io.in(t, slot);
    if (t.numel() == inner) return values;
    auto shape = broadcastShapes(t.dims(), normDims);
    if (!shape || *shape != normDims) {
      return ctx.error("input " + shapeToString(t.dims()) + " does not broadcast to the normalized shape " +
                       shapeToString(normDims));
    }
    std::vector<int64_t> strides = broadcastStrides(t.dims(), normDims);
    expanded.resize(static_cast<size_t>(inner));
    std::vector<int64_t> index(normDims.size(), 0);
    for (int64_t i = 0; i < inner; ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < index.size(); ++d) off += index[d] * strides[d];
      expanded[static_cast<size_t>(i)] = values[off];
      for (size_t d = index.size(); d-- > 0;) {
        if (++index[d] < normDims[d]) break;
        index[d] = 0;
      }
    }
    return expanded.data();
  }

  template <typename T>
  Status compute(KernelContext& ctx) {
    TypedIo<T>& io = std::get<TypedIo<T>>(io_);
    const ir::Tensor& x = ctx.input(0);
    auto axis = normalizeAxis(axis_, x.rank());
    if (!axis || x.rank() == 0)
      return ctx.error("axis " + std::to_string(axis_) + " is out of range for rank " + std::to_string(x.rank()));
    const auto& dims = x.dims();
    std::vector<int64_t> normDims(dims.begin() + *axis, dims.end());
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < x.rank(); ++d) (d < *axis ? outer : inner) *= dims[static_cast<size_t>(d)];
    auto scale = parameter<T>(ctx, ctx.input(1), normDims, inner, 1, io, scaleBuffer<T>());
    if (!scale.isOk()) return scale.status();
    const T* bias = nullptr;
    if (ctx.hasInput(2)) {
      auto b = parameter<T>(ctx, ctx.input(2), normDims, inner, 2, io, biasBuffer<T>());
      if (!b.isOk()) return b.status();
      bias = *b;
    }
    const T* xp = io.in(x, 0);
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), dims);
    T* yp = io.out(y, 3);
    std::vector<int64_t> statDims(dims.begin(), dims.begin() + *axis);
    statDims.resize(dims.size(), 1);
    float* meanOut =
        ctx.hasOutput(1) ? ctx.allocateOutput(1, DataType::kFloat, statDims).mutableData<float>() : nullptr;
    float* invStdOut =
        ctx.hasOutput(2) ? ctx.allocateOutput(2, DataType::kFloat, statDims).mutableData<float>() : nullptr;
    const T* sp = *scale;
    const double eps = epsilon_;
    const auto rowFn = layerNormRowFor<T>();
#pragma omp parallel for if (outer * inner > kParallelThreshold)
    for (int64_t r = 0; r < outer; ++r) {
      double mean, invStd;
      rowFn(xp + r * inner, yp + r * inner, inner, sp, bias, eps, mean, invStd);
      if (meanOut != nullptr) meanOut[r] = static_cast<float>(mean);
      if (invStdOut != nullptr) invStdOut[r] = static_cast<float>(invStd);
    }
    io.finish(y, 3);
    return Status::ok();
  }

  template <typename T>
  std::vector<T>& scaleBuffer() {
    if constexpr (std::is_same_v<T, double>)
      return scaleD_;
    else
      return scaleF_;
  }
  template <typename T>
  std::vector<T>& biasBuffer() {
    if constexpr (std::is_same_v<T, double>)
      return biasD_;
    else
      return biasF_;
  }

  int64_t axis_;
  float epsilon_;
  std::tuple<TypedIo<float>, TypedIo<double>> io_;
  std::vector<float> scaleF_, biasF_;
  std::vector<double> scaleD_, biasD_;
};

// ---------------------------------------------------------------------------------------
// InstanceNormalization and GroupNormalization: rows of [N, G, (C/G) * spatial], with scale
// and bias per channel (C values) or per group (G values). InstanceNormalization is G = C.

class GroupNormKernel final : public Kernel {
 public:
  /// `groups` = 0: one group per channel (InstanceNormalization).
  GroupNormKernel(int64_t groups, float epsilon, bool perGroupParams)
      : groups_(groups), epsilon_(epsilon), perGroupParams_(perGroupParams) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkDtype(ctx, x.dtype()));
    return dispatchFloat(x.dtype(), [&](auto tag) { return compute<decltype(tag)>(ctx); });
  }

 private:
  template <typename T>
  Status compute(KernelContext& ctx) {
    TypedIo<T>& io = std::get<TypedIo<T>>(io_);
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& scale = ctx.input(1);
    const ir::Tensor& bias = ctx.input(2);
    if (x.rank() < 2) return ctx.error("X must be [N, C, ...], got " + shapeToString(x.dims()));
    if (scale.dtype() != x.dtype() || bias.dtype() != x.dtype())
      return ctx.error("scale and bias must have the dtype of X");
    const int64_t batch = x.dims()[0], channels = x.dims()[1];
    const int64_t spatial = x.numel() / std::max<int64_t>(batch * channels, 1);
    const int64_t groups = groups_ == 0 ? channels : groups_;
    if (groups <= 0 || channels % groups != 0) {
      return ctx.error("num_groups " + std::to_string(groups) + " does not divide the " + std::to_string(channels) +
                       " channels");
    }
    // GroupNormalization-18 takes one scale per group, -21 one per channel; accept either.
    const bool perGroup = groups_ != 0 && scale.numel() == groups && (perGroupParams_ || groups == channels);
    const int64_t wantParams = perGroup ? groups : channels;
    if (scale.numel() != wantParams || bias.numel() != wantParams) {
      return ctx.error("scale and bias must have " + std::to_string(wantParams) + " values, got " +
                       std::to_string(scale.numel()) + " and " + std::to_string(bias.numel()));
    }
    const int64_t perGroupChannels = channels / groups;
    const int64_t rowLength = perGroupChannels * spatial;
    const T* xp = io.in(x, 0);
    const T* sp = io.in(scale, 1);
    const T* bp = io.in(bias, 2);
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), x.dims());
    T* yp = io.out(y, 3);
    const double eps = epsilon_;
    const auto rowFn = groupNormRowFor<T>();
    const int64_t paramStride = perGroup ? 0 : 1;
#pragma omp parallel for if (x.numel() > kParallelThreshold)
    for (int64_t r = 0; r < batch * groups; ++r) {
      const int64_t g = r % groups;
      const int64_t firstParam = perGroup ? g : g * perGroupChannels;
      rowFn(xp + r * rowLength, yp + r * rowLength, perGroupChannels, spatial, sp + firstParam, bp + firstParam,
            paramStride, eps);
    }
    io.finish(y, 3);
    return Status::ok();
  }

  int64_t groups_;
  float epsilon_;
  bool perGroupParams_;
  std::tuple<TypedIo<float>, TypedIo<double>> io_;
};

// ---------------------------------------------------------------------------------------
// MeanVarianceNormalization: statistics over any set of axes.

class MvnKernel final : public Kernel {
 public:
  explicit MvnKernel(std::vector<int64_t> axes) : axes_(std::move(axes)) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkDtype(ctx, x.dtype()));
    return dispatchFloat(x.dtype(), [&](auto tag) { return compute<decltype(tag)>(ctx); });
  }

 private:
  template <typename T>
  Status compute(KernelContext& ctx) {
    TypedIo<T>& io = std::get<TypedIo<T>>(io_);
    const ir::Tensor& x = ctx.input(0);
    const auto& dims = x.dims();
    std::vector<int64_t> statDims = dims;
    for (int64_t a : axes_) {
      auto axis = normalizeAxis(a, x.rank());
      if (!axis || x.rank() == 0)
        return ctx.error("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(x.rank()));
      statDims[static_cast<size_t>(*axis)] = 1;
    }
    int64_t statCount = 1;
    for (int64_t d : statDims) statCount *= d;
    const int64_t reduced = statCount > 0 ? x.numel() / statCount : 0;
    const std::vector<int64_t> strides = broadcastStrides(statDims, dims);
    const T* xp = io.in(x, 0);
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), dims);
    T* yp = io.out(y, 1);
    sum_.assign(static_cast<size_t>(statCount), 0.0);
    sumSq_.assign(static_cast<size_t>(statCount), 0.0);
    // Pass 1: sums per statistics cell; pass 2: normalise. Both walk X in order, tracking the
    // cell of each element with a multi-index.
    auto walk = [&](auto&& visit) {
      std::vector<int64_t> index(dims.size(), 0);
      int64_t cell = 0;
      for (int64_t i = 0; i < x.numel(); ++i) {
        visit(i, cell);
        for (size_t d = dims.size(); d-- > 0;) {
          cell += strides[d];
          if (++index[d] < dims[d]) break;
          cell -= strides[d] * dims[d];
          index[d] = 0;
        }
      }
    };
    walk([&](int64_t i, int64_t cell) {
      double v = static_cast<double>(xp[i]);
      sum_[static_cast<size_t>(cell)] += v;
      sumSq_[static_cast<size_t>(cell)] += v * v;
    });
    for (int64_t c = 0; c < statCount; ++c) {
      double mean = sum_[static_cast<size_t>(c)] / static_cast<double>(reduced);
      double var = std::max(sumSq_[static_cast<size_t>(c)] / static_cast<double>(reduced) - mean * mean, 0.0);
      sum_[static_cast<size_t>(c)] = mean;
      sumSq_[static_cast<size_t>(c)] = 1.0 / (std::sqrt(var) + 1e-9);
    }
    walk([&](int64_t i, int64_t cell) {
      auto c = static_cast<size_t>(cell);
      yp[i] = static_cast<T>((static_cast<double>(xp[i]) - sum_[c]) * sumSq_[c]);
    });
    io.finish(y, 1);
    return Status::ok();
  }

  std::vector<int64_t> axes_;
  std::tuple<TypedIo<float>, TypedIo<double>> io_;
  std::vector<double> sum_, sumSq_;
};

// ---------------------------------------------------------------------------------------
// LpNormalization.

class LpNormKernel final : public Kernel {
 public:
  LpNormKernel(int64_t axis, int64_t p) : axis_(axis), p_(p) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkDtype(ctx, x.dtype()));
    return dispatchFloat(x.dtype(), [&](auto tag) { return compute<decltype(tag)>(ctx); });
  }

 private:
  template <typename T>
  Status compute(KernelContext& ctx) {
    TypedIo<T>& io = std::get<TypedIo<T>>(io_);
    const ir::Tensor& x = ctx.input(0);
    auto axis = normalizeAxis(axis_, x.rank());
    if (!axis || x.rank() == 0)
      return ctx.error("axis " + std::to_string(axis_) + " is out of range for rank " + std::to_string(x.rank()));
    int64_t outer = 1, n = 1, inner = 1;
    for (int64_t d = 0; d < x.rank(); ++d) {
      int64_t size = x.dims()[static_cast<size_t>(d)];
      (d < *axis ? outer : d == *axis ? n : inner) *= size;
    }
    const T* xp = io.in(x, 0);
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), x.dims());
    T* yp = io.out(y, 1);
    const bool l1 = p_ == 1;
#pragma omp parallel for if (x.numel() > kParallelThreshold)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const T* xs = xp + o * n * inner + i;
        T* ys = yp + o * n * inner + i;
        double acc = 0;
        for (int64_t k = 0; k < n; ++k) {
          double v = static_cast<double>(xs[k * inner]);
          acc += l1 ? std::fabs(v) : v * v;
        }
        const double norm = l1 ? acc : std::sqrt(acc);
        const double inv = norm != 0 ? 1.0 / norm : 0.0;
        for (int64_t k = 0; k < n; ++k) ys[k * inner] = static_cast<T>(static_cast<double>(xs[k * inner]) * inv);
      }
    }
    io.finish(y, 1);
    return Status::ok();
  }

  int64_t axis_;
  int64_t p_;
  std::tuple<TypedIo<float>, TypedIo<double>> io_;
};

// ---------------------------------------------------------------------------------------
// Factories.

Expected<std::unique_ptr<Kernel>> createLayerNorm(const KernelCreateInfo& info) {
  int64_t stash = info.node.attrInt("stash_type", 1);
  if (stash != static_cast<int64_t>(DataType::kFloat)) {
    return info.unsupported("stash_type " + std::to_string(stash) + " is not supported (only 1, float32)");
  }
  return std::unique_ptr<Kernel>(
      std::make_unique<LayerNormKernel>(info.node.attrInt("axis", -1), info.node.attrFloat("epsilon", 1e-5f)));
}

Expected<std::unique_ptr<Kernel>> createInstanceNorm(const KernelCreateInfo& info) {
  return std::unique_ptr<Kernel>(
      std::make_unique<GroupNormKernel>(/*groups=*/0, info.node.attrFloat("epsilon", 1e-5f), /*perGroupParams=*/false));
}

Expected<std::unique_ptr<Kernel>> createGroupNorm(const KernelCreateInfo& info) {
  if (!info.node.hasAttribute("num_groups")) return info.error("attribute num_groups is required");
  int64_t stash = info.node.attrInt("stash_type", 1);
  if (stash != static_cast<int64_t>(DataType::kFloat)) {
    return info.unsupported("stash_type " + std::to_string(stash) + " is not supported (only 1, float32)");
  }
  int64_t groups = info.node.attrInt("num_groups", 1);
  if (groups <= 0) return info.error("num_groups must be positive, got " + std::to_string(groups));
  return std::unique_ptr<Kernel>(std::make_unique<GroupNormKernel>(groups, info.node.attrFloat("epsilon", 1e-5f),
                                                                   /*perGroupParams=*/info.opset < 21));
}

Expected<std::unique_ptr<Kernel>> createMvn(const KernelCreateInfo& info) {
  return std::unique_ptr<Kernel>(std::make_unique<MvnKernel>(info.node.attrInts("axes", {0, 2, 3})));
}

Expected<std::unique_ptr<Kernel>> createLpNorm(const KernelCreateInfo& info) {
  int64_t p = info.node.attrInt("p", 2);
  if (p != 1 && p != 2) return info.error("p must be 1 or 2, got " + std::to_string(p));
  return std::unique_ptr<Kernel>(std::make_unique<LpNormKernel>(info.node.attrInt("axis", -1), p));
}

}  // namespace

void registerNormalizationKernels(KernelRegistry& registry) {
  registerSoftmaxKernels(registry);
  // (The registry gives opset < 17 models this kernel too: ONNX Runtime runs LayerNormalization
  // there as a contrib op, and its transformer optimizer writes it into such models.)
  registry.add("", "LayerNormalization", 17, createLayerNorm);
  // ONNX Runtime also has it in com.microsoft.
  registry.add("com.microsoft", "LayerNormalization", 1, createLayerNorm);
  registry.add("", "InstanceNormalization", 1, createInstanceNorm);
  registry.add("", "GroupNormalization", 18, createGroupNorm);
  registry.add("", "MeanVarianceNormalization", 9, createMvn);
  registry.add("", "LpNormalization", 1, createLpNorm);
}

}  // namespace whittle::runtime::cpu
