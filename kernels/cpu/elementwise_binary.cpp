// Binary and variadic elementwise ops with numpy broadcasting: Add, Sub, Mul, Div, Pow, Max,
// Min, Sum, Mean, Mod, BitShift, And, Or, Xor, Equal, Less, LessOrEqual, Greater,
// GreaterOrEqual, PRelu, Where.
//
// Every op runs through one broadcast plan (cpu/elementwise_common.h): the shapes are merged
// into as few dimensions as the operands allow and walked as contiguous inner segments in
// which each operand has stride 1 or 0. That covers the fast cases with the same loops: equal
// shapes are one segment, a scalar operand has stride 0, a per-channel [C,1,1] operand on
// NCHW becomes segments of H*W with a scalar, a row operand [W] becomes segments of W.
// No trapping math: GCC may then if-convert float selects; no errno: sqrt becomes one
// instruction. Both are needed for the loops to vectorise; neither changes a result.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>

#include "cpu/elementwise_common.h"
#include "cpu/kernel_util.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {
namespace {

// ---- scalar operations ----
// Each takes and returns the compute type (float for float16/bfloat16). Signed integer
// arithmetic wraps (computed in the unsigned type) instead of being undefined.

template <typename T>
WH_ALWAYS_INLINE T wrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}
template <typename T>
WH_ALWAYS_INLINE T wrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
  } else {
    return a - b;
  }
}
template <typename T>
WH_ALWAYS_INLINE T wrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return a * b;
  }
}

struct AddOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const { return wrapAdd(a, b); }
};
struct SubOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const { return wrapSub(a, b); }
};
struct MulOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const { return wrapMul(a, b); }
};
/// Integer division truncates; the caller rejects zero divisors. INT_MIN / -1 wraps.
struct DivOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      return b == -1 ? wrapSub(T{0}, a) : static_cast<T>(a / b);
    } else {
      return static_cast<T>(a / b);
    }
  }
};
/// numpy maximum/minimum: nan wins.
struct MaxOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      T m = a < b ? b : a;
      return a != a ? a : (b != b ? b : m);
    } else {
      return a < b ? b : a;
    }
  }
};
struct MinOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      T m = b < a ? b : a;
      return a != a ? a : (b != b ? b : m);
    } else {
      return b < a ? b : a;
    }
  }
};
/// Mod with fmod=0 (integers): the result takes the divisor's sign, as Python's %.
struct ModOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const {
    if constexpr (std::is_signed_v<T>) {
      T r = b == -1 ? T{0} : static_cast<T>(a % b);
      return (r != 0 && ((r < 0) != (b < 0))) ? static_cast<T>(r + b) : r;
    } else {
      return static_cast<T>(a % b);
    }
  }
};
/// Mod with fmod=1: the result takes the dividend's sign, as C's fmod and %.
struct FmodOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::fmod(a, b);
    } else if constexpr (std::is_signed_v<T>) {
      return b == -1 ? T{0} : static_cast<T>(a % b);
    } else {
      return static_cast<T>(a % b);
    }
  }
};
struct ShiftLeftOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const {
    return b >= static_cast<T>(sizeof(T) * 8) ? T{0} : static_cast<T>(a << b);
  }
};
struct ShiftRightOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T a, T b) const {
    return b >= static_cast<T>(sizeof(T) * 8) ? T{0} : static_cast<T>(a >> b);
  }
};
struct AndOp {
  WH_ALWAYS_INLINE bool operator()(bool a, bool b) const { return a && b; }
};
struct OrOp {
  WH_ALWAYS_INLINE bool operator()(bool a, bool b) const { return a || b; }
};
struct XorOp {
  WH_ALWAYS_INLINE bool operator()(bool a, bool b) const { return a != b; }
};
struct EqualOp {
  template <typename T>
  WH_ALWAYS_INLINE bool operator()(T a, T b) const { return a == b; }
};
struct LessOp {
  template <typename T>
  WH_ALWAYS_INLINE bool operator()(T a, T b) const { return a < b; }
};
struct LessOrEqualOp {
  template <typename T>
  WH_ALWAYS_INLINE bool operator()(T a, T b) const { return a <= b; }
};
struct GreaterOp {
  template <typename T>
  WH_ALWAYS_INLINE bool operator()(T a, T b) const { return a > b; }
};
struct GreaterOrEqualOp {
  template <typename T>
  WH_ALWAYS_INLINE bool operator()(T a, T b) const { return a >= b; }
};
struct PReluOp {
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x, T slope) const { return x < T{0} ? wrapMul(x, slope) : x; }
};

/// base^exponent for any pair of types; the result is converted to the base's type (an
/// integer base truncates, as numpy's cast of the double result).
template <typename A, typename B>
struct PowOp {
  WH_ALWAYS_INLINE A operator()(A a, B b) const {
    if constexpr (std::is_integral_v<A> && std::is_integral_v<B>) {
      if (b < B{0}) return static_cast<A>(std::pow(static_cast<double>(a), static_cast<double>(b)));
      A result = 1, base = a;
      for (auto e = static_cast<uint64_t>(b); e != 0; e >>= 1) {
        if (e & 1u) result = wrapMul(result, base);
        base = wrapMul(base, base);
      }
      return result;
    } else if constexpr (std::is_same_v<A, float> && std::is_same_v<B, float>) {
      return std::pow(a, b);
    } else {
      return static_cast<A>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    }
  }
};

// ---- loops ----

/// One inner segment: out[i] = op(a[i * sa], b[i * sb]), strides 0 or 1. The four stride
/// cases are separate loops so that each vectorises.
template <typename A, typename B, typename O, typename Op>
WH_ALWAYS_INLINE void binarySegment(const A* a, int64_t sa, const B* b, int64_t sb, O* out, int64_t n, const Op& op) {
  using EA = Elem<A>;
  using EB = Elem<B>;
  using EO = Elem<O>;
  if (sa != 0 && sb != 0) {
    for (int64_t i = 0; i < n; ++i) out[i] = EO::store(op(EA::load(a[i]), EB::load(b[i])));
  } else if (sa != 0) {
    auto bv = EB::load(*b);
    for (int64_t i = 0; i < n; ++i) out[i] = EO::store(op(EA::load(a[i]), bv));
  } else if (sb != 0) {
    auto av = EA::load(*a);
    for (int64_t i = 0; i < n; ++i) out[i] = EO::store(op(av, EB::load(b[i])));
  } else {
    O v = EO::store(op(EA::load(*a), EB::load(*b)));
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

template <typename A, typename B, typename O, typename Op>
WH_SIMD_CLONES void binarySegmentSimd(const A* a, int64_t sa, const B* b, int64_t sb, O* out, int64_t n, Op op) {
  binarySegment(a, sa, b, sb, out, n, op);
}

template <typename A, typename B, typename O, typename Op>
void binarySegmentPlain(const A* a, int64_t sa, const B* b, int64_t sb, O* out, int64_t n, Op op) {
  binarySegment(a, sa, b, sb, out, n, op);
}

/// Runs `op` over a planned broadcast, in parallel when it is big enough.
template <typename A, typename B, typename O, typename Op>
void runBinary(const BroadcastPlan& plan, const A* a, const B* b, O* out, int threads, const Op& op) {
  parallelChunks(plan.numel, threads, kParallelGrain, [&](int64_t begin, int64_t end) {
    forEachSegment(plan, begin, end, [&](const std::array<int64_t, 3>& off, int64_t pos, int64_t n) {
      if constexpr (kSimdType<A> && (kSimdType<B> || std::is_integral_v<B>)) {
        binarySegmentSimd(a + off[0], plan.innerStride(0), b + off[1], plan.innerStride(1), out + pos, n, op);
      } else {
        binarySegmentPlain(a + off[0], plan.innerStride(0), b + off[1], plan.innerStride(1), out + pos, n, op);
      }
    });
  });
}

/// Scans an integer divisor for zeros.
template <typename T>
bool hasZero(const ir::Tensor& t) {
  const T* p = t.data<T>();
  int64_t n = t.numel();
  bool zero = false;
  for (int64_t i = 0; i < n; ++i) zero |= p[i] == T{0};
  return zero;
}

// ---- kernels ----

enum class BinaryKind {
  kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kMod, kFmod, kShiftLeft, kShiftRight,
  kAnd, kOr, kXor, kEqual, kLess, kLessOrEqual, kGreater, kGreaterOrEqual, kPRelu,
};

bool isComparison(BinaryKind k) {
  return k == BinaryKind::kEqual || k == BinaryKind::kLess || k == BinaryKind::kLessOrEqual ||
         k == BinaryKind::kGreater || k == BinaryKind::kGreaterOrEqual;
}

/// The last shapes seen and their plan, so that repeated runs skip the planning.
struct PlanCache {
  std::vector<int64_t> aDims, bDims, outDims;
  BroadcastPlan plan;
  bool valid = false;

  /// Plans a two-input broadcast; false when the shapes do not broadcast (or PRelu's slope
  /// would grow X).
  bool update(const std::vector<int64_t>& a, const std::vector<int64_t>& b, bool unidirectional) {
    if (valid && a == aDims && b == bDims) return true;
    auto out = broadcastShapes(a, b);
    if (!out || (unidirectional && *out != a)) return false;
    if (!makeBroadcastPlan(*out, {&a, &b}, plan)) return false;
    aDims = a;
    bDims = b;
    outDims = std::move(*out);
    valid = true;
    return true;
  }
};

class BinaryKernel final : public Kernel {
 public:
  explicit BinaryKernel(BinaryKind kind, bool channelSlope = false) : kind_(kind), channelSlope_(channelSlope) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& a = ctx.input(0);
    const ir::Tensor* slope = &ctx.input(1);
    // PRelu before opset 7 has no broadcasting: a 1-D slope of X's channel count holds one value
    // per channel (axis 1), as [C, 1, ..., 1] does from opset 7 on (PyTorch's exports of that era).
    std::optional<ir::Tensor> perChannel;
    if (channelSlope_ && slope->rank() == 1 && a.rank() >= 3 && slope->dims()[0] == a.dims()[1] && slope->dims()[0] > 1) {
      std::vector<int64_t> dims(static_cast<size_t>(a.rank() - 1), 1);
      dims[0] = slope->dims()[0];
      perChannel.emplace(slope->dtype(), std::move(dims), slope->buffer());
      slope = &*perChannel;
    }
    const ir::Tensor& b = *slope;
    if (kind_ != BinaryKind::kPow && a.dtype() != b.dtype()) {
      return ctx.error("inputs have different dtypes " + std::string(ir::dataTypeName(a.dtype())) + " and " +
                       std::string(ir::dataTypeName(b.dtype())));
    }
    if (!cache_.update(a.dims(), b.dims(), kind_ == BinaryKind::kPRelu)) {
      return ctx.error("shapes " + shapeToString(a.dims()) + " and " + shapeToString(b.dims()) + " do not broadcast" +
                       (kind_ == BinaryKind::kPRelu ? " to the shape of X" : ""));
    }
    if (kind_ == BinaryKind::kEqual && a.dtype() == ir::DataType::kString) return equalStrings(ctx, a, b);
    ir::DataType outType = isComparison(kind_) ? ir::DataType::kBool : a.dtype();
    // Over an input of the output's shape that nobody reads after this node (a residual Add, a
    // squeeze-excitation gate's Mul): element k of the output is computed from element k of it.
    const bool overA = a.dims() == cache_.outDims, overB = !overA && b.dims() == cache_.outDims && b.dtype() == outType;
    std::byte* out = overA || overB ? ctx.allocateOutputOver(0, overA ? 0 : 1, outType, cache_.outDims)
                                    : ctx.allocateOutput(0, outType, cache_.outDims).mutableRawData();
    if (cache_.plan.numel == 0) return Status::ok();
    switch (kind_) {
      case BinaryKind::kAdd: return same<kNumeric, false>(ctx, a, b, out, AddOp{});
      case BinaryKind::kSub: return same<kNumeric, false>(ctx, a, b, out, SubOp{});
      case BinaryKind::kMul: return same<kNumeric, false>(ctx, a, b, out, MulOp{});
      case BinaryKind::kDiv:
        WH_RETURN_IF_ERROR(checkIntegerDivisor(ctx, b));
        return same<kNumeric, false>(ctx, a, b, out, DivOp{});
      case BinaryKind::kPow: return pow(ctx, a, b, out);
      case BinaryKind::kMax: return same<kNumeric, false>(ctx, a, b, out, MaxOp{});
      case BinaryKind::kMin: return same<kNumeric, false>(ctx, a, b, out, MinOp{});
      case BinaryKind::kMod:
        WH_RETURN_IF_ERROR(checkIntegerDivisor(ctx, b));
        return same<kIntTypes, false>(ctx, a, b, out, ModOp{});
      case BinaryKind::kFmod:
        WH_RETURN_IF_ERROR(checkIntegerDivisor(ctx, b));
        return same<kNumeric, false>(ctx, a, b, out, FmodOp{});
      case BinaryKind::kShiftLeft: return same<kUnsignedInts, false>(ctx, a, b, out, ShiftLeftOp{});
      case BinaryKind::kShiftRight: return same<kUnsignedInts, false>(ctx, a, b, out, ShiftRightOp{});
      case BinaryKind::kAnd: return same<kBoolBit, false>(ctx, a, b, out, AndOp{});
      case BinaryKind::kOr: return same<kBoolBit, false>(ctx, a, b, out, OrOp{});
      case BinaryKind::kXor: return same<kBoolBit, false>(ctx, a, b, out, XorOp{});
      case BinaryKind::kEqual: return same<kAllTypes, true>(ctx, a, b, out, EqualOp{});
      case BinaryKind::kLess: return same<kNumeric, true>(ctx, a, b, out, LessOp{});
      case BinaryKind::kLessOrEqual: return same<kNumeric, true>(ctx, a, b, out, LessOrEqualOp{});
      case BinaryKind::kGreater: return same<kNumeric, true>(ctx, a, b, out, GreaterOp{});
      case BinaryKind::kGreaterOrEqual: return same<kNumeric, true>(ctx, a, b, out, GreaterOrEqualOp{});
      case BinaryKind::kPRelu: return same<kFloatTypes | kI32 | kI64 | kU32 | kU64, false>(ctx, a, b, out, PReluOp{});
    }
    return ctx.error("unknown binary op");
  }

 private:
  template <uint32_t kMask, bool kCompare, typename Op>
  Status same(KernelContext& ctx, const ir::Tensor& a, const ir::Tensor& b, std::byte* out, const Op& op) {
    bool ok = dispatchTypes<kMask>(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      using O = std::conditional_t<kCompare, bool, T>;
      runBinary(cache_.plan, a.data<T>(), b.data<T>(), reinterpret_cast<O*>(out), ctx.threads(), op);
    });
    if (!ok) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(a.dtype())) + " is not supported");
    return Status::ok();
  }

  static Status checkIntegerDivisor(KernelContext& ctx, const ir::Tensor& b) {
    bool zero = false;
    dispatchTypes<kIntTypes>(b.dtype(), [&](auto tag) { zero = hasZero<decltype(tag)>(b); });
    return zero ? ctx.error("integer division by zero") : Status::ok();
  }

  /// Pow: a scalar exponent of 1, 2, 3, 0.5 or -1 on a float base becomes a multiply, a
  /// square root or a divide; otherwise std::pow per element.
  Status pow(KernelContext& ctx, const ir::Tensor& a, const ir::Tensor& b, std::byte* out) {
    constexpr uint32_t kBase = kFloatTypes | kI32 | kI64;
    if (b.numel() == 1 && ir::isFloatingPoint(a.dtype())) {
      double e = b.valueAsDouble(0);
      if (e == 1.0 || e == 2.0 || e == 3.0 || e == 0.5 || e == -1.0) {
        bool ok = dispatchTypes<kFloatTypes>(a.dtype(), [&](auto tag) {
          using T = decltype(tag);
          using C = ComputeT<T>;
          const T* x = a.data<T>();
          T* y = reinterpret_cast<T*>(out);
          // The exponent operand is ignored; x stands in for it (the plan reads element 0).
          auto run = [&](auto op) { runBinary(cache_.plan, x, x, y, ctx.threads(), op); };
          if (e == 1.0) run([](C v, C) { return v; });
          if (e == 2.0) run([](C v, C) { return v * v; });
          if (e == 3.0) run([](C v, C) { return v * v * v; });
          if (e == 0.5 && std::is_same_v<T, float>) {
            // x^0.5 = sqrt(x): every element of x, in order (the scalar exponent adds no elements).
            const auto* xf = reinterpret_cast<const float*>(x);
            auto* yf = reinterpret_cast<float*>(y);
            parallelChunks(a.numel(), ctx.threads(), kParallelGrain,
                           [&](int64_t b, int64_t e2) { sqrtFloats(xf + b, yf + b, e2 - b); });
          } else if (e == 0.5) {
            run([](C v, C) { return std::sqrt(v); });
          }
          if (e == -1.0) run([](C v, C) { return C{1} / v; });
        });
        if (ok) return Status::ok();
      }
    }
    bool ok = dispatchTypes<kBase>(a.dtype(), [&](auto baseTag) {
      using A = decltype(baseTag);
      ok = dispatchTypes<kNumeric>(b.dtype(), [&](auto expTag) {
        using B = decltype(expTag);
        runBinary(cache_.plan, a.data<A>(), b.data<B>(), reinterpret_cast<A*>(out), ctx.threads(),
                  PowOp<ComputeT<A>, ComputeT<B>>{});
      });
    });
    if (!ok) {
      return ctx.unsupported("dtypes " + std::string(ir::dataTypeName(a.dtype())) + " ^ " +
                             std::string(ir::dataTypeName(b.dtype())) + " are not supported");
    }
    return Status::ok();
  }

  Status equalStrings(KernelContext& ctx, const ir::Tensor& a, const ir::Tensor& b) {
    ir::Tensor& out = ctx.allocateOutput(0, ir::DataType::kBool, cache_.outDims);
    bool* o = out.mutableData<bool>();
    const auto& sa = a.stringValues();
    const auto& sb = b.stringValues();
    const BroadcastPlan& p = cache_.plan;
    forEachSegment(p, 0, p.numel, [&](const std::array<int64_t, 3>& off, int64_t pos, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        o[pos + i] = sa[static_cast<size_t>(off[0] + i * p.innerStride(0))] ==
                     sb[static_cast<size_t>(off[1] + i * p.innerStride(1))];
      }
    });
    return Status::ok();
  }

  BinaryKind kind_;
  bool channelSlope_ = false;  ///< PRelu-1/6: a 1-D slope is per channel
  PlanCache cache_;
};

// ---- variadic: Sum, Mean, Max, Min ----

enum class VariadicKind { kSum, kMean, kMax, kMin };

class VariadicKernel final : public Kernel {
 public:
  explicit VariadicKernel(VariadicKind kind) : kind_(kind) {}

  Status run(KernelContext& ctx) override {
    size_t n = ctx.numInputs();
    if (n == 0 || !ctx.hasInput(0)) return ctx.error("needs at least one input");
    const ir::Tensor& first = ctx.input(0);
    if (n == 1) {
      ctx.setOutput(0, first);  // the op of one input is that input
      return Status::ok();
    }
    std::vector<int64_t> outDims = first.dims();
    for (size_t i = 1; i < n; ++i) {
      if (!ctx.hasInput(i)) return ctx.error("input " + std::to_string(i) + " is missing");
      if (ctx.input(i).dtype() != first.dtype()) return ctx.error("inputs have different dtypes");
      auto d = broadcastShapes(outDims, ctx.input(i).dims());
      if (!d) return ctx.error("input shapes do not broadcast: " + shapeToString(ctx.input(i).dims()));
      outDims = std::move(*d);
    }
    ir::Tensor& out = ctx.allocateOutput(0, first.dtype(), outDims);
    int64_t numel = out.numel();
    if (numel == 0) return Status::ok();
    constexpr uint32_t kSumTypes = kFloatTypes;
    bool ok = false;
    auto body = [&](auto tag, const auto& op) {
      using T = decltype(tag);
      T* o = out.mutableData<T>();
      for (size_t i = 1; i < n; ++i) {
        const ir::Tensor& b = ctx.input(i);
        // The running result (input 0 at first) combined with input i.
        const std::vector<int64_t>& aDims = i == 1 ? first.dims() : outDims;
        const T* a = i == 1 ? first.data<T>() : o;
        BroadcastPlan plan;
        if (!makeBroadcastPlan(outDims, {&aDims, &b.dims()}, plan)) return false;
        runBinary(plan, a, b.data<T>(), o, ctx.threads(), op);
      }
      if (kind_ == VariadicKind::kMean) {
        std::vector<int64_t> scalar;
        BroadcastPlan plan;
        if (!makeBroadcastPlan(outDims, {&outDims, &scalar}, plan)) return false;
        T count = Elem<T>::store(static_cast<ComputeT<T>>(n));
        runBinary(plan, o, &count, o, ctx.threads(), DivOp{});
      }
      return true;
    };
    bool planned = true;
    switch (kind_) {
      case VariadicKind::kSum:
      case VariadicKind::kMean:
        ok = dispatchTypes<kSumTypes>(first.dtype(), [&](auto tag) { planned = body(tag, AddOp{}); });
        break;
      case VariadicKind::kMax:
        ok = dispatchTypes<kNumeric>(first.dtype(), [&](auto tag) { planned = body(tag, MaxOp{}); });
        break;
      case VariadicKind::kMin:
        ok = dispatchTypes<kNumeric>(first.dtype(), [&](auto tag) { planned = body(tag, MinOp{}); });
        break;
    }
    if (!ok) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(first.dtype())) + " is not supported");
    if (!planned) return ctx.unsupported("broadcast of rank " + std::to_string(outDims.size()) + " is too irregular");
    return Status::ok();
  }

 private:
  VariadicKind kind_;
};

// ---- Where ----

/// Where(cond, x, y) moves elements by size: one loop per element width.
template <typename T>
void whereSegment(const bool* c, int64_t sc, const T* x, int64_t sx, const T* y, int64_t sy, T* out, int64_t n) {
  if (sc != 0 && sx != 0 && sy != 0) {
    for (int64_t i = 0; i < n; ++i) out[i] = c[i] ? x[i] : y[i];
  } else if (sc != 0 && sx == 0 && sy != 0) {
    T xv = *x;
    for (int64_t i = 0; i < n; ++i) out[i] = c[i] ? xv : y[i];
  } else if (sc != 0 && sx != 0 && sy == 0) {
    T yv = *y;
    for (int64_t i = 0; i < n; ++i) out[i] = c[i] ? x[i] : yv;
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = c[i * sc] ? x[i * sx] : y[i * sy];
  }
}

class WhereKernel final : public Kernel {
 public:
  Status run(KernelContext& ctx) override {
    const ir::Tensor& c = ctx.input(0);
    const ir::Tensor& x = ctx.input(1);
    const ir::Tensor& y = ctx.input(2);
    if (c.dtype() != ir::DataType::kBool) return ctx.error("condition must be bool");
    if (x.dtype() != y.dtype()) return ctx.error("X and Y have different dtypes");
    auto xy = broadcastShapes(x.dims(), y.dims());
    std::optional<std::vector<int64_t>> outDims = xy ? broadcastShapes(c.dims(), *xy) : std::nullopt;
    if (!outDims) {
      return ctx.error("shapes " + shapeToString(c.dims()) + ", " + shapeToString(x.dims()) + " and " +
                       shapeToString(y.dims()) + " do not broadcast");
    }
    BroadcastPlan plan;
    if (!makeBroadcastPlan(*outDims, {&c.dims(), &x.dims(), &y.dims()}, plan)) {
      return ctx.unsupported("broadcast of rank " + std::to_string(outDims->size()) + " is too irregular");
    }
    if (x.dtype() == ir::DataType::kString) {
      std::vector<std::string> values(static_cast<size_t>(plan.numel));
      const bool* cp = c.data<bool>();
      forEachSegment(plan, 0, plan.numel, [&](const std::array<int64_t, 3>& off, int64_t pos, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          bool take = cp[off[0] + i * plan.innerStride(0)];
          values[static_cast<size_t>(pos + i)] =
              take ? x.stringValues()[static_cast<size_t>(off[1] + i * plan.innerStride(1))]
                   : y.stringValues()[static_cast<size_t>(off[2] + i * plan.innerStride(2))];
        }
      });
      ctx.setOutput(0, ir::Tensor::strings(*outDims, std::move(values)));
      return Status::ok();
    }
    size_t width = ir::elementSize(x.dtype());
    if (width == 0) return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    ir::Tensor& out = ctx.allocateOutput(0, x.dtype(), *outDims);
    auto body = [&](auto tag) {
      using T = decltype(tag);
      const bool* cp = c.data<bool>();
      const T* xp = reinterpret_cast<const T*>(x.rawData());
      const T* yp = reinterpret_cast<const T*>(y.rawData());
      T* o = reinterpret_cast<T*>(out.mutableRawData());
      parallelChunks(plan.numel, ctx.threads(), kParallelGrain, [&](int64_t begin, int64_t end) {
        forEachSegment(plan, begin, end, [&](const std::array<int64_t, 3>& off, int64_t pos, int64_t n) {
          whereSegment(cp + off[0], plan.innerStride(0), xp + off[1], plan.innerStride(1), yp + off[2],
                       plan.innerStride(2), o + pos, n);
        });
      });
    };
    switch (width) {
      case 1: body(uint8_t{}); break;
      case 2: body(uint16_t{}); break;
      case 4: body(uint32_t{}); break;
      case 8: body(uint64_t{}); break;
      default: return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) + " is not supported");
    }
    return Status::ok();
  }
};

// ---- registration ----

KernelFactory binary(BinaryKind kind) {
  return [kind](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    if (info.node.numInputs() != 2 || info.node.input(0) == nullptr || info.node.input(1) == nullptr) {
      return info.error("needs two inputs");
    }
    return std::unique_ptr<Kernel>(
        std::make_unique<BinaryKernel>(kind, kind == BinaryKind::kPRelu && info.opset < 7));
  };
}

KernelFactory variadic(VariadicKind kind) {
  return [kind](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<VariadicKernel>(kind));
  };
}

}  // namespace

void registerBinaryKernels(KernelRegistry& r) {
  r.add("", "Add", 1, binary(BinaryKind::kAdd));
  r.add("", "Sub", 1, binary(BinaryKind::kSub));
  r.add("", "Mul", 1, binary(BinaryKind::kMul));
  r.add("", "Div", 1, binary(BinaryKind::kDiv));
  r.add("", "Pow", 1, binary(BinaryKind::kPow));
  r.add("", "And", 1, binary(BinaryKind::kAnd));
  r.add("", "Or", 1, binary(BinaryKind::kOr));
  r.add("", "Xor", 1, binary(BinaryKind::kXor));
  r.add("", "Equal", 1, binary(BinaryKind::kEqual));
  r.add("", "Less", 1, binary(BinaryKind::kLess));
  r.add("", "LessOrEqual", 1, binary(BinaryKind::kLessOrEqual));
  r.add("", "Greater", 1, binary(BinaryKind::kGreater));
  r.add("", "GreaterOrEqual", 1, binary(BinaryKind::kGreaterOrEqual));
  r.add("", "PRelu", 1, binary(BinaryKind::kPRelu));
  r.add("", "Mod", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    bool fmod = info.node.attrInt("fmod", 0) != 0;
    ir::DataType t = info.inputTypes.empty() ? ir::DataType::kUndefined : info.inputTypes[0];
    if (!fmod && ir::isFloatingPoint(t)) return info.error("fmod must be 1 for floating-point inputs");
    return std::unique_ptr<Kernel>(std::make_unique<BinaryKernel>(fmod ? BinaryKind::kFmod : BinaryKind::kMod));
  });
  r.add("", "BitShift", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    std::string direction = info.node.attrString("direction", "");
    if (direction == "LEFT") return std::unique_ptr<Kernel>(std::make_unique<BinaryKernel>(BinaryKind::kShiftLeft));
    if (direction == "RIGHT") return std::unique_ptr<Kernel>(std::make_unique<BinaryKernel>(BinaryKind::kShiftRight));
    return info.error("direction must be LEFT or RIGHT, got '" + direction + "'");
  });
  r.add("", "Sum", 1, variadic(VariadicKind::kSum));
  r.add("", "Mean", 1, variadic(VariadicKind::kMean));
  r.add("", "Max", 1, variadic(VariadicKind::kMax));
  r.add("", "Min", 1, variadic(VariadicKind::kMin));
  r.add("", "Where", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    if (info.node.numInputs() != 3) return info.error("needs three inputs");
    return std::unique_ptr<Kernel>(std::make_unique<WhereKernel>());
  });
}

}  // namespace whittle::runtime::cpu
