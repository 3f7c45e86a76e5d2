// prune-wanda: activation-aware unstructured pruning (Wanda, Sun et al. 2023).
//
// Before: y = Conv(x, W)          (also Gemm(x, W, b), MatMul(x, W) with a constant 2-D W)
// After:  y = Conv(x, W')
//   score[o, j, ...] = |W[o, j, ...]| * a[j],   a[j] = sqrt(E[sum of x[:, j, ...]^2])
//   the input-channel activation norm over the calibration data; in every output row o the
//   round(sparsity * row) weights of smallest score become zero (scope=output, as in the
//   paper), or round(sparsity * |W|) across the whole layer (scope=layer).
// The norms come from the calibration provider of the PassContext (whittle optimize --calib):
// the pass observes, on a copy of the model, one scalar per input channel of each pruned
// layer, x_j's sum of squares per sample (ReduceSumSquare + Gather), and takes the mean of
// its histogram. Requires calibration data; the first and last layers stay dense by default.

#include <cmath>
#include <functional>
#include <map>

#include "pass_factories.h"
#include "prune_util.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/quant/calibration.h"

namespace whittle::passes {
namespace {

class PruneWanda final : public Pass {
 public:
  PruneWanda(double sparsity, bool perLayer, PruneScope scope) : sparsity_(sparsity), perLayer_(perLayer), scope_(scope) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  double sparsity_;
  bool perLayer_;
  PruneScope scope_;
};

// The channel axis of a layer's input: 1 for Conv, the last for Gemm/MatMul.
int64_t channelAxis(const ir::Node& n, int64_t rank) { return n.opType() == "Conv" ? 1 : rank - 1; }

// The mean of the observed values, from the histogram (the min when it is empty).
double histogramMean(const quant::Observation& o) {
  uint64_t total = 0;
  double sum = 0;
  const double width = 2.0 * o.histRange / static_cast<double>(quant::kHistogramBins);
  for (size_t i = 0; i < o.counts.size(); ++i) {
    total += o.counts[i];
    sum += static_cast<double>(o.counts[i]) * (-o.histRange + (static_cast<double>(i) + 0.5) * width);
  }
  return total > 0 ? std::max(0.0, sum / static_cast<double>(total)) : std::max(0.0f, o.min);
}

Status PruneWanda::run(ir::Model& model, PassContext& ctx) {
  if (ctx.calibration == nullptr) {
    return invalidInput("prune-wanda needs calibration data for the activation norms: whittle optimize --calib DATA");
  }
  ir::Graph& graph = *model.graph;
  std::vector<analysis::PrunableWeight> targets = pruneTargets(graph, scope_);
  // Observe, on a copy, one scalar per input channel of every distinct layer input.
  ir::Model probe = model.clone();
  ir::Graph& pg = *probe.graph;
  (void)ir::inferShapes(probe);
  const int64_t opset = model.opsetVersion("");
  std::map<std::string, std::vector<std::string>> channelNames;  // layer input -> one tensor per channel
  std::vector<std::string> observed;
  int64_t skipped = 0;
  for (const auto& t : targets) {
    const std::string& xName = t.node->input(0)->name();
    if (channelNames.contains(xName)) continue;
    ir::Value* x = pg.findValue(xName);
    if (x == nullptr || !x->type().shape || x->type().shape->size() < 2) {
      ++skipped;
      continue;
    }
    const int64_t rank = static_cast<int64_t>(x->type().shape->size());
    const int64_t axis = channelAxis(*t.node, rank);
    const ir::Dim& cd = (*x->type().shape)[static_cast<size_t>(axis)];
    if (!cd.isKnown()) {
      ++skipped;
      continue;
    }
    std::vector<int64_t> axes;
    for (int64_t a = 0; a < rank; ++a) {
      if (a != axis) axes.push_back(a);
    }
    std::vector<ir::Value*> inputs{x};
    std::vector<ir::Attribute> attrs{ir::Attribute::makeInt("keepdims", 0)};
    if (opset >= 18) {
      inputs.push_back(pg.addInitializer(pg.uniqueValueName(xName + "_wanda_axes"),
                                         ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(axes.size())}, axes)));
    }
    ir::Node* rss = pg.addNode("ReduceSumSquare", inputs, {xName + "_wanda_ss"}, pg.uniqueNodeName(xName + "_wanda"));
    if (opset < 18) rss->setAttribute(ir::Attribute::makeInts("axes", axes));
    rss->setAttribute(ir::Attribute::makeInt("keepdims", 0));
    rss->output(0)->mutableType().dtype = ir::DataType::kFloat;
    std::vector<std::string> names;
    for (int64_t c = 0; c < cd.value; ++c) {
      ir::Value* idx = pg.addInitializer(pg.uniqueValueName(xName + "_wanda_i"), ir::Tensor::fromVector(ir::DataType::kInt64, {}, std::vector<int64_t>{c}));
      ir::Node* g = pg.addNode("Gather", {rss->output(0), idx}, {xName + "_wanda_c" + std::to_string(c)},
                               pg.uniqueNodeName(xName + "_wanda_gather"));
      g->setAttribute(ir::Attribute::makeInt("axis", 0));
      g->output(0)->mutableType().dtype = ir::DataType::kFloat;
      g->output(0)->mutableType().shape = std::vector<ir::Dim>{};
      pg.addOutput(g->output(0));
      names.push_back(g->output(0)->name());
      observed.push_back(g->output(0)->name());
    }
    channelNames.emplace(xName, std::move(names));
  }
  if (observed.empty()) {
    ctx.note("prune-wanda: no layer with a known input channel count to prune");
    return Status::ok();
  }
  WH_ASSIGN_OR_RETURN(quant::CalibrationTable table, ctx.calibration->observe(probe, observed));

  int64_t layers = 0, pruned = 0, total = 0;
  for (const auto& t : targets) {
    auto it = channelNames.find(t.node->input(0)->name());
    if (it == channelNames.end()) continue;
    std::vector<double> norm;
    for (const std::string& name : it->second) {
      auto o = table.tensors.find(name);
      if (o == table.tensors.end()) return internalError("prune-wanda: the calibration gave no observation of '" + name + "'");
      norm.push_back(std::sqrt(histogramMean(o->second)));
    }
    const std::vector<int64_t>& dims = t.tensor->dims();
    std::span<const float> src = t.tensor->values<float>();
    std::vector<float> w(src.begin(), src.end());
    // Rows: (offsets of one output's weights, input channel of each).
    const std::string& op = t.node->opType();
    int64_t outputs = 0, perRow = 0;
    std::function<int64_t(int64_t, int64_t)> offset, channel;
    if (op == "Conv") {
      outputs = dims[0];
      const int64_t cg = dims[1];
      int64_t kernel = 1;
      for (size_t i = 2; i < dims.size(); ++i) kernel *= dims[i];
      perRow = cg * kernel;
      const int64_t groups = std::max<int64_t>(1, t.node->attrInt("group", 1));
      const int64_t perGroup = std::max<int64_t>(1, outputs / groups);
      offset = [=](int64_t o, int64_t k) { return o * perRow + k; };
      channel = [=](int64_t o, int64_t k) { return (o / perGroup) * cg + k / kernel; };
    } else {
      const bool transposed = op == "Gemm" && t.node->attrInt("transB", 0) != 0;
      const int64_t kdim = transposed ? dims[1] : dims[0];
      outputs = transposed ? dims[0] : dims[1];
      perRow = kdim;
      offset = [=](int64_t o, int64_t k) { return transposed ? o * kdim + k : k * outputs + o; };
      channel = [](int64_t, int64_t k) { return k; };
    }
    bool fits = true;
    for (int64_t o = 0; o < outputs && fits; ++o) fits = channel(o, perRow - 1) < static_cast<int64_t>(norm.size());
    if (!fits) {
      ++skipped;
      continue;
    }
    if (perLayer_) {
      std::vector<std::vector<float>> scores(1), all(1, w);
      scores[0].resize(w.size());
      for (int64_t o = 0; o < outputs; ++o) {
        for (int64_t k = 0; k < perRow; ++k) {
          const size_t at = static_cast<size_t>(offset(o, k));
          scores[0][at] = static_cast<float>(std::fabs(w[at]) * norm[static_cast<size_t>(channel(o, k))]);
        }
      }
      pruned += zeroLowestScores(scores, all, std::llround(sparsity_ * static_cast<double>(w.size())));
      w = std::move(all[0]);
    }
    for (int64_t o = 0; o < outputs && !perLayer_; ++o) {
      std::vector<std::vector<float>> scores(1), row(1);
      for (int64_t k = 0; k < perRow; ++k) {
        float v = w[static_cast<size_t>(offset(o, k))];
        row[0].push_back(v);
        scores[0].push_back(static_cast<float>(std::fabs(v) * norm[static_cast<size_t>(channel(o, k))]));
      }
      pruned += zeroLowestScores(scores, row, std::llround(sparsity_ * static_cast<double>(perRow)));
      for (int64_t k = 0; k < perRow; ++k) w[static_cast<size_t>(offset(o, k))] = row[0][static_cast<size_t>(k)];
    }
    total += static_cast<int64_t>(w.size());
    replaceWeight(graph, *t.node, ir::Tensor::fromVector(ir::DataType::kFloat, dims, w));
    ++layers;
  }
  removeDeadNodes(graph);
  if (skipped > 0) ctx.note("prune-wanda: " + std::to_string(skipped) + " layers left dense: their input channel count is unknown");
  ctx.stats().rewrites = layers;
  ctx.stats().counters["layers-pruned"] = layers;
  ctx.stats().counters["weights-pruned"] = pruned;
  ctx.stats().counters["weights-total"] = total;
  ctx.stats().counters["calibration-samples"] = table.samples;
  return Status::ok();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makePruneWanda(const PruneWandaOptions& options) {
  const PruneScope excluded{options.excludeFirstLast, options.excludeDepthwise};
  return std::unique_ptr<Pass>(std::make_unique<PruneWanda>(options.sparsity, options.scope == "layer", excluded));
}

}  // namespace whittle::passes
