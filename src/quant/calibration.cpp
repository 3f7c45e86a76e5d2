#include "whittle/quant/calibration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "whittle/common/file_util.h"
#include "whittle/data/dataset.h"
#include "whittle/ir/graph.h"
#include "whittle/onnx_io/subgraph.h"
#include "whittle/quant/quant_math.h"
#include "whittle/runtime/session.h"

namespace whittle::quant {

std::string_view calibrationMethodName(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kEntropy: return "entropy";
    case CalibrationMethod::kMse: return "mse";
  }
  return "minmax";
}

std::optional<CalibrationMethod> parseCalibrationMethod(std::string_view name) {
  for (auto m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kEntropy,
                 CalibrationMethod::kMse}) {
    if (calibrationMethodName(m) == name) return m;
  }
  if (name == "kl" || name == "kl-divergence") return CalibrationMethod::kEntropy;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Observer

namespace {

int binOf(float x, float range) {
  double pos = (static_cast<double>(x) + range) / (2.0 * range) * kHistogramBins;
  return static_cast<int>(std::clamp(pos, 0.0, static_cast<double>(kHistogramBins - 1)));
}

}  // namespace

void Observer::grow(float absMax) {
  float newRange = obs_.histRange;
  while (newRange < absMax) newRange *= 2;
  if (newRange == obs_.histRange) return;
  // Old bin i covers [-R + i w, -R + (i+1) w); with R' = 2^k R each old bin lies inside one
  // new bin (kHistogramBins is a power of two), so mapping centres merges exactly.
  std::vector<uint64_t> merged(kHistogramBins, 0);
  const double w = 2.0 * obs_.histRange / kHistogramBins;
  for (int i = 0; i < kHistogramBins; ++i) {
    if (obs_.counts[i] == 0) continue;
    double centre = -obs_.histRange + (i + 0.5) * w;
    merged[binOf(static_cast<float>(centre), newRange)] += obs_.counts[i];
  }
  obs_.counts = std::move(merged);
  obs_.histRange = newRange;
}

void Observer::observe(std::span<const float> values) {
  if (values.empty()) return;
  const float* p = values.data();
  const size_t n = values.size();
  // NaN fails both comparisons and is skipped; the simd reduction lets the compiler use
  // vector min/max.
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  size_t i = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (size_t k = 0; k < n; ++k) {
    lo = p[k] < lo ? p[k] : lo;
    hi = p[k] > hi ? p[k] : hi;
  }
  if (lo > hi) return;  // all NaN
  if (!seen_) {
    obs_.min = lo;
    obs_.max = hi;
    seen_ = true;
  } else {
    obs_.min = std::min(obs_.min, lo);
    obs_.max = std::max(obs_.max, hi);
  }
  float absMax = std::max(std::fabs(lo), std::fabs(hi));
  if (!std::isfinite(absMax)) absMax = std::numeric_limits<float>::max() / 4;
  if (obs_.histRange == 0) {
    if (absMax == 0) {
      obs_.samples += static_cast<int64_t>(n);
      return;  // zeros only so far: nothing for the histogram to place
    }
    obs_.histRange = absMax;
    obs_.counts.assign(kHistogramBins, 0);
    // Zeros seen before the window existed go to the centre bin.
    if (obs_.samples > 0) obs_.counts[binOf(0.0f, absMax)] += static_cast<uint64_t>(obs_.samples);
  } else if (absMax > obs_.histRange) {
    grow(absMax);
  }
  const float range = obs_.histRange;
  const float perBin = static_cast<float>(kHistogramBins) / (2.0f * range);
  // Four interleaved histograms: runs of equal values (the zeros after a Relu) would
  // otherwise make every increment wait on the previous one to the same counter.
  constexpr size_t kCopies = 4;
  std::vector<uint32_t> partial(kCopies * kHistogramBins, 0);
  // Bins are computed a block at a time (vectorized), then counted.
  constexpr size_t kBlock = 1024;
  int32_t bins[kBlock];
  const float maxBin = static_cast<float>(kHistogramBins - 1);
  for (size_t start = 0; start < n; start += size_t{1} << 30) {  // uint32 counters never overflow
    size_t end = std::min(n, start + (size_t{1} << 30));
    for (size_t block = start; block < end; block += kBlock) {
      size_t m = std::min(kBlock, end - block);
      const float* q = p + block;
#pragma omp simd
      for (size_t k = 0; k < m; ++k) {
        float f = (q[k] + range) * perBin;
        // NaN goes to bin 0 (not counted below): converting NaN to an integer is undefined.
        f = f >= 0.0f ? (f > maxBin ? maxBin : f) : 0.0f;
        bins[k] = static_cast<int32_t>(f);
      }
      for (i = 0; i + kCopies <= m; i += kCopies) {
        for (size_t c = 0; c < kCopies; ++c) {
          if (q[i + c] == q[i + c]) ++partial[c * kHistogramBins + bins[i + c]];
        }
      }
      for (; i < m; ++i) {
        if (q[i] == q[i]) ++partial[bins[i]];
      }
    }
    for (size_t c = 0; c < kCopies; ++c) {
      for (int b = 0; b < kHistogramBins; ++b) {
        obs_.counts[b] += partial[c * kHistogramBins + b];
        partial[c * kHistogramBins + b] = 0;
      }
    }
  }
  obs_.samples += static_cast<int64_t>(n);
}

// ---------------------------------------------------------------------------------------
// Choosing a range

namespace {

Range percentileRange(const Observation& obs, double p) {
  const double w = 2.0 * obs.histRange / kHistogramBins;
  uint64_t total = 0;
  for (uint64_t c : obs.counts) total += c;
  if (total == 0) return {obs.min, obs.max};
  double frac = std::clamp(p, 50.0, 100.0) / 100.0;
  double hiCount = frac * static_cast<double>(total);
  double loCount = (1.0 - frac) * static_cast<double>(total);
  Range r{obs.min, obs.max};
  uint64_t cum = 0;
  bool loSet = false;
  for (int i = 0; i < kHistogramBins; ++i) {
    cum += obs.counts[i];
    if (!loSet && static_cast<double>(cum) > loCount) {
      r.lo = static_cast<float>(-obs.histRange + i * w);
      loSet = true;
    }
    if (static_cast<double>(cum) >= hiCount) {
      r.hi = static_cast<float>(-obs.histRange + (i + 1) * w);
      break;
    }
  }
  r.lo = std::clamp(r.lo, obs.min, obs.max);
  r.hi = std::clamp(r.hi, obs.min, obs.max);
  return r;
}

// TensorRT's entropy calibration on the histogram of |x|: for every threshold i (in bins),
// P is the histogram cut at i with the outliers added to its last bin, Q is P squeezed into
// `levels` bins and expanded back (each level spread evenly over P's nonzero bins); the
// threshold with the least KL(P || Q) wins.
Range entropyRange(const Observation& obs, int levels) {
  const int half = kHistogramBins / 2;
  std::vector<double> h(half, 0.0);
  for (int j = 0; j < half; ++j) {
    h[j] = static_cast<double>(obs.counts[half + j]) + static_cast<double>(obs.counts[half - 1 - j]);
  }
  const double w = obs.histRange / half;
  int last = half;
  while (last > 0 && h[last - 1] == 0) --last;
  if (last <= levels) return {obs.min, obs.max};
  double bestKl = std::numeric_limits<double>::infinity();
  int best = last;
  std::vector<double> p(half), q(half);
  for (int i = levels; i <= last; ++i) {
    double outliers = 0;
    for (int j = i; j < half; ++j) outliers += h[j];
    for (int j = 0; j < i; ++j) p[j] = h[j];
    p[i - 1] += outliers;
    // Q: merge h[0, i) into `levels` groups, then spread each group's mass evenly over its
    // nonzero bins.
    for (int g = 0; g < levels; ++g) {
      int start = static_cast<int>(static_cast<int64_t>(g) * i / levels);
      int end = static_cast<int>(static_cast<int64_t>(g + 1) * i / levels);
      double sum = 0;
      int nonzero = 0;
      for (int j = start; j < end; ++j) {
        sum += h[j];
        if (h[j] != 0) ++nonzero;
      }
      for (int j = start; j < end; ++j) q[j] = (h[j] != 0 && nonzero > 0) ? sum / nonzero : 0.0;
    }
    double pSum = 0, qSum = 0;
    for (int j = 0; j < i; ++j) {
      pSum += p[j];
      qSum += q[j];
    }
    if (pSum == 0 || qSum == 0) continue;
    double kl = 0;
    for (int j = 0; j < i; ++j) {
      if (p[j] == 0) continue;
      double pj = p[j] / pSum;
      // A bin that P has and Q lost (only the outlier bin can be one) gets a small mass
      // instead of infinity, as TensorRT smooths.
      double qj = q[j] > 0 ? q[j] / qSum : 1e-4 / qSum;
      kl += pj * std::log(pj / qj);
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  float threshold = static_cast<float>(best * w);
  return {std::max(obs.min, -threshold), std::min(obs.max, threshold)};
}

// The clipping of [min, max] by a factor alpha (both ends together) that minimizes the
// expected squared error of quantize-dequantize: values inside the range cost the rounding
// noise scale^2 / 12, values outside cost their distance to the edge squared (over the
// histogram's bin centres).
Range mseRange(const Observation& obs, ir::DataType dtype) {
  const double w = 2.0 * obs.histRange / kHistogramBins;
  const float lo0 = std::min(obs.min, 0.0f), hi0 = std::max(obs.max, 0.0f);
  double bestErr = std::numeric_limits<double>::infinity();
  Range best{obs.min, obs.max};
  constexpr int kSteps = 400;
  for (int k = kSteps; k >= 1; --k) {
    float alpha = static_cast<float>(k) / kSteps;
    Range cand{lo0 * alpha, hi0 * alpha};
    QuantParams qp = activationParams(cand.lo, cand.hi, dtype);
    // The representable edges, as the zero point's rounding leaves them.
    double edgeLo = static_cast<double>(qmin(dtype) - qp.zeroPoint) * qp.scale;
    double edgeHi = static_cast<double>(qmax(dtype) - qp.zeroPoint) * qp.scale;
    double noise = static_cast<double>(qp.scale) * qp.scale / 12.0;
    double err = 0;
    for (int i = 0; i < kHistogramBins; ++i) {
      if (obs.counts[i] == 0) continue;
      double x = -obs.histRange + (i + 0.5) * w;
      double d = x > edgeHi ? x - edgeHi : (x < edgeLo ? edgeLo - x : 0.0);
      err += static_cast<double>(obs.counts[i]) * (d * d + noise);
    }
    if (err < bestErr) {
      bestErr = err;
      best = cand;
    }
  }
  best.lo = std::clamp(best.lo, obs.min, obs.max);
  best.hi = std::clamp(best.hi, obs.min, obs.max);
  return best;
}

}  // namespace

Range chooseRange(const Observation& obs, CalibrationMethod method, double percentile, ir::DataType dtype) {
  if (obs.counts.empty() || obs.histRange <= 0 || method == CalibrationMethod::kMinMax) return {obs.min, obs.max};
  switch (method) {
    case CalibrationMethod::kPercentile: return percentileRange(obs, percentile);
    case CalibrationMethod::kEntropy: {
      // uint8 activations that never go negative have all 256 levels for |x|.
      int levels = (dtype == ir::DataType::kUint8 && obs.min >= 0) ? 256 : 128;
      return entropyRange(obs, levels);
    }
    case CalibrationMethod::kMse: return mseRange(obs, dtype);
    case CalibrationMethod::kMinMax: break;
  }
  return {obs.min, obs.max};
}

// ---------------------------------------------------------------------------------------
// JSON

Status saveCalibrationTable(const CalibrationTable& table, const std::string& path, CalibrationMethod method,
                            double percentile) {
  nlohmann::json doc;
  doc["schema"] = kCalibrationSchema;
  doc["model"] = table.model;
  doc["dataset"] = table.dataset;
  doc["samples"] = table.samples;
  doc["method"] = calibrationMethodName(method);
  doc["percentile"] = percentile;
  doc["histogram_bins"] = kHistogramBins;
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& [name, obs] : table.tensors) {
    Range r = chooseRange(obs, method, percentile);
    nlohmann::json e;
    e["range"] = {r.lo, r.hi};
    e["min"] = obs.min;
    e["max"] = obs.max;
    e["values"] = obs.samples;
    e["histogram"] = {{"range", obs.histRange}, {"counts", obs.counts}};
    tensors[name] = std::move(e);
  }
  doc["tensors"] = std::move(tensors);
  return writeFileAtomic(path, doc.dump(1) + "\n");
}

Expected<CalibrationTable> loadCalibrationTable(const std::string& path) {
  WH_ASSIGN_OR_RETURN(std::string text, readFile(path));
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return invalidInput(path + ": not a JSON object");
  if (!doc.contains("schema") || doc["schema"] != kCalibrationSchema) {
    return invalidInput(path + ": expected \"schema\": \"" + std::string(kCalibrationSchema) + "\"");
  }
  if (!doc.contains("tensors") || !doc["tensors"].is_object()) return invalidInput(path + ": missing \"tensors\"");
  CalibrationTable table;
  table.model = doc.value("model", "");
  table.dataset = doc.value("dataset", "");
  table.samples = doc.value("samples", int64_t{0});
  table.savedMethod = doc.value("method", "minmax");
  table.savedPercentile = doc.value("percentile", 99.99);
  for (const auto& [name, e] : doc["tensors"].items()) {
    std::string where = path + ": tensor '" + name + "'";
    if (!e.is_object() || !e.contains("min") || !e.contains("max") || !e["min"].is_number() || !e["max"].is_number()) {
      return invalidInput(where + ": expected numbers \"min\" and \"max\"");
    }
    Observation obs;
    obs.min = e["min"].get<float>();
    obs.max = e["max"].get<float>();
    obs.samples = e.value("values", int64_t{0});
    if (e.contains("histogram")) {
      const auto& h = e["histogram"];
      if (!h.is_object() || !h.contains("range") || !h.contains("counts") || !h["counts"].is_array()) {
        return invalidInput(where + ": \"histogram\" needs \"range\" and \"counts\"");
      }
      obs.histRange = h["range"].get<float>();
      if (!h["counts"].empty()) {
        if (h["counts"].size() != static_cast<size_t>(kHistogramBins)) {
          return invalidInput(where + ": expected " + std::to_string(kHistogramBins) + " histogram counts, got " +
                              std::to_string(h["counts"].size()));
        }
        obs.counts = h["counts"].get<std::vector<uint64_t>>();
      }
    }
    if (obs.min > obs.max) return invalidInput(where + ": min > max");
    table.tensors[name] = std::move(obs);
  }
  return table;
}

// ---------------------------------------------------------------------------------------
// Running the model

namespace {

// Where each tensor to calibrate comes from: a graph input is read from the data set itself;
// any other value the session must give as an extra output. `names` hold each tensor once.
struct TensorSources {
  std::vector<std::string> outputs;
  std::set<std::string> inputs;
  std::vector<std::string> inSubgraphs;  // computed inside If/Loop/Scan bodies
};

/// The names of the values inside the subgraphs of `graph`, at any depth: their formal inputs
/// and what their nodes compute.
Status addSubgraphValueNames(const ir::Graph& graph, std::set<std::string>& out) {
  for (const ir::Node* n : graph.nodes()) {
    for (const ir::Attribute& a : n->attributes()) {
      if (a.kind != ir::Attribute::Kind::kGraph) continue;
      WH_ASSIGN_OR_RETURN(onnx_io::Subgraph sub, onnx_io::loadSubgraph(a, n->describe()));
      for (size_t i = 0; i < sub.numFormalInputs; ++i) out.insert(sub.graph->inputs()[i]->name());  // fed each run
      for (const ir::Node* inner : sub.graph->nodes()) {
        for (const ir::Value* v : inner->outputs()) {
          if (v != nullptr) out.insert(v->name());
        }
      }
      WH_RETURN_IF_ERROR(addSubgraphValueNames(*sub.graph, out));
    }
  }
  return Status::ok();
}

Expected<TensorSources> tensorSources(const ir::Model& model, const std::vector<std::string>& names) {
  TensorSources sources;
  std::optional<std::set<std::string>> inBodies;  // read when a name is not in the main graph
  for (const std::string& name : names) {
    const ir::Value* v = model.graph->findValue(name);
    if (v == nullptr) {
      if (!inBodies) {
        inBodies.emplace();
        WH_RETURN_IF_ERROR(addSubgraphValueNames(*model.graph, *inBodies));
      }
      if (!inBodies->contains(name)) return notFound("calibration: no tensor named '" + name + "' in the model");
      sources.inSubgraphs.push_back(name);
      continue;
    }
    if (v->isGraphInput() && !v->isInitializer()) {
      sources.inputs.insert(name);
    } else {
      sources.outputs.push_back(name);
    }
  }
  return sources;
}

// Feeds each run the states the previous run gave (CalibrationOptions::carry).
class StateCarry {
 public:
  // Checks that every carried output is a value of `model` and every carried input a graph
  // input, and adds the outputs that are not graph outputs to `extraOutputs`.
  static Expected<StateCarry> make(const ir::Model& model, const std::vector<CarriedState>& carry,
                                   std::vector<std::string>& extraOutputs) {
    for (size_t i = 0; i < carry.size(); ++i) {
      const CarriedState& c = carry[i];
      const std::string what = "--carry-state " + c.output + "=" + c.input;
      const ir::Value* out = model.graph->findValue(c.output);
      if (out == nullptr) return notFound(what + ": the model has no tensor named '" + c.output + "'");
      const ir::Value* in = model.graph->findValue(c.input);
      if (in == nullptr || !in->isGraphInput() || in->isInitializer()) {
        return notFound(what + ": the model has no input named '" + c.input + "'");
      }
      for (size_t j = 0; j < i; ++j) {
        if (carry[j].input == c.input) return invalidInput(what + ": input '" + c.input + "' is carried into twice");
      }
      if (!out->isGraphOutput() && std::find(extraOutputs.begin(), extraOutputs.end(), c.output) == extraOutputs.end()) {
        extraOutputs.push_back(c.output);
      }
    }
    return StateCarry(carry);
  }

  bool active() const { return !carry_.empty(); }

  // Replaces the carried inputs of `inputs` by the previous run's states (none before the first).
  void feed(std::vector<data::NamedTensor>& inputs) const {
    for (auto& [name, tensor] : inputs) {
      auto it = states_.find(name);
      if (it != states_.end()) tensor = it->second;
    }
  }

  // Keeps this run's states for the next run.
  Status keep(const std::vector<runtime::NamedTensor>& outputs) {
    for (const CarriedState& c : carry_) {
      auto it = std::find_if(outputs.begin(), outputs.end(), [&](const auto& o) { return o.first == c.output; });
      if (it == outputs.end()) return internalError("calibration: the run gave no '" + c.output + "' to carry");
      states_[c.input] = it->second;
    }
    return Status::ok();
  }

  // Context for a failed run: which sample, and that its state came from the previous one.
  std::string context(int64_t sample) const {
    std::string pairs;
    for (const CarriedState& c : carry_) pairs += (pairs.empty() ? "" : ", ") + c.output + " -> " + c.input;
    return "calibration sample " + std::to_string(sample) + " (state carried from the previous sample: " + pairs + ")";
  }

 private:
  explicit StateCarry(std::vector<CarriedState> carry) : carry_(std::move(carry)) {}
  std::vector<CarriedState> carry_;
  std::map<std::string, ir::Tensor> states_;
};

// How many samples of `data` a calibration run reads (options.limit, when set, caps them).
int64_t samplesToRun(const data::Dataset& data, const CalibrationOptions& options) {
  return options.limit >= 0 ? std::min(data.size(), options.limit) : data.size();
}

// The batch a calibration run starts with: options.batchSize, within the data set's fixed
// batch (a recurrent state or a whole-window input); a run falls back to 1 if the graph pins it.
int64_t firstBatchSize(const data::Dataset& data, const CalibrationOptions& options) {
  if (!options.carry.empty()) return 1;  // consecutive steps of one stream
  const int64_t batch = std::max<int64_t>(1, options.batchSize);
  return data.fixedBatch() ? std::min(batch, *data.fixedBatch()) : batch;
}

}  // namespace

Expected<CarriedState> parseCarriedState(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return invalidInput("--carry-state '" + std::string(text) +
                        "': expected OUTPUT=INPUT (the output whose value the next sample's INPUT takes)");
  }
  return CarriedState{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

Expected<CalibrationTable> calibrate(const ir::Model& model, data::Dataset& data, const std::vector<std::string>& tensors,
                                     const CalibrationOptions& options) {
  std::set<std::string> seen;
  std::vector<std::string> unique;
  for (const std::string& t : tensors) {
    if (seen.insert(t).second) unique.push_back(t);
  }
  WH_ASSIGN_OR_RETURN(TensorSources sources, tensorSources(model, unique));
  const std::vector<std::string>& wanted = sources.outputs;
  const std::set<std::string>& fromInputs = sources.inputs;
  // Threads: fixed, or (0) chosen by the work: start on one thread; after a warm-up sample,
  // time one; a heavy model tries every core on the next two (warm-up, timed) and keeps
  // whichever was faster.
  const bool autoThreads = options.threads <= 0;
  const int coreCount = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int threads = autoThreads ? 1 : options.threads;
  enum class Probe { kWarmUp, kTimeOne, kWarmUpMany, kTimeMany, kDone };
  Probe probe = autoThreads && coreCount > 1 ? Probe::kWarmUp : Probe::kDone;
  double oneThreadMs = 0;
  runtime::SessionOptions so;
  so.threads = threads;
  so.extraOutputs = wanted;
  std::map<std::string, Observer> observers;
  for (const std::string& t : seen) observers[t];
  // Values inside If/Loop/Scan bodies: observed each time a body computes them (the branches
  // that ran, every iteration), whole (a padded last batch is not trimmed there).
  Status bodyStatus;
  if (!sources.inSubgraphs.empty()) {
    so.observeInSubgraphs = sources.inSubgraphs;
    so.subgraphObserver = [&](const std::string& name, const runtime::Value& value) {
      if (!bodyStatus.isOk()) return;
      if (!value.isTensor() || value.tensor().dtype() != ir::DataType::kFloat) {
        bodyStatus = invalidInput("calibration: tensor '" + name + "' inside a subgraph is not float32, only float32 "
                                  "tensors can be calibrated");
        return;
      }
      const ir::Tensor& t = value.tensor();
      observers.at(name).observe(std::span<const float>(t.data<float>(), static_cast<size_t>(t.numel())));
    };
  }
  WH_ASSIGN_OR_RETURN(StateCarry carry, StateCarry::make(model, options.carry, so.extraOutputs));
  WH_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
  std::unique_ptr<runtime::Session> singleThreaded;  // kept while the many-thread one is on trial

  const int64_t total = samplesToRun(data, options);
  int64_t batch = firstBatchSize(data, options);
  int64_t done = 0;
  while (done < total) {
    int64_t count = std::min(batch, total - done);
    WH_ASSIGN_OR_RETURN(data::Batch b, data.read(done, count));
    // The rows the batch's tensors hold: the samples read, or the model's fixed batch size
    // when that is larger (the last batch, padded by repeating its last sample).
    const int64_t rows = data.fixedBatch() ? std::max(*data.fixedBatch(), b.count) : b.count;
    auto observeTensor = [&](const std::string& name, const ir::Tensor& t) -> Status {
      auto it = observers.find(name);
      if (it == observers.end()) return Status::ok();
      if (t.dtype() != ir::DataType::kFloat) {
        return invalidInput("calibration: tensor '" + name + "' is " + std::string(ir::dataTypeName(t.dtype())) +
                            ", only float32 tensors can be calibrated");
      }
      // A padded last batch repeats its last sample: observe only the real ones. Only a batch
      // that was padded (the model's fixed batch size above the samples read) is trimmed, and
      // only along a leading axis of that size: when a sample is a whole input ([10, 3, 32, 32]
      // fed as one sample), its first axis is not a sample axis and every row is real.
      int64_t n = t.numel();
      if (b.count > 0 && b.count < rows && !t.dims().empty() && t.dims()[0] == rows) n = n / rows * b.count;
      it->second.observe(std::span<const float>(t.data<float>(), static_cast<size_t>(n)));
      return Status::ok();
    };
    const auto start = std::chrono::steady_clock::now();
    carry.feed(b.inputs);
    auto ran = session->run(b.inputs);
    if (!ran.isOk() && count > 1 && done == 0) {
      // A graph that pins batch 1 behind a free input dimension: calibrate one sample at a
      // time (the statistics do not depend on the batch size).
      batch = 1;
      continue;
    }
    if (!ran.isOk() && carry.active()) return ran.status().withContext(carry.context(done));
    WH_ASSIGN_OR_RETURN(auto outs, std::move(ran));
    WH_RETURN_IF_ERROR(bodyStatus);
    WH_RETURN_IF_ERROR(carry.keep(outs));
    for (const auto& [name, t] : b.inputs) {
      if (fromInputs.contains(name)) WH_RETURN_IF_ERROR(observeTensor(name, t));
    }
    // Each tensor has its own observer: observe them in parallel.
    std::vector<Status> observed(outs.size());
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (size_t k = 0; k < outs.size(); ++k) observed[k] = observeTensor(outs[k].first, outs[k].second);
    for (const Status& status : observed) WH_RETURN_IF_ERROR(status);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    switch (probe) {
      case Probe::kWarmUp: probe = Probe::kTimeOne; break;
      case Probe::kTimeOne:
        oneThreadMs = ms;
        probe = Probe::kDone;
        if (ms >= kAutoThreadsMinSampleMs && total - done - count >= 4) {
          so.threads = coreCount;
          singleThreaded = std::move(session);
          WH_ASSIGN_OR_RETURN(session, runtime::Session::create(model, so));
          threads = coreCount;
          probe = Probe::kWarmUpMany;
        }
        break;
      case Probe::kWarmUpMany: probe = Probe::kTimeMany; break;
      case Probe::kTimeMany:
        if (ms >= oneThreadMs) {  // no faster on every core: back to one thread
          session = std::move(singleThreaded);
          threads = 1;
        }
        singleThreaded.reset();
        probe = Probe::kDone;
        break;
      case Probe::kDone: break;
    }
    done += count;
    if (options.progress) options.progress(done, total);
  }
  CalibrationTable table;
  table.dataset = data.describe();
  table.samples = done;
  for (const auto& [name, o] : observers) table.tensors[name] = o.observation();
  return table;
}

Expected<int64_t> collectStatistics(const ir::Model& model, data::Dataset& data,
                                    const std::map<std::string, TensorCollector*>& collectors,
                                    const CalibrationOptions& options) {
  std::vector<std::string> names;
  for (const auto& [name, collector] : collectors) names.push_back(name);
  WH_ASSIGN_OR_RETURN(TensorSources sources, tensorSources(model, names));
  const std::vector<std::string>& wanted = sources.outputs;
  const std::set<std::string>& fromInputs = sources.inputs;
  const int threads = options.threads <= 0 ? static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))
                                           : options.threads;
  runtime::SessionOptions so;
  so.threads = threads;
  so.extraOutputs = wanted;
  WH_ASSIGN_OR_RETURN(StateCarry carry, StateCarry::make(model, options.carry, so.extraOutputs));
  WH_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
  const int64_t total = samplesToRun(data, options);
  int64_t batch = firstBatchSize(data, options);
  int64_t done = 0;
  while (done < total) {
    const int64_t count = std::min(batch, total - done);
    WH_ASSIGN_OR_RETURN(data::Batch b, data.read(done, count));
    carry.feed(b.inputs);
    auto ran = session->run(b.inputs);
    if (!ran.isOk() && count > 1 && done == 0) {
      batch = 1;  // a graph that pins batch 1: one sample at a time
      continue;
    }
    if (!ran.isOk() && carry.active()) return ran.status().withContext(carry.context(done));
    WH_ASSIGN_OR_RETURN(auto outs, std::move(ran));
    WH_RETURN_IF_ERROR(carry.keep(outs));
    std::vector<std::pair<const std::string*, const ir::Tensor*>> work;
    for (const auto& [name, t] : b.inputs) {
      if (fromInputs.contains(name)) work.emplace_back(&name, &t);
    }
    for (const auto& [name, t] : outs) {
      if (collectors.contains(name)) work.emplace_back(&name, &t);
    }
    std::vector<Status> collected(work.size());
    // The real rows of each tensor: a padded last batch (the model's fixed batch size above the
    // samples read) keeps its first b.count rows of an axis of that size; otherwise every row
    // of the first axis is real, also when a sample is a whole fixed-batch input.
    const int64_t rows = data.fixedBatch() ? std::max(*data.fixedBatch(), b.count) : b.count;
    auto realRows = [&](const ir::Tensor& t) -> int64_t {
      const int64_t first = t.dims().empty() ? 1 : t.dims()[0];
      return b.count > 0 && b.count < rows && first == rows ? b.count : first;
    };
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (size_t k = 0; k < work.size(); ++k) {
      const ir::Tensor& t = *work[k].second;
      if (t.dtype() != ir::DataType::kFloat) {
        collected[k] = invalidInput("calibration: tensor '" + *work[k].first + "' is " +
                                    std::string(ir::dataTypeName(t.dtype())) + ", only float32 tensors are collected");
        continue;
      }
      collected[k] = collectors.at(*work[k].first)->collect(*work[k].first, t, realRows(t));
    }
    for (const Status& status : collected) WH_RETURN_IF_ERROR(status);
    done += count;
    if (options.progress) options.progress(done, total);
  }
  return done;
}

StandardCalibrationProvider::StandardCalibrationProvider(std::optional<CalibrationTable> loaded, data::Dataset* data,
                                                         CalibrationOptions options)
    : data_(data), options_(std::move(options)) {
  if (loaded) table_ = std::move(*loaded);
}

Expected<CalibrationTable> StandardCalibrationProvider::observe(const ir::Model& model,
                                                                const std::vector<std::string>& tensors) {
  std::vector<std::string> missing;
  for (const std::string& t : tensors) {
    if (!table_.tensors.contains(t)) missing.push_back(t);
  }
  if (!missing.empty()) {
    if (data_ == nullptr) {
      std::string list;
      for (size_t i = 0; i < missing.size() && i < 3; ++i) list += (i ? ", '" : "'") + missing[i] + "'";
      return invalidInput("calibration table has no range for " + std::to_string(missing.size()) + " tensor(s) (" +
                          list + (missing.size() > 3 ? ", ..." : "") +
                          "); give --calib DATA to observe them, or a table made for this model and settings");
    }
    data_->reset();
    WH_ASSIGN_OR_RETURN(CalibrationTable fresh, calibrate(model, *data_, missing, options_));
    ran_ = true;
    if (table_.dataset.empty()) table_.dataset = fresh.dataset;
    table_.samples = std::max(table_.samples, fresh.samples);
    for (auto& [name, obs] : fresh.tensors) table_.tensors[name] = std::move(obs);
  }
  CalibrationTable out;
  out.model = table_.model;
  out.dataset = table_.dataset;
  out.samples = table_.samples;
  for (const std::string& t : tensors) out.tensors[t] = table_.tensors.at(t);
  return out;
}

Expected<std::vector<std::vector<std::pair<std::string, ir::Tensor>>>> StandardCalibrationProvider::sampleFeeds(
    int64_t count) {
  if (data_ == nullptr) return invalidInput("no calibration data set: give --calib DATA");
  std::vector<std::vector<std::pair<std::string, ir::Tensor>>> feeds;
  const int64_t n = std::min(count, data_->size());
  for (int64_t i = 0; i < n; ++i) {
    WH_ASSIGN_OR_RETURN(data::Batch b, data_->read(i, 1));
    feeds.push_back(std::move(b.inputs));
  }
  return feeds;
}

Expected<int64_t> StandardCalibrationProvider::collect(const ir::Model& model,
                                                      const std::map<std::string, TensorCollector*>& collectors) {
  if (data_ == nullptr) return invalidInput("no calibration data set: give --calib DATA");
  data_->reset();
  return collectStatistics(model, *data_, collectors, options_);
}

}  // namespace whittle::quant
