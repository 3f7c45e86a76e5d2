// Compress, Unique and CenterCropPad: against ONNX Runtime (vision_loss_ort_cases.py), on
// byte-moved dtypes and empty inputs, and the inputs they refuse.
#include <catch2/catch.hpp>

#include "kernels/cpu/vision_loss_test_util.h"

using namespace whittle;
using testing::floats;
using testing::int64s;
using testing::nodeError;

namespace {

ir::Tensor bools(std::vector<int64_t> dims, const std::vector<uint8_t>& v) {
  return ir::Tensor::fromVector<uint8_t>(ir::DataType::kBool, std::move(dims), v);
}

}  // namespace

TEST_CASE("Compress, Unique and CenterCropPad match ONNX Runtime", "[kernels][selection][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  CHECK(testing::checkOrtCases("compress_") == 2);
  CHECK(testing::checkOrtCases("unique_") == 4);
  CHECK(testing::checkOrtCases("centercroppad_") == 2);
}

TEST_CASE("Compress moves any fixed-size dtype", "[kernels][selection]") {
  ir::Tensor x = ir::Tensor::fromVector<uint16_t>(ir::DataType::kFloat16, {2, 3}, {1, 2, 3, 4, 5, 6});
  ir::Tensor y = testing::runOk("Compress", {{"x", x}, {"c", bools({3}, {1, 0, 1})}}, {ir::Attribute::makeInt("axis", 1)}, 11);
  REQUIRE(y.dims() == std::vector<int64_t>{2, 2});
  CHECK(std::vector<uint16_t>(y.data<uint16_t>(), y.data<uint16_t>() + 4) == std::vector<uint16_t>{1, 3, 4, 6});
}

TEST_CASE("Unique on an empty input gives empty outputs", "[kernels][selection]") {
  auto out = testing::runNode("Unique", {{"x", ir::Tensor(ir::DataType::kFloat, {0})}}, {}, 11, 1, 4);
  REQUIRE(out.isOk());
  for (const ir::Tensor& t : *out) CHECK(t.numel() == 0);
}

TEST_CASE("CenterCropPad crops and pads around the centre", "[kernels][selection]") {
  // [1, 2, 3, 4, 5] cropped to 2 starts at (5 - 2) / 2 = 1; padded to 8 starts at (8 - 5) / 2 = 1.
  ir::Tensor x = floats({5}, {1, 2, 3, 4, 5});
  CHECK(testing::tensorValues(testing::runOk("CenterCropPad", {{"x", x}, {"s", int64s({1}, {2}), true}}, {}, 18)) ==
        std::vector<double>{2, 3});
  CHECK(testing::tensorValues(testing::runOk("CenterCropPad", {{"x", x}, {"s", int64s({1}, {8}), true}}, {}, 18)) ==
        std::vector<double>{0, 1, 2, 3, 4, 5, 0, 0});
}

TEST_CASE("Compress, Unique and CenterCropPad refuse bad inputs, naming the node", "[kernels][selection]") {
  ir::Tensor x = floats({2, 2}, {1, 2, 3, 4});
  std::string e = nodeError("Compress", {{"x", x}, {"c", bools({3}, {0, 0, 1})}}, {ir::Attribute::makeInt("axis", 0)}, 11);
  CHECK_THAT(e, Catch::Contains("Compress 'node'") && Catch::Contains("condition is true at 2, past the axis of size 2"));
  e = nodeError("Compress", {{"x", x}, {"c", int64s({2}, {1, 0})}}, {}, 11);
  CHECK_THAT(e, Catch::Contains("condition must be bool"));
  e = nodeError("Compress", {{"x", x}, {"c", bools({1}, {1})}}, {ir::Attribute::makeInt("axis", 2)}, 11);
  CHECK_THAT(e, Catch::Contains("axis"));
  e = nodeError("Unique", {{"x", x}}, {ir::Attribute::makeInt("axis", -3)}, 11, 4);
  CHECK_THAT(e, Catch::Contains("Unique 'node'") && Catch::Contains("axis"));
  e = nodeError("CenterCropPad", {{"x", x}, {"s", int64s({1}, {2}), true}}, {}, 18);
  CHECK_THAT(e, Catch::Contains("CenterCropPad 'node'") && Catch::Contains("shape has 1 values for 2 axes"));
  e = nodeError("CenterCropPad", {{"x", x}, {"s", int64s({2}, {1, 1}), true}}, {ir::Attribute::makeInts("axes", {0, -2})}, 18);
  CHECK_THAT(e, Catch::Contains("axes repeats axis 0"));
}
