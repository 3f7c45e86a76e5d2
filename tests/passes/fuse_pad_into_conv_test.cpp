// fuse-pad-into-conv: a constant spatial Pad absorbed into the pads of Conv and pooling.
#include <catch2/catch.hpp>
#include <limits>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Pad(x[1,3,8,8], pads, value) at opset 13 (pads and value as inputs).
ir::Value* pad(testing::GraphBuilder& b, ir::Value* x, std::vector<int64_t> pads, float value,
               const std::string& mode = "constant") {
  return b.node("Pad", {x, b.constantInt64("pads", {8}, pads), b.constant("value", {}, {value})},
                {Attribute::makeString("mode", mode)});
}

ir::Value* input(testing::GraphBuilder& b) {
  return b.input("x", DataType::kFloat, {1, 3, 8, 8});
}

}  // namespace

TEST_CASE("fuse-pad-into-conv absorbs a zero Pad into Conv", "[passes][fuse-pad-into-conv]") {
  testing::GraphBuilder b(151);
  ir::Value* p = pad(b, input(b), {0, 0, 1, 2, 0, 0, 2, 1}, 0.f);
  ir::Value* y = b.node("Conv", {p, b.weight("w", {4, 3, 3, 3})}, {Attribute::makeInts("pads", {1, 1, 1, 1})});
  b.output(y, DataType::kFloat, {1, 4, 11, 11});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "fuse-pad-into-conv");
  REQUIRE(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Conv"});
  CHECK(run.after.graph->nodes()[0]->attrInts("pads") == std::vector<int64_t>{2, 3, 3, 2});
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-pad-into-conv absorbs a Pad into pooling where exact", "[passes][fuse-pad-into-conv]") {
  testing::GraphBuilder b(152);
  ir::Value* x = input(b);
  std::vector<int64_t> expectedPads;
  std::vector<int64_t> outDims;
  std::string op;
  SECTION("AveragePool counting the padding") {
    ir::Value* p = pad(b, x, {0, 0, 1, 1, 0, 0, 1, 1}, 0.f);
    b.output(b.node("AveragePool", {p},
                    {Attribute::makeInts("kernel_shape", {3, 3}), Attribute::makeInts("pads", {1, 0, 0, 1}),
                     Attribute::makeInt("count_include_pad", 1)}),
             DataType::kFloat, {1, 3, 9, 9});
    expectedPads = {2, 1, 1, 2};
    op = "AveragePool";
  }
  SECTION("AveragePool without pads of its own, not counting padding") {
    ir::Value* p = pad(b, x, {0, 0, 1, 1, 0, 0, 1, 1}, 0.f);
    b.output(b.node("AveragePool", {p},
                    {Attribute::makeInts("kernel_shape", {3, 3}), Attribute::makeInts("strides", {2, 2})}),
             DataType::kFloat, {1, 3, 4, 4});
    expectedPads = {1, 1, 1, 1};
    op = "AveragePool";
  }
  SECTION("MaxPool after a -inf Pad") {
    ir::Value* p = pad(b, x, {0, 0, 0, 1, 0, 0, 1, 0}, -kInf);
    b.output(b.node("MaxPool", {p}, {Attribute::makeInts("kernel_shape", {2, 2})}), DataType::kFloat, {1, 3, 8, 8});
    expectedPads = {0, 1, 1, 0};
    op = "MaxPool";
  }
  SECTION("MaxPool after a Pad with the lowest float") {
    ir::Value* p = pad(b, x, {0, 0, 1, 1, 0, 0, 1, 1}, std::numeric_limits<float>::lowest());
    b.output(b.node("MaxPool", {p}, {Attribute::makeInts("kernel_shape", {3, 3})}), DataType::kFloat, {1, 3, 8, 8});
    expectedPads = {1, 1, 1, 1};
    op = "MaxPool";
  }
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "fuse-pad-into-conv");
  REQUIRE(testing::opTypes(*run.after.graph) == std::vector<std::string>{op});
  const ir::Node* pool = run.after.graph->nodes()[0];
  CHECK(pool->attrInts("pads") == expectedPads);
  if (op == "AveragePool") CHECK(pool->attrInt("count_include_pad", 0) == 1);
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-pad-into-conv leaves Pads that are not the consumer's padding", "[passes][fuse-pad-into-conv]") {
  testing::GraphBuilder b(153);
  ir::Value* x = input(b);
  ir::Value* w = b.weight("w", {4, 3, 3, 3});
  std::vector<int64_t> spatial = {0, 0, 1, 1, 0, 0, 1, 1};
  SECTION("a non-zero Pad value before Conv") {
    b.output(b.node("Conv", {pad(b, x, spatial, 1.f), w}), DataType::kFloat, {1, 4, 8, 8});
  }
  SECTION("a reflect Pad") {
    b.output(b.node("Conv", {pad(b, x, spatial, 0.f, "reflect"), w}), DataType::kFloat, {1, 4, 8, 8});
  }
  SECTION("a Pad of the channel axis") {
    b.output(b.node("Conv", {pad(b, x, {0, 1, 0, 0, 0, 0, 0, 0}, 0.f), b.weight("w4", {4, 4, 3, 3})}), DataType::kFloat,
             {1, 4, 6, 6});
  }
  SECTION("a Pad output with two users") {
    ir::Value* p = pad(b, x, spatial, 0.f);
    b.output(b.node("Conv", {p, w}), DataType::kFloat, {1, 4, 8, 8});
    b.output(b.node("Relu", {p}), DataType::kFloat, {1, 3, 10, 10});
  }
  SECTION("a Pad output that is a graph output") {
    ir::Value* p = pad(b, x, spatial, 0.f);
    b.output(p, DataType::kFloat, {1, 3, 10, 10});
    b.output(b.node("Conv", {p, w}), DataType::kFloat, {1, 4, 8, 8});
  }
  SECTION("a zero Pad before MaxPool") {
    b.output(b.node("MaxPool", {pad(b, x, spatial, 0.f)}, {Attribute::makeInts("kernel_shape", {3, 3})}),
             DataType::kFloat, {1, 3, 8, 8});
  }
  SECTION("an AveragePool with pads of its own that excludes padding from the count") {
    b.output(b.node("AveragePool", {pad(b, x, spatial, 0.f)},
                    {Attribute::makeInts("kernel_shape", {3, 3}), Attribute::makeInts("pads", {1, 1, 1, 1})}),
             DataType::kFloat, {1, 3, 10, 10});
  }
  SECTION("pooling pads that would reach the kernel size") {
    b.output(
        b.node("MaxPool", {pad(b, x, {0, 0, 2, 2, 0, 0, 2, 2}, -kInf)}, {Attribute::makeInts("kernel_shape", {2, 2})}),
        DataType::kFloat, {1, 3, 11, 11});
  }
  SECTION("pooling in ceil mode") {
    b.output(b.node("AveragePool", {pad(b, x, spatial, 0.f)},
                    {Attribute::makeInts("kernel_shape", {3, 3}), Attribute::makeInts("strides", {2, 2}),
                     Attribute::makeInt("ceil_mode", 1), Attribute::makeInt("count_include_pad", 1)}),
             DataType::kFloat, {1, 3, 5, 5});
  }
  SECTION("a Pad whose pads are not constant") {
    ir::Value* p = b.node("Pad", {x, b.input("pads", DataType::kInt64, {8})});
    b.output(b.node("Conv", {p, w}), DataType::kFloat, {1, 4, 8, 8});
  }
  testing::requireUnchanged(b.build(13), "fuse-pad-into-conv");
}
