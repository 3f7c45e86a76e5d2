// The QDQ lowering of PRelu groups with a slope per channel (src/runtime/lower_qdq_prelu.cpp):
// the rewrite happens, the session gives the QDQ group's bytes run node by node, channels last
// inside an int8 convolution chain too, and groups that do not fit stay as they are.
#include <catch2/catch.hpp>

#include <random>

#include "cpu/quant_common.h"
#include "kernels/cpu/quant_test_util.h"
#include "support/graph_queries.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/ir/verifier.h"
#include "whittle/runtime/lowering.h"
#include "whittle/runtime/session.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::countOps;

namespace {

constexpr float kXs = 0.05f;

/// x (float, `dims`) -> Q -> DQ -> PRelu(slope) -> Q "yq" -> DQ -> y.
ir::Model preluModel(DataType type, const std::vector<int64_t>& dims, const ir::Tensor& slope) {
  QdqGraphBuilder b;
  const int32_t xz = type == DataType::kInt8 ? 0 : 128;
  ir::Value* x = b.gb.input("x", DataType::kFloat, dims);
  ir::Value* y = b.gb.node("PRelu", {b.dq(b.q(x, kXs, xz, type), kXs, xz, type), b.gb.constant("slope", slope)}, {}, "prelu");
  ir::Value* yq = b.q(y, 0.03f, xz + 20, type);
  REQUIRE(b.gb.graph().renameValue(yq, "yq").isOk());
  b.gb.output(b.dq(yq, 0.03f, xz + 20, type), DataType::kFloat, dims);
  return b.gb.build(13);
}

/// Runs `model` in a session and node by node on `x`; every output byte equal.
void checkSessionEqualsNodeByNode(const ir::Model& model, const ir::Tensor& x) {
  const std::vector<ir::Tensor> expected = runNodeByNode(model, {{"x", x}});
  auto session = runtime::Session::create(model, {});
  REQUIRE(session.isOk());
  auto out = (*session)->run({{"x", x}});
  REQUIRE(out.isOk());
  CHECK((*out)[0].second.bitwiseEqual(expected[0]));
}

}  // namespace

TEST_CASE("PRelu with a slope per channel between DQ and Q becomes QLinearPRelu", "[runtime][lowering][quant]") {
  std::mt19937_64 rng(5);
  struct Case {
    std::vector<int64_t> dims, slopeDims;
  };
  for (const Case& c : {Case{{1, 6, 5, 7}, {6, 1, 1}}, Case{{2, 6, 3, 3}, {1, 6, 1, 1}}, Case{{3, 40}, {40}},
                        Case{{1, 6, 4, 4}, {1}}}) {
    for (DataType type : {DataType::kUint8, DataType::kInt8}) {
      CAPTURE(c.dims, c.slopeDims, ir::dataTypeName(type));
      const int64_t channels = numel(c.slopeDims);
      const ir::Tensor slope = floatTensor(c.slopeDims, randomFloats(rng, channels, -0.8f, 1.3f));
      ir::Model model = preluModel(type, c.dims, slope);
      ir::Model lowered = model.clone();
      (void)ir::inferShapes(lowered);  // as the session does before lowering
      runtime::lowerQdqGroups(*lowered.graph);
      INFO(ir::verify(*lowered.graph).message());
      REQUIRE(ir::verify(*lowered.graph).isOk());
      // A one-value slope is a table like LeakyRelu's; a slope per channel is QLinearPRelu.
      CHECK(countOps(*lowered.graph, channels == 1 ? "QLinearLookup" : "QLinearPRelu") == 1);
      CHECK(countOps(*lowered.graph, "PRelu") == 0);
      // Every code of x, over and over.
      std::vector<float> xs(static_cast<size_t>(numel(c.dims)));
      for (size_t i = 0; i < xs.size(); ++i) xs[i] = (static_cast<float>(i % 256) - 128.0f) * kXs;
      checkSessionEqualsNodeByNode(model, floatTensor(c.dims, xs));
    }
  }
}

TEST_CASE("PRelu groups that QLinearPRelu does not cover stay QDQ", "[runtime][lowering][quant]") {
  SECTION("a slope along the width") {
    ir::Model model = preluModel(DataType::kUint8, {1, 3, 4, 5}, floatTensor({5}, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}));
    (void)ir::inferShapes(model);
    runtime::lowerQdqGroups(*model.graph);
    CHECK(countOps(*model.graph, "PRelu") == 1);
    CHECK(countOps(*model.graph, "QLinearPRelu") == 0);
  }
  SECTION("a slope computed at run time") {
    QdqGraphBuilder b;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 3, 4, 4});
    ir::Value* a = b.gb.input("a", DataType::kFloat, {3, 1, 1});
    ir::Value* y = b.gb.node("PRelu", {b.dq(b.q(x, kXs, 128), kXs, 128), a}, {}, "prelu");
    b.gb.output(b.dq(b.q(y, 0.03f, 128), 0.03f, 128), DataType::kFloat, {1, 3, 4, 4});
    ir::Model model = b.gb.build(13);
    (void)ir::inferShapes(model);
    runtime::lowerQdqGroups(*model.graph);
    CHECK(countOps(*model.graph, "PRelu") == 1);
  }
}

TEST_CASE("Conv -> PRelu -> MaxPool -> Conv stays int8 and channels last (MTCNN)", "[runtime][lowering][quant]") {
  std::mt19937_64 rng(17);
  QdqGraphBuilder b;
  auto conv = [&](ir::Value* x, int64_t c, int64_t m) {
    const std::string n = b.fresh("w");
    ir::Value* wq = b.gb.constant(n + "_q", intTensor(DataType::kInt8, {m, c, 3, 3}, randomInts(rng, m * c * 9, -100, 100)));
    ir::Value* w = b.gb.node("DequantizeLinear", {wq, b.gb.constant(n + "_s", scalar(0.01f)),
                                                  b.gb.constant(n + "_z", scalar(DataType::kInt8, 0))}, {}, n);
    return b.gb.node("Conv", {x, w}, {ir::Attribute::makeInts("kernel_shape", {3, 3})}, b.fresh("conv"));
  };
  // 28 channels: rows that are not a multiple of the vector width.
  ir::Value* x = b.gb.input("x", DataType::kFloat, {1, 3, 14, 14});
  ir::Value* c1 = b.dq(b.q(conv(b.dq(b.q(x, 0.02f, 128), 0.02f, 128), 3, 28), 0.05f, 128), 0.05f, 128);
  ir::Value* slope = b.gb.constant("slope", floatTensor({28, 1, 1}, randomFloats(rng, 28, 0.0f, 0.6f)));
  ir::Value* p = b.dq(b.q(b.gb.node("PRelu", {c1, slope}, {}, "prelu"), 0.04f, 100), 0.04f, 100);
  ir::Value* m = b.dq(b.q(b.gb.node("MaxPool", {p}, {ir::Attribute::makeInts("kernel_shape", {3, 3}),
                                                     ir::Attribute::makeInts("strides", {2, 2})}, "pool"),
                          0.04f, 100),
                      0.04f, 100);
  b.gb.output(b.dq(b.q(conv(m, 28, 8), 0.1f, 128), 0.1f, 128), DataType::kFloat, {1, 8, 3, 3});
  ir::Model model = b.gb.build(13);

  ir::Model lowered = model.clone();
  (void)ir::inferShapes(lowered);
  REQUIRE(runtime::lowerForCpu(*lowered.graph).isOk());
  CHECK(countOps(*lowered.graph, "QLinearPRelu") == 1);
  CHECK(countOps(*lowered.graph, "QLinearConv") == 2);
  CHECK(countOps(*lowered.graph, "DequantizeLinear") == 1);  // the output's
  const auto plan = runtime::cpu::quant::channelsLastValues(*lowered.graph);
  for (const ir::Node* n : lowered.graph->nodes()) {
    if (n->opType() == "QLinearPRelu") {
      CHECK(plan.contains(n->input(0)));
      CHECK(plan.contains(n->output(0)));
    }
  }
  // The session (NHWC rows) gives the bits of the lowered graph run node by node (NCHW planes).
  const ir::Tensor in = floatTensor({1, 3, 14, 14}, randomFloats(rng, 3 * 196, -2.0f, 2.0f));
  const std::vector<ir::Tensor> nchw = runNodeByNode(lowered, {{"x", in}});
  auto session = runtime::Session::create(model, {});
  REQUIRE(session.isOk());
  auto got = (*session)->run({{"x", in}});
  REQUIRE(got.isOk());
  CHECK(nchw[0].bitwiseEqual((*got)[0].second));
}
