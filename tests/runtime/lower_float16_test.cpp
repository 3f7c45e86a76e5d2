// The lowering's float16 widening (src/runtime/lower_float16.cpp): a float16 graph runs in
// float32 between one Cast in and one Cast out, its Convs fused and channels last like a
// float32 graph's; its outputs are the float32 graph's rounded once. Values that leave the
// region (graph outputs, kept values, readers outside) stay float16 under their names.
#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/kernel_harness.h"
#include "support/lowering_check.h"
#include "support/tolerance.h"
#include "whittle/ir/fold.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using whittle::testing::countOps;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;

namespace {

ir::Tensor as(ir::DataType dtype, const ir::Tensor& t) { return ir::fromDoubles(dtype, t.dims(), ir::toDoubles(t)); }

/// A SqueezeNet fire module and a classifier head in `dtype`, on float16-exact weights:
/// Conv -> Relu -> MaxPool -> (1x1 Conv -> Relu, 3x3 Conv -> Relu) -> Concat -> GlobalAveragePool
/// -> Flatten -> Softmax. The Concat is an output too; `shapeOut` adds a Shape of it (a reader
/// outside the region) as a third output.
ir::Model fire(ir::DataType dtype, bool shapeOut = false) {
  GraphBuilder rand(7);
  auto w = [&](GraphBuilder& b, const std::string& name, std::vector<int64_t> dims) {
    return b.constant(name, as(dtype, rand.randomTensor(ir::DataType::kFloat16, dims, -0.4, 0.4)));
  };
  GraphBuilder b(3);
  ir::Value* x = b.input("x", dtype, {1, 3, 16, 16});
  auto conv = [&](ir::Value* in, int64_t cin, int64_t cout, int64_t k, const std::string& name) {
    const int64_t p = k / 2;
    ir::Value* y = b.node("Conv", {in, w(b, name + "_w", {cout, cin, k, k}), w(b, name + "_b", {cout})},
                          {ir::Attribute::makeInts("pads", {p, p, p, p})}, name);
    return b.node("Relu", {y}, {}, name + "_relu");
  };
  ir::Value* pooled = b.node("MaxPool", {conv(x, 3, 8, 3, "stem")},
                             {ir::Attribute::makeInts("kernel_shape", {2, 2}), ir::Attribute::makeInts("strides", {2, 2})},
                             "pool");
  ir::Value* squeeze = conv(pooled, 8, 4, 1, "squeeze");
  ir::Value* cat = b.node("Concat", {conv(squeeze, 4, 6, 1, "e1"), conv(squeeze, 4, 6, 3, "e3")},
                          {ir::Attribute::makeInt("axis", 1)}, "cat");
  ir::Value* gap = b.node("GlobalAveragePool", {cat}, {}, "gap");
  ir::Value* flat = b.node("Flatten", {gap}, {}, "flat");
  b.output(b.node("Softmax", {flat}, {}, "prob"));
  b.output(cat);
  if (shapeOut) b.output(b.node("Shape", {cat}, {}, "shape"));
  return b.build(13);
}

}  // namespace

TEST_CASE("A float16 graph runs in float32 between one Cast in and one Cast per output", "[runtime][lowering]") {
  ir::Model model = fire(ir::DataType::kFloat16, /*shapeOut=*/true);
  ir::Model m = lowered(model);
  // Every Conv fused (its Relu a post-op) and float32; one Cast in, one per float16 output.
  CHECK(countOps(*m.graph, "Conv") == 0);
  CHECK(countOps(*m.graph, "FusedConv") == 4);
  CHECK(countOps(*m.graph, "Relu") == 0);
  CHECK(countOps(*m.graph, "Cast") == 3);
  for (const ir::Node* n : m.graph->nodes()) {
    if (n->opType() == "FusedConv") CHECK(n->input(1)->dtype() == ir::DataType::kFloat);
  }
  // The interface keeps its names and types; the Shape reads the float16 Concat.
  REQUIRE(m.graph->outputs().size() == 3);
  CHECK(m.graph->outputs()[0]->name() == "prob");
  CHECK(m.graph->outputs()[0]->dtype() == ir::DataType::kFloat16);
  CHECK(m.graph->outputs()[1]->name() == "cat");
  CHECK(m.graph->outputs()[1]->dtype() == ir::DataType::kFloat16);
  const ir::Node* shape = testing::findNode(*m.graph, "shape");
  REQUIRE(shape != nullptr);
  CHECK(shape->input(0) == m.graph->outputs()[1]);
  // No float16 weight is left behind.
  for (const ir::Value* v : m.graph->initializers()) CHECK(v->dtype() != ir::DataType::kFloat16);
}

TEST_CASE("A widened float16 graph gives the float32 graph's outputs rounded once", "[runtime][lowering]") {
  GraphBuilder data(11);
  ir::Tensor x16 = data.randomTensor(ir::DataType::kFloat16, {1, 3, 16, 16});
  for (int threads : {1, 2}) {
    INFO("threads " << threads);
    std::vector<ir::Tensor> half = testing::runOutputs(fire(ir::DataType::kFloat16), {{"x", x16}}, threads);
    std::vector<ir::Tensor> single =
        testing::runOutputs(fire(ir::DataType::kFloat), {{"x", as(ir::DataType::kFloat, x16)}}, threads);
    REQUIRE(half.size() == 2);
    for (size_t i = 0; i < half.size(); ++i) {
      CHECK(half[i].dtype() == ir::DataType::kFloat16);
      REQUIRE(half[i].dims() == single[i].dims());
      // The same float32 computation rounded once (within an ulp of float16, 2^-10 relative).
      std::vector<double> expected = ir::toDoubles(as(ir::DataType::kFloat16, single[i]));
      testing::checkClose(half[i], expected, 1e-3, 1e-6);
    }
  }
}

TEST_CASE("A float32 graph and float16 ops outside the list are left as they are", "[runtime][lowering]") {
  ir::Model single = fire(ir::DataType::kFloat);
  ir::Model copy = single.clone();
  CHECK(runtime::widenFloat16(*copy.graph) == 0);
  CHECK(copy.graph->numNodes() == single.graph->numNodes());
  // A Cast to float16 is not widened (its attribute names the dtype); the Relu after it is.
  GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3});
  ir::Value* h = b.node("Cast", {x}, {ir::Attribute::makeInt("to", static_cast<int64_t>(ir::DataType::kFloat16))}, "h");
  b.output(b.node("Relu", {h}, {}, "r"));
  ir::Model model = b.build(13);
  ir::Model m = lowered(model);
  CHECK(testing::opTypes(*m.graph) == std::vector<std::string>{"Cast", "Cast", "Relu", "Cast"});
  std::vector<ir::Tensor> out = testing::runOutputs(model, {{"x", b.randomTensor(ir::DataType::kFloat, {2, 3})}});
  CHECK(out[0].dtype() == ir::DataType::kFloat16);
}

TEST_CASE("Float16 ops whose kernels are float32 only run widened (Einsum, ReduceLogSumExp, CumSum)", "[runtime][lowering]") {
  // piper's Arabic diacritizer, converted to float16, stopped at its positional-encoding Einsum:
  // the Einsum kernel has no float16, and the op was not in the widening list.
  auto build = [](ir::DataType dtype) {
    GraphBuilder b(5);
    ir::Value* x = b.input("x", dtype, {2, 3, 4});
    ir::Value* w = b.constant("w", as(dtype, GraphBuilder(9).randomTensor(ir::DataType::kFloat16, {4, 5}, -1, 1)));
    ir::Value* e = b.node("Einsum", {x, w}, {ir::Attribute::makeString("equation", "bij,jk->bik")}, "pos_enc");
    ir::Value* cum = b.node("CumSum", {e, b.constantInt64("axis", {}, {1})}, {}, "cum");
    b.output(b.node("ReduceLogSumExp", {cum}, {ir::Attribute::makeInts("axes", {2})}, "lse"));
    return b.build(13);
  };
  ir::Model half = build(ir::DataType::kFloat16);
  ir::Model m = lowered(half);
  CHECK(countOps(*m.graph, "Einsum") == 1);
  for (const ir::Node* n : m.graph->nodes()) {
    if (n->opType() != "Cast") CHECK(n->output(0)->dtype() == ir::DataType::kFloat);
  }
  GraphBuilder data(3);
  ir::Tensor x16 = data.randomTensor(ir::DataType::kFloat16, {2, 3, 4}, -1, 1);
  std::vector<ir::Tensor> got = testing::runOutputs(half, {{"x", x16}});
  std::vector<ir::Tensor> single = testing::runOutputs(build(ir::DataType::kFloat), {{"x", as(ir::DataType::kFloat, x16)}});
  REQUIRE(got.size() == 1);
  CHECK(got[0].dtype() == ir::DataType::kFloat16);
  REQUIRE(got[0].dims() == single[0].dims());
  testing::checkClose(got[0], ir::toDoubles(as(ir::DataType::kFloat16, single[0])), 1e-3, 1e-6);
}
