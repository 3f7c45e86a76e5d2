// Shape rules of elementwise ops: unary ops and activations, broadcasting binary and variadic
// ops (with the arithmetic of shape tensors), comparisons and logic, Cast, normalizations,
// softmax, Dropout, the quantization ops and the elementwise QLinear ops of com.microsoft.
#include <algorithm>
#include <functional>
#include <limits>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

constexpr std::string_view kMicrosoft = "com.microsoft";

// ---------------------------------------------------------------- same shape

/// Output 0 has the shape and element type of input 0.
void sameAsInput(NodeContext& c) {
  c.passThrough(0);
}

/// Same shape, and the tracked values too (Identity).
void identity(NodeContext& c) {
  c.passThrough(0, /*values=*/true);
}

/// Same shape, bool elements (IsNaN, IsInf, Not).
void boolLike(NodeContext& c) {
  c.set(0, DataType::kBool, c.has(0) && c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
}

void cast(NodeContext& c) {
  int64_t to = c.node().attrInt("to", 0);
  DataType dtype = isKnownDataType(static_cast<int32_t>(to)) ? static_cast<DataType>(to) : DataType::kUndefined;
  c.set(0, dtype, c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
  if (c.values(0) != nullptr && (dtype == DataType::kInt64 || dtype == DataType::kInt32)) c.setValues(0, *c.values(0));
}

void castLike(NodeContext& c) {
  c.set(0, c.dtype(1), c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
  if (c.values(0) != nullptr && (c.dtype(1) == DataType::kInt64 || c.dtype(1) == DataType::kInt32)) {
    c.setValues(0, *c.values(0));
  }
}

// ---------------------------------------------------------------- broadcasting

/// The broadcast shape of the given inputs; nullopt when one is absent or of unknown rank.
std::optional<SymShape> broadcastInputs(const NodeContext& c, const std::vector<size_t>& inputs) {
  std::vector<const SymShape*> shapes;
  for (size_t i : inputs) {
    if (c.shape(i) == nullptr) return std::nullopt;
    shapes.push_back(c.shape(i));
  }
  if (shapes.empty()) return std::nullopt;
  return broadcast(shapes);
}

std::vector<size_t> allInputs(const NodeContext& c) {
  std::vector<size_t> inputs;
  for (size_t i = 0; i < c.numInputs(); ++i) {
    if (c.has(i)) inputs.push_back(i);
  }
  return inputs;
}

/// Elementwise arithmetic on tracked values (rank <= 1, sizes equal or 1).
void combineValues(NodeContext& c, const std::vector<size_t>& inputs,
                   const std::function<SymInt(const std::vector<SymInt>&)>& f) {
  std::vector<const std::vector<SymInt>*> vals;
  size_t n = 1;
  for (size_t i : inputs) {
    const std::vector<SymInt>* v = c.values(i);
    if (v == nullptr || v->empty()) return;
    if (v->size() != 1 && n != 1 && v->size() != n) return;
    n = std::max(n, v->size());
    vals.push_back(v);
  }
  std::vector<SymInt> out(n);
  std::vector<SymInt> args(vals.size());
  for (size_t k = 0; k < n; ++k) {
    for (size_t j = 0; j < vals.size(); ++j) args[j] = (*vals[j])[vals[j]->size() == 1 ? 0 : k];
    out[k] = f(args);
  }
  c.setValues(0, std::move(out));
}

SymInt divide(const SymInt& a, const SymInt& b) {
  if (a.isConst() && b.isConst()) {
    if (b.value() == 0 || (a.value() == std::numeric_limits<int64_t>::min() && b.value() == -1)) return {};
    return SymInt::of(a.value() / b.value());
  }
  return divExact(a, b);
}

/// Whether a == b: 1, 0, or unknown. Symbolic values are dims, so never negative.
SymInt equal(const SymInt& a, const SymInt& b) {
  if (a == b) return SymInt::of(1);
  if (a.isConst() && b.isConst()) return SymInt::of(0);
  if ((a.isConst() && a.value() < 0 && b.coefficient() > 0) || (b.isConst() && b.value() < 0 && a.coefficient() > 0)) {
    return SymInt::of(0);
  }
  return {};
}

SymInt extreme(const std::vector<SymInt>& args, bool max) {
  SymInt r = args[0];
  for (const SymInt& a : args) {
    if (a == r) continue;
    if (!a.isConst() || !r.isConst()) return {};
    r = SymInt::of(max ? std::max(a.value(), r.value()) : std::min(a.value(), r.value()));
  }
  return r;
}

/// Add, Sub, Mul, Div, Pow, Mod, BitShift, Bitwise*, Max, Min, Sum, Mean, PRelu: the first
/// input's element type over the broadcast shape.
void arithmetic(NodeContext& c) {
  std::vector<size_t> inputs = allInputs(c);
  DataType dtype = DataType::kUndefined;
  for (size_t i : inputs) {
    if (dtype == DataType::kUndefined) dtype = c.dtype(i);
  }
  c.set(0, dtype, broadcastInputs(c, inputs));
  const std::string& op = c.op();
  // The values combine only when every input is there (a node with an input left out is the
  // loader's or the runtime's to refuse, not a reason to read past the list here).
  if (inputs.size() != c.numInputs() || inputs.empty()) return;
  if (inputs.size() < 2 && op != "Max" && op != "Min") return;
  if (op == "Add") {
    combineValues(c, inputs, [](const std::vector<SymInt>& a) { return a[0] + a[1]; });
  } else if (op == "Sub") {
    combineValues(c, inputs, [](const std::vector<SymInt>& a) { return a[0] - a[1]; });
  } else if (op == "Mul") {
    combineValues(c, inputs, [](const std::vector<SymInt>& a) { return a[0] * a[1]; });
  } else if (op == "Div") {
    combineValues(c, inputs, [](const std::vector<SymInt>& a) { return divide(a[0], a[1]); });
  } else if (op == "Max" || op == "Min") {
    bool max = op == "Max";
    combineValues(c, inputs, [max](const std::vector<SymInt>& a) { return extreme(a, max); });
  }
}

/// PRelu: the slope broadcasts to X, so the output is X.
void prelu(NodeContext& c) {
  c.passThrough(0);
}

/// Equal, Less, Greater, ..., And, Or, Xor: bool over the broadcast shape.
void comparison(NodeContext& c) {
  std::vector<size_t> inputs = allInputs(c);
  c.set(0, DataType::kBool, broadcastInputs(c, inputs));
  if (c.op() == "Equal") combineValues(c, inputs, [](const std::vector<SymInt>& a) { return equal(a[0], a[1]); });
}

void where(NodeContext& c) {
  c.set(0, c.dtype(1) != DataType::kUndefined ? c.dtype(1) : c.dtype(2), broadcastInputs(c, {0, 1, 2}));
  combineValues(c, {0, 1, 2}, [](const std::vector<SymInt>& a) {
    if (!a[0].isConst()) return a[1] == a[2] ? a[1] : SymInt();
    return a[0].value() != 0 ? a[1] : a[2];
  });
}

void neg(NodeContext& c) {
  c.passThrough(0);
  if (const std::vector<SymInt>* v = c.values(0)) {
    std::vector<SymInt> out;
    for (const SymInt& x : *v) out.push_back(x * SymInt::of(-1));
    c.setValues(0, std::move(out));
  }
}

// ---------------------------------------------------------------- normalization

/// x.shape[:axis] followed by ones: the shape of LayerNormalization's Mean and InvStdDev.
std::optional<SymShape> statsShape(const NodeContext& c, int64_t defaultAxis) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) return std::nullopt;
  auto axis = normalizeAxis(c.node().attrInt("axis", defaultAxis), static_cast<int64_t>(x->size()));
  if (!axis) return std::nullopt;
  SymShape s(x->begin(), x->begin() + *axis);
  s.resize(x->size(), SymInt::of(1));
  return s;
}

DataType stashType(const NodeContext& c) {
  int64_t t = c.node().attrInt("stash_type", 1);
  return isKnownDataType(static_cast<int32_t>(t)) ? static_cast<DataType>(t) : DataType::kUndefined;
}

/// LayerNormalization: Y like X; Mean and InvStdDev in stash_type, reduced over [axis, rank).
void layerNorm(NodeContext& c) {
  c.passThrough(0);
  for (size_t i = 1; i < c.numOutputs(); ++i) c.set(i, stashType(c), statsShape(c, -1));
}

/// ORT's SimplifiedLayerNormalization (default domain) and RMSNormalization: Y like X, then
/// InvStdDev.
void rmsNorm(NodeContext& c) {
  c.passThrough(0);
  if (c.numOutputs() > 1) c.set(1, stashType(c), statsShape(c, -1));
}

/// com.microsoft SkipLayerNormalization and SkipSimplifiedLayerNormalization: output like the
/// input; mean and inv_std_var float over the last axis; input_skip_bias_sum like the input.
void skipLayerNorm(NodeContext& c) {
  c.passThrough(0);
  for (size_t i = 1; i < c.numOutputs(); ++i) {
    if (i == 3) {
      c.set(i, c.dtype(0), c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
    } else {
      c.set(i, DataType::kFloat, statsShape(c, -1));
    }
  }
}

/// BatchNormalization: Y like X; the training outputs (running or saved mean and variance)
/// have the shape of the scale, [C].
void batchNorm(NodeContext& c) {
  c.passThrough(0);
  DataType statType = c.dtype(3) != DataType::kUndefined ? c.dtype(3) : c.dtype(0);
  for (size_t i = 1; i < c.numOutputs(); ++i) {
    c.set(i, statType, c.shape(1) ? std::optional(*c.shape(1)) : std::nullopt);
  }
}

/// Dropout: output like X; the mask is bool from opset 10 on, of X's type before.
void dropout(NodeContext& c) {
  c.passThrough(0, /*values=*/true);
  if (c.numOutputs() > 1) {
    c.set(1, c.opset() >= 10 ? DataType::kBool : c.dtype(0), c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
  }
}

// ---------------------------------------------------------------- quantization

DataType attrType(const NodeContext& c, std::string_view name) {
  int64_t t = c.node().attrInt(name, 0);
  return t != 0 && isKnownDataType(static_cast<int32_t>(t)) ? static_cast<DataType>(t) : DataType::kUndefined;
}

/// QuantizeLinear: x's shape, in the zero point's type; without a zero point, output_dtype
/// (opset 21) or uint8.
void quantizeLinear(NodeContext& c) {
  DataType dtype = DataType::kUint8;
  if (c.has(2)) {
    dtype = c.dtype(2);
  } else if (DataType t = attrType(c, "output_dtype"); t != DataType::kUndefined) {
    dtype = t;
  }
  c.set(0, dtype, c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
}

/// DequantizeLinear: x's shape, in the scale's type (float before opset 19), or output_dtype
/// (opset 23).
void dequantizeLinear(NodeContext& c) {
  DataType dtype = DataType::kFloat;
  if (DataType t = attrType(c, "output_dtype"); t != DataType::kUndefined) {
    dtype = t;
  } else if (c.opset() >= 19 || c.node().domain() == kMicrosoft) {
    dtype = c.dtype(1);
  }
  c.set(0, dtype, c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
}

/// DynamicQuantizeLinear: y uint8 like x, y_scale float scalar, y_zero_point uint8 scalar.
void dynamicQuantizeLinear(NodeContext& c) {
  c.set(0, DataType::kUint8, c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
  c.set(1, DataType::kFloat, SymShape{});
  c.set(2, DataType::kUint8, SymShape{});
}

/// com.microsoft QLinearAdd / QLinearMul: A (0) and B (3) broadcast, in A's type.
void qlinearBinary(NodeContext& c) {
  c.set(0, c.has(7) ? c.dtype(7) : c.dtype(0), broadcastInputs(c, {0, 3}));
}

/// com.microsoft QLinearSigmoid / QLinearLeakyRelu / QLinearSoftmax: like X, in Y's zero point
/// type when given.
void qlinearUnary(NodeContext& c) {
  c.set(0, c.has(4) ? c.dtype(4) : c.dtype(0), c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
}

}  // namespace

void addElementwiseRules(std::vector<RuleEntry>& rules) {
  // clang-format off
  for (std::string_view op : {
           // activations and math
           "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Exp", "Log", "Sqrt", "Erf", "Abs",
           "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
           "Asinh", "Acosh", "Atanh", "Elu", "Selu", "Softplus", "Softsign", "Gelu", "Mish", "Sign",
           "ThresholdedRelu", "Celu", "Shrink", "Swish", "BitwiseNot", "Clip",
           // normalizations and softmax
           "Softmax", "LogSoftmax", "Hardmax", "LRN", "MeanVarianceNormalization", "InstanceNormalization",
           "GroupNormalization", "LpNormalization",
           // same shape as the data input
           "CumSum", "Trilu", "ReverseSequence", "Scatter", "ScatterElements", "ScatterND", "RotaryEmbedding"}) {
    // clang-format on
    rules.push_back({"", op, sameAsInput});
  }
  for (std::string_view op : {"Gelu", "FastGelu", "BiasGelu", "QuickGelu", "RotaryEmbedding"}) {
    rules.push_back({kMicrosoft, op, sameAsInput});
  }
  rules.push_back({"", "Identity", identity});
  rules.push_back({"", "Neg", neg});
  for (std::string_view op : {"IsNaN", "IsInf", "Not"}) rules.push_back({"", op, boolLike});
  rules.push_back({"", "Cast", cast});
  rules.push_back({"", "CastLike", castLike});
  for (std::string_view op : {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr",
                              "BitwiseXor", "Max", "Min", "Sum", "Mean"}) {
    rules.push_back({"", op, arithmetic});
  }
  rules.push_back({"", "PRelu", prelu});
  for (std::string_view op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"}) {
    rules.push_back({"", op, comparison});
  }
  rules.push_back({"", "Where", where});
  rules.push_back({"", "LayerNormalization", layerNorm});
  rules.push_back({kMicrosoft, "LayerNormalization", layerNorm});
  rules.push_back({"", "SimplifiedLayerNormalization", rmsNorm});
  rules.push_back({kMicrosoft, "SimplifiedLayerNormalization", rmsNorm});
  rules.push_back({"", "RMSNormalization", rmsNorm});
  rules.push_back({kMicrosoft, "SkipLayerNormalization", skipLayerNorm});
  rules.push_back({kMicrosoft, "SkipSimplifiedLayerNormalization", skipLayerNorm});
  rules.push_back({"", "BatchNormalization", batchNorm});
  rules.push_back({"", "Dropout", dropout});
  rules.push_back({"", "QuantizeLinear", quantizeLinear});
  rules.push_back({kMicrosoft, "QuantizeLinear", quantizeLinear});
  rules.push_back({"", "DequantizeLinear", dequantizeLinear});
  rules.push_back({kMicrosoft, "DequantizeLinear", dequantizeLinear});
  rules.push_back({"", "DynamicQuantizeLinear", dynamicQuantizeLinear});
  rules.push_back({kMicrosoft, "QLinearAdd", qlinearBinary});
  rules.push_back({kMicrosoft, "QLinearMul", qlinearBinary});
  for (std::string_view op : {"QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax"}) {
    rules.push_back({kMicrosoft, op, qlinearUnary});
  }
}

}  // namespace whittle::ir::shape
