// End-to-end tests of `whittle compare`: they run the built binary and check exit codes,
// stderr and the report files.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "support/compare_models.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace whittle {
namespace {

using testing::TempDir;

struct Result {
  int code;
  std::string output;  // stdout and stderr together
  std::string err;     // stderr alone
};

Result whittle(const std::string& args, const TempDir& dir) {
  Result r;
  std::string errFile = dir.file("stderr.txt");
  // A subshell, so that the helper's own 2>&1 does not take stderr back from the file.
  r.code = testing::shell("(" + std::string(WHITTLE_BINARY) + " " + args + " 2>" + errFile + ")", &r.output);
  r.err = testing::readBytes(errFile);
  r.output += r.err;
  return r;
}

// Exit 2 and one line "whittle: error: ..." containing `needle` on stderr.
void expectBadInput(const Result& r, const std::string& needle) {
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.err.rfind("whittle: error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(needle) != std::string::npos);
}

struct Fixture {
  TempDir dir;
  testing::Files data;
  std::string original, same, damaged;
  Fixture() {
    data = testing::writeData(dir);
    original = testing::save(testing::mlp(), dir, "original.onnx");
    same = testing::save(testing::mlp(), dir, "same.onnx");
    ir::Model d = testing::mlp();
    testing::perturb(d, "w2");
    damaged = testing::save(d, dir, "damaged.onnx");
  }
  std::string args(const std::string& optimized, const std::string& extra) const {
    return "compare " + original + " " + optimized + " --data " + data.data + " --labels " + data.labels +
           " --latency-runs 3 --warmup 1 " + extra;
  }
};

TEST_CASE("whittle compare: --help documents the gates and exit codes", "[tools][compare]") {
  TempDir dir;
  Result r = whittle("compare --help", dir);
  CHECK(r.code == 0);
  for (const char* s : {"--max-accuracy-drop", "--min-agreement", "--min-sqnr", "--min-channel-sqnr", "--channel-axis",
                        "--min-speedup", "--max-size-ratio",
                        "--report", "--json", "--markdown", "--junit", "--per-layer", "--preprocess", "3 a gate failed",
                        "2 bad input", "1 internal error"}) {
    INFO(s);
    CHECK(r.output.find(s) != std::string::npos);
  }
}

TEST_CASE("whittle compare: identical models pass every gate and write every report", "[tools][compare]") {
  Fixture f;
  std::string out = f.dir.file("r");
  Result r =
      whittle(f.args(f.same,
                     "--per-layer --max-accuracy-drop 0 --min-agreement 100 --min-sqnr 100 "
                     "--max-size-ratio 1 --min-speedup 0.01 --report " +
                         out + ".html --json " + out + ".json --markdown " + out + ".md --junit " + out + ".xml"),
              f.dir);
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(r.err.empty());  // no progress bar when stderr is not a terminal
  CHECK(r.output.find("verdict: PASS") != std::string::npos);
  auto j = nlohmann::json::parse(testing::readBytes(out + ".json"));
  CHECK(j["verdict"] == "PASS");
  CHECK(j["outputs"][0]["sqnr_db"] == "inf");
  CHECK(j["outputs"][0]["agreement_pct"] == 100.0);
  CHECK(j["gates"].size() == 5);
  CHECK(testing::readBytes(out + ".html").find("class=\"verdict pass\"") != std::string::npos);
  CHECK(testing::readBytes(out + ".md").find("PASS") != std::string::npos);
  CHECK(testing::readBytes(out + ".xml").find("failures=\"0\"") != std::string::npos);
}

TEST_CASE("whittle compare: each gate fails with exit code 3, named on stderr and in every report",
          "[tools][compare]") {
  Fixture f;
  struct Case {
    const char* flag;
    const char* gate;
  };
  // The damaged model: top-1 changes on some samples, finite SQNR; same size; a speedup of
  // 1000x is never reached.
  for (Case c : {Case{"--min-sqnr 200", "min-sqnr"}, Case{"--min-channel-sqnr 200 --channel-axis 1", "min-channel-sqnr"},
                 Case{"--min-speedup 1000", "min-speedup"},
                 Case{"--max-size-ratio 0.5", "max-size-ratio"}, Case{"--min-agreement 100.5", "min-agreement"},
                 Case{"--max-accuracy-drop -101", "max-accuracy-drop"}}) {
    INFO(c.flag);
    std::string out = f.dir.file(c.gate);
    Result r = whittle(f.args(f.damaged, std::string(c.flag) + " --json " + out + ".json --markdown " + out +
                                             ".md --junit " + out + ".xml --report " + out + ".html"),
                       f.dir);
    INFO(r.output);
    CHECK(r.code == 3);
    CHECK(r.err.find(std::string("whittle: gate failed: ") + c.gate + ":") != std::string::npos);
    auto j = nlohmann::json::parse(testing::readBytes(out + ".json"));
    CHECK(j["verdict"] == "FAIL");
    CHECK(j["gates"][0]["name"] == c.gate);
    CHECK(j["gates"][0]["passed"] == false);
    CHECK(testing::readBytes(out + ".md").find(std::string("❌ ") + c.gate) != std::string::npos);
    CHECK(testing::readBytes(out + ".xml").find(std::string("<failure message=\"") + c.gate) != std::string::npos);
    CHECK(testing::readBytes(out + ".html").find(std::string("Failed: ") + c.gate) != std::string::npos);
  }
  // The same gates with thresholds the damaged model meets pass.
  Result ok = whittle(f.args(f.damaged,
                             "--min-sqnr -100 --min-channel-sqnr -100 --min-speedup 0.001 --max-size-ratio 1.5 --min-agreement 0 "
                             "--max-accuracy-drop 100"),
                      f.dir);
  INFO(ok.output);
  CHECK(ok.code == 0);
}

TEST_CASE("whittle compare: --json - writes the report alone on stdout", "[tools][compare]") {
  Fixture f;
  Result r = whittle(f.args(f.same, "--json -"), f.dir);
  REQUIRE(r.code == 0);
  std::string stdoutOnly = r.output.substr(0, r.output.size() - r.err.size());
  auto j = nlohmann::json::parse(stdoutOnly);
  CHECK(j["schema"] == "whittle.compare");
}

TEST_CASE("whittle compare: bad input exits 2 with one line", "[tools][compare]") {
  Fixture f;
  SECTION("missing model file") {
    expectBadInput(whittle(f.args(f.dir.file("nope.onnx"), ""), f.dir), "nope.onnx");
  }
  SECTION("missing data") {
    expectBadInput(whittle("compare " + f.original + " " + f.same + " --data " + f.dir.file("none.npy"), f.dir),
                   "none.npy");
  }
  SECTION("models with different inputs") {
    testing::GraphBuilder b;
    ir::Value* x = b.input("other", ir::DataType::kFloat, {1, 4});
    b.output(b.node("Relu", {x}, {}, "y"), ir::DataType::kFloat, {1, 4});
    std::string other = testing::save(b.build(), f.dir, "other.onnx");
    expectBadInput(whittle(f.args(other, ""), f.dir), "the models have different inputs");
  }
  SECTION("labels without classes") {
    std::ofstream(f.dir.file("big.txt")) << "9\n9\n9\n9\n9\n9\n9\n9\n9\n9\n9\n9\n";
    expectBadInput(whittle("compare " + f.original + " " + f.same + " --data " + f.data.data + " --labels " +
                               f.dir.file("big.txt") + " --latency-runs 0",
                           f.dir),
                   "no output of the models holds class scores");
  }
  SECTION("accuracy gate without labels") {
    expectBadInput(
        whittle("compare " + f.original + " " + f.same + " --data " + f.data.data + " --max-accuracy-drop 1", f.dir),
        "--max-accuracy-drop needs labels");
  }
  SECTION("unknown preprocessing key") {
    expectBadInput(whittle(f.args(f.same, "--preprocess resise=256"), f.dir), "resize");
  }
  SECTION("a channel axis that is not one") {
    expectBadInput(whittle(f.args(f.same, "--channel-axis last"), f.dir), "--channel-axis 'last'");
    expectBadInput(whittle(f.args(f.same, "--channel-axis probs=1"), f.dir), "no output 'probs'");
    expectBadInput(whittle(f.args(f.same, "--channel-axis 2"), f.dir), "--channel-axis 2: output 'logits' has rank 2");
  }
}

TEST_CASE("whittle compare on shared models: squeezenet1.1 against itself on ImageNet images",
          "[tools][compare][shared]") {
  auto model = testing::sharedPath("models/squeezenet1.1.onnx");
  if (!model) return;
  auto images = testing::sharedPath("data/imagenet-sample");
  if (!images) return;
  TempDir dir;
  std::string json = dir.file("r.json");
  Result r = whittle("compare " + *model + " " + *model + " --data " + *images +
                         " --limit 50 --preprocess resize=256,crop=224,bgr,mean=104:117:123 --per-layer "
                         "--latency-runs 3 --min-agreement 100 --min-sqnr 1000 --max-accuracy-drop 0 --json " +
                         json,
                     dir);
  INFO(r.output);
  CHECK(r.code == 0);
  auto j = nlohmann::json::parse(testing::readBytes(json));
  CHECK(j["dataset"]["samples"] == 50);
  CHECK(j["outputs"][0]["agreement_pct"] == 100.0);
  CHECK(j["outputs"][0]["sqnr_db"] == "inf");
  for (const auto& l : j["per_layer"]) CHECK(l["sqnr_db"] == "inf");
}

}  // namespace
}  // namespace whittle
