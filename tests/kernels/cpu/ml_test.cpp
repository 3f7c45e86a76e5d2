// The ai.onnx.ml ops (kernels/cpu/ml.cpp): LabelEncoder, TreeEnsemble, ArrayFeatureExtractor,
// Binarizer, LinearClassifier and Normalizer against ONNX Runtime, and the errors for bad input.
#include <cmath>

#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;
using whittle::testing::stringsAttr;

TEST_CASE("ai.onnx.ml ops match ONNX Runtime", "[kernels][ml][ort]") {
  whittle::testing::checkOrtCases("ml", 21);
}

TEST_CASE("TreeEnsemble's post transforms follow the spec's numbering", "[kernels][ml]") {
  // One stump: x <= 0 gives leaf 0 (target 0, weight 1), else leaf 1 (target 1, weight 2).
  ir::Tensor x = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1, 1}, {-1.0f});
  ir::Tensor leaf = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2}, {1, 2});
  ir::Tensor split = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1}, {0.0f});
  ir::Tensor modes = ir::Tensor::fromVector<uint8_t>(ir::DataType::kUint8, {1}, {0});
  auto run = [&](int64_t post) {
    std::vector<ir::Attribute> tree = {
        ir::Attribute::makeInts("nodes_featureids", {0}), ir::Attribute::makeTensor("nodes_modes", modes),
        ir::Attribute::makeTensor("nodes_splits", split), ir::Attribute::makeInts("nodes_truenodeids", {0}),
        ir::Attribute::makeInts("nodes_trueleafs", {1}),  ir::Attribute::makeInts("nodes_falsenodeids", {1}),
        ir::Attribute::makeInts("nodes_falseleafs", {1}), ir::Attribute::makeInts("leaf_targetids", {0, 1}),
        ir::Attribute::makeTensor("leaf_weights", leaf),  ir::Attribute::makeInts("tree_roots", {0}),
        ir::Attribute::makeInt("n_targets", 2),           ir::Attribute::makeInt("post_transform", post)};
    auto y = runDomainNode("ai.onnx.ml", 5, "TreeEnsemble", {x}, tree);
    REQUIRE(y.isOk());
    return std::pair<double, double>((*y)[0].data<float>()[0], (*y)[0].data<float>()[1]);
  };
  auto none = run(0);
  CHECK(none.first == 1.0);
  CHECK(none.second == 0.0);
  auto softmax = run(1);
  CHECK(softmax.first == Approx(std::exp(1.0) / (std::exp(1.0) + 1.0)));
  auto logistic = run(2);
  CHECK(logistic.first == Approx(1.0 / (1.0 + std::exp(-1.0))));
  CHECK(logistic.second == Approx(0.5));
}

TEST_CASE("ai.onnx.ml ops refuse bad input naming the node", "[kernels][ml]") {
  const std::string ml = "ai.onnx.ml";
  ir::Tensor s = ir::Tensor::strings({2}, {"a", "b"});
  CHECK_THAT(failureOf(runDomainNode(
                 ml, 4, "LabelEncoder", {s},
                 {stringsAttr("keys_strings", {"a", "b"}), ir::Attribute::makeInts("values_int64s", {1})})),
             Catch::Contains("LabelEncoder 'node'") && Catch::Contains("differ in length"));
  ir::Tensor i = ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {1}, {1});
  CHECK_THAT(
      failureOf(runDomainNode(ml, 4, "LabelEncoder", {i},
                              {stringsAttr("keys_strings", {"a"}), ir::Attribute::makeInts("values_int64s", {1})})),
      Catch::Contains("does not match the keys' dtype"));
  ir::Tensor x = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2, 3}, {1, 2, 3, 4, 5, 6});
  std::vector<ir::Attribute> linear = {ir::Attribute::makeFloats("coefficients", {1, 2, 3, 4}),
                                       ir::Attribute::makeFloats("intercepts", {0, 0}),
                                       ir::Attribute::makeInts("classlabels_ints", {0, 1})};
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "LinearClassifier", {x}, linear, 2)),
             Catch::Contains("LinearClassifier 'node'") &&
                 Catch::Contains("X has 3 features; the coefficients hold 2 per class"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "Normalizer", {x}, {ir::Attribute::makeString("norm", "L3")})),
             Catch::Contains("norm must be MAX, L1 or L2"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "ArrayFeatureExtractor",
                                     {x, ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {1}, {3})}, {})),
             Catch::Contains("index 3 is out of range"));
  ir::Tensor leaf = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2}, {1, 2});
  ir::Tensor split = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1}, {0.5f});
  ir::Tensor modes = ir::Tensor::fromVector<uint8_t>(ir::DataType::kUint8, {1}, {0});
  std::vector<ir::Attribute> tree = {ir::Attribute::makeInts("nodes_featureids", {5}),
                                     ir::Attribute::makeTensor("nodes_modes", modes),
                                     ir::Attribute::makeTensor("nodes_splits", split),
                                     ir::Attribute::makeInts("nodes_truenodeids", {0}),
                                     ir::Attribute::makeInts("nodes_trueleafs", {1}),
                                     ir::Attribute::makeInts("nodes_falsenodeids", {1}),
                                     ir::Attribute::makeInts("nodes_falseleafs", {1}),
                                     ir::Attribute::makeInts("leaf_targetids", {0, 0}),
                                     ir::Attribute::makeTensor("leaf_weights", leaf),
                                     ir::Attribute::makeInts("tree_roots", {0}),
                                     ir::Attribute::makeInt("n_targets", 1)};
  CHECK_THAT(failureOf(runDomainNode(ml, 5, "TreeEnsemble", {x}, tree)),
             Catch::Contains("TreeEnsemble 'node'") && Catch::Contains("reads feature 5 of 3"));
  tree[0] = ir::Attribute::makeInts("nodes_featureids", {0});
  tree[5] = ir::Attribute::makeInts("nodes_falsenodeids", {4});
  CHECK_THAT(failureOf(runDomainNode(ml, 5, "TreeEnsemble", {x}, tree)), Catch::Contains("points at 4, out of range"));
}
