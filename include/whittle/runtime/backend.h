#pragma once
// What a backend gives the runtime (ONNX Runtime's IExecutionProvider, Glow's Backend and
// ggml's backend interface are the shapes this follows): its kernel registry, its lowering of
// the session's private graph, a per-session execution context (the CPU's oneDNN engine and
// stream and thread count; a CUDA stream), an allocator for its buffers, and the copies at the
// graph's edges. `Session` asks the backend for all of these and names no library of its own;
// kernels see their backend's context through ExecutionContext and never another backend's.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/tensor.h"

namespace whittle::runtime {

class KernelRegistry;

enum class DeviceKind { kCpu, kCuda };

/// A backend's per-session state; each backend's kernels downcast it to their own type.
class ExecutionContext {
 public:
  virtual ~ExecutionContext() = default;
  /// The threads the session was created with.
  int threads() const { return threads_; }

 protected:
  explicit ExecutionContext(int threads) : threads_(threads) {}

 private:
  int threads_;
};

/// What a backend's lowering decided about the values of a session's private graph, for the
/// kernels to read when they are created (KernelCreateInfo::lowering), so that no kernel
/// factory recomputes a whole-graph decision.
struct LoweringResult {
  /// 4-D uint8/int8 values that the int8 kernels store channels-last (NHWC bytes under their
  /// NCHW dims) between them (the CPU: kernels/cpu/quant_common.h, channelsLastValues).
  std::unordered_set<const ir::Value*> channelsLastInt8;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceKind device() const = 0;
  /// "cpu", "cuda": for messages ("... is not supported by the cpu backend").
  virtual std::string_view name() const = 0;
  /// Kernels by (domain, op, opset).
  virtual const KernelRegistry& kernels() const = 0;
  /// Rewrites the session's private graph into what the kernels run: QDQ groups into int8
  /// ops, epilogue fusion, layouts. `keep` names values that must stay observable. What the
  /// kernels must know of the decisions taken goes into `result`.
  virtual Status lower(ir::Graph& graph, const std::vector<std::string>& keep, LoweringResult& result) const = 0;
  /// Whether the backend can run `node` at `opset` (GetCapability). The registry decides by
  /// default; the kernel factory still checks dtypes and attributes.
  virtual bool supports(const ir::Node& node, int64_t opset) const;
  /// A context for one session; kernels are created and run with it.
  virtual Expected<std::unique_ptr<ExecutionContext>> createContext(int threads) const = 0;
  /// Called on the calling thread before kernels are created and before each run.
  virtual void enter(ExecutionContext& context) const = 0;
  /// The threads worth giving `node` (its lowered form, shapes inferred) out of the session's
  /// `threads`: fewer where its work per thread is below what handing work to another thread
  /// costs (the CPU: kernels/cpu/thread_cost.h). The session creates and runs the node's
  /// kernel on that many. All of them by default.
  virtual int threadsFor(const ir::Node& node, int threads) const {
    (void)node;
    return threads;
  }
  /// Sets the threads the kernels run next on the calling thread use, between `enter` and the
  /// end of a run (the CPU: OpenMP's thread count). Nothing by default.
  virtual void setThreads(ExecutionContext& context, int threads) const {
    (void)context;
    (void)threads;
  }
  /// A buffer for a value of `bytes` bytes in the backend's memory (the CPU: the heap).
  virtual std::shared_ptr<ir::Buffer> allocate(size_t bytes) const;
  /// A host tensor as the backend's kernels read it (the CPU: the same tensor, shared).
  virtual Expected<ir::Tensor> copyIn(const ir::Tensor& host, ExecutionContext& context) const;
  /// A backend tensor as the host reads it (the CPU: the same tensor, shared).
  virtual Expected<ir::Tensor> copyOut(const ir::Tensor& tensor, ExecutionContext& context) const;
};

/// The CPU backend: oneDNN for the heavy ops, OpenMP threads (kernels/cpu/cpu_backend.cpp).
const Backend& cpuBackend();

/// The backend for `device`, or an error saying why it is not available in this build.
Expected<const Backend*> backendFor(DeviceKind device);

/// Evaluates one node on `backend` with the given input tensors (nullptr for absent optional
/// inputs) and returns its outputs (empty tensors for absent outputs), without building a
/// session: what constant folding runs. `opset` is the node's domain version in its model.
Expected<std::vector<ir::Tensor>> evaluateNode(const ir::Node& node, int64_t opset,
                                               const std::vector<const ir::Tensor*>& inputs, int threads = 1,
                                               const Backend& backend = cpuBackend());

}  // namespace whittle::runtime
