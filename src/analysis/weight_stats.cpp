// Weight sparsity (exact zeros, or the zero point of a quantized weight) and the quantization
// form of a model (QDQ, QOperator, dynamic, weight-only).
#include <algorithm>

#include "analysis/stats_internal.h"

namespace whittle::analysis::detail {
namespace {

using ir::DataType;

int64_t normalizeAxis(int64_t axis, int64_t rank) {
  return axis < 0 ? axis + rank : axis;
}

/// A constant weight found behind a compute op's input, with the zero point that makes an
/// element "zero" when the weight is quantized.
struct TracedWeight {
  const ir::Value* source = nullptr;
  const ir::Tensor* tensor = nullptr;
  const ir::Tensor* zeroPoint = nullptr;
  int64_t zeroPointAxis = 0;  ///< Axis of `tensor` that a per-channel zero point runs along.
  const ir::Tensor* scale = nullptr;
};

std::optional<TracedWeight> traceWeight(const ir::Value* v) {
  TracedWeight w;
  for (int depth = 0; v != nullptr && depth < 16; ++depth) {
    if (const ir::Tensor* t = constantTensor(v)) {
      w.source = v;
      w.tensor = t;
      w.zeroPointAxis = normalizeAxis(w.zeroPointAxis, t->rank());
      return w;
    }
    const ir::Node* p = v->producer();
    if (p == nullptr || !isPassThrough(*p, 0)) return std::nullopt;
    if (p->opType() == "DequantizeLinear") {
      w.scale = constantTensor(p->input(1));
      w.zeroPoint = constantTensor(p->input(2));
      w.zeroPointAxis = p->attrInt("axis", 1);
    }
    v = p->input(0);
  }
  return std::nullopt;
}

/// Where the main weight of a compute op sits: its input, and for quantized ops the inputs
/// of its scale and zero point (-1: none).
struct WeightSlot {
  int weight;
  int scale;
  int zeroPoint;
};

std::optional<WeightSlot> mainWeightSlot(const ir::Node& n, bool second = false) {
  const std::string& op = n.opType();
  if (!isDefaultDomain(n)) return std::nullopt;
  bool matmulLike = op == "MatMul" || op == "Gemm" || op == "QLinearMatMul" || op == "MatMulInteger";
  if (second && !matmulLike) return std::nullopt;
  if (op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul")
    return WeightSlot{second ? 0 : 1, -1, -1};
  if (op == "QLinearConv" || op == "QLinearMatMul") return second ? WeightSlot{0, 1, 2} : WeightSlot{3, 4, 5};
  if (op == "ConvInteger" || op == "MatMulInteger") return second ? WeightSlot{0, -1, 2} : WeightSlot{1, -1, 3};
  return std::nullopt;
}

/// The weight of a compute op: its usual weight input, or for MatMul-like ops a constant
/// first operand.
std::optional<std::pair<TracedWeight, WeightSlot>> computeWeight(const ir::Node& n) {
  for (bool second : {false, true}) {
    auto slot = mainWeightSlot(n, second);
    if (!slot) return std::nullopt;
    auto w = traceWeight(n.input(static_cast<size_t>(slot->weight)));
    if (!w) continue;
    if (slot->zeroPoint >= 0) {  // quantized op: its own zero point, along the output channel
      w->zeroPoint = constantTensor(n.input(static_cast<size_t>(slot->zeroPoint)));
      w->scale = constantTensor(n.input(static_cast<size_t>(slot->scale)));
      bool conv = n.opType() == "QLinearConv" || n.opType() == "ConvInteger";
      w->zeroPointAxis = conv ? 0 : std::max<int64_t>(0, w->tensor->rank() - 1);
    }
    return std::make_pair(*w, *slot);
  }
  return std::nullopt;
}

int64_t integerElement(const ir::Tensor& t, int64_t i) {
  if (t.dtype() == DataType::kInt4 || t.dtype() == DataType::kUint4) {
    auto byte = static_cast<uint8_t>(t.rawData()[i / 2]);
    int64_t nibble = (i % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
    return t.dtype() == DataType::kInt4 && nibble >= 8 ? nibble - 16 : nibble;
  }
  return static_cast<int64_t>(t.valueAsDouble(i));
}

int64_t countZeros(const TracedWeight& w) {
  const ir::Tensor& t = *w.tensor;
  if (!isParameterDtype(t.dtype()) || t.byteSize() < ir::storageBytes(t.dtype(), t.numel())) return 0;
  const ir::Tensor* zp = w.zeroPoint;
  if (zp != nullptr && (zp->numel() == 0 || !isParameterDtype(zp->dtype()))) zp = nullptr;
  if (zp == nullptr && ir::isFloatingPoint(t.dtype())) {
    int64_t zeros = 0;
    for (int64_t i = 0; i < t.numel(); ++i) zeros += t.valueAsDouble(i) == 0.0 ? 1 : 0;
    return zeros;
  }
  int64_t inner = 1, channels = 1;
  if (zp != nullptr && zp->numel() > 1) {
    if (w.zeroPointAxis < 0 || w.zeroPointAxis >= t.rank() || t.dims()[w.zeroPointAxis] != zp->numel()) return 0;
    inner = product(t.dims(), static_cast<size_t>(w.zeroPointAxis) + 1);
    channels = zp->numel();
  }
  int64_t zeros = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t z = zp == nullptr ? 0 : integerElement(*zp, channels > 1 ? (i / inner) % channels : 0);
    zeros += integerElement(t, i) == z ? 1 : 0;
  }
  return zeros;
}

}  // namespace

SparsityStats computeSparsity(const ir::Graph& g) {
  SparsityStats stats;
  std::unordered_set<const ir::Value*> counted;
  for (const ir::Node* n : g.nodes()) {
    auto found = computeWeight(*n);
    if (!found) continue;
    const TracedWeight& w = found->first;
    LayerSparsity layer{nodeLabel(*n), qualifiedOpType(*n), w.source->name(), w.tensor->numel(), countZeros(w)};
    if (counted.insert(w.source).second) {
      stats.weightElements += layer.elements;
      stats.zeroElements += layer.zeros;
    }
    stats.layers.push_back(std::move(layer));
  }
  return stats;
}

// ---------------------------------------------------------------- quantization

QuantStats computeQuantization(const ir::Graph& g) {
  QuantStats q;
  bool quantizesActivations = false, dequantizesConstants = false, integerOps = false, dynamicOps = false;
  auto addWeight = [&q](const ir::Tensor& weight, const ir::Tensor* scale) {
    ++q.weightDtypes[std::string(ir::dataTypeName(weight.dtype()))];
    ++(scale != nullptr && scale->numel() > 1 ? q.perChannelWeights : q.perTensorWeights);
  };
  for (const ir::Node* n : g.nodes()) {
    const std::string& op = n->opType();
    if (op == "QuantizeLinear") {
      ++q.quantizeLinear;
      if (constantTensor(n->input(0)) == nullptr) quantizesActivations = true;
    } else if (op == "DequantizeLinear") {
      ++q.dequantizeLinear;
      const ir::Tensor* t = constantTensor(n->input(0));
      if (t == nullptr || n->output(0) == nullptr) continue;
      dequantizesConstants = true;
      std::vector<ir::Value::Use> uses;
      std::unordered_set<const ir::Value*> seen;
      finalUses(n->output(0), uses, seen);
      bool isWeight = std::any_of(uses.begin(), uses.end(), [](const ir::Value::Use& u) {
        auto a = mainWeightSlot(*u.user), b = mainWeightSlot(*u.user, true);
        return (a && a->weight == u.index) || (b && b->weight == u.index);
      });
      if (isWeight) addWeight(*t, constantTensor(n->input(1)));
    } else if (op == "DynamicQuantizeLinear") {
      ++q.dynamicQuantizeLinear;
    }
    bool qlinear = op.rfind("QLinear", 0) == 0 || op == "ConvInteger" || op == "MatMulInteger" || op == "QGemm";
    if (qlinear) {
      ++q.qlinearOps;
      integerOps = true;
    }
    if (op == "DynamicQuantizeMatMul" || op == "DynamicQuantizeLSTM") dynamicOps = true;
    if (op == "QGemm" && n->domain() == "com.microsoft") {
      if (const ir::Tensor* b = constantTensor(n->input(3))) addWeight(*b, constantTensor(n->input(4)));
    } else if (auto slot = mainWeightSlot(*n); slot && slot->zeroPoint >= 0) {
      if (auto found = computeWeight(*n)) {
        const ir::Tensor* scale = found->first.scale;
        // ConvInteger/MatMulInteger have no scale: per-channel when the zero point is.
        if (found->second.scale < 0) scale = found->first.zeroPoint;
        addWeight(*found->first.tensor, scale);
      }
    }
    for (const ir::Value* in : n->inputs()) {
      if (in == nullptr || in->producer() == nullptr || in->producer()->opType() != "DynamicQuantizeLinear") continue;
      if (op == "MatMulInteger" || op == "ConvInteger") dynamicOps = true;
    }
  }
  if (dynamicOps)
    q.form = QuantForm::kDynamic;
  else if (integerOps)
    q.form = QuantForm::kQOperator;
  else if (quantizesActivations && q.dequantizeLinear > 0)
    q.form = QuantForm::kQdq;
  else if (dequantizesConstants)
    q.form = QuantForm::kWeightOnly;
  return q;
}

}  // namespace whittle::analysis::detail
