// Conv and the lowering's FusedConv on oneDNN.
//
// Weights are packed once into the layout the primitive prefers (format_tag::any); the
// primitive is created per input shape and cached. oneDNN's fastest float32 convolutions on
// AVX-512 (brgconv) read and write channels-last activations, so the primitive always runs
// channels last; inputs and outputs in ONNX order are reordered at the edges. The CPU
// lowering (src/runtime/lowering.cpp) keeps values between convolutions channels last, so
// inside a chain there is nothing to reorder.
//
// FusedConv (domain com.whittle.internal) = Conv + an epilogue run as oneDNN post-ops:
//   attributes: every Conv attribute, plus
//     post_ops         strings  activations (Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid,
//                               HardSwish, Elu, Swish, Gelu, Linear) and at most one "Sum", in order
//     post_op_params   floats   two per post-op (LeakyRelu/Elu alpha, Clip min/max,
//                               HardSigmoid alpha/beta, Linear alpha/beta: alpha * y + beta)
//     channels_last_in / channels_last_out / channels_last_sum   ints   layouts of X, Y, Z
//                               (0 channels first, 1 channels last, 2 blocked: [N, C/16, H, W, 16])
//     sum_in_place     int      Z has no other reader: its buffer may become Y's (so may it where
//                               the plan says Z dies here, KernelContext::inputDiesHere)
//   inputs: X, W, B (optional), Z (the Sum operand, same shape as Y)
//
// A float32 Conv with one input channel and a long kernel along one axis (kernel width at
// least kWindowGemmMinWidth, no groups, dilation or epilogue) runs as one GEMM over the
// windows of X: window o starts at o * stride in the padded row, so the windows are the rows
// of a matrix with leading dimension `stride` and Y = W [M, k] x windows^T (in chunks of at
// most `stride` taps when windows overlap, as a GEMM's leading dimension must cover a row;
// copied out a block of rows at a time when that would be more than a few chunks). onnx-asr's 44.1 -> 16 kHz resampler
// (160 filters of 475 taps, stride 441) took 1.2 ms a run on oneDNN 2.6's brgconv, which blocks over input channels.
// With constant weights the windows are always copied out and each block is a oneDNN matmul,
// windows x W^T, whose W^T is packed once at the first run (dnnl_sgemm packs both operands on
// every call); it writes a channels-last Y ([N, out, M]) directly and a channels-first one
// through a transposing copy of the block.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "cpu/conv_params.h"
#include "cpu/conv_reference.h"
#include "cpu/dnnl_glue.h"
#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

void registerConvTransposeKernels(KernelRegistry& registry);
void registerConvLayoutKernels(KernelRegistry& registry);

namespace {

using dt = dnnl::memory::data_type;

/// Sets the OpenMP thread count for the lifetime of the object: oneDNN sizes its work split
/// when a primitive is created, so primitives made at compile time must see the session's count.
class ScopedThreads {
 public:
  explicit ScopedThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~ScopedThreads() { omp_set_num_threads(saved_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int saved_;
};

/// A convolution prepared for one input shape.
struct ConvPlan {
  std::vector<int64_t> xDims;  ///< physical dims of X this plan was made for
  std::vector<int64_t> wDims;
  dnnl::memory::data_type act = dnnl::memory::data_type::f32;  ///< X, Y and Z: f32 or bf16
  ConvGeometry geo;
  std::vector<int64_t> yDims;  ///< physical dims of Y
  dnnl::convolution_forward conv;
  dnnl::memory src, wei, bia, dst;  ///< what the primitive reads and writes
  dnnl::memory userSrc, userDst, userSum, userWei;
  bool reorderSrc = false, reorderDst = false, sumSameDesc = true;
  ActivationReorder srcReorder, dstReorder, sumReorder;
  dnnl::reorder weiReorder;
  DnnlArgs args;
  std::shared_ptr<std::byte> srcHold, dstHold;  ///< scratch for reordered src / dst
  std::shared_ptr<std::byte> weiHold;           ///< the packed weights this plan reads
  bool oneThread = false;  ///< small enough that a second thread costs more than it saves
};

/// Below this many multiply-adds a convolution runs on one thread: waking a second thread
/// (OpenMP fork and join, passive waits on a shared machine) costs tens of microseconds,
/// what such a convolution takes in all. mnist-8's and the keyword-spotting models' Convs were
/// slower at 2 threads than at 1.
constexpr int64_t kOneThreadMacs = int64_t{1} << 20;

/// The shortest kernel the window GEMM takes (shorter ones run well on oneDNN).
constexpr int64_t kWindowGemmMinWidth = 32;

/// More chunks of `stride` taps than this and the window GEMM copies the windows out instead.
constexpr int64_t kWindowGemmMaxChunks = 4;
/// The copied windows' block, in floats (256 KiB: within L2 with the weights).
constexpr int64_t kWindowBlockFloats = int64_t{1} << 16;

/// Whether the window GEMM computes this convolution: one input channel, no groups or
/// dilation, 1-D, or 2-D with H = 1 in X and the kernel and no H padding.
bool windowGemmFits(const ConvGeometry& g) {
  if (g.group != 1 || g.src[1] != 1 || (g.src.size() != 3 && g.src.size() != 4)) return false;
  for (int64_t d : g.dilations) {
    if (d != 1) return false;
  }
  if (g.src.size() == 4 && (g.src[2] != 1 || g.kernel[0] != 1 || g.padBegin[0] != 0 || g.padEnd[0] != 0)) {
    return false;
  }
  const size_t a = g.src.size() - 3;  // the axis of the window
  return g.kernel[a] >= kWindowGemmMinWidth && g.padBegin[a] >= 0 && g.padEnd[a] >= 0 && g.dst.back() > 0;
}

int64_t convMacs(const ConvGeometry& g) {
  int64_t macs = g.dst[0] * g.dst[1] * (g.src[1] / std::max<int64_t>(g.group, 1));
  for (size_t i = 2; i < g.dst.size(); ++i) macs *= g.dst[i];
  for (int64_t k : g.kernel) macs *= k;
  return macs;
}

class ConvKernel final : public Kernel {
 public:
  static Expected<std::unique_ptr<Kernel>> create(const KernelCreateInfo& info);
  Status run(KernelContext& ctx) override;

 private:
  ConvKernel(const ir::Node& node, dnnl::engine& engine) : node_(node), engine_(engine) {}
  /// The oneDNN plan for these dims, with activations (X, Y, Z) in `act`: f32, or bf16 (native
  /// bfloat16 kernels, AVX-512 BF16 / AMX where the CPU has them; weights packed to bf16 too,
  /// bias and accumulation in f32).
  Expected<ConvPlan*> planFor(const std::vector<int64_t>& xDims, const std::vector<int64_t>& wDims,
                              dt act = dt::f32);
  /// Runs on oneDNN in float32, or in bfloat16 when X is bfloat16 (then B must be float32).
  /// Y goes to output 0, or to `floatOut` when given.
  Status runFloat32(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w, const ir::Tensor* b,
                    const ir::Tensor* z, bool mayTakeZ, ir::Tensor* floatOut);
  /// Runs the scalar reference in T (float or double). Y goes to output 0 or `floatOut`.
  template <typename T>
  Status runReference(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w, const ir::Tensor* b,
                      const ir::Tensor* z, ir::Tensor* floatOut);
  /// Whether Y may be written over Z's buffer: the lowering saw Z read by this node alone, or the
  /// plan knows this node reads it last (a residual block's input, also read by the block's
  /// first convolution, dies at the Add). runFloat32 checks the buffer itself.
  bool mayTakeZ(const KernelContext& ctx) const { return sumInPlace_ || (hasSum_ && ctx.inputDiesHere(3)); }
  /// The window GEMM (see the top of the file) when it fits X's dims; false when it does not.
  Expected<bool> tryWindowGemm(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w, const ir::Tensor* b);

  const ir::Node& node_;
  dnnl::engine& engine_;
  std::string what_;
  ConvAttrs attrs_;
  std::vector<ConvPostOp> postOps_;
  bool hasSum_ = false;
  bool sumInPlace_ = false;
  Layout inLayout_ = Layout::kChannelsFirst;
  Layout outLayout_ = Layout::kChannelsFirst;
  Layout sumLayout_ = Layout::kChannelsFirst;
  const ir::Tensor* constW_ = nullptr;
  std::vector<float> constBias_;  ///< float32 copy of a constant B
  bool hasConstBias_ = false;
  ir::Tensor floatW_;  ///< float32 copy of a constant W (float16/bfloat16 models)
  /// Packed weights, by the descriptor the primitive asked for.
  dnnl::memory::desc packedDesc_;
  dnnl::memory packed_;
  std::shared_ptr<std::byte> packedHold_;
  std::vector<std::unique_ptr<ConvPlan>> plans_;
  /// The window GEMM's decision for the last X dims, and the padded row it reads.
  std::vector<int64_t> windowXDims_;
  std::optional<ConvGeometry> windowGeo_;
  std::vector<float> windowRow_;
  std::vector<float> windowBlock_;  ///< copied windows, a block of rows (overlapping windows)
  /// The window GEMM of a block of `rows` windows as a matmul with packed W^T (constant W,
  /// channels-last Y); one per block height (a full block and the last one).
  struct WindowMatmul {
    int64_t rows = 0;
    bool bias = false;
    dnnl::matmul primitive;
    dnnl::memory src, wei, dst, biasMemory;
    DnnlArgs args;
  };
  Expected<WindowMatmul*> windowMatmulFor(int64_t rows, int64_t k, int64_t m, bool bias, int threads);
  std::vector<std::unique_ptr<WindowMatmul>> windowMatmuls_;
  std::vector<float> windowOut_;  ///< a block's [rows, M] product when Y is channels first
  /// W^T [k, M] packed, by the descriptor the matmul asked for.
  std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> windowPacked_;
};

/// The ONNX W dims as oneDNN weight dims: [G, M/G, C/G, k...] for grouped convolutions.
/// The geometry oneDNN is asked for. A 2-D convolution along H alone (W = 1 in X, Y and the
/// kernel, no W padding) is asked for along W instead: the same memory in both layouts
/// ([N, C, H, 1] and [N, C, 1, H]; [N, H, 1, C] and [N, 1, H, C]; weights too), and brgconv
/// blocks along the output width (magika's 5x1 Conv over 512x1 ran 3x faster).
ConvGeometry dnnlGeometry(const ConvGeometry& g) {
  if (g.src.size() != 4 || g.src[3] != 1 || g.dst[3] != 1 || g.wei[3] != 1 || g.padBegin[1] != 0 ||
      g.padEnd[1] != 0 || g.src[2] == 1) {
    return g;
  }
  ConvGeometry d = g;
  std::swap(d.src[2], d.src[3]);
  std::swap(d.dst[2], d.dst[3]);
  std::swap(d.wei[2], d.wei[3]);
  for (std::vector<int64_t>* v : {&d.kernel, &d.strides, &d.dilations, &d.padBegin, &d.padEnd}) {
    if (v->size() == 2) std::swap((*v)[0], (*v)[1]);
  }
  return d;
}

dnnl::memory::dims weightDims(const ConvGeometry& g) {
  dnnl::memory::dims d;
  if (g.group > 1) {
    d.push_back(g.group);
    d.push_back(g.wei[0] / g.group);
  } else {
    d.push_back(g.wei[0]);
  }
  d.insert(d.end(), g.wei.begin() + 1, g.wei.end());
  return d;
}

dnnl::memory::dims minusOne(const std::vector<int64_t>& v) {
  dnnl::memory::dims d;
  for (int64_t x : v) d.push_back(x - 1);
  return d;
}

Expected<std::unique_ptr<Kernel>> ConvKernel::create(const KernelCreateInfo& info) {
  std::unique_ptr<ConvKernel> k(new ConvKernel(info.node, engineOf(info.context)));
  const ir::Node& node = info.node;
  k->what_ = node.describe();
  WH_ASSIGN_OR_RETURN(k->attrs_, readConvAttrs(node));
  WH_ASSIGN_OR_RETURN(k->postOps_, readConvPostOps(node));
  for (const ConvPostOp& op : k->postOps_) k->hasSum_ = k->hasSum_ || op.isSum();
  k->sumInPlace_ = node.attrInt("sum_in_place", 0) != 0;
  k->inLayout_ = layoutAttr(node, "channels_last_in");
  k->outLayout_ = layoutAttr(node, "channels_last_out");
  k->sumLayout_ = layoutAttr(node, "channels_last_sum");
  if (node.numInputs() < 2 || node.input(0) == nullptr || node.input(1) == nullptr) {
    return info.error("needs inputs X and W");
  }
  if (k->hasSum_ && node.input(3) == nullptr) return info.error("has a Sum post-op but no input Z");
  ir::DataType xType = info.inputTypes.empty() ? ir::DataType::kUndefined : info.inputTypes[0];
  if (xType != ir::DataType::kUndefined && xType != ir::DataType::kFloat && xType != ir::DataType::kFloat16 &&
      xType != ir::DataType::kBFloat16 && xType != ir::DataType::kDouble) {
    return info.unsupported("dtype " + std::string(ir::dataTypeName(xType)) + " is not supported");
  }
  k->constW_ = info.constantInput(1);
  if (const ir::Tensor* b = info.constantInput(2); b != nullptr && b->dtype() != ir::DataType::kDouble) {
    ir::Tensor bf = toFloat32(*b);
    k->constBias_.assign(bf.data<float>(), bf.data<float>() + bf.numel());
    k->hasConstBias_ = true;
  }
  if (k->constW_ != nullptr && k->constW_->dtype() != ir::DataType::kFloat &&
      k->constW_->dtype() != ir::DataType::kDouble) {
    k->floatW_ = toFloat32(*k->constW_);
  }
  // With a static input shape, pack the weights and create the primitive now.
  const ir::Value* x = node.input(0);
  auto xDims = x->type().staticDims();
  if (k->constW_ != nullptr && xDims &&
      (xType == ir::DataType::kFloat || xType == ir::DataType::kFloat16 || xType == ir::DataType::kBFloat16)) {
    bool empty = false;
    for (int64_t d : *xDims) empty = empty || d == 0;
    if (!empty && logicalDims(*xDims, k->inLayout_).size() == k->constW_->dims().size()) {
      ScopedThreads threads(info.threads);
      // Value types describe the stored tensor: channels last when the lowering made it so.
      auto plan = k->planFor(*xDims, k->constW_->dims(), xType == ir::DataType::kBFloat16 ? dt::bf16 : dt::f32);
      if (!plan.isOk()) return plan.status();
    }
  }
  return std::unique_ptr<Kernel>(std::move(k));
}

Expected<ConvPlan*> ConvKernel::planFor(const std::vector<int64_t>& xDims, const std::vector<int64_t>& wDims,
                                        dt act) {
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i]->xDims == xDims && plans_[i]->wDims == wDims && plans_[i]->act == act) {
      if (i != 0)
        std::rotate(plans_.begin(), plans_.begin() + static_cast<std::ptrdiff_t>(i),
                    plans_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      return plans_.front().get();
    }
  }
  auto plan = std::make_unique<ConvPlan>();
  plan->xDims = xDims;
  plan->wDims = wDims;
  plan->act = act;
  WH_ASSIGN_OR_RETURN(plan->geo, resolveConv(attrs_, logicalDims(xDims, inLayout_), wDims, what_));
  const ConvGeometry& g = plan->geo;
  plan->yDims = physicalDims(g.dst, outLayout_);
  const ConvGeometry d = dnnlGeometry(g);  // what oneDNN is asked for: the same memory
  // oneDNN fixes a primitive's threads when it is created: a small one is created on one.
  plan->oneThread = convMacs(g) < kOneThreadMacs;
  std::optional<ScopedThreads> oneThread;
  if (plan->oneThread) oneThread.emplace(1);
  Status status = dnnlCall(what_, [&] {
    size_t rank = d.src.size();
    dnnl::memory::desc weiAny(weightDims(d), act, dnnl::memory::format_tag::any);
    dnnl::memory::desc biaDesc = hasConstBias_ || node_.input(2) != nullptr
                                     ? dnnl::memory::desc({d.dst[1]}, dt::f32, dnnl::memory::format_tag::x)
                                     : dnnl::memory::desc();
    dnnl::post_ops chain;
    appendDnnlPostOps(postOps_, chain);
    dnnl::primitive_attr attr;
    attr.set_post_ops(chain);
    auto makePd = [&](dnnl::memory::desc src, dnnl::memory::desc dst) {
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                           weiAny, biaDesc, dst, toDnnlDims(d.strides), minusOne(d.dilations),
                                           toDnnlDims(d.padBegin), toDnnlDims(d.padEnd));
      return dnnl::convolution_forward::primitive_desc(desc, attr, engine_);
    };
    // Channels last first (brgconv); oneDNN's own choice when that only has a reference kernel.
    // A convolution the lowering put in a blocked chain runs blocked (nChw16c jit kernels), X
    // read in its own layout where oneDNN takes it (an image's 3 channels first), else reordered.
    const bool blocked = inLayout_ == Layout::kBlocked16 || outLayout_ == Layout::kBlocked16 ||
                         (hasSum_ && sumLayout_ == Layout::kBlocked16);
    const Layout run = blocked ? Layout::kBlocked16 : Layout::kChannelsLast;
    // One channel is the same memory channels first or last: oneDNN's blocked kernels take it
    // channels first (DNSMOS's 1 -> 32 first layer; as channels last it fell to brgconv and a
    // 2 ms reorder of its output).
    const Layout srcLayout = blocked && d.src[1] == 1 ? Layout::kChannelsFirst : inLayout_;
    dnnl::convolution_forward::primitive_desc pd =
        makePd(activationDesc(d.src, act, blocked ? srcLayout : run), activationDesc(d.dst, act, run));
    for (Layout src : {Layout::kChannelsFirst, run}) {
      if (!blocked || srcLayout == run || !isReferenceImpl(pd.impl_info_str())) break;
      pd = makePd(activationDesc(d.src, act, src), activationDesc(d.dst, act, run));
    }
    if (isReferenceImpl(pd.impl_info_str()) && rank > 3) {
      dnnl::memory::desc anySrc(toDnnlDims(d.src), act, dnnl::memory::format_tag::any);
      dnnl::memory::desc anyDst(toDnnlDims(d.dst), act, dnnl::memory::format_tag::any);
      auto other = makePd(anySrc, anyDst);
      if (!isReferenceImpl(other.impl_info_str())) pd = other;
    }
    plan->conv = dnnl::convolution_forward(pd);
    plan->userSrc = dnnl::memory(activationDesc(d.src, act, srcLayout), engine_, DNNL_MEMORY_NONE);
    plan->userDst = dnnl::memory(activationDesc(d.dst, act, outLayout_), engine_, DNNL_MEMORY_NONE);
    plan->reorderSrc = pd.src_desc() != plan->userSrc.get_desc();
    plan->reorderDst = pd.dst_desc() != plan->userDst.get_desc();
    plan->src = plan->reorderSrc ? longLivedMemory(pd.src_desc(), engine_, plan->srcHold) : plan->userSrc;
    plan->dst = plan->reorderDst ? longLivedMemory(pd.dst_desc(), engine_, plan->dstHold) : plan->userDst;
    if (plan->reorderSrc) plan->srcReorder = ActivationReorder(plan->userSrc, plan->src, d.src);
    if (plan->reorderDst) plan->dstReorder = ActivationReorder(plan->dst, plan->userDst, d.dst);
    if (hasSum_) {
      plan->userSum = dnnl::memory(activationDesc(d.dst, act, sumLayout_), engine_, DNNL_MEMORY_NONE);
      plan->sumSameDesc = plan->userSum.get_desc() == pd.dst_desc();
      if (!plan->sumSameDesc) plan->sumReorder = ActivationReorder(plan->userSum, plan->dst, d.dst);
    }
    // Weights: packed once when constant, reordered per run otherwise.
    dnnl::memory::dims weiDims = weightDims(d);
    // Constant weights are packed from their float32 copy; runtime weights come in X's type.
    dnnl::memory::desc userWeiDesc =
        plainDesc(std::vector<int64_t>(weiDims.begin(), weiDims.end()), constW_ != nullptr ? dt::f32 : act);
    if (constW_ != nullptr) {
      if (!packed_ || packedDesc_ != pd.weights_desc()) {
        const ir::Tensor& wf = floatW_.dtype() == ir::DataType::kFloat ? floatW_ : *constW_;
        dnnl::memory user(userWeiDesc, engine_, const_cast<std::byte*>(wf.rawData()));
        packed_ = longLivedMemory(pd.weights_desc(), engine_, packedHold_);
        dnnl::stream s(engine_);
        dnnl::reorder(user, packed_).execute(s, user, packed_);
        s.wait();
        packedDesc_ = pd.weights_desc();
      }
      plan->wei = packed_;
      plan->weiHold = packedHold_;
    } else {
      plan->userWei = dnnl::memory(userWeiDesc, engine_, DNNL_MEMORY_NONE);
      if (userWeiDesc != pd.weights_desc()) {
        plan->wei = dnnl::memory(pd.weights_desc(), engine_);
        plan->weiReorder = dnnl::reorder(plan->userWei, plan->wei);
      } else {
        plan->wei = plan->userWei;
      }
    }
    plan->args.set(DNNL_ARG_SRC, plan->src);
    plan->args.set(DNNL_ARG_WEIGHTS, plan->wei);
    plan->args.set(DNNL_ARG_DST, plan->dst);
    if (!biaDesc.is_zero()) {
      plan->bia = hasConstBias_ ? dnnl::memory(biaDesc, engine_, constBias_.data()) : dnnl::memory(biaDesc, engine_);
      plan->args.set(DNNL_ARG_BIAS, plan->bia);
    }
  });
  WH_RETURN_IF_ERROR(status);
  if (plans_.size() >= 8) plans_.pop_back();
  plans_.insert(plans_.begin(), std::move(plan));
  return plans_.front().get();
}

Status ConvKernel::run(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  const ir::Tensor& w = ctx.input(1);
  const ir::Tensor* b = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
  const ir::Tensor* z = hasSum_ && ctx.hasInput(3) ? &ctx.input(3) : nullptr;
  if (hasSum_ && z == nullptr) return ctx.error("input Z is missing");
  ir::DataType type = x.dtype();
  if (w.dtype() != type) {
    return ctx.error("W is " + std::string(ir::dataTypeName(w.dtype())) + " but X is " +
                     std::string(ir::dataTypeName(type)));
  }
  if (b != nullptr && b->dtype() != type) return ctx.error("B must have the dtype of X");
  if (z != nullptr && z->dtype() != type) return ctx.error("Z must have the dtype of X");
  if (logicalDims(x.dims(), inLayout_).size() != w.dims().size() || w.rank() < 3) {
    return ctx.error("X " + shapeToString(x.dims()) + " and W " + shapeToString(w.dims()) +
                     " must have the same rank, at least 3");
  }
  if (type == ir::DataType::kDouble) return runReference<double>(ctx, x, w, b, z, nullptr);
  if (type != ir::DataType::kFloat && type != ir::DataType::kFloat16 && type != ir::DataType::kBFloat16) {
    return ctx.unsupported("dtype " + std::string(ir::dataTypeName(type)) + " is not supported");
  }
  bool empty = x.empty() || w.empty();
  if (type == ir::DataType::kFloat && !empty && postOps_.empty() && outLayout_ != Layout::kBlocked16) {
    WH_ASSIGN_OR_RETURN(bool done, tryWindowGemm(ctx, x, w, b));
    if (done) return Status::ok();
  }
  if (type == ir::DataType::kFloat) {
    return empty ? runReference<float>(ctx, x, w, b, z, nullptr) : runFloat32(ctx, x, w, b, z, mayTakeZ(ctx), nullptr);
  }
  if (type == ir::DataType::kBFloat16 && !empty) {  // native bfloat16 (f32 bias)
    std::optional<ir::Tensor> bf;
    if (b != nullptr) bf = toFloat32(*b);
    return runFloat32(ctx, x, w, bf ? &*bf : nullptr, z, mayTakeZ(ctx), nullptr);
  }
  // float16: compute in float32 and round once at the end.
  ir::Tensor xf = toFloat32(x);
  ir::Tensor wf = constW_ != nullptr && !empty ? floatW_ : toFloat32(w);
  std::optional<ir::Tensor> bf, zf;
  if (b != nullptr) bf = toFloat32(*b);
  if (z != nullptr) zf = toFloat32(*z);
  ir::Tensor out;
  if (empty) {
    WH_RETURN_IF_ERROR(runReference<float>(ctx, xf, wf, bf ? &*bf : nullptr, zf ? &*zf : nullptr, &out));
  } else {
    WH_RETURN_IF_ERROR(runFloat32(ctx, xf, wf, bf ? &*bf : nullptr, zf ? &*zf : nullptr, /*mayTakeZ=*/false, &out));
  }
  ctx.setOutput(0, fromFloat32(out, type));
  return Status::ok();
}

Status ConvKernel::runFloat32(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w, const ir::Tensor* b,
                              const ir::Tensor* z, bool mayTakeZ, ir::Tensor* floatOut) {
  const bool bf16 = x.dtype() == ir::DataType::kBFloat16;
  WH_ASSIGN_OR_RETURN(ConvPlan * plan, planFor(x.dims(), w.dims(), bf16 ? dt::bf16 : dt::f32));
  if (b != nullptr && b->numel() != plan->geo.dst[1]) {
    return ctx.error("B has " + std::to_string(b->numel()) + " values, expected " + std::to_string(plan->geo.dst[1]));
  }
  if (z != nullptr && z->dims() != physicalDims(plan->geo.dst, sumLayout_)) {
    return ctx.error("Z " + shapeToString(z->dims()) + " does not match the output " +
                     shapeToString(physicalDims(plan->geo.dst, sumLayout_)));
  }
  // Where Y goes: Z's own buffer when the lowering said nobody else reads Z and it is ours.
  ir::Tensor* y = nullptr;
  ir::Tensor taken;
  bool inPlace = mayTakeZ && z != nullptr && plan->sumSameDesc && !plan->reorderDst && sumLayout_ == outLayout_ &&
                 z->buffer() && z->buffer().use_count() == 1 && z->buffer()->writable();
  if (inPlace) {
    taken = *z;
    y = &taken;
  } else if (floatOut != nullptr) {
    *floatOut = ir::Tensor(x.dtype(), plan->yDims);
    y = floatOut;
  } else {
    y = &ctx.allocateOutput(0, x.dtype(), plan->yDims);
  }
  dnnl::stream& stream = streamOf(ctx.context());
  std::optional<ScopedThreads> oneThread;
  if (plan->oneThread) oneThread.emplace(1);
  Status status = dnnlCall(what_, [&] {
    plan->userSrc.set_data_handle(const_cast<std::byte*>(x.rawData()));
    plan->userDst.set_data_handle(y->rawData() == nullptr ? nullptr : const_cast<std::byte*>(y->rawData()));
    if (plan->reorderSrc) plan->srcReorder.execute(stream, plan->userSrc, plan->src);
    if (constW_ == nullptr) {
      plan->userWei.set_data_handle(const_cast<std::byte*>(w.rawData()));
      if (plan->weiReorder) plan->weiReorder.execute(stream, plan->userWei, plan->wei);
    }
    if (b != nullptr && !hasConstBias_) {
      std::memcpy(plan->bia.get_data_handle(), b->rawData(), static_cast<size_t>(b->numel()) * sizeof(float));
    }
    if (z != nullptr && !inPlace) {
      if (plan->sumSameDesc) {
        std::memcpy(plan->dst.get_data_handle(), z->rawData(), z->byteSize());
      } else {
        plan->userSum.set_data_handle(const_cast<std::byte*>(z->rawData()));
        plan->sumReorder.execute(stream, plan->userSum, plan->dst);
      }
    }
    plan->args.execute(plan->conv, stream);
    if (plan->reorderDst) plan->dstReorder.execute(stream, plan->dst, plan->userDst);
    stream.wait();
  });
  WH_RETURN_IF_ERROR(status);
  if (inPlace) ctx.setOutput(0, std::move(taken));
  return Status::ok();
}

Expected<bool> ConvKernel::tryWindowGemm(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w,
                                         const ir::Tensor* b) {
  if (x.dims() != windowXDims_) {  // decided once per X dims
    WH_ASSIGN_OR_RETURN(ConvGeometry g, resolveConv(attrs_, logicalDims(x.dims(), inLayout_), w.dims(), what_));
    windowXDims_ = x.dims();
    windowGeo_ = windowGemmFits(g) ? std::optional<ConvGeometry>(g) : std::nullopt;
  }
  if (!windowGeo_ || windowGeo_->wei != w.dims()) return false;
  const ConvGeometry& g = *windowGeo_;
  if (b != nullptr && b->numel() != g.dst[1]) {
    return ctx.error("B has " + std::to_string(b->numel()) + " values, expected " + std::to_string(g.dst[1]));
  }
  const size_t a = g.src.size() - 3;
  const int64_t batch = g.src[0], m = g.dst[1], len = g.src.back(), out = g.dst.back();
  const int64_t k = g.kernel[a], stride = g.strides[a], padB = g.padBegin[a];
  // One input channel and H = 1: X is the same memory in either layout; Y is [N, M, out]
  // channels first, [N, out, M] channels last.
  const bool lastOut = outLayout_ == Layout::kChannelsLast;
  ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, physicalDims(g.dst, outLayout_));
  const int64_t rowLen = (out - 1) * stride + k;  // the padded row's part the windows read
  windowRow_.assign(static_cast<size_t>(rowLen), 0.0f);
  const float* wp = w.data<float>();
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x.data<float>() + n * len;
    const int64_t from = std::max<int64_t>(0, -padB), to = std::min(len, rowLen - padB);
    if (to > from) std::memcpy(windowRow_.data() + padB + from, xn + from, static_cast<size_t>(to - from) * 4);
    float* yn = y.mutableData<float>() + n * m * out;
    const float beta = b != nullptr ? 1.0f : 0.0f;
    const bool packedW = constW_ != nullptr && constW_->dtype() == ir::DataType::kFloat;
    if (b != nullptr && !packedW) {
      const float* bp = b->data<float>();
      for (int64_t i = 0; i < m * out; ++i) yn[i] = lastOut ? bp[i % m] : bp[i / out];
    }
    if (packedW) {
      // Constant W: blocks of copied windows, each one matmul (bias included) with W^T packed once.
      const int64_t rows = std::min(out, std::max<int64_t>(16, kWindowBlockFloats / k));
      windowBlock_.resize(static_cast<size_t>(rows * k));
      for (int64_t o0 = 0; o0 < out; o0 += rows) {
        const int64_t count = std::min(rows, out - o0);
        for (int64_t o = 0; o < count; ++o) {
          std::memcpy(windowBlock_.data() + o * k, windowRow_.data() + (o0 + o) * stride, static_cast<size_t>(k) * 4);
        }
        WH_ASSIGN_OR_RETURN(WindowMatmul * mm, windowMatmulFor(count, k, m, b != nullptr, ctx.threads()));
        if (!lastOut) windowOut_.resize(static_cast<size_t>(count * m));
        mm->src.set_data_handle(windowBlock_.data());
        mm->dst.set_data_handle(lastOut ? yn + o0 * m : windowOut_.data());
        if (b != nullptr) mm->biasMemory.set_data_handle(const_cast<float*>(b->data<float>()));
        WH_RETURN_IF_ERROR(dnnlCall(what_, [&] { mm->args.execute(mm->primitive, streamOf(ctx.context())); }));
        if (lastOut) continue;
        // Channels-first Y [M, out]: the block's [count, M] rows go to columns o0 ... o0 + count.
        for (int64_t mi = 0; mi < m; ++mi) {
          float* dst = yn + mi * out + o0;
          for (int64_t o = 0; o < count; ++o) dst[o] = windowOut_[static_cast<size_t>(o * m + mi)];
        }
      }
      continue;
    }
    if (k > kWindowGemmMaxChunks * stride) {
      // Windows that overlap by most of their taps (basic-pitch's half-band filters: 256 taps,
      // stride 2) are copied out, a block of rows at a time, and each block is one GEMM with
      // all the taps: chunks of `stride` taps would each pass over all of Y (128 passes).
      const int64_t rows = std::max<int64_t>(16, kWindowBlockFloats / k);
      windowBlock_.resize(static_cast<size_t>(rows * k));
      for (int64_t o0 = 0; o0 < out; o0 += rows) {
        const int64_t count = std::min(rows, out - o0);
        for (int64_t o = 0; o < count; ++o) {
          std::memcpy(windowBlock_.data() + o * k, windowRow_.data() + (o0 + o) * stride, static_cast<size_t>(k) * 4);
        }
        const float* block = windowBlock_.data();
        dnnl_status_t st =
            lastOut ? dnnl_sgemm('N', 'T', count, m, k, 1.0f, block, k, wp, k, beta, yn + o0 * m, m)
                    : dnnl_sgemm('N', 'T', m, count, k, 1.0f, wp, k, block, k, beta, yn + o0, out);
        if (st != dnnl_success) return internalError(what_ + ": dnnl_sgemm failed with status " + std::to_string(st));
      }
      continue;
    }
    // The windows are [out, k] with leading dimension `stride`; a GEMM needs the leading
    // dimension to cover a row, so taps go in chunks of at most `stride`: chunk c reads
    // windows_c[o, j] = row[(o + c) * stride + j], a matrix with leading dimension `stride`.
    for (int64_t c0 = 0, chunk = 0; c0 < k; c0 += stride, ++chunk) {
      const int64_t taps = std::min(stride, k - c0);
      const float* win = windowRow_.data() + chunk * stride;
      const float beta0 = c0 == 0 ? beta : 1.0f;
      dnnl_status_t st = lastOut ? dnnl_sgemm('N', 'T', out, m, taps, 1.0f, win, stride, wp + c0, k, beta0, yn, m)
                                 : dnnl_sgemm('N', 'T', m, out, taps, 1.0f, wp + c0, k, win, stride, beta0, yn, out);
      if (st != dnnl_success) return internalError(what_ + ": dnnl_sgemm failed with status " + std::to_string(st));
    }
  }
  return true;
}

Expected<ConvKernel::WindowMatmul*> ConvKernel::windowMatmulFor(int64_t rows, int64_t k, int64_t m, bool bias,
                                                                int threads) {
  for (const auto& mm : windowMatmuls_) {
    if (mm->rows == rows && mm->bias == bias) return mm.get();
  }
  auto mm = std::make_unique<WindowMatmul>();
  mm->rows = rows;
  mm->bias = bias;
  Status status = dnnlCall(what_, [&] {
    using tag = dnnl::memory::format_tag;
    ScopedThreads scoped(rows * k * m < kOneThreadMacs ? 1 : threads);
    dnnl::memory::desc src({rows, k}, dt::f32, tag::ab), dst({rows, m}, dt::f32, tag::ab);
    dnnl::memory::desc wei({k, m}, dt::f32, tag::any), biasDesc({1, m}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
    auto desc = bias ? dnnl::matmul::desc(src, wei, biasDesc, dst) : dnnl::matmul::desc(src, wei, dst);
    dnnl::matmul::primitive_desc pd(desc, attr, engine_);
    mm->primitive = dnnl::matmul(pd);
    dnnl::memory::desc want = pd.weights_desc();
    auto found =
        std::find_if(windowPacked_.begin(), windowPacked_.end(), [&](const auto& p) { return p.first == want; });
    if (found == windowPacked_.end()) {
      // W [M, k] row major is W^T [k, M] with strides {1, k}.
      dnnl::memory::desc plain({k, m}, dt::f32, dnnl::memory::dims{1, k});
      dnnl::memory user(plain, engine_, const_cast<float*>(constW_->data<float>()));
      dnnl::memory packed(want, engine_);
      dnnl::stream stream(engine_);
      dnnl::reorder(user, packed).execute(stream, user, packed);
      stream.wait();
      windowPacked_.emplace_back(want, packed);
      found = windowPacked_.end() - 1;
    }
    mm->wei = found->second;
    mm->src = dnnl::memory(pd.src_desc(), engine_, DNNL_MEMORY_NONE);
    mm->dst = dnnl::memory(pd.dst_desc(), engine_, DNNL_MEMORY_NONE);
    mm->args.set(DNNL_ARG_SRC, mm->src);
    mm->args.set(DNNL_ARG_WEIGHTS, mm->wei);
    mm->args.set(DNNL_ARG_DST, mm->dst);
    if (bias) {
      mm->biasMemory = dnnl::memory(biasDesc, engine_, DNNL_MEMORY_NONE);
      mm->args.set(DNNL_ARG_BIAS, mm->biasMemory);
    }
  });
  WH_RETURN_IF_ERROR(status);
  windowMatmuls_.push_back(std::move(mm));
  return windowMatmuls_.back().get();
}

template <typename T>
Status ConvKernel::runReference(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w, const ir::Tensor* b,
                                const ir::Tensor* z, ir::Tensor* floatOut) {
  ir::DataType type = x.dtype();
  std::vector<int64_t> xLogical = logicalDims(x.dims(), inLayout_);
  WH_ASSIGN_OR_RETURN(ConvGeometry g, resolveConv(attrs_, xLogical, w.dims(), what_));
  if (b != nullptr && b->numel() != g.dst[1]) {
    return ctx.error("B has " + std::to_string(b->numel()) + " values, expected " + std::to_string(g.dst[1]));
  }
  std::vector<int64_t> yDims = physicalDims(g.dst, outLayout_);
  if (z != nullptr && z->dims() != physicalDims(g.dst, sumLayout_)) {
    return ctx.error("Z " + shapeToString(z->dims()) + " does not match the output " +
                     shapeToString(physicalDims(g.dst, sumLayout_)));
  }
  ir::Tensor xf(type, xLogical);
  permuteLayout(x.rawData(), xf.mutableRawData(), xLogical, inLayout_, Layout::kChannelsFirst, sizeof(T));
  ir::Tensor yf(type, g.dst);
  T* yp = yf.mutableData<T>();
  referenceConv<T>(g, xf.data<T>(), w.data<T>(), b != nullptr ? b->data<T>() : nullptr, yp);
  std::vector<T> zf;
  if (z != nullptr) {
    zf.resize(static_cast<size_t>(z->numel()));
    permuteLayout(z->rawData(), reinterpret_cast<std::byte*>(zf.data()), g.dst, sumLayout_, Layout::kChannelsFirst,
                  sizeof(T));
  }
  for (int64_t i = 0; i < yf.numel(); ++i) {
    double v = static_cast<double>(yp[i]);
    for (const ConvPostOp& op : postOps_)
      v = op.isSum() ? v + static_cast<double>(zf[static_cast<size_t>(i)]) : applyActivation(op, v);
    yp[i] = static_cast<T>(v);
  }
  ir::Tensor* out = nullptr;
  if (floatOut != nullptr) {
    *floatOut = ir::Tensor(type, yDims);
    out = floatOut;
  } else {
    out = &ctx.allocateOutput(0, type, yDims);
  }
  permuteLayout(yf.rawData(), out->mutableRawData(), g.dst, Layout::kChannelsFirst, outLayout_, sizeof(T));
  return Status::ok();
}

}  // namespace

void registerConvKernels(KernelRegistry& registry) {
  registry.add("", "Conv", 1, ConvKernel::create);
  registry.add(kInternalDomain, "FusedConv", 1, ConvKernel::create);
  registerConvTransposeKernels(registry);
  registerConvLayoutKernels(registry);
}

}  // namespace whittle::runtime::cpu
