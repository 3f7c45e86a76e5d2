// Softmax, LogSoftmax, Hardmax, LayerNormalization, InstanceNormalization,
// GroupNormalization, MeanVarianceNormalization and LpNormalization on the CPU runtime
// against scalar references in double, over a shared shape list (rows shorter than, equal to
// and longer than a 16-float vector, 64 and its neighbours, middle axes with a few or many
// columns), for every supported dtype, at 1 and 2 threads.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>

#include "support/kernel_harness.h"
#include "support/tolerance.h"

using namespace whittle;
using whittle::testing::NodeInput;

namespace {

const std::vector<ir::DataType> kFloatTypes = {ir::DataType::kFloat, ir::DataType::kFloat16, ir::DataType::kBFloat16,
                                               ir::DataType::kDouble};

/// (outer, n, inner) of `dims` for an axis; `coerce` flattens everything from the axis on.
void split(const std::vector<int64_t>& dims, int64_t axis, bool coerce, int64_t& outer, int64_t& n, int64_t& inner) {
  const auto rank = static_cast<int64_t>(dims.size());
  if (axis < 0) axis += rank;
  outer = n = inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    int64_t s = dims[static_cast<size_t>(d)];
    if (d < axis) {
      outer *= s;
    } else if (d == axis || coerce) {
      n *= s;
    } else {
      inner *= s;
    }
  }
}

enum class Mode { kSoftmax, kLogSoftmax, kHardmax };

std::vector<double> softmaxReference(const ir::Tensor& x, int64_t axis, bool coerce, Mode mode) {
  int64_t outer, n, inner;
  split(x.dims(), axis, coerce, outer, n, inner);
  std::vector<double> v = testing::tensorValues(x), y(v.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return static_cast<size_t>((o * n + k) * inner + i); };
      double mx = v[at(0)];
      int64_t arg = 0;
      for (int64_t k = 1; k < n; ++k) {
        if (v[at(k)] > mx) {
          mx = v[at(k)];
          arg = k;
        }
      }
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) sum += std::exp(v[at(k)] - mx);
      for (int64_t k = 0; k < n; ++k) {
        y[at(k)] = mode == Mode::kSoftmax      ? std::exp(v[at(k)] - mx) / sum
                   : mode == Mode::kLogSoftmax ? v[at(k)] - mx - std::log(sum)
                                               : (k == arg ? 1.0 : 0.0);
      }
    }
  }
  return y;
}

/// Normalises rows of `length` of v: (v - mean) / sqrt(var + eps); returns mean and inv std.
void normalizeRows(std::vector<double>& v, int64_t length, double eps, std::vector<double>* means = nullptr,
                   std::vector<double>* invStds = nullptr) {
  for (size_t r = 0; r * static_cast<size_t>(length) < v.size(); ++r) {
    double* row = v.data() + r * static_cast<size_t>(length);
    double mean = 0, var = 0;
    for (int64_t i = 0; i < length; ++i) mean += row[i];
    mean /= static_cast<double>(length);
    for (int64_t i = 0; i < length; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= static_cast<double>(length);
    double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < length; ++i) row[i] = (row[i] - mean) * inv;
    if (means != nullptr) means->push_back(mean);
    if (invStds != nullptr) invStds->push_back(inv);
  }
}

/// Runs the model at 1 and 2 threads and checks every output against `expected`.
void runAndCheck(const ir::Model& model, const std::vector<NodeInput>& inputs,
                 const std::vector<std::vector<double>>& expected, double rtol, double atol,
                 const std::string& context) {
  testing::KernelCase c{model.clone(), inputs, {}, context};
  for (const std::vector<double>& e : expected) c.expected.push_back({e, rtol, atol});
  testing::checkKernelCase(c);
}

struct AxisCase {
  std::vector<int64_t> dims;
  int64_t axis;
};

// Rows of 1, 12, 15..17, 63..65 and 320 floats; middle axes with 1, 8, 17 and 64 columns.
const std::vector<AxisCase> kAxisCases = {
    {{5}, 0},        {{1, 12}, -1},    {{3, 16}, 1},      {{2, 17}, 1},           {{4, 15}, -1},        {{4, 63}, 1},
    {{2, 64}, 1},    {{1, 65}, -1},    {{2, 3, 4}, 0},    {{2, 3, 4}, 1},         {{2, 3, 4}, 2},       {{2, 20, 8}, 1},
    {{2, 5, 17}, 1}, {{3, 7, 64}, -2}, {{1, 4420, 2}, 2}, {{1, 1, 320, 320}, -1}, {{2, 1000, 1, 1}, 1},
};

}  // namespace

TEST_CASE("Softmax, LogSoftmax and Hardmax match the reference", "[kernels][normalization]") {
  std::mt19937 rng(21);
  const std::vector<std::pair<std::string, Mode>> ops = {
      {"Softmax", Mode::kSoftmax}, {"LogSoftmax", Mode::kLogSoftmax}, {"Hardmax", Mode::kHardmax}};
  for (const auto& [op, mode] : ops) {
    for (ir::DataType dtype : kFloatTypes) {
      for (const AxisCase& c : kAxisCases) {
        const int64_t numel = [&] {
          int64_t p = 1;
          for (int64_t d : c.dims) p *= d;
          return p;
        }();
        // Big shapes once, in float32, to keep the test fast.
        if (numel > 20000 && (dtype != ir::DataType::kFloat || mode == Mode::kHardmax)) continue;
        for (int64_t opset : {11, 13}) {
          std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, dtype, c.dims, -8.0, 8.0)}};
          ir::Model model = testing::oneNodeModel(op, inputs, {ir::Attribute::makeInt("axis", c.axis)}, opset);
          std::vector<double> expected = softmaxReference(inputs[0].tensor, c.axis, opset < 13, mode);
          double rtol = std::max(testing::accumulatedRoundingTolerance(dtype), 1e-5);
          double atol = mode == Mode::kLogSoftmax ? rtol * 10 : rtol * 1e-3;
          runAndCheck(model, inputs, {expected}, rtol, atol,
                      op + " " + std::string(ir::dataTypeName(dtype)) + " " + testing::shapeText(c.dims) + " axis " +
                          std::to_string(c.axis) + " opset " + std::to_string(opset));
        }
      }
    }
  }
}

TEST_CASE("Softmax is stable for large inputs and uses the opset's default axis", "[kernels][normalization]") {
  ir::Tensor x =
      ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2, 3}, {10000.f, 10001.f, 10002.f, -1e30f, 0.f, 1e30f});
  std::vector<NodeInput> inputs = {{"x", x}};
  runAndCheck(testing::oneNodeModel("Softmax", inputs, {}, 13), inputs,
              {softmaxReference(x, -1, false, Mode::kSoftmax)}, 1e-5, 1e-7, "large");
  runAndCheck(testing::oneNodeModel("LogSoftmax", inputs, {}, 13), inputs,
              {softmaxReference(x, -1, false, Mode::kLogSoftmax)}, 1e-5, 1e-5, "large log");
  // A NaN spreads over its own row only.
  std::vector<float> withNan(40);
  for (size_t i = 0; i < withNan.size(); ++i) withNan[i] = static_cast<float>(i % 7) - 3.f;
  withNan[5] = std::nanf("");
  ir::Tensor xn = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2, 20}, withNan);
  std::vector<NodeInput> inputsNan = {{"x", xn}};
  runAndCheck(testing::oneNodeModel("Softmax", inputsNan, {}, 13), inputsNan,
              {softmaxReference(xn, -1, false, Mode::kSoftmax)}, 1e-5, 1e-7, "nan");
  // Opset 11 defaults to axis 1 with 2-D coercion: on [2, 3, 4] the rows are 12 long.
  std::mt19937 rng(1);
  ir::Tensor x3 = testing::randomTensor(rng, ir::DataType::kFloat, {2, 3, 4});
  std::vector<NodeInput> inputs3 = {{"x", x3}};
  runAndCheck(testing::oneNodeModel("Softmax", inputs3, {}, 11), inputs3,
              {softmaxReference(x3, 1, true, Mode::kSoftmax)}, 1e-5, 1e-7, "opset 11 default");
}

TEST_CASE("LayerNormalization matches the reference, with Mean and InvStdDev", "[kernels][normalization]") {
  std::mt19937 rng(31);
  const std::vector<AxisCase> cases = {{{2, 16}, -1},  {{3, 17}, 1},  {{2, 3, 65}, -1},   {{2, 3, 5}, 1},
                                       {{2, 3, 5}, 0}, {{4, 64}, -1}, {{1, 197, 768}, -1}};
  for (ir::DataType dtype : kFloatTypes) {
    for (const AxisCase& c : cases) {
      for (bool withBias : {true, false}) {
        std::vector<int64_t> normDims(
            c.dims.begin() + (c.axis < 0 ? c.axis + static_cast<int64_t>(c.dims.size()) : c.axis), c.dims.end());
        int64_t inner = 1;
        for (int64_t d : normDims) inner *= d;
        std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, dtype, c.dims, -3, 5)},
                                         {"scale", testing::randomTensor(rng, dtype, normDims), true},
                                         {withBias ? "bias" : "", testing::randomTensor(rng, dtype, normDims)}};
        const float eps = 1e-3f;
        ir::Model model = testing::oneNodeModel(
            "LayerNormalization", inputs,
            {ir::Attribute::makeInt("axis", c.axis), ir::Attribute::makeFloat("epsilon", eps)}, 17, 3);
        std::vector<double> y = testing::tensorValues(inputs[0].tensor), means, invStds;
        normalizeRows(y, inner, eps, &means, &invStds);
        std::vector<double> s = testing::tensorValues(inputs[1].tensor), b = testing::tensorValues(inputs[2].tensor);
        for (size_t i = 0; i < y.size(); ++i) y[i] = y[i] * s[i % s.size()] + (withBias ? b[i % b.size()] : 0.0);
        // Mean and InvStdDev are float32 whatever the dtype of X (stash_type 1).
        double rtol = std::max(testing::accumulatedRoundingTolerance(dtype) * 5, 1e-6);
        runAndCheck(model, inputs, {y, means, invStds}, rtol, rtol,
                    "LayerNormalization " + std::string(ir::dataTypeName(dtype)) + " " + testing::shapeText(c.dims) +
                        " axis " + std::to_string(c.axis) + (withBias ? " bias" : ""));
      }
    }
  }
}

TEST_CASE("LayerNormalization broadcasts a smaller Scale to the normalized shape", "[kernels][normalization]") {
  std::mt19937 rng(2);
  std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, ir::DataType::kFloat, {2, 3, 4})},
                                   {"scale", testing::randomTensor(rng, ir::DataType::kFloat, {1, 4})}};
  ir::Model model = testing::oneNodeModel("LayerNormalization", inputs, {ir::Attribute::makeInt("axis", 1)}, 17);
  std::vector<double> y = testing::tensorValues(inputs[0].tensor);
  normalizeRows(y, 12, 1e-5);
  std::vector<double> s = testing::tensorValues(inputs[1].tensor);
  for (size_t i = 0; i < y.size(); ++i) y[i] *= s[i % 4];
  runAndCheck(model, inputs, {y}, 1e-5, 1e-5, "broadcast scale");
}

TEST_CASE("InstanceNormalization and GroupNormalization match the reference", "[kernels][normalization]") {
  std::mt19937 rng(41);
  struct Case {
    std::vector<int64_t> dims;
    int64_t groups;  // 0: InstanceNormalization
  };
  const std::vector<Case> cases = {{{1, 3, 16}, 0}, {{2, 4, 5, 7}, 0}, {{2, 3, 17, 17}, 0}, {{2, 6, 4, 4}, 3},
                                   {{1, 8, 65}, 2}, {{2, 4, 3, 3}, 4}, {{3, 4, 2}, 1}};
  for (ir::DataType dtype : kFloatTypes) {
    for (const Case& c : cases) {
      for (int64_t opset : {18, 21}) {
        if (c.groups == 0 && opset == 18) continue;
        const int64_t channels = c.dims[1];
        const int64_t groups = c.groups == 0 ? channels : c.groups;
        const int64_t params = opset == 18 ? groups : channels;
        const int64_t spatial = [&] {
          int64_t p = 1;
          for (size_t i = 2; i < c.dims.size(); ++i) p *= c.dims[i];
          return p;
        }();
        std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, dtype, c.dims, -2, 4)},
                                         {"scale", testing::randomTensor(rng, dtype, {params}), true},
                                         {"bias", testing::randomTensor(rng, dtype, {params})}};
        const float eps = 1e-2f;
        std::vector<ir::Attribute> attrs = {ir::Attribute::makeFloat("epsilon", eps)};
        if (c.groups != 0) attrs.push_back(ir::Attribute::makeInt("num_groups", c.groups));
        const std::string op = c.groups == 0 ? "InstanceNormalization" : "GroupNormalization";
        ir::Model model = testing::oneNodeModel(op, inputs, attrs, opset);
        std::vector<double> y = testing::tensorValues(inputs[0].tensor);
        normalizeRows(y, (channels / groups) * spatial, eps);
        std::vector<double> s = testing::tensorValues(inputs[1].tensor), b = testing::tensorValues(inputs[2].tensor);
        for (size_t i = 0; i < y.size(); ++i) {
          int64_t ch = (static_cast<int64_t>(i) / spatial) % channels;
          int64_t p = params == channels ? ch : ch / (channels / groups);
          y[i] = y[i] * s[static_cast<size_t>(p)] + b[static_cast<size_t>(p)];
        }
        double rtol = testing::accumulatedRoundingTolerance(dtype) * 5;
        runAndCheck(model, inputs, {y}, rtol, rtol,
                    op + " " + std::string(ir::dataTypeName(dtype)) + " " + testing::shapeText(c.dims) + " groups " +
                        std::to_string(groups) + " opset " + std::to_string(opset));
      }
    }
  }
}

TEST_CASE("MeanVarianceNormalization matches the reference over any axes", "[kernels][normalization]") {
  std::mt19937 rng(51);
  struct Case {
    std::vector<int64_t> dims;
    std::vector<int64_t> axes;  // empty: the default [0, 2, 3]
  };
  const std::vector<Case> cases = {
      {{2, 3, 4, 5}, {}}, {{3, 3, 3, 1}, {}}, {{2, 3, 17}, {2}}, {{2, 3, 4, 5}, {1, 3}}, {{4, 65}, {0, 1}}};
  for (ir::DataType dtype : kFloatTypes) {
    for (const Case& c : cases) {
      std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, dtype, c.dims, -1, 3)}};
      std::vector<ir::Attribute> attrs;
      if (!c.axes.empty()) attrs.push_back(ir::Attribute::makeInts("axes", c.axes));
      ir::Model model = testing::oneNodeModel("MeanVarianceNormalization", inputs, attrs, 13);
      const std::vector<int64_t> axes = c.axes.empty() ? std::vector<int64_t>{0, 2, 3} : c.axes;
      // Reference by brute force: for each element, average over the elements sharing its
      // kept coordinates.
      const std::vector<double> x = testing::tensorValues(inputs[0].tensor);
      const size_t rank = c.dims.size();
      auto coords = [&](size_t flat) {
        std::vector<int64_t> idx(rank);
        for (size_t d = rank; d-- > 0;) {
          idx[d] = static_cast<int64_t>(flat) % c.dims[d];
          flat /= static_cast<size_t>(c.dims[d]);
        }
        return idx;
      };
      auto sameCell = [&](const std::vector<int64_t>& p, const std::vector<int64_t>& q) {
        for (size_t d = 0; d < rank; ++d) {
          if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) == axes.end() && p[d] != q[d]) return false;
        }
        return true;
      };
      std::vector<double> y(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        auto ci = coords(i);
        double sum = 0, sq = 0, count = 0;
        for (size_t j = 0; j < x.size(); ++j) {
          if (!sameCell(ci, coords(j))) continue;
          sum += x[j];
          sq += x[j] * x[j];
          count += 1;
        }
        double mean = sum / count;
        y[i] = (x[i] - mean) / (std::sqrt(std::max(sq / count - mean * mean, 0.0)) + 1e-9);
      }
      double rtol = testing::accumulatedRoundingTolerance(dtype) * 5;
      runAndCheck(
          model, inputs, {y}, rtol, rtol,
          "MeanVarianceNormalization " + std::string(ir::dataTypeName(dtype)) + " " + testing::shapeText(c.dims));
    }
  }
}

TEST_CASE("LpNormalization matches the reference for p = 1 and 2", "[kernels][normalization]") {
  std::mt19937 rng(61);
  const std::vector<AxisCase> cases = {{{3, 16}, -1}, {{2, 17, 5}, 1}, {{2, 3, 4}, 0}, {{1, 65}, 1}};
  for (ir::DataType dtype : kFloatTypes) {
    for (const AxisCase& c : cases) {
      for (int64_t p : {1, 2}) {
        std::vector<NodeInput> inputs = {{"x", testing::randomTensor(rng, dtype, c.dims)}};
        ir::Model model = testing::oneNodeModel(
            "LpNormalization", inputs, {ir::Attribute::makeInt("axis", c.axis), ir::Attribute::makeInt("p", p)}, 13);
        int64_t outer, n, inner;
        split(c.dims, c.axis, false, outer, n, inner);
        std::vector<double> x = testing::tensorValues(inputs[0].tensor), y(x.size());
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t i = 0; i < inner; ++i) {
            double acc = 0;
            for (int64_t k = 0; k < n; ++k) {
              double v = x[static_cast<size_t>((o * n + k) * inner + i)];
              acc += p == 1 ? std::fabs(v) : v * v;
            }
            double norm = p == 1 ? acc : std::sqrt(acc);
            for (int64_t k = 0; k < n; ++k) {
              auto at = static_cast<size_t>((o * n + k) * inner + i);
              y[at] = x[at] / norm;
            }
          }
        }
        double rtol = testing::accumulatedRoundingTolerance(dtype) * 2;
        runAndCheck(model, inputs, {y}, rtol, rtol * 1e-2,
                    "LpNormalization " + std::string(ir::dataTypeName(dtype)) + " " + testing::shapeText(c.dims) +
                        " p " + std::to_string(p));
      }
    }
  }
  // A zero vector normalises to zeros, as in ONNX Runtime.
  ir::Tensor zeros(ir::DataType::kFloat, {2, 3});
  std::vector<NodeInput> inputs = {{"x", zeros}};
  runAndCheck(testing::oneNodeModel("LpNormalization", inputs, {}, 13), inputs, {std::vector<double>(6, 0.0)}, 0, 0,
              "zeros");
}

TEST_CASE("Normalization kernels reject unsupported dtypes and bad attributes", "[kernels][normalization]") {
  auto run = [&](const std::string& op, std::vector<NodeInput> inputs, std::vector<ir::Attribute> attrs,
                 int64_t opset) { return testing::runNode(op, inputs, attrs, opset).status(); };
  ir::Tensor ints = ir::Tensor::fromVector<int32_t>(ir::DataType::kInt32, {2, 2}, {1, 2, 3, 4});
  Status softmax = run("Softmax", {{"x", ints}}, {}, 13);
  CHECK(softmax.code() == StatusCode::kUnimplemented);
  CHECK_THAT(softmax.message(), Catch::Contains("int32"));

  std::mt19937 rng(3);
  ir::Tensor x = testing::randomTensor(rng, ir::DataType::kFloat, {2, 6, 4});
  ir::Tensor s = testing::randomTensor(rng, ir::DataType::kFloat, {6});
  Status groups =
      run("GroupNormalization", {{"x", x}, {"s", s}, {"b", s}}, {ir::Attribute::makeInt("num_groups", 4)}, 21);
  CHECK(groups.code() == StatusCode::kInvalidInput);

  Status axis = run("Softmax", {{"x", x}}, {ir::Attribute::makeInt("axis", 3)}, 13);
  CHECK(axis.code() == StatusCode::kInvalidInput);

  Status stash = run("LayerNormalization", {{"x", x}, {"s", ir::Tensor(ir::DataType::kFloat, {4})}},
                     {ir::Attribute::makeInt("stash_type", 11)}, 17);
  CHECK(stash.code() == StatusCode::kUnimplemented);
}
