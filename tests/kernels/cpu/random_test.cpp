// The random generators (kernels/cpu/random.cpp): shapes and dtypes, the sample statistics of
// each distribution, repeatable sequences for a seed, Bernoulli's extremes, and bad input.
#include <cmath>

#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;

namespace {
std::vector<double> values(const ir::Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.valueAsDouble(i));
  return v;
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double variance(const std::vector<double>& v) {
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size());
}
}  // namespace

TEST_CASE("random generators draw from their distributions", "[kernels][random]") {
  std::vector<ir::Attribute> uniform = {ir::Attribute::makeInts("shape", {100, 100}),
                                        ir::Attribute::makeFloat("low", -2.0f), ir::Attribute::makeFloat("high", 4.0f),
                                        ir::Attribute::makeFloat("seed", 3.0f)};
  auto u = runDomainNode("", 20, "RandomUniform", {}, uniform);
  REQUIRE(u.isOk());
  std::vector<double> uv = values((*u)[0]);
  CHECK((*u)[0].dtype() == ir::DataType::kFloat);
  CHECK(*std::min_element(uv.begin(), uv.end()) >= -2.0);
  CHECK(*std::max_element(uv.begin(), uv.end()) < 4.0);
  CHECK(mean(uv) == Approx(1.0).margin(0.05));
  CHECK(variance(uv) == Approx(3.0).margin(0.1));  // (high - low)^2 / 12
  auto again = runDomainNode("", 20, "RandomUniform", {}, uniform);
  REQUIRE(again.isOk());
  CHECK((*again)[0].bitwiseEqual((*u)[0]));  // the same seed, the same sequence
  ir::Tensor like = ir::Tensor(ir::DataType::kDouble, {50, 40});
  auto n = runDomainNode("", 20, "RandomNormalLike", {like},
                         {ir::Attribute::makeFloat("mean", 5.0f), ir::Attribute::makeFloat("scale", 2.0f)});
  REQUIRE(n.isOk());
  CHECK((*n)[0].dtype() == ir::DataType::kDouble);
  CHECK((*n)[0].dims() == like.dims());
  CHECK(mean(values((*n)[0])) == Approx(5.0).margin(0.15));
  CHECK(std::sqrt(variance(values((*n)[0]))) == Approx(2.0).margin(0.1));
  auto nf = runDomainNode("", 20, "RandomNormal", {},
                          {ir::Attribute::makeInts("shape", {3}), ir::Attribute::makeInt("dtype", 10)});
  REQUIRE(nf.isOk());
  CHECK((*nf)[0].dtype() == ir::DataType::kFloat16);
  auto ul = runDomainNode("", 20, "RandomUniformLike", {ir::Tensor(ir::DataType::kFloat, {7})}, {});
  REQUIRE(ul.isOk());
  CHECK((*ul)[0].dims() == std::vector<int64_t>{7});
  std::vector<float> p(4000);
  for (size_t i = 0; i < p.size(); ++i) p[i] = i % 4 == 0 ? 0.0f : (i % 4 == 1 ? 1.0f : 0.3f);
  auto b = runDomainNode("", 20, "Bernoulli", {ir::Tensor::fromVector<float>(ir::DataType::kFloat, {4000}, p)},
                         {ir::Attribute::makeInt("dtype", 7)});
  REQUIRE(b.isOk());
  CHECK((*b)[0].dtype() == ir::DataType::kInt64);
  double ones = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    int64_t v = (*b)[0].data<int64_t>()[i];
    if (i % 4 == 0) CHECK(v == 0);
    if (i % 4 == 1) CHECK(v == 1);
    if (i % 4 >= 2) ones += static_cast<double>(v);
  }
  CHECK(ones / 2000.0 == Approx(0.3).margin(0.04));
}

TEST_CASE("random generators refuse bad input naming the node", "[kernels][random]") {
  CHECK_THAT(failureOf(runDomainNode("", 20, "RandomUniform", {},
                                     {ir::Attribute::makeInts("shape", {2}), ir::Attribute::makeFloat("low", 1.0f),
                                      ir::Attribute::makeFloat("high", 1.0f)})),
             Catch::Contains("RandomUniform 'node'") && Catch::Contains("low must be below high"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "RandomNormal", {}, {})), Catch::Contains("'shape' is required"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "RandomNormal", {},
                                     {ir::Attribute::makeInts("shape", {2}), ir::Attribute::makeInt("dtype", 6)})),
             Catch::Contains("not a floating-point type"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "Bernoulli",
                                     {ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1}, {1.5f})}, {})),
             Catch::Contains("Bernoulli 'node'") && Catch::Contains("outside [0, 1]"));
}
