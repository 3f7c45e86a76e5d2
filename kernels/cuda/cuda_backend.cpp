// The CUDA backend (include/whittle/runtime/backend.h): device detection at run time, one
// stream per session (CudaContext), stream-ordered device allocations from CUDA's memory pool
// (cudaMallocAsync; no managed memory): a value's buffer is freed on the session's stream when
// its last reader has been queued (the plan drops it after its last use), and the pool hands
// the memory to the next allocation in stream order. Host<->device copies happen only at the
// graph's edges (feeds, constants once, outputs). The buffers are ir::Buffer views that the
// host may not write; the kernels write them through dptr().
#include <cstring>
#include <mutex>

#include "cuda/cuda_common.h"
#include "whittle/runtime/session.h"

namespace whittle::runtime::cuda {
namespace {

/// The context of the session running on this thread (Backend::enter), whose stream device
/// allocations are ordered on.
thread_local CudaContext* currentContext = nullptr;

}  // namespace

Status cudaCall(cudaError_t code, std::string_view where, std::string_view call) {
  if (code == cudaSuccess) return Status::ok();
  (void)cudaGetLastError();  // clear a sticky launch error so that the next call reports its own
  return deviceCallError(where, call.substr(0, call.find('(')), DeviceLibrary::kCudaRuntime, static_cast<int>(code),
                         cudaGetErrorName(code), cudaGetErrorString(code), code == cudaErrorMemoryAllocation);
}

Status cublasCall(cublasStatus_t code, std::string_view where, std::string_view call) {
  if (code == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return deviceCallError(where, call.substr(0, call.find('(')), DeviceLibrary::kCublasLt, static_cast<int>(code),
                         cublasLtGetStatusName(code), cublasLtGetStatusString(code), code == CUBLAS_STATUS_ALLOC_FAILED);
}

Status cudnnCall(cudnnStatus_t code, std::string_view where, std::string_view call) {
  if (code == CUDNN_STATUS_SUCCESS) return Status::ok();
  return deviceCallError(where, call.substr(0, call.find('(')), DeviceLibrary::kCudnn, static_cast<int>(code),
                         cudnnGetErrorString(code), "", code == CUDNN_STATUS_ALLOC_FAILED);
}

StreamHolder::~StreamHolder() {
  if (stream != nullptr) {
    (void)cudaSetDevice(device);
    (void)cudaStreamSynchronize(stream);
    (void)cudaStreamDestroy(stream);
  }
}

Expected<std::unique_ptr<CudaContext>> CudaContext::create(int threads, int device) {
  const std::string where = "CUDA backend";
  std::unique_ptr<CudaContext> c(new CudaContext(threads));
  WH_CUDA(where, cudaSetDevice(device));
  auto holder = std::make_shared<StreamHolder>();
  holder->device = device;
  WH_CUDA(where, cudaStreamCreateWithFlags(&holder->stream, cudaStreamNonBlocking));
  c->holder_ = std::move(holder);
  WH_CUBLAS(where, cublasLtCreate(&c->lt_));
  WH_CUDNN(where, cudnnCreate(&c->dnn_));
  WH_CUDNN(where, cudnnSetStream(c->dnn_, c->stream()));
  WH_CUDA(where, cudaMalloc(reinterpret_cast<void**>(&c->flag_), sizeof(int)));
  WH_CUDA(where, cudaMemsetAsync(c->flag_, 0, sizeof(int), c->stream()));
  c->checks_.emplace_back();  // 0: no failure
  return c;
}

CudaContext::~CudaContext() {
  if (currentContext == this) currentContext = nullptr;
  if (holder_) {
    (void)cudaSetDevice(device());
    (void)cudaStreamSynchronize(stream());
  }
  if (workspace_ != nullptr) (void)cudaFree(workspace_);
  if (flag_ != nullptr) (void)cudaFree(flag_);
  if (dnn_ != nullptr) (void)cudnnDestroy(dnn_);
  if (lt_ != nullptr) (void)cublasLtDestroy(lt_);
}

Expected<void*> CudaContext::workspace(size_t bytes, std::string_view where) {
  if (bytes <= workspaceBytes_) return workspace_;
  // The old workspace may still be read by queued work: wait before freeing it.
  WH_CUDA(where, cudaStreamSynchronize(stream()));
  if (workspace_ != nullptr) WH_CUDA(where, cudaFree(workspace_));
  workspace_ = nullptr;
  workspaceBytes_ = 0;
  WH_CUDA(where, cudaMalloc(&workspace_, bytes));
  workspaceBytes_ = bytes;
  return workspace_;
}

int CudaContext::registerCheck(std::string where) {
  checks_.push_back(std::move(where));
  return static_cast<int>(checks_.size() - 1);
}

Status CudaContext::synchronize(std::string_view where) {
  WH_CUDA(where, cudaStreamSynchronize(stream()));
  int flag = 0;
  WH_CUDA(where, cudaMemcpy(&flag, flag_, sizeof(int), cudaMemcpyDeviceToHost));
  if (flag != 0) {
    WH_CUDA(where, cudaMemset(flag_, 0, sizeof(int)));
    const std::string who = flag > 0 && static_cast<size_t>(flag) < checks_.size() ? checks_[static_cast<size_t>(flag)]
                                                                                     : std::string("a CUDA kernel");
    return invalidInput(who + ": an index is out of range (its outputs were not computed)");
  }
  return Status::ok();
}

bool isDevicePointer(const void* p) {
  if (p == nullptr) return false;
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeDevice;
}

bool elemType(ir::DataType dtype, ElemType& out) {
  switch (dtype) {
    case ir::DataType::kFloat: out = ElemType::kF32; return true;
    case ir::DataType::kFloat16: out = ElemType::kF16; return true;
    case ir::DataType::kInt32: out = ElemType::kI32; return true;
    case ir::DataType::kInt64: out = ElemType::kI64; return true;
    case ir::DataType::kUint8: out = ElemType::kU8; return true;
    case ir::DataType::kInt8: out = ElemType::kI8; return true;
    case ir::DataType::kBool: out = ElemType::kBool; return true;
    default: return false;
  }
}

namespace {

std::shared_ptr<ir::Buffer> allocateOn(CudaContext* context, size_t bytes) {
  if (bytes == 0) return ir::Buffer::view(nullptr, 0, nullptr);
  void* p = nullptr;
  if (context != nullptr) {
    if (cudaMallocAsync(&p, bytes, context->stream()) != cudaSuccess) {
      (void)cudaGetLastError();
      return nullptr;
    }
    // Freed on the same stream, after the work queued on it, so the memory pool reuses it safely.
    std::shared_ptr<const void> owner(p, [holder = context->streamHolder()](const void* q) {
      (void)cudaFreeAsync(const_cast<void*>(q), holder->stream);
    });
    return ir::Buffer::view(p, bytes, std::move(owner));
  }
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  std::shared_ptr<const void> owner(p, [](const void* q) { (void)cudaFree(const_cast<void*>(q)); });
  return ir::Buffer::view(p, bytes, std::move(owner));
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {}
  DeviceKind device() const override { return DeviceKind::kCuda; }
  std::string_view name() const override { return "cuda"; }
  const KernelRegistry& kernels() const override { return cudaKernelRegistry(); }
  // The graph runs as loaded: the CPU lowering's fused ops are CPU kernels. (Epilogue fusion
  // for cuBLASLt/cuDNN is future work: docs/DESIGN.md, Runtime.)
  Status lower(ir::Graph&, const std::vector<std::string>&, LoweringResult&) const override { return Status::ok(); }
  Expected<std::unique_ptr<ExecutionContext>> createContext(int threads) const override {
    if (threads < 1) return invalidInput("threads must be at least 1");
    WH_ASSIGN_OR_RETURN(auto context, CudaContext::create(threads, device_));
    return std::unique_ptr<ExecutionContext>(std::move(context));
  }
  void enter(ExecutionContext& context) const override {
    currentContext = &cudaContext(context);
    (void)cudaSetDevice(device_);
  }
  std::shared_ptr<ir::Buffer> allocate(size_t bytes) const override { return allocateOn(currentContext, bytes); }
  Expected<ir::Tensor> copyIn(const ir::Tensor& host, ExecutionContext& context) const override {
    return uploadTensor(host, cudaContext(context), "CUDA backend");
  }
  Expected<ir::Tensor> copyOut(const ir::Tensor& tensor, ExecutionContext& context) const override {
    if (!isDevicePointer(tensor.rawData())) return tensor;
    CudaContext& c = cudaContext(context);
    ir::Tensor host(tensor.dtype(), tensor.dims(), ir::Buffer::allocateUninitialized(tensor.byteSize()));
    if (tensor.byteSize() > 0) {
      WH_CUDA("CUDA backend", cudaMemcpyAsync(host.mutableRawData(), tensor.rawData(), tensor.byteSize(),
                                              cudaMemcpyDeviceToHost, c.stream()));
    }
    WH_RETURN_IF_ERROR(c.synchronize("CUDA backend"));
    return host;
  }

 private:
  int device_;
};

}  // namespace

Expected<ir::Tensor> uploadTensor(const ir::Tensor& host, CudaContext& context, std::string_view where) {
  if (isDevicePointer(host.rawData())) return host;
  if (host.dtype() == ir::DataType::kString) {
    return unimplemented(std::string(where) + ": string tensors are not supported by the cuda runtime");
  }
  const size_t bytes = ir::storageBytes(host.dtype(), host.numel());
  std::shared_ptr<ir::Buffer> buffer = allocateOn(&context, bytes);
  if (!buffer) {
    return invalidInput(std::string(where) + ": out of device memory for " + std::to_string(bytes) + " bytes");
  }
  if (bytes > 0) {
    WH_CUDA(where, cudaMemcpyAsync(const_cast<std::byte*>(buffer->data()), host.rawData(), bytes, cudaMemcpyHostToDevice, context.stream()));
  }
  return ir::Tensor(host.dtype(), host.dims(), std::move(buffer));
}

Expected<ir::Tensor*> newOutput(KernelContext& ctx, size_t i, ir::DataType dtype, std::vector<int64_t> dims) {
  ir::Tensor& t = ctx.allocateOutput(i, dtype, std::move(dims));
  if (!t.buffer()) return ctx.error("out of device memory for output " + std::to_string(i));
  return &t;
}

ir::Tensor viewAs(const ir::Tensor& from, std::vector<int64_t> dims) { return ir::Tensor(from.dtype(), std::move(dims), from.buffer()); }

Expected<std::vector<int64_t>> hostInts(KernelContext& ctx, size_t i, std::string_view what) {
  if (!ctx.hasInput(i)) return ctx.error(std::string(what) + " (input " + std::to_string(i) + ") is missing");
  const ir::Tensor& t = ctx.input(i);
  const int64_t n = t.numel();
  std::vector<int64_t> out(static_cast<size_t>(n));
  if (t.dtype() != ir::DataType::kInt64 && t.dtype() != ir::DataType::kInt32) {
    return ctx.error(std::string(what) + " must be int32 or int64");
  }
  std::vector<std::byte> bytes(t.byteSize());
  if (isDevicePointer(t.rawData())) {
    CudaContext& c = cudaContext(ctx);
    if (!bytes.empty()) {
      WH_CUDA(ctx.describe(), cudaMemcpyAsync(bytes.data(), t.rawData(), bytes.size(), cudaMemcpyDeviceToHost, c.stream()));
    }
    WH_CUDA(ctx.describe(), cudaStreamSynchronize(c.stream()));
  } else if (!bytes.empty()) {
    std::memcpy(bytes.data(), t.rawData(), bytes.size());
  }
  for (int64_t k = 0; k < n; ++k) {
    if (t.dtype() == ir::DataType::kInt64) {
      std::memcpy(&out[static_cast<size_t>(k)], bytes.data() + k * 8, 8);
    } else {
      int32_t v;
      std::memcpy(&v, bytes.data() + k * 4, 4);
      out[static_cast<size_t>(k)] = v;
    }
  }
  return out;
}

ConstInts::ConstInts(const KernelCreateInfo& info) {
  for (size_t i = 0; i < info.node.numInputs(); ++i) {
    const ir::Tensor* c = info.constantInput(i);
    std::optional<std::vector<int64_t>> v;
    if (c != nullptr && c->numel() <= 4096 && (c->dtype() == ir::DataType::kInt64 || c->dtype() == ir::DataType::kInt32)) {
      v.emplace();
      for (int64_t k = 0; k < c->numel(); ++k) {
        v->push_back(c->dtype() == ir::DataType::kInt64 ? c->data<int64_t>()[k] : c->data<int32_t>()[k]);
      }
    }
    values_.push_back(std::move(v));
  }
}

Expected<std::vector<int64_t>> ConstInts::get(KernelContext& ctx, size_t i, std::string_view what) const {
  if (i < values_.size() && values_[i]) return *values_[i];
  return hostInts(ctx, i, what);
}

const KernelRegistry& cudaKernelRegistry() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
    registerElementwiseKernels(r);
    registerShapeKernels(r);
    registerNnKernels(r);
    registerGemmKernels(r);
    registerConvKernels(r);
    return r;
  }();
  return registry;
}

Expected<const Backend*> cudaBackend() {
  // Detected once: the device count does not change while the process runs.
  static const Expected<int> device = []() -> Expected<int> {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return noDeviceError(std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e));
    }
    if (count == 0) return noDeviceError("cudaGetDeviceCount found none");
    return 0;
  }();
  if (!device.isOk()) return device.status();
  static const CudaBackend backend(device.value());
  return &backend;
}

}  // namespace whittle::runtime::cuda
