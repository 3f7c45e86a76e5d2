// rotate-residual: an orthogonal rotation of a pre-norm transformer's residual stream, folded
// into the weights (QuaRot, SpinQuant), before weight quantization.
//
// Before (a Llama-style decoder; D the hidden size):
//   h0 = Gather(E, ids)                          E constant [V, D]
//   n  = RMSNorm(h) = h / Sqrt(ReduceMean(h * h, last axis) + eps) [* gamma]
//   y  = MatMul(n, R)                            R constant [D, N]: the norm's readers (q/k/v,
//                                                gate/up, and the LM head, MatMul(n, Transpose(E)))
//   h' = Add(h, MatMul(z, W))                    W constant [K, D]: the writers (o_proj, down_proj)
// After, with Q a D x D orthogonal matrix (rotation=hadamard: randomized Hadamard; random: QR of
// a Gaussian matrix):
//   E -> E Q;  R -> Q^T diag(gamma) R (the gamma Mul goes);  W -> W Q;
//   a tied LM head reads its own [D, V] copy Q^T diag(gamma) E^T (the embedding is untied).
// Every residual tensor h becomes h Q, and RMSNorm(h Q) = RMSNorm(h) Q (the mean of squares of a
// rotated vector is unchanged), so the model computes the same function (float rounding aside).
// The rotation spreads the residual stream's outlier channels over all channels: the readers'
// inputs and weights lose the few large channels that make 4-bit blocks coarse.
// The pass refuses (a note, the model untouched) unless every reader of every residual tensor is
// one of the above: a residual Add, an RMSNorm whose output only constant-weight MatMuls read, and
// writers and readers whose weights nothing else reads. Untying grows the file by one table
// (quantize-weights' embedding-bits covers the untied head too).

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "pass_factories.h"
#include "whittle/quant/rotation.h"

namespace whittle::passes {
namespace {

const ir::Tensor* floatConst(const ir::Value* v) {
  const ir::Tensor* t = v != nullptr ? constantOf(v) : nullptr;
  return t != nullptr && t->dtype() == ir::DataType::kFloat ? t : nullptr;
}

bool defaultOp(const ir::Node* n, const char* op) { return n != nullptr && n->domain().empty() && n->opType() == op; }

bool singleUse(const ir::Value* v) { return v != nullptr && v->uses().size() == 1 && !v->isGraphOutput() && !v->hasImplicitUses(); }

// A constant float scalar (any shape of one value).
std::optional<float> scalarOf(const ir::Value* v) {
  const ir::Tensor* t = floatConst(v);
  if (t == nullptr || t->numel() != 1) return std::nullopt;
  return t->data<float>()[0];
}

// The only user of `v` (single use), or null.
ir::Node* onlyUser(const ir::Value* v) { return singleUse(v) ? v->uses().front().user : nullptr; }

struct Norm {
  ir::Node* div = nullptr;
  ir::Node* gammaMul = nullptr;  // Mul(div, gamma), or null
  ir::Value* gamma = nullptr;
  std::vector<ir::Node*> readers;  // MatMul(normed, R)
};

class RotateResidual final : public Pass {
 public:
  RotateResidual(std::string kind, uint64_t seed) : kind_(std::move(kind)), seed_(seed) {}
  Status run(ir::Model& model, PassContext& ctx) override;

 private:
  std::string kind_;
  uint64_t seed_;
};

// The reduction of ReduceMean is the last axis alone, kept.
bool reducesLastAxis(const ir::Node* rm, const ir::Value* x) {
  if (rm->attrInt("keepdims", 1) != 1) return false;
  std::vector<int64_t> axes = rm->attrInts("axes");
  if (rm->numInputs() > 1 && rm->input(1) != nullptr) {
    const ir::Tensor* t = constantOf(rm->input(1));
    if (t == nullptr || t->dtype() != ir::DataType::kInt64) return false;
    axes.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
  }
  if (axes.size() != 1) return false;
  if (axes[0] == -1) return true;
  return x->type().shape && axes[0] == static_cast<int64_t>(x->type().shape->size()) - 1;
}

Status RotateResidual::run(ir::Model& model, PassContext& ctx) {
  ir::Graph& graph = *model.graph;
  auto refuse = [&](const std::string& why) {
    ctx.note("rotate-residual: model left unrotated: " + why);
    return Status::ok();
  };
  // The embedding: a Gather of a constant [V, D] table.
  ir::Node* gather = nullptr;
  for (ir::Node* n : graph.nodes()) {
    if (!defaultOp(n, "Gather") || n->attrInt("axis", 0) != 0) continue;
    const ir::Tensor* t = floatConst(n->input(0));
    if (t == nullptr || t->rank() != 2 || constantOf(n->input(1)) != nullptr) continue;
    if (gather != nullptr) return refuse("two embedding Gathers ('" + gather->name() + "', '" + n->name() + "')");
    gather = n;
  }
  if (gather == nullptr) return refuse("no Gather of a constant [V, D] embedding table starts a residual stream");
  ir::Value* table = gather->input(0);
  const int64_t d = constantOf(table)->dims()[1];
  // Walk the residual stream from the embedding.
  std::vector<ir::Value*> stream{gather->output(0)};
  std::set<ir::Value*> inStream{gather->output(0)};
  std::vector<ir::Node*> writers;
  std::vector<Norm> norms;
  std::set<ir::Node*> normDivs;
  ir::Node* tiedHead = nullptr;  // MatMul(n, Transpose(E))
  auto readerOk = [&](ir::Node* mm, std::string& why) {
    if (!defaultOp(mm, "MatMul") || mm->input(1) == nullptr) {
      why = "'" + mm->name() + "' (" + mm->opType() + ") reads a normalized residual";
      return false;
    }
    ir::Value* w = mm->input(1);
    const ir::Tensor* t = floatConst(w);
    if (t != nullptr) {
      if (t->rank() != 2 || t->dims()[0] != d || !singleUse(w)) {
        why = "the weight of '" + mm->name() + "' is not a [D, N] constant read there alone";
        return false;
      }
      return true;
    }
    ir::Node* tr = w->producer();
    if (defaultOp(tr, "Transpose") && tr->input(0) == table && singleUse(w) && tr->attrInts("perm", {1, 0}) == std::vector<int64_t>{1, 0}) {
      if (tiedHead != nullptr && tiedHead != mm) {
        why = "two MatMuls read the transposed embedding";
        return false;
      }
      tiedHead = mm;
      return true;
    }
    why = "'" + mm->name() + "' reads a normalized residual with a weight that is not constant";
    return false;
  };
  for (size_t at = 0; at < stream.size(); ++at) {
    ir::Value* h = stream[at];
    if (h->isGraphOutput()) return refuse("the residual tensor '" + h->name() + "' is a graph output");
    if (h->hasImplicitUses()) return refuse("a subgraph reads the residual tensor '" + h->name() + "'");
    for (const auto& u : h->uses()) {
      ir::Node* n = u.user;
      if (defaultOp(n, "Add") && n->numInputs() == 2) {
        ir::Value* other = n->input(static_cast<size_t>(1 - u.index));
        if (other == h) return refuse("'" + n->name() + "' adds the residual to itself");
        if (!inStream.contains(other)) {
          ir::Node* w = other->producer();
          const ir::Tensor* t = w != nullptr && defaultOp(w, "MatMul") ? floatConst(w->input(1)) : nullptr;
          if (t == nullptr || t->rank() != 2 || t->dims()[1] != d || !singleUse(w->input(1)) || !singleUse(other) ||
              constantOf(w->input(0)) != nullptr) {
            return refuse("'" + n->name() + "' adds to the residual '" + other->name() + "', not a MatMul with a constant [K, D] weight");
          }
          if (std::find(writers.begin(), writers.end(), w) == writers.end()) writers.push_back(w);
        }
        if (inStream.insert(n->output(0)).second) stream.push_back(n->output(0));
        continue;
      }
      if (defaultOp(n, "Div") && n->input(0) == h && u.index == 0) continue;  // the norm's Div, checked below
      const bool square = (defaultOp(n, "Mul") && n->input(0) == h && n->input(1) == h) ||
                          (defaultOp(n, "Pow") && n->input(0) == h && scalarOf(n->input(1)) == 2.0f);
      if (!square) return refuse("'" + n->name() + "' (" + n->opType() + ") reads the residual tensor '" + h->name() + "'");
      if (defaultOp(n, "Mul") && u.index == 1) continue;  // Mul(h, h): one norm, two uses
      ir::Node* rm = onlyUser(n->output(0));
      ir::Node* add = rm != nullptr && defaultOp(rm, "ReduceMean") && reducesLastAxis(rm, h) ? onlyUser(rm->output(0)) : nullptr;
      ir::Node* sq = add != nullptr && defaultOp(add, "Add") && (scalarOf(add->input(0)) || scalarOf(add->input(1))) ? onlyUser(add->output(0)) : nullptr;
      ir::Node* div = sq != nullptr && defaultOp(sq, "Sqrt") ? onlyUser(sq->output(0)) : nullptr;
      if (div == nullptr || !defaultOp(div, "Div") || div->input(0) != h || div->input(1) != sq->output(0)) {
        return refuse("'" + n->name() + "' squares the residual '" + h->name() + "' but no RMSNorm (ReduceMean over the last axis, Add eps, Sqrt, Div) follows");
      }
      Norm norm;
      norm.div = div;
      ir::Value* normed = div->output(0);
      if (normed->isGraphOutput() || normed->hasImplicitUses()) return refuse("the normalized '" + normed->name() + "' is read outside the graph's MatMuls");
      if (normed->uses().size() == 1 && defaultOp(normed->uses().front().user, "Mul")) {
        ir::Node* mul = normed->uses().front().user;
        ir::Value* g = mul->input(mul->input(0) == normed ? 1 : 0);
        const ir::Tensor* gt = floatConst(g);
        if (gt != nullptr && gt->numel() == d && gt->dims().back() == d && singleUse(g)) {
          norm.gammaMul = mul;
          norm.gamma = g;
          normed = mul->output(0);
          if (normed->isGraphOutput() || normed->hasImplicitUses()) return refuse("the normalized '" + normed->name() + "' is a graph output");
        }
      }
      for (const auto& r : normed->uses()) {
        std::string why;
        if (r.index != 0 || !readerOk(r.user, why)) return refuse(why.empty() ? "'" + r.user->name() + "' reads a normalized residual" : why);
        norm.readers.push_back(r.user);
      }
      if (norm.readers.empty()) return refuse("nothing reads the RMSNorm '" + div->name() + "'");
      normDivs.insert(div);
      norms.push_back(std::move(norm));
    }
  }
  for (ir::Value* h : stream) {
    for (const auto& u : h->uses()) {
      if (defaultOp(u.user, "Div") && !normDivs.contains(u.user)) return refuse("'" + u.user->name() + "' divides the residual outside an RMSNorm");
    }
  }
  // The table is read by the Gather and (tied) the LM head's Transpose alone.
  for (const auto& u : table->uses()) {
    if (u.user != gather && (tiedHead == nullptr || u.user != tiedHead->input(1)->producer())) {
      return refuse("the embedding table '" + table->name() + "' is read by '" + u.user->name() + "' too");
    }
  }
  if (table->isGraphOutput()) return refuse("the embedding table is a graph output");
  if (writers.empty() || norms.empty()) return refuse("no residual block (a MatMul adding to the stream, an RMSNorm) found");

  std::string kind = kind_;
  if (kind == "hadamard" && !quant::hasHadamard(d)) {
    WH_RETURN_IF_ERROR(ctx.fallback("rotate-residual: no Hadamard matrix of order " + std::to_string(d) +
                                    " from the Sylvester x Paley construction: a random orthogonal rotation instead"));
    kind = "random";
  }
  WH_ASSIGN_OR_RETURN(std::vector<double> qv, quant::orthogonalRotation(d, kind, seed_));
  auto load = [](const ir::Value* v) {
    const ir::Tensor& t = *constantOf(v);
    return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
  };
  auto store = [](ir::Value* v, int64_t rows, int64_t cols, const std::vector<float>& values) {
    v->setConstant(ir::Tensor::fromVector(ir::DataType::kFloat, {rows, cols}, values));
  };
  // Writers: W [K, D] -> W Q.
  for (ir::Node* w : writers) {
    ir::Value* wv = w->input(1);
    const int64_t k = constantOf(wv)->dims()[0];
    std::vector<float> m = load(wv);
    quant::rotateColumns(m, k, d, qv);
    store(wv, k, d, m);
  }
  // Readers: R [D, N] -> Q^T diag(gamma) R; the gamma Mul goes.
  const int64_t vocab = constantOf(table)->dims()[0];
  const std::vector<float> e = load(table);
  for (Norm& norm : norms) {
    std::vector<double> g(static_cast<size_t>(d), 1.0);
    if (norm.gamma != nullptr) {
      const float* p = constantOf(norm.gamma)->data<float>();
      for (int64_t i = 0; i < d; ++i) g[static_cast<size_t>(i)] = p[i];
    }
    for (ir::Node* r : norm.readers) {
      if (r == tiedHead) {  // the LM head's own copy, [D, V] = Q^T diag(g) E^T
        ir::Value* hv = graph.addInitializer(graph.uniqueValueName(table->name() + "_lm_head_rotated"),
                                             ir::Tensor::fromVector(ir::DataType::kFloat, {d, vocab},
                                                                    quant::rotateReader(e, d, vocab, qv, g, /*transposed=*/true)));
        r->replaceInput(r->input(1), hv);
        continue;
      }
      ir::Value* rv = r->input(1);
      const int64_t n = constantOf(rv)->dims()[1];
      store(rv, d, n, quant::rotateReader(load(rv), d, n, qv, g));
    }
    if (norm.gammaMul != nullptr) {
      graph.replaceAllUsesWith(norm.gammaMul->output(0), norm.div->output(0));
      graph.eraseNode(norm.gammaMul);
    }
  }
  // The table: E -> E Q (the tied head's Transpose is dead now).
  std::vector<float> et = e;
  quant::rotateColumns(et, vocab, d, qv);
  store(table, vocab, d, et);
  removeDeadNodes(graph);
  ctx.stats().rewrites = static_cast<int64_t>(writers.size() + norms.size());
  ctx.stats().counters["rotated-writers"] = static_cast<int64_t>(writers.size());
  ctx.stats().counters["rotated-norms"] = static_cast<int64_t>(norms.size());
  ctx.stats().counters["hidden-size"] = d;
  if (tiedHead != nullptr) {
    ctx.note("rotate-residual: the tied embedding '" + table->name() + "' is untied: the LM head reads its own rotated [" +
             std::to_string(d) + ", V] copy (quantize-weights' embedding-bits applies to it too)");
  }
  return graph.topologicalSort();
}

}  // namespace

Expected<std::unique_ptr<Pass>> makeRotateResidual(const RotateResidualOptions& options) {
  if (options.rotation != "hadamard" && options.rotation != "random") {
    return invalidInput("rotate-residual: rotation must be hadamard or random, got '" + options.rotation + "'");
  }
  return std::unique_ptr<Pass>(std::make_unique<RotateResidual>(options.rotation, static_cast<uint64_t>(options.seed)));
}

}  // namespace whittle::passes
