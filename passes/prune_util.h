#pragma once
// Shared by the pruning passes (prune-magnitude, prune-nm, prune-channels).

#include <cstdint>
#include <vector>

#include "whittle/analysis/sparsity.h"
#include "whittle/ir/graph.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

/// Which prunable layers a pruning pass leaves dense (the exclude-first-last and
/// exclude-depthwise options, declared in passes/pass_options.h).
struct PruneScope {
  /// The first and the last prunable layers in graph order (the input stem and the classifier).
  bool excludeFirstLast;
  /// Depthwise convolutions (group = input channels): a few weights per channel, each a whole
  /// filter tap, and the layers that unstructured pruning hurts most (MobileNets).
  bool excludeDepthwise;
};

/// The prunable layers (analysis::prunableWeights) that `scope` does not exclude, each weight
/// once even when several layers share it.
std::vector<analysis::PrunableWeight> pruneTargets(ir::Graph& graph, const PruneScope& scope);

/// Gives `node` the weight `tensor` at input 1: in place when the node is the weight's only
/// user and it is an initializer, else as a new initializer named after the old one.
void replaceWeight(ir::Graph& graph, ir::Node& node, ir::Tensor tensor);

/// Zeros exactly `count` elements of smallest `score` across `scores` (the same shape as the
/// weights in `weights`; ties are broken by position). Returns the elements newly zeroed.
int64_t zeroLowestScores(const std::vector<std::vector<float>>& scores, std::vector<std::vector<float>>& weights,
                         int64_t count);

}  // namespace whittle::passes
