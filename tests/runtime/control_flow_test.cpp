// Control flow in the CPU runtime (src/runtime/control_flow.cpp): If, Loop, Scan run their
// subgraphs as plans compiled once, with the values the subgraphs capture from outer scopes.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/onnx_builder.h"
#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/runtime/session.h"

using namespace whittle;
using testing::onnxGraph;
using testing::onnxInt;
using testing::onnxInts;
using testing::ProtoGraph;

namespace {

constexpr int kFloat = onnx::TensorProto::FLOAT;
constexpr int kBool = onnx::TensorProto::BOOL;
constexpr int kInt64 = onnx::TensorProto::INT64;

ir::Tensor floats(std::vector<int64_t> dims, const std::vector<float>& v) {
  return ir::Tensor::fromVector(ir::DataType::kFloat, std::move(dims), v);
}
ir::Tensor boolean(bool b, std::vector<int64_t> dims = {}) {
  return ir::Tensor::fromVector(ir::DataType::kBool, std::move(dims), std::vector<uint8_t>{static_cast<uint8_t>(b)});
}
ir::Tensor int64s(std::vector<int64_t> dims, const std::vector<int64_t>& v) {
  return ir::Tensor::fromVector(ir::DataType::kInt64, std::move(dims), v);
}
std::vector<float> values(const ir::Tensor& t) {
  REQUIRE(t.dtype() == ir::DataType::kFloat);
  auto s = t.values<float>();
  return {s.begin(), s.end()};
}

std::unique_ptr<runtime::Session> compile(const ir::Model& model) {
  auto session = runtime::Session::create(model);
  INFO(session.status().message());
  REQUIRE(session.isOk());
  return std::move(session).value();
}

std::vector<runtime::NamedTensor> run(runtime::Session& session, const std::vector<runtime::NamedTensor>& feeds) {
  auto out = session.run(feeds);
  INFO(out.status().message());
  REQUIRE(out.isOk());
  return std::move(out).value();
}

// z = If(c): then x + w (outer input, outer initializer), else x * k - w (k: the branch's own).
ir::Model ifModel(std::vector<int64_t> conditionDims = {}) {
  ProtoGraph thenBranch("then");
  thenBranch.node("Add", {"x", "w"}, {"t"}).output("t", kFloat);
  ProtoGraph elseBranch("else");
  elseBranch.floats("k", {2}, {10, 100}).node("Mul", {"x", "k"}, {"e0"}).node("Sub", {"e0", "w"}, {"e"}).output("e", kFloat);
  ProtoGraph main("main");
  main.input("c", kBool, conditionDims).input("x", kFloat, {2}).floats("w", {2}, {1, 2});
  main.node("If", {"c"}, {"z"}, {onnxGraph("then_branch", thenBranch), onnxGraph("else_branch", elseBranch)}, "choose");
  main.output("z", kFloat, {2}, true);
  return testing::loadProtoModel(main, 13);
}

}  // namespace

TEST_CASE("If runs the branch the condition picks, with outer values and initializers", "[runtime][control-flow]") {
  ir::Model model = ifModel();
  REQUIRE(model.graph->nodes().front()->implicitInputs().size() == 2);  // x and w
  auto session = compile(model);
  auto yes = run(*session, {{"c", boolean(true)}, {"x", floats({2}, {3, 4})}});
  CHECK(values(yes[0].second) == std::vector<float>{4, 6});
  auto no = run(*session, {{"c", boolean(false)}, {"x", floats({2}, {3, 4})}});
  CHECK(values(no[0].second) == std::vector<float>{29, 398});
  // A condition of shape [1] is one element too.
  auto single = compile(ifModel({1}));
  auto one = run(*single, {{"c", boolean(true, {1})}, {"x", floats({2}, {0, 0})}});
  CHECK(values(one[0].second) == std::vector<float>{1, 2});
}

TEST_CASE("If with a condition that is not one bool element fails naming the node", "[runtime][control-flow]") {
  ProtoGraph thenBranch("then"), elseBranch("else");
  thenBranch.node("Identity", {"x"}, {"t"}).output("t");
  elseBranch.node("Neg", {"x"}, {"e"}).output("e");
  ProtoGraph main("main");
  main.input("c", kBool, {2}).input("x", kFloat, {2});
  main.node("If", {"c"}, {"z"}, {onnxGraph("then_branch", thenBranch), onnxGraph("else_branch", elseBranch)}, "pick");
  main.output("z");
  auto session = compile(testing::loadProtoModel(main, 13));
  std::vector<uint8_t> two{1, 0};
  auto out = session->run({{"c", ir::Tensor::fromVector(ir::DataType::kBool, {2}, two)}, {"x", floats({2}, {1, 2})}});
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().message() == "If 'pick': the condition must be a single bool element, got bool [2]");
}

TEST_CASE("If branches with a different output count than the node fail at compile time", "[runtime][control-flow]") {
  ProtoGraph thenBranch("then"), elseBranch("else");
  thenBranch.node("Identity", {"x"}, {"t"}).output("t");
  elseBranch.node("Neg", {"x"}, {"e"}).node("Abs", {"x"}, {"f"}).output("e").output("f");
  ProtoGraph main("main");
  main.input("c", kBool, {}).input("x", kFloat, {2});
  main.node("If", {"c"}, {"z"}, {onnxGraph("then_branch", thenBranch), onnxGraph("else_branch", elseBranch)}, "pick");
  main.output("z");
  auto session = runtime::Session::create(testing::loadProtoModel(main, 13));
  REQUIRE_FALSE(session.isOk());
  CHECK(session.status().message() == "If 'pick': else_branch has 2 outputs, expected 1 (one per node output)");
}

namespace {

// Loop(M, cond, acc) with body: acc' = acc + x (x captured), scan output acc'; the body's
// condition is (i + 1 < limit) when `limit` >= 0, else the incoming condition.
ir::Model loopModel(bool tripCount, bool condition, int64_t limit) {
  ProtoGraph body("body");
  body.input("i", kInt64, {}).input("cond_in", kBool, {}).input("acc", kFloat, {2});
  body.node("Add", {"acc", "x"}, {"acc_out"}).node("Identity", {"acc_out"}, {"scan"});
  if (limit >= 0) {
    body.int64s("one", {}, {1}).int64s("limit", {}, {limit});
    body.node("Add", {"i", "one"}, {"next"}).node("Less", {"next", "limit"}, {"cond_out"});
  } else {
    body.node("Identity", {"cond_in"}, {"cond_out"});
  }
  body.output("cond_out", kBool).output("acc_out", kFloat).output("scan", kFloat);
  ProtoGraph main("main");
  main.input("x", kFloat, {2}).floats("acc0", {2}, {0, 0});
  if (tripCount) main.input("M", kInt64, {});
  if (condition) main.input("c", kBool, {});
  main.node("Loop", {tripCount ? "M" : "", condition ? "c" : "", "acc0"}, {"acc_final", "scans"},
            {onnxGraph("body", body)}, "loop");
  main.output("acc_final").output("scans");
  return testing::loadProtoModel(main, 13);
}

}  // namespace

TEST_CASE("Loop with a trip count, a condition, or both", "[runtime][control-flow]") {
  const ir::Tensor x = floats({2}, {1, 10});
  SECTION("trip count only: the body's condition is ignored") {
    auto session = compile(loopModel(true, false, 1));
    auto out = run(*session, {{"x", x}, {"M", int64s({}, {3})}});
    CHECK(values(out[0].second) == std::vector<float>{3, 30});
    CHECK(out[1].second.dims() == std::vector<int64_t>{3, 2});
    CHECK(values(out[1].second) == std::vector<float>{1, 10, 2, 20, 3, 30});
  }
  SECTION("condition only: runs until the body says stop") {
    auto session = compile(loopModel(false, true, 4));
    auto out = run(*session, {{"x", x}, {"c", boolean(true)}});
    CHECK(values(out[0].second) == std::vector<float>{4, 40});
    CHECK(out[1].second.dims() == std::vector<int64_t>{4, 2});
    auto none = run(*session, {{"x", x}, {"c", boolean(false)}});
    CHECK(values(none[0].second) == std::vector<float>{0, 0});
    CHECK(none[1].second.dims() == std::vector<int64_t>{0, 2});
  }
  SECTION("both: whichever ends first") {
    auto session = compile(loopModel(true, true, 5));
    CHECK(values(run(*session, {{"x", x}, {"M", int64s({}, {2})}, {"c", boolean(true)}})[0].second) ==
          std::vector<float>{2, 20});
    CHECK(values(run(*session, {{"x", x}, {"M", int64s({}, {9})}, {"c", boolean(true)}})[0].second) ==
          std::vector<float>{5, 50});
  }
}

TEST_CASE("Loop-carried values may change shape from one iteration to the next", "[runtime][control-flow]") {
  ProtoGraph body("body");
  body.input("i", kInt64, {}).input("cond_in", kBool, {}).input("v", kFloat, {-1}, true);
  body.node("Concat", {"v", "x"}, {"v_out"}, {onnxInt("axis", 0)}).node("Identity", {"cond_in"}, {"cond_out"});
  body.output("cond_out", kBool).output("v_out", kFloat);
  ProtoGraph main("main");
  main.input("M", kInt64, {}).input("x", kFloat, {2}).floats("v0", {1}, {7});
  main.node("Loop", {"M", "", "v0"}, {"v_final"}, {onnxGraph("body", body)}, "grow");
  main.output("v_final");
  auto session = compile(testing::loadProtoModel(main, 13));
  auto out = run(*session, {{"M", int64s({}, {3})}, {"x", floats({2}, {1, 2})}});
  CHECK(out[0].second.dims() == std::vector<int64_t>{7});
  CHECK(values(out[0].second) == std::vector<float>{7, 1, 2, 1, 2, 1, 2});
}

TEST_CASE("If nested in a Loop reads values from both enclosing scopes", "[runtime][control-flow]") {
  // body: i < 2 ? acc + x : acc * y, where x and y come from the main graph and `two` from the body.
  ProtoGraph thenBranch("then"), elseBranch("else");
  thenBranch.node("Add", {"acc", "x"}, {"t"}).output("t");
  elseBranch.node("Mul", {"acc", "y"}, {"e"}).output("e");
  ProtoGraph body("body");
  body.input("i", kInt64, {}).input("cond_in", kBool, {}).input("acc", kFloat, {2});
  body.int64s("two", {}, {2}).node("Less", {"i", "two"}, {"early"});
  body.node("If", {"early"}, {"acc_out"}, {onnxGraph("then_branch", thenBranch), onnxGraph("else_branch", elseBranch)},
            "inner");
  body.node("Identity", {"cond_in"}, {"cond_out"});
  body.output("cond_out", kBool).output("acc_out", kFloat);
  ProtoGraph main("main");
  main.input("M", kInt64, {}).input("x", kFloat, {2}).input("y", kFloat, {2}).floats("acc0", {2}, {0, 0});
  main.node("Loop", {"M", "", "acc0"}, {"acc_final"}, {onnxGraph("body", body)}, "outer");
  main.output("acc_final");
  ir::Model model = testing::loadProtoModel(main, 13);
  // The Loop captures x and y for its nested If, not the body's own `two`.
  std::vector<std::string> captured;
  for (const ir::Value* v : model.graph->nodes().front()->implicitInputs()) captured.push_back(v->name());
  CHECK(captured == std::vector<std::string>{"x", "y"});
  auto session = compile(model);
  auto out = run(*session, {{"M", int64s({}, {4})}, {"x", floats({2}, {1, 2})}, {"y", floats({2}, {3, -1})}});
  // (0+1+1)*3*3 = 18, (0+2+2)*(-1)*(-1) = 4
  CHECK(values(out[0].second) == std::vector<float>{18, 4});
}

TEST_CASE("Loop body with the wrong number of outputs fails at compile time naming the node", "[runtime][control-flow]") {
  ProtoGraph body("body");
  body.input("i", kInt64, {}).input("cond_in", kBool, {}).input("acc", kFloat, {2});
  body.node("Identity", {"cond_in"}, {"cond_out"});
  body.output("cond_out", kBool);
  ProtoGraph main("main");
  main.input("M", kInt64, {}).floats("acc0", {2}, {0, 0});
  main.node("Loop", {"M", "", "acc0"}, {"acc_final"}, {onnxGraph("body", body)}, "bad");
  main.output("acc_final");
  auto session = runtime::Session::create(testing::loadProtoModel(main, 13));
  REQUIRE_FALSE(session.isOk());
  CHECK(session.status().message() ==
        "Loop 'bad': body has 1 outputs, expected 2 (the iteration number, the condition and 1 loop-carried values in; "
        "the condition and the node's 1 outputs out)");
}

TEST_CASE("Loop without a trip count or a condition is refused when run", "[runtime][control-flow]") {
  ProtoGraph body("body");
  body.input("i", kInt64, {}).input("cond_in", kBool, {}).input("acc", kFloat, {2});
  body.node("Identity", {"cond_in"}, {"cond_out"}).node("Identity", {"acc"}, {"acc_out"});
  body.output("cond_out", kBool).output("acc_out");
  ProtoGraph main("main");
  main.input("a", kFloat, {2});
  main.node("Loop", {"", "", "a"}, {"acc_final"}, {onnxGraph("body", body)}, "forever");
  main.output("acc_final");
  auto session = compile(testing::loadProtoModel(main, 13));
  auto out = session->run({{"a", floats({2}, {1, 2})}});
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().message() == "Loop 'forever': neither a trip count nor a condition is given: the loop would never end");
}

namespace {

// Scan-9+: a running sum along `inputAxis` of x [2, 3] (direction `inputReverse`), the sums
// stacked along `outputAxis` (reversed when `outputReverse`), and the final state.
ir::Model scanModel(int64_t inputAxis, bool inputReverse, int64_t outputAxis, bool outputReverse) {
  ProtoGraph body("body");
  body.input("s", kFloat, {-1}, true).input("slice", kFloat, {-1}, true);
  body.node("Add", {"s", "slice"}, {"s_out"}).node("Mul", {"s_out", "scale"}, {"y"});
  body.output("s_out", kFloat).output("y", kFloat);
  ProtoGraph main("main");
  main.input("s0", kFloat, {-1}, true).input("x", kFloat, {2, 3}).floats("scale", {}, {2});
  main.node("Scan", {"s0", "x"}, {"s_final", "ys"},
            {onnxGraph("body", body), onnxInt("num_scan_inputs", 1), onnxInts("scan_input_axes", {inputAxis}),
             onnxInts("scan_input_directions", {inputReverse ? 1 : 0}), onnxInts("scan_output_axes", {outputAxis}),
             onnxInts("scan_output_directions", {outputReverse ? 1 : 0})},
            "scan");
  main.output("s_final").output("ys");
  return testing::loadProtoModel(main, 16);
}

}  // namespace

TEST_CASE("Scan forward and reverse, along axes", "[runtime][control-flow]") {
  const ir::Tensor x = floats({2, 3}, {1, 2, 3, 4, 5, 6});
  SECTION("forward along axis 0, stacked along axis 0") {
    auto session = compile(scanModel(0, false, 0, false));
    auto out = run(*session, {{"s0", floats({3}, {0, 0, 0})}, {"x", x}});
    CHECK(values(out[0].second) == std::vector<float>{5, 7, 9});
    CHECK(out[1].second.dims() == std::vector<int64_t>{2, 3});
    CHECK(values(out[1].second) == std::vector<float>{2, 4, 6, 10, 14, 18});
  }
  SECTION("reverse along axis 1, stacked along axis -1") {
    // Slices are columns [3,6], [2,5], [1,4]; the running sums [3,6], [5,11], [6,15], doubled.
    auto session = compile(scanModel(1, true, -1, false));
    auto out = run(*session, {{"s0", floats({2}, {0, 0})}, {"x", x}});
    CHECK(values(out[0].second) == std::vector<float>{6, 15});
    CHECK(out[1].second.dims() == std::vector<int64_t>{2, 3});
    CHECK(values(out[1].second) == std::vector<float>{6, 10, 12, 12, 22, 30});
  }
  SECTION("forward along axis -1, stacked in reverse along axis 1") {
    auto session = compile(scanModel(-1, false, 1, true));
    auto out = run(*session, {{"s0", floats({2}, {0, 0})}, {"x", x}});
    CHECK(values(out[0].second) == std::vector<float>{6, 15});
    CHECK(values(out[1].second) == std::vector<float>{12, 6, 2, 30, 18, 8});
  }
}

TEST_CASE("Scan with an axis out of range fails naming the node", "[runtime][control-flow]") {
  auto session = compile(scanModel(2, false, 0, false));
  auto out = session->run({{"s0", floats({3}, {0, 0, 0})}, {"x", floats({2, 3}, {1, 2, 3, 4, 5, 6})}});
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().message() == "Scan 'scan': scan_input_axes[0] = 2 is out of range for scan input 0 float32 [2,3]");
}

TEST_CASE("Control-flow models built with onnx.helper agree with ONNX Runtime", "[runtime][control-flow][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference (control_flow_ort.py)")) return;
  namespace fs = std::filesystem;
  testing::TempDir tmp;
  std::string out;
  std::string cmd = testing::python() + " " +
                    testing::shellQuote(std::string(WHITTLE_SOURCE_DIR) + "/tests/runtime/control_flow_ort.py") + " " +
                    testing::shellQuote(tmp.path());
  INFO(out);
  REQUIRE(testing::shell(cmd, &out) == 0);
  int compared = 0;
  for (const std::string name : {"if_outer", "loop_nested_if", "scan_axes", "if_nested_lstm", "loop_carried_weights"}) {
    fs::path folder = fs::path(tmp.path()) / name;
    auto model = onnx_io::load((folder / "model.onnx").string());
    INFO(name << ": " << model.status().message());
    REQUIRE(model.isOk());
    auto session = compile(*model);
    for (int set = 0; fs::exists(folder / ("set_" + std::to_string(set))); ++set) {
      fs::path dir = folder / ("set_" + std::to_string(set));
      std::vector<runtime::NamedTensor> feeds;
      for (int k = 0; fs::exists(dir / ("input_" + std::to_string(k) + ".npy")); ++k) {
        std::ifstream nameFile(dir / ("input_" + std::to_string(k) + ".name"));
        std::string inputName((std::istreambuf_iterator<char>(nameFile)), std::istreambuf_iterator<char>());
        auto t = data::readNpy((dir / ("input_" + std::to_string(k) + ".npy")).string());
        REQUIRE(t.isOk());
        feeds.emplace_back(inputName, std::move(t).value());
      }
      auto outputs = run(*session, feeds);
      for (size_t k = 0; k < outputs.size(); ++k) {
        auto ref = data::readNpy((dir / ("output_" + std::to_string(k) + ".npy")).string());
        REQUIRE(ref.isOk());
        const ir::Tensor& got = outputs[k].second;
        INFO(name << " set " << set << " output " << outputs[k].first);
        REQUIRE(got.dtype() == ref->dtype());
        REQUIRE(got.dims() == ref->dims());
        for (int64_t i = 0; i < got.numel(); ++i) {
          double a = got.valueAsDouble(i), b = ref->valueAsDouble(i);
          INFO("element " << i << ": " << a << " vs " << b);
          REQUIRE(std::fabs(a - b) <= 1e-5 * std::fabs(b) + 1e-7);  // 1e-5 relative
        }
        ++compared;
      }
    }
  }
  // if_outer: 2 sets of 1 output; loop: 3 sets of 3; scan: 1 set of 3; if_nested_lstm: 3 sets of 2;
  // loop_carried_weights: 2 sets of 5
  CHECK(compared == 2 + 9 + 3 + 6 + 10);
}

TEST_CASE("The profile lists the nodes of If branches under their scope, each millisecond once", "[runtime][control-flow]") {
  runtime::SessionOptions options;
  options.profile = true;
  auto created = runtime::Session::create(ifModel(), options);
  REQUIRE(created.isOk());
  runtime::Session& session = **created;
  for (bool c : {true, true, false}) run(session, {{"c", boolean(c)}, {"x", floats({2}, {3, 4})}});
  std::vector<std::string> rows;
  double topTotal = 0, selfTotal = 0;
  for (const runtime::NodeProfile& p : session.profile()) {
    rows.push_back((p.scope.empty() ? "" : p.scope + ": ") + p.opType + " x" + std::to_string(p.runs));
    if (p.scope.empty()) topTotal += p.totalMs;
    selfTotal += p.selfMs;
    CHECK(p.selfMs <= p.totalMs);
    CHECK(p.selfMs >= 0);
  }
  CHECK(rows == std::vector<std::string>{"If x3", "choose/then_branch: Add x2", "choose/else_branch: Mul x1",
                                         "choose/else_branch: Sub x1"});
  CHECK(selfTotal == Approx(topTotal).epsilon(1e-9));
}

TEST_CASE("A branch takes the enclosing graph's constants as its own and folds what it computes from them",
          "[runtime][control-flow]") {
  // then: x + Slice(w, [1], [3]) with w a Constant node of the main graph, which also reads it;
  // the Slice runs once, when the session is made, not in every run of the branch.
  ProtoGraph thenBranch("then"), elseBranch("else");
  thenBranch.int64s("s", {1}, {1}).int64s("e", {1}, {3});
  thenBranch.node("Slice", {"w", "s", "e"}, {"ws"}).node("Add", {"x", "ws"}, {"t"}).output("t", kFloat);
  elseBranch.node("Neg", {"x"}, {"n"}).output("n", kFloat);
  onnx::AttributeProto value;
  value.set_name("value");
  value.set_type(onnx::AttributeProto::TENSOR);
  value.mutable_t()->set_data_type(kFloat);
  value.mutable_t()->add_dims(4);
  for (float f : {1.f, 2.f, 3.f, 4.f}) value.mutable_t()->add_float_data(f);
  ProtoGraph main("main");
  main.input("c", kBool, {}).input("x", kFloat, {2});
  main.node("Constant", {}, {"w"}, {value}, "weights");
  main.node("If", {"c"}, {"z"}, {onnxGraph("then_branch", thenBranch), onnxGraph("else_branch", elseBranch)}, "pick");
  main.node("ReduceSum", {"w"}, {"total"}, {onnxInt("keepdims", 0)});
  main.output("z", kFloat, {2}).output("total", kFloat, {});
  runtime::SessionOptions options;
  options.profile = true;
  auto created = runtime::Session::create(testing::loadProtoModel(main, 13), options);
  INFO(created.status().message());
  REQUIRE(created.isOk());
  runtime::Session& session = **created;
  auto yes = run(session, {{"c", boolean(true)}, {"x", floats({2}, {10, 20})}});
  CHECK(values(yes[0].second) == std::vector<float>{12, 23});
  CHECK(values(yes[1].second) == std::vector<float>{10});
  auto no = run(session, {{"c", boolean(false)}, {"x", floats({2}, {10, 20})}});
  CHECK(values(no[0].second) == std::vector<float>{-10, -20});
  std::vector<std::string> thenOps;
  for (const runtime::NodeProfile& p : session.profile()) {
    if (p.scope == "pick/then_branch") thenOps.push_back(p.opType);
  }
  CHECK(thenOps == std::vector<std::string>{"Add"});
}
