// The accuracy-aware quantization search (include/whittle/tune/tune.h): baseline, range
// methods, cross-layer equalization, bias correction, sensitivity (cheap per-layer pass, then
// measured one node at a time), output tail, and the greedy fallback to float in the order of
// gain per cost.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "tune/accept.h"
#include "tune/bias_correction.h"
#include "tune/cost.h"
#include "tune/equalize.h"
#include "tune/measure.h"
#include "whittle/common/file_util.h"
#include "whittle/common/text.h"
#include "whittle/eval/evaluator.h"
#include "whittle/eval/layers.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/passes/pass.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/passes/registry.h"
#include "whittle/quant/calibration.h"
#include "whittle/quant/qdq_groups.h"
#include "whittle/report/report.h"
#include "whittle/tune/tune.h"
#include "whittle/version.h"

namespace whittle::tune {
namespace {

using Clock = std::chrono::steady_clock;
// The share of the time budget the fallback has before minimize()'s time begins (when the
// budget holds by then; short of it, the fallback goes on).
constexpr double kFallbackShare = 0.8;
constexpr double kCapDb = 100.0;  // SQNR beyond this (or +inf: no error) counts as this
// The samples a search's measured sensitivity runs on (at most the ranking samples).
constexpr int64_t kSensitivitySamples = 32;
// Under an accuracy or agreement budget, the shares of the fully quantized model's profiled time
// that the fallback's float nodes may add: all of them 40 %, those the smooth rule keeps (accept.h)
// 20 %. MobileNetV2 at 2.55x fp32 all-int8 stays at >= 1.8x (>= 2.1x for the smooth nodes alone).
constexpr double kSpeedShare = 0.4;
constexpr double kSmoothCostShare = 0.2;

double capped(double db) {
  if (std::isnan(db)) return -kCapDb;
  return std::clamp(db, -kCapDb, kCapDb);
}

std::string num(double v, int digits = 2) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

/// Serves the observations of the first calibration run to every later trial, with the range
/// of each tensor chosen by its own method: the quantize pass runs with method=minmax and sees
/// [lo, hi] of the chosen method as the observation's min and max.
class RangeProvider final : public quant::CalibrationProvider {
 public:
  /// `outputs`: the graph outputs, whose range is never clipped (minmax whatever the method, as
  /// quantize-int8 does).
  RangeProvider(quant::CalibrationProvider& inner, double percentile, ir::DataType dtype, std::set<std::string> outputs)
      : inner_(inner), percentile_(percentile), dtype_(dtype), outputs_(std::move(outputs)) {}

  Expected<quant::CalibrationTable> observe(const ir::Model& model, const std::vector<std::string>& tensors) override {
    std::vector<std::string> missing;
    for (const std::string& t : tensors) {
      if (!cache_.contains(t)) missing.push_back(t);
    }
    if (!missing.empty()) {
      WH_ASSIGN_OR_RETURN(quant::CalibrationTable table, inner_.observe(model, missing));
      for (const std::string& t : missing) {
        auto it = table.tensors.find(t);
        if (it == table.tensors.end()) return internalError("calibration returned no observation of '" + t + "'");
        cache_[t] = it->second;
      }
      ++runs_;
    }
    quant::CalibrationTable out;
    for (const std::string& t : tensors) {
      const quant::Observation& o = cache_.at(t);
      quant::Range r = quant::chooseRange(o, methodOf(t), percentile_, dtype_);
      quant::Observation chosen;
      chosen.min = r.lo;
      chosen.max = r.hi;
      chosen.samples = o.samples;
      out.tensors[t] = chosen;
      requested_.insert(t);
    }
    return out;
  }
  Expected<std::vector<std::vector<std::pair<std::string, ir::Tensor>>>> sampleFeeds(int64_t count) override {
    return inner_.sampleFeeds(count);
  }

  quant::CalibrationMethod methodOf(const std::string& t) const {
    if (outputs_.contains(t)) return quant::CalibrationMethod::kMinMax;
    auto it = methods_.find(t);
    return it != methods_.end() ? it->second : defaultMethod_;
  }
  void set(quant::CalibrationMethod defaultMethod, std::map<std::string, quant::CalibrationMethod> methods) {
    defaultMethod_ = defaultMethod;
    methods_ = std::move(methods);
  }
  /// Every tensor a trial asked a range for.
  const std::set<std::string>& requested() const { return requested_; }
  int runs() const { return runs_; }

 private:
  quant::CalibrationProvider& inner_;
  double percentile_;
  ir::DataType dtype_;
  std::set<std::string> outputs_;
  std::map<std::string, quant::Observation> cache_;
  quant::CalibrationMethod defaultMethod_ = quant::CalibrationMethod::kMinMax;
  std::map<std::string, quant::CalibrationMethod> methods_;
  std::set<std::string> requested_;
  int runs_ = 0;
};

/// Observations for the equalized model: the tensors equalization rescaled from their own
/// provider (one calibration run of just those), every other tensor from the original model's
/// (computed already: those values are the same).
class RoutingProvider final : public quant::CalibrationProvider {
 public:
  RoutingProvider(quant::CalibrationProvider& same, quant::CalibrationProvider& changed, std::set<std::string> rescaled)
      : same_(same), changed_(changed), rescaled_(std::move(rescaled)) {}
  Expected<quant::CalibrationTable> observe(const ir::Model& model, const std::vector<std::string>& tensors) override {
    std::vector<std::string> a, b;
    for (const std::string& t : tensors) (rescaled_.contains(t) ? b : a).push_back(t);
    quant::CalibrationTable out;
    if (!a.empty()) {
      WH_ASSIGN_OR_RETURN(out, same_.observe(model, a));
    }
    if (!b.empty()) {
      WH_ASSIGN_OR_RETURN(quant::CalibrationTable t, changed_.observe(model, b));
      for (auto& [name, o] : t.tensors) out.tensors[name] = std::move(o);
    }
    return out;
  }
  Expected<std::vector<std::vector<std::pair<std::string, ir::Tensor>>>> sampleFeeds(int64_t count) override {
    return same_.sampleFeeds(count);
  }
  Expected<int64_t> collect(const ir::Model& model, const std::map<std::string, quant::TensorCollector*>& collectors) override {
    return same_.collect(model, collectors);
  }

 private:
  quant::CalibrationProvider& same_;
  quant::CalibrationProvider& changed_;
  std::set<std::string> rescaled_;
};

/// The float-nodes option of quantize-int8.
std::string floatList(const std::vector<std::string>& nodes) {
  std::string list;
  for (const std::string& n : nodes) list += (list.empty() ? "" : ";") + n;
  return list;
}

bool isCompute(const std::string& op) { return isComputeOp(op); }

/// A repair's verdict under an accuracy budget: acceptRepair's, and whether the budget's own
/// measure kept it (`nearer`: it meets the budget or comes closer to it) when that rule did not.
std::string repairVerdict(const Acceptance& closer, bool nearer) {
  return closer.keep || !nearer ? closer.why : closer.why + "; kept: the top-1 drop is smaller";
}

/// One point of the search: the nodes kept float, the range methods, the float-model repairs.
struct Config {
  std::vector<std::string> floatNodes;
  quant::CalibrationMethod defaultMethod = quant::CalibrationMethod::kMinMax;
  std::map<std::string, quant::CalibrationMethod> methods;
  bool equalize = false;        ///< quantize the equalized float model
  bool biasCorrection = false;  ///< correct biases by the measured mean output shift
};

/// The output-decoding tail: nodes none of whose paths to a graph output crosses a
/// Conv/ConvTranspose/MatMul/Gemm, and the compute nodes that feed only them (or the outputs).
std::set<std::string> outputTail(const ir::Graph& graph) {
  std::set<const ir::Node*> tail;
  std::vector<ir::Node*> nodes = graph.nodes();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const ir::Node* n = *it;
    bool feedsOnlyTail = true;
    bool reaches = false;
    for (const ir::Value* out : n->outputs()) {
      if (out == nullptr) continue;
      if (out->isGraphOutput()) reaches = true;
      for (const auto& use : out->uses()) {
        if (tail.contains(use.user)) {
          reaches = true;
        } else {
          feedsOnlyTail = false;
        }
      }
    }
    if (!feedsOnlyTail || !reaches) continue;
    tail.insert(n);
  }
  // Only the compute nodes right before the tail stay in it: the tail stops at them.
  std::set<std::string> names;
  std::set<const ir::Node*> stop;
  for (const ir::Node* n : tail) {
    if (isCompute(n->opType())) stop.insert(n);
  }
  for (const ir::Node* n : tail) {
    // A node is in the decoding tail when no compute node of the tail lies downstream of it
    // other than itself: walk its readers.
    bool behindCompute = false;
    std::vector<const ir::Node*> todo = {n};
    std::set<const ir::Node*> seen;
    while (!todo.empty() && !behindCompute) {
      const ir::Node* m = todo.back();
      todo.pop_back();
      for (const ir::Value* out : m->outputs()) {
        if (out == nullptr) continue;
        for (const auto& use : out->uses()) {
          if (use.user == nullptr || !seen.insert(use.user).second) continue;
          if (stop.contains(use.user)) behindCompute = true;
          todo.push_back(use.user);
        }
      }
    }
    if (!behindCompute && !n->name().empty()) names.insert(n->name());
  }
  return names;
}

/// How far a trial is from the budget: the smallest margin over the budgets given (>= 0: met).
double slack(const Budget& b, const Metrics& m, std::optional<double> dropPp) {
  double s = std::numeric_limits<double>::infinity();
  if (b.maxAccuracyDropPp) s = std::min(s, dropPp ? *b.maxAccuracyDropPp - *dropPp : -kCapDb);
  if (b.minAgreementPct) s = std::min(s, m.agreementPct ? *m.agreementPct - *b.minAgreementPct : -kCapDb);
  if (b.minSqnrDb) s = std::min(s, capped(m.minChannelSqnrDb) - *b.minSqnrDb);
  if (b.minScoreF1Pct) s = std::min(s, m.scoreF1Pct ? *m.scoreF1Pct - *b.minScoreF1Pct : -kCapDb);
  if (b.minBoxF1Pct) s = std::min(s, m.boxF1Pct ? *m.boxF1Pct - *b.minBoxF1Pct : -kCapDb);
  return s;
}

std::string shortfallText(const Budget& b, const Metrics& m, std::optional<double> dropPp) {
  std::vector<std::string> parts;
  if (b.maxAccuracyDropPp && (!dropPp || *dropPp > *b.maxAccuracyDropPp)) {
    parts.push_back("accuracy drop " + (dropPp ? num(*dropPp) : std::string("?")) + " pp > " +
                    num(*b.maxAccuracyDropPp) + " pp (short by " +
                    (dropPp ? num(*dropPp - *b.maxAccuracyDropPp) : std::string("?")) + " pp)");
  }
  if (b.minAgreementPct && (!m.agreementPct || *m.agreementPct < *b.minAgreementPct)) {
    parts.push_back("agreement " + (m.agreementPct ? num(*m.agreementPct) : std::string("?")) + " % < " +
                    num(*b.minAgreementPct) + " % (short by " +
                    (m.agreementPct ? num(*b.minAgreementPct - *m.agreementPct) : std::string("?")) + " pp)");
  }
  if (b.minSqnrDb && m.minChannelSqnrDb < *b.minSqnrDb) {
    parts.push_back("SQNR " + num(m.minChannelSqnrDb) + " dB < " + num(*b.minSqnrDb) + " dB (short by " +
                    num(*b.minSqnrDb - m.minChannelSqnrDb) + " dB, at '" + m.worstOutput + "'" +
                    (m.worstChannel >= 0 ? " channel " + std::to_string(m.worstChannel) : std::string()) + ")");
  }
  if (b.minScoreF1Pct && (!m.scoreF1Pct || *m.scoreF1Pct < *b.minScoreF1Pct)) {
    parts.push_back("score F1 " + (m.scoreF1Pct ? num(*m.scoreF1Pct) : std::string("?")) + " % < " +
                    num(*b.minScoreF1Pct) + " % (short by " +
                    (m.scoreF1Pct ? num(*b.minScoreF1Pct - *m.scoreF1Pct) : std::string("?")) + " pp)");
  }
  if (b.minBoxF1Pct && (!m.boxF1Pct || *m.boxF1Pct < *b.minBoxF1Pct)) {
    parts.push_back("box F1 " + (m.boxF1Pct ? num(*m.boxF1Pct) : std::string("?")) + " % < " + num(*b.minBoxF1Pct) +
                    " % (short by " + (m.boxF1Pct ? num(*b.minBoxF1Pct - *m.boxF1Pct) : std::string("?")) + " pp)");
  }
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "; ") + p;
  return s;
}

class Search {
 public:
  Search(const TuneRequest& request, TuneResult& result) : req_(request), result_(result), start_(Clock::now()) {}
  Status run();

 private:
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  bool timeLeft(double fraction = 1.0) const { return elapsed() < req_.timeBudgetSeconds * fraction; }
  void say(const std::string& line) const {
    if (req_.progress) req_.progress(line);
  }
  /// The ranking metric: the lowest per-channel SQNR under an SQNR budget, else the SQNR
  /// of the class-score output (an accuracy or agreement budget reads only that one; other
  /// outputs, such as a classifier's hidden states, do not count), else the lowest output SQNR
  /// (smoother than accuracy on a few samples).
  double rankOf(const Metrics& m) const {
    if (req_.budget.minSqnrDb) return capped(m.minChannelSqnrDb);
    if (req_.budget.minScoreF1Pct) return capped(m.scoreSqnrDb);
    if (req_.budget.minBoxF1Pct) return capped(m.decodedSqnrDb);
    return capped(ref_ && ref_->classOutput() >= 0 ? m.classSqnrDb : m.outputSqnrDb);
  }
  Expected<ir::Model> quantize(const Config& c);
  /// Quantizes and measures `c` (on every sample when `full`), records the trial and keeps the
  /// best full-data model.
  /// `samples`: how many of the first samples a trial that is not full measures (0: the ranking samples).
  Expected<Trial*> trial(const Config& c, const std::string& stage, const std::string& change, bool full,
                         int64_t samples = 0);
  bool better(const Trial& a, const Trial& b) const;
  /// Where the search stands: the kept configuration's ranking metric and, when it was measured
  /// on every sample, its slack to the budget.
  struct Standing {
    double rank = 0;
    double slack = 0;
    Metrics full;   ///< the kept configuration's measurement on every sample
    Metrics first;  ///< and on the ranking samples
  };
  /// Whether the repair stages are judged by the budget's own measure on every sample (an
  /// accuracy or agreement budget) rather than by the ranking metric on the ranking samples.
  bool judgedOnBudget() const { return req_.budget.maxAccuracyDropPp.has_value() || req_.budget.minAgreementPct.has_value(); }
  /// Whether the range and bias repairs are judged by the budget's slack on every sample: a box-F1
  /// budget too, whose decoded boxes follow no SQNR (CenterFace's percentile ranges and bias
  /// correction raise the ranking SQNR from 4.9 to 8.2 dB and drop its box F1 from 87.2 to 81.6 %).
  /// The fallback's speed allowance and smooth rule stay with judgedOnBudget() (per-sample flips).
  bool repairsJudgedOnBudget() const { return judgedOnBudget() || req_.budget.minBoxF1Pct.has_value(); }
  /// Tries the repair `c` against the kept `config` and keeps it (config = c) when it is better:
  /// by the ranking metric on the ranking samples, and when repairsJudgedOnBudget() then also by the
  /// budget's slack on every sample. Returns the last trial it ran.
  Expected<Trial*> repairTrial(Config& config, Standing& standing, const Config& c, const std::string& stage,
                               const std::string& change);
  Status cheapSensitivity(const ir::Model& quantized);
  Status measuredSensitivity(const Config& base, double baseRank);
  /// Reads the gains of req_.mergeLogs into mergedGains_ (checking their shards).
  Status loadMergeLogs();
  /// After the budget holds: quantize float nodes again while it still holds.
  Status minimize(Config config);
  /// Profiles the float model and `quantized` (fully quantized) once for the fallback's cost;
  /// a failure leaves the estimate, with a note.
  void measureCosts(const ir::Model& quantized);
  /// What keeping `node` float costs (us per run): measured when measureCosts succeeded.
  double costUs(const ir::Node& node) const { return cost_ ? cost_->costUs(node) : estimatedFloatCostUs(node); }
  std::string costWord() const { return cost_ ? "measured cost" : "est. cost"; }
  /// Measures the bias-correction moments of `c`'s quantization (one calibration run).
  Status measureBias(const Config& c);
  RangeProvider& rangesFor(const Config& c) { return c.equalize ? *rangesEq_ : *ranges_; }
  const ir::Model& floatFor(const Config& c) const { return c.equalize ? floatEq_ : float_; }

  const TuneRequest& req_;
  TuneResult& result_;
  Clock::time_point start_;
  ir::Model float_;
  passes::PipelineEntry entry_{};
  std::vector<passes::PipelineEntry> levelPipeline_;
  std::unique_ptr<data::Dataset> calibData_;
  std::unique_ptr<quant::StandardCalibrationProvider> calib_;
  std::unique_ptr<RangeProvider> ranges_;
  ir::Model floatEq_;  ///< float_ after cross-layer equalization (when tried)
  std::unique_ptr<quant::StandardCalibrationProvider> calibEq_;  ///< observations of the rescaled tensors
  std::unique_ptr<RoutingProvider> routeEq_;
  std::unique_ptr<RangeProvider> rangesEq_;
  std::map<std::string, SiteMoments> moments_;  ///< bias-correction input means, by node
  std::unique_ptr<Reference> ref_;
  int workers_ = 1;  ///< sessions that measure a trial side by side (TuneRequest::workers)
  std::optional<FallbackCost> cost_;
  std::vector<std::string> candidates_;  ///< quantized nodes, in graph order
  std::unordered_map<std::string, std::string> opOf_;
  ir::Model bestModel_;
  Metrics lastFirst_;  ///< the last trial's metrics on the ranking samples
  bool reserveNoted_ = false;
  bool notesTaken_ = false;
  std::map<std::string, double> mergedGains_;  ///< node -> gain dB, from req_.mergeLogs
  std::string mergedMethod_;                   ///< the range method the merged gains were measured with

 public:
  /// The best model found, with what fell back in it; sets met and shortfall.
  void finish();
};

void Search::finish() {
  if (result_.best < 0) return;
  const Trial& best = result_.trials[static_cast<size_t>(result_.best)];
  result_.model = std::move(bestModel_);
  result_.met = best.meetsBudget;
  if (!result_.met && req_.budget.any()) result_.shortfall = shortfallText(req_.budget, best.metrics, best.accuracyDropPp);
  std::erase_if(result_.fellBack, [&](const auto& f) {
    return std::find(best.floatNodes.begin(), best.floatNodes.end(), f.first) == best.floatNodes.end();
  });
  // Short of the budget, the best trial is the closest to it, which may be a fallback the
  // acceptance reverted (its gain was within noise): say so for its nodes.
  for (const std::string& n : best.floatNodes) {
    if (std::any_of(result_.fellBack.begin(), result_.fellBack.end(), [&](const auto& f) { return f.first == n; })) continue;
    result_.fellBack.emplace_back(n, "float in trial " + std::to_string(best.index) +
                                         ", the closest to the budget, though the search reverted it: " +
                                         (best.verdict.empty() ? std::string("not kept") : best.verdict));
  }
  std::vector<passes::PipelineEntry> pipeline = levelPipeline_;
  passes::PipelineEntry e = entry_;
  std::map<std::string, std::string> options = e.options.values();
  if (!best.floatNodes.empty()) options["float-nodes"] = floatList(best.floatNodes);
  e.options = passes::PassOptions(options);
  pipeline.push_back(e);
  result_.pipeline = passes::printPipeline(pipeline);
  if (best.equalized || best.biasCorrected) {
    result_.notes.push_back(std::string("the best model also has ") +
                            (best.equalized ? "cross-layer equalization" : "") +
                            (best.equalized && best.biasCorrected ? " and " : "") +
                            (best.biasCorrected ? "bias correction" : "") +
                            ", which the tuner applies around the pipeline (the pipeline alone does not reproduce it)");
  }
}

Expected<ir::Model> Search::quantize(const Config& c) {
  RangeProvider& ranges = rangesFor(c);
  ranges.set(c.defaultMethod, c.methods);
  ir::Model m = floatFor(c).clone();
  passes::PipelineEntry e = entry_;
  std::map<std::string, std::string> options = e.options.values();
  options["method"] = "minmax";
  if (!c.floatNodes.empty()) options["float-nodes"] = floatList(c.floatNodes);
  e.options = passes::PassOptions(options);
  {
    passes::PassContext ctx(m);
    ctx.strict = req_.optimize.strict;
    ctx.calibration = &ranges;
    auto stats = passes::runPipeline(m, {e}, ctx);
    if (!stats.isOk()) return stats.status().withContext(req_.optimize.inputPath);
    if (!notesTaken_) {
      notesTaken_ = true;
      for (const auto& n : ctx.notes()) result_.notes.push_back(n);
      for (const auto& w : ctx.warnings()) result_.notes.push_back("warning: " + w);
    }
  }
  if (c.biasCorrection) {
    auto corrected = correctBiases(m, floatFor(c), moments_);
    if (!corrected.isOk()) return corrected.status().withContext(req_.optimize.inputPath);
  }
  WH_RETURN_IF_ERROR(ir::verify(*m.graph).withContext(req_.optimize.inputPath + ": after quantization"));
  return m;
}

void Search::measureCosts(const ir::Model& quantized) {
  if (cost_ || !req_.measureCost) return;
  constexpr int kRuns = 5;
  auto feeds = ref_->firstInputs();
  auto measured = feeds.isOk() ? FallbackCost::measure(float_, quantized, *feeds, req_.threads, kRuns)
                               : Expected<FallbackCost>(feeds.status());
  if (!measured.isOk()) {
    result_.notes.push_back("fallback cost: the per-node profile failed (" + measured.status().message() +
                            "); the order uses the estimate");
    return;
  }
  cost_ = std::move(measured).value();
  result_.notes.push_back("fallback cost measured: per-node profile of the float and the fully quantized model (" +
                          std::to_string(kRuns) + " runs of the first evaluation batch); the float convolutions take " +
                          num(cost_->floatScale() * 1000.0, 1) + "x the estimate's time");
}

Status Search::measureBias(const Config& c) {
  Config plain = c;
  plain.biasCorrection = false;
  WH_ASSIGN_OR_RETURN(ir::Model q, quantize(plain));
  std::vector<BiasSite> sites = biasSites(q, floatFor(c));
  auto measured = measureSites(floatFor(c), sites, *calib_);
  if (!measured.isOk()) return measured.status().withContext("bias correction");
  moments_ = std::move(measured).value();
  return Status::ok();
}

bool Search::better(const Trial& a, const Trial& b) const {
  if (a.meetsBudget != b.meetsBudget) return a.meetsBudget;
  if (a.meetsBudget && a.floatNodes.size() != b.floatNodes.size()) return a.floatNodes.size() < b.floatNodes.size();
  double sa = slack(req_.budget, a.metrics, a.accuracyDropPp), sb = slack(req_.budget, b.metrics, b.accuracyDropPp);
  if (sa != sb) return sa > sb;
  return rankOf(a.metrics) > rankOf(b.metrics);
}

Expected<Trial*> Search::trial(const Config& c, const std::string& stage, const std::string& change, bool full,
                               int64_t samples) {
  auto t0 = Clock::now();
  WH_ASSIGN_OR_RETURN(ir::Model m, quantize(c));
  WH_ASSIGN_OR_RETURN(Reference::Measured measured,
                      ref_->measure(m, samples > 0 ? samples : req_.rankingSamples, !full, req_.threads, workers_));
  Trial t;
  t.index = static_cast<int>(result_.trials.size());
  t.stage = stage;
  t.change = change;
  t.floatNodes = c.floatNodes;
  t.defaultMethod = std::string(quant::calibrationMethodName(c.defaultMethod));
  t.equalized = c.equalize;
  t.biasCorrected = c.biasCorrection;
  for (const auto& [tensor, method] : c.methods) t.methods[tensor] = std::string(quant::calibrationMethodName(method));
  t.fullData = full;
  t.metrics = full ? measured.full : measured.first;
  lastFirst_ = measured.first;
  if (full && t.metrics.top1Pct && ref_->own().top1Pct) t.accuracyDropPp = *ref_->own().top1Pct - *t.metrics.top1Pct;
  t.meetsBudget = full && req_.budget.any() && slack(req_.budget, t.metrics, t.accuracyDropPp) >= 0;
  t.parameterBytes = passes::parameterBytes(*m.graph);
  t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string subset = full ? std::string()
                              : samples > 0 && samples < req_.rankingSamples ? ", first " + std::to_string(samples) + " samples"
                                                                             : std::string(", ranking samples");
  std::string line = "trial " + std::to_string(t.index) + " (" + stage + subset + "): " + change + ": SQNR " + num(t.metrics.outputSqnrDb, 1) + " dB, channel min " +
                     num(t.metrics.minChannelSqnrDb, 1) + " dB";
  if (t.metrics.agreementPct) line += ", agreement " + num(*t.metrics.agreementPct) + " %";
  if (t.metrics.scoreF1Pct) line += ", score F1 " + num(*t.metrics.scoreF1Pct) + " %";
  if (t.metrics.boxF1Pct) line += ", box F1 " + num(*t.metrics.boxF1Pct) + " %";
  if (t.accuracyDropPp) line += ", top-1 drop " + num(*t.accuracyDropPp) + " pp";
  say(line + (t.meetsBudget ? " (meets the budget)" : ""));
  result_.trials.push_back(std::move(t));
  Trial& stored = result_.trials.back();
  if (full && (result_.best < 0 || better(stored, result_.trials[static_cast<size_t>(result_.best)]))) {
    result_.best = stored.index;
    bestModel_ = std::move(m);
  }
  return &stored;
}

Expected<Trial*> Search::repairTrial(Config& config, Standing& standing, const Config& c, const std::string& stage,
                                     const std::string& change) {
  // A repair is screened on the ranking samples (it must raise the ranking metric by 0.1 dB).
  // Under an accuracy or agreement budget one that passes is then measured on every sample and
  // stays only when the budget's own measure gets better: session 9 saw the ranking SQNR
  // misjudge MobileNetV2, where percentile ranges with bias correction raised it from 14.8 to
  // 19.5 dB on the ranking samples and dropped top-1 by 2.00 pp on all of them (minmax: 1.11 pp).
  WH_ASSIGN_OR_RETURN(Trial * t, trial(c, stage, change, false));
  const double rank = rankOf(t->metrics);
  // Under an accuracy budget the screen also passes a repair that agrees with the float model on
  // more ranking samples beyond noise: on MobileNetV2 bias correction took the ranking agreement
  // from 96.15 to 99.04 % while its SQNR fell 0.7 dB.
  const Flips agreement = flips(standing.first.agrees, t->metrics.agrees);
  const bool agreesMore = req_.budget.maxAccuracyDropPp.has_value() && agreement.gain();
  if (rank <= standing.rank + 0.1 && !agreesMore) return t;
  if (!repairsJudgedOnBudget()) {
    t->kept = true;
    config = c;
    standing.rank = rank;
    return t;
  }
  WH_ASSIGN_OR_RETURN(t, trial(c, stage, change + ", on every sample", true));
  const double s = slack(req_.budget, t->metrics, t->accuracyDropPp);
  // Under an accuracy budget a repair that brings the model closer to the float one (agreement
  // beyond noise, no top-1 loss beyond it) stays even when the top-1 draw went the other way.
  const Acceptance closer = acceptRepair(req_.budget, standing.full, t->metrics);
  if (req_.budget.maxAccuracyDropPp) t->verdict = repairVerdict(closer, t->meetsBudget || s > standing.slack);
  if (t->meetsBudget || s > standing.slack || closer.keep) {
    t->kept = true;
    config = c;
    standing = {rank, s, t->metrics, lastFirst_};
  }
  return t;
}

Status Search::cheapSensitivity(const ir::Model& quantized) {
  // Per-layer SQNR of the all-quantized model against the float one on the ranking samples,
  // through the evaluation engine's layer matching.
  data::DatasetSpec spec = *req_.eval;
  spec.limit = spec.limit < 0 ? req_.rankingSamples : std::min(spec.limit, req_.rankingSamples);
  auto opened = data::openDataset(spec, data::inputSpecs(*float_.graph));
  if (!opened.isOk()) return opened.status().withContext("--eval");
  eval::EvalOptions options;
  options.layers = eval::matchLayers(*float_.graph, *quantized.graph);
  runtime::SessionOptions soA, soB;
  soA.threads = soB.threads = std::max(1, req_.threads);
  for (const auto& l : options.layers) {
    soA.extraOutputs.push_back(l.tensor);
    soB.extraOutputs.push_back(l.optimizedTensor);
  }
  WH_ASSIGN_OR_RETURN(auto a, runtime::Session::create(float_, soA));
  WH_ASSIGN_OR_RETURN(auto b, runtime::Session::create(quantized, soB));
  eval::Evaluator evaluator(*a, b.get(), std::move(options));
  WH_ASSIGN_OR_RETURN(eval::EvalResult evaluated, evaluator.run(**opened));
  std::unordered_map<std::string, double> sqnr;
  for (const auto& l : evaluated.layers) sqnr[l.tensor] = capped(l.sqnrDb);
  // A value fused away in the quantized model is matched at the end of its chain: follow
  // single readers until a matched value.
  auto sqnrOf = [&](const ir::Value* v) -> std::optional<double> {
    for (int hops = 0; v != nullptr && hops < 4; ++hops) {
      auto it = sqnr.find(v->name());
      if (it != sqnr.end()) return it->second;
      if (v->uses().size() != 1 || v->uses()[0].user == nullptr) break;
      v = v->uses()[0].user->output(0);
    }
    return std::nullopt;
  };
  std::unordered_map<std::string, const ir::Node*> byName;
  for (const ir::Node* n : float_.graph->nodes()) byName[n->name()] = n;
  for (const std::string& name : candidates_) {
    Sensitivity s;
    s.node = name;
    s.opType = opOf_[name];
    const ir::Node* n = byName.at(name);
    double in = kCapDb;
    for (const ir::Value* v : n->inputs()) {
      if (v == nullptr || v->producer() == nullptr) continue;
      if (auto x = sqnrOf(v)) in = std::min(in, *x);
    }
    auto out = sqnrOf(n->output(0));
    s.localLossDb = out ? in - *out : 0.0;
    result_.sensitivity.push_back(s);
  }
  std::stable_sort(result_.sensitivity.begin(), result_.sensitivity.end(),
                   [](const Sensitivity& x, const Sensitivity& y) { return x.localLossDb > y.localLossDb; });
  return Status::ok();
}

Status Search::measuredSensitivity(const Config& base, double baseRank) {
  // All-but-one: each node float alone, in the cheap pass's order, while a share of the time
  // budget lasts.
  // Inside a search it measures until 45 % of the time budget, and at least for 20 % of it when
  // the stages before it ran late (a loaded machine), but not past 70 %: the fallback it orders
  // needs the rest. Session 10's and 11's 5-minute runs at load 9-14 reached it after 45 %.
  const double begun = elapsed() / req_.timeBudgetSeconds;
  const double share = req_.sensitivityOnly ? 1.0 : std::min(std::max(0.45, begun + 0.2), 0.7);
  const bool sharded = req_.shardCount > 0;
  // Inside a search the gains only order the fallback: they are measured on the first
  // kSensitivitySamples samples (a third of a ranking trial's time), against the base
  // configuration measured on the same samples. --sensitivity-only measures on the ranking samples.
  const int64_t samples = req_.sensitivityOnly ? req_.rankingSamples : std::min(req_.rankingSamples, kSensitivitySamples);
  bool baseMeasured = samples == req_.rankingSamples;
  size_t toMeasure = 0, position = 0, merged = 0;  // toMeasure: this shard's slice (every node when not sharded)
  for (size_t p = 0; p < result_.sensitivity.size(); ++p) {
    toMeasure += !sharded || static_cast<int>(p % static_cast<size_t>(req_.shardCount)) == req_.shardIndex;
  }
  for (Sensitivity& s : result_.sensitivity) {
    const size_t p = position++;
    if (auto it = mergedGains_.find(s.node); it != mergedGains_.end()) {
      s.gainDb = it->second;  // measured by a shard (or an earlier run) of the same model
      ++merged;
      continue;
    }
    if (sharded && static_cast<int>(p % static_cast<size_t>(req_.shardCount)) != req_.shardIndex) continue;
    if (!timeLeft(share)) {
      result_.notes.push_back("sensitivity: the time budget allowed measuring " +
                              std::to_string(std::count_if(result_.sensitivity.begin(), result_.sensitivity.end(),
                                                           [](const Sensitivity& x) { return x.gainDb.has_value(); }) -
                                             static_cast<std::ptrdiff_t>(merged)) +
                              " of " + std::to_string(toMeasure) +
                              (sharded ? " nodes of this shard" : " nodes") + "; the rest are ranked by the per-layer pass");
      break;
    }
    if (!baseMeasured) {
      WH_ASSIGN_OR_RETURN(Trial * b, trial(base, "sensitivity",
                                           "every node quantized (the reference of the gains, on the first " +
                                               std::to_string(samples) + " samples)",
                                           false, samples));
      baseRank = rankOf(b->metrics);
      baseMeasured = true;
    }
    Config c = base;
    c.floatNodes.push_back(s.node);
    WH_ASSIGN_OR_RETURN(Trial * t, trial(c, "sensitivity", "'" + s.node + "' (" + s.opType + ") float", false, samples));
    s.gainDb = rankOf(t->metrics) - baseRank;
  }
  if (merged > 0) {
    result_.notes.push_back("sensitivity: " + std::to_string(merged) + " of " + std::to_string(result_.sensitivity.size()) +
                            " gains taken from --merge-shards logs");
  }
  std::stable_sort(result_.sensitivity.begin(), result_.sensitivity.end(), [](const Sensitivity& x, const Sensitivity& y) {
    if (x.gainDb.has_value() != y.gainDb.has_value()) return x.gainDb.has_value();
    if (x.gainDb) return *x.gainDb > *y.gainDb;
    return x.localLossDb > y.localLossDb;
  });
  for (size_t i = 0; i < result_.sensitivity.size(); ++i) result_.sensitivity[i].rank = static_cast<int>(i) + 1;
  return Status::ok();
}

Status Search::loadMergeLogs() {
  int count = -1;
  std::map<int, std::string> shards;  // index -> log
  for (const std::string& path : req_.mergeLogs) {
    WH_ASSIGN_OR_RETURN(std::string text, readFile(path));
    nlohmann::json log = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (log.is_discarded() || !log.is_object() || log.value("schema", "") != "whittle.tune/1" ||
        !log.contains("sensitivity") || !log["sensitivity"].is_array()) {
      return invalidInput("--merge-shards " + path + ": not a whittle trial log (schema whittle.tune/1 with \"sensitivity\")");
    }
    std::string method;
    if (log.contains("trials") && log["trials"].is_array() && !log["trials"].empty() && log["trials"][0].is_object()) {
      method = log["trials"][0].value("default_method", "");
    }
    if (!mergedMethod_.empty() && !method.empty() && method != mergedMethod_) {
      return invalidInput("--merge-shards " + path + ": measured with " + method + " ranges, another log with " +
                          mergedMethod_ + " (logs of one analysis agree)");
    }
    if (!method.empty()) mergedMethod_ = method;
    if (log.contains("shard") && log["shard"].is_object()) {
      const int index = log["shard"].value("index", -1), n = log["shard"].value("count", 0);
      if (n <= 0 || index < 0 || index >= n) return invalidInput("--merge-shards " + path + ": a bad \"shard\" entry");
      if (count >= 0 && n != count) {
        return invalidInput("--merge-shards " + path + ": shard " + std::to_string(index) + "/" + std::to_string(n) +
                            ", but " + shards.begin()->second + " is one of " + std::to_string(count) + " shards");
      }
      count = n;
      if (auto [it, fresh] = shards.emplace(index, path); !fresh) {
        return invalidInput("--merge-shards " + path + ": shard " + std::to_string(index) + "/" + std::to_string(n) +
                            " is also " + it->second);
      }
    }
    for (const auto& e : log["sensitivity"]) {
      if (!e.is_object() || !e.contains("node") || !e["node"].is_string()) {
        return invalidInput("--merge-shards " + path + ": a sensitivity entry without a node");
      }
      if (!e.contains("gain_db") || !e["gain_db"].is_number()) continue;  // not measured by this shard
      mergedGains_.emplace(e["node"].get<std::string>(), e["gain_db"].get<double>());
    }
  }
  if (count > 0 && static_cast<int>(shards.size()) < count) {
    std::string missing;
    for (int i = 0; i < count; ++i) {
      if (!shards.contains(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i) + "/" + std::to_string(count);
    }
    result_.notes.push_back("--merge-shards: shard(s) " + missing + " missing; their nodes are measured here");
  }
  return Status::ok();
}

Status Search::run() {
  const OptimizeRequest& o = req_.optimize;
  const Budget& budget = req_.budget;
  // ---- Bad input ----
  if (o.quantize.mode != QuantizeMode::kInt8) return invalidInput("an accuracy budget applies to --quantize int8");
  if (!budget.scores.empty() && !budget.minScoreF1Pct) {
    return invalidInput("--scores names what --min-score-f1 PCT checks: give both");
  }
  if (!budget.detections.empty() && !budget.minBoxF1Pct) {
    return invalidInput("--detections names the decoder --min-box-f1 PCT checks: give both");
  }
  if (!budget.any() && !req_.sensitivityOnly) {
    return invalidInput(
        "tuning needs a budget: --max-accuracy-drop PP, --min-agreement PCT, --min-sqnr DB, --min-score-f1 PCT or "
        "--min-box-f1 PCT (or --sensitivity-only)");
  }
  if (budget.minBoxF1Pct && budget.detections.empty()) {
    return invalidInput("--min-box-f1 needs the detector's decoder: --detections DECODER.onnx (model outputs in; "
                        "boxes [N, 4], scores [N] and optionally classes [N] out)");
  }
  if (budget.minBoxF1Pct && !(*budget.minBoxF1Pct >= 0 && *budget.minBoxF1Pct <= 100)) {
    return invalidInput("--min-box-f1 must be a percentage in 0..100");
  }
  if (budget.minScoreF1Pct && budget.scores.empty()) {
    return invalidInput(
        "--min-score-f1 needs the scores it checks: --scores OUTPUT[:axis=A]:CHANNELS:THRESHOLD (e.g. scores:1:0.7)");
  }
  if (budget.minScoreF1Pct && !(*budget.minScoreF1Pct >= 0 && *budget.minScoreF1Pct <= 100)) {
    return invalidInput("--min-score-f1 must be a percentage in 0..100");
  }
  std::string flag = budget.maxAccuracyDropPp ? "--max-accuracy-drop"
                     : budget.minAgreementPct ? "--min-agreement"
                     : budget.minSqnrDb       ? "--min-sqnr"
                     : budget.minScoreF1Pct   ? "--min-score-f1"
                     : budget.minBoxF1Pct     ? "--min-box-f1"
                                              : "--sensitivity-only";
  if (!req_.eval) return invalidInput(flag + " needs evaluation data: --eval DATA");
  if (!o.calibration.wanted()) return invalidInput(flag + " needs calibration data: --calib DATA or --load-calib FILE");
  if (!o.convert.to.empty()) return invalidInput(flag + " cannot be combined with --convert");
  if (req_.timeBudgetSeconds <= 0) return invalidInput("--time-budget must be positive");
  if (req_.minSpeedup < 0) return invalidInput("--min-speedup must be positive");
  if (req_.minSpeedup > 0 && !req_.measureCost) {
    return invalidInput("--min-speedup reads the measured profile: it cannot be combined with --fallback-cost estimate");
  }
  if (req_.shardCount > 0) {
    if (!req_.sensitivityOnly) {
      return invalidInput("--shard measures a slice of the sensitivity analysis: use it with --sensitivity-only "
                          "--trial-log FILE, then --merge-shards the logs");
    }
    if (req_.shardIndex < 0 || req_.shardIndex >= req_.shardCount) {
      return invalidInput("--shard " + std::to_string(req_.shardIndex) + "/" + std::to_string(req_.shardCount) +
                          ": the index must be in 0.." + std::to_string(req_.shardCount - 1));
    }
  }
  WH_RETURN_IF_ERROR(loadMergeLogs());
  if (req_.sensitivityOnly && o.report.wanted()) {
    return invalidInput("--sensitivity-only writes no model to report on: use --trial-log FILE or --json");
  }
  if (budget.maxAccuracyDropPp && *budget.maxAccuracyDropPp < 0) return invalidInput("--max-accuracy-drop must be >= 0");

  // ---- The float model after the level's passes ----
  OptimizeRequest floatRequest = o;
  floatRequest.outputPath.clear();
  floatRequest.quantize = QuantizeRequest{};
  floatRequest.calibration = CalibrationRequest{};
  floatRequest.report = ReportRequest{};
  WH_ASSIGN_OR_RETURN(OptimizeResult floatResult, optimize(floatRequest));
  float_ = std::move(floatResult.model);
  WH_ASSIGN_OR_RETURN(levelPipeline_, buildPipeline(floatRequest));
  int unnamed = 0;
  for (ir::Node* n : float_.graph->nodes()) {
    if (n->name().empty() && quant::qdqOpRule(*n)) {
      n->setName(float_.graph->uniqueNodeName(n->opType() + "_tune" + std::to_string(unnamed++)));
    }
  }
  if (unnamed > 0) result_.notes.push_back("named " + std::to_string(unnamed) + " unnamed nodes so that they can be kept float");
  WH_ASSIGN_OR_RETURN(entry_, quantizeEntry(o.quantize));

  // ---- Reference and calibration ----
  say("measuring the float model on the evaluation data");
  WH_ASSIGN_OR_RETURN(ref_, Reference::build(float_, *req_.eval, req_.threads, req_.evalCacheBytes));
  WH_RETURN_IF_ERROR(ref_->setChannelAxes(budget.channelAxes));
  if (!budget.scores.empty()) WH_RETURN_IF_ERROR(ref_->setScores(budget.scores));
  if (!budget.detections.empty()) WH_RETURN_IF_ERROR(ref_->setDetections(budget.detections));
  for (const auto& n : ref_->notes) result_.notes.push_back(n);
  result_.reference = ref_->own();
  workers_ = req_.workers > 0 ? req_.workers
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, req_.threads));
  if (workers_ > 1) {
    result_.notes.push_back("trials measured by " + std::to_string(workers_) + " sessions side by side, " +
                            std::to_string(std::max(1, req_.threads)) + " thread(s) each");
  }
  if (budget.maxAccuracyDropPp) {
    if (!ref_->hasLabels()) {
      return invalidInput("--max-accuracy-drop needs labels: --labels FILE (or a label file beside --eval data)");
    }
    if (ref_->classOutput() < 0) return invalidInput("--max-accuracy-drop: the model has no output of class scores ([N, C])");
    if (!ref_->labelsFit()) {
      return invalidInput("--labels: a label is not a class index of output '" +
                          ref_->outputNames()[static_cast<size_t>(ref_->classOutput())] + "' (" +
                          std::to_string(ref_->classes()) + " classes)");
    }
  }
  if (budget.minAgreementPct && ref_->classOutput() < 0) {
    return invalidInput("--min-agreement: the model has no output of class scores ([N, C]); use --min-sqnr");
  }
  if (o.calibration.data) {
    auto opened = data::openDataset(*o.calibration.data, data::inputSpecs(*float_.graph));
    if (!opened.isOk()) return opened.status().withContext("--calib");
    calibData_ = std::move(opened).value();
  }
  std::optional<quant::CalibrationTable> loaded;
  if (!o.calibration.loadTable.empty()) {
    WH_ASSIGN_OR_RETURN(loaded, quant::loadCalibrationTable(o.calibration.loadTable));
  }
  quant::CalibrationOptions copt;
  copt.threads = o.calibration.threads;
  copt.progress = o.calibration.progress;
  copt.carry = o.calibration.carry;
  calib_ = std::make_unique<quant::StandardCalibrationProvider>(std::move(loaded), calibData_.get(), copt);
  const std::string methodName =
      o.quantize.method.empty() ? passes::passOption("quantize-int8", "method").defaultValue : o.quantize.method;
  auto method = quant::parseCalibrationMethod(methodName);
  if (!method) return invalidInput("--calib-method '" + methodName + "': not a calibration method");
  const double percentile = std::stod(passes::passOption("quantize-int8", "p").defaultValue);
  const ir::DataType act = o.quantize.activationType == "int8" ? ir::DataType::kInt8 : ir::DataType::kUint8;
  std::set<std::string> outputs;
  for (const ir::Value* v : float_.graph->outputs()) outputs.insert(v->name());
  ranges_ = std::make_unique<RangeProvider>(*calib_, percentile, act, outputs);
  if (calibData_) calibEq_ = std::make_unique<quant::StandardCalibrationProvider>(std::nullopt, calibData_.get(), copt);

  // ---- Baseline: every node quantized ----
  Config config;
  config.defaultMethod = *method;
  say("calibrating (once) and measuring the fully quantized model");
  WH_ASSIGN_OR_RETURN(ir::Model q0, quantize(config));
  {
    std::unordered_set<std::string> floatNames;
    for (const ir::Node* n : float_.graph->nodes()) {
      floatNames.insert(n->name());
      opOf_[n->name()] = n->opType();
    }
    std::set<std::string> found;
    for (const ir::Node* n : q0.graph->nodes()) {
      if (n->opType() == "QuantizeLinear" || n->opType() == "DequantizeLinear" || !floatNames.contains(n->name()) ||
          !quant::qdqOpRule(*n)) {
        continue;
      }
      for (const ir::Value* v : n->inputs()) {
        if (v != nullptr && v->producer() != nullptr && v->producer()->opType() == "DequantizeLinear") {
          found.insert(n->name());
          break;
        }
      }
    }
    for (const ir::Node* n : float_.graph->nodes()) {
      if (!found.contains(n->name())) continue;
      if (n->name().find_first_of(";:") != std::string::npos) {
        result_.notes.push_back("node '" + n->name() + "' cannot be kept float by name (';' or ':' in it): not a candidate");
        continue;
      }
      candidates_.push_back(n->name());
    }
  }
  WH_ASSIGN_OR_RETURN(Trial * base, trial(config, "baseline", "every node quantized, " + methodName + " ranges", true));
  const double baseRank = rankOf(lastFirst_);
  if (base->meetsBudget && !req_.sensitivityOnly) {
    base->kept = true;
    return Status::ok();
  }

  // ---- Repair 1a: one range method for every tensor (before ranking: it changes the ranking) ----
  const std::vector<quant::CalibrationMethod> allMethods = {quant::CalibrationMethod::kMinMax,
                                                            quant::CalibrationMethod::kPercentile,
                                                            quant::CalibrationMethod::kEntropy,
                                                            quant::CalibrationMethod::kMse};
  Standing standing{baseRank, slack(budget, base->metrics, base->accuracyDropPp), base->metrics, lastFirst_};
  // Under an accuracy budget the whole-model repairs may start until half the budget: they are
  // what moves agreement (session 16: a node float at a time is a draw of top-1 flips), and on a
  // loaded machine the float reference and calibration alone passed 30 % of 5 minutes.
  const double repairShare = req_.budget.maxAccuracyDropPp ? 0.5 : 0.3;
  for (auto m : allMethods) {
    if (req_.sensitivityOnly || m == config.defaultMethod || !timeLeft(repairShare)) continue;
    Config c = config;
    c.defaultMethod = m;
    WH_ASSIGN_OR_RETURN(Trial * t, repairTrial(config, standing, c, "method",
                                               std::string(quant::calibrationMethodName(m)) + " ranges for every tensor"));
    if (t->meetsBudget) return Status::ok();
  }
  // ---- Repair 1c: bias correction by each layer's mean output shift (one statistics run) ----
  const bool haveSamples = calibData_ != nullptr;
  if (!req_.sensitivityOnly && haveSamples && timeLeft(repairShare + 0.1)) {
    WH_RETURN_IF_ERROR(measureBias(config));
    if (!moments_.empty()) {
      Config c = config;
      c.biasCorrection = true;
      WH_ASSIGN_OR_RETURN(Trial * t, repairTrial(config, standing, c, "bias",
                                                 "bias correction of " + std::to_string(moments_.size()) +
                                                     " Conv/Gemm layers (mean output shift on the calibration data)"));
      if (t->meetsBudget) return Status::ok();
    }
  }
  // ---- Repair 1d: cross-layer equalization of depthwise -> pointwise pairs (float model; its
  // activations are observed again) ----
  if (!req_.sensitivityOnly && haveSamples && timeLeft(repairShare + 0.1)) {
    floatEq_ = float_.clone();
    auto eq = equalize(floatEq_, calib_.get());
    if (!eq.isOk()) return eq.status().withContext("cross-layer equalization");
    if (eq->pairs > 0) {
      routeEq_ = std::make_unique<RoutingProvider>(*calib_, *calibEq_,
                                                   std::set<std::string>(eq->rescaled.begin(), eq->rescaled.end()));
      rangesEq_ = std::make_unique<RangeProvider>(*routeEq_, percentile, act, outputs);
      Config c = config;
      c.equalize = true;
      std::map<std::string, SiteMoments> saved = moments_;
      if (c.biasCorrection) WH_RETURN_IF_ERROR(measureBias(c));
      WH_ASSIGN_OR_RETURN(Trial * t, repairTrial(config, standing, c, "equalize",
                                                 "cross-layer equalization: " + std::to_string(eq->pairs) +
                                                     " depthwise/pointwise pairs, " + std::to_string(eq->channelsScaled) +
                                                     " channels scaled (" + std::to_string(eq->channelsPinned) +
                                                     " left alone: they reach the clip)"));
      if (t->meetsBudget) return Status::ok();
      if (!t->kept) moments_ = std::move(saved);
    }
  }
  // The ranking metric of the configuration kept so far (each stage below raises it).
  double current = standing.rank;
  if (!haveSamples && !req_.sensitivityOnly) {
    result_.notes.push_back("cross-layer equalization and bias correction need calibration samples (--calib DATA); not tried");
  }
  // ---- Sensitivity, of the model with the chosen method and repairs ----
  say("sensitivity: per-layer SQNR of the quantized model");
  if (config.defaultMethod != *method || config.equalize || config.biasCorrection) {
    WH_ASSIGN_OR_RETURN(q0, quantize(config));
  }
  WH_RETURN_IF_ERROR(cheapSensitivity(q0));
  for (const auto& [node, gain] : mergedGains_) {
    if (std::find(candidates_.begin(), candidates_.end(), node) == candidates_.end()) {
      return invalidInput("--merge-shards: node '" + node +
                          "' is not a quantized node of this model (logs of another model, or other options?)");
    }
  }
  if (!mergedGains_.empty() && !mergedMethod_.empty() &&
      mergedMethod_ != quant::calibrationMethodName(config.defaultMethod)) {
    result_.notes.push_back("--merge-shards: the merged gains were measured with " + mergedMethod_ +
                            " ranges, this run chose " + std::string(quant::calibrationMethodName(config.defaultMethod)) +
                            "; they order the fallback as measured");
  }
  WH_RETURN_IF_ERROR(measuredSensitivity(config, current));
  if (req_.sensitivityOnly) return Status::ok();

  auto fullCheck = [&](const std::string& stage, const std::string& change) -> Expected<bool> {
    WH_ASSIGN_OR_RETURN(Trial * t, trial(config, stage, change, true));
    t->kept = true;
    return t->meetsBudget;
  };

  // ---- Repair 1b: a range method per tensor of the most harmful nodes ----
  std::unordered_map<std::string, const ir::Node*> byName;
  for (const ir::Node* n : float_.graph->nodes()) byName[n->name()] = n;
  const size_t topRanges = 3;
  std::set<std::string> tried;
  for (size_t i = 0; i < std::min(topRanges, result_.sensitivity.size()); ++i) {
    const ir::Node* n = byName.at(result_.sensitivity[i].node);
    std::vector<std::string> tensors;
    auto add = [&](const ir::Value* v) {
      if (v != nullptr && rangesFor(config).requested().contains(v->name()) &&
          std::find(tensors.begin(), tensors.end(), v->name()) == tensors.end()) {
        tensors.push_back(v->name());
      }
    };
    for (const ir::Value* v : n->inputs()) add(v);
    add(n->output(0));
    for (const auto& use : n->output(0)->uses()) {  // a folded Relu/Clip carries the range
      if (use.user != nullptr && (use.user->opType() == "Relu" || use.user->opType() == "Clip")) add(use.user->output(0));
    }
    for (const std::string& tensor : tensors) {
      if (!tried.insert(tensor).second) continue;
      for (auto m : allMethods) {
        auto chosen = config.methods.find(tensor);
        if (m == (chosen != config.methods.end() ? chosen->second : config.defaultMethod) || !timeLeft(0.65)) continue;
        Config c = config;
        c.methods[tensor] = m;
        if (m == c.defaultMethod) c.methods.erase(tensor);
        WH_ASSIGN_OR_RETURN(Trial * t, trial(c, "range",
                                             std::string(quant::calibrationMethodName(m)) + " range for '" + tensor + "'",
                                             false));
        if (rankOf(t->metrics) > current + 0.1) {
          current = rankOf(t->metrics);
          config = c;
          t->kept = true;
        }
      }
    }
  }
  if (config.biasCorrection && !config.methods.empty()) {
    WH_RETURN_IF_ERROR(measureBias(config));  // the per-tensor ranges moved some input scales
  }
  if (repairsJudgedOnBudget() && !config.methods.empty()) {
    // The per-tensor ranges were chosen on the ranking SQNR: they stay only when the budget's
    // own measure on every sample is better than the whole-model stages' best.
    WH_ASSIGN_OR_RETURN(Trial * t, trial(config, "range", "the chosen per-tensor ranges, on every sample", true));
    if (t->meetsBudget) {
      t->kept = true;
      return Status::ok();
    }
    const Acceptance closer = acceptRepair(budget, standing.full, t->metrics);
    const bool nearer = slack(budget, t->metrics, t->accuracyDropPp) > standing.slack;
    if (budget.maxAccuracyDropPp) t->verdict = repairVerdict(closer, nearer);
    if (nearer || closer.keep) {
      t->kept = true;
      standing = {rankOf(lastFirst_), slack(budget, t->metrics, t->accuracyDropPp), t->metrics, lastFirst_};
    } else {
      config.methods.clear();
      if (config.biasCorrection) WH_RETURN_IF_ERROR(measureBias(config));
    }
    current = standing.rank;
  } else if (!repairsJudgedOnBudget() &&
             (config.defaultMethod != *method || !config.methods.empty() || config.equalize || config.biasCorrection)) {
    WH_ASSIGN_OR_RETURN(bool met, fullCheck("range", "the chosen ranges and repairs, on every sample"));
    if (met) return Status::ok();
  }

  // ---- Repair 2: the output-decoding tail float ----
  std::set<std::string> tail = outputTail(*float_.graph);
  std::vector<std::string> tailQuantized;
  for (const std::string& c : candidates_) {
    if (tail.contains(c)) tailQuantized.push_back(c);
  }
  if (!tailQuantized.empty() && timeLeft(0.7)) {
    Config c = config;
    c.floatNodes.insert(c.floatNodes.end(), tailQuantized.begin(), tailQuantized.end());
    std::string names;
    for (const auto& t : tailQuantized) names += (names.empty() ? "'" : ", '") + t + "'";
    WH_ASSIGN_OR_RETURN(Trial * t, trial(c, "tail", "the output tail float: " + names, false));
    if (rankOf(t->metrics) > current + 1.0) {
      current = rankOf(t->metrics);
      config = c;
      t->kept = true;
      for (const auto& n : tailQuantized) {
        result_.fellBack.emplace_back(n, "output-decoding tail: float gained " + num(rankOf(t->metrics) - baseRank, 1) +
                                             " dB together");
      }
      WH_ASSIGN_OR_RETURN(bool met, fullCheck("tail", "the output tail float, on every sample"));
      if (met) return Status::ok();
    }
  }

  // ---- Repair 3: nodes float, one at a time, most gain per cost first ----
  // A float node costs speed (it and the ops with weights that read its output run in float32):
  // the measured gains (>= 0.1 dB) are taken in the order of gain per estimated cost, then the
  // nodes the time left unmeasured (by per-layer loss per cost), then the small gains.
  std::vector<const Sensitivity*> order, unmeasured, small;
  std::unordered_map<std::string, double> cost;
  // A node whose estimate finds no constant weights (an Add, a Transpose, a MatMul of two
  // activations) costs at least the median node: near zero, it would go first on any gain.
  // Measured costs: a node whose int8 form is no faster costs 10 % of the median node (the
  // profile is noisy; a zero would put it first on any gain).
  measureCosts(q0);
  std::vector<double> raw;
  for (const Sensitivity& s : result_.sensitivity) raw.push_back(costUs(*byName.at(s.node)));
  std::vector<double> sorted = raw;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.empty() ? 1.0 : sorted[sorted.size() / 2];
  const double floor = std::max(1.0, cost_ ? 0.1 * median : median);
  for (size_t i = 0; i < result_.sensitivity.size(); ++i) {
    const Sensitivity& s = result_.sensitivity[i];
    cost[s.node] = std::max(floor, raw[i]);
    if (!s.gainDb) {
      unmeasured.push_back(&s);
    } else if (*s.gainDb >= 0.1) {
      order.push_back(&s);
    } else if (*s.gainDb > 0 || req_.budget.minBoxF1Pct) {
      small.push_back(&s);  // under a box-F1 budget every node: boxes move where the SQNR does not
    }
  }
  std::stable_sort(order.begin(), order.end(), [&](const Sensitivity* x, const Sensitivity* y) {
    return *x->gainDb / cost.at(x->node) > *y->gainDb / cost.at(y->node);
  });
  // Unmeasured: the per-layer loss per cost where it is a loss, then the rest as ranked.
  std::stable_sort(unmeasured.begin(), unmeasured.end(), [&](const Sensitivity* x, const Sensitivity* y) {
    const bool px = x->localLossDb > 0, py = y->localLossDb > 0;
    if (px != py) return px;
    return px && x->localLossDb / cost.at(x->node) > y->localLossDb / cost.at(y->node);
  });
  order.insert(order.end(), unmeasured.begin(), unmeasured.end());
  order.insert(order.end(), small.begin(), small.end());
  // The current configuration's full-data measurement (and `current`, its ranking metric on the
  // ranking samples): a fallback stays only when it moves the budget's own measure on every
  // sample beyond the noise of its flips (accept.h; under an SQNR budget, the SQNR by > 0.05 dB).
  // Time: a fallback that meets the budget hands the rest to minimize(), which always has at
  // least the last (1 - kFallbackShare) of the time budget when the budget is met before
  // kFallbackShare; short of the budget at kFallbackShare, the fallback goes on into that time
  // (minimize() needs a model that meets the budget), with a note.
  // The speed floor (--min-speedup): the float model's profiled time over the quantized one's
  // plus the measured cost of each float node (overlapping costs add: an underestimate of the speed).
  double floatMs = 0, quantMs = 0;
  if (req_.minSpeedup > 0) {
    if (!cost_) {
      result_.notes.push_back("--min-speedup not applied: the per-node profile failed");
    } else {
      floatMs = cost_->floatTotalMs();
      quantMs = cost_->int8TotalMs();
      for (const std::string& n : config.floatNodes) {
        if (byName.contains(n)) quantMs += std::max(0.0, costUs(*byName.at(n))) / 1000.0;
      }
      if (quantMs > 0 && floatMs / quantMs < req_.minSpeedup) {
        result_.notes.push_back("--min-speedup " + num(req_.minSpeedup) + ": the model before the fallback is already at " +
                                num(floatMs / quantMs) + "x the float model (by the profile): no node falls back");
      }
    }
  }
  int overFloor = 0;
  bool met = false;
  // Under an accuracy or agreement budget every verdict reads top-1 flips at one sigma of their
  // noise, so the nodes kept float may cost at most kSpeedShare of the fully quantized model's
  // profiled time (a candidate that would pass it is not tried), those of the smooth rule
  // kSmoothCostShare; --min-speedup, when given, is checked as well.
  const double allowanceMs = judgedOnBudget() && cost_ ? kSpeedShare * cost_->int8TotalMs() : -1;
  double spentMs = 0;   // the measured cost of the nodes kept float by the fallback
  double smoothMs = 0;  // of them, those the smooth rule kept
  int overAllowance = 0;
  Metrics last = result_.trials.front().metrics;
  for (auto it = result_.trials.rbegin(); it != result_.trials.rend(); ++it) {
    if (it->fullData && (it->kept || it->stage == "baseline")) {
      last = it->metrics;
      break;
    }
  }
  for (const Sensitivity* s : order) {
    if (!timeLeft()) {
      result_.notes.push_back("the time budget (" + num(req_.timeBudgetSeconds, 0) + " s) ran out during the fallback");
      break;
    }
    if (!timeLeft(kFallbackShare) && !reserveNoted_) {
      reserveNoted_ = true;
      result_.notes.push_back("the fallback passed " + num(kFallbackShare * 100, 0) +
                              " % of the time budget short of the budget: it goes on into the time kept for minimizing");
    }
    if (std::find(config.floatNodes.begin(), config.floatNodes.end(), s->node) != config.floatNodes.end()) continue;
    const double addMs = std::max(0.0, cost.at(s->node)) / 1000.0;
    if (floatMs > 0 && quantMs + addMs > 0 && floatMs / (quantMs + addMs) < req_.minSpeedup) {
      ++overFloor;  // it would bring the estimated speedup under the floor
      continue;
    }
    if (allowanceMs >= 0 && spentMs + addMs > allowanceMs) {
      ++overAllowance;
      continue;
    }
    config.floatNodes.push_back(s->node);
    // Screen on the ranking samples first (a ninth of a full trial here): a fallback that does
    // not raise the ranking SQNR there is quantized again without the run on every sample.
    WH_ASSIGN_OR_RETURN(Trial * screen, trial(config, "screen", "'" + s->node + "' (" + s->opType + ") float", false));
    // Under a box-F1 budget a screen that measured every sample also passes on more boxes matched
    // (CenterFace's decoded boxes rise with nodes whose SQNR gain is nil).
    const bool moreBoxes = req_.budget.minBoxF1Pct && screen->metrics.boxF1Pct && last.boxF1Pct &&
                           screen->metrics.samples == last.samples && *screen->metrics.boxF1Pct > *last.boxF1Pct;
    if (rankOf(screen->metrics) <= current + 0.05 && !moreBoxes) {
      config.floatNodes.pop_back();
      continue;
    }
    WH_ASSIGN_OR_RETURN(Trial * t, trial(config, "fallback",
                                         "'" + s->node + "' (" + s->opType + ") float, " + costWord() + " " +
                                             num(cost.at(s->node), 0) + " us",
                                         true));
    // The smooth rule (accept.h) keeps a node on its SQNR gain alone while the nodes it kept
    // cost at most kSmoothCostShare of the quantized model's profiled time.
    const bool smooth = judgedOnBudget() && cost_ && smoothMs + addMs <= kSmoothCostShare * cost_->int8TotalMs();
    const Acceptance verdict = acceptFallback(req_.budget, last, t->metrics, t->meetsBudget,
                                              rankOf(t->metrics) - rankOf(last), smooth);
    t->verdict = verdict.why;
    say("  " + std::string(verdict.keep ? "kept: " : "reverted: ") + verdict.why);
    if (!verdict.keep) {
      config.floatNodes.pop_back();  // the budget's measure did not move beyond noise: quantized again
      continue;
    }
    t->kept = true;
    quantMs += addMs;
    spentMs += addMs;
    if (verdict.smooth) smoothMs += addMs;
    last = t->metrics;
    current = rankOf(lastFirst_);
    result_.fellBack.emplace_back(
        s->node, "rank " + std::to_string(s->rank) + " in sensitivity" +
                     (s->gainDb ? " (float alone: +" + num(*s->gainDb, 1) + " dB, " + costWord() + " " + num(cost.at(s->node), 0) + " us)"
                                : std::string()) + "; " + verdict.why);
    if (t->meetsBudget) {
      met = true;
      break;
    }
  }
  if (overAllowance > 0) {
    result_.notes.push_back(std::to_string(overAllowance) + " fallback candidate(s) not tried: each would take the float nodes' " +
                            "measured cost over " + num(kSpeedShare * 100, 0) + " % of the quantized model's profiled time (" +
                            num(allowanceMs, 1) + " ms)");
  }
  if (overFloor > 0) {
    result_.notes.push_back("--min-speedup " + num(req_.minSpeedup) + ": " + std::to_string(overFloor) +
                            " fallback candidate(s) not tried, each would take the profiled speedup under it");
  }
  if (met) return minimize(config);
  return Status::ok();
}

Status Search::minimize(Config config) {
  // The greedy fallback adds nodes one at a time; some of them may not be needed once the
  // others are float. Each float node costs speed: quantize it again, the dearest (measured cost)
  // first, and keep that when the budget still holds. It has the time the fallback left, at
  // least the last (1 - kFallbackShare) of the time budget.
  std::vector<std::string> order(config.floatNodes.begin(), config.floatNodes.end());
  std::unordered_map<std::string, double> cost;
  for (const ir::Node* n : float_.graph->nodes()) {
    if (std::find(order.begin(), order.end(), n->name()) != order.end()) cost[n->name()] = costUs(*n);
  }
  std::stable_sort(order.begin(), order.end(), [&](const std::string& x, const std::string& y) { return cost[x] > cost[y]; });
  for (const std::string& node : order) {
    if (!timeLeft()) {
      result_.notes.push_back("the time budget ran out while minimizing the float nodes");
      break;
    }
    Config c = config;
    std::erase(c.floatNodes, node);
    WH_ASSIGN_OR_RETURN(Trial * t, trial(c, "minimize", "'" + node + "' quantized again", true));
    if (!t->meetsBudget) continue;
    t->kept = true;
    config = c;
    std::erase_if(result_.fellBack, [&](const auto& f) { return f.first == node; });
  }
  return Status::ok();
}

}  // namespace

namespace {

report::TuningSection tuningSection(const TuneRequest& request, const TuneResult& result) {
  report::TuningSection t;
  t.budget = request.budget.text();
  t.met = result.met;
  if (result.best >= 0) {
    const Trial& best = result.trials[static_cast<size_t>(result.best)];
    t.summary = "Best: trial " + std::to_string(best.index) + " of " + std::to_string(result.trials.size()) + ", " +
                std::to_string(best.floatNodes.size()) + " node(s) float, " + num(result.seconds, 1) + " s" +
                (result.met ? "." : "; " + result.shortfall + ".");
  }
  for (const Sensitivity& s : result.sensitivity) t.sensitivity.push_back({s.rank, s.node, s.opType, s.localLossDb, s.gainDb});
  for (const Trial& x : result.trials) {
    report::TuningSection::Trial y;
    y.index = x.index;
    y.stage = x.stage;
    y.change = x.change;
    y.fullData = x.fullData;
    y.best = x.index == result.best;
    y.meets = x.meetsBudget;
    y.floatNodes = static_cast<int>(x.floatNodes.size());
    y.sqnrDb = x.metrics.minChannelSqnrDb;
    y.agreementPct = x.metrics.agreementPct;
    y.accuracyDropPp = x.accuracyDropPp;
    y.parameterBytes = x.parameterBytes;
    y.msPerSample = x.metrics.msPerSample;
    t.trials.push_back(std::move(y));
  }
  t.fellBack = result.fellBack;
  return t;
}

}  // namespace

std::string Budget::text() const {
  std::vector<std::string> parts;
  if (maxAccuracyDropPp) parts.push_back("top-1 drop <= " + num(*maxAccuracyDropPp) + " pp");
  if (minAgreementPct) parts.push_back("top-1 agreement >= " + num(*minAgreementPct) + " %");
  if (minSqnrDb) {
    std::string axes;
    for (const ChannelAxisRule& r : channelAxes) axes += (axes.empty() ? "" : ", ") + r.text();
    parts.push_back("SQNR (per output and channel, " + (axes.empty() ? std::string("last axis") : "axis " + axes) +
                    ") >= " + num(*minSqnrDb) + " dB");
  }
  if (minScoreF1Pct) {
    std::string specs;
    for (const ScoreSpec& sc : scores) specs += (specs.empty() ? "" : ", ") + sc.text();
    parts.push_back("score F1 (" + (specs.empty() ? std::string("?") : specs) + ") >= " + num(*minScoreF1Pct) + " %");
  }
  if (minBoxF1Pct) parts.push_back("box F1 (" + (detections.empty() ? std::string("?") : detections) + ") >= " + num(*minBoxF1Pct) + " %");
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : " and ") + p;
  return s.empty() ? "none" : s;
}

Expected<TuneResult> tune(const TuneRequest& request) {
  auto start = Clock::now();
  TuneResult result;
  Search search(request, result);
  WH_RETURN_IF_ERROR(search.run());
  search.finish();
  const OptimizeRequest& o = request.optimize;
  if (!request.sensitivityOnly && result.best >= 0) {
    result.model.setMetadata("whittle.version", kVersion);
    result.model.setMetadata("whittle.pipeline", result.pipeline);
    const Trial& best = result.trials[static_cast<size_t>(result.best)];
    result.model.setMetadata("whittle.tune", "budget " + request.budget.text() + ": " +
                                                 (result.met ? "met" : "not met (" + result.shortfall + ")") +
                                                 "; trial " + std::to_string(best.index) + " of " +
                                                 std::to_string(result.trials.size()) +
                                                 (best.equalized ? "; cross-layer equalization" : "") +
                                                 (best.biasCorrected ? "; bias correction" : ""));
    if (!o.outputPath.empty()) {
      onnx_io::SaveOptions saveOptions;
      saveOptions.externalData = o.externalData;
      WH_RETURN_IF_ERROR(onnx_io::save(result.model, o.outputPath, saveOptions));
    }
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (o.report.wanted() && result.best >= 0) {
    // The comparison of the written model with its input, on the ranking samples (the budget
    // was checked on all of them), with the tuning section.
    data::DatasetSpec spec = *request.eval;
    spec.limit = spec.limit < 0 ? request.rankingSamples : std::min(spec.limit, request.rankingSamples);
    report::CompareOptions options;
    options.threads = std::max(1, o.report.threads);
    options.perLayer = true;
    options.progress = o.report.progress;
    auto compared = report::compareFiles(o.inputPath, o.outputPath, spec, options, report::Gates{}, report::ReportPaths{});
    if (!compared.isOk()) return compared.status().withContext("--report");
    result.report = std::move(compared).value();
    result.report->tuning = tuningSection(request, result);
    for (const std::string& n : result.notes) result.report->notes.push_back("tune: " + n);
    WH_RETURN_IF_ERROR(report::writeReports(*result.report, o.report.paths).withContext("--report"));
  }
  if (!request.trialLogPath.empty()) {
    WH_RETURN_IF_ERROR(writeFileAtomic(request.trialLogPath, tuneResultJson(request, result).dump(2) + "\n")
                           .withContext("--trial-log"));
  }
  return result;
}

namespace {

nlohmann::json numberOrText(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

nlohmann::json metricsJson(const Metrics& m) {
  nlohmann::json j;
  j["samples"] = m.samples;
  j["output_sqnr_db"] = numberOrText(m.outputSqnrDb);
  j["class_sqnr_db"] = numberOrText(m.classSqnrDb);
  if (m.scoreF1Pct) {
    j["score_f1_pct"] = *m.scoreF1Pct;
    j["score_sqnr_db"] = numberOrText(m.scoreSqnrDb);
  }
  if (m.boxF1Pct) {
    j["box_f1_pct"] = *m.boxF1Pct;
    j["decoded_sqnr_db"] = numberOrText(m.decodedSqnrDb);
  }
  j["min_channel_sqnr_db"] = numberOrText(m.minChannelSqnrDb);
  j["worst_output"] = m.worstOutput;
  j["worst_channel"] = m.worstChannel;
  j["top1_pct"] = m.top1Pct ? nlohmann::json(*m.top1Pct) : nlohmann::json(nullptr);
  j["agreement_pct"] = m.agreementPct ? nlohmann::json(*m.agreementPct) : nlohmann::json(nullptr);
  j["ms_per_sample"] = m.msPerSample;
  return j;
}

}  // namespace

nlohmann::json tuneResultJson(const TuneRequest& request, const TuneResult& result) {
  nlohmann::json j;
  j["schema"] = "whittle.tune/1";
  j["input"] = request.optimize.inputPath;
  j["output"] = request.sensitivityOnly ? "" : request.optimize.outputPath;
  nlohmann::json b = nlohmann::json::object();
  if (request.budget.maxAccuracyDropPp) b["max_accuracy_drop_pp"] = *request.budget.maxAccuracyDropPp;
  if (request.budget.minAgreementPct) b["min_agreement_pct"] = *request.budget.minAgreementPct;
  if (request.budget.minSqnrDb) b["min_sqnr_db"] = *request.budget.minSqnrDb;
  if (request.budget.minScoreF1Pct) b["min_score_f1_pct"] = *request.budget.minScoreF1Pct;
  if (request.budget.minBoxF1Pct) b["min_box_f1_pct"] = *request.budget.minBoxF1Pct;
  if (!request.budget.detections.empty()) b["detections"] = request.budget.detections;
  if (!request.budget.scores.empty()) {
    // One spec: its text (as before); several: a list.
    if (request.budget.scores.size() == 1) {
      b["scores"] = request.budget.scores[0].text();
    } else {
      for (const ScoreSpec& sc : request.budget.scores) b["scores"].push_back(sc.text());
    }
  }
  for (const ChannelAxisRule& r : request.budget.channelAxes) b["channel_axes"].push_back(r.text());
  j["budget"] = b;
  j["time_budget_s"] = request.timeBudgetSeconds;
  j["ranking_samples"] = request.rankingSamples;
  if (request.shardCount > 0) j["shard"] = {{"index", request.shardIndex}, {"count", request.shardCount}};
  j["reference"] = metricsJson(result.reference);
  j["trials"] = nlohmann::json::array();
  for (const Trial& t : result.trials) {
    nlohmann::json x;
    x["index"] = t.index;
    x["stage"] = t.stage;
    x["change"] = t.change;
    x["float_nodes"] = t.floatNodes;
    x["default_method"] = t.defaultMethod;
    x["equalized"] = t.equalized;
    x["bias_corrected"] = t.biasCorrected;
    x["methods"] = t.methods;
    x["full_data"] = t.fullData;
    x["metrics"] = metricsJson(t.metrics);
    x["accuracy_drop_pp"] = t.accuracyDropPp ? nlohmann::json(*t.accuracyDropPp) : nlohmann::json(nullptr);
    x["meets_budget"] = t.meetsBudget;
    x["kept"] = t.kept;
    if (!t.verdict.empty()) x["verdict"] = t.verdict;
    x["parameter_bytes"] = t.parameterBytes;
    x["seconds"] = t.seconds;
    j["trials"].push_back(x);
  }
  j["sensitivity"] = nlohmann::json::array();
  for (const Sensitivity& s : result.sensitivity) {
    j["sensitivity"].push_back({{"rank", s.rank},
                                {"node", s.node},
                                {"op_type", s.opType},
                                {"local_loss_db", s.localLossDb},
                                {"gain_db", s.gainDb ? nlohmann::json(*s.gainDb) : nlohmann::json(nullptr)}});
  }
  j["best"] = result.best;
  j["met"] = result.met;
  j["shortfall"] = result.shortfall;
  j["pipeline"] = result.pipeline;
  j["fell_back"] = nlohmann::json::array();
  for (const auto& [node, why] : result.fellBack) j["fell_back"].push_back({{"node", node}, {"why", why}});
  j["notes"] = result.notes;
  j["seconds"] = result.seconds;
  return j;
}

Expected<std::pair<int, int>> parseShard(const std::string& text) {
  const std::string error = "--shard '" + text + "': expected I/N with 0 <= I < N (e.g. 0/4)";
  size_t slash = text.find('/');
  if (slash == std::string::npos) return invalidInput(error);
  int index = -1, count = 0;
  auto [e1, c1] = std::from_chars(text.data(), text.data() + slash, index);
  auto [e2, c2] = std::from_chars(text.data() + slash + 1, text.data() + text.size(), count);
  if (c1 != std::errc() || e1 != text.data() + slash || c2 != std::errc() || e2 != text.data() + text.size() ||
      count <= 0 || index < 0 || index >= count) {
    return invalidInput(error);
  }
  return std::make_pair(index, count);
}

/// "90", "90s", "10m", "1h" as seconds.
Expected<double> parseDuration(const std::string& text) {
  if (text.empty()) return invalidInput("--time-budget: empty");
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return invalidInput("--time-budget '" + text + "': expected a duration such as 90s, 10m or 1h");
  }
  std::string unit = text.substr(used);
  double scale = unit.empty() || unit == "s" ? 1 : unit == "m" || unit == "min" ? 60 : unit == "h" ? 3600 : -1;
  if (scale < 0 || !(v > 0)) return invalidInput("--time-budget '" + text + "': expected a positive duration such as 90s, 10m or 1h");
  return v * scale;
}

std::string tuneResultText(const TuneRequest& request, const TuneResult& r) {
  std::string out;
  if (!r.sensitivity.empty()) {
    out += "sensitivity (most harmful first; gain: the ranking SQNR with the node float, minus all quantized):\n";
    out += fmt("%5s  %-40s %-18s %12s %12s\n", "rank", "node", "op", "local loss", "gain");
    for (const Sensitivity& s : r.sensitivity) {
      out += fmt("%5d  %-40s %-18s %9.2f dB %s\n", s.rank, s.node.c_str(), s.opType.c_str(), s.localLossDb,
                 s.gainDb ? (formatDb(*s.gainDb, 2)).c_str() : "   (not measured)");
    }
  }
  for (const std::string& n : r.notes) out += fmt("note: %s\n", n.c_str());
  if (request.sensitivityOnly || r.best < 0) return out;
  const Trial& best = r.trials[static_cast<size_t>(r.best)];
  for (const auto& [node, why] : r.fellBack) out += fmt("kept float: %s (%s)\n", node.c_str(), why.c_str());
  out += fmt("best: trial %d of %zu, SQNR %s (lowest channel %s)", best.index, r.trials.size(),
             formatDb(best.metrics.outputSqnrDb, 1).c_str(), formatDb(best.metrics.minChannelSqnrDb, 1).c_str());
  if (best.metrics.agreementPct) out += fmt(", agreement %.2f %%", *best.metrics.agreementPct);
  if (best.metrics.scoreF1Pct) out += fmt(", score F1 %.2f %%", *best.metrics.scoreF1Pct);
  if (best.metrics.boxF1Pct) out += fmt(", box F1 %.2f %%", *best.metrics.boxF1Pct);
  if (best.accuracyDropPp && r.reference.top1Pct) {
    out += fmt(", top-1 %.2f %% -> %.2f %% (drop %.2f pp)", *r.reference.top1Pct, *best.metrics.top1Pct, *best.accuracyDropPp);
  }
  out += fmt(", %zu node%s float, %.1f s\n", best.floatNodes.size(), best.floatNodes.size() == 1 ? "" : "s", r.seconds);
  out += fmt("wrote %s (pipeline: %s)\n", request.optimize.outputPath.c_str(), r.pipeline.c_str());
  return out;
}

}  // namespace whittle::tune
