// cse: nodes computing the same thing, and identical initializers, merged.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

TEST_CASE("cse merges identical nodes and initializers", "[passes][cse]") {
  testing::GraphBuilder b(111);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* s1 = b.constant("s1", {3}, {1.f, 2.f, 3.f});
  ir::Value* s2 = b.constant("s2", {3}, {1.f, 2.f, 3.f});
  ir::Value* a1 = b.node("Mul", {x, s1});
  ir::Value* a2 = b.node("Mul", {x, s2});  // same as a1 once s2 is merged into s1
  ir::Value* r1 = b.node("LeakyRelu", {a1}, {Attribute::makeFloat("alpha", 0.1f)});
  ir::Value* r2 = b.node("LeakyRelu", {a2}, {Attribute::makeFloat("alpha", 0.1f)});
  b.output(b.node("Add", {r1, r2}), DataType::kFloat, {2, 3});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "cse");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Mul", "LeakyRelu", "Add"});
  CHECK(run.after.graph->initializers().size() == 1);
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("cse keeps nodes that differ or must stay apart", "[passes][cse]") {
  testing::GraphBuilder b(112);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  SECTION("different attributes") {
    ir::Value* r1 = b.node("LeakyRelu", {x}, {Attribute::makeFloat("alpha", 0.1f)});
    ir::Value* r2 = b.node("LeakyRelu", {x}, {Attribute::makeFloat("alpha", 0.2f)});
    b.output(b.node("Add", {r1, r2}), DataType::kFloat, {2, 3});
    testing::requireUnchanged(b.build(13), "cse");
  }
  SECTION("random ops") {
    ir::Value* r1 = b.node("RandomNormalLike", {x});
    ir::Value* r2 = b.node("RandomNormalLike", {x});
    b.output(b.node("Add", {r1, r2}), DataType::kFloat, {2, 3});
    testing::requireUnchanged(b.build(13), "cse");
  }
  SECTION("two graph outputs that compute the same thing keep their names") {
    b.output(b.node("Relu", {x}), DataType::kFloat, {2, 3});
    b.output(b.node("Relu", {x}), DataType::kFloat, {2, 3});
    ir::Model model = b.build(13);
    auto run = testing::runPipelineOn(model, "cse");
    CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
    testing::requireSameOutputs(model, run.after);
  }
}

TEST_CASE("cse merges identical initializers of any size", "[passes][cse]") {
  testing::GraphBuilder b(503);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 256});
  ir::Value* w1 = b.weight("w1", {256, 256});  // 256 KiB
  ir::Value* w2 = b.constant("w2", *w1->constant());
  ir::Value* w3 = b.weight("w3", {256, 256});  // same shape, other values: stays
  ir::Value* y = b.node("Add", {b.node("MatMul", {x, w1}), b.node("MatMul", {x, w2})});
  b.output(b.node("Add", {y, b.node("MatMul", {x, w3})}), DataType::kFloat, {2, 256});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "cse");
  CHECK(run.after.graph->initializers().size() == 2);
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"MatMul", "Add", "MatMul", "Add"});
  testing::requireSameOutputs(model, run.after);
}
