// Cast and CastLike: every pair of numeric types against a scalar reference, float16 and
// bfloat16 rounding, float8 against a brute-force nearest-value search, int4 and strings.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <limits>

#include "kernels/cpu/elementwise_test_util.h"

using namespace whittle;
using namespace whittle::testing::elementwise;
using ir::DataType;

namespace {

const std::vector<DataType> kNumericTypes = {
    DataType::kFloat, DataType::kDouble, DataType::kFloat16, DataType::kBFloat16, DataType::kInt8,
    DataType::kInt16, DataType::kInt32,  DataType::kInt64,   DataType::kUint8,    DataType::kUint16,
    DataType::kUint32, DataType::kUint64, DataType::kBool,
};

/// What a cast of `v` (exactly representable in the source) to `to` gives: floats round,
/// integers truncate toward zero, bool is v != 0.
double castRef(double v, DataType to) {
  switch (to) {
    case DataType::kFloat: return static_cast<float>(v);
    case DataType::kFloat16: return ir::halfToFloat(ir::floatToHalf(static_cast<float>(v)));
    case DataType::kBFloat16: return ir::bfloat16ToFloat(ir::floatToBfloat16(static_cast<float>(v)));
    case DataType::kBool: return v != 0 ? 1 : 0;
    case DataType::kDouble: return v;
    default: return std::trunc(v);
  }
}

ir::Tensor castTo(const ir::Tensor& x, DataType to, int threads = 1, std::vector<ir::Attribute> extra = {}) {
  extra.push_back(ir::Attribute::makeInt("to", static_cast<int64_t>(to)));
  return runOk("Cast", {{"x", x}}, extra, 21, threads);
}

/// The float8 values of a format, decoded by the definition (for the brute-force reference).
struct F8 {
  int mant, bias;
  bool ieee, uz;
};
double decodeF8(uint8_t b, F8 f) {
  int expBits = 7 - f.mant;
  int e = (b >> f.mant) & ((1 << expBits) - 1);
  int m = b & ((1 << f.mant) - 1);
  double s = (b & 0x80) ? -1 : 1;
  if (f.uz && b == 0x80) return std::nan("");
  if (!f.uz && !f.ieee && (b & 0x7f) == 0x7f) return std::nan("");
  if (f.ieee && e == (1 << expBits) - 1) return m == 0 ? s * INFINITY : std::nan("");
  double v = e == 0 ? std::ldexp(m, 1 - f.bias - f.mant) : std::ldexp(m + (1 << f.mant), e - f.bias - f.mant);
  return s * v;
}

}  // namespace

TEST_CASE("Cast converts between every pair of numeric types", "[kernels][elementwise]") {
  // Values every type holds exactly (bool aside), so the reference is the destination rule.
  std::vector<double> values = {0, 1, 2, 3, 7, 100, 127, 0, 1, 5, 64, 42, 9, 1};
  std::vector<double> signedValues = {0, -1, 2, -3, 7, -100, 127, -128, 1, 5, 64, -42, 9, 1};
  for (DataType from : kNumericTypes) {
    bool fromSigned = from != DataType::kBool && from != DataType::kUint8 && from != DataType::kUint16 &&
                      from != DataType::kUint32 && from != DataType::kUint64;
    std::vector<double> src = fromSigned ? signedValues : values;
    if (from == DataType::kBool) {
      for (double& v : src) v = v != 0 ? 1 : 0;
    }
    ir::Tensor x = makeTensor(from, {2, 7}, src);
    for (DataType to : kNumericTypes) {
      bool toUnsigned = to == DataType::kUint8 || to == DataType::kUint16 || to == DataType::kUint32 || to == DataType::kUint64;
      std::vector<double> expected;
      for (double v : src) {
        double e = castRef(v, to);
        if (toUnsigned && e < 0) e += std::ldexp(1.0, 8 * static_cast<int>(ir::elementSize(to)));  // wraps
        expected.push_back(e);
      }
      ir::Tensor y = castTo(x, to);
      CHECK(y.dtype() == to);
      checkClose(y, expected, 0, 0, std::string(ir::dataTypeName(from)) + " -> " + std::string(ir::dataTypeName(to)));
    }
  }
}

TEST_CASE("Cast from bool to float32 over vector widths and threads", "[kernels][elementwise]") {
  // The byte-compare loop (elementwise_cast.cpp boolBytesToFloat): a length of several vectors
  // and a tail, split over two threads.
  std::vector<double> values;
  for (int64_t i = 0; i < 70001; ++i) values.push_back((i * 7) % 3 == 0 ? 1 : 0);
  ir::Tensor x = makeTensor(DataType::kBool, {1, 70001}, values);
  for (int threads : {1, 2}) checkClose(castTo(x, DataType::kFloat, threads), values, 0, 0, "bool -> float");
}

TEST_CASE("Cast rounds floats to nearest even and truncates to integers", "[kernels][elementwise]") {
  std::mt19937 rng(2);
  for (const auto& dims : kUnaryShapes) {
    ir::Tensor x = randomTensor(rng, DataType::kFloat, dims, -300, 300);
    for (DataType to : {DataType::kFloat16, DataType::kBFloat16, DataType::kInt32, DataType::kInt8, DataType::kDouble}) {
      std::vector<double> expected;
      for (int64_t i = 0; i < x.numel(); ++i) {
        double v = x.valueAsDouble(i);
        double e = castRef(v, to);
        if (to == DataType::kInt8) e = static_cast<double>(static_cast<int8_t>(static_cast<int64_t>(v)));
        expected.push_back(e);
      }
      for (int threads : kThreadCounts) checkClose(castTo(x, to, threads), expected, 0, 0, "float32 -> " + std::string(ir::dataTypeName(to)));
    }
  }
  // double -> float16 rounds once (no double rounding through float32): 1 + 2^-11 + 2^-40 is
  // just above the halfway point between two float16 values, so it rounds up.
  ir::Tensor d = makeTensor(DataType::kDouble, {2}, {1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), 65520.0});
  checkClose(castTo(d, DataType::kFloat16), {1.0 + std::ldexp(1.0, -10), INFINITY}, 0, 0, "double -> float16");
  // nan and inf survive the float16/bfloat16 round trip.
  ir::Tensor s = makeTensor(DataType::kFloat, {3}, {NAN, INFINITY, -INFINITY});
  checkClose(castTo(castTo(s, DataType::kFloat16), DataType::kFloat), {NAN, INFINITY, -INFINITY}, 0, 0, "specials f16");
  checkClose(castTo(castTo(s, DataType::kBFloat16), DataType::kFloat), {NAN, INFINITY, -INFINITY}, 0, 0, "specials bf16");
  // Casting to the same type is a view.
  CHECK(castTo(s, DataType::kFloat).rawData() == s.rawData());
}

TEST_CASE("Cast between float32 and float16 is exact for every bit pattern", "[kernels][elementwise]") {
  // float16 -> float32: all 65536 values.
  ir::Tensor h(DataType::kFloat16, {65536});
  for (int i = 0; i < 65536; ++i) h.mutableData<uint16_t>()[i] = static_cast<uint16_t>(i);
  for (int threads : kThreadCounts) {
    ir::Tensor f = castTo(h, DataType::kFloat, threads);
    int bad = 0;
    for (int i = 0; i < 65536; ++i) {
      float want = ir::halfToFloat(static_cast<uint16_t>(i));
      float got = f.data<float>()[i];
      bool ok = std::isnan(want) ? std::isnan(got) : std::bit_cast<uint32_t>(want) == std::bit_cast<uint32_t>(got);
      if (!ok && bad++ < 5) UNSCOPED_INFO("half bits " << i << ": got " << got << ", expected " << want);
    }
    CHECK(bad == 0);
  }
  // float32 -> float16: random bit patterns (all exponents: subnormals, overflow, nan).
  std::mt19937 rng(12);
  ir::Tensor x(DataType::kFloat, {300001});
  for (int64_t i = 0; i < x.numel(); ++i) x.mutableData<uint32_t>()[i] = static_cast<uint32_t>(rng());
  for (int threads : kThreadCounts) {
    ir::Tensor y = castTo(x, DataType::kFloat16, threads);
    int bad = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      float v = x.data<float>()[i];
      uint16_t want = ir::floatToHalf(v), got = y.data<uint16_t>()[i];
      bool ok = std::isnan(v) ? (got & 0x7c00u) == 0x7c00u && (got & 0x3ffu) != 0 : got == want;
      if (!ok && bad++ < 5) UNSCOPED_INFO("float " << v << ": got " << got << ", expected " << want);
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("Cast to float8 picks the nearest value, ties to even, and saturates", "[kernels][elementwise]") {
  struct Format {
    DataType type;
    F8 f;
    double max;
  };
  std::vector<Format> formats = {{DataType::kFloat8E4M3FN, {3, 7, false, false}, 448},
                                 {DataType::kFloat8E4M3FNUZ, {3, 8, false, true}, 240},
                                 {DataType::kFloat8E5M2, {2, 15, true, false}, 57344},
                                 {DataType::kFloat8E5M2FNUZ, {2, 16, false, true}, 57344}};
  std::mt19937 rng(4);
  for (const Format& fmt : formats) {
    // Every finite code, the midpoints between neighbours, random values and out-of-range ones.
    std::vector<double> finite;
    for (int b = 0; b < 256; ++b) {
      double v = decodeF8(static_cast<uint8_t>(b), fmt.f);
      if (std::isfinite(v)) finite.push_back(v);
    }
    std::sort(finite.begin(), finite.end());
    std::vector<double> inputs = finite;
    for (size_t i = 1; i < finite.size(); ++i) inputs.push_back((finite[i - 1] + finite[i]) / 2);
    std::uniform_real_distribution<double> dist(-fmt.max * 1.2, fmt.max * 1.2);
    for (int i = 0; i < 300; ++i) inputs.push_back(static_cast<float>(dist(rng) / std::pow(2.0, i % 20)));
    ir::Tensor x(DataType::kFloat, {static_cast<int64_t>(inputs.size())});
    for (size_t i = 0; i < inputs.size(); ++i) x.mutableData<float>()[i] = static_cast<float>(inputs[i]);
    for (bool saturate : {true, false}) {
      ir::Tensor y = castTo(x, fmt.type, 1, {ir::Attribute::makeInt("saturate", saturate ? 1 : 0)});
      ir::Tensor back = castTo(y, DataType::kFloat);
      std::vector<double> expected;
      for (size_t i = 0; i < inputs.size(); ++i) {
        double v = x.data<float>()[i];
        // Brute force: the nearest code; on a tie, the one with an even mantissa (even code).
        double best = 0;
        int bestCode = -1;
        for (int b = 0; b < 256; ++b) {
          double c = decodeF8(static_cast<uint8_t>(b), fmt.f);
          if (!std::isfinite(c)) continue;
          double d = std::fabs(c - v), bd = std::fabs(best - v);
          if (bestCode < 0 || d < bd || (d == bd && (b & 1) == 0 && (bestCode & 1) == 1)) {
            best = c;
            bestCode = b;
          }
        }
        // Beyond max (after rounding): saturate, or inf (E5M2) / nan.
        double limit = fmt.max;
        double half = (limit - finite[finite.size() - 2]) / 2;
        double d = std::fabs(v) - limit;
        bool over = d > half || (d == half && (bestCode & 1) == 1);
        if (over && !saturate) best = fmt.type == DataType::kFloat8E5M2 ? std::copysign(INFINITY, v) : NAN;
        expected.push_back(best);
      }
      checkClose(back, expected, 0, 0, std::string(ir::dataTypeName(fmt.type)) + (saturate ? " saturate" : " no saturate"));
    }
  }
  // nan stays nan; -0 keeps its sign where the format has one.
  ir::Tensor n = makeTensor(DataType::kFloat, {2}, {NAN, -0.0});
  ir::Tensor fn = castTo(n, DataType::kFloat8E4M3FN);
  CHECK((fn.data<uint8_t>()[0] & 0x7f) == 0x7f);
  CHECK(fn.data<uint8_t>()[1] == 0x80);
  CHECK(castTo(n, DataType::kFloat8E4M3FNUZ).data<uint8_t>()[0] == 0x80);
  CHECK(castTo(n, DataType::kFloat8E4M3FNUZ).data<uint8_t>()[1] == 0x00);
}

TEST_CASE("Cast to int4 rounds and saturates; int4 unpacks with sign", "[kernels][elementwise]") {
  ir::Tensor x = makeTensor(DataType::kFloat, {7}, {-9, -8, -2.5, 0.5, 1.5, 7.4, 20});
  ir::Tensor i4 = castTo(x, DataType::kInt4);
  checkClose(castTo(i4, DataType::kFloat), {-8, -8, -2, 0, 2, 7, 7}, 0, 0, "int4");
  ir::Tensor u4 = castTo(x, DataType::kUint4);
  checkClose(castTo(u4, DataType::kInt8), {0, 0, 0, 0, 2, 7, 15}, 0, 0, "uint4");
}

TEST_CASE("Cast to and from strings as numpy does", "[kernels][elementwise]") {
  ir::Tensor x = makeTensor(DataType::kFloat, {6}, {0.9767611, 1.0, 1e-7, 123456.5, -0.039187793, 3e20});
  ir::Tensor s = castTo(x, DataType::kString);
  REQUIRE(s.dtype() == DataType::kString);
  CHECK(s.stringValues() == std::vector<std::string>{"0.9767611", "1.0", "1e-07", "123456.5", "-0.039187793", "3e+20"});
  ir::Tensor back = castTo(s, DataType::kFloat);
  CHECK(back.bitwiseEqual(x));
  ir::Tensor ints = castTo(ir::Tensor::strings({3}, {"12", "-7", " 3 "}), DataType::kInt64);
  checkClose(ints, {12, -7, 3}, 0, 0, "string -> int64");
  auto bad = runNode("Cast", {{"x", ir::Tensor::strings({1}, {"abc"})}}, {ir::Attribute::makeInt("to", 1)}, 21);
  CHECK_FALSE(bad.isOk());
}

TEST_CASE("CastLike takes the target type from its second input", "[kernels][elementwise]") {
  ir::Tensor x = makeTensor(DataType::kFloat, {3}, {1.5, -2.5, 3});
  ir::Tensor like = makeTensor(DataType::kInt32, {1}, {0});
  ir::Tensor y = runOk("CastLike", {{"x", x}, {"like", like}}, {}, 21);
  CHECK(y.dtype() == DataType::kInt32);
  checkClose(y, {1, -2, 3}, 0, 0, "CastLike");
}
