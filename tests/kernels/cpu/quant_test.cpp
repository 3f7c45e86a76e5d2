// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, MatMulInteger and QGemm
// on the CPU runtime against plain scalar references, over shared shape lists (sizes at, below
// and above 16 and 64, broadcasting, per-tensor / per-axis / blocked parameters), at 1 and 2
// threads. Convolutions: quant_conv_test.cpp; com.microsoft ops: quant_contrib_test.cpp.
#include <cmath>

#include <catch2/catch.hpp>

#include "kernels/cpu/quant_test_util.h"
#include "whittle/runtime/kernel.h"

using namespace whittle;
using namespace whittle::testing::quant;
using whittle::testing::GraphBuilder;

namespace {

// ---- QuantizeLinear / DequantizeLinear ----

struct QdqCase {
  std::vector<int64_t> dims;
  int64_t axis;        // for per-axis and blocked
  int64_t blockSize;   // 0: per-axis (or per-tensor when perTensor)
  bool perTensor;
};

const std::vector<QdqCase> kQdqCases = {
    {{6}, 0, 0, true},          {{15}, 0, 0, true},         {{16}, 0, 0, true},
    {{17}, 0, 0, true},         {{1, 3, 3, 2}, 1, 0, false}, {{2, 63, 5}, -2, 0, false},
    {{64, 5}, 0, 0, false},     {{3, 65}, 1, 0, false},      {{3, 4}, 1, 2, false},
    {{2, 6, 5}, 1, 4, false},   {{70001}, 0, 0, true},       {{4, 130, 140}, 1, 0, false},
};

// The index of the scale of element i.
int64_t scaleIndex(const QdqCase& c, int64_t i) {
  if (c.perTensor) return 0;
  const int64_t rank = static_cast<int64_t>(c.dims.size());
  const int64_t axis = c.axis < 0 ? c.axis + rank : c.axis;
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) inner *= c.dims[static_cast<size_t>(d)];
  const int64_t a = (i / inner) % c.dims[static_cast<size_t>(axis)];
  if (c.blockSize == 0) return a;
  const int64_t outer = i / (inner * c.dims[static_cast<size_t>(axis)]);
  const int64_t blocks = (c.dims[static_cast<size_t>(axis)] + c.blockSize - 1) / c.blockSize;
  return (outer * blocks + a / c.blockSize) * inner + i % inner;
}

std::vector<int64_t> scaleDims(const QdqCase& c) {
  if (c.perTensor) return {};
  const int64_t rank = static_cast<int64_t>(c.dims.size());
  const auto axis = static_cast<size_t>(c.axis < 0 ? c.axis + rank : c.axis);
  if (c.blockSize == 0) return {c.dims[axis]};
  std::vector<int64_t> d = c.dims;
  d[axis] = (d[axis] + c.blockSize - 1) / c.blockSize;
  return d;
}

ir::Model qdqModel(const std::string& op, const QdqCase& c, DataType inType, const ir::Tensor& scale,
                   const ir::Tensor& zp, bool withZp) {
  GraphBuilder gb;
  ir::Value* x = gb.input("x", inType, c.dims);
  std::vector<ir::Attribute> attrs;
  if (!c.perTensor) attrs.push_back(ir::Attribute::makeInt("axis", c.axis));
  if (c.blockSize > 0) attrs.push_back(ir::Attribute::makeInt("block_size", c.blockSize));
  gb.output(gb.node(op, {x, gb.constant("scale", scale), withZp ? gb.constant("zp", zp) : nullptr}, attrs));
  return gb.build(21);
}

}  // namespace

TEST_CASE("QuantizeLinear matches round-half-to-even quantisation", "[kernels][quant]") {
  std::mt19937_64 rng(1);
  for (DataType type : {DataType::kUint8, DataType::kInt8, DataType::kUint16, DataType::kInt16}) {
    for (const QdqCase& c : kQdqCases) {
      for (int threads : {1, 2}) {
        CAPTURE(ir::dataTypeName(type), c.dims, c.axis, c.blockSize, threads);
        const std::vector<int64_t> sd = scaleDims(c);
        const int64_t ns = numel(sd);
        const std::vector<float> scales = randomFloats(rng, ns, 0.01f, 0.1f);
        const std::vector<int32_t> zps = randomInts(rng, ns, typeMin(type) / 2, typeMax(type) / 2);
        std::vector<float> xv = randomFloats(rng, numel(c.dims), -20.0f, 20.0f);
        // Exact ties (x = (k + 0.5) * scale) for the rounding rule.
        for (size_t i = 0; i < xv.size() && i < 8; ++i) xv[i] = (static_cast<float>(i) - 3.5f) * scales[static_cast<size_t>(scaleIndex(c, static_cast<int64_t>(i)))];
        const bool withZp = type != DataType::kUint8 || c.dims.size() != 1;  // absent zp: uint8, 0
        auto model = qdqModel("QuantizeLinear", c, DataType::kFloat, floatTensor(sd, scales), intTensor(type, sd, zps), withZp);
        auto out = runOutputs(model, {{"x", floatTensor(c.dims, xv)}}, threads);
        REQUIRE(out[0].dtype() == type);
        std::vector<int32_t> expected(xv.size());
        for (size_t i = 0; i < xv.size(); ++i) {
          const auto s = static_cast<size_t>(scaleIndex(c, static_cast<int64_t>(i)));
          expected[i] = refQuantize(xv[i], scales[s], withZp ? zps[s] : 0, type);
        }
        checkInts(out[0], expected);
      }
    }
  }
}

TEST_CASE("DequantizeLinear matches (x - zero_point) * scale", "[kernels][quant]") {
  std::mt19937_64 rng(2);
  for (DataType type : {DataType::kUint8, DataType::kInt8, DataType::kUint16, DataType::kInt16, DataType::kInt32}) {
    for (const QdqCase& c : kQdqCases) {
      CAPTURE(ir::dataTypeName(type), c.dims, c.axis, c.blockSize);
      const std::vector<int64_t> sd = scaleDims(c);
      const int64_t ns = numel(sd);
      const std::vector<float> scales = randomFloats(rng, ns, 0.01f, 0.1f);
      const int32_t lo = std::max(typeMin(type), -100000), hi = std::min(typeMax(type), 100000);
      const std::vector<int32_t> zps = randomInts(rng, ns, lo / 2, hi / 2);
      const std::vector<int32_t> xv = randomInts(rng, numel(c.dims), lo, hi);
      auto model = qdqModel("DequantizeLinear", c, type, floatTensor(sd, scales), intTensor(type, sd, zps), true);
      auto out = runOutputs(model, {{"x", intTensor(type, c.dims, xv)}}, 2);
      REQUIRE(out[0].dtype() == DataType::kFloat);
      for (size_t i = 0; i < xv.size(); ++i) {
        const auto s = static_cast<size_t>(scaleIndex(c, static_cast<int64_t>(i)));
        const float expected = static_cast<float>(xv[i] - zps[s]) * scales[s];
        if (out[0].data<float>()[i] != expected) FAIL("element " << i << ": " << out[0].data<float>()[i] << " vs " << expected);
      }
    }
  }
}

TEST_CASE("QuantizeLinear and DequantizeLinear take float16 scales and inputs", "[kernels][quant]") {
  GraphBuilder gb;
  ir::Value* x = gb.input("x", DataType::kFloat16, {2, 3});
  ir::Value* scale = gb.constant("s", ir::Tensor::fromVector(DataType::kFloat16, {}, std::vector<uint16_t>{ir::floatToHalf(0.5f)}));
  ir::Value* zp = gb.constant("zp", scalar(DataType::kInt8, -2));
  ir::Value* q = gb.node("QuantizeLinear", {x, scale, zp});
  gb.output(gb.node("DequantizeLinear", {q, scale, zp}));
  gb.output(q);
  std::vector<uint16_t> xv;
  for (float v : {-1.25f, 0.25f, 0.75f, 3.0f, 100.0f, -100.0f}) xv.push_back(ir::floatToHalf(v));
  auto out = runOutputs(gb.build(21), {{"x", ir::Tensor::fromVector(DataType::kFloat16, {2, 3}, xv)}});
  checkInts(out[1], {-4, -2, 0, 4, 127, -128});  // -2.5 -> -2, 0.5 -> 0, 1.5 -> 2 (half to even)
  REQUIRE(out[0].dtype() == DataType::kFloat16);
  const std::vector<float> expected{-1.0f, 0.0f, 1.0f, 3.0f, 64.5f, -63.0f};
  for (size_t i = 0; i < expected.size(); ++i) CHECK(ir::halfToFloat(out[0].data<uint16_t>()[i]) == expected[i]);
}

TEST_CASE("QuantizeLinear to int4 packs nibbles and to float8 rounds and saturates", "[kernels][quant]") {
  auto quantize = [](DataType to, std::vector<float> xs, float scale, int64_t saturate) {
    GraphBuilder gb;
    ir::Value* x = gb.input("x", DataType::kFloat, {static_cast<int64_t>(xs.size())});
    gb.output(gb.node("QuantizeLinear", {x, gb.constant("s", scalar(scale))},
                      {ir::Attribute::makeInt("output_dtype", static_cast<int64_t>(to)),
                       ir::Attribute::makeInt("saturate", saturate)}));
    auto out = runOutputs(gb.build(21), {{"x", ir::Tensor::fromVector(DataType::kFloat, {static_cast<int64_t>(xs.size())}, xs)}});
    REQUIRE(out[0].dtype() == to);
    std::vector<double> got;
    for (int64_t i = 0; i < out[0].numel(); ++i) got.push_back(out[0].valueAsDouble(i));
    return got;
  };
  // Round half to even, then saturate to [-8, 7] / [0, 15]; five values fill three bytes.
  CHECK(quantize(DataType::kInt4, {-9, -2.5, 0.5, 1.5, 20}, 1.0f, 1) == std::vector<double>{-8, -2, 0, 2, 7});
  CHECK(quantize(DataType::kUint4, {-3, 2.5, 3.5, 99}, 1.0f, 1) == std::vector<double>{0, 2, 4, 15});
  // x / 0.5: 2, 0.6 -> 0.625 (nearest E4M3 value), 600 and -2000 saturate to +-448.
  CHECK(quantize(DataType::kFloat8E4M3FN, {1.0f, 0.3f, 300, -1000}, 0.5f, 1) == std::vector<double>{2, 0.625, 448, -448});
  auto noSaturate = quantize(DataType::kFloat8E4M3FN, {300}, 0.5f, 0);
  CHECK(std::isnan(noSaturate[0]));
}

TEST_CASE("QuantizeLinear to a type it cannot produce is refused at compile time", "[kernels][quant]") {
  GraphBuilder gb;
  ir::Value* x = gb.input("x", DataType::kFloat, {4});
  gb.output(gb.node("QuantizeLinear", {x, gb.constant("s", scalar(0.5f))},
                    {ir::Attribute::makeInt("output_dtype", static_cast<int64_t>(DataType::kInt32))}, "q32"));
  auto session = runtime::Session::create(gb.build(21));
  REQUIRE_FALSE(session.isOk());
  CHECK(session.status().code() == StatusCode::kUnimplemented);
  CHECK_THAT(session.status().message(), Catch::Contains("q32") && Catch::Contains("int32"));
}

TEST_CASE("DequantizeLinear rejects a per-axis scale of the wrong length", "[kernels][quant]") {
  GraphBuilder gb;
  ir::Value* x = gb.input("x", DataType::kUint8, {2, 3});
  gb.output(gb.node("DequantizeLinear", {x, gb.constant("s", floatTensor({2}, {0.5f, 0.25f}))},
                    {ir::Attribute::makeInt("axis", 1)}));
  auto session = runtime::Session::create(gb.build(13));
  REQUIRE(session.isOk());
  auto out = (*session)->run({{"x", intTensor(DataType::kUint8, {2, 3}, {1, 2, 3, 4, 5, 6})}});
  REQUIRE_FALSE(out.isOk());
  CHECK(out.status().code() == StatusCode::kInvalidInput);
  CHECK_THAT(out.status().message(), Catch::Contains("per-axis scale"));
}

TEST_CASE("DynamicQuantizeLinear computes scale, zero point and values as ONNX Runtime", "[kernels][quant]") {
  std::mt19937_64 rng(3);
  for (int64_t n : {1, 6, 17, 70000}) {
    for (float shift : {-3.0f, 0.0f, 5.0f}) {
      GraphBuilder gb;
      ir::Value* x = gb.input("x", DataType::kFloat, {n});
      auto outs = gb.nodeN("DynamicQuantizeLinear", {x}, 3);
      for (ir::Value* v : outs) gb.output(v);
      std::vector<float> xv = randomFloats(rng, n, -2.0f + shift, 2.0f + shift);
      auto out = runOutputs(gb.build(11), {{"x", floatTensor({n}, xv)}}, 2);
      float lo = 0.0f, hi = 0.0f;
      for (float v : xv) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      const float scale = (hi - lo) / 255.0f;
      const auto zp = static_cast<int32_t>(std::nearbyint(std::clamp(0.0f - lo / scale, 0.0f, 255.0f)));
      CHECK(out[1].data<float>()[0] == scale);
      CHECK(static_cast<int32_t>(out[2].data<uint8_t>()[0]) == zp);
      std::vector<int32_t> expected(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) expected[i] = refQuantize(xv[i], scale, zp, DataType::kUint8);
      checkInts(out[0], expected);
    }
  }
}

// ---- QLinearMatMul / MatMulInteger ----

namespace {

struct MatMulCase {
  std::vector<int64_t> a, b;
};

const std::vector<MatMulCase> kMatMulCases = {
    {{1, 1}, {1, 1}},       {{1, 64}, {64, 16}},      {{15, 16}, {16, 17}},   {{16, 63}, {63, 64}},
    {{17, 65}, {65, 15}},   {{1, 1280}, {1280, 100}}, {{2, 3, 4, 5}, {5, 6}}, {{2, 1, 4, 5}, {3, 5, 6}},
    {{5}, {5, 3}},          {{4, 5}, {5}},
    // Large enough for the exact float accumulation where B is not a packed constant: K in
    // two chunks with broadcast batch dims, and an attention-like batched product.
    {{2, 3, 40, 300}, {3, 300, 33}}, {{1, 6, 64, 64}, {1, 6, 64, 70}},
};

// acc for numpy matmul broadcasting of a by b (int64), with zero points per tensor / row / column.
std::vector<int64_t> refMatMul(const MatMulCase& c, const std::vector<int32_t>& a, const std::vector<int32_t>& b,
                               const std::vector<int32_t>& aZp, const std::vector<int32_t>& bZp, std::vector<int64_t>& outDims) {
  std::vector<int64_t> ad = c.a, bd = c.b;
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  std::vector<int64_t> aB(ad.begin(), ad.end() - 2), bB(bd.begin(), bd.end() - 2);
  const size_t rank = std::max(aB.size(), bB.size());
  aB.insert(aB.begin(), rank - aB.size(), 1);
  bB.insert(bB.begin(), rank - bB.size(), 1);
  std::vector<int64_t> batch(rank);
  for (size_t i = 0; i < rank; ++i) batch[i] = std::max(aB[i], bB[i]);
  outDims = batch;
  if (c.a.size() > 1) outDims.push_back(m);
  if (c.b.size() > 1) outDims.push_back(n);
  std::vector<int64_t> acc;
  for (int64_t bi = 0; bi < numel(batch); ++bi) {
    int64_t rem = bi, ao = 0, bo = 0, as = 1, bs = 1;
    for (size_t d = rank; d-- > 0;) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      ao += (aB[d] == 1 ? 0 : idx) * as;
      bo += (bB[d] == 1 ? 0 : idx) * bs;
      as *= aB[d];
      bs *= bB[d];
    }
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        int64_t s = 0;
        const int32_t za = aZp.size() == 1 ? aZp[0] : aZp[static_cast<size_t>(i)];
        const int32_t zb = bZp.size() == 1 ? bZp[0] : bZp[static_cast<size_t>(j)];
        for (int64_t kk = 0; kk < k; ++kk) {
          s += static_cast<int64_t>(a[static_cast<size_t>(ao * m * k + i * k + kk)] - za) *
               (b[static_cast<size_t>(bo * k * n + kk * n + j)] - zb);
        }
        acc.push_back(s);
      }
    }
  }
  return acc;
}

}  // namespace

TEST_CASE("QLinearMatMul matches int32 accumulation and MLAS requantisation", "[kernels][quant]") {
  std::mt19937_64 rng(4);
  for (const MatMulCase& c : kMatMulCases) {
    for (int variant = 0; variant < 4; ++variant) {
      // 0: u8 x s8 constant B (oneDNN); 1: s8 x s8 constant, per-column scale; 2: u8 x u8 (zp 128,
      // shifted to int8); 3: runtime B with a non-zero zero point (reference).
      const DataType aType = variant == 1 ? DataType::kInt8 : DataType::kUint8;
      const DataType bType = variant >= 2 ? DataType::kUint8 : DataType::kInt8;
      const DataType yType = variant == 1 ? DataType::kInt8 : DataType::kUint8;
      const bool constB = variant != 3;
      const int64_t n = c.b.size() == 1 ? 1 : c.b.back();
      const bool perColumn = variant == 1 && c.b.size() > 1;
      CAPTURE(c.a, c.b, variant);
      const std::vector<int32_t> a = randomInts(rng, numel(c.a), typeMin(aType), typeMax(aType));
      const int32_t bZp = variant == 2 ? 128 : variant == 3 ? 9 : 0;
      const std::vector<int32_t> b = randomInts(rng, numel(c.b), std::max(bZp - 30, typeMin(bType)), bZp + 30);
      const int32_t aZp = variant == 1 ? -7 : 113;
      const std::vector<float> bScales = randomFloats(rng, perColumn ? n : 1, 0.002f, 0.01f);
      std::vector<int64_t> outDims;
      const std::vector<int64_t> acc = refMatMul(c, a, b, {aZp}, {bZp}, outDims);
      int64_t maxAbs = 1;
      for (int64_t v : acc) maxAbs = std::max<int64_t>(maxAbs, std::llabs(v));
      const float aScale = 0.05f;
      const float yScale = static_cast<float>(maxAbs) * aScale * 0.01f / 120.0f;
      const int32_t yZp = yType == DataType::kInt8 ? 4 : 130;
      for (int threads : {1, 2}) {
        GraphBuilder gb;
        ir::Value* av = gb.input("a", aType, c.a);
        ir::Value* bv = constB ? gb.constant("b", intTensor(bType, c.b, b)) : gb.input("b", bType, c.b);
        ir::Value* bs = gb.constant("bs", perColumn ? floatTensor({n}, bScales) : scalar(bScales[0]));
        ir::Value* bz = gb.constant("bz", perColumn ? intTensor(bType, {n}, std::vector<int32_t>(static_cast<size_t>(n), bZp))
                                                    : scalar(bType, bZp));
        gb.output(gb.node("QLinearMatMul", {av, gb.constant("as", scalar(aScale)), gb.constant("az", scalar(aType, aZp)), bv, bs,
                                            bz, gb.constant("ys", scalar(yScale)), gb.constant("yz", scalar(yType, yZp))}));
        std::vector<runtime::NamedTensor> feeds{{"a", intTensor(aType, c.a, a)}};
        if (!constB) feeds.emplace_back("b", intTensor(bType, c.b, b));
        auto out = runOutputs(gb.build(21), feeds, threads);
        REQUIRE(out[0].dims() == outDims);
        std::vector<int32_t> expected(acc.size());
        for (size_t i = 0; i < acc.size(); ++i) {
          const float bsv = perColumn ? bScales[i % static_cast<size_t>(n)] : bScales[0];
          expected[i] = refRequantize(acc[i], aScale * bsv / yScale, yZp, yType);
        }
        checkInts(out[0], expected);
      }
    }
  }
}

TEST_CASE("QLinearMatMul of two activations (K <= 258) requantises exact float products: the int32 result, extremes included",
          "[kernels][quant]") {
  // Attention's Q K^T and P V: both operands are run-time tensors, so the products run on oneDNN's
  // int8 matmul with B given per run (per-tensor zero points, VNNI), else as float tiles (4 x 16
  // in registers) requantised without int32 accumulators (per-column b zero points; ctest
  // quant_matmul_without_vnni runs every case so). Shapes with row and column tails, batch
  // broadcasting, per-column b zero points, and K = 258 with every product at +-65025 (a float
  // sum that lost a unit would show).
  struct Case {
    MatMulCase shape;
    DataType aType, bType, yType;
    bool perColumn, extreme;
  };
  const std::vector<Case> cases = {
      {{{1, 12, 16, 32}, {1, 12, 32, 16}}, DataType::kUint8, DataType::kUint8, DataType::kUint8, false, false},
      {{{1, 12, 16, 16}, {1, 12, 16, 32}}, DataType::kUint8, DataType::kInt8, DataType::kInt8, true, false},
      {{{2, 5, 7}, {7, 33}}, DataType::kInt8, DataType::kUint8, DataType::kUint8, true, false},
      {{{3, 1, 9, 40}, {4, 40, 17}}, DataType::kInt8, DataType::kInt8, DataType::kInt8, false, false},
      {{{2, 1, 64, 80}, {3, 80, 40}}, DataType::kInt8, DataType::kInt8, DataType::kInt8, false, false},
      {{{1, 2, 50, 96}, {1, 2, 96, 50}}, DataType::kInt8, DataType::kUint8, DataType::kUint8, false, false},
      // One query row against many keys (a decoder step's attention): >= 2^16 products but one row
      // of A, so the float tiles run it (kOnednnActivationMinRows).
      {{{2, 1, 256}, {256, 300}}, DataType::kUint8, DataType::kUint8, DataType::kInt8, false, false},
      {{{2, 70, 258}, {2, 258, 20}}, DataType::kUint8, DataType::kUint8, DataType::kUint8, false, true},
      {{{6, 258}, {258, 65}}, DataType::kInt8, DataType::kUint8, DataType::kInt8, true, true},
  };
  std::mt19937_64 rng(12);
  for (const Case& c : cases) {
    CAPTURE(c.shape.a, c.shape.b, ir::dataTypeName(c.aType), ir::dataTypeName(c.bType), c.perColumn, c.extreme);
    const int64_t n = c.shape.b.back();
    const int32_t aZp = c.extreme ? typeMin(c.aType) : (typeMin(c.aType) + typeMax(c.aType)) / 2 + 3;
    std::vector<int32_t> bZp = c.perColumn ? randomInts(rng, n, typeMin(c.bType) + 100, typeMin(c.bType) + 150)
                                           : std::vector<int32_t>{c.extreme ? typeMin(c.bType) : typeMin(c.bType) + 128};
    std::vector<int32_t> a = randomInts(rng, numel(c.shape.a), typeMin(c.aType), typeMax(c.aType));
    std::vector<int32_t> b = randomInts(rng, numel(c.shape.b), typeMin(c.bType), typeMax(c.bType));
    if (c.extreme) {  // a - aZp = 255, b as far from its zero point as its type allows
      std::fill(a.begin(), a.end(), typeMax(c.aType));
      for (size_t i = 0; i < b.size(); ++i) {
        const int32_t z = bZp[c.perColumn ? i % static_cast<size_t>(n) : 0];
        b[i] = z - typeMin(c.bType) > 127 ? typeMin(c.bType) : typeMax(c.bType);
      }
      a[3] = typeMax(c.aType) - 1;
    }
    std::vector<int64_t> outDims;
    const std::vector<int64_t> acc = refMatMul(c.shape, a, b, {aZp}, bZp, outDims);
    int64_t maxAbs = 1;
    for (int64_t v : acc) maxAbs = std::max<int64_t>(maxAbs, std::llabs(v));
    const std::vector<float> bScales = randomFloats(rng, c.perColumn ? n : 1, 0.002f, 0.01f);
    const float aScale = 0.04f, yScale = static_cast<float>(maxAbs) * aScale * 0.01f / 100.0f;
    const int32_t yZp = c.yType == DataType::kInt8 ? -3 : 121;
    GraphBuilder gb;
    ir::Value* bs = gb.constant("bs", c.perColumn ? floatTensor({n}, bScales) : scalar(bScales[0]));
    ir::Value* bz = gb.constant("bz", c.perColumn ? intTensor(c.bType, {n}, bZp) : scalar(c.bType, bZp[0]));
    gb.output(gb.node("QLinearMatMul", {gb.input("a", c.aType, c.shape.a), gb.constant("as", scalar(aScale)),
                                        gb.constant("az", scalar(c.aType, aZp)), gb.input("b", c.bType, c.shape.b), bs, bz,
                                        gb.constant("ys", scalar(yScale)), gb.constant("yz", scalar(c.yType, yZp))}));
    auto out = runOutputs(gb.build(21), {{"a", intTensor(c.aType, c.shape.a, a)}, {"b", intTensor(c.bType, c.shape.b, b)}}, 1);
    REQUIRE(out[0].dims() == outDims);
    std::vector<int32_t> expected(acc.size());
    for (size_t i = 0; i < acc.size(); ++i) {
      expected[i] = refRequantize(acc[i], aScale * bScales[c.perColumn ? i % static_cast<size_t>(n) : 0] / yScale, yZp, c.yType);
    }
    checkInts(out[0], expected);
  }
}

TEST_CASE("MatMulInteger matches int32 accumulation", "[kernels][quant]") {
  std::mt19937_64 rng(5);
  for (const MatMulCase& c : kMatMulCases) {
    for (int variant = 0; variant < 3; ++variant) {
      // 0: u8 x s8 constant B, scalar a_zp (oneDNN); 1: per-row a_zp and per-column b_zp; 2: runtime B.
      CAPTURE(c.a, c.b, variant);
      const int64_t m = c.a.size() == 1 ? 1 : c.a[c.a.size() - 2];
      const int64_t n = c.b.size() == 1 ? 1 : c.b.back();
      const std::vector<int32_t> a = randomInts(rng, numel(c.a), 0, 255);
      const std::vector<int32_t> b = randomInts(rng, numel(c.b), -100, 100);
      std::vector<int32_t> aZp{77}, bZp{0};
      if (variant == 1) {
        aZp = randomInts(rng, m, 0, 255);
        bZp = randomInts(rng, n, -5, 5);
      }
      std::vector<int64_t> outDims;
      const std::vector<int64_t> acc = refMatMul(c, a, b, aZp, bZp, outDims);
      GraphBuilder gb;
      ir::Value* av = gb.input("a", DataType::kUint8, c.a);
      ir::Value* bv = variant == 2 ? gb.input("b", DataType::kInt8, c.b) : gb.constant("b", intTensor(DataType::kInt8, c.b, b));
      ir::Value* az = gb.constant("az", aZp.size() == 1 ? scalar(DataType::kUint8, aZp[0]) : intTensor(DataType::kUint8, {m}, aZp));
      ir::Value* bz = gb.constant("bz", bZp.size() == 1 ? scalar(DataType::kInt8, bZp[0]) : intTensor(DataType::kInt8, {n}, bZp));
      gb.output(gb.node("MatMulInteger", {av, bv, az, bz}));
      std::vector<runtime::NamedTensor> feeds{{"a", intTensor(DataType::kUint8, c.a, a)}};
      if (variant == 2) feeds.emplace_back("b", intTensor(DataType::kInt8, c.b, b));
      auto out = runOutputs(gb.build(10), feeds, 2);
      REQUIRE(out[0].dtype() == DataType::kInt32);
      REQUIRE(out[0].dims() == outDims);
      checkInts(out[0], std::vector<int32_t>(acc.begin(), acc.end()));
    }
  }
}

TEST_CASE("MatMulInteger with any constant b zero point and a run-time a_zero_point matches int32 accumulation",
          "[kernels][quant]") {
  // oneDNN multiplies by the shifted int8 B, the row sums add (wantZp - b_zp[n]) * sum_k (a - a_zp);
  // a new a_zero_point each run (as DynamicQuantizeLinear gives) only rewrites the folded bias.
  struct ZpVariant {
    const char* name;
    DataType aType, bType;
    int32_t aZpLo, aZpHi, bZpLo, bZpHi;  // b_zp per column in [lo, hi]; lo == hi: per tensor
    bool bZpGiven;
  };
  const std::vector<ZpVariant> variants = {
      {"u8 a, u8 B per-tensor zp (onnx dynamic quantization)", DataType::kUint8, DataType::kUint8, 0, 255, 113, 113, true},
      {"u8 a, s8 B per-column zp", DataType::kUint8, DataType::kInt8, 90, 140, -7, 7, true},
      {"s8 a, u8 B per-column zp", DataType::kInt8, DataType::kUint8, -10, 10, 100, 160, true},
      {"s8 a, s8 B per-tensor zp", DataType::kInt8, DataType::kInt8, -3, 3, 9, 9, true},
      {"u8 a, u8 B without zp (0)", DataType::kUint8, DataType::kUint8, 0, 255, 0, 0, false},
  };
  const std::vector<MatMulCase> cases = {{{1, 64}, {64, 16}},   {{20, 1024}, {1024, 300}}, {{17, 65}, {65, 15}},
                                         {{2, 3, 4, 5}, {5, 6}}, {{5}, {5, 3}},            {{1, 1280}, {1280, 100}}};
  std::mt19937_64 rng(9);
  for (const MatMulCase& c : cases) {
    for (const ZpVariant& v : variants) {
      CAPTURE(c.a, c.b, v.name);
      const int64_t n = c.b.back();
      const std::vector<int32_t> bZp = v.bZpLo == v.bZpHi ? std::vector<int32_t>{v.bZpLo} : randomInts(rng, n, v.bZpLo, v.bZpHi);
      const std::vector<int32_t> b = randomInts(rng, numel(c.b), typeMin(v.bType), typeMax(v.bType));
      for (int threads : {1, 2}) {
        GraphBuilder gb;
        std::vector<ir::Value*> ins{gb.input("a", v.aType, c.a), gb.constant("b", intTensor(v.bType, c.b, b)), gb.input("az", v.aType, {})};
        if (v.bZpGiven) ins.push_back(gb.constant("bz", bZp.size() == 1 ? scalar(v.bType, bZp[0]) : intTensor(v.bType, {n}, bZp)));
        gb.output(gb.node("MatMulInteger", ins));
        runtime::SessionOptions options;
        options.threads = threads;
        auto session = runtime::Session::create(gb.build(10), options);
        REQUIRE(session.isOk());
        for (int round = 0; round < 3; ++round) {
          const int32_t aZp = randomInts(rng, 1, v.aZpLo, v.aZpHi)[0];
          const std::vector<int32_t> a = randomInts(rng, numel(c.a), typeMin(v.aType), typeMax(v.aType));
          std::vector<int64_t> outDims;
          const std::vector<int64_t> acc = refMatMul(c, a, b, {aZp}, bZp, outDims);
          auto out = (*session)->run({{"a", intTensor(v.aType, c.a, a)}, {"az", scalar(v.aType, aZp)}});
          REQUIRE(out.isOk());
          const ir::Tensor& y = (*out)[0].second;
          REQUIRE(y.dtype() == DataType::kInt32);
          REQUIRE(y.dims() == outDims);
          checkInts(y, std::vector<int32_t>(acc.begin(), acc.end()));
        }
      }
    }
  }
}

TEST_CASE("MatMulInteger stays exact with extreme operands over a long K", "[kernels][quant]") {
  // Every product is (0 - 255) * (255 - 0) = -65025: a float32 sum of more than 258 of them
  // would leave the exactly representable integers; the exact float path sums chunks of 258.
  for (int64_t k : {258, 259, 1000}) {
    CAPTURE(k);
    const MatMulCase c{{3, 2, k}, {k, 40}};
    std::vector<int32_t> a(static_cast<size_t>(numel(c.a)), 0), b(static_cast<size_t>(numel(c.b)), 255);
    a[1] = 254;  // one product differs, so a sum that lost its last unit would show
    std::vector<int64_t> outDims;
    const std::vector<int64_t> acc = refMatMul(c, a, b, {255}, {0}, outDims);
    GraphBuilder gb;
    gb.output(gb.node("MatMulInteger", {gb.input("a", DataType::kUint8, c.a), gb.input("b", DataType::kUint8, c.b),
                                        gb.constant("az", scalar(DataType::kUint8, 255)),
                                        gb.constant("bz", scalar(DataType::kUint8, 0))}));
    auto out = runOutputs(gb.build(10),
                          {{"a", intTensor(DataType::kUint8, c.a, a)}, {"b", intTensor(DataType::kUint8, c.b, b)}}, 1);
    REQUIRE(out[0].dims() == outDims);
    checkInts(out[0], std::vector<int32_t>(acc.begin(), acc.end()));
  }
}

TEST_CASE("QGemm adds the int32 bias and requantises or scales to float", "[kernels][quant]") {
  std::mt19937_64 rng(6);
  const int64_t m = 5, k = 17, n = 6;
  const std::vector<int32_t> a = randomInts(rng, m * k, 0, 255), b = randomInts(rng, n * k, -60, 60), c = randomInts(rng, n, -300, 300);
  const float alpha = 0.75f, as = 0.02f, bs = 0.01f, ys = 0.05f;
  for (bool requant : {true, false}) {
    GraphBuilder gb;
    ir::Value* av = gb.input("a", DataType::kUint8, {m, k});
    std::vector<ir::Value*> ins{av, gb.constant("as", scalar(as)), gb.constant("az", scalar(DataType::kUint8, 100)),
                                gb.constant("b", intTensor(DataType::kInt8, {n, k}, b)), gb.constant("bs", scalar(bs)),
                                gb.constant("bz", scalar(DataType::kInt8, 0)), gb.constant("c", intTensor(DataType::kInt32, {n}, c))};
    if (requant) {
      ins.push_back(gb.constant("ys", scalar(ys)));
      ins.push_back(gb.constant("yz", scalar(DataType::kUint8, 120)));
    }
    gb.output(gb.node("QGemm", ins, {ir::Attribute::makeInt("transB", 1), ir::Attribute::makeFloat("alpha", alpha)}, "qg", "com.microsoft"));
    auto out = runOutputs(gb.build(17), {{"a", intTensor(DataType::kUint8, {m, k}, a)}});
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        int64_t acc = c[static_cast<size_t>(j)];
        for (int64_t kk = 0; kk < k; ++kk) acc += static_cast<int64_t>(a[static_cast<size_t>(i * k + kk)] - 100) * b[static_cast<size_t>(j * k + kk)];
        const int64_t idx = i * n + j;
        if (requant) {
          CHECK(out[0].data<uint8_t>()[idx] == refRequantize(acc, alpha * as * bs / ys, 120, DataType::kUint8));
        } else {
          CHECK(out[0].data<float>()[idx] == static_cast<float>(acc) * (alpha * as * bs));
        }
      }
    }
  }
}
