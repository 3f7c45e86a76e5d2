// LSTM, GRU and RNN (opsets 7 to 22) in float32; float16 and bfloat16 widen to float32 and
// round once at the end.
//
//   X [seq, batch, input] (layout 1: [batch, seq, input]); per direction d, gates g of size H:
//   RNN:  H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)
//   GRU:  z = f(X_t Wz^T + H_{t-1} Rz^T + Wbz + Rbz),  r = f(... Wr, Rr ...)
//         h = g(X_t Wh^T + (r . H_{t-1}) Rh^T + Rbh + Wbh)            linear_before_reset = 0
//         h = g(X_t Wh^T + r . (H_{t-1} Rh^T + Rbh) + Wbh)             linear_before_reset != 0
//         H_t = (1 - z) . h + z . H_{t-1}
//   LSTM: i = f(X_t Wi^T + H_{t-1} Ri^T + Pi . C_{t-1} + Wbi + Rbi),  f likewise with Pf
//         (input_forget: f = 1 - i), c = g(X_t Wc^T + H_{t-1} Rc^T + Wbc + Rbc),
//         C_t = f . C_{t-1} + i . c,  o = f(... + Po . C_t ...),  H_t = o . h(C_t)
//   Gate order in W, R and B: RNN i; GRU z, r, h; LSTM i, o, f, c; P holds i, o, f.
//   clip bounds every gate's input to its activation (after bias and peephole), not C_t.
//
// Computation. The input projection X W^T of every time step and direction is one GEMM
// (dnnl_sgemm) before the time loop; each step then does H_{t-1} R^T as one GEMM over the
// batch (two for GRU with linear_before_reset = 0: z and r first, then (r . H) Rh^T) and the
// gate math as vectorised loops over the hidden units (cpu/elementwise_math.h).
//
// sequence_lens, as ONNX Runtime 1.32 does: batch entry b runs len[b] steps (the reverse
// direction reads X[len[b]-1] down to X[0]); Y is zero at t >= len[b]; Y_h and Y_c hold the
// state after the last step, and are zero for a sequence of length 0.
//
// com.microsoft DynamicQuantizeLSTM is the LSTM with W [dirs, input, 4H] and R [dirs, H, 4H]
// stored transposed as int8 or uint8, with a scale and a zero point per direction or per output
// column (inputs 8 to 11). It runs ONNX Runtime's arithmetic: each GEMM quantizes its float
// operand (all of X for the input projection, H_{t-1} of the whole batch at each step) to
// uint8 over [min(0, min), max(0, max)] (scale (max - min) / 255, zero point rounded half to
// even, values x / scale rounded to nearest even), multiplies in int32 (oneDNN's
// gemm_u8s8s32) and scales the sums by a_scale * w_scale of the column; the gate math is the
// float LSTM's. Where a value x / scale lands within float rounding of a .5 the two runtimes
// can round it apart, which the following steps carry on (a few 1e-4 on a long sequence).
//
// Activation parameters, as ONNX Runtime does: activation_alpha and activation_beta are
// consumed in order by the activations that take them (Affine, LeakyRelu, ThresholdedRelu,
// ScaledTanh, HardSigmoid, Elu); when a list runs out, LeakyRelu takes alpha 0.01,
// HardSigmoid 0.2 and 0.5, Elu alpha 1, and the others 0. Names match case-insensitively.
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/elementwise_common.h"
#include "cpu/families.h"
#include "cpu/gemv.h"
#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu {
namespace {

using ir::DataType;

enum class Cell { kRnn, kGru, kLstm };

enum class ActKind {
  kRelu,
  kTanh,
  kSigmoid,
  kAffine,
  kLeakyRelu,
  kThresholdedRelu,
  kScaledTanh,
  kHardSigmoid,
  kElu,
  kSoftsign,
  kSoftplus
};

struct Activation {
  ActKind kind = ActKind::kTanh;
  float alpha = 0.f, beta = 0.f;
};

// ---- activations: one vectorised loop per kind ----

template <typename Op>
WH_SIMD_CLONES void mapInPlace(float* x, int64_t n, Op op) {
  for (int64_t i = 0; i < n; ++i) x[i] = op(x[i]);
}

/// x = act(x) over n values.
void applyActivation(const Activation& a, float* x, int64_t n) {
  const float alpha = a.alpha, beta = a.beta;
  switch (a.kind) {
    case ActKind::kRelu: mapInPlace(x, n, [](float v) { return v > 0.f ? v : 0.f; }); break;
    case ActKind::kTanh: mapInPlace(x, n, [](float v) { return tanhFast(v); }); break;
    case ActKind::kSigmoid: mapInPlace(x, n, [](float v) { return sigmoidFast(v); }); break;
    case ActKind::kAffine: mapInPlace(x, n, [=](float v) { return alpha * v + beta; }); break;
    case ActKind::kLeakyRelu: mapInPlace(x, n, [=](float v) { return v >= 0.f ? v : alpha * v; }); break;
    case ActKind::kThresholdedRelu: mapInPlace(x, n, [=](float v) { return v > alpha ? v : 0.f; }); break;
    case ActKind::kScaledTanh: mapInPlace(x, n, [=](float v) { return alpha * tanhFast(beta * v); }); break;
    case ActKind::kHardSigmoid:
      mapInPlace(x, n, [=](float v) {
        float y = alpha * v + beta;
        y = y > 0.f ? y : 0.f;
        return y < 1.f ? y : 1.f;
      });
      break;
    case ActKind::kElu: mapInPlace(x, n, [=](float v) { return v >= 0.f ? v : alpha * expm1Fast(v); }); break;
    case ActKind::kSoftsign: mapInPlace(x, n, [](float v) { return v / (1.f + std::fabs(v)); }); break;
    case ActKind::kSoftplus: mapInPlace(x, n, [](float v) { return softplusFast(v); }); break;
  }
}

WH_SIMD_CLONES void clipInPlace(float* x, int64_t n, float bound) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] < bound ? x[i] : bound;
    x[i] = v > -bound ? v : -bound;
  }
}

/// g += a + c over n values.
WH_SIMD_CLONES void add3(float* g, const float* a, const float* c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] += a[i] + c[i];
}
/// g += p . c
WH_SIMD_CLONES void addProduct(float* g, const float* p, const float* c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] += p[i] * c[i];
}

// ---- attributes ----

struct Attrs {
  Cell cell = Cell::kLstm;
  int64_t hidden = 0;
  int dirs = 1;
  bool reverse = false;  // direction == "reverse"
  int gates = 4;         // gate blocks per direction: RNN 1, GRU 3, LSTM 4
  int actsPerDir = 3;
  std::vector<Activation> acts;  // dirs * actsPerDir
  float clip = std::numeric_limits<float>::infinity();
  bool inputForget = false;
  bool linearBeforeReset = false;
  int layout = 0;
  bool quantized = false;  // com.microsoft DynamicQuantizeLSTM
};

bool takesAlpha(ActKind k) {
  return k == ActKind::kAffine || k == ActKind::kLeakyRelu || k == ActKind::kThresholdedRelu ||
         k == ActKind::kScaledTanh || k == ActKind::kHardSigmoid || k == ActKind::kElu;
}
bool takesBeta(ActKind k) {
  return k == ActKind::kAffine || k == ActKind::kScaledTanh || k == ActKind::kHardSigmoid;
}

Expected<Attrs> parseAttrs(const KernelCreateInfo& info, Cell cell, bool quantized = false) {
  const ir::Node& node = info.node;
  Attrs a;
  a.cell = cell;
  a.quantized = quantized;
  a.gates = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 3 : 4;
  a.actsPerDir = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 2 : 3;
  a.hidden = node.attrInt("hidden_size", 0);
  if (a.hidden <= 0) return info.error("hidden_size must be a positive integer");
  std::string direction = node.attrString("direction", "forward");
  if (direction == "forward") {
    a.dirs = 1;
  } else if (direction == "reverse") {
    a.dirs = 1;
    a.reverse = true;
  } else if (direction == "bidirectional") {
    a.dirs = 2;
  } else {
    return info.error("direction must be forward, reverse or bidirectional, got '" + direction + "'");
  }
  if (info.opset >= 14 && !quantized) a.layout = static_cast<int>(node.attrInt("layout", 0));
  if (a.layout != 0 && a.layout != 1) return info.error("layout must be 0 or 1, got " + std::to_string(a.layout));
  if (const ir::Attribute* clip = node.findAttribute("clip")) {
    if (!(clip->f > 0.f)) return info.error("clip must be positive, got " + std::to_string(clip->f));
    a.clip = clip->f;
  }
  if (cell == Cell::kLstm) a.inputForget = node.attrInt("input_forget", 0) != 0;
  if (cell == Cell::kGru) a.linearBeforeReset = node.attrInt("linear_before_reset", 0) != 0;

  std::vector<std::string> names;
  if (const ir::Attribute* acts = node.findAttribute("activations")) names = acts->strings;
  if (names.empty()) {
    std::vector<std::string> defaults = cell == Cell::kRnn   ? std::vector<std::string>{"Tanh"}
                                        : cell == Cell::kGru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                             : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
    for (int d = 0; d < a.dirs; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() != static_cast<size_t>(a.dirs * a.actsPerDir)) {
    return info.error("activations must list " + std::to_string(a.actsPerDir) + " function(s) per direction (" +
                      std::to_string(a.dirs * a.actsPerDir) + " in all), got " + std::to_string(names.size()));
  }
  const std::vector<float> alphas = node.attrFloats("activation_alpha");
  const std::vector<float> betas = node.attrFloats("activation_beta");
  size_t nextAlpha = 0, nextBeta = 0;
  static const std::vector<std::pair<std::string, ActKind>> kKinds = {
      {"relu", ActKind::kRelu},
      {"tanh", ActKind::kTanh},
      {"sigmoid", ActKind::kSigmoid},
      {"affine", ActKind::kAffine},
      {"leakyrelu", ActKind::kLeakyRelu},
      {"thresholdedrelu", ActKind::kThresholdedRelu},
      {"scaledtanh", ActKind::kScaledTanh},
      {"hardsigmoid", ActKind::kHardSigmoid},
      {"elu", ActKind::kElu},
      {"softsign", ActKind::kSoftsign},
      {"softplus", ActKind::kSoftplus}};
  for (const std::string& name : names) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    auto found = std::find_if(kKinds.begin(), kKinds.end(), [&](const auto& k) { return k.first == lower; });
    if (found == kKinds.end()) {
      return info.unsupported("activation '" + name +
                              "' is not one of Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, "
                              "HardSigmoid, Elu, Softsign, Softplus");
    }
    Activation act;
    act.kind = found->second;
    if (act.kind == ActKind::kLeakyRelu) act.alpha = 0.01f;
    if (act.kind == ActKind::kHardSigmoid) {
      act.alpha = 0.2f;
      act.beta = 0.5f;
    }
    if (act.kind == ActKind::kElu) act.alpha = 1.0f;
    if (takesAlpha(act.kind) && nextAlpha < alphas.size()) act.alpha = alphas[nextAlpha++];
    if (takesBeta(act.kind) && nextBeta < betas.size()) act.beta = betas[nextBeta++];
    a.acts.push_back(act);
  }
  return a;
}

// ---- weights ----

/// W, R, B and P of every direction, as float32, with the biases folded.
struct Weights {
  int64_t input = 0;
  std::vector<float> wt;         // W transposed: [input, dirs * G*H] (all directions side by side)
  std::vector<float> rt;         // R transposed per direction: [dirs, H, G*H]
  std::vector<float> bias;       // [dirs, G*H]: Wb + Rb (GRU with linear_before_reset: Rbh left out)
  std::vector<float> recurBias;  // GRU with linear_before_reset: Rbh [dirs, H]
  std::vector<float> peep;       // LSTM: [dirs, 3H] (i, o, f), empty when absent
  // DynamicQuantizeLSTM: W and R stay int8 (uint8 weights shifted by -128, their zero points
  // too); wt and rt are empty then.
  bool quantized = false;
  std::vector<int8_t> wq;       // [input, dirs * G*H], like wt
  std::vector<int8_t> rq;       // [dirs, H, G*H], like rt
  std::vector<int32_t> wZero;   // [dirs * G*H]
  std::vector<float> wScale;    // [dirs * G*H]
  std::vector<int32_t> rZero;   // [dirs * G*H]
  std::vector<float> rScale;    // [dirs * G*H]
  // With AVX-512 VNNI: wq and each direction's rq packed once for the few-row products.
  std::vector<PackedInt8B> wPacked;  // empty, or one
  std::vector<PackedInt8B> rPacked;  // empty, or one per direction
  // With AVX-512, float weights: each direction's rt packed once for the steps of batch <= 16
  // (LSTM, RNN, GRU with linear_before_reset: the products over all G*H columns).
  std::vector<PackedFloatB> rtPacked;  // empty, or one per direction
  // With AVX-512, float weights: wt packed once for the input projection of a few rows.
  std::vector<PackedFloatB> wtPacked;  // empty, or one
};

/// Input projections of at most this many rows (steps x batch) run on the packed W: dnnl_sgemm
/// packs both operands and allocates a workspace on every call (piper-tashkeel's 9 GRUs of 48
/// steps spent 12-20 % of their time there).
constexpr int64_t kPackedProjectionRows = 64;

void copyFloats(const ir::Tensor& t, std::vector<float>& out) {
  ir::Tensor f = toFloat32(t);
  out.assign(f.data<float>(), f.data<float>() + f.numel());
}

/// Reads and checks B (3) and P (7, LSTM) into out.bias, out.recurBias and out.peep.
Status buildBiasAndPeep(const Attrs& a, const std::string& who, const ir::Tensor* b, const ir::Tensor* p,
                        Weights& out) {
  auto error = [&](const std::string& m) { return invalidInput(who + ": " + m); };
  const int64_t gh = a.gates * a.hidden;
  out.bias.assign(static_cast<size_t>(a.dirs * gh), 0.f);
  out.recurBias.clear();
  if (a.linearBeforeReset) out.recurBias.assign(static_cast<size_t>(a.dirs * a.hidden), 0.f);
  if (b != nullptr) {
    if (b->dims() != std::vector<int64_t>{a.dirs, 2 * gh})
      return error("B must be " + shapeToString({a.dirs, 2 * gh}) + ", got " + shapeToString(b->dims()));
    std::vector<float> bv;
    copyFloats(*b, bv);
    for (int64_t d = 0; d < a.dirs; ++d) {
      const float* wb = bv.data() + d * 2 * gh;
      const float* rb = wb + gh;
      float* dst = out.bias.data() + d * gh;
      for (int64_t i = 0; i < gh; ++i) dst[i] = wb[i] + rb[i];
      if (a.linearBeforeReset) {
        for (int64_t i = 0; i < a.hidden; ++i) {
          dst[2 * a.hidden + i] = wb[2 * a.hidden + i];
          out.recurBias[static_cast<size_t>(d * a.hidden + i)] = rb[2 * a.hidden + i];
        }
      }
    }
  }
  out.peep.clear();
  if (p != nullptr) {
    if (p->dims() != std::vector<int64_t>{a.dirs, 3 * a.hidden})
      return error("P must be " + shapeToString({a.dirs, 3 * a.hidden}) + ", got " + shapeToString(p->dims()));
    copyFloats(*p, out.peep);
  }
  return Status::ok();
}

/// Reads and checks W (1), R (2), B (3) and P (7, LSTM) from tensors (nullptr when absent).
Status buildWeights(const Attrs& a, const std::string& who, const ir::Tensor& w, const ir::Tensor& r,
                    const ir::Tensor* b, const ir::Tensor* p, Weights& out) {
  auto error = [&](const std::string& m) { return invalidInput(who + ": " + m); };
  const int64_t gh = a.gates * a.hidden;
  if (w.dims().size() != 3 || w.dims()[0] != a.dirs || w.dims()[1] != gh)
    return error("W must be [" + std::to_string(a.dirs) + ", " + std::to_string(gh) + ", input_size], got " +
                 shapeToString(w.dims()));
  out.input = w.dims()[2];
  if (r.dims() != std::vector<int64_t>{a.dirs, gh, a.hidden})
    return error("R must be " + shapeToString({a.dirs, gh, a.hidden}) + ", got " + shapeToString(r.dims()));
  // Transposed, so that both GEMMs read B as [K, N] row-major (oneDNN's sgemm is about twice as
  // fast that way for the one-row products of batch 1 than with B transposed).
  std::vector<float> wv, rv;
  copyFloats(w, wv);
  copyFloats(r, rv);
  const int64_t in = out.input, cols = a.dirs * gh;
  out.wt.resize(static_cast<size_t>(in * cols));
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t i = 0; i < in; ++i) out.wt[static_cast<size_t>(i * cols + j)] = wv[static_cast<size_t>(j * in + i)];
  }
  out.rt.resize(rv.size());
  for (int64_t d = 0; d < a.dirs; ++d) {
    const float* src = rv.data() + d * gh * a.hidden;
    float* dst = out.rt.data() + d * gh * a.hidden;
    for (int64_t j = 0; j < gh; ++j) {
      for (int64_t k = 0; k < a.hidden; ++k) dst[k * gh + j] = src[j * a.hidden + k];
    }
  }
  if (floatGemmPackedAvailable() && (a.cell != Cell::kGru || a.linearBeforeReset)) {
    for (int64_t d = 0; d < a.dirs; ++d) out.rtPacked.push_back(packFloatB(out.rt.data() + d * gh * a.hidden, a.hidden, gh, gh));
  }
  if (floatGemmPackedAvailable()) out.wtPacked.push_back(packFloatB(out.wt.data(), in, cols, cols));
  return buildBiasAndPeep(a, who, b, p, out);
}

/// C[m, n] (ldc) = A[m, k] (lda) * B[k, n] (ldb); beta 0. Row-major.
Status gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
              int64_t ldc, const std::string& who) {
  if (m == 0 || n == 0) return Status::ok();
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.f);
    return Status::ok();
  }
  dnnl_status_t st = dnnl_sgemm('N', 'N', m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc);
  if (st != dnnl_success) return internalError(who + ": dnnl_sgemm failed with status " + std::to_string(st));
  return Status::ok();
}

/// One direction's scale and zero point per output column, from a [dirs] or [dirs, G*H] tensor.
Status perColumn(const ir::Tensor& scale, const ir::Tensor& zero, DataType wType, int64_t dirs, int64_t gh,
                 const std::string& what, const std::string& who, std::vector<float>& scales, std::vector<int32_t>& zeros) {
  auto error = [&](const std::string& m) { return invalidInput(who + ": " + m); };
  const bool perDir = scale.dims() == std::vector<int64_t>{dirs};
  if (!perDir && scale.dims() != std::vector<int64_t>{dirs, gh})
    return error(what + "_scale must be [" + std::to_string(dirs) + "] or " + shapeToString({dirs, gh}) + ", got " +
                 shapeToString(scale.dims()));
  if (scale.dtype() != DataType::kFloat) return error(what + "_scale must be float32");
  if (zero.dims() != scale.dims()) return error(what + "_zero_point must have " + what + "_scale's shape " + shapeToString(scale.dims()));
  if (zero.dtype() != wType) return error(what + "_zero_point must have " + what + "'s dtype");
  scales.resize(static_cast<size_t>(dirs * gh));
  zeros.resize(static_cast<size_t>(dirs * gh));
  for (int64_t c = 0; c < dirs * gh; ++c) {
    const int64_t at = perDir ? c / gh : c;
    scales[static_cast<size_t>(c)] = scale.data<float>()[at];
    // uint8 weights are stored shifted by -128, and so are their zero points.
    zeros[static_cast<size_t>(c)] = wType == DataType::kUint8 ? static_cast<int32_t>(zero.data<uint8_t>()[at]) - 128
                                                              : static_cast<int32_t>(zero.data<int8_t>()[at]);
  }
  return Status::ok();
}

/// DynamicQuantizeLSTM's weights: W [dirs, input, G*H] and R [dirs, H, G*H] (int8 or uint8)
/// with their scales and zero points (`q` holds inputs 8 to 11), B and P as for LSTM.
Status buildQuantizedWeights(const Attrs& a, const std::string& who, const ir::Tensor& w, const ir::Tensor& r,
                             const ir::Tensor* b, const ir::Tensor* p, const ir::Tensor* const q[4], Weights& out) {
  auto error = [&](const std::string& m) { return invalidInput(who + ": " + m); };
  const int64_t gh = a.gates * a.hidden;
  if (w.dtype() != DataType::kInt8 && w.dtype() != DataType::kUint8)
    return error("W must be int8 or uint8, got " + std::string(ir::dataTypeName(w.dtype())));
  if (r.dtype() != w.dtype()) return error("R must have W's dtype " + std::string(ir::dataTypeName(w.dtype())));
  if (w.dims().size() != 3 || w.dims()[0] != a.dirs || w.dims()[2] != gh)
    return error("W must be [" + std::to_string(a.dirs) + ", input_size, " + std::to_string(gh) + "], got " +
                 shapeToString(w.dims()));
  if (r.dims() != std::vector<int64_t>{a.dirs, a.hidden, gh})
    return error("R must be " + shapeToString({a.dirs, a.hidden, gh}) + ", got " + shapeToString(r.dims()));
  out.quantized = true;
  out.wt.clear();
  out.rt.clear();
  out.input = w.dims()[1];
  const int64_t in = out.input, cols = a.dirs * gh;
  auto shifted = [&](const ir::Tensor& t, int64_t i) -> int8_t {
    return t.dtype() == DataType::kUint8 ? static_cast<int8_t>(static_cast<int32_t>(t.data<uint8_t>()[i]) - 128)
                                         : t.data<int8_t>()[i];
  };
  out.wq.resize(static_cast<size_t>(in * cols));
  for (int64_t d = 0; d < a.dirs; ++d) {
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t j = 0; j < gh; ++j) out.wq[static_cast<size_t>(i * cols + d * gh + j)] = shifted(w, (d * in + i) * gh + j);
    }
  }
  out.rq.resize(static_cast<size_t>(r.numel()));
  for (int64_t i = 0; i < r.numel(); ++i) out.rq[static_cast<size_t>(i)] = shifted(r, i);
  if (int8GemvAvailable()) {
    out.wPacked.push_back(packInt8B(out.wq.data(), in, cols, cols));
    for (int64_t d = 0; d < a.dirs; ++d) out.rPacked.push_back(packInt8B(out.rq.data() + d * a.hidden * gh, a.hidden, gh, gh));
  }
  WH_RETURN_IF_ERROR(perColumn(*q[0], *q[1], w.dtype(), a.dirs, gh, "W", who, out.wScale, out.wZero));
  WH_RETURN_IF_ERROR(perColumn(*q[2], *q[3], w.dtype(), a.dirs, gh, "R", who, out.rScale, out.rZero));
  return buildBiasAndPeep(a, who, b, p, out);
}

/// C[m, n] (ldc) = A[m, k] (lda) * B[k, n] (ldb) the way ONNX Runtime's quantized LSTM does it:
/// A quantized to uint8 over [min(0, min A), max(0, max A)], B int8 with a zero point and a scale
/// per column, int32 sums scaled by scale_A * scale_B[j]. `qa` and `acc` are scratch. `packed`
/// (null: none) is B packed for the VNNI product, which a product of a few rows takes.
Status quantizedGemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const int8_t* b, int64_t ldb,
                     const int32_t* bZero, const float* bScale, float* c, int64_t ldc, std::vector<uint8_t>& qa,
                     std::vector<int32_t>& acc, const std::string& who, const PackedInt8B* packed) {
  if (m == 0 || n == 0) return Status::ok();
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      lo = std::min(lo, a[i * lda + j]);
      hi = std::max(hi, a[i * lda + j]);
    }
  }
  const float scale = hi == lo ? 1.f : (hi - lo) / 255.f;
  const float zeroF = std::clamp(0.f - lo / scale, 0.f, 255.f);
  const int32_t zero = static_cast<int32_t>(std::nearbyint(zeroF));  // the default rounding: half to even
  qa.resize(static_cast<size_t>(m * k));
  std::vector<int32_t> rowSum(static_cast<size_t>(m), 0);  // sum over k of (qa - zero)
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      const float v = std::clamp(std::nearbyint(a[i * lda + j] / scale) + static_cast<float>(zero), 0.f, 255.f);
      qa[static_cast<size_t>(i * k + j)] = static_cast<uint8_t>(v);
      rowSum[static_cast<size_t>(i)] += static_cast<int32_t>(v) - zero;
    }
  }
  acc.resize(static_cast<size_t>(m * n));
  if (k > 0 && packed != nullptr && m <= 32) {
    int8GemmPacked(m, qa.data(), k, zero, *packed, acc.data(), n);
  } else if (k > 0) {
    const int32_t offset = 0;
    dnnl_status_t st = dnnl_gemm_u8s8s32('N', 'N', 'F', m, n, k, 1.f, qa.data(), k, static_cast<uint8_t>(zero), b, ldb, 0,
                                         0.f, acc.data(), n, &offset);
    if (st != dnnl_success) return internalError(who + ": dnnl_gemm_u8s8s32 failed with status " + std::to_string(st));
  } else {
    std::fill(acc.begin(), acc.end(), 0);
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const int32_t sum = acc[static_cast<size_t>(i * n + j)] - bZero[j] * rowSum[static_cast<size_t>(i)];
      c[i * ldc + j] = static_cast<float>(sum) * (scale * bScale[j]);
    }
  }
  return Status::ok();
}

// ---- the kernel ----

class RecurrentKernel final : public Kernel {
 public:
  explicit RecurrentKernel(Attrs attrs) : a_(std::move(attrs)) {}

  Status prepare(const KernelCreateInfo& info) {
    const ir::Tensor* w = info.constantInput(1);
    const ir::Tensor* r = info.constantInput(2);
    const bool hasB = info.node.input(3) != nullptr;
    const bool hasP = a_.cell == Cell::kLstm && info.node.input(7) != nullptr;
    const ir::Tensor* b = hasB ? info.constantInput(3) : nullptr;
    const ir::Tensor* p = hasP ? info.constantInput(7) : nullptr;
    if (w == nullptr || r == nullptr || (hasB && b == nullptr) || (hasP && p == nullptr)) return Status::ok();
    if (a_.quantized) {
      const ir::Tensor* q[4];
      for (size_t i = 0; i < 4; ++i) {
        if (info.node.input(8 + i) == nullptr) return info.error("input " + std::to_string(8 + i) + " is required");
        q[i] = info.constantInput(8 + i);
        if (q[i] == nullptr) return Status::ok();
      }
      for (const ir::Tensor* t : {b, p}) {
        if (t != nullptr && t->dtype() != DataType::kFloat) return info.unsupported(dtypeMessage(t->dtype()));
      }
      WH_RETURN_IF_ERROR(buildQuantizedWeights(a_, info.node.describe(), *w, *r, b, p, q, weights_));
      constantWeights_ = true;
      return Status::ok();
    }
    for (const ir::Tensor* t : {w, r, b, p}) {
      if (t != nullptr && !isFloat(t->dtype())) return info.unsupported(dtypeMessage(t->dtype()));
    }
    WH_RETURN_IF_ERROR(buildWeights(a_, info.node.describe(), *w, *r, b, p, weights_));
    constantWeights_ = true;
    return Status::ok();
  }

  Status run(KernelContext& ctx) override;

 private:
  static bool isFloat(DataType t) {
    return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16;
  }
  static std::string dtypeMessage(DataType t) {
    return "dtype " + std::string(ir::dataTypeName(t)) + " is not supported (float32, float16, bfloat16)";
  }
  Status runDirection(KernelContext& ctx, const Weights& w, int d, int64_t seq, int64_t batch,
                      const std::vector<int64_t>& lens, const float* h0, const float* c0, float* y, float* yh,
                      float* yc);

  Attrs a_;
  bool constantWeights_ = false;
  Weights weights_;
  // Per-run scratch, kept between runs.
  std::vector<float> xproj_, gates_, state_, cell_, hidden_, tmp_;
  std::vector<uint8_t> quantizedA_;  // DynamicQuantizeLSTM: the GEMM operand in uint8
  std::vector<int32_t> sums_;        // and the int32 sums
};

Status RecurrentKernel::run(KernelContext& ctx) {
  const ir::Tensor& x = ctx.input(0);
  const DataType dtype = x.dtype();
  if (!isFloat(dtype)) return ctx.unsupported(dtypeMessage(dtype));
  if (x.dims().size() != 3) return ctx.error("X must be 3-D, got " + shapeToString(x.dims()));
  const int64_t seq = a_.layout == 0 ? x.dims()[0] : x.dims()[1];
  const int64_t batch = a_.layout == 0 ? x.dims()[1] : x.dims()[0];
  const int64_t H = a_.hidden;
  const std::string who = ctx.describe();

  Weights runWeights;
  const Weights* wts = &weights_;
  if (!constantWeights_ && a_.quantized) {
    const bool hasB = ctx.hasInput(3);
    const bool hasP = ctx.hasInput(7);
    const ir::Tensor* q[4];
    for (size_t i = 0; i < 4; ++i) {
      if (!ctx.hasInput(8 + i)) return ctx.error("input " + std::to_string(8 + i) + " is required");
      q[i] = &ctx.input(8 + i);
    }
    for (size_t i : {size_t{3}, size_t{7}}) {
      if (ctx.hasInput(i) && ctx.input(i).dtype() != dtype)
        return ctx.error("input " + std::to_string(i) + " must have X's dtype " + std::string(ir::dataTypeName(dtype)));
    }
    WH_RETURN_IF_ERROR(buildQuantizedWeights(a_, who, ctx.input(1), ctx.input(2), hasB ? &ctx.input(3) : nullptr,
                                             hasP ? &ctx.input(7) : nullptr, q, runWeights));
    wts = &runWeights;
  } else if (!constantWeights_) {
    const bool hasB = ctx.hasInput(3);
    const bool hasP = a_.cell == Cell::kLstm && ctx.hasInput(7);
    for (size_t i : {size_t{1}, size_t{2}, size_t{3}, size_t{7}}) {
      if (ctx.hasInput(i) && (i != 7 || a_.cell == Cell::kLstm) && ctx.input(i).dtype() != dtype)
        return ctx.error("input " + std::to_string(i) + " must have X's dtype " + std::string(ir::dataTypeName(dtype)));
    }
    WH_RETURN_IF_ERROR(buildWeights(a_, who, ctx.input(1), ctx.input(2), hasB ? &ctx.input(3) : nullptr,
                                    hasP ? &ctx.input(7) : nullptr, runWeights));
    wts = &runWeights;
  }
  if (wts->input != x.dims()[2])
    return ctx.error("X " + shapeToString(x.dims()) + " has input_size " + std::to_string(x.dims()[2]) +
                     ", W expects " + std::to_string(wts->input));

  // sequence_lens
  std::vector<int64_t> lens(static_cast<size_t>(batch), seq);
  if (ctx.hasInput(4)) {
    const ir::Tensor& sl = ctx.input(4);
    if (sl.dims() != std::vector<int64_t>{batch})
      return ctx.error("sequence_lens must be [" + std::to_string(batch) + "], got " + shapeToString(sl.dims()));
    WH_ASSIGN_OR_RETURN(lens, readInts(sl, who + ": sequence_lens"));
    for (int64_t len : lens) {
      if (len < 0 || len > seq)
        return ctx.error("sequence_lens holds " + std::to_string(len) + ", outside [0, " + std::to_string(seq) + "]");
    }
  }
  // Initial states, as float32, in [dirs, batch, H] (layout 1 inputs are [batch, dirs, H]).
  const std::vector<int64_t> stateDims =
      a_.layout == 0 ? std::vector<int64_t>{a_.dirs, batch, H} : std::vector<int64_t>{batch, a_.dirs, H};
  auto readState = [&](size_t index, const char* name, std::vector<float>& out) -> Status {
    out.clear();
    if (!ctx.hasInput(index)) return Status::ok();
    const ir::Tensor& t = ctx.input(index);
    if (t.dtype() != dtype) return ctx.error(std::string(name) + " must have X's dtype");
    if (t.dims() != stateDims)
      return ctx.error(std::string(name) + " must be " + shapeToString(stateDims) + ", got " + shapeToString(t.dims()));
    ir::Tensor f = toFloat32(t);
    const float* src = f.data<float>();
    out.resize(static_cast<size_t>(a_.dirs * batch * H));
    for (int64_t d = 0; d < a_.dirs; ++d) {
      for (int64_t b = 0; b < batch; ++b) {
        const float* row = a_.layout == 0 ? src + (d * batch + b) * H : src + (b * a_.dirs + d) * H;
        std::copy_n(row, H, out.data() + (d * batch + b) * H);
      }
    }
    return Status::ok();
  };
  std::vector<float> h0, c0;
  WH_RETURN_IF_ERROR(readState(5, "initial_h", h0));
  if (a_.cell == Cell::kLstm) WH_RETURN_IF_ERROR(readState(6, "initial_c", c0));

  // Outputs: computed in float32 in ONNX layout; narrowed at the end for half types.
  const bool wide = dtype != DataType::kFloat;
  const std::vector<int64_t> yDims = a_.layout == 0 ? std::vector<int64_t>{seq, a_.dirs, batch, H}
                                                    : std::vector<int64_t>{batch, seq, a_.dirs, H};
  const size_t numStateOutputs = a_.cell == Cell::kLstm ? 3 : 2;
  std::vector<ir::Tensor> wideOut(numStateOutputs);
  float* outs[3] = {nullptr, nullptr, nullptr};
  for (size_t i = 0; i < numStateOutputs; ++i) {
    if (!ctx.hasOutput(i)) continue;
    std::vector<int64_t> dims = i == 0 ? yDims : stateDims;
    if (wide) {
      wideOut[i] = ir::Tensor(DataType::kFloat, dims);
      outs[i] = wideOut[i].mutableData<float>();
    } else {
      outs[i] = ctx.allocateOutput(i, DataType::kFloat, dims).mutableData<float>();
    }
  }
  if (outs[0] != nullptr && std::any_of(lens.begin(), lens.end(), [&](int64_t l) { return l < seq; }))
    std::fill_n(outs[0], seq * a_.dirs * batch * H, 0.f);

  // The input projection of every step and direction: [rows, dirs * G * H], rows in X's order.
  const int64_t gh = a_.gates * H;
  const int64_t rows = seq * batch;
  xproj_.resize(static_cast<size_t>(rows * a_.dirs * gh));
  ir::Tensor xf = toFloat32(x);
  if (wts->quantized) {
    WH_RETURN_IF_ERROR(quantizedGemm(rows, a_.dirs * gh, wts->input, xf.data<float>(), wts->input, wts->wq.data(),
                                     a_.dirs * gh, wts->wZero.data(), wts->wScale.data(), xproj_.data(), a_.dirs * gh,
                                     quantizedA_, sums_, who, wts->wPacked.empty() ? nullptr : &wts->wPacked[0]));
  } else if (!wts->wtPacked.empty() && rows <= kPackedProjectionRows) {
    floatGemmPacked(rows, xf.data<float>(), wts->input, wts->wtPacked[0], xproj_.data(), a_.dirs * gh);
  } else {
    WH_RETURN_IF_ERROR(gemm(rows, a_.dirs * gh, wts->input, xf.data<float>(), wts->input, wts->wt.data(), a_.dirs * gh,
                            xproj_.data(), a_.dirs * gh, who));
  }
  for (int d = 0; d < a_.dirs; ++d) {
    WH_RETURN_IF_ERROR(runDirection(ctx, *wts, d, seq, batch, lens, h0.empty() ? nullptr : h0.data() + d * batch * H,
                                    c0.empty() ? nullptr : c0.data() + d * batch * H, outs[0], outs[1], outs[2]));
  }
  if (wide) {
    for (size_t i = 0; i < numStateOutputs; ++i) {
      if (outs[i] != nullptr) ctx.setOutput(i, fromFloat32(wideOut[i], dtype));
    }
  }
  return Status::ok();
}

/// c = f . c + i . g (c holds C_{t-1} on entry, C_t on exit).
WH_SIMD_CLONES void lstmCell(float* c, const float* i, const float* f, const float* g, int64_t n) {
  for (int64_t k = 0; k < n; ++k) c[k] = f[k] * c[k] + i[k] * g[k];
}
/// h = o . a (a holds h(C_t)).
WH_SIMD_CLONES void multiply(float* h, const float* o, const float* a, int64_t n) {
  for (int64_t k = 0; k < n; ++k) h[k] = o[k] * a[k];
}
/// f = 1 - i.
WH_SIMD_CLONES void oneMinus(float* f, const float* i, int64_t n) {
  for (int64_t k = 0; k < n; ++k) f[k] = 1.f - i[k];
}
/// h = (1 - z) . g + z . h.
WH_SIMD_CLONES void gruUpdate(float* h, const float* z, const float* g, int64_t n) {
  for (int64_t k = 0; k < n; ++k) h[k] = (1.f - z[k]) * g[k] + z[k] * h[k];
}
/// g = g0 + r . (g + rb): GRU with linear_before_reset, g holding H_{t-1} Rh^T on entry.
WH_SIMD_CLONES void gruLinearBeforeReset(float* g, const float* x, const float* r, const float* rb, int64_t n) {
  for (int64_t k = 0; k < n; ++k) g[k] = x[k] + r[k] * (g[k] + rb[k]);
}

Status RecurrentKernel::runDirection(KernelContext& ctx, const Weights& w, int d, int64_t seq, int64_t batch,
                                     const std::vector<int64_t>& lens, const float* h0, const float* c0, float* y,
                                     float* yh, float* yc) {
  const std::string who = ctx.describe();
  const int64_t H = a_.hidden, gh = a_.gates * H, ld = a_.dirs * gh;
  const float* rt = w.quantized ? nullptr : w.rt.data() + d * gh * H;  // [H, G*H]
  const float* bias = w.bias.data() + d * gh;
  const float* rbh = a_.linearBeforeReset ? w.recurBias.data() + d * H : nullptr;
  const float* peep = w.peep.empty() ? nullptr : w.peep.data() + d * 3 * H;
  const Activation* act = a_.acts.data() + d * a_.actsPerDir;
  const bool reverse = a_.reverse || d == 1;
  const bool clip = a_.clip != std::numeric_limits<float>::infinity();
  const bool lstm = a_.cell == Cell::kLstm, gru = a_.cell == Cell::kGru;
  const bool gruTwoGemms = gru && !a_.linearBeforeReset;

  state_.assign(static_cast<size_t>(batch * H), 0.f);
  if (h0 != nullptr) std::copy_n(h0, batch * H, state_.data());
  if (lstm) {
    cell_.assign(static_cast<size_t>(batch * H), 0.f);
    if (c0 != nullptr) std::copy_n(c0, batch * H, cell_.data());
  }
  gates_.resize(static_cast<size_t>(batch * gh));
  tmp_.resize(static_cast<size_t>(batch * H));
  const int64_t maxLen = batch == 0 ? 0 : *std::max_element(lens.begin(), lens.end());
  const bool parallel = batch > 1 && batch * gh >= 2048 && ctx.threads() > 1;

  auto xRow = [&](int64_t b, int64_t t) {
    return xproj_.data() + (a_.layout == 0 ? t * batch + b : b * seq + t) * ld + d * gh;
  };
  auto timeOf = [&](int64_t b, int64_t s) { return reverse ? lens[static_cast<size_t>(b)] - 1 - s : s; };
  auto writeY = [&](int64_t b, int64_t t) {
    if (y == nullptr) return;
    float* dst = a_.layout == 0 ? y + ((t * a_.dirs + d) * batch + b) * H : y + ((b * seq + t) * a_.dirs + d) * H;
    std::copy_n(state_.data() + b * H, H, dst);
  };

  for (int64_t s = 0; s < maxLen; ++s) {
    // H_{t-1} R^T for the whole batch (GRU without linear_before_reset: z and r only).
    if (w.quantized) {  // LSTM only
      WH_RETURN_IF_ERROR(quantizedGemm(batch, gh, H, state_.data(), H, w.rq.data() + d * H * gh, gh,
                                       w.rZero.data() + d * gh, w.rScale.data() + d * gh, gates_.data(), gh,
                                       quantizedA_, sums_, who, w.rPacked.empty() ? nullptr : &w.rPacked[static_cast<size_t>(d)]));
    } else if (!w.rtPacked.empty() && batch <= 16) {
      floatGemmPacked(batch, state_.data(), H, w.rtPacked[static_cast<size_t>(d)], gates_.data(), gh);
    } else {
      WH_RETURN_IF_ERROR(gemm(batch, gruTwoGemms ? 2 * H : gh, H, state_.data(), H, rt, gh, gates_.data(), gh, who));
    }
    if (gruTwoGemms) {
#pragma omp parallel for if (parallel) num_threads(ctx.threads())
      for (int64_t b = 0; b < batch; ++b) {
        float* g = gates_.data() + b * gh;
        float* rh = tmp_.data() + b * H;
        if (s >= lens[static_cast<size_t>(b)]) {
          std::fill_n(rh, H, 0.f);
          continue;
        }
        add3(g, xRow(b, timeOf(b, s)), bias, 2 * H);
        if (clip) clipInPlace(g, 2 * H, a_.clip);
        applyActivation(act[0], g, 2 * H);
        multiply(rh, g + H, state_.data() + b * H, H);
      }
      // (r . H_{t-1}) Rh^T into the h block of the gates.
      WH_RETURN_IF_ERROR(gemm(batch, H, H, tmp_.data(), H, rt + 2 * H, gh, gates_.data() + 2 * H, gh, who));
    }
#pragma omp parallel for if (parallel) num_threads(ctx.threads())
    for (int64_t b = 0; b < batch; ++b) {
      if (s >= lens[static_cast<size_t>(b)]) continue;
      const int64_t t = timeOf(b, s);
      const float* x = xRow(b, t);
      float* g = gates_.data() + b * gh;
      float* h = state_.data() + b * H;
      if (a_.cell == Cell::kRnn) {
        add3(g, x, bias, H);
        if (clip) clipInPlace(g, H, a_.clip);
        applyActivation(act[0], g, H);
        std::copy_n(g, H, h);
      } else if (gru) {
        float* z = g;
        float* rg = g + H;
        float* hh = g + 2 * H;
        if (gruTwoGemms) {
          add3(hh, x + 2 * H, bias + 2 * H, H);
        } else {
          add3(g, x, bias, 2 * H);
          if (clip) clipInPlace(g, 2 * H, a_.clip);
          applyActivation(act[0], g, 2 * H);
          float* xh = tmp_.data() + b * H;
          for (int64_t k = 0; k < H; ++k) xh[k] = x[2 * H + k] + bias[2 * H + k];
          gruLinearBeforeReset(hh, xh, rg, rbh, H);
        }
        if (clip) clipInPlace(hh, H, a_.clip);
        applyActivation(act[1], hh, H);
        gruUpdate(h, z, hh, H);
      } else {
        float* gi = g;
        float* go = g + H;
        float* gf = g + 2 * H;
        float* gc = g + 3 * H;
        float* c = cell_.data() + b * H;
        add3(g, x, bias, gh);
        if (peep != nullptr) {
          addProduct(gi, peep, c, H);
          if (!a_.inputForget) addProduct(gf, peep + 2 * H, c, H);
        }
        if (clip) {
          clipInPlace(gi, H, a_.clip);
          clipInPlace(gf, 2 * H, a_.clip);  // f and c
        }
        applyActivation(act[0], gi, H);
        if (a_.inputForget) {
          oneMinus(gf, gi, H);
        } else {
          applyActivation(act[0], gf, H);
        }
        applyActivation(act[1], gc, H);
        lstmCell(c, gi, gf, gc, H);
        if (peep != nullptr) addProduct(go, peep + H, c, H);
        if (clip) clipInPlace(go, H, a_.clip);
        applyActivation(act[0], go, H);
        float* hc = tmp_.data() + b * H;
        std::copy_n(c, H, hc);
        applyActivation(act[2], hc, H);
        multiply(h, go, hc, H);
      }
      writeY(b, t);
    }
  }
  // Final states; zero for an empty sequence.
  for (int64_t b = 0; b < batch; ++b) {
    const bool empty = lens[static_cast<size_t>(b)] == 0;
    const int64_t at = a_.layout == 0 ? (d * batch + b) * H : (b * a_.dirs + d) * H;
    if (yh != nullptr) {
      if (empty) {
        std::fill_n(yh + at, H, 0.f);
      } else {
        std::copy_n(state_.data() + b * H, H, yh + at);
      }
    }
    if (yc != nullptr) {
      if (empty) {
        std::fill_n(yc + at, H, 0.f);
      } else {
        std::copy_n(cell_.data() + b * H, H, yc + at);
      }
    }
  }
  return Status::ok();
}

Expected<std::unique_ptr<Kernel>> createRecurrent(const KernelCreateInfo& info, Cell cell, bool quantized = false) {
  WH_ASSIGN_OR_RETURN(Attrs attrs, parseAttrs(info, cell, quantized));
  auto kernel = std::make_unique<RecurrentKernel>(std::move(attrs));
  WH_RETURN_IF_ERROR(kernel->prepare(info));
  return std::unique_ptr<Kernel>(std::move(kernel));
}

}  // namespace

void registerRecurrentKernels(KernelRegistry& registry) {
  registry.add("", "RNN", 7, [](const KernelCreateInfo& info) { return createRecurrent(info, Cell::kRnn); });
  registry.add("", "GRU", 7, [](const KernelCreateInfo& info) { return createRecurrent(info, Cell::kGru); });
  registry.add("", "LSTM", 7, [](const KernelCreateInfo& info) { return createRecurrent(info, Cell::kLstm); });
  registry.add("com.microsoft", "DynamicQuantizeLSTM", 1,
               [](const KernelCreateInfo& info) { return createRecurrent(info, Cell::kLstm, /*quantized=*/true); });
}

}  // namespace whittle::runtime::cpu
