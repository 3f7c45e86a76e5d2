#pragma once
// What `whittle inspect` reports about a model: interface, ops, parameters, MACs, weight
// sparsity, quantization form and file size. The counting rules are documented in
// docs/inspect-schema.md; tests/analysis/reference_stats.py checks them independently.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::analysis {

/// A graph input or output as the model declares it.
struct TensorInfo {
  std::string name;
  ir::DataType dtype = ir::DataType::kUndefined;
  /// Declared dims (known, symbolic or unknown); nullopt when the rank is unknown.
  std::optional<std::vector<ir::Dim>> shape;
};

/// Element count and storage bytes of the parameters of one data type.
struct DtypeCount {
  int64_t count = 0;
  int64_t bytes = 0;
};

/// Parameters: constants used as weights or biases (see docs/inspect-schema.md for the rule).
struct ParameterStats {
  int64_t total = 0;
  int64_t bytes = 0;
  std::map<std::string, DtypeCount> byDtype;  ///< Keyed by dataTypeName(): "float32", "int8", ...
  int64_t tensors = 0;                        ///< How many constant tensors were counted.
};

/// The multiply-accumulates of one node.
struct NodeMacs {
  std::string node;    ///< The node's name (or describe() when it has none).
  std::string opType;  ///< Domain-qualified for non-default domains.
  int64_t macs = 0;
};

/// Multiply-accumulates of Conv, ConvTranspose, Gemm, MatMul, QLinearConv, ConvInteger,
/// QLinearMatMul and MatMulInteger at batch 1.
struct MacStats {
  int64_t total = 0;
  std::map<std::string, int64_t> byOpType;
  std::vector<NodeMacs> nodes;  ///< In graph order.
  /// True when some symbolic dim other than the batch was taken as 1, or some node's shapes
  /// could not be determined (then it is left out of the total).
  bool approximate = false;
  std::vector<std::string> notes;           ///< Why the count is approximate, one line each.
  std::vector<std::string> uncountedNodes;  ///< MAC nodes left out: shapes unknown.
};

/// The fraction of exactly-zero elements in one layer's weight.
struct LayerSparsity {
  std::string node;
  std::string opType;
  std::string weight;  ///< The constant tensor's name.
  int64_t elements = 0;
  int64_t zeros = 0;
};

/// Zeros in the weights of Conv/Gemm/MatMul-like ops; a quantized element is zero when it
/// equals its zero point. A weight shared by several layers counts once in the totals.
struct SparsityStats {
  int64_t weightElements = 0;
  int64_t zeroElements = 0;
  std::vector<LayerSparsity> layers;
  double fraction() const {
    return weightElements > 0 ? static_cast<double>(zeroElements) / static_cast<double>(weightElements) : 0.0;
  }
};

/// How a model is quantized.
enum class QuantForm {
  kNone,        ///< No quantization ops.
  kQdq,         ///< QuantizeLinear on activations, DequantizeLinear around float compute ops.
  kQOperator,   ///< Quantized operators (QLinearConv, QLinearMatMul, com.microsoft QLinear*, ConvInteger, ...).
  kDynamic,     ///< DynamicQuantizeLinear feeding MatMulInteger / ConvInteger.
  kWeightOnly,  ///< DequantizeLinear of constant weights; float activations.
};

/// "none", "qdq", "qoperator", "dynamic", "weight-only".
std::string_view quantFormName(QuantForm form);

struct QuantStats {
  QuantForm form = QuantForm::kNone;
  int64_t quantizeLinear = 0;
  int64_t dequantizeLinear = 0;
  int64_t dynamicQuantizeLinear = 0;
  int64_t qlinearOps = 0;  ///< QLinear* (any domain), ConvInteger, MatMulInteger, com.microsoft QGemm.
  /// Quantized weights of compute ops (Conv/Gemm/MatMul weights, not biases), by dtype name.
  std::map<std::string, int64_t> weightDtypes;
  int64_t perChannelWeights = 0;
  int64_t perTensorWeights = 0;
  /// "int8", "uint8", ... or "mixed"; empty when no weight is quantized.
  std::string weightDtype() const;
  /// "per-channel", "per-tensor", "mixed"; empty when no weight is quantized.
  std::string granularity() const;
};

struct FileStats {
  int64_t sizeBytes = -1;                      ///< Size of the .onnx file; -1 when it was not read from a file.
  int64_t externalDataBytes = 0;               ///< Bytes of tensors stored in external-data files.
  std::vector<std::string> externalDataFiles;  ///< Their locations, as written in the model.
};

/// The inferred shape of one value at batch 1 (for `inspect --shapes`).
struct ValueShape {
  std::string name;
  ir::DataType dtype = ir::DataType::kUndefined;
  std::optional<std::vector<int64_t>> dims;  ///< nullopt when it could not be determined.
};

struct ModelStats {
  std::string path;
  int64_t irVersion = 0;
  std::string producerName;
  std::string producerVersion;
  std::map<std::string, int64_t> opsets;  ///< Domain ("ai.onnx" for the default) -> version.
  std::vector<TensorInfo> inputs;         ///< Graph inputs that are not initializers.
  std::vector<TensorInfo> outputs;
  int64_t nodeCount = 0;
  int64_t nodesWithSubgraphs = 0;  ///< If/Loop/Scan nodes: their bodies are not counted.
  /// Op type (domain-qualified outside the default domain) -> count, most frequent first.
  std::vector<std::pair<std::string, int64_t>> opHistogram;
  ParameterStats parameters;
  MacStats macs;
  SparsityStats sparsity;
  QuantStats quantization;
  FileStats file;
  std::vector<ValueShape> valueShapes;  ///< Filled when StatsOptions::valueShapes is set.
};

struct StatsOptions {
  /// Also report the inferred shape of every value (graph order).
  bool valueShapes = false;
};

/// Computes the statistics of a loaded model. `path` is the file it came from (for the file
/// size; may be empty). The model is not modified: shape inference runs on a clone.
Expected<ModelStats> computeStats(const ir::Model& model, const std::string& path, const StatsOptions& options = {});

/// "Conv", or "com.microsoft.QLinearAdd" outside the default domain.
std::string qualifiedOpType(const ir::Node& node);

/// Output spatial size of a convolution or pooling window along one axis. `autoPad` is the
/// ONNX attribute ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"); `ceilMode` is for pooling.
/// 0 when the window does not fit or an argument is out of range (input over 2^40, kernel,
/// stride, dilation or pads over 2^20 in magnitude).
int64_t convOutputSize(int64_t input, int64_t kernel, int64_t stride, int64_t dilation, int64_t padBegin,
                       int64_t padEnd, std::string_view autoPad, bool ceilMode = false);

}  // namespace whittle::analysis
