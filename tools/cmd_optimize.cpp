// whittle optimize: the pass pipeline (-O levels, --passes, --recipe), int8 quantization with
// calibration (--quantize), half-precision conversion (--convert), and a comparison report of
// the written model against its input (--report).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"
#include "whittle/common/file_util.h"
#include "whittle/common/text.h"
#include "whittle/data/dataset.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/quant/calibration.h"
#include "whittle/report/compare.h"
#include "whittle/report/report.h"
#include "whittle/version.h"

namespace whittle::tools {
namespace {

// --quantize and its calibration options (docs/calibration-schema.md).
struct QuantizeArgs {
  std::string mode;  // "", "int8" or "dynamic"
  std::string calib;
  int64_t calibSize = -1;
  std::string calibKind;
  std::string calibOptions;
  std::string preprocess;
  std::string inputName;
  std::string method = "minmax";
  bool perTensor = false;
  std::string format = "qdq";
  std::string activationType = "uint8";
  bool reduceRange = false;
  std::vector<std::string> opTypes;
  std::vector<std::string> excludeNodes;
  std::vector<std::string> excludeOpTypes;
  std::string saveCalib;
  std::string loadCalib;
  bool allowNonfinite = false;
  int threads = 0;  // 0: calibration picks by the work; the report uses every core
};

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ";") + i;
  return out;
}

// The pipeline entry that --quantize appends after the level's passes.
Expected<passes::PipelineEntry> quantizeEntry(const QuantizeArgs& q) {
  std::string text;
  std::map<std::string, std::string> o;
  if (q.mode == "int8") {
    o["method"] = q.method;
    if (q.perTensor) o["per-channel"] = "false";
    if (q.format != "qdq") o["format"] = q.format;
    if (q.activationType != "uint8") o["activation-type"] = q.activationType;
    if (q.reduceRange) o["reduce-range"] = "true";
    if (!q.opTypes.empty()) o["op-types"] = joinList(q.opTypes);
    if (!q.excludeNodes.empty()) o["exclude-nodes"] = joinList(q.excludeNodes);
    if (!q.excludeOpTypes.empty()) o["exclude-op-types"] = joinList(q.excludeOpTypes);
    text = "quantize-int8";
  } else if (q.mode == "dynamic") {
    if (q.perTensor) o["per-channel"] = "false";
    if (q.reduceRange) o["reduce-range"] = "true";
    if (!q.opTypes.empty()) o["op-types"] = joinList(q.opTypes);
    if (!q.excludeNodes.empty()) o["exclude-nodes"] = joinList(q.excludeNodes);
    if (!q.excludeOpTypes.empty()) o["exclude-op-types"] = joinList(q.excludeOpTypes);
    text = "quantize-dynamic";
  } else {
    return invalidInput("--quantize '" + q.mode + "': expected int8 or dynamic");
  }
  std::string body;
  for (const auto& [k, v] : o) body += (body.empty() ? "" : ",") + k + "=" + v;
  WH_ASSIGN_OR_RETURN(auto entries, passes::parsePipeline(text + (body.empty() ? "" : "{" + body + "}")));
  return entries.front();
}

// The calibration source of --calib / --load-calib, with a progress bar on stderr.
struct CalibrationSetup {
  std::unique_ptr<data::Dataset> data;
  std::unique_ptr<quant::StandardCalibrationProvider> provider;
};

/// The data set at `path` read with the --calib-* options (kind, options, input, preprocessing).
Expected<data::DatasetSpec> calibDatasetSpec(const QuantizeArgs& q, const std::string& path, int64_t limit) {
  DatasetArgs args{path, q.calibOptions, q.calibKind, /*labels=*/"", q.inputName, q.preprocess, limit,
                   q.allowNonfinite};
  return datasetSpec(args, "--calib-options", "--calib-kind");
}

Expected<CalibrationSetup> setUpCalibration(const QuantizeArgs& q, const ir::Model& model, bool quiet) {
  CalibrationSetup setup;
  std::optional<quant::CalibrationTable> loaded;
  if (!q.loadCalib.empty()) {
    WH_ASSIGN_OR_RETURN(loaded, quant::loadCalibrationTable(q.loadCalib));
  }
  if (!q.calib.empty()) {
    WH_ASSIGN_OR_RETURN(data::DatasetSpec spec, calibDatasetSpec(q, q.calib, q.calibSize));
    auto opened = data::openDataset(spec, data::inputSpecs(*model.graph));
    if (!opened.isOk()) return opened.status().withContext("--calib");
    setup.data = std::move(opened).value();
  }
  quant::CalibrationOptions options;
  options.threads = q.threads;
  options.batchSize = 1;
  auto bar = std::make_shared<ProgressBar>(!quiet && isatty(STDERR_FILENO) != 0);
  options.progress = [bar](int64_t done, int64_t total) {
    bar->update("calibrating", done, total);
    if (done >= total) bar->finish();
  };
  setup.provider = std::make_unique<quant::StandardCalibrationProvider>(std::move(loaded), setup.data.get(), options);
  return setup;
}

struct OptimizeArgs {
  std::string input;
  std::string output;
  int level = 2;
  std::string passes;
  std::string recipe;
  bool listPasses = false;
  bool verifyEach = false;
  std::vector<std::string> printAfter;
  bool json = false;
  bool externalData = false;
  bool inPlace = false;
  bool keepInitializerInputs = false;
  QuantizeArgs quant;
  std::string convert;  // --convert fp16|bf16
  double tolerance = 0;  // --tolerance: mixed precision for --convert
  // --report: compare the written model with the input on --eval (default: --calib).
  report::ReportPaths reports;
  std::string eval;
  int64_t evalLimit = 100;
  bool wantsReport() const {
    return !reports.html.empty() || !reports.json.empty() || !reports.markdown.empty() || !reports.junit.empty();
  }
};

/// Compares the written model with its input and writes the reports; prints a summary line.
Status writeOptimizeReport(const OptimizeArgs& args) {
  const std::string& path = args.eval.empty() ? args.quant.calib : args.eval;
  WH_ASSIGN_OR_RETURN(data::DatasetSpec spec, calibDatasetSpec(args.quant, path, args.evalLimit));
  ProgressBar bar(!args.json && isatty(STDERR_FILENO) != 0);
  report::CompareOptions options;
  options.threads = args.quant.threads > 0 ? args.quant.threads
                                           : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.perLayer = true;
  options.progress = [&bar](std::string_view phase, int64_t done, int64_t total) { bar.update(phase, done, total); };
  auto result = report::compareFiles(args.input, args.output, spec, options, report::Gates{}, args.reports);
  bar.finish();
  if (!result.isOk()) return result.status().withContext("--report");
  if (args.json) return Status::ok();
  std::printf("report: %s on %lld samples", report::verdict(*result).c_str(), static_cast<long long>(result->samples));
  if (const report::OutputMetrics* o = result->classification()) {
    if (o->agreement) std::printf(", top-1 agreement %.2f %%", *o->agreement * 100);
    if (o->hasAccuracy) std::printf(", top-1 %.2f %% -> %.2f %%", o->top1Original * 100, o->top1Optimized * 100);
  }
  std::printf(", output SQNR %s", formatDb(result->minOutputSqnr(), 1).c_str());
  if (auto jump = report::firstErrorJump(result->layers)) {
    std::printf(", error first jumps at '%s'", result->layers[*jump].tensor.c_str());
  }
  for (const std::string* written : {&args.reports.html, &args.reports.json, &args.reports.markdown, &args.reports.junit}) {
    if (!written->empty() && *written != "-") std::printf("\nwrote %s", written->c_str());
  }
  std::printf("\n");
  return Status::ok();
}

void listPasses() {
  std::printf("Passes (name, -O level that runs it by default, description, options):\n\n");
  for (const passes::PassInfo& p : passes::allPasses()) {
    std::string level = p.level == 0 ? "named only" : "-O" + std::to_string(p.level);
    std::printf("  %-28s %-11s %s\n", p.name.c_str(), level.c_str(), p.description.c_str());
    for (const passes::OptionSpec& o : p.options) {
      std::printf("  %-28s %-11s   %s=%s  %s\n", "", "", o.name.c_str(), o.defaultValue.c_str(), o.help.c_str());
    }
  }
}

Status runOptimize(const OptimizeArgs& args) {
  if (args.output.empty()) return invalidInput("missing -o OUTPUT (the optimized model's path)");
  if ((args.output == args.input || sameFile(args.output, args.input)) && !args.inPlace) {
    return invalidInput(args.output + ": output is the input model; pass --in-place to overwrite it");
  }
  if (args.level < 0 || args.level > 2) return invalidInput("-O" + std::to_string(args.level) + ": levels are 0, 1 and 2");
  std::vector<passes::PipelineEntry> pipeline = passes::pipelineForLevel(args.level);
  if (args.keepInitializerInputs) {
    for (auto& entry : pipeline) {
      if (entry.info->name == "initializers-to-constants") entry.options = passes::PassOptions(std::map<std::string, std::string>{{"keep", "true"}});
    }
  }
  if (!args.passes.empty()) {
    WH_ASSIGN_OR_RETURN(auto named, passes::parsePipeline(args.passes));
    pipeline.insert(pipeline.end(), named.begin(), named.end());
  }
  if (!args.recipe.empty()) {
    WH_ASSIGN_OR_RETURN(auto fromRecipe, passes::parseRecipe(args.recipe));
    pipeline.insert(pipeline.end(), fromRecipe.begin(), fromRecipe.end());
  }

  if (!args.quant.mode.empty()) {
    if (args.quant.mode == "int8" && args.quant.calib.empty() && args.quant.loadCalib.empty()) {
      return invalidInput("--quantize int8 needs calibration data: --calib DATA or --load-calib FILE (or use --quantize dynamic)");
    }
    WH_ASSIGN_OR_RETURN(auto entry, quantizeEntry(args.quant));
    pipeline.push_back(std::move(entry));
  }
  if (args.tolerance > 0 && args.convert.empty()) return invalidInput("--tolerance applies to --convert fp16|bf16");
  if (!args.convert.empty()) {
    if (args.convert != "fp16" && args.convert != "bf16") return invalidInput("--convert '" + args.convert + "': expected fp16 or bf16");
    std::string entry = "convert-" + args.convert;
    if (args.tolerance > 0) {
      std::ostringstream tolerance;
      tolerance << args.tolerance;
      entry += "{tolerance=" + tolerance.str() + "}";
    }
    WH_ASSIGN_OR_RETURN(auto converted, passes::parsePipeline(entry));
    pipeline.insert(pipeline.end(), converted.begin(), converted.end());
  }

  if (args.wantsReport() && args.eval.empty() && args.quant.calib.empty()) {
    return invalidInput("--report needs data to compare on: --eval DATA (or --calib DATA)");
  }

  WH_ASSIGN_OR_RETURN(ir::Model model, onnx_io::load(args.input));
  passes::PassContext ctx(model);
  CalibrationSetup calibration;
  if (!args.quant.calib.empty() || !args.quant.loadCalib.empty()) {
    WH_ASSIGN_OR_RETURN(calibration, setUpCalibration(args.quant, model, args.json));
    ctx.calibration = calibration.provider.get();
  }
  passes::PipelineRunOptions runOptions;
  runOptions.verifyEach = args.verifyEach;
  runOptions.printAfter = args.printAfter;
  runOptions.dump = [](const std::string& pass, const std::string& text) {
    std::fprintf(stderr, "// ----- after %s -----\n%s", pass.c_str(), text.c_str());
  };
  auto stats = passes::runPipeline(model, pipeline, ctx, runOptions);
  if (!stats.isOk()) return stats.status().withContext(args.input);
  WH_RETURN_IF_ERROR(ir::verify(*model.graph).withContext(args.input + ": after optimization"));
  if (!args.quant.saveCalib.empty()) {
    if (calibration.provider == nullptr) return invalidInput("--save-calib needs --calib DATA");
    quant::CalibrationTable table = calibration.provider->table();
    table.model = args.input;
    auto method = quant::parseCalibrationMethod(args.quant.method).value_or(quant::CalibrationMethod::kMinMax);
    WH_RETURN_IF_ERROR(quant::saveCalibrationTable(table, args.quant.saveCalib, method));
  }

  std::string pipelineText = passes::printPipeline(pipeline);
  model.setMetadata("whittle.version", kVersion);
  model.setMetadata("whittle.pipeline", pipelineText);
  onnx_io::SaveOptions saveOptions;
  saveOptions.externalData = args.externalData;
  WH_RETURN_IF_ERROR(onnx_io::save(model, args.output, saveOptions));

  if (args.json) {
    nlohmann::json out;
    out["schema"] = "whittle.optimize/1";
    out["input"] = args.input;
    out["output"] = args.output;
    out["pipeline"] = pipelineText;
    out["passes"] = nlohmann::json::array();
    for (const passes::PassStats& s : *stats) {
      out["passes"].push_back({{"pass", s.pass},
                               {"rewrites", s.rewrites},
                               {"nodes_before", s.nodesBefore},
                               {"nodes_after", s.nodesAfter},
                               {"parameter_bytes_before", s.parameterBytesBefore},
                               {"parameter_bytes_after", s.parameterBytesAfter},
                               {"milliseconds", s.milliseconds},
                               {"counters", s.counters}});
    }
    out["notes"] = ctx.notes();
    std::cout << out.dump(2) << "\n";
    return args.wantsReport() ? writeOptimizeReport(args) : Status::ok();
  }
  std::printf("%-26s %9s %14s %16s %9s\n", "pass", "rewrites", "nodes removed", "bytes removed", "ms");
  for (const passes::PassStats& s : *stats) {
    std::printf("%-26s %9lld %14lld %16lld %9.2f\n", s.pass.c_str(), static_cast<long long>(s.rewrites),
                static_cast<long long>(s.nodesBefore - s.nodesAfter),
                static_cast<long long>(s.parameterBytesBefore - s.parameterBytesAfter), s.milliseconds);
  }
  for (const std::string& note : ctx.notes()) std::printf("note: %s\n", note.c_str());
  std::printf("wrote %s (pipeline: %s)\n", args.output.c_str(), pipelineText.empty() ? "none" : pipelineText.c_str());
  return args.wantsReport() ? writeOptimizeReport(args) : Status::ok();
}

}  // namespace

void registerOptimize(CLI::App& app) {
  auto args = std::make_shared<OptimizeArgs>();
  auto* cmd = app.add_subcommand("optimize",
                                 "Run a pass pipeline over a model and write the optimized model.\n"
                                 "The pipeline is the passes of the -O level, then --passes, then --recipe, then\n"
                                 "--quantize, then --convert. Examples:\n"
                                 "  whittle optimize model.onnx -o model.opt.onnx -O2 --verify-each\n"
                                 "  whittle optimize model.onnx -o model.int8.onnx --quantize int8 --calib images/ \\\n"
                                 "      --preprocess resize=256,crop=224,rgb,scale=1/255 --report report.html\n"
                                 "  whittle optimize model.onnx -o model.fp16.onnx --convert fp16 --tolerance 1e-3 --calib images/\n"
                                 "  whittle optimize model.onnx -o model.pruned.onnx --passes 'prune-nm{n=2,m=4}' --quantize int8 --calib data.npy");
  cmd->add_option("model", args->input, "The input .onnx file (never modified)");
  cmd->add_option("-o,--output", args->output, "Where to write the optimized model (written atomically)");
  cmd->add_option("-O", args->level, "Optimization level: 0 nothing, 1 exact clean-up, 2 exact fusions (default)");
  cmd->add_option("--passes", args->passes,
                  "Passes to run after the level's, e.g. 'fuse-conv-bn,quantize-int8{method=entropy}'");
  cmd->add_option("--recipe", args->recipe, "A JSON or YAML file listing passes and their options");
  cmd->add_flag("--list-passes", args->listPasses, "List every pass with its options and exit");
  cmd->add_flag("--verify-each", args->verifyEach, "Run the IR verifier and the ONNX checker after every pass");
  cmd->add_option("--print-after", args->printAfter, "Dump the graph to stderr after this pass ('all' for every pass)");
  cmd->add_flag("--json", args->json, "Print per-pass statistics as JSON");
  cmd->add_flag("--external-data", args->externalData, "Store weights in OUTPUT.data beside the model");
  cmd->add_flag("--in-place", args->inPlace, "Allow -o to name the input file");
  cmd->add_flag("--keep-initializer-inputs", args->keepInitializerInputs,
                "Keep weights that old exporters also list as graph inputs (they then cannot fold)");
  QuantizeArgs& q = args->quant;
  cmd->add_option("--quantize", q.mode, "Append int8 quantization after the level's passes: int8 (static, needs --calib) or dynamic");
  cmd->add_option("--calib", q.calib, "Calibration data: .npy, .npz, test-data folder, image folder, rawbin or MNIST idx (docs/datasets.md)");
  cmd->add_option("--calib-size", q.calibSize, "Use only the first N calibration samples")->check(CLI::NonNegativeNumber);
  cmd->add_option("--calib-kind", q.calibKind, "auto, npy, npz, pb, images, rawbin or mnist (default: from the path)");
  cmd->add_option("--calib-options", q.calibOptions, "Data set options: kind=,labels=,input=,shape=HxWxC,dtype=uint8|int8,limit=N");
  cmd->add_option("--preprocess", q.preprocess, "Image preprocessing of --calib: resize=256,crop=224,rgb,scale=1/255,mean=A:B:C,std=A:B:C or a JSON file");
  cmd->add_option("--input-name", q.inputName, "The model input a single-tensor calibration set feeds");
  cmd->add_option("--calib-method", q.method, "Range from calibration: minmax (default), percentile, entropy or mse");
  cmd->add_flag("--per-tensor", q.perTensor, "Quantize weights per tensor instead of per output channel");
  cmd->add_option("--format", q.format, "qdq (default) or qoperator");
  cmd->add_option("--activation-type", q.activationType, "uint8 (asymmetric, default) or int8 (symmetric)");
  cmd->add_flag("--reduce-range", q.reduceRange, "7-bit weights, for CPUs without VNNI");
  cmd->add_option("--op-types", q.opTypes, "Quantize only these op types")->delimiter(',');
  cmd->add_option("--exclude-nodes", q.excludeNodes, "Never quantize these nodes (names or regular expressions)");
  cmd->add_option("--exclude-op-types", q.excludeOpTypes, "Never quantize these op types")->delimiter(',');
  cmd->add_option("--save-calib", q.saveCalib, "Save the calibration table as JSON (docs/calibration-schema.md)");
  cmd->add_option("--load-calib", q.loadCalib, "Reuse a saved calibration table (tensors it lacks are calibrated with --calib)");
  cmd->add_flag("--allow-nonfinite", q.allowNonfinite,
               "Accept NaN and infinity in --calib/--eval data (by default a sample holding one is an error naming it)");
  cmd->add_option("--calib-threads", q.threads,
                  "Threads for calibration and the report (default 0: calibration starts on one thread and uses every "
                  "core only when a timed sample is faster there; the report uses every core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--convert", args->convert,
                  "Append convert-fp16 or convert-bf16 (fp16|bf16) last; options via --passes 'convert-fp16{block-ops=...}'");
  cmd->add_option("--tolerance", args->tolerance,
                  "With --convert: automatic mixed precision; nodes whose half output error on --calib samples "
                  "exceeds this (relative to the tensor's largest value) stay float32")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--report", args->reports.html,
                  "Compare the written model with the input (accuracy, SQNR per output and per layer, latency, size) "
                  "and write the HTML report; data from --eval, else --calib")
      ->group("Report");
  cmd->add_option("--report-json", args->reports.json, "Also write the JSON report (docs/compare-schema.md)")->group("Report");
  cmd->add_option("--report-markdown", args->reports.markdown, "Also write the Markdown report")->group("Report");
  cmd->add_option("--report-junit", args->reports.junit, "Also write the JUnit XML report")->group("Report");
  cmd->add_option("--eval", args->eval,
                  "Data set for the report (read with the --calib-kind, --calib-options, --preprocess and "
                  "--input-name options; default: the --calib data)")
      ->group("Report");
  cmd->add_option("--eval-limit", args->evalLimit, "Samples for the report (default 100)")
      ->check(CLI::PositiveNumber)
      ->group("Report");
  cmd->callback([args] {
    if (args->listPasses) return listPasses();
    if (args->input.empty()) return setExitCode(reportError(invalidInput("missing the input model")));
    Status status = runOptimize(*args);
    if (!status.isOk()) setExitCode(reportError(status));
  });
}

}  // namespace whittle::tools
