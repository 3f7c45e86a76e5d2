// QLinearConv and ConvInteger.
//
//   acc[n, m, p] = sum_{c, k} (x[n, c, p*s + k*d - pad] - x_zp) * (w[m, c, k] - w_zp[m])
//                  (positions in the padding contribute 0: they hold x_zp)
//   ConvInteger: y = acc (int32)
//   QLinearConv: y = saturate(round_half_even(float(acc + bias[m]) * (x_scale * w_scale[m] / y_scale)) + y_zp)
//
// Fast path: a 2-D convolution with constant int8 weights whose zero points are 0 (or uint8
// weights whose zero points are all 128, shifted to int8) runs on a oneDNN int8 convolution on
// NHWC activations (brgconv / jit VNNI or AMX kernels): weights are packed once per input shape,
// per-channel output scales and the eltwise_round post-op give MLAS's requantisation, and the
// zero points go in as oneDNN zero points, or are folded into the bias when the convolution has
// no padding (bias' = bias - x_zp * sum_k w[m, k]). Any other constant weight zero point (per
// tensor or per channel, ConvInteger or QLinearConv): with w8 = w - 128 (uint8) or w (int8) and
// c_m = 128 - wz[m] (or -wz[m]),
//   acc[n, m, p] = conv(x - x_zp, w8)[n, m, p] + c_m * S[n, g(m), p],
//   S[n, g, p]   = sum over the group's channels and the taps of p's window inside x of (x - x_zp),
// so oneDNN runs the first term (int32 out, no bias, no scales) and windowSums() the second, exact
// in wrapping int32; QLinearConv then adds its bias and requantises element by element with
// requantize(), the reference's own arithmetic (ORT's quantize_static with WeightSymmetric=False
// gives such zero points, -128..127). ConvInteger's x_zero_point, often a DynamicQuantizeLinear
// output, is a run-time oneDNN zero point, so a new value does not rebuild the primitive.
// One or two input channels and a long kernel (openWakeWord's mel front end: 1 channel, a
// 512-tap window at stride 160) run as im2col + a oneDNN u8s8s32 matmul instead (gemmPreferred()):
// oneDNN's direct convolution takes 0.24 ms on [1, 1, 16000] * [257, 1, 512], the GEMM of the
// 97 x 512 patches 0.06 ms. int8 x goes in as uint8 (x ^ 0x80, zero point + 128) and
// padding as the zero point, so acc = A W8 - aZero * sum(W8) + c_m * S with S the row's sum of
// (a - aZero): exact int32, then requantize() as everywhere else.
// Everything else (3-D, runtime weights) runs the plain int32 reference below.
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstring>

#include "cpu/dnnl_glue.h"
#include "cpu/kernel_util.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu::quant {
namespace {

using ir::DataType;

// ---- the plain reference: int32 accumulation in NCHW, any number of spatial dims ----

template <typename X, typename W>
void referenceConvAcc(const X* x, const W* w, int32_t* acc, const std::vector<int64_t>& xDims, int64_t m, int64_t group,
                      const ConvGeometry& g, int32_t xZp, const std::vector<int32_t>& wZp) {
  // Pad the geometry to three spatial dims (d, h, w).
  auto at = [](const std::vector<int64_t>& v, size_t i, int64_t fallback) {
    const size_t off = 3 - v.size();
    return i < off ? fallback : v[i - off];
  };
  const std::vector<int64_t> inSp(xDims.begin() + 2, xDims.end());
  int64_t in[3], k[3], s[3], d[3], p[3], out[3];
  for (size_t i = 0; i < 3; ++i) {
    in[i] = at(inSp, i, 1);
    k[i] = at(g.kernel, i, 1);
    s[i] = at(g.strides, i, 1);
    d[i] = at(g.dilations, i, 1);
    p[i] = at(g.padsBegin, i, 0);
    out[i] = at(g.outSpatial, i, 1);
  }
  const int64_t n = xDims[0], c = xDims[1], cg = c / group, mg = m / group;
  const int64_t inSize = in[0] * in[1] * in[2], outSize = out[0] * out[1] * out[2], kSize = k[0] * k[1] * k[2];
#pragma omp parallel for collapse(2) if (n * m * outSize * cg * kSize > (1 << 20))
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oc = 0; oc < m; ++oc) {
      const int64_t grp = oc / mg;
      const int32_t wz = wZp.size() == 1 ? wZp[0] : wZp[static_cast<size_t>(oc)];
      int32_t* dst = acc + (b * m + oc) * outSize;
      for (int64_t o0 = 0; o0 < out[0]; ++o0) {
        for (int64_t o1 = 0; o1 < out[1]; ++o1) {
          for (int64_t o2 = 0; o2 < out[2]; ++o2) {
            int64_t sum = 0;
            for (int64_t ic = 0; ic < cg; ++ic) {
              const X* src = x + (b * c + grp * cg + ic) * inSize;
              const W* wk = w + (oc * cg + ic) * kSize;
              for (int64_t k0 = 0; k0 < k[0]; ++k0) {
                const int64_t i0 = o0 * s[0] + k0 * d[0] - p[0];
                if (i0 < 0 || i0 >= in[0]) continue;
                for (int64_t k1 = 0; k1 < k[1]; ++k1) {
                  const int64_t i1 = o1 * s[1] + k1 * d[1] - p[1];
                  if (i1 < 0 || i1 >= in[1]) continue;
                  for (int64_t k2 = 0; k2 < k[2]; ++k2) {
                    const int64_t i2 = o2 * s[2] + k2 * d[2] - p[2];
                    if (i2 < 0 || i2 >= in[2]) continue;
                    const int32_t xv = static_cast<int32_t>(src[(i0 * in[1] + i1) * in[2] + i2]) - xZp;
                    const int32_t wv = static_cast<int32_t>(wk[(k0 * k[1] + k1) * k[2] + k2]) - wz;
                    sum += static_cast<int64_t>(xv) * wv;
                  }
                }
              }
            }
            dst[(o0 * out[1] + o1) * out[2] + o2] = static_cast<int32_t>(sum);  // wraps as int32 accumulators do
          }
        }
      }
    }
  }
}

// dst[j] += src[j], j < n: one tap of a window, all groups at once (a depthwise conv's G = C lanes).
WH_QUANT_SIMD void addLanes(uint32_t* dst, const uint32_t* src, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
}

// NHWC per-pixel group sums of one pixel `px` of C = group * cg bytes, less cg * xZp (`shift`).
template <typename X>
WH_QUANT_SIMD void pixelGroupSums(const X* px, int64_t group, int64_t cg, uint32_t shift, uint32_t* dst) {
  if (cg == 1) {  // depthwise: one channel per group
    for (int64_t gi = 0; gi < group; ++gi) dst[gi] = static_cast<uint32_t>(static_cast<int32_t>(px[gi])) - shift;
    return;
  }
  for (int64_t gi = 0; gi < group; ++gi) {
    uint32_t sum = 0;
    for (int64_t ic = 0; ic < cg; ++ic) sum += static_cast<uint32_t>(static_cast<int32_t>(px[gi * cg + ic]));
    dst[gi] = sum - shift;
  }
}

// One output pixel of requantizeWithWindowSums: dst[oc] = requantize(a[oc] + corr[oc] * S + bias[oc]),
// S = s[oc] (sStep 1: a depthwise conv) or s[0] (sStep 0: one group), in wrapping int32; lo and hi
// are the output range less zp, as requantize() takes them.
WH_QUANT_SIMD void requantizeRow(const int32_t* a, const int32_t* s, int64_t sStep, const int32_t* corr, const int32_t* bias,
                                 const float* scales, uint8_t* dst, int64_t m, float lo, float hi, int32_t zp) {
  for (int64_t oc = 0; oc < m; ++oc) {
    const uint32_t v = static_cast<uint32_t>(a[oc]) + static_cast<uint32_t>(corr[oc]) * static_cast<uint32_t>(s[oc * sStep]) +
                       static_cast<uint32_t>(bias[oc]);
    dst[oc] = static_cast<uint8_t>(clampRoundAddZp(static_cast<float>(static_cast<int32_t>(v)) * scales[oc], lo, hi, zp));
  }
}

// One row of the GEMM path: dst[oc] = requantize(a[oc] + corr[oc] * sum + bias[oc]) in wrapping
// int32, one sum for the row (requantizeRow reads it per channel, which keeps this loop scalar).
WH_QUANT_SIMD void requantizeGemmRow(const int32_t* a, int32_t sum, const int32_t* corr, const int32_t* bias,
                                     const float* scales, uint8_t* dst, int64_t m, float lo, float hi, int32_t zp) {
  const auto s = static_cast<uint32_t>(sum);
  for (int64_t oc = 0; oc < m; ++oc) {
    const uint32_t v = static_cast<uint32_t>(a[oc]) + static_cast<uint32_t>(corr[oc]) * s + static_cast<uint32_t>(bias[oc]);
    dst[oc] = static_cast<uint8_t>(clampRoundAddZp(static_cast<float>(static_cast<int32_t>(v)) * scales[oc], lo, hi, zp));
  }
}

// The exact float route of a depthwise QLinearConv (Plan::floatDepthwise): x - x_zp as floats,
// n values of x (uint8 or int8 bytes).
template <typename X>
WH_QUANT_SIMD void centredFloats(const X* x, float* dst, int64_t n, int32_t zp) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zp);
}

// Buffer `which` (0: x as floats, 1: the float accumulators) of the float route, at least `bytes`
// long, 64-byte aligned, one per calling thread and shared by every depthwise conv it runs: the
// layers run one after another, so the same memory stays in cache. With a buffer per kernel the
// float32 convolution ran 5-10 us slower per layer than in the float32 model (cold lines).
float* floatScratch(int which, size_t bytes) {
  thread_local std::shared_ptr<ir::Buffer> buffers[2];
  std::shared_ptr<ir::Buffer>& b = buffers[which];
  if (!b || b->size() < bytes) b = ir::Buffer::allocateUninitialized(bytes);
  return reinterpret_cast<float*>(b->mutableData());
}

// A block of outputs of the float route, as oneDNN's int8 convolution computes them from its
// int32 accumulator: v = (float(acc) + bias) * scale, rounded half to even, + zp, saturated. `a`
// holds sum (x - x_zp) * w exactly; `shift` adds x_zp * sum(w) back where the int8 plan would
// have folded the zero point into the bias (no padding), so that float(acc) is the same value.
// A bias near the int32 limits (a dead channel) makes the add round: it does so as oneDNN's does.
WH_QUANT_SIMD void requantizeFloatRow(const float* a, const float* shift, const float* bias, const float* scales,
                                      uint8_t* dst, int64_t n, float lo, float hi, int32_t zp) {
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = static_cast<uint8_t>(clampRoundAddZp(((a[i] + shift[i]) + bias[i]) * scales[i], lo, hi, zp));
  }
}

// S[n, p, g] = sum over the channels of group g and the taps of output pixel p's window that fall
// inside x of (x - xZp), for NCHW x (NHWC when `nhwc`; xDims stay NCHW), pixel-major [N, OH * OW,
// group] as the passes after oneDNN read it: per-pixel group sums P[n, i, g] in one pass over x,
// then per output pixel the sum of its window's P rows (strided, dilated, padding contributes 0).
// `pixels` is scratch. Arithmetic wraps as int32 accumulators do.
template <typename X>
void windowSums(const X* x, bool nhwc, int32_t xZp, const std::vector<int64_t>& xDims, int64_t group, const ConvGeometry& g,
                int32_t* out, std::vector<uint32_t>& pixels, int threads) {
  const int64_t n = xDims[0], c = xDims[1], h = xDims[2], w = xDims[3], cg = c / group;
  const int64_t oh = g.outSpatial[0], ow = g.outSpatial[1], hw = h * w;
  if (nhwc) pixels.resize(static_cast<size_t>(n * hw * group));  // every element written below
  else pixels.assign(static_cast<size_t>(n * hw * group), 0u);        // accumulated channel by channel
  uint32_t* pix = pixels.data();
  const auto shift = static_cast<uint32_t>(cg) * static_cast<uint32_t>(xZp);  // sum(x - xZp) = sum(x) - cg * xZp
  if (nhwc) {  // pixel i of batch b: group gi's channels are the cg bytes at (b * hw + i) * C + gi * cg
#pragma omp parallel for num_threads(threads) if (n * c * hw > (1 << 16))
    for (int64_t r = 0; r < n * hw; ++r) pixelGroupSums(x + r * c, group, cg, shift, pix + r * group);
  } else {
#pragma omp parallel for num_threads(threads) if (n * c * hw > (1 << 16))
    for (int64_t b = 0; b < n; ++b) {
      uint32_t* dst = pix + b * hw * group;
      for (int64_t ch = 0; ch < c; ++ch) {
        const X* plane = x + (b * c + ch) * hw;
        const int64_t gi = ch / cg;
        for (int64_t i = 0; i < hw; ++i) dst[i * group + gi] += static_cast<uint32_t>(static_cast<int32_t>(plane[i]) - xZp);
      }
    }
  }
#pragma omp parallel for collapse(2) num_threads(threads) if (n * oh * ow * group * g.kernel[0] * g.kernel[1] > (1 << 16))
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t y = 0; y < oh; ++y) {
      for (int64_t xo = 0; xo < ow; ++xo) {
        auto* dst = reinterpret_cast<uint32_t*>(out) + ((b * oh + y) * ow + xo) * group;
        std::fill(dst, dst + group, 0u);
        for (int64_t kh = 0; kh < g.kernel[0]; ++kh) {
          const int64_t iy = y * g.strides[0] + kh * g.dilations[0] - g.padsBegin[0];
          if (iy < 0 || iy >= h) continue;
          for (int64_t kw = 0; kw < g.kernel[1]; ++kw) {
            const int64_t ix = xo * g.strides[1] + kw * g.dilations[1] - g.padsBegin[1];
            if (ix < 0 || ix >= w) continue;
            const uint32_t* src = pix + (b * hw + iy * w + ix) * group;
            if (group == 1) dst[0] += src[0];
            else addLanes(dst, src, group);
          }
        }
      }
    }
  }
}

// b[i] ^= 0x80 for i < n: int8 bytes as uint8 ones (x + 128), eight at a time.
void flipBytes(uint8_t* b, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, b + i, 8);
    v ^= 0x8080808080808080ull;
    std::memcpy(b + i, &v, 8);
  }
  for (; i < n; ++i) b[i] ^= 0x80;
}

// Sum of n bytes (wrapping uint32).
WH_QUANT_SIMD uint32_t byteSum(const uint8_t* b, int64_t n) {
  uint32_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += b[i];
  return sum;
}

// im2col of a 2-D (lifted) convolution with one group: row r = (b * OH + oy) * OW + ox of `cols`
// holds the k = C * KH * KW bytes of output pixel r's window in (c, kh, kw) order, OIHW weights'
// order, each byte x ^ flip, taps in the padding `pad`; rowSums[r] = sum of the row - k * aZero
// (wrapping int32) unless rowSums is null (no weight zero point term needs it). x is NCHW, or NHWC when `nhwc` (xDims stay NCHW).
void im2colU8(const uint8_t* x, bool nhwc, const std::vector<int64_t>& xDims, const ConvGeometry& g, uint8_t flip,
              uint8_t pad, int32_t aZero, uint8_t* cols, int32_t* rowSums, int threads) {
  const int64_t n = xDims[0], c = xDims[1], h = xDims[2], w = xDims[3];
  const int64_t oh = g.outSpatial[0], ow = g.outSpatial[1], kh = g.kernel[0], kw = g.kernel[1];
  const int64_t k = c * kh * kw;
#pragma omp parallel for num_threads(threads) if (n * oh * ow * k > (1 << 16))
  for (int64_t r = 0; r < n * oh * ow; ++r) {
    const int64_t b = r / (oh * ow), oy = r / ow % oh, ox = r % ow;
    uint8_t* dst = cols + r * k;
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t ky = 0; ky < kh; ++ky) {
        uint8_t* d = dst + (ch * kh + ky) * kw;
        const int64_t iy = oy * g.strides[0] + ky * g.dilations[0] - g.padsBegin[0];
        if (iy < 0 || iy >= h) {
          std::memset(d, pad, static_cast<size_t>(kw));
          continue;
        }
        const int64_t ix0 = ox * g.strides[1] - g.padsBegin[1];
        const int64_t ixLast = ix0 + (kw - 1) * g.dilations[1];
        if ((!nhwc || c == 1) && g.dilations[1] == 1 && ix0 >= 0 && ixLast < w) {  // all taps inside x, contiguous
          std::memcpy(d, x + ((b * c + ch) * h + iy) * w + ix0, static_cast<size_t>(kw));
          if (flip != 0) flipBytes(d, kw);
          continue;
        }
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t ix = ix0 + kx * g.dilations[1];
          if (ix < 0 || ix >= w) {
            d[kx] = pad;
          } else {
            d[kx] = (nhwc ? x[((b * h + iy) * w + ix) * c + ch] : x[((b * c + ch) * h + iy) * w + ix]) ^ flip;
          }
        }
      }
    }
    if (rowSums != nullptr) rowSums[r] = static_cast<int32_t>(byteSum(dst, k) - static_cast<uint32_t>(k) * static_cast<uint32_t>(aZero));
  }
}

// ---- the kernel ----

// A 1-D Conv as a 2-D one with H = 1: [N, C, L] -> [N, C, 1, L], the geometry likewise.
std::vector<int64_t> lift1d(const std::vector<int64_t>& dims) {
  return {dims[0], dims[1], 1, dims[2]};
}
ConvGeometry lift1d(const ConvGeometry& g) {
  ConvGeometry l;
  l.kernel = {1, g.kernel[0]};
  l.strides = {1, g.strides[0]};
  l.dilations = {1, g.dilations[0]};
  l.padsBegin = {0, g.padsBegin[0]};
  l.padsEnd = {0, g.padsEnd[0]};
  l.outSpatial = {1, g.outSpatial[0]};
  return l;
}

class Int8ConvKernel final : public Kernel {
 public:
  static Expected<std::unique_ptr<Kernel>> create(const KernelCreateInfo& info, bool qlinear) {
    auto k = std::unique_ptr<Int8ConvKernel>(new Int8ConvKernel(info, qlinear));
    WH_RETURN_IF_ERROR(k->prepare(info));
    k->planAtCreation(info);
    return std::unique_ptr<Kernel>(std::move(k));
  }

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    // Steady state: same shape, constant parameters: straight to the primitive.
    if (plan_ && paramsConstant_ && x.dims() == plan_->inDims && x.dtype() == plan_->xType && plan_->threads == ctx.threads()) {
      return runOnednn(ctx, x, plan_->xZp);
    }
    const ir::Tensor& w = ctx.input(wIdx());
    if (x.dtype() != DataType::kUint8 && x.dtype() != DataType::kInt8) {
      return ctx.unsupported("input x of dtype " + typeName(x.dtype()) + " is not supported (uint8, int8 are)");
    }
    if (w.dtype() != DataType::kUint8 && w.dtype() != DataType::kInt8) {
      return ctx.unsupported("input w of dtype " + typeName(w.dtype()) + " is not supported (uint8, int8 are)");
    }
    if (x.rank() < 3 || x.rank() != w.rank()) {
      return ctx.error("x " + shapeToString(x.dims()) + " and w " + shapeToString(w.dims()) + " must have the same rank (>= 3)");
    }
    const int64_t m = w.dims()[0];
    if (m % group_ != 0 || x.dims()[1] != w.dims()[1] * group_) {
      return ctx.error("x has " + std::to_string(x.dims()[1]) + " channels but w " + shapeToString(w.dims()) +
                       " with group " + std::to_string(group_) + " expects " + std::to_string(w.dims()[1] * group_));
    }
    WH_ASSIGN_OR_RETURN(ConvGeometry geom, convGeometry(ctx.node(), x.dims(), w.dims()));
    Params p;
    WH_RETURN_IF_ERROR(readParams([&](size_t i) { return ctx.hasInput(i) ? &ctx.input(i) : nullptr; }, ctx.node(), p));
    std::vector<int64_t> yDims{x.dims()[0], m};
    yDims.insert(yDims.end(), geom.outSpatial.begin(), geom.outSpatial.end());
    if (fastPath_ && x.rank() == static_cast<int64_t>(wRank_)) {
      Status s = wRank_ == 3 ? ensurePlan(engineOf(ctx.context()), ctx.threads(), ctx.node(), lift1d(x.dims()), x.dtype(), p,
                                          lift1d(geom), lift1d(yDims))
                             : ensurePlan(engineOf(ctx.context()), ctx.threads(), ctx.node(), x.dims(), x.dtype(), p, geom, yDims);
      if (s.isOk()) {
        plan_->inDims = x.dims();
        plan_->outDims = yDims;
        return runOnednn(ctx, x, p.xZp);
      }
      if (s.code() != StatusCode::kUnimplemented) return s;
      fastPath_ = false;  // oneDNN has no kernel for this combination: the reference is exact too
    }
    return runReference(ctx, x, w, p, geom, yDims);
  }

 private:
  // Run-time quantisation parameters.
  struct Params {
    float xScale = 1.0f, yScale = 1.0f;
    int32_t xZp = 0, yZp = 0;
    DataType yType = DataType::kInt32;
    std::vector<float> wScales;
    std::vector<int32_t> wZps{0};
    std::vector<int32_t> bias;  // empty: none
  };

  struct Plan {
    std::vector<int64_t> inDims, outDims;  // x and y as the model has them (3-D for a 1-D Conv)
    std::vector<int64_t> xDims;            // x and y as oneDNN sees them: 4-D, a 1-D Conv with H = 1
    DataType xType = DataType::kUndefined;
    float xScale = 0, yScale = 0;
    int32_t xZp = 0, yZp = 0;
    std::vector<int32_t> bias;  // the bias the plan was built with (before folding)
    std::vector<int64_t> yDims;
    ConvGeometry geom;  // as oneDNN sees it (2-D)
    DataType yType = DataType::kUndefined;
    int threads = 0;
    dnnl::convolution_forward prim;
    dnnl::memory src, dst, weights, biasMem, scratchpad, srcZpMem, dstZpMem;
    std::unordered_map<int, dnnl::memory> args;
    std::shared_ptr<ir::Buffer> scratchBuffer, srcBuffer, dstBuffer;
    std::vector<int32_t> effectiveBias;
    std::vector<float> outScales;  // requantizesAfter(): x_scale * w_scale[m] / y_scale per channel
    std::vector<uint8_t> yBytes;   // requantizesAfter() with an NCHW y: the NHWC bytes before the transpose
    int32_t srcZp = 0, dstZp = 0;
    // The exact float route of a depthwise conv (floatDepthwisePreferred()): `prim` is a float32
    // convolution of x - x_zp (`xf`, NHWC) by the int8 weights as floats into `accf` (NHWC).
    bool floatDepthwise = false;
    size_t xfBytes = 0, accfBytes = 0;  // sizes of the thread's floatScratch() buffers this plan uses
    // Requantisation a block of `pixelsPerBlock` pixels at a time: bias and outScales repeated
    // for them, so that a row is long enough to vectorise whatever the channel count (8 and 24
    // channels a row, one call per pixel, cost 20 us a layer).
    int64_t pixelsPerBlock = 1;
    std::vector<float> blockShift, blockBias, blockScales;
    // im2col + GEMM (gemmPreferred()): `gemmPrim` on cols [rows, k] u8 x weights [k, m] s8 -> acc s32.
    bool gemm = false;
    dnnl::matmul gemmPrim;
    std::vector<uint8_t> cols;
    std::vector<int32_t> gemmAcc, rowSums, gemmBias, gemmCorr;
  };

  Int8ConvKernel(const KernelCreateInfo& info, bool qlinear)
      : qlinear_(qlinear), group_(info.node.attrInt("group", 1)) {
    xChannelsLast_ = qlinear && info.channelsLastInt8(info.node.input(0));
    yChannelsLast_ = qlinear && info.channelsLastInt8(info.node.output(0));
    paramsConstant_ = true;
    for (size_t i : qlinear ? std::vector<size_t>{1, 2, 4, 5, 6, 7, 8} : std::vector<size_t>{2, 3}) {
      paramsConstant_ = paramsConstant_ && (info.node.input(i) == nullptr || info.constantInput(i) != nullptr);
    }
    srcZpDynamic_ = !qlinear && info.node.input(2) != nullptr && info.constantInput(2) == nullptr;
  }

  size_t wIdx() const { return qlinear_ ? 3 : 1; }
  // QLinearConv whose weight zero points are not oneDNN's: oneDNN gives the int32 accumulators and
  // requantizeWithWindowSums() finishes.
  bool requantizesAfter() const { return qlinear_ && !wZpCorr_.empty(); }
  size_t wZpIdx() const { return qlinear_ ? 5 : 3; }

  // Decides the fast path and prepares what only depends on constants: int8 weights, their
  // per-channel sums and the weight scales.
  Status prepare(const KernelCreateInfo& info) {
    if (group_ < 1) return info.error("group must be positive, got " + std::to_string(group_));
    const ir::Tensor* w = info.constantInput(wIdx());
    const ir::Value* wzpValue = info.node.input(wZpIdx());
    const ir::Tensor* wzp = info.constantInput(wZpIdx());
    if (w == nullptr || (w->rank() != 4 && w->rank() != 3) || (wzpValue != nullptr && wzp == nullptr)) return Status::ok();
    if (w->dtype() != DataType::kInt8 && w->dtype() != DataType::kUint8) return Status::ok();
    std::vector<int32_t> zps{0};
    if (wzp != nullptr) { WH_ASSIGN_OR_RETURN(zps, readZeroPoints(*wzp, info.node, "w_zero_point")); }
    const int32_t wantZp = w->dtype() == DataType::kUint8 ? 128 : 0;
    const int64_t m0 = w->dims()[0];
    if (zps.size() != 1 && static_cast<int64_t>(zps.size()) != m0) {
      return info.error("w_zero_point has " + std::to_string(zps.size()) + " values, expected 1 or " + std::to_string(m0));
    }
    // Zero points other than the one oneDNN's int8 weights imply: the difference goes through
    // the window sums (the header's c_m).
    wZpCorr_.clear();
    for (size_t i = 0; i < zps.size(); ++i) {
      if (zps[i] != wantZp && wZpCorr_.empty()) wZpCorr_.assign(static_cast<size_t>(m0), 0);
    }
    if (!wZpCorr_.empty()) {
      for (int64_t oc = 0; oc < m0; ++oc) wZpCorr_[static_cast<size_t>(oc)] = wantZp - zps[zps.size() == 1 ? 0 : static_cast<size_t>(oc)];
    }
    if (qlinear_) {
      const ir::Tensor* ws = info.constantInput(4);
      if (ws == nullptr) return Status::ok();
      WH_ASSIGN_OR_RETURN(wScales_, readScales(*ws, info.node, "w_scale"));
      if (wScales_.size() != 1 && static_cast<int64_t>(wScales_.size()) != w->dims()[0]) {
        return info.error("w_scale has " + std::to_string(wScales_.size()) + " values, expected 1 or " + std::to_string(w->dims()[0]));
      }
    }
    const int64_t m = w->dims()[0], perOc = w->numel() / std::max<int64_t>(m, 1);
    weights_.resize(static_cast<size_t>(w->numel()));
    weightsFit7Bits_ = true;
    weightSums_.assign(static_cast<size_t>(m), 0);
    const auto* raw = reinterpret_cast<const uint8_t*>(w->rawData());
    for (int64_t i = 0; i < w->numel(); ++i) {
      const int32_t v = w->dtype() == DataType::kUint8 ? static_cast<int32_t>(raw[i]) - 128 : static_cast<int8_t>(raw[i]);
      weights_[static_cast<size_t>(i)] = static_cast<int8_t>(v);
      weightSums_[static_cast<size_t>(i / perOc)] += v;
      weightsFit7Bits_ = weightsFit7Bits_ && v >= -64 && v <= 64;
    }
    // A 1-D Conv (Whisper's front end, audio models) runs as a 2-D one over [N, C, 1, L]: the
    // OIW weight bytes are the OI1W ones.
    wRank_ = static_cast<size_t>(w->rank());
    wDims_ = wRank_ == 3 ? lift1d(w->dims()) : w->dims();
    fastPath_ = true;
    return Status::ok();
  }

  // Packs the weights at creation when every quantisation parameter is a constant and the input's
  // type and shape are known (a symbolic batch dim counts as 1); otherwise the first run does.
  void planAtCreation(const KernelCreateInfo& info) {
    const ir::Value* xv = info.node.input(0);
    if (!fastPath_ || !paramsConstant_ || xv == nullptr || !xv->type().shape || xv->type().shape->size() != wRank_) return;
    const DataType xType = xv->dtype();
    if (xType != DataType::kUint8 && xType != DataType::kInt8) return;
    std::vector<int64_t> xDims;
    for (const ir::Dim& d : *xv->type().shape) {
      if (!d.isKnown() && !xDims.empty()) return;
      xDims.push_back(d.isKnown() ? d.value : 1);
    }
    Params p;
    auto constants = [&](size_t i) { return i == 0 || i == wIdx() ? nullptr : info.constantInput(i); };
    if (!readParams(constants, info.node, p).isOk()) return;
    const std::vector<int64_t> wGiven = wRank_ == 3 ? std::vector<int64_t>{wDims_[0], wDims_[1], wDims_[3]} : wDims_;
    auto geom = convGeometry(info.node, xDims, wGiven);
    if (!geom.isOk() || xDims[1] != wDims_[1] * group_) return;
    std::vector<int64_t> yDims{xDims[0], wDims_[0]};
    yDims.insert(yDims.end(), geom->outSpatial.begin(), geom->outSpatial.end());
    Status built = wRank_ == 3 ? ensurePlan(engineOf(info.context), info.threads, info.node, lift1d(xDims), xType, p,
                                            lift1d(*geom), lift1d(yDims))
                               : ensurePlan(engineOf(info.context), info.threads, info.node, xDims, xType, p, *geom, yDims);
    if (!built.isOk()) {
      plan_.reset();
      return;
    }
    plan_->inDims = xDims;
    plan_->outDims = yDims;
  }

  // Reads the quantisation parameters through `in` (the run's inputs, or the constants at
  // creation); `node` names it in errors.
  Status readParams(const std::function<const ir::Tensor*(size_t)>& in, const ir::Node& node, Params& p) const {
    const ir::Tensor* x = in(0);
    const ir::Tensor* w = in(wIdx());
    if (qlinear_) {
      WH_ASSIGN_OR_RETURN(p.xScale, scalarScaleOf(in(1), node, "x_scale"));
      WH_ASSIGN_OR_RETURN(p.yScale, scalarScaleOf(in(6), node, "y_scale"));
      WH_ASSIGN_OR_RETURN(p.yZp, scalarZeroPointOf(in(7), node, "y_zero_point"));
      p.yType = in(7) != nullptr ? in(7)->dtype() : DataType::kUint8;
      if (p.yType != DataType::kUint8 && p.yType != DataType::kInt8) {
        return unimplemented(node.describe() + ": output dtype " + typeName(p.yType) + " is not supported (uint8, int8 are)");
      }
      if (!fastPath_ || wScales_.empty()) {
        if (in(4) == nullptr) return invalidInput(node.describe() + ": input w_scale is missing");
        WH_ASSIGN_OR_RETURN(p.wScales, readScales(*in(4), node, "w_scale"));
      }
      if (const ir::Tensor* b = in(8)) {
        if (b->dtype() != DataType::kInt32) return invalidInput(node.describe() + ": bias must be int32, got " + typeName(b->dtype()));
        p.bias.assign(b->data<int32_t>(), b->data<int32_t>() + b->numel());
      }
    }
    WH_ASSIGN_OR_RETURN(p.xZp, scalarZeroPointOf(in(2), node, "x_zero_point"));
    if (in(2) != nullptr && x != nullptr && in(2)->dtype() != x->dtype()) {
      return invalidInput(node.describe() + ": x_zero_point is " + typeName(in(2)->dtype()) + " but x is " + typeName(x->dtype()));
    }
    if (const ir::Tensor* wz = in(wZpIdx())) {
      WH_ASSIGN_OR_RETURN(p.wZps, readZeroPoints(*wz, node, "w_zero_point"));
    }
    const int64_t m = w != nullptr ? w->dims()[0] : wDims_[0];
    const std::vector<float>& ws = p.wScales.empty() ? wScales_ : p.wScales;
    if (qlinear_ && ws.size() != 1 && static_cast<int64_t>(ws.size()) != m) {
      return invalidInput(node.describe() + ": w_scale has " + std::to_string(ws.size()) + " values, expected 1 or " + std::to_string(m));
    }
    if (p.wZps.size() != 1 && static_cast<int64_t>(p.wZps.size()) != m) {
      return invalidInput(node.describe() + ": w_zero_point has " + std::to_string(p.wZps.size()) + " values, expected 1 or " + std::to_string(m));
    }
    if (!p.bias.empty() && static_cast<int64_t>(p.bias.size()) != m) {
      return invalidInput(node.describe() + ": bias has " + std::to_string(p.bias.size()) + " values, expected " + std::to_string(m));
    }
    return Status::ok();
  }

  // Output scale of channel `oc`: x_scale * w_scale / y_scale, in ONNX Runtime's order.
  static float outputScale(const Params& p, const std::vector<float>& ws, int64_t oc) {
    const float w = ws.size() == 1 ? ws[0] : ws[static_cast<size_t>(oc)];
    return p.xScale * w / p.yScale;
  }

  Status runReference(KernelContext& ctx, const ir::Tensor& xIn, const ir::Tensor& w, const Params& p,
                      const ConvGeometry& geom, const std::vector<int64_t>& yDims) {
    const int64_t m = w.dims()[0];
    ir::Tensor x = xIn;
    if (xChannelsLast_) {  // the plan stores x as NHWC: make it NCHW for the reference
      x = ir::Tensor(xIn.dtype(), xIn.dims());
      nhwcToNchw(reinterpret_cast<const uint8_t*>(xIn.rawData()), reinterpret_cast<uint8_t*>(x.mutableRawData()),
                 xIn.dims()[0], xIn.dims()[1], xIn.dims()[2] * xIn.dims()[3]);
    }
    int64_t outSize = 1;
    for (size_t i = 2; i < yDims.size(); ++i) outSize *= yDims[i];
    std::vector<int32_t> accBuffer;
    int32_t* acc = nullptr;
    if (!qlinear_) {
      acc = ctx.allocateOutput(0, DataType::kInt32, yDims).mutableData<int32_t>();
    } else {
      accBuffer.resize(static_cast<size_t>(yDims[0] * m * outSize));
      acc = accBuffer.data();
    }
    auto dispatch = [&](auto* xd, auto* wd) {
      referenceConvAcc(xd, wd, acc, x.dims(), m, group_, geom, p.xZp, p.wZps);
    };
    const bool xu8 = x.dtype() == DataType::kUint8, wu8 = w.dtype() == DataType::kUint8;
    if (xu8 && wu8) dispatch(x.data<uint8_t>(), w.data<uint8_t>());
    if (xu8 && !wu8) dispatch(x.data<uint8_t>(), w.data<int8_t>());
    if (!xu8 && wu8) dispatch(x.data<int8_t>(), w.data<uint8_t>());
    if (!xu8 && !wu8) dispatch(x.data<int8_t>(), w.data<int8_t>());
    if (!qlinear_) return Status::ok();

    const std::vector<float>& ws = p.wScales.empty() ? wScales_ : p.wScales;
    const IntRange range = *intRange(p.yType);
    ir::Tensor& y = ctx.allocateOutput(0, p.yType, yDims);
    std::vector<uint8_t> nchw(yChannelsLast_ ? static_cast<size_t>(y.numel()) : 0);
    auto* out = yChannelsLast_ ? nchw.data() : reinterpret_cast<uint8_t*>(y.mutableRawData());
    for (int64_t b = 0; b < yDims[0]; ++b) {
      for (int64_t oc = 0; oc < m; ++oc) {
        const float scale = outputScale(p, ws, oc);
        const int32_t bias = p.bias.empty() ? 0 : p.bias[static_cast<size_t>(oc)];
        const int64_t base = (b * m + oc) * outSize;
        for (int64_t i = 0; i < outSize; ++i) {
          const auto sum = static_cast<int32_t>(static_cast<uint32_t>(acc[base + i]) + static_cast<uint32_t>(bias));
          const int32_t v = requantize(sum, scale, range, p.yZp);
          out[base + i] = static_cast<uint8_t>(v);  // int8 values keep their two's-complement byte
        }
      }
    }
    if (yChannelsLast_) {
      nchwToNhwc(nchw.data(), reinterpret_cast<uint8_t*>(y.mutableRawData()), yDims[0], m, yDims[2] * yDims[3]);
    }
    return Status::ok();
  }

  // Builds the oneDNN convolution for these shapes and parameters unless the current one fits.
  Status ensurePlan(dnnl::engine& engine, int threads, const ir::Node& node, const std::vector<int64_t>& xDims,
                    DataType xType, const Params& p, const ConvGeometry& geom, const std::vector<int64_t>& yDims) {
    if (plan_ && plan_->threads == threads && plan_->xDims == xDims && plan_->xType == xType && plan_->xScale == p.xScale &&
        plan_->yScale == p.yScale && (plan_->xZp == p.xZp || srcZpDynamic_) && plan_->yZp == p.yZp && plan_->bias == p.bias) {
      return Status::ok();
    }
    plan_.reset();
    if (!int8KernelsExact() && (xType != DataType::kUint8 || !weightsFit7Bits_)) {
      // Without VNNI oneDNN's int8 kernels could saturate or round: use the exact reference.
      return unimplemented(node.describe() + ": no exact oneDNN int8 kernel on this CPU");
    }
    auto plan = std::make_unique<Plan>();
    plan->xDims = xDims;
    plan->xType = xType;
    plan->xScale = p.xScale;
    plan->yScale = p.yScale;
    plan->xZp = p.xZp;
    plan->yZp = p.yZp;
    plan->bias = p.bias;
    plan->yDims = yDims;
    plan->geom = geom;
    plan->yType = qlinear_ ? p.yType : DataType::kInt32;
    plan->threads = threads;
    // oneDNN splits the work for the thread count it sees when the primitive is created.
    const int savedThreads = omp_get_max_threads();
    omp_set_num_threads(threads);
    Status built = dnnlGuard(node, [&] { buildPlan(engine, *plan, p, geom); });
    omp_set_num_threads(savedThreads);
    WH_RETURN_IF_ERROR(built);
    plan_ = std::move(plan);
    return Status::ok();
  }

  // The im2col + GEMM path: one group, one or two input channels and a long window (k = C * KH *
  // KW taps). oneDNN's direct int8 kernels reduce over input channels padded to 4 per tap, so one
  // channel wastes 3/4 of each VNNI step; the GEMM reduces over all k at once but pays for the
  // patch copy and an unfused requantisation per output. Measured (1 thread, CPU ms, direct ->
  // GEMM, QLinearConv alone): C 1, k 512, stride 160 (mel front end) 0.54 -> 0.20 for the model;
  // C 1, k 400 0.19 -> 0.06; C 1, k 128 0.32 -> 0.23 (stride 1), 0.16 -> 0.11 (stride 16); C 1,
  // k 64 0.185 -> 0.171 (not worth the copy); C 2, k 512 0.32 -> 0.25; C 2, k 128 0.66 -> 0.99;
  // C 3, 7x7 stem 0.94 -> 3.05; C 8, k 128 0.13 -> 0.28. The patch matrix is capped at 16 MiB.
  static bool gemmPreferred(int64_t group, const std::vector<int64_t>& xDims, const ConvGeometry& geom) {
    const int64_t c = xDims[1], k = c * geom.kernel[0] * geom.kernel[1];
    const int64_t rows = xDims[0] * geom.outSpatial[0] * geom.outSpatial[1];
    const bool longWindow = (c == 1 && k >= 128) || (c == 2 && k >= 512);
    return group == 1 && longWindow && rows * k <= (int64_t{16} << 20);
  }

  void buildGemmPlan(dnnl::engine& engine, Plan& plan, const Params& p, const ConvGeometry& geom) {
    using dnnl::memory;
    using dt = memory::data_type;
    using tag = memory::format_tag;
    const int64_t m = wDims_[0], k = wDims_[1] * wDims_[2] * wDims_[3];
    const int64_t rows = plan.xDims[0] * geom.outSpatial[0] * geom.outSpatial[1];
    const memory::desc srcMd({rows, k}, dt::u8, tag::ab), dstMd({rows, m}, dt::s32, tag::ab);
    const memory::desc wMd({k, m}, dt::s8, tag::any);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(srcMd, wMd, dstMd), attr, engine);
    plan.gemmPrim = dnnl::matmul(pd);
    // OIHW weights are [m, k] row-major: [k, m] in `ba` order.
    packInt8Plan(plan, pd, engine, {{k, m}, dt::s8, tag::ba}, weights_.data(), srcMd, dstMd);
    plan.args = {{DNNL_ARG_SRC, plan.src}, {DNNL_ARG_WEIGHTS, plan.weights}, {DNNL_ARG_DST, plan.dst},
                 {DNNL_ARG_SCRATCHPAD, plan.scratchpad}};
    plan.cols.resize(static_cast<size_t>(rows * k));
    plan.gemmAcc.resize(static_cast<size_t>(rows * m));
    plan.rowSums.assign(static_cast<size_t>(rows), 0);  // stays 0 without weight zero point terms
    plan.gemmBias.resize(static_cast<size_t>(m));
    plan.gemmCorr = wZpCorr_.empty() ? std::vector<int32_t>(static_cast<size_t>(m), 0) : wZpCorr_;
    if (qlinear_) {
      plan.outScales.resize(static_cast<size_t>(m));
      for (int64_t oc = 0; oc < m; ++oc) plan.outScales[static_cast<size_t>(oc)] = outputScale(p, wScales_, oc);
      if (!yChannelsLast_) plan.yBytes.resize(static_cast<size_t>(rows * m));
    }
    plan.gemm = true;
  }

  // A depthwise convolution (one input and one output channel per group) runs as a float32 one on
  // x - x_zp and the int8 weights as floats, which is exact: every product and partial sum is an
  // integer below 2^24 (|x - x_zp| <= 255, |w| <= 128, at most 514 taps), whatever order oneDNN
  // adds them in; then requantizeFloatRow() finishes as oneDNN's int8 convolution does (bytes
  // equal to the int8 plan's, a bias near the int32 limits included). oneDNN's int8
  // depthwise kernels widen each tap's bytes before a 16-lane multiply-add and took about twice
  // its float32 kernel's time. The two conversions cost per element and the gain grows with the
  // taps: measured on rapidocr-cls-v2 (1 thread, per-node CPU us, oneDNN int8 -> float route),
  // 5x5: 200 channels over 2 x 96 44 -> 34, 88 over 3 x 96 32 -> 27, 40 over 3 x 96 19 -> 16;
  // 3x3: 8 channels 24 x 96 stride 2 15 -> 18, 32 over 6 x 96 11 -> 13. So 5x5 and up only.
  // Whether the int8 plan folds x_zp into the bias (bias - x_zp * sum(w)): a constant zero point
  // and no padding (oneDNN's zero point would otherwise be needed for the padded taps).
  bool foldsSourceZeroPoint(const Params& p, const ConvGeometry& geom) const {
    auto zero = [](const std::vector<int64_t>& v) {
      return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 0; });
    };
    return !srcZpDynamic_ && p.xZp != 0 && zero(geom.padsBegin) && zero(geom.padsEnd);
  }

  bool floatDepthwisePreferred(const std::vector<int64_t>& xDims, int64_t m) const {
    const int64_t taps = wDims_[2] * wDims_[3];
    return qlinear_ && !requantizesAfter() && !srcZpDynamic_ && group_ > 1 && group_ == xDims[1] && m == group_ &&
           wDims_[1] == 1 && taps >= 25 && taps * 255 * 128 < (int64_t{1} << 24);
  }

  void buildFloatDepthwisePlan(dnnl::engine& engine, Plan& plan, const Params& p, const ConvGeometry& geom) {
    using dnnl::memory;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    const std::vector<int64_t>& xd = plan.xDims;
    const int64_t m = wDims_[0];
    const memory::dims srcDims{xd[0], xd[1], xd[2], xd[3]}, dstDims{xd[0], m, geom.outSpatial[0], geom.outSpatial[1]};
    const memory::dims wDims{group_, 1, 1, wDims_[2], wDims_[3]};
    const memory::desc srcMd(srcDims, dt::f32, tag::nhwc), dstMd(dstDims, dt::f32, tag::nhwc),
        wMd(wDims, dt::f32, tag::any);
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, srcMd,
                                         wMd, memory::desc(), dstMd, {geom.strides[0], geom.strides[1]},
                                         {geom.dilations[0] - 1, geom.dilations[1] - 1},
                                         {geom.padsBegin[0], geom.padsBegin[1]}, {geom.padsEnd[0], geom.padsEnd[1]});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
    plan.prim = dnnl::convolution_forward(pd);
    std::vector<float> wf(weights_.begin(), weights_.end());
    packInt8Plan(plan, pd, engine, {wDims, dt::f32, tag::goihw}, wf.data(), srcMd, dstMd);
    plan.args = {{DNNL_ARG_SRC, plan.src},
                 {DNNL_ARG_WEIGHTS, plan.weights},
                 {DNNL_ARG_DST, plan.dst},
                 {DNNL_ARG_SCRATCHPAD, plan.scratchpad}};
    if (!xChannelsLast_)
      plan.srcBuffer = ir::Buffer::allocateUninitialized(static_cast<size_t>(xd[0] * xd[1] * xd[2] * xd[3]));
    plan.xfBytes = srcMd.get_size();
    plan.accfBytes = dstMd.get_size();
    // The bias as the int8 plan gives it to oneDNN (buildPlan: x_zp * sum(w) folded in, wrapping,
    // when there is no padding) and the shift that makes `a` that plan's accumulator.
    const bool fold = foldsSourceZeroPoint(p, geom);
    std::vector<float> shift(static_cast<size_t>(m)), bias(static_cast<size_t>(m)), scales(static_cast<size_t>(m));
    for (int64_t oc = 0; oc < m; ++oc) {
      const auto c = static_cast<size_t>(oc);
      const uint32_t b = static_cast<uint32_t>(p.bias.empty() ? 0 : p.bias[c]) -
                         (fold ? static_cast<uint32_t>(p.xZp) * static_cast<uint32_t>(weightSums_[c]) : 0u);
      bias[c] = static_cast<float>(static_cast<int32_t>(b));
      shift[c] = fold ? static_cast<float>(p.xZp * weightSums_[c]) : 0.0f;
      scales[c] = outputScale(p, wScales_, oc);
    }
    if (!yChannelsLast_) plan.yBytes.resize(dstMd.get_size() / sizeof(float));
    plan.pixelsPerBlock = std::max<int64_t>(1, 256 / m);
    for (int64_t i = 0; i < plan.pixelsPerBlock; ++i) {
      plan.blockShift.insert(plan.blockShift.end(), shift.begin(), shift.end());
      plan.blockBias.insert(plan.blockBias.end(), bias.begin(), bias.end());
      plan.blockScales.insert(plan.blockScales.end(), scales.begin(), scales.end());
    }
    plan.floatDepthwise = true;
  }

  void buildPlan(dnnl::engine& engine, Plan& plan, const Params& p, const ConvGeometry& geom) {
    if (gemmPreferred(group_, plan.xDims, geom)) {
      buildGemmPlan(engine, plan, p, geom);
      return;
    }
    if (floatDepthwisePreferred(plan.xDims, wDims_[0])) {
      buildFloatDepthwisePlan(engine, plan, p, geom);
      return;
    }
    using dnnl::memory;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    const std::vector<int64_t>& xd = plan.xDims;
    const int64_t m = wDims_[0];
    const bool foldSrcZp = foldsSourceZeroPoint(p, geom);
    const bool useSrcZp = srcZpDynamic_ || (p.xZp != 0 && !foldSrcZp);
    const bool after = requantizesAfter();
    const dt dstType = !qlinear_ || after ? dt::s32 : p.yType == DataType::kUint8 ? dt::u8 : dt::s8;
    // A convolution along H alone (W = 1, a 1-wide kernel, no W padding: magika's 5x1 over
    // [256, 512, 1]) is described to oneDNN along W instead: the same bytes in NHWC and in OIHW
    // weights, since one of the two axes is 1. brgconv blocks output pixels along W, so with
    // W = 1 it ran one pixel per block: 4.9 ms against 1.3 ms for the same product along W.
    const bool alongW = xd[3] == 1 && wDims_[3] == 1 && geom.outSpatial[1] == 1 && geom.padsBegin[1] == 0 &&
                        geom.padsEnd[1] == 0 && xd[2] > 1;
    const auto hw = [alongW](int64_t h, int64_t w) { return alongW ? memory::dims{w, h} : memory::dims{h, w}; };
    const memory::dims inHw = hw(xd[2], xd[3]), outHw = hw(geom.outSpatial[0], geom.outSpatial[1]);
    const memory::dims kHw = hw(wDims_[2], wDims_[3]);
    const memory::dims srcDims{xd[0], xd[1], inHw[0], inHw[1]};
    const memory::dims dstDims{xd[0], m, outHw[0], outHw[1]};
    const memory::dims wDims = group_ > 1 ? memory::dims{group_, m / group_, wDims_[1], kHw[0], kHw[1]}
                                          : memory::dims{m, wDims_[1], kHw[0], kHw[1]};
    auto srcMd = memory::desc(srcDims, plan.xType == DataType::kUint8 ? dt::u8 : dt::s8, tag::nhwc);
    auto dstMd = memory::desc(dstDims, dstType, tag::nhwc);
    auto wMd = memory::desc(wDims, dt::s8, tag::any);
    plan.effectiveBias.assign(static_cast<size_t>(m), 0);
    for (int64_t oc = 0; oc < m; ++oc) {
      int32_t b = p.bias.empty() ? 0 : p.bias[static_cast<size_t>(oc)];
      if (foldSrcZp) b -= p.xZp * weightSums_[static_cast<size_t>(oc)];
      plan.effectiveBias[static_cast<size_t>(oc)] = b;
    }
    const bool hasBias = (!p.bias.empty() || foldSrcZp) && !after;  // after: requantizeWithWindowSums() adds it
    auto biasMd = memory::desc({m}, dt::s32, tag::x);
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, srcMd, wMd,
        hasBias ? biasMd : memory::desc(), dstMd, hw(geom.strides[0], geom.strides[1]),
        hw(geom.dilations[0] - 1, geom.dilations[1] - 1), hw(geom.padsBegin[0], geom.padsBegin[1]),
        hw(geom.padsEnd[0], geom.padsEnd[1]));
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (after) {
      plan.outScales.resize(static_cast<size_t>(m));
      for (int64_t oc = 0; oc < m; ++oc) plan.outScales[static_cast<size_t>(oc)] = outputScale(p, wScales_, oc);
      if (!yChannelsLast_) plan.yBytes.resize(dstMd.get_size() / sizeof(int32_t));
    } else if (qlinear_) {
      std::vector<float> scales(wScales_.size() == 1 ? 1 : static_cast<size_t>(m));
      for (size_t oc = 0; oc < scales.size(); ++oc) scales[oc] = outputScale(p, wScales_, static_cast<int64_t>(oc));
      attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_round, 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    if (useSrcZp) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (p.yZp != 0 && !after) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
    chooseImpl(pd, xd[1] / group_, m / group_);
    plan.prim = dnnl::convolution_forward(pd);

    packInt8Plan(plan, pd, engine, {wDims, dt::s8, group_ > 1 ? tag::goihw : tag::oihw}, weights_.data(), srcMd, dstMd);
    if (!xChannelsLast_) plan.srcBuffer = ir::Buffer::allocateUninitialized(srcMd.get_size());
    if (!yChannelsLast_ || after) plan.dstBuffer = ir::Buffer::allocateUninitialized(dstMd.get_size());
    plan.args = {{DNNL_ARG_SRC, plan.src}, {DNNL_ARG_WEIGHTS, plan.weights}, {DNNL_ARG_DST, plan.dst},
                 {DNNL_ARG_SCRATCHPAD, plan.scratchpad}};
    if (hasBias) {
      plan.biasMem = memory(biasMd, engine, plan.effectiveBias.data());
      plan.args[DNNL_ARG_BIAS] = plan.biasMem;
    }
    plan.srcZp = p.xZp;
    plan.dstZp = p.yZp;
    if (useSrcZp) {
      plan.srcZpMem = memory({{1}, dt::s32, tag::x}, engine, &plan.srcZp);
      plan.args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = plan.srcZpMem;
    }
    if (p.yZp != 0 && !after) {
      plan.dstZpMem = memory({{1}, dt::s32, tag::x}, engine, &plan.dstZp);
      plan.args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = plan.dstZpMem;
    }
  }

  // oneDNN lists its AMX kernels first. Measured on mobilenetv2's layers (1 thread, Sapphire
  // Rapids): the generic AMX convolution ("jit:...amx") wins when IC * OC per group is large
  // (320 -> 1280 at 7x7: 29 us against 60 us for the best VNNI kernel), the 1x1 AMX kernel never
  // does, and on narrow layers (16 -> 96 at 112x112: 264 us against 165 us) the AVX-512 VNNI
  // kernels win. Results are the same bits whichever runs (exact int32 accumulation, same
  // requantisation).
  static void chooseImpl(dnnl::convolution_forward::primitive_desc& pd, int64_t icPerGroup, int64_t ocPerGroup) {
    std::vector<dnnl::convolution_forward::primitive_desc> candidates;
    do {
      candidates.push_back(pd);  // a copy keeps the implementation it was fetched with
    } while (pd.next_impl());
    const bool wide = icPerGroup * ocPerGroup >= 32768;
    auto name = [](const dnnl::convolution_forward::primitive_desc& c) { return std::string(c.impl_info_str()); };
    for (const auto& c : candidates) {
      if (wide && name(c).rfind("jit:", 0) == 0 && name(c).find("amx") != std::string::npos) {
        pd = c;
        return;
      }
    }
    for (const auto& c : candidates) {
      if (name(c).find("amx") == std::string::npos) {
        pd = c;
        return;
      }
    }
    pd = candidates.front();
  }

  // xZp: this run's x_zero_point (the plan's run-time source zero point when srcZpDynamic_).
  Status runOnednn(KernelContext& ctx, const ir::Tensor& x, int32_t xZp) {
    if (plan_->gemm) return runGemm(ctx, x, xZp);
    if (plan_->floatDepthwise) return runFloatDepthwise(ctx, x, xZp);
    Plan& plan = *plan_;
    plan.srcZp = xZp;
    const std::vector<int64_t>& yDims = plan.yDims;
    const int64_t hwIn = plan.xDims[2] * plan.xDims[3], hwOut = yDims[2] * yDims[3];
    const DataType yType = plan.yType;
    ir::Tensor& y = ctx.allocateOutput(0, yType, plan.outDims);
    void* src = const_cast<std::byte*>(x.rawData());
    if (!xChannelsLast_) {
      nchwToNhwc(reinterpret_cast<const uint8_t*>(x.rawData()), reinterpret_cast<uint8_t*>(plan.srcBuffer->mutableData()),
                 x.dims()[0], x.dims()[1], hwIn);
      src = plan.srcBuffer->mutableData();
    }
    const bool after = requantizesAfter();
    void* dst = yChannelsLast_ && !after ? static_cast<void*>(y.mutableRawData()) : static_cast<void*>(plan.dstBuffer->mutableData());
    plan.src.set_data_handle(src);
    plan.dst.set_data_handle(dst);
    WH_RETURN_IF_ERROR(dnnlGuard(ctx.node(), [&] { plan.prim.execute(streamOf(ctx.context()), plan.args); }));
    if (after) {
      requantizeWithWindowSums(ctx, x, xZp, reinterpret_cast<const int32_t*>(dst), y);
    } else if (!yChannelsLast_) {
      if (yType == DataType::kInt32 && !wZpCorr_.empty()) {
        addWeightZeroPointTerm(ctx, x, xZp, reinterpret_cast<const int32_t*>(dst), y.mutableData<int32_t>());
      } else if (yType == DataType::kInt32) {
        nhwcToNchw(reinterpret_cast<const int32_t*>(dst), y.mutableData<int32_t>(), yDims[0], yDims[1], hwOut);
      } else {
        nhwcToNchw(reinterpret_cast<const uint8_t*>(dst), reinterpret_cast<uint8_t*>(y.mutableRawData()), yDims[0], yDims[1], hwOut);
      }
    }
    return Status::ok();
  }

  // The im2col + GEMM plan: acc[r, oc] = (A W8)[r, oc] - aZero * sum(W8[:, oc]) + c_oc * S_r
  // (+ bias), in wrapping int32, then requantize() (QLinearConv) or the int32 (ConvInteger).
  Status runGemm(KernelContext& ctx, const ir::Tensor& x, int32_t xZp) {
    Plan& plan = *plan_;
    const std::vector<int64_t>& yDims = plan.yDims;
    const int64_t n = yDims[0], m = yDims[1], hw = yDims[2] * yDims[3];
    const bool s8 = plan.xType == DataType::kInt8;
    const int32_t aZero = xZp + (s8 ? 128 : 0);  // int8 x goes in as uint8: x ^ 0x80 = x + 128
    im2colU8(reinterpret_cast<const uint8_t*>(x.rawData()), xChannelsLast_, plan.xDims, plan.geom, s8 ? 0x80 : 0,
             static_cast<uint8_t>(aZero), aZero, plan.cols.data(), wZpCorr_.empty() ? nullptr : plan.rowSums.data(),
             ctx.threads());
    plan.src.set_data_handle(plan.cols.data());
    plan.dst.set_data_handle(plan.gemmAcc.data());
    WH_RETURN_IF_ERROR(dnnlGuard(ctx.node(), [&] { plan.gemmPrim.execute(streamOf(ctx.context()), plan.args); }));
    for (int64_t oc = 0; oc < m; ++oc) {  // bias - aZero * sum(W8), wrapping
      const auto b = static_cast<uint32_t>(plan.bias.empty() || !qlinear_ ? 0 : plan.bias[static_cast<size_t>(oc)]);
      plan.gemmBias[static_cast<size_t>(oc)] = static_cast<int32_t>(
          b - static_cast<uint32_t>(aZero) * static_cast<uint32_t>(weightSums_[static_cast<size_t>(oc)]));
    }
    ir::Tensor& y = ctx.allocateOutput(0, plan.yType, plan.outDims);
    const int32_t* acc = plan.gemmAcc.data();
    const int32_t* corr = plan.gemmCorr.data();
    const int32_t* bias = plan.gemmBias.data();
    const int32_t* sums = plan.rowSums.data();
    if (!qlinear_) {  // ConvInteger: int32, NCHW
      int32_t* out = y.mutableData<int32_t>();
#pragma omp parallel for collapse(2) num_threads(ctx.threads()) if (n * m * hw > (1 << 16))
      for (int64_t b = 0; b < n; ++b) {
        for (int64_t oc = 0; oc < m; ++oc) {
          const auto c = static_cast<uint32_t>(corr[oc]), bo = static_cast<uint32_t>(bias[oc]);
          int32_t* dst = out + (b * m + oc) * hw;
          for (int64_t i = 0; i < hw; ++i) {
            const int64_t r = b * hw + i;
            dst[i] = static_cast<int32_t>(static_cast<uint32_t>(acc[r * m + oc]) + c * static_cast<uint32_t>(sums[r]) + bo);
          }
        }
      }
      return Status::ok();
    }
    const IntRange range = *intRange(plan.yType);
    const auto lo = static_cast<float>(range.lo - plan.yZp), hi = static_cast<float>(range.hi - plan.yZp);
    uint8_t* out = yChannelsLast_ ? reinterpret_cast<uint8_t*>(y.mutableRawData()) : plan.yBytes.data();
    const float* scales = plan.outScales.data();
    const int32_t yZp = plan.yZp;
#pragma omp parallel for num_threads(ctx.threads()) if (n * m * hw > (1 << 16))
    for (int64_t r = 0; r < n * hw; ++r) requantizeGemmRow(acc + r * m, sums[r], corr, bias, scales, out + r * m, m, lo, hi, yZp);
    if (!yChannelsLast_) nhwcToNchw(out, reinterpret_cast<uint8_t*>(y.mutableRawData()), n, m, hw);
    return Status::ok();
  }

  // The exact float route (buildFloatDepthwisePlan): x - x_zp as floats, the float32 depthwise
  // convolution, then requantizeFloatRow() per block of outputs.
  Status runFloatDepthwise(KernelContext& ctx, const ir::Tensor& x, int32_t xZp) {
    Plan& plan = *plan_;
    const std::vector<int64_t>& yDims = plan.yDims;
    const int64_t n = yDims[0], m = yDims[1], hw = yDims[2] * yDims[3];
    const auto* xb = reinterpret_cast<const uint8_t*>(x.rawData());
    if (!xChannelsLast_) {
      nchwToNhwc(xb, reinterpret_cast<uint8_t*>(plan.srcBuffer->mutableData()), plan.xDims[0], plan.xDims[1],
                 plan.xDims[2] * plan.xDims[3]);
      xb = reinterpret_cast<const uint8_t*>(plan.srcBuffer->mutableData());
    }
    const auto count = static_cast<int64_t>(plan.xfBytes / sizeof(float));
    float* xf = floatScratch(0, plan.xfBytes);
    float* accf = floatScratch(1, plan.accfBytes);
    if (plan.xType == DataType::kInt8) {
      centredFloats(reinterpret_cast<const int8_t*>(xb), xf, count, xZp);
    } else {
      centredFloats(xb, xf, count, xZp);
    }
    plan.src.set_data_handle(xf);
    plan.dst.set_data_handle(accf);
    WH_RETURN_IF_ERROR(dnnlGuard(ctx.node(), [&] { plan.prim.execute(streamOf(ctx.context()), plan.args); }));
    ir::Tensor& y = ctx.allocateOutput(0, plan.yType, plan.outDims);
    const IntRange range = *intRange(plan.yType);
    const auto lo = static_cast<float>(range.lo - plan.yZp), hi = static_cast<float>(range.hi - plan.yZp);
    uint8_t* out = yChannelsLast_ ? reinterpret_cast<uint8_t*>(y.mutableRawData()) : plan.yBytes.data();
    const float* acc = accf;
    const float* shift = plan.blockShift.data();
    const float* bias = plan.blockBias.data();
    const float* scales = plan.blockScales.data();
    const int32_t yZp = plan.yZp;
    const int64_t pixels = n * hw, block = plan.pixelsPerBlock, blocks = (pixels + block - 1) / block;
#pragma omp parallel for num_threads(ctx.threads()) if (n * m * hw > (1 << 16))
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t first = b * block, count = std::min(block, pixels - first);
      requantizeFloatRow(acc + first * m, shift, bias, scales, out + first * m, count * m, lo, hi, yZp);
    }
    if (!yChannelsLast_) nhwcToNchw(out, reinterpret_cast<uint8_t*>(y.mutableRawData()), n, m, hw);
    return Status::ok();
  }

  // S (windowSums) of this run's x into windowSumBuffer_: [N, OH * OW, group].
  const int32_t* computeWindowSums(KernelContext& ctx, const ir::Tensor& x, int32_t xZp) {
    const Plan& plan = *plan_;
    windowSumBuffer_.resize(static_cast<size_t>(plan.yDims[0] * group_ * plan.yDims[2] * plan.yDims[3]));
    if (x.dtype() == DataType::kUint8) {
      windowSums(x.data<uint8_t>(), xChannelsLast_, xZp, plan.xDims, group_, plan.geom, windowSumBuffer_.data(),
                 pixelSumBuffer_, ctx.threads());
    } else {
      windowSums(x.data<int8_t>(), xChannelsLast_, xZp, plan.xDims, group_, plan.geom, windowSumBuffer_.data(),
                 pixelSumBuffer_, ctx.threads());
    }
    return windowSumBuffer_.data();
  }

  // QLinearConv with weight zero points other than oneDNN's: y[n, m, p] = requantize(acc8[n, p, m]
  // (NHWC, from oneDNN) + c_m * S[n, g(m), p] + bias'[m]) in wrapping int32, bias' the bias less
  // x_zp * sum(w8) when that was folded; y written NHWC or NCHW as the plan stores it.
  void requantizeWithWindowSums(KernelContext& ctx, const ir::Tensor& x, int32_t xZp, const int32_t* accNhwc, ir::Tensor& y) {
    Plan& plan = *plan_;
    const int64_t n = plan.yDims[0], m = plan.yDims[1], hw = plan.yDims[2] * plan.yDims[3], mg = m / group_;
    const int32_t* sums = computeWindowSums(ctx, x, xZp);
    const IntRange range = *intRange(plan.yType);
    const int32_t yZp = plan.yZp;
    const auto lo = static_cast<float>(range.lo - yZp), hi = static_cast<float>(range.hi - yZp);
    uint8_t* out = yChannelsLast_ ? reinterpret_cast<uint8_t*>(y.mutableRawData()) : plan.yBytes.data();
    const int32_t* corr = wZpCorr_.data();
    const int32_t* bias = plan.effectiveBias.data();
    const float* scales = plan.outScales.data();
    const int64_t groups = group_;
#pragma omp parallel for num_threads(ctx.threads()) if (n * m * hw > (1 << 16))
    for (int64_t r = 0; r < n * hw; ++r) {  // r: one output pixel, its m channels and its groups' sums contiguous
      const int32_t* a = accNhwc + r * m;
      const int32_t* s = sums + r * groups;
      uint8_t* dst = out + r * m;
      auto one = [&](int64_t oc, int32_t sum) {
        const uint32_t v = static_cast<uint32_t>(a[oc]) + static_cast<uint32_t>(corr[oc]) * static_cast<uint32_t>(sum) +
                           static_cast<uint32_t>(bias[oc]);
        dst[oc] = static_cast<uint8_t>(requantize(static_cast<int32_t>(v), scales[oc], range, yZp));  // int8: its byte
      };
      if (groups == 1 || mg == 1) {
        requantizeRow(a, s, groups == 1 ? 0 : 1, corr, bias, scales, dst, m, lo, hi, yZp);
      } else {
        for (int64_t oc = 0; oc < m; ++oc) one(oc, s[oc / mg]);
      }
    }
    if (!yChannelsLast_) nhwcToNchw(out, reinterpret_cast<uint8_t*>(y.mutableRawData()), n, m, hw);
  }

  // ConvInteger with weight zero points other than oneDNN's: y[n, m, p] = acc8[n, p, m] (NHWC,
  // from oneDNN) + c_m * S[n, g(m), p], written NCHW.
  void addWeightZeroPointTerm(KernelContext& ctx, const ir::Tensor& x, int32_t xZp, const int32_t* accNhwc, int32_t* y) {
    const Plan& plan = *plan_;
    const int64_t n = plan.yDims[0], m = plan.yDims[1], hw = plan.yDims[2] * plan.yDims[3], mg = m / group_;
    const int32_t* sums = computeWindowSums(ctx, x, xZp);
#pragma omp parallel for collapse(2) num_threads(ctx.threads()) if (n * m * hw > (1 << 16))
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t oc = 0; oc < m; ++oc) {
        const auto c = static_cast<uint32_t>(wZpCorr_[static_cast<size_t>(oc)]);
        const int32_t* s = sums + b * hw * group_ + oc / mg;  // pixel i's sum at s[i * group_]
        const int32_t* a = accNhwc + b * hw * m + oc;
        int32_t* dst = y + (b * m + oc) * hw;
        for (int64_t i = 0; i < hw; ++i) {
          dst[i] = static_cast<int32_t>(static_cast<uint32_t>(a[i * m]) + c * static_cast<uint32_t>(s[i * group_]));
        }
      }
    }
  }

  bool qlinear_;
  int64_t group_;
  bool srcZpDynamic_ = false;  // ConvInteger whose x_zero_point is computed: a run-time oneDNN zero point
  std::vector<int32_t> wZpCorr_;  // c_m per output channel; empty when all are 0
  std::vector<int32_t> windowSumBuffer_;
  std::vector<uint32_t> pixelSumBuffer_;  // windowSums' per-pixel group sums
  bool xChannelsLast_ = false;
  bool yChannelsLast_ = false;
  bool fastPath_ = false;
  bool paramsConstant_ = false;  // scales, zero points and bias are initializers
  bool weightsFit7Bits_ = false;  // every int8 weight in [-64, 64] (exact without VNNI too)
  size_t wRank_ = 4;                   // 3 for a 1-D Conv, run with wDims_ lifted to [M, C, 1, k]
  std::vector<int64_t> wDims_;
  std::vector<int8_t> weights_;        // int8 weights (uint8 ones shifted by -128), OIHW
  std::vector<int32_t> weightSums_;    // sum over c, kh, kw of weights_, per output channel
  std::vector<float> wScales_;         // constant w_scale (QLinearConv)
  std::unique_ptr<Plan> plan_;
};

}  // namespace

void registerQuantConvKernels(KernelRegistry& registry) {
  registry.add("", "QLinearConv", 10, [](const KernelCreateInfo& info) { return Int8ConvKernel::create(info, true); });
  registry.add("", "ConvInteger", 10, [](const KernelCreateInfo& info) { return Int8ConvKernel::create(info, false); });
}

}  // namespace whittle::runtime::cpu::quant
