// GPTQ: on correlated inputs the layer output error is well below RTN's with the same blocks.
#include "whittle/quant/gptq.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <random>

using namespace whittle;

namespace {

// E[x^T x] of inputs x = z A with z ~ N(0, 1) and a random mixing A (strongly correlated channels).
std::vector<double> correlatedSecondMoment(int64_t k, int64_t samples, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0, 1);
  std::vector<double> a(static_cast<size_t>(k * k));
  for (double& v : a) v = d(rng);
  std::vector<double> h(static_cast<size_t>(k * k), 0.0), x(static_cast<size_t>(k)), z(static_cast<size_t>(k));
  for (int64_t s = 0; s < samples; ++s) {
    for (double& v : z) v = d(rng);
    for (int64_t j = 0; j < k; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < k / 4; ++i) acc += z[static_cast<size_t>(i)] * a[static_cast<size_t>(i * k + j)];
      x[static_cast<size_t>(j)] = acc + 0.05 * z[static_cast<size_t>(j)];
    }
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) h[static_cast<size_t>(i * k + j)] += x[static_cast<size_t>(i)] * x[static_cast<size_t>(j)];
    }
  }
  for (double& v : h) v /= static_cast<double>(samples);
  return h;
}

}  // namespace

TEST_CASE("GPTQ lowers the layer output error against RTN on correlated inputs", "[quant][weights][gptq]") {
  const int64_t rows = 32, k = 64;
  std::vector<double> h = correlatedSecondMoment(k, 2000, 5);
  std::mt19937_64 rng(9);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> w(static_cast<size_t>(rows * k));
  for (float& v : w) v = d(rng);
  const quant::BlockConfig config{4, 32, true, true};
  const double rtn = quant::relativeOutputError(w, quant::quantizeRtn(w, rows, k, config), h);
  for (bool actOrder : {true, false}) {
    quant::GptqOptions options;
    options.actOrder = actOrder;
    options.blockSize = 16;  // exercises the lazy batch updates
    auto g = quant::quantizeGptq(w, rows, k, h, config, options);
    REQUIRE(g.isOk());
    const double gptq = quant::relativeOutputError(w, *g, h);
    INFO("act-order " << actOrder << ": RTN " << rtn << ", GPTQ " << gptq);
    CHECK(gptq < 0.6 * rtn);
  }
  // A wrong Hessian size is an error, not a crash.
  CHECK_FALSE(quant::quantizeGptq(w, rows, k, std::vector<double>(10, 0.0), config, {}).isOk());
}

TEST_CASE("GPTQ handles dead input channels", "[quant][weights][gptq]") {
  const int64_t rows = 8, k = 32;
  std::vector<double> h = correlatedSecondMoment(k, 500, 2);
  for (int64_t j = 0; j < k; ++j) {  // channel 3 never fires
    h[static_cast<size_t>(3 * k + j)] = 0;
    h[static_cast<size_t>(j * k + 3)] = 0;
  }
  std::vector<float> w(static_cast<size_t>(rows * k), 0.25f);
  auto g = quant::quantizeGptq(w, rows, k, h, {4, 16, false, true}, {});
  REQUIRE(g.isOk());
  CHECK(quant::relativeOutputError(w, *g, h) < 0.05);
}

TEST_CASE("GPTQ's factor is the upper Cholesky factor of the dampened, permuted H^-1", "[quant][weights][gptq]") {
  const int64_t k = 48;
  std::vector<double> h = correlatedSecondMoment(k, 400, 11);
  for (int64_t j = 0; j < k; ++j) {  // a dead channel keeps H_kk = 1 in the factor
    h[static_cast<size_t>(5 * k + j)] = 0;
    h[static_cast<size_t>(j * k + 5)] = 0;
  }
  for (bool actOrder : {true, false}) {
    quant::GptqOptions options;
    options.actOrder = actOrder;
    auto f = quant::factorGptq(h, k, options);
    REQUIRE(f.isOk());
    REQUIRE(f->perm.size() == static_cast<size_t>(k));
    CHECK(f->dead[5] == 1);
    CHECK(std::count(f->dead.begin(), f->dead.end(), 1) == 1);
    // Hp = P H P^T with the dead diagonal set to 1, plus damp * mean(diag) * I.
    std::vector<double> hp(static_cast<size_t>(k * k));
    double mean = 0;
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t a = f->perm[static_cast<size_t>(i)], b = f->perm[static_cast<size_t>(j)];
        hp[static_cast<size_t>(i * k + j)] = a == b && a == 5 ? 1.0 : h[static_cast<size_t>(a * k + b)];
      }
      mean += hp[static_cast<size_t>(i * k + i)] / static_cast<double>(k);
    }
    for (int64_t i = 0; i + 1 < k && actOrder; ++i) CHECK(hp[static_cast<size_t>(i * k + i)] >= hp[static_cast<size_t>((i + 1) * k + i + 1)]);
    for (int64_t i = 0; i < k; ++i) hp[static_cast<size_t>(i * k + i)] += options.dampPercent * mean;
    // U upper with a positive diagonal and U^T U Hp = I.
    double worst = 0;
    for (int64_t i = 0; i < k; ++i) {
      CHECK(f->u[static_cast<size_t>(i * k + i)] > 0);
      for (int64_t j = 0; j < i; ++j) CHECK(f->u[static_cast<size_t>(i * k + j)] == 0);
      for (int64_t j = 0; j < k; ++j) {
        double acc = 0;
        for (int64_t m = 0; m < k; ++m) {
          double utu = 0;  // (U^T U)(i, m)
          for (int64_t r = 0; r <= std::min(i, m); ++r) {
            utu += static_cast<double>(f->u[static_cast<size_t>(r * k + i)]) * static_cast<double>(f->u[static_cast<size_t>(r * k + m)]);
          }
          acc += utu * hp[static_cast<size_t>(m * k + j)];
        }
        worst = std::max(worst, std::fabs(acc - (i == j ? 1.0 : 0.0)));
      }
    }
    INFO("act-order " << actOrder);
    CHECK(worst < 1e-3);  // U is stored in float
  }
}
