#pragma once
// Graph surgery shared by the CPU lowering steps (lowering.cpp, lower_qdq.cpp).

#include <string>
#include <vector>

#include "whittle/ir/graph.h"

namespace whittle::runtime {

/// The only explicit use of `v`, or nullptr.
const ir::Value::Use* onlyUse(const ir::Value* v);

/// Replaces the chain `old` (in graph order; the last node produces `finalOut`) with one new
/// node of `opType` reading `inputs`. The new node's output takes over `finalOut`'s name,
/// type and readers (graph outputs included); the old nodes are erased, last first, and
/// every old node but the last must have no readers outside the chain.
ir::Node* replaceChain(ir::Graph& graph, const std::vector<ir::Node*>& old, ir::Value* finalOut,
                       const std::string& opType, const std::string& domain, const std::string& name,
                       const std::vector<ir::Value*>& inputs, std::vector<ir::Attribute> attrs);

}  // namespace whittle::runtime
