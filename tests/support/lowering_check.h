#pragma once
// What the lowering tests share (tests/runtime/lowering_test.cpp, lower_elementwise_test.cpp):
// lowering a copy of a model as the session does, and checking that the lowered graph
// computes what the unlowered one does.

#include <vector>

#include "whittle/ir/graph.h"
#include "whittle/runtime/session.h"

namespace whittle::testing {

/// A copy of `model`, shape-inferred and lowered for the CPU (REQUIREs that both succeed and
/// that the result verifies).
ir::Model lowered(const ir::Model& model);

/// Runs `model` lowered (at 1 and 2 threads) and unlowered (every intermediate value requested
/// as an extra output, which pins it in place) and checks the outputs agree within `tol`.
void checkSameAsUnlowered(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds, double tol = 1e-5);

}  // namespace whittle::testing
