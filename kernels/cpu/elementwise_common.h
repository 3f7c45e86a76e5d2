#pragma once
// Internals shared by the elementwise and reduction kernel files: element types with their
// float widening, a dtype dispatcher that instantiates only the types an op allows, numpy
// broadcasting plans walked as contiguous inner segments, and a parallel loop helper.
//
// Hot loops are function templates marked WH_SIMD_CLONES: GCC compiles them for baseline
// x86-64, x86-64-v3 (AVX2+FMA) and x86-64-v4 (AVX-512) and picks one at load time by the
// CPU's features, so the inner loops vectorise at the machine's width although the build
// targets plain x86-64. (Not "arch=haswell"/"arch=skylake-avx512": those dispatch on the CPU
// model, and newer CPUs would get the baseline clone.)

#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/elementwise_math.h"
#include "whittle/ir/tensor.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define WH_SIMD_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define WH_SIMD_CLONES
#endif

namespace whittle::runtime {
class KernelRegistry;
}  // namespace whittle::runtime

namespace whittle::runtime::cpu {

// ---- element types ----

/// float16 storage (IEEE binary16 bits).
struct Half {
  uint16_t bits;
};
/// bfloat16 storage (the upper half of a float32).
struct BFloat16 {
  uint16_t bits;
};

/// float16 bits to float, exact and branch-free (vectorises).
WH_ALWAYS_INLINE float halfToFloatFast(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t em = h & 0x7fffu;
  // Shifting exponent and mantissa into float position and scaling by 2^112 rebiases the
  // exponent; float subnormal arithmetic makes half subnormals come out right too.
  float f = std::bit_cast<float>(em << 13) * 0x1p112f;
  uint32_t bits = std::bit_cast<uint32_t>(f);
  bits = em >= 0x7c00u ? (bits | 0x7f800000u) : bits;  // inf and nan
  return std::bit_cast<float>(bits | sign);
}

/// float to float16 bits, round to nearest even; nan becomes a quiet nan (branch-free).
WH_ALWAYS_INLINE uint16_t floatToHalfFast(float value) {
  uint32_t x = std::bit_cast<uint32_t>(value);
  uint32_t sign = x & 0x80000000u;
  x ^= sign;
  // Subnormal or zero result: adding 0.5 aligns the 10 mantissa bits at the bottom.
  float sub = std::bit_cast<float>(x) + std::bit_cast<float>(0x3f000000u);
  uint32_t subBits = std::bit_cast<uint32_t>(sub) - 0x3f000000u;
  // Normal result: rebias the exponent and round half to even.
  uint32_t normal = (x + 0xc8000fffu + ((x >> 13) & 1u)) >> 13;
  uint32_t special = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
  uint32_t o = x >= 0x47800000u ? special : (x < 0x38800000u ? subBits : normal);
  return static_cast<uint16_t>(o | (sign >> 16));
}

WH_ALWAYS_INLINE float bfloat16ToFloatFast(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

/// float to bfloat16 bits, round to nearest even; nan stays a (quiet) nan.
WH_ALWAYS_INLINE uint16_t floatToBfloat16Fast(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  uint32_t nan = (bits >> 16) | 0x40u;
  return static_cast<uint16_t>((bits & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

/// How an element type is loaded into the type an op computes in and stored back.
template <typename T>
struct Elem {
  using Compute = T;
  WH_ALWAYS_INLINE static T load(T v) { return v; }
  WH_ALWAYS_INLINE static T store(T v) { return v; }
};
template <>
struct Elem<Half> {
  using Compute = float;
  WH_ALWAYS_INLINE static float load(Half v) { return halfToFloatFast(v.bits); }
  WH_ALWAYS_INLINE static Half store(float v) { return Half{floatToHalfFast(v)}; }
};
template <>
struct Elem<BFloat16> {
  using Compute = float;
  WH_ALWAYS_INLINE static float load(BFloat16 v) { return bfloat16ToFloatFast(v.bits); }
  WH_ALWAYS_INLINE static BFloat16 store(float v) { return BFloat16{floatToBfloat16Fast(v)}; }
};

template <typename T>
using ComputeT = typename Elem<T>::Compute;

/// Whether loops over T are worth compiling for several vector ISAs.
template <typename T>
inline constexpr bool kSimdType = std::is_same_v<T, float> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// ---- dtype dispatch ----

/// Bits naming element types, for the type sets that ops accept.
enum TypeBits : uint32_t {
  kF32 = 1u << 0,
  kF64 = 1u << 1,
  kF16 = 1u << 2,
  kBF16 = 1u << 3,
  kI8 = 1u << 4,
  kI16 = 1u << 5,
  kI32 = 1u << 6,
  kI64 = 1u << 7,
  kU8 = 1u << 8,
  kU16 = 1u << 9,
  kU32 = 1u << 10,
  kU64 = 1u << 11,
  kBoolBit = 1u << 12,
  kFloatTypes = kF32 | kF64 | kF16 | kBF16,
  kSignedInts = kI8 | kI16 | kI32 | kI64,
  kUnsignedInts = kU8 | kU16 | kU32 | kU64,
  kIntTypes = kSignedInts | kUnsignedInts,
  kNumeric = kFloatTypes | kIntTypes,
  kAllTypes = kNumeric | kBoolBit,
};

/// The TypeBits bit of a dtype; 0 for types the elementwise kernels do not handle.
inline uint32_t typeBit(ir::DataType dtype) {
  using ir::DataType;
  switch (dtype) {
    case DataType::kFloat: return kF32;
    case DataType::kDouble: return kF64;
    case DataType::kFloat16: return kF16;
    case DataType::kBFloat16: return kBF16;
    case DataType::kInt8: return kI8;
    case DataType::kInt16: return kI16;
    case DataType::kInt32: return kI32;
    case DataType::kInt64: return kI64;
    case DataType::kUint8: return kU8;
    case DataType::kUint16: return kU16;
    case DataType::kUint32: return kU32;
    case DataType::kUint64: return kU64;
    case DataType::kBool: return kBoolBit;
    default: return 0;
  }
}

/// Calls `fn(T{})` with T the storage type of `dtype` (bool as bool, float16 as Half,
/// bfloat16 as BFloat16) when the dtype is in `kMask`, instantiating only those; returns
/// false otherwise.
template <uint32_t kMask, typename F>
bool dispatchTypes(ir::DataType dtype, F&& fn) {
  using ir::DataType;
  switch (dtype) {
#define WH_DISPATCH_CASE_(dt, bit, type)      \
  case DataType::dt:                          \
    if constexpr ((kMask & (bit)) != 0) {     \
      fn(type{});                             \
      return true;                            \
    }                                         \
    return false;
    WH_DISPATCH_CASE_(kFloat, kF32, float)
    WH_DISPATCH_CASE_(kDouble, kF64, double)
    WH_DISPATCH_CASE_(kFloat16, kF16, Half)
    WH_DISPATCH_CASE_(kBFloat16, kBF16, BFloat16)
    WH_DISPATCH_CASE_(kInt8, kI8, int8_t)
    WH_DISPATCH_CASE_(kInt16, kI16, int16_t)
    WH_DISPATCH_CASE_(kInt32, kI32, int32_t)
    WH_DISPATCH_CASE_(kInt64, kI64, int64_t)
    WH_DISPATCH_CASE_(kUint8, kU8, uint8_t)
    WH_DISPATCH_CASE_(kUint16, kU16, uint16_t)
    WH_DISPATCH_CASE_(kUint32, kU32, uint32_t)
    WH_DISPATCH_CASE_(kUint64, kU64, uint64_t)
    WH_DISPATCH_CASE_(kBool, kBoolBit, bool)
#undef WH_DISPATCH_CASE_
    default: return false;
  }
}

// ---- parallel loops ----

/// Elements below which a loop runs on one thread: the fork costs more than it saves.
inline constexpr int64_t kParallelGrain = 16384;

/// Runs `fn(begin, end)` over [0, n) split into contiguous chunks, one per thread, when
/// each chunk gets at least `grain` elements; chunk starts are multiples of 64 so vector
/// loops stay aligned. The split depends only on n, threads and grain.
template <typename F>
void parallelChunks(int64_t n, int threads, int64_t grain, F&& fn) {
  int64_t chunks = std::min<int64_t>(threads, n / std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  auto bound = [&](int64_t c) { return c == chunks ? n : (n * c / chunks) & ~int64_t{63}; };
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = bound(c), e = bound(c + 1);
    if (e > b) fn(b, e);
  }
}

// ---- broadcasting ----

/// A numpy broadcast of up to three inputs to an output shape, with adjacent dimensions
/// merged where every operand allows, so the innermost dimension is as long as possible.
/// Input strides are in elements; 0 marks a broadcast dimension. The innermost stride of
/// each input is 0 or 1.
struct BroadcastPlan {
  static constexpr int kMaxRank = 16;
  int rank = 0;  ///< Merged rank, at least 1.
  int numInputs = 0;
  int64_t numel = 0;
  std::array<int64_t, kMaxRank> dims{};
  std::array<std::array<int64_t, kMaxRank>, 3> strides{};

  int64_t inner() const { return dims[static_cast<size_t>(rank - 1)]; }
  int64_t innerStride(int k) const { return strides[static_cast<size_t>(k)][static_cast<size_t>(rank - 1)]; }
};

/// Plans the broadcast of `inputs` (each must broadcast to `outDims`); false when the merged
/// rank would exceed kMaxRank.
bool makeBroadcastPlan(const std::vector<int64_t>& outDims, std::initializer_list<const std::vector<int64_t>*> inputs,
                       BroadcastPlan& plan);

/// Calls `fn(offsets, outOffset, n)` for each run of output elements in [begin, end) that lies
/// along the innermost merged dimension: outputs outOffset .. outOffset+n-1 read input k
/// from offsets[k] with stride plan.innerStride(k).
template <typename F>
void forEachSegment(const BroadcastPlan& plan, int64_t begin, int64_t end, F&& fn) {
  if (begin >= end) return;
  const int r = plan.rank;
  const int k = plan.numInputs;
  const int64_t inner = plan.inner();
  std::array<int64_t, BroadcastPlan::kMaxRank> idx{};
  std::array<int64_t, 3> rowOffset{};
  int64_t row = begin / inner;
  int64_t col = begin % inner;
  for (int d = r - 2; d >= 0; --d) {
    int64_t n = plan.dims[static_cast<size_t>(d)];
    idx[static_cast<size_t>(d)] = row % n;
    row /= n;
    for (int i = 0; i < k; ++i) rowOffset[i] += idx[static_cast<size_t>(d)] * plan.strides[i][static_cast<size_t>(d)];
  }
  int64_t pos = begin;
  std::array<int64_t, 3> offsets{};
  while (pos < end) {
    int64_t n = std::min(inner - col, end - pos);
    for (int i = 0; i < k; ++i) offsets[i] = rowOffset[i] + col * plan.innerStride(i);
    fn(offsets, pos, n);
    pos += n;
    col = 0;
    for (int d = r - 2; d >= 0; --d) {
      auto du = static_cast<size_t>(d);
      for (int i = 0; i < k; ++i) rowOffset[i] += plan.strides[i][du];
      if (++idx[du] < plan.dims[du]) break;
      for (int i = 0; i < k; ++i) rowOffset[i] -= plan.strides[i][du] * plan.dims[du];
      idx[du] = 0;
    }
  }
}

/// Family registration, split across files.
void registerBinaryKernels(KernelRegistry& registry);
void registerUnaryKernels(KernelRegistry& registry);
void registerCastKernels(KernelRegistry& registry);

}  // namespace whittle::runtime::cpu
