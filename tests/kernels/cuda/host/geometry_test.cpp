// The CUDA kernels' host-side geometry (kernels/cuda/host/geometry.cpp), checked on the CPU:
// every plan is walked here the way the kernels walk it (walkOffset in device_util.cuh) and
// compared with plain row-major indexing.
#include "cuda/host/geometry.h"

#include <catch2/catch.hpp>

#include <numeric>

namespace whittle::runtime::cuda {
namespace {

/// Element offset of linear index i for operand k, as the device code computes it.
int64_t offsetOf(const StridedWalk& w, int k, int64_t i) {
  int64_t off = w.offsets[k];
  for (int d = w.rank - 1; d >= 0; --d) {
    off += (i % w.dims[d]) * w.strides[k][d];
    i /= w.dims[d];
  }
  return off;
}

std::vector<int64_t> unravel(int64_t i, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    idx[d] = i % dims[d];
    i /= dims[d];
  }
  return idx;
}

int64_t ravel(const std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  int64_t off = 0;
  for (size_t d = 0; d < dims.size(); ++d) off = off * dims[d] + idx[d];
  return off;
}

int64_t product(const std::vector<int64_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
}

/// The offset of output index `outIdx` in an input of `dims` broadcast to the output.
int64_t broadcastOffset(const std::vector<int64_t>& outIdx, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  const size_t lead = outIdx.size() - dims.size();
  for (size_t d = 0; d < dims.size(); ++d) idx[d] = dims[d] == 1 ? 0 : outIdx[lead + d];
  return ravel(idx, dims);
}

TEST_CASE("planBinary walks broadcast operands like numpy", "[cuda-host]") {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}},          {{2, 1, 4}, {3, 1}},    {{1}, {5, 6}},
      {{}, {2, 2}},           {{8, 1, 1, 7}, {1, 6, 5, 1}}, {{3, 1, 2, 1, 2}, {1, 4, 1, 5, 2}}, {{2, 0, 3}, {3}}};
  for (const auto& [a, b] : cases) {
    std::vector<int64_t> out;
    auto walk = planBinary(a, b, out);
    REQUIRE(walk.has_value());
    const int64_t n = product(out);
    CHECK(walk->numel == n);
    for (int64_t i = 0; i < n; ++i) {
      const auto idx = unravel(i, out);
      INFO("case a rank " << a.size() << ", b rank " << b.size() << ", element " << i);
      CHECK(offsetOf(*walk, 0, i) == i);
      CHECK(offsetOf(*walk, 1, i) == broadcastOffset(idx, a));
      CHECK(offsetOf(*walk, 2, i) == broadcastOffset(idx, b));
    }
  }
  std::vector<int64_t> out;
  CHECK_FALSE(planBinary({2, 3}, {4, 3, 2}, out).has_value());
}

TEST_CASE("collapse merges contiguous dims and drops ones", "[cuda-host]") {
  std::vector<int64_t> out;
  auto same = planBinary({4, 5, 6}, {4, 5, 6}, out);
  REQUIRE(same);
  CHECK(same->rank == 1);
  CHECK(same->dims[0] == 120);
  auto row = planBinary({4, 5, 6}, {6}, out);
  REQUIRE(row);
  CHECK(row->rank == 2);  // [20, 6]: b repeats every row
  CHECK(row->dims[0] == 20);
  CHECK(row->strides[2][0] == 0);
  auto scalar = planBinary({}, {}, out);
  REQUIRE(scalar);
  CHECK(scalar->rank == 1);
  CHECK(scalar->numel == 1);
  // Nine non-mergeable dims are more than the kernels walk.
  std::vector<int64_t> a(9, 2), b(9, 1);
  for (size_t i = 0; i < b.size(); i += 2) b[i] = 2;
  CHECK_FALSE(planBinary(a, b, out).has_value());
}

TEST_CASE("planTranspose reads the input at permuted strides", "[cuda-host]") {
  const std::vector<int64_t> in = {2, 3, 4, 5};
  for (const std::vector<int64_t>& perm : {std::vector<int64_t>{0, 2, 3, 1}, {3, 2, 1, 0}, {0, 1, 3, 2}, {0, 1, 2, 3}}) {
    std::vector<int64_t> out;
    auto walk = planTranspose(in, perm, out);
    REQUIRE(walk);
    for (size_t i = 0; i < perm.size(); ++i) CHECK(out[i] == in[static_cast<size_t>(perm[i])]);
    for (int64_t i = 0; i < product(out); ++i) {
      const auto o = unravel(i, out);
      std::vector<int64_t> src(in.size());
      for (size_t d = 0; d < perm.size(); ++d) src[static_cast<size_t>(perm[d])] = o[d];
      CHECK(offsetOf(*walk, 0, i) == i);
      CHECK(offsetOf(*walk, 1, i) == ravel(src, in));
    }
  }
  std::vector<int64_t> out;
  CHECK_FALSE(planTranspose(in, {0, 0, 1, 2}, out));
  CHECK_FALSE(planTranspose(in, {0, 1, 2}, out));
}

TEST_CASE("planSlice, planExpand and planConcatPart address what they copy", "[cuda-host]") {
  const std::vector<int64_t> in = {4, 6, 5};
  // x[1:4:2, 5:0:-2, :]
  const std::vector<int64_t> starts = {1, 5, 0}, steps = {2, -2, 1}, out = {2, 3, 5};
  auto slice = planSlice(in, starts, steps, out);
  REQUIRE(slice);
  for (int64_t i = 0; i < product(out); ++i) {
    const auto o = unravel(i, out);
    std::vector<int64_t> src = {starts[0] + o[0] * steps[0], starts[1] + o[1] * steps[1], o[2]};
    CHECK(offsetOf(*slice, 1, i) == ravel(src, in));
  }
  CHECK_FALSE(planSlice(in, {0, 0, 0}, {1, 1, 1}, {5, 6, 5}));  // reads past the end

  auto expand = planExpand({3, 1}, {2, 3, 4});
  REQUIRE(expand);
  for (int64_t i = 0; i < 24; ++i) CHECK(offsetOf(*expand, 1, i) == unravel(i, {2, 3, 4})[1]);
  CHECK_FALSE(planExpand({3, 2}, {3, 4}));

  // Output [2, 7, 3]; the part [2, 4, 3] goes at offset 3 on axis 1.
  auto part = planConcatPart({2, 4, 3}, {2, 7, 3}, 1, 3);
  REQUIRE(part);
  for (int64_t i = 0; i < 24; ++i) {
    auto idx = unravel(i, {2, 4, 3});
    idx[1] += 3;
    CHECK(offsetOf(*part, 1, i) == i);
    CHECK(offsetOf(*part, 0, i) == ravel(idx, {2, 7, 3}));
  }
  CHECK_FALSE(planConcatPart({2, 5, 3}, {2, 7, 3}, 1, 3));
  CHECK_FALSE(planConcatPart({2, 4, 2}, {2, 7, 3}, 1, 0));
}

TEST_CASE("gather, row and launch geometry", "[cuda-host]") {
  const GatherGeometry g = planGather({2, 10, 3, 4}, 1, 6);
  CHECK(g.outer == 2);
  CHECK(g.axisDim == 10);
  CHECK(g.inner == 12);
  CHECK(g.numIndices == 6);
  const RowGeometry r = rowsFrom({2, 3, 4, 5}, 2);
  CHECK(r.rows == 6);
  CHECK(r.cols == 20);
  CHECK(rowsFrom({7}, 0).rows == 1);

  CHECK(launch1d(0).blocks == 1);
  CHECK(launch1d(1).blocks == 1);
  CHECK(launch1d(256).blocks == 1);
  CHECK(launch1d(257).blocks == 2);
  CHECK(launch1d(int64_t{1} << 40).blocks == 65535u * 4u);  // the grid-stride loop covers the rest
  CHECK(launch1d(1000, 128).blocks == 8);
  CHECK(rowThreads(1) == 32);
  CHECK(rowThreads(33) == 64);
  CHECK(rowThreads(384) == 512);
  CHECK(rowThreads(100000) == 1024);
}

}  // namespace
}  // namespace whittle::runtime::cuda
