// eliminate-identity: Identity, inference Dropout, no-op Cast / Reshape / Transpose removed;
// consecutive reshaping ops merged into one Reshape.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"
#include "whittle/onnx_io/onnx_io.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

namespace {

void setType(ir::Value* v, std::vector<int64_t> dims) {
  std::vector<ir::Dim> d;
  for (int64_t x : dims) d.push_back(ir::Dim::known(x));
  v->mutableType() = ir::ValueType{DataType::kFloat, d, {}};
}

}  // namespace

TEST_CASE("eliminate-identity removes no-op nodes", "[passes][eliminate-identity]") {
  testing::GraphBuilder b(91);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
  ir::Value* v = b.node("Relu", {x});
  std::string kept;
  SECTION("Identity") {
    v = b.node("Identity", {v});
  }
  SECTION("Dropout without training_mode") {
    v = b.node("Dropout", {v, b.constant("ratio", {}, {0.5f})});
  }
  SECTION("Dropout with training_mode = false") {
    ir::Tensor mode = ir::Tensor::fromVector(DataType::kBool, {}, std::vector<uint8_t>{0});
    v = b.node("Dropout", {v, b.constant("ratio", {}, {0.5f}), b.constant("mode", mode)});
  }
  SECTION("Dropout whose mask output is unused") {
    v = b.nodeN("Dropout", {v}, 2)[0];
  }
  SECTION("Cast to the same type") {
    setType(v, {2, 3, 4});
    v = b.node("Cast", {v}, {Attribute::makeInt("to", static_cast<int64_t>(DataType::kFloat))});
  }
  SECTION("Reshape to the same shape") {
    setType(v, {2, 3, 4});
    v = b.node("Reshape", {v, b.constantInt64("shape", {3}, {2, 0, 4})});
  }
  SECTION("Transpose with the identity permutation") {
    v = b.node("Transpose", {v}, {Attribute::makeInts("perm", {0, 1, 2})});
  }
  ir::Value* y = b.node("Sigmoid", {v});
  b.output(y, DataType::kFloat, {2, 3, 4});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "eliminate-identity");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Relu", "Sigmoid"});
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("eliminate-identity keeps a removed node's graph output name", "[passes][eliminate-identity]") {
  testing::GraphBuilder b(92);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* y = b.node("Identity", {b.node("Relu", {x})}, {}, "result");
  b.output(y, DataType::kFloat, {2, 3});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "eliminate-identity");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Relu"});
  CHECK(run.after.graph->outputs()[0]->name() == "result");
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("eliminate-identity merges consecutive reshaping ops", "[passes][eliminate-identity]") {
  testing::GraphBuilder b(93);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3, 4});
  ir::Value* v = b.node("Relu", {x});
  SECTION("Reshape after Reshape") {
    v = b.node("Reshape", {v, b.constantInt64("s1", {2}, {6, 4})});
    v = b.node("Reshape", {v, b.constantInt64("s2", {3}, {4, -1, 2})});
    setType(v, {4, 3, 2});
  }
  SECTION("Reshape after Flatten") {
    v = b.node("Flatten", {v}, {Attribute::makeInt("axis", 1)});
    v = b.node("Reshape", {v, b.constantInt64("s2", {2}, {4, 6})});
    setType(v, {4, 6});
  }
  SECTION("Unsqueeze after Squeeze") {
    ir::Value* r = b.node("Reshape", {v, b.constantInt64("s1", {4}, {2, 1, 3, 4})});
    setType(r, {2, 1, 3, 4});
    v = b.node("Squeeze", {r, b.constantInt64("axes1", {1}, {1})});
    setType(v, {2, 3, 4});
    v = b.node("Unsqueeze", {v, b.constantInt64("axes2", {1}, {0})});
    setType(v, {1, 2, 3, 4});
  }
  SECTION("Squeeze after Unsqueeze") {
    v = b.node("Unsqueeze", {v, b.constantInt64("axes1", {1}, {0})});
    setType(v, {1, 2, 3, 4});
    v = b.node("Squeeze", {v, b.constantInt64("axes2", {1}, {0})});
    setType(v, {2, 3, 4});
  }
  ir::Value* y = b.node("Sigmoid", {v});
  b.output(y, DataType::kFloat, *v->type().staticDims());
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "eliminate-identity");
  CHECK(testing::opTypes(*run.after.graph).size() <= 3);
  CHECK(testing::opTypes(*run.after.graph).front() == "Relu");
  CHECK(testing::opTypes(*run.after.graph).back() == "Sigmoid");
  for (const ir::Node* n : run.after.graph->nodes()) {
    if (n->opType() != "Relu" && n->opType() != "Sigmoid") CHECK(n->opType() == "Reshape");
  }
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("eliminate-identity leaves nodes that do something", "[passes][eliminate-identity]") {
  testing::GraphBuilder b(94);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* v = b.node("Relu", {x});
  DataType outType = DataType::kFloat;
  std::vector<int64_t> outDims = {2, 3};
  SECTION("Dropout in training mode") {
    ir::Tensor mode = ir::Tensor::fromVector(DataType::kBool, {}, std::vector<uint8_t>{1});
    v = b.node("Dropout", {v, b.constant("ratio", {}, {0.5f}), b.constant("mode", mode)});
  }
  SECTION("Dropout whose training_mode is a graph input") {
    v = b.node("Dropout", {v, b.constant("ratio", {}, {0.5f}), b.input("mode", DataType::kBool, {})});
  }
  SECTION("Dropout whose mask is used") {
    auto outs = b.nodeN("Dropout", {v}, 2);
    v = outs[0];
    b.output(outs[1], DataType::kBool, {2, 3});
  }
  SECTION("Cast to another type") {
    v = b.node("Cast", {v}, {Attribute::makeInt("to", static_cast<int64_t>(DataType::kDouble))});
    outType = DataType::kDouble;
  }
  SECTION("Reshape to another shape") {
    v = b.node("Reshape", {v, b.constantInt64("shape", {2}, {3, 2})});
    outDims = {3, 2};
  }
  SECTION("Transpose that permutes") {
    v = b.node("Transpose", {v}, {Attribute::makeInts("perm", {1, 0})});
    outDims = {3, 2};
  }
  SECTION("Identity from a graph input to a graph output") {
    v = b.node("Identity", {x});
  }
  b.output(v, outType, outDims);
  testing::requireUnchanged(b.build(13), "eliminate-identity");
}

TEST_CASE("eliminate-identity converges on a dead no-op that cannot be erased (fuzz regression)", "[passes][eliminate-identity]") {
  // Found by fuzz_optimize: a no-op Transpose carrying a graph-typed attribute counts as having
  // side effects, so it stayed after its uses were forwarded and matched again, forever.
  auto model = onnx_io::load(std::string(WHITTLE_SOURCE_DIR) +
                             "/tests/fuzz_regressions/optimize_noop_transpose_with_graph_attribute.onnx");
  INFO(model.status().message());
  REQUIRE(model.isOk());
  auto pipeline = passes::parsePipeline("eliminate-identity");
  REQUIRE(pipeline.isOk());
  passes::PassContext ctx(*model);
  auto stats = passes::runPipeline(*model, *pipeline, ctx, {});
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  CHECK(stats->front().rewrites == 1);
}
