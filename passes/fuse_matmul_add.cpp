// fuse-matmul-add
// Before: y = Add(MatMul(A, B), C)
// After:  y = Gemm(A, B, C)
// Requires: A and B of rank 2; C broadcasts one way to the [M, N] result (scalar, [N],
// [1,N], [M,1] or [M,N], with a symbolic M only where C has 1); the MatMul output has one
// use and is not a graph output; float, float16 or double.
#include "pass_factories.h"

namespace whittle::passes {
namespace {

// The MatMul feeding the Add, and the Add's other operand (the Gemm's C).
struct MatMulAddMatch {
  ir::Node* matmul = nullptr;
  ir::Value* c = nullptr;
};

std::optional<MatMulAddMatch> find(const ir::Node& add) {
  for (size_t i = 0; i < 2 && add.numInputs() == 2; ++i) {
    ir::Value* mm = add.input(i);
    ir::Value* c = add.input(1 - i);
    ir::Node* matmul = ir::producerIs(mm, "MatMul");
    if (matmul == nullptr || c == nullptr) continue;
    auto a = ir::knownRankDims(matmul->input(0));
    auto b = ir::knownRankDims(matmul->input(1));
    auto cd = ir::knownRankDims(c);
    if (!a || !b || !cd || a->size() != 2 || b->size() != 2 || cd->size() > 2) continue;
    ir::DataType dt = mm->dtype() != ir::DataType::kUndefined ? mm->dtype() : c->dtype();
    if (dt != ir::DataType::kFloat && dt != ir::DataType::kFloat16 && dt != ir::DataType::kDouble) continue;
    if (c->dtype() != dt) continue;
    std::vector<int64_t> out = {(*a)[0], (*b)[1]};
    std::vector<int64_t> cdims = *cd;
    while (cdims.size() < 2) cdims.insert(cdims.begin(), 1);
    bool ok = true;
    for (size_t k = 0; k < 2; ++k) {
      if (cdims[k] == 1) continue;
      if (cdims[k] < 0 || cdims[k] != out[k]) ok = false;
    }
    if (!ok) continue;
    return MatMulAddMatch{matmul, c};
  }
  return std::nullopt;
}

class FuseMatMulAdd final : public RewritePattern<MatMulAddMatch> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Add"}; }
  std::optional<MatMulAddMatch> match(const ir::Node& add, const PassContext&) const override { return find(add); }
  Status rewrite(ir::Node& add, const MatMulAddMatch& m, ir::Rewriter& rw) const override {
    ir::Graph& graph = rw.graph();
    std::string name = graph.uniqueNodeName(m.matmul->name().empty() ? "gemm" : m.matmul->name() + "_gemm");
    ir::Node* gemm = graph.addNode("Gemm", {m.matmul->input(0), m.matmul->input(1), m.c},
                                   {add.output(0)->name() + "_gemm"}, name, "", &add);
    gemm->output(0)->mutableType() = add.output(0)->type();
    rw.replaceAllUsesWith(add.output(0), gemm->output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseMatMulAdd(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FuseMatMulAdd>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
