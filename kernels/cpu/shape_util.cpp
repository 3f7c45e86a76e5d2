// Data-movement helpers for the shape family: strided copy (the engine behind Transpose,
// Slice, Expand, Tile, DepthToSpace and SpaceToDepth), fills and scalar conversion.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "cpu/shape_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

namespace whittle::runtime::cpu {

std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
  return strides;
}

int64_t dimProduct(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) n *= dims[i];
  return n;
}

Status checkByteCopyable(const KernelContext& ctx, ir::DataType dtype) {
  if (isByteCopyable(dtype)) return Status::ok();
  return ctx.unsupported("dtype " + std::string(ir::dataTypeName(dtype)) + " is not supported");
}

ir::Tensor viewWithDims(const ir::Tensor& input, std::vector<int64_t> dims) {
  if (input.dtype() == ir::DataType::kString) return ir::Tensor::strings(std::move(dims), input.stringValues());
  return ir::Tensor(input.dtype(), std::move(dims), input.buffer());
}

Expected<std::vector<int64_t>> readIntInput(const KernelContext& ctx, size_t i, const std::string& what) {
  auto values = readInts(ctx.input(i), what);
  if (!values.isOk()) return ctx.error(values.status().message());
  return values;
}

Expected<std::vector<int64_t>> readIndices(const KernelContext& ctx, size_t i, int64_t dim, const std::string& what) {
  WH_ASSIGN_OR_RETURN(auto values, readIntInput(ctx, i, what));
  for (int64_t& v : values) {
    if (v < -dim || v >= dim) {
      return ctx.error(what + " value " + std::to_string(v) + " is out of range for an axis of size " +
                       std::to_string(dim));
    }
    if (v < 0) v += dim;
  }
  return values;
}

Expected<int64_t> normalizeAxisOrError(const KernelContext& ctx, int64_t axis, int64_t rank, const std::string& what) {
  auto a = normalizeAxis(axis, rank);
  if (!a || *a >= rank) {
    return ctx.error(what + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return *a;
}

Expected<int64_t> existingAxisOrError(const KernelContext& ctx, int64_t axis, int64_t rank, const std::string& what,
                                      const std::string& input) {
  if (rank == 0) return ctx.error(input + " is a scalar (rank 0): it has no axis " + std::to_string(axis));
  return normalizeAxisOrError(ctx, axis, rank, what);
}

bool scalarBytes(double value, ir::DataType dtype, ScalarBytes& out) {
  out.fill(std::byte{0});
  auto put = [&](auto v) { std::memcpy(out.data(), &v, sizeof(v)); };
  using ir::DataType;
  switch (dtype) {
    case DataType::kFloat:
      put(static_cast<float>(value));
      return true;
    case DataType::kDouble:
      put(value);
      return true;
    case DataType::kFloat16:
      put(ir::floatToHalf(static_cast<float>(value)));
      return true;
    case DataType::kBFloat16:
      put(ir::floatToBfloat16(static_cast<float>(value)));
      return true;
    case DataType::kInt8:
      put(static_cast<int8_t>(value));
      return true;
    case DataType::kInt16:
      put(static_cast<int16_t>(value));
      return true;
    case DataType::kInt32:
      put(static_cast<int32_t>(value));
      return true;
    case DataType::kInt64:
      put(static_cast<int64_t>(value));
      return true;
    case DataType::kUint8:
      put(static_cast<uint8_t>(value));
      return true;
    case DataType::kUint16:
      put(static_cast<uint16_t>(value));
      return true;
    case DataType::kUint32:
      put(static_cast<uint32_t>(value));
      return true;
    case DataType::kUint64:
      put(static_cast<uint64_t>(value));
      return true;
    case DataType::kBool:
      put(static_cast<uint8_t>(value != 0));
      return true;
    default:
      return false;
  }
}

void parallelCopy(std::byte* dst, const std::byte* src, size_t bytes) {
  constexpr size_t kChunk = 1 << 18;
  if (bytes < 2 * kChunk || omp_get_max_threads() == 1) {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return;
  }
  auto chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    size_t begin = static_cast<size_t>(c) * kChunk;
    std::memcpy(dst + begin, src + begin, std::min(kChunk, bytes - begin));
  }
}

void fillElements(std::byte* dst, const std::byte* value, int64_t count, size_t elementSize) {
  if (count <= 0) return;
  bool allSame = true;
  for (size_t b = 1; b < elementSize; ++b) allSame = allSame && value[b] == value[0];
  if (allSame) {
    std::memset(dst, static_cast<int>(value[0]), static_cast<size_t>(count) * elementSize);
    return;
  }
  std::memcpy(dst, value, elementSize);
  // Doubling copies: log2(count) memcpy calls.
  size_t done = elementSize;
  size_t total = static_cast<size_t>(count) * elementSize;
  while (done < total) {
    size_t n = std::min(done, total - done);
    std::memcpy(dst + done, dst, n);
    done += n;
  }
}

void copyStridedReference(std::byte* dst, const std::byte* src, const std::vector<int64_t>& dims,
                          const std::vector<int64_t>& dstStrides, const std::vector<int64_t>& srcStrides,
                          size_t elementSize) {
  int64_t total = dimProduct(dims);
  std::vector<int64_t> index(dims.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t d = 0, s = 0;
    for (size_t k = 0; k < dims.size(); ++k) {
      d += index[k] * dstStrides[k];
      s += index[k] * srcStrides[k];
    }
    std::memcpy(dst + d * static_cast<int64_t>(elementSize), src + s * static_cast<int64_t>(elementSize), elementSize);
    for (size_t k = dims.size(); k-- > 0;) {
      if (++index[k] < dims[k]) break;
      index[k] = 0;
    }
  }
}

namespace {

struct Axis {
  int64_t n;
  int64_t ds;  // destination stride, elements
  int64_t ss;  // source stride, elements
};

constexpr size_t kMaxAxes = 24;

/// Drops size-1 axes and merges neighbours that are contiguous in both layouts.
std::vector<Axis> simplifyAxes(const std::vector<int64_t>& dims, const std::vector<int64_t>& ds,
                               const std::vector<int64_t>& ss) {
  std::vector<Axis> axes;
  axes.reserve(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    Axis a{dims[i], ds[i], ss[i]};
    if (!axes.empty() && axes.back().ds == a.ds * a.n && axes.back().ss == a.ss * a.n) {
      axes.back() = {axes.back().n * a.n, a.ds, a.ss};
    } else {
      axes.push_back(a);
    }
  }
  return axes;
}

/// Runs fn(begin, end) over [0, count) split into one contiguous range per thread.
template <typename Fn>
void runRanges(int64_t count, bool parallel, Fn&& fn) {
  if (!parallel || count < 2 || omp_get_max_threads() == 1) {
    fn(int64_t{0}, count);
    return;
  }
#pragma omp parallel
  {
    int64_t nt = omp_get_num_threads();
    int64_t t = omp_get_thread_num();
    int64_t begin = count * t / nt;
    int64_t end = count * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

/// Walks the outer axes from linear index `begin` to `end`, calling fn(dstOffset, srcOffset).
template <typename Fn>
void walkOuter(const Axis* axes, size_t rank, int64_t begin, int64_t end, Fn&& fn) {
  int64_t index[kMaxAxes];
  int64_t d = 0, s = 0, rem = begin;
  for (size_t r = rank; r-- > 0;) {
    index[r] = rem % axes[r].n;
    rem /= axes[r].n;
    d += index[r] * axes[r].ds;
    s += index[r] * axes[r].ss;
  }
  for (int64_t i = begin; i < end; ++i) {
    fn(d, s);
    for (size_t r = rank; r-- > 0;) {
      d += axes[r].ds;
      s += axes[r].ss;
      if (++index[r] < axes[r].n) break;
      d -= axes[r].n * axes[r].ds;
      s -= axes[r].n * axes[r].ss;
      index[r] = 0;
    }
  }
}

#if defined(__SSE2__)
/// dst[b * db + a] = src[a * sa + b] for a 4x4 block of 32-bit elements.
inline void transpose4x4(float* dst, int64_t db, const float* src, int64_t sa) {
  __m128 r0 = _mm_loadu_ps(src);
  __m128 r1 = _mm_loadu_ps(src + sa);
  __m128 r2 = _mm_loadu_ps(src + 2 * sa);
  __m128 r3 = _mm_loadu_ps(src + 3 * sa);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + db, r1);
  _mm_storeu_ps(dst + 2 * db, r2);
  _mm_storeu_ps(dst + 3 * db, r3);
}
#endif

/// dst[b * db + a] = src[a * sa + b] for a in [0, na), b in [0, nb): a tile of a 2-D transpose.
template <size_t kSize>
void transposeBlock(std::byte* dstBytes, int64_t db, const std::byte* srcBytes, int64_t sa, int64_t na, int64_t nb) {
  using E = typename ElementOf<kSize>::type;
  auto* dst = reinterpret_cast<E*>(dstBytes);
  const auto* src = reinterpret_cast<const E*>(srcBytes);
  int64_t a = 0;
#if defined(__SSE2__)
  if constexpr (kSize == 4) {
    int64_t na4 = na & ~int64_t{3}, nb4 = nb & ~int64_t{3};
    for (int64_t b = 0; b < nb4; b += 4) {
      for (int64_t a4 = 0; a4 < na4; a4 += 4) {
        transpose4x4(reinterpret_cast<float*>(dst + b * db + a4), db, reinterpret_cast<const float*>(src + a4 * sa + b),
                     sa);
      }
    }
    // Leftover columns (a) for the rows done above, then leftover rows (b).
    for (int64_t b = 0; b < nb4; ++b) {
      for (int64_t aa = na4; aa < na; ++aa) dst[b * db + aa] = src[aa * sa + b];
    }
    for (int64_t b = nb4; b < nb; ++b) {
      for (int64_t aa = 0; aa < na; ++aa) dst[b * db + aa] = src[aa * sa + b];
    }
    return;
  }
#endif
  for (int64_t b = 0; b < nb; ++b) {
    E* d = dst + b * db;
    const E* s = src + b;
    for (a = 0; a < na; ++a) d[a] = s[a * sa];
  }
}

template <size_t kSize>
void copyStridedTyped(std::byte* dst, const std::byte* src, const std::vector<Axis>& axes) {
  using E = typename ElementOf<kSize>::type;
  constexpr auto es = static_cast<int64_t>(kSize);
  const Axis inner = axes.back();
  int64_t total = 1;
  for (const Axis& a : axes) total *= a.n;
  bool parallel = total > kShapeParallelGrain;

  // Case 1: contiguous runs in both layouts: memcpy per run.
  if (inner.ds == 1 && inner.ss == 1) {
    size_t rowBytes = static_cast<size_t>(inner.n * es);
    size_t outerRank = axes.size() - 1;
    int64_t outer = total / inner.n;
    if (outer == 1) {
      parallelCopy(dst, src, rowBytes);
      return;
    }
    runRanges(outer, parallel, [&](int64_t begin, int64_t end) {
      walkOuter(axes.data(), outerRank, begin, end,
                [&](int64_t d, int64_t s) { std::memcpy(dst + d * es, src + s * es, rowBytes); });
    });
    return;
  }

  // Case 2: a 2-D transpose inside: the innermost destination axis is strided in the source
  // and some other axis is contiguous in the source. Move tiles so both sides stay in cache.
  if (inner.ds == 1 && inner.ss != 0 && axes.size() >= 2) {
    size_t k = axes.size();
    for (size_t i = 0; i + 1 < axes.size(); ++i) {
      if (axes[i].ss == 1) k = i;
    }
    if (k < axes.size()) {
      const Axis b = axes[k];
      std::vector<Axis> outerAxes;
      for (size_t i = 0; i + 1 < axes.size(); ++i) {
        if (i != k) outerAxes.push_back(axes[i]);
      }
      constexpr int64_t kTile = kSize <= 4 ? 32 : 16;
      int64_t outer = 1;
      for (const Axis& a : outerAxes) outer *= a.n;
      int64_t bTiles = (b.n + kTile - 1) / kTile;
      // Work items: (outer index, tile of b); the outer walk restarts per item.
      runRanges(outer * bTiles, parallel, [&](int64_t begin, int64_t end) {
        for (int64_t item = begin; item < end; ++item) {
          int64_t o = item / bTiles;
          int64_t b0 = (item % bTiles) * kTile;
          int64_t nb = std::min(kTile, b.n - b0);
          walkOuter(outerAxes.data(), outerAxes.size(), o, o + 1, [&](int64_t d, int64_t s) {
            d += b0 * b.ds;
            s += b0;
            for (int64_t a0 = 0; a0 < inner.n; a0 += kTile) {
              int64_t na = std::min(kTile, inner.n - a0);
              transposeBlock<kSize>(dst + (d + a0) * es, b.ds, src + (s + a0 * inner.ss) * es, inner.ss, na, nb);
            }
          });
        }
      });
      return;
    }
  }

  // Case 3: anything else, one element at a time along the innermost axis (broadcasts with a
  // zero source stride land here and become fills).
  size_t outerRank = axes.size() - 1;
  int64_t outer = total / inner.n;
  runRanges(outer, parallel, [&](int64_t begin, int64_t end) {
    walkOuter(axes.data(), outerRank, begin, end, [&](int64_t d, int64_t s) {
      E* dp = reinterpret_cast<E*>(dst) + d;
      const E* sp = reinterpret_cast<const E*>(src) + s;
      if (inner.ss == 0 && inner.ds == 1) {
        E v = *sp;
        for (int64_t i = 0; i < inner.n; ++i) dp[i] = v;
      } else {
        for (int64_t i = 0; i < inner.n; ++i) dp[i * inner.ds] = sp[i * inner.ss];
      }
    });
  });
}

}  // namespace

void copyStrided(std::byte* dst, const std::byte* src, const std::vector<int64_t>& dims,
                 const std::vector<int64_t>& dstStrides, const std::vector<int64_t>& srcStrides, size_t elementSize) {
  for (int64_t d : dims) {
    if (d == 0) return;
  }
  std::vector<Axis> axes = simplifyAxes(dims, dstStrides, srcStrides);
  if (axes.empty()) {
    std::memcpy(dst, src, elementSize);
    return;
  }
  if (axes.size() > kMaxAxes) {
    copyStridedReference(dst, src, dims, dstStrides, srcStrides, elementSize);
    return;
  }
  switch (elementSize) {
    case 1:
      copyStridedTyped<1>(dst, src, axes);
      return;
    case 2:
      copyStridedTyped<2>(dst, src, axes);
      return;
    case 4:
      copyStridedTyped<4>(dst, src, axes);
      return;
    case 8:
      copyStridedTyped<8>(dst, src, axes);
      return;
    case 16:
      copyStridedTyped<16>(dst, src, axes);
      return;
    default:
      copyStridedReference(dst, src, dims, dstStrides, srcStrides, elementSize);
      return;
  }
}

}  // namespace whittle::runtime::cpu
