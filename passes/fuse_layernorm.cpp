// fuse-layernorm
// Before: m = ReduceMean(x, axes=A); d = Sub(x, m); [d' = Cast(d, float)];
//         v = ReduceMean(Pow(d', 2), axes=A); n = Div(d, Sqrt(Add(v, eps)));
//         y = Add(Mul(n, gamma), beta)
// After:  y = LayerNormalization(x, gamma, beta){axis=A[0], epsilon=eps}
// Requires: opset >= 17; A the trailing axes of x (e.g. [-1]) in both ReduceMeans, with
// keepdims=1; eps, gamma, beta constants (beta optional: a Mul root fuses without it);
// every intermediate has no other use. Below opset 17 the pattern is left as it is and the
// pass notes how many it left.
#include <algorithm>
#include <cmath>

#include "pass_factories.h"

namespace whittle::passes {
namespace {

struct LayerNormMatch {
  ir::Value* x = nullptr;
  ir::Value* gamma = nullptr;
  ir::Value* beta = nullptr;
  int64_t axis = -1;
  double epsilon = 0;
};

// The reduced axes of a ReduceMean as negative numbers counted from the end, or empty.
std::vector<int64_t> trailingAxes(const ir::Node& reduce, int64_t rank) {
  if (reduce.attrInt("keepdims", 1) != 1) return {};
  std::vector<int64_t> axes = reduce.attrInts("axes");
  if (reduce.input(1) != nullptr) {
    const ir::Tensor* t = constantOf(reduce.input(1));
    if (t == nullptr || t->dtype() != ir::DataType::kInt64) return {};
    axes.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
  }
  if (axes.empty()) return {};
  for (int64_t& a : axes) {
    if (a >= 0) {
      if (rank < 0) return {};
      a -= rank;
    }
  }
  // More axes than x has (a broken or hostile model) is no LayerNorm (found by fuzz_optimize:
  // the gamma check indexed x's dims from their end).
  if (rank >= 0 && static_cast<int64_t>(axes.size()) > rank) return {};
  std::sort(axes.begin(), axes.end());
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] != -static_cast<int64_t>(axes.size()) + static_cast<int64_t>(i)) return {};
  }
  return axes;
}

std::optional<LayerNormMatch> matchLayerNorm(const ir::Node& root) {
  LayerNormMatch m;
  const ir::Node* mul = &root;
  if (root.opType() == "Add") {
    for (size_t i = 0; i < 2 && m.beta == nullptr; ++i) {
      if (ir::Node* p = ir::producerIs(root.input(i), "Mul"); p != nullptr && constantOf(root.input(1 - i))) {
        mul = p;
        m.beta = root.input(1 - i);
      }
    }
    if (m.beta == nullptr) return std::nullopt;
  }
  ir::Node* div = nullptr;
  for (size_t i = 0; i < 2 && div == nullptr; ++i) {
    if (ir::Node* p = ir::producerIs(mul->input(i), "Div"); p != nullptr && constantOf(mul->input(1 - i))) {
      div = p;
      m.gamma = mul->input(1 - i);
    }
  }
  if (div == nullptr) return std::nullopt;
  ir::Node* sqrt = ir::producerIs(div->input(1), "Sqrt");
  ir::Node* sub = ir::producerIs(div->input(0), "Sub", /*singleUse=*/false);
  if (sqrt == nullptr || sub == nullptr || sub->output(0)->uses().size() != 2 || sub->output(0)->isGraphOutput()) {
    return std::nullopt;
  }
  ir::Node* addEps = ir::producerIs(sqrt->input(0), "Add");
  if (addEps == nullptr) return std::nullopt;
  ir::Node* var = nullptr;
  for (size_t i = 0; i < 2 && var == nullptr; ++i) {
    auto eps = ir::scalarConstant(addEps->input(1 - i));
    if (ir::Node* p = ir::producerIs(addEps->input(i), "ReduceMean"); p != nullptr && eps) {
      var = p;
      m.epsilon = *eps;
    }
  }
  if (var == nullptr) return std::nullopt;
  ir::Node* pow = ir::producerIs(var->input(0), "Pow");
  if (pow == nullptr || !ir::isScalarConstant(pow->input(1), 2.0)) return std::nullopt;
  const ir::Value* squared = pow->input(0);
  if (ir::Node* cast = ir::producerIs(squared, "Cast")) {
    if (cast->attrInt("to", 0) != static_cast<int64_t>(ir::DataType::kFloat)) return std::nullopt;
    squared = cast->input(0);
  }
  if (squared != sub->output(0)) return std::nullopt;
  ir::Node* mean = ir::producerIs(sub->input(1), "ReduceMean");
  if (mean == nullptr || mean->input(0) != sub->input(0)) return std::nullopt;
  m.x = sub->input(0);
  auto dims = ir::knownRankDims(m.x);
  int64_t rank = dims ? static_cast<int64_t>(dims->size()) : -1;
  std::vector<int64_t> a1 = trailingAxes(*mean, rank), a2 = trailingAxes(*var, rank);
  if (a1.empty() || a1 != a2) return std::nullopt;
  m.axis = a1.front();
  // gamma and beta must cover exactly the normalized dims (no broadcasting over them).
  for (const ir::Value* p : {m.gamma, m.beta}) {
    if (p == nullptr) continue;
    const ir::Tensor* t = constantOf(p);
    if (t->dtype() != m.x->dtype() && m.x->dtype() != ir::DataType::kUndefined) return std::nullopt;
    if (t->rank() != static_cast<int64_t>(a1.size())) return std::nullopt;
    if (dims) {
      for (size_t i = 0; i < a1.size(); ++i) {
        int64_t d = (*dims)[dims->size() - a1.size() + i];
        if (d < 0 || t->dims()[i] != d) return std::nullopt;
      }
    }
  }
  return m;
}

constexpr int64_t kLayerNormOpset = 17;

// The match at `root` when it is where a LayerNormalization ends: an Add of beta, or a Mul
// by gamma whose user is not such an Add (which then fuses both).
std::optional<LayerNormMatch> matchLayerNormRoot(const ir::Node& root) {
  if (root.opType() == "Mul" && ir::hasSingleUse(*root.output(0))) {
    const ir::Node& user = *root.output(0)->uses()[0].user;
    if (ir::isDefaultDomainOp(user, {"Add"}) && matchLayerNorm(user)) return std::nullopt;
  }
  return matchLayerNorm(root);
}

class FuseLayerNorm final : public RewritePattern<LayerNormMatch> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Add", "Mul"}; }
  std::optional<LayerNormMatch> match(const ir::Node& root, const PassContext& ctx) const override {
    if (ctx.opset() < kLayerNormOpset) return std::nullopt;
    return matchLayerNormRoot(root);
  }
  Status rewrite(ir::Node& root, const LayerNormMatch& m, ir::Rewriter& rw) const override {
    ir::Graph& graph = rw.graph();
    std::vector<ir::Value*> inputs = {m.x, m.gamma};
    if (m.beta != nullptr) inputs.push_back(m.beta);
    std::string name = graph.uniqueNodeName(root.name().empty() ? "layernorm" : root.name() + "_layernorm");
    ir::Node* ln = graph.addNode("LayerNormalization", inputs, {root.output(0)->name() + "_ln"}, name, "", &root);
    ln->setAttribute(ir::Attribute::makeInt("axis", m.axis));
    ln->setAttribute(ir::Attribute::makeFloat("epsilon", static_cast<float>(m.epsilon)));
    ln->output(0)->mutableType() = root.output(0)->type();
    rw.replaceAllUsesWith(root.output(0), ln->output(0));
    return Status::ok();
  }
};

// Fuses at opset >= 17; below it counts the decomposed LayerNorms it leaves and says so.
class FuseLayerNormPass final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override {
    if (ctx.opset() < kLayerNormOpset) {
      int64_t left = 0;
      for (const ir::Node* node : model.graph->nodes()) {
        if (ir::isDefaultDomainOp(*node, {"Add", "Mul"}) && matchLayerNormRoot(*node)) ++left;
      }
      if (left > 0) {
        ctx.stats().counters["left-decomposed"] += left;
        ctx.note("fuse-layernorm: opset " + std::to_string(ctx.opset()) +
                 " < 17 has no LayerNormalization; left " + std::to_string(left) + " decomposed");
      }
      return Status::ok();
    }
    return patterns_.run(model, ctx);
  }

 private:
  PatternPass patterns_{[] {
    std::vector<std::unique_ptr<Pattern>> patterns;
    patterns.push_back(std::make_unique<FuseLayerNorm>());
    return patterns;
  }()};
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseLayerNorm(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<FuseLayerNormPass>());
}

}  // namespace whittle::passes
