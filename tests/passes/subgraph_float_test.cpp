// noteFloatWeightOps inside bodies: the quantizers rewrite inside If/Loop/Scan bodies, and say
// which nodes with weights they leave float there, as in the main graph.
#include <catch2/catch.hpp>

#include "support/onnx_builder.h"
#include "whittle/passes/pass.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/passes/registry.h"

using namespace whittle;

namespace {

/// x [2, 4] -> If(cond) then MatMul(x, w) else Relu(MatMul(x, w)) -> y, w in the main graph;
/// `lstm` puts an LSTM over x [1, 2, 4] in each branch instead.
ir::Model ifModel(bool lstm) {
  testing::ProtoGraph thenBranch("then"), elseBranch("else");
  testing::ProtoGraph main("main");
  if (lstm) {
    onnx::AttributeProto hidden;
    hidden.set_name("hidden_size");
    hidden.set_type(onnx::AttributeProto::INT);
    hidden.set_i(3);
    thenBranch.node("LSTM", {"x", "w", "r"}, {"t_y", "t"}, {hidden}, "forward_lstm").output("t");
    elseBranch.node("LSTM", {"x", "w", "r"}, {"e_y", "e"}, {hidden}, "other_lstm").output("e");
    main.input("x", onnx::TensorProto::FLOAT, {1, 2, 4}).input("cond", onnx::TensorProto::BOOL, {});
    main.floats("w", {1, 12, 4}, std::vector<float>(48, 0.1f)).floats("r", {1, 12, 3}, std::vector<float>(36, 0.1f));
  } else {
    thenBranch.node("MatMul", {"x", "w"}, {"t"}).output("t");
    elseBranch.node("MatMul", {"x", "w"}, {"m"}).node("Relu", {"m"}, {"e"}).output("e");
    main.input("x", onnx::TensorProto::FLOAT, {2, 4}).input("cond", onnx::TensorProto::BOOL, {});
    main.floats("w", {4, 3}, std::vector<float>(12, 0.5f));
  }
  main.node("If", {"cond"}, {"y"}, {testing::onnxGraph("then_branch", thenBranch), testing::onnxGraph("else_branch", elseBranch)},
            "gate");
  main.output("y", onnx::TensorProto::FLOAT);
  return testing::loadProtoModel(main, 13);
}

struct Outcome {
  Status status;
  passes::PassStats stats;
  std::vector<std::string> warnings;
  std::vector<std::string> notes;
};

Outcome quantizeDynamic(ir::Model model) {
  auto pipeline = passes::parsePipeline("quantize-dynamic");
  REQUIRE(pipeline.isOk());
  passes::PassContext ctx(model);
  ctx.strict = true;
  auto stats = passes::runPipeline(model, *pipeline, ctx, {});
  return {stats.status(), stats.isOk() ? stats->back() : passes::PassStats{}, ctx.warnings(), ctx.notes()};
}

}  // namespace

TEST_CASE("quantize-dynamic quantizes the MatMuls inside both branches, their weight captured from the main graph",
          "[passes][control-flow]") {
  Outcome o = quantizeDynamic(ifModel(false));
  INFO(o.status.message());
  REQUIRE(o.status.isOk());
  CHECK(o.warnings.empty());
  CHECK(o.stats.counters.at("matmuls-quantized") == 2);
  bool noted = false;
  for (const std::string& n : o.notes) noted = noted || n == "quantize-dynamic: 2 MatMul/Gemm quantized inside If/Loop/Scan bodies";
  CHECK(noted);
}

TEST_CASE("quantizers note the LSTMs they leave float inside bodies", "[passes][control-flow]") {
  Outcome o = quantizeDynamic(ifModel(true));
  INFO(o.status.message());
  REQUIRE(o.status.isOk());
  CHECK(o.warnings.empty());
  int noted = 0;
  for (const std::string& n : o.notes) {
    noted += n.find("LSTM 'forward_lstm' stays float32 (LSTM, GRU and RNN have no standard int8 form; quantize-dynamic{lstm=true}") != std::string::npos ? 1 : 0;
    noted += n.find("LSTM 'other_lstm' stays float32") != std::string::npos ? 1 : 0;
  }
  CHECK(noted == 2);
}
