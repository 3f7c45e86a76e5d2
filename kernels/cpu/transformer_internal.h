#pragma once
// Internal to the com.microsoft transformer family (kernels/cpu/transformer*.cpp): the float32
// checks and the row-major GEMM that the elementwise/normalization file and the attention file
// share.

#include <cstdint>
#include <string>

#include "whittle/common/status.h"
#include "whittle/ir/tensor.h"
#include "whittle/runtime/kernel.h"

namespace whittle::runtime::cpu::transformer {

/// OK when `t` is float32; else an error naming the node and the input `what`.
Status requireFloat(const KernelContext& ctx, const ir::Tensor& t, const std::string& what);

/// C[m x n] = alpha * op(A) * op(B) + beta * C, row-major (dnnl_sgemm); `who` names the node in
/// the error when oneDNN fails.
Status sgemm(const KernelContext& ctx, bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

/// Softmax of one row of n floats in place with libm's exp in float (max, exp, sum, times the
/// reciprocal): the scalar softmax of the attention kernels (kernels/cpu/fused_attention.cpp).
void softmaxRowScalar(float* row, int64_t n);

/// Rotates one head of `head` values x into y (may not alias): the first 2 * half values in
/// pairs (x[i], x[i + half]) (interleaved: (x[2i], x[2i + 1])) by angle cos c[i], sin s[i]; the
/// rest copied. Shared by both RotaryEmbedding kernels (kernels/cpu/rms_rotary.cpp).
void rotateHead(const float* x, float* y, const float* c, const float* s, int64_t half, int64_t head,
                bool interleaved);

/// The attributes both RotaryEmbedding ops share, checked: interleaved 0 or 1, num_heads and
/// rotary_embedding_dim >= 0 (kernels/cpu/rms_rotary.cpp).
struct RotaryAttributes {
  bool interleaved = false;
  int64_t heads = 0, rotaryDim = 0;
};
Expected<RotaryAttributes> rotaryAttributes(const KernelCreateInfo& info);

/// Attention and MultiHeadAttention (kernels/cpu/transformer_attention.cpp).
void registerAttentionKernels(KernelRegistry& registry);

}  // namespace whittle::runtime::cpu::transformer

namespace whittle::runtime::cpu {

/// com.whittle.internal FusedAttention (kernels/cpu/fused_attention.cpp).
void registerFusedAttentionKernels(KernelRegistry& registry);

/// com.whittle.internal RmsNorm (kernels/cpu/rms_norm.cpp).
void registerRmsNormKernels(KernelRegistry& registry);

/// RMSNorm of `rows` rows of n floats in double, rounded once (w read at i * wStride): the scalar
/// reference of RmsNorm.
void rmsNormReference(const float* x, const float* w, int64_t wStride, float epsilon, int64_t rows, int64_t n, float* y);

/// com.whittle.internal SwishMul (kernels/cpu/swish_mul.cpp).
void registerSwishMulKernels(KernelRegistry& registry);

/// (x * sigmoid(x)) * u over n floats (u null: x * sigmoid(x)) in double, rounded once: the
/// scalar reference of SwishMul.
void swishMulReference(const float* x, const float* u, float* y, int64_t n);

}  // namespace whittle::runtime::cpu
