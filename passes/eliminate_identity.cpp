// eliminate-identity
// Before: y = Identity(x)                    After: uses of y read x
//         y = Dropout(x) (inference)                uses of y read x
//         y = Cast(x, to=type(x))                   uses of y read x
//         y = Reshape(x, dims(x))                   uses of y read x
//         y = Transpose(x, perm=[0,1,..,n-1])       uses of y read x
//         z = Reshape(Reshape|Flatten|Squeeze|Unsqueeze(x), s), s without 0
//                                                   z = Reshape(x, s)
//         z = Squeeze|Unsqueeze|Flatten(Reshape|Flatten|Squeeze|Unsqueeze(x)), z of static
//             shape d, the inner output used only there
//                                                   z = Reshape(x, d)
// Requires: the graph's inputs and outputs keep their names (canForward); the Dropout
// mask output is unused and training_mode, if given, is a constant false.
#include "pass_factories.h"

namespace whittle::passes {
namespace {

// Whether `node` passes its first input through unchanged.
bool isNoOp(const ir::Node& node) {
  const std::string& op = node.opType();
  const ir::Value* x = node.input(0);
  if (x == nullptr || node.output(0) == nullptr) return false;
  if (op == "Identity") return true;
  if (op == "Dropout") {
    if (node.output(1) != nullptr && (node.output(1)->hasUses() || node.output(1)->isGraphOutput())) return false;
    if (node.numInputs() >= 3 && node.input(2) != nullptr) {
      const ir::Tensor* mode = constantOf(node.input(2));
      if (mode == nullptr || mode->numel() != 1 || mode->valueAsDouble(0) != 0.0) return false;
    }
    return true;  // inference: ratio and the legacy is_test attribute do not matter
  }
  if (op == "Cast") {
    return x->dtype() != ir::DataType::kUndefined && node.attrInt("to", 0) == static_cast<int64_t>(x->dtype()) &&
           !node.hasAttribute("saturate");
  }
  if (op == "Transpose") {
    std::vector<int64_t> perm = node.attrInts("perm");
    if (perm.empty()) return x->type().shape && x->type().shape->size() <= 1;
    for (size_t i = 0; i < perm.size(); ++i) {
      if (perm[i] != static_cast<int64_t>(i)) return false;
    }
    return true;
  }
  if (op == "Reshape") {
    auto dims = x->type().staticDims();
    const ir::Tensor* shape = constantOf(node.input(1));
    if (!dims || shape == nullptr || shape->dtype() != ir::DataType::kInt64) return false;
    if (shape->numel() != static_cast<int64_t>(dims->size())) return false;
    bool allowZero = node.attrInt("allowzero", 0) != 0;
    for (int64_t i = 0; i < shape->numel(); ++i) {
      int64_t s = shape->data<int64_t>()[i];
      bool copies = s == 0 && !allowZero;
      if (!copies && s != (*dims)[static_cast<size_t>(i)]) return false;
    }
    return true;
  }
  return false;
}

class RemoveNoOp final : public RewritePattern<ir::RootMatch> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Identity", "Dropout", "Cast", "Transpose", "Reshape"}; }
  std::optional<ir::RootMatch> match(const ir::Node& node, const PassContext&) const override {
    if (!ir::isDefaultDomain(node) || !isNoOp(node) || !canForward(node.output(0), node.input(0))) return std::nullopt;
    // Nothing left to forward: the node is dead, or kept for its side effects (a hostile Transpose
    // carrying a graph attribute matched again after every rewrite; found by fuzz_optimize).
    if (!node.output(0)->hasUses() && !node.output(0)->isGraphOutput()) return std::nullopt;
    return ir::RootMatch{};
  }
  Status rewrite(ir::Node& node, const ir::RootMatch&, ir::Rewriter& rw) const override {
    rw.replaceAllUsesWith(node.output(0), node.input(0));
    return Status::ok();
  }
};

// The input of the reshaping op before the root: the root reshapes it directly.
struct ReshapeSource {
  ir::Value* source = nullptr;
};

// The reshaping op feeding `node` (Reshape, Flatten, Squeeze, Unsqueeze with an input), or nullptr.
const ir::Node* reshapingProducer(const ir::Node& node) {
  const ir::Value* x = node.input(0);
  const ir::Node* first = x ? x->producer() : nullptr;
  if (first == nullptr || !ir::isDefaultDomainOp(*first, {"Reshape", "Flatten", "Squeeze", "Unsqueeze"})) return nullptr;
  return first->input(0) != nullptr ? first : nullptr;
}

class MergeReshapes final : public RewritePattern<ReshapeSource> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Reshape"}; }
  std::optional<ReshapeSource> match(const ir::Node& node, const PassContext&) const override {
    const ir::Node* first = reshapingProducer(node);
    if (first == nullptr || node.input(0)->hasImplicitUses()) return std::nullopt;
    const ir::Tensor* shape = constantOf(node.input(1));
    if (shape == nullptr || shape->dtype() != ir::DataType::kInt64) return std::nullopt;
    for (int64_t s : shape->values<int64_t>()) {
      if (s == 0) return std::nullopt;  // 0 copies a dim of the first reshape's output
    }
    return ReshapeSource{first->input(0)};
  }
  Status rewrite(ir::Node& node, const ReshapeSource& m, ir::Rewriter&) const override {
    node.setInput(0, m.source);
    return Status::ok();
  }
};

// The first op's input and the root's static output dims.
struct ReshapeTo {
  ir::Value* source = nullptr;
  std::vector<int64_t> dims;
};

// A Squeeze, Unsqueeze or Flatten of a reshaping op's output whose result has a static
// shape: one Reshape from the first op's input does both. (A Reshape root is MergeReshapes'.)
class MergeIntoReshape final : public RewritePattern<ReshapeTo> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Squeeze", "Unsqueeze", "Flatten"}; }
  std::optional<ReshapeTo> match(const ir::Node& node, const PassContext& ctx) const override {
    if (ctx.opset() < 5) return std::nullopt;  // Reshape takes its shape as an input from opset 5
    if (!ir::isDefaultDomain(node) || node.output(0) == nullptr) return std::nullopt;
    auto dims = node.output(0)->type().staticDims();
    if (!dims) return std::nullopt;
    const ir::Node* first = reshapingProducer(node);
    if (first == nullptr || !ir::hasSingleUse(*node.input(0))) return std::nullopt;
    return ReshapeTo{first->input(0), std::move(*dims)};
  }
  Status rewrite(ir::Node& node, const ReshapeTo& m, ir::Rewriter& rw) const override {
    ir::Graph& graph = rw.graph();
    const std::vector<int64_t>& dims = m.dims;
    ir::Value* shape = graph.addInitializer(
        graph.uniqueValueName(node.output(0)->name() + "_shape"),
        ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(dims.size())}, dims));
    std::string name = graph.uniqueNodeName(node.name().empty() ? "reshape" : node.name() + "_reshape");
    ir::Node* reshape = graph.addNode("Reshape", {m.source, shape},
                                      {graph.uniqueValueName(node.output(0)->name() + "_reshaped")}, name, "", &node);
    reshape->output(0)->mutableType() = node.output(0)->type();
    rw.replaceAllUsesWith(node.output(0), reshape->output(0));
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeEliminateIdentity(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<RemoveNoOp>());
  patterns.push_back(std::make_unique<MergeReshapes>());
  patterns.push_back(std::make_unique<MergeIntoReshape>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
