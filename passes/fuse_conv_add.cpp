// fuse-conv-add
// Before: y = Add(Conv(x, W, b), c)    c constant, scalar or per output channel ([C,1,1])
// After:  y = Conv(x, W, b + c)
// Requires: the Conv output has one use and is not a graph output; W and b are float
// constants of c's dtype.
#include "pass_factories.h"
#include "fold_util.h"

namespace whittle::passes {
namespace {

class FuseConvAdd final : public RewritePattern<ConvWithConstant> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Add"}; }
  std::optional<ConvWithConstant> match(const ir::Node& add, const PassContext&) const override {
    return matchConvWithConstant(add);
  }
  Status rewrite(ir::Node& add, const ConvWithConstant& m, ir::Rewriter& rw) const override {
    ir::Node& conv = *m.conv;
    const ir::Tensor& w = *constantOf(conv.input(1));
    int64_t channels = w.dims()[0];
    std::vector<double> bias = conv.input(2) ? ir::toDoubles(*constantOf(conv.input(2))) : std::vector<double>(channels, 0.0);
    for (size_t c = 0; c < bias.size(); ++c) bias[c] += m.values[c];
    replaceConvParameters(conv, w, ir::fromDoubles(w.dtype(), {channels}, bias));
    conv.output(0)->mutableType() = add.output(0)->type();
    rw.replaceAllUsesWith(add.output(0), conv.output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseConvAdd(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FuseConvAdd>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
