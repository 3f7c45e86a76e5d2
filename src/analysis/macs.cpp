// Multiply-accumulates at batch 1, from the shapes that shape inference gives a copy of the
// model whose symbolic input dims are taken as 1.
#include <algorithm>
#include <unordered_map>

#include "analysis/stats_internal.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::analysis::detail {
namespace {

// Larger dims are not believed (a hostile model may declare anything); within this bound the
// arithmetic below cannot overflow.
constexpr int64_t kMaxDim = int64_t{1} << 40;

/// The fully known dims of the graph's values after inference: constants, inputs, node outputs.
class Shapes {
 public:
  explicit Shapes(const ir::Graph& g) {
    for (const ir::Value* v : g.values()) {
      std::optional<Dims> d = v->constant() != nullptr ? std::optional(v->constant()->dims()) : v->type().staticDims();
      if (d && std::all_of(d->begin(), d->end(), [](int64_t x) { return x >= 0 && x <= kMaxDim; })) {
        dims_[v] = std::move(*d);
      }
    }
  }
  const Dims* shape(const ir::Value* v) const {
    auto it = dims_.find(v);
    return it == dims_.end() ? nullptr : &it->second;
  }

 private:
  std::unordered_map<const ir::Value*, Dims> dims_;
};

Dims broadcastDims(const Dims& a, const Dims& b) {
  Dims out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t x = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t y = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    out[i] = x == 1 ? y : x;
  }
  return out;
}

/// Multiply-accumulates of one node from the inferred shapes; nullopt when the node is not a
/// MAC op, -1 when its shapes are unknown.
std::optional<int64_t> nodeMacs(const ir::Node& n, const Shapes& shapes) {
  if (!isDefaultDomain(n)) return std::nullopt;
  const std::string& op = n.opType();
  auto dims = [&](size_t i) { return shapes.shape(n.input(i)); };
  const Dims* y = shapes.shape(n.output(0));
  if (op == "Conv" || op == "QLinearConv" || op == "ConvInteger") {
    // Every output element: (C_in / group) x kernel multiply-accumulates.
    const Dims* w = dims(op == "QLinearConv" ? 3 : 1);
    if (w == nullptr || y == nullptr || w->size() < 3 || y->size() != w->size()) return -1;
    return product({(*y)[0], (*w)[0], product(*y, 2), product(*w, 1)});
  }
  if (op == "ConvTranspose") {
    // Every input element is scattered into (C_out / group) x kernel outputs.
    const Dims* x = dims(0);
    const Dims* w = dims(1);
    if (x == nullptr || w == nullptr || w->size() < 3 || x->size() != w->size()) return -1;
    return product({product(*x), product(*w, 1)});
  }
  if (op == "Gemm") {
    const Dims* a = dims(0);
    const Dims* b = dims(1);
    if (a == nullptr || b == nullptr || a->size() != 2 || b->size() != 2) return -1;
    int64_t m = n.attrInt("transA", 0) ? (*a)[1] : (*a)[0];
    int64_t k = n.attrInt("transA", 0) ? (*a)[0] : (*a)[1];
    int64_t cols = n.attrInt("transB", 0) ? (*b)[0] : (*b)[1];
    return product({m, k, cols});
  }
  if (op == "MatMul" || op == "QLinearMatMul" || op == "MatMulInteger") {
    const Dims* a = dims(0);
    const Dims* b = dims(op == "QLinearMatMul" ? 3 : 1);
    if (a == nullptr || b == nullptr || a->empty() || b->empty()) return -1;
    Dims a2 = a->size() == 1 ? Dims{1, (*a)[0]} : *a;
    Dims b2 = b->size() == 1 ? Dims{(*b)[0], 1} : *b;
    Dims batch = broadcastDims(Dims(a2.begin(), a2.end() - 2), Dims(b2.begin(), b2.end() - 2));
    return product({product(batch), a2[a2.size() - 2], a2.back(), b2.back()});
  }
  return std::nullopt;
}

}  // namespace

MacStats computeMacs(const ir::Model& model, std::vector<ValueShape>* valueShapes) {
  MacStats stats;
  ir::Model clone = model.clone();
  ir::Graph& g = *clone.graph;
  // Batch 1: the first dim of every graph input; other unknown dims are taken as 1 too.
  for (ir::Value* v : g.inputs()) {
    if (v->isInitializer() || !v->type().opaqueTypeProto.empty()) continue;
    auto& shape = v->mutableType().shape;
    if (!shape) {
      stats.notes.push_back("input '" + v->name() + "' has no declared shape");
      continue;
    }
    for (size_t i = 0; i < shape->size(); ++i) {
      ir::Dim& d = (*shape)[i];
      if (d.isKnown()) continue;
      if (i > 0) {
        stats.approximate = true;
        stats.notes.push_back("input '" + v->name() + "': dim " + std::to_string(i) + " ('" +
                              (d.param.empty() ? "?" : d.param) + "') taken as 1");
      }
      d = ir::Dim::known(1);
    }
  }
  // Declared shapes with symbolic dims would pin the inference to them: keep them aside as a
  // last resort (symbolic dims taken as 1) and let inference work from the concrete inputs.
  std::unordered_map<const ir::Value*, Dims> declared;
  for (ir::Value* v : g.values()) {
    if (v->isGraphInput() || v->isInitializer() || !v->type().shape || v->type().hasStaticShape()) continue;
    Dims d;
    for (const ir::Dim& dim : *v->type().shape) d.push_back(dim.isKnown() ? dim.value : 1);
    declared[v] = std::move(d);
    v->mutableType().shape.reset();
  }
  // Our own rules, libonnx for ops without one; the declarations as a last resort.
  int64_t declaredFallbacks = 0;
  ir::ShapeInferenceOptions options;
  options.fallback = [&](ir::Value& v) {
    auto it = declared.find(&v);
    if (it == declared.end()) return;
    std::vector<ir::Dim> dims;
    for (int64_t d : it->second) dims.push_back(ir::Dim::known(d));
    v.mutableType().shape = std::move(dims);
    ++declaredFallbacks;
  };
  (void)onnx_io::inferShapes(clone, options);
  Shapes shapes(g);
  if (declaredFallbacks > 0) {
    stats.notes.push_back(std::to_string(declaredFallbacks) +
                          " value shapes taken from the model's declarations, symbolic dims as 1");
  }
  for (const ir::Node* n : g.nodes()) {
    auto macs = nodeMacs(*n, shapes);
    if (!macs) continue;
    if (*macs < 0 || *macs == kOverflow || stats.total > kOverflow - *macs) {
      stats.uncountedNodes.push_back(nodeLabel(*n));
      continue;
    }
    std::string op = qualifiedOpType(*n);
    stats.nodes.push_back({nodeLabel(*n), op, *macs});
    stats.byOpType[op] += *macs;
    stats.total += *macs;
  }
  if (!stats.uncountedNodes.empty()) {
    stats.approximate = true;
    stats.notes.push_back(std::to_string(stats.uncountedNodes.size()) +
                          " MAC nodes left out: shapes unknown or too large");
  }
  if (valueShapes != nullptr) {
    auto add = [&](const ir::Value* v) {
      const Dims* d = shapes.shape(v);
      valueShapes->push_back({v->name(), v->dtype(), d ? std::optional<Dims>(*d) : std::nullopt});
    };
    for (const ir::Value* v : g.inputs()) {
      if (!v->isInitializer()) add(v);
    }
    for (const ir::Node* n : g.nodes()) {
      for (const ir::Value* v : n->outputs()) {
        if (v != nullptr) add(v);
      }
    }
  }
  return stats;
}

}  // namespace whittle::analysis::detail
