// MatMul and Gemm on the CPU runtime against a scalar reference in double, over one shared
// shape list (tiny shapes, shapes at, just below and just above 16 and 64, broadcasting and
// 1-D cases), for every supported dtype, with B constant (packed at creation) or fed, at
// 1 and 2 threads.
#include <catch2/catch.hpp>
#include <optional>

#include "support/kernel_harness.h"
#include "support/tolerance.h"

using namespace whittle;
using whittle::testing::NodeInput;

namespace {

const std::vector<ir::DataType> kFloatTypes = {ir::DataType::kFloat, ir::DataType::kFloat16, ir::DataType::kBFloat16,
                                               ir::DataType::kDouble};

/// numpy.matmul in double.
std::vector<double> matmulReference(const ir::Tensor& a, const ir::Tensor& b, std::vector<int64_t>& outDims) {
  std::vector<int64_t> ad = a.dims(), bd = b.dims();
  const bool aVec = ad.size() == 1, bVec = bd.size() == 1;
  if (aVec) ad.insert(ad.begin(), 1);
  if (bVec) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  size_t batchRank = std::max(ad.size(), bd.size()) - 2;
  std::vector<int64_t> ab(batchRank, 1), bb(batchRank, 1), batch(batchRank);
  std::copy(ad.begin(), ad.end() - 2, ab.end() - static_cast<ptrdiff_t>(ad.size() - 2));
  std::copy(bd.begin(), bd.end() - 2, bb.end() - static_cast<ptrdiff_t>(bd.size() - 2));
  int64_t batches = 1;
  for (size_t i = 0; i < batchRank; ++i) {
    batch[i] = std::max(ab[i], bb[i]);
    batches *= batch[i];
  }
  outDims = batch;
  if (!aVec) outDims.push_back(m);
  if (!bVec) outDims.push_back(n);
  std::vector<double> y(static_cast<size_t>(batches * m * n));
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t rem = bi, aOff = 0, bOff = 0, aStride = 1, bStride = 1;
    for (size_t d = batchRank; d-- > 0;) {
      int64_t idx = rem % batch[d];
      rem /= batch[d];
      aOff += (ab[d] == 1 ? 0 : idx) * aStride;
      bOff += (bb[d] == 1 ? 0 : idx) * bStride;
      aStride *= ab[d];
      bStride *= bb[d];
    }
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += a.valueAsDouble(aOff * m * k + i * k + p) * b.valueAsDouble(bOff * k * n + p * n + j);
        y[static_cast<size_t>((bi * m + i) * n + j)] = acc;
      }
    }
  }
  return y;
}

/// Gemm in double.
std::vector<double> gemmReference(const ir::Tensor& a, const ir::Tensor& b, const ir::Tensor* c, bool transA,
                                  bool transB, double alpha, double beta) {
  const int64_t m = transA ? a.dims()[1] : a.dims()[0];
  const int64_t k = transA ? a.dims()[0] : a.dims()[1];
  const int64_t n = transB ? b.dims()[0] : b.dims()[1];
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        acc += a.valueAsDouble(transA ? p * m + i : i * k + p) * b.valueAsDouble(transB ? j * k + p : p * n + j);
      }
      double cv = 0;
      if (c != nullptr) {
        const auto& cd = c->dims();
        int64_t ci = 0;
        if (cd.size() == 1) ci = cd[0] == 1 ? 0 : j;
        if (cd.size() == 2) ci = (cd[0] == 1 ? 0 : i) * cd[1] + (cd[1] == 1 ? 0 : j);
        cv = c->valueAsDouble(ci);
      }
      y[static_cast<size_t>(i * n + j)] = alpha * acc + beta * cv;
    }
  }
  return y;
}

struct MatMulShape {
  std::vector<int64_t> a, b;
};

// Tiny, tile-boundary (16, 64) and broadcasting cases, including 1-D operands.
const std::vector<MatMulShape> kMatMulShapes = {
    {{1, 1}, {1, 1}},
    {{3, 5}, {5, 7}},
    {{1, 16}, {16, 10}},
    {{15, 16}, {16, 17}},
    {{16, 64}, {64, 16}},
    {{17, 63}, {63, 65}},
    {{64, 65}, {65, 1}},
    {{2, 3, 5, 4}, {4, 6}},        // batch folded into M
    {{2, 5, 4}, {1, 4, 6}},        // B batch of one: folded too
    {{5, 4}, {3, 4, 6}},           // B batched, A broadcast
    {{3, 5, 4}, {3, 4, 6}},        // both batched
    {{2, 1, 5, 4}, {1, 3, 4, 6}},  // both broadcast
    {{1, 1, 17, 16}, {1, 1, 16, 17}},
    {{7}, {7, 3}},  // 1-D A
    {{4, 7}, {7}},  // 1-D B
    {{7}, {7}},     // dot product
    {{2, 3, 7}, {7}},
    {{7}, {2, 7, 3}},
    {{0, 4}, {4, 3}},  // empty M
    {{3, 0}, {0, 5}},  // empty K: zeros
};

}  // namespace

TEST_CASE("MatMul matches the reference for every shape, dtype and thread count", "[kernels][matmul]") {
  std::mt19937 rng(7);
  testing::compareWithReference<MatMulShape>(
      kFloatTypes, kMatMulShapes, [&](const MatMulShape& shape, ir::DataType dtype) {
        std::vector<testing::KernelCase> cases;
        for (bool bConstant : {false, true}) {
          std::vector<NodeInput> inputs = {{"a", testing::randomTensor(rng, dtype, shape.a)},
                                           {"b", testing::randomTensor(rng, dtype, shape.b), bConstant}};
          std::vector<int64_t> outDims;
          std::vector<double> expected = matmulReference(inputs[0].tensor, inputs[1].tensor, outDims);
          const int64_t k = shape.a.back();
          const double rtol = testing::accumulatedRoundingTolerance(dtype);
          cases.push_back({testing::oneNodeModel("MatMul", inputs, {}, 13),
                           inputs,
                           {{expected, rtol, rtol * 0.1 + 1e-6 * static_cast<double>(k), outDims, dtype}},
                           std::string(ir::dataTypeName(dtype)) + " A" + testing::shapeText(shape.a) + " B" +
                               testing::shapeText(shape.b) + (bConstant ? " const" : "")});
        }
        return cases;
      });
}

TEST_CASE("Gemm matches the reference for transposes, alpha, beta and every C broadcast", "[kernels][matmul]") {
  std::mt19937 rng(11);
  struct Dims {
    int64_t m, k, n;
  };
  const std::vector<Dims> sizes = {{1, 16, 10}, {15, 17, 16}, {17, 64, 65}, {3, 5, 1}};
  // C shapes as functions of (m, n); nullopt = no C.
  auto cShapes = [](int64_t m, int64_t n) {
    return std::vector<std::optional<std::vector<int64_t>>>{std::nullopt,
                                                            std::vector<int64_t>{},
                                                            std::vector<int64_t>{1},
                                                            std::vector<int64_t>{n},
                                                            std::vector<int64_t>{1, n},
                                                            std::vector<int64_t>{m, 1},
                                                            std::vector<int64_t>{m, n}};
  };
  int combo = 0;
  for (int trans = 0; trans < 4; ++trans) {
    const bool transA = (trans & 1) != 0, transB = (trans & 2) != 0;
    for (int constness = 0; constness < 3; ++constness) {
      const bool bConstant = constness != 1, cConstant = constness == 0;
      for (size_t ci = 0; ci < 7; ++ci, ++combo) {
        const Dims d = sizes[static_cast<size_t>(combo) % sizes.size()];
        const float alpha = combo % 2 ? 0.5f : 1.f;
        const float beta = combo % 3 == 0 ? 1.f : combo % 3 == 1 ? 2.f : 0.f;
        const ir::DataType dtype = combo % 5 == 4     ? ir::DataType::kFloat16
                                   : combo % 7 == 6   ? ir::DataType::kBFloat16
                                   : combo % 11 == 10 ? ir::DataType::kDouble
                                                      : ir::DataType::kFloat;
        auto cShape = cShapes(d.m, d.n)[ci];
        std::vector<NodeInput> inputs = {
            {"a", testing::randomTensor(rng, dtype,
                                        transA ? std::vector<int64_t>{d.k, d.m} : std::vector<int64_t>{d.m, d.k})},
            {"b",
             testing::randomTensor(rng, dtype,
                                   transB ? std::vector<int64_t>{d.n, d.k} : std::vector<int64_t>{d.k, d.n}),
             bConstant}};
        if (cShape) inputs.push_back({"c", testing::randomTensor(rng, dtype, *cShape), cConstant});
        std::vector<ir::Attribute> attrs = {
            ir::Attribute::makeFloat("alpha", alpha), ir::Attribute::makeFloat("beta", beta),
            ir::Attribute::makeInt("transA", transA), ir::Attribute::makeInt("transB", transB)};
        std::vector<double> expected = gemmReference(inputs[0].tensor, inputs[1].tensor,
                                                     cShape ? &inputs[2].tensor : nullptr, transA, transB, alpha, beta);
        double rtol = testing::accumulatedRoundingTolerance(dtype);
        testing::checkKernelCase(
            {testing::oneNodeModel("Gemm", inputs, attrs, 13),
             inputs,
             {{expected, rtol, rtol * 0.2 + 1e-6 * static_cast<double>(d.k), std::vector<int64_t>{d.m, d.n}}},
             std::string(ir::dataTypeName(dtype)) + " m" + std::to_string(d.m) + " k" + std::to_string(d.k) + " n" +
                 std::to_string(d.n) + " transA " + std::to_string(transA) + " transB " + std::to_string(transB) +
                 " alpha " + std::to_string(alpha) + " beta " + std::to_string(beta) + " C " +
                 (cShape ? testing::shapeText(*cShape) : "none") + (bConstant ? " constB" : "") +
                 (cConstant ? " constC" : "")});
      }
    }
  }
}

TEST_CASE("MatMul with a packed constant B follows a changing batch size", "[kernels][matmul]") {
  std::mt19937 rng(3);
  ir::Model model;
  model.opsetImports = {{"", 13}};
  ir::Graph& g = *model.graph;
  ir::ValueType type;
  type.dtype = ir::DataType::kFloat;
  type.shape = std::vector<ir::Dim>{ir::Dim::symbolic("batch"), ir::Dim::known(48)};
  ir::Value* a = g.addInput("a", type);
  ir::Tensor b = testing::randomTensor(rng, ir::DataType::kFloat, {48, 144});
  ir::Node* node = g.addNode("MatMul", {a, g.addInitializer("b", b)}, {"y"});
  g.addOutput(node->output(0));
  auto session = runtime::Session::create(model);
  REQUIRE(session.isOk());
  for (int64_t batch : {1, 320, 5, 1, 320}) {
    ir::Tensor x = testing::randomTensor(rng, ir::DataType::kFloat, {batch, 48});
    auto out = (*session)->run({{"a", x}});
    REQUIRE(out.isOk());
    std::vector<int64_t> dims;
    std::vector<double> expected = matmulReference(x, b, dims);
    CHECK((*out)[0].second.dims() == dims);
    testing::checkClose((*out)[0].second, expected, 2e-5, 1e-4, "batch " + std::to_string(batch));
  }
}

TEST_CASE("MatMul and Gemm reject bad shapes and unsupported dtypes", "[kernels][matmul]") {
  std::mt19937 rng(5);
  auto run = [&](const std::string& op, std::vector<NodeInput> inputs, std::vector<ir::Attribute> attrs = {}) {
    return testing::runNode(op, inputs, attrs, 13).status();
  };
  auto f32 = [&](std::vector<int64_t> dims) { return testing::randomTensor(rng, ir::DataType::kFloat, dims); };

  Status k = run("MatMul", {{"a", f32({2, 3})}, {"b", f32({4, 5})}});
  CHECK(k.code() == StatusCode::kInvalidInput);
  CHECK_THAT(k.message(), Catch::Contains("inner dimensions"));

  Status batch = run("MatMul", {{"a", f32({2, 2, 3})}, {"b", f32({3, 3, 4})}});
  CHECK(batch.code() == StatusCode::kInvalidInput);

  Status rank = run("Gemm", {{"a", f32({1, 2, 3})}, {"b", f32({3, 4})}});
  CHECK(rank.code() == StatusCode::kInvalidInput);

  Status c = run("Gemm", {{"a", f32({2, 3})}, {"b", f32({3, 4})}, {"c", f32({3, 4})}});
  CHECK(c.code() == StatusCode::kInvalidInput);
  CHECK_THAT(c.message(), Catch::Contains("does not broadcast"));

  ir::Tensor ints = ir::Tensor::fromVector<int32_t>(ir::DataType::kInt32, {2, 2}, {1, 2, 3, 4});
  Status dtype = run("MatMul", {{"a", ints}, {"b", ints}});
  CHECK(dtype.code() == StatusCode::kUnimplemented);
  CHECK_THAT(dtype.message(), Catch::Contains("int32"));
}
