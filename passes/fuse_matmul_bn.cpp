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

// The MatMul before the BN and the BN as y = x * factor + shift over the N columns.
struct MatMulBnMatch {
  ir::Node* matmul = nullptr;
  std::vector<double> factor;
  std::vector<double> shift;
};

class FuseMatMulBn final : public RewritePattern<MatMulBnMatch> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"BatchNormalization"}; }
  std::optional<MatMulBnMatch> match(const ir::Node& bn, const PassContext&) const override {
    MatMulBnMatch m;
    m.matmul = ir::producerIs(bn.input(0), "MatMul");
    if (m.matmul == nullptr) return std::nullopt;
    auto a = ir::knownRankDims(m.matmul->input(0));
    const ir::Tensor* b = constantOf(m.matmul->input(1));
    if (!a || a->size() != 2 || b == nullptr || !ir::isFloatTensor(*b) || b->rank() != 2) return std::nullopt;
    if (!bnAffine(bn, b->dims()[1], m.factor, m.shift)) return std::nullopt;
    return m;
  }
  Status rewrite(ir::Node& bn, const MatMulBnMatch& m, ir::Rewriter& rw) const override {
    ir::Node& mm = *m.matmul;
    ir::Graph& graph = rw.graph();
    const ir::Tensor& b = *constantOf(mm.input(1));
    int64_t k = b.dims()[0], n = b.dims()[1];
    std::vector<double> w = ir::toDoubles(b);
    for (int64_t r = 0; r < k; ++r) {
      for (int64_t c = 0; c < n; ++c) w[static_cast<size_t>(r * n + c)] *= m.factor[static_cast<size_t>(c)];
    }
    ir::Value* newB = rw.addInitializer(mm.input(1)->name() + "_bn_fused", ir::fromDoubles(b.dtype(), b.dims(), w));
    ir::Value* c = rw.addInitializer(bn.output(0)->name() + "_bias_fused", ir::fromDoubles(b.dtype(), {n}, m.shift));
    std::string name = graph.uniqueNodeName(mm.name().empty() ? "gemm" : mm.name() + "_gemm");
    ir::Node* gemm = graph.addNode("Gemm", {mm.input(0), newB, c}, {bn.output(0)->name() + "_gemm"}, name, "", &bn);
    gemm->output(0)->mutableType() = bn.output(0)->type();
    rw.replaceAllUsesWith(bn.output(0), gemm->output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseMatMulBn(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FuseMatMulBn>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
