// QLinearMatMul, MatMulInteger and com.microsoft QGemm (its reference; the oneDNN path is quant_gemm.cpp).
//
//   acc[m, n] = sum_k (a[m, k] - a_zp) * (b[k, n] - b_zp[n])        (numpy matmul broadcasting)
//   MatMulInteger: y = acc (int32)
//   QLinearMatMul: y = saturate(round_half_even(float(acc) * (a_scale * b_scale[n] / y_scale)) + y_zp)
//   QGemm:         acc += C (int32); y as QLinearMatMul with scale alpha * a_scale * b_scale[n]
//                  (/ y_scale), or float(acc) * scale when there is no y_scale
//
// Fast path: a constant 2-D int8 B with zero points 0 (or uint8 with zero points 128, shifted)
// runs on a oneDNN int8 matmul with B packed once; a's zero point is folded into an int32 bias
// (bias[n] = -a_zp * sum_k b[k, n]), per-column output scales and eltwise_round give MLAS's
// requantisation. MatMulInteger takes any constant b_zero_point (per tensor or per column): with
// b8 = b - 128 (uint8) or b (int8) and c_n = 128 - b_zp[n] (or -b_zp[n]),
//   acc[m, n] = sum_k (a[m, k] - a_zp) * b8[k, n] + c_n * sum_k (a[m, k] - a_zp),
// oneDNN computes the first term and the row sums add the second (wrapping int32, exact); its
// a_zero_point (a DynamicQuantizeLinear output in onnx's dynamic quantization) only rewrites the
// folded bias, the primitive is kept. Everything else accumulates exactly through float32 GEMMs
// (below) when the problem is large, else runs the reference: int16 operands, int32 dot products.
//
// Two activations (QLinearMatMul, attention's Q K^T and P V in QDQ transformers: B computed, one
// zero point per tensor) run on a oneDNN u8/s8 x s8 matmul built once per shape, B given per run
// in plain layout: uint8 B as int8 (b ^ 0x80, its zero point less 128), a's and b's zero points
// as oneDNN zero points, a_scale * b_scale / y_scale as output scale, eltwise_round and y's zero
// point: exact int32 sums and MLAS's requantisation, as on the constant-B path. VitTrack's
// attention, 1 thread, CPU ms a product: [320, 48] x [48, 320] 0.111 -> 0.058, [320, 320] x
// [320, 48] 0.135 -> 0.037 (float32 MatMul: 0.090 and 0.087). Small products (MiniLM's 16 x 32 x
// 16 heads: kOnednnActivationMinMacs), per-column b zero points, and CPUs without VNNI
// (int8KernelsExact() false; ctest quant_matmul_without_vnni runs that way):
// Exact float accumulation (activation x activation products: attention's Q K^T and P V in
// QDQ transformers, Smart Turn's 20 of 34 QLinearMatMuls): the operands minus their zero points
// are integers of at most 255 in magnitude, so their products are at most 65025 and any sum of
// at most 258 of them stays below 2^24, where float32 holds every integer exactly. A GEMM over
// K in chunks of 258 therefore computes each chunk's dot products exactly, in any order of
// summation, and the chunks add up in int32 (wrapping as the reference does): the same
// accumulators as the reference, bit for bit.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstring>

#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu::quant {
namespace {

using ir::DataType;

// sum a[i] * b[i], wrapping modulo 2^32 as the int32 accumulators of MLAS and oneDNN do.
WH_QUANT_SIMD int32_t dotI16(const int16_t* a, const int16_t* b, int64_t k) {
  uint32_t sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += static_cast<uint32_t>(static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]));
  return static_cast<int32_t>(sum);
}

// Element i of a uint8/int8 tensor as int32.
inline int32_t byteAt(const ir::Tensor& t, int64_t i) {
  return t.dtype() == DataType::kInt8 ? static_cast<int32_t>(t.data<int8_t>()[i]) : static_cast<int32_t>(t.data<uint8_t>()[i]);
}

// The shapes of a numpy-style matmul of a [..., M, K] by b [..., K, N].
struct MatMulShape {
  int64_t m = 1, n = 1, k = 1;
  std::vector<int64_t> outDims;
  std::vector<int64_t> aOffsets, bOffsets;  // per output batch: element offset of the A and B matrices
};

Expected<MatMulShape> matmulShape(const KernelContext& ctx, const std::vector<int64_t>& aIn, const std::vector<int64_t>& bIn) {
  if (aIn.empty() || bIn.empty()) return ctx.error("matmul inputs must have rank >= 1");
  std::vector<int64_t> a = aIn, b = bIn;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  MatMulShape s;
  s.m = a[a.size() - 2];
  s.k = a.back();
  s.n = b.back();
  if (b[b.size() - 2] != s.k) {
    return ctx.error("cannot multiply " + shapeToString(aIn) + " by " + shapeToString(bIn));
  }
  std::vector<int64_t> aBatch(a.begin(), a.end() - 2), bBatch(b.begin(), b.end() - 2);
  auto batch = broadcastShapes(aBatch, bBatch);
  if (!batch) return ctx.error("batch dims of " + shapeToString(aIn) + " and " + shapeToString(bIn) + " do not broadcast");
  std::vector<int64_t> aStrides = broadcastStrides(aBatch, *batch), bStrides = broadcastStrides(bBatch, *batch);
  int64_t count = 1;
  for (int64_t d : *batch) count *= d;
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, ao = 0, bo = 0;
    for (size_t d = batch->size(); d-- > 0;) {
      const int64_t idx = rem % (*batch)[d];
      rem /= (*batch)[d];
      ao += idx * aStrides[d];
      bo += idx * bStrides[d];
    }
    s.aOffsets.push_back(ao * s.m * s.k);
    s.bOffsets.push_back(bo * s.k * s.n);
  }
  s.outDims = *batch;
  if (aIn.size() > 1) s.outDims.push_back(s.m);
  if (bIn.size() > 1) s.outDims.push_back(s.n);
  return s;
}

// out[i, kk] = a[i, kk] - a's zero point (row i's, or the one for all), for one batch entry of
// a at `offset`, read transposed when transA.
template <class T>
void centredRows(const ir::Tensor& a, int64_t offset, const MatMulShape& s, const std::vector<int32_t>& aZp, bool transA,
                 T* out) {
  for (int64_t i = 0; i < s.m; ++i) {
    const int32_t z = aZp.size() == 1 ? aZp[0] : aZp[static_cast<size_t>(i)];
    for (int64_t kk = 0; kk < s.k; ++kk) {
      const int64_t idx = transA ? kk * s.m + i : i * s.k + kk;
      out[i * s.k + kk] = static_cast<T>(byteAt(a, offset + idx) - z);
    }
  }
}

// acc for every batch: reference path. aZp has 1 or M values, bZp 1 or N values.
void referenceMatMul(const ir::Tensor& a, const ir::Tensor& b, const MatMulShape& s, const std::vector<int32_t>& aZp,
                     const std::vector<int32_t>& bZp, bool transA, bool transB, int32_t* acc) {
  std::vector<int16_t> aRows(static_cast<size_t>(s.m * s.k)), bCols(static_cast<size_t>(s.n * s.k));
  for (size_t batch = 0; batch < s.aOffsets.size(); ++batch) {
    const int64_t ao = s.aOffsets[batch], bo = s.bOffsets[batch];
    centredRows(a, ao, s, aZp, transA, aRows.data());
    for (int64_t j = 0; j < s.n; ++j) {
      const int32_t z = bZp.size() == 1 ? bZp[0] : bZp[static_cast<size_t>(j)];
      for (int64_t kk = 0; kk < s.k; ++kk) {
        const int64_t idx = transB ? j * s.k + kk : kk * s.n + j;
        bCols[static_cast<size_t>(j * s.k + kk)] = static_cast<int16_t>(byteAt(b, bo + idx) - z);
      }
    }
    int32_t* out = acc + static_cast<int64_t>(batch) * s.m * s.n;
#pragma omp parallel for if (s.m * s.n * s.k > (1 << 20))
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < s.n; ++j) {
        const int32_t dot = dotI16(&aRows[static_cast<size_t>(i * s.k)], &bCols[static_cast<size_t>(j * s.k)], s.k);
        out[i * s.n + j] = static_cast<int32_t>(static_cast<uint32_t>(out[i * s.n + j]) + static_cast<uint32_t>(dot));
      }
    }
  }
}

// ---- exact float products (see the top of the file) ----

constexpr int64_t kExactChunk = 258;  // 258 * 255 * 255 < 2^24

// out = the M x K rows of a batch entry of `a` (read transposed when `trans`) minus the zero
// point of their row (one value, or one per row), as float.
template <class X>
WH_QUANT_SIMD void centreRowsFloat(const X* a, int64_t m, int64_t k, bool trans, const int32_t* zp, bool zpPerRow, float* out) {
  for (int64_t i = 0; i < m; ++i) {
    const auto z = static_cast<float>(zp[zpPerRow ? i : 0]);
    float* row = out + i * k;
    if (trans) {
      for (int64_t kk = 0; kk < k; ++kk) row[kk] = static_cast<float>(a[kk * m + i]) - z;
    } else {
      for (int64_t kk = 0; kk < k; ++kk) row[kk] = static_cast<float>(a[i * k + kk]) - z;
    }
  }
}

// out = the K x N matrix of a batch entry of `b` (read transposed when `trans`) minus the zero
// point of its column (one value, or one per column), as float, in rows of `ld` >= N floats
// whose tail is zero.
template <class X>
WH_QUANT_SIMD void centreColsFloat(const X* b, int64_t k, int64_t n, bool trans, const int32_t* zp, bool zpPerCol, int64_t ld,
                                   float* out) {
  for (int64_t kk = 0; kk < k; ++kk) {
    float* row = out + kk * ld;
    for (int64_t j = 0; j < n; ++j) {
      row[j] = static_cast<float>(trans ? b[j * k + kk] : b[kk * n + j]) - static_cast<float>(zp[zpPerCol ? j : 0]);
    }
    std::fill(row + n, row + ld, 0.0f);
  }
}

// The M x K rows of the batch entry of `a` at element `offset`, centred, as float (see centreRowsFloat).
void centreRows(const ir::Tensor& a, int64_t offset, int64_t m, int64_t k, bool trans, const std::vector<int32_t>& zp, float* out) {
  if (a.dtype() == DataType::kInt8) {
    centreRowsFloat(reinterpret_cast<const int8_t*>(a.rawData()) + offset, m, k, trans, zp.data(), zp.size() > 1, out);
  } else {
    centreRowsFloat(reinterpret_cast<const uint8_t*>(a.rawData()) + offset, m, k, trans, zp.data(), zp.size() > 1, out);
  }
}

// The K x N matrix of the batch entry of `b` at element `offset`, centred, as float in rows of `ld`.
void centreCols(const ir::Tensor& b, int64_t offset, int64_t k, int64_t n, bool trans, const std::vector<int32_t>& zp, int64_t ld,
                float* out) {
  if (b.dtype() == DataType::kInt8) {
    centreColsFloat(reinterpret_cast<const int8_t*>(b.rawData()) + offset, k, n, trans, zp.data(), zp.size() > 1, ld, out);
  } else {
    centreColsFloat(reinterpret_cast<const uint8_t*>(b.rawData()) + offset, k, n, trans, zp.data(), zp.size() > 1, ld, out);
  }
}

// acc for every batch through exact float32 GEMMs (see the top of the file); the same result
// as referenceMatMul.
void floatExactMatMul(const ir::Tensor& a, const ir::Tensor& b, const MatMulShape& s, const std::vector<int32_t>& aZp,
                      const std::vector<int32_t>& bZp, bool transA, bool transB, int32_t* acc) {
  std::vector<float> aF(static_cast<size_t>(s.m * s.k)), bF(static_cast<size_t>(s.k * s.n)),
      part(static_cast<size_t>(s.m * s.n));
  int64_t lastB = -1;
  for (size_t batch = 0; batch < s.aOffsets.size(); ++batch) {
    centreRows(a, s.aOffsets[batch], s.m, s.k, transA, aZp, aF.data());
    if (s.bOffsets[batch] != lastB) centreCols(b, lastB = s.bOffsets[batch], s.k, s.n, transB, bZp, s.n, bF.data());
    int32_t* out = acc + static_cast<int64_t>(batch) * s.m * s.n;
    for (int64_t k0 = 0; k0 < s.k; k0 += kExactChunk) {
      const int64_t kc = std::min(kExactChunk, s.k - k0);
      dnnl_status_t st = dnnl_sgemm('N', 'N', s.m, s.n, kc, 1.0f, aF.data() + k0, s.k, bF.data() + k0 * s.n, s.n, 0.0f,
                                    part.data(), s.n);
      WH_CHECK(st == dnnl_success, "dnnl_sgemm failed on valid dims");
      for (int64_t i = 0; i < s.m * s.n; ++i) {
        out[i] = static_cast<int32_t>(static_cast<uint32_t>(out[i]) +
                                      static_cast<uint32_t>(static_cast<int32_t>(part[static_cast<size_t>(i)])));
      }
    }
  }
}

/// From this many multiply-adds per batch entry two activations go to oneDNN's int8 matmul; below,
/// its call costs more than the float tiles (1 thread, 12 heads of 16 x 32 x 16: 0.025 ms against
/// 0.011; of 64 x 32 x 64: 0.063 against 0.099).
constexpr int64_t kOnednnActivationMinMacs = int64_t{1} << 16;
/// ... and at least this many rows of A: B is handed over (and a uint8 B flipped to int8) on every
/// run, K x N bytes, which only many rows repay. A decoder's one-query attention (SLANet's Loop:
/// M = 1 against the encoder's keys) ran 64 -> 123 ms a run on oneDNN.
constexpr int64_t kOnednnActivationMinRows = 16;
/// A QLinearMatMul of two activations that needed more oneDNN primitives than this (its shape or
/// parameters changed between runs) keeps to the float products: building one costs more than
/// the products it would speed up.
constexpr int kMaxActivationPlanBuilds = 3;

/// Below this many multiply-adds per batch entry the reference's dot products are as fast.
constexpr int64_t kFloatExactMinMacs = int64_t{1} << 15;

// acc for every batch: exact float GEMMs for large problems, the reference for small ones.
void matMulAcc(const ir::Tensor& a, const ir::Tensor& b, const MatMulShape& s, const std::vector<int32_t>& aZp,
               const std::vector<int32_t>& bZp, bool transA, bool transB, int32_t* acc) {
  if (s.m * s.n * s.k >= kFloatExactMinMacs) {
    floatExactMatMul(a, b, s, aZp, bZp, transA, transB, acc);
  } else {
    referenceMatMul(a, b, s, aZp, bZp, transA, transB, acc);
  }
}

// ---- QLinearMatMul of two activations with K <= 258: one exact float product, requantised ----
//
// With K <= 258 every dot product is one exact float sum (the top of the file), so the
// QLinearMatMul output is requantised straight from it: no int32 accumulators, no chunks. Small
// batch entries (attention's 16 x 16 x 32 per head) run 4 x 16 register tiles, larger ones
// oneDNN's sgemm; both exact in any order of summation.

constexpr int64_t kTileRows = 4, kTileCols = 16;
using Float16Lanes = float __attribute__((vector_size(kTileCols * sizeof(float))));  // one zmm; two ymm or four xmm elsewhere

// y = a (M x K, rows padded with zeros to a multiple of kTileRows) * b (K x N in rows of ldb, a
// multiple of kTileCols, zero-padded), y M x N: 4 x 16 tiles of accumulators held in registers
// across K (accumulating in memory made every step wait on the store before it).
WH_QUANT_SIMD void smallSgemm(const float* a, const float* b, int64_t m, int64_t n, int64_t k, int64_t ldb, float* y) {
  for (int64_t i0 = 0; i0 < m; i0 += kTileRows) {
    for (int64_t j0 = 0; j0 < n; j0 += kTileCols) {
      Float16Lanes acc[kTileRows] = {};
      for (int64_t kk = 0; kk < k; ++kk) {
        Float16Lanes bv;
        std::memcpy(&bv, b + kk * ldb + j0, sizeof(bv));
        for (int64_t r = 0; r < kTileRows; ++r) acc[r] += a[(i0 + r) * k + kk] * bv;
      }
      for (int64_t r = 0; r < std::min(kTileRows, m - i0); ++r) {
        float tile[kTileCols];
        std::memcpy(tile, &acc[r], sizeof(tile));
        std::copy(tile, tile + std::min(kTileCols, n - j0), y + (i0 + r) * n + j0);
      }
    }
  }
}

// y[i, j] = saturate(round(acc[i, j] * scales[j or 0]) + zp), acc holding exact integers.
template <class Y>
WH_QUANT_SIMD void requantizeRows(const float* acc, int64_t rows, int64_t n, const float* scales, bool perCol, IntRange range,
                                  int32_t zp, Y* y) {
  const auto lo = static_cast<float>(range.lo - zp), hi = static_cast<float>(range.hi - zp);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      y[r * n + j] = static_cast<Y>(clampRoundAddZp(acc[r * n + j] * scales[perCol ? j : 0], lo, hi, zp));
    }
  }
}

// QLinearMatMul (no transposes) for s.k <= kExactChunk: y = requantised exact products.
// scales[j] = a_scale * b_scale[j] / y_scale (one value or N).
void exactFloatQLinear(const ir::Tensor& a, const ir::Tensor& b, const MatMulShape& s, const std::vector<int32_t>& aZp,
                       const std::vector<int32_t>& bZp, const std::vector<float>& scales, IntRange range, int32_t yZp,
                       ir::Tensor& y) {
  const int64_t mPad = (s.m + kTileRows - 1) / kTileRows * kTileRows, ldb = (s.n + kTileCols - 1) / kTileCols * kTileCols;
  std::vector<float> aF(static_cast<size_t>(mPad * s.k), 0.0f), bF(static_cast<size_t>(s.k * ldb)),
      part(static_cast<size_t>(s.m * s.n));
  int64_t lastB = -1;
  for (size_t batch = 0; batch < s.aOffsets.size(); ++batch) {
    centreRows(a, s.aOffsets[batch], s.m, s.k, false, aZp, aF.data());
    if (s.bOffsets[batch] != lastB) centreCols(b, lastB = s.bOffsets[batch], s.k, s.n, false, bZp, ldb, bF.data());
    if (s.m * s.n * s.k < (int64_t{1} << 18)) {
      smallSgemm(aF.data(), bF.data(), s.m, s.n, s.k, ldb, part.data());
    } else {
      dnnl_status_t st = dnnl_sgemm('N', 'N', s.m, s.n, s.k, 1.0f, aF.data(), s.k, bF.data(), ldb, 0.0f, part.data(), s.n);
      WH_CHECK(st == dnnl_success, "dnnl_sgemm failed on valid dims");
    }
    const int64_t offset = static_cast<int64_t>(batch) * s.m * s.n;
    if (y.dtype() == DataType::kInt8) {
      requantizeRows(part.data(), s.m, s.n, scales.data(), scales.size() > 1, range, yZp, y.mutableData<int8_t>() + offset);
    } else {
      requantizeRows(part.data(), s.m, s.n, scales.data(), scales.size() > 1, range, yZp, y.mutableData<uint8_t>() + offset);
    }
  }
}

Expected<std::vector<int32_t>> zeroPoints(const KernelContext& ctx, size_t i, const std::string& what, int64_t allowed,
                                          DataType valueType) {
  if (!ctx.hasInput(i)) return std::vector<int32_t>{0};
  const ir::Tensor& t = ctx.input(i);
  if (t.dtype() != valueType) return ctx.error(what + " is " + typeName(t.dtype()) + " but its input is " + typeName(valueType));
  if (t.numel() != 1 && (t.rank() != 1 || t.numel() != allowed)) {
    return ctx.unsupported(what + " of shape " + shapeToString(t.dims()) + " is not supported (one value or " +
                           std::to_string(allowed) + ")");
  }
  return readZeroPoints(t, ctx.node(), what);
}

Status checkByteType(const KernelContext& ctx, const ir::Tensor& t, const std::string& what) {
  if (t.dtype() == DataType::kUint8 || t.dtype() == DataType::kInt8) return Status::ok();
  return ctx.unsupported("input " + what + " of dtype " + typeName(t.dtype()) + " is not supported (uint8, int8 are)");
}

// ---- QLinearMatMul and MatMulInteger ----

class Int8MatMulKernel final : public Kernel {
 public:
  static Expected<std::unique_ptr<Kernel>> create(const KernelCreateInfo& info, bool qlinear) {
    auto k = std::unique_ptr<Int8MatMulKernel>(new Int8MatMulKernel(info, qlinear));
    WH_RETURN_IF_ERROR(k->prepare(info));
    return std::unique_ptr<Kernel>(std::move(k));
  }

  Status run(KernelContext& ctx) override {
    const ir::Tensor& a = ctx.input(0);
    // Steady state: same shape, constant parameters: straight to the primitive.
    if (plan_ && paramsConstant_ && a.dims() == plan_->aDims && a.dtype() == plan_->aType && plan_->threads == ctx.threads()) {
      return runOnednn(ctx, a, plan_->aZp);
    }
    const ir::Tensor& b = ctx.input(bIdx());
    WH_RETURN_IF_ERROR(checkByteType(ctx, a, "A"));
    WH_RETURN_IF_ERROR(checkByteType(ctx, b, "B"));
    WH_ASSIGN_OR_RETURN(MatMulShape s, matmulShape(ctx, a.dims(), b.dims()));
    Params p;
    WH_RETURN_IF_ERROR(readParams(ctx, s, p));
    if (fastPath_ && b.rank() == 2 && p.aZp.size() == 1) {
      Status st = ensurePlan(ctx, a, s, p);
      if (st.isOk()) return runOnednn(ctx, a, p.aZp[0]);
      if (st.code() != StatusCode::kUnimplemented) return st;
      fastPath_ = false;
    }
    if (qlinear_ && activationsFast_ && b.rank() >= 2 && p.aZp.size() == 1 && p.bZp.size() == 1 &&
        s.m >= kOnednnActivationMinRows && s.m * s.n * s.k >= kOnednnActivationMinMacs) {
      Status st = runActivations(ctx, a, b, s, p);
      if (st.code() != StatusCode::kUnimplemented) return st;
      activationsFast_ = false;  // no oneDNN kernel for it: the exact float products below
    }
    if (qlinear_ && s.k <= kExactChunk) {  // attention's Q K^T and P V: exact float products, requantised
      std::vector<float> scales(p.bScales.size());
      for (size_t j = 0; j < scales.size(); ++j) scales[j] = p.aScale * p.bScales[j] / p.yScale;
      exactFloatQLinear(a, b, s, p.aZp, p.bZp, scales, *intRange(p.yType), p.yZp, ctx.allocateOutput(0, p.yType, s.outDims));
      return Status::ok();
    }
    const int64_t count = static_cast<int64_t>(s.aOffsets.size()) * s.m * s.n;
    std::vector<int32_t> accBuffer;
    int32_t* acc = nullptr;
    if (qlinear_) {
      accBuffer.assign(static_cast<size_t>(count), 0);
      acc = accBuffer.data();
    } else {
      acc = ctx.allocateOutput(0, DataType::kInt32, s.outDims).mutableData<int32_t>();
      std::fill(acc, acc + count, 0);
    }
    matMulAcc(a, b, s, p.aZp, p.bZp, false, false, acc);
    if (!qlinear_) return Status::ok();
    ir::Tensor& y = ctx.allocateOutput(0, p.yType, s.outDims);
    const IntRange range = *intRange(p.yType);
    auto* out = reinterpret_cast<uint8_t*>(y.mutableRawData());
    std::vector<float> scales(static_cast<size_t>(s.n));
    for (int64_t col = 0; col < s.n; ++col) {
      scales[static_cast<size_t>(col)] =
          p.aScale * (p.bScales.size() == 1 ? p.bScales[0] : p.bScales[static_cast<size_t>(col)]) / p.yScale;
    }
    for (int64_t row = 0; row < count / std::max<int64_t>(s.n, 1); ++row) {
      for (int64_t col = 0; col < s.n; ++col) {
        const int64_t i = row * s.n + col;
        out[i] = static_cast<uint8_t>(requantize(acc[i], scales[static_cast<size_t>(col)], range, p.yZp));
      }
    }
    return Status::ok();
  }

 private:
  struct Params {
    float aScale = 1.0f, yScale = 1.0f;
    std::vector<float> bScales{1.0f};
    std::vector<int32_t> aZp{0}, bZp{0};
    int32_t yZp = 0;
    DataType yType = DataType::kInt32;
  };

  struct Plan {
    std::vector<int64_t> aDims, yDims;
    int64_t rows = 0;
    int threads = 0;
    DataType aType = DataType::kUndefined;
    float aScale = 0, yScale = 0;
    int32_t aZp = 0, yZp = 0;
    DataType yType = DataType::kUndefined;
    dnnl::matmul prim;
    dnnl::memory src, dst, weights, bias, scratchpad, dstZpMem;
    std::unordered_map<int, dnnl::memory> args;
    std::shared_ptr<ir::Buffer> scratchBuffer;
    std::vector<int32_t> biasValues;
    int32_t dstZp = 0;
  };

  Int8MatMulKernel(const KernelCreateInfo& info, bool qlinear) : qlinear_(qlinear) {
    paramsConstant_ = true;
    for (size_t i : qlinear ? std::vector<size_t>{1, 2, 4, 5, 6, 7} : std::vector<size_t>{2, 3}) {
      paramsConstant_ = paramsConstant_ && (info.node.input(i) == nullptr || info.constantInput(i) != nullptr);
    }
  }

  size_t bIdx() const { return qlinear_ ? 3 : 1; }

  Status prepare(const KernelCreateInfo& info) {
    const ir::Tensor* b = info.constantInput(bIdx());
    const size_t bZpIdx = qlinear_ ? 5 : 3;
    const ir::Tensor* bzp = info.constantInput(bZpIdx);
    if (b == nullptr || b->rank() != 2 || (info.node.input(bZpIdx) != nullptr && bzp == nullptr)) return Status::ok();
    if (b->dtype() != DataType::kInt8 && b->dtype() != DataType::kUint8) return Status::ok();
    const int32_t wantZp = b->dtype() == DataType::kUint8 ? 128 : 0;
    std::vector<int32_t> zps{0};
    if (bzp != nullptr) { WH_ASSIGN_OR_RETURN(zps, readZeroPoints(*bzp, info.node, "b_zero_point")); }
    // QLinearMatMul: only the zero point oneDNN's int8 weights imply. MatMulInteger: any, the
    // difference applied through the row sums (the header's c_n).
    const int64_t n0 = b->dims()[1];
    if (zps.size() != 1 && static_cast<int64_t>(zps.size()) != n0) return Status::ok();  // run() reports it
    bZpCorr_.clear();
    for (int32_t z : zps) {
      if (z == wantZp) continue;
      if (qlinear_) return Status::ok();
      bZpCorr_.assign(static_cast<size_t>(n0), 0);
    }
    if (!bZpCorr_.empty()) {
      for (int64_t j = 0; j < n0; ++j) bZpCorr_[static_cast<size_t>(j)] = wantZp - zps[zps.size() == 1 ? 0 : static_cast<size_t>(j)];
    }
    if (qlinear_) {
      const ir::Tensor* bs = info.constantInput(4);
      if (bs == nullptr) return Status::ok();
      WH_ASSIGN_OR_RETURN(bScales_, readScales(*bs, info.node, "b_scale"));
      if (bScales_.size() != 1 && static_cast<int64_t>(bScales_.size()) != b->dims()[1]) return Status::ok();
    }
    k_ = b->dims()[0];
    n_ = b->dims()[1];
    weights_.resize(static_cast<size_t>(b->numel()));
    columnSums_.assign(static_cast<size_t>(n_), 0);
    weightsFit7Bits_ = true;
    const auto* raw = reinterpret_cast<const uint8_t*>(b->rawData());
    for (int64_t i = 0; i < b->numel(); ++i) {
      const int32_t v = b->dtype() == DataType::kUint8 ? static_cast<int32_t>(raw[i]) - 128 : static_cast<int8_t>(raw[i]);
      weights_[static_cast<size_t>(i)] = static_cast<int8_t>(v);
      columnSums_[static_cast<size_t>(i % n_)] += v;
      weightsFit7Bits_ = weightsFit7Bits_ && v >= -64 && v <= 64;
    }
    fastPath_ = true;
    return Status::ok();
  }

  Status readParams(const KernelContext& ctx, const MatMulShape& s, Params& p) const {
    const DataType aType = ctx.input(0).dtype(), bType = ctx.input(bIdx()).dtype();
    if (qlinear_) {
      WH_ASSIGN_OR_RETURN(p.aScale, scalarScale(ctx, 1, "a_scale"));
      WH_ASSIGN_OR_RETURN(p.aZp, zeroPoints(ctx, 2, "a_zero_point", 1, aType));
      WH_ASSIGN_OR_RETURN(p.bScales, readScales(ctx.input(4), ctx.node(), "b_scale"));
      if (p.bScales.size() != 1 && (ctx.input(4).rank() != 1 || static_cast<int64_t>(p.bScales.size()) != s.n)) {
        return ctx.unsupported("b_scale of shape " + shapeToString(ctx.input(4).dims()) + " is not supported (one value or " +
                               std::to_string(s.n) + ")");
      }
      WH_ASSIGN_OR_RETURN(p.bZp, zeroPoints(ctx, 5, "b_zero_point", s.n, bType));
      WH_ASSIGN_OR_RETURN(p.yScale, scalarScale(ctx, 6, "y_scale"));
      WH_ASSIGN_OR_RETURN(p.yZp, scalarZeroPoint(ctx, 7, "y_zero_point"));
      p.yType = ctx.hasInput(7) ? ctx.input(7).dtype() : DataType::kUint8;
      if (p.yType != DataType::kUint8 && p.yType != DataType::kInt8) {
        return ctx.unsupported("output dtype " + typeName(p.yType) + " is not supported (uint8, int8 are)");
      }
    } else {
      WH_ASSIGN_OR_RETURN(p.aZp, zeroPoints(ctx, 2, "a_zero_point", s.m, aType));
      WH_ASSIGN_OR_RETURN(p.bZp, zeroPoints(ctx, 3, "b_zero_point", s.n, bType));
    }
    return Status::ok();
  }

  Status ensurePlan(KernelContext& ctx, const ir::Tensor& a, const MatMulShape& s, const Params& p) {
    const int64_t rows = static_cast<int64_t>(s.aOffsets.size()) * s.m;
    if (plan_ && plan_->threads == ctx.threads() && plan_->aDims == a.dims() && plan_->aType == a.dtype() && plan_->aScale == p.aScale &&
        plan_->yScale == p.yScale && (plan_->aZp == p.aZp[0] || !qlinear_) && plan_->yZp == p.yZp && plan_->yType == p.yType) {
      return Status::ok();
    }
    plan_.reset();
    if (!int8KernelsExact() && (a.dtype() != DataType::kUint8 || !weightsFit7Bits_)) {
      // Without VNNI oneDNN's int8 kernels could saturate or round: use the exact reference.
      return unimplemented(ctx.describe() + ": no exact oneDNN int8 kernel on this CPU");
    }
    auto plan = std::make_unique<Plan>();
    plan->rows = rows;
    plan->aType = a.dtype();
    plan->aScale = p.aScale;
    plan->yScale = p.yScale;
    plan->aZp = p.aZp[0];
    plan->yZp = p.yZp;
    plan->yType = qlinear_ ? p.yType : DataType::kInt32;
    plan->threads = ctx.threads();
    plan->aDims = a.dims();
    plan->yDims = s.outDims;
    WH_RETURN_IF_ERROR(dnnlGuard(ctx.node(), [&] { buildPlan(engineOf(ctx.context()), *plan, p); }));
    plan_ = std::move(plan);
    return Status::ok();
  }

  void buildPlan(dnnl::engine& engine, Plan& plan, const Params& p) {
    using dnnl::memory;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    const dt dstType = !qlinear_ ? dt::s32 : p.yType == DataType::kUint8 ? dt::u8 : dt::s8;
    auto srcMd = memory::desc({plan.rows, k_}, plan.aType == DataType::kUint8 ? dt::u8 : dt::s8, tag::ab);
    auto wMd = memory::desc({k_, n_}, dt::s8, tag::any);
    auto dstMd = memory::desc({plan.rows, n_}, dstType, tag::ab);
    plan.biasValues.resize(static_cast<size_t>(n_));
    for (int64_t j = 0; j < n_; ++j) plan.biasValues[static_cast<size_t>(j)] = -plan.aZp * columnSums_[static_cast<size_t>(j)];
    const bool hasBias = plan.aZp != 0 || !qlinear_;  // MatMulInteger: a_zp may change run to run
    auto biasMd = memory::desc({1, n_}, dt::s32, tag::ab);
    dnnl::matmul::desc desc(srcMd, wMd, hasBias ? biasMd : memory::desc(), dstMd);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (qlinear_) {
      std::vector<float> scales(bScales_.size());
      for (size_t j = 0; j < scales.size(); ++j) scales[j] = p.aScale * bScales_[j] / p.yScale;
      attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_round, 0.0f, 0.0f);
      attr.set_post_ops(ops);
      if (p.yZp != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    }
    dnnl::matmul::primitive_desc pd(desc, attr, engine);
    plan.prim = dnnl::matmul(pd);
    packInt8Plan(plan, pd, engine, {{k_, n_}, dt::s8, tag::ab}, weights_.data(), srcMd, dstMd);
    plan.args = {{DNNL_ARG_SRC, plan.src}, {DNNL_ARG_WEIGHTS, plan.weights}, {DNNL_ARG_DST, plan.dst},
                 {DNNL_ARG_SCRATCHPAD, plan.scratchpad}};
    if (hasBias) {
      plan.bias = memory(biasMd, engine, plan.biasValues.data());
      plan.args[DNNL_ARG_BIAS] = plan.bias;
    }
    plan.dstZp = p.yZp;
    if (qlinear_ && p.yZp != 0) {
      plan.dstZpMem = memory({{1}, dt::s32, tag::x}, engine, &plan.dstZp);
      plan.args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = plan.dstZpMem;
    }
  }

  // ---- QLinearMatMul of two activations on oneDNN (see the top of the file) ----
  struct ActivationPlan {
    int64_t m = 0, k = 0, n = 0;
    DataType aType = DataType::kUndefined, bType = DataType::kUndefined, yType = DataType::kUndefined;
    std::vector<float> scales;
    int32_t zps[3] = {0, 0, 0};  // a's, b's as oneDNN's int8 B sees it, y's
    int threads = 0;
    dnnl::matmul prim;
    dnnl::memory src, weights, dst, scratchpad, zpMem[3];
    std::unordered_map<int, dnnl::memory> args;
    std::shared_ptr<ir::Buffer> scratchBuffer;
    std::vector<int8_t> b8;  // uint8 B as int8, one batch entry
  };

  bool activationPlanFits(const MatMulShape& s, const ir::Tensor& a, const ir::Tensor& b, const Params& p,
                          const std::vector<float>& scales, int32_t bZp8, int threads) const {
    const ActivationPlan* q = actPlan_.get();
    return q != nullptr && q->m == s.m && q->k == s.k && q->n == s.n && q->aType == a.dtype() && q->bType == b.dtype() &&
           q->yType == p.yType && q->scales == scales && q->zps[0] == p.aZp[0] && q->zps[1] == bZp8 && q->zps[2] == p.yZp &&
           q->threads == threads;
  }

  Status runActivations(KernelContext& ctx, const ir::Tensor& a, const ir::Tensor& b, const MatMulShape& s, const Params& p) {
    if (!int8KernelsExact()) return unimplemented(ctx.describe() + ": no exact oneDNN int8 kernel on this CPU");
    const bool bU8 = b.dtype() == DataType::kUint8;
    const int32_t bZp8 = p.bZp[0] - (bU8 ? 128 : 0);
    std::vector<float> scales(p.bScales.size());
    for (size_t j = 0; j < scales.size(); ++j) scales[j] = p.aScale * p.bScales[j] / p.yScale;
    if (!activationPlanFits(s, a, b, p, scales, bZp8, ctx.threads())) {
      // A primitive is built per shape and parameters; a node whose shape or scales change from
      // run to run (attention inside a decoder Loop: SLANet's int8 QLinearMatMuls took 64 -> 163 ms
      // a run rebuilding it every step) goes back to the exact float products for good.
      if (++activationPlanBuilds_ > kMaxActivationPlanBuilds) {
        return unimplemented(ctx.describe() + ": the product's shape or parameters change from run to run");
      }
      actPlan_.reset();
      auto q = std::make_unique<ActivationPlan>();
      q->m = s.m;
      q->k = s.k;
      q->n = s.n;
      q->aType = a.dtype();
      q->bType = b.dtype();
      q->yType = p.yType;
      q->scales = scales;
      q->zps[0] = p.aZp[0];
      q->zps[1] = bZp8;
      q->zps[2] = p.yZp;
      q->threads = ctx.threads();
      WH_RETURN_IF_ERROR(dnnlGuard(ctx.node(), [&] { buildActivationPlan(engineOf(ctx.context()), *q); }));
      actPlan_ = std::move(q);
    }
    ActivationPlan& q = *actPlan_;
    ir::Tensor& y = ctx.allocateOutput(0, p.yType, s.outDims);
    const auto* aBytes = reinterpret_cast<const std::byte*>(a.rawData());
    const auto* bBytes = reinterpret_cast<const uint8_t*>(b.rawData());
    auto* yBytes = reinterpret_cast<std::byte*>(y.mutableRawData());
    int64_t lastB = -1;
    for (size_t batch = 0; batch < s.aOffsets.size(); ++batch) {
      const int64_t bo = s.bOffsets[batch];
      void* bData = const_cast<uint8_t*>(bBytes + bo);
      if (bU8) {
        if (bo != lastB) {
          for (int64_t i = 0; i < s.k * s.n; ++i) q.b8[static_cast<size_t>(i)] = static_cast<int8_t>(bBytes[bo + i] ^ 0x80u);
        }
        bData = q.b8.data();
      }
      lastB = bo;
      q.src.set_data_handle(const_cast<std::byte*>(aBytes + s.aOffsets[batch]));
      q.weights.set_data_handle(bData);
      q.dst.set_data_handle(yBytes + static_cast<int64_t>(batch) * s.m * s.n);
      WH_RETURN_IF_ERROR(dnnlGuard(ctx.node(), [&] { q.prim.execute(streamOf(ctx.context()), q.args); }));
    }
    return Status::ok();
  }

  void buildActivationPlan(dnnl::engine& engine, ActivationPlan& q) {
    using dnnl::memory;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    auto srcMd = memory::desc({q.m, q.k}, q.aType == DataType::kUint8 ? dt::u8 : dt::s8, tag::ab);
    auto wMd = memory::desc({q.k, q.n}, dt::s8, tag::ab);
    auto dstMd = memory::desc({q.m, q.n}, q.yType == DataType::kUint8 ? dt::u8 : dt::s8, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_output_scales(q.scales.size() == 1 ? 0 : 1 << 1, q.scales);
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_round, 0.0f, 0.0f);
    attr.set_post_ops(ops);
    const int zpArgs[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    for (int i = 0; i < 3; ++i) {
      if (q.zps[i] != 0) attr.set_zero_points(zpArgs[i], 0, {DNNL_RUNTIME_S32_VAL});
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(srcMd, wMd, dstMd), attr, engine);
    q.prim = dnnl::matmul(pd);
    q.scratchBuffer = ir::Buffer::allocateUninitialized(std::max<size_t>(pd.scratchpad_desc().get_size(), 64));
    q.scratchpad = memory(pd.scratchpad_desc(), engine, q.scratchBuffer->mutableData());
    q.src = memory(srcMd, engine, DNNL_MEMORY_NONE);
    q.weights = memory(wMd, engine, DNNL_MEMORY_NONE);
    q.dst = memory(dstMd, engine, DNNL_MEMORY_NONE);
    q.args = {{DNNL_ARG_SRC, q.src}, {DNNL_ARG_WEIGHTS, q.weights}, {DNNL_ARG_DST, q.dst}, {DNNL_ARG_SCRATCHPAD, q.scratchpad}};
    for (int i = 0; i < 3; ++i) {
      if (q.zps[i] == 0) continue;
      q.zpMem[i] = memory({{1}, dt::s32, tag::x}, engine, &q.zps[i]);
      q.args[DNNL_ARG_ATTR_ZERO_POINTS | zpArgs[i]] = q.zpMem[i];
    }
    if (q.bType == DataType::kUint8) q.b8.resize(static_cast<size_t>(q.k * q.n));
  }

  // B is 2-D, so A's batches are one (rows x K) matrix. aZp: this run's a_zero_point.
  Status runOnednn(KernelContext& ctx, const ir::Tensor& a, int32_t aZp) {
    Plan& plan = *plan_;
    if (!qlinear_ && aZp != plan.aZp) {  // MatMulInteger: a new a_zp only changes the folded bias
      for (int64_t j = 0; j < n_; ++j) plan.biasValues[static_cast<size_t>(j)] = -aZp * columnSums_[static_cast<size_t>(j)];
      plan.aZp = aZp;
    }
    ir::Tensor& y = ctx.allocateOutput(0, plan.yType, plan.yDims);
    plan.src.set_data_handle(const_cast<std::byte*>(a.rawData()));
    plan.dst.set_data_handle(y.mutableRawData());
    WH_RETURN_IF_ERROR(dnnlGuard(ctx.node(), [&] { plan.prim.execute(streamOf(ctx.context()), plan.args); }));
    if (!bZpCorr_.empty()) {
      if (a.dtype() == DataType::kUint8) {
        addRowSumTerm(a.data<uint8_t>(), aZp, plan.rows, y.mutableData<int32_t>());
      } else {
        addRowSumTerm(a.data<int8_t>(), aZp, plan.rows, y.mutableData<int32_t>());
      }
    }
    return Status::ok();
  }

  // MatMulInteger with b zero points other than oneDNN's: y[m, n] += c_n * sum_k (a[m, k] - aZp).
  template <typename A>
  void addRowSumTerm(const A* a, int32_t aZp, int64_t rows, int32_t* y) const {
    for (int64_t r = 0; r < rows; ++r) {
      uint32_t sum = 0;
      const A* row = a + r * k_;
      for (int64_t i = 0; i < k_; ++i) sum += static_cast<uint32_t>(static_cast<int32_t>(row[i]) - aZp);
      int32_t* out = y + r * n_;
      for (int64_t j = 0; j < n_; ++j) {
        out[j] = static_cast<int32_t>(static_cast<uint32_t>(out[j]) + static_cast<uint32_t>(bZpCorr_[static_cast<size_t>(j)]) * sum);
      }
    }
  }

  bool qlinear_;
  bool fastPath_ = false;
  bool paramsConstant_ = false;  // scales and zero points are initializers
  bool weightsFit7Bits_ = false;  // every int8 weight in [-64, 64] (exact without VNNI too)
  int64_t k_ = 0, n_ = 0;
  std::vector<int8_t> weights_;      // B as int8, K x N
  std::vector<int32_t> columnSums_;  // sum_k B[k][n]
  std::vector<int32_t> bZpCorr_;     // MatMulInteger: c_n per column; empty when all are 0
  std::vector<float> bScales_;
  std::unique_ptr<Plan> plan_;
  bool activationsFast_ = true;  // QLinearMatMul with a computed B: oneDNN until it has no kernel
  int activationPlanBuilds_ = 0;  // oneDNN primitives built for it (a new one for every new shape)
  std::unique_ptr<ActivationPlan> actPlan_;
};

}  // namespace

// ---- com.microsoft QGemm: the reference (the oneDNN kernel is quant_gemm.cpp's) ----

// Inputs: A, a_scale, a_zero_point, B, b_scale, b_zero_point, C (int32 bias), y_scale, y_zero_point.
Status qgemmReference(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  const bool transA = node.attrInt("transA", 0) != 0, transB = node.attrInt("transB", 0) != 0;
  const float alpha = node.attrFloat("alpha", 1.0f);
  const ir::Tensor& a = ctx.input(0);
  const ir::Tensor& b = ctx.input(3);
  WH_RETURN_IF_ERROR(checkByteType(ctx, a, "A"));
  WH_RETURN_IF_ERROR(checkByteType(ctx, b, "B"));
  // A of another rank with transA = 0: rows of K (quant_gemm.cpp's extension of ORT's 2-D QGemm).
  if ((a.rank() != 2 && (transA || a.rank() < 1)) || b.rank() != 2) {
    return ctx.error("A and B must be 2-D, got " + shapeToString(a.dims()) + " and " + shapeToString(b.dims()));
  }
  MatMulShape s;
  s.k = transA ? a.dims()[0] : a.dims().back();
  s.m = transA ? a.dims()[1] : (s.k == 0 ? 0 : a.numel() / s.k);
  s.n = transB ? b.dims()[0] : b.dims()[1];
  if ((transB ? b.dims()[1] : b.dims()[0]) != s.k) return ctx.error("cannot multiply " + shapeToString(a.dims()) + " by " + shapeToString(b.dims()));
  if (transA) {
    s.outDims = {s.m, s.n};
  } else {
    s.outDims.assign(a.dims().begin(), a.dims().end() - 1);
    s.outDims.push_back(s.n);
  }
  s.aOffsets = {0};
  s.bOffsets = {0};
  WH_ASSIGN_OR_RETURN(float aScale, scalarScale(ctx, 1, "a_scale"));
  WH_ASSIGN_OR_RETURN(std::vector<int32_t> aZp, zeroPoints(ctx, 2, "a_zero_point", 1, a.dtype()));
  WH_ASSIGN_OR_RETURN(std::vector<float> bScales, readScales(ctx.input(4), ctx.node(), "b_scale"));
  if (bScales.size() != 1 && static_cast<int64_t>(bScales.size()) != s.n) return ctx.error("b_scale must hold 1 or N values");
  WH_ASSIGN_OR_RETURN(std::vector<int32_t> bZp, zeroPoints(ctx, 5, "b_zero_point", s.n, b.dtype()));
  std::vector<int32_t> acc(static_cast<size_t>(s.m * s.n), 0);
  if (ctx.hasInput(6)) {  // C broadcasts to [M, N]
    const ir::Tensor& c = ctx.input(6);
    if (c.dtype() != DataType::kInt32) return ctx.error("C must be int32, got " + typeName(c.dtype()));
    const std::vector<int64_t> rows{s.m, s.n};  // A's rows of K (see above)
    auto shape = broadcastShapes(c.dims(), rows);
    if (!shape || *shape != rows) return ctx.error("C " + shapeToString(c.dims()) + " does not broadcast to " + shapeToString(rows));
    std::vector<int64_t> strides = broadcastStrides(c.dims(), rows);
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < s.n; ++j) acc[static_cast<size_t>(i * s.n + j)] = c.data<int32_t>()[i * strides[0] + j * strides[1]];
    }
  }
  matMulAcc(a, b, s, aZp, bZp, transA, transB, acc.data());
  const bool requant = ctx.hasInput(7) && ctx.hasInput(8);
  float yScale = 1.0f;
  if (ctx.hasInput(7)) { WH_ASSIGN_OR_RETURN(yScale, scalarScale(ctx, 7, "y_scale")); }
  auto scaleOf = [&](int64_t col) {
    float v = alpha * aScale * (bScales.size() == 1 ? bScales[0] : bScales[static_cast<size_t>(col)]);
    return ctx.hasInput(7) ? v / yScale : v;
  };
  if (!requant) {
    float* y = ctx.allocateOutput(0, DataType::kFloat, s.outDims).mutableData<float>();
    for (int64_t i = 0; i < s.m * s.n; ++i) y[i] = static_cast<float>(acc[static_cast<size_t>(i)]) * scaleOf(i % s.n);
    return Status::ok();
  }
  WH_ASSIGN_OR_RETURN(int32_t yZp, scalarZeroPoint(ctx, 8, "y_zero_point"));
  const DataType yType = ctx.input(8).dtype();
  if (yType != DataType::kUint8 && yType != DataType::kInt8) return ctx.unsupported("output dtype " + typeName(yType) + " is not supported");
  auto* y = reinterpret_cast<uint8_t*>(ctx.allocateOutput(0, yType, s.outDims).mutableRawData());
  const IntRange range = *intRange(yType);
  for (int64_t i = 0; i < s.m * s.n; ++i) y[i] = static_cast<uint8_t>(requantize(acc[static_cast<size_t>(i)], scaleOf(i % s.n), range, yZp));
  return Status::ok();
}

void registerQuantMatMulKernels(KernelRegistry& registry) {
  registry.add("", "QLinearMatMul", 10, [](const KernelCreateInfo& info) { return Int8MatMulKernel::create(info, true); });
  registry.add("", "MatMulInteger", 10, [](const KernelCreateInfo& info) { return Int8MatMulKernel::create(info, false); });
  registry.add("com.microsoft", "QGemm", 1, createQGemmKernel);
}

}  // namespace whittle::runtime::cpu::quant
