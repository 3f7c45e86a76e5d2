#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/tensor.h"
#include "whittle/runtime/backend.h"
#include "whittle/runtime/value.h"


namespace whittle::runtime {

class BufferPool;

/// What a kernel sees while it runs one node: its inputs and a way to make outputs. Inputs and
/// outputs are runtime Values; the kernels of tensor ops read and write tensors (`input`,
/// `allocateOutput`, `setOutput`), those of sequence and optional ops whole Values (`value`,
/// `setValue`).
class KernelContext {
 public:
  /// `threads`: what the session gives this node (Backend::threadsFor); 0 for all of the context's.
  KernelContext(const ir::Node& node, std::vector<const Value*> inputs, std::vector<Value>& outputs, BufferPool& pool,
                ExecutionContext& context, int threads = 0)
      : node_(node),
        inputs_(std::move(inputs)),
        outputs_(outputs),
        pool_(pool),
        context_(context),
        threads_(threads > 0 ? threads : context.threads()) {}

  const ir::Node& node() const { return node_; }
  size_t numInputs() const { return inputs_.size(); }
  /// Whether optional input `i` is present.
  bool hasInput(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  /// Input `i` as a tensor (an empty tensor, dtype undefined, when it is a sequence, map or optional).
  const ir::Tensor& input(size_t i) const { return inputs_[i]->tensor(); }
  /// Input `i` as a runtime value, whatever its kind.
  const Value& value(size_t i) const { return *inputs_[i]; }
  size_t numOutputs() const { return outputs_.size(); }
  /// Whether output `i` is wanted (present in the graph).
  bool hasOutput(size_t i) const;

  /// A new output tensor with uninitialised contents, from the session's buffer pool.
  ir::Tensor& allocateOutput(size_t i, ir::DataType dtype, std::vector<int64_t> dims);
  /// Output `o` written over input `in`'s bytes when they die here, else a new output as
  /// allocateOutput makes it; returns the bytes to write (uninitialised, or input `in`'s values).
  /// The input's buffer is taken only when the plan proved this node its last reader, reading it
  /// once (not a graph input, output or constant), nothing else holds the buffer (a view, a
  /// caller), it is writable, output and input take the same number of bytes, and neither is a
  /// string. For kernels that read input element k before they write output element k
  /// (elementwise ops whose output has the input's shape and element size).
  std::byte* allocateOutputOver(size_t o, size_t in, ir::DataType dtype, std::vector<int64_t> dims);
  /// Whether input `i`'s bytes may become an output's (allocateOutputOver's test).
  bool inputDiesHere(size_t i) const;
  /// Per input, whether this node is its last reader (the plan's knowledge; null: none dies here).
  void setDyingInputs(const std::vector<char>* dying) { dying_ = dying; }
  /// A tensor with uninitialised contents from the pool, not (yet) an output: a sequence's element.
  ir::Tensor allocateTensor(ir::DataType dtype, std::vector<int64_t> dims);
  /// Sets output `i` to an existing tensor (a view sharing an input's buffer, say).
  void setOutput(size_t i, ir::Tensor tensor);
  /// Sets output `i` to a value of any kind.
  void setValue(size_t i, Value value);

  /// The threads this node runs on: the session's, or one where its work is too small to split.
  int threads() const { return threads_; }
  /// The backend's per-session state (the CPU backend's engine and stream: kernels/cpu/).
  ExecutionContext& context() { return context_; }

  /// "Conv 'conv1'": for messages.
  std::string describe() const { return node_.describe(); }
  /// An error naming the node: "Conv 'conv1': MESSAGE".
  Status error(const std::string& message) const { return invalidInput(describe() + ": " + message); }
  Status unsupported(const std::string& message) const { return unimplemented(describe() + ": " + message); }

 private:
  const ir::Node& node_;
  std::vector<const Value*> inputs_;
  std::vector<Value>& outputs_;
  BufferPool& pool_;
  ExecutionContext& context_;
  const std::vector<char>* dying_ = nullptr;
  int threads_;
};

/// A compiled node: created once per session (packing weights, creating primitives), then
/// run many times. Shapes may change between runs; a kernel re-plans when they do.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual Status run(KernelContext& ctx) = 0;
};

/// What a kernel factory knows at compile time.
struct KernelCreateInfo {
  const ir::Node& node;
  /// The opset version of the node's domain in this model.
  int64_t opset;
  /// Input dtypes as far as they are known before running (kUndefined otherwise).
  std::vector<ir::DataType> inputTypes;
  /// The threads the node runs on (Backend::threadsFor): the session's, or fewer for small work.
  int threads;
  /// The backend's per-session state, as in KernelContext::context().
  ExecutionContext& context;
  /// What the session's lowering decided (layouts); nullptr outside a session (evaluateNode).
  const LoweringResult* lowering = nullptr;

  /// Whether the lowering put `v` (may be null) channels-last for the int8 kernels.
  bool channelsLastInt8(const ir::Value* v) const {
    return lowering != nullptr && v != nullptr && lowering->channelsLastInt8.contains(v);
  }

  /// The constant tensor feeding input `i`, or nullptr when it is not a constant.
  const ir::Tensor* constantInput(size_t i) const;
  Status error(const std::string& message) const { return invalidInput(node.describe() + ": " + message); }
  Status unsupported(const std::string& message) const { return unimplemented(node.describe() + ": " + message); }
};

using KernelFactory = std::function<Expected<std::unique_ptr<Kernel>>(const KernelCreateInfo&)>;

/// Kernels by (domain, op type). A registration covers opset versions from `sinceVersion`
/// on, until the next registration of the same op; dtypes are checked by the factory.
class KernelRegistry {
 public:
  void add(std::string domain, std::string opType, int64_t sinceVersion, KernelFactory factory);
  /// The factory for a node at `opset`, or nullptr when the runtime has none.
  const KernelFactory* find(std::string_view domain, std::string_view opType, int64_t opset) const;
  bool has(std::string_view domain, std::string_view opType) const;
  /// Marks an op whose kernels read or write sequences, maps or optionals (KernelContext::value,
  /// setValue); the others take tensors only, and a session refuses to feed them anything else.
  void markTakesValues(std::string_view domain, std::string_view opType);
  bool takesValues(std::string_view domain, std::string_view opType) const;
  /// "domain:op" for every registered op, sorted.
  std::vector<std::string> opNames() const;

  /// The registry with every CPU kernel (kernels/cpu/registry.cpp).
  static const KernelRegistry& cpu();

 private:
  struct Entry {
    int64_t sinceVersion;
    KernelFactory factory;
  };
  std::unordered_map<std::string, std::vector<Entry>> entries_;
  std::unordered_set<std::string> takesValues_;
};

/// A kernel from a plain function, for ops that need no compile-time state.
std::unique_ptr<Kernel> makeFunctionKernel(std::function<Status(KernelContext&)> fn);

/// Normalises "ai.onnx" to "".
std::string_view canonicalDomain(std::string_view domain);

}  // namespace whittle::runtime
