// smooth-quant: SmoothQuant's exact per-channel rescaling before int8 quantization.
//
// Before: y_i = MatMul(x, W_i)     W_i constant [K, N_i]  (also Gemm(x, W_i[, c]) with transA = 0,
//                                                          alpha = 1; transB reads W_i as [N_i, K])
// After:  y_i = MatMul(x / s, diag(s) W_i)   for every weight that reads x
//   with 1/s folded into the op that makes x where one can take it exactly: the constant weight
//   of an RMSNorm/LayerNorm (a Mul by a [K] vector, LayerNormalization's scale and bias, a
//   decomposed LayerNorm's Mul + Add), the columns of a MatMul weight (directly, or through the
//   up projection of a gated MLP: Mul(act(gate), MatMul(h, U))); otherwise an explicit Mul.
// s_j = max|x_j|^alpha / max|W_j|^(1 - alpha) from one calibration run over the float model;
// alpha fixed or searched per input (quant/smoothquant.h). The model computes the same function
// (float rounding aside); int8 quantization that follows (quantize-int8, quantize-dynamic) sees
// activations without outlier channels. An input that other ops read too (a post-LN
// transformer's residual) is scaled by an explicit Mul on the MatMul branch only; weights shared
// with other nodes (a tied embedding) and non-constant weights are left alone.

#include <map>
#include <optional>
#include <set>

#include "input_scaling.h"
#include "name_patterns.h"
#include "pass_factories.h"
#include "whittle/quant/calibration.h"
#include "whittle/quant/collectors.h"
#include "whittle/quant/smoothquant.h"

namespace whittle::passes {
namespace {

// One MatMul/Gemm whose constant weight may be scaled.
struct Member {
  ir::Node* node;
  ir::Value* weight;
  bool kn;  // stored [K, N] (MatMul, Gemm transB = 0); otherwise [N, K]
  int64_t rows = 0, k = 0;
  std::vector<float> w;  // [N, K]
};

class SmoothQuant final : public Pass {
 public:
  SmoothQuant(double alpha, int grid, bool explicitMul, std::vector<std::string> excluded)
      : alpha_(alpha), grid_(grid), explicitMul_(explicitMul), excluded_(std::move(excluded)) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  // The member for `n`, or nullopt when its weight cannot be scaled.
  std::optional<Member> memberOf(ir::Node* n) const;
  double alpha_;
  int grid_;
  bool explicitMul_;
  NamePatterns excluded_;
};

std::optional<Member> SmoothQuant::memberOf(ir::Node* n) const {
  if (!n->domain().empty() || excluded_.matches(n->name())) return std::nullopt;
  const std::string& op = n->opType();
  if (op != "MatMul" && op != "Gemm") return std::nullopt;
  if (n->numInputs() < 2 || n->input(0) == nullptr || constantOf(n->input(0)) != nullptr) return std::nullopt;
  bool kn = true;
  if (op == "Gemm") {
    if (n->attrInt("transA", 0) != 0 || n->attrFloat("alpha", 1.0f) != 1.0f) return std::nullopt;
    kn = n->attrInt("transB", 0) == 0;
  }
  ir::Value* b = n->input(1);
  const ir::Tensor* t = constantOf(b);
  if (t == nullptr || t->dtype() != ir::DataType::kFloat || t->rank() != 2 || b->uses().size() != 1 || b->isGraphOutput()) {
    return std::nullopt;
  }
  Member m{n, b, kn, 0, 0, {}};
  const int64_t d0 = t->dims()[0], d1 = t->dims()[1];
  m.rows = kn ? d1 : d0;
  m.k = kn ? d0 : d1;
  const float* src = t->data<float>();
  m.w.resize(static_cast<size_t>(m.rows * m.k));
  for (int64_t i = 0; i < d0; ++i) {
    for (int64_t j = 0; j < d1; ++j) {
      m.w[static_cast<size_t>(kn ? j * d0 + i : i * d1 + j)] = src[i * d1 + j];
    }
  }
  return m;
}

// diag(s) W: row j of a [K, N] weight, column j of an [N, K] one.
void scaleWeight(const Member& m, std::span<const float> s) {
  ir::Tensor t = *constantOf(m.weight);
  float* d = t.mutableData<float>();
  const int64_t d0 = t.dims()[0], d1 = t.dims()[1];
  for (int64_t i = 0; i < d0; ++i) {
    for (int64_t j = 0; j < d1; ++j) d[i * d1 + j] *= s[static_cast<size_t>(m.kn ? i : j)];
  }
  m.weight->setConstant(std::move(t));
}

Status SmoothQuant::run(ir::Model& model, PassContext& ctx) {
  if (ctx.calibration == nullptr) {
    return invalidInput("smooth-quant needs calibration data for the activation ranges: whittle optimize --calib DATA");
  }
  ir::Graph& graph = *model.graph;
  // Groups: the MatMul/Gemm with scalable weights that read x. When x has other readers too
  // (a residual Add, a MatMul with a non-constant weight), only an explicit Mul can scale it.
  // In graph order (not pointer order), so that the written model is the same on every run.
  std::vector<std::pair<ir::Value*, std::vector<Member>>> groups;
  std::map<ir::Value*, size_t> groupOf;
  for (ir::Node* n : graph.nodes()) {
    if ((n->opType() != "MatMul" && n->opType() != "Gemm") || !n->domain().empty() || n->numInputs() < 2) continue;
    ir::Value* x = n->input(0);
    if (x == nullptr || constantOf(x) != nullptr) continue;
    std::optional<Member> m = memberOf(n);
    if (!m) continue;
    auto [it, added] = groupOf.emplace(x, groups.size());
    if (added) groups.emplace_back(x, std::vector<Member>{});
    groups[it->second].second.push_back(std::move(*m));
  }
  int64_t mismatched = 0;
  for (auto it = groups.begin(); it != groups.end();) {
    const int64_t k = it->second.front().k;
    bool ok = true;
    for (const Member& m : it->second) ok = ok && m.k == k;
    if (!ok) {
      ++mismatched;
      it = groups.erase(it);
    } else {
      ++it;
    }
  }
  if (groups.empty()) {
    ctx.note("smooth-quant: no MatMul/Gemm with a constant float weight used there alone");
    return Status::ok();
  }
  // Statistics of every group input, one streaming calibration run over the float model.
  std::vector<quant::InputStatsCollector> stats;  // one per group, in the groups' order
  stats.reserve(groups.size());
  std::map<std::string, quant::TensorCollector*> collectors;
  for (auto& [x, members] : groups) {
    stats.emplace_back(members.front().k, /*secondMoment=*/false);
    collectors[x->name()] = &stats.back();
  }
  WH_ASSIGN_OR_RETURN(int64_t samples, ctx.calibration->collect(model, collectors));
  quant::SmoothOptions options;
  options.alpha = alpha_;
  options.grid = grid_;
  int64_t folded = 0, explicitMuls = 0, unscaled = 0, unabsorbed = 0, scaledWeights = 0;
  double alphaSum = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    ir::Value* x = groups[g].first;
    const std::vector<Member>& members = groups[g].second;
    const quant::InputStatsCollector& st = stats[g];
    const int64_t k = st.channels();
    std::vector<std::span<const float>> ws;
    std::vector<int64_t> rows;
    for (const Member& m : members) {
      ws.emplace_back(m.w);
      rows.push_back(m.rows);
    }
    const std::vector<double> meanSq = st.meanSquare();
    const quant::ChannelStats channels{st.minValue(), st.maxValue(), meanSq};
    quant::SmoothResult r = quant::searchSmoothScales(ws, rows, k, channels, options);
    if (r.alpha < 0) {
      ++unscaled;
      continue;
    }
    std::set<const ir::Node*> group;
    std::vector<ir::Node*> nodes;
    for (const Member& m : members) {
      group.insert(m.node);
      nodes.push_back(m.node);
    }
    // Weights change in place (rows by this group's s, columns by the next group's 1/s), so a
    // member weight may absorb too; only the search of a later group sees its copy unscaled.
    InputAbsorber a = findInputAbsorber(x, k, group, [](const ir::Value*) { return true; });
    if (a.vector != nullptr || a.weight != nullptr || a.layerNorm != nullptr) {
      divideAbsorber(a, r.scales);
      ++folded;
    } else if (explicitMul_) {
      insertInputScale(graph, x, r.scales, nodes, "smooth");
      ++explicitMuls;
    } else {
      ++unabsorbed;
      continue;
    }
    for (const Member& m : members) scaleWeight(m, r.scales);
    scaledWeights += static_cast<int64_t>(members.size());
    alphaSum += r.alpha;
  }
  const int64_t smoothed = folded + explicitMuls;
  ctx.stats().rewrites = smoothed;
  ctx.stats().counters["inputs-smoothed"] = smoothed;
  ctx.stats().counters["inputs-folded"] = folded;
  ctx.stats().counters["weights-scaled"] = scaledWeights;
  ctx.stats().counters["calibration-samples"] = samples;
  if (unscaled > 0) ctx.stats().counters["inputs-unchanged"] = unscaled;
  if (smoothed > 0) {
    ctx.note("smooth-quant: " + std::to_string(smoothed) + " MatMul/Gemm input(s) smoothed (" + std::to_string(folded) +
             " folded into their producer, " + std::to_string(explicitMuls) + " by an explicit Mul), mean alpha " +
             std::to_string(alphaSum / static_cast<double>(smoothed)).substr(0, 4) +
             (unscaled > 0 ? "; " + std::to_string(unscaled) + " left alone: smoothing would not lower their W8A8 error" : ""));
  } else {
    ctx.note("smooth-quant: no input smoothed (" + std::to_string(unscaled) + " would not gain)");
  }
  if (unabsorbed > 0) {
    ctx.note("smooth-quant: " + std::to_string(unabsorbed) +
             " input(s) left alone: no producer absorbs 1/s exactly, or other ops read the input too (explicit-mul=false)");
  }
  if (mismatched > 0) {
    ctx.note("smooth-quant: " + std::to_string(mismatched) + " input(s) left alone: their MatMul/Gemm weights disagree on the channel count");
  }
  return Status::ok();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeSmoothQuant(const SmoothQuantOptions& options) {
  double alpha = -1;
  if (options.alpha != "auto") {
    try {
      size_t used = 0;
      alpha = std::stod(options.alpha, &used);
      if (used != options.alpha.size()) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      return invalidInput("smooth-quant: alpha must be auto or a number in [0, 1], got '" + options.alpha + "'");
    }
    if (!(alpha >= 0 && alpha <= 1)) {
      return invalidInput("smooth-quant: alpha must be auto or a number in [0, 1], got '" + options.alpha + "'");
    }
  }
  return std::unique_ptr<Pass>(
      std::make_unique<SmoothQuant>(alpha, static_cast<int>(options.grid), options.explicitMul, options.excludeNodes));
}

}  // namespace whittle::passes
