// Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare (axes as an
// attribute, or as input 1 from opset 13 for ReduceSum and 18 for the rest; keepdims;
// noop_with_empty_axes) and ArgMax/ArgMin (keepdims, select_last_index).
//
// A reduction is  out = finalize(combine over the reduced axes of map(x)):
//   Sum: x, +            Mean: x, +, / count     SumSquare: x^2, +     L1: |x|, +
//   L2: x^2, +, sqrt     LogSum: x, +, log       Max / Min / Prod: x, max / min / *
//   LogSumExp: exp(x - m), +, log(.) + m, with m the max over the same axes (a first pass).
// The input dims are merged into alternating kept/reduced groups (size-1 dims dropped) and
// walked so that the innermost group is contiguous: a reduced innermost group is a row
// reduction with 16 independent accumulators (vectorises, and sums in 16 partial sums); a
// kept innermost group accumulates a whole row of outputs at once; a reduced innermost group of
// at most 4 (a complex pair) is done a row of outputs per call, in rowReduce's combine order.
// float16/bfloat16 and the
// float ops accumulate in float32, double in double, integers in their own type.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "cpu/elementwise_common.h"
#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {
namespace {

enum class ReduceKind { kSum, kMean, kSumSquare, kL1, kL2, kLogSum, kLogSumExp, kMax, kMin, kProd };

// ---- element maps and combines ----

enum class MapKind { kIdentity, kSquare, kAbs, kExpShifted };
enum class CombineKind { kAdd, kMax, kMin, kMul };

template <MapKind kMap, typename A>
WH_ALWAYS_INLINE A mapValue(A v, A shift) {
  if constexpr (kMap == MapKind::kSquare && !std::is_same_v<A, bool>) {
    return static_cast<A>(v * v);
  } else if constexpr (kMap == MapKind::kAbs) {
    if constexpr (std::is_unsigned_v<A>) return v;
    else return v < A{0} ? static_cast<A>(-v) : v;
  } else if constexpr (kMap == MapKind::kExpShifted) {
    if constexpr (std::is_same_v<A, float>) return expFast(v - shift);
    else return static_cast<A>(std::exp(v - shift));
  } else {
    return v;
  }
}

template <CombineKind kCombine, typename A>
WH_ALWAYS_INLINE A combineValues(A a, A b) {
  if constexpr (kCombine == CombineKind::kAdd) {
    return static_cast<A>(a + b);
  } else if constexpr (kCombine == CombineKind::kMul) {
    return static_cast<A>(a * b);
  } else if constexpr (kCombine == CombineKind::kMax) {
    if constexpr (std::is_floating_point_v<A>) return (b > a || b != b) ? b : a;  // nan wins
    else return b > a ? b : a;
  } else {
    if constexpr (std::is_floating_point_v<A>) return (b < a || b != b) ? b : a;
    else return b < a ? b : a;
  }
}

template <CombineKind kCombine, typename A>
constexpr A identityOf() {
  if constexpr (kCombine == CombineKind::kAdd) return A{0};
  else if constexpr (kCombine == CombineKind::kMul) return A{1};
  else if constexpr (kCombine == CombineKind::kMax) {
    if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  } else {
    if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
}

// ---- inner loops ----

/// acc = combine(acc, map(x[0..n))) over a contiguous row, in 16 interleaved partial results.
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
WH_ALWAYS_INLINE A rowReduce(const T* x, int64_t n, A acc, A shift) {
  constexpr int kLanes = 16;
  A lanes[kLanes];
  for (A& l : lanes) l = identityOf<kCombine, A>();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      lanes[j] = combineValues<kCombine>(lanes[j], mapValue<kMap, A>(static_cast<A>(Elem<T>::load(x[i + j])), shift));
    }
  }
  for (int j = 0; i < n; ++i, ++j) {
    lanes[j] = combineValues<kCombine>(lanes[j], mapValue<kMap, A>(static_cast<A>(Elem<T>::load(x[i])), shift));
  }
  for (int w = kLanes / 2; w > 0; w /= 2) {  // pairwise, so the result does not depend on n's alignment
    for (int j = 0; j < w; ++j) lanes[j] = combineValues<kCombine>(lanes[j], lanes[j + w]);
  }
  return combineValues<kCombine>(acc, lanes[0]);
}

/// acc[j] = combine(acc[j], map(x[j])) for j < n; shift[j] feeds the shifted exp.
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
WH_ALWAYS_INLINE void columnAccumulate(const T* x, A* acc, const A* shift, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    A s = kMap == MapKind::kExpShifted ? shift[j] : A{0};
    acc[j] = combineValues<kCombine>(acc[j], mapValue<kMap, A>(static_cast<A>(Elem<T>::load(x[j])), s));
  }
}

template <typename T, typename A, MapKind kMap, CombineKind kCombine>
WH_SIMD_CLONES A rowReduceSimd(const T* x, int64_t n, A acc, A shift) {
  return rowReduce<T, A, kMap, kCombine>(x, n, acc, shift);
}
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
A rowReducePlain(const T* x, int64_t n, A acc, A shift) {
  return rowReduce<T, A, kMap, kCombine>(x, n, acc, shift);
}
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
WH_SIMD_CLONES void columnAccumulateSimd(const T* x, A* acc, const A* shift, int64_t n) {
  columnAccumulate<T, A, kMap, kCombine>(x, acc, shift, n);
}
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
void columnAccumulatePlain(const T* x, A* acc, const A* shift, int64_t n) {
  columnAccumulate<T, A, kMap, kCombine>(x, acc, shift, n);
}

/// The vectorised (several-ISA) loops for float types, plain ones for the rest.
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
A rowReduceAny(const T* x, int64_t n, A acc, A shift) {
  if constexpr (kSimdType<T>) return rowReduceSimd<T, A, kMap, kCombine>(x, n, acc, shift);
  else return rowReducePlain<T, A, kMap, kCombine>(x, n, acc, shift);
}
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
void columnAccumulateAny(const T* x, A* acc, const A* shift, int64_t n) {
  if constexpr (kSimdType<T>) columnAccumulateSimd<T, A, kMap, kCombine>(x, acc, shift, n);
  else columnAccumulatePlain<T, A, kMap, kCombine>(x, acc, shift, n);
}

/// acc[j] = combine(acc[j], row j of n <= 4 elements) for j < rows, rows n apart: what rowReduce
/// gives for one such row (its pairwise tree, lanes 0..3: (x0 . x2) . (x1 . x3)), without a call and
/// 16 lanes per output. A complex pair [..., 2] (|STFT|^2) or an RGB triple.
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
WH_ALWAYS_INLINE void smallRows(const T* x, int64_t n, A* acc, const A* shift, int64_t rows) {
  for (int64_t j = 0; j < rows; ++j) {
    const T* r = x + j * n;
    const A s = kMap == MapKind::kExpShifted ? shift[j] : A{0};
    auto m = [&](int64_t k) { return mapValue<kMap, A>(static_cast<A>(Elem<T>::load(r[k])), s); };
    A v = m(0);
    if (n == 2) v = combineValues<kCombine>(v, m(1));
    if (n == 3) v = combineValues<kCombine>(combineValues<kCombine>(v, m(2)), m(1));
    if (n == 4) v = combineValues<kCombine>(combineValues<kCombine>(v, m(2)), combineValues<kCombine>(m(1), m(3)));
    acc[j] = combineValues<kCombine>(acc[j], v);
  }
}
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
WH_SIMD_CLONES void smallRowsSimd(const T* x, int64_t n, A* acc, const A* shift, int64_t rows) {
  if (n == 2) smallRows<T, A, kMap, kCombine>(x, 2, acc, shift, rows);  // the common case, with a constant n
  else smallRows<T, A, kMap, kCombine>(x, n, acc, shift, rows);
}
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
void smallRowsAny(const T* x, int64_t n, A* acc, const A* shift, int64_t rows) {
  if constexpr (kSimdType<T>) smallRowsSimd<T, A, kMap, kCombine>(x, n, acc, shift, rows);
  else smallRows<T, A, kMap, kCombine>(x, n, acc, shift, rows);
}

// ---- the walk over merged groups ----

/// Input dims merged into alternating kept/reduced groups, outermost first.
struct Groups {
  static constexpr int kMax = 16;
  int count = 0;
  std::array<int64_t, kMax> size{};
  std::array<bool, kMax> reduced{};
  std::array<int64_t, kMax> inStride{};
  std::array<int64_t, kMax> outStride{};
};

/// Merges `dims` by the reduced-axis mask; false if more than Groups::kMax groups remain.
bool makeGroups(const std::vector<int64_t>& dims, const std::vector<bool>& reduce, Groups& g) {
  g = Groups{};
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    if (g.count > 0 && g.reduced[static_cast<size_t>(g.count - 1)] == reduce[i]) {
      g.size[static_cast<size_t>(g.count - 1)] *= dims[i];
      continue;
    }
    if (g.count == Groups::kMax) return false;
    g.size[static_cast<size_t>(g.count)] = dims[i];
    g.reduced[static_cast<size_t>(g.count)] = reduce[i];
    ++g.count;
  }
  if (g.count == 0) {  // one element
    g.count = 1;
    g.size[0] = 1;
    g.reduced[0] = false;
  }
  int64_t in = 1, out = 1;
  for (int k = g.count - 1; k >= 0; --k) {
    auto ku = static_cast<size_t>(k);
    g.inStride[ku] = in;
    in *= g.size[ku];
    g.outStride[ku] = g.reduced[ku] ? 0 : out;
    if (!g.reduced[ku]) out *= g.size[ku];
  }
  return true;
}

/// Calls fn(inOffset, outOffset) for every combination of the groups before the innermost,
/// with group 0 limited to [begin0, end0).
template <typename F>
void walkOuter(const Groups& g, int64_t begin0, int64_t end0, F&& fn) {
  const int last = g.count - 1;  // the innermost group is handled by fn
  if (last == 0) {
    fn(int64_t{0}, int64_t{0});
    return;
  }
  std::array<int64_t, Groups::kMax> idx{};
  idx[0] = begin0;
  int64_t in = begin0 * g.inStride[0];
  int64_t out = begin0 * g.outStride[0];
  while (idx[0] < end0) {
    fn(in, out);
    for (int k = last - 1; k >= 0; --k) {
      auto ku = static_cast<size_t>(k);
      in += g.inStride[ku];
      out += g.outStride[ku];
      if (++idx[ku] < (k == 0 ? end0 : g.size[ku]) || k == 0) break;
      in -= g.inStride[ku] * g.size[ku];
      out -= g.outStride[ku] * g.size[ku];
      idx[ku] = 0;
    }
  }
}

/// One combine pass: acc (output-sized, already holding the identity) absorbs map(x).
template <typename T, typename A, MapKind kMap, CombineKind kCombine>
void reducePass(const Groups& g, const T* x, A* acc, const A* shift, int threads) {
  const int last = g.count - 1;
  const auto lu = static_cast<size_t>(last);
  const int64_t innerSize = g.size[lu];
  auto inner = [&](int64_t in, int64_t out) {
    if (g.reduced[lu]) {
      A s = kMap == MapKind::kExpShifted ? shift[out] : A{0};
      acc[out] = rowReduceAny<T, A, kMap, kCombine>(x + in, innerSize, acc[out], s);
    } else {
      columnAccumulateAny<T, A, kMap, kCombine>(x + in, acc + out, shift == nullptr ? nullptr : shift + out, innerSize);
    }
  };
  int64_t total = 1;
  for (int k = 0; k < g.count; ++k) total *= g.size[static_cast<size_t>(k)];
  if (last >= 1 && g.reduced[lu] && innerSize <= 4) {
    // A short reduced innermost group: group last - 1 (kept, its outputs contiguous) is walked
    // as rows of smallRows instead of one rowReduce call per output (asr-kaldi's |STFT|^2 over
    // [1, 98, 257, 2]: 1.25 -> 0.01 ms a run).
    Groups h = g;
    h.count = last;
    const int64_t rows = g.size[lu - 1];
    auto span = [&](int64_t in, int64_t out, int64_t b, int64_t e) {
      smallRowsAny<T, A, kMap, kCombine>(x + in + b * innerSize, innerSize, acc + out + b,
                                         shift == nullptr ? nullptr : shift + out + b, e - b);
    };
    if (h.count == 1) {
      parallelChunks(rows, threads, std::max<int64_t>(1, kParallelGrain / innerSize), [&](int64_t b, int64_t e) { span(0, 0, b, e); });
    } else if (!g.reduced[0]) {
      parallelChunks(g.size[0], threads, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(total / g.size[0], 1)),
                     [&](int64_t b, int64_t e) { walkOuter(h, b, e, [&](int64_t in, int64_t out) { span(in, out, 0, rows); }); });
    } else {
      walkOuter(h, 0, g.size[0], [&](int64_t in, int64_t out) { span(in, out, 0, rows); });
    }
  } else if (last == 0 && !g.reduced[0]) {
    // Nothing reduced: an elementwise map, split anywhere.
    parallelChunks(innerSize, threads, kParallelGrain, [&](int64_t b, int64_t e) {
      columnAccumulateAny<T, A, kMap, kCombine>(x + b, acc + b, shift == nullptr ? nullptr : shift + b, e - b);
    });
  } else if (last == 0) {
    // Everything reduced: partial results per chunk, combined in chunk order.
    std::array<A, 64> partial{};
    int chunks = static_cast<int>(std::min<int64_t>({threads, 64, innerSize / kParallelGrain}));
    if (chunks <= 1) {
      inner(0, 0);
      return;
    }
    A s = kMap == MapKind::kExpShifted ? shift[0] : A{0};
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
    for (int c = 0; c < chunks; ++c) {
      int64_t b = innerSize * c / chunks, e = innerSize * (c + 1) / chunks;
      partial[static_cast<size_t>(c)] = rowReduceAny<T, A, kMap, kCombine>(x + b, e - b, identityOf<kCombine, A>(), s);
    }
    for (int c = 0; c < chunks; ++c) acc[0] = combineValues<kCombine>(acc[0], partial[static_cast<size_t>(c)]);
  } else if (!g.reduced[0]) {
    // The outermost group is kept: threads take disjoint ranges of it (disjoint outputs).
    int64_t perIndex = total / g.size[0];
    parallelChunks(g.size[0], threads, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(perIndex, 1)),
                   [&](int64_t b, int64_t e) { walkOuter(g, b, e, inner); });
  } else {
    walkOuter(g, 0, g.size[0], inner);
  }
}

// ---- the kernel ----

class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(ReduceKind kind, bool keepdims, bool noopWithEmptyAxes, bool axesFromInput, std::vector<int64_t> axes)
      : kind_(kind), keepdims_(keepdims), noop_(noopWithEmptyAxes), axesFromInput_(axesFromInput),
        attrAxes_(std::move(axes)) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const std::vector<int64_t>& dims = x.dims();
    auto rank = static_cast<int64_t>(dims.size());
    std::vector<int64_t> axes = attrAxes_;
    if (axesFromInput_ && ctx.hasInput(1)) {
      WH_ASSIGN_OR_RETURN(axes, readInts(ctx.input(1), "axes"));
    }
    std::vector<bool> reduce(dims.size(), axes.empty() && !noop_);
    for (int64_t a : axes) {
      auto n = normalizeAxis(a, rank);
      if (!n || rank == 0) return ctx.error("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
      reduce[static_cast<size_t>(*n)] = true;
    }
    std::vector<int64_t> outDims;
    int64_t count = 1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (!reduce[i]) outDims.push_back(dims[i]);
      else if (keepdims_) outDims.push_back(1);
      if (reduce[i]) count *= dims[i];
    }
    bool reducesNothing = std::none_of(reduce.begin(), reduce.end(), [](bool r) { return r; });
    bool mapIsIdentity = kind_ == ReduceKind::kSum || kind_ == ReduceKind::kMean || kind_ == ReduceKind::kMax ||
                         kind_ == ReduceKind::kMin || kind_ == ReduceKind::kProd;
    if (reducesNothing && mapIsIdentity) {
      ctx.setOutput(0, x);  // noop_with_empty_axes: the input itself
      return Status::ok();
    }
    Groups g;
    if (!makeGroups(dims, reduce, g)) return ctx.unsupported("reduction over more than 16 alternating axis groups");
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), outDims);
    int64_t outNumel = y.numel();
    if (outNumel == 0) return Status::ok();

    constexpr uint32_t kFloatOnly = kFloatTypes;
    constexpr uint32_t kAny = kNumeric | kBoolBit;
    bool floatOnly = kind_ == ReduceKind::kL2 || kind_ == ReduceKind::kLogSum || kind_ == ReduceKind::kLogSumExp;
    bool ok;
    if (floatOnly) {
      ok = dispatchTypes<kFloatOnly>(x.dtype(), [&](auto tag) { compute<decltype(tag)>(ctx, x, y, g, count); });
    } else {
      bool minMax = kind_ == ReduceKind::kMax || kind_ == ReduceKind::kMin;
      ok = (minMax || x.dtype() != ir::DataType::kBool) &&
           dispatchTypes<kAny>(x.dtype(), [&](auto tag) { compute<decltype(tag)>(ctx, x, y, g, count); });
    }
    if (!ok) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    return Status::ok();
  }

 private:
  /// Accumulates in A = the compute type (float for float16/bfloat16), in the output buffer
  /// when it has that type, else in scratch.
  template <typename T>
  void compute(KernelContext& ctx, const ir::Tensor& x, ir::Tensor& y, const Groups& g, int64_t count) {
    using A = ComputeT<T>;
    const T* xp = x.data<T>();
    int64_t outNumel = y.numel();
    bool inNumel = x.numel() > 0;
    A* acc;
    std::vector<A>* scratch = nullptr;
    if constexpr (std::is_same_v<A, T>) {
      acc = y.mutableData<T>();
    } else {
      scratch = &scratchFor<A>(0);
      scratch->resize(static_cast<size_t>(outNumel));
      acc = scratch->data();
    }
    int threads = ctx.threads();
    auto pass = [&]<MapKind kMap, CombineKind kCombine>(A* target, const A* shift) {
      std::fill(target, target + outNumel, identityOf<kCombine, A>());
      if (inNumel) reducePass<T, A, kMap, kCombine>(g, xp, target, shift, threads);
    };
    switch (kind_) {
      case ReduceKind::kSum:
      case ReduceKind::kMean:
      case ReduceKind::kLogSum: pass.template operator()<MapKind::kIdentity, CombineKind::kAdd>(acc, nullptr); break;
      case ReduceKind::kSumSquare:
      case ReduceKind::kL2: pass.template operator()<MapKind::kSquare, CombineKind::kAdd>(acc, nullptr); break;
      case ReduceKind::kL1: pass.template operator()<MapKind::kAbs, CombineKind::kAdd>(acc, nullptr); break;
      case ReduceKind::kMax: pass.template operator()<MapKind::kIdentity, CombineKind::kMax>(acc, nullptr); break;
      case ReduceKind::kMin: pass.template operator()<MapKind::kIdentity, CombineKind::kMin>(acc, nullptr); break;
      case ReduceKind::kProd: pass.template operator()<MapKind::kIdentity, CombineKind::kMul>(acc, nullptr); break;
      case ReduceKind::kLogSumExp: {
        if constexpr (std::is_floating_point_v<A>) {
          std::vector<A>& shiftBuf = scratchFor<A>(1);
          shiftBuf.resize(static_cast<size_t>(outNumel));
          A* shift = shiftBuf.data();
          pass.template operator()<MapKind::kIdentity, CombineKind::kMax>(shift, nullptr);
          for (int64_t i = 0; i < outNumel; ++i) shift[i] = std::isfinite(shift[i]) ? shift[i] : A{0};
          pass.template operator()<MapKind::kExpShifted, CombineKind::kAdd>(acc, shift);
          if (!inNumel) std::fill(shift, shift + outNumel, A{0});
          for (int64_t i = 0; i < outNumel; ++i) acc[i] = std::log(acc[i]) + shift[i];
        }
        break;
      }
    }
    // Finalize.
    if constexpr (std::is_floating_point_v<A>) {
      if (kind_ == ReduceKind::kMean) {
        for (int64_t i = 0; i < outNumel; ++i) acc[i] /= static_cast<A>(count);
      } else if (kind_ == ReduceKind::kL2) {
        for (int64_t i = 0; i < outNumel; ++i) acc[i] = std::sqrt(acc[i]);
      } else if (kind_ == ReduceKind::kLogSum) {
        for (int64_t i = 0; i < outNumel; ++i) acc[i] = std::log(acc[i]);
      }
    } else if constexpr (!std::is_same_v<A, bool>) {
      if (kind_ == ReduceKind::kMean && count > 0) {
        for (int64_t i = 0; i < outNumel; ++i) acc[i] = static_cast<A>(acc[i] / static_cast<A>(count));
      }
    }
    if (scratch != nullptr) {
      T* yp = y.mutableData<T>();
      for (int64_t i = 0; i < outNumel; ++i) yp[i] = Elem<T>::store(acc[i]);
    }
  }

  /// Per-kernel scratch kept between runs (no allocation once warm).
  template <typename A>
  std::vector<A>& scratchFor(int slot) {
    static_assert(std::is_same_v<A, float> || std::is_same_v<A, double>);
    if constexpr (std::is_same_v<A, float>) return floatScratch_[static_cast<size_t>(slot)];
    else return doubleScratch_[static_cast<size_t>(slot)];
  }

  ReduceKind kind_;
  bool keepdims_;
  bool noop_;
  bool axesFromInput_;
  std::vector<int64_t> attrAxes_;
  std::array<std::vector<float>, 2> floatScratch_;
  std::array<std::vector<double>, 2> doubleScratch_;
};

KernelFactory reduce(ReduceKind kind, int64_t axesInputSince) {
  return [kind, axesInputSince](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    bool keepdims = info.node.attrInt("keepdims", 1) != 0;
    bool noop = info.node.attrInt("noop_with_empty_axes", 0) != 0;
    bool fromInput = info.opset >= axesInputSince;
    std::vector<int64_t> axes = fromInput ? std::vector<int64_t>{} : info.node.attrInts("axes");
    return std::unique_ptr<Kernel>(std::make_unique<ReduceKernel>(kind, keepdims, noop, fromInput, std::move(axes)));
  };
}

// ---- ArgMax / ArgMin ----

/// The index of the max (or min) along an axis; the first one on ties unless selectLast.
template <typename T, bool kMax>
void argReduce(const T* x, int64_t* out, int64_t outer, int64_t r, int64_t inner, bool selectLast, int threads,
               std::vector<ComputeT<T>>& best) {
  using A = ComputeT<T>;
  auto better = [selectLast](A v, A b) {
    if constexpr (kMax) return selectLast ? v >= b : v > b;
    else return selectLast ? v <= b : v < b;
  };
  if (inner == 1) {
    parallelChunks(outer, threads, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(r, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = x + o * r;
        A bv = Elem<T>::load(row[0]);
        int64_t bi = 0;
        for (int64_t k = 1; k < r; ++k) {
          A v = Elem<T>::load(row[k]);
          if (better(v, bv)) {
            bv = v;
            bi = k;
          }
        }
        out[o] = bi;
      }
    });
    return;
  }
  best.resize(static_cast<size_t>(inner));
  for (int64_t o = 0; o < outer; ++o) {
    const T* block = x + o * r * inner;
    int64_t* idx = out + o * inner;
    for (int64_t j = 0; j < inner; ++j) {
      best[static_cast<size_t>(j)] = Elem<T>::load(block[j]);
      idx[j] = 0;
    }
    for (int64_t k = 1; k < r; ++k) {
      const T* row = block + k * inner;
      for (int64_t j = 0; j < inner; ++j) {
        A v = Elem<T>::load(row[j]);
        bool u = better(v, best[static_cast<size_t>(j)]);
        best[static_cast<size_t>(j)] = u ? v : best[static_cast<size_t>(j)];
        idx[j] = u ? k : idx[j];
      }
    }
  }
}

class ArgReduceKernel final : public Kernel {
 public:
  ArgReduceKernel(bool isMax, int64_t axis, bool keepdims, bool selectLast)
      : isMax_(isMax), axis_(axis), keepdims_(keepdims), selectLast_(selectLast) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const auto& dims = x.dims();
    auto axis = normalizeAxis(axis_, x.rank());
    if (!axis || x.rank() == 0) return ctx.error("axis " + std::to_string(axis_) + " is out of range for rank " + std::to_string(x.rank()));
    auto a = static_cast<size_t>(*axis);
    if (dims[a] == 0) return ctx.error("cannot take the arg " + std::string(isMax_ ? "max" : "min") + " of an empty axis");
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < a; ++i) outer *= dims[i];
    for (size_t i = a + 1; i < dims.size(); ++i) inner *= dims[i];
    std::vector<int64_t> outDims;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (i != a) outDims.push_back(dims[i]);
      else if (keepdims_) outDims.push_back(1);
    }
    ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kInt64, outDims);
    if (y.numel() == 0) return Status::ok();
    int64_t* out = y.mutableData<int64_t>();
    bool ok = dispatchTypes<kNumeric>(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::vector<ComputeT<T>> best;
      if (isMax_) argReduce<T, true>(x.data<T>(), out, outer, dims[a], inner, selectLast_, ctx.threads(), best);
      else argReduce<T, false>(x.data<T>(), out, outer, dims[a], inner, selectLast_, ctx.threads(), best);
    });
    if (!ok) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    return Status::ok();
  }

 private:
  bool isMax_;
  int64_t axis_;
  bool keepdims_;
  bool selectLast_;
};

KernelFactory argReduceFactory(bool isMax) {
  return [isMax](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<ArgReduceKernel>(isMax, info.node.attrInt("axis", 0),
                                                                     info.node.attrInt("keepdims", 1) != 0,
                                                                     info.node.attrInt("select_last_index", 0) != 0));
  };
}

}  // namespace

void registerReductionKernels(KernelRegistry& r) {
  r.add("", "ReduceSum", 1, reduce(ReduceKind::kSum, 13));
  r.add("", "ReduceMean", 1, reduce(ReduceKind::kMean, 18));
  r.add("", "ReduceMax", 1, reduce(ReduceKind::kMax, 18));
  r.add("", "ReduceMin", 1, reduce(ReduceKind::kMin, 18));
  r.add("", "ReduceProd", 1, reduce(ReduceKind::kProd, 18));
  r.add("", "ReduceL1", 1, reduce(ReduceKind::kL1, 18));
  r.add("", "ReduceL2", 1, reduce(ReduceKind::kL2, 18));
  r.add("", "ReduceLogSum", 1, reduce(ReduceKind::kLogSum, 18));
  r.add("", "ReduceLogSumExp", 1, reduce(ReduceKind::kLogSumExp, 18));
  r.add("", "ReduceSumSquare", 1, reduce(ReduceKind::kSumSquare, 18));
  r.add("", "ArgMax", 1, argReduceFactory(true));
  r.add("", "ArgMin", 1, argReduceFactory(false));
}

}  // namespace whittle::runtime::cpu
