// cancel-transposes: consecutive Transposes composed, and dropped when they cancel.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

TEST_CASE("cancel-transposes drops a pair that cancels", "[passes][cancel-transposes]") {
  testing::GraphBuilder b(81);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 4, 5});
  ir::Value* t1 = b.node("Transpose", {x}, {Attribute::makeInts("perm", {0, 2, 3, 1})});
  ir::Value* t2 = b.node("Transpose", {t1}, {Attribute::makeInts("perm", {0, 3, 1, 2})});
  b.output(b.node("Relu", {t2}), DataType::kFloat, {1, 3, 4, 5});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "cancel-transposes");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Relu"});
  CHECK(run.stats[0].nodesBefore - run.stats[0].nodesAfter == 2);
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("cancel-transposes composes a pair into one Transpose", "[passes][cancel-transposes]") {
  testing::GraphBuilder b(82);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
  ir::Value* t1 = b.node("Transpose", {x}, {Attribute::makeInts("perm", {1, 0, 2})});
  ir::Value* t2 = b.node("Transpose", {t1}, {Attribute::makeInts("perm", {2, 0, 1})});
  b.output(t2, DataType::kFloat, {4, 3, 2});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "cancel-transposes");
  REQUIRE(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Transpose"});
  CHECK(run.after.graph->nodes()[0]->attrInts("perm") == std::vector<int64_t>{2, 1, 0});
  CHECK(run.after.graph->outputs()[0]->name() == t2->name());
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("cancel-transposes handles an absent perm (the reversal)", "[passes][cancel-transposes]") {
  testing::GraphBuilder b(84);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
  SECTION("two reversals cancel") {
    ir::Value* t = b.node("Transpose", {b.node("Transpose", {x})});
    b.output(b.node("Relu", {t}), DataType::kFloat, {2, 3, 4});
  }
  SECTION("a reversal then an explicit perm compose") {
    ir::Value* t = b.node("Transpose", {b.node("Transpose", {x})}, {Attribute::makeInts("perm", {0, 2, 1})});
    b.output(b.node("Relu", {t}), DataType::kFloat, {4, 2, 3});
  }
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "cancel-transposes");
  CHECK(run.rewrites() == 1);
  CHECK(run.after.graph->numNodes() < model.graph->numNodes());
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("cancel-transposes keeps the interface and shared Transposes", "[passes][cancel-transposes]") {
  testing::GraphBuilder b(83);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  SECTION("a cancelling pair from a graph input to a graph output stays (names must not change)") {
    ir::Value* t1 = b.node("Transpose", {x}, {Attribute::makeInts("perm", {1, 0})});
    b.output(b.node("Transpose", {t1}, {Attribute::makeInts("perm", {1, 0})}), DataType::kFloat, {2, 3});
    testing::requireUnchanged(b.build(13), "cancel-transposes");
  }
  SECTION("an inner Transpose with another user stays for that user") {
    ir::Value* t1 = b.node("Transpose", {x}, {Attribute::makeInts("perm", {1, 0})});
    ir::Value* t2 = b.node("Transpose", {t1}, {Attribute::makeInts("perm", {1, 0})});
    b.output(b.node("Relu", {t2}), DataType::kFloat, {2, 3});
    b.output(b.node("Sigmoid", {t1}), DataType::kFloat, {3, 2});
    ir::Model model = b.build(13);
    auto run = testing::runPipelineOn(model, "cancel-transposes");
    CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Transpose", "Relu", "Sigmoid"});
    testing::requireSameOutputs(model, run.after);
  }
}

TEST_CASE("cancel-transposes leaves a perm that is not a permutation alone", "[passes][cancel-transposes]") {
  // Found by fuzz_optimize: composing {0, 2} (out of range for rank 2) read past the inner perm.
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{0, 2}, std::vector<int64_t>{1, 1}, std::vector<int64_t>{-1, 0}}) {
    testing::GraphBuilder b(85);
    ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
    ir::Value* t1 = b.node("Transpose", {x}, {Attribute::makeInts("perm", {1, 0})});
    ir::Value* t2 = b.node("Transpose", {t1}, {Attribute::makeInts("perm", bad)});
    b.output(t2);
    ir::Model model = b.build(13);
    auto pipeline = passes::parsePipeline("cancel-transposes");
    REQUIRE(pipeline.isOk());
    passes::PassContext ctx(model);
    auto stats = passes::runPipeline(model, *pipeline, ctx, {});
    REQUIRE(stats.isOk());
    CHECK(stats->front().rewrites == 0);
    CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Transpose", "Transpose"});
  }
}
