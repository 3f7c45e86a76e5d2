// cancel-transposes
// Before: y = Transpose(Transpose(x, p1), p2)
// After:  y = Transpose(x, p) with p[i] = p1[p2[i]], or uses of y read x when p is the
//         identity permutation.
// Requires: both perms explicit (an absent perm reverses the axes: needs the rank, taken
// from the other perm); the inner Transpose may have other uses (it then stays).
#include "pass_factories.h"
#include "fold_util.h"

namespace whittle::passes {
namespace {

class CancelTransposes final : public RewritePattern {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Transpose"}; }
  bool match(const ir::Node& outer, const PassContext&) const override {
    const ir::Value* mid = outer.input(0);
    const ir::Node* inner = mid ? mid->producer() : nullptr;
    if (inner == nullptr || !isDefaultDomainOp(*inner, {"Transpose"}) || mid->hasImplicitUses()) return false;
    std::vector<int64_t> p1 = inner->attrInts("perm"), p2 = outer.attrInts("perm");
    if (p1.empty() || p2.empty() || p1.size() != p2.size()) return false;
    std::vector<int64_t> p = compose(p1, p2);
    return !isIdentity(p) || canForward(outer.output(0), inner->input(0));
  }
  Status rewrite(ir::Node& outer, PassContext&) const override {
    ir::Node* inner = outer.input(0)->producer();
    std::vector<int64_t> p = compose(inner->attrInts("perm"), outer.attrInts("perm"));
    if (isIdentity(p)) {
      outer.graph().replaceAllUsesWith(outer.output(0), inner->input(0));
      return Status::ok();
    }
    outer.setInput(0, inner->input(0));
    outer.setAttribute(ir::Attribute::makeInts("perm", p));
    return Status::ok();
  }

 private:
  static std::vector<int64_t> compose(const std::vector<int64_t>& p1, const std::vector<int64_t>& p2) {
    std::vector<int64_t> p(p2.size());
    for (size_t i = 0; i < p2.size(); ++i) p[i] = p1[static_cast<size_t>(p2[i])];
    return p;
  }
  static bool isIdentity(const std::vector<int64_t>& p) {
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i] != static_cast<int64_t>(i)) return false;
    }
    return true;
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeCancelTransposes(const PassOptions&) {
  std::vector<std::unique_ptr<RewritePattern>> patterns;
  patterns.push_back(std::make_unique<CancelTransposes>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
