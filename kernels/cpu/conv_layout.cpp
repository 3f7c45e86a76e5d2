// Kernels of the CPU lowering's layout ops (com.whittle.internal):
// - Shape of a channels-last tensor: where a graph reads the shape of a value that the lowering
//   keeps as [N, H, W, C] (MobileNetV2's flatten does), this reports the ONNX dims [N, C, H, W],
//   with Shape-15's start / end.
// - ChannelGather(x), `channels` = m: y[n, c', h, w] = x[n, m[c'], h, w] (the lowering's step S:
//   a channel shuffle or split written as Reshape/Transpose/Gather/Slice), on [N, C, H, W]
//   (whole planes) or, with channels_last, on [N, H, W, C] (a gather per pixel; for 4-byte
//   elements on AVX-512, 16 outputs at a time by a load and a masked permute per 16-element
//   window of sources, planned once per channel count: yolo-fastestv2's 26 channel splits and
//   shuffles took 2x ORT's Gathers; for bytes, 64 outputs by a masked load and a vpermb per
//   64-byte window). A uint8/int8 input in the quantized kernels' channels-last plan
//   (quant::channelsLastValues) is NHWC bytes under NCHW dims: gathered per pixel the same way.
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

/// L outputs of a channels-last gather, planned once per channel count: their sources grouped
/// into L-element windows of the pixel's row, each window one load and one masked permute (a
/// channel split: one window; a shuffle of g groups: g windows); with more than
/// kMaxGatherWindows windows the chunk is gathered element by element. 4-byte elements: 16 lanes
/// of int32 indices, windows inside the row (c >= 16); bytes: 64 lanes of byte indices, windows
/// that may run past the row's end (their load is masked to it).
constexpr size_t kMaxGatherWindows = 8;
template <size_t L, typename Index>
struct GatherChunk {
  int64_t first = 0, count = 0;                     ///< outputs first ... first + count
  size_t windows = 0;                               ///< 0: element by element
  std::array<int64_t, kMaxGatherWindows> start{};   ///< window starts in the row
  std::array<uint64_t, kMaxGatherWindows> lanes{};  ///< the outputs each window fills
  std::array<Index, L> index{};                     ///< each output's source in its window
};
using WordChunk = GatherChunk<16, int32_t>;
using ByteChunk = GatherChunk<64, uint8_t>;

/// The chunks of `map` over rows of `c` elements; `insideRow`: a window never starts past c - L.
template <size_t L, typename Index>
std::vector<GatherChunk<L, Index>> planGatherChunks(const std::vector<int64_t>& map, int64_t c, bool insideRow) {
  std::vector<GatherChunk<L, Index>> chunks;
  const auto cout = static_cast<int64_t>(map.size());
  const auto lanesL = static_cast<int64_t>(L);
  for (int64_t j0 = 0; j0 < cout; j0 += lanesL) {
    GatherChunk<L, Index> ch;
    ch.first = j0;
    ch.count = std::min<int64_t>(lanesL, cout - j0);
    uint64_t left = ch.count == 64 ? ~uint64_t{0} : (uint64_t{1} << ch.count) - 1u;  // outputs without a window yet
    while (left != 0 && ch.windows < kMaxGatherWindows) {
      int64_t lo = c;
      for (int64_t i = 0; i < ch.count; ++i) {
        if ((left >> i) & 1u) lo = std::min(lo, map[static_cast<size_t>(j0 + i)]);
      }
      const int64_t start = insideRow ? std::min(lo, c - lanesL) : lo;
      uint64_t lanes = 0;
      for (int64_t i = 0; i < ch.count; ++i) {
        const int64_t offset = map[static_cast<size_t>(j0 + i)] - start;
        if (((left >> i) & 1u) == 0 || offset >= lanesL) continue;
        lanes |= uint64_t{1} << i;
        ch.index[static_cast<size_t>(i)] = static_cast<Index>(offset);
      }
      left &= ~lanes;
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
                                                         const std::vector<WordChunk>& chunks) {
  const auto cout = static_cast<int64_t>(map.size());
  for (int64_t p = 0; p < pixels; ++p) {
    const uint32_t* row = x + p * c;
    uint32_t* out = y + p * cout;
    for (const WordChunk& ch : chunks) {
      if (ch.windows == 0) {
        for (int64_t j = ch.first; j < ch.first + ch.count; ++j) out[j] = row[map[static_cast<size_t>(j)]];
        continue;
      }
      const __m512i index = _mm512_loadu_si512(ch.index.data());
      __m512i v = _mm512_maskz_permutexvar_epi32(static_cast<__mmask16>(ch.lanes[0]), index,
                                                 _mm512_loadu_si512(row + ch.start[0]));
      for (size_t w = 1; w < ch.windows; ++w) {
        v = _mm512_mask_permutexvar_epi32(v, static_cast<__mmask16>(ch.lanes[w]), index,
                                          _mm512_loadu_si512(row + ch.start[w]));
      }
      const auto mask = static_cast<__mmask16>(ch.count == 16 ? 0xffffu : (1u << ch.count) - 1u);
      _mm512_mask_storeu_epi32(out + ch.first, mask, v);
    }
  }
}

/// The byte version: 64 outputs at a time, each window a load masked to the row and a vpermb.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void gatherBytesVbmi(const uint8_t* x, uint8_t* y,
                                                                           int64_t pixels, int64_t c,
                                                                           const std::vector<int64_t>& map,
                                                                           const std::vector<ByteChunk>& chunks) {
  const auto cout = static_cast<int64_t>(map.size());
  for (int64_t p = 0; p < pixels; ++p) {
    const uint8_t* row = x + p * c;
    uint8_t* out = y + p * cout;
    for (const ByteChunk& ch : chunks) {
      if (ch.windows == 0) {
        for (int64_t j = ch.first; j < ch.first + ch.count; ++j) out[j] = row[map[static_cast<size_t>(j)]];
        continue;
      }
      const __m512i index = _mm512_loadu_si512(ch.index.data());
      __m512i v = _mm512_setzero_si512();
      for (size_t w = 0; w < ch.windows; ++w) {
        const int64_t rest = c - ch.start[w];
        const __mmask64 load = rest >= 64 ? ~__mmask64{0} : (__mmask64{1} << rest) - 1u;
        v = _mm512_mask_permutexvar_epi8(v, ch.lanes[w], index, _mm512_maskz_loadu_epi8(load, row + ch.start[w]));
      }
      const __mmask64 store = ch.count == 64 ? ~__mmask64{0} : (__mmask64{1} << ch.count) - 1u;
      _mm512_mask_storeu_epi8(out + ch.first, store, v);
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
  // A uint8/int8 value of the quantized kernels' channels-last plan: NCHW dims over NHWC bytes
  // (quant::channelsLastValues), gathered per pixel like `last` but with the dims kept.
  const bool bytesNhwc = !last && info.channelsLastInt8(info.node.input(0));
  std::vector<int64_t> map = info.node.attrInts("channels");
  if (map.empty()) return info.error("needs a non-empty attribute channels");
  // The AVX-512 plan of a channels-last gather, for the last channel count seen.
  struct Planned {
    std::mutex lock;
    int64_t c = -1;
    std::vector<WordChunk> words;
    std::vector<ByteChunk> bytes;
  };
  static const bool avx512 = __builtin_cpu_supports("avx512f") != 0;
  static const bool vbmi = __builtin_cpu_supports("avx512vbmi") != 0 && __builtin_cpu_supports("avx512bw") != 0;
  auto planned = std::make_shared<Planned>();
  return makeFunctionKernel([last, bytesNhwc, map, planned](KernelContext& ctx) -> Status {
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
    auto gatherBytes = [&](int64_t pixels) {
      const auto* xb = reinterpret_cast<const uint8_t*>(src);
      auto* yb = reinterpret_cast<uint8_t*>(dst);
      if (!vbmi) return gatherRows(xb, yb, pixels, c, map);
      std::lock_guard<std::mutex> guard(planned->lock);
      if (planned->c != c) {
        planned->bytes = planGatherChunks<64, uint8_t>(map, c, /*insideRow=*/false);
        planned->c = c;
      }
      gatherBytesVbmi(xb, yb, pixels, c, map, planned->bytes);
    };
    if (bytesNhwc) {
      if (size != 1) return ctx.error("expects a uint8/int8 input in the channels-last plan");
      gatherBytes(dims[0] * dims[2] * dims[3]);
      return Status::ok();
    }
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
        gatherBytes(pixels);
        break;
      case 2:
        gatherRows(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst), pixels, c, map);
        break;
      case 4:
        if (avx512 && c >= 16) {
          std::lock_guard<std::mutex> guard(planned->lock);
          if (planned->c != c) {
            planned->words = planGatherChunks<16, int32_t>(map, c, /*insideRow=*/true);
            planned->c = c;
          }
          gatherRowsAvx512(reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst), pixels, c, map,
                           planned->words);
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
