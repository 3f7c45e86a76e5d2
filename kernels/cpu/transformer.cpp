// The com.microsoft operators that ONNX Runtime's transformer optimizer
// (onnxruntime.transformers.optimizer) and its level-2 graph fusions write into models, in
// float32, as ONNX Runtime 1.32's CPU provider computes them:
//
//   Gelu(X)                    0.5 x (1 + erf(x / sqrt 2))
//   BiasGelu(A, B)             Gelu(A + B), B [hidden] along the last axis
//   FastGelu(X, bias?)         0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))), u = x + bias
//   QuickGelu(X){alpha=1.702}  x sigmoid(alpha x)
//   SkipLayerNormalization(input, skip, gamma, beta?, bias?) -> output, mean?, inv_std_var?,
//       input_skip_bias_sum?: s = input + skip + bias, LayerNorm of s over the last axis;
//       skip may be broadcast over leading axes ([1, S, H] or [S, H] for an input [B, S, H]).
//   SkipSimplifiedLayerNormalization(input, skip, gamma, bias?) -> the same outputs, with
//       RMS normalization (y = s / sqrt(mean(s^2) + eps) gamma); its mean output is 0, as ORT's.
//   SimplifiedLayerNormalization(X, scale){axis, epsilon} -> Y, inv_std_var? (ORT registers it
//       in the default domain; com.microsoft accepted too): RMS normalization over [axis, rank).
//   LayerNormalization below opset 17 (ORT's contrib registration in the default domain, and
//       com.microsoft): the opset-17 kernel (kernels/cpu/normalization.cpp).
//   FusedMatMul(A, B){alpha, transA, transB, transBatchA, transBatchB}: alpha op(A) op(B) with
//       batch broadcasting; transBatchA reads A [M, batch..., K] (with transA: [K, batch..., M]),
//       which is a leading dimension of the per-batch matrices, not a copy.
//   RotaryEmbedding(input, position_ids, cos_cache, sin_cache){interleaved, num_heads,
//       rotary_embedding_dim}: input [B, S, N*H] or [B, N, S, H]; position p = position_ids[b, s]
//       (or position_ids[0] + s for a [1] tensor); pairs (x[i], x[i + r/2]) (interleaved:
//       (x[2i], x[2i + 1])) rotate by cos_cache[p, i], sin_cache[p, i]; dims past r are copied.
//   EmbedLayerNormalization: word + position (+ segment) embeddings, then LayerNorm; mask_index
//       counts each row's non-zero mask entries (see the kernel).
//
// Attention and MultiHeadAttention live in transformer_attention.cpp.
#pragma GCC optimize("no-math-errno")

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/transformer_internal.h"

namespace whittle::runtime::cpu {

using ir::DataType;

namespace transformer {

Status requireFloat(const KernelContext& ctx, const ir::Tensor& t, const std::string& what) {
  if (t.dtype() == DataType::kFloat) return Status::ok();
  return ctx.unsupported(what + " is " + std::string(ir::dataTypeName(t.dtype())) + "; only float32 is supported");
}

Status sgemm(const KernelContext& ctx, bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return Status::ok();
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    }
    return Status::ok();
  }
  dnnl_status_t st =
      dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) return internalError(ctx.describe() + ": dnnl_sgemm failed with status " + std::to_string(st));
  return Status::ok();
}

}  // namespace transformer

namespace {

using transformer::requireFloat;

constexpr int64_t kParallelElements = 1 << 15;

/// A per-channel parameter along the last axis: 1-D with `hidden` values.
Status checkHiddenVector(const KernelContext& ctx, size_t input, int64_t hidden, const std::string& what) {
  const ir::Tensor& t = ctx.input(input);
  WH_RETURN_IF_ERROR(requireFloat(ctx, t, what));
  if (t.rank() != 1 || t.dims()[0] != hidden) {
    return ctx.error(what + " must be [" + std::to_string(hidden) + "] (the last dim of the input), got " +
                     shapeToString(t.dims()));
  }
  return Status::ok();
}

// ---------------------------------------------------------------- the Gelu family

enum class GeluForm { kErf, kTanh, kQuick };

class GeluKernel final : public Kernel {
 public:
  GeluKernel(GeluForm form, float alpha, bool hasBiasSlot) : form_(form), alpha_(alpha), hasBiasSlot_(hasBiasSlot) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireFloat(ctx, x, "input"));
    if (x.rank() == 0 && hasBiasSlot_ && ctx.hasInput(1)) return ctx.error("input must have rank >= 1 to add a bias");
    const int64_t hidden = x.rank() == 0 ? 1 : x.dims().back();
    const float* bias = nullptr;
    if (hasBiasSlot_ && ctx.hasInput(1)) {
      WH_RETURN_IF_ERROR(checkHiddenVector(ctx, 1, hidden, "bias"));
      bias = ctx.input(1).data<float>();
    }
    const float* xp = x.data<float>();
    float* yp = ctx.allocateOutput(0, DataType::kFloat, x.dims()).mutableData<float>();
    const int64_t n = x.numel();
    const GeluForm form = form_;
    const float alpha = alpha_;
#pragma omp parallel for if (n > kParallelElements)
    for (int64_t i = 0; i < n; ++i) {
      const float u = bias != nullptr ? xp[i] + bias[i % hidden] : xp[i];
      switch (form) {
        case GeluForm::kErf: yp[i] = 0.5f * u * (1.0f + std::erf(u * 0.70710678118654752f)); break;
        case GeluForm::kTanh:
          yp[i] = u * (0.5f + 0.5f * std::tanh(u * (0.7978845608028654f + 0.035677408136300125f * u * u)));
          break;
        case GeluForm::kQuick: yp[i] = u / (1.0f + std::exp(-alpha * u)); break;
      }
    }
    return Status::ok();
  }

 private:
  GeluForm form_;
  float alpha_;
  bool hasBiasSlot_;
};

KernelFactory geluFactory(GeluForm form, bool hasBiasSlot, bool biasRequired) {
  return [=](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    if (biasRequired && (info.node.numInputs() < 2 || info.node.input(1) == nullptr)) {
      return info.error("input B (the bias) is required");
    }
    return std::unique_ptr<Kernel>(
        std::make_unique<GeluKernel>(form, info.node.attrFloat("alpha", 1.702f), hasBiasSlot));
  };
}

// ---------------------------------------------------------------- normalizations

/// SkipLayerNormalization and SkipSimplifiedLayerNormalization.
class SkipLayerNormKernel final : public Kernel {
 public:
  SkipLayerNormKernel(bool simplified, float epsilon) : simplified_(simplified), epsilon_(epsilon) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& skip = ctx.input(1);
    WH_RETURN_IF_ERROR(requireFloat(ctx, x, "input"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, skip, "skip"));
    if (x.rank() < 2) return ctx.error("input must have rank 2 or more, got " + shapeToString(x.dims()));
    const int64_t hidden = x.dims().back();
    // skip: the input's shape, or its trailing dims (leading ones allowed) to broadcast.
    std::vector<int64_t> skipDims = skip.dims();
    while (skipDims.size() > 1 && skipDims.front() == 1 && skipDims.size() >= x.dims().size()) {
      skipDims.erase(skipDims.begin());
    }
    bool skipOk = skipDims.size() <= x.dims().size() &&
                  std::equal(skipDims.rbegin(), skipDims.rend(), x.dims().rbegin()) && !skipDims.empty() &&
                  skipDims.back() == hidden;
    if (!skipOk) {
      return ctx.error("skip " + shapeToString(skip.dims()) + " must be the input's shape " +
                       shapeToString(x.dims()) + " or broadcast to it over the leading dims");
    }
    WH_RETURN_IF_ERROR(checkHiddenVector(ctx, 2, hidden, "gamma"));
    const float* gamma = ctx.input(2).data<float>();
    const float* beta = nullptr;
    const float* bias = nullptr;
    const size_t biasSlot = simplified_ ? 3 : 4;
    if (!simplified_ && ctx.hasInput(3)) {
      WH_RETURN_IF_ERROR(checkHiddenVector(ctx, 3, hidden, "beta"));
      beta = ctx.input(3).data<float>();
    }
    if (ctx.hasInput(biasSlot)) {
      WH_RETURN_IF_ERROR(checkHiddenVector(ctx, biasSlot, hidden, "bias"));
      bias = ctx.input(biasSlot).data<float>();
    }
    const int64_t rows = hidden == 0 ? 0 : x.numel() / hidden;
    const int64_t skipRows = hidden == 0 ? 0 : skip.numel() / hidden;
    std::vector<int64_t> statDims = x.dims();
    statDims.back() = 1;
    float* y = ctx.allocateOutput(0, DataType::kFloat, x.dims()).mutableData<float>();
    float* meanOut = ctx.hasOutput(1) ? ctx.allocateOutput(1, DataType::kFloat, statDims).mutableData<float>() : nullptr;
    float* invOut = ctx.hasOutput(2) ? ctx.allocateOutput(2, DataType::kFloat, statDims).mutableData<float>() : nullptr;
    float* sumOut = ctx.hasOutput(3) ? ctx.allocateOutput(3, DataType::kFloat, x.dims()).mutableData<float>() : nullptr;
    const float* xp = x.data<float>();
    const float* sp = skip.data<float>();
    const bool simplified = simplified_;
    const double eps = epsilon_;
#pragma omp parallel
    {
      std::vector<float> row(static_cast<size_t>(hidden));
#pragma omp for
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = xp + r * hidden;
        const float* sr = sp + (r % skipRows) * hidden;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < hidden; ++i) {
          float v = xr[i] + sr[i];
          if (bias != nullptr) v += bias[i];
          row[static_cast<size_t>(i)] = v;
          sum += v;
          sq += static_cast<double>(v) * v;
        }
        const double n = static_cast<double>(hidden);
        const double mean = simplified ? 0.0 : sum / n;
        const double var = simplified ? sq / n : std::max(0.0, sq / n - mean * mean);
        const double invStd = 1.0 / std::sqrt(var + eps);
        float* yr = y + r * hidden;
        for (int64_t i = 0; i < hidden; ++i) {
          double v = (row[static_cast<size_t>(i)] - mean) * invStd * gamma[i];
          if (beta != nullptr) v += beta[i];
          yr[i] = static_cast<float>(v);
        }
        if (meanOut != nullptr) meanOut[r] = static_cast<float>(mean);
        if (invOut != nullptr) invOut[r] = static_cast<float>(invStd);
        if (sumOut != nullptr) std::copy(row.begin(), row.end(), sumOut + r * hidden);
      }
    }
    return Status::ok();
  }

 private:
  bool simplified_;
  float epsilon_;
};

/// SimplifiedLayerNormalization: RMS normalization over [axis, rank).
class SimplifiedLayerNormKernel final : public Kernel {
 public:
  SimplifiedLayerNormKernel(int64_t axis, float epsilon) : axis_(axis), epsilon_(epsilon) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireFloat(ctx, x, "X"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, ctx.input(1), "scale"));
    auto axis = normalizeAxis(axis_, x.rank());
    if (!axis || x.rank() == 0) {
      return ctx.error("axis " + std::to_string(axis_) + " is out of range for rank " + std::to_string(x.rank()));
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < x.rank(); ++d) (d < *axis ? outer : inner) *= x.dims()[static_cast<size_t>(d)];
    const ir::Tensor& scale = ctx.input(1);
    if (scale.numel() != inner) {
      return ctx.error("scale " + shapeToString(scale.dims()) + " must hold the " + std::to_string(inner) +
                       " values of the normalized dims");
    }
    std::vector<int64_t> statDims(x.dims().begin(), x.dims().begin() + *axis);
    statDims.resize(x.dims().size(), 1);
    float* y = ctx.allocateOutput(0, DataType::kFloat, x.dims()).mutableData<float>();
    float* invOut = ctx.hasOutput(1) ? ctx.allocateOutput(1, DataType::kFloat, statDims).mutableData<float>() : nullptr;
    const float* xp = x.data<float>();
    const float* sp = scale.data<float>();
    const double eps = epsilon_;
#pragma omp parallel for if (outer * inner > kParallelElements)
    for (int64_t r = 0; r < outer; ++r) {
      const float* xr = xp + r * inner;
      double sq = 0;
      for (int64_t i = 0; i < inner; ++i) sq += static_cast<double>(xr[i]) * xr[i];
      const double invStd = 1.0 / std::sqrt(sq / static_cast<double>(inner) + eps);
      float* yr = y + r * inner;
      for (int64_t i = 0; i < inner; ++i) yr[i] = static_cast<float>(xr[i] * invStd * sp[i]);
      if (invOut != nullptr) invOut[r] = static_cast<float>(invStd);
    }
    return Status::ok();
  }

 private:
  int64_t axis_;
  float epsilon_;
};

Expected<std::unique_ptr<Kernel>> createSkipLayerNorm(const KernelCreateInfo& info, bool simplified) {
  float eps = info.node.attrFloat("epsilon", 1e-12f);
  if (!(eps >= 0.f)) return info.error("epsilon must be >= 0, got " + std::to_string(eps));
  return std::unique_ptr<Kernel>(std::make_unique<SkipLayerNormKernel>(simplified, eps));
}

Expected<std::unique_ptr<Kernel>> createSimplifiedLayerNorm(const KernelCreateInfo& info) {
  int64_t stash = info.node.attrInt("stash_type", 1);
  if (stash != static_cast<int64_t>(DataType::kFloat)) {
    return info.unsupported("stash_type " + std::to_string(stash) + " is not supported (only 1, float32)");
  }
  float eps = info.node.attrFloat("epsilon", 1e-5f);
  if (!(eps >= 0.f)) return info.error("epsilon must be >= 0, got " + std::to_string(eps));
  return std::unique_ptr<Kernel>(std::make_unique<SimplifiedLayerNormKernel>(info.node.attrInt("axis", -1), eps));
}

// ---------------------------------------------------------------- FusedMatMul

/// One operand of FusedMatMul: its batch dims and how the matrix of batch entry i is laid out.
struct Operand {
  std::vector<int64_t> batch;
  int64_t rows = 0, cols = 0;  ///< of op(X): rows x cols
  bool trans = false;          ///< whether op transposes the stored matrix
  int64_t ld = 0;              ///< leading dimension of the stored matrix
  int64_t step = 0;            ///< offset between batch entries
  bool vector = false;         ///< a 1-D operand (the added dim is dropped from the result)
};

Expected<Operand> describeOperand(const KernelContext& ctx, const ir::Tensor& t, bool trans, bool transBatch,
                                  bool isA, const char* name) {
  Operand o;
  const auto& d = t.dims();
  if (t.rank() == 0) return ctx.error(std::string(name) + " must have rank >= 1");
  if (t.rank() == 1) {
    if (trans) return ctx.error(std::string(name) + " is 1-D, so it cannot be transposed (trans" + name + ")");
    o.vector = true;
    o.rows = isA ? 1 : d[0];
    o.cols = isA ? d[0] : 1;
    o.ld = o.cols;
    o.step = 0;
    return o;
  }
  const size_t r = d.size();
  o.trans = trans;
  if (transBatch && r > 2) {
    // Stored [d0, b..., d_{r-1}]: the matrix of batch entry i is d0 x d_{r-1}, row stride
    // prod(b) * d_{r-1}, starting at i * d_{r-1}.
    o.batch.assign(d.begin() + 1, d.end() - 1);
    int64_t nb = 1;
    for (int64_t v : o.batch) nb *= v;
    o.ld = nb * d[r - 1];
    o.step = d[r - 1];
    o.rows = trans ? d[r - 1] : d[0];
    o.cols = trans ? d[0] : d[r - 1];
  } else {
    o.batch.assign(d.begin(), d.end() - 2);
    o.ld = d[r - 1];
    o.step = d[r - 2] * d[r - 1];
    o.rows = trans ? d[r - 1] : d[r - 2];
    o.cols = trans ? d[r - 2] : d[r - 1];
  }
  return o;
}

class FusedMatMulKernel final : public Kernel {
 public:
  FusedMatMulKernel(float alpha, bool transA, bool transB, bool transBatchA, bool transBatchB)
      : alpha_(alpha), transA_(transA), transB_(transB), transBatchA_(transBatchA), transBatchB_(transBatchB) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& a = ctx.input(0);
    const ir::Tensor& b = ctx.input(1);
    WH_RETURN_IF_ERROR(requireFloat(ctx, a, "A"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, b, "B"));
    WH_ASSIGN_OR_RETURN(Operand oa, describeOperand(ctx, a, transA_, transBatchA_, true, "A"));
    WH_ASSIGN_OR_RETURN(Operand ob, describeOperand(ctx, b, transB_, transBatchB_, false, "B"));
    if (oa.cols != ob.rows) {
      return ctx.error("A " + shapeToString(a.dims()) + " and B " + shapeToString(b.dims()) +
                       " do not multiply: inner dims " + std::to_string(oa.cols) + " and " + std::to_string(ob.rows));
    }
    auto batch = broadcastShapes(oa.batch, ob.batch);
    if (!batch) {
      return ctx.error("batch dims " + shapeToString(oa.batch) + " of A and " + shapeToString(ob.batch) +
                       " of B do not broadcast");
    }
    std::vector<int64_t> ydims = *batch;
    if (!oa.vector) ydims.push_back(oa.rows);
    if (!ob.vector) ydims.push_back(ob.cols);
    ir::Tensor& y = ctx.allocateOutput(0, DataType::kFloat, ydims);
    const int64_t m = oa.rows, n = ob.cols, k = oa.cols;
    int64_t count = 1;
    for (int64_t v : *batch) count *= v;
    const std::vector<int64_t> sa = broadcastStrides(oa.batch, *batch);
    const std::vector<int64_t> sb = broadcastStrides(ob.batch, *batch);
    // broadcastStrides counts in batch entries; scale by each operand's step.
    const float* ap = a.data<float>();
    const float* bp = b.data<float>();
    float* yp = y.mutableData<float>();
    std::vector<int64_t> idx(batch->size(), 0);
    for (int64_t i = 0; i < count; ++i) {
      int64_t ia = 0, ib = 0;
      for (size_t d = 0; d < idx.size(); ++d) {
        ia += idx[d] * sa[d];
        ib += idx[d] * sb[d];
      }
      WH_RETURN_IF_ERROR(transformer::sgemm(ctx, oa.trans, ob.trans, m, n, k, alpha_, ap + ia * oa.step, oa.ld,
                                            bp + ib * ob.step, ob.ld, 0.f, yp + i * m * n, n));
      for (size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < (*batch)[d]) break;
        idx[d] = 0;
      }
    }
    return Status::ok();
  }

 private:
  float alpha_;
  bool transA_, transB_, transBatchA_, transBatchB_;
};

Expected<std::unique_ptr<Kernel>> createFusedMatMul(const KernelCreateInfo& info) {
  auto flag = [&](const char* name) -> Expected<bool> {
    int64_t v = info.node.attrInt(name, 0);
    if (v != 0 && v != 1) return info.error(std::string(name) + " must be 0 or 1, got " + std::to_string(v));
    return v == 1;
  };
  WH_ASSIGN_OR_RETURN(bool ta, flag("transA"));
  WH_ASSIGN_OR_RETURN(bool tb, flag("transB"));
  WH_ASSIGN_OR_RETURN(bool tba, flag("transBatchA"));
  WH_ASSIGN_OR_RETURN(bool tbb, flag("transBatchB"));
  return std::unique_ptr<Kernel>(
      std::make_unique<FusedMatMulKernel>(info.node.attrFloat("alpha", 1.0f), ta, tb, tba, tbb));
}

// ---------------------------------------------------------------- RotaryEmbedding

class RotaryEmbeddingKernel final : public Kernel {
 public:
  RotaryEmbeddingKernel(bool interleaved, int64_t numHeads, int64_t rotaryDim)
      : interleaved_(interleaved), numHeads_(numHeads), rotaryDim_(rotaryDim) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& cosT = ctx.input(2);
    const ir::Tensor& sinT = ctx.input(3);
    WH_RETURN_IF_ERROR(requireFloat(ctx, x, "input"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, cosT, "cos_cache"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, sinT, "sin_cache"));
    if (cosT.rank() != 2 || cosT.dims() != sinT.dims()) {
      return ctx.error("cos_cache " + shapeToString(cosT.dims()) + " and sin_cache " + shapeToString(sinT.dims()) +
                       " must both be [max_position, rotary_dim / 2]");
    }
    const int64_t maxPos = cosT.dims()[0], half = cosT.dims()[1];
    int64_t batch, seq, heads, head;
    bool bnsh = false;
    if (x.rank() == 4) {  // [B, N, S, H]
      bnsh = true;
      batch = x.dims()[0], heads = x.dims()[1], seq = x.dims()[2], head = x.dims()[3];
    } else if (x.rank() == 3) {  // [B, S, N*H]
      batch = x.dims()[0], seq = x.dims()[1];
      const int64_t hidden = x.dims()[2];
      if (numHeads_ > 0) {
        if (hidden % numHeads_ != 0) {
          return ctx.error("hidden size " + std::to_string(hidden) + " is not a multiple of num_heads " +
                           std::to_string(numHeads_));
        }
        heads = numHeads_;
        head = hidden / numHeads_;
      } else {
        if (rotaryDim_ > 0) return ctx.error("num_heads is required with rotary_embedding_dim on a 3-D input");
        head = 2 * half;
        if (head == 0 || hidden % head != 0) {
          return ctx.error("hidden size " + std::to_string(hidden) + " is not a multiple of the head size " +
                           std::to_string(head) + " (2 x cos_cache's last dim); set num_heads");
        }
        heads = hidden / head;
      }
    } else {
      return ctx.error("input must be [batch, seq, hidden] or [batch, heads, seq, head], got " +
                       shapeToString(x.dims()));
    }
    const int64_t rot = rotaryDim_ > 0 ? rotaryDim_ : 2 * half;
    if (rot != 2 * half || rot > head) {
      return ctx.error("rotary dim " + std::to_string(rot) + " must be 2 x cos_cache's last dim (" +
                       std::to_string(2 * half) + ") and at most the head size " + std::to_string(head));
    }
    const ir::Tensor& pos = ctx.input(1);
    WH_ASSIGN_OR_RETURN(std::vector<int64_t> ids, readInts(pos, "position_ids"));
    const bool perToken = pos.rank() == 2 && pos.dims()[0] == batch && pos.dims()[1] == seq;
    if (!perToken && !(pos.numel() == 1 && pos.rank() <= 1)) {
      return ctx.error("position_ids " + shapeToString(pos.dims()) + " must be [batch, seq] = [" +
                       std::to_string(batch) + "," + std::to_string(seq) + "] or [1]");
    }
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t s = 0; s < seq; ++s) {
        int64_t p = perToken ? ids[static_cast<size_t>(b * seq + s)] : ids[0] + s;
        if (p < 0 || p >= maxPos) {
          return ctx.error("position " + std::to_string(p) + " is outside cos_cache's " + std::to_string(maxPos) +
                           " rows");
        }
      }
    }
    const float* xp = x.data<float>();
    const float* cp = cosT.data<float>();
    const float* sp = sinT.data<float>();
    float* yp = ctx.allocateOutput(0, DataType::kFloat, x.dims()).mutableData<float>();
    const bool interleaved = interleaved_;
    const int64_t vectors = batch * seq * heads;
#pragma omp parallel for if (x.numel() > kParallelElements)
    for (int64_t v = 0; v < vectors; ++v) {
      int64_t b, s, nh;
      if (bnsh) {
        b = v / (heads * seq), nh = (v / seq) % heads, s = v % seq;
      } else {
        b = v / (seq * heads), s = (v / heads) % seq, nh = v % heads;
      }
      const int64_t off = bnsh ? ((b * heads + nh) * seq + s) * head : ((b * seq + s) * heads + nh) * head;
      const int64_t p = perToken ? ids[static_cast<size_t>(b * seq + s)] : ids[0] + s;
      transformer::rotateHead(xp + off, yp + off, cp + p * half, sp + p * half, half, head, interleaved);
    }
    return Status::ok();
  }

 private:
  bool interleaved_;
  int64_t numHeads_, rotaryDim_;
};

Expected<std::unique_ptr<Kernel>> createRotaryEmbedding(const KernelCreateInfo& info) {
  if (info.node.attrInt("is_packed_batching", 0) != 0) {
    return info.unsupported("is_packed_batching=1 is not supported");
  }
  WH_ASSIGN_OR_RETURN(transformer::RotaryAttributes a, transformer::rotaryAttributes(info));
  if (info.node.attrFloat("scale", 1.0f) != 1.0f) {
    return info.unsupported("scale other than 1 is not supported (ONNX Runtime's CPU kernel ignores it)");
  }
  return std::unique_ptr<Kernel>(std::make_unique<RotaryEmbeddingKernel>(a.interleaved, a.heads, a.rotaryDim));
}

// ---------------------------------------------------------------- EmbedLayerNormalization

/// EmbedLayerNormalization(input_ids, segment_ids?, word_embedding, position_embedding,
/// segment_embedding?, gamma, beta, mask?, position_ids?) -> output, mask_index, embedding_sum?:
/// e = word[ids] + position[pos] + segment[seg] (pos = position_ids [B,S] or [1,S], else 0..S-1),
/// output = LayerNorm(e) gamma + beta; mask_index[b] counts the non-zero mask entries of row b
/// (0 without a mask).
class EmbedLayerNormKernel final : public Kernel {
 public:
  explicit EmbedLayerNormKernel(float epsilon) : epsilon_(epsilon) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& ids = ctx.input(0);
    if (ids.rank() != 2) return ctx.error("input_ids must be [batch, seq], got " + shapeToString(ids.dims()));
    const int64_t B = ids.dims()[0], S = ids.dims()[1];
    auto table = [&](size_t i, const char* what) -> Expected<const ir::Tensor*> {
      const ir::Tensor& t = ctx.input(i);
      WH_RETURN_IF_ERROR(requireFloat(ctx, t, what));
      if (t.rank() != 2) return ctx.error(std::string(what) + " must be [rows, hidden], got " + shapeToString(t.dims()));
      return &t;
    };
    WH_ASSIGN_OR_RETURN(const ir::Tensor* word, table(2, "word_embedding"));
    WH_ASSIGN_OR_RETURN(const ir::Tensor* pos, table(3, "position_embedding"));
    const int64_t H = word->dims()[1];
    const ir::Tensor* seg = nullptr;
    if (ctx.hasInput(1) != ctx.hasInput(4)) return ctx.error("segment_ids and segment_embedding must be given together");
    if (ctx.hasInput(4)) {
      WH_ASSIGN_OR_RETURN(seg, table(4, "segment_embedding"));
    }
    if (pos->dims()[1] != H || (seg != nullptr && seg->dims()[1] != H)) {
      return ctx.error("the embedding tables must share the hidden size " + std::to_string(H));
    }
    WH_RETURN_IF_ERROR(checkHiddenVector(ctx, 5, H, "gamma"));
    WH_RETURN_IF_ERROR(checkHiddenVector(ctx, 6, H, "beta"));
    auto indices = [&](size_t i, const char* what, bool broadcastBatch) -> Expected<std::vector<int64_t>> {
      const ir::Tensor& t = ctx.input(i);
      bool ok = t.rank() == 2 && t.dims()[1] == S && (t.dims()[0] == B || (broadcastBatch && t.dims()[0] == 1));
      if (!ok) return ctx.error(std::string(what) + " " + shapeToString(t.dims()) + " must be [" + std::to_string(B) + "," + std::to_string(S) + "]");
      return readInts(t, what);
    };
    WH_ASSIGN_OR_RETURN(std::vector<int64_t> wordIds, indices(0, "input_ids", false));
    std::vector<int64_t> segIds, posIds, mask;
    if (seg != nullptr) {
      WH_ASSIGN_OR_RETURN(segIds, indices(1, "segment_ids", false));
    }
    if (ctx.hasInput(7)) {
      WH_ASSIGN_OR_RETURN(mask, indices(7, "mask", false));
    }
    bool posPerBatch = false;
    if (ctx.hasInput(8)) {
      WH_ASSIGN_OR_RETURN(posIds, indices(8, "position_ids", true));
      posPerBatch = ctx.input(8).dims()[0] == B && B != 1;
    }
    auto check = [&](const std::vector<int64_t>& v, int64_t rows, const char* what) -> Status {
      for (int64_t x : v) {
        if (x < 0 || x >= rows) {
          return ctx.error(std::string(what) + " holds " + std::to_string(x) + ", outside the table's " + std::to_string(rows) + " rows");
        }
      }
      return Status::ok();
    };
    WH_RETURN_IF_ERROR(check(wordIds, word->dims()[0], "input_ids"));
    WH_RETURN_IF_ERROR(check(segIds, seg != nullptr ? seg->dims()[0] : 0, "segment_ids"));
    WH_RETURN_IF_ERROR(check(posIds, pos->dims()[0], "position_ids"));
    if (posIds.empty() && S > pos->dims()[0]) {
      return ctx.error("sequence length " + std::to_string(S) + " exceeds position_embedding's " + std::to_string(pos->dims()[0]) + " rows");
    }
    float* y = ctx.allocateOutput(0, DataType::kFloat, {B, S, H}).mutableData<float>();
    if (ctx.hasOutput(1)) {
      int32_t* mi = ctx.allocateOutput(1, DataType::kInt32, {B}).mutableData<int32_t>();
      for (int64_t b = 0; b < B; ++b) {
        int32_t n = 0;
        for (int64_t s = 0; s < S && !mask.empty(); ++s) n += mask[static_cast<size_t>(b * S + s)] != 0;
        mi[b] = n;
      }
    }
    float* sumOut = ctx.hasOutput(2) ? ctx.allocateOutput(2, DataType::kFloat, {B, S, H}).mutableData<float>() : nullptr;
    const float* gamma = ctx.input(5).data<float>();
    const float* beta = ctx.input(6).data<float>();
    std::vector<float> e(static_cast<size_t>(H));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t s = 0; s < S; ++s) {
        const size_t t = static_cast<size_t>(b * S + s);
        const int64_t p = posIds.empty() ? s : posIds[static_cast<size_t>(posPerBatch ? b * S + s : s)];
        const float* w = word->data<float>() + wordIds[t] * H;
        const float* pe = pos->data<float>() + p * H;
        const float* se = seg != nullptr ? seg->data<float>() + segIds[t] * H : nullptr;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < H; ++i) {
          float v = w[i] + pe[i];
          if (se != nullptr) v += se[i];
          e[static_cast<size_t>(i)] = v;
          sum += v;
          sq += static_cast<double>(v) * v;
        }
        const double mean = sum / static_cast<double>(H);
        const double invStd = 1.0 / std::sqrt(std::max(0.0, sq / static_cast<double>(H) - mean * mean) + epsilon_);
        float* yr = y + static_cast<int64_t>(t) * H;
        for (int64_t i = 0; i < H; ++i) yr[i] = static_cast<float>((e[static_cast<size_t>(i)] - mean) * invStd * gamma[i] + beta[i]);
        if (sumOut != nullptr) std::copy(e.begin(), e.end(), sumOut + static_cast<int64_t>(t) * H);
      }
    }
    return Status::ok();
  }

 private:
  float epsilon_;
};

Expected<std::unique_ptr<Kernel>> createEmbedLayerNorm(const KernelCreateInfo& info) {
  float eps = info.node.attrFloat("epsilon", 1e-12f);
  if (!(eps >= 0.f)) return info.error("epsilon must be >= 0, got " + std::to_string(eps));
  int64_t type = info.node.attrInt("mask_index_type", 1);
  if (type != 0 && type != 1) return info.error("mask_index_type must be 0 or 1, got " + std::to_string(type));
  return std::unique_ptr<Kernel>(std::make_unique<EmbedLayerNormKernel>(eps));
}

}  // namespace

void registerTransformerKernels(KernelRegistry& r) {
  const std::string ms = "com.microsoft";
  r.add(ms, "Gelu", 1, geluFactory(GeluForm::kErf, /*hasBiasSlot=*/false, /*biasRequired=*/false));
  r.add(ms, "BiasGelu", 1, geluFactory(GeluForm::kErf, true, true));
  r.add(ms, "FastGelu", 1, geluFactory(GeluForm::kTanh, true, false));
  r.add(ms, "QuickGelu", 1, geluFactory(GeluForm::kQuick, false, false));
  r.add(ms, "SkipLayerNormalization", 1, [](const KernelCreateInfo& i) { return createSkipLayerNorm(i, false); });
  r.add(ms, "SkipSimplifiedLayerNormalization", 1,
        [](const KernelCreateInfo& i) { return createSkipLayerNorm(i, true); });
  r.add("", "SimplifiedLayerNormalization", 1, createSimplifiedLayerNorm);
  r.add(ms, "SimplifiedLayerNormalization", 1, createSimplifiedLayerNorm);
  r.add(ms, "FusedMatMul", 1, createFusedMatMul);
  r.add(ms, "RotaryEmbedding", 1, createRotaryEmbedding);
  r.add(ms, "EmbedLayerNormalization", 1, createEmbedLayerNorm);
  transformer::registerAttentionKernels(r);
  registerFusedAttentionKernels(r);
  registerSwishMulKernels(r);
  registerRmsNormKernels(r);
}

}  // namespace whittle::runtime::cpu
