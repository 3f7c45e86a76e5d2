// quantize-int8: static post-training int8 quantization from calibrated ranges.
//
// Before (one Conv, weights W and bias b float):
//   y = Relu(Conv(x, W, b))
// After, format=qdq (what ONNX Runtime's QDQ quantizer emits, so that ORT fuses each
// DQ → op → Q group into its int8 kernel):
//   xq = QuantizeLinear(x, sx, zx)            x' = DequantizeLinear(xq, sx, zx)
//   W' = DequantizeLinear(Wq int8, sW[c], 0, axis=0)
//   b' = DequantizeLinear(bq int32, sx*sW[c], 0, axis=0)
//   yq = QuantizeLinear(Conv(x', W', b'), sy, zy)   y = DequantizeLinear(yq, sy, zy)
//   with the Relu folded into y's range (uint8 activations: [0, hi] clamps exactly as Relu).
// After, format=qoperator: the same groups as QOperator ops, uint8 tensors between them:
//   xq = QuantizeLinear(x)   yq = QLinearConv(xq, sx, zx, Wq, sW, 0, sy, zy, bq)
//   y = DequantizeLinear(yq, sy, zy)          (at the edges only)
// with QLinearMatMul, com.microsoft QLinearAdd/QLinearMul/QLinearGlobalAveragePool/
// QLinearConcat, and MaxPool/Reshape/... on the quantized tensor; Gemm and ConvTranspose
// stay in QDQ form (no standard QLinear op).
//
// Ranges come from PassContext::calibration (one calibration run over the model as this pass
// sees it, or a loaded table); the method (minmax, percentile, entropy, mse) chooses them.
// Pass-through ops (MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Resize) give
// their output the input's parameters, so that ORT drops their Q/DQ pair.
// Requires: opset >= 13 for per-channel weights (older models are upgraded when no op
// changed meaning on the way, else per-tensor at opset >= 10).

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "pass_factories.h"
#include "whittle/common/file_util.h"
#include "whittle/quant/calibration.h"
#include "whittle/quant/qdq.h"
#include "whittle/quant/quant_math.h"
#include "subgraph_note.h"

namespace whittle::passes {
namespace {

using quant::QuantParams;

const std::set<std::string> kCompute = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
const std::set<std::string> kBinary = {"Add", "Mul"};
const std::set<std::string> kSameScale = {"MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                                          "Resize"};
const std::set<std::string> kOwnScale = {"Concat", "AveragePool", "GlobalAveragePool"};

struct Config {
  quant::CalibrationMethod method = quant::CalibrationMethod::kMinMax;
  double percentile = 99.99;
  bool perChannel = true;
  bool qoperator = false;
  ir::DataType activationType = ir::DataType::kUint8;
  bool reduceRange = false;
  std::set<std::string> opTypes;
  std::set<std::string> excludeOpTypes;
  std::vector<std::string> excludeNodes;
  std::string overrides;
};

/// A per-tensor override from the overrides file.
struct Override {
  std::optional<quant::Range> range;
  std::optional<QuantParams> params;
};

Expected<std::map<std::string, Override>> loadOverrides(const std::string& path) {
  std::map<std::string, Override> out;
  if (path.empty()) return out;
  WH_ASSIGN_OR_RETURN(std::string text, readFile(path));
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return invalidInput(path + ": expected a JSON object {tensor: {...}}");
  if (doc.contains("tensors") && doc["tensors"].is_object()) doc = doc["tensors"];
  for (const auto& [name, e] : doc.items()) {
    std::string where = path + ": tensor '" + name + "'";
    if (!e.is_object()) return invalidInput(where + ": expected an object");
    Override o;
    if (e.contains("range")) {
      if (!e["range"].is_array() || e["range"].size() != 2) return invalidInput(where + ": \"range\" is [lo, hi]");
      o.range = quant::Range{e["range"][0].get<float>(), e["range"][1].get<float>()};
    }
    if (e.contains("scale")) {
      QuantParams p;
      p.scale = e["scale"].get<float>();
      p.zeroPoint = e.value("zero_point", 0);
      std::string dtype = e.value("dtype", "uint8");
      if (dtype != "uint8" && dtype != "int8") return invalidInput(where + ": \"dtype\" is uint8 or int8");
      p.dtype = dtype == "int8" ? ir::DataType::kInt8 : ir::DataType::kUint8;
      if (!(p.scale > 0)) return invalidInput(where + ": \"scale\" must be positive");
      if (p.zeroPoint < quant::qmin(p.dtype) || p.zeroPoint > quant::qmax(p.dtype)) {
        return invalidInput(where + ": \"zero_point\" outside " + dtype);
      }
      o.params = p;
    }
    if (!o.range && !o.params) return invalidInput(where + ": give \"range\" or \"scale\" (and \"zero_point\", \"dtype\")");
    out[name] = o;
  }
  return out;
}

bool isFloatActivation(const ir::Value* v) {
  return v != nullptr && constantOf(v) == nullptr && (v->dtype() == ir::DataType::kFloat || v->dtype() == ir::DataType::kUndefined);
}

const ir::Tensor* floatConstant(const ir::Value* v) {
  const ir::Tensor* t = constantOf(v);
  return (t != nullptr && t->dtype() == ir::DataType::kFloat) ? t : nullptr;
}

bool isFoldableActivation(const ir::Node& n, const std::set<const ir::Node*>& quantized) {
  if ((n.opType() != "Relu" && n.opType() != "Clip") || !n.domain().empty()) return false;
  const ir::Value* x = n.input(0);
  if (x == nullptr || x->producer() == nullptr || !quantized.contains(x->producer())) return false;
  const std::string& pop = x->producer()->opType();
  if (!kCompute.contains(pop) && !kBinary.contains(pop)) return false;
  if (x->uses().size() != 1 || x->isGraphOutput()) return false;
  if (n.opType() == "Clip") {
    float lo = n.attrFloat("min", -3.4e38f);
    if (n.input(1) != nullptr) {
      const ir::Tensor* t = constantOf(n.input(1));
      if (t == nullptr || t->numel() != 1) return false;
      lo = static_cast<float>(t->valueAsDouble(0));
    }
    if (lo != 0.0f) return false;
    if (n.input(2) != nullptr && constantOf(n.input(2)) == nullptr) return false;
  }
  return true;
}

class QuantizeInt8 final : public Pass {
 public:
  explicit QuantizeInt8(Config config) : config_(std::move(config)) {
    for (const std::string& pattern : config_.excludeNodes) {
      try {
        excludeRegex_.emplace_back(pattern);
      } catch (const std::regex_error&) {
        // Not a regular expression: matched as a plain name only.
      }
    }
  }

  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  bool selected(const ir::Node& n) const;
  /// Which inputs of `n` are activations to quantize; empty when `n` is not quantizable.
  std::vector<size_t> activationInputs(const ir::Node& n) const;

  Config config_;
  std::vector<std::regex> excludeRegex_;
};

bool QuantizeInt8::selected(const ir::Node& n) const {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return false;
  const std::string& op = n.opType();
  if (!kCompute.contains(op) && !kBinary.contains(op) && !kSameScale.contains(op) && !kOwnScale.contains(op)) return false;
  if (!config_.opTypes.empty() && !config_.opTypes.contains(op)) return false;
  if (config_.excludeOpTypes.contains(op)) return false;
  for (const std::string& name : config_.excludeNodes) {
    if (n.name() == name) return false;
  }
  for (const std::regex& re : excludeRegex_) {
    if (std::regex_match(n.name(), re)) return false;
  }
  return true;
}

std::vector<size_t> QuantizeInt8::activationInputs(const ir::Node& n) const {
  const std::string& op = n.opType();
  if (n.numOutputs() < 1 || n.output(0) == nullptr) return {};
  if (op == "Conv" || op == "ConvTranspose") {
    if (!isFloatActivation(n.input(0)) || floatConstant(n.input(1)) == nullptr) return {};
    if (n.input(2) != nullptr && floatConstant(n.input(2)) == nullptr) return {};
    return {0};
  }
  if (op == "Gemm") {
    if (!isFloatActivation(n.input(0)) || floatConstant(n.input(1)) == nullptr) return {};
    if (n.attrInt("transA", 0) != 0) return {};
    if (n.input(2) != nullptr && floatConstant(n.input(2)) == nullptr) return {};
    return {0};
  }
  if (op == "MatMul") {
    if (!isFloatActivation(n.input(0))) return {};
    if (floatConstant(n.input(1)) != nullptr) return {0};
    if (isFloatActivation(n.input(1))) return {0, 1};
    return {};
  }
  if (kBinary.contains(op) || op == "Concat") {
    std::vector<size_t> idx;
    for (size_t i = 0; i < n.numInputs(); ++i) {
      if (!isFloatActivation(n.input(i))) return {};
      idx.push_back(i);
    }
    return idx;
  }
  // Single-data-input ops: input 0.
  if (!isFloatActivation(n.input(0))) return {};
  return {0};
}

Status QuantizeInt8::run(ir::Model& model, PassContext& ctx) {
  ir::Graph& graph = *model.graph;
  noteSubgraphsLeftAlone(graph, ctx, "quantize-int8", "float");
  WH_RETURN_IF_ERROR(graph.topologicalSort());
  const bool asymmetric = config_.activationType == ir::DataType::kUint8;

  // ---- 1. Choose the quantized nodes and the tensors that need a range ----
  std::set<const ir::Node*> quantized;
  std::map<const ir::Node*, std::vector<size_t>> inputsOf;
  std::set<const ir::Value*> quantizedTensors;  // values that will carry a Q/DQ pair
  std::map<const ir::Value*, ir::Node*> foldedActivation;  // producer output -> Relu/Clip after it
  for (ir::Node* n : graph.nodes()) {
    // Relu/Clip(0, x) right after a quantized compute/binary node: folded into the range of
    // that node's output (uint8: the range [0, hi] clamps as the activation does).
    if (asymmetric && isFoldableActivation(*n, quantized)) {
      foldedActivation[n->input(0)] = n;
      quantizedTensors.insert(n->output(0));
      continue;
    }
    if (!selected(*n)) continue;
    std::vector<size_t> idx = activationInputs(*n);
    if (idx.empty()) continue;
    // Ops that only pass values through are worth quantizing when their input is already
    // quantized (ORT then drops their Q/DQ pair); alone they would only add error.
    if (kSameScale.contains(n->opType()) || kOwnScale.contains(n->opType()) || kBinary.contains(n->opType())) {
      bool allQuantized = true;
      for (size_t i : idx) allQuantized = allQuantized && quantizedTensors.contains(n->input(i));
      if (!allQuantized) continue;
    }
    quantized.insert(n);
    inputsOf[n] = idx;
    for (size_t i : idx) quantizedTensors.insert(n->input(i));
    quantizedTensors.insert(n->output(0));
  }
  if (quantized.empty()) {
    ctx.note("quantize-int8: no node to quantize");
    return Status::ok();
  }
  // A folded activation whose producer's output no quantized node reads still folds: the
  // producer is quantized, so its output gets a Q/DQ pair with the activation's range.

  // Tensors whose range is their own (not inherited through a pass-through op). The name
  // to calibrate is the folded activation's output where there is one.
  std::map<const ir::Value*, std::string> calibName;
  std::map<const ir::Value*, const ir::Value*> inheritsFrom;
  for (ir::Node* n : graph.nodes()) {
    if (!quantized.contains(n)) continue;
    for (size_t i : inputsOf[n]) {
      const ir::Value* v = n->input(i);
      if (calibName.contains(v) || inheritsFrom.contains(v)) continue;
      auto f = foldedActivation.find(v);
      calibName[v] = f != foldedActivation.end() ? f->second->output(0)->name() : v->name();
    }
    const ir::Value* out = n->output(0);
    if (kSameScale.contains(n->opType())) {
      inheritsFrom[out] = n->input(inputsOf[n][0]);
      calibName.erase(out);
    } else if (!calibName.contains(out)) {
      auto f = foldedActivation.find(out);
      calibName[out] = f != foldedActivation.end() ? f->second->output(0)->name() : out->name();
    }
  }

  // ---- 2. Ranges ----
  WH_ASSIGN_OR_RETURN(auto overrides, loadOverrides(config_.overrides));
  std::vector<std::string> wanted;
  for (const auto& [v, name] : calibName) {
    if (!overrides.contains(name)) wanted.push_back(name);
  }
  std::map<std::string, quant::Observation> observed;
  if (!wanted.empty()) {
    if (ctx.calibration == nullptr) {
      return invalidInput(
          "quantize-int8 needs calibration data: give --calib DATA (or --load-calib FILE), or use quantize-dynamic");
    }
    WH_ASSIGN_OR_RETURN(quant::CalibrationTable table, ctx.calibration->observe(model, wanted));
    for (const std::string& name : wanted) {
      auto it = table.tensors.find(name);
      if (it == table.tensors.end()) return internalError("calibration returned no observation of '" + name + "'");
      observed[name] = it->second;
    }
  }
  std::map<const ir::Value*, QuantParams> params;
  for (const auto& [v, name] : calibName) {
    auto o = overrides.find(name);
    if (o != overrides.end() && o->second.params) {
      params[v] = *o->second.params;
      continue;
    }
    quant::Range r = o != overrides.end() ? *o->second.range
                                          : quant::chooseRange(observed.at(name), config_.method, config_.percentile,
                                                               config_.activationType);
    params[v] = quant::activationParams(r.lo, r.hi, config_.activationType);
  }
  for (ir::Node* n : graph.nodes()) {  // topological: the source's parameters exist first
    if (!quantized.contains(n)) continue;
    auto it = inheritsFrom.find(n->output(0));
    if (it != inheritsFrom.end()) params[n->output(0)] = params.at(it->second);
  }

  // ---- 3. Opset ----
  bool perChannel = config_.perChannel;
  if (model.opsetVersion("") < 13) {
    Status up = quant::ensureOpset(model, 13);
    if (!up.isOk()) {
      if (model.opsetVersion("") < 10) return up;
      perChannel = false;
      ctx.note("quantize-int8: opset " + std::to_string(model.opsetVersion("")) +
               " < 13 and not upgradable, weights quantized per tensor (" + up.message() + ")");
    } else {
      ctx.note("quantize-int8: upgraded the model to opset 13 for per-axis DequantizeLinear");
    }
  }
  if (config_.reduceRange) {
    ctx.note("quantize-int8: reduce-range: weights use 7 bits ([-63, 63]) so that u8*s8 products cannot saturate int16 on CPUs without VNNI");
  }

  // ---- 4. Rewrite ----
  std::map<const ir::Node*, QuantParams> inputParams;  // compute node -> its input's parameters
  for (const ir::Node* n : quantized) {
    if (kCompute.contains(n->opType())) inputParams[n] = params.at(n->input(0));
  }
  int64_t folded = 0;
  for (auto& [x, act] : foldedActivation) {
    ir::Value* y = act->output(0);
    params.erase(y);  // y goes away; x carries the range

    ir::Value* xv = const_cast<ir::Value*>(x);
    graph.replaceAllUsesWith(y, xv);
    graph.eraseNode(act);
    ++folded;
  }
  // Activation Q/DQ pairs, on every quantized tensor (in creation order for stable names).
  int64_t pairs = 0;
  for (ir::Value* v : graph.values()) {
    auto p = params.find(v);
    if (p == params.end()) continue;
    quant::insertQdqPair(graph, v, p->second);
    ++pairs;
  }
  // Weights and biases.
  int64_t weights = 0;
  for (ir::Node* n : graph.nodes()) {
    if (!quantized.contains(n) || !kCompute.contains(n->opType())) continue;
    const ir::Tensor* w = floatConstant(n->input(1));
    if (w == nullptr) continue;
    int64_t axis = perChannel ? quant::weightChannelAxis(*n, 1, w->rank()) : -1;
    std::vector<float> wScales;
    WH_ASSIGN_OR_RETURN(ir::Value* wdq, quant::addWeightDq(graph, *w, n->input(1)->name(), axis, config_.reduceRange, &wScales));
    n->setInput(1, wdq);
    ++weights;
    const ir::Tensor* b = n->input(2) != nullptr ? floatConstant(n->input(2)) : nullptr;
    if (b == nullptr || (n->opType() != "Conv" && n->opType() != "ConvTranspose" && n->opType() != "Gemm")) continue;
    // Bias int32 needs one bias element per output channel and a plain y = xW + b.
    int64_t channels = static_cast<int64_t>(wScales.size());
    // Gemm biases are often [1, N]: stored as [N], which broadcasts the same way.
    bool gemmRow = n->opType() == "Gemm" && b->rank() == 2 && b->dims()[0] == 1;
    bool plain = (b->rank() == 1 || gemmRow) && (channels == 1 || b->numel() == channels);
    if (n->opType() == "Gemm") plain = plain && n->attrFloat("alpha", 1.0f) == 1.0f && n->attrFloat("beta", 1.0f) == 1.0f;
    if (n->opType() == "ConvTranspose" && channels == 1) plain = plain && n->attrInt("group", 1) == 1;
    if (!plain) continue;
    auto xp = inputParams.find(n);
    if (xp == inputParams.end()) continue;
    ir::Tensor bias = gemmRow ? ir::Tensor(ir::DataType::kFloat, {b->numel()}, b->buffer()) : *b;
    WH_ASSIGN_OR_RETURN(ir::Value* bdq, quant::addBiasDq(graph, bias, n->input(2)->name(), xp->second.scale, wScales));
    n->setInput(2, bdq);
  }
  if (config_.qoperator) {
    ctx.stats().counters["qoperator-groups"] = quant::convertQdqToQOperator(graph);
    if (model.opsetVersion("com.microsoft") == 0) {
      for (const ir::Node* n : graph.nodes()) {
        if (n->domain() == "com.microsoft") {
          model.setOpsetVersion("com.microsoft", 1);
          break;
        }
      }
    }
  }
  ctx.stats().counters["nodes-quantized"] = static_cast<int64_t>(quantized.size());
  ctx.stats().counters["qdq-pairs"] = pairs;
  ctx.stats().counters["weights-quantized"] = weights;
  ctx.stats().counters["activations-folded"] = folded;
  ctx.stats().rewrites = static_cast<int64_t>(quantized.size());
  removeDeadNodes(graph);
  return graph.topologicalSort();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeQuantizeInt8(const PassOptions& options) {
  Config c;
  std::string method = options.getString("method", "minmax");
  auto m = quant::parseCalibrationMethod(method);
  if (!m) return invalidInput("method='" + method + "': expected minmax, percentile, entropy or mse");
  c.method = *m;
  WH_ASSIGN_OR_RETURN(c.percentile, options.getDouble("p", 99.99));
  if (c.percentile <= 50 || c.percentile > 100) return invalidInput("p=" + std::to_string(c.percentile) + ": expected 50 < p <= 100");
  WH_ASSIGN_OR_RETURN(c.perChannel, options.getBool("per-channel", true));
  WH_ASSIGN_OR_RETURN(c.reduceRange, options.getBool("reduce-range", false));
  std::string format = options.getString("format", "qdq");
  if (format != "qdq" && format != "qoperator") return invalidInput("format='" + format + "': expected qdq or qoperator");
  c.qoperator = format == "qoperator";
  std::string act = options.getString("activation-type", "uint8");
  if (act != "uint8" && act != "int8") return invalidInput("activation-type='" + act + "': expected uint8 or int8");
  c.activationType = act == "int8" ? ir::DataType::kInt8 : ir::DataType::kUint8;
  for (const std::string& s : options.getList("op-types", "")) c.opTypes.insert(s);
  for (const std::string& s : options.getList("exclude-op-types", "")) c.excludeOpTypes.insert(s);
  for (const std::string& s : options.getList("exclude-nodes", "")) c.excludeNodes.push_back(s);
  c.overrides = options.getString("overrides", "");
  return std::unique_ptr<Pass>(std::make_unique<QuantizeInt8>(std::move(c)));
}

}  // namespace whittle::passes
