#include "whittle/runtime/session.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "whittle/ir/verifier.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/runtime/backend.h"
#include "whittle/runtime/buffer_pool.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime {

bool KernelContext::hasOutput(size_t i) const { return i < outputs_.size() && node_.output(i) != nullptr; }

ir::Tensor& KernelContext::allocateOutput(size_t i, ir::DataType dtype, std::vector<int64_t> dims) {
  WH_CHECK(i < outputs_.size(), describe() + ": output index out of range");
  int64_t numel = 1;
  for (int64_t d : dims) numel *= d;
  if (dtype == ir::DataType::kString) {
    outputs_[i] = ir::Tensor(dtype, std::move(dims));
  } else {
    outputs_[i] = ir::Tensor(dtype, std::move(dims), pool_.acquire(ir::storageBytes(dtype, numel)));
  }
  return outputs_[i];
}

void KernelContext::setOutput(size_t i, ir::Tensor tensor) {
  WH_CHECK(i < outputs_.size(), describe() + ": output index out of range");
  outputs_[i] = std::move(tensor);
}

struct Session::Impl {
  SessionOptions options;
  ir::Model model;
  const Backend* backend = nullptr;
  std::unique_ptr<ExecutionContext> context;
  LoweringResult lowering;
  BufferPool pool;

  struct Step {
    const ir::Node* node;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> inputSlots;   // -1 for absent inputs
    std::vector<int> outputSlots;  // -1 for absent outputs
    std::vector<int> releaseAfter; // slots whose last use is this step
  };
  std::vector<Step> steps;
  std::vector<ir::Tensor> slots;
  std::vector<bool> isConstantSlot;
  std::unordered_map<const ir::Value*, int> slotOf;
  std::vector<const ir::Value*> feedInputs;
  std::vector<const ir::Value*> outputValues;
  std::vector<int> outputSlots;
  std::vector<double> nodeMs;
  int64_t runs = 0;

  Status compile();
  int slotFor(const ir::Value* v) {
    auto [it, inserted] = slotOf.emplace(v, static_cast<int>(slots.size()));
    if (inserted) {
      slots.emplace_back();
      isConstantSlot.push_back(false);
    }
    return it->second;
  }
};

Status Session::Impl::compile() {
  // Kernels may create their primitives now, which fix their thread count when created.
  WH_ASSIGN_OR_RETURN(context, backend->createContext(options.threads));
  backend->enter(*context);
  ir::Graph& graph = *model.graph;
  WH_RETURN_IF_ERROR(ir::verify(graph));
  // Types of intermediate values help kernels choose at compile time; the IR's shape rules
  // fill them for every op the runtime runs, at any opset, and kernels check dtypes again
  // when they run.
  (void)ir::inferShapes(model);
  // Extra outputs become graph outputs of the private graph before lowering and kernel
  // creation, so that no fusion swallows them and every kernel writes them in the standard
  // layout (int8 convolutions keep their other activations channels-last).
  for (const std::string& name : options.extraOutputs) {
    ir::Value* v = graph.findValue(name);
    if (v == nullptr) return notFound("no value named '" + name + "' in the model");
    if (!v->isGraphOutput()) graph.addOutput(v);
  }
  WH_RETURN_IF_ERROR(backend->lower(graph, options.extraOutputs, lowering));

  for (const ir::Value* v : graph.initializers()) {
    int s = slotFor(v);
    slots[static_cast<size_t>(s)] = *v->constant();
    isConstantSlot[static_cast<size_t>(s)] = true;
  }
  for (const ir::Value* v : graph.inputs()) {
    if (!v->isInitializer()) {
      feedInputs.push_back(v);
      slotFor(v);
    }
  }
  std::unordered_map<int, size_t> lastUse;
  std::vector<std::string> unsupported;
  const KernelRegistry& registry = backend->kernels();
  for (const ir::Node* node : graph.nodes()) {
    if (node->hasSubgraphs()) {
      return unimplemented(node->describe() + ": control-flow ops with subgraphs are not supported by the " +
                           std::string(backend->name() == "cpu" ? "CPU" : backend->name()) + " runtime");
    }
    int64_t opset = model.opsetVersion(node->domain());
    const KernelFactory* factory = registry.find(node->domain(), node->opType(), opset);
    if (factory == nullptr) {
      std::string domain = node->domain().empty() ? "ai.onnx" : node->domain();
      return unimplemented(node->describe() + ": op " + node->opType() + " (domain " + domain + ", opset " +
                           std::to_string(opset) + ") is not supported by the " +
                           std::string(backend->name() == "cpu" ? "CPU" : backend->name()) + " runtime");
    }
    KernelCreateInfo info{*node, opset, {}, options.threads, *context, &lowering};
    for (const ir::Value* in : node->inputs()) info.inputTypes.push_back(in ? in->dtype() : ir::DataType::kUndefined);
    auto kernel = (*factory)(info);
    if (!kernel.isOk()) return kernel.status();
    Step step{node, std::move(kernel).value(), {}, {}, {}};
    for (const ir::Value* in : node->inputs()) {
      int s = in ? slotFor(in) : -1;
      step.inputSlots.push_back(s);
      if (s >= 0) lastUse[s] = steps.size();
    }
    for (const ir::Value* out : node->outputs()) step.outputSlots.push_back(out ? slotFor(out) : -1);
    steps.push_back(std::move(step));
  }
  outputValues.assign(graph.outputs().begin(), graph.outputs().end());
  for (const ir::Value* v : outputValues) {
    int s = slotFor(v);
    outputSlots.push_back(s);
    lastUse.erase(s);  // outputs live to the end
  }
  for (auto [slot, stepIndex] : lastUse) {
    if (!isConstantSlot[static_cast<size_t>(slot)]) steps[stepIndex].releaseAfter.push_back(slot);
  }
  nodeMs.assign(steps.size(), 0.0);
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
  session->impl_->model = model.clone();
  WH_RETURN_IF_ERROR(session->impl_->compile());
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

}  // namespace

Expected<std::vector<NamedTensor>> Session::run(const std::vector<NamedTensor>& inputs) {
  Impl& s = *impl_;
  s.backend->enter(*s.context);
  for (const ir::Value* v : s.feedInputs) {
    const ir::Tensor* given = nullptr;
    for (const auto& [name, tensor] : inputs) {
      if (name == v->name()) given = &tensor;
    }
    if (given == nullptr) return invalidInput("input '" + v->name() + "' was not given");
    WH_RETURN_IF_ERROR(checkFeed(*v, *given));
    WH_ASSIGN_OR_RETURN(s.slots[static_cast<size_t>(s.slotOf.at(v))], s.backend->copyIn(*given, *s.context));
  }
  for (const auto& [name, tensor] : inputs) {
    const ir::Value* v = s.model.graph->findValue(name);
    if (v == nullptr || std::find(s.feedInputs.begin(), s.feedInputs.end(), v) == s.feedInputs.end()) {
      return invalidInput("the model has no input named '" + name + "'");
    }
  }
  std::vector<const ir::Tensor*> ins;
  std::vector<ir::Tensor> outs;
  for (size_t i = 0; i < s.steps.size(); ++i) {
    Impl::Step& step = s.steps[i];
    ins.clear();
    for (int slot : step.inputSlots) ins.push_back(slot >= 0 ? &s.slots[static_cast<size_t>(slot)] : nullptr);
    outs.assign(step.outputSlots.size(), ir::Tensor());
    KernelContext ctx(*step.node, ins, outs, s.pool, *s.context);
    auto start = std::chrono::steady_clock::now();
    Status status = step.kernel->run(ctx);
    if (!status.isOk()) return status;
    if (s.options.profile) {
      s.nodeMs[i] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    }
    for (size_t o = 0; o < step.outputSlots.size(); ++o) {
      int slot = step.outputSlots[o];
      if (slot < 0) continue;
      if (outs[o].dtype() == ir::DataType::kUndefined) {
        return internalError(step.node->describe() + ": kernel did not produce output " + std::to_string(o));
      }
      s.slots[static_cast<size_t>(slot)] = std::move(outs[o]);
    }
    for (int slot : step.releaseAfter) {
      auto buffer = s.slots[static_cast<size_t>(slot)].buffer();
      s.slots[static_cast<size_t>(slot)] = ir::Tensor();
      s.pool.release(std::move(buffer));
    }
  }
  ++s.runs;
  std::vector<NamedTensor> results;
  for (size_t i = 0; i < s.outputValues.size(); ++i) {
    auto slot = static_cast<size_t>(s.outputSlots[i]);
    WH_ASSIGN_OR_RETURN(ir::Tensor host, s.backend->copyOut(s.slots[slot], *s.context));
    results.emplace_back(s.outputValues[i]->name(), std::move(host));
    if (!s.isConstantSlot[slot]) s.slots[slot] = ir::Tensor();
  }
  // Feeds are the caller's: drop our references so their buffers are not pooled.
  for (const ir::Value* v : s.feedInputs) s.slots[static_cast<size_t>(s.slotOf.at(v))] = ir::Tensor();
  return results;
}

const std::vector<const ir::Value*>& Session::inputs() const { return impl_->feedInputs; }
const std::vector<const ir::Value*>& Session::outputs() const { return impl_->outputValues; }
const SessionOptions& Session::options() const { return impl_->options; }
size_t Session::peakActivationBytes() const { return impl_->pool.peakBytes(); }

std::vector<NodeProfile> Session::profile() const {
  std::vector<NodeProfile> out;
  for (size_t i = 0; i < impl_->steps.size(); ++i) {
    const ir::Node* n = impl_->steps[i].node;
    out.push_back({n->name().empty() ? n->describe() : n->name(), n->opType(), impl_->nodeMs[i], impl_->runs});
  }
  return out;
}

}  // namespace whittle::runtime
