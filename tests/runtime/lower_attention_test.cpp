// Step T of the CPU lowering (src/runtime/lower_attention.cpp): attention written out as
// MatMul / Transpose / Mul or Div / Add / Softmax / MatMul becomes one FusedAttention, in the
// forms exporters write; each case checks the structure and that the lowered graph computes what
// the unlowered one does; negative cases check what must stay.
#include <catch2/catch.hpp>

#include <limits>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/lowering_check.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using whittle::testing::checkSameAsUnlowered;
using whittle::testing::findOp;
using whittle::testing::countOps;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;
using whittle::testing::opTypes;

namespace {

/// A causal additive mask [S, S] of `masked` above the diagonal.
ir::Tensor causal(int64_t s, float masked) {
  ir::Tensor t(ir::DataType::kFloat, {s, s});
  float* p = t.mutableData<float>();
  for (int64_t i = 0; i < s; ++i) {
    for (int64_t j = 0; j < s; ++j) p[i * s + j] = j > i ? masked : 0.f;
  }
  return t;
}

}  // namespace

TEST_CASE("Attention written out becomes one FusedAttention", "[runtime][lowering][attention]") {
  // SmolLM2's export: Transpose(k) read by the MatMul, Mul by 1/sqrt(d), Add of a causal mask
  // of -10000; and the other forms: Div by sqrt(d) with the mask first, no scale, no mask, k^T
  // given as it is.
  enum class Form { kSmolLM2, kDivMaskFirst, kNoScale, kNoMask, kKTransposedInput };
  const int64_t S = 40, D = 16;
  for (Form form : {Form::kSmolLM2, Form::kDivMaskFirst, Form::kNoScale, Form::kNoMask, Form::kKTransposedInput}) {
    INFO("form " << static_cast<int>(form));
    GraphBuilder b(50);
    ir::Value* q = b.input("q", ir::DataType::kFloat, {1, 3, S, D});
    const bool kt = form == Form::kKTransposedInput;
    ir::Value* k = b.input("k", ir::DataType::kFloat, kt ? std::vector<int64_t>{1, 3, D, S} : std::vector<int64_t>{1, 3, S, D});
    ir::Value* v = b.input("v", ir::DataType::kFloat, {1, 3, S, 24});
    ir::Value* mask = b.input("mask", ir::DataType::kFloat, {S, S});
    ir::Value* keys = kt ? k : b.node("Transpose", {k}, {ir::Attribute::makeInts("perm", {0, 1, 3, 2})}, "kt");
    ir::Value* s = b.node("MatMul", {q, keys}, {}, "qk");
    if (form == Form::kSmolLM2 || form == Form::kNoMask || form == Form::kKTransposedInput) {
      s = b.node("Mul", {s, b.constant("c", {1}, {0.25f})}, {}, "scale");
    } else if (form == Form::kDivMaskFirst) {
      s = b.node("Div", {s, b.constant("c", {}, {4.f})}, {}, "scale");
    }
    if (form == Form::kDivMaskFirst) {
      s = b.node("Add", {mask, s}, {}, "mask");
    } else if (form != Form::kNoMask) {
      s = b.node("Add", {s, mask}, {}, "mask");
    }
    ir::Value* p = b.node("Softmax", {s}, {ir::Attribute::makeInt("axis", -1)}, "softmax");
    b.output(b.node("MatMul", {p, v}, {}, "pv"));
    if (form == Form::kNoMask) b.output(mask);  // keeps the graph input used
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    REQUIRE(opTypes(*m.graph) == std::vector<std::string>{"FusedAttention"});
    const ir::Node* f = findOp(*m.graph, "FusedAttention");
    CHECK(f->numInputs() == (form == Form::kNoMask ? 3u : 4u));
    CHECK(f->attrInt("k_transposed", -1) == (kt ? 1 : 0));
    CHECK(f->attrInt("divide", -1) == (form == Form::kDivMaskFirst ? 1 : 0));
    CHECK(f->attrFloat("scale", 0) == (form == Form::kNoScale ? 1.f : form == Form::kDivMaskFirst ? 4.f : 0.25f));
    CHECK(m.graph->outputs()[0]->name() == "pv");
    checkSameAsUnlowered(model, {{"q", b.randomTensor(ir::DataType::kFloat, {1, 3, S, D}, -2, 2)},
                                 {"k", b.randomTensor(ir::DataType::kFloat, kt ? std::vector<int64_t>{1, 3, D, S}
                                                                               : std::vector<int64_t>{1, 3, S, D}, -2, 2)},
                                 {"v", b.randomTensor(ir::DataType::kFloat, {1, 3, S, 24})},
                                 {"mask", causal(S, -10000.f)}});
  }
}

TEST_CASE("Attention chains that must stay unfused", "[runtime][lowering][attention]") {
  const int64_t S = 12, D = 8;
  GraphBuilder b(51);
  ir::Value* q = b.input("q", ir::DataType::kFloat, {2, S, D});
  ir::Value* k = b.input("k", ir::DataType::kFloat, {2, S, D});
  ir::Value* v = b.input("v", ir::DataType::kFloat, {2, S, D});
  auto chain = [&](const std::string& n, int64_t axis, ir::Value* scale, ir::Value* mask) {
    ir::Value* s = b.node("MatMul", {q, b.node("Transpose", {k}, {ir::Attribute::makeInts("perm", {0, 2, 1})}, n + "t")},
                          {}, n + "qk");
    if (scale != nullptr) s = b.node("Mul", {s, scale}, {}, n + "scale");
    if (mask != nullptr) s = b.node("Add", {s, mask}, {}, n + "mask");
    ir::Value* p = b.node("Softmax", {s}, {ir::Attribute::makeInt("axis", axis)}, n + "softmax");
    return std::make_pair(s, b.node("MatMul", {p, v}, {}, n + "pv"));
  };
  b.output(chain("a", 1, nullptr, nullptr).second);  // softmax over the query axis
  auto [scores, y] = chain("b", -1, nullptr, nullptr);
  b.output(y);
  b.output(scores);  // the scores are an output
  b.output(chain("c", -1, b.weight("perkey", {S}), nullptr).second);  // a scale per key, not a scalar
  b.output(chain("d", -1, nullptr, b.constant("up", {1, 1, 1, S}, std::vector<float>(S, 0.f))).second);  // mask raises the rank
  ir::Model model = b.build(17);
  ir::Model m = lowered(model);
  CHECK(countOps(*m.graph, "FusedAttention") == 0);
  CHECK(countOps(*m.graph, "Softmax") == 4);
  checkSameAsUnlowered(model, {{"q", b.randomTensor(ir::DataType::kFloat, {2, S, D})},
                               {"k", b.randomTensor(ir::DataType::kFloat, {2, S, D})},
                               {"v", b.randomTensor(ir::DataType::kFloat, {2, S, D})}});
}

TEST_CASE("Attention as torch's dynamo exporter writes SDPA: the scale on both operands, NaNs zeroed",
          "[runtime][lowering][attention]") {
  // MatMul(Mul(q, c), Mul(Transpose(k), c)), Add of a mask of 0 / -inf, Softmax, then
  // Where(IsNaN(p), 0, p): a row the mask rules out entirely gives y = 0, not NaN.
  const int64_t S = 24, D = 16;
  const float inf = std::numeric_limits<float>::infinity();
  for (bool guardZero : {true, false}) {
    INFO((guardZero ? "Where(IsNaN(p), 0, p)" : "Where(IsNaN(p), 1, p) is no guard to fuse"));
    GraphBuilder b(51);
    ir::Value* q = b.input("q", ir::DataType::kFloat, {1, 2, S, D});
    ir::Value* k = b.input("k", ir::DataType::kFloat, {1, 2, S, D});
    ir::Value* v = b.input("v", ir::DataType::kFloat, {1, 2, S, 8});
    ir::Value* mask = b.input("mask", ir::DataType::kFloat, {1, 1, S, S});
    ir::Value* c = b.constant("c", {}, {0.5f});
    ir::Value* kt = b.node("Transpose", {k}, {ir::Attribute::makeInts("perm", {0, 1, 3, 2})}, "kt");
    ir::Value* s = b.node("MatMul", {b.node("Mul", {q, c}, {}, "qs"), b.node("Mul", {kt, c}, {}, "ks")}, {}, "qk");
    ir::Value* p = b.node("Softmax", {b.node("Add", {s, mask}, {}, "masked")}, {ir::Attribute::makeInt("axis", -1)}, "softmax");
    ir::Value* fill = b.constant("fill", {}, {guardZero ? 0.f : 1.f});
    ir::Value* guarded = b.node("Where", {b.node("IsNaN", {p}, {}, "isnan"), fill, p}, {}, "guard");
    b.output(b.node("MatMul", {guarded, v}, {}, "pv"));
    ir::Model model = b.build(18);
    ir::Model m = lowered(model);
    if (guardZero) {
      REQUIRE(opTypes(*m.graph) == std::vector<std::string>{"FusedAttention"});
      const ir::Node* f = findOp(*m.graph, "FusedAttention");
      CHECK(f->attrInt("nan_to_zero", -1) == 1);
      CHECK(f->attrInt("k_transposed", -1) == 0);
      CHECK(f->attrFloat("scale", 0) == 0.25f);
    } else {
      CHECK(countOps(*m.graph, "FusedAttention") == 0);
      CHECK(countOps(*m.graph, "Softmax") == 1);
    }
    // Causal, and the last query row masked out entirely.
    ir::Tensor maskValues(ir::DataType::kFloat, {1, 1, S, S});
    float* mv = maskValues.mutableData<float>();
    for (int64_t i = 0; i < S; ++i) {
      for (int64_t j = 0; j < S; ++j) mv[i * S + j] = j > i || i == S - 1 ? -inf : 0.f;
    }
    checkSameAsUnlowered(model, {{"q", b.randomTensor(ir::DataType::kFloat, {1, 2, S, D}, -2, 2)},
                                 {"k", b.randomTensor(ir::DataType::kFloat, {1, 2, S, D}, -2, 2)},
                                 {"v", b.randomTensor(ir::DataType::kFloat, {1, 2, S, 8})},
                                 {"mask", maskValues}});
  }
}
