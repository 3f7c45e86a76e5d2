// Graph surgery of the quantize passes: the opset upgrade that per-axis DequantizeLinear needs
// (Softmax's old 2-D meaning, Clip, Squeeze/Unsqueeze axes) and Q/DQ pair insertion.
#include "whittle/quant/qdq.h"

#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"
#include "support/graph_builder.h"

using namespace whittle;

TEST_CASE("ensureOpset upgrades old models without changing what they compute", "[quant]") {
  testing::GraphBuilder b(5);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3, 4});
  ir::Value* c = b.node("Clip", {x, b.constant("lo", {}, {0.0f}), b.constant("hi", {}, {0.5f})}, {}, "clip");
  ir::Value* u = b.node("Unsqueeze", {c}, {ir::Attribute::makeInts("axes", {0})}, "unsqueeze");
  ir::Value* s = b.node("Squeeze", {u}, {ir::Attribute::makeInts("axes", {0})}, "squeeze");
  // Softmax at opset 12 with the default axis 1 works on [2, 3*4]; at 13 it would be axis -1.
  ir::Value* y = b.node("Softmax", {s}, {}, "softmax");
  b.output(y, ir::DataType::kFloat, {2, 3, 4});
  ir::Model model = b.build(12);
  ir::Model up = model.clone();
  Status st = quant::ensureOpset(up, 13);
  INFO(st.message());
  REQUIRE(st.isOk());
  CHECK(up.opsetVersion("") == 13);
  REQUIRE(ir::verify(*up.graph).isOk());
  for (const ir::Node* n : up.graph->nodes()) {
    if (n->opType() == "Unsqueeze" || n->opType() == "Squeeze") {
      CHECK_FALSE(n->hasAttribute("axes"));
      CHECK(n->input(1) != nullptr);
    }
  }
  auto feeds = testing::randomFeeds(model, 3, -2.0, 2.0);
  auto ya = testing::runModel(model, feeds);
  auto yb = testing::runModel(up, feeds);
  CHECK(testing::normRelativeError(yb[0].second, ya[0].second) < 1e-6);

  // An op whose meaning changed in a way whittle does not rewrite blocks the upgrade.
  testing::GraphBuilder b2(6);
  ir::Value* x2 = b2.input("x", ir::DataType::kFloat, {4});
  b2.output(b2.node("TopK", {x2, b2.constantInt64("k", {1}, {2})}, {}, "topk"));
  ir::Model blocked = b2.build(10);
  Status no = quant::ensureOpset(blocked, 13);
  REQUIRE_FALSE(no.isOk());
  CHECK_THAT(no.message(), Catch::Contains("TopK 'topk'"));
  CHECK(blocked.opsetVersion("") == 10);
}

TEST_CASE("insertQdqPair routes every use and the graph output through the pair", "[quant]") {
  testing::GraphBuilder b(2);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4});
  ir::Value* r = b.node("Relu", {x}, {}, "relu");
  ir::Value* n1 = b.node("Neg", {r}, {}, "neg");
  b.output(r, ir::DataType::kFloat, {1, 4});
  b.output(n1, ir::DataType::kFloat, {1, 4});
  ir::Model model = b.build(17);
  ir::Graph& g = *model.graph;
  ir::Value* rv = g.findValue("relu");
  quant::QuantParams p{0.1f, 0, ir::DataType::kUint8};
  ir::Value* q = quant::insertQdqPair(g, rv, p);
  REQUIRE(g.topologicalSort().isOk());
  REQUIRE(ir::verify(g).isOk());
  CHECK(q->dtype() == ir::DataType::kUint8);
  CHECK(rv->uses().size() == 1);  // only the QuantizeLinear
  CHECK(g.outputs()[0]->name() == "relu");
  CHECK(g.outputs()[0]->producer()->opType() == "DequantizeLinear");
  CHECK(g.findValue("neg")->producer()->input(0)->producer()->opType() == "DequantizeLinear");
}
