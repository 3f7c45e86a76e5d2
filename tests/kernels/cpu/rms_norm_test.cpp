// com.whittle.internal RmsNorm (kernels/cpu/rms_norm.cpp): against the double-precision
// reference, rows off the vector width, w as [H], [1, 1, H] and a scalar, at 1 and 2 threads;
// a w of another length refused with one line naming the node.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "cpu/transformer_internal.h"
#include "support/kernel_harness.h"

namespace whittle {
namespace {

using testing::NodeInput;

ir::Model rmsModel(const std::vector<NodeInput>& inputs, float eps) {
  return testing::oneNodeModel("RmsNorm", inputs, {ir::Attribute::makeFloat("epsilon", eps)}, 17, 1, {},
                               testing::InputShapes::kDeclared, "com.whittle.internal");
}

}  // namespace

TEST_CASE("RmsNorm matches the reference", "[kernels][rmsnorm]") {
  std::mt19937 rng(4);
  struct Case {
    std::vector<int64_t> x, w;
  };
  for (const Case& c : {Case{{1, 64, 576}, {576}}, Case{{3, 5, 37}, {1, 1, 37}}, Case{{200, 7}, {}}, Case{{9}, {9}},
                        Case{{2, 300, 96}, {96}}}) {
    INFO("x " << c.x.size() << "-D " << c.x.back() << ", w " << c.w.size() << "-D");
    ir::Tensor x = testing::randomTensor(rng, ir::DataType::kFloat, c.x, -4, 4);
    ir::Tensor w = testing::randomTensor(rng, ir::DataType::kFloat, c.w, -2, 2);
    std::vector<NodeInput> inputs = {{"x", x}, {"w", w, /*constant=*/true}};
    const int64_t n = c.x.back(), rows = x.numel() / n;
    std::vector<float> want(static_cast<size_t>(x.numel()));
    runtime::cpu::rmsNormReference(x.data<float>(), w.data<float>(), w.numel() == 1 ? 0 : 1, 1e-5f, rows, n, want.data());
    for (int threads : {1, 2}) {
      std::vector<ir::Tensor> out = testing::runOutputs(rmsModel(inputs, 1e-5f), testing::feedsOf(inputs), threads);
      REQUIRE(out.size() == 1);
      REQUIRE(out[0].dims() == c.x);
      for (int64_t i = 0; i < x.numel(); ++i) {
        CHECK(std::abs(out[0].data<float>()[i] - want[static_cast<size_t>(i)]) <=
              2e-6f * std::max(1.f, std::abs(want[static_cast<size_t>(i)])));
      }
    }
  }
  SECTION("a w of another length: one line naming the node") {
    std::vector<NodeInput> inputs = {{"x", ir::Tensor(ir::DataType::kFloat, {2, 8})}, {"w", ir::Tensor(ir::DataType::kFloat, {4})}};
    auto r = testing::tryRunModel(rmsModel(inputs, 1e-6f), testing::feedsOf(inputs));
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("must be a scalar or [8]") != std::string::npos);
  }
}

}  // namespace whittle
