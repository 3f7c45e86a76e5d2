#pragma once
// Device helpers shared by the .cu files: float16 conversion, strided indexing, grid-stride
// loops and block reductions. Included by nvcc only.

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/host/geometry.h"

namespace whittle::runtime::cuda {

template <typename T>
__device__ __forceinline__ float toFloat(T v) {
  return static_cast<float>(v);
}
template <>
__device__ __forceinline__ float toFloat<__half>(__half v) {
  return __half2float(v);
}
template <typename T>
__device__ __forceinline__ T fromFloat(float v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __half fromFloat<__half>(float v) {
  return __float2half_rn(v);
}

/// Element offset of linear index `i` (row-major over walk.dims) for operand `k`.
__device__ __forceinline__ int64_t walkOffset(const StridedWalk& walk, int k, int64_t i) {
  int64_t off = walk.offsets[k];
  for (int d = walk.rank - 1; d >= 0; --d) {
    const int64_t dim = walk.dims[d];
    const int64_t idx = i % dim;
    i /= dim;
    off += idx * walk.strides[k][d];
  }
  return off;
}

#define WH_GRID_STRIDE(i, n) \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

/// Sum (or max) over the block; every thread gets the result. `scratch` holds 32 floats.
template <bool kMax>
__device__ __forceinline__ float blockReduce(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  __syncthreads();  // scratch may still be read from a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : (kMax ? -INFINITY : 0.0f);
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  return v;
}

inline cudaError_t launched() { return cudaGetLastError(); }

}  // namespace whittle::runtime::cuda
