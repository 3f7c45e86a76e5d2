// loop-state-to-capture
// Before: ys, w_final = Loop(M, cond, v0, w)  body (i, c, v, w_in) -> (c', v', w_in, ...)
// After:  ys = Loop(M, cond, v0)              body (i, c, v) -> (c', v', ...), reading w by name
//         (a capture) where it read w_in; the uses of w_final read w.
// A loop-carried value that the body hands back unchanged holds its initial value on every
// iteration and after the last (zero iterations included), so the body may read the initial
// value from the enclosing graph instead. tf2onnx passes every LSTM kernel into its while-loop
// this way: as state, the weight is a float the quantizers cannot see as a constant, and an int8
// model keeps it beside its int8 copy.
// Requires: the Loop in the main graph (bodies inside bodies are left as they are); the state's
// initial value present, its name free in the body, and the state not captured by a subgraph
// inside the body (which would read it by name).
#include <algorithm>

#include "pass_factories.h"
#include "whittle/ir/match.h"
#include "whittle/onnx_io/subgraph.h"

namespace whittle::passes {
namespace {

class LoopStateToCapture final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  /// Rewrites one Loop; returns how many states became captures (0: the node is unchanged).
  static Expected<int64_t> rewrite(ir::Graph& graph, ir::Node* loop);
};

Status LoopStateToCapture::run(ir::Model& model, PassContext& ctx) {
  int64_t states = 0;
  for (ir::Node* n : model.graph->nodes()) {
    if (!ir::isDefaultDomain(*n) || n->opType() != "Loop") continue;
    WH_ASSIGN_OR_RETURN(int64_t here, rewrite(*model.graph, n));
    states += here;
  }
  ctx.stats().rewrites = states;
  if (states > 0) {
    ctx.note("loop-state-to-capture: " + std::to_string(states) +
             " loop-carried values that the body hands back unchanged are read from the enclosing graph");
  }
  return Status::ok();
}

Expected<int64_t> LoopStateToCapture::rewrite(ir::Graph& graph, ir::Node* loop) {
  const ir::Attribute* attribute = loop->findAttribute("body");
  if (attribute == nullptr || attribute->kind != ir::Attribute::Kind::kGraph) return 0;
  WH_ASSIGN_OR_RETURN(onnx_io::Subgraph sub, onnx_io::loadSubgraph(*attribute, loop->describe()));
  ir::Graph& body = *sub.graph;
  const size_t carried = loop->numInputs() >= 2 ? loop->numInputs() - 2 : 0;
  if (sub.numFormalInputs != carried + 2 || body.outputs().size() < carried + 1) return 0;
  // The states to drop, by index among the carried values.
  std::vector<size_t> drop;
  for (size_t k = 0; k < carried; ++k) {
    ir::Value* state = body.inputs()[2 + k];
    ir::Value* initial = loop->input(2 + k);
    if (body.outputs()[1 + k] != state || initial == nullptr || state->hasImplicitUses()) continue;
    // The body must be able to read the initial value under its name: free there, or already a capture.
    const ir::Value* clash = body.findValue(initial->name());
    const bool captured = std::find(sub.captures.begin(), sub.captures.end(), initial->name()) != sub.captures.end();
    if (clash != nullptr && !captured) continue;
    // The body output is listed once (a value handed back as two states keeps both).
    if (std::count(body.outputs().begin(), body.outputs().end(), state) != 1) continue;
    drop.push_back(k);
  }
  if (drop.empty()) return 0;

  // The body: each dropped state's readers read the capture; the state leaves the signature.
  std::vector<ir::Value*> newCaptures;
  for (auto it = drop.rbegin(); it != drop.rend(); ++it) {
    const size_t k = *it;
    ir::Value* state = body.inputs()[2 + k];
    ir::Value* initial = loop->input(2 + k);
    ir::Value* capture = body.findValue(initial->name());
    if (capture == nullptr) {
      capture = body.addInput(initial->name(), ir::ValueType{});
      sub.captures.push_back(initial->name());
      newCaptures.push_back(initial);
    }
    body.removeOutput(1 + k);
    if (state->hasUses()) body.replaceAllUsesWith(state, capture);
    body.removeInput(state);
    body.eraseValue(state);
  }
  sub.numFormalInputs -= drop.size();
  ir::Attribute stored = *attribute;
  WH_RETURN_IF_ERROR(onnx_io::storeSubgraph(sub, stored).withContext(loop->describe()));

  // The node: rebuilt without the dropped inputs and outputs (a node's lists only grow).
  auto dropped = [&](size_t k) { return std::find(drop.begin(), drop.end(), k) != drop.end(); };
  std::vector<ir::Value*> inputs = {loop->input(0), loop->input(1)};
  std::vector<std::string> outputNames;
  for (size_t k = 0; k < carried; ++k) {
    if (!dropped(k)) inputs.push_back(loop->input(2 + k));
  }
  for (size_t i = 0; i < loop->numOutputs(); ++i) {
    if (i < carried && dropped(i)) continue;
    outputNames.push_back(loop->output(i) == nullptr ? "" : loop->output(i)->name() + "_loop");
  }
  ir::Node* rebuilt = graph.addNode("Loop", inputs, outputNames, loop->name(), loop->domain(), loop);
  for (const ir::Attribute& a : loop->attributes()) rebuilt->setAttribute(a.name == "body" ? stored : a);
  for (ir::Value* v : loop->implicitInputs()) rebuilt->addImplicitInput(v);
  for (ir::Value* v : newCaptures) {
    const auto& have = rebuilt->implicitInputs();
    if (std::find(have.begin(), have.end(), v) == have.end()) rebuilt->addImplicitInput(v);
  }
  size_t next = 0;
  std::vector<std::pair<ir::Value*, std::string>> names;  // the new outputs get the old names back
  for (size_t i = 0; i < loop->numOutputs(); ++i) {
    ir::Value* old = loop->output(i);
    if (i < carried && dropped(i)) {
      if (old != nullptr && (old->hasUses() || old->isGraphOutput() || old->hasImplicitUses())) {
        graph.replaceAllUsesWith(old, loop->input(2 + i));
      }
      continue;
    }
    ir::Value* now = rebuilt->output(next++);
    if (old == nullptr) continue;
    now->mutableType() = old->type();
    names.emplace_back(now, old->name());
    if (old->hasUses() || old->isGraphOutput() || old->hasImplicitUses()) graph.replaceAllUsesWith(old, now);
  }
  graph.eraseNode(loop);
  for (const auto& [value, name] : names) {
    if (value->name() != name && graph.findValue(name) == nullptr) WH_RETURN_IF_ERROR(graph.renameValue(value, name));
  }
  return static_cast<int64_t>(drop.size());
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeLoopStateToCapture(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<LoopStateToCapture>());
}

}  // namespace whittle::passes
