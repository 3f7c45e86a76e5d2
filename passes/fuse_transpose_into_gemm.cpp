// fuse-transpose-into-gemm
// Before: y = Gemm(Transpose(A, perm=[1,0]), B, C){transA=t}
// After:  y = Gemm(A, B, C){transA=1-t}            (and the same for B with transB)
// Requires: the Transpose is 2-D with perm [1,0] (or no perm on a rank-2 input).
#include <array>

#include "pass_factories.h"

namespace whittle::passes {
namespace {

bool isSwap2d(const ir::Node& t) {
  std::vector<int64_t> perm = t.attrInts("perm");
  if (perm.empty()) return t.input(0)->type().shape && t.input(0)->type().shape->size() == 2;
  return perm == std::vector<int64_t>{1, 0};
}

const ir::Node* transposeFeeding(const ir::Node& gemm, size_t i) {
  const ir::Value* v = gemm.input(i);
  const ir::Node* t = ir::producerIs(v, "Transpose", /*singleUse=*/false);
  if (t == nullptr || t->input(0) == nullptr || !isSwap2d(*t)) return nullptr;
  return t;
}

// The Transposes feeding the Gemm's A and B (nullptr where none does).
using TransposeInputs = std::array<const ir::Node*, 2>;

class FuseTransposeIntoGemm final : public RewritePattern<TransposeInputs> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Gemm"}; }
  std::optional<TransposeInputs> match(const ir::Node& gemm, const PassContext&) const override {
    TransposeInputs t = {transposeFeeding(gemm, 0), transposeFeeding(gemm, 1)};
    if (t[0] == nullptr && t[1] == nullptr) return std::nullopt;
    return t;
  }
  Status rewrite(ir::Node& gemm, const TransposeInputs& transposes, ir::Rewriter&) const override {
    for (size_t i = 0; i < 2; ++i) {
      const ir::Node* t = transposes[i];
      if (t == nullptr) continue;
      const char* attr = i == 0 ? "transA" : "transB";
      gemm.setAttribute(ir::Attribute::makeInt(attr, 1 - gemm.attrInt(attr, 0)));
      gemm.setInput(i, t->input(0));
    }
    return Status::ok();
  }
};

}  // namespace

Expected<std::unique_ptr<Pass>> makeFuseTransposeIntoGemm(const NoOptions&) {
  std::vector<std::unique_ptr<Pattern>> patterns;
  patterns.push_back(std::make_unique<FuseTransposeIntoGemm>());
  return makePatternPass(std::move(patterns));
}

}  // namespace whittle::passes
