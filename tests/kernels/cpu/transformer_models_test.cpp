// The shared MiniLM classifier fused by ONNX Runtime's transformer tools (optimize_model with
// model_type bert: SkipLayerNormalization, BiasGelu; an ORT CPU session at ORT_ENABLE_EXTENDED:
// FusedMatMul, BiasGelu), run by whittle against ONNX Runtime on CLINC150 sentences; then
// -O2 on the fused files keeps the outputs, and quantize-dynamic leaves the com.microsoft ops
// float. tests/kernels/cpu/transformer_fuse_models.py writes the files and ORT's outputs.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "support/kernel_harness.h"
#include "support/python.h"
#include "support/shared_data.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/optimize.h"

namespace whittle {
namespace {

using testing::relativeError;

size_t countMicrosoft(const ir::Model& m, const std::string& op) {
  size_t n = 0;
  for (const ir::Node* node : m.graph->nodes()) n += node->domain() == "com.microsoft" && node->opType() == op;
  return n;
}

TEST_CASE("MiniLM fused by ONNX Runtime's transformer tools runs in whittle as in ONNX Runtime",
          "[kernels][transformer][ort][models]") {
  auto model = testing::sharedPath("models/all-MiniLM-L6-v2-intent157.onnx");
  if (!model) return;
  auto data = testing::sharedPath("data/clinc150/test.npz");
  if (!data) return;
  if (!testing::requirePython("numpy, onnx, onnxruntime, sympy",
                              "for onnxruntime.transformers.optimizer (it needs sympy)")) {
    return;
  }
  testing::TempDir dir;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/kernels/cpu/transformer_fuse_models.py";
  std::string output;
  const std::string command = testing::python() + " " + testing::shellQuote(script) + " " +
                              testing::shellQuote(*model) + " " + testing::shellQuote(dir.path()) + " " +
                              testing::shellQuote(*data) + " 8 bert 12 384";
  int rc = testing::shell(command, &output);
  INFO(command << "\n" << output);
  REQUIRE(rc == 0);

  for (const std::string name : {"optimizer", "ort_level2"}) {
    CAPTURE(name);
    const std::string path = dir.path() + "/" + name + ".onnx";
    auto fused = onnx_io::load(path);
    REQUIRE(fused.isOk());
    if (name == "optimizer") {
      CHECK(countMicrosoft(*fused, "SkipLayerNormalization") == 12);
      CHECK(countMicrosoft(*fused, "BiasGelu") == 6);
    } else {
      CHECK(countMicrosoft(*fused, "FusedMatMul") == 6);
      CHECK(countMicrosoft(*fused, "BiasGelu") == 6);
    }
    auto npz = data::readNpz(dir.path() + "/" + name + ".npz");
    REQUIRE(npz.isOk());
    std::map<std::string, ir::Tensor> stored(npz->begin(), npz->end());
    const auto* arrays = &stored;
    std::vector<runtime::NamedTensor> feeds;
    for (const ir::Value* in : fused->graph->inputs()) feeds.emplace_back(in->name(), arrays->at(in->name()));

    auto base = testing::runModel(*fused, feeds, 2);
    for (const auto& [out, got] : base) {
      CAPTURE(out);
      const ir::Tensor& expected = arrays->at("expected_" + out);
      REQUIRE(got.dims() == expected.dims());
      CHECK(relativeError(got, expected) < 1e-4);
    }

    // -O2 on the fused model: exact rewrites only, so the outputs stay (1e-5 relative).
    OptimizeRequest o2;
    o2.inputPath = path;
    o2.level = 2;
    auto optimized = optimize(o2);
    INFO((optimized.isOk() ? std::string() : optimized.status().message()));
    REQUIRE(optimized.isOk());
    auto after = testing::runModel(optimized->model, feeds, 2);
    REQUIRE(after.size() == base.size());
    for (size_t i = 0; i < base.size(); ++i) {
      CAPTURE(base[i].first);
      CHECK(relativeError(after[i].second, base[i].second) < 1e-5);
    }

    // quantize-dynamic quantizes the MatMul weights and leaves the com.microsoft ops float.
    OptimizeRequest q;
    q.inputPath = path;
    q.level = 2;
    q.quantize.mode = QuantizeMode::kDynamic;
    auto quantized = optimize(q);
    INFO((quantized.isOk() ? std::string() : quantized.status().message()));
    REQUIRE(quantized.isOk());
    CHECK(countMicrosoft(quantized->model, "BiasGelu") == 6);
    size_t integerMatMuls = 0;
    for (const ir::Node* n : quantized->model.graph->nodes()) integerMatMuls += n->opType() == "MatMulInteger";
    CHECK(integerMatMuls >= 36);
    auto qout = testing::runModel(quantized->model, feeds, 2);
    for (const auto& [out, got] : qout) {
      if (out != "logits") continue;
      // Top-1 agrees with the float model on most of the 8 sentences.
      const ir::Tensor& ref = arrays->at("expected_logits");
      const int64_t classes = ref.dims()[1];
      int agree = 0;
      for (int64_t b = 0; b < ref.dims()[0]; ++b) {
        int64_t bestRef = 0, bestGot = 0;
        for (int64_t c = 1; c < classes; ++c) {
          if (ref.valueAsDouble(b * classes + c) > ref.valueAsDouble(b * classes + bestRef)) bestRef = c;
          if (got.valueAsDouble(b * classes + c) > got.valueAsDouble(b * classes + bestGot)) bestGot = c;
        }
        agree += bestRef == bestGot;
      }
      CHECK(agree >= 7);
    }
  }
}

}  // namespace
}  // namespace whittle
