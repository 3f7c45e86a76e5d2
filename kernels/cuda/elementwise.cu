// Elementwise kernels and their launchers: unary math and activations, binary arithmetic and
// comparisons with broadcasting (cuda/host/geometry.h plans the walk), Where and Cast.
#include "cuda/device_util.cuh"
#include "cuda/launchers.h"

namespace whittle::runtime::cuda {
namespace {

__device__ __forceinline__ float unaryOp(UnaryOp op, float x, UnaryParams p) {
  switch (op) {
    case UnaryOp::kRelu: return fmaxf(x, 0.0f);
    case UnaryOp::kSigmoid: return 1.0f / (1.0f + __expf(-x));
    case UnaryOp::kTanh: return tanhf(x);
    case UnaryOp::kExp: return expf(x);
    case UnaryOp::kLog: return logf(x);
    case UnaryOp::kSqrt: return sqrtf(x);
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kAbs: return fabsf(x);
    case UnaryOp::kErf: return erff(x);
    case UnaryOp::kReciprocal: return 1.0f / x;
    case UnaryOp::kFloor: return floorf(x);
    case UnaryOp::kCeil: return ceilf(x);
    case UnaryOp::kRound: return rintf(x);
    case UnaryOp::kSoftplus: return x > 20.0f ? x : log1pf(expf(x));
    case UnaryOp::kGelu: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case UnaryOp::kGeluTanh: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case UnaryOp::kLeakyRelu: return x < 0.0f ? p.alpha * x : x;
    case UnaryOp::kElu: return x < 0.0f ? p.alpha * (expf(x) - 1.0f) : x;
    case UnaryOp::kHardSigmoid: return fmaxf(0.0f, fminf(1.0f, p.alpha * x + p.beta));
    case UnaryOp::kHardSwish: return x * fmaxf(0.0f, fminf(1.0f, x * (1.0f / 6.0f) + 0.5f));
    case UnaryOp::kClip: return fminf(fmaxf(x, p.alpha), p.beta);
    case UnaryOp::kSilu: return x / (1.0f + expf(-x));
    case UnaryOp::kSin: return sinf(x);
    case UnaryOp::kCos: return cosf(x);
    case UnaryOp::kNot: return x == 0.0f ? 1.0f : 0.0f;
  }
  return x;
}

template <typename T>
__global__ void unaryKernel(UnaryOp op, const T* x, T* y, int64_t n, UnaryParams p) {
  WH_GRID_STRIDE(i, n) { y[i] = fromFloat<T>(unaryOp(op, toFloat(x[i]), p)); }
}

__global__ void notKernel(const uint8_t* x, uint8_t* y, int64_t n) {
  WH_GRID_STRIDE(i, n) { y[i] = x[i] ? 0 : 1; }
}

template <typename T>
__device__ __forceinline__ T arith(BinaryOp op, T a, T b) {
  if constexpr (sizeof(T) == 2) {
    // float16 in float32, rounded once.
    return fromFloat<T>(arith<float>(op, toFloat(a), toFloat(b)));
  } else {
    switch (op) {
      case BinaryOp::kAdd: return a + b;
      case BinaryOp::kSub: return a - b;
      case BinaryOp::kMul: return a * b;
      case BinaryOp::kDiv: return b == T(0) && !std::is_floating_point<T>::value ? T(0) : a / b;
      case BinaryOp::kPow: return static_cast<T>(pow(static_cast<double>(a), static_cast<double>(b)));
      case BinaryOp::kMax: return a > b ? a : b;
      case BinaryOp::kMin: return a < b ? a : b;
      case BinaryOp::kPRelu: return a < T(0) ? a * b : a;
      default: return a;
    }
  }
}

template <typename T>
__device__ __forceinline__ bool compare(BinaryOp op, T a, T b) {
  if constexpr (sizeof(T) == 2) {
    return compare<float>(op, toFloat(a), toFloat(b));
  } else {
    switch (op) {
      case BinaryOp::kEqual: return a == b;
      case BinaryOp::kLess: return a < b;
      case BinaryOp::kGreater: return a > b;
      case BinaryOp::kAnd: return a != T(0) && b != T(0);
      case BinaryOp::kOr: return a != T(0) || b != T(0);
      default: return false;
    }
  }
}

template <typename T, bool kCompare>
__global__ void binaryKernel(BinaryOp op, const T* a, const T* b, void* y, StridedWalk walk) {
  WH_GRID_STRIDE(i, walk.numel) {
    const T va = a[walkOffset(walk, 1, i)];
    const T vb = b[walkOffset(walk, 2, i)];
    if constexpr (kCompare) {
      static_cast<uint8_t*>(y)[i] = compare<T>(op, va, vb) ? 1 : 0;
    } else {
      static_cast<T*>(y)[i] = arith<T>(op, va, vb);
    }
  }
}

/// The same-shape case: no index arithmetic.
template <typename T, bool kCompare>
__global__ void binaryFlatKernel(BinaryOp op, const T* a, const T* b, void* y, int64_t n) {
  WH_GRID_STRIDE(i, n) {
    if constexpr (kCompare) {
      static_cast<uint8_t*>(y)[i] = compare<T>(op, a[i], b[i]) ? 1 : 0;
    } else {
      static_cast<T*>(y)[i] = arith<T>(op, a[i], b[i]);
    }
  }
}

template <typename T, bool kCompare>
cudaError_t binaryTyped(BinaryOp op, const void* a, const void* b, void* y, const StridedWalk& walk, cudaStream_t s) {
  const Launch1d l = launch1d(walk.numel);
  if (walk.numel == 0) return cudaSuccess;
  const bool flat = walk.rank == 1 && walk.strides[0][0] == 1 && walk.strides[1][0] == 1 && walk.strides[2][0] == 1 &&
                    walk.offsets[1] == 0 && walk.offsets[2] == 0;
  if (flat) {
    binaryFlatKernel<T, kCompare><<<l.blocks, l.threads, 0, s>>>(op, static_cast<const T*>(a), static_cast<const T*>(b), y,
                                                                  walk.numel);
  } else {
    binaryKernel<T, kCompare><<<l.blocks, l.threads, 0, s>>>(op, static_cast<const T*>(a), static_cast<const T*>(b), y, walk);
  }
  return launched();
}

template <typename T>
__global__ void whereKernel(const bool* cond, const T* x, const T* y, T* out, StridedWalk walk, StridedWalk yWalk) {
  WH_GRID_STRIDE(i, walk.numel) {
    out[i] = cond[walkOffset(walk, 1, i)] ? x[walkOffset(walk, 2, i)] : y[walkOffset(yWalk, 0, i)];
  }
}

template <typename From, typename To>
__global__ void castKernel(const From* x, To* y, int64_t n) {
  WH_GRID_STRIDE(i, n) {
    if constexpr (std::is_same<To, bool>::value) {
      y[i] = toFloat(x[i]) != 0.0f;
    } else if constexpr (std::is_same<From, __half>::value || std::is_same<To, __half>::value) {
      y[i] = fromFloat<To>(toFloat(x[i]));
    } else {
      y[i] = static_cast<To>(x[i]);
    }
  }
}

template <typename From>
cudaError_t castFrom(ElemType to, const void* x, void* y, int64_t n, cudaStream_t s) {
  const Launch1d l = launch1d(n);
  const From* src = static_cast<const From*>(x);
  switch (to) {
    case ElemType::kF32: castKernel<From, float><<<l.blocks, l.threads, 0, s>>>(src, static_cast<float*>(y), n); break;
    case ElemType::kF16: castKernel<From, __half><<<l.blocks, l.threads, 0, s>>>(src, static_cast<__half*>(y), n); break;
    case ElemType::kI32: castKernel<From, int32_t><<<l.blocks, l.threads, 0, s>>>(src, static_cast<int32_t*>(y), n); break;
    case ElemType::kI64: castKernel<From, int64_t><<<l.blocks, l.threads, 0, s>>>(src, static_cast<int64_t*>(y), n); break;
    case ElemType::kU8: castKernel<From, uint8_t><<<l.blocks, l.threads, 0, s>>>(src, static_cast<uint8_t*>(y), n); break;
    case ElemType::kI8: castKernel<From, int8_t><<<l.blocks, l.threads, 0, s>>>(src, static_cast<int8_t*>(y), n); break;
    case ElemType::kBool: castKernel<From, bool><<<l.blocks, l.threads, 0, s>>>(src, static_cast<bool*>(y), n); break;
    default: return cudaErrorInvalidValue;
  }
  return launched();
}

}  // namespace

cudaError_t launchUnary(UnaryOp op, ElemType type, const void* x, void* y, int64_t n, UnaryParams params,
                        cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const Launch1d l = launch1d(n);
  if (op == UnaryOp::kNot) {
    if (type != ElemType::kBool) return cudaErrorInvalidValue;
    notKernel<<<l.blocks, l.threads, 0, stream>>>(static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), n);
  } else if (type == ElemType::kF32) {
    unaryKernel<float><<<l.blocks, l.threads, 0, stream>>>(op, static_cast<const float*>(x), static_cast<float*>(y), n, params);
  } else if (type == ElemType::kF16) {
    unaryKernel<__half><<<l.blocks, l.threads, 0, stream>>>(op, static_cast<const __half*>(x), static_cast<__half*>(y), n,
                                                            params);
  } else {
    return cudaErrorInvalidValue;
  }
  return launched();
}

cudaError_t launchBinary(BinaryOp op, ElemType type, const void* a, const void* b, void* y, const StridedWalk& walk,
                         cudaStream_t stream) {
  const bool cmp = op == BinaryOp::kEqual || op == BinaryOp::kLess || op == BinaryOp::kGreater || op == BinaryOp::kAnd ||
                   op == BinaryOp::kOr;
  switch (type) {
    case ElemType::kF32: return cmp ? binaryTyped<float, true>(op, a, b, y, walk, stream) : binaryTyped<float, false>(op, a, b, y, walk, stream);
    case ElemType::kF16: return cmp ? binaryTyped<__half, true>(op, a, b, y, walk, stream) : binaryTyped<__half, false>(op, a, b, y, walk, stream);
    case ElemType::kI32: return cmp ? binaryTyped<int32_t, true>(op, a, b, y, walk, stream) : binaryTyped<int32_t, false>(op, a, b, y, walk, stream);
    case ElemType::kI64: return cmp ? binaryTyped<int64_t, true>(op, a, b, y, walk, stream) : binaryTyped<int64_t, false>(op, a, b, y, walk, stream);
    case ElemType::kBool: return cmp ? binaryTyped<uint8_t, true>(op, a, b, y, walk, stream) : cudaErrorInvalidValue;
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launchWhere(size_t elemBytes, const bool* cond, const void* x, const void* y, void* out,
                        const StridedWalk& walk, const int64_t* yStrides, cudaStream_t stream) {
  if (walk.numel == 0) return cudaSuccess;
  StridedWalk yWalk = walk;
  for (int d = 0; d < walk.rank; ++d) yWalk.strides[0][d] = yStrides[d];
  yWalk.offsets[0] = 0;
  const Launch1d l = launch1d(walk.numel);
  switch (elemBytes) {
    case 1: whereKernel<uint8_t><<<l.blocks, l.threads, 0, stream>>>(cond, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), static_cast<uint8_t*>(out), walk, yWalk); break;
    case 2: whereKernel<uint16_t><<<l.blocks, l.threads, 0, stream>>>(cond, static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(y), static_cast<uint16_t*>(out), walk, yWalk); break;
    case 4: whereKernel<uint32_t><<<l.blocks, l.threads, 0, stream>>>(cond, static_cast<const uint32_t*>(x), static_cast<const uint32_t*>(y), static_cast<uint32_t*>(out), walk, yWalk); break;
    case 8: whereKernel<uint64_t><<<l.blocks, l.threads, 0, stream>>>(cond, static_cast<const uint64_t*>(x), static_cast<const uint64_t*>(y), static_cast<uint64_t*>(out), walk, yWalk); break;
    default: return cudaErrorInvalidValue;
  }
  return launched();
}

cudaError_t launchCast(ElemType from, ElemType to, const void* x, void* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (from) {
    case ElemType::kF32: return castFrom<float>(to, x, y, n, stream);
    case ElemType::kF16: return castFrom<__half>(to, x, y, n, stream);
    case ElemType::kI32: return castFrom<int32_t>(to, x, y, n, stream);
    case ElemType::kI64: return castFrom<int64_t>(to, x, y, n, stream);
    case ElemType::kU8: return castFrom<uint8_t>(to, x, y, n, stream);
    case ElemType::kI8: return castFrom<int8_t>(to, x, y, n, stream);
    case ElemType::kBool: return castFrom<bool>(to, x, y, n, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace whittle::runtime::cuda
