// Cast and CastLike between every numeric type, bool, float16, bfloat16, the four float8
// types (with the saturate attribute), int4/uint4 and strings.
//
// Numeric pairs convert directly, one loop per pair. float8, int4 and string go through
// double (parsing and formatting strings directly for integers, so int64 stays exact).
// Casting to the input's own type returns the input as a view.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <charconv>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define WH_HAVE_F16C_PATH 1
#endif
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

#include "cpu/elementwise_common.h"
#include "cpu/float8.h"
#include "cpu/kernel_util.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu {
namespace {

// ---- scalar conversions ----

/// A float to an integer type: through int64 (so that -1.0 to uint8 wraps to 255 as in
/// numpy); nan and values outside int64 give INT64_MIN's low bits, as x86 does, without
/// undefined behaviour.
template <typename D, typename F>
WH_ALWAYS_INLINE D floatToInt(F x) {
  if constexpr (std::is_same_v<D, uint64_t>) {
    if (x >= F(9223372036854775808.0) && x < F(18446744073709551616.0)) return static_cast<uint64_t>(x);
  }
  bool inRange = x >= F(-9223372036854775808.0) && x < F(9223372036854775808.0);
  int64_t v = inRange ? static_cast<int64_t>(x) : std::numeric_limits<int64_t>::min();
  return static_cast<D>(v);
}

/// double to float16 with one rounding: round to odd into float first (which keeps the
/// sticky bit), then to nearest even into float16.
WH_ALWAYS_INLINE float roundToOddFloat(double d) {
  auto f = static_cast<float>(d);
  if (std::isfinite(d) && static_cast<double>(f) != d) {
    uint32_t bits = std::bit_cast<uint32_t>(f);
    // f was rounded away from d's magnitude: step back toward zero, then mark inexact.
    if (std::fabs(static_cast<double>(f)) > std::fabs(d)) bits -= 1;
    f = std::bit_cast<float>(bits | 1u);
  }
  return f;
}

/// Converts one element from S to D (storage types; bool is bool).
template <typename S, typename D>
WH_ALWAYS_INLINE D convert(S s) {
  if constexpr (std::is_same_v<D, bool>) {
    return Elem<S>::load(s) != ComputeT<S>{0};
  } else if constexpr (std::is_same_v<D, Half>) {
    if constexpr (std::is_same_v<S, double>) return Half{floatToHalfFast(roundToOddFloat(s))};
    else return Half{floatToHalfFast(static_cast<float>(Elem<S>::load(s)))};
  } else if constexpr (std::is_same_v<D, BFloat16>) {
    if constexpr (std::is_same_v<S, double>) return BFloat16{floatToBfloat16Fast(roundToOddFloat(s))};
    else return BFloat16{floatToBfloat16Fast(static_cast<float>(Elem<S>::load(s)))};
  } else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<ComputeT<S>>) {
    return floatToInt<D>(Elem<S>::load(s));
  } else {
    return static_cast<D>(Elem<S>::load(s));
  }
}

template <typename S, typename D>
WH_SIMD_CLONES void convertSimd(const S* s, D* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = convert<S, D>(s[i]);
}
template <typename S, typename D>
void convertPlain(const S* s, D* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = convert<S, D>(s[i]);
}

/// bool to float from its bytes: a static_cast from bool does not vectorise (each byte is
/// loaded as a bool), a byte compare does. magika's one-hot Cast of [1, 2048, 257] took 0.24 ms
/// a run against ONNX Runtime's 0.085.
WH_SIMD_CLONES void boolBytesToFloat(const uint8_t* s, float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = s[i] != 0 ? 1.0f : 0.0f;
}

// ---- float32 <-> float16 with F16C ----
// The bit-twiddling conversion vectorises but takes a dozen instructions per vector; F16C
// converts 8 values in one (round to nearest even, as floatToHalfFast). It is in every x86-64
// since 2013, but not in the baseline the build targets, hence the runtime check.

#if WH_HAVE_F16C_PATH
bool hasF16c() {
  static const bool has = __builtin_cpu_supports("avx2") && cpuHasAvxF16c();
  return has;
}

__attribute__((target("avx2,f16c"))) void floatToHalfF16c(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), h);
  }
  for (; i < n; ++i) d[i] = floatToHalfFast(s[i]);
}

__attribute__((target("avx2,f16c"))) void halfToFloatF16c(const uint16_t* s, float* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) d[i] = halfToFloatFast(s[i]);
}
#endif

// ---- strings ----

/// numpy's str() of a float: shortest round-trip digits, positional for exponents -4..15,
/// scientific otherwise ("1e-05", "1.5e+16"), "nan", "inf".
template <typename F>
std::string formatFloat(F v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t ePos = sci.find('e');
  int exp = std::stoi(sci.substr(ePos + 1));
  std::string mant = sci.substr(0, ePos);
  bool negative = mant[0] == '-';
  if (negative) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += e;
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    auto intDigits = static_cast<size_t>(exp + 1);
    if (digits.size() <= intDigits) {
      out = digits + std::string(intDigits - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, intDigits) + "." + digits.substr(intDigits);
    }
  }
  return negative ? "-" + out : out;
}

template <typename T>
std::string formatValue(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "True" : "False";
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, double>) {
    return formatFloat(v);
  } else {
    return formatFloat(static_cast<float>(Elem<T>::load(v)));
  }
}

/// Parses a number as numpy's astype does: integers for integer targets, else a float.
template <typename D>
bool parseValue(const std::string& s, D& out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(*b))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(e[-1]))) --e;
  if (b < e && *b == '+') ++b;
  if constexpr (std::is_same_v<D, bool>) {
    double v = 0;
    auto r = std::from_chars(b, e, v);
    out = v != 0.0;
    return r.ec == std::errc() && r.ptr == e;
  } else if constexpr (std::is_integral_v<D>) {
    auto r = std::from_chars(b, e, out);
    return r.ec == std::errc() && r.ptr == e;
  } else if constexpr (std::is_same_v<D, double>) {
    auto r = std::from_chars(b, e, out);
    return r.ec == std::errc() && r.ptr == e;
  } else {
    float v = 0;
    auto r = std::from_chars(b, e, v);
    out = convert<float, D>(v);
    return r.ec == std::errc() && r.ptr == e;
  }
}

// ---- kernel ----

bool isInt4(ir::DataType t) { return t == ir::DataType::kInt4 || t == ir::DataType::kUint4; }


std::string typeName(ir::DataType t) { return std::string(ir::dataTypeName(t)); }

class CastKernel final : public Kernel {
 public:
  /// `to` is the target dtype, or kUndefined for CastLike (the dtype of input 1).
  CastKernel(ir::DataType to, bool saturate) : to_(to), saturate_(saturate) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    ir::DataType to = to_ != ir::DataType::kUndefined ? to_ : ctx.input(1).dtype();
    ir::DataType from = x.dtype();
    if (from == to) {
      ctx.setOutput(0, x);
      return Status::ok();
    }
    int64_t n = x.numel();
    if (to == ir::DataType::kString) return toString(ctx, x);
    ir::Tensor& y = ctx.allocateOutput(0, to, x.dims());
    if (n == 0) return Status::ok();
    if (from == ir::DataType::kString) return fromString(ctx, x, y);
#if WH_HAVE_F16C_PATH
    if (hasF16c() && ((from == ir::DataType::kFloat && to == ir::DataType::kFloat16) ||
                      (from == ir::DataType::kFloat16 && to == ir::DataType::kFloat))) {
      const std::byte* s = x.rawData();
      std::byte* d = y.mutableRawData();
      bool toHalf = to == ir::DataType::kFloat16;
      parallelChunks(n, ctx.threads(), kParallelGrain, [&](int64_t b, int64_t e) {
        if (toHalf) {
          floatToHalfF16c(reinterpret_cast<const float*>(s) + b, reinterpret_cast<uint16_t*>(d) + b, e - b);
        } else {
          halfToFloatF16c(reinterpret_cast<const uint16_t*>(s) + b, reinterpret_cast<float*>(d) + b, e - b);
        }
      });
      return Status::ok();
    }
#endif
    if (from == ir::DataType::kBool && to == ir::DataType::kFloat) {
      const auto* s = reinterpret_cast<const uint8_t*>(x.rawData());
      float* d = y.mutableData<float>();
      parallelChunks(n, ctx.threads(), kParallelGrain, [&](int64_t b, int64_t e) { boolBytesToFloat(s + b, d + b, e - b); });
      return Status::ok();
    }
    // Numeric to numeric: one direct loop per pair.
    bool handled = false;
    dispatchTypes<kAllTypes>(from, [&](auto fromTag) {
      using S = decltype(fromTag);
      handled = dispatchTypes<kAllTypes>(to, [&](auto toTag) {
        using D = decltype(toTag);
        const S* s = x.data<S>();
        D* d = y.mutableData<D>();
        parallelChunks(n, ctx.threads(), kParallelGrain, [&](int64_t b, int64_t e) {
          if constexpr (kSimdType<S> || kSimdType<D>) {
            convertSimd(s + b, d + b, e - b);
          } else {
            convertPlain(s + b, d + b, e - b);
          }
        });
      });
    });
    if (handled) return Status::ok();
    // float8 and int4 on either side: through double.
    bool fromOk = typeBit(from) != 0 || float8::isFloat8(from) || isInt4(from);
    bool toOk = typeBit(to) != 0 || float8::isFloat8(to) || isInt4(to);
    if (!fromOk || !toOk) return ctx.unsupported("cast from " + typeName(from) + " to " + typeName(to) + " is not supported");
    constexpr int64_t kBlock = 256;
    double buf[kBlock];
    for (int64_t b = 0; b < n; b += kBlock) {
      int64_t m = std::min(kBlock, n - b);
      readDoubles(x, b, m, buf);
      writeDoubles(y, b, m, buf);
    }
    return Status::ok();
  }

 private:
  static void readDoubles(const ir::Tensor& x, int64_t begin, int64_t n, double* out) {
    ir::DataType t = x.dtype();
    if (float8::isFloat8(t)) {
      const float8::Format f = float8::formatOf(t);
      const auto* p = reinterpret_cast<const uint8_t*>(x.rawData());
      for (int64_t i = 0; i < n; ++i) out[i] = float8::toDouble(p[begin + i], f);
    } else if (isInt4(t)) {
      const auto* p = reinterpret_cast<const uint8_t*>(x.rawData());
      for (int64_t i = 0; i < n; ++i) {
        int64_t k = begin + i;
        int v = (p[k / 2] >> ((k % 2) * 4)) & 0xf;
        if (t == ir::DataType::kInt4 && v >= 8) v -= 16;
        out[i] = v;
      }
    } else {
      dispatchTypes<kAllTypes>(t, [&](auto tag) {
        using S = decltype(tag);
        const S* p = x.data<S>();
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(Elem<S>::load(p[begin + i]));
      });
    }
  }

  void writeDoubles(ir::Tensor& y, int64_t begin, int64_t n, const double* in) const {
    ir::DataType t = y.dtype();
    if (float8::isFloat8(t)) {
      const float8::Format f = float8::formatOf(t);
      auto* p = reinterpret_cast<uint8_t*>(y.mutableRawData());
      for (int64_t i = 0; i < n; ++i) p[begin + i] = float8::fromDouble(in[i], f, saturate_);
    } else if (isInt4(t)) {
      auto* p = reinterpret_cast<uint8_t*>(y.mutableRawData());
      double lo = t == ir::DataType::kInt4 ? -8.0 : 0.0;
      double hi = t == ir::DataType::kInt4 ? 7.0 : 15.0;
      for (int64_t i = 0; i < n; ++i) {
        int64_t k = begin + i;
        double v = std::isnan(in[i]) ? 0.0 : std::nearbyint(std::clamp(in[i], lo, hi));
        auto nibble = static_cast<uint8_t>(static_cast<int>(v) & 0xf);
        uint8_t& byte = p[k / 2];
        byte = k % 2 == 0 ? static_cast<uint8_t>((byte & 0xf0u) | nibble) : static_cast<uint8_t>((byte & 0x0fu) | nibble << 4);
      }
    } else {
      dispatchTypes<kAllTypes>(t, [&](auto tag) {
        using D = decltype(tag);
        D* p = y.mutableData<D>();
        for (int64_t i = 0; i < n; ++i) p[begin + i] = convert<double, D>(in[i]);
      });
    }
  }

  Status toString(KernelContext& ctx, const ir::Tensor& x) {
    std::vector<std::string> values(static_cast<size_t>(x.numel()));
    bool ok = dispatchTypes<kAllTypes>(x.dtype(), [&](auto tag) {
      using S = decltype(tag);
      const S* p = x.data<S>();
      for (size_t i = 0; i < values.size(); ++i) values[i] = formatValue(p[i]);
    });
    if (!ok) return ctx.unsupported("cast from " + typeName(x.dtype()) + " to string is not supported");
    ctx.setOutput(0, ir::Tensor::strings(x.dims(), std::move(values)));
    return Status::ok();
  }

  Status fromString(KernelContext& ctx, const ir::Tensor& x, ir::Tensor& y) {
    const auto& strings = x.stringValues();
    Status status = Status::ok();
    bool ok = dispatchTypes<kAllTypes>(y.dtype(), [&](auto tag) {
      using D = decltype(tag);
      D* p = y.mutableData<D>();
      for (size_t i = 0; i < strings.size() && status.isOk(); ++i) {
        if (!parseValue(strings[i], p[i])) {
          status = ctx.error("cannot parse '" + strings[i] + "' as " + typeName(y.dtype()));
        }
      }
    });
    if (!ok) return ctx.unsupported("cast from string to " + typeName(y.dtype()) + " is not supported");
    return status;
  }

  ir::DataType to_;
  bool saturate_;
};

}  // namespace

void registerCastKernels(KernelRegistry& r) {
  r.add("", "Cast", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    const ir::Attribute* to = info.node.findAttribute("to");
    if (to == nullptr) return info.error("attribute 'to' is missing");
    int64_t code = to->i;
    if (to->kind == ir::Attribute::Kind::kString) {
      // Opset 1-5 spelled the type as a string ("FLOAT").
      auto parsed = ir::parseDataType(to->s);
      if (!parsed) return info.error("unknown type '" + to->s + "'");
      code = static_cast<int64_t>(*parsed);
    }
    if (!ir::isKnownDataType(static_cast<int32_t>(code))) return info.error("unknown type " + std::to_string(code));
    bool saturate = info.node.attrInt("saturate", 1) != 0;
    return std::unique_ptr<Kernel>(std::make_unique<CastKernel>(static_cast<ir::DataType>(code), saturate));
  });
  r.add("", "CastLike", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    if (info.node.input(1) == nullptr) return info.error("input target_type is missing");
    bool saturate = info.node.attrInt("saturate", 1) != 0;
    return std::unique_ptr<Kernel>(std::make_unique<CastKernel>(ir::DataType::kUndefined, saturate));
  });
}

}  // namespace whittle::runtime::cpu
