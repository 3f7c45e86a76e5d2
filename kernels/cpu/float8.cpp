// float8 decoding and encoding (see float8.h).
#include "cpu/float8.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace whittle::runtime::cpu::float8 {

Format formatOf(ir::DataType t) {
  switch (t) {
    case ir::DataType::kFloat8E4M3FN: return {3, 7, false, false, 448.0};
    case ir::DataType::kFloat8E4M3FNUZ: return {3, 8, false, true, 240.0};
    case ir::DataType::kFloat8E5M2: return {2, 15, true, false, 57344.0};
    default: return {2, 16, false, true, 57344.0};  // kFloat8E5M2FNUZ
  }
}

bool isFloat8(ir::DataType t) {
  return t == ir::DataType::kFloat8E4M3FN || t == ir::DataType::kFloat8E4M3FNUZ || t == ir::DataType::kFloat8E5M2 ||
         t == ir::DataType::kFloat8E5M2FNUZ;
}

double toDouble(uint8_t bits, const Format& f) {
  const int expBits = 7 - f.mantBits;
  const int expMax = (1 << expBits) - 1;
  const int mantMask = (1 << f.mantBits) - 1;
  bool negative = (bits & 0x80u) != 0;
  int e = (bits >> f.mantBits) & expMax;
  int m = bits & mantMask;
  if (f.uz && bits == 0x80u) return std::numeric_limits<double>::quiet_NaN();
  if (!f.uz && !f.ieee && (bits & 0x7fu) == 0x7fu) return std::numeric_limits<double>::quiet_NaN();
  if (f.ieee && e == expMax) {
    return m == 0 ? (negative ? -1.0 : 1.0) * std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::quiet_NaN();
  }
  double v = e == 0 ? std::ldexp(m, 1 - f.bias - f.mantBits) : std::ldexp(m + (1 << f.mantBits), e - f.bias - f.mantBits);
  return negative ? -v : v;
}

uint8_t fromDouble(double x, const Format& f, bool saturate) {
  const uint8_t nan = f.uz ? 0x80u : 0x7fu;
  uint8_t sign = std::signbit(x) ? 0x80u : 0x00u;
  if (std::isnan(x)) return f.uz ? nan : static_cast<uint8_t>(nan | sign);
  double a = std::fabs(x);
  auto overflow = [&]() -> uint8_t {
    if (saturate) return static_cast<uint8_t>(sign | (f.ieee ? 0x7bu : (f.uz ? 0x7fu : 0x7eu)));
    if (f.ieee) return static_cast<uint8_t>(sign | 0x7cu);
    return f.uz ? nan : static_cast<uint8_t>(nan | sign);
  };
  if (std::isinf(a)) return overflow();
  if (a == 0.0) return f.uz ? 0x00u : sign;
  int e = std::ilogb(a);
  int minExp = 1 - f.bias;
  int q = std::max(e, minExp) - f.mantBits;  // quantum exponent
  double r = std::nearbyint(std::ldexp(a, -q));  // mantissa count, round half to even
  if (r == 0.0) return f.uz ? 0x00u : sign;
  double value = std::ldexp(r, q);
  if (value > f.maxFinite) return overflow();
  int er = std::ilogb(value);
  uint32_t code;
  if (er < minExp) {
    code = static_cast<uint32_t>(r);  // subnormal: exponent field 0
  } else {
    auto mant = static_cast<uint32_t>(std::ldexp(value, f.mantBits - er)) - (1u << f.mantBits);
    code = static_cast<uint32_t>(er + f.bias) << f.mantBits | mant;
  }
  return static_cast<uint8_t>(sign | code);
}

}  // namespace whittle::runtime::cpu::float8
