// The QDQ group selector (see whittle/quant/qdq_groups.h). It depends on common and ir only,
// so that the runtime's lowering, a module below quant, can use it (docs/DESIGN.md).
#include "whittle/quant/qdq_groups.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "whittle/ir/rewrite.h"

namespace whittle::quant {
namespace {

constexpr const char* kMicrosoft = "com.microsoft";

bool isQuantType(ir::DataType t) { return t == ir::DataType::kUint8 || t == ir::DataType::kInt8; }

int64_t lowestOf(ir::DataType t) { return t == ir::DataType::kUint8 ? 0 : -128; }
int64_t highestOf(ir::DataType t) { return t == ir::DataType::kUint8 ? 255 : 127; }

/// The quantization of one Q or DQ node, when its parameters are constants.
struct Params {
  const ir::Node* node = nullptr;
  const ir::Tensor* scale = nullptr;
  const ir::Tensor* zeroPoint = nullptr;  // nullptr: zero of `type`
  ir::DataType type = ir::DataType::kUndefined;
  bool perTensor = true;
  int64_t axis = 1;  // as written

  float scaleAt(int64_t i) const { return static_cast<float>(scale->valueAsDouble(perTensor ? 0 : i)); }
  int64_t zeroPointAt(int64_t i) const {
    return zeroPoint == nullptr ? 0 : static_cast<int64_t>(zeroPoint->valueAsDouble(perTensor ? 0 : i));
  }
};

/// The parameters of Q/DQ `n` (the data type `dataType` for a DQ), or nullopt with `reason`.
std::optional<Params> paramsOf(const ir::Node& n, ir::DataType dataType, ir::ConstantScope scope, std::string& reason) {
  if (n.numInputs() < 2) {
    reason = n.describe() + ": no scale input";
    return std::nullopt;
  }
  if (n.attrInt("block_size", 0) != 0) {
    reason = n.describe() + ": blocked quantization (block_size) has no QOperator form";
    return std::nullopt;
  }
  Params p;
  p.node = &n;
  p.scale = ir::constantOf(n.input(1), scope);
  if (p.scale == nullptr || p.scale->dtype() != ir::DataType::kFloat || p.scale->numel() == 0) {
    reason = n.describe() + ": the scale is not a float32 constant";
    return std::nullopt;
  }
  const ir::Value* zp = n.numInputs() > 2 ? n.input(2) : nullptr;
  if (zp != nullptr) {
    p.zeroPoint = ir::constantOf(zp, scope);
    if (p.zeroPoint == nullptr || p.zeroPoint->numel() != p.scale->numel()) {
      reason = n.describe() + ": the zero point is not a constant of the scale's size";
      return std::nullopt;
    }
  }
  p.type = p.zeroPoint != nullptr ? p.zeroPoint->dtype() : dataType;
  if (p.zeroPoint == nullptr && n.opType() == "QuantizeLinear") {
    p.type = static_cast<ir::DataType>(n.attrInt("output_dtype", static_cast<int64_t>(ir::DataType::kUint8)));
  }
  p.perTensor = p.scale->numel() == 1;
  p.axis = n.attrInt("axis", 1);
  return p;
}

/// The DequantizeLinear producing `v` from uint8/int8 data, or nullopt with `reason`.
std::optional<Params> dequantized(const ir::Value* v, bool perTensorOnly, ir::ConstantScope scope, std::string& reason) {
  const ir::Node* dq = v != nullptr ? v->producer() : nullptr;
  if (dq == nullptr || !ir::isDefaultDomainOp(*dq, {"DequantizeLinear"}) || dq->input(0) == nullptr) {
    reason = (v == nullptr ? std::string("an absent input") : "'" + v->name() + "'") + " is not the output of a DequantizeLinear";
    return std::nullopt;
  }
  const ir::Value* data = dq->input(0);
  const ir::Tensor* constant = ir::constantOf(data, scope);
  ir::DataType dataType = constant != nullptr ? constant->dtype() : data->type().dtype;
  auto p = paramsOf(*dq, dataType, scope, reason);
  if (!p) return std::nullopt;
  if (!isQuantType(p->type) || (dataType != ir::DataType::kUndefined && dataType != p->type)) {
    reason = dq->describe() + ": dequantizes " + std::string(ir::dataTypeName(dataType)) + ", not uint8 or int8";
    return std::nullopt;
  }
  if (perTensorOnly && !p->perTensor) {
    reason = dq->describe() + ": per-axis scales (" + std::to_string(p->scale->numel()) +
             " values) where the group needs one per tensor";
    return std::nullopt;
  }
  return p;
}

/// Whether a per-axis quantization of a Conv's input (`conv`) or output (nullptr) along axis 1 (NCHW
/// channels) folds into an int8 convolution, which takes one zero point per tensor: scales always
/// (into the weights), zero points on the output always (into the bias), on the input only
/// without padding (into the bias: a padded tap reads the tensor's one zero point, which is not
/// the real zero of a channel with another).
bool channelScalesFold(const Params& p, const ir::Node* conv, std::string& reason) {
  if (p.perTensor) return true;
  if (p.axis != 1) {
    reason = p.node->describe() + ": per-axis scales along axis " + std::to_string(p.axis) + ", not the channels (1)";
    return false;
  }
  if (conv == nullptr) return true;
  bool padded = conv->attrString("auto_pad", "NOTSET") != "NOTSET" && conv->attrString("auto_pad", "NOTSET") != "VALID";
  for (int64_t v : conv->attrInts("pads")) padded = padded || v != 0;
  if (!padded) return true;
  for (int64_t c = 1; c < p.scale->numel(); ++c) {
    if (p.zeroPointAt(c) != p.zeroPointAt(0)) {
      reason = p.node->describe() + ": per-channel zero points differ (" + std::to_string(p.zeroPointAt(0)) + ", " +
               std::to_string(p.zeroPointAt(c)) + ") on the input of a padded Conv, whose padding takes one";
      return false;
    }
  }
  return true;
}

/// Whether two per-tensor quantizations are the same (scale bits, zero point, type).
bool sameParams(const Params& a, const Params& b) {
  if (!a.perTensor || !b.perTensor || a.type != b.type) return false;
  const float sa = a.scaleAt(0), sb = b.scaleAt(0);
  return std::memcmp(&sa, &sb, sizeof(float)) == 0 && a.zeroPointAt(0) == b.zeroPointAt(0);
}

/// Whether `v` may be fused away into a group: read once, by an explicit input, and not pinned.
bool fusable(const ir::Value* v, const QdqGroupOptions& options, std::string& reason) {
  if (v->isGraphOutput() || v->isGraphInput() || v->isInitializer()) {
    reason = "'" + v->name() + "' is a graph input, output or initializer";
    return false;
  }
  if (options.keep.contains(v) || v->hasImplicitUses()) {
    reason = "'" + v->name() + "' must be kept";
    return false;
  }
  if (ir::onlyUse(v) == nullptr) {
    reason = "'" + v->name() + "' is read by " + std::to_string(v->uses().size()) + " nodes, not only by the group";
    return false;
  }
  return true;
}

/// Whether the output Q (`y`) does what the Relu/Clip `act` does: its lowest code is at or
/// above the activation's lower bound and its highest at or below the upper bound.
bool absorbs(const ir::Node& act, const Params& y, ir::ConstantScope scope, std::string& reason) {
  double lo = 0, hi = std::numeric_limits<double>::infinity();
  if (act.opType() == "Clip") {
    lo = -std::numeric_limits<double>::infinity();
    if (act.numInputs() > 1 || (!act.hasAttribute("min") && !act.hasAttribute("max"))) {
      for (size_t i = 1; i < act.numInputs() && i < 3; ++i) {
        if (act.input(i) == nullptr) continue;
        auto b = ir::scalarConstant(act.input(i), scope);
        if (!b) {
          reason = act.describe() + ": a bound is not a one-value constant";
          return false;
        }
        (i == 1 ? lo : hi) = *b;
      }
    } else {
      lo = act.attrFloat("min", -std::numeric_limits<float>::max());
      hi = act.attrFloat("max", std::numeric_limits<float>::max());
    }
  }
  // Per channel (a Conv's output scales along axis 1): every channel's codes lie within the bounds.
  double lowest = -std::numeric_limits<double>::infinity(), highest = std::numeric_limits<double>::infinity();
  for (int64_t c = 0; c < (y.perTensor ? 1 : y.scale->numel()); ++c) {
    const double s = y.scaleAt(c);
    lowest = std::max(lowest, static_cast<double>(lowestOf(y.type) - y.zeroPointAt(c)) * s);
    highest = std::min(highest, static_cast<double>(highestOf(y.type) - y.zeroPointAt(c)) * s);
  }
  if (lo <= lowest && hi >= highest) return true;
  reason = act.describe() + ": the output QuantizeLinear's range [" + std::to_string(lowest) + ", " +
           std::to_string(highest) + "] does not lie within the activation's bounds, so its saturation is not the " +
           act.opType() + " (zero point " + std::to_string(y.zeroPointAt(0)) + ")";
  return false;
}

int64_t normalizedAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

}  // namespace

std::string_view qdqGroupKindName(QdqGroupKind kind) {
  switch (kind) {
    case QdqGroupKind::kConv: return "conv";
    case QdqGroupKind::kConvTranspose: return "conv-transpose";
    case QdqGroupKind::kMatMul: return "matmul";
    case QdqGroupKind::kGemm: return "gemm";
    case QdqGroupKind::kBinary: return "binary";
    case QdqGroupKind::kAveragePool: return "average-pool";
    case QdqGroupKind::kConcat: return "concat";
    case QdqGroupKind::kDataMovement: return "data-movement";
    case QdqGroupKind::kUnary: return "unary";
  }
  return "?";
}

bool isTableOp(const ir::Node& node) {
  static const std::unordered_set<std::string> ops = {
      "Sigmoid", "Tanh", "Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Clip", "Elu", "Exp", "Neg", "Abs",
      "Softplus", "Erf", "Sqrt", "Reciprocal", "Identity", "Mish", "Add", "Sub", "Mul", "Div", "Max", "Min", "Pow",
      "PRelu"};
  return ir::isDefaultDomain(node) && node.numOutputs() == 1 && ops.contains(node.opType());
}

int QdqOpRule::inputWith(QdqInputRole role) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == role) return static_cast<int>(i);
  }
  return -1;
}

std::optional<QdqOpRule> qdqOpRule(const ir::Node& node, std::string* reason) {
  auto refuse = [&](const std::string& why) -> std::optional<QdqOpRule> {
    if (reason != nullptr) *reason = node.describe() + ": " + why;
    return std::nullopt;
  };
  if (!ir::isDefaultDomain(node)) return refuse("not in the default domain");
  if (node.numOutputs() < 1 || node.output(0) == nullptr) return refuse("no output");
  for (size_t i = 1; i < node.numOutputs(); ++i) {
    if (node.output(i) != nullptr) return refuse("a group's target has one output (MaxPool without Indices)");
  }
  using R = QdqInputRole;
  const std::string& op = node.opType();
  QdqOpRule rule;
  // Every input a parameter unless said otherwise below.
  rule.inputs.assign(node.numInputs(), R::kParameter);
  auto setRoles = [&](std::initializer_list<R> roles) {
    size_t i = 0;
    for (R r : roles) {
      if (i < rule.inputs.size()) rule.inputs[i] = r;
      ++i;
    }
  };
  if (op == "Conv" || op == "ConvTranspose") {
    rule.kind = op == "Conv" ? QdqGroupKind::kConv : QdqGroupKind::kConvTranspose;
    setRoles({R::kActivation, R::kWeight, R::kBias});
    rule.absorbsActivation = true;
    if (op == "Conv") rule.qoperatorOp = "QLinearConv";
  } else if (op == "MatMul") {
    rule.kind = QdqGroupKind::kMatMul;
    setRoles({R::kActivation, R::kWeightOrActivation});
    rule.absorbsActivation = true;
    rule.qoperatorOp = "QLinearMatMul";
  } else if (op == "Gemm") {
    if (node.attrInt("transA", 0) != 0) return refuse("Gemm with transA=1 is not quantized");
    rule.kind = QdqGroupKind::kGemm;
    setRoles({R::kActivation, R::kWeight, R::kBias});
    rule.absorbsActivation = true;
  } else if (op == "Add" || op == "Mul" || (op == "Sum" && node.numInputs() == 2)) {
    // Sum of two tensors is Add (ShuffleNet's shortcuts, from Caffe2, are written so).
    rule.kind = QdqGroupKind::kBinary;
    setRoles({R::kActivation, R::kActivation});
    rule.absorbsActivation = true;
    rule.needsQuantizedInputs = true;
    rule.qoperatorOp = op == "Mul" ? "QLinearMul" : "QLinearAdd";
    rule.qoperatorDomain = kMicrosoft;
  } else if (op == "AveragePool" || op == "GlobalAveragePool") {
    for (int64_t d : node.attrInts("dilations")) {
      if (d != 1) return refuse("AveragePool with dilations has no QOperator form (QLinearAveragePool has none)");
    }
    rule.kind = QdqGroupKind::kAveragePool;
    setRoles({R::kActivation});
    rule.needsQuantizedInputs = true;
    rule.qoperatorOp = "QLinear" + op;
    rule.qoperatorDomain = kMicrosoft;
  } else if (op == "Concat") {
    rule.kind = QdqGroupKind::kConcat;
    rule.inputs.assign(node.numInputs(), R::kActivation);
    rule.needsQuantizedInputs = true;
    rule.qoperatorOp = "QLinearConcat";
    rule.qoperatorDomain = kMicrosoft;
  } else if (op == "MaxPool" || op == "Reshape" || op == "Transpose" || op == "Flatten" || op == "Squeeze" ||
             op == "Unsqueeze" || op == "Identity" || op == "Resize" || op == "Slice" || op == "Gather") {
    rule.kind = QdqGroupKind::kDataMovement;
    setRoles({R::kActivation});
    rule.sameParams = true;
    rule.needsQuantizedInputs = true;
    // Resize that interpolates stays in QDQ form (float between the DQ and the Q); nearest
    // only picks elements, so it runs on the quantized tensor (tf_crop_and_resize excepted:
    // its extrapolation value is a float).
    const bool picks = node.attrString("mode", "nearest") == "nearest" &&
                       node.attrString("coordinate_transformation_mode", "half_pixel") != "tf_crop_and_resize";
    if (op != "Resize" || picks) rule.qoperatorOp = op;
  } else if (op == "Sigmoid" || op == "HardSigmoid" || op == "HardSwish" || op == "LeakyRelu" || op == "Tanh" ||
             op == "PRelu") {
    // Element-wise functions of one quantized tensor: QDQ form (ORT's QDQ format quantizes
    // Sigmoid, LeakyRelu and the like the same way); the runtime runs them as a table lookup,
    // PRelu with a slope per channel as QLinearPRelu (its slope stays a float parameter).
    rule.kind = QdqGroupKind::kUnary;
    setRoles({R::kActivation});
    rule.needsQuantizedInputs = true;
  } else {
    return refuse("op " + op + " cannot be a QDQ group");
  }
  if (node.numInputs() < 1 || node.input(0) == nullptr) return refuse("no data input");
  return rule;
}

QdqGroupMatch matchQdqGroup(const ir::Node& q, const QdqGroupOptions& options) {
  QdqGroupMatch result;
  std::string& reason = result.reason;
  auto refuse = [&](std::string why) {
    result.group.reset();
    reason = std::move(why);
    return result;
  };
  const ir::ConstantScope scope = options.scope;
  if (!ir::isDefaultDomainOp(q, {"QuantizeLinear"}) || q.numOutputs() != 1 || q.output(0) == nullptr) {
    return refuse(q.describe() + ": not a QuantizeLinear with one output");
  }
  auto y = paramsOf(q, ir::DataType::kUndefined, scope, reason);
  if (!y) return refuse(reason);
  // Per-axis output scales: only a Conv's (below), whose requantization is per output channel.
  auto perAxisOutput = [&]() {
    return refuse(q.describe() + ": per-axis output scales (" + std::to_string(y->scale->numel()) +
                  " values); a group's output is quantized per tensor, but for a Conv's per channel");
  };
  if (!isQuantType(y->type)) {
    return refuse(q.describe() + ": quantizes to " + std::string(ir::dataTypeName(y->type)) + ", not uint8 or int8");
  }
  const ir::Value* in = q.input(0);
  if (in == nullptr || in->producer() == nullptr) return refuse(q.describe() + ": its input is not computed by a node");
  if (!fusable(in, options, reason)) return refuse(q.describe() + ": " + reason);

  QdqGroup g;
  g.output = const_cast<ir::Node*>(&q);
  g.target = in->producer();
  if (ir::isDefaultDomainOp(*g.target, {"Relu", "Clip"})) {
    g.activation = g.target;
    const ir::Value* x = g.activation->input(0);
    g.target = x != nullptr ? x->producer() : nullptr;
    if (g.target == nullptr) return refuse(g.activation->describe() + ": its input is not computed by a node");
    std::string why;
    auto rule = qdqOpRule(*g.target, &why);
    if (!rule) return refuse(why);
    if (!rule->absorbsActivation) {
      return refuse(g.activation->describe() + ": follows " + g.target->describe() + ", which absorbs no activation");
    }
    if (!fusable(x, options, reason)) return refuse(g.activation->describe() + ": " + reason);
    if (!absorbs(*g.activation, *y, scope, reason)) return refuse(reason);
  }
  std::string why;
  auto rule = qdqOpRule(*g.target, &why);
  if (!rule) return refuse(why);
  g.rule = *rule;
  g.kind = rule->kind;
  const bool qop = g.hasQOperatorForm();
  const ir::Node& t = *g.target;
  g.inputs.assign(t.numInputs(), nullptr);
  // A Conv's activation input and output may be quantized per channel (axis 1; channelScalesFold):
  // the QOperator form folds the scales into the weights (rewriteAsQOperator).
  const bool channelScales = qop && g.kind == QdqGroupKind::kConv;
  if (!y->perTensor && !channelScales) return perAxisOutput();
  if (!channelScalesFold(*y, nullptr, reason)) return refuse(reason);
  int64_t inputChannelScales = -1;

  // Output channels of a Conv from its weight, for per-channel weights and the bias.
  int64_t channels = -1;
  for (size_t i = 0; i < t.numInputs(); ++i) {
    const ir::Value* v = t.input(i);
    const QdqInputRole role = rule->inputs[i];
    if (role == QdqInputRole::kParameter) continue;
    if (role == QdqInputRole::kBias) continue;  // below, once the weight is known
    if (v == nullptr) return refuse(t.describe() + ": input " + std::to_string(i) + " is absent");
    const bool weight = role == QdqInputRole::kWeight ||
                        (role == QdqInputRole::kWeightOrActivation && v->producer() != nullptr &&
                         v->producer()->numInputs() > 0 && ir::constantOf(v->producer()->input(0), scope) != nullptr);
    auto p = dequantized(v, /*perTensorOnly=*/!weight && !(channelScales && i == 0), scope, reason);
    if (!p) return refuse(t.describe() + ": input " + std::to_string(i) + ": " + reason);
    if (!weight && !p->perTensor) {
      if (!channelScalesFold(*p, &t, reason)) return refuse(t.describe() + ": input 0: " + reason);
      inputChannelScales = p->scale->numel();
    }
    g.inputs[i] = const_cast<ir::Node*>(p->node);
    if (weight) {
      const ir::Tensor* data = ir::constantOf(p->node->input(0), scope);
      if (data == nullptr) return refuse(t.describe() + ": the weight '" + p->node->input(0)->name() + "' is not a constant");
      if (qop && g.kind == QdqGroupKind::kConv) {
        if (data->rank() < 3) return refuse(t.describe() + ": a weight of rank " + std::to_string(data->rank()));
        channels = data->dims()[0];
        if (!p->perTensor && (p->scale->numel() != channels || normalizedAxis(p->axis, data->rank()) != 0)) {
          return refuse(t.describe() + ": weight scales are not one per output channel (axis 0)");
        }
        if (options.centredConvWeightsOnly) {
          const int64_t centre = p->type == ir::DataType::kUint8 ? 128 : 0;
          for (int64_t c = 0; c < (p->perTensor ? 1 : channels); ++c) {
            if (p->zeroPointAt(c) != centre) {
              return refuse(t.describe() + ": weight zero point " + std::to_string(p->zeroPointAt(c)) +
                            " (the int8 convolution runs only " + std::to_string(centre) +
                            " on oneDNN: the group runs as its float definition)");
            }
          }
        }
      }
      if (qop && g.kind == QdqGroupKind::kMatMul && !p->perTensor &&
          (data->rank() != 2 || normalizedAxis(p->axis, 2) != 1 || p->scale->numel() != data->dims()[1])) {
        return refuse(t.describe() + ": B's scales are not one per column of a 2-D B (axis 1)");
      }
    } else if (qop && (g.kind == QdqGroupKind::kBinary || g.kind == QdqGroupKind::kAveragePool ||
                       g.kind == QdqGroupKind::kConcat) &&
               p->type != y->type) {
      return refuse(t.describe() + ": reads " + std::string(ir::dataTypeName(p->type)) + " and writes " +
                    std::string(ir::dataTypeName(y->type)) + "; its QOperator op takes one type");
    } else if (g.kind == QdqGroupKind::kDataMovement && !sameParams(*p, *y)) {
      return refuse(t.describe() + ": the DequantizeLinear and the QuantizeLinear around it differ in scale, zero "
                                   "point or type, so it cannot move quantized values");
    }
  }
  if (channelScales) {
    const ir::Tensor* w = ir::constantOf(g.inputs[1]->input(0), scope);
    const int64_t inChannels = w->dims()[1] * t.attrInt("group", 1);
    if (inputChannelScales >= 0 && inputChannelScales != inChannels) {
      return refuse(t.describe() + ": " + std::to_string(inputChannelScales) + " input scales for " +
                    std::to_string(inChannels) + " input channels");
    }
    if (!y->perTensor && y->scale->numel() != channels) {
      return refuse(q.describe() + ": " + std::to_string(y->scale->numel()) + " output scales for " +
                    std::to_string(channels) + " output channels");
    }
  }
  const int b = rule->inputWith(QdqInputRole::kBias);
  if (b >= 0 && t.input(static_cast<size_t>(b)) != nullptr) {
    const ir::Value* bias = t.input(static_cast<size_t>(b));
    if (const ir::Tensor* f = ir::constantOf(bias, scope); f != nullptr) {
      if (qop && (f->dtype() != ir::DataType::kFloat || f->numel() != channels)) {
        return refuse(t.describe() + ": the float bias does not hold one value per output channel");
      }
    } else {
      const ir::Node* dq = bias->producer();
      if (dq == nullptr || !ir::isDefaultDomainOp(*dq, {"DequantizeLinear"})) {
        return refuse(t.describe() + ": the bias is neither a constant nor a DequantizeLinear");
      }
      const ir::Tensor* data = ir::constantOf(dq->input(0), scope);
      auto p = paramsOf(*dq, ir::DataType::kInt32, scope, reason);
      if (data == nullptr || !p || data->dtype() != ir::DataType::kInt32) {
        return refuse(t.describe() + ": the bias is not a DequantizeLinear of an int32 constant");
      }
      if (qop && (data->numel() != channels || (!p->perTensor && p->scale->numel() != channels))) {
        return refuse(t.describe() + ": the bias does not hold one value per output channel");
      }
      g.inputs[static_cast<size_t>(b)] = const_cast<ir::Node*>(dq);
    }
  }
  result.group = std::move(g);
  return result;
}

std::vector<QdqGroup> selectQdqGroups(const ir::Graph& graph, const QdqGroupOptions& options,
                                      std::vector<std::string>* refused) {
  std::vector<QdqGroup> groups;
  for (const ir::Node* n : graph.nodes()) {
    if (!ir::isDefaultDomainOp(*n, {"QuantizeLinear"})) continue;
    QdqGroupMatch m = matchQdqGroup(*n, options);
    if (m.group) {
      groups.push_back(std::move(*m.group));
    } else if (refused != nullptr) {
      refused->push_back(std::move(m.reason));
    }
  }
  return groups;
}

namespace {

/// The zero point input of Q/DQ `n`: its own, or a new zero constant of `type`.
ir::Value* zeroPointValue(ir::Graph& graph, const ir::Node& n, ir::DataType type) {
  if (n.numInputs() > 2 && n.input(2) != nullptr) return n.input(2);
  return graph.addInitializer(graph.uniqueValueName(n.input(1)->name() + "_zero_point"), ir::Tensor(type, {}));
}

ir::DataType typeOf(const ir::Node& qdq, ir::ConstantScope scope) {
  std::string unused;
  const ir::Tensor* data = ir::constantOf(qdq.input(0), scope);
  ir::DataType dataType = qdq.opType() == "DequantizeLinear" ? (data ? data->dtype() : qdq.input(0)->type().dtype)
                                                               : ir::DataType::kUndefined;
  auto p = paramsOf(qdq, dataType, scope, unused);
  return p ? p->type : ir::DataType::kUndefined;
}

/// The float values of a Conv's bias (m of them): a float constant, or a DequantizeLinear of an
/// int32 constant computed in float as DequantizeLinear computes it.
std::vector<double> biasValues(const ir::Value* bias, int64_t m, ir::ConstantScope scope) {
  std::vector<double> values(static_cast<size_t>(m));
  if (const ir::Tensor* f = ir::constantOf(bias, scope); f != nullptr) {
    for (int64_t i = 0; i < m; ++i) values[static_cast<size_t>(i)] = f->data<float>()[i];
    return values;
  }
  const ir::Node* dq = bias->producer();
  const ir::Tensor* data = ir::constantOf(dq->input(0), scope);
  std::string unused;
  auto p = paramsOf(*dq, ir::DataType::kInt32, scope, unused);
  for (int64_t i = 0; i < m; ++i) {
    const double zp = static_cast<double>(p->zeroPointAt(i));
    values[static_cast<size_t>(i)] =
        static_cast<float>(static_cast<float>(static_cast<double>(data->data<int32_t>()[i]) - zp) * p->scaleAt(i));
  }
  return values;
}

/// An int32 bias round(values[i] / scales[i]), half to even, saturated; nullptr when a scale is
/// not positive.
ir::Value* int32Bias(ir::Graph& graph, const std::string& name, const std::vector<double>& values,
                     const std::vector<float>& scales) {
  const auto m = static_cast<int64_t>(values.size());
  ir::Tensor out(ir::DataType::kInt32, {m});
  int32_t* dst = out.mutableData<int32_t>();
  for (int64_t i = 0; i < m; ++i) {
    const float s = scales[static_cast<size_t>(i)];
    if (!(s > 0.0f)) return nullptr;
    double r = std::nearbyint(values[static_cast<size_t>(i)] / static_cast<double>(s));
    r = std::fmin(std::fmax(r, static_cast<double>(std::numeric_limits<int32_t>::min())),
                  static_cast<double>(std::numeric_limits<int32_t>::max()));
    dst[i] = static_cast<int32_t>(r);
  }
  return graph.addInitializer(graph.uniqueValueName(name + "_int32"), std::move(out));
}

/// An int32 bias for QLinearConv: round(b / (x_scale * w_scale[m])), half to even, saturated,
/// from a float constant or a DequantizeLinear of an int32 constant (equal to its data when its
/// scale is x_scale * w_scale, as quantizers write it). nullptr when a product scale is not positive.
ir::Value* requantizedBias(ir::Graph& graph, const ir::Value* bias, const Params& x, const Params& w, int64_t m,
                           ir::ConstantScope scope) {
  std::vector<float> scales(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) scales[static_cast<size_t>(i)] = x.scaleAt(0) * w.scaleAt(i);
  return int32Bias(graph, bias->name(), biasValues(bias, m, scope), scales);
}

/// A one-value constant of `type` holding `v` (a scale of 1, a zero point).
ir::Value* scalarConstant(ir::Graph& graph, const std::string& name, ir::DataType type, double v) {
  ir::Tensor t(type, {});
  switch (type) {
    case ir::DataType::kFloat: t.mutableData<float>()[0] = static_cast<float>(v); break;
    case ir::DataType::kUint8: t.mutableData<uint8_t>()[0] = static_cast<uint8_t>(v); break;
    default: t.mutableData<int8_t>()[0] = static_cast<int8_t>(v); break;
  }
  return graph.addInitializer(graph.uniqueValueName(name), std::move(t));
}

/// QLinearConv's inputs for a Conv group whose input x or output y is quantized per channel
/// (axis 1; see channelScalesFold). With xs[c], ys[o] the scales and xz[c], yz[o] the zero points,
///   (y[o] - yz[o]) ys[o] = sum_{c,k} w[o,c,k] xs[c] (xq[c,k] - xz[c]) + b[o]
/// so the convolution of the codes xq - xz[0] with w'[o,c,k] = w[o,c,k] xs[c] / ys[o] and the bias
///   b[o] / ys[o] + sum_{c,k} w'[o,c,k] (xz[0] - xz[c]) + (yz[o] - yz[0])
/// (in output codes; the int32 bias is that over w''s step) gives y in codes with one zero point
/// each: x and y take scale 1 and w' is requantized to int8 per output channel. Where the scales that meet an output channel are one (a depthwise Conv, or x per
/// tensor) w' is w times a number per output channel: its codes stay, only its scales change, and
/// the fold is exact; else w' is rounded again (what benchmarks/int8_error_sources.py --fold
/// measures). Empty when a scale is not positive.
std::vector<ir::Value*> channelScaleConvInputs(ir::Graph& graph, const ir::Node& t, const ir::Node& x,
                                               const ir::Node& w, const ir::Node& q, ir::ConstantScope scope) {
  std::string unused;
  auto xp = paramsOf(x, typeOf(x, scope), scope, unused);
  auto wp = paramsOf(w, typeOf(w, scope), scope, unused);
  auto yp = paramsOf(q, ir::DataType::kUndefined, scope, unused);
  const ir::Tensor* wq = ir::constantOf(w.input(0), scope);
  const int64_t m = wq->dims()[0], perGroup = wq->dims()[1];
  const int64_t inner = wq->numel() / (m * perGroup);
  const int64_t outPerGroup = m / std::max<int64_t>(t.attrInt("group", 1), 1);
  const bool exact = perGroup == 1 || xp->perTensor;
  auto wAt = [&](int64_t i) -> double {
    const int64_t code = wq->dtype() == ir::DataType::kUint8 ? wq->data<uint8_t>()[i] : wq->data<int8_t>()[i];
    const int64_t o = i / (perGroup * inner);
    return static_cast<double>(code - wp->zeroPointAt(o));
  };
  ir::Tensor codes(ir::DataType::kInt8, wq->dims());
  int8_t* dst = codes.mutableData<int8_t>();
  std::vector<float> scales(static_cast<size_t>(m));
  std::vector<double> w2(static_cast<size_t>(perGroup * inner));
  for (int64_t o = 0; o < m; ++o) {
    const int64_t firstIn = (o / outPerGroup) * perGroup;
    const double ys = yp->scaleAt(o), ws = wp->scaleAt(o);
    if (!(ys > 0) || !(ws > 0)) return {};
    const int64_t base = o * perGroup * inner;
    if (exact) {
      for (int64_t i = 0; i < perGroup * inner; ++i) {
        const double code = wAt(base + i);
        if (code < -128 || code > 127) return {};
        dst[base + i] = static_cast<int8_t>(code);
      }
      scales[static_cast<size_t>(o)] = static_cast<float>(ws * xp->scaleAt(firstIn) / ys);
      continue;
    }
    double largest = 0;
    for (int64_t c = 0; c < perGroup; ++c) {
      const double f = ws * xp->scaleAt(firstIn + c) / ys;
      for (int64_t k = 0; k < inner; ++k) {
        const size_t i = static_cast<size_t>(c * inner + k);
        w2[i] = wAt(base + c * inner + k) * f;
        largest = std::max(largest, std::fabs(w2[i]));
      }
    }
    const double s = largest > 0 ? largest / 127 : 1.0;
    for (int64_t i = 0; i < perGroup * inner; ++i) {
      dst[base + i] = static_cast<int8_t>(std::clamp(std::nearbyint(w2[static_cast<size_t>(i)] / s), -127.0, 127.0));
    }
    scales[static_cast<size_t>(o)] = static_cast<float>(s);
  }
  const std::string name = t.name().empty() ? w.input(0)->name() : t.name();
  const bool hasBias = t.numInputs() > 2 && t.input(2) != nullptr;
  std::vector<double> b = hasBias ? biasValues(t.input(2), m, scope) : std::vector<double>(static_cast<size_t>(m), 0.0);
  bool zeroPointsDiffer = false;
  for (int64_t o = 0; o < m; ++o) {
    const int64_t firstIn = (o / outPerGroup) * perGroup;
    double codes = 0;  // sum_{c,k} w'[o,c,k] (xz[0] - xz[c]), in accumulator units
    for (int64_t c = 0; c < perGroup; ++c) {
      const int64_t dz = xp->zeroPointAt(0) - xp->zeroPointAt(firstIn + c);
      if (dz == 0) continue;
      for (int64_t k = 0; k < inner; ++k) codes += static_cast<double>(dst[(o * perGroup + c) * inner + k]) * static_cast<double>(dz);
    }
    const double dy = static_cast<double>(yp->zeroPointAt(o) - yp->zeroPointAt(0));
    zeroPointsDiffer = zeroPointsDiffer || codes != 0 || dy != 0;
    b[static_cast<size_t>(o)] = b[static_cast<size_t>(o)] / yp->scaleAt(o) + dy + codes * scales[static_cast<size_t>(o)];
  }
  ir::Value* bias = nullptr;
  if (hasBias || zeroPointsDiffer) {
    bias = int32Bias(graph, name + "_bias", b, scales);
    if (bias == nullptr) return {};
  }
  std::vector<ir::Value*> inputs = {
      x.input(0),
      scalarConstant(graph, name + "_x_scale", ir::DataType::kFloat, 1.0),
      scalarConstant(graph, name + "_x_zero_point", xp->type, static_cast<double>(xp->zeroPointAt(0))),
      graph.addInitializer(graph.uniqueValueName(name + "_w_channel_scaled"), std::move(codes)),
      graph.addInitializer(graph.uniqueValueName(name + "_w_scale"), ir::Tensor::fromVector(ir::DataType::kFloat, {m}, scales)),
      graph.addInitializer(graph.uniqueValueName(name + "_w_zero_point"), ir::Tensor(ir::DataType::kInt8, {m})),
      scalarConstant(graph, name + "_y_scale", ir::DataType::kFloat, 1.0),
      scalarConstant(graph, name + "_y_zero_point", yp->type, static_cast<double>(yp->zeroPointAt(0)))};
  if (bias != nullptr) inputs.push_back(bias);
  return inputs;
}

}  // namespace

ir::Node* rewriteAsQOperator(ir::Graph& graph, const QdqGroup& group, ir::ConstantScope scope) {
  WH_CHECK(group.hasQOperatorForm(), "rewriteAsQOperator: a " + std::string(qdqGroupKindName(group.kind)) +
                                         " group has no QOperator form");
  ir::Node* t = group.target;
  ir::Node* q = group.output;
  std::vector<ir::Node*> chain = {t};
  if (group.activation != nullptr) chain.push_back(group.activation);
  chain.push_back(q);
  // scale and zero point of a Q/DQ node, as inputs of the new node.
  auto quantized = [&](const ir::Node* n) -> std::vector<ir::Value*> {
    return {n->input(0), n->input(1), zeroPointValue(graph, *n, typeOf(*n, scope))};
  };
  auto outputParams = [&]() -> std::vector<ir::Value*> {
    return {q->input(1), zeroPointValue(graph, *q, typeOf(*q, scope))};
  };
  std::vector<ir::Value*> inputs;
  std::vector<ir::Attribute> attrs;
  switch (group.kind) {
    case QdqGroupKind::kConv: {
      const ir::Node* x = group.inputs[0];
      const ir::Node* w = group.inputs[1];
      std::string unused;
      auto xp = paramsOf(*x, typeOf(*x, scope), scope, unused);
      auto wp = paramsOf(*w, typeOf(*w, scope), scope, unused);
      auto yp = paramsOf(*q, ir::DataType::kUndefined, scope, unused);
      if (!xp->perTensor || !yp->perTensor) {
        inputs = channelScaleConvInputs(graph, *t, *x, *w, *q, scope);
        if (inputs.empty()) return nullptr;
        attrs.assign(t->attributes().begin(), t->attributes().end());
        break;
      }
      const int64_t m = ir::constantOf(w->input(0), scope)->dims()[0];
      ir::Value* bias = nullptr;
      if (t->numInputs() > 2 && t->input(2) != nullptr) {
        bias = requantizedBias(graph, t->input(2), *xp, *wp, m, scope);
        if (bias == nullptr) return nullptr;
      }
      for (const ir::Node* n : {x, w}) {
        auto v = quantized(n);
        inputs.insert(inputs.end(), v.begin(), v.end());
      }
      auto y = outputParams();
      inputs.insert(inputs.end(), y.begin(), y.end());
      if (bias != nullptr) inputs.push_back(bias);
      attrs.assign(t->attributes().begin(), t->attributes().end());
      break;
    }
    case QdqGroupKind::kMatMul:
    case QdqGroupKind::kBinary: {
      for (const ir::Node* n : {group.inputs[0], group.inputs[1]}) {
        auto v = quantized(n);
        inputs.insert(inputs.end(), v.begin(), v.end());
      }
      auto y = outputParams();
      inputs.insert(inputs.end(), y.begin(), y.end());
      break;
    }
    case QdqGroupKind::kAveragePool: {
      inputs = quantized(group.inputs[0]);
      auto y = outputParams();
      inputs.insert(inputs.end(), y.begin(), y.end());
      if (t->opType() == "GlobalAveragePool") {
        attrs.push_back(ir::Attribute::makeInt("channels_last", 0));
      } else {
        for (const ir::Attribute& a : t->attributes()) {
          if (a.name != "dilations") attrs.push_back(a);
        }
      }
      break;
    }
    case QdqGroupKind::kConcat: {
      inputs = outputParams();
      for (const ir::Node* n : group.inputs) {
        auto v = quantized(n);
        inputs.insert(inputs.end(), v.begin(), v.end());
      }
      attrs.push_back(ir::Attribute::makeInt("axis", t->attrInt("axis", 0)));
      break;
    }
    case QdqGroupKind::kDataMovement: {
      inputs.assign(t->inputs().begin(), t->inputs().end());
      inputs[0] = group.inputs[0]->input(0);
      attrs.assign(t->attributes().begin(), t->attributes().end());
      break;
    }
    case QdqGroupKind::kConvTranspose:
    case QdqGroupKind::kGemm:
    case QdqGroupKind::kUnary: return nullptr;  // no QOperator form (checked above)
  }
  return ir::replaceChain(graph, chain, q->output(0), group.rule.qoperatorOp, group.rule.qoperatorDomain, t->name(),
                          inputs, std::move(attrs));
}

int64_t rewriteQdqGroupsAsQOperator(ir::Graph& graph, const QdqGroupOptions& options) {
  std::vector<ir::Node*> quantizes;
  for (ir::Node* n : graph.nodes()) {
    if (ir::isDefaultDomainOp(*n, {"QuantizeLinear"})) quantizes.push_back(n);
  }
  int64_t rewritten = 0;
  for (ir::Node* q : quantizes) {
    QdqGroupMatch m = matchQdqGroup(*q, options);
    if (!m.group || !m.group->hasQOperatorForm()) continue;
    if (rewriteAsQOperator(graph, *m.group, options.scope) != nullptr) ++rewritten;
  }
  return rewritten;
}

}  // namespace whittle::quant
