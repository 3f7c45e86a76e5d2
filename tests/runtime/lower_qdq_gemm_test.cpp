// The QDQ lowering's Gemm step: a Gemm or MatMul (x of rank >= 2) of dequantized int8 data becomes one
// com.microsoft QGemm (float output, or quantized when a QuantizeLinear joins), which runs on
// the int8 GEMM. Checked for structure and against the model run one node at a time (the float
// simulation of the QDQ semantics), at two batch sizes and one and two threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cpu/quant_test_util.h"
#include "support/graph_queries.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/ir/verifier.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using namespace whittle::testing::quant;
using testing::countOps;

namespace {

struct GemmCase {
  bool transB = true;
  bool perChannel = true;
  bool quantizedOutput = false;  // a QuantizeLinear (then DequantizeLinear) after the Gemm
  bool matmul = false;           // MatMul instead of Gemm (no bias)
  bool threeD = false;           // MatMul: x [batch, 3, K]
  float alpha = 1.0f, beta = 1.0f;
  DataType xType = DataType::kUint8;
  DataType wType = DataType::kInt8;
  int64_t k = 48, n = 20;
};

constexpr float kXScale = 0.03f;

ir::Model gemmModel(const GemmCase& c) {
  QdqGraphBuilder b;
  auto& gb = b.gb;
  std::mt19937_64 rng(5);
  const int32_t xZp = c.xType == DataType::kUint8 ? 120 : -3;
  ir::Value* x = c.threeD ? gb.symbolicInput("x", DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(3), ir::Dim::known(c.k)})
                          : gb.symbolicInput("x", DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(c.k)});
  ir::Value* xdq = b.dq(b.q(x, kXScale, xZp, c.xType), kXScale, xZp, c.xType);
  const std::vector<int64_t> wDims = c.transB ? std::vector<int64_t>{c.n, c.k} : std::vector<int64_t>{c.k, c.n};
  const int64_t channels = c.perChannel ? c.n : 1;
  std::vector<float> ws = randomFloats(rng, channels, 0.004f, 0.012f);
  const int32_t wZp = c.wType == DataType::kUint8 ? 128 : 0;
  std::vector<int32_t> wq = randomInts(rng, c.k * c.n, -100, 100);
  for (int32_t& v : wq) v += wZp;
  std::vector<int64_t> scaleDims = c.perChannel ? std::vector<int64_t>{channels} : std::vector<int64_t>{};
  ir::Value* w = gb.node("DequantizeLinear",
                         {gb.constant("wq", intTensor(c.wType, wDims, wq)), gb.constant("ws", floatTensor(scaleDims, ws)),
                          gb.constant("wz", intTensor(c.wType, scaleDims, std::vector<int32_t>(static_cast<size_t>(channels), wZp)))},
                         {ir::Attribute::makeInt("axis", c.transB ? 0 : 1)}, "w_dq");
  ir::Value* y = nullptr;
  if (c.matmul) {
    y = gb.node("MatMul", {xdq, w}, {}, "fc");
  } else {
    // The bias as quantizers write it: int32 at scale xs * ws[n] (per column here).
    std::vector<float> bs(static_cast<size_t>(c.n));
    for (int64_t j = 0; j < c.n; ++j) bs[static_cast<size_t>(j)] = kXScale * ws[static_cast<size_t>(c.perChannel ? j : 0)];
    ir::Value* bias = gb.node("DequantizeLinear",
                              {gb.constant("bq", intTensor(DataType::kInt32, {c.n}, randomInts(rng, c.n, -3000, 3000))),
                               gb.constant("bs", floatTensor({c.n}, bs)),
                               gb.constant("bz", intTensor(DataType::kInt32, {c.n}, std::vector<int32_t>(static_cast<size_t>(c.n), 0)))},
                              {ir::Attribute::makeInt("axis", 0)}, "b_dq");
    std::vector<ir::Attribute> attrs = {ir::Attribute::makeFloat("alpha", c.alpha), ir::Attribute::makeFloat("beta", c.beta)};
    if (c.transB) attrs.push_back(ir::Attribute::makeInt("transB", 1));
    y = gb.node("Gemm", {xdq, w, bias}, attrs, "fc");
  }
  if (c.quantizedOutput) y = b.dq(b.q(y, 0.05f, 128), 0.05f, 128);
  gb.output(y);
  return gb.build(13);
}

/// Largest |a - b| over the elements, and the largest |b|.
std::pair<double, double> maxDiff(const ir::Tensor& a, const ir::Tensor& b) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::fabs(a.valueAsDouble(i) - b.valueAsDouble(i)));
    scale = std::max(scale, std::fabs(b.valueAsDouble(i)));
  }
  return {diff, scale};
}

void checkAgainstSimulation(const GemmCase& c) {
  ir::Model model = gemmModel(c);
  REQUIRE(ir::verify(*model.graph).isOk());
  ir::Model lowered = model.clone();
  ir::inferShapes(lowered);  // as the session does before lowering: a MatMul's rank must be known
  CHECK(runtime::lowerQdqGemms(*lowered.graph) == 1);
  runtime::lowerQdqGroups(*lowered.graph);
  INFO(ir::verify(*lowered.graph).message());
  REQUIRE(ir::verify(*lowered.graph).isOk());
  CHECK(countOps(*lowered.graph, "QGemm") == 1);
  CHECK(countOps(*lowered.graph, "Gemm") == 0);
  CHECK(countOps(*lowered.graph, "MatMul") == 0);
  // What remains of QDQ: the input's Q, and the output's DQ when the output is quantized.
  CHECK(countOps(*lowered.graph, "DequantizeLinear") == (c.quantizedOutput ? 1 : 0));

  std::mt19937_64 rng(41);
  for (int64_t batch : {1, 5}) {
    const ir::Tensor x = c.threeD ? floatTensor({batch, 3, c.k}, randomFloats(rng, batch * 3 * c.k, -3.0f, 3.0f))
                                  : floatTensor({batch, c.k}, randomFloats(rng, batch * c.k, -3.0f, 3.0f));
    const ir::Tensor expected = testing::quant::runNodeByNode(model, {{"x", x}})[0];
    for (int threads : {1, 2}) {
      runtime::SessionOptions options;
      options.threads = threads;
      auto session = runtime::Session::create(model, options);
      REQUIRE(session.isOk());
      auto out = (*session)->run({{"x", x}});
      REQUIRE(out.isOk());
      const ir::Tensor& y = (*out)[0].second;
      REQUIRE(y.dims() == expected.dims());
      auto [diff, scale] = maxDiff(y, expected);
      CAPTURE(batch, threads, diff, scale);
      if (c.quantizedOutput) {
        CHECK(diff <= 0.05 + 1e-6);  // integer against float accumulation: one output step at most
      } else {
        // Integer accumulation is exact; what differs is float rounding and the bias rounded to
        // the accumulator's scale (half a step of xs * ws, times alpha).
        CHECK(diff <= 1e-5 * scale + 0.5 * c.alpha * kXScale * 0.012);
      }
    }
  }
}

}  // namespace

TEST_CASE("A Gemm of dequantized int8 data with a float output runs as one int8 QGemm", "[runtime][lowering][quant]") {
  SECTION("transB, per-column weight scales, int32 bias") { checkAgainstSimulation(GemmCase{}); }
  SECTION("B [K, N], per-tensor scale, alpha and beta") {
    GemmCase c;
    c.transB = false;
    c.perChannel = false;
    c.alpha = 0.5f;
    c.beta = 2.0f;
    checkAgainstSimulation(c);
  }
  SECTION("int8 activations, uint8 weights") {
    GemmCase c;
    c.xType = DataType::kInt8;
    c.wType = DataType::kUint8;
    checkAgainstSimulation(c);
  }
  SECTION("a 2-D MatMul") {
    GemmCase c;
    c.matmul = true;
    c.transB = false;
    checkAgainstSimulation(c);
  }
  SECTION("a 1-D MatMul: y [N]") {
    std::mt19937_64 rng(3);
    QdqGraphBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {8}), 0.02f, 128);
    ir::Value* w = b.dq(b.gb.constant("wq", intTensor(DataType::kInt8, {8, 4}, randomInts(rng, 32, -50, 50))), 0.01f, 0, DataType::kInt8);
    b.gb.output(b.gb.node("MatMul", {x, w}, {}, "fc"));
    ir::Model m = b.gb.build(13);
    ir::Model lowered = m.clone();
    ir::inferShapes(lowered);
    CHECK(runtime::lowerQdqGemms(*lowered.graph) == 1);
    const ir::Tensor xv = floatTensor({8}, {0.1f, -0.5f, 1.0f, 2.0f, -1.5f, 0.3f, 0.0f, 0.7f});
    const ir::Tensor expected = testing::quant::runNodeByNode(m, {{"x", xv}})[0];
    auto session = runtime::Session::create(m, {});
    REQUIRE(session.isOk());
    auto out = (*session)->run({{"x", xv}});
    REQUIRE(out.isOk());
    REQUIRE((*out)[0].second.dims() == std::vector<int64_t>{4});
    CHECK(maxDiff((*out)[0].second, expected).first <= 1e-5);
  }
  SECTION("a 3-D MatMul: x read as rows of K, y keeping its leading dims") {
    GemmCase c;
    c.matmul = true;
    c.transB = false;
    c.threeD = true;
    checkAgainstSimulation(c);
    c.xType = DataType::kInt8;
    c.perChannel = false;
    checkAgainstSimulation(c);
  }
}

TEST_CASE("A quantized Gemm output joins the QGemm, which requantizes", "[runtime][lowering][quant]") {
  GemmCase c;
  c.quantizedOutput = true;
  checkAgainstSimulation(c);
  c.transB = false;
  c.xType = DataType::kInt8;
  checkAgainstSimulation(c);
}

TEST_CASE("Gemms the int8 GEMM cannot take stay float", "[runtime][lowering][quant]") {
  SECTION("transA") {
    QdqGraphBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {8, 2}), 0.02f, 128);
    ir::Value* w = b.dq(b.gb.constant("wq", intTensor(DataType::kUint8, {8, 4}, std::vector<int32_t>(32, 130))), 0.01f, 128);
    b.gb.output(b.gb.node("Gemm", {x, w}, {ir::Attribute::makeInt("transA", 1)}, "fc"));
    ir::Model m = b.gb.build(13);
    CHECK(runtime::lowerQdqGemms(*m.graph) == 0);
    CHECK(countOps(*m.graph, "Gemm") == 1);
  }
  SECTION("weight scales along the wrong axis") {
    QdqGraphBuilder b;
    ir::Value* x = b.qdq(b.gb.input("x", DataType::kFloat, {2, 8}), 0.02f, 128);
    ir::Value* w = b.gb.node("DequantizeLinear",
                             {b.gb.constant("wq", intTensor(DataType::kInt8, {8, 4}, std::vector<int32_t>(32, 3))),
                              b.gb.constant("ws", floatTensor({8}, std::vector<float>(8, 0.01f)))},
                             {ir::Attribute::makeInt("axis", 0)}, "w_dq");
    b.gb.output(b.gb.node("Gemm", {x, w}, {}, "fc"));
    ir::Model m = b.gb.build(13);
    CHECK(runtime::lowerQdqGemms(*m.graph) == 0);
  }
  SECTION("a float activation") {
    QdqGraphBuilder b;
    ir::Value* x = b.gb.input("x", DataType::kFloat, {2, 8});
    ir::Value* w = b.dq(b.gb.constant("wq", intTensor(DataType::kUint8, {8, 4}, std::vector<int32_t>(32, 130))), 0.01f, 128);
    b.gb.output(b.gb.node("Gemm", {x, w}, {}, "fc"));
    ir::Model m = b.gb.build(13);
    CHECK(runtime::lowerQdqGemms(*m.graph) == 0);
  }
}
