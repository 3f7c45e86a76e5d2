#pragma once
// Internal to passes/: the note that passes which leave subgraphs alone give.

#include <string_view>

#include "whittle/ir/graph.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

/// Notes, for `pass`, the nodes whose subgraphs (If branches, Loop and Scan bodies) it leaves
/// as they are because passes do not rewrite inside subgraphs: "quantize-int8: the subgraphs
/// of 1 control-flow node (If 'choose') are left float (passes do not rewrite inside
/// subgraphs)". `what` says how they are left; nothing is noted when there are none.
void noteSubgraphsLeftAlone(const ir::Graph& graph, PassContext& ctx, std::string_view pass, std::string_view what);

}  // namespace whittle::passes
