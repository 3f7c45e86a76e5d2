// The CPU backend (include/whittle/runtime/backend.h): the CPU kernel registry, the CPU
// lowering (QDQ groups into int8 ops, epilogue fusion, channels-last convolutions), one oneDNN
// engine and stream per session, and OpenMP threads set on entry and per node (a node too
// small to split runs on one: cpu/thread_cost.h).
#include <omp.h>

#include "cpu/dnnl_glue.h"
#include "cpu/quant_common.h"
#include "cpu/thread_cost.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/lowering.h"
#include "whittle/runtime/session.h"

namespace whittle::runtime {
namespace {

class CpuBackend final : public Backend {
 public:
  DeviceKind device() const override { return DeviceKind::kCpu; }
  std::string_view name() const override { return "cpu"; }
  const KernelRegistry& kernels() const override { return KernelRegistry::cpu(); }
  Status lower(ir::Graph& graph, const std::vector<std::string>& keep, LoweringResult& result) const override {
    WH_RETURN_IF_ERROR(lowerForCpu(graph, keep));
    // The int8 layout is decided once, on the lowered graph, for every int8 kernel to read.
    result.channelsLastInt8 = cpu::quant::channelsLastValues(graph);
    return Status::ok();
  }
  Expected<std::unique_ptr<ExecutionContext>> createContext(int threads) const override {
    if (threads < 1) return invalidInput("threads must be at least 1");
    try {
      return std::unique_ptr<ExecutionContext>(std::make_unique<cpu::CpuContext>(threads));
    } catch (const dnnl::error& e) {
      return internalError(std::string("oneDNN could not create a CPU engine: ") + e.what());
    }
  }
  // oneDNN primitives fix their thread count when created, and OpenMP's is per calling thread.
  void enter(ExecutionContext& context) const override { omp_set_num_threads(context.threads()); }
  int threadsFor(const ir::Node& node, int threads) const override {
    return cpu::threadsForWork(cpu::estimateWork(node), threads);
  }
  void setThreads(ExecutionContext&, int threads) const override { omp_set_num_threads(threads); }
};

}  // namespace

const Backend& cpuBackend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace whittle::runtime
