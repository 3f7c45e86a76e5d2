// Bad and awkward data through the command line, as a new user meets it: NaN or infinity in
// calibration and evaluation data, scalar (rank-0) inputs, a graph that pins batch 1 behind a
// free batch dimension, and bench's memory figures.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "support/graph_builder.h"
#include "support/demo_model.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle {
namespace {

using testing::runWhittle;
using testing::TempDir;

const std::string& kDemo = testing::kDemoModel;
const std::string& kCalib = testing::kDemoCalib;

// A copy of the demo calibration images with `value` at element 5 of sample `sample`.
std::string poisonedCalib(const TempDir& dir, int64_t sample, float value) {
  auto images = data::readNpy(kCalib);
  REQUIRE(images.isOk());
  ir::Tensor t = *images;
  const int64_t perSample = t.numel() / t.dims()[0];
  t.mutableData<float>()[sample * perSample + 5] = value;
  std::string path = dir.file("calib_bad.npy");
  REQUIRE(data::writeNpy(t, path).isOk());
  return path;
}

void expectOneLineError(const testing::RunResult& r, std::initializer_list<std::string> needles) {
  INFO(r.out);
  CHECK(r.exitCode == 2);
  CHECK(r.out.find("whittle: error: ") != std::string::npos);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  for (const std::string& n : needles) CHECK(r.out.find(n) != std::string::npos);
}

TEST_CASE("optimize refuses NaN and infinity in calibration data, naming file, sample and input", "[tools][data]") {
  TempDir dir;
  const std::string out = dir.file("out.onnx");
  SECTION("NaN") {
    std::string calib = poisonedCalib(dir, 3, std::numeric_limits<float>::quiet_NaN());
    auto r = runWhittle("optimize '" + kDemo + "' -o '" + out + "' --quantize int8 --calib '" + calib + "'");
    expectOneLineError(r, {calib, "sample 3", "input 'input'", "element 5 is NaN", "--allow-nonfinite"});
    CHECK_FALSE(std::filesystem::exists(out));
  }
  SECTION("infinity") {
    std::string calib = poisonedCalib(dir, 41, -std::numeric_limits<float>::infinity());
    auto r = runWhittle("optimize '" + kDemo + "' -o '" + out + "' --quantize int8 --calib '" + calib + "'");
    expectOneLineError(r, {"sample 41", "is infinite"});
    CHECK_FALSE(std::filesystem::exists(out));
  }
  SECTION("--allow-nonfinite accepts it; NaN is left out of the ranges") {
    std::string calib = poisonedCalib(dir, 3, std::numeric_limits<float>::quiet_NaN());
    auto r = runWhittle("optimize '" + kDemo + "' -o '" + out + "' --quantize int8 --calib '" + calib +
                        "' --allow-nonfinite --json");
    INFO(r.out);
    REQUIRE(r.exitCode == 0);
    CHECK(std::filesystem::exists(out));
    // The same model as from the clean data: NaN does not move a min/max range.
    const std::string clean = dir.file("clean.onnx");
    REQUIRE(runWhittle("optimize '" + kDemo + "' -o '" + clean + "' --quantize int8 --calib '" + kCalib + "'").exitCode ==
            0);
    auto a = onnx_io::load(out), b = onnx_io::load(clean);
    REQUIRE(a.isOk());
    REQUIRE(b.isOk());
    for (const ir::Value* v : b->graph->initializers()) {
      const ir::Value* w = a->graph->findValue(v->name());
      REQUIRE(w != nullptr);
      REQUIRE(w->constant()->byteSize() == v->constant()->byteSize());
      CHECK(std::memcmp(w->constant()->rawData(), v->constant()->rawData(), v->constant()->byteSize()) == 0);
    }
  }
}

TEST_CASE("compare refuses NaN in evaluation data unless allowed", "[tools][data]") {
  TempDir dir;
  std::string data = poisonedCalib(dir, 7, std::numeric_limits<float>::quiet_NaN());
  auto r = runWhittle("compare '" + kDemo + "' '" + kDemo + "' --data '" + data + "' --latency-runs 0");
  expectOneLineError(r, {"sample 7", "input 'input'", "NaN"});
  auto ok = runWhittle("compare '" + kDemo + "' '" + kDemo + "' --data '" + data + "' --latency-runs 0 --allow-nonfinite");
  INFO(ok.out);
  CHECK(ok.exitCode == 0);
}

// x: float [3], k: int64 scalar; y = x + Cast(k).
std::string scalarModel(const TempDir& dir) {
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {3});
  ir::Value* k = b.input("k", ir::DataType::kInt64, {});
  ir::Value* kf = b.node("Cast", {k}, {ir::Attribute::makeInt("to", 1)});
  b.output(b.node("Add", {x, kf}));
  ir::Model model = b.build(/*opset=*/17);
  std::string path = dir.file("scalar.onnx");
  REQUIRE(onnx_io::save(model, path).isOk());
  return path;
}

TEST_CASE("a scalar input given as a .npy works in run and bench", "[tools][data]") {
  TempDir dir;
  std::string model = scalarModel(dir);
  ir::Tensor k(ir::DataType::kInt64, {});
  k.mutableData<int64_t>()[0] = 5;
  ir::Tensor x(ir::DataType::kFloat, {3});
  for (int i = 0; i < 3; ++i) x.mutableData<float>()[i] = static_cast<float>(i);
  REQUIRE(data::writeNpy(k, dir.file("k.npy")).isOk());
  REQUIRE(data::writeNpy(x, dir.file("x.npy")).isOk());
  const std::string feeds = " --input k='" + dir.file("k.npy") + "' --input x='" + dir.file("x.npy") + "'";

  auto run = runWhittle("run '" + model + "'" + feeds + " --output-dir '" + dir.file("out") + "'");
  INFO(run.out);
  REQUIRE(run.exitCode == 0);
  auto y = data::readNpy(dir.file("out/" + std::string("Add_1") + ".npy"));
  if (!y.isOk()) {  // the output file is named after the graph output; find it
    for (const auto& e : std::filesystem::directory_iterator(dir.file("out"))) y = data::readNpy(e.path().string());
  }
  REQUIRE(y.isOk());
  REQUIRE(y->numel() == 3);
  for (int i = 0; i < 3; ++i) CHECK(y->data<float>()[i] == static_cast<float>(i + 5));

  auto bench = runWhittle("bench '" + model + "'" + feeds + " --iterations 3 --warmup 1 --json", /*stderrToo=*/false);
  INFO(bench.out);
  REQUIRE(bench.exitCode == 0);
  auto j = nlohmann::json::parse(bench.out);
  CHECK(j["iterations"].get<int64_t>() == 3);
  CHECK(j["latencyMs"]["p50"].get<double>() > 0);
}

// x: float [batch, 4] (batch free), but the graph reshapes to [1, 2, 2]: only batch 1 runs.
std::string pinnedBatchModel(const TempDir& dir) {
  testing::GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat, {ir::Dim::symbolic("batch"), ir::Dim::known(4)});
  ir::Value* shape = b.constantInt64("shape", {3}, {1, 2, 2});
  ir::Value* r = b.node("Reshape", {x, shape});
  b.output(b.node("Relu", {r}));
  ir::Model model = b.build(/*opset=*/17);
  std::string path = dir.file("pinned.onnx");
  REQUIRE(onnx_io::save(model, path).isOk());
  return path;
}

TEST_CASE("compare falls back to batch 1 when the graph pins the batch, with a note", "[tools][data]") {
  TempDir dir;
  std::string model = pinnedBatchModel(dir);
  ir::Tensor data(ir::DataType::kFloat, {20, 4});
  for (int64_t i = 0; i < data.numel(); ++i) data.mutableData<float>()[i] = static_cast<float>(i % 7) - 3.0f;
  REQUIRE(data::writeNpy(data, dir.file("d.npy")).isOk());
  auto r = runWhittle("compare '" + model + "' '" + model + "' --data '" + dir.file("d.npy") +
                          "' --latency-runs 2 --json '" + dir.file("c.json") + "'");
  INFO(r.out);
  REQUIRE(r.exitCode == 0);
  CHECK(r.out.find("note: ran at batch 1: at batch 8 the model failed") != std::string::npos);
  std::ifstream in(dir.file("c.json"));
  auto j = nlohmann::json::parse(in);
  CHECK(j["dataset"]["batch"] == 1);
  CHECK(j["dataset"]["samples"] == 20);
  REQUIRE(j["notes"].size() == 1);
  CHECK(j["notes"][0].get<std::string>().find("Reshape") != std::string::npos);
}

TEST_CASE("bench memory figures do not grow with the number of runs and are whittle's own", "[tools]") {
  // getrusage's ru_maxrss survives fork and exec: a launcher with a large peak (this test
  // process, after touching 1.5 GiB) used to be reported as whittle's. Touch it first.
  {
    std::vector<char> big(size_t{3} << 29);
    std::memset(big.data(), 1, big.size());
    REQUIRE(big[big.size() / 2] == 1);
  }
  auto memory = [](int iterations) {
    auto r = runWhittle("bench '" + kDemo + "' --batch 4 --warmup 0 --iterations " + std::to_string(iterations) + " --json",
                        /*stderrToo=*/false);
    INFO(r.out);
    REQUIRE(r.exitCode == 0);
    return nlohmann::json::parse(r.out)["memory"];
  };
  auto one = memory(1), many = memory(60);
  CHECK(one["activationPeakBytes"].get<int64_t>() > 0);
  CHECK(many["activationPeakBytes"].get<int64_t>() == one["activationPeakBytes"].get<int64_t>());
  CHECK(many["processPeakRssBytes"].get<int64_t>() > 0);
  CHECK(many["processPeakRssBytes"].get<int64_t>() < (int64_t{1} << 30));  // an 8x8 CNN, not the launcher's 1.5 GiB
}

}  // namespace
}  // namespace whittle
