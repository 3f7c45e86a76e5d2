#pragma once
// The accuracy-budget flags of `whittle optimize` (--max-accuracy-drop, --min-agreement,
// --min-sqnr and what tunes the search): declared here and run through the library's tuner
// (include/whittle/tune/tune.h), so that tools/cmd_optimize.cpp stays the mapping of the
// optimize flags alone.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/optimize.h"
#include "whittle/tune/tune.h"

namespace whittle::tools {

struct BudgetArgs {
  tune::Budget budget;
  std::string timeBudget;  // --time-budget: "90s", "10m", "1h"
  bool sensitivityOnly = false;
  std::string trialLog;
  int64_t rankingSamples = 100;
  std::string shard;                    // --shard I/N
  std::vector<std::string> mergeShards;  // --merge-shards LOG,...
  std::string fallbackCost = "measured";  // --fallback-cost measured|estimate
  double minSpeedup = 0;                  // --min-speedup X
  std::vector<std::string> scores;        // --scores OUTPUT[:axis=A]:CHANNELS:THRESHOLD (repeatable)
  std::vector<std::string> channelAxes;   // --channel-axis AXIS|auto|OUTPUT=AXIS (repeatable)
  int evalWorkers = 0;                    // --eval-workers N (0: one per core)
  int64_t evalCacheMib = 1024;            // --eval-cache MIB

  /// Whether the flags ask for the tuner (a budget, or the ranking alone).
  bool wanted() const {
    return budget.any() || sensitivityOnly || !shard.empty() || !mergeShards.empty() || !scores.empty() || !budget.detections.empty() ||
           !channelAxes.empty();
  }
};

/// Adds the flags to `cmd`, in the help's "Accuracy budget" group.
void addBudgetOptions(CLI::App& cmd, BudgetArgs& args);

/// Runs the tuner on `request` (the optimize request the other flags made; its report's
/// evaluation data is what the budget is checked on, when `evalGiven`), prints the result as
/// text or JSON, and sets exit code 3 when the budget is not met.
Status runBudget(const BudgetArgs& args, OptimizeRequest request, bool evalGiven, bool json);

}  // namespace whittle::tools
