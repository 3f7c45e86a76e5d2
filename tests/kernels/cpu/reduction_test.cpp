// Reductions and ArgMax/ArgMin against plain scalar references in double: every subset of
// axes over a shape list (tiny, at/around 16 and 64, big enough to run on two threads, short
// reduced innermost axes),
// keepdims both ways, axes as attribute and as input, noop_with_empty_axes, empty sets, and
// float32/float16/bfloat16/float64/int32/int64/bool.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>

#include "kernels/cpu/elementwise_test_util.h"

using namespace whittle;
using namespace whittle::testing::elementwise;
using ir::DataType;

namespace {

struct ReduceCase {
  std::string op;
  double init;
  std::function<double(double, double)> combine;  ///< acc, x
  std::function<double(double, int64_t)> finalize;  ///< acc, count
  bool floatOnly = false;
};

std::vector<ReduceCase> reduceCases() {
  auto id = [](double a, int64_t) { return a; };
  double inf = std::numeric_limits<double>::infinity();
  return {
      {"ReduceSum", 0, [](double a, double x) { return a + x; }, id},
      {"ReduceMean", 0, [](double a, double x) { return a + x; }, [](double a, int64_t n) { return a / n; }},
      {"ReduceMax", -inf, [](double a, double x) { return std::max(a, x); }, id},
      {"ReduceMin", inf, [](double a, double x) { return std::min(a, x); }, id},
      {"ReduceProd", 1, [](double a, double x) { return a * x; }, id},
      {"ReduceL1", 0, [](double a, double x) { return a + std::fabs(x); }, id},
      {"ReduceL2", 0, [](double a, double x) { return a + x * x; }, [](double a, int64_t) { return std::sqrt(a); }, true},
      {"ReduceSumSquare", 0, [](double a, double x) { return a + x * x; }, id},
      {"ReduceLogSum", 0, [](double a, double x) { return a + x; }, [](double a, int64_t) { return std::log(a); }, true},
      {"ReduceLogSumExp", 0, [](double a, double x) { return a + std::exp(x); },
       [](double a, int64_t) { return std::log(a); }, true},
  };
}

/// The reference: loops over every input element, adding it into its output slot.
std::vector<double> reduceRef(const ReduceCase& c, const ir::Tensor& x, const std::vector<bool>& reduced) {
  const auto& dims = x.dims();
  std::vector<int64_t> outDims;
  int64_t count = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    outDims.push_back(reduced[i] ? 1 : dims[i]);
    if (reduced[i]) count *= dims[i];
  }
  std::vector<double> acc(static_cast<size_t>(numel(outDims)), c.init);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, out = 0, stride = 1;
    for (size_t k = dims.size(); k-- > 0;) {
      int64_t coord = rem % dims[k];
      rem /= dims[k];
      if (!reduced[k]) out += coord * stride;
      stride *= outDims[k];
    }
    acc[static_cast<size_t>(out)] = c.combine(acc[static_cast<size_t>(out)], x.valueAsDouble(i));
  }
  for (double& a : acc) a = c.finalize(a, count);
  return acc;
}

const std::vector<std::vector<int64_t>> kReduceShapes = {
    {5}, {16}, {65}, {3, 4}, {2, 3, 17}, {1, 3, 8, 8}, {2, 1, 64, 3}, {4, 63, 5}, {3, 2, 2, 2, 5}, {2, 20000}, {70000},
    // Short reduced innermost axes (|STFT|^2 over [..., 2]): rows of outputs at once, on two threads for the big one.
    {4, 3, 5, 2}, {3, 6000, 2},
};

}  // namespace

TEST_CASE("Reductions match the reference over every subset of axes", "[kernels][reduction]") {
  std::mt19937 rng(17);
  for (const ReduceCase& c : reduceCases()) {
    for (const auto& dims : kReduceShapes) {
      size_t rank = dims.size();
      // Big shapes: a few subsets only, float32 only.
      bool big = numel(dims) > 10000;
      for (uint32_t mask = 0; mask < (1u << rank); ++mask) {
        if (big && mask != 1u && mask != (1u << rank) - 1 && mask != 2u && mask != 1u << (rank - 1)) continue;
        std::vector<bool> reduced(rank);
        std::vector<int64_t> axes;
        for (size_t k = 0; k < rank; ++k) {
          reduced[k] = (mask >> k) & 1u;
          if (reduced[k]) axes.push_back(mask % 2 == 0 ? static_cast<int64_t>(k) : static_cast<int64_t>(k) - static_cast<int64_t>(rank));
        }
        if (axes.empty()) continue;  // covered by the noop test
        std::vector<DataType> dtypes = {DataType::kFloat};
        if (!big) {
          dtypes.insert(dtypes.end(), {DataType::kFloat16, DataType::kDouble});
          if (!c.floatOnly && c.op != "ReduceProd") dtypes.insert(dtypes.end(), {DataType::kInt32, DataType::kInt64});
        }
        for (DataType dtype : dtypes) {
          // Positive inputs keep LogSum defined; a narrow range keeps products finite.
          double lo = c.op == "ReduceLogSum" ? 0.1 : (ir::isFloatingPoint(dtype) ? -2 : -20);
          double hi = ir::isFloatingPoint(dtype) ? 2 : 20;
          if (c.op == "ReduceProd") {
            lo = 0.9;
            hi = 1.1;
          }
          ir::Tensor x = randomTensor(rng, dtype, dims, lo, hi);
          std::vector<double> expected = reduceRef(c, x, reduced);
          if (c.op == "ReduceMean" && !ir::isFloatingPoint(dtype)) {
            for (double& e : expected) e = std::trunc(e);
          }
          // Sums of many rounded terms: allow for float32 accumulation over the reduced count.
          double rtol = dtype == DataType::kFloat ? 2e-5 : (dtype == DataType::kDouble ? 1e-12 : 4e-3);
          for (bool keepdims : {true, false}) {
            std::vector<int64_t> outDims;
            for (size_t k = 0; k < rank; ++k) {
              if (!reduced[k]) outDims.push_back(dims[k]);
              else if (keepdims) outDims.push_back(1);
            }
            for (int opset : {13, 18}) {
              bool axesInput = opset >= 18 || c.op == "ReduceSum";
              std::vector<ir::Attribute> attrs = {ir::Attribute::makeInt("keepdims", keepdims ? 1 : 0)};
              std::vector<NodeInput> inputs = {{"x", x}};
              if (axesInput) {
                inputs.push_back({"axes", makeTensor(DataType::kInt64, {static_cast<int64_t>(axes.size())},
                                                     std::vector<double>(axes.begin(), axes.end())),
                                  opset == 18});
              } else {
                attrs.push_back(ir::Attribute::makeInts("axes", axes));
              }
              testing::checkKernelCase({oneNodeModel(c.op, inputs, attrs, opset),
                                        inputs,
                                        {{expected, rtol, 1e-6, outDims, dtype}},
                                        c.op + " " + std::string(ir::dataTypeName(dtype)) + " " + shapeText(dims) +
                                            " mask " + std::to_string(mask) + " keepdims " + std::to_string(keepdims) +
                                            " opset " + std::to_string(opset)});
            }
          }
        }
      }
    }
  }
}

TEST_CASE("Reductions without axes reduce everything, or nothing with noop_with_empty_axes", "[kernels][reduction]") {
  std::mt19937 rng(3);
  ir::Tensor x = randomTensor(rng, DataType::kFloat, {3, 4, 5}, 0.1, 2);
  for (const ReduceCase& c : reduceCases()) {
    std::vector<bool> all(3, true), none(3, false);
    for (bool withInput : {false, true}) {
      std::vector<NodeInput> inputs = {{"x", x}};
      if (withInput) inputs.push_back({"axes", ir::Tensor(DataType::kInt64, {0})});
      ir::Tensor y = runOk(c.op, inputs, {}, 18);
      CHECK(y.dims() == std::vector<int64_t>{1, 1, 1});
      checkClose(y, reduceRef(c, x, all), 2e-6, 0, c.op + " all");
      ir::Tensor same = runOk(c.op, inputs, {ir::Attribute::makeInt("noop_with_empty_axes", 1)}, 18);
      CHECK(same.dims() == x.dims());
      checkClose(same, reduceRef(c, x, none), 2e-6, 0, c.op + " noop");
      if (c.op == "ReduceSum" || c.op == "ReduceMax") CHECK(same.rawData() == x.rawData());  // a view
    }
  }
}

TEST_CASE("Reductions over an empty set give the identity", "[kernels][reduction]") {
  ir::Tensor x(DataType::kFloat, {2, 0, 4});
  auto axes = makeTensor(DataType::kInt64, {1}, {1});
  double inf = std::numeric_limits<double>::infinity();
  std::vector<std::pair<std::string, double>> cases = {
      {"ReduceSum", 0},     {"ReduceProd", 1}, {"ReduceMin", inf},     {"ReduceMax", -inf},        {"ReduceL1", 0},
      {"ReduceL2", 0},      {"ReduceSumSquare", 0}, {"ReduceLogSum", -inf}, {"ReduceLogSumExp", -inf},
  };
  for (const auto& [op, value] : cases) {
    ir::Tensor y = runOk(op, {{"x", x}, {"axes", axes}}, {}, 18);
    CHECK(y.dims() == std::vector<int64_t>{2, 1, 4});
    checkClose(y, std::vector<double>(8, value), 0, 0, op);
  }
  // A zero-size kept axis gives an empty output.
  ir::Tensor y = runOk("ReduceSum", {{"x", x}, {"axes", makeTensor(DataType::kInt64, {1}, {2})}}, {}, 13);
  CHECK(y.dims() == std::vector<int64_t>{2, 0, 1});
}

TEST_CASE("ReduceMax and ReduceMin take bool; LogSumExp survives large values", "[kernels][reduction]") {
  auto b = makeTensor(DataType::kBool, {2, 3}, {1, 0, 0, 0, 0, 0});
  auto axes = makeTensor(DataType::kInt64, {1}, {1});
  checkClose(runOk("ReduceMax", {{"x", b}, {"axes", axes}}, {}, 20), {1, 0}, 0, 0, "max bool");
  checkClose(runOk("ReduceMin", {{"x", b}, {"axes", axes}}, {}, 20), {0, 0}, 0, 0, "min bool");
  auto big = makeTensor(DataType::kFloat, {3}, {1000, 1000, -INFINITY});
  checkClose(runOk("ReduceLogSumExp", {{"x", big}}, {ir::Attribute::makeInt("keepdims", 0)}, 18),
             {1000 + std::log(2.0)}, 1e-6, 0, "logsumexp big");
  auto bad = runNode("ReduceSum", {{"x", b}, {"axes", axes}}, {}, 13);
  CHECK_FALSE(bad.isOk());
  auto out = runNode("ReduceSum", {{"x", makeTensor(DataType::kFloat, {2}, {1, 2})}, {"axes", makeTensor(DataType::kInt64, {1}, {3})}}, {}, 13);
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().message().find("axis 3") != std::string::npos);
}

TEST_CASE("ArgMax and ArgMin along any axis, first or last index on ties", "[kernels][reduction]") {
  std::mt19937 rng(8);
  for (const auto& dims : kReduceShapes) {
    auto rank = static_cast<int64_t>(dims.size());
    for (DataType dtype : {DataType::kFloat, DataType::kFloat16, DataType::kInt32, DataType::kUint8}) {
      // Few distinct values, so that ties are common.
      ir::Tensor x = randomTensor(rng, dtype, dims, 0, 4);
      if (ir::isFloatingPoint(dtype)) {
        for (int64_t i = 0; i < x.numel(); ++i) setValue(x, i, std::floor(x.valueAsDouble(i) * 2));
      }
      for (int64_t axis = -rank; axis < rank; ++axis) {
        int64_t a = axis < 0 ? axis + rank : axis;
        int64_t outer = 1, inner = 1, r = dims[static_cast<size_t>(a)];
        for (int64_t k = 0; k < a; ++k) outer *= dims[static_cast<size_t>(k)];
        for (int64_t k = a + 1; k < rank; ++k) inner *= dims[static_cast<size_t>(k)];
        for (bool isMax : {true, false}) {
          for (bool last : {false, true}) {
            std::vector<double> expected;
            for (int64_t o = 0; o < outer; ++o) {
              for (int64_t j = 0; j < inner; ++j) {
                int64_t best = 0;
                for (int64_t k = 1; k < r; ++k) {
                  double v = x.valueAsDouble((o * r + k) * inner + j), b = x.valueAsDouble((o * r + best) * inner + j);
                  bool better = isMax ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
                  if (better) best = k;
                }
                expected.push_back(static_cast<double>(best));
              }
            }
            std::vector<ir::Attribute> attrs = {ir::Attribute::makeInt("axis", axis), ir::Attribute::makeInt("keepdims", 0),
                                                ir::Attribute::makeInt("select_last_index", last ? 1 : 0)};
            for (int threads : kThreadCounts) {
              ir::Tensor y = runOk(isMax ? "ArgMax" : "ArgMin", {{"x", x}}, attrs, 13, threads);
              CHECK(y.dtype() == DataType::kInt64);
              CHECK(y.rank() == rank - 1);
              checkClose(y, expected, 0, 0, std::string(isMax ? "ArgMax " : "ArgMin ") + shapeText(dims) + " axis " + std::to_string(axis));
            }
          }
        }
      }
    }
  }
}
