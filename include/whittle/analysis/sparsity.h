#pragma once
// Weight sparsity of the layers that pruning works on (Conv, Gemm, MatMul with a constant
// float weight) and their N:M structure along the reduction axis, shared by the pruning
// passes and `whittle inspect`.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "whittle/ir/graph.h"

namespace whittle::analysis {

/// A prunable layer: the node and its constant float weight (input 1).
struct PrunableWeight {
  ir::Node* node = nullptr;
  ir::Value* value = nullptr;      ///< The weight value the node reads.
  const ir::Tensor* tensor = nullptr;
};

/// The weight of a Conv (rank >= 3), Gemm or 2-D MatMul whose input 1 is a float32
/// constant (an initializer that is not a graph input, or a Constant node); nullopt otherwise.
std::optional<PrunableWeight> prunableWeight(ir::Node& node);

/// Every prunable layer of the graph, in graph order.
std::vector<PrunableWeight> prunableWeights(ir::Graph& graph);

/// Element offsets of the node's weight (of `dims`) in groups of `m` consecutive elements
/// along the reduction axis: input channels at each output channel and kernel position for a
/// Conv ([O, C/g, k...]), K at each output column for MatMul ([K, N]) and Gemm ([K, N], or
/// [N, K] with transB). Returns nullopt when the reduction length is not a multiple of `m`.
std::optional<std::vector<int64_t>> reductionGroups(const ir::Node& node, const std::vector<int64_t>& dims, int64_t m);

/// The N:M structure of one layer: groups of `m` along the reduction axis that hold at most
/// `n` nonzero elements.
struct NmLayer {
  std::string node;
  std::string opType;
  std::string weight;
  int64_t elements = 0;
  int64_t zeros = 0;
  bool applicable = false;  ///< False when the reduction length is not a multiple of m.
  int64_t groups = 0;
  int64_t compliantGroups = 0;
  bool compliant() const { return applicable && groups > 0 && groups == compliantGroups; }
};

/// The N:M structure of every Conv/Gemm/MatMul with a constant weight, in graph order: float32
/// weights (zero: == 0) and int8/uint8 weights behind DequantizeLinear (zero: == the zero point).
std::vector<NmLayer> nmStructure(ir::Graph& graph, int64_t n, int64_t m);

}  // namespace whittle::analysis
