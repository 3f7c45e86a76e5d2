// Shared helpers of the quantized CPU kernels; see quant_common.h.
#include "cpu/quant_common.h"

#include "cpu/kernel_util.h"
#include "cpu/pool_reference.h"

#include <emmintrin.h>

#include <algorithm>
#include <cmath>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

namespace whittle::runtime::cpu::quant {

using ir::DataType;

std::optional<IntRange> intRange(DataType dtype) {
  switch (dtype) {
    case DataType::kUint8: return IntRange{0, 255};
    case DataType::kInt8: return IntRange{-128, 127};
    case DataType::kUint16: return IntRange{0, 65535};
    case DataType::kInt16: return IntRange{-32768, 32767};
    case DataType::kUint4: return IntRange{0, 15};
    case DataType::kInt4: return IntRange{-8, 7};
    default: return std::nullopt;
  }
}

std::string typeName(DataType dtype) { return std::string(ir::dataTypeName(dtype)); }

bool int8KernelsExact() {
  static const bool exact = [] {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
           isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
  }();
  return exact;
}

bool isFloat8(DataType dtype) {
  return dtype == DataType::kFloat8E4M3FN || dtype == DataType::kFloat8E4M3FNUZ || dtype == DataType::kFloat8E5M2 ||
         dtype == DataType::kFloat8E5M2FNUZ;
}

float float8ToFloat(uint8_t bits, DataType dtype) {
  const bool e4m3 = dtype == DataType::kFloat8E4M3FN || dtype == DataType::kFloat8E4M3FNUZ;
  const bool fnuz = dtype == DataType::kFloat8E4M3FNUZ || dtype == DataType::kFloat8E5M2FNUZ;
  const int mantissaBits = e4m3 ? 3 : 2;
  const int exponentMask = e4m3 ? 0x0f : 0x1f;
  int bias = e4m3 ? 7 : 15;
  if (fnuz) {
    ++bias;
    if (bits == 0x80) return std::numeric_limits<float>::quiet_NaN();
  }
  const bool negative = (bits & 0x80) != 0;
  const int exponent = (bits >> mantissaBits) & exponentMask;
  const int mantissa = bits & ((1 << mantissaBits) - 1);
  if (!fnuz) {
    if (e4m3 && exponent == 0x0f && mantissa == 0x07) return std::numeric_limits<float>::quiet_NaN();
    if (!e4m3 && exponent == 0x1f) {
      if (mantissa != 0) return std::numeric_limits<float>::quiet_NaN();
      return negative ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
    }
  }
  float value = exponent == 0
                    ? std::ldexp(static_cast<float>(mantissa), 1 - bias - mantissaBits)
                    : std::ldexp(static_cast<float>(mantissa + (1 << mantissaBits)), exponent - bias - mantissaBits);
  return negative ? -value : value;
}

Expected<std::vector<float>> readScales(const ir::Tensor& t, const ir::Node& node, std::string_view what) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  switch (t.dtype()) {
    case DataType::kFloat: std::copy_n(t.data<float>(), out.size(), out.begin()); break;
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kDouble:
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(t.valueAsDouble(static_cast<int64_t>(i)));
      break;
    default: return unimplemented(node.describe() + ": " + std::string(what) + ": dtype " + typeName(t.dtype()) + " is not supported for a scale");
  }
  return out;
}

Expected<std::vector<int32_t>> readZeroPoints(const ir::Tensor& t, const ir::Node& node, std::string_view what) {
  const auto n = static_cast<size_t>(t.numel());
  std::vector<int32_t> out(n);
  const auto* bytes = reinterpret_cast<const uint8_t*>(t.rawData());
  switch (t.dtype()) {
    case DataType::kUint8: std::copy_n(t.data<uint8_t>(), n, out.begin()); break;
    case DataType::kInt8: std::copy_n(t.data<int8_t>(), n, out.begin()); break;
    case DataType::kUint16: std::copy_n(t.data<uint16_t>(), n, out.begin()); break;
    case DataType::kInt16: std::copy_n(t.data<int16_t>(), n, out.begin()); break;
    case DataType::kInt32: std::copy_n(t.data<int32_t>(), n, out.begin()); break;
    case DataType::kUint4:
    case DataType::kInt4:
      for (size_t i = 0; i < n; ++i) out[i] = int4At(bytes, static_cast<int64_t>(i), t.dtype() == DataType::kInt4);
      break;
    default:
      if (isFloat8(t.dtype())) {
        for (size_t i = 0; i < n; ++i) {
          float v = float8ToFloat(bytes[i], t.dtype());
          if (!(v == std::nearbyint(v))) return unimplemented(node.describe() + ": " + std::string(what) + ": a non-integral float8 zero point is not supported");
          out[i] = static_cast<int32_t>(v);
        }
        break;
      }
      return unimplemented(node.describe() + ": " + std::string(what) + ": dtype " + typeName(t.dtype()) + " is not supported for a zero point");
  }
  return out;
}

Expected<float> scalarScaleOf(const ir::Tensor* t, const ir::Node& node, std::string_view what) {
  if (t == nullptr) return invalidInput(node.describe() + ": input " + std::string(what) + " is missing");
  if (t->numel() != 1) {
    return unimplemented(node.describe() + ": " + std::string(what) + " must hold one value (per-tensor), got " +
                         std::to_string(t->numel()));
  }
  auto v = readScales(*t, node, what);
  if (!v.isOk()) return v.status();
  return (*v)[0];
}

Expected<int32_t> scalarZeroPointOf(const ir::Tensor* t, const ir::Node& node, std::string_view what) {
  if (t == nullptr) return 0;
  if (t->numel() != 1) {
    return unimplemented(node.describe() + ": " + std::string(what) + " must hold one value (per-tensor), got " +
                         std::to_string(t->numel()));
  }
  auto v = readZeroPoints(*t, node, what);
  if (!v.isOk()) return v.status();
  return (*v)[0];
}

Expected<float> scalarScale(const KernelContext& ctx, size_t i, const std::string& what) {
  if (ctx.hasInput(i) && ctx.input(i).numel() == 1 && ctx.input(i).dtype() == DataType::kFloat) {  // the usual case, no strings
    return ctx.input(i).data<float>()[0];
  }
  return scalarScaleOf(ctx.hasInput(i) ? &ctx.input(i) : nullptr, ctx.node(), what);
}

Expected<int32_t> scalarZeroPoint(const KernelContext& ctx, size_t i, const std::string& what) {
  if (!ctx.hasInput(i)) return 0;
  const ir::Tensor& t = ctx.input(i);
  if (t.numel() == 1 && t.dtype() == DataType::kUint8) return static_cast<int32_t>(t.data<uint8_t>()[0]);
  if (t.numel() == 1 && t.dtype() == DataType::kInt8) return static_cast<int32_t>(t.data<int8_t>()[0]);
  return scalarZeroPointOf(&t, ctx.node(), what);
}

Expected<ConvGeometry> convGeometry(const ir::Node& node, const std::vector<int64_t>& xDims, const std::vector<int64_t>& wDims) {
  const size_t spatial = xDims.size() - 2;
  ConvGeometry g;
  g.kernel = node.attrInts("kernel_shape", std::vector<int64_t>(wDims.begin() + 2, wDims.end()));
  g.strides = node.attrInts("strides", std::vector<int64_t>(spatial, 1));
  g.dilations = node.attrInts("dilations", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> pads = node.attrInts("pads", std::vector<int64_t>(2 * spatial, 0));
  if (g.kernel.size() != spatial || g.strides.size() != spatial || g.dilations.size() != spatial || pads.size() != 2 * spatial) {
    return invalidInput(node.describe() + ": kernel_shape/strides/dilations/pads do not match " + std::to_string(spatial) + " spatial dims");
  }
  const std::string autoPad = node.attrString("auto_pad", "NOTSET");
  g.padsBegin.assign(pads.begin(), pads.begin() + static_cast<int64_t>(spatial));
  g.padsEnd.assign(pads.begin() + static_cast<int64_t>(spatial), pads.end());
  for (size_t i = 0; i < spatial; ++i) {
    const int64_t in = xDims[i + 2], k = g.kernel[i], s = g.strides[i], d = g.dilations[i];
    if (k < 1 || s < 1 || d < 1) return invalidInput(node.describe() + ": kernel, strides and dilations must be positive");
    const int64_t extent = (k - 1) * d + 1;
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      const int64_t out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + extent - in);
      g.padsBegin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.padsEnd[i] = total - g.padsBegin[i];
    } else if (autoPad == "VALID") {
      g.padsBegin[i] = g.padsEnd[i] = 0;
    } else if (autoPad != "NOTSET") {
      return invalidInput(node.describe() + ": auto_pad '" + autoPad + "' is not valid");
    }
    const int64_t out = (in + g.padsBegin[i] + g.padsEnd[i] - extent) / s + 1;
    if (out < 1) return invalidInput(node.describe() + ": input " + shapeToString(xDims) + " is smaller than the kernel");
    g.outSpatial.push_back(out);
  }
  return g;
}

namespace {

// out[c * ldo + r] = in[r * ldi + c] for a 16x16 block: four rounds of interleaving (bytes, then
// 16-, 32- and 64-bit groups) turn 16 rows into 16 columns.
void transpose16x16(const uint8_t* in, int64_t ldi, uint8_t* out, int64_t ldo) {
  __m128i a[16], b[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i * ldi));
  for (int i = 0; i < 8; ++i) {  // b[2i]: rows 2i, 2i+1 x cols 0-7; b[2i+1]: cols 8-15
    b[2 * i] = _mm_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
    b[2 * i + 1] = _mm_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // a[4g + j]: rows 4g..4g+3 x cols 4j..4j+3
    const __m128i* p = b + 4 * g;
    a[4 * g + 0] = _mm_unpacklo_epi16(p[0], p[2]);
    a[4 * g + 1] = _mm_unpackhi_epi16(p[0], p[2]);
    a[4 * g + 2] = _mm_unpacklo_epi16(p[1], p[3]);
    a[4 * g + 3] = _mm_unpackhi_epi16(p[1], p[3]);
  }
  for (int h = 0; h < 2; ++h) {  // b[8h + k]: rows 8h..8h+7 x cols 2k, 2k+1
    const __m128i* p = a + 8 * h;
    for (int j = 0; j < 4; ++j) {
      b[8 * h + 2 * j] = _mm_unpacklo_epi32(p[j], p[j + 4]);
      b[8 * h + 2 * j + 1] = _mm_unpackhi_epi32(p[j], p[j + 4]);
    }
  }
  for (int k = 0; k < 8; ++k) {  // whole columns 2k and 2k+1
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (2 * k) * ldo), _mm_unpacklo_epi64(b[k], b[8 + k]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (2 * k + 1) * ldo), _mm_unpackhi_epi64(b[k], b[8 + k]));
  }
}

}  // namespace

void transposeBytes(const uint8_t* in, uint8_t* out, int64_t rows, int64_t cols) { transposeBytes(in, cols, out, rows, rows, cols); }

void transposeBytes(const uint8_t* in, int64_t ldi, uint8_t* out, int64_t ldo, int64_t rows, int64_t cols) {
  const int64_t rows16 = rows / 16 * 16, cols16 = cols / 16 * 16;
  for (int64_t r = 0; r < rows16; r += 16) {
    for (int64_t c = 0; c < cols16; c += 16) transpose16x16(in + r * ldi + c, ldi, out + c * ldo + r, ldo);
  }
  for (int64_t r = 0; r < rows; ++r) {  // the edges
    for (int64_t c = r < rows16 ? cols16 : 0; c < cols; ++c) out[c * ldo + r] = in[r * ldi + c];
  }
}

Status dnnlGuard(const ir::Node& node, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_unimplemented) return unimplemented(node.describe() + ": oneDNN has no implementation (" + e.what() + ")");
    return internalError(node.describe() + ": oneDNN error: " + e.what());
  }
  return Status::ok();
}

// ---- the channels-last plan ----

namespace {

constexpr const char* kMicrosoft = "com.microsoft";

bool isOp(const ir::Node* n, std::string_view domain, std::string_view op) {
  return n != nullptr && n->opType() == op && canonicalDomain(n->domain()) == domain;
}

bool isByteQuantType(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

int64_t staticRank(const ir::Value* v) {
  if (v == nullptr) return -1;
  if (v->constant() != nullptr) return v->constant()->rank();
  return v->type().shape ? static_cast<int64_t>(v->type().shape->size()) : -1;
}

// A 2-D QLinearConv (4-D weights) whose output type is one byte.
bool isConv2d(const ir::Node* n) {
  if (!isOp(n, "", "QLinearConv") || n->numInputs() < 8) return false;
  if (staticRank(n->input(3)) != 4) return false;
  const ir::Value* yzp = n->input(7);
  DataType out = yzp != nullptr && yzp->dtype() != DataType::kUndefined ? yzp->dtype() : n->output(0)->dtype();
  return yzp == nullptr ? out == DataType::kUint8 || out == DataType::kUndefined : isByteQuantType(out);
}

// A QuantizeLinear of a 4-D float32 tensor with one scale, to uint8 or int8.
bool isPerTensorQuantize4d(const ir::Node* n) {
  if (!isOp(n, "", "QuantizeLinear") || n->attrInt("block_size", 0) != 0) return false;
  const ir::Value* x = n->input(0);
  const ir::Value* scale = n->input(1);
  if (x == nullptr || x->dtype() != DataType::kFloat || staticRank(x) != 4) return false;
  if (scale == nullptr || scale->constant() == nullptr || scale->constant()->numel() != 1) return false;
  const ir::Value* zp = n->input(2);
  if (zp != nullptr) return isByteQuantType(zp->dtype());
  int64_t outType = n->attrInt("output_dtype", 0);
  return outType == 0 || outType == static_cast<int64_t>(DataType::kUint8) || outType == static_cast<int64_t>(DataType::kInt8);
}

// QLinearAdd or QLinearMul (element-wise: channels-last when both inputs have one shape).
bool isQLinearAdd(const ir::Node* n) {
  return (isOp(n, kMicrosoft, "QLinearAdd") || isOp(n, kMicrosoft, "QLinearMul")) && n->numInputs() >= 7;
}

// The table lookup of an element-wise chain: any memory order passes through. So does
// QLinearPRelu, which reads its slope along the row of channels when X is channels last.
bool isByteElementwise(const ir::Node* n) {
  return (isOp(n, "com.whittle.internal", "QLinearLookup") && n->numInputs() == 2) ||
         (isOp(n, "com.whittle.internal", "QLinearPRelu") && n->numInputs() == 6);
}

// The lowering's ChannelGather (a channel shuffle or split) of a value in the plan: a byte gather
// per pixel (its own channels_last attribute is the float lowering's, [N, H, W, C] dims).
bool isByteChannelGather(const ir::Node* n) {
  return isOp(n, "com.whittle.internal", "ChannelGather") && n->numInputs() == 1 &&
         n->attrInt("channels_last", 0) == 0;
}

// A nearest Resize (Upsample): it picks elements, so it gathers NHWC bytes as it does NCHW ones
// (an FPN's upsampling between int8 Concats); its input is 4-D where it is in the plan.
bool isNearestResize(const ir::Node* n) {
  return (isOp(n, "", "Resize") || isOp(n, "", "Upsample")) && n->attrString("mode", "nearest") == "nearest";
}

// A MaxPool that pools a 4-D value in 2-D, without dilation and without Indices.
bool isMaxPool2d(const ir::Node* n) {
  if (!isOp(n, "", "MaxPool") || n->output(1) != nullptr || n->attrInts("kernel_shape").size() != 2) return false;
  for (int64_t d : n->attrInts("dilations")) {
    if (d != 1) return false;
  }
  return n->attrInt("storage_order", 0) == 0;
}

// A Transpose [0, 3, 1, 2] of a 4-D uint8/int8 value (the QDQ lowering puts the Q of an NHWC
// input before its Transpose): its output's NHWC bytes are its input's, so it writes them as
// they are. Its input is never channels-last (a Transpose reads no channels-last value).
bool isNhwcToNchwBytes(const ir::Node* n) {
  if (!isOp(n, "", "Transpose") || n->input(0) == nullptr || !isByteQuantType(n->input(0)->dtype())) return false;
  std::vector<int64_t> perm = n->attrInts("perm");
  for (int64_t& p : perm) p = p < 0 ? p + 4 : p;
  return perm == std::vector<int64_t>{0, 3, 1, 2};
}

// A QLinearAveragePool over the two spatial dims of a 4-D NCHW value.
bool isAveragePool2d(const ir::Node* n) {
  return isOp(n, kMicrosoft, "QLinearAveragePool") && n->numInputs() >= 4 && n->attrInt("channels_last", 0) == 0 &&
         n->attrInts("kernel_shape").size() == 2;
}

// The one-input nodes whose output is in the plan exactly when their input is: they write NHWC
// bytes from NHWC bytes (pools, byte elementwise ops and lookups, channel gathers, nearest Resize).
bool followsItsInput(const ir::Node* n) {
  return isMaxPool2d(n) || isAveragePool2d(n) || isByteElementwise(n) || isByteChannelGather(n) || isNearestResize(n);
}

// A QLinearConcat on the channel axis of 4-D values.
bool isChannelConcat(const ir::Node* n) {
  if (!isOp(n, kMicrosoft, "QLinearConcat") || n->numInputs() < 5) return false;
  const int64_t axis = n->attrInt("axis", 0);
  return axis == 1 || axis == -3;
}

// The X inputs of a QLinearConcat: 2, 5, 8, ...
bool allConcatInputs(const ir::Node* n, const std::unordered_set<const ir::Value*>& set) {
  for (size_t i = 2; i < n->numInputs(); i += 3) {
    if (!set.contains(n->input(i))) return false;
  }
  return true;
}

// Spatial dim i of a convolution's output whose input dim is `in` (g: its geometry, computed with
// a stand-in size where `in` is a symbol). Known in: g's size. A symbol: itself where the window
// keeps the size (stride 1, the pads adding up to the window's extent less one, or SAME), else a
// symbol that spells the formula of `in` (floor((in + pads - extent) / s) + 1, or ceil(in / s)
// for SAME): the same formula of the same symbol is the same size, so an SE gate and a residual
// Add behind a strided convolution still see equal dims (PaddleOCR's classifiers take [?, 3, ?, ?]).
ir::Dim convOutputDim(const ir::Node& conv, const ConvGeometry& g, size_t i, const ir::Dim& in) {
  if (in.isKnown()) return ir::Dim::known(g.outSpatial[i]);
  const int64_t s = g.strides[i], extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
  const std::string autoPad = conv.attrString("auto_pad", "NOTSET");
  if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    return s == 1 ? in : ir::Dim::symbolic("ceil((" + in.param + ")/" + std::to_string(s) + ")");
  }
  const int64_t shift = g.padsBegin[i] + g.padsEnd[i] - extent;
  if (s == 1 && shift == -1) return in;
  return ir::Dim::symbolic("floor(((" + in.param + ")+" + std::to_string(shift) + ")/" + std::to_string(s) + ")+1");
}

// `vec` is a squeeze-excitation gate of `full`: [N, C, 1, 1] against [N, C, H, W].
bool isGateOf(const std::vector<ir::Dim>& full, const std::vector<ir::Dim>& vec) {
  return full.size() == 4 && vec.size() == 4 && vec[0] == full[0] && vec[1] == full[1] && vec[2] == ir::Dim::known(1) &&
         vec[3] == ir::Dim::known(1);
}

// The dims of `v` when its rank is known and every dim is a number or a named symbol.
using DimsMemo = std::unordered_map<const ir::Value*, std::optional<std::vector<ir::Dim>>>;
std::optional<std::vector<ir::Dim>> knownDims(const ir::Value* v, DimsMemo& memo) {
  if (v == nullptr) return std::nullopt;
  if (auto it = memo.find(v); it != memo.end()) return it->second;
  memo[v] = std::nullopt;  // breaks cycles (there are none in a valid graph)
  std::optional<std::vector<ir::Dim>> result;
  if (v->constant() != nullptr) {
    std::vector<ir::Dim> d;
    for (int64_t x : v->constant()->dims()) d.push_back(ir::Dim::known(x));
    result = d;
  } else if (v->type().shape) {
    // A graph input's unnamed dim (rapidocr's classifier: [, 3, ?, ?]) is one size wherever that
    // input's dim goes: it stands as a symbol named after the input and the axis.
    std::vector<ir::Dim> dims = *v->type().shape;
    bool ok = true;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (!dims[i].isKnown() && dims[i].param.empty() && v->isGraphInput()) {
        dims[i] = ir::Dim::symbolic(v->name() + "#" + std::to_string(i));
      }
      ok = ok && (dims[i].isKnown() || !dims[i].param.empty());
    }
    if (ok) result = dims;
  }
  const ir::Node* producer = v->producer();
  if (!result && isQLinearAdd(producer)) {  // one shape, or an SE gate's [N, C, 1, 1] on [N, C, H, W]
    auto a = knownDims(producer->input(0), memo);
    auto b = knownDims(producer->input(3), memo);
    if (a && b && (*a == *b || isGateOf(*a, *b))) result = a;
    if (a && b && isGateOf(*b, *a)) result = b;
  }
  if (!result && (isPerTensorQuantize4d(producer) || isByteElementwise(producer))) result = knownDims(producer->input(0), memo);
  if (!result && isOp(producer, kMicrosoft, "QLinearGlobalAveragePool") &&
      producer->attrInt("channels_last", 0) == 0) {
    auto x = knownDims(producer->input(0), memo);
    if (x && x->size() == 4) result = std::vector<ir::Dim>{(*x)[0], (*x)[1], ir::Dim::known(1), ir::Dim::known(1)};
  }
  if (!result && (isMaxPool2d(producer) || isAveragePool2d(producer)) && producer->attrString("auto_pad", "NOTSET") == "NOTSET") {
    // [N, C, OH, OW] from X's spatial dims and the window, by the pool kernels' own geometry
    // (resolvePool; N and C stand in as 1 and are carried over as they are).
    auto x = knownDims(producer->input(0), memo);
    auto attrs = readPoolAttrs(*producer);
    if (x && x->size() == 4 && (*x)[2].isKnown() && (*x)[3].isKnown() && attrs.isOk()) {
      auto g = resolvePool(*attrs, {1, 1, (*x)[2].value, (*x)[3].value}, producer->describe());
      if (g.isOk()) result = std::vector<ir::Dim>{(*x)[0], (*x)[1], ir::Dim::known(g->dst[2]), ir::Dim::known(g->dst[3])};
    }
  }
  if (!result && isByteChannelGather(producer)) {
    auto x = knownDims(producer->input(0), memo);
    if (x && x->size() == 4) {
      result = x;
      (*result)[1] = ir::Dim::known(static_cast<int64_t>(producer->attrInts("channels").size()));
    }
  }
  if (!result && isNearestResize(producer)) {  // constant sizes, or constant scales (floor(in * scale))
    auto x = knownDims(producer->input(0), memo);
    const ir::Value* sizes = producer->numInputs() > 3 ? producer->input(3) : nullptr;
    const ir::Value* scales = producer->numInputs() > 2 ? producer->input(2) : nullptr;
    const ir::Tensor* st = sizes != nullptr ? sizes->constant() : nullptr;
    const ir::Tensor* sc = st == nullptr && scales != nullptr ? scales->constant() : nullptr;
    if (x && x->size() == 4 && producer->attrInts("axes").empty() && ((st && st->numel() == 4) || (sc && sc->numel() == 4))) {
      std::vector<ir::Dim> out;
      for (size_t i = 0; i < 4 && x; ++i) {
        if (st != nullptr) {
          out.push_back(ir::Dim::known(static_cast<int64_t>(st->valueAsDouble(static_cast<int64_t>(i)))));
        } else if ((*x)[i].isKnown()) {
          const float f = static_cast<float>(sc->valueAsDouble(static_cast<int64_t>(i)));
          out.push_back(ir::Dim::known(static_cast<int64_t>(std::floor(static_cast<float>((*x)[i].value) * f))));
        } else if (sc->valueAsDouble(static_cast<int64_t>(i)) == 1.0) {
          out.push_back((*x)[i]);
        } else {
          x.reset();
        }
      }
      if (x) result = out;
    }
  }
  if (!result && isConv2d(producer) && v == producer->output(0)) {
    // Shape inference stops at the first com.microsoft op; carry the shapes on through the convs.
    auto x = knownDims(producer->input(0), memo);
    const ir::Tensor* w = producer->input(3)->constant();
    if (x && x->size() == 4 && w != nullptr) {
      // A symbolic spatial dim goes through as convOutputDim names it; a known one is computed.
      constexpr int64_t kStandIn = int64_t{1} << 20;
      std::vector<int64_t> xd{1, w->dims()[1] * producer->attrInt("group", 1), (*x)[2].isKnown() ? (*x)[2].value : kStandIn,
                              (*x)[3].isKnown() ? (*x)[3].value : kStandIn};
      auto g = convGeometry(*producer, xd, w->dims());
      if (g.isOk()) {
        result = std::vector<ir::Dim>{(*x)[0], ir::Dim::known(w->dims()[0]), convOutputDim(*producer, *g, 0, (*x)[2]),
                                      convOutputDim(*producer, *g, 1, (*x)[3])};
      }
    }
  }
  memo[v] = result;
  return result;
}

// How a QLinearAdd/QLinearMul can run channels-last: both inputs of one 4-D shape, or one
// [N, C, H, W] and the other [N, C, 1, 1] (a squeeze-excitation gate), whose bytes are the same
// in either order, so it is read as it is.
enum class BinaryLayout { kNone, kSame, kBroadcastA, kBroadcastB };
BinaryLayout binaryLayout(const ir::Node* n, DimsMemo& memo) {
  auto a = knownDims(n->input(0), memo);
  auto b = knownDims(n->input(3), memo);
  if (!a || !b || a->size() != 4 || b->size() != 4) return BinaryLayout::kNone;
  if (*a == *b) return BinaryLayout::kSame;
  if (isGateOf(*a, *b)) return BinaryLayout::kBroadcastB;
  if (isGateOf(*b, *a)) return BinaryLayout::kBroadcastA;
  return BinaryLayout::kNone;
}

}  // namespace

std::unordered_set<const ir::Value*> channelsLastValues(const ir::Graph& graph) {
  std::unordered_set<const ir::Value*> set;
  DimsMemo memo;
  auto eligible = [&](const ir::Value* v) { return v != nullptr && !v->isGraphOutput() && !v->hasImplicitUses(); };
  for (const ir::Node* n : graph.nodes()) {
    const ir::Value* out = n->output(0);
    if (!eligible(out)) continue;
    if (isConv2d(n) || isPerTensorQuantize4d(n) || isNhwcToNchwBytes(n)) {
      set.insert(out);
    } else if (followsItsInput(n)) {
      if (set.contains(n->input(0))) set.insert(out);
    } else if (isChannelConcat(n)) {
      if (allConcatInputs(n, set)) set.insert(out);
    } else if (isQLinearAdd(n)) {
      if (binaryLayout(n, memo) != BinaryLayout::kNone) set.insert(out);
    }
  }
  // Remove values that break a rule until none does (the greatest consistent set).
  bool changed = true;
  while (changed) {
    changed = false;
    for (auto it = set.begin(); it != set.end();) {
      const ir::Value* v = *it;
      bool ok = true;
      const ir::Node* producer = v->producer();
      if (isQLinearAdd(producer)) {
        switch (binaryLayout(producer, memo)) {
          case BinaryLayout::kSame: ok = set.contains(producer->input(0)) && set.contains(producer->input(3)); break;
          case BinaryLayout::kBroadcastB: ok = set.contains(producer->input(0)); break;
          case BinaryLayout::kBroadcastA: ok = set.contains(producer->input(3)); break;
          case BinaryLayout::kNone: ok = false; break;
        }
      } else if (followsItsInput(producer)) {
        ok = set.contains(producer->input(0));
      } else if (isChannelConcat(producer)) {
        ok = allConcatInputs(producer, set);
      }
      // [N, C, 1, 1]: the same bytes in either order, so any reader takes it as it is (the
      // classifier after a final pool; without this, its Flatten kept every value before it,
      // through the residual Adds, channels first).
      auto dims = ok ? knownDims(v, memo) : std::nullopt;
      const bool onePixel = dims && dims->size() == 4 && (*dims)[2] == ir::Dim::known(1) && (*dims)[3] == ir::Dim::known(1);
      for (const ir::Value::Use& use : v->uses()) {
        if (!ok || onePixel) break;
        const ir::Node* user = use.user;
        if (isConv2d(user)) {
          ok = use.index == 0;
        } else if (isOp(user, kMicrosoft, "QLinearGlobalAveragePool")) {
          ok = use.index == 0 && user->attrInt("channels_last", 0) == 0;
        } else if (isQLinearAdd(user)) {
          ok = (use.index == 0 || use.index == 3) && set.contains(user->output(0));
        } else if (isMaxPool2d(user) || isByteElementwise(user) || isByteChannelGather(user) || isNearestResize(user)) {
          ok = use.index == 0 && set.contains(user->output(0));
        } else if (isAveragePool2d(user)) {  // reads NHWC and writes either layout
          ok = use.index == 0;
        } else if (isChannelConcat(user)) {
          ok = use.index >= 2 && (use.index - 2) % 3 == 0 && set.contains(user->output(0));
        } else {
          ok = false;
        }
      }
      if (ok) {
        ++it;
      } else {
        it = set.erase(it);
        changed = true;
      }
    }
  }
  return set;
}

}  // namespace whittle::runtime::cpu::quant
