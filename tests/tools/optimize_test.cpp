// Runs the built `whittle optimize` binary: levels, pipelines, recipes, statistics, the
// metadata it records, and how it treats the input and output files.

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/demo_model.h"
#include "support/graph_builder.h"
#include "support/onnx_builder.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "tune/tune_test_util.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/passes/registry.h"

namespace whittle {
namespace {

using testing::RunResult;
using testing::runWhittle;

std::string q(const std::string& s) {
  return "'" + s + "'";
}

// x -> Identity -> Conv -> BatchNormalization -> Relu -> y, saved to `path`.
void writeModel(const std::string& path) {
  testing::GraphBuilder b(191);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 6, 6});
  ir::Value* c = b.node("Conv", {b.node("Identity", {x}), b.weight("w", {4, 3, 3, 3})});
  ir::Value* bn = b.node("BatchNormalization", {c, b.weight("s", {4}), b.weight("bb", {4}), b.weight("m", {4}),
                                                b.weight("v", {4}, ir::DataType::kFloat, 0.5, 1.0)});
  b.output(b.node("Relu", {bn}), ir::DataType::kFloat, {1, 4, 4, 4});
  REQUIRE(onnx_io::save(b.build(13), path).isOk());
}

std::string metadata(const ir::Model& m, const std::string& key) {
  for (const auto& [k, v] : m.metadata) {
    if (k == key) return v;
  }
  return "";
}

}  // namespace

TEST_CASE("whittle optimize -O2 fuses, prints per-pass statistics and records metadata", "[optimize][tools]") {
  testing::TempDir tmp;
  writeModel(tmp.file("in.onnx"));
  std::string before = testing::readBytes(tmp.file("in.onnx"));
  RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) + " --verify-each");
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  CHECK(r.out.find("nodes removed") != std::string::npos);
  for (const auto& e : passes::pipelineForLevel(2)) CHECK(r.out.find(e.info->name) != std::string::npos);
  CHECK(testing::readBytes(tmp.file("in.onnx")) == before);  // the input is never touched
  auto out = onnx_io::load(tmp.file("out.onnx"));
  REQUIRE(out.isOk());
  CHECK(testing::opTypes(*out->graph) == std::vector<std::string>{"Conv", "Relu"});
  CHECK(metadata(*out, "whittle.pipeline") == passes::printPipeline(passes::pipelineForLevel(2)));
  CHECK_FALSE(metadata(*out, "whittle.version").empty());
  CHECK(tmp.list() == std::set<std::string>{"in.onnx", "out.onnx"});  // no temporary left behind
}

TEST_CASE("whittle optimize --json reports every pass", "[optimize][tools]") {
  testing::TempDir tmp;
  writeModel(tmp.file("in.onnx"));
  RunResult r = runWhittle(
      "optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) + " -O1 --passes 'fuse-conv-bn' --json",
      /*stderrToo=*/false);
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["schema"] == "whittle.optimize/1");
  CHECK(j["pipeline"] == passes::printPipeline(passes::pipelineForLevel(1)) + ",fuse-conv-bn");
  REQUIRE(j["passes"].size() == passes::pipelineForLevel(1).size() + 1);
  const auto& last = j["passes"].back();
  CHECK(last["pass"] == "fuse-conv-bn");
  CHECK(last["rewrites"] == 1);
  CHECK(last["nodes_before"].get<int>() - last["nodes_after"].get<int>() == 1);
  int64_t removed = 0;
  for (const auto& p : j["passes"]) removed += p["nodes_before"].get<int64_t>() - p["nodes_after"].get<int64_t>();
  CHECK(removed == 2);
}

TEST_CASE("whittle optimize -O0 writes the model unchanged, with the metadata", "[optimize][tools]") {
  testing::TempDir tmp;
  writeModel(tmp.file("in.onnx"));
  RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) + " -O0");
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  auto in = onnx_io::load(tmp.file("in.onnx"));
  auto out = onnx_io::load(tmp.file("out.onnx"));
  REQUIRE(in.isOk());
  REQUIRE(out.isOk());
  CHECK(testing::opTypes(*out->graph) == testing::opTypes(*in->graph));
  CHECK(metadata(*out, "whittle.pipeline").empty());
  CHECK_FALSE(metadata(*out, "whittle.version").empty());
}

TEST_CASE("whittle optimize --recipe reads a YAML recipe", "[optimize][tools]") {
  testing::TempDir tmp;
  writeModel(tmp.file("in.onnx"));
  testing::writeBytes(tmp.file("recipe.yaml"), "- pass: eliminate-identity\n- pass: fuse-conv-bn\n");
  RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) + " -O0 --recipe " +
                           q(tmp.file("recipe.yaml")));
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  auto out = onnx_io::load(tmp.file("out.onnx"));
  REQUIRE(out.isOk());
  CHECK(testing::opTypes(*out->graph) == std::vector<std::string>{"Conv", "Relu"});
  CHECK(metadata(*out, "whittle.pipeline") == "eliminate-identity,fuse-conv-bn");
}

TEST_CASE("whittle optimize refuses -o equal to the input unless --in-place", "[optimize][tools]") {
  testing::TempDir tmp;
  writeModel(tmp.file("in.onnx"));
  std::string before = testing::readBytes(tmp.file("in.onnx"));
  RunResult refused = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("in.onnx")));
  INFO(refused.out);
  CHECK(refused.exitCode != 0);
  CHECK(refused.out.find("--in-place") != std::string::npos);
  CHECK(testing::readBytes(tmp.file("in.onnx")) == before);
  // The same file under another spelling is refused too.
  RunResult other = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.path() + "/./in.onnx"));
  CHECK(other.exitCode != 0);
  CHECK(testing::readBytes(tmp.file("in.onnx")) == before);

  RunResult inPlace =
      runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("in.onnx")) + " --in-place");
  INFO(inPlace.out);
  REQUIRE(inPlace.exitCode == 0);
  auto out = onnx_io::load(tmp.file("in.onnx"));
  REQUIRE(out.isOk());
  CHECK(testing::opTypes(*out->graph) == std::vector<std::string>{"Conv", "Relu"});
  CHECK(tmp.list() == std::set<std::string>{"in.onnx"});
}

TEST_CASE("a failed optimize leaves no output file", "[optimize][tools]") {
  testing::TempDir tmp;
  writeModel(tmp.file("in.onnx"));
  SECTION("an unknown pass, with a suggestion") {
    RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) +
                             " --passes 'fuse-conv-bm'");
    INFO(r.out);
    CHECK(r.exitCode != 0);
    CHECK(r.out.find("did you mean 'fuse-conv-bn'") != std::string::npos);
  }
  SECTION("an unknown option") {
    RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) +
                             " --passes 'fold-constants{max-growth=3}'");
    INFO(r.out);
    CHECK(r.exitCode != 0);
    CHECK(r.out.find("did you mean 'max-growth-bytes'") != std::string::npos);
  }
  SECTION("a bad level") {
    RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) + " -O3");
    CHECK(r.exitCode != 0);
  }
  SECTION("an input that is not a model") {
    testing::writeBytes(tmp.file("in.onnx"), "not a model");
    RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")));
    CHECK(r.exitCode != 0);
  }
  CHECK_FALSE(std::filesystem::exists(tmp.file("out.onnx")));
  CHECK(tmp.list() == std::set<std::string>{"in.onnx"});
}

TEST_CASE("whittle optimize --list-passes lists every pass with its options", "[optimize][tools]") {
  RunResult r = runWhittle("optimize --list-passes");
  REQUIRE(r.exitCode == 0);
  for (const passes::PassInfo& p : passes::allPasses()) {
    CHECK(r.out.find(p.name) != std::string::npos);
    for (const auto& o : p.options) CHECK(r.out.find(o.name + "=" + o.defaultValue) != std::string::npos);
  }
}

TEST_CASE("whittle optimize --print-after dumps the graph", "[optimize][tools]") {
  testing::TempDir tmp;
  writeModel(tmp.file("in.onnx"));
  RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("out.onnx")) +
                           " --print-after fuse-conv-bn");
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  CHECK(r.out.find("after fuse-conv-bn") != std::string::npos);
}

TEST_CASE("optimize --report compares the written model with its input", "[tools][optimize][report]") {
  testing::TempDir dir;
  const std::string model = dir.file("m.onnx");
  writeModel(model);
  // A small .npy data set: 6 samples of the model's input.
  testing::GraphBuilder b(5);
  ir::Tensor samples = b.randomTensor(ir::DataType::kFloat, {6, 3, 6, 6});
  REQUIRE(data::writeNpy(samples, dir.file("x.npy")).isOk());

  SECTION("HTML and JSON, on --eval data") {
    RunResult r = runWhittle("optimize " + q(model) + " -o " + q(dir.file("o.onnx")) + " --eval " + q(dir.file("x.npy")) +
                             " --report " + q(dir.file("r.html")) + " --report-json " + q(dir.file("r.json")));
    INFO(r.out);
    REQUIRE(r.exitCode == 0);
    CHECK(r.out.find("report: ") != std::string::npos);
    CHECK(std::filesystem::exists(dir.file("r.html")));
    std::ifstream in(dir.file("r.json"));
    nlohmann::json j = nlohmann::json::parse(in);
    CHECK(j["dataset"]["samples"] == 6);
    // -O2 folds the BatchNormalization exactly: the outputs agree up to float rounding.
    REQUIRE(j["outputs"].size() == 1);
    const nlohmann::json& sqnr = j["outputs"][0]["sqnr_db"];
    CHECK((sqnr.is_string() ? sqnr == "inf" : sqnr.get<double>() > 100.0));
  }
  SECTION("no data to compare on: exit 2 before anything is written") {
    RunResult r = runWhittle("optimize " + q(model) + " -o " + q(dir.file("o.onnx")) + " --report " + q(dir.file("r.html")));
    CHECK(r.exitCode == 2);
    CHECK(r.out.find("--report needs data") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("o.onnx")));
    CHECK_FALSE(std::filesystem::exists(dir.file("r.html")));
  }
}

TEST_CASE("optimize --convert fp16, and --tolerance without --convert", "[tools][optimize]") {
  testing::TempDir dir;
  const std::string model = dir.file("m.onnx");
  writeModel(model);
  RunResult r = runWhittle("optimize " + q(model) + " -o " + q(dir.file("h.onnx")) + " --convert fp16");
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  auto half = onnx_io::load(dir.file("h.onnx"));
  REQUIRE(half.isOk());
  bool anyHalfWeight = false;
  for (const ir::Value* v : half->graph->initializers()) anyHalfWeight |= v->constant()->dtype() == ir::DataType::kFloat16;
  CHECK(anyHalfWeight);
  CHECK(half->graph->outputs()[0]->dtype() == ir::DataType::kFloat);  // keep-io-types
  CHECK(metadata(*half, "whittle.pipeline").find("convert-fp16") != std::string::npos);

  RunResult bad = runWhittle("optimize " + q(model) + " -o " + q(dir.file("t.onnx")) + " --tolerance 0.01");
  CHECK(bad.exitCode == 2);
  CHECK(bad.out.find("--tolerance applies to --convert") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("t.onnx")));
}


}  // namespace whittle

namespace whittle {

TEST_CASE("whittle optimize -O2 --quantize int8 and compare run a model with If, and say what stays float",
          "[optimize][tools][control-flow]") {
  // input -> Conv -> c; If(mean(c) > 0): Relu(c) else Sigmoid(c) -> Conv -> y. The branches read c.
  testing::TempDir tmp;
  testing::ProtoGraph thenBranch("then"), elseBranch("else");
  thenBranch.node("Relu", {"c"}, {"t"}).output("t");
  elseBranch.node("Sigmoid", {"c"}, {"e"}).output("e");
  testing::ProtoGraph main("main");
  main.input("input", onnx::TensorProto::FLOAT, {-1, 1, 8, 8});
  std::vector<float> w1(4 * 9), w2(2 * 4 * 9);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = 0.1f * static_cast<float>(static_cast<int>(i % 7) - 3);
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = 0.05f * static_cast<float>(static_cast<int>(i % 5) - 2);
  main.floats("w1", {4, 1, 3, 3}, w1).floats("w2", {2, 4, 3, 3}, w2).floats("zero", {}, {0});
  main.node("Conv", {"input", "w1"}, {"c"}, {testing::onnxInts("pads", {1, 1, 1, 1})});
  main.node("ReduceMean", {"c"}, {"m"}, {testing::onnxInt("keepdims", 0)}).node("Greater", {"m", "zero"}, {"cond"});
  main.node("If", {"cond"}, {"b"}, {testing::onnxGraph("then_branch", thenBranch), testing::onnxGraph("else_branch", elseBranch)},
            "branch");
  main.node("Conv", {"b", "w2"}, {"y"});
  main.output("y", onnx::TensorProto::FLOAT, {-1, 2, 6, 6}, true);
  {
    std::ofstream f(tmp.file("in.onnx"), std::ios::binary);
    f << testing::serializeProtoModel(main, 13);
  }
  RunResult r = runWhittle("optimize " + q(tmp.file("in.onnx")) + " -o " + q(tmp.file("q.onnx")) +
                           " -O2 --quantize int8 --calib " + q(testing::kDemoCalib));
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  // The branches hold a Relu and a Sigmoid, nothing quantize-int8 puts in int8 alone: they stay as they are.
  CHECK(r.out.find("left float: it did not run") == std::string::npos);
  auto out = onnx_io::load(tmp.file("q.onnx"));
  INFO(out.status().message());
  REQUIRE(out.isOk());
  auto ops = testing::opTypes(*out->graph);
  CHECK(std::count(ops.begin(), ops.end(), "If") == 1);
  CHECK(std::count(ops.begin(), ops.end(), "QuantizeLinear") > 0);

  RunResult c = runWhittle("compare " + q(tmp.file("in.onnx")) + " " + q(tmp.file("q.onnx")) + " --data " +
                           q(testing::kDemoCalib) + " --latency-runs 2 --warmup 1");
  INFO(c.out);
  CHECK(c.exitCode == 0);
  CHECK(c.out.find("verdict:") != std::string::npos);
}

namespace {

TEST_CASE("whittle optimize with an accuracy budget: exit codes, best model, trial log", "[tools][optimize][tune]") {
  testing::TempDir dir;
  std::string model = testing::writeHostileModel(dir);
  const std::string base = "optimize " + q(model) + " --quantize int8 --calib " + q(dir.file("calib.npy")) +
                           " --ranking-samples 48 --calib-threads 1 -o " + q(dir.file("out.onnx"));
  const std::string eval = " --eval " + q(dir.file("eval.npy"));

  SECTION("a reachable budget: exit 0, the hostile layer kept float") {
    RunResult r = runWhittle(base + eval + " --min-sqnr 15 --trial-log " + q(dir.file("t.json")));
    INFO(r.out);
    CHECK(r.exitCode == 0);
    CHECK_THAT(r.out, Catch::Contains("kept float: hostile"));
    nlohmann::json log = nlohmann::json::parse(std::ifstream(dir.file("t.json")));
    CHECK(log["met"] == true);
    CHECK(std::filesystem::exists(dir.file("out.onnx")));
  }
  SECTION("an unreachable budget: exit 3, one line with the shortfall, the best model written") {
    RunResult r = runWhittle(base + eval + " --min-sqnr 500 --time-budget 60s");
    INFO(r.out);
    CHECK(r.exitCode == 3);
    CHECK_THAT(r.out, Catch::Contains("budget not met: SQNR") && Catch::Contains("short by"));
    CHECK(std::filesystem::exists(dir.file("out.onnx")));
  }
  SECTION("bad input: one-line errors, exit 2") {
    RunResult noEval = runWhittle(base + " --min-sqnr 20");
    CHECK(noEval.exitCode == 2);
    CHECK_THAT(noEval.out, Catch::Contains("--min-sqnr needs evaluation data: --eval DATA"));
    RunResult noLabels = runWhittle(base + eval + " --max-accuracy-drop 0.5");
    CHECK(noLabels.exitCode == 2);
    CHECK_THAT(noLabels.out, Catch::Contains("--max-accuracy-drop needs labels"));
    RunResult fewLabels = runWhittle(base + eval + " --max-accuracy-drop 0.5 --labels " + q(dir.file("few_labels.txt")));
    CHECK(fewLabels.exitCode == 2);
    CHECK_THAT(fewLabels.out, Catch::Contains("10 labels"));
    RunResult badTime = runWhittle(base + eval + " --min-sqnr 20 --time-budget soon");
    CHECK(badTime.exitCode == 2);
    CHECK_THAT(badTime.out, Catch::Contains("--time-budget"));
    CHECK_FALSE(std::filesystem::exists(dir.file("out.onnx")));
  }
  SECTION("a score-F1 budget: --min-score-f1 with --scores") {
    RunResult r = runWhittle(base + eval + " --min-score-f1 99 --scores 'mm3:*:0' --trial-log " + q(dir.file("t.json")));
    INFO(r.out);
    CHECK(r.exitCode == 0);
    CHECK_THAT(r.out, Catch::Contains("score F1") && Catch::Contains("kept float: hostile"));
    nlohmann::json log = nlohmann::json::parse(std::ifstream(dir.file("t.json")));
    CHECK(log["budget"]["scores"] == "mm3:*:0");
  }
  SECTION("--scores repeated: one F1 over every spec; --channel-axis") {
    RunResult r = runWhittle(base + eval + " --min-score-f1 99 --scores mm3:axis=1:0-7:0 --scores mm3:8-15:0 " +
                             "--channel-axis mm3=-1 --trial-log " + q(dir.file("t.json")));
    INFO(r.out);
    CHECK(r.exitCode == 0);
    nlohmann::json log = nlohmann::json::parse(std::ifstream(dir.file("t.json")));
    CHECK(log["budget"]["scores"] == nlohmann::json::array({"mm3:axis=1:0-7:0", "mm3:8-15:0"}));
    CHECK(log["budget"]["channel_axes"] == nlohmann::json::array({"mm3=-1"}));
  }
  SECTION("bad --scores and --channel-axis: one line naming the spec, exit 2") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"--min-score-f1 99 --scores mm3:0.5", "--scores 'mm3:0.5': expected OUTPUT[:axis=A]:CHANNELS:THRESHOLD"},
        {"--scores mm3:*:0", "--scores names what --min-score-f1 PCT checks"},
        {"--min-score-f1 99 --scores mm3:axis=2:*:0", "--scores mm3:axis=2:*:0: output 'mm3' has rank 2, no axis 2"},
        {"--min-sqnr 20 --channel-axis channels", "--channel-axis 'channels': expected AXIS, auto, OUTPUT=AXIS"},
        {"--min-sqnr 20 --channel-axis mm3=2", "--channel-axis mm3=2: output 'mm3' has rank 2"},
        {"--min-sqnr 20 --channel-axis heat=1", "--channel-axis heat=1: the model has no output 'heat'"},
    };
    for (const auto& [flags, message] : cases) {
      RunResult bad = runWhittle(base + eval + " " + flags);
      INFO(flags << "\n" << bad.out);
      CHECK(bad.exitCode == 2);
      CHECK_THAT(bad.out, Catch::Contains(message));
    }
  }
  SECTION("--sensitivity-only ranks and writes no model") {
    RunResult r = runWhittle(base + eval + " --sensitivity-only");
    INFO(r.out);
    CHECK(r.exitCode == 0);
    CHECK_THAT(r.out, Catch::Contains("    1  hostile"));
    CHECK_FALSE(std::filesystem::exists(dir.file("out.onnx")));
  }
}

TEST_CASE("optimize --carry-state calibrates a stateful model as one stream", "[tools][optimize][calibration]") {
  testing::TempDir tmp;
  // stateN = (0.5 * state + x) W: s, the MatMul's input, grows over consecutive samples.
  testing::GraphBuilder b(23);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4});
  ir::Value* state = b.input("state", ir::DataType::kFloat, {1, 4});
  ir::Value* decay = b.node("Mul", {state, b.constant("half", {1}, {0.5f})}, {}, "decay");
  ir::Value* sum = b.node("Add", {decay, x}, {}, "s");
  b.output(b.node("MatMul", {sum, b.weight("w", {4, 4}, ir::DataType::kFloat, 0.1, 0.2)}, {}, "stateN"),
           ir::DataType::kFloat, {1, 4});
  REQUIRE(onnx_io::save(b.build(13), tmp.file("acc.onnx")).isOk());
  REQUIRE(data::writeNpy(ir::Tensor::fromVector<float>(ir::DataType::kFloat, {8, 1, 4}, std::vector<float>(32, 1.0f)),
                         tmp.file("x.npy"))
              .isOk());
  auto stateMax = [&](const std::string& extra) {
    RunResult r = runWhittle("optimize " + q(tmp.file("acc.onnx")) + " -o " + q(tmp.file("acc.int8.onnx")) +
                             " -O0 --quantize int8 --calib " + q(tmp.file("x.npy")) + " --fixed-input state=0 --save-calib " +
                             q(tmp.file("t.json")) + extra);
    INFO(r.out);
    REQUIRE(r.exitCode == 0);
    auto table = nlohmann::json::parse(testing::readBytes(tmp.file("t.json")));
    return table["tensors"]["s"]["max"].get<double>();
  };
  CHECK(stateMax("") == 1.0);  // every sample from state 0: s = x
  CHECK(stateMax(" --carry-state stateN=state") > 1.1);
  RunResult bad = runWhittle("optimize " + q(tmp.file("acc.onnx")) + " -o " + q(tmp.file("bad.onnx")) +
                             " --quantize int8 --calib " + q(tmp.file("x.npy")) +
                             " --fixed-input state=0 --carry-state stateN=nope");
  CHECK(bad.exitCode == 2);
  CHECK_THAT(bad.out, Catch::Contains("--carry-state stateN=nope: the model has no input named 'nope'"));
  CHECK_FALSE(std::filesystem::exists(tmp.file("bad.onnx")));
  RunResult noCalib = runWhittle("optimize " + q(tmp.file("acc.onnx")) + " -o " + q(tmp.file("bad.onnx")) +
                                 " --carry-state stateN=state");
  CHECK(noCalib.exitCode == 2);
  CHECK_THAT(noCalib.out, Catch::Contains("--carry-state needs --calib"));
}

TEST_CASE("optimize refuses a Concat or Gather of scalars among constants (fuzz regressions)", "[tools][optimize]") {
  // Found by fuzz_optimize: fold-constants ran Concat on two rank-0 constants, and Gather on a
  // rank-0 data input, and the kernels indexed the empty shape (the release build crashed).
  const std::pair<const char*, const char*> cases[] = {
      {"optimize_concat_of_scalars.onnx", "Concat #5: input 0 is a scalar (rank 0): Concat joins tensors of rank >= 1"},
      {"optimize_gather_of_scalar.onnx", "Gather 'sh': data is a scalar (rank 0): it has no axis 0"}};
  for (const auto& [file, message] : cases) {
    testing::TempDir tmp;
    const std::string model = std::string(WHITTLE_SOURCE_DIR) + "/tests/fuzz_regressions/" + file;
    RunResult r = runWhittle("optimize " + q(model) + " -o " + q(tmp.file("out.onnx")));
    INFO(r.out);
    CHECK(r.exitCode == 2);  // the model is invalid (ONNX's Concat and Gather take rank >= 1): a one-line error
    CHECK_THAT(r.out, Catch::Contains(message));
    CHECK_FALSE(std::filesystem::exists(tmp.file("out.onnx")));
  }
}

TEST_CASE("optimize survives a Transpose pair whose values the loader left unnamed (fuzz regression)", "[tools][optimize]") {
  // Found by fuzz_optimize (session 9, after 409,792 executions): cancel-transposes asked
  // canForward about a value that was not there (a null Value) and the release build crashed.
  testing::TempDir tmp;
  const std::string model =
      std::string(WHITTLE_SOURCE_DIR) + "/tests/fuzz_regressions/optimize_transpose_pair_without_output.onnx";
  RunResult r = runWhittle("optimize " + q(model) + " -o " + q(tmp.file("out.onnx")));
  INFO(r.out);
  CHECK(r.exitCode == 0);
  CHECK(std::filesystem::exists(tmp.file("out.onnx")));
}

}  // namespace
}  // namespace whittle
