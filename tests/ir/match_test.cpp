// ir/match.h: the matchers that the passes and the runtime's lowering share.
#include <catch2/catch.hpp>

#include <span>

#include "support/graph_builder.h"
#include "whittle/ir/match.h"

using namespace whittle;
using ir::ConstantScope;
using ir::DataType;
using testing::GraphBuilder;

namespace {

template <typename T>
std::vector<T> asVector(std::span<const T> values) {
  return {values.begin(), values.end()};
}

ir::Attribute subgraph(const std::string& name) {
  ir::Attribute a;
  a.name = name;
  a.kind = ir::Attribute::Kind::kGraph;
  a.opaque = "serialized-graph";
  return a;
}

}  // namespace

TEST_CASE("isDefaultDomainOp accepts \"\" and \"ai.onnx\" and the listed ops only", "[ir][match]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  b.node("Relu", {x});
  ir::Node* relu = b.lastNode();
  b.node("Relu", {x}, {}, "", "ai.onnx");
  ir::Node* qualified = b.lastNode();
  b.node("Relu", {x}, {}, "", "com.example");
  ir::Node* custom = b.lastNode();
  CHECK(ir::isDefaultDomainOp(*relu, {"Sigmoid", "Relu"}));
  CHECK(ir::isDefaultDomainOp(*qualified, {"Relu"}));
  CHECK_FALSE(ir::isDefaultDomainOp(*custom, {"Relu"}));
  CHECK_FALSE(ir::isDefaultDomainOp(*relu, {"Sigmoid", "Tanh"}));
  CHECK(ir::isDefaultDomain(*qualified));
  CHECK_FALSE(ir::isDefaultDomain(*custom));
}

TEST_CASE("onlyUse, hasSingleUse and producerIs", "[ir][match]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* once = b.node("Neg", {x}, {}, "once");
  ir::Value* twice = b.node("Exp", {x}, {}, "twice");
  ir::Value* out = b.node("Relu", {once}, {}, "relu");
  b.node("Add", {twice, twice}, {}, "add");
  b.output(out);
  b.output(b.lastNode()->output(0));
  ir::Value* graphOutput = b.node("Sigmoid", {x}, {}, "exported");
  b.output(graphOutput);
  b.node("Abs", {graphOutput}, {}, "reader");

  REQUIRE(ir::onlyUse(once) != nullptr);
  CHECK(ir::onlyUse(once)->user->name() == "relu");
  CHECK(ir::hasSingleUse(*once));
  CHECK(ir::onlyUse(twice) == nullptr);  // two slots of one node are two uses
  CHECK_FALSE(ir::hasSingleUse(*twice));
  CHECK(ir::onlyUse(graphOutput) != nullptr);  // read once, but also a graph output
  CHECK_FALSE(ir::hasSingleUse(*graphOutput));
  CHECK(ir::onlyUse(nullptr) == nullptr);

  CHECK(ir::producerIs(once, "Neg") != nullptr);
  CHECK(ir::producerIs(once, "Exp") == nullptr);
  CHECK(ir::producerIs(twice, "Exp") == nullptr);
  CHECK(ir::producerIs(twice, "Exp", /*singleUse=*/false) != nullptr);
  CHECK(ir::producerIs(x, "Neg") == nullptr);  // a graph input has no producer
  CHECK(ir::producerIs(nullptr, "Neg") == nullptr);

}

TEST_CASE("a capture by a subgraph is a use but never an only use", "[ir][match]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* v = b.node("Neg", {x});
  b.node("Loop", {}, {subgraph("body")});
  b.lastNode()->addImplicitInput(v);
  CHECK(v->hasUses());
  CHECK(ir::onlyUse(v) == nullptr);
  CHECK_FALSE(ir::hasSingleUse(*v));
}

TEST_CASE("constantOf: what counts as a constant in a model and in a session", "[ir][match]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* w = b.weight("w", {2});
  // An initializer also listed as a graph input (old exporters): a caller may feed it.
  ir::Value* fed = b.input("fed", DataType::kFloat, {2});
  fed->setConstant(b.randomTensor(DataType::kFloat, {2}));
  ir::Value* fromNode = b.node("Constant", {}, {ir::Attribute::makeTensor("value", b.randomTensor(DataType::kFloat, {2}))});
  ir::Value* computed = b.node("Neg", {x});

  CHECK(ir::constantOf(w) == w->constant());
  CHECK(ir::constantOf(w, ConstantScope::kSession) == w->constant());
  CHECK(ir::constantOf(fed) == nullptr);
  CHECK(ir::constantOf(fed, ConstantScope::kSession) == fed->constant());
  REQUIRE(ir::constantOf(fromNode) != nullptr);
  CHECK(ir::constantOf(fromNode)->dims() == std::vector<int64_t>{2});
  CHECK(ir::constantOf(fromNode, ConstantScope::kSession) == nullptr);
  CHECK(ir::constantOf(computed) == nullptr);
  CHECK(ir::constantOf(x) == nullptr);
  CHECK(ir::constantOf(nullptr) == nullptr);
  CHECK(ir::isFloatConstant(w));
  CHECK_FALSE(ir::isFloatConstant(fed));
  CHECK(ir::isFloatConstant(fed, ConstantScope::kSession));
}

TEST_CASE("scalarConstant and isScalarConstant", "[ir][match]") {
  GraphBuilder b;
  ir::Value* half = b.constant("half", {1, 1}, {0.5f});  // one element, any rank
  ir::Value* pair = b.constant("pair", {2}, {0.5f, 0.5f});
  ir::Value* three = b.constantInt64("three", {}, {3});
  ir::Value* text = b.constant("text", ir::Tensor::strings({}, {"0.5"}));
  CHECK(ir::scalarConstant(half) == 0.5);
  CHECK(ir::scalarConstant(three) == 3.0);
  CHECK_FALSE(ir::scalarConstant(pair).has_value());
  CHECK_FALSE(ir::scalarConstant(text).has_value());
  CHECK(ir::isScalarConstant(half, 0.5));
  CHECK(ir::isScalarConstant(half, 0.5 + 1e-8));
  CHECK_FALSE(ir::isScalarConstant(half, 0.51));
  CHECK(ir::isScalarConstant(half, 0.51, /*tol=*/0.05));
  CHECK(ir::isScalarConstant(three, 3.0));
}

TEST_CASE("otherInput, knownRankDims and constantNodeValue", "[ir][match]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(4)});
  ir::Value* c = b.constant("c", {4}, {1, 2, 3, 4});
  ir::Value* sum = b.node("Add", {x, c});
  ir::Node* add = b.lastNode();
  CHECK(ir::otherInput(*add, x) == c);
  CHECK(ir::otherInput(*add, c) == x);
  CHECK(ir::otherInput(*add, sum) == nullptr);
  CHECK(ir::knownRankDims(x) == std::vector<int64_t>{-1, 4});
  CHECK(ir::knownRankDims(c) == std::vector<int64_t>{4});
  CHECK_FALSE(ir::knownRankDims(sum).has_value());  // no type known

  b.node("Constant", {}, {ir::Attribute::makeInts("value_ints", {1, 2, 3})});
  auto ints = ir::constantNodeValue(*b.lastNode());
  REQUIRE(ints.has_value());
  CHECK(ints->dtype() == DataType::kInt64);
  CHECK(asVector<int64_t>(ints->values<int64_t>()) == std::vector<int64_t>{1, 2, 3});
  b.node("Constant", {}, {ir::Attribute::makeFloat("value_float", 2.5f)});
  auto scalar = ir::constantNodeValue(*b.lastNode());
  REQUIRE(scalar.has_value());
  CHECK(scalar->rank() == 0);
  CHECK(scalar->valueAsDouble(0) == 2.5);
  b.node("Constant", {}, {ir::Attribute::makeString("value_string", "no")});
  CHECK_FALSE(ir::constantNodeValue(*b.lastNode()).has_value());
}

TEST_CASE("canForward keeps the model's interface", "[ir][match]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* w = b.weight("w", {2});
  ir::Value* inner = b.node("Neg", {x});
  ir::Value* id = b.node("Identity", {inner});
  ir::Value* out = b.node("Identity", {x});
  b.output(out);
  b.output(b.node("Relu", {id}));
  CHECK(ir::canForward(id, inner));
  CHECK_FALSE(ir::canForward(id, id));
  CHECK_FALSE(ir::canForward(out, x));  // a graph output fed by a graph input needs its node
  CHECK_FALSE(ir::canForward(out, w));  // ... and so does one fed by an initializer
}

TEST_CASE("isTriviallyDead: unread, not an output, no side effects", "[ir][match]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  b.node("Neg", {x});
  ir::Node* unread = b.lastNode();
  ir::Value* read = b.node("Exp", {x});
  ir::Node* readNode = b.lastNode();
  b.output(b.node("Relu", {read}));
  ir::Node* output = b.lastNode();
  b.node("Loop", {}, {subgraph("body")});
  ir::Node* loop = b.lastNode();
  b.node("If", {x}, {subgraph("then_branch"), subgraph("else_branch")});
  ir::Node* ifNode = b.lastNode();
  CHECK(ir::isTriviallyDead(*unread));
  CHECK_FALSE(ir::isTriviallyDead(*readNode));
  CHECK_FALSE(ir::isTriviallyDead(*output));
  CHECK(ir::hasSideEffects(*loop));
  CHECK_FALSE(ir::isTriviallyDead(*loop));
  CHECK_FALSE(ir::hasSideEffects(*ifNode));
  CHECK(ir::isTriviallyDead(*ifNode));
}
