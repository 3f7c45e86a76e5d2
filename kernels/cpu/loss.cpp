// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (opsets 12 to 22), float32 and float64.
//
//   input [N, C, d1..dk], target [N, d1..dk] (int32/int64), weight [C] (optional)
//   loss[n, d] = -input[n, target[n, d], d] * w[target[n, d]]   (0 where target == ignore_index)
//   reduction none: loss; sum: sum(loss); mean: sum(loss) / sum(w[target]) over the kept elements
// SoftmaxCrossEntropyLoss computes log_prob = LogSoftmax(scores, axis 1) first (its optional
// second output) and then the same loss on it.
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

enum class Reduction { kNone, kSum, kMean };

Expected<Reduction> parseReduction(const KernelCreateInfo& info) {
  std::string r = info.node.attrString("reduction", "mean");
  if (r == "none") return Reduction::kNone;
  if (r == "sum") return Reduction::kSum;
  if (r == "mean") return Reduction::kMean;
  return info.error("reduction must be 'none', 'sum' or 'mean', got '" + r + "'");
}

/// The shared checks: input [N, C, d...], target [N, d...], weight [C].
Status checkLossShapes(const KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& target, const ir::Tensor* weight) {
  if (x.rank() < 2) return ctx.error("input must have rank >= 2 ([N, C, d1, ...]), got " + shapeToString(x.dims()));
  if (x.dtype() != ir::DataType::kFloat && x.dtype() != ir::DataType::kDouble)
    return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) +
                           " is not supported (float32 and float64 are)");
  if (target.dtype() != ir::DataType::kInt64 && target.dtype() != ir::DataType::kInt32)
    return ctx.error("target must be int32 or int64, got " + std::string(ir::dataTypeName(target.dtype())));
  std::vector<int64_t> want = {x.dims()[0]};
  want.insert(want.end(), x.dims().begin() + 2, x.dims().end());
  if (target.dims() != want)
    return ctx.error("target has shape " + shapeToString(target.dims()) + ", expected " + shapeToString(want) +
                     " for input " + shapeToString(x.dims()));
  if (weight != nullptr) {
    if (weight->dtype() != x.dtype()) return ctx.error("weight must have the dtype of the input");
    if (weight->dims() != std::vector<int64_t>{x.dims()[1]})
      return ctx.error("weight has shape " + shapeToString(weight->dims()) + ", expected [" +
                       std::to_string(x.dims()[1]) + "]");
  }
  return Status::ok();
}

int64_t targetAt(const ir::Tensor& t, int64_t i) {
  return t.dtype() == ir::DataType::kInt64 ? t.data<int64_t>()[i] : t.data<int32_t>()[i];
}

/// The loss of `logp` (log-probabilities or any scores, [N, C, D] flattened) into output 0.
template <typename T>
Status lossOf(KernelContext& ctx, const T* logp, const ir::Tensor& x, const ir::Tensor& target,
              const ir::Tensor* weight, Reduction reduction, int64_t ignoreIndex) {
  const auto& dims = x.dims();
  int64_t n = dims[0], c = dims[1], d = 1;
  for (size_t i = 2; i < dims.size(); ++i) d *= dims[i];
  const T* w = weight != nullptr ? weight->data<T>() : nullptr;
  int64_t count = n * d;
  std::vector<T> loss(static_cast<size_t>(count));
  std::vector<T> wt(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    int64_t t = targetAt(target, i);
    if (t == ignoreIndex) {
      loss[static_cast<size_t>(i)] = T(0);
      wt[static_cast<size_t>(i)] = T(0);
      continue;
    }
    if (t < 0 || t >= c)
      return ctx.error("target value " + std::to_string(t) + " at " + std::to_string(i) + " is outside [0, " +
                       std::to_string(c) + ") and is not ignore_index");
    int64_t b = i / d, s = i % d;
    T wi = w != nullptr ? w[t] : T(1);
    loss[static_cast<size_t>(i)] = -logp[(b * c + t) * d + s] * wi;
    wt[static_cast<size_t>(i)] = wi;
  }
  if (reduction == Reduction::kNone) {
    std::vector<int64_t> outDims = target.dims();
    T* y = ctx.allocateOutput(0, x.dtype(), outDims).template mutableData<T>();
    for (int64_t i = 0; i < count; ++i) y[i] = loss[static_cast<size_t>(i)];
    return Status::ok();
  }
  // Sums in double: the count can be large, and both reductions must not drift with it.
  double sum = 0, wsum = 0;
  for (int64_t i = 0; i < count; ++i) {
    sum += static_cast<double>(loss[static_cast<size_t>(i)]);
    wsum += static_cast<double>(wt[static_cast<size_t>(i)]);
  }
  T* y = ctx.allocateOutput(0, x.dtype(), {}).template mutableData<T>();
  y[0] = static_cast<T>(reduction == Reduction::kSum ? sum : sum / wsum);
  return Status::ok();
}

KernelPtr makeNll(const KernelCreateInfo& info) {
  WH_ASSIGN_OR_RETURN(Reduction reduction, parseReduction(info));
  bool hasIgnore = info.node.hasAttribute("ignore_index");
  int64_t ignore = hasIgnore ? info.node.attrInt("ignore_index", 0) : std::numeric_limits<int64_t>::min();
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& target = ctx.input(1);
    const ir::Tensor* weight = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
    WH_RETURN_IF_ERROR(checkLossShapes(ctx, x, target, weight));
    if (x.dtype() == ir::DataType::kDouble)
      return lossOf<double>(ctx, x.data<double>(), x, target, weight, reduction, ignore);
    return lossOf<float>(ctx, x.data<float>(), x, target, weight, reduction, ignore);
  });
}

/// log_prob = LogSoftmax over axis 1 of [N, C, D] into `out`.
template <typename T>
void logSoftmaxAxis1(const T* x, T* out, int64_t n, int64_t c, int64_t d) {
  bool parallel = n * c * d > 32768;
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t s = 0; s < d; ++s) {
      const T* xs = x + b * c * d + s;
      T* os = out + b * c * d + s;
      T m = xs[0];
      for (int64_t k = 1; k < c; ++k) m = std::max(m, xs[k * d]);
      double sum = 0;
      for (int64_t k = 0; k < c; ++k) sum += std::exp(static_cast<double>(xs[k * d] - m));
      T lse = m + static_cast<T>(std::log(sum));
      for (int64_t k = 0; k < c; ++k) os[k * d] = xs[k * d] - lse;
    }
  }
}

template <typename T>
Status runSce(KernelContext& ctx, Reduction reduction, int64_t ignore) {
  const ir::Tensor& x = ctx.input(0);
  const ir::Tensor& target = ctx.input(1);
  const ir::Tensor* weight = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
  const auto& dims = x.dims();
  int64_t n = dims[0], c = dims[1], d = 1;
  for (size_t i = 2; i < dims.size(); ++i) d *= dims[i];
  // log_prob goes straight into output 1 when it is wanted, else into a scratch tensor.
  ir::Tensor scratch;
  T* logp = nullptr;
  if (ctx.hasOutput(1)) {
    logp = ctx.allocateOutput(1, x.dtype(), dims).template mutableData<T>();
  } else {
    scratch = ir::Tensor(x.dtype(), dims);
    logp = scratch.template mutableData<T>();
  }
  if (x.numel() > 0) logSoftmaxAxis1(x.data<T>(), logp, n, c, d);
  return lossOf<T>(ctx, logp, x, target, weight, reduction, ignore);
}

KernelPtr makeSce(const KernelCreateInfo& info) {
  WH_ASSIGN_OR_RETURN(Reduction reduction, parseReduction(info));
  bool hasIgnore = info.node.hasAttribute("ignore_index");
  int64_t ignore = hasIgnore ? info.node.attrInt("ignore_index", 0) : std::numeric_limits<int64_t>::min();
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor* weight = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
    WH_RETURN_IF_ERROR(checkLossShapes(ctx, x, ctx.input(1), weight));
    if (x.dtype() == ir::DataType::kDouble) return runSce<double>(ctx, reduction, ignore);
    return runSce<float>(ctx, reduction, ignore);
  });
}

}  // namespace

void registerLossKernels(KernelRegistry& registry) {
  registry.add("", "NegativeLogLikelihoodLoss", 12, makeNll);
  registry.add("", "SoftmaxCrossEntropyLoss", 12, makeSce);
}

}  // namespace whittle::runtime::cpu
