#pragma once
// The version history of the default-domain ONNX operators from opset 7 to the newest opset
// whittle reads (onnx_io::kMaxOpset), for upgrade-opset: for each op the opset that introduced
// it and every later opset at which its schema changed, each classified as
//   types       only element types were added;
//   compatible  an attribute or optional input with the old behaviour as its default, a wider
//               accepted range (negative axes), or a documentation fix: the node is unchanged;
//   adapter     the signature or the meaning changed: a function rewrites the node;
//   refused     no faithful rewrite exists: the upgrade stops with an error naming the node.
// The versions come from onnx's own schema history (onnx.defs, onnx 1.23), the
// classifications from diffing each pair of schemas (attributes, defaults, inputs, outputs,
// types) and reading the changelog where only the text differs.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"

namespace whittle::passes::opset {

class Upgrade;

/// Rewrites `node` for the change at Upgrade::version(); creates its replacement nodes through
/// the Upgrade so the walk continues them.
using Adapter = Status (*)(ir::Node& node, Upgrade& up);

enum class ChangeKind { kTypes, kCompatible, kAdapter, kRefused };

/// One schema change of an op: the opset version that brought it and what to do about it.
struct Change {
  int64_t version = 0;
  ChangeKind kind = ChangeKind::kTypes;
  std::string_view what;  ///< What changed (for compatible, adapter and refused changes).
  Adapter adapter = nullptr;
};

struct OpHistory {
  std::string_view op;
  int64_t introduced = 0;       ///< The first opset that has the op.
  std::vector<Change> changes;  ///< After `introduced`, in version order, up to onnx_io::kMaxOpset.
};

/// The history of a default-domain op, or nullptr when it is not an ONNX operator of opsets 7
/// to onnx_io::kMaxOpset.
const OpHistory* findHistory(std::string_view op);

/// Every op of the table, sorted by name.
const std::vector<OpHistory>& histories();

/// The state of one conversion, handed to adapters: the graph, the version of the change
/// being applied, and the nodes the walk still has to carry forward.
class Upgrade {
 public:
  Upgrade(ir::Graph& graph, int64_t from, int64_t to) : graph_(graph), from_(from), to_(to) {}

  ir::Graph& graph() { return graph_; }
  /// The opset of the change being applied.
  int64_t version() const { return version_; }
  /// Sets the change being applied to a node whose form is that of opset `nodeVersion`.
  void setStep(int64_t nodeVersion, int64_t version) {
    nodeVersion_ = nodeVersion;
    version_ = version;
  }
  int64_t from() const { return from_; }
  int64_t to() const { return to_; }

  /// A new default-domain node before `before`, written for the opset of the current change;
  /// the walk carries it on from there. Output types are left for the caller to set.
  ir::Node* addNode(const std::string& op, const std::vector<ir::Value*>& inputs,
                    const std::vector<std::string>& outputNames, const std::string& name, ir::Node* before);
  /// Replaces `node` by a node of type `op` reading `inputs`, with the node's attributes (less
  /// `dropAttributes`) and its first `keepOutputs` outputs, which keep their names and types.
  /// The other outputs must be unused. The new node is carried on like addNode's.
  ir::Node* replace(ir::Node& node, const std::string& op, const std::vector<ir::Value*>& inputs, size_t keepOutputs,
                    const std::vector<std::string>& dropAttributes = {});
  /// Routes every use of `node`'s only output to `by` (which takes its name) and erases `node`.
  void replaceOutput(ir::Node& node, ir::Value* by);
  /// Erases the node being adapted (its outputs must be unused).
  void erase(ir::Node& node);
  /// Starts applying a change to `node`; currentErased() then says whether the adapter erased it.
  void beginAdapter(const ir::Node* node) {
    current_ = node;
    currentErased_ = false;
  }
  bool currentErased() const { return currentErased_; }

  /// A 1-D int64 initializer (a 0-D one when `scalar`).
  ir::Value* int64s(const std::string& base, const std::vector<int64_t>& values, bool scalar = false);
  /// A 1-D float initializer.
  ir::Value* floats(const std::string& base, const std::vector<float>& values);
  /// A 0-D initializer of `dtype` holding `value`.
  ir::Value* scalar(const std::string& base, ir::DataType dtype, double value);

  /// "upgrade-opset: Resize 'up' cannot go from its opset-10 form to opset 11: <why>" (unimplemented).
  Status refuse(const ir::Node& node, const std::string& why) const;

  /// Resize nodes made from Upsample, whose scales are at least 1 by Upsample's definition.
  std::set<const ir::Node*> fromUpsample;
  /// Nodes the walk still has to carry on, with the opset their form corresponds to.
  std::vector<std::pair<ir::Node*, int64_t>> pending;

 private:
  ir::Graph& graph_;
  int64_t from_;
  int64_t to_;
  int64_t version_ = 0;
  int64_t nodeVersion_ = 0;
  const ir::Node* current_ = nullptr;
  bool currentErased_ = false;
};

// The adapters (passes/opset_adapters.cpp). Each says on top which change it handles.
Status sliceAttributesToInputs(ir::Node& node, Upgrade& up);
Status topKAttributeToInput(ir::Node& node, Upgrade& up);
Status upsampleScalesToInput(ir::Node& node, Upgrade& up);
Status upsampleToResize(ir::Node& node, Upgrade& up);
Status resize10To11(ir::Node& node, Upgrade& up);
Status resizeTfHalfPixelForNn(ir::Node& node, Upgrade& up);
Status padAttributesToInputs(ir::Node& node, Upgrade& up);
Status clipAttributesToInputs(ir::Node& node, Upgrade& up);
Status dropoutBoolMask(ir::Node& node, Upgrade& up);
Status dropoutRatioToInput(ir::Node& node, Upgrade& up);
Status splitAttributeToInput(ir::Node& node, Upgrade& up);
Status splitNumOutputs(ir::Node& node, Upgrade& up);
Status axesAttributeToInput(ir::Node& node, Upgrade& up);
Status softmaxAlongOneAxis(ir::Node& node, Upgrade& up);
Status batchNormalizationSpatial(ir::Node& node, Upgrade& up);
Status batchNormalizationTrainingOutputs(ir::Node& node, Upgrade& up);
Status scatterToScatterElements(ir::Node& node, Upgrade& up);
Status roiAlignOutputHalfPixel(ir::Node& node, Upgrade& up);
Status gridSampleModeNames(ir::Node& node, Upgrade& up);
Status groupNormalizationPerChannel(ir::Node& node, Upgrade& up);
Status dftAxisToInput(ir::Node& node, Upgrade& up);

}  // namespace whittle::passes::opset
