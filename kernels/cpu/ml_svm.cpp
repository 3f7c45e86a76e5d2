// ai.onnx.ml SVMRegressor and SVMClassifier. SVMRegressor: support vector regression (and one-class SVM) with the LINEAR, POLY,
// RBF and SIGMOID kernels, or the linear form (coefficients against X) when n_supports is 0, as
// sklearn's SVR, NuSVR, LinearSVR and OneClassSVM convert to. Sums in double; checked against
// ONNX Runtime 1.32 (tests/kernels/cpu/ml_test.cpp); and SVMClassifier: one-vs-one voting over
// the pairs of classes, with prob_a/prob_b the Platt-scaled pairwise probabilities coupled into
// class probabilities as libsvm and ONNX Runtime do (in float, its iteration and stopping rule),
// or the linear form (one coefficient row per class) when there are no support vectors. The
// label is the vote (support vectors) or the best score, with ONNX Runtime's binary rule.
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

// ---- SVMClassifier ----

struct SvmClassifierConfig {
  SvmParams params;
  std::vector<float> coefficients, supports, rho, probA, probB;
  std::vector<int64_t> perClass, start;  // support vectors per class and where each class's begin
  std::vector<int64_t> intLabels;
  std::vector<std::string> stringLabels;
  int64_t classes = 0, vectors = 0, features = 0;
  bool svc = false;  // support vectors (else the linear form: one coefficient row per class)
  bool allPositive = true;
  PostTransform post = PostTransform::kNone;
};

/// libsvm's pairwise coupling (Wu, Lin and Weng 2004, method 2) as ONNX Runtime runs it, in float:
/// class probabilities p from the pairwise probabilities r[i * k + j] = P(i | i or j).
void couplePairwise(int64_t k, const std::vector<float>& r, float* p) {
  auto at = [k](int64_t i, int64_t j) { return static_cast<size_t>(i * k + j); };
  std::vector<float> q(static_cast<size_t>(k * k), 0.0f), qp(static_cast<size_t>(k), 0.0f);
  for (int64_t i = 0; i < k; ++i) {
    p[i] = 1.0f / static_cast<float>(k);
    for (int64_t j = 0; j < k; ++j) {
      if (j == i) continue;
      q[at(i, i)] += r[at(j, i)] * r[at(j, i)];
      q[at(i, j)] = j < i ? q[at(j, i)] : -r[at(j, i)] * r[at(i, j)];
    }
  }
  float eps = 0.005f / static_cast<float>(k);
  for (int iteration = 0; iteration < 100; ++iteration) {
    float pqp = 0;
    for (int64_t i = 0; i < k; ++i) {
      qp[static_cast<size_t>(i)] = 0;
      for (int64_t j = 0; j < k; ++j) qp[static_cast<size_t>(i)] += q[at(i, j)] * p[j];
      pqp += p[i] * qp[static_cast<size_t>(i)];
    }
    float maxError = 0;
    for (int64_t i = 0; i < k; ++i) maxError = std::max(maxError, std::fabs(qp[static_cast<size_t>(i)] - pqp));
    if (maxError < eps) break;
    for (int64_t i = 0; i < k; ++i) {
      float diff = (-qp[static_cast<size_t>(i)] + pqp) / q[at(i, i)];
      p[i] += diff;
      pqp = (pqp + diff * (diff * q[at(i, i)] + 2 * qp[static_cast<size_t>(i)])) / (1 + diff) / (1 + diff);
      for (int64_t j = 0; j < k; ++j) {
        qp[static_cast<size_t>(j)] = (qp[static_cast<size_t>(j)] + diff * q[at(i, j)]) / (1 + diff);
        p[j] /= (1 + diff);
      }
    }
  }
}

KernelPtr makeSvmClassifier(const KernelCreateInfo& info) {
  const ir::Node& n = info.node;
  auto c = std::make_shared<SvmClassifierConfig>();
  WH_ASSIGN_OR_RETURN(c->params, readSvmParams(info));
  WH_ASSIGN_OR_RETURN(c->post, readPostTransform(info));
  c->coefficients = n.attrFloats("coefficients");
  c->supports = n.attrFloats("support_vectors");
  c->rho = n.attrFloats("rho");
  c->probA = n.attrFloats("prob_a");
  c->probB = n.attrFloats("prob_b");
  c->perClass = n.attrInts("vectors_per_class");
  WH_RETURN_IF_ERROR(readClassLabels(info, "classlabels_ints", c->intLabels, c->stringLabels));
  c->classes = static_cast<int64_t>(std::max(c->intLabels.size(), c->stringLabels.size()));
  if (c->classes < 2) return info.error("a classifier needs at least two class labels");
  if (c->coefficients.empty()) return info.error("coefficients are required");
  if (c->rho.empty()) return info.error("rho is required");
  if (c->probA.size() != c->probB.size()) return info.error("prob_a and prob_b differ in length");
  for (int64_t v : c->perClass) {
    if (v < 0) return info.error("vectors_per_class holds a negative count");
    c->start.push_back(c->vectors);
    c->vectors += v;
  }
  int64_t pairs = c->classes * (c->classes - 1) / 2;
  c->svc = c->vectors > 0;
  if (c->svc) {
    if (static_cast<int64_t>(c->perClass.size()) != c->classes) {
      return info.error("vectors_per_class has " + std::to_string(c->perClass.size()) + " counts for " +
                        std::to_string(c->classes) + " classes");
    }
    if (c->supports.empty() || static_cast<int64_t>(c->supports.size()) % c->vectors != 0) {
      return info.error("support_vectors (" + std::to_string(c->supports.size()) + " values) do not split into " +
                        std::to_string(c->vectors) + " vectors");
    }
    c->features = static_cast<int64_t>(c->supports.size()) / c->vectors;
    if (static_cast<int64_t>(c->coefficients.size()) < (c->classes - 1) * c->vectors) {
      return info.error("coefficients hold " + std::to_string(c->coefficients.size()) + " values, not (classes - 1) x " +
                        std::to_string(c->vectors) + " vectors");
    }
    if (static_cast<int64_t>(c->rho.size()) < pairs) return info.error("rho needs one value per pair of classes");
    if (!c->probA.empty() && static_cast<int64_t>(c->probA.size()) < pairs) {
      return info.error("prob_a and prob_b need one value per pair of classes");
    }
  } else {
    if (static_cast<int64_t>(c->coefficients.size()) % c->classes != 0) {
      return info.error("coefficients (" + std::to_string(c->coefficients.size()) + " values) do not split into " +
                        std::to_string(c->classes) + " classes");
    }
    c->features = static_cast<int64_t>(c->coefficients.size()) / c->classes;
  }
  for (float w : c->coefficients) c->allPositive = c->allPositive && w >= 0;
  return makeFunctionKernel([c](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(auto rc, rowsAndColumns(ctx, x));
    auto [rows, features] = rc;
    if (features != c->features) {
      return ctx.error("X has " + std::to_string(features) + " features; the model has " +
                       std::to_string(c->features));
    }
    int64_t k = c->classes, pairs = k * (k - 1) / 2;
    bool proba = !c->probA.empty();
    // Z: class scores (linear form, or probabilities), else one decision value per pair
    // (two columns for two classes).
    int64_t columns = !c->svc || proba ? k : (k > 2 ? pairs : 2);
    LabelOutput labels(ctx, rows, c->intLabels, c->stringLabels);
    auto* zOut = ctx.allocateOutput(1, ir::DataType::kFloat, {rows, columns}).mutableData<float>();
    std::vector<double> row(static_cast<size_t>(features)), kernels(static_cast<size_t>(c->vectors));
    std::vector<double> z(static_cast<size_t>(std::max(columns, pairs)));
    std::vector<float> decision(static_cast<size_t>(pairs)), pairwise(static_cast<size_t>(k * k));
    std::vector<float> probabilities(static_cast<size_t>(k));
    std::vector<int64_t> votes(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t f = 0; f < features; ++f) row[static_cast<size_t>(f)] = x.valueAsDouble(r * features + f);
      int64_t best = 0;
      double bestScore = 0;
      if (!c->svc) {
        for (int64_t j = 0; j < k; ++j) {
          double score = c->rho[0] + svmKernel(SvmParams{}, row.data(), c->coefficients.data() + j * features, features);
          z[static_cast<size_t>(j)] = static_cast<float>(score);
          if (j == 0 || z[static_cast<size_t>(j)] > bestScore) {
            best = j;
            bestScore = z[static_cast<size_t>(j)];
          }
        }
      } else {
        for (int64_t v = 0; v < c->vectors; ++v) {
          kernels[static_cast<size_t>(v)] =
              static_cast<float>(svmKernel(c->params, row.data(), c->supports.data() + v * features, features));
        }
        std::fill(votes.begin(), votes.end(), 0);
        size_t pair = 0;
        for (int64_t i = 0; i + 1 < k; ++i) {
          for (int64_t j = i + 1; j < k; ++j, ++pair) {
            // Class i's vectors weigh with row j - 1 of the coefficients, class j's with row i.
            double sum = 0;
            for (int64_t m = 0; m < c->perClass[static_cast<size_t>(i)]; ++m) {
              int64_t v = c->start[static_cast<size_t>(i)] + m;
              sum += static_cast<double>(c->coefficients[static_cast<size_t>((j - 1) * c->vectors + v)]) *
                     kernels[static_cast<size_t>(v)];
            }
            for (int64_t m = 0; m < c->perClass[static_cast<size_t>(j)]; ++m) {
              int64_t v = c->start[static_cast<size_t>(j)] + m;
              sum += static_cast<double>(c->coefficients[static_cast<size_t>(i * c->vectors + v)]) *
                     kernels[static_cast<size_t>(v)];
            }
            sum += c->rho[pair];
            decision[pair] = static_cast<float>(sum);
            ++votes[static_cast<size_t>(sum > 0 ? i : j)];
          }
        }
        best = std::max_element(votes.begin(), votes.end()) - votes.begin();
        if (proba) {
          // Platt scaling of each pair's decision value, clamped, then coupled into class probabilities.
          std::fill(pairwise.begin(), pairwise.end(), 0.0f);
          pair = 0;
          for (int64_t i = 0; i + 1 < k; ++i) {
            for (int64_t j = i + 1; j < k; ++j, ++pair) {
              auto p = static_cast<float>(
                  logistic(-(static_cast<double>(decision[pair]) * c->probA[pair] + c->probB[pair])));
              p = std::min(std::max(p, 1.0e-7f), 1 - 1.0e-7f);
              pairwise[static_cast<size_t>(i * k + j)] = p;
              pairwise[static_cast<size_t>(j * k + i)] = 1 - p;
            }
          }
          couplePairwise(k, pairwise, probabilities.data());
          for (int64_t j = 0; j < k; ++j) z[static_cast<size_t>(j)] = probabilities[static_cast<size_t>(j)];
        } else {
          for (int64_t p = 0; p < pairs; ++p) z[static_cast<size_t>(p)] = decision[static_cast<size_t>(p)];
        }
      }
      // The label: two classes without probabilities follow ONNX Runtime's binary rule on the
      // best linear score (0 for support vectors, whose label is the vote).
      auto label = static_cast<size_t>(best);
      if (k == 2 && !proba && ((c->allPositive && bestScore >= 0.5) || (!c->allPositive && bestScore > 0))) label = 1;
      // Post transform: over the columns, or the binary widening of one decision value.
      if (c->svc && !proba && k == 2) {
        // One decision value s, widened as ONNX Runtime 1.32 does: NONE [-s, s], LOGISTIC
        // [1 - σ(s), σ(s)], SOFTMAX and SOFTMAX_ZERO [1 - s, s], PROBIT [probit(s), s].
        double v = z[0];
        if (c->post == PostTransform::kNone) {
          widenBinaryScore(c->post, 2, v, z.data());
        } else if (c->post == PostTransform::kProbit) {
          z[0] = probit(v);
          z[1] = v;
        } else {
          widenBinaryScore(PostTransform::kNone, 0, c->post == PostTransform::kLogistic ? logistic(v) : v, z.data());
        }
      } else {
        postTransform(c->post, z.data(), columns);
      }
      for (int64_t j = 0; j < columns; ++j) zOut[r * columns + j] = static_cast<float>(z[static_cast<size_t>(j)]);
      labels.set(r, label);
    }
    labels.finish();
    return Status::ok();
  });
}

}  // namespace

void registerMlSvmKernels(KernelRegistry& r) {
  r.add("ai.onnx.ml", "SVMRegressor", 1, makeSvmRegressor);
  r.add("ai.onnx.ml", "SVMClassifier", 1, makeSvmClassifier);
}

}  // namespace whittle::runtime::cpu
