// fuse-conv-add: a constant per-channel or scalar Add folded into the Conv's bias.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::DataType;

TEST_CASE("fuse-conv-add folds a per-channel or scalar constant into the bias", "[passes][fuse-conv-add]") {
  std::vector<int64_t> cDims = GENERATE(std::vector<int64_t>{4, 1, 1}, std::vector<int64_t>{1, 4, 1, 1},
                                        std::vector<int64_t>{1}, std::vector<int64_t>{});
  bool withBias = GENERATE(false, true);
  INFO("constant rank " << cDims.size() << ", conv bias " << withBias);
  testing::GraphBuilder b(21);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 6, 6});
  std::vector<ir::Value*> convIn = {x, b.weight("w", {4, 3, 3, 3})};
  if (withBias) convIn.push_back(b.weight("b", {4}));
  ir::Value* c = b.node("Conv", convIn);
  ir::Value* y = b.node("Add", {b.weight("c", cDims), c});  // the constant first: order must not matter
  b.output(b.node("Sigmoid", {y}), DataType::kFloat, {1, 4, 4, 4});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "fuse-conv-add");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Conv", "Sigmoid"});
  CHECK(run.after.graph->nodes()[0]->numInputs() == 3);
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-conv-add keeps the Add's name when it is the graph output", "[passes][fuse-conv-add]") {
  testing::GraphBuilder b(22);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 6, 6});
  ir::Value* y = b.node("Add", {b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})}), b.weight("c", {4, 1, 1})}, {}, "out");
  b.output(y, DataType::kFloat, {1, 4, 6, 6});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "fuse-conv-add");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Conv"});
  CHECK(run.after.graph->outputs()[0]->name() == "out");
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-conv-add leaves the graph unchanged when it must", "[passes][fuse-conv-add]") {
  testing::GraphBuilder b(23);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 6, 6});
  SECTION("the Conv output has two users") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(b.node("Add", {c, b.weight("c", {4, 1, 1})}), DataType::kFloat, {1, 4, 6, 6});
    b.output(b.node("Relu", {c}), DataType::kFloat, {1, 4, 6, 6});
    testing::requireUnchanged(b.build(13), "fuse-conv-add");
  }
  SECTION("the Conv output is a graph output") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(c, DataType::kFloat, {1, 4, 6, 6});
    b.output(b.node("Add", {c, b.weight("c", {4, 1, 1})}), DataType::kFloat, {1, 4, 6, 6});
    testing::requireUnchanged(b.build(13), "fuse-conv-add");
  }
  SECTION("the addend is not a constant") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(b.node("Add", {c, b.input("c", DataType::kFloat, {4, 1, 1})}), DataType::kFloat, {1, 4, 6, 6});
    testing::requireUnchanged(b.build(13), "fuse-conv-add");
  }
  SECTION("the weight is not a constant") {
    ir::Value* c = b.node("Conv", {x, b.input("w", DataType::kFloat, {4, 3, 1, 1})});
    b.output(b.node("Add", {c, b.weight("c", {4, 1, 1})}), DataType::kFloat, {1, 4, 6, 6});
    testing::requireUnchanged(b.build(13), "fuse-conv-add");
  }
  SECTION("the addend varies along a spatial axis") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(b.node("Add", {c, b.weight("c", {4, 1, 6})}), DataType::kFloat, {1, 4, 6, 6});
    testing::requireUnchanged(b.build(13), "fuse-conv-add");
  }
  SECTION("a one-element addend of higher rank broadcasts the output to more dims") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(b.node("Add", {c, b.weight("c", {1, 1, 1, 1, 1})}), DataType::kFloat, {1, 1, 4, 6, 6});
    testing::requireUnchanged(b.build(13), "fuse-conv-add");
  }
}
