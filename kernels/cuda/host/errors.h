#pragma once
// The one-line messages of the CUDA backend's failures: which node, which call, which library
// and its code. Plain C++ (no CUDA headers) so that the text is tested without a GPU; the
// checked-call macros in kernels/cuda/cuda_check.h fill it from the libraries' own names.

#include <string>
#include <initializer_list>
#include <string_view>

#include "whittle/common/status.h"
#include "whittle/ir/data_type.h"

namespace whittle::runtime::cuda {

/// The libraries whose calls the backend checks.
enum class DeviceLibrary { kCudaRuntime, kCublasLt, kCudnn };

/// "Conv 'conv1': cudnnConvolutionForward failed: cuDNN error 3 (CUDNN_STATUS_BAD_PARAM)".
/// `where` names the node (empty outside a node: "CUDA backend"); `codeName` is the library's
/// name for `code`, `detail` its description (may be empty). Out-of-memory codes say so and
/// are input errors (a smaller batch may fit); other failures are internal errors.
Status deviceCallError(std::string_view where, std::string_view call, DeviceLibrary library, int code,
                       std::string_view codeName, std::string_view detail, bool outOfMemory);

/// The message when no device can be used: "no CUDA device: <reason>".
Status noDeviceError(std::string_view reason);

/// Whether `dtype` is one the CUDA elementwise and normalisation kernels compute in
/// (float32, float16).
bool isDeviceFloat(ir::DataType dtype);

/// An error naming the node, the input and the dtypes accepted, or ok when `dtype` is one of
/// `accepted`.
Status checkDtype(std::string_view where, std::string_view what, ir::DataType dtype,
                  std::initializer_list<ir::DataType> accepted);

}  // namespace whittle::runtime::cuda
