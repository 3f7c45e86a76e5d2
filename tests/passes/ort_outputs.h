#pragma once
// ONNX Runtime's outputs of a model a pass emitted, for the pass tests that check it there
// (tests/passes/quant_reference.py runall: all graph optimizations on, so QDQ groups run fused).

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "support/python.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::testing {

/// Every output of `model` run by ONNX Runtime on the named `feeds`.
inline std::vector<ir::Tensor> ortOutputs(const ir::Model& model, const std::vector<std::pair<std::string, ir::Tensor>>& feeds) {
  TempDir dir;
  REQUIRE(onnx_io::save(model, dir.file("m.onnx")).isOk());
  std::string cmd = python() + " " + shellQuote(std::string(WHITTLE_SOURCE_DIR) + "/tests/passes/quant_reference.py") +
                    " runall " + shellQuote(dir.file("m.onnx")) + " " + shellQuote(dir.path());
  for (size_t i = 0; i < feeds.size(); ++i) {
    const std::string file = dir.file("input_" + std::to_string(i) + ".npy");
    REQUIRE(data::writeNpy(feeds[i].second, file).isOk());
    cmd += " " + shellQuote(feeds[i].first + "=" + file);
  }
  REQUIRE(shell(cmd) == 0);
  std::vector<ir::Tensor> out;
  for (size_t k = 0; k < model.graph->outputs().size(); ++k) {
    auto y = data::readNpy(dir.file("output_" + std::to_string(k) + ".npy"));
    REQUIRE(y.isOk());
    out.push_back(*y);
  }
  return out;
}

/// The first output of a model with one input (not counting initializers listed as inputs) on `x`.
inline ir::Tensor ortOutput(const ir::Model& model, const ir::Tensor& x) {
  for (const ir::Value* in : model.graph->inputs()) {
    if (!in->isInitializer()) return ortOutputs(model, {{in->name(), x}})[0];
  }
  FAIL("the model has no input");
  return {};
}

}  // namespace whittle::testing
