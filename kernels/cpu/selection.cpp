// Compress (opsets 9 and 11), Unique (opset 11) and CenterCropPad (opset 18): ops that select
// or place slices of their input. Compress and CenterCropPad move elements by their bytes
// (every fixed-size dtype); Unique compares values (numeric dtypes, bool, float16, bfloat16).
//
// Compress: output = the slices along `axis` (the flattened input without one) whose
//   condition entry is true; a condition shorter than the axis leaves the rest out.
// Unique: the distinct elements (or slices along `axis`), sorted ascending (lexicographically for
//   slices) or in order of first occurrence; with the index of each one's first occurrence,
//   the inverse mapping of every input element (slice) and the counts.
// CenterCropPad: per axis of `axes`, crops the centre (start (dim - size) / 2) or pads with
//   zeros around it (start (size - dim) / 2) to `shape`.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/shape_internal.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

// ---- Compress ----

KernelPtr makeCompress(const KernelCreateInfo& info) {
  bool hasAxis = info.node.hasAttribute("axis");
  int64_t axisAttr = info.node.attrInt("axis", 0);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& cond = ctx.input(1);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    if (cond.dtype() != ir::DataType::kBool)
      return ctx.error("condition must be bool, got " + std::string(ir::dataTypeName(cond.dtype())));
    if (cond.rank() != 1) return ctx.error("condition must be 1-D, got " + shapeToString(cond.dims()));
    std::vector<int64_t> dims = x.dims();
    int64_t axis = 0;
    if (hasAxis) {
      WH_ASSIGN_OR_RETURN(axis, normalizeAxisOrError(ctx, axisAttr, x.rank(), "axis"));
    } else {
      dims = {x.numel()};
    }
    auto a = static_cast<size_t>(axis);
    int64_t outer = dimProduct(dims, 0, a), n = dims[a], inner = dimProduct(dims, a + 1, dims.size());
    const auto* c = cond.data<uint8_t>();
    std::vector<int64_t> picked;
    for (int64_t i = 0; i < cond.numel(); ++i) {
      if (c[i] == 0) continue;
      if (i >= n)
        return ctx.error("condition is true at " + std::to_string(i) + ", past the axis of size " + std::to_string(n));
      picked.push_back(i);
    }
    std::vector<int64_t> outDims = dims;
    outDims[a] = static_cast<int64_t>(picked.size());
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), outDims);
    if (y.numel() == 0) return Status::ok();
    size_t rowBytes = static_cast<size_t>(inner) * ir::elementSize(x.dtype());
    const std::byte* src = x.rawData();
    std::byte* dst = y.mutableRawData();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i : picked) {
        std::memcpy(dst, src + static_cast<size_t>(o * n + i) * rowBytes, rowBytes);
        dst += rowBytes;
      }
    }
    return Status::ok();
  });
}

// ---- Unique ----

/// Reads element i of a numeric tensor as a comparable value (double keeps every int32 exactly;
/// int64 and uint64 are compared in their own type).
template <typename K>
std::vector<K> keysOf(const ir::Tensor& x) {
  std::vector<K> keys(static_cast<size_t>(x.numel()));
  ir::DataType dt = x.dtype();
  if (dt == ir::DataType::kFloat16 || dt == ir::DataType::kBFloat16) {
    const auto* p = x.data<uint16_t>();
    for (size_t i = 0; i < keys.size(); ++i)
      keys[i] = static_cast<K>(dt == ir::DataType::kBFloat16 ? ir::bfloat16ToFloat(p[i]) : ir::halfToFloat(p[i]));
    return keys;
  }
  dispatchNumeric(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = static_cast<K>(p[i]);
  });
  return keys;
}

template <typename K>
Status runUnique(KernelContext& ctx, const ir::Tensor& x, bool hasAxis, int64_t axis, bool sorted) {
  std::vector<K> keys = keysOf<K>(x);
  std::vector<int64_t> dims = hasAxis ? x.dims() : std::vector<int64_t>{x.numel()};
  auto a = static_cast<size_t>(hasAxis ? axis : 0);
  int64_t outer = dimProduct(dims, 0, a), n = dims[a], inner = dimProduct(dims, a + 1, dims.size());
  // Slice i is keys[o * n * inner + i * inner + j] over (o, j), in that order.
  auto cmp = [&](int64_t l, int64_t r) -> int {
    for (int64_t o = 0; o < outer; ++o) {
      const K* kl = keys.data() + (o * n + l) * inner;
      const K* kr = keys.data() + (o * n + r) * inner;
      for (int64_t j = 0; j < inner; ++j) {
        if (kl[j] < kr[j]) return -1;
        if (kr[j] < kl[j]) return 1;
      }
    }
    return 0;
  };
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t l, int64_t r) { return cmp(l, r) < 0; });
  // Groups of equal slices in sorted order; each group's first occurrence is its smallest index.
  std::vector<int64_t> groupOf(static_cast<size_t>(n));
  std::vector<int64_t> first, counts;
  for (size_t k = 0; k < order.size(); ++k) {
    if (k == 0 || cmp(order[k - 1], order[k]) != 0) {
      first.push_back(order[k]);
      counts.push_back(0);
    }
    groupOf[static_cast<size_t>(order[k])] = static_cast<int64_t>(first.size()) - 1;
    ++counts.back();
  }
  auto u = static_cast<int64_t>(first.size());
  std::vector<int64_t> rank(static_cast<size_t>(u));  // group -> output position
  std::iota(rank.begin(), rank.end(), int64_t{0});
  if (!sorted) {
    std::vector<int64_t> byFirst(static_cast<size_t>(u));
    std::iota(byFirst.begin(), byFirst.end(), int64_t{0});
    std::sort(byFirst.begin(), byFirst.end(),
              [&](int64_t l, int64_t r) { return first[static_cast<size_t>(l)] < first[static_cast<size_t>(r)]; });
    for (int64_t p = 0; p < u; ++p) rank[static_cast<size_t>(byFirst[static_cast<size_t>(p)])] = p;
  }
  std::vector<int64_t> outFirst(static_cast<size_t>(u)), outCounts(static_cast<size_t>(u));
  for (int64_t g = 0; g < u; ++g) {
    outFirst[static_cast<size_t>(rank[static_cast<size_t>(g)])] = first[static_cast<size_t>(g)];
    outCounts[static_cast<size_t>(rank[static_cast<size_t>(g)])] = counts[static_cast<size_t>(g)];
  }
  std::vector<int64_t> yDims = dims;
  yDims[a] = u;
  ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), yDims);
  size_t rowBytes = static_cast<size_t>(inner) * ir::elementSize(x.dtype());
  const std::byte* src = x.rawData();
  std::byte* dst = y.mutableRawData();
  for (int64_t o = 0; o < outer && rowBytes > 0; ++o) {
    for (int64_t p = 0; p < u; ++p) {
      std::memcpy(dst, src + static_cast<size_t>(o * n + outFirst[static_cast<size_t>(p)]) * rowBytes, rowBytes);
      dst += rowBytes;
    }
  }
  if (ctx.hasOutput(1)) std::copy(outFirst.begin(), outFirst.end(), ctx.allocateOutput(1, ir::DataType::kInt64, {u}).mutableData<int64_t>());
  if (ctx.hasOutput(2)) {
    int64_t* inv = ctx.allocateOutput(2, ir::DataType::kInt64, {n}).mutableData<int64_t>();
    for (int64_t i = 0; i < n; ++i) inv[i] = rank[static_cast<size_t>(groupOf[static_cast<size_t>(i)])];
  }
  if (ctx.hasOutput(3))
    std::copy(outCounts.begin(), outCounts.end(), ctx.allocateOutput(3, ir::DataType::kInt64, {u}).mutableData<int64_t>());
  return Status::ok();
}

KernelPtr makeUnique(const KernelCreateInfo& info) {
  bool hasAxis = info.node.hasAttribute("axis");
  int64_t axisAttr = info.node.attrInt("axis", 0);
  bool sorted = info.node.attrInt("sorted", 1) != 0;
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    int64_t axis = 0;
    if (hasAxis) {
      WH_ASSIGN_OR_RETURN(axis, normalizeAxisOrError(ctx, axisAttr, x.rank(), "axis"));
    }
    switch (x.dtype()) {
      case ir::DataType::kInt64: return runUnique<int64_t>(ctx, x, hasAxis, axis, sorted);
      case ir::DataType::kUint64: return runUnique<uint64_t>(ctx, x, hasAxis, axis, sorted);
      case ir::DataType::kFloat:
      case ir::DataType::kDouble:
      case ir::DataType::kFloat16:
      case ir::DataType::kBFloat16:
      case ir::DataType::kInt8:
      case ir::DataType::kInt16:
      case ir::DataType::kInt32:
      case ir::DataType::kUint8:
      case ir::DataType::kUint16:
      case ir::DataType::kUint32:
      case ir::DataType::kBool: return runUnique<double>(ctx, x, hasAxis, axis, sorted);
      default: return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    }
  });
}

// ---- CenterCropPad ----

KernelPtr makeCenterCropPad(const KernelCreateInfo& info) {
  bool hasAxes = info.node.hasAttribute("axes");
  std::vector<int64_t> axesAttr = info.node.attrInts("axes");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    WH_ASSIGN_OR_RETURN(auto shape, readIntInput(ctx, 1, "shape"));
    std::vector<int64_t> axes;
    if (hasAxes) {
      std::vector<bool> seen(static_cast<size_t>(x.rank()), false);
      for (int64_t a : axesAttr) {
        WH_ASSIGN_OR_RETURN(int64_t na, normalizeAxisOrError(ctx, a, x.rank(), "axes"));
        if (seen[static_cast<size_t>(na)]) return ctx.error("axes repeats axis " + std::to_string(na));
        seen[static_cast<size_t>(na)] = true;
        axes.push_back(na);
      }
    } else {
      for (int64_t a = 0; a < x.rank(); ++a) axes.push_back(a);
    }
    if (shape.size() != axes.size())
      return ctx.error("shape has " + std::to_string(shape.size()) + " values for " + std::to_string(axes.size()) +
                       " axes");
    const std::vector<int64_t>& in = x.dims();
    std::vector<int64_t> outDims = in, copyDims = in, srcStart(in.size(), 0), dstStart(in.size(), 0);
    for (size_t k = 0; k < axes.size(); ++k) {
      auto a = static_cast<size_t>(axes[k]);
      int64_t s = shape[k], d = in[a];
      if (s < 0) return ctx.error("shape " + shapeToString(shape) + " has a negative value");
      outDims[a] = s;
      copyDims[a] = std::min(s, d);
      if (s < d) srcStart[a] = (d - s) / 2;
      if (s > d) dstStart[a] = (s - d) / 2;
    }
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), outDims);
    if (y.numel() == 0) return Status::ok();
    size_t es = ir::elementSize(x.dtype());
    std::memset(y.mutableRawData(), 0, y.byteSize());
    if (dimProduct(copyDims) == 0) return Status::ok();
    std::vector<int64_t> srcStrides = contiguousStrides(in), dstStrides = contiguousStrides(outDims);
    int64_t srcOff = 0, dstOff = 0;
    for (size_t a = 0; a < in.size(); ++a) {
      srcOff += srcStart[a] * srcStrides[a];
      dstOff += dstStart[a] * dstStrides[a];
    }
    copyStrided(y.mutableRawData() + static_cast<size_t>(dstOff) * es, x.rawData() + static_cast<size_t>(srcOff) * es,
                copyDims, dstStrides, srcStrides, es);
    return Status::ok();
  });
}

}  // namespace

void registerSelectionKernels(KernelRegistry& registry) {
  registry.add("", "Compress", 9, makeCompress);
  registry.add("", "Unique", 11, makeUnique);
  registry.add("", "CenterCropPad", 18, makeCenterCropPad);
}

}  // namespace whittle::runtime::cpu
