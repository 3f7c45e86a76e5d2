#pragma once
// What the whole process has spent so far, for profiles and latency figures that a loaded
// machine does not distort as much as the wall clock.

#include <cstdint>

namespace whittle {

/// CPU time the whole process has used so far, in milliseconds (every thread, user and system).
double processCpuMs();

/// Context switches of the whole process so far (every thread, voluntary and involuntary):
/// with idle OpenMP threads that sleep, each parallel region that wakes one adds at least one
/// (the worker goes back to sleep after it), so a node's count is a floor on the wake-ups it
/// cost.
int64_t processContextSwitches();

}  // namespace whittle
