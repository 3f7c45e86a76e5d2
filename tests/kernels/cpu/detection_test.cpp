// RoiAlign and NonMaxSuppression: against ONNX Runtime (avg and max, both coordinate modes,
// adaptive and fixed sampling; corner and centre boxes, with and without score_threshold, ties,
// flipped corners), hand-checked suppression, empty inputs (no rois, no boxes, no output
// budget) and the inputs they refuse.
#include <catch2/catch.hpp>

#include "kernels/cpu/vision_loss_test_util.h"

using namespace whittle;
using testing::floats;
using testing::int64s;
using testing::nodeError;

TEST_CASE("RoiAlign and NonMaxSuppression match ONNX Runtime", "[kernels][detection][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  CHECK(testing::checkOrtCases("roialign_") == 9);
  CHECK(testing::checkOrtCases("nms_") == 6);
}

namespace {

std::vector<int64_t> nms(const ir::Tensor& boxes, const ir::Tensor& scores, int64_t maxOut, float iou,
                         std::vector<ir::Attribute> attrs = {}) {
  ir::Tensor y = testing::runOk("NonMaxSuppression", {{"boxes", boxes}, {"scores", scores},
                                                      {"max", int64s({1}, {maxOut}), true},
                                                      {"iou", floats({1}, {iou}), true}}, attrs, 11);
  REQUIRE(y.rank() == 2);
  REQUIRE(y.dims()[1] == 3);
  return {y.data<int64_t>(), y.data<int64_t>() + y.numel()};
}

}  // namespace

TEST_CASE("NonMaxSuppression keeps the best box of each overlapping cluster per class", "[kernels][detection]") {
  // Boxes 0 and 1 overlap (IoU 0.81); box 2 stands apart.
  ir::Tensor boxes = floats({1, 3, 4}, {0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30});
  ir::Tensor scores = floats({1, 2, 3}, {0.6, 0.9, 0.3, 0.5, 0.1, 0.7});
  CHECK(nms(boxes, scores, 10, 0.5F) == std::vector<int64_t>{0, 0, 1, 0, 0, 2, 0, 1, 2, 0, 1, 0});
  CHECK(nms(boxes, scores, 1, 0.5F) == std::vector<int64_t>{0, 0, 1, 0, 1, 2});
  CHECK(nms(boxes, scores, 10, 0.9F).size() == 3 * 6);  // nothing suppressed
  CHECK(nms(boxes, scores, 0, 0.5F).empty());          // no budget
  CHECK(nms(ir::Tensor(ir::DataType::kFloat, {2, 0, 4}), ir::Tensor(ir::DataType::kFloat, {2, 3, 0}), 5, 0.5F).empty());
}

TEST_CASE("RoiAlign gives an empty output for no rois", "[kernels][detection]") {
  ir::Tensor y = testing::runOk("RoiAlign", {{"x", ir::Tensor(ir::DataType::kFloat, {1, 3, 8, 8})},
                                             {"rois", ir::Tensor(ir::DataType::kFloat, {0, 4})},
                                             {"bi", ir::Tensor(ir::DataType::kInt64, {0})}},
                                {ir::Attribute::makeInt("output_height", 2), ir::Attribute::makeInt("output_width", 3)}, 16);
  CHECK(y.dims() == std::vector<int64_t>{0, 3, 2, 3});
}

TEST_CASE("RoiAlign averages a constant image to that constant", "[kernels][detection]") {
  ir::Tensor x = floats({1, 1, 6, 6}, std::vector<double>(36, 2.5));
  ir::Tensor y = testing::runOk("RoiAlign", {{"x", x}, {"rois", floats({2, 4}, {0, 0, 5, 5, 1, 2, 3, 4})},
                                             {"bi", int64s({2}, {0, 0})}},
                                {ir::Attribute::makeInt("output_height", 2), ir::Attribute::makeInt("output_width", 2)}, 16);
  for (double v : testing::tensorValues(y)) CHECK(v == Approx(2.5));
}

TEST_CASE("RoiAlign and NonMaxSuppression refuse bad inputs, naming the node", "[kernels][detection]") {
  ir::Tensor x(ir::DataType::kFloat, {1, 1, 4, 4});
  std::string e = nodeError("RoiAlign", {{"x", x}, {"rois", floats({1, 4}, {0, 0, 1, 1})}, {"bi", int64s({1}, {1})}}, {}, 16);
  CHECK_THAT(e, Catch::Contains("RoiAlign 'node'") && Catch::Contains("batch index 1 is outside [0, 1)"));
  e = nodeError("RoiAlign", {{"x", x}, {"rois", floats({1, 3}, {0, 0, 1})}, {"bi", int64s({1}, {0})}}, {}, 16);
  CHECK_THAT(e, Catch::Contains("rois must be [num_rois, 4]"));
  e = nodeError("RoiAlign", {{"x", x}, {"rois", floats({1, 4}, {0, 0, 1, 1})}, {"bi", int64s({1}, {0})}},
                {ir::Attribute::makeString("mode", "sum")}, 16);
  CHECK_THAT(e, Catch::Contains("mode must be 'avg' or 'max'"));
  e = nodeError("NonMaxSuppression", {{"boxes", floats({2, 4}, std::vector<double>(8, 0.0))},
                                      {"scores", floats({1, 1, 2}, {0, 0})}}, {}, 11);
  CHECK_THAT(e, Catch::Contains("NonMaxSuppression 'node'") && Catch::Contains("boxes must be [batch, spatial, 4]"));
  e = nodeError("NonMaxSuppression", {{"boxes", floats({1, 2, 4}, std::vector<double>(8, 0.0))},
                                      {"scores", floats({1, 1, 3}, {0, 0, 0})}}, {}, 11);
  CHECK_THAT(e, Catch::Contains("scores must be [batch, classes, spatial]"));
  e = nodeError("NonMaxSuppression", {{"boxes", floats({1, 2, 4}, std::vector<double>(8, 0.0))},
                                      {"scores", floats({1, 1, 2}, {0, 0})}, {"max", int64s({1}, {3})},
                                      {"iou", floats({1}, {1.5})}}, {}, 11);
  CHECK_THAT(e, Catch::Contains("iou_threshold must be in [0, 1]"));
}
