// The CPU lowering (src/runtime/lowering.cpp): which graphs become FusedConv and channels-last
// chains (structure), which must stay as they are (negative cases), and that the lowered
// graph computes what the original does. The unlowered result comes from the same session
// with every intermediate value requested as an extra output, which pins it in place.
#include "whittle/runtime/lowering.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/kernel_harness.h"
#include "support/lowering_check.h"
#include "support/tolerance.h"
#include "whittle/ir/fold.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/kernel.h"

using namespace whittle;
using whittle::testing::checkSameAsUnlowered;
using whittle::testing::findOp;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;

namespace {

ir::Value* conv(GraphBuilder& b, ir::Value* x, int64_t cin, int64_t cout, int64_t k, const std::string& name) {
  int64_t p = k / 2;
  return b.node(
      "Conv",
      {x, b.weight(name + "_w", {cout, cin, k, k}, ir::DataType::kFloat, -0.3, 0.3), b.weight(name + "_b", {cout})},
      {ir::Attribute::makeInts("pads", {p, p, p, p})}, name);
}

/// x -> conv 3 -> 32 + Relu -> Split in halves along C, the sizes as opset `opset` writes them
/// (11: attribute, 13: input, 18: num_outputs).
std::vector<ir::Value*> convSplitInHalves(GraphBuilder& b, ir::Value* x, int64_t opset) {
  ir::Value* c1 = b.node("Relu", {conv(b, x, 3, 32, 3, "c1")}, {}, "r1");
  std::vector<ir::Value*> inputs = {c1};
  std::vector<ir::Attribute> attrs = {ir::Attribute::makeInt("axis", 1)};
  if (opset == 11) attrs.push_back(ir::Attribute::makeInts("split", {16, 16}));
  if (opset == 13) inputs.push_back(b.constantInt64("sizes", {2}, {16, 16}));
  if (opset == 18) attrs.push_back(ir::Attribute::makeInt("num_outputs", 2));
  return b.nodeN("Split", inputs, 2, attrs, "split");
}

}  // namespace

TEST_CASE("Conv and its activations become one FusedConv", "[runtime][lowering]") {
  struct Act {
    std::string op;
    std::vector<ir::Attribute> attrs;
    std::string postOp;
  };
  const std::vector<Act> acts = {{"Relu", {}, "Relu"},
                                 {"LeakyRelu", {ir::Attribute::makeFloat("alpha", 0.2f)}, "LeakyRelu"},
                                 {"Sigmoid", {}, "Sigmoid"},
                                 {"Tanh", {}, "Tanh"},
                                 {"HardSigmoid", {ir::Attribute::makeFloat("alpha", 0.3f)}, "HardSigmoid"},
                                 {"HardSwish", {}, "HardSwish"},
                                 {"Clip", {}, "Clip"}};
  for (const Act& act : acts) {
    INFO(act.op);
    GraphBuilder b(7);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 5, 9, 9});
    ir::Value* y = conv(b, x, 5, 8, 3, "conv");
    std::vector<ir::Value*> inputs = {y};
    if (act.op == "Clip") {
      inputs.push_back(b.constant("lo", {}, {0.0f}));
      inputs.push_back(b.constant("hi", {}, {0.5f}));
    }
    ir::Value* out = b.node(act.op, inputs, act.attrs, "act");
    b.output(out);
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    REQUIRE(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
    const ir::Node* fused = findOp(*m.graph, "FusedConv");
    CHECK(fused->domain() == "com.whittle.internal");
    CHECK(fused->name() == "conv");
    CHECK(fused->output(0)->name() == "act");
    REQUIRE(fused->findAttribute("post_ops") != nullptr);
    CHECK(fused->findAttribute("post_ops")->strings == std::vector<std::string>{act.postOp});
    if (act.op == "Clip") CHECK(fused->attrFloats("post_op_params") == std::vector<float>{0.0f, 0.5f});
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 5, 9, 9})}});
  }
}

TEST_CASE("Conv, a residual Add and an activation become one FusedConv with a Sum", "[runtime][lowering]") {
  // The residual as Add, or as a Sum of two (Caffe2's ShuffleNet), the Conv first or second.
  for (auto [addOp, convFirst] : {std::pair{"Add", true}, std::pair{"Add", false}, std::pair{"Sum", false}}) {
    INFO(addOp << (convFirst ? ", conv first" : ", conv second"));
    GraphBuilder b(8);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 16, 7, 7});
    ir::Value* z = b.input("z", ir::DataType::kFloat, {1, 24, 7, 7});
    ir::Value* y = conv(b, x, 16, 24, 1, "conv");
    ir::Value* sum =
        b.node(addOp, convFirst ? std::vector<ir::Value*>{y, z} : std::vector<ir::Value*>{z, y}, {}, "add");
    b.output(b.node("Relu", {sum}, {}, "relu"));
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    REQUIRE(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
    const ir::Node* fused = findOp(*m.graph, "FusedConv");
    CHECK(fused->findAttribute("post_ops")->strings == std::vector<std::string>{"Sum", "Relu"});
    REQUIRE(fused->numInputs() == 4);
    CHECK(fused->input(3)->name() == "z");
    CHECK(fused->attrInt("sum_in_place", 0) == 0);  // z is a graph input: not ours to overwrite
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 16, 7, 7})},
                                 {"z", b.randomTensor(ir::DataType::kFloat, {1, 24, 7, 7})}});
  }
}

TEST_CASE("x * Sigmoid(x) and x * HardSigmoid(x) after a Conv fuse as Swish and HardSwish", "[runtime][lowering]") {
  for (const std::string gateOp : {"Sigmoid", "HardSigmoid"}) {
    GraphBuilder b(9);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
    ir::Value* y = conv(b, x, 4, 4, 3, "conv");
    std::vector<ir::Attribute> attrs;
    if (gateOp == "HardSigmoid") {
      attrs = {ir::Attribute::makeFloat("alpha", 1.0f / 6.0f), ir::Attribute::makeFloat("beta", 0.5f)};
    }
    ir::Value* gate = b.node(gateOp, {y}, attrs, "gate");
    b.output(b.node("Mul", {y, gate}, {}, "mul"));
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    REQUIRE(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
    CHECK(findOp(*m.graph, "FusedConv")->findAttribute("post_ops")->strings ==
          std::vector<std::string>{gateOp == "Sigmoid" ? "Swish" : "HardSwish"});
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6})}});
  }
}

TEST_CASE("Scalar Mul, Div, Add and Sub after a fused activation become one Linear post-op", "[runtime][lowering]") {
  // PP-LCNet's learnable affine block: y = Add(Mul(a, HardSwish(Conv(x))), b).
  GraphBuilder b(21);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
  ir::Value* y = b.node("HardSwish", {conv(b, x, 4, 6, 3, "conv")}, {}, "act");
  y = b.node("Mul", {b.constant("a", {1}, {0.63f}), y}, {}, "mul");
  y = b.node("Add", {y, b.constant("b", {1}, {-0.5f})}, {}, "add");
  y = b.node("Relu", {y}, {}, "relu");
  y = b.node("Div", {y, b.constant("d", {}, {4.0f})}, {}, "div");
  b.output(b.node("Sub", {y, b.constant("s", {1}, {0.25f})}, {}, "sub"));
  ir::Model model = b.build(17);
  ir::Model m = lowered(model);
  // One Linear per FusedConv: oneDNN 2.6 gives a second eltwise_linear of a chain the first
  // one's alpha and beta (HardSigmoid counts: it is one too). The second pair stays.
  REQUIRE(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"FusedConv", "Div", "Sub"});
  const ir::Node* fused = findOp(*m.graph, "FusedConv");
  CHECK(fused->findAttribute("post_ops")->strings == std::vector<std::string>{"HardSwish", "Linear", "Relu"});
  const std::vector<float> params = fused->attrFloats("post_op_params");
  REQUIRE(params.size() == 6);
  CHECK(params[2] == Approx(0.63f));
  CHECK(params[3] == Approx(-0.5f));
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6}, -4.0, 4.0)}});

  SECTION("two in a row merge") {
    GraphBuilder b3(23);
    ir::Value* x3 = b3.input("x", ir::DataType::kFloat, {1, 2, 5, 5});
    ir::Value* r = b3.node("Relu", {conv(b3, x3, 2, 3, 3, "conv")}, {}, "relu");
    r = b3.node("Div", {r, b3.constant("d", {}, {4.0f})}, {}, "div");
    b3.output(b3.node("Sub", {r, b3.constant("s", {1}, {0.25f})}, {}, "sub"));
    ir::Model model3 = b3.build(17);
    ir::Model m3 = lowered(model3);
    REQUIRE(whittle::testing::opTypes(*m3.graph) == std::vector<std::string>{"FusedConv"});
    CHECK(findOp(*m3.graph, "FusedConv")->attrFloats("post_op_params") == std::vector<float>{0, 0, 0.25f, -0.25f});
    checkSameAsUnlowered(model3, {{"x", b3.randomTensor(ir::DataType::kFloat, {1, 2, 5, 5})}});
  }
  SECTION("not a constant divided by the chain, nor a per-channel constant after an activation") {
    GraphBuilder b2(22);
    ir::Value* x2 = b2.input("x", ir::DataType::kFloat, {1, 2, 5, 5});
    ir::Value* r = b2.node("Relu", {conv(b2, x2, 2, 3, 3, "conv")}, {}, "relu");
    ir::Value* q = b2.node("Div", {b2.constant("one", {1}, {1.0f}), r}, {}, "div");
    b2.output(b2.node("Mul", {q, b2.weight("pc", {3, 1, 1})}, {}, "mul"));
    CHECK(whittle::testing::opTypes(*lowered(b2.build(17)).graph) ==
          std::vector<std::string>{"FusedConv", "Div", "Mul"});
  }
}

TEST_CASE("Conv outputs with other readers, graph outputs or broadcasting Adds are not fused", "[runtime][lowering]") {
  SECTION("two readers") {
    GraphBuilder b(10);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 5, 5});
    ir::Value* y = conv(b, x, 3, 4, 3, "conv");
    b.output(b.node("Relu", {y}));
    b.output(b.node("Sigmoid", {y}));
    ir::Model m = lowered(b.build(17));
    CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Conv", "Relu", "Sigmoid"});
  }
  SECTION("graph output") {
    GraphBuilder b(11);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 5, 5});
    ir::Value* y = conv(b, x, 3, 4, 3, "conv");
    b.output(y);
    b.output(b.node("Relu", {y}));
    ir::Model m = lowered(b.build(17));
    CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Conv", "Relu"});
  }
  SECTION("broadcasting Add") {
    GraphBuilder b(12);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 5, 5});
    ir::Value* y = conv(b, x, 3, 4, 3, "conv");
    // A graph input, not a constant (a constant per-channel Add folds into the Conv's bias:
    // lower_elementwise_test.cpp).
    b.output(b.node("Add", {y, b.input("bias", ir::DataType::kFloat, {1, 4, 1, 1})}));
    ir::Model m = lowered(b.build(17));
    CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Conv", "Add"});
  }
  SECTION("kept value") {
    GraphBuilder b(13);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 5, 5});
    ir::Value* y = conv(b, x, 3, 4, 3, "conv");
    b.output(b.node("Relu", {y}));
    ir::Model m = b.build(17);
    (void)onnx_io::inferShapes(m);
    REQUIRE(runtime::lowerForCpu(*m.graph, {"conv"}).isOk());
    CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Conv", "Relu"});
  }
}

TEST_CASE("Values between convolutions stay channels last", "[runtime][lowering]") {
  // x -> conv1+relu -> maxpool -> squeeze+relu -> (e1 1x1+relu, e3 3x3+relu) -> concat -> conv -> gap
  GraphBuilder b(14);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 20, 20});
  ir::Value* c1 = b.node("Relu", {conv(b, x, 3, 16, 3, "c1")}, {}, "r1");
  ir::Value* pool =
      b.node("MaxPool", {c1},
             {ir::Attribute::makeInts("kernel_shape", {3, 3}), ir::Attribute::makeInts("strides", {2, 2})}, "pool");
  ir::Value* s = b.node("Relu", {conv(b, pool, 16, 8, 1, "squeeze")}, {}, "rs");
  ir::Value* e1 = b.node("Relu", {conv(b, s, 8, 16, 1, "e1")}, {}, "r_e1");
  ir::Value* e3 = b.node("Relu", {conv(b, s, 8, 16, 3, "e3")}, {}, "r_e3");
  ir::Value* cat = b.node("Concat", {e1, e3}, {ir::Attribute::makeInt("axis", 1)}, "cat");
  ir::Value* last = conv(b, cat, 32, 10, 1, "last");
  b.output(b.node("GlobalAveragePool", {last}, {}, "gap"));
  ir::Model model = b.build(17);
  ir::Model m = lowered(model);
  CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"FusedConv", "MaxPool", "FusedConv",
                                                                        "FusedConv", "FusedConv", "Concat", "FusedConv",
                                                                        "GlobalAveragePool"});
  for (const ir::Node* n : m.graph->nodes()) {
    INFO(n->describe());
    if (n->opType() == "FusedConv") {
      CHECK(n->attrInt("channels_last_in", 0) == (n->name() == "c1" ? 0 : 1));
      CHECK(n->attrInt("channels_last_out", 0) == 1);
    } else if (n->opType() == "Concat") {
      CHECK(n->attrInt("axis", 1) == 3);
      REQUIRE(n->output(0)->type().shape);
      CHECK((*n->output(0)->type().shape)[3].value == 32);
    } else {
      CHECK(n->domain() == "com.whittle.internal");
      CHECK(n->attrInt("channels_last_in", 0) == 1);
    }
  }
  CHECK(m.graph->outputs()[0]->name() == "gap");
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 20, 20})}}, 1e-4);
}

TEST_CASE("Per-channel PRelu slopes and Mul/Add constants follow a channels-last chain", "[runtime][lowering]") {
  // MTCNN/ArcFace: conv -> PRelu(slope [C,1,1]) -> MaxPool -> conv -> Mul([1,C,1,1]) -> Add([1,C,1,1]) -> conv.
  // Before, the slope (an initializer) forced its chain channels first: two reorders and
  // oneDNN's plain-layout pooling per run.
  GraphBuilder b(18);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 14, 18});
  ir::Value* p1 = b.node("PRelu", {conv(b, x, 3, 8, 3, "c1"), b.weight("slope1", {8, 1, 1})}, {}, "prelu1");
  ir::Value* pool =
      b.node("MaxPool", {p1},
             {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("strides", {2, 2}),
              ir::Attribute::makeString("auto_pad", "SAME_UPPER")},
             "pool");
  ir::Value* p2 = b.node("PRelu", {conv(b, pool, 8, 16, 3, "c2"), b.weight("slope2", {1, 16, 1, 1})}, {}, "prelu2");
  ir::Value* scaled = b.node("Mul", {p2, b.weight("scale", {1, 16, 1, 1})}, {}, "scale");
  ir::Value* shifted = b.node("Add", {b.weight("shift", {1, 16, 1, 1}), scaled}, {}, "shift");
  b.output(conv(b, shifted, 16, 4, 1, "c3"));
  ir::Model model = b.build(17);
  ir::Model m = lowered(model);
  for (const ir::Node* n : m.graph->nodes()) {
    INFO(n->describe());
    if (n->opType() == "FusedConv" || n->opType() == "MaxPool") {
      CHECK(n->attrInt("channels_last_in", 0) == (n->name() == "c1" ? 0 : 1));
      CHECK(n->attrInt("channels_last_out", 0) == (n->name() == "c3" ? 0 : 1));
    } else {
      // the element-wise ops read their constant as [1, 1, 1, C] (or [1, 1, C])
      const ir::Value* c = n->opType() == "Add" ? n->input(0) : n->input(1);
      const ir::Tensor* t = ir::constantOf(c);
      REQUIRE(t != nullptr);
      CHECK(t->dims().back() == (n->name() == "prelu1" ? 8 : 16));
      CHECK(t->numel() == t->dims().back());
    }
  }
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 14, 18})}}, 1e-4);
}

TEST_CASE("A per-channel constant whose chain stays channels first keeps its shape", "[runtime][lowering]") {
  // The Mul's output is a graph output read as NCHW: nothing goes channels last after c1 (the
  // Relu keeps the Mul from folding into c1's weights).
  GraphBuilder b(19);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
  ir::Value* r = b.node("Relu", {conv(b, x, 3, 6, 3, "c1")}, {}, "relu");
  ir::Value* y = b.node("Mul", {r, b.weight("scale", {1, 6, 1, 1})}, {}, "scale");
  b.output(y);
  ir::Model model = b.build(17);
  ir::Model m = lowered(model);
  const ir::Node* mul = findOp(*m.graph, "Mul");
  REQUIRE(mul != nullptr);
  CHECK(ir::constantOf(mul->input(1))->dims() == std::vector<int64_t>{1, 6, 1, 1});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 8, 8})}}, 1e-4);
}

TEST_CASE("A residual Add whose operand has no other reader overwrites it in place", "[runtime][lowering]") {
  SECTION("MobileNetV2-style blocks: the operand is read twice, so the lowering does not mark it (the plan may)") {
    GraphBuilder b(15);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8, 6, 6});
    ir::Value* a =
        b.node("Clip", {conv(b, x, 8, 16, 1, "a"), b.constant("lo", {}, {0.0f}), b.constant("hi", {}, {6.0f})});
    ir::Value* sb = b.node("Add", {conv(b, a, 16, 16, 3, "b"), a}, {}, "add_b");
    ir::Value* dw = b.node("Conv", {sb, b.weight("dw_w", {16, 1, 3, 3}), b.weight("dw_b", {16})},
                           {ir::Attribute::makeInt("group", 16), ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "dw");
    ir::Value* sc = b.node("Add", {conv(b, dw, 16, 16, 1, "c"), sb}, {}, "add_c");
    b.output(b.node("Relu", {sc}, {}, "out"));
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    std::vector<std::string> ops = whittle::testing::opTypes(*m.graph);
    CHECK(ops == std::vector<std::string>(4, "FusedConv"));
    for (const ir::Node* n : m.graph->nodes()) CHECK(n->attrInt("sum_in_place", 0) == 0);
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 8, 6, 6})}}, 1e-4);
  }
  SECTION("two branches: the second conv's output is only the Add's") {
    GraphBuilder b(16);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 8, 6, 6});
    ir::Value* p = conv(b, x, 8, 16, 3, "p");
    ir::Value* q = b.node("Relu", {conv(b, x, 8, 16, 1, "q")}, {}, "q_relu");
    ir::Value* sum = b.node("Add", {p, q}, {}, "add");
    b.output(b.node("Relu", {sum}, {}, "out"));
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    REQUIRE(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"FusedConv", "FusedConv"});
    const ir::Node* first = m.graph->nodes()[0];
    const ir::Node* second = m.graph->nodes()[1];
    CHECK(first->name() == "q");
    CHECK(second->name() == "p");
    CHECK(second->input(3) == first->output(0));
    CHECK(second->attrInt("sum_in_place", 0) == 1);
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 8, 6, 6})}}, 1e-4);
  }
}

TEST_CASE("Shape of a channels-last value reports the ONNX dims", "[runtime][lowering]") {
  GraphBuilder b(17);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 10, 12});
  ir::Value* y = b.node("Relu", {conv(b, x, 3, 16, 3, "conv")}, {}, "relu");
  b.output(b.node("GlobalAveragePool", {y}, {}, "gap"));
  b.output(b.node("Shape", {y}, {}, "shape"));
  b.output(b.node("Shape", {y}, {ir::Attribute::makeInt("start", 1), ir::Attribute::makeInt("end", -1)}, "middle"));
  ir::Model model = b.build(17);
  ir::Model m = lowered(model);
  REQUIRE(whittle::testing::opTypes(*m.graph) ==
          std::vector<std::string>{"FusedConv", "GlobalAveragePool", "Shape", "Shape"});
  for (const ir::Node* n : m.graph->nodes()) {
    CHECK(n->domain() == "com.whittle.internal");
    CHECK(n->attrInt(n->opType() == "FusedConv" ? "channels_last_out" : "channels_last_in", 0) == 1);
  }
  auto out = whittle::testing::runOutputs(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 10, 12})}});
  CHECK(std::vector<int64_t>(out[1].data<int64_t>(), out[1].data<int64_t>() + 4) ==
        std::vector<int64_t>{1, 16, 10, 12});
  CHECK(std::vector<int64_t>(out[2].data<int64_t>(), out[2].data<int64_t>() + 2) == std::vector<int64_t>{16, 10});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 10, 12})}});
}

TEST_CASE("BatchNormalization after a Conv folds into its weights", "[runtime][lowering]") {
  for (bool bias : {true, false}) {
    GraphBuilder b(18);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 6, 9, 9});
    ir::Value* w = b.weight("w", {8, 6, 3, 3}, ir::DataType::kFloat, -0.3, 0.3);
    std::vector<ir::Value*> inputs = {x, w};
    if (bias) inputs.push_back(b.weight("b", {8}));
    ir::Value* y = b.node("Conv", inputs, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
    ir::Value* bn = b.node("BatchNormalization",
                           {y, b.weight("s", {8}), b.weight("beta", {8}), b.weight("mean", {8}),
                            b.weight("var", {8}, ir::DataType::kFloat, 0.2, 2.0)},
                           {ir::Attribute::makeFloat("epsilon", 1e-3f)}, "bn");
    b.output(b.node("Relu", {bn}, {}, "relu"));
    ir::Model model = b.build(15);
    ir::Model m = lowered(model);
    REQUIRE(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
    CHECK(m.graph->findValue("w") == nullptr);  // the unfolded weights are gone
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 6, 9, 9})}}, 1e-5);
  }
  SECTION("not when the Conv output has another reader") {
    GraphBuilder b(19);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 5, 5});
    ir::Value* y = conv(b, x, 2, 3, 3, "conv");
    b.output(b.node("BatchNormalization", {y, b.weight("s", {3}), b.weight("beta", {3}), b.weight("mean", {3}),
                                           b.weight("var", {3}, ir::DataType::kFloat, 0.2, 2.0)}));
    b.output(y);
    ir::Model m = lowered(b.build(15));
    CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Conv", "BatchNormalization"});
  }
}

TEST_CASE("Weights written as Constant nodes fold and fuse like initializers", "[runtime][lowering]") {
  // Paddle2ONNX writes every weight as a Constant node (the PP-OCR models of the corpus): the
  // session used to run them as kernels and leave Conv, BatchNormalization and the activation
  // unfused. Before: Relu(BN(Conv(x, Constant W, Constant B), Constant s, ...)).
  GraphBuilder b(20);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 7, 7});
  auto constant = [&](const std::string& name, std::vector<int64_t> dims, double lo, double hi) {
    return b.node("Constant", {}, {ir::Attribute::makeTensor("value", b.randomTensor(ir::DataType::kFloat, dims, lo, hi))},
                  name);
  };
  ir::Value* y = b.node("Conv", {x, constant("w", {5, 4, 3, 3}, -0.3, 0.3), constant("b", {5}, -1, 1)},
                        {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* bn = b.node("BatchNormalization",
                         {y, constant("s", {5}, 0.5, 1.5), constant("beta", {5}, -1, 1),
                          constant("mean", {5}, -1, 1), constant("var", {5}, 0.2, 2.0)},
                         {}, "bn");
  ir::Value* shared = constant("shared", {1}, 0.4, 0.6);  // read by two nodes: one initializer
  ir::Value* out = b.node("Relu", {bn}, {}, "relu");
  b.output(b.node("Add", {out, shared}, {}, "add1"));
  b.output(b.node("Mul", {out, shared}, {}, "mul1"));
  ir::Value* kept = constant("kept", {1}, 1.5, 2.5);  // a graph output stays a Constant node
  b.output(kept);
  ir::Model model = b.build(15);
  ir::Model m = lowered(model);
  std::vector<std::string> ops = whittle::testing::opTypes(*m.graph);
  CHECK(std::count(ops.begin(), ops.end(), "Constant") == 1);
  CHECK(std::count(ops.begin(), ops.end(), "FusedConv") == 1);
  CHECK(std::count(ops.begin(), ops.end(), "BatchNormalization") == 0);
  CHECK(std::count(ops.begin(), ops.end(), "Relu") == 0);
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 7, 7})}}, 1e-5);

  SECTION("a value named in keep stays a Constant node") {
    ir::Model k = model.clone();
    REQUIRE(runtime::lowerForCpu(*k.graph, {"w"}).isOk());
    REQUIRE(ir::verify(*k.graph).isOk());
    const ir::Value* w = k.graph->findValue("w");
    REQUIRE(w != nullptr);
    REQUIRE(w->producer() != nullptr);
    CHECK(w->producer()->opType() == "Constant");
  }
}

TEST_CASE("The lowering flushes subnormal weights to zero, including Constant-node weights", "[runtime][lowering]") {
  // PP-OCRv6's detector: two 1x1 Convs whose weights are mostly subnormal took 57 % of a run
  // (a microcode assist per multiply) until the lowering flushed them.
  GraphBuilder b(17);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 6, 4, 4});
  ir::Tensor w = b.randomTensor(ir::DataType::kFloat, {4, 6, 1, 1});
  for (int i = 0; i < 24; i += 3) w.mutableData<float>()[i] *= 1e-39f;
  ir::Tensor w2 = b.randomTensor(ir::DataType::kFloat, {4, 4, 1, 1});
  w2.mutableData<float>()[5] = -1e-40f;
  ir::Value* c = b.node("Constant", {}, {ir::Attribute::makeTensor("value", w2)});
  ir::Value* y = b.node("Conv", {b.node("Conv", {x, b.constant("w", w)}), c});
  b.output(y);
  ir::Model model = b.build(17);
  ir::Model m = lowered(model);
  int64_t left = 0;
  for (const ir::Value* v : m.graph->initializers()) left += ir::countSubnormals(*v->constant());
  CHECK(left == 0);
  CHECK(ir::countSubnormals(w) == 8);  // the caller's tensor
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 6, 4, 4})}});
}

TEST_CASE("Transposes between NHWC and NCHW around a Conv become views of channels-last memory",
          "[runtime][lowering]") {
  // tf2onnx: x [N, H, W, C] -> Transpose [0, 3, 1, 2] -> Conv -> Relu -> Transpose [0, 2, 3, 1].
  GraphBuilder b(13);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 6, 5, 3});
  ir::Value* nchw = b.node("Transpose", {x}, {ir::Attribute::makeInts("perm", {0, 3, 1, 2})}, "to_nchw");
  ir::Value* y = conv(b, nchw, 3, 4, 3, "conv");
  ir::Value* r = b.node("Relu", {y}, {}, "relu");
  b.output(b.node("Transpose", {r}, {ir::Attribute::makeInts("perm", {0, 2, 3, 1})}, "to_nhwc"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Reshape", "FusedConv", "Reshape"});
  const ir::Node* fused = findOp(*m.graph, "FusedConv");
  CHECK(fused->attrInt("channels_last_in", 0) == 1);
  CHECK(fused->attrInt("channels_last_out", 0) == 1);
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 6, 5, 3})}});
}

TEST_CASE("A Transpose view needs only the non-batch dims static, the batch the outer axis on both sides",
          "[runtime][lowering]") {
  // magika (jax2tf): x [N, L, C, 1] -> Transpose [0, 2, 1, 3] -> Conv with a k x 1 kernel, N symbolic.
  GraphBuilder b(13);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat,
                                 {ir::Dim::symbolic("N"), ir::Dim::known(7), ir::Dim::known(3), ir::Dim::known(1)});
  ir::Value* nchw = b.node("Transpose", {x}, {ir::Attribute::makeInts("perm", {0, 2, 1, 3})}, "to_nchw");
  ir::Value* w = b.weight("conv_w", {4, 3, 3, 1}, ir::DataType::kFloat, -0.3, 0.3);
  ir::Value* y = b.node("Conv", {nchw, w, b.weight("conv_b", {4})}, {}, "conv");
  ir::Value* r = b.node("Relu", {y}, {}, "relu");
  b.output(b.node("Transpose", {r}, {ir::Attribute::makeInts("perm", {0, 2, 3, 1})}, "to_nhwc"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  REQUIRE(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Reshape", "FusedConv", "Reshape"});
  const ir::Node* view = findOp(*m.graph, "Reshape");
  CHECK(view->attrInts("shape") == std::vector<int64_t>{0, 7, 1, 3});  // 0: the input's batch
  const ir::Node* fused = findOp(*m.graph, "FusedConv");
  CHECK(fused->attrInt("channels_last_in", 0) == 1);
  CHECK(fused->attrInt("channels_last_out", 0) == 1);
  for (int64_t n : {1, 3}) checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {n, 7, 3, 1})}});

  // Where the batch moves (perm[0] != 0) or another axis is symbolic, the Transpose stays.
  for (bool moveBatch : {true, false}) {
    GraphBuilder c(13);
    std::vector<ir::Dim> dims = {ir::Dim::symbolic("N"), ir::Dim::known(7), ir::Dim::known(3), ir::Dim::known(1)};
    if (!moveBatch) dims[1] = ir::Dim::symbolic("L");
    ir::Value* cx = c.symbolicInput("x", ir::DataType::kFloat, dims);
    std::vector<int64_t> perm = moveBatch ? std::vector<int64_t>{2, 0, 1, 3} : std::vector<int64_t>{0, 2, 1, 3};
    ir::Value* t = c.node("Transpose", {cx}, {ir::Attribute::makeInts("perm", perm)}, "t");
    ir::Value* cw = c.weight("conv_w", {4, moveBatch ? 1 : 3, 3, 1}, ir::DataType::kFloat, -0.3, 0.3);
    c.output(c.node("Conv", {t, cw}, {}, "conv"));
    ir::Model cm = lowered(c.build(13));
    CHECK(findOp(*cm.graph, "Transpose") != nullptr);
    CHECK(findOp(*cm.graph, "Reshape") == nullptr);
  }
}

TEST_CASE("A Transpose that no Conv reads or writes stays", "[runtime][lowering]") {
  GraphBuilder b(14);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 6, 5, 3});
  ir::Value* t = b.node("Transpose", {x}, {ir::Attribute::makeInts("perm", {0, 3, 1, 2})}, "t");
  b.output(b.node("Relu", {t}, {}, "relu"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(whittle::testing::opTypes(*m.graph) == std::vector<std::string>{"Transpose", "Relu"});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 6, 5, 3})}});
}

TEST_CASE("Nearest Resize (FPN upsampling) and a ReduceMean over H and W stay channels last", "[runtime][lowering]") {
  // x -> conv -> ReduceMean(2, 3) -> conv -> Sigmoid -> Mul (squeeze-excitation) -> Resize x2 -> conv
  for (bool bySizes : {false, true}) {
    CAPTURE(bySizes);
    GraphBuilder b(13);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 10, 12});
    ir::Value* c1 = b.node("Relu", {conv(b, x, 3, 8, 3, "c1")}, {}, "r1");
    ir::Value* mean = b.node("ReduceMean", {c1}, {ir::Attribute::makeInts("axes", {-1, 2})}, "mean");
    ir::Value* gate = b.node("Sigmoid", {conv(b, mean, 8, 8, 1, "se")}, {}, "gate");
    ir::Value* se = b.node("Mul", {c1, gate}, {}, "scaled");
    ir::Value* up = nullptr;
    if (bySizes) {
      up = b.node("Resize", {se, nullptr, nullptr, b.constant("sizes", ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {4}, {1, 8, 20, 24}))},
                  {ir::Attribute::makeString("mode", "nearest"), ir::Attribute::makeString("coordinate_transformation_mode", "half_pixel"),
                   ir::Attribute::makeString("nearest_mode", "round_prefer_ceil")},
                  "up");
    } else {
      up = b.node("Resize", {se, b.constant("roi", {0}, {}), b.constant("scales", {4}, {1.0f, 1.0f, 2.0f, 2.0f})},
                  {ir::Attribute::makeString("mode", "nearest"), ir::Attribute::makeString("coordinate_transformation_mode", "asymmetric"),
                   ir::Attribute::makeString("nearest_mode", "floor")},
                  "up");
    }
    b.output(conv(b, up, 8, 4, 3, "c2"));
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    CHECK(findOp(*m.graph, "ReduceMean") == nullptr);
    const ir::Node* gap = findOp(*m.graph, "GlobalAveragePool");
    REQUIRE(gap != nullptr);
    CHECK(gap->attrInt("channels_last_in", 0) == 1);
    const ir::Node* resize = findOp(*m.graph, "Resize");
    REQUIRE(resize != nullptr);
    REQUIRE(resize->output(0)->type().shape);
    CHECK((*resize->output(0)->type().shape)[3].value == 8);  // [N, H, W, C]
    const ir::Tensor* factors = resize->input(bySizes ? 3 : 2)->constant();
    REQUIRE(factors != nullptr);
    if (bySizes) {
      CHECK(std::vector<int64_t>(factors->data<int64_t>(), factors->data<int64_t>() + 4) == std::vector<int64_t>{1, 20, 24, 8});
    } else {
      CHECK(std::vector<float>(factors->data<float>(), factors->data<float>() + 4) == std::vector<float>{1, 2, 2, 1});
    }
    for (const ir::Node* n : m.graph->nodes()) {
      INFO(n->describe());
      if (n->opType() == "FusedConv" && n->name() != "c1") CHECK(n->attrInt("channels_last_in", 0) == 1);
    }
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 10, 12})}}, 1e-5);
  }
}

TEST_CASE("A Resize that is not nearest, or scales N or C, keeps its convolutions channels first", "[runtime][lowering]") {
  for (int variant = 0; variant < 3; ++variant) {
    CAPTURE(variant);
    GraphBuilder b(13);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
    ir::Value* c1 = b.node("Relu", {conv(b, x, 3, 4, 3, "c1")}, {}, "r1");
    std::vector<float> scales = variant == 1 ? std::vector<float>{1, 2, 1, 1} : std::vector<float>{1, 1, 2, 2};
    std::vector<ir::Attribute> attrs = {ir::Attribute::makeString("mode", variant == 0 ? "linear" : "nearest")};
    if (variant == 2) attrs.push_back(ir::Attribute::makeString("coordinate_transformation_mode", "tf_crop_and_resize"));
    ir::Value* roi = b.constant("roi", {8}, {0, 0, 0, 0, 1, 1, 1, 1});
    ir::Value* up = b.node("Resize", {c1, roi, b.constant("scales", {4}, scales)}, attrs, "up");
    b.output(conv(b, up, variant == 1 ? 8 : 4, 2, 3, "c2"));
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    for (const ir::Node* n : m.graph->nodes()) {
      INFO(n->describe());
      if (n->opType() == "FusedConv") {
        CHECK(n->attrInt("channels_last_in", 0) == 0);
        CHECK(n->attrInt("channels_last_out", 0) == 0);
      }
    }
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 8, 8})}}, 1e-5);
  }
}

TEST_CASE("A Split along channels stays channels last", "[runtime][lowering]") {
  // YOLOv8's C2f block: conv -> Split in halves along C -> conv on one half -> Concat of both
  // halves and the conv -> conv. Before, the Split (an op the layout pass did not know) kept
  // the whole block channels first: a reorder at every convolution of it.
  for (int64_t opset : {11, 13, 18}) {
    INFO("opset " << opset);
    GraphBuilder b(20);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 10, 12});
    std::vector<ir::Value*> halves = convSplitInHalves(b, x, opset);
    ir::Value* m = b.node("Relu", {conv(b, halves[1], 16, 16, 3, "m")}, {}, "rm");
    ir::Value* cat = b.node("Concat", {halves[0], halves[1], m}, {ir::Attribute::makeInt("axis", 1)}, "cat");
    b.output(conv(b, cat, 48, 8, 1, "c2"));
    ir::Model model = b.build(opset);
    ir::Model lowModel = lowered(model);
    for (const ir::Node* n : lowModel.graph->nodes()) {
      INFO(n->describe());
      if (n->opType() == "FusedConv") {
        CHECK(n->attrInt("channels_last_in", 0) == (n->name() == "c1" ? 0 : 1));
        CHECK(n->attrInt("channels_last_out", 0) == (n->name() == "c2" ? 0 : 1));
      } else if (n->opType() == "Split" || n->opType() == "Concat") {
        CHECK(n->attrInt("axis", 1) == 3);
      }
    }
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 10, 12})}}, 1e-4);
  }
}

TEST_CASE("A Split along a spatial axis or into a graph output keeps its block channels first",
          "[runtime][lowering]") {
  for (bool spatial : {true, false}) {
    INFO((spatial ? "split along H" : "a half is a graph output"));
    GraphBuilder b(21);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 10, 12});
    ir::Value* c1 = conv(b, x, 3, 32, 3, "c1");
    const std::vector<int64_t> sizes = spatial ? std::vector<int64_t>{5, 5} : std::vector<int64_t>{16, 16};
    std::vector<ir::Value*> halves = b.nodeN(
        "Split", {c1}, 2, {ir::Attribute::makeInt("axis", spatial ? 2 : 1), ir::Attribute::makeInts("split", sizes)},
        "split");
    const int64_t cin = spatial ? 32 : 16;
    b.output(conv(b, halves[1], cin, 8, 1, "c2"));
    if (!spatial) b.output(halves[0]);
    ir::Model model = b.build(11);
    ir::Model lowModel = lowered(model);
    for (const ir::Node* n : lowModel.graph->nodes()) {
      INFO(n->describe());
      if (n->opType() == "FusedConv") {
        CHECK(n->attrInt("channels_last_in", 0) == 0);
        CHECK(n->attrInt("channels_last_out", 0) == 0);
      } else if (n->opType() == "Split") {
        CHECK(n->attrInt("axis", 1) == (spatial ? 2 : 1));
      }
    }
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 10, 12})}}, 1e-4);
  }
}

namespace {

/// The stored dims of `v` (its shape after the lowering), -1 for a symbolic dim.
std::vector<int64_t> storedDims(const ir::Value* v) {
  std::vector<int64_t> dims;
  for (const ir::Dim& d : *v->type().shape) dims.push_back(d.value);
  return dims;
}

}  // namespace

TEST_CASE("Chains at 80 x 80 and above in whole 16-channel blocks go blocked (nChw16c)", "[runtime][lowering]") {
  // YOLO-like: conv 3 -> 32 -> Split(16, 16) -> conv + residual Add on one half -> Concat ->
  // MaxPool 3x3/1 -> Resize x2 -> conv -> conv 32 -> 8 (8 channels: not whole blocks).
  for (int64_t opset : {11, 13, 18}) {
    INFO("opset " << opset);
    GraphBuilder b(20);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 80, 80});
    std::vector<ir::Value*> halves = convSplitInHalves(b, x, opset);
    ir::Value* m = b.node("Add", {b.node("Relu", {conv(b, halves[1], 16, 16, 3, "m")}, {}, "rm"), halves[1]}, {}, "res");
    ir::Value* cat = b.node("Concat", {halves[0], m}, {ir::Attribute::makeInt("axis", -3)}, "cat");
    ir::Value* pool = b.node("MaxPool", {cat},
                             {ir::Attribute::makeInts("kernel_shape", {3, 3}), ir::Attribute::makeInts("pads", {1, 1, 1, 1})},
                             "pool");
    ir::Value* up = b.node("Resize", {pool, b.constant("roi", {0}, {}), b.constant("scales", {4}, {1.0f, 1.0f, 2.0f, 2.0f})},
                           {ir::Attribute::makeString("mode", "nearest")}, "up");
    ir::Value* c2 = b.node("Relu", {conv(b, up, 32, 32, 1, "c2")}, {}, "r2");
    b.output(conv(b, c2, 32, 8, 3, "c3"));
    ir::Model model = b.build(opset);
    ir::Model low = lowered(model);
    for (const ir::Node* n : low.graph->nodes()) {
      INFO(n->describe());
      if (n->opType() == "FusedConv") {
        CHECK(n->attrInt("channels_last_in", 0) == (n->name() == "c1" ? 0 : 2));
        CHECK(n->attrInt("channels_last_out", 0) == (n->name() == "c3" ? 0 : 2));
      } else if (n->opType() == "Split") {
        CHECK(n->attrInt("axis", 0) == 1);
        if (opset == 11) CHECK(n->attrInts("split") == std::vector<int64_t>{1, 1});
        if (opset == 13) {
          const ir::Tensor* sizes = n->input(1)->constant();
          REQUIRE(sizes != nullptr);
          CHECK(std::vector<int64_t>(sizes->data<int64_t>(), sizes->data<int64_t>() + 2) == std::vector<int64_t>{1, 1});
        }
        CHECK(storedDims(n->output(0)) == std::vector<int64_t>{1, 1, 80, 80, 16});
      } else if (n->opType() == "Concat") {
        CHECK(n->attrInt("axis", 0) == 1);
        CHECK(storedDims(n->output(0)) == std::vector<int64_t>{1, 2, 80, 80, 16});
      } else if (n->opType() == "MaxPool") {
        CHECK(n->attrInt("channels_last_in", 0) == 2);
        CHECK(n->attrInt("channels_last_out", 0) == 2);
      } else if (n->opType() == "Resize") {
        const ir::Tensor* scales = n->input(2)->constant();
        REQUIRE(scales != nullptr);
        CHECK(std::vector<float>(scales->data<float>(), scales->data<float>() + scales->numel()) ==
              std::vector<float>{1, 1, 2, 2, 1});
        CHECK(storedDims(n->output(0)) == std::vector<int64_t>{1, 2, 160, 160, 16});
      }
    }
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 80, 80})}}, 1e-5);
  }
}

TEST_CASE("Values below 80 x 80, or read by a global pool, stay channels last", "[runtime][lowering]") {
  for (int variant = 0; variant < 2; ++variant) {
    CAPTURE(variant);
    const int64_t side = variant == 0 ? 40 : 80;
    GraphBuilder b(13);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, side, side});
    ir::Value* c1 = b.node("Relu", {conv(b, x, 3, 16, 3, "c1")}, {}, "r1");
    ir::Value* c2 = conv(b, c1, 16, 16, 3, "c2");
    b.output(variant == 0 ? c2 : b.node("GlobalAveragePool", {c2}, {}, "gap"));
    ir::Model model = b.build(13);
    ir::Model low = lowered(model);
    for (const ir::Node* n : low.graph->nodes()) {
      INFO(n->describe());
      // At 80 x 80 c1's output (read by c2 alone) goes blocked; c2's (the global pool's input) does not.
      if (n->name() == "c1") CHECK(n->attrInt("channels_last_out", 0) == (variant == 0 ? 1 : 2));
      if (n->name() == "c2") CHECK(n->attrInt("channels_last_in", 0) == (variant == 0 ? 1 : 2));
      if (n->name() == "c2") CHECK(n->attrInt("channels_last_out", 0) == (variant == 0 ? 0 : 1));
    }
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, side, side})}}, 1e-5);
  }
}
