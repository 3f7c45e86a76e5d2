#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "whittle/common/file_util.h"
#include "whittle/ir/verifier.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/version.h"

namespace whittle::tools {
namespace {

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
};

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

  WH_ASSIGN_OR_RETURN(ir::Model model, onnx_io::load(args.input));
  passes::PassContext ctx(model);
  passes::PipelineRunOptions runOptions;
  runOptions.verifyEach = args.verifyEach;
  runOptions.printAfter = args.printAfter;
  runOptions.dump = [](const std::string& pass, const std::string& text) {
    std::fprintf(stderr, "// ----- after %s -----\n%s", pass.c_str(), text.c_str());
  };
  auto stats = passes::runPipeline(model, pipeline, ctx, runOptions);
  if (!stats.isOk()) return stats.status().withContext(args.input);
  WH_RETURN_IF_ERROR(ir::verify(*model.graph).withContext(args.input + ": after optimization"));

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
    return Status::ok();
  }
  std::printf("%-26s %9s %14s %16s %9s\n", "pass", "rewrites", "nodes removed", "bytes removed", "ms");
  for (const passes::PassStats& s : *stats) {
    std::printf("%-26s %9lld %14lld %16lld %9.2f\n", s.pass.c_str(), static_cast<long long>(s.rewrites),
                static_cast<long long>(s.nodesBefore - s.nodesAfter),
                static_cast<long long>(s.parameterBytesBefore - s.parameterBytesAfter), s.milliseconds);
  }
  for (const std::string& note : ctx.notes()) std::printf("note: %s\n", note.c_str());
  std::printf("wrote %s (pipeline: %s)\n", args.output.c_str(), pipelineText.empty() ? "none" : pipelineText.c_str());
  return Status::ok();
}

}  // namespace

void registerOptimize(CLI::App& app) {
  auto args = std::make_shared<OptimizeArgs>();
  auto* cmd = app.add_subcommand("optimize",
                                 "Run a pass pipeline over a model and write the optimized model.\n"
                                 "The pipeline is the passes of the -O level, then --passes, then --recipe.\n"
                                 "Example: whittle optimize model.onnx -o model.opt.onnx -O2 --verify-each");
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
  cmd->callback([args] {
    if (args->listPasses) return listPasses();
    if (args->input.empty()) return setExitCode(reportError(invalidInput("missing the input model")));
    Status status = runOptimize(*args);
    if (!status.isOk()) setExitCode(reportError(status));
  });
}

}  // namespace whittle::tools
