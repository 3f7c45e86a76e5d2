// Constant subgraphs evaluated once, when a plan is compiled (see plan.h: foldConstantNodes).
#include <algorithm>
#include <string>
#include <unordered_set>
#include <vector>

#include "plan.h"
#include "whittle/ir/fold.h"
#include "whittle/ir/rewrite.h"

namespace whittle::runtime::detail {
namespace {

// A folded node's outputs stay resident for the session's life; a node that would produce
// more than this (an Expand or Tile of a constant to a huge shape) keeps running per call.
constexpr size_t kMaxFoldedBytes = size_t{64} << 20;

bool foldable(const ir::Node& node, const std::unordered_set<std::string>& keep) {
  if (!ir::foldableOp(node) || node.inputs().empty()) return false;
  for (const ir::Value* in : node.inputs()) {
    if (in != nullptr && (!in->isInitializer() || in->isGraphInput())) return false;  // a graph input can be fed
  }
  for (const ir::Value* out : node.outputs()) {
    if (out != nullptr && (out->isGraphOutput() || keep.contains(out->name()))) return false;
  }
  return true;
}

}  // namespace

int64_t foldConstantNodes(ir::Model& model, const Backend& backend, int threads, const std::vector<std::string>& keep) {
  ir::Graph& graph = *model.graph;
  const std::unordered_set<std::string> kept(keep.begin(), keep.end());
  // Exporters such as Paddle2ONNX write every weight as a Constant node.
  ir::constantNodesToInitializers(graph, /*eraseNodes=*/true, keep);
  int64_t folded = 0;
  for (ir::Node* node : graph.nodes()) {  // topological: a fold's result feeds the next fold
    if (!foldable(*node, kept)) continue;
    std::vector<const ir::Tensor*> inputs;
    for (const ir::Value* in : node->inputs()) inputs.push_back(in != nullptr ? in->constant() : nullptr);
    auto outputs = evaluateNode(*node, model.opsetVersion(node->domain()), inputs, threads, backend);
    // An op that fails here fails again, with its own message, when the plan runs it.
    if (!outputs.isOk() || outputs->size() != node->numOutputs()) continue;
    size_t bytes = 0;
    for (const ir::Tensor& t : *outputs) bytes += t.byteSize();
    if (bytes > kMaxFoldedBytes) continue;
    ir::replaceOutputsWithConstants(graph, *node, std::move(*outputs));
    ++folded;
  }
  if (folded > 0) ir::removeDeadNodes(graph);
  return folded;
}

}  // namespace whittle::runtime::detail
