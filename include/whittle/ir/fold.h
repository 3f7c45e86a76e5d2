#pragma once
// Folding constant parameters into the ops that use them: per-channel math done in double
// and rounded once to the weight's type. Shared by the fusion passes and the runtime's
// lowering, so that a fold is written once (BatchNormalization into a Conv, for one).

#include <optional>
#include <string>
#include <vector>

#include "whittle/ir/graph.h"
#include "whittle/ir/match.h"

namespace whittle::ir {

/// The values of a tensor of any numeric type, as doubles.
std::vector<double> toDoubles(const Tensor& t);
/// A tensor of `dtype` (float32, float16, bfloat16 or float64) from double values.
Tensor fromDoubles(DataType dtype, std::vector<int64_t> dims, const std::vector<double>& values);

/// Output channels of a Conv (W[0]) or ConvTranspose (W[1] * group).
int64_t outputChannels(const Node& conv, const Tensor& weight);
/// The Conv/ConvTranspose weight with every output channel c multiplied by factor[c].
Tensor scaleOutputChannels(const Node& conv, const Tensor& weight, const std::vector<double>& factor);

/// y = BatchNormalization(Conv(x, W, b), scale, beta, mean, var), as matchConvBatchNorm
/// found it (Conv may be ConvTranspose).
struct ConvBatchNorm {
  Node* conv = nullptr;
  Node* bn = nullptr;
};

/// Matches at `bn`: an inference BatchNormalization (training_mode 0, spatial 1, any extra
/// outputs unread and not graph outputs) whose input is a Conv or ConvTranspose output that
/// it alone reads; W (floating point, rank >= 3), b (if present) and the BN's scale, beta,
/// mean and var are constants in `scope` with one value per output channel. Cheap checks
/// first; nullopt when any of this does not hold.
std::optional<ConvBatchNorm> matchConvBatchNorm(const Node& bn, ConstantScope scope = ConstantScope::kModel);

/// Folds what matchConvBatchNorm found:
///   a[c] = scale[c] / sqrt(var[c] + epsilon)
///   W'[c] = W[c] * a[c],  b'[c] = (b[c] - mean[c]) * a[c] + beta[c]   (b absent: 0)
/// in double, rounded once to W's type. The Conv reads W' and b' (new initializers named
/// after W and the BN output) and takes the BN output's type; the BN's readers (and the
/// graph output, by name) read the Conv instead. The BN is left unread, and W and b too
/// unless something else reads them, for the caller to erase (the rewrite driver does; one
/// removeDeadNodes at the end takes the initializers of many folds in one pass).
void foldConvBatchNorm(Graph& graph, const ConvBatchNorm& m, ConstantScope scope = ConstantScope::kModel);

/// Turns every default-domain Constant node whose value constantNodeValue reads into an
/// initializer (named after the node's output with "_const", made unique) that the node's
/// readers read instead. Outputs that are graph outputs, read inside subgraphs or named in
/// `keep` stay as they are. With `eraseNodes` the Constant nodes go; otherwise they are left
/// unread for the caller's dead-code sweep. Returns how many nodes were turned. The passes (fold-constants)
/// and the runtime's lowering share it: exporters such as Paddle2ONNX write every weight as a
/// Constant node, and the lowering's folds and fusions only see initializers.
int64_t constantNodesToInitializers(Graph& graph, bool eraseNodes, const std::vector<std::string>& keep = {});

/// Whether constant folding may evaluate `node` once in place of every run, by its kind alone
/// (its inputs are the caller's to check): not a node with subgraphs or without outputs, not a
/// random op (Random*, Multinomial, Bernoulli: they differ per call), not DequantizeLinear
/// (QDQ models keep int8 weights behind it, in the file and in memory). Shared by the
/// fold-constants pass and the runtime's fold when it compiles a plan.
bool foldableOp(const Node& node);

/// Makes the readers of each used output of `node` read an initializer holding values[i]
/// instead (named after the output with "_folded"); the node is left unread for the caller's
/// dead-code sweep. What constant folding does once a node is evaluated (the fold-constants
/// pass, and the runtime when it compiles a plan). values.size() must be node.numOutputs().
void replaceOutputsWithConstants(Graph& graph, const Node& node, std::vector<Tensor> values);

/// How many elements of a float32 or float64 tensor are subnormal (nonzero and smaller in
/// magnitude than the type's smallest normal number); 0 for every other type.
int64_t countSubnormals(const Tensor& t);
/// A copy of a float32 or float64 tensor with its subnormal elements set to zero of the same
/// sign (what flush-to-zero arithmetic would read); nullopt when it has none or another type.
std::optional<Tensor> flushSubnormals(const Tensor& t);

struct SubnormalFlush {
  int64_t tensors = 0;   ///< Constants that held subnormals.
  int64_t elements = 0;  ///< Subnormal elements set to zero.
};
/// Flushes the subnormal elements of every float32/float64 initializer of `graph` and every
/// default-domain Constant node's tensor value to zero. x86 cores take a microcode assist
/// for each multiply that reads a subnormal (10 to 100 times slower): a trained model with
/// many of them in one weight (PaddleOCR's PP-OCRv6 detector: 63 % of a 1x1 Conv's weights)
/// spends most of its time there. A product with |w| < 1.2e-38 cannot move a float32 sum of
/// ordinary magnitude, so the result is the same to float32 precision. Subgraph bodies are
/// not visited (they are kept serialized).
SubnormalFlush flushSubnormalConstants(Graph& graph);

}  // namespace whittle::ir
