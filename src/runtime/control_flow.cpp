// Control flow in the runtime: If, Loop, Scan (opset 8 and 9+) and SequenceMap. Each subgraph
// is decoded from its attribute (onnx_io::loadSubgraph) and compiled into a Plan of its own once, when
// the session is created; its graph inputs are the subgraph's formal inputs followed by the
// values it captures from enclosing scopes, which the node carries as implicit inputs. A run
// feeds the plan the formal inputs of the moment (a branch: none; a Loop body: the iteration
// number, the condition and the loop-carried values; a Scan body: the states and one slice of
// each scan input; a SequenceMap body: one element of each sequence input, or the whole of each
// tensor input) and the captured values, shared, not copied. Branch outputs and loop-carried
// values may be sequences or optionals (runtime Values); scan outputs are tensors.
//
// Constants cross into subgraphs as constants: a captured value that the enclosing plan holds
// as an initializer or computes with a Constant node, and a Loop-carried value that starts as
// such a constant and that the body hands on unchanged (Paddle2ONNX carries the weights of a
// decoder loop that way), become initializers of the subgraph's plan, sharing the tensor and
// no longer fed. The subgraph's lowering then folds what it computes from them (silero-vad
// slices its LSTM gates out of captured weights) and its kernels pack them once.
#include <cstring>
#include <optional>

#include "plan.h"
#include "whittle/ir/match.h"
#include "whittle/onnx_io/subgraph.h"

namespace whittle::runtime::detail {

bool isControlFlow(const ir::Node& node) {
  if (!canonicalDomain(node.domain()).empty()) return false;
  const std::string& op = node.opType();
  return op == "If" || op == "Loop" || op == "Scan" || op == "SequenceMap";
}

namespace {

std::string dimsText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string tensorText(const ir::Tensor& t) { return std::string(ir::dataTypeName(t.dtype())) + " " + dimsText(t.dims()); }

/// The node's implicit input `k` (a capture), which the plan passes after its explicit inputs.
const Value& implicitInput(const KernelContext& ctx, size_t k) { return ctx.value(ctx.node().numInputs() + k); }

/// One compiled subgraph and where its captured inputs come from.
struct Subgraph {
  std::string attribute;
  std::unique_ptr<Plan> plan;
  size_t numFormalInputs = 0;
  std::vector<size_t> captureSlots;  // per capture: index into node.implicitInputs()
  std::vector<bool> constantFormal;  // per formal input: made a constant of the plan, not fed
  std::vector<ir::ValueType> outputTypes;

  size_t numOutputs() const { return plan->outputs().size(); }

  /// Runs the plan with `formal` inputs (all of them; those made constants are dropped) and
  /// the node's captured values.
  Expected<std::vector<Value>> run(const KernelContext& ctx, std::vector<Value> formal) const {
    if (!constantFormal.empty()) {
      size_t kept = 0;
      for (size_t i = 0; i < formal.size(); ++i) {
        if (i < constantFormal.size() && constantFormal[i]) continue;
        if (kept != i) formal[kept] = std::move(formal[i]);  // (never a self-move: it would empty the dims)
        ++kept;
      }
      formal.resize(kept);
    }
    for (size_t index : captureSlots) formal.push_back(implicitInput(ctx, index));
    auto outputs = plan->run(std::move(formal));
    if (!outputs.isOk()) return outputs.status().withContext(ctx.describe() + ": " + attribute);
    return outputs;
  }
};

/// The tensor a captured value always holds: an initializer of the enclosing plan, or the
/// output of a Constant node there (the lowering leaves Constant nodes that subgraphs read as
/// nodes, since the subgraphs read them by name).
std::optional<ir::Tensor> enclosingConstant(const ir::Value& v) {
  if (const ir::Tensor* t = v.constant()) return *t;
  const ir::Node* producer = v.producer();
  if (producer != nullptr && producer->opType() == "Constant" && ir::isDefaultDomain(*producer)) {
    return ir::constantNodeValue(*producer);
  }
  return std::nullopt;
}

/// A loop-carried value that a body may hand on unchanged: formal input `formal` of the body,
/// its output `output`, and the node input that starts it.
struct PassThrough {
  size_t formal;
  size_t output;
  const ir::Value* initial;
};

/// Whether `output` is `input`, directly or through Identity nodes.
bool handsOn(const ir::Value* output, const ir::Value* input) {
  while (output != input && output->producer() != nullptr && output->producer()->opType() == "Identity" &&
         ir::isDefaultDomain(*output->producer()) && output->producer()->numInputs() == 1) {
    output = output->producer()->input(0);
  }
  return output == input;
}

Expected<Subgraph> compileSubgraph(const ir::Node& node, const std::string& attribute, const ir::Model& outer,
                                   const PlanEnv& env, const std::vector<PassThrough>& passThrough = {}) {
  const ir::Attribute* a = node.findAttribute(attribute);
  if (a == nullptr) return invalidInput(node.describe() + ": attribute '" + attribute + "' is missing");
  WH_ASSIGN_OR_RETURN(onnx_io::Subgraph decoded, onnx_io::loadSubgraph(*a, node.describe()));
  Subgraph sub;
  sub.attribute = attribute;
  sub.numFormalInputs = decoded.numFormalInputs;
  const auto& implicit = node.implicitInputs();
  std::vector<std::pair<ir::Value*, ir::Tensor>> constants;
  for (size_t j = 0; j < decoded.captures.size(); ++j) {
    const std::string& name = decoded.captures[j];
    size_t k = 0;
    while (k < implicit.size() && implicit[k]->name() != name) ++k;
    if (k == implicit.size()) {
      return invalidInput(node.describe() + ": " + attribute + " reads '" + name +
                          "' from the enclosing graph, which holds no value of that name for the node");
    }
    ir::Value* input = decoded.graph->inputs()[decoded.numFormalInputs + j];
    if (input->isInitializer()) {
      return unimplemented(node.describe() + ": " + attribute + " input '" + input->name() + "' is also an initializer");
    }
    if (std::optional<ir::Tensor> constant = enclosingConstant(*implicit[k])) {
      constants.emplace_back(input, std::move(*constant));
      continue;
    }
    sub.captureSlots.push_back(k);
    if (implicit[k]->type().opaqueTypeProto.empty()) input->mutableType() = implicit[k]->type();
  }
  for (size_t i = 0; i < decoded.numFormalInputs; ++i) {
    const ir::Value* v = decoded.graph->inputs()[i];
    if (v->isInitializer()) {
      return unimplemented(node.describe() + ": " + attribute + " input '" + v->name() + "' is also an initializer");
    }
  }
  // So is a loop-carried value that starts as a constant and that the body hands on
  // unchanged (Paddle2ONNX carries every weight a Loop body reads that way).
  sub.constantFormal.assign(decoded.numFormalInputs, false);
  const auto& bodyOutputs = decoded.graph->outputs();
  for (const PassThrough& p : passThrough) {
    if (p.formal >= decoded.numFormalInputs || p.output >= bodyOutputs.size() || p.initial == nullptr) continue;
    ir::Value* input = decoded.graph->inputs()[p.formal];
    if (!handsOn(bodyOutputs[p.output], input)) continue;
    if (std::optional<ir::Tensor> constant = enclosingConstant(*p.initial)) {
      constants.emplace_back(input, std::move(*constant));
      sub.constantFormal[p.formal] = true;
    }
  }
  // A capture of an enclosing constant (a weight the outer graph holds as an initializer,
  // Constant nodes included, since the outer plan is lowered before its kernels are made)
  // is a constant of the subgraph too, sharing the tensor: its lowering folds and fuses it
  // and its kernels pack it once, instead of taking it as a run-time input on every run.
  for (auto& [input, tensor] : constants) {
    decoded.graph->removeInput(input);
    input->setConstant(std::move(tensor));
  }
  ir::Model model;
  model.graph = std::move(decoded.graph);
  model.irVersion = outer.irVersion;
  model.opsetImports = outer.opsetImports;
  auto plan = Plan::compile(std::move(model), env, {});
  if (!plan.isOk()) return plan.status().withContext(node.describe() + ": " + attribute);
  sub.plan = std::move(plan).value();
  for (const ir::Value* v : sub.plan->outputs()) sub.outputTypes.push_back(v->type());
  return sub;
}

Status checkCounts(const ir::Node& node, const Subgraph& sub, size_t formalInputs, size_t outputs,
                   const std::string& what) {
  if (sub.numFormalInputs != formalInputs) {
    return invalidInput(node.describe() + ": " + sub.attribute + " has " + std::to_string(sub.numFormalInputs) +
                        " inputs, expected " + std::to_string(formalInputs) + " (" + what + ")");
  }
  if (sub.numOutputs() != outputs) {
    return invalidInput(node.describe() + ": " + sub.attribute + " has " + std::to_string(sub.numOutputs()) +
                        " outputs, expected " + std::to_string(outputs) + " (" + what + ")");
  }
  return Status::ok();
}

/// Element size for the byte copies of slicing and stacking; strings and sub-byte types are refused.
Expected<size_t> copyableElementSize(const KernelContext& ctx, ir::DataType dtype, const std::string& what) {
  size_t size = ir::elementSize(dtype);
  if (size == 0) {
    return unimplemented(ctx.describe() + ": " + what + " of type " + std::string(ir::dataTypeName(dtype)) +
                         " cannot be sliced or stacked by the runtime");
  }
  return size;
}

/// Element `index` of `t` along `axis`, with that axis removed. Along axis 0 it is a view.
Expected<ir::Tensor> sliceAxis(const KernelContext& ctx, const ir::Tensor& t, int64_t axis, int64_t index,
                               const std::string& what) {
  WH_ASSIGN_OR_RETURN(size_t esize, copyableElementSize(ctx, t.dtype(), what));
  std::vector<int64_t> dims = t.dims();
  const int64_t length = dims[static_cast<size_t>(axis)];
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < t.rank(); ++i) (i < axis ? outer : inner) *= i == axis ? 1 : dims[static_cast<size_t>(i)];
  dims.erase(dims.begin() + axis);
  const size_t innerBytes = static_cast<size_t>(inner) * esize;
  if (outer <= 1) {
    auto view = ir::Buffer::view(t.rawData() + static_cast<size_t>(index) * innerBytes, innerBytes, t.buffer());
    return ir::Tensor(t.dtype(), std::move(dims), std::move(view));
  }
  auto buffer = ir::Buffer::allocateUninitialized(static_cast<size_t>(outer) * innerBytes);
  std::byte* dst = buffer->mutableData();
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(dst + static_cast<size_t>(o) * innerBytes,
                t.rawData() + static_cast<size_t>(o * length + index) * innerBytes, innerBytes);
  }
  return ir::Tensor(t.dtype(), std::move(dims), std::move(buffer));
}

/// Stacks `items` (equal dtype and dims) along a new `axis` of length `length` (>= the number
/// of items; the rest is zeros), item t at position t, or length-1-t when `reverse`.
Expected<ir::Tensor> stack(KernelContext& ctx, size_t output, const std::vector<ir::Tensor>& items, int64_t axis,
                           bool reverse, int64_t length, const std::string& what) {
  const ir::Tensor& first = items.front();
  WH_ASSIGN_OR_RETURN(size_t esize, copyableElementSize(ctx, first.dtype(), what));
  for (size_t t = 1; t < items.size(); ++t) {
    if (items[t].dtype() != first.dtype() || items[t].dims() != first.dims()) {
      return ctx.error(what + " is " + tensorText(first) + " in iteration 0 but " + tensorText(items[t]) +
                       " in iteration " + std::to_string(t) + " (scan outputs must keep their type and shape)");
    }
  }
  std::vector<int64_t> dims = first.dims();
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= dims[static_cast<size_t>(i)];
  const size_t innerBytes = outer == 0 ? 0 : static_cast<size_t>(first.numel() / outer) * esize;
  dims.insert(dims.begin() + axis, length);
  ir::Tensor& out = ctx.allocateOutput(output, first.dtype(), dims);
  std::byte* dst = out.mutableRawData();
  if (static_cast<int64_t>(items.size()) < length) std::memset(dst, 0, out.byteSize());
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t t = 0; t < n; ++t) {
    int64_t position = reverse ? n - 1 - t : t;
    const std::byte* src = items[static_cast<size_t>(t)].rawData();
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + static_cast<size_t>(o * length + position) * innerBytes, src + static_cast<size_t>(o) * innerBytes,
                  innerBytes);
    }
  }
  return out;
}

/// A scan output of zero iterations: dims [0] followed by the body output's static dims
/// (inserted at `axis`), when the body declares them.
Status emptyScanOutput(KernelContext& ctx, size_t output, const ir::ValueType& type, int64_t axis,
                       const std::string& what) {
  if (type.dtype == ir::DataType::kUndefined) {
    return ctx.error(what + " ran for zero iterations and the body does not declare its type");
  }
  std::vector<int64_t> dims;
  if (auto known = type.staticDims()) dims = *known;
  axis = std::min<int64_t>(axis, static_cast<int64_t>(dims.size()));
  dims.insert(dims.begin() + axis, 0);
  ctx.allocateOutput(output, type.dtype, std::move(dims));
  return Status::ok();
}

Expected<bool> singleBool(const KernelContext& ctx, const ir::Tensor& t, const std::string& what) {
  if (t.dtype() != ir::DataType::kBool || t.numel() != 1) {
    return ctx.error(what + " must be a single bool element, got " + tensorText(t));
  }
  return t.data<uint8_t>()[0] != 0;
}

/// Scan output `k` of one iteration, which must be a tensor to be stacked.
Expected<ir::Tensor> scanTensor(const KernelContext& ctx, Value v, size_t k) {
  if (!v.isTensor()) {
    return ctx.error("scan output " + std::to_string(k) + " is a " + v.describe() + "; scan outputs must be tensors");
  }
  return std::move(v.mutableTensor());
}

ir::Tensor scalar(ir::DataType dtype, int64_t value) {
  ir::Tensor t(dtype, {});
  if (dtype == ir::DataType::kBool) {
    t.mutableData<uint8_t>()[0] = value != 0 ? 1 : 0;
  } else {
    t.mutableData<int64_t>()[0] = value;
  }
  return t;
}

// ---- If ----

class IfKernel final : public Kernel {
 public:
  IfKernel(Subgraph thenBranch, Subgraph elseBranch)
      : thenBranch_(std::move(thenBranch)), elseBranch_(std::move(elseBranch)) {}

  Status run(KernelContext& ctx) override {
    WH_ASSIGN_OR_RETURN(bool condition, singleBool(ctx, ctx.input(0), "the condition"));
    const Subgraph& branch = condition ? thenBranch_ : elseBranch_;
    WH_ASSIGN_OR_RETURN(std::vector<Value> outputs, branch.run(ctx, {}));
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (ctx.hasOutput(i)) ctx.setValue(i, std::move(outputs[i]));
    }
    return Status::ok();
  }

 private:
  Subgraph thenBranch_;
  Subgraph elseBranch_;
};

// ---- Loop ----

class LoopKernel final : public Kernel {
 public:
  LoopKernel(Subgraph body, size_t carried) : body_(std::move(body)), carried_(carried) {}

  Status run(KernelContext& ctx) override {
    std::optional<int64_t> tripCount;
    if (ctx.hasInput(0)) {
      const ir::Tensor& m = ctx.input(0);
      if (m.dtype() != ir::DataType::kInt64 || m.numel() != 1) {
        return ctx.error("the trip count must be a single int64 element, got " + tensorText(m));
      }
      tripCount = m.data<int64_t>()[0];
    }
    bool condition = true;
    const bool hasCondition = ctx.hasInput(1);
    if (hasCondition) {
      WH_ASSIGN_OR_RETURN(condition, singleBool(ctx, ctx.input(1), "the condition"));
    }
    if (!tripCount && !hasCondition) {
      return ctx.error("neither a trip count nor a condition is given: the loop would never end");
    }
    std::vector<Value> carried;
    for (size_t i = 0; i < carried_; ++i) {
      if (!ctx.hasInput(2 + i)) return ctx.error("loop-carried input " + std::to_string(i) + " is missing");
      carried.push_back(ctx.value(2 + i));
    }
    const size_t scanCount = ctx.numOutputs() - carried_;
    std::vector<std::vector<ir::Tensor>> scans(scanCount);
    int64_t i = 0;
    for (; (!tripCount || i < *tripCount) && condition; ++i) {
      std::vector<Value> feeds;
      feeds.reserve(2 + carried_ + body_.captureSlots.size());
      feeds.emplace_back(scalar(ir::DataType::kInt64, i));
      feeds.emplace_back(scalar(ir::DataType::kBool, condition ? 1 : 0));
      for (Value& v : carried) feeds.push_back(std::move(v));
      WH_ASSIGN_OR_RETURN(std::vector<Value> outputs, body_.run(ctx, std::move(feeds)));
      if (hasCondition) {  // with a trip count alone, the body's condition is ignored
        WH_ASSIGN_OR_RETURN(condition, singleBool(ctx, outputs[0].tensor(), "the body's condition output"));
      }
      for (size_t k = 0; k < carried_; ++k) carried[k] = std::move(outputs[1 + k]);
      for (size_t k = 0; k < scanCount; ++k) {
        WH_ASSIGN_OR_RETURN(ir::Tensor t, scanTensor(ctx, std::move(outputs[1 + carried_ + k]), k));
        scans[k].push_back(std::move(t));
      }
    }
    for (size_t k = 0; k < carried_; ++k) {
      if (ctx.hasOutput(k)) ctx.setValue(k, std::move(carried[k]));
    }
    for (size_t k = 0; k < scanCount; ++k) {
      const size_t output = carried_ + k;
      if (!ctx.hasOutput(output)) continue;
      std::string what = "scan output " + std::to_string(k);
      if (scans[k].empty()) {
        WH_RETURN_IF_ERROR(emptyScanOutput(ctx, output, body_.outputTypes[1 + carried_ + k], 0, what));
      } else {
        WH_RETURN_IF_ERROR(stack(ctx, output, scans[k], 0, false, i, what).status());
      }
    }
    return Status::ok();
  }

 private:
  Subgraph body_;
  size_t carried_;
};

// ---- Scan ----

/// Normalizes `axis` into [0, rank); nullopt when out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

class ScanKernel final : public Kernel {
 public:
  ScanKernel(Subgraph body, int64_t opset, size_t states, size_t scanInputs, std::vector<int64_t> inputAxes,
             std::vector<int64_t> inputDirections, std::vector<int64_t> outputAxes, std::vector<int64_t> outputDirections)
      : body_(std::move(body)),
        opset_(opset),
        states_(states),
        scanInputs_(scanInputs),
        inputAxes_(std::move(inputAxes)),
        inputDirections_(std::move(inputDirections)),
        outputAxes_(std::move(outputAxes)),
        outputDirections_(std::move(outputDirections)) {}

  Status run(KernelContext& ctx) override { return opset_ >= 9 ? runScan9(ctx) : runScan8(ctx); }

 private:
  struct Result {
    std::vector<ir::Tensor> states;
    std::vector<std::vector<ir::Tensor>> scans;  // per scan output, per iteration
  };

  /// Runs the body `length` times over the scan inputs (each along its axis).
  Expected<Result> iterate(const KernelContext& ctx, std::vector<ir::Tensor> states, const std::vector<ir::Tensor>& inputs,
                           const std::vector<int64_t>& axes, int64_t length) const {
    Result result;
    result.scans.resize(body_.numOutputs() - states_);
    for (int64_t t = 0; t < length; ++t) {
      std::vector<Value> feeds;
      feeds.reserve(states_ + scanInputs_ + body_.captureSlots.size());
      for (ir::Tensor& s : states) feeds.emplace_back(std::move(s));
      for (size_t j = 0; j < scanInputs_; ++j) {
        int64_t index = inputDirections_[j] != 0 ? length - 1 - t : t;
        WH_ASSIGN_OR_RETURN(ir::Tensor slice, sliceAxis(ctx, inputs[j], axes[j], index, "scan input " + std::to_string(j)));
        feeds.push_back(std::move(slice));
      }
      WH_ASSIGN_OR_RETURN(std::vector<Value> outputs, body_.run(ctx, std::move(feeds)));
      states.clear();
      for (size_t k = 0; k < states_; ++k) {
        if (!outputs[k].isTensor()) return ctx.error("state " + std::to_string(k) + " must be a tensor, got a " + outputs[k].describe());
        states.push_back(std::move(outputs[k].mutableTensor()));
      }
      for (size_t k = 0; k < result.scans.size(); ++k) {
        WH_ASSIGN_OR_RETURN(ir::Tensor t, scanTensor(ctx, std::move(outputs[states_ + k]), k));
        result.scans[k].push_back(std::move(t));
      }
    }
    result.states = std::move(states);
    return result;
  }

  Status runScan9(KernelContext& ctx) const {
    std::vector<ir::Tensor> states;
    for (size_t i = 0; i < states_; ++i) states.push_back(ctx.input(i));
    std::vector<ir::Tensor> inputs;
    std::vector<int64_t> axes;
    int64_t length = -1;
    for (size_t j = 0; j < scanInputs_; ++j) {
      const ir::Tensor& in = ctx.input(states_ + j);
      auto axis = normalizeAxis(inputAxes_[j], in.rank());
      if (!axis) {
        return ctx.error("scan_input_axes[" + std::to_string(j) + "] = " + std::to_string(inputAxes_[j]) +
                         " is out of range for scan input " + std::to_string(j) + " " + tensorText(in));
      }
      int64_t n = in.dims()[static_cast<size_t>(*axis)];
      if (length >= 0 && n != length) {
        return ctx.error("scan input " + std::to_string(j) + " has " + std::to_string(n) + " elements along its axis, " +
                         "scan input 0 has " + std::to_string(length));
      }
      length = n;
      inputs.push_back(in);
      axes.push_back(*axis);
    }
    WH_ASSIGN_OR_RETURN(Result result, iterate(ctx, std::move(states), inputs, axes, length));
    for (size_t i = 0; i < states_; ++i) {
      if (ctx.hasOutput(i)) ctx.setOutput(i, std::move(result.states[i]));
    }
    for (size_t k = 0; k < result.scans.size(); ++k) {
      const size_t output = states_ + k;
      if (!ctx.hasOutput(output)) continue;
      std::string what = "scan output " + std::to_string(k);
      const bool reverse = k < outputDirections_.size() && outputDirections_[k] != 0;
      int64_t axisAttr = k < outputAxes_.size() ? outputAxes_[k] : 0;
      if (result.scans[k].empty()) {
        const ir::ValueType& type = body_.outputTypes[states_ + k];
        int64_t rank = type.shape ? static_cast<int64_t>(type.shape->size()) + 1 : 1;
        auto axis = normalizeAxis(axisAttr, rank);
        WH_RETURN_IF_ERROR(emptyScanOutput(ctx, output, type, axis.value_or(0), what));
        continue;
      }
      auto axis = normalizeAxis(axisAttr, result.scans[k].front().rank() + 1);
      if (!axis) {
        return ctx.error("scan_output_axes[" + std::to_string(k) + "] = " + std::to_string(axisAttr) +
                         " is out of range for " + what + " " + tensorText(result.scans[k].front()));
      }
      WH_RETURN_IF_ERROR(stack(ctx, output, result.scans[k], *axis, reverse, length, what).status());
    }
    return Status::ok();
  }

  // Scan-8: every input and output has a leading batch axis; scan inputs run along axis 1,
  // each batch entry up to its sequence length, the scan outputs padded with zeros beyond it.
  Status runScan8(KernelContext& ctx) const {
    const size_t first = 1;  // input 0 is the optional sequence_lens
    int64_t batch = -1, maxLength = -1;
    for (size_t j = 0; j < states_ + scanInputs_; ++j) {
      const ir::Tensor& in = ctx.input(first + j);
      const bool scanned = j >= states_;
      if (in.rank() < (scanned ? 2 : 1)) return ctx.error("input " + std::to_string(first + j) + " " + tensorText(in) + " has no batch axis");
      if (batch >= 0 && in.dims()[0] != batch) return ctx.error("inputs disagree on the batch size");
      batch = in.dims()[0];
      if (scanned) {
        if (maxLength >= 0 && in.dims()[1] != maxLength) return ctx.error("scan inputs disagree on the sequence length");
        maxLength = in.dims()[1];
      }
    }
    std::vector<int64_t> lengths(static_cast<size_t>(batch), maxLength);
    if (ctx.hasInput(0)) {
      const ir::Tensor& lens = ctx.input(0);
      if (lens.dtype() != ir::DataType::kInt32 || lens.numel() != batch) {
        return ctx.error("sequence_lens must be int32 with one element per batch entry, got " + tensorText(lens));
      }
      for (int64_t b = 0; b < batch; ++b) {
        lengths[static_cast<size_t>(b)] = lens.data<int32_t>()[b];
        if (lengths[static_cast<size_t>(b)] < 0 || lengths[static_cast<size_t>(b)] > maxLength) {
          return ctx.error("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(lengths[static_cast<size_t>(b)]) +
                           " is outside [0, " + std::to_string(maxLength) + "]");
        }
      }
    }
    const size_t scanOutputs = body_.numOutputs() - states_;
    std::vector<std::vector<ir::Tensor>> states(states_), scans(scanOutputs);
    BufferPool scratchPool;
    std::vector<int64_t> axes(scanInputs_, 0);
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<ir::Tensor> initial, inputs;
      for (size_t i = 0; i < states_; ++i) {
        WH_ASSIGN_OR_RETURN(ir::Tensor s, sliceAxis(ctx, ctx.input(first + i), 0, b, "state " + std::to_string(i)));
        initial.push_back(std::move(s));
      }
      for (size_t j = 0; j < scanInputs_; ++j) {
        WH_ASSIGN_OR_RETURN(ir::Tensor s, sliceAxis(ctx, ctx.input(first + states_ + j), 0, b, "scan input " + std::to_string(j)));
        if (lengths[static_cast<size_t>(b)] < maxLength) {  // the first `length` steps only
          std::vector<int64_t> dims = s.dims();
          dims[0] = lengths[static_cast<size_t>(b)];
          size_t bytes = ir::storageBytes(s.dtype(), s.numel() / std::max<int64_t>(maxLength, 1) * dims[0]);
          s = ir::Tensor(s.dtype(), std::move(dims), ir::Buffer::view(s.rawData(), bytes, s.buffer()));
        }
        inputs.push_back(std::move(s));
      }
      WH_ASSIGN_OR_RETURN(Result result, iterate(ctx, std::move(initial), inputs, axes, lengths[static_cast<size_t>(b)]));
      for (size_t i = 0; i < states_; ++i) states[i].push_back(std::move(result.states[i]));
      for (size_t k = 0; k < scanOutputs; ++k) {
        std::vector<ir::Tensor>& steps = result.scans[k];
        if (steps.empty()) return ctx.error("batch entry " + std::to_string(b) + " has a zero sequence length");
        // This entry's steps, stacked into [maxLength, ...] through a scratch output.
        std::vector<Value> scratch(1);
        KernelContext entry(ctx.node(), {}, scratch, scratchPool, ctx.context());
        WH_ASSIGN_OR_RETURN(ir::Tensor stacked, stack(entry, 0, steps, 0, false, maxLength, "scan output " + std::to_string(k)));
        scans[k].push_back(std::move(stacked));
      }
    }
    for (size_t i = 0; i < states_; ++i) {
      if (ctx.hasOutput(i)) {
        WH_RETURN_IF_ERROR(stack(ctx, i, states[i], 0, false, batch, "state " + std::to_string(i)).status());
      }
    }
    for (size_t k = 0; k < scanOutputs; ++k) {
      if (ctx.hasOutput(states_ + k)) {
        WH_RETURN_IF_ERROR(stack(ctx, states_ + k, scans[k], 0, false, batch, "scan output " + std::to_string(k)).status());
      }
    }
    return Status::ok();
  }

  Subgraph body_;
  int64_t opset_;
  size_t states_;
  size_t scanInputs_;
  std::vector<int64_t> inputAxes_;
  std::vector<int64_t> inputDirections_;
  std::vector<int64_t> outputAxes_;
  std::vector<int64_t> outputDirections_;
};

// ---- SequenceMap ----

/// Runs the body once per element of the input sequence: the body reads that element, and of
/// each further input the element at the same position (a sequence) or the whole (a tensor).
/// Output k is the sequence of the body's output k over the iterations.
class SequenceMapKernel final : public Kernel {
 public:
  explicit SequenceMapKernel(Subgraph body) : body_(std::move(body)) {}

  Status run(KernelContext& ctx) override {
    const size_t inputs = ctx.node().numInputs();
    size_t length = 0;
    for (size_t j = 0; j < inputs; ++j) {
      if (!ctx.hasInput(j)) return ctx.error("input " + std::to_string(j) + " is missing");
      const Value& v = ctx.value(j);
      if (j == 0 && v.kind() != ValueKind::kSequence) return ctx.error("input 0 must be a sequence, got a " + v.describe());
      if (v.kind() == ValueKind::kSequence) {
        if (j == 0) {
          length = v.elements().size();
        } else if (v.elements().size() != length) {
          return ctx.error("input " + std::to_string(j) + " is a sequence of " + std::to_string(v.elements().size()) +
                           " elements, input 0 of " + std::to_string(length));
        }
      } else if (!v.isTensor()) {
        return ctx.error("input " + std::to_string(j) + " must be a sequence or a tensor, got a " + v.describe());
      }
    }
    std::vector<std::vector<Value>> results(body_.numOutputs());
    for (size_t t = 0; t < length; ++t) {
      std::vector<Value> feeds;
      feeds.reserve(inputs + body_.captureSlots.size());
      for (size_t j = 0; j < inputs; ++j) {
        const Value& v = ctx.value(j);
        feeds.push_back(v.kind() == ValueKind::kSequence ? v.elements()[t] : v);
      }
      WH_ASSIGN_OR_RETURN(std::vector<Value> outputs, body_.run(ctx, std::move(feeds)));
      for (size_t k = 0; k < outputs.size(); ++k) results[k].push_back(std::move(outputs[k]));
    }
    for (size_t k = 0; k < results.size() && k < ctx.numOutputs(); ++k) {
      if (ctx.hasOutput(k)) ctx.setValue(k, Value::sequence(std::move(results[k]), body_.outputTypes[k].dtype));
    }
    return Status::ok();
  }

 private:
  Subgraph body_;
};

}  // namespace

Expected<std::unique_ptr<Kernel>> createControlFlowKernel(const ir::Node& node, const ir::Model& outer,
                                                          const PlanEnv& env, std::vector<SubgraphPlan>* subplans) {
  auto compiled = [&](const std::string& attribute, const std::vector<PassThrough>& passThrough = {}) -> Expected<Subgraph> {
    WH_ASSIGN_OR_RETURN(Subgraph sub, compileSubgraph(node, attribute, outer, env, passThrough));
    if (subplans != nullptr) subplans->push_back({attribute, sub.plan.get()});
    return sub;
  };
  const std::string& op = node.opType();
  if (op == "If") {
    if (node.numInputs() != 1 || node.input(0) == nullptr) return invalidInput(node.describe() + ": expects one input, the condition");
    WH_ASSIGN_OR_RETURN(Subgraph thenBranch, compiled("then_branch"));
    WH_ASSIGN_OR_RETURN(Subgraph elseBranch, compiled("else_branch"));
    WH_RETURN_IF_ERROR(checkCounts(node, thenBranch, 0, node.numOutputs(), "one per node output"));
    WH_RETURN_IF_ERROR(checkCounts(node, elseBranch, 0, node.numOutputs(), "one per node output"));
    return std::unique_ptr<Kernel>(new IfKernel(std::move(thenBranch), std::move(elseBranch)));
  }
  if (op == "Loop") {
    if (node.numInputs() < 2) return invalidInput(node.describe() + ": expects a trip count and a condition input (either may be empty)");
    const size_t carried = node.numInputs() - 2;
    if (node.numOutputs() < carried) {
      return invalidInput(node.describe() + ": has " + std::to_string(node.numOutputs()) + " outputs, fewer than its " +
                          std::to_string(carried) + " loop-carried inputs");
    }
    // Body inputs 2.. are the carried values, body outputs 1.. their next values.
    std::vector<PassThrough> passThrough;
    for (size_t k = 0; k < carried; ++k) passThrough.push_back({2 + k, 1 + k, node.input(2 + k)});
    WH_ASSIGN_OR_RETURN(Subgraph body, compiled("body", passThrough));
    WH_RETURN_IF_ERROR(checkCounts(node, body, 2 + carried, 1 + node.numOutputs(),
                                   "the iteration number, the condition and " + std::to_string(carried) +
                                       " loop-carried values in; the condition and the node's " +
                                       std::to_string(node.numOutputs()) + " outputs out"));
    return std::unique_ptr<Kernel>(new LoopKernel(std::move(body), carried));
  }
  if (op == "SequenceMap") {
    if (node.numInputs() < 1 || node.input(0) == nullptr) return invalidInput(node.describe() + ": expects an input sequence");
    WH_ASSIGN_OR_RETURN(Subgraph body, compiled("body"));
    WH_RETURN_IF_ERROR(checkCounts(node, body, node.numInputs(), node.numOutputs(),
                                   "one per node input in, one per node output out"));
    return std::unique_ptr<Kernel>(new SequenceMapKernel(std::move(body)));
  }
  // Scan
  const int64_t opset = outer.opsetVersion("");
  const int64_t scanInputs = node.attrInt("num_scan_inputs", -1);
  const size_t leading = opset >= 9 ? 0 : 1;
  if (scanInputs < 1 || static_cast<size_t>(scanInputs) + leading > node.numInputs()) {
    return invalidInput(node.describe() + ": num_scan_inputs = " + std::to_string(scanInputs) + " does not fit its " +
                        std::to_string(node.numInputs()) + " inputs");
  }
  const size_t states = node.numInputs() - leading - static_cast<size_t>(scanInputs);
  if (node.numOutputs() < states) {
    return invalidInput(node.describe() + ": has fewer outputs than its " + std::to_string(states) + " state inputs");
  }
  for (size_t i = leading; i < node.numInputs(); ++i) {
    if (node.input(i) == nullptr) return invalidInput(node.describe() + ": input " + std::to_string(i) + " is missing");
  }
  WH_ASSIGN_OR_RETURN(Subgraph body, compiled("body"));
  WH_RETURN_IF_ERROR(checkCounts(node, body, states + static_cast<size_t>(scanInputs), node.numOutputs(),
                                 std::to_string(states) + " states and " + std::to_string(scanInputs) +
                                     " scan slices in; the node's " + std::to_string(node.numOutputs()) + " outputs out"));
  const size_t scanOutputs = node.numOutputs() - states;
  auto list = [&](const char* name, size_t count) -> Expected<std::vector<int64_t>> {
    std::vector<int64_t> values = node.attrInts(name, std::vector<int64_t>(count, 0));
    if (values.size() != count) {
      return invalidInput(node.describe() + ": " + name + " has " + std::to_string(values.size()) + " entries, expected " +
                          std::to_string(count));
    }
    return values;
  };
  std::vector<int64_t> inputAxes(static_cast<size_t>(scanInputs), 0), inputDirections, outputAxes, outputDirections;
  if (opset >= 9) {
    WH_ASSIGN_OR_RETURN(inputAxes, list("scan_input_axes", static_cast<size_t>(scanInputs)));
    WH_ASSIGN_OR_RETURN(inputDirections, list("scan_input_directions", static_cast<size_t>(scanInputs)));
    WH_ASSIGN_OR_RETURN(outputAxes, list("scan_output_axes", scanOutputs));
    WH_ASSIGN_OR_RETURN(outputDirections, list("scan_output_directions", scanOutputs));
  } else {
    WH_ASSIGN_OR_RETURN(inputDirections, list("directions", static_cast<size_t>(scanInputs)));
  }
  return std::unique_ptr<Kernel>(new ScanKernel(std::move(body), opset, states, static_cast<size_t>(scanInputs),
                                                std::move(inputAxes), std::move(inputDirections), std::move(outputAxes),
                                                std::move(outputDirections)));
}

}  // namespace whittle::runtime::detail
