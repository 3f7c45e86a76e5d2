#pragma once
// Internal to src/analysis/: what the files behind computeStats() share. model_stats.cpp puts
// the statistics together; parameters.cpp counts parameters, weight_stats.cpp sparsity and the
// quantization form, macs.cpp the multiply-accumulates from inferred shapes.

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "whittle/analysis/model_stats.h"

namespace whittle::analysis::detail {

using Dims = std::vector<int64_t>;

/// Sizes are saturated at this value (a hostile model may declare huge dims).
inline constexpr int64_t kOverflow = std::numeric_limits<int64_t>::max();

bool isDefaultDomain(const ir::Node& n);

/// a * b for non-negative sizes, saturated at kOverflow.
int64_t mulSaturated(int64_t a, int64_t b);
/// The product of dims[from, to), saturated at kOverflow.
int64_t product(const Dims& dims, size_t from = 0, size_t to = std::numeric_limits<size_t>::max());
/// The product of sizes; kOverflow when it does not fit in int64.
int64_t product(std::initializer_list<int64_t> factors);

/// The constant tensor behind a value: an initializer or the output of a Constant node.
const ir::Tensor* constantTensor(const ir::Value* v);

/// The node's name, or describe() when it has none.
std::string nodeLabel(const ir::Node& n);

/// Ops that only move or re-type their first input; a weight is followed through them.
bool isPassThrough(const ir::Node& n, int slot);
/// The inputs that finally read `v`, looking through pass-through ops.
void finalUses(const ir::Value* v, std::vector<ir::Value::Use>& out, std::unordered_set<const ir::Value*>& seen);
/// Element types that count as parameters (float, int8/uint8, int16/uint16, int32, 4-bit).
bool isParameterDtype(ir::DataType t);
/// Every constant of the graph: initializers and Constant-node outputs.
std::vector<std::pair<const ir::Value*, const ir::Tensor*>> graphConstants(const ir::Graph& g);

ParameterStats countParameters(const ir::Graph& g);  // parameters.cpp
SparsityStats computeSparsity(const ir::Graph& g);   // weight_stats.cpp
QuantStats computeQuantization(const ir::Graph& g);  // weight_stats.cpp
/// MACs at batch 1; fills `valueShapes` with every value's shape when it is given (macs.cpp).
MacStats computeMacs(const ir::Model& model, std::vector<ValueShape>* valueShapes);

}  // namespace whittle::analysis::detail
