// The ai.onnx.preview.training optimizers Adagrad, Adam and Momentum (standard and Nesterov):
// one update step of n tensors at once. Inputs are R (learning rate), T (update count), then
// the n tensors X, their gradients G and the optimizer's states (Adagrad: H; Adam: V, H;
// Momentum: V), each group n long; outputs are the new X and the new states, in that order.
// float32 and float64; computed in double and stored once.
#include <cmath>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/value_io.h"

namespace whittle::runtime::cpu {
namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

enum class Optimizer { kAdagrad, kAdam, kMomentum };

struct OptimizerAttrs {
  Optimizer kind = Optimizer::kAdagrad;
  double decayFactor = 0, epsilon = 0, normCoefficient = 0, normCoefficientPost = 0, alpha = 0, beta = 0;
  bool nesterov = false;
};

/// Number of per-tensor input groups after R and T: X, G and the states.
size_t groupCount(Optimizer kind) {
  return kind == Optimizer::kAdam ? 4 : 3;
}

Status runOptimizer(KernelContext& ctx, const OptimizerAttrs& a) {
  size_t groups = groupCount(a.kind);
  if (ctx.numInputs() < 2 + groups || (ctx.numInputs() - 2) % groups != 0) {
    return ctx.error("expected R, T and " + std::to_string(groups) + " groups of n tensors, got " +
                     std::to_string(ctx.numInputs()) + " inputs");
  }
  size_t n = (ctx.numInputs() - 2) / groups;
  if (ctx.numOutputs() != (groups - 1) * n) {
    return ctx.error("expected " + std::to_string((groups - 1) * n) + " outputs for " + std::to_string(n) +
                     " tensors, got " + std::to_string(ctx.numOutputs()));
  }
  auto r = scalarAsDouble(ctx.input(0));
  const ir::Tensor& tTensor = ctx.input(1);
  if (!r || !ir::isFloatingPoint(ctx.input(0).dtype())) return ctx.error("R must be one floating-point value");
  if (tTensor.numel() != 1 || tTensor.dtype() != ir::DataType::kInt64) return ctx.error("T must be one int64 value");
  double t = tTensor.valueAsDouble(0);
  for (size_t i = 0; i < n; ++i) {
    const ir::Tensor& x = ctx.input(2 + i);
    if (x.dtype() != ir::DataType::kFloat && x.dtype() != ir::DataType::kDouble) {
      return ctx.unsupported("X" + std::to_string(i) + " has dtype " + std::string(ir::dataTypeName(x.dtype())) +
                             "; float32 and float64 are supported");
    }
    for (size_t g = 1; g < groups; ++g) {
      const ir::Tensor& other = ctx.input(2 + g * n + i);
      if (other.dtype() != x.dtype() || other.dims() != x.dims()) {
        return ctx.error("input " + std::to_string(2 + g * n + i) + " must have X" + std::to_string(i) +
                         "'s dtype and shape " + shapeToString(x.dims()) + ", got " + shapeToString(other.dims()));
      }
    }
  }
  // Learning rate (Adagrad: decayed; Adam: bias-corrected) and the gradient's coefficient.
  double rate = *r;
  if (a.kind == Optimizer::kAdagrad) rate = *r / (1.0 + t * a.decayFactor);
  if (a.kind == Optimizer::kAdam && t > 0)
    rate = *r * std::sqrt(1.0 - std::pow(a.beta, t)) / (1.0 - std::pow(a.alpha, t));
  double gradientScale = a.kind == Optimizer::kMomentum && t <= 0 ? 1.0 : a.beta;
  for (size_t i = 0; i < n; ++i) {
    const ir::Tensor& x = ctx.input(2 + i);
    const ir::Tensor& g = ctx.input(2 + n + i);
    const ir::Tensor& s1 = ctx.input(2 + 2 * n + i);
    ir::Tensor& xNew = ctx.allocateOutput(i, x.dtype(), x.dims());
    ir::Tensor& s1New = ctx.allocateOutput(n + i, x.dtype(), x.dims());
    ir::Tensor* s2New = a.kind == Optimizer::kAdam ? &ctx.allocateOutput(2 * n + i, x.dtype(), x.dims()) : nullptr;
    for (int64_t e = 0; e < x.numel(); ++e) {
      double xv = x.valueAsDouble(e);
      double gr = a.normCoefficient * xv + g.valueAsDouble(e);
      switch (a.kind) {
        case Optimizer::kAdagrad: {
          double h = s1.valueAsDouble(e) + gr * gr;
          storeDouble(s1New, e, h);
          storeDouble(xNew, e, xv - rate * gr / (std::sqrt(h) + a.epsilon));
          break;
        }
        case Optimizer::kAdam: {
          const ir::Tensor& hIn = ctx.input(2 + 3 * n + i);
          double v = a.alpha * s1.valueAsDouble(e) + (1.0 - a.alpha) * gr;
          double h = a.beta * hIn.valueAsDouble(e) + (1.0 - a.beta) * gr * gr;
          storeDouble(s1New, e, v);
          storeDouble(*s2New, e, h);
          double updated = xv - rate * v / (std::sqrt(h) + a.epsilon);
          storeDouble(xNew, e, (1.0 - a.normCoefficientPost) * updated);
          break;
        }
        case Optimizer::kMomentum: {
          double v = a.alpha * s1.valueAsDouble(e) + gradientScale * gr;
          storeDouble(s1New, e, v);
          storeDouble(xNew, e, a.nesterov ? xv - rate * (gr + a.alpha * v) : xv - rate * v);
          break;
        }
      }
    }
  }
  return Status::ok();
}

KernelPtr makeOptimizer(const KernelCreateInfo& info, Optimizer kind) {
  const ir::Node& node = info.node;
  OptimizerAttrs a;
  a.kind = kind;
  switch (kind) {
    case Optimizer::kAdagrad:
      a.decayFactor = node.attrFloat("decay_factor", 0.0f);
      a.epsilon = node.attrFloat("epsilon", 1e-6f);
      a.normCoefficient = node.attrFloat("norm_coefficient", 0.0f);
      break;
    case Optimizer::kAdam:
      a.alpha = node.attrFloat("alpha", 0.9f);
      a.beta = node.attrFloat("beta", 0.999f);
      a.epsilon = node.attrFloat("epsilon", 1e-6f);
      a.normCoefficient = node.attrFloat("norm_coefficient", 0.0f);
      a.normCoefficientPost = node.attrFloat("norm_coefficient_post", 0.0f);
      break;
    case Optimizer::kMomentum: {
      for (const char* required : {"alpha", "beta", "mode", "norm_coefficient"}) {
        if (!node.hasAttribute(required)) return info.error("attribute '" + std::string(required) + "' is required");
      }
      a.alpha = node.attrFloat("alpha", 0.0f);
      a.beta = node.attrFloat("beta", 0.0f);
      a.normCoefficient = node.attrFloat("norm_coefficient", 0.0f);
      std::string mode = node.attrString("mode", "");
      if (mode != "standard" && mode != "nesterov") {
        return info.error("mode must be 'standard' or 'nesterov', got '" + mode + "'");
      }
      a.nesterov = mode == "nesterov";
      break;
    }
  }
  return makeFunctionKernel([a](KernelContext& ctx) { return runOptimizer(ctx, a); });
}

}  // namespace

void registerTrainingKernels(KernelRegistry& r) {
  constexpr const char* kTraining = "ai.onnx.preview.training";
  r.add(kTraining, "Adagrad", 1, [](const KernelCreateInfo& i) { return makeOptimizer(i, Optimizer::kAdagrad); });
  r.add(kTraining, "Adam", 1, [](const KernelCreateInfo& i) { return makeOptimizer(i, Optimizer::kAdam); });
  r.add(kTraining, "Momentum", 1, [](const KernelCreateInfo& i) { return makeOptimizer(i, Optimizer::kMomentum); });
}

}  // namespace whittle::runtime::cpu
