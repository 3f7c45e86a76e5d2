// DFT, STFT, the windows and MelWeightMatrix (kernels/cpu/signal.cpp): ONNX Runtime's outputs
// (opset 17 and 20 DFT, forward and inverse, one- and two-sided, padded and cut lengths), the
// inverse one-sided DFT against numpy's irfft, and the errors for bad input.
#include <cmath>
#include <numbers>

#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;

namespace {
ir::Tensor scalarInt(int64_t v) {
  return ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {}, {v});
}
ir::Tensor scalarFloat(float v) {
  return ir::Tensor::fromVector<float>(ir::DataType::kFloat, {}, {v});
}
}  // namespace

TEST_CASE("DFT, STFT, windows and MelWeightMatrix match ONNX Runtime", "[kernels][signal][ort]") {
  whittle::testing::checkOrtCases("signal", 41);
}

TEST_CASE("an inverse one-sided DFT is numpy's irfft", "[kernels][signal]") {
  // X = rfft([1, 2, 3, 4]) = [10, -2+2i, -2]; irfft gives the signal back (n = 4, the default).
  ir::Tensor x = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1, 3, 2}, {10, 0, -2, 2, -2, 0});
  ir::Attribute inverse = ir::Attribute::makeInt("inverse", 1), onesided = ir::Attribute::makeInt("onesided", 1);
  auto y = runDomainNode("", 20, "DFT", {x, ir::Tensor(), scalarInt(1)}, {inverse, onesided});
  REQUIRE(y.isOk());
  REQUIRE((*y)[0].dims() == std::vector<int64_t>{1, 4, 1});
  for (int i = 0; i < 4; ++i) CHECK((*y)[0].data<float>()[i] == Approx(i + 1).margin(1e-5));
}

TEST_CASE("signal ops refuse bad input naming the node", "[kernels][signal]") {
  ir::Tensor x3 = ir::Tensor(ir::DataType::kFloat, {1, 4, 3});
  CHECK_THAT(failureOf(runDomainNode("", 20, "DFT", {x3}, {})),
             Catch::Contains("DFT 'node'") && Catch::Contains("must be 1 (real) or 2 (complex)"));
  ir::Tensor x = ir::Tensor(ir::DataType::kFloat, {1, 4, 1});
  CHECK_THAT(failureOf(runDomainNode("", 20, "DFT", {x, ir::Tensor(), scalarInt(2)}, {})),
             Catch::Contains("axis 2 is out of range"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "DFT", {x, scalarInt(0)}, {})),
             Catch::Contains("dft_length must be positive"));
  ir::Tensor xi = ir::Tensor(ir::DataType::kInt32, {1, 4, 1});
  CHECK_THAT(failureOf(runDomainNode("", 20, "DFT", {xi}, {})), Catch::Contains("float32 and float64"));
  CHECK_THAT(failureOf(runDomainNode("", 17, "STFT", {ir::Tensor(ir::DataType::kFloat, {4}), scalarInt(2)}, {})),
             Catch::Contains("STFT 'node'") && Catch::Contains("[batch, length, 1 or 2] or [batch, length]"));
  CHECK_THAT(failureOf(runDomainNode("", 17, "STFT", {ir::Tensor(ir::DataType::kFloat, {1, 8, 3}), scalarInt(2)}, {})),
             Catch::Contains("[batch, length, 1 or 2] or [batch, length]"));
  CHECK_THAT(failureOf(runDomainNode("", 17, "STFT", {ir::Tensor(ir::DataType::kFloat, {1, 8, 1}), scalarInt(0)}, {})),
             Catch::Contains("frame_step must be positive"));
  CHECK_THAT(failureOf(runDomainNode("", 17, "HannWindow", {scalarInt(-1)}, {})),
             Catch::Contains("must not be negative"));
  CHECK_THAT(
      failureOf(runDomainNode("", 17, "HammingWindow", {scalarInt(4)}, {ir::Attribute::makeInt("output_datatype", 8)})),
      Catch::Contains("not a numeric dtype"));
  CHECK_THAT(
      failureOf(runDomainNode("", 17, "MelWeightMatrix",
                              {scalarInt(8), scalarInt(16), scalarInt(8000), scalarFloat(0), scalarFloat(5000)}, {})),
      Catch::Contains("upper_edge_hertz <= sample_rate / 2"));
}
