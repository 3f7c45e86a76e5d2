// fuse-pad-into-conv
// Before: y = Conv(Pad(x, pads=p, mode=constant, value=0), W, b){pads=q}
// After:  y = Conv(x, W, b){pads=q+p}
// Likewise into AveragePool with count_include_pad=1 (pad value 0) and MaxPool (pad value
// -inf: only that is exact for MaxPool).
// Requires: constant pads that touch only the spatial axes and are non-negative; the Pad
// output has one use and is not a graph output; the consumer's auto_pad is NOTSET.
#include <cmath>
#include <limits>

#include "pass_factories.h"
#include "fold_util.h"

namespace whittle::passes {
namespace {

// The Pad's spatial pads in ONNX layout [x1_begin, x2_begin, ..., x1_end, x2_end, ...] for
// an input of `rank`, or empty when the Pad is not a pure spatial constant pad.
std::vector<int64_t> spatialPads(const ir::Node& pad, int64_t rank, double requiredValue) {
  if (pad.attrString("mode", "constant") != "constant") return {};
  std::vector<int64_t> pads;
  double value = 0;
  if (pad.hasAttribute("pads")) {  // opset < 11
    pads = pad.attrInts("pads");
    value = pad.attrFloat("value", 0.0f);
  } else {
    const ir::Tensor* p = constantOf(pad.input(1));
    if (p == nullptr || p->dtype() != ir::DataType::kInt64) return {};
    pads.assign(p->data<int64_t>(), p->data<int64_t>() + p->numel());
    if (pad.input(2) != nullptr) {
      const ir::Tensor* v = constantOf(pad.input(2));
      if (v == nullptr || v->numel() != 1) return {};
      value = v->valueAsDouble(0);
    }
    if (pad.input(3) != nullptr) return {};  // axes (opset 18): keep it simple
  }
  if (value != requiredValue && !(std::isinf(requiredValue) && std::isinf(value) && value < 0)) return {};
  if (static_cast<int64_t>(pads.size()) != 2 * rank) return {};
  for (int64_t v : pads) {
    if (v < 0) return {};
  }
  if (pads[0] != 0 || pads[1] != 0 || pads[static_cast<size_t>(rank)] != 0 || pads[static_cast<size_t>(rank + 1)] != 0) return {};
  std::vector<int64_t> spatial;
  int64_t s = rank - 2;
  for (int64_t i = 0; i < s; ++i) spatial.push_back(pads[static_cast<size_t>(2 + i)]);
  for (int64_t i = 0; i < s; ++i) spatial.push_back(pads[static_cast<size_t>(rank + 2 + i)]);
  return spatial;
}

double padValueFor(const ir::Node& consumer) {
  return consumer.opType() == "MaxPool" ? -std::numeric_limits<double>::infinity() : 0.0;
}

class FusePadIntoConv final : public RewritePattern {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Conv", "AveragePool", "MaxPool"}; }
  bool match(const ir::Node& consumer, const PassContext&) const override {
    const ir::Value* padded = consumer.input(0);
    const ir::Node* pad = padded ? padded->producer() : nullptr;
    if (pad == nullptr || !isDefaultDomainOp(*pad, {"Pad"}) || !hasSingleUse(*padded)) return false;
    if (consumer.attrString("auto_pad", "NOTSET") != "NOTSET") return false;
    if (consumer.opType() == "AveragePool" && consumer.attrInt("count_include_pad", 0) == 0) return false;
    if (consumer.opType() == "MaxPool" && consumer.numOutputs() > 1 && consumer.output(1) != nullptr) return false;
    auto dims = knownRankDims(pad->input(0));
    if (!dims || dims->size() < 3) return false;
    return !spatialPads(*pad, static_cast<int64_t>(dims->size()), padValueFor(consumer)).empty();
  }
  Status rewrite(ir::Node& consumer, PassContext&) const override {
    const ir::Node& pad = *consumer.input(0)->producer();
    auto dims = knownRankDims(pad.input(0));
    std::vector<int64_t> extra = spatialPads(pad, static_cast<int64_t>(dims->size()), padValueFor(consumer));
    std::vector<int64_t> pads = consumer.attrInts("pads", std::vector<int64_t>(extra.size(), 0));
    for (size_t i = 0; i < pads.size(); ++i) pads[i] += extra[i];
    consumer.setAttribute(ir::Attribute::makeInts("pads", pads));
    consumer.setInput(0, pad.input(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFusePadIntoConv(const PassOptions&) {
  std::vector<std::unique_ptr<RewritePattern>> patterns;
  patterns.push_back(std::make_unique<FusePadIntoConv>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
