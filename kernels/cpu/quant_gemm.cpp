// com.microsoft QGemm on oneDNN's int8 matmul: what the QDQ lowering makes of a quantized
// classifier or projection (src/runtime/lower_qdq_gemm.cpp), float output included.
//
//   acc[m, n] = sum_k (a[m, k] - a_zp) * (b[k, n] - b_zp[n]) + C[n]
//   y = float(acc) * (alpha * a_scale * b_scale[n])                      (no y_scale, y_zero_point)
//   y = saturate(round_half_even(float(acc) * (alpha * a_scale * b_scale[n] / y_scale)) + y_zp)
//
// Fast path: transA = 0, a constant 2-D B, int8 with zero points 0 (or uint8 with 128, shifted
// to int8), constant scales and zero points, C absent or one value per column. B is packed
// once (transposed when transB); a's zero point and C fold into one int32 bias
// (C[n] - a_zp * sum_k b[k, n]), which oneDNN adds to the accumulator before the per-column
// output scales; the dequantization is the output scale, so the float output costs no pass
// of its own. Everything else (and CPUs where oneDNN's int8 is not exact) runs qgemmReference.
// Beyond ORT's QGemm, which takes a 2-D A: with transA = 0 an A of any other rank is read as rows
// of K and y keeps its leading dims, as MatMul's (the lowering of a MatMul of any rank: a hoisted
// LSTM input projection over [T, B, I]).
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>

#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu::quant {
namespace {

using ir::DataType;

class QGemmKernel final : public Kernel {
 public:
  Status prepare(const KernelCreateInfo& info) {
    const ir::Node& node = info.node;
    if (node.attrInt("transA", 0) != 0) return Status::ok();
    const bool transB = node.attrInt("transB", 0) != 0;
    const float alpha = node.attrFloat("alpha", 1.0f);
    // Every parameter present must be a constant.
    for (size_t i : {1, 2, 4, 5, 6, 7, 8}) {
      if (i < node.numInputs() && node.input(i) != nullptr && info.constantInput(i) == nullptr) return Status::ok();
    }
    auto has = [&](size_t i) { return i < node.numInputs() && node.input(i) != nullptr; };
    if (!has(1) || !has(4)) return Status::ok();  // the reference names what is missing
    const ir::Tensor* b = info.constantInput(3);
    if (b == nullptr || b->rank() != 2 || (b->dtype() != DataType::kInt8 && b->dtype() != DataType::kUint8)) return Status::ok();
    k_ = transB ? b->dims()[1] : b->dims()[0];
    n_ = transB ? b->dims()[0] : b->dims()[1];
    // Scales and zero points.
    WH_ASSIGN_OR_RETURN(aScale_, scalarScaleOf(info.constantInput(1), node, "a_scale"));
    if (has(2)) {
      const ir::Tensor* az = info.constantInput(2);
      if (az->numel() != 1) return Status::ok();
      WH_ASSIGN_OR_RETURN(aZp_, scalarZeroPointOf(az, node, "a_zero_point"));
      aType_ = az->dtype();
    }
    WH_ASSIGN_OR_RETURN(std::vector<float> bScales, readScales(*info.constantInput(4), node, "b_scale"));
    if (bScales.size() != 1 && static_cast<int64_t>(bScales.size()) != n_) return Status::ok();
    const int32_t wantZp = b->dtype() == DataType::kUint8 ? 128 : 0;
    if (has(5)) {
      WH_ASSIGN_OR_RETURN(std::vector<int32_t> zps, readZeroPoints(*info.constantInput(5), node, "b_zero_point"));
      for (int32_t z : zps) {
        if (z != wantZp) return Status::ok();
      }
    } else if (wantZp != 0) {
      return Status::ok();
    }
    std::vector<int32_t> c;
    if (has(6)) {
      const ir::Tensor* ct = info.constantInput(6);
      if (ct->dtype() != DataType::kInt32 || (ct->numel() != 1 && ct->numel() != n_) || (ct->rank() == 2 && ct->dims()[0] != 1) ||
          ct->rank() > 2) {
        return Status::ok();
      }
      for (int64_t j = 0; j < n_; ++j) c.push_back(ct->data<int32_t>()[ct->numel() == 1 ? 0 : j]);
    }
    float yScale = 1.0f;
    if (has(7)) { WH_ASSIGN_OR_RETURN(yScale, scalarScaleOf(info.constantInput(7), node, "y_scale")); }
    requantize_ = has(7) && has(8);
    if (requantize_) {
      const ir::Tensor* yz = info.constantInput(8);
      WH_ASSIGN_OR_RETURN(yZp_, scalarZeroPointOf(yz, node, "y_zero_point"));
      yType_ = yz->dtype();
      if (yType_ != DataType::kUint8 && yType_ != DataType::kInt8) return Status::ok();
    }
    // The output scales as the reference computes them.
    scales_.resize(bScales.size());
    for (size_t j = 0; j < bScales.size(); ++j) {
      const float v = alpha * aScale_ * bScales[j];
      scales_[j] = has(7) ? v / yScale : v;
    }
    // B as int8, K x N, its column sums and the folded bias.
    weights_.resize(static_cast<size_t>(k_ * n_));
    std::vector<int64_t> sums(static_cast<size_t>(n_), 0);
    weightsFit7Bits_ = true;
    const auto* raw = reinterpret_cast<const uint8_t*>(b->rawData());
    for (int64_t kk = 0; kk < k_; ++kk) {
      for (int64_t j = 0; j < n_; ++j) {
        const int64_t src = transB ? j * k_ + kk : kk * n_ + j;
        const int32_t v = b->dtype() == DataType::kUint8 ? static_cast<int32_t>(raw[src]) - 128 : static_cast<int8_t>(raw[src]);
        weights_[static_cast<size_t>(kk * n_ + j)] = static_cast<int8_t>(v);
        sums[static_cast<size_t>(j)] += v;
        weightsFit7Bits_ = weightsFit7Bits_ && v >= -64 && v <= 64;
      }
    }
    bias_.resize(static_cast<size_t>(n_));
    hasBias_ = !c.empty() || aZp_ != 0;
    for (int64_t j = 0; j < n_; ++j) {
      const int64_t v = (c.empty() ? 0 : c[static_cast<size_t>(j)]) - static_cast<int64_t>(aZp_) * sums[static_cast<size_t>(j)];
      bias_[static_cast<size_t>(j)] = static_cast<int32_t>(static_cast<uint32_t>(v));  // int32 accumulators wrap
    }
    fast_ = true;
    return Status::ok();
  }

  Status run(KernelContext& ctx) override {
    if (!fast_) return qgemmReference(ctx);
    const ir::Tensor& a = ctx.input(0);
    const bool aFits = a.rank() >= 1 && a.dims().back() == k_ &&
                       (a.dtype() == DataType::kUint8 || a.dtype() == DataType::kInt8) &&
                       (aType_ == DataType::kUndefined || aType_ == a.dtype());
    if (!aFits) return qgemmReference(ctx);  // its message names what is wrong, if anything is
    const int64_t rows = a.numel() / k_;
    if (!plan_ || plan_->rows != rows || plan_->aType != a.dtype() || plan_->threads != ctx.threads()) {
      plan_.reset();
      if (!int8KernelsExact() && (a.dtype() != DataType::kUint8 || !weightsFit7Bits_)) {
        // Without VNNI oneDNN's int8 kernels could saturate or round: use the exact reference.
        fast_ = false;
        return qgemmReference(ctx);
      }
      auto plan = std::make_unique<Plan>();
      plan->rows = rows;
      plan->aType = a.dtype();
      plan->threads = ctx.threads();
      Status st = dnnlGuard(ctx.node(), [&] { buildPlan(engineOf(ctx.context()), *plan); });
      if (!st.isOk()) {
        if (st.code() != StatusCode::kUnimplemented) return st;
        fast_ = false;
        return qgemmReference(ctx);
      }
      plan_ = std::move(plan);
    }
    Plan& plan = *plan_;
    std::vector<int64_t> yDims(a.dims().begin(), a.dims().end() - 1);
    yDims.push_back(n_);
    ir::Tensor& y = ctx.allocateOutput(0, requantize_ ? yType_ : DataType::kFloat, yDims);
    plan.src.set_data_handle(const_cast<std::byte*>(a.rawData()));
    plan.dst.set_data_handle(y.mutableRawData());
    return dnnlGuard(ctx.node(), [&] { plan.prim.execute(streamOf(ctx.context()), plan.args); });
  }

 private:
  struct Plan {
    int64_t rows = 0;
    int threads = 0;
    DataType aType = DataType::kUndefined;
    dnnl::matmul prim;
    dnnl::memory src, dst, weights, bias, scratchpad, dstZpMem;
    std::unordered_map<int, dnnl::memory> args;
    std::shared_ptr<ir::Buffer> scratchBuffer;
    int32_t dstZp = 0;
  };

  void buildPlan(dnnl::engine& engine, Plan& plan) {
    using dnnl::memory;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    const dt dstType = !requantize_ ? dt::f32 : yType_ == DataType::kUint8 ? dt::u8 : dt::s8;
    auto srcMd = memory::desc({plan.rows, k_}, plan.aType == DataType::kUint8 ? dt::u8 : dt::s8, tag::ab);
    auto wMd = memory::desc({k_, n_}, dt::s8, tag::any);
    auto dstMd = memory::desc({plan.rows, n_}, dstType, tag::ab);
    auto biasMd = memory::desc({1, n_}, dt::s32, tag::ab);
    dnnl::matmul::desc desc(srcMd, wMd, hasBias_ ? biasMd : memory::desc(), dstMd);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_output_scales(scales_.size() == 1 ? 0 : 1 << 1, scales_);
    if (requantize_) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_round, 0.0f, 0.0f);
      attr.set_post_ops(ops);
      if (yZp_ != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    }
    dnnl::matmul::primitive_desc pd(desc, attr, engine);
    plan.prim = dnnl::matmul(pd);
    packInt8Plan(plan, pd, engine, {{k_, n_}, dt::s8, tag::ab}, weights_.data(), srcMd, dstMd);
    plan.args = {{DNNL_ARG_SRC, plan.src}, {DNNL_ARG_WEIGHTS, plan.weights}, {DNNL_ARG_DST, plan.dst},
                 {DNNL_ARG_SCRATCHPAD, plan.scratchpad}};
    if (hasBias_) {
      plan.bias = memory(biasMd, engine, bias_.data());
      plan.args[DNNL_ARG_BIAS] = plan.bias;
    }
    plan.dstZp = yZp_;
    if (requantize_ && yZp_ != 0) {
      plan.dstZpMem = memory({{1}, dt::s32, tag::x}, engine, &plan.dstZp);
      plan.args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = plan.dstZpMem;
    }
  }

  bool fast_ = false;
  bool requantize_ = false;
  bool hasBias_ = false;
  bool weightsFit7Bits_ = false;  // every int8 weight in [-64, 64] (exact without VNNI too)
  int64_t k_ = 0, n_ = 0;
  float aScale_ = 1.0f;
  int32_t aZp_ = 0, yZp_ = 0;
  DataType aType_ = DataType::kUndefined;  // a_zero_point's type when there is one
  DataType yType_ = DataType::kFloat;
  std::vector<float> scales_;     // per column (or one): alpha * a_scale * b_scale[n] (/ y_scale)
  std::vector<int8_t> weights_;   // B as int8, K x N
  std::vector<int32_t> bias_;     // C[n] - a_zp * sum_k B[k][n]
  std::unique_ptr<Plan> plan_;
};

}  // namespace

Expected<std::unique_ptr<Kernel>> createQGemmKernel(const KernelCreateInfo& info) {
  auto k = std::make_unique<QGemmKernel>();
  WH_RETURN_IF_ERROR(k->prepare(info));
  return std::unique_ptr<Kernel>(std::move(k));
}

}  // namespace whittle::runtime::cpu::quant
