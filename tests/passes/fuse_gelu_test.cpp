// fuse-gelu: the Erf and tanh forms of GELU -> Gelu at opset >= 20.
#include <catch2/catch.hpp>
#include <cmath>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

namespace {

enum class Form { kErfDiv, kErfMulHalfLast, kErfHalfFirst, kErfHalfOnOnePlus, kTanhPow, kTanhMulCube };

// GELU of x[2,16] written out in `form`, followed by a Relu; opset as given.
ir::Model decomposed(Form form, int64_t opset, bool extraUse = false) {
  testing::GraphBuilder b(171);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 16});
  ir::Value* half = b.constant("half", {}, {0.5f});
  ir::Value* one = b.constant("one", {}, {1.f});
  ir::Value* onePlus = nullptr;
  if (form == Form::kTanhPow || form == Form::kTanhMulCube) {
    ir::Value* cube = form == Form::kTanhPow ? b.node("Pow", {x, b.constant("three", {}, {3.f})})
                                             : b.node("Mul", {x, b.node("Mul", {x, x})});
    ir::Value* inner = b.node("Add", {x, b.node("Mul", {b.constant("k", {}, {0.044715f}), cube})});
    ir::Value* th = b.node("Tanh", {b.node("Mul", {inner, b.constant("s", {}, {0.7978845608f})})});
    onePlus = b.node("Add", {th, one});
  } else {
    ir::Value* scaled = form == Form::kErfDiv ? b.node("Div", {x, b.constant("sqrt2", {}, {1.4142135f})})
                                              : b.node("Mul", {x, b.constant("rsqrt2", {}, {0.70710678f})});
    onePlus = b.node("Add", {one, b.node("Erf", {scaled})});
  }
  ir::Value* y = nullptr;
  if (form == Form::kErfHalfFirst) {
    y = b.node("Mul", {b.node("Mul", {x, half}), onePlus});
  } else if (form == Form::kErfHalfOnOnePlus) {
    y = b.node("Mul", {x, b.node("Mul", {onePlus, half})});
  } else {
    y = b.node("Mul", {half, b.node("Mul", {x, onePlus})});
  }
  b.output(b.node("Relu", {y}), DataType::kFloat, {2, 16});
  if (extraUse) b.output(onePlus, DataType::kFloat, {2, 16});
  return b.build(opset);
}

}  // namespace

TEST_CASE("fuse-gelu fuses the erf and tanh forms at opset 20", "[passes][fuse-gelu]") {
  Form form = GENERATE(Form::kErfDiv, Form::kErfMulHalfLast, Form::kErfHalfFirst, Form::kErfHalfOnOnePlus,
                       Form::kTanhPow, Form::kTanhMulCube);
  INFO("form " << static_cast<int>(form));
  ir::Model model = decomposed(form, 20);
  auto run = testing::runPipelineOn(model, "fuse-gelu");
  REQUIRE(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Gelu", "Relu"});
  bool tanh = form == Form::kTanhPow || form == Form::kTanhMulCube;
  CHECK(run.after.graph->nodes()[0]->attrString("approximate", "none") == (tanh ? "tanh" : "none"));
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  // Inputs over a range where both halves of the curve matter.
  testing::requireSameOutputs(model, run.after, testing::kExactRelativeTolerance, /*seed=*/5, -4.0, 4.0);
}

TEST_CASE("fuse-gelu leaves the pattern decomposed when it must", "[passes][fuse-gelu]") {
  SECTION("opset 19 has no Gelu, and the pass says so") {
    ir::Model model = decomposed(Form::kErfDiv, 19);
    auto pipeline = passes::parsePipeline("fuse-gelu");
    REQUIRE(pipeline.isOk());
    ir::Model copy = model.clone();
    passes::PassContext ctx(copy);
    auto stats = passes::runPipeline(copy, *pipeline, ctx);
    REQUIRE(stats.isOk());
    CHECK(testing::graphText(copy) == testing::graphText(model));
    CHECK((*stats)[0].counters.at("left-decomposed") == 1);
    REQUIRE(ctx.notes().size() == 1);
    CHECK(ctx.notes()[0].find("opset 19") != std::string::npos);
  }
  SECTION("an intermediate is also a graph output") {
    testing::requireUnchanged(decomposed(Form::kErfDiv, 20, /*extraUse=*/true), "fuse-gelu");
  }
  SECTION("a wrong constant (not GELU)") {
    testing::GraphBuilder b(172);
    ir::Value* x = b.input("x", DataType::kFloat, {2, 16});
    ir::Value* onePlus = b.node(
        "Add", {b.constant("one", {}, {1.f}), b.node("Erf", {b.node("Div", {x, b.constant("two", {}, {2.f})})})});
    b.output(b.node("Mul", {b.constant("half", {}, {0.5f}), b.node("Mul", {x, onePlus})}), DataType::kFloat, {2, 16});
    testing::requireUnchanged(b.build(20), "fuse-gelu");
  }
}
