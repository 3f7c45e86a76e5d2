// The QDQ lowering (see lowering.h): quantized groups of a QDQ model become the QOperator ops
// that the int8 kernels run, so that a QDQ model computes in int8 instead of simulating it.
//
// Before: yq = Q(Conv(DQ(xq), DQ(wq), DQ(bq)))   After: yq = QLinearConv(xq, xs, xz, wq, ws, wz, ys, yz, b')
//         b' = round(DQ(bq) / (xs * ws)) (equal to bq when bs = xs * ws, as quantizers write it)
// Before: yq = Q(Relu(Conv(...)))                After: the same, when Q's zero point is the lowest
//         value of its type (the Relu is then the saturation of the Q)
// Before: yq = Q(MatMul(DQ(aq), DQ(bq)))         After: yq = QLinearMatMul(aq, .., bq, .., ys, yz)
// Before: yq = Q(Add(DQ(aq), DQ(bq)))            After: yq = com.microsoft.QLinearAdd(..); Mul likewise;
//         GlobalAveragePool, AveragePool and Concat become QLinearGlobalAveragePool,
//         QLinearAveragePool and QLinearConcat
// Before: yq = Q(MaxPool(DQ(xq)))                After: yq = MaxPool(xq), when Q and DQ have the same
//         scale and zero point (also Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Identity)
// Then:   a DequantizeLinear of a constant (weights of ops left in float) becomes a float constant.
//
// Requires: per-tensor activation scales and zero points (constants); constant weights with a
// per-tensor or per-output-channel scale; every value fused away read only by the group and
// not pinned (graph outputs, kept values).
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {

namespace {

constexpr const char* kMicrosoft = "com.microsoft";

bool isOp(const ir::Node* n, std::string_view op) { return n != nullptr && ir::isDefaultDomainOp(*n, {op}); }

bool isQuantType(ir::DataType t) {
  return t == ir::DataType::kUint8 || t == ir::DataType::kInt8;
}

// A session's graph: every initializer is a constant, graph input or not.
constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

/// The quantization of one Q or DQ node: its scale, zero point and quantized type.
struct QuantParams {
  ir::Node* node = nullptr;
  ir::Value* scale = nullptr;
  ir::Value* zeroPoint = nullptr;  // nullptr: zero of `type`
  ir::DataType type = ir::DataType::kUndefined;
  bool perTensor = true;
  int64_t axis = 1;  // normalized when the rank is known, else as written
};

/// Reads a Q/DQ node's parameters when they are constants of the supported kinds.
std::optional<QuantParams> paramsOf(ir::Node* n, ir::DataType dataType) {
  if (n == nullptr || n->numInputs() < 2 || n->attrInt("block_size", 0) != 0) return std::nullopt;
  QuantParams p;
  p.node = n;
  p.scale = n->input(1);
  p.zeroPoint = n->input(2);
  const ir::Tensor* s = ir::constantOf(p.scale, kSession);
  if (s == nullptr || s->dtype() != ir::DataType::kFloat || s->numel() == 0) return std::nullopt;
  const ir::Tensor* z = ir::constantOf(p.zeroPoint, kSession);
  if (p.zeroPoint != nullptr && (z == nullptr || z->numel() != s->numel())) return std::nullopt;
  p.type = z != nullptr ? z->dtype() : dataType;
  if (z == nullptr && n->opType() == "QuantizeLinear") {
    p.type = static_cast<ir::DataType>(n->attrInt("output_dtype", static_cast<int64_t>(ir::DataType::kUint8)));
  }
  p.perTensor = s->numel() == 1;
  p.axis = n->attrInt("axis", 1);
  return p;
}

/// The DequantizeLinear producing `v` with an int8/uint8 input, or nullopt.
std::optional<QuantParams> dequantized(const ir::Value* v, bool perTensorOnly) {
  if (v == nullptr || !isOp(v->producer(), "DequantizeLinear")) return std::nullopt;
  ir::Node* dq = v->producer();
  const ir::Value* data = dq->input(0);
  if (data == nullptr) return std::nullopt;
  ir::DataType dataType = data->constant() ? data->constant()->dtype() : data->type().dtype;
  auto p = paramsOf(dq, dataType);
  if (!p || !isQuantType(p->type) || (dataType != ir::DataType::kUndefined && dataType != p->type)) return std::nullopt;
  if (perTensorOnly && !p->perTensor) return std::nullopt;
  return p;
}

double scalarOf(const ir::Value* v, int64_t i = 0) {
  const ir::Tensor* t = ir::constantOf(v, kSession);
  return t->numel() == 1 ? t->valueAsDouble(0) : t->valueAsDouble(i);
}

int64_t zeroPointOf(const QuantParams& p, int64_t i = 0) {
  return p.zeroPoint == nullptr ? 0 : static_cast<int64_t>(scalarOf(p.zeroPoint, i));
}

int64_t lowestOf(ir::DataType t) {
  return t == ir::DataType::kUint8 ? 0 : -128;
}

/// Whether two per-tensor quantizations are the same (scale bits, zero point, type).
bool sameParams(const QuantParams& a, const QuantParams& b) {
  if (!a.perTensor || !b.perTensor || a.type != b.type) return false;
  const float sa = ir::constantOf(a.scale, kSession)->data<float>()[0];
  const float sb = ir::constantOf(b.scale, kSession)->data<float>()[0];
  return std::memcmp(&sa, &sb, sizeof(float)) == 0 && zeroPointOf(a) == zeroPointOf(b);
}

class QdqLowering {
 public:
  QdqLowering(ir::Graph& graph, const std::vector<std::string>& keep) : graph_(graph) {
    for (const std::string& name : keep) {
      if (const ir::Value* v = graph.findValue(name)) keep_.insert(v);
    }
  }

  void run() {
    std::vector<ir::Node*> quantizes;
    for (ir::Node* n : graph_.nodes()) {
      if (isOp(n, "QuantizeLinear") && n->output(0) != nullptr) quantizes.push_back(n);
    }
    for (ir::Node* q : quantizes) lowerGroupAt(q);
    removeDeadDequantizes();
    foldConstantDequantizes();
  }

 private:
  bool pinned(const ir::Value* v) const {
    return v->isGraphOutput() || v->isGraphInput() || v->isInitializer() || keep_.contains(v) || v->hasImplicitUses();
  }
  /// `v` may disappear: one reader (the group) and not pinned.
  bool internal(const ir::Value* v) const { return v != nullptr && ir::onlyUse(v) != nullptr && !pinned(v); }

  /// The zero point as a value: the given one, or a new zero constant of the type.
  ir::Value* zeroPointValue(const QuantParams& p) {
    if (p.zeroPoint != nullptr) return p.zeroPoint;
    ir::Tensor zero(p.type, {});
    return graph_.addInitializer(graph_.uniqueValueName(p.scale->name() + "_zero_point"), zero);
  }

  void lowerGroupAt(ir::Node* q);
  bool lowerConv(ir::Node* q, const QuantParams& yq, std::vector<ir::Node*> chain);
  bool lowerMatMul(ir::Node* q, const QuantParams& yq, ir::Node* mm);
  bool lowerBinary(ir::Node* q, const QuantParams& yq, ir::Node* op);
  bool lowerPool(ir::Node* q, const QuantParams& yq, ir::Node* op);
  bool lowerConcat(ir::Node* q, const QuantParams& yq, ir::Node* op);
  bool lowerPassThrough(ir::Node* q, const QuantParams& yq, ir::Node* op);
  ir::Value* requantizedBias(const ir::Value* bias, const QuantParams& x, const QuantParams& w, int64_t m);
  void removeDeadDequantizes();
  void foldConstantDequantizes();

  ir::Graph& graph_;
  std::unordered_set<const ir::Value*> keep_;
};

void QdqLowering::lowerGroupAt(ir::Node* q) {
  const ir::Value* in = q->input(0);
  if (in == nullptr || in->producer() == nullptr || !internal(in)) return;
  auto yq = paramsOf(q, ir::DataType::kUndefined);
  if (!yq || !yq->perTensor || !isQuantType(yq->type) || q->numOutputs() != 1) return;
  ir::Node* op = in->producer();
  if (op->numOutputs() != 1) return;
  const std::string& type = op->opType();
  if (!op->domain().empty()) return;
  if (type == "Relu") {
    // Relu between a Conv and a Q whose zero point is the type's lowest value: the Q's
    // saturation at zero does the Relu.
    ir::Node* conv = op->input(0) ? op->input(0)->producer() : nullptr;
    if (zeroPointOf(*yq) == lowestOf(yq->type) && isOp(conv, "Conv") && internal(op->input(0))) {
      lowerConv(q, *yq, {conv, op, q});
    }
    return;
  }
  if (type == "Conv") {
    lowerConv(q, *yq, {op, q});
  } else if (type == "MatMul") {
    lowerMatMul(q, *yq, op);
  } else if (type == "Add" || type == "Mul") {
    lowerBinary(q, *yq, op);
  } else if (type == "GlobalAveragePool" || type == "AveragePool") {
    lowerPool(q, *yq, op);
  } else if (type == "Concat") {
    lowerConcat(q, *yq, op);
  } else if (type == "MaxPool" || type == "Reshape" || type == "Transpose" || type == "Flatten" ||
             type == "Squeeze" || type == "Unsqueeze" || type == "Identity") {
    lowerPassThrough(q, *yq, op);
  }
}

/// An int32 bias for QLinearConv from the Conv's bias input (a DQ of an int32 constant or a
/// float constant): round(b / (xs * ws[m])), half to even, saturated. nullptr when unusable.
ir::Value* QdqLowering::requantizedBias(const ir::Value* bias, const QuantParams& x, const QuantParams& w, int64_t m) {
  std::vector<double> values(static_cast<size_t>(m));
  if (const ir::Tensor* f = ir::constantOf(bias, kSession); f != nullptr) {
    if (f->dtype() != ir::DataType::kFloat || f->numel() != m) return nullptr;
    for (int64_t i = 0; i < m; ++i) values[static_cast<size_t>(i)] = f->data<float>()[i];
  } else {
    if (bias == nullptr || !isOp(bias->producer(), "DequantizeLinear")) return nullptr;
    const ir::Node* dq = bias->producer();
    const ir::Tensor* data = ir::constantOf(dq->input(0), kSession);
    auto p = paramsOf(const_cast<ir::Node*>(dq), ir::DataType::kInt32);
    if (data == nullptr || !p || data->dtype() != ir::DataType::kInt32 || data->numel() != m) return nullptr;
    if (!p->perTensor && ir::constantOf(p->scale, kSession)->numel() != m) return nullptr;
    for (int64_t i = 0; i < m; ++i) {
      const double zp = static_cast<double>(zeroPointOf(*p, p->perTensor ? 0 : i));
      // In float, as DequantizeLinear computes it.
      const float scale = static_cast<float>(scalarOf(p->scale, i));
      values[static_cast<size_t>(i)] =
          static_cast<float>(static_cast<float>(static_cast<double>(data->data<int32_t>()[i]) - zp) * scale);
    }
  }
  const float xs = static_cast<float>(scalarOf(x.scale));
  ir::Tensor out(ir::DataType::kInt32, {m});
  int32_t* dst = out.mutableData<int32_t>();
  for (int64_t i = 0; i < m; ++i) {
    const float s = xs * static_cast<float>(scalarOf(w.scale, w.perTensor ? 0 : i));
    if (!(s > 0.0f)) return nullptr;
    double r = std::nearbyint(values[static_cast<size_t>(i)] / static_cast<double>(s));
    r = std::fmin(std::fmax(r, static_cast<double>(std::numeric_limits<int32_t>::min())),
                  static_cast<double>(std::numeric_limits<int32_t>::max()));
    dst[i] = static_cast<int32_t>(r);
  }
  return graph_.addInitializer(graph_.uniqueValueName(bias->name() + "_int32"), std::move(out));
}

bool QdqLowering::lowerConv(ir::Node* q, const QuantParams& yq, std::vector<ir::Node*> chain) {
  ir::Node* conv = chain.front();
  auto x = dequantized(conv->input(0), true);
  auto w = dequantized(conv->input(1), false);
  if (!x || !w || ir::constantOf(w->node->input(0), kSession) == nullptr) return false;
  const ir::Tensor& wq = *ir::constantOf(w->node->input(0), kSession);
  if (wq.rank() < 3) return false;
  const int64_t m = wq.dims()[0];
  if (!w->perTensor && (ir::constantOf(w->scale, kSession)->numel() != m || (w->axis != 0 && w->axis != -wq.rank()))) return false;
  ir::Value* bias = nullptr;
  if (conv->input(2) != nullptr) {
    bias = requantizedBias(conv->input(2), *x, *w, m);
    if (bias == nullptr) return false;
  }
  std::vector<ir::Value*> inputs = {x->node->input(0), x->scale,  zeroPointValue(*x), w->node->input(0),
                                    w->scale,          zeroPointValue(*w), q->input(1),  zeroPointValue(yq)};
  if (bias != nullptr) inputs.push_back(bias);
  std::vector<ir::Attribute> attrs(conv->attributes().begin(), conv->attributes().end());
  ir::replaceChain(graph_, chain, q->output(0), "QLinearConv", "", conv->name(), inputs, std::move(attrs));
  return true;
}

bool QdqLowering::lowerMatMul(ir::Node* q, const QuantParams& yq, ir::Node* mm) {
  auto a = dequantized(mm->input(0), true);
  auto b = dequantized(mm->input(1), false);
  if (!a || !b) return false;
  if (!b->perTensor) {
    // Per column of a constant 2-D B (axis 1): what QLinearMatMul's 1-D b_scale means.
    const ir::Tensor* data = ir::constantOf(b->node->input(0), kSession);
    if (data == nullptr || data->rank() != 2 || (b->axis != 1 && b->axis != -1) ||
        ir::constantOf(b->scale, kSession)->numel() != data->dims()[1]) {
      return false;
    }
  }
  std::vector<ir::Value*> inputs = {a->node->input(0), a->scale, zeroPointValue(*a), b->node->input(0),
                                    b->scale,          zeroPointValue(*b), q->input(1), zeroPointValue(yq)};
  ir::replaceChain(graph_, {mm, q}, q->output(0), "QLinearMatMul", "", mm->name(), inputs, {});
  return true;
}

bool QdqLowering::lowerBinary(ir::Node* q, const QuantParams& yq, ir::Node* op) {
  auto a = dequantized(op->input(0), true);
  auto b = dequantized(op->input(1), true);
  if (!a || !b || a->type != yq.type || b->type != yq.type) return false;
  std::vector<ir::Value*> inputs = {a->node->input(0), a->scale, zeroPointValue(*a), b->node->input(0),
                                    b->scale,          zeroPointValue(*b), q->input(1), zeroPointValue(yq)};
  ir::replaceChain(graph_, {op, q}, q->output(0), op->opType() == "Add" ? "QLinearAdd" : "QLinearMul", kMicrosoft,
               op->name(), inputs, {});
  return true;
}

bool QdqLowering::lowerPool(ir::Node* q, const QuantParams& yq, ir::Node* op) {
  auto x = dequantized(op->input(0), true);
  if (!x || x->type != yq.type) return false;
  std::vector<ir::Value*> inputs = {x->node->input(0), x->scale, zeroPointValue(*x), q->input(1), zeroPointValue(yq)};
  std::vector<ir::Attribute> attrs;
  if (op->opType() == "GlobalAveragePool") {
    attrs.push_back(ir::Attribute::makeInt("channels_last", 0));
    ir::replaceChain(graph_, {op, q}, q->output(0), "QLinearGlobalAveragePool", kMicrosoft, op->name(), inputs,
                 std::move(attrs));
    return true;
  }
  for (int64_t d : op->attrInts("dilations")) {
    if (d != 1) return false;  // QLinearAveragePool has no dilations
  }
  for (const ir::Attribute& a : op->attributes()) {
    if (a.name != "dilations") attrs.push_back(a);
  }
  ir::replaceChain(graph_, {op, q}, q->output(0), "QLinearAveragePool", kMicrosoft, op->name(), inputs, std::move(attrs));
  return true;
}

bool QdqLowering::lowerConcat(ir::Node* q, const QuantParams& yq, ir::Node* op) {
  std::vector<ir::Value*> inputs = {q->input(1), zeroPointValue(yq)};
  for (const ir::Value* in : op->inputs()) {
    auto x = dequantized(in, true);
    if (!x || x->type != yq.type) return false;
    inputs.insert(inputs.end(), {x->node->input(0), x->scale, zeroPointValue(*x)});
  }
  ir::replaceChain(graph_, {op, q}, q->output(0), "QLinearConcat", kMicrosoft, op->name(), inputs,
               {ir::Attribute::makeInt("axis", op->attrInt("axis", 0))});
  return true;
}

bool QdqLowering::lowerPassThrough(ir::Node* q, const QuantParams& yq, ir::Node* op) {
  auto x = dequantized(op->input(0), true);
  if (!x || !sameParams(*x, yq)) return false;
  std::vector<ir::Value*> inputs(op->inputs().begin(), op->inputs().end());
  inputs[0] = x->node->input(0);
  std::vector<ir::Attribute> attrs(op->attributes().begin(), op->attributes().end());
  ir::replaceChain(graph_, {op, q}, q->output(0), op->opType(), "", op->name(), inputs, std::move(attrs));
  return true;
}

void QdqLowering::removeDeadDequantizes() {
  graph_.forEachNode([&](ir::Node& n) {
    if (isOp(&n, "DequantizeLinear") && n.output(0) != nullptr && !n.output(0)->hasUses() && !pinned(n.output(0))) {
      graph_.eraseNode(&n);
    }
  });
}

void QdqLowering::foldConstantDequantizes() {
  graph_.forEachNode([&](ir::Node& n) {
    if (!isOp(&n, "DequantizeLinear") || n.output(0) == nullptr || pinned(n.output(0))) return;
    const ir::Tensor* data = ir::constantOf(n.input(0), kSession);
    if (data == nullptr) return;
    if (!isQuantType(data->dtype()) && data->dtype() != ir::DataType::kInt32) return;
    auto p = paramsOf(&n, data->dtype());
    if (!p || p->type != data->dtype()) return;
    const int64_t count = ir::constantOf(p->scale, kSession)->numel();
    int64_t axis = p->axis < 0 ? p->axis + data->rank() : p->axis;
    if (count > 1 && (axis < 0 || axis >= data->rank() || data->dims()[static_cast<size_t>(axis)] != count)) return;
    int64_t inner = 1;
    for (int64_t d = axis + 1; count > 1 && d < data->rank(); ++d) inner *= data->dims()[static_cast<size_t>(d)];
    ir::Tensor out(ir::DataType::kFloat, data->dims());
    float* dst = out.mutableData<float>();
    for (int64_t i = 0; i < data->numel(); ++i) {
      const int64_t c = count > 1 ? (i / inner) % count : 0;
      const float scale = static_cast<float>(scalarOf(p->scale, c));
      const double q = data->valueAsDouble(i) - static_cast<double>(zeroPointOf(*p, c));
      dst[i] = static_cast<float>(q) * scale;
    }
    ir::Value* folded = graph_.addInitializer(graph_.uniqueValueName(n.output(0)->name() + "_folded"), std::move(out));
    graph_.replaceAllUsesWith(n.output(0), folded);
    graph_.eraseNode(&n);
  });
}

}  // namespace

void lowerQdqGroups(ir::Graph& graph, const std::vector<std::string>& keep) {
  QdqLowering(graph, keep).run();
}

}  // namespace whittle::runtime
