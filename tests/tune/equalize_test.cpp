// Cross-layer equalization of depthwise -> pointwise pairs (src/tune/equalize.cpp).
#include "tune/equalize.h"

#include <catch2/catch.hpp>

#include "tune/repair_test_util.h"

namespace whittle::tune {
namespace {

using testing::GraphBuilder;

/// x[1,4,8,8] -> Conv "dw" (depthwise 3x3, pad 1; channel 0's weights 40x the others) -> act
/// -> Conv "pw" (1x1, 4 -> 6; the weights reading channel 0 1000x smaller, so the output is
/// mostly the quiet channels') -> y. act: "Relu", "Clip" (0, 6) or none.
ir::Model pairModel(const std::string& act, float loud = 40.0f) {
  GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 8, 8});
  ir::Tensor w = b.randomTensor(ir::DataType::kFloat, {4, 1, 3, 3}, -0.3, 0.3);
  for (int64_t k = 0; k < 9; ++k) w.mutableData<float>()[k] *= loud;
  ir::Value* h = b.node("Conv", {x, b.constant("wdw", w), b.weight("bdw", {4}, ir::DataType::kFloat, 0.0, 0.2)},
                        {ir::Attribute::makeInt("group", 4), ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "dw");
  if (act == "Relu") h = b.node("Relu", {h}, {}, "act");
  if (act == "Clip") h = b.node("Clip", {h, b.constant("lo", {}, {0.0f}), b.constant("hi", {}, {6.0f})}, {}, "act");
  ir::Tensor wp = b.randomTensor(ir::DataType::kFloat, {6, 4, 1, 1}, -0.5, 0.5);
  for (int64_t o = 0; o < 6; ++o) wp.mutableData<float>()[o * 4] *= 1e-3f;
  ir::Value* y = b.node("Conv", {h, b.constant("wpw", wp), b.weight("bpw", {6}, ir::DataType::kFloat, -0.1, 0.1)},
                        {}, "pw");
  b.output(y, ir::DataType::kFloat, {1, 6, 8, 8});
  return b.build(13);
}

ir::Model quantized(const ir::Model& m, testing::SeededProvider& provider) {
  ir::Model q = m.clone();
  REQUIRE(testing::runWith(q, "quantize-int8{method=minmax}", &provider).isOk());
  return q;
}

}  // namespace

TEST_CASE("equalize: finds depthwise -> pointwise pairs through Relu and Clip(0, 6)", "[tune][equalize]") {
  for (const std::string act : {"", "Relu", "Clip"}) {
    INFO("activation '" << act << "'");
    auto pairs = equalizePairs(pairModel(act));
    REQUIRE(pairs.size() == 1);
    CHECK(pairs[0].depthwise == "dw");
    CHECK(pairs[0].pointwise == "pw");
    CHECK(pairs[0].activation == act);
    CHECK(pairs[0].rescaled.size() == (act.empty() ? 1u : 2u));
    if (act == "Clip") CHECK(pairs[0].clipMax == 6.0);
  }
}

TEST_CASE("equalize: the float model computes the same and its int8 error falls", "[tune][equalize]") {
  // Channel 0 of the depthwise output is ~40x the others: one activation scale for the tensor
  // leaves the other channels a few levels. Equalized, the channels share the range.
  ir::Model m = pairModel("Relu");
  ir::Model e = m.clone();
  auto stats = equalize(e, nullptr);  // Relu: no calibration needed
  REQUIRE(stats.isOk());
  CHECK(stats->pairs == 1);
  CHECK(stats->channelsScaled >= 1);
  CHECK(stats->rescaled.size() == 2);
  testing::requireSameOutputs(m, e, 1e-4, 3, 0.0, 1.0);
  testing::SeededProvider p1(0.0, 1.0), p2(0.0, 1.0);
  const testing::OutputError before = testing::outputError(m, quantized(m, p1), 0.0, 1.0);
  const testing::OutputError after = testing::outputError(m, quantized(e, p2), 0.0, 1.0);
  INFO("mse " << before.mse << " -> " << after.mse);
  CHECK(after.mse < 0.5 * before.mse);
}

TEST_CASE("equalize: a ReLU6 channel that reaches the clip keeps its scale", "[tune][equalize]") {
  // With inputs in [0, 1] the loud channel's depthwise output passes 6: scaling it would move
  // the clip, so it stays; the quiet ones scale (no more than their maximum over 6 allows).
  ir::Model m = pairModel("Clip");
  ir::Model e = m.clone();
  testing::SeededProvider provider(0.0, 1.0);
  auto stats = equalize(e, &provider);
  REQUIRE(stats.isOk());
  CHECK(stats->pairs == 1);
  CHECK(stats->channelsPinned >= 1);
  testing::requireSameOutputs(m, e, 1e-4, 3, 0.0, 1.0);
  CHECK(!equalize(e = m.clone(), nullptr).isOk());  // a Clip needs calibration data
}

}  // namespace whittle::tune
