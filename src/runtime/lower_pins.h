#pragma once
// Internal to the CPU lowering's rewrites (src/runtime/lower_*.cpp): which values a rewrite may
// fuse away.

#include <string>
#include <unordered_set>
#include <vector>

#include "whittle/ir/graph.h"
#include "whittle/ir/match.h"

namespace whittle::runtime {

/// Names of the values that must survive the lowering unchanged.
class Pins {
 public:
  Pins(const ir::Graph& graph, const std::vector<std::string>& keep) {
    for (const std::string& name : keep) {
      if (const ir::Value* v = graph.findValue(name)) keep_.insert(v);
    }
  }
  /// Whether `v` must stay as it is: a graph input, output or initializer, kept, or read by a subgraph.
  bool operator()(const ir::Value* v) const {
    return v->isGraphOutput() || v->isGraphInput() || v->isInitializer() || keep_.contains(v) || v->hasImplicitUses();
  }
  bool kept(const ir::Value* v) const { return keep_.contains(v); }

 private:
  std::unordered_set<const ir::Value*> keep_;
};

/// A value read once, by a default-domain node, that may go away; that reader, else nullptr.
inline ir::Node* soleReader(const ir::Value* v, const Pins& pinned) {
  if (v == nullptr || pinned(v)) return nullptr;
  const ir::Value::Use* use = ir::onlyUse(v);
  if (use == nullptr || use->implicit() || !use->user->domain().empty()) return nullptr;
  return use->user;
}

/// Whether `n` (may be null) is a default-domain `op`.
inline bool isDefaultOp(const ir::Node* n, const char* op) {
  return n != nullptr && n->domain().empty() && n->opType() == op;
}

inline bool isFloat32(const ir::Value* v) {
  return v != nullptr && v->dtype() == ir::DataType::kFloat;
}

}  // namespace whittle::runtime
