// Conv through cuDNN: 1-D and 2-D convolutions (1-D as 2-D with height 1), grouped and
// depthwise, float32 (CUDNN_FMA_MATH: no TF32) and float16 (tensor cores, float32
// accumulation), bias added by cudnnAddTensor. Descriptors and the algorithm are chosen when
// the input shape changes and kept for the runs after.
#include "cuda/cuda_common.h"

namespace whittle::runtime::cuda {
namespace {

using ir::DataType;

class ConvKernel final : public Kernel {
 public:
  ~ConvKernel() override {
    if (x_) (void)cudnnDestroyTensorDescriptor(x_);
    if (y_) (void)cudnnDestroyTensorDescriptor(y_);
    if (b_) (void)cudnnDestroyTensorDescriptor(b_);
    if (w_) (void)cudnnDestroyFilterDescriptor(w_);
    if (conv_) (void)cudnnDestroyConvolutionDescriptor(conv_);
  }

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& w = ctx.input(1);
    WH_RETURN_IF_ERROR(checkDtype(ctx.describe(), "input", x.dtype(), {DataType::kFloat, DataType::kFloat16}));
    if (w.dtype() != x.dtype()) return ctx.error("X and W differ in type");
    if ((x.rank() != 3 && x.rank() != 4) || w.rank() != x.rank()) {
      return ctx.unsupported("only 1-D and 2-D convolutions are supported by the cuda runtime");
    }
    if (x.dims() != planned_ || w.dims() != plannedW_ || x.dtype() != plannedType_) {
      WH_RETURN_IF_ERROR(plan(ctx, x, w));
    }
    std::vector<int64_t> outDims = {outN_, outC_, outH_, outW_};
    if (x.rank() == 3) outDims = {outN_, outC_, outW_};
    WH_ASSIGN_OR_RETURN(ir::Tensor * y, newOutput(ctx, 0, x.dtype(), outDims));
    CudaContext& c = cudaContext(ctx);
    void* workspace = nullptr;
    if (workspaceBytes_ > 0) {
      WH_ASSIGN_OR_RETURN(workspace, c.workspace(workspaceBytes_, ctx.describe()));
    }
    const float one = 1.0f, zero = 0.0f;
    WH_CUDNN(ctx.describe(), cudnnConvolutionForward(c.cudnn(), &one, x_, dptr(x), w_, dptr(w), conv_, algo_, workspace,
                                                     workspaceBytes_, &zero, y_, dptr(*y)));
    if (ctx.hasInput(2)) {
      const ir::Tensor& bias = ctx.input(2);
      if (bias.dtype() != x.dtype() || bias.numel() != outC_) return ctx.error("B must have one value per output channel");
      WH_CUDNN(ctx.describe(), cudnnAddTensor(c.cudnn(), &one, b_, dptr(bias), &one, y_, dptr(*y)));
    }
    return Status::ok();
  }

 private:
  Status plan(KernelContext& ctx, const ir::Tensor& x, const ir::Tensor& w) {
    const std::string where = ctx.describe();
    const ir::Node& node = ctx.node();
    const bool oneD = x.rank() == 3;
    // As 2-D: [N, C, H, W] with H = 1 for 1-D.
    const int64_t n = x.dims()[0], ch = x.dims()[1], h = oneD ? 1 : x.dims()[2], wd = x.dims().back();
    const int64_t m = w.dims()[0], kh = oneD ? 1 : w.dims()[2], kw = w.dims().back();
    const int64_t group = node.attrInt("group", 1);
    if (group < 1 || ch != w.dims()[1] * group || m % group != 0) return ctx.error("channels do not match W and group");
    const size_t spatial = oneD ? 1 : 2;
    auto strides = node.attrInts("strides", std::vector<int64_t>(spatial, 1));
    auto dil = node.attrInts("dilations", std::vector<int64_t>(spatial, 1));
    auto pads = node.attrInts("pads", std::vector<int64_t>(2 * spatial, 0));
    if (strides.size() != spatial || dil.size() != spatial || pads.size() != 2 * spatial) {
      return ctx.error("strides, dilations or pads have the wrong length");
    }
    const std::string autoPad = node.attrString("auto_pad", "NOTSET");
    std::vector<int64_t> in = oneD ? std::vector<int64_t>{wd} : std::vector<int64_t>{h, wd};
    std::vector<int64_t> ks = oneD ? std::vector<int64_t>{kw} : std::vector<int64_t>{kh, kw};
    std::vector<int64_t> padBegin(spatial), padEnd(spatial);
    for (size_t i = 0; i < spatial; ++i) {
      if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
        const int64_t out = (in[i] + strides[i] - 1) / strides[i];
        const int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + (ks[i] - 1) * dil[i] + 1 - in[i]);
        padBegin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
        padEnd[i] = total - padBegin[i];
      } else if (autoPad == "VALID") {
        padBegin[i] = padEnd[i] = 0;
      } else {
        padBegin[i] = pads[i];
        padEnd[i] = pads[i + spatial];
      }
      if (padBegin[i] != padEnd[i]) {
        return ctx.unsupported("asymmetric padding is not supported by the cuda runtime (cuDNN pads both sides alike)");
      }
    }
    const int ph = oneD ? 0 : static_cast<int>(padBegin[0]), pw = static_cast<int>(padBegin.back());
    const int sh = oneD ? 1 : static_cast<int>(strides[0]), sw = static_cast<int>(strides.back());
    const int dh = oneD ? 1 : static_cast<int>(dil[0]), dw = static_cast<int>(dil.back());
    const cudnnDataType_t type = x.dtype() == DataType::kFloat16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    if (!x_) {
      WH_CUDNN(where, cudnnCreateTensorDescriptor(&x_));
      WH_CUDNN(where, cudnnCreateTensorDescriptor(&y_));
      WH_CUDNN(where, cudnnCreateTensorDescriptor(&b_));
      WH_CUDNN(where, cudnnCreateFilterDescriptor(&w_));
      WH_CUDNN(where, cudnnCreateConvolutionDescriptor(&conv_));
    }
    auto i32 = [](int64_t v) { return static_cast<int>(v); };
    WH_CUDNN(where, cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NCHW, type, i32(n), i32(ch), i32(h), i32(wd)));
    WH_CUDNN(where, cudnnSetFilter4dDescriptor(w_, type, CUDNN_TENSOR_NCHW, i32(m), i32(w.dims()[1]), i32(kh), i32(kw)));
    WH_CUDNN(where, cudnnSetConvolution2dDescriptor(conv_, ph, pw, sh, sw, dh, dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    WH_CUDNN(where, cudnnSetConvolutionGroupCount(conv_, static_cast<int>(group)));
    WH_CUDNN(where, cudnnSetConvolutionMathType(conv_, type == CUDNN_DATA_HALF ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    int on = 0, oc = 0, oh = 0, ow = 0;
    WH_CUDNN(where, cudnnGetConvolution2dForwardOutputDim(conv_, x_, w_, &on, &oc, &oh, &ow));
    WH_CUDNN(where, cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NCHW, type, on, oc, oh, ow));
    WH_CUDNN(where, cudnnSetTensor4dDescriptor(b_, CUDNN_TENSOR_NCHW, type, 1, oc, 1, 1));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    WH_CUDNN(where, cudnnGetConvolutionForwardAlgorithm_v7(cudaContext(ctx).cudnn(), x_, w_, conv_, y_,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
    bool chosen = false;
    for (int i = 0; i < found && !chosen; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      // float32 must not use tensor-op (TF32) math.
      if (type == CUDNN_DATA_FLOAT && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
      algo_ = perf[i].algo;
      // float32 keeps FMA math whatever the heuristic reports (default math may mean TF32).
      WH_CUDNN(where, cudnnSetConvolutionMathType(conv_, type == CUDNN_DATA_FLOAT ? CUDNN_FMA_MATH : perf[i].mathType));
      chosen = true;
    }
    if (!chosen) return unimplemented(where + ": cuDNN has no algorithm for this convolution");
    WH_CUDNN(where, cudnnGetConvolutionForwardWorkspaceSize(cudaContext(ctx).cudnn(), x_, w_, conv_, y_, algo_, &workspaceBytes_));
    outN_ = on;
    outC_ = oc;
    outH_ = oh;
    outW_ = ow;
    planned_ = x.dims();
    plannedW_ = w.dims();
    plannedType_ = x.dtype();
    return Status::ok();
  }

  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, b_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnConvolutionFwdAlgo_t algo_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t workspaceBytes_ = 0;
  int64_t outN_ = 0, outC_ = 0, outH_ = 0, outW_ = 0;
  std::vector<int64_t> planned_, plannedW_;
  DataType plannedType_ = DataType::kUndefined;
};

}  // namespace

void registerConvKernels(KernelRegistry& r) {
  r.add("", "Conv", 1, [](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<ConvKernel>());
  });
}

}  // namespace whittle::runtime::cuda
