// The QDQ lowering of element-wise chains into one table lookup (src/runtime/lower_qdq_lookup.cpp):
// the rewrite happens, the table reproduces the QDQ chain (DQ -> float ops -> Q, run one node at a
// time) on every code, and chains that do not fit stay as they are.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "cpu/quant_common.h"
#include "kernels/cpu/quant_test_util.h"
#include "support/graph_queries.h"
#include "whittle/ir/verifier.h"
#include "whittle/runtime/lowering.h"
#include "whittle/runtime/session.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;
using whittle::testing::countOps;

namespace {

struct Builder : QdqGraphBuilder {
  ir::Value* c(float v) { return gb.constant(fresh("c"), scalar(v)); }
};

constexpr float kXs = 0.05f;

/// x (float) -> Q -> `chain` -> Q -> DQ -> y, with the int8 value "xq" and the chain's quantized
/// output "yq" named, x covering every code of the input type.
template <typename Chain>
ir::Model chainModel(DataType type, int32_t xz, float ys, int32_t yz, Chain chain) {
  Builder b;
  ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 4, 8, 8});
  ir::Value* xq = b.q(x, kXs, xz, type);
  REQUIRE(b.gb.graph().renameValue(xq, "xq").isOk());
  ir::Value* y = chain(b, xq);
  ir::Value* yq = b.q(y, ys, yz, type);
  REQUIRE(b.gb.graph().renameValue(yq, "yq").isOk());
  b.gb.output(b.dq(yq, ys, yz, type), DataType::kFloat, {1, 4, 8, 8});
  return b.gb.build(13);
}

/// Every code of the input (256 values over 4*8*8), as floats that quantize to them.
ir::Tensor everyCode(DataType type, int32_t xz) {
  std::vector<float> v(256);
  for (int i = 0; i < 256; ++i) {
    const int32_t code = type == DataType::kInt8 ? i - 128 : i;
    v[static_cast<size_t>(i)] = static_cast<float>(code - xz) * kXs;
  }
  return floatTensor({1, 4, 8, 8}, v);
}

/// Lowers `model` (one QLinearLookup expected) and checks the session's yq against the QDQ
/// model run node by node: equal codes, or within `steps`.
void checkLookup(const ir::Model& model, DataType type, int32_t xz, int64_t steps = 0) {
  ir::Model lowered = model.clone();
  runtime::lowerQdqGroups(*lowered.graph);
  INFO(ir::verify(*lowered.graph).message());
  REQUIRE(ir::verify(*lowered.graph).isOk());
  CHECK(countOps(*lowered.graph, "QLinearLookup") == 1);
  for (const char* gone : {"Sigmoid", "Mul", "Add", "Clip", "Div", "LeakyRelu", "HardSwish"}) {
    CAPTURE(gone);
    CHECK(countOps(*lowered.graph, gone) == 0);
  }
  const ir::Tensor x = everyCode(type, xz);
  const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", x}}, {"yq"});
  const auto out = runLowered(model, {{"x", x}}, {"yq"});
  const ir::Tensor& got = out[1].second;
  REQUIRE(got.dtype() == type);
  int64_t worst = 0;
  for (int64_t k = 0; k < got.numel(); ++k) {
    const auto a = type == DataType::kInt8 ? got.data<int8_t>()[k] : got.data<uint8_t>()[k];
    const auto e = type == DataType::kInt8 ? expected[1].data<int8_t>()[k] : expected[1].data<uint8_t>()[k];
    worst = std::max<int64_t>(worst, std::abs(static_cast<int64_t>(a) - static_cast<int64_t>(e)));
  }
  CHECK(worst <= steps);
}

}  // namespace

TEST_CASE("SiLU between DQ and Q becomes one table lookup", "[runtime][lowering][quant]") {
  SECTION("float in between (x * Sigmoid(x))") {
    auto model = chainModel(DataType::kUint8, 128, 0.03f, 10, [](Builder& b, ir::Value* xq) {
      ir::Value* x = b.dq(xq, kXs, 128);
      return b.gb.node("Mul", {x, b.gb.node("Sigmoid", {x}, {}, "sig")}, {}, "mul");
    });
    checkLookup(model, DataType::kUint8, 128, /*steps=*/1);
  }
  SECTION("QDQ groups (the Sigmoid quantized on its own), int8") {
    auto model = chainModel(DataType::kInt8, 0, 0.03f, -118, [](Builder& b, ir::Value* xq) {
      ir::Value* x = b.dq(xq, kXs, 0, DataType::kInt8);
      ir::Value* s = b.gb.node("Sigmoid", {b.dq(xq, kXs, 0, DataType::kInt8)}, {}, "sig");
      ir::Value* sq = b.dq(b.q(s, 1.0f / 255, -128, DataType::kInt8), 1.0f / 255, -128, DataType::kInt8);
      return b.gb.node("Mul", {x, sq}, {}, "mul");
    });
    checkLookup(model, DataType::kInt8, 0, /*steps=*/1);
  }
}

TEST_CASE("Activations between DQ and Q become table lookups", "[runtime][lowering][quant]") {
  SECTION("LeakyRelu") {
    auto model = chainModel(DataType::kUint8, 100, 0.04f, 60, [](Builder& b, ir::Value* xq) {
      return b.gb.node("LeakyRelu", {b.dq(xq, kXs, 100)}, {ir::Attribute::makeFloat("alpha", 0.1f)}, "lrelu");
    });
    checkLookup(model, DataType::kUint8, 100, 1);
  }
  SECTION("HardSwish as Add, Clip, Div, Mul (PaddlePaddle exports)") {
    auto model = chainModel(DataType::kUint8, 128, 0.03f, 20, [](Builder& b, ir::Value* xq) {
      ir::Value* x = b.dq(xq, kXs, 128);
      ir::Value* clip = b.gb.node("Clip", {b.gb.node("Add", {x, b.c(3.0f)}, {}, "add"), b.c(0.0f), b.c(6.0f)}, {}, "clip");
      return b.gb.node("Mul", {x, b.gb.node("Div", {clip, b.c(6.0f)}, {}, "div")}, {}, "mul");
    });
    checkLookup(model, DataType::kUint8, 128, 1);
  }
}

TEST_CASE("Element-wise chains that do not fit stay as they are", "[runtime][lowering][quant]") {
  SECTION("two quantized sources: a QLinearMul, not a table") {
    Builder b;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 4, 8, 8});
    ir::Value* a = b.dq(b.q(x, 0.05f, 128), 0.05f, 128);
    ir::Value* s = b.dq(b.q(b.gb.node("Relu", {x}, {}, "r"), 0.02f, 0), 0.02f, 0);
    b.gb.output(b.dq(b.q(b.gb.node("Mul", {a, s}, {}, "mul"), 0.03f, 128), 0.03f, 128), DataType::kFloat, {1, 4, 8, 8});
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "QLinearLookup") == 0);
    CHECK(countOps(*m.graph, "QLinearMul") == 1);
  }
  SECTION("a value inside the chain read outside it") {
    Builder b;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 4, 8, 8});
    ir::Value* a = b.dq(b.q(x, 0.05f, 128), 0.05f, 128);
    ir::Value* sig = b.gb.node("Sigmoid", {a}, {}, "sig");
    b.gb.output(b.dq(b.q(b.gb.node("Mul", {a, sig}, {}, "mul"), 0.03f, 128), 0.03f, 128), DataType::kFloat, {1, 4, 8, 8});
    b.gb.output(sig, DataType::kFloat, {1, 4, 8, 8});
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "QLinearLookup") == 0);
    CHECK(countOps(*m.graph, "Sigmoid") == 1);
  }
  SECTION("a one-element constant that broadcasts to more dims") {
    Builder b;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 4, 8, 8});
    ir::Value* a = b.dq(b.q(x, 0.05f, 128), 0.05f, 128);
    ir::Value* k = b.gb.constant("k", floatTensor({1, 1, 1, 1, 1}, {2}));
    b.gb.output(b.dq(b.q(b.gb.node("Mul", {a, k}, {}, "mul"), 0.03f, 128), 0.03f, 128), DataType::kFloat, {1, 1, 4, 8, 8});
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "QLinearLookup") == 0);
  }
  SECTION("a per-channel constant operand") {
    Builder b;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 4, 8, 8});
    ir::Value* a = b.dq(b.q(x, 0.05f, 128), 0.05f, 128);
    ir::Value* k = b.gb.constant("k", floatTensor({1, 4, 1, 1}, {1, 2, 3, 4}));
    b.gb.output(b.dq(b.q(b.gb.node("Mul", {a, k}, {}, "mul"), 0.03f, 128), 0.03f, 128), DataType::kFloat, {1, 4, 8, 8});
    ir::Model m = b.gb.build(13);
    runtime::lowerQdqGroups(*m.graph);
    CHECK(countOps(*m.graph, "QLinearLookup") == 0);
    CHECK(countOps(*m.graph, "Mul") == 1);
  }
}

TEST_CASE("Split of a DQ moves bytes; DQ -> Q pairs fold or requantize by table", "[runtime][lowering][quant]") {
  Builder b;
  ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 4, 8, 8});
  ir::Value* a = b.dq(b.q(x, kXs, 128), kXs, 128);
  std::vector<ir::Value*> parts = b.gb.nodeN("Split", {a}, 2, {ir::Attribute::makeInt("axis", 1)}, "split");
  ir::Value* same = b.q(parts[0], kXs, 128);  // the DQ's own parameters: nothing to do
  REQUIRE(b.gb.graph().renameValue(same, "same").isOk());
  ir::Value* other = b.q(parts[1], 0.03f, 100);  // other parameters: a requantization
  REQUIRE(b.gb.graph().renameValue(other, "other").isOk());
  b.gb.output(b.dq(same, kXs, 128), DataType::kFloat, {1, 2, 8, 8});
  b.gb.output(b.dq(other, 0.03f, 100), DataType::kFloat, {1, 2, 8, 8});
  ir::Model model = b.gb.build(13);

  ir::Model lowered = model.clone();
  runtime::lowerQdqGroups(*lowered.graph);
  INFO(ir::verify(*lowered.graph).message());
  REQUIRE(ir::verify(*lowered.graph).isOk());
  const ir::Node* split = nullptr;
  for (const ir::Node* n : lowered.graph->nodes()) split = n->opType() == "Split" ? n : split;
  REQUIRE(split != nullptr);
  CHECK(split->input(0)->producer()->opType() == "QuantizeLinear");  // the graph input's Q
  CHECK(countOps(*lowered.graph, "QLinearLookup") == 1);
  CHECK(countOps(*lowered.graph, "QuantizeLinear") == 1);
  CHECK(countOps(*lowered.graph, "DequantizeLinear") == 2);  // the two graph outputs

  std::vector<float> v(256);
  for (int i = 0; i < 256; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i - 128) * kXs;
  const ir::Tensor in = floatTensor({1, 4, 8, 8}, v);
  const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", in}}, {"same", "other"});
  const auto out = runLowered(model, {{"x", in}}, {"same", "other"});
  for (size_t k : {size_t{2}, size_t{3}}) {
    const ir::Tensor& got = out[k].second;
    REQUIRE(got.dtype() == DataType::kUint8);
    REQUIRE(got.numel() == expected[k].numel());
    int64_t wrong = 0;
    for (int64_t i = 0; i < got.numel(); ++i) wrong += got.data<uint8_t>()[i] != expected[k].data<uint8_t>()[i];
    CHECK(wrong == 0);
  }
}

namespace {

/// A QDQ Conv (int8 weights per tensor, no bias) of `x` (already DQ'd) with m output channels.
ir::Value* qdqConv(Builder& b, ir::Value* x, int64_t c, int64_t m, int64_t k, std::mt19937_64& rng) {
  std::string n = b.fresh("w");
  ir::Value* wq = b.gb.constant(n + "_q", intTensor(DataType::kInt8, {m, c, k, k}, randomInts(rng, m * c * k * k, -100, 100)));
  ir::Value* w = b.gb.node("DequantizeLinear", {wq, b.c(0.01f), b.gb.constant(n + "_z", scalar(DataType::kInt8, 0))}, {}, n);
  const int64_t p = k / 2;
  return b.gb.node("Conv", {x, w}, {ir::Attribute::makeInts("kernel_shape", {k, k}), ir::Attribute::makeInts("pads", {p, p, p, p})},
                   b.fresh("conv"));
}

}  // namespace

TEST_CASE("A squeeze-excitation gate (QLinearMul by [N, C, 1, 1]) stays channels-last", "[runtime][lowering][quant]") {
  std::mt19937_64 rng(41);
  Builder b;
  ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 8, 6, 6});
  ir::Value* a = b.dq(b.q(x, 0.02f, 128), 0.02f, 128);
  ir::Value* f = b.dq(b.q(qdqConv(b, a, 8, 8, 3, rng), 0.05f, 128), 0.05f, 128);  // the features
  ir::Value* pooled = b.dq(b.q(b.gb.node("GlobalAveragePool", {f}, {}, "gap"), 0.02f, 128), 0.02f, 128);
  ir::Value* s = b.dq(b.q(qdqConv(b, pooled, 8, 8, 1, rng), 0.04f, 128), 0.04f, 128);
  ir::Value* gate = b.dq(b.q(b.gb.node("HardSigmoid", {s}, {}, "hsig"), 1.0f / 255, 0), 1.0f / 255, 0);
  ir::Value* y = b.dq(b.q(b.gb.node("Mul", {f, gate}, {}, "se"), 0.05f, 128), 0.05f, 128);
  ir::Value* out = b.q(qdqConv(b, y, 8, 4, 3, rng), 0.1f, 128);
  REQUIRE(b.gb.graph().renameValue(out, "out").isOk());
  b.gb.output(b.dq(out, 0.1f, 128), DataType::kFloat, {1, 4, 6, 6});
  ir::Model model = b.gb.build(13);

  ir::Model lowered = model.clone();
  REQUIRE(runtime::lowerForCpu(*lowered.graph).isOk());
  CHECK(countOps(*lowered.graph, "QLinearMul") == 1);
  CHECK(countOps(*lowered.graph, "QLinearLookup") == 1);
  const auto plan = runtime::cpu::quant::channelsLastValues(*lowered.graph);
  for (const ir::Node* n : lowered.graph->nodes()) {
    if (n->opType() == "QLinearMul") {
      CHECK(plan.contains(n->output(0)));
      CHECK(plan.contains(n->input(0)));
    }
  }
  // The session (NHWC Mul) against the QDQ model run node by node (NCHW, float simulation).
  const ir::Tensor in = floatTensor({1, 8, 6, 6}, randomFloats(rng, 8 * 36, -2.0f, 2.0f));
  const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", in}});
  auto session = runtime::Session::create(model, {});
  REQUIRE(session.isOk());
  auto got = (*session)->run({{"x", in}});
  REQUIRE(got.isOk());
  double worst = 0;
  for (int64_t i = 0; i < expected[0].numel(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>((*got)[0].second.data<float>()[i]) - expected[0].data<float>()[i]));
  }
  CHECK(worst <= 3 * 0.1 + 1e-6);  // integer accumulation against float: within three output steps
  // The lowered graph node by node (NCHW bytes, the broadcast runs) gives the session's (NHWC, the
  // gate rows) bits.
  const std::vector<ir::Tensor> nchw = runNodeByNode(lowered, {{"x", in}});
  CHECK(nchw[0].bitwiseEqual((*got)[0].second));
}
