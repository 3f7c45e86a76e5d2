// Bias correction of a quantized model (src/tune/bias_correction.cpp).
#include "tune/bias_correction.h"

#include <catch2/catch.hpp>

#include "tune/repair_test_util.h"

namespace whittle::tune {
namespace {

using testing::GraphBuilder;

/// x[1,4,6,6] -> Conv "c1" (4 -> 6, 3x3) -> Relu -> Conv "dw" (depthwise, 6 groups, 3x3) -> y;
/// both with biases, no padding (the interior shift is the whole shift).
ir::Model convModel() {
  GraphBuilder b(11);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
  ir::Value* h = b.node("Conv", {x, b.weight("w1", {6, 4, 3, 3}, ir::DataType::kFloat, -0.5, 0.5),
                                 b.weight("b1", {6}, ir::DataType::kFloat, -0.2, 0.2)},
                        {}, "c1");
  h = b.node("Relu", {h}, {}, "relu");
  ir::Value* y = b.node("Conv", {h, b.weight("w2", {6, 1, 3, 3}, ir::DataType::kFloat, -0.5, 0.5),
                                 b.weight("b2", {6}, ir::DataType::kFloat, -0.2, 0.2)},
                        {ir::Attribute::makeInt("group", 6)}, "dw");
  b.output(y, ir::DataType::kFloat, {1, 6, 2, 2});
  return b.build(13);
}

/// x[1,8] -> Gemm "fc" (transB 1, bias) -> y[1,5].
ir::Model gemmModel() {
  GraphBuilder b(12);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8});
  ir::Value* y = b.node("Gemm", {x, b.weight("w", {5, 8}, ir::DataType::kFloat, -1, 1), b.weight("b", {5})},
                        {ir::Attribute::makeInt("transB", 1)}, "fc");
  b.output(y, ir::DataType::kFloat, {1, 5});
  return b.build(13);
}

ir::Model quantized(const ir::Model& m, testing::SeededProvider& provider) {
  ir::Model q = m.clone();
  auto run = testing::runWith(q, "quantize-int8{method=minmax}", &provider);
  REQUIRE(run.isOk());
  return q;
}

}  // namespace

TEST_CASE("bias correction: finds the quantized Conv and Gemm layers and their input quantization", "[tune][bias]") {
  ir::Model m = convModel();
  testing::SeededProvider provider(0.0, 2.0, 0.5);
  ir::Model q = quantized(m, provider);
  std::vector<BiasSite> sites = biasSites(q, m);
  REQUIRE(sites.size() == 2);
  CHECK(sites[0].node == "c1");
  CHECK(sites[0].floatInput == "x");
  CHECK(sites[0].channels == 4);
  CHECK(sites[0].inputQuantized);
  CHECK(sites[1].node == "dw");
  CHECK(sites[1].channels == 6);
  CHECK(sites[1].scale > 0);
}

TEST_CASE("bias correction: the mean output shift of clipped ranges falls on a Conv chain", "[tune][bias]") {
  // Inputs in [0, 2] and every range clipped to half its top: each layer's input loses its
  // upper values, so every output channel shifts by a mean that the corrected biases return.
  ir::Model m = convModel();
  testing::SeededProvider provider(0.0, 2.0, 0.5, 64);
  ir::Model q = quantized(m, provider);
  const testing::OutputError before = testing::outputError(m, q, 0.0, 2.0, 128);
  auto moments = measureSites(m, biasSites(q, m), provider);
  REQUIRE(moments.isOk());
  REQUIRE(moments->size() == 2);
  auto stats = correctBiases(q, m, *moments);
  REQUIRE(stats.isOk());
  CHECK(stats->corrected == 2);
  CHECK(stats->weightOnly == 0);
  CHECK(stats->meanAbsShift > 0);
  const testing::OutputError after = testing::outputError(m, q, 0.0, 2.0, 128);
  INFO("mean shift " << before.meanShift << " -> " << after.meanShift << ", mse " << before.mse << " -> " << after.mse);
  CHECK(after.meanShift < 0.3 * before.meanShift);
  CHECK(after.mse < before.mse);
}

TEST_CASE("bias correction: a Gemm's weight rounding and input clipping", "[tune][bias]") {
  ir::Model m = gemmModel();
  testing::SeededProvider provider(0.5, 1.5, 0.7, 256);
  ir::Model q = quantized(m, provider);
  const testing::OutputError before = testing::outputError(m, q, 0.5, 1.5, 512);
  auto moments = measureSites(m, biasSites(q, m), provider);
  REQUIRE(moments.isOk());
  auto stats = correctBiases(q, m, *moments);
  REQUIRE(stats.isOk());
  CHECK(stats->corrected == 1);
  const testing::OutputError after = testing::outputError(m, q, 0.5, 1.5, 512);
  INFO("mean shift " << before.meanShift << " -> " << after.meanShift << ", mse " << before.mse << " -> " << after.mse);
  CHECK(after.meanShift < 0.3 * before.meanShift);
  CHECK(after.mse < before.mse);
}

TEST_CASE("bias correction: an input quantized otherwise than measured gets the weight term only", "[tune][bias]") {
  ir::Model m = gemmModel();
  testing::SeededProvider clipped(0.5, 1.5, 0.7), full(0.5, 1.5, 1.0);
  ir::Model q = quantized(m, clipped);
  auto moments = measureSites(m, biasSites(quantized(m, full), m), full);
  REQUIRE(moments.isOk());
  auto stats = correctBiases(q, m, *moments);
  REQUIRE(stats.isOk());
  CHECK(stats->corrected == 1);
  CHECK(stats->weightOnly == 1);
}

}  // namespace whittle::tune
