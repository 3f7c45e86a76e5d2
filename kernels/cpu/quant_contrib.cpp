// The com.microsoft quantized ops that ONNX Runtime's quantizer emits in QOperator models, with
// ONNX Runtime's arithmetic (MLAS x86 kernels):
//
//   QLinearAdd: c = sat(round(fma(a, sa/sc, fma(b, sb/sc, zc - (sa/sc*za + sb/sc*zb)))))
//   QLinearMul: c = sat(round(float((a - za) * (b - zb)) * (sa*sb/sc) + zc))
//   QLinearGlobalAveragePool: y = sat(round(float(sum(x) - zx*HW) * (sx / (sy*HW))) + zy)
//   QLinearAveragePool: dequantize, average in float, y = sat(round(avg / sy + zy))
//   QLinearConcat: each input requantised to (y_scale, y_zp) through a 256-entry table
//   QLinearLeakyRelu, QLinearSigmoid: y = quantize(f(dequantize(x))) through a 256-entry table
// All of them take uint8 or int8 tensors; zero points are optional (0).
#include <omp.h>

#include <algorithm>
#include <array>
#include <functional>
#include <numeric>
#include <vector>
#include <cmath>
#include <cstring>

#include "cpu/elementwise_common.h"
#include "cpu/kernel_util.h"
#include "cpu/quant_common.h"

namespace whittle::runtime::cpu::quant {
namespace {

using ir::DataType;

constexpr const char* kMicrosoft = "com.microsoft";
constexpr int64_t kParallelMin = 65536;

Status checkByteTensor(const KernelContext& ctx, const ir::Tensor& t, const std::string& what) {
  if (t.dtype() == DataType::kUint8 || t.dtype() == DataType::kInt8) return Status::ok();
  return ctx.unsupported("input " + what + " of dtype " + typeName(t.dtype()) + " is not supported (uint8, int8 are)");
}

// Calls fn(aOffset, aStep, bOffset, bStep, outOffset, count) over runs of the output of a
// broadcasting binary op; steps are 0 (broadcast) or 1.
template <typename F>
Status forEachBroadcastRun(const KernelContext& ctx, const std::vector<int64_t>& aDims, const std::vector<int64_t>& bDims,
                           std::vector<int64_t>& outDims, F&& fn) {
  auto shape = broadcastShapes(aDims, bDims);
  if (!shape) return ctx.error("shapes " + shapeToString(aDims) + " and " + shapeToString(bDims) + " do not broadcast");
  outDims = *shape;
  int64_t total = 1;
  for (int64_t d : outDims) total *= d;
  int64_t aN = 1, bN = 1;
  for (int64_t d : aDims) aN *= d;
  for (int64_t d : bDims) bN *= d;
  if (total == 0) return Status::ok();
  if (aN == total && bN == total) {  // same shape
    fn(0, 1, 0, 1, 0, total);
    return Status::ok();
  }
  if (aN == total && bN == 1) {
    fn(0, 1, 0, 0, 0, total);
    return Status::ok();
  }
  if (aN == 1 && bN == total) {
    fn(0, 0, 0, 1, 0, total);
    return Status::ok();
  }
  // Adjacent dims that both inputs walk alike (contiguously or not at all) merge, so that runs
  // are as long as they can be: [1, C, H, W] by an SE gate [1, C, 1, 1] is C runs of H * W, not
  // C * H runs of W.
  const std::vector<int64_t> aFull = broadcastStrides(aDims, outDims), bFull = broadcastStrides(bDims, outDims);
  std::vector<int64_t> dims, aStrides, bStrides;
  for (size_t d = 0; d < outDims.size(); ++d) {
    if (outDims[d] == 1) continue;
    auto walks = [](int64_t outer, int64_t inner, int64_t innerSize) { return outer == 0 ? inner == 0 : outer == inner * innerSize; };
    if (!dims.empty() && walks(aStrides.back(), aFull[d], outDims[d]) && walks(bStrides.back(), bFull[d], outDims[d])) {
      dims.back() *= outDims[d];
      aStrides.back() = aFull[d];
      bStrides.back() = bFull[d];
      continue;
    }
    dims.push_back(outDims[d]);
    aStrides.push_back(aFull[d]);
    bStrides.push_back(bFull[d]);
  }
  const size_t rank = dims.size();
  const int64_t inner = dims[rank - 1];
  const int64_t aStep = aStrides[rank - 1] != 0 ? 1 : 0, bStep = bStrides[rank - 1] != 0 ? 1 : 0;
  for (int64_t row = 0; row < total / inner; ++row) {
    int64_t rem = row, ao = 0, bo = 0;
    for (size_t d = rank - 1; d-- > 0;) {
      const int64_t idx = rem % dims[d];
      rem /= dims[d];
      ao += idx * aStrides[d];
      bo += idx * bStrides[d];
    }
    fn(ao, aStep, bo, bStep, row * inner, inner);
  }
  return Status::ok();
}

// ---- QLinearAdd / QLinearMul ----

struct BinaryParams {
  float sa, sb, sc;
  int32_t za, zb, zc;
};

template <typename T>
WH_QUANT_SIMD void addRows(const T* a, const T* b, T* c, int64_t n, float ra, float rb, float fixed, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::fma(static_cast<float>(a[i]), ra, std::fma(static_cast<float>(b[i]), rb, fixed));
    c[i] = static_cast<T>(clampRoundAddZp(v, lo, hi, 0));
  }
}

template <typename T>
WH_QUANT_SIMD void addRowScalar(const T* a, T* c, int64_t n, float ra, float fixed, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) c[i] = static_cast<T>(clampRoundAddZp(std::fma(static_cast<float>(a[i]), ra, fixed), lo, hi, 0));
}

template <typename T>
WH_QUANT_SIMD void mulRows(const T* a, const T* b, T* c, int64_t n, int32_t za, int32_t zb, float ratio, float zc, float lo,
                           float hi) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t prod = (static_cast<int32_t>(a[i]) - za) * (static_cast<int32_t>(b[i]) - zb);
    const float v = static_cast<float>(prod) * ratio + zc;
    c[i] = static_cast<T>(clampRoundAddZp(v, lo, hi, 0));
  }
}

// mulRows by one broadcast operand, k = its value less its zero point (the integer product
// commutes, so either side may be the broadcast one): vectorises, where a step of 0 did not.
template <typename T>
WH_QUANT_SIMD void mulRowScalar(const T* a, T* c, int64_t n, int32_t za, int32_t k, float ratio, float zc, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>((static_cast<int32_t>(a[i]) - za) * k) * ratio + zc;
    c[i] = static_cast<T>(clampRoundAddZp(v, lo, hi, 0));
  }
}

// QLinearMul of `pixels` rows of ch bytes by one gate row of ch (an SE block on NHWC bytes), in
// one call: mulRows' arithmetic on the gate repeated over enough rows that a block of them is a
// whole number of 64-byte vectors, so no row ends in a scalar tail (SE blocks have 8-200
// channels: a tail of 8 to 56 bytes a row took 3/4 of the time).
template <typename T>
void mulGateRows(const T* x, const T* g, T* c, int64_t pixels, int64_t ch, int32_t zx, int32_t zg, float ratio, float zc,
                 float lo, float hi) {
  if (pixels <= 0 || ch <= 0) return;
  const int64_t rows = std::min<int64_t>(pixels, 64 / std::gcd<int64_t>(ch, 64));
  std::vector<T> tiled(static_cast<size_t>(rows * ch));
  for (int64_t r = 0; r < rows; ++r) std::memcpy(tiled.data() + r * ch, g, static_cast<size_t>(ch) * sizeof(T));
  for (int64_t px = 0; px < pixels; px += rows) {
    const int64_t n = std::min(rows, pixels - px) * ch;
    mulRows(x + px * ch, tiled.data(), c + px * ch, n, zx, zg, ratio, zc, lo, hi);
  }
}

template <typename T>
void binaryRun(bool isAdd, const BinaryParams& p, const T* a, int64_t aStep, const T* b, int64_t bStep, T* c, int64_t n) {
  const IntRange range = *intRange(std::is_signed_v<T> ? DataType::kInt8 : DataType::kUint8);
  const float lo = static_cast<float>(range.lo), hi = static_cast<float>(range.hi);
  if (!isAdd) {
    const float ratio = p.sa * p.sb / p.sc, zc = static_cast<float>(p.zc);
    if (aStep == 1 && bStep == 1) {
      mulRows(a, b, c, n, p.za, p.zb, ratio, zc, lo, hi);
    } else if (aStep == 1) {
      mulRowScalar(a, c, n, p.za, static_cast<int32_t>(b[0]) - p.zb, ratio, zc, lo, hi);
    } else if (bStep == 1) {
      mulRowScalar(b, c, n, p.zb, static_cast<int32_t>(a[0]) - p.za, ratio, zc, lo, hi);
    } else {
      mulRows(a, b, c, 1, p.za, p.zb, ratio, zc, lo, hi);
      std::fill(c + 1, c + n, c[0]);
    }
    return;
  }
  const float ra = p.sa / p.sc, rb = p.sb / p.sc;
  float fixed = static_cast<float>(p.zc) - (ra * static_cast<float>(p.za) + rb * static_cast<float>(p.zb));
  if (aStep == 1 && bStep == 1) {
    addRows(a, b, c, n, ra, rb, fixed, lo, hi);
  } else if (aStep == 1) {
    fixed = fixed + static_cast<float>(b[0]) * rb;
    addRowScalar(a, c, n, ra, fixed, lo, hi);
  } else if (bStep == 1) {
    fixed = fixed + static_cast<float>(a[0]) * ra;
    addRowScalar(b, c, n, rb, fixed, lo, hi);
  } else {
    addRows(a, b, c, 1, ra, rb, fixed, lo, hi);
    std::fill(c + 1, c + n, c[0]);
  }
}

class QLinearBinaryKernel final : public Kernel {
 public:
  QLinearBinaryKernel(const KernelCreateInfo& info, bool isAdd)
      : isAdd_(isAdd), channelsLast_(info.channelsLastInt8(info.node.output(0))) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& a = ctx.input(0);
    const ir::Tensor& b = ctx.input(3);
    WH_RETURN_IF_ERROR(checkByteTensor(ctx, a, "A"));
    if (b.dtype() != a.dtype()) return ctx.error("A is " + typeName(a.dtype()) + " but B is " + typeName(b.dtype()));
    BinaryParams p{};
    WH_ASSIGN_OR_RETURN(p.sa, scalarScale(ctx, 1, "A_scale"));
    WH_ASSIGN_OR_RETURN(p.za, scalarZeroPoint(ctx, 2, "A_zero_point"));
    WH_ASSIGN_OR_RETURN(p.sb, scalarScale(ctx, 4, "B_scale"));
    WH_ASSIGN_OR_RETURN(p.zb, scalarZeroPoint(ctx, 5, "B_zero_point"));
    WH_ASSIGN_OR_RETURN(p.sc, scalarScale(ctx, 6, "C_scale"));
    WH_ASSIGN_OR_RETURN(p.zc, scalarZeroPoint(ctx, 7, "C_zero_point"));
    if (channelsLast_ && a.dims() != b.dims()) {
      // [N, C, H, W] over NHWC bytes with a [N, C, 1, 1] gate: per pixel, one row of C by C.
      auto gate = [](const std::vector<int64_t>& full, const std::vector<int64_t>& vec) {
        return full.size() == 4 && vec.size() == 4 && vec[0] == full[0] && vec[1] == full[1] && vec[2] == 1 && vec[3] == 1;
      };
      const bool gateB = gate(a.dims(), b.dims());
      if (!gateB && !gate(b.dims(), a.dims())) {
        return ctx.error("channels-last inputs " + shapeToString(a.dims()) + " and " + shapeToString(b.dims()) + " differ");
      }
      const ir::Tensor& full = gateB ? a : b;
      const ir::Tensor& vec = gateB ? b : a;
      const int64_t n = full.dims()[0], ch = full.dims()[1], hw = full.dims()[2] * full.dims()[3];
      ir::Tensor& c = ctx.allocateOutput(0, a.dtype(), full.dims());
      auto go = [&](auto* cd) {
        using T = std::remove_pointer_t<decltype(cd)>;
        const T* fd = reinterpret_cast<const T*>(full.rawData());
        const T* vd = reinterpret_cast<const T*>(vec.rawData());
        if (!isAdd_) {  // the product commutes: x by the gate, one call per image (per thread's share)
          const IntRange range = *intRange(a.dtype());
          const int32_t zx = gateB ? p.za : p.zb, zg = gateB ? p.zb : p.za;
          const float ratio = p.sa * p.sb / p.sc, lo = static_cast<float>(range.lo), hi = static_cast<float>(range.hi);
          parallelChunks(n * hw, ctx.threads(), std::max<int64_t>(1, kParallelMin / std::max<int64_t>(ch, 1)), [&](int64_t b, int64_t e) {
            for (int64_t px = b; px < e;) {  // [px, end) within one image, whose gate row is vd + image * ch
              const int64_t image = px / hw, end = std::min(e, (image + 1) * hw);
              mulGateRows<T>(fd + px * ch, vd + image * ch, cd + px * ch, end - px, ch, zx, zg, ratio, static_cast<float>(p.zc), lo, hi);
              px = end;
            }
          });
          return;
        }
#pragma omp parallel for if (n * hw * ch > kParallelMin) schedule(static)
        for (int64_t px = 0; px < n * hw; ++px) {
          const T* row = fd + px * ch;
          const T* g = vd + (px / hw) * ch;
          if (gateB) {
            binaryRun<T>(isAdd_, p, row, 1, g, 1, cd + px * ch, ch);
          } else {
            binaryRun<T>(isAdd_, p, g, 1, row, 1, cd + px * ch, ch);
          }
        }
      };
      if (a.dtype() == DataType::kUint8) {
        go(c.mutableData<uint8_t>());
      } else {
        go(c.mutableData<int8_t>());
      }
      return Status::ok();
    }
    std::vector<int64_t> outDims;
    std::vector<std::array<int64_t, 6>> runs;
    WH_RETURN_IF_ERROR(forEachBroadcastRun(ctx, a.dims(), b.dims(), outDims,
                                           [&](int64_t ao, int64_t as, int64_t bo, int64_t bs, int64_t co, int64_t n) {
                                             runs.push_back({ao, as, bo, bs, co, n});
                                           }));
    ir::Tensor& c = ctx.allocateOutput(0, a.dtype(), outDims);
    auto go = [&](auto* cd) {
      using T = std::remove_pointer_t<decltype(cd)>;
      const T* ad = reinterpret_cast<const T*>(a.rawData());
      const T* bd = reinterpret_cast<const T*>(b.rawData());
      if (runs.size() == 1 && runs[0][5] > kParallelMin) {  // one long run: split it
        const auto& r = runs[0];
        const int64_t chunks = std::min<int64_t>(omp_get_max_threads() * 4, r[5] / 16384);
#pragma omp parallel for
        for (int64_t k = 0; k < chunks; ++k) {
          const int64_t begin = r[5] * k / chunks, end = r[5] * (k + 1) / chunks;
          binaryRun<T>(isAdd_, p, ad + r[0] + begin * r[1], r[1], bd + r[2] + begin * r[3], r[3], cd + r[4] + begin, end - begin);
        }
        return;
      }
      for (const auto& r : runs) binaryRun<T>(isAdd_, p, ad + r[0], r[1], bd + r[2], r[3], cd + r[4], r[5]);
    };
    if (a.dtype() == DataType::kUint8) {
      go(c.mutableData<uint8_t>());
    } else {
      go(c.mutableData<int8_t>());
    }
    return Status::ok();
  }

 private:
  bool isAdd_;
  bool channelsLast_;
};

// ---- QLinearGlobalAveragePool ----

// acc[j] += x[j], j < n (int32 sums of bytes).
template <typename T>
WH_QUANT_SIMD void accumulateBytes(const T* x, int32_t* acc, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += static_cast<int32_t>(x[j]);
}

// acc[j] += x[j], j < n, in int32.
WH_QUANT_SIMD void addInt32(const int32_t* x, int32_t* acc, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += x[j];
}

// sums[ch] = bias + the sum of channel ch over hw NHWC pixels of c bytes: blocks of rows that are
// a whole number of 64-byte vectors are summed into one tiled row, then its rows are folded (as
// mulGateRows does, so that c = 200 does not end each pixel in a scalar tail).
template <typename T>
void nhwcChannelSums(const T* img, int64_t hw, int64_t c, int32_t bias, int32_t* sums) {
  std::fill(sums, sums + c, bias);
  if (hw <= 0 || c <= 0) return;
  const int64_t rows = std::min<int64_t>(hw, 64 / std::gcd<int64_t>(c, 64));
  std::vector<int32_t> tiled(static_cast<size_t>(rows * c), 0);
  int64_t p = 0;
  for (; p + rows <= hw; p += rows) accumulateBytes(img + p * c, tiled.data(), rows * c);
  accumulateBytes(img + p * c, tiled.data(), (hw - p) * c);
  for (int64_t r = 0; r < rows; ++r) addInt32(tiled.data() + r * c, sums, c);
}

class QLinearGlobalAveragePoolKernel final : public Kernel {
 public:
  explicit QLinearGlobalAveragePoolKernel(const KernelCreateInfo& info)
      : channelsLastAttr_(info.node.attrInt("channels_last", 0) != 0), nhwcInput_(info.channelsLastInt8(info.node.input(0))) {}

  Status run(KernelContext& ctx) override {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(checkByteTensor(ctx, x, "X"));
    if (x.rank() < 3) return ctx.error("X must have rank >= 3, got " + shapeToString(x.dims()));
    WH_ASSIGN_OR_RETURN(float sx, scalarScale(ctx, 1, "x_scale"));
    WH_ASSIGN_OR_RETURN(int32_t zx, scalarZeroPoint(ctx, 2, "x_zero_point"));
    WH_ASSIGN_OR_RETURN(float sy, scalarScale(ctx, 3, "y_scale"));
    WH_ASSIGN_OR_RETURN(int32_t zy, scalarZeroPoint(ctx, 4, "y_zero_point"));
    const int64_t n = x.dims()[0];
    const int64_t c = channelsLastAttr_ ? x.dims().back() : x.dims()[1];
    const int64_t hw = x.numel() / std::max<int64_t>(n * c, 1);
    std::vector<int64_t> yDims(x.dims().size(), 1);
    yDims[0] = n;
    yDims[channelsLastAttr_ ? yDims.size() - 1 : 1] = c;
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), yDims);
    const float scale = sx / (sy * static_cast<float>(hw));
    const IntRange range = *intRange(x.dtype());
    const int32_t bias = -zx * static_cast<int32_t>(hw);
    const bool nhwc = channelsLastAttr_ || nhwcInput_;
    auto go = [&](const auto* xd, auto* yd) {
      std::vector<int32_t> sums(static_cast<size_t>(c));
      for (int64_t b = 0; b < n; ++b) {
        const auto* img = xd + b * c * hw;
        if (nhwc) {
          nhwcChannelSums(img, hw, c, bias, sums.data());
        } else {
          for (int64_t ch = 0; ch < c; ++ch) {
            int32_t s = bias;
            for (int64_t p = 0; p < hw; ++p) s += img[ch * hw + p];
            sums[static_cast<size_t>(ch)] = s;
          }
        }
        for (int64_t ch = 0; ch < c; ++ch) {
          yd[b * c + ch] = static_cast<std::remove_reference_t<decltype(yd[0])>>(requantize(sums[static_cast<size_t>(ch)], scale, range, zy));
        }
      }
    };
    if (x.dtype() == DataType::kUint8) {
      go(x.data<uint8_t>(), y.mutableData<uint8_t>());
    } else {
      go(x.data<int8_t>(), y.mutableData<int8_t>());
    }
    return Status::ok();
  }

 private:
  bool channelsLastAttr_;  // the op's own attribute: X's dims are [N, H, W, C]
  bool nhwcInput_;         // the runtime's channels-last plan: X's dims are NCHW, its bytes NHWC
};

// ---- table-driven ops: QLinearLeakyRelu, QLinearSigmoid, QLinearConcat ----

// table[v] = quantize(f(dequantize(v))) for every byte value v, as ONNX Runtime's
// QlinearBuildLookupTable does (MlasDequantizeLinear, f, MlasQuantizeLinear).
template <typename F>
std::array<uint8_t, 256> buildTable(DataType type, float xs, int32_t xz, float ys, int32_t yz, F&& f) {
  std::array<uint8_t, 256> table{};
  const IntRange r = *intRange(type);
  for (int i = 0; i < 256; ++i) {
    const int32_t q = type == DataType::kInt8 ? static_cast<int8_t>(i) : i;
    const float x = static_cast<float>(q - xz) * xs;
    table[static_cast<size_t>(i)] = static_cast<uint8_t>(
        clampRoundAddZp(f(x) / ys, static_cast<float>(r.lo - yz), static_cast<float>(r.hi - yz), yz));
  }
  return table;
}

void applyTable(const std::array<uint8_t, 256>& table, const uint8_t* x, uint8_t* y, int64_t n) {
  constexpr int64_t kChunk = 1 << 15;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    lookupBytes(table.data(), x + begin, y + begin, std::min(kChunk, n - begin));
  }
}

// Inputs X, X_scale, X_zero_point, Y_scale, Y_zero_point.
Status lookupOp(KernelContext& ctx, const std::function<float(float)>& f) {
  const ir::Tensor& x = ctx.input(0);
  WH_RETURN_IF_ERROR(checkByteTensor(ctx, x, "X"));
  WH_ASSIGN_OR_RETURN(float xs, scalarScale(ctx, 1, "X_scale"));
  WH_ASSIGN_OR_RETURN(int32_t xz, scalarZeroPoint(ctx, 2, "X_zero_point"));
  WH_ASSIGN_OR_RETURN(float ys, scalarScale(ctx, 3, "Y_scale"));
  WH_ASSIGN_OR_RETURN(int32_t yz, scalarZeroPoint(ctx, 4, "Y_zero_point"));
  auto table = buildTable(x.dtype(), xs, xz, ys, yz, f);
  ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), x.dims());
  applyTable(table, reinterpret_cast<const uint8_t*>(x.rawData()), reinterpret_cast<uint8_t*>(y.mutableRawData()), x.numel());
  return Status::ok();
}

// Inputs Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input; attribute axis.
/// `nhwc`: the inputs and the output are in the channels-last plan (dims NCHW, bytes NHWC), and
/// the axis is the channel axis, so the concatenation runs along the last physical axis.
Status qlinearConcat(KernelContext& ctx, bool nhwc) {
  if (ctx.numInputs() < 5 || (ctx.numInputs() - 2) % 3 != 0) {
    return ctx.error("expects Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples, got " + std::to_string(ctx.numInputs()) + " inputs");
  }
  WH_ASSIGN_OR_RETURN(float ys, scalarScale(ctx, 0, "Y_scale"));
  WH_ASSIGN_OR_RETURN(int32_t yz, scalarZeroPoint(ctx, 1, "Y_zero_point"));
  const size_t count = (ctx.numInputs() - 2) / 3;
  const ir::Tensor& first = ctx.input(2);
  WH_RETURN_IF_ERROR(checkByteTensor(ctx, first, "X"));
  const DataType type = ctx.hasInput(1) ? ctx.input(1).dtype() : first.dtype();
  auto axis = normalizeAxis(ctx.node().attrInt("axis", 0), first.rank());
  if (!axis || first.rank() == 0) return ctx.error("axis is out of range for rank " + std::to_string(first.rank()));
  std::vector<int64_t> outDims = first.dims();
  outDims[static_cast<size_t>(*axis)] = 0;
  for (size_t i = 0; i < count; ++i) {
    const ir::Tensor& x = ctx.input(2 + 3 * i);
    if (x.dtype() != type) return ctx.error("input " + std::to_string(i) + " is " + typeName(x.dtype()) + ", expected " + typeName(type));
    bool ok = x.rank() == first.rank();
    for (int64_t d = 0; ok && d < x.rank(); ++d) ok = d == *axis || x.dims()[static_cast<size_t>(d)] == first.dims()[static_cast<size_t>(d)];
    if (!ok) return ctx.error("input " + shapeToString(x.dims()) + " does not match " + shapeToString(first.dims()) + " off axis " + std::to_string(*axis));
    outDims[static_cast<size_t>(*axis)] += x.dims()[static_cast<size_t>(*axis)];
  }
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < *axis; ++d) outer *= outDims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(*axis) + 1; d < outDims.size(); ++d) inner *= outDims[d];
  if (nhwc) {  // [N, C, H, W] dims over [N, H, W, C] bytes: rows of C per pixel
    outer *= inner;
    inner = 1;
  }
  ir::Tensor& y = ctx.allocateOutput(0, type, outDims);
  auto* yd = reinterpret_cast<uint8_t*>(y.mutableRawData());
  const int64_t rowOut = outDims[static_cast<size_t>(*axis)] * inner;
  int64_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    const ir::Tensor& x = ctx.input(2 + 3 * i);
    WH_ASSIGN_OR_RETURN(float xs, scalarScale(ctx, 3 + 3 * i, "X_scale"));
    WH_ASSIGN_OR_RETURN(int32_t xz, scalarZeroPoint(ctx, 4 + 3 * i, "X_zero_point"));
    const bool same = xs == ys && xz == yz;
    auto table = buildTable(type, xs, xz, ys, yz, [](float v) { return v; });
    const int64_t row = x.dims()[static_cast<size_t>(*axis)] * inner;
    const auto* xd = reinterpret_cast<const uint8_t*>(x.rawData());
    if (outer == 1) {  // one block: the table lookup parallelizes inside
      if (same) {
        std::memcpy(yd + offset, xd, static_cast<size_t>(row));
      } else {
        applyTable(table, xd, yd + offset, row);
      }
    } else {  // many rows (channels-last: one per pixel): parallel over rows
#pragma omp parallel for if (outer * row > kParallelMin) schedule(static)
      for (int64_t o = 0; o < outer; ++o) {
        uint8_t* dst = yd + o * rowOut + offset;
        const uint8_t* src = xd + o * row;
        if (same) {
          std::memcpy(dst, src, static_cast<size_t>(row));
        } else {
          lookupBytes(table.data(), src, dst, row);
        }
      }
    }
    offset += row;
  }
  return Status::ok();
}

// ---- QLinearAveragePool ----

// One channel plane of QLinearAveragePool: geometry padded to three spatial dims, and the
// quantisation parameters.
struct AveragePoolPlane {
  int64_t in[3], k[3], s[3], pb[3], out[3];
  bool includePad;
  float xs;
  int32_t xz;
  float ys;
  int32_t yz;
  IntRange range;
  bool isSigned;
};

// The code of an average: sum / count / y_scale + y_zp clamped to the range, then rounded half
// to even (NaN goes to the range's low end, as the integer conversion of nearbyint(NaN) clamped
// did). Every QLinearAveragePool route finishes with it, so their bytes agree.
inline int32_t averageCode(const AveragePoolPlane& g, float sum, float count) {
  float v = sum / count / g.ys + static_cast<float>(g.yz);
  v = v > static_cast<float>(g.range.lo) ? v : static_cast<float>(g.range.lo);
  v = v < static_cast<float>(g.range.hi) ? v : static_cast<float>(g.range.hi);
  return static_cast<int32_t>(roundHalfEvenSmall(v));
}

// Pools one NCHW plane of bytes `x` into `y`. Every output's sum runs over its window in the
// reference order (rows i0, i1, then columns i2 ascending, each term xs * (q - xz) in float), so
// the bytes are those of the plain loop; the sums of one output row are kept side by side and
// the window's columns added to all of them at once, which vectorises across the row's outputs
// whose windows lie inside the columns (the clipped ones at the two ends go one by one).
// `scratch` holds the plane in float and four rows of OW values. The rounding clamps first and
// rounds half to even by adding 1.5 * 2^23 (exact within the clamped range), the result of
// clamp(nearbyint(v)) without the libm call per output.
WH_QUANT_SIMD void averagePoolPlane(const AveragePoolPlane& g, const uint8_t* x, uint8_t* y, float* scratch) {
  const int64_t inSize = g.in[0] * g.in[1] * g.in[2], ow = g.out[2], iw = g.in[2], k2 = g.k[2], s2 = g.s[2], p2 = g.pb[2];
  if (ow < 8) {  // narrow outputs (a 3x3 plane pooled to 1x1): the loops below would cost more in set-up than in work
    for (int64_t o0 = 0; o0 < g.out[0]; ++o0) {
      const int64_t d0 = std::max<int64_t>(o0 * g.s[0] - g.pb[0], 0), e0 = std::min(o0 * g.s[0] - g.pb[0] + g.k[0], g.in[0]);
      for (int64_t o1 = 0; o1 < g.out[1]; ++o1) {
        const int64_t d1 = std::max<int64_t>(o1 * g.s[1] - g.pb[1], 0), e1 = std::min(o1 * g.s[1] - g.pb[1] + g.k[1], g.in[1]);
        for (int64_t o2 = 0; o2 < ow; ++o2) {
          const int64_t d2 = std::max<int64_t>(o2 * s2 - p2, 0), e2 = std::min(o2 * s2 - p2 + k2, iw);
          float sum = 0.0f;
          for (int64_t i0 = d0; i0 < e0; ++i0) {
            for (int64_t i1 = d1; i1 < e1; ++i1) {
              for (int64_t i2 = d2; i2 < e2; ++i2) {
                const uint8_t b = x[(i0 * g.in[1] + i1) * iw + i2];
                sum += g.xs * static_cast<float>((g.isSigned ? static_cast<int8_t>(b) : b) - g.xz);
              }
            }
          }
          const int64_t count = g.includePad ? g.k[0] * g.k[1] * k2 : (e0 - d0) * (e1 - d1) * (e2 - d2);
          y[(o0 * g.out[1] + o1) * ow + o2] = static_cast<uint8_t>(averageCode(g, sum, static_cast<float>(count)));
        }
      }
    }
    return;
  }
  float* xf = scratch;
  float* sums = xf + inSize;  // one output row's sums
  float* counts = sums + ow;  // one output row's divisors
  int32_t* cols = reinterpret_cast<int32_t*>(counts + ow);  // each output column's window width inside x
  int32_t* codes = cols + ow;                               // one output row's codes
  for (int64_t i = 0; i < inSize; ++i) {
    const int32_t q = g.isSigned ? static_cast<int8_t>(x[i]) : x[i];
    xf[i] = g.xs * static_cast<float>(q - g.xz);
  }
  // Outputs [first, last) have their whole window inside the columns.
  int64_t first = 0, last = ow;
  while (first < ow && first * s2 - p2 < 0) ++first;
  while (last > first && (last - 1) * s2 - p2 + k2 > iw) --last;
  for (int64_t o2 = 0; o2 < ow; ++o2) {
    cols[o2] = static_cast<int32_t>(std::min(o2 * s2 - p2 + k2, iw) - std::max<int64_t>(o2 * s2 - p2, 0));
  }
  for (int64_t o0 = 0; o0 < g.out[0]; ++o0) {
    const int64_t d0 = std::max<int64_t>(o0 * g.s[0] - g.pb[0], 0), e0 = std::min(o0 * g.s[0] - g.pb[0] + g.k[0], g.in[0]);
    for (int64_t o1 = 0; o1 < g.out[1]; ++o1) {
      const int64_t d1 = std::max<int64_t>(o1 * g.s[1] - g.pb[1], 0), e1 = std::min(o1 * g.s[1] - g.pb[1] + g.k[1], g.in[1]);
      std::fill(sums, sums + ow, 0.0f);
      for (int64_t i0 = d0; i0 < e0; ++i0) {
        for (int64_t i1 = d1; i1 < e1; ++i1) {
          const float* row = xf + (i0 * g.in[1] + i1) * iw;
          for (int64_t o2 = 0; o2 < first; ++o2) {
            for (int64_t i2 = std::max<int64_t>(o2 * s2 - p2, 0); i2 < std::min(o2 * s2 - p2 + k2, iw); ++i2) sums[o2] += row[i2];
          }
          // The inside outputs: column kx of every window at once.
          float* inside = sums + first;
          const int64_t len = last - first;
          for (int64_t kx = 0; kx < k2; ++kx) {
            const float* col = row + first * s2 - p2 + kx;
            if (s2 == 1) {
              for (int64_t j = 0; j < len; ++j) inside[j] += col[j];
            } else {
              for (int64_t j = 0; j < len; ++j) inside[j] += col[j * s2];
            }
          }
          for (int64_t o2 = std::max(last, first); o2 < ow; ++o2) {
            for (int64_t i2 = std::max<int64_t>(o2 * s2 - p2, 0); i2 < std::min(o2 * s2 - p2 + k2, iw); ++i2) sums[o2] += row[i2];
          }
        }
      }
      const int64_t rows = (e0 - d0) * (e1 - d1), all = g.k[0] * g.k[1] * k2;
      for (int64_t o2 = 0; o2 < ow; ++o2) counts[o2] = static_cast<float>(g.includePad ? all : rows * cols[o2]);
      for (int64_t o2 = 0; o2 < ow; ++o2) codes[o2] = averageCode(g, sums[o2], counts[o2]);
      uint8_t* dst = y + (o0 * g.out[1] + o1) * ow;
      for (int64_t o2 = 0; o2 < ow; ++o2) dst[o2] = static_cast<uint8_t>(codes[o2]);  // int8: its byte
    }
  }
}

// Pools output row `o1` of image `b` of a 2-D pool (g padded to three spatial dims, g.in[0] = 1)
// over NHWC bytes `x` ([N, H, W, C]) into `y`, NHWC (`nhwcOut`) or NCHW, a pixel at a time with
// the C channels side by side: each channel's sum runs over the window in averagePoolPlane's
// order (rows, then columns ascending, each term xs * (q - xz) in float), so the bytes are the
// plane kernel's. `sums` holds C floats. The quantized kernels' channels-last plan
// (quant::channelsLastValues) gives the pool NHWC bytes under NCHW dims; pooling them plane by
// plane cost a strided copy of every channel in and out (light-shufflenet's 4 pools: 0.67 ms a
// run against 0.07 ms in float).
WH_QUANT_SIMD void averagePoolRowNhwc(const AveragePoolPlane& g, int64_t c, int64_t b, int64_t o1, const uint8_t* x,
                                      uint8_t* y, bool nhwcOut, float* sums) {
  const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2];
  const float xs = g.xs;
  const int32_t xz = g.xz;
  const int64_t d1 = std::max<int64_t>(o1 * g.s[1] - g.pb[1], 0), e1 = std::min(o1 * g.s[1] - g.pb[1] + g.k[1], ih);
  for (int64_t o2 = 0; o2 < ow; ++o2) {
    const int64_t d2 = std::max<int64_t>(o2 * g.s[2] - g.pb[2], 0), e2 = std::min(o2 * g.s[2] - g.pb[2] + g.k[2], iw);
    std::fill(sums, sums + c, 0.0f);
    for (int64_t i1 = d1; i1 < e1; ++i1) {
      for (int64_t i2 = d2; i2 < e2; ++i2) {
        const uint8_t* px = x + ((b * ih + i1) * iw + i2) * c;
        if (g.isSigned) {
          for (int64_t k = 0; k < c; ++k) sums[k] += xs * static_cast<float>(static_cast<int8_t>(px[k]) - xz);
        } else {
          for (int64_t k = 0; k < c; ++k) sums[k] += xs * static_cast<float>(px[k] - xz);
        }
      }
    }
    const auto count = static_cast<float>(g.includePad ? g.k[1] * g.k[2] : (e1 - d1) * (e2 - d2));
    // NHWC: the C channels of this pixel side by side; NCHW: one byte in each channel's plane.
    uint8_t* dst = nhwcOut ? y + ((b * oh + o1) * ow + o2) * c : y + (b * c * oh + o1) * ow + o2;
    const int64_t step = nhwcOut ? 1 : oh * ow;
    for (int64_t k = 0; k < c; ++k) dst[k * step] = static_cast<uint8_t>(averageCode(g, sums[k], count));  // int8: its byte
  }
}

// Inputs X, x_scale, x_zero_point, y_scale, y_zero_point. Pools the dequantized values in float
// (ONNX Runtime's qlinear_pool.cc), then quantizes round(avg / y_scale + y_zp). `nhwcIn` and
// `nhwcOut`: X and Y hold NHWC bytes under NCHW dims (the channels-last int8 plan; 2-D only).
Status qlinearAveragePool(KernelContext& ctx, bool nhwcIn, bool nhwcOut) {
  const ir::Node& node = ctx.node();
  const ir::Tensor& xIn = ctx.input(0);
  WH_RETURN_IF_ERROR(checkByteTensor(ctx, xIn, "X"));
  if (xIn.rank() < 3 || xIn.rank() > 5) return ctx.unsupported("X of rank " + std::to_string(xIn.rank()) + " is not supported (3 to 5)");
  WH_ASSIGN_OR_RETURN(float xs, scalarScale(ctx, 1, "x_scale"));
  WH_ASSIGN_OR_RETURN(int32_t xz, scalarZeroPoint(ctx, 2, "x_zero_point"));
  WH_ASSIGN_OR_RETURN(float ys, scalarScale(ctx, 3, "y_scale"));
  WH_ASSIGN_OR_RETURN(int32_t yz, scalarZeroPoint(ctx, 4, "y_zero_point"));
  const bool channelsLast = node.attrInt("channels_last", 0) != 0;
  const size_t spatial = static_cast<size_t>(xIn.rank() - 2);
  // Work in NCHW: dims of the NCHW view and the element order of X.
  std::vector<int64_t> dims = xIn.dims();
  if (channelsLast) {
    dims.insert(dims.begin() + 1, dims.back());
    dims.pop_back();
  }
  const int64_t n = dims[0], c = dims[1];
  int64_t imageSize = 1;
  for (size_t i = 0; i < spatial; ++i) imageSize *= dims[i + 2];
  std::vector<int64_t> kernel = node.attrInts("kernel_shape");
  std::vector<int64_t> strides = node.attrInts("strides", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> pads = node.attrInts("pads", std::vector<int64_t>(2 * spatial, 0));
  if (kernel.size() != spatial || strides.size() != spatial || pads.size() != 2 * spatial) {
    return ctx.error("kernel_shape/strides/pads do not match " + std::to_string(spatial) + " spatial dims");
  }
  const bool ceilMode = node.attrInt("ceil_mode", 0) != 0;
  const bool includePad = node.attrInt("count_include_pad", 0) != 0;
  const std::string autoPad = node.attrString("auto_pad", "NOTSET");
  // Padded to three spatial dims.
  int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, out[3] = {1, 1, 1};
  for (size_t i = 0; i < spatial; ++i) {
    const size_t j = 3 - spatial + i;
    in[j] = dims[i + 2];
    k[j] = kernel[i];
    s[j] = strides[i];
    if (k[j] < 1 || s[j] < 1) return ctx.error("kernel_shape and strides must be positive");
    int64_t padBegin = pads[i], padEnd = pads[i + spatial];
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      const int64_t o = (in[j] + s[j] - 1) / s[j];
      const int64_t total = std::max<int64_t>(0, (o - 1) * s[j] + k[j] - in[j]);
      padBegin = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      padEnd = total - padBegin;
    } else if (autoPad == "VALID") {
      padBegin = padEnd = 0;
    }
    const int64_t span = in[j] + padBegin + padEnd - k[j];
    int64_t o = (ceilMode ? (span + s[j] - 1) / s[j] : span / s[j]) + 1;
    if (ceilMode && (o - 1) * s[j] >= in[j] + padBegin) --o;
    if (o < 1) return ctx.error("input " + shapeToString(xIn.dims()) + " is smaller than the kernel");
    pb[j] = padBegin;
    out[j] = o;
  }
  std::vector<int64_t> yDims = {n, c};
  for (size_t i = 0; i < spatial; ++i) yDims.push_back(out[3 - spatial + i]);
  const int64_t outSize = out[0] * out[1] * out[2];
  if (channelsLast) {
    yDims.push_back(c);
    yDims.erase(yDims.begin() + 1);
  }
  ir::Tensor& y = ctx.allocateOutput(0, xIn.dtype(), yDims);
  AveragePoolPlane plane{{}, {}, {}, {}, {}, includePad, xs, xz, ys, yz, *intRange(xIn.dtype()), xIn.dtype() == DataType::kInt8};
  for (size_t j = 0; j < 3; ++j) {
    plane.in[j] = in[j];
    plane.k[j] = k[j];
    plane.s[j] = s[j];
    plane.pb[j] = pb[j];
    plane.out[j] = out[j];
  }
  const auto* xb = reinterpret_cast<const uint8_t*>(xIn.rawData());
  auto* yb = reinterpret_cast<uint8_t*>(y.mutableRawData());
  if (nhwcIn) {
    if (spatial != 2 || channelsLast)
      return ctx.error("a channels-last X must be 4-D NCHW dims, got " + shapeToString(xIn.dims()));
#pragma omp parallel num_threads(ctx.threads()) if (xIn.numel() * k[1] * k[2] > (1 << 16))
    {
      std::vector<float> sums(static_cast<size_t>(c));
#pragma omp for schedule(static)
      for (int64_t row = 0; row < n * out[1]; ++row) {
        averagePoolRowNhwc(plane, c, row / out[1], row % out[1], xb, yb, nhwcOut, sums.data());
      }
    }
    return Status::ok();
  }
#pragma omp parallel num_threads(ctx.threads()) if (xIn.numel() * k[0] * k[1] * k[2] > (1 << 16))
  {
    std::vector<float> scratch(static_cast<size_t>(imageSize + 4 * out[2]));
    std::vector<uint8_t> bytes(channelsLast ? static_cast<size_t>(imageSize + outSize) : 0);
#pragma omp for schedule(static)
    for (int64_t bc = 0; bc < n * c; ++bc) {
      const int64_t b = bc / c, ch = bc % c;
      if (!channelsLast) {
        averagePoolPlane(plane, xb + bc * imageSize, yb + bc * outSize, scratch.data());
        continue;
      }
      for (int64_t p = 0; p < imageSize; ++p) bytes[static_cast<size_t>(p)] = xb[(b * imageSize + p) * c + ch];
      uint8_t* planeOut = bytes.data() + imageSize;
      averagePoolPlane(plane, bytes.data(), planeOut, scratch.data());
      for (int64_t p = 0; p < outSize; ++p) yb[(b * outSize + p) * c + ch] = planeOut[p];
    }
  }
  return Status::ok();
}

template <typename Fn>
KernelFactory functionFactory(Fn fn) {
  return [fn](const KernelCreateInfo&) -> Expected<std::unique_ptr<Kernel>> { return makeFunctionKernel(fn); };
}

}  // namespace

void registerQuantContribKernels(KernelRegistry& registry) {
  registry.add(kMicrosoft, "QLinearAdd", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<QLinearBinaryKernel>(info, /*isAdd=*/true));
  });
  registry.add(kMicrosoft, "QLinearMul", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<QLinearBinaryKernel>(info, /*isAdd=*/false));
  });
  registry.add(kMicrosoft, "QLinearGlobalAveragePool", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<QLinearGlobalAveragePoolKernel>(info));
  });
  registry.add(kMicrosoft, "QLinearConcat", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    const bool nhwc = info.channelsLastInt8(info.node.output(0));
    return makeFunctionKernel([nhwc](KernelContext& ctx) { return qlinearConcat(ctx, nhwc); });
  });
  registry.add(kMicrosoft, "QLinearAveragePool", 1,
               [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
                 const bool nhwcIn = info.channelsLastInt8(info.node.input(0)),
                            nhwcOut = info.channelsLastInt8(info.node.output(0));
                 return makeFunctionKernel(
                     [nhwcIn, nhwcOut](KernelContext& ctx) { return qlinearAveragePool(ctx, nhwcIn, nhwcOut); });
               });
  registry.add(kMicrosoft, "QLinearLeakyRelu", 1, [](const KernelCreateInfo& info) -> Expected<std::unique_ptr<Kernel>> {
    const float alpha = info.node.attrFloat("alpha", 0.01f);
    return makeFunctionKernel([alpha](KernelContext& ctx) {
      return lookupOp(ctx, [alpha](float v) { return v >= 0.0f ? v : v * alpha; });
    });
  });
  registry.add(kMicrosoft, "QLinearSigmoid", 1, functionFactory([](KernelContext& ctx) {
    return lookupOp(ctx, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
  }));
}

}  // namespace whittle::runtime::cpu::quant
