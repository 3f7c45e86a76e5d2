#include "whittle/passes/pass.h"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <unordered_map>
#include <unordered_set>

namespace whittle::passes {

std::string PassOptions::getString(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

Expected<double> PassOptions::getDouble(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') return invalidInput("option " + name + "='" + it->second + "' is not a number");
  return v;
}

Expected<int64_t> PassOptions::getInt(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') return invalidInput("option " + name + "='" + it->second + "' is not an integer");
  return static_cast<int64_t>(v);
}

std::vector<std::string> PassOptions::getList(const std::string& name, const std::string& fallback) const {
  std::vector<std::string> items;
  std::string current;
  auto flush = [&] {
    const size_t first = current.find_first_not_of(" \t");
    if (first != std::string::npos) items.push_back(current.substr(first, current.find_last_not_of(" \t") - first + 1));
    current.clear();
  };
  for (char c : getString(name, fallback)) {
    if (c == ';' || c == ':') {
      flush();
    } else {
      current += c;
    }
  }
  flush();
  return items;
}

Expected<bool> PassOptions::getBool(const std::string& name, bool fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& v = it->second;
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return invalidInput("option " + name + "='" + v + "' is not true or false");
}

const ir::Tensor* constantOf(const ir::Value* v) {
  if (v == nullptr) return nullptr;
  if (v->isInitializer()) return v->isGraphInput() ? nullptr : v->constant();
  const ir::Node* p = v->producer();
  if (p != nullptr && p->opType() == "Constant" && (p->domain().empty() || p->domain() == "ai.onnx")) {
    const ir::Attribute* a = p->findAttribute("value");
    if (a != nullptr && a->kind == ir::Attribute::Kind::kTensor) return &a->t;
  }
  return nullptr;
}

bool canForward(const ir::Value* from, const ir::Value* to) {
  if (from == to) return false;
  if (from->hasImplicitUses()) return false;
  if (!from->isGraphOutput()) return true;
  return !to->isGraphInput() && !to->isGraphOutput() && !to->isInitializer();
}

namespace {

bool hasSideEffects(const ir::Node& node) {
  // Ops whose removal would change observable behaviour even when nothing reads them.
  return node.hasSubgraphs() && node.opType() != "If";
}

}  // namespace

int64_t removeDeadNodes(ir::Graph& graph) {
  int64_t removed = 0;
  std::vector<ir::Node*> nodes = graph.nodes();
  std::unordered_set<ir::Node*> erased;
  // Reverse order: consumers go first, which frees their producers in the same sweep.
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    ir::Node* node = *it;
    bool dead = !hasSideEffects(*node);
    for (ir::Value* out : node->outputs()) {
      if (out != nullptr && (out->hasUses() || out->isGraphOutput())) dead = false;
    }
    if (!dead) continue;
    graph.eraseNode(node);
    ++removed;
  }
  for (ir::Value* v : std::vector<ir::Value*>(graph.initializers())) {
    if (!v->hasUses() && !v->isGraphOutput() && !v->isGraphInput()) graph.eraseValue(v);
  }
  return removed;
}

Expected<int64_t> applyPatternsGreedily(ir::Graph& graph, const std::vector<const RewritePattern*>& patterns,
                                        PassContext& ctx) {
  std::unordered_map<std::string_view, std::vector<const RewritePattern*>> byOp;
  for (const RewritePattern* p : patterns) {
    for (std::string_view op : p->rootOps()) byOp[op].push_back(p);
  }
  int64_t rewrites = 0;
  constexpr int kMaxSweeps = 100;
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    bool changed = false;
    // Snapshot the node list; rewrites may erase nodes, so check liveness by identity.
    std::vector<ir::Node*> nodes = graph.nodes();
    std::unordered_set<ir::Node*> alive(nodes.begin(), nodes.end());
    for (ir::Node* node : nodes) {
      if (!alive.contains(node)) continue;
      if (!node->domain().empty() && node->domain() != "ai.onnx") continue;
      auto it = byOp.find(node->opType());
      if (it == byOp.end()) continue;
      for (const RewritePattern* p : it->second) {
        if (!p->match(*node, ctx)) continue;
        WH_RETURN_IF_ERROR(p->rewrite(*node, ctx));
        ++rewrites;
        changed = true;
        removeDeadNodes(graph);
        std::vector<ir::Node*> now = graph.nodes();
        alive = std::unordered_set<ir::Node*>(now.begin(), now.end());
        break;
      }
    }
    if (!changed) return rewrites;
  }
  return internalError("pattern rewriting did not converge after " + std::to_string(kMaxSweeps) + " sweeps");
}

Status PatternPass::run(ir::Model& model, PassContext& ctx) {
  std::vector<const RewritePattern*> raw;
  for (const auto& p : patterns_) raw.push_back(p.get());
  WH_ASSIGN_OR_RETURN(int64_t n, applyPatternsGreedily(*model.graph, raw, ctx));
  ctx.stats().rewrites += n;
  return Status::ok();
}

}  // namespace whittle::passes
