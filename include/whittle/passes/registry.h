#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/passes/pass.h"

namespace whittle::passes {

/// A registered pass: name (kebab-case, equal to its file name), description, options.
struct PassInfo {
  std::string name;
  std::string description;
  /// The declared options (passes/pass_options.h), in the order --list-passes shows them.
  std::vector<OptionSpec> options;
  /// Parses and checks the options (parseOptions) and makes the pass; a bad option is a
  /// one-line error naming the pass, the option and the value.
  Expected<std::unique_ptr<Pass>> (*factory)(const PassOptions&);
  /// The lowest -O level that includes the pass by default; 0 = only when named.
  int level;

  /// The declared option `name`, or nullptr.
  const OptionSpec* option(std::string_view name) const;
};

/// Every pass, in the order of passes/passes.def.
const std::vector<PassInfo>& allPasses();
const PassInfo* findPass(std::string_view name);
/// The declared option `option` of pass `pass`; a missing one is a broken invariant (WH_CHECK),
/// for callers that name a pass option in code (the command line's help texts).
const OptionSpec& passOption(std::string_view pass, std::string_view option);

/// Every pass with its -O level, description and options (name=default, type or admitted
/// values, help), one block per pass: what `whittle optimize --list-passes` prints.
std::string describePasses();

/// The closest registered name to `name`, for "did you mean" messages; empty when none is close.
std::string nearestName(std::string_view name, const std::vector<std::string>& candidates);

/// One entry of a pipeline: a pass and its options.
struct PipelineEntry {
  const PassInfo* info;
  PassOptions options;
};

/// Parses "fold-constants,fuse-conv-bn,quantize-int8{method=entropy,per-channel=true}".
/// Unknown passes and options are errors that suggest the nearest name.
Expected<std::vector<PipelineEntry>> parsePipeline(std::string_view text);
/// Reads a recipe: a JSON array (or YAML list) of {"pass": NAME, OPTION: VALUE, ...}.
Expected<std::vector<PipelineEntry>> parseRecipe(const std::string& path);
/// The canonical text of a pipeline; parsePipeline(printPipeline(p)) gives p back.
std::string printPipeline(const std::vector<PipelineEntry>& pipeline);
/// The default pipeline of an optimization level (0, 1 or 2).
std::vector<PipelineEntry> pipelineForLevel(int level);

}  // namespace whittle::passes
