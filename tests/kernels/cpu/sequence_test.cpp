// Sequence, optional and map values in the CPU runtime (kernels/cpu/sequence.cpp,
// whittle/runtime/value.h): the Sequence* ops, SplitToSequence, ConcatFromSequence, the
// Optional ops, ZipMap, Identity and Loop/If/SequenceMap carrying such values, and the errors
// for bad input. The ONNX node tests check the same ops against their stored outputs.
#include <catch2/catch.hpp>

#include <onnx/onnx_pb.h>

#include "support/kernel_harness.h"
#include "support/onnx_builder.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/session.h"

using namespace whittle;
using runtime::Value;
using runtime::ValueKind;
using testing::onnxGraph;
using testing::onnxInt;
using testing::onnxInts;
using testing::ProtoGraph;

namespace {

constexpr int kFloat = onnx::TensorProto::FLOAT;
constexpr int kInt64 = onnx::TensorProto::INT64;
constexpr int kBool = onnx::TensorProto::BOOL;

ir::Tensor floats(std::vector<int64_t> dims, const std::vector<float>& v) {
  return ir::Tensor::fromVector(ir::DataType::kFloat, std::move(dims), v);
}
ir::Tensor int64s(std::vector<int64_t> dims, const std::vector<int64_t>& v) {
  return ir::Tensor::fromVector(ir::DataType::kInt64, std::move(dims), v);
}
ir::Tensor scalar64(int64_t v) { return int64s({}, {v}); }
std::vector<float> values(const ir::Tensor& t) {
  REQUIRE(t.dtype() == ir::DataType::kFloat);
  auto s = t.values<float>();
  return {s.begin(), s.end()};
}

/// Adds a graph input or output of type sequence(tensor(elemType)) (or optional(...) of it).
void setSequenceType(onnx::ValueInfoProto* info, const std::string& name, int elemType, bool optional = false) {
  info->set_name(name);
  onnx::TypeProto* type = info->mutable_type();
  if (optional) type = type->mutable_optional_type()->mutable_elem_type();
  type->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(elemType);
}

/// The model around `graph` with the default domain at `opset` and ai.onnx.ml 1.
ir::Model load(const onnx::GraphProto& graph, int64_t opset = 18) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  op = m.add_opset_import();
  op->set_domain("ai.onnx.ml");
  op->set_version(1);
  *m.mutable_graph() = graph;
  auto model = onnx_io::loadFromBytes(m.SerializeAsString(), "", "test model");
  INFO(model.status().message());
  REQUIRE(model.isOk());
  return std::move(model).value();
}

Expected<std::vector<runtime::NamedValue>> tryRun(const ir::Model& model, const std::vector<runtime::NamedValue>& feeds) {
  WH_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model));
  return session->runValues(feeds);
}

std::vector<Value> run(const ir::Model& model, const std::vector<runtime::NamedValue>& feeds) {
  auto out = tryRun(model, feeds);
  INFO(out.status().message());
  REQUIRE(out.isOk());
  std::vector<Value> values;
  for (auto& [name, v] : *out) values.push_back(v);
  return values;
}

std::string runError(const ir::Model& model, const std::vector<runtime::NamedValue>& feeds) {
  auto out = tryRun(model, feeds);
  REQUIRE_FALSE(out.isOk());
  return out.status().message();
}

/// The float elements of each tensor of a sequence.
std::vector<std::vector<float>> sequenceValues(const Value& v) {
  REQUIRE(v.kind() == ValueKind::kSequence);
  std::vector<std::vector<float>> out;
  for (const Value& e : v.elements()) {
    REQUIRE(e.isTensor());
    out.push_back(values(e.tensor()));
  }
  return out;
}

}  // namespace

TEST_CASE("Sequence ops build, read and edit sequences without copying elements", "[kernels][sequence]") {
  ProtoGraph g("g");
  g.input("a", kFloat, {2}).input("b", kFloat, {2}).input("c", kFloat, {2}).input("at", kInt64, {});
  g.node("SequenceConstruct", {"a", "b"}, {"s"});
  g.node("SequenceInsert", {"s", "c", "at"}, {"s2"});  // at the front (position 0)
  g.node("SequenceInsert", {"s2", "a"}, {"s3"});       // at the back
  g.node("SequenceAt", {"s3", "at"}, {"first"});
  g.node("SequenceLength", {"s3"}, {"n"});
  g.node("SequenceErase", {"s3"}, {"s4"});  // the last one
  g.node("Identity", {"s4"}, {"same"});
  g.output("s3").output("first").output("n").output("s4").output("same");
  std::vector<runtime::NamedValue> feeds = {
      {"a", floats({2}, {1, 2})}, {"b", floats({2}, {3, 4})}, {"c", floats({2}, {5, 6})}, {"at", scalar64(0)}};
  auto out = run(load(g.proto()), feeds);
  CHECK(sequenceValues(out[0]) == std::vector<std::vector<float>>{{5, 6}, {1, 2}, {3, 4}, {1, 2}});
  CHECK(values(out[1].tensor()) == std::vector<float>{5, 6});
  REQUIRE(out[2].isTensor());
  CHECK(out[2].tensor().dtype() == ir::DataType::kInt64);
  CHECK(out[2].tensor().data<int64_t>()[0] == 4);
  CHECK(sequenceValues(out[3]) == std::vector<std::vector<float>>{{5, 6}, {1, 2}, {3, 4}});
  CHECK(sequenceValues(out[4]) == sequenceValues(out[3]));
  // The sequence shares the tensors it was given.
  CHECK(out[0].elements()[1].tensor().rawData() == out[0].elements()[3].tensor().rawData());

  SECTION("negative positions count from the end") {
    feeds[3].second = scalar64(-1);
    auto neg = run(load(g.proto()), feeds);
    // Insert c before the last element: a, c, b; then a at the back; SequenceAt(-1) is a.
    CHECK(sequenceValues(neg[0]) == std::vector<std::vector<float>>{{1, 2}, {5, 6}, {3, 4}, {1, 2}});
    CHECK(values(neg[1].tensor()) == std::vector<float>{1, 2});
  }
  SECTION("a position out of range is an error naming the node") {
    feeds[3].second = scalar64(3);  // s2 has 2 elements: valid insert positions are [-2, 2]
    std::string message = runError(load(g.proto()), feeds);
    CHECK_THAT(message, Catch::Contains("SequenceInsert 's2_SequenceInsert'") && Catch::Contains("position 3 is out of range"));
  }
  SECTION("a position that is not an integer scalar is an error") {
    feeds[3].second = floats({}, {0});
    ProtoGraph h("h");
    h.input("a", kFloat, {2}).input("at", kFloat, {});
    h.node("SequenceConstruct", {"a"}, {"s"}).node("SequenceAt", {"s", "at"}, {"x"}).output("x");
    CHECK_THAT(runError(load(h.proto()), {feeds[0], feeds[3]}),
               Catch::Contains("SequenceAt 'x_SequenceAt'") && Catch::Contains("must be a single int32 or int64"));
  }
}

TEST_CASE("Sequence ops refuse bad input with one-line errors naming the node", "[kernels][sequence]") {
  SECTION("SequenceConstruct of mixed element types") {
    ProtoGraph g("g");
    g.input("a", kFloat, {2}).input("b", kInt64, {2});
    g.node("SequenceConstruct", {"a", "b"}, {"s"}).output("s");
    std::string message = runError(load(g.proto()), {{"a", floats({2}, {1, 2})}, {"b", int64s({2}, {1, 2})}});
    CHECK_THAT(message, Catch::Contains("SequenceConstruct 's_SequenceConstruct'") && Catch::Contains("int64"));
  }
  SECTION("SequenceInsert of a tensor of another type") {
    ProtoGraph g("g");
    g.input("a", kFloat, {2}).input("b", kInt64, {2});
    g.node("SequenceConstruct", {"a"}, {"s"}).node("SequenceInsert", {"s", "b"}, {"t"}).output("t");
    std::string message = runError(load(g.proto()), {{"a", floats({2}, {1, 2})}, {"b", int64s({2}, {1, 2})}});
    CHECK_THAT(message, Catch::Contains("SequenceInsert") && Catch::Contains("the sequence holds float32"));
  }
  SECTION("SequenceErase of an empty sequence") {
    ProtoGraph g("g");
    g.node("SequenceEmpty", {}, {"s"}).node("SequenceErase", {"s"}, {"t"}).output("t");
    CHECK_THAT(runError(load(g.proto()), {}), Catch::Contains("SequenceErase") && Catch::Contains("empty sequence"));
  }
  SECTION("SequenceEmpty with a dtype that is no element type") {
    ProtoGraph g("g");
    g.node("SequenceEmpty", {}, {"s"}, {onnxInt("dtype", 99)}).output("s");
    CHECK_THAT(runError(load(g.proto()), {}), Catch::Contains("SequenceEmpty") && Catch::Contains("dtype 99"));
  }
  SECTION("a tensor where a sequence is expected") {
    ProtoGraph g("g");
    g.input("a", kFloat, {2});
    g.node("SequenceLength", {"a"}, {"n"}).output("n");
    CHECK_THAT(runError(load(g.proto()), {{"a", floats({2}, {1, 2})}}),
               Catch::Contains("SequenceLength 'n_SequenceLength'") && Catch::Contains("must be a sequence"));
  }
  SECTION("a tensor op fed a declared sequence is refused when the session is created") {
    onnx::GraphProto g = ProtoGraph("g").node("Relu", {"s"}, {"y"}).output("y").proto();
    setSequenceType(g.add_input(), "s", kFloat);
    auto session = runtime::Session::create(load(g));
    REQUIRE_FALSE(session.isOk());
    CHECK_THAT(session.status().message(), Catch::Contains("Relu 'y_Relu'") && Catch::Contains("takes tensors only"));
  }
  SECTION("Session::run names an output that is not a tensor") {
    ProtoGraph g("g");
    g.input("a", kFloat, {2});
    g.node("SequenceConstruct", {"a"}, {"s"}).output("s");
    auto session = runtime::Session::create(load(g.proto()));
    REQUIRE(session.isOk());
    auto out = (*session)->run({{"a", floats({2}, {1, 2})}});
    REQUIRE_FALSE(out.isOk());
    CHECK_THAT(out.status().message(), Catch::Contains("output 's' is a sequence of 1"));
  }
  SECTION("a sequence input fed a tensor, and a tensor input fed a sequence") {
    onnx::GraphProto g = ProtoGraph("g").node("SequenceLength", {"s"}, {"n"}).output("n").proto();
    setSequenceType(g.add_input(), "s", kFloat);
    CHECK_THAT(runError(load(g), {{"s", floats({2}, {1, 2})}}), Catch::Contains("input 's': expected a sequence"));
    ProtoGraph h("h");
    h.input("a", kFloat, {2}).node("Relu", {"a"}, {"y"}).output("y");
    CHECK_THAT(runError(load(h.proto()), {{"a", Value::sequence({floats({2}, {1, 2})})}}),
               Catch::Contains("input 'a': expected a tensor, got a sequence"));
  }
}

TEST_CASE("SplitToSequence and ConcatFromSequence split and join along an axis", "[kernels][sequence]") {
  const ir::Tensor x = floats({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto split = [&](const std::vector<onnx::AttributeProto>& attrs, const std::optional<ir::Tensor>& sizes) {
    ProtoGraph g("g");
    g.input("x", kFloat, {2, 5});
    std::vector<runtime::NamedValue> feeds = {{"x", x}};
    if (sizes) {
      g.input("split", kInt64, sizes->dims());
      feeds.emplace_back("split", *sizes);
    }
    g.node("SplitToSequence", sizes ? std::vector<std::string>{"x", "split"} : std::vector<std::string>{"x"}, {"s"}, attrs);
    g.output("s");
    return run(load(g.proto()), feeds)[0];
  };
  SECTION("a scalar split: equal chunks, the last one shorter") {
    Value s = split({onnxInt("axis", 1)}, scalar64(2));
    CHECK(sequenceValues(s) == std::vector<std::vector<float>>{{0, 1, 5, 6}, {2, 3, 7, 8}, {4, 9}});
    CHECK(s.elements()[2].tensor().dims() == std::vector<int64_t>{2, 1});
  }
  SECTION("a list of sizes, a zero among them") {
    Value s = split({onnxInt("axis", -1)}, int64s({3}, {1, 0, 4}));
    REQUIRE(s.elements().size() == 3);
    CHECK(s.elements()[1].tensor().dims() == std::vector<int64_t>{2, 0});
    CHECK(values(s.elements()[2].tensor()) == std::vector<float>{1, 2, 3, 4, 6, 7, 8, 9});
  }
  SECTION("no split: one element per index; keepdims=0 drops the axis") {
    Value s = split({onnxInt("axis", 0), onnxInt("keepdims", 0)}, std::nullopt);
    REQUIRE(s.elements().size() == 2);
    CHECK(s.elements()[0].tensor().dims() == std::vector<int64_t>{5});
    CHECK(values(s.elements()[1].tensor()) == std::vector<float>{5, 6, 7, 8, 9});
    Value kept = split({onnxInt("axis", 0)}, std::nullopt);
    CHECK(kept.elements()[0].tensor().dims() == std::vector<int64_t>{1, 5});
  }
  SECTION("sizes that do not add up to the axis are an error") {
    ProtoGraph g("g");
    g.input("x", kFloat, {2, 5}).input("split", kInt64, {2});
    g.node("SplitToSequence", {"x", "split"}, {"s"}, {onnxInt("axis", 1)}).output("s");
    CHECK_THAT(runError(load(g.proto()), {{"x", x}, {"split", int64s({2}, {2, 2})}}),
               Catch::Contains("SplitToSequence 's_SplitToSequence'") && Catch::Contains("add up to 4, the axis has 5"));
  }
  SECTION("an axis out of range is an error") {
    ProtoGraph g("g");
    g.input("x", kFloat, {2, 5});
    g.node("SplitToSequence", {"x"}, {"s"}, {onnxInt("axis", 2)}).output("s");
    CHECK_THAT(runError(load(g.proto()), {{"x", x}}), Catch::Contains("axis 2 is out of range"));
  }

  auto concat = [&](const std::vector<onnx::AttributeProto>& attrs, const std::vector<ir::Tensor>& parts) {
    ProtoGraph g("g");
    std::vector<std::string> names;
    std::vector<runtime::NamedValue> feeds;
    for (size_t i = 0; i < parts.size(); ++i) {
      names.push_back("p" + std::to_string(i));
      g.input(names.back(), kFloat, parts[i].dims());
      feeds.emplace_back(names.back(), parts[i]);
    }
    g.node("SequenceConstruct", names, {"s"}).node("ConcatFromSequence", {"s"}, {"y"}, attrs).output("y");
    return tryRun(load(g.proto()), feeds);
  };
  SECTION("ConcatFromSequence along an existing axis") {
    auto y = concat({onnxInt("axis", 1)}, {floats({2, 1}, {0, 5}), floats({2, 3}, {1, 2, 3, 6, 7, 8}), floats({2, 1}, {4, 9})});
    REQUIRE(y.isOk());
    CHECK((*y)[0].second.tensor().dims() == std::vector<int64_t>{2, 5});
    CHECK(values((*y)[0].second.tensor()) == values(x));
  }
  SECTION("ConcatFromSequence with new_axis stacks, the axis may be rank") {
    auto y = concat({onnxInt("axis", -1), onnxInt("new_axis", 1)}, {floats({2}, {0, 1}), floats({2}, {2, 3})});
    REQUIRE(y.isOk());
    CHECK((*y)[0].second.tensor().dims() == std::vector<int64_t>{2, 2});
    CHECK(values((*y)[0].second.tensor()) == std::vector<float>{0, 2, 1, 3});
  }
  SECTION("ConcatFromSequence of elements that disagree off the axis is an error") {
    auto y = concat({onnxInt("axis", 0)}, {floats({1, 2}, {0, 1}), floats({1, 3}, {2, 3, 4})});
    REQUIRE_FALSE(y.isOk());
    CHECK_THAT(y.status().message(), Catch::Contains("ConcatFromSequence 'y_ConcatFromSequence'") &&
                                         Catch::Contains("element 1 is float32 [1,3]"));
  }
  SECTION("ConcatFromSequence with new_axis out of {0, 1} is refused when created") {
    auto y = concat({onnxInt("axis", 0), onnxInt("new_axis", 2)}, {floats({1}, {0})});
    REQUIRE_FALSE(y.isOk());
    CHECK_THAT(y.status().message(), Catch::Contains("new_axis = 2"));
  }
}

TEST_CASE("Optional, OptionalHasElement and OptionalGetElement", "[kernels][sequence]") {
  ProtoGraph g("g");
  g.input("a", kFloat, {2});
  g.node("Optional", {"a"}, {"o"});
  g.node("OptionalHasElement", {"o"}, {"has"});
  g.node("OptionalGetElement", {"o"}, {"back"});
  g.node("OptionalHasElement", {""}, {"hasNothing"});  // opset 18: an empty input has no element
  g.output("o").output("has").output("back").output("hasNothing");
  auto out = run(load(g.proto()), {{"a", floats({2}, {1, 2})}});
  REQUIRE(out[0].kind() == ValueKind::kOptional);
  CHECK(out[0].hasElement());
  CHECK(out[1].tensor().data<uint8_t>()[0] == 1);
  CHECK(values(out[2].tensor()) == std::vector<float>{1, 2});
  CHECK(out[3].tensor().data<uint8_t>()[0] == 0);

  SECTION("an optional input holding nothing") {
    onnx::GraphProto h = ProtoGraph("h").node("OptionalHasElement", {"o"}, {"has"}).node("OptionalGetElement", {"o"}, {"x"})
                             .output("has").output("x").proto();
    setSequenceType(h.add_input(), "o", kFloat, /*optional=*/true);
    std::string message = runError(load(h), {{"o", Value::none()}});
    CHECK_THAT(message, Catch::Contains("OptionalGetElement 'x_OptionalGetElement'") && Catch::Contains("holds no value"));
  }
  SECTION("a value that is not an optional counts as one holding it (as in ONNX Runtime)") {
    ProtoGraph h("h");
    h.input("a", kFloat, {2}).node("OptionalHasElement", {"a"}, {"has"}).node("OptionalGetElement", {"a"}, {"x"});
    h.output("has").output("x");
    auto plain = run(load(h.proto(), 15), {{"a", floats({2}, {1, 2})}});
    CHECK(plain[0].tensor().data<uint8_t>()[0] == 1);
    CHECK(values(plain[1].tensor()) == std::vector<float>{1, 2});
  }
}

TEST_CASE("Loop, If and SequenceMap carry sequences and optionals", "[kernels][sequence]") {
  SECTION("a Loop appends to a loop-carried sequence") {
    // body(i, cond, seq) -> (cond, SequenceInsert(seq, x + i))
    ProtoGraph body("body");
    body.input("i", kInt64, {}).input("cond", kBool, {});
    body.node("Cast", {"i"}, {"fi"}, {onnxInt("to", kFloat)});
    body.node("Add", {"x", "fi"}, {"xi"});
    body.node("SequenceInsert", {"seq", "xi"}, {"seq_out"});
    body.node("Identity", {"cond"}, {"cond_out"});
    body.output("cond_out", kBool).output("seq_out");
    onnx::GraphProto bodyProto = body.proto();
    setSequenceType(bodyProto.add_input(), "seq", kFloat);
    onnx::AttributeProto bodyAttr;
    bodyAttr.set_name("body");
    bodyAttr.set_type(onnx::AttributeProto::GRAPH);
    *bodyAttr.mutable_g() = bodyProto;
    ProtoGraph g("g");
    g.input("x", kFloat, {2}).input("n", kInt64, {});
    g.node("SequenceEmpty", {}, {"empty"});
    g.node("Loop", {"n", "", "empty"}, {"all"}, {bodyAttr});
    g.node("ConcatFromSequence", {"all"}, {"joined"}, {onnxInt("axis", 0)});
    g.output("all").output("joined");
    auto out = run(load(g.proto()), {{"x", floats({2}, {10, 20})}, {"n", scalar64(3)}});
    CHECK(sequenceValues(out[0]) == std::vector<std::vector<float>>{{10, 20}, {11, 21}, {12, 22}});
    CHECK(values(out[1].tensor()) == std::vector<float>{10, 20, 11, 21, 12, 22});
  }
  SECTION("an If returns a sequence from one branch and an optional from the other") {
    ProtoGraph thenBranch("then");
    thenBranch.node("SequenceConstruct", {"x", "x"}, {"s"}).node("Optional", {"s"}, {"o"}).output("o");
    ProtoGraph elseBranch("else");
    onnx::AttributeProto type;
    type.set_name("type");
    type.set_type(onnx::AttributeProto::TYPE_PROTO);
    type.mutable_tp()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(kFloat);
    elseBranch.node("Optional", {}, {"o"}, {type}).output("o");
    ProtoGraph g("g");
    g.input("c", kBool, {}).input("x", kFloat, {2});
    g.node("If", {"c"}, {"r"}, {onnxGraph("then_branch", thenBranch), onnxGraph("else_branch", elseBranch)});
    g.node("OptionalHasElement", {"r"}, {"has"});
    g.output("r").output("has");
    ir::Model model = load(g.proto());
    auto yes = run(model, {{"c", ir::Tensor::fromVector(ir::DataType::kBool, {}, std::vector<uint8_t>{1})},
                           {"x", floats({2}, {1, 2})}});
    REQUIRE(yes[0].hasElement());
    CHECK(sequenceValues(yes[0].elements()[0]) == std::vector<std::vector<float>>{{1, 2}, {1, 2}});
    CHECK(yes[1].tensor().data<uint8_t>()[0] == 1);
    auto no = run(model, {{"c", ir::Tensor::fromVector(ir::DataType::kBool, {}, std::vector<uint8_t>{0})},
                          {"x", floats({2}, {1, 2})}});
    CHECK_FALSE(no[0].hasElement());
    CHECK(no[1].tensor().data<uint8_t>()[0] == 0);
  }
  SECTION("SequenceMap over a sequence and a tensor; sequences of different lengths are an error") {
    ProtoGraph body("body");
    body.input("e", kFloat, {-1}).input("t", kFloat, {-1});
    body.node("Mul", {"e", "t"}, {"m"}).output("m", kFloat);
    ProtoGraph g("g");
    g.input("a", kFloat, {2}).input("b", kFloat, {2});
    g.node("SequenceConstruct", {"a", "b"}, {"s"});
    g.node("SequenceMap", {"s", "b"}, {"r"}, {onnxGraph("body", body)});
    g.output("r");
    auto out = run(load(g.proto()), {{"a", floats({2}, {1, 2})}, {"b", floats({2}, {3, 4})}});
    CHECK(sequenceValues(out[0]) == std::vector<std::vector<float>>{{3, 8}, {9, 16}});

    ProtoGraph h("h");
    h.input("a", kFloat, {2}).input("b", kFloat, {2});
    h.node("SequenceConstruct", {"a", "b"}, {"s"}).node("SequenceConstruct", {"a"}, {"s1"});
    h.node("SequenceMap", {"s", "s1"}, {"r"}, {onnxGraph("body", body)});
    h.output("r");
    CHECK_THAT(runError(load(h.proto()), {{"a", floats({2}, {1, 2})}, {"b", floats({2}, {3, 4})}}),
               Catch::Contains("SequenceMap 'r_SequenceMap'") && Catch::Contains("input 1 is a sequence of 1 elements"));
  }
  SECTION("a Loop scan output must be a tensor") {
    ProtoGraph body("body");
    body.input("i", kInt64, {}).input("cond", kBool, {});
    body.node("Identity", {"cond"}, {"cond_out"}).node("SequenceConstruct", {"i"}, {"s"});
    body.output("cond_out", kBool).output("s");
    ProtoGraph g("g");
    g.input("n", kInt64, {});
    g.node("Loop", {"n", ""}, {"scan"}, {onnxGraph("body", body)}).output("scan");
    CHECK_THAT(runError(load(g.proto()), {{"n", scalar64(2)}}),
               Catch::Contains("Loop") && Catch::Contains("scan outputs must be tensors"));
  }
}

TEST_CASE("ZipMap writes one map per row, keyed by the class labels", "[kernels][sequence]") {
  auto model = [](const onnx::AttributeProto& labels) {
    ProtoGraph g("g");
    g.input("x", kFloat, {2, 3});
    g.node("ZipMap", {"x"}, {"maps"}, {labels});
    onnx::GraphProto proto = g.output("maps").proto();
    proto.mutable_node(0)->set_domain("ai.onnx.ml");
    return load(proto);
  };
  const ir::Tensor x = floats({2, 3}, {0.1f, 0.2f, 0.7f, 0.5f, 0.25f, 0.25f});
  SECTION("int64 labels") {
    auto out = run(model(onnxInts("classlabels_int64s", {4, 7, 9})), {{"x", x}});
    REQUIRE(out[0].kind() == ValueKind::kSequence);
    REQUIRE(out[0].elements().size() == 2);
    const Value& second = out[0].elements()[1];
    REQUIRE(second.kind() == ValueKind::kMap);
    CHECK(std::vector<int64_t>(second.mapKeys().values<int64_t>().begin(), second.mapKeys().values<int64_t>().end()) ==
          std::vector<int64_t>{4, 7, 9});
    CHECK(values(second.mapValues()) == std::vector<float>{0.5f, 0.25f, 0.25f});
  }
  SECTION("string labels") {
    onnx::AttributeProto labels;
    labels.set_name("classlabels_strings");
    labels.set_type(onnx::AttributeProto::STRINGS);
    for (const char* s : {"cat", "dog", "eel"}) labels.add_strings(s);
    auto out = run(model(labels), {{"x", x}});
    const Value& first = out[0].elements()[0];
    CHECK(first.mapKeys().stringValues() == std::vector<std::string>{"cat", "dog", "eel"});
    CHECK(values(first.mapValues()) == std::vector<float>{0.1f, 0.2f, 0.7f});
  }
  SECTION("a label count that does not match the columns is an error") {
    std::string message = runError(model(onnxInts("classlabels_int64s", {1, 2})), {{"x", x}});
    CHECK_THAT(message, Catch::Contains("ZipMap 'maps_ZipMap'") && Catch::Contains("3 columns but there are 2 class labels"));
  }
  SECTION("no labels is refused when the session is created") {
    CHECK_THAT(runError(model(onnxInt("unrelated", 1)), {{"x", x}}), Catch::Contains("exactly one of classlabels_int64s"));
  }
}

TEST_CASE("Sequence ops and ZipMap agree with ONNX Runtime", "[kernels][sequence][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for tests/kernels/cpu/sequence_ort_reference.py")) return;
  testing::TempDir dir;
  auto cases = testing::referenceCases("tests/kernels/cpu/sequence_ort_reference.py", dir.path());
  REQUIRE(cases.size() == 3);
  for (const auto& c : cases) {
    INFO("case " << c.name);
    std::vector<runtime::NamedValue> feeds;
    for (const auto& [key, tensor] : c.arrays) {
      if (key.rfind("in.", 0) == 0) feeds.emplace_back(key.substr(3), tensor);
    }
    auto out = run(c.model, feeds);
    auto array = [&](const std::string& key) -> const ir::Tensor& {
      INFO("array " << key);
      REQUIRE(c.arrays.count(key) == 1);
      return c.arrays.at(key);
    };
    // Sequence ops copy or share bytes: exact. ZipMap copies floats: exact.
    auto same = [](const ir::Tensor& want, const ir::Tensor& got) {
      CHECK(got.dtype() == want.dtype());
      CHECK(got.dims() == want.dims());
      CHECK(got.bitwiseEqual(want));
    };
    for (size_t k = 0; k < out.size(); ++k) {
      const std::string base = "out." + std::to_string(k);
      INFO("output " << k << ": " << out[k].describe());
      if (out[k].isTensor()) {
        same(array(base), out[k].tensor());
      } else if (c.arrays.count(base + ".keys") != 0) {
        const ir::Tensor& table = array(base + ".values");
        REQUIRE(out[k].elements().size() == static_cast<size_t>(table.dims()[0]));
        for (size_t r = 0; r < out[k].elements().size(); ++r) {
          const Value& map = out[k].elements()[r];
          same(array(base + ".keys"), map.mapKeys());
          const size_t columns = static_cast<size_t>(table.dims()[1]);
          auto row = table.values<float>().subspan(r * columns, columns);
          CHECK(std::vector<float>(row.begin(), row.end()) == values(map.mapValues()));
        }
      } else {
        REQUIRE(out[k].kind() == ValueKind::kSequence);
        REQUIRE(static_cast<int64_t>(out[k].elements().size()) == array(base + ".length").data<int64_t>()[0]);
        for (size_t i = 0; i < out[k].elements().size(); ++i) same(array(base + "." + std::to_string(i)), out[k].elements()[i].tensor());
      }
    }
  }
}
