// com.whittle.internal QLinearLookup(X, Table) -> Y: Y[i] = Table[byte of X[i]], for uint8 or
// int8 X and a constant 256-entry uint8/int8 Table (the type of Y). The QDQ lowering writes it for
// chains of element-wise ops between a DequantizeLinear and a QuantizeLinear
// (src/runtime/lower_qdq_lookup.cpp); the table indexes raw bytes, so an int8 code c is at
// (uint8_t)c. Element-wise: any memory order passes through, the channels-last int8 one included.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "cpu/dnnl_glue.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu::quant {
namespace {

constexpr int64_t kParallelMin = 1 << 16;

void lookupScalar(const uint8_t* lut, const uint8_t* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = lut[src[i]];
}

#if defined(__x86_64__)
// AVX-512 VBMI: two 128-entry byte permutes (bits 0-6 of the index), picked by bit 7.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void lookupVbmi(const uint8_t* lut, const uint8_t* src,
                                                                         uint8_t* dst, int64_t n) {
  const __m512i t0 = _mm512_loadu_si512(lut), t1 = _mm512_loadu_si512(lut + 64);
  const __m512i t2 = _mm512_loadu_si512(lut + 128), t3 = _mm512_loadu_si512(lut + 192);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i x = _mm512_loadu_si512(src + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, x, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, x, t3);
    _mm512_storeu_si512(dst + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi));
  }
  if (i < n) {  // the tail under a mask (a channels-last row of 48 channels is all tail)
    const __mmask64 m = (__mmask64{1} << (n - i)) - 1u;
    const __m512i x = _mm512_maskz_loadu_epi8(m, src + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, x, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, x, t3);
    _mm512_mask_storeu_epi8(dst + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi));
  }
}

bool hasVbmi() {
  static const bool yes = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw");
  return yes;
}
#endif


class LookupKernel final : public Kernel {
 public:
  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& table = ctx.input(1);
    if (x.dtype() != ir::DataType::kUint8 && x.dtype() != ir::DataType::kInt8) {
      return ctx.error("X is " + typeName(x.dtype()) + ", not uint8 or int8");
    }
    if ((table.dtype() != ir::DataType::kUint8 && table.dtype() != ir::DataType::kInt8) || table.numel() != 256) {
      return ctx.error("the table must hold 256 uint8 or int8 values, got " + std::to_string(table.numel()) + " " +
                       typeName(table.dtype()));
    }
    uint8_t lut[256];
    std::memcpy(lut, table.rawData(), sizeof(lut));
    ir::Tensor& y = ctx.allocateOutput(0, table.dtype(), x.dims());
    const auto* src = reinterpret_cast<const uint8_t*>(x.rawData());
    auto* dst = reinterpret_cast<uint8_t*>(y.mutableRawData());
    const int64_t n = x.numel();
    constexpr int64_t kChunk = 1 << 15;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t begin = c * kChunk;
      lookupBytes(lut, src + begin, dst + begin, std::min(kChunk, n - begin));
    }
    return Status::ok();
  }
};

}  // namespace

void lookupBytes(const uint8_t* lut, const uint8_t* src, uint8_t* dst, int64_t n) {
#if defined(__x86_64__)
  if (hasVbmi()) return lookupVbmi(lut, src, dst, n);
#endif
  lookupScalar(lut, src, dst, n);
}

void registerQuantLookupKernels(KernelRegistry& registry) {
  registry.add(kInternalDomain, "QLinearLookup", 1, [](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<LookupKernel>());
  });
}

}  // namespace whittle::runtime::cpu::quant
