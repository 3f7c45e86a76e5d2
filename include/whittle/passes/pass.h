#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/passes/options.h"
#include "whittle/runtime/backend.h"
#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"

namespace whittle::quant {
class CalibrationProvider;
}

namespace whittle::passes {

/// What a pass did, for the report: counts and time.
struct PassStats {
  std::string pass;
  int64_t rewrites = 0;
  int64_t nodesBefore = 0;
  int64_t nodesAfter = 0;
  int64_t parameterBytesBefore = 0;
  int64_t parameterBytesAfter = 0;
  double milliseconds = 0;
  /// Pass-specific counters ("weights-clamped": 3, ...).
  std::map<std::string, int64_t> counters;
};

/// Shared state for one pipeline run: the model's opsets and the place passes record
/// their statistics and notes. Passes hold no state between runs; what they need comes
/// from here or from their options.
class PassContext {
 public:
  explicit PassContext(ir::Model& model) : model_(model) {}
  ir::Model& model() { return model_; }
  int64_t opset(std::string_view domain = "") const { return model_.opsetVersion(domain); }

  /// The statistics of the pass that is running.
  PassStats& stats() { return *current_; }
  void setCurrentStats(PassStats* s) { current_ = s; }
  /// A note for the user ("fuse-gelu: opset 17 < 20, left decomposed"), shown by optimize.
  void note(std::string message) { notes_.push_back(std::move(message)); }
  const std::vector<std::string>& notes() const { return notes_; }
  /// A fallback that costs accuracy or speed (per-tensor weights where per-channel was asked
  /// for): a warning for the user and the report, or, under `strict`, an error with the same
  /// message that stops the pipeline. Usage: WH_RETURN_IF_ERROR(ctx.fallback("quantize-int8: ..."));
  Status fallback(std::string message);
  const std::vector<std::string>& warnings() const { return warnings_; }
  /// Fallbacks are errors (whittle optimize --strict).
  bool strict = false;
  /// Where quantize passes get activation ranges (whittle optimize --calib/--load-calib); may be null.
  quant::CalibrationProvider* calibration = nullptr;
  /// The runtime that passes evaluating nodes (fold-constants) use: its backend and threads.
  runtime::DeviceKind device = runtime::DeviceKind::kCpu;
  int threads = 1;

 private:
  ir::Model& model_;
  PassStats* current_ = nullptr;
  std::vector<std::string> notes_;
  std::vector<std::string> warnings_;
};

/// A pass over a whole model.
class Pass {
 public:
  virtual ~Pass() = default;
  virtual Status run(ir::Model& model, PassContext& ctx) = 0;
};

/// A pattern of a PatternPass: tried by the greedy driver with the pass's context.
using Pattern = ir::Pattern<PassContext>;

/// A local rewrite (ir/rewrite.h): match() does the cheap checks and returns a MatchT with
/// what it found; rewrite() changes the graph from that alone. "Not applicable" is match()
/// returning nullopt, never an error.
template <typename MatchT>
using RewritePattern = ir::RewritePattern<MatchT, PassContext>;

/// A pass made of one or more rewrite patterns run by the greedy worklist driver.
class PatternPass : public Pass {
 public:
  explicit PatternPass(std::vector<std::unique_ptr<Pattern>> patterns) : patterns_(std::move(patterns)) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  std::vector<std::unique_ptr<Pattern>> patterns_;
};

/// A PatternPass over `patterns`, as a pass factory returns it.
inline Expected<std::unique_ptr<Pass>> makePatternPass(std::vector<std::unique_ptr<Pattern>> patterns) {
  return std::unique_ptr<Pass>(std::make_unique<PatternPass>(std::move(patterns)));
}

/// The matcher and clean-up that every kind of pass uses, from ir/match.h and ir/rewrite.h:
/// constantOf (in the model's scope), canForward and removeDeadNodes.
using ir::canForward;
using ir::constantOf;
using ir::removeDeadNodes;

}  // namespace whittle::passes
