// eliminate-dead: nodes nothing reads and unused initializers removed.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"
#include "support/onnx_builder.h"

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

TEST_CASE("eliminate-dead keeps values that a branch returns directly from the main graph", "[passes][eliminate-dead]") {
  // The then branch has no node: its output names the main graph's r. Before the loader
  // counted graph outputs of subgraphs as captures, r had no use and its Relu was removed.
  testing::ProtoGraph thenBranch("then"), elseBranch("else");
  thenBranch.output("r", onnx::TensorProto::FLOAT, {2});
  elseBranch.node("Neg", {"x"}, {"e"}).output("e", onnx::TensorProto::FLOAT, {2});
  testing::ProtoGraph main("main");
  main.input("c", onnx::TensorProto::BOOL, {}).input("x", onnx::TensorProto::FLOAT, {2});
  main.node("Relu", {"x"}, {"r"});
  main.node("If", {"c"}, {"z"}, {testing::onnxGraph("then_branch", thenBranch), testing::onnxGraph("else_branch", elseBranch)});
  main.output("z", onnx::TensorProto::FLOAT, {2}, true);
  ir::Model model = testing::loadProtoModel(main, 13);
  auto run = testing::runPipelineOn(model, "eliminate-dead");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Relu", "If"});
  std::vector<runtime::NamedTensor> feeds{
      {"c", ir::Tensor::fromVector(DataType::kBool, {}, std::vector<uint8_t>{1})},
      {"x", ir::Tensor::fromVector(DataType::kFloat, {2}, std::vector<float>{-3, 4})}};
  auto out = testing::runModel(run.after, feeds);
  CHECK(out[0].second.values<float>()[0] == 0.0f);
  CHECK(out[0].second.values<float>()[1] == 4.0f);
}
