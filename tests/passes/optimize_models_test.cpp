// Interop: for every model in ../shared/models, `whittle optimize -O2` gives a model that
// passes the ONNX checker and whose outputs match the original's within 1e-5 (norm-relative)
// on a real input, both on whittle's runtime and on ONNX Runtime; and optimize's table says
// how many nodes each pass removed. The Python side (optimize_models.py) prepares the real
// input, runs the checker and ONNX Runtime, and writes report.json for this test to judge.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "passes/pass_test_util.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/passes/registry.h"

using namespace whittle;
namespace fs = std::filesystem;

namespace {

// The "nodes removed" column of optimize's table, per pass.
std::map<std::string, int64_t> nodesRemovedByPass(const std::string& table) {
  std::map<std::string, int64_t> removed;
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string pass;
    int64_t rewrites = 0, nodes = 0;
    if (!(fields >> pass >> rewrites >> nodes) || passes::findPass(pass) == nullptr) continue;
    removed[pass] = nodes;
  }
  return removed;
}

std::vector<std::string> interfaceWithoutInitializers(const ir::Model& m) {
  std::vector<std::string> names;
  for (const ir::Value* v : m.graph->inputs()) {
    if (!v->isInitializer()) names.push_back("in:" + v->name());
  }
  for (const ir::Value* v : m.graph->outputs()) names.push_back("out:" + v->name());
  return names;
}

/// fp16 outputs cannot agree to 1e-5: ONNX Runtime's CPU provider computes float16 models
/// through inserted Casts, and removing a node (an inference Dropout) removes one of the
/// rounding steps between them. Two fp16 ulps (2^-10 relative) bound that.
constexpr double kFloat16Tolerance = 1e-3;

void checkOptimizedModel(const std::string& file) {
  auto path = testing::sharedPath("models/" + file);
  if (!path) return;
  if (!testing::requirePython("numpy, onnx, onnxruntime, PIL",
                              "for the checker and ONNX Runtime (optimize_models.py)")) {
    return;
  }
  testing::TempDir tmp;
  const std::string optimized = tmp.file("optimized.onnx");

  // 1. whittle optimize -O2 through the binary, as a user runs it.
  testing::RunResult opt = testing::runWhittle("optimize '" + *path + "' -o '" + optimized + "' -O2");
  INFO(opt.out);
  REQUIRE(opt.exitCode == 0);
  auto before = onnx_io::load(*path);
  auto after = onnx_io::load(optimized);
  REQUIRE(before.isOk());
  REQUIRE(after.isOk());
  CHECK(interfaceWithoutInitializers(*after) == interfaceWithoutInitializers(*before));
  // The table names every -O2 pass with the nodes it removed; they add up.
  std::map<std::string, int64_t> removed = nodesRemovedByPass(opt.out);
  int64_t totalRemoved = 0;
  for (const auto& entry : passes::pipelineForLevel(2)) {
    INFO("pass " << entry.info->name);
    CHECK(removed.contains(entry.info->name));
    totalRemoved += removed[entry.info->name];
  }
  CHECK(totalRemoved ==
        static_cast<int64_t>(before->graph->numNodes()) - static_cast<int64_t>(after->graph->numNodes()));

  // 2. The ONNX checker and ONNX Runtime, on a real input.
  testing::RunResult py;
  py.exitCode =
      testing::shell(testing::python() + " '" + std::string(WHITTLE_SOURCE_DIR) +
                         "/tests/passes/optimize_models.py' '" + *path + "' '" + optimized + "' '" + tmp.path() + "'",
                     &py.out);
  INFO(py.out);
  REQUIRE(py.exitCode == 0);
  std::ifstream reportFile(tmp.file("report.json"));
  nlohmann::json report = nlohmann::json::parse(reportFile);
  CHECK(report["checker"] == "ok");
  std::string fullCheck = report["full_check"];
  CHECK((fullCheck == "ok" || fullCheck.rfind("skipped", 0) == 0));
  CHECK(report["output_names_equal"] == true);
  bool float16 = false;
  for (const ir::Value* v : before->graph->outputs()) float16 = float16 || v->dtype() == ir::DataType::kFloat16;
  const double tolerance = float16 ? kFloat16Tolerance : testing::kExactRelativeTolerance;
  for (const auto& o : report["outputs"]) {
    INFO("ONNX Runtime, output " << o["name"] << ": norm-relative " << o["norm_rel"] << ", max abs " << o["max_abs"]);
    CHECK(o["same_shape"] == true);
    CHECK(o["same_dtype"] == true);
    CHECK(o["norm_rel"].get<double>() <= tolerance);
  }

  // 3. whittle's runtime on the same input.
  std::vector<runtime::NamedTensor> feeds;
  for (int k = 0; fs::exists(tmp.file("input_" + std::to_string(k) + ".npy")); ++k) {
    std::string name = testing::readBytes(tmp.file("input_" + std::to_string(k) + ".name"));
    auto t = data::readNpy(tmp.file("input_" + std::to_string(k) + ".npy"));
    REQUIRE(t.isOk());
    feeds.emplace_back(name, std::move(t).value());
  }
  REQUIRE_FALSE(feeds.empty());
  auto expected = testing::runModel(*before, feeds);
  auto actual = testing::runModel(*after, feeds);
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const ir::Tensor& e = expected[i].second;
    const ir::Tensor& a = actual[i].second;
    REQUIRE(a.dims() == e.dims());
    REQUIRE(a.dtype() == e.dtype());
    double maxAbs = 0;
    for (int64_t j = 0; j < e.numel(); ++j)
      maxAbs = std::max(maxAbs, std::fabs(a.valueAsDouble(j) - e.valueAsDouble(j)));
    double err = testing::normRelativeError(a, e);
    INFO("whittle runtime, output " << expected[i].first << ": norm-relative " << err << ", max abs " << maxAbs);
    CHECK(err <= tolerance);
  }
}

}  // namespace

#define WH_OPTIMIZE_MODEL_TEST(file)                                                                     \
  TEST_CASE("whittle optimize -O2 keeps " file " exact in both runtimes", "[passes][optimize-models]") { \
    checkOptimizedModel(file);                                                                           \
  }

WH_OPTIMIZE_MODEL_TEST("mnist-8.onnx")
WH_OPTIMIZE_MODEL_TEST("squeezenet1.1.onnx")
WH_OPTIMIZE_MODEL_TEST("squeezenet1.1-fp16.onnx")
WH_OPTIMIZE_MODEL_TEST("mobilenetv2-12-rebuilt-fp32.onnx")
WH_OPTIMIZE_MODEL_TEST("mobilenetv2-12-int8.onnx")
WH_OPTIMIZE_MODEL_TEST("mlperftiny_ic_resnet8.onnx")
WH_OPTIMIZE_MODEL_TEST("mlperftiny_vww_96_float.onnx")
WH_OPTIMIZE_MODEL_TEST("mlperftiny_kws_dscnn_float32io_int8w.onnx")
WH_OPTIMIZE_MODEL_TEST("mlperftiny_kws_dscnn_int8_qdq.onnx")
WH_OPTIMIZE_MODEL_TEST("ultraface_version-RFB-320.onnx")
WH_OPTIMIZE_MODEL_TEST("retinaface_mbnet0.25.onnx")
WH_OPTIMIZE_MODEL_TEST("yolo-fastestv2_352.onnx")
WH_OPTIMIZE_MODEL_TEST("super_resolution_subpixel_cnn_x3.onnx")
WH_OPTIMIZE_MODEL_TEST("vittrack_vitTracker.onnx")
WH_OPTIMIZE_MODEL_TEST("all-MiniLM-L6-v2-intent157.onnx")

TEST_CASE("the interop test covers every model in ../shared/models", "[passes][optimize-models]") {
  auto readme = testing::sharedPath("models/README.md");
  if (!readme) return;
  const std::set<std::string> covered = {"mnist-8.onnx",
                                         "squeezenet1.1.onnx",
                                         "squeezenet1.1-fp16.onnx",
                                         "mobilenetv2-12-rebuilt-fp32.onnx",
                                         "mobilenetv2-12-int8.onnx",
                                         "mlperftiny_ic_resnet8.onnx",
                                         "mlperftiny_vww_96_float.onnx",
                                         "mlperftiny_kws_dscnn_float32io_int8w.onnx",
                                         "mlperftiny_kws_dscnn_int8_qdq.onnx",
                                         "ultraface_version-RFB-320.onnx",
                                         "retinaface_mbnet0.25.onnx",
                                         "yolo-fastestv2_352.onnx",
                                         "super_resolution_subpixel_cnn_x3.onnx",
                                         "vittrack_vitTracker.onnx",
                                         "all-MiniLM-L6-v2-intent157.onnx"};
  for (const auto& entry : fs::directory_iterator(fs::path(*readme).parent_path())) {
    if (entry.path().extension() != ".onnx") continue;
    INFO("model " << entry.path().filename().string());
    CHECK(covered.contains(entry.path().filename().string()));
  }
}
