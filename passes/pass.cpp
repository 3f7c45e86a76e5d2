#include "whittle/passes/pass.h"
#include "subgraph_note.h"

namespace whittle::passes {

Status PassContext::fallback(std::string message) {
  if (strict) return unimplemented(message + " (an error under --strict)");
  warnings_.push_back(std::move(message));
  return Status::ok();
}

void noteSubgraphsLeftAlone(const ir::Graph& graph, PassContext& ctx, std::string_view pass, std::string_view what) {
  std::vector<std::string> nodes;
  for (const ir::Node* n : graph.nodes()) {
    if (n->hasSubgraphs()) nodes.push_back(n->describe());
  }
  if (nodes.empty()) return;
  std::string list;
  for (size_t i = 0; i < nodes.size() && i < 3; ++i) list += (i ? ", " : "") + nodes[i];
  if (nodes.size() > 3) list += ", ...";
  ctx.note(std::string(pass) + ": the subgraphs of " + std::to_string(nodes.size()) + " control-flow node" +
           (nodes.size() == 1 ? "" : "s") + " (" + list + ") are left " + std::string(what) +
           " (passes do not rewrite inside subgraphs)");
}

Status PatternPass::run(ir::Model& model, PassContext& ctx) {
  std::vector<const Pattern*> raw;
  raw.reserve(patterns_.size());
  for (const auto& p : patterns_) raw.push_back(p.get());
  WH_ASSIGN_OR_RETURN(ir::GreedyRewriteStats stats, ir::applyPatternsGreedily(*model.graph, raw, ctx));
  ctx.stats().rewrites += stats.rewrites;
  return Status::ok();
}

}  // namespace whittle::passes
