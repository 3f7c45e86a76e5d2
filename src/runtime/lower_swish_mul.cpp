// Step U of the CPU lowering (see lowering.h): the SiLU-gated unit of Llama-family MLPs as
// exporters write it becomes one com.whittle.internal SwishMul (kernels/cpu/swish_mul.cpp).
//
// Before: y = Mul(Mul(x, Sigmoid(x)), u)     the Muls' operands in either order
// After:  y = SwishMul(x, u)
// and a lone Mul(x, Sigmoid(x)) that no Mul gates becomes SwishMul(x).
//
// What it saves (SmolLM2-135M at sequence 512, 1 thread): per layer two of three passes over
// the [512, 1536] gate. Conv outputs are left alone: the epilogue fusion (step 1) takes
// x * Sigmoid(x) after a Conv as its Swish post-op.
// Requires: the Sigmoid's and the first product's outputs have one reader and are neither graph
// outputs nor kept; float32 values; u no higher rank than x.
#include <optional>
#include <vector>

#include "lower_pins.h"
#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {
int64_t fuseSwishMuls(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  // Each match erases one Sigmoid and no other: the Sigmoids, collected first, stay valid.
  std::vector<ir::Node*> sigmoids;
  for (ir::Node* n : graph.nodes()) {
    if (isDefaultOp(n, "Sigmoid") && n->numInputs() == 1 && n->numOutputs() == 1) sigmoids.push_back(n);
  }
  int64_t count = 0;
  for (ir::Node* sig : sigmoids) {
    ir::Value* x = sig->input(0);
    if (!isFloat32(x) || !isFloat32(sig->output(0))) continue;
    if (ir::Node* p = x->producer(); p != nullptr && (p->opType() == "Conv" || p->opType() == "FusedConv")) continue;
    ir::Node* m1 = soleReader(sig->output(0), pinned);
    if (!isDefaultOp(m1, "Mul") || m1->numInputs() != 2 || ir::otherInput(*m1, sig->output(0)) != x ||
        m1->input(0) == m1->input(1)) {
      continue;
    }
    std::vector<ir::Node*> chain = {sig, m1};
    std::vector<ir::Value*> inputs = {x};
    ir::Node* m2 = soleReader(m1->output(0), pinned);
    if (isDefaultOp(m2, "Mul") && m2->numInputs() == 2 && m2->input(0) != m2->input(1)) {
      ir::Value* u = ir::otherInput(*m2, m1->output(0));
      auto xr = ir::knownRankDims(x), ur = ir::knownRankDims(u);
      if (isFloat32(u) && xr && ur && ur->size() <= xr->size()) {
        chain.push_back(m2);
        inputs.push_back(u);
      }
    }
    ir::Node* last = chain.back();
    ir::replaceChain(graph, chain, last->output(0), "SwishMul", "com.whittle.internal", last->name(), inputs, {});
    ++count;
  }
  return count;
}

}  // namespace whittle::runtime
