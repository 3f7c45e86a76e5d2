// Unary elementwise kernels and Clip against libm in double over the shared shape list, at 1
// and 2 threads, for float32, float16, bfloat16 and float64; plus dense accuracy sweeps of the
// vectorised float32 approximations (exp, log, tanh, sigmoid, erf, ...) against libm.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>

#include "kernels/cpu/elementwise_test_util.h"

using namespace whittle;
using namespace whittle::testing::elementwise;
using ir::DataType;

namespace {

struct UnaryCase {
  std::string op;
  std::function<double(double)> ref;
  double lo = -4, hi = 4;
  std::vector<ir::Attribute> attrs = {};
  int64_t opset = 17;
  /// float32 relative tolerance: a few ulps; Gelu's far tail inherits the rounding of x/sqrt(2)
  /// amplified by erfc's slope (about 2u^2 ulps).
  double rtol = 2e-6;
  /// Absolute tolerance in float32, for ops whose result cancels near zero (alpha x + beta).
  double atol = 1e-30;
};

double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }

std::vector<UnaryCase> unaryCases() {
  constexpr double kSeluAlpha = 1.67326319217681884765625, kSeluGamma = 1.05070102214813232421875;
  return {
      {"Relu", [](double x) { return std::max(x, 0.0); }},
      {"LeakyRelu", [](double x) { return x >= 0 ? x : double{0.1f} * x; }, -4, 4, {ir::Attribute::makeFloat("alpha", 0.1f)}},
      {"LeakyRelu", [](double x) { return x >= 0 ? x : double{0.01f} * x; }},
      {"Elu", [](double x) { return x >= 0 ? x : 2.0 * std::expm1(x); }, -4, 4, {ir::Attribute::makeFloat("alpha", 2.0f)}},
      {"Selu", [=](double x) { return x > 0 ? kSeluGamma * x : kSeluGamma * kSeluAlpha * std::expm1(x); }},
      {"Celu", [](double x) { return x > 0 ? x : 1.5 * std::expm1(x / 1.5); }, -4, 4, {ir::Attribute::makeFloat("alpha", 1.5f)}},
      {"Sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }, -12, 12},
      {"HardSigmoid", [](double x) { return std::clamp(double{0.2f} * x + 0.5, 0.0, 1.0); }, -4, 4, {}, 17, 2e-6, 1e-7},
      {"HardSwish", [](double x) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); }, -5, 5, {}, 17, 2e-6, 1e-7},
      {"Tanh", [](double x) { return std::tanh(x); }, -6, 6},
      {"Softplus", softplus, -20, 20},
      {"Softsign", [](double x) { return x / (1 + std::fabs(x)); }},
      {"Exp", [](double x) { return std::exp(x); }, -20, 20},
      {"Log", [](double x) { return std::log(x); }, 1e-3, 100},
      {"Sqrt", [](double x) { return std::sqrt(x); }, 0, 100},
      {"Reciprocal", [](double x) { return 1 / x; }, 0.1, 10},
      {"Abs", [](double x) { return std::fabs(x); }},
      {"Neg", [](double x) { return -x; }},
      {"Floor", [](double x) { return std::floor(x); }},
      {"Ceil", [](double x) { return std::ceil(x); }},
      {"Round", [](double x) { return std::nearbyint(x); }},
      {"Sign", [](double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }},
      {"Erf", [](double x) { return std::erf(x); }, -4, 4},
      {"Gelu", [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }, -6, 6, {}, 20, 1e-5},
      {"Gelu",
       [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); },
       -6, 6, {ir::Attribute::makeString("approximate", "tanh")}, 20, 1e-5},
      {"Mish", [](double x) { return x * std::tanh(softplus(x)); }, -10, 10},
      {"ThresholdedRelu", [](double x) { return x > 1.0 ? x : 0.0; }},
      {"Sin", [](double x) { return std::sin(x); }},
      {"Cos", [](double x) { return std::cos(x); }},
      {"Tan", [](double x) { return std::tan(x); }, -1.2, 1.2},
      {"Asin", [](double x) { return std::asin(x); }, -0.99, 0.99},
      {"Acos", [](double x) { return std::acos(x); }, -0.99, 0.99},
      {"Atan", [](double x) { return std::atan(x); }},
      {"Sinh", [](double x) { return std::sinh(x); }},
      {"Cosh", [](double x) { return std::cosh(x); }},
      {"Asinh", [](double x) { return std::asinh(x); }},
      {"Acosh", [](double x) { return std::acosh(x); }, 1, 10},
      {"Atanh", [](double x) { return std::atanh(x); }, -0.99, 0.99},
  };
}

}  // namespace

TEST_CASE("Unary ops match libm over the shape list in every float dtype", "[kernels][elementwise]") {
  std::mt19937 rng(21);
  const std::vector<DataType> dtypes = {DataType::kFloat, DataType::kFloat16, DataType::kBFloat16, DataType::kDouble};
  for (const UnaryCase& c : unaryCases()) {
    testing::compareWithReference<std::vector<int64_t>>(
        dtypes, kUnaryShapes, [&](const std::vector<int64_t>& dims, DataType dtype) {
          std::vector<testing::KernelCase> cases;
          if (dtype != DataType::kFloat && numel(dims) > 1000) return cases;
          std::vector<NodeInput> inputs = {{"x", randomTensor(rng, dtype, dims, c.lo, c.hi)}};
          std::vector<double> expected;
          for (int64_t i = 0; i < inputs[0].tensor.numel(); ++i)
            expected.push_back(c.ref(inputs[0].tensor.valueAsDouble(i)));
          // float32 results are within a few ulps; rounded dtypes within their rounding.
          double rtol = dtype == DataType::kFloat ? c.rtol : singleRoundingTolerance(dtype);
          double atol = std::max(tinyTolerance(dtype), dtype == DataType::kDouble ? 0.0 : c.atol);
          cases.push_back({oneNodeModel(c.op, inputs, c.attrs, c.opset),
                           inputs,
                           {{roundTo(dtype, expected), rtol, atol, dims, dtype}},
                           c.op + " " + std::string(ir::dataTypeName(dtype)) + " " + shapeText(dims)});
          return cases;
        });
  }
}

TEST_CASE("Vectorised float32 math keeps 1e-6 relative accuracy over its whole range", "[kernels][elementwise]") {
  struct Sweep {
    std::string op;
    std::function<double(double)> ref;
    double lo, hi;
    double rtol;
    std::vector<ir::Attribute> attrs = {};
    int64_t opset = 17;
  };
  std::vector<Sweep> sweeps = {
      {"Erf", [](double x) { return std::erf(x); }, -6, 6, 1e-6},
      {"Exp", [](double x) { return std::exp(x); }, -87, 88.7, 1e-6},
      {"Log", [](double x) { return std::log(x); }, 1e-30, 1e30, 1e-6},
      {"Log", [](double x) { return std::log(x); }, 0.5, 2, 1e-6},
      {"Tanh", [](double x) { return std::tanh(x); }, -10, 10, 1e-6},
      {"Sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }, -80, 30, 1e-6},
      {"Softplus", softplus, -80, 80, 1e-6},
      {"Elu", [](double x) { return x >= 0 ? x : std::expm1(x); }, -10, 2, 1e-6},
      {"Mish", [](double x) { return x * std::tanh(softplus(x)); }, -20, 20, 2e-6},
      {"Gelu", [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }, -8, 8, 1e-5, {}, 20},
  };
  constexpr int64_t kPoints = 200001;
  for (const Sweep& s : sweeps) {
    ir::Tensor x(DataType::kFloat, {kPoints});
    bool logScale = s.op == "Log" && s.hi / s.lo > 1e3;
    for (int64_t i = 0; i < kPoints; ++i) {
      double t = static_cast<double>(i) / (kPoints - 1);
      double v = logScale ? s.lo * std::pow(s.hi / s.lo, t) : s.lo + (s.hi - s.lo) * t;
      x.mutableData<float>()[i] = static_cast<float>(v);
    }
    ir::Tensor y = runOk(s.op, {{"x", x}}, s.attrs, s.opset, 2);
    double worst = 0, worstX = 0;
    for (int64_t i = 0; i < kPoints; ++i) {
      double xv = x.data<float>()[i];
      double e = s.ref(xv);
      if (std::fabs(e) < 1e-37) continue;  // float subnormal results flush to zero
      double err = std::fabs(y.data<float>()[i] - e) / std::fabs(e);
      if (err > worst) {
        worst = err;
        worstX = xv;
      }
    }
    INFO(s.op << " on [" << s.lo << ", " << s.hi << "]: worst relative error " << worst << " at x = " << worstX);
    CHECK(worst <= s.rtol);
  }
  // Special values.
  float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  ir::Tensor sp = makeTensor(DataType::kFloat, {5}, {inf, -inf, nan, 0.0, -0.0});
  checkClose(runOk("Exp", {{"x", sp}}), {inf, 0, nan, 1, 1}, 0, 0, "Exp specials");
  checkClose(runOk("Tanh", {{"x", sp}}), {1, -1, nan, 0, 0}, 0, 0, "Tanh specials");
  checkClose(runOk("Sigmoid", {{"x", sp}}), {1, 0, nan, 0.5, 0.5}, 0, 0, "Sigmoid specials");
  checkClose(runOk("Erf", {{"x", sp}}), {1, -1, nan, 0, 0}, 0, 0, "Erf specials");
  ir::Tensor lp = makeTensor(DataType::kFloat, {5}, {inf, -1.0, nan, 0.0, 1e-45});
  checkClose(runOk("Log", {{"x", lp}}), {inf, nan, nan, -inf, std::log(1.4012984643e-45)}, 1e-6, 0, "Log specials");
}

TEST_CASE("Unary ops take integers where ONNX allows, reject them elsewhere", "[kernels][elementwise]") {
  auto i = makeTensor(DataType::kInt32, {5}, {-3, -1, 0, 2, 5});
  checkClose(runOk("Abs", {{"x", i}}), {3, 1, 0, 2, 5}, 0, 0, "Abs int32");
  checkClose(runOk("Neg", {{"x", i}}), {3, 1, 0, -2, -5}, 0, 0, "Neg int32");
  checkClose(runOk("Sign", {{"x", i}}), {-1, -1, 0, 1, 1}, 0, 0, "Sign int32");
  checkClose(runOk("Relu", {{"x", i}}, {}, 14), {0, 0, 0, 2, 5}, 0, 0, "Relu int32");
  auto out = runNode("Sqrt", {{"x", i}}, {}, 13);
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().code() == StatusCode::kUnimplemented);
  CHECK(out.status().message().find("int32") != std::string::npos);
}

TEST_CASE("Round rounds half to even", "[kernels][elementwise]") {
  auto x = makeTensor(DataType::kFloat, {8}, {0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6, -2.6});
  checkClose(runOk("Round", {{"x", x}}, {}, 11), {0, 2, 2, -0, -2, 2, 3, -3}, 0, 0, "Round");
}

TEST_CASE("IsNaN and IsInf give bool masks", "[kernels][elementwise]") {
  float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (DataType dtype : {DataType::kFloat, DataType::kFloat16, DataType::kDouble}) {
    auto x = makeTensor(dtype, {5}, {1, inf, -inf, nan, 0});
    checkClose(runOk("IsNaN", {{"x", x}}, {}, 20), {0, 0, 0, 1, 0}, 0, 0, "IsNaN");
    checkClose(runOk("IsInf", {{"x", x}}, {}, 20), {0, 1, 1, 0, 0}, 0, 0, "IsInf");
    checkClose(runOk("IsInf", {{"x", x}}, {ir::Attribute::makeInt("detect_negative", 0)}, 20), {0, 1, 0, 0, 0}, 0, 0,
               "IsInf positive");
    checkClose(runOk("IsInf", {{"x", x}}, {ir::Attribute::makeInt("detect_positive", 0)}, 20), {0, 0, 1, 0, 0}, 0, 0,
               "IsInf negative");
  }
}

TEST_CASE("Clip: attribute bounds before opset 11, optional inputs since, integers too", "[kernels][elementwise]") {
  std::mt19937 rng(9);
  for (const auto& dims : kUnaryShapes) {
    for (DataType dtype : {DataType::kFloat, DataType::kFloat16, DataType::kDouble, DataType::kInt8, DataType::kInt64}) {
      ir::Tensor x = randomTensor(rng, dtype, dims, -100, 100);
      auto clipRef = [&](double lo, double hi) {
        std::vector<double> e;
        for (int64_t i = 0; i < x.numel(); ++i) e.push_back(std::min(std::max(x.valueAsDouble(i), lo), hi));
        return e;
      };
      double inf = std::numeric_limits<double>::infinity();
      auto lo = makeTensor(dtype, {}, {-20});
      auto hi = makeTensor(dtype, {}, {30});
      for (int threads : kThreadCounts) {
        checkClose(runOk("Clip", {{"x", x}, {"lo", lo}, {"hi", hi}}, {}, 13, threads), clipRef(-20, 30), 0, 0, "both");
        checkClose(runOk("Clip", {{"x", x}, {"lo", lo, true}}, {}, 13, threads), clipRef(-20, inf), 0, 0, "min");
        checkClose(runOk("Clip", {{"x", x}, {"", {}}, {"hi", hi}}, {}, 13, threads), clipRef(-inf, 30), 0, 0, "max");
        checkClose(runOk("Clip", {{"x", x}}, {}, 13, threads), clipRef(-inf, inf), 0, 0, "none");
        // min above max: everything becomes max.
        checkClose(runOk("Clip", {{"x", x}, {"lo", hi}, {"hi", lo}}, {}, 13, threads), clipRef(30, -20), 0, 0, "crossed");
      }
      if (ir::isFloatingPoint(dtype)) {
        std::vector<ir::Attribute> attrs = {ir::Attribute::makeFloat("min", -20), ir::Attribute::makeFloat("max", 30)};
        checkClose(runOk("Clip", {{"x", x}}, attrs, 6), clipRef(-20, 30), 0, 0, "opset 6");
      }
    }
  }
}
