// fuse-conv-mul
// Before: y = Mul(Conv(x, W, b), s)    s constant, scalar or per output channel ([C,1,1])
// After:  y = Conv(x, W', b')   W'[c] = W[c] * s[c],  b'[c] = b[c] * s[c]
// Requires: the Conv output has one use and is not a graph output; W and b are float
// constants of s's dtype.
#include "pass_factories.h"
#include "fold_util.h"

namespace whittle::passes {
namespace {

class FuseConvMul final : public RewritePattern<ConvWithConstant> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Mul"}; }
  std::optional<ConvWithConstant> match(const ir::Node& mul, const PassContext&) const override {
    return matchConvWithConstant(mul);
  }
  Status rewrite(ir::Node& mul, const ConvWithConstant& m, ir::Rewriter& rw) const override {
    ir::Node& conv = *m.conv;
    const ir::Tensor& w = *constantOf(conv.input(1));
    int64_t channels = w.dims()[0];
    std::vector<double> bias = conv.input(2) ? ir::toDoubles(*constantOf(conv.input(2))) : std::vector<double>(channels, 0.0);
    for (size_t c = 0; c < bias.size(); ++c) bias[c] *= m.values[c];
    replaceConvParameters(conv, ir::scaleOutputChannels(conv, w, m.values), ir::fromDoubles(w.dtype(), {channels}, bias));
    conv.output(0)->mutableType() = mul.output(0)->type();
    rw.replaceAllUsesWith(mul.output(0), conv.output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseConvMul(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FuseConvMul>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
