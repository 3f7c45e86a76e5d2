#pragma once
// Internal to the passes: widen-half as a step other passes take (passes/widen_half.cpp).

#include <cstdint>
#include <string_view>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/passes/pass.h"

namespace whittle::passes {

/// Computes a float16/bfloat16 model in float32 with its interface unchanged (Casts at the half
/// inputs and outputs); returns how many values were widened (0: nothing half, or the model was
/// left as it is, with a note saying why).
Expected<int64_t> widenHalfToFloat(ir::Model& model, PassContext& ctx);

/// What a quantizer that found nothing float32 to take does: where the model's weight ops compute
/// in a half type (halfWeightOps), widens it (widenHalfToFloat), says so in a note naming `pass`,
/// and infers the widened value types. Returns whether the model changed (then look again).
Expected<bool> widenHalfForQuantizing(ir::Model& model, PassContext& ctx, std::string_view pass);

/// How many Conv/ConvTranspose/MatMul/Gemm nodes compute in float16 or bfloat16 (by their
/// output's type, else, before shape inference, their first typed operand's): the quantizers
/// widen a model that has some and nothing float32 to take.
int64_t halfWeightOps(const ir::Graph& graph);

}  // namespace whittle::passes
