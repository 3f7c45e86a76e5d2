// Kernels of the CPU lowering's layout ops (com.whittle.internal):
// - Shape of a channels-last tensor: where a graph reads the shape of a value that the lowering
//   keeps as [N, H, W, C] (MobileNetV2's flatten does), this reports the ONNX dims [N, C, H, W],
//   with Shape-15's start / end.
// - ChannelGather(x), `channels` = m: y[n, c', h, w] = x[n, m[c'], h, w] (the lowering's step S:
//   a channel shuffle or split written as Reshape/Transpose/Gather/Slice), on [N, C, H, W]
//   (whole planes) or, with channels_last, on [N, H, W, C] (a gather per pixel).
#include <cstring>

#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {
namespace {

/// y's pixels from x's: each of `pixels` rows of x (`c` elements) gives a row of y, element
/// j from map[j].
template <typename T>
void gatherRows(const T* x, T* y, int64_t pixels, int64_t c, const std::vector<int64_t>& map) {
  const auto cout = static_cast<int64_t>(map.size());
  for (int64_t p = 0; p < pixels; ++p) {
    const T* row = x + p * c;
    T* out = y + p * cout;
    for (int64_t j = 0; j < cout; ++j) out[j] = row[map[static_cast<size_t>(j)]];
  }
}

Expected<std::unique_ptr<Kernel>> createChannelGather(const KernelCreateInfo& info) {
  const bool last = info.node.attrInt("channels_last", 0) != 0;
  std::vector<int64_t> map = info.node.attrInts("channels");
  if (map.empty()) return info.error("needs a non-empty attribute channels");
  return makeFunctionKernel([last, map](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    if (x.rank() != 4) return ctx.error("X " + shapeToString(x.dims()) + " must be 4-D");
    const int64_t c = x.dims()[last ? 3 : 1];
    for (int64_t m : map) {
      if (m < 0 || m >= c) return ctx.error("channel " + std::to_string(m) + " is not among X's " + std::to_string(c));
    }
    std::vector<int64_t> dims = x.dims();
    dims[last ? 3 : 1] = static_cast<int64_t>(map.size());
    const size_t size = ir::elementSize(x.dtype());
    if (size == 0) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), dims);
    const std::byte* src = x.rawData();
    std::byte* dst = y.mutableRawData();
    if (!last) {  // whole planes
      const size_t plane = static_cast<size_t>(dims[2] * dims[3]) * size;
      for (int64_t n = 0; n < dims[0]; ++n) {
        for (size_t j = 0; j < map.size(); ++j) {
          std::memcpy(dst + (static_cast<size_t>(n) * map.size() + j) * plane,
                      src + static_cast<size_t>(n * c + map[j]) * plane, plane);
        }
      }
      return Status::ok();
    }
    const int64_t pixels = dims[0] * dims[1] * dims[2];
    switch (size) {
      case 1: gatherRows(reinterpret_cast<const uint8_t*>(src), reinterpret_cast<uint8_t*>(dst), pixels, c, map); break;
      case 2: gatherRows(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst), pixels, c, map); break;
      case 4: gatherRows(reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst), pixels, c, map); break;
      case 8: gatherRows(reinterpret_cast<const uint64_t*>(src), reinterpret_cast<uint64_t*>(dst), pixels, c, map); break;
      default: return ctx.unsupported("elements of " + std::to_string(size) + " bytes are not supported");
    }
    return Status::ok();
  });
}

}  // namespace

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
  registry.add(kInternalDomain, "ChannelGather", 1, createChannelGather);
}

}  // namespace whittle::runtime::cpu
