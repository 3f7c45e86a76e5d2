// eliminate-dead
// Before: nodes whose outputs no node reads and no graph output names; unused initializers.
// After:  gone. Graph inputs and outputs are kept as they are.
#include "pass_factories.h"

namespace whittle::passes {
namespace {

class EliminateDead final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override {
    ctx.stats().rewrites += removeDeadNodes(*model.graph);
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeEliminateDead(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<EliminateDead>());
}

}  // namespace whittle::passes
