#pragma once
// Internals shared by the matmul and normalization families (kernels/cpu/matmul.cpp,
// normalization*.cpp): float16/bfloat16 widening into caller-owned scratch, and the
// registration of the softmax ops, which live in their own file.
//
// The widening helpers could move to kernel_util.h: unlike toFloat32/fromFloat32 they write
// into buffers the kernel keeps between runs, so a run allocates nothing.

#include <cstdint>
#include <vector>

#include "whittle/ir/tensor.h"

namespace whittle::runtime {
class KernelRegistry;
}  // namespace whittle::runtime

namespace whittle::runtime::cpu {

/// Softmax, LogSoftmax and Hardmax (kernels/cpu/normalization_softmax.cpp).
void registerSoftmaxKernels(KernelRegistry& registry);

/// Softmax of one contiguous row of n floats (y may be x), as the Softmax kernel computes it in
/// float32; returns the row's maximum (NaN when the row holds one and the reference path runs).
float softmaxRowFloat(const float* x, float* y, int64_t n);

/// Whether the CPU runs AVX-512F code (kernels compiled for it with a target attribute).
inline bool haveAvx512() {
  static const bool have = __builtin_cpu_supports("avx512f");
  return have;
}

/// Whether kernels of these families compute `dtype` by widening it to float32.
inline bool isWidenedFloat(ir::DataType dtype) {
  return dtype == ir::DataType::kFloat16 || dtype == ir::DataType::kBFloat16;
}

/// Converts `n` float16 or bfloat16 values at `src` to float32 at `dst`.
inline void widenToFloat(ir::DataType dtype, const void* src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(src);
  if (dtype == ir::DataType::kFloat16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = ir::halfToFloat(in[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = ir::bfloat16ToFloat(in[i]);
  }
}

/// Converts `n` float32 values at `src` to float16 or bfloat16 at `dst` (round to nearest even).
inline void narrowFromFloat(ir::DataType dtype, const float* src, void* dst, int64_t n) {
  auto* out = static_cast<uint16_t*>(dst);
  if (dtype == ir::DataType::kFloat16) {
    for (int64_t i = 0; i < n; ++i) out[i] = ir::floatToHalf(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = ir::floatToBfloat16(src[i]);
  }
}

/// A float32 view of a float32, float16 or bfloat16 tensor: its own data when it is float32,
/// else the widened values in `scratch` (grown as needed, reused between runs).
inline const float* floatView(const ir::Tensor& t, std::vector<float>& scratch) {
  if (t.dtype() == ir::DataType::kFloat) return t.data<float>();
  auto n = static_cast<size_t>(t.numel());
  if (scratch.size() < n) scratch.resize(n);
  widenToFloat(t.dtype(), t.rawData(), scratch.data(), t.numel());
  return scratch.data();
}

}  // namespace whittle::runtime::cpu
