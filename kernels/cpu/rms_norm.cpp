// com.whittle.internal RmsNorm(x, w){epsilon} -> y = (x / Sqrt(ReduceMean(x * x, last axis) + epsilon)) * w:
// RMSNorm as Llama-family exports write it out (Mul, ReduceMean, Add, Sqrt, Div, Mul; step N2 of
// the CPU lowering, src/runtime/lower_rms_norm.cpp), one row of the last axis at a time: two
// passes over a row in cache instead of six over the tensor. The unfused ops' order of
// rounding: the mean of the float squares, + epsilon, the square root, x divided by it, times w
// (the sum of squares is a vector sum in float, as a float ReduceMean's). w broadcasts against
// the last axis ([H] or [1, .., H]) or is a scalar.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <cmath>
#include <string>

#include "cpu/elementwise_common.h"
#include "cpu/kernel_util.h"
#include "cpu/transformer_internal.h"

namespace whittle::runtime::cpu {
namespace {

WH_SIMD_CLONES float sumSquares(const float* x, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

WH_SIMD_CLONES void scaleRow(const float* x, float denom, const float* w, int64_t wStride, float* y, int64_t n) {
  if (wStride == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] / denom) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] / denom) * w[0];
  }
}

}  // namespace

void rmsNormReference(const float* x, const float* w, int64_t wStride, float epsilon, int64_t rows, int64_t n, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[r * n + i]) * x[r * n + i];
    const double denom = std::sqrt(s / static_cast<double>(n) + epsilon);
    for (int64_t i = 0; i < n; ++i) y[r * n + i] = static_cast<float>(x[r * n + i] / denom * w[i * wStride]);
  }
}

namespace {

class RmsNormKernel final : public Kernel {
 public:
  explicit RmsNormKernel(float epsilon) : epsilon_(epsilon) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& w = ctx.input(1);
    WH_RETURN_IF_ERROR(transformer::requireFloat(ctx, x, "x"));
    WH_RETURN_IF_ERROR(transformer::requireFloat(ctx, w, "w"));
    if (x.rank() == 0) return ctx.error("x must have rank 1 or more");
    const int64_t n = x.dims().back();
    // w: a scalar or one value per element of the last axis, no higher rank than x.
    bool perElement = false;
    for (int64_t d : w.dims()) perElement = perElement || d != 1;
    if (w.rank() > x.rank() || (perElement && (w.numel() != n || w.dims().back() != n))) {
      return ctx.error("w " + shapeToString(w.dims()) + " must be a scalar or [" + std::to_string(n) +
                       "] along x's last axis " + shapeToString(x.dims()));
    }
    ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, x.dims());
    if (y.numel() == 0) return Status::ok();
    const int64_t rows = x.numel() / n;
    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    float* yp = y.mutableData<float>();
    const int64_t wStride = perElement ? 1 : 0;
    const float eps = epsilon_;
    const float count = static_cast<float>(n);
    parallelChunks(rows, ctx.threads(), std::max<int64_t>(1, kParallelGrain / n), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* xr = xp + r * n;
        const float denom = std::sqrt(sumSquares(xr, n) / count + eps);
        scaleRow(xr, denom, wp, wStride, yp + r * n, n);
      }
    });
    return Status::ok();
  }

 private:
  float epsilon_;
};

}  // namespace

void registerRmsNormKernels(KernelRegistry& registry) {
  registry.add("com.whittle.internal", "RmsNorm", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<RmsNormKernel>(info.node.attrFloat("epsilon", 0.f)));
  });
}

}  // namespace whittle::runtime::cpu
