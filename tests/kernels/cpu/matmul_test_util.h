#pragma once
// Helpers for the matmul and normalization kernel tests: one-node models built directly on
// the IR, seeded random tensors in any float dtype, and a runner that executes the model at
// a given thread count and returns the outputs.

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "whittle/ir/graph.h"
#include "whittle/runtime/session.h"

namespace whittle::testing {

/// One input of a one-node model: a graph input (fed at run time) or an initializer.
struct NodeInput {
  std::string name;
  ir::Tensor tensor;
  bool constant = false;
};

/// A seeded random tensor with values uniform in [lo, hi), rounded to `dtype` (float32,
/// float16, bfloat16 or float64).
inline ir::Tensor randomFloatTensor(std::mt19937& rng, ir::DataType dtype, std::vector<int64_t> dims, double lo = -1.0,
                                    double hi = 1.0) {
  ir::Tensor t(dtype, std::move(dims));
  std::uniform_real_distribution<double> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = dist(rng);
    switch (dtype) {
      case ir::DataType::kFloat:
        t.mutableData<float>()[i] = static_cast<float>(v);
        break;
      case ir::DataType::kDouble:
        t.mutableData<double>()[i] = v;
        break;
      case ir::DataType::kFloat16:
        t.mutableData<uint16_t>()[i] = ir::floatToHalf(static_cast<float>(v));
        break;
      case ir::DataType::kBFloat16:
        t.mutableData<uint16_t>()[i] = ir::floatToBfloat16(static_cast<float>(v));
        break;
      default:
        FAIL("randomFloatTensor: unsupported dtype");
    }
  }
  return t;
}

/// Builds a model with one `opType` node over `inputs` (absent optional inputs have an empty
/// name) with `numOutputs` outputs named y0, y1, ...; an empty entry in `outputNames` leaves
/// that output absent.
inline ir::Model oneNodeModel(const std::string& opType, const std::vector<NodeInput>& inputs,
                              const std::vector<ir::Attribute>& attributes, int64_t opset, size_t numOutputs = 1,
                              std::vector<std::string> outputNames = {}) {
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
  if (outputNames.empty()) {
    for (size_t i = 0; i < numOutputs; ++i) outputNames.push_back("y" + std::to_string(i));
  }
  ir::Node* node = g.addNode(opType, values, outputNames, "node");
  for (const ir::Attribute& a : attributes) node->setAttribute(a);
  for (ir::Value* out : node->outputs()) {
    if (out != nullptr) g.addOutput(out);
  }
  return m;
}

/// Runs `model` at `threads` threads, feeding the non-constant inputs. Returns the status of
/// compiling or running (outputs are filled only on success).
inline Status runModel(const ir::Model& model, const std::vector<NodeInput>& inputs, int threads,
                       std::vector<ir::Tensor>& outputs) {
  runtime::SessionOptions options;
  options.threads = threads;
  auto session = runtime::Session::create(model, options);
  if (!session.isOk()) return session.status();
  std::vector<runtime::NamedTensor> feeds;
  for (const NodeInput& in : inputs) {
    if (!in.name.empty() && !in.constant) feeds.emplace_back(in.name, in.tensor);
  }
  auto result = (*session)->run(feeds);
  if (!result.isOk()) return result.status();
  outputs.clear();
  for (auto& [name, tensor] : *result) outputs.push_back(tensor);
  return Status::ok();
}

/// Relative tolerance of results rounded to `dtype` (after float32 accumulation).
inline double roundingTolerance(ir::DataType dtype) {
  switch (dtype) {
    case ir::DataType::kFloat16:
      return 2e-3;
    case ir::DataType::kBFloat16:
      return 1e-2;
    case ir::DataType::kDouble:
      return 1e-12;
    default:
      return 2e-5;
  }
}

/// Checks actual against expected (double values) within atol + rtol * |expected|; reports
/// the first mismatch with `context`.
inline void checkClose(const ir::Tensor& actual, const std::vector<double>& expected, double rtol, double atol,
                       const std::string& context) {
  INFO(context);
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  for (int64_t i = 0; i < actual.numel(); ++i) {
    double a = actual.valueAsDouble(i);
    double e = expected[static_cast<size_t>(i)];
    if (std::isnan(e) && std::isnan(a)) continue;
    if (!(std::fabs(a - e) <= atol + rtol * std::fabs(e))) {
      FAIL_CHECK("element " << i << ": got " << a << ", expected " << e);
      return;
    }
  }
}

/// "[2,3,4]" for messages.
inline std::string dimsText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace whittle::testing
