#pragma once
// The matmul and normalization kernel tests run on tests/support/kernel_harness.h (one-node
// models, seeded random tensors, compareWithReference) and tests/support/tolerance.h. The
// names below keep the spelling these tests used before the harness, for tests written
// against them.

#include <string>
#include <vector>

#include "support/kernel_harness.h"
#include "support/tolerance.h"

namespace whittle::testing {

/// testing::randomTensor for the float dtypes these tests use.
template <typename Rng>
ir::Tensor randomFloatTensor(Rng& rng, ir::DataType dtype, std::vector<int64_t> dims, double lo = -1.0,
                             double hi = 1.0) {
  return randomTensor(rng, dtype, std::move(dims), lo, hi);
}

/// The rounding tolerance of a result accumulated in float32 (accumulatedRoundingTolerance).
inline double roundingTolerance(ir::DataType dtype) {
  return accumulatedRoundingTolerance(dtype);
}

/// "[2,3,4]" (shapeText).
inline std::string dimsText(const std::vector<int64_t>& dims) {
  return shapeText(dims);
}

/// Runs `model` at `threads` threads on the graph inputs of `inputs` (tryRunModel); fills
/// `outputs` on success and returns the status of compiling or running.
inline Status runModel(const ir::Model& model, const std::vector<NodeInput>& inputs, int threads,
                       std::vector<ir::Tensor>& outputs) {
  auto result = tryRunModel(model, feedsOf(inputs), threads);
  if (!result.isOk()) return result.status();
  outputs.clear();
  for (auto& [name, tensor] : *result) outputs.push_back(std::move(tensor));
  return Status::ok();
}

}  // namespace whittle::testing
