// tie-transposed-weights: a weight stored again transposed reads the original through a Transpose.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

namespace {

/// The transpose of a 2-D float tensor, as the TorchScript exporter writes a tied LM head.
ir::Tensor transposed(const ir::Tensor& t) {
  const int64_t rows = t.dims()[0], cols = t.dims()[1];
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) v[static_cast<size_t>(j * rows + i)] = t.data<float>()[i * cols + j];
  }
  return ir::Tensor::fromVector(DataType::kFloat, {cols, rows}, v);
}

/// Embedding [vocab, dim] read by Gather, and the LM head [dim, vocab] read by MatMul.
ir::Model lmHead(testing::GraphBuilder& b, int64_t vocab, int64_t dim, bool headIsCopy) {
  ir::Value* ids = b.input("ids", DataType::kInt64, {1, 4});
  ir::Value* embedding = b.weight("embedding", {vocab, dim});
  ir::Value* head = headIsCopy ? b.constant("head", transposed(*embedding->constant())) : b.weight("head", {dim, vocab});
  ir::Value* hidden = b.node("Gather", {embedding, ids});
  ir::Value* act = b.node("Tanh", {hidden});
  b.output(b.node("MatMul", {act, head}), DataType::kFloat, {1, 4, vocab});
  return b.build(17);
}

}  // namespace

TEST_CASE("tie-transposed-weights reads a transposed copy through a Transpose of the original",
          "[passes][tie-transposed-weights]") {
  testing::GraphBuilder b(501);
  ir::Model model = lmHead(b, 1024, 320, /*headIsCopy=*/true);  // 1.25 MiB each
  auto run = testing::runPipelineOn(model, "tie-transposed-weights");
  CHECK(run.rewrites() == 1);
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Transpose", "Gather", "Tanh", "MatMul"});
  REQUIRE(run.after.graph->initializers().size() == 1);
  CHECK(run.after.graph->initializers()[0]->name() == "embedding");  // the Gather's layout stays
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after, 0.0);  // the same bytes: exact

  SECTION("fold-constants afterwards does not write the copy back") {
    auto again = testing::runPipelineOn(run.after, "fold-constants");
    CHECK(again.after.graph->initializers().size() == 1);
  }
}

TEST_CASE("tie-transposed-weights keeps weights that are not copies", "[passes][tie-transposed-weights]") {
  testing::GraphBuilder b(502);
  SECTION("swapped shapes, different values") { testing::requireUnchanged(lmHead(b, 1024, 320, false), "tie-transposed-weights"); }
  SECTION("a copy below 1 MiB: fold-constants would write it back") {
    testing::requireUnchanged(lmHead(b, 512, 256, true), "tie-transposed-weights");
  }
  SECTION("a copy that differs in one element") {
    ir::Value* ids = b.input("ids", DataType::kInt64, {1, 4});
    ir::Value* embedding = b.weight("embedding", {1024, 320});
    ir::Tensor near = transposed(*embedding->constant());
    near.mutableData<float>()[77 * 1024 + 3] += 1.0f;
    ir::Value* head = b.constant("head", near);
    ir::Value* hidden = b.node("Gather", {embedding, ids});
    b.output(b.node("MatMul", {hidden, head}), DataType::kFloat, {1, 4, 1024});
    testing::requireUnchanged(b.build(17), "tie-transposed-weights");
  }
}
