#pragma once
// A seeded builder for small test graphs (STYLE.md: "Small graphs come from a seeded
// GraphBuilder"). Tests for the IR, the passes and the runtime build their graphs with it:
//
//   testing::GraphBuilder b(/*seed=*/7);
//   ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 8, 8});
//   ir::Value* w = b.weight("w", {4, 3, 3, 3});
//   ir::Value* y = b.node("Conv", {x, w}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})});
//   b.output(b.node("Relu", {y}));
//   ir::Model model = b.build(/*opset=*/17);

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "whittle/ir/graph.h"

namespace whittle::testing {

/// Builds an ir::Model one value and node at a time. Random weights come from a generator
/// seeded at construction, so the same calls give the same model on every run.
class GraphBuilder {
 public:
  explicit GraphBuilder(uint64_t seed = 42);

  /// A graph input with a fully known shape.
  ir::Value* input(const std::string& name, ir::DataType dtype, std::vector<int64_t> dims);
  /// A graph input whose dims may be symbolic (ir::Dim::symbolic("batch")) or unknown (ir::Dim{}).
  ir::Value* symbolicInput(const std::string& name, ir::DataType dtype, std::vector<ir::Dim> dims);

  /// An initializer with seeded random values: uniform in [lo, hi) for floating-point types,
  /// uniform integers in [lo, hi] (clamped to the type's range) for integer types, 0/1 for bool.
  ir::Value* weight(const std::string& name, std::vector<int64_t> dims, ir::DataType dtype = ir::DataType::kFloat,
                    double lo = -1.0, double hi = 1.0);
  /// An initializer holding `tensor` as it is.
  ir::Value* constant(const std::string& name, ir::Tensor tensor);
  /// A float32 initializer holding `values`.
  ir::Value* constant(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& values);
  /// An int64 initializer holding `values` (shapes, axes, indices).
  ir::Value* constantInt64(const std::string& name, std::vector<int64_t> dims, const std::vector<int64_t>& values);

  /// Adds a node with one output and returns it. `inputs` may hold nullptr for an absent
  /// optional input. The node is named "<op>_<n>" unless `name` is given; its output is
  /// named after the node.
  ir::Value* node(const std::string& opType, const std::vector<ir::Value*>& inputs,
                  std::vector<ir::Attribute> attributes = {}, const std::string& name = "",
                  const std::string& domain = "");
  /// Adds a node with `numOutputs` outputs and returns them.
  std::vector<ir::Value*> nodeN(const std::string& opType, const std::vector<ir::Value*>& inputs, size_t numOutputs,
                                std::vector<ir::Attribute> attributes = {}, const std::string& name = "",
                                const std::string& domain = "");
  /// The node most recently added by node() or nodeN().
  ir::Node* lastNode() const { return last_; }

  /// Marks `value` as a graph output.
  void output(ir::Value* value);
  /// Marks `value` as a graph output and gives it a type (ONNX wants typed graph outputs).
  void output(ir::Value* value, ir::DataType dtype, std::vector<int64_t> dims);

  /// The graph being built, for changes the helpers above do not cover.
  ir::Graph& graph() { return *model_.graph; }
  /// The seeded generator, for tests that want more random data from the same seed.
  std::mt19937_64& rng() { return rng_; }
  /// A tensor of seeded random values, as weight() makes them.
  ir::Tensor randomTensor(ir::DataType dtype, std::vector<int64_t> dims, double lo = -1.0, double hi = 1.0);

  /// Finishes the model: imports the default domain at `opset` (and version 1 of every other
  /// domain a node uses, unless importDomain() set one), with the IR version ONNX pairs with
  /// that opset. The builder starts over empty afterwards. The graph is not verified, so that
  /// tests can build broken graphs on purpose; call ir::verify() where it should hold.
  ir::Model build(int64_t opset = 17);
  /// Imports `domain` at `version` in the built model.
  void importDomain(const std::string& domain, int64_t version);

 private:
  ir::Model model_;
  std::mt19937_64 rng_;
  ir::Node* last_ = nullptr;
  std::vector<ir::OpsetImport> imports_;
};

/// The IR version that ONNX releases pair with a default-domain opset (opset 7 and 8: 3,
/// 9: 4, 10: 5, 11: 6, 12-14: 7, 15-18: 8, 19-20: 9, 21: 10).
int64_t irVersionForOpset(int64_t opset);

/// Recomputes every value's uses from the node inputs and implicit inputs and compares them
/// with the stored use lists (as multisets). Returns "" when they agree, else a message
/// naming the first value whose use list is wrong.
std::string useListMismatch(const ir::Graph& graph);

/// The op types of the graph's nodes, in list order.
std::vector<std::string> opTypes(const ir::Graph& graph);

}  // namespace whittle::testing
