// fuse-conv-bn
// Before: y = BatchNormalization(Conv(x, W, b), s, beta, mean, var)
// After:  y = Conv(x, W', b')
//   W'[c] = W[c] * s[c] / sqrt(var[c] + eps)
//   b'[c] = (b[c] - mean[c]) * s[c] / sqrt(var[c] + eps) + beta[c]
// Also for ConvTranspose, whose weight is [Cin, Cout/group, ...]: the scale then applies
// along axis 1 of each group's slice.
// Requires: the Conv output has one use and is not a graph output; W, b, s, beta, mean,
// var are float constants; training_mode == 0; the BN has one output.
#include <cmath>

#include "pass_factories.h"
#include "fold_util.h"

namespace whittle::passes {
namespace {

class FuseConvBn final : public RewritePattern {
 public:
  std::vector<std::string_view> rootOps() const override { return {"BatchNormalization"}; }

  bool match(const ir::Node& bn, const PassContext&) const override {
    if (bn.attrInt("training_mode", 0) != 0 || (bn.numOutputs() > 1 && bn.output(1) != nullptr)) return false;
    const ir::Value* y = bn.input(0);
    const ir::Node* conv = y ? y->producer() : nullptr;
    if (conv == nullptr || !isDefaultDomainOp(*conv, {"Conv", "ConvTranspose"})) return false;
    if (!hasSingleUse(*y)) return false;
    const ir::Tensor* w = constantOf(conv->input(1));
    if (w == nullptr || !isFloatTensor(*w) || w->rank() < 3) return false;
    if (conv->input(2) != nullptr && !isFloatConstant(conv->input(2))) return false;
    for (size_t i = 1; i <= 4; ++i) {
      if (!isFloatConstant(bn.input(i))) return false;
    }
    int64_t channels = outputChannels(*conv, *w);
    for (size_t i = 1; i <= 4; ++i) {
      if (constantOf(bn.input(i))->numel() != channels) return false;
    }
    return true;
  }

  Status rewrite(ir::Node& bn, PassContext&) const override {
    ir::Graph& graph = bn.graph();
    ir::Node& conv = *bn.input(0)->producer();
    const ir::Tensor& w = *constantOf(conv.input(1));
    const int64_t channels = outputChannels(conv, w);
    std::vector<double> scale = toDoubles(*constantOf(bn.input(1)));
    std::vector<double> beta = toDoubles(*constantOf(bn.input(2)));
    std::vector<double> mean = toDoubles(*constantOf(bn.input(3)));
    std::vector<double> var = toDoubles(*constantOf(bn.input(4)));
    std::vector<double> bias = conv.input(2) ? toDoubles(*constantOf(conv.input(2))) : std::vector<double>(channels, 0.0);
    const double eps = bn.attrFloat("epsilon", 1e-5f);

    std::vector<double> factor(static_cast<size_t>(channels));
    std::vector<double> newBias(static_cast<size_t>(channels));
    for (size_t c = 0; c < factor.size(); ++c) {
      factor[c] = scale[c] / std::sqrt(var[c] + eps);
      newBias[c] = (bias[c] - mean[c]) * factor[c] + beta[c];
    }
    ir::Tensor newW = scaleOutputChannels(conv, w, factor);
    ir::Value* wValue = graph.addInitializer(conv.input(1)->name() + "_bn_fused", std::move(newW));
    ir::Value* bValue = graph.addInitializer(bn.output(0)->name() + "_bias_fused",
                                             fromDoubles(w.dtype(), {channels}, newBias));
    conv.setInput(1, wValue);
    if (conv.numInputs() < 3) {
      conv.addInput(bValue);
    } else {
      conv.setInput(2, bValue);
    }
    conv.output(0)->mutableType() = bn.output(0)->type();
    graph.replaceAllUsesWith(bn.output(0), conv.output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseConvBn(const PassOptions&) {
  std::vector<std::unique_ptr<RewritePattern>> patterns;
  patterns.push_back(std::make_unique<FuseConvBn>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
