// Binary, variadic and identity-like elementwise kernels against plain scalar references in
// double, over the shared shape lists, at 1 and 2 threads. Unary ops are in
// elementwise_unary_test.cpp, Cast in elementwise_cast_test.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>

#include "kernels/cpu/elementwise_test_util.h"

using namespace whittle;
using namespace whittle::testing::elementwise;
using ir::DataType;

namespace {

/// Wraps an exact integer result into the range of `dtype`, as the kernels' modular
/// arithmetic does.
double wrapTo(DataType dtype, double v) {
  auto wrap = [&](double bits, bool isSigned) {
    double m = std::ldexp(1.0, static_cast<int>(bits));
    double r = std::fmod(v, m);
    if (r < 0) r += m;
    if (isSigned && r >= m / 2) r -= m;
    return r;
  };
  switch (dtype) {
    case DataType::kInt8: return wrap(8, true);
    case DataType::kInt16: return wrap(16, true);
    case DataType::kUint8: return wrap(8, false);
    case DataType::kUint16: return wrap(16, false);
    case DataType::kInt32: return wrap(32, true);
    case DataType::kUint32: return wrap(32, false);
    default: return v;
  }
}

struct BinaryCase {
  std::string op;
  std::function<double(double, double)> ref;
  std::vector<DataType> dtypes;
  bool boolOutput = false;
  double lo = -4, hi = 4;  ///< input range
  double bLo = -4, bHi = 4;  ///< second input range
};

/// Runs one binary op over every shape pair, dtype and thread count against `c.ref`.
void checkBinary(const BinaryCase& c, bool unidirectional = false) {
  std::mt19937 rng(7);
  using ShapePair = std::pair<std::vector<int64_t>, std::vector<int64_t>>;
  testing::compareWithReference<ShapePair>(c.dtypes, kBinaryShapes, [&](const ShapePair& shapes, DataType dtype) {
    const auto& [aDims, bDims] = shapes;
    std::vector<testing::KernelCase> cases;
    std::vector<int64_t> outDims = broadcastDims(aDims, bDims);
    if (unidirectional && outDims != aDims) return cases;
    std::vector<NodeInput> inputs = {{"a", randomTensor(rng, dtype, aDims, c.lo, c.hi)},
                                     {"b", randomTensor(rng, dtype, bDims, c.bLo, c.bHi)}};
    std::vector<double> expected(static_cast<size_t>(numel(outDims)));
    for (int64_t o = 0; o < numel(outDims); ++o) {
      double va = inputs[0].tensor.valueAsDouble(broadcastIndex(outDims, aDims, o));
      double vb = inputs[1].tensor.valueAsDouble(broadcastIndex(outDims, bDims, o));
      double r = c.ref(va, vb);
      expected[static_cast<size_t>(o)] = c.boolOutput || ir::isFloatingPoint(dtype) ? r : wrapTo(dtype, r);
    }
    testing::ExpectedOutput out{
        c.boolOutput ? expected : roundTo(dtype, expected), c.boolOutput ? 0 : singleRoundingTolerance(dtype),
        c.boolOutput ? 0 : tinyTolerance(dtype), outDims, c.boolOutput ? DataType::kBool : dtype};
    cases.push_back(
        {oneNodeModel(c.op, inputs, {}, 17),
         inputs,
         {out},
         c.op + " " + std::string(ir::dataTypeName(dtype)) + " " + shapeText(aDims) + " x " + shapeText(bDims)});
    return cases;
  });
}

const std::vector<DataType> kFloats = {DataType::kFloat, DataType::kFloat16, DataType::kBFloat16, DataType::kDouble};
const std::vector<DataType> kSomeInts = {DataType::kInt32, DataType::kInt64, DataType::kInt8, DataType::kUint8};

}  // namespace

TEST_CASE("Add, Sub, Mul, Div match the reference for every broadcast shape", "[kernels][elementwise]") {
  std::vector<DataType> all = kFloats;
  all.insert(all.end(), kSomeInts.begin(), kSomeInts.end());
  checkBinary({"Add", [](double a, double b) { return a + b; }, all});
  checkBinary({"Sub", [](double a, double b) { return a - b; }, all});
  checkBinary({"Mul", [](double a, double b) { return a * b; }, all});
  checkBinary({"Div", [](double a, double b) { return a / b; }, kFloats, false, -4, 4, 0.5, 4});
  checkBinary({"Div", [](double a, double b) { return std::trunc(a / b); }, kSomeInts, false, -100, 100, 1, 9});
}

TEST_CASE("Max, Min and comparisons match the reference", "[kernels][elementwise]") {
  std::vector<DataType> all = kFloats;
  all.insert(all.end(), kSomeInts.begin(), kSomeInts.end());
  checkBinary({"Max", [](double a, double b) { return std::max(a, b); }, all});
  checkBinary({"Min", [](double a, double b) { return std::min(a, b); }, all});
  // Small integer ranges so that equal values occur.
  checkBinary({"Equal", [](double a, double b) { return a == b; }, all, true, -2, 2, -2, 2});
  checkBinary({"Less", [](double a, double b) { return a < b; }, all, true, -2, 2, -2, 2});
  checkBinary({"LessOrEqual", [](double a, double b) { return a <= b; }, all, true, -2, 2, -2, 2});
  checkBinary({"Greater", [](double a, double b) { return a > b; }, all, true, -2, 2, -2, 2});
  checkBinary({"GreaterOrEqual", [](double a, double b) { return a >= b; }, all, true, -2, 2, -2, 2});
}

TEST_CASE("PRelu broadcasts the slope onto X", "[kernels][elementwise]") {
  checkBinary({"PRelu", [](double x, double s) { return x < 0 ? x * s : x; }, kFloats}, /*unidirectional=*/true);
  checkBinary({"PRelu", [](double x, double s) { return x < 0 ? x * s : x; }, {DataType::kInt32, DataType::kInt64}},
              /*unidirectional=*/true);
  // A slope that would grow X is an error.
  auto out = runNode("PRelu", {{"x", makeTensor(DataType::kFloat, {3}, {1, -1, 2})},
                               {"s", makeTensor(DataType::kFloat, {2, 3}, {1, 2, 3, 4, 5, 6})}},
                     {}, 16);
  CHECK_FALSE(out.isOk());
}

TEST_CASE("PRelu before opset 7 reads a 1-D slope per channel", "[kernels][elementwise]") {
  // X [2, 3, 2]: channel c's negatives scale by slope[c]; the onnx pytorch-converted
  // test_PReLU_*_multiparam models (opset 6) are written so.
  ir::Tensor x = makeTensor(DataType::kFloat, {2, 3, 2}, {-1, 2, -1, -2, -4, 1, 3, -1, -2, -2, 5, -1});
  ir::Tensor slope = makeTensor(DataType::kFloat, {3}, {0.5f, 0.25f, 2});
  ir::Tensor y = runOk("PRelu", {{"x", x}, {"s", slope}}, {}, 6);
  checkClose(y, {-0.5, 2, -0.25, -0.5, -8, 1, 3, -0.5, -0.5, -0.5, 5, -2}, 0, 0, "PRelu-6");
  // From opset 7 the slope broadcasts numpy-style: [3] against [2, 3, 2] does not.
  CHECK_FALSE(runNode("PRelu", {{"x", x}, {"s", slope}}, {}, 16).isOk());
}

TEST_CASE("Logical ops and Not on bool", "[kernels][elementwise]") {
  std::vector<DataType> b = {DataType::kBool};
  checkBinary({"And", [](double x, double y) { return (x != 0) && (y != 0); }, b, true, 0, 1, 0, 1});
  checkBinary({"Or", [](double x, double y) { return (x != 0) || (y != 0); }, b, true, 0, 1, 0, 1});
  checkBinary({"Xor", [](double x, double y) { return (x != 0) != (y != 0); }, b, true, 0, 1, 0, 1});
  ir::Tensor y = runOk("Not", {{"x", makeTensor(DataType::kBool, {4}, {0, 1, 1, 0})}});
  checkClose(y, {1, 0, 0, 1}, 0, 0, "Not");
}

TEST_CASE("Pow: float and integer bases, every exponent type, fast scalar exponents", "[kernels][elementwise]") {
  checkBinary({"Pow", [](double a, double b) { return std::pow(a, b); }, kFloats, false, 0.1, 3, -2, 2});
  std::mt19937 rng(3);
  ir::Tensor x = randomTensor(rng, DataType::kFloat, {2, 65}, -3, 3);
  for (double e : {1.0, 2.0, 3.0, 0.5, -1.0, 1.5}) {
    for (bool constant : {true, false}) {
      ir::Tensor base = e == 0.5 || e == 1.5 ? randomTensor(rng, DataType::kFloat, {2, 65}, 0.1, 3) : x;
      ir::Tensor y = runOk("Pow", {{"x", base}, {"e", makeTensor(DataType::kFloat, {}, {e}), constant}}, {}, 15);
      std::vector<double> expected;
      for (int64_t i = 0; i < base.numel(); ++i) expected.push_back(std::pow(base.valueAsDouble(i), e));
      checkClose(y, expected, 2e-6, 0, "Pow exponent " + std::to_string(e));
    }
  }
  // Mixed types: the result has the base's type; an integer result truncates.
  ir::Tensor f = makeTensor(DataType::kFloat, {3}, {1.5, 2, -3});
  ir::Tensor i32 = makeTensor(DataType::kInt32, {3}, {2, 3, 3});
  ir::Tensor i64 = makeTensor(DataType::kInt64, {3}, {2, 3, 3});
  checkClose(runOk("Pow", {{"x", f}, {"e", i32}}, {}, 15), {2.25, 8, -27}, 1e-7, 0, "float ^ int32");
  checkClose(runOk("Pow", {{"x", f}, {"e", i64}}, {}, 15), {2.25, 8, -27}, 1e-7, 0, "float ^ int64");
  checkClose(runOk("Pow", {{"x", i32}, {"e", i32}}, {}, 15), {4, 27, 27}, 0, 0, "int32 ^ int32");
  ir::Tensor fe = makeTensor(DataType::kFloat, {3}, {0.5, 2, 1.5});
  checkClose(runOk("Pow", {{"x", i64}, {"e", fe}}, {}, 15), {1, 9, 5}, 0, 0, "int64 ^ float");
}

TEST_CASE("Mod follows Python for integers and C fmod with fmod=1", "[kernels][elementwise]") {
  auto a = makeTensor(DataType::kInt32, {6}, {-4, 7, 5, 4, -7, 8});
  auto b = makeTensor(DataType::kInt32, {6}, {2, -3, 8, -2, 3, 5});
  checkClose(runOk("Mod", {{"a", a}, {"b", b}}, {}, 13), {0, -2, 5, 0, 2, 3}, 0, 0, "Mod int32");
  checkClose(runOk("Mod", {{"a", a}, {"b", b}}, {ir::Attribute::makeInt("fmod", 1)}, 13), {0, 1, 5, 0, -1, 3}, 0, 0,
             "Mod int32 fmod");
  auto fa = makeTensor(DataType::kFloat, {4}, {-4.5, 7.25, 5, -7.5});
  auto fb = makeTensor(DataType::kFloat, {4}, {2, -3, 8, 3});
  checkClose(runOk("Mod", {{"a", fa}, {"b", fb}}, {ir::Attribute::makeInt("fmod", 1)}, 13),
             {std::fmod(-4.5, 2), std::fmod(7.25, -3), 5, std::fmod(-7.5, 3)}, 1e-7, 0, "Mod float fmod");
  auto u = makeTensor(DataType::kUint8, {3}, {200, 7, 9});
  auto v = makeTensor(DataType::kUint8, {1}, {6});
  checkClose(runOk("Mod", {{"a", u}, {"b", v}}, {}, 13), {2, 1, 3}, 0, 0, "Mod uint8 broadcast");
  // Float Mod without fmod is rejected; an integer zero divisor is an error, not a crash.
  CHECK_FALSE(runNode("Mod", {{"a", fa}, {"b", fb}}, {}, 13).isOk());
  auto zero = makeTensor(DataType::kInt32, {6}, {1, 1, 0, 1, 1, 1});
  CHECK_FALSE(runNode("Mod", {{"a", a}, {"b", zero}}, {}, 13).isOk());
  CHECK_FALSE(runNode("Div", {{"a", a}, {"b", zero}}, {}, 14).isOk());
}

TEST_CASE("BitShift shifts unsigned integers both ways", "[kernels][elementwise]") {
  for (DataType t : {DataType::kUint8, DataType::kUint16, DataType::kUint32, DataType::kUint64}) {
    auto x = makeTensor(t, {4}, {16, 4, 1, 255});
    auto s = makeTensor(t, {4}, {1, 2, 3, 0});
    checkClose(runOk("BitShift", {{"x", x}, {"s", s}}, {ir::Attribute::makeString("direction", "RIGHT")}, 11),
               {8, 1, 0, 255}, 0, 0, "right");
    double big = t == DataType::kUint8 ? 254 : 510;  // 255 << 1 wraps in uint8
    checkClose(runOk("BitShift", {{"x", x}, {"s", makeTensor(t, {}, {1})}}, {ir::Attribute::makeString("direction", "LEFT")},
                     11),
               {32, 8, 2, big}, 0, 0, "left");
  }
}

TEST_CASE("Sum, Mean, Max, Min take any number of broadcasting inputs", "[kernels][elementwise]") {
  std::mt19937 rng(11);
  std::vector<std::vector<int64_t>> shapes = {{3, 1}, {1, 4}, {2, 1, 1}, {4}};
  struct Case {
    std::string op;
    std::function<double(double, double)> combine;
    bool mean;
  };
  std::vector<Case> cases = {{"Sum", [](double a, double b) { return a + b; }, false},
                             {"Mean", [](double a, double b) { return a + b; }, true},
                             {"Max", [](double a, double b) { return std::max(a, b); }, false},
                             {"Min", [](double a, double b) { return std::min(a, b); }, false}};
  for (const Case& c : cases) {
    for (DataType dtype : {DataType::kFloat, DataType::kFloat16, DataType::kDouble}) {
      for (size_t n = 1; n <= shapes.size(); ++n) {
        std::vector<NodeInput> inputs;
        std::vector<int64_t> outDims;
        for (size_t i = 0; i < n; ++i) {
          inputs.push_back({"x" + std::to_string(i), randomTensor(rng, dtype, shapes[i])});
          outDims = broadcastDims(outDims, shapes[i]);
        }
        std::vector<double> expected;
        for (int64_t o = 0; o < numel(outDims); ++o) {
          double acc = inputs[0].tensor.valueAsDouble(broadcastIndex(outDims, shapes[0], o));
          for (size_t i = 1; i < n; ++i) acc = c.combine(acc, inputs[i].tensor.valueAsDouble(broadcastIndex(outDims, shapes[i], o)));
          expected.push_back(c.mean ? acc / static_cast<double>(n) : acc);
        }
        for (int threads : kThreadCounts) {
          ir::Tensor y = runOk(c.op, inputs, {}, 13, threads);
          CHECK(y.dims() == outDims);
          // float16 rounds after every input: allow that much absolute error (inputs in [-1, 1)).
          checkClose(y, expected, 2 * singleRoundingTolerance(dtype),
                     static_cast<double>(n) * singleRoundingTolerance(dtype), c.op + " of " + std::to_string(n));
        }
      }
    }
  }
  // Max and Min take integers too.
  auto a = makeTensor(DataType::kInt64, {3}, {1, -5, 7});
  auto b = makeTensor(DataType::kInt64, {3}, {2, -6, 7});
  checkClose(runOk("Max", {{"a", a}, {"b", b}}, {}, 13), {2, -5, 7}, 0, 0, "Max int64");
  checkClose(runOk("Min", {{"a", a}, {"b", b}}, {}, 13), {1, -6, 7}, 0, 0, "Min int64");
}

TEST_CASE("Where selects with three-way broadcasting", "[kernels][elementwise]") {
  std::mt19937 rng(5);
  std::vector<std::array<std::vector<int64_t>, 3>> shapes = {
      {{{4, 5}, {4, 5}, {4, 5}}}, {{{4, 5}, {}, {4, 5}}}, {{{4, 5}, {4, 5}, {1}}}, {{{3, 1, 5}, {1, 4, 1}, {5}}},
      {{{1}, {2, 3}, {2, 3}}},    {{{200, 200}, {200, 1}, {200}}},
  };
  for (DataType dtype : {DataType::kFloat, DataType::kInt64, DataType::kUint8, DataType::kFloat16, DataType::kBool}) {
    for (const auto& s : shapes) {
      ir::Tensor c = randomTensor(rng, DataType::kBool, s[0], 0, 1);
      ir::Tensor x = randomTensor(rng, dtype, s[1], -9, 9);
      ir::Tensor y = randomTensor(rng, dtype, s[2], -9, 9);
      std::vector<int64_t> outDims = broadcastDims(broadcastDims(s[0], s[1]), s[2]);
      std::vector<double> expected;
      for (int64_t o = 0; o < numel(outDims); ++o) {
        bool take = c.valueAsDouble(broadcastIndex(outDims, s[0], o)) != 0;
        expected.push_back(take ? x.valueAsDouble(broadcastIndex(outDims, s[1], o))
                                : y.valueAsDouble(broadcastIndex(outDims, s[2], o)));
      }
      for (int threads : kThreadCounts) {
        ir::Tensor out = runOk("Where", {{"c", c}, {"x", x}, {"y", y}}, {}, 16, threads);
        CHECK(out.dims() == outDims);
        checkClose(out, expected, 0, 0, "Where " + std::string(ir::dataTypeName(dtype)));
      }
    }
  }
}

TEST_CASE("Equal compares strings", "[kernels][elementwise]") {
  auto a = ir::Tensor::strings({3}, {"a", "bc", "d"});
  auto b = ir::Tensor::strings({1}, {"bc"});
  checkClose(runOk("Equal", {{"a", a}, {"b", b}}, {}, 19), {0, 1, 0}, 0, 0, "Equal string");
}

TEST_CASE("Binary ops report bad shapes and dtypes", "[kernels][elementwise]") {
  auto a = makeTensor(DataType::kFloat, {2, 3}, {1, 2, 3, 4, 5, 6});
  auto b = makeTensor(DataType::kFloat, {2}, {1, 2});
  auto out = runNode("Add", {{"a", a}, {"b", b}}, {}, 14);
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().message().find("do not broadcast") != std::string::npos);
  auto s = ir::Tensor::strings({2}, {"x", "y"});
  auto bad = runNode("Add", {{"a", s}, {"b", s}}, {}, 14);
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().code() == StatusCode::kUnimplemented);
}

TEST_CASE("Identity and Dropout return their input as a view", "[kernels][elementwise]") {
  std::mt19937 rng(1);
  ir::Tensor x = randomTensor(rng, DataType::kFloat, {2, 3, 4});
  ir::Tensor y = runOk("Identity", {{"x", x}});
  CHECK(y.rawData() == x.rawData());
  auto d = runNode("Dropout", {{"x", x}}, {}, 13, 1, 2);
  REQUIRE(d.isOk());
  CHECK((*d)[0].rawData() == x.rawData());
  CHECK((*d)[1].dtype() == DataType::kBool);
  checkClose((*d)[1], std::vector<double>(24, 1.0), 0, 0, "mask");
  // Old opsets: ratio attribute, mask typed like the input.
  auto old = runNode("Dropout", {{"x", x}}, {ir::Attribute::makeFloat("ratio", 0.3f)}, 7, 1, 2);
  REQUIRE(old.isOk());
  CHECK((*old)[1].dtype() == DataType::kFloat);
  // Training mode: ratio 0 is still the identity.
  auto ratio0 = makeTensor(DataType::kFloat, {}, {0});
  auto train = makeTensor(DataType::kBool, {}, {1});
  auto t0 = runNode("Dropout", {{"x", x}, {"r", ratio0}, {"t", train}}, {}, 13);
  REQUIRE(t0.isOk());
  CHECK((*t0)[0].rawData() == x.rawData());
}

TEST_CASE("Dropout in training mode draws numpy's mask for a given seed", "[kernels][elementwise]") {
  // np.random.seed(0); np.random.uniform(0, 1, 10) = .549 .715 .603 .545 .424 .646 .438 .892 .964 .383
  ir::Tensor x = makeTensor(DataType::kFloat, {2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  auto train = makeTensor(DataType::kBool, {}, {1});
  for (auto [ratio, keep] : {std::pair<double, std::vector<double>>{0.5, {1, 1, 1, 1, 0, 1, 0, 1, 1, 0}},
                             std::pair<double, std::vector<double>>{0.6, {0, 1, 1, 0, 0, 1, 0, 1, 1, 0}}}) {
    INFO("ratio " << ratio);
    auto out = runNode("Dropout", {{"x", x}, {"r", makeTensor(DataType::kFloat, {}, {ratio})}, {"t", train}},
                       {ir::Attribute::makeInt("seed", 0)}, 13, 1, 2);
    REQUIRE(out.isOk());
    std::vector<double> want(10);
    const double scale = 1.0 / (1.0 - static_cast<float>(ratio));
    for (size_t i = 0; i < want.size(); ++i) want[i] = keep[i] * static_cast<double>(i + 1) * scale;
    checkClose((*out)[0], want, 1e-6, 0, "y");
    CHECK((*out)[1].dtype() == DataType::kBool);
    checkClose((*out)[1], keep, 0, 0, "mask");
  }
  // Without a seed the mask is random, but every output is 0 or the scaled input.
  auto unseeded = runNode("Dropout", {{"x", x}, {"r", makeTensor(DataType::kFloat, {}, {0.5})}, {"t", train}}, {}, 13);
  REQUIRE(unseeded.isOk());
  for (int64_t i = 0; i < 10; ++i) {
    double v = (*unseeded)[0].valueAsDouble(i);
    CHECK((v == 0.0 || v == 2.0 * static_cast<double>(i + 1)));
  }
  auto bad = runNode("Dropout", {{"x", x}, {"r", makeTensor(DataType::kFloat, {}, {1.0})}, {"t", train}}, {}, 13);
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().message().find("outside [0, 1)") != std::string::npos);
  // Sum of one input is that input.
  CHECK(runOk("Sum", {{"x", x}}, {}, 13).rawData() == x.rawData());
}
