// End-to-end tests of `whittle run` and `whittle bench`: they run the built binary.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/graph_builder.h"
#include "support/npz.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle {
namespace {

using testing::TempDir;

const std::string kDemo = std::string(WHITTLE_SOURCE_DIR) + "/models/demo_cnn.onnx";
const std::string kDemoImages = std::string(WHITTLE_SOURCE_DIR) + "/models/demo_data/test_images.npy";

struct Result {
  int code;
  std::string output;  // stdout and stderr together
};

Result whittle(const std::string& args) {
  Result r;
  r.code = testing::shell(std::string(WHITTLE_BINARY) + " " + args, &r.output);
  return r;
}

// Checks a failed command: exit 2 and one line "whittle: error: ..." containing `needle`.
void expectBadInput(const Result& r, const std::string& needle) {
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.rfind("whittle: error: ", 0) == 0);
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  CHECK(r.output.find(needle) != std::string::npos);
}

// True when the command succeeded. When the runtime lacks a kernel the command must fail
// cleanly (exit 2, one line naming the node and op) and the caller stops there.
bool ranOrUnsupported(const Result& r) {
  if (r.code == 0) return true;
  expectBadInput(r, "is not supported by the CPU runtime");
  WARN("the CPU runtime cannot run this model yet: " << r.output);
  return false;
}

// The first `rows` samples of the demo test images as an input file.
std::string demoInput(const TempDir& dir, int64_t rows, const std::string& name = "x.npy") {
  auto all = data::readNpy(kDemoImages);
  REQUIRE(all.isOk());
  ir::Tensor t(ir::DataType::kFloat, {rows, 1, 8, 8});
  std::memcpy(t.mutableRawData(), all->rawData(), t.byteSize());
  std::string path = dir.file(name);
  REQUIRE(data::writeNpy(t, path).isOk());
  return path;
}

// Runs onnxruntime on the same inputs (OUT/NAME.npy per output); false (after a WARN, or a FAIL
// under CI=true) when the test Python cannot import numpy, onnx and onnxruntime.
bool ortReference(const std::string& model, const std::string& outDir, const std::string& feeds) {
  if (!testing::requirePython("numpy, onnx, onnxruntime",
                              "for the ONNX Runtime comparison (tests/tools/ort_reference.py)")) {
    return false;
  }
  std::string out;
  int rc = testing::shell(testing::python() + " " + std::string(WHITTLE_SOURCE_DIR) + "/tests/tools/ort_reference.py " +
                              model + " " + outDir + " " + feeds,
                          &out);
  INFO(out);
  REQUIRE(rc == 0);
  return true;
}

// Outputs agree within 1e-5, relative to max(1, |reference|).
void compareOutputs(const std::string& ours, const std::string& reference) {
  auto a = data::readNpy(ours);
  auto b = data::readNpy(reference);
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  REQUIRE(a->dims() == b->dims());
  REQUIRE(a->dtype() == b->dtype());
  double worst = 0;
  for (int64_t i = 0; i < a->numel(); ++i) {
    double x = a->valueAsDouble(i), y = b->valueAsDouble(i);
    worst = std::max(worst, std::abs(x - y) / std::max(1.0, std::abs(y)));
  }
  CAPTURE(ours, worst);
  CHECK(worst <= 1e-5);
}

TEST_CASE("run: demo model outputs match onnxruntime", "[tools][run]") {
  TempDir dir;
  std::string x = demoInput(dir, 16);
  Result r = whittle("run " + kDemo + " --input input=" + x + " --output-dir " + dir.file("out") + " --threads 2");
  if (!ranOrUnsupported(r)) return;
  INFO(r.output);
  CHECK(r.output == "logits: float32 [16,10] -> " + dir.file("out") + "/logits.npy\n");
  if (!ortReference(kDemo, dir.path(), "input=" + x)) return;
  compareOutputs(dir.file("out/logits.npy"), dir.file("logits.npy"));
}

TEST_CASE("run: mnist-8 on its ONNX test data matches onnxruntime", "[tools][run][shared]") {
  auto model = testing::sharedPath("models/mnist-8.onnx");
  auto set = testing::sharedPath("data/mnist-8-test-data/test_data_set_1");
  if (!model || !set) return;
  TempDir dir;
  // A test_data_set folder feeds the inputs by position.
  Result r = whittle("run " + *model + " --input " + *set + " -o " + dir.file("out"));
  if (!ranOrUnsupported(r)) return;
  if (!ortReference(*model, dir.path(), "Input3=" + *set + "/input_0.pb")) return;
  compareOutputs(dir.file("out/Plus214_Output_0.npy"), dir.file("Plus214_Output_0.npy"));
}

TEST_CASE("run: bad inputs exit 2 with a one-line error naming the input", "[tools][run]") {
  TempDir dir;
  std::string x = demoInput(dir, 2);
  std::string out = " --output-dir " + dir.file("out");
  expectBadInput(whittle("run " + kDemo + " --input input=" + dir.file("missing.npy") + out), "missing.npy: no such file");
  expectBadInput(whittle("run " + kDemo + " --input bogus=" + x + out),
                 "the model has no input named 'bogus' (inputs: input)");
  ir::Tensor wrongShape(ir::DataType::kFloat, {2, 8, 8});
  REQUIRE(data::writeNpy(wrongShape, dir.file("shape.npy")).isOk());
  expectBadInput(whittle("run " + kDemo + " --input input=" + dir.file("shape.npy") + out),
                 "input 'input' (" + dir.file("shape.npy") + "): expected float32 [batch,1,8,8], got float32 [2,8,8]");
  ir::Tensor wrongType(ir::DataType::kDouble, {2, 1, 8, 8});
  REQUIRE(data::writeNpy(wrongType, dir.file("type.npy")).isOk());
  expectBadInput(whittle("run " + kDemo + " --input " + dir.file("type.npy") + out),
                 "input 'input' (" + dir.file("type.npy") + "): expected float32 [batch,1,8,8], got float64 [2,1,8,8]");
  testing::writeBytes(dir.file("junk.npy"), "not an array");
  expectBadInput(whittle("run " + kDemo + " --input " + dir.file("junk.npy") + out), "junk.npy: not a .npy file");
  expectBadInput(whittle("run " + kDemo + " --input input=" + x + " --input input=" + x + out), "given twice");
  expectBadInput(whittle("run " + dir.file("nomodel.onnx") + " --input " + x + out), "nomodel.onnx");
  // Nothing was written for the failed runs.
  CHECK_FALSE(std::filesystem::exists(dir.file("out/logits.npy")));
  // A missing required option is a usage error, also exit 2.
  Result usage = whittle("run " + kDemo + out);
  CHECK(usage.code == 2);
}

TEST_CASE("run: output names are made safe for the file system", "[tools][run]") {
  // Two outputs whose names differ only in characters a file name cannot hold.
  testing::GraphBuilder b(/*seed=*/3);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3});
  b.output(b.node("Relu", {x}, {}, "model/out:0"), ir::DataType::kFloat, {2, 3});
  b.output(b.node("Neg", {x}, {}, "model:out/0"), ir::DataType::kFloat, {2, 3});
  ir::Model model = b.build(/*opset=*/17);
  TempDir dir;
  REQUIRE(onnx_io::save(model, dir.file("names.onnx")).isOk());
  ir::Tensor input = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2, 3}, {-1, 2, -3, 4, -5, 6});
  REQUIRE(data::writeNpy(input, dir.file("x.npy")).isOk());
  Result r = whittle("run " + dir.file("names.onnx") + " --input x=" + dir.file("x.npy") + " -o " + dir.file("out"));
  if (!ranOrUnsupported(r)) return;
  INFO(r.output);
  auto relu = data::readNpy(dir.file("out/model_out_0.npy"));
  auto neg = data::readNpy(dir.file("out/model_out_0_1.npy"));
  REQUIRE(relu.isOk());
  REQUIRE(neg.isOk());
  CHECK(relu->data<float>()[1] == 2.0f);
  CHECK(relu->data<float>()[0] == 0.0f);
  CHECK(neg->data<float>()[0] == 1.0f);
  CHECK(dir.list().count("out") == 1);
}

TEST_CASE("bench: --json has the documented fields", "[tools][bench]") {
  Result r = whittle("bench " + kDemo + " --batch 4 --iterations 5 --warmup 1 --threads 1 --json --profile");
  if (!ranOrUnsupported(r)) return;
  INFO(r.output);
  REQUIRE(r.code == 0);
  nlohmann::json j = nlohmann::json::parse(r.output);
  CHECK(j["schema"] == "whittle.bench/1");
  CHECK(j["model"] == kDemo);
  CHECK(j["threads"] == 1);
  CHECK(j["batch"] == 4);
  CHECK(j["warmup"] == 1);
  CHECK(j["iterations"] == 5);
  CHECK(j["inputs"][0]["name"] == "input");
  CHECK(j["inputs"][0]["dtype"] == "float32");
  CHECK(j["inputs"][0]["shape"] == nlohmann::json::array({4, 1, 8, 8}));
  const auto& lat = j["latencyMs"];
  for (const char* key : {"mean", "p50", "p90", "p99", "min", "max", "stddev"}) {
    CAPTURE(key);
    REQUIRE(lat.contains(key));
    CHECK(lat[key].get<double>() >= 0);
  }
  CHECK(lat["min"].get<double>() <= lat["p50"].get<double>());
  CHECK(lat["p50"].get<double>() <= lat["p90"].get<double>());
  CHECK(lat["p90"].get<double>() <= lat["p99"].get<double>());
  CHECK(lat["p99"].get<double>() <= lat["max"].get<double>());
  CHECK(j["throughputSamplesPerSecond"].get<double>() > 0);
  CHECK(j["memory"]["activationPeakBytes"].get<int64_t>() >= 0);
  CHECK(j["memory"]["processPeakRssBytes"].get<int64_t>() > 0);
  const auto& profile = j["profile"];
  REQUIRE(profile.is_object());
  CHECK(profile["opTypes"].size() >= 3);
  // Every compiled node of the demo model (fewer than 20; the runtime may have fused some).
  CHECK(profile["topNodes"].size() >= 3);
  CHECK(profile["topNodes"].size() <= 17);
  double fraction = 0;
  for (const auto& t : profile["opTypes"]) fraction += t["fraction"].get<double>();
  CHECK(fraction == Approx(1.0).margin(1e-6));
  for (const auto& n : profile["topNodes"]) {
    CHECK(n.contains("node"));
    CHECK(n.contains("op"));
    CHECK(n["msPerRun"].get<double>() >= 0);
  }
  // Without --profile the field is null.
  Result plain = whittle("bench " + kDemo + " --iterations 2 --warmup 0 --json");
  REQUIRE(plain.code == 0);
  CHECK(nlohmann::json::parse(plain.output)["profile"].is_null());
  CHECK(j["notes"].is_array());
}

// `whittle` with none of the wait settings inherited from the test's environment, `env` before it.
Result whittleClean(const std::string& env, const std::string& args) {
  Result r;
  r.code = testing::shell("env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY -u WHITTLE_SPIN_APPLIED " + env + " " +
                              std::string(WHITTLE_BINARY) + " " + args,
                          &r.output);
  return r;
}

/// bench --json's record of how idle threads waited: GOMP_SPINCOUNT, or "null".
std::string spinCountOf(const Result& r) {
  INFO(r.output);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.output)["wait"]["GOMP_SPINCOUNT"].dump();
}

TEST_CASE("bench: --spin-count sets how idle threads wait; the environment's setting stands without it",
          "[tools][bench]") {
  const std::string bench = "bench " + kDemo + " --iterations 2 --warmup 0 --json";
  CHECK(spinCountOf(whittleClean("", bench + " --threads 2 --spin-count 123")) == "\"123\"");
  CHECK(spinCountOf(whittleClean("", "--spin-count 0 " + bench + " --threads 2")) == "\"0\"");
  // auto (the default): a bounded spin on a quiet machine, none on a busy one.
  const std::string automatic = spinCountOf(whittleClean("", bench + " --threads 2"));
  CHECK((automatic == "\"20000\"" || automatic == "\"0\""));
  // The user's environment stands, unless the flag is given.
  Result passive = whittleClean("OMP_WAIT_POLICY=passive", bench + " --threads 2");
  CHECK(spinCountOf(passive) == "null");
  CHECK(nlohmann::json::parse(passive.output)["wait"]["OMP_WAIT_POLICY"] == "passive");
  CHECK(spinCountOf(whittleClean("GOMP_SPINCOUNT=77", bench + " --threads 2")) == "\"77\"");
  CHECK(spinCountOf(whittleClean("GOMP_SPINCOUNT=77", bench + " --threads 2 --spin-count 5")) == "\"5\"");
  // One thread has no worker to wait: nothing is set.
  CHECK(spinCountOf(whittleClean("", bench + " --threads 1 --spin-count 123")) == "null");
  for (const char* bad : {"-1", "many"}) {
    Result r = whittleClean("", bench + " --threads 2 --spin-count '" + std::string(bad) + "'");
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(r.output.find("--spin-count") != std::string::npos);
  }
}

/// `x` [1, 4, 8, 8] -> Conv 3x3 -> Relu: static shapes, every node far too small to split.
std::string smallStaticModel(const TempDir& dir) {
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 4, 8, 8});
  ir::Value* y = b.node("Conv", {x, b.weight("w", {4, 4, 3, 3})}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})});
  b.output(b.node("Relu", {y}), ir::DataType::kFloat, {1, 4, 8, 8});
  std::string path = dir.file("small_static.onnx");
  REQUIRE(onnx_io::save(b.build(/*opset=*/17), path).isOk());
  return path;
}

TEST_CASE("bench: --profile gives each node's CPU time, context switches and threads", "[tools][bench]") {
  TempDir dir;
  const std::string small = smallStaticModel(dir);
  Result r = whittle("bench " + small + " --iterations 3 --warmup 1 --threads 2 --json --profile --profile-nodes");
  INFO(r.output);
  REQUIRE(r.code == 0);
  nlohmann::json profile = nlohmann::json::parse(r.output)["profile"];
  CHECK(profile["nodeCpuMsPerRun"].get<double>() > 0);
  CHECK(profile["switchesPerRun"].get<double>() >= 0);
  REQUIRE(profile["nodes"].size() >= 1);
  REQUIRE(profile["nodes"].size() == profile["topNodes"].size());  // fewer than 20 nodes: all of them
  for (const auto& n : profile["nodes"]) {
    CHECK(n["cpuMsPerRun"].get<double>() >= 0);
    CHECK(n["switchesPerRun"].get<double>() >= 0);
    // 8x8 nodes with static shapes are far too small to split: each runs on one thread.
    CHECK(n["threads"] == 1);
  }
  int64_t oneThread = 0;
  for (const auto& t : profile["opTypes"]) oneThread += t["oneThreadNodes"].get<int64_t>();
  CHECK(oneThread == static_cast<int64_t>(profile["nodes"].size()));
  // The demo model's batch is symbolic: its work is not known when it is compiled, so its
  // nodes keep both threads (their kernels' own size checks decide).
  Result demo = whittle("bench " + kDemo + " --iterations 2 --warmup 0 --threads 2 --json --profile --profile-nodes");
  REQUIRE(demo.code == 0);
  for (const auto& n : nlohmann::json::parse(demo.output)["profile"]["nodes"]) CHECK(n["threads"] == 2);
  // The text report has the same columns.
  Result text = whittle("bench " + small + " --iterations 2 --warmup 0 --threads 2 --profile");
  INFO(text.output);
  CHECK(text.output.find("cpu ms/run") != std::string::npos);
  CHECK(text.output.find("switches") != std::string::npos);
}

TEST_CASE("bench: text report, symbolic dims and bad input", "[tools][bench]") {
  Result r = whittle("bench " + kDemo + " --iterations 3 --warmup 0");
  if (ranOrUnsupported(r)) {
    INFO(r.output);
    CHECK(r.output.find("latency ms  mean") != std::string::npos);
    CHECK(r.output.find("throughput") != std::string::npos);
    CHECK(r.output.find("input       input float32 [1,1,8,8] (random)") != std::string::npos);
  }
  expectBadInput(whittle("bench /nonexistent/model.onnx"), "/nonexistent/model.onnx");
  Result zero = whittle("bench " + kDemo + " --iterations 0");
  CHECK(zero.code == 2);
}

// x: float [1, 3, 4, width] (width free) into an AveragePool 1x3: width 1 cannot run.
std::string freeWidthModel(const TempDir& dir) {
  testing::GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat,
                                 {ir::Dim::known(1), ir::Dim::known(3), ir::Dim::known(4), ir::Dim::symbolic("width")});
  b.output(b.node("AveragePool", {x}, {ir::Attribute::makeInts("kernel_shape", {1, 3})}));
  std::string path = dir.file("free_width.onnx");
  REQUIRE(onnx_io::save(b.build(/*opset=*/17), path).isOk());
  return path;
}

TEST_CASE("bench: --dim sizes a symbolic input dim by name, and a run that fails on a guessed 1 says so",
          "[tools][bench]") {
  TempDir dir;
  const std::string model = freeWidthModel(dir);
  // Left at 1, the width does not fit the pooling window: the error names the guess and the option.
  Result guessed = whittle("bench " + model + " --iterations 1 --warmup 0");
  expectBadInput(guessed, "--dim NAME=N");
  CHECK(guessed.output.find("width of 'x'") != std::string::npos);

  Result sized = whittle("bench " + model + " --dim width=8 --iterations 2 --warmup 0 --json");
  INFO(sized.output);
  REQUIRE(sized.code == 0);
  auto j = nlohmann::json::parse(sized.output);
  CHECK(j["inputs"][0]["shape"] == nlohmann::json::array({1, 3, 4, 8}));
  CHECK(j["cpuMs"]["p50"].get<double>() >= 0.0);

  expectBadInput(whittle("bench " + model + " --dim height=8"), "no input of the model has a symbolic dim named 'height' (it has: width)");
  expectBadInput(whittle("bench " + model + " --dim width=0"), "expected NAME=VALUE with a positive integer VALUE");
  expectBadInput(whittle("bench " + model + " --dim width"), "--dim 'width'");
}

TEST_CASE("bench: --input benches on the given tensor and takes its batch", "[tools][bench]") {
  TempDir dir;
  std::string x = demoInput(dir, 6);
  Result r = whittle("bench " + kDemo + " --input input=" + x + " --batch 2 --iterations 2 --warmup 0 --threads 1 --json");
  if (!ranOrUnsupported(r)) return;
  INFO(r.output);
  nlohmann::json j = nlohmann::json::parse(r.output);
  // The batch comes from the file; --batch does not apply to it, and a note says so.
  CHECK(j["batch"] == 6);
  CHECK(j["inputs"][0]["shape"] == nlohmann::json::array({6, 1, 8, 8}));
  CHECK(j["inputs"][0]["source"] == x);
  bool noted = false;
  for (const auto& note : j["notes"]) noted = noted || note.get<std::string>().find("--batch 2 does not apply") != std::string::npos;
  CHECK(noted);
  // FILE alone feeds a one-input model; the text report names the file.
  Result text = whittle("bench " + kDemo + " --input " + x + " --iterations 1 --warmup 0");
  REQUIRE(text.code == 0);
  CHECK(text.output.find("input       input float32 [6,1,8,8] (from " + x + ")") != std::string::npos);
}

TEST_CASE("bench: a bad --input file exits 2 naming the input", "[tools][bench]") {
  TempDir dir;
  // Missing file, not a .npy, wrong shape, wrong dtype, unknown input name.
  expectBadInput(whittle("bench " + kDemo + " --input input=" + dir.file("missing.npy")), "input 'input'");
  {
    std::ofstream(dir.file("junk.npy")) << "not an array";
  }
  Result junk = whittle("bench " + kDemo + " --input input=" + dir.file("junk.npy"));
  expectBadInput(junk, "input 'input'");
  CHECK(junk.output.find(dir.file("junk.npy")) != std::string::npos);
  ir::Tensor wrongShape(ir::DataType::kFloat, {2, 1, 4, 4});
  REQUIRE(data::writeNpy(wrongShape, dir.file("shape.npy")).isOk());
  Result shape = whittle("bench " + kDemo + " --input input=" + dir.file("shape.npy"));
  expectBadInput(shape, "input 'input'");
  CHECK(shape.output.find("[2,1,4,4]") != std::string::npos);
  ir::Tensor wrongType(ir::DataType::kDouble, {2, 1, 8, 8});
  REQUIRE(data::writeNpy(wrongType, dir.file("double.npy")).isOk());
  expectBadInput(whittle("bench " + kDemo + " --input input=" + dir.file("double.npy")), "float64");
  std::string x = demoInput(dir, 2);
  expectBadInput(whittle("bench " + kDemo + " --input images=" + x), "no input named 'images'");
}

TEST_CASE("run and bench: one .npz feeds every input it names; a stray array is an error", "[tools][run][bench]") {
  TempDir dir;
  testing::GraphBuilder b;
  ir::Value* a = b.input("a", ir::DataType::kFloat, {1, 4});
  ir::Value* c = b.input("c", ir::DataType::kFloat, {1, 4});
  b.output(b.node("Add", {a, c}));
  std::string model = dir.file("two_inputs.onnx");
  REQUIRE(onnx_io::save(b.build(13), model).isOk());
  ir::Tensor x(ir::DataType::kFloat, {1, 4}), y(ir::DataType::kFloat, {1, 4});
  for (int i = 0; i < 4; ++i) {
    x.mutableData<float>()[i] = static_cast<float>(i);
    y.mutableData<float>()[i] = 10.0f * static_cast<float>(i);
  }
  std::string both = dir.file("both.npz");
  if (!testing::writeNpz(both, {{"a", x}, {"c", y}}, dir.path())) return;

  Result ran = whittle("run " + model + " --input " + both + " --output-dir " + dir.file("out"));
  INFO(ran.output);
  REQUIRE(ran.code == 0);
  auto sum = data::readNpy(dir.file("out/" + b.graph().outputs().front()->name() + ".npy"));
  REQUIRE(sum.isOk());
  for (int i = 0; i < 4; ++i) CHECK(sum->data<float>()[i] == 11.0f * static_cast<float>(i));

  // bench takes the same file the same way (it asked for NAME=FILE per input before).
  Result bench = whittle("bench " + model + " --input " + both + " --iterations 1 --warmup 0 --threads 1 --json");
  INFO(bench.output);
  REQUIRE(bench.code == 0);
  nlohmann::json j = nlohmann::json::parse(bench.output);
  REQUIRE(j["inputs"].size() == 2);
  CHECK(j["inputs"][0]["source"] == both + ":a");
  CHECK(j["inputs"][1]["source"] == both + ":c");

  // An array named after no input is an error naming it, in both commands.
  std::string stray = dir.file("stray.npz");
  if (!testing::writeNpz(stray, {{"a", x}, {"d", y}}, dir.path())) return;
  expectBadInput(whittle("bench " + model + " --input " + stray), "the model has no input named 'd' (inputs: a, c)");
  expectBadInput(whittle("run " + model + " --input " + stray + " --output-dir " + dir.file("out2")),
                 "the model has no input named 'd' (inputs: a, c)");
}

}  // namespace
}  // namespace whittle
