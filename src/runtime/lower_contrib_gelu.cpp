// The CPU lowering's step G2 (see lowering.h): ONNX Runtime's contrib GELU ops as ONNX Gelu.
//
// Before: y = com.microsoft BiasGelu(x, b)      | Gelu(x)      | FastGelu(x[, b])
// After:  y = Gelu(Add(x, b)) (approximate none) | Gelu(x)      | Gelu([Add(x, b)]) (approximate tanh)
//
// ONNX Runtime's transformer optimizer writes these (onnxruntime.transformers.optimizer on a
// BERT-like model: a BiasGelu after every feed-forward MatMul). The contrib kernel computes
// std::erf per element; the ONNX Gelu is the vector kernel that the epilogue fusion knows, and the
// Add is a bias Add like any other. The formulas are the same: BiasGelu is Gelu(x + b) with erf,
// FastGelu is x * (0.5 + 0.5 tanh(sqrt(2/pi) (x + 0.044715 x^3))), ONNX's Gelu with
// approximate "tanh". Only float32 nodes whose bias is a vector over the last axis are rewritten.
#include "lower_pins.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {
namespace {

/// Whether `b` is a float32 vector as long as the last axis of `x` (a bias over the hidden axis).
bool isHiddenBias(const ir::Value* x, const ir::Value* b) {
  if (!isFloat32(b) || !b->type().shape || !x->type().shape || x->type().shape->empty()) return false;
  const auto& bs = *b->type().shape;
  const ir::Dim& last = x->type().shape->back();
  return bs.size() == 1 && bs[0].isKnown() && last.isKnown() && bs[0].value == last.value;
}

}  // namespace

int64_t lowerContribGelus(ir::Graph& graph, const std::vector<std::string>& /*keep*/) {
  std::vector<ir::Node*> found;
  for (ir::Node* n : graph.nodes()) {
    if (n->domain() != "com.microsoft" || n->numOutputs() != 1 || n->output(0) == nullptr) continue;
    const std::string& op = n->opType();
    if (op == "Gelu" || op == "BiasGelu" || op == "FastGelu") found.push_back(n);
  }
  int64_t count = 0;
  for (ir::Node* n : found) {
    ir::Value* x = n->input(0);
    ir::Value* y = n->output(0);
    ir::Value* b = n->numInputs() > 1 ? n->input(1) : nullptr;
    if (!isFloat32(x) || !isFloat32(y) || (n->opType() == "BiasGelu" && b == nullptr)) continue;
    if (n->opType() == "Gelu") b = nullptr;
    if (b != nullptr && !isHiddenBias(x, b)) continue;
    ir::Value* in = x;
    if (b != nullptr) {
      ir::Node* add = graph.addNode("Add", {x, b}, {graph.uniqueValueName(y->name() + "_biased")},
                                    graph.uniqueNodeName(n->name() + "_bias"), "", n);
      add->output(0)->mutableType() = x->type();
      in = add->output(0);
    }
    const char* approximate = n->opType() == "FastGelu" ? "tanh" : "none";
    ir::replaceChain(graph, {n}, y, "Gelu", "", n->name(), {in}, {ir::Attribute::makeString("approximate", approximate)});
    ++count;
  }
  return count;
}

}  // namespace whittle::runtime
