// Indexing ops of the shape family: Gather, GatherElements, GatherND, Scatter (opset 9-10),
// ScatterElements, ScatterND, OneHot, NonZero. Gathers and plain scatters move elements by
// byte size (every fixed-size dtype); scatter reductions compute in the element type
// (float16/bfloat16 through float32).
#include <omp.h>

#include <cstring>

#include "cpu/shape_internal.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

std::string dtypeName(ir::DataType t) {
  return std::string(ir::dataTypeName(t));
}

// ---- Gather ----

KernelPtr makeGather(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", 0);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& data = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, data.dtype()));
    WH_ASSIGN_OR_RETURN(int64_t axis, existingAxisOrError(ctx, axisAttr, data.rank(), "axis", "data"));
    auto a = static_cast<size_t>(axis);
    int64_t axisDim = data.dims()[a];
    WH_ASSIGN_OR_RETURN(auto indices, readIndices(ctx, 1, axisDim, "index"));
    const auto& idxDims = ctx.input(1).dims();
    std::vector<int64_t> outDims(data.dims().begin(), data.dims().begin() + axis);
    outDims.insert(outDims.end(), idxDims.begin(), idxDims.end());
    outDims.insert(outDims.end(), data.dims().begin() + axis + 1, data.dims().end());
    ir::Tensor& out = ctx.allocateOutput(0, data.dtype(), outDims);
    size_t es = ir::elementSize(data.dtype());
    int64_t outer = dimProduct(data.dims(), 0, a);
    int64_t inner = dimProduct(data.dims(), a + 1, data.dims().size());
    auto n = static_cast<int64_t>(indices.size());
    const std::byte* src = data.rawData();
    std::byte* dst = out.mutableRawData();
    bool parallel = outer * n * inner > kShapeParallelGrain;
    if (inner == 1) {
      withElementSize(es, [&](auto size) {
        constexpr size_t kSize = decltype(size)::value;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t j = 0; j < n; ++j) {
            copyElement<kSize>(dst + static_cast<size_t>(o * n + j) * es,
                               src + static_cast<size_t>(o * axisDim + indices[static_cast<size_t>(j)]) * es, es);
          }
        }
      });
      return Status::ok();
    }
    size_t rowBytes = static_cast<size_t>(inner) * es;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t item = 0; item < outer * n; ++item) {
      int64_t o = item / n, j = item % n;
      std::memcpy(dst + static_cast<size_t>(item) * rowBytes,
                  src + static_cast<size_t>(o * axisDim + indices[static_cast<size_t>(j)]) * rowBytes, rowBytes);
    }
    return Status::ok();
  });
}

// ---- GatherElements, and the scatters that share its indexing ----

/// Calls fn(i, dataOffset) for every element i of `idxDims` (row-major), where dataOffset is
/// the element's offset in a tensor of strides `dataStrides` with the `axis` coordinate
/// replaced by indices[i].
template <typename Fn>
void forEachElementIndex(const std::vector<int64_t>& idxDims, const std::vector<int64_t>& dataStrides, size_t axis,
                         const std::vector<int64_t>& indices, Fn&& fn) {
  int64_t total = dimProduct(idxDims);
  if (total == 0) return;
  size_t rank = idxDims.size();
  std::vector<int64_t> index(rank, 0);
  int64_t base = 0;  // offset without the axis coordinate
  for (int64_t i = 0; i < total; ++i) {
    fn(i, base + indices[static_cast<size_t>(i)] * dataStrides[axis]);
    for (size_t k = rank; k-- > 0;) {
      if (k != axis) base += dataStrides[k];
      if (++index[k] < idxDims[k]) break;
      if (k != axis) base -= idxDims[k] * dataStrides[k];
      index[k] = 0;
    }
  }
}

Status checkElementIndexShape(const KernelContext& ctx, const ir::Tensor& data, const ir::Tensor& indices,
                              size_t axis) {
  bool ok = indices.rank() == data.rank();
  for (size_t k = 0; ok && k < indices.dims().size(); ++k) ok = k == axis || indices.dims()[k] <= data.dims()[k];
  if (!ok) {
    return ctx.error("indices " + shapeToString(indices.dims()) + " do not fit data " + shapeToString(data.dims()));
  }
  return Status::ok();
}

KernelPtr makeGatherElements(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", 0);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& data = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, data.dtype()));
    WH_ASSIGN_OR_RETURN(int64_t axis, existingAxisOrError(ctx, axisAttr, data.rank(), "axis", "data"));
    auto a = static_cast<size_t>(axis);
    WH_RETURN_IF_ERROR(checkElementIndexShape(ctx, data, ctx.input(1), a));
    WH_ASSIGN_OR_RETURN(auto indices, readIndices(ctx, 1, data.dims()[a], "index"));
    ir::Tensor& out = ctx.allocateOutput(0, data.dtype(), ctx.input(1).dims());
    size_t es = ir::elementSize(data.dtype());
    const std::byte* src = data.rawData();
    std::byte* dst = out.mutableRawData();
    withElementSize(es, [&](auto size) {
      constexpr size_t kSize = decltype(size)::value;
      forEachElementIndex(ctx.input(1).dims(), contiguousStrides(data.dims()), a, indices, [&](int64_t i, int64_t off) {
        copyElement<kSize>(dst + static_cast<size_t>(i) * es, src + static_cast<size_t>(off) * es, es);
      });
    });
    return Status::ok();
  });
}

// ---- scatter reductions ----

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

/// Combines one update element into one data element.
using CombineFn = void (*)(std::byte* dst, const std::byte* src);

template <typename T, Reduction kR>
void combineTyped(std::byte* dst, const std::byte* src) {
  T d, s;
  std::memcpy(&d, dst, sizeof(T));
  std::memcpy(&s, src, sizeof(T));
  if constexpr (kR == Reduction::kAdd) d = static_cast<T>(d + s);
  if constexpr (kR == Reduction::kMul) d = static_cast<T>(d * s);
  if constexpr (kR == Reduction::kMax) d = s > d ? s : d;
  if constexpr (kR == Reduction::kMin) d = s < d ? s : d;
  std::memcpy(dst, &d, sizeof(T));
}

template <bool kBf16, Reduction kR>
void combineHalf(std::byte* dst, const std::byte* src) {
  uint16_t d, s;
  std::memcpy(&d, dst, 2);
  std::memcpy(&s, src, 2);
  float fd = kBf16 ? ir::bfloat16ToFloat(d) : ir::halfToFloat(d);
  float fs = kBf16 ? ir::bfloat16ToFloat(s) : ir::halfToFloat(s);
  std::byte tmp[4];
  std::memcpy(tmp, &fd, 4);
  std::byte upd[4];
  std::memcpy(upd, &fs, 4);
  combineTyped<float, kR>(tmp, upd);
  std::memcpy(&fd, tmp, 4);
  d = kBf16 ? ir::floatToBfloat16(fd) : ir::floatToHalf(fd);
  std::memcpy(dst, &d, 2);
}

template <Reduction kR>
CombineFn combineFor(ir::DataType dtype) {
  CombineFn fn = nullptr;
  if (dtype == ir::DataType::kFloat16) return combineHalf<false, kR>;
  if (dtype == ir::DataType::kBFloat16) return combineHalf<true, kR>;
  if (dtype == ir::DataType::kBool) return nullptr;
  dispatchNumeric(dtype, [&](auto tag) { fn = combineTyped<decltype(tag), kR>; });
  return fn;
}

Expected<Reduction> parseReduction(const KernelCreateInfo& info) {
  std::string r = info.node.attrString("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  return info.unsupported("reduction '" + r + "' is not supported");
}

/// The combine function for `r` on `dtype`; nullptr with r == kNone (plain copy).
Expected<CombineFn> combineOrError(const KernelContext& ctx, Reduction r, ir::DataType dtype) {
  CombineFn fn = nullptr;
  switch (r) {
    case Reduction::kNone:
      return fn;
    case Reduction::kAdd:
      fn = combineFor<Reduction::kAdd>(dtype);
      break;
    case Reduction::kMul:
      fn = combineFor<Reduction::kMul>(dtype);
      break;
    case Reduction::kMax:
      fn = combineFor<Reduction::kMax>(dtype);
      break;
    case Reduction::kMin:
      fn = combineFor<Reduction::kMin>(dtype);
      break;
  }
  if (fn == nullptr) return ctx.unsupported("a scatter reduction on dtype " + dtypeName(dtype) + " is not supported");
  return fn;
}

/// The output of a scatter: a copy of the data, to be updated in place.
ir::Tensor& scatterOutput(KernelContext& ctx, const ir::Tensor& data) {
  ir::Tensor& out = ctx.allocateOutput(0, data.dtype(), data.dims());
  parallelCopy(out.mutableRawData(), data.rawData(), static_cast<size_t>(data.numel()) * ir::elementSize(data.dtype()));
  return out;
}

KernelPtr makeScatterElements(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", 0);
  WH_ASSIGN_OR_RETURN(Reduction reduction, parseReduction(info));
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& data = ctx.input(0);
    const ir::Tensor& updates = ctx.input(2);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, data.dtype()));
    WH_ASSIGN_OR_RETURN(int64_t axis, existingAxisOrError(ctx, axisAttr, data.rank(), "axis", "data"));
    auto a = static_cast<size_t>(axis);
    WH_RETURN_IF_ERROR(checkElementIndexShape(ctx, data, ctx.input(1), a));
    if (updates.dims() != ctx.input(1).dims() || updates.dtype() != data.dtype()) {
      return ctx.error("updates " + shapeToString(updates.dims()) + " must match indices " +
                       shapeToString(ctx.input(1).dims()) + " and have the data dtype");
    }
    WH_ASSIGN_OR_RETURN(auto indices, readIndices(ctx, 1, data.dims()[a], "index"));
    WH_ASSIGN_OR_RETURN(CombineFn combine, combineOrError(ctx, reduction, data.dtype()));
    ir::Tensor& out = scatterOutput(ctx, data);
    size_t es = ir::elementSize(data.dtype());
    std::byte* dst = out.mutableRawData();
    const std::byte* upd = updates.rawData();
    forEachElementIndex(updates.dims(), contiguousStrides(data.dims()), a, indices, [&](int64_t i, int64_t off) {
      std::byte* d = dst + static_cast<size_t>(off) * es;
      const std::byte* s = upd + static_cast<size_t>(i) * es;
      if (combine != nullptr) {
        combine(d, s);
      } else {
        std::memcpy(d, s, es);
      }
    });
    return Status::ok();
  });
}

// ---- GatherND, ScatterND ----

/// Offsets (in elements of data) of the slices that the index tuples of `indices` select.
/// Tuples index data axes [batchDims, batchDims + k); batch b adds b * batchStride.
Expected<std::vector<int64_t>> ndOffsets(const KernelContext& ctx, const ir::Tensor& data, size_t indicesInput,
                                         int64_t batchDims) {
  const ir::Tensor& idxTensor = ctx.input(indicesInput);
  if (idxTensor.rank() < 1) return ctx.error("indices must have rank 1 or more");
  int64_t k = idxTensor.dims().back();
  if (batchDims < 0 || batchDims + k > data.rank() || batchDims >= idxTensor.rank()) {
    return ctx.error("indices " + shapeToString(idxTensor.dims()) + " do not fit data " + shapeToString(data.dims()));
  }
  for (int64_t b = 0; b < batchDims; ++b) {
    if (idxTensor.dims()[static_cast<size_t>(b)] != data.dims()[static_cast<size_t>(b)]) {
      return ctx.error("batch dims of indices " + shapeToString(idxTensor.dims()) + " and data " +
                       shapeToString(data.dims()) + " differ");
    }
  }
  WH_ASSIGN_OR_RETURN(auto raw, readIntInput(ctx, indicesInput, "indices"));
  std::vector<int64_t> strides = contiguousStrides(data.dims());
  auto bd = static_cast<size_t>(batchDims);
  int64_t batches = dimProduct(data.dims(), 0, bd);
  int64_t batchStride = bd == 0 ? 0 : strides[bd - 1];
  int64_t tuples =
      k == 0 ? dimProduct(idxTensor.dims(), 0, idxTensor.dims().size() - 1) : static_cast<int64_t>(raw.size()) / k;
  int64_t perBatch = tuples / std::max<int64_t>(batches, 1);
  std::vector<int64_t> offsets(static_cast<size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = (t / std::max<int64_t>(perBatch, 1)) * batchStride;
    for (int64_t j = 0; j < k; ++j) {
      auto axis = static_cast<size_t>(batchDims + j);
      int64_t v = raw[static_cast<size_t>(t * k + j)];
      int64_t dim = data.dims()[axis];
      if (v < -dim || v >= dim) {
        return ctx.error("index " + std::to_string(v) + " is out of range for an axis of size " + std::to_string(dim));
      }
      off += (v < 0 ? v + dim : v) * strides[axis];
    }
    offsets[static_cast<size_t>(t)] = off;
  }
  return offsets;
}

KernelPtr makeGatherND(const KernelCreateInfo& info) {
  int64_t batchDims = info.node.attrInt("batch_dims", 0);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& data = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, data.dtype()));
    WH_ASSIGN_OR_RETURN(auto offsets, ndOffsets(ctx, data, 1, batchDims));
    const auto& idxDims = ctx.input(1).dims();
    auto k = static_cast<size_t>(idxDims.back());
    std::vector<int64_t> outDims(idxDims.begin(), idxDims.end() - 1);
    outDims.insert(outDims.end(), data.dims().begin() + batchDims + static_cast<int64_t>(k), data.dims().end());
    ir::Tensor& out = ctx.allocateOutput(0, data.dtype(), outDims);
    size_t es = ir::elementSize(data.dtype());
    size_t sliceBytes =
        static_cast<size_t>(dimProduct(data.dims(), static_cast<size_t>(batchDims) + k, data.dims().size())) * es;
    std::byte* dst = out.mutableRawData();
    for (size_t t = 0; t < offsets.size(); ++t) {
      std::memcpy(dst + t * sliceBytes, data.rawData() + static_cast<size_t>(offsets[t]) * es, sliceBytes);
    }
    return Status::ok();
  });
}

KernelPtr makeScatterND(const KernelCreateInfo& info) {
  WH_ASSIGN_OR_RETURN(Reduction reduction, parseReduction(info));
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& data = ctx.input(0);
    const ir::Tensor& updates = ctx.input(2);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, data.dtype()));
    WH_ASSIGN_OR_RETURN(auto offsets, ndOffsets(ctx, data, 1, 0));
    const auto& idxDims = ctx.input(1).dims();
    auto k = static_cast<size_t>(idxDims.back());
    std::vector<int64_t> expected(idxDims.begin(), idxDims.end() - 1);
    expected.insert(expected.end(), data.dims().begin() + static_cast<int64_t>(k), data.dims().end());
    if (updates.dims() != expected || updates.dtype() != data.dtype()) {
      return ctx.error("updates " + shapeToString(updates.dims()) + " must have shape " + shapeToString(expected) +
                       " and the data dtype");
    }
    WH_ASSIGN_OR_RETURN(CombineFn combine, combineOrError(ctx, reduction, data.dtype()));
    ir::Tensor& out = scatterOutput(ctx, data);
    size_t es = ir::elementSize(data.dtype());
    int64_t slice = dimProduct(data.dims(), k, data.dims().size());
    std::byte* dst = out.mutableRawData();
    const std::byte* upd = updates.rawData();
    for (size_t t = 0; t < offsets.size(); ++t) {
      std::byte* d = dst + static_cast<size_t>(offsets[t]) * es;
      const std::byte* s = upd + t * static_cast<size_t>(slice) * es;
      if (combine == nullptr) {
        std::memcpy(d, s, static_cast<size_t>(slice) * es);
      } else {
        for (int64_t e = 0; e < slice; ++e) combine(d + static_cast<size_t>(e) * es, s + static_cast<size_t>(e) * es);
      }
    }
    return Status::ok();
  });
}

// ---- OneHot ----

KernelPtr makeOneHot(const KernelCreateInfo& info) {
  int64_t axisAttr = info.node.attrInt("axis", -1);
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& indices = ctx.input(0);
    const ir::Tensor& depthT = ctx.input(1);
    const ir::Tensor& values = ctx.input(2);
    WH_RETURN_IF_ERROR(checkByteCopyable(ctx, values.dtype()));
    if (depthT.numel() != 1 || values.numel() != 2)
      return ctx.error("depth must be a scalar and values hold two elements");
    if (!ir::isFloatingPoint(indices.dtype()) && !ir::isInteger(indices.dtype())) {
      return ctx.unsupported("indices dtype " + dtypeName(indices.dtype()) + " is not supported");
    }
    auto depth = static_cast<int64_t>(depthT.valueAsDouble(0));
    if (depth < 1) return ctx.error("depth must be positive");
    int64_t outRank = indices.rank() + 1;
    WH_ASSIGN_OR_RETURN(int64_t axis, normalizeAxisOrError(ctx, axisAttr, outRank, "axis"));
    auto a = static_cast<size_t>(axis);
    std::vector<int64_t> outDims = indices.dims();
    outDims.insert(outDims.begin() + axis, depth);
    ir::Tensor& out = ctx.allocateOutput(0, values.dtype(), outDims);
    size_t es = ir::elementSize(values.dtype());
    std::byte* dst = out.mutableRawData();
    const std::byte* off = values.rawData();
    const std::byte* on = values.rawData() + es;
    fillElements(dst, off, out.numel(), es);
    int64_t outer = dimProduct(indices.dims(), 0, a);
    int64_t inner = dimProduct(indices.dims(), a, indices.dims().size());
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        auto v = static_cast<int64_t>(indices.valueAsDouble(o * inner + i));
        if (v < 0) v += depth;
        if (v < 0 || v >= depth) continue;
        std::memcpy(dst + static_cast<size_t>((o * depth + v) * inner + i) * es, on, es);
      }
    }
    return Status::ok();
  });
}

// ---- NonZero ----

template <typename T>
void nonZeroMask(const ir::Tensor& x, std::vector<uint8_t>& mask) {
  const T* p = x.data<T>();
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = p[i] != T(0);
}

KernelPtr makeNonZero(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    std::vector<uint8_t> mask(static_cast<size_t>(x.numel()));
    if (x.dtype() == ir::DataType::kFloat16 || x.dtype() == ir::DataType::kBFloat16) {
      const auto* p = x.data<uint16_t>();
      for (size_t i = 0; i < mask.size(); ++i) mask[i] = (p[i] & 0x7fff) != 0;
    } else if (!dispatchNumeric(x.dtype(), [&](auto tag) { nonZeroMask<decltype(tag)>(x, mask); })) {
      return ctx.unsupported("dtype " + dtypeName(x.dtype()) + " is not supported");
    }
    int64_t count = 0;
    for (uint8_t m : mask) count += m;
    int64_t rank = std::max<int64_t>(x.rank(), 1);
    auto* out = ctx.allocateOutput(0, ir::DataType::kInt64, {rank, count}).mutableData<int64_t>();
    std::vector<int64_t> dims = x.dims().empty() ? std::vector<int64_t>{1} : x.dims();
    std::vector<int64_t> index(dims.size(), 0);
    int64_t column = 0;
    for (size_t i = 0; i < mask.size(); ++i) {
      if (mask[i]) {
        for (size_t k = 0; k < dims.size(); ++k) out[static_cast<int64_t>(k) * count + column] = index[k];
        ++column;
      }
      for (size_t k = dims.size(); k-- > 0;) {
        if (++index[k] < dims[k]) break;
        index[k] = 0;
      }
    }
    return Status::ok();
  });
}

}  // namespace

void registerShapeGatherKernels(KernelRegistry& registry) {
  registry.add("", "Gather", 1, makeGather);
  registry.add("", "GatherElements", 11, makeGatherElements);
  registry.add("", "GatherND", 11, makeGatherND);
  registry.add("", "Scatter", 9, makeScatterElements);
  registry.add("", "ScatterElements", 11, makeScatterElements);
  registry.add("", "ScatterND", 11, makeScatterND);
  registry.add("", "OneHot", 9, makeOneHot);
  registry.add("", "NonZero", 9, makeNonZero);
}

}  // namespace whittle::runtime::cpu
