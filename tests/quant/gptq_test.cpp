// GPTQ: on correlated inputs the layer output error is well below RTN's with the same blocks.
#include "whittle/quant/gptq.h"

#include <catch2/catch.hpp>
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
