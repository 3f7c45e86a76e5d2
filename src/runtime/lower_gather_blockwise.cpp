// The block-wise embedding lowering (see lowering.h): a Gather from a block-wise quantized table
// dequantizes only the rows it gathers, as ONNX Runtime's GatherBlockQuantized does.
//
// Before: y = Gather(DequantizeLinear(q, s, z; axis = last, block_size = B), idx; axis = g)
//         q: int4/uint4/int8/uint8 constant [..., D]; s: float32 [..., ceil(D / B)]; z like q or
//         absent; g any axis but the last
// After:  y = com.microsoft.GatherBlockQuantized(q', idx, s, z'; gather_axis = g,
//         quantize_axis = last, block_size = B, bits)
//         int4/uint4: q' = q, z' = z (both default to 0 there too)
//         int8: q' = q + 128 as uint8, z' = z + 128 (absent: the op's default of 128)
//         uint8: q' = q, z' = z (absent: zeros, since the op's default is 128)
//         so (q' - z') * s = (q - z) * s exactly.
//
// Before, the whole table was dequantized on every run to gather a few rows: the MiniLM-L6
// intent classifier's 30,522 x 384 word embeddings (int8, blocks of 128) took 94 % of a run.
//
// Requires: q, s, z constants; B a power of two >= 16 (the op's rule); for 4-bit tables an even
// last dimension, and an even number of blocks per row when z is given (rows start on a byte).
// The DequantizeLinear stays when something else reads it (a tied LM head's MatMul).
#include <algorithm>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {

namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

struct Match {
  ir::Node* gather;
  ir::Node* dq;
  const ir::Tensor* q;
  const ir::Tensor* zp;  // nullptr when absent
  int64_t gatherAxis, blockSize, bits;
};

std::optional<Match> matchGather(ir::Node& g, const std::unordered_set<const ir::Value*>& kept) {
  if (!ir::isDefaultDomainOp(g, {"Gather"}) || g.numInputs() != 2 || g.output(0) == nullptr) return std::nullopt;
  ir::Node* dq = g.input(0) != nullptr ? g.input(0)->producer() : nullptr;
  if (dq == nullptr || !ir::isDefaultDomainOp(*dq, {"DequantizeLinear"}) || dq->numInputs() < 2) return std::nullopt;
  if (kept.contains(g.input(0))) return std::nullopt;
  const int64_t blockSize = dq->attrInt("block_size", 0);
  if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0) return std::nullopt;
  if (dq->attrInt("output_dtype", 0) != 0 && dq->attrInt("output_dtype", 0) != 1) return std::nullopt;
  const ir::Tensor* q = ir::constantOf(dq->input(0), kSession);
  const ir::Tensor* scale = ir::constantOf(dq->input(1), kSession);
  if (q == nullptr || scale == nullptr || q->rank() < 2 || scale->dtype() != ir::DataType::kFloat) return std::nullopt;
  const int64_t rank = q->rank();
  int64_t axis = dq->attrInt("axis", 1), gatherAxis = g.attrInt("axis", 0);
  if (axis < 0) axis += rank;
  if (gatherAxis < 0) gatherAxis += rank;
  if (axis != rank - 1 || gatherAxis < 0 || gatherAxis >= rank - 1) return std::nullopt;
  int64_t bits = 8;
  switch (q->dtype()) {
    case ir::DataType::kInt4:
    case ir::DataType::kUint4: bits = 4; break;
    case ir::DataType::kInt8:
    case ir::DataType::kUint8: break;
    default: return std::nullopt;
  }
  const int64_t d = q->dims().back(), blocks = (d + blockSize - 1) / blockSize;
  std::vector<int64_t> scaleDims = q->dims();
  scaleDims.back() = blocks;
  if (scale->dims() != scaleDims) return std::nullopt;
  const ir::Tensor* zp = nullptr;
  if (dq->numInputs() > 2 && dq->input(2) != nullptr) {
    zp = ir::constantOf(dq->input(2), kSession);
    if (zp == nullptr || zp->dtype() != q->dtype() || zp->dims() != scaleDims) return std::nullopt;
  }
  if (bits == 4 && (d % 2 != 0 || (zp != nullptr && blocks % 2 != 0))) return std::nullopt;
  return Match{&g, dq, q, zp, gatherAxis, blockSize, bits};
}

/// `t`'s bytes as uint8, each plus `offset` (mod 256).
ir::Tensor asUint8(const ir::Tensor& t, uint8_t offset) {
  ir::Tensor out(ir::DataType::kUint8, t.dims());
  const auto* src = reinterpret_cast<const uint8_t*>(t.rawData());
  auto* dst = reinterpret_cast<uint8_t*>(out.mutableRawData());
  for (int64_t i = 0; i < t.numel(); ++i) dst[i] = static_cast<uint8_t>(src[i] + offset);
  return out;
}

/// The table and zero points the op reads, made once per DequantizeLinear (two Gathers of one table share them).
using Operands = std::unordered_map<const ir::Node*, std::pair<ir::Value*, ir::Value*>>;

void rewrite(ir::Graph& graph, const Match& m, Operands& made) {
  ir::Node* g = m.gather;
  ir::Value* table = g->input(0);
  const std::string base = g->name().empty() ? g->output(0)->name() : g->name();
  ir::Value* q = m.dq->input(0);
  ir::Value* zp = m.zp != nullptr ? m.dq->input(2) : nullptr;
  if (auto it = made.find(m.dq); it != made.end()) {
    std::tie(q, zp) = it->second;
  } else if (m.q->dtype() == ir::DataType::kInt8) {
    q = graph.addInitializer(graph.uniqueValueName(base + "_table_u8"), asUint8(*m.q, 128));
    if (m.zp != nullptr) zp = graph.addInitializer(graph.uniqueValueName(base + "_zero_points_u8"), asUint8(*m.zp, 128));
  } else if (m.q->dtype() == ir::DataType::kUint8 && m.zp == nullptr) {
    const ir::Tensor& scale = *ir::constantOf(m.dq->input(1), kSession);
    ir::Tensor zeros(ir::DataType::kUint8, scale.dims());
    auto* z = reinterpret_cast<uint8_t*>(zeros.mutableRawData());
    std::fill(z, z + zeros.numel(), uint8_t{0});
    zp = graph.addInitializer(graph.uniqueValueName(base + "_zero_points"), std::move(zeros));
  }
  made[m.dq] = {q, zp};
  std::vector<ir::Value*> inputs = {q, g->input(1), m.dq->input(1)};
  if (zp != nullptr) inputs.push_back(zp);
  const int64_t rank = m.q->rank();
  ir::replaceChain(graph, {g}, g->output(0), "GatherBlockQuantized", "com.microsoft", g->name(), inputs,
                   {ir::Attribute::makeInt("gather_axis", m.gatherAxis), ir::Attribute::makeInt("quantize_axis", rank - 1),
                    ir::Attribute::makeInt("block_size", m.blockSize), ir::Attribute::makeInt("bits", m.bits)});
  if (table->hasUses() || table->hasImplicitUses() || table->isGraphOutput()) return;
  std::vector<ir::Value*> dqInputs;
  for (size_t i = 0; i < m.dq->numInputs(); ++i) dqInputs.push_back(m.dq->input(i));
  graph.eraseNode(m.dq);
  for (ir::Value* v : dqInputs) {  // an int8 table's original bytes, now read by nothing
    if (v != nullptr && !v->hasUses() && !v->hasImplicitUses() && v->producer() == nullptr && !v->isGraphInput() && !v->isGraphOutput()) {
      graph.eraseValue(v);
    }
  }
}

}  // namespace

int64_t lowerBlockwiseGathers(ir::Graph& graph, const std::vector<std::string>& keep) {
  std::unordered_set<const ir::Value*> kept;
  for (const std::string& name : keep) {
    if (const ir::Value* v = graph.findValue(name)) kept.insert(v);
  }
  std::vector<Match> matches;
  for (ir::Node* n : graph.nodes()) {
    if (auto m = matchGather(*n, kept)) matches.push_back(*m);
  }
  Operands made;
  for (const Match& m : matches) rewrite(graph, m, made);
  return static_cast<int64_t>(matches.size());
}

}  // namespace whittle::runtime
