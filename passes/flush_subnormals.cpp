// flush-subnormals
// Before: float32/float64 weights (initializers, Constant nodes) holding subnormal numbers,
//         nonzero values below 1.2e-38 (float32) that training leaves behind in weights that
//         decayed towards zero.
// After:  those elements are zero (of the same sign). x86 cores take a microcode assist for
//         every multiply that reads a subnormal, so a Conv whose weight is full of them runs
//         10 to 100 times slower in any runtime (ONNX Runtime included); the products they
//         contribute are below float32's resolution of any sum of ordinary magnitude.
#include "pass_factories.h"
#include "whittle/ir/fold.h"

namespace whittle::passes {
namespace {

class FlushSubnormals final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override {
    ir::SubnormalFlush done = ir::flushSubnormalConstants(*model.graph);
    ctx.stats().rewrites += done.tensors;
    ctx.stats().counters["subnormals-zeroed"] += done.elements;
    if (done.tensors > 0) {
      ctx.note("flush-subnormals: set " + std::to_string(done.elements) + " subnormal weight values in " +
               std::to_string(done.tensors) + " tensors to zero (they slow every runtime on x86)");
    }
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFlushSubnormals(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<FlushSubnormals>());
}

}  // namespace whittle::passes
