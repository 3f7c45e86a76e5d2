// The ai.onnx.preview.training optimizers (kernels/cpu/training.cpp) against the update rules of
// the ONNX spec written out in double (ONNX Runtime's CPU build has no such kernels), and the
// errors for bad input.
#include <cmath>

#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;

namespace {
const std::string kTraining = "ai.onnx.preview.training";
ir::Tensor vec(std::vector<float> v) {
  return ir::Tensor::fromVector<float>(ir::DataType::kFloat, {static_cast<int64_t>(v.size())}, v);
}
ir::Tensor rate(float r) {
  return ir::Tensor::fromVector<float>(ir::DataType::kFloat, {}, {r});
}
ir::Tensor count(int64_t t) {
  return ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {}, {t});
}
}  // namespace

TEST_CASE("Adam, Adagrad and Momentum follow the spec's update rules", "[kernels][training]") {
  std::vector<float> x = {1.5f, -0.5f}, g = {0.25f, -2.0f}, v = {0.1f, 0.3f}, h = {0.5f, 2.0f};
  double r = 0.05, t = 3, alpha = 0.8, beta = 0.95, eps = 1e-4, norm = 0.01, post = 0.002;
  auto adam =
      runDomainNode(kTraining, 1, "Adam", {rate(0.05f), count(3), vec(x), vec(g), vec(v), vec(h)},
                    {ir::Attribute::makeFloat("alpha", 0.8f), ir::Attribute::makeFloat("beta", 0.95f),
                     ir::Attribute::makeFloat("epsilon", 1e-4f), ir::Attribute::makeFloat("norm_coefficient", 0.01f),
                     ir::Attribute::makeFloat("norm_coefficient_post", 0.002f)},
                    3);
  REQUIRE(adam.isOk());
  for (size_t i = 0; i < 2; ++i) {
    double gr = norm * x[i] + g[i];
    double vn = alpha * v[i] + (1 - alpha) * gr, hn = beta * h[i] + (1 - beta) * gr * gr;
    double rr = r * std::sqrt(1 - std::pow(beta, t)) / (1 - std::pow(alpha, t));
    double xn = (1 - post) * (x[i] - rr * vn / (std::sqrt(hn) + eps));
    CHECK((*adam)[0].data<float>()[i] == Approx(xn).epsilon(1e-5));
    CHECK((*adam)[1].data<float>()[i] == Approx(vn).epsilon(1e-5));
    CHECK((*adam)[2].data<float>()[i] == Approx(hn).epsilon(1e-5));
  }
  auto adagrad =
      runDomainNode(kTraining, 1, "Adagrad", {rate(0.05f), count(3), vec(x), vec(g), vec(h)},
                    {ir::Attribute::makeFloat("decay_factor", 0.1f), ir::Attribute::makeFloat("epsilon", 1e-4f)}, 2);
  REQUIRE(adagrad.isOk());
  for (size_t i = 0; i < 2; ++i) {
    double hn = h[i] + double(g[i]) * g[i];
    double xn = x[i] - (r / (1 + t * 0.1f)) * g[i] / (std::sqrt(hn) + eps);
    CHECK((*adagrad)[0].data<float>()[i] == Approx(xn).epsilon(1e-5));
    CHECK((*adagrad)[1].data<float>()[i] == Approx(hn).epsilon(1e-5));
  }
  for (const char* mode : {"standard", "nesterov"}) {
    auto m =
        runDomainNode(kTraining, 1, "Momentum", {rate(0.05f), count(0), vec(x), vec(g), vec(v)},
                      {ir::Attribute::makeFloat("alpha", 0.8f), ir::Attribute::makeFloat("beta", 0.95f),
                       ir::Attribute::makeString("mode", mode), ir::Attribute::makeFloat("norm_coefficient", 0.0f)},
                      2);
    REQUIRE(m.isOk());
    for (size_t i = 0; i < 2; ++i) {
      double vn = alpha * v[i] + 1.0 * g[i];  // T = 0: the gradient's coefficient is 1
      double xn = std::string(mode) == "standard" ? x[i] - r * vn : x[i] - r * (g[i] + alpha * vn);
      CHECK((*m)[0].data<float>()[i] == Approx(xn).epsilon(1e-5));
      CHECK((*m)[1].data<float>()[i] == Approx(vn).epsilon(1e-5));
    }
  }
}

TEST_CASE("training optimizers refuse bad input naming the node", "[kernels][training]") {
  CHECK_THAT(
      failureOf(runDomainNode(kTraining, 1, "Adagrad", {rate(0.1f), count(0), vec({1}), vec({1, 2}), vec({1})}, {}, 2)),
      Catch::Contains("Adagrad 'node'") && Catch::Contains("shape [1]"));
  CHECK_THAT(failureOf(runDomainNode(kTraining, 1, "Adam", {rate(0.1f), count(0), vec({1}), vec({1})}, {}, 3)),
             Catch::Contains("groups of n tensors"));
  CHECK_THAT(failureOf(runDomainNode(kTraining, 1, "Momentum", {rate(0.1f), count(0), vec({1}), vec({1}), vec({1})},
                                     {ir::Attribute::makeFloat("alpha", 0.9f)}, 2)),
             Catch::Contains("Momentum 'node'") && Catch::Contains("is required"));
  CHECK_THAT(
      failureOf(runDomainNode(kTraining, 1, "Adagrad", {rate(0.1f), rate(0), vec({1}), vec({1}), vec({1})}, {}, 2)),
      Catch::Contains("T must be one int64 value"));
}
