// Shape rules of the signal ops (DFT, STFT, the window generators, MelWeightMatrix), the
// random generators (RandomUniform/Normal, their *Like forms, Bernoulli) and the
// ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum).
#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

/// The one constant value of a scalar integer input, if known.
std::optional<int64_t> scalarInput(const NodeContext& c, size_t i) {
  auto v = c.ints(i);
  if (!v || v->size() != 1) return std::nullopt;
  return (*v)[0];
}

DataType attrDtype(const Node& n, const char* name, DataType fallback) {
  if (!n.hasAttribute(name)) return fallback;
  auto t = static_cast<int32_t>(n.attrInt(name, 0));
  return isKnownDataType(t) ? static_cast<DataType>(t) : DataType::kUndefined;
}

/// x's shape with the DFT axis resized and the last dim 2 (1 for an inverse one-sided DFT).
void dft(NodeContext& c) {
  const Node& n = c.node();
  const SymShape* x = c.shape(0);
  DataType dtype = c.dtype(0);
  if (x == nullptr || x->size() < 2) {
    c.set(0, dtype, std::nullopt);
    return;
  }
  auto rank = static_cast<int64_t>(x->size());
  std::optional<int64_t> axisValue = n.attrInt("axis", 1);
  if (c.opset() >= 20) axisValue = c.has(2) ? scalarInput(c, 2) : std::optional<int64_t>(-2);
  SymShape y = *x;
  bool inverse = n.attrInt("inverse", 0) != 0, onesided = n.attrInt("onesided", 0) != 0;
  y.back() = SymInt::of(inverse && onesided ? 1 : 2);
  auto axis = axisValue ? normalizeAxis(*axisValue, rank) : std::nullopt;
  if (!axis || *axis == rank - 1) {
    for (size_t i = 0; i + 1 < y.size(); ++i) y[i] = SymInt();
    c.set(0, dtype, std::move(y));
    return;
  }
  auto a = static_cast<size_t>(*axis);
  std::optional<int64_t> length;
  if (c.has(1)) {
    length = scalarInput(c, 1);
  } else if ((*x)[a].isConst()) {
    length = inverse && onesided ? 2 * ((*x)[a].value() - 1) : (*x)[a].value();
  }
  if (!length) {
    y[a] = c.has(1) || onesided ? SymInt() : (*x)[a];
  } else {
    y[a] = SymInt::of(inverse && onesided ? *length : (onesided ? *length / 2 + 1 : *length));
  }
  c.set(0, dtype, std::move(y));
}

/// [batch, frames, bins, 2].
void stft(NodeContext& c) {
  const SymShape* x = c.shape(0);
  SymShape y(4);
  y[3] = SymInt::of(2);
  // ONNX Runtime also takes a real signal as [batch, length] (onnx-asr's preprocessors).
  if (x != nullptr && (x->size() == 3 || x->size() == 2)) {
    y[0] = (*x)[0];
    std::optional<int64_t> frameLength;
    if (c.has(3)) {
      frameLength = scalarInput(c, 3);
    } else if (const SymShape* w = c.shape(2); w != nullptr && w->size() == 1 && (*w)[0].isConst()) {
      frameLength = (*w)[0].value();
    } else if (!c.has(2) && (*x)[1].isConst()) {
      frameLength = (*x)[1].value();
    }
    auto step = scalarInput(c, 1);
    if (frameLength && *frameLength > 0) {
      y[2] = SymInt::of(c.node().attrInt("onesided", 1) != 0 ? *frameLength / 2 + 1 : *frameLength);
      if (step && *step > 0 && (*x)[1].isConst() && (*x)[1].value() >= *frameLength) {
        y[1] = SymInt::of(1 + ((*x)[1].value() - *frameLength) / *step);
      }
    }
  }
  c.set(0, c.dtype(0), std::move(y));
}

/// [size] of output_datatype.
void window(NodeContext& c) {
  auto size = scalarInput(c, 0);
  c.set(0, attrDtype(c.node(), "output_datatype", DataType::kFloat), SymShape{size ? SymInt::of(*size) : SymInt()});
}

/// [dft_length / 2 + 1, num_mel_bins] of output_datatype.
void melWeightMatrix(NodeContext& c) {
  auto bins = scalarInput(c, 0), length = scalarInput(c, 1);
  c.set(0, attrDtype(c.node(), "output_datatype", DataType::kFloat),
        SymShape{length ? SymInt::of(*length / 2 + 1) : SymInt(), bins ? SymInt::of(*bins) : SymInt()});
}

/// RandomUniform, RandomNormal: `shape` and `dtype` (float by default) from attributes.
void randomFromAttributes(NodeContext& c) {
  const Node& n = c.node();
  std::optional<SymShape> shape;
  if (n.hasAttribute("shape")) {
    SymShape s;
    for (int64_t d : n.attrInts("shape")) s.push_back(d >= 0 && d <= kMaxDim ? SymInt::of(d) : SymInt());
    shape = std::move(s);
  }
  c.set(0, attrDtype(n, "dtype", DataType::kFloat), std::move(shape));
}

/// RandomUniformLike, RandomNormalLike, Bernoulli: the input's shape; `dtype` or the input's.
void randomLike(NodeContext& c) {
  c.set(0, attrDtype(c.node(), "dtype", c.dtype(0)), c.shape(0) ? std::optional(*c.shape(0)) : std::nullopt);
}

/// Adagrad, Adam, Momentum: inputs R, T, then X, G and the states, n each; outputs the new X
/// and the new states, each with the type and shape of the input it replaces (G has none).
void optimizer(NodeContext& c) {
  size_t groups = c.op() == "Adam" ? 4 : 3;
  if (c.numInputs() < 2 + groups || (c.numInputs() - 2) % groups != 0) return;
  size_t n = (c.numInputs() - 2) / groups;
  for (size_t k = 0; k < c.numOutputs(); ++k) {
    size_t from = k < n ? 2 + k : 2 + n + k;
    if (from >= c.numInputs()) return;
    c.set(k, c.dtype(from), c.shape(from) ? std::optional(*c.shape(from)) : std::nullopt);
  }
}

}  // namespace

void addSignalRules(std::vector<RuleEntry>& rules) {
  rules.push_back({"", "DFT", dft});
  rules.push_back({"", "STFT", stft});
  for (std::string_view op : {"HannWindow", "HammingWindow", "BlackmanWindow"}) rules.push_back({"", op, window});
  rules.push_back({"", "MelWeightMatrix", melWeightMatrix});
  rules.push_back({"", "RandomUniform", randomFromAttributes});
  rules.push_back({"", "RandomNormal", randomFromAttributes});
  for (std::string_view op : {"RandomUniformLike", "RandomNormalLike", "Bernoulli"})
    rules.push_back({"", op, randomLike});
  for (std::string_view op : {"Adagrad", "Adam", "Momentum"})
    rules.push_back({"ai.onnx.preview.training", op, optimizer});
}

}  // namespace whittle::ir::shape
