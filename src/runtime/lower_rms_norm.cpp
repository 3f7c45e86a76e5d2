// Step M of the CPU lowering (see lowering.h): RMSNorm as Llama-family exports write it out
// becomes one com.whittle.internal RmsNorm (kernels/cpu/rms_norm.cpp).
//
// Before: y = Mul(Div(x, Sqrt(Add(ReduceMean(Mul(x, x), axes = [-1], keepdims = 1), eps))), w)
//         (Pow(x, 2) for the square; the Add's and the last Mul's operands in either order;
//         x times the reciprocal for the Div, as torch's exporters write rsqrt: Mul(x, Reciprocal(s))
//         from the dynamo exporter, Mul(x, Div(1, s)) from the TorchScript one; and a Cast to
//         float32 of the float32 normalized value before the weight, as the TorchScript exporter
//         leaves HF's `.to(input_dtype)`)
// After:  y = RmsNorm(x, w) with epsilon = eps
//
// What it saves (SmolLM2-135M at sequence 512, 1 thread): six passes over the [512, 576] hidden
// state, 61 times a run, become two over a row in cache.
// Requires: every value that goes away has one reader and is neither a graph output nor kept;
// float32; x of known rank with a static last dim H; eps a scalar constant; w a constant scalar
// or [.., H] with leading 1s, no higher rank than x.
#include <cmath>
#include <optional>
#include <utility>
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

/// The nodes from Sqrt's output `root` to x / root and that value: Div(x, root), Mul(x,
/// Reciprocal(root)) or Mul(x, Div(1, root)) (the Mul's operands in either order), then an optional
/// Cast to float32 (a no-op on float32). Every intermediate value has one reader.
std::optional<std::pair<std::vector<ir::Node*>, ir::Value*>> normalized(ir::Value* root, ir::Value* x,
                                                                         const Pins& pinned) {
  std::vector<ir::Node*> chain;
  ir::Node* next = soleReader(root, pinned);
  if (isDefaultOp(next, "Div") && next->numInputs() == 2 && next->input(0) == x && next->input(1) == root) {
    chain.push_back(next);
  } else {
    bool reciprocal = isDefaultOp(next, "Reciprocal") ||
                      (isDefaultOp(next, "Div") && next->numInputs() == 2 && next->input(1) == root &&
                       ir::isScalarConstant(next->input(0), 1.0, 0.0, kSession));
    if (!reciprocal) return std::nullopt;
    ir::Node* mul = soleReader(next->output(0), pinned);
    if (!isDefaultOp(mul, "Mul") || mul->numInputs() != 2 || ir::otherInput(*mul, next->output(0)) != x) {
      return std::nullopt;
    }
    chain = {next, mul};
  }
  ir::Value* out = chain.back()->output(0);
  ir::Node* cast = soleReader(out, pinned);
  if (isDefaultOp(cast, "Cast") && cast->attrInt("to", 0) == static_cast<int64_t>(ir::DataType::kFloat)) {
    chain.push_back(cast);
    out = cast->output(0);
  }
  return std::make_pair(chain, out);
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
    auto norm = normalized(root->output(0), x, pinned);
    if (!norm) continue;
    ir::Node* mul = soleReader(norm->second, pinned);
    if (!isDefaultOp(mul, "Mul") || mul->numInputs() != 2 || mul->input(0) == mul->input(1)) continue;
    ir::Value* w = ir::otherInput(*mul, norm->second);
    const ir::Tensor* wt = ir::constantOf(w, kSession);
    if (wt == nullptr || wt->dtype() != ir::DataType::kFloat || wt->rank() > static_cast<int64_t>(xDims->size())) continue;
    bool shapeOk = wt->numel() == 1 || (wt->numel() == hidden && wt->rank() >= 1 && wt->dims().back() == hidden);
    if (!shapeOk || !isFloat32(mul->output(0))) continue;
    std::vector<ir::Node*> chain = {sq, rm, add, root};
    chain.insert(chain.end(), norm->first.begin(), norm->first.end());
    chain.push_back(mul);
    ir::replaceChain(graph, chain, mul->output(0), "RmsNorm", "com.whittle.internal",
                     mul->name(), {x, w}, {ir::Attribute::makeFloat("epsilon", static_cast<float>(*eps))});
    ++count;
  }
  return count;
}

}  // namespace whittle::runtime
