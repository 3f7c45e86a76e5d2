// ir/rewrite.h: the greedy worklist driver (what it visits, what it erases and when), the
// typed patterns, and the dead-code sweep.
#include <catch2/catch.hpp>

#include <algorithm>

#include "support/graph_builder.h"
#include "whittle/ir/rewrite.h"
#include "whittle/ir/verifier.h"

using namespace whittle;
using ir::DataType;
using testing::GraphBuilder;

namespace {

// The patterns' context: a record of the roots match() was asked about, by node name.
struct Trace {
  mutable std::vector<std::string> matched;
  int64_t count(const std::string& name) const { return std::count(matched.begin(), matched.end(), name); }
};

// Neg(Neg(x)) -> x, when the inner Neg's output is read by the outer one alone.
class CancelNegs final : public ir::RewritePattern<ir::Value*, Trace> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Neg"}; }
  std::optional<ir::Value*> match(const ir::Node& root, const Trace& trace) const override {
    trace.matched.push_back(root.name());
    const ir::Node* inner = ir::producerIs(root.input(0), "Neg");
    if (inner == nullptr) return std::nullopt;
    return inner->input(0);
  }
  Status rewrite(ir::Node& root, ir::Value* const& x, ir::Rewriter& rw) const override {
    rw.replaceAllUsesWith(root.output(0), x);
    return Status::ok();
  }
};

// Add(a, b) -> a (the second operand loses a reader).
class KeepFirstOperand final : public ir::RewritePattern<ir::RootMatch, Trace> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Add"}; }
  std::optional<ir::RootMatch> match(const ir::Node& root, const Trace& trace) const override {
    trace.matched.push_back(root.name());
    return ir::RootMatch{};
  }
  Status rewrite(ir::Node& root, const ir::RootMatch&, ir::Rewriter& rw) const override {
    rw.replaceAllUsesWith(root.output(0), root.input(0));
    return Status::ok();
  }
};

// Identity(x) -> x.
class RemoveIdentity final : public ir::RewritePattern<ir::RootMatch, Trace> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Identity"}; }
  std::optional<ir::RootMatch> match(const ir::Node& root, const Trace& trace) const override {
    trace.matched.push_back(root.name());
    if (!ir::canForward(root.output(0), root.input(0))) return std::nullopt;
    return ir::RootMatch{};
  }
  Status rewrite(ir::Node& root, const ir::RootMatch&, ir::Rewriter& rw) const override {
    rw.replaceNode(root, {root.input(0)});
    return Status::ok();
  }
};

// Mul(x, x) whose only reader is a Neg: the Neg reads x instead (the rewrite at an earlier
// node leaves a later one unread).
class SkipNegAfterSquare final : public ir::RewritePattern<ir::Node*, Trace> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Mul"}; }
  std::optional<ir::Node*> match(const ir::Node& root, const Trace& trace) const override {
    trace.matched.push_back(root.name());
    const ir::Value::Use* use = ir::onlyUse(root.output(0));
    if (use == nullptr || !ir::isDefaultDomainOp(*use->user, {"Neg"})) return std::nullopt;
    return use->user;
  }
  Status rewrite(ir::Node& root, ir::Node* const& neg, ir::Rewriter& rw) const override {
    rw.replaceAllUsesWith(neg->output(0), root.input(0));
    return Status::ok();
  }
};

// Matches any listed op and changes nothing: records what the driver visits.
class Record final : public ir::RewritePattern<ir::RootMatch, Trace> {
 public:
  explicit Record(std::vector<std::string_view> ops) : ops_(std::move(ops)) {}
  std::vector<std::string_view> rootOps() const override { return ops_; }
  std::optional<ir::RootMatch> match(const ir::Node& root, const Trace& trace) const override {
    trace.matched.push_back(root.name());
    return std::nullopt;
  }
  Status rewrite(ir::Node&, const ir::RootMatch&, ir::Rewriter&) const override { return Status::ok(); }

 private:
  std::vector<std::string_view> ops_;
};

// Flips a Transpose's perm between [0,1] and [1,0] forever.
class FlipPerm final : public ir::RewritePattern<std::vector<int64_t>, Trace> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Transpose"}; }
  std::optional<std::vector<int64_t>> match(const ir::Node& root, const Trace&) const override {
    std::vector<int64_t> perm = root.attrInts("perm", {0, 1});
    return std::vector<int64_t>{perm[1], perm[0]};
  }
  Status rewrite(ir::Node& root, const std::vector<int64_t>& perm, ir::Rewriter&) const override {
    root.setAttribute(ir::Attribute::makeInts("perm", perm));
    return Status::ok();
  }
};

// Always matches, and fails.
class Fail final : public ir::RewritePattern<ir::RootMatch, Trace> {
 public:
  std::vector<std::string_view> rootOps() const override { return {"Relu"}; }
  std::optional<ir::RootMatch> match(const ir::Node&, const Trace&) const override { return ir::RootMatch{}; }
  Status rewrite(ir::Node& root, const ir::RootMatch&, ir::Rewriter&) const override {
    return invalidInput(root.describe() + ": no");
  }
};

ir::GreedyRewriteStats run(ir::Graph& g, const std::vector<const ir::Pattern<Trace>*>& patterns, const Trace& trace,
                           const ir::GreedyRewriteConfig& config = {}) {
  auto stats = ir::applyPatternsGreedily(g, patterns, trace, config);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  Status verified = ir::verify(g);
  INFO(verified.message());
  REQUIRE(verified.isOk());
  INFO(testing::useListMismatch(g));
  REQUIRE(testing::useListMismatch(g).empty());
  CHECK(g.listener() == nullptr);
  return *stats;
}

}  // namespace

TEST_CASE("a rewrite downstream that enables one upstream gets applied", "[ir][rewrite]") {
  // a = Neg(x); b = Neg(a); s = Shape(a); y = Relu(Add(b, s)). The Negs cannot cancel while
  // a has two readers; dropping the Add's second operand leaves the Shape unread, the driver
  // erases it, and the first Neg pair is tried again: y = Relu(x).
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* a = b.node("Neg", {x}, {}, "neg1");
  ir::Value* n = b.node("Neg", {a}, {}, "neg2");
  ir::Value* s = b.node("Shape", {a}, {}, "shape");
  ir::Value* y = b.node("Relu", {b.node("Add", {n, s}, {}, "add")}, {}, "relu");
  b.output(y);
  ir::Model model = b.build(17);
  CancelNegs cancel;
  KeepFirstOperand keepFirst;
  Trace trace;
  ir::GreedyRewriteStats stats = run(*model.graph, {&cancel, &keepFirst}, trace);
  CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Relu"});
  CHECK(model.graph->nodes()[0]->input(0) == model.graph->findValue("x"));
  CHECK(stats.rewrites == 2);
  CHECK(trace.count("neg2") == 2);  // once before the Add's rewrite, once after
  CHECK(stats.nodesErased == 4);    // add, shape, neg2, neg1: each as it became unread
  CHECK(stats.deadCodeSweeps == 1);
}

TEST_CASE("a node erased while it waits in the worklist is never visited", "[ir][rewrite]") {
  // m = Mul(x, x); v = Neg(m); y = Relu(v). The rewrite at the Mul leaves the Neg, which the
  // worklist holds next, unread: the driver erases it and never hands it to a pattern.
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* m = b.node("Mul", {x, x}, {}, "square");
  b.output(b.node("Relu", {b.node("Neg", {m}, {}, "victim")}, {}, "relu"));
  ir::Model model = b.build(17);
  SkipNegAfterSquare skip;
  Record record({"Neg", "Relu"});
  Trace trace;
  ir::GreedyRewriteStats stats = run(*model.graph, {&skip, &record}, trace);
  CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Relu"});
  CHECK(trace.count("square") == 1);
  CHECK(trace.count("victim") == 0);
  CHECK(trace.count("relu") >= 1);
  CHECK(stats.rewrites == 1);
  CHECK(stats.nodesErased == 2);  // victim and square
}

TEST_CASE("the driver revisits only what rewrites touched", "[ir][rewrite]") {
  // A chain of 300 Relus with an Identity in the middle: one rewrite, after which only the
  // Identity's producer is tried again (its reader still waits for its first try). A driver
  // that sweeps until nothing changes would try every node twice.
  GraphBuilder b;
  ir::Value* v = b.input("x", DataType::kFloat, {2});
  constexpr int kRelus = 300;
  for (int i = 0; i < kRelus; ++i) {
    v = b.node("Relu", {v}, {}, "relu" + std::to_string(i));
    if (i == kRelus / 2) v = b.node("Identity", {v}, {}, "identity");
  }
  b.output(v);
  ir::Model model = b.build(17);
  RemoveIdentity remove;
  Record record({"Relu"});
  Trace trace;
  ir::GreedyRewriteStats stats = run(*model.graph, {&remove, &record}, trace);
  CHECK(model.graph->numNodes() == kRelus);
  CHECK(stats.rewrites == 1);
  CHECK(stats.visits == kRelus + 1 + 1);
  CHECK(trace.count("relu150") == 2);  // the Identity's producer
  CHECK(trace.count("relu151") == 1);  // its reader, touched before its turn came
  CHECK(trace.count("relu0") == 1);
  CHECK(trace.count("relu299") == 1);
}

TEST_CASE("dead code is removed once, at the end, and only when something was rewritten", "[ir][rewrite]") {
  // x -> 50 Identities -> Relu -> y, beside a dead Exp of x and an unused initializer.
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* v = x;
  for (int i = 0; i < 50; ++i) v = b.node("Identity", {v}, {}, "id" + std::to_string(i));
  b.output(b.node("Relu", {v}, {}, "relu"));
  b.node("Exp", {x}, {}, "dead");
  b.weight("unused", {4});
  ir::Model model = b.build(17);
  Trace trace;

  SECTION("fifty rewrites, one sweep") {
    RemoveIdentity remove;
    ir::GreedyRewriteStats stats = run(*model.graph, {&remove}, trace);
    CHECK(stats.rewrites == 50);
    CHECK(stats.deadCodeSweeps == 1);
    CHECK(stats.nodesErased == 1);  // the Exp; each rewrite erased its Identity itself
    CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Relu"});
    CHECK(model.graph->initializers().empty());
  }
  SECTION("nothing rewritten: the graph is left as it was, dead code included") {
    Record record({"Identity", "Relu", "Exp"});
    ir::GreedyRewriteStats stats = run(*model.graph, {&record}, trace);
    CHECK(stats.rewrites == 0);
    CHECK(stats.deadCodeSweeps == 0);
    CHECK(stats.visits == 52);
    CHECK(model.graph->numNodes() == 52);
    CHECK(model.graph->initializers().size() == 1);
  }
  SECTION("without the sweep, only what the rewrites left unread goes") {
    RemoveIdentity remove;
    ir::GreedyRewriteConfig config;
    config.removeDeadCode = false;
    ir::GreedyRewriteStats stats = run(*model.graph, {&remove}, trace, config);
    CHECK(stats.rewrites == 50);
    CHECK(stats.deadCodeSweeps == 0);
    CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Relu", "Exp"});
    CHECK(model.graph->initializers().size() == 1);
  }
}

TEST_CASE("the sweep frees readers that earlier dead code blocked", "[ir][rewrite]") {
  // a = Neg(x) is also read by a dead Exp, so Neg(Neg(x)) cannot cancel until the sweep
  // (which a rewrite elsewhere triggers) removes the Exp.
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* a = b.node("Neg", {x}, {}, "neg1");
  b.node("Exp", {a}, {}, "dead");
  ir::Value* n = b.node("Neg", {a}, {}, "neg2");
  b.output(b.node("Relu", {b.node("Identity", {n}, {}, "id")}, {}, "relu"));
  ir::Model model = b.build(17);
  CancelNegs cancel;
  RemoveIdentity remove;
  Trace trace;
  ir::GreedyRewriteStats stats = run(*model.graph, {&cancel, &remove}, trace);
  CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Relu"});
  CHECK(stats.rewrites == 2);
  CHECK(stats.deadCodeSweeps == 2);  // the second after the rewrite that the first enabled
}

TEST_CASE("patterns that undo each other are an error, and errors leave no listener", "[ir][rewrite]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  b.output(b.node("Relu", {b.node("Transpose", {x}, {ir::Attribute::makeInts("perm", {1, 0})})}));
  ir::Model model = b.build(17);
  Trace trace;
  SECTION("no fixpoint") {
    FlipPerm flip;
    ir::GreedyRewriteConfig config;
    config.maxRewrites = 50;
    auto stats = ir::applyPatternsGreedily(*model.graph, std::vector<const ir::Pattern<Trace>*>{&flip}, trace, config);
    REQUIRE_FALSE(stats.isOk());
    CHECK(stats.status().message().find("did not converge") != std::string::npos);
  }
  SECTION("a failing rewrite") {
    Fail fail;
    auto stats = ir::applyPatternsGreedily(*model.graph, std::vector<const ir::Pattern<Trace>*>{&fail}, trace);
    REQUIRE_FALSE(stats.isOk());
    CHECK(stats.status().message().find("no") != std::string::npos);
  }
  CHECK(model.graph->listener() == nullptr);
}

TEST_CASE("nodes of other domains are not roots", "[ir][rewrite]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  b.output(b.node("Relu", {b.node("Identity", {x}, {}, "custom", "com.example")}, {}, "relu"));
  ir::Model model = b.build(17);
  RemoveIdentity remove;
  Trace trace;
  ir::GreedyRewriteStats stats = run(*model.graph, {&remove}, trace);
  CHECK(stats.rewrites == 0);
  CHECK(stats.visits == 0);
  CHECK(trace.matched.empty());
  CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Identity", "Relu"});
}

TEST_CASE("removeDeadNodes removes unread nodes consumers first, and unused initializers", "[ir][rewrite]") {
  GraphBuilder b;
  ir::Value* x = b.input("x", DataType::kFloat, {2});
  ir::Value* w = b.weight("w", {2});
  b.node("Exp", {b.node("Add", {x, w})});  // a dead chain reading the only use of w
  b.output(b.node("Relu", {x}));
  ir::Model model = b.build(17);
  CHECK(ir::removeDeadNodes(*model.graph) == 2);
  CHECK(testing::opTypes(*model.graph) == std::vector<std::string>{"Relu"});
  CHECK(model.graph->initializers().empty());
}
