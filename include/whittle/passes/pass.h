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
#include "whittle/runtime/backend.h"

namespace whittle::quant {
class CalibrationProvider;
}

namespace whittle::passes {

/// One declared option of a pass: its name, default (as text) and a one-line help.
struct OptionSpec {
  std::string name;
  std::string defaultValue;
  std::string help;
};

/// The options given to a pass, checked against its declared OptionSpecs.
class PassOptions {
 public:
  PassOptions() = default;
  explicit PassOptions(std::map<std::string, std::string> values) : values_(std::move(values)) {}

  bool has(const std::string& name) const { return values_.contains(name); }
  /// The option's text, or `fallback`.
  std::string getString(const std::string& name, const std::string& fallback) const;
  Expected<double> getDouble(const std::string& name, double fallback) const;
  Expected<int64_t> getInt(const std::string& name, int64_t fallback) const;
  Expected<bool> getBool(const std::string& name, bool fallback) const;
  /// A list option: items separated by ';' or ':' (the pipeline text uses ',' between options),
  /// surrounding spaces trimmed, empty items dropped; `fallback` when the option is absent.
  std::vector<std::string> getList(const std::string& name, const std::string& fallback = "") const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

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
  /// Where quantize passes get activation ranges (whittle optimize --calib/--load-calib); may be null.
  quant::CalibrationProvider* calibration = nullptr;
  /// The runtime that passes evaluating nodes (fold-constants) use: its backend and threads.
  runtime::DeviceKind device = runtime::DeviceKind::kCpu;
  int threads = 1;

 private:
  ir::Model& model_;
  PassStats* current_ = nullptr;
  std::vector<std::string> notes_;
};

/// A pass over a whole model.
class Pass {
 public:
  virtual ~Pass() = default;
  virtual Status run(ir::Model& model, PassContext& ctx) = 0;
};

/// A local rewrite: cheap checks in match(), the change in rewrite(). "Not applicable" is
/// match() returning false, never an error.
class RewritePattern {
 public:
  virtual ~RewritePattern() = default;
  /// Op types (default domain) whose nodes may be the root of a match.
  virtual std::vector<std::string_view> rootOps() const = 0;
  virtual bool match(const ir::Node& root, const PassContext& ctx) const = 0;
  /// Rewrites the matched graph; must leave a graph that passes the verifier.
  virtual Status rewrite(ir::Node& root, PassContext& ctx) const = 0;
};

/// Applies `patterns` to every node, over and over, until none matches. Returns how many
/// rewrites were applied. Nodes made dead by a rewrite are removed as it goes.
Expected<int64_t> applyPatternsGreedily(ir::Graph& graph, const std::vector<const RewritePattern*>& patterns,
                                        PassContext& ctx);

/// A pass made of one or more rewrite patterns run by the greedy driver.
class PatternPass : public Pass {
 public:
  explicit PatternPass(std::vector<std::unique_ptr<RewritePattern>> patterns) : patterns_(std::move(patterns)) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  std::vector<std::unique_ptr<RewritePattern>> patterns_;
};

/// A PatternPass over `patterns`, as a pass factory returns it.
inline Expected<std::unique_ptr<Pass>> makePatternPass(std::vector<std::unique_ptr<RewritePattern>> patterns) {
  return std::unique_ptr<Pass>(std::make_unique<PatternPass>(std::move(patterns)));
}

/// The constant tensor behind `v`: an initializer (not also a graph input, which a caller
/// could override) or the output of a Constant node with a `value` tensor. nullptr otherwise.
const ir::Tensor* constantOf(const ir::Value* v);

/// Whether every use of `from` may be redirected to `to` without changing the model's
/// interface (a graph output fed straight from a graph input or initializer needs a node).
bool canForward(const ir::Value* from, const ir::Value* to);

/// Removes nodes (without side effects) whose outputs nothing uses, and unused initializers.
/// Returns how many nodes went. Shared by passes that leave dead code behind.
int64_t removeDeadNodes(ir::Graph& graph);

}  // namespace whittle::passes
