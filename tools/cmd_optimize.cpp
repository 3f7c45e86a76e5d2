// whittle optimize: maps its flags onto an OptimizeRequest (include/whittle/optimize.h), runs
// the library's optimize driver, and prints the result: per-pass statistics as a table or JSON,
// the notes, and a one-line summary of the report.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "optimize_budget.h"
#include "progress.h"
#include "whittle/common/text.h"
#include "whittle/optimize.h"
#include "whittle/report/report.h"

namespace whittle::tools {
namespace {

struct OptimizeArgs {
  OptimizeRequest request;
  bool listPasses = false;
  bool json = false;
  std::string quantize;  // --quantize: "", "int8" or "dynamic"
  DatasetArgs calib;     // --calib and the options that read it (also --eval's)
  std::string eval;      // --eval: data for the report (default: --calib)
  int64_t evalLimit = 100;
  bool evalLimitGiven = false;
  std::string labels;  // --labels: of the --eval data
  std::vector<std::string> carryState;  // --carry-state OUTPUT=INPUT, as given
  BudgetArgs tuning;  // the accuracy budget (tools/optimize_budget.h)
};

bool wantsTuning(const OptimizeArgs& args) { return args.tuning.wanted(); }

Expected<OptimizeRequest> requestOf(const OptimizeArgs& args, ProgressBar& bar) {
  OptimizeRequest r = args.request;
  if (args.quantize == "int8" || args.quantize == "dynamic") {
    r.quantize.mode = args.quantize == "int8" ? QuantizeMode::kInt8 : QuantizeMode::kDynamic;
  } else if (!args.quantize.empty()) {
    return invalidInput("--quantize '" + args.quantize + "': expected int8 or dynamic");
  }
  const DatasetArgs& calib = args.calib;
  if (!calib.path.empty()) {
    WH_ASSIGN_OR_RETURN(r.calibration.data, datasetSpec(calib, "--calib-options", "--calib-kind"));
  }
  for (const std::string& text : args.carryState) {
    WH_ASSIGN_OR_RETURN(quant::CarriedState c, quant::parseCarriedState(text));
    r.calibration.carry.push_back(std::move(c));
  }
  if (!r.calibration.carry.empty() && calib.path.empty()) {
    return invalidInput("--carry-state needs --calib: it carries state between calibration samples");
  }
  r.calibration.progress = [&bar](int64_t done, int64_t total) {
    bar.update("calibrating", done, total);
    if (done >= total) bar.finish();
  };
  if (!args.eval.empty() || (r.report.wanted() && !calib.path.empty())) {
    DatasetArgs eval = calib;
    eval.path = args.eval.empty() ? calib.path : args.eval;
    eval.limit = wantsTuning(args) && !args.evalLimitGiven ? -1 : args.evalLimit;
    if (!args.labels.empty()) eval.labels = args.labels;
    WH_ASSIGN_OR_RETURN(r.report.eval, datasetSpec(eval, "--calib-options", "--calib-kind"));
  }
  const int threads = r.calibration.threads;
  r.report.threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  r.report.progress = [&bar](std::string_view phase, int64_t done, int64_t total) { bar.update(phase, done, total); };
  r.run.dump = [](const std::string& pass, const std::string& text) {
    std::fprintf(stderr, "// ----- after %s -----\n%s", pass.c_str(), text.c_str());
  };
  return r;
}

// The help of a flag that sets a pass option: what it sets, then the option's admitted values
// and default as the pass declares them (passes/pass_options.h).
std::string optionHelp(std::string_view what, std::string_view pass, std::string_view option) {
  const passes::OptionSpec& spec = passes::passOption(pass, option);
  return std::string(what) + ": " + spec.typeText() + " (default " + spec.defaultValue + ")";
}

Status runOptimize(const OptimizeArgs& args) {
  // Calibration runs on --calib-threads (0: every core).
  const int calibThreads = args.request.calibration.threads;
  applySpinCount(calibThreads > 0 ? calibThreads : static_cast<int>(std::thread::hardware_concurrency()));
  if (wantsTuning(args)) {
    if (args.request.outputPath.empty() && !args.tuning.sensitivityOnly) {
      return invalidInput("missing -o OUTPUT (the optimized model's path)");
    }
    ProgressBar bar(false);
    WH_ASSIGN_OR_RETURN(OptimizeRequest request, requestOf(args, bar));
    return runBudget(args.tuning, std::move(request), !args.eval.empty(), args.json);
  }
  if (args.request.outputPath.empty()) return invalidInput("missing -o OUTPUT (the optimized model's path)");
  ProgressBar bar(!args.json && isatty(STDERR_FILENO) != 0);
  WH_ASSIGN_OR_RETURN(OptimizeRequest request, requestOf(args, bar));
  auto result = optimize(request);
  bar.finish();
  if (!result.isOk()) return result.status();
  if (args.json) {
    for (const std::string& warning : result->warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
    std::cout << optimizeResultJson(request, *result).dump(2) << "\n";
  } else {
    for (const std::string& warning : result->warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
    std::fputs(optimizeResultText(request, *result).c_str(), stdout);
  }
  return Status::ok();
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
  cmd->add_option("model", args->request.inputPath, "The input .onnx file (never modified)");
  cmd->add_option("-o,--output", args->request.outputPath, "Where to write the optimized model (written atomically)");
  cmd->add_option("-O", args->request.level, "Optimization level: 0 nothing, 1 exact clean-up, 2 exact fusions (default)");
  cmd->add_option("--passes", args->request.passes,
                  "Passes to run after the level's, e.g. 'fuse-conv-bn,quantize-int8{method=entropy}'");
  cmd->add_option("--recipe", args->request.recipe, "A JSON or YAML file listing passes and their options");
  cmd->add_flag("--list-passes", args->listPasses, "List every pass with its options and exit");
  cmd->add_flag("--verify-each", args->request.run.verifyEach, "Run the IR verifier and the ONNX checker after every pass");
  cmd->add_option("--print-after", args->request.run.printAfter, "Dump the graph to stderr after this pass ('all' for every pass)");
  cmd->add_flag("--json", args->json, "Print per-pass statistics as JSON");
  cmd->add_flag("--external-data", args->request.externalData, "Store weights in OUTPUT.data beside the model");
  cmd->add_flag("--in-place", args->request.inPlace, "Allow -o to name the input file");
  cmd->add_flag("--strict", args->request.strict,
                "Make fallbacks that cost accuracy errors (quantize-int8 going per tensor because the model cannot be "
                "converted to opset 13); without it they are warnings, also in --json and the report");
  cmd->add_flag("--keep-initializer-inputs", args->request.keepInitializerInputs,
                "Keep weights that old exporters also list as graph inputs (they then cannot fold)");
  QuantizeRequest& q = args->request.quantize;
  DatasetArgs& calib = args->calib;
  cmd->add_option("--quantize", args->quantize, "Append int8 quantization after the level's passes: int8 (static, needs --calib) or dynamic");
  cmd->add_option("--calib", calib.path, "Calibration data: .npy, .npz, test-data folder, image folder, rawbin or MNIST idx. An array of "
                 "an input's rank holds samples along its batch axis ([N,3,224,224]; a state [2,N,128]), one more "
                 "axis stacks whole samples ([N] for a scalar), the exact static shape is fixed (a 0-d sr) "
                 "(docs/datasets.md)");
  cmd->add_option("--calib-size", calib.limit, "Use only the first N calibration samples")->check(CLI::NonNegativeNumber);
  cmd->add_option("--calib-kind", calib.kind, "auto, npy, npz, pb, images, rawbin or mnist (default: from the path)");
  cmd->add_option("--calib-options", calib.options, "Data set options: kind=,labels=,input=,shape=HxWxC,dtype=uint8|int8,limit=N");
  cmd->add_option("--preprocess", calib.preprocess, "Image preprocessing of --calib: resize=256,crop=224,rgb,scale=1/255,mean=A:B:C,std=A:B:C or a JSON file");
  cmd->add_option("--input-name", calib.input, "The model input a single-tensor calibration set feeds");
  cmd->add_option("--calib-method", q.method, optionHelp("Range from calibration", "quantize-int8", "method"));
  cmd->add_flag("--per-tensor", q.perTensor, "Quantize weights per tensor instead of per output channel");
  cmd->add_option("--format", q.format, optionHelp("Quantized model format", "quantize-int8", "format"));
  cmd->add_option("--activation-type", q.activationType,
                  optionHelp("Activations, uint8 asymmetric or int8 symmetric", "quantize-int8", "activation-type"));
  cmd->add_flag("--reduce-range", q.reduceRange, "7-bit weights, for CPUs without VNNI");
  cmd->add_option("--op-types", q.opTypes, "Quantize only these op types")->delimiter(',');
  cmd->add_option("--exclude-nodes", q.excludeNodes, "Never quantize these nodes (names or regular expressions)");
  cmd->add_option("--exclude-op-types", q.excludeOpTypes, "Never quantize these op types")->delimiter(',');
  cmd->add_option("--save-calib", args->request.calibration.saveTable, "Save the calibration table as JSON (docs/calibration-schema.md)");
  cmd->add_option("--load-calib", args->request.calibration.loadTable, "Reuse a saved calibration table (tensors it lacks are calibrated with --calib)");
  cmd->add_flag("--allow-nonfinite", calib.allowNonfinite,
               "Accept NaN and infinity in --calib/--eval data (by default a sample holding one is an error naming it)");
  addFixedInputOption(*cmd, calib, "--calib and --eval");
  cmd->add_option("--carry-state", args->carryState,
                  "OUTPUT=INPUT: calibrate a stateful model as one stream: each --calib sample's INPUT takes the value "
                  "OUTPUT had on the sample before (the first from the data or --fixed-input), samples one at a time in "
                  "order (e.g. --carry-state stateN=state). Repeatable");
  cmd->add_option("--calib-threads", args->request.calibration.threads,
                  "Threads for calibration and the report (default 0: calibration starts on one thread and uses every "
                  "core only when a timed sample is faster there; the report uses every core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--convert", args->request.convert.to,
                  "Append convert-fp16 or convert-bf16 (fp16|bf16) last; options via --passes 'convert-fp16{block-ops=...}'");
  cmd->add_option("--tolerance", args->request.convert.tolerance,
                  "With --convert: automatic mixed precision; nodes whose half output error on --calib samples "
                  "exceeds this (relative to the tensor's largest value) stay float32")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--report", args->request.report.paths.html,
                  "Compare the written model with the input (accuracy, SQNR per output and per layer, latency, size) "
                  "and write the HTML report; data from --eval, else --calib")
      ->group("Report");
  cmd->add_option("--report-json", args->request.report.paths.json, "Also write the JSON report (docs/compare-schema.md)")->group("Report");
  cmd->add_option("--report-markdown", args->request.report.paths.markdown, "Also write the Markdown report")->group("Report");
  cmd->add_option("--report-junit", args->request.report.paths.junit, "Also write the JUnit XML report")->group("Report");
  cmd->add_option("--eval", args->eval,
                  "Data set for the report (read with the --calib-kind, --calib-options, --preprocess and "
                  "--input-name options; default: the --calib data)")
      ->group("Report");
  cmd->add_option("--eval-limit", args->evalLimit, "Samples for the report (default 100)")
      ->check(CLI::PositiveNumber)
      ->group("Report");
  cmd->add_option("--labels", args->labels, "Label file of the --eval data (default: the one beside it, if any)")
      ->group("Accuracy budget");
  addBudgetOptions(*cmd, args->tuning);
  cmd->callback([args, cmd] {
    args->evalLimitGiven = cmd->count("--eval-limit") > 0;
    if (args->listPasses) return static_cast<void>(std::fputs(passes::describePasses().c_str(), stdout));
    if (args->request.inputPath.empty()) return setExitCode(reportError(invalidInput("missing the input model")));
    Status status = runOptimize(*args);
    if (!status.isOk()) setExitCode(reportError(status));
  });
}

}  // namespace whittle::tools
