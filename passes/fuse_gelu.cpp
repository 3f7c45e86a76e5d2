// fuse-gelu
// Before (erf form):  y = Mul(Mul(x, Add(Erf(Div(x, sqrt(2))), 1)), 0.5)
//                     (any operand order; Div by sqrt(2) or Mul by 1/sqrt(2); the 0.5 may
//                     multiply x first: Mul(Mul(x, 0.5), Add(Erf(..), 1)), or the other
//                     factor: Mul(x, Mul(Add(Erf(..), 1), 0.5)))
// Before (tanh form): y = 0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
//                     (x^3 as Pow(x, 3) or Mul(x, Mul(x, x)); the same orders of the Muls)
// After:              y = Gelu(x){approximate = none | tanh}
// Requires: opset >= 20 (where Gelu exists); below it the pattern is left decomposed and
// the pass notes how many it left.
#include <cmath>

#include "pass_factories.h"

namespace whittle::passes {
namespace {

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kSqrt2OverPi = 0.7978845608028654;

// x when `v` = x / sqrt(2) or x * (1/sqrt(2)).
ir::Value* scaledBySqrtHalf(const ir::Value* v) {
  if (ir::Node* div = ir::producerIs(v, "Div"); div != nullptr && ir::isScalarConstant(div->input(1), kSqrt2, 1e-4)) {
    return div->input(0);
  }
  if (ir::Node* mul = ir::producerIs(v, "Mul")) {
    for (size_t i = 0; i < 2; ++i) {
      if (ir::isScalarConstant(mul->input(1 - i), 1.0 / kSqrt2, 1e-4)) return mul->input(i);
    }
  }
  return nullptr;
}

// Whether `v` = Pow(x, 3) or x * (x * x) in any operand order.
bool isCube(const ir::Value* v, const ir::Value* x) {
  if (ir::Node* pow = ir::producerIs(v, "Pow")) return pow->input(0) == x && ir::isScalarConstant(pow->input(1), 3.0);
  ir::Node* outer = ir::producerIs(v, "Mul");
  if (outer == nullptr || outer->numInputs() != 2) return false;
  for (size_t i = 0; i < 2; ++i) {
    ir::Node* square = ir::producerIs(outer->input(1 - i), "Mul");
    if (outer->input(i) == x && square != nullptr && square->input(0) == x && square->input(1) == x) return true;
  }
  return false;
}

// x when `v` = 1 + Erf(x / sqrt(2)) (erf) or 1 + Tanh(sqrt(2/pi) * (x + 0.044715 x^3)) (tanh).
ir::Value* onePlusCore(const ir::Value* v, bool& tanh) {
  ir::Node* add = ir::producerIs(v, "Add");
  if (add == nullptr) return nullptr;
  for (size_t i = 0; i < 2; ++i) {
    if (!ir::isScalarConstant(add->input(1 - i), 1.0)) continue;
    if (ir::Node* erf = ir::producerIs(add->input(i), "Erf")) {
      tanh = false;
      return scaledBySqrtHalf(erf->input(0));
    }
    if (ir::Node* th = ir::producerIs(add->input(i), "Tanh")) {
      ir::Node* scale = ir::producerIs(th->input(0), "Mul");
      if (scale == nullptr) return nullptr;
      for (size_t j = 0; j < 2; ++j) {
        if (!ir::isScalarConstant(scale->input(1 - j), kSqrt2OverPi, 1e-4)) continue;
        ir::Node* inner = ir::producerIs(scale->input(j), "Add");  // x + 0.044715 * x^3
        if (inner == nullptr) return nullptr;
        for (size_t k = 0; k < 2; ++k) {
          ir::Value* x = inner->input(k);
          ir::Node* cubic = ir::producerIs(inner->input(1 - k), "Mul");
          if (cubic == nullptr) continue;
          for (size_t q = 0; q < 2; ++q) {
            if (isCube(cubic->input(q), x) && ir::isScalarConstant(cubic->input(1 - q), 0.044715, 1e-3)) {
              tanh = true;
              return x;
            }
          }
        }
      }
    }
  }
  return nullptr;
}

struct GeluMatch {
  ir::Value* x = nullptr;
  bool tanh = false;
};

std::optional<GeluMatch> matchGelu(const ir::Node& root) {
  if (root.numInputs() != 2) return std::nullopt;
  GeluMatch m;
  for (size_t i = 0; i < 2; ++i) {
    const ir::Value* a = root.input(i);
    const ir::Value* b = root.input(1 - i);
    // Form 1: root = Mul(Mul(x, onePlus), 0.5)
    if (ir::isScalarConstant(b, 0.5)) {
      if (ir::Node* inner = ir::producerIs(a, "Mul")) {
        for (size_t j = 0; j < 2; ++j) {
          ir::Value* x = onePlusCore(inner->input(1 - j), m.tanh);
          if (x != nullptr && x == inner->input(j)) {
            m.x = x;
            return m;
          }
        }
      }
    }
    // Form 2: root = Mul(x, Mul(onePlus, 0.5))
    if (ir::Node* half = ir::producerIs(b, "Mul"); half != nullptr && half->numInputs() == 2) {
      for (size_t j = 0; j < 2; ++j) {
        if (!ir::isScalarConstant(half->input(1 - j), 0.5)) continue;
        ir::Value* x = onePlusCore(half->input(j), m.tanh);
        if (x != nullptr && x == a) {
          m.x = x;
          return m;
        }
      }
    }
    // Form 3: root = Mul(Mul(x, 0.5), onePlus)
    ir::Value* x = onePlusCore(b, m.tanh);
    if (x != nullptr) {
      if (ir::Node* half = ir::producerIs(a, "Mul")) {
        for (size_t j = 0; j < 2; ++j) {
          if (half->input(j) == x && ir::isScalarConstant(half->input(1 - j), 0.5)) {
            m.x = x;
            return m;
          }
        }
      }
    }
  }
  return std::nullopt;
}

constexpr int64_t kGeluOpset = 20;

class FuseGelu final : public RewritePattern<GeluMatch> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Mul"}; }
  std::optional<GeluMatch> match(const ir::Node& root, const PassContext& ctx) const override {
    if (ctx.opset() < kGeluOpset) return std::nullopt;
    return matchGelu(root);
  }
  Status rewrite(ir::Node& root, const GeluMatch& m, ir::Rewriter& rw) const override {
    ir::Graph& graph = rw.graph();
    std::string name = graph.uniqueNodeName(root.name().empty() ? "gelu" : root.name() + "_gelu");
    ir::Node* gelu = graph.addNode("Gelu", {m.x}, {root.output(0)->name() + "_gelu"}, name, "", &root);
    if (m.tanh) gelu->setAttribute(ir::Attribute::makeString("approximate", "tanh"));
    gelu->output(0)->mutableType() = root.output(0)->type();
    rw.replaceAllUsesWith(root.output(0), gelu->output(0));
    return Status::ok();
  }
};

// Fuses at opset >= 20; below it counts the decomposed GELUs it leaves and says so.
class FuseGeluPass final : public Pass {
 public:
  Status run(ir::Model& model, PassContext& ctx) override {
    if (ctx.opset() < kGeluOpset) {
      int64_t left = 0;
      for (const ir::Node* node : model.graph->nodes()) {
        if (ir::isDefaultDomainOp(*node, {"Mul"}) && matchGelu(*node)) ++left;
      }
      if (left > 0) {
        ctx.stats().counters["left-decomposed"] += left;
        ctx.note("fuse-gelu: opset " + std::to_string(ctx.opset()) + " < 20 has no Gelu; left " +
                 std::to_string(left) + " decomposed");
      }
      return Status::ok();
    }
    return patterns_.run(model, ctx);
  }

 private:
  PatternPass patterns_{[] {
    std::vector<std::unique_ptr<Pattern>> patterns;
    patterns.push_back(std::make_unique<FuseGelu>());
    return patterns;
  }()};
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseGelu(const NoOptions&) {
  return std::unique_ptr<Pass>(std::make_unique<FuseGeluPass>());
}

}  // namespace whittle::passes
