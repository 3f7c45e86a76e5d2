// quantize-dynamic: int8 weights, activations quantized at run time (no calibration).
//
// Before: y = MatMul(x, W)            (or Gemm(x, W, b) with transA = 0 and a constant b; with
//                                      transB = 1 W is stored [N, K] and quantized transposed,
//                                      alpha goes into sW, beta into b: nn.Linear's export)
// After:
//   xq, sx, zx = DynamicQuantizeLinear(x)                      (uint8, per tensor, per run)
//   acc = MatMulInteger(xq, Wq, zx, 0)                          (Wq int8, per column or tensor)
//   y   = Cast(acc, float) * (sx * sW)     [+ b]
//   sW[n] = max_k |W[k, n]| / 127 (per column; one value per tensor with per-channel=false)
// This is ONNX Runtime's dynamic quantization of MatMul, the usual choice for transformer
// weights; ORT fuses the chain into DynamicQuantizeMatMul. Requires opset >= 11 (older models
// are converted by upgradeOpset) and a constant 2-D float W.
//
// With lstm=true, an LSTM with constant float W [dirs, 4H, input] and R [dirs, 4H, H] (layout 0)
// becomes ONNX Runtime's com.microsoft DynamicQuantizeLSTM, as its quantize_dynamic writes it:
// W and R int8, symmetric (zero point 0), one scale per direction and gate row (per-channel) or
// per direction, stored transposed as [dirs, input, 4H] and [dirs, H, 4H]; X and H_{t-1} are
// quantized to uint8 at run time inside the op. It is not standard ONNX (ONNX Runtime and
// whittle run it), hence opt-in; without it each LSTM gets a note naming the option.
//
// keep-sensitive=K (needs calibration data) keeps the K MatMul/Gemm whose W8A8 costs the model
// most out of it, as 8-bit weight-only (quantize-weights{bits=8} on those nodes) or float. The
// ranking is measured on calibration samples only, in two stages:
//   1. modeled: each layer's W8A8 output error relative to its output energy, from the input's
//      per-channel statistics (quant::smoothedW8A8Error with s = 1: a per-tensor uint8 step
//      over the input's range, int8 weights per column), one streaming calibration run;
//   2. measured: the top C of that ranking (sensitivity-candidates, 3K by default), one at a
//      time left float in the otherwise all-W8A8 model; each one's gain is how much the
//      relative squared error of the model's float outputs against the float model drops.
// The K largest gains are kept. Only the main graph's nodes are ranked.

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <set>

#include "fold_util.h"
#include "pass_factories.h"
#include "widen_half.h"
#include "whittle/passes/upgrade_opset.h"
#include "whittle/quant/calibration.h"
#include "whittle/quant/collectors.h"
#include "whittle/quant/qdq.h"
#include "whittle/quant/quant_math.h"
#include "whittle/quant/smoothquant.h"
#include "whittle/runtime/session.h"
#include "name_patterns.h"
#include "subgraph_bodies.h"
#include "subgraph_float.h"

namespace whittle::passes {
namespace {

// From QuantizeDynamicOptions (passes/pass_options.h, where the defaults are).
struct DynamicConfig {
  bool perChannel;
  bool reduceRange;
  std::set<std::string> opTypes;
  std::set<std::string> excludeOpTypes;
  std::vector<std::string> excludeNodes;
  int64_t keepSensitive = 0;
  std::string keepFormat;  // matmulnbits | qdq | float
  int64_t sensitivitySamples = 2;
  int64_t sensitivityCandidates = 0;  // 0: 3 x keepSensitive
  bool lstm = false;
};

using Feeds = std::vector<std::vector<std::pair<std::string, ir::Tensor>>>;
using Outputs = std::vector<std::map<std::string, ir::Tensor>>;

/// The model's float outputs on every feed set.
Expected<Outputs> runOutputs(const ir::Model& model, const Feeds& feeds, int threads) {
  runtime::SessionOptions options;
  options.threads = threads;
  WH_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, options));
  Outputs results;
  for (const auto& feed : feeds) {
    WH_ASSIGN_OR_RETURN(auto outs, session->run(std::vector<runtime::NamedTensor>(feed.begin(), feed.end())));
    std::map<std::string, ir::Tensor> byName;
    for (auto& [name, t] : outs) {
      if (t.dtype() == ir::DataType::kFloat) byName[name] = std::move(t);
    }
    results.push_back(std::move(byName));
  }
  return results;
}

/// sum |y - r|^2 / sum |r|^2 per output, averaged over the outputs and feed sets.
double relativeOutputError(const Outputs& got, const Outputs& expected) {
  double total = 0;
  int64_t terms = 0;
  for (size_t f = 0; f < got.size() && f < expected.size(); ++f) {
    for (const auto& [name, r] : expected[f]) {
      auto it = got[f].find(name);
      if (it == got[f].end() || it->second.numel() != r.numel()) continue;
      const float* y = it->second.data<float>();
      const float* e = r.data<float>();
      double err = 0, energy = 0;
      for (int64_t i = 0; i < r.numel(); ++i) {
        const double d = static_cast<double>(y[i]) - e[i];
        err += d * d;
        energy += static_cast<double>(e[i]) * e[i];
      }
      total += energy > 0 ? err / energy : err;
      ++terms;
    }
  }
  return terms > 0 ? total / static_cast<double>(terms) : 0.0;
}

/// In `graph` (a copy of the model after quantizeGraph, which filled `replaced`: original output
/// name -> the W8A8 chain's result), `original`'s chain (a MatMul/Gemm of the model before it)
/// gives way to a copy of `original`: its input, its float weight (the model's tensor, shared) and,
/// for Gemm, its bias and attributes.
Status restoreFloatNode(ir::Graph& graph, const ir::Node& original, const std::map<std::string, std::string>& replaced) {
  auto valueFor = [&](const std::string& name) {  // an input may itself be a rewritten node's output
    auto it = replaced.find(name);
    return graph.findValue(it != replaced.end() ? it->second : name);
  };
  auto chain = replaced.find(original.output(0)->name());
  ir::Value* y = chain == replaced.end() ? nullptr : graph.findValue(chain->second);
  if (y == nullptr) return internalError("quantize-dynamic: keep-sensitive: no W8A8 chain for node '" + original.name() + "'");
  std::vector<ir::Value*> inputs;
  for (size_t i = 0; i < original.numInputs(); ++i) {
    const ir::Value* in = original.input(i);
    ir::Value* here = in == nullptr ? nullptr : valueFor(in->name());
    if (in != nullptr && here == nullptr && i > 0) {  // the float weight, gone from the quantized graph
      const ir::Tensor* w = ir::constantOf(in);
      if (w == nullptr) return internalError("quantize-dynamic: keep-sensitive: input '" + in->name() + "' is not a constant");
      here = graph.addInitializer(graph.uniqueValueName(in->name()), *w);
    }
    if (in != nullptr && here == nullptr) {
      return internalError("quantize-dynamic: keep-sensitive: input '" + in->name() + "' of '" + original.name() + "' is gone");
    }
    inputs.push_back(here);
  }
  ir::Node* n = graph.addNode(original.opType(), inputs, {graph.uniqueValueName(original.name() + "_float")},
                              graph.uniqueNodeName(original.name() + "_float"), original.domain(), y->producer());
  for (const ir::Attribute& a : original.attributes()) n->setAttribute(a);
  n->output(0)->mutableType() = y->type();
  graph.replaceAllUsesWith(y, n->output(0));
  removeDeadNodes(graph);
  return graph.topologicalSort();
}

/// One layer's rank: the modeled relative error, then the measured gain (when measured).
struct Sensitivity {
  std::string node;
  double modeled = 0;
  double gain = 0;
  bool measured = false;
};

/// Whether a selected MatMul/Gemm stores its weight [N, K] (a Gemm with transB = 1).
bool weightTransposed(const ir::Node& n) { return n.opType() == "Gemm" && n.attrInt("transB", 0) != 0; }

/// The weight of a selected MatMul/Gemm as [K, N].
ir::Tensor weightKN(const ir::Node& n, const ir::Tensor& w) {
  if (!weightTransposed(n)) return w;
  const int64_t rows = w.dims()[0], cols = w.dims()[1];
  std::vector<float> t(static_cast<size_t>(rows * cols));
  const float* d = w.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = d[r * cols + c];
  }
  return ir::Tensor::fromVector(ir::DataType::kFloat, {cols, rows}, t);
}

class QuantizeDynamic final : public Pass {
 public:
  explicit QuantizeDynamic(DynamicConfig c) : config_(std::move(c)), excluded_(config_.excludeNodes) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  /// `body`: the decoded If/Loop/Scan body `n` is in, null in the main graph.
  bool selected(const ir::Node& n, const DecodedBody* body) const;
  /// Rewrites the selected nodes of one graph but those named in `keep`; returns how many.
  /// `replaced` (when given) maps each rewritten node's output name to the name of the value that
  /// now stands for it.
  Expected<int64_t> quantizeGraph(ir::Graph& graph, const DecodedBody* body, const std::set<std::string>& keep = {},
                                  std::map<std::string, std::string>* replaced = nullptr) const;
  /// keep-sensitive: the ranking (file comment), most sensitive first; the first K are kept.
  Expected<std::vector<Sensitivity>> rankSensitivity(ir::Model& model, PassContext& ctx) const;
  /// The kept nodes to 8-bit weight-only (quantize-weights on them alone).
  Status quantizeKept(ir::Model& model, PassContext& ctx, const std::set<std::string>& keep) const;
  /// Whether `n` is an LSTM this pass writes as DynamicQuantizeLSTM (lstm=true).
  bool selectedLstm(const ir::Node& n, const DecodedBody* body) const;
  /// Rewrites the selected LSTMs of one graph; returns how many.
  Expected<int64_t> quantizeLstms(ir::Graph& graph, const DecodedBody* body) const;
  DynamicConfig config_;
  NamePatterns excluded_;
};

bool QuantizeDynamic::selected(const ir::Node& n, const DecodedBody* body) const {
  if (!n.domain().empty()) return false;
  const std::string& op = n.opType();
  if (op != "MatMul" && op != "Gemm") return false;
  if (!config_.opTypes.empty() && !config_.opTypes.contains(op)) return false;
  if (config_.excludeOpTypes.contains(op)) return false;
  if (excluded_.matches(n.name())) return false;
  const ir::Value* x = n.input(0);
  if (x == nullptr || constantIn(x, body) != nullptr || (x->dtype() != ir::DataType::kFloat && x->dtype() != ir::DataType::kUndefined)) return false;
  const ir::Tensor* w = constantIn(n.input(1), body);
  if (w == nullptr || w->dtype() != ir::DataType::kFloat || w->rank() != 2) return false;
  if (op == "Gemm") {
    if (n.attrInt("transA", 0) != 0 || !std::isfinite(n.attrFloat("alpha", 1.0f))) return false;
    const ir::Value* c = n.numInputs() > 2 ? n.input(2) : nullptr;
    if (c != nullptr && (constantIn(c, body) == nullptr || constantIn(c, body)->dtype() != ir::DataType::kFloat)) return false;
    // Gemm's input is 2-D; MatMulInteger then gives the same [M, N].
  }
  return true;
}

bool QuantizeDynamic::selectedLstm(const ir::Node& n, const DecodedBody* body) const {
  if (!config_.lstm || !n.domain().empty() || n.opType() != "LSTM") return false;
  if (!config_.opTypes.empty() && !config_.opTypes.contains("LSTM")) return false;
  if (config_.excludeOpTypes.contains("LSTM") || excluded_.matches(n.name())) return false;
  if (n.attrInt("layout", 0) != 0) return false;  // DynamicQuantizeLSTM has no layout attribute
  const ir::Value* x = n.input(0);
  if (x == nullptr || (x->dtype() != ir::DataType::kFloat && x->dtype() != ir::DataType::kUndefined)) return false;
  const ir::Tensor* w = constantIn(n.input(1), body);
  const ir::Tensor* r = constantIn(n.input(2), body);
  return w != nullptr && r != nullptr && w->dtype() == ir::DataType::kFloat && r->dtype() == ir::DataType::kFloat &&
         w->rank() == 3 && r->rank() == 3 && w->dims()[0] == r->dims()[0] && w->dims()[1] == r->dims()[1];
}

Status QuantizeDynamic::run(ir::Model& model, PassContext& ctx) {
  // Weights computed from constants alone (ConstantOfShape fills, ...) are folded first, however
  // large, so that they are quantized as initializers are (quantize-int8 does the same).
  {
    std::vector<const ir::Value*> weights;
    for (const ir::Node* n : model.graph->nodes()) {
      if (!n->domain().empty() || excluded_.matches(n->name())) continue;
      const std::string& op = n->opType();
      const bool product = (op == "MatMul" || op == "Gemm") && (config_.opTypes.empty() || config_.opTypes.contains(op)) &&
                           !config_.excludeOpTypes.contains(op);
      const size_t last = product ? 2 : config_.lstm && op == "LSTM" ? 3 : 0;
      for (size_t i = 1; i <= last && i < n->numInputs(); ++i) weights.push_back(n->input(i));
    }
    WH_ASSIGN_OR_RETURN(int64_t computed, foldComputedConstants(model, weights, ctx));
    if (computed > 0) {
      ctx.note("quantize-dynamic: folded " + std::to_string(computed) +
               " node(s) that compute weights from constants (ConstantOfShape, ...), to quantize those weights");
    }
  }
  // The bodies of If/Loop/Scan nodes (at any depth) are quantized as the main graph is: each is
  // decoded, rewritten and stored back.
  WH_ASSIGN_OR_RETURN(auto bodies, decodeBodies(*model.graph));
  auto count = [&]() {
    int64_t found = 0;
    for (const ir::Node* n : model.graph->nodes()) found += selected(*n, nullptr) || selectedLstm(*n, nullptr) ? 1 : 0;
    for (const auto& body : bodies) {
      for (const ir::Node* n : body->graph().nodes()) found += selected(*n, body.get()) || selectedLstm(*n, body.get()) ? 1 : 0;
    }
    return found;
  };
  // A half model (float16/bfloat16 weights and compute): widened to float32 first, so that its
  // MatMul/Gemm weights can be quantized; its inputs and outputs keep their half types.
  int64_t found = count();
  if (found == 0) {
    WH_ASSIGN_OR_RETURN(bool widened, widenHalfForQuantizing(model, ctx, "quantize-dynamic"));
    if (widened) found = count();
  }
  if (found == 0) {
    noteFloatWeightOps(*model.graph, ctx, "quantize-dynamic");
    for (const auto& body : bodies) noteFloatWeightOps(body->graph(), ctx, "quantize-dynamic");
    ctx.note(config_.lstm ? "quantize-dynamic: no MatMul/Gemm with a constant 2-D weight or LSTM with constant weights to quantize"
                          : "quantize-dynamic: no MatMul/Gemm with a constant 2-D weight to quantize");
    return Status::ok();
  }
  if (model.opsetVersion("") < 11) {
    // DynamicQuantizeLinear is an opset-11 op. The conversion replaces the graph: decode again.
    auto up = upgradeOpset(model, 11);
    if (!up.isOk()) return up.status().withContext("quantize-dynamic needs opset 11 (DynamicQuantizeLinear)");
    ctx.note("quantize-dynamic: upgraded the model for DynamicQuantizeLinear, " + up->summary());
    WH_ASSIGN_OR_RETURN(bodies, decodeBodies(*model.graph));
  }
  std::set<std::string> keep;
  if (config_.keepSensitive > 0) {
    const auto started = std::chrono::steady_clock::now();
    WH_ASSIGN_OR_RETURN(std::vector<Sensitivity> ranked, rankSensitivity(model, ctx));
    std::string list;
    int64_t measured = 0;
    for (size_t i = 0; i < ranked.size(); ++i) {
      measured += ranked[i].measured ? 1 : 0;
      if (static_cast<int64_t>(i) >= config_.keepSensitive) continue;
      keep.insert(ranked[i].node);
      char buf[96];
      if (ranked[i].measured) {
        std::snprintf(buf, sizeof buf, " (gain %.3g, modeled %.3g)", ranked[i].gain, ranked[i].modeled);
      } else {
        std::snprintf(buf, sizeof buf, " (modeled %.3g)", ranked[i].modeled);
      }
      list += (list.empty() ? "" : ", ") + ranked[i].node + buf;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char head[160];
    std::snprintf(head, sizeof head, "quantize-dynamic: keep-sensitive kept %zu of %zu MatMul/Gemm out of W8A8 as %s "
                  "(%lld measured end to end on %lld calibration samples, %.1f s): ",
                  keep.size(), ranked.size(), config_.keepFormat == "float" ? "float" : ("8-bit " + config_.keepFormat).c_str(),
                  static_cast<long long>(measured), static_cast<long long>(config_.sensitivitySamples), seconds);
    ctx.note(head + list);
    ctx.stats().counters["kept-sensitive"] = static_cast<int64_t>(keep.size());
    ctx.stats().counters["sensitivity-trials"] = measured;
  }
  WH_ASSIGN_OR_RETURN(int64_t lstms, quantizeLstms(*model.graph, nullptr));
  WH_ASSIGN_OR_RETURN(int64_t done, quantizeGraph(*model.graph, nullptr, keep));
  int64_t inBodies = 0;
  for (const auto& body : bodies) {
    WH_ASSIGN_OR_RETURN(int64_t bodyLstms, quantizeLstms(body->graph(), body.get()));
    lstms += bodyLstms;
    WH_ASSIGN_OR_RETURN(int64_t here, quantizeGraph(body->graph(), body.get()));
    done += here;
    inBodies += here;
  }
  // What stays float with weights (the LSTMs left, GRU, RNN, ...), after the rewrite.
  noteFloatWeightOps(*model.graph, ctx, "quantize-dynamic");
  for (const auto& body : bodies) noteFloatWeightOps(body->graph(), ctx, "quantize-dynamic");
  WH_RETURN_IF_ERROR(storeBodies(bodies, *model.graph));
  if (!bodies.empty()) removeDeadNodes(*model.graph);  // float weights only the bodies read, now int8 there
  if (inBodies > 0) {
    ctx.note("quantize-dynamic: " + std::to_string(inBodies) + " MatMul/Gemm quantized inside If/Loop/Scan bodies");
  }
  if (lstms > 0) {
    if (model.opsetVersion("com.microsoft") == 0) model.setOpsetVersion("com.microsoft", 1);
    ctx.note("quantize-dynamic: " + std::to_string(lstms) +
             " LSTM written as com.microsoft DynamicQuantizeLSTM (ONNX Runtime's op, not standard ONNX)");
  }
  ctx.stats().rewrites = done + lstms;
  ctx.stats().counters["matmuls-quantized"] = done;
  ctx.stats().counters["lstms-quantized"] = lstms;
  if (!keep.empty() && config_.keepFormat != "float") WH_RETURN_IF_ERROR(quantizeKept(model, ctx, keep));
  return Status::ok();
}

Expected<std::vector<Sensitivity>> QuantizeDynamic::rankSensitivity(ir::Model& model, PassContext& ctx) const {
  if (ctx.calibration == nullptr) {
    return invalidInput("quantize-dynamic: keep-sensitive ranks the MatMul/Gemm on calibration data: whittle optimize --calib DATA");
  }
  ir::Graph& graph = *model.graph;
  std::vector<ir::Node*> candidates;
  for (ir::Node* n : graph.nodes()) {
    if (!selected(*n, nullptr)) continue;
    // Kept nodes are told apart by name: an unnamed one gets one.
    if (n->name().empty()) n->setName(graph.uniqueNodeName(n->opType() + "_dynamic"));
    candidates.push_back(n);
  }
  // 1. Modeled: the W8A8 error of each layer relative to its output energy, from its input's statistics.
  std::map<const ir::Value*, std::unique_ptr<quant::InputStatsCollector>> stats;
  std::map<std::string, quant::TensorCollector*> collectors;
  for (ir::Node* n : candidates) {
    auto& c = stats[n->input(0)];
    if (c == nullptr) {
      const ir::Tensor& w = *constantOf(n->input(1));  // its reduction axis K: the input's channels
      c = std::make_unique<quant::InputStatsCollector>(w.dims()[weightTransposed(*n) ? 1 : 0], /*secondMoment=*/false);
      collectors[n->input(0)->name()] = c.get();
    }
  }
  WH_ASSIGN_OR_RETURN(int64_t samples, ctx.calibration->collect(model, collectors));
  if (samples == 0) return invalidInput("quantize-dynamic: keep-sensitive: the calibration data set is empty");
  std::vector<Sensitivity> ranked;
  for (ir::Node* n : candidates) {
    const quant::InputStatsCollector& st = *stats[n->input(0)];
    const ir::Tensor w = weightKN(*n, *constantOf(n->input(1)));
    const int64_t k = w.dims()[0], cols = w.dims()[1];
    if (st.channels() != k || st.rows() == 0) {
      return invalidInput("quantize-dynamic: keep-sensitive: input '" + n->input(0)->name() + "' of node '" + n->name() +
                          "' has " + std::to_string(st.channels()) + " channels, its weight " + std::to_string(k) + " rows");
    }
    std::vector<float> wt(static_cast<size_t>(k * cols));  // [N, K], as smoothedW8A8Error reads it
    const float* wd = w.data<float>();
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t c = 0; c < cols; ++c) wt[static_cast<size_t>(c * k + j)] = wd[j * cols + c];
    }
    const std::vector<double> meanSq = st.meanSquare();
    const quant::ChannelStats channels{st.minValue(), st.maxValue(), meanSq};
    const std::vector<float> ones(static_cast<size_t>(k), 1.0f);
    const double error = quant::smoothedW8A8Error({std::span<const float>(wt)}, {cols}, k, channels, ones, config_.perChannel);
    double energy = 0;
    for (int64_t j = 0; j < k; ++j) {
      double column = 0;
      for (int64_t c = 0; c < cols; ++c) column += static_cast<double>(wd[j * cols + c]) * wd[j * cols + c];
      energy += meanSq[static_cast<size_t>(j)] * column;
    }
    ranked.push_back({n->name(), energy > 0 ? error / energy : error, 0, false});
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const Sensitivity& a, const Sensitivity& b) { return a.modeled > b.modeled; });
  // 2. Measured: the top candidates one at a time float in the all-W8A8 model.
  const int64_t wanted = config_.sensitivityCandidates > 0 ? config_.sensitivityCandidates : 3 * config_.keepSensitive;
  const size_t measuredCount = std::min(ranked.size(), static_cast<size_t>(std::max(wanted, config_.keepSensitive)));
  if (measuredCount <= static_cast<size_t>(config_.keepSensitive)) {
    // Every candidate is kept anyway: nothing to choose between.
    return ranked;
  }
  WH_ASSIGN_OR_RETURN(Feeds feeds, ctx.calibration->sampleFeeds(config_.sensitivitySamples));
  if (feeds.empty()) return invalidInput("quantize-dynamic: keep-sensitive: the calibration data set is empty");
  WH_ASSIGN_OR_RETURN(Outputs expected, runOutputs(model, feeds, ctx.threads));
  // Every weight is quantized once; a trial is that model with one layer's W8A8 chain swapped
  // back to the float node (before, each trial quantized all of them again).
  ir::Model allW8A8 = model.clone();
  std::map<std::string, std::string> replaced;
  WH_RETURN_IF_ERROR(quantizeGraph(*allW8A8.graph, nullptr, {}, &replaced).status());
  WH_ASSIGN_OR_RETURN(Outputs quantized, runOutputs(allW8A8, feeds, ctx.threads));
  const double all = relativeOutputError(quantized, expected);
  for (size_t i = 0; i < measuredCount; ++i) {
    const ir::Node* original = nullptr;
    for (const ir::Node* n : candidates) {
      if (n->name() == ranked[i].node) original = n;
    }
    if (original == nullptr) return internalError("quantize-dynamic: keep-sensitive: node '" + ranked[i].node + "' is gone");
    ir::Model trial = allW8A8.clone();
    WH_RETURN_IF_ERROR(restoreFloatNode(*trial.graph, *original, replaced));
    WH_ASSIGN_OR_RETURN(Outputs got, runOutputs(trial, feeds, ctx.threads));
    ranked[i].gain = all - relativeOutputError(got, expected);
    ranked[i].measured = true;
  }
  std::stable_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(measuredCount),
                   [](const Sensitivity& a, const Sensitivity& b) { return a.gain > b.gain; });
  return ranked;
}

Status QuantizeDynamic::quantizeKept(ir::Model& model, PassContext& ctx, const std::set<std::string>& keep) const {
  QuantizeWeightsOptions options = QuantizeWeightsOptions::declare().defaults();
  options.bits = 8;
  options.block = 128;
  options.format = config_.keepFormat;
  options.embeddings = false;
  options.clipSearch = "false";
  options.opTypes = {"MatMul", "Gemm"};
  options.nodes.assign(keep.begin(), keep.end());
  WH_ASSIGN_OR_RETURN(auto pass, makeQuantizeWeights(options));
  PassStats& outer = ctx.stats();
  PassStats inner;
  ctx.setCurrentStats(&inner);
  Status st = pass->run(model, ctx);
  ctx.setCurrentStats(&outer);
  WH_RETURN_IF_ERROR(st.withContext("quantize-dynamic: keep-sensitive's 8-bit weights"));
  outer.counters["kept-weight-only"] = inner.rewrites;
  return Status::ok();
}

/// A recurrent weight [dirs, G, K] as DynamicQuantizeLSTM stores it: int8 transposed to
/// [dirs, K, G], symmetric, with one scale per direction and row g (perChannel) or per direction.
struct LstmWeight {
  ir::Tensor values;
  std::vector<float> scales;
};

Expected<LstmWeight> quantizeLstmWeight(const ir::Tensor& w, bool perChannel, bool reduceRange) {
  const int64_t dirs = w.dims()[0], rows = w.dims()[1], k = w.dims()[2];
  const ir::Tensor flat = perChannel ? ir::Tensor(w.dtype(), {dirs * rows, k}, w.buffer())
                                     : ir::Tensor(w.dtype(), {dirs, rows * k}, w.buffer());
  WH_ASSIGN_OR_RETURN(quant::QuantizedWeight q, quant::quantizeWeight(flat, 0, reduceRange));
  LstmWeight out{ir::Tensor(ir::DataType::kInt8, {dirs, k, rows}), std::move(q.scales)};
  const int8_t* src = q.values.data<int8_t>();
  int8_t* dst = out.values.mutableData<int8_t>();
  for (int64_t d = 0; d < dirs; ++d) {
    for (int64_t g = 0; g < rows; ++g) {
      for (int64_t j = 0; j < k; ++j) dst[(d * k + j) * rows + g] = src[(d * rows + g) * k + j];
    }
  }
  return out;
}

Expected<int64_t> QuantizeDynamic::quantizeLstms(ir::Graph& graph, const DecodedBody* body) const {
  std::vector<ir::Node*> targets;
  for (ir::Node* n : graph.nodes()) {
    if (selectedLstm(*n, body)) targets.push_back(n);
  }
  for (ir::Node* n : targets) {
    const std::string base = n->name().empty() ? n->output(0) != nullptr ? n->output(0)->name() : "lstm" : n->name();
    std::vector<ir::Value*> inputs;
    for (size_t i = 0; i < 8; ++i) inputs.push_back(n->input(i));
    for (size_t i = 1; i <= 2; ++i) {
      auto quantized = quantizeLstmWeight(*constantIn(n->input(i), body), config_.perChannel, config_.reduceRange);
      if (!quantized.isOk()) return quantized.status().withContext(n->describe());
      LstmWeight q = std::move(quantized).value();
      const std::string name = n->input(i)->name();
      const int64_t dirs = q.values.dims()[0];
      inputs[i] = graph.addInitializer(graph.uniqueValueName(name + "_quantized"), std::move(q.values));
      const int64_t perDir = static_cast<int64_t>(q.scales.size()) / dirs;
      ir::Tensor scale = ir::Tensor::fromVector(ir::DataType::kFloat, perDir == 1 ? std::vector<int64_t>{dirs} : std::vector<int64_t>{dirs, perDir}, q.scales);
      ir::Tensor zero(ir::DataType::kInt8, scale.dims());
      inputs.push_back(graph.addInitializer(graph.uniqueValueName(name + "_scale"), std::move(scale)));
      inputs.push_back(graph.addInitializer(graph.uniqueValueName(name + "_zero_point"), std::move(zero)));
    }
    // Inputs 8-11 are W_scale, W_zero_point, R_scale, R_zero_point: the order above.
    std::vector<std::string> outputNames;
    for (const ir::Value* out : n->outputs()) outputNames.push_back(out == nullptr ? "" : out->name() + "_quantized_lstm");
    ir::Node* q = graph.addNode("DynamicQuantizeLSTM", inputs, outputNames, graph.uniqueNodeName(base + "_quant"),
                                "com.microsoft", n);
    for (const ir::Attribute& a : n->attributes()) {
      if (a.name != "layout") q->setAttribute(a);
    }
    for (size_t i = 0; i < n->numOutputs(); ++i) {
      if (n->output(i) == nullptr) continue;
      q->output(i)->mutableType() = n->output(i)->type();
      graph.replaceAllUsesWith(n->output(i), q->output(i));
    }
    graph.eraseNode(n);
  }
  if (!targets.empty()) removeDeadNodes(graph);
  return static_cast<int64_t>(targets.size());
}

Expected<int64_t> QuantizeDynamic::quantizeGraph(ir::Graph& graph, const DecodedBody* body, const std::set<std::string>& keep,
                                                 std::map<std::string, std::string>* replaced) const {
  std::vector<ir::Node*> targets;
  for (ir::Node* n : graph.nodes()) {
    if (selected(*n, body) && !keep.contains(n->name())) targets.push_back(n);
  }
  std::map<const ir::Value*, std::array<ir::Value*, 3>> dynamicOf;  // x -> (xq, sx, zx), shared by users
  for (ir::Node* n : targets) {
    ir::Value* x = n->input(0);
    auto it = dynamicOf.find(x);
    if (it == dynamicOf.end()) {
      std::string base = x->name();
      ir::Node* dql = graph.addNode("DynamicQuantizeLinear", {x}, {base + "_quantized", base + "_scale", base + "_zero_point"},
                                    graph.uniqueNodeName(base + "_DynamicQuantizeLinear"), "", n);
      dql->output(0)->mutableType().dtype = ir::DataType::kUint8;
      dql->output(1)->mutableType().dtype = ir::DataType::kFloat;
      dql->output(2)->mutableType().dtype = ir::DataType::kUint8;
      it = dynamicOf.emplace(x, std::array<ir::Value*, 3>{dql->output(0), dql->output(1), dql->output(2)}).first;
    }
    auto [xq, sx, zx] = it->second;
    const ir::Tensor w = weightKN(*n, *constantIn(n->input(1), body));
    WH_ASSIGN_OR_RETURN(quant::QuantizedWeight qw, quant::quantizeWeight(w, config_.perChannel ? 1 : -1, config_.reduceRange));
    const bool gemm = n->opType() == "Gemm";
    // Gemm's alpha scales the product: it joins the weight's scales (exact: y = alpha sx sW acc).
    if (gemm) {
      for (float& sc : qw.scales) sc *= n->attrFloat("alpha", 1.0f);
    }
    std::string base = n->name().empty() ? n->output(0)->name() : n->name();
    ir::Value* wq = graph.addInitializer(graph.uniqueValueName(n->input(1)->name() + "_quantized"), qw.values);
    ir::Value* wzp = quant::addZeroPointInitializer(graph, n->input(1)->name(), ir::DataType::kInt8,
                                                    std::vector<int32_t>(qw.scales.size(), 0), qw.scales.size() == 1);
    ir::Value* ws = quant::addScaleInitializer(graph, n->input(1)->name(), qw.scales, qw.scales.size() == 1);
    ir::Node* mmi = graph.addNode("MatMulInteger", {xq, wq, zx, wzp}, {base + "_int32"}, graph.uniqueNodeName(base + "_MatMulInteger"), "", n);
    mmi->output(0)->mutableType().dtype = ir::DataType::kInt32;
    ir::Node* cast = graph.addNode("Cast", {mmi->output(0)}, {base + "_float"}, graph.uniqueNodeName(base + "_Cast"), "", n);
    cast->setAttribute(ir::Attribute::makeInt("to", static_cast<int64_t>(ir::DataType::kFloat)));
    cast->output(0)->mutableType().dtype = ir::DataType::kFloat;
    ir::Node* scale = graph.addNode("Mul", {sx, ws}, {base + "_scale"}, graph.uniqueNodeName(base + "_scale_Mul"), "", n);
    scale->output(0)->mutableType().dtype = ir::DataType::kFloat;
    ir::Node* mul = graph.addNode("Mul", {cast->output(0), scale->output(0)}, {base + "_scaled"}, graph.uniqueNodeName(base + "_Mul"), "", n);
    ir::Value* y = mul->output(0);
    y->mutableType() = n->output(0)->type();
    if (gemm && n->numInputs() > 2 && n->input(2) != nullptr) {
      ir::Value* bias = n->input(2);
      const float beta = n->attrFloat("beta", 1.0f);
      if (beta != 1.0f) {  // beta scales the constant C once, here
        ir::Tensor scaled = *constantIn(bias, body);
        float* d = scaled.mutableData<float>();
        for (int64_t i = 0; i < scaled.numel(); ++i) d[i] *= beta;
        bias = graph.addInitializer(graph.uniqueValueName(bias->name() + "_beta"), std::move(scaled));
      }
      ir::Node* add = graph.addNode("Add", {y, bias}, {base + "_biased"}, graph.uniqueNodeName(base + "_Add"), "", n);
      add->output(0)->mutableType() = n->output(0)->type();
      y = add->output(0);
    }
    const std::string outputName = n->output(0)->name();
    graph.replaceAllUsesWith(n->output(0), y);
    if (replaced != nullptr) (*replaced)[outputName] = y->name();
    graph.eraseNode(n);
  }
  removeDeadNodes(graph);
  WH_RETURN_IF_ERROR(graph.topologicalSort());
  return static_cast<int64_t>(targets.size());
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeQuantizeDynamic(const QuantizeDynamicOptions& options) {
  DynamicConfig c;
  c.perChannel = options.perChannel;
  c.reduceRange = options.reduceRange;
  c.opTypes.insert(options.opTypes.begin(), options.opTypes.end());
  c.excludeOpTypes.insert(options.excludeOpTypes.begin(), options.excludeOpTypes.end());
  c.excludeNodes = options.excludeNodes;
  c.keepSensitive = options.keepSensitive;
  c.keepFormat = options.keepFormat;
  c.sensitivitySamples = options.sensitivitySamples;
  c.sensitivityCandidates = options.sensitivityCandidates;
  c.lstm = options.lstm;
  return std::unique_ptr<Pass>(std::make_unique<QuantizeDynamic>(std::move(c)));
}

}  // namespace whittle::passes
