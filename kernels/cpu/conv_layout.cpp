// Kernels of the CPU lowering's layout ops (com.whittle.internal):
// - Shape of a channels-last tensor: where a graph reads the shape of a value that the lowering
//   keeps as [N, H, W, C] (MobileNetV2's flatten does), this reports the ONNX dims [N, C, H, W],
//   with Shape-15's start / end.
// - ChannelGather(x), `channels` = m: y[n, c', h, w] = x[n, m[c'], h, w] (the lowering's step S:
//   a channel shuffle or split written as Reshape/Transpose/Gather/Slice), on [N, C, H, W]
//   (whole planes) or, with channels_last, on [N, H, W, C] (a gather per pixel; for 4-byte
//   elements on AVX-512, 16 outputs at a time by a load and a masked permute per 16-element
//   window of sources, planned once per channel count: yolo-fastestv2's 26 channel splits and
//   shuffles took 2x ORT's Gathers).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>

#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {
namespace {

/// 16 outputs of a channels-last gather of 4-byte elements, planned once per channel count:
/// their sources grouped into 16-element windows of the pixel's row, each window one load and
/// one masked permute (a channel split: one window; a shuffle of g groups: g windows); with
/// more than kMaxGatherWindows windows the chunk is gathered element by element.
constexpr size_t kMaxGatherWindows = 8;
struct GatherChunk {
  int64_t first = 0, count = 0;                     ///< outputs first ... first + count
  size_t windows = 0;                               ///< 0: element by element
  std::array<int64_t, kMaxGatherWindows> start{};   ///< window starts in the row
  std::array<uint16_t, kMaxGatherWindows> lanes{};  ///< the outputs each window fills
  std::array<int32_t, 16> index{};                  ///< each output's source in its window
};

/// The chunks of `map` over rows of `c` elements, c >= 16 (windows must fit inside a row).
std::vector<GatherChunk> planGatherChunks(const std::vector<int64_t>& map, int64_t c) {
  std::vector<GatherChunk> chunks;
  const auto cout = static_cast<int64_t>(map.size());
  for (int64_t j0 = 0; j0 < cout; j0 += 16) {
    GatherChunk ch;
    ch.first = j0;
    ch.count = std::min<int64_t>(16, cout - j0);
    uint32_t left = (1u << ch.count) - 1u;  // outputs without a window yet
    while (left != 0 && ch.windows < kMaxGatherWindows) {
      int64_t lo = c;
      for (int64_t i = 0; i < ch.count; ++i) {
        if ((left >> i) & 1u) lo = std::min(lo, map[static_cast<size_t>(j0 + i)]);
      }
      const int64_t start = std::min(lo, c - 16);
      uint16_t lanes = 0;
      for (int64_t i = 0; i < ch.count; ++i) {
        const int64_t offset = map[static_cast<size_t>(j0 + i)] - start;
        if (((left >> i) & 1u) == 0 || offset >= 16) continue;
        lanes = static_cast<uint16_t>(lanes | (1u << i));
        ch.index[static_cast<size_t>(i)] = static_cast<int32_t>(offset);
      }
      left &= ~static_cast<uint32_t>(lanes);
      ch.start[ch.windows] = start;
      ch.lanes[ch.windows++] = lanes;
    }
    if (left != 0) ch.windows = 0;
    chunks.push_back(ch);
  }
  return chunks;
}

// GCC 12 warns about the undefined pass-through operand inside the permutes.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void gatherRowsAvx512(const uint32_t* x, uint32_t* y, int64_t pixels, int64_t c,
                                                         const std::vector<int64_t>& map,
                                                         const std::vector<GatherChunk>& chunks) {
  const auto cout = static_cast<int64_t>(map.size());
  for (int64_t p = 0; p < pixels; ++p) {
    const uint32_t* row = x + p * c;
    uint32_t* out = y + p * cout;
    for (const GatherChunk& ch : chunks) {
      if (ch.windows == 0) {
        for (int64_t j = ch.first; j < ch.first + ch.count; ++j) out[j] = row[map[static_cast<size_t>(j)]];
        continue;
      }
      const __m512i index = _mm512_loadu_si512(ch.index.data());
      __m512i v = _mm512_maskz_permutexvar_epi32(ch.lanes[0], index, _mm512_loadu_si512(row + ch.start[0]));
      for (size_t w = 1; w < ch.windows; ++w) {
        v = _mm512_mask_permutexvar_epi32(v, ch.lanes[w], index, _mm512_loadu_si512(row + ch.start[w]));
      }
      const auto mask = static_cast<__mmask16>(ch.count == 16 ? 0xffffu : (1u << ch.count) - 1u);
      _mm512_mask_storeu_epi32(out + ch.first, mask, v);
    }
  }
}
#pragma GCC diagnostic pop

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
  // The AVX-512 plan of a channels-last float gather, for the last channel count seen.
  struct Planned {
    std::mutex lock;
    int64_t c = -1;
    std::vector<GatherChunk> chunks;
  };
  static const bool avx512 = __builtin_cpu_supports("avx512f") != 0;
  auto planned = std::make_shared<Planned>();
  return makeFunctionKernel([last, map, planned](KernelContext& ctx) -> Status {
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
      case 1:
        gatherRows(reinterpret_cast<const uint8_t*>(src), reinterpret_cast<uint8_t*>(dst), pixels, c, map);
        break;
      case 2:
        gatherRows(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst), pixels, c, map);
        break;
      case 4:
        if (avx512 && c >= 16) {
          std::lock_guard<std::mutex> guard(planned->lock);
          if (planned->c != c) {
            planned->chunks = planGatherChunks(map, c);
            planned->c = c;
          }
          gatherRowsAvx512(reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst), pixels, c, map,
                           planned->chunks);
        } else {
          gatherRows(reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst), pixels, c, map);
        }
        break;
      case 8:
        gatherRows(reinterpret_cast<const uint64_t*>(src), reinterpret_cast<uint64_t*>(dst), pixels, c, map);
        break;
      default:
        return ctx.unsupported("elements of " + std::to_string(size) + " bytes are not supported");
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
