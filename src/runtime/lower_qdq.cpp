// The QDQ lowering (see lowering.h): quantized groups of a QDQ model become the QOperator ops
// that the int8 kernels run, so that a QDQ model computes in int8 instead of simulating it.
// Which groups there are, and what each becomes, is the QDQ group selector's
// (whittle/quant/qdq_groups.h), which quantize-int8 and its format=qoperator share:
//
// Before: yq = Q(Conv(DQ(xq), DQ(wq), DQ(bq)))   After: yq = QLinearConv(xq, xs, xz, wq, ws, wz, ys, yz, b')
//         b' = round(DQ(bq) / (xs * ws)) (equal to bq when bs = xs * ws, as quantizers write it)
// Before: yq = Q(Relu(Conv(...)))                After: the same, when the Q's saturation is the Relu
//         (its zero point is the lowest value of its type); Clip likewise; after MatMul, Add, Mul too
// Before: yq = Q(MatMul(DQ(aq), DQ(bq)))         After: yq = QLinearMatMul(aq, .., bq, .., ys, yz)
// Before: yq = Q(Add(DQ(aq), DQ(bq)))            After: yq = com.microsoft.QLinearAdd(..); Mul likewise;
//         GlobalAveragePool, AveragePool and Concat become QLinearGlobalAveragePool,
//         QLinearAveragePool and QLinearConcat
// Before: yq = Q(MaxPool(DQ(xq)))                After: yq = MaxPool(xq), when Q and DQ have the same
//         scale and zero point (also Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Identity, Gather)
// Before: y = MaxPool(DQ(xq)), y float           After: y = DQ(MaxPool(xq)) for a positive per-tensor
//         scale (also Split, Slice, Reshape, Transpose, Gather, ...: pushDequantizesDown)
// Before: yq = Q(f(DQ(xq), DQ(xq), ...))       After: yq = QLinearLookup(xq, table) for any chain f of
//         element-wise ops of one 8-bit tensor (lower_qdq_lookup.cpp), before the groups above
// Before: yq = Q(PRelu(DQ(xq), slope))          After: yq = QLinearPRelu(xq, .., slope, ..) for a slope
//         per channel (lower_qdq_prelu.cpp), after the tables
// Before: y = Gemm(DQ(xq), DQ(wq), b), y float or Q(y)   After: com.microsoft QGemm, after the groups
//         above (lower_qdq_gemm.cpp)
// Then:   a DequantizeLinear of a constant (weights of ops left in float) becomes a float constant.
// First:  yq = Q(Transpose(x)) (per tensor, the Transpose read only by Q) becomes
//         yq = Transpose(Q(x)): the same bytes, moved as bytes (a TensorFlow export's NHWC input,
//         which the channels-last int8 plan then reads without moving it at all)
//
// Requires: per-tensor activation scales and zero points (constants); constant weights with a
// per-tensor or per-output-channel scale; every value fused away read only by the group and
// not pinned (graph outputs, kept values).
#include <algorithm>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/quant/qdq_groups.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {

namespace {

// A session's graph: every initializer is a constant, graph input or not.
constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

bool isOp(const ir::Node* n, std::string_view op) { return n != nullptr && ir::isDefaultDomainOp(*n, {op}); }

bool isQuantType(ir::DataType t) { return t == ir::DataType::kUint8 || t == ir::DataType::kInt8; }

class QdqLowering {
 public:
  QdqLowering(ir::Graph& graph, const std::vector<std::string>& keep) : graph_(graph) {
    options_.scope = kSession;
    options_.centredConvWeightsOnly = true;
    for (const std::string& name : keep) {
      if (const ir::Value* v = graph.findValue(name)) options_.keep.insert(v);
    }
  }

  void run() {
    quantizeBeforeTransposes();
    pushDequantizesDown();
    // Element-wise chains first: the QDQ form of SiLU holds a Mul group that would otherwise
    // become a QLinearMul of the input and a separate Sigmoid table.
    lowerQdqLookups(graph_, options_.keep);
    lowerQdqPRelus(graph_, options_.keep);
    quant::rewriteQdqGroupsAsQOperator(graph_, options_);
    lowerQdqGemms(graph_, options_.keep);
    removeDeadDequantizes();
    foldConstantDequantizes();
  }

 private:
  bool pinned(const ir::Value* v) const {
    return v->isGraphOutput() || v->isGraphInput() || v->isInitializer() || options_.keep.contains(v) ||
           v->hasImplicitUses();
  }
  void removeDeadDequantizes();
  void foldConstantDequantizes();
  void pushDequantizesDown();
  void quantizeBeforeTransposes();

  ir::Graph& graph_;
  quant::QdqGroupOptions options_;
};

// Split, Slice, Reshape, Gather, ... of DQ(xq) (per tensor) move bytes instead of floats: the op reads xq
// and a DQ with the same parameters follows each of its outputs. An undilated MaxPool too, for
// a positive scale (DQ is then non-decreasing, so the max commutes with it exactly): densenet121's
// stem pool left float, 0.5 ms of float MaxPool and a DQ of 4x its output a run, where ORT's own
// optimizer pools the bytes. The DQ -> Q pairs this leaves
// fold later (same parameters: nothing; else a requantizing table), and the groups that read
// the new DQs (Concat, Conv, ...) become int8 ops.
void QdqLowering::pushDequantizesDown() {
  std::vector<ir::Node*> candidates;
  for (ir::Node* n : graph_.nodes()) {
    if (ir::isDefaultDomainOp(*n, {"Split", "Slice", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Gather"})) {
      candidates.push_back(n);
    } else if (isOp(n, "MaxPool") && (n->numOutputs() == 1 || n->output(1) == nullptr)) {
      // Order-preserving: with a positive scale, max(DQ(x)) = DQ(max(x)) bit for bit. Not dilated:
      // the byte kernels pool undilated windows (a dilated one would leave oneDNN's float path).
      const std::vector<int64_t> dilations = n->attrInts("dilations");
      if (std::all_of(dilations.begin(), dilations.end(), [](int64_t d) { return d == 1; })) candidates.push_back(n);
    }
  }
  for (ir::Node* n : candidates) {
    ir::Value* x = n->input(0);
    ir::Node* dq = x != nullptr ? x->producer() : nullptr;
    if (!isOp(dq, "DequantizeLinear") || pinned(x) || ir::onlyUse(x) == nullptr) continue;
    if (dq->numInputs() < 2 || dq->attrInt("block_size", 0) != 0) continue;
    const ir::Tensor* scale = ir::constantOf(dq->input(1), kSession);
    if (scale == nullptr || scale->numel() != 1) continue;
    if (isOp(n, "MaxPool") && !(scale->valueAsDouble(0) > 0.0)) continue;
    ir::Value* zp = dq->numInputs() > 2 ? dq->input(2) : nullptr;
    const ir::Tensor* zpc = ir::constantOf(zp, kSession);
    if (zp != nullptr && (zpc == nullptr || zpc->numel() != 1)) continue;
    ir::Value* xq = dq->input(0);
    const ir::DataType type = zpc != nullptr ? zpc->dtype() : xq->dtype();
    if (!isQuantType(type)) continue;
    bool ok = true;
    for (ir::Value* o : n->outputs()) ok = ok && (o == nullptr || !pinned(o));
    if (!ok) continue;
    n->replaceInput(x, xq);
    for (ir::Value* o : n->outputs()) {
      if (o == nullptr) continue;
      std::vector<ir::Value::Use> uses = o->uses();
      std::vector<ir::Value*> inputs = {o, dq->input(1)};
      if (zp != nullptr) inputs.push_back(zp);
      ir::Node* after = graph_.addNode("DequantizeLinear", inputs, {graph_.uniqueValueName(o->name() + "_dequantized")},
                                       graph_.uniqueNodeName(o->name() + "_DequantizeLinear"));
      graph_.moveAfter(after, n);
      ir::Value* d = after->output(0);
      d->mutableType() = o->type();
      o->mutableType().dtype = type;
      for (const ir::Value::Use& u : uses) u.user->replaceInput(o, d);
    }
  }
}

// Q(Transpose(x)) with one scale and zero point quantizes each element on its own, so it equals
// Transpose(Q(x)) byte for byte; the Transpose then moves a quarter of the bytes, and a NHWC ->
// NCHW one in front of an int8 convolution is no move at all in the channels-last int8 plan
// (kernels/cpu/quant_common.h: a Transpose [0, 3, 1, 2] of bytes writes them as they are).
// VWW's MobileNetV1 and MTCNN's R-Net take NHWC images: 17 us of float Transpose a run before.
void QdqLowering::quantizeBeforeTransposes() {
  std::vector<ir::Node*> candidates;
  for (ir::Node* n : graph_.nodes()) {
    if (isOp(n, "QuantizeLinear")) candidates.push_back(n);
  }
  for (ir::Node* q : candidates) {
    ir::Value* tv = q->input(0);
    ir::Node* t = tv != nullptr ? tv->producer() : nullptr;
    if (!isOp(t, "Transpose") || t->numOutputs() != 1 || pinned(tv) || ir::onlyUse(tv) == nullptr) continue;
    ir::Value* yq = q->output(0);
    if (yq == nullptr || pinned(yq) || q->numOutputs() != 1 || q->attrInt("block_size", 0) != 0) continue;
    const ir::Tensor* scale = ir::constantOf(q->input(1), kSession);
    if (scale == nullptr || scale->numel() != 1) continue;
    ir::Value* zp = q->numInputs() > 2 ? q->input(2) : nullptr;
    const ir::Tensor* zpc = ir::constantOf(zp, kSession);
    if (zp != nullptr && (zpc == nullptr || zpc->numel() != 1)) continue;
    const auto type =
        zpc != nullptr
            ? zpc->dtype()
            : static_cast<ir::DataType>(q->attrInt("output_dtype", static_cast<int64_t>(ir::DataType::kUint8)));
    ir::Value* x = t->input(0);
    if (x == nullptr || !isQuantType(type)) continue;
    std::vector<ir::Value*> qInputs = q->inputs();
    qInputs[0] = x;
    ir::Node* q2 =
        graph_.addNode("QuantizeLinear", qInputs, {graph_.uniqueValueName(x->name() + "_quantized")}, "", "", q);
    for (const ir::Attribute& a : q->attributes()) q2->setAttribute(a);
    ir::Value* xq = q2->output(0);
    xq->mutableType() = x->type();
    xq->mutableType().dtype = type;
    ir::Node* t2 = graph_.addNode("Transpose", {xq}, {graph_.uniqueValueName(yq->name() + "_transposed")}, "", "", q);
    for (const ir::Attribute& a : t->attributes()) t2->setAttribute(a);
    ir::Value* ty = t2->output(0);
    ty->mutableType() = yq->type();
    ty->mutableType().dtype = type;
    for (const ir::Value::Use& u : std::vector<ir::Value::Use>(yq->uses())) u.user->replaceInput(yq, ty);
    std::string qName = q->name(), tName = t->name();
    graph_.eraseNode(q);
    graph_.eraseNode(t);
    q2->setName(std::move(qName));  // the profile keeps the model's node names
    t2->setName(std::move(tName));
  }
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
    if (n.numInputs() < 2 || n.attrInt("block_size", 0) != 0) return;
    const ir::Tensor* data = ir::constantOf(n.input(0), kSession);
    if (data == nullptr) return;
    if (!isQuantType(data->dtype()) && data->dtype() != ir::DataType::kInt32) return;
    const ir::Tensor* scale = ir::constantOf(n.input(1), kSession);
    if (scale == nullptr || scale->dtype() != ir::DataType::kFloat || scale->numel() == 0) return;
    const ir::Value* zpValue = n.numInputs() > 2 ? n.input(2) : nullptr;
    const ir::Tensor* zp = ir::constantOf(zpValue, kSession);
    if (zpValue != nullptr && (zp == nullptr || zp->numel() != scale->numel() || zp->dtype() != data->dtype())) return;
    const int64_t count = scale->numel();
    const int64_t axis = n.attrInt("axis", 1) < 0 ? n.attrInt("axis", 1) + data->rank() : n.attrInt("axis", 1);
    if (count > 1 && (axis < 0 || axis >= data->rank() || data->dims()[static_cast<size_t>(axis)] != count)) return;
    int64_t inner = 1;
    for (int64_t d = axis + 1; count > 1 && d < data->rank(); ++d) inner *= data->dims()[static_cast<size_t>(d)];
    ir::Tensor out(ir::DataType::kFloat, data->dims());
    float* dst = out.mutableData<float>();
    for (int64_t i = 0; i < data->numel(); ++i) {
      const int64_t c = count > 1 ? (i / inner) % count : 0;
      const float s = static_cast<float>(scale->valueAsDouble(c));
      const double q = data->valueAsDouble(i) - (zp != nullptr ? zp->valueAsDouble(c) : 0.0);
      dst[i] = static_cast<float>(q) * s;
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
