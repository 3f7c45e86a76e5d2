// SmoothQuant's per-layer search: an outlier input channel is smoothed (alpha > 0, modeled
// W8A8 error lower), channels that are alike are left alone, a fixed alpha gives the paper's
// s_j = max|x_j|^alpha / max|W_j|^(1 - alpha), and the error model matches a direct simulation.
#include "whittle/quant/smoothquant.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

using namespace whittle;

namespace {

std::vector<float> randomWeight(int64_t rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> w(static_cast<size_t>(rows * k));
  for (float& v : w) v = u(rng);
  return w;
}

}  // namespace

TEST_CASE("SmoothQuant smooths an outlier input channel and leaves uniform ones alone", "[quant][smoothquant]") {
  const int64_t k = 16, rows = 8;
  std::vector<float> w = randomWeight(rows, k, 3);
  std::vector<std::span<const float>> ws{w};
  std::vector<int64_t> n{rows};
  std::vector<float> maxAbs(k, 1.0f);
  std::vector<double> meanSq(k, 0.33);
  // Symmetric channels: [-max|x_j|, max|x_j|].
  std::vector<float> lo(k);
  auto stats = [&] {
    for (int64_t j = 0; j < k; ++j) lo[static_cast<size_t>(j)] = -maxAbs[static_cast<size_t>(j)];
    return quant::ChannelStats{lo, maxAbs, meanSq};
  };
  SECTION("uniform channels: any s_j = c changes nothing, so nothing is applied") {
    std::vector<float> flat(static_cast<size_t>(rows * k), 0.5f);
    std::vector<std::span<const float>> fs{flat};
    quant::SmoothResult r = quant::searchSmoothScales(fs, n, k, stats());
    CHECK(r.alpha < 0);
    CHECK(r.scales == std::vector<float>(k, 1.0f));
    CHECK(r.errorAfter == r.errorBefore);
  }
  SECTION("an outlier channel 60x louder is smoothed, and the modeled error drops") {
    maxAbs[5] = 60.0f;
    meanSq[5] = 0.33 * 3600;
    quant::SmoothResult r = quant::searchSmoothScales(ws, n, k, stats());
    CHECK(r.alpha > 0);
    CHECK(r.errorAfter < 0.5 * r.errorBefore);
    // The loud channel gets the largest s (its activations shrink most).
    for (int64_t j = 0; j < k; ++j) {
      if (j != 5) CHECK(r.scales[5] > r.scales[static_cast<size_t>(j)]);
    }
  }
  SECTION("a fixed alpha is applied as the paper defines it") {
    maxAbs[2] = 9.0f;
    quant::SmoothOptions o;
    o.alpha = 0.5;
    quant::SmoothResult r = quant::searchSmoothScales(ws, n, k, stats(), o);
    CHECK(r.alpha == 0.5);
    for (int64_t j = 0; j < k; ++j) {
      float wmax = 0;
      for (int64_t i = 0; i < rows; ++i) wmax = std::max(wmax, std::fabs(w[static_cast<size_t>(i * k + j)]));
      CHECK(r.scales[static_cast<size_t>(j)] == Approx(std::sqrt(maxAbs[static_cast<size_t>(j)] / wmax)).epsilon(1e-5));
    }
  }
}

TEST_CASE("the W8A8 error model agrees with simulated int8 round-off", "[quant][smoothquant]") {
  // Simulate per-tensor uint8 activations and per-row int8 weights on random data with one loud
  // channel, and compare the measured mean squared output error with the model, with and
  // without smoothing: the model must rank them the same way and be within a factor of 2.
  const int64_t k = 32, rows = 16, samples = 4000;
  std::vector<float> w = randomWeight(rows, k, 11);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(static_cast<size_t>(samples * k));
  for (int64_t i = 0; i < samples; ++i) {
    for (int64_t j = 0; j < k; ++j) x[static_cast<size_t>(i * k + j)] = u(rng) * (j == 7 ? 40.0f : 1.0f);
  }
  std::vector<float> maxAbs(k, 0.0f), lo(k, 0.0f), hi(k, 0.0f);
  std::vector<double> meanSq(k, 0.0);
  for (int64_t i = 0; i < samples; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      const float v = x[static_cast<size_t>(i * k + j)];
      maxAbs[static_cast<size_t>(j)] = std::max(maxAbs[static_cast<size_t>(j)], std::fabs(v));
      lo[static_cast<size_t>(j)] = std::min(lo[static_cast<size_t>(j)], v);
      hi[static_cast<size_t>(j)] = std::max(hi[static_cast<size_t>(j)], v);
      meanSq[static_cast<size_t>(j)] += static_cast<double>(v) * v / samples;
    }
  }
  // uint8 asymmetric activations over the smoothed tensor's range, per-row int8 weights.
  auto simulate = [&](const std::vector<float>& s) {
    double top = 0, bottom = 0;
    for (int64_t j = 0; j < k; ++j) {
      top = std::max(top, static_cast<double>(hi[static_cast<size_t>(j)] / s[static_cast<size_t>(j)]));
      bottom = std::min(bottom, static_cast<double>(lo[static_cast<size_t>(j)] / s[static_cast<size_t>(j)]));
    }
    const double ax = (top - bottom) / 255;
    std::vector<double> wq(static_cast<size_t>(rows * k));
    for (int64_t n = 0; n < rows; ++n) {
      double m = 0;
      for (int64_t j = 0; j < k; ++j) m = std::max(m, std::fabs(static_cast<double>(w[static_cast<size_t>(n * k + j)]) * s[static_cast<size_t>(j)]));
      const double aw = m / 127;
      for (int64_t j = 0; j < k; ++j) {
        wq[static_cast<size_t>(n * k + j)] = std::round(static_cast<double>(w[static_cast<size_t>(n * k + j)]) * s[static_cast<size_t>(j)] / aw) * aw;
      }
    }
    double err = 0;
    for (int64_t i = 0; i < samples; ++i) {
      for (int64_t n = 0; n < rows; ++n) {
        double exact = 0, quant = 0;
        for (int64_t j = 0; j < k; ++j) {
          const double v = x[static_cast<size_t>(i * k + j)];
          exact += v * w[static_cast<size_t>(n * k + j)];
          quant += (std::round((v / s[static_cast<size_t>(j)] - bottom) / ax) * ax + bottom) * wq[static_cast<size_t>(n * k + j)];
        }
        err += (exact - quant) * (exact - quant);
      }
    }
    return err / samples;
  };
  std::vector<std::span<const float>> ws{w};
  std::vector<int64_t> n{rows};
  const quant::ChannelStats stats{lo, hi, meanSq};
  quant::SmoothResult r = quant::searchSmoothScales(ws, n, k, stats);
  REQUIRE(r.alpha > 0);
  const std::vector<float> ones(k, 1.0f);
  const double simBefore = simulate(ones), simAfter = simulate(r.scales);
  CHECK(simAfter < simBefore);
  CHECK(r.errorBefore == Approx(simBefore).epsilon(1.0));
  CHECK(r.errorAfter == Approx(simAfter).epsilon(1.0));
  CHECK(quant::smoothedW8A8Error(ws, n, k, stats, ones) == Approx(r.errorBefore));
}
