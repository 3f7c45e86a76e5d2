// initializers-to-constants: graph inputs that only repeat initializers dropped.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::DataType;

namespace {

// x -> Conv(W, b) -> y with W and b listed as graph inputs too (an IR 3 exporter's habit).
ir::Model weightsAsInputs(testing::GraphBuilder& b) {
  ir::Value* x = b.input("x", DataType::kFloat, {1, 2, 5, 5});
  ir::Value* w = b.input("W", DataType::kFloat, {3, 2, 3, 3});
  w->setConstant(b.randomTensor(DataType::kFloat, {3, 2, 3, 3}));
  ir::Value* bias = b.input("B", DataType::kFloat, {3});
  bias->setConstant(b.randomTensor(DataType::kFloat, {3}));
  b.output(b.node("Conv", {x, w, bias}), DataType::kFloat, {1, 3, 3, 3});
  return b.build(8);
}

}  // namespace

TEST_CASE("initializers-to-constants drops inputs that repeat initializers", "[passes][initializers-to-constants]") {
  testing::GraphBuilder b(141);
  ir::Model model = weightsAsInputs(b);
  REQUIRE(model.irVersion == 3);
  auto run = testing::runPipelineOn(model, "initializers-to-constants");
  REQUIRE(run.after.graph->inputs().size() == 1);
  CHECK(run.after.graph->inputs()[0]->name() == "x");
  CHECK(run.after.graph->initializers().size() == 2);
  CHECK(run.after.irVersion == 4);
  CHECK(run.stats[0].counters.at("inputs-dropped") == 2);
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Conv"});
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("initializers-to-constants{keep=true} changes nothing", "[passes][initializers-to-constants]") {
  testing::GraphBuilder b(142);
  ir::Model model = weightsAsInputs(b);
  testing::requireUnchanged(model, "initializers-to-constants{keep=true}");
  auto run = testing::runPipelineOn(model, "initializers-to-constants{keep=true}");
  CHECK(run.after.graph->inputs().size() == 3);
  CHECK(run.after.irVersion == 3);
}

TEST_CASE("initializers-to-constants lets fold-constants fold the weights", "[passes][initializers-to-constants]") {
  testing::GraphBuilder b(143);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* w = b.input("w", DataType::kFloat, {2, 3});
  w->setConstant(b.randomTensor(DataType::kFloat, {2, 3}));
  b.output(b.node("Add", {x, b.node("Exp", {w})}), DataType::kFloat, {2, 3});
  ir::Model model = b.build(13);
  testing::requireUnchanged(model, "fold-constants");
  auto run = testing::runPipelineOn(model, "initializers-to-constants,fold-constants");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Add"});
  testing::requireSameOutputs(model, run.after);
}
