// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: against ONNX Runtime over ranks 2 to 4,
// every reduction, with and without weights and ignore_index, float32 and float64
// (vision_loss_ort_cases.py); a hand-computed case; and the inputs they refuse.
#include <catch2/catch.hpp>

#include "kernels/cpu/vision_loss_test_util.h"

using namespace whittle;
using testing::floats;
using testing::int64s;
using testing::nodeError;

TEST_CASE("NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss match ONNX Runtime", "[kernels][loss][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  CHECK(testing::checkOrtCases("loss_nll_") == 72);
  CHECK(testing::checkOrtCases("loss_sce_") == 72);
}

TEST_CASE("NegativeLogLikelihoodLoss weighs the mean by the weights of the kept targets", "[kernels][loss]") {
  ir::Tensor x = floats({3, 3}, {-1, -2, -3, -4, -5, -6, -7, -8, -9});
  ir::Tensor t = int64s({3}, {2, 0, 1});
  ir::Tensor w = floats({3}, {1, 2, 3});
  // Kept: 3 * 3 = 9 and -(-4) * 1 = 4; the last target (1) is ignored.
  ir::Tensor mean = testing::runOk("NegativeLogLikelihoodLoss", {{"x", x}, {"t", t}, {"w", w}},
                                   {ir::Attribute::makeInt("ignore_index", 1)}, 13);
  REQUIRE(mean.dims().empty());
  CHECK(mean.data<float>()[0] == Approx(13.0 / 4.0));
  ir::Tensor none = testing::runOk("NegativeLogLikelihoodLoss", {{"x", x}, {"t", t}, {"w", w}},
                                   {ir::Attribute::makeString("reduction", "none"), ir::Attribute::makeInt("ignore_index", 1)}, 13);
  CHECK(testing::tensorValues(none) == std::vector<double>{9, 4, 0});
}

TEST_CASE("The losses refuse bad targets, shapes and reductions, naming the node", "[kernels][loss]") {
  ir::Tensor x = floats({2, 3}, {0, 0, 0, 0, 0, 0});
  std::string e = nodeError("NegativeLogLikelihoodLoss", {{"x", x}, {"t", int64s({2}, {0, 3})}}, {}, 13);
  CHECK_THAT(e, Catch::Contains("NegativeLogLikelihoodLoss 'node'") && Catch::Contains("outside [0, 3)"));
  e = nodeError("SoftmaxCrossEntropyLoss", {{"x", x}, {"t", int64s({3}, {0, 1, 2})}}, {}, 13, 2);
  CHECK_THAT(e, Catch::Contains("SoftmaxCrossEntropyLoss 'node'") && Catch::Contains("target has shape [3]"));
  e = nodeError("NegativeLogLikelihoodLoss", {{"x", x}, {"t", int64s({2}, {0, 1})}, {"w", floats({2}, {1, 1})}}, {}, 13);
  CHECK_THAT(e, Catch::Contains("weight has shape [2], expected [3]"));
  e = nodeError("NegativeLogLikelihoodLoss", {{"x", x}, {"t", int64s({2}, {0, 1})}},
                {ir::Attribute::makeString("reduction", "avg")}, 13);
  CHECK_THAT(e, Catch::Contains("reduction must be 'none', 'sum' or 'mean', got 'avg'"));
  e = nodeError("NegativeLogLikelihoodLoss", {{"x", floats({3}, {0, 0, 0})}, {"t", int64s({3}, {0, 0, 0})}}, {}, 13);
  CHECK_THAT(e, Catch::Contains("input must have rank >= 2"));
}
