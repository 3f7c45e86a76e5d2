// Data movement and quantization kernels: the strided copy behind Transpose, Slice, Concat
// and Expand; Gather; Quantize/DequantizeLinear per tensor, per axis and per block; and the
// dequantization of MatMulNBits' 4-bit weights for the cuBLASLt GEMM.
#include "cuda/device_util.cuh"
#include "cuda/launchers.h"

namespace whittle::runtime::cuda {
namespace {

template <typename T>
__global__ void stridedCopyKernel(const T* src, T* dst, StridedWalk walk) {
  WH_GRID_STRIDE(i, walk.numel) { dst[walkOffset(walk, 0, i)] = src[walkOffset(walk, 1, i)]; }
}

template <typename T, typename I>
__global__ void gatherKernel(const T* data, const I* indices, T* out, GatherGeometry g, int* bad, int badValue) {
  const int64_t total = g.outer * g.numIndices * g.inner;
  WH_GRID_STRIDE(i, total) {
    const int64_t k = i % g.inner;
    const int64_t j = (i / g.inner) % g.numIndices;
    const int64_t o = i / (g.inner * g.numIndices);
    int64_t idx = static_cast<int64_t>(indices[j]);
    if (idx < 0) idx += g.axisDim;
    if (idx < 0 || idx >= g.axisDim) {
      out[i] = T{};
      *bad = badValue;
    } else {
      out[i] = data[(o * g.axisDim + idx) * g.inner + k];
    }
  }
}

/// The scale (and zero point) entry of element i.
__device__ __forceinline__ int64_t quantParam(const QuantGeometry& g, int64_t i) {
  const int64_t k = i % g.inner;
  const int64_t a = (i / g.inner) % g.axisDim;
  if (g.blockSize <= 0) return a;
  const int64_t o = i / (g.inner * g.axisDim);
  const int64_t blocks = (g.axisDim + g.blockSize - 1) / g.blockSize;
  return (o * blocks + a / g.blockSize) * g.inner + k;
}

template <typename X, typename Q>
__global__ void quantizeKernel(const X* x, const X* scale, const Q* zp, Q* y, QuantGeometry g) {
  const int64_t total = g.outer * g.axisDim * g.inner;
  constexpr float lo = std::is_signed<Q>::value ? -128.0f : 0.0f;
  constexpr float hi = std::is_signed<Q>::value ? 127.0f : 255.0f;
  WH_GRID_STRIDE(i, total) {
    const int64_t p = quantParam(g, i);
    float v = rintf(toFloat(x[i]) / toFloat(scale[p]));
    if (zp != nullptr) v += static_cast<float>(zp[p]);
    y[i] = static_cast<Q>(fminf(fmaxf(v, lo), hi));
  }
}

template <typename Q, typename Y>
__global__ void dequantizeKernel(const Q* x, const Y* scale, const Q* zp, Y* y, QuantGeometry g) {
  const int64_t total = g.outer * g.axisDim * g.inner;
  WH_GRID_STRIDE(i, total) {
    const int64_t p = quantParam(g, i);
    const int64_t z = zp != nullptr ? static_cast<int64_t>(zp[p]) : 0;
    y[i] = fromFloat<Y>(static_cast<float>(static_cast<int64_t>(x[i]) - z) * toFloat(scale[p]));
  }
}

template <typename T>
__global__ void dequantize4BitKernel(const uint8_t* packed, const T* scales, const uint8_t* zeroPoints, T* w, int64_t n,
                                     int64_t k, int64_t blockSize) {
  const int64_t blocksPerCol = (k + blockSize - 1) / blockSize;
  const int64_t blockBytes = blockSize / 2;
  const int64_t zpBytesPerCol = (blocksPerCol + 1) / 2;
  WH_GRID_STRIDE(i, n * k) {
    const int64_t col = i / k;
    const int64_t kk = i % k;
    const int64_t b = kk / blockSize;
    const int64_t within = kk % blockSize;
    const uint8_t byte = packed[(col * blocksPerCol + b) * blockBytes + within / 2];
    const int q = (within & 1) ? (byte >> 4) : (byte & 0x0f);
    int z = 8;
    if (zeroPoints != nullptr) {
      const uint8_t zb = zeroPoints[col * zpBytesPerCol + b / 2];
      z = (b & 1) ? (zb >> 4) : (zb & 0x0f);
    }
    w[i] = fromFloat<T>(static_cast<float>(q - z) * toFloat(scales[col * blocksPerCol + b]));
  }
}

template <typename X>
cudaError_t quantizeTo(const void* x, const void* scale, ElemType qType, const void* zp, void* y, const QuantGeometry& g,
                       cudaStream_t s) {
  const Launch1d l = launch1d(g.outer * g.axisDim * g.inner);
  if (qType == ElemType::kU8) {
    quantizeKernel<X, uint8_t><<<l.blocks, l.threads, 0, s>>>(static_cast<const X*>(x), static_cast<const X*>(scale),
                                                              static_cast<const uint8_t*>(zp), static_cast<uint8_t*>(y), g);
  } else if (qType == ElemType::kI8) {
    quantizeKernel<X, int8_t><<<l.blocks, l.threads, 0, s>>>(static_cast<const X*>(x), static_cast<const X*>(scale),
                                                             static_cast<const int8_t*>(zp), static_cast<int8_t*>(y), g);
  } else {
    return cudaErrorInvalidValue;
  }
  return launched();
}

template <typename Y>
cudaError_t dequantizeTo(ElemType qType, const void* x, const void* scale, const void* zp, void* y, const QuantGeometry& g,
                         cudaStream_t s) {
  const Launch1d l = launch1d(g.outer * g.axisDim * g.inner);
  const Y* sc = static_cast<const Y*>(scale);
  Y* out = static_cast<Y*>(y);
  switch (qType) {
    case ElemType::kU8: dequantizeKernel<uint8_t, Y><<<l.blocks, l.threads, 0, s>>>(static_cast<const uint8_t*>(x), sc, static_cast<const uint8_t*>(zp), out, g); break;
    case ElemType::kI8: dequantizeKernel<int8_t, Y><<<l.blocks, l.threads, 0, s>>>(static_cast<const int8_t*>(x), sc, static_cast<const int8_t*>(zp), out, g); break;
    case ElemType::kI32: dequantizeKernel<int32_t, Y><<<l.blocks, l.threads, 0, s>>>(static_cast<const int32_t*>(x), sc, static_cast<const int32_t*>(zp), out, g); break;
    default: return cudaErrorInvalidValue;
  }
  return launched();
}

}  // namespace

cudaError_t launchStridedCopy(size_t elemBytes, const void* src, void* dst, const StridedWalk& walk, cudaStream_t stream) {
  if (walk.numel == 0) return cudaSuccess;
  const bool contiguous = walk.rank == 1 && walk.strides[0][0] == 1 && walk.strides[1][0] == 1;
  if (contiguous) {
    return cudaMemcpyAsync(static_cast<char*>(dst) + walk.offsets[0] * elemBytes,
                           static_cast<const char*>(src) + walk.offsets[1] * elemBytes,
                           static_cast<size_t>(walk.numel) * elemBytes, cudaMemcpyDeviceToDevice, stream);
  }
  const Launch1d l = launch1d(walk.numel);
  switch (elemBytes) {
    case 1: stridedCopyKernel<uint8_t><<<l.blocks, l.threads, 0, stream>>>(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), walk); break;
    case 2: stridedCopyKernel<uint16_t><<<l.blocks, l.threads, 0, stream>>>(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), walk); break;
    case 4: stridedCopyKernel<uint32_t><<<l.blocks, l.threads, 0, stream>>>(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), walk); break;
    case 8: stridedCopyKernel<uint64_t><<<l.blocks, l.threads, 0, stream>>>(static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst), walk); break;
    default: return cudaErrorInvalidValue;
  }
  return launched();
}

cudaError_t launchGather(size_t elemBytes, const void* data, const void* indices, bool indices64, void* out,
                         const GatherGeometry& g, int* badIndex, int badValue, cudaStream_t stream) {
  const int64_t total = g.outer * g.numIndices * g.inner;
  if (total == 0) return cudaSuccess;
  const Launch1d l = launch1d(total);
#define WH_GATHER(T)                                                                                              \
  if (indices64) {                                                                                                \
    gatherKernel<T, int64_t><<<l.blocks, l.threads, 0, stream>>>(static_cast<const T*>(data),                    \
                                                                 static_cast<const int64_t*>(indices), static_cast<T*>(out), g, badIndex, badValue); \
  } else {                                                                                                        \
    gatherKernel<T, int32_t><<<l.blocks, l.threads, 0, stream>>>(static_cast<const T*>(data),                    \
                                                                 static_cast<const int32_t*>(indices), static_cast<T*>(out), g, badIndex, badValue); \
  }
  switch (elemBytes) {
    case 1: WH_GATHER(uint8_t) break;
    case 2: WH_GATHER(uint16_t) break;
    case 4: WH_GATHER(uint32_t) break;
    case 8: WH_GATHER(uint64_t) break;
    default: return cudaErrorInvalidValue;
  }
#undef WH_GATHER
  return launched();
}

cudaError_t launchQuantize(ElemType xType, const void* x, const void* scale, ElemType qType, const void* zeroPoint,
                           void* y, const QuantGeometry& g, cudaStream_t stream) {
  if (g.outer * g.axisDim * g.inner == 0) return cudaSuccess;
  if (xType == ElemType::kF32) return quantizeTo<float>(x, scale, qType, zeroPoint, y, g, stream);
  if (xType == ElemType::kF16) return quantizeTo<__half>(x, scale, qType, zeroPoint, y, g, stream);
  return cudaErrorInvalidValue;
}

cudaError_t launchDequantize(ElemType qType, const void* x, const void* scale, ElemType yType, const void* zeroPoint,
                             void* y, const QuantGeometry& g, cudaStream_t stream) {
  if (g.outer * g.axisDim * g.inner == 0) return cudaSuccess;
  if (yType == ElemType::kF32) return dequantizeTo<float>(qType, x, scale, zeroPoint, y, g, stream);
  if (yType == ElemType::kF16) return dequantizeTo<__half>(qType, x, scale, zeroPoint, y, g, stream);
  return cudaErrorInvalidValue;
}

cudaError_t launchDequantize4Bit(const uint8_t* packed, const void* scales, const uint8_t* zeroPoints, ElemType type,
                                 void* w, int64_t n, int64_t k, int64_t blockSize, cudaStream_t stream) {
  if (n * k == 0) return cudaSuccess;
  if (blockSize < 2 || blockSize % 2 != 0) return cudaErrorInvalidValue;
  const Launch1d l = launch1d(n * k);
  if (type == ElemType::kF32) {
    dequantize4BitKernel<float><<<l.blocks, l.threads, 0, stream>>>(packed, static_cast<const float*>(scales), zeroPoints,
                                                                    static_cast<float*>(w), n, k, blockSize);
  } else if (type == ElemType::kF16) {
    dequantize4BitKernel<__half><<<l.blocks, l.threads, 0, stream>>>(packed, static_cast<const __half*>(scales), zeroPoints,
                                                                     static_cast<__half*>(w), n, k, blockSize);
  } else {
    return cudaErrorInvalidValue;
  }
  return launched();
}

}  // namespace whittle::runtime::cuda
