// fuse-gemm-bn
// Before: y = BatchNormalization(Gemm(A, B, C){alpha, beta, transB}, s, bb, mean, var)
// After:  y = Gemm(A, B', C'){alpha=1, beta=1}
//   f[n] = s[n] / sqrt(var[n] + eps)
//   B'[:, n] = alpha * B[:, n] * f[n]          (rows of B when transB = 1)
//   C'[n]    = (beta * C[n] - mean[n]) * f[n] + bb[n]       (C absent: 0)
// Requires: the Gemm output has one use and is not a graph output; B constant; C absent,
// scalar, [N] or [1,N] and constant; BN parameters float constants with N elements.
#include "pass_factories.h"
#include "fold_util.h"

namespace whittle::passes {
namespace {

bool cIsPerColumn(const ir::Node& gemm, int64_t n) {
  if (gemm.input(2) == nullptr) return true;
  const ir::Tensor* c = constantOf(gemm.input(2));
  if (c == nullptr || !ir::isFloatTensor(*c)) return false;
  if (c->numel() == 1) return true;
  const auto& d = c->dims();
  return c->numel() == n && (d.size() == 1 || (d.size() == 2 && d[0] == 1));
}

// The Gemm before the BN and the BN as y = x * factor + shift over the Gemm's N columns.
struct GemmBnMatch {
  ir::Node* gemm = nullptr;
  std::vector<double> factor;
  std::vector<double> shift;
};

class FuseGemmBn final : public RewritePattern<GemmBnMatch> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"BatchNormalization"}; }
  std::optional<GemmBnMatch> match(const ir::Node& bn, const PassContext&) const override {
    GemmBnMatch m;
    m.gemm = ir::producerIs(bn.input(0), "Gemm");
    if (m.gemm == nullptr) return std::nullopt;
    const ir::Tensor* b = constantOf(m.gemm->input(1));
    if (b == nullptr || !ir::isFloatTensor(*b) || b->rank() != 2) return std::nullopt;
    int64_t n = m.gemm->attrInt("transB", 0) ? b->dims()[0] : b->dims()[1];
    if (!cIsPerColumn(*m.gemm, n) || !bnAffine(bn, n, m.factor, m.shift)) return std::nullopt;
    return m;
  }
  Status rewrite(ir::Node& bn, const GemmBnMatch& m, ir::Rewriter& rw) const override {
    ir::Node& gemm = *m.gemm;
    const std::vector<double>& f = m.factor;
    const ir::Tensor& b = *constantOf(gemm.input(1));
    bool transB = gemm.attrInt("transB", 0) != 0;
    int64_t rows = b.dims()[0], cols = b.dims()[1];
    int64_t n = transB ? rows : cols;
    double alpha = gemm.attrFloat("alpha", 1.0f), beta = gemm.attrFloat("beta", 1.0f);
    std::vector<double> w = ir::toDoubles(b);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) w[static_cast<size_t>(r * cols + c)] *= alpha * f[static_cast<size_t>(transB ? r : c)];
    }
    std::vector<double> bias(static_cast<size_t>(n), 0.0);
    if (gemm.input(2) != nullptr) {
      const ir::Tensor& c = *constantOf(gemm.input(2));
      for (int64_t i = 0; i < n; ++i) bias[static_cast<size_t>(i)] = beta * c.valueAsDouble(c.numel() == 1 ? 0 : i);
    }
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = bias[i] * f[i] + m.shift[i];
    ir::Value* newB = rw.addInitializer(gemm.input(1)->name() + "_bn_fused", ir::fromDoubles(b.dtype(), b.dims(), w));
    ir::Value* newC = rw.addInitializer(bn.output(0)->name() + "_bias_fused", ir::fromDoubles(b.dtype(), {n}, bias));
    gemm.setInput(1, newB);
    if (gemm.numInputs() < 3) {
      gemm.addInput(newC);
    } else {
      gemm.setInput(2, newC);
    }
    gemm.removeAttribute("alpha");
    gemm.removeAttribute("beta");
    gemm.output(0)->mutableType() = bn.output(0)->type();
    rw.replaceAllUsesWith(bn.output(0), gemm.output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseGemmBn(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FuseGemmBn>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
