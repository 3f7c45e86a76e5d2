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
  std::vector<OptionSpec> options;
  /// Makes the pass; bad option values are an error naming the option.
  Expected<std::unique_ptr<Pass>> (*factory)(const PassOptions&);
  /// The lowest -O level that includes the pass by default; 0 = only when named.
  int level;
};

/// Every pass, in the order of passes/passes.def.
const std::vector<PassInfo>& allPasses();
const PassInfo* findPass(std::string_view name);

/// Every pass with its -O level, description and options (defaults and help), one block per
/// pass: what `whittle optimize --list-passes` prints.
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
