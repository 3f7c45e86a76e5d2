#include "whittle/runtime/session.h"

#include <algorithm>
#include <chrono>
#include <type_traits>
#include <unordered_map>

#include "whittle/common/process_clock.h"
#include "whittle/ir/verifier.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/runtime/backend.h"
#include "whittle/runtime/buffer_pool.h"
#include "whittle/runtime/kernel.h"
#include "plan.h"

namespace whittle::runtime {

bool KernelContext::hasOutput(size_t i) const { return i < outputs_.size() && node_.output(i) != nullptr; }

ir::Tensor KernelContext::allocateTensor(ir::DataType dtype, std::vector<int64_t> dims) {
  if (dtype == ir::DataType::kString) return ir::Tensor(dtype, std::move(dims));
  int64_t numel = 1;
  for (int64_t d : dims) numel *= d;
  return ir::Tensor(dtype, std::move(dims), pool_.acquire(ir::storageBytes(dtype, numel)));
}

ir::Tensor& KernelContext::allocateOutput(size_t i, ir::DataType dtype, std::vector<int64_t> dims) {
  WH_CHECK(i < outputs_.size(), describe() + ": output index out of range");
  outputs_[i] = Value(allocateTensor(dtype, std::move(dims)));
  return outputs_[i].mutableTensor();
}

bool KernelContext::inputDiesHere(size_t i) const {
  if (dying_ == nullptr || i >= dying_->size() || (*dying_)[i] == 0 || !hasInput(i)) return false;
  const ir::Tensor& x = inputs_[i]->tensor();
  // The slot is the buffer's only holder: no view of it lives elsewhere, nobody kept a copy.
  return x.dtype() != ir::DataType::kString && x.buffer() && x.buffer().use_count() == 1 && x.buffer()->writable();
}

std::byte* KernelContext::allocateOutputOver(size_t o, size_t in, ir::DataType dtype, std::vector<int64_t> dims) {
  WH_CHECK(o < outputs_.size(), describe() + ": output index out of range");
  if (dtype != ir::DataType::kString && inputDiesHere(in)) {
    int64_t numel = 1;
    for (int64_t d : dims) numel *= d;
    const ir::Tensor& x = inputs_[in]->tensor();
    const std::shared_ptr<ir::Buffer>& buffer = x.buffer();
    // Element k over element k: the same number of bytes (a bool output over a float input
    // would write ahead of what the other threads' chunks have read).
    if (ir::storageBytes(dtype, numel) == ir::storageBytes(x.dtype(), x.numel())) {
      outputs_[o] = Value(ir::Tensor(dtype, std::move(dims), buffer));
      // Not Tensor::mutableRawData, which would copy the bytes: the input's slot shares them
      // until the plan lets it go after this node.
      return buffer->mutableData();
    }
  }
  return allocateOutput(o, dtype, std::move(dims)).mutableRawData();
}

void KernelContext::setOutput(size_t i, ir::Tensor tensor) {
  WH_CHECK(i < outputs_.size(), describe() + ": output index out of range");
  outputs_[i] = Value(std::move(tensor));
}

void KernelContext::setValue(size_t i, Value value) {
  WH_CHECK(i < outputs_.size(), describe() + ": output index out of range");
  outputs_[i] = std::move(value);
}

namespace detail {

int Plan::slotFor(const ir::Value* v) {
  auto [it, inserted] = slotOf_.emplace(v, static_cast<int>(slots_.size()));
  if (inserted) {
    slots_.emplace_back();
    isConstantSlot_.push_back(false);
  }
  return it->second;
}

Expected<std::unique_ptr<Plan>> Plan::compile(ir::Model model, const PlanEnv& env, const std::vector<std::string>& keep) {
  std::unique_ptr<Plan> plan(new Plan());
  plan->env_ = env;
  plan->model_ = std::move(model);
  WH_RETURN_IF_ERROR(plan->compileSteps(keep));
  return plan;
}

Status Plan::compileSteps(const std::vector<std::string>& keep) {
  const Backend* backend = env_.backend;
  ir::Graph& graph = *model_.graph;
  WH_RETURN_IF_ERROR(ir::verify(graph));
  // Types of intermediate values help kernels choose at compile time; the IR's shape rules
  // fill them for every op the runtime runs, at any opset, and kernels check dtypes again
  // when they run.
  (void)ir::inferShapes(model_);
  std::vector<std::string> kept = keep;
  if (env_.observer != nullptr) {  // observed values inside a subgraph stay observable too
    for (const std::string& name : env_.observer->names) {
      if (graph.findValue(name) != nullptr) kept.push_back(name);
    }
  }
  // Before the lowering, so that its folds and fusions see the computed constants as weights.
  if (backend->device() == DeviceKind::kCpu) foldConstantNodes(model_, *backend, env_.threads, kept);
  WH_RETURN_IF_ERROR(backend->lower(graph, kept, lowering_));

  // Constants go to the backend's memory once, here (the CPU: the same tensor, shared).
  for (const ir::Value* v : graph.initializers()) {
    int s = slotFor(v);
    WH_ASSIGN_OR_RETURN(slots_[static_cast<size_t>(s)], backend->copyIn(*v->constant(), *env_.context));
    isConstantSlot_[static_cast<size_t>(s)] = true;
  }
  for (const ir::Value* v : graph.inputs()) {
    if (!v->isInitializer()) {
      if (env_.observer != nullptr && env_.observer->names.contains(v->name())) {
        observedFeeds_.emplace_back(feedSlots_.size(), v->name());
      }
      feedInputs_.push_back(v);
      feedSlots_.push_back(slotFor(v));
    }
  }
  std::unordered_map<int, size_t> lastUse;
  const KernelRegistry& registry = backend->kernels();
  const std::string runtimeName = backend->name() == "cpu" ? "CPU" : std::string(backend->name());
  for (const ir::Node* node : graph.nodes()) {
    int64_t opset = model_.opsetVersion(node->domain());
    std::unique_ptr<Kernel> kernel;
    std::vector<SubgraphPlan> subplans;
    int threads = env_.threads;  // a control-flow node's subgraphs decide per node themselves
    if (node->hasSubgraphs()) {
      if (!isControlFlow(*node)) {
        return unimplemented(node->describe() + ": op " + node->opType() + " has subgraphs and is not control flow the " +
                             runtimeName + " runtime runs (If, Loop, Scan, SequenceMap)");
      }
      if (backend->device() != DeviceKind::kCpu) {
        // The control-flow kernels read their conditions and trip counts on the host.
        return unimplemented(node->describe() + ": op " + node->opType() + " (control flow) is not supported by the " +
                             runtimeName + " runtime; it runs on the CPU runtime only");
      }
      WH_ASSIGN_OR_RETURN(kernel, createControlFlowKernel(*node, model_, env_, &subplans));
    } else {
      const KernelFactory* factory = registry.find(node->domain(), node->opType(), opset);
      if (factory == nullptr) {
        std::string domain = node->domain().empty() ? "ai.onnx" : node->domain();
        return unimplemented(node->describe() + ": op " + node->opType() + " (domain " + domain + ", opset " +
                             std::to_string(opset) + ") is not supported by the " + runtimeName + " runtime");
      }
      if (!registry.takesValues(node->domain(), node->opType())) {
        for (const ir::Value* in : node->inputs()) {
          if (in != nullptr && !in->type().opaqueTypeProto.empty()) {
            return unimplemented(node->describe() + ": input '" + in->name() + "' is a sequence, map or optional; op " +
                                 node->opType() + " takes tensors only");
          }
        }
      }
      // A kernel is created on the threads it will run on: oneDNN fixes a primitive's threads then.
      threads = backend->threadsFor(*node, env_.threads);
      KernelCreateInfo info{*node, opset, {}, threads, *env_.context, &lowering_};
      for (const ir::Value* in : node->inputs()) info.inputTypes.push_back(in ? in->dtype() : ir::DataType::kUndefined);
      if (threads != env_.threads) backend->setThreads(*env_.context, threads);
      auto created = (*factory)(info);
      if (threads != env_.threads) backend->setThreads(*env_.context, env_.threads);
      WH_ASSIGN_OR_RETURN(kernel, std::move(created));
    }
    Step step{node, std::move(kernel), {}, {}, {}, {}, std::move(subplans), {}, {}, threads};
    for (const ir::Value* in : node->inputs()) {
      int s = in ? slotFor(in) : -1;
      step.inputSlots.push_back(s);
      if (s >= 0) lastUse[s] = steps_.size();
    }
    for (const ir::Value* in : node->implicitInputs()) {
      int s = slotFor(in);
      step.implicitSlots.push_back(s);
      lastUse[s] = steps_.size();
    }
    for (const ir::Value* out : node->outputs()) step.outputSlots.push_back(out ? slotFor(out) : -1);
    if (env_.observer != nullptr) {
      for (size_t o = 0; o < node->numOutputs(); ++o) {
        const ir::Value* out = node->output(o);
        if (out != nullptr && env_.observer->names.contains(out->name())) step.observed.emplace_back(o, out->name());
      }
    }
    steps_.push_back(std::move(step));
  }
  outputValues_.assign(graph.outputs().begin(), graph.outputs().end());
  for (const ir::Value* v : outputValues_) {
    int s = slotFor(v);
    outputSlots_.push_back(s);
    lastUse.erase(s);  // outputs live to the end
  }
  for (auto [slot, stepIndex] : lastUse) {
    if (!isConstantSlot_[static_cast<size_t>(slot)]) steps_[stepIndex].releaseAfter.push_back(slot);
  }
  // An input dies at the step that releases it, when that step reads it once (not as two
  // inputs, nor as an input and a capture) and it is no feed (the caller's bytes; a subgraph's
  // formal inputs and captures are its feeds). Constants and outputs are never released.
  // KernelContext::allocateOutputOver may then write an output over its bytes.
  std::vector<char> isFeed(slots_.size(), 0);
  for (int s : feedSlots_) isFeed[static_cast<size_t>(s)] = 1;
  for (Step& step : steps_) {
    step.dyingInputs.assign(step.inputSlots.size(), 0);
    for (size_t i = 0; i < step.inputSlots.size(); ++i) {
      const int s = step.inputSlots[i];
      if (s < 0 || isFeed[static_cast<size_t>(s)] != 0) continue;
      if (std::find(step.releaseAfter.begin(), step.releaseAfter.end(), s) == step.releaseAfter.end()) continue;
      const auto reads = std::count(step.inputSlots.begin(), step.inputSlots.end(), s) +
                         std::count(step.implicitSlots.begin(), step.implicitSlots.end(), s);
      step.dyingInputs[i] = reads == 1 ? 1 : 0;
    }
  }
  nodeMs_.assign(steps_.size(), 0.0);
  nodeCpuMs_.assign(steps_.size(), 0.0);
  nodeSwitches_.assign(steps_.size(), 0);
  return Status::ok();
}

void Plan::clearSlots() {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (!isConstantSlot_[i]) slots_[i] = Value();
  }
}

Expected<std::vector<Value>> Plan::run(std::vector<Value> feeds) {
  WH_CHECK(feeds.size() == feedSlots_.size(), "plan run with the wrong number of feeds");
  for (size_t i = 0; i < feeds.size(); ++i) slots_[static_cast<size_t>(feedSlots_[i])] = std::move(feeds[i]);
  for (const auto& [i, name] : observedFeeds_) env_.observer->observe(name, slots_[static_cast<size_t>(feedSlots_[i])]);
  std::vector<const Value*> ins;
  std::vector<Value> outs;
  // The thread count is set only where it changes from one step to the next (a node below
  // the backend's work threshold runs on one thread), and is the session's again at the end.
  int threads = env_.threads;
  auto restoreThreads = [&] {
    if (threads != env_.threads) env_.backend->setThreads(*env_.context, env_.threads);
  };
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& step = steps_[i];
    ins.clear();
    for (int slot : step.inputSlots) ins.push_back(slot >= 0 ? &slots_[static_cast<size_t>(slot)] : nullptr);
    // A control-flow node's captures follow its explicit inputs (implicitInput()).
    for (int slot : step.implicitSlots) ins.push_back(&slots_[static_cast<size_t>(slot)]);
    outs.assign(step.outputSlots.size(), Value());
    if (step.threads != threads) {
      env_.backend->setThreads(*env_.context, step.threads);
      threads = step.threads;
    }
    KernelContext ctx(*step.node, ins, outs, *env_.pool, *env_.context, step.threads);
    ctx.setDyingInputs(&step.dyingInputs);
    auto start = std::chrono::steady_clock::now();
    const double cpuStart = env_.profile ? processCpuMs() : 0.0;
    const int64_t switchesStart = env_.profile ? processContextSwitches() : 0;
    Status status = step.kernel->run(ctx);
    if (!status.isOk()) {
      restoreThreads();
      clearSlots();
      return status;
    }
    if (env_.profile) {
      nodeMs_[i] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      nodeCpuMs_[i] += processCpuMs() - cpuStart;
      nodeSwitches_[i] += processContextSwitches() - switchesStart;
    }
    for (size_t o = 0; o < step.outputSlots.size(); ++o) {
      int slot = step.outputSlots[o];
      if (slot < 0) continue;
      if (!outs[o].defined()) {
        restoreThreads();
        clearSlots();
        return internalError(step.node->describe() + ": kernel did not produce output " + std::to_string(o));
      }
      slots_[static_cast<size_t>(slot)] = std::move(outs[o]);
    }
    for (const auto& [o, name] : step.observed) {
      env_.observer->observe(name, slots_[static_cast<size_t>(step.outputSlots[o])]);
    }
    for (int slot : step.releaseAfter) {
      // A sequence's or optional's element buffers are freed, not pooled, with the last reference.
      auto buffer = slots_[static_cast<size_t>(slot)].tensor().buffer();
      slots_[static_cast<size_t>(slot)] = Value();
      if (buffer) env_.pool->release(std::move(buffer));
    }
  }
  restoreThreads();
  ++runs_;
  std::vector<Value> results;
  results.reserve(outputSlots_.size());
  for (int slot : outputSlots_) results.push_back(slots_[static_cast<size_t>(slot)]);
  // What is left (outputs, feeds nobody read) is the caller's now: drop our references so
  // their buffers are not pooled while the caller holds them.
  clearSlots();
  return results;
}

std::vector<Plan::NodeTime> Plan::profile() const {
  std::vector<NodeTime> out;
  appendProfile("", out);
  return out;
}

void Plan::appendProfile(const std::string& scope, std::vector<NodeTime>& out) const {
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& step = steps_[i];
    size_t self = out.size();
    out.push_back({scope, step.node, nodeMs_[i], nodeMs_[i], runs_, nodeCpuMs_[i], nodeCpuMs_[i], nodeSwitches_[i],
                   nodeSwitches_[i], step.threads});
    for (const SubgraphPlan& sub : step.subplans) {
      const std::string name = step.node->name().empty() ? step.node->opType() : step.node->name();
      const std::string subScope = (scope.empty() ? "" : scope + "/") + name + "/" + sub.attribute;
      size_t first = out.size();
      sub.plan->appendProfile(subScope, out);
      // The subgraph's own nodes (not those of deeper subgraphs, which they include) are
      // the time the control-flow node spent inside it.
      for (size_t j = first; j < out.size(); ++j) {
        if (out[j].scope == subScope) {
          out[self].selfMs -= out[j].ms;
          out[self].selfCpuMs -= out[j].cpuMs;
          out[self].selfSwitches -= out[j].switches;
        }
      }
    }
    if (out[self].selfMs < 0) out[self].selfMs = 0;
    if (out[self].selfCpuMs < 0) out[self].selfCpuMs = 0;
    if (out[self].selfSwitches < 0) out[self].selfSwitches = 0;
  }
}

}  // namespace detail

struct Session::Impl {
  SessionOptions options;
  const Backend* backend = nullptr;
  std::unique_ptr<ExecutionContext> context;
  BufferPool pool;
  std::unique_ptr<detail::Plan> plan;
  detail::SubgraphObserver observer;

  Status compile(const ir::Model& model);
};

Status Session::Impl::compile(const ir::Model& source) {
  // Kernels may create their primitives now, which fix their thread count when created.
  WH_ASSIGN_OR_RETURN(context, backend->createContext(options.threads));
  backend->enter(*context);
  pool.setAllocator([backend = backend](size_t bytes) { return backend->allocate(bytes); });
  ir::Model model = source.clone();
  ir::Graph& graph = *model.graph;
  // Extra outputs become graph outputs of the private graph before lowering and kernel
  // creation, so that no fusion swallows them and every kernel writes them in the standard
  // layout (int8 convolutions keep their other activations channels-last).
  for (const std::string& name : options.extraOutputs) {
    ir::Value* v = graph.findValue(name);
    if (v == nullptr) return notFound("no value named '" + name + "' in the model");
    if (!v->isGraphOutput()) graph.addOutput(v);
  }
  detail::PlanEnv env{backend, context.get(), &pool, options.threads, options.profile};
  if (!options.observeInSubgraphs.empty()) {
    if (!options.subgraphObserver) return invalidInput("observeInSubgraphs without a subgraphObserver");
    observer.names.insert(options.observeInSubgraphs.begin(), options.observeInSubgraphs.end());
    observer.observe = options.subgraphObserver;
    env.observer = &observer;
  }
  WH_ASSIGN_OR_RETURN(plan, detail::Plan::compile(std::move(model), env, options.extraOutputs));
  return Status::ok();
}

Session::Session() : impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

Expected<std::unique_ptr<Session>> Session::create(const ir::Model& model, const SessionOptions& options) {
  WH_ASSIGN_OR_RETURN(const Backend* backend, backendFor(options.device));
  if (options.threads < 1) return invalidInput("threads must be at least 1");
  std::unique_ptr<Session> session(new Session());
  session->impl_->options = options;
  session->impl_->backend = backend;
  WH_RETURN_IF_ERROR(session->impl_->compile(model));
  return session;
}

namespace {

std::string shapeText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

Status checkFeed(const ir::Value& expected, const ir::Tensor& given) {
  const ir::ValueType& type = expected.type();
  if (!type.opaqueTypeProto.empty()) {
    return invalidInput("input '" + expected.name() + "': expected a sequence, map or optional, got a tensor");
  }
  if (type.dtype != ir::DataType::kUndefined && type.dtype != given.dtype()) {
    return invalidInput("input '" + expected.name() + "': expected " + std::string(ir::dataTypeName(type.dtype)) +
                        ", got " + std::string(ir::dataTypeName(given.dtype())));
  }
  if (!type.shape) return Status::ok();
  const auto& dims = *type.shape;
  bool ok = dims.size() == given.dims().size();
  for (size_t i = 0; ok && i < dims.size(); ++i) ok = !dims[i].isKnown() || dims[i].value == given.dims()[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < dims.size(); ++i) {
      want += (i ? "," : "") + (dims[i].isKnown() ? std::to_string(dims[i].value) : dims[i].param.empty() ? "?" : dims[i].param);
    }
    return invalidInput("input '" + expected.name() + "': expected shape " + want + "], got " + shapeText(given.dims()));
  }
  return Status::ok();
}

Status checkFeed(const ir::Value& expected, const Value& given) {
  const bool declaredTensor = expected.type().opaqueTypeProto.empty();
  if (given.isTensor()) return checkFeed(expected, given.tensor());
  if (declaredTensor && (expected.type().dtype != ir::DataType::kUndefined || expected.type().shape)) {
    return invalidInput("input '" + expected.name() + "': expected a tensor, got a " +
                        std::string(valueKindName(given.kind())));
  }
  return Status::ok();
}

}  // namespace

template <class Named>
Expected<std::vector<Value>> Session::runFeeds(const std::vector<Named>& inputs) {
  Impl& s = *impl_;
  s.backend->enter(*s.context);
  const auto& feedInputs = s.plan->feedInputs();
  for (const Named& input : inputs) {
    // (A named pair, not a structured binding: clang 14 cannot capture those in a lambda.)
    const std::string& name = input.first;
    bool known = std::any_of(feedInputs.begin(), feedInputs.end(), [&](const ir::Value* v) { return v->name() == name; });
    if (!known) return invalidInput("the model has no input named '" + name + "'");
  }
  std::vector<Value> feeds;
  feeds.reserve(feedInputs.size());
  for (const ir::Value* v : feedInputs) {
    const Named* given = nullptr;
    for (const Named& input : inputs) {
      if (input.first == v->name()) given = &input;
    }
    if (given == nullptr) return invalidInput("input '" + v->name() + "' was not given");
    WH_RETURN_IF_ERROR(checkFeed(*v, given->second));
    if constexpr (std::is_same_v<Named, NamedTensor>) {
      WH_ASSIGN_OR_RETURN(ir::Tensor device, s.backend->copyIn(given->second, *s.context));
      feeds.emplace_back(std::move(device));
    } else {
      WH_ASSIGN_OR_RETURN(Value device, mapTensors(given->second, [&](const ir::Tensor& t) {
                            return s.backend->copyIn(t, *s.context);
                          }));
      feeds.push_back(std::move(device));
    }
  }
  return s.plan->run(std::move(feeds));
}

Expected<std::vector<NamedTensor>> Session::run(const std::vector<NamedTensor>& inputs) {
  Impl& s = *impl_;
  WH_ASSIGN_OR_RETURN(std::vector<Value> outputs, runFeeds(inputs));
  std::vector<NamedTensor> results;
  const auto& outputValues = s.plan->outputs();
  for (size_t i = 0; i < outputValues.size(); ++i) {
    if (!outputs[i].isTensor()) {
      return unimplemented("output '" + outputValues[i]->name() + "' is a " + outputs[i].describe() +
                           ", not a tensor; this caller takes tensor outputs only");
    }
    WH_ASSIGN_OR_RETURN(ir::Tensor host, s.backend->copyOut(outputs[i].tensor(), *s.context));
    results.emplace_back(outputValues[i]->name(), std::move(host));
  }
  return results;
}

Expected<std::vector<NamedValue>> Session::runValues(const std::vector<NamedValue>& inputs) {
  Impl& s = *impl_;
  WH_ASSIGN_OR_RETURN(std::vector<Value> outputs, runFeeds(inputs));
  std::vector<NamedValue> results;
  const auto& outputValues = s.plan->outputs();
  for (size_t i = 0; i < outputValues.size(); ++i) {
    WH_ASSIGN_OR_RETURN(Value host, mapTensors(outputs[i], [&](const ir::Tensor& t) {
                          return s.backend->copyOut(t, *s.context);
                        }));
    results.emplace_back(outputValues[i]->name(), std::move(host));
  }
  return results;
}

const std::vector<const ir::Value*>& Session::inputs() const { return impl_->plan->feedInputs(); }
const std::vector<const ir::Value*>& Session::outputs() const { return impl_->plan->outputs(); }
const SessionOptions& Session::options() const { return impl_->options; }
size_t Session::peakActivationBytes() const { return impl_->pool.peakBytes(); }

std::vector<NodeProfile> Session::profile() const {
  std::vector<NodeProfile> out;
  for (const detail::Plan::NodeTime& t : impl_->plan->profile()) {
    out.push_back({t.node->name().empty() ? t.node->describe() : t.node->name(), t.node->opType(), t.ms, t.runs,
                   t.scope, t.selfMs, t.selfCpuMs, t.selfSwitches, t.threads});
  }
  return out;
}

}  // namespace whittle::runtime
