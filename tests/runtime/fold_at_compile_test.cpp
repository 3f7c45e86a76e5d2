// Constant subgraphs evaluated once when a session is compiled (src/runtime/fold_at_compile.cpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "support/graph_builder.h"
#include "whittle/runtime/session.h"

using namespace whittle;
using ir::DataType;

namespace {

std::vector<std::string> profiledOps(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                     std::vector<float>& out) {
  runtime::SessionOptions options;
  options.profile = true;
  auto session = runtime::Session::create(model, options);
  INFO(session.status().message());
  REQUIRE(session.isOk());
  auto y = (*session)->run(feeds);
  INFO(y.status().message());
  REQUIRE(y.isOk());
  auto v = (*y)[0].second.values<float>();
  out.assign(v.begin(), v.end());
  std::vector<std::string> ops;
  for (const auto& p : (*session)->profile()) ops.push_back(p.opType);
  return ops;
}

bool has(const std::vector<std::string>& ops, const std::string& op) {
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}

}  // namespace

TEST_CASE("A session evaluates constant subgraphs once and runs only what depends on its inputs",
          "[runtime][fold]") {
  // y = x * sin(range(0, 8) * 0.25): the filter, as onnx-asr's resampler builds its sinc
  // kernel, comes from constants only.
  testing::GraphBuilder b(3);
  ir::Value* x = b.input("x", DataType::kFloat, {8});
  ir::Value* r = b.node("Range", {b.constant("start", {}, {0.0f}), b.constant("limit", {}, {8.0f}),
                                  b.constant("delta", {}, {1.0f})});
  ir::Value* c = b.node("Constant", {}, {ir::Attribute::makeTensor("value", ir::Tensor::fromVector(DataType::kFloat, {}, std::vector<float>{0.25f}))});
  ir::Value* filter = b.node("Sin", {b.node("Mul", {r, c})});
  b.output(b.node("Mul", {x, filter}), DataType::kFloat, {8});
  ir::Model model = b.build(17);
  std::vector<float> xs = {1, -2, 3, -4, 5, -6, 7, -8};
  std::vector<float> y;
  auto ops = profiledOps(model, {{"x", ir::Tensor::fromVector(DataType::kFloat, {8}, xs)}}, y);
  CHECK(ops == std::vector<std::string>{"Mul"});
  REQUIRE(y.size() == 8);
  for (int i = 0; i < 8; ++i) CHECK(y[static_cast<size_t>(i)] == Approx(xs[static_cast<size_t>(i)] * std::sin(0.25f * static_cast<float>(i))));
  CHECK(model.graph->nodes().size() == 5);  // the caller's model is not changed
}

TEST_CASE("A session does not fold what a caller can feed or must see", "[runtime][fold]") {
  testing::GraphBuilder b(4);
  ir::Value* x = b.input("x", DataType::kFloat, {4});
  SECTION("an initializer that is also a graph input (IR 3 style) can be fed") {
    ir::Value* w = b.input("w", DataType::kFloat, {4});
    w->setConstant(ir::Tensor::fromVector(DataType::kFloat, {4}, std::vector<float>{1, 2, 3, 4}));
    b.output(b.node("Mul", {x, b.node("Sin", {w})}), DataType::kFloat, {4});
    std::vector<float> y;
    auto ops = profiledOps(b.build(17), {{"x", ir::Tensor::fromVector(DataType::kFloat, {4}, std::vector<float>{1, 1, 1, 1})}}, y);
    CHECK(has(ops, "Sin"));
  }
  SECTION("a constant node output that is a graph output is kept") {
    ir::Value* w = b.constant("w", {4}, {1, 2, 3, 4});
    ir::Value* s = b.node("Sin", {w});
    b.output(s, DataType::kFloat, {4});
    b.output(b.node("Mul", {x, s}), DataType::kFloat, {4});
    std::vector<float> y;
    auto ops = profiledOps(b.build(17), {{"x", ir::Tensor::fromVector(DataType::kFloat, {4}, std::vector<float>{1, 1, 1, 1})}}, y);
    CHECK(has(ops, "Sin"));
    CHECK(y[1] == Approx(std::sin(2.0f)));
  }
}
