// A step of the QDQ lowering (lowering.h): a Gemm (or a 2-D MatMul) that reads quantized data
// through DequantizeLinear nodes becomes one com.microsoft QGemm, which the int8 GEMM kernel
// runs with the dequantization as its output scale.
//
// Before: y = Gemm(DQ(xq), DQ(wq), b)             After: y = QGemm(xq, xs, xz, wq, ws, wz, c)   (y float)
// Before: yq = Q(Gemm(DQ(xq), DQ(wq), b))         After: yq = QGemm(xq, .., c, ys, yz)
// Before: y = MatMul(DQ(xq), DQ(wq)), x any rank  After: y = QGemm(xq, .., wq, ..)              (y float)
//         c[n] = round(beta * b[n] / (alpha * xs * ws[n])): the int32 bias at the accumulator's
//         scale (b a float constant, or a DequantizeLinear of an int32 constant; equal to its
//         data when its scale is xs * ws, as quantizers write it)
//
// Requires: transA = 0; x per-tensor uint8/int8 (not constant); w a constant uint8/int8 [K, N]
// (or [N, K] with transB) whose scale is one value or one per output column; the bias one value
// per column (or absent). The float-output forms are what a quantized model leaves when its
// classifier's output is not requantized (the graph output, or a layer kept float after it):
// without this the Gemm ran in float on dequantized weights.
#include <cmath>
#include <limits>
#include <unordered_set>

#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"

namespace whittle::runtime {

namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

bool isQuantType(ir::DataType t) { return t == ir::DataType::kUint8 || t == ir::DataType::kInt8; }

bool isOp(const ir::Node* n, std::string_view op) { return n != nullptr && ir::isDefaultDomainOp(*n, {op}); }

/// A DequantizeLinear's constant parameters.
struct Dequantize {
  ir::Node* node = nullptr;
  const ir::Tensor* scale = nullptr;
  const ir::Tensor* zeroPoint = nullptr;  // nullptr: zero
  ir::DataType type = ir::DataType::kUndefined;
  int64_t axis = 1;
  double scaleAt(int64_t i) const { return scale->valueAsDouble(scale->numel() == 1 ? 0 : i); }
};

/// The DequantizeLinear producing `v`, when its scale (float32) and zero point are constants.
std::optional<Dequantize> dequantizeOf(const ir::Value* v) {
  ir::Node* dq = v != nullptr ? v->producer() : nullptr;
  if (!isOp(dq, "DequantizeLinear") || dq->numInputs() < 2 || dq->input(0) == nullptr) return std::nullopt;
  if (dq->attrInt("block_size", 0) != 0) return std::nullopt;
  Dequantize d;
  d.node = dq;
  d.scale = ir::constantOf(dq->input(1), kSession);
  if (d.scale == nullptr || d.scale->dtype() != ir::DataType::kFloat || d.scale->numel() == 0) return std::nullopt;
  const ir::Value* zp = dq->numInputs() > 2 ? dq->input(2) : nullptr;
  if (zp != nullptr) {
    d.zeroPoint = ir::constantOf(zp, kSession);
    if (d.zeroPoint == nullptr || d.zeroPoint->numel() != d.scale->numel()) return std::nullopt;
  }
  const ir::Tensor* data = ir::constantOf(dq->input(0), kSession);
  d.type = data != nullptr ? data->dtype() : dq->input(0)->type().dtype;
  if (d.zeroPoint != nullptr && d.type == ir::DataType::kUndefined) d.type = d.zeroPoint->dtype();  // not inferred
  if (d.zeroPoint != nullptr && d.zeroPoint->dtype() != d.type) return std::nullopt;
  d.axis = dq->attrInt("axis", 1);
  return d;
}

class QdqGemmLowering {
 public:
  QdqGemmLowering(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep) : graph_(graph), keep_(keep) {}

  int64_t run() {
    std::vector<ir::Node*> candidates;
    for (ir::Node* n : graph_.nodes()) {
      if (isOp(n, "Gemm") || isOp(n, "MatMul")) candidates.push_back(n);
    }
    int64_t rewritten = 0;
    for (ir::Node* n : candidates) rewritten += lower(*n) ? 1 : 0;
    return rewritten;
  }

 private:
  bool pinned(const ir::Value* v) const {
    return v->isGraphOutput() || v->isGraphInput() || v->isInitializer() || keep_.contains(v) || v->hasImplicitUses();
  }

  // The zero point input of `d` (a new zero of its type when it has none).
  ir::Value* zeroPointInput(const Dequantize& d) {
    if (d.node->numInputs() > 2 && d.node->input(2) != nullptr) return d.node->input(2);
    return graph_.addInitializer(graph_.uniqueValueName(d.node->input(1)->name() + "_zero_point"), ir::Tensor(d.type, {}));
  }

  bool lower(ir::Node& n);

  ir::Graph& graph_;
  const std::unordered_set<const ir::Value*>& keep_;
};

bool QdqGemmLowering::lower(ir::Node& n) {
  const bool gemm = n.opType() == "Gemm";
  if (n.numOutputs() != 1 || n.output(0) == nullptr || n.numInputs() < 2) return false;
  if (gemm && n.attrInt("transA", 0) != 0) return false;
  const bool transB = gemm && n.attrInt("transB", 0) != 0;
  const double alpha = gemm ? n.attrFloat("alpha", 1.0f) : 1.0;
  const double beta = gemm ? n.attrFloat("beta", 1.0f) : 1.0;
  if (!(alpha > 0.0)) return false;
  auto x = dequantizeOf(n.input(0));
  auto w = dequantizeOf(n.input(1));
  if (!x || !w || !isQuantType(x->type) || !isQuantType(w->type)) return false;
  if (x->scale->numel() != 1 || ir::constantOf(x->node->input(0), kSession) != nullptr) return false;
  // MatMul: QGemm reads an x of any rank as rows of K, y keeping x's leading dims as MatMul's
  // does (kernels/cpu/quant_gemm.cpp), so x's rank may be unknown (an LSTM loop's output).
  const ir::Tensor* wq = ir::constantOf(w->node->input(0), kSession);
  if (wq == nullptr || wq->rank() != 2) return false;
  const int64_t cols = transB ? wq->dims()[0] : wq->dims()[1];
  const int64_t colAxis = transB ? 0 : 1;
  if (w->scale->numel() != 1) {
    const int64_t axis = w->axis < 0 ? w->axis + 2 : w->axis;
    if (axis != colAxis || w->scale->numel() != cols) return false;
  }
  // The bias, at the accumulator's scale.
  std::vector<double> bias;
  if (gemm && n.numInputs() > 2 && n.input(2) != nullptr) {
    const ir::Value* b = n.input(2);
    const ir::Tensor* f = ir::constantOf(b, kSession);
    if (f != nullptr) {
      if (f->dtype() != ir::DataType::kFloat) return false;
      for (int64_t i = 0; i < f->numel(); ++i) bias.push_back(f->valueAsDouble(i));
    } else if (auto d = dequantizeOf(b); d && d->type == ir::DataType::kInt32) {
      const ir::Tensor* data = ir::constantOf(d->node->input(0), kSession);
      if (data == nullptr || (d->scale->numel() != 1 && d->scale->numel() != data->numel())) return false;
      for (int64_t i = 0; i < data->numel(); ++i) {
        const double zp = d->zeroPoint != nullptr ? d->zeroPoint->valueAsDouble(d->zeroPoint->numel() == 1 ? 0 : i) : 0.0;
        // In float, as DequantizeLinear computes it.
        bias.push_back(static_cast<float>(static_cast<float>(data->valueAsDouble(i) - zp) * static_cast<float>(d->scaleAt(i))));
      }
    } else {
      return false;
    }
    if (static_cast<int64_t>(bias.size()) != cols && bias.size() != 1) return false;
    if (bias.size() == 1) bias.assign(static_cast<size_t>(cols), bias[0]);
  }
  ir::Value* c = nullptr;
  if (!bias.empty()) {
    ir::Tensor t(ir::DataType::kInt32, {cols});
    int32_t* dst = t.mutableData<int32_t>();
    const double xs = x->scaleAt(0);
    for (int64_t j = 0; j < cols; ++j) {
      const double s = static_cast<double>(static_cast<float>(alpha * xs * w->scaleAt(j)));
      if (!(s > 0.0)) return false;
      double r = std::nearbyint(beta * bias[static_cast<size_t>(j)] / s);
      r = std::fmin(std::fmax(r, static_cast<double>(std::numeric_limits<int32_t>::min())),
                    static_cast<double>(std::numeric_limits<int32_t>::max()));
      dst[j] = static_cast<int32_t>(r);
    }
    c = graph_.addInitializer(graph_.uniqueValueName(n.input(2)->name() + "_int32"), std::move(t));
  }
  // A per-tensor 8-bit QuantizeLinear that is the output's only reader joins the QGemm.
  ir::Value* y = n.output(0);
  ir::Node* q = nullptr;
  if (!pinned(y)) {
    const ir::Value::Use* use = ir::onlyUse(y);
    ir::Node* reader = use != nullptr ? use->user : nullptr;
    if (isOp(reader, "QuantizeLinear") && reader->input(0) == y && reader->numInputs() >= 2 && reader->attrInt("block_size", 0) == 0) {
      const ir::Tensor* ys = ir::constantOf(reader->input(1), kSession);
      const ir::Value* yzValue = reader->numInputs() > 2 ? reader->input(2) : nullptr;
      const ir::Tensor* yz = ir::constantOf(yzValue, kSession);
      if (ys != nullptr && ys->numel() == 1 && ys->dtype() == ir::DataType::kFloat && yz != nullptr && yz->numel() == 1 &&
          isQuantType(yz->dtype())) {
        q = reader;
      }
    }
  }
  std::vector<ir::Value*> inputs = {x->node->input(0), x->node->input(1), zeroPointInput(*x),
                                    w->node->input(0), w->node->input(1), zeroPointInput(*w), c};
  std::vector<ir::Node*> chain = {&n};
  ir::Value* finalOut = y;
  if (q != nullptr) {
    inputs.push_back(q->input(1));
    inputs.push_back(q->input(2));
    chain.push_back(q);
    finalOut = q->output(0);
  }
  std::vector<ir::Attribute> attrs = {ir::Attribute::makeFloat("alpha", static_cast<float>(alpha))};
  if (transB) attrs.push_back(ir::Attribute::makeInt("transB", 1));
  ir::replaceChain(graph_, chain, finalOut, "QGemm", "com.microsoft", n.name(), inputs, std::move(attrs));
  return true;
}

}  // namespace

int64_t lowerQdqGemms(ir::Graph& graph, const std::unordered_set<const ir::Value*>& keep) {
  return QdqGemmLowering(graph, keep).run();
}

}  // namespace whittle::runtime
