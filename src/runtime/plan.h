#pragma once
// The compiled form of one graph, shared by `Session` (the model's main graph) and the
// control-flow kernels (If branches, Loop and Scan bodies, each compiled once when the
// session is created): the graph after verification, shape inference and the backend's
// lowering, a kernel per node, a slot per value, and the step after which each slot's buffer
// goes back to the pool. Internal to src/runtime/.

#include <unordered_set>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/runtime/backend.h"
#include "whittle/runtime/buffer_pool.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/value.h"

namespace whittle::runtime::detail {

/// What a plan compiles and runs with; a subgraph's plan shares its parent's.
/// SessionOptions::observeInSubgraphs and subgraphObserver, shared by every plan of a session.
struct SubgraphObserver {
  std::unordered_set<std::string> names;
  std::function<void(const std::string& name, const Value& value)> observe;
};

struct PlanEnv {
  const Backend* backend = nullptr;
  ExecutionContext* context = nullptr;
  BufferPool* pool = nullptr;
  int threads = 1;
  bool profile = false;
  const SubgraphObserver* observer = nullptr;  // null when nothing is observed
};

/// Turns Constant nodes into initializers, then evaluates, on `backend`, every node whose
/// inputs are all initializers (and not graph
/// inputs, which a caller may feed) and replaces its outputs by initializers, in graph order so
/// that whole constant subgraphs go: what ONNX Runtime's session does at its default level.
/// Exporters compute filters, position tables and masks from constants in the graph (onnx-asr's
/// resampler builds a 160 x 475 sinc filter on every call otherwise). Not folded: random ops,
/// DequantizeLinear (weights stay int8), nodes with subgraphs, outputs that are graph outputs or
/// named in `keep`, results over 64 MiB, and nodes whose evaluation fails (they fail again, with
/// their message, when run). Returns the number of nodes folded.
int64_t foldConstantNodes(ir::Model& model, const Backend& backend, int threads, const std::vector<std::string>& keep);

class Plan;

/// A subgraph plan of a control-flow kernel, by attribute name; the kernel owns the plan.
struct SubgraphPlan {
  std::string attribute;
  const Plan* plan;
};

class Plan {
 public:
  /// Compiles `model` (the plan keeps it). `keep` names values the lowering must leave
  /// observable. Nodes with subgraphs get control-flow kernels, which compile their subgraphs
  /// into plans of their own now.
  static Expected<std::unique_ptr<Plan>> compile(ir::Model model, const PlanEnv& env, const std::vector<std::string>& keep);

  /// Runs the graph on backend values (tensors nearly always; sequences, maps, optionals),
  /// one per feedInputs() entry, in that order, and returns the graph outputs in order. The
  /// feeds are moved into the plan's slots, so a feed the caller gives up is pooled after its
  /// last use.
  Expected<std::vector<Value>> run(std::vector<Value> feeds);

  const ir::Model& model() const { return model_; }
  const ir::Graph& graph() const { return *model_.graph; }
  /// The graph inputs without an initializer.
  const std::vector<const ir::Value*>& feedInputs() const { return feedInputs_; }
  const std::vector<const ir::Value*>& outputs() const { return outputValues_; }
  /// One node's time over all runs (with env.profile): `scope` is empty for this plan's own
  /// nodes and "node/attribute/..." for those of the subgraphs below it; `selfMs` leaves out
  /// the time of the node's subgraphs (equal to `ms` for other nodes).
  struct NodeTime {
    std::string scope;
    const ir::Node* node;
    double ms;
    double selfMs;
    int64_t runs;
    double cpuMs, selfCpuMs;         // the process's CPU time while the node ran (all threads)
    int64_t switches, selfSwitches;  // the process's context switches while it ran
    int threads;
  };
  /// Every node of the plan in order, each control-flow node followed by the nodes of its
  /// subgraphs (depth first).
  std::vector<NodeTime> profile() const;
  int64_t runs() const { return runs_; }

 private:
  struct Step {
    const ir::Node* node;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> inputSlots;     // -1 for absent inputs
    std::vector<int> implicitSlots;  // the node's implicit inputs (subgraph captures)
    std::vector<int> outputSlots;    // -1 for absent outputs
    std::vector<int> releaseAfter;   // slots whose last use is this step
    std::vector<SubgraphPlan> subplans;  // a control-flow node's compiled subgraphs (owned by its kernel)
    std::vector<std::pair<size_t, std::string>> observed;  // outputs handed to env.observer
    std::vector<char> dyingInputs;   // per input: this step releases it and reads it once (not a feed)
    int threads = 1;  // Backend::threadsFor: the session's threads, or fewer for small work
  };
  void appendProfile(const std::string& scope, std::vector<NodeTime>& out) const;

  Status compileSteps(const std::vector<std::string>& keep);
  std::vector<std::pair<size_t, std::string>> observedFeeds_;  // feeds handed to env.observer (a body's formal inputs)
  int slotFor(const ir::Value* v);
  void clearSlots();

  PlanEnv env_;
  ir::Model model_;
  /// What the backend's lowering decided for this plan's graph (kernels read it when created).
  LoweringResult lowering_;
  std::vector<Step> steps_;
  std::vector<Value> slots_;
  std::vector<bool> isConstantSlot_;
  std::unordered_map<const ir::Value*, int> slotOf_;
  std::vector<const ir::Value*> feedInputs_;
  std::vector<int> feedSlots_;
  std::vector<const ir::Value*> outputValues_;
  std::vector<int> outputSlots_;
  std::vector<double> nodeMs_;
  std::vector<double> nodeCpuMs_;
  std::vector<int64_t> nodeSwitches_;
  int64_t runs_ = 0;
};

/// Whether the runtime runs `node` as control flow (If, Loop, Scan, SequenceMap of the default domain).
bool isControlFlow(const ir::Node& node);

/// The kernel for a control-flow node of `outer` (whose opsets its subgraphs share): each
/// subgraph is decoded and compiled into a plan once, here; `subplans` receives them (for the
/// profile). Errors name the node.
Expected<std::unique_ptr<Kernel>> createControlFlowKernel(const ir::Node& node, const ir::Model& outer,
                                                          const PlanEnv& env, std::vector<SubgraphPlan>* subplans);

}  // namespace whittle::runtime::detail
