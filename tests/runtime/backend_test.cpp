#include "whittle/runtime/backend.h"

#include <catch2/catch.hpp>

#include "support/graph_builder.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/session.h"

namespace whittle {
namespace {

TEST_CASE("the CPU backend answers for its kernels, lowering and context", "[runtime][backend]") {
  const runtime::Backend& cpu = runtime::cpuBackend();
  CHECK(cpu.device() == runtime::DeviceKind::kCpu);
  CHECK(cpu.name() == "cpu");
  CHECK(&cpu.kernels() == &runtime::KernelRegistry::cpu());
  testing::GraphBuilder b;
  ir::Value* x = b.input("x", ir::DataType::kFloat, {2, 3});
  b.output(b.node("Relu", {x}));
  ir::Model m = b.build(17);
  const ir::Node& relu = *m.graph->nodes().front();
  CHECK(cpu.supports(relu, 17));
  ir::Node* odd = m.graph->addNode("NoSuchOp", {x}, {"odd_out"}, "odd");
  CHECK_FALSE(cpu.supports(*odd, 17));
  auto context = cpu.createContext(2);
  REQUIRE(context.isOk());
  CHECK((*context)->threads() == 2);
  CHECK_FALSE(cpu.createContext(0).isOk());
  // The CUDA backend exists where it was built and a device is present; otherwise the error
  // says which of the two is missing (tests/kernels/cuda/cuda_backend_test.cpp).
  auto cuda = runtime::backendFor(runtime::DeviceKind::kCuda);
  if (cuda.isOk()) {
    CHECK((*cuda)->name() == "cuda");
  } else {
    CHECK_THAT(cuda.status().message(), Catch::Contains("CUDA"));
  }
}

TEST_CASE("evaluateNode runs one kernel as a session would", "[runtime][backend]") {
  testing::GraphBuilder b(3);
  ir::Value* x = b.weight("x", {1, 3, 6, 6});
  ir::Value* w = b.weight("w", {4, 3, 3, 3});
  ir::Value* bias = b.weight("bias", {4});
  b.output(b.node("Conv", {x, w, bias}, {ir::Attribute::makeInts("pads", {1, 1, 1, 1})}));
  ir::Model m = b.build(17);
  const ir::Node& conv = *m.graph->nodes().front();
  auto outputs = runtime::evaluateNode(conv, 17, {x->constant(), w->constant(), bias->constant()});
  INFO(outputs.status().message());
  REQUIRE(outputs.isOk());
  REQUIRE(outputs->size() == 1);
  auto session = runtime::Session::create(m);
  REQUIRE(session.isOk());
  auto expected = (*session)->run({});
  REQUIRE(expected.isOk());
  const ir::Tensor& got = (*outputs)[0];
  const ir::Tensor& want = (*expected)[0].second;
  REQUIRE(got.dims() == want.dims());
  for (int64_t i = 0; i < want.numel(); ++i) CHECK(got.data<float>()[i] == Approx(want.data<float>()[i]).epsilon(1e-5));

  ir::Node* odd = m.graph->addNode("NoSuchOp", {x}, {"odd_out"}, "odd");
  auto unsupported = runtime::evaluateNode(*odd, 17, {x->constant()});
  REQUIRE_FALSE(unsupported.isOk());
  CHECK(unsupported.status().code() == StatusCode::kUnimplemented);
  CHECK_THAT(unsupported.status().message(), Catch::Contains("'odd'") && Catch::Contains("cpu backend"));
}

}  // namespace
}  // namespace whittle
