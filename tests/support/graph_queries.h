#pragma once
// Questions tests ask of a graph: how many nodes of an op type it has, the first of them, and the
// node of a name.
// (The op types in order, opTypes(), are in graph_builder.h.)

#include <cstdint>
#include <string>

#include "whittle/ir/graph.h"

namespace whittle::testing {

/// How many of the graph's nodes (not those of subgraphs) are `opType` nodes.
inline int64_t countOps(const ir::Graph& graph, const std::string& opType) {
  int64_t n = 0;
  for (const ir::Node* node : graph.nodes()) n += node->opType() == opType ? 1 : 0;
  return n;
}

/// The graph's first `opType` node in graph order (not in subgraphs), or nullptr.
inline const ir::Node* findOp(const ir::Graph& graph, const std::string& opType) {
  for (const ir::Node* n : graph.nodes()) {
    if (n->opType() == opType) return n;
  }
  return nullptr;
}

/// The graph's node named `name` (not in subgraphs), or nullptr.
inline ir::Node* findNode(const ir::Graph& graph, const std::string& name) {
  for (ir::Node* n : graph.nodes()) {
    if (n->name() == name) return n;
  }
  return nullptr;
}

}  // namespace whittle::testing
