#include "whittle/passes/pass.h"

namespace whittle::passes {

Status PassContext::fallback(std::string message) {
  if (strict) return unimplemented(message + " (an error under --strict)");
  warnings_.push_back(std::move(message));
  return Status::ok();
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
