// The opset-23 normalization and position ops that torch 2.15's exporter writes for nn.RMSNorm
// and rotary code, in float32:
//
//   RMSNormalization(X, scale){axis=-1, epsilon=1e-5, stash_type=1} -> Y
//     Y = X / sqrt(mean(X^2 over [axis, rank)) + epsilon) * scale; scale broadcasts (numpy rules)
//     to the normalized dims X[axis:]. stash_type 1 (float32) is the only one the spec's
//     reference runs.
//   RotaryEmbedding(X, cos_cache, sin_cache, position_ids?){interleaved, num_heads,
//       rotary_embedding_dim} -> Y
//     X [B, N, S, H] or [B, S, N*H] (num_heads required); the first r = rotary_embedding_dim (or
//     H) values of each head rotate in pairs (x[i], x[i + r/2]) (interleaved: (x[2i], x[2i+1]))
//     by cos/sin; the rest are copied. With position_ids [B, S] the caches are [max_pos, r/2] and
//     row position_ids[b, s] is used; without, the caches are [B, S, r/2], one row per token.
//
// The com.microsoft RotaryEmbedding (input order X, position_ids, cos, sin) and
// SimplifiedLayerNormalization live in transformer.cpp.
#pragma GCC optimize("no-math-errno")

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/transformer_internal.h"

namespace whittle::runtime::cpu {

using ir::DataType;
using transformer::requireFloat;

namespace transformer {

void rotateHead(const float* x, float* y, const float* c, const float* s, int64_t half, int64_t head,
                bool interleaved) {
  if (interleaved) {
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = x[2 * i], x2 = x[2 * i + 1];
      y[2 * i] = x1 * c[i] - x2 * s[i];
      y[2 * i + 1] = x1 * s[i] + x2 * c[i];
    }
  } else {
    for (int64_t i = 0; i < half; ++i) y[i] = x[i] * c[i] - x[i + half] * s[i];
    for (int64_t i = 0; i < half; ++i) y[i + half] = x[i] * s[i] + x[i + half] * c[i];
  }
  std::copy(x + 2 * half, x + head, y + 2 * half);
}

Expected<RotaryAttributes> rotaryAttributes(const KernelCreateInfo& info) {
  const int64_t interleaved = info.node.attrInt("interleaved", 0);
  if (interleaved != 0 && interleaved != 1) {
    return info.error("interleaved must be 0 or 1, got " + std::to_string(interleaved));
  }
  RotaryAttributes a;
  a.interleaved = interleaved == 1;
  a.heads = info.node.attrInt("num_heads", 0);
  a.rotaryDim = info.node.attrInt("rotary_embedding_dim", 0);
  if (a.heads < 0 || a.rotaryDim < 0) return info.error("num_heads and rotary_embedding_dim must be >= 0");
  return a;
}

}  // namespace transformer

namespace {

constexpr int64_t kParallelElements = 1 << 15;

// ---------------------------------------------------------------- RMSNormalization

/// The sum of squares of n floats, in eight float lanes (which the compiler vectorises) summed
/// in double at the end.
double sumOfSquares(const float* x, int64_t n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) lanes[j] += x[i + j] * x[i + j];
  }
  double sum = 0;
  for (int j = 0; j < 8; ++j) sum += lanes[j];
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

class RmsNormKernel final : public Kernel {
 public:
  RmsNormKernel(int64_t axis, float epsilon) : axis_(axis), epsilon_(epsilon) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& scale = ctx.input(1);
    WH_RETURN_IF_ERROR(requireFloat(ctx, x, "X"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, scale, "scale"));
    auto axis = normalizeAxis(axis_, x.rank());
    if (!axis || x.rank() == 0) {
      return ctx.error("axis " + std::to_string(axis_) + " is out of range for X of rank " + std::to_string(x.rank()));
    }
    const std::vector<int64_t> normDims(x.dims().begin() + *axis, x.dims().end());
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < x.rank(); ++d) (d < *axis ? outer : inner) *= x.dims()[static_cast<size_t>(d)];
    // scale broadcast to the normalized dims, once.
    bool fits = scale.rank() <= static_cast<int64_t>(normDims.size());
    for (int64_t i = 1; fits && i <= scale.rank(); ++i) {
      const int64_t s = scale.dims()[static_cast<size_t>(scale.rank() - i)];
      fits = s == 1 || s == normDims[normDims.size() - static_cast<size_t>(i)];
    }
    if (!fits) {
      return ctx.error("scale " + shapeToString(scale.dims()) + " does not broadcast to the normalized dims " +
                       shapeToString(normDims));
    }
    const float* sp = scale.data<float>();
    if (scale.numel() != inner) {
      const std::vector<int64_t> strides = broadcastStrides(scale.dims(), normDims);
      expanded_.resize(static_cast<size_t>(inner));
      for (int64_t i = 0; i < inner; ++i) {
        int64_t rest = i, off = 0;
        for (size_t d = normDims.size(); d-- > 0;) {
          off += (rest % normDims[d]) * strides[d];
          rest /= normDims[d];
        }
        expanded_[static_cast<size_t>(i)] = sp[off];
      }
      sp = expanded_.data();
    }
    float* y = ctx.allocateOutput(0, DataType::kFloat, x.dims()).mutableData<float>();
    const float* xp = x.data<float>();
    const double eps = epsilon_;
#pragma omp parallel for if (outer * inner > kParallelElements)
    for (int64_t r = 0; r < outer; ++r) {
      const float* xr = xp + r * inner;
      const float inv = static_cast<float>(1.0 / std::sqrt(sumOfSquares(xr, inner) / static_cast<double>(inner) + eps));
      float* yr = y + r * inner;
      for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] * inv * sp[i];
    }
    return Status::ok();
  }

 private:
  int64_t axis_;
  float epsilon_;
  std::vector<float> expanded_;
};

Expected<std::unique_ptr<Kernel>> createRmsNorm(const KernelCreateInfo& info) {
  const int64_t stash = info.node.attrInt("stash_type", 1);
  if (stash != static_cast<int64_t>(DataType::kFloat)) {
    return info.unsupported("stash_type " + std::to_string(stash) + " is not supported (only 1, float32)");
  }
  const float eps = info.node.attrFloat("epsilon", 1e-5f);
  if (!(eps >= 0.f)) return info.error("epsilon must be >= 0, got " + std::to_string(eps));
  return std::unique_ptr<Kernel>(std::make_unique<RmsNormKernel>(info.node.attrInt("axis", -1), eps));
}

// ---------------------------------------------------------------- RotaryEmbedding

class RotaryKernel final : public Kernel {
 public:
  RotaryKernel(bool interleaved, int64_t numHeads, int64_t rotaryDim)
      : interleaved_(interleaved), numHeads_(numHeads), rotaryDim_(rotaryDim) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& cosT = ctx.input(1);
    const ir::Tensor& sinT = ctx.input(2);
    WH_RETURN_IF_ERROR(requireFloat(ctx, x, "X"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, cosT, "cos_cache"));
    WH_RETURN_IF_ERROR(requireFloat(ctx, sinT, "sin_cache"));
    int64_t batch = 0, seq = 0, heads = 0, head = 0;
    const bool bnsh = x.rank() == 4;
    if (bnsh) {
      batch = x.dims()[0], heads = x.dims()[1], seq = x.dims()[2], head = x.dims()[3];
    } else if (x.rank() == 3) {
      batch = x.dims()[0], seq = x.dims()[1];
      if (numHeads_ <= 0 || x.dims()[2] % numHeads_ != 0) {
        return ctx.error("X " + shapeToString(x.dims()) + " is 3-D, so num_heads (" + std::to_string(numHeads_) +
                         ") must be positive and divide its last dim");
      }
      heads = numHeads_;
      head = x.dims()[2] / numHeads_;
    } else {
      return ctx.error("X must be [batch, heads, seq, head] or [batch, seq, hidden], got " + shapeToString(x.dims()));
    }
    const int64_t rot = rotaryDim_ > 0 ? rotaryDim_ : head;
    if (rot > head || rot % 2 != 0) {
      return ctx.error("rotary_embedding_dim " + std::to_string(rot) + " must be even and at most the head size " +
                       std::to_string(head));
    }
    const int64_t half = rot / 2;
    const bool withIds = ctx.hasInput(3);
    std::vector<int64_t> ids;
    if (withIds) {
      const ir::Tensor& pos = ctx.input(3);
      WH_ASSIGN_OR_RETURN(ids, readInts(pos, "position_ids"));
      if (pos.rank() != 2 || pos.dims()[0] != batch || pos.dims()[1] != seq) {
        return ctx.error("position_ids " + shapeToString(pos.dims()) + " must be [" + std::to_string(batch) + ", " +
                         std::to_string(seq) + "]");
      }
      if (cosT.rank() != 2 || cosT.dims() != sinT.dims() || cosT.dims()[1] != half) {
        return ctx.error("cos_cache " + shapeToString(cosT.dims()) + " and sin_cache " + shapeToString(sinT.dims()) +
                         " must both be [max_position, " + std::to_string(half) + "] with position_ids");
      }
      for (int64_t p : ids) {
        if (p < 0 || p >= cosT.dims()[0]) {
          return ctx.error("position " + std::to_string(p) + " is outside cos_cache's " +
                           std::to_string(cosT.dims()[0]) + " rows");
        }
      }
    } else if (cosT.rank() != 3 || cosT.dims() != sinT.dims() || cosT.dims()[0] != batch || cosT.dims()[1] != seq ||
               cosT.dims()[2] != half) {
      return ctx.error("cos_cache " + shapeToString(cosT.dims()) + " and sin_cache " + shapeToString(sinT.dims()) +
                       " must both be [" + std::to_string(batch) + ", " + std::to_string(seq) + ", " +
                       std::to_string(half) + "] without position_ids");
    }
    const float* xp = x.data<float>();
    const float* cp = cosT.data<float>();
    const float* sp = sinT.data<float>();
    float* yp = ctx.allocateOutput(0, DataType::kFloat, x.dims()).mutableData<float>();
    const bool interleaved = interleaved_;
    const int64_t vectors = batch * seq * heads;
#pragma omp parallel for if (x.numel() > kParallelElements)
    for (int64_t v = 0; v < vectors; ++v) {
      int64_t b, s, off;
      if (bnsh) {  // v runs over [B, N, S]
        b = v / (heads * seq), s = v % seq;
        off = v * head;
      } else {  // v runs over [B, S, N]
        b = v / (seq * heads), s = (v / heads) % seq;
        off = v * head;
      }
      const int64_t row = withIds ? ids[static_cast<size_t>(b * seq + s)] : b * seq + s;
      const float* c = cp + row * half;
      const float* sn = sp + row * half;
      transformer::rotateHead(xp + off, yp + off, c, sn, half, head, interleaved);
    }
    return Status::ok();
  }

 private:
  bool interleaved_;
  int64_t numHeads_, rotaryDim_;
};

Expected<std::unique_ptr<Kernel>> createRotary(const KernelCreateInfo& info) {
  WH_ASSIGN_OR_RETURN(transformer::RotaryAttributes a, transformer::rotaryAttributes(info));
  return std::unique_ptr<Kernel>(std::make_unique<RotaryKernel>(a.interleaved, a.heads, a.rotaryDim));
}

}  // namespace

void registerRmsRotaryKernels(KernelRegistry& r) {
  r.add("", "RMSNormalization", 23, createRmsNorm);
  r.add("", "RotaryEmbedding", 23, createRotary);
}

}  // namespace whittle::runtime::cpu
