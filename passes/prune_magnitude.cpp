// prune-magnitude: unstructured pruning of the smallest weights.
//
// Before: y = Conv(x, W)          (also Gemm(x, W, b), MatMul(x, W) with a constant 2-D W)
// After:  y = Conv(x, W')
//   W'[i] = 0 for the round(sparsity * |W|) elements of smallest |W[i]| (scope=layer: in each
//   layer; scope=global: across every pruned layer at once, one threshold), else W[i].
// The first and the last prunable layers are left alone by default (exclude-first-last):
// they are small and the most sensitive. Ties are broken by position, so the sparsity
// reached is exactly the one asked for (unless a layer had more zeros to begin with).

#include <cmath>

#include "pass_factories.h"
#include "prune_util.h"

namespace whittle::passes {
namespace {

class PruneMagnitude final : public Pass {
 public:
  PruneMagnitude(double sparsity, bool global, PruneScope scope) : sparsity_(sparsity), global_(global), scope_(scope) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  double sparsity_;
  bool global_;
  PruneScope scope_;
};

Status PruneMagnitude::run(ir::Model& model, PassContext& ctx) {
  ir::Graph& graph = *model.graph;
  std::vector<analysis::PrunableWeight> targets = pruneTargets(graph, scope_);
  if (targets.empty()) {
    ctx.note("prune-magnitude: no Conv/Gemm/MatMul with a constant float weight to prune");
    return Status::ok();
  }
  std::vector<std::vector<float>> weights, scores;
  int64_t total = 0;
  for (const auto& t : targets) {
    std::span<const float> w = t.tensor->values<float>();
    weights.emplace_back(w.begin(), w.end());
    std::vector<float> s(w.size());
    for (size_t i = 0; i < w.size(); ++i) s[i] = std::fabs(w[i]);
    scores.push_back(std::move(s));
    total += static_cast<int64_t>(w.size());
  }
  int64_t pruned = 0;
  if (global_) {
    pruned = zeroLowestScores(scores, weights, std::llround(sparsity_ * static_cast<double>(total)));
  } else {
    for (size_t l = 0; l < targets.size(); ++l) {
      std::vector<std::vector<float>> s1{std::move(scores[l])};
      std::vector<std::vector<float>> w1{std::move(weights[l])};
      pruned += zeroLowestScores(s1, w1, std::llround(sparsity_ * static_cast<double>(w1[0].size())));
      weights[l] = std::move(w1[0]);
    }
  }
  int64_t zeros = 0;
  for (size_t l = 0; l < targets.size(); ++l) {
    for (float v : weights[l]) zeros += v == 0.0f ? 1 : 0;
    replaceWeight(graph, *targets[l].node,
                  ir::Tensor::fromVector(ir::DataType::kFloat, targets[l].tensor->dims(), weights[l]));
  }
  removeDeadNodes(graph);
  ctx.stats().rewrites = static_cast<int64_t>(targets.size());
  ctx.stats().counters["layers-pruned"] = static_cast<int64_t>(targets.size());
  ctx.stats().counters["weights-pruned"] = pruned;
  ctx.stats().counters["weights-zero"] = zeros;
  ctx.stats().counters["weights-total"] = total;
  return Status::ok();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makePruneMagnitude(const PruneMagnitudeOptions& options) {
  const PruneScope excluded{options.excludeFirstLast, options.excludeDepthwise};
  return std::unique_ptr<Pass>(std::make_unique<PruneMagnitude>(options.sparsity, options.scope == "global", excluded));
}

}  // namespace whittle::passes
