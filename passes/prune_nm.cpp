// prune-nm: N:M structured sparsity along the reduction axis.
//
// Before: y = Conv(x, W)          (also Gemm, MatMul with a constant 2-D W)
// After:  y = Conv(x, W')
//   In every group of m consecutive weights along the reduction axis (input channels at each
//   output channel and kernel position for Conv; K at each output column for Gemm/MatMul),
//   the m - n of smallest |W| are zeroed, so at most n of every m are nonzero: the 2:4
//   pattern that sparse tensor cores run at twice the dense rate.
// Layers whose reduction length is not a multiple of m (the first Conv over RGB, depthwise
// Convs) are left alone and counted in "layers-skipped".

#include <algorithm>
#include <cmath>
#include <numeric>

#include "pass_factories.h"
#include "prune_util.h"

namespace whittle::passes {
namespace {

class PruneNm final : public Pass {
 public:
  PruneNm(int64_t n, int64_t m) : n_(n), m_(m) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  int64_t n_;
  int64_t m_;
};

Status PruneNm::run(ir::Model& model, PassContext& ctx) {
  ir::Graph& graph = *model.graph;
  int64_t layers = 0, skipped = 0, pruned = 0;
  std::vector<int64_t> order(static_cast<size_t>(m_));
  for (const analysis::PrunableWeight& t : pruneTargets(graph, PruneScope{false, false})) {
    auto groups = analysis::reductionGroups(*t.node, t.tensor->dims(), m_);
    if (!groups) {
      ++skipped;
      continue;
    }
    std::span<const float> src = t.tensor->values<float>();
    std::vector<float> w(src.begin(), src.end());
    const int64_t numGroups = static_cast<int64_t>(groups->size()) / m_;
    for (int64_t g = 0; g < numGroups; ++g) {
      const int64_t* idx = groups->data() + g * m_;
      std::iota(order.begin(), order.end(), 0);
      // Largest |w| first; ties keep the earlier element.
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return std::fabs(w[idx[a]]) > std::fabs(w[idx[b]]); });
      for (int64_t j = n_; j < m_; ++j) {
        float& v = w[idx[order[j]]];
        pruned += v != 0.0f ? 1 : 0;
        v = 0.0f;
      }
    }
    replaceWeight(graph, *t.node, ir::Tensor::fromVector(ir::DataType::kFloat, t.tensor->dims(), w));
    ++layers;
  }
  removeDeadNodes(graph);
  if (skipped > 0) {
    ctx.note("prune-nm: " + std::to_string(skipped) + " layers left dense: their reduction length is not a multiple of " +
             std::to_string(m_));
  }
  ctx.stats().rewrites = layers;
  ctx.stats().counters["layers-pruned"] = layers;
  ctx.stats().counters["layers-skipped"] = skipped;
  ctx.stats().counters["weights-pruned"] = pruned;
  return Status::ok();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makePruneNm(const PruneNmOptions& options) {
  if (options.n > options.m) {
    return invalidInput("prune-nm: options n=" + std::to_string(options.n) + " and m=" + std::to_string(options.m) +
                        ": n must be at most m");
  }
  return std::unique_ptr<Pass>(std::make_unique<PruneNm>(options.n, options.m));
}

}  // namespace whittle::passes
