// Shape rules of the ai.onnx.ml tree ensembles (src/ir/shape_inference_ml.cpp): the label and
// score outputs of TreeEnsembleClassifier, the float targets of TreeEnsembleRegressor.
#include <catch2/catch.hpp>

#include "ir/shape_test_util.h"

using namespace whittle;
using ir::DataType;
using testing::dims;
using testing::GraphBuilder;
using testing::intAttr;
using testing::ints;
using testing::typeOf;

TEST_CASE("TreeEnsembleClassifier and TreeEnsembleRegressor output types", "[ir][shape][ml]") {
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
  ir::Model model;
  testing::buildAndInfer(b, model, 17);
  CHECK(typeOf(intLabels[0]) == "int64[N]");
  CHECK(typeOf(intLabels[1]) == "float32[N,3]");
  CHECK(typeOf(stringLabels[0]) == "string[N]");
  CHECK(typeOf(stringLabels[1]) == "float32[N,2]");
  CHECK(typeOf(regressor) == "float32[N,2]");
  CHECK(typeOf(oneTarget) == "float32[N,1]");
}
