// fuse-conv-bn: BatchNormalization folded into the preceding Conv / ConvTranspose.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

namespace {

struct BnParams {
  ir::Value* scale;
  ir::Value* bias;
  ir::Value* mean;
  ir::Value* var;
};

BnParams bnParams(testing::GraphBuilder& b, int64_t channels) {
  return {b.weight("bn_scale", {channels}, DataType::kFloat, 0.5, 1.5), b.weight("bn_bias", {channels}),
          b.weight("bn_mean", {channels}), b.weight("bn_var", {channels}, DataType::kFloat, 0.2, 2.0)};
}

ir::Value* batchNorm(testing::GraphBuilder& b, ir::Value* x, const BnParams& p, std::vector<Attribute> attrs = {}) {
  attrs.push_back(Attribute::makeFloat("epsilon", 1e-3f));
  return b.node("BatchNormalization", {x, p.scale, p.bias, p.mean, p.var}, attrs);
}

// x -> Conv -> BN -> Relu -> y
ir::Model convBnRelu(bool withBias) {
  testing::GraphBuilder b(11);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 8, 8});
  ir::Value* w = b.weight("w", {4, 3, 3, 3});
  std::vector<ir::Value*> convIn = {x, w};
  if (withBias) convIn.push_back(b.weight("b", {4}));
  ir::Value* c = b.node("Conv", convIn, {Attribute::makeInts("pads", {1, 1, 1, 1})});
  ir::Value* y = b.node("Relu", {batchNorm(b, c, bnParams(b, 4))});
  b.output(y, DataType::kFloat, {1, 4, 8, 8});
  return b.build(15);
}

}  // namespace

TEST_CASE("fuse-conv-bn folds BatchNormalization into Conv", "[passes][fuse-conv-bn]") {
  bool withBias = GENERATE(false, true);
  INFO("conv bias " << withBias);
  ir::Model model = convBnRelu(withBias);
  auto run = testing::runPipelineOn(model, "fuse-conv-bn");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Conv", "Relu"});
  CHECK(run.rewrites() == 1);
  CHECK(run.stats[0].nodesBefore - run.stats[0].nodesAfter == 1);
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  // The BN parameters are gone; the Conv has new weight and bias.
  CHECK(run.after.graph->initializers().size() == 2);
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-conv-bn folds BatchNormalization into a grouped ConvTranspose", "[passes][fuse-conv-bn]") {
  testing::GraphBuilder b(12);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 4, 5, 5});
  ir::Value* w = b.weight("w", {4, 3, 3, 3});  // Cin 4, Cout/group 3, group 2 -> 6 outputs
  ir::Value* c = b.node("ConvTranspose", {x, w, b.weight("b", {6})},
                        {Attribute::makeInt("group", 2), Attribute::makeInts("strides", {2, 2})});
  ir::Value* y = batchNorm(b, c, bnParams(b, 6));
  b.output(y, DataType::kFloat, {1, 6, 11, 11});
  ir::Model model = b.build(15);
  auto run = testing::runPipelineOn(model, "fuse-conv-bn");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"ConvTranspose"});
  CHECK(run.after.graph->outputs()[0]->name() == y->name());
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-conv-bn leaves the graph unchanged when it must", "[passes][fuse-conv-bn]") {
  testing::GraphBuilder b(13);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 3, 8, 8});
  SECTION("the Conv output has two users") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(batchNorm(b, c, bnParams(b, 4)), DataType::kFloat, {1, 4, 8, 8});
    b.output(b.node("Relu", {c}), DataType::kFloat, {1, 4, 8, 8});
    testing::requireUnchanged(b.build(15), "fuse-conv-bn");
  }
  SECTION("the Conv output is a graph output") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(c, DataType::kFloat, {1, 4, 8, 8});
    b.output(batchNorm(b, c, bnParams(b, 4)), DataType::kFloat, {1, 4, 8, 8});
    testing::requireUnchanged(b.build(15), "fuse-conv-bn");
  }
  SECTION("the weight is not a constant") {
    ir::Value* w = b.input("w", DataType::kFloat, {4, 3, 1, 1});
    b.output(batchNorm(b, b.node("Conv", {x, w}), bnParams(b, 4)), DataType::kFloat, {1, 4, 8, 8});
    testing::requireUnchanged(b.build(15), "fuse-conv-bn");
  }
  SECTION("a BN parameter is not a constant") {
    BnParams p = bnParams(b, 4);
    p.mean = b.input("mean", DataType::kFloat, {4});
    b.output(batchNorm(b, b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})}), p), DataType::kFloat, {1, 4, 8, 8});
    testing::requireUnchanged(b.build(15), "fuse-conv-bn");
  }
  SECTION("training mode") {
    ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 1, 1})});
    b.output(batchNorm(b, c, bnParams(b, 4), {Attribute::makeInt("training_mode", 1)}), DataType::kFloat, {1, 4, 8, 8});
    testing::requireUnchanged(b.build(15), "fuse-conv-bn");
  }
}
