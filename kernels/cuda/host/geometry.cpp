#include "cuda/host/geometry.h"

#include <algorithm>

namespace whittle::runtime::cuda {

std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
  return strides;
}

std::optional<std::vector<int64_t>> broadcastDims(const std::vector<std::vector<int64_t>>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  std::vector<int64_t> out(rank, 1);
  for (const auto& s : shapes) {
    const size_t lead = rank - s.size();
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[lead + i];
      if (s[i] == o || s[i] == 1) continue;
      if (o != 1) return std::nullopt;
      o = s[i];
    }
  }
  return out;
}

std::optional<StridedWalk> collapse(const std::vector<int64_t>& dims, const std::vector<std::vector<int64_t>>& strides,
                                    const std::vector<int64_t>& offsets) {
  StridedWalk walk;
  const size_t operands = strides.size();
  if (operands < 1 || operands > 3) return std::nullopt;
  for (const auto& s : strides) {
    if (s.size() != dims.size()) return std::nullopt;
  }
  for (size_t k = 0; k < operands && k < offsets.size(); ++k) walk.offsets[k] = offsets[k];
  int64_t numel = 1;
  for (int64_t d : dims) numel *= d;
  walk.numel = numel;
  // Merged groups, innermost first.
  std::vector<int64_t> groupDims;
  std::vector<std::vector<int64_t>> groupStrides(operands);
  if (numel != 0) {
    for (size_t i = dims.size(); i-- > 0;) {
      if (dims[i] == 1) continue;
      bool merge = !groupDims.empty();
      for (size_t k = 0; merge && k < operands; ++k) {
        merge = strides[k][i] == groupStrides[k].back() * groupDims.back();
      }
      if (merge) {
        groupDims.back() *= dims[i];
      } else {
        groupDims.push_back(dims[i]);
        for (size_t k = 0; k < operands; ++k) groupStrides[k].push_back(strides[k][i]);
      }
    }
  }
  if (groupDims.empty()) {
    // A scalar walk, or an empty one (numel 0: one dim of size 0).
    walk.rank = 1;
    walk.dims[0] = numel == 0 ? 0 : 1;
    return walk;
  }
  if (groupDims.size() > static_cast<size_t>(kMaxRank)) return std::nullopt;
  walk.rank = static_cast<int>(groupDims.size());
  for (int r = 0; r < walk.rank; ++r) {
    const size_t from = groupDims.size() - 1 - static_cast<size_t>(r);
    walk.dims[r] = groupDims[from];
    for (size_t k = 0; k < operands; ++k) walk.strides[k][r] = groupStrides[k][from];
  }
  return walk;
}

namespace {

/// Strides of `dims` seen from `outDims` (leading dims implied), 0 where broadcast.
std::vector<int64_t> broadcastStridesFor(const std::vector<int64_t>& dims, const std::vector<int64_t>& outDims) {
  std::vector<int64_t> own = contiguousStrides(dims);
  std::vector<int64_t> out(outDims.size(), 0);
  const size_t lead = outDims.size() - dims.size();
  for (size_t i = 0; i < dims.size(); ++i) out[lead + i] = dims[i] == 1 ? 0 : own[i];
  return out;
}

}  // namespace

std::optional<StridedWalk> planBinary(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      std::vector<int64_t>& outDims) {
  auto dims = broadcastDims({a, b});
  if (!dims) return std::nullopt;
  outDims = *dims;
  return collapse(outDims, {contiguousStrides(outDims), broadcastStridesFor(a, outDims), broadcastStridesFor(b, outDims)});
}

std::optional<StridedWalk> planTranspose(const std::vector<int64_t>& inDims, const std::vector<int64_t>& perm,
                                         std::vector<int64_t>& outDims) {
  if (perm.size() != inDims.size()) return std::nullopt;
  std::vector<bool> seen(perm.size(), false);
  std::vector<int64_t> inStrides = contiguousStrides(inDims);
  std::vector<int64_t> srcStrides(perm.size());
  outDims.assign(perm.size(), 0);
  for (size_t i = 0; i < perm.size(); ++i) {
    int64_t p = perm[i];
    if (p < 0 || p >= static_cast<int64_t>(perm.size()) || seen[static_cast<size_t>(p)]) return std::nullopt;
    seen[static_cast<size_t>(p)] = true;
    outDims[i] = inDims[static_cast<size_t>(p)];
    srcStrides[i] = inStrides[static_cast<size_t>(p)];
  }
  return collapse(outDims, {contiguousStrides(outDims), srcStrides});
}

std::optional<StridedWalk> planExpand(const std::vector<int64_t>& inDims, const std::vector<int64_t>& outDims) {
  if (inDims.size() > outDims.size()) return std::nullopt;
  auto dims = broadcastDims({inDims, outDims});
  if (!dims || *dims != outDims) return std::nullopt;
  return collapse(outDims, {contiguousStrides(outDims), broadcastStridesFor(inDims, outDims)});
}

std::optional<StridedWalk> planSlice(const std::vector<int64_t>& inDims, const std::vector<int64_t>& starts,
                                     const std::vector<int64_t>& steps, const std::vector<int64_t>& outDims) {
  const size_t rank = inDims.size();
  if (starts.size() != rank || steps.size() != rank || outDims.size() != rank) return std::nullopt;
  std::vector<int64_t> inStrides = contiguousStrides(inDims);
  std::vector<int64_t> src(rank);
  int64_t offset = 0;
  for (size_t i = 0; i < rank; ++i) {
    if (outDims[i] < 0) return std::nullopt;
    if (outDims[i] > 0) {
      const int64_t last = starts[i] + (outDims[i] - 1) * steps[i];
      if (starts[i] < 0 || starts[i] >= inDims[i] || last < 0 || last >= inDims[i]) return std::nullopt;
    }
    src[i] = inStrides[i] * steps[i];
    offset += starts[i] * inStrides[i];
  }
  return collapse(outDims, {contiguousStrides(outDims), src}, {0, offset});
}

std::optional<StridedWalk> planConcatPart(const std::vector<int64_t>& inDims, const std::vector<int64_t>& outDims,
                                          int64_t axis, int64_t axisOffset) {
  if (inDims.size() != outDims.size() || axis < 0 || axis >= static_cast<int64_t>(inDims.size())) return std::nullopt;
  for (size_t i = 0; i < inDims.size(); ++i) {
    if (static_cast<int64_t>(i) == axis) {
      if (axisOffset < 0 || axisOffset + inDims[i] > outDims[i]) return std::nullopt;
    } else if (inDims[i] != outDims[i]) {
      return std::nullopt;
    }
  }
  std::vector<int64_t> outStrides = contiguousStrides(outDims);
  const int64_t offset = axisOffset * outStrides[static_cast<size_t>(axis)];
  return collapse(inDims, {outStrides, contiguousStrides(inDims)}, {offset, 0});
}

GatherGeometry planGather(const std::vector<int64_t>& dataDims, int64_t axis, int64_t numIndices) {
  GatherGeometry g;
  g.numIndices = numIndices;
  for (size_t i = 0; i < dataDims.size(); ++i) {
    const auto a = static_cast<size_t>(axis);
    if (i < a) g.outer *= dataDims[i];
    if (i == a) g.axisDim = dataDims[i];
    if (i > a) g.inner *= dataDims[i];
  }
  return g;
}

RowGeometry rowsFrom(const std::vector<int64_t>& dims, int64_t axis) {
  RowGeometry r;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (static_cast<int64_t>(i) < axis) {
      r.rows *= dims[i];
    } else {
      r.cols *= dims[i];
    }
  }
  return r;
}

Launch1d launch1d(int64_t n, unsigned threads, unsigned maxBlocks) {
  Launch1d l;
  l.threads = threads;
  if (n <= 0) return l;
  const int64_t blocks = (n + threads - 1) / threads;
  l.blocks = static_cast<unsigned>(std::min<int64_t>(blocks, maxBlocks));
  return l;
}

unsigned rowThreads(int64_t cols) {
  unsigned t = 32;
  while (t < 1024 && static_cast<int64_t>(t) < cols) t *= 2;
  return t;
}

}  // namespace whittle::runtime::cuda
