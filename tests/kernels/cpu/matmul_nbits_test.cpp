// com.microsoft MatMulNBits: every instruction-set path (scalar reference, AVX2, AVX-512, as the
// CPU has them) and both the register (GEMV) and the dequantize-panel + sgemm paths, against a
// double-precision product of the dequantized weights, over shapes with K off the block size,
// odd N, M = 1 and M = 512, with and without zero points and bias, 4 and 8 bits.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "cpu/matmul_nbits.h"
#include "support/graph_builder.h"
#include "support/nbits_data.h"
#include "support/kernel_harness.h"
#include "support/python.h"
#include "support/temp_dir.h"

using namespace whittle;
using ir::DataType;
using runtime::cpu::nbits::Isa;
using testing::makeData;
using testing::NBitsCase;
using testing::NBitsData;

namespace {

/// Checks y against the double product; the bound scales with sum |a * w| of each output.
void checkAgainstDouble(const NBitsCase& c, const NBitsData& d, const float* y) {
  double worst = 0;
  for (int64_t r = 0; r < c.m; ++r) {
    for (int64_t col = 0; col < c.n; ++col) {
      double acc = c.bias ? d.bias[static_cast<size_t>(col)] : 0.0, mag = 1e-6;
      for (int64_t k = 0; k < c.k; ++k) {
        const double p = d.a[static_cast<size_t>(r * c.k + k)] * d.w[static_cast<size_t>(k * c.n + col)];
        acc += p;
        mag += std::abs(p);
      }
      worst = std::max(worst, std::abs(y[r * c.n + col] - acc) / mag);
    }
  }
  CHECK(worst < 2e-6 * std::sqrt(static_cast<double>(c.k)) + 1e-6);
}

const std::vector<NBitsCase> kCases = {
    // m, k, n, bits, block, zero points, bias
    {1, 64, 16, 4, 32, false, false},   {1, 100, 7, 4, 32, true, true},   {1, 576, 33, 4, 128, false, false},
    {3, 40, 9, 4, 16, true, false},     {2, 200, 31, 8, 64, true, true},  {1, 130, 5, 8, 128, false, true},
    {4, 48, 17, 4, 16, false, true},    {5, 100, 7, 4, 32, true, true},   {512, 96, 70, 4, 32, true, true},
    {512, 130, 33, 8, 64, false, false}, {17, 300, 200, 4, 128, true, false},
};

std::vector<Isa> availableIsas() {
  std::vector<Isa> isas = {Isa::kScalar};
  if (runtime::cpu::nbits::bestIsa() != Isa::kScalar) isas.push_back(Isa::kAvx2);
  if (runtime::cpu::nbits::bestIsa() == Isa::kAvx512) isas.push_back(Isa::kAvx512);
  return isas;
}

}  // namespace

TEST_CASE("MatMulNBits kernels match a double-precision reference on every instruction set", "[kernels][nbits]") {
  std::mt19937_64 rng(16);
  for (NBitsCase c : kCases) {
    for (bool floatZp : {false, true}) {
      if (floatZp && !c.zeroPoints) continue;
      c.floatZeroPoints = floatZp;
      const NBitsData d = makeData(c, rng);
      auto packed = runtime::cpu::nbits::packMatMulNBits(d.b, d.scales, c.zeroPoints ? &d.zp : nullptr, c.k, c.n, c.bits,
                                                          c.block, "MatMulNBits 'test'");
      REQUIRE(packed.isOk());
      for (Isa isa : availableIsas()) {
        for (int threads : {1, 2}) {
          CAPTURE(c.m, c.k, c.n, c.bits, c.block, c.zeroPoints, floatZp, c.bias, runtime::cpu::nbits::isaName(isa), threads);
          std::vector<float> y(static_cast<size_t>(c.m * c.n), -1.0f), scratch;
          Status st = runtime::cpu::nbits::matmul(*packed, d.a.data(), c.m, c.bias ? d.bias.data() : nullptr, y.data(),
                                                  threads, isa, scratch);
          REQUIRE(st.isOk());
          checkAgainstDouble(c, d, y.data());
        }
      }
    }
  }
}

TEST_CASE("MatMulNBits dequantized panels agree across instruction sets", "[kernels][nbits]") {
  std::mt19937_64 rng(3);
  const NBitsCase c{1, 88, 9, 4, 16, true, false};  // 6 blocks of 16, kPad 96
  const NBitsData d = makeData(c, rng);
  auto packed = runtime::cpu::nbits::packMatMulNBits(d.b, d.scales, &d.zp, c.k, c.n, c.bits, c.block, "t");
  REQUIRE(packed.isOk());
  std::vector<float> ref(static_cast<size_t>(c.n * packed->kPad));
  runtime::cpu::nbits::dequantizeColumns(*packed, 0, c.n, ref.data(), Isa::kScalar);
  for (int64_t col = 0; col < c.n; ++col) {
    for (int64_t k = 0; k < c.k; ++k) {
      CHECK(ref[static_cast<size_t>(col * packed->kPad + k)] == Approx(d.w[static_cast<size_t>(k * c.n + col)]).margin(1e-6));
    }
    const int64_t blocksEnd = (c.k + c.block - 1) / c.block * c.block;  // whole padding blocks dequantize to 0
    for (int64_t k = blocksEnd; k < packed->kPad; ++k) CHECK(ref[static_cast<size_t>(col * packed->kPad + k)] == 0.0f);
  }
  for (Isa isa : availableIsas()) {
    std::vector<float> got(ref.size());
    runtime::cpu::nbits::dequantizeColumns(*packed, 0, c.n, got.data(), isa);
    CHECK(got == ref);
  }
}

TEST_CASE("MatMulNBits k-major panels are the columns transposed on every instruction set", "[kernels][nbits]") {
  std::mt19937_64 rng(5);
  for (const NBitsCase c : {NBitsCase{1, 88, 37, 4, 16, true, false}, NBitsCase{1, 300, 40, 8, 64, false, false}}) {
    const NBitsData d = makeData(c, rng);
    auto packed = runtime::cpu::nbits::packMatMulNBits(d.b, d.scales, c.zeroPoints ? &d.zp : nullptr, c.k, c.n, c.bits,
                                                        c.block, "t");
    REQUIRE(packed.isOk());
    const int64_t kPad = packed->kPad;
    std::vector<float> columns(static_cast<size_t>(c.n * kPad));
    runtime::cpu::nbits::dequantizeColumns(*packed, 0, c.n, columns.data(), Isa::kScalar);
    // Columns 3 .. n of the weight (an offset panel, not a multiple of 16 wide), rows 7 floats apart more than the panel.
    const int64_t n0 = 3, cols = c.n - n0, ld = cols + 7;
    // All kPad rows, and 16 fewer (a panel's rows end half-way through a group of 32 k).
    for (const int64_t rows : {kPad, kPad - 16}) {
      for (Isa isa : availableIsas()) {
        CAPTURE(c.k, c.n, c.bits, rows, runtime::cpu::nbits::isaName(isa));
        std::vector<float> panel(static_cast<size_t>(kPad * ld), -7.0f), scratch;
        runtime::cpu::nbits::dequantizeKMajor(*packed, n0, c.n, panel.data(), ld, rows, isa, scratch);
        int64_t wrong = 0;
        for (int64_t k = 0; k < kPad; ++k) {
          for (int64_t j = 0; j < ld; ++j) {
            // Columns past the panel and rows past `rows` stay untouched.
            const float want = j < cols && k < rows ? columns[static_cast<size_t>((n0 + j) * kPad + k)] : -7.0f;
            wrong += panel[static_cast<size_t>(k * ld + j)] != want ? 1 : 0;
          }
        }
        CHECK(wrong == 0);
      }
    }
  }
}

namespace {

ir::Model nbitsModel(const NBitsCase& c, const NBitsData& d, std::vector<int64_t> aDims, const ir::Tensor* gidx) {
  testing::GraphBuilder gb;
  ir::Value* a = gb.input("a", DataType::kFloat, aDims);
  std::vector<ir::Value*> inputs = {a, gb.constant("b", d.b), gb.constant("scales", d.scales),
                                    c.zeroPoints ? gb.constant("zp", d.zp) : nullptr,
                                    gidx != nullptr ? gb.constant("g_idx", *gidx) : nullptr,
                                    c.bias ? gb.constant("bias", {c.n}, d.bias) : nullptr};
  while (inputs.back() == nullptr) inputs.pop_back();
  gb.output(gb.node("MatMulNBits", inputs,
                    {ir::Attribute::makeInt("K", c.k), ir::Attribute::makeInt("N", c.n), ir::Attribute::makeInt("bits", c.bits),
                     ir::Attribute::makeInt("block_size", c.block)},
                    "mm", "com.microsoft"));
  return gb.build(17);
}

}  // namespace

TEST_CASE("MatMulNBits runs in a session: batch dims, bias, trivial g_idx; act-order is refused", "[kernels][nbits]") {
  std::mt19937_64 rng(5);
  const NBitsCase c{6, 72, 11, 4, 32, true, true};
  const NBitsData d = makeData(c, rng);
  ir::Tensor gidx(DataType::kInt32, {c.k});
  for (int64_t i = 0; i < c.k; ++i) gidx.mutableData<int32_t>()[i] = static_cast<int32_t>(i / c.block);
  for (const ir::Tensor* g : std::vector<const ir::Tensor*>{nullptr, &gidx}) {
    for (int threads : {1, 2}) {
      ir::Tensor a(DataType::kFloat, {2, 3, c.k});
      std::copy(d.a.begin(), d.a.end(), a.mutableData<float>());
      auto out = testing::runOutputs(nbitsModel(c, d, {2, 3, c.k}, g), {{"a", a}}, threads);
      REQUIRE(out[0].dims() == std::vector<int64_t>{2, 3, c.n});
      checkAgainstDouble(c, d, out[0].data<float>());
    }
  }
  gidx.mutableData<int32_t>()[0] = 1;
  auto result = testing::tryRunModel(nbitsModel(c, d, {2, 3, c.k}, &gidx), {{"a", ir::Tensor(DataType::kFloat, {2, 3, c.k})}});
  REQUIRE_FALSE(result.isOk());
  CHECK_THAT(result.status().message(), Catch::Contains("act-order"));
}

TEST_CASE("MatMulNBits in a session: one panel of all N, or several when a weight's floats pass kMaxPanelBytes",
          "[kernels][nbits]") {
  // N = 200 and 48: one panel each (N rounded up to 64 columns), the GEMM writing y directly. K = 32
  // and N just over kMaxPanelBytes / (32 * 4) columns: two panels, the second a partial one, each
  // product copied into its columns of y.
  const int64_t wide = runtime::cpu::nbits::kMaxPanelBytes / (32 * 4) + 70;
  std::mt19937_64 rng(12);
  for (const NBitsCase c : {NBitsCase{9, 1024, 200, 4, 128, true, true}, NBitsCase{9, 1024, 48, 4, 64, false, false},
                            NBitsCase{5, 32, wide, 4, 32, true, true}}) {
    INFO("N = " << c.n);
    const NBitsData d = makeData(c, rng);
    for (int threads : {1, 2}) {
      INFO("threads " << threads);
      ir::Tensor a(DataType::kFloat, {c.m, c.k});
      std::copy(d.a.begin(), d.a.end(), a.mutableData<float>());
      auto out = testing::runOutputs(nbitsModel(c, d, {c.m, c.k}, nullptr), {{"a", a}}, threads);
      REQUIRE(out[0].dims() == std::vector<int64_t>{c.m, c.n});
      checkAgainstDouble(c, d, out[0].data<float>());
    }
  }
}

TEST_CASE("MatMulNBits refuses bits it does not run and malformed weights, naming the node", "[kernels][nbits]") {
  std::mt19937_64 rng(6);
  NBitsCase c{1, 64, 4, 4, 32, false, false};
  NBitsData d = makeData(c, rng);
  auto bad = runtime::cpu::nbits::packMatMulNBits(d.b, d.scales, nullptr, c.k, c.n, 3, c.block, "MatMulNBits 'x'");
  REQUIRE_FALSE(bad.isOk());
  CHECK_THAT(bad.status().message(), Catch::Contains("MatMulNBits 'x'") && Catch::Contains("bits=3"));
  auto wrongK = runtime::cpu::nbits::packMatMulNBits(d.b, d.scales, nullptr, 100, c.n, 4, c.block, "MatMulNBits 'x'");
  REQUIRE_FALSE(wrongK.isOk());
  CHECK_THAT(wrongK.status().message(), Catch::Contains("B must be uint8"));
  auto oddBlock = runtime::cpu::nbits::packMatMulNBits(d.b, d.scales, nullptr, c.k, c.n, 4, 24, "MatMulNBits 'x'");
  REQUIRE_FALSE(oddBlock.isOk());
  CHECK_THAT(oddBlock.status().message(), Catch::Contains("power of two"));
}

TEST_CASE("MatMulNBits and block-wise DequantizeLinear -> MatMul match ONNX Runtime on its own quantized models",
          "[kernels][nbits][ort]") {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  testing::TempDir dir;
  auto cases = testing::referenceCases("tests/kernels/cpu/nbits_ort_reference.py", dir.path());
  int acc4 = 0;
  for (const testing::ReferenceCase& c : cases) {
    CAPTURE(c.name);
    const ir::Tensor& a = c.arrays.at("a");
    // accuracy_level 4: ONNX Runtime quantizes A to int8 per block, whittle too where the CPU has
    // AVX-512 VNNI (elsewhere it keeps float activations: ORT's level-0 output is the reference).
    const bool int8 = c.name.find("_acc4") != std::string::npos;
    const bool whittleInt8 = int8 && runtime::cpu::nbits::int8VnniAvailable();
    const ir::Tensor& y = int8 && !whittleInt8 ? c.arrays.at("y_float") : c.arrays.at("y");
    double scale = 1e-6;
    for (int64_t i = 0; i < y.numel(); ++i) scale = std::max(scale, static_cast<double>(std::abs(y.data<float>()[i])));
    if (int8) {
      // The int8 rounding of A moves ORT's own output by about 0.5 % of its largest value on these
      // cases; whittle's int8 path must land on ORT's int8 result, far closer than that.
      ++acc4;
      const ir::Tensor& yf = c.arrays.at("y_float");
      double gap = 0;
      for (int64_t i = 0; i < y.numel(); ++i) {
        gap = std::max(gap, static_cast<double>(std::abs(c.arrays.at("y").data<float>()[i] - yf.data<float>()[i])));
      }
      CHECK(gap / scale > 1e-3);
    }
    for (int threads : {1, 2}) {
      auto got = testing::runOutputs(c.model, {{"a", a}}, threads);
      REQUIRE(got[0].dims() == y.dims());
      double worst = 0;
      for (int64_t i = 0; i < y.numel(); ++i) {
        worst = std::max(worst, static_cast<double>(std::abs(got[0].data<float>()[i] - y.data<float>()[i])));
      }
      CHECK(worst / scale < 1e-5);
    }
  }
  CHECK(cases.size() == 60);
  CHECK(acc4 == 24);
}
