// Einsum: against ONNX Runtime on matrix and batched products, attention scores, broadcast
// ellipses, diagonals, traces, full sums, outer products, implicit outputs, three operands,
// private and repeated labels, upper case labels, int64 and float64 (vision_loss_ort_cases.py);
// against a naive sum on a four-operand equation; zero-sized dims; and the equations it refuses.
#include <catch2/catch.hpp>

#include <random>

#include "kernels/cpu/vision_loss_test_util.h"

using namespace whittle;
using testing::floats;
using testing::nodeError;

namespace {

ir::Attribute eq(const std::string& e) {
  return ir::Attribute::makeString("equation", e);
}

}  // namespace

TEST_CASE("Einsum matches ONNX Runtime", "[kernels][einsum][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  CHECK(testing::checkOrtCases("einsum_") == 18);
}

TEST_CASE("Einsum with four operands and a summed diagonal matches a naive sum", "[kernels][einsum]") {
  std::mt19937 rng(3);
  ir::Tensor a = testing::randomTensor(rng, ir::DataType::kDouble, {2, 3, 3});
  ir::Tensor b = testing::randomTensor(rng, ir::DataType::kDouble, {3, 4});
  ir::Tensor c = testing::randomTensor(rng, ir::DataType::kDouble, {4});
  ir::Tensor d = testing::randomTensor(rng, ir::DataType::kDouble, {2, 5});
  // y[i, l] = sum_{j, k} a[i, j, j] b[j, k] c[k] d[i, l]
  ir::Tensor y = testing::runOk("Einsum", {{"a", a}, {"b", b}, {"c", c}, {"d", d}}, {eq("ijj,jk,k,il->il")}, 12);
  REQUIRE(y.dims() == std::vector<int64_t>{2, 5});
  const double *pa = a.data<double>(), *pb = b.data<double>(), *pc = c.data<double>(), *pd = d.data<double>();
  for (int i = 0; i < 2; ++i) {
    for (int l = 0; l < 5; ++l) {
      double want = 0;
      for (int j = 0; j < 3; ++j) {
        for (int k = 0; k < 4; ++k) want += pa[i * 9 + j * 3 + j] * pb[j * 4 + k] * pc[k] * pd[i * 5 + l];
      }
      CHECK(y.data<double>()[i * 5 + l] == Approx(want).epsilon(1e-12));
    }
  }
}

TEST_CASE("Einsum handles zero-sized dims", "[kernels][einsum]") {
  ir::Tensor y = testing::runOk("Einsum", {{"a", ir::Tensor(ir::DataType::kFloat, {3, 0})},
                                           {"b", ir::Tensor(ir::DataType::kFloat, {0, 4})}}, {eq("ij,jk->ik")}, 12);
  REQUIRE(y.dims() == std::vector<int64_t>{3, 4});
  for (double v : testing::tensorValues(y)) CHECK(v == 0.0);
  ir::Tensor e = testing::runOk("Einsum", {{"a", ir::Tensor(ir::DataType::kFloat, {0, 4})},
                                           {"b", ir::Tensor(ir::DataType::kFloat, {4, 2})}}, {eq("ij,jk->ik")}, 12);
  CHECK(e.dims() == std::vector<int64_t>{0, 2});
}

TEST_CASE("Einsum refuses bad equations and shapes, naming the node", "[kernels][einsum]") {
  ir::Tensor m = floats({2, 3}, {1, 2, 3, 4, 5, 6});
  std::string e = nodeError("Einsum", {{"a", m}}, {eq("ij,jk->ik")}, 12);
  CHECK_THAT(e, Catch::Contains("Einsum 'node'") && Catch::Contains("2 input terms for 1 inputs"));
  e = nodeError("Einsum", {{"a", m}}, {eq("ijk->i")}, 12);
  CHECK_THAT(e, Catch::Contains("input 0 has rank 2 but its term has 3 labels"));
  e = nodeError("Einsum", {{"a", m}}, {eq("i1->i")}, 12);
  CHECK_THAT(e, Catch::Contains("has the character '1'"));
  e = nodeError("Einsum", {{"a", m}, {"b", m}}, {eq("ij,jk->ik")}, 12);
  CHECK_THAT(e, Catch::Contains("a label has size"));
  e = nodeError("Einsum", {{"a", m}}, {eq("ij->iz")}, 12);
  CHECK_THAT(e, Catch::Contains("a label that no input has"));
  e = nodeError("Einsum", {{"a", m}}, {eq("ii->i")}, 12);
  CHECK_THAT(e, Catch::Contains("a label has size 2 in one place and 3 in input 0"));
}
