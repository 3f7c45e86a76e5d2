// Shape rules of the sampling and detection ops, the losses, Det and Unique
// (src/ir/shape_inference_vision_loss.cpp): known and symbolic dims, constant shape inputs,
// and unknown dims where the data decides.
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::stringAttr;
using testing::typeOf;

TEST_CASE("Loss shapes: per element for reduction none, scalar otherwise, log_prob like the scores", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"N", "5", "H", "W"}));
  ir::Value* t = b.symbolicInput("t", DataType::kInt64, dims({"N", "H", "W"}));
  ir::Value* none = b.node("NegativeLogLikelihoodLoss", {x, t}, {stringAttr("reduction", "none")});
  ir::Value* mean = b.node("NegativeLogLikelihoodLoss", {x, t});
  std::vector<ir::Value*> sce = b.nodeN("SoftmaxCrossEntropyLoss", {x, t}, 2, {stringAttr("reduction", "sum")});
  ir::Model model;
  testing::buildAndInfer(b, model, 13);
  CHECK(typeOf(none) == "float32[N,H,W]");
  CHECK(typeOf(mean) == "float32[]");
  CHECK(typeOf(sce[0]) == "float32[]");
  CHECK(typeOf(sce[1]) == "float32[N,5,H,W]");
}

TEST_CASE("GridSample, AffineGrid, Col2Im, DeformConv, RoiAlign and NonMaxSuppression shapes", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kFloat, dims({"N", "8", "32", "32"}));
  ir::Value* grid = b.symbolicInput("g", DataType::kFloat, dims({"N", "16", "24", "2"}));
  ir::Value* sampled = b.node("GridSample", {x, grid});
  ir::Value* affine = b.node("AffineGrid", {b.input("theta", DataType::kFloat, {2, 3, 4}),
                                            b.constantInt64("size", {5}, {2, 3, 4, 5, 6})});
  ir::Value* col = b.node("Col2Im", {b.input("cols", DataType::kFloat, {1, 12, 9}), b.constantInt64("image", {2}, {5, 5}),
                                     b.constantInt64("block", {2}, {2, 2})});
  ir::Value* deform = b.node("DeformConv", {x, b.weight("w", {4, 8, 3, 3}), b.input("off", DataType::kFloat, {1, 18, 30, 30})});
  ir::Value* rois = b.symbolicInput("rois", DataType::kFloat, dims({"R", "4"}));
  ir::Value* pooled = b.node("RoiAlign", {x, rois, b.symbolicInput("bi", DataType::kInt64, dims({"R"}))},
                             {intAttr("output_height", 7), intAttr("output_width", 5)});
  ir::Value* kept = b.node("NonMaxSuppression", {b.input("boxes", DataType::kFloat, {1, 10, 4}),
                                                 b.input("scores", DataType::kFloat, {1, 3, 10})});
  ir::Model model;
  testing::buildAndInfer(b, model, 20);
  CHECK(typeOf(sampled) == "float32[N,8,16,24]");
  CHECK(typeOf(affine) == "float32[2,4,5,6,3]");
  CHECK(typeOf(col) == "float32[1,3,5,5]");
  CHECK(typeOf(deform) == "float32[N,4,30,30]");
  CHECK(typeOf(pooled) == "float32[R,8,7,5]");
  CHECK(typeOf(kept) == "int64[?,3]");
}

TEST_CASE("CenterCropPad, Det and Unique shapes", "[ir][shape]") {
  GraphBuilder b;
  ir::Value* img = b.symbolicInput("img", DataType::kFloat, dims({"H", "W", "3"}));
  ir::Value* cropped = b.node("CenterCropPad", {img, b.constantInt64("shape", {2}, {224, 200})}, {ints("axes", {0, -2})});
  ir::Value* det = b.node("Det", {b.symbolicInput("m", DataType::kFloat, dims({"B", "4", "4"}))});
  std::vector<ir::Value*> flat = b.nodeN("Unique", {b.input("u", DataType::kInt64, {2, 6})}, 4);
  std::vector<ir::Value*> rows = b.nodeN("Unique", {b.input("r", DataType::kFloat, {5, 3})}, 3, {intAttr("axis", 0)});
  ir::Model model;
  testing::buildAndInfer(b, model, 18);
  CHECK(typeOf(cropped) == "float32[224,200,3]");
  CHECK(typeOf(det) == "float32[B]");
  CHECK(typeOf(flat[0]) == "int64[?]");
  CHECK(typeOf(flat[2]) == "int64[12]");
  CHECK(typeOf(flat[3]) == "int64[?]");
  CHECK(typeOf(rows[0]) == "float32[?,3]");
  CHECK(typeOf(rows[2]) == "int64[5]");
}
