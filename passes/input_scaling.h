#pragma once
// A per-channel scale on the input of a group of MatMul/Gemm with constant weights:
//   x W = (x / s) (diag(s) W)
// what AWQ (quantize-weights) and SmoothQuant (smooth-quant) do. The 1/s goes into the op that
// makes x where one can absorb it exactly; otherwise an explicit Mul goes before the group.

#include <functional>
#include <set>
#include <span>
#include <string>

#include "whittle/ir/graph.h"

namespace whittle::passes {

/// The node that makes `x` and can take a per-channel 1/s on x's last axis (K channels), with
/// the constants it would change. All null: none can.
struct InputAbsorber {
  ir::Value* vector = nullptr;  ///< a Mul's constant [K] operand (an RMSNorm/LayerNorm weight): divide it by s
  ir::Value* shift = nullptr;   ///< with `vector`, the constant [K] of the Add after that Mul (a LayerNorm bias): divide too
  ir::Value* weight = nullptr;  ///< a MatMul's constant [K', K] weight: divide its columns by s
  ir::Node* layerNorm = nullptr;  ///< a LayerNormalization whose constant scale (and bias) are divided by s
};

/// Finds the absorber of `x`, which must be read by the nodes of `group` alone. `weightUsable`
/// may refuse a candidate MatMul weight (one that another rewrite is changing in its own copy).
InputAbsorber findInputAbsorber(ir::Value* x, int64_t k, const std::set<const ir::Node*>& group,
                                const std::function<bool(const ir::Value*)>& weightUsable);

/// Divides the absorber's constants by `s` (a `weight` only when `divideWeight`; the caller
/// may keep that weight in a copy of its own).
void divideAbsorber(const InputAbsorber& a, std::span<const float> s, bool divideWeight = true);

/// Inserts y = Mul(x, 1/s) before the first node of `group` and makes the group read y.
/// Returns the Mul.
ir::Node* insertInputScale(ir::Graph& graph, ir::Value* x, std::span<const float> s,
                           const std::vector<ir::Node*>& group, const std::string& suffix);

}  // namespace whittle::passes
