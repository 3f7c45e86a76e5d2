// Step M of the CPU lowering (see lowering.h): RMSNorm as Llama-family exports write it out
// becomes one com.whittle.internal RmsNorm (kernels/cpu/rms_norm.cpp).
//
// Before: y = Mul(Div(x, Sqrt(Add(ReduceMean(Mul(x, x), axes = [-1], keepdims = 1), eps))), w)
//         (Pow(x, 2) for the square; the Add's and the last Mul's operands in either order)
// After:  y = RmsNorm(x, w) with epsilon = eps
//
// What it saves (SmolLM2-135M at sequence 512, 1 thread): six passes over the [512, 576] hidden
// state, 61 times a run, become two over a row in cache.
// Requires: every value that goes away has one reader and is neither a graph output nor kept;
// float32; x of known rank with a static last dim H; eps a scalar constant; w a constant scalar
// or [.., H] with leading 1s, no higher rank than x.
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

/// Whether the ReduceMean averages only the last axis of a rank-`rank` input, keeping it.
bool meansLastAxis(const ir::Node& rm, int64_t rank) {
  if (rm.attrInt("keepdims", 1) != 1) return false;
  std::vector<int64_t> axes = rm.attrInts("axes");
  if (rm.numInputs() > 1 && rm.input(1) != nullptr) {
    const ir::Tensor* t = ir::constantOf(rm.input(1), kSession);
    if (t == nullptr || t->dtype() != ir::DataType::kInt64) return false;
    axes.assign(t->values<int64_t>().begin(), t->values<int64_t>().end());
  }
  return axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1);
}

/// The value squared by `sq` (Mul(x, x) or Pow(x, 2)), else nullptr.
ir::Value* squared(const ir::Node* sq) {
  if (isDefaultOp(sq, "Mul") && sq->numInputs() == 2 && sq->input(0) == sq->input(1)) return sq->input(0);
  if (isDefaultOp(sq, "Pow") && sq->numInputs() == 2 && ir::isScalarConstant(sq->input(1), 2.0, 0.0, kSession)) {
    return sq->input(0);
  }
  return nullptr;
}

}  // namespace

int64_t fuseRmsNorms(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  // Each match erases one ReduceMean and no other: collected first, they stay valid.
  std::vector<ir::Node*> means;
  for (ir::Node* n : graph.nodes()) {
    if (isDefaultOp(n, "ReduceMean") && n->numOutputs() == 1) means.push_back(n);
  }
  int64_t count = 0;
  for (ir::Node* rm : means) {
    ir::Node* sq = rm->input(0) != nullptr ? rm->input(0)->producer() : nullptr;
    ir::Value* x = squared(sq);
    auto xDims = ir::knownRankDims(x);
    if (x == nullptr || !isFloat32(x) || !xDims || xDims->empty() || xDims->back() <= 0 ||
        soleReader(sq->output(0), pinned) != rm || !meansLastAxis(*rm, static_cast<int64_t>(xDims->size()))) {
      continue;
    }
    const int64_t hidden = xDims->back();
    ir::Node* add = soleReader(rm->output(0), pinned);
    if (!isDefaultOp(add, "Add") || add->numInputs() != 2) continue;
    ir::Value* epsValue = ir::otherInput(*add, rm->output(0));
    auto eps = ir::scalarConstant(epsValue, kSession);
    auto epsDims = ir::knownRankDims(epsValue);
    if (!eps || !epsDims || epsDims->size() > xDims->size() || !(*eps >= 0) || !std::isfinite(*eps)) continue;
    ir::Node* root = soleReader(add->output(0), pinned);
    if (!isDefaultOp(root, "Sqrt")) continue;
    ir::Node* div = soleReader(root->output(0), pinned);
    if (!isDefaultOp(div, "Div") || div->input(0) != x || div->input(1) != root->output(0)) continue;
    ir::Node* mul = soleReader(div->output(0), pinned);
    if (!isDefaultOp(mul, "Mul") || mul->numInputs() != 2 || mul->input(0) == mul->input(1)) continue;
    ir::Value* w = ir::otherInput(*mul, div->output(0));
    const ir::Tensor* wt = ir::constantOf(w, kSession);
    if (wt == nullptr || wt->dtype() != ir::DataType::kFloat || wt->rank() > static_cast<int64_t>(xDims->size())) continue;
    bool shapeOk = wt->numel() == 1 || (wt->numel() == hidden && wt->rank() >= 1 && wt->dims().back() == hidden);
    if (!shapeOk || !isFloat32(mul->output(0))) continue;
    ir::replaceChain(graph, {sq, rm, add, root, div, mul}, mul->output(0), "RmsNorm", "com.whittle.internal",
                     mul->name(), {x, w}, {ir::Attribute::makeFloat("epsilon", static_cast<float>(*eps))});
    ++count;
  }
  return count;
}

}  // namespace whittle::runtime
