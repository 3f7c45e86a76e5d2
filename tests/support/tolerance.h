#pragma once
// The tolerance rules of the tests in one place: how far a result rounded to a dtype may be
// from a reference computed in double, and the checks that compare a tensor with reference
// values (elementwise atol + rtol |e|, integers exactly or within a step, whole-tensor
// relative errors). Every check names the first mismatch with its element, shape and dtype.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/ir/tensor.h"

namespace whittle::testing {

/// "[2,3,4]" for messages.
std::string shapeText(const std::vector<int64_t>& dims);

/// The relative error one rounding of a result to `dtype` allows on top of the op's own
/// error (elementwise ops, reductions, casts): float16 1e-3, bfloat16 8e-3, float32 2e-6,
/// anything else 1e-12.
double singleRoundingTolerance(ir::DataType dtype);

/// The relative error of a result accumulated in float32 and rounded to `dtype` (MatMul, Gemm,
/// normalizations): float16 2e-3, bfloat16 1e-2, float64 1e-12, anything else 2e-5.
double accumulatedRoundingTolerance(ir::DataType dtype);

/// The absolute tolerance for results near zero: float16 subnormals step by 6e-8.
double tinyTolerance(ir::DataType dtype);

/// Checks every element of `actual` against `expected`: exact for integer and bool dtypes,
/// |a - e| <= atol + rtol |e| otherwise; NaN matches NaN and infinities must match exactly.
/// The element count must agree (REQUIRE). A mismatch fails the test (CHECK) naming the first
/// mismatching element (flat and multi-index), the tensor's shape and dtype, `context`, and
/// how many elements are off.
void checkClose(const ir::Tensor& actual, const std::vector<double>& expected, double rtol, double atol,
                const std::string& context = "");

/// Checks that the integer tensor `actual` holds `expected` exactly, or within `tolerance`
/// steps (1 for a requantization that may round the other way); names the first mismatch.
void checkInts(const ir::Tensor& actual, const std::vector<int32_t>& expected, int32_t tolerance = 0,
               const std::string& context = "");

/// max |a - e| / max |e| over the elements (the denominator at least 1e-30); infinity when
/// one side is NaN and the other is not.
double maxRelativeError(const ir::Tensor& actual, const ir::Tensor& expected);

/// ||a - e|| / ||e|| over the elements (the denominator at least 1e-30); elements NaN on both
/// sides are skipped, NaN on one side only gives infinity.
double normRelativeError(const ir::Tensor& actual, const ir::Tensor& expected);

}  // namespace whittle::testing
