#pragma once
// The nodes of subgraph attributes (If, Loop and Scan bodies), which the IR keeps serialized:
// read for passes that must know what a body holds (upgrade-opset refuses bodies it would have
// to change).

#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::onnx_io {

/// A node inside a subgraph attribute (nested bodies included).
struct SubgraphNode {
  std::string domain;
  std::string opType;
  std::string name;
};

/// Every node inside the graph-valued attribute `attribute` (kinds GRAPH and GRAPHS), in order,
/// nested bodies included; empty for other kinds.
Expected<std::vector<SubgraphNode>> subgraphNodes(const ir::Attribute& attribute);

}  // namespace whittle::onnx_io
