#include "cuda/host/errors.h"

#include <algorithm>

namespace whittle::runtime::cuda {

namespace {

std::string_view libraryName(DeviceLibrary library) {
  switch (library) {
    case DeviceLibrary::kCudaRuntime: return "CUDA";
    case DeviceLibrary::kCublasLt: return "cuBLASLt";
    case DeviceLibrary::kCudnn: return "cuDNN";
  }
  return "CUDA";
}

}  // namespace

Status deviceCallError(std::string_view where, std::string_view call, DeviceLibrary library, int code,
                       std::string_view codeName, std::string_view detail, bool outOfMemory) {
  std::string message(where.empty() ? std::string_view("CUDA backend") : where);
  message += ": ";
  message += call;
  message += " failed: ";
  message += libraryName(library);
  message += " error " + std::to_string(code);
  if (!codeName.empty() || !detail.empty()) {
    message += " (";
    message += codeName;
    if (!codeName.empty() && !detail.empty()) message += ": ";
    message += detail;
    message += ")";
  }
  if (outOfMemory) return invalidInput(message + "; out of device memory");
  return internalError(message);
}

Status noDeviceError(std::string_view reason) { return unimplemented("no CUDA device: " + std::string(reason)); }

bool isDeviceFloat(ir::DataType dtype) { return dtype == ir::DataType::kFloat || dtype == ir::DataType::kFloat16; }

Status checkDtype(std::string_view where, std::string_view what, ir::DataType dtype,
                  std::initializer_list<ir::DataType> accepted) {
  if (std::find(accepted.begin(), accepted.end(), dtype) != accepted.end()) return Status::ok();
  std::string names;
  for (ir::DataType t : accepted) {
    if (!names.empty()) names += ", ";
    names += ir::dataTypeName(t);
  }
  return unimplemented(std::string(where) + ": " + std::string(what) + " of type " + std::string(ir::dataTypeName(dtype)) +
                       " is not supported by the cuda runtime (it takes " + names + ")");
}

}  // namespace whittle::runtime::cuda
