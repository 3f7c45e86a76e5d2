// fuse-layernorm: the decomposed ReduceMean/Sub/Pow/Sqrt/Div pattern -> LayerNormalization.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

namespace {

struct Options {
  int64_t opset = 17;
  bool withBeta = true;
  std::vector<int64_t> axes = {-1};
  bool subHasThirdUser = false;
  bool castBeforePow = false;
  bool normalizedIsOutput = false;
  /// beta as [1, 8]: Add broadcasts it, LayerNormalization would not take it.
  bool betaOfRank2 = false;
  /// gamma's (and beta's) dims when set; otherwise they follow the axes.
  std::vector<int64_t> gammaDims;
};

ir::Value* reduceMean(testing::GraphBuilder& b, ir::Value* x, const Options& o) {
  if (o.opset >= 18) {
    return b.node("ReduceMean", {x, b.constantInt64(b.graph().uniqueValueName("axes"),
                                                    {static_cast<int64_t>(o.axes.size())}, o.axes)});
  }
  return b.node("ReduceMean", {x}, {Attribute::makeInts("axes", o.axes)});
}

// y = (x - mean) / sqrt(var + eps) * gamma (+ beta), over the last axis of x[2,5,8].
ir::Model decomposed(const Options& o) {
  testing::GraphBuilder b(161);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 5, 8});
  ir::Value* d = b.node("Sub", {x, reduceMean(b, x, o)});
  ir::Value* sq =
      o.castBeforePow ? b.node("Cast", {d}, {Attribute::makeInt("to", static_cast<int64_t>(DataType::kFloat))}) : d;
  ir::Value* var = reduceMean(b, b.node("Pow", {sq, b.constant("two", {}, {2.f})}), o);
  ir::Value* den = b.node("Sqrt", {b.node("Add", {var, b.constant("eps", {}, {1e-5f})})});
  ir::Value* n = b.node("Div", {d, den});
  // gamma and beta broadcast along the normalized axis: [8] for the last, [5, 1] for axis 1.
  std::vector<int64_t> normalized =
      o.axes == std::vector<int64_t>{-1} ? std::vector<int64_t>{8} : std::vector<int64_t>{5, 1};
  if (!o.gammaDims.empty()) normalized = o.gammaDims;
  ir::Value* y = b.node("Mul", {n, b.weight("gamma", normalized, DataType::kFloat, 0.5, 1.5)});
  if (o.withBeta) {
    std::vector<int64_t> betaDims = o.betaOfRank2 ? std::vector<int64_t>{1, 8} : normalized;
    y = b.node("Add", {y, b.weight("beta", betaDims)}, {}, "ln_out");
  }
  b.output(y, DataType::kFloat, {2, 5, 8});
  if (o.subHasThirdUser) b.output(b.node("Relu", {d}), DataType::kFloat, {2, 5, 8});
  if (o.normalizedIsOutput) b.output(n, DataType::kFloat, {2, 5, 8});
  return b.build(o.opset);
}

}  // namespace

TEST_CASE("fuse-layernorm fuses the decomposed pattern at opset 17 and 18", "[passes][fuse-layernorm]") {
  Options o;
  o.opset = GENERATE(17, 18);
  o.withBeta = GENERATE(true, false);
  o.castBeforePow = GENERATE(false, true);
  INFO("opset " << o.opset << ", beta " << o.withBeta << ", cast " << o.castBeforePow);
  ir::Model model = decomposed(o);
  auto run = testing::runPipelineOn(model, "fuse-layernorm");
  REQUIRE(testing::opTypes(*run.after.graph) == std::vector<std::string>{"LayerNormalization"});
  const ir::Node* ln = run.after.graph->nodes()[0];
  CHECK(ln->attrInt("axis", 0) == -1);
  CHECK(ln->attrFloat("epsilon", 0) == Approx(1e-5f));
  CHECK(ln->numInputs() == (o.withBeta ? 3u : 2u));
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-layernorm fuses up to gamma when beta does not fit LayerNormalization", "[passes][fuse-layernorm]") {
  Options o;
  o.betaOfRank2 = true;
  ir::Model model = decomposed(o);
  auto run = testing::runPipelineOn(model, "fuse-layernorm");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"LayerNormalization", "Add"});
  CHECK(run.after.graph->outputs()[0]->name() == "ln_out");
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fuse-layernorm leaves the pattern decomposed when it must", "[passes][fuse-layernorm]") {
  Options o;
  SECTION("opset 16 has no LayerNormalization") {
    o.opset = 16;
    ir::Model model = decomposed(o);
    auto run = testing::runPipelineOn(model, "fuse-layernorm");
    CHECK(testing::graphText(run.after) == testing::graphText(model));
    CHECK(run.stats[0].counters.at("left-decomposed") == 1);
    return;
  }
  SECTION("x - mean has a third user") {
    o.subHasThirdUser = true;
  }
  SECTION("the reduced axis is not the last") {
    o.axes = {1};
  }
  SECTION("more reduced axes than x has, gamma of that rank (fuzz regression)") {
    o.axes = {-4, -3, -2, -1};
    o.gammaDims = {1, 2, 5, 8};
    o.withBeta = false;
  }
  testing::requireUnchanged(decomposed(o), "fuse-layernorm");
}

TEST_CASE("fuse-layernorm notes what it left at a low opset", "[passes][fuse-layernorm]") {
  Options o;
  o.opset = 14;
  ir::Model model = decomposed(o);
  auto pipeline = passes::parsePipeline("fuse-layernorm");
  REQUIRE(pipeline.isOk());
  ir::Model copy = model.clone();
  passes::PassContext ctx(copy);
  REQUIRE(passes::runPipeline(copy, *pipeline, ctx).isOk());
  REQUIRE(ctx.notes().size() == 1);
  CHECK(ctx.notes()[0].find("opset 14") != std::string::npos);
}
