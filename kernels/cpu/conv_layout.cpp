// Shape of a channels-last tensor, for the CPU lowering: where a graph reads the shape of a
// value that the lowering keeps as [N, H, W, C] (MobileNetV2's flatten does), this reports the
// ONNX dims [N, C, H, W], with Shape-15's start / end.
#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

void registerConvLayoutKernels(KernelRegistry& registry) {
  registry.add(kInternalDomain, "Shape", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    Layout layout = layoutAttr(info.node, "channels_last_in");
    bool hasEnd = info.node.hasAttribute("end");
    int64_t start = info.node.attrInt("start", 0), end = info.node.attrInt("end", 0);
    return makeFunctionKernel([=](KernelContext& ctx) -> Status {
      std::vector<int64_t> dims = logicalDims(ctx.input(0).dims(), layout);
      auto rank = static_cast<int64_t>(dims.size());
      auto clampAxis = [rank](int64_t a) { return std::clamp<int64_t>(a < 0 ? a + rank : a, 0, rank); };
      int64_t b = clampAxis(start), e = hasEnd ? clampAxis(end) : rank;
      std::vector<int64_t> out(dims.begin() + b, dims.begin() + std::max(b, e));
      ir::Tensor& t = ctx.allocateOutput(0, ir::DataType::kInt64, {static_cast<int64_t>(out.size())});
      std::copy(out.begin(), out.end(), t.mutableData<int64_t>());
      return Status::ok();
    });
  });
}

}  // namespace whittle::runtime::cpu
