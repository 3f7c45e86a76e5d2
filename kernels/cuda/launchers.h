#pragma once
// The launcher layer of the CUDA kernels (kernels/cuda/*.cu): each takes device pointers,
// sizes worked out on the host (cuda/host/geometry.h) and a stream, launches, and returns the
// launch's cudaError_t. The entry points (kernels/cuda/kernels_*.cpp) check dtypes and shapes
// before calling them; the __global__ kernels stay inside the .cu files.

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/host/geometry.h"

namespace whittle::runtime::cuda {

/// The element types the kernels compute in; values are ONNX's (ir::DataType) codes.
enum class ElemType : int { kF32 = 1, kU8 = 2, kI8 = 3, kI32 = 6, kI64 = 7, kBool = 9, kF16 = 10 };

enum class UnaryOp : int {
  kRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kNeg, kAbs, kErf, kReciprocal, kFloor, kCeil, kRound,
  kSoftplus, kGelu, kGeluTanh, kLeakyRelu, kElu, kHardSigmoid, kHardSwish, kClip, kSilu, kSin, kCos, kNot
};
/// alpha/beta: LeakyRelu and Elu alpha, HardSigmoid alpha and beta, Clip min and max.
struct UnaryParams {
  float alpha = 0;
  float beta = 0;
};

enum class BinaryOp : int { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kPRelu, kEqual, kLess, kGreater, kAnd, kOr };

/// y = op(x) over n elements (float32 or float16; kNot on bool).
cudaError_t launchUnary(UnaryOp op, ElemType type, const void* x, void* y, int64_t n, UnaryParams params,
                        cudaStream_t stream);
/// y = a op b over `walk` (operand 0 y, 1 a, 2 b). Arithmetic on float32/float16/int32/int64;
/// comparisons write bool; And/Or on bool.
cudaError_t launchBinary(BinaryOp op, ElemType type, const void* a, const void* b, void* y, const StridedWalk& walk,
                         cudaStream_t stream);
/// Where(cond, x, y) over `walk` extended to three inputs: operand 0 out; strides[1] cond,
/// strides[2] x; `yStrides` for y (elements of `elemBytes` bytes).
cudaError_t launchWhere(size_t elemBytes, const bool* cond, const void* x, const void* y, void* out,
                        const StridedWalk& walk, const int64_t* yStrides, cudaStream_t stream);
/// dst[walk operand 0] = src[walk operand 1], elements of 1, 2, 4 or 8 bytes.
cudaError_t launchStridedCopy(size_t elemBytes, const void* src, void* dst, const StridedWalk& walk, cudaStream_t stream);
/// Gather along an axis; indices int32 or int64, negative ones counted from the end. Indices
/// out of range write zeros and set *badIndex (device memory) to `badValue` (the node's id in
/// the context's checks, reported at the next synchronisation).
cudaError_t launchGather(size_t elemBytes, const void* data, const void* indices, bool indices64, void* out,
                         const GatherGeometry& g, int* badIndex, int badValue, cudaStream_t stream);
/// Converts n elements between the element types (float16 through float32).
cudaError_t launchCast(ElemType from, ElemType to, const void* x, void* y, int64_t n, cudaStream_t stream);

/// Softmax (or LogSoftmax) over rows of `cols` contiguous elements.
cudaError_t launchSoftmax(ElemType type, const void* x, void* y, int64_t rows, int64_t cols, bool logSoftmax,
                          cudaStream_t stream);
/// LayerNormalization (rms: RMSNormalization, no mean) over rows; scale and bias (nullable)
/// have `cols` elements of the same type as x.
cudaError_t launchLayerNorm(ElemType type, const void* x, const void* scale, const void* bias, void* y, int64_t rows,
                            int64_t cols, float epsilon, bool rms, cudaStream_t stream);
/// Mean (or max) of each row: GlobalAveragePool / GlobalMaxPool over NCHW's HW.
cudaError_t launchRowReduce(ElemType type, const void* x, void* y, int64_t rows, int64_t cols, bool max,
                            cudaStream_t stream);

struct Pool2d {
  int64_t n = 1, c = 1, h = 1, w = 1, oh = 1, ow = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool max = true;
  bool countIncludePad = false;
};
/// MaxPool / AveragePool over NCHW.
cudaError_t launchPool2d(ElemType type, const void* x, void* y, const Pool2d& p, cudaStream_t stream);

/// Quantization over [outer, axisDim, inner] with one scale (and zero point) per axis index
/// (per-tensor: axisDim 1), or per block of `blockSize` along the axis when blockSize > 0
/// (then scales have outer * ceil(axisDim / blockSize) * inner entries).
struct QuantGeometry {
  int64_t outer = 1, axisDim = 1, inner = 1, blockSize = 0;
};
/// y (int8/uint8) = saturate(round_half_even(x / scale) + zp); x and scale float32/float16.
cudaError_t launchQuantize(ElemType xType, const void* x, const void* scale, ElemType qType, const void* zeroPoint,
                           void* y, const QuantGeometry& g, cudaStream_t stream);
/// y (float32/float16, the scale's type) = (x - zp) * scale; x int8/uint8/int32.
cudaError_t launchDequantize(ElemType qType, const void* x, const void* scale, ElemType yType, const void* zeroPoint,
                             void* y, const QuantGeometry& g, cudaStream_t stream);
/// MatMulNBits' 4-bit weights B [n, blocksPerCol, blockBytes] (two values a byte, low nibble
/// first), scales [n * blocksPerCol] and optional packed 4-bit zero points (default 8) into
/// w [n, k] of `type` (float32/float16), for a GEMM with w transposed.
cudaError_t launchDequantize4Bit(const uint8_t* packed, const void* scales, const uint8_t* zeroPoints, ElemType type,
                                 void* w, int64_t n, int64_t k, int64_t blockSize, cudaStream_t stream);

}  // namespace whittle::runtime::cuda
