// initializers-to-constants
// Before: graph inputs = [data, W1, b1, ...] where W1, b1 also have initializers (IR < 4
//         exporters list every weight as an input, so a runtime must treat them as
//         overridable and cannot fold them).
// After:  graph inputs = [data]; W1, b1 are plain initializers, free to fold and fuse.
// Option keep=true leaves the inputs alone (what --keep-initializer-inputs sets).
#include "pass_factories.h"

namespace whittle::passes {
namespace {

class InitializersToConstants final : public Pass {
 public:
  explicit InitializersToConstants(bool keep) : keep_(keep) {}
  Status run(ir::Model& model, PassContext& ctx) override {
    if (keep_) return Status::ok();
    ir::Graph& graph = *model.graph;
    std::vector<ir::Value*> inputs = graph.inputs();
    int64_t dropped = 0;
    for (ir::Value* v : inputs) {
      if (!v->isInitializer()) continue;
      graph.removeInput(v);
      ++dropped;
    }
    if (dropped > 0 && model.irVersion < 4) {
      model.irVersion = 4;  // IR 3 requires every initializer to be an input
      ctx.note("initializers-to-constants: raised IR version to 4 so initializers need not be inputs");
    }
    ctx.stats().rewrites += dropped;
    ctx.stats().counters["inputs-dropped"] += dropped;
    return Status::ok();
  }

 private:
  bool keep_;
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeInitializersToConstants(const InitializersToConstantsOptions& options) {
  return std::unique_ptr<Pass>(std::make_unique<InitializersToConstants>(options.keep));
}

}  // namespace whittle::passes
