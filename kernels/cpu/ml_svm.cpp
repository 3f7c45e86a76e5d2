// ai.onnx.ml SVMRegressor: support vector regression (and one-class SVM) with the LINEAR, POLY,
// RBF and SIGMOID kernels, or the linear form (coefficients against X) when n_supports is 0, as
// sklearn's SVR, NuSVR, LinearSVR and OneClassSVM convert to. Sums in double; checked against
// ONNX Runtime 1.32 (tests/kernels/cpu/ml_test.cpp). SVMClassifier is not run yet.
#include <cmath>

#include "cpu/families.h"
#include "cpu/ml_common.h"

namespace whittle::runtime::cpu {
namespace {

using namespace ml;
using KernelPtr = Expected<std::unique_ptr<Kernel>>;

enum class SvmKernel { kLinear, kPoly, kRbf, kSigmoid };

struct SvmParams {
  SvmKernel kernel = SvmKernel::kLinear;
  double gamma = 0, coef0 = 0, degree = 0;
};

/// K(x, v) over `n` features.
double svmKernel(const SvmParams& p, const double* x, const float* v, int64_t n) {
  double s = 0;
  if (p.kernel == SvmKernel::kRbf) {
    for (int64_t i = 0; i < n; ++i) {
      double d = x[i] - v[i];
      s += d * d;
    }
    return std::exp(-p.gamma * s);
  }
  for (int64_t i = 0; i < n; ++i) s += x[i] * v[i];
  switch (p.kernel) {
    case SvmKernel::kPoly:
      return std::pow(p.gamma * s + p.coef0, p.degree);
    case SvmKernel::kSigmoid:
      return std::tanh(p.gamma * s + p.coef0);
    default:
      return s;
  }
}

Expected<SvmParams> readSvmParams(const KernelCreateInfo& info) {
  SvmParams p;
  std::string kernel = info.node.attrString("kernel_type", "LINEAR");
  if (kernel == "LINEAR") {
    p.kernel = SvmKernel::kLinear;
  } else if (kernel == "POLY") {
    p.kernel = SvmKernel::kPoly;
  } else if (kernel == "RBF") {
    p.kernel = SvmKernel::kRbf;
  } else if (kernel == "SIGMOID") {
    p.kernel = SvmKernel::kSigmoid;
  } else {
    return info.error("kernel_type '" + kernel + "' is not LINEAR, POLY, RBF or SIGMOID");
  }
  std::vector<float> params = info.node.attrFloats("kernel_params");  // gamma, coef0, degree
  if (!params.empty() && params.size() != 3) return info.error("kernel_params must hold gamma, coef0 and degree");
  if (params.size() == 3) {
    p.gamma = params[0];
    p.coef0 = params[1];
    p.degree = params[2];
  }
  return p;
}

KernelPtr makeSvmRegressor(const KernelCreateInfo& info) {
  const ir::Node& n = info.node;
  WH_ASSIGN_OR_RETURN(SvmParams params, readSvmParams(info));
  std::vector<float> coefficients = n.attrFloats("coefficients"), supports = n.attrFloats("support_vectors");
  std::vector<float> rho = n.attrFloats("rho");
  int64_t count = n.attrInt("n_supports", 0);
  bool oneClass = n.attrInt("one_class", 0) != 0;
  WH_ASSIGN_OR_RETURN(PostTransform post, readPostTransform(info));
  if (rho.empty()) return info.error("rho is required");
  if (coefficients.empty()) return info.error("coefficients are required");
  if (count < 0) return info.error("n_supports is negative");
  if (count > 0) {
    if (static_cast<int64_t>(coefficients.size()) != count || supports.empty() ||
        static_cast<int64_t>(supports.size()) % count != 0) {
      return info.error(std::to_string(count) + " support vectors need as many coefficients (got " +
                        std::to_string(coefficients.size()) + ") and a multiple of them in support_vectors (got " +
                        std::to_string(supports.size()) + ")");
    }
  }
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(auto rc, rowsAndColumns(ctx, x));
    auto [rows, features] = rc;
    int64_t expected = count > 0 ? static_cast<int64_t>(supports.size()) / count
                                 : static_cast<int64_t>(coefficients.size());
    if (features != expected) {
      return ctx.error("X has " + std::to_string(features) + " features; the model has " + std::to_string(expected));
    }
    auto* y = ctx.allocateOutput(0, ir::DataType::kFloat, {rows, 1}).mutableData<float>();
    std::vector<double> row(static_cast<size_t>(features));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t f = 0; f < features; ++f) row[static_cast<size_t>(f)] = x.valueAsDouble(r * features + f);
      double score = rho[0];
      if (count > 0) {
        for (int64_t k = 0; k < count; ++k) {
          score += coefficients[static_cast<size_t>(k)] *
                   svmKernel(params, row.data(), supports.data() + k * features, features);
        }
      } else {
        score += svmKernel(SvmParams{}, row.data(), coefficients.data(), features);
      }
      if (oneClass) score = score > 0 ? 1.0 : -1.0;
      if (post == PostTransform::kProbit) score = probit(score);  // the one transform of one target
      y[r] = static_cast<float>(score);
    }
    return Status::ok();
  });
}

}  // namespace

void registerMlSvmKernels(KernelRegistry& r) {
  r.add("ai.onnx.ml", "SVMRegressor", 1, makeSvmRegressor);
}

}  // namespace whittle::runtime::cpu
