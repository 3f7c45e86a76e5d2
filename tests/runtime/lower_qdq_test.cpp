// The QDQ lowering: quantized groups become QOperator ops run by the int8 kernels. Checked on a
// small QDQ network (structure after the lowering; outputs against the same model run one node
// at a time, which is the float simulation of the QDQ semantics) and on edge cases that must
// stay as they are.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "kernels/cpu/quant_test_util.h"
#include "support/graph_queries.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/ir/match.h"
#include "whittle/ir/verifier.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;

namespace {

/// Builds QDQ models: every helper quantizes or dequantizes with constant parameters.
struct QdqBuilder : QdqGraphBuilder {
  std::mt19937_64 rng{23};

  /// A DequantizeLinear of int8 weights, per output channel along `axis`.
  ir::Value* weights(std::vector<int64_t> dims, int64_t axis, std::vector<float>* scalesOut = nullptr, int32_t zeroPoint = 0) {
    std::string n = fresh("w");
    const int64_t channels = dims[static_cast<size_t>(axis)];
    std::vector<float> scales = randomFloats(rng, channels, 0.004f, 0.012f);
    if (scalesOut) *scalesOut = scales;
    ir::Value* wq = gb.constant(n + "_q", intTensor(DataType::kInt8, dims, randomInts(rng, numel(dims), -100, 100)));
    ir::Value* ws = gb.constant(n + "_s", floatTensor({channels}, scales));
    ir::Value* wz = gb.constant(n + "_z", intTensor(DataType::kInt8, {channels}, std::vector<int32_t>(channels, zeroPoint)));
    return gb.node("DequantizeLinear", {wq, ws, wz}, {ir::Attribute::makeInt("axis", axis)}, n);
  }
  /// A DequantizeLinear of an int32 bias at scale xs * ws[m], as quantizers write it.
  ir::Value* bias(float xs, const std::vector<float>& ws) {
    std::string n = fresh("b");
    const auto m = static_cast<int64_t>(ws.size());
    std::vector<float> s(ws.size());
    for (size_t i = 0; i < ws.size(); ++i) s[i] = xs * ws[i];
    ir::Value* bq = gb.constant(n + "_q", intTensor(DataType::kInt32, {m}, randomInts(rng, m, -3000, 3000)));
    return gb.node("DequantizeLinear",
                   {bq, gb.constant(n + "_s", floatTensor({m}, s)),
                    gb.constant(n + "_z", intTensor(DataType::kInt32, {m}, std::vector<int32_t>(ws.size(), 0)))},
                   {ir::Attribute::makeInt("axis", 0)}, n);
  }
  ir::Value* conv(ir::Value* x, float xs, int64_t c, int64_t m, int64_t k, const std::string& name) {
    std::vector<float> ws;
    ir::Value* w = weights({m, c, k, k}, 0, &ws);
    const int64_t p = k / 2;
    return gb.node("Conv", {x, w, bias(xs, ws)},
                   {ir::Attribute::makeInts("kernel_shape", {k, k}), ir::Attribute::makeInts("pads", {p, p, p, p})}, name);
  }
};

/// x -> Q -> conv 3x3 + Relu -> MaxPool -> {conv 1x1, conv 3x3} -> Concat -> Add (itself
/// requantized) -> GlobalAveragePool -> Reshape -> MatMul (per-column weights) -> DQ, every
/// activation quantized to uint8 in between.
ir::Model qdqNetwork() {
  QdqBuilder b;
  auto& gb = b.gb;
  ir::Value* x = gb.input("x", DataType::kFloat, {2, 8, 12, 12});
  ir::Value* x0 = b.qdq(x, 0.02f, 128);
  ir::Value* c1 = gb.node("Relu", {b.conv(x0, 0.02f, 8, 16, 3, "c1")}, {}, "relu1");
  ir::Value* a1 = b.qdq(c1, 0.05f, 0);  // zero point 0: the Q does the Relu
  ir::Value* pool = b.qdq(gb.node("MaxPool", {a1},
                                  {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("strides", {2, 2})},
                                  "pool"),
                          0.05f, 0);
  ir::Value* e1 = b.qdq(b.conv(pool, 0.05f, 16, 8, 1, "e1"), 0.04f, 120);
  ir::Value* e3 = b.qdq(b.conv(pool, 0.05f, 16, 8, 3, "e3"), 0.06f, 125);
  ir::Value* cat = b.qdq(gb.node("Concat", {e1, e3}, {ir::Attribute::makeInt("axis", 1)}, "cat"), 0.06f, 124);
  ir::Value* add = b.qdq(gb.node("Add", {cat, cat}, {}, "add"), 0.1f, 127);
  ir::Value* gap = b.qdq(gb.node("GlobalAveragePool", {add}, {}, "gap"), 0.02f, 128);
  ir::Value* flat = b.qdq(gb.node("Reshape", {gap, gb.constantInt64("shape", {2}, {2, 16})}, {}, "flat"), 0.02f, 128);
  ir::Value* mm = gb.node("MatMul", {flat, b.weights({16, 10}, 1)}, {}, "fc");
  gb.output(b.dq(b.q(mm, 0.03f, 128), 0.03f, 128), DataType::kFloat, {2, 10});
  return gb.build(13);
}

using testing::countOps;

}  // namespace

TEST_CASE("QDQ groups lower to QOperator ops", "[runtime][lowering][quant]") {
  ir::Model model = qdqNetwork();
  REQUIRE(ir::verify(*model.graph).isOk());
  ir::Model lowered = model.clone();
  runtime::lowerQdqGroups(*lowered.graph);
  INFO(ir::verify(*lowered.graph).message());
  REQUIRE(ir::verify(*lowered.graph).isOk());
  const ir::Graph& g = *lowered.graph;
  CHECK(countOps(g, "QLinearConv") == 3);
  CHECK(countOps(g, "QLinearMatMul") == 1);
  CHECK(countOps(g, "QLinearConcat") == 1);
  // Add(cat, cat) is a function of one quantized tensor: a table lookup, not a QLinearAdd.
  CHECK(countOps(g, "QLinearLookup") == 1);
  CHECK(countOps(g, "QLinearAdd") == 0);
  CHECK(countOps(g, "QLinearGlobalAveragePool") == 1);
  CHECK(countOps(g, "MaxPool") == 1);
  CHECK(countOps(g, "Reshape") == 1);
  for (const char* gone : {"Conv", "Relu", "MatMul", "Add", "Concat", "GlobalAveragePool"}) {
    CAPTURE(gone);
    CHECK(countOps(g, gone) == 0);
  }
  // What remains of QDQ: the input's Q and the output's DQ.
  CHECK(countOps(g, "QuantizeLinear") == 1);
  CHECK(countOps(g, "DequantizeLinear") == 1);
  CHECK(g.outputs()[0]->name() == model.graph->outputs()[0]->name());
  // The int8 groups read quantized tensors straight: MaxPool and Reshape run on uint8.
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "MaxPool" || n->opType() == "Reshape") {
      CHECK(n->input(0)->producer() != nullptr);
      CHECK(n->input(0)->producer()->opType() != "DequantizeLinear");
    }
  }
}

TEST_CASE("Lowered QDQ groups compute what the QDQ model simulates", "[runtime][lowering][quant]") {
  ir::Model model = qdqNetwork();
  std::mt19937_64 rng(31);
  const ir::Tensor x = floatTensor({2, 8, 12, 12}, randomFloats(rng, 2 * 8 * 144, -2.5f, 2.5f));
  // The quantized activations inside, by name, in both runs.
  const std::vector<std::string> inner = {"q4", "q16", "q20"};
  for (const std::string& name : inner) REQUIRE(model.graph->findValue(name) != nullptr);
  const std::vector<ir::Tensor> expected = testing::quant::runNodeByNode(model, {{"x", x}}, inner);
  for (int threads : {1, 2}) {
    runtime::SessionOptions options;
    options.threads = threads;
    options.extraOutputs = inner;
    auto session = runtime::Session::create(model, options);
    REQUIRE(session.isOk());
    auto out = (*session)->run({{"x", x}});
    REQUIRE(out.isOk());
    REQUIRE(out->size() == expected.size());
    // Integer accumulation against float accumulation: a quantized value may round to the
    // neighbouring step where the float sum falls within rounding of a half step.
    for (size_t i = 1; i < out->size(); ++i) {
      CAPTURE((*out)[i].first);
      const ir::Tensor& got = (*out)[i].second;
      REQUIRE(got.dtype() == DataType::kUint8);
      REQUIRE(got.dims() == expected[i].dims());
      int64_t maxDiff = 0, differing = 0;
      for (int64_t k = 0; k < got.numel(); ++k) {
        const int64_t d = std::abs(static_cast<int64_t>(got.data<uint8_t>()[k]) - expected[i].data<uint8_t>()[k]);
        maxDiff = std::max(maxDiff, d);
        differing += d != 0;
      }
      CHECK(maxDiff <= 2);
      CHECK(differing * 20 <= got.numel());  // at most 5 % of the values move
    }
    const ir::Tensor& y = (*out)[0].second;
    double maxErr = 0;
    for (int64_t k = 0; k < y.numel(); ++k) {
      maxErr = std::max(maxErr, std::fabs(static_cast<double>(y.data<float>()[k] - expected[0].data<float>()[k])));
    }
    CHECK(maxErr <= 3 * 0.03 + 1e-6);  // within three output steps
  }
}

TEST_CASE("QDQ groups that do not fit stay as they are", "[runtime][lowering][quant]") {
  SECTION("a Conv output read twice") {
    QdqBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* c = b.conv(x, 0.02f, 4, 4, 3, "c");
    b.gb.output(b.dq(b.q(c, 0.05f, 128), 0.05f, 128));
    b.gb.output(b.gb.node("Relu", {c}, {}, "other_reader"));
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "Conv") == 1);
    CHECK(countOps(*m.graph, "QLinearConv") == 0);
  }
  SECTION("a Conv output that must be kept") {
    QdqBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* c = b.conv(x, 0.02f, 4, 4, 3, "c");
    b.gb.output(b.dq(b.q(c, 0.05f, 128), 0.05f, 128));
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph, {"c"});
    CHECK(countOps(*m.graph, "Conv") == 1);
  }
  SECTION("a Relu before a Q whose zero point is not the lowest value") {
    QdqBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* r = b.gb.node("Relu", {b.conv(x, 0.02f, 4, 4, 3, "c")}, {}, "r");
    b.gb.output(b.dq(b.q(r, 0.05f, 10), 0.05f, 10));
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "Relu") == 1);
    CHECK(countOps(*m.graph, "QLinearConv") == 0);
  }
  SECTION("MaxPool between a DQ and a Q with different scales") {
    // Not the Q(MaxPool(DQ)) group: the MaxPool pools the bytes (the DQ pushed after it) and the
    // DQ -> Q of other parameters requantizes by table.
    QdqBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 6, 6}), 0.02f, 128);
    ir::Value* p = b.gb.node("MaxPool", {x}, {ir::Attribute::makeInts("kernel_shape", {2, 2})}, "p");
    b.gb.output(b.dq(b.q(p, 0.03f, 128), 0.03f, 128));
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "MaxPool") == 1);
    CHECK(m.graph->nodes()[0]->opType() == "QuantizeLinear");
    CHECK(countOps(*m.graph, "QLinearLookup") == 1);
    CHECK(countOps(*m.graph, "DequantizeLinear") == 1);
  }
}

TEST_CASE("A float MaxPool of a DQ pools the bytes and dequantizes after", "[runtime][lowering][quant]") {
  // densenet121's stem: Q -> DQ -> MaxPool 3x3/2 (padded) -> float ops. With a positive scale
  // the max commutes with the DQ, so MaxPool reads the uint8/int8 tensor; outputs bit for bit.
  for (DataType type : {DataType::kUint8, DataType::kInt8}) {
    CAPTURE(ir::dataTypeName(type));
    QdqBuilder b;
    const int32_t zp = type == DataType::kUint8 ? 100 : -20;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {2, 5, 11, 11});
    ir::Value* a = b.dq(b.q(x, 0.02f, zp, type), 0.02f, zp, type);
    ir::Value* p = b.gb.node("MaxPool", {a},
                             {ir::Attribute::makeInts("kernel_shape", {3, 3}), ir::Attribute::makeInts("strides", {2, 2}),
                              ir::Attribute::makeInts("pads", {1, 1, 1, 1})},
                             "pool");
    b.gb.output(b.gb.node("Relu", {p}, {}, "relu"), DataType::kFloat, {2, 5, 6, 6});
    ir::Model model = b.gb.build(13);
    ir::Model lowered = model.clone();
    runtime::lowerQdqGroups(*lowered.graph);
    REQUIRE(ir::verify(*lowered.graph).isOk());
    const ir::Node* pool = nullptr;
    for (const ir::Node* n : lowered.graph->nodes()) pool = n->opType() == "MaxPool" ? n : pool;
    REQUIRE(pool != nullptr);
    CHECK(pool->input(0)->producer()->opType() == "QuantizeLinear");
    CHECK(pool->output(0)->dtype() == type);
    CHECK(pool->output(0)->uses()[0].user->opType() == "DequantizeLinear");
    std::mt19937_64 rng(5);
    const ir::Tensor in = floatTensor({2, 5, 11, 11}, randomFloats(rng, 2 * 5 * 121, -3.0f, 3.0f));
    const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", in}});
    for (int threads : {1, 2}) {
      auto out = runOutputs(model, {{"x", in}}, threads);
      REQUIRE(out.size() == 1);
      CHECK(out[0].bitwiseEqual(expected[0]));
    }
  }
  SECTION("a dilated MaxPool stays float") {
    QdqBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 4, 9, 9}), 0.02f, 128);
    b.gb.output(b.gb.node("MaxPool", {x},
                          {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("dilations", {2, 2})},
                          "p"));
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    const ir::Node* pool = nullptr;
    for (const ir::Node* n : m.graph->nodes()) pool = n->opType() == "MaxPool" ? n : pool;
    REQUIRE(pool != nullptr);
    CHECK(pool->input(0)->producer()->opType() == "DequantizeLinear");
  }
}

TEST_CASE("A QDQ Conv whose int8 weights have a non-zero zero point runs as its float definition",
          "[runtime][lowering][quant]") {
  // ONNX Runtime's quantize_static wrote such weights for a PicoDet detector (zero point -7): as a
  // QLinearConv they ran the int32 reference, 100x the float model's time.
  for (int32_t zeroPoint : {0, -7}) {
    INFO("weight zero point " << zeroPoint);
    QdqBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {1, 6, 7, 7}), 0.02f, 128);
    std::vector<float> ws;
    ir::Value* w = b.weights({5, 6, 1, 1}, 0, &ws, zeroPoint);
    ir::Value* c = b.gb.node("Conv", {x, w, b.bias(0.02f, ws)}, {ir::Attribute::makeInts("kernel_shape", {1, 1})}, "c");
    b.gb.output(b.dq(b.q(c, 0.05f, 128), 0.05f, 128));
    ir::Model model = b.gb.build(13);
    ir::Model m = model.clone();
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "QLinearConv") == (zeroPoint == 0 ? 1 : 0));
    CHECK(countOps(*m.graph, "Conv") == (zeroPoint == 0 ? 0 : 1));
    // Either way the session computes the QDQ definition (within one output step).
    std::mt19937_64 rng(5);
    const ir::Tensor in = floatTensor({1, 6, 7, 7}, randomFloats(rng, 6 * 49, -2.0f, 2.0f));
    const std::vector<ir::Tensor> expected = testing::quant::runNodeByNode(model, {{"x", in}}, {});
    auto session = runtime::Session::create(model, {});
    REQUIRE(session.isOk());
    auto out = (*session)->run({{"x", in}});
    REQUIRE(out.isOk());
    const ir::Tensor& y = (*out)[0].second;
    double maxErr = 0;
    for (int64_t k = 0; k < y.numel(); ++k) {
      maxErr = std::max(maxErr, std::fabs(static_cast<double>(y.data<float>()[k] - expected[0].data<float>()[k])));
    }
    CHECK(maxErr <= 0.05 + 1e-6);
  }
}

TEST_CASE("ONNX Runtime's QDQ models run in int8 and agree with ONNX Runtime", "[runtime][lowering][quant][models]") {
  const char* name = GENERATE("squeezenet1.1.onnx", "mobilenetv2-12-rebuilt-fp32.onnx");
  auto path = testing::sharedPath(std::string("models/") + name);
  if (!path) return;
  if (!testing::requirePython("numpy, onnx, onnxruntime",
                              "for ONNX Runtime's QDQ quantizer (tests/runtime/qdq_reference.py)")) {
    return;
  }
  INFO("model " << name);
  testing::TempDir tmp;
  const std::filesystem::path dir = tmp.path();
  const std::string cmd = testing::python() + " '" + std::string(WHITTLE_SOURCE_DIR) +
                          "/tests/runtime/qdq_reference.py' '" + *path + "' '" + dir.string() + "' >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto model = onnx_io::load((dir / "qdq.onnx").string());
  REQUIRE(model.isOk());

  // Every convolution of ORT's QDQ model becomes a QLinearConv.
  ir::Model lowered = model->clone();
  runtime::lowerQdqGroups(*lowered.graph);
  REQUIRE(ir::verify(*lowered.graph).isOk());
  CHECK(countOps(*lowered.graph, "Conv") == 0);
  CHECK(countOps(*lowered.graph, "QLinearConv") == countOps(*model->graph, "Conv"));

  auto session = runtime::Session::create(*model);
  REQUIRE(session.isOk());
  const std::string input = (*session)->inputs()[0]->name();
  for (int k = 0; std::filesystem::exists(dir / ("x_" + std::to_string(k) + ".npy")); ++k) {
    auto x = data::readNpy((dir / ("x_" + std::to_string(k) + ".npy")).string());
    auto ref = data::readNpy((dir / ("y_" + std::to_string(k) + ".npy")).string());
    REQUIRE(x.isOk());
    REQUIRE(ref.isOk());
    auto out = (*session)->run({{input, *x}});
    REQUIRE(out.isOk());
    const ir::Tensor& y = (*out)[0].second;
    REQUIRE(y.dims() == ref->dims());
    // Both run int8 kernels; their requantization may round a value to the neighbouring
    // step, which moves the output by a step or two of its range.
    double maxRef = 0, maxDiff = 0;
    int64_t argOurs = 0, argRef = 0;
    for (int64_t i = 0; i < y.numel(); ++i) {
      const double o = y.valueAsDouble(i), r = ref->valueAsDouble(i);
      maxRef = std::max(maxRef, std::fabs(r));
      maxDiff = std::max(maxDiff, std::fabs(o - r));
      if (o > y.valueAsDouble(argOurs)) argOurs = i;
      if (r > ref->valueAsDouble(argRef)) argRef = i;
    }
    CAPTURE(k, maxDiff, maxRef);
    CHECK(maxDiff <= 0.05 * maxRef);
    CHECK(argOurs == argRef);
  }
}

namespace {

/// Q then DQ per channel (axis 1), "N_q" and "N_dq": a scale and a uint8 zero point per channel.
ir::Value* qdqPerChannel(QdqBuilder& b, ir::Value* x, const std::vector<float>& scales,
                         const std::vector<int32_t>& zeroPoints, const std::string& n) {
  const auto c = static_cast<int64_t>(scales.size());
  ir::Value* s = b.gb.constant(n + "_s", floatTensor({c}, scales));
  ir::Value* z = b.gb.constant(n + "_z", intTensor(DataType::kUint8, {c}, zeroPoints));
  ir::Value* xq = b.gb.node("QuantizeLinear", {x, s, z}, {ir::Attribute::makeInt("axis", 1)}, n + "_q");
  return b.gb.node("DequantizeLinear", {xq, s, z}, {ir::Attribute::makeInt("axis", 1)}, n + "_dq");
}

/// The same with one zero point for every channel.
ir::Value* qdqPerChannel(QdqBuilder& b, ir::Value* x, const std::vector<float>& scales, int32_t zp, const std::string& n) {
  return qdqPerChannel(b, x, scales, std::vector<int32_t>(scales.size(), zp), n);
}

/// Scales spread over 20x across `c` channels, as a MobileNetV2 block's channel ranges are.
std::vector<float> spreadScales(std::mt19937_64& rng, int64_t c, float lo) { return randomFloats(rng, c, lo, 20 * lo); }

/// x -> Q (per tensor) -> conv 3x3 + Relu -> Q per channel -> depthwise 3x3 + Clip(0, 6) -> Q per
/// channel -> conv 1x1 -> Q per channel, signed (zero point 128) -> {Add with itself, DQ output}:
/// the pattern of a MobileNetV2 block with every activation scaled per channel.
ir::Model channelScaledBlock() {
  QdqBuilder b;
  auto& gb = b.gb;
  std::mt19937_64 rng(41);
  ir::Value* x = b.qdq(gb.input("x", DataType::kFloat, {1, 8, 10, 10}), 0.02f, 128);
  // Scales: each channel's own range of the layer below (roughly: weights ~0.5, sums of 72 terms).
  ir::Value* c1 = gb.node("Relu", {b.conv(x, 0.02f, 8, 16, 3, "c1")}, {}, "relu1");
  ir::Value* a1 = qdqPerChannel(b, c1, spreadScales(rng, 16, 0.01f), 0, "a1");
  std::vector<float> dws;
  ir::Value* dw = b.weights({16, 1, 3, 3}, 0, &dws);
  std::vector<float> dwb(16);
  for (float& v : dwb) v = std::uniform_real_distribution<float>(-0.5f, 0.5f)(rng);
  ir::Value* c2 = gb.node("Conv", {a1, dw, gb.constant("dw_b", floatTensor({16}, dwb))},
                          {ir::Attribute::makeInts("kernel_shape", {3, 3}), ir::Attribute::makeInts("pads", {1, 1, 1, 1}),
                           ir::Attribute::makeInt("group", 16)},
                          "dw");
  ir::Value* clip = gb.node("Clip", {c2, gb.constant("lo", scalar(0.0f)), gb.constant("hi", scalar(6.0f))}, {}, "clip");
  ir::Value* a2 = qdqPerChannel(b, clip, spreadScales(rng, 16, 0.0012f), 0, "a2");
  std::vector<float> pws;
  ir::Value* pw = b.weights({8, 16, 1, 1}, 0, &pws);
  std::vector<float> pwb(8);
  for (float& v : pwb) v = std::uniform_real_distribution<float>(-0.3f, 0.3f)(rng);
  ir::Value* c3 = gb.node("Conv", {a2, pw, gb.constant("pw_b", floatTensor({8}, pwb))},
                          {ir::Attribute::makeInts("kernel_shape", {1, 1})}, "proj");
  ir::Value* a3 = qdqPerChannel(b, c3, spreadScales(rng, 8, 0.004f), 128, "a3");
  gb.output(a3, DataType::kFloat, {1, 8, 10, 10});
  // A reader with no per-channel int8 form: an Add of two per-channel tensors runs in float.
  gb.output(b.dq(b.q(gb.node("Add", {a3, a3}, {}, "add"), 0.002f, 128), 0.002f, 128), DataType::kFloat, {1, 8, 10, 10});
  return gb.build(13);
}

}  // namespace

TEST_CASE("Conv groups quantized per channel fold the scales into the weights", "[runtime][lowering][quant]") {
  // Per-channel activation scales (axis 1, one zero point) on a Conv's input and output: the
  // QLinearConv takes scale 1 and weights w[o,c] xs[c] / ys[o], requantized per output channel
  // (exact for the depthwise Conv and for a per-tensor input). Checked against the QDQ model run
  // one node at a time (the float definition) and against ONNX Runtime on the saved model.
  ir::Model model = channelScaledBlock();
  REQUIRE(ir::verify(*model.graph).isOk());
  ir::Model lowered = model.clone();
  runtime::lowerQdqGroups(*lowered.graph);
  INFO(ir::verify(*lowered.graph).message());
  REQUIRE(ir::verify(*lowered.graph).isOk());
  CHECK(countOps(*lowered.graph, "QLinearConv") == 3);
  CHECK(countOps(*lowered.graph, "Conv") == 0);
  CHECK(countOps(*lowered.graph, "Add") == 1);  // the per-channel Add stays float, between DQs and a Q

  std::mt19937_64 rng(7);
  const ir::Tensor x = floatTensor({1, 8, 10, 10}, randomFloats(rng, 800, -2.5f, 2.5f));
  const std::vector<std::string> inner = {"a1_q", "a2_q", "a3_q"};
  const std::vector<ir::Tensor> expected = testing::quant::runNodeByNode(model, {{"x", x}}, inner);
  const auto out = testing::quant::runLowered(model, {{"x", x}}, inner);
  REQUIRE(out.size() == 5);
  // The 1x1 Conv's weights w[o,c] xs[c] / ys[o] are rounded again to its new per-output-channel
  // step s[o]: each of its codes may move by half a step times the codes it multiplies,
  // 0.5 s[o] sum_c |a2[c] - 0|, besides the one-code rounding of the exact folds.
  const ir::Node* proj = nullptr;
  for (const ir::Node* n : lowered.graph->nodes()) {
    if (n->opType() == "QLinearConv" && n->output(0)->name() == "a3_q") proj = n;
  }
  REQUIRE(proj != nullptr);
  const ir::Tensor* projScale = ir::constantOf(proj->input(4));
  REQUIRE(projScale != nullptr);
  REQUIRE(projScale->numel() == 8);
  // The bound in codes of a3 at element k, for a2's codes.
  auto codeBound = [&](const ir::Tensor& a2, int64_t k) {
    const int64_t o = k / 100, pixel = k % 100;
    double codes = 0;
    for (int64_t c = 0; c < 16; ++c) codes += a2.data<uint8_t>()[c * 100 + pixel];
    return 1 + 0.5 * projScale->valueAsDouble(o) * codes;
  };
  for (size_t i = 2; i < out.size(); ++i) {
    const ir::Tensor& got = out[i].second;
    const ir::Tensor& want = expected[i];
    CAPTURE(out[i].first);
    REQUIRE(got.dtype() == DataType::kUint8);
    REQUIRE(got.dims() == want.dims());
    int64_t maxDiff = 0, differing = 0, beyond = 0;
    for (int64_t k = 0; k < got.numel(); ++k) {
      const int64_t d = std::abs(static_cast<int64_t>(got.data<uint8_t>()[k]) - want.data<uint8_t>()[k]);
      maxDiff = std::max(maxDiff, d);
      differing += d != 0;
      beyond += static_cast<double>(d) > (i == 4 ? codeBound(out[3].second, k) : 1.0);
    }
    CAPTURE(maxDiff, differing);
    CHECK(beyond == 0);
    if (i < 4) CHECK(differing * 20 <= got.numel());  // the exact folds: as a per-tensor QLinearConv
  }
  // ONNX Runtime runs the saved model (QDQ with axis=1 on activations, opset 13) and agrees.
  if (!testing::requirePython("numpy, onnxruntime", "for the ONNX Runtime reference (ort_reference.py)")) return;
  testing::TempDir tmp;
  const std::filesystem::path dir = tmp.path();
  REQUIRE(onnx_io::save(model, (dir / "pc.onnx").string()).isOk());
  const std::string cmd = testing::python() + " '" + std::string(WHITTLE_SOURCE_DIR) + "/tests/runtime/ort_reference.py' '" +
                          (dir / "pc.onnx").string() + "' '" + dir.string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto feed = data::readNpy((dir / "input_0.npy").string());
  REQUIRE(feed.isOk());
  const auto ours = testing::quant::runLowered(model, {{"x", *feed}}, inner);
  const std::vector<float> a3Scales = [&] {
    const ir::Tensor* t = ir::constantOf(model.graph->findValue("a3_s"));
    std::vector<float> v;
    for (int64_t o = 0; o < t->numel(); ++o) v.push_back(static_cast<float>(t->valueAsDouble(o)));
    return v;
  }();
  for (size_t k = 0; k < 2; ++k) {
    auto ref = data::readNpy((dir / ("output_" + std::to_string(k) + ".npy")).string());
    REQUIRE(ref.isOk());
    const ir::Tensor& y = ours[k].second;
    REQUIRE(y.dims() == ref->dims());
    // ONNX Runtime computes the QDQ definition (in float where it fuses nothing): within the
    // codes bound above times the channel's scale (twice for the Add, plus its own step).
    int64_t beyond = 0;
    double maxDiff = 0;
    for (int64_t i = 0; i < y.numel(); ++i) {
      const double d = std::fabs(y.valueAsDouble(i) - ref->valueAsDouble(i));
      const double a3 = codeBound(ours[3].second, i) * a3Scales[static_cast<size_t>(i / 100)];
      beyond += d > (k == 0 ? a3 : 2 * a3 + 0.002) + 1e-6;
      maxDiff = std::max(maxDiff, d);
    }
    CAPTURE(k, maxDiff);
    CHECK(beyond == 0);
  }
}

TEST_CASE("A 1x1 Conv quantized per channel with a zero point per channel folds them into the bias",
          "[runtime][lowering][quant]") {
  // Signed tensors (a projection's output, a residual sum) quantized per channel each have their
  // own zero point: on a Conv without padding the input's fold into the bias exactly, and so do
  // the output's; what remains is the 1x1 weights rounded again (checked against the bound).
  QdqBuilder b;
  std::mt19937_64 rng(43);
  std::vector<float> xs = spreadScales(rng, 12, 0.004f), ys = spreadScales(rng, 10, 0.01f);
  std::vector<int32_t> xz = randomInts(rng, 12, 100, 160), yz = randomInts(rng, 10, 90, 170);
  ir::Value* x = qdqPerChannel(b, b.gb.input("x", DataType::kFloat, {1, 12, 5, 5}), xs, xz, "x");
  ir::Value* c = b.conv(x, 0.01f, 12, 10, 1, "c");
  b.gb.output(qdqPerChannel(b, c, ys, yz, "y"), DataType::kFloat, {1, 10, 5, 5});
  ir::Model model = b.gb.build(13);
  ir::Model lowered = model.clone();
  runtime::lowerQdqGroups(*lowered.graph);
  REQUIRE(ir::verify(*lowered.graph).isOk());
  REQUIRE(countOps(*lowered.graph, "QLinearConv") == 1);
  CHECK(countOps(*lowered.graph, "Conv") == 0);
  const ir::Node* qc = nullptr;
  for (const ir::Node* n : lowered.graph->nodes()) {
    if (n->opType() == "QLinearConv") qc = n;
  }
  const ir::Tensor* step = ir::constantOf(qc->input(4));
  REQUIRE(step != nullptr);

  const ir::Tensor in = floatTensor({1, 12, 5, 5}, randomFloats(rng, 300, -1.5f, 1.5f));
  const std::vector<ir::Tensor> expected = testing::quant::runNodeByNode(model, {{"x", in}}, {"x_q", "y_q"});
  const auto out = testing::quant::runLowered(model, {{"x", in}}, {"x_q", "y_q"});
  const ir::Tensor& xq = out[1].second;
  const ir::Tensor& got = out[2].second;
  const ir::Tensor& want = expected[2];
  REQUIRE(got.dims() == want.dims());
  int64_t beyond = 0, maxDiff = 0;
  for (int64_t k = 0; k < got.numel(); ++k) {
    const int64_t o = k / 25, pixel = k % 25;
    double codes = 0;  // sum_c |xq[c] - xz[c]|
    for (int64_t ch = 0; ch < 12; ++ch) codes += std::abs(static_cast<int>(xq.data<uint8_t>()[ch * 25 + pixel]) - xz[static_cast<size_t>(ch)]);
    const int64_t d = std::abs(static_cast<int64_t>(got.data<uint8_t>()[k]) - want.data<uint8_t>()[k]);
    maxDiff = std::max(maxDiff, d);
    beyond += static_cast<double>(d) > 1 + 0.5 * step->valueAsDouble(o) * codes;
  }
  CAPTURE(maxDiff);
  CHECK(beyond == 0);
  // Without the zero points' fold every code would be off by their offsets: the bias carries them.
  CHECK(maxDiff < 10);
}
