// cancel-transposes
// Before: y = Transpose(Transpose(x, p1), p2)
// After:  y = Transpose(x, p) with p[i] = p1[p2[i]], or uses of y read x when p is the
//         identity permutation.
// Requires: the rank known for an absent perm (which reverses the axes): from the other
// perm or the input's shape; the inner Transpose may have other uses (it then stays).
#include "pass_factories.h"

namespace whittle::passes {
namespace {

// The inner Transpose and the composed permutation (p[i] = p1[p2[i]]).
struct TransposePair {
  const ir::Node* inner = nullptr;
  std::vector<int64_t> perm;
};

class CancelTransposes final : public RewritePattern<TransposePair> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Transpose"}; }
  std::optional<TransposePair> match(const ir::Node& outer, const PassContext&) const override {
    const ir::Value* mid = outer.input(0);
    const ir::Node* inner = ir::producerIs(mid, "Transpose", /*singleUse=*/false);
    if (inner == nullptr || mid->hasImplicitUses() || inner->input(0) == nullptr || outer.output(0) == nullptr) {
      return std::nullopt;
    }
    std::vector<int64_t> p1, p2;
    if (!perms(*inner, outer, p1, p2)) return std::nullopt;
    std::vector<int64_t> p = compose(p1, p2);
    if (isIdentity(p) && !canForward(outer.output(0), inner->input(0))) return std::nullopt;
    return TransposePair{inner, std::move(p)};
  }
  Status rewrite(ir::Node& outer, const TransposePair& m, ir::Rewriter& rw) const override {
    if (isIdentity(m.perm)) {
      rw.replaceAllUsesWith(outer.output(0), m.inner->input(0));
      return Status::ok();
    }
    outer.setInput(0, m.inner->input(0));
    outer.setAttribute(ir::Attribute::makeInts("perm", m.perm));
    return Status::ok();
  }

 private:
  // Both permutations, an absent one made explicit (it reverses the axes); false when the
  // rank that needs is unknown, the two disagree on it, or either is not a permutation.
  static bool perms(const ir::Node& inner, const ir::Node& outer, std::vector<int64_t>& p1, std::vector<int64_t>& p2) {
    p1 = inner.attrInts("perm");
    p2 = outer.attrInts("perm");
    size_t rank = !p1.empty() ? p1.size() : p2.size();
    if (rank == 0) {
      auto dims = ir::knownRankDims(inner.input(0));
      if (!dims) return false;
      rank = dims->size();
    }
    for (std::vector<int64_t>* p : {&p1, &p2}) {
      if (!p->empty()) continue;
      for (size_t i = 0; i < rank; ++i) p->push_back(static_cast<int64_t>(rank - 1 - i));
    }
    return p1.size() == rank && p2.size() == rank && isPermutation(p1) && isPermutation(p2);
  }
  // Each of 0..size-1 once: a perm that is not (a hostile or broken model) is left to the
  // Transpose kernel's error rather than composed (found by fuzz_optimize: a heap overflow).
  static bool isPermutation(const std::vector<int64_t>& p) {
    std::vector<bool> seen(p.size(), false);
    for (int64_t v : p) {
      if (v < 0 || v >= static_cast<int64_t>(p.size()) || seen[static_cast<size_t>(v)]) return false;
      seen[static_cast<size_t>(v)] = true;
    }
    return true;
  }
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

Expected<std::unique_ptr<Pass>> makeCancelTransposes(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<CancelTransposes>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
