// The fallback's speed cost (src/tune/cost.cpp): measured from per-node profiles of the float
// and the quantized model, where the graph estimate orders layers wrongly.
#include "tune/cost.h"

#include <catch2/catch.hpp>

#include "tune/repair_test_util.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::tune {
namespace {

using testing::GraphBuilder;

/// Two branches from two inputs: "wide" (1x1 Conv 64 -> 64 on 4x4: many weights, few positions)
/// and "tall" (1x1 Conv 4 -> 4 on 64x64: few weights, many positions), each to its own output.
ir::Model branches() {
  GraphBuilder b(3);
  ir::Value* x1 = b.input("x1", ir::DataType::kFloat, {1, 64, 4, 4});
  ir::Value* x2 = b.input("x2", ir::DataType::kFloat, {1, 4, 64, 64});
  b.output(b.node("Conv", {x1, b.weight("w1", {64, 64, 1, 1}, ir::DataType::kFloat, -0.5, 0.5)}, {}, "wide"));
  b.output(b.node("Conv", {x2, b.weight("w2", {4, 4, 1, 1}, ir::DataType::kFloat, -0.5, 0.5)}, {}, "tall"));
  ir::Model m = b.build(13);
  ir::inferShapes(m);
  return m;
}

/// x[1,32,32,32] -> Conv "big" (3x3, 32 -> 32, pad 1) and Conv "small" (1x1, 32 -> 4), two outputs.
ir::Model bigAndSmall() {
  GraphBuilder b(4);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 32, 32, 32});
  b.output(b.node("Conv", {x, b.weight("wb", {32, 32, 3, 3}, ir::DataType::kFloat, -0.2, 0.2)},
                  {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "big"));
  b.output(b.node("Conv", {x, b.weight("ws", {4, 32, 1, 1}, ir::DataType::kFloat, -0.2, 0.2)}, {}, "small"));
  return b.build(13);
}

const ir::Node& nodeNamed(const ir::Model& m, const std::string& name) {
  for (const ir::Node* n : m.graph->nodes()) {
    if (n->name() == name) return *n;
  }
  FAIL("no node " << name);
  throw 0;
}

}  // namespace

TEST_CASE("fallback cost: measured times pick the layer the estimate gets wrong", "[tune][cost]") {
  ir::Model m = branches();
  const ir::Node& wide = nodeNamed(m, "wide");
  const ir::Node& tall = nodeNamed(m, "tall");
  // The estimate charges the weights: "wide" looks dearer.
  REQUIRE(estimatedFloatCostUs(wide) > estimatedFloatCostUs(tall));
  // Measured (as a profile would give them): "tall" is what is slow in float, and its int8 form
  // gains most; "wide" costs little either way.
  FallbackCost cost(m, {{"wide", 0.20}, {"tall", 1.00}}, {{"wide", 0.10}, {"tall", 0.10}}, 0.0, 0.0);
  CHECK(cost.costUs(wide) == Approx(100.0));
  CHECK(cost.costUs(tall) == Approx(900.0));
  // The conversions: a QuantizeLinear of 1000 elements in 0.01 ms adds 1e-5 ms per element in
  // and out: "tall" converts 2 x 16384, "wide" 2 x 1024.
  FallbackCost withConversions(m, {{"wide", 0.20}, {"tall", 1.00}}, {{"wide", 0.10}, {"tall", 0.10}}, 0.01, 1000.0);
  CHECK(withConversions.costUs(tall) == Approx(900.0 + 2 * 16384 * 1e-5 * 1000.0));
  CHECK(withConversions.costUs(wide) == Approx(100.0 + 2 * 1024 * 1e-5 * 1000.0));
  // A node the float profile lacks takes the estimate at the measured float speed.
  FallbackCost partial(m, {{"wide", 0.20}}, {}, 0.0, 0.0);
  CHECK(partial.floatScale() == Approx(0.20 / estimatedFloatCostUs(wide)));
  CHECK(partial.costUs(tall) == Approx(estimatedFloatCostUs(tall) * partial.floatScale() * 1000.0));
}

TEST_CASE("fallback cost: the profile of real runs charges the big convolution more", "[tune][cost]") {
  ir::Model m = bigAndSmall();
  testing::SeededProvider provider(-1.0, 1.0);
  ir::Model q = m.clone();
  REQUIRE(testing::runWith(q, "quantize-int8{method=minmax}", &provider).isOk());
  auto feeds = testing::randomFeeds(m, 9, -1.0, 1.0);
  auto times = profileNodes(m, feeds, 1, 5);
  REQUIRE(times.isOk());
  REQUIRE(times->contains("big"));
  REQUIRE(times->contains("small"));
  CHECK(times->at("big") > times->at("small"));
  auto cost = FallbackCost::measure(m, q, feeds, 1, 5);
  REQUIRE(cost.isOk());
  CHECK(cost->floatScale() > 0);
  CHECK(cost->costUs(nodeNamed(m, "big")) > cost->costUs(nodeNamed(m, "small")));
}

}  // namespace whittle::tune
