// Col2Im and DeformConv: against ONNX Runtime (strides, pads, dilations; groups, offset groups,
// mask and bias), DeformConv with zero offsets against Conv, Col2Im against a hand-written sum,
// and the inputs they refuse.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/cpu/vision_loss_test_util.h"

using namespace whittle;
using testing::floats;
using testing::int64s;
using testing::nodeError;

TEST_CASE("Col2Im and DeformConv match ONNX Runtime", "[kernels][col2im][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  CHECK(testing::checkOrtCases("col2im_") == 3);
  CHECK(testing::checkOrtCases("deformconv_") == 3);
}

TEST_CASE("DeformConv with zero offsets is Conv", "[kernels][col2im]") {
  std::mt19937 rng(7);
  ir::Tensor x = testing::randomTensor(rng, ir::DataType::kFloat, {2, 4, 6, 7});
  ir::Tensor w = testing::randomTensor(rng, ir::DataType::kFloat, {6, 2, 3, 3});
  ir::Tensor b = testing::randomTensor(rng, ir::DataType::kFloat, {6});
  std::vector<ir::Attribute> attrs = {ir::Attribute::makeInts("pads", {1, 0, 1, 2}), ir::Attribute::makeInts("strides", {2, 1}),
                                      ir::Attribute::makeInt("group", 2)};
  ir::Tensor conv = testing::runOk("Conv", {{"x", x}, {"w", w}, {"b", b}}, attrs, 19);
  REQUIRE(conv.dims() == std::vector<int64_t>{2, 6, 3, 7});
  ir::Tensor offset(ir::DataType::kFloat, {2, 2 * 9 * 2, 3, 7});
  attrs.push_back(ir::Attribute::makeInt("offset_group", 2));
  for (int threads : {1, 2}) {
    auto deform = testing::runNode("DeformConv", {{"x", x}, {"w", w}, {"off", offset}, {"b", b}}, attrs, 19, threads);
    REQUIRE(deform.isOk());
    std::vector<double> got = testing::tensorValues((*deform)[0]), want = testing::tensorValues(conv);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-5));
  }
}

TEST_CASE("Col2Im sums overlapping blocks into their pixels", "[kernels][col2im]") {
  // A 1x3 image, blocks of 2 with stride 1: two blocks, the middle pixel gets one value of each.
  ir::Tensor y = testing::runOk("Col2Im", {{"x", floats({1, 2, 2}, {1, 2, 10, 20})},
                                           {"image", int64s({2}, {1, 3}), true},
                                           {"block", int64s({2}, {1, 2}), true}}, {}, 18);
  REQUIRE(y.dims() == std::vector<int64_t>{1, 1, 1, 3});
  CHECK(testing::tensorValues(y) == std::vector<double>{1, 12, 20});
}

TEST_CASE("Col2Im and DeformConv refuse bad shapes, naming the node", "[kernels][col2im]") {
  std::string e = nodeError("Col2Im", {{"x", floats({1, 2, 3}, std::vector<double>(6, 1.0))},
                                       {"image", int64s({2}, {1, 3}), true},
                                       {"block", int64s({2}, {1, 2}), true}}, {}, 18);
  CHECK_THAT(e, Catch::Contains("Col2Im 'node'") && Catch::Contains("must be the number of blocks, 2"));
  e = nodeError("Col2Im", {{"x", floats({1, 3, 2}, std::vector<double>(6, 1.0))},
                           {"image", int64s({2}, {1, 3}), true}, {"block", int64s({2}, {1, 2}), true}}, {}, 18);
  CHECK_THAT(e, Catch::Contains("not a multiple of prod(block_shape)"));
  e = nodeError("Col2Im", {{"x", floats({1, 2, 2}, std::vector<double>(4, 1.0))},
                           {"image", int64s({2}, {1, 3}), true}, {"block", int64s({1}, {2}), true}}, {}, 18);
  CHECK_THAT(e, Catch::Contains("must have the same, non-zero length"));
  ir::Tensor x(ir::DataType::kFloat, {1, 1, 3, 3});
  ir::Tensor w(ir::DataType::kFloat, {1, 1, 2, 2});
  e = nodeError("DeformConv", {{"x", x}, {"w", w}, {"off", ir::Tensor(ir::DataType::kFloat, {1, 4, 2, 2})}}, {}, 19);
  CHECK_THAT(e, Catch::Contains("DeformConv 'node'") && Catch::Contains("offset has shape [1,4,2,2], expected [1,8,2,2]"));
  e = nodeError("DeformConv", {{"x", x}, {"w", w}, {"off", ir::Tensor(ir::DataType::kFloat, {1, 8, 2, 2})}},
                {ir::Attribute::makeInt("group", 2)}, 19);
  CHECK_THAT(e, Catch::Contains("do not agree with group 2"));
  e = nodeError("DeformConv", {{"x", x}, {"w", w}, {"off", ir::Tensor(ir::DataType::kFloat, {1, 8, 2, 2})},
                               {"b", ir::Tensor(ir::DataType::kFloat, {1})}, {"m", ir::Tensor(ir::DataType::kFloat, {1, 4, 3, 3})}},
                {}, 19);
  CHECK_THAT(e, Catch::Contains("mask has shape [1,4,3,3], expected [1,4,2,2]"));
}
