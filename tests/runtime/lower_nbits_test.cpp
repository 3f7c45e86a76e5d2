// The block-wise weight lowering (src/runtime/lower_nbits.cpp): DequantizeLinear(block_size) ->
// MatMul becomes MatMulNBits, computing (q - z) * s exactly; what does not fit stays; constant
// weight Transposes fold.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/kernel_harness.h"
#include "whittle/ir/verifier.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using ir::DataType;
using testing::GraphBuilder;

namespace {

struct BlockwiseCase {
  DataType type;
  int64_t k, n, block;
  bool zeroPoint;
  int64_t axis = 0;
};

/// a [3, K] -> MatMul(a, DQ(q, s, z)) -> y, with the dequantized weights [K, N] in `w`.
ir::Model blockwiseModel(const BlockwiseCase& c, std::vector<double>& w, std::mt19937_64& rng) {
  const bool four = c.type == DataType::kInt4 || c.type == DataType::kUint4;
  const bool isSigned = c.type == DataType::kInt4 || c.type == DataType::kInt8;
  const int32_t lo = four ? (isSigned ? -8 : 0) : (isSigned ? -128 : 0), hi = lo + (four ? 15 : 255);
  std::uniform_int_distribution<int32_t> qd(lo, hi);
  std::uniform_real_distribution<float> sd(0.01f, 0.05f);
  const int64_t blocks = (c.k + c.block - 1) / c.block;
  auto packInts = [&](std::vector<int64_t> dims, std::vector<int32_t>& values) {
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    values.resize(static_cast<size_t>(count));
    ir::Tensor t(c.type, dims);
    auto* bytes = reinterpret_cast<uint8_t*>(t.mutableRawData());
    std::fill(bytes, bytes + (four ? (count + 1) / 2 : count), uint8_t{0});
    for (int64_t i = 0; i < count; ++i) {
      values[static_cast<size_t>(i)] = qd(rng);
      const auto u = static_cast<uint8_t>(values[static_cast<size_t>(i)]);
      if (four) {
        bytes[i / 2] |= static_cast<uint8_t>((u & 15) << ((i & 1) * 4));
      } else {
        bytes[i] = u;
      }
    }
    return t;
  };
  std::vector<int32_t> q, z;
  ir::Tensor qt = packInts({c.k, c.n}, q);
  ir::Tensor zt = packInts({blocks, c.n}, z);
  ir::Tensor st(DataType::kFloat, {blocks, c.n});
  for (int64_t i = 0; i < st.numel(); ++i) st.mutableData<float>()[i] = sd(rng);
  w.assign(static_cast<size_t>(c.k * c.n), 0.0);
  for (int64_t k = 0; k < c.k; ++k) {
    for (int64_t j = 0; j < c.n; ++j) {
      const size_t bi = static_cast<size_t>((k / c.block) * c.n + j);
      w[static_cast<size_t>(k * c.n + j)] =
          (q[static_cast<size_t>(k * c.n + j)] - (c.zeroPoint ? z[bi] : 0)) * static_cast<double>(st.data<float>()[bi]);
    }
  }
  GraphBuilder gb;
  ir::Value* a = gb.input("a", DataType::kFloat, {3, c.k});
  std::vector<ir::Value*> dqIn = {gb.constant("q", qt), gb.constant("s", st)};
  if (c.zeroPoint) dqIn.push_back(gb.constant("z", zt));
  ir::Value* wv = gb.node("DequantizeLinear", dqIn,
                          {ir::Attribute::makeInt("axis", c.axis), ir::Attribute::makeInt("block_size", c.block)}, "dq");
  gb.output(gb.node("MatMul", {a, wv}, {}, "mm"), DataType::kFloat, {3, c.n});
  return gb.build(21);
}

}  // namespace

TEST_CASE("Block-wise DequantizeLinear -> MatMul runs as MatMulNBits, exactly (q - z) * s", "[runtime][lowering][nbits]") {
  std::mt19937_64 rng(7);
  const std::vector<BlockwiseCase> cases = {
      {DataType::kInt4, 100, 9, 32, true}, {DataType::kUint4, 64, 16, 16, false}, {DataType::kUint4, 130, 5, 128, true},
      {DataType::kInt8, 70, 7, 32, false}, {DataType::kUint8, 96, 12, 64, true},
  };
  for (const BlockwiseCase& c : cases) {
    CAPTURE(ir::dataTypeName(c.type), c.k, c.n, c.block, c.zeroPoint);
    std::vector<double> w;
    ir::Model model = blockwiseModel(c, w, rng);
    ir::Model lowered = model.clone();
    REQUIRE(runtime::lowerForCpu(*lowered.graph).isOk());
    REQUIRE(ir::verify(*lowered.graph).isOk());
    CHECK(testing::countOps(*lowered.graph, "MatMulNBits") == 1);
    CHECK(testing::countOps(*lowered.graph, "DequantizeLinear") == 0);
    CHECK(testing::countOps(*lowered.graph, "MatMul") == 0);

    ir::Tensor a(DataType::kFloat, {3, c.k});
    std::uniform_real_distribution<float> ad(-1.0f, 1.0f);
    for (int64_t i = 0; i < a.numel(); ++i) a.mutableData<float>()[i] = ad(rng);
    auto y = testing::runOutputs(model, {{"a", a}});
    REQUIRE(y[0].dims() == std::vector<int64_t>{3, c.n});
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t j = 0; j < c.n; ++j) {
        double ref = 0, mag = 1e-6;
        for (int64_t k = 0; k < c.k; ++k) {
          ref += a.data<float>()[r * c.k + k] * w[static_cast<size_t>(k * c.n + j)];
          mag += std::abs(a.data<float>()[r * c.k + k] * w[static_cast<size_t>(k * c.n + j)]);
        }
        CHECK(std::abs(y[0].data<float>()[r * c.n + j] - ref) / mag < 1e-5);
      }
    }
  }
}

TEST_CASE("DontLowerBlockwise: blocks along N, odd block sizes and kept weights stay as they are", "[runtime][lowering][nbits]") {
  std::mt19937_64 rng(8);
  std::vector<double> w;
  for (const BlockwiseCase& c : {BlockwiseCase{DataType::kInt4, 64, 64, 32, true, /*axis=*/1},
                                 BlockwiseCase{DataType::kInt8, 60, 8, 12, false}}) {
    ir::Model model = blockwiseModel(c, w, rng);
    REQUIRE(runtime::lowerForCpu(*model.graph).isOk());
    CHECK(testing::countOps(*model.graph, "MatMulNBits") == 0);
    CHECK(testing::countOps(*model.graph, "MatMul") == 1);
  }
  ir::Model kept = blockwiseModel({DataType::kInt4, 64, 8, 32, true}, w, rng);
  const std::string dqOut = testing::findNode(*kept.graph, "dq")->output(0)->name();
  REQUIRE(runtime::lowerForCpu(*kept.graph, {dqOut}).isOk());
  CHECK(testing::countOps(*kept.graph, "MatMulNBits") == 0);
}

TEST_CASE("A constant weight Transpose read by MatMul folds in the session, and the result is unchanged", "[runtime][lowering]") {
  GraphBuilder gb;
  ir::Value* ids = gb.input("ids", DataType::kInt64, {1, 3});
  ir::Value* emb = gb.weight("emb", {10, 6});
  ir::Value* h = gb.node("Gather", {emb, ids});
  ir::Value* logits = gb.node("MatMul", {h, gb.node("Transpose", {emb}, {ir::Attribute::makeInts("perm", {1, 0})})});
  gb.output(logits, DataType::kFloat, {1, 3, 10});
  ir::Model model = gb.build(17);
  ir::Model lowered = model.clone();
  REQUIRE(runtime::lowerForCpu(*lowered.graph).isOk());
  REQUIRE(ir::verify(*lowered.graph).isOk());
  CHECK(testing::countOps(*lowered.graph, "Transpose") == 0);
  CHECK(testing::countOps(*lowered.graph, "Gather") == 1);  // the embedding itself stays for the Gather
  ir::Tensor in = ir::Tensor::fromVector<int64_t>(DataType::kInt64, {1, 3}, {4, 0, 9});
  auto y = testing::runOutputs(model, {{"ids", in}});
  const float* e = model.graph->findValue("emb")->constant()->data<float>();
  for (int64_t t = 0; t < 3; ++t) {
    for (int64_t v = 0; v < 10; ++v) {
      double ref = 0;
      for (int64_t d = 0; d < 6; ++d) ref += static_cast<double>(e[in.data<int64_t>()[t] * 6 + d]) * e[v * 6 + d];
      CHECK(y[0].data<float>()[t * 10 + v] == Approx(ref).epsilon(1e-5));
    }
  }
}
