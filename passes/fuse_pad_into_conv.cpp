// fuse-pad-into-conv
// Before: y = Conv(Pad(x, pads=p, mode=constant, value=0), W, b){pads=q}
// After:  y = Conv(x, W, b){pads=q+p}
// Likewise into pooling:
//   AveragePool(Pad(x, p, value=0)){pads=q, count_include_pad=c}
//     -> AveragePool(x){pads=q+p, count_include_pad=1}   when c = 1, or q = 0 (the window
//        then never held implicit padding, so counting the explicit zeros is the same);
//   MaxPool(Pad(x, p, value=v)){pads=q} -> MaxPool(x){pads=q+p}   when v is -inf or the
//        lowest value of x's type (MaxPool's own padding is ignored, as -inf would be).
// Requires: constant pads that touch only the spatial axes and are non-negative; the Pad
// output has one use and is not a graph output; the consumer's auto_pad is NOTSET. Pooling
// also needs ceil_mode = 0, no Indices output, and summed pads smaller than the kernel
// (ONNX Runtime refuses larger pooling pads, and a window of padding only would differ).
#include <cmath>
#include <limits>
#include <optional>

#include "pass_factories.h"

namespace whittle::passes {
namespace {

// The lowest value of `dtype` (-inf for floating point types), or nullopt for other types.
std::optional<double> lowestValue(ir::DataType dtype) {
  switch (dtype) {
    case ir::DataType::kFloat:
    case ir::DataType::kFloat16:
    case ir::DataType::kBFloat16:
    case ir::DataType::kDouble: return -std::numeric_limits<double>::infinity();
    case ir::DataType::kInt8: return -128.0;
    case ir::DataType::kUint8: return 0.0;
    default: return std::nullopt;
  }
}

// Whether a Pad with constant `value` in front of `consumer` is what the consumer's own
// padding does: zeros for Conv and AveragePool, nothing (the lowest value) for MaxPool.
bool padValueFits(const ir::Node& consumer, ir::DataType dtype, double value) {
  if (consumer.opType() != "MaxPool") return value == 0.0;
  if (std::isinf(value) && value < 0) return true;
  if (dtype == ir::DataType::kFloat && value <= -static_cast<double>(std::numeric_limits<float>::max())) return true;
  std::optional<double> lowest = lowestValue(dtype);
  return lowest && !std::isinf(*lowest) && value == *lowest;
}

// The Pad's spatial pads in ONNX layout [x1_begin, x2_begin, ..., x1_end, x2_end, ...] for
// an input of `rank`, or empty when the Pad is not a pure spatial constant pad.
std::vector<int64_t> spatialPads(const ir::Node& pad, int64_t rank, const ir::Node& consumer) {
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
  if (!padValueFits(consumer, pad.input(0)->dtype(), value)) return {};
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

// For pooling: ceil_mode 0, and the summed pads stay below the kernel; an AveragePool that
// excludes padding from its count takes the explicit zeros only when it had no pads itself.
bool poolingAccepts(const ir::Node& pool, const std::vector<int64_t>& extra) {
  if (pool.attrInt("ceil_mode", 0) != 0) return false;
  std::vector<int64_t> kernel = pool.attrInts("kernel_shape");
  std::vector<int64_t> pads = pool.attrInts("pads", std::vector<int64_t>(extra.size(), 0));
  if (kernel.size() * 2 != extra.size() || pads.size() != extra.size()) return false;
  bool hadPads = false;
  for (size_t i = 0; i < extra.size(); ++i) {
    if (pads[i] != 0) hadPads = true;
    if (pads[i] + extra[i] >= kernel[i % kernel.size()]) return false;
  }
  return pool.opType() != "AveragePool" || pool.attrInt("count_include_pad", 0) != 0 || !hadPads;
}

// The Pad before the consumer and the spatial pads it adds ([x1_begin, ..., x1_end, ...]).
struct PadMatch {
  const ir::Node* pad = nullptr;
  std::vector<int64_t> extra;
};

class FusePadIntoConv final : public RewritePattern<PadMatch> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Conv", "AveragePool", "MaxPool"}; }
  std::optional<PadMatch> match(const ir::Node& consumer, const PassContext&) const override {
    const ir::Node* pad = ir::producerIs(consumer.input(0), "Pad");
    if (pad == nullptr) return std::nullopt;
    if (consumer.attrString("auto_pad", "NOTSET") != "NOTSET") return std::nullopt;
    if (consumer.opType() == "MaxPool" && consumer.numOutputs() > 1 && consumer.output(1) != nullptr) return std::nullopt;
    auto dims = ir::knownRankDims(pad->input(0));
    if (!dims || dims->size() < 3) return std::nullopt;
    std::vector<int64_t> extra = spatialPads(*pad, static_cast<int64_t>(dims->size()), consumer);
    if (extra.empty()) return std::nullopt;
    if (consumer.opType() != "Conv" && !poolingAccepts(consumer, extra)) return std::nullopt;
    return PadMatch{pad, std::move(extra)};
  }
  Status rewrite(ir::Node& consumer, const PadMatch& m, ir::Rewriter&) const override {
    std::vector<int64_t> pads = consumer.attrInts("pads", std::vector<int64_t>(m.extra.size(), 0));
    for (size_t i = 0; i < pads.size(); ++i) pads[i] += m.extra[i];
    consumer.setAttribute(ir::Attribute::makeInts("pads", pads));
    if (consumer.opType() == "AveragePool") consumer.setAttribute(ir::Attribute::makeInt("count_include_pad", 1));
    consumer.setInput(0, m.pad->input(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFusePadIntoConv(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FusePadIntoConv>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
