// Step T of the CPU lowering (see lowering.h): attention written out as separate ops becomes one
// com.whittle.internal FusedAttention (kernels/cpu/fused_attention.h).
//
// Before: y = MatMul(Softmax(Add(Mul(MatMul(q, Transpose(k, [.., -1, -2])), c), mask), axis=-1), v)
//         with the Mul (or a Div by c) and the Add (either operand order) optional, c a scalar
//         float constant, and the Transpose optional (without it the MatMul reads k^T as it is);
//         or as torch's dynamo exporter writes scaled_dot_product_attention: the scale split over
//         both operands, MatMul(Mul(q, c1), Mul(k^T, c2)), and the Softmax's NaNs (a row the mask
//         rules out entirely) zeroed by Where(IsNaN(p), 0, p) before the second MatMul
// After:  y = FusedAttention(q, k, v, mask) with scale = c (or c1 c2), divide, k_transposed,
//         nan_to_zero
//
// What it saves (SmolLM2-135M at sequence 512, 1 thread): the [9, 512, 512] scores written and
// read by a Mul, an Add and a Softmax in every layer, the copy of K that the Transpose made, and
// half of both products, which the kernel skips where the causal mask rules keys out.
// Requires: every value that goes away has one reader and is neither a graph output nor kept;
// float32 values; q, k and v of known rank 2 or more, the mask no higher rank than the scores
// and c of rank 0 or 1 (an Add or Mul that raised the rank stays as it is).
#include <cmath>
#include <optional>
#include <vector>

#include "lower_pins.h"
#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {
namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

std::optional<size_t> rankOf(const ir::Value* v) {
  auto dims = ir::knownRankDims(v);
  if (!dims) return std::nullopt;
  return dims->size();
}

/// Whether `t` = Transpose(k) swaps the last two of k's known rank and nothing else.
bool swapsLastTwo(const ir::Node& t) {
  auto r = rankOf(t.input(0));
  if (!r || *r < 2) return false;
  const std::vector<int64_t> perm = t.attrInts("perm");
  if (perm.size() != *r) return false;
  for (size_t i = 0; i + 2 < *r; ++i) {
    if (perm[i] != static_cast<int64_t>(i)) return false;
  }
  return perm[*r - 2] == static_cast<int64_t>(*r - 1) && perm[*r - 1] == static_cast<int64_t>(*r - 2);
}

/// One attention chain, found backwards from its Softmax.
struct Chain {
  std::vector<ir::Node*> nodes;  // graph order
  ir::Value *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  float scale = 1.f;
  bool divide = false, kTransposed = true, nanToZero = false;
};

/// The Where(IsNaN(p), 0, p) that zeroes the NaNs of the Softmax output p (its only two readers,
/// the IsNaN read only by the Where, 0 a scalar constant): {IsNaN, Where}, else empty.
std::vector<ir::Node*> nanGuard(ir::Value* p, const Pins& pinned) {
  if (pinned(p) || p->uses().size() != 2) return {};
  ir::Node *isNan = nullptr, *where = nullptr;
  for (const ir::Value::Use& use : p->uses()) {
    if (use.implicit()) return {};
    if (isDefaultOp(use.user, "IsNaN")) isNan = use.user;
    if (isDefaultOp(use.user, "Where")) where = use.user;
  }
  if (isNan == nullptr || where == nullptr || where->numInputs() != 3 || soleReader(isNan->output(0), pinned) != where ||
      where->input(0) != isNan->output(0) || where->input(2) != p ||
      !ir::isScalarConstant(where->input(1), 0.0, 0.0, kSession)) {
    return {};
  }
  return {isNan, where};
}

/// `c` as a scale of the scores: a finite, non-zero scalar float constant of rank 0 or 1 (no
/// higher, so that it cannot raise the scores' rank).
std::optional<float> scaleConstant(const ir::Value* c) {
  auto value = ir::scalarConstant(c, kSession);
  auto rank = rankOf(c);
  if (!value || !rank || *rank > 1 || !std::isfinite(*value) || *value == 0 || c->dtype() != ir::DataType::kFloat) {
    return std::nullopt;
  }
  return static_cast<float>(*value);
}

/// The value `v` = Mul(x, c) or Mul(c, x) multiplies, read only by `reader`, with c a finite
/// scalar float constant of rank 0 or 1: {Mul, x, c}.
struct Scaled {
  ir::Node* mul = nullptr;
  ir::Value* x = nullptr;
  float c = 1.f;
};
std::optional<Scaled> scaledBy(ir::Value* v, const ir::Node* reader, const Pins& pinned) {
  ir::Node* n = v->producer();
  if (!isDefaultOp(n, "Mul") || n->numInputs() != 2 || soleReader(v, pinned) != reader) return std::nullopt;
  for (size_t i = 0; i < 2; ++i) {
    auto value = scaleConstant(n->input(1 - i));
    if (value && !ir::scalarConstant(n->input(i), kSession)) return Scaled{n, n->input(i), *value};
  }
  return std::nullopt;
}

std::optional<Chain> match(ir::Node* softmax, const Pins& pinned) {
  const ir::Attribute* axis = softmax->findAttribute("axis");
  auto rank = rankOf(softmax->input(0));
  if (axis == nullptr || !rank || *rank < 2 || (axis->i != -1 && axis->i != static_cast<int64_t>(*rank) - 1)) {
    return std::nullopt;
  }
  Chain c;
  // p = Softmax(x) read once, as the left operand of the second MatMul (through the NaN guard).
  ir::Value* p = softmax->output(0);
  std::vector<ir::Node*> guard = nanGuard(p, pinned);
  if (!guard.empty()) {
    p = guard.back()->output(0);
    c.nanToZero = true;
  }
  ir::Node* second = soleReader(p, pinned);
  if (!isDefaultOp(second, "MatMul") || second->input(0) != p || second->input(1) == p) {
    return std::nullopt;
  }
  c.v = second->input(1);
  std::vector<ir::Node*> back = {second};
  back.insert(back.end(), guard.rbegin(), guard.rend());
  back.push_back(softmax);
  ir::Value* x = softmax->input(0);
  ir::Node* n = x->producer();
  if (isDefaultOp(n, "Add") && soleReader(x, pinned) == softmax && n->numInputs() == 2) {
    // The scores are the operand a MatMul (through an optional scale) produced.
    for (size_t i = 0; i < 2 && c.mask == nullptr; ++i) {
      ir::Node* p = n->input(i)->producer();
      if (isDefaultOp(p, "MatMul") || isDefaultOp(p, "Mul") || isDefaultOp(p, "Div")) {
        c.mask = n->input(1 - i);
        x = n->input(i);
      }
    }
    if (c.mask == nullptr || !isFloat32(c.mask)) return std::nullopt;
    back.push_back(n);
    n = x->producer();
  }
  if ((isDefaultOp(n, "Mul") || isDefaultOp(n, "Div")) && soleReader(x, pinned) == back.back() && n->numInputs() == 2) {
    ir::Value* scores = nullptr;
    for (size_t i = 0; i < 2 && scores == nullptr; ++i) {
      if (n->opType() == "Div" && i == 1) break;
      auto value = scaleConstant(n->input(1 - i));
      if (value && isDefaultOp(n->input(i)->producer(), "MatMul")) {
        scores = n->input(i);
        c.scale = *value;
        c.divide = n->opType() == "Div";
      }
    }
    if (scores == nullptr) return std::nullopt;
    back.push_back(n);
    x = scores;
    n = x->producer();
  }
  if (!isDefaultOp(n, "MatMul") || soleReader(x, pinned) != back.back()) return std::nullopt;
  back.push_back(n);
  c.q = n->input(0);
  c.k = n->input(1);
  // The scale split over both operands (sqrt(1 / sqrt(D)) each): one scale on the product.
  const ir::Node* kReader = n;
  if (!c.divide && c.q != c.k) {
    auto sq = scaledBy(c.q, n, pinned), sk = scaledBy(c.k, n, pinned);
    const float both = sq && sk ? c.scale * sq->c * sk->c : 0.f;
    if (sq && sk && std::isfinite(both) && both != 0.f) {
      c.scale = both;
      c.q = sq->x;
      c.k = sk->x;
      back.push_back(sk->mul);
      back.push_back(sq->mul);
      kReader = sk->mul;
    }
  }
  if (ir::Node* t = c.k->producer(); isDefaultOp(t, "Transpose") && soleReader(c.k, pinned) == kReader && swapsLastTwo(*t)) {
    c.k = t->input(0);
    c.kTransposed = false;
    back.push_back(t);
  }
  for (const ir::Value* v : {c.q, c.k, c.v, softmax->output(0), second->output(0)}) {
    auto r = rankOf(v);
    if (!isFloat32(v) || !r || *r < 2) return std::nullopt;
  }
  // Neither the mask nor the scale may raise the scores' rank.
  if (rankOf(n->output(0)) != rank) return std::nullopt;
  if (c.mask != nullptr) {
    auto mr = rankOf(c.mask);
    if (!mr || *mr > *rank) return std::nullopt;
  }
  c.nodes.assign(back.rbegin(), back.rend());
  return c;
}

}  // namespace

int64_t fuseAttentionChains(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  // Each chain holds one Softmax and erases no other: the Softmaxes, collected first, stay valid.
  std::vector<ir::Node*> softmaxes;
  for (ir::Node* n : graph.nodes()) {
    if (isDefaultOp(n, "Softmax") && n->numInputs() == 1 && n->numOutputs() == 1) softmaxes.push_back(n);
  }
  int64_t count = 0;
  for (ir::Node* softmax : softmaxes) {
    std::optional<Chain> c = match(softmax, pinned);
    if (!c) continue;
    std::vector<ir::Value*> inputs = {c->q, c->k, c->v};
    if (c->mask != nullptr) inputs.push_back(c->mask);
    ir::Node* last = c->nodes.back();
    ir::replaceChain(graph, c->nodes, last->output(0), "FusedAttention", "com.whittle.internal", last->name(), inputs,
                     {ir::Attribute::makeFloat("scale", c->scale), ir::Attribute::makeInt("divide", c->divide),
                      ir::Attribute::makeInt("k_transposed", c->kTransposed),
                      ir::Attribute::makeInt("nan_to_zero", c->nanToZero)});
    ++count;
  }
  return count;
}

}  // namespace whittle::runtime
