// MatMul, Gemm and com.microsoft MatMulNBits through cuBLASLt. Row-major products are run
// as their column-major transposes (C^T = B^T A^T), so no data moves. float32 computes in
// float32 (CUBLAS_COMPUTE_32F: TF32 off); float16 multiplies in float16 and accumulates in
// float32. A [N]-vector bias goes into the epilogue; any other C is copied into the output
// first and scaled by beta. MatMulNBits dequantizes its 4-bit weights on the device for each
// run (data.cu) and multiplies them as float16/float32.
#include <memory>

#include "cuda/cuda_common.h"

namespace whittle::runtime::cuda {
namespace {

using ir::DataType;

/// One (possibly batched) row-major product: C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C.
struct GemmDesc {
  int64_t m = 0, n = 0, k = 0;
  bool transA = false, transB = false;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1, strideA = 0, strideB = 0, strideC = 0;
  float alpha = 1.0f, beta = 0.0f;
  const void* bias = nullptr;  ///< N elements of C's type, or null
};

template <typename T, cublasStatus_t (*Destroy)(T)>
struct LtHandle {
  T h = nullptr;
  ~LtHandle() {
    if (h != nullptr) (void)Destroy(h);
  }
};

Status layout(std::string_view where, LtHandle<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>& l, cudaDataType type,
              int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  WH_CUBLAS(where, cublasLtMatrixLayoutCreate(&l.h, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const auto count = static_cast<int32_t>(batch);
    WH_CUBLAS(where, cublasLtMatrixLayoutSetAttribute(l.h, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    WH_CUBLAS(where, cublasLtMatrixLayoutSetAttribute(l.h, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return Status::ok();
}

constexpr size_t kWorkspaceBytes = 32u << 20;

Status runGemm(CudaContext& c, std::string_view where, DataType dtype, const GemmDesc& g, const void* a, const void* b, void* out) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return Status::ok();
  const cudaDataType type = dtype == DataType::kFloat16 ? CUDA_R_16F : CUDA_R_32F;
  LtHandle<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy> op;
  WH_CUBLAS(where, cublasLtMatmulDescCreate(&op.h, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major: Lt's A is our B, Lt's B is our A, Lt's D is C^T [N, M].
  const cublasOperation_t opA = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opB = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  WH_CUBLAS(where, cublasLtMatmulDescSetAttribute(op.h, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)));
  WH_CUBLAS(where, cublasLtMatmulDescSetAttribute(op.h, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)));
  if (g.bias != nullptr) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    WH_CUBLAS(where, cublasLtMatmulDescSetAttribute(op.h, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    WH_CUBLAS(where, cublasLtMatmulDescSetAttribute(op.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  }
  LtHandle<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy> la, lb, lc;
  WH_RETURN_IF_ERROR(layout(where, la, type, g.transB ? g.k : g.n, g.transB ? g.n : g.k, g.ldb, g.batch, g.strideB));
  WH_RETURN_IF_ERROR(layout(where, lb, type, g.transA ? g.m : g.k, g.transA ? g.k : g.m, g.lda, g.batch, g.strideA));
  WH_RETURN_IF_ERROR(layout(where, lc, type, g.n, g.m, g.ldc, g.batch, g.strideC));
  WH_ASSIGN_OR_RETURN(void* workspace, c.workspace(kWorkspaceBytes, where));
  LtHandle<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy> pref;
  WH_CUBLAS(where, cublasLtMatmulPreferenceCreate(&pref.h));
  const uint64_t maxWorkspace = kWorkspaceBytes;
  WH_CUBLAS(where, cublasLtMatmulPreferenceSetAttribute(pref.h, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &maxWorkspace,
                                                        sizeof(maxWorkspace)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  WH_CUBLAS(where, cublasLtMatmulAlgoGetHeuristic(c.cublasLt(), op.h, la.h, lb.h, lc.h, lc.h, pref.h, 1, &result, &found));
  if (found == 0) return unimplemented(std::string(where) + ": cuBLASLt has no algorithm for this product");
  WH_CUBLAS(where, cublasLtMatmul(c.cublasLt(), op.h, &g.alpha, b, la.h, a, lb.h, &g.beta, out, lc.h, out, lc.h, &result.algo,
                                  workspace, kWorkspaceBytes, c.stream()));
  return Status::ok();
}

Status checkPair(KernelContext& ctx, const ir::Tensor& a, const ir::Tensor& b) {
  WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "A", a.dtype(), {DataType::kFloat, DataType::kFloat16}));
  if (b.dtype() != a.dtype()) return ctx.error("A and B differ in type");
  return Status::ok();
}

Status runMatMul(KernelContext& ctx) {
  const ir::Tensor& a = ctx.input(0);
  const ir::Tensor& b = ctx.input(1);
  WH_RETURN_IF_ERROR(checkPair(ctx, a, b));
  if (a.rank() == 0 || b.rank() == 0) return ctx.error("MatMul inputs must have rank 1 or more");
  // 1-D operands become [1, K] and [K, 1] and lose that dim again in the output.
  std::vector<int64_t> ad = a.dims(), bd = b.dims();
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  if (bd[bd.size() - 2] != k) return ctx.error("inner dimensions differ");
  std::vector<int64_t> aBatch(ad.begin(), ad.end() - 2), bBatch(bd.begin(), bd.end() - 2);
  auto batch = broadcastDims({aBatch, bBatch});
  if (!batch) return ctx.error("batch dimensions do not broadcast");
  std::vector<int64_t> outDims = *batch;
  if (a.rank() > 1) outDims.push_back(m);
  if (b.rank() > 1) outDims.push_back(n);
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, a.dtype(), outDims));
  CudaContext& c = cudaContext(ctx);
  int64_t aCount = 1, bCount = 1, count = 1;
  for (int64_t d : aBatch) aCount *= d;
  for (int64_t d : bBatch) bCount *= d;
  for (int64_t d : *batch) count *= d;
  GemmDesc g;
  g.n = n;
  g.k = k;
  g.lda = k;
  g.ldb = n;
  g.ldc = n;
  if (bCount == 1) {
    // B shared by every batch: one product with the batches folded into M.
    g.m = m * aCount;
    if (aCount != count) {
      // A broadcast over B's batch of 1... cannot happen when bCount == 1 and aCount < count.
      return ctx.error("batch dimensions do not broadcast");
    }
    return runGemm(c, ctx.describe(), a.dtype(), g, dptr(a), dptr(b), dptr(*y));
  }
  g.m = m;
  g.strideC = m * n;
  if ((aCount == count || aCount == 1) && bCount == count) {
    g.batch = count;
    g.strideA = aCount == 1 ? 0 : m * k;
    g.strideB = k * n;
    return runGemm(c, ctx.describe(), a.dtype(), g, dptr(a), dptr(b), dptr(*y));
  }
  // Mixed broadcasting: one product per output batch.
  const size_t es = ir::elementSize(a.dtype());
  std::vector<int64_t> outStrides = contiguousStrides(*batch);
  auto offsetIn = [&](const std::vector<int64_t>& dims, int64_t linear) {
    std::vector<int64_t> own = contiguousStrides(dims);
    int64_t off = 0;
    const size_t lead = batch->size() - dims.size();
    for (size_t i = 0; i < batch->size(); ++i) {
      const int64_t idx = (linear / outStrides[i]) % (*batch)[i];
      if (i >= lead && dims[i - lead] != 1) off += idx * own[i - lead];
    }
    return off;
  };
  for (int64_t i = 0; i < count; ++i) {
    const auto* pa = static_cast<const char*>(dptr(a)) + offsetIn(aBatch, i) * m * k * es;
    const auto* pb = static_cast<const char*>(dptr(b)) + offsetIn(bBatch, i) * k * n * es;
    auto* py = static_cast<char*>(dptr(*y)) + i * m * n * es;
    WH_RETURN_IF_ERROR(runGemm(c, ctx.describe(), a.dtype(), g, pa, pb, py));
  }
  return Status::ok();
}

Status runGemmOp(KernelContext& ctx) {
  const ir::Tensor& a = ctx.input(0);
  const ir::Tensor& b = ctx.input(1);
  WH_RETURN_IF_ERROR(checkPair(ctx, a, b));
  if (a.rank() != 2 || b.rank() != 2) return ctx.error("Gemm inputs must be matrices");
  const ir::Node& node = ctx.node();
  GemmDesc g;
  g.transA = node.attrInt("transA", 0) != 0;
  g.transB = node.attrInt("transB", 0) != 0;
  g.alpha = node.attrFloat("alpha", 1.0f);
  const float beta = node.attrFloat("beta", 1.0f);
  g.m = g.transA ? a.dims()[1] : a.dims()[0];
  g.k = g.transA ? a.dims()[0] : a.dims()[1];
  g.n = g.transB ? b.dims()[0] : b.dims()[1];
  if ((g.transB ? b.dims()[1] : b.dims()[0]) != g.k) return ctx.error("inner dimensions differ");
  g.lda = a.dims()[1];
  g.ldb = b.dims()[1];
  g.ldc = g.n;
  WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, a.dtype(), {g.m, g.n}));
  CudaContext& c = cudaContext(ctx);
  if (ctx.hasInput(2) && beta != 0.0f) {
    const ir::Tensor& bias = ctx.input(2);
    if (bias.dtype() != a.dtype()) return ctx.error("C and A differ in type");
    const bool vector = bias.numel() == g.n && g.n > 1 && (bias.rank() == 1 || (bias.rank() == 2 && bias.dims()[0] == 1));
    if (vector && beta == 1.0f) {
      g.bias = dptr(bias);
    } else {
      auto walk = planExpand(bias.dims(), {g.m, g.n});
      if (!walk) return ctx.error("C does not broadcast to [M, N]");
      WH_CUDA(ctx.describe(), launchStridedCopy(ir::elementSize(a.dtype()), dptr(bias), dptr(*y), *walk, c.stream()));
      g.beta = beta;
    }
  }
  return runGemm(c, ctx.describe(), a.dtype(), g, dptr(a), dptr(b), dptr(*y));
}

Expected<std::unique_ptr<Kernel>> makeMatMulNBits(const KernelCreateInfo& info) {
  const ir::Node& node = info.node;
  const int64_t bits = node.attrInt("bits", 4);
  const int64_t k = node.attrInt("K", 0), n = node.attrInt("N", 0), blockSize = node.attrInt("block_size", 0);
  if (bits != 4) return info.unsupported("MatMulNBits with " + std::to_string(bits) + " bits is not supported by the cuda runtime (4 only)");
  if (k <= 0 || n <= 0 || blockSize < 16 || (blockSize & (blockSize - 1)) != 0) {
    return info.error("K, N and block_size (a power of two, at least 16) are required");
  }
  if (node.numInputs() > 4 && node.input(4) != nullptr) {
    return info.unsupported("MatMulNBits with g_idx is not supported by the cuda runtime");
  }
  if (node.numInputs() > 3 && node.input(3) != nullptr && info.inputTypes.size() > 3 &&
      info.inputTypes[3] != DataType::kUint8 && info.inputTypes[3] != DataType::kUndefined) {
    return info.unsupported("MatMulNBits zero points other than packed uint8 are not supported by the cuda runtime");
  }
  return makeFunctionKernel([k, n, blockSize](KernelContext& ctx) -> Status {
    const ir::Tensor& a = ctx.input(0);
    const ir::Tensor& packed = ctx.input(1);
    const ir::Tensor& scales = ctx.input(2);
    WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "A", a.dtype(), {DataType::kFloat, DataType::kFloat16}));
    if (scales.dtype() != a.dtype()) return ctx.error("scales and A differ in type");
    const int64_t blocks = (k + blockSize - 1) / blockSize;
    if (packed.byteSize() != static_cast<size_t>(n * blocks * blockSize / 2) || scales.numel() != n * blocks) {
      return ctx.error("B or scales do not match K, N and block_size");
    }
    const ir::Tensor* zp = ctx.hasInput(3) ? &ctx.input(3) : nullptr;
    if (zp != nullptr && zp->dtype() != DataType::kUint8) {
      return ctx.unsupported("zero points other than packed uint8 are not supported by the cuda runtime");
    }
    const ir::Tensor* bias = ctx.hasInput(5) ? &ctx.input(5) : nullptr;
    if (bias != nullptr && (bias->dtype() != a.dtype() || bias->numel() != n)) return ctx.error("bias must be [N] of A's type");
    if (a.rank() < 1 || a.dims().back() != k) return ctx.error("A's last dimension is not K");
    std::vector<int64_t> outDims = a.dims();
    outDims.back() = n;
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, a.dtype(), outDims));
    CudaContext& c = cudaContext(ctx);
    ElemType type{};
    elemType(a.dtype(), type);
    // W [N, K], stream-ordered scratch: freed after the product that reads it.
    void* w = nullptr;
    const size_t wBytes = static_cast<size_t>(n * k) * ir::elementSize(a.dtype());
    WH_CUDA(ctx.describe(), cudaMallocAsync(&w, wBytes, c.stream()));
    std::unique_ptr<void, std::function<void(void*)>> scratch(w, [s = c.stream()](void* p) { (void)cudaFreeAsync(p, s); });
    WH_CUDA(ctx.describe(), launchDequantize4Bit(static_cast<const uint8_t*>(dptr(packed)), dptr(scales),
                                                 zp ? static_cast<const uint8_t*>(dptr(*zp)) : nullptr, type, w, n, k, blockSize,
                                                 c.stream()));
    GemmDesc g;
    g.m = a.numel() / k;
    g.n = n;
    g.k = k;
    g.transB = true;
    g.lda = k;
    g.ldb = k;
    g.ldc = n;
    g.bias = bias ? dptr(*bias) : nullptr;
    return runGemm(c, ctx.describe(), a.dtype(), g, dptr(a), w, dptr(*y));
  });
}

template <Status (*Fn)(KernelContext&)>
Expected<std::unique_ptr<Kernel>> plain(const KernelCreateInfo&) {
  return makeFunctionKernel(Fn);
}

}  // namespace

void registerGemmKernels(KernelRegistry& r) {
  r.add("", "MatMul", 1, plain<runMatMul>);
  r.add("", "Gemm", 1, plain<runGemmOp>);
  r.add("com.microsoft", "MatMulNBits", 1, makeMatMulNBits);
}

}  // namespace whittle::runtime::cuda
