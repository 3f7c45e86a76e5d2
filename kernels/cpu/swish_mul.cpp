// com.whittle.internal SwishMul(x, u?) -> y = (x * Sigmoid(x)) * u, or x * Sigmoid(x) without u:
// the SiLU-gated unit of Llama-family MLPs (SiLU(gate) * up), which exporters write as Sigmoid,
// Mul, Mul (step U of the CPU lowering, src/runtime/lower_swish_mul.cpp). One pass over memory
// instead of three, in the unfused ops' order of rounding (the Sigmoid kernel's sigmoidFast, then
// the two products), so the outputs are the unfused ones. u broadcasts against x numpy-style; a
// u of x's dims runs the vector loop, any other the index loop.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <cmath>
#include <string>
#include <vector>

#include "cpu/elementwise_common.h"
#include "cpu/elementwise_math.h"
#include "cpu/kernel_util.h"
#include "cpu/transformer_internal.h"

namespace whittle::runtime::cpu {
namespace {

WH_SIMD_CLONES void swishMulSegment(const float* x, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * sigmoidFast(x[i])) * u[i];
}

WH_SIMD_CLONES void swishSegment(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoidFast(x[i]);
}

}  // namespace

void swishMulReference(const float* x, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    const double silu = v / (1.0 + std::exp(-v));
    y[i] = static_cast<float>(u != nullptr ? silu * u[i] : silu);
  }
}

namespace {

Status runSwishMul(KernelContext& ctx) {
  const bool gated = ctx.hasInput(1);
  const ir::Tensor& x = ctx.input(0);
  WH_RETURN_IF_ERROR(transformer::requireFloat(ctx, x, "x"));
  if (!gated) {
    ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, x.dims());
    const float* xp = x.data<float>();
    float* yp = y.mutableData<float>();
    parallelChunks(x.numel(), ctx.threads(), kParallelGrain / 2,
                   [&](int64_t b, int64_t e) { swishSegment(xp + b, yp + b, e - b); });
    return Status::ok();
  }
  const ir::Tensor& u = ctx.input(1);
  WH_RETURN_IF_ERROR(transformer::requireFloat(ctx, u, "u"));
  auto dims = broadcastShapes(x.dims(), u.dims());
  if (!dims) return ctx.error("x " + shapeToString(x.dims()) + " and u " + shapeToString(u.dims()) + " do not broadcast");
  ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, *dims);
  const float* xp = x.data<float>();
  const float* up = u.data<float>();
  float* yp = y.mutableData<float>();
  if (x.dims() == u.dims()) {
    parallelChunks(x.numel(), ctx.threads(), kParallelGrain / 2,
                   [&](int64_t b, int64_t e) { swishMulSegment(xp + b, up + b, yp + b, e - b); });
    return Status::ok();
  }
  const std::vector<int64_t> xs = broadcastStrides(x.dims(), *dims), us = broadcastStrides(u.dims(), *dims);
  const int64_t n = y.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, xo = 0, uo = 0;
    for (size_t d = dims->size(); d-- > 0;) {
      const int64_t idx = rest % (*dims)[d];
      rest /= (*dims)[d];
      xo += idx * xs[d];
      uo += idx * us[d];
    }
    yp[i] = (xp[xo] * sigmoidFast(xp[xo])) * up[uo];
  }
  return Status::ok();
}

}  // namespace

void registerSwishMulKernels(KernelRegistry& registry) {
  registry.add("com.whittle.internal", "SwishMul", 1,
               [](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> { return makeFunctionKernel(runSwishMul); });
}

}  // namespace whittle::runtime::cpu
