#include "cpu/kernel_util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define WH_KERNEL_UTIL_F16C 1
#endif
#include <algorithm>
#include <cstring>

namespace whittle::runtime::cpu {
namespace {

// float16 <-> float32 for whole tensors: F16C converts 8 values per instruction (round to
// nearest even, like ir::floatToHalf). It is not in the build's baseline ISA, hence the
// runtime check; elsewhere the scalar ir:: conversions.
#if WH_KERNEL_UTIL_F16C
bool haveF16c() {
  static const bool has = cpuHasAvxF16c();
  return has;
}

__attribute__((target("avx,f16c"))) void halfToFloatF16c(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = ir::halfToFloat(src[i]);
}

__attribute__((target("avx,f16c"))) void floatToHalfF16c(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) dst[i] = ir::floatToHalf(src[i]);
}
#endif

}  // namespace

bool cpuHasAvxF16c() {
#if WH_KERNEL_UTIL_F16C
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return __builtin_cpu_supports("avx") && (ecx & bit_F16C) != 0;
#else
  return false;
#endif
}

std::string shapeToString(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

std::optional<std::vector<int64_t>> broadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcastStrides(const std::vector<int64_t>& dims, const std::vector<int64_t>& outDims) {
  size_t rank = outDims.size();
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t k = 0; k < dims.size(); ++k) {
    size_t i = dims.size() - 1 - k;
    size_t o = rank - 1 - k;
    strides[o] = dims[i] == 1 ? 0 : stride;
    stride *= dims[i];
  }
  return strides;
}

std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

Expected<std::vector<int64_t>> readInts(const ir::Tensor& t, const std::string& what) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(t.numel()));
  if (t.dtype() == ir::DataType::kInt64) {
    for (int64_t v : t.values<int64_t>()) out.push_back(v);
  } else if (t.dtype() == ir::DataType::kInt32) {
    for (int32_t v : t.values<int32_t>()) out.push_back(v);
  } else {
    return invalidInput(what + " must be int32 or int64, got " + std::string(ir::dataTypeName(t.dtype())));
  }
  return out;
}

ir::Tensor toFloat32(const ir::Tensor& t) {
  if (t.dtype() == ir::DataType::kFloat) return t;
  ir::Tensor out(ir::DataType::kFloat, t.dims());
  float* dst = out.mutableData<float>();
  int64_t n = t.numel();
  if (t.dtype() == ir::DataType::kFloat16) {
    const auto* src = t.data<uint16_t>();
#if WH_KERNEL_UTIL_F16C
    if (haveF16c()) {
      halfToFloatF16c(src, dst, n);
      return out;
    }
#endif
    for (int64_t i = 0; i < n; ++i) dst[i] = ir::halfToFloat(src[i]);
    return out;
  }
  if (t.dtype() == ir::DataType::kBFloat16) {
    // bfloat16 is the top half of a float32.
    const auto* src = t.data<uint16_t>();
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
      std::memcpy(dst + i, &bits, sizeof(bits));
    }
    return out;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(t.valueAsDouble(i));
  return out;
}

ir::Tensor fromFloat32(const ir::Tensor& t, ir::DataType dtype) {
  if (dtype == ir::DataType::kFloat) return t;
  ir::Tensor out(dtype, t.dims());
  const float* src = t.data<float>();
  int64_t n = t.numel();
  switch (dtype) {
    case ir::DataType::kFloat16: {
      auto* dst = out.mutableData<uint16_t>();
#if WH_KERNEL_UTIL_F16C
      if (haveF16c()) {
        floatToHalfF16c(src, dst, n);
        break;
      }
#endif
      for (int64_t i = 0; i < n; ++i) dst[i] = ir::floatToHalf(src[i]);
      break;
    }
    case ir::DataType::kBFloat16: {
      auto* dst = out.mutableData<uint16_t>();
      for (int64_t i = 0; i < n; ++i) dst[i] = ir::floatToBfloat16(src[i]);
      break;
    }
    case ir::DataType::kDouble: {
      auto* dst = out.mutableData<double>();
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
      break;
    }
    default: WH_CHECK(false, "fromFloat32 to " + std::string(ir::dataTypeName(dtype)));
  }
  return out;
}

}  // namespace whittle::runtime::cpu
