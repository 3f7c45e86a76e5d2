// The optimize driver (include/whittle/optimize.h): pipeline assembly, calibration set-up,
// running, verifying, stamping, saving and the report, for every caller alike.
#include "whittle/optimize.h"

#include <map>
#include <memory>
#include <sstream>

#include "whittle/common/file_util.h"
#include "whittle/common/text.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/report/report.h"
#include "whittle/version.h"

namespace whittle {
namespace {

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ";") + i;
  return out;
}

}  // namespace

Expected<passes::PipelineEntry> quantizeEntry(const QuantizeRequest& q) {
  std::map<std::string, std::string> o;
  if (q.perTensor) o["per-channel"] = "false";
  if (q.reduceRange) o["reduce-range"] = "true";
  if (!q.opTypes.empty()) o["op-types"] = joinList(q.opTypes);
  if (!q.excludeNodes.empty()) o["exclude-nodes"] = joinList(q.excludeNodes);
  if (!q.excludeOpTypes.empty()) o["exclude-op-types"] = joinList(q.excludeOpTypes);
  std::string pass;
  if (q.mode == QuantizeMode::kInt8) {
    pass = "quantize-int8";
    if (!q.method.empty()) o["method"] = q.method;
    if (!q.format.empty()) o["format"] = q.format;
    if (!q.activationType.empty()) o["activation-type"] = q.activationType;
  } else {
    pass = "quantize-dynamic";
    if (!q.method.empty() || !q.format.empty() || !q.activationType.empty()) {
      return invalidInput("--quantize dynamic takes no calibration method, format or activation type");
    }
  }
  std::string body;
  for (const auto& [k, v] : o) body += (body.empty() ? "" : ",") + k + "=" + v;
  WH_ASSIGN_OR_RETURN(auto entries, passes::parsePipeline(pass + (body.empty() ? "" : "{" + body + "}")));
  return entries.front();
}

namespace {

// The calibration provider of a request, with the data set it streams (kept alive beside it).
struct Calibration {
  std::unique_ptr<data::Dataset> data;
  std::unique_ptr<quant::StandardCalibrationProvider> provider;
};

Expected<Calibration> setUpCalibration(const CalibrationRequest& request, const ir::Model& model) {
  Calibration c;
  std::optional<quant::CalibrationTable> loaded;
  if (!request.loadTable.empty()) {
    WH_ASSIGN_OR_RETURN(loaded, quant::loadCalibrationTable(request.loadTable));
  }
  if (request.data) {
    auto opened = data::openDataset(*request.data, data::inputSpecs(*model.graph));
    if (!opened.isOk()) return opened.status().withContext("--calib");
    c.data = std::move(opened).value();
  }
  quant::CalibrationOptions options;
  options.threads = request.threads;
  options.batchSize = 1;
  options.progress = request.progress;
  options.carry = request.carry;
  c.provider = std::make_unique<quant::StandardCalibrationProvider>(std::move(loaded), c.data.get(), options);
  return c;
}

}  // namespace

Expected<std::vector<passes::PipelineEntry>> buildPipeline(const OptimizeRequest& request) {
  if (request.level < 0 || request.level > 2) {
    return invalidInput("-O" + std::to_string(request.level) + ": levels are 0, 1 and 2");
  }
  std::vector<passes::PipelineEntry> pipeline = passes::pipelineForLevel(request.level);
  if (request.keepInitializerInputs) {
    for (auto& entry : pipeline) {
      if (entry.info->name == "initializers-to-constants") {
        entry.options = passes::PassOptions(std::map<std::string, std::string>{{"keep", "true"}});
      }
    }
  }
  if (!request.passes.empty()) {
    WH_ASSIGN_OR_RETURN(auto named, passes::parsePipeline(request.passes));
    pipeline.insert(pipeline.end(), named.begin(), named.end());
  }
  if (!request.recipe.empty()) {
    WH_ASSIGN_OR_RETURN(auto fromRecipe, passes::parseRecipe(request.recipe));
    pipeline.insert(pipeline.end(), fromRecipe.begin(), fromRecipe.end());
  }
  if (request.quantize.mode != QuantizeMode::kNone) {
    if (request.quantize.mode == QuantizeMode::kInt8 && !request.calibration.wanted()) {
      return invalidInput(
          "--quantize int8 needs calibration data: --calib DATA or --load-calib FILE (or use --quantize dynamic)");
    }
    WH_ASSIGN_OR_RETURN(auto entry, quantizeEntry(request.quantize));
    pipeline.push_back(std::move(entry));
  }
  const ConvertRequest& convert = request.convert;
  if (convert.tolerance > 0 && convert.to.empty()) return invalidInput("--tolerance applies to --convert fp16|bf16");
  if (!convert.to.empty()) {
    if (convert.to != "fp16" && convert.to != "bf16") {
      return invalidInput("--convert '" + convert.to + "': expected fp16 or bf16");
    }
    std::string entry = "convert-" + convert.to;
    if (convert.tolerance > 0) {
      std::ostringstream tolerance;
      tolerance << convert.tolerance;
      entry += "{tolerance=" + tolerance.str() + "}";
    }
    WH_ASSIGN_OR_RETURN(auto converted, passes::parsePipeline(entry));
    pipeline.insert(pipeline.end(), converted.begin(), converted.end());
  }
  return pipeline;
}

Expected<OptimizeResult> optimize(const OptimizeRequest& request) {
  if (request.inputPath.empty()) return invalidInput("missing the input model");
  const bool writes = !request.outputPath.empty();
  if (writes && !request.inPlace && (request.outputPath == request.inputPath || sameFile(request.outputPath, request.inputPath))) {
    return invalidInput(request.outputPath + ": output is the input model; pass --in-place to overwrite it");
  }
  const ReportRequest& report = request.report;
  if (report.wanted()) {
    if (!writes) return invalidInput("a report compares the written model: give an output path (-o)");
    if (!report.eval && !request.calibration.data) {
      return invalidInput("--report needs data to compare on: --eval DATA (or --calib DATA)");
    }
  }
  WH_ASSIGN_OR_RETURN(std::vector<passes::PipelineEntry> pipeline, buildPipeline(request));

  OptimizeResult result;
  WH_ASSIGN_OR_RETURN(result.model, onnx_io::load(request.inputPath));
  ir::Model& model = result.model;
  passes::PassContext ctx(model);
  ctx.strict = request.strict;
  Calibration calibration;
  if (request.calibration.wanted()) {
    WH_ASSIGN_OR_RETURN(calibration, setUpCalibration(request.calibration, model));
    ctx.calibration = calibration.provider.get();
  }
  auto stats = passes::runPipeline(model, pipeline, ctx, request.run);
  if (!stats.isOk()) return stats.status().withContext(request.inputPath);
  result.passes = std::move(stats).value();
  result.notes = ctx.notes();
  result.warnings = ctx.warnings();
  WH_RETURN_IF_ERROR(ir::verify(*model.graph).withContext(request.inputPath + ": after optimization"));
  if (!request.calibration.saveTable.empty()) {
    if (calibration.provider == nullptr) return invalidInput("--save-calib needs --calib DATA");
    quant::CalibrationTable table = calibration.provider->table();
    table.model = request.inputPath;
    const std::string& methodName = request.quantize.method.empty()
                                        ? passes::passOption("quantize-int8", "method").defaultValue
                                        : request.quantize.method;
    auto method = quant::parseCalibrationMethod(methodName);
    if (!method) return invalidInput("--calib-method '" + methodName + "': not a calibration method");
    WH_RETURN_IF_ERROR(quant::saveCalibrationTable(table, request.calibration.saveTable, *method));
  }

  result.pipeline = passes::printPipeline(pipeline);
  model.setMetadata("whittle.version", kVersion);
  model.setMetadata("whittle.pipeline", result.pipeline);
  if (writes) {
    onnx_io::SaveOptions saveOptions;
    saveOptions.externalData = request.externalData;
    WH_RETURN_IF_ERROR(onnx_io::save(model, request.outputPath, saveOptions));
  }

  if (report.wanted()) {
    const data::DatasetSpec& spec = report.eval ? *report.eval : *request.calibration.data;
    report::CompareOptions options;
    options.threads = std::max(1, report.threads);
    options.perLayer = true;
    options.progress = report.progress;
    // The reports are written here, after the optimizer's warnings join the comparison's notes.
    auto compared = report::compareFiles(request.inputPath, request.outputPath, spec, options, report::Gates{},
                                         report::ReportPaths{});
    if (!compared.isOk()) return compared.status().withContext("--report");
    result.report = std::move(compared).value();
    std::vector<std::string>& notes = result.report->notes;
    for (size_t i = 0; i < result.warnings.size(); ++i) {
      notes.insert(notes.begin() + static_cast<std::ptrdiff_t>(i), "warning from optimize: " + result.warnings[i]);
    }
    WH_RETURN_IF_ERROR(report::writeReports(*result.report, report.paths).withContext("--report"));
  }
  return result;
}

namespace {

// The one-line summary of the report optimize wrote (its verdict and headline figures).
std::string reportSummaryText(const OptimizeRequest& request, const report::CompareResult& r) {
  std::string out;
  out += fmt("report: %s on %lld samples", report::verdict(r).c_str(), static_cast<long long>(r.samples));
  if (const report::OutputMetrics* o = r.classification()) {
    if (o->agreement) out += fmt(", top-1 agreement %.2f %%", *o->agreement * 100);
    if (o->hasAccuracy) out += fmt(", top-1 %.2f %% -> %.2f %%", o->top1Original * 100, o->top1Optimized * 100);
  }
  out += fmt(", output SQNR %s", formatDb(r.minOutputSqnr(), 1).c_str());
  if (auto jump = report::firstErrorJump(r.layers)) out += fmt(", error first jumps at '%s'", r.layers[*jump].tensor.c_str());
  const report::ReportPaths& p = request.report.paths;
  for (const std::string* written : {&p.html, &p.json, &p.markdown, &p.junit}) {
    if (!written->empty() && *written != "-") out += fmt("\nwrote %s", written->c_str());
  }
  out += "\n";
  return out;
}

}  // namespace

std::string optimizeResultText(const OptimizeRequest& request, const OptimizeResult& result) {
  std::string out;
  out += fmt("%-26s %9s %14s %16s %9s\n", "pass", "rewrites", "nodes removed", "bytes removed", "ms");
  for (const passes::PassStats& s : result.passes) {
    out += fmt("%-26s %9lld %14lld %16lld %9.2f\n", s.pass.c_str(), static_cast<long long>(s.rewrites),
               static_cast<long long>(s.nodesBefore - s.nodesAfter),
               static_cast<long long>(s.parameterBytesBefore - s.parameterBytesAfter), s.milliseconds);
  }
  for (const std::string& note : result.notes) out += fmt("note: %s\n", note.c_str());
  out += fmt("wrote %s (pipeline: %s)\n", request.outputPath.c_str(),
             result.pipeline.empty() ? "none" : result.pipeline.c_str());
  if (result.report) out += reportSummaryText(request, *result.report);
  return out;
}

nlohmann::json optimizeResultJson(const OptimizeRequest& request, const OptimizeResult& result) {
  nlohmann::json out;
  out["schema"] = "whittle.optimize/1";
  out["input"] = request.inputPath;
  out["output"] = request.outputPath;
  out["pipeline"] = result.pipeline;
  out["passes"] = nlohmann::json::array();
  for (const passes::PassStats& s : result.passes) {
    out["passes"].push_back({{"pass", s.pass},
                             {"rewrites", s.rewrites},
                             {"nodes_before", s.nodesBefore},
                             {"nodes_after", s.nodesAfter},
                             {"parameter_bytes_before", s.parameterBytesBefore},
                             {"parameter_bytes_after", s.parameterBytesAfter},
                             {"milliseconds", s.milliseconds},
                             {"counters", s.counters}});
  }
  out["notes"] = result.notes;
  out["warnings"] = result.warnings;
  return out;
}

}  // namespace whittle
