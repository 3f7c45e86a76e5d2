// Real quantized models on the CPU runtime against ONNX Runtime, whose outputs
// tests/kernels/cpu/ort_quant_reference.py computes at test time:
//  - mobilenetv2-12-int8 (QOperator: QLinearConv, QLinearAdd, QLinearGlobalAveragePool,
//    QLinearMatMul) on ImageNet sample images (and noise): within one output quantization step
//    of ONNX Runtime (in practice the same bytes), same top-1;
//  - mlperftiny_kws_dscnn_int8_qdq (QDQ: QuantizeLinear/DequantizeLinear around float Conv,
//    AveragePool, Gemm, Softmax) on KWS feature files, against ONNX Runtime running the graph as
//    written: within one int8 step, same top-1.
// Skips (a WARN) when ../shared or the test Python (WHITTLE_PYTHON) with onnx and onnxruntime
// is missing, unless CI=true.
#include <catch2/catch.hpp>


#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "support/python.h"
#include "support/shared_data.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/data/image.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/tensor_proto.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/session.h"

using namespace whittle;

namespace {

// The model's ops that the CPU runtime does not register yet ("" when all are there).
std::string missingOps(const ir::Model& model) {
  std::string missing;
  for (const ir::Node* n : model.graph->nodes()) {
    if (!runtime::KernelRegistry::cpu().has(n->domain(), n->opType()) && missing.find(n->opType()) == std::string::npos) {
      missing += (missing.empty() ? "" : ", ") + n->opType();
    }
  }
  return missing;
}

// Runs ort_quant_reference.py on the input_K.pb files of `dir`; false (after a WARN, or a FAIL
// under CI) when the test Python cannot import onnx and onnxruntime.
bool ortReference(const std::string& model, const std::string& dir, bool noOptimize) {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference (ort_quant_reference.py)")) {
    return false;
  }
  const std::string command = testing::python() + " " + std::string(WHITTLE_SOURCE_DIR) +
                              "/tests/kernels/cpu/ort_quant_reference.py '" + model + "' '" + dir + "'" +
                              (noOptimize ? " --no-optimize" : "");
  std::string output;
  const int rc = testing::shell(command, &output);
  INFO(output);
  REQUIRE(rc == 0);
  return true;
}

int64_t argmax(const ir::Tensor& t) {
  int64_t best = 0;
  for (int64_t i = 1; i < t.numel(); ++i) {
    if (t.valueAsDouble(i) > t.valueAsDouble(best)) best = i;
  }
  return best;
}

// An ImageNet sample image as the zoo's preprocessing makes it: centre crop 224 of the stored
// (short side 256) image, RGB / 255, mean/std normalised, NCHW.
std::optional<ir::Tensor> imageInput(const std::string& path) {
  auto image = data::decodeImage(path);
  if (!image.isOk()) return std::nullopt;
  auto crop = data::centerCrop(*image, 224, 224);
  if (!crop.isOk()) return std::nullopt;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
  ir::Tensor t(ir::DataType::kFloat, {1, 3, 224, 224});
  float* x = t.mutableData<float>();
  for (int c = 0; c < 3; ++c) {
    for (int p = 0; p < 224 * 224; ++p) {
      x[c * 224 * 224 + p] = (static_cast<float>(crop->pixels[static_cast<size_t>(p * crop->channels + c)]) / 255.0f - mean[c]) / stdev[c];
    }
  }
  return t;
}

struct Comparison {
  double maxAbsDiff = 0;
  int top1Agree = 0;
  int count = 0;
};

// Runs the model on every input_K.pb of `dir` and compares with output_K.pb.
Comparison compareWithReference(const ir::Model& model, const std::string& dir) {
  auto session = runtime::Session::create(model);
  INFO((session.isOk() ? std::string() : session.status().message()));
  REQUIRE(session.isOk());
  Comparison c;
  for (int k = 0; std::filesystem::exists(dir + "/input_" + std::to_string(k) + ".pb"); ++k) {
    auto x = onnx_io::readTensorFile(dir + "/input_" + std::to_string(k) + ".pb");
    auto expected = onnx_io::readTensorFile(dir + "/output_" + std::to_string(k) + ".pb");
    REQUIRE(x.isOk());
    REQUIRE(expected.isOk());
    auto out = (*session)->run({{(*session)->inputs()[0]->name(), *x}});
    INFO((out.isOk() ? std::string() : out.status().message()));
    REQUIRE(out.isOk());
    const ir::Tensor& y = (*out)[0].second;
    REQUIRE(y.dtype() == expected->dtype());
    REQUIRE(y.dims() == expected->dims());
    for (int64_t i = 0; i < y.numel(); ++i) c.maxAbsDiff = std::max(c.maxAbsDiff, std::fabs(y.valueAsDouble(i) - expected->valueAsDouble(i)));
    c.top1Agree += argmax(y) == argmax(*expected) ? 1 : 0;
    ++c.count;
  }
  return c;
}

}  // namespace

TEST_CASE("mobilenetv2-12-int8 matches ONNX Runtime", "[models][quant]") {
  auto path = testing::sharedPath("models/mobilenetv2-12-int8.onnx");
  if (!path) return;
  auto model = onnx_io::load(*path);
  REQUIRE(model.isOk());
  if (std::string missing = missingOps(*model); !missing.empty()) {
    WARN("skipped: ops not registered yet: " << missing);
    return;
  }
  testing::TempDir dir;
  int k = 0;
  for (const char* image : {"n01440764_tench.JPEG", "n01443537_goldfish.JPEG"}) {
    auto imagePath = testing::sharedPath(std::string("data/imagenet-sample/images/") + image);
    if (!imagePath) continue;
    auto x = imageInput(*imagePath);
    if (!x) continue;
    REQUIRE(onnx_io::writeTensorFile(*x, "input", dir.file("input_" + std::to_string(k++) + ".pb")).isOk());
  }
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  ir::Tensor noise(ir::DataType::kFloat, {1, 3, 224, 224});
  for (int64_t i = 0; i < noise.numel(); ++i) noise.mutableData<float>()[i] = normal(rng);
  REQUIRE(onnx_io::writeTensorFile(noise, "input", dir.file("input_" + std::to_string(k++) + ".pb")).isOk());
  if (!ortReference(*path, dir.path(), /*noOptimize=*/false)) return;
  Comparison c = compareWithReference(*model, dir.path());
  INFO("max |whittle - onnxruntime| = " << c.maxAbsDiff << " over " << c.count << " inputs");
  CHECK(c.maxAbsDiff <= 0.16014458 + 1e-6);  // the output's quantization step
  CHECK(c.top1Agree == c.count);
}

TEST_CASE("mlperftiny_kws_dscnn_int8_qdq matches ONNX Runtime", "[models][quant]") {
  auto path = testing::sharedPath("models/mlperftiny_kws_dscnn_int8_qdq.onnx");
  if (!path) return;
  auto folder = testing::sharedPath("data/kws-1000");
  if (!folder) return;
  auto model = onnx_io::load(*path);
  REQUIRE(model.isOk());
  if (std::string missing = missingOps(*model); !missing.empty()) {
    WARN("skipped: ops not registered yet: " << missing);
    return;
  }
  testing::TempDir dir;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(*folder)) {
    if (entry.path().extension() == ".bin") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  files.resize(std::min<size_t>(files.size(), 4));
  for (size_t k = 0; k < files.size(); ++k) {
    ir::Tensor x(ir::DataType::kInt8, {1, 49, 10, 1});
    std::ifstream in(files[k], std::ios::binary);
    in.read(reinterpret_cast<char*>(x.mutableRawData()), 490);
    REQUIRE(in.gcount() == 490);
    REQUIRE(onnx_io::writeTensorFile(x, "input_1", dir.file("input_" + std::to_string(k) + ".pb")).isOk());
  }
  // ONNX Runtime without graph optimizations runs the float ops between Q and DQ as whittle does.
  if (!ortReference(*path, dir.path(), /*noOptimize=*/true)) return;
  Comparison c = compareWithReference(*model, dir.path());
  INFO("max |whittle - onnxruntime| = " << c.maxAbsDiff << " int8 steps over " << c.count << " inputs");
  CHECK(c.maxAbsDiff <= 1.0);
  CHECK(c.top1Agree == c.count);
}
