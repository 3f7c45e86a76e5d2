// The shape family on the CPU runtime against plain index-by-index references, over one
// shared shape list (tiny shapes, shapes at, just below and just above 16 and 64), for
// 1-, 2-, 4- and 8-byte dtypes, at 1 and 2 threads. Views (Reshape, Flatten, Squeeze,
// Unsqueeze) must share the input buffer.
#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <span>

#include "../../../kernels/cpu/shape_internal.h"
#include "support/kernel_harness.h"
#include "whittle/ir/graph.h"
#include "whittle/runtime/session.h"

using namespace whittle;
namespace cpu = whittle::runtime::cpu;

namespace {

using ir::DataType;

const std::vector<std::vector<int64_t>> kShapes = {
    {1},      {7},       {15},           {16},          {17},          {3, 5},       {16, 16},      {15, 17},
    {63, 65}, {2, 3, 4}, {1, 16, 17, 3}, {2, 64, 5, 7}, {2, 3, 65, 2}, {1, 1, 1, 1}, {4, 1, 16, 1}, {2, 3, 0, 4}};
const std::vector<DataType> kByteTypes = {DataType::kFloat, DataType::kFloat16, DataType::kInt8, DataType::kInt64,
                                          DataType::kBool};

using In = testing::NodeInput;

In feed(std::string name, ir::Tensor t) {
  return {std::move(name), std::move(t), false};
}
In init(std::string name, ir::Tensor t) {
  return {std::move(name), std::move(t), true};
}
In none() {
  return {"", {}, false};
}
ir::Tensor ints(std::vector<int64_t> v) {
  return ir::Tensor::fromVector(DataType::kInt64, {static_cast<int64_t>(v.size())}, v);
}
ir::Tensor scalarInt(int64_t v) {
  return ir::Tensor::fromVector(DataType::kInt64, {}, std::vector<int64_t>{v});
}
ir::Tensor floats(std::vector<int64_t> dims, std::vector<float> v) {
  return ir::Tensor::fromVector(DataType::kFloat, std::move(dims), v);
}

struct RunResult {
  Status status;
  std::vector<ir::Tensor> outputs;
};

/// Runs a one-node model whose graph inputs declare only their dtypes (shapes known at run time).
RunResult tryRun(const std::string& op, const std::vector<In>& inputs, const std::vector<ir::Attribute>& attrs,
                 size_t numOutputs = 1, int64_t opset = 18, int threads = 1) {
  auto out = testing::runNode(op, inputs, attrs, opset, threads, numOutputs, testing::InputShapes::kUndeclared);
  if (!out.isOk()) return {out.status(), {}};
  return {Status::ok(), std::move(out).value()};
}

std::vector<ir::Tensor> run(const std::string& op, const std::vector<In>& inputs,
                            const std::vector<ir::Attribute>& attrs, size_t numOutputs = 1, int64_t opset = 18,
                            int threads = 1) {
  RunResult r = tryRun(op, inputs, attrs, numOutputs, opset, threads);
  INFO(op << ": " << r.status.message());
  REQUIRE(r.status.isOk());
  return r.outputs;
}

ir::Tensor randomTensor(DataType dtype, std::vector<int64_t> dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ir::Tensor t(dtype, std::move(dims));
  if (dtype == DataType::kFloat) {
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    for (float& v : std::span<float>(t.mutableData<float>(), static_cast<size_t>(t.numel()))) v = dist(rng);
  } else if (dtype == DataType::kBool) {
    for (int64_t i = 0; i < t.numel(); ++i) t.mutableData<uint8_t>()[i] = rng() & 1u;
  } else if (dtype == DataType::kFloat16) {
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    for (int64_t i = 0; i < t.numel(); ++i) t.mutableData<uint16_t>()[i] = ir::floatToHalf(dist(rng));
  } else {
    std::byte* p = t.mutableRawData();
    for (size_t i = 0; i < t.byteSize(); ++i) p[i] = static_cast<std::byte>(rng() & 0xffu);
  }
  return t;
}

std::vector<int64_t> unravel(int64_t i, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    idx[k] = i % dims[k];
    i /= dims[k];
  }
  return idx;
}

int64_t ravel(const std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  int64_t off = 0;
  for (size_t k = 0; k < dims.size(); ++k) off = off * dims[k] + idx[k];
  return off;
}

/// A tensor whose element i is src element map(i) (or `fill` bytes where map gives -1).
ir::Tensor gatherReference(const ir::Tensor& src, const std::vector<int64_t>& outDims,
                           const std::function<int64_t(const std::vector<int64_t>&)>& map,
                           const std::byte* fill = nullptr) {
  ir::Tensor out(src.dtype(), outDims);
  size_t es = ir::elementSize(src.dtype());
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t s = map(unravel(i, outDims));
    std::memcpy(out.mutableRawData() + i * static_cast<int64_t>(es),
                s < 0 ? fill : src.rawData() + s * static_cast<int64_t>(es), es);
  }
  return out;
}

void requireBitwiseEqual(const ir::Tensor& expected, const ir::Tensor& actual) {
  REQUIRE(actual.dtype() == expected.dtype());
  REQUIRE(actual.dims() == expected.dims());
  size_t bytes = static_cast<size_t>(expected.numel()) * ir::elementSize(expected.dtype());
  REQUIRE(std::memcmp(expected.rawData(), actual.rawData(), bytes) == 0);
}

std::vector<std::vector<int64_t>> permutations(size_t rank) {
  std::vector<int64_t> p(rank);
  std::iota(p.begin(), p.end(), 0);
  std::vector<std::vector<int64_t>> all;
  do {
    all.push_back(p);
  } while (std::next_permutation(p.begin(), p.end()));
  return all;
}

}  // namespace

TEST_CASE("copyStrided matches its scalar reference for permuted, broadcast and reversed views", "[kernels][shape]") {
  std::mt19937_64 rng(5);
  for (size_t es : {size_t{1}, size_t{2}, size_t{4}, size_t{8}, size_t{16}, size_t{3}}) {
    for (const auto& dims : kShapes) {
      for (const auto& perm : permutations(dims.size())) {
        std::vector<int64_t> inStrides = cpu::contiguousStrides(dims);
        std::vector<int64_t> outDims(dims.size()), src(dims.size());
        for (size_t i = 0; i < perm.size(); ++i) {
          outDims[i] = dims[static_cast<size_t>(perm[i])];
          src[i] = inStrides[static_cast<size_t>(perm[i])];
        }
        // Broadcast one axis now and then (stride 0) and reverse another (negative stride).
        int64_t offset = 0;
        if (!src.empty() && rng() % 3 == 0) src[rng() % src.size()] = 0;
        if (!src.empty() && rng() % 3 == 0) {
          size_t k = rng() % src.size();
          if (src[k] != 0) {
            offset = (outDims[k] - 1) * src[k];
            src[k] = -src[k];
          }
        }
        int64_t n = testing::numel(dims);
        std::vector<std::byte> in(static_cast<size_t>(n) * es + 1);
        for (auto& b : in) b = static_cast<std::byte>(rng() & 0xffu);
        std::vector<std::byte> a(static_cast<size_t>(n) * es + 1), b(a.size());
        for (int threads : testing::kThreadCounts) {
          omp_set_num_threads(threads);
          cpu::copyStrided(a.data(), in.data() + offset * static_cast<int64_t>(es), outDims,
                           cpu::contiguousStrides(outDims), src, es);
          cpu::copyStridedReference(b.data(), in.data() + offset * static_cast<int64_t>(es), outDims,
                                    cpu::contiguousStrides(outDims), src, es);
          INFO("es " << es << " dims " << cpu::shapeToString(outDims) << " src strides " << cpu::shapeToString(src));
          REQUIRE(std::memcmp(a.data(), b.data(), static_cast<size_t>(n) * es) == 0);
        }
      }
    }
  }
  omp_set_num_threads(1);
}

TEST_CASE("Transpose matches the reference for every permutation, dtype and thread count", "[kernels][shape]") {
  uint64_t seed = 1;
  for (const auto& dims : kShapes) {
    for (const auto& perm : permutations(dims.size())) {
      for (DataType dt : kByteTypes) {
        ir::Tensor x = randomTensor(dt, dims, seed++);
        std::vector<int64_t> outDims(dims.size());
        for (size_t i = 0; i < perm.size(); ++i) outDims[i] = dims[static_cast<size_t>(perm[i])];
        ir::Tensor expected = gatherReference(x, outDims, [&](const std::vector<int64_t>& o) {
          std::vector<int64_t> in(o.size());
          for (size_t k = 0; k < o.size(); ++k) in[static_cast<size_t>(perm[k])] = o[k];
          return ravel(in, dims);
        });
        for (int threads : testing::kThreadCounts) {
          INFO("dims " << cpu::shapeToString(dims) << " perm " << cpu::shapeToString(perm) << " threads " << threads);
          auto y = run("Transpose", {feed("x", x)}, {ir::Attribute::makeInts("perm", perm)}, 1, 18, threads);
          requireBitwiseEqual(expected, y[0]);
        }
      }
    }
  }
  // NCHW <-> NHWC at sizes a real model has, both directions, both thread counts.
  for (std::vector<int64_t> dims : {std::vector<int64_t>{1, 96, 56, 56}, std::vector<int64_t>{2, 33, 17, 64}}) {
    ir::Tensor x = randomTensor(DataType::kFloat, dims, 99);
    for (const std::vector<int64_t>& perm : {std::vector<int64_t>{0, 2, 3, 1}, std::vector<int64_t>{0, 3, 1, 2}}) {
      std::vector<int64_t> outDims = {dims[static_cast<size_t>(perm[0])], dims[static_cast<size_t>(perm[1])],
                                      dims[static_cast<size_t>(perm[2])], dims[static_cast<size_t>(perm[3])]};
      ir::Tensor expected = gatherReference(x, outDims, [&](const std::vector<int64_t>& o) {
        std::vector<int64_t> in(4);
        for (size_t k = 0; k < 4; ++k) in[static_cast<size_t>(perm[k])] = o[k];
        return ravel(in, dims);
      });
      for (int threads : testing::kThreadCounts) {
        auto y = run("Transpose", {feed("x", x)}, {ir::Attribute::makeInts("perm", perm)}, 1, 18, threads);
        requireBitwiseEqual(expected, y[0]);
      }
    }
  }
}

TEST_CASE("Reshape, Flatten, Squeeze and Unsqueeze are views of the input buffer", "[kernels][shape]") {
  ir::Tensor x = randomTensor(DataType::kFloat, {2, 1, 3, 4}, 3);
  auto y = run("Reshape", {feed("x", x), init("s", ints({0, -1, 4}))}, {});
  CHECK(y[0].dims() == std::vector<int64_t>{2, 3, 4});
  CHECK(y[0].rawData() == x.rawData());
  ir::Tensor empty(DataType::kFloat, {4, 0});
  y = run("Reshape", {feed("x", empty), init("s", ints({0, 8}))}, {ir::Attribute::makeInt("allowzero", 1)});
  CHECK(y[0].dims() == std::vector<int64_t>{0, 8});
  CHECK(!tryRun("Reshape", {feed("x", empty), init("s", ints({0, 8}))}, {}).status.isOk());
  CHECK(!tryRun("Reshape", {feed("x", x), init("s", ints({5, -1}))}, {}).status.isOk());
  CHECK(!tryRun("Reshape", {feed("x", x), init("s", ints({-1, -1}))}, {}).status.isOk());
  y = run("Flatten", {feed("x", x)}, {ir::Attribute::makeInt("axis", -1)});
  CHECK(y[0].dims() == std::vector<int64_t>{6, 4});
  CHECK(y[0].rawData() == x.rawData());
  y = run("Squeeze", {feed("x", x)}, {});
  CHECK(y[0].dims() == std::vector<int64_t>{2, 3, 4});
  CHECK(y[0].rawData() == x.rawData());
  y = run("Squeeze", {feed("x", x)}, {ir::Attribute::makeInts("axes", {-3})}, 1, 11);
  CHECK(y[0].dims() == std::vector<int64_t>{2, 3, 4});
  CHECK(!tryRun("Squeeze", {feed("x", x), init("a", ints({0}))}, {}).status.isOk());
  y = run("Unsqueeze", {feed("x", x), init("a", ints({-1, 0}))}, {});
  CHECK(y[0].dims() == std::vector<int64_t>{1, 2, 1, 3, 4, 1});
  CHECK(y[0].rawData() == x.rawData());
  y = run("Unsqueeze", {feed("x", x)}, {ir::Attribute::makeInts("axes", {1})}, 1, 11);
  CHECK(y[0].dims() == std::vector<int64_t>{2, 1, 1, 3, 4});
  // An identity Transpose (only size-1 axes move) and a whole-tensor Slice are views too.
  y = run("Transpose", {feed("x", x)}, {ir::Attribute::makeInts("perm", {1, 0, 2, 3})});
  CHECK(y[0].dims() == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(y[0].rawData() == x.rawData());
  y = run("Slice", {feed("x", x), init("s", ints({0})), init("e", ints({100}))}, {});
  CHECK(y[0].rawData() == x.rawData());
  // String tensors are reshaped too.
  ir::Tensor s = ir::Tensor::strings({2, 2}, {"a", "b", "c", "d"});
  y = run("Reshape", {feed("x", s), init("s", ints({4}))}, {});
  CHECK(y[0].stringValues() == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("Concat, Split and Slice match the reference on every axis", "[kernels][shape]") {
  uint64_t seed = 100;
  for (const auto& dims : kShapes) {
    for (DataType dt : {DataType::kFloat, DataType::kInt8, DataType::kInt64}) {
      for (size_t axis = 0; axis < dims.size(); ++axis) {
        std::vector<int64_t> bDims = dims;
        bDims[axis] = 3;
        ir::Tensor a = randomTensor(dt, dims, seed++), b = randomTensor(dt, bDims, seed++);
        std::vector<int64_t> outDims = dims;
        outDims[axis] += 3;
        ir::Tensor expected = ir::Tensor(dt, outDims);
        size_t es = ir::elementSize(dt);
        for (int64_t i = 0; i < expected.numel(); ++i) {
          auto idx = unravel(i, outDims);
          const ir::Tensor* src = &a;
          if (idx[axis] >= dims[axis]) {
            idx[axis] -= dims[axis];
            src = &b;
          }
          std::memcpy(expected.mutableRawData() + i * static_cast<int64_t>(es),
                      src->rawData() + ravel(idx, src->dims()) * static_cast<int64_t>(es), es);
        }
        for (int threads : testing::kThreadCounts) {
          INFO("dims " << cpu::shapeToString(dims) << " axis " << axis);
          auto y = run("Concat", {feed("a", a), feed("b", b)},
                       {ir::Attribute::makeInt("axis", static_cast<int64_t>(axis))}, 1, 18, threads);
          requireBitwiseEqual(expected, y[0]);
          // Split undoes it.
          auto parts = run("Split", {feed("x", y[0]), init("s", ints({dims[axis], 3}))},
                           {ir::Attribute::makeInt("axis", static_cast<int64_t>(axis))}, 2, 18, threads);
          requireBitwiseEqual(a, parts[0]);
          requireBitwiseEqual(b, parts[1]);
        }
        // Slice with a negative step on this axis and a positive step of 2 elsewhere.
        std::vector<int64_t> starts = {-1, 0}, ends = {INT64_MIN, INT64_MAX}, steps = {-2, 2};
        size_t other = (axis + 1) % dims.size();
        std::vector<int64_t> axes = {static_cast<int64_t>(axis), static_cast<int64_t>(other)};
        if (other == axis) {
          starts.pop_back();
          ends.pop_back();
          steps.pop_back();
          axes.pop_back();
        }
        std::vector<int64_t> sDims = dims;
        sDims[axis] = (dims[axis] + 1) / 2;
        if (other != axis) sDims[other] = (dims[other] + 1) / 2;
        ir::Tensor sliced = gatherReference(a, sDims, [&](const std::vector<int64_t>& o) {
          std::vector<int64_t> in = o;
          in[axis] = dims[axis] - 1 - 2 * o[axis];
          if (other != axis) in[other] = 2 * o[other];
          return ravel(in, dims);
        });
        for (int threads : testing::kThreadCounts) {
          auto y = run("Slice",
                       {feed("x", a), init("s", ints(starts)), init("e", ints(ends)), init("a", ints(axes)),
                        init("t", ints(steps))},
                       {}, 1, 18, threads);
          requireBitwiseEqual(sliced, y[0]);
        }
      }
    }
  }
}

TEST_CASE("Concat and Split of channels-last rows of 64-byte multiples match the reference", "[kernels][shape]") {
  // The 64-byte row copies (rows of 16 to 64 float channels, YOLOv8's C2f and PP-OCR's stem),
  // over enough rows to split across threads, beside rows of other lengths in one Concat.
  uint64_t seed = 300;
  const std::vector<std::vector<int64_t>> channelSets = {{16, 16}, {16, 32, 16}, {64, 16}, {16, 8}, {48, 24}};
  for (const auto& channels : channelSets) {
    for (DataType dt : {DataType::kFloat, DataType::kInt8}) {
      std::vector<ir::Tensor> parts;
      std::vector<In> feeds;
      int64_t total = 0;
      for (int64_t c : channels) {
        parts.push_back(randomTensor(dt, {1, 37, 61, c}, seed++));
        feeds.push_back(feed("p" + std::to_string(feeds.size()), parts.back()));
        total += c;
      }
      ir::Tensor expected(dt, {1, 37, 61, total});
      const size_t es = ir::elementSize(dt);
      for (int64_t px = 0; px < 37 * 61; ++px) {
        int64_t at = 0;
        for (size_t i = 0; i < parts.size(); ++i) {
          std::memcpy(expected.mutableRawData() + (px * total + at) * static_cast<int64_t>(es),
                      parts[i].rawData() + px * channels[i] * static_cast<int64_t>(es),
                      static_cast<size_t>(channels[i]) * es);
          at += channels[i];
        }
      }
      for (int threads : testing::kThreadCounts) {
        INFO("channels " << cpu::shapeToString(channels) << " " << ir::dataTypeName(dt) << ", " << threads
                         << " threads");
        auto y = run("Concat", feeds, {ir::Attribute::makeInt("axis", 3)}, 1, 18, threads);
        requireBitwiseEqual(expected, y[0]);
        auto back = run("Split", {feed("x", y[0]), init("s", ints(channels))}, {ir::Attribute::makeInt("axis", -1)},
                        channels.size(), 18, threads);
        for (size_t i = 0; i < parts.size(); ++i) requireBitwiseEqual(parts[i], back[i]);
      }
    }
  }
}

TEST_CASE("Split handles num_outputs, uneven chunks and the opset-11 attribute", "[kernels][shape]") {
  ir::Tensor x = randomTensor(DataType::kFloat, {7, 2}, 8);
  auto parts = run("Split", {feed("x", x)}, {ir::Attribute::makeInt("num_outputs", 4)}, 4, 18);
  REQUIRE(parts.size() == 4);
  CHECK(parts[0].dims() == std::vector<int64_t>{2, 2});
  CHECK(parts[3].dims() == std::vector<int64_t>{1, 2});
  CHECK(parts[3].data<float>()[1] == x.data<float>()[13]);
  parts = run("Split", {feed("x", x)}, {ir::Attribute::makeInts("split", {3, 4})}, 2, 11);
  CHECK(parts[1].dims() == std::vector<int64_t>{4, 2});
  CHECK(parts[1].data<float>()[0] == x.data<float>()[6]);
  CHECK(!tryRun("Split", {feed("x", x)}, {}, 2, 13).status.isOk());  // 7 does not split in two
}

TEST_CASE("Gather, GatherElements and GatherND match the reference", "[kernels][shape]") {
  uint64_t seed = 300;
  for (const auto& dims : kShapes) {
    if (testing::numel(dims) == 0) continue;
    for (DataType dt : {DataType::kFloat, DataType::kFloat16, DataType::kInt8}) {
      ir::Tensor x = randomTensor(dt, dims, seed++);
      for (size_t axis = 0; axis < dims.size(); ++axis) {
        std::mt19937_64 rng(seed++);
        std::vector<int64_t> idx = {0, dims[axis] - 1, -1, static_cast<int64_t>(rng() % dims[axis]), -dims[axis]};
        ir::Tensor indices = ir::Tensor::fromVector(DataType::kInt64, {1, 5}, idx);
        std::vector<int64_t> outDims(dims.begin(), dims.begin() + static_cast<int64_t>(axis));
        outDims.insert(outDims.end(), {1, 5});
        outDims.insert(outDims.end(), dims.begin() + static_cast<int64_t>(axis) + 1, dims.end());
        ir::Tensor expected = gatherReference(x, outDims, [&](const std::vector<int64_t>& o) {
          std::vector<int64_t> in(o.begin(), o.begin() + static_cast<int64_t>(axis));
          int64_t v = idx[static_cast<size_t>(o[axis + 1])];
          in.push_back(v < 0 ? v + dims[axis] : v);
          in.insert(in.end(), o.begin() + static_cast<int64_t>(axis) + 2, o.end());
          return ravel(in, dims);
        });
        for (int threads : testing::kThreadCounts) {
          auto y = run("Gather", {feed("x", x), init("i", indices)},
                       {ir::Attribute::makeInt("axis", static_cast<int64_t>(axis))}, 1, 18, threads);
          requireBitwiseEqual(expected, y[0]);
        }
        // GatherElements with random indices of the data's shape.
        ir::Tensor ge(DataType::kInt64, dims);
        for (int64_t i = 0; i < ge.numel(); ++i)
          ge.mutableData<int64_t>()[i] = static_cast<int64_t>(rng() % dims[axis]);
        ir::Tensor expectedElements = gatherReference(x, dims, [&](const std::vector<int64_t>& o) {
          std::vector<int64_t> in = o;
          in[axis] = ge.data<int64_t>()[ravel(o, dims)];
          return ravel(in, dims);
        });
        auto y = run("GatherElements", {feed("x", x), feed("i", ge)},
                     {ir::Attribute::makeInt("axis", static_cast<int64_t>(axis))});
        requireBitwiseEqual(expectedElements, y[0]);
      }
    }
  }
  ir::Tensor data = floats({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  auto y = run("GatherND",
               {feed("x", data),
                init("i", ir::Tensor::fromVector(DataType::kInt64, {2, 1, 2}, std::vector<int64_t>{0, 1, 1, 0}))},
               {ir::Attribute::makeInt("batch_dims", 1)});
  CHECK(y[0].dims() == std::vector<int64_t>{2, 1});
  CHECK(y[0].data<float>()[0] == 1.0f);
  CHECK(y[0].data<float>()[1] == 6.0f);
  CHECK(!tryRun("Gather", {feed("x", data), init("i", ints({2}))}, {}).status.isOk());
}

TEST_CASE("Expand, Tile, DepthToSpace and SpaceToDepth match the reference", "[kernels][shape]") {
  uint64_t seed = 500;
  for (int threads : testing::kThreadCounts) {
    for (DataType dt : kByteTypes) {
      ir::Tensor x = randomTensor(dt, {3, 1, 17}, seed++);
      std::vector<int64_t> outDims = {2, 3, 65, 17};
      auto y = run("Expand", {feed("x", x), init("s", ints({2, 1, 65, 1}))}, {}, 1, 18, threads);
      requireBitwiseEqual(gatherReference(x, outDims, [](const std::vector<int64_t>& o) { return o[1] * 17 + o[3]; }),
                          y[0]);
      y = run("Tile", {feed("x", x), init("r", ints({2, 65, 3}))}, {}, 1, 18, threads);
      requireBitwiseEqual(
          gatherReference(x, {6, 65, 51}, [](const std::vector<int64_t>& o) { return (o[0] % 3) * 17 + o[2] % 17; }),
          y[0]);
      ir::Tensor img = randomTensor(dt, {2, 36, 5, 7}, seed++);
      for (std::string mode : {"DCR", "CRD"}) {
        y = run("DepthToSpace", {feed("x", img)},
                {ir::Attribute::makeInt("blocksize", 3), ir::Attribute::makeString("mode", mode)}, 1, 18, threads);
        requireBitwiseEqual(gatherReference(img, {2, 4, 15, 21},
                                            [&](const std::vector<int64_t>& o) {
                                              int64_t i = o[2] % 3, j = o[3] % 3;
                                              int64_t c = mode == "DCR" ? (i * 3 + j) * 4 + o[1] : o[1] * 9 + i * 3 + j;
                                              return ravel({o[0], c, o[2] / 3, o[3] / 3}, {2, 36, 5, 7});
                                            }),
                            y[0]);
      }
      auto back = run("SpaceToDepth",
                      {feed("x", run("DepthToSpace", {feed("x", img)}, {ir::Attribute::makeInt("blocksize", 3)})[0])},
                      {ir::Attribute::makeInt("blocksize", 3)}, 1, 18, threads);
      requireBitwiseEqual(img, back[0]);
    }
  }
}

TEST_CASE("Pad matches the reference in every mode", "[kernels][shape]") {
  uint64_t seed = 700;
  for (std::string mode : {"constant", "reflect", "edge", "wrap"}) {
    for (const auto& dims : kShapes) {
      if (testing::numel(dims) == 0) continue;
      for (DataType dt : {DataType::kFloat, DataType::kInt8, DataType::kFloat16}) {
        ir::Tensor x = randomTensor(dt, dims, seed++);
        size_t rank = dims.size();
        std::vector<int64_t> pads(2 * rank);
        std::mt19937_64 rng(seed++);
        for (size_t k = 0; k < rank; ++k) {
          int64_t limit = mode == "reflect" ? dims[k] - 1 : 3;
          pads[k] = static_cast<int64_t>(rng() % static_cast<uint64_t>(limit + 1));
          pads[k + rank] = static_cast<int64_t>(rng() % static_cast<uint64_t>(limit + 1));
          if (mode == "constant" && dims[k] > 2 && rng() % 2 == 0) pads[k] = -1;  // cropping
        }
        std::vector<int64_t> outDims(rank);
        for (size_t k = 0; k < rank; ++k) outDims[k] = dims[k] + pads[k] + pads[k + rank];
        ir::Tensor value = randomTensor(dt, {}, seed++);
        ir::Tensor expected = gatherReference(
            x, outDims,
            [&](const std::vector<int64_t>& o) {
              std::vector<int64_t> in(rank);
              for (size_t k = 0; k < rank; ++k) {
                int64_t p = o[k] - pads[k], d = dims[k];
                if (p < 0 || p >= d) {
                  if (mode == "constant") return int64_t{-1};
                  if (mode == "edge") p = std::clamp<int64_t>(p, 0, d - 1);
                  if (mode == "wrap") p = ((p % d) + d) % d;
                  if (mode == "reflect") p = p < 0 ? -p : 2 * (d - 1) - p;
                }
                in[k] = p;
              }
              return ravel(in, dims);
            },
            value.rawData());
        for (int threads : testing::kThreadCounts) {
          INFO(mode << " dims " << cpu::shapeToString(dims) << " pads " << cpu::shapeToString(pads));
          auto y = run("Pad", {feed("x", x), init("p", ints(pads)), init("v", value)},
                       {ir::Attribute::makeString("mode", mode)}, 1, 19, threads);
          requireBitwiseEqual(expected, y[0]);
        }
      }
    }
  }
  // Opset 2: pads and value as attributes; opset 18: axes.
  ir::Tensor x = floats({2, 2}, {1, 2, 3, 4});
  auto y = run("Pad", {feed("x", x)},
               {ir::Attribute::makeInts("pads", {0, 1, 0, 0}), ir::Attribute::makeFloat("value", 9)}, 1, 7);
  CHECK(y[0].dims() == std::vector<int64_t>{2, 3});
  CHECK(y[0].data<float>()[0] == 9.0f);
  y = run("Pad", {feed("x", x), init("p", ints({1, 1})), none(), init("a", ints({-1}))}, {}, 1, 18);
  CHECK(y[0].dims() == std::vector<int64_t>{2, 4});
  CHECK(y[0].data<float>()[1] == 1.0f);
  // The innermost axis as runs: padding before and cropping after, and reflect on both sides.
  ir::Tensor row = floats({1, 5}, {1, 2, 3, 4, 5});
  y = run("Pad", {feed("x", row), init("p", ints({0, 2, 0, -1}))}, {}, 1, 18);
  requireBitwiseEqual(floats({1, 6}, {0, 0, 1, 2, 3, 4}), y[0]);
  y = run("Pad", {feed("x", row), init("p", ints({0, 3, 0, 2}))}, {ir::Attribute::makeString("mode", "reflect")}, 1,
          18);
  requireBitwiseEqual(floats({1, 10}, {4, 3, 2, 1, 2, 3, 4, 5, 4, 3}), y[0]);
  // Unpadded trailing axes move as blocks: along H of [1, 2, 3, 2], constant and reflect.
  ir::Tensor img = floats({1, 2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  y = run("Pad", {feed("x", img), init("p", ints({0, 0, 1, 0, 0, 0, 1, 0}))}, {}, 1, 18);
  requireBitwiseEqual(floats({1, 2, 5, 2}, {0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0}), y[0]);
  y = run("Pad", {feed("x", img), init("p", ints({0, 0, 2, 0, 0, 0, 1, 0}))},
          {ir::Attribute::makeString("mode", "reflect")}, 1, 18);
  requireBitwiseEqual(
      floats({1, 2, 6, 2}, {5, 6, 3, 4, 1, 2, 3, 4, 5, 6, 3, 4, 11, 12, 9, 10, 7, 8, 9, 10, 11, 12, 9, 10}), y[0]);
}

namespace {

/// Resize in double for 4-D NCHW input, straight from the ONNX formulas (no separability).
std::vector<double> resizeReference(const ir::Tensor& x, const std::vector<int64_t>& outDims, const std::string& mode,
                                    const std::string& coord, const std::string& nearestMode) {
  const auto& d = x.dims();
  std::vector<double> y(static_cast<size_t>(testing::numel(outDims)));
  auto source = [&](int64_t o, int64_t in, int64_t out) {
    double scale = static_cast<double>(out) / static_cast<double>(in);
    if (coord == "asymmetric") return o / scale;
    if (coord == "align_corners") return out == 1 ? 0.0 : o * (in - 1.0) / (out - 1.0);
    if (coord == "pytorch_half_pixel") return out == 1 ? -0.5 : (o + 0.5) / scale - 0.5;
    return (o + 0.5) / scale - 0.5;
  };
  auto cubicWeight = [](double t) {
    double a = -0.75;
    t = std::fabs(t);
    if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    return 0.0;
  };
  auto at = [&](int64_t n, int64_t c, int64_t h, int64_t w) {
    h = std::clamp<int64_t>(h, 0, d[2] - 1);
    w = std::clamp<int64_t>(w, 0, d[3] - 1);
    return x.valueAsDouble(((n * d[1] + c) * d[2] + h) * d[3] + w);
  };
  for (int64_t i = 0; i < testing::numel(outDims); ++i) {
    auto o = unravel(i, outDims);
    double sy = source(o[2], d[2], outDims[2]), sx = source(o[3], d[3], outDims[3]);
    double v = 0;
    if (mode == "nearest") {
      auto round = [&](double s) {
        double f = std::floor(s), r = s - f;
        if (nearestMode == "floor") return static_cast<int64_t>(f);
        if (nearestMode == "ceil") return static_cast<int64_t>(std::ceil(s));
        if (nearestMode == "round_prefer_ceil") return static_cast<int64_t>(r < 0.5 ? f : f + 1);
        return static_cast<int64_t>(r <= 0.5 ? f : f + 1);
      };
      v = at(o[0], o[1], round(sy), round(sx));
    } else if (mode == "linear") {
      sy = std::clamp(sy, 0.0, d[2] - 1.0);
      sx = std::clamp(sx, 0.0, d[3] - 1.0);
      auto y0 = static_cast<int64_t>(std::floor(sy)), x0 = static_cast<int64_t>(std::floor(sx));
      double ly = sy - y0, lx = sx - x0;
      v = (1 - ly) * ((1 - lx) * at(o[0], o[1], y0, x0) + lx * at(o[0], o[1], y0, x0 + 1)) +
          ly * ((1 - lx) * at(o[0], o[1], y0 + 1, x0) + lx * at(o[0], o[1], y0 + 1, x0 + 1));
    } else {
      auto y0 = static_cast<int64_t>(std::floor(sy)), x0 = static_cast<int64_t>(std::floor(sx));
      for (int64_t a = -1; a <= 2; ++a) {
        for (int64_t b = -1; b <= 2; ++b) {
          v += cubicWeight(sy - static_cast<double>(y0 + a)) * cubicWeight(sx - static_cast<double>(x0 + b)) *
               at(o[0], o[1], y0 + a, x0 + b);
        }
      }
    }
    y[static_cast<size_t>(i)] = v;
  }
  return y;
}

}  // namespace

TEST_CASE("Resize matches the reference for nearest, linear and cubic on NCHW", "[kernels][shape]") {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
      {{1, 2, 4, 4}, {1, 2, 8, 8}},     {{1, 3, 15, 17}, {1, 3, 30, 34}}, {{2, 2, 16, 16}, {2, 2, 33, 31}},
      {{1, 1, 64, 65}, {1, 1, 32, 33}}, {{1, 2, 5, 7}, {1, 2, 5, 14}},    {{1, 1, 3, 1}, {1, 1, 7, 1}},
      {{1, 4, 40, 40}, {1, 4, 80, 80}}};
  uint64_t seed = 900;
  for (const auto& [inDims, outDims] : cases) {
    ir::Tensor x = randomTensor(DataType::kFloat, inDims, seed++);
    for (std::string mode : {"nearest", "linear", "cubic"}) {
      for (std::string coord : {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"}) {
        for (std::string nearestMode : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
          if (mode != "nearest" && nearestMode != "round_prefer_floor") continue;
          std::vector<double> expected = resizeReference(x, outDims, mode, coord, nearestMode);
          for (int threads : testing::kThreadCounts) {
            INFO(mode << " " << coord << " " << nearestMode << " " << cpu::shapeToString(inDims) << " -> "
                      << cpu::shapeToString(outDims) << " threads " << threads);
            auto y = run("Resize", {feed("x", x), none(), none(), init("sizes", ints(outDims))},
                         {ir::Attribute::makeString("mode", mode),
                          ir::Attribute::makeString("coordinate_transformation_mode", coord),
                          ir::Attribute::makeString("nearest_mode", nearestMode)},
                         1, 19, threads);
            REQUIRE(y[0].dims() == outDims);
            for (size_t i = 0; i < expected.size(); ++i) {
              REQUIRE(y[0].data<float>()[i] == Approx(expected[i]).margin(1e-5).epsilon(1e-5));
            }
          }
        }
      }
    }
  }
  // Nearest by scales on integer and float16 data moves the same bytes as float does.
  for (DataType dt : {DataType::kInt8, DataType::kFloat16, DataType::kInt64}) {
    ir::Tensor x = randomTensor(dt, {1, 3, 5, 6}, seed++);
    auto y = run("Resize", {feed("x", x), none(), init("scales", floats({4}, {1, 1, 2, 2}))},
                 {ir::Attribute::makeString("coordinate_transformation_mode", "asymmetric"),
                  ir::Attribute::makeString("nearest_mode", "floor")},
                 1, 13);
    requireBitwiseEqual(gatherReference(x, {1, 3, 10, 12},
                                        [](const std::vector<int64_t>& o) {
                                          return ravel({0, o[1], o[2] / 2, o[3] / 2}, {1, 3, 5, 6});
                                        }),
                        y[0]);
  }
  // float16 linear goes through float32.
  ir::Tensor x = randomTensor(DataType::kFloat16, {1, 2, 6, 6}, seed++);
  auto y = run("Resize", {feed("x", x), none(), init("scales", floats({4}, {1, 1, 2, 2}))},
               {ir::Attribute::makeString("mode", "linear")}, 1, 13);
  std::vector<double> expected = resizeReference(x, {1, 2, 12, 12}, "linear", "half_pixel", "");
  for (size_t i = 0; i < expected.size(); ++i)
    REQUIRE(y[0].valueAsDouble(static_cast<int64_t>(i)) == Approx(expected[i]).margin(1e-2));
  // Upsample-7 (attribute scales) and Upsample-9 (input scales), nearest.
  ir::Tensor small = floats({1, 1, 2, 2}, {1, 2, 3, 4});
  y = run("Upsample", {feed("x", small)}, {ir::Attribute::makeFloats("scales", {1, 1, 2, 3})}, 1, 7);
  CHECK(y[0].dims() == std::vector<int64_t>{1, 1, 4, 6});
  CHECK(y[0].data<float>()[5] == 2.0f);
  y = run("Upsample", {feed("x", small), init("s", floats({4}, {1, 1, 2, 2}))},
          {ir::Attribute::makeString("mode", "linear")}, 1, 9);
  CHECK(y[0].data<float>()[1] == Approx(1.5));
  CHECK(y[0].data<float>()[3] == Approx(2.0));
}

TEST_CASE("TopK, CumSum, Trilu, OneHot, NonZero and the scatters", "[kernels][shape]") {
  // TopK: ties go to the lower index, for largest and smallest, at 1 and 2 threads.
  ir::Tensor x = floats({2, 6}, {3, 1, 3, 2, 3, 1, 0, 0, 5, 5, -1, 0});
  for (int threads : testing::kThreadCounts) {
    auto y = run("TopK", {feed("x", x), init("k", ints({3}))}, {}, 2, 11, threads);
    CHECK(std::vector<int64_t>(y[1].data<int64_t>(), y[1].data<int64_t>() + 6) ==
          std::vector<int64_t>{0, 2, 4, 2, 3, 0});
    y = run("TopK", {feed("x", x), init("k", ints({2}))}, {ir::Attribute::makeInt("largest", 0)}, 2, 11, threads);
    CHECK(std::vector<int64_t>(y[1].data<int64_t>(), y[1].data<int64_t>() + 4) == std::vector<int64_t>{1, 5, 4, 0});
    CHECK(y[0].data<float>()[2] == -1.0f);
  }
  auto y = run("TopK", {feed("x", x), init("k", ints({1}))}, {ir::Attribute::makeInt("axis", 0)}, 2, 11);
  CHECK(std::vector<int64_t>(y[1].data<int64_t>(), y[1].data<int64_t>() + 6) == std::vector<int64_t>{0, 0, 1, 1, 0, 0});

  ir::Tensor c = ir::Tensor::fromVector(DataType::kInt32, {2, 3}, std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  y = run("CumSum", {feed("x", c), init("a", scalarInt(1))},
          {ir::Attribute::makeInt("exclusive", 1), ir::Attribute::makeInt("reverse", 1)});
  CHECK(std::vector<int32_t>(y[0].data<int32_t>(), y[0].data<int32_t>() + 6) ==
        std::vector<int32_t>{5, 3, 0, 11, 6, 0});

  ir::Tensor m = floats({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  y = run("Trilu", {feed("x", m), init("k", scalarInt(-1))}, {ir::Attribute::makeInt("upper", 0)});
  CHECK(std::vector<float>(y[0].data<float>(), y[0].data<float>() + 12) ==
        std::vector<float>{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});

  y = run("OneHot", {feed("i", ints({1, -1, 5})), init("d", scalarInt(3)), init("v", floats({2}, {0, 7}))},
          {ir::Attribute::makeInt("axis", 0)}, 1, 11);
  CHECK(y[0].dims() == std::vector<int64_t>{3, 3});
  CHECK(std::vector<float>(y[0].data<float>(), y[0].data<float>() + 9) ==
        std::vector<float>{0, 0, 0, 7, 0, 0, 0, 7, 0});

  y = run("NonZero", {feed("x", floats({2, 2}, {0, -0.0f, 3, 1}))}, {}, 1, 13);
  CHECK(y[0].dims() == std::vector<int64_t>{2, 2});
  CHECK(std::vector<int64_t>(y[0].data<int64_t>(), y[0].data<int64_t>() + 4) == std::vector<int64_t>{1, 1, 0, 1});

  ir::Tensor data = floats({2, 3}, {1, 1, 1, 1, 1, 1});
  ir::Tensor idx = ir::Tensor::fromVector(DataType::kInt64, {1, 3}, std::vector<int64_t>{1, 1, -2});
  ir::Tensor upd = floats({1, 3}, {2, 3, 4});
  y = run("ScatterElements", {feed("x", data), init("i", idx), init("u", upd)},
          {ir::Attribute::makeInt("axis", 1), ir::Attribute::makeString("reduction", "mul")});
  CHECK(std::vector<float>(y[0].data<float>(), y[0].data<float>() + 6) == std::vector<float>{1, 24, 1, 1, 1, 1});
  y = run("ScatterND",
          {feed("x", data), init("i", ir::Tensor::fromVector(DataType::kInt64, {1, 1}, std::vector<int64_t>{1})),
           init("u", floats({1, 3}, {5, 6, 7}))},
          {ir::Attribute::makeString("reduction", "add")});
  CHECK(std::vector<float>(y[0].data<float>(), y[0].data<float>() + 6) == std::vector<float>{1, 1, 1, 6, 7, 8});
}

TEST_CASE("Shape, Size, Constant, ConstantOfShape, Range and EyeLike", "[kernels][shape]") {
  ir::Tensor x = randomTensor(DataType::kFloat, {2, 3, 4}, 1);
  auto y = run("Shape", {feed("x", x)}, {ir::Attribute::makeInt("start", -2), ir::Attribute::makeInt("end", 100)});
  CHECK(std::vector<int64_t>(y[0].data<int64_t>(), y[0].data<int64_t>() + 2) == std::vector<int64_t>{3, 4});
  y = run("Size", {feed("x", x)}, {});
  CHECK(y[0].data<int64_t>()[0] == 24);
  y = run("Constant", {}, {ir::Attribute::makeInts("value_ints", {4, 5})});
  CHECK(y[0].dims() == std::vector<int64_t>{2});
  CHECK(y[0].data<int64_t>()[1] == 5);
  ir::Tensor v = ir::Tensor::fromVector(DataType::kInt8, {1}, std::vector<int8_t>{-3});
  y = run("ConstantOfShape", {feed("s", ints({2, 65}))}, {ir::Attribute::makeTensor("value", v)});
  CHECK(y[0].dtype() == DataType::kInt8);
  CHECK(y[0].data<int8_t>()[129] == -3);
  y = run("Range", {feed("a", scalarInt(10)), feed("b", scalarInt(-3)), feed("c", scalarInt(-4))}, {});
  CHECK(std::vector<int64_t>(y[0].data<int64_t>(), y[0].data<int64_t>() + 4) == std::vector<int64_t>{10, 6, 2, -2});
  y = run("EyeLike", {feed("x", x.dims().size() == 3 ? randomTensor(DataType::kInt32, {2, 3}, 2) : x)},
          {ir::Attribute::makeInt("k", 1), ir::Attribute::makeInt("dtype", static_cast<int64_t>(DataType::kFloat))});
  CHECK(std::vector<float>(y[0].data<float>(), y[0].data<float>() + 6) == std::vector<float>{0, 1, 0, 0, 0, 1});
}

TEST_CASE("Shape ops reject bad input and name unsupported dtypes", "[kernels][shape]") {
  ir::Tensor s = ir::Tensor::strings({2}, {"a", "b"});
  RunResult r = tryRun("Transpose", {feed("x", s)}, {});
  CHECK(r.status.code() == StatusCode::kUnimplemented);
  CHECK(r.status.message().find("string") != std::string::npos);
  ir::Tensor x = floats({2, 2}, {1, 2, 3, 4});
  r = tryRun("Concat", {feed("a", x), feed("b", floats({3, 3}, std::vector<float>(9)))},
             {ir::Attribute::makeInt("axis", 0)});
  CHECK(r.status.code() == StatusCode::kInvalidInput);
  // Scalars have no axis (found by fuzz_optimize: fold-constants evaluated a Concat of two
  // scalars and wrote past the empty output shape).
  r = tryRun("Concat", {feed("a", floats({}, {1})), feed("b", floats({}, {2}))}, {ir::Attribute::makeInt("axis", 0)});
  CHECK(r.status.code() == StatusCode::kInvalidInput);
  CHECK_THAT(r.status.message(), Catch::Contains("input 0 is a scalar (rank 0): Concat joins tensors of rank >= 1"));
  r = tryRun("Gather", {feed("data", floats({}, {1})), init("i", ints({0}))}, {ir::Attribute::makeInt("axis", 0)});
  CHECK(r.status.code() == StatusCode::kInvalidInput);
  CHECK_THAT(r.status.message(), Catch::Contains("data is a scalar (rank 0): it has no axis 0"));
  r = tryRun("Split", {feed("input", floats({}, {1}))}, {ir::Attribute::makeInt("axis", 0)}, 2, 11);
  CHECK(r.status.code() == StatusCode::kInvalidInput);
  r = tryRun("Resize",
             {feed("x", ir::Tensor::fromVector(DataType::kInt32, {1, 1, 2, 2}, std::vector<int32_t>{1, 2, 3, 4})),
              none(), init("s", floats({4}, {1, 1, 2, 2}))},
             {ir::Attribute::makeString("mode", "linear")}, 1, 13);
  CHECK(r.status.code() == StatusCode::kUnimplemented);
  r = tryRun("Pad", {feed("x", x), init("p", ints({1, 1, 1, 1}))}, {ir::Attribute::makeString("mode", "wrap")}, 1, 18);
  CHECK(r.status.code() == StatusCode::kUnimplemented);
}

TEST_CASE("ops that index an axis refuse a scalar input with an error, and CumSum sums a scalar as one element",
          "[kernels][shape]") {
  // Each of these let axis 0 through for a rank-0 input and then indexed an empty shape.
  ir::Tensor s = floats({}, {3});
  auto refuses = [](const RunResult& r, const char* op) {
    INFO(op << ": " << r.status.message());
    CHECK(r.status.code() == StatusCode::kInvalidInput);
    CHECK_THAT(r.status.message(), Catch::Contains("out of range for rank 0") || Catch::Contains("scalar"));
  };
  refuses(tryRun("Squeeze", {feed("x", s)}, {ir::Attribute::makeInts("axes", {0})}, 1, 11), "Squeeze");
  refuses(tryRun("Slice", {feed("x", s), init("b", ints({0})), init("e", ints({1})), init("a", ints({0}))}, {}),
          "Slice");
  refuses(tryRun("Pad", {feed("x", s), init("p", ints({1, 1})), none(), init("a", ints({0}))}, {}), "Pad");
  ir::Tensor cond = ir::Tensor::fromVector(DataType::kBool, {1}, std::vector<uint8_t>{1});
  refuses(tryRun("Compress", {feed("x", s), init("c", cond)}, {ir::Attribute::makeInt("axis", 0)}), "Compress");
  refuses(tryRun("Unique", {feed("x", s)}, {ir::Attribute::makeInt("axis", 0)}, 4, 11), "Unique");
  refuses(tryRun("CenterCropPad", {feed("x", s), init("shape", ints({1}))}, {ir::Attribute::makeInts("axes", {0})}),
          "CenterCropPad");
  refuses(tryRun("Resize", {feed("x", s), none(), init("sc", floats({1}, {2}))},
                 {ir::Attribute::makeInts("axes", {0}), ir::Attribute::makeString("mode", "nearest")}),
          "Resize");
  auto y = run("CumSum", {feed("x", s), init("a", scalarInt(0))}, {});
  REQUIRE(y[0].rank() == 0);
  CHECK(y[0].data<float>()[0] == 3.0f);
}
