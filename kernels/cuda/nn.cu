// Row kernels (Softmax, LayerNormalization and RMSNormalization, global pooling) with one
// block per row and block reductions in float32, and 2-D max/average pooling.
#include "cuda/device_util.cuh"
#include "cuda/launchers.h"

namespace whittle::runtime::cuda {
namespace {

template <typename T>
__global__ void softmaxKernel(const T* x, T* y, int64_t cols, bool logSoftmax) {
  __shared__ float scratch[32];
  const T* row = x + blockIdx.x * cols;
  T* out = y + blockIdx.x * cols;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, toFloat(row[c]));
  m = blockReduce<true>(m, scratch);
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(toFloat(row[c]) - m);
  sum = blockReduce<false>(sum, scratch);
  if (logSoftmax) {
    const float logSum = logf(sum);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[c] = fromFloat<T>(toFloat(row[c]) - m - logSum);
  } else {
    const float inv = 1.0f / sum;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[c] = fromFloat<T>(expf(toFloat(row[c]) - m) * inv);
  }
}

template <typename T>
__global__ void layerNormKernel(const T* x, const T* scale, const T* bias, T* y, int64_t cols, float epsilon, bool rms) {
  __shared__ float scratch[32];
  const T* row = x + blockIdx.x * cols;
  T* out = y + blockIdx.x * cols;
  float mean = 0.0f;
  if (!rms) {
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += toFloat(row[c]);
    mean = blockReduce<false>(sum, scratch) / static_cast<float>(cols);
  }
  float sq = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = toFloat(row[c]) - mean;
    sq += d * d;
  }
  const float inv = rsqrtf(blockReduce<false>(sq, scratch) / static_cast<float>(cols) + epsilon);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = (toFloat(row[c]) - mean) * inv * toFloat(scale[c]);
    if (bias != nullptr) v += toFloat(bias[c]);
    out[c] = fromFloat<T>(v);
  }
}

template <typename T>
__global__ void rowReduceKernel(const T* x, T* y, int64_t cols, bool max) {
  __shared__ float scratch[32];
  const T* row = x + blockIdx.x * cols;
  float acc = max ? -INFINITY : 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = toFloat(row[c]);
    acc = max ? fmaxf(acc, v) : acc + v;
  }
  acc = max ? blockReduce<true>(acc, scratch) : blockReduce<false>(acc, scratch) / static_cast<float>(cols);
  if (threadIdx.x == 0) y[blockIdx.x] = fromFloat<T>(acc);
}

template <typename T>
__global__ void pool2dKernel(const T* x, T* y, Pool2d p) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  WH_GRID_STRIDE(i, total) {
    const int64_t ox = i % p.ow;
    const int64_t oy = (i / p.ow) % p.oh;
    const int64_t plane = i / (p.ow * p.oh);
    const T* src = x + plane * p.h * p.w;
    float acc = p.max ? -INFINITY : 0.0f;
    int64_t count = 0;
    for (int64_t ky = 0; ky < p.kh; ++ky) {
      const int64_t iy = oy * p.sh - p.ph + ky * p.dh;
      for (int64_t kx = 0; kx < p.kw; ++kx) {
        const int64_t ix = ox * p.sw - p.pw + kx * p.dw;
        const bool inside = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
        if (inside) {
          const float v = toFloat(src[iy * p.w + ix]);
          acc = p.max ? fmaxf(acc, v) : acc + v;
          ++count;
        } else if (p.countIncludePad && iy < p.h + p.ph && ix < p.w + p.pw) {
          ++count;  // padding counts as zeros (only the declared pads, not the ceil-mode overhang)
        }
      }
    }
    y[i] = fromFloat<T>(p.max ? acc : (count > 0 ? acc / static_cast<float>(count) : 0.0f));
  }
}

template <typename T>
cudaError_t rows(const void* x, void* y, int64_t r, int64_t cols, bool logSoftmax, cudaStream_t s) {
  softmaxKernel<T><<<static_cast<unsigned>(r), rowThreads(cols), 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), cols,
                                                                        logSoftmax);
  return launched();
}

}  // namespace

cudaError_t launchSoftmax(ElemType type, const void* x, void* y, int64_t rowCount, int64_t cols, bool logSoftmax,
                          cudaStream_t stream) {
  if (rowCount == 0 || cols == 0) return cudaSuccess;
  if (rowCount > 0x7fffffff) return cudaErrorInvalidValue;
  if (type == ElemType::kF32) return rows<float>(x, y, rowCount, cols, logSoftmax, stream);
  if (type == ElemType::kF16) return rows<__half>(x, y, rowCount, cols, logSoftmax, stream);
  return cudaErrorInvalidValue;
}

cudaError_t launchLayerNorm(ElemType type, const void* x, const void* scale, const void* bias, void* y, int64_t rowCount,
                            int64_t cols, float epsilon, bool rms, cudaStream_t stream) {
  if (rowCount == 0 || cols == 0) return cudaSuccess;
  if (rowCount > 0x7fffffff) return cudaErrorInvalidValue;
  const unsigned threads = rowThreads(cols);
  const auto blocks = static_cast<unsigned>(rowCount);
  if (type == ElemType::kF32) {
    layerNormKernel<float><<<blocks, threads, 0, stream>>>(static_cast<const float*>(x), static_cast<const float*>(scale),
                                                           static_cast<const float*>(bias), static_cast<float*>(y), cols,
                                                           epsilon, rms);
  } else if (type == ElemType::kF16) {
    layerNormKernel<__half><<<blocks, threads, 0, stream>>>(static_cast<const __half*>(x), static_cast<const __half*>(scale),
                                                            static_cast<const __half*>(bias), static_cast<__half*>(y), cols,
                                                            epsilon, rms);
  } else {
    return cudaErrorInvalidValue;
  }
  return launched();
}

cudaError_t launchRowReduce(ElemType type, const void* x, void* y, int64_t rowCount, int64_t cols, bool max,
                            cudaStream_t stream) {
  if (rowCount == 0) return cudaSuccess;
  if (rowCount > 0x7fffffff || cols == 0) return cudaErrorInvalidValue;
  const unsigned threads = rowThreads(cols);
  const auto blocks = static_cast<unsigned>(rowCount);
  if (type == ElemType::kF32) {
    rowReduceKernel<float><<<blocks, threads, 0, stream>>>(static_cast<const float*>(x), static_cast<float*>(y), cols, max);
  } else if (type == ElemType::kF16) {
    rowReduceKernel<__half><<<blocks, threads, 0, stream>>>(static_cast<const __half*>(x), static_cast<__half*>(y), cols, max);
  } else {
    return cudaErrorInvalidValue;
  }
  return launched();
}

cudaError_t launchPool2d(ElemType type, const void* x, void* y, const Pool2d& p, cudaStream_t stream) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return cudaSuccess;
  const Launch1d l = launch1d(total);
  if (type == ElemType::kF32) {
    pool2dKernel<float><<<l.blocks, l.threads, 0, stream>>>(static_cast<const float*>(x), static_cast<float*>(y), p);
  } else if (type == ElemType::kF16) {
    pool2dKernel<__half><<<l.blocks, l.threads, 0, stream>>>(static_cast<const __half*>(x), static_cast<__half*>(y), p);
  } else {
    return cudaErrorInvalidValue;
  }
  return launched();
}

}  // namespace whittle::runtime::cuda
