#pragma once
// The shape lists of the elementwise and reduction kernel tests. The helpers they use (one-node
// models, seeded random tensors, numpy broadcasting, the tolerance checks) live in
// tests/support/kernel_harness.h and tests/support/tolerance.h; the names below keep the
// spelling these tests have always used.

#include <cstdint>
#include <utility>
#include <vector>

#include "support/kernel_harness.h"
#include "support/tolerance.h"

namespace whittle::testing::elementwise {

using testing::broadcastDims;
using testing::broadcastIndex;
using testing::checkClose;
using testing::kThreadCounts;
using testing::makeTensor;
using testing::NodeInput;
using testing::numel;
using testing::oneNodeModel;
using testing::randomTensor;
using testing::roundTo;
using testing::runNode;
using testing::runOk;
using testing::setValue;
using testing::shapeText;
using testing::singleRoundingTolerance;
using testing::tinyTolerance;
using testing::toUnsigned;

/// The rounding tolerance of one elementwise result (testing::singleRoundingTolerance).
inline double roundingTolerance(ir::DataType dtype) {
  return singleRoundingTolerance(dtype);
}
/// The element count of `dims` (testing::numel).
inline int64_t numelOf(const std::vector<int64_t>& dims) {
  return numel(dims);
}

/// Unary shapes: tiny, at, just below and just above 16 and 64 (vector widths and loop
/// tails), ranks 0 to 4, and one big enough for the loops to split across threads.
inline const std::vector<std::vector<int64_t>> kUnaryShapes = {
    {}, {1}, {7}, {15}, {16}, {17}, {63}, {64}, {65}, {3, 5}, {2, 3, 16}, {1, 3, 8, 8}, {2, 16, 65}, {40000},
};

/// Binary shape pairs: equal shapes, scalars, rows, per-channel [C,1,1] on NCHW, both sides
/// broadcasting, and shapes big enough to run on two threads.
inline const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> kBinaryShapes = {
    {{}, {}},
    {{17}, {17}},
    {{2, 3, 4, 5}, {2, 3, 4, 5}},
    {{63}, {}},
    {{}, {65}},
    {{2, 3, 4, 5}, {5}},
    {{2, 3, 4, 5}, {3, 1, 1}},
    {{1, 16, 7, 7}, {16, 1, 1}},
    {{1, 3, 1, 5}, {2, 1, 4, 1}},
    {{4, 1}, {1, 65}},
    {{64, 64}, {64, 1}},
    {{2, 16, 128}, {16, 1}},
    {{3, 1, 5}, {1, 4, 1}},
    {{40000}, {1}},
    {{2, 3, 80, 80}, {3, 1, 1}},
    {{300, 130}, {300, 130}},
};

}  // namespace whittle::testing::elementwise
