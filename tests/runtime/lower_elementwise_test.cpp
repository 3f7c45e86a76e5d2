// The lowering's elementwise rewrites (src/runtime/lower_elementwise.cpp): constant reshapes
// folded, per-channel affine ops folded into the Conv before them, HardSwish written out as
// Add/Clip/Mul/Div recognised; and the squeeze-and-excitation block kept channels last
// (lowering.cpp). Each case checks the structure after lowering and that the lowered graph
// computes what the unlowered one does; negative cases check what must stay.
#include <catch2/catch.hpp>

#include <limits>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/lowering_check.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using whittle::testing::checkSameAsUnlowered;
using whittle::testing::countOps;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;
using whittle::testing::opTypes;

namespace {

ir::Value* conv(GraphBuilder& b, ir::Value* x, int64_t cin, int64_t cout, int64_t k, const std::string& name,
                bool bias = true) {
  const int64_t p = k / 2;
  std::vector<ir::Value*> inputs = {x, b.weight(name + "_w", {cout, cin, k, k}, ir::DataType::kFloat, -0.3, 0.3)};
  if (bias) inputs.push_back(b.weight(name + "_b", {cout}));
  return b.node("Conv", inputs, {ir::Attribute::makeInts("pads", {p, p, p, p})}, name);
}

ir::Value* int64s(GraphBuilder& b, const std::string& name, const std::vector<int64_t>& values) {
  return b.constant(name, ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(values.size())}, values));
}

const ir::Node* onlyNode(const ir::Model& m) {
  REQUIRE(m.graph->numNodes() == 1);
  return m.graph->nodes().front();
}

}  // namespace

TEST_CASE("A Conv bias written as Reshape(constant) + Add folds into the Conv", "[runtime][lowering]") {
  // Paddle2ONNX: y = Relu(Add(Conv(x, W), Reshape(b, [1, C, 1, 1]))), the Reshape run every time.
  for (std::string shapeOp : {"Reshape", "Unsqueeze"}) {
    INFO(shapeOp);
    GraphBuilder b(31);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
    ir::Value* y = conv(b, x, 3, 6, 3, "conv", /*bias=*/false);
    ir::Value* bias = b.weight("bias", {6});
    ir::Value* shaped = shapeOp == "Reshape" ? b.node("Reshape", {bias, int64s(b, "shape", {1, 6, 1, 1})}, {}, "r")
                                             : b.node("Unsqueeze", {bias, int64s(b, "axes", {0, 2, 3})}, {}, "r");
    b.output(b.node("Relu", {b.node("Add", {y, shaped}, {}, "add")}, {}, "relu"));
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    REQUIRE(opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
    const ir::Node* fused = onlyNode(m);
    REQUIRE(fused->numInputs() >= 3);
    CHECK(fused->input(2)->isInitializer());
    CHECK(fused->findAttribute("post_ops")->strings == std::vector<std::string>{"Relu"});
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 8, 8})}});
  }
}

TEST_CASE("A weight transposed at run time becomes a transposed constant", "[runtime][lowering]") {
  // jax2tf (magika): Conv(x, Transpose(W, perm)); and MatMul(x, Transpose(W)) with the default perm.
  GraphBuilder b(41);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 7, 5});
  ir::Value* w = b.node("Transpose", {b.weight("w_hwio", {3, 1, 3, 6}, ir::DataType::kFloat, -0.3, 0.3)},
                        {ir::Attribute::makeInts("perm", {3, 2, 0, 1})}, "wt");
  ir::Value* y = b.node("Conv", {x, w}, {ir::Attribute::makeInts("kernel_shape", {3, 1})}, "conv");  // [1, 6, 5, 5]
  ir::Value* m = b.node("Transpose", {b.weight("m", {4, 5})}, {}, "mt");                             // [5, 4]
  b.output(b.node("MatMul", {y, m}, {}, "matmul"));
  ir::Model model = b.build(13);
  ir::Model lowered_ = lowered(model);
  CHECK(opTypes(*lowered_.graph) == std::vector<std::string>{"Conv", "MatMul"});
  CHECK(lowered_.graph->findValue("w_hwio") == nullptr);  // the untransposed weight is gone
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 7, 5})}});
}

TEST_CASE("A weight made by ConstantOfShape becomes a constant the Conv packs and folds into", "[runtime][lowering]") {
  // The onnx package's "light" models: W = ConstantOfShape([M, C, k, k], value), then BN.
  GraphBuilder b(42);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 6, 6});
  ir::Value* w = b.node("ConstantOfShape", {int64s(b, "wshape", {4, 3, 3, 3})},
                        {ir::Attribute::makeTensor(
                            "value", ir::Tensor::fromVector(ir::DataType::kFloat, {1}, std::vector<float>{0.05f}))},
                        "fill");
  ir::Value* y = b.node("Conv", {x, w}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  y = b.node("BatchNormalization",
             {y, b.weight("s", {4}), b.weight("beta", {4}), b.weight("mean", {4}),
              b.weight("var", {4}, ir::DataType::kFloat, 0.2, 2.0)},
             {}, "bn");
  b.output(b.node("Relu", {y}, {}, "relu"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 6, 6})}});
}

TEST_CASE("Scalar and per-channel Add, Sub, Mul and Div after a Conv fold into it", "[runtime][lowering]") {
  for (std::string op : {"Add", "Sub", "Mul", "Div"}) {
    for (bool perChannel : {false, true}) {
      for (bool constantFirst : {false, true}) {
        if (constantFirst && (op == "Sub" || op == "Div")) continue;
        INFO(op << (perChannel ? " per channel" : " scalar") << (constantFirst ? ", constant first" : ""));
        GraphBuilder b(32);
        ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
        ir::Value* y = conv(b, x, 4, 5, 3, "conv");
        ir::Value* c =
            perChannel ? b.weight("c", {5, 1, 1}, ir::DataType::kFloat, 0.5, 2.0) : b.constant("c", {1}, {1.7f});
        b.output(b.node(op, constantFirst ? std::vector<ir::Value*>{c, y} : std::vector<ir::Value*>{y, c}, {}, "op"));
        ir::Model model = b.build(13);
        ir::Model m = lowered(model);
        CHECK(opTypes(*m.graph) == std::vector<std::string>{"Conv"});
        CHECK(onlyNode(m)->output(0)->name() == "op");
        checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6})}});
      }
    }
  }
  SECTION("a chain: Conv -> Mul -> Add -> Relu, as PP-LCNet writes its learnable affine") {
    GraphBuilder b(33);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
    ir::Value* y = b.node("Mul", {b.constant("s", {1}, {1.9f}), conv(b, x, 4, 8, 1, "conv")}, {}, "mul");
    y = b.node("Add", {y, b.constant("a", {1}, {0.8f})}, {}, "add");
    b.output(b.node("Relu", {y}, {}, "relu"));
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    CHECK(opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6})}});
  }
  SECTION("ConvTranspose, a [1, C, 1, 1] bias Add and a BatchNormalization") {
    GraphBuilder b(34);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 5, 5});
    ir::Value* y = b.node("ConvTranspose", {x, b.weight("w", {4, 6, 2, 2}, ir::DataType::kFloat, -0.3, 0.3)},
                          {ir::Attribute::makeInts("strides", {2, 2})}, "deconv");
    y = b.node("Add", {y, b.weight("bias", {1, 6, 1, 1})}, {}, "add");
    y = b.node("BatchNormalization",
               {y, b.weight("s", {6}), b.weight("beta", {6}), b.weight("mean", {6}),
                b.weight("var", {6}, ir::DataType::kFloat, 0.2, 2.0)},
               {}, "bn");
    b.output(y);
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    CHECK(opTypes(*m.graph) == std::vector<std::string>{"ConvTranspose"});
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 5, 5})}});
  }
}

TEST_CASE("Per-channel Mul and Add after a BatchNormalization fold into its scale and bias", "[runtime][lowering]") {
  // The "light" DenseNet's pre-activation: Relu(Add(Mul(BN(x), Unsqueeze(w)), Unsqueeze(b))) -> Conv.
  GraphBuilder b(43);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 5, 6, 6});
  ir::Value* y = b.node("BatchNormalization",
                        {x, b.weight("s", {5}), b.weight("beta", {5}), b.weight("mean", {5}),
                         b.weight("var", {5}, ir::DataType::kFloat, 0.2, 2.0)},
                        {}, "bn");
  y = b.node("Mul", {y, b.node("Unsqueeze", {b.weight("w", {5}), int64s(b, "axes_w", {1, 2})}, {}, "uw")}, {}, "mul");
  y = b.node("Add", {y, b.node("Unsqueeze", {b.weight("c", {5}), int64s(b, "axes_c", {1, 2})}, {}, "uc")}, {}, "add");
  y = b.node("Div", {y, b.constant("d", {1}, {2.0f})}, {}, "div");
  b.output(conv(b, b.node("Relu", {y}, {}, "relu"), 5, 3, 3, "conv"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(opTypes(*m.graph) == std::vector<std::string>{"BatchNormRelu", "Conv"});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 5, 6, 6})}});
  SECTION("not when the BN output has another reader") {
    GraphBuilder b2(44);
    ir::Value* x2 = b2.input("x", ir::DataType::kFloat, {1, 2, 3, 3});
    ir::Value* n = b2.node("BatchNormalization",
                           {x2, b2.weight("s", {2}), b2.weight("beta", {2}), b2.weight("mean", {2}),
                            b2.weight("var", {2}, ir::DataType::kFloat, 0.2, 2.0)},
                           {}, "bn");
    b2.output(b2.node("Mul", {n, b2.weight("w", {2, 1, 1})}, {}, "mul"));
    b2.output(b2.node("Relu", {n}, {}, "relu"));
    CHECK(opTypes(*lowered(b2.build(13)).graph) == std::vector<std::string>{"BatchNormalization", "Mul", "Relu"});
  }
}

TEST_CASE("A BatchNormalization read only by a Relu runs as one BatchNormRelu", "[runtime][lowering]") {
  // DenseNet's pre-activation: BN -> Relu -> Conv 1x1, and a second pair on the same x whose BN
  // output is also a graph output (it stays).
  GraphBuilder b(45);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 7, 9, 11});
  auto bn = [&](ir::Value* in, int64_t c, const std::string& name) {
    return b.node("BatchNormalization",
                  {in, b.weight(name + "_s", {c}), b.weight(name + "_beta", {c}), b.weight(name + "_mean", {c}),
                   b.weight(name + "_var", {c}, ir::DataType::kFloat, 0.2, 2.0)},
                  {ir::Attribute::makeFloat("epsilon", 1e-3f)}, name);
  };
  b.output(conv(b, b.node("Relu", {bn(x, 7, "bn1")}, {}, "relu1"), 7, 4, 1, "conv"));
  ir::Value* n2 = bn(x, 7, "bn2");
  b.output(b.node("Relu", {n2}, {}, "relu2"));
  b.output(n2);
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(opTypes(*m.graph) == std::vector<std::string>{"BatchNormRelu", "Conv", "BatchNormalization", "Relu"});
  CHECK(m.graph->nodes().front()->attrFloat("epsilon", 0.0f) == 1e-3f);
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {2, 7, 9, 11})}});
  SECTION("a dense block stays channels last through it") {
    // Conv -> {BN -> Relu -> Conv 1x1} -> Concat -> BN -> Relu -> Conv 1x1 -> Concat -> AveragePool:
    // BatchNormRelu reads and writes [N, H, W, C], so no convolution reorders its input.
    GraphBuilder b2(47);
    ir::Value* x2 = b2.input("x", ir::DataType::kFloat, {1, 3, 10, 10});
    auto bnRelu = [&](ir::Value* in, int64_t c, const std::string& name) {
      return b2.node("Relu",
                     {b2.node("BatchNormalization",
                              {in, b2.weight(name + "_s", {c}), b2.weight(name + "_beta", {c}), b2.weight(name + "_mean", {c}),
                               b2.weight(name + "_var", {c}, ir::DataType::kFloat, 0.2, 2.0)},
                              {}, name)},
                     {}, name + "_relu");
    };
    ir::Value* c0 = conv(b2, x2, 3, 8, 3, "c0");
    ir::Value* cat1 = b2.node("Concat", {c0, conv(b2, bnRelu(c0, 8, "bn1"), 8, 4, 1, "c1")},
                              {ir::Attribute::makeInt("axis", 1)}, "cat1");
    ir::Value* cat2 = b2.node("Concat", {cat1, conv(b2, bnRelu(cat1, 12, "bn2"), 12, 4, 1, "c2")},
                              {ir::Attribute::makeInt("axis", 1)}, "cat2");
    b2.output(b2.node("AveragePool", {cat2},
                      {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("strides", {2, 2})}, "pool"));
    ir::Model dense = b2.build(13);
    ir::Model m2 = lowered(dense);
    CHECK(countOps(*m2.graph, "BatchNormRelu") == 2);
    for (const ir::Node* n : m2.graph->nodes()) {
      CAPTURE(n->opType(), n->name());
      if (n->opType() == "BatchNormRelu") CHECK(n->attrInt("channels_last", 0) == 1);
      if (n->opType() == "FusedConv" && n->name() != "c0") CHECK(n->attrInt("channels_last_in", 0) == 1);
    }
    checkSameAsUnlowered(dense, {{"x", b2.randomTensor(ir::DataType::kFloat, {1, 3, 10, 10})}});
  }
  SECTION("not in training mode") {
    GraphBuilder b2(46);
    ir::Value* x2 = b2.input("x", ir::DataType::kFloat, {1, 2, 3, 3});
    ir::Value* n = b2.node("BatchNormalization",
                           {x2, b2.weight("s", {2}), b2.weight("beta", {2}), b2.weight("mean", {2}),
                            b2.weight("var", {2}, ir::DataType::kFloat, 0.2, 2.0)},
                           {ir::Attribute::makeInt("training_mode", 1)}, "bn");
    b2.output(b2.node("Relu", {n}, {}, "relu"));
    CHECK(opTypes(*lowered(b2.build(15)).graph) == std::vector<std::string>{"BatchNormalization", "Relu"});
  }
}

TEST_CASE("Affine ops that are not per channel, or whose Conv has other readers, stay", "[runtime][lowering]") {
  SECTION("a constant that varies along the spatial axes") {
    GraphBuilder b(35);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 4, 4});
    b.output(b.node("Add", {conv(b, x, 2, 3, 3, "conv"), b.weight("c", {1, 1, 4, 4})}, {}, "add"));
    CHECK(opTypes(*lowered(b.build(13)).graph) == std::vector<std::string>{"Conv", "Add"});
  }
  SECTION("the constant minus the Conv, and division by zero") {
    GraphBuilder b(36);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 4, 4});
    b.output(b.node("Sub", {b.constant("c", {1}, {1.0f}), conv(b, x, 2, 3, 3, "conv1")}, {}, "sub"));
    b.output(b.node("Div", {conv(b, x, 2, 3, 3, "conv2"), b.constant("zero", {1}, {0.0f})}, {}, "div"));
    CHECK(opTypes(*lowered(b.build(13)).graph) == std::vector<std::string>{"Conv", "Sub", "Conv", "Div"});
  }
  SECTION("the Conv output has another reader") {
    GraphBuilder b(37);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 4, 4});
    ir::Value* y = conv(b, x, 2, 3, 3, "conv");
    b.output(b.node("Mul", {y, b.constant("c", {1}, {2.0f})}, {}, "mul"));
    b.output(y);
    CHECK(opTypes(*lowered(b.build(13)).graph) == std::vector<std::string>{"Conv", "Mul"});
  }
}

TEST_CASE("HardSwish written as Add, Clip, Mul and Div becomes one HardSwish", "[runtime][lowering]") {
  enum class Form { kMulThenDiv, kDivThenMul, kMulBySixth };
  for (Form form : {Form::kMulThenDiv, Form::kDivThenMul, Form::kMulBySixth}) {
    for (bool afterConv : {true, false}) {
      INFO("form " << static_cast<int>(form) << (afterConv ? ", after a Conv" : ", on a graph input"));
      GraphBuilder b(38);
      ir::Value* in = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
      ir::Value* x = afterConv ? conv(b, in, 4, 4, 3, "conv") : in;
      ir::Value* clip = b.node("Clip",
                               {b.node("Add", {x, b.constant("three", {1}, {3.0f})}, {}, "add"),
                                b.constant("lo", {}, {0.0f}), b.constant("hi", {}, {6.0f})},
                               {}, "clip");
      ir::Value* y = nullptr;
      if (form == Form::kMulThenDiv) {
        y = b.node("Div", {b.node("Mul", {x, clip}, {}, "mul"), b.constant("six", {1}, {6.0f})}, {}, "div");
      } else if (form == Form::kDivThenMul) {
        y = b.node("Mul", {b.node("Div", {clip, b.constant("six", {1}, {6.0f})}, {}, "div"), x}, {}, "mul");
      } else {
        y = b.node("Mul", {b.constant("sixth", {1}, {1.0f / 6.0f}), b.node("Mul", {clip, x}, {}, "mul")}, {}, "scale");
      }
      b.output(b.node("Relu", {y}, {}, "relu"));
      ir::Model model = b.build(13);
      ir::Model m = lowered(model);
      if (afterConv) {
        REQUIRE(opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
        CHECK(onlyNode(m)->findAttribute("post_ops")->strings == std::vector<std::string>{"HardSwish", "Relu"});
      } else {
        CHECK(opTypes(*m.graph) == std::vector<std::string>{"HardSwish", "Relu"});
      }
      checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6}, -5.0, 5.0)}});
    }
  }
  SECTION("not with other bounds, or when the sum has another reader") {
    GraphBuilder b(39);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
    ir::Value* sum = b.node("Add", {x, b.constant("three", {1}, {3.0f})}, {}, "add");
    ir::Value* clip = b.node("Clip", {sum, b.constant("lo", {}, {0.0f}), b.constant("hi", {}, {5.0f})}, {}, "clip");
    b.output(b.node("Div", {b.node("Mul", {x, clip}, {}, "mul"), b.constant("six", {1}, {6.0f})}, {}, "div"));
    ir::Value* sum2 = b.node("Add", {x, b.constant("three2", {1}, {3.0f})}, {}, "add2");
    ir::Value* clip2 =
        b.node("Clip", {sum2, b.constant("lo2", {}, {0.0f}), b.constant("hi2", {}, {6.0f})}, {}, "clip2");
    b.output(b.node("Div", {b.node("Mul", {x, clip2}, {}, "mul2"), b.constant("six2", {1}, {6.0f})}, {}, "div2"));
    b.output(sum2);
    ir::Model m = lowered(b.build(13));
    CHECK(countOps(*m.graph, "HardSwish") == 0);
    CHECK(countOps(*m.graph, "Clip") == 2);
  }
}

TEST_CASE("A squeeze-and-excitation block stays channels last", "[runtime][lowering]") {
  // y = Conv(x1 * HardSigmoid(Conv(Relu(Conv(GlobalAveragePool(x1)))))), x1 = Conv(x): the gate
  // [N, C, 1, 1] is the same memory channels last, so nothing here needs NCHW.
  GraphBuilder b(40);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 10, 12});
  ir::Value* x1 = conv(b, x, 3, 8, 3, "conv1");
  ir::Value* pooled = b.node("GlobalAveragePool", {x1}, {}, "gap");
  ir::Value* s = b.node("Relu", {conv(b, pooled, 8, 2, 1, "squeeze")}, {}, "relu");
  ir::Value* gate = b.node("HardSigmoid", {conv(b, s, 2, 8, 1, "excite")}, {}, "gate");
  b.output(conv(b, b.node("Mul", {x1, gate}, {}, "scale"), 8, 4, 3, "conv2"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  const ir::Node* gap = whittle::testing::findNode(*m.graph, "gap");
  REQUIRE(gap != nullptr);
  CHECK(gap->attrInt("channels_last_in", 0) == 1);
  CHECK(gap->attrInt("channels_last_out", 0) == 1);
  const ir::Node* excite = whittle::testing::findNode(*m.graph, "excite");
  REQUIRE(excite != nullptr);
  CHECK(excite->attrInt("channels_last_out", 0) == 1);
  CHECK(whittle::testing::findNode(*m.graph, "conv2")->attrInt("channels_last_in", 0) == 1);
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 3, 10, 12})}});
}

TEST_CASE("Slice and Concat of constants become constants, down a chain", "[runtime][lowering]") {
  // silero-vad's LSTM: W = Unsqueeze(Concat(Slice(w, ...), Slice(w, ...), ...)) inside an If branch.
  struct Case {
    std::string what;
    std::vector<int64_t> starts, ends, axes, steps;  // axes/steps empty: the input is absent
    std::vector<int64_t> outDims;
  };
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const std::vector<Case> cases = {
      {"rows 1..-1", {1}, {-1}, {0}, {}, {4, 5}},
      {"reversed by 2, the end clamped", {-1}, {-100}, {0}, {-2}, {3, 5}},
      {"both axes, negative axis, ends past the dims", {0, 1}, {kMax, 1000}, {-2, 1}, {2, 1}, {3, 4}},
      {"no axes: the leading axes", {2, 0}, {4, 5}, {}, {}, {2, 5}},
      {"empty", {3}, {3}, {1}, {}, {6, 0}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    GraphBuilder b(51);
    ir::Value* w = b.weight("w", {6, 5});
    std::vector<ir::Value*> in = {w, int64s(b, "starts", c.starts), int64s(b, "ends", c.ends)};
    if (!c.axes.empty() || !c.steps.empty()) in.push_back(c.axes.empty() ? nullptr : int64s(b, "axes", c.axes));
    if (!c.steps.empty()) in.push_back(int64s(b, "steps", c.steps));
    ir::Value* x = b.input("x", ir::DataType::kFloat, c.outDims);
    b.output(b.node("Add", {x, b.node("Slice", in, {}, "slice")}, {}, "add"));
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    CHECK(opTypes(*m.graph) == std::vector<std::string>{"Add"});
    CHECK(m.graph->findValue("w") == nullptr);  // read by nothing else: dropped
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, c.outDims)}});
  }
  SECTION("Slice with the opset-1 attributes, Concat of the slices and a weight, then Unsqueeze") {
    GraphBuilder b(52);
    ir::Value* w = b.weight("w", {6, 5});
    ir::Value* top = b.node("Slice", {w},
                            {ir::Attribute::makeInts("starts", {0}), ir::Attribute::makeInts("ends", {2}),
                             ir::Attribute::makeInts("axes", {0})},
                            "top");
    ir::Value* bottom = b.node("Slice", {w},
                               {ir::Attribute::makeInts("starts", {-2, 1}), ir::Attribute::makeInts("ends", {kMax, 4})},
                               "bottom");                                                  // [2, 3]
    ir::Value* joined = b.node("Concat", {top, b.weight("v", {2, 2})}, {ir::Attribute::makeInt("axis", -1)}, "c0");  // [2, 7]
    ir::Value* all = b.node("Concat", {joined, bottom, bottom}, {ir::Attribute::makeInt("axis", 1)}, "c1");          // [2, 13]
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 2, 13});
    b.output(b.node("Add", {x, b.node("Unsqueeze", {all}, {ir::Attribute::makeInts("axes", {0})}, "u")}, {}, "add"));
    ir::Model model = b.build(9);
    ir::Model m = lowered(model);
    CHECK(opTypes(*m.graph) == std::vector<std::string>{"Add"});
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 2, 13})}});
  }
}

TEST_CASE("Slice and Concat with a run-time operand, or whose output is a graph output, stay", "[runtime][lowering]") {
  GraphBuilder b(53);
  ir::Value* w = b.weight("w", {4, 3});
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3});
  ir::Value* start = b.input("start", ir::DataType::kInt64, {1});
  ir::Value* dynamic = b.node("Slice", {w, start, int64s(b, "ends", {100})}, {}, "dynamic");
  ir::Value* withInput = b.node("Concat", {x, w}, {ir::Attribute::makeInt("axis", 0)}, "with_input");  // [6, 3]
  ir::Value* shown = b.node("Slice", {w, int64s(b, "s1", {0}), int64s(b, "e1", {2})}, {}, "shown");     // [2, 3]
  b.output(dynamic);
  b.output(withInput);
  b.output(shown);
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(opTypes(*m.graph) == std::vector<std::string>{"Slice", "Concat", "Slice"});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {2, 3})},
                               {"start", ir::Tensor::fromVector(ir::DataType::kInt64, {1}, std::vector<int64_t>{1})}});
}

TEST_CASE("GELU written out with Erf becomes one Gelu, then a Conv post-op", "[runtime][lowering]") {
  // The forms exporters write: Paddle (x * (1 + erf(x / 1.4142135))) * 0.5, PyTorch
  // (x * 0.5) * (1 + erf(x * 0.70710677)), and x * ((1 + erf(x / 1.4142)) * 0.5) with the
  // constants first, the halving as Div by 2, sqrt 2 rounded to four digits.
  enum class Form { kPaddle, kTorch, kHalfOfErfTerm, kDivByTwo };
  for (Form form : {Form::kPaddle, Form::kTorch, Form::kHalfOfErfTerm, Form::kDivByTwo}) {
    for (bool afterConv : {true, false}) {
      INFO("form " << static_cast<int>(form) << (afterConv ? ", after a Conv" : ", on a graph input"));
      GraphBuilder b(40);
      ir::Value* in = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
      ir::Value* x = afterConv ? conv(b, in, 4, 4, 3, "conv") : in;
      ir::Value* y = nullptr;
      if (form == Form::kPaddle || form == Form::kDivByTwo) {
        ir::Value* t = b.node("Div", {x, b.constant("sqrt2", {}, {1.4142135f})}, {}, "div");
        ir::Value* s = b.node("Add", {b.node("Erf", {t}, {}, "erf"), b.constant("one", {1}, {1.0f})}, {}, "add");
        ir::Value* p = b.node("Mul", {x, s}, {}, "mul");
        y = form == Form::kPaddle ? b.node("Mul", {p, b.constant("half", {1}, {0.5f})}, {}, "half")
                                  : b.node("Div", {p, b.constant("two", {}, {2.0f})}, {}, "half");
      } else if (form == Form::kTorch) {
        ir::Value* h = b.node("Mul", {x, b.constant("half", {}, {0.5f})}, {}, "half");
        ir::Value* t = b.node("Mul", {b.constant("rsqrt2", {}, {0.70710677f}), x}, {}, "scale");
        ir::Value* s = b.node("Add", {b.constant("one", {}, {1.0f}), b.node("Erf", {t}, {}, "erf")}, {}, "add");
        y = b.node("Mul", {s, h}, {}, "mul");
      } else {
        ir::Value* t = b.node("Div", {x, b.constant("sqrt2", {}, {1.4142f})}, {}, "div");
        ir::Value* s = b.node("Add", {b.node("Erf", {t}, {}, "erf"), b.constant("one", {}, {1.0f})}, {}, "add");
        ir::Value* q = b.node("Mul", {b.constant("half", {1, 1, 1, 1}, {0.5f}), s}, {}, "half");
        y = b.node("Mul", {q, x}, {}, "mul");
      }
      b.output(b.node("Relu", {y}, {}, "relu"));
      ir::Model model = b.build(13);
      ir::Model m = lowered(model);
      if (afterConv) {
        REQUIRE(opTypes(*m.graph) == std::vector<std::string>{"FusedConv"});
        CHECK(onlyNode(m)->findAttribute("post_ops")->strings == std::vector<std::string>{"Gelu", "Relu"});
      } else {
        CHECK(opTypes(*m.graph) == std::vector<std::string>{"Gelu", "Relu"});
      }
      checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6}, -4.0, 4.0)}});
    }
  }
  SECTION("x read twice: the Gelu forms, the Conv keeps its other reader") {
    GraphBuilder b(41);
    ir::Value* x = conv(b, b.input("x", ir::DataType::kFloat, {1, 4, 6, 6}), 4, 4, 3, "conv");
    ir::Value* t = b.node("Div", {x, b.constant("sqrt2", {}, {1.4142135f})}, {}, "div");
    ir::Value* s = b.node("Add", {b.node("Erf", {t}, {}, "erf"), b.constant("one", {}, {1.0f})}, {}, "add");
    ir::Value* y = b.node("Mul", {b.node("Mul", {x, s}, {}, "mul"), b.constant("half", {}, {0.5f})}, {}, "half");
    b.output(b.node("Add", {y, x}, {}, "residual"));
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    CHECK(countOps(*m.graph, "Gelu") == 1);
    CHECK(countOps(*m.graph, "Erf") == 0);
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6}, -4.0, 4.0)}});
  }
  SECTION("not when a middle value is a graph output, the constants differ, or they broadcast x up") {
    GraphBuilder b(42);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {4, 6});
    auto gelu = [&](const std::string& p, float root, float one, std::vector<int64_t> halfDims) {
      ir::Value* t = b.node("Div", {x, b.constant(p + "root", {}, {root})}, {}, p + "div");
      ir::Value* s = b.node("Add", {b.node("Erf", {t}, {}, p + "erf"), b.constant(p + "one", {}, {one})}, {}, p + "add");
      ir::Value* prod = b.node("Mul", {x, s}, {}, p + "mul");
      return std::make_pair(prod, b.node("Mul", {prod, b.constant(p + "half", halfDims, {0.5f})}, {}, p + "half"));
    };
    auto [prod, y] = gelu("a", 1.4142135f, 1.0f, {});
    b.output(y);
    b.output(prod);                                      // the product is also an output
    b.output(gelu("b", 1.5f, 1.0f, {}).second);          // not sqrt 2
    b.output(gelu("c", 1.4142135f, 2.0f, {}).second);    // not 1 + erf
    b.output(gelu("d", 1.4142135f, 1.0f, {1, 1, 1}).second);  // a rank-3 result from a rank-2 x
    ir::Model model = b.build(13);
    ir::Model m = lowered(model);
    CHECK(countOps(*m.graph, "Gelu") == 0);
    CHECK(countOps(*m.graph, "Erf") == 4);
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {4, 6}, -4.0, 4.0)}});
  }
}

TEST_CASE("Identity and inference Dropout between a Conv and its activation go away", "[runtime][lowering]") {
  GraphBuilder b(43);
  ir::Value* x = conv(b, b.input("x", ir::DataType::kFloat, {1, 4, 6, 6}), 4, 4, 3, "conv");
  ir::Value* i1 = b.node("Identity", {b.node("Identity", {x}, {}, "id1")}, {}, "id2");
  ir::Value* r = b.node("Relu", {b.node("Dropout", {i1}, {}, "drop")}, {}, "relu");
  ir::Value* out = b.node("Identity", {r}, {}, "id_out");  // a graph output: stays
  b.output(out);
  b.output(b.node("Sigmoid", {out}, {}, "sig"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(opTypes(*m.graph) == std::vector<std::string>{"FusedConv", "Identity", "Sigmoid"});
  checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6}, -4.0, 4.0)}});
  SECTION("a Dropout asked for its mask stays") {
    GraphBuilder c(44);
    ir::Value* in = c.input("x", ir::DataType::kFloat, {2, 3});
    ir::Node* drop = c.graph().addNode("Dropout", {in}, {"y", "mask"}, "drop");
    c.output(c.node("Relu", {drop->output(0)}, {}, "relu"));
    c.output(drop->output(1), ir::DataType::kBool, {2, 3});
    ir::Model dm = lowered(c.build(13));
    CHECK(countOps(*dm.graph, "Dropout") == 1);
  }
}
