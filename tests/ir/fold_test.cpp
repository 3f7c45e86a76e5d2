// ir/fold.h: BatchNormalization folded into a Conv (the one fold that fuse-conv-bn and the
// runtime's lowering share), and the per-channel helpers under it.
#include <catch2/catch.hpp>

#include <span>

#include <cmath>

#include "support/graph_builder.h"
#include "whittle/ir/fold.h"
#include "whittle/ir/rewrite.h"
#include "whittle/ir/verifier.h"

using namespace whittle;
using ir::Attribute;
using ir::ConstantScope;
using ir::DataType;
using testing::GraphBuilder;

namespace {

template <typename T>
std::vector<T> asVector(std::span<const T> values) {
  return {values.begin(), values.end()};
}

// y = BatchNormalization(Conv(x, w[, b]), s, beta, mean, var), with `channels` outputs.
struct ConvBn {
  ir::Model model;
  ir::Node* conv = nullptr;
  ir::Node* bn = nullptr;
};

ConvBn convBn(bool withBias, std::vector<Attribute> bnAttrs = {}, bool readOutput = true) {
  GraphBuilder b(31);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 2, 4, 4});
  std::vector<ir::Value*> inputs = {x, b.weight("w", {3, 2, 3, 3})};
  if (withBias) inputs.push_back(b.weight("b", {3}));
  ir::Value* c = b.node("Conv", inputs, {}, "conv");
  ir::Node* conv = b.lastNode();
  bnAttrs.push_back(Attribute::makeFloat("epsilon", 1e-3f));
  ir::Value* y = b.node("BatchNormalization",
                        {c, b.weight("s", {3}, DataType::kFloat, 0.5, 1.5), b.weight("beta", {3}), b.weight("mean", {3}),
                         b.weight("var", {3}, DataType::kFloat, 0.2, 2.0)},
                        bnAttrs, "bn");
  ir::Node* bn = b.lastNode();
  if (readOutput) {
    b.output(b.node("Relu", {y}, {}, "relu"));
  } else {
    b.output(y);
  }
  return {b.build(15), conv, bn};
}

}  // namespace

TEST_CASE("foldConvBatchNorm computes W' and b' in double and rewires the BN's readers", "[ir][fold]") {
  bool withBias = GENERATE(false, true);
  ConvBn g = convBn(withBias);
  ir::Graph& graph = *g.model.graph;
  auto m = ir::matchConvBatchNorm(*g.bn);
  REQUIRE(m.has_value());
  CHECK(m->conv == g.conv);
  CHECK(m->bn == g.bn);

  const ir::Tensor w = *graph.findValue("w")->constant();
  std::vector<double> s = ir::toDoubles(*graph.findValue("s")->constant());
  std::vector<double> beta = ir::toDoubles(*graph.findValue("beta")->constant());
  std::vector<double> mean = ir::toDoubles(*graph.findValue("mean")->constant());
  std::vector<double> var = ir::toDoubles(*graph.findValue("var")->constant());
  std::vector<double> bias = withBias ? ir::toDoubles(*graph.findValue("b")->constant()) : std::vector<double>(3, 0.0);

  ir::foldConvBatchNorm(graph, *m);
  const ir::Tensor& newW = *g.conv->input(1)->constant();
  const ir::Tensor& newB = *g.conv->input(2)->constant();
  for (int64_t c = 0; c < 3; ++c) {
    double a = s[c] / std::sqrt(var[c] + static_cast<double>(1e-3f));
    CHECK(newB.data<float>()[c] == static_cast<float>((bias[c] - mean[c]) * a + beta[c]));
    for (int64_t k = 0; k < 18; ++k) {
      CHECK(newW.data<float>()[c * 18 + k] == static_cast<float>(w.data<float>()[c * 18 + k] * a));
    }
  }
  CHECK(g.conv->input(1)->name() == "w_bn_fused");
  CHECK(g.conv->input(2)->name() == "bn_bias_fused");
  CHECK(graph.findValue("relu")->producer()->input(0) == g.conv->output(0));
  // The BN and the unfolded weights are left unread, for the caller to erase.
  CHECK_FALSE(g.bn->output(0)->hasUses());
  CHECK_FALSE(graph.findValue("w")->hasUses());
  CHECK(ir::removeDeadNodes(graph) == 1);
  CHECK(graph.findValue("w") == nullptr);
  CHECK(graph.findValue("b") == nullptr);
  CHECK(graph.findValue("s") == nullptr);
  CHECK(graph.initializers().size() == 2);
  Status verified = ir::verify(graph);
  INFO(verified.message());
  CHECK(verified.isOk());
}

TEST_CASE("foldConvBatchNorm keeps a graph output's name and shared weights", "[ir][fold]") {
  ConvBn g = convBn(/*withBias=*/false, {}, /*readOutput=*/false);
  ir::Graph& graph = *g.model.graph;
  // A second Conv reads the same weights.
  graph.addNode("Conv", {graph.findValue("x"), graph.findValue("w")}, {"other"}, "other");
  graph.addOutput(graph.findValue("other"));
  auto m = ir::matchConvBatchNorm(*g.bn);
  REQUIRE(m.has_value());
  ir::foldConvBatchNorm(graph, *m);
  CHECK(graph.outputs()[0] == g.conv->output(0));
  CHECK(g.conv->output(0)->name() == "bn");
  ir::removeDeadNodes(graph);
  CHECK(graph.findValue("w") != nullptr);  // the other Conv still reads it
}

TEST_CASE("matchConvBatchNorm: what must hold", "[ir][fold]") {
  SECTION("training mode") {
    ConvBn g = convBn(true, {Attribute::makeInt("training_mode", 1)});
    CHECK_FALSE(ir::matchConvBatchNorm(*g.bn).has_value());
  }
  SECTION("spatial = 0 (opset < 9: statistics per element)") {
    ConvBn g = convBn(true, {Attribute::makeInt("spatial", 0)});
    CHECK_FALSE(ir::matchConvBatchNorm(*g.bn).has_value());
  }
  SECTION("the Conv output has a second reader") {
    ConvBn g = convBn(true);
    g.model.graph->addNode("Relu", {g.conv->output(0)}, {"second"});
    CHECK_FALSE(ir::matchConvBatchNorm(*g.bn).has_value());
  }
  SECTION("a parameter with the wrong number of channels") {
    ConvBn g = convBn(true);
    g.model.graph->findValue("mean")->setConstant(ir::Tensor(DataType::kFloat, {4}));
    CHECK_FALSE(ir::matchConvBatchNorm(*g.bn).has_value());
  }
  SECTION("extra outputs: unread ones are fine, read ones are not") {
    GraphBuilder b(32);
    ir::Value* x = b.input("x", DataType::kFloat, {1, 2, 4, 4});
    ir::Value* c = b.node("Conv", {x, b.weight("w", {3, 2, 1, 1})});
    std::vector<ir::Value*> outs = b.nodeN("BatchNormalization",
                                           {c, b.weight("s", {3}), b.weight("beta", {3}), b.weight("mean", {3}),
                                            b.weight("var", {3}, DataType::kFloat, 0.2, 2.0)},
                                           2);
    ir::Node* bn = b.lastNode();
    b.output(outs[0]);
    ir::Model model = b.build(15);
    CHECK(ir::matchConvBatchNorm(*bn).has_value());
    model.graph->addNode("Relu", {outs[1]}, {"reads_running_mean"});
    CHECK_FALSE(ir::matchConvBatchNorm(*bn).has_value());
  }
}

TEST_CASE("matchConvBatchNorm sees constants as the model or the session does", "[ir][fold]") {
  ConvBn g = convBn(true);
  ir::Graph& graph = *g.model.graph;
  SECTION("a weight that is also a graph input: overridable in a model, fixed in a session") {
    ir::Value* w = graph.findValue("w");
    ir::Value* fed = graph.addInput("w_input", w->type());
    fed->setConstant(*w->constant());
    g.conv->setInput(1, fed);
    CHECK_FALSE(ir::matchConvBatchNorm(*g.bn).has_value());
    CHECK(ir::matchConvBatchNorm(*g.bn, ConstantScope::kSession).has_value());
  }
  SECTION("a parameter from a Constant node: constant in a model, a kernel in a session") {
    ir::Node* constant = graph.addNode("Constant", {}, {"mean_node"}, "mean_node", "", g.bn);
    constant->setAttribute(Attribute::makeTensor("value", *graph.findValue("mean")->constant()));
    g.bn->setInput(3, constant->output(0));
    CHECK(ir::matchConvBatchNorm(*g.bn).has_value());
    CHECK_FALSE(ir::matchConvBatchNorm(*g.bn, ConstantScope::kSession).has_value());
  }
}

TEST_CASE("scaleOutputChannels scales axis 0 of a Conv weight and axis 1 of each ConvTranspose group", "[ir][fold]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {1, 4, 3, 3});
  ir::Value* w = b.constant("w", {4, 1, 1, 1}, {1, 1, 1, 1});
  b.node("Conv", {x, w});
  ir::Node* conv = b.lastNode();
  ir::Tensor scaled = ir::scaleOutputChannels(*conv, *w->constant(), {1, 2, 3, 4});
  CHECK(asVector<float>(scaled.values<float>()) == std::vector<float>{1, 2, 3, 4});
  CHECK(ir::outputChannels(*conv, *w->constant()) == 4);

  // ConvTranspose, group 2: W is [Cin 4, Cout/group 1, 1, 1]; outputs 0 and 1 come from
  // input channels {0, 1} and {2, 3}.
  b.node("ConvTranspose", {x, w}, {Attribute::makeInt("group", 2)});
  ir::Node* convT = b.lastNode();
  CHECK(ir::outputChannels(*convT, *w->constant()) == 2);
  ir::Tensor scaledT = ir::scaleOutputChannels(*convT, *w->constant(), {10, 20});
  CHECK(asVector<float>(scaledT.values<float>()) == std::vector<float>{10, 10, 20, 20});
}

TEST_CASE("fromDoubles rounds once to each floating-point type", "[ir][fold]") {
  std::vector<double> v = {1.0 / 3.0, -2.5};
  ir::Tensor single = ir::fromDoubles(DataType::kFloat, {2}, v);
  CHECK(asVector<float>(single.values<float>()) == std::vector<float>{1.0f / 3.0f, -2.5f});
  CHECK(ir::toDoubles(ir::fromDoubles(DataType::kDouble, {2}, v)) == v);
  ir::Tensor half = ir::fromDoubles(DataType::kFloat16, {2}, v);
  CHECK(half.data<uint16_t>()[0] == ir::floatToHalf(1.0f / 3.0f));
  ir::Tensor bf = ir::fromDoubles(DataType::kBFloat16, {2}, v);
  CHECK(bf.data<uint16_t>()[1] == ir::floatToBfloat16(-2.5f));
}
