// The rest of the shape family: TopK, Trilu, CumSum, ReverseSequence.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "cpu/shape_internal.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

std::string dtypeName(ir::DataType t) {
  return std::string(ir::dataTypeName(t));
}

// ---- TopK ----

/// Selects the top k of every row along `axis`; ties go to the lower index. `Key` reads an
/// element as a comparable value.
template <typename K, typename ReadKey>
void topKRows(const ir::Tensor& x, int64_t axis, int64_t k, bool largest, ReadKey readKey, std::byte* values,
              int64_t* indices) {
  const auto& dims = x.dims();
  auto a = static_cast<size_t>(axis);
  int64_t outer = dimProduct(dims, 0, a), n = dims[a], inner = dimProduct(dims, a + 1, dims.size());
  size_t es = ir::elementSize(x.dtype());
  const std::byte* src = x.rawData();
  int64_t rows = outer * inner;
  bool parallel = rows > 1 && rows * n > kShapeParallelGrain;
#pragma omp parallel if (parallel)
  {
    std::vector<K> keys(static_cast<size_t>(n));
    std::vector<int64_t> order(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t o = row / inner, i = row % inner;
      int64_t base = o * n * inner + i;
      for (int64_t j = 0; j < n; ++j) keys[static_cast<size_t>(j)] = readKey(base + j * inner);
      std::iota(order.begin(), order.end(), int64_t{0});
      // NaN ranks above every number (as in numpy and ONNX Runtime); ties go to the lower index.
      auto cmp = [&](int64_t l, int64_t r) {
        K kl = keys[static_cast<size_t>(l)], kr = keys[static_cast<size_t>(r)];
        if constexpr (std::is_floating_point_v<K>) {
          bool nl = std::isnan(kl), nr = std::isnan(kr);
          if (nl || nr) return nl && nr ? l < r : (largest ? nl : nr);
        }
        if (kl != kr) return largest ? kl > kr : kl < kr;
        return l < r;
      };
      if (k < n) {
        std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
      } else {
        std::sort(order.begin(), order.end(), cmp);
      }
      int64_t outBase = o * k * inner + i;
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = outBase + j * inner;
        int64_t from = order[static_cast<size_t>(j)];
        indices[at] = from;
        std::memcpy(values + static_cast<size_t>(at) * es, src + static_cast<size_t>(base + from * inner) * es, es);
      }
    }
  }
}

KernelPtr makeTopK(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", -1);
  bool largest = info.node.attrInt("largest", 1) != 0;
  bool kFromAttribute = info.opset < 10;
  int64_t kAttr = info.node.attrInt("k", -1);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(int64_t axis, existingAxisOrError(ctx, axisAttr, x.rank(), "axis", "X"));
    int64_t k = kAttr;
    if (!kFromAttribute) {
      WH_ASSIGN_OR_RETURN(auto kv, readIntInput(ctx, 1, "K"));
      if (kv.size() != 1) return ctx.error("K must hold one value");
      k = kv[0];
    }
    int64_t n = x.dims()[static_cast<size_t>(axis)];
    if (k < 0 || k > n)
      return ctx.error("K " + std::to_string(k) + " is out of range for an axis of size " + std::to_string(n));
    std::vector<int64_t> outDims = x.dims();
    outDims[static_cast<size_t>(axis)] = k;
    ir::Tensor& values = ctx.allocateOutput(0, x.dtype(), outDims);
    std::byte* valueData = values.mutableRawData();
    int64_t* indexData = ctx.allocateOutput(1, ir::DataType::kInt64, outDims).mutableData<int64_t>();
    if (values.numel() == 0) return Status::ok();
    ir::DataType dt = x.dtype();
    if (dt == ir::DataType::kFloat16 || dt == ir::DataType::kBFloat16) {
      const auto* p = x.data<uint16_t>();
      bool bf = dt == ir::DataType::kBFloat16;
      topKRows<float>(
          x, axis, k, largest, [&](int64_t i) { return bf ? ir::bfloat16ToFloat(p[i]) : ir::halfToFloat(p[i]); },
          valueData, indexData);
      return Status::ok();
    }
    if (dt == ir::DataType::kBool) return ctx.unsupported("dtype bool is not supported");
    bool ok = dispatchNumeric(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* p = x.data<T>();
      topKRows<T>(
          x, axis, k, largest, [&](int64_t i) { return p[i]; }, valueData, indexData);
    });
    if (!ok) return ctx.unsupported("dtype " + dtypeName(dt) + " is not supported");
    return Status::ok();
  });
}

// ---- Trilu ----

KernelPtr makeTrilu(const KernelCreateInfo& info) {
  bool upper = info.node.attrInt("upper", 1) != 0;
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    if (x.rank() < 2) return ctx.error("input must have rank 2 or more, got " + shapeToString(x.dims()));
    int64_t k = 0;
    if (ctx.hasInput(1)) {
      WH_ASSIGN_OR_RETURN(auto kv, readIntInput(ctx, 1, "k"));
      if (kv.size() != 1) return ctx.error("k must be a scalar");
      k = kv[0];
    }
    size_t es = ir::elementSize(x.dtype());
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), x.dims());
    int64_t rows = x.dims()[x.dims().size() - 2], cols = x.dims().back();
    int64_t matrices = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
    const std::byte* src = x.rawData();
    std::byte* dst = out.mutableRawData();
    for (int64_t m = 0; m < matrices * rows; ++m) {
      int64_t r = m % rows;
      size_t rowOffset = static_cast<size_t>(m * cols) * es;
      // Kept columns: upper j >= r + k, lower j <= r + k.
      int64_t lo = upper ? std::clamp<int64_t>(r + k, 0, cols) : 0;
      int64_t hi = upper ? cols : std::clamp<int64_t>(r + k + 1, 0, cols);
      if (hi < lo) hi = lo;
      std::memset(dst + rowOffset, 0, static_cast<size_t>(lo) * es);
      std::memcpy(dst + rowOffset + static_cast<size_t>(lo) * es, src + rowOffset + static_cast<size_t>(lo) * es,
                  static_cast<size_t>(hi - lo) * es);
      std::memset(dst + rowOffset + static_cast<size_t>(hi) * es, 0, static_cast<size_t>(cols - hi) * es);
    }
    return Status::ok();
  });
}

// ---- CumSum ----

template <typename T>
void cumSum(const T* src, T* dst, int64_t outer, int64_t n, int64_t inner, bool exclusive, bool reverse) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t step = 0; step < n; ++step) {
      int64_t j = reverse ? n - 1 - step : step;
      int64_t prev = reverse ? j + 1 : j - 1;
      T* d = dst + (o * n + j) * inner;
      if (step == 0) {
        for (int64_t i = 0; i < inner; ++i) d[i] = exclusive ? T(0) : src[(o * n + j) * inner + i];
        continue;
      }
      const T* dp = dst + (o * n + prev) * inner;
      const T* s = src + (o * n + (exclusive ? prev : j)) * inner;
      for (int64_t i = 0; i < inner; ++i) d[i] = static_cast<T>(dp[i] + s[i]);
    }
  }
}

KernelPtr makeCumSum(const KernelCreateInfo& info) {
  bool exclusive = info.node.attrInt("exclusive", 0) != 0;
  bool reverse = info.node.attrInt("reverse", 0) != 0;
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_ASSIGN_OR_RETURN(auto axisValues, readIntInput(ctx, 1, "axis"));
    if (axisValues.size() != 1) return ctx.error("axis must be a scalar");
    // A scalar is summed as one element along axis 0 (or -1).
    WH_ASSIGN_OR_RETURN(int64_t axis, normalizeAxisOrError(ctx, axisValues[0], std::max<int64_t>(x.rank(), 1), "axis"));
    auto a = static_cast<size_t>(axis);
    int64_t outer = dimProduct(x.dims(), 0, a), n = x.rank() == 0 ? 1 : x.dims()[a];
    int64_t inner = dimProduct(x.dims(), a + 1, x.dims().size());
    ir::DataType dt = x.dtype();
    if (dt == ir::DataType::kFloat16 || dt == ir::DataType::kBFloat16) {
      ir::Tensor wide = toFloat32(x);
      ir::Tensor sum(ir::DataType::kFloat, x.dims());
      cumSum(wide.data<float>(), sum.mutableData<float>(), outer, n, inner, exclusive, reverse);
      ir::Tensor narrow = fromFloat32(sum, dt);
      ir::Tensor& out = ctx.allocateOutput(0, dt, x.dims());
      std::memcpy(out.mutableRawData(), narrow.rawData(), static_cast<size_t>(x.numel()) * 2);
      return Status::ok();
    }
    ir::Tensor& out = ctx.allocateOutput(0, dt, x.dims());
    switch (dt) {
      case ir::DataType::kFloat:
        cumSum(x.data<float>(), out.mutableData<float>(), outer, n, inner, exclusive, reverse);
        break;
      case ir::DataType::kDouble:
        cumSum(x.data<double>(), out.mutableData<double>(), outer, n, inner, exclusive, reverse);
        break;
      case ir::DataType::kInt32:
        cumSum(x.data<int32_t>(), out.mutableData<int32_t>(), outer, n, inner, exclusive, reverse);
        break;
      case ir::DataType::kInt64:
        cumSum(x.data<int64_t>(), out.mutableData<int64_t>(), outer, n, inner, exclusive, reverse);
        break;
      case ir::DataType::kUint32:
        cumSum(x.data<uint32_t>(), out.mutableData<uint32_t>(), outer, n, inner, exclusive, reverse);
        break;
      case ir::DataType::kUint64:
        cumSum(x.data<uint64_t>(), out.mutableData<uint64_t>(), outer, n, inner, exclusive, reverse);
        break;
      default:
        return ctx.unsupported("dtype " + dtypeName(dt) + " is not supported");
    }
    return Status::ok();
  });
}

// ---- ReverseSequence ----

KernelPtr makeReverseSequence(const KernelCreateInfo& info) {
  int64_t batchAxis = info.node.attrInt("batch_axis", 1);
  int64_t timeAxis = info.node.attrInt("time_axis", 0);
  if (!((batchAxis == 0 && timeAxis == 1) || (batchAxis == 1 && timeAxis == 0))) {
    return info.error("batch_axis and time_axis must be 0 and 1 in some order");
  }
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, x.dtype()));
    if (x.rank() < 2) return ctx.error("input must have rank 2 or more");
    WH_ASSIGN_OR_RETURN(auto lens, readIntInput(ctx, 1, "sequence_lens"));
    int64_t batch = x.dims()[static_cast<size_t>(batchAxis)], time = x.dims()[static_cast<size_t>(timeAxis)];
    if (static_cast<int64_t>(lens.size()) != batch) return ctx.error("sequence_lens must hold one length per batch");
    size_t es = ir::elementSize(x.dtype());
    auto inner = static_cast<size_t>(dimProduct(x.dims(), 2, x.dims().size())) * es;
    std::vector<int64_t> strides = contiguousStrides(x.dims());
    auto bStride = static_cast<size_t>(strides[static_cast<size_t>(batchAxis)]) * es;
    auto tStride = static_cast<size_t>(strides[static_cast<size_t>(timeAxis)]) * es;
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), x.dims());
    const std::byte* src = x.rawData();
    std::byte* dst = out.mutableRawData();
    for (int64_t b = 0; b < batch; ++b) {
      int64_t len = lens[static_cast<size_t>(b)];
      if (len < 0 || len > time) return ctx.error("sequence length " + std::to_string(len) + " is out of range");
      for (int64_t t = 0; t < time; ++t) {
        int64_t from = t < len ? len - 1 - t : t;
        std::memcpy(dst + static_cast<size_t>(b) * bStride + static_cast<size_t>(t) * tStride,
                    src + static_cast<size_t>(b) * bStride + static_cast<size_t>(from) * tStride, inner);
      }
    }
    return Status::ok();
  });
}

}  // namespace

void registerShapeMiscKernels(KernelRegistry& registry) {
  registry.add("", "TopK", 1, makeTopK);
  registry.add("", "Trilu", 14, makeTrilu);
  registry.add("", "CumSum", 11, makeCumSum);
  registry.add("", "ReverseSequence", 10, makeReverseSequence);
}

}  // namespace whittle::runtime::cpu
