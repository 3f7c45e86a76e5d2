#pragma once
// Local rewrites and the greedy driver that applies them (MLIR's GreedyPatternRewriteDriver
// is the model). A pattern says which ops it may be rooted at; match() does the cheap checks
// and returns what it found, and rewrite() changes the graph from that, without matching
// again:
//
//   struct ConvBnMatch { ir::Node* conv; };
//   class FuseConvBn final : public ir::RewritePattern<ConvBnMatch, PassContext> {
//     std::vector<std::string_view> rootOps() const override { return {"BatchNormalization"}; }
//     std::optional<ConvBnMatch> match(const ir::Node& bn, const PassContext&) const override;
//     Status rewrite(ir::Node& bn, const ConvBnMatch& m, ir::Rewriter& rw) const override;
//   };
//
// The driver keeps a worklist: every node once, then only what a rewrite touched (nodes it
// added, the readers and producers of values whose uses changed). It listens to the graph
// (GraphListener), so an erased node leaves the worklist at once and is never visited; nodes
// a rewrite leaves unread are erased right after it, and the rest of the dead code (and
// unused initializers) goes in one sweep at the end.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/match.h"

namespace whittle::ir {

/// What a rewrite changes the graph through. Every change made through the graph is seen by
/// the driver (it listens to the graph); these are the steps rewrites take most often.
class Rewriter {
 public:
  explicit Rewriter(Graph& graph) : graph_(graph) {}
  Graph& graph() const { return graph_; }

  /// Redirects every use of `from` to `to` (Graph::replaceAllUsesWith: a graph output keeps
  /// its name).
  void replaceAllUsesWith(Value* from, Value* to) { graph_.replaceAllUsesWith(from, to); }
  /// Redirects the uses of each output of `node` to the value at the same position of
  /// `values` (nullptr: that output must be unread), then erases `node`.
  void replaceNode(Node& node, const std::vector<Value*>& values);
  /// A new initializer named after `base` (made unique).
  Value* addInitializer(const std::string& base, Tensor tensor) { return graph_.addInitializer(base, std::move(tensor)); }

 private:
  Graph& graph_;
};

/// What every pattern tells the driver: the ops it may be rooted at.
class PatternBase {
 public:
  virtual ~PatternBase() = default;
  /// Op types (default domain) whose nodes may be the root of a match.
  virtual std::vector<std::string_view> rootOps() const = 0;
};

/// A pattern that the driver can try at a node, given the caller's context (a pass's
/// PassContext, the lowering's own state).
template <typename ContextT>
class Pattern : public PatternBase {
 public:
  /// Rewrites at `root` when the pattern matches there; false when it does not (never an
  /// error).
  virtual Expected<bool> matchAndRewrite(Node& root, Rewriter& rw, const ContextT& ctx) const = 0;
};

/// A local rewrite in two steps: match() does the checks, cheapest first, and returns what
/// rewrite() needs (the nodes and values it found, numbers it computed); rewrite() changes
/// the graph from that alone. "Not applicable" is match() returning nullopt, never an error.
template <typename MatchT, typename ContextT>
class RewritePattern : public Pattern<ContextT> {
 public:
  using Match = MatchT;
  virtual std::optional<MatchT> match(const Node& root, const ContextT& ctx) const = 0;
  /// Rewrites the matched graph; must leave a graph that passes the verifier. Nodes it leaves
  /// unread (the root, usually) are erased by the driver.
  virtual Status rewrite(Node& root, const MatchT& m, Rewriter& rw) const = 0;

  Expected<bool> matchAndRewrite(Node& root, Rewriter& rw, const ContextT& ctx) const final {
    std::optional<MatchT> m = match(root, ctx);
    if (!m) return false;
    WH_RETURN_IF_ERROR(rewrite(root, *m, rw));
    return true;
  }
};

/// The match of a pattern whose rewrite needs nothing but the root.
struct RootMatch {};

/// How the greedy driver runs.
struct GreedyRewriteConfig {
  /// Sweep the whole graph for dead nodes and unused initializers once at the end, when
  /// anything was rewritten. Either way, nodes that a rewrite leaves unread are erased.
  bool removeDeadCode = true;
  /// Rewrites after which the driver gives up with an error (patterns that undo each other);
  /// 0: 100 per node the graph had at the start, plus 1000.
  int64_t maxRewrites = 0;
};

/// What one driver run did.
struct GreedyRewriteStats {
  int64_t rewrites = 0;        ///< Rewrites applied.
  int64_t visits = 0;          ///< Nodes taken from the worklist and tried against patterns.
  int64_t nodesErased = 0;     ///< Nodes the driver erased because nothing read them.
  int64_t deadCodeSweeps = 0;  ///< Whole-graph dead-code sweeps (at most one per run unless a
                               ///< sweep made more rewrites possible).
};

/// Tries one pattern at one node: the bridge from the typed patterns to the driver.
using PatternApplier = std::function<Expected<bool>(const PatternBase&, Node&, Rewriter&)>;

/// Applies `patterns` at every node, and again at the nodes that each rewrite touches, until
/// none matches. Nodes in other domains than the default are not roots.
Expected<GreedyRewriteStats> applyPatternsGreedily(Graph& graph, const std::vector<const PatternBase*>& patterns,
                                                   const PatternApplier& apply, const GreedyRewriteConfig& config = {});

/// The same, for patterns that take `ctx`.
template <typename ContextT>
Expected<GreedyRewriteStats> applyPatternsGreedily(Graph& graph, const std::vector<const Pattern<ContextT>*>& patterns,
                                                   const ContextT& ctx, const GreedyRewriteConfig& config = {}) {
  std::vector<const PatternBase*> base(patterns.begin(), patterns.end());
  return applyPatternsGreedily(
      graph, base,
      [&ctx](const PatternBase& p, Node& root, Rewriter& rw) {
        return static_cast<const Pattern<ContextT>&>(p).matchAndRewrite(root, rw, ctx);
      },
      config);
}

/// Removes nodes that are trivially dead (isTriviallyDead), consumers first so that their
/// producers go in the same sweep, and initializers nothing reads (graph inputs and outputs
/// stay). Returns how many nodes went.
int64_t removeDeadNodes(Graph& graph);

/// Replaces the chain `old` (in graph order; the last node produces `finalOut`) with one new
/// node of `opType` reading `inputs`. The new node's output takes over `finalOut`'s name,
/// type and readers (graph outputs included); the old nodes are erased, last first, and
/// every old node but the last must have no readers outside the chain.
Node* replaceChain(Graph& graph, const std::vector<Node*>& old, Value* finalOut, const std::string& opType,
                   const std::string& domain, const std::string& name, const std::vector<Value*>& inputs,
                   std::vector<Attribute> attrs);

}  // namespace whittle::ir
