// The CUDA backend's error text (kernels/cuda/host/errors.cpp), checked without a GPU.
#include "cuda/host/errors.h"

#include <catch2/catch.hpp>

namespace whittle::runtime::cuda {
namespace {

TEST_CASE("device call failures name the node, the call, the library and the code", "[cuda-host]") {
  Status s = deviceCallError("Conv 'conv1'", "cudnnConvolutionForward", DeviceLibrary::kCudnn, 3, "CUDNN_STATUS_BAD_PARAM",
                             "", false);
  CHECK(s.code() == StatusCode::kInternal);
  CHECK(s.message() == "Conv 'conv1': cudnnConvolutionForward failed: cuDNN error 3 (CUDNN_STATUS_BAD_PARAM)");

  Status oom = deviceCallError("MatMul 'mm'", "cudaMallocAsync", DeviceLibrary::kCudaRuntime, 2, "cudaErrorMemoryAllocation",
                               "out of memory", true);
  CHECK(oom.code() == StatusCode::kInvalidInput);
  CHECK(oom.message() ==
        "MatMul 'mm': cudaMallocAsync failed: CUDA error 2 (cudaErrorMemoryAllocation: out of memory); out of device memory");

  Status bare = deviceCallError("", "cublasLtMatmul", DeviceLibrary::kCublasLt, 15, "", "", false);
  CHECK(bare.message() == "CUDA backend: cublasLtMatmul failed: cuBLASLt error 15");
  CHECK(bare.message().find('\n') == std::string::npos);
}

TEST_CASE("no device and dtype errors say what is missing", "[cuda-host]") {
  Status none = noDeviceError("cudaErrorNoDevice: no CUDA-capable device is detected");
  CHECK(none.code() == StatusCode::kUnimplemented);
  CHECK(none.message() == "no CUDA device: cudaErrorNoDevice: no CUDA-capable device is detected");

  CHECK(checkDtype("Relu 'r'", "input", ir::DataType::kFloat16, {ir::DataType::kFloat, ir::DataType::kFloat16}).isOk());
  Status bad = checkDtype("Relu 'r'", "input", ir::DataType::kDouble, {ir::DataType::kFloat, ir::DataType::kFloat16});
  CHECK(bad.code() == StatusCode::kUnimplemented);
  CHECK(bad.message() == "Relu 'r': input of type float64 is not supported by the cuda runtime (it takes float32, float16)");
  CHECK(isDeviceFloat(ir::DataType::kFloat));
  CHECK_FALSE(isDeviceFloat(ir::DataType::kBFloat16));
}

}  // namespace
}  // namespace whittle::runtime::cuda
