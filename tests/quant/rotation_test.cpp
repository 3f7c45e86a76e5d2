// Orthogonal rotations: Hadamard orders from the Sylvester x Paley construction (576, SmolLM2's
// hidden size, among them) are orthogonal with entries +-1/sqrt(d); random ones are orthogonal
// for any order; both are the same for a seed; orders without a construction are errors.
#include <catch2/catch.hpp>
#include <cmath>

#include "whittle/quant/rotation.h"

using namespace whittle;

namespace {

double orthogonalityError(const std::vector<double>& q, int64_t d) {
  double worst = 0;
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < d; ++k) dot += q[static_cast<size_t>(i * d + k)] * q[static_cast<size_t>(j * d + k)];
      worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("Hadamard rotations are orthogonal with entries +-1/sqrt(d)", "[quant][rotation]") {
  for (int64_t d : {1, 2, 12, 24, 48, 64, 576}) {
    INFO("order " << d);
    REQUIRE(quant::hasHadamard(d));
    auto q = quant::orthogonalRotation(d, "hadamard", 7);
    REQUIRE(q.isOk());
    CHECK(orthogonalityError(*q, d) < 1e-9);
    for (double v : *q) CHECK(std::abs(std::abs(v) * std::sqrt(static_cast<double>(d)) - 1) < 1e-12);
  }
  CHECK_FALSE(quant::hasHadamard(10));
  auto bad = quant::orthogonalRotation(10, "hadamard", 0);
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().message().find("order 10") != std::string::npos);
}

TEST_CASE("random rotations are orthogonal for any order and fixed by the seed", "[quant][rotation]") {
  auto a = quant::orthogonalRotation(10, "random", 3);
  auto b = quant::orthogonalRotation(10, "random", 3);
  auto c = quant::orthogonalRotation(10, "random", 4);
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  REQUIRE(c.isOk());
  CHECK(orthogonalityError(*a, 10) < 1e-12);
  CHECK(*a == *b);
  CHECK(*a != *c);
  auto h1 = quant::orthogonalRotation(12, "hadamard", 1), h2 = quant::orthogonalRotation(12, "hadamard", 2);
  REQUIRE(h1.isOk());
  REQUIRE(h2.isOk());
  CHECK(*h1 != *h2);  // the signs come from the seed
  CHECK_FALSE(quant::orthogonalRotation(8, "givens", 0).isOk());
}
