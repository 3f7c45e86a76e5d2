#include "prune_util.h"

#include <algorithm>
#include <set>

namespace whittle::passes {

std::vector<analysis::PrunableWeight> pruneTargets(ir::Graph& graph, const PruneScope& scope) {
  std::vector<analysis::PrunableWeight> all = analysis::prunableWeights(graph);
  if (scope.excludeFirstLast && !all.empty()) {
    all.erase(all.begin());
    if (!all.empty()) all.pop_back();
  }
  std::vector<analysis::PrunableWeight> out;
  std::set<const ir::Value*> seen;
  for (const auto& w : all) {
    const bool depthwise = w.node->opType() == "Conv" && w.node->attrInt("group", 1) > 1 && w.tensor->rank() >= 3 &&
                           w.tensor->dims()[1] == 1;
    if (scope.excludeDepthwise && depthwise) continue;
    if (seen.insert(w.value).second) out.push_back(w);
  }
  return out;
}

void replaceWeight(ir::Graph& graph, ir::Node& node, ir::Tensor tensor) {
  ir::Value* old = node.input(1);
  if (old->isInitializer() && old->uses().size() == 1 && !old->isGraphOutput()) {
    old->setConstant(std::move(tensor));
    return;
  }
  ir::Value* fresh = graph.addInitializer(graph.uniqueValueName(old->name() + "_pruned"), std::move(tensor));
  fresh->mutableType() = old->type();
  // Every layer that shared the weight takes the pruned one.
  std::vector<ir::Value::Use> uses = old->uses();
  for (const ir::Value::Use& u : uses) {
    if (!u.implicit()) u.user->setInput(static_cast<size_t>(u.index), fresh);
  }
}

int64_t zeroLowestScores(const std::vector<std::vector<float>>& scores, std::vector<std::vector<float>>& weights,
                         int64_t count) {
  int64_t total = 0;
  for (const auto& s : scores) total += static_cast<int64_t>(s.size());
  count = std::clamp<int64_t>(count, 0, total);
  if (count == 0) return 0;
  std::vector<float> all;
  all.reserve(static_cast<size_t>(total));
  for (const auto& s : scores) all.insert(all.end(), s.begin(), s.end());
  std::nth_element(all.begin(), all.begin() + (count - 1), all.end());
  const float threshold = all[static_cast<size_t>(count - 1)];
  int64_t below = 0;
  for (const auto& s : scores) {
    for (float v : s) below += v < threshold ? 1 : 0;
  }
  int64_t equalLeft = count - below;  // elements equal to the threshold that go too
  int64_t newlyZero = 0;
  for (size_t l = 0; l < scores.size(); ++l) {
    for (size_t i = 0; i < scores[l].size(); ++i) {
      float s = scores[l][i];
      bool drop = s < threshold || (s == threshold && equalLeft > 0);
      if (s == threshold && equalLeft > 0) --equalLeft;
      if (!drop) continue;
      newlyZero += weights[l][i] != 0.0f ? 1 : 0;
      weights[l][i] = 0.0f;
    }
  }
  return newlyZero;
}

}  // namespace whittle::passes
