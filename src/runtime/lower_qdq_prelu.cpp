// PRelu QDQ groups as one int8 op (see lowering.h, lowerQdqPRelus).
//
// Before: yq = Q(PRelu(DQ(xq), slope))        slope a float constant, one value per channel of x
// After:  yq = com.whittle.internal.QLinearPRelu(xq, xs, xz, slope', ys, yz)   slope' = slope as [C]
//
// A one-value slope is a table (lowerQdqLookups takes LeakyRelu so); a slope per channel is not
// one 256-entry table, so before this the group ran in float between a DequantizeLinear and a
// QuantizeLinear, and MTCNN's Conv -> PRelu -> MaxPool -> Conv left int8 at every layer. The
// kernel (kernels/cpu/quant_prelu.cpp) computes the three ops as their float kernels do, so the
// result equals the group run node by node.
//
// Requires: per-tensor Q and DQ with constant scales and zero points (both given, uint8/int8),
// xq not a constant, x's rank known, the slope a float32 constant whose broadcast against x
// leaves one value per element of x's axis 1 (axis 0 of a 1-D x) or one value in all, and the
// PRelu output read only by the Q and not pinned. The DequantizeLinear stays for other readers.
#include <cstring>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {
namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;
constexpr const char* kInternalDomain = "com.whittle.internal";

bool isQuantType(ir::DataType t) { return t == ir::DataType::kUint8 || t == ir::DataType::kInt8; }

/// Whether Q/DQ `n` is per tensor with a constant float scale and a constant 8-bit zero point.
bool perTensorParams(const ir::Node& n) {
  if (n.numInputs() < 3 || n.attrInt("block_size", 0) != 0 || n.input(1) == nullptr || n.input(2) == nullptr) {
    return false;
  }
  const ir::Tensor* s = ir::constantOf(n.input(1), kSession);
  const ir::Tensor* z = ir::constantOf(n.input(2), kSession);
  return s != nullptr && s->dtype() == ir::DataType::kFloat && s->numel() == 1 && z != nullptr && z->numel() == 1 &&
         isQuantType(z->dtype());
}

/// The slope as one value per channel (axis 1, or 0 for a 1-D x) of an x of rank `rank` whose
/// channel count is `channels` (-1 when unknown), or nullopt when it broadcasts otherwise.
std::optional<ir::Tensor> channelSlope(const ir::Tensor& slope, int64_t rank, int64_t channels) {
  if (slope.dtype() != ir::DataType::kFloat || slope.rank() > rank) return std::nullopt;
  auto asVector = [&] {
    ir::Tensor t(ir::DataType::kFloat, {slope.numel()});
    std::memcpy(t.mutableRawData(), slope.rawData(), static_cast<size_t>(slope.numel()) * sizeof(float));
    return t;
  };
  if (slope.numel() == 1) return asVector();
  const int64_t axis = rank >= 2 ? 1 : 0;
  const int64_t offset = rank - slope.rank();  // slope's dim i lines up with x's dim offset + i
  for (int64_t i = 0; i < slope.rank(); ++i) {
    const int64_t d = slope.dims()[static_cast<size_t>(i)];
    if (offset + i == axis ? (channels < 0 || d != channels) : d != 1) return std::nullopt;
  }
  return asVector();
}

class PReluLowering {
 public:
  PReluLowering(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep) : graph_(graph), keep_(keep) {}

  int64_t run() {
    std::vector<ir::Node*> quantizes;
    for (ir::Node* n : graph_.nodes()) {
      if (ir::isDefaultDomainOp(*n, {"QuantizeLinear"})) quantizes.push_back(n);
    }
    int64_t count = 0;
    for (ir::Node* q : quantizes) count += lower(q) ? 1 : 0;
    return count;
  }

 private:
  bool pinned(const ir::Value* v) const {
    return v->isGraphOutput() || v->isGraphInput() || v->isInitializer() || keep_.contains(v) || v->hasImplicitUses();
  }

  bool lower(ir::Node* q) {
    if (q->numOutputs() != 1 || q->output(0) == nullptr || q->input(0) == nullptr || !perTensorParams(*q)) return false;
    ir::Value* y = q->input(0);
    ir::Node* prelu = y->producer();
    if (prelu == nullptr || !ir::isDefaultDomainOp(*prelu, {"PRelu"}) || prelu->numInputs() != 2) return false;
    if (pinned(y) || ir::onlyUse(y) == nullptr) return false;
    ir::Value* x = prelu->input(0);
    ir::Node* dq = x != nullptr ? x->producer() : nullptr;
    if (dq == nullptr || !ir::isDefaultDomainOp(*dq, {"DequantizeLinear"}) || !perTensorParams(*dq)) return false;
    ir::Value* xq = dq->input(0);
    if (xq == nullptr || ir::constantOf(xq, kSession) != nullptr) return false;
    const ir::DataType xType = ir::constantOf(dq->input(2), kSession)->dtype();
    if (xq->dtype() != ir::DataType::kUndefined && xq->dtype() != xType) return false;
    const ir::Tensor* slope = prelu->input(1) != nullptr ? ir::constantOf(prelu->input(1), kSession) : nullptr;
    if (slope == nullptr) return false;
    // x's shape: its own, or that of the tensor it dequantizes, or of the PRelu's output.
    const ir::Value* shaped = x->type().shape ? x : xq->type().shape ? xq : y->type().shape ? y : nullptr;
    if (shaped == nullptr) return false;
    const auto& shape = *shaped->type().shape;
    const int64_t rank = static_cast<int64_t>(shape.size());
    const size_t axis = rank >= 2 ? 1 : 0;
    const int64_t channels = rank > 0 && shape[axis].isKnown() ? shape[axis].value : -1;
    std::optional<ir::Tensor> perChannel = channelSlope(*slope, rank, channels);
    if (!perChannel) return false;
    ir::Value* slopeValue = graph_.addInitializer(graph_.uniqueValueName(prelu->name() + "_slope"), std::move(*perChannel));
    std::vector<ir::Node*> removed = {prelu, q};
    if (!pinned(x) && ir::onlyUse(x) != nullptr) removed.insert(removed.begin(), dq);
    ir::replaceChain(graph_, removed, q->output(0), "QLinearPRelu", kInternalDomain, prelu->name(),
                     {xq, dq->input(1), dq->input(2), slopeValue, q->input(1), q->input(2)}, {});
    return true;
  }

  ir::Graph& graph_;
  const std::unordered_set<const ir::Value*>& keep_;
};

}  // namespace

int64_t lowerQdqPRelus(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep) {
  return PReluLowering(graph, keep).run();
}

}  // namespace whittle::runtime
