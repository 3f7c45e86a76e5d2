// Shape rules of the com.microsoft ops that ONNX Runtime's transformer optimizer writes and
// that have their own output shapes: Attention, MultiHeadAttention, FusedMatMul and
// EmbedLayerNormalization; and the standard Attention of opset 23. (Gelu,
// BiasGelu, FastGelu, QuickGelu, RotaryEmbedding and the layer normalizations keep the input's
// shape: shape_inference_elementwise.cpp.)
#include <utility>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

constexpr std::string_view kMicrosoft = "com.microsoft";

/// num_heads, or nullopt when missing or not positive.
std::optional<int64_t> heads(const NodeContext& c) {
  int64_t n = c.node().attrInt("num_heads", 0);
  if (n <= 0 || n > kMaxAttr) return std::nullopt;
  return n;
}

/// Attention: output [B, S, Dv]; present [2, B, N, P + S, Dk / N].
void attention(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* w = c.shape(1);
  SymInt dk, dv;
  std::vector<int64_t> sizes = c.node().attrInts("qkv_hidden_sizes");
  if (sizes.size() == 3 && sizes[1] > 0 && sizes[2] > 0 && sizes[1] <= kMaxDim && sizes[2] <= kMaxDim) {
    dk = SymInt::of(sizes[1]);
    dv = SymInt::of(sizes[2]);
  } else if (sizes.empty() && w != nullptr && w->size() == 2) {
    dk = dv = divExact((*w)[1], SymInt::of(3));
  }
  if (x == nullptr || x->size() != 3) {
    c.set(0, c.dtype(0), std::nullopt);
    if (c.numOutputs() > 1) c.set(1, c.dtype(0), std::nullopt);
    return;
  }
  c.set(0, c.dtype(0), SymShape{(*x)[0], (*x)[1], dv});
  if (c.numOutputs() > 1) {
    auto n = heads(c);
    SymInt past = SymInt::of(0);
    if (c.has(4)) {
      const SymShape* p = c.shape(4);
      past = p != nullptr && p->size() == 5 ? (*p)[3] : SymInt();
    }
    SymInt head = n ? divExact(dk, SymInt::of(*n)) : SymInt();
    c.set(1, c.dtype(0),
          SymShape{SymInt::of(2), (*x)[0], n ? SymInt::of(*n) : SymInt(), past + (*x)[1], head});
  }
}

/// MultiHeadAttention: output [B, S, Dv]; present_key/present_value [B, N, P + L, head].
void multiHeadAttention(NodeContext& c) {
  const SymShape* q = c.shape(0);
  const SymShape* k = c.shape(1);
  const SymShape* v = c.shape(2);
  auto n = heads(c);
  SymInt batch, seq, dv, kvSeq, kHead, vHead;
  if (q != nullptr && q->size() == 3) {
    batch = (*q)[0];
    seq = (*q)[1];
    if (n) kHead = divExact((*q)[2], SymInt::of(*n));
  }
  if (k != nullptr && v != nullptr && k->size() == 3 && v->size() == 3) {
    dv = (*v)[2];
    kvSeq = (*k)[1];
    if (n) vHead = divExact(dv, SymInt::of(*n));
  } else if (k != nullptr && v != nullptr && k->size() == 4 && v->size() == 4) {
    vHead = (*v)[3];
    if (n) dv = vHead * SymInt::of(*n);
    kvSeq = (*k)[2];
  }
  if (c.has(6)) {
    const SymShape* pk = c.shape(6);
    kvSeq = pk != nullptr && pk->size() == 4 ? (*pk)[2] + kvSeq : SymInt();
  }
  if (q == nullptr || q->size() != 3) {
    for (size_t i = 0; i < c.numOutputs(); ++i) c.set(i, c.dtype(0), std::nullopt);
    return;
  }
  c.set(0, c.dtype(0), SymShape{batch, seq, dv});
  SymInt nh = n ? SymInt::of(*n) : SymInt();
  if (c.numOutputs() > 1) c.set(1, c.dtype(0), SymShape{batch, nh, kvSeq, kHead});
  if (c.numOutputs() > 2) c.set(2, c.dtype(0), SymShape{batch, nh, kvSeq, vHead});
}

/// FusedMatMul: numpy matmul of op(A) and op(B), where transBatch moves the first dim behind
/// the batch dims and trans swaps the last two.
void fusedMatMul(NodeContext& c) {
  auto operand = [&](size_t i, const char* trans, const char* transBatch) -> std::optional<SymShape> {
    const SymShape* s = c.shape(i);
    if (s == nullptr || s->empty()) return std::nullopt;
    SymShape d = *s;
    if (d.size() == 1) return d;
    if (c.node().attrInt(transBatch, 0) == 1 && d.size() > 2) {
      SymInt first = d.front();
      d.erase(d.begin());
      d.insert(d.end() - 1, first);
    }
    if (c.node().attrInt(trans, 0) == 1) std::swap(d[d.size() - 1], d[d.size() - 2]);
    return d;
  };
  auto a = operand(0, "transA", "transBatchA");
  auto b = operand(1, "transB", "transBatchB");
  if (!a || !b) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  SymShape am = a->size() == 1 ? SymShape{SymInt::of(1), (*a)[0]} : *a;
  SymShape bm = b->size() == 1 ? SymShape{(*b)[0], SymInt::of(1)} : *b;
  SymShape ab(am.begin(), am.end() - 2), bb(bm.begin(), bm.end() - 2);
  auto y = broadcast({&ab, &bb});
  if (!y) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  if (a->size() > 1) y->push_back(am[am.size() - 2]);
  if (b->size() > 1) y->push_back(bm.back());
  c.set(0, c.dtype(0), std::move(y));
}

/// EmbedLayerNormalization: output and embedding_sum [B, S, H] in the tables' type; mask_index
/// [B] int32.
void embedLayerNorm(NodeContext& c) {
  const SymShape* ids = c.shape(0);
  const SymShape* word = c.shape(2);
  std::optional<SymShape> y;
  if (ids != nullptr && ids->size() == 2 && word != nullptr && word->size() == 2) {
    y = SymShape{(*ids)[0], (*ids)[1], (*word)[1]};
  }
  c.set(0, c.dtype(2), y);
  if (c.numOutputs() > 1) {
    c.set(1, DataType::kInt32, ids != nullptr && !ids->empty() ? std::optional(SymShape{(*ids)[0]}) : std::nullopt);
  }
  if (c.numOutputs() > 2) c.set(2, c.dtype(2), y);
}

/// ONNX Attention (opset 23/24): Y [B, Hq, Sq, Dv] (rank 4) or [B, Sq, Hq * Dv] (rank 3);
/// present_key/present_value [B, Hkv, P + Skv, D|Dv]; qk_matmul_output [B, Hq, Sq, P + Skv].
void onnxAttention(NodeContext& c) {
  const SymShape* q = c.shape(0);
  const SymShape* k = c.shape(1);
  const SymShape* v = c.shape(2);
  const int64_t qh = c.node().attrInt("q_num_heads", 0), kvh = c.node().attrInt("kv_num_heads", 0);
  auto known = [](int64_t n) { return n > 0 && n <= kMaxAttr ? SymInt::of(n) : SymInt(); };
  SymInt batch, hq, hkv, sq, skv, d, dv;
  const bool rank4 = q != nullptr && q->size() == 4;
  if (rank4) {
    batch = (*q)[0], hq = (*q)[1], sq = (*q)[2], d = (*q)[3];
    if (k != nullptr && k->size() == 4) hkv = (*k)[1], skv = (*k)[2];
    if (v != nullptr && v->size() == 4) dv = (*v)[3];
  } else if (q != nullptr && q->size() == 3) {
    batch = (*q)[0], sq = (*q)[1], hq = known(qh), hkv = known(kvh);
    if (qh > 0) d = divExact((*q)[2], hq);
    if (k != nullptr && k->size() == 3) skv = (*k)[1];
    if (v != nullptr && v->size() == 3 && kvh > 0) dv = divExact((*v)[2], hkv);
  }
  SymInt total = skv;
  if (c.has(4)) {
    const SymShape* pk = c.shape(4);
    total = pk != nullptr && pk->size() == 4 ? (*pk)[2] + skv : SymInt();
  }
  if (q == nullptr || (q->size() != 3 && q->size() != 4)) {
    for (size_t i = 0; i < c.numOutputs(); ++i) c.set(i, c.dtype(0), std::nullopt);
    return;
  }
  c.set(0, c.dtype(0), rank4 ? SymShape{batch, hq, sq, dv} : SymShape{batch, sq, hq * dv});
  if (c.numOutputs() > 1) c.set(1, c.dtype(0), SymShape{batch, hkv, total, d});
  if (c.numOutputs() > 2) c.set(2, c.dtype(0), SymShape{batch, hkv, total, dv});
  if (c.numOutputs() > 3) c.set(3, c.dtype(0), SymShape{batch, hq, sq, total});
}

}  // namespace

void addTransformerRules(std::vector<RuleEntry>& rules) {
  rules.push_back({kMicrosoft, "Attention", attention});
  rules.push_back({kMicrosoft, "MultiHeadAttention", multiHeadAttention});
  rules.push_back({kMicrosoft, "FusedMatMul", fusedMatMul});
  rules.push_back({kMicrosoft, "EmbedLayerNormalization", embedLayerNorm});
  rules.push_back({"", "Attention", onnxAttention});
}

}  // namespace whittle::ir::shape
