#pragma once
// The ONNX Runtime cases of tests/kernels/cpu/vision_loss_ort_cases.py, shared by the tests of
// kernels/cpu/{loss,grid_sample,col2im_deform_conv,detection,einsum,selection,math_misc}.cpp:
// the script runs once per test process; each test checks the cases of its own ops.

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "support/kernel_harness.h"
#include "support/python.h"
#include "support/temp_dir.h"

namespace whittle::testing {

/// Every case of vision_loss_ort_cases.py (empty when the Python is missing outside CI).
inline const std::vector<ReferenceCase>& visionLossOrtCases() {
  static const std::vector<ReferenceCase> cases = [] {
    if (!requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return std::vector<ReferenceCase>{};
    TempDir dir;
    return referenceCases("tests/kernels/cpu/vision_loss_ort_cases.py", dir.path());
  }();
  return cases;
}

/// Runs the cases whose name starts with `prefix` at 1 and 2 threads and compares every output
/// with ONNX Runtime's: same dtype and dims, integers exact, floats within
/// |got - want| <= atol + rtol |want|. Returns how many cases it ran.
inline int checkOrtCases(const std::string& prefix, double rtol = 1e-5, double atol = 1e-5) {
  int count = 0;
  for (const ReferenceCase& c : visionLossOrtCases()) {
    if (c.name.rfind(prefix, 0) != 0) continue;
    ++count;
    CAPTURE(c.name);
    std::vector<runtime::NamedTensor> feeds;
    for (const ir::Value* in : c.model.graph->inputs()) feeds.emplace_back(in->name(), c.arrays.at(in->name()));
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      auto got = tryRunModel(c.model, feeds, threads);
      REQUIRE(got.isOk());
      for (size_t i = 0; i < got->size(); ++i) {
        CAPTURE(i);
        const ir::Tensor& want = c.arrays.at("out_" + std::to_string(i));
        const ir::Tensor& have = (*got)[i].second;
        REQUIRE(have.dtype() == want.dtype());
        REQUIRE(have.dims() == want.dims());
        std::vector<double> h = tensorValues(have), w = tensorValues(want);
        bool isFloat = want.dtype() == ir::DataType::kFloat || want.dtype() == ir::DataType::kDouble;
        int64_t bad = -1;
        for (size_t k = 0; k < w.size() && bad < 0; ++k) {
          bool ok = isFloat ? std::fabs(h[k] - w[k]) <= atol + rtol * std::fabs(w[k]) || (std::isnan(h[k]) && std::isnan(w[k]))
                            : h[k] == w[k];
          if (!ok) bad = static_cast<int64_t>(k);
        }
        INFO("first mismatch at " << bad << ": " << (bad >= 0 ? h[static_cast<size_t>(bad)] : 0.0) << " vs ONNX Runtime "
                                  << (bad >= 0 ? w[static_cast<size_t>(bad)] : 0.0));
        CHECK(bad < 0);
      }
    }
  }
  return count;
}

}  // namespace whittle::testing

namespace whittle::testing {

/// The error of running a one-node model that must fail (REQUIREs that it does).
inline std::string nodeError(const std::string& opType, const std::vector<NodeInput>& inputs,
                             const std::vector<ir::Attribute>& attributes, int64_t opset, size_t numOutputs = 1) {
  auto out = runNode(opType, inputs, attributes, opset, /*threads=*/1, numOutputs);
  REQUIRE_FALSE(out.isOk());
  return out.status().message();
}

/// A float32 tensor holding `values`.
inline ir::Tensor floats(std::vector<int64_t> dims, const std::vector<double>& values) {
  return makeTensor(ir::DataType::kFloat, std::move(dims), values);
}

/// An int64 tensor holding `values`.
inline ir::Tensor int64s(std::vector<int64_t> dims, const std::vector<int64_t>& values) {
  return ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, std::move(dims), values);
}

}  // namespace whittle::testing
