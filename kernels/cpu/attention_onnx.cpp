// The standard ONNX Attention (opset 23, revised in 24), which torch 2.15's exporter writes for
// F.scaled_dot_product_attention, in float32:
//
//   Attention(Q, K, V, attn_mask?, past_key?, past_value?, nonpad_kv_seqlen? (24))
//       {is_causal, q_num_heads, kv_num_heads, scale, softcap, qk_matmul_output_mode,
//        softmax_precision} -> Y, present_key?, present_value?, qk_matmul_output?
//
//   Q [B, Hq, Sq, D], K [B, Hkv, Skv, D], V [B, Hkv, Skv, Dv]; or rank 3 [B, S, heads * size]
//   with q_num_heads and kv_num_heads (Y then [B, Sq, Hq * Dv], else [B, Hq, Sq, Dv]).
//   past_key/past_value [B, Hkv, P, D|Dv] go before K and V on the sequence axis; the
//   concatenations are present_key/present_value, T = P + Skv keys in all. Query head h reads
//   key/value head h / (Hq / Hkv) (grouped-query attention).
//   For each batch and query head:
//     qk = scale Q K^T                       (scale defaults to 1/sqrt(D))   -> mode 0
//     qk = softcap tanh(qk / softcap)        (softcap > 0)                    -> mode 1
//     qk += mask                                                             -> mode 2
//     p = softmax(qk) over the keys                                          -> mode 3
//     Y = p V
//   The mask adds: attn_mask (bool: false -> -inf; float: added), broadcast (numpy rules) to
//   [B, Hq, Sq, T], whose last axis may be shorter than T (the keys past it are masked);
//   is_causal masks key j > i + offset for query i, bottom-right aligned: offset is the past
//   length P, or (opset 24, no past) nonpad_kv_seqlen[b] - Sq; nonpad_kv_seqlen [B] masks keys
//   j >= nonpad_kv_seqlen[b]. This is the order of the ONNX reference implementation: softcap
//   before the mask, so a masked key stays at -inf. A query whose keys are all masked gets a
//   zero row (the reference's softmax would give NaN; ONNX Runtime gives zeros too).
//   Query rows go in blocks of 64: each block multiplies only the keys its rows may see (causal
//   or nonpad limits), which halves a long causal prefill.
//   softmax_precision: float32 throughout, the sums in double (float, float16 and bfloat16 ask
//   for no more); 11 (double) computes the exponentials in double as well.
#pragma GCC optimize("no-math-errno")

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/elementwise_common.h"
#include "cpu/families.h"
#include "cpu/fused_attention.h"
#include "cpu/kernel_util.h"
#include "cpu/transformer_internal.h"

namespace whittle::runtime::cpu {

using ir::DataType;
using transformer::requireFloat;
using transformer::sgemm;

namespace {

/// The largest of n > 0 floats, in sixteen lanes (vectorised; max has no rounding to keep in order).
WH_SIMD_CLONES float rowMax(const float* x, int64_t n) {
  float lanes[16];
  for (int j = 0; j < 16; ++j) lanes[j] = x[0];
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
  }
  float m = lanes[0];
  for (int j = 1; j < 16; ++j) m = std::max(m, lanes[j]);
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

/// x[i] = e^(x[i] - shift) (expFast, vectorised); returns their sum, in sixteen float lanes
/// summed in double.
WH_SIMD_CLONES double expShifted(float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) x[i] = expFast(x[i] - shift);
  float lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) lanes[j] += x[i + j];
  }
  double sum = 0;
  for (int j = 0; j < 16; ++j) sum += lanes[j];
  for (; i < n; ++i) sum += x[i];
  return sum;
}

/// x[i] = cap * tanh(x[i] / cap) (tanhFast, vectorised).
WH_SIMD_CLONES void softcapRow(float* x, int64_t n, float cap) {
  const float inv = 1.f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * tanhFast(x[i] * inv);
}

/// x[i] *= s (vectorised).
WH_SIMD_CLONES void scaleRow(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

/// Query rows per block of the products (a causal block multiplies only the keys its rows see).
constexpr int64_t kQueryBlock = 64;

/// Where a [B, heads, rows, width] operand lives: element (b, h, r, c) is at
/// base + b * batch + h * head + r * row + c.
struct View {
  const float* base = nullptr;
  int64_t batch = 0, head = 0, row = 0;
  const float* at(int64_t b, int64_t h) const { return base + b * batch + h * head; }
};

/// A rank-4 [B, H, S, W] tensor, or a rank-3 [B, S, H * W] one.
View viewOf(const float* p, bool rank4, int64_t H, int64_t S, int64_t W) {
  if (rank4) return {p, H * S * W, S * W, W};
  return {p, S * H * W, W, H * W};
}

/// The additive mask of one query row: attn_mask's row (bool or float) padded with -inf past
/// its length, the causal limit and the nonpad limit. `limit` is the first masked key by
/// position (keys >= limit are masked).
struct MaskSource {
  const float* floats = nullptr;
  const uint8_t* bools = nullptr;
  int64_t length = 0;                  // the mask's last dim
  int64_t strides[3] = {0, 0, 0};      // over b, h, s; 0 where broadcast
};

class OnnxAttentionKernel final : public Kernel {
 public:
  OnnxAttentionKernel(bool causal, int64_t qHeads, int64_t kvHeads, float scale, float softcap, int64_t mode,
                      bool doubleSoftmax)
      : causal_(causal), qHeadsAttr_(qHeads), kvHeadsAttr_(kvHeads), scale_(scale), softcap_(softcap), mode_(mode),
        doubleSoftmax_(doubleSoftmax) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& q = ctx.input(0);
    const ir::Tensor& k = ctx.input(1);
    const ir::Tensor& v = ctx.input(2);
    WH_RETURN_IF_ERROR(requireFloat(ctx, q, "Q"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, k, "K"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, v, "V"));
    if (q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4)) {
      return ctx.error("Q " + shapeToString(q.dims()) + ", K " + shapeToString(k.dims()) + " and V " +
                       shapeToString(v.dims()) + " must all be rank 4 [batch, heads, seq, size] or all rank 3");
    }
    const bool rank4 = q.rank() == 4;
    const int64_t B = q.dims()[0];
    int64_t Hq, Hkv, Sq, Skv, D, Dv;
    if (rank4) {
      Hq = q.dims()[1], Sq = q.dims()[2], D = q.dims()[3];
      Hkv = k.dims()[1], Skv = k.dims()[2];
      Dv = v.dims()[3];
      if (k.dims()[0] != B || v.dims()[0] != B || k.dims()[3] != D || v.dims()[1] != Hkv || v.dims()[2] != Skv) {
        return ctx.error("K " + shapeToString(k.dims()) + " and V " + shapeToString(v.dims()) + " must be [" +
                         std::to_string(B) + ", kv_heads, kv_seq, " + std::to_string(D) + "] and [" +
                         std::to_string(B) + ", kv_heads, kv_seq, v_size] for Q " + shapeToString(q.dims()));
      }
    } else {
      Hq = qHeadsAttr_, Hkv = kvHeadsAttr_;
      if (Hq <= 0 || Hkv <= 0) {
        return ctx.error("3-D Q, K, V need q_num_heads and kv_num_heads (got " + std::to_string(Hq) + " and " +
                         std::to_string(Hkv) + ")");
      }
      Sq = q.dims()[1], Skv = k.dims()[1];
      if (q.dims()[2] % Hq != 0 || k.dims()[2] % Hkv != 0 || v.dims()[2] % Hkv != 0 || k.dims()[0] != B ||
          v.dims()[0] != B || v.dims()[1] != Skv) {
        return ctx.error("Q " + shapeToString(q.dims()) + ", K " + shapeToString(k.dims()) + ", V " +
                         shapeToString(v.dims()) + " do not split into " + std::to_string(Hq) + " query and " +
                         std::to_string(Hkv) + " key/value heads over one batch and key length");
      }
      D = q.dims()[2] / Hq;
      Dv = v.dims()[2] / Hkv;
      if (k.dims()[2] / Hkv != D) {
        return ctx.error("K's head size " + std::to_string(k.dims()[2] / Hkv) + " differs from Q's " +
                         std::to_string(D));
      }
    }
    if (Hkv <= 0 || Hq % Hkv != 0) {
      return ctx.error("q heads " + std::to_string(Hq) + " must be a multiple of kv heads " + std::to_string(Hkv));
    }
    // The past, and K/V as [B, Hkv, T, *] views.
    if (ctx.hasInput(4) != ctx.hasInput(5)) return ctx.error("past_key and past_value must be given together");
    int64_t P = 0;
    if (ctx.hasInput(4)) {
      const ir::Tensor& pk = ctx.input(4);
      const ir::Tensor& pv = ctx.input(5);
      WH_RETURN_IF_ERROR(requireFloat(ctx, pk, "past_key"));
      WH_RETURN_IF_ERROR(requireFloat(ctx, pv, "past_value"));
      if (pk.rank() != 4 || pv.rank() != 4 || pk.dims()[0] != B || pk.dims()[1] != Hkv || pk.dims()[3] != D ||
          pv.dims()[0] != B || pv.dims()[1] != Hkv || pv.dims()[2] != pk.dims()[2] || pv.dims()[3] != Dv) {
        return ctx.error("past_key " + shapeToString(pk.dims()) + " and past_value " + shapeToString(pv.dims()) +
                         " must be [" + std::to_string(B) + ", " + std::to_string(Hkv) + ", past_seq, " +
                         std::to_string(D) + " / " + std::to_string(Dv) + "]");
      }
      P = pk.dims()[2];
    }
    const int64_t T = P + Skv;
    View kView = viewOf(k.data<float>(), rank4, Hkv, Skv, D);
    View vView = viewOf(v.data<float>(), rank4, Hkv, Skv, Dv);
    const bool needPresent = P > 0 || ctx.hasOutput(1) || ctx.hasOutput(2);
    if (needPresent) {
      float* pk = presentBuffer(ctx, 1, {B, Hkv, T, D}, presentK_);
      float* pv = presentBuffer(ctx, 2, {B, Hkv, T, Dv}, presentV_);
      concatPast(P > 0 ? ctx.input(4).data<float>() : nullptr, kView, B, Hkv, P, Skv, D, pk);
      concatPast(P > 0 ? ctx.input(5).data<float>() : nullptr, vView, B, Hkv, P, Skv, Dv, pv);
      kView = viewOf(pk, true, Hkv, T, D);
      vView = viewOf(pv, true, Hkv, T, Dv);
    }
    // Masks.
    MaskSource mask;
    if (ctx.hasInput(3)) WH_RETURN_IF_ERROR(maskSource(ctx, ctx.input(3), B, Hq, Sq, T, mask));
    std::vector<int64_t> nonpad;
    if (ctx.hasInput(6)) {
      const ir::Tensor& n = ctx.input(6);
      WH_ASSIGN_OR_RETURN(nonpad, readInts(n, "nonpad_kv_seqlen"));
      if (n.rank() != 1 || n.dims()[0] != B) {
        return ctx.error("nonpad_kv_seqlen " + shapeToString(n.dims()) + " must be [" + std::to_string(B) + "]");
      }
      for (int64_t len : nonpad) {
        if (len < 0 || len > T) {
          return ctx.error("nonpad_kv_seqlen " + std::to_string(len) + " is outside [0, " + std::to_string(T) + "]");
        }
      }
    }
    const float scale = scale_ > 0.f ? scale_ : 1.f / std::sqrt(static_cast<float>(std::max<int64_t>(D, 1)));
    const View qView = viewOf(q.data<float>(), rank4, Hq, Sq, D);
    std::vector<int64_t> yDims = rank4 ? std::vector<int64_t>{B, Hq, Sq, Dv} : std::vector<int64_t>{B, Sq, Hq * Dv};
    float* y = ctx.allocateOutput(0, DataType::kFloat, yDims).mutableData<float>();
    const View yView = viewOf(y, rank4, Hq, Sq, Dv);
    float* qkOut = nullptr;
    if (ctx.hasOutput(3)) qkOut = ctx.allocateOutput(3, DataType::kFloat, {B, Hq, Sq, T}).mutableData<float>();
    if (B == 0 || Hq == 0 || Sq == 0) return Status::ok();

    const int64_t pairs = B * Hq, group = Hq / Hkv;
    // What torch's F.scaled_dot_product_attention exports (no mask input, or is_causal): the
    // register-tiled kernel of the fused attention that step T lowers written-out attention to.
    if (qkOut == nullptr && softcap_ == 0.f && !doubleSoftmax_ && !ctx.hasInput(3) && nonpad.empty() && T > 0 &&
        D > 0 && qView.row == D && kView.row == D && vView.row == Dv) {
      return runTiled(ctx, qView, kView, vView, yView, B, Hq, group, Sq, T, D, Dv, P, scale);
    }
    const float negInf = -std::numeric_limits<float>::infinity();
    std::vector<Status> failures(static_cast<size_t>(pairs));
#pragma omp parallel if (pairs > 1 && Sq * T * std::max(D, Dv) > 4096)
    {
      const int64_t bufferRows = qkOut != nullptr ? Sq : std::min(Sq, kQueryBlock);
      std::vector<float> scores(static_cast<size_t>(bufferRows * std::max<int64_t>(T, 1)));
#pragma omp for schedule(dynamic)
      for (int64_t p = 0; p < pairs; ++p) {
        const int64_t b = p / Hq, h = p % Hq, kvh = h / group;
        float* yp = const_cast<float*>(yView.at(b, h));
        if (T == 0) {
          for (int64_t s = 0; s < Sq; ++s) std::fill(yp + s * yView.row, yp + s * yView.row + Dv, 0.f);
          continue;
        }
        float* qk = qkOut != nullptr ? qkOut + p * Sq * T : nullptr;
        // Keys >= end are masked: the nonpad length; causal adds a per-row limit.
        const int64_t end = nonpad.empty() ? T : nonpad[static_cast<size_t>(b)];
        const int64_t causalOffset = P > 0 || nonpad.empty() ? P : nonpad[static_cast<size_t>(b)] - Sq;
        // Query rows in blocks; a block multiplies only the keys some row of it may see (a causal
        // block stops at its last row's limit). The qk output needs every key: one block.
        const int64_t rowsPerBlock = qk != nullptr ? Sq : kQueryBlock;
        for (int64_t s0 = 0; s0 < Sq; s0 += rowsPerBlock) {
          const int64_t rows = std::min(rowsPerBlock, Sq - s0);
          int64_t keys = T;
          if (qk == nullptr) {
            keys = std::min(end, mask.floats != nullptr || mask.bools != nullptr ? mask.length : T);
            if (causal_) keys = std::min(keys, std::max<int64_t>(0, s0 + rows + causalOffset));
          }
          float* yBlock = yp + s0 * yView.row;
          if (keys == 0) {  // every key masked: zero rows
            for (int64_t s = 0; s < rows; ++s) std::fill(yBlock + s * yView.row, yBlock + s * yView.row + Dv, 0.f);
            continue;
          }
          Status st = sgemm(ctx, false, true, rows, keys, D, scale, qView.at(b, h) + s0 * qView.row, qView.row,
                            kView.at(b, kvh), kView.row, 0.f, scores.data(), T);
          if (!st.isOk()) {
            failures[static_cast<size_t>(p)] = st;
            break;
          }
          if (qk != nullptr && mode_ == 0) std::copy(scores.begin(), scores.begin() + Sq * T, qk);
          for (int64_t s = s0; s < s0 + rows; ++s) {
            float* row = scores.data() + (s - s0) * T;
            if (softcap_ > 0.f) softcapRow(row, keys, softcap_);
            if (qk != nullptr && mode_ == 1) std::copy(row, row + T, qk + s * T);
            int64_t limit = end;
            if (causal_) limit = std::min(limit, std::max<int64_t>(0, s + causalOffset + 1));
            if (mask.floats != nullptr || mask.bools != nullptr) {
              const int64_t off = b * mask.strides[0] + h * mask.strides[1] + s * mask.strides[2];
              const int64_t len = std::min(mask.length, keys);
              if (mask.floats != nullptr) {
                const float* mr = mask.floats + off;
                for (int64_t t = 0; t < len; ++t) row[t] += mr[t];
              } else {
                const uint8_t* mr = mask.bools + off;
                for (int64_t t = 0; t < len; ++t) {
                  if (mr[t] == 0) row[t] = negInf;
                }
              }
              limit = std::min(limit, mask.length);
            }
            for (int64_t t = limit; t < keys; ++t) row[t] = negInf;
            if (qk != nullptr && mode_ == 2) std::copy(row, row + T, qk + s * T);
            softmaxRow(row, keys);
            if (qk != nullptr && mode_ == 3) std::copy(row, row + T, qk + s * T);
          }
          st = sgemm(ctx, false, false, rows, Dv, keys, 1.f, scores.data(), T, vView.at(b, kvh), vView.row, 0.f,
                     yBlock, yView.row);
          if (!st.isOk()) {
            failures[static_cast<size_t>(p)] = st;
            break;
          }
        }
      }
    }
    for (Status& st : failures) WH_RETURN_IF_ERROR(st);
    return Status::ok();
  }

 private:
  /// Every (batch, query head) slice through attentionSlice (kernels/cpu/fused_attention.h): rows
  /// in blocks of 32 whose scores stay in the cache, AVX-512 products. A causal node shares one
  /// additive [Sq, T] mask (0, or -inf past key s + P) across the heads, so the kernel skips the
  /// keys above the diagonal exactly; every row sees at least key 0, so none is all masked.
  Status runTiled(KernelContext& ctx, const View& qView, const View& kView, const View& vView, const View& yView,
                  int64_t B, int64_t Hq, int64_t group, int64_t Sq, int64_t T, int64_t D, int64_t Dv, int64_t P,
                  float scale) {
    AttentionParams params;
    params.seq = Sq, params.total = T, params.head = D, params.valueHead = Dv, params.scale = scale;
    AttentionSlice shape;
    MaskTails tails;
    if (causal_) {
      causalMask_.assign(static_cast<size_t>(Sq * T), 0.f);
      for (int64_t s = 0; s < Sq; ++s) {
        const int64_t first = std::max<int64_t>(0, s + P + 1);
        std::fill(causalMask_.begin() + s * T + std::min(first, T), causalMask_.begin() + (s + 1) * T,
                  -std::numeric_limits<float>::infinity());
      }
      shape.mask = causalMask_.data(), shape.maskRowStride = T, shape.maskColStride = 1;
      findMaskTails(params, shape, tails);
    }
    const bool ok = attentionSlices(
        params, B * Hq, std::max(1, ctx.threads()), B * Hq > 1 && Sq * T * std::max(D, Dv) > 4096, tiledScratch_,
        [&](int64_t p) {
          const int64_t b = p / Hq, h = p % Hq, kvh = h / group;
          AttentionSlice slice = shape;
          slice.q = qView.at(b, h), slice.k = kView.at(b, kvh), slice.v = vView.at(b, kvh);
          slice.y = const_cast<float*>(yView.at(b, h)), slice.yRowStride = yView.row;
          return slice;
        },
        [&](int64_t) { return causal_ ? &tails : nullptr; });
    if (!ok) return internalError(ctx.describe() + ": dnnl_sgemm failed");
    return Status::ok();
  }

  /// Output `i` when the node has it, else `scratch`, sized to `dims`.
  static float* presentBuffer(KernelContext& ctx, size_t i, const std::vector<int64_t>& dims,
                              std::vector<float>& scratch) {
    if (ctx.hasOutput(i)) return ctx.allocateOutput(i, DataType::kFloat, dims).mutableData<float>();
    scratch.resize(static_cast<size_t>(dims[0] * dims[1] * dims[2] * dims[3]));
    return scratch.data();
  }

  /// dst [B, H, P + S, W] = past [B, H, P, W] (may be null when P = 0) then the rows of `cur`.
  static void concatPast(const float* past, const View& cur, int64_t B, int64_t H, int64_t P, int64_t S, int64_t W,
                         float* dst) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        float* o = dst + (b * H + h) * (P + S) * W;
        if (P > 0) std::memcpy(o, past + (b * H + h) * P * W, static_cast<size_t>(P * W) * sizeof(float));
        const float* src = cur.at(b, h);
        for (int64_t s = 0; s < S; ++s) std::memcpy(o + (P + s) * W, src + s * cur.row, static_cast<size_t>(W) * sizeof(float));
      }
    }
  }

  /// In place; a row with every key masked becomes zeros.
  void softmaxRow(float* row, int64_t T) const {
    const float mx = rowMax(row, T);
    if (mx == -std::numeric_limits<float>::infinity()) {
      std::fill(row, row + T, 0.f);
      return;
    }
    if (doubleSoftmax_) {
      double sum = 0;
      for (int64_t t = 0; t < T; ++t) sum += std::exp(static_cast<double>(row[t]) - mx);
      for (int64_t t = 0; t < T; ++t) row[t] = static_cast<float>(std::exp(static_cast<double>(row[t]) - mx) / sum);
      return;
    }
    scaleRow(row, T, static_cast<float>(1.0 / expShifted(row, T, mx)));
  }

  /// Checks attn_mask against [B, Hq, Sq, T] and fills `m`.
  Status maskSource(const KernelContext& ctx, const ir::Tensor& t, int64_t B, int64_t H, int64_t S, int64_t T,
                    MaskSource& m) const {
    if (t.dtype() != DataType::kBool && t.dtype() != DataType::kFloat) {
      return ctx.unsupported("attn_mask is " + std::string(ir::dataTypeName(t.dtype())) +
                             "; only bool and float32 are supported");
    }
    const auto& d = t.dims();
    bool ok = t.rank() >= 1 && t.rank() <= 4 && d.back() <= T && (d.back() > 0 || T == 0);
    const int64_t target[3] = {B, H, S};
    int64_t extent[3] = {1, 1, 1};
    for (int64_t i = 0; ok && i + 1 < t.rank(); ++i) {
      const int64_t axis = 3 - (t.rank() - 1) + i;  // 0..2 among [B, H, S]
      extent[axis] = d[static_cast<size_t>(i)];
      ok = extent[axis] == 1 || extent[axis] == target[axis];
    }
    if (!ok) {
      return ctx.error("attn_mask " + shapeToString(d) + " does not broadcast to [" + std::to_string(B) + ", " +
                       std::to_string(H) + ", " + std::to_string(S) + ", " + std::to_string(T) +
                       "] (its last dim may be shorter than " + std::to_string(T) + ")");
    }
    m.length = d.back();
    m.strides[2] = extent[2] == 1 ? 0 : m.length;
    m.strides[1] = extent[1] == 1 ? 0 : extent[2] * m.length;
    m.strides[0] = extent[0] == 1 ? 0 : extent[1] * extent[2] * m.length;
    if (t.dtype() == DataType::kBool) {
      m.bools = reinterpret_cast<const uint8_t*>(t.data<bool>());
    } else {
      m.floats = t.data<float>();
    }
    return Status::ok();
  }

  bool causal_;
  int64_t qHeadsAttr_, kvHeadsAttr_;
  float scale_, softcap_;
  int64_t mode_;
  bool doubleSoftmax_;
  std::vector<float> presentK_, presentV_;
  std::vector<float> causalMask_, tiledScratch_;  // runTiled's shared causal mask and per-thread scratch
};

Expected<std::unique_ptr<Kernel>> createOnnxAttention(const KernelCreateInfo& info) {
  const ir::Node& n = info.node;
  const int64_t causal = n.attrInt("is_causal", 0);
  if (causal != 0 && causal != 1) return info.error("is_causal must be 0 or 1, got " + std::to_string(causal));
  const int64_t mode = n.attrInt("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) return info.error("qk_matmul_output_mode must be 0 to 3, got " + std::to_string(mode));
  const float scale = n.attrFloat("scale", 0.f);
  if (n.hasAttribute("scale") && !(scale > 0.f)) return info.error("scale must be positive, got " + std::to_string(scale));
  const float softcap = n.attrFloat("softcap", 0.f);
  if (!(softcap >= 0.f)) return info.error("softcap must be >= 0, got " + std::to_string(softcap));
  const int64_t precision = n.attrInt("softmax_precision", 0);
  if (precision != 0 && precision != static_cast<int64_t>(DataType::kFloat) &&
      precision != static_cast<int64_t>(DataType::kFloat16) && precision != static_cast<int64_t>(DataType::kBFloat16) &&
      precision != static_cast<int64_t>(DataType::kDouble)) {
    return info.error("softmax_precision " + std::to_string(precision) +
                      " is not a floating-point type (1, 10, 11 or 16)");
  }
  return std::unique_ptr<Kernel>(std::make_unique<OnnxAttentionKernel>(
      causal == 1, n.attrInt("q_num_heads", 0), n.attrInt("kv_num_heads", 0), scale, softcap, mode,
      precision == static_cast<int64_t>(DataType::kDouble)));
}

}  // namespace

void registerOnnxAttentionKernels(KernelRegistry& r) { r.add("", "Attention", 23, createOnnxAttention); }

}  // namespace whittle::runtime::cpu
