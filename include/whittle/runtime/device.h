#pragma once
// Choosing where a session runs: device names for options and messages, and whether this
// build has the CUDA backend (kernels/cuda/). SessionOptions::device picks the backend.

#include <string_view>

#include "whittle/common/status.h"
#include "whittle/runtime/backend.h"

namespace whittle::runtime {

/// "cpu", "cuda".
std::string_view deviceName(DeviceKind device);
/// "cpu" or "cuda" ("gpu" too) as a DeviceKind; an error naming the choices otherwise.
Expected<DeviceKind> parseDevice(std::string_view name);
/// Whether this runtime was built with the CUDA backend (it may still find no device at run
/// time: backendFor(kCuda) then says "no CUDA device: ...").
bool builtWithCuda();
/// The one-line warning printed when the CUDA backend is chosen, until scripts/gpu_check.sh
/// has passed on hardware.
std::string_view cudaUnverifiedWarning();

}  // namespace whittle::runtime
