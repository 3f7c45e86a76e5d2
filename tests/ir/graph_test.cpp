// Graph, Node, Value and Tensor: use lists after every mutation, topological order, cycles,
// clone(), copy on write, and the float16/bfloat16 conversions.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <unordered_set>

#include "support/graph_builder.h"
#include "support/graph_queries.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/verifier.h"

using namespace whittle;
using ir::DataType;
using testing::GraphBuilder;

namespace {

// Every structural check a mutation must keep: use lists exact and the verifier happy.
void requireConsistent(const ir::Graph& g) {
  INFO(testing::useListMismatch(g));
  REQUIRE(testing::useListMismatch(g).empty());
  Status s = ir::verify(g);
  INFO(s.message());
  REQUIRE(s.isOk());
}

std::vector<std::string> nodeNames(const ir::Graph& g) {
  std::vector<std::string> out;
  for (const ir::Node* n : g.nodes()) out.push_back(n->name());
  return out;
}

using testing::findNode;

bool hasUse(const ir::Value* v, const ir::Node* user, int32_t index) {
  const auto& uses = v->uses();
  return std::find(uses.begin(), uses.end(), ir::Value::Use{const_cast<ir::Node*>(user), index}) != uses.end();
}

}  // namespace

// ------------------------------------------------------------------------------- use lists

TEST_CASE("addNode records one use per input slot, repeated inputs included", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* sum = b.node("Add", {x, x}, {}, "add");
  ir::Node* add = b.lastNode();
  ir::Value* y = b.node("Relu", {sum}, {}, "relu");
  b.output(y);
  ir::Graph& g = b.graph();

  REQUIRE(x->uses().size() == 2);
  CHECK(hasUse(x, add, 0));
  CHECK(hasUse(x, add, 1));
  CHECK(sum->producer() == add);
  CHECK(sum->producerOutputIndex() == 0);
  CHECK(sum->uses().size() == 1);
  CHECK_FALSE(y->hasUses());
  CHECK(y->isGraphOutput());
  CHECK(x->isGraphInput());
  CHECK(x->producer() == nullptr);
  requireConsistent(g);
}

TEST_CASE("addNode and addNodeWithOutputs insert before a node or at the end", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* p = b.node("Relu", {x}, {}, "p");
  ir::Value* q = b.node("Neg", {p}, {}, "q");
  b.output(q);
  ir::Graph& g = b.graph();
  ir::Node* qn = q->producer();

  ir::Node* mid = g.addNode("Abs", {p}, {"mid"}, "mid", "", qn);
  CHECK(nodeNames(g) == std::vector<std::string>{"p", "mid", "q"});
  ir::Value* pre = g.addValue("pre");
  ir::Node* first = g.addNodeWithOutputs("Neg", {x}, {pre}, "first", "", p->producer());
  CHECK(nodeNames(g) == std::vector<std::string>{"first", "p", "mid", "q"});
  CHECK(pre->producer() == first);
  CHECK(pre->producerOutputIndex() == 0);
  ir::Node* last = g.addNode("Sum", {pre, mid->output(0), q}, {"s", "", "t"}, "last");
  CHECK(nodeNames(g) == std::vector<std::string>{"first", "p", "mid", "q", "last"});
  CHECK(last->numOutputs() == 3);
  CHECK(last->output(1) == nullptr);
  CHECK(last->output(2)->producerOutputIndex() == 2);
  // Output names are made unique: "mid" is taken.
  ir::Node* again = g.addNode("Abs", {x}, {"mid"}, "again");
  CHECK(again->output(0)->name() == "mid_1");
  CHECK(x->uses().size() == 3);
  requireConsistent(g);
}

TEST_CASE("setInput, addInput and truncateInputs keep use lists right", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* w = b.weight("w", {4});
  ir::Value* bias = b.weight("bias", {4});
  ir::Value* y = b.node("Gemm", {x, w}, {}, "gemm");
  ir::Node* gemm = b.lastNode();
  b.output(y);
  ir::Graph& g = b.graph();

  gemm->addInput(bias);
  CHECK(gemm->numInputs() == 3);
  CHECK(hasUse(bias, gemm, 2));
  requireConsistent(g);

  SECTION("replace one slot") {
    gemm->setInput(1, bias);
    CHECK_FALSE(w->hasUses());
    CHECK(bias->uses().size() == 2);
    requireConsistent(g);
  }
  SECTION("clear one slot (absent optional input)") {
    gemm->setInput(2, nullptr);
    CHECK(gemm->input(2) == nullptr);
    CHECK(gemm->numInputs() == 3);
    CHECK_FALSE(bias->hasUses());
    requireConsistent(g);
  }
  SECTION("set past the end pads with absent inputs") {
    gemm->setInput(5, w);
    CHECK(gemm->numInputs() == 6);
    CHECK(gemm->input(3) == nullptr);
    CHECK(gemm->input(4) == nullptr);
    CHECK(hasUse(w, gemm, 5));
    CHECK(w->uses().size() == 2);
    requireConsistent(g);
  }
  SECTION("truncate") {
    gemm->truncateInputs(1);
    CHECK(gemm->numInputs() == 1);
    CHECK_FALSE(w->hasUses());
    CHECK_FALSE(bias->hasUses());
    CHECK(x->uses().size() == 1);
    requireConsistent(g);
  }
}

TEST_CASE("replaceInput redirects explicit and implicit uses by one node", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* cond = b.input("cond", DataType::kBool, {});
  ir::Value* a = b.node("Relu", {x}, {}, "a");
  ir::Value* c = b.node("Neg", {x}, {}, "c");
  ir::Value* r = b.node("If", {cond}, {}, "if");
  ir::Node* ifNode = b.lastNode();
  ifNode->addImplicitInput(a);
  ir::Value* s = b.node("Add", {a, a}, {}, "add");
  ir::Node* add = b.lastNode();
  b.output(r);
  b.output(s);
  ir::Graph& g = b.graph();
  requireConsistent(g);
  CHECK(a->hasImplicitUses());
  CHECK(hasUse(a, ifNode, -1));

  ifNode->replaceInput(a, c);
  CHECK(ifNode->implicitInputs() == std::vector<ir::Value*>{c});
  CHECK(hasUse(c, ifNode, -1));
  CHECK_FALSE(a->hasImplicitUses());
  CHECK(a->uses().size() == 2);  // the Add still reads it twice
  requireConsistent(g);

  add->replaceInput(a, c);
  CHECK(add->input(0) == c);
  CHECK(add->input(1) == c);
  CHECK_FALSE(a->hasUses());
  CHECK(c->uses().size() == 3);
  requireConsistent(g);
}

TEST_CASE("replaceAllUsesWith redirects every use of an inner value", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* cond = b.input("cond", DataType::kBool, {});
  ir::Value* a = b.node("Relu", {x}, {}, "a");
  ir::Value* n = b.node("Neg", {a}, {}, "neg");
  ir::Value* sum = b.node("Add", {a, n}, {}, "add");
  ir::Value* r = b.node("If", {cond}, {}, "if");
  b.lastNode()->addImplicitInput(a);
  b.output(sum);
  b.output(r);
  ir::Graph& g = b.graph();

  // The replacement goes before the first user, so the list stays topological.
  ir::Node* replacement = g.addNode("Sigmoid", {x}, {"sig"}, "sig", "", findNode(g, "neg"));
  ir::Value* sig = replacement->output(0);
  g.replaceAllUsesWith(a, sig);

  CHECK_FALSE(a->hasUses());
  CHECK(sig->uses().size() == 3);
  CHECK(findNode(g, "neg")->input(0) == sig);
  CHECK(findNode(g, "add")->input(0) == sig);
  CHECK(findNode(g, "if")->implicitInputs().front() == sig);
  // The If's subgraph reads "a" by name: the replacement takes the name over.
  CHECK(sig->name() == "a");
  CHECK(a->name() != "a");
  requireConsistent(g);

  g.eraseNode(findNode(g, "a"));
  CHECK(g.findValue("a") == sig);
  CHECK(g.numNodes() == 4);
  requireConsistent(g);
}

TEST_CASE("replaceAllUsesWith on a graph output keeps the output's name", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* y = b.node("Relu", {x}, {}, "relu");
  y->mutableType().dtype = DataType::kFloat;
  ir::Value* z = b.node("Neg", {x}, {}, "neg");
  ir::Value* t = b.node("Tanh", {y}, {}, "tanh");  // a use of y besides the output
  b.output(y);
  b.output(t);
  ir::Graph& g = b.graph();
  const std::string yName = y->name();
  g.moveBefore(findNode(g, "neg"), findNode(g, "relu"));

  g.replaceAllUsesWith(y, z);

  REQUIRE(g.outputs().size() == 2);
  CHECK(g.outputs()[0] == z);
  CHECK(z->name() == yName);
  CHECK(z->isGraphOutput());
  CHECK(z->dtype() == DataType::kFloat);  // took over the output's type
  CHECK(g.findValue(yName) == z);
  CHECK(y->name() != yName);
  CHECK_FALSE(y->isGraphOutput());
  CHECK_FALSE(y->hasUses());
  CHECK(findNode(g, "tanh")->input(0) == z);
  CHECK(g.numNodes() == 3);  // no Identity needed
  requireConsistent(g);

  g.eraseNode(findNode(g, "relu"));
  CHECK(testing::opTypes(g) == std::vector<std::string>{"Neg", "Tanh"});
  requireConsistent(g);
}

TEST_CASE("replaceAllUsesWith inserts an Identity when the replacement cannot be renamed", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* w = b.weight("w", {4});
  ir::Value* u = b.node("Neg", {x}, {}, "neg");
  ir::Value* y = b.node("Relu", {x}, {}, "relu");
  y->mutableType().dtype = DataType::kFloat;
  ir::Value* t = b.node("Tanh", {y}, {}, "tanh");
  b.output(y);
  b.output(t);
  b.output(u);
  ir::Graph& g = b.graph();

  ir::Value* replacement = nullptr;
  std::string expectedName;
  SECTION("a graph input") {
    replacement = x;
    expectedName = "x";
  }
  SECTION("an initializer") {
    replacement = w;
    expectedName = "w";
  }
  SECTION("another graph output") {
    replacement = u;
    expectedName = "neg";
  }
  g.replaceAllUsesWith(y, replacement);

  REQUIRE(g.outputs().size() == 3);
  ir::Value* out0 = g.outputs()[0];
  CHECK(out0->name() == "relu");
  REQUIRE(out0->producer() != nullptr);
  CHECK(out0->producer()->opType() == "Identity");
  CHECK(out0->producer()->input(0) == replacement);
  CHECK(out0->dtype() == DataType::kFloat);
  CHECK(g.outputs()[1] == t);
  CHECK(g.outputs()[2] == u);
  CHECK(replacement->name() == expectedName);  // kept its own name
  CHECK(findNode(g, "tanh")->input(0) == replacement);
  CHECK_FALSE(y->hasUses());
  CHECK_FALSE(y->isGraphOutput());
  requireConsistent(g);

  g.eraseNode(findNode(g, "relu"));
  CHECK(testing::opTypes(g) == std::vector<std::string>{"Neg", "Tanh", "Identity"});
  requireConsistent(g);
}

TEST_CASE("replaceAllUsesWith keeps the name a subgraph reads when the replacement cannot take it", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* cond = b.input("cond", DataType::kBool, {});
  ir::Value* a = b.node("Relu", {x}, {}, "a");
  ir::Value* r = b.node("If", {cond}, {}, "if");
  b.lastNode()->addImplicitInput(a);
  b.lastNode()->addImplicitInput(x);
  b.output(r);
  ir::Graph& g = b.graph();
  const std::string aName = a->name();

  g.replaceAllUsesWith(a, x);  // x is a graph input, and captured itself: it keeps its name

  ir::Node* ifNode = findNode(g, "if");
  ir::Value* captured = ifNode->implicitInputs()[0];
  CHECK(captured->name() == aName);
  REQUIRE(captured->producer() != nullptr);
  CHECK(captured->producer()->opType() == "Identity");
  CHECK(captured->producer()->input(0) == x);
  CHECK(ifNode->implicitInputs()[1] == x);
  CHECK(x->name() == "x");
  CHECK_FALSE(a->hasUses());
  CHECK(g.nodes().front() == captured->producer());  // before its reader
  requireConsistent(g);
}

TEST_CASE("eraseNode removes the node's uses, implicit ones included, and its outputs", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* cond = b.input("cond", DataType::kBool, {});
  ir::Value* a = b.node("Relu", {x}, {}, "a");
  std::vector<ir::Value*> split = b.nodeN("Split", {a}, 2, {}, "split");
  ir::Value* r = b.node("If", {cond}, {}, "if");
  b.lastNode()->addImplicitInput(a);
  b.lastNode()->addImplicitInput(x);
  b.output(split[0]);
  b.output(r);
  ir::Graph& g = b.graph();
  requireConsistent(g);
  REQUIRE(a->uses().size() == 2);
  REQUIRE(x->uses().size() == 2);

  // The If's output is a graph output: take it off first.
  ir::Node* ifNode = findNode(g, "if");
  g.setOutput(1, a);
  g.eraseNode(ifNode);
  CHECK(g.findValue("if") == nullptr);
  CHECK(a->uses().size() == 1);
  CHECK(x->uses().size() == 1);
  CHECK_FALSE(cond->hasUses());
  CHECK(cond->isGraphInput());  // graph inputs stay
  requireConsistent(g);

  // Erasing a node with an unused second output and an absent output slot.
  ir::Node* extra = g.addNode("TopK", {a, nullptr}, {"vals", "", "idx"}, "topk");
  CHECK(extra->output(1) == nullptr);
  CHECK(extra->input(1) == nullptr);
  requireConsistent(g);
  g.eraseNode(extra);
  CHECK(g.findValue("vals") == nullptr);
  CHECK(g.findValue("idx") == nullptr);
  CHECK(a->uses().size() == 1);
  requireConsistent(g);

  // Every value left is one the graph still refers to.
  std::set<std::string> names;
  for (const ir::Value* v : g.values()) names.insert(v->name());
  CHECK(names == std::set<std::string>{"x", "cond", "a", "split_out0", "split_out1"});
}

TEST_CASE("moveBefore and moveAfter reorder nodes and leave use lists alone", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* p = b.node("Relu", {x}, {}, "p");
  ir::Value* q = b.node("Neg", {x}, {}, "q");
  ir::Value* r = b.node("Add", {p, q}, {}, "r");
  b.output(r);
  ir::Graph& g = b.graph();
  ir::Node* pn = findNode(g, "p");
  ir::Node* qn = findNode(g, "q");
  ir::Node* rn = findNode(g, "r");

  g.moveBefore(qn, pn);
  CHECK(nodeNames(g) == std::vector<std::string>{"q", "p", "r"});
  requireConsistent(g);
  g.moveAfter(qn, pn);
  CHECK(nodeNames(g) == std::vector<std::string>{"p", "q", "r"});
  g.moveAfter(pn, rn);  // now out of order: the verifier says so, uses are still exact
  CHECK(nodeNames(g) == std::vector<std::string>{"q", "r", "p"});
  CHECK(testing::useListMismatch(g).empty());
  Status s = ir::verify(g);
  CHECK_FALSE(s.isOk());
  CHECK_THAT(s.message(), Catch::Contains("'p'") && Catch::Contains("Add 'r'"));
  g.moveBefore(pn, qn);
  CHECK(nodeNames(g) == std::vector<std::string>{"p", "q", "r"});
  g.moveBefore(rn, rn);  // moving next to itself changes nothing
  g.moveAfter(pn, pn);
  CHECK(nodeNames(g) == std::vector<std::string>{"p", "q", "r"});
  requireConsistent(g);
}

// --------------------------------------------------------------------- topological order

namespace {

// The stable topological order computed the slow, obvious way: repeatedly take the first
// node in the current list whose inputs are all available.
std::vector<std::string> referenceTopologicalOrder(const ir::Graph& g) {
  std::vector<ir::Node*> remaining = g.nodes();
  std::unordered_set<const ir::Node*> placed;
  std::vector<std::string> order;
  auto ready = [&](const ir::Node* n) {
    auto available = [&](const ir::Value* v) {
      return v == nullptr || v->producer() == nullptr || placed.contains(v->producer());
    };
    return std::all_of(n->inputs().begin(), n->inputs().end(), available) &&
           std::all_of(n->implicitInputs().begin(), n->implicitInputs().end(), available);
  };
  while (!remaining.empty()) {
    auto it = std::find_if(remaining.begin(), remaining.end(), ready);
    REQUIRE(it != remaining.end());
    placed.insert(*it);
    order.push_back((*it)->name());
    remaining.erase(it);
  }
  return order;
}

// A random DAG: each node reads one to three earlier values, sometimes implicitly.
void buildRandomDag(GraphBuilder& b, int numNodes) {
  std::vector<ir::Value*> pool = {b.input("x", DataType::kFloat, {8}), b.input("y", DataType::kFloat, {8}),
                                  b.weight("w", {8})};
  auto& rng = b.rng();
  for (int i = 0; i < numNodes; ++i) {
    size_t arity = 1 + rng() % 3;
    std::vector<ir::Value*> ins;
    for (size_t k = 0; k < arity; ++k) ins.push_back(pool[rng() % pool.size()]);
    pool.push_back(b.node(arity == 1 ? "Relu" : arity == 2 ? "Add" : "Sum", ins, {}, "n" + std::to_string(i)));
    if (rng() % 7 == 0) b.lastNode()->addImplicitInput(pool[rng() % (pool.size() - 1)]);
  }
  b.output(pool.back());
}

}  // namespace

TEST_CASE("topologicalSort restores a shuffled graph, stably", "[ir]") {
  for (uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
    INFO("seed " << seed);
    GraphBuilder b(seed);
    buildRandomDag(b, 60);
    ir::Graph& g = b.graph();
    requireConsistent(g);

    // Shuffle by moving nodes around.
    std::vector<ir::Node*> nodes = g.nodes();
    for (int i = 0; i < 200; ++i) {
      ir::Node* n = nodes[b.rng()() % nodes.size()];
      ir::Node* pos = nodes[b.rng()() % nodes.size()];
      if (b.rng()() % 2) {
        g.moveBefore(n, pos);
      } else {
        g.moveAfter(n, pos);
      }
    }
    REQUIRE(testing::useListMismatch(g).empty());
    REQUIRE_FALSE(ir::verify(g).isOk());  // the shuffle broke the order

    std::vector<std::string> expected = referenceTopologicalOrder(g);
    Status s = g.topologicalSort();
    REQUIRE(s.isOk());
    CHECK(nodeNames(g) == expected);
    requireConsistent(g);

    // Sorting a sorted graph changes nothing.
    REQUIRE(g.topologicalSort().isOk());
    CHECK(nodeNames(g) == expected);
  }
}

TEST_CASE("topologicalSort keeps the order of independent nodes", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  for (const char* name : {"d", "b", "e", "a", "c"}) b.output(b.node("Relu", {x}, {}, name));
  ir::Graph& g = b.graph();
  REQUIRE(g.topologicalSort().isOk());
  CHECK(nodeNames(g) == std::vector<std::string>{"d", "b", "e", "a", "c"});
}

TEST_CASE("topologicalSort reports a cycle, naming a node on it", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* a = b.node("Relu", {x}, {}, "a");
  ir::Value* bv = b.node("Neg", {a}, {}, "b");
  ir::Value* c = b.node("Tanh", {bv}, {}, "c");  // behind the cycle, not on it
  b.output(c);
  ir::Graph& g = b.graph();
  ir::Node* an = findNode(g, "a");
  ir::Node* cn = findNode(g, "c");
  g.moveBefore(cn, an);  // list: c, a, b
  an->setInput(0, bv);   // a <- b <- a
  REQUIRE(testing::useListMismatch(g).empty());

  Status s = g.topologicalSort();
  REQUIRE_FALSE(s.isOk());
  CHECK(s.code() == StatusCode::kInvalidInput);
  CHECK_THAT(s.message(), Catch::StartsWith("graph has a cycle through "));
  bool namesCycleNode = s.message().find("'a'") != std::string::npos || s.message().find("'b'") != std::string::npos;
  INFO(s.message());
  CHECK(namesCycleNode);
  CHECK(s.message().find("'c'") == std::string::npos);
  CHECK(s.message().find('\n') == std::string::npos);
  // Nothing is lost: every node is still in the graph, with its uses.
  CHECK(g.numNodes() == 3);
  CHECK(testing::useListMismatch(g).empty());
  CHECK_FALSE(ir::verify(g).isOk());
}

TEST_CASE("topologicalSort reports a self-loop", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  ir::Value* a = b.node("Add", {x, x}, {}, "self");
  b.output(a);
  b.lastNode()->setInput(1, a);
  Status s = b.graph().topologicalSort();
  REQUIRE_FALSE(s.isOk());
  CHECK(s.message() == "graph has a cycle through Add 'self'");
}

// ------------------------------------------------------------------------------ values

TEST_CASE("values get unique names; rename and erase keep the name index", "[ir]") {
  ir::Graph g;
  ir::Value* a = g.addValue("t");
  ir::Value* b = g.addValue("t");
  ir::Value* c = g.addValue("t");
  ir::Value* d = g.addValue("");
  CHECK(a->name() == "t");
  CHECK(b->name() == "t_1");
  CHECK(c->name() == "t_2");
  CHECK_FALSE(d->name().empty());
  CHECK(g.findValue("t_1") == b);
  CHECK(g.uniqueValueName("t") == "t_3");
  CHECK(g.uniqueValueName("fresh") == "fresh");

  Status clash = g.renameValue(b, "t");
  CHECK(clash.code() == StatusCode::kInvalidInput);
  CHECK_THAT(clash.message(), Catch::Contains("'t_1'") && Catch::Contains("'t'"));
  CHECK(b->name() == "t_1");
  REQUIRE(g.renameValue(b, "u").isOk());
  CHECK(g.findValue("u") == b);
  CHECK(g.findValue("t_1") == nullptr);
  REQUIRE(g.renameValue(b, "u").isOk());  // renaming to its own name is fine

  g.eraseValue(c);
  CHECK(g.findValue("t_2") == nullptr);
  CHECK(g.values().size() == 3);

  ir::Value* in = g.addInput("in", {});
  ir::Value* w = g.addInitializer("w", ir::Tensor(DataType::kFloat, {2, 3}));
  CHECK(g.inputs() == std::vector<ir::Value*>{in});
  CHECK(g.initializers() == std::vector<ir::Value*>{w});
  CHECK(w->isInitializer());
  CHECK(w->dtype() == DataType::kFloat);
  CHECK(w->type().staticDims() == std::vector<int64_t>{2, 3});
  g.eraseValue(in);
  g.eraseValue(w);
  CHECK(g.inputs().empty());
  CHECK(g.initializers().empty());
  requireConsistent(g);
}

TEST_CASE("initializers can be turned into plain values and back", "[ir]") {
  GraphBuilder b;
  ir::Value* w = b.weight("w", {3});
  ir::Value* v = b.graph().addValue("v");
  ir::Graph& g = b.graph();
  v->setConstant(ir::Tensor(DataType::kInt64, {1}));
  CHECK(g.initializers() == std::vector<ir::Value*>{w, v});
  v->setConstant(ir::Tensor(DataType::kInt64, {2}));  // replacing keeps one entry
  CHECK(g.initializers().size() == 2);
  g.removeInitializer(w);
  CHECK_FALSE(w->isInitializer());
  CHECK(g.initializers() == std::vector<ir::Value*>{v});
}

TEST_CASE("uniqueNodeName avoids the names of live nodes only", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  b.output(b.node("Relu", {x}, {}, "conv"));
  ir::Graph& g = b.graph();
  CHECK(g.uniqueNodeName("conv") == "conv_1");
  CHECK(g.uniqueNodeName("other") == "other");
  ir::Node* extra = g.addNode("Neg", {x}, {"n"}, "tmp");
  CHECK(g.uniqueNodeName("tmp") == "tmp_1");
  g.eraseNode(extra);
  CHECK(g.uniqueNodeName("tmp") == "tmp");
}

TEST_CASE("ValueType reports static shapes only when every dim is known", "[ir]") {
  ir::ValueType t;
  CHECK_FALSE(t.hasStaticShape());
  t.shape = std::vector<ir::Dim>{ir::Dim::known(2), ir::Dim::symbolic("batch")};
  CHECK_FALSE(t.hasStaticShape());
  t.shape = std::vector<ir::Dim>{ir::Dim::known(2), ir::Dim::known(0)};
  CHECK(t.staticDims() == std::vector<int64_t>{2, 0});
  t.shape = std::vector<ir::Dim>{};
  CHECK(t.staticDims() == std::vector<int64_t>{});
}

TEST_CASE("node attributes: set replaces, typed getters fall back on a kind mismatch", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  b.output(b.node("Conv", {x}, {ir::Attribute::makeInt("group", 2), ir::Attribute::makeInts("pads", {1, 1, 1, 1}),
                                ir::Attribute::makeFloat("alpha", 0.5f), ir::Attribute::makeString("mode", "x")},
                  "conv"));
  ir::Node* n = b.lastNode();
  CHECK(n->attrInt("group", 1) == 2);
  CHECK(n->attrInts("pads") == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(n->attrFloat("alpha", 0) == 0.5f);
  CHECK(n->attrString("mode", "") == "x");
  CHECK(n->attrInt("alpha", 7) == 7);  // wrong kind
  CHECK(n->attrFloats("missing", {3.f}) == std::vector<float>{3.f});
  n->setAttribute(ir::Attribute::makeInt("group", 4));
  CHECK(n->attributes().size() == 4);
  CHECK(n->attrInt("group", 1) == 4);
  n->removeAttribute("pads");
  CHECK_FALSE(n->hasAttribute("pads"));
  CHECK(n->attributes().size() == 3);
  CHECK(n->describe() == "Conv 'conv'");
  ir::Node* unnamed = b.graph().addNode("Relu", {x}, {"r"}, "", "com.microsoft");
  CHECK_THAT(unnamed->describe(), Catch::StartsWith("com.microsoft.Relu #"));
}

// ------------------------------------------------------------------------------ listener

namespace {

// Writes down every notification as a line of text.
class RecordingListener final : public ir::GraphListener {
 public:
  std::vector<std::string> events;
  void nodeInserted(ir::Node& node) override { events.push_back("inserted " + node.name()); }
  void nodeErased(ir::Node& node) override {
    // The node is still whole when the listener hears of it.
    events.push_back("erased " + node.name() + " reading " + std::to_string(node.inputs().size()));
  }
  void inputChanged(ir::Node& user, ir::Value* from, ir::Value* to) override {
    events.push_back("input " + user.name() + " " + (from ? from->name() : "-") + " -> " + (to ? to->name() : "-"));
  }
  void nodeModified(ir::Node& node) override { events.push_back("modified " + node.name()); }
  void valueModified(ir::Value& value) override { events.push_back("value " + value.name()); }
};

}  // namespace

TEST_CASE("a graph listener hears of every change to the graph's structure", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* a = b.node("Neg", {x}, {}, "neg");
  ir::Value* y = b.node("Relu", {a}, {}, "relu");
  b.output(y);
  ir::Model model = b.build(17);
  ir::Graph& g = *model.graph;
  RecordingListener listener;
  REQUIRE(g.setListener(&listener) == nullptr);

  ir::Node* relu = y->producer();
  ir::Node* exp = g.addNode("Exp", {x}, {"e"}, "exp", "", relu);
  CHECK(listener.events == std::vector<std::string>{"input exp - -> x", "inserted exp"});
  listener.events.clear();
  exp->setAttribute(ir::Attribute::makeInt("k", 1));
  exp->removeAttribute("missing");  // nothing removed: no news
  exp->removeAttribute("k");
  CHECK(listener.events == std::vector<std::string>{"modified exp", "modified exp"});
  listener.events.clear();
  relu->setInput(0, exp->output(0));
  relu->setInput(0, exp->output(0));  // the same value again: no news
  CHECK(listener.events == std::vector<std::string>{"input relu neg -> e"});
  listener.events.clear();
  g.eraseNode(a->producer());
  CHECK(listener.events == std::vector<std::string>{"erased neg reading 1"});  // no input news after it
  listener.events.clear();
  // Replacing a graph output renames its replacement: both values change.
  g.replaceAllUsesWith(y, exp->output(0));
  CHECK(listener.events == std::vector<std::string>{"value relu_replaced", "value relu"});
  listener.events.clear();
  ir::Value* w = g.addInitializer("w", ir::Tensor(DataType::kFloat, {2}));
  g.removeInitializer(w);
  CHECK(listener.events == std::vector<std::string>{"value w", "value w"});

  CHECK(g.clone()->listener() == nullptr);
  CHECK(g.setListener(nullptr) == &listener);
  requireConsistent(g);
}

// --------------------------------------------------------------------------------- clone

TEST_CASE("Graph::clone is a deep copy that can change on its own", "[ir]") {
  GraphBuilder b(3);
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(4)});
  ir::Value* cond = b.input("cond", DataType::kBool, {});
  ir::Value* w = b.weight("w", {4});
  ir::Value* m = b.node("Mul", {x, w}, {ir::Attribute::makeInts("axes", {1, 2})}, "mul");
  m->setHasValueInfo(true);
  m->setDocString("the product");
  b.lastNode()->setDocString("multiplies");
  ir::Value* r = b.node("If", {cond}, {}, "if");
  b.lastNode()->addImplicitInput(m);
  b.output(r);
  ir::Model model = b.build(17);
  ir::Graph& g = *model.graph;
  g.setDocString("graph doc");
  g.opaqueSparseInitializers().push_back("sparse-bytes");

  std::unique_ptr<ir::Graph> copy = g.clone();
  requireConsistent(*copy);
  CHECK(copy->name() == g.name());
  CHECK(copy->docString() == "graph doc");
  CHECK(copy->opaqueSparseInitializers() == g.opaqueSparseInitializers());
  CHECK(nodeNames(*copy) == nodeNames(g));
  REQUIRE(copy->values().size() == g.values().size());
  for (const ir::Value* v : copy->values()) {
    CHECK(&v->graph() == copy.get());
    const ir::Value* orig = g.findValue(v->name());
    REQUIRE(orig != nullptr);
    CHECK(orig != v);
    CHECK(v->type() == orig->type());
    CHECK(v->isGraphInput() == orig->isGraphInput());
    CHECK(v->isGraphOutput() == orig->isGraphOutput());
    CHECK(v->hasValueInfo() == orig->hasValueInfo());
    CHECK(v->docString() == orig->docString());
    CHECK(v->uses().size() == orig->uses().size());
  }
  for (const ir::Node* n : copy->nodes()) {
    CHECK(&n->graph() == copy.get());
    for (const ir::Value* in : n->inputs()) CHECK(&in->graph() == copy.get());
  }
  ir::Node* copyMul = findNode(*copy, "mul");
  CHECK(copyMul->attrInts("axes") == std::vector<int64_t>{1, 2});
  CHECK(copyMul->docString() == "multiplies");
  REQUIRE(findNode(*copy, "if")->implicitInputs().size() == 1);
  CHECK(findNode(*copy, "if")->implicitInputs()[0] == copy->findValue("mul"));
  CHECK(copy->inputs().size() == 2);
  CHECK(copy->inputs()[0]->name() == "x");
  ir::Value* copyW = copy->findValue("w");
  CHECK(copy->initializers() == std::vector<ir::Value*>{copyW});
  CHECK(copyW->constant()->bitwiseEqual(*w->constant()));

  // Change the copy every which way; the original does not move.
  const ir::Tensor before = *w->constant();
  ir::Tensor changed = *copyW->constant();
  changed.mutableData<float>()[0] = 1234.f;
  copyW->setConstant(changed);
  copyMul->setAttribute(ir::Attribute::makeInt("extra", 1));
  REQUIRE(copy->renameValue(copy->findValue("x"), "renamed").isOk());
  ir::Value* cx = copy->findValue("renamed");
  copy->replaceAllUsesWith(copy->findValue("mul"), cx);
  copy->eraseNode(copyMul);
  copy->addNode("Relu", {cx}, {"more"}, "more");
  requireConsistent(*copy);

  CHECK(w->constant()->bitwiseEqual(before));
  CHECK(w->constant()->data<float>()[0] != 1234.f);
  CHECK(g.numNodes() == 2);
  CHECK(g.findValue("x") == x);
  CHECK(g.findValue("renamed") == nullptr);
  CHECK_FALSE(findNode(g, "mul")->hasAttribute("extra"));
  CHECK(findNode(g, "if")->implicitInputs()[0] == m);
  CHECK(m->uses().size() == 1);
  requireConsistent(g);
}

TEST_CASE("Model::clone copies every model field", "[ir]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {1});
  b.output(b.node("Relu", {x}));
  ir::Model model = b.build(13);
  model.producerVersion = "1.0";
  model.domain = "test.domain";
  model.modelVersion = 7;
  model.docString = "doc";
  model.setMetadata("k", "v");
  model.setMetadata("k", "v2");
  model.setOpsetVersion("com.microsoft", 1);
  model.opaqueRest = "rest";

  ir::Model copy = model.clone();
  CHECK(copy.irVersion == model.irVersion);
  CHECK(copy.opsetImports == model.opsetImports);
  CHECK(copy.opsetVersion("") == 13);
  CHECK(copy.opsetVersion("ai.onnx") == 13);
  CHECK(copy.opsetVersion("com.microsoft") == 1);
  CHECK(copy.opsetVersion("ai.onnx.ml") == 0);
  CHECK(copy.producerName == model.producerName);
  CHECK(copy.producerVersion == "1.0");
  CHECK(copy.domain == "test.domain");
  CHECK(copy.modelVersion == 7);
  CHECK(copy.docString == "doc");
  CHECK(copy.metadata == std::vector<std::pair<std::string, std::string>>{{"k", "v2"}});
  CHECK(copy.opaqueRest == "rest");
  CHECK(copy.graph.get() != model.graph.get());
  CHECK(copy.graph->numNodes() == 1);
}

// ------------------------------------------------------------------------------ tensors

TEST_CASE("Tensor copies share the buffer until one is written (copy on write)", "[ir]") {
  ir::Tensor a = ir::Tensor::fromVector<float>(DataType::kFloat, {3}, {1.f, 2.f, 3.f});
  CHECK(a.numel() == 3);
  CHECK(a.byteSize() == 12);
  CHECK(a.buffer()->writable());

  // Sole owner: written in place.
  const ir::Buffer* own = a.buffer().get();
  a.mutableData<float>()[2] = 4.f;
  CHECK(a.buffer().get() == own);

  ir::Tensor b = a;
  CHECK(b.buffer() == a.buffer());
  CHECK(b.bitwiseEqual(a));
  b.mutableData<float>()[0] = 9.f;
  CHECK(b.buffer() != a.buffer());
  CHECK(a.values<float>()[0] == 1.f);
  CHECK(b.values<float>()[0] == 9.f);
  CHECK(b.values<float>()[2] == 4.f);
  CHECK_FALSE(b.bitwiseEqual(a));

  // The original writes after the copy went its own way: in place again.
  const ir::Buffer* aBuffer = a.buffer().get();
  a.mutableData<float>()[1] = 5.f;
  CHECK(a.buffer().get() == aBuffer);
  CHECK(b.values<float>()[1] == 2.f);

  // Shared through a constant Value: writing a copy of the initializer leaves it alone.
  ir::Graph g;
  ir::Value* w = g.addInitializer("w", a);
  ir::Tensor c = *w->constant();
  c.mutableData<float>()[0] = -1.f;
  CHECK(w->constant()->values<float>()[0] == 1.f);
}

TEST_CASE("Tensor over a read-only view copies on write and forgets its external source", "[ir]") {
  auto storage = std::make_shared<std::vector<float>>(std::vector<float>{1.f, 2.f, 3.f, 4.f});
  auto view = ir::Buffer::view(storage->data(), 4 * sizeof(float), storage);
  CHECK_FALSE(view->writable());
  ir::Tensor t(DataType::kFloat, {2, 2}, view);
  t.setExternalSource({"weights.bin", 64, 16});
  REQUIRE(t.externalSource() != nullptr);
  CHECK(t.externalSource()->location == "weights.bin");
  ir::Tensor shared = t;
  CHECK(shared.externalSource() != nullptr);
  CHECK(t.rawData() == reinterpret_cast<const std::byte*>(storage->data()));

  t.mutableData<float>()[3] = 40.f;
  CHECK(t.buffer()->writable());
  CHECK(t.externalSource() == nullptr);
  CHECK((*storage)[3] == 4.f);
  CHECK(t.values<float>()[3] == 40.f);
  CHECK(shared.values<float>()[3] == 4.f);
  CHECK(shared.externalSource() != nullptr);
}

TEST_CASE("Buffer::fromString takes the bytes without copying", "[ir]") {
  std::string bytes(64, 'a');
  const char* where = bytes.data();
  auto buffer = ir::Buffer::fromString(std::move(bytes));
  CHECK(buffer->size() == 64);
  CHECK(buffer->writable());
  CHECK(reinterpret_cast<const char*>(buffer->data()) == where);
}

TEST_CASE("Tensor strings, sizes and valueAsDouble", "[ir]") {
  ir::Tensor s = ir::Tensor::strings({2}, {"a", "bc"});
  CHECK(s.dtype() == DataType::kString);
  CHECK(s.stringValues() == std::vector<std::string>{"a", "bc"});
  CHECK(s.bitwiseEqual(ir::Tensor::strings({2}, {"a", "bc"})));
  CHECK_FALSE(s.bitwiseEqual(ir::Tensor::strings({2}, {"a", "b"})));

  ir::Tensor scalar(DataType::kInt64, {});
  CHECK(scalar.numel() == 1);
  CHECK(scalar.rank() == 0);
  ir::Tensor emptyT(DataType::kFloat, {0, 3});
  CHECK(emptyT.empty());
  CHECK(emptyT.byteSize() == 0);
  ir::Tensor packed(DataType::kInt4, {5});
  CHECK(packed.byteSize() == 3);

  auto h = ir::Tensor::fromVector<uint16_t>(DataType::kFloat16, {2}, {0x3c00, 0xc000});
  CHECK(h.valueAsDouble(0) == 1.0);
  CHECK(h.valueAsDouble(1) == -2.0);
  auto i8 = ir::Tensor::fromVector<int8_t>(DataType::kInt8, {2}, {-128, 127});
  CHECK(i8.valueAsDouble(0) == -128.0);
  auto bf = ir::Tensor::fromVector<uint16_t>(DataType::kBFloat16, {1}, {0x3fc0});
  CHECK(bf.valueAsDouble(0) == 1.5);
}

TEST_CASE("data type table", "[ir]") {
  CHECK(ir::elementSize(DataType::kFloat) == 4);
  CHECK(ir::elementSize(DataType::kBFloat16) == 2);
  CHECK(ir::elementSize(DataType::kComplex128) == 16);
  CHECK(ir::elementSize(DataType::kString) == 0);
  CHECK(ir::storageBytes(DataType::kUint4, 4) == 2);
  CHECK(ir::storageBytes(DataType::kFloat4E2M1, 1) == 1);
  CHECK(ir::storageBytes(DataType::kDouble, 3) == 24);
  CHECK(ir::isKnownDataType(1));
  CHECK(ir::isKnownDataType(23));
  CHECK_FALSE(ir::isKnownDataType(0));
  CHECK_FALSE(ir::isKnownDataType(24));
  CHECK_FALSE(ir::isKnownDataType(-1));
  CHECK(ir::dataTypeName(DataType::kFloat) == "float32");
  CHECK(ir::dataTypeName(static_cast<DataType>(99)) == "unknown");
  for (int code = 1; code <= 23; ++code) {
    auto type = static_cast<DataType>(code);
    CHECK(ir::parseDataType(ir::dataTypeName(type)) == type);
  }
  CHECK(ir::parseDataType("FLOAT16") == DataType::kFloat16);
  CHECK(ir::parseDataType("fp16") == DataType::kFloat16);
  CHECK(ir::parseDataType("bf16") == DataType::kBFloat16);
  CHECK(ir::parseDataType("float") == DataType::kFloat);
  CHECK_FALSE(ir::parseDataType("float17").has_value());
  CHECK(ir::isFloatingPoint(DataType::kFloat8E5M2));
  CHECK_FALSE(ir::isFloatingPoint(DataType::kInt8));
  CHECK(ir::isInteger(DataType::kUint4));
  CHECK_FALSE(ir::isInteger(DataType::kBool));
}

// --------------------------------------------------------------------- float16, bfloat16

namespace {

// The value of a half-precision bit pattern, computed independently with ldexp.
double halfReference(uint16_t h) {
  int exponent = (h >> 10) & 0x1f;
  int mantissa = h & 0x3ff;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(mantissa, -24);
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else {
    magnitude = std::ldexp(1024 + mantissa, exponent - 25);
  }
  return (h & 0x8000) ? -magnitude : magnitude;
}

// Round to nearest, ties to even, by search over the (monotone) positive half patterns.
uint16_t floatToHalfReference(float f) {
  uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return sign | 0x7e00;
  double d = std::fabs(static_cast<double>(f));
  if (d >= 65520.0) return sign | 0x7c00;  // halfway between 65504 and 2^16 rounds to even: inf
  uint16_t lo = 0;
  uint16_t hi = 0x7bff;
  while (lo < hi) {  // the largest pattern whose value is <= d
    auto mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (halfReference(mid) <= d) {
      lo = mid;
    } else {
      hi = static_cast<uint16_t>(mid - 1);
    }
  }
  double below = halfReference(lo);
  if (below == d) return sign | lo;
  double above = lo == 0x7bff ? 65536.0 : halfReference(static_cast<uint16_t>(lo + 1));
  double down = d - below;
  double up = above - d;
  uint16_t pick = down < up ? lo : up < down ? static_cast<uint16_t>(lo + 1) : ((lo & 1) ? lo + 1 : lo);
  return sign | pick;
}

uint16_t floatToBfloat16Reference(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  uint32_t upper = bits >> 16;
  uint32_t lower = bits & 0xffffu;
  if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) ++upper;
  return static_cast<uint16_t>(upper);
}

bool isHalfNan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool isBfloat16Nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

// Floats for the rounding tests: random bit patterns, and random values in half's range.
std::vector<float> sampleFloats() {
  std::mt19937_64 rng(2024);
  std::vector<float> out;
  for (int i = 0; i < 100000; ++i) out.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (int i = 0; i < 100000; ++i) {
    // exponent 101..143 covers half subnormals up to just past half's largest value
    uint32_t bits = static_cast<uint32_t>(rng()) & 0x807fffffu;
    bits |= static_cast<uint32_t>(101 + rng() % 43) << 23;
    out.push_back(std::bit_cast<float>(bits));
  }
  for (int h = 0; h < 0x7c00; ++h) {  // exact midpoints between neighbouring halves: the ties
    double mid = (halfReference(static_cast<uint16_t>(h)) + halfReference(static_cast<uint16_t>(h + 1))) / 2;
    if (h == 0x7bff) mid = 65520.0;
    out.push_back(static_cast<float>(mid));
    out.push_back(-static_cast<float>(mid));
  }
  return out;
}

}  // namespace

TEST_CASE("halfToFloat is exact for all 65536 bit patterns, and floatToHalf inverts it", "[ir]") {
  int checked = 0;
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    auto h = static_cast<uint16_t>(bits);
    float f = ir::halfToFloat(h);
    if (isHalfNan(h)) {
      CHECK(std::isnan(f));
      CHECK(std::signbit(f) == ((h & 0x8000) != 0));
      uint16_t back = ir::floatToHalf(f);
      CHECK(isHalfNan(back));
      CHECK((back & 0x8000) == (h & 0x8000));
      continue;
    }
    double expected = halfReference(h);
    if (static_cast<double>(f) != expected || std::signbit(f) != std::signbit(expected)) {
      FAIL("halfToFloat(0x" << std::hex << bits << ") = " << f << ", expected " << expected);
    }
    if (ir::floatToHalf(f) != h) FAIL("floatToHalf(halfToFloat(0x" << std::hex << bits << ")) != itself");
    ++checked;
  }
  CHECK(checked == 65536 - 2 * 1023);
}

TEST_CASE("floatToHalf rounds to nearest, ties to even", "[ir]") {
  struct Case {
    float value;
    uint16_t bits;
  };
  const Case cases[] = {
      {1.0f, 0x3c00},
      {-2.5f, 0xc100},
      {0.1f, 0x2e66},
      {1.0f / 3.0f, 0x3555},
      {65504.0f, 0x7bff},
      {65519.99f, 0x7bff},
      {65520.0f, 0x7c00},
      {1e6f, 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
      {-0.0f, 0x8000},
      {1e-8f, 0x0000},
      {std::ldexp(1.0f, -24), 0x0001},           // smallest subnormal
      {std::ldexp(1.0f, -25), 0x0000},           // tie between 0 and 2^-24: even is 0
      {std::ldexp(1.0001f, -25), 0x0001},        // just above the tie
      {std::ldexp(3.0f, -25), 0x0002},           // tie between 1 and 2 ulps: even is 2
      {std::ldexp(1.0f, -14), 0x0400},           // smallest normal
      {std::ldexp(1023.5f, -24), 0x0400},        // rounds up out of the subnormals
      {1.0f + std::ldexp(1.0f, -11), 0x3c00},    // tie: even mantissa 0
      {1.0f + std::ldexp(3.0f, -11), 0x3c02},    // tie: even mantissa 2
      {1.0f + std::ldexp(1.01f, -11), 0x3c01},   // above the tie
      {2048.0f + 1.0f, 0x6800},                  // 2049 is a tie between 2048 and 2050: even 2048
      {2048.0f + 3.0f, 0x6802},                  // 2051 ties to 2052
  };
  for (const Case& c : cases) {
    INFO("value " << c.value);
    CHECK(ir::floatToHalf(c.value) == c.bits);
    CHECK(floatToHalfReference(c.value) == c.bits);  // the reference agrees with the table
  }
  CHECK(isHalfNan(ir::floatToHalf(std::numeric_limits<float>::quiet_NaN())));
  CHECK(isHalfNan(ir::floatToHalf(std::bit_cast<float>(0x7f800001u))));  // a signalling NaN stays NaN

  int mismatches = 0;
  for (float f : sampleFloats()) {
    uint16_t got = ir::floatToHalf(f);
    if (std::isnan(f)) {
      if (!isHalfNan(got)) ++mismatches;
      continue;
    }
    uint16_t want = floatToHalfReference(f);
#if defined(__FLT16_MANT_DIG__)
    if (std::bit_cast<uint16_t>(static_cast<_Float16>(f)) != want) {  // the compiler's conversion agrees
      FAIL("the reference disagrees with _Float16 on 0x" << std::hex << std::bit_cast<uint32_t>(f));
    }
#endif
    if (got != want && ++mismatches <= 5) {
      WARN("floatToHalf(" << f << " = 0x" << std::hex << std::bit_cast<uint32_t>(f) << ") = 0x" << got
                          << ", expected 0x" << want);
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("bfloat16 round-trips all 65536 bit patterns and rounds to nearest even", "[ir]") {
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    auto h = static_cast<uint16_t>(bits);
    float f = ir::bfloat16ToFloat(h);
    if (std::bit_cast<uint32_t>(f) != bits << 16) FAIL("bfloat16ToFloat(0x" << std::hex << bits << ") is not exact");
    uint16_t back = ir::floatToBfloat16(f);
    if (isBfloat16Nan(h)) {
      if (!isBfloat16Nan(back) || (back & 0x8000) != (h & 0x8000)) FAIL("NaN 0x" << std::hex << bits << " lost");
    } else if (back != h) {
      FAIL("floatToBfloat16(bfloat16ToFloat(0x" << std::hex << bits << ")) = 0x" << back);
    }
  }
  CHECK(ir::floatToBfloat16(1.0f) == 0x3f80);
  CHECK(ir::floatToBfloat16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, even stays
  CHECK(ir::floatToBfloat16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
  CHECK(ir::floatToBfloat16(std::bit_cast<float>(0x3f808001u)) == 0x3f81);
  CHECK(ir::floatToBfloat16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds to inf
  CHECK(isBfloat16Nan(ir::floatToBfloat16(std::bit_cast<float>(0x7f800001u))));
  CHECK(isBfloat16Nan(ir::floatToBfloat16(std::bit_cast<float>(0xff800001u))));

  int mismatches = 0;
  for (float f : sampleFloats()) {
    uint16_t got = ir::floatToBfloat16(f);
    if (std::isnan(f)) {
      if (!isBfloat16Nan(got)) ++mismatches;
    } else if (got != floatToBfloat16Reference(f)) {
      ++mismatches;
    }
  }
  CHECK(mismatches == 0);
}
