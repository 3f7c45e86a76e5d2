#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::onnx_io {

/// The range of model versions whittle reads. IR versions 11 to 14 added only element types
/// (FLOAT4E2M1; FLOAT8E8M0; UINT2, INT2; FLOAT6E2M3, FLOAT6E3M2) and fields that are carried
/// through unchanged; a model using a type whittle cannot hold is refused naming the type.
inline constexpr int64_t kMinIrVersion = 3;
inline constexpr int64_t kMaxIrVersion = 14;
inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 21;

struct LoadOptions {
  /// Refuse default-domain opsets outside [kMinOpset, kMaxOpset] instead of loading them.
  bool strictOpsetRange = false;
};

/// Reads an .onnx file into the IR. Weights stored in external-data files are memory-mapped,
/// not copied (except those at offsets that are not a multiple of 64 bytes, which are copied
/// so that kernels can read them in place). Errors name the file and the node or tensor at fault.
Expected<ir::Model> load(const std::string& path, const LoadOptions& options = {});

/// Parses a serialized ModelProto. `baseDir` resolves external-data locations; `label`
/// names the source in messages.
Expected<ir::Model> loadFromBytes(const std::string& bytes, const std::string& baseDir, const std::string& label,
                                  const LoadOptions& options = {});

struct SaveOptions {
  /// Store every tensor of at least `externalThreshold` bytes in one external-data file.
  bool externalData = false;
  /// Switch to external data when the model would exceed protobuf's 2 GB limit.
  bool autoExternalAbove2GB = true;
  size_t externalThreshold = 1024;
  /// File name of the external data, relative to the model's folder; default: MODEL.data.
  std::string externalFileName;
};

/// Writes the model to `path` through a temporary file that is renamed into place, so a
/// failure never leaves a half-written file behind.
Status save(const ir::Model& model, const std::string& path, const SaveOptions& options = {});

/// The serialized ModelProto with every tensor inline (for small models and tests).
Expected<std::string> serialize(const ir::Model& model);

/// What the ONNX checker said about a model.
struct CheckResult {
  bool ran = false;        ///< False when the checker does not know this IR version or opset.
  std::string skipReason;  ///< Why it did not run.
  Status status;           ///< The checker's verdict when it ran.
};

/// Runs libonnx's checker (full check, including shape inference) on the model.
CheckResult checkModel(const ir::Model& model);

/// Fills in value types with whittle's own rules (ir::inferShapes), and with libonnx's shape
/// inference for the outputs of ops without a rule where libonnx knows the model's opset
/// (<= libonnxMaxOpset()). Declared types are kept; nothing else changes. Returns how many
/// values got a type, a rank or a dim. Inside the session and the passes, where every op the
/// runtime runs has a rule, call ir::inferShapes directly: it needs no protobuf round trip.
Expected<int64_t> inferShapes(ir::Model& model, const ir::ShapeInferenceOptions& options = {});

/// The element types of an If, Loop or Scan node's outputs, as its subgraph declares them (If:
/// then_branch's outputs; Loop: the body's outputs after the condition; Scan: the body's
/// outputs), one per node output; kUndefined where the subgraph does not say or the output is
/// not a tensor. Empty for other nodes. The subgraphs are kept serialized in the IR, and
/// ir::inferShapes has no rule for these ops.
std::vector<ir::DataType> subgraphOutputTypes(const ir::Node& node);

/// The newest default-domain opset that the linked libonnx knows.
int64_t libonnxMaxOpset();

}  // namespace whittle::onnx_io
