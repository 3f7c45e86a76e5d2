// eliminate-dead: nodes nothing reads and unused initializers removed.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::DataType;

TEST_CASE("eliminate-dead removes unused nodes and initializers", "[passes][eliminate-dead]") {
  testing::GraphBuilder b(101);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* y = b.node("Relu", {x});
  ir::Value* dead = b.node("Add", {x, b.weight("unused_by_live", {2, 3})});
  b.node("Sigmoid", {dead});
  b.weight("never_used", {4});
  b.output(y, DataType::kFloat, {2, 3});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "eliminate-dead");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Relu"});
  CHECK(run.after.graph->initializers().empty());
  CHECK(run.rewrites() == 2);
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("eliminate-dead keeps everything that reaches an output", "[passes][eliminate-dead]") {
  testing::GraphBuilder b(102);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* unusedInput = b.input("spare", DataType::kFloat, {2, 3});
  (void)unusedInput;  // graph inputs are the interface: they stay even when unused
  ir::Value* a = b.node("Add", {x, b.weight("w", {2, 3})});
  b.output(a, DataType::kFloat, {2, 3});
  b.output(b.node("Relu", {a}), DataType::kFloat, {2, 3});
  testing::requireUnchanged(b.build(13), "eliminate-dead");
}
