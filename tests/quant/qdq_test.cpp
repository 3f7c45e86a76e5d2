// Graph surgery of the quantize passes: Q/DQ pair insertion.
#include "whittle/quant/qdq.h"

#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"
#include "support/graph_builder.h"

using namespace whittle;

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
