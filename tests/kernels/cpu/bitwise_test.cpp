// BitwiseAnd/Or/Xor/Not (kernels/cpu/bitwise.cpp): ONNX Runtime's outputs on every integer width
// with broadcasting, and the errors for bad input.
#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;

TEST_CASE("Bitwise ops match ONNX Runtime", "[kernels][bitwise][ort]") {
  whittle::testing::checkOrtCases("bitwise", 16);
}

TEST_CASE("Bitwise ops refuse bad input naming the node", "[kernels][bitwise]") {
  ir::Tensor i32 = ir::Tensor::fromVector<int32_t>(ir::DataType::kInt32, {2}, {1, 2});
  ir::Tensor i64 = ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {2}, {1, 2});
  ir::Tensor f = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2}, {1, 2});
  ir::Tensor i32x3 = ir::Tensor::fromVector<int32_t>(ir::DataType::kInt32, {3}, {1, 2, 3});
  CHECK_THAT(failureOf(runDomainNode("", 18, "BitwiseAnd", {i32, i64}, {})),
             Catch::Contains("BitwiseAnd 'node'") && Catch::Contains("different dtypes"));
  CHECK_THAT(failureOf(runDomainNode("", 18, "BitwiseOr", {f, f}, {})), Catch::Contains("integers only"));
  CHECK_THAT(failureOf(runDomainNode("", 18, "BitwiseXor", {i32, i32x3}, {})), Catch::Contains("do not broadcast"));
  CHECK_THAT(failureOf(runDomainNode("", 18, "BitwiseNot", {f}, {})), Catch::Contains("BitwiseNot 'node'"));
  auto y = runDomainNode("", 18, "BitwiseNot", {i32}, {});
  REQUIRE(y.isOk());
  CHECK((*y)[0].data<int32_t>()[0] == ~1);
  CHECK((*y)[0].data<int32_t>()[1] == ~2);
}
