// The verifier accepts well-formed graphs and rejects each broken invariant with a message
// that names the node and the value.
#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/verifier.h"

using namespace whittle;
using ir::DataType;
using testing::GraphBuilder;

namespace {

// A small well-formed graph: y = Relu(Conv(x, w, b)) + x.
ir::Model goodModel() {
  GraphBuilder b(11);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 2, 4, 4});
  ir::Value* w = b.weight("w", {2, 2, 1, 1});
  ir::Value* bias = b.weight("b", {2});
  ir::Value* conv = b.node("Conv", {x, w, bias}, {}, "conv");
  ir::Value* relu = b.node("Relu", {conv}, {}, "relu");
  b.output(b.node("Add", {relu, x}, {}, "add"), DataType::kFloat, {1, 2, 4, 4});
  return b.build(13);
}

using testing::findNode;

// Asserts that verify() fails with `code` and a single-line message containing every part.
void requireRejected(const ir::Graph& g, StatusCode code, std::initializer_list<std::string> parts) {
  Status s = ir::verify(g);
  INFO("verifier said: " << (s.isOk() ? std::string("ok") : s.message()));
  REQUIRE_FALSE(s.isOk());
  CHECK(s.code() == code);
  CHECK(s.message().find('\n') == std::string::npos);
  for (const std::string& part : parts) CHECK_THAT(s.message(), Catch::Contains(part));
}

}  // namespace

TEST_CASE("verifier accepts well-formed graphs", "[ir]") {
  SECTION("a chain with weights") {
    ir::Model m = goodModel();
    CHECK(ir::verify(*m.graph).isOk());
  }
  SECTION("an empty graph") {
    ir::Graph g;
    CHECK(ir::verify(g).isOk());
  }
  SECTION("outputs that are inputs or initializers, absent optional inputs and outputs") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {3});
    ir::Value* w = b.weight("w", {3});
    std::vector<ir::Value*> outs = b.nodeN("Dropout", {x, nullptr, nullptr}, 2);
    b.output(x);
    b.output(w);
    b.output(outs[0]);
    b.graph().addNode("TopK", {x, nullptr}, {"vals", ""}, "topk");
    CHECK(ir::verify(b.graph()).isOk());
  }
  SECTION("an initializer that is also listed as a graph input (IR version 3)") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {3});
    ir::Value* w = b.input("w", DataType::kFloat, {3});
    w->setConstant(ir::Tensor(DataType::kFloat, {3}));
    b.output(b.node("Add", {x, w}));
    CHECK(ir::verify(b.graph()).isOk());
  }
  SECTION("subgraph captures declared as implicit inputs") {
    GraphBuilder b;
    ir::Value* x = b.input("x", DataType::kFloat, {3});
    ir::Value* cond = b.input("cond", DataType::kBool, {});
    ir::Value* r = b.node("Relu", {x});
    b.output(b.node("If", {cond}, {}, "if"));
    b.lastNode()->addImplicitInput(r);
    b.lastNode()->addImplicitInput(x);
    CHECK(ir::verify(b.graph()).isOk());
  }
  SECTION("a random graph from the builder, after a topological sort") {
    GraphBuilder b(99);
    std::vector<ir::Value*> pool = {b.input("x", DataType::kFloat, {8})};
    for (int i = 0; i < 30; ++i) {
      pool.push_back(b.node("Add", {pool[b.rng()() % pool.size()], pool[b.rng()() % pool.size()]}));
    }
    b.output(pool.back());
    REQUIRE(b.graph().topologicalSort().isOk());
    CHECK(ir::verify(b.graph()).isOk());
  }
}

TEST_CASE("verifier rejects a node input that nothing produces", "[ir]") {
  ir::Model m = goodModel();
  ir::Graph& g = *m.graph;
  ir::Value* dangling = g.addValue("dangling");
  findNode(g, "relu")->setInput(0, dangling);
  requireRejected(g, StatusCode::kInvalidInput,
                  {"Relu 'relu'", "input 'dangling'", "produced by no node and is not a graph input or initializer"});
}

TEST_CASE("verifier rejects nodes out of topological order", "[ir]") {
  ir::Model m = goodModel();
  ir::Graph& g = *m.graph;
  g.moveAfter(findNode(g, "conv"), findNode(g, "relu"));
  requireRejected(g, StatusCode::kInvalidInput,
                  {"Relu 'relu'", "input 'conv'", "used before Conv 'conv' produces it", "topological order"});
  REQUIRE(g.topologicalSort().isOk());
  CHECK(ir::verify(g).isOk());
}

TEST_CASE("verifier rejects a cycle", "[ir]") {
  ir::Model m = goodModel();
  ir::Graph& g = *m.graph;
  findNode(g, "conv")->setInput(0, g.findValue("relu"));
  requireRejected(g, StatusCode::kInvalidInput, {"Conv 'conv'", "input 'relu'", "used before Relu 'relu'"});
}

TEST_CASE("verifier rejects a graph input that a node also produces", "[ir]") {
  ir::Model m = goodModel();
  ir::Graph& g = *m.graph;
  ir::Value* x = g.findValue("x");
  g.addNodeWithOutputs("Identity", {g.findValue("w")}, {x}, "clobber");
  requireRejected(g, StatusCode::kInvalidInput, {"value 'x'", "graph input or initializer", "Identity 'clobber'"});
}

TEST_CASE("verifier rejects an initializer that a node also produces", "[ir]") {
  ir::Model m = goodModel();
  ir::Graph& g = *m.graph;
  g.addNodeWithOutputs("Identity", {g.findValue("x")}, {g.findValue("b")}, "clobber");
  requireRejected(g, StatusCode::kInvalidInput, {"value 'b'", "Identity 'clobber'"});
}

TEST_CASE("verifier rejects a graph output that nothing defines", "[ir]") {
  ir::Model m = goodModel();
  ir::Graph& g = *m.graph;
  g.addOutput(g.addValue("ghost"));
  requireRejected(g, StatusCode::kInvalidInput, {"graph output 'ghost'", "produced by no node"});
}

TEST_CASE("verifier rejects an empty graph output slot", "[ir]") {
  ir::Model m = goodModel();
  m.graph->addOutput(nullptr);
  requireRejected(*m.graph, StatusCode::kInternal, {"empty output slot"});
}

TEST_CASE("verifier rejects an implicit input that nothing produces or that comes too late", "[ir]") {
  ir::Model m = goodModel();
  ir::Graph& g = *m.graph;
  ir::Node* ifNode = g.addNode("If", {g.findValue("x")}, {"r"}, "if", "", findNode(g, "relu"));
  SECTION("nothing produces it") {
    ifNode->addImplicitInput(g.addValue("captured"));
    requireRejected(g, StatusCode::kInvalidInput, {"If 'if'", "input 'captured'", "produced by no node"});
  }
  SECTION("produced after the node that captures it") {
    ifNode->addImplicitInput(g.findValue("add"));
    requireRejected(g, StatusCode::kInvalidInput, {"If 'if'", "input 'add'", "used before Add 'add' produces it"});
    REQUIRE(g.topologicalSort().isOk());  // the sort counts implicit inputs too
    CHECK(ir::verify(g).isOk());
  }
}

TEST_CASE("verifier rejects a node that reads a value of another graph", "[ir]") {
  ir::Model m = goodModel();
  ir::Model other = goodModel();
  ir::Graph& g = *m.graph;
  findNode(g, "relu")->setInput(0, other.graph->findValue("conv"));
  requireRejected(g, StatusCode::kInternal, {"Relu 'relu'", "'conv'", "another graph"});
  findNode(g, "relu")->setInput(0, g.findValue("conv"));
  CHECK(ir::verify(g).isOk());
}
