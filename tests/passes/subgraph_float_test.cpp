// warnSubgraphWeightsLeftFloat: the quantizers say loudly (a warning, an error under --strict)
// how many nodes with weights they leave float inside If/Loop/Scan bodies.
#include <catch2/catch.hpp>

#include "support/onnx_builder.h"
#include "whittle/passes/pass.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/passes/registry.h"

using namespace whittle;

namespace {

/// x [2, 4] -> If(cond) then MatMul(x, w) else Relu(MatMul(x, w)) -> y; `weighted` = false
/// puts Relu / Sigmoid in the branches instead.
ir::Model ifModel(bool weighted) {
  testing::ProtoGraph thenBranch("then"), elseBranch("else");
  if (weighted) {
    thenBranch.node("MatMul", {"x", "w"}, {"t"}).output("t");
    elseBranch.node("MatMul", {"x", "w"}, {"m"}).node("Relu", {"m"}, {"e"}).output("e");
  } else {
    thenBranch.node("Relu", {"x"}, {"t"}).output("t");
    elseBranch.node("Sigmoid", {"x"}, {"e"}).output("e");
  }
  testing::ProtoGraph main("main");
  main.input("x", onnx::TensorProto::FLOAT, {2, 4}).input("cond", onnx::TensorProto::BOOL, {});
  main.floats("w", {4, 3}, std::vector<float>(12, 0.5f));
  main.node("If", {"cond"}, {"y"}, {testing::onnxGraph("then_branch", thenBranch), testing::onnxGraph("else_branch", elseBranch)},
            "gate");
  main.output("y", onnx::TensorProto::FLOAT);
  return testing::loadProtoModel(main, 13);
}

struct Outcome {
  Status status;
  std::vector<std::string> warnings;
  std::vector<std::string> notes;
};

Outcome quantize(ir::Model model, bool strict) {
  auto pipeline = passes::parsePipeline("quantize-dynamic");
  REQUIRE(pipeline.isOk());
  passes::PassContext ctx(model);
  ctx.strict = strict;
  auto stats = passes::runPipeline(model, *pipeline, ctx, {});
  return {stats.status(), ctx.warnings(), ctx.notes()};
}

}  // namespace

TEST_CASE("quantizers warn about the weighted nodes they leave float inside subgraphs", "[passes][control-flow]") {
  Outcome o = quantize(ifModel(true), false);
  INFO(o.status.message());
  REQUIRE(o.status.isOk());
  REQUIRE(o.warnings.size() == 1);
  CHECK(o.warnings[0] ==
        "quantize-dynamic: 2 nodes with weights inside the subgraphs of 1 control-flow node (If 'gate') are left float "
        "(2 MatMul): passes do not rewrite inside subgraphs");

  Outcome strict = quantize(ifModel(true), true);
  REQUIRE_FALSE(strict.status.isOk());
  CHECK(strict.status.message().find("2 nodes with weights") != std::string::npos);
  CHECK(strict.status.message().find("--strict") != std::string::npos);
}

TEST_CASE("subgraphs without weights get a note, not a warning", "[passes][control-flow]") {
  Outcome o = quantize(ifModel(false), true);
  INFO(o.status.message());
  REQUIRE(o.status.isOk());
  CHECK(o.warnings.empty());
  bool noted = false;
  for (const std::string& n : o.notes) noted = noted || n.find("subgraphs of 1 control-flow node (If 'gate') are left float") != std::string::npos;
  CHECK(noted);
}
