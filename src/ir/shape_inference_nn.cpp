// Shape rules of the compute ops: Conv and ConvTranspose (with auto_pad), pooling, MatMul and
// Gemm broadcasting, and their integer and QLinear forms (ConvInteger, QLinearConv,
// MatMulInteger, QLinearMatMul, com.microsoft QGemm and MatMulNBits, QLinearAveragePool,
// QLinearGlobalAveragePool, FusedConv); Einsum; LSTM, GRU and RNN.
#include <algorithm>
#include <cctype>
#include <map>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

constexpr std::string_view kMicrosoft = "com.microsoft";

using Ints = std::vector<int64_t>;

bool sane(std::initializer_list<const Ints*> lists) {
  for (const Ints* l : lists) {
    for (int64_t v : *l) {
      if (v < -kMaxAttr || v > kMaxAttr) return false;
    }
  }
  return true;
}

/// The window attributes of a Conv or pooling node over `spatial` axes; kernel dims that are
/// not known are -1.
struct Window {
  Ints kernel, strides, dilations, pads;
  std::string autoPad;
  bool ceilMode = false;

  static std::optional<Window> read(const Node& n, size_t spatial, Ints kernel) {
    Window w;
    w.kernel = n.attrInts("kernel_shape", std::move(kernel));
    w.strides = n.attrInts("strides", Ints(spatial, 1));
    w.dilations = n.attrInts("dilations", Ints(spatial, 1));
    w.pads = n.attrInts("pads", Ints(2 * spatial, 0));
    w.autoPad = n.attrString("auto_pad", "NOTSET");
    w.ceilMode = n.attrInt("ceil_mode", 0) != 0;
    if (w.kernel.size() != spatial || w.strides.size() != spatial || w.dilations.size() != spatial ||
        w.pads.size() != 2 * spatial || !sane({&w.kernel, &w.strides, &w.dilations, &w.pads})) {
      return std::nullopt;
    }
    return w;
  }

  SymInt output(const SymInt& in, size_t i) const {
    if (kernel[i] < 0) return {};
    return windowOutput(in, kernel[i], strides[i], dilations[i], pads[i], pads[i + kernel.size()], autoPad, ceilMode);
  }
};

/// The kernel dims from the weight's shape (-1 where not known).
Ints kernelFromWeight(const SymShape* w, size_t spatial) {
  Ints k(spatial, -1);
  if (w == nullptr || w->size() != spatial + 2) return k;
  for (size_t i = 0; i < spatial; ++i) {
    if ((*w)[2 + i].isConst()) k[i] = (*w)[2 + i].value();
  }
  return k;
}

/// Conv-like ops: X [N, C, D1...], W [M, C/group, k1...] -> [N, M, out1...].
void convLike(NodeContext& c, size_t xIndex, size_t wIndex, DataType dtype) {
  const SymShape* x = c.shape(xIndex);
  const SymShape* w = c.shape(wIndex);
  size_t rank = x ? x->size() : w ? w->size() : 0;
  if (rank < 3 || (x && w && w->size() != x->size())) {
    c.set(0, dtype, std::nullopt);
    return;
  }
  size_t spatial = rank - 2;
  SymShape y(rank);
  if (x) y[0] = (*x)[0];
  if (w) y[1] = (*w)[0];
  if (auto win = Window::read(c.node(), spatial, kernelFromWeight(w, spatial)); win && x) {
    for (size_t i = 0; i < spatial; ++i) y[2 + i] = win->output((*x)[2 + i], i);
  }
  c.set(0, dtype, std::move(y));
}

void conv(NodeContext& c) {
  convLike(c, 0, 1, c.dtype(0));
}

void convInteger(NodeContext& c) {
  convLike(c, 0, 1, DataType::kInt32);
}

/// QLinearConv: x (0), w (3), y_zero_point (7) gives the type.
void qlinearConv(NodeContext& c) {
  convLike(c, 0, 3, c.dtype(7) != DataType::kUndefined ? c.dtype(7) : c.dtype(0));
}

/// ConvTranspose: X [N, C, D...], W [C, M/group, k...] -> [N, M, out...] with
/// out = stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pads, or output_shape.
void convTranspose(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* w = c.shape(1);
  size_t rank = x ? x->size() : w ? w->size() : 0;
  if (rank < 3 || (x && w && w->size() != x->size())) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  size_t spatial = rank - 2;
  const Node& n = c.node();
  SymShape y(rank);
  if (x) y[0] = (*x)[0];
  int64_t group = n.attrInt("group", 1);
  if (w && group > 0 && group <= kMaxAttr) y[1] = (*w)[1] * SymInt::of(group);
  Ints outputShape = n.attrInts("output_shape");
  auto win = Window::read(n, spatial, kernelFromWeight(w, spatial));
  Ints outputPadding = n.attrInts("output_padding", Ints(spatial, 0));
  if (outputShape.size() == spatial || outputShape.size() == rank) {
    for (size_t i = 0; i < spatial; ++i) y[2 + i] = SymInt::of(outputShape[outputShape.size() - spatial + i]);
  } else if (win && x && outputPadding.size() == spatial && sane({&outputPadding})) {
    for (size_t i = 0; i < spatial; ++i) {
      const SymInt& in = (*x)[2 + i];
      int64_t k = win->kernel[i], s = win->strides[i], d = win->dilations[i];
      if (k <= 0 || s <= 0 || d <= 0) continue;
      if (win->autoPad == "SAME_UPPER" || win->autoPad == "SAME_LOWER") {
        y[2 + i] = in * SymInt::of(s);
        continue;
      }
      int64_t padTotal = win->autoPad == "VALID" ? 0 : win->pads[i] + win->pads[i + spatial];
      int64_t extra = outputPadding[i] + (k - 1) * d + 1 - padTotal;  // out = s * (in - 1) + extra
      if (in.isConst()) {
        if (in.value() <= kMaxDim) y[2 + i] = SymInt::of(s * (in.value() - 1) + extra);
      } else if (s == 1 && extra == 1) {
        y[2 + i] = in;
      }
    }
  }
  c.set(0, c.dtype(0), std::move(y));
}

/// MaxPool, AveragePool, LpPool: [N, C, out...]; MaxPool's Indices are int64 of that shape.
/// com.microsoft QLinearAveragePool with channels_last works on [N, D..., C].
void pool(NodeContext& c) {
  const SymShape* x = c.shape(0);
  DataType dtype = c.dtype(0);
  if (x == nullptr || x->size() < 3) {
    c.set(0, dtype, std::nullopt);
    return;
  }
  bool channelsLast = c.op() == "QLinearAveragePool" && c.node().attrInt("channels_last", 0) != 0;
  if (c.op() == "QLinearAveragePool" && c.has(4)) dtype = c.dtype(4);
  size_t spatial = x->size() - 2;
  size_t first = channelsLast ? 1 : 2;
  SymShape y = *x;
  auto win = Window::read(c.node(), spatial, Ints(spatial, -1));
  for (size_t i = 0; i < spatial; ++i) y[first + i] = win ? win->output((*x)[first + i], i) : SymInt();
  c.set(0, dtype, y);
  if (c.numOutputs() > 1) c.set(1, DataType::kInt64, y);
}

/// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: [N, C, 1...]; com.microsoft
/// QLinearGlobalAveragePool with channels_last: [N, 1..., C].
void globalPool(NodeContext& c) {
  const SymShape* x = c.shape(0);
  DataType dtype = c.op() == "QLinearGlobalAveragePool" && c.has(4) ? c.dtype(4) : c.dtype(0);
  if (x == nullptr || x->size() < 3) {
    c.set(0, dtype, std::nullopt);
    return;
  }
  bool channelsLast = c.op() == "QLinearGlobalAveragePool" && c.node().attrInt("channels_last", 0) != 0;
  SymShape y = *x;
  for (size_t i = channelsLast ? 1 : 2; i < y.size() - (channelsLast ? 1 : 0); ++i) y[i] = SymInt::of(1);
  c.set(0, dtype, std::move(y));
}

/// MaxUnpool: output_shape (input 2) when given, else (in - 1) * stride + kernel - pads.
void maxUnpool(NodeContext& c) {
  const SymShape* x = c.shape(0);
  c.set(0, c.dtype(0), std::nullopt);
  if (c.has(2)) {
    if (const std::vector<SymInt>* v = c.values(2)) {
      c.set(0, c.dtype(0), SymShape(v->begin(), v->end()));
    } else if (const SymShape* s = c.shape(2); s && s->size() == 1 && (*s)[0].isConst()) {
      c.set(0, c.dtype(0), SymShape(static_cast<size_t>((*s)[0].value())));
    }
    return;
  }
  if (x == nullptr || x->size() < 3) return;
  size_t spatial = x->size() - 2;
  SymShape y = *x;
  auto win = Window::read(c.node(), spatial, Ints(spatial, -1));
  for (size_t i = 0; i < spatial; ++i) {
    const SymInt& in = (*x)[2 + i];
    y[2 + i] = SymInt();
    if (win && in.isConst() && in.value() <= kMaxDim && win->kernel[i] > 0) {
      y[2 + i] =
          SymInt::of((in.value() - 1) * win->strides[i] + win->kernel[i] - win->pads[i] - win->pads[i + spatial]);
    }
  }
  c.set(0, c.dtype(0), std::move(y));
}

// ---------------------------------------------------------------- MatMul, Gemm

/// numpy matmul: 1-D operands are promoted and the added dim removed; batch dims broadcast.
std::optional<SymShape> matMulShape(const SymShape* a0, const SymShape* b0) {
  if (a0 == nullptr || b0 == nullptr || a0->empty() || b0->empty()) return std::nullopt;
  SymShape a = a0->size() == 1 ? SymShape{SymInt::of(1), (*a0)[0]} : *a0;
  SymShape b = b0->size() == 1 ? SymShape{(*b0)[0], SymInt::of(1)} : *b0;
  SymShape aBatch(a.begin(), a.end() - 2), bBatch(b.begin(), b.end() - 2);
  auto y = broadcast({&aBatch, &bBatch});
  if (!y) return std::nullopt;
  if (a0->size() > 1) y->push_back(a[a.size() - 2]);
  if (b0->size() > 1) y->push_back(b.back());
  return y;
}

void matMul(NodeContext& c) {
  c.set(0, c.dtype(0), matMulShape(c.shape(0), c.shape(1)));
}

void matMulInteger(NodeContext& c) {
  c.set(0, DataType::kInt32, matMulShape(c.shape(0), c.shape(1)));
}

/// QLinearMatMul: a (0), b (3), in y_zero_point's (7) type.
void qlinearMatMul(NodeContext& c) {
  c.set(0, c.dtype(7) != DataType::kUndefined ? c.dtype(7) : c.dtype(0), matMulShape(c.shape(0), c.shape(3)));
}

/// Gemm-like: A (2-D, maybe transposed) times B -> [M, N].
std::optional<SymShape> gemmShape(const NodeContext& c, size_t aIndex, size_t bIndex) {
  const SymShape* a = c.shape(aIndex);
  const SymShape* b = c.shape(bIndex);
  if ((a && a->size() != 2) || (b && b->size() != 2)) return std::nullopt;
  bool transA = c.node().attrInt("transA", 0) != 0, transB = c.node().attrInt("transB", 0) != 0;
  SymShape y(2);
  if (a) y[0] = (*a)[transA ? 1 : 0];
  if (b) y[1] = (*b)[transB ? 0 : 1];
  return y;
}

void gemm(NodeContext& c) {
  c.set(0, c.dtype(0), gemmShape(c, 0, 1));
}

/// com.microsoft QGemm: A (0), B (3); the output is float without y_scale (7), else in
/// y_zero_point's (8) type, uint8 by default.
void qgemm(NodeContext& c) {
  DataType dtype = !c.has(7) ? DataType::kFloat : c.has(8) ? c.dtype(8) : DataType::kUint8;
  c.set(0, dtype, gemmShape(c, 0, 3));
}

/// com.microsoft MatMulNBits: A [..., K] -> [..., N] (attribute N), in A's type.
void matMulNBits(NodeContext& c) {
  std::optional<SymShape> y;
  if (const SymShape* a = c.shape(0); a != nullptr && !a->empty() && c.node().hasAttribute("N")) {
    y = *a;
    y->back() = SymInt::of(c.node().attrInt("N", 0));
  }
  c.set(0, c.dtype(0), y);
}

// ---------------------------------------------------------------- Einsum, recurrent ops

/// One operand or result of an Einsum equation: its letters, and where "..." stands.
struct EinsumTerm {
  std::string letters;
  std::optional<size_t> ellipsis;  ///< The position of "..." among the letters.

  static std::optional<EinsumTerm> parse(std::string_view s) {
    EinsumTerm t;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.substr(i, 3) == "...") {
        if (t.ellipsis) return std::nullopt;
        t.ellipsis = t.letters.size();
        i += 2;
      } else if (std::isalpha(static_cast<unsigned char>(s[i])) != 0) {
        t.letters += s[i];
      } else {
        return std::nullopt;
      }
    }
    return t;
  }
};

/// Einsum: each letter's dim from the operands; "..." dims broadcast; without "->" the output
/// is "..." then the letters used once, in alphabetical order.
void einsum(NodeContext& c) {
  c.set(0, c.dtype(0), std::nullopt);
  std::string eq;
  for (char ch : c.node().attrString("equation", "")) {
    if (ch != ' ') eq += ch;
  }
  size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  std::vector<EinsumTerm> terms;
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    auto t = EinsumTerm::parse(std::string_view(lhs).substr(start, comma == std::string::npos ? comma : comma - start));
    if (!t) return;
    terms.push_back(*t);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != c.numInputs()) return;
  std::map<char, SymInt> letterDims;
  std::map<char, int> uses;
  std::vector<SymShape> ellipsisDims;
  for (size_t i = 0; i < terms.size(); ++i) {
    const SymShape* x = c.shape(i);
    const EinsumTerm& t = terms[i];
    if (x == nullptr || x->size() < t.letters.size() || (!t.ellipsis && x->size() != t.letters.size())) return;
    size_t extra = x->size() - t.letters.size();
    for (size_t k = 0; k < t.letters.size(); ++k) {
      size_t at = t.ellipsis && k >= *t.ellipsis ? k + extra : k;
      SymInt& d = letterDims[t.letters[k]];
      if (d.isUnknown() || (!d.isConst() && (*x)[at].isConst())) d = (*x)[at];
      ++uses[t.letters[k]];
    }
    if (t.ellipsis) ellipsisDims.emplace_back(x->begin() + *t.ellipsis, x->begin() + *t.ellipsis + extra);
  }
  std::vector<const SymShape*> parts;
  for (const SymShape& e : ellipsisDims) parts.push_back(&e);
  auto batch = broadcast(parts);
  if (!batch) return;
  EinsumTerm out;
  if (arrow != std::string::npos) {
    auto t = EinsumTerm::parse(std::string_view(eq).substr(arrow + 2));
    if (!t) return;
    out = *t;
  } else {
    out.ellipsis = 0;
    for (const auto& [letter, n] : uses) {
      if (n == 1) out.letters += letter;
    }
  }
  SymShape y;
  for (size_t k = 0; k <= out.letters.size(); ++k) {
    if (out.ellipsis == k) y.insert(y.end(), batch->begin(), batch->end());
    if (k == out.letters.size()) break;
    auto it = letterDims.find(out.letters[k]);
    if (it == letterDims.end()) return;
    y.push_back(it->second);
  }
  c.set(0, c.dtype(0), std::move(y));
}

/// LSTM, GRU, RNN: Y [seq, directions, batch, hidden] and Y_h (Y_c) [directions, batch, hidden];
/// with layout 1 (opset 14) the batch comes first: [batch, seq, directions, hidden], [batch,
/// directions, hidden].
void recurrent(NodeContext& c) {
  const Node& n = c.node();
  const SymShape* x = c.shape(0);
  bool batchFirst = n.attrInt("layout", 0) != 0;
  SymInt seq, batch;
  if (x != nullptr && x->size() == 3) {
    seq = (*x)[batchFirst ? 1 : 0];
    batch = (*x)[batchFirst ? 0 : 1];
  }
  SymInt dirs = SymInt::of(n.attrString("direction", "forward") == "bidirectional" ? 2 : 1);
  SymInt hidden = n.hasAttribute("hidden_size") ? SymInt::of(n.attrInt("hidden_size", 0)) : SymInt();
  c.set(0, c.dtype(0), batchFirst ? SymShape{batch, seq, dirs, hidden} : SymShape{seq, dirs, batch, hidden});
  for (size_t i = 1; i < c.numOutputs(); ++i) {
    c.set(i, c.dtype(0), batchFirst ? SymShape{batch, dirs, hidden} : SymShape{dirs, batch, hidden});
  }
}

}  // namespace

void addNnRules(std::vector<RuleEntry>& rules) {
  rules.push_back({"", "Conv", conv});
  rules.push_back({kMicrosoft, "FusedConv", conv});
  rules.push_back({"", "ConvInteger", convInteger});
  rules.push_back({"", "QLinearConv", qlinearConv});
  rules.push_back({"", "ConvTranspose", convTranspose});
  for (std::string_view op : {"MaxPool", "AveragePool", "LpPool"}) rules.push_back({"", op, pool});
  rules.push_back({kMicrosoft, "QLinearAveragePool", pool});
  for (std::string_view op : {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}) {
    rules.push_back({"", op, globalPool});
  }
  rules.push_back({kMicrosoft, "QLinearGlobalAveragePool", globalPool});
  rules.push_back({"", "MaxUnpool", maxUnpool});
  rules.push_back({"", "MatMul", matMul});
  rules.push_back({"", "MatMulInteger", matMulInteger});
  rules.push_back({"", "QLinearMatMul", qlinearMatMul});
  rules.push_back({"", "Gemm", gemm});
  rules.push_back({kMicrosoft, "QGemm", qgemm});
  rules.push_back({kMicrosoft, "MatMulNBits", matMulNBits});
  rules.push_back({"", "Einsum", einsum});
  for (std::string_view op : {"LSTM", "GRU", "RNN"}) rules.push_back({"", op, recurrent});
  rules.push_back({kMicrosoft, "DynamicQuantizeLSTM", recurrent});  // the LSTM with int8 W and R
}

}  // namespace whittle::ir::shape
