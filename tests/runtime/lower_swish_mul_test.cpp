// Step U of the CPU lowering (src/runtime/lower_swish_mul.cpp): SiLU(gate) * up written out as
// Sigmoid, Mul, Mul becomes one SwishMul; structure and numbers against the unlowered graph,
// and what must stay.
#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "support/lowering_check.h"
#include "whittle/runtime/lowering.h"

using namespace whittle;
using whittle::testing::checkSameAsUnlowered;
using whittle::testing::countOps;
using whittle::testing::GraphBuilder;
using whittle::testing::lowered;
using whittle::testing::opTypes;

TEST_CASE("SiLU-gated units become one SwishMul", "[runtime][lowering][swish]") {
  for (bool swapped : {false, true}) {
    INFO((swapped ? "operands swapped" : "Llama's order"));
    GraphBuilder b(60);
    ir::Value* h = b.input("h", ir::DataType::kFloat, {1, 6, 16});
    ir::Value* gate = b.node("MatMul", {h, b.weight("wg", {16, 40})}, {}, "gate");
    ir::Value* up = b.node("MatMul", {h, b.weight("wu", {16, 40})}, {}, "up");
    ir::Value* sig = b.node("Sigmoid", {gate}, {}, "sig");
    ir::Value* silu = swapped ? b.node("Mul", {sig, gate}, {}, "silu") : b.node("Mul", {gate, sig}, {}, "silu");
    ir::Value* y = swapped ? b.node("Mul", {up, silu}, {}, "gated") : b.node("Mul", {silu, up}, {}, "gated");
    b.output(b.node("MatMul", {y, b.weight("wd", {40, 16})}, {}, "down"));
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    CHECK(opTypes(*m.graph) == std::vector<std::string>{"MatMul", "MatMul", "SwishMul", "MatMul"});
    checkSameAsUnlowered(model, {{"h", b.randomTensor(ir::DataType::kFloat, {1, 6, 16}, -2, 2)}});
  }
  SECTION("a lone x * Sigmoid(x) becomes SwishMul(x); not after a Conv, not when a middle value is an output") {
    GraphBuilder b(61);
    ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 6, 6});
    ir::Value* lone = b.node("Mul", {x, b.node("Sigmoid", {x}, {}, "s1")}, {}, "m1");
    b.output(b.node("Relu", {lone}, {}, "r1"));
    ir::Value* conv = b.node("Conv", {x, b.weight("w", {4, 4, 1, 1})}, {}, "conv");
    b.output(b.node("Mul", {conv, b.node("Sigmoid", {conv}, {}, "s2")}, {}, "m2"));
    ir::Value* s3 = b.node("Sigmoid", {x}, {}, "s3");
    b.output(b.node("Mul", {s3, x}, {}, "m3"));
    b.output(s3);  // the sigmoid is an output
    ir::Model model = b.build(17);
    ir::Model m = lowered(model);
    CHECK(countOps(*m.graph, "SwishMul") == 1);
    CHECK(countOps(*m.graph, "FusedConv") == 1);
    CHECK(countOps(*m.graph, "Sigmoid") == 1);
    checkSameAsUnlowered(model, {{"x", b.randomTensor(ir::DataType::kFloat, {1, 4, 6, 6}, -6, 6)}});
  }
}
