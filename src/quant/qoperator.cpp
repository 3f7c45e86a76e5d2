// QDQ groups -> QOperator ops (see convertQdqToQOperator in whittle/quant/qdq.h).

#include <set>

#include "whittle/quant/qdq.h"

namespace whittle::quant {
namespace {

constexpr const char* kMicrosoft = "com.microsoft";

bool isOp(const ir::Node* n, std::string_view op) { return n != nullptr && n->domain().empty() && n->opType() == op; }

// The DequantizeLinear producing `v` with a per-tensor scale, or nullptr.
const ir::Node* perTensorDq(const ir::Value* v) {
  if (v == nullptr || !isOp(v->producer(), "DequantizeLinear")) return nullptr;
  const ir::Node* dq = v->producer();
  const ir::Value* s = dq->input(1);
  if (s == nullptr || s->constant() == nullptr || s->constant()->numel() != 1 || dq->input(2) == nullptr) return nullptr;
  return dq;
}

// The only user of `v` when it is a per-tensor QuantizeLinear with a zero point, else nullptr.
ir::Node* soleQ(const ir::Value* v) {
  if (v == nullptr || v->uses().size() != 1 || v->isGraphOutput()) return nullptr;
  ir::Node* q = v->uses()[0].user;
  if (!isOp(q, "QuantizeLinear") || q->input(2) == nullptr) return nullptr;
  const ir::Value* s = q->input(1);
  if (s == nullptr || s->constant() == nullptr || s->constant()->numel() != 1) return nullptr;
  return q;
}

bool sameParams(const ir::Node* dq, const ir::Node* q) {
  if (dq->input(1) == q->input(1) && dq->input(2) == q->input(2)) return true;
  const ir::Tensor* s1 = dq->input(1)->constant();
  const ir::Tensor* s2 = q->input(1)->constant();
  const ir::Tensor* z1 = dq->input(2)->constant();
  const ir::Tensor* z2 = q->input(2)->constant();
  return s1 && s2 && z1 && z2 && s1->bitwiseEqual(*s2) && z1->bitwiseEqual(*z2);
}

// Replaces `op` and its output QuantizeLinear `q` by a node `newOp` over `inputs` whose
// output takes over q's output.
ir::Node* replaceGroup(ir::Graph& g, ir::Node* op, ir::Node* q, const std::string& newOp, const std::string& domain,
                       const std::vector<ir::Value*>& inputs, bool copyAttributes, std::set<const ir::Node*>& erased) {
  ir::Value* yq = q->output(0);
  ir::Node* n = g.addNode(newOp, inputs, {yq->name() + "_qop"}, g.uniqueNodeName(op->name().empty() ? newOp : op->name()),
                          domain, op);
  if (copyAttributes) {
    for (const ir::Attribute& a : op->attributes()) n->setAttribute(a);
  }
  n->output(0)->mutableType() = yq->type();
  g.replaceAllUsesWith(yq, n->output(0));
  erased.insert(q);
  erased.insert(op);
  g.eraseNode(q);
  g.eraseNode(op);
  return n;
}

}  // namespace

int64_t convertQdqToQOperator(ir::Graph& g) {
  static const std::set<std::string_view> kSameScale = {"MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze"};
  int64_t converted = 0;
  std::set<const ir::Node*> erased;  // nodes of the snapshot below that are gone
  for (ir::Node* n : g.nodes()) {
    if (erased.contains(n)) continue;
    if (!n->domain().empty() || n->numOutputs() != 1) continue;
    const std::string op = n->opType();
    ir::Node* q = soleQ(n->output(0));
    if (q == nullptr) continue;
    ir::Value* ys = q->input(1);
    ir::Value* yz = q->input(2);
    if (op == "Conv" || op == "MatMul") {
      const ir::Node* dx = perTensorDq(n->input(0));
      const ir::Node* dw = n->input(1) != nullptr && isOp(n->input(1)->producer(), "DequantizeLinear") ? n->input(1)->producer() : nullptr;
      if (dx == nullptr || dw == nullptr || dw->input(2) == nullptr) continue;
      std::vector<ir::Value*> in = {dx->input(0), dx->input(1), dx->input(2), dw->input(0), dw->input(1), dw->input(2), ys, yz};
      if (op == "Conv") {
        if (n->input(2) != nullptr) {
          const ir::Node* db = n->input(2)->producer();
          if (!isOp(db, "DequantizeLinear") || db->input(0)->dtype() != ir::DataType::kInt32) continue;
          in.push_back(db->input(0));
        }
        replaceGroup(g, n, q, "QLinearConv", "", in, /*copyAttributes=*/true, erased);
      } else {
        // QLinearMatMul takes per-column b scales only for a 2-D b; activations b are per tensor.
        if (dw->input(1)->constant() == nullptr) continue;
        if (dw->input(1)->constant()->numel() != 1 && dw->input(0)->type().shape && dw->input(0)->type().shape->size() != 2) continue;
        replaceGroup(g, n, q, "QLinearMatMul", "", in, /*copyAttributes=*/false, erased);
      }
      ++converted;
    } else if (op == "Add" || op == "Mul") {
      const ir::Node* da = perTensorDq(n->input(0));
      const ir::Node* db = perTensorDq(n->input(1));
      if (da == nullptr || db == nullptr) continue;
      replaceGroup(g, n, q, op == "Add" ? "QLinearAdd" : "QLinearMul", kMicrosoft,
                   {da->input(0), da->input(1), da->input(2), db->input(0), db->input(1), db->input(2), ys, yz}, false, erased);
      ++converted;
    } else if (op == "GlobalAveragePool") {
      const ir::Node* dx = perTensorDq(n->input(0));
      if (dx == nullptr) continue;
      ir::Node* r = replaceGroup(g, n, q, "QLinearGlobalAveragePool", kMicrosoft, {dx->input(0), dx->input(1), dx->input(2), ys, yz}, false, erased);
      r->setAttribute(ir::Attribute::makeInt("channels_last", 0));
      ++converted;
    } else if (op == "Concat") {
      std::vector<ir::Value*> in = {ys, yz};
      bool ok = true;
      for (ir::Value* v : n->inputs()) {
        const ir::Node* d = perTensorDq(v);
        if (d == nullptr) {
          ok = false;
          break;
        }
        in.insert(in.end(), {d->input(0), d->input(1), d->input(2)});
      }
      if (!ok) continue;
      replaceGroup(g, n, q, "QLinearConcat", kMicrosoft, in, /*copyAttributes=*/true, erased);
      ++converted;
    } else if (kSameScale.contains(op)) {
      const ir::Node* dx = perTensorDq(n->input(0));
      if (dx == nullptr || !sameParams(dx, q)) continue;
      std::vector<ir::Value*> in = n->inputs();
      in[0] = dx->input(0);
      replaceGroup(g, n, q, op, "", in, /*copyAttributes=*/true, erased);
      ++converted;
    }
  }
  return converted;
}

}  // namespace whittle::quant
