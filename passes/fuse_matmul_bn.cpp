// fuse-matmul-bn
// Before: y = BatchNormalization(MatMul(A, B), s, bb, mean, var)       A: [M, K], B: [K, N]
// After:  y = Gemm(A, B', c)
//   f[n] = s[n] / sqrt(var[n] + eps);  B'[:, n] = B[:, n] * f[n];  c[n] = bb[n] - mean[n] * f[n]
// Requires: A of rank 2 (BatchNormalization's channel axis is then N); B a float constant;
// the MatMul output has one use and is not a graph output.
#include "pass_factories.h"
#include "fold_util.h"

namespace whittle::passes {
namespace {

class FuseMatMulBn final : public RewritePattern {
 public:
  std::vector<std::string_view> rootOps() const override { return {"BatchNormalization"}; }
  bool match(const ir::Node& bn, const PassContext&) const override {
    const ir::Value* y = bn.input(0);
    const ir::Node* mm = y ? y->producer() : nullptr;
    if (mm == nullptr || !isDefaultDomainOp(*mm, {"MatMul"}) || !hasSingleUse(*y)) return false;
    auto a = knownRankDims(mm->input(0));
    const ir::Tensor* b = constantOf(mm->input(1));
    if (!a || a->size() != 2 || b == nullptr || !isFloatTensor(*b) || b->rank() != 2) return false;
    std::vector<double> f, shift;
    return bnAffine(bn, b->dims()[1], f, shift);
  }
  Status rewrite(ir::Node& bn, PassContext&) const override {
    ir::Node& mm = *bn.input(0)->producer();
    ir::Graph& graph = bn.graph();
    const ir::Tensor& b = *constantOf(mm.input(1));
    int64_t k = b.dims()[0], n = b.dims()[1];
    std::vector<double> f, shift;
    bnAffine(bn, n, f, shift);
    std::vector<double> w = toDoubles(b);
    for (int64_t r = 0; r < k; ++r) {
      for (int64_t c = 0; c < n; ++c) w[static_cast<size_t>(r * n + c)] *= f[static_cast<size_t>(c)];
    }
    ir::Value* newB = graph.addInitializer(mm.input(1)->name() + "_bn_fused", fromDoubles(b.dtype(), b.dims(), w));
    ir::Value* c = graph.addInitializer(bn.output(0)->name() + "_bias_fused", fromDoubles(b.dtype(), {n}, shift));
    std::string name = graph.uniqueNodeName(mm.name().empty() ? "gemm" : mm.name() + "_gemm");
    ir::Node* gemm = graph.addNode("Gemm", {mm.input(0), newB, c}, {bn.output(0)->name() + "_gemm"}, name, "", &bn);
    gemm->output(0)->mutableType() = bn.output(0)->type();
    graph.replaceAllUsesWith(bn.output(0), gemm->output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseMatMulBn(const PassOptions&) {
  std::vector<std::unique_ptr<RewritePattern>> patterns;
  patterns.push_back(std::make_unique<FuseMatMulBn>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
