// Col2Im (opset 18) and DeformConv (opset 19), float32 and float64.
//
// Col2Im: input [N, C * prod(block), L] holds, for every sliding block l of an image of
// `image_shape` (with pads, strides, dilations as in Conv), the block's C * prod(block) values;
// the output [N, C, image...] sums every value into the pixel it came from.
//
// DeformConv (2-D): Conv where kernel tap (i, j) of output (oh, ow) reads X at
//   (oh*sH - padTop + i*dH + offset_h, ow*sW - padLeft + j*dW + offset_w)
// by bilinear interpolation (zero outside), times mask; offset [N, G*kH*kW*2, oH, oW] holds
// (dh, dw) per offset group G and tap, mask [N, G*kH*kW, oH, oW]. Computed as a sampled
// im2col matrix per image and a matrix product per group.
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

Status checkFloat(const KernelContext& ctx, ir::DataType dt) {
  if (dt == ir::DataType::kFloat || dt == ir::DataType::kDouble) return Status::ok();
  return ctx.unsupported("dtype " + std::string(ir::dataTypeName(dt)) + " is not supported (float32 and float64 are)");
}

/// An attribute list of `n` values, `fallback` each when absent; an error when it has another length.
Expected<std::vector<int64_t>> attrList(const KernelContext& ctx, const std::vector<int64_t>& given, size_t n,
                                        int64_t fallback, const std::string& name) {
  if (given.empty()) return std::vector<int64_t>(n, fallback);
  if (given.size() != n)
    return ctx.error(name + " has " + std::to_string(given.size()) + " values, expected " + std::to_string(n));
  return given;
}

// ---- Col2Im ----

template <typename T>
void col2im(const T* src, T* dst, int64_t n, int64_t c, const std::vector<int64_t>& image,
            const std::vector<int64_t>& block, const std::vector<int64_t>& blocks, const std::vector<int64_t>& dil,
            const std::vector<int64_t>& pads, const std::vector<int64_t>& strides) {
  size_t r = image.size();
  int64_t kernel = 1, numBlocks = 1, plane = 1;
  for (size_t i = 0; i < r; ++i) {
    kernel *= block[i];
    numBlocks *= blocks[i];
    plane *= image[i];
  }
  bool parallel = n * c > 1 && n * c * kernel * numBlocks > 32768;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t nc = 0; nc < n * c; ++nc) {
    T* out = dst + nc * plane;
    for (int64_t i = 0; i < plane; ++i) out[i] = T(0);
    std::vector<int64_t> kIdx(r), bIdx(r);
    for (int64_t k = 0; k < kernel; ++k) {
      int64_t rem = k;
      for (size_t a = r; a-- > 0;) {
        kIdx[a] = rem % block[a];
        rem /= block[a];
      }
      const T* row = src + (nc * kernel + k) * numBlocks;
      for (int64_t l = 0; l < numBlocks; ++l) {
        int64_t rem2 = l, offset = 0;
        bool inside = true;
        for (size_t a = r; a-- > 0;) {
          bIdx[a] = rem2 % blocks[a];
          rem2 /= blocks[a];
        }
        for (size_t a = 0; a < r && inside; ++a) {
          int64_t pos = bIdx[a] * strides[a] - pads[a] + kIdx[a] * dil[a];
          if (pos < 0 || pos >= image[a]) inside = false;
          offset = offset * image[a] + pos;
        }
        if (inside) out[offset] += row[l];
      }
    }
  }
}

KernelPtr makeCol2Im(const KernelCreateInfo& info) {
  std::vector<int64_t> dilAttr = info.node.attrInts("dilations"), padAttr = info.node.attrInts("pads"),
                       strideAttr = info.node.attrInts("strides");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkFloat(ctx, x.dtype()));
    WH_ASSIGN_OR_RETURN(auto image, readInts(ctx.input(1), ctx.describe() + ": image_shape"));
    WH_ASSIGN_OR_RETURN(auto block, readInts(ctx.input(2), ctx.describe() + ": block_shape"));
    size_t r = image.size();
    if (r == 0 || block.size() != r)
      return ctx.error("image_shape " + shapeToString(image) + " and block_shape " + shapeToString(block) +
                       " must have the same, non-zero length");
    if (x.rank() != 3) return ctx.error("input must be 3-D [N, C * prod(block_shape), L], got " + shapeToString(x.dims()));
    WH_ASSIGN_OR_RETURN(auto dil, attrList(ctx, dilAttr, r, 1, "dilations"));
    WH_ASSIGN_OR_RETURN(auto pads, attrList(ctx, padAttr, 2 * r, 0, "pads"));
    WH_ASSIGN_OR_RETURN(auto strides, attrList(ctx, strideAttr, r, 1, "strides"));
    int64_t kernel = 1, numBlocks = 1;
    std::vector<int64_t> blocks(r);
    for (size_t a = 0; a < r; ++a) {
      if (image[a] <= 0 || block[a] <= 0 || dil[a] <= 0 || strides[a] <= 0 || pads[a] < 0 || pads[a + r] < 0)
        return ctx.error("image_shape, block_shape, dilations and strides must be positive and pads non-negative");
      kernel *= block[a];
      int64_t span = dil[a] * (block[a] - 1) + 1;
      blocks[a] = (image[a] + pads[a] + pads[a + r] - span) / strides[a] + 1;
      if (blocks[a] <= 0) return ctx.error("the block does not fit the padded image on axis " + std::to_string(a));
      numBlocks *= blocks[a];
    }
    if (x.dims()[1] % kernel != 0)
      return ctx.error("input dim 1 (" + std::to_string(x.dims()[1]) + ") is not a multiple of prod(block_shape) = " +
                       std::to_string(kernel));
    if (x.dims()[2] != numBlocks)
      return ctx.error("input dim 2 (" + std::to_string(x.dims()[2]) + ") must be the number of blocks, " +
                       std::to_string(numBlocks));
    int64_t n = x.dims()[0], c = x.dims()[1] / kernel;
    std::vector<int64_t> outDims = {n, c};
    outDims.insert(outDims.end(), image.begin(), image.end());
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), outDims);
    if (y.numel() == 0) return Status::ok();
    if (x.dtype() == ir::DataType::kDouble) {
      col2im(x.data<double>(), y.mutableData<double>(), n, c, image, block, blocks, dil, pads, strides);
    } else {
      col2im(x.data<float>(), y.mutableData<float>(), n, c, image, block, blocks, dil, pads, strides);
    }
    return Status::ok();
  });
}

// ---- DeformConv ----

struct DeformGeometry {
  int64_t n, c, h, w, oc, kh, kw, oh, ow, group, offsetGroup;
  int64_t sh, sw, dh, dw, padTop, padLeft;
};

/// Bilinear sample of plane `x` (h x w) at (y, xw), zero outside.
template <typename T>
double bilinearZero(const T* x, int64_t h, int64_t w, double py, double px) {
  if (!(py > -1.0 && py < static_cast<double>(h) && px > -1.0 && px < static_cast<double>(w))) return 0.0;
  double fy = std::floor(py), fx = std::floor(px);
  auto y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
  double ty = py - fy, tx = px - fx;
  double acc = 0;
  auto at = [&](int64_t yy, int64_t xx) { return yy >= 0 && yy < h && xx >= 0 && xx < w ? static_cast<double>(x[yy * w + xx]) : 0.0; };
  acc += (1 - ty) * (1 - tx) * at(y0, x0);
  acc += (1 - ty) * tx * at(y0, x0 + 1);
  acc += ty * (1 - tx) * at(y0 + 1, x0);
  acc += ty * tx * at(y0 + 1, x0 + 1);
  return acc;
}

template <typename T>
void deformConv(const DeformGeometry& g, const T* x, const T* wt, const T* offset, const T* bias, const T* mask, T* y) {
  int64_t taps = g.kh * g.kw, outPlane = g.oh * g.ow;
  int64_t cPerGroup = g.c / g.group, ocPerGroup = g.oc / g.group, cPerOffsetGroup = g.c / g.offsetGroup;
  int64_t colRows = g.c * taps;
  std::vector<double> cols(static_cast<size_t>(colRows * outPlane));
  for (int64_t b = 0; b < g.n; ++b) {
    const T* xb = x + b * g.c * g.h * g.w;
    const T* ob = offset + b * g.offsetGroup * taps * 2 * outPlane;
    const T* mb = mask != nullptr ? mask + b * g.offsetGroup * taps * outPlane : nullptr;
    // The sampled columns: cols[(ch * taps + tap), o].
#pragma omp parallel for schedule(static) if (colRows * outPlane > 4096)
    for (int64_t row = 0; row < colRows; ++row) {
      int64_t ch = row / taps, tap = row % taps, i = tap / g.kw, j = tap % g.kw;
      int64_t og = ch / cPerOffsetGroup;
      const T* plane = xb + ch * g.h * g.w;
      const T* offH = ob + ((og * taps + tap) * 2) * outPlane;
      const T* offW = offH + outPlane;
      const T* m = mb != nullptr ? mb + (og * taps + tap) * outPlane : nullptr;
      double* dst = cols.data() + row * outPlane;
      for (int64_t o = 0; o < outPlane; ++o) {
        int64_t oy = o / g.ow, ox = o % g.ow;
        double py = static_cast<double>(oy * g.sh - g.padTop + i * g.dh) + static_cast<double>(offH[o]);
        double px = static_cast<double>(ox * g.sw - g.padLeft + j * g.dw) + static_cast<double>(offW[o]);
        double v = bilinearZero(plane, g.h, g.w, py, px);
        dst[o] = m != nullptr ? v * static_cast<double>(m[o]) : v;
      }
    }
    // y[b, oc, o] = bias[oc] + sum_k W[oc, k] * cols[group rows k, o].
    T* yb = y + b * g.oc * outPlane;
    int64_t k = cPerGroup * taps;
#pragma omp parallel for schedule(static) if (g.oc * outPlane * k > 32768)
    for (int64_t oc = 0; oc < g.oc; ++oc) {
      int64_t grp = oc / ocPerGroup;
      const double* colBase = cols.data() + grp * k * outPlane;
      const T* wrow = wt + oc * k;
      std::vector<double> acc(static_cast<size_t>(outPlane), bias != nullptr ? static_cast<double>(bias[oc]) : 0.0);
      for (int64_t q = 0; q < k; ++q) {
        double wq = static_cast<double>(wrow[q]);
        const double* col = colBase + q * outPlane;
        for (int64_t o = 0; o < outPlane; ++o) acc[static_cast<size_t>(o)] += wq * col[o];
      }
      for (int64_t o = 0; o < outPlane; ++o) yb[oc * outPlane + o] = static_cast<T>(acc[static_cast<size_t>(o)]);
    }
  }
}

KernelPtr makeDeformConv(const KernelCreateInfo& info) {
  std::vector<int64_t> dilAttr = info.node.attrInts("dilations"), padAttr = info.node.attrInts("pads"),
                       strideAttr = info.node.attrInts("strides"), kernelAttr = info.node.attrInts("kernel_shape");
  int64_t group = info.node.attrInt("group", 1), offsetGroup = info.node.attrInt("offset_group", 1);
  if (group <= 0 || offsetGroup <= 0) return info.error("group and offset_group must be positive");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& w = ctx.input(1);
    const ir::Tensor& offset = ctx.input(2);
    const ir::Tensor* bias = ctx.hasInput(3) ? &ctx.input(3) : nullptr;
    const ir::Tensor* mask = ctx.hasInput(4) ? &ctx.input(4) : nullptr;
    WH_RETURN_IF_ERROR(checkFloat(ctx, x.dtype()));
    if (x.rank() != 4) return ctx.unsupported("only 2-D DeformConv is supported (X [N, C, H, W]), got X " + shapeToString(x.dims()));
    for (const ir::Tensor* t : {&w, &offset, bias, mask}) {
      if (t != nullptr && t->dtype() != x.dtype()) return ctx.error("W, offset, B and mask must have the dtype of X");
    }
    if (w.rank() != 4) return ctx.error("W must be 4-D [oC, C / group, kH, kW], got " + shapeToString(w.dims()));
    DeformGeometry g{};
    g.n = x.dims()[0];
    g.c = x.dims()[1];
    g.h = x.dims()[2];
    g.w = x.dims()[3];
    g.oc = w.dims()[0];
    g.group = group;
    g.offsetGroup = offsetGroup;
    WH_ASSIGN_OR_RETURN(auto kernel, attrList(ctx, kernelAttr, 2, 0, "kernel_shape"));
    if (kernelAttr.empty()) kernel = {w.dims()[2], w.dims()[3]};
    if (kernel[0] != w.dims()[2] || kernel[1] != w.dims()[3])
      return ctx.error("kernel_shape " + shapeToString(kernel) + " does not match W " + shapeToString(w.dims()));
    g.kh = kernel[0];
    g.kw = kernel[1];
    WH_ASSIGN_OR_RETURN(auto dil, attrList(ctx, dilAttr, 2, 1, "dilations"));
    WH_ASSIGN_OR_RETURN(auto pads, attrList(ctx, padAttr, 4, 0, "pads"));
    WH_ASSIGN_OR_RETURN(auto strides, attrList(ctx, strideAttr, 2, 1, "strides"));
    g.dh = dil[0];
    g.dw = dil[1];
    g.sh = strides[0];
    g.sw = strides[1];
    g.padTop = pads[0];
    g.padLeft = pads[1];
    if (g.dh <= 0 || g.dw <= 0 || g.sh <= 0 || g.sw <= 0) return ctx.error("dilations and strides must be positive");
    if (g.c != w.dims()[1] * group || g.oc % group != 0)
      return ctx.error("X " + shapeToString(x.dims()) + " and W " + shapeToString(w.dims()) +
                       " do not agree with group " + std::to_string(group));
    if (g.c % offsetGroup != 0)
      return ctx.error("the channel count " + std::to_string(g.c) + " is not a multiple of offset_group " +
                       std::to_string(offsetGroup));
    g.oh = (g.h + pads[0] + pads[2] - (g.dh * (g.kh - 1) + 1)) / g.sh + 1;
    g.ow = (g.w + pads[1] + pads[3] - (g.dw * (g.kw - 1) + 1)) / g.sw + 1;
    if (g.oh <= 0 || g.ow <= 0) return ctx.error("the kernel does not fit the padded input");
    std::vector<int64_t> wantOffset = {g.n, offsetGroup * g.kh * g.kw * 2, g.oh, g.ow};
    if (offset.dims() != wantOffset)
      return ctx.error("offset has shape " + shapeToString(offset.dims()) + ", expected " + shapeToString(wantOffset));
    if (bias != nullptr && bias->dims() != std::vector<int64_t>{g.oc})
      return ctx.error("B has shape " + shapeToString(bias->dims()) + ", expected [" + std::to_string(g.oc) + "]");
    std::vector<int64_t> wantMask = {g.n, offsetGroup * g.kh * g.kw, g.oh, g.ow};
    if (mask != nullptr && mask->dims() != wantMask)
      return ctx.error("mask has shape " + shapeToString(mask->dims()) + ", expected " + shapeToString(wantMask));
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), {g.n, g.oc, g.oh, g.ow});
    if (y.numel() == 0) return Status::ok();
    auto run = [&](auto tag) {
      using T = decltype(tag);
      deformConv<T>(g, x.data<T>(), w.data<T>(), offset.data<T>(), bias != nullptr ? bias->data<T>() : nullptr,
                    mask != nullptr ? mask->data<T>() : nullptr, y.mutableData<T>());
    };
    if (x.dtype() == ir::DataType::kDouble) {
      run(double{});
    } else {
      run(float{});
    }
    return Status::ok();
  });
}

}  // namespace

void registerCol2ImKernels(KernelRegistry& registry) {
  registry.add("", "Col2Im", 18, makeCol2Im);
  registry.add("", "DeformConv", 19, makeDeformConv);
}

}  // namespace whittle::runtime::cpu
