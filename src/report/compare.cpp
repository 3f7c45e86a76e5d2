// The comparison engine: both models on the same batches, metrics accumulated as the batches
// stream, then interleaved timed runs on the first batch.
#include "whittle/report/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

#include "whittle/analysis/model_stats.h"
#include "whittle/common/text.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/report/metrics.h"
#include "whittle/report/report.h"
#include "whittle/runtime/session.h"

namespace whittle::report {
namespace {

bool isFloatType(ir::DataType t) {
  return t == ir::DataType::kFloat || t == ir::DataType::kFloat16 || t == ir::DataType::kBFloat16 ||
         t == ir::DataType::kDouble;
}

bool isNumeric(ir::DataType t) {
  return t != ir::DataType::kString && t != ir::DataType::kUndefined;
}

/// The first `elements` elements of a tensor as float (every numeric type).
std::vector<float> toFloat(const ir::Tensor& t, int64_t elements) {
  std::vector<float> out(static_cast<size_t>(elements));
  if (t.dtype() == ir::DataType::kFloat) {
    std::copy_n(t.data<float>(), elements, out.begin());
  } else {
    for (int64_t i = 0; i < elements; ++i) out[static_cast<size_t>(i)] = static_cast<float>(t.valueAsDouble(i));
  }
  return out;
}

/// Elements of the real samples: a tensor whose first dim is the padded batch keeps `count` rows.
int64_t realElements(const ir::Tensor& t, int64_t paddedRows, int64_t count) {
  if (t.rank() >= 1 && t.dims()[0] == paddedRows && count < paddedRows && paddedRows > 0) {
    return t.numel() / paddedRows * count;
  }
  return t.numel();
}

/// C when `dims` is [N, C] or [N, C, 1, ...] with N == rows and C >= 2, else 0.
int64_t classCount(const std::vector<int64_t>& dims, int64_t rows) {
  if (dims.size() < 2 || dims[0] != rows || dims[1] < 2) return 0;
  for (size_t i = 2; i < dims.size(); ++i) {
    if (dims[i] != 1) return 0;
  }
  return dims[1];
}

std::string specText(const data::InputSpec& s) {
  return "'" + s.name + "' " + std::string(ir::dataTypeName(s.dtype)) + (s.dims ? " " + data::dimsText(*s.dims) : "");
}

Status checkSameInputs(const ir::Graph& original, const ir::Graph& optimized) {
  std::vector<data::InputSpec> a = data::inputSpecs(original);
  std::vector<data::InputSpec> b = data::inputSpecs(optimized);
  auto list = [](const std::vector<data::InputSpec>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + specText(x);
    return s;
  };
  bool same = a.size() == b.size();
  for (size_t i = 0; same && i < a.size(); ++i) {
    const data::InputSpec* match = nullptr;
    for (const auto& y : b) {
      if (y.name == a[i].name) match = &y;
    }
    if (match == nullptr || match->dtype != a[i].dtype) {
      same = false;
      break;
    }
    if (a[i].dims && match->dims) {
      same = a[i].dims->size() == match->dims->size();
      for (size_t d = 0; same && d < a[i].dims->size(); ++d) {
        const ir::Dim& x = (*a[i].dims)[d];
        const ir::Dim& y = (*match->dims)[d];
        same = !(x.isKnown() && y.isKnown()) || x.value == y.value;
      }
    }
  }
  if (same) return Status::ok();
  return invalidInput("the models have different inputs: original " + list(a) + "; optimized " + list(b));
}

double nowMs() {
  using Clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

LatencyStats latencyOf(const std::vector<double>& ms, int64_t batch) {
  LatencyStats s;
  s.runs = static_cast<int64_t>(ms.size());
  s.batch = batch;
  if (ms.empty()) return s;
  s.p50Ms = percentile(ms, 50);
  s.p90Ms = percentile(ms, 90);
  s.p99Ms = percentile(ms, 99);
  double sum = 0;
  for (double m : ms) sum += m;
  s.meanMs = sum / static_cast<double>(ms.size());
  s.throughput = s.meanMs > 0 ? static_cast<double>(batch) * 1000.0 / s.meanMs : 0.0;
  return s;
}

}  // namespace

double CompareResult::speedup() const {
  return optimizedLatency.p50Ms > 0 && originalLatency.p50Ms > 0 ? originalLatency.p50Ms / optimizedLatency.p50Ms : 0.0;
}

double CompareResult::sizeRatio() const {
  return original.fileBytes > 0 && optimized.fileBytes >= 0
             ? static_cast<double>(optimized.fileBytes) / static_cast<double>(original.fileBytes)
             : 0.0;
}

double CompareResult::minOutputSqnr() const {
  double m = std::numeric_limits<double>::infinity();
  for (const auto& o : outputs) m = std::min(m, o.sqnrDb);
  return m;
}

const OutputMetrics* CompareResult::classification() const {
  for (const auto& o : outputs) {
    if (o.hasAccuracy) return &o;
  }
  for (const auto& o : outputs) {
    if (o.agreement) return &o;
  }
  return nullptr;
}

bool CompareResult::gatesPassed() const {
  return std::all_of(gates.begin(), gates.end(), [](const GateResult& g) { return g.passed; });
}

std::map<std::string, int64_t> CompareResult::opDelta() const {
  std::map<std::string, int64_t> delta;
  for (const auto& [op, n] : optimized.opHistogram) delta[op] += n;
  for (const auto& [op, n] : original.opHistogram) delta[op] -= n;
  std::erase_if(delta, [](const auto& kv) { return kv.second == 0; });
  return delta;
}

namespace {

/// Ops that optimizers fold into the producer of their input (epilogue fusions).
bool isFusable(const std::string& opType) {
  static const std::set<std::string> kOps = {"Add",  "Sub",       "Mul",      "Div",     "BatchNormalization",
                                             "Relu", "LeakyRelu", "Clip",     "Sigmoid", "HardSigmoid",
                                             "Tanh", "HardSwish", "Identity", "Softplus"};
  return kOps.count(opType) != 0;
}

/// The last value of the chain of single-use fusable ops that starts at `value` and whose
/// outputs are all absent from `optimized`: what a fused node that kept the name of the first
/// value computes (Conv -> Add -> Relu fused into one Conv named after the Conv's output).
const ir::Value* fusedChainEnd(const ir::Value* value, const ir::Graph& optimized) {
  const ir::Value* end = value;
  while (end->uses().size() == 1 && !end->isGraphOutput()) {
    const ir::Node* user = end->uses()[0].user;
    if (end->uses()[0].implicit() || !isFusable(user->opType()) || user->output(0) == nullptr) break;
    const ir::Value* next = user->output(0);
    if (optimized.findValue(next->name()) != nullptr || next->isGraphOutput()) break;
    end = next;
  }
  return end;
}

}  // namespace

std::vector<LayerMetrics> matchLayers(const ir::Graph& original, const ir::Graph& optimized) {
  // Original tensor name -> the optimized DequantizeLinear output that carries it.
  std::unordered_map<std::string, std::string> viaQdq;
  for (const ir::Node* node : optimized.nodes()) {
    if (node->opType() != "DequantizeLinear" || !node->domain().empty() || node->output(0) == nullptr) continue;
    const ir::Value* q = node->input(0);
    const ir::Node* quant = q != nullptr ? q->producer() : nullptr;
    if (quant == nullptr || quant->opType() != "QuantizeLinear" || quant->input(0) == nullptr) continue;
    viaQdq.emplace(quant->input(0)->name(), node->output(0)->name());
  }
  // Original tensor -> (optimized tensor, how it matched).
  std::unordered_map<std::string, std::pair<std::string, std::string>> found;
  for (const ir::Node* node : original.nodes()) {
    if (node->opType() == "Constant") continue;
    for (size_t k = 0; k < node->numOutputs(); ++k) {
      const ir::Value* out = node->output(k);
      if (out == nullptr || out->isGraphOutput() || out->isInitializer()) continue;
      // Not activations: Dropout's mask, and values declared with a non-float type (shapes, indices).
      if ((node->opType() == "Dropout" && k > 0) ||
          (out->dtype() != ir::DataType::kUndefined && !isFloatType(out->dtype()))) {
        continue;
      }
      // A QDQ pair on the tensor wins over the tensor itself: its output is what the next
      // layer reads, so it carries the activation's quantization error too.
      const ir::Value* same = optimized.findValue(out->name());
      const ir::Value* dq = nullptr;
      if (auto it = viaQdq.find(out->name()); it != viaQdq.end()) dq = optimized.findValue(it->second);
      std::pair<std::string, std::string> match;
      if (dq != nullptr && !dq->isGraphOutput()) {
        match = {dq->name(), "qdq"};
      } else if (same != nullptr && same->producer() != nullptr && !same->isInitializer() && !same->isGraphOutput()) {
        match = {same->name(), "name"};
      } else {
        continue;
      }
      // When the ops after the tensor are gone from the optimized model, they were fused
      // into its producer: the optimized tensor holds the end of that chain.
      const ir::Value* end = fusedChainEnd(out, optimized);
      if (end != out) {
        if (end->dtype() != ir::DataType::kUndefined && !isFloatType(end->dtype())) continue;
        match.second = "fused-" + match.second;
      }
      found.emplace(end->name(), std::move(match));
    }
  }
  std::vector<LayerMetrics> layers;
  for (const ir::Node* node : original.nodes()) {
    for (const ir::Value* out : node->outputs()) {
      auto it = out != nullptr ? found.find(out->name()) : found.end();
      if (it == found.end()) continue;
      LayerMetrics layer;
      layer.tensor = out->name();
      layer.opType = node->opType();
      layer.node = node->name();
      layer.optimizedTensor = it->second.first;
      layer.match = it->second.second;
      layers.push_back(std::move(layer));
      found.erase(it);
    }
  }
  return layers;
}

Expected<ModelSummary> summarizeModel(const ir::Model& model, const std::string& path) {
  WH_ASSIGN_OR_RETURN(analysis::ModelStats stats, analysis::computeStats(model, path));
  ModelSummary s;
  s.path = path;
  s.fileBytes = stats.file.sizeBytes >= 0 ? stats.file.sizeBytes + stats.file.externalDataBytes : -1;
  s.nodes = stats.nodeCount;
  s.parameters = stats.parameters.total;
  s.parameterBytes = stats.parameters.bytes;
  for (const auto& [dtype, c] : stats.parameters.byDtype) s.parameterBytesByDtype[dtype] = c.bytes;
  for (const auto& [op, n] : stats.opHistogram) s.opHistogram[op] = n;
  for (const auto& [key, value] : model.metadata) {
    if (key == "whittle.pipeline") s.pipeline = value;
  }
  s.producer = model.producerName + (model.producerVersion.empty() ? "" : " " + model.producerVersion);
  return s;
}

Expected<CompareResult> compareModels(const ir::Model& original, const std::string& originalPath,
                                      const ir::Model& optimized, const std::string& optimizedPath,
                                      data::Dataset& dataset, const CompareOptions& options) {
  WH_RETURN_IF_ERROR(checkSameInputs(*original.graph, *optimized.graph));
  const auto& outsA = original.graph->outputs();
  const auto& outsB = optimized.graph->outputs();
  if (outsA.size() != outsB.size()) {
    return invalidInput("the models have different outputs: the original has " + std::to_string(outsA.size()) +
                        ", the optimized " + std::to_string(outsB.size()));
  }
  if (dataset.size() == 0) return invalidInput(dataset.path() + ": the data set has no samples");

  CompareResult result;
  result.dataset = dataset.describe();
  result.threads = options.threads;
  result.hasLabels = dataset.hasLabels();
  result.perLayer = options.perLayer;
  WH_ASSIGN_OR_RETURN(result.original, summarizeModel(original, originalPath));
  WH_ASSIGN_OR_RETURN(result.optimized, summarizeModel(optimized, optimizedPath));

  int64_t batch = dataset.fixedBatch() ? *dataset.fixedBatch() : std::max<int64_t>(1, options.batchSize);
  batch = std::min(batch, dataset.fixedBatch() ? batch : dataset.size());
  result.batch = batch;

  runtime::SessionOptions plain;
  plain.threads = options.threads;
  auto sessionFor = [&](const ir::Model& model, const runtime::SessionOptions& so,
                        const std::string& which) -> Expected<std::unique_ptr<runtime::Session>> {
    auto s = runtime::Session::create(model, so);
    if (!s.isOk()) return s.status().withContext(which);
    return s;
  };
  WH_ASSIGN_OR_RETURN(auto sessionA, sessionFor(original, plain, "original model " + originalPath));
  WH_ASSIGN_OR_RETURN(auto sessionB, sessionFor(optimized, plain, "optimized model " + optimizedPath));

  // With --per-layer the accuracy pass runs sessions that also return the matched activations.
  std::vector<LayerMetrics> layers;
  std::unique_ptr<runtime::Session> layerA, layerB;
  if (options.perLayer) {
    layers = matchLayers(*original.graph, *optimized.graph);
    runtime::SessionOptions soA = plain, soB = plain;
    for (const auto& l : layers) {
      soA.extraOutputs.push_back(l.tensor);
      soB.extraOutputs.push_back(l.optimizedTensor);
    }
    WH_ASSIGN_OR_RETURN(layerA, sessionFor(original, soA, "original model " + originalPath + " (per-layer)"));
    WH_ASSIGN_OR_RETURN(layerB, sessionFor(optimized, soB, "optimized model " + optimizedPath + " (per-layer)"));
  }
  runtime::Session& runA = layerA ? *layerA : *sessionA;
  runtime::Session& runB = layerB ? *layerB : *sessionB;

  size_t numOutputs = outsA.size();
  std::vector<ErrorAccumulator> outErr(numOutputs);
  std::vector<ClassificationAccumulator> outCls(numOutputs);
  std::vector<bool> labelsFit(numOutputs, true);
  std::vector<OutputMetrics> outputs(numOutputs);
  std::vector<ErrorAccumulator> layerErr(layers.size());
  std::vector<bool> layerFloat(layers.size(), true);

  // Models whose input declares a free batch dimension but whose graph pins batch 1 (a Reshape
  // to [1,...], common in detector exports) fail at a larger batch: probe the first batch, and
  // on failure run everything at batch 1 if that works, with a note.
  if (batch > 1 && !dataset.fixedBatch()) {
    WH_ASSIGN_OR_RETURN(data::Batch probe, dataset.read(0, batch));
    Status failed = runA.run(probe.inputs).status();
    if (failed.isOk()) failed = runB.run(probe.inputs).status();
    if (!failed.isOk()) {
      WH_ASSIGN_OR_RETURN(data::Batch one, dataset.read(0, 1));
      if (!runA.run(one.inputs).isOk() || !runB.run(one.inputs).isOk()) return failed;
      result.notes.push_back("ran at batch 1: at batch " + std::to_string(batch) +
                             " the model failed (" + failed.message() +
                             "); its graph likely fixes the batch size although its input leaves it free");
      batch = 1;
      result.batch = 1;
    }
  }

  dataset.reset();
  int64_t done = 0;
  const std::string phase = options.perLayer ? "accuracy + per-layer" : "accuracy";
  for (;;) {
    WH_ASSIGN_OR_RETURN(data::Batch b, dataset.next(batch));
    if (b.empty()) break;
    int64_t rows = b.inputs.empty() || b.inputs[0].second.rank() == 0 ? b.count : b.inputs[0].second.dims()[0];
    WH_ASSIGN_OR_RETURN(auto resA, runA.run(b.inputs));
    WH_ASSIGN_OR_RETURN(auto resB, runB.run(b.inputs));
    if (resA.size() < numOutputs || resB.size() < numOutputs)
      return internalError("the session returned too few outputs");
    for (size_t o = 0; o < numOutputs; ++o) {
      const ir::Tensor& ta = resA[o].second;
      const ir::Tensor& tb = resB[o].second;
      OutputMetrics& m = outputs[o];
      if (done == 0) {
        m.name = resA[o].first;
        m.dims = ta.dims();
        m.classes = isNumeric(ta.dtype()) ? classCount(ta.dims(), rows) : 0;
        m.classScores = m.classes > 0;
      }
      if (!isNumeric(ta.dtype()) || !isNumeric(tb.dtype())) continue;
      if (ta.numel() != tb.numel()) {
        return invalidInput("output '" + m.name + "': the original gives " + data::dimsText(ta.dims()) +
                            ", the optimized " + data::dimsText(tb.dims()) + " ('" + resB[o].first + "')");
      }
      int64_t n = realElements(ta, rows, b.count);
      std::vector<float> fa = toFloat(ta, n), fb = toFloat(tb, n);
      outErr[o].add(fa, fb);
      if (m.classScores && classCount(ta.dims(), rows) == m.classes) {
        for (int64_t s = 0; s < b.count; ++s) {
          int64_t label = b.labels.empty() ? -1 : b.labels[static_cast<size_t>(s)];
          if (label >= m.classes) labelsFit[o] = false;
          std::span<const float> ra(fa.data() + s * m.classes, static_cast<size_t>(m.classes));
          std::span<const float> rb(fb.data() + s * m.classes, static_cast<size_t>(m.classes));
          outCls[o].add(ra, rb, label < m.classes ? label : -1);
        }
      }
    }
    std::unordered_map<std::string, const ir::Tensor*> byNameA, byNameB;
    for (size_t i = numOutputs; i < resA.size(); ++i) byNameA[resA[i].first] = &resA[i].second;
    for (size_t i = numOutputs; i < resB.size(); ++i) byNameB[resB[i].first] = &resB[i].second;
    for (size_t l = 0; l < layers.size(); ++l) {
      auto ia = byNameA.find(layers[l].tensor);
      auto ib = byNameB.find(layers[l].optimizedTensor);
      if (ia == byNameA.end() || ib == byNameB.end()) {
        return internalError("per-layer: the session did not return '" + layers[l].tensor + "'");
      }
      const ir::Tensor& ta = *ia->second;
      const ir::Tensor& tb = *ib->second;
      if (!isFloatType(ta.dtype()) || !isNumeric(tb.dtype()) || ta.numel() != tb.numel()) {
        layerFloat[l] = false;
        continue;
      }
      int64_t n = realElements(ta, rows, b.count);
      layerErr[l].add(toFloat(ta, n), toFloat(tb, n));
    }
    done += b.count;
    if (options.progress) options.progress(phase, done, dataset.size());
  }
  result.samples = done;

  for (size_t o = 0; o < numOutputs; ++o) {
    OutputMetrics& m = outputs[o];
    m.elements = outErr[o].count();
    m.cosine = outErr[o].cosine();
    m.sqnrDb = outErr[o].sqnrDb();
    m.maxAbsError = outErr[o].maxAbsError();
    m.meanAbsError = outErr[o].meanAbsError();
    if (m.classScores && outCls[o].samples() > 0) {
      m.agreement = outCls[o].agreement();
      m.hasAccuracy = result.hasLabels && labelsFit[o] && outCls[o].labelled() > 0;
      if (m.hasAccuracy) {
        m.top1Original = outCls[o].top1Original();
        m.top5Original = outCls[o].top5Original();
        m.top1Optimized = outCls[o].top1Optimized();
        m.top5Optimized = outCls[o].top5Optimized();
      }
    }
  }
  result.outputs = std::move(outputs);
  for (size_t l = 0; l < layers.size(); ++l) {
    if (!layerFloat[l] || layerErr[l].count() == 0) continue;
    layers[l].sqnrDb = layerErr[l].sqnrDb();
    layers[l].cosine = layerErr[l].cosine();
    layers[l].maxAbsError = layerErr[l].maxAbsError();
    result.layers.push_back(std::move(layers[l]));
  }
  layerA.reset();
  layerB.reset();

  // Latency: the first batch, the two models alternating (and alternating which goes first)
  // so that drift in the machine's load falls on both alike.
  if (options.latencyRuns > 0) {
    WH_ASSIGN_OR_RETURN(data::Batch first, dataset.read(0, std::min(batch, dataset.size())));
    int64_t total = options.warmupRuns + options.latencyRuns;
    std::vector<double> msA, msB;
    for (int64_t i = 0; i < total; ++i) {
      for (int k = 0; k < 2; ++k) {
        bool a = (k == 0) == (i % 2 == 0);
        double t0 = nowMs();
        auto r = (a ? *sessionA : *sessionB).run(first.inputs);
        double t1 = nowMs();
        if (!r.isOk()) return r.status();
        if (i >= options.warmupRuns) (a ? msA : msB).push_back(t1 - t0);
      }
      if (options.progress) options.progress("latency", i + 1, total);
    }
    int64_t rows =
        first.inputs.empty() || first.inputs[0].second.rank() == 0 ? first.count : first.inputs[0].second.dims()[0];
    result.originalLatency = latencyOf(msA, rows);
    result.optimizedLatency = latencyOf(msB, rows);
  }
  return result;
}

Status evaluateGates(CompareResult& result, const Gates& gates) {
  result.gates.clear();
  auto add = [&](const std::string& name, double threshold, double measured, bool passed, const std::string& text) {
    result.gates.push_back({name, threshold, measured, passed, name + ": " + text});
  };
  const OutputMetrics* cls = result.classification();
  if (gates.maxAccuracyDrop) {
    if (cls == nullptr || !cls->hasAccuracy) {
      return invalidInput(
          "--max-accuracy-drop needs labels that fit an output of class scores ([N, C] with every label < C); "
          "give --labels FILE or a data set with labels");
    }
    double drop = (cls->top1Original - cls->top1Optimized) * 100.0;
    // Accuracies are ratios of counts: 0.65 - 0.64 must not read as more than 1 pp.
    bool ok = drop <= *gates.maxAccuracyDrop + 1e-9;
    add("max-accuracy-drop", *gates.maxAccuracyDrop, drop, ok,
        "top-1 drop " + fmt("%.2f", drop) + " pp " + (ok ? "<=" : ">") + " " + fmt("%g", *gates.maxAccuracyDrop) +
            " pp (" + fmt("%.2f", cls->top1Original * 100) + " % -> " + fmt("%.2f", cls->top1Optimized * 100) + " %)");
  }
  if (gates.minAgreement) {
    if (cls == nullptr || !cls->agreement) {
      return invalidInput(
          "--min-agreement needs an output of class scores ([N, C] or [N, C, 1, 1]); the models have none");
    }
    double pct = *cls->agreement * 100.0;
    bool ok = pct >= *gates.minAgreement - 1e-9;
    add("min-agreement", *gates.minAgreement, pct, ok,
        "top-1 agreement " + fmt("%.2f", pct) + " % " + (ok ? ">=" : "<") + " " + fmt("%g", *gates.minAgreement) +
            " %");
  }
  if (gates.minSqnr) {
    double s = result.minOutputSqnr();
    bool ok = s >= *gates.minSqnr;
    add("min-sqnr", *gates.minSqnr, s, ok,
        "output SQNR " + formatDb(s) + " " + (ok ? ">=" : "<") + " " + fmt("%g", *gates.minSqnr) + " dB");
  }
  if (gates.minSpeedup) {
    if (result.originalLatency.runs == 0) return invalidInput("--min-speedup needs timed runs (--latency-runs > 0)");
    double s = result.speedup();
    bool ok = s >= *gates.minSpeedup;
    add("min-speedup", *gates.minSpeedup, s, ok,
        "speedup " + fmt("%.2f", s) + "x " + (ok ? ">=" : "<") + " " + fmt("%g", *gates.minSpeedup) + "x (p50 " +
            fmt("%.3f", result.originalLatency.p50Ms) + " ms -> " + fmt("%.3f", result.optimizedLatency.p50Ms) +
            " ms)");
  }
  if (gates.maxSizeRatio) {
    if (result.original.fileBytes <= 0 || result.optimized.fileBytes < 0) {
      return invalidInput("--max-size-ratio needs both models read from files");
    }
    double r = result.sizeRatio();
    bool ok = r <= *gates.maxSizeRatio;
    add("max-size-ratio", *gates.maxSizeRatio, r, ok,
        "size ratio " + fmt("%.3f", r) + " " + (ok ? "<=" : ">") + " " + fmt("%g", *gates.maxSizeRatio) + " (" +
            std::to_string(result.original.fileBytes) + " -> " + std::to_string(result.optimized.fileBytes) +
            " bytes)");
  }
  return Status::ok();
}

Expected<CompareResult> compareFiles(const std::string& originalPath, const std::string& optimizedPath,
                                     const data::DatasetSpec& data, const CompareOptions& options, const Gates& gates,
                                     const ReportPaths& reports) {
  WH_ASSIGN_OR_RETURN(ir::Model original, onnx_io::load(originalPath));
  WH_ASSIGN_OR_RETURN(ir::Model optimized, onnx_io::load(optimizedPath));
  WH_RETURN_IF_ERROR(checkSameInputs(*original.graph, *optimized.graph));
  WH_ASSIGN_OR_RETURN(auto dataset, data::openDataset(data, data::inputSpecs(*original.graph)));
  if (gates.maxAccuracyDrop && !dataset->hasLabels()) {
    return invalidInput("--max-accuracy-drop needs labels: " + dataset->describe() + " has none (give --labels FILE)");
  }
  WH_ASSIGN_OR_RETURN(CompareResult result,
                      compareModels(original, originalPath, optimized, optimizedPath, *dataset, options));
  if (!data.labels.empty()) {
    bool fit =
        std::any_of(result.outputs.begin(), result.outputs.end(), [](const OutputMetrics& o) { return o.hasAccuracy; });
    if (!fit) {
      return invalidInput("labels " + data.labels +
                          ": no output of the models holds class scores that the labels fit "
                          "([N, C] with every label < C)");
    }
  }
  WH_RETURN_IF_ERROR(evaluateGates(result, gates));
  WH_RETURN_IF_ERROR(writeReports(result, reports));
  return result;
}

}  // namespace whittle::report
