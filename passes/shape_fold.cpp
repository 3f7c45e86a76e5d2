// shape-fold
// Before: s = Shape(x){start, end}       x of static shape [d0, d1, ...]
//         n = Size(x)
// After:  s = int64 initializer [d_start, ..., d_end-1];  n = int64 scalar initializer
// Shapes come from the model's value_info and libonnx shape inference. The Gather/Slice/
// Concat chains that consume them then fold in fold-constants (which runs next at -O1).
#include <algorithm>

#include "pass_factories.h"
#include "fold_util.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::passes {
namespace {

class ShapeFold final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override {
    // Shape inference fills types on the model itself (value_info is not written back
    // unless the model had it), which later passes also use.
    (void)ir::inferShapes(model);
    ir::Graph& graph = *model.graph;
    int64_t folded = 0;
    for (ir::Node* node : graph.nodes()) {
      if (!ir::isDefaultDomainOp(*node, {"Shape", "Size"}) || node->input(0) == nullptr || node->output(0) == nullptr) continue;
      ir::Value* out = node->output(0);
      if (out->isGraphOutput() || out->hasImplicitUses()) continue;
      auto dims = node->input(0)->type().staticDims();
      if (!dims) continue;
      ir::Tensor value;
      if (node->opType() == "Size") {
        int64_t n = 1;
        for (int64_t d : *dims) n *= d;
        value = ir::Tensor::fromVector(ir::DataType::kInt64, {}, std::vector<int64_t>{n});
      } else {
        auto rank = static_cast<int64_t>(dims->size());
        int64_t start = node->attrInt("start", 0), end = node->attrInt("end", rank);
        if (start < 0) start += rank;
        if (end < 0) end += rank;
        start = std::clamp<int64_t>(start, 0, rank);
        end = std::clamp<int64_t>(end, start, rank);
        std::vector<int64_t> slice(dims->begin() + start, dims->begin() + end);
        value = ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(slice.size())}, slice);
      }
      ir::Value* c = graph.addInitializer(out->name() + "_shape", std::move(value));
      graph.replaceAllUsesWith(out, c);
      ++folded;
    }
    removeDeadNodes(graph);
    ctx.stats().rewrites += folded;
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeShapeFold(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<ShapeFold>());
}

}  // namespace whittle::passes
