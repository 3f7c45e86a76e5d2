#include "whittle/ir/rewrite.h"

#include <algorithm>
#include <unordered_map>

namespace whittle::ir {

void Rewriter::replaceNode(Node& node, const std::vector<Value*>& values) {
  for (size_t i = 0; i < node.numOutputs() && i < values.size(); ++i) {
    if (node.output(i) != nullptr && values[i] != nullptr) graph_.replaceAllUsesWith(node.output(i), values[i]);
  }
  graph_.eraseNode(&node);
}

int64_t removeDeadNodes(Graph& graph) {
  int64_t removed = 0;
  std::vector<Node*> nodes = graph.nodes();
  // Reverse order: consumers go first, which frees their producers in the same sweep.
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    if (!isTriviallyDead(**it)) continue;
    graph.eraseNode(*it);
    ++removed;
  }
  std::vector<Value*> unused;
  for (Value* v : graph.initializers()) {
    if (!v->hasUses() && !v->isGraphOutput() && !v->isGraphInput()) unused.push_back(v);
  }
  graph.eraseValues(unused);
  return removed;
}

Node* replaceChain(Graph& graph, const std::vector<Node*>& old, Value* finalOut, const std::string& opType,
                   const std::string& domain, const std::string& name, const std::vector<Value*>& inputs,
                   std::vector<Attribute> attrs) {
  std::string finalName = finalOut->name();
  WH_CHECK(graph.renameValue(finalOut, graph.uniqueValueName(finalName + "_lowered")).isOk());
  Node* node = graph.addNode(opType, inputs, {finalName}, name, domain, old.back());
  Value* out = node->output(0);
  out->mutableType() = finalOut->type();
  out->setHasValueInfo(finalOut->hasValueInfo());
  out->setDocString(finalOut->docString());
  for (Attribute& a : attrs) node->setAttribute(std::move(a));
  std::vector<Value::Use> uses = finalOut->uses();
  for (const Value::Use& use : uses) use.user->replaceInput(finalOut, out);
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    if (graph.outputs()[i] == finalOut) graph.setOutput(i, out);
  }
  for (auto it = old.rbegin(); it != old.rend(); ++it) graph.eraseNode(*it);
  return node;
}

namespace {

/// Nodes waiting to be tried, first in first out, each at most once. A node erased while it
/// waits leaves at once, so that a freed address never comes back out as a stale entry.
class Worklist {
 public:
  void push(Node* node) {
    if (slot_.emplace(node, items_.size()).second) items_.push_back(node);
  }
  Node* pop() {
    while (head_ < items_.size()) {
      Node* node = items_[head_++];
      if (node == nullptr) continue;
      slot_.erase(node);
      return node;
    }
    items_.clear();  // drained: start over at the front
    head_ = 0;
    return nullptr;
  }
  void remove(Node* node) {
    auto it = slot_.find(node);
    if (it == slot_.end()) return;
    items_[it->second] = nullptr;
    slot_.erase(it);
  }
  bool empty() const { return slot_.empty(); }

 private:
  std::vector<Node*> items_;
  size_t head_ = 0;
  std::unordered_map<Node*, size_t> slot_;
};

/// A value left with at most this many readers has them tried again: patterns often want a
/// value read once (or, like LayerNormalization's centred input, twice).
constexpr size_t kFewReaders = 2;

class GreedyDriver final : public GraphListener {
 public:
  GreedyDriver(Graph& graph, const std::vector<const PatternBase*>& patterns, const PatternApplier& apply,
               const GreedyRewriteConfig& config)
      : graph_(graph), apply_(apply), config_(config), rewriter_(graph) {
    for (const PatternBase* p : patterns) {
      for (std::string_view op : p->rootOps()) byOp_[op].push_back(p);
    }
  }

  Expected<GreedyRewriteStats> run() {
    // Listens for the run only, whatever way it ends.
    struct Listening {
      Graph& graph;
      GraphListener* previous;
      ~Listening() { graph.setListener(previous); }
    } listening{graph_, graph_.setListener(this)};
    WH_RETURN_IF_ERROR(process());
    return stats_;
  }

  void nodeInserted(Node& node) override { worklist_.push(&node); }

  void nodeErased(Node& node) override {
    worklist_.remove(&node);
    if (&node == current_) currentErased_ = true;
    if (!sweeping_) std::erase(maybeDead_, &node);
    for (Value* in : node.inputs()) {
      if (in != nullptr) lostUse(*in, node);
    }
    for (Value* in : node.implicitInputs()) lostUse(*in, node);
  }

  void inputChanged(Node& user, Value* from, Value* to) override {
    worklist_.push(&user);
    if (from != nullptr) lostUse(*from, user);
    if (to != nullptr && to->producer() != nullptr) worklist_.push(to->producer());
  }

  void nodeModified(Node& node) override { worklist_.push(&node); }

  void valueModified(Value& value) override {
    if (value.producer() != nullptr) worklist_.push(value.producer());
    for (const Value::Use& use : value.uses()) worklist_.push(use.user);
  }

 private:
  Status process() {
    graph_.forEachNode([&](Node& node) { worklist_.push(&node); });
    const int64_t limit =
        config_.maxRewrites > 0 ? config_.maxRewrites : 100 * static_cast<int64_t>(graph_.numNodes()) + 1000;
    bool sweepDue = false;
    for (;;) {
      while (Node* node = worklist_.pop()) {
        if (!isDefaultDomain(*node)) continue;
        auto it = byOp_.find(node->opType());
        if (it == byOp_.end()) continue;
        ++stats_.visits;
        for (const PatternBase* pattern : it->second) {
          current_ = node;
          currentErased_ = false;
          Expected<bool> applied = apply_(*pattern, *node, rewriter_);
          current_ = nullptr;
          if (!applied.isOk()) return applied.status();
          if (!*applied) continue;
          ++stats_.rewrites;
          sweepDue = true;
          if (!currentErased_) {  // try it again later; it may also be left unread now
            worklist_.push(node);
            maybeDead_.push_back(node);
          }
          eraseDeadNodes();
          if (stats_.rewrites > limit) {
            return internalError("pattern rewriting did not converge: " + std::to_string(stats_.rewrites) +
                                 " rewrites on a graph of " + std::to_string(graph_.numNodes()) +
                                 " nodes (do two patterns undo each other?)");
          }
          break;
        }
      }
      if (!sweepDue || !config_.removeDeadCode) return Status::ok();
      sweepDue = false;
      sweeping_ = true;
      stats_.nodesErased += removeDeadNodes(graph_);
      sweeping_ = false;
      ++stats_.deadCodeSweeps;
      if (worklist_.empty()) return Status::ok();
      // The sweep erased dead code that was there before: readers it freed get another try.
    }
  }

  // `v` lost its reader `reader`: its producer may now be dead, and readers left alone on it
  // may match patterns that want the value to themselves.
  void lostUse(Value& v, const Node& reader) {
    if (Node* p = v.producer()) {
      worklist_.push(p);
      if (!sweeping_) maybeDead_.push_back(p);  // a sweep finds the dead itself
    }
    size_t others = 0;
    for (const Value::Use& use : v.uses()) others += use.user != &reader ? 1 : 0;
    if (others > kFewReaders) return;
    for (const Value::Use& use : v.uses()) {
      if (use.user != &reader) worklist_.push(use.user);
    }
  }

  // Erases the nodes that the last rewrite left unread, and then their producers as they
  // become unread in turn.
  void eraseDeadNodes() {
    while (!maybeDead_.empty()) {
      Node* node = maybeDead_.back();
      maybeDead_.pop_back();
      if (!isTriviallyDead(*node)) continue;
      graph_.eraseNode(node);  // nodeErased drops other copies of it and adds its producers
      ++stats_.nodesErased;
    }
  }

  Graph& graph_;
  const PatternApplier& apply_;
  GreedyRewriteConfig config_;
  Rewriter rewriter_;
  std::unordered_map<std::string_view, std::vector<const PatternBase*>> byOp_;
  Worklist worklist_;
  std::vector<Node*> maybeDead_;
  Node* current_ = nullptr;
  bool currentErased_ = false;
  bool sweeping_ = false;
  GreedyRewriteStats stats_;
};

}  // namespace

Expected<GreedyRewriteStats> applyPatternsGreedily(Graph& graph, const std::vector<const PatternBase*>& patterns,
                                                   const PatternApplier& apply, const GreedyRewriteConfig& config) {
  GreedyDriver driver(graph, patterns, apply, config);
  return driver.run();
}

}  // namespace whittle::ir
