#pragma once
// What the CUDA entry points share: the per-session context (stream, cuBLASLt and cuDNN
// handles, workspace, the device word where kernels report bad indices), the checked-call
// macros that turn every CUDA, cuBLASLt and cuDNN failure into a Status naming the node, and
// tensor helpers (device pointers, outputs, reading small integer inputs on the host).

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/host/errors.h"
#include "cuda/launchers.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cuda {

Status cudaCall(cudaError_t code, std::string_view where, std::string_view call);
Status cublasCall(cublasStatus_t code, std::string_view where, std::string_view call);
Status cudnnCall(cudnnStatus_t code, std::string_view where, std::string_view call);

/// Checked calls: WH_CUDA(ctx.describe(), cudaMemcpyAsync(...)) returns the error Status.
#define WH_CUDA(where, expr) WH_RETURN_IF_ERROR(::whittle::runtime::cuda::cudaCall((expr), (where), #expr))
#define WH_CUBLAS(where, expr) WH_RETURN_IF_ERROR(::whittle::runtime::cuda::cublasCall((expr), (where), #expr))
#define WH_CUDNN(where, expr) WH_RETURN_IF_ERROR(::whittle::runtime::cuda::cudnnCall((expr), (where), #expr))

/// A CUDA stream that device buffers keep alive: they are freed on it (stream-ordered).
struct StreamHolder {
  cudaStream_t stream = nullptr;
  int device = 0;
  ~StreamHolder();
};

class CudaContext final : public ExecutionContext {
 public:
  static Expected<std::unique_ptr<CudaContext>> create(int threads, int device);
  ~CudaContext() override;

  cudaStream_t stream() const { return holder_->stream; }
  const std::shared_ptr<StreamHolder>& streamHolder() const { return holder_; }
  int device() const { return holder_->device; }
  cublasLtHandle_t cublasLt() const { return lt_; }
  cudnnHandle_t cudnn() const { return dnn_; }

  /// A device workspace of at least `bytes` (kept and grown; valid until the next call).
  Expected<void*> workspace(size_t bytes, std::string_view where);
  /// A number for `where` that kernels write into badIndexWord() when an index is out of range.
  int registerCheck(std::string where);
  int* badIndexWord() const { return flag_; }
  /// Waits for the stream and reports a failure any kernel recorded (a Gather index out of range).
  Status synchronize(std::string_view where);

 private:
  explicit CudaContext(int threads) : ExecutionContext(threads) {}
  std::shared_ptr<StreamHolder> holder_;
  cublasLtHandle_t lt_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
  int* flag_ = nullptr;
  std::vector<std::string> checks_;
};

inline CudaContext& cudaContext(ExecutionContext& c) { return static_cast<CudaContext&>(c); }
inline CudaContext& cudaContext(KernelContext& ctx) { return cudaContext(ctx.context()); }

/// Whether `p` is device memory (ours: the backend's buffers are read-only views for the host,
/// and only the kernels, through dptr(), write them).
bool isDevicePointer(const void* p);
/// The kernels' element type for `dtype`; false when the kernels have none.
bool elemType(ir::DataType dtype, ElemType& out);
inline const void* dptr(const ir::Tensor& t) { return t.rawData(); }
inline void* dptr(ir::Tensor& t) { return const_cast<std::byte*>(t.rawData()); }

/// A new device output; an error naming the node when device memory runs out.
Expected<ir::Tensor*> newOutput(KernelContext& ctx, size_t i, ir::DataType dtype, std::vector<int64_t> dims);
/// A tensor sharing `from`'s device bytes under other dims (Reshape and friends).
ir::Tensor viewAs(const ir::Tensor& from, std::vector<int64_t> dims);
/// The values of a small int32/int64 input (a shape, axes), copied to the host if needed.
Expected<std::vector<int64_t>> hostInts(KernelContext& ctx, size_t i, std::string_view what);
/// The small integer inputs (shapes, axes, starts) of a node that are constants, read on the
/// host once when the kernel is made, so that runs need no device-to-host copy for them.
class ConstInts {
 public:
  explicit ConstInts(const KernelCreateInfo& info);
  /// Input `i`'s values: the constant's, or hostInts() (a copy and a wait) for a computed one.
  Expected<std::vector<int64_t>> get(KernelContext& ctx, size_t i, std::string_view what) const;

 private:
  std::vector<std::optional<std::vector<int64_t>>> values_;
};

/// A host tensor's bytes on the device, for constants that kernels prepare when created.
Expected<ir::Tensor> uploadTensor(const ir::Tensor& host, CudaContext& context, std::string_view where);

/// The registry of CUDA kernels, by family (kernels/cuda/kernels_*.cpp, gemm.cpp, conv.cpp).
const KernelRegistry& cudaKernelRegistry();
void registerElementwiseKernels(KernelRegistry& r);
void registerShapeKernels(KernelRegistry& r);
void registerNnKernels(KernelRegistry& r);
void registerGemmKernels(KernelRegistry& r);
void registerConvKernels(KernelRegistry& r);

}  // namespace whittle::runtime::cuda
