#pragma once
// Shape and type inference on the IR: per-op rules that fill each node output's ir::ValueType
// (element type and dims) from its inputs, attributes and opset, for the ONNX ops the runtime
// runs, across opsets 7 to 23 (the attribute and input forms of Reshape, Slice, Squeeze,
// Unsqueeze, Split, Pad, Resize and the reductions; Conv and pooling arithmetic with auto_pad;
// broadcasting; QuantizeLinear/DequantizeLinear and the QLinear ops).
//
// Symbolic dims stay symbolic: [batch, 3, 224, 224] through a 1x1 Conv is [batch, 16, 224, 224],
// and the values of small shape tensors are followed, so Shape -> Gather -> Concat -> Reshape
// keeps "batch" too. It needs no protobuf and knows every opset whittle reads; onnx_io adds
// libonnx as a fallback for ops without a rule (onnx_io::inferShapes).
//
//   ir::ShapeInferenceResult r = ir::inferShapes(model);
//   // r.unresolved: nodes whose op has no rule; their outputs keep their declared types.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/ir/graph.h"

namespace whittle::ir {

/// Options of inferShapes().
struct ShapeInferenceOptions {
  /// Called in graph order for each node output whose dims are still not all known after the
  /// rules and the model's declarations, before the node's users are visited. It may set the
  /// value's type, which the users then see (the analysis puts declared shapes back there,
  /// with symbolic dims taken as 1).
  std::function<void(Value&)> fallback;
};

/// What inferShapes() did.
struct ShapeInferenceResult {
  /// Values whose type gained an element type, a rank or a dim.
  int64_t filled = 0;
  /// Nodes whose op has no rule (ops of other domains, control flow, the rare ops): their
  /// outputs keep the types the model declares, and inference goes on from there.
  std::vector<const Node*> unresolved;
  /// Values where a rule disagrees with the model's declaration, which is kept; one line each:
  /// "Reshape 'r' output 'y': inferred [2, 3], declared [3, 2]".
  std::vector<std::string> conflicts;
};

/// Fills in the types of the main graph's node outputs, in graph order, from the graph
/// inputs, initializers and Constant nodes. The model's declarations are merged in: a declared
/// element type and declared known dims are kept; an unknown or symbolic declared dim becomes
/// known when a rule computes it. Graph inputs and initializers are not changed, nor anything
/// but value types. Subgraph bodies are not visited.
ShapeInferenceResult inferShapes(Model& model, const ShapeInferenceOptions& options = {});

/// The same for a graph whose domains are imported at the given versions.
ShapeInferenceResult inferShapes(Graph& graph, const std::vector<OpsetImport>& opsets,
                                 const ShapeInferenceOptions& options = {});

/// Whether there is a shape rule for the op; `domain` "" or "ai.onnx" is the default domain.
bool hasShapeRule(std::string_view domain, std::string_view opType);

/// "domain:op" for every op with a rule ("" for the default domain), sorted.
std::vector<std::string> shapeRuleOps();

/// Output spatial size of a convolution or pooling window along one axis. `autoPad` is the
/// ONNX attribute ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"); `ceilMode` is for pooling.
/// 0 when the window does not fit or an argument is out of range (input over 2^40, kernel,
/// stride, dilation or pads over 2^20 in magnitude).
int64_t convOutputSize(int64_t input, int64_t kernel, int64_t stride, int64_t dilation, int64_t padBegin,
                       int64_t padEnd, std::string_view autoPad, bool ceilMode = false);

}  // namespace whittle::ir
