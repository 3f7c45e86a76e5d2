#include "whittle/optimize.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "quant/quant_test_util.h"
#include "support/demo_model.h"
#include "support/graph_queries.h"
#include "support/graph_builder.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle {
namespace {

const std::string& kDemo = testing::kDemoModel;
const std::string& kCalib = testing::kDemoCalib;

using testing::countOps;

TEST_CASE("buildPipeline: level passes, then --passes, recipe, quantization, conversion", "[optimize]") {
  OptimizeRequest r;
  r.level = 1;
  r.passes = "fuse-conv-bn";
  r.quantize.mode = QuantizeMode::kInt8;
  r.quantize.method = "entropy";
  r.calibration.data = data::DatasetSpec{};
  r.calibration.data->path = kCalib;
  r.convert.to = "fp16";
  auto p = buildPipeline(r);
  INFO(p.status().message());
  REQUIRE(p.isOk());
  const size_t levelPasses = passes::pipelineForLevel(1).size();
  REQUIRE(p->size() == levelPasses + 3);
  CHECK((*p)[levelPasses].info->name == "fuse-conv-bn");
  CHECK((*p)[levelPasses + 1].info->name == "quantize-int8");
  CHECK(passes::printPipeline({(*p)[levelPasses + 1]}) == "quantize-int8{method=entropy}");
  CHECK(p->back().info->name == "convert-fp16");

  SECTION("bad requests are errors naming the flag") {
    OptimizeRequest bad;
    bad.level = 3;
    CHECK_THAT(buildPipeline(bad).status().message(), Catch::Contains("-O3"));
    bad.level = 2;
    bad.quantize.mode = QuantizeMode::kInt8;
    CHECK_THAT(buildPipeline(bad).status().message(), Catch::Contains("--calib"));
    bad.quantize.mode = QuantizeMode::kDynamic;
    bad.quantize.method = "entropy";
    CHECK_FALSE(buildPipeline(bad).isOk());
    bad.quantize = {};
    bad.convert.tolerance = 1e-3;
    CHECK_THAT(buildPipeline(bad).status().message(), Catch::Contains("--tolerance"));
    bad.convert.to = "fp8";
    CHECK_THAT(buildPipeline(bad).status().message(), Catch::Contains("fp8"));
  }
}

TEST_CASE("optimize() runs, stamps and returns the model without writing when no output is given", "[optimize]") {
  OptimizeRequest r;
  r.inputPath = kDemo;
  auto result = optimize(r);
  INFO(result.status().message());
  REQUIRE(result.isOk());
  auto original = onnx_io::load(kDemo);
  REQUIRE(original.isOk());
  CHECK(result->model.graph->numNodes() < original->graph->numNodes());  // BatchNormalization folded
  CHECK(countOps(*result->model.graph, "BatchNormalization") == 0);
  CHECK(result->passes.size() == passes::pipelineForLevel(2).size());
  bool stamped = false;
  for (const auto& [key, value] : result->model.metadata) stamped = stamped || (key == "whittle.pipeline" && value == result->pipeline);
  CHECK(stamped);
  CHECK_FALSE(result->report.has_value());
}

TEST_CASE("optimize() quantizes on a calibration set, writes atomically and reports", "[optimize]") {
  testing::TempDir dir;
  OptimizeRequest r;
  r.inputPath = kDemo;
  r.outputPath = dir.file("out.onnx");
  r.quantize.mode = QuantizeMode::kInt8;
  r.calibration.data = data::DatasetSpec{};
  r.calibration.data->path = kCalib;
  r.report.paths.json = dir.file("report.json");
  r.report.eval = data::DatasetSpec{};
  r.report.eval->path = kCalib;
  r.report.eval->limit = 20;
  auto result = optimize(r);
  INFO(result.status().message());
  REQUIRE(result.isOk());
  CHECK(countOps(*result->model.graph, "QuantizeLinear") > 0);
  CHECK(std::filesystem::exists(r.outputPath));
  CHECK(std::filesystem::exists(r.report.paths.json));
  REQUIRE(result->report.has_value());
  CHECK(result->report->samples == 20);
  auto json = optimizeResultJson(r, *result);
  CHECK(json["schema"] == "whittle.optimize/1");
  CHECK(json["passes"].size() == result->passes.size());
}

TEST_CASE("optimize() refuses to overwrite its input and writes nothing on error", "[optimize]") {
  testing::TempDir dir;
  OptimizeRequest r;
  r.inputPath = kDemo;
  r.outputPath = kDemo;
  CHECK_THAT(optimize(r).status().message(), Catch::Contains("--in-place"));
  r.outputPath = dir.file("never.onnx");
  r.passes = "quantize-int8";  // no calibration: the pass fails
  auto failed = optimize(r);
  CHECK_FALSE(failed.isOk());
  CHECK_FALSE(std::filesystem::exists(r.outputPath));
  OptimizeRequest noOutput;
  noOutput.inputPath = kDemo;
  noOutput.report.paths.html = dir.file("r.html");
  CHECK_THAT(optimize(noOutput).status().message(), Catch::Contains("-o"));
}

}  // namespace

TEST_CASE("optimize() reports a per-tensor fallback as a warning, and fails on it under strict", "[optimize]") {
  // An opset-10 Conv -> Resize whose nearest scales are computed (an Add that -O0 leaves): the
  // model cannot be converted to opset 13, so quantize-int8 can only go per tensor.
  testing::GraphBuilder b(3);
  ir::Value* x = b.input("x", ir::DataType::kFloat, {1, 3, 6, 6});
  ir::Value* c = b.node("Conv", {x, b.weight("w", {4, 3, 3, 3})}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}, "conv");
  ir::Value* s = b.node("Add", {b.constant("s", {4}, {1, 1, 2, 2}), b.constant("z", {4}, {0, 0, 0, 0})}, {}, "scales");
  b.output(b.node("Resize", {c, s}, {ir::Attribute::makeString("mode", "nearest")}, "resize"), ir::DataType::kFloat,
           {1, 4, 12, 12});
  ir::Model model = b.build(10);
  testing::TempDir dir;
  REQUIRE(onnx_io::save(model, dir.file("old.onnx")).isOk());
  (void)testing::randomCalibrationSet(model, dir, 4, 9);  // writes dir/calib.npy

  OptimizeRequest r;
  r.inputPath = dir.file("old.onnx");
  r.outputPath = dir.file("out.onnx");
  r.level = 0;
  r.quantize.mode = QuantizeMode::kInt8;
  r.calibration.data = data::DatasetSpec{};
  r.calibration.data->path = dir.file("calib.npy");
  r.report.paths.json = dir.file("report.json");
  auto result = optimize(r);
  INFO(result.status().message());
  REQUIRE(result.isOk());
  REQUIRE(result->warnings.size() == 1);
  CHECK_THAT(result->warnings[0], Catch::Contains("per tensor") && Catch::Contains("Resize 'resize'"));
  auto json = optimizeResultJson(r, *result);
  REQUIRE(json["warnings"].size() == 1);
  REQUIRE(result->report.has_value());
  bool inReport = false;
  for (const std::string& n : result->report->notes) inReport = inReport || n.find("per tensor") != std::string::npos;
  CHECK(inReport);

  r.strict = true;
  r.outputPath = dir.file("strict.onnx");
  r.report = {};
  auto strict = optimize(r);
  REQUIRE_FALSE(strict.isOk());
  CHECK_THAT(strict.status().message(), Catch::Contains("--strict"));
  CHECK_FALSE(std::filesystem::exists(r.outputPath));
}

}  // namespace whittle
