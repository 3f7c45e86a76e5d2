#pragma once

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::ir {

/// Checks the structural invariants every pass must keep: each value has at most one
/// producer and the use lists agree with node inputs; every node input is a graph input,
/// an initializer or the output of an earlier node (so the list is topologically sorted);
/// every graph output is defined; value names are unique. The error names the node or value.
Status verify(const Graph& graph);

}  // namespace whittle::ir
