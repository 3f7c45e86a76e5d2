// Adaptive rounding of depthwise Conv weights (src/tune/weight_rounding.cpp).
#include "tune/weight_rounding.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "tune/repair_test_util.h"
#include "whittle/ir/match.h"

namespace whittle::tune {
namespace {

using testing::GraphBuilder;

/// x[1,6,8,8] -> Conv "dw" (depthwise, 6 groups, 3x3, pads 1) -> y.
ir::Model depthwiseModel(int64_t stride = 1) {
  GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 6, 8, 8});
  ir::Value* y = b.node("Conv", {x, b.weight("w", {6, 1, 3, 3}, ir::DataType::kFloat, -0.5, 0.5),
                                 b.weight("b", {6}, ir::DataType::kFloat, -0.2, 0.2)},
                        {ir::Attribute::makeInt("group", 6), ir::Attribute::makeInts("pads", {1, 1, 1, 1}),
                         ir::Attribute::makeInts("strides", {stride, stride})},
                        "dw");
  const int64_t out = (8 + 2 - 3) / stride + 1;
  b.output(y, ir::DataType::kFloat, {1, 6, out, out});
  return b.build(13);
}

double quadraticForm(const std::vector<int32_t>& q, const std::vector<float>& w, float scale, const std::vector<double>& h) {
  const size_t k = w.size();
  double f = 0;
  for (size_t a = 0; a < k; ++a) {
    for (size_t b = 0; b < k; ++b) f += (scale * q[a] - w[a]) * h[a * k + b] * (scale * q[b] - w[b]);
  }
  return f;
}

/// A random symmetric positive definite K x K matrix with a strong common component (the
/// correlated taps of an image patch).
std::vector<double> correlated(size_t k, std::mt19937& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<double> v(k * 3);
  for (double& x : v) x = n(rng);
  std::vector<double> h(k * k, 0.0);
  for (size_t a = 0; a < k; ++a) {
    for (size_t b = 0; b < k; ++b) {
      h[a * k + b] = 4.0 + (a == b ? 0.5 : 0.0);
      for (size_t r = 0; r < 3; ++r) h[a * k + b] += v[a * 3 + r] * v[b * 3 + r];
    }
  }
  return h;
}

}  // namespace

TEST_CASE("weight rounding: a channel's rounding is the best floor/ceil choice, never worse than nearest", "[tune][rounding]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (size_t k : {size_t{4}, size_t{9}, size_t{20}}) {
    for (int rep = 0; rep < 5; ++rep) {
      std::vector<float> w(k);
      for (float& x : w) x = u(rng);
      const float scale = 0.05f;
      std::vector<double> h = correlated(k, rng);
      std::vector<int32_t> q = roundChannel(w.data(), static_cast<int64_t>(k), scale, -127, 127, h.data());
      std::vector<int32_t> nearest(k);
      for (size_t i = 0; i < k; ++i) {
        nearest[i] = static_cast<int32_t>(std::nearbyint(w[i] / scale));
        CHECK((q[i] == static_cast<int32_t>(std::floor(w[i] / scale)) || q[i] == static_cast<int32_t>(std::ceil(w[i] / scale))));
      }
      const double got = quadraticForm(q, w, scale, h);
      CHECK(got <= quadraticForm(nearest, w, scale, h) + 1e-12);
      if (k <= 9) {
        // Brute force over every floor/ceil combination.
        double best = std::numeric_limits<double>::max();
        for (uint32_t mask = 0; mask < (1u << k); ++mask) {
          std::vector<int32_t> c(k);
          for (size_t i = 0; i < k; ++i) {
            c[i] = static_cast<int32_t>((mask >> i) & 1u ? std::ceil(w[i] / scale) : std::floor(w[i] / scale));
          }
          best = std::min(best, quadraticForm(c, w, scale, h));
        }
        CHECK(got == Approx(best).epsilon(1e-9));
      }
    }
  }
}

TEST_CASE("weight rounding: patch moments count zero padding and the stride", "[tune][rounding]") {
  // All-ones input: with pads 1 the centre tap sees the input at every output position, a
  // corner tap at 4 of the 9 (3x3 input, stride 1) or 1 of the 4 (stride 2).
  for (int64_t stride : {int64_t{1}, int64_t{2}}) {
    RoundingSite s;
    s.node = "dw";
    s.channels = 2;
    s.kh = s.kw = 3;
    s.sh = s.sw = stride;
    s.padTop = s.padLeft = s.padBottom = s.padRight = 1;
    PatchMomentCollector c(s, 8);
    ir::Tensor x(ir::DataType::kFloat, {1, 2, 3, 3});
    for (int64_t i = 0; i < x.numel(); ++i) x.mutableData<float>()[i] = 1.0f;
    REQUIRE(c.collect("x", x, 1).isOk());
    std::vector<double> m = c.moments();
    REQUIRE(m.size() == 2 * 81);
    const double corner = stride == 1 ? 4.0 / 9.0 : 1.0 / 4.0;
    CHECK(m[4 * 9 + 4] == Approx(1.0));
    CHECK(m[0] == Approx(corner));
    CHECK(m[81 + 0 * 9 + 4] == Approx(corner));  // channel 1: corner x centre
    CHECK(m[8 * 9 + 8] == Approx(corner));
  }
  RoundingSite s;
  s.node = "dw";
  s.channels = 3;
  PatchMomentCollector c(s, 8);
  ir::Tensor bad(ir::DataType::kFloat, {1, 2, 3, 3});
  Status st = c.collect("x", bad, 1);
  CHECK_FALSE(st.isOk());
  CHECK(st.message().find("'dw'") != std::string::npos);
}

TEST_CASE("weight rounding: the depthwise output error falls on a quantized model", "[tune][rounding]") {
  // Inputs in [0, 2]: the taps of a patch share a large mean, so rounding errors of one sign
  // add up in every output; choosing them by the patch moments cancels most of that.
  ir::Model m = depthwiseModel();
  testing::SeededProvider provider(0.0, 2.0, 1.0, 32);
  ir::Model q = m.clone();
  REQUIRE(testing::runWith(q, "quantize-int8{method=minmax}", &provider).isOk());
  std::vector<RoundingSite> sites = roundingSites(q, m);
  REQUIRE(sites.size() == 1);
  CHECK(sites[0].node == "dw");
  CHECK(sites[0].floatInput == "x");
  CHECK(sites[0].channels == 6);
  CHECK(sites[0].taps() == 9);
  const testing::OutputError before = testing::outputError(m, q, 0.0, 2.0, 64);
  auto moments = measurePatchMoments(m, sites, provider);
  REQUIRE(moments.isOk());
  REQUIRE(moments->size() == 1);
  auto stats = roundWeights(q, m, *moments);
  REQUIRE(stats.isOk());
  CHECK(stats->layers == 1);
  CHECK(stats->channels == 6);
  CHECK(stats->weightsChanged > 0);
  CHECK(stats->errorAfter < 0.8 * stats->errorBefore);
  REQUIRE(ir::verify(*q.graph).isOk());
  const testing::OutputError after = testing::outputError(m, q, 0.0, 2.0, 64);
  INFO("mse " << before.mse << " -> " << after.mse << "; weight term " << stats->errorBefore << " -> " << stats->errorAfter);
  CHECK(after.mse < before.mse);
  // The rewritten weights are int8 in the same DequantizeLinear, the scales untouched.
  int dq = 0;
  for (const ir::Node* n : q.graph->nodes()) {
    if (n->opType() == "DequantizeLinear" && ir::constantOf(n->input(0)) != nullptr &&
        ir::constantOf(n->input(0))->dtype() == ir::DataType::kInt8 && ir::constantOf(n->input(0))->numel() == 54) {
      ++dq;
    }
  }
  CHECK(dq == 1);
}

TEST_CASE("weight rounding: a strided depthwise layer and a plain Conv", "[tune][rounding]") {
  ir::Model m = depthwiseModel(2);
  testing::SeededProvider provider(0.0, 2.0, 1.0, 16);
  ir::Model q = m.clone();
  REQUIRE(testing::runWith(q, "quantize-int8{method=minmax}", &provider).isOk());
  std::vector<RoundingSite> sites = roundingSites(q, m);
  REQUIRE(sites.size() == 1);
  CHECK(sites[0].sh == 2);
  auto moments = measurePatchMoments(m, sites, provider);
  REQUIRE(moments.isOk());
  auto stats = roundWeights(q, m, *moments);
  REQUIRE(stats.isOk());
  CHECK(stats->errorAfter <= stats->errorBefore);
  // A Conv with one group is not a depthwise site.
  GraphBuilder b(3);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
  ir::Value* y = b.node("Conv", {x, b.weight("w", {2, 4, 3, 3}, ir::DataType::kFloat, -0.5, 0.5)}, {}, "c");
  b.output(y, ir::DataType::kFloat, {1, 2, 4, 4});
  ir::Model plain = b.build(13);
  ir::Model pq = plain.clone();
  REQUIRE(testing::runWith(pq, "quantize-int8{method=minmax}", &provider).isOk());
  CHECK(roundingSites(pq, plain).empty());
}

}  // namespace whittle::tune
