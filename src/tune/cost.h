#pragma once
// What keeping a node float costs in speed, for the tuner's fallback order. Two sources:
//  - an estimate from the graph: multiply-adds and weight bytes of the node and of the ops with
//    weights that then read its float output (only an order, and a poor one: one core's float
//    convolutions run far below the assumed rate, and it ignores the conversions);
//  - measured: a per-node profile of the float model and of the fully quantized model on the
//    same inputs (whittle's runtime, warm-up excluded). A float node costs its float time less
//    its int8 time, for it and for the ops with weights that read its float output (they run
//    float too), plus the two conversions it adds (dequantize its input, quantize its output),
//    timed per element from the model's input QuantizeLinear.
// Nodes the float profile lacks (renamed by a fusion) take the estimate times the measured
// float speed (the float profile's compute time over the estimate's, for the nodes both have).

#include <string>
#include <unordered_map>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/data/dataset.h"
#include "whittle/ir/graph.h"

namespace whittle::tune {

/// Conv, ConvTranspose, MatMul, Gemm.
bool isComputeOp(const std::string& op);

/// The estimate, in microseconds of float32 work (about 40 G multiply-adds/s and 8 GB/s of
/// weights on one core).
double estimatedFloatCostUs(const ir::Node& node);

/// Milliseconds per run of each node of `model` (by name): its median over `runs` runs on
/// `feeds`, after one untimed warm-up run (which builds the kernels' plans).
Expected<std::unordered_map<std::string, double>> profileNodes(const ir::Model& model,
                                                               const std::vector<data::NamedTensor>& feeds,
                                                               int threads, int runs);

class FallbackCost {
 public:
  /// From per-node times (ms per run) of `floatModel` and of its fully quantized form, whose
  /// quantized nodes keep their float names. `quantizeMs` and `quantizeElements`: one
  /// QuantizeLinear's time and the elements it converts (0: conversions not counted).
  FallbackCost(const ir::Model& floatModel, std::unordered_map<std::string, double> floatMs,
               std::unordered_map<std::string, double> int8Ms, double quantizeMs, double quantizeElements);

  /// Profiles both models on `feeds` and builds the measured cost.
  static Expected<FallbackCost> measure(const ir::Model& floatModel, const ir::Model& quantized,
                                        const std::vector<data::NamedTensor>& feeds, int threads, int runs);

  /// Microseconds per run that keeping `node` (of the float model) float costs; may be <= 0
  /// where the int8 form is no faster.
  double costUs(const ir::Node& node) const;
  /// The nodes `node` turns float: itself, then the ops with weights that read its output.
  static std::vector<const ir::Node*> affected(const ir::Node& node);
  /// The sums of the per-node profiles (ms per run): the float and the fully quantized model.
  double floatTotalMs() const;
  double int8TotalMs() const;
  /// The float time per estimated microsecond (ms / us) used for nodes the float profile lacks.
  double floatScale() const { return scale_; }

 private:
  double floatMsOf(const ir::Node& n) const;
  std::unordered_map<std::string, double> float_, int8_;
  double perElementMs_ = 0;
  double scale_ = 0;
};

}  // namespace whittle::tune
