// Shape rules for control flow, from what the node itself shows: the IR keeps subgraphs
// serialized, so their outputs' types are not read here (onnx_io::inferShapes asks libonnx,
// which reads them, for models up to the opset it knows).
//   Loop: each final loop-carried value has the element type of its initial value (its shape
//         may change from one iteration to the next); the scan outputs stay unknown.
//   Scan: each final state has the type and shape of the initial state (a state keeps its
//         shape); the scan outputs stay unknown.
//   If:   no rule: everything comes from the branches.
#include "shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

void loop(NodeContext& c) {
  for (size_t i = 2; i < c.numInputs() && i - 2 < c.numOutputs(); ++i) c.set(i - 2, c.dtype(i), std::nullopt);
}

void scan(NodeContext& c) {
  const int64_t scanInputs = c.node().attrInt("num_scan_inputs", -1);
  const size_t leading = c.opset() >= 9 ? 0 : 1;  // Scan-8 starts with sequence_lens
  if (scanInputs < 1 || static_cast<size_t>(scanInputs) + leading > c.numInputs()) return;
  const size_t states = c.numInputs() - leading - static_cast<size_t>(scanInputs);
  for (size_t i = 0; i < states && i < c.numOutputs(); ++i) {
    const SymShape* s = c.shape(leading + i);
    c.set(i, c.dtype(leading + i), s ? std::optional<SymShape>(*s) : std::nullopt);
  }
}

}  // namespace

void addControlFlowRules(std::vector<RuleEntry>& rules) {
  rules.push_back({"", "Loop", loop});
  rules.push_back({"", "Scan", scan});
}

}  // namespace whittle::ir::shape
