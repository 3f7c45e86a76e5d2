#pragma once
// Helpers for the elementwise and reduction kernel tests: one-node models built on the IR,
// seeded random tensors of any numeric dtype, element access as double, numpy broadcasting
// for the scalar references, and the shared shape lists.

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "whittle/ir/graph.h"
#include "whittle/runtime/session.h"

namespace whittle::testing::elementwise {

/// Thread counts every kernel test runs at.
inline const std::vector<int> kThreadCounts = {1, 2};

/// Unary shapes: tiny, at, just below and just above 16 and 64 (vector widths and loop
/// tails), ranks 0 to 4, and one big enough for the loops to split across threads.
inline const std::vector<std::vector<int64_t>> kUnaryShapes = {
    {}, {1}, {7}, {15}, {16}, {17}, {63}, {64}, {65}, {3, 5}, {2, 3, 16}, {1, 3, 8, 8}, {2, 16, 65}, {40000},
};

/// Binary shape pairs: equal shapes, scalars, rows, per-channel [C,1,1] on NCHW, both sides
/// broadcasting, and shapes big enough to run on two threads.
inline const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> kBinaryShapes = {
    {{}, {}},
    {{17}, {17}},
    {{2, 3, 4, 5}, {2, 3, 4, 5}},
    {{63}, {}},
    {{}, {65}},
    {{2, 3, 4, 5}, {5}},
    {{2, 3, 4, 5}, {3, 1, 1}},
    {{1, 16, 7, 7}, {16, 1, 1}},
    {{1, 3, 1, 5}, {2, 1, 4, 1}},
    {{4, 1}, {1, 65}},
    {{64, 64}, {64, 1}},
    {{2, 16, 128}, {16, 1}},
    {{3, 1, 5}, {1, 4, 1}},
    {{40000}, {1}},
    {{2, 3, 80, 80}, {3, 1, 1}},
    {{300, 130}, {300, 130}},
};

/// One input of a one-node model: a graph input, an initializer, or absent (no name).
struct NodeInput {
  std::string name;
  ir::Tensor tensor;
  bool constant = false;
};

inline std::string shapeText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

inline int64_t numelOf(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

/// `v` as an unsigned integer: negative values wrap (through int64), as converting a negative
/// double to an unsigned type directly is undefined behaviour (UBSan: -4 into uint8).
template <typename T>
T toUnsigned(double v) {
  return v < 0 ? static_cast<T>(static_cast<int64_t>(v)) : static_cast<T>(v);
}

/// Writes `v` into element i of `t`, converting to its dtype (bool: v != 0).
inline void setValue(ir::Tensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case ir::DataType::kFloat: t.mutableData<float>()[i] = static_cast<float>(v); break;
    case ir::DataType::kDouble: t.mutableData<double>()[i] = v; break;
    case ir::DataType::kFloat16: t.mutableData<uint16_t>()[i] = ir::floatToHalf(static_cast<float>(v)); break;
    case ir::DataType::kBFloat16: t.mutableData<uint16_t>()[i] = ir::floatToBfloat16(static_cast<float>(v)); break;
    case ir::DataType::kInt8: t.mutableData<int8_t>()[i] = static_cast<int8_t>(v); break;
    case ir::DataType::kInt16: t.mutableData<int16_t>()[i] = static_cast<int16_t>(v); break;
    case ir::DataType::kInt32: t.mutableData<int32_t>()[i] = static_cast<int32_t>(v); break;
    case ir::DataType::kInt64: t.mutableData<int64_t>()[i] = static_cast<int64_t>(v); break;
    case ir::DataType::kUint8: t.mutableData<uint8_t>()[i] = toUnsigned<uint8_t>(v); break;
    case ir::DataType::kUint16: t.mutableData<uint16_t>()[i] = toUnsigned<uint16_t>(v); break;
    case ir::DataType::kUint32: t.mutableData<uint32_t>()[i] = toUnsigned<uint32_t>(v); break;
    case ir::DataType::kUint64: t.mutableData<uint64_t>()[i] = toUnsigned<uint64_t>(v); break;
    case ir::DataType::kBool: t.mutableData<uint8_t>()[i] = v != 0.0 ? 1 : 0; break;
    default: FAIL("setValue: unsupported dtype");
  }
}

/// A tensor holding `values` converted to `dtype`.
inline ir::Tensor makeTensor(ir::DataType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  ir::Tensor t(dtype, std::move(dims));
  REQUIRE(static_cast<int64_t>(values.size()) == t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) setValue(t, i, values[static_cast<size_t>(i)]);
  return t;
}

/// Seeded random values: uniform in [lo, hi) for floats, integers in [lo, hi] for integer
/// types, 0/1 for bool.
inline ir::Tensor randomTensor(std::mt19937& rng, ir::DataType dtype, std::vector<int64_t> dims, double lo = -1.0,
                               double hi = 1.0) {
  ir::Tensor t(dtype, std::move(dims));
  std::uniform_real_distribution<double> real(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = real(rng);
    if (dtype == ir::DataType::kBool) v = v < (lo + hi) / 2 ? 0.0 : 1.0;
    else if (!ir::isFloatingPoint(dtype)) v = std::floor(lo + (hi - lo + 1) * (v - lo) / (hi - lo));
    setValue(t, i, v);
  }
  return t;
}

/// A model with one `opType` node over `inputs`, outputs y0, y1, ...
inline ir::Model oneNodeModel(const std::string& opType, const std::vector<NodeInput>& inputs,
                              const std::vector<ir::Attribute>& attributes, int64_t opset, size_t numOutputs = 1) {
  ir::Model m;
  m.opsetImports = {{"", opset}};
  ir::Graph& g = *m.graph;
  std::vector<ir::Value*> values;
  for (const NodeInput& in : inputs) {
    if (in.name.empty()) {
      values.push_back(nullptr);
    } else if (in.constant) {
      values.push_back(g.addInitializer(in.name, in.tensor));
    } else {
      ir::ValueType type;
      type.dtype = in.tensor.dtype();
      std::vector<ir::Dim> shape;
      for (int64_t d : in.tensor.dims()) shape.push_back(ir::Dim::known(d));
      type.shape = shape;
      values.push_back(g.addInput(in.name, type));
    }
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < numOutputs; ++i) names.push_back("y" + std::to_string(i));
  ir::Node* node = g.addNode(opType, values, names, "node");
  for (const ir::Attribute& a : attributes) node->setAttribute(a);
  for (ir::Value* out : node->outputs()) g.addOutput(out);
  return m;
}

/// Runs a one-node model at `threads` threads; returns the outputs or the failing status.
inline Expected<std::vector<ir::Tensor>> runNode(const std::string& opType, const std::vector<NodeInput>& inputs,
                                                 const std::vector<ir::Attribute>& attributes, int64_t opset,
                                                 int threads = 1, size_t numOutputs = 1) {
  ir::Model model = oneNodeModel(opType, inputs, attributes, opset, numOutputs);
  runtime::SessionOptions options;
  options.threads = threads;
  auto session = runtime::Session::create(model, options);
  if (!session.isOk()) return session.status();
  std::vector<runtime::NamedTensor> feeds;
  for (const NodeInput& in : inputs) {
    if (!in.name.empty() && !in.constant) feeds.emplace_back(in.name, in.tensor);
  }
  auto outputs = (*session)->run(feeds);
  if (!outputs.isOk()) return outputs.status();
  std::vector<ir::Tensor> result;
  for (auto& [name, t] : *outputs) result.push_back(std::move(t));
  return result;
}

/// runNode that REQUIREs success and returns output 0.
inline ir::Tensor runOk(const std::string& opType, const std::vector<NodeInput>& inputs,
                        const std::vector<ir::Attribute>& attributes = {}, int64_t opset = 17, int threads = 1) {
  auto out = runNode(opType, inputs, attributes, opset, threads);
  INFO(opType << ": " << (out.isOk() ? std::string() : out.status().message()));
  REQUIRE(out.isOk());
  return std::move((*out)[0]);
}

/// The flat index into an input of shape `in` that numpy broadcasting reads for output
/// element `o` of shape `out`.
inline int64_t broadcastIndex(const std::vector<int64_t>& out, const std::vector<int64_t>& in, int64_t o) {
  int64_t index = 0, stride = 1;
  for (size_t k = 0; k < out.size(); ++k) {
    size_t od = out.size() - 1 - k;
    int64_t coord = o % out[od];
    o /= out[od];
    if (k < in.size()) {
      int64_t d = in[in.size() - 1 - k];
      if (d != 1) index += coord * stride;
      stride *= d;
    }
  }
  return index;
}

/// numpy's broadcast of two shapes (the test shapes always broadcast).
inline std::vector<int64_t> broadcastDims(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// Checks every element of `actual` against `expected` (doubles): exact for integer and bool
/// dtypes, |a - e| <= atol + rtol |e| otherwise; nan matches nan and infinities must match.
inline void checkClose(const ir::Tensor& actual, const std::vector<double>& expected, double rtol, double atol,
                       const std::string& what) {
  INFO(what);
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  bool exact = !ir::isFloatingPoint(actual.dtype());
  int bad = 0;
  for (int64_t i = 0; i < actual.numel() && bad < 5; ++i) {
    double a = actual.valueAsDouble(i);
    double e = expected[static_cast<size_t>(i)];
    if (std::isnan(e) && std::isnan(a)) continue;
    bool ok = exact || std::isinf(e) ? a == e : std::fabs(a - e) <= atol + rtol * std::fabs(e);
    if (!ok) {
      ++bad;
      UNSCOPED_INFO("element " << i << ": got " << a << ", expected " << e);
    }
  }
  CHECK(bad == 0);
}

/// `values` rounded to a float dtype (so an expected float16 result overflows or goes
/// subnormal as the kernel's does); other dtypes unchanged.
inline std::vector<double> roundTo(ir::DataType dtype, std::vector<double> values) {
  if (dtype != ir::DataType::kFloat && dtype != ir::DataType::kFloat16 && dtype != ir::DataType::kBFloat16) return values;
  ir::Tensor t(dtype, {static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) {
    setValue(t, static_cast<int64_t>(i), values[i]);
    values[i] = t.valueAsDouble(static_cast<int64_t>(i));
  }
  return values;
}

/// The absolute tolerance for results near zero: float16 subnormals step by 6e-8.
inline double tinyTolerance(ir::DataType dtype) { return dtype == ir::DataType::kFloat16 ? 1e-7 : 1e-30; }

/// The tolerance that rounding the result to `dtype` allows on top of the op's own error.
inline double roundingTolerance(ir::DataType dtype) {
  switch (dtype) {
    case ir::DataType::kFloat16: return 1e-3;
    case ir::DataType::kBFloat16: return 8e-3;
    case ir::DataType::kFloat: return 2e-6;
    default: return 1e-12;
  }
}

}  // namespace whittle::testing::elementwise
