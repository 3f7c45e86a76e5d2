// Shape rules of the ai.onnx.ml model ops (src/ir/shape_inference_ml.cpp): the label and score
// outputs of TreeEnsembleClassifier and SVMClassifier, the float targets of the regressors.
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::typeOf;

TEST_CASE("tree ensemble, SVM, LinearRegressor and Scaler output types", "[ir][shape][ml]") {
  ir::Attribute labels;
  labels.name = "classlabels_strings";
  labels.kind = ir::Attribute::Kind::kStrings;
  labels.strings = {"no", "yes"};
  GraphBuilder b;
  ir::Value* x = b.symbolicInput("x", DataType::kDouble, dims({"N", "4"}));
  auto intLabels = b.nodeN("TreeEnsembleClassifier", {x}, 2, {ints("classlabels_int64s", {3, 5, 7})}, "", "ai.onnx.ml");
  auto stringLabels = b.nodeN("TreeEnsembleClassifier", {x}, 2,
                              {labels}, "", "ai.onnx.ml");
  ir::Value* regressor = b.node("TreeEnsembleRegressor", {x}, {intAttr("n_targets", 2)}, "", "ai.onnx.ml");
  ir::Value* oneTarget = b.node("TreeEnsembleRegressor", {x}, {}, "", "ai.onnx.ml");
  auto votes = b.nodeN("SVMClassifier", {x}, 2, {ints("classlabels_ints", {1, 2, 3, 4}),
                                                 ints("vectors_per_class", {1, 1, 1, 1})}, "", "ai.onnx.ml");
  auto linear = b.nodeN("SVMClassifier", {x}, 2, {ints("classlabels_ints", {1, 2, 3, 4})}, "", "ai.onnx.ml");
  ir::Value* svr = b.node("SVMRegressor", {x}, {}, "", "ai.onnx.ml");
  ir::Value* linearRegressor = b.node("LinearRegressor", {x}, {intAttr("targets", 3)}, "", "ai.onnx.ml");
  ir::Value* scaler = b.node("Scaler", {x}, {}, "", "ai.onnx.ml");
  ir::Model model;
  testing::buildAndInfer(b, model, 17);
  CHECK(typeOf(intLabels[0]) == "int64[N]");
  CHECK(typeOf(intLabels[1]) == "float32[N,3]");
  CHECK(typeOf(stringLabels[0]) == "string[N]");
  CHECK(typeOf(stringLabels[1]) == "float32[N,2]");
  CHECK(typeOf(regressor) == "float32[N,2]");
  CHECK(typeOf(oneTarget) == "float32[N,1]");
  CHECK(typeOf(votes[0]) == "int64[N]");
  CHECK(typeOf(votes[1]) == "float32[N,6]");  // one decision value per pair of 4 classes
  CHECK(typeOf(linear[1]) == "float32[N,4]");
  CHECK(typeOf(svr) == "float32[N,1]");
  CHECK(typeOf(linearRegressor) == "float32[N,3]");
  CHECK(typeOf(scaler) == "float32[N,4]");
}
