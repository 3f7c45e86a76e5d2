#pragma once

#include <functional>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/runtime/backend.h"
#include "whittle/runtime/value.h"

namespace whittle::runtime {


struct SessionOptions {
  DeviceKind device = DeviceKind::kCpu;
  /// Threads for kernels (oneDNN and ours); results do not depend on it beyond rounding.
  int threads = 1;
  /// Record time per node.
  bool profile = false;
  /// Extra values to return after the graph outputs (per-layer comparison, calibration);
  /// a name that is already a graph output is returned once, in its place.
  std::vector<std::string> extraOutputs;
  /// Values computed inside subgraphs (If branches, Loop and Scan bodies, at any depth) to
  /// hand to `subgraphObserver` each time a body computes one (calibration): a branch that did
  /// not run hands nothing, a loop body one value per iteration. The lowering leaves them
  /// observable, as it does extra outputs.
  std::vector<std::string> observeInSubgraphs;
  std::function<void(const std::string& name, const Value& value)> subgraphObserver;
};

/// A named tensor.
using NamedTensor = std::pair<std::string, ir::Tensor>;
/// A named runtime value: a tensor, sequence, map or optional.
using NamedValue = std::pair<std::string, Value>;

/// Time spent in one node, summed over runs.
struct NodeProfile {
  std::string node;
  std::string opType;
  double totalMs = 0;
  /// Runs of the graph the node is in (a Loop body's nodes: one per iteration).
  int64_t runs = 0;
  /// Empty for the model's graph; "If_0/then_branch" (node/attribute, nested with '/') for
  /// the nodes of subgraphs.
  std::string scope;
  /// totalMs less the time of the node's subgraphs' nodes (what the control-flow kernel
  /// itself spent); equal to totalMs for nodes without subgraphs. The self times of all
  /// nodes, at every depth, add up to the model's node time.
  double selfMs = 0;
  /// The process's CPU time (every thread) while the node ran, less its subgraphs' nodes as
  /// selfMs: above selfMs × threads where threads wait busily, near selfMs where they are idle.
  double selfCpuMs = 0;
  /// The process's context switches while the node ran, less its subgraphs' nodes: a floor on
  /// the wake-ups of sleeping threads its parallel regions cost (common/process_clock.h).
  int64_t selfSwitches = 0;
  /// The threads the node ran on (Backend::threadsFor).
  int threads = 1;
};

/// A model compiled for a backend once (kernel selection, weight packing, primitive
/// creation) and run many times. Not thread-safe: one run at a time.
class Session {
 public:
  /// Compiles `model`. The session keeps its own copy of the graph; `model` may go away.
  static Expected<std::unique_ptr<Session>> create(const ir::Model& model, const SessionOptions& options = {});
  ~Session();

  /// Runs the model. Inputs are matched by name; every graph input without an initializer
  /// must be given. Returns the graph outputs (then extraOutputs) in order; an output that is
  /// a sequence, map or optional is an error naming it (use runValues).
  Expected<std::vector<NamedTensor>> run(const std::vector<NamedTensor>& inputs);
  /// Runs the model on values of any kind (sequence and optional inputs, ZipMap's sequence of
  /// maps out); otherwise as run().
  Expected<std::vector<NamedValue>> runValues(const std::vector<NamedValue>& inputs);

  /// The graph inputs to feed (initializer-backed inputs excluded) and the outputs.
  const std::vector<const ir::Value*>& inputs() const;
  const std::vector<const ir::Value*>& outputs() const;
  const SessionOptions& options() const;

  /// Per-node times when options.profile is set, in graph order, each control-flow node
  /// followed by the nodes of its subgraphs (depth first).
  std::vector<NodeProfile> profile() const;
  /// Peak bytes of activation buffers held by the pool.
  size_t peakActivationBytes() const;

 private:
  Session();
  template <class Named>
  Expected<std::vector<Value>> runFeeds(const std::vector<Named>& inputs);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace whittle::runtime
