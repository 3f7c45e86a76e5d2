// shape-fold: Shape / Size of statically shaped values become constants.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

TEST_CASE("shape-fold replaces Shape of a static value, and the chain then folds", "[passes][shape-fold]") {
  testing::GraphBuilder b(131);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
  ir::Value* r = b.node("Relu", {x});
  ir::Value* shape = b.node("Shape", {r});
  ir::Value* first = b.node("Gather", {shape, b.constantInt64("zero", {1}, {0})}, {Attribute::makeInt("axis", 0)});
  ir::Value* target = b.node("Concat", {first, b.constantInt64("minus1", {1}, {-1})}, {Attribute::makeInt("axis", 0)});
  b.output(b.node("Reshape", {r, target}), DataType::kFloat, {2, 12});
  ir::Model model = b.build(13);
  SECTION("shape-fold alone") {
    auto run = testing::runPipelineOn(model, "shape-fold");
    CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Relu", "Gather", "Concat", "Reshape"});
    CHECK(run.rewrites() == 1);
    testing::requireSameOutputs(model, run.after);
  }
  SECTION("with fold-constants after it") {
    auto run = testing::runPipelineOn(model, "shape-fold,fold-constants");
    CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Relu", "Reshape"});
    CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
    testing::requireSameOutputs(model, run.after);
  }
}

TEST_CASE("shape-fold keeps Shape of a value with a symbolic dim", "[passes][shape-fold]") {
  testing::GraphBuilder b(132);
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(3)});
  ir::Value* shape = b.node("Shape", {x});
  ir::Value* y = b.node("Reshape", {b.node("Relu", {x}), shape});
  b.output(y);
  y->mutableType() =
      ir::ValueType{DataType::kFloat, std::vector<ir::Dim>{ir::Dim::symbolic("batch"), ir::Dim::known(3)}, {}};
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "shape-fold");
  CHECK(run.rewrites() == 0);
  CHECK(testing::opTypes(*run.after.graph) == testing::opTypes(*model.graph));
}
