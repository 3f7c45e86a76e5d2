#pragma once
// Per-layer matching: which activations of an optimized model carry which activations of the
// original, so that the evaluator can measure the error layer by layer.

#include <string>
#include <vector>

#include "whittle/ir/graph.h"

namespace whittle::eval {

/// One activation of the original model, its counterpart in the optimized model and, once
/// evaluated, the optimized one's error against the original's.
struct LayerMetrics {
  std::string tensor;           ///< Its name in the original model.
  std::string optimizedTensor;  ///< Its name in the optimized model.
  /// "qdq": the DequantizeLinear output of a QDQ pair on `tensor`; "name": `tensor` itself;
  /// "fused-name" / "fused-qdq": the same, found on the first value of a chain of ops
  /// (Conv -> Add -> Relu) that the optimized model fused into one node keeping the first
  /// value's name, compared here with the chain's last value `tensor`.
  std::string match;
  std::string opType;  ///< The original producer's op type.
  std::string node;    ///< The original producer's name.
  double sqnrDb = 0;
  double cosine = 1.0;
  double maxAbsError = 0;
};

/// The activations of `optimized` that correspond to activations of `original`: the
/// DequantizeLinear output of a QuantizeLinear -> DequantizeLinear pair on a tensor of that
/// name (preferred: it carries the activation's quantization error), else the same name.
/// When the single-use elementwise ops after a matched tensor (Add, Mul, Relu, Clip,
/// BatchNormalization, ...) are all gone from `optimized`, they were fused into its producer,
/// and the match moves to the last of them (match "fused-name" / "fused-qdq"). Graph inputs,
/// constants and graph outputs are left out. In the original graph's node order; each
/// LayerMetrics holds the names, op type and node only.
std::vector<LayerMetrics> matchLayers(const ir::Graph& original, const ir::Graph& optimized);

}  // namespace whittle::eval
