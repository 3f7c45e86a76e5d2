// AWQ: with one loud input channel the searched scales protect its weights, and the output
// error drops against plain RTN.
#include "whittle/quant/awq.h"

#include <catch2/catch.hpp>
#include <random>

#include "whittle/quant/gptq.h"

using namespace whittle;

TEST_CASE("AWQ scales cut the output error when one input channel is an outlier", "[quant][weights][awq]") {
  const int64_t rows = 32, k = 64;
  std::mt19937_64 rng(4);
  std::normal_distribution<double> d(0, 1);
  // Independent channels, channel 5 fifty times louder: E[x^T x] diagonal, mean |x| ~ sigma.
  std::vector<double> h(static_cast<size_t>(k * k), 0.0);
  std::vector<float> meanAbs(static_cast<size_t>(k));
  for (int64_t c = 0; c < k; ++c) {
    const double sigma = c == 5 ? 50.0 : 1.0 + 0.1 * d(rng);
    h[static_cast<size_t>(c * k + c)] = sigma * sigma;
    meanAbs[static_cast<size_t>(c)] = static_cast<float>(sigma * 0.8);
  }
  std::vector<float> w(static_cast<size_t>(rows * k));
  for (float& v : w) v = static_cast<float>(d(rng));
  const quant::BlockConfig config{4, 32, true, false};
  quant::AwqResult r = quant::searchAwqScales({w}, {rows}, k, h, meanAbs, config, 20);
  INFO("alpha " << r.alpha << ", error " << r.errorBefore << " -> " << r.errorAfter);
  CHECK(r.alpha > 0);
  CHECK(r.errorAfter < 0.7 * r.errorBefore);
  CHECK(r.scales[5] > r.scales[0]);
  // Applied as the pass does: quantize diag(s) W, read back divided by s.
  std::vector<float> scaled(w);
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t c = 0; c < k; ++c) scaled[static_cast<size_t>(n * k + c)] *= r.scales[static_cast<size_t>(c)];
  }
  quant::BlockQuantized q = quant::quantizeRtn(scaled, rows, k, config);
  double err = 0, errRtn = 0;
  quant::BlockQuantized plain = quant::quantizeRtn(w, rows, k, config);
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t c = 0; c < k; ++c) {
      const double hc = h[static_cast<size_t>(c * k + c)];
      const double a = w[static_cast<size_t>(n * k + c)] - q.dequantized(n, c) / r.scales[static_cast<size_t>(c)];
      const double b = w[static_cast<size_t>(n * k + c)] - plain.dequantized(n, c);
      err += hc * a * a;
      errRtn += hc * b * b;
    }
  }
  CHECK(err < 0.7 * errRtn);
}
