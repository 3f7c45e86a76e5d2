// whittle compare as a library call: the models loaded and summarized, measured by the
// evaluation engine (src/eval/), the gates checked and the reports written.
#include "whittle/report/compare.h"

#include <algorithm>
#include <array>
#include <limits>

#include "whittle/analysis/model_stats.h"
#include "whittle/common/text.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/report/report.h"
#include "whittle/runtime/session.h"

namespace whittle::report {

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

double CompareResult::minChannelSqnr() const {
  double m = std::numeric_limits<double>::infinity();
  for (const auto& o : outputs) m = std::min({m, o.sqnrDb, o.minChannelSqnrDb});
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

const OutputMetrics* CompareResult::perplexity() const {
  for (const auto& o : outputs) {
    if (o.perplexityOriginal) return &o;
  }
  return nullptr;
}

double CompareResult::perplexityIncreasePct(const OutputMetrics& o) {
  if (!o.perplexityOriginal || !o.perplexityOptimized || *o.perplexityOriginal <= 0) return 0;
  return (*o.perplexityOptimized / *o.perplexityOriginal - 1) * 100;
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
  WH_RETURN_IF_ERROR(eval::checkSameInputs(*original.graph, *optimized.graph));
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

  runtime::SessionOptions plain;
  plain.threads = options.threads;
  runtime::SessionOptions plainA = plain, plainB = plain;
  plainA.device = options.originalDevice;
  plainB.device = options.optimizedDevice;
  if (options.originalDevice != runtime::DeviceKind::kCpu || options.optimizedDevice != runtime::DeviceKind::kCpu) {
    result.notes.push_back("the original runs on " + std::string(runtime::deviceName(options.originalDevice)) +
                           ", the optimized on " + std::string(runtime::deviceName(options.optimizedDevice)));
  }
  auto sessionFor = [&](const ir::Model& model, const runtime::SessionOptions& so,
                        const std::string& which) -> Expected<std::unique_ptr<runtime::Session>> {
    auto s = runtime::Session::create(model, so);
    if (!s.isOk()) return s.status().withContext(which);
    return s;
  };
  WH_ASSIGN_OR_RETURN(auto sessionA, sessionFor(original, plainA, "original model " + originalPath));
  WH_ASSIGN_OR_RETURN(auto sessionB, sessionFor(optimized, plainB, "optimized model " + optimizedPath));

  // With --per-layer the accuracy pass runs sessions that also return the matched activations;
  // the plain sessions are timed.
  eval::EvalOptions evalOptions;
  evalOptions.batchSize = options.batchSize;
  evalOptions.progress = options.progress;
  std::vector<std::string> outputNames;
  for (const ir::Value* v : original.graph->outputs()) outputNames.push_back(v->name());
  WH_RETURN_IF_ERROR(eval::checkChannelAxisOutputs(options.channelAxes, outputNames).withContext(originalPath));
  if (!options.output.empty() && std::find(outputNames.begin(), outputNames.end(), options.output) == outputNames.end()) {
    return invalidInput("--output '" + options.output + "': " + originalPath + " has no output of that name");
  }
  evalOptions.metrics = {eval::errorMetric(options.channelAxes), options.output.empty()
                                                                     ? eval::classificationMetric()
                                                                     : eval::classificationMetric(options.output)};
  for (const std::string& metric : options.metrics) {
    if (metric == "perplexity") {
      evalOptions.metrics.push_back(eval::perplexityMetric(options.tokensInput, options.output));
    } else if (metric != "default") {
      return invalidInput("unknown metric '" + metric + "' (default, perplexity)");
    }
  }
  std::unique_ptr<runtime::Session> layerA, layerB;
  if (options.perLayer) {
    evalOptions.layers = eval::matchLayers(*original.graph, *optimized.graph);
    runtime::SessionOptions soA = plainA, soB = plainB;
    for (const auto& l : evalOptions.layers) {
      soA.extraOutputs.push_back(l.tensor);
      soB.extraOutputs.push_back(l.optimizedTensor);
    }
    WH_ASSIGN_OR_RETURN(layerA, sessionFor(original, soA, "original model " + originalPath + " (per-layer)"));
    WH_ASSIGN_OR_RETURN(layerB, sessionFor(optimized, soB, "optimized model " + optimizedPath + " (per-layer)"));
  }
  eval::Evaluator evaluator(layerA ? *layerA : *sessionA, layerB ? layerB.get() : sessionB.get(),
                            std::move(evalOptions));
  WH_ASSIGN_OR_RETURN(eval::EvalResult measured, evaluator.run(dataset));
  result.samples = measured.samples;
  result.batch = measured.batch;
  result.outputs = std::move(measured.outputs);
  result.layers = std::move(measured.layers);
  result.notes = std::move(measured.notes);
  layerA.reset();
  layerB.reset();

  // Latency: the first batch, the two models interleaved.
  if (options.latencyRuns > 0) {
    WH_ASSIGN_OR_RETURN(data::Batch first, dataset.read(0, std::min(result.batch, dataset.size())));
    eval::LatencyOptions latency;
    latency.warmupRuns = options.warmupRuns;
    latency.runs = options.latencyRuns;
    latency.batch = eval::samplesPerRun(first, dataset.fixedBatch());
    latency.progress = options.progress;
    std::array<runtime::Session*, 2> sessions = {sessionA.get(), sessionB.get()};
    WH_ASSIGN_OR_RETURN(auto stats, eval::measureLatency(sessions, first.inputs, latency));
    result.originalLatency = stats[0];
    result.optimizedLatency = stats[1];
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
  if (gates.minChannelSqnr) {
    // The output holding the lowest SQNR, whole or of one channel (CompareResult::minChannelSqnr's).
    const OutputMetrics* worst = nullptr;
    const double s = result.minChannelSqnr();
    for (const auto& o : result.outputs) {
      if (worst == nullptr && std::min(o.sqnrDb, o.minChannelSqnrDb) == s) worst = &o;
    }
    bool ok = s >= *gates.minChannelSqnr;
    std::string where;
    if (worst != nullptr) {
      where = " at '" + worst->name + "'";
      if (worst->channels > 1 && worst->minChannelSqnrDb <= worst->sqnrDb) {
        where += " channel " + std::to_string(worst->minChannel) + " of " + std::to_string(worst->channels) + " on axis " +
                 std::to_string(worst->channelAxis);
      }
    }
    add("min-channel-sqnr", *gates.minChannelSqnr, s, ok,
        "lowest channel SQNR " + formatDb(s) + where + " " + (ok ? ">=" : "<") + " " + fmt("%g", *gates.minChannelSqnr) +
            " dB");
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
  WH_RETURN_IF_ERROR(eval::checkSameInputs(*original.graph, *optimized.graph));
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
