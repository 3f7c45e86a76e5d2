#pragma once
// Host-side geometry for the CUDA kernels: broadcasting, strided copies (Transpose, Slice,
// Concat, Expand), Gather and launch sizes, worked out on the host and passed by value to the
// kernels. Plain C++17 without CUDA headers: nvcc includes the POD structs, the host compiler
// builds the planners, and tests/kernels/cuda/host/ checks them on machines without a GPU.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace whittle::runtime::cuda {

/// The most dimensions a kernel walks after collapsing (ONNX models rarely pass 6).
constexpr int kMaxRank = 8;

/// A tensor walk by value: dims of the iteration space (row-major, last fastest) and each
/// operand's element strides over them (0 where an operand is broadcast).
struct StridedWalk {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};  ///< [operand][dim]: operand 0 is the output
  int64_t offsets[3] = {};            ///< element offsets of each operand's first element
  int64_t numel = 1;
};

/// Row-major strides of `dims`.
std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& dims);

/// Numpy broadcast of any number of shapes; nullopt when they do not broadcast.
std::optional<std::vector<int64_t>> broadcastDims(const std::vector<std::vector<int64_t>>& shapes);

/// Drops size-1 dims and merges neighbours that every operand walks contiguously, so that a
/// kernel indexes as few dims as possible. `operands` (1 to 3) are used; the result has at
/// least rank 1. Fails (nullopt) when more than kMaxRank dims remain.
std::optional<StridedWalk> collapse(const std::vector<int64_t>& dims, const std::vector<std::vector<int64_t>>& strides,
                                    const std::vector<int64_t>& offsets = {});

/// Output (contiguous) and broadcast inputs a and b of an elementwise binary op: operand 0 the
/// output, 1 = a, 2 = b. nullopt when the shapes do not broadcast; `outDims` gets the shape.
std::optional<StridedWalk> planBinary(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      std::vector<int64_t>& outDims);

/// A strided copy: operand 0 the destination, 1 the source.
/// Transpose: the output (contiguous, dims permuted) reads the input at permuted strides.
std::optional<StridedWalk> planTranspose(const std::vector<int64_t>& inDims, const std::vector<int64_t>& perm,
                                         std::vector<int64_t>& outDims);
/// Expand / broadcast copy of `inDims` to `outDims` (which must broadcast from it).
std::optional<StridedWalk> planExpand(const std::vector<int64_t>& inDims, const std::vector<int64_t>& outDims);
/// Slice with per-axis start and step (already clamped, as in the CPU kernel); `outDims` the
/// element counts per axis.
std::optional<StridedWalk> planSlice(const std::vector<int64_t>& inDims, const std::vector<int64_t>& starts,
                                     const std::vector<int64_t>& steps, const std::vector<int64_t>& outDims);
/// Copy of input `inDims` into the output of `outDims` at offset `axisOffset` along `axis`
/// (one Concat input).
std::optional<StridedWalk> planConcatPart(const std::vector<int64_t>& inDims, const std::vector<int64_t>& outDims,
                                          int64_t axis, int64_t axisOffset);

/// Gather along an axis: output [outer, indices, inner] from input [outer, axisDim, inner].
struct GatherGeometry {
  int64_t outer = 1;
  int64_t axisDim = 1;
  int64_t inner = 1;
  int64_t numIndices = 1;
};
GatherGeometry planGather(const std::vector<int64_t>& dataDims, int64_t axis, int64_t numIndices);

/// Rows and row length for ops over the trailing dims from `axis` (Softmax at opset 13 uses a
/// single axis moved last; LayerNormalization normalises from `axis` to the end).
struct RowGeometry {
  int64_t rows = 1;
  int64_t cols = 1;
};
RowGeometry rowsFrom(const std::vector<int64_t>& dims, int64_t axis);

/// A one-dimensional launch: blocks of `threads` over `n` items with a grid-stride loop,
/// capped at `maxBlocks` (the kernels loop over what is left).
struct Launch1d {
  unsigned blocks = 1;
  unsigned threads = 256;
};
Launch1d launch1d(int64_t n, unsigned threads = 256, unsigned maxBlocks = 65535u * 4u);

/// Threads per block for a row reduction of `cols` items: a multiple of 32 up to 1024.
unsigned rowThreads(int64_t cols);

}  // namespace whittle::runtime::cuda
