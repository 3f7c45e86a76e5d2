// com.whittle.internal QLinearPRelu(X, X_scale, X_zero_point, slope, Y_scale, Y_zero_point) -> Y:
// the QDQ group Q(PRelu(DQ(X), slope)) on the 8-bit tensor, for uint8 or int8 X and Y with
// per-tensor parameters and a float slope of one value or one per channel (axis 1; axis 0 of a
// 1-D X). The QDQ lowering writes it (src/runtime/lower_qdq_prelu.cpp) so that MTCNN's
// Conv -> PRelu -> MaxPool -> Conv chains stay int8: a per-channel slope does not fit one
// 256-entry table (QLinearLookup).
//
// Each element is computed as the three float kernels compute it, operation by operation:
//   v = float(int32(x) - x_zp) * x_scale;  v = v < 0 ? v * slope[c] : v;
//   y = saturate(round_half_even(v / y_scale) + y_zp)
// so the output equals the QDQ group run node by node, byte for byte (the tests check it).
// In the runtime's channels-last int8 plan X and Y hold NHWC bytes under NCHW dims: one row of
// C channels per pixel, the slope read along the row.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu::quant {
namespace {

constexpr int64_t kParallelMin = 1 << 16;

struct PReluParams {
  float xScale;
  int32_t xZp;
  float yScale;
  int32_t yZp;
  float lo, hi;  // Y's range less its zero point
};

template <typename X>
inline float dequantizedPRelu(X x, float slope, const PReluParams& p) {
  float v = static_cast<float>(static_cast<int32_t>(x) - p.xZp) * p.xScale;
  return v < 0.0f ? v * slope : v;
}

/// A run of `n` elements, element i with slope[i] (a channels-last row).
template <typename X, typename Y>
WH_QUANT_SIMD void preluPerElement(const X* x, Y* y, int64_t n, const float* slope, PReluParams p) {
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<Y>(clampRoundAddZp(dequantizedPRelu(x[i], slope[i], p) / p.yScale, p.lo, p.hi, p.yZp));
  }
}

/// A run of `n` elements with one slope (a channel's plane, or a one-value slope).
template <typename X, typename Y>
WH_QUANT_SIMD void preluOneSlope(const X* x, Y* y, int64_t n, float slope, PReluParams p) {
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<Y>(clampRoundAddZp(dequantizedPRelu(x[i], slope, p) / p.yScale, p.lo, p.hi, p.yZp));
  }
}

class PReluKernel final : public Kernel {
 public:
  explicit PReluKernel(const KernelCreateInfo& info) : channelsLast_(info.channelsLastInt8(info.node.input(0))) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& slope = ctx.input(3);
    if (x.dtype() != ir::DataType::kUint8 && x.dtype() != ir::DataType::kInt8) {
      return ctx.error("X is " + typeName(x.dtype()) + ", not uint8 or int8");
    }
    if (!ctx.hasInput(5)) return ctx.error("Y_zero_point is required (it gives Y's type)");
    const ir::DataType yType = ctx.input(5).dtype();
    if (yType != ir::DataType::kUint8 && yType != ir::DataType::kInt8) {
      return ctx.error("Y_zero_point is " + typeName(yType) + ", not uint8 or int8");
    }
    if (slope.dtype() != ir::DataType::kFloat) return ctx.error("slope is " + typeName(slope.dtype()) + ", not float32");
    const int64_t axis = x.rank() >= 2 ? 1 : 0;
    const int64_t channels = x.rank() == 0 ? 1 : x.dims()[static_cast<size_t>(axis)];
    if (slope.numel() != 1 && slope.numel() != channels) {
      return ctx.error("slope has " + std::to_string(slope.numel()) + " values; X " + shapeToString(x.dims()) +
                       " needs 1 or " + std::to_string(channels));
    }
    PReluParams p{};
    WH_ASSIGN_OR_RETURN(p.xScale, scalarScale(ctx, 1, "X_scale"));
    WH_ASSIGN_OR_RETURN(p.xZp, scalarZeroPoint(ctx, 2, "X_zero_point"));
    WH_ASSIGN_OR_RETURN(p.yScale, scalarScale(ctx, 4, "Y_scale"));
    WH_ASSIGN_OR_RETURN(p.yZp, scalarZeroPoint(ctx, 5, "Y_zero_point"));
    const IntRange range = *intRange(yType);
    p.lo = static_cast<float>(range.lo - p.yZp);
    p.hi = static_cast<float>(range.hi - p.yZp);
    ir::Tensor& y = ctx.allocateOutput(0, yType, x.dims());
    if (x.dtype() == ir::DataType::kUint8) return dispatchY<uint8_t>(x, y, slope, channels, p);
    return dispatchY<int8_t>(x, y, slope, channels, p);
  }

 private:
  template <typename X>
  Status dispatchY(const ir::Tensor& x, ir::Tensor& y, const ir::Tensor& slope, int64_t channels, const PReluParams& p) {
    if (y.dtype() == ir::DataType::kUint8) {
      apply(x.data<X>(), y.mutableData<uint8_t>(), x, slope, channels, p);
    } else {
      apply(x.data<X>(), y.mutableData<int8_t>(), x, slope, channels, p);
    }
    return Status::ok();
  }

  template <typename X, typename Y>
  void apply(const X* src, Y* dst, const ir::Tensor& x, const ir::Tensor& slope, int64_t channels, const PReluParams& p) {
    const int64_t n = x.numel();
    const float* s = slope.data<float>();
    if (slope.numel() == 1 || n == 0) {
      constexpr int64_t kChunk = 1 << 15;
      const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * kChunk;
        preluOneSlope(src + begin, dst + begin, std::min(kChunk, n - begin), s[0], p);
      }
      return;
    }
    // Channels last, or no elements after the channel axis ([N, C]): rows of C channels, run as
    // stretches of whole rows with the slope repeated along them, so that the vector loop does
    // not stop at every row of a few dozen channels (MTCNN's 28, 48) for a scalar tail.
    const int64_t inner = n / (channels * (x.rank() >= 2 ? x.dims()[0] : 1));
    if (channelsLast_ || inner == 1) {
      const int64_t rows = n / channels;
      const int64_t rowsPerRun = std::max<int64_t>(1, kRunElements / channels);
      if (repeatedSlope_.size() != static_cast<size_t>(rowsPerRun * channels) ||
          !std::equal(s, s + channels, repeatedSlope_.begin())) {
        repeatedSlope_.resize(static_cast<size_t>(rowsPerRun * channels));
        for (int64_t r = 0; r < rowsPerRun; ++r) std::copy(s, s + channels, repeatedSlope_.begin() + r * channels);
      }
      const float* slopes = repeatedSlope_.data();
      const int64_t runs = (rows + rowsPerRun - 1) / rowsPerRun;
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t k = 0; k < runs; ++k) {
        const int64_t begin = k * rowsPerRun * channels;
        preluPerElement(src + begin, dst + begin, std::min(rowsPerRun * channels, n - begin), slopes, p);
      }
      return;
    }
    // Channels first: a plane of `inner` elements per (batch, channel), one slope each.
    const int64_t planes = n / inner;
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t k = 0; k < planes; ++k) preluOneSlope(src + k * inner, dst + k * inner, inner, s[k % channels], p);
  }

  static constexpr int64_t kRunElements = 1024;
  bool channelsLast_;
  std::vector<float> repeatedSlope_;  // the slope over as many whole rows as fit kRunElements
};

}  // namespace

void registerQuantPReluKernels(KernelRegistry& registry) {
  registry.add(kInternalDomain, "QLinearPRelu", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<PReluKernel>(info));
  });
}

}  // namespace whittle::runtime::cpu::quant
