// Conv-dominated real models (../shared/models) on whittle's CPU runtime against ONNX Runtime:
// the reference outputs are computed at test time by tests/kernels/cpu/ort_reference.py on the
// same seeded random input. Skipped (with a warning) when the model, the test Python
// (WHITTLE_PYTHON) with onnxruntime, or a kernel for one of the model's ops is missing; under
// CI=true a missing model or Python fails instead.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>

#include "support/python.h"
#include "support/shared_data.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "support/tolerance.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/session.h"

using namespace whittle;

namespace {

struct ModelCase {
  const char* file;
  float lo, hi;  ///< input range after the model's preprocessing
};

}  // namespace

TEST_CASE("Conv models match ONNX Runtime within 1e-4", "[models][conv]") {
  const std::vector<ModelCase> cases = {{"models/squeezenet1.1.onnx", -123.0f, 151.0f},
                                        {"models/mobilenetv2-12-rebuilt-fp32.onnx", -2.1f, 2.6f}};
  for (const ModelCase& c : cases) {
    INFO(c.file);
    auto path = whittle::testing::sharedPath(c.file);
    if (!path) continue;
    auto model = onnx_io::load(*path);
    REQUIRE(model.isOk());
    bool registered = true;
    for (const ir::Node* n : model->graph->nodes()) {
      if (!runtime::KernelRegistry::cpu().has(n->domain(), n->opType())) {
        WARN("skipped " << c.file << ": no CPU kernel for " << n->opType() << " yet");
        registered = false;
        break;
      }
    }
    if (!registered) continue;
    runtime::SessionOptions options;
    auto session = runtime::Session::create(*model, options);
    INFO((session.isOk() ? std::string() : session.status().message()));
    REQUIRE(session.isOk());
    const ir::Value* in = (*session)->inputs()[0];
    std::vector<int64_t> dims;
    for (const ir::Dim& d : *in->type().shape) dims.push_back(d.isKnown() && d.value > 0 ? d.value : 1);
    ir::Tensor x(ir::DataType::kFloat, dims);
    std::mt19937 rng(2024);
    std::uniform_real_distribution<float> dist(c.lo, c.hi);
    for (int64_t i = 0; i < x.numel(); ++i) x.mutableData<float>()[i] = dist(rng);

    whittle::testing::TempDir dir;
    REQUIRE(data::writeNpy(x, dir.file("input.npy")).isOk());
    std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/kernels/cpu/ort_reference.py";
    if (!whittle::testing::requirePython("numpy, onnxruntime", "for the ONNX Runtime reference (ort_reference.py)")) {
      continue;
    }
    std::string command = whittle::testing::python() + " '" + script + "' '" + *path + "' '" + dir.path() + "' '" +
                          in->name() + "=" + dir.file("input.npy") + "'";
    std::string output;
    int rc = whittle::testing::shell(command, &output);
    INFO(command << "\n" << output);
    REQUIRE(rc == 0);
    for (int threads : {1, 2}) {
      options.threads = threads;
      auto s = runtime::Session::create(*model, options);
      REQUIRE(s.isOk());
      auto outputs = (*s)->run({{in->name(), x}});
      INFO((outputs.isOk() ? std::string() : outputs.status().message()));
      REQUIRE(outputs.isOk());
      for (size_t i = 0; i < outputs->size(); ++i) {
        auto expected = data::readNpy(dir.file("output_" + std::to_string(i) + ".npy"));
        REQUIRE(expected.isOk());
        const ir::Tensor& actual = (*outputs)[i].second;
        REQUIRE(actual.dims() == expected->dims());
        double err = whittle::testing::maxRelativeError(actual, *expected);
        INFO("output " << (*outputs)[i].first << " at " << threads << " threads: max relative error " << err);
        CHECK(err <= 1e-4);
      }
    }
  }
}
