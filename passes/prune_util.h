#pragma once
// Shared by the pruning passes (prune-magnitude, prune-nm, prune-channels).

#include <cstdint>
#include <vector>

#include "whittle/analysis/sparsity.h"
#include "whittle/ir/graph.h"

namespace whittle::passes {

/// The prunable layers (analysis::prunableWeights), without the first and the last in graph
/// order when `excludeFirstLast` is set, and each weight once even when several layers share it.
std::vector<analysis::PrunableWeight> pruneTargets(ir::Graph& graph, bool excludeFirstLast);

/// Gives `node` the weight `tensor` at input 1: in place when the node is the weight's only
/// user and it is an initializer, else as a new initializer named after the old one.
void replaceWeight(ir::Graph& graph, ir::Node& node, ir::Tensor tensor);

/// Zeros exactly `count` elements of smallest `score` across `scores` (the same shape as the
/// weights in `weights`; ties are broken by position). Returns the elements newly zeroed.
int64_t zeroLowestScores(const std::vector<std::vector<float>>& scores, std::vector<std::vector<float>>& weights,
                         int64_t count);

}  // namespace whittle::passes
