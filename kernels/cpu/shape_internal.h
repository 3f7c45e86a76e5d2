#pragma once
// Internal to the shape family (kernels/cpu/shape*.cpp): the per-file registration functions
// and the data-movement helpers they share. Everything here moves elements by their byte
// size, so it serves every fixed-size dtype (float16, bfloat16, bool, int8, ..., complex).

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "kernel_util.h"
#include "whittle/ir/tensor.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {

// ---- registration, one function per file ----

/// Transpose, DepthToSpace, SpaceToDepth, Concat, Split, Slice, Expand, Tile, Pad.
void registerShapeLayoutKernels(KernelRegistry& registry);
/// Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND, OneHot, NonZero.
void registerShapeGatherKernels(KernelRegistry& registry);
/// Resize and Upsample.
void registerShapeResizeKernels(KernelRegistry& registry);
/// TopK, Trilu, CumSum, ReverseSequence.
void registerShapeMiscKernels(KernelRegistry& registry);

// ---- helpers ----

/// Below this many elements a data-movement kernel runs on one thread.
constexpr int64_t kShapeParallelGrain = 32768;

/// Row-major strides, in elements, of `dims`.
std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& dims);

/// The product of dims[begin, end).
int64_t dimProduct(const std::vector<int64_t>& dims, size_t begin, size_t end);
inline int64_t dimProduct(const std::vector<int64_t>& dims) {
  return dimProduct(dims, 0, dims.size());
}

/// Whether elements of `dtype` can be moved by their bytes (every fixed-size dtype).
inline bool isByteCopyable(ir::DataType dtype) {
  return ir::elementSize(dtype) > 0;
}

/// ctx.unsupported("OP 'name': dtype D is not supported") unless `dtype` is byte-copyable.
Status checkByteCopyable(const KernelContext& ctx, ir::DataType dtype);

/// Copies a strided view: for every index i of `dims`, dst[i · dstStrides] = src[i · srcStrides].
/// Strides are in elements; source strides may be zero (broadcast) or negative (reversal).
/// Adjacent dimensions are merged where both layouts allow, contiguous runs are copied with
/// memcpy, a dimension that is contiguous in the source but not in the destination is
/// transposed in cache-sized tiles, and big copies run on the OpenMP threads.
void copyStrided(std::byte* dst, const std::byte* src, const std::vector<int64_t>& dims,
                 const std::vector<int64_t>& dstStrides, const std::vector<int64_t>& srcStrides, size_t elementSize);

/// The plain reference for copyStrided: one element at a time, no merging, no threads.
void copyStridedReference(std::byte* dst, const std::byte* src, const std::vector<int64_t>& dims,
                          const std::vector<int64_t>& dstStrides, const std::vector<int64_t>& srcStrides,
                          size_t elementSize);

/// memcpy that splits big copies over the OpenMP threads.
void parallelCopy(std::byte* dst, const std::byte* src, size_t bytes);

/// Writes `count` copies of the element at `value` (elementSize bytes) to dst.
void fillElements(std::byte* dst, const std::byte* value, int64_t count, size_t elementSize);

/// One element of a fixed-size dtype, as bytes.
using ScalarBytes = std::array<std::byte, 16>;

/// `value` converted to `dtype` (float, integer, bool, float16, bfloat16); false for others.
bool scalarBytes(double value, ir::DataType dtype, ScalarBytes& out);

/// A view of `input` with new dims that shares its buffer (string tensors are copied).
ir::Tensor viewWithDims(const ir::Tensor& input, std::vector<int64_t> dims);

/// Reads input `i` of `ctx` as int64 values (int32 or int64 tensors).
Expected<std::vector<int64_t>> readIntInput(const KernelContext& ctx, size_t i, const std::string& what);

/// Calls fn(std::integral_constant<size_t, N>{}) with N the element size when it is 1, 2, 4,
/// 8 or 16 (so copies of one element compile to moves), else with N = 0 (use memcpy).
template <typename F>
void withElementSize(size_t elementSize, F&& fn) {
  switch (elementSize) {
    case 1:
      fn(std::integral_constant<size_t, 1>{});
      return;
    case 2:
      fn(std::integral_constant<size_t, 2>{});
      return;
    case 4:
      fn(std::integral_constant<size_t, 4>{});
      return;
    case 8:
      fn(std::integral_constant<size_t, 8>{});
      return;
    case 16:
      fn(std::integral_constant<size_t, 16>{});
      return;
    default:
      fn(std::integral_constant<size_t, 0>{});
      return;
  }
}

/// An element of `kSize` bytes as a type that compilers move in one instruction (and
/// vectorise): uint8_t, uint16_t, uint32_t, uint64_t, or a 16-byte struct.
template <size_t kSize>
struct ElementOf {
  struct type {
    std::byte bytes[kSize];
  };
};
template <>
struct ElementOf<1> {
  using type = uint8_t;
};
template <>
struct ElementOf<2> {
  using type = uint16_t;
};
template <>
struct ElementOf<4> {
  using type = uint32_t;
};
template <>
struct ElementOf<8> {
  using type = uint64_t;
};

/// Copies one element of `kSize` bytes (kSize 0: `elementSize` bytes).
template <size_t kSize>
inline void copyElement(std::byte* dst, const std::byte* src, size_t elementSize) {
  if constexpr (kSize == 0) {
    std::memcpy(dst, src, elementSize);
  } else {
    std::memcpy(dst, src, kSize);
  }
}

/// Reads index input `i` (int32 or int64) with negative values counted from `dim`; an index
/// outside [-dim, dim) is ctx.error naming `what`.
Expected<std::vector<int64_t>> readIndices(const KernelContext& ctx, size_t i, int64_t dim, const std::string& what);

/// Normalises axis against rank or returns ctx.error naming `what`. A rank-0 input has no axis:
/// every axis is out of range for it (an op that treats a scalar as one element passes rank 1).
Expected<int64_t> normalizeAxisOrError(const KernelContext& ctx, int64_t axis, int64_t rank, const std::string& what);
/// normalizeAxisOrError with an error that names the scalar input `input` (Gather, Split, TopK, ...).
Expected<int64_t> existingAxisOrError(const KernelContext& ctx, int64_t axis, int64_t rank, const std::string& what,
                                      const std::string& input);

}  // namespace whittle::runtime::cpu
