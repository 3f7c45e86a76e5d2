// ConvTranspose on oneDNN's deconvolution. output_padding and an output_shape larger than
// the input covers become negative end padding; where oneDNN declines a configuration,
// the scalar reference runs instead.
//
// A 2-D ConvTranspose whose kernel equals its stride, with no padding, dilation or groups
// (the 2x2 stride-2 upsampling of text detectors' FPNs), writes every output pixel from one
// input pixel: Y[n, m, i*s + a, j*t + b] = B[m] + sum_c X[n, c, i, j] W[c, m, a, b]. It runs as
// one GEMM, Z = W^T X over blocks of input rows ([M*k*k, C] x [C, rows*W]), whose rows are
// then scattered into the output: oneDNN 2.6's deconvolution took 7 to 9 ms a run for the
// PP-OCRv6 tiny detector's two (16 -> 16 and 16 -> 1 channels, 9 and 2 M multiply-adds).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "cpu/conv_params.h"
#include "cpu/conv_reference.h"
#include "cpu/dnnl_glue.h"
#include "cpu/elementwise_common.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

namespace {

using dt = dnnl::memory::data_type;

struct DeconvPlan {
  std::vector<int64_t> xDims, wDims;
  ConvGeometry geo;
  bool useReference = false;
  bool usePatches = false;  ///< kernel == stride, no padding: the GEMM and scatter path
  dnnl::deconvolution_forward deconv;
  dnnl::memory src, wei, bia, dst, userSrc, userDst, userWei;
  bool reorderSrc = false, reorderDst = false;
  bool weightsPacked = false;  ///< constant W, reordered once when the plan was made
  ActivationReorder srcReorder, dstReorder;
  dnnl::reorder weiReorder;
  DnnlArgs args;
};

/// The ONNX W [C, M/G, k...] as oneDNN deconvolution weights ([G,] O, I, k...) with strides.
dnnl::memory::desc userWeightDesc(const ConvGeometry& g) {
  int64_t ks = 1;
  for (int64_t k : g.kernel) ks *= k;
  int64_t cG = g.wei[0] / g.group, mG = g.wei[1];
  dnnl::memory::dims dims, strides;
  if (g.group > 1) {
    dims = {g.group, mG, cG};
    strides = {cG * mG * ks, ks, mG * ks};
  } else {
    dims = {mG, cG};
    strides = {ks, mG * ks};
  }
  int64_t stride = 1;
  std::vector<int64_t> kStrides(g.kernel.size());
  for (size_t k = g.kernel.size(); k-- > 0;) {
    kStrides[k] = stride;
    stride *= g.kernel[k];
  }
  dims.insert(dims.end(), g.kernel.begin(), g.kernel.end());
  strides.insert(strides.end(), kStrides.begin(), kStrides.end());
  return dnnl::memory::desc(dims, dt::f32, strides);
}

dnnl::memory::dims minusOne(const std::vector<int64_t>& v) {
  dnnl::memory::dims d;
  for (int64_t x : v) d.push_back(x - 1);
  return d;
}

/// y[2j] = a[j] + bias, y[2j + 1] = b[j] + bias: an output row of a 2-wide patch, written once
/// front to back (two stride-2 passes over it took twice the time: the PP-OCRv6 tiny detector's
/// 16 -> 16 channel 2x2 upsampling to 160 x 224).
WH_SIMD_CLONES void interleavePairs(const float* a, const float* b, float bias, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    y[2 * j] = a[j] + bias;
    y[2 * j + 1] = b[j] + bias;
  }
}

class ConvTransposeKernel final : public Kernel {
 public:
  static Expected<std::unique_ptr<Kernel>> create(const KernelCreateInfo& info) {
    std::unique_ptr<ConvTransposeKernel> k(new ConvTransposeKernel(engineOf(info.context)));
    k->what_ = info.node.describe();
    WH_ASSIGN_OR_RETURN(k->attrs_, readConvAttrs(info.node));
    if (info.node.input(0) == nullptr || info.node.input(1) == nullptr) return info.error("needs inputs X and W");
    k->constW_ = info.constantInput(1);
    if (k->constW_ != nullptr &&
        (k->constW_->dtype() == ir::DataType::kFloat16 || k->constW_->dtype() == ir::DataType::kBFloat16)) {
      k->floatW_ = toFloat32(*k->constW_);
    } else if (k->constW_ != nullptr && k->constW_->dtype() != ir::DataType::kFloat) {
      k->constW_ = nullptr;  // float64 runs the reference on the given W
    }
    ir::DataType xType = info.inputTypes.empty() ? ir::DataType::kUndefined : info.inputTypes[0];
    if (xType != ir::DataType::kUndefined && xType != ir::DataType::kFloat && xType != ir::DataType::kFloat16 &&
        xType != ir::DataType::kBFloat16 && xType != ir::DataType::kDouble) {
      return info.unsupported("dtype " + std::string(ir::dataTypeName(xType)) + " is not supported");
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& w = ctx.input(1);
    const ir::Tensor* b = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
    ir::DataType type = x.dtype();
    if (w.dtype() != type || (b != nullptr && b->dtype() != type)) return ctx.error("X, W and B must have one dtype");
    if (x.rank() != w.rank() || x.rank() < 3) {
      return ctx.error("X " + shapeToString(x.dims()) + " and W " + shapeToString(w.dims()) +
                       " must have the same rank, at least 3");
    }
    if (type == ir::DataType::kDouble) {
      WH_ASSIGN_OR_RETURN(ConvGeometry g, resolveConvTranspose(attrs_, x.dims(), w.dims(), what_));
      if (b != nullptr && b->numel() != g.dst[1]) return ctx.error("B must have one value per output channel");
      ir::Tensor& y = ctx.allocateOutput(0, type, g.dst);
      referenceConvTranspose<double>(g, x.data<double>(), w.data<double>(), b ? b->data<double>() : nullptr,
                                     y.mutableData<double>());
      return Status::ok();
    }
    if (type != ir::DataType::kFloat && type != ir::DataType::kFloat16 && type != ir::DataType::kBFloat16) {
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(type)) + " is not supported");
    }
    if (type == ir::DataType::kFloat) return runFloat32(ctx, x, w, b, nullptr);
    ir::Tensor xf = toFloat32(x), wf = toFloat32(w), out;
    std::optional<ir::Tensor> bf;
    if (b != nullptr) bf = toFloat32(*b);
    WH_RETURN_IF_ERROR(runFloat32(ctx, xf, wf, bf ? &*bf : nullptr, &out));
    ctx.setOutput(0, fromFloat32(out, type));
    return Status::ok();
  }

 private:
  explicit ConvTransposeKernel(dnnl::engine& engine) : engine_(engine) {}

  Expected<DeconvPlan*> planFor(const std::vector<int64_t>& xDims, const std::vector<int64_t>& wDims, bool hasBias) {
    for (auto& p : plans_) {
      if (p->xDims == xDims && p->wDims == wDims) return p.get();
    }
    auto plan = std::make_unique<DeconvPlan>();
    plan->xDims = xDims;
    plan->wDims = wDims;
    WH_ASSIGN_OR_RETURN(plan->geo, resolveConvTranspose(attrs_, xDims, wDims, what_));
    const ConvGeometry& g = plan->geo;
    bool empty = false;
    for (int64_t d : g.src) empty = empty || d == 0;
    for (int64_t d : g.dst) empty = empty || d == 0;
    plan->useReference = empty;
    plan->usePatches = !empty && isPatchwise(g);
    if (!empty && !plan->usePatches) {
      try {
        dnnl::memory::desc userWei = userWeightDesc(g);
        dnnl::memory::desc weiAny(userWei.dims(), dt::f32, dnnl::memory::format_tag::any);
        dnnl::memory::desc biaDesc =
            hasBias ? dnnl::memory::desc({g.dst[1]}, dt::f32, dnnl::memory::format_tag::x) : dnnl::memory::desc();
        auto makePd = [&](dnnl::memory::desc src, dnnl::memory::desc dst) {
          dnnl::deconvolution_forward::desc desc(
              dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, src, weiAny, biaDesc, dst,
              toDnnlDims(g.strides), minusOne(g.dilations), toDnnlDims(g.padBegin), toDnnlDims(g.padEnd));
          return dnnl::deconvolution_forward::primitive_desc(desc, engine_);
        };
        auto pd = makePd(activationDesc(g.src, dt::f32, Layout::kChannelsLast),
                         activationDesc(g.dst, dt::f32, Layout::kChannelsLast));
        if (isReferenceImpl(pd.impl_info_str())) {
          auto other = makePd(dnnl::memory::desc(toDnnlDims(g.src), dt::f32, dnnl::memory::format_tag::any),
                              dnnl::memory::desc(toDnnlDims(g.dst), dt::f32, dnnl::memory::format_tag::any));
          if (!isReferenceImpl(other.impl_info_str())) pd = other;
        }
        plan->deconv = dnnl::deconvolution_forward(pd);
        plan->userSrc = dnnl::memory(plainDesc(g.src, dt::f32), engine_, DNNL_MEMORY_NONE);
        plan->userDst = dnnl::memory(plainDesc(g.dst, dt::f32), engine_, DNNL_MEMORY_NONE);
        plan->reorderSrc = pd.src_desc() != plan->userSrc.get_desc();
        plan->reorderDst = pd.dst_desc() != plan->userDst.get_desc();
        plan->src = plan->reorderSrc ? dnnl::memory(pd.src_desc(), engine_) : plan->userSrc;
        plan->dst = plan->reorderDst ? dnnl::memory(pd.dst_desc(), engine_) : plan->userDst;
        if (plan->reorderSrc) plan->srcReorder = ActivationReorder(plan->userSrc, plan->src, g.src);
        if (plan->reorderDst) plan->dstReorder = ActivationReorder(plan->dst, plan->userDst, g.dst);
        plan->userWei = dnnl::memory(userWei, engine_, DNNL_MEMORY_NONE);
        plan->wei = dnnl::memory(pd.weights_desc(), engine_);
        plan->weiReorder = dnnl::reorder(plan->userWei, plan->wei);
        if (constW_ != nullptr) {
          // Pack a constant W once.
          const ir::Tensor& wf = floatW_.dtype() == ir::DataType::kFloat ? floatW_ : *constW_;
          plan->userWei.set_data_handle(const_cast<std::byte*>(wf.rawData()));
          dnnl::stream s(engine_);
          plan->weiReorder.execute(s, plan->userWei, plan->wei);
          s.wait();
          plan->weightsPacked = true;
        }
        plan->args.set(DNNL_ARG_SRC, plan->src);
        plan->args.set(DNNL_ARG_WEIGHTS, plan->wei);
        plan->args.set(DNNL_ARG_DST, plan->dst);
        if (hasBias) {
          plan->bia = dnnl::memory(biaDesc, engine_);
          plan->args.set(DNNL_ARG_BIAS, plan->bia);
        }
      } catch (const dnnl::error&) {
        plan->useReference = true;  // e.g. end padding oneDNN does not take
      }
    }
    if (plans_.size() >= 8) plans_.pop_back();
    plans_.insert(plans_.begin(), std::move(plan));
    return plans_.front().get();
  }

  Status runFloat32(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w, const ir::Tensor* b,
                    ir::Tensor* floatOut) {
    WH_ASSIGN_OR_RETURN(DeconvPlan * plan, planFor(x.dims(), w.dims(), b != nullptr));
    const ConvGeometry& g = plan->geo;
    if (b != nullptr && b->numel() != g.dst[1]) return ctx.error("B must have one value per output channel");
    ir::Tensor* y = nullptr;
    if (floatOut != nullptr) {
      *floatOut = ir::Tensor(ir::DataType::kFloat, g.dst);
      y = floatOut;
    } else {
      y = &ctx.allocateOutput(0, ir::DataType::kFloat, g.dst);
    }
    if (plan->useReference) {
      referenceConvTranspose<float>(g, x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr,
                                    y->mutableData<float>());
      return Status::ok();
    }
    if (plan->usePatches) {
      return runPatches(g, x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr, y->mutableData<float>());
    }
    dnnl::stream& stream = streamOf(ctx.context());
    return dnnlCall(what_, [&] {
      plan->userSrc.set_data_handle(const_cast<std::byte*>(x.rawData()));
      plan->userDst.set_data_handle(y->mutableRawData());
      if (!plan->weightsPacked) {
        plan->userWei.set_data_handle(const_cast<std::byte*>(w.rawData()));
        plan->weiReorder.execute(stream, plan->userWei, plan->wei);
      }
      if (b != nullptr) std::memcpy(plan->bia.get_data_handle(), b->rawData(), static_cast<size_t>(b->numel()) * 4);
      if (plan->reorderSrc) plan->srcReorder.execute(stream, plan->userSrc, plan->src);
      plan->args.execute(plan->deconv, stream);
      if (plan->reorderDst) plan->dstReorder.execute(stream, plan->dst, plan->userDst);
      stream.wait();
    });
  }

  /// Whether each output pixel comes from exactly one input pixel (see the top of the file).
  static bool isPatchwise(const ConvGeometry& g) {
    if (g.src.size() != 4 || g.group != 1) return false;
    for (size_t d = 0; d < 2; ++d) {
      if (g.kernel[d] != g.strides[d] || g.dilations[d] != 1 || g.padBegin[d] != 0 || g.padEnd[d] != 0 ||
          g.dst[d + 2] != g.src[d + 2] * g.strides[d]) {
        return false;
      }
    }
    return true;
  }

  Status runPatches(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
    const int64_t batch = g.src[0], c = g.src[1], h = g.src[2], wd = g.src[3], m = g.dst[1];
    const int64_t kh = g.kernel[0], kw = g.kernel[1], oh = g.dst[2], ow = g.dst[3];
    const int64_t rowsOfZ = m * kh * kw, hw = h * wd;
    // Blocks of input rows whose Z fits in about 256 KiB, so the scatter reads it from cache.
    const int64_t block = std::clamp<int64_t>(65536 / std::max<int64_t>(1, rowsOfZ * wd), 1, h);
    scratch_.resize(static_cast<size_t>(rowsOfZ * block * wd));
    float* z = scratch_.data();
    for (int64_t n = 0; n < batch; ++n) {
      const float* xn = x + n * c * hw;
      float* yn = y + n * m * oh * ow;
      for (int64_t i0 = 0; i0 < h; i0 += block) {
        const int64_t rows = std::min(block, h - i0), cols = rows * wd;
        // Z [M*kh*kw, cols] = W^T [M*kh*kw, C] x X[:, rows i0..] [C, cols]; W is [C, M*kh*kw].
        dnnl_status_t st =
            dnnl_sgemm('T', 'N', rowsOfZ, cols, c, 1.0f, w, rowsOfZ, xn + i0 * wd, hw, 0.0f, z, cols);
        if (st != dnnl_success) return internalError(what_ + ": dnnl_sgemm failed with status " + std::to_string(st));
        for (int64_t mo = 0; mo < m; ++mo) {
          const float bias = b != nullptr ? b[mo] : 0.0f;
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t a = 0; a < kh; ++a) {
              float* yr = yn + (mo * oh + (i0 + r) * kh + a) * ow;
              const float* z0 = z + (mo * kh + a) * kw * cols + r * wd;  // tap bb's row: z0 + bb * cols
              if (kw == 2) {
                interleavePairs(z0, z0 + cols, bias, yr, wd);
                continue;
              }
              for (int64_t bb = 0; bb < kw; ++bb) {
                const float* zr = z0 + bb * cols;
                for (int64_t j = 0; j < wd; ++j) yr[j * kw + bb] = zr[j] + bias;
              }
            }
          }
        }
      }
    }
    return Status::ok();
  }

  dnnl::engine& engine_;
  std::vector<float> scratch_;  ///< Z of the patch path
  std::string what_;
  ConvAttrs attrs_;
  const ir::Tensor* constW_ = nullptr;  ///< a constant W (float32, or widened into floatW_)
  ir::Tensor floatW_;
  std::vector<std::unique_ptr<DeconvPlan>> plans_;
};

}  // namespace

void registerConvTransposeKernels(KernelRegistry& registry) {
  registry.add("", "ConvTranspose", 1, ConvTransposeKernel::create);
}

}  // namespace whittle::runtime::cpu
