// Det and Shrink. ONNX Runtime 1.32 has no Det kernel on the CPU provider, so Det is checked
// against determinants worked out by hand (and numpy's, in the node tests); Shrink against
// ONNX Runtime on float32 and int32 (vision_loss_ort_cases.py).
#include <catch2/catch.hpp>

#include "kernels/cpu/vision_loss_test_util.h"

using namespace whittle;
using testing::floats;
using testing::nodeError;

TEST_CASE("Shrink matches ONNX Runtime", "[kernels][math_misc][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  CHECK(testing::checkOrtCases("shrink_") == 2);
}

TEST_CASE("Det of a batch of matrices, with pivoting, singular and float64", "[kernels][math_misc]") {
  // [[0, 1], [2, 3]] needs a row swap: det = -2. [[2, 0, 1], [1, 3, 2], [1, 1, 2]]: det = 6.
  // A singular 3x3 gives 0.
  ir::Tensor two = testing::runOk("Det", {{"x", floats({2, 2}, {0, 1, 2, 3})}}, {}, 11);
  CHECK(two.dims().empty());
  CHECK(two.data<float>()[0] == Approx(-2.0));
  ir::Tensor batch = testing::runOk("Det", {{"x", floats({2, 3, 3}, {2, 0, 1, 1, 3, 2, 1, 1, 2, 1, 2, 3, 2, 4, 6, 0, 1, 5})}}, {}, 11);
  REQUIRE(batch.dims() == std::vector<int64_t>{2});
  CHECK(batch.data<float>()[0] == Approx(6.0));
  CHECK(batch.data<float>()[1] == Approx(0.0).margin(1e-6));
  ir::Tensor d = testing::runOk("Det", {{"x", testing::makeTensor(ir::DataType::kDouble, {1, 1}, {-4.5})}}, {}, 11);
  CHECK(d.dtype() == ir::DataType::kDouble);
  CHECK(d.data<double>()[0] == -4.5);
}

TEST_CASE("Shrink on float16 widens and rounds back", "[kernels][math_misc]") {
  ir::Tensor x = testing::makeTensor(ir::DataType::kFloat16, {4}, {-2, -0.25, 0.25, 2});
  ir::Tensor y = testing::runOk("Shrink", {{"x", x}}, {ir::Attribute::makeFloat("lambd", 0.5F), ir::Attribute::makeFloat("bias", 0.5F)}, 9);
  CHECK(y.dtype() == ir::DataType::kFloat16);
  CHECK(testing::tensorValues(y) == std::vector<double>{-1.5, 0, 0, 1.5});
}

TEST_CASE("Det refuses non-square and integer inputs, naming the node", "[kernels][math_misc]") {
  std::string e = nodeError("Det", {{"x", floats({2, 3}, {1, 2, 3, 4, 5, 6})}}, {}, 11);
  CHECK_THAT(e, Catch::Contains("Det 'node'") && Catch::Contains("X must be [..., M, M], got [2,3]"));
  e = nodeError("Det", {{"x", testing::int64s({2, 2}, {1, 2, 3, 4})}}, {}, 11);
  CHECK_THAT(e, Catch::Contains("dtype int64 is not supported"));
}
