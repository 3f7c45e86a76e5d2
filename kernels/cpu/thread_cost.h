#pragma once
// Whether a node is worth more than one thread (Backend::threadsFor on the CPU).
//
// Each parallel region hands work to the other OpenMP threads and waits for them at its end:
// a few microseconds when they are spinning, tens when they sleep (a futex wake-up, then the
// scheduler) or when another process holds their core, as on a shared machine. A node whose
// work per thread takes less than that runs faster, and wastes no other core's time, on one
// thread. Work is estimated from the lowered node's inferred shapes: multiply-adds for
// convolutions and matrix products, bytes read and written for everything else.

#include <cstdint>

#include "whittle/ir/graph.h"

namespace whittle::runtime::cpu {

/// Below this many multiply-adds per thread a convolution or matrix product takes fewer
/// threads (2^19: a float32 convolution of 2^20 multiply-adds takes about 20 µs on one core).
inline constexpr int64_t kMinMacsPerThread = int64_t{1} << 19;
/// Below this many bytes read and written per thread any other node takes fewer threads.
inline constexpr int64_t kMinBytesPerThread = int64_t{1} << 17;

/// A node's work as the thread rule sees it; `known` is false where a shape is not static.
struct NodeWork {
  bool known = false;
  int64_t macs = 0;   ///< convolutions and matrix products
  int64_t bytes = 0;  ///< every other node: its non-constant inputs and its outputs
};

/// The work of `node` from its values' inferred shapes.
NodeWork estimateWork(const ir::Node& node);

/// The threads worth giving `node` out of `threads`: as many as its work fills at the
/// thresholds above, at least one; all of them where its work is not known.
int threadsForWork(const NodeWork& work, int threads);

}  // namespace whittle::runtime::cpu
