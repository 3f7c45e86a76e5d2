// The QDQ group selector: every group kind recognised (with the Relu/Clip it absorbs), the
// conditions it refuses with their reasons, the op rule that quantize-int8 asks, and the
// QOperator rewrite computing what the QDQ groups simulate.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "kernels/cpu/quant_test_util.h"
#include "whittle/ir/rewrite.h"
#include "whittle/ir/verifier.h"
#include "whittle/quant/qdq_groups.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;
using quant::QdqGroupKind;
using quant::QdqInputRole;

namespace {

/// Builds QDQ graphs with constant parameters.
struct Qdq {
  GraphBuilder gb{7};
  std::mt19937_64 rng{11};
  int counter = 0;

  std::string fresh(const std::string& base) { return base + std::to_string(counter++); }
  ir::Value* q(ir::Value* x, float scale, int32_t zp, DataType type = DataType::kUint8, const std::string& name = "") {
    std::string n = name.empty() ? fresh("q") : name;
    return gb.node("QuantizeLinear", {x, gb.constant(n + "_s", scalar(scale)), gb.constant(n + "_z", scalar(type, zp))}, {}, n);
  }
  ir::Value* dq(ir::Value* xq, float scale, int32_t zp, DataType type = DataType::kUint8) {
    std::string n = fresh("dq");
    return gb.node("DequantizeLinear", {xq, gb.constant(n + "_s", scalar(scale)), gb.constant(n + "_z", scalar(type, zp))},
                   {}, n);
  }
  ir::Value* qdq(ir::Value* x, float scale, int32_t zp, DataType type = DataType::kUint8) {
    return dq(q(x, scale, zp, type), scale, zp, type);
  }
  /// int8 weights behind a DequantizeLinear, per channel along `axis`.
  ir::Value* weights(std::vector<int64_t> dims, int64_t axis) {
    std::string n = fresh("w");
    const int64_t channels = dims[static_cast<size_t>(axis)];
    ir::Value* wq = gb.constant(n + "_q", intTensor(DataType::kInt8, dims, randomInts(rng, numel(dims), -90, 90)));
    ir::Value* ws = gb.constant(n + "_s", floatTensor({channels}, randomFloats(rng, channels, 0.004f, 0.012f)));
    ir::Value* wz = gb.constant(n + "_z", intTensor(DataType::kInt8, {channels}, std::vector<int32_t>(channels, 0)));
    return gb.node("DequantizeLinear", {wq, ws, wz}, {ir::Attribute::makeInt("axis", axis)}, n);
  }
  /// A float bias (the lowering requantizes it).
  ir::Value* bias(int64_t m) { return gb.constant(fresh("b"), floatTensor({m}, randomFloats(rng, m, -0.3f, 0.3f))); }
  ir::Value* conv(ir::Value* x, int64_t c, int64_t m, const std::string& name) {
    return gb.node("Conv", {x, weights({m, c, 3, 3}, 0), bias(m)}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, name);
  }
};

std::map<std::string, const quant::QdqGroup*> byTarget(const std::vector<quant::QdqGroup>& groups) {
  std::map<std::string, const quant::QdqGroup*> out;
  for (const quant::QdqGroup& g : groups) out[g.target->name()] = &g;
  return out;
}

const ir::Node* nodeNamed(const ir::Graph& g, const std::string& name) {
  for (const ir::Node* n : g.nodes()) {
    if (n->name() == name) return n;
  }
  return nullptr;
}

/// Input x [1, 4, 6, 6] quantized per tensor (0.02, 128), dequantized per channel (axis 1) by "dqx".
ir::Value* perChannelInput(Qdq& b, const std::vector<float>& scales, const std::vector<int32_t>& zeroPoints) {
  ir::Value* xq = b.q(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
  ir::Value* xs = b.gb.constant("xs", floatTensor({4}, scales));
  ir::Value* xz = b.gb.constant("xz", intTensor(DataType::kUint8, {4}, zeroPoints));
  return b.gb.node("DequantizeLinear", {xq, xs, xz}, {ir::Attribute::makeInt("axis", 1)}, "dqx");
}

std::string reasonAt(const ir::Graph& g, const std::string& qName, const quant::QdqGroupOptions& options = {}) {
  const ir::Node* q = nodeNamed(g, qName);
  REQUIRE(q != nullptr);
  quant::QdqGroupMatch m = quant::matchQdqGroup(*q, options);
  CHECK_FALSE(m.group.has_value());
  return m.reason;
}

int countOps(const ir::Graph& g, const std::string& op) {
  int k = 0;
  for (const ir::Node* n : g.nodes()) k += n->opType() == op ? 1 : 0;
  return k;
}

/// x -> conv+Relu -> MaxPool -> conv -> {Concat with itself -> AveragePool, MatMul path} ...:
/// one group of every kind, each quantized to uint8 in between.
ir::Model everyKind() {
  Qdq b;
  auto& gb = b.gb;
  ir::Value* x = b.qdq(gb.input("x", DataType::kFloat, {1, 4, 8, 8}), 0.02f, 128);
  ir::Value* c1 = b.qdq(gb.node("Relu", {b.conv(x, 4, 8, "conv")}, {}, "relu"), 0.05f, 0);
  ir::Value* mp = b.qdq(gb.node("MaxPool", {c1}, {ir::Attribute::makeInts("kernel_shape", {2, 2}),
                                                  ir::Attribute::makeInts("strides", {2, 2})},
                                "maxpool"),
                        0.05f, 0);
  ir::Value* id = b.qdq(gb.node("Identity", {mp}, {}, "identity"), 0.05f, 0);
  ir::Value* cat = b.qdq(gb.node("Concat", {id, mp}, {ir::Attribute::makeInt("axis", 1)}, "concat"), 0.05f, 0);
  ir::Value* ap = b.qdq(gb.node("AveragePool", {cat}, {ir::Attribute::makeInts("kernel_shape", {2, 2})}, "avgpool"), 0.04f, 3);
  ir::Value* add = b.qdq(gb.node("Clip", {gb.node("Add", {ap, ap}, {}, "add"), gb.constant("lo", scalar(0.0f)),
                                          gb.constant("hi", scalar(20.0f))},
                                 {}, "clip"),
                         0.06f, 0);
  ir::Value* mul = b.qdq(gb.node("Mul", {add, ap}, {}, "mul"), 0.1f, 10);
  ir::Value* gap = b.qdq(gb.node("GlobalAveragePool", {mul}, {}, "gap"), 0.05f, 20);
  ir::Value* flat = b.qdq(gb.node("Flatten", {gap}, {}, "flatten"), 0.05f, 20);
  ir::Value* mm = b.qdq(gb.node("Relu", {gb.node("MatMul", {flat, b.weights({16, 6}, 1)}, {}, "matmul")}, {}, "relu2"),
                        0.03f, 0);
  ir::Value* gemm = b.qdq(gb.node("Gemm", {mm, b.weights({5, 6}, 0), b.bias(5)}, {ir::Attribute::makeInt("transB", 1)}, "gemm"),
                          0.03f, 128);
  gb.output(gemm, DataType::kFloat, {1, 5});
  return gb.build(13);
}

}  // namespace

TEST_CASE("QDQ groups of every kind are recognised, with the activation they absorb", "[quant][qdq-groups]") {
  ir::Model model = everyKind();
  REQUIRE(ir::verify(*model.graph).isOk());
  std::vector<std::string> refused;
  std::vector<quant::QdqGroup> groups = quant::selectQdqGroups(*model.graph, {}, &refused);
  auto g = byTarget(groups);
  const std::map<std::string, QdqGroupKind> expected = {
      {"conv", QdqGroupKind::kConv},          {"maxpool", QdqGroupKind::kDataMovement},
      {"identity", QdqGroupKind::kDataMovement}, {"concat", QdqGroupKind::kConcat},
      {"avgpool", QdqGroupKind::kAveragePool}, {"add", QdqGroupKind::kBinary},
      {"mul", QdqGroupKind::kBinary},          {"gap", QdqGroupKind::kAveragePool},
      {"flatten", QdqGroupKind::kDataMovement}, {"matmul", QdqGroupKind::kMatMul},
      {"gemm", QdqGroupKind::kGemm}};
  for (const auto& [name, kind] : expected) {
    CAPTURE(name);
    REQUIRE(g.contains(name));
    CHECK(g[name]->kind == kind);
    CHECK(g[name]->hasQOperatorForm() == (kind != QdqGroupKind::kGemm));
    CHECK(g[name]->output->opType() == "QuantizeLinear");
  }
  CHECK(groups.size() == expected.size());
  // The input's Q ends no group; the output's Q is the Gemm's.
  REQUIRE(refused.size() == 1);
  CHECK_THAT(refused[0], Catch::Contains("its input is not computed by a node"));
  // Relu before a zero point 0 (uint8's lowest), Clip(0, 20) before a range [0, 15.3]: absorbed.
  REQUIRE(g["conv"]->activation != nullptr);
  CHECK(g["conv"]->activation->name() == "relu");
  REQUIRE(g["add"]->activation != nullptr);
  CHECK(g["add"]->activation->name() == "clip");
  REQUIRE(g["matmul"]->activation != nullptr);
  CHECK(g["matmul"]->activation->name() == "relu2");
  // Inputs: the conv's weight DQ is per channel; its float bias has no DQ.
  const quant::QdqGroup& conv = *g["conv"];
  REQUIRE(conv.inputs.size() == 3);
  CHECK(conv.inputs[0]->opType() == "DequantizeLinear");
  CHECK(conv.inputs[1]->attrInt("axis", 1) == 0);
  CHECK(conv.inputs[2] == nullptr);
  CHECK(g["concat"]->inputs.size() == 2);

  // Every group with a QOperator form becomes its op; only the Gemm and the edges stay QDQ.
  ir::Model rewritten = model.clone();
  CHECK(quant::rewriteQdqGroupsAsQOperator(*rewritten.graph) == 10);
  ir::removeDeadNodes(*rewritten.graph);
  REQUIRE(ir::verify(*rewritten.graph).isOk());
  const ir::Graph& r = *rewritten.graph;
  for (const char* op : {"QLinearConv", "QLinearConcat", "QLinearAveragePool", "QLinearAdd", "QLinearMul",
                         "QLinearGlobalAveragePool", "QLinearMatMul", "MaxPool", "Identity", "Flatten", "Gemm"}) {
    CAPTURE(op);
    CHECK(countOps(r, op) == 1);
  }
  for (const char* gone : {"Conv", "Relu", "Clip", "Add", "Mul", "Concat", "AveragePool", "MatMul"}) {
    CAPTURE(gone);
    CHECK(countOps(r, gone) == 0);
  }
  CHECK(nodeNamed(r, "avgpool")->domain() == "com.microsoft");
  CHECK_FALSE(nodeNamed(r, "avgpool")->hasAttribute("dilations"));
}

TEST_CASE("QDQ groups computed as QOperator ops agree with the QDQ simulation", "[quant][qdq-groups]") {
  // Run node by node, the QDQ model simulates int8 in float; the session lowers every group
  // (absorbed Relu and Clip after Conv, Add and MatMul included) to the int8 kernels.
  ir::Model model = everyKind();
  std::mt19937_64 rng(5);
  const ir::Tensor x = floatTensor({1, 4, 8, 8}, randomFloats(rng, 4 * 64, -2.5f, 2.5f));
  const std::vector<std::string> inner = {"q4", "q10", "q14", "q18"};  // conv+relu, concat, add+clip, gap
  for (const std::string& name : inner) REQUIRE(model.graph->findValue(name) != nullptr);
  const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", x}}, inner);
  const auto out = runLowered(model, {{"x", x}}, inner);
  REQUIRE(out.size() == expected.size());
  for (size_t i = 1; i < out.size(); ++i) {
    CAPTURE(out[i].first);
    const ir::Tensor& got = out[i].second;
    REQUIRE(got.dtype() == DataType::kUint8);
    REQUIRE(got.dims() == expected[i].dims());
    int64_t maxDiff = 0;
    for (int64_t k = 0; k < got.numel(); ++k) {
      maxDiff = std::max<int64_t>(maxDiff, std::abs(static_cast<int>(got.data<uint8_t>()[k]) - expected[i].data<uint8_t>()[k]));
    }
    // Integer against float accumulation: a value may round to the neighbouring step.
    CHECK(maxDiff <= 2);
  }
  const ir::Tensor& y = out[0].second;
  for (int64_t k = 0; k < y.numel(); ++k) CHECK(std::fabs(y.data<float>()[k] - expected[0].data<float>()[k]) <= 3 * 0.03f + 1e-6f);
}

TEST_CASE("QDQ group conditions refuse with a reason", "[quant][qdq-groups]") {
  SECTION("the target's output read by another node") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* c = b.conv(x, 4, 4, "c");
    b.gb.output(b.dq(b.q(c, 0.05f, 128, DataType::kUint8, "qc"), 0.05f, 128));
    b.gb.output(b.gb.node("Sigmoid", {c}, {}, "other_reader"));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qc"), Catch::Contains("'c' is read by 2 nodes"));
  }
  SECTION("a kept value") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* c = b.conv(x, 4, 4, "c");
    b.gb.output(b.dq(b.q(c, 0.05f, 128, DataType::kUint8, "qc"), 0.05f, 128));
    ir::Model m = b.gb.build(13);
    quant::QdqGroupOptions options;
    options.keep.insert(m.graph->findValue("c"));
    CHECK_THAT(reasonAt(*m.graph, "qc", options), Catch::Contains("'c' must be kept"));
    CHECK(quant::matchQdqGroup(*nodeNamed(*m.graph, "qc")).group.has_value());
  }
  SECTION("a DQ with two consumers serves both groups and goes once both are rewritten") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* c1 = b.conv(x, 4, 4, "c1");
    ir::Value* c2 = b.conv(x, 4, 4, "c2");
    b.gb.output(b.dq(b.q(c1, 0.05f, 128), 0.05f, 128));
    b.gb.output(b.dq(b.q(c2, 0.05f, 128), 0.05f, 128));
    ir::Model m = b.gb.build(13);
    const ir::Value* shared = m.graph->findValue("dq1");
    REQUIRE(shared != nullptr);
    REQUIRE(shared->uses().size() == 2);
    auto groups = quant::selectQdqGroups(*m.graph);
    REQUIRE(groups.size() == 2);
    CHECK(groups[0].inputs[0] == groups[1].inputs[0]);
    CHECK(quant::rewriteQdqGroupsAsQOperator(*m.graph) == 2);
    CHECK(countOps(*m.graph, "QLinearConv") == 2);
    CHECK_FALSE(shared->hasUses());
  }
  SECTION("a Conv's output quantized per channel with several zero points: they fold into the bias") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* c = b.conv(x, 4, 4, "c");
    ir::Value* s = b.gb.constant("qs", floatTensor({4}, {0.05f, 0.05f, 0.06f, 0.05f}));
    ir::Value* z = b.gb.constant("qz", intTensor(DataType::kUint8, {4}, {128, 128, 120, 128}));
    b.gb.output(b.gb.node("QuantizeLinear", {c, s, z}, {ir::Attribute::makeInt("axis", 1)}, "qc"));
    ir::Model m = b.gb.build(13);
    quant::QdqGroupMatch match = quant::matchQdqGroup(*nodeNamed(*m.graph, "qc"), {});
    INFO(match.reason);
    CHECK(match.group.has_value());
  }
  SECTION("a Q with per-axis scales after an op other than Conv") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* a = b.gb.node("Add", {x, x}, {}, "add");
    ir::Value* s = b.gb.constant("qs", floatTensor({4}, {0.05f, 0.05f, 0.06f, 0.05f}));
    ir::Value* z = b.gb.constant("qz", intTensor(DataType::kUint8, {4}, {128, 128, 128, 128}));
    b.gb.output(b.gb.node("QuantizeLinear", {a, s, z}, {ir::Attribute::makeInt("axis", 1)}, "qa"));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qa"), Catch::Contains("per-axis output scales (4 values)"));
  }
  SECTION("a padded Conv's input quantized per channel with several zero points") {
    Qdq b;
    ir::Value* x = perChannelInput(b, {0.02f, 0.02f, 0.03f, 0.02f}, {128, 128, 127, 128});
    b.gb.output(b.dq(b.q(b.conv(x, 4, 4, "c"), 0.05f, 128, DataType::kUint8, "qc"), 0.05f, 128));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qc"), Catch::Contains("per-channel zero points differ (128, 127) on the input of a padded Conv"));
  }
  SECTION("an activation DQ with per-axis scales read by an Add") {
    Qdq b;
    ir::Value* x = perChannelInput(b, {0.02f, 0.02f, 0.03f, 0.02f}, {128, 128, 128, 128});
    b.gb.output(b.dq(b.q(b.gb.node("Add", {x, x}, {}, "add"), 0.05f, 128, DataType::kUint8, "qa"), 0.05f, 128));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qa"), Catch::Contains("per-axis scales (4 values) where the group needs one per tensor"));
  }
  SECTION("a Conv whose input and output are quantized per channel, one zero point each") {
    Qdq b;
    ir::Value* x = perChannelInput(b, {0.02f, 0.01f, 0.03f, 0.02f}, {128, 128, 128, 128});
    ir::Value* c = b.conv(x, 4, 4, "c");
    ir::Value* s = b.gb.constant("qs", floatTensor({4}, {0.05f, 0.05f, 0.06f, 0.05f}));
    ir::Value* z = b.gb.constant("qz", intTensor(DataType::kUint8, {4}, {128, 128, 128, 128}));
    b.gb.output(b.gb.node("QuantizeLinear", {c, s, z}, {ir::Attribute::makeInt("axis", 1)}, "qc"));
    ir::Model m = b.gb.build(13);
    quant::QdqGroupMatch match = quant::matchQdqGroup(*nodeNamed(*m.graph, "qc"), {});
    INFO(match.reason);
    CHECK(match.group.has_value());
    CHECK(quant::rewriteQdqGroupsAsQOperator(*m.graph) == 1);
    REQUIRE(countOps(*m.graph, "QLinearConv") == 1);
    // The scales went into the weights: x and y take scale 1 and their one zero point.
    const ir::Node* qc = nullptr;
    for (const ir::Node* n : m.graph->nodes()) {
      if (n->opType() == "QLinearConv") qc = n;
    }
    REQUIRE(qc != nullptr);
    CHECK(ir::constantOf(qc->input(1))->valueAsDouble(0) == 1.0);
    CHECK(ir::constantOf(qc->input(2))->valueAsDouble(0) == 128.0);
    CHECK(ir::constantOf(qc->input(4))->numel() == 4);
    CHECK(ir::constantOf(qc->input(6))->valueAsDouble(0) == 1.0);
  }
  SECTION("a Relu that the Q's saturation does not do") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* r = b.gb.node("Relu", {b.conv(x, 4, 4, "c")}, {}, "r");
    b.gb.output(b.dq(b.q(r, 0.05f, 10, DataType::kUint8, "qr"), 0.05f, 10));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qr"), Catch::Contains("saturation is not the Relu (zero point 10)"));
  }
  SECTION("a Clip whose upper bound lies inside the Q's range") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* r = b.gb.node("Clip", {b.conv(x, 4, 4, "c"), b.gb.constant("lo", scalar(0.0f)), b.gb.constant("hi", scalar(6.0f))},
                             {}, "clip");
    b.gb.output(b.dq(b.q(r, 0.05f, 0, DataType::kUint8, "qr"), 0.05f, 0));  // the Q reaches 12.75
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qr"), Catch::Contains("saturation is not the Clip"));
  }
  SECTION("data movement between different parameters") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* p = b.gb.node("MaxPool", {x}, {ir::Attribute::makeInts("kernel_shape", {2, 2})}, "p");
    b.gb.output(b.dq(b.q(p, 0.03f, 128, DataType::kUint8, "qp"), 0.03f, 128));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qp"), Catch::Contains("differ in scale, zero point or type"));
  }
  SECTION("Add of uint8 and int8") {
    Qdq b;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 4, 6, 6});
    ir::Value* a = b.qdq(x, 0.02f, 128);
    ir::Value* c = b.qdq(x, 0.02f, 0, DataType::kInt8);
    b.gb.output(b.dq(b.q(b.gb.node("Add", {a, c}, {}, "add"), 0.05f, 128, DataType::kUint8, "qa"), 0.05f, 128));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qa"), Catch::Contains("reads int8 and writes uint8"));
  }
  SECTION("an op that is no group") {
    Qdq b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    b.gb.output(b.dq(b.q(b.gb.node("Softmax", {x}, {}, "s"), 0.004f, 0, DataType::kUint8, "qs"), 0.004f, 0));
    ir::Model m = b.gb.build(13);
    CHECK_THAT(reasonAt(*m.graph, "qs"), Catch::Contains("op Softmax cannot be a QDQ group"));
  }
}

TEST_CASE("The op rule is what quantize-int8 asks before it inserts QDQ", "[quant][qdq-groups]") {
  GraphBuilder gb(3);
  ir::Value* x = gb.input("x", DataType::kFloat, {1, 4, 6, 6});
  ir::Value* conv = gb.node("Conv", {x, gb.weight("w", {4, 4, 3, 3}), gb.weight("b", {4})}, {}, "conv");
  ir::Value* flat = gb.node("Flatten", {conv}, {}, "flat");
  gb.node("MatMul", {flat, gb.weight("wm", {144, 3})}, {}, "mm");
  gb.node("Gemm", {flat, gb.weight("wg", {144, 3})}, {ir::Attribute::makeInt("transA", 1)}, "gemm_ta");
  gb.node("AveragePool", {conv}, {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("dilations", {2, 2})},
          "ap_dilated");
  gb.node("Reshape", {conv, gb.constantInt64("shape", {2}, {1, -1})}, {}, "reshape");
  gb.node("Resize", {conv}, {}, "resize");
  gb.node("Resize", {conv}, {ir::Attribute::makeString("mode", "linear")}, "resize_linear");
  gb.node("Sigmoid", {conv}, {}, "sigmoid");
  ir::Model m = gb.build(13);
  const ir::Graph& g = *m.graph;

  auto rule = quant::qdqOpRule(*nodeNamed(g, "conv"));
  REQUIRE(rule);
  CHECK(rule->kind == QdqGroupKind::kConv);
  CHECK(rule->inputs == std::vector<QdqInputRole>{QdqInputRole::kActivation, QdqInputRole::kWeight, QdqInputRole::kBias});
  CHECK(rule->absorbsActivation);
  CHECK_FALSE(rule->needsQuantizedInputs);
  CHECK(rule->qoperatorOp == "QLinearConv");

  rule = quant::qdqOpRule(*nodeNamed(g, "mm"));
  REQUIRE(rule);
  CHECK(rule->inputWith(QdqInputRole::kWeightOrActivation) == 1);

  rule = quant::qdqOpRule(*nodeNamed(g, "reshape"));
  REQUIRE(rule);
  CHECK(rule->sameParams);
  CHECK(rule->needsQuantizedInputs);
  CHECK(rule->inputs == std::vector<QdqInputRole>{QdqInputRole::kActivation, QdqInputRole::kParameter});

  rule = quant::qdqOpRule(*nodeNamed(g, "resize"));
  REQUIRE(rule);
  CHECK(rule->kind == QdqGroupKind::kDataMovement);
  CHECK(rule->qoperatorOp == "Resize");  // nearest picks elements: runs on the quantized tensor
  rule = quant::qdqOpRule(*nodeNamed(g, "resize_linear"));
  REQUIRE(rule);
  CHECK(rule->kind == QdqGroupKind::kDataMovement);
  CHECK(rule->qoperatorOp.empty());  // interpolates: stays in QDQ form

  rule = quant::qdqOpRule(*nodeNamed(g, "sigmoid"));
  REQUIRE(rule);
  CHECK(rule->kind == QdqGroupKind::kUnary);
  CHECK(rule->needsQuantizedInputs);
  CHECK_FALSE(rule->sameParams);
  CHECK(rule->qoperatorOp.empty());  // QDQ form; the runtime runs it as a table lookup

  std::string reason;
  CHECK_FALSE(quant::qdqOpRule(*nodeNamed(g, "gemm_ta"), &reason));
  CHECK_THAT(reason, Catch::Contains("transA"));
  CHECK_FALSE(quant::qdqOpRule(*nodeNamed(g, "ap_dilated"), &reason));
  CHECK_THAT(reason, Catch::Contains("dilations"));
}
