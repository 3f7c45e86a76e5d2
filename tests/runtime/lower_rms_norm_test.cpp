// Step M of the CPU lowering (src/runtime/lower_rms_norm.cpp): RMSNorm written out (Mul or Pow,
// ReduceMean over the last axis, Add eps, Sqrt, Div, Mul by the weight) becomes one RmsNorm;
// structure and numbers against the unlowered graph, and what must stay.
#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/lowering_check.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using whittle::testing::checkSameAsUnlowered;
using whittle::testing::countOps;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;

namespace {

/// How x / sqrt(mean + eps) is written: SmolLM2's Div; torch's dynamo exporter's rsqrt as
/// Reciprocal and a Mul; its TorchScript exporter's as Div(1, .) and a Mul, then a Cast to float32
/// (HF's `.to(input_dtype)`); and a Div(2, .) that is not a reciprocal.
enum class Form { kDiv, kReciprocal, kDivOneCast, kDivTwo };

/// RMSNorm of x as SmolLM2's export writes it (opset 17: axes an attribute; 18: an input), or
/// with the division in another `form`.
ir::Value* rmsNorm(GraphBuilder& b, ir::Value* x, const std::string& n, int64_t opset, bool pow, ir::Value* w,
                   int64_t axis = -1, Form form = Form::kDiv) {
  ir::Value* sq = pow ? b.node("Pow", {x, b.constant(n + "two", {}, {2.f})}, {}, n + "sq")
                      : b.node("Mul", {x, x}, {}, n + "sq");
  ir::Value* mean = opset >= 18
                        ? b.node("ReduceMean", {sq, b.constantInt64(n + "axes", {1}, {axis})}, {}, n + "mean")
                        : b.node("ReduceMean", {sq}, {ir::Attribute::makeInts("axes", {axis})}, n + "mean");
  ir::Value* root = b.node("Sqrt", {b.node("Add", {b.constant(n + "eps", {1}, {1e-5f}), mean}, {}, n + "add")}, {}, n + "sqrt");
  ir::Value* scaled = nullptr;
  switch (form) {
    case Form::kDiv: scaled = b.node("Div", {x, root}, {}, n + "div"); break;
    case Form::kReciprocal: scaled = b.node("Mul", {x, b.node("Reciprocal", {root}, {}, n + "rsqrt")}, {}, n + "mulx"); break;
    case Form::kDivOneCast:
    case Form::kDivTwo: {
      ir::Value* num = b.constant(n + "num", {}, {form == Form::kDivTwo ? 2.f : 1.f});
      scaled = b.node("Mul", {b.node("Div", {num, root}, {}, n + "rsqrt"), x}, {}, n + "mulx");
      if (form == Form::kDivOneCast) {
        scaled = b.node("Cast", {scaled}, {ir::Attribute::makeInt("to", static_cast<int64_t>(ir::DataType::kFloat))}, n + "cast");
      }
      break;
    }
  }
  return b.node("Mul", {scaled, w}, {}, n + "mul");
}

}  // namespace

TEST_CASE("RMSNorm written out becomes one RmsNorm", "[runtime][lowering][rmsnorm]") {
  for (int64_t opset : {17, 18}) {
    for (bool pow : {false, true}) {
      INFO("opset " << opset << (pow ? ", Pow" : ", Mul"));
      GraphBuilder b(62);
      ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 5, 48});
      ir::Value* y = rmsNorm(b, x, "n", opset, pow, b.weight("w", {48}));
      b.output(b.node("Add", {y, x}, {}, "residual"));
      ir::Model model = b.build(opset);
      ir::Model m = lowered(model);
      CHECK(countOps(*m.graph, "RmsNorm") == 1);
      CHECK(m.graph->numNodes() == 2);
      checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 5, 48}, -3, 3)}});
    }
  }
  SECTION("rsqrt as torch's exporters write it: Reciprocal or Div(1, .) then Mul, a Cast to float32 after") {
    for (Form form : {Form::kReciprocal, Form::kDivOneCast}) {
      GraphBuilder b(64);
      ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 5, 48});
      b.output(b.node("Add", {rmsNorm(b, x, "n", 18, true, b.weight("w", {48}), -1, form), x}, {}, "residual"));
      ir::Model model = b.build(18);
      ir::Model m = lowered(model);
      CHECK(countOps(*m.graph, "RmsNorm") == 1);
      CHECK(m.graph->numNodes() == 2);
      checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 5, 48}, -3, 3)}});
    }
  }
  SECTION("Div(2, sqrt) is not a reciprocal and stays") {
    GraphBuilder b(65);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 5, 48});
    b.output(rmsNorm(b, x, "n", 18, true, b.weight("w", {48}), -1, Form::kDivTwo));
    ir::Model model = b.build(18);
    ir::Model m = lowered(model);
    CHECK(countOps(*m.graph, "RmsNorm") == 0);
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 5, 48}, -3, 3)}});
  }
  SECTION("not over another axis, with a weight along another axis, or with the mean an output") {
    GraphBuilder b(63);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 6, 8});
    b.output(rmsNorm(b, x, "a", 17, false, b.weight("wa", {8}), 1));     // the mean over axis 1
    b.output(rmsNorm(b, x, "b", 17, false, b.weight("wb", {6, 1})));     // a weight per row
    b.output(rmsNorm(b, x, "c", 17, false, b.weight("wc", {8})));
    b.output(b.graph().findValue("cmean"));                               // the mean is an output
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    CHECK(countOps(*m.graph, "RmsNorm") == 0);
    CHECK(countOps(*m.graph, "ReduceMean") == 3);
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {2, 6, 8}, -3, 3)}});
  }
}
