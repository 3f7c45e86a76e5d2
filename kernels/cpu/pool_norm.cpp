// BatchNormalization (inference, and training_mode=1 for completeness), the lowering's
// com.whittle.internal BatchNormRelu (BatchNormalization then Relu, one pass: step N of
// lowerForCpu; float32 [N, H, W, C] when channels_last, as the channels-last plan keeps a
// DenseNet's Concat -> BN -> Relu -> Conv) and LRN: plain loops, memory-bound, parallel over channels when large. Each has
// its scalar form inline: the per-element formula is the whole kernel.
#include <omp.h>

#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "cpu/dnnl_glue.h"
#include "cpu/elementwise_common.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

namespace {

/// Reads a per-channel tensor as doubles.
std::vector<double> channelValues(const ir::Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.valueAsDouble(i);
  return v;
}

/// y = x * a + b over one plane, then Relu's max(y, 0) when kRelu.
template <typename T, bool kRelu>
WH_ALWAYS_INLINE void affinePlane(const T* x, T* y, int64_t n, T a, T b) {
  for (int64_t s = 0; s < n; ++s) {
    const T v = x[s] * a + b;
    y[s] = kRelu ? (v > T{0} ? v : T{0}) : v;
  }
}
template <typename T, bool kRelu>
WH_SIMD_CLONES void affinePlaneSimd(const T* x, T* y, int64_t n, T a, T b) {
  affinePlane<T, kRelu>(x, y, n, a, b);
}

/// y = x * a[ch] + b[ch] per element over `rows` rows of c channels ([N, H, W, C] float32), then
/// Relu's max(y, 0) when kRelu.
template <bool kRelu>
WH_SIMD_CLONES void affineRows(const float* x, float* y, int64_t rows, int64_t c, const float* a, const float* b) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    float* yr = y + r * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float v = xr[ch] * a[ch] + b[ch];
      yr[ch] = kRelu ? (v > 0.0f ? v : 0.0f) : v;
    }
  }
}

/// y = x * a[c] + b[c] over [N, C, spatial] (then max(y, 0) when `relu`).
template <typename T>
void affinePerChannel(const T* x, T* y, int64_t n, int64_t c, int64_t spatial, const std::vector<double>& a,
                      const std::vector<double>& b, bool relu) {
  int64_t planes = n * c;
#pragma omp parallel for if (planes * spatial > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    size_t ch = static_cast<size_t>(plane % c);
    T sa = static_cast<T>(a[ch]), sb = static_cast<T>(b[ch]);
    const T* xp = x + plane * spatial;
    T* yp = y + plane * spatial;
    if (relu) affinePlaneSimd<T, true>(xp, yp, spatial, sa, sb);
    else affinePlaneSimd<T, false>(xp, yp, spatial, sa, sb);
  }
}

// channelsLast: x is float32 [N, H, W, C] (BatchNormRelu in the channels-last plan).
Status runBatchNorm(KernelContext& ctx, float epsilon, float momentum, bool training, bool relu, bool channelsLast = false) {
  const ir::Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.error("X must have rank 2 or more, got " + shapeToString(x.dims()));
  if (channelsLast && (x.rank() != 4 || x.dtype() != ir::DataType::kFloat)) {
    return ctx.error("channels-last X must be 4-D float32, got " + shapeToString(x.dims()));
  }
  for (size_t i = 1; i < 5; ++i) {
    if (!ctx.hasInput(i)) return ctx.error("needs inputs X, scale, B, input_mean and input_var");
  }
  int64_t n = x.dims()[0], c = x.dims()[channelsLast ? 3 : 1], spatial = 1;
  for (size_t i = 1; i < x.dims().size(); ++i) {
    if (i != (channelsLast ? 3u : 1u)) spatial *= x.dims()[i];
  }
  for (size_t i = 1; i < 5; ++i) {
    if (ctx.input(i).numel() != c) {
      return ctx.error("input " + std::to_string(i) + " has " + std::to_string(ctx.input(i).numel()) +
                       " values, expected one per channel (" + std::to_string(c) + ")");
    }
  }
  ir::DataType type = x.dtype();
  if (type != ir::DataType::kFloat && type != ir::DataType::kDouble && type != ir::DataType::kFloat16 &&
      type != ir::DataType::kBFloat16) {
    return ctx.unsupported("dtype " + std::string(ir::dataTypeName(type)) + " is not supported");
  }
  std::vector<double> scale = channelValues(ctx.input(1)), bias = channelValues(ctx.input(2));
  std::vector<double> mean = channelValues(ctx.input(3)), var = channelValues(ctx.input(4));
  std::vector<double> batchMean, batchVar;
  if (training) {
    // Statistics of this batch (population variance), as the ONNX reference computes them.
    batchMean.assign(static_cast<size_t>(c), 0.0);
    batchVar.assign(static_cast<size_t>(c), 0.0);
    double count = static_cast<double>(n * spatial);
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t ch = 0; ch < c; ++ch) {
        for (int64_t s = 0; s < spatial; ++s)
          batchMean[static_cast<size_t>(ch)] += x.valueAsDouble((b * c + ch) * spatial + s);
      }
    }
    for (double& m : batchMean) m /= std::max(count, 1.0);
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t ch = 0; ch < c; ++ch) {
        for (int64_t s = 0; s < spatial; ++s) {
          double d = x.valueAsDouble((b * c + ch) * spatial + s) - batchMean[static_cast<size_t>(ch)];
          batchVar[static_cast<size_t>(ch)] += d * d;
        }
      }
    }
    for (double& v : batchVar) v /= std::max(count, 1.0);
  }
  const std::vector<double>& useMean = training ? batchMean : mean;
  const std::vector<double>& useVar = training ? batchVar : var;
  std::vector<double> a(static_cast<size_t>(c)), b(static_cast<size_t>(c));
  for (size_t ch = 0; ch < static_cast<size_t>(c); ++ch) {
    a[ch] = scale[ch] / std::sqrt(useVar[ch] + static_cast<double>(epsilon));
    b[ch] = bias[ch] - useMean[ch] * a[ch];
  }
  if (channelsLast) {
    std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
    ir::Tensor& y = ctx.allocateOutput(0, type, x.dims());
    const int64_t rows = n * spatial;
    parallelChunks(rows, ctx.threads(), std::max<int64_t>(1, 32768 / std::max<int64_t>(c, 1)), [&](int64_t r0, int64_t r1) {
      (relu ? affineRows<true> : affineRows<false>)(x.data<float>() + r0 * c, y.mutableData<float>() + r0 * c, r1 - r0, c,
                                                    af.data(), bf.data());
    });
  } else if (type == ir::DataType::kFloat) {
    ir::Tensor& y = ctx.allocateOutput(0, type, x.dims());
    affinePerChannel<float>(x.data<float>(), y.mutableData<float>(), n, c, spatial, a, b, relu);
  } else if (type == ir::DataType::kDouble) {
    ir::Tensor& y = ctx.allocateOutput(0, type, x.dims());
    affinePerChannel<double>(x.data<double>(), y.mutableData<double>(), n, c, spatial, a, b, relu);
  } else {
    ir::Tensor xf = toFloat32(x);
    ir::Tensor yf(ir::DataType::kFloat, x.dims());
    affinePerChannel<float>(xf.data<float>(), yf.mutableData<float>(), n, c, spatial, a, b, relu);
    ctx.setOutput(0, fromFloat32(yf, type));
  }
  if (training) {
    // running = input * momentum + batch * (1 - momentum), in the dtype of the statistics.
    for (size_t out = 1; out < 3 && out < ctx.numOutputs(); ++out) {
      if (!ctx.hasOutput(out)) continue;
      const ir::Tensor& input = ctx.input(out == 1 ? 3 : 4);
      const std::vector<double>& given = out == 1 ? mean : var;
      const std::vector<double>& batch = out == 1 ? batchMean : batchVar;
      ir::Tensor r(ir::DataType::kDouble, input.dims());
      for (size_t ch = 0; ch < static_cast<size_t>(c); ++ch) {
        r.mutableData<double>()[ch] = given[ch] * momentum + batch[ch] * (1.0 - momentum);
      }
      ir::Tensor asFloat(ir::DataType::kFloat, input.dims());
      for (size_t ch = 0; ch < static_cast<size_t>(c); ++ch)
        asFloat.mutableData<float>()[ch] = static_cast<float>(r.data<double>()[ch]);
      ctx.setOutput(out, input.dtype() == ir::DataType::kDouble ? r : fromFloat32(asFloat, input.dtype()));
    }
  }
  return Status::ok();
}

Expected<std::unique_ptr<Kernel>> createBatchNorm(const KernelCreateInfo& info) {
  const ir::Node& node = info.node;
  float epsilon = node.attrFloat("epsilon", 1e-5f);
  float momentum = node.attrFloat("momentum", 0.9f);
  bool training = node.attrInt("training_mode", 0) != 0;
  if (node.attrInt("spatial", 1) != 1) return info.unsupported("spatial=0 is not supported");
  if (info.opset < 14 && node.numOutputs() > 1) {
    // Before opset 14, extra outputs meant training statistics, which inference skips.
    for (size_t i = 1; i < node.numOutputs(); ++i) {
      if (node.output(i) != nullptr && node.output(i)->hasUses()) {
        return info.unsupported("training outputs of BatchNormalization-" + std::to_string(info.opset) +
                                " are not supported");
      }
    }
  }
  return makeFunctionKernel(
      [epsilon, momentum, training](KernelContext& ctx) { return runBatchNorm(ctx, epsilon, momentum, training, false); });
}

Expected<std::unique_ptr<Kernel>> createBatchNormRelu(const KernelCreateInfo& info) {
  const float epsilon = info.node.attrFloat("epsilon", 1e-5f);
  const bool last = info.node.attrInt("channels_last", 0) != 0;
  return makeFunctionKernel([epsilon, last](KernelContext& ctx) { return runBatchNorm(ctx, epsilon, 0.0f, false, true, last); });
}

/// y = x / (bias + alpha / size * sum of x^2 over nearby channels)^beta, in float for float
/// (double for double): the squares of a plane's window summed plane by plane, so the inner
/// loops run along contiguous memory, and the common beta = 0.75 as two square roots instead
/// of pow (GoogLeNet's and AlexNet's LRNs took a third of their run in std::pow).
template <typename T>
void lrn(const T* x, T* y, int64_t n, int64_t c, int64_t spatial, int64_t size, double alpha, double beta,
         double bias) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  int64_t lo = (size - 1) / 2, hi = size - 1 - lo;  // channels before and after
  const A scale = static_cast<A>(alpha / static_cast<double>(size));
  const A offset = static_cast<A>(bias), power = static_cast<A>(beta);
  const bool threeQuarters = beta == 0.75;
  int64_t planes = n * c;
#pragma omp parallel for if (planes * spatial * size > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    int64_t b = plane / c, ch = plane % c;
    int64_t first = std::max<int64_t>(0, ch - lo), last = std::min<int64_t>(c - 1, ch + hi);
    const T* xb = x + b * c * spatial;
    T* yp = y + plane * spatial;
    std::vector<A> sum(static_cast<size_t>(spatial), A(0));
    for (int64_t k = first; k <= last; ++k) {
      const T* xk = xb + k * spatial;
      for (int64_t s = 0; s < spatial; ++s) {
        sum[static_cast<size_t>(s)] += static_cast<A>(xk[s]) * static_cast<A>(xk[s]);
      }
    }
    const T* xc = xb + ch * spatial;
    for (int64_t s = 0; s < spatial; ++s) {
      const A t = offset + scale * sum[static_cast<size_t>(s)];
      const A d = threeQuarters ? std::sqrt(t) * std::sqrt(std::sqrt(t)) : std::pow(t, power);
      yp[s] = static_cast<T>(static_cast<A>(xc[s]) / d);
    }
  }
}

Expected<std::unique_ptr<Kernel>> createLrn(const KernelCreateInfo& info) {
  const ir::Node& node = info.node;
  int64_t size = node.attrInt("size", 0);
  if (size < 1) return info.error("size must be a positive integer");
  double alpha = node.attrFloat("alpha", 1e-4f), beta = node.attrFloat("beta", 0.75f),
         bias = node.attrFloat("bias", 1.0f);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    if (x.rank() < 3) return ctx.error("X must have rank 3 or more, got " + shapeToString(x.dims()));
    int64_t n = x.dims()[0], c = x.dims()[1], spatial = 1;
    for (size_t i = 2; i < x.dims().size(); ++i) spatial *= x.dims()[i];
    ir::DataType type = x.dtype();
    if (type == ir::DataType::kFloat) {
      ir::Tensor& y = ctx.allocateOutput(0, type, x.dims());
      lrn<float>(x.data<float>(), y.mutableData<float>(), n, c, spatial, size, alpha, beta, bias);
    } else if (type == ir::DataType::kDouble) {
      ir::Tensor& y = ctx.allocateOutput(0, type, x.dims());
      lrn<double>(x.data<double>(), y.mutableData<double>(), n, c, spatial, size, alpha, beta, bias);
    } else if (type == ir::DataType::kFloat16 || type == ir::DataType::kBFloat16) {
      ir::Tensor xf = toFloat32(x);
      ir::Tensor yf(ir::DataType::kFloat, x.dims());
      lrn<float>(xf.data<float>(), yf.mutableData<float>(), n, c, spatial, size, alpha, beta, bias);
      ctx.setOutput(0, fromFloat32(yf, type));
    } else {
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(type)) + " is not supported");
    }
    return Status::ok();
  });
}

}  // namespace

void registerPoolNormKernels(KernelRegistry& registry) {
  registry.add("", "BatchNormalization", 1, createBatchNorm);
  registry.add(kInternalDomain, "BatchNormRelu", 1, createBatchNormRelu);
  registry.add("", "LRN", 1, createLrn);
}

}  // namespace whittle::runtime::cpu
