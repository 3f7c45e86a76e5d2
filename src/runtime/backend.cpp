#include "whittle/runtime/backend.h"
#include "whittle/runtime/device.h"

#include "whittle/runtime/buffer_pool.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime {

bool Backend::supports(const ir::Node& node, int64_t opset) const {
  return kernels().find(node.domain(), node.opType(), opset) != nullptr;
}

std::shared_ptr<ir::Buffer> Backend::allocate(size_t bytes) const { return ir::Buffer::allocateUninitialized(bytes); }

Expected<ir::Tensor> Backend::copyIn(const ir::Tensor& host, ExecutionContext&) const { return host; }

Expected<ir::Tensor> Backend::copyOut(const ir::Tensor& tensor, ExecutionContext&) const { return tensor; }

#ifdef WHITTLE_HAVE_CUDA
namespace cuda {
// kernels/cuda/cuda_backend.cpp: the CUDA backend once a device is found, or why not.
Expected<const Backend*> cudaBackend();
}  // namespace cuda
#endif

Expected<const Backend*> backendFor(DeviceKind device) {
  if (device == DeviceKind::kCpu) return &cpuBackend();
#ifdef WHITTLE_HAVE_CUDA
  return cuda::cudaBackend();
#else
  return unimplemented("the CUDA backend is not built into this runtime (configured with WHITTLE_CUDA=OFF or without the CUDA toolkit)");
#endif
}

std::string_view deviceName(DeviceKind device) { return device == DeviceKind::kCpu ? "cpu" : "cuda"; }

Expected<DeviceKind> parseDevice(std::string_view name) {
  if (name == "cpu") return DeviceKind::kCpu;
  if (name == "cuda" || name == "gpu") return DeviceKind::kCuda;
  return invalidInput("unknown device '" + std::string(name) + "' (expected cpu or cuda)");
}

bool builtWithCuda() {
#ifdef WHITTLE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::string_view cudaUnverifiedWarning() {
  return "warning: this build's CUDA path is unverified: it compiles, but it has not yet run on a GPU "
         "(scripts/gpu_check.sh does the checks)";
}

Expected<std::vector<ir::Tensor>> evaluateNode(const ir::Node& node, int64_t opset,
                                               const std::vector<const ir::Tensor*>& inputs, int threads,
                                               const Backend& backend) {
  const KernelFactory* factory = backend.kernels().find(node.domain(), node.opType(), opset);
  if (factory == nullptr) {
    return unimplemented(node.describe() + ": op " + node.opType() + " is not supported by the " +
                         std::string(backend.name()) + " backend");
  }
  WH_ASSIGN_OR_RETURN(auto context, backend.createContext(threads));
  backend.enter(*context);
  KernelCreateInfo info{node, opset, {}, threads, *context};
  for (const ir::Tensor* t : inputs) info.inputTypes.push_back(t ? t->dtype() : ir::DataType::kUndefined);
  WH_ASSIGN_OR_RETURN(auto kernel, (*factory)(info));
  std::vector<const Value*> deviceInputs;
  std::vector<Value> copies(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == nullptr) {
      deviceInputs.push_back(nullptr);
      continue;
    }
    WH_ASSIGN_OR_RETURN(ir::Tensor copy, backend.copyIn(*inputs[i], *context));
    copies[i] = Value(std::move(copy));
    deviceInputs.push_back(&copies[i]);
  }
  std::vector<Value> values(node.numOutputs());
  BufferPool pool;
  KernelContext ctx(node, deviceInputs, values, pool, *context);
  WH_RETURN_IF_ERROR(kernel->run(ctx));
  std::vector<ir::Tensor> outputs(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (node.output(i) == nullptr) continue;
    if (!values[i].defined()) {
      return internalError(node.describe() + ": kernel did not produce output " + std::to_string(i));
    }
    if (!values[i].isTensor()) {
      return unimplemented(node.describe() + ": output " + std::to_string(i) + " is a " +
                           std::string(valueKindName(values[i].kind())) + ", not a tensor (only tensors are evaluated alone)");
    }
    WH_ASSIGN_OR_RETURN(outputs[i], backend.copyOut(values[i].tensor(), *context));
  }
  return outputs;
}

}  // namespace whittle::runtime
