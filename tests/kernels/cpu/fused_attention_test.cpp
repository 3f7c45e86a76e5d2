// com.whittle.internal FusedAttention (kernels/cpu/fused_attention.cpp): the blocked path with
// masked keys skipped against the scalar reference, on shapes off the tile sizes, both k
// layouts, Mul and Div scales and the masks that skip or must not; and the kernel on broadcast
// batch dims and on masks that broadcast the scores up (its reference path), against the
// unfused ops.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu/fused_attention.h"
#include "support/graph_builder.h"
#include "support/kernel_harness.h"

namespace whittle {
namespace {

using runtime::cpu::AttentionParams;
using runtime::cpu::AttentionSlice;
using runtime::cpu::MaskTails;

std::vector<float> uniform(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

enum class Mask { kNone, kCausal, kCausalInf, kRowOnly, kScalarColumns, kWeak };

/// Runs one slice through attentionSlice and the reference; returns the largest difference
/// over the largest |y|.
double sliceError(const AttentionParams& p, Mask kind, float qkRange, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t S = p.seq, T = p.total, D = p.head, Dv = p.valueHead;
  std::vector<float> q = uniform(rng, S * D, -qkRange, qkRange), k = uniform(rng, T * D, -qkRange, qkRange),
                     v = uniform(rng, T * Dv, -1.f, 1.f);
  std::vector<float> mask;
  AttentionSlice s;
  s.q = q.data();
  s.k = k.data();
  s.v = v.data();
  const int64_t offset = std::max<int64_t>(0, T - S);  // causal with a past: row i sees keys up to offset + i
  if (kind != Mask::kNone) {
    const float masked = kind == Mask::kCausalInf ? -std::numeric_limits<float>::infinity()
                         : kind == Mask::kWeak    ? -150.f
                                                  : -10000.f;
    if (kind == Mask::kRowOnly) {
      mask.assign(static_cast<size_t>(T), 0.f);
      for (int64_t t = T / 2; t < T; ++t) mask[static_cast<size_t>(t)] = masked;
      s.maskRowStride = 0;
      s.maskColStride = 1;
    } else if (kind == Mask::kScalarColumns) {
      mask = uniform(rng, S, -2.f, 2.f);  // [S, 1]
      s.maskRowStride = 1;
      s.maskColStride = 0;
    } else {
      mask.assign(static_cast<size_t>(S * T), 0.f);
      for (int64_t i = 0; i < S; ++i) {
        for (int64_t t = 0; t < T; ++t) {
          if (t > offset + i) mask[static_cast<size_t>(i * T + t)] = masked;
        }
      }
      s.maskRowStride = T;
      s.maskColStride = 1;
    }
    s.mask = mask.data();
  }
  std::vector<float> kt;
  if (p.kTransposed) {  // the same keys laid out [D, T]
    kt.resize(k.size());
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t d = 0; d < D; ++d) kt[static_cast<size_t>(d * T + t)] = k[static_cast<size_t>(t * D + d)];
    }
    s.k = kt.data();
  }
  std::vector<float> got(static_cast<size_t>(S * Dv), 7.f), want(static_cast<size_t>(S * Dv), -7.f);
  s.yRowStride = Dv;
  s.y = want.data();
  runtime::cpu::attentionSliceReference(p, s);
  MaskTails tails;
  runtime::cpu::findMaskTails(p, s, tails);
  std::vector<float> scratch(static_cast<size_t>(runtime::cpu::attentionScratchFloats(p)));
  s.y = got.data();
  REQUIRE(runtime::cpu::attentionSlice(p, s, &tails, scratch.data()));
  double worst = 0, scale = 1e-6;
  for (size_t i = 0; i < want.size(); ++i) {
    REQUIRE(std::isfinite(got[i]));
    worst = std::max(worst, static_cast<double>(std::abs(got[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::abs(want[i])));
  }
  return worst / scale;
}

}  // namespace

TEST_CASE("FusedAttention's blocked path matches the reference", "[kernels][attention]") {
  struct Dims {
    int64_t s, t, d, dv;
  };
  // Off the tiles (8 x 32 scores, 4 x 64 values, 32-row blocks), a past (T > S), one row, one key.
  for (Dims dims : {Dims{37, 37, 20, 70}, Dims{64, 64, 64, 64}, Dims{5, 77, 16, 3}, Dims{1, 9, 8, 8},
                    Dims{33, 33, 1, 17}, Dims{40, 1, 4, 4}}) {
    for (bool kTransposed : {false, true}) {
      for (bool divide : {false, true}) {
        for (Mask kind : {Mask::kNone, Mask::kCausal, Mask::kCausalInf, Mask::kRowOnly, Mask::kScalarColumns}) {
          INFO("S " << dims.s << " T " << dims.t << " D " << dims.d << " Dv " << dims.dv << " k^T " << kTransposed
                    << " divide " << divide << " mask " << static_cast<int>(kind));
          AttentionParams p{dims.s, dims.t, dims.d, dims.dv, divide ? 8.f : 0.125f, divide, kTransposed};
          CHECK(sliceError(p, kind, 1.f, 11) < 1e-5);
        }
      }
    }
  }
}

TEST_CASE("FusedAttention skips masked keys only where they provably weigh 0", "[kernels][attention]") {
  AttentionParams p{70, 70, 32, 24, 1.f, false, false};
  SECTION("a causal mask of -10000 skips, and the result is the reference's") {
    MaskTails tails;
    std::vector<float> mask(70 * 70, 0.f);
    for (int64_t i = 0; i < 70; ++i) {
      for (int64_t t = i + 1; t < 70; ++t) mask[static_cast<size_t>(i * 70 + t)] = -10000.f;
    }
    AttentionSlice s;
    s.mask = mask.data();
    s.maskRowStride = 70;
    s.maskColStride = 1;
    runtime::cpu::findMaskTails(p, s, tails);
    CHECK(tails.any);
    CHECK(tails.end[0] == 1);
    CHECK(tails.end[69] == 70);
    CHECK(tails.zeros[5] == 6);
    CHECK(sliceError(p, Mask::kCausal, 1.f, 3) < 1e-5);
  }
  SECTION("a weak mask (-150) with scores that reach over it: the block is recomputed over all keys") {
    // |q| |k| up to 32 * 9: the masked keys' scores could exceed the row maximum by 150, so
    // they may weigh more than 0; the reference keeps them, and so must the kernel.
    CHECK(sliceError(p, Mask::kWeak, 3.f, 5) < 1e-5);
    CHECK(sliceError(p, Mask::kWeak, 0.1f, 5) < 1e-5);
  }
}

TEST_CASE("FusedAttention broadcasts batch dims and masks as the unfused ops do", "[kernels][attention]") {
  using testing::GraphBuilder;
  struct Case {
    std::vector<int64_t> q, k, v, mask;  // k as [.., T, D]; empty mask: none
  };
  for (const Case& c : {Case{{2, 3, 6, 8}, {2, 3, 6, 8}, {2, 3, 6, 5}, {6, 6}},
                        Case{{1, 3, 6, 8}, {1, 1, 6, 8}, {1, 1, 6, 5}, {2, 1, 1, 6}},  // heads share k, v; mask adds a batch
                        Case{{3, 1, 8}, {3, 7, 8}, {3, 7, 4}, {3, 5, 7}},  // one query row, the mask makes it 5
                        Case{{4, 6, 8}, {4, 1, 8}, {4, 3, 4}, {1, 3}},     // one key, the mask makes it 3
                        Case{{5, 8}, {9, 8}, {9, 2}, {}}}) {
    for (bool kTransposed : {false, true}) {
      INFO("q " << c.q.size() << "-D, mask " << c.mask.size() << "-D, k^T " << kTransposed);
      GraphBuilder b(5);
      std::vector<int64_t> kDims = c.k;
      if (kTransposed) std::swap(kDims[kDims.size() - 1], kDims[kDims.size() - 2]);
      ir::Value* q = b.input("q", ir::DataType::kFloat, c.q);
      ir::Value* k = b.input("k", ir::DataType::kFloat, kDims);
      ir::Value* v = b.input("v", ir::DataType::kFloat, c.v);
      ir::Value* mask = c.mask.empty() ? nullptr : b.input("mask", ir::DataType::kFloat, c.mask);
      // The unfused graph and FusedAttention side by side, on the same inputs.
      ir::Value* kt = k;
      if (!kTransposed) {
        std::vector<int64_t> perm(kDims.size());
        for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
        std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
        kt = b.node("Transpose", {k}, {ir::Attribute::makeInts("perm", perm)}, "t");
      }
      ir::Value* scores = b.node("Div", {b.node("MatMul", {q, kt}, {}, "qk"), b.constant("c", {}, {2.f})}, {}, "div");
      if (mask != nullptr) scores = b.node("Add", {scores, mask}, {}, "add");
      ir::Value* p = b.node("Softmax", {scores}, {ir::Attribute::makeInt("axis", -1)}, "softmax");
      b.output(b.node("MatMul", {p, v}, {}, "pv"));
      b.output(p);  // an output: the lowering leaves this chain unfused
      std::vector<ir::Value*> fusedIn = {q, k, v};
      if (mask != nullptr) fusedIn.push_back(mask);
      ir::Value* fused = b.node("FusedAttention", fusedIn,
                                {ir::Attribute::makeFloat("scale", 2.f), ir::Attribute::makeInt("divide", 1),
                                 ir::Attribute::makeInt("k_transposed", kTransposed)},
                                "fused", "com.whittle.internal");
      b.output(fused);
      ir::Model model = b.build(17);
      bool imported = false;
      for (const auto& o : model.opsetImports) imported = imported || o.domain == "com.whittle.internal";
      if (!imported) model.opsetImports.push_back({"com.whittle.internal", 1});
      std::vector<runtime::NamedTensor> feeds = {{"q", b.randomTensor(ir::DataType::kFloat, c.q, -1, 1)},
                                                 {"k", b.randomTensor(ir::DataType::kFloat, kDims, -1, 1)},
                                                 {"v", b.randomTensor(ir::DataType::kFloat, c.v, -1, 1)}};
      if (mask != nullptr) feeds.push_back({"mask", b.randomTensor(ir::DataType::kFloat, c.mask, -3, 0)});
      for (int threads : {1, 2}) {
        auto out = testing::runModel(model, feeds, threads);
        REQUIRE(out.size() == 3);
        const ir::Tensor& want = out[0].second;
        const ir::Tensor& got = out[2].second;
        REQUIRE(got.dims() == want.dims());
        for (int64_t i = 0; i < want.numel(); ++i) CHECK(std::abs(got.valueAsDouble(i) - want.valueAsDouble(i)) < 1e-5);
      }
    }
  }
  SECTION("bad input: one line naming the node") {
    ir::Tensor q(ir::DataType::kFloat, {2, 4, 8}), k(ir::DataType::kFloat, {2, 5, 7}), v(ir::DataType::kFloat, {2, 5, 3});
    ir::Model m = testing::oneNodeModel("FusedAttention", {{"q", q}, {"k", k}, {"v", v}}, {}, 17, 1, {},
                                        testing::InputShapes::kDeclared, "com.whittle.internal");
    auto r = testing::tryRunModel(m, testing::feedsOf({{"q", q}, {"k", k}, {"v", v}}));
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("do not multiply") != std::string::npos);
  }
}

}  // namespace whittle
