// GridSample (opsets 16 and 20: 4-D at 16, any rank >= 3 at 20) and AffineGrid (opset 20),
// float32 and float64.
//
// GridSample: for X [N, C, D1..Dr] and grid [N, O1..Or, r] (grid[..., 0] indexes the last
// axis), Y[n, c, o] samples X[n, c] at the denormalised grid position
//   align_corners=1: x = (g + 1) / 2 * (D - 1)      else: x = ((g + 1) * D - 1) / 2
// nearest (rounded half to even), linear (2 taps per axis) or cubic (4 taps, Keys a = -0.75).
// padding_mode: zeros reads 0 outside; border clamps the coordinate and the taps; reflection
// reflects them about [0, D-1] (align_corners) or [-0.5, D-0.5].
// The taps and weights of one output position are computed once and applied to every channel.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

enum class SampleMode { kNearest, kLinear, kCubic };
enum class PadMode { kZeros, kBorder, kReflection };

/// Reflects `x` about [lo, hi] until it lies inside.
double reflect(double x, double lo, double hi) {
  double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    double dx = lo - x;
    auto n = static_cast<int64_t>(dx / range);
    double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    double dx = x - hi;
    auto n = static_cast<int64_t>(dx / range);
    double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

void cubicCoeffs(double t, double* c) {
  constexpr double a = -0.75;
  double x = t + 1;
  c[0] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  x = t;
  c[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
  x = 1 - t;
  c[2] = ((a + 2) * x - (a + 3)) * x * x + 1;
  x = 2 - t;
  c[3] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

struct GridSampleParams {
  SampleMode mode;
  PadMode pad;
  bool alignCorners;
};

/// The taps of one axis: indices (-1 for a zero read) and weights.
struct AxisTaps {
  std::array<int64_t, 4> index{};
  std::array<double, 4> weight{};
  int count = 0;
};

AxisTaps axisTaps(double g, int64_t size, const GridSampleParams& p) {
  double x = p.alignCorners ? (g + 1) / 2 * static_cast<double>(size - 1) : ((g + 1) * static_cast<double>(size) - 1) / 2;
  double lo = p.alignCorners ? 0.0 : -0.5, hi = p.alignCorners ? static_cast<double>(size - 1) : size - 0.5;
  // Beyond 1e9 pixels zeros and border padding read the same values and reflection has no
  // precision left; the clamp keeps the integer conversions below defined for any finite grid.
  if (std::isfinite(x)) x = std::clamp(x, -1e9, 1e9);
  if (p.mode == SampleMode::kNearest) x = std::nearbyint(x);
  if (x < lo || x > hi) {
    // Cubic border padding clamps each tap, not the coordinate (as ONNX Runtime and PyTorch do;
    // the ONNX Python reference clamps the coordinate first, which moves the taps).
    if (p.pad == PadMode::kBorder && p.mode != SampleMode::kCubic) x = std::clamp(x, 0.0, static_cast<double>(size - 1));
    if (p.pad == PadMode::kReflection) x = reflect(x, lo, hi);
  }
  // Maps a tap index to the index read (-1: zero).
  auto at = [&](int64_t i) -> int64_t {
    if (i >= 0 && i < size) return i;
    if (p.pad == PadMode::kZeros) return -1;
    if (p.pad == PadMode::kBorder) return std::clamp<int64_t>(i, 0, size - 1);
    auto r = static_cast<int64_t>(reflect(static_cast<double>(i), lo, hi));
    return std::clamp<int64_t>(r, 0, size - 1);
  };
  AxisTaps taps;
  if (!std::isfinite(x)) {  // a NaN grid value: read a zero (as the reference reads nothing valid)
    taps.count = 1;
    taps.index[0] = -1;
    taps.weight[0] = 0;
    return taps;
  }
  if (p.mode == SampleMode::kNearest) {
    taps.count = 1;
    taps.index[0] = at(static_cast<int64_t>(x));
    taps.weight[0] = 1;
  } else if (p.mode == SampleMode::kLinear) {
    double f = std::floor(x);
    auto i0 = static_cast<int64_t>(f);
    double t = x - f;
    taps.count = 2;
    taps.index = {at(i0), at(i0 + 1), 0, 0};
    taps.weight = {1 - t, t, 0, 0};
  } else {
    double f = std::floor(x);
    auto i0 = static_cast<int64_t>(f);
    taps.count = 4;
    cubicCoeffs(x - f, taps.weight.data());
    for (int k = 0; k < 4; ++k) taps.index[static_cast<size_t>(k)] = at(i0 - 1 + k);
  }
  return taps;
}

/// Output positions per block: the taps of a block are computed once, then every channel runs
/// over the block (so each channel's plane is read while it is in cache).
constexpr int64_t kGridBlock = 256;
/// The most taps one output position may read (4^3: cubic in 3-D).
constexpr int64_t kMaxGridTaps = 64;

template <typename T>
void gridSample(const ir::Tensor& xt, const ir::Tensor& gridT, ir::Tensor& yt, const GridSampleParams& p) {
  const auto& xd = xt.dims();
  const auto r = static_cast<size_t>(xt.rank() - 2);
  int64_t n = xd[0], c = xd[1];
  std::vector<int64_t> in(xd.begin() + 2, xd.end());
  std::vector<int64_t> inStride(r, 1);
  for (size_t i = r - 1; i > 0; --i) inStride[i - 1] = inStride[i] * in[i];
  int64_t inPlane = inStride[0] * in[0];
  int64_t outPlane = 1;
  for (size_t i = 1; i + 1 < static_cast<size_t>(gridT.rank()); ++i) outPlane *= gridT.dims()[i];
  const T* x = xt.data<T>();
  const T* grid = gridT.data<T>();
  T* y = yt.mutableData<T>();
  size_t maxTaps = 1;
  for (size_t a = 0; a < r; ++a) maxTaps *= p.mode == SampleMode::kCubic ? 4 : p.mode == SampleMode::kLinear ? 2 : 1;
  int64_t blocksPerBatch = (outPlane + kGridBlock - 1) / kGridBlock;
  int64_t jobs = n * blocksPerBatch;
  bool parallel = jobs > 1 && n * outPlane * c > 4096;
#pragma omp parallel if (parallel)
  {
    std::vector<AxisTaps> taps(r);
    // The tensor product of the axes' taps per position of the block (zero reads dropped).
    std::vector<int64_t> blockOff(static_cast<size_t>(kGridBlock) * maxTaps);
    std::vector<double> blockW(static_cast<size_t>(kGridBlock) * maxTaps);
    std::vector<int> blockCount(static_cast<size_t>(kGridBlock));
#pragma omp for schedule(static)
    for (int64_t job = 0; job < jobs; ++job) {
      int64_t b = job / blocksPerBatch;
      int64_t o0 = (job % blocksPerBatch) * kGridBlock, o1 = std::min(o0 + kGridBlock, outPlane);
      for (int64_t o = o0; o < o1; ++o) {
        const T* g = grid + (b * outPlane + o) * static_cast<int64_t>(r);
        // grid[..., k] is the coordinate of spatial axis r-1-k.
        for (size_t k = 0; k < r; ++k) taps[r - 1 - k] = axisTaps(static_cast<double>(g[k]), in[r - 1 - k], p);
        int64_t* off = blockOff.data() + static_cast<size_t>(o - o0) * maxTaps;
        double* w = blockW.data() + static_cast<size_t>(o - o0) * maxTaps;
        int count = 1;
        off[0] = 0;
        w[0] = 1.0;
        for (size_t a = 0; a < r; ++a) {
          // Expands in place from the back: entry q becomes entries q * taps + k.
          int next = 0;
          int64_t tmpOff[kMaxGridTaps];
          double tmpW[kMaxGridTaps];
          for (int q = 0; q < count; ++q) {
            for (int k = 0; k < taps[a].count; ++k) {
              int64_t idx = taps[a].index[static_cast<size_t>(k)];
              if (idx < 0) continue;
              tmpOff[next] = off[q] + idx * inStride[a];
              tmpW[next] = w[q] * taps[a].weight[static_cast<size_t>(k)];
              ++next;
            }
          }
          std::copy(tmpOff, tmpOff + next, off);
          std::copy(tmpW, tmpW + next, w);
          count = next;
        }
        blockCount[static_cast<size_t>(o - o0)] = count;
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        const T* xc = x + (b * c + ch) * inPlane;
        T* yc = y + (b * c + ch) * outPlane;
        for (int64_t o = o0; o < o1; ++o) {
          const int64_t* off = blockOff.data() + static_cast<size_t>(o - o0) * maxTaps;
          const double* w = blockW.data() + static_cast<size_t>(o - o0) * maxTaps;
          double acc = 0;
          for (int q = 0; q < blockCount[static_cast<size_t>(o - o0)]; ++q) acc += w[q] * static_cast<double>(xc[off[q]]);
          yc[o] = static_cast<T>(acc);
        }
      }
    }
  }
}

KernelPtr makeGridSample(const KernelCreateInfo& info) {
  GridSampleParams p{};
  std::string mode = info.node.attrString("mode", info.opset >= 20 ? "linear" : "bilinear");
  if (mode == "nearest") {
    p.mode = SampleMode::kNearest;
  } else if (mode == "linear" || mode == "bilinear") {
    p.mode = SampleMode::kLinear;
  } else if (mode == "cubic" || mode == "bicubic") {
    p.mode = SampleMode::kCubic;
  } else {
    return info.error("mode must be 'nearest', 'linear' or 'cubic' ('bilinear'/'bicubic' before opset 20), got '" +
                      mode + "'");
  }
  std::string pad = info.node.attrString("padding_mode", "zeros");
  if (pad == "zeros") {
    p.pad = PadMode::kZeros;
  } else if (pad == "border") {
    p.pad = PadMode::kBorder;
  } else if (pad == "reflection") {
    p.pad = PadMode::kReflection;
  } else {
    return info.error("padding_mode must be 'zeros', 'border' or 'reflection', got '" + pad + "'");
  }
  p.alignCorners = info.node.attrInt("align_corners", 0) != 0;
  bool only4d = info.opset < 20;
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& grid = ctx.input(1);
    if (x.dtype() != ir::DataType::kFloat && x.dtype() != ir::DataType::kDouble)
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(x.dtype())) +
                             " is not supported (float32 and float64 are)");
    if (grid.dtype() != x.dtype()) return ctx.error("grid must have the dtype of X");
    if (x.rank() < 3 || (only4d && x.rank() != 4))
      return ctx.error("X must be " + std::string(only4d ? "4-D before opset 20" : "of rank >= 3") + ", got " +
                       shapeToString(x.dims()));
    int64_t r = x.rank() - 2;
    int64_t taps = 1;
    for (int64_t a = 0; a < r; ++a) taps *= p.mode == SampleMode::kCubic ? 4 : p.mode == SampleMode::kLinear ? 2 : 1;
    if (taps > kMaxGridTaps)
      return ctx.unsupported(std::to_string(r) + " spatial axes need " + std::to_string(taps) +
                             " taps per output in this mode; at most " + std::to_string(kMaxGridTaps) +
                             " are supported (cubic up to 3-D, linear up to 6-D)");
    if (grid.rank() != x.rank() || grid.dims()[0] != x.dims()[0] || grid.dims().back() != r)
      return ctx.error("grid has shape " + shapeToString(grid.dims()) + ", expected [N, ...(" + std::to_string(r) +
                       " dims), " + std::to_string(r) + "] for X " + shapeToString(x.dims()));
    std::vector<int64_t> outDims = {x.dims()[0], x.dims()[1]};
    outDims.insert(outDims.end(), grid.dims().begin() + 1, grid.dims().end() - 1);
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), outDims);
    if (y.numel() == 0) return Status::ok();
    for (int64_t i = 2; i < x.rank(); ++i) {
      if (x.dims()[static_cast<size_t>(i)] == 0) return ctx.error("X has an empty spatial axis " + shapeToString(x.dims()));
    }
    if (x.dtype() == ir::DataType::kDouble) {
      gridSample<double>(x, grid, y, p);
    } else {
      gridSample<float>(x, grid, y, p);
    }
    return Status::ok();
  });
}

// ---- AffineGrid ----

/// The base coordinate of position i of an axis of `size`, in [-1, 1].
double baseCoordinate(int64_t i, int64_t size, bool alignCorners) {
  if (alignCorners) return size > 1 ? -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(size - 1) : -1.0;
  return -1.0 + (2.0 * static_cast<double>(i) + 1.0) / static_cast<double>(size);
}

template <typename T>
void affineGrid(const T* theta, T* out, const std::vector<int64_t>& size, bool alignCorners) {
  // size = [N, C, (D,) H, W]; theta [N, r, r+1]; out [N, (D,) H, W, r].
  int64_t n = size[0];
  size_t r = size.size() - 2;
  std::vector<int64_t> sp(size.begin() + 2, size.end());
  int64_t plane = 1;
  for (int64_t s : sp) plane *= s;
  std::vector<std::vector<double>> base(r);
  for (size_t a = 0; a < r; ++a) {
    for (int64_t i = 0; i < sp[a]; ++i) base[a].push_back(baseCoordinate(i, sp[a], alignCorners));
  }
  for (int64_t b = 0; b < n; ++b) {
    const T* th = theta + b * static_cast<int64_t>(r * (r + 1));
    for (int64_t o = 0; o < plane; ++o) {
      // The homogeneous point [x (last axis), y, (z,) 1].
      std::array<double, 4> pt{};
      int64_t rem = o;
      for (size_t a = r; a-- > 0;) {
        pt[r - 1 - a] = base[a][static_cast<size_t>(rem % sp[a])];
        rem /= sp[a];
      }
      pt[r] = 1.0;
      T* dst = out + (b * plane + o) * static_cast<int64_t>(r);
      for (size_t k = 0; k < r; ++k) {
        double acc = 0;
        for (size_t j = 0; j <= r; ++j) acc += static_cast<double>(th[k * (r + 1) + j]) * pt[j];
        dst[k] = static_cast<T>(acc);
      }
    }
  }
}

KernelPtr makeAffineGrid(const KernelCreateInfo& info) {
  bool alignCorners = info.node.attrInt("align_corners", 0) != 0;
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    const ir::Tensor& theta = ctx.input(0);
    if (theta.dtype() != ir::DataType::kFloat && theta.dtype() != ir::DataType::kDouble)
      return ctx.unsupported("dtype " + std::string(ir::dataTypeName(theta.dtype())) +
                             " is not supported (float32 and float64 are)");
    WH_ASSIGN_OR_RETURN(auto size, readInts(ctx.input(1), ctx.describe() + ": size"));
    if (size.size() != 4 && size.size() != 5)
      return ctx.error("size must hold 4 values [N, C, H, W] or 5 [N, C, D, H, W], got " + shapeToString(size));
    for (int64_t s : size) {
      if (s < 0) return ctx.error("size " + shapeToString(size) + " has a negative value");
    }
    int64_t r = static_cast<int64_t>(size.size()) - 2;
    if (theta.dims() != std::vector<int64_t>{size[0], r, r + 1})
      return ctx.error("theta has shape " + shapeToString(theta.dims()) + ", expected [" + std::to_string(size[0]) +
                       ", " + std::to_string(r) + ", " + std::to_string(r + 1) + "] for size " + shapeToString(size));
    std::vector<int64_t> outDims = {size[0]};
    outDims.insert(outDims.end(), size.begin() + 2, size.end());
    outDims.push_back(r);
    ir::Tensor& y = ctx.allocateOutput(0, theta.dtype(), outDims);
    if (y.numel() == 0) return Status::ok();
    if (theta.dtype() == ir::DataType::kDouble) {
      affineGrid(theta.data<double>(), y.mutableData<double>(), size, alignCorners);
    } else {
      affineGrid(theta.data<float>(), y.mutableData<float>(), size, alignCorners);
    }
    return Status::ok();
  });
}

}  // namespace

void registerGridSampleKernels(KernelRegistry& registry) {
  registry.add("", "GridSample", 16, makeGridSample);
  registry.add("", "AffineGrid", 20, makeAffineGrid);
}

}  // namespace whittle::runtime::cpu
