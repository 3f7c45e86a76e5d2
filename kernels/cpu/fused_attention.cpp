// com.whittle.internal FusedAttention(q, k, v, mask?) -> y (see fused_attention.h):
//
//   y = softmax(q k^T * scale + mask) v      over the last axis, per batch index
//
// attributes scale (float, default 1), divide (int: scores / scale instead of * scale), and
// k_transposed (int: input 1 is [.., D, T], as the MatMul read it, instead of [.., T, D], the
// input of the Transpose the lowering dropped). q [.., S, D], k, v [.., T, Dv] and the mask's
// leading dims broadcast numpy-style, as the MatMuls and the Add did; so do the mask's last
// two dims against [S, T]. A mask that broadcasts the scores up (S or T of 1 against the
// mask's larger one) runs the reference loops; every other shape runs the blocked path.
#include "cpu/fused_attention.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cpu/kernel_util.h"
#include "cpu/normalization_internal.h"
#include "cpu/transformer_internal.h"
#include <oneapi/dnnl/dnnl.h>

namespace whittle::runtime::cpu {

namespace {

float kAt(const AttentionParams& p, const float* k, int64_t t, int64_t d) {
  return p.kTransposed ? k[d * p.total + t] : k[t * p.head + d];
}

}  // namespace

void transformer::softmaxRowScalar(float* row, int64_t n) {
  float mx = row[0];
  for (int64_t t = 1; t < n; ++t) mx = std::max(mx, row[t]);
  float sum = 0.f;
  for (int64_t t = 0; t < n; ++t) {
    row[t] = std::exp(row[t] - mx);
    sum += row[t];
  }
  const float inv = 1.f / sum;
  for (int64_t t = 0; t < n; ++t) row[t] *= inv;
}

namespace {

void zeroNaNs(float* row, int64_t n) {
  for (int64_t t = 0; t < n; ++t) row[t] = std::isnan(row[t]) ? 0.f : row[t];
}

}  // namespace

void attentionSliceReference(const AttentionParams& p, const AttentionSlice& s) {
  const int64_t S = p.seq, T = p.total, D = p.head, Dv = p.valueHead;
  std::vector<float> row(static_cast<size_t>(T));
  for (int64_t i = 0; i < S; ++i) {
    for (int64_t t = 0; t < T; ++t) {
      float acc = 0.f;
      for (int64_t d = 0; d < D; ++d) acc += s.q[i * D + d] * kAt(p, s.k, t, d);
      acc = p.divide ? acc / p.scale : acc * p.scale;
      if (s.mask != nullptr) acc += s.mask[i * s.maskRowStride + t * s.maskColStride];
      row[static_cast<size_t>(t)] = acc;
    }
    transformer::softmaxRowScalar(row.data(), T);
    if (p.nanToZero) zeroNaNs(row.data(), T);
    float* y = s.y + i * s.yRowStride;
    for (int64_t j = 0; j < Dv; ++j) {
      float acc = 0.f;
      for (int64_t t = 0; t < T; ++t) acc += row[static_cast<size_t>(t)] * s.v[t * Dv + j];
      y[j] = acc;
    }
  }
}

void findMaskTails(const AttentionParams& p, const AttentionSlice& s, MaskTails& tails) {
  const int64_t S = p.seq, T = p.total;
  tails.end.assign(static_cast<size_t>(S), T);
  tails.tailMax.assign(static_cast<size_t>(S), -std::numeric_limits<float>::infinity());
  tails.zeros.assign(static_cast<size_t>(S), 0);
  tails.any = false;
  if (s.mask == nullptr || T == 0) return;
  for (int64_t i = 0; i < S; ++i) {
    const float* m = s.mask + i * s.maskRowStride;
    int64_t z = 0;
    while (z < T && m[z * s.maskColStride] == 0.f) ++z;
    tails.zeros[static_cast<size_t>(i)] = z;
    int64_t e = T;
    float mx = -std::numeric_limits<float>::infinity();
    while (e > 1 && m[(e - 1) * s.maskColStride] <= kSkipMaskBelow) {
      mx = std::max(mx, m[(e - 1) * s.maskColStride]);
      --e;
    }
    tails.end[static_cast<size_t>(i)] = e;
    tails.tailMax[static_cast<size_t>(i)] = mx;
    tails.any = tails.any || e < T;
  }
}

namespace {

#define WH_AVX512 __attribute__((target("avx512f")))

// GCC 12 flags the intrinsics' own _mm512_undefined_ps() (a self-initialised variable).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

WH_AVX512 inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1u);
}

/// scores[a][t] = alpha * sum_d q[a][d] kt[d][t] for R rows and 32 columns from t0 (n of them).
template <int R>
WH_AVX512 void scoreTile(const float* q, int64_t D, const float* kt, int64_t ldk, int64_t n, float alpha,
                         float* scores, int64_t ld) {
  const __mmask16 m0 = lanes(n), m1 = lanes(n - 16);
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 8
  for (int a = 0; a < R; ++a) acc0[a] = acc1[a] = _mm512_setzero_ps();
  for (int64_t d = 0; d < D; ++d) {
    const __m512 k0 = _mm512_maskz_loadu_ps(m0, kt + d * ldk);
    const __m512 k1 = _mm512_maskz_loadu_ps(m1, kt + d * ldk + 16);
#pragma GCC unroll 8
    for (int a = 0; a < R; ++a) {
      const __m512 qa = _mm512_set1_ps(q[a * D + d]);
      acc0[a] = _mm512_fmadd_ps(qa, k0, acc0[a]);
      acc1[a] = _mm512_fmadd_ps(qa, k1, acc1[a]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int a = 0; a < R; ++a) {
    _mm512_mask_storeu_ps(scores + a * ld, m0, _mm512_mul_ps(acc0[a], va));
    _mm512_mask_storeu_ps(scores + a * ld + 16, m1, _mm512_mul_ps(acc1[a], va));
  }
}

/// y[a][c] = sum_t p[a][t] v[t][c] for R rows and 64 columns from c0 (n of them).
template <int R>
WH_AVX512 void valueTile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t end, int64_t n, float* y,
                         int64_t ldy) {
  const __mmask16 m[4] = {lanes(n), lanes(n - 16), lanes(n - 32), lanes(n - 48)};
  __m512 acc[R][4];
#pragma GCC unroll 8
  for (int a = 0; a < R; ++a) {
#pragma GCC unroll 8
    for (int c = 0; c < 4; ++c) acc[a][c] = _mm512_setzero_ps();
  }
  for (int64_t t = 0; t < end; ++t) {
    __m512 vt[4];
#pragma GCC unroll 8
    for (int c = 0; c < 4; ++c) vt[c] = _mm512_maskz_loadu_ps(m[c], v + t * ldv + 16 * c);
#pragma GCC unroll 8
    for (int a = 0; a < R; ++a) {
      const __m512 pa = _mm512_set1_ps(p[a * ldp + t]);
#pragma GCC unroll 8
      for (int c = 0; c < 4; ++c) acc[a][c] = _mm512_fmadd_ps(pa, vt[c], acc[a][c]);
    }
  }
#pragma GCC unroll 8
  for (int a = 0; a < R; ++a) {
#pragma GCC unroll 8
    for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(y + a * ldy + 16 * c, m[c], acc[a][c]);
  }
}

/// scores [rows, end] (row stride ld) = alpha q kt[:, :end]; q [rows, D], kt [D, T] (row stride ldk).
WH_AVX512 void scoresAvx512(const float* q, int64_t D, const float* kt, int64_t ldk, int64_t rows, int64_t end,
                            float alpha, float* scores, int64_t ld) {
  for (int64_t t0 = 0; t0 < end; t0 += 32) {
    const int64_t n = std::min<int64_t>(32, end - t0);
    int64_t i = 0;
    for (; i + 8 <= rows; i += 8) scoreTile<8>(q + i * D, D, kt + t0, ldk, n, alpha, scores + i * ld + t0, ld);
    for (; i < rows; ++i) scoreTile<1>(q + i * D, D, kt + t0, ldk, n, alpha, scores + i * ld + t0, ld);
  }
}

/// y [rows, Dv] (row stride ldy) = p [rows, end] (row stride ldp) v [end, Dv].
WH_AVX512 void valuesAvx512(const float* p, int64_t ldp, const float* v, int64_t Dv, int64_t rows, int64_t end,
                            float* y, int64_t ldy) {
  for (int64_t c0 = 0; c0 < Dv; c0 += 64) {
    const int64_t n = std::min<int64_t>(64, Dv - c0);
    int64_t i = 0;
    for (; i + 4 <= rows; i += 4) valueTile<4>(p + i * ldp, ldp, v + c0, Dv, end, n, y + i * ldy + c0, ldy);
    for (; i < rows; ++i) valueTile<1>(p + i * ldp, ldp, v + c0, Dv, end, n, y + i * ldy + c0, ldy);
  }
}

#pragma GCC diagnostic pop

}  // namespace

bool attentionSlices(const AttentionParams& p, int64_t count, int threads, bool parallel, std::vector<float>& scratch,
                     const std::function<AttentionSlice(int64_t)>& sliceAt,
                     const std::function<const MaskTails*(int64_t)>& tailsOf) {
  const size_t perThread = static_cast<size_t>(attentionScratchFloats(p));
  if (scratch.size() < perThread * static_cast<size_t>(threads)) scratch.resize(perThread * threads);
  bool ok = true;
#pragma omp parallel for num_threads(threads) if (threads > 1 && parallel) schedule(dynamic) reduction(&& : ok)
  for (int64_t i = 0; i < count; ++i) {
    float* mine = scratch.data() + perThread * static_cast<size_t>(omp_get_thread_num());
    ok = attentionSlice(p, sliceAt(i), tailsOf(i), mine) && ok;
  }
  return ok;
}

int64_t attentionScratchFloats(const AttentionParams& p) {
  return kAttentionRowBlock * p.total + p.total + p.total * p.head;
}

bool attentionSlice(const AttentionParams& p, const AttentionSlice& s, const MaskTails* tails, float* scratch) {
  const int64_t S = p.seq, T = p.total, D = p.head, Dv = p.valueHead;
  if (S == 0 || Dv == 0) return true;
  if (T == 0) {
    for (int64_t i = 0; i < S; ++i) std::fill(s.y + i * s.yRowStride, s.y + i * s.yRowStride + Dv, 0.f);
    return true;
  }
  float* scores = scratch;                              // [kAttentionRowBlock, T]
  float* kNormTail = scratch + kAttentionRowBlock * T;  // max |k_t| over t >= j
  const bool avx512 = haveAvx512();
  // The AVX-512 products read k as [D, T].
  const float* kt = s.k;
  if (avx512 && !p.kTransposed) {
    float* buf = kNormTail + T;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t d = 0; d < D; ++d) buf[d * T + t] = s.k[t * D + d];
    }
    kt = buf;
  }
  const bool skip = tails != nullptr && tails->any && s.mask != nullptr;
  if (skip) {
    float run = 0.f;
    for (int64_t t = T - 1; t >= 0; --t) {
      float sq = 0.f;
      for (int64_t d = 0; d < D; ++d) sq += kAt(p, s.k, t, d) * kAt(p, s.k, t, d);
      run = std::max(run, std::sqrt(sq));
      kNormTail[t] = run;
    }
  }
  const float alpha = p.divide ? 1.f : p.scale;
  const float absScale = p.divide ? 1.f / std::abs(p.scale) : std::abs(p.scale);
  for (int64_t r0 = 0; r0 < S; r0 += kAttentionRowBlock) {
    const int64_t rows = std::min(kAttentionRowBlock, S - r0);
    // The columns this block needs: up to the last key some row's mask lets through.
    int64_t end = T;
    if (skip) {
      end = 1;
      for (int64_t i = r0; i < r0 + rows; ++i) end = std::max(end, tails->end[static_cast<size_t>(i)]);
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int64_t ld = end;
      if (avx512) {
        scoresAvx512(s.q + r0 * D, D, kt, T, rows, end, alpha, scores, ld);
      } else if (dnnl_sgemm('N', p.kTransposed ? 'N' : 'T', rows, end, D, alpha, s.q + r0 * D, D, s.k,
                            p.kTransposed ? T : D, 0.f, scores, ld) != dnnl_success) {
        return false;
      }
      bool exact = true;
      for (int64_t i = 0; i < rows && exact; ++i) {
        float* row = scores + i * ld;
        if (p.divide) {
          for (int64_t t = 0; t < end; ++t) row[t] /= p.scale;
        }
        if (s.mask != nullptr) {
          const float* m = s.mask + (r0 + i) * s.maskRowStride;
          // Adding the leading zeros of a mask row changes nothing: start after them.
          const int64_t from = tails != nullptr ? std::min(tails->zeros[static_cast<size_t>(r0 + i)], end) : 0;
          if (s.maskColStride == 1) {
            for (int64_t t = from; t < end; ++t) row[t] += m[t];
          } else {
            for (int64_t t = from; t < end; ++t) row[t] += m[0];
          }
        }
        const float rowMax = softmaxRowFloat(row, row, end);
        if (p.nanToZero) zeroNaNs(row, end);
        if (end < T) {
          // The keys cut off weigh exp(score + mask - max) = 0 in float32 when this holds
          // (|score| <= |scale| |q| |k|; 1 % on the norms for their rounding).
          const float* q = s.q + (r0 + i) * D;
          float qq = 0.f;
          for (int64_t d = 0; d < D; ++d) qq += q[d] * q[d];
          const double reach = static_cast<double>(tails->tailMax[static_cast<size_t>(r0 + i)]) +
                               1.01 * absScale * std::sqrt(static_cast<double>(qq)) * kNormTail[end];
          exact = reach - rowMax < -110.0;
        }
      }
      if (exact) break;
      end = T;  // not provably exact: this block over all keys
    }
    if (avx512) {
      valuesAvx512(scores, end, s.v, Dv, rows, end, s.y + r0 * s.yRowStride, s.yRowStride);
    } else if (dnnl_sgemm('N', 'N', rows, Dv, end, 1.f, scores, end, s.v, Dv, 0.f, s.y + r0 * s.yRowStride,
                          s.yRowStride) != dnnl_success) {
      return false;
    }
  }
  return true;
}

namespace {

/// The last two dims of `dims` (1 where absent) and the leading ones.
struct Split {
  std::vector<int64_t> batch;
  int64_t rows = 1, cols = 1;
};

Split split(const std::vector<int64_t>& dims) {
  Split out;
  const size_t r = dims.size();
  if (r >= 1) out.cols = dims[r - 1];
  if (r >= 2) out.rows = dims[r - 2];
  if (r > 2) out.batch.assign(dims.begin(), dims.end() - 2);
  return out;
}

/// Offset of batch index `b` (row-major over `outBatch`) in an operand with `strides`.
int64_t batchOffset(int64_t b, const std::vector<int64_t>& outBatch, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t d = outBatch.size(); d-- > 0;) {
    const int64_t idx = b % outBatch[d];
    b /= outBatch[d];
    off += idx * strides[d];
  }
  return off;
}

class FusedAttentionKernel final : public Kernel {
 public:
  FusedAttentionKernel(float scale, bool divide, bool kTransposed, bool nanToZero) {
    params_.nanToZero = nanToZero;
    params_.scale = scale;
    params_.divide = divide;
    params_.kTransposed = kTransposed;
  }

  Status run(KernelContext& ctx) override {
    const bool hasMask = ctx.hasInput(3);
    for (size_t i = 0; i < (hasMask ? 4u : 3u); ++i) {
      WH_RETURN_IF_ERROR(transformer::requireFloat(ctx, ctx.input(i), "input " + std::to_string(i)));
    }
    const ir::Tensor& q = ctx.input(0);
    const ir::Tensor& k = ctx.input(1);
    const ir::Tensor& v = ctx.input(2);
    if (q.rank() < 2 || k.rank() < 2 || v.rank() < 2) {
      return ctx.error("q, k and v must have rank 2 or more, got " + shapeToString(q.dims()) + ", " +
                       shapeToString(k.dims()) + ", " + shapeToString(v.dims()));
    }
    const Split qs = split(q.dims()), ks = split(k.dims()), vs = split(v.dims());
    const int64_t S = qs.rows, D = qs.cols;
    const int64_t kD = params_.kTransposed ? ks.rows : ks.cols, kT = params_.kTransposed ? ks.cols : ks.rows;
    if (kD != D) {
      return ctx.error("q " + shapeToString(q.dims()) + " and k " + shapeToString(k.dims()) + " do not multiply");
    }
    Split ms;
    if (hasMask) ms = split(ctx.input(3).dims());
    const int64_t outS = hasMask ? (ms.rows == S || ms.rows == 1 ? S : (S == 1 ? ms.rows : -1)) : S;
    const int64_t outT = hasMask ? (ms.cols == kT || ms.cols == 1 ? kT : (kT == 1 ? ms.cols : -1)) : kT;
    if (outS < 0 || outT < 0) {
      return ctx.error("the mask " + shapeToString(ctx.input(3).dims()) + " does not broadcast to the scores [" +
                       std::to_string(S) + ", " + std::to_string(kT) + "]");
    }
    if (vs.rows != outT) {
      return ctx.error("the weights [" + std::to_string(outS) + ", " + std::to_string(outT) + "] and v " +
                       shapeToString(v.dims()) + " do not multiply");
    }
    auto batch = broadcastShapes(qs.batch, ks.batch);
    if (batch) batch = broadcastShapes(*batch, vs.batch);
    if (batch && hasMask) batch = broadcastShapes(*batch, ms.batch);
    if (!batch) return ctx.error("the batch dims of q, k, v and the mask do not broadcast");
    const std::vector<int64_t>& outBatch = *batch;
    std::vector<int64_t> yDims = outBatch;
    yDims.push_back(outS);
    yDims.push_back(vs.cols);
    ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, yDims);
    if (y.numel() == 0) return Status::ok();

    params_.seq = outS;
    params_.total = outT;
    params_.head = D;
    params_.valueHead = vs.cols;
    const bool blocked = outS == S && outT == kT;
    // Strides of each operand's batch dims (0 where broadcast), for the reference its rows too.
    auto stridesOf = [&](const std::vector<int64_t>& b, int64_t matrix) {
      std::vector<int64_t> st = broadcastStrides(b, outBatch);
      for (int64_t& x : st) x *= matrix;
      return st;
    };
    const auto qStr = stridesOf(qs.batch, S * D), kStr = stridesOf(ks.batch, kT * D),
               vStr = stridesOf(vs.batch, vs.rows * vs.cols);
    std::vector<int64_t> mStr;
    if (hasMask) mStr = stridesOf(ms.batch, ms.rows * ms.cols);
    int64_t count = 1;
    for (int64_t x : outBatch) count *= x;
    const float* qp = q.data<float>();
    const float* kp = k.data<float>();
    const float* vp = v.data<float>();
    const float* mp = hasMask ? ctx.input(3).data<float>() : nullptr;
    float* yp = y.mutableData<float>();
    auto sliceAt = [&](int64_t b) {
      AttentionSlice s;
      s.q = qp + batchOffset(b, outBatch, qStr);
      s.k = kp + batchOffset(b, outBatch, kStr);
      s.v = vp + batchOffset(b, outBatch, vStr);
      if (hasMask) {
        s.mask = mp + batchOffset(b, outBatch, mStr);
        s.maskRowStride = ms.rows == 1 ? 0 : ms.cols;
        s.maskColStride = ms.cols == 1 ? 0 : 1;
      }
      s.y = yp + b * outS * vs.cols;
      s.yRowStride = vs.cols;
      return s;
    };
    if (!blocked) {
      // The mask broadcasts the scores up: q's single row, or k's single key, serves all.
      for (int64_t b = 0; b < count; ++b) {
        AttentionSlice s = sliceAt(b);
        broadcastReference(s, S, kT);
      }
      return Status::ok();
    }
    // Heads that share a mask (it broadcasts over them) share its tails.
    tails_.clear();
    std::vector<size_t> tailOf(static_cast<size_t>(count), 0);
    if (hasMask) {
      std::vector<int64_t> offsets;
      for (int64_t b = 0; b < count; ++b) {
        const int64_t off = batchOffset(b, outBatch, mStr);
        auto it = std::find(offsets.begin(), offsets.end(), off);
        if (it == offsets.end()) {
          offsets.push_back(off);
          tails_.emplace_back();
          findMaskTails(params_, sliceAt(b), tails_.back());
          it = offsets.end() - 1;
        }
        tailOf[static_cast<size_t>(b)] = static_cast<size_t>(it - offsets.begin());
      }
    }
    const double work = static_cast<double>(count) * outS * outT * (D + vs.cols);
    const bool ok = attentionSlices(params_, count, std::max(1, ctx.threads()), count > 1 && work > 1e6, scratch_, sliceAt,
                                    [&](int64_t b) { return hasMask ? &tails_[tailOf[static_cast<size_t>(b)]] : nullptr; });
    if (!ok) return internalError(ctx.describe() + ": dnnl_sgemm failed");
    return Status::ok();
  }

 private:
  /// The reference where q has one row (S = 1) or k one key (T = 1) and the mask more.
  void broadcastReference(const AttentionSlice& s, int64_t qRows, int64_t kRows) {
    const int64_t D = params_.head;
    // Materialise the broadcast operand (small: one row or one key repeated).
    qBuf_.resize(static_cast<size_t>(params_.seq * D));
    for (int64_t i = 0; i < params_.seq; ++i) {
      std::copy(s.q + (qRows == 1 ? 0 : i) * D, s.q + ((qRows == 1 ? 0 : i) + 1) * D, qBuf_.begin() + i * D);
    }
    kBuf_.resize(static_cast<size_t>(params_.total * D));
    for (int64_t t = 0; t < params_.total; ++t) {
      for (int64_t d = 0; d < D; ++d) {
        const int64_t src = kRows == 1 ? 0 : t;
        kBuf_[static_cast<size_t>(t * D + d)] = params_.kTransposed ? s.k[d * kRows + src] : s.k[src * D + d];
      }
    }
    AttentionParams p = params_;
    p.kTransposed = false;
    AttentionSlice b = s;
    b.q = qBuf_.data();
    b.k = kBuf_.data();
    attentionSliceReference(p, b);
  }

  AttentionParams params_;
  std::vector<float> scratch_, qBuf_, kBuf_;
  std::vector<MaskTails> tails_;
};

Expected<std::unique_ptr<Kernel>> createFusedAttention(const KernelCreateInfo& info) {
  const float scale = info.node.attrFloat("scale", 1.f);
  if (!std::isfinite(scale) || scale == 0.f) return info.error("scale must be finite and non-zero");
  return std::unique_ptr<Kernel>(std::make_unique<FusedAttentionKernel>(
      scale, info.node.attrInt("divide", 0) != 0, info.node.attrInt("k_transposed", 0) != 0,
      info.node.attrInt("nan_to_zero", 0) != 0));
}

}  // namespace

void registerFusedAttentionKernels(KernelRegistry& registry) {
  registry.add("com.whittle.internal", "FusedAttention", 1, createFusedAttention);
}

}  // namespace whittle::runtime::cpu
