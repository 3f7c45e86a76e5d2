// Gemm and MatMul on oneDNN's matmul primitive.
//
//   MatMul: Y[b..., m, n] = sum_k A[b..., m, k] * B[b..., k, n], with numpy broadcasting of
//           the batch dims b...; a 1-D A is [1, K] and a 1-D B is [K, 1], and the dimension
//           they add is dropped from Y.
//   Gemm:   Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A (likewise B'), 2-D only;
//           C (optional) broadcasts unidirectionally to [M, N].
//
// Lowering. When B has no batch dims (or only ones), A's batch dims fold into M and the
// problem is a single 2-D matmul; a constant B is then packed once into the layout the
// primitive prefers (format_tag::any, reordered at kernel creation), with alpha folded in.
// A constant C that is a row vector or a scalar becomes the primitive's bias (times beta);
// any other C is written to Y first and accumulated with a sum post-op scaled by beta.
// Accumulation is float32 with fpmath mode strict (no silent bf16/tf32 down-conversion).
// float16 is widened to float32; bfloat16 runs natively (products of bfloat16 values are
// exact in float32, so this equals widening); float64 uses the scalar reference below.
// Primitives are created once per input shape and cached.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/families.h"
#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"
#include "cpu/normalization_internal.h"

namespace whittle::runtime::cpu {
namespace {

using dnnl::memory;
using ir::DataType;

int64_t product(const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims) p *= d;
  return p;
}

// ---------------------------------------------------------------------------------------
// Scalar reference: plain loops, accumulation in double. Used for float64 and by nothing
// else at run time; tests compare the oneDNN path against their own copy of these loops.

/// y[m, n] = alpha * sum_k A'[m, k] * B'[k, n] for one matrix pair (row-major, A' = A^T when
/// transA, likewise B').
template <typename T>
void gemmReference(const T* a, const T* b, T* y, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
                   double alpha) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        double av = transA ? a[p * m + i] : a[i * k + p];
        double bv = transB ? b[j * k + p] : b[p * n + j];
        acc += av * bv;
      }
      y[i * n + j] = static_cast<T>(alpha * acc);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Shapes.

/// The problem a MatMul or Gemm node poses for one pair of input shapes.
struct Geometry {
  int64_t m = 0, k = 0, n = 0;
  std::vector<int64_t> outDims;  ///< The ONNX output shape.
  /// oneDNN's view: src [..., M, K], weights [..., K, N], dst [..., M, N], all the same rank.
  /// Two-dimensional when B has no batch: A's batch dims are folded into M then.
  std::vector<int64_t> srcDims, weiDims, dstDims;
  /// MatMul with batch dims on both sides: batch index -> (A batch offset, B batch offset).
  std::vector<int64_t> batchDims, aBatchStrides, bBatchStrides;
};

/// `who` names the node in messages ("MatMul 'mm1'").
Expected<Geometry> matmulGeometry(const std::string& who, std::vector<int64_t> a, std::vector<int64_t> b) {
  auto error = [&](const std::string& m) { return invalidInput(who + ": " + m); };
  if (a.empty() || b.empty())
    return error("inputs must have rank 1 or more, got A " + shapeToString(a) + " and B " + shapeToString(b));
  const std::string shapes = "A " + shapeToString(a) + ", B " + shapeToString(b);
  bool aVector = a.size() == 1, bVector = b.size() == 1;
  if (aVector) a.insert(a.begin(), 1);
  if (bVector) b.push_back(1);
  Geometry g;
  g.m = a[a.size() - 2];
  g.k = a.back();
  g.n = b.back();
  if (b[b.size() - 2] != g.k) return error("inner dimensions do not match: " + shapes);
  std::vector<int64_t> batchA(a.begin(), a.end() - 2), batchB(b.begin(), b.end() - 2);
  auto batch = broadcastShapes(batchA, batchB);
  if (!batch) return error("batch dimensions do not broadcast: " + shapes);
  g.outDims = *batch;
  if (!aVector) g.outDims.push_back(g.m);
  if (!bVector) g.outDims.push_back(g.n);
  bool bHasBatch = std::any_of(batchB.begin(), batchB.end(), [](int64_t d) { return d != 1; });
  if (!bHasBatch) {
    int64_t rows = product(batchA) * g.m;
    g.srcDims = {rows, g.k};
    g.weiDims = {g.k, g.n};
    g.dstDims = {rows, g.n};
    return g;
  }
  size_t rank = batch->size() + 2;
  if (rank > DNNL_MAX_NDIMS)
    return unimplemented(who + ": rank " + std::to_string(rank) + " is more than oneDNN's " +
                         std::to_string(DNNL_MAX_NDIMS));
  batchA.insert(batchA.begin(), batch->size() - batchA.size(), 1);
  batchB.insert(batchB.begin(), batch->size() - batchB.size(), 1);
  g.srcDims = batchA;
  g.srcDims.insert(g.srcDims.end(), {g.m, g.k});
  g.weiDims = batchB;
  g.weiDims.insert(g.weiDims.end(), {g.k, g.n});
  g.dstDims = *batch;
  g.dstDims.insert(g.dstDims.end(), {g.m, g.n});
  g.batchDims = *batch;
  g.aBatchStrides = broadcastStrides(batchA, *batch);
  g.bBatchStrides = broadcastStrides(batchB, *batch);
  return g;
}

Expected<Geometry> gemmGeometry(const std::string& who, const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                bool transA, bool transB) {
  auto error = [&](const std::string& m) { return invalidInput(who + ": " + m); };
  const std::string shapes = "A " + shapeToString(a) + ", B " + shapeToString(b);
  if (a.size() != 2 || b.size() != 2) return error("A and B must be 2-D, got " + shapes);
  Geometry g;
  g.m = transA ? a[1] : a[0];
  g.k = transA ? a[0] : a[1];
  g.n = transB ? b[0] : b[1];
  if ((transB ? b[1] : b[0]) != g.k) return error("inner dimensions do not match: " + shapes);
  g.outDims = {g.m, g.n};
  g.srcDims = {g.m, g.k};
  g.weiDims = {g.k, g.n};
  g.dstDims = {g.m, g.n};
  return g;
}

/// How C broadcasts to [m, n]: nullopt when it does not (unidirectionally).
std::optional<std::vector<int64_t>> gemmCStrides(const std::vector<int64_t>& c, int64_t m, int64_t n) {
  if (c.size() > 2) return std::nullopt;
  std::vector<int64_t> out{m, n};
  for (size_t i = 0; i < c.size(); ++i) {
    int64_t want = out[2 - c.size() + i];
    if (c[i] != want && c[i] != 1) return std::nullopt;
  }
  return broadcastStrides(c, out);
}

/// Whether C is the same for every row: a scalar or a row vector of n.
bool isRowBias(const std::vector<int64_t>& c, int64_t n) {
  int64_t numel = product(c);
  if (numel == 1) return true;
  if (c.size() == 1) return c[0] == n;
  return c.size() == 2 && c[0] == 1 && c[1] == n;
}

/// Writes beta * C, broadcast to [m, n], into y (float32 or bfloat16 per `dtype`).
void writeBroadcastC(const float* c, const std::vector<int64_t>& cStrides, int64_t m, int64_t n, float scale,
                     DataType dtype, void* y) {
  const int64_t sm = cStrides[0], sn = cStrides[1];
#pragma omp parallel for if (m * n > 32768)
  for (int64_t i = 0; i < m; ++i) {
    if (dtype == DataType::kFloat) {
      float* row = static_cast<float*>(y) + i * n;
      for (int64_t j = 0; j < n; ++j) row[j] = scale * c[i * sm + j * sn];
    } else {
      uint16_t* row = static_cast<uint16_t*>(y) + i * n;
      for (int64_t j = 0; j < n; ++j) row[j] = ir::floatToBfloat16(scale * c[i * sm + j * sn]);
    }
  }
}

memory::dims toDnnl(const std::vector<int64_t>& d) {
  return memory::dims(d.begin(), d.end());
}

/// Row-major strides of `dims`, with the last two swapped when `transposed` (a [K, N] view
/// of a stored [N, K] matrix).
memory::desc matrixDesc(const std::vector<int64_t>& dims, memory::data_type dt, bool transposed) {
  memory::dims strides(dims.size());
  int64_t s = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = s;
    s *= dims[i];
  }
  if (transposed) {
    size_t r = dims.size();
    strides[r - 1] = dims[r - 2];
    strides[r - 2] = 1;
  }
  return memory::desc(toDnnl(dims), dt, strides);
}

// ---------------------------------------------------------------------------------------
// The kernel.

struct MatMulAttrs {
  bool gemm = false;
  float alpha = 1.f, beta = 1.f;
  bool transA = false, transB = false;
};

class MatMulKernel final : public Kernel {
 public:
  MatMulKernel(const KernelCreateInfo& info, MatMulAttrs attrs) : attrs_(attrs), engine_(engineOf(info.context)) {}

  /// Reads the constant inputs (packing B) and, when the input shapes are static, creates
  /// the primitive for them now.
  Status prepare(const KernelCreateInfo& info);
  Status run(KernelContext& ctx) override;

 private:
  Expected<Geometry> geometryFor(const std::string& who, const std::vector<int64_t>& a,
                                 const std::vector<int64_t>& b) const {
    return attrs_.gemm ? gemmGeometry(who, a, b, attrs_.transA, attrs_.transB) : matmulGeometry(who, a, b);
  }
  /// A primitive for one shape, with its memory objects; handles are set on every run.
  struct Plan {
    std::vector<int64_t> key;
    dnnl::matmul primitive;
    memory src, wei, dst, bias;
    std::unordered_map<int, memory> args;
    bool packedWeights = false;     // wei holds the packed constant B
    bool prefillC = false;          // Y starts as C; a sum post-op scaled by beta adds it
    bool runtimeBias = false;       // bias reads C's data on every run
    std::vector<float> biasValues;  // constant bias: beta * C, broadcast to [N]
    std::vector<int64_t> cStrides;  // C broadcast to [M, N] (prefill)
  };

  Expected<Plan*> planFor(const std::string& who, const Geometry& g, const std::vector<int64_t>& cDims, bool cConstant,
                          bool cPresent);
  Expected<memory> packedWeightsFor(const memory::desc& want, const Geometry& g);
  Status runReference(KernelContext& ctx, const Geometry& g);
  static Status dnnlFailure(const std::string& what, const dnnl::error& e);

  MatMulAttrs attrs_;
  dnnl::engine engine_;
  DataType dtype_ = DataType::kUndefined;  // known once prepared or on the first run
  memory::data_type computeDt_ = memory::data_type::f32;

  // Constant B, in the compute dtype (float16 widened), alpha folded in when float32.
  bool bConstant_ = false;
  std::vector<int64_t> bDims_;
  ir::Tensor bConst_;
  bool alphaFolded_ = false;
  std::vector<std::pair<memory::desc, memory>> packed_;
  // Constant C, widened to float32.
  bool cConstant_ = false;
  std::vector<int64_t> cDims_;
  std::vector<float> cConst_;

  std::vector<std::unique_ptr<Plan>> plans_;  // most recent last
  std::vector<float> scratchA_, scratchB_, scratchC_, scratchY_;
};

constexpr size_t kMaxPlans = 16;

Status MatMulKernel::dnnlFailure(const std::string& what, const dnnl::error& e) {
  return internalError(what + ": oneDNN error " + std::to_string(static_cast<int>(e.status)) + " (" + e.what() + ")");
}

Status MatMulKernel::prepare(const KernelCreateInfo& info) {
  const ir::Tensor* b = info.constantInput(1);
  const ir::Tensor* c = attrs_.gemm ? info.constantInput(2) : nullptr;
  DataType dtype = info.inputTypes.empty() ? DataType::kUndefined : info.inputTypes[0];
  if (dtype == DataType::kUndefined && b != nullptr) dtype = b->dtype();
  if (dtype == DataType::kUndefined) return Status::ok();  // decided on the first run
  if (dtype != DataType::kFloat && dtype != DataType::kFloat16 && dtype != DataType::kBFloat16 &&
      dtype != DataType::kDouble) {
    return info.unsupported("dtype " + std::string(ir::dataTypeName(dtype)) +
                            " is not supported (float32, float16, bfloat16, float64)");
  }
  dtype_ = dtype;
  computeDt_ = dtype == DataType::kBFloat16 ? memory::data_type::bf16 : memory::data_type::f32;
  if (dtype == DataType::kDouble) return Status::ok();
  if (b != nullptr && b->dtype() == dtype) {
    bConstant_ = true;
    bDims_ = b->dims();
    if (dtype == DataType::kBFloat16) {
      bConst_ = *b;
    } else {
      bConst_ = ir::Tensor(DataType::kFloat, b->dims());
      float* dst = bConst_.mutableData<float>();
      if (dtype == DataType::kFloat) {
        std::memcpy(dst, b->data<float>(), static_cast<size_t>(b->numel()) * sizeof(float));
      } else {
        widenToFloat(dtype, b->rawData(), dst, b->numel());
      }
      if (attrs_.gemm && attrs_.alpha != 1.f) {
        for (int64_t i = 0; i < b->numel(); ++i) dst[i] *= attrs_.alpha;
        alphaFolded_ = true;
      }
    }
  }
  if (c != nullptr && c->dtype() == dtype) {
    cConstant_ = true;
    cDims_ = c->dims();
    cConst_.resize(static_cast<size_t>(c->numel()));
    if (dtype == DataType::kFloat) {
      std::memcpy(cConst_.data(), c->data<float>(), cConst_.size() * sizeof(float));
    } else {
      widenToFloat(dtype, c->rawData(), cConst_.data(), c->numel());
    }
  }
  // Create the primitive (and pack B) now when the shapes are known; on any problem, leave
  // it to the first run, which reports it with the real shapes.
  const ir::Value* aValue = info.node.input(0);
  const ir::Value* bValue = info.node.input(1);
  const ir::Value* cValue = attrs_.gemm ? info.node.input(2) : nullptr;
  auto aDims = aValue != nullptr ? aValue->type().staticDims() : std::nullopt;
  auto bDims = b != nullptr ? std::optional(b->dims()) : bValue != nullptr ? bValue->type().staticDims() : std::nullopt;
  std::optional<std::vector<int64_t>> cDims;
  if (cValue != nullptr) cDims = c != nullptr ? std::optional(c->dims()) : cValue->type().staticDims();
  if (aDims && bDims && (cValue == nullptr || cDims)) {
    auto g = geometryFor(info.node.describe(), *aDims, *bDims);
    if (g.isOk() && g->k > 0 && product(g->outDims) > 0 && (!cDims || gemmCStrides(*cDims, g->m, g->n))) {
      // oneDNN fixes a primitive's thread count when it is created: create it under the
      // session's count (runs set it too), then restore the caller's.
      const int savedThreads = omp_get_max_threads();
      omp_set_num_threads(info.threads);
      (void)planFor(info.node.describe(), *g, cDims.value_or(std::vector<int64_t>{}), cConstant_, cValue != nullptr);
      omp_set_num_threads(savedThreads);
    }
  }
  return Status::ok();
}

Expected<memory> MatMulKernel::packedWeightsFor(const memory::desc& want, const Geometry& g) {
  for (auto& [desc, mem] : packed_) {
    if (desc == want) return mem;
  }
  try {
    // The stored B viewed as [K, N]: plain, or transposed for Gemm's transB.
    memory::desc plainDesc = matrixDesc({g.k, g.n}, computeDt_, attrs_.transB);
    memory plain(plainDesc, engine_, const_cast<std::byte*>(bConst_.rawData()));
    memory packed(want, engine_);
    dnnl::stream stream(engine_);
    dnnl::reorder(plain, packed).execute(stream, plain, packed);
    stream.wait();
    packed_.emplace_back(want, packed);
    return packed;
  } catch (const dnnl::error& e) {
    return dnnlFailure("packing B", e);
  }
}

Expected<MatMulKernel::Plan*> MatMulKernel::planFor(const std::string& who, const Geometry& g,
                                                    const std::vector<int64_t>& cDims, bool cConstant, bool cPresent) {
  std::vector<int64_t> key = g.srcDims;
  key.push_back(-1);
  key.insert(key.end(), g.weiDims.begin(), g.weiDims.end());
  key.push_back(-2);
  if (cPresent) key.insert(key.end(), cDims.begin(), cDims.end());
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i]->key == key) {
      if (i + 1 != plans_.size())
        std::rotate(plans_.begin() + static_cast<ptrdiff_t>(i), plans_.begin() + static_cast<ptrdiff_t>(i) + 1,
                    plans_.end());
      return plans_.back().get();
    }
  }
  auto plan = std::make_unique<Plan>();
  plan->key = std::move(key);
  const bool packable = bConstant_ && g.weiDims.size() == 2;
  const bool oscale = attrs_.gemm && attrs_.alpha != 1.f && !alphaFolded_;
  if (cPresent && attrs_.beta != 0.f) {
    bool row = isRowBias(cDims, g.n) && !oscale;
    if (row && cConstant) {
      plan->biasValues.resize(static_cast<size_t>(g.n));
      bool scalar = product(cDims) == 1;
      for (int64_t j = 0; j < g.n; ++j)
        plan->biasValues[static_cast<size_t>(j)] = attrs_.beta * cConst_[scalar ? 0 : static_cast<size_t>(j)];
    } else if (row && attrs_.beta == 1.f && product(cDims) == g.n) {
      plan->runtimeBias = true;
    } else {
      plan->prefillC = true;
      plan->cStrides = *gemmCStrides(cDims, g.m, g.n);
    }
  }
  try {
    const bool transA = attrs_.transA;
    memory::desc srcDesc = matrixDesc(g.srcDims, computeDt_, transA);
    memory::desc weiDesc = packable ? memory::desc(toDnnl(g.weiDims), computeDt_, memory::format_tag::any)
                                    : matrixDesc(g.weiDims, computeDt_, attrs_.transB);
    memory::desc dstDesc = matrixDesc(g.dstDims, computeDt_, false);
    memory::desc biasDesc;
    const bool withBias = !plan->biasValues.empty() || plan->runtimeBias;
    if (withBias) {
      std::vector<int64_t> biasDims(g.dstDims.size(), 1);
      biasDims.back() = g.n;
      biasDesc = matrixDesc(biasDims, memory::data_type::f32, false);
    }
    dnnl::primitive_attr attr;
    attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
    if (oscale) attr.set_output_scales(0, {attrs_.alpha});
    if (plan->prefillC) {
      dnnl::post_ops ops;
      ops.append_sum(attrs_.beta);
      attr.set_post_ops(ops);
    }
    auto desc = withBias ? dnnl::matmul::desc(srcDesc, weiDesc, biasDesc, dstDesc)
                         : dnnl::matmul::desc(srcDesc, weiDesc, dstDesc);
    dnnl::matmul::primitive_desc pd(desc, attr, engine_);
    plan->primitive = dnnl::matmul(pd);
    plan->src = memory(pd.src_desc(), engine_, DNNL_MEMORY_NONE);
    plan->dst = memory(pd.dst_desc(), engine_, DNNL_MEMORY_NONE);
    if (packable) {
      auto packed = packedWeightsFor(pd.weights_desc(), g);
      if (!packed.isOk()) return packed.status();
      plan->wei = *packed;
      plan->packedWeights = true;
    } else {
      plan->wei = memory(pd.weights_desc(), engine_, DNNL_MEMORY_NONE);
    }
    plan->args = {{DNNL_ARG_SRC, plan->src}, {DNNL_ARG_WEIGHTS, plan->wei}, {DNNL_ARG_DST, plan->dst}};
    if (withBias) {
      plan->bias = memory(biasDesc, engine_, DNNL_MEMORY_NONE);
      if (!plan->runtimeBias) plan->bias.set_data_handle(plan->biasValues.data());
      plan->args.emplace(DNNL_ARG_BIAS, plan->bias);
    }
  } catch (const dnnl::error& e) {
    return dnnlFailure(who + ": creating the matmul primitive for src " + shapeToString(g.srcDims) + ", weights " +
                           shapeToString(g.weiDims),
                       e);
  }
  if (plans_.size() >= kMaxPlans) plans_.erase(plans_.begin());
  plans_.push_back(std::move(plan));
  return plans_.back().get();
}

Status MatMulKernel::runReference(KernelContext& ctx, const Geometry& g) {
  const ir::Tensor& a = ctx.input(0);
  const ir::Tensor& b = ctx.input(1);
  ir::Tensor& y = ctx.allocateOutput(0, DataType::kDouble, g.outDims);
  const double* ap = a.data<double>();
  const double* bp = b.data<double>();
  double* yp = y.mutableData<double>();
  const double alpha = attrs_.gemm ? attrs_.alpha : 1.0;
  if (g.batchDims.empty()) {
    gemmReference(ap, bp, yp, g.srcDims[0], g.n, g.k, attrs_.transA, attrs_.transB, alpha);
  } else {
    // Walk the broadcast batch index by index.
    const int64_t batches = product(g.batchDims);
    std::vector<int64_t> index(g.batchDims.size(), 0);
    for (int64_t bi = 0; bi < batches; ++bi) {
      int64_t aOff = 0, bOff = 0;
      for (size_t d = 0; d < index.size(); ++d) {
        aOff += index[d] * g.aBatchStrides[d];
        bOff += index[d] * g.bBatchStrides[d];
      }
      gemmReference(ap + aOff * g.m * g.k, bp + bOff * g.k * g.n, yp + bi * g.m * g.n, g.m, g.n, g.k, false, false,
                    1.0);
      for (size_t d = index.size(); d-- > 0;) {
        if (++index[d] < g.batchDims[d]) break;
        index[d] = 0;
      }
    }
  }
  if (attrs_.gemm && ctx.hasInput(2) && attrs_.beta != 0.f) {
    const ir::Tensor& c = ctx.input(2);
    auto strides = gemmCStrides(c.dims(), g.m, g.n);
    if (!strides)
      return ctx.error("C " + shapeToString(c.dims()) + " does not broadcast to " + shapeToString(g.outDims));
    const double* cp = c.data<double>();
    for (int64_t i = 0; i < g.m; ++i) {
      for (int64_t j = 0; j < g.n; ++j) yp[i * g.n + j] += attrs_.beta * cp[i * (*strides)[0] + j * (*strides)[1]];
    }
  }
  return Status::ok();
}

Status MatMulKernel::run(KernelContext& ctx) {
  const ir::Tensor& a = ctx.input(0);
  const ir::Tensor& b = ctx.input(1);
  const DataType dtype = a.dtype();
  if (b.dtype() != dtype) {
    return ctx.error("A and B must have the same dtype, got " + std::string(ir::dataTypeName(dtype)) + " and " +
                     std::string(ir::dataTypeName(b.dtype())));
  }
  if (dtype_ == DataType::kUndefined) {
    if (dtype != DataType::kFloat && dtype != DataType::kFloat16 && dtype != DataType::kBFloat16 &&
        dtype != DataType::kDouble) {
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(dtype)) +
                             " is not supported (float32, float16, bfloat16, float64)");
    }
    dtype_ = dtype;
    computeDt_ = dtype == DataType::kBFloat16 ? memory::data_type::bf16 : memory::data_type::f32;
  } else if (dtype != dtype_) {
    return ctx.error("dtype changed from " + std::string(ir::dataTypeName(dtype_)) + " to " +
                     std::string(ir::dataTypeName(dtype)));
  }
  const bool cPresent = attrs_.gemm && ctx.hasInput(2);
  if (cPresent && ctx.input(2).dtype() != dtype) return ctx.error("C must have the dtype of A");

  Expected<Geometry> geometry = geometryFor(ctx.describe(), a.dims(), b.dims());
  if (!geometry.isOk()) return geometry.status();
  const Geometry& g = *geometry;
  std::vector<int64_t> cDims = cPresent ? ctx.input(2).dims() : std::vector<int64_t>{};
  if (cPresent && !gemmCStrides(cDims, g.m, g.n)) {
    return ctx.error("C " + shapeToString(cDims) + " does not broadcast to " + shapeToString(g.outDims));
  }
  if (dtype == DataType::kDouble) return runReference(ctx, g);

  ir::Tensor& y = ctx.allocateOutput(0, dtype, g.outDims);
  if (y.numel() == 0) return Status::ok();
  const bool widen = dtype == DataType::kFloat16;
  void* yData = y.mutableRawData();
  if (widen) {
    if (scratchY_.size() < static_cast<size_t>(y.numel())) scratchY_.resize(static_cast<size_t>(y.numel()));
    yData = scratchY_.data();
  }
  const DataType outDt = widen ? DataType::kFloat : dtype;
  // C as float32 values (constant: widened at creation).
  const bool cIsConstant = cPresent && cConstant_ && cDims == cDims_;
  const float* cValues = nullptr;
  if (cPresent) cValues = cIsConstant ? cConst_.data() : floatView(ctx.input(2), scratchC_);

  if (g.k == 0) {  // an empty sum: Y = beta * C, or zeros
    if (cPresent && attrs_.beta != 0.f) {
      writeBroadcastC(cValues, *gemmCStrides(cDims, g.m, g.n), g.m, g.n, attrs_.beta, outDt, yData);
    } else {
      std::memset(yData, 0, static_cast<size_t>(y.numel()) * (outDt == DataType::kFloat ? 4 : 2));
    }
  } else {
    if (bConstant_ && b.dims() != bDims_) return ctx.error("constant B changed shape");
    auto plan = planFor(ctx.describe(), g, cDims, cIsConstant, cPresent);
    if (!plan.isOk()) return plan.status();
    Plan& p = **plan;
    const void* aData = widen ? static_cast<const void*>(floatView(a, scratchA_)) : a.rawData();
    p.src.set_data_handle(const_cast<void*>(aData));
    if (!p.packedWeights) {
      const void* bData = bConstant_ ? static_cast<const void*>(bConst_.rawData())
                          : widen    ? static_cast<const void*>(floatView(b, scratchB_))
                                     : static_cast<const void*>(b.rawData());
      p.wei.set_data_handle(const_cast<void*>(bData));
    }
    p.dst.set_data_handle(yData);
    if (p.runtimeBias) p.bias.set_data_handle(const_cast<float*>(cValues));
    if (p.prefillC) writeBroadcastC(cValues, p.cStrides, g.m, g.n, 1.f, outDt, yData);
    try {
      p.primitive.execute(streamOf(ctx.context()), p.args);
      streamOf(ctx.context()).wait();
    } catch (const dnnl::error& e) {
      return dnnlFailure(ctx.describe() + ": running the matmul primitive", e);
    }
  }
  if (widen) narrowFromFloat(dtype, scratchY_.data(), y.mutableRawData(), y.numel());
  return Status::ok();
}

Expected<std::unique_ptr<Kernel>> createMatMul(const KernelCreateInfo& info, bool gemm) {
  MatMulAttrs attrs;
  attrs.gemm = gemm;
  if (gemm) {
    attrs.alpha = info.node.attrFloat("alpha", 1.f);
    attrs.beta = info.node.attrFloat("beta", 1.f);
    attrs.transA = info.node.attrInt("transA", 0) != 0;
    attrs.transB = info.node.attrInt("transB", 0) != 0;
  }
  auto kernel = std::make_unique<MatMulKernel>(info, attrs);
  WH_RETURN_IF_ERROR(kernel->prepare(info));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

}  // namespace

void registerMatMulKernels(KernelRegistry& registry) {
  registry.add("", "MatMul", 1, [](const KernelCreateInfo& info) { return createMatMul(info, /*gemm=*/false); });
  registry.add("", "Gemm", 1, [](const KernelCreateInfo& info) { return createMatMul(info, /*gemm=*/true); });
}

}  // namespace whittle::runtime::cpu
