#pragma once
// Subgraph attributes (If's branches, Loop's and Scan's body) decoded into IR graphs. The IR
// keeps them serialized (round-trip fidelity; passes do not rewrite inside them); the runtime
// decodes them once per session to run them.

#include <memory>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::onnx_io {

/// A subgraph as an IR graph of its own. Its inputs are the subgraph's formal inputs, then
/// one input, without a type, for each name it reads from enclosing scopes (its captures,
/// those of nested subgraphs and graph outputs that name an enclosing value included), in
/// order of first read. Initializers stored as external data are refused.
struct Subgraph {
  std::unique_ptr<ir::Graph> graph;
  size_t numFormalInputs = 0;
  std::vector<std::string> captures;
};

/// Decodes the graph attribute `attribute` of a loaded node; `label` names the node in messages.
Expected<Subgraph> loadSubgraph(const ir::Attribute& attribute, const std::string& label);

}  // namespace whittle::onnx_io
