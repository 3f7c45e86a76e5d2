// com.microsoft Attention and MultiHeadAttention in float32, as ONNX Runtime 1.32's CPU provider
// computes them.
//
//   Attention(input [B,S,Din], weights [Din, Dq+Dk+Dv], bias?, mask_index?, past?, attention_bias?)
//       -> output [B,S,Dv], present? [2,B,N,P+S,H]
//     QKV = input weights + bias, split into Q, K, V (qkv_hidden_sizes, else three equal parts),
//     each cut into num_heads heads; past [2,B,N,P,H] is put before K and V.
//   MultiHeadAttention(query [B,S,D], key?, value?, bias?, key_padding_mask?, attention_bias?,
//       past_key?, past_value?) -> output [B,S,Dv], present_key?, present_value? [B,N,P+L,H]
//     key/value [B,L,D]/[B,L,Dv] (bias [D+D+Dv] added to query, key, value; past_key/past_value
//     [B,N,P,H] put before them), or [B,N,L,H] already split into heads (bias on the query only).
//     ORT's CPU provider has no packed QKV or packed KV form, nor cache_indirection: refused here too.
//
//   For each batch b and head n: scores = scale Q K^T + mask + attention_bias [B|1, N|1, S, T],
//   softmax over T, times V; heads concatenated. scale defaults to 1/sqrt(head size).
//
// The mask is additive, [B, S, T], built as ORT's CPU PrepareMask does: mask_index [B] holds the
// end of each sequence (keys at or after it masked), [2B] ends then starts (keys before the
// start masked too), [B, T] and [B, S, T] are raw 0/1 masks (0 masked); a masked key adds
// mask_filter_value (-10000 by default, so a fully masked row still averages its values).
// unidirectional masks key t > P + s (past length P, for MultiHeadAttention T - S) with the
// lowest float, which softmax turns into an exact 0.
#pragma GCC optimize("no-math-errno")

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/kernel_util.h"
#include "cpu/transformer_internal.h"

namespace whittle::runtime::cpu::transformer {

using ir::DataType;

namespace {

struct AttentionDims {
  int64_t batch = 0, heads = 0, seq = 0, total = 0, past = 0, qkHead = 0, vHead = 0;
  float scale = 1.f;
};

/// The additive [B, S, T] mask of `maskIndex` (may be null) and the causal rule; empty when
/// neither applies.
Status buildMask(const KernelContext& ctx, const ir::Tensor* maskIndex, const AttentionDims& d, bool causal,
                 float filter, const std::string& name, std::vector<float>& mask) {
  mask.clear();
  if (maskIndex == nullptr && !causal) return Status::ok();
  const int64_t B = d.batch, S = d.seq, T = d.total;
  mask.assign(static_cast<size_t>(B * S * T), 0.f);
  if (maskIndex != nullptr) {
    const ir::Tensor& m = *maskIndex;
    if (m.dtype() != DataType::kInt32 && m.dtype() != DataType::kInt64) {
      return ctx.error(name + " must be int32, got " + std::string(ir::dataTypeName(m.dtype())));
    }
    WH_ASSIGN_OR_RETURN(std::vector<int64_t> v, readInts(m, name));
    const auto& md = m.dims();
    auto at = [&](int64_t b, int64_t s) { return mask.data() + (b * S + s) * T; };
    if (m.rank() == 1 && (md[0] == B || md[0] == 2 * B)) {
      const bool starts = md[0] == 2 * B && B > 0;
      for (int64_t b = 0; b < B; ++b) {
        float* row = at(b, 0);
        const int64_t end = std::clamp<int64_t>(v[static_cast<size_t>(b)], 0, T);
        for (int64_t t = end; t < T; ++t) row[t] = filter;
        if (starts) {
          const int64_t start = std::clamp<int64_t>(v[static_cast<size_t>(b + B)], 0, T);
          for (int64_t t = 0; t < start; ++t) row[t] = filter;
        }
        for (int64_t s = 1; s < S; ++s) std::memcpy(at(b, s), row, static_cast<size_t>(T) * sizeof(float));
      }
    } else if (m.rank() == 2 && md[0] == B && md[1] == T) {
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t s = 0; s < S; ++s) {
          float* row = at(b, s);
          for (int64_t t = 0; t < T; ++t) row[t] = v[static_cast<size_t>(b * T + t)] > 0 ? 0.f : filter;
        }
      }
    } else if (m.rank() == 3 && md[0] == B && md[1] == S && md[2] == T) {
      for (int64_t i = 0; i < B * S * T; ++i) mask[static_cast<size_t>(i)] = v[static_cast<size_t>(i)] > 0 ? 0.f : filter;
    } else {
      return ctx.error(name + " " + shapeToString(md) + " must be [batch], [2*batch], [batch, total_seq] or " +
                       "[batch, seq, total_seq] with batch " + std::to_string(B) + ", seq " + std::to_string(S) +
                       ", total_seq " + std::to_string(T));
    }
  }
  if (causal) {
    const float lowest = std::numeric_limits<float>::lowest();
    const int64_t offset = T - S;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t s = 0; s < S; ++s) {
        float* row = mask.data() + (b * S + s) * T;
        for (int64_t t = std::max<int64_t>(0, offset + s + 1); t < T; ++t) row[t] = lowest;
      }
    }
  }
  return Status::ok();
}

/// Checks attention_bias: [B or 1, N or 1, S, T]; sets its batch and head extents.
Status checkAttentionBias(const KernelContext& ctx, const ir::Tensor& t, const AttentionDims& d, int64_t& bb,
                          int64_t& bn) {
  WH_RETURN_IF_ERROR(requireFloat(ctx, t, "attention_bias"));
  const auto& x = t.dims();
  if (t.rank() != 4 || (x[0] != 1 && x[0] != d.batch) || (x[1] != 1 && x[1] != d.heads) || x[2] != d.seq ||
      x[3] != d.total) {
    return ctx.error("attention_bias " + shapeToString(x) + " must be [batch or 1, num_heads or 1, " +
                     std::to_string(d.seq) + ", " + std::to_string(d.total) + "]");
  }
  bb = x[0];
  bn = x[1];
  return Status::ok();
}

/// out [B, S, N*Hv] = softmax(scale Q K^T + mask + bias) V per batch and head; q [B,N,S,Hqk],
/// k [B,N,T,Hqk], v [B,N,T,Hv]; mask [B,S,T] or null; bias [bb,bn,S,T] or null.
Status attend(const KernelContext& ctx, const AttentionDims& d, const float* q, const float* k, const float* v,
              const float* mask, const float* bias, int64_t bb, int64_t bn, float* out) {
  const int64_t S = d.seq, T = d.total, N = d.heads, Hq = d.qkHead, Hv = d.vHead;
  const int64_t pairs = d.batch * N;
  if (S == 0 || pairs == 0 || Hv == 0) return Status::ok();
  if (T == 0) {
    std::fill(out, out + d.batch * S * N * Hv, 0.f);
    return Status::ok();
  }
  std::vector<Status> failures(static_cast<size_t>(pairs));
#pragma omp parallel if (pairs > 1 && S * T * std::max(Hq, Hv) > 4096)
  {
    std::vector<float> scores(static_cast<size_t>(S * T));
#pragma omp for
    for (int64_t p = 0; p < pairs; ++p) {
      const int64_t b = p / N, n = p % N;
      Status st = sgemm(ctx, false, true, S, T, Hq, d.scale, q + p * S * Hq, Hq, k + p * T * Hq, Hq, 0.f,
                        scores.data(), T);
      if (!st.isOk()) {
        failures[static_cast<size_t>(p)] = st;
        continue;
      }
      for (int64_t s = 0; s < S; ++s) {
        float* row = scores.data() + s * T;
        if (mask != nullptr) {
          const float* mr = mask + (b * S + s) * T;
          for (int64_t t = 0; t < T; ++t) row[t] += mr[t];
        }
        if (bias != nullptr) {
          const float* br = bias + (((bb == 1 ? 0 : b) * bn + (bn == 1 ? 0 : n)) * S + s) * T;
          for (int64_t t = 0; t < T; ++t) row[t] += br[t];
        }
        softmaxRowScalar(row, T);
      }
      st = sgemm(ctx, false, false, S, Hv, T, 1.f, scores.data(), T, v + p * T * Hv, Hv, 0.f,
                 out + b * S * N * Hv + n * Hv, N * Hv);
      if (!st.isOk()) failures[static_cast<size_t>(p)] = st;
    }
  }
  for (Status& st : failures) WH_RETURN_IF_ERROR(st);
  return Status::ok();
}

/// Copies rows of `src` ([B, L, N*H] with `bias` [N*H] added when not null) into `dst`
/// [B, N, T, H] at sequence offset `at`.
void splitHeads(const float* src, int64_t srcStride, const float* bias, int64_t B, int64_t L, int64_t N, int64_t H,
                float* dst, int64_t T, int64_t at) {
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t l = 0; l < L; ++l) {
      const float* row = src + (b * L + l) * srcStride;
      for (int64_t n = 0; n < N; ++n) {
        float* o = dst + ((b * N + n) * T + at + l) * H;
        for (int64_t h = 0; h < H; ++h) o[h] = row[n * H + h] + (bias != nullptr ? bias[n * H + h] : 0.f);
      }
    }
  }
}

/// Copies past [B, N, P, H] into the first P rows of dst [B, N, T, H].
void copyPast(const float* past, int64_t B, int64_t N, int64_t P, int64_t H, float* dst, int64_t T) {
  for (int64_t bn = 0; bn < B * N; ++bn) {
    std::memcpy(dst + bn * T * H, past + bn * P * H, static_cast<size_t>(P * H) * sizeof(float));
  }
}

float defaultScale(float scale, int64_t head) {
  return scale != 0.f ? scale : 1.f / std::sqrt(static_cast<float>(std::max<int64_t>(head, 1)));
}

// ---------------------------------------------------------------- Attention

/// Output 0 [B, S, dv] of Attention and MultiHeadAttention: the mask from input `maskInput`
/// (named `maskName`; with the causal part), the attention_bias of input 5, then attend().
Status maskedAttention(KernelContext& ctx, const AttentionDims& d, size_t maskInput, const char* maskName, bool causal,
                       float filter, const float* q, const float* k, const float* v, int64_t dv,
                       std::vector<float>& mask) {
  WH_RETURN_IF_ERROR(buildMask(ctx, ctx.hasInput(maskInput) ? &ctx.input(maskInput) : nullptr, d, causal, filter,
                               maskName, mask));
  const float* bias = nullptr;
  int64_t bb = 1, bn = 1;
  if (ctx.hasInput(5)) {
    WH_RETURN_IF_ERROR(checkAttentionBias(ctx, ctx.input(5), d, bb, bn));
    bias = ctx.input(5).data<float>();
  }
  float* out = ctx.allocateOutput(0, DataType::kFloat, {d.batch, d.seq, dv}).mutableData<float>();
  return attend(ctx, d, q, k, v, mask.empty() ? nullptr : mask.data(), bias, bb, bn, out);
}

class AttentionKernel final : public Kernel {
 public:
  AttentionKernel(int64_t heads, bool causal, std::vector<int64_t> qkvSizes, float filter, float scale)
      : heads_(heads), causal_(causal), qkvSizes_(std::move(qkvSizes)), filter_(filter), scale_(scale) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& w = ctx.input(1);
    WH_RETURN_IF_ERROR(requireFloat(ctx, x, "input"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, w, "weights"));
    if (x.rank() != 3) return ctx.error("input must be [batch, seq, input_hidden], got " + shapeToString(x.dims()));
    const int64_t B = x.dims()[0], S = x.dims()[1], Din = x.dims()[2];
    if (w.rank() != 2 || w.dims()[0] != Din) {
      return ctx.error("weights " + shapeToString(w.dims()) + " must be [" + std::to_string(Din) +
                       ", q_hidden + k_hidden + v_hidden]");
    }
    const int64_t Dtot = w.dims()[1];
    int64_t Dq = 0, Dk = 0, Dv = 0;
    if (!qkvSizes_.empty()) {
      Dq = qkvSizes_[0], Dk = qkvSizes_[1], Dv = qkvSizes_[2];
    } else {
      Dq = Dk = Dv = Dtot / 3;
    }
    if (Dq + Dk + Dv != Dtot || Dq != Dk) {
      return ctx.error("weights' " + std::to_string(Dtot) + " columns do not split into Q, K and V of sizes " +
                       std::to_string(Dq) + ", " + std::to_string(Dk) + ", " + std::to_string(Dv) +
                       " (Q and K equal)");
    }
    const int64_t N = heads_;
    if (Dq % N != 0 || Dv % N != 0) {
      return ctx.error("hidden sizes " + std::to_string(Dq) + " and " + std::to_string(Dv) +
                       " must be multiples of num_heads " + std::to_string(N));
    }
    const float* bias = nullptr;
    if (ctx.hasInput(2)) {
      const ir::Tensor& bt = ctx.input(2);
      WH_RETURN_IF_ERROR(requireFloat(ctx, bt, "bias"));
      if (bt.rank() != 1 || bt.dims()[0] != Dtot) {
        return ctx.error("bias " + shapeToString(bt.dims()) + " must be [" + std::to_string(Dtot) + "]");
      }
      bias = bt.data<float>();
    }
    if (ctx.hasInput(6)) return ctx.unsupported("past_sequence_length (a shared past/present buffer) is not supported");
    AttentionDims d;
    d.batch = B, d.heads = N, d.seq = S, d.qkHead = Dq / N, d.vHead = Dv / N;
    const float* past = nullptr;
    if (ctx.hasInput(4)) {
      const ir::Tensor& pt = ctx.input(4);
      WH_RETURN_IF_ERROR(requireFloat(ctx, pt, "past"));
      if (d.qkHead != d.vHead || pt.rank() != 5 || pt.dims()[0] != 2 || pt.dims()[1] != B || pt.dims()[2] != N ||
          pt.dims()[4] != d.qkHead) {
        return ctx.error("past " + shapeToString(pt.dims()) + " must be [2, " + std::to_string(B) + ", " +
                         std::to_string(N) + ", past_seq, " + std::to_string(d.qkHead) +
                         "] (and Q, K, V heads of one size)");
      }
      d.past = pt.dims()[3];
      past = pt.data<float>();
    }
    d.total = d.past + S;
    d.scale = defaultScale(scale_, d.qkHead);
    if (ctx.hasOutput(1) && d.qkHead != d.vHead) {
      return ctx.error("present needs K and V heads of one size, got " + std::to_string(d.qkHead) + " and " +
                       std::to_string(d.vHead));
    }
    // QKV = input weights + bias, split into heads.
    qkv_.resize(static_cast<size_t>(B * S * Dtot));
    WH_RETURN_IF_ERROR(sgemm(ctx, false, false, B * S, Dtot, Din, 1.f, x.data<float>(), Din, w.data<float>(), Dtot,
                             0.f, qkv_.data(), Dtot));
    const int64_t T = d.total;
    q_.resize(static_cast<size_t>(B * N * S * d.qkHead));
    k_.resize(static_cast<size_t>(B * N * T * d.qkHead));
    v_.resize(static_cast<size_t>(B * N * T * d.vHead));
    splitHeads(qkv_.data(), Dtot, bias, B, S, N, d.qkHead, q_.data(), S, 0);
    splitHeads(qkv_.data() + Dq, Dtot, bias != nullptr ? bias + Dq : nullptr, B, S, N, d.qkHead, k_.data(), T, d.past);
    splitHeads(qkv_.data() + Dq + Dk, Dtot, bias != nullptr ? bias + Dq + Dk : nullptr, B, S, N, d.vHead, v_.data(),
               T, d.past);
    if (past != nullptr) {
      const int64_t half = B * N * d.past * d.qkHead;
      copyPast(past, B, N, d.past, d.qkHead, k_.data(), T);
      copyPast(past + half, B, N, d.past, d.vHead, v_.data(), T);
    }
    WH_RETURN_IF_ERROR(maskedAttention(ctx, d, 3, "mask_index", causal_, filter_, q_.data(), k_.data(), v_.data(),
                                       Dv, mask_));
    if (ctx.hasOutput(1)) {
      float* present = ctx.allocateOutput(1, DataType::kFloat, {2, B, N, T, d.qkHead}).mutableData<float>();
      std::copy(k_.begin(), k_.end(), present);
      std::copy(v_.begin(), v_.end(), present + k_.size());
    }
    return Status::ok();
  }

 private:
  int64_t heads_;
  bool causal_;
  std::vector<int64_t> qkvSizes_;
  float filter_, scale_;
  std::vector<float> qkv_, q_, k_, v_, mask_;
};

Expected<int64_t> numHeads(const KernelCreateInfo& info) {
  if (!info.node.hasAttribute("num_heads")) return info.error("attribute num_heads is required");
  int64_t n = info.node.attrInt("num_heads", 0);
  if (n <= 0) return info.error("num_heads must be positive, got " + std::to_string(n));
  return n;
}

Expected<bool> unidirectional(const KernelCreateInfo& info) {
  int64_t u = info.node.attrInt("unidirectional", 0);
  if (u != 0 && u != 1) return info.error("unidirectional must be 0 or 1, got " + std::to_string(u));
  return u == 1;
}

Expected<std::unique_ptr<Kernel>> createAttention(const KernelCreateInfo& info) {
  WH_ASSIGN_OR_RETURN(int64_t heads, numHeads(info));
  WH_ASSIGN_OR_RETURN(bool causal, unidirectional(info));
  std::vector<int64_t> sizes = info.node.attrInts("qkv_hidden_sizes");
  if (!sizes.empty() && (sizes.size() != 3 || sizes[0] <= 0 || sizes[1] <= 0 || sizes[2] <= 0)) {
    return info.error("qkv_hidden_sizes must hold three positive sizes");
  }
  if (info.node.attrInt("past_present_share_buffer", 0) != 0) {
    return info.unsupported("past_present_share_buffer=1 is not supported");
  }
  if (info.node.attrInt("do_rotary", 0) != 0) return info.unsupported("do_rotary=1 is not supported");
  return std::unique_ptr<Kernel>(std::make_unique<AttentionKernel>(
      heads, causal, std::move(sizes), info.node.attrFloat("mask_filter_value", -10000.f),
      info.node.attrFloat("scale", 0.f)));
}

// ---------------------------------------------------------------- MultiHeadAttention

class MultiHeadAttentionKernel final : public Kernel {
 public:
  MultiHeadAttentionKernel(int64_t heads, bool causal, float filter, float scale)
      : heads_(heads), causal_(causal), filter_(filter), scale_(scale) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& query = ctx.input(0);
    WH_RETURN_IF_ERROR(requireFloat(ctx, query, "query"));
    if (query.rank() == 5) return ctx.unsupported("packed QKV (query [B, S, N, 3, H]) is not supported");
    if (query.rank() != 3) return ctx.error("query must be [batch, seq, hidden], got " + shapeToString(query.dims()));
    if (!ctx.hasInput(1)) return ctx.unsupported("packed QKV (no key input) is not supported");
    if (ctx.hasInput(8) || ctx.hasInput(9)) {
      return ctx.unsupported("past_sequence_length and cache_indirection are not supported");
    }
    if (ctx.hasOutput(3)) return ctx.unsupported("the qk output is not supported");
    const ir::Tensor& key = ctx.input(1);
    WH_RETURN_IF_ERROR(requireFloat(ctx, key, "key"));
    if (key.rank() == 5) return ctx.unsupported("packed KV (key [B, L, N, 2, H]) is not supported");
    if (!ctx.hasInput(2)) return ctx.error("value is required when key is given");
    const ir::Tensor& value = ctx.input(2);
    WH_RETURN_IF_ERROR(requireFloat(ctx, value, "value"));
    const int64_t B = query.dims()[0], S = query.dims()[1], D = query.dims()[2], N = heads_;
    if (D % N != 0) {
      return ctx.error("query hidden size " + std::to_string(D) + " is not a multiple of num_heads " +
                       std::to_string(N));
    }
    AttentionDims d;
    d.batch = B, d.heads = N, d.seq = S, d.qkHead = D / N;
    const bool split = key.rank() == 4;  // [B, N, L, H]
    int64_t L = 0, Dv = 0;
    if (split) {
      if (value.rank() != 4 || key.dims()[0] != B || key.dims()[1] != N || key.dims()[3] != d.qkHead ||
          value.dims()[0] != B || value.dims()[1] != N || value.dims()[2] != key.dims()[2]) {
        return ctx.error("key " + shapeToString(key.dims()) + " and value " + shapeToString(value.dims()) +
                         " must be [" + std::to_string(B) + ", " + std::to_string(N) + ", kv_seq, head] with key's head " +
                         std::to_string(d.qkHead));
      }
      L = key.dims()[2];
      d.vHead = value.dims()[3];
      Dv = N * d.vHead;
      if (ctx.hasInput(6) || ctx.hasInput(7)) return ctx.error("past_key/past_value need key and value as [B, L, D]");
    } else {
      if (key.rank() != 3 || value.rank() != 3 || key.dims()[0] != B || value.dims()[0] != B ||
          key.dims()[2] != D || value.dims()[1] != key.dims()[1] || value.dims()[2] % N != 0) {
        return ctx.error("key " + shapeToString(key.dims()) + " and value " + shapeToString(value.dims()) +
                         " must be [" + std::to_string(B) + ", kv_seq, " + std::to_string(D) + "] and [" +
                         std::to_string(B) + ", kv_seq, a multiple of num_heads]");
      }
      L = key.dims()[1];
      Dv = value.dims()[2];
      d.vHead = Dv / N;
    }
    const float* bias = nullptr;
    if (ctx.hasInput(3)) {
      const ir::Tensor& bt = ctx.input(3);
      WH_RETURN_IF_ERROR(requireFloat(ctx, bt, "bias"));
      if (bt.rank() != 1 || bt.dims()[0] != 2 * D + Dv) {
        return ctx.error("bias " + shapeToString(bt.dims()) + " must be [" + std::to_string(2 * D + Dv) + "]");
      }
      bias = bt.data<float>();
    }
    if (ctx.hasInput(6) != ctx.hasInput(7)) return ctx.error("past_key and past_value must be given together");
    if (ctx.hasInput(6)) {
      const ir::Tensor& pk = ctx.input(6);
      const ir::Tensor& pv = ctx.input(7);
      WH_RETURN_IF_ERROR(requireFloat(ctx, pk, "past_key"));
      WH_RETURN_IF_ERROR(requireFloat(ctx, pv, "past_value"));
      if (pk.rank() != 4 || pv.rank() != 4 || pk.dims()[0] != B || pk.dims()[1] != N || pk.dims()[3] != d.qkHead ||
          pv.dims()[0] != B || pv.dims()[1] != N || pv.dims()[2] != pk.dims()[2] || pv.dims()[3] != d.vHead) {
        return ctx.error("past_key " + shapeToString(pk.dims()) + " and past_value " + shapeToString(pv.dims()) +
                         " must be [" + std::to_string(B) + ", " + std::to_string(N) + ", past_seq, head]");
      }
      d.past = pk.dims()[2];
    }
    d.total = d.past + L;
    d.scale = defaultScale(scale_, d.qkHead);
    const int64_t T = d.total;
    q_.resize(static_cast<size_t>(B * N * S * d.qkHead));
    splitHeads(query.data<float>(), D, bias, B, S, N, d.qkHead, q_.data(), S, 0);
    const float* kp;
    const float* vp;
    if (split) {
      kp = key.data<float>();
      vp = value.data<float>();
    } else {
      k_.resize(static_cast<size_t>(B * N * T * d.qkHead));
      v_.resize(static_cast<size_t>(B * N * T * d.vHead));
      splitHeads(key.data<float>(), D, bias != nullptr ? bias + D : nullptr, B, L, N, d.qkHead, k_.data(), T, d.past);
      splitHeads(value.data<float>(), Dv, bias != nullptr ? bias + 2 * D : nullptr, B, L, N, d.vHead, v_.data(), T,
                 d.past);
      if (d.past > 0) {
        copyPast(ctx.input(6).data<float>(), B, N, d.past, d.qkHead, k_.data(), T);
        copyPast(ctx.input(7).data<float>(), B, N, d.past, d.vHead, v_.data(), T);
      }
      kp = k_.data();
      vp = v_.data();
    }
    WH_RETURN_IF_ERROR(maskedAttention(ctx, d, 4, "key_padding_mask", causal_, filter_, q_.data(), kp, vp, Dv, mask_));
    if (ctx.hasOutput(1)) {
      float* pk = ctx.allocateOutput(1, DataType::kFloat, {B, N, T, d.qkHead}).mutableData<float>();
      std::copy(kp, kp + B * N * T * d.qkHead, pk);
    }
    if (ctx.hasOutput(2)) {
      float* pv = ctx.allocateOutput(2, DataType::kFloat, {B, N, T, d.vHead}).mutableData<float>();
      std::copy(vp, vp + B * N * T * d.vHead, pv);
    }
    return Status::ok();
  }

 private:
  int64_t heads_;
  bool causal_;
  float filter_, scale_;
  std::vector<float> q_, k_, v_, mask_;
};

Expected<std::unique_ptr<Kernel>> createMultiHeadAttention(const KernelCreateInfo& info) {
  WH_ASSIGN_OR_RETURN(int64_t heads, numHeads(info));
  WH_ASSIGN_OR_RETURN(bool causal, unidirectional(info));
  return std::unique_ptr<Kernel>(std::make_unique<MultiHeadAttentionKernel>(
      heads, causal, info.node.attrFloat("mask_filter_value", -10000.f), info.node.attrFloat("scale", 0.f)));
}

}  // namespace

void registerAttentionKernels(KernelRegistry& r) {
  r.add("com.microsoft", "Attention", 1, createAttention);
  r.add("com.microsoft", "MultiHeadAttention", 1, createMultiHeadAttention);
}

}  // namespace whittle::runtime::cpu::transformer
