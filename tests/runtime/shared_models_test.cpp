// Every model in ../shared/models runs on whittle's CPU runtime and matches ONNX Runtime on
// the same seeded inputs (reference outputs made at test time by ort_reference.py).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/python.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "support/tolerance.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/session.h"

using namespace whittle;
namespace fs = std::filesystem;

namespace {

struct ModelCase {
  const char* file;
  /// Largest allowed max|ours - ORT| / max|ORT| per output.
  double tolerance;
};

// float32 models: 1e-4 relative (the bar). float16 I/O: fp16 rounding of the
// output. int8 models: ORT and oneDNN may round a requantized value differently, which
// moves an output by a quantization step; the bound is a few steps of the output range.
constexpr ModelCase kModels[] = {
    {"mnist-8.onnx", 1e-4},
    {"squeezenet1.1.onnx", 1e-4},
    {"squeezenet1.1-fp16.onnx", 2e-2},
    {"mobilenetv2-12-rebuilt-fp32.onnx", 1e-4},
    {"mobilenetv2-12-int8.onnx", 5e-2},
    {"mlperftiny_ic_resnet8.onnx", 1e-4},
    {"mlperftiny_vww_96_float.onnx", 1e-4},
    {"mlperftiny_kws_dscnn_float32io_int8w.onnx", 1e-4},
    {"mlperftiny_kws_dscnn_int8_qdq.onnx", 5e-2},
    {"ultraface_version-RFB-320.onnx", 1e-4},
    {"retinaface_mbnet0.25.onnx", 1e-4},
    {"yolo-fastestv2_352.onnx", 1e-4},
    {"super_resolution_subpixel_cnn_x3.onnx", 1e-4},
    {"vittrack_vitTracker.onnx", 1e-4},
};

}  // namespace

TEST_CASE("every shared model matches ONNX Runtime", "[runtime][models]") {
  const ModelCase& mc = GENERATE(from_range(std::begin(kModels), std::end(kModels)));
  auto path = testing::sharedPath(std::string("models/") + mc.file);
  if (!path) return;
  if (!testing::requirePython("numpy, onnxruntime", "for the ONNX Runtime reference (ort_reference.py)")) {
    return;
  }
  INFO("model " << mc.file);
  testing::TempDir tmp;
  const fs::path dirPath = tmp.path();
  std::string cmd = testing::python() + " '" + std::string(WHITTLE_SOURCE_DIR) + "/tests/runtime/ort_reference.py' '" +
                    *path + "' '" + dirPath.string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);

  auto model = onnx_io::load(*path);
  REQUIRE(model.isOk());
  for (int threads : {1, 2}) {
    runtime::SessionOptions options;
    options.threads = threads;
    auto session = runtime::Session::create(*model, options);
    INFO("threads " << threads);
    INFO(session.status().message());
    REQUIRE(session.isOk());
    std::vector<runtime::NamedTensor> feeds;
    for (int k = 0; fs::exists(dirPath / ("input_" + std::to_string(k) + ".npy")); ++k) {
      std::ifstream nameFile(dirPath / ("input_" + std::to_string(k) + ".name"));
      std::string name((std::istreambuf_iterator<char>(nameFile)), std::istreambuf_iterator<char>());
      auto t = data::readNpy((dirPath / ("input_" + std::to_string(k) + ".npy")).string());
      REQUIRE(t.isOk());
      feeds.emplace_back(name, std::move(t).value());
    }
    auto outputs = (*session)->run(feeds);
    INFO(outputs.status().message());
    REQUIRE(outputs.isOk());
    for (size_t k = 0; k < outputs->size(); ++k) {
      auto ref = data::readNpy((dirPath / ("output_" + std::to_string(k) + ".npy")).string());
      REQUIRE(ref.isOk());
      const ir::Tensor& ours = (*outputs)[k].second;
      INFO("output " << (*outputs)[k].first);
      REQUIRE(ours.dtype() == ref->dtype());
      REQUIRE(ours.dims() == ref->dims());
      double err = whittle::testing::maxRelativeError(ours, *ref);
      CAPTURE(err);
      CHECK(err <= mc.tolerance);
    }
  }
}
