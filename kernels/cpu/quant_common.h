#pragma once
// Shared pieces of the quantized CPU kernels (kernels/cpu/quant*.cpp): reading scales and zero
// points, the rounding and requantisation that ONNX Runtime uses (so that whittle's int8 models
// give the same bytes), float8/int4 decoding, a tiny NCHW <-> NHWC transpose, and the
// channels-last plan that lets the int8 convolutions pass NHWC activations between them.
//
// Rounding: every "quantize" here is ONNX's saturate(round_half_even(v) + zero_point), done the
// way MLAS does it: clamp v to [lo - zp, hi - zp] in float first (NaN goes to lo), round half to
// even, add zp. Because the bounds are integers this equals round-then-saturate.

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/tensor.h"
#include "whittle/runtime/kernel.h"

// The float arithmetic of these kernels follows MLAS operation by operation (a multiply, then an
// add, each rounded) so that results match ONNX Runtime's bytes; where MLAS uses a fused
// multiply-add the code calls std::fma. Stop the compiler from fusing on its own in the FMA clones.
#pragma GCC optimize("fp-contract=off")

/// Compiles a hot loop three times (AVX-512, AVX2+FMA, baseline) and picks one at load time:
/// the project builds for baseline x86-64, and these loops are plain C++ the compiler vectorises.
/// Baseline only with clang, which does not clone templates (as WH_SIMD_CLONES).
#if defined(__clang__)
#define WH_QUANT_SIMD
#else
#define WH_QUANT_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

namespace whittle::runtime::cpu::quant {

// ---- registration of the files of the family (called from quant.cpp) ----

/// QLinearConv and ConvInteger (quant_conv.cpp).
void registerQuantConvKernels(KernelRegistry& registry);
/// QLinearMatMul, MatMulInteger and com.microsoft QGemm (quant_matmul.cpp).
void registerQuantMatMulKernels(KernelRegistry& registry);
/// com.microsoft QGemm (quant_gemm.cpp): a oneDNN int8 GEMM when B and the parameters are
/// constants, else qgemmReference.
Expected<std::unique_ptr<Kernel>> createQGemmKernel(const KernelCreateInfo& info);
/// QGemm computed with int32 dot products, any inputs (quant_matmul.cpp).
Status qgemmReference(KernelContext& ctx);
/// The com.microsoft QLinear* element-wise, pooling and concat ops (quant_contrib.cpp).
void registerQuantContribKernels(KernelRegistry& registry);
/// com.whittle.internal QLinearLookup, the table of an element-wise QDQ chain (quant_lookup.cpp).
void registerQuantLookupKernels(KernelRegistry& registry);
/// dst[i] = lut[src[i]] for n bytes, on one thread (two 128-entry byte permutes per 64 bytes
/// with AVX-512 VBMI; quant_lookup.cpp). QLinearLookup and the requantizing copies use it.
void lookupBytes(const uint8_t* lut, const uint8_t* src, uint8_t* dst, int64_t n);
/// com.whittle.internal QLinearPRelu, a QDQ PRelu group with a per-channel slope (quant_prelu.cpp).
void registerQuantPReluKernels(KernelRegistry& registry);

// ---- integer ranges and rounding ----

/// The integer range of a quantized element type.
struct IntRange {
  int32_t lo;
  int32_t hi;
};

/// The range of uint8, int8, uint16, int16, uint4 and int4; nullopt for other types.
std::optional<IntRange> intRange(ir::DataType dtype);

/// Round half to even for |v| < 2^22 (all that a clamped 8/16-bit value can be). Plain float
/// adds, so loops using it vectorise; exact in the default rounding mode.
inline float roundHalfEvenSmall(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

/// Clamp `v` to [lo, hi] with NaN going to lo (as MAXPS/MINPS do), round half to even, add zp.
/// `lo` and `hi` are the type's range minus the zero point.
inline int32_t clampRoundAddZp(float v, float lo, float hi, int32_t zp) {
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  return static_cast<int32_t>(roundHalfEvenSmall(v)) + zp;
}

/// Requantises an int32 accumulator: saturate(round(float(acc) * scale) + zp) as MLAS does.
inline int32_t requantize(int32_t acc, float scale, IntRange range, int32_t zp) {
  return clampRoundAddZp(static_cast<float>(acc) * scale, static_cast<float>(range.lo - zp),
                         static_cast<float>(range.hi - zp), zp);
}

// ---- reading quantisation parameters ----

/// A float32/float16/bfloat16/float64 tensor as float32 values.
Expected<std::vector<float>> readScales(const ir::Tensor& t, const ir::Node& node, std::string_view what);

/// An integer zero-point tensor (uint8, int8, uint16, int16, int32, uint4, int4) as int32
/// values; float8 zero points are decoded to float and must be integral (they are 0 in practice).
Expected<std::vector<int32_t>> readZeroPoints(const ir::Tensor& t, const ir::Node& node, std::string_view what);

/// Element `i` of a packed 4-bit tensor (two per byte, low nibble first).
inline int32_t int4At(const uint8_t* data, int64_t i, bool isSigned) {
  uint8_t byte = data[i >> 1];
  int32_t nibble = (i & 1) ? (byte >> 4) : (byte & 0x0f);
  return isSigned && nibble >= 8 ? nibble - 16 : nibble;
}

/// Decodes one float8 value of `dtype` (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ) to float.
float float8ToFloat(uint8_t bits, ir::DataType dtype);
bool isFloat8(ir::DataType dtype);

/// Reads a per-tensor scale (one element) from `t`; `node` and `what` ("x_scale") name it in
/// errors (the strings are only built for errors: these run on every inference).
Expected<float> scalarScaleOf(const ir::Tensor* t, const ir::Node& node, std::string_view what);
/// Reads a per-tensor zero point from `t` (0 when null).
Expected<int32_t> scalarZeroPointOf(const ir::Tensor* t, const ir::Node& node, std::string_view what);
/// Reads a per-tensor scalar (one element) from input `i`, failing with a message naming it.
Expected<float> scalarScale(const KernelContext& ctx, size_t i, const std::string& what);
/// Reads a per-tensor zero point from optional input `i` (0 when absent).
Expected<int32_t> scalarZeroPoint(const KernelContext& ctx, size_t i, const std::string& what);

// ---- convolution geometry ----

/// Kernel, strides, dilations and the pads (auto_pad resolved) of a QLinearConv/ConvInteger
/// node for input dims `xDims` and weight dims `wDims`, and the output's spatial dims.
struct ConvGeometry {
  std::vector<int64_t> kernel, strides, dilations, padsBegin, padsEnd, outSpatial;
};
Expected<ConvGeometry> convGeometry(const ir::Node& node, const std::vector<int64_t>& xDims, const std::vector<int64_t>& wDims);

// ---- layouts ----

/// Transposes a rows x cols byte matrix into cols x rows: SSE2 16x16 blocks, scalar edges.
void transposeBytes(const uint8_t* in, uint8_t* out, int64_t rows, int64_t cols);
/// The same between strided matrices: out[c * ldo + r] = in[r * ldi + c].
void transposeBytes(const uint8_t* in, int64_t ldi, uint8_t* out, int64_t ldo, int64_t rows, int64_t cols);

/// Transposes a rows x cols matrix into cols x rows, in cache-sized tiles.
template <typename T>
void transposeMatrix(const T* in, T* out, int64_t rows, int64_t cols) {
  if constexpr (sizeof(T) == 1) {
    transposeBytes(reinterpret_cast<const uint8_t*>(in), reinterpret_cast<uint8_t*>(out), rows, cols);
    return;
  }
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t r1 = r0 + kTile < rows ? r0 + kTile : rows;
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t c1 = c0 + kTile < cols ? c0 + kTile : cols;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) out[c * rows + r] = in[r * cols + c];
      }
    }
  }
}

/// out[n][hw][c] = in[n][c][hw].
template <typename T>
void nchwToNhwc(const T* in, T* out, int64_t n, int64_t c, int64_t hw) {
  for (int64_t b = 0; b < n; ++b) transposeMatrix(in + b * c * hw, out + b * c * hw, c, hw);
}

/// out[n][c][hw] = in[n][hw][c].
template <typename T>
void nhwcToNchw(const T* in, T* out, int64_t n, int64_t c, int64_t hw) {
  for (int64_t b = 0; b < n; ++b) transposeMatrix(in + b * c * hw, out + b * c * hw, hw, c);
}

/// The channels-last plan of a graph: the 4-D uint8/int8 values that the quantized kernels
/// store in NHWC order (their dims stay NCHW). The CPU backend's lowering computes it once, after
/// the QDQ lowering and the float lowering, and records it in the LoweringResult that the
/// kernels read through KernelCreateInfo::channelsLastInt8. A value qualifies when its producer can write
/// NHWC (QLinearConv, QuantizeLinear per-tensor, QLinearAdd/QLinearMul of two such values, a 2-D
/// MaxPool without dilation or Indices or a 2-D QLinearAveragePool of such a value, a QLinearLookup,
/// QLinearPRelu, byte ChannelGather or nearest Resize of such a value, a QLinearConcat on the
/// channel axis of such values, a Transpose [0, 3, 1, 2] of plain bytes, which are then the NHWC
/// bytes of its output) and every consumer reads NHWC (QLinearConv input X,
/// QLinearGlobalAveragePool input X, QLinearAdd/QLinearMul of two such values of equal shape, such
/// a pool, QLinearLookup, QLinearPRelu, ChannelGather, Resize or QLinearConcat) or its dims are
/// [N, C, 1, 1] (the same bytes in either order: any consumer), and it is not a graph output.
/// (A QLinearAveragePool reads and writes either layout, so its input may be in the plan and its
/// output not.) Every kernel that takes part reads the same recorded plan, so producer and
/// consumers agree; a kernel created outside a session (runtime::evaluateNode) has no plan and
/// works NCHW. (The session makes SessionOptions::extraOutputs graph outputs of its private
/// graph before lowering, so they stay NCHW.)
std::unordered_set<const ir::Value*> channelsLastValues(const ir::Graph& graph);

// ---- misc ----

/// Whether oneDNN's int8 kernels on this CPU multiply-accumulate exactly for every input: true
/// with VNNI (AVX-512 VNNI, AVX-VNNI) or AMX. Without it they use VPMADDUBSW, whose int16 pair
/// sums saturate unless |weight| <= 64, and they halve s8s8 weights (inexact).
bool int8KernelsExact();

/// "uint8", "float32", ... for messages.
std::string typeName(ir::DataType dtype);

/// Runs `fn`, turning a dnnl::error it throws into an unimplemented/internal Status naming `node`.
Status dnnlGuard(const ir::Node& node, const std::function<void()>& fn);

}  // namespace whittle::runtime::cpu::quant
