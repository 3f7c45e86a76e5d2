// widen-half: a float16/bfloat16 model computed in float32, its inputs and outputs unchanged;
// and quantize-int8, which widens a half model first so that its convolutions are quantized.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"
#include "support/graph_queries.h"
#include "whittle/ir/shape_inference.h"

using namespace whittle;
using ir::DataType;

namespace {

ir::Attribute castTo(DataType t) { return ir::Attribute::makeInt("to", static_cast<int64_t>(t)); }

/// x (float16) -> Conv (float16 weights) -> Relu -> Cast(float32) -> Mul 2 -> Cast(float16) -> y:
/// squeezenet1.1-fp16's kind of model, with a float32 island a converter left inside.
ir::Model halfModel(DataType half) {
  testing::GraphBuilder b(81);
  ir::Value* x = b.input("x", half, {1, 3, 8, 8});
  ir::Value* w = b.constant("w", b.randomTensor(half, {4, 3, 3, 3}));
  ir::Value* bias = b.constant("bias", b.randomTensor(half, {4}));
  ir::Value* r = b.node("Relu", {b.node("Conv", {x, w, bias}, {}, "conv")}, {}, "relu");
  ir::Value* f = b.node("Cast", {r}, {castTo(DataType::kFloat)}, "to_float");
  ir::Value* m = b.node("Mul", {f, b.constant("two", {}, {2.f})}, {}, "mul");
  b.output(b.node("Cast", {m}, {castTo(half)}, "to_half"), half, {1, 4, 6, 6});
  ir::Model model = b.build(17);
  (void)ir::inferShapes(model);
  return model;
}

}  // namespace

TEST_CASE("widen-half computes a float16 or bfloat16 model in float32 with the same interface", "[passes][widen-half]") {
  for (DataType half : {DataType::kFloat16, DataType::kBFloat16}) {
    CAPTURE(ir::dataTypeName(half));
    ir::Model model = halfModel(half);
    auto run = testing::runPipelineOn(model, "widen-half");
    CHECK(run.rewrites() > 0);
    const ir::Graph& g = *run.after.graph;
    // The interface keeps its names and types; nothing inside is half any more.
    CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
    CHECK(g.inputs()[0]->dtype() == half);
    CHECK(g.outputs()[0]->dtype() == half);
    for (const ir::Value* v : g.values()) {
      if (v->isGraphInput() || v->isGraphOutput()) continue;
      CAPTURE(v->name());
      CHECK(v->dtype() != half);
    }
    const ir::Node* conv = testing::findOp(g, "Conv");
    REQUIRE(conv != nullptr);
    CHECK(conv->input(1)->constant()->dtype() == DataType::kFloat);
    // float32 holds every half value: the outputs differ by the half type's rounding only.
    testing::requireSameOutputs(model, run.after, half == DataType::kFloat16 ? 2e-3 : 1.6e-2);
    testing::requireUnchanged(run.after, "widen-half");
  }
}

TEST_CASE("widen-half leaves a model whose node asks for a half output by dtype as it is, with a note",
          "[passes][widen-half]") {
  // EyeLike(dtype = float16): widening would need that attribute rewritten too; the pass says
  // so and changes nothing (a model with If/Loop/Scan bodies takes the same path).
  testing::GraphBuilder b(82);
  ir::Value* x = b.input("x", DataType::kFloat16, {3, 3});
  ir::Value* eye = b.node("EyeLike", {x}, {ir::Attribute::makeInt("dtype", static_cast<int64_t>(DataType::kFloat16))}, "eye");
  b.output(b.node("Add", {x, eye}, {}, "add"), DataType::kFloat16, {3, 3});
  ir::Model model = b.build(17);
  auto pipeline = passes::parsePipeline("widen-half");
  REQUIRE(pipeline.isOk());
  ir::Model after = model.clone();
  passes::PassContext ctx(after);
  REQUIRE(passes::runPipeline(after, *pipeline, ctx, {}).isOk());
  CHECK(testing::graphText(after) == testing::graphText(model));
  std::string notes;
  for (const std::string& n : ctx.notes()) notes += n + "\n";
  CHECK_THAT(notes, Catch::Contains("widen-half: left the model as it is: node 'eye' (EyeLike)"));
}
