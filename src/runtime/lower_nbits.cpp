// The block-wise weight lowering (see lowering.h): the portable form of a weight-only quantized
// MatMul runs on the same low-bit kernel as ONNX Runtime's MatMulNBits.
//
// Before: y = MatMul(a, DequantizeLinear(q, s, z; axis = 0, block_size = B))
//         q: int4/uint4/int8/uint8 [K, N] constant; s: float32 [ceil(K / B), N]; z like q or absent
// After:  y = com.microsoft.MatMulNBits(a, q', s', z'; K, N, bits, block_size = B)
//         q'[n, k] = q[k, n] + o (o = 8 for int4, 128 for int8, 0 for unsigned), packed as
//         MatMulNBits packs it; s'[n * blocks + b] = s[b, n]; z' = z + o (0 + o when absent)
//         W = (q' - z') * s' = (q - z) * s exactly.
// Also (foldWeightTransposes below): a constant 2-D Transpose read only as MatMul weights is folded.
//
// Requires: a float32; q, s, z constants; B a power of two >= 16; axis 0 of a 2-D q. The
// DequantizeLinear stays when something else reads its output (a tied embedding's Gather).
#include <algorithm>
#include <optional>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {

namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

bool isOp(const ir::Node* n, std::string_view op) { return n != nullptr && ir::isDefaultDomainOp(*n, {op}); }

/// Value i of an integer tensor of dtype int4/uint4/int8/uint8, as int.
int32_t intAt(const ir::Tensor& t, int64_t i) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(t.rawData());
  switch (t.dtype()) {
    case ir::DataType::kUint4: return (bytes[i >> 1] >> ((i & 1) * 4)) & 15;
    case ir::DataType::kInt4: {
      const int32_t v = (bytes[i >> 1] >> ((i & 1) * 4)) & 15;
      return v >= 8 ? v - 16 : v;
    }
    case ir::DataType::kInt8: return static_cast<int8_t>(bytes[i]);
    default: return bytes[i];
  }
}

struct Match {
  ir::Node* matmul;
  const ir::Tensor* q;
  const ir::Tensor* scale;
  const ir::Tensor* zp;
  int64_t blockSize, bits;
};

std::optional<Match> matchBlockwise(ir::Node& mm) {
  if (!isOp(&mm, "MatMul") || mm.numInputs() != 2 || mm.output(0) == nullptr) return std::nullopt;
  const ir::Value* a = mm.input(0);
  if (a == nullptr || a->type().dtype != ir::DataType::kFloat) return std::nullopt;
  ir::Node* dq = mm.input(1) != nullptr ? mm.input(1)->producer() : nullptr;
  if (!isOp(dq, "DequantizeLinear") || dq->numInputs() < 2) return std::nullopt;
  const int64_t blockSize = dq->attrInt("block_size", 0);
  if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0) return std::nullopt;
  const ir::Tensor* q = ir::constantOf(dq->input(0), kSession);
  const ir::Tensor* scale = ir::constantOf(dq->input(1), kSession);
  if (q == nullptr || scale == nullptr || q->rank() != 2 || scale->dtype() != ir::DataType::kFloat) return std::nullopt;
  int64_t axis = dq->attrInt("axis", 1);
  if (axis < 0) axis += 2;
  if (axis != 0) return std::nullopt;
  int64_t bits = 0;
  switch (q->dtype()) {
    case ir::DataType::kInt4:
    case ir::DataType::kUint4: bits = 4; break;
    case ir::DataType::kInt8:
    case ir::DataType::kUint8: bits = 8; break;
    default: return std::nullopt;
  }
  const int64_t k = q->dims()[0], n = q->dims()[1];
  const int64_t blocks = (k + blockSize - 1) / blockSize;
  if (scale->dims() != std::vector<int64_t>{blocks, n}) return std::nullopt;
  const ir::Tensor* zp = nullptr;
  if (dq->numInputs() > 2 && dq->input(2) != nullptr) {
    zp = ir::constantOf(dq->input(2), kSession);
    if (zp == nullptr || zp->dtype() != q->dtype() || zp->dims() != scale->dims()) return std::nullopt;
  }
  return Match{&mm, q, scale, zp, blockSize, bits};
}

void rewrite(ir::Graph& graph, const Match& m) {
  const int64_t k = m.q->dims()[0], n = m.q->dims()[1], bs = m.blockSize, bits = m.bits;
  const int64_t blocks = (k + bs - 1) / bs, blob = bs * bits / 8;
  const bool isSigned = m.q->dtype() == ir::DataType::kInt4 || m.q->dtype() == ir::DataType::kInt8;
  const int32_t offset = isSigned ? 1 << (bits - 1) : 0;
  ir::Tensor b(ir::DataType::kUint8, {n, blocks, blob});
  auto* bd = reinterpret_cast<uint8_t*>(b.mutableRawData());
  std::fill(bd, bd + b.numel(), uint8_t{0});
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t c = 0; c < n; ++c) {
      const auto u = static_cast<uint8_t>(intAt(*m.q, kk * n + c) + offset);
      uint8_t* col = bd + c * blocks * blob;
      if (bits == 4) {
        col[kk / 2] |= static_cast<uint8_t>(u << ((kk & 1) * 4));
      } else {
        col[kk] = u;
      }
    }
  }
  ir::Tensor s(ir::DataType::kFloat, {n * blocks});
  const int64_t zpPerCol = (blocks * bits + 7) / 8;
  ir::Tensor z(ir::DataType::kUint8, {n * zpPerCol});
  auto* zd = reinterpret_cast<uint8_t*>(z.mutableRawData());
  std::fill(zd, zd + z.numel(), uint8_t{0});
  for (int64_t c = 0; c < n; ++c) {
    for (int64_t bl = 0; bl < blocks; ++bl) {
      s.mutableData<float>()[c * blocks + bl] = m.scale->data<float>()[bl * n + c];
      const auto zv = static_cast<uint8_t>((m.zp != nullptr ? intAt(*m.zp, bl * n + c) : 0) + offset);
      if (bits == 4) {
        zd[c * zpPerCol + bl / 2] |= static_cast<uint8_t>(zv << ((bl & 1) * 4));
      } else {
        zd[c * zpPerCol + bl] = zv;
      }
    }
  }
  ir::Node* mm = m.matmul;
  const std::string base = mm->name().empty() ? mm->output(0)->name() : mm->name();
  ir::Value* bv = graph.addInitializer(graph.uniqueValueName(base + "_nbits_B"), std::move(b));
  ir::Value* sv = graph.addInitializer(graph.uniqueValueName(base + "_nbits_scales"), std::move(s));
  ir::Value* zv = graph.addInitializer(graph.uniqueValueName(base + "_nbits_zero_points"), std::move(z));
  ir::Value* oldB = mm->input(1);
  ir::Node* dq = oldB->producer();
  ir::replaceChain(graph, {mm}, mm->output(0), "MatMulNBits", "com.microsoft", mm->name(), {mm->input(0), bv, sv, zv},
                   {ir::Attribute::makeInt("K", k), ir::Attribute::makeInt("N", n), ir::Attribute::makeInt("bits", bits),
                    ir::Attribute::makeInt("block_size", bs)});
  if (!oldB->hasUses() && !oldB->isGraphOutput()) graph.eraseNode(dq);
}

/// Before: y = MatMul(a, Transpose(W))   W a constant float32 [N, K], perm [1, 0] or none
/// After:  y = MatMul(a, W') with W' = W^T a new initializer, so that the MatMul kernel packs a
///         constant once instead of transposing 2 x N x K floats on every run (a tied LM head:
///         SmolLM2's Transpose of its 49152 x 576 embedding took 170 ms of a 260 ms token).
/// The session holds W' beside W (ONNX Runtime's constant folding does the same); the saved
/// model is untouched.
void foldWeightTransposes(ir::Graph& graph, const std::unordered_set<const ir::Value*>& kept) {
  for (ir::Node* t : graph.nodes()) {
    if (!isOp(t, "Transpose") || t->numInputs() != 1 || t->output(0) == nullptr) continue;
    ir::Value* out = t->output(0);
    if (out->isGraphOutput() || kept.contains(out) || out->hasImplicitUses() || !out->hasUses()) continue;
    const ir::Tensor* w = ir::constantOf(t->input(0), kSession);
    if (w == nullptr || w->rank() != 2 || w->dtype() != ir::DataType::kFloat) continue;
    const std::vector<int64_t> perm = t->attrInts("perm", {1, 0});
    if (perm != std::vector<int64_t>{1, 0}) continue;
    bool onlyMatMulB = true;
    for (const auto& u : out->uses()) onlyMatMulB = onlyMatMulB && isOp(u.user, "MatMul") && u.index == 1;
    if (!onlyMatMulB) continue;
    const int64_t rows = w->dims()[0], cols = w->dims()[1];
    ir::Tensor wt(ir::DataType::kFloat, {cols, rows});
    const float* src = w->data<float>();
    float* dst = wt.mutableData<float>();
    constexpr int64_t kTile = 32;
    for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
          for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) dst[c * rows + r] = src[r * cols + c];
        }
      }
    }
    ir::Value* folded = graph.addInitializer(graph.uniqueValueName(out->name() + "_folded"), std::move(wt));
    graph.replaceAllUsesWith(out, folded);
    graph.eraseNode(t);
  }
}

}  // namespace

void lowerBlockwiseWeights(ir::Graph& graph, const std::vector<std::string>& keep) {
  std::unordered_set<const ir::Value*> kept;
  for (const std::string& name : keep) {
    if (const ir::Value* v = graph.findValue(name)) kept.insert(v);
  }
  foldWeightTransposes(graph, kept);
  std::vector<Match> matches;
  for (ir::Node* n : graph.nodes()) {
    if (auto m = matchBlockwise(*n); m && !kept.contains(n->input(1))) matches.push_back(*m);
  }
  for (const Match& m : matches) rewrite(graph, m);
}

}  // namespace whittle::runtime
