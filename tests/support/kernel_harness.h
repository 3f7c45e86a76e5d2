#pragma once
// The kernel test harness: one-node models (any opset, optional inputs absent, graph inputs
// or initializers, outputs present or absent), running a model at a thread count, seeded
// random tensors in any dtype, and compareWithReference(), which runs a kernel over one shape
// list, its dtypes and the thread counts and compares every output with a reference in double.
//
//   testing::compareWithReference<Shape>(dtypes, shapes, [&](const Shape& s, ir::DataType t) {
//     std::vector<testing::NodeInput> in = {{"x", testing::randomTensor(rng, t, s.dims)}};
//     ir::Model model = testing::oneNodeModel("Relu", in, {}, 17);
//     return std::vector<testing::KernelCase>{{model, in, {{reluReference(in[0].tensor), rtol, atol}}, "..."}};
//   });

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "support/tolerance.h"
#include "whittle/ir/graph.h"
#include "whittle/runtime/session.h"

namespace whittle::testing {

/// Thread counts every kernel test runs at.
inline const std::vector<int> kThreadCounts = {1, 2};

/// The number of elements of a tensor of shape `dims` (of dims[from:] when `from` is given).
int64_t numel(const std::vector<int64_t>& dims, size_t from = 0);
/// Advances the multi-index `idx` over `dims` (last axis fastest); false after the last one.
bool nextIndex(std::vector<int64_t>& idx, const std::vector<int64_t>& dims);
/// numpy's broadcast of two shapes (the shapes must broadcast).
std::vector<int64_t> broadcastDims(const std::vector<int64_t>& a, const std::vector<int64_t>& b);
/// The flat index into an input of shape `in` that numpy broadcasting reads for element `o`
/// of an output of shape `out`.
int64_t broadcastIndex(const std::vector<int64_t>& out, const std::vector<int64_t>& in, int64_t o);

// ---- Tensors ---------------------------------------------------------------------------------

/// `v` as an unsigned integer: negative values wrap (through int64), as converting a negative
/// double to an unsigned type directly is undefined behaviour (UBSan: -4 into uint8).
template <typename T>
T toUnsigned(double v) {
  return v < 0 ? static_cast<T>(static_cast<int64_t>(v)) : static_cast<T>(v);
}

/// Writes `v` into element i of `t`, converting to its dtype (bool: v != 0).
void setValue(ir::Tensor& t, int64_t i, double v);
/// A tensor holding `values` converted to `dtype`.
ir::Tensor makeTensor(ir::DataType dtype, std::vector<int64_t> dims, const std::vector<double>& values);
/// A tensor of `type` (uint8, int8, uint16, int16, int32) holding `values`.
ir::Tensor intTensor(ir::DataType type, std::vector<int64_t> dims, const std::vector<int32_t>& values);
/// The elements of `t` as doubles.
std::vector<double> tensorValues(const ir::Tensor& t);
/// The elements of an integer tensor as int32.
std::vector<int32_t> intValues(const ir::Tensor& t);
/// `values` rounded to a float dtype (so an expected float16 result overflows or goes
/// subnormal as the kernel's does); other dtypes unchanged.
std::vector<double> roundTo(ir::DataType dtype, std::vector<double> values);

/// Seeded random values of any dtype: uniform in [lo, hi) for floating-point types (rounded to
/// the dtype), integers in [lo, hi] for integer types, 0/1 for bool. The same generator state
/// gives the same tensor with std::mt19937 or std::mt19937_64.
template <typename Rng>
ir::Tensor randomTensor(Rng& rng, ir::DataType dtype, std::vector<int64_t> dims, double lo = -1.0, double hi = 1.0) {
  ir::Tensor t(dtype, std::move(dims));
  std::uniform_real_distribution<double> real(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = real(rng);
    if (dtype == ir::DataType::kBool) {
      v = v < (lo + hi) / 2 ? 0.0 : 1.0;
    } else if (!ir::isFloatingPoint(dtype)) {
      v = std::floor(lo + (hi - lo + 1) * (v - lo) / (hi - lo));
    }
    setValue(t, i, v);
  }
  return t;
}

/// `n` seeded uniform integers in [lo, hi].
template <typename Rng>
std::vector<int32_t> randomInts(Rng& rng, int64_t n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

/// `n` seeded uniform floats in [lo, hi).
template <typename Rng>
std::vector<float> randomFloats(Rng& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// ---- One-node models -------------------------------------------------------------------------

/// One input of a one-node model: a graph input (fed at run time), an initializer
/// (`constant`), or absent (empty name).
struct NodeInput {
  std::string name;
  ir::Tensor tensor;
  bool constant = false;
};

/// Whether the graph inputs of a one-node model declare their shapes (kernels see known
/// shapes at compile time) or only their dtypes (shapes known at run time only).
enum class InputShapes { kDeclared, kUndeclared };

/// A model with one `opType` node (named "node", default domain at `opset`) over `inputs`,
/// with `numOutputs` outputs y0, y1, ...; `outputNames` overrides those names, and an empty
/// name there leaves that output absent. A non-empty `domain` puts the node in that domain
/// (imported at `domainOpset` beside the default one).
ir::Model oneNodeModel(const std::string& opType, const std::vector<NodeInput>& inputs,
                       const std::vector<ir::Attribute>& attributes, int64_t opset, size_t numOutputs = 1,
                       std::vector<std::string> outputNames = {}, InputShapes shapes = InputShapes::kDeclared,
                       const std::string& domain = "", int64_t domainOpset = 1);

/// The feeds for the graph inputs of `inputs` (not the initializers, not the absent ones).
std::vector<runtime::NamedTensor> feedsOf(const std::vector<NodeInput>& inputs);

// ---- Running ---------------------------------------------------------------------------------

/// Compiles `model` for the CPU runtime at `threads` threads and runs it once on `feeds`;
/// returns the named outputs or the status of compiling or running.
Expected<std::vector<runtime::NamedTensor>> tryRunModel(const ir::Model& model,
                                                        const std::vector<runtime::NamedTensor>& feeds,
                                                        int threads = 1);
/// tryRunModel that REQUIREs success (the failure's message in the report).
std::vector<runtime::NamedTensor> runModel(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                           int threads = 1);
/// runModel returning the output tensors only, in graph output order.
std::vector<ir::Tensor> runOutputs(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                   int threads = 1);

/// Builds and runs a one-node model (see oneNodeModel) at `threads` threads; returns its
/// outputs or the failing status.
Expected<std::vector<ir::Tensor>> runNode(const std::string& opType, const std::vector<NodeInput>& inputs,
                                          const std::vector<ir::Attribute>& attributes, int64_t opset, int threads = 1,
                                          size_t numOutputs = 1, InputShapes shapes = InputShapes::kDeclared);
/// runNode that REQUIREs success and returns output 0.
ir::Tensor runOk(const std::string& opType, const std::vector<NodeInput>& inputs,
                 const std::vector<ir::Attribute>& attributes = {}, int64_t opset = 17, int threads = 1);

// ---- Comparing a kernel with its reference ---------------------------------------------------

/// What the reference says one output is: its values (in double) and the tolerance of
/// checkClose; the dims and dtype are checked when given.
struct ExpectedOutput {
  std::vector<double> values;
  double rtol = 0, atol = 0;
  std::optional<std::vector<int64_t>> dims = std::nullopt;
  std::optional<ir::DataType> dtype = std::nullopt;
};

/// One comparison: a model, the inputs it was built from, the reference's outputs (one per
/// graph output, in order), and the case in words for failure messages.
struct KernelCase {
  ir::Model model;
  std::vector<NodeInput> inputs;
  std::vector<ExpectedOutput> expected;
  std::string what;
};

/// Runs the case at every thread count of `threads`; REQUIREs that it compiles and runs and
/// gives one output per expectation, and checks each output against the reference. Failures
/// name the case, the thread count, the output and the first mismatching element.
void checkKernelCase(const KernelCase& c, const std::vector<int>& threads = kThreadCounts);

/// Compares a kernel with its reference over one shape list: for every dtype of `dtypes` and
/// every shape of `shapes` (in that order, so seeded inputs are drawn in a fixed order),
/// `makeCases` builds the cases (models, inputs and reference outputs), and each runs at every
/// thread count of `threads` (checkKernelCase).
template <typename Shape>
void compareWithReference(const std::vector<ir::DataType>& dtypes, const std::vector<Shape>& shapes,
                          const std::function<std::vector<KernelCase>(const Shape&, ir::DataType)>& makeCases,
                          const std::vector<int>& threads = kThreadCounts) {
  for (ir::DataType dtype : dtypes) {
    for (const Shape& shape : shapes) {
      for (const KernelCase& c : makeCases(shape, dtype)) checkKernelCase(c, threads);
    }
  }
}

/// A case that a Python reference script wrote: DIR/NAME.onnx and the arrays of DIR/NAME.npz.
struct ReferenceCase {
  std::string name;
  ir::Model model;
  std::map<std::string, ir::Tensor> arrays;
};

/// Largest |got - expected| over the largest |expected| (at least 1e-6); equal infinities count
/// as no error. The dims must match (checked by the caller).
double relativeError(const ir::Tensor& got, const ir::Tensor& expected);

/// Runs `c`'s model at 1 and 2 threads on its graph inputs' arrays and checks every output
/// against its array expected_<name> (dims exactly, values within `tolerance` relative error),
/// then that shape inference gives every graph output those dims.
void checkReferenceCase(const ReferenceCase& c, double tolerance);

/// Runs `script` (a path under the source tree) with the project's Python on the folder `dir`;
/// the script writes each case's model and arrays there and prints the case names, one a line.
std::vector<ReferenceCase> referenceCases(const std::string& script, const std::string& dir);

}  // namespace whittle::testing
