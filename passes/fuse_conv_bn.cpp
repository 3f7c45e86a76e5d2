// fuse-conv-bn
// Before: y = BatchNormalization(Conv(x, W, b), s, beta, mean, var)
// After:  y = Conv(x, W', b')
//   W'[c] = W[c] * s[c] / sqrt(var[c] + eps)
//   b'[c] = (b[c] - mean[c]) * s[c] / sqrt(var[c] + eps) + beta[c]
// Also for ConvTranspose, whose weight is [Cin, Cout/group, ...]: the scale then applies
// along axis 1 of each group's slice.
// Requires: the Conv output has one use and is not a graph output; W, b, s, beta, mean,
// var are float constants; training_mode == 0; the BN's extra outputs are unused.
// The match and the fold are ir::matchConvBatchNorm / ir::foldConvBatchNorm, which the
// runtime's lowering uses too.
#include "pass_factories.h"
#include "whittle/ir/fold.h"

namespace whittle::passes {
namespace {

class FuseConvBn final : public RewritePattern<ir::ConvBatchNorm> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"BatchNormalization"}; }
  std::optional<ir::ConvBatchNorm> match(const ir::Node& bn, const PassContext&) const override {
    return ir::matchConvBatchNorm(bn);
  }
  Status rewrite(ir::Node&, const ir::ConvBatchNorm& m, ir::Rewriter& rw) const override {
    ir::foldConvBatchNorm(rw.graph(), m);
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseConvBn(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FuseConvBn>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
