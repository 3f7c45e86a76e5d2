#pragma once
// Subgraph attributes (If's branches, Loop's and Scan's body) decoded into IR graphs. The IR
// keeps them serialized (round-trip fidelity); the runtime decodes them once per session to run
// them, and a pass that rewrites inside them (quantize-int8, quantize-dynamic) decodes them,
// rewrites the graph and stores it back (storeSubgraph).

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

/// Encodes `sub` (as loadSubgraph gave it, rewritten or not) into the graph attribute
/// `attribute`: the formal inputs stay inputs, the capture inputs go (the body reads those
/// names from the enclosing scopes again). The node's implicit inputs are unchanged, so a
/// rewrite must not make the body read an enclosing value it did not read before.
Status storeSubgraph(Subgraph& sub, ir::Attribute& attribute);

}  // namespace whittle::onnx_io
