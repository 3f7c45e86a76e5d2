#pragma once
// The default-domain version converter behind the upgrade-opset pass, for passes that need a
// newer opset (quantize-int8: 13 for per-axis DequantizeLinear; quantize-dynamic: 11).

#include <cstdint>
#include <map>
#include <string>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::passes {

/// The newest default-domain opset upgrade-opset writes: the newest whittle reads and runs.
inline constexpr int64_t kNewestOpset = onnx_io::kMaxOpset;

/// What upgradeOpset did.
struct OpsetUpgrade {
  int64_t from = 0;
  int64_t to = 0;
  /// Rewrites by adapters, by the op type rewritten ("Slice" -> 4); a node that crosses two
  /// changes (Upsample 7 -> 9 -> Resize) counts once per change.
  std::map<std::string, int64_t> adapted;
  int64_t adaptedCount() const;
  /// "opset 9 -> 13: Slice 4, Softmax 2 rewritten" (or "... no node needed a rewrite").
  std::string summary() const;
};

/// Converts every default-domain node of the main graph from the opset the model imports to
/// `to`, following each op's schema changes on the way (passes/opset_history.cpp), and sets
/// the import and the IR version that opset needs. All or nothing: when a node cannot be
/// converted faithfully the error names it and the change, and the model is left as it was.
/// A model at or above `to` is left alone. `to` must be in [onnx_io::kMinOpset, kNewestOpset].
Expected<OpsetUpgrade> upgradeOpset(ir::Model& model, int64_t to);

}  // namespace whittle::passes
