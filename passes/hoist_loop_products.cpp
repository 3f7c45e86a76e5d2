// hoist-loop-products
// Before: ys = Loop(...)    body: g = Gather(X, i, axis=a); p = MatMul(g, W)
//         X read from the enclosing graph (a capture), W a 2-D float constant, a not X's last axis
// After:  P = MatMul(X, W) before the Loop;   body: p = Gather(P, i, axis=a)   (P a capture)
// Gather along an axis other than the last picks whole rows of the product's left operand, so it
// commutes with the product: MatMul(Gather(X, i), W) = Gather(MatMul(X, W), i) for any index, the
// same numbers. tf2onnx writes each LSTM as a while-loop whose body gathers step t of the input
// sequence and multiplies it by the input kernel: one [B, I] x [I, 4H] product per step, each
// reading all of W (piper's Hebrew diacritizer: 64 steps, [1, 400] x [400, 1600], W read from
// memory 64 times a run). Hoisted, the steps' products are one GEMM over the whole sequence, and
// quantize-int8 quantizes it in the main graph as any MatMul.
// The product covers every row of X whatever the loop's trip count: for tf2onnx's loops the trip
// count is the sequence length.
// Requires: the Loop in the main graph (bodies inside bodies are left as they are), X a float
// value of the main graph (not a loop-carried or body value) of known rank, or gathered on axis 0
// by a scalar index; W a body initializer or a capture of a main-graph constant, of rank 2 and
// float; the Gather's indices computed in the body or a capture.
#include <algorithm>

#include "pass_factories.h"
#include "whittle/ir/match.h"
#include "whittle/onnx_io/subgraph.h"

namespace whittle::passes {
namespace {

class HoistLoopProducts final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  /// Rewrites one Loop; returns how many products it hoisted (0: the node is unchanged).
  static Expected<int64_t> rewrite(ir::Graph& graph, ir::Node* loop);
};

Status HoistLoopProducts::run(ir::Model& model, PassContext& ctx) {
  int64_t hoisted = 0;
  for (ir::Node* n : model.graph->nodes()) {
    if (!ir::isDefaultDomain(*n) || n->opType() != "Loop") continue;
    WH_ASSIGN_OR_RETURN(int64_t here, rewrite(*model.graph, n));
    hoisted += here;
  }
  ctx.stats().rewrites = hoisted;
  if (hoisted > 0) {
    ctx.note("hoist-loop-products: " + std::to_string(hoisted) +
             " MatMul(s) of a gathered row of a loop-invariant tensor now one product before the Loop");
  }
  return Status::ok();
}

Expected<int64_t> HoistLoopProducts::rewrite(ir::Graph& graph, ir::Node* loop) {
  const ir::Attribute* attribute = loop->findAttribute("body");
  if (attribute == nullptr || attribute->kind != ir::Attribute::Kind::kGraph) return 0;
  WH_ASSIGN_OR_RETURN(onnx_io::Subgraph sub, onnx_io::loadSubgraph(*attribute, loop->describe()));
  ir::Graph& body = *sub.graph;
  // The main-graph value a body value names, when it is a capture (not a formal input).
  auto outerOf = [&](const ir::Value* v) -> ir::Value* {
    if (v == nullptr || v->producer() != nullptr || v->isInitializer()) return nullptr;
    if (std::find(sub.captures.begin(), sub.captures.end(), v->name()) == sub.captures.end()) return nullptr;
    return graph.findValue(v->name());
  };
  int64_t hoisted = 0;
  for (ir::Node* mm : body.nodes()) {
    if (!ir::isDefaultDomainOp(*mm, {"MatMul"}) || mm->output(0) == nullptr) continue;
    ir::Node* gather = mm->input(0) != nullptr ? mm->input(0)->producer() : nullptr;
    if (gather == nullptr || !ir::isDefaultDomainOp(*gather, {"Gather"}) || gather->numInputs() != 2) continue;
    // X: a main-graph float value gathered along an axis other than its last. With X's rank
    // unknown (tf2onnx's second layer reads a value the Loops before it computed), a scalar index
    // on axis 0 still qualifies: the row it picks feeds a MatMul, so it has rank >= 1 and X >= 2.
    ir::Value* x = outerOf(gather->input(0));
    // (Its type may be unknown too: the MatMul with a float W makes it float.)
    if (x == nullptr || (x->dtype() != ir::DataType::kFloat && x->dtype() != ir::DataType::kUndefined)) continue;
    int64_t axis = gather->attrInt("axis", 0);
    if (x->type().shape) {
      const auto rank = static_cast<int64_t>(x->type().shape->size());
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank - 1) continue;
    } else {
      const ir::ValueType& indexType = gather->input(1)->type();
      if (axis != 0 || !indexType.shape || !indexType.shape->empty()) continue;
    }
    // W: a 2-D float constant, in the body or captured from the main graph.
    const ir::Value* wBody = mm->input(1);
    ir::Value* w = nullptr;
    if (const ir::Tensor* t = ir::constantOf(wBody); t != nullptr && wBody->isInitializer()) {
      if (t->rank() != 2 || t->dtype() != ir::DataType::kFloat) continue;
      w = graph.addInitializer(graph.uniqueValueName(wBody->name() + "_hoisted"), *t);
    } else if (ir::Value* outer = outerOf(wBody); outer != nullptr) {
      const ir::Tensor* t = ir::constantOf(outer);
      if (t == nullptr || t->rank() != 2 || t->dtype() != ir::DataType::kFloat) continue;
      w = outer;
    } else {
      continue;
    }
    // P = MatMul(X, W) in the main graph, under a name free in both graphs.
    std::string name = graph.uniqueValueName(mm->output(0)->name() + "_hoisted");
    while (body.findValue(name) != nullptr) name = graph.uniqueValueName(name + "_");
    ir::Node* product = graph.addNode("MatMul", {x, w}, {name}, name, "", loop);
    ir::Value* p = product->output(0);
    p->mutableType().dtype = ir::DataType::kFloat;
    loop->addImplicitInput(p);
    // The body reads row i of P where it multiplied row i of X.
    ir::Value* capture = body.addInput(name, ir::ValueType{});
    sub.captures.push_back(name);
    ir::Node* picked = body.addNode("Gather", {capture, gather->input(1)}, {mm->output(0)->name() + "_row"},
                                    mm->name(), "", mm);
    picked->setAttribute(ir::Attribute::makeInt("axis", axis));
    picked->output(0)->mutableType() = mm->output(0)->type();
    const std::string oldName = mm->output(0)->name();
    body.replaceAllUsesWith(mm->output(0), picked->output(0));
    body.eraseNode(mm);
    if (body.findValue(oldName) == nullptr) WH_RETURN_IF_ERROR(body.renameValue(picked->output(0), oldName));
    if (!gather->output(0)->hasUses() && !gather->output(0)->hasImplicitUses() && !gather->output(0)->isGraphOutput()) {
      body.eraseNode(gather);
    }
    ++hoisted;
  }
  if (hoisted == 0) return 0;
  ir::removeDeadNodes(body);
  ir::Attribute stored = *attribute;
  WH_RETURN_IF_ERROR(onnx_io::storeSubgraph(sub, stored).withContext(loop->describe()));
  loop->setAttribute(stored);
  return hoisted;
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeHoistLoopProducts(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<HoistLoopProducts>());
}

}  // namespace whittle::passes
