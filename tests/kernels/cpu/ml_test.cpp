// The ai.onnx.ml ops (kernels/cpu/ml.cpp, ml_trees.cpp): LabelEncoder, the tree ensembles, ArrayFeatureExtractor,
// Binarizer, LinearClassifier and Normalizer against ONNX Runtime, and the errors for bad input.
#include <cmath>

#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;
using whittle::testing::stringsAttr;

TEST_CASE("ai.onnx.ml ops match ONNX Runtime", "[kernels][ml][ort]") {
  whittle::testing::checkOrtCases("ml", 56);
}

TEST_CASE("TreeEnsembleClassifier and TreeEnsembleRegressor match ONNX Runtime", "[kernels][ml][ort]") {
  whittle::testing::checkOrtCases("trees", 34);
}

namespace {

/// A stump on feature 0 (x <= 0.5: leaf 1, else leaf 2) in the TreeEnsembleRegressor layout.
std::vector<ir::Attribute> stump() {
  return {ir::Attribute::makeInts("nodes_treeids", {0, 0, 0}),
          ir::Attribute::makeInts("nodes_nodeids", {0, 1, 2}),
          ir::Attribute::makeInts("nodes_featureids", {0, 0, 0}),
          stringsAttr("nodes_modes", {"BRANCH_LEQ", "LEAF", "LEAF"}),
          ir::Attribute::makeFloats("nodes_values", {0.5f, 0, 0}),
          ir::Attribute::makeInts("nodes_truenodeids", {1, 0, 0}),
          ir::Attribute::makeInts("nodes_falsenodeids", {2, 0, 0}),
          ir::Attribute::makeInts("target_treeids", {0, 0}),
          ir::Attribute::makeInts("target_nodeids", {1, 2}),
          ir::Attribute::makeInts("target_ids", {0, 0}),
          ir::Attribute::makeFloats("target_weights", {1, 2})};
}

}  // namespace

TEST_CASE("TreeEnsembleRegressor refuses bad attributes naming the node", "[kernels][ml]") {
  const std::string ml = "ai.onnx.ml";
  ir::Tensor x = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2, 1}, {0.0f, 1.0f});
  auto y = runDomainNode(ml, 1, "TreeEnsembleRegressor", {x}, stump());
  REQUIRE(y.isOk());
  CHECK((*y)[0].data<float>()[0] == 1.0f);
  CHECK((*y)[0].data<float>()[1] == 2.0f);
  auto with = [](size_t i, ir::Attribute a) {
    auto attrs = stump();
    attrs[i] = std::move(a);
    return attrs;
  };
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x},
                                     with(3, stringsAttr("nodes_modes", {"BRANCH_LEQ", "LEAF", "BRANCH_ISH"})))),
             Catch::Contains("TreeEnsembleRegressor 'node'") && Catch::Contains("nodes_modes[2] is 'BRANCH_ISH'"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x},
                                     with(5, ir::Attribute::makeInts("nodes_truenodeids", {9, 0, 0})))),
             Catch::Contains("node 0 of tree 0 points at a node not in its tree"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x},
                                     with(8, ir::Attribute::makeInts("target_nodeids", {1, 7})))),
             Catch::Contains("target weight 1 names node 7 of tree 0, which is not there"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x},
                                     with(9, ir::Attribute::makeInts("target_ids", {0, 1})))),
             Catch::Contains("target_ids holds 1, not below 1"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x},
                                     with(4, ir::Attribute::makeFloats("nodes_values", {0.5f})))),
             Catch::Contains("the nodes_* attributes differ in length"));
  auto dup = with(1, ir::Attribute::makeInts("nodes_nodeids", {0, 1, 1}));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x}, dup)),
             Catch::Contains("node 1 of tree 0 is given twice"));
  auto post = stump();
  post.push_back(ir::Attribute::makeString("post_transform", "TANH"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x}, post)),
             Catch::Contains("post_transform 'TANH' is not known"));
  auto aggregate = stump();
  aggregate.push_back(ir::Attribute::makeString("aggregate_function", "MEDIAN"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {x}, aggregate)),
             Catch::Contains("aggregate_function 'MEDIAN' is not known"));
  // A cycle: node 0's false branch is node 1, whose branches both lead back to node 0.
  auto cycle = stump();
  cycle[3] = stringsAttr("nodes_modes", {"BRANCH_LEQ", "BRANCH_LEQ", "LEAF"});
  cycle[5] = ir::Attribute::makeInts("nodes_truenodeids", {2, 0, 0});
  cycle[6] = ir::Attribute::makeInts("nodes_falsenodeids", {1, 0, 0});
  ir::Tensor big = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1, 1}, {1.0f});
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {big}, cycle)), Catch::Contains("has a cycle"));
  ir::Tensor wide = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {1, 1}, {1.0f});
  auto far = with(2, ir::Attribute::makeInts("nodes_featureids", {3, 0, 0}));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleRegressor", {wide}, far)),
             Catch::Contains("reads feature 3 of 1"));
  auto classifier = stump();
  for (auto& a : classifier) {
    if (a.name.rfind("target_", 0) == 0) a.name = "class_" + a.name.substr(7);
  }
  classifier.push_back(ir::Attribute::makeInts("classlabels_int64s", {1}));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "TreeEnsembleClassifier", {x}, classifier, 2)),
             Catch::Contains("TreeEnsembleClassifier 'node'") && Catch::Contains("at least two class labels"));
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
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "LinearRegressor", {x},
                                     {ir::Attribute::makeFloats("coefficients", {1, 2, 3, 4}),
                                      ir::Attribute::makeInt("targets", 2)})),
             Catch::Contains("LinearRegressor 'node'") &&
                 Catch::Contains("X has 3 features; the coefficients hold 2 per target"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "LinearRegressor", {x},
                                     {ir::Attribute::makeFloats("coefficients", {1, 2, 3}),
                                      ir::Attribute::makeInt("targets", 2)})),
             Catch::Contains("do not split into 2 targets"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "Scaler", {x},
                                     {ir::Attribute::makeFloats("offset", {1, 2}),
                                      ir::Attribute::makeFloats("scale", {1, 2})})),
             Catch::Contains("Scaler 'node'") && Catch::Contains("offset holds 2 values for 3 columns"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "Scaler", {x},
                                     {ir::Attribute::makeFloats("offset", {1}),
                                      ir::Attribute::makeFloats("scale", {1, 2, 3})})),
             Catch::Contains("offset and scale differ in length (1 and 3)"));
  std::vector<ir::Attribute> svm = {ir::Attribute::makeFloats("coefficients", {1, 2}),
                                    ir::Attribute::makeFloats("support_vectors", {1, 2, 3, 4, 5, 6, 7, 8}),
                                    ir::Attribute::makeInt("n_supports", 2), ir::Attribute::makeFloats("rho", {0})};
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "SVMRegressor", {x}, svm)),
             Catch::Contains("SVMRegressor 'node'") && Catch::Contains("X has 3 features; the model has 4"));
  std::vector<ir::Attribute> svc = {ir::Attribute::makeFloats("coefficients", {1, 2, 3}),
                                    ir::Attribute::makeFloats("support_vectors", {1, 2, 3, 4, 5, 6, 7, 8, 9}),
                                    ir::Attribute::makeInts("vectors_per_class", {1, 2}),
                                    ir::Attribute::makeFloats("rho", {0}),
                                    ir::Attribute::makeInts("classlabels_ints", {0, 1, 2})};
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "SVMClassifier", {x}, svc, 2)),
             Catch::Contains("SVMClassifier 'node'") && Catch::Contains("vectors_per_class has 2 counts for 3 classes"));
  svc[4] = ir::Attribute::makeInts("classlabels_ints", {0, 1});
  svc.push_back(ir::Attribute::makeFloats("prob_a", {1}));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "SVMClassifier", {x}, svc, 2)),
             Catch::Contains("prob_a and prob_b differ in length"));
  svm.push_back(ir::Attribute::makeString("kernel_type", "CUBIC"));
  CHECK_THAT(failureOf(runDomainNode(ml, 1, "SVMRegressor", {x}, svm)),
             Catch::Contains("SVMRegressor 'node'") && Catch::Contains("kernel_type 'CUBIC' is not"));
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

TEST_CASE("TreeEnsembleRegressor: the blocked fast walk gives the general walk's sums, NaN and all", "[kernels][ml]") {
  // Two trees of depth 2 and 1 over 3 features, every internal node BRANCH_LEQ or BRANCH_LT (the
  // fast walk: 8 walks in flight, a lane refilled when its walk ends, 64 rows a block); the same trees written with BRANCH_GT / BRANCH_GTE and the
  // branches swapped take the general walk. They agree on every value but NaN, so NaN rows go
  // to the side missing_value_tracks_true names in the fast form and are checked by hand.
  auto trees = [](bool fast) {
    const std::vector<std::string> modes = fast ? std::vector<std::string>{"BRANCH_LEQ", "BRANCH_LT", "LEAF", "LEAF",
                                                                           "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"}
                                                : std::vector<std::string>{"BRANCH_GT", "BRANCH_GTE", "LEAF", "LEAF",
                                                                           "LEAF", "BRANCH_GT", "LEAF", "LEAF"};
    std::vector<int64_t> t = {1, 2, 0, 0, 0, 1, 0, 0}, f = {4, 3, 0, 0, 0, 2, 0, 0};
    if (!fast) std::swap(t, f);
    return std::vector<ir::Attribute>{
        ir::Attribute::makeInts("nodes_treeids", {0, 0, 0, 0, 0, 1, 1, 1}),
        ir::Attribute::makeInts("nodes_nodeids", {0, 1, 2, 3, 4, 0, 1, 2}),
        ir::Attribute::makeInts("nodes_featureids", {0, 1, 0, 0, 0, 2, 0, 0}),
        stringsAttr("nodes_modes", modes),
        ir::Attribute::makeFloats("nodes_values", {0.5f, -0.25f, 0, 0, 0, 0.0f, 0, 0}),
        ir::Attribute::makeInts("nodes_truenodeids", t),
        ir::Attribute::makeInts("nodes_falsenodeids", f),
        ir::Attribute::makeInts("target_treeids", {0, 0, 0, 1, 1}),
        ir::Attribute::makeInts("target_nodeids", {2, 3, 4, 1, 2}),
        ir::Attribute::makeInts("target_ids", {0, 0, 0, 0, 0}),
        ir::Attribute::makeFloats("target_weights", {1.0f, 10.0f, 100.0f, 0.125f, 0.5f})};
  };
  const std::string ml = "ai.onnx.ml";
  std::vector<float> values;
  constexpr int64_t kRows = 150;  // two full blocks of 64 rows and a short one; values on the splits too
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < 3; ++c) values.push_back(static_cast<float>((r * 7 + c * 5) % 9) * 0.25f - 1.0f);
  }
  ir::Tensor x = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {kRows, 3}, values);
  auto fast = runDomainNode(ml, 1, "TreeEnsembleRegressor", {x}, trees(true));
  auto general = runDomainNode(ml, 1, "TreeEnsembleRegressor", {x}, trees(false));
  REQUIRE(fast.isOk());
  REQUIRE(general.isOk());
  for (int64_t r = 0; r < kRows; ++r) {
    INFO("row " << r);
    CHECK((*fast)[0].data<float>()[r] == (*general)[0].data<float>()[r]);
  }
  // NaN in feature 0 with missing_value_tracks_true on the root: the true side (node 1).
  auto tracked = trees(true);
  tracked.push_back(ir::Attribute::makeInts("nodes_missing_value_tracks_true", {1, 0, 0, 0, 0, 0, 0, 0}));
  const float nan = std::nanf("");
  ir::Tensor xn = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2, 3}, {nan, -1.0f, nan, nan, 0.0f, 1.0f});
  auto y = runDomainNode(ml, 1, "TreeEnsembleRegressor", {xn}, tracked);
  REQUIRE(y.isOk());
  // Row 0 [NaN, -1, NaN]: tree 0 root -> node 1, -1 < -0.25: leaf 2 (1); tree 1: NaN <= 0 is false: leaf 2 (0.5).
  CHECK((*y)[0].data<float>()[0] == 1.5f);
  // Row 1 [NaN, 0, 1]: tree 0 root -> node 1, 0 < -0.25 is false: leaf 3 (10); tree 1: 1 <= 0 is false (0.5).
  CHECK((*y)[0].data<float>()[1] == 10.5f);
}
