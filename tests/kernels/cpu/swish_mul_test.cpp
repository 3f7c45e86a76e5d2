// com.whittle.internal SwishMul (kernels/cpu/swish_mul.cpp): (x * sigmoid(x)) * u against the
// double-precision reference, with u of x's dims (the vector loop, lengths off the vector
// width), broadcast u (the index loop), no u, and at 1 and 2 threads; bad input refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "cpu/transformer_internal.h"
#include "support/kernel_harness.h"

namespace whittle {
namespace {

using testing::NodeInput;

ir::Model swishModel(const std::vector<NodeInput>& inputs) {
  return testing::oneNodeModel("SwishMul", inputs, {}, 17, 1, {}, testing::InputShapes::kDeclared,
                               "com.whittle.internal");
}

}  // namespace

TEST_CASE("SwishMul matches the reference", "[kernels][swish]") {
  std::mt19937 rng(3);
  struct Case {
    std::vector<int64_t> x, u;  // empty u: none
  };
  for (const Case& c : {Case{{3, 1000}, {3, 1000}}, Case{{1, 77, 129}, {1, 77, 129}}, Case{{5, 33}, {33}},
                        Case{{4, 1, 6}, {3, 1}}, Case{{2, 40000}, {}}, Case{{7}, {}}}) {
    INFO("x " << c.x.size() << "-D " << c.x.back() << ", u " << c.u.size() << "-D");
    ir::Tensor x = testing::randomTensor(rng, ir::DataType::kFloat, c.x, -12, 12);
    std::vector<NodeInput> inputs = {{"x", x}};
    ir::Tensor u;
    if (!c.u.empty()) {
      u = testing::randomTensor(rng, ir::DataType::kFloat, c.u, -3, 3);
      inputs.push_back({"u", u});
    }
    for (int threads : {1, 2}) {
      std::vector<ir::Tensor> out = testing::runOutputs(swishModel(inputs), testing::feedsOf(inputs), threads);
      REQUIRE(out.size() == 1);
      const ir::Tensor& y = out[0];
      // The reference, element by element over the broadcast index.
      std::vector<int64_t> dims = c.u.empty() ? c.x : testing::broadcastDims(c.x, c.u);
      REQUIRE(y.dims() == dims);
      for (int64_t i = 0; i < y.numel(); ++i) {
        const float xv = x.data<float>()[testing::broadcastIndex(dims, c.x, i)];
        const float* uv = c.u.empty() ? nullptr : u.data<float>() + testing::broadcastIndex(dims, c.u, i);
        float want = 0;
        runtime::cpu::swishMulReference(&xv, uv, &want, 1);
        CHECK(std::abs(y.data<float>()[i] - want) <= 2e-6f * std::max(1.f, std::abs(want)));
      }
    }
  }
  SECTION("u that does not broadcast: one line naming the node") {
    std::vector<NodeInput> inputs = {{"x", ir::Tensor(ir::DataType::kFloat, {2, 3})}, {"u", ir::Tensor(ir::DataType::kFloat, {4})}};
    auto r = testing::tryRunModel(swishModel(inputs), testing::feedsOf(inputs));
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().message().find("do not broadcast") != std::string::npos);
  }
}

}  // namespace whittle
