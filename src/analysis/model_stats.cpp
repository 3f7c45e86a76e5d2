#include "whittle/analysis/model_stats.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "whittle/common/file_util.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::analysis {
namespace {

using ir::DataType;
using Dims = std::vector<int64_t>;

bool isDefaultDomain(const ir::Node& n) {
  return n.domain().empty() || n.domain() == "ai.onnx";
}

constexpr int64_t kOverflow = std::numeric_limits<int64_t>::max();
// Larger dims and attribute values are not believed (a hostile model may declare anything);
// within these bounds the shape arithmetic below cannot overflow.
constexpr int64_t kMaxDim = int64_t{1} << 40;
constexpr int64_t kMaxAttr = int64_t{1} << 20;

bool saneDims(const Dims& dims) {
  return std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d >= 0 && d <= kMaxDim; });
}

bool saneAttrs(std::initializer_list<const Dims*> lists) {
  for (const Dims* l : lists) {
    for (int64_t v : *l) {
      if (v < -kMaxAttr || v > kMaxAttr) return false;
    }
  }
  return true;
}

/// a * b for non-negative sizes, saturated at kOverflow (a hostile model may declare huge dims).
int64_t mulSaturated(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kOverflow : r;
}

/// The product of dims[from, to), saturated at kOverflow.
int64_t product(const Dims& dims, size_t from = 0, size_t to = std::numeric_limits<size_t>::max()) {
  auto first = dims.begin() + static_cast<std::ptrdiff_t>(std::min(from, dims.size()));
  auto last = dims.begin() + static_cast<std::ptrdiff_t>(std::min(to, dims.size()));
  return first < last ? std::accumulate(first, last, int64_t{1}, mulSaturated) : 1;
}

/// The product of sizes; kOverflow when it does not fit in int64.
int64_t product(std::initializer_list<int64_t> factors) {
  return product(Dims(factors));
}

/// The constant tensor behind a value: an initializer or the output of a Constant node.
const ir::Tensor* constantTensor(const ir::Value* v) {
  if (v == nullptr) return nullptr;
  if (v->constant() != nullptr) return v->constant();
  const ir::Node* p = v->producer();
  if (p == nullptr || p->opType() != "Constant" || !isDefaultDomain(*p)) return nullptr;
  const ir::Attribute* a = p->findAttribute("value");
  return a != nullptr && a->kind == ir::Attribute::Kind::kTensor ? &a->t : nullptr;
}

int64_t normalizeAxis(int64_t axis, int64_t rank) {
  return axis < 0 ? axis + rank : axis;
}

Dims broadcastDims(const Dims& a, const Dims& b) {
  Dims out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t x = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t y = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    out[i] = x == 1 ? y : x;
  }
  return out;
}

// Ops whose first output has the shape of their first input.
const std::unordered_set<std::string> kSameShapeOps = {"Relu",
                                                       "LeakyRelu",
                                                       "PRelu",
                                                       "Sigmoid",
                                                       "HardSigmoid",
                                                       "HardSwish",
                                                       "Tanh",
                                                       "Softmax",
                                                       "LogSoftmax",
                                                       "Clip",
                                                       "Identity",
                                                       "Dropout",
                                                       "BatchNormalization",
                                                       "InstanceNormalization",
                                                       "LayerNormalization",
                                                       "LRN",
                                                       "Exp",
                                                       "Log",
                                                       "Sqrt",
                                                       "Erf",
                                                       "Abs",
                                                       "Neg",
                                                       "Reciprocal",
                                                       "Floor",
                                                       "Ceil",
                                                       "Round",
                                                       "Sin",
                                                       "Cos",
                                                       "Elu",
                                                       "Selu",
                                                       "Softplus",
                                                       "Softsign",
                                                       "Gelu",
                                                       "Mish",
                                                       "Not",
                                                       "Sign",
                                                       "Cast",
                                                       "CastLike",
                                                       "QuantizeLinear",
                                                       "DequantizeLinear",
                                                       "DynamicQuantizeLinear",
                                                       "QLinearSigmoid",
                                                       "QLinearLeakyRelu",
                                                       "QLinearSoftmax",
                                                       "MeanVarianceNormalization",
                                                       "ThresholdedRelu",
                                                       "Celu",
                                                       "GroupNormalization"};
const std::unordered_set<std::string> kBroadcastOps = {
    "Add", "Sub",  "Mul",   "Div",  "Pow",     "Max",         "Min",
    "Sum", "Mean", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "And", "Or",   "Xor",   "Mod",  "Where",   "BitShift"};

// ---------------------------------------------------------------- shape propagation

/// Forward shape propagation at batch 1, with the values of small integer tensors (shape
/// arithmetic: Shape -> Gather -> Concat -> Reshape) carried along. It complements libonnx's
/// inference, which does not know com.microsoft ops, opsets newer than it was built for, or
/// the data behind computed shapes.
class ShapePropagator {
 public:
  ShapePropagator(int64_t opset, bool libonnxFirst) : opset_(opset), libonnxFirst_(libonnxFirst) {}

  /// `declared` holds fallback shapes (symbolic dims taken as 1) for values that neither
  /// libonnx nor the rules here determine; it counts the values that needed them.
  void run(const ir::Graph& graph, const std::unordered_map<const ir::Value*, Dims>& declared) {
    for (const ir::Value* v : graph.values()) {
      if (const ir::Tensor* t = constantTensor(v); t != nullptr && v->producer() == nullptr) seedConstant(v, *t);
      if (v->isGraphInput() && !v->isInitializer()) {
        if (auto dims = v->type().staticDims(); dims && saneDims(*dims)) shapes_[v] = *dims;
      }
    }
    for (const ir::Node* n : graph.nodes()) {
      std::vector<std::optional<Dims>> own(n->numOutputs());
      inferNode(*n, own);
      for (size_t i = 0; i < n->numOutputs(); ++i) {
        const ir::Value* out = n->output(i);
        if (out == nullptr) continue;
        std::optional<Dims> lib = out->type().staticDims();
        std::optional<Dims> chosen = libonnxFirst_ ? (lib ? lib : own[i]) : (own[i] ? own[i] : lib);
        if (!chosen) {
          if (auto it = declared.find(out); it != declared.end()) {
            chosen = it->second;
            ++declaredFallbacks_;
          }
        }
        if (chosen && saneDims(*chosen)) shapes_[out] = *chosen;
      }
    }
  }

  const Dims* shape(const ir::Value* v) const {
    auto it = shapes_.find(v);
    return it == shapes_.end() ? nullptr : &it->second;
  }
  int64_t declaredFallbacks() const { return declaredFallbacks_; }

 private:
  void seedConstant(const ir::Value* v, const ir::Tensor& t) {
    shapes_[v] = t.dims();
    if ((t.dtype() == DataType::kInt64 || t.dtype() == DataType::kInt32) && t.numel() <= 64) {
      if (t.byteSize() < ir::storageBytes(t.dtype(), t.numel())) return;
      Dims values(static_cast<size_t>(t.numel()));
      // Not through valueAsDouble: INT64_MAX (a common Slice end) does not survive a double.
      for (int64_t i = 0; i < t.numel(); ++i) {
        values[i] = t.dtype() == DataType::kInt64 ? t.data<int64_t>()[i] : t.data<int32_t>()[i];
      }
      ints_[v] = std::move(values);
    }
  }

  const Dims* in(const ir::Node& n, size_t i) const { return shape(n.input(i)); }
  const Dims* ints(const ir::Node& n, size_t i) const {
    auto it = ints_.find(n.input(i));
    return it == ints_.end() ? nullptr : &it->second;
  }
  void setInts(const ir::Node& n, Dims values) {
    if (n.output(0) != nullptr && values.size() <= 64) ints_[n.output(0)] = std::move(values);
  }
  /// Float values of a constant input (Resize/Upsample scales).
  std::optional<std::vector<double>> floats(const ir::Node& n, size_t i) const {
    const ir::Tensor* t = constantTensor(n.input(i));
    if (t == nullptr || t->numel() == 0 || t->byteSize() < ir::storageBytes(t->dtype(), t->numel()))
      return std::nullopt;
    if (t->dtype() != DataType::kFloat && t->dtype() != DataType::kDouble && t->dtype() != DataType::kFloat16) {
      return std::nullopt;
    }
    std::vector<double> out(static_cast<size_t>(t->numel()));
    for (int64_t k = 0; k < t->numel(); ++k) out[k] = t->valueAsDouble(k);
    return out;
  }
  /// An int list given as an attribute (older opsets) or as a constant input (newer ones).
  std::optional<Dims> attrOrInput(const ir::Node& n, std::string_view attr, size_t input) const {
    if (n.hasAttribute(attr)) return n.attrInts(attr);
    if (const Dims* v = ints(n, input)) return *v;
    return std::nullopt;
  }

  void inferNode(const ir::Node& n, std::vector<std::optional<Dims>>& out);
  std::optional<Dims> convLike(const ir::Node& n, size_t xIndex, size_t wIndex) const;
  std::optional<Dims> pool(const ir::Node& n) const;
  std::optional<Dims> convTranspose(const ir::Node& n) const;
  std::optional<Dims> matMul(const Dims& a, const Dims& b) const;
  std::optional<Dims> slice(const ir::Node& n, const Dims& x);

  int64_t opset_;
  bool libonnxFirst_;
  std::unordered_map<const ir::Value*, Dims> shapes_;
  std::unordered_map<const ir::Value*, Dims> ints_;
  int64_t declaredFallbacks_ = 0;
};

std::optional<Dims> ShapePropagator::convLike(const ir::Node& n, size_t xIndex, size_t wIndex) const {
  const Dims* x = in(n, xIndex);
  const Dims* w = in(n, wIndex);
  if (x == nullptr || w == nullptr || x->size() < 3 || w->size() != x->size()) return std::nullopt;
  size_t spatial = x->size() - 2;
  Dims kernel = n.attrInts("kernel_shape", Dims(w->begin() + 2, w->end()));
  Dims strides = n.attrInts("strides", Dims(spatial, 1));
  Dims dilations = n.attrInts("dilations", Dims(spatial, 1));
  Dims pads = n.attrInts("pads", Dims(2 * spatial, 0));
  if (kernel.size() != spatial || strides.size() != spatial || dilations.size() != spatial ||
      pads.size() != 2 * spatial || !saneAttrs({&kernel, &strides, &dilations, &pads})) {
    return std::nullopt;
  }
  std::string autoPad = n.attrString("auto_pad", "NOTSET");
  Dims y = {(*x)[0], (*w)[0]};
  for (size_t i = 0; i < spatial; ++i) {
    y.push_back(convOutputSize((*x)[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + spatial], autoPad));
  }
  return y;
}

std::optional<Dims> ShapePropagator::pool(const ir::Node& n) const {
  const Dims* x = in(n, 0);
  if (x == nullptr || x->size() < 3) return std::nullopt;
  size_t spatial = x->size() - 2;
  Dims kernel = n.attrInts("kernel_shape");
  Dims strides = n.attrInts("strides", Dims(spatial, 1));
  Dims dilations = n.attrInts("dilations", Dims(spatial, 1));
  Dims pads = n.attrInts("pads", Dims(2 * spatial, 0));
  if (kernel.size() != spatial || strides.size() != spatial || dilations.size() != spatial ||
      pads.size() != 2 * spatial || !saneAttrs({&kernel, &strides, &dilations, &pads})) {
    return std::nullopt;
  }
  std::string autoPad = n.attrString("auto_pad", "NOTSET");
  bool ceilMode = n.attrInt("ceil_mode", 0) != 0;
  Dims y = {(*x)[0], (*x)[1]};
  for (size_t i = 0; i < spatial; ++i) {
    y.push_back(convOutputSize((*x)[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + spatial], autoPad,
                               ceilMode));
  }
  return y;
}

std::optional<Dims> ShapePropagator::convTranspose(const ir::Node& n) const {
  const Dims* x = in(n, 0);
  const Dims* w = in(n, 1);
  if (x == nullptr || w == nullptr || x->size() < 3 || w->size() != x->size()) return std::nullopt;
  size_t spatial = x->size() - 2;
  Dims group = {n.attrInt("group", 1)};
  if (!saneAttrs({&group})) return std::nullopt;
  Dims y = {(*x)[0], (*w)[1] * group[0]};
  Dims outputShape = n.attrInts("output_shape");
  if (outputShape.size() == spatial) {
    y.insert(y.end(), outputShape.begin(), outputShape.end());
    return y;
  }
  Dims kernel = n.attrInts("kernel_shape", Dims(w->begin() + 2, w->end()));
  Dims strides = n.attrInts("strides", Dims(spatial, 1));
  Dims dilations = n.attrInts("dilations", Dims(spatial, 1));
  Dims pads = n.attrInts("pads", Dims(2 * spatial, 0));
  Dims outputPadding = n.attrInts("output_padding", Dims(spatial, 0));
  if (kernel.size() != spatial || strides.size() != spatial || dilations.size() != spatial ||
      pads.size() != 2 * spatial || outputPadding.size() != spatial ||
      !saneAttrs({&kernel, &strides, &dilations, &pads, &outputPadding})) {
    return std::nullopt;
  }
  std::string autoPad = n.attrString("auto_pad", "NOTSET");
  for (size_t i = 0; i < spatial; ++i) {
    int64_t in = (*x)[2 + i];
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      y.push_back(in * strides[i]);
    } else {
      int64_t padTotal = autoPad == "VALID" ? 0 : pads[i] + pads[i + spatial];
      y.push_back(strides[i] * (in - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1 - padTotal);
    }
  }
  return y;
}

std::optional<Dims> ShapePropagator::matMul(const Dims& a0, const Dims& b0) const {
  if (a0.empty() || b0.empty()) return std::nullopt;
  Dims a = a0.size() == 1 ? Dims{1, a0[0]} : a0;
  Dims b = b0.size() == 1 ? Dims{b0[0], 1} : b0;
  Dims batch = broadcastDims(Dims(a.begin(), a.end() - 2), Dims(b.begin(), b.end() - 2));
  Dims y = batch;
  if (a0.size() > 1) y.push_back(a[a.size() - 2]);
  if (b0.size() > 1) y.push_back(b.back());
  return y;
}

std::optional<Dims> ShapePropagator::slice(const ir::Node& n, const Dims& x) {
  std::optional<Dims> starts, ends, axes, steps;
  if (opset_ < 10 || n.hasAttribute("starts")) {
    starts = n.attrInts("starts");
    ends = n.attrInts("ends");
    if (n.hasAttribute("axes")) axes = n.attrInts("axes");
  } else {
    if (const Dims* v = ints(n, 1)) starts = *v;
    if (const Dims* v = ints(n, 2)) ends = *v;
    if (n.input(3) != nullptr) {
      if (const Dims* v = ints(n, 3))
        axes = *v;
      else
        return std::nullopt;
    }
    if (n.input(4) != nullptr) {
      if (const Dims* v = ints(n, 4))
        steps = *v;
      else
        return std::nullopt;
    }
  }
  if (!starts || !ends || starts->size() != ends->size()) return std::nullopt;
  if (!axes) {
    axes = Dims(starts->size());
    std::iota(axes->begin(), axes->end(), 0);
  }
  if (!steps) steps = Dims(starts->size(), 1);
  if (axes->size() != starts->size() || steps->size() != starts->size()) return std::nullopt;
  Dims y = x;
  // Per axis: the first index taken and the step.
  std::vector<std::array<int64_t, 2>> ranges(x.size(), {0, 1});
  for (size_t i = 0; i < axes->size(); ++i) {
    int64_t axis = normalizeAxis((*axes)[i], static_cast<int64_t>(x.size()));
    int64_t step = (*steps)[i];
    if (axis < 0 || axis >= static_cast<int64_t>(x.size()) || step == 0 ||
        step == std::numeric_limits<int64_t>::min()) {
      return std::nullopt;
    }
    int64_t dim = x[axis];
    int64_t s = (*starts)[i], e = (*ends)[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      y[axis] = e > s ? (e - s - 1) / step + 1 : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      y[axis] = s > e ? (s - e - 1) / -step + 1 : 0;
    }
    ranges[axis] = {s, step};
  }
  if (const Dims* v = ints(n, 0); v != nullptr && x.size() == 1 && static_cast<int64_t>(v->size()) == x[0]) {
    Dims values;
    for (int64_t k = 0; k < y[0]; ++k) values.push_back((*v)[ranges[0][0] + k * ranges[0][1]]);
    setInts(n, std::move(values));
  }
  return y;
}

void ShapePropagator::inferNode(const ir::Node& n, std::vector<std::optional<Dims>>& out) {
  if (out.empty()) return;
  const std::string& op = n.opType();
  const Dims* x = in(n, 0);
  auto& y = out[0];
  if (op == "Constant") {
    if (const ir::Tensor* t = constantTensor(n.output(0))) {
      seedConstant(n.output(0), *t);
      y = t->dims();
    } else if (n.hasAttribute("value_int") || n.hasAttribute("value_float")) {
      y = Dims{};
      if (n.hasAttribute("value_int")) setInts(n, {n.attrInt("value_int", 0)});
    } else if (n.hasAttribute("value_ints")) {
      Dims v = n.attrInts("value_ints");
      y = Dims{static_cast<int64_t>(v.size())};
      setInts(n, std::move(v));
    } else if (n.hasAttribute("value_floats")) {
      y = Dims{static_cast<int64_t>(n.attrFloats("value_floats").size())};
    }
    return;
  }
  if (op == "Conv" || op == "ConvInteger") {
    y = convLike(n, 0, 1);
  } else if (op == "QLinearConv") {
    y = convLike(n, 0, 3);
  } else if (op == "ConvTranspose") {
    y = convTranspose(n);
  } else if (op == "MaxPool" || op == "AveragePool" || op == "LpPool" || op == "QLinearAveragePool") {
    y = pool(n);
    if (out.size() > 1) out[1] = y;
  } else if (op == "GlobalAveragePool" || op == "GlobalMaxPool" || op == "GlobalLpPool" ||
             op == "QLinearGlobalAveragePool") {
    if (x != nullptr && x->size() >= 3) {
      Dims d = *x;
      bool channelsLast = op == "QLinearGlobalAveragePool" && n.attrInt("channels_last", 0) != 0;
      for (size_t i = channelsLast ? 1 : 2; i < d.size() - (channelsLast ? 1 : 0); ++i) d[i] = 1;
      y = d;
    }
  } else if (op == "Gemm") {
    const Dims* a = x;
    const Dims* b = in(n, 1);
    if (a != nullptr && b != nullptr && a->size() == 2 && b->size() == 2) {
      y = Dims{n.attrInt("transA", 0) ? (*a)[1] : (*a)[0], n.attrInt("transB", 0) ? (*b)[0] : (*b)[1]};
    }
  } else if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul") {
    const Dims* b = in(n, op == "QLinearMatMul" ? 3 : 1);
    if (x != nullptr && b != nullptr) y = matMul(*x, *b);
  } else if (kSameShapeOps.contains(op)) {
    if (x != nullptr) {
      y = *x;
      if (op == "Dropout" && out.size() > 1) out[1] = *x;
      if (op == "DynamicQuantizeLinear" && out.size() == 3) out[1] = out[2] = Dims{};
      if ((op == "Cast" || op == "Identity") && ints(n, 0) != nullptr) setInts(n, *ints(n, 0));
    }
  } else if (kBroadcastOps.contains(op) || op == "QLinearAdd" || op == "QLinearMul") {
    std::vector<size_t> operands;
    if (op == "QLinearAdd" || op == "QLinearMul")
      operands = {0, 3};
    else
      for (size_t i = 0; i < n.numInputs(); ++i) operands.push_back(i);
    Dims d;
    for (size_t i : operands) {
      const Dims* s = in(n, i);
      if (s == nullptr) return;
      d = broadcastDims(d, *s);
    }
    y = d;
    const Dims* a = ints(n, 0);
    const Dims* b = ints(n, 1);
    if (a != nullptr && b != nullptr && (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") &&
        (a->size() == b->size() || a->size() == 1 || b->size() == 1)) {
      Dims v(std::max(a->size(), b->size()));
      for (size_t i = 0; i < v.size(); ++i) {
        int64_t p = (*a)[a->size() == 1 ? 0 : i], q = (*b)[b->size() == 1 ? 0 : i];
        v[i] = op == "Add" ? p + q : op == "Sub" ? p - q : op == "Mul" ? p * q : (q != 0 ? p / q : 0);
      }
      setInts(n, std::move(v));
    }
  } else if (op == "Shape") {
    if (x != nullptr) {
      int64_t r = static_cast<int64_t>(x->size());
      int64_t start = std::clamp<int64_t>(normalizeAxis(n.attrInt("start", 0), r), 0, r);
      int64_t end = std::clamp<int64_t>(normalizeAxis(n.attrInt("end", r), r), 0, r);
      Dims v(x->begin() + start, x->begin() + std::max(start, end));
      y = Dims{static_cast<int64_t>(v.size())};
      setInts(n, std::move(v));
    }
  } else if (op == "Reshape") {
    const Dims* target = ints(n, 1);
    if (x != nullptr && target != nullptr) {
      Dims d = *target;
      bool allowZero = n.attrInt("allowzero", 0) != 0;
      int64_t known = 1, inferAt = -1;
      for (size_t i = 0; i < d.size(); ++i) {
        if (d[i] == 0 && !allowZero && i < x->size()) d[i] = (*x)[i];
        if (d[i] == -1)
          inferAt = static_cast<int64_t>(i);
        else
          known = mulSaturated(known, d[i]);
      }
      if (inferAt >= 0) d[inferAt] = known > 0 ? product(*x) / known : 0;
      y = d;
      if (ints(n, 0) != nullptr) setInts(n, *ints(n, 0));
    }
  } else if (op == "Flatten") {
    if (x != nullptr) {
      size_t axis = static_cast<size_t>(normalizeAxis(n.attrInt("axis", 1), static_cast<int64_t>(x->size())));
      y = Dims{product(*x, 0, axis), product(*x, axis)};
    }
  } else if (op == "Transpose") {
    if (x != nullptr) {
      Dims perm = n.attrInts("perm");
      if (perm.empty())
        for (size_t i = x->size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
      if (perm.size() != x->size()) return;
      Dims d;
      for (int64_t p : perm) {
        if (p < 0 || p >= static_cast<int64_t>(x->size())) return;
        d.push_back((*x)[static_cast<size_t>(p)]);
      }
      y = d;
    }
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    std::optional<Dims> axes = attrOrInput(n, "axes", 1);
    if (x == nullptr) return;
    int64_t rank =
        static_cast<int64_t>(x->size()) + (op == "Unsqueeze" && axes ? static_cast<int64_t>(axes->size()) : 0);
    std::set<int64_t> axisSet;
    if (axes)
      for (int64_t a : *axes) axisSet.insert(normalizeAxis(a, rank));
    if (axes && (axisSet.size() != axes->size() || *axisSet.begin() < 0 || *axisSet.rbegin() >= rank)) return;
    Dims d;
    if (op == "Squeeze") {
      for (size_t i = 0; i < x->size(); ++i) {
        bool drop = axes ? axisSet.contains(static_cast<int64_t>(i)) : (*x)[i] == 1;
        if (!drop) d.push_back((*x)[i]);
      }
    } else {
      if (!axes) return;
      for (int64_t i = 0, k = 0; i < rank; ++i) d.push_back(axisSet.contains(i) ? 1 : (*x)[k++]);
    }
    y = d;
    if (ints(n, 0) != nullptr) setInts(n, *ints(n, 0));
  } else if (op == "Concat" || op == "QLinearConcat") {
    size_t first = op == "Concat" ? 0 : 2, stride = op == "Concat" ? 1 : 3;
    const Dims* s0 = in(n, first);
    if (s0 == nullptr) return;
    int64_t axis = normalizeAxis(n.attrInt("axis", 0), static_cast<int64_t>(s0->size()));
    if (axis < 0 || axis >= static_cast<int64_t>(s0->size())) return;
    Dims d = *s0;
    d[axis] = 0;
    Dims values;
    bool haveValues = op == "Concat";
    for (size_t i = first; i < n.numInputs(); i += stride) {
      const Dims* s = in(n, i);
      if (s == nullptr || s->size() != d.size()) return;
      d[axis] += (*s)[axis];
      if (const Dims* v = ints(n, i); haveValues && v != nullptr)
        values.insert(values.end(), v->begin(), v->end());
      else
        haveValues = false;
    }
    y = d;
    if (haveValues && d.size() == 1) setInts(n, std::move(values));
  } else if (op == "Split") {
    if (x == nullptr) return;
    int64_t axis = normalizeAxis(n.attrInt("axis", 0), static_cast<int64_t>(x->size()));
    if (axis < 0 || axis >= static_cast<int64_t>(x->size())) return;
    std::optional<Dims> sizes = attrOrInput(n, "split", 1);
    int64_t parts = static_cast<int64_t>(out.size()), dim = (*x)[axis];
    if (!sizes || sizes->size() != out.size()) {
      int64_t chunk = (dim + parts - 1) / parts;
      sizes = Dims(out.size(), chunk);
      sizes->back() = dim - chunk * (parts - 1);
    }
    for (size_t i = 0; i < out.size(); ++i) {
      Dims d = *x;
      d[axis] = (*sizes)[i];
      out[i] = d;
    }
  } else if (op == "Slice") {
    if (x != nullptr) y = slice(n, *x);
  } else if (op == "Gather") {
    const Dims* idx = in(n, 1);
    if (x == nullptr || idx == nullptr || x->empty()) return;
    int64_t axis = normalizeAxis(n.attrInt("axis", 0), static_cast<int64_t>(x->size()));
    if (axis < 0 || axis >= static_cast<int64_t>(x->size())) return;
    Dims d(x->begin(), x->begin() + axis);
    d.insert(d.end(), idx->begin(), idx->end());
    d.insert(d.end(), x->begin() + axis + 1, x->end());
    y = d;
    const Dims* data = ints(n, 0);
    const Dims* indices = ints(n, 1);
    if (data != nullptr && indices != nullptr && x->size() == 1) {
      Dims v;
      for (int64_t i : *indices) {
        int64_t k = normalizeAxis(i, static_cast<int64_t>(data->size()));
        if (k < 0 || k >= static_cast<int64_t>(data->size())) return;
        v.push_back((*data)[k]);
      }
      setInts(n, std::move(v));
    }
  } else if (op == "Resize" || op == "Upsample") {
    if (x == nullptr) return;
    if (const Dims* sizes = op == "Resize" && opset_ >= 11 ? ints(n, 3) : nullptr;
        sizes && sizes->size() == x->size()) {
      y = *sizes;
      return;
    }
    std::optional<std::vector<double>> scales;
    if (op == "Upsample" && n.hasAttribute("scales")) {
      auto f = n.attrFloats("scales");
      scales = std::vector<double>(f.begin(), f.end());
    } else {
      scales = floats(n, op == "Resize" && opset_ >= 11 ? 2 : 1);
    }
    if (!scales || scales->size() != x->size()) return;
    Dims d(x->size());
    for (size_t i = 0; i < d.size(); ++i) {
      double size = std::floor(static_cast<double>((*x)[i]) * (*scales)[i]);
      if (!(size >= 0 && size < 0x1p62)) return;  // also rejects NaN
      d[i] = static_cast<int64_t>(size);
    }
    y = d;
  } else if (op.rfind("Reduce", 0) == 0 || op == "ArgMax" || op == "ArgMin") {
    if (x == nullptr) return;
    int64_t rank = static_cast<int64_t>(x->size());
    std::optional<Dims> axes;
    if (op == "ArgMax" || op == "ArgMin")
      axes = Dims{n.attrInt("axis", 0)};
    else if (n.hasAttribute("axes"))
      axes = n.attrInts("axes");
    else if (n.input(1) != nullptr) {
      if (ints(n, 1) == nullptr) return;
      axes = *ints(n, 1);
    }
    if (axes && axes->empty()) axes.reset();
    if (!axes && n.attrInt("noop_with_empty_axes", 0) != 0) {
      y = *x;
      return;
    }
    std::set<int64_t> axisSet;
    if (axes)
      for (int64_t a : *axes) axisSet.insert(normalizeAxis(a, rank));
    bool keep = n.attrInt("keepdims", 1) != 0;
    Dims d;
    for (int64_t i = 0; i < rank; ++i) {
      bool reduced = !axes || axisSet.contains(i);
      if (!reduced)
        d.push_back((*x)[i]);
      else if (keep)
        d.push_back(1);
    }
    y = d;
  } else if (op == "Pad") {
    std::optional<Dims> pads = attrOrInput(n, "pads", 1);
    if (x == nullptr || !pads) return;
    Dims axes(x->size());
    std::iota(axes.begin(), axes.end(), 0);
    if (n.input(3) != nullptr) {
      if (ints(n, 3) == nullptr) return;
      axes = *ints(n, 3);
    }
    if (pads->size() != 2 * axes.size() || !saneAttrs({&*pads})) return;
    Dims d = *x;
    for (size_t i = 0; i < axes.size(); ++i) {
      int64_t a = normalizeAxis(axes[i], static_cast<int64_t>(x->size()));
      if (a < 0 || a >= static_cast<int64_t>(d.size())) return;
      d[a] += (*pads)[i] + (*pads)[i + axes.size()];
    }
    y = d;
  } else if (op == "Expand") {
    if (x != nullptr && ints(n, 1) != nullptr) y = broadcastDims(*x, *ints(n, 1));
  } else if (op == "Tile") {
    const Dims* reps = ints(n, 1);
    if (x == nullptr || reps == nullptr || reps->size() != x->size() || !saneAttrs({reps})) return;
    Dims d = *x;
    for (size_t i = 0; i < d.size(); ++i) d[i] *= (*reps)[i];
    y = d;
  } else if (op == "ConstantOfShape") {
    if (ints(n, 0) != nullptr) y = *ints(n, 0);
  } else if (op == "DepthToSpace" || op == "SpaceToDepth") {
    int64_t b = n.attrInt("blocksize", 1);
    if (x == nullptr || x->size() != 4 || b <= 0 || b > kMaxAttr) return;
    bool d2s = op == "DepthToSpace";
    y = Dims{(*x)[0], d2s ? (*x)[1] / (b * b) : (*x)[1] * b * b, d2s ? (*x)[2] * b : (*x)[2] / b,
             d2s ? (*x)[3] * b : (*x)[3] / b};
  }
}

// ---------------------------------------------------------------- parameters

/// What a constant read by input `slot` of a node is.
enum class SlotRole { kWeight, kNotWeight, kData };

// Inputs that hold weights whatever their size.
const std::unordered_map<std::string, std::vector<int>> kWeightSlots = {{"Conv", {1, 2}},
                                                                        {"ConvTranspose", {1, 2}},
                                                                        {"Gemm", {0, 1, 2}},
                                                                        {"MatMul", {0, 1}},
                                                                        {"BatchNormalization", {1, 2, 3, 4}},
                                                                        {"InstanceNormalization", {1, 2}},
                                                                        {"LayerNormalization", {1, 2}},
                                                                        {"GroupNormalization", {1, 2}},
                                                                        {"PRelu", {1}},
                                                                        {"LSTM", {1, 2, 3}},
                                                                        {"GRU", {1, 2, 3}},
                                                                        {"RNN", {1, 2, 3}},
                                                                        {"Gather", {0}},
                                                                        {"QLinearConv", {0, 3, 8}},
                                                                        {"QLinearMatMul", {0, 3}},
                                                                        {"ConvInteger", {0, 1}},
                                                                        {"MatMulInteger", {0, 1}},
                                                                        {"QGemm", {0, 3, 6}}};

// Inputs that never hold weights: quantization parameters and shape-like operands.
const std::unordered_map<std::string, std::vector<int>> kNonWeightSlots = {{"QuantizeLinear", {1, 2}},
                                                                           {"DequantizeLinear", {1, 2}},
                                                                           {"QLinearConv", {1, 2, 4, 5, 6, 7}},
                                                                           {"QLinearMatMul", {1, 2, 4, 5, 6, 7}},
                                                                           {"ConvInteger", {2, 3}},
                                                                           {"MatMulInteger", {2, 3}},
                                                                           {"QGemm", {1, 2, 4, 5, 7, 8}},
                                                                           {"QLinearAdd", {1, 2, 4, 5, 6, 7}},
                                                                           {"QLinearMul", {1, 2, 4, 5, 6, 7}},
                                                                           {"QLinearGlobalAveragePool", {1, 2, 3, 4}},
                                                                           {"QLinearAveragePool", {1, 2, 3, 4}},
                                                                           {"QLinearLeakyRelu", {1, 2, 3, 4}},
                                                                           {"QLinearSigmoid", {1, 2, 3, 4}},
                                                                           {"QLinearSoftmax", {1, 2, 3, 4}},
                                                                           {"Reshape", {1}},
                                                                           {"Slice", {1, 2, 3, 4}},
                                                                           {"Resize", {1, 2, 3}},
                                                                           {"Upsample", {1}},
                                                                           {"Expand", {1}},
                                                                           {"Tile", {1}},
                                                                           {"Pad", {1, 2, 3}},
                                                                           {"Gather", {1}},
                                                                           {"GatherElements", {1}},
                                                                           {"GatherND", {1}},
                                                                           {"Squeeze", {1}},
                                                                           {"Unsqueeze", {1}},
                                                                           {"Split", {1}},
                                                                           {"Clip", {1, 2}},
                                                                           {"TopK", {1}},
                                                                           {"ReduceMean", {1}},
                                                                           {"ReduceSum", {1}},
                                                                           {"ReduceMax", {1}},
                                                                           {"ReduceMin", {1}},
                                                                           {"ReduceProd", {1}},
                                                                           {"ReduceL2", {1}},
                                                                           {"ConstantOfShape", {0}},
                                                                           {"Range", {0, 1, 2}},
                                                                           {"OneHot", {1, 2}},
                                                                           {"CumSum", {1}},
                                                                           {"Dropout", {1, 2}},
                                                                           {"NonMaxSuppression", {2, 3, 4}},
                                                                           {"Trilu", {1}}};

bool listed(const std::unordered_map<std::string, std::vector<int>>& table, const std::string& op, int slot) {
  auto it = table.find(op);
  return it != table.end() && std::find(it->second.begin(), it->second.end(), slot) != it->second.end();
}

SlotRole slotRole(const ir::Node& n, int slot) {
  const std::string& op = n.opType();
  if (listed(kWeightSlots, op, slot)) return SlotRole::kWeight;
  if (listed(kNonWeightSlots, op, slot)) return SlotRole::kNotWeight;
  if (op == "QLinearConcat") return slot >= 2 && (slot - 2) % 3 == 0 ? SlotRole::kData : SlotRole::kNotWeight;
  // An unknown QLinear op: its other inputs are taken for scales and zero points.
  if (op.rfind("QLinear", 0) == 0 && !kNonWeightSlots.contains(op)) return SlotRole::kNotWeight;
  return SlotRole::kData;
}

/// Ops that only move or re-type their first input; a weight is followed through them.
bool isPassThrough(const ir::Node& n, int slot) {
  static const std::unordered_set<std::string> kOps = {"Identity", "Cast",      "Reshape", "Transpose",
                                                       "Squeeze",  "Unsqueeze", "Flatten", "DequantizeLinear"};
  return slot == 0 && kOps.contains(n.opType());
}

/// The inputs that finally read `v`, looking through pass-through ops.
void finalUses(const ir::Value* v, std::vector<ir::Value::Use>& out, std::unordered_set<const ir::Value*>& seen) {
  for (const ir::Value::Use& use : v->uses()) {
    if (use.implicit()) continue;
    const ir::Value* next = use.user->output(0);
    if (isPassThrough(*use.user, use.index) && next != nullptr) {
      if (seen.insert(next).second) finalUses(next, out, seen);
    } else {
      out.push_back(use);
    }
  }
}

bool isParameterDtype(DataType t) {
  switch (t) {
    case DataType::kFloat:
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kDouble:
    case DataType::kInt8:
    case DataType::kUint8:
    case DataType::kInt16:
    case DataType::kUint16:
    case DataType::kInt32:
    case DataType::kInt4:
    case DataType::kUint4:
      return true;
    default:
      return false;
  }
}

/// Every constant of the graph: initializers and Constant-node outputs.
std::vector<std::pair<const ir::Value*, const ir::Tensor*>> graphConstants(const ir::Graph& g) {
  std::vector<std::pair<const ir::Value*, const ir::Tensor*>> out;
  for (const ir::Value* v : g.initializers()) out.emplace_back(v, v->constant());
  for (const ir::Node* n : g.nodes()) {
    if (n->opType() == "Constant" && n->numOutputs() == 1 && n->output(0) != nullptr) {
      if (const ir::Tensor* t = constantTensor(n->output(0))) out.emplace_back(n->output(0), t);
    }
  }
  return out;
}

ParameterStats countParameters(const ir::Graph& g) {
  ParameterStats stats;
  for (const auto& [v, t] : graphConstants(g)) {
    if (!isParameterDtype(t->dtype())) continue;
    std::vector<ir::Value::Use> uses;
    std::unordered_set<const ir::Value*> seen;
    finalUses(v, uses, seen);
    bool weight = std::any_of(uses.begin(), uses.end(), [&](const ir::Value::Use& u) {
      SlotRole role = slotRole(*u.user, u.index);
      return role == SlotRole::kWeight || (role == SlotRole::kData && t->numel() > 1);
    });
    if (!weight) continue;
    DtypeCount& d = stats.byDtype[std::string(ir::dataTypeName(t->dtype()))];
    int64_t bytes = static_cast<int64_t>(ir::storageBytes(t->dtype(), t->numel()));
    d.count += t->numel();
    d.bytes += bytes;
    stats.total += t->numel();
    stats.bytes += bytes;
    ++stats.tensors;
  }
  return stats;
}

// ---------------------------------------------------------------- weights of compute ops

/// A constant weight found behind a compute op's input, with the zero point that makes an
/// element "zero" when the weight is quantized.
struct TracedWeight {
  const ir::Value* source = nullptr;
  const ir::Tensor* tensor = nullptr;
  const ir::Tensor* zeroPoint = nullptr;
  int64_t zeroPointAxis = 0;  ///< Axis of `tensor` that a per-channel zero point runs along.
  const ir::Tensor* scale = nullptr;
};

std::optional<TracedWeight> traceWeight(const ir::Value* v) {
  TracedWeight w;
  for (int depth = 0; v != nullptr && depth < 16; ++depth) {
    if (const ir::Tensor* t = constantTensor(v)) {
      w.source = v;
      w.tensor = t;
      w.zeroPointAxis = normalizeAxis(w.zeroPointAxis, t->rank());
      return w;
    }
    const ir::Node* p = v->producer();
    if (p == nullptr || !isPassThrough(*p, 0)) return std::nullopt;
    if (p->opType() == "DequantizeLinear") {
      w.scale = constantTensor(p->input(1));
      w.zeroPoint = constantTensor(p->input(2));
      w.zeroPointAxis = p->attrInt("axis", 1);
    }
    v = p->input(0);
  }
  return std::nullopt;
}

/// Where the main weight of a compute op sits: its input, and for quantized ops the inputs
/// of its scale and zero point (-1: none).
struct WeightSlot {
  int weight;
  int scale;
  int zeroPoint;
};

std::optional<WeightSlot> mainWeightSlot(const ir::Node& n, bool second = false) {
  const std::string& op = n.opType();
  if (!isDefaultDomain(n)) return std::nullopt;
  bool matmulLike = op == "MatMul" || op == "Gemm" || op == "QLinearMatMul" || op == "MatMulInteger";
  if (second && !matmulLike) return std::nullopt;
  if (op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul")
    return WeightSlot{second ? 0 : 1, -1, -1};
  if (op == "QLinearConv" || op == "QLinearMatMul") return second ? WeightSlot{0, 1, 2} : WeightSlot{3, 4, 5};
  if (op == "ConvInteger" || op == "MatMulInteger") return second ? WeightSlot{0, -1, 2} : WeightSlot{1, -1, 3};
  return std::nullopt;
}

/// The weight of a compute op: its usual weight input, or for MatMul-like ops a constant
/// first operand.
std::optional<std::pair<TracedWeight, WeightSlot>> computeWeight(const ir::Node& n) {
  for (bool second : {false, true}) {
    auto slot = mainWeightSlot(n, second);
    if (!slot) return std::nullopt;
    auto w = traceWeight(n.input(static_cast<size_t>(slot->weight)));
    if (!w) continue;
    if (slot->zeroPoint >= 0) {  // quantized op: its own zero point, along the output channel
      w->zeroPoint = constantTensor(n.input(static_cast<size_t>(slot->zeroPoint)));
      w->scale = constantTensor(n.input(static_cast<size_t>(slot->scale)));
      bool conv = n.opType() == "QLinearConv" || n.opType() == "ConvInteger";
      w->zeroPointAxis = conv ? 0 : std::max<int64_t>(0, w->tensor->rank() - 1);
    }
    return std::make_pair(*w, *slot);
  }
  return std::nullopt;
}

int64_t integerElement(const ir::Tensor& t, int64_t i) {
  if (t.dtype() == DataType::kInt4 || t.dtype() == DataType::kUint4) {
    auto byte = static_cast<uint8_t>(t.rawData()[i / 2]);
    int64_t nibble = (i % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
    return t.dtype() == DataType::kInt4 && nibble >= 8 ? nibble - 16 : nibble;
  }
  return static_cast<int64_t>(t.valueAsDouble(i));
}

int64_t countZeros(const TracedWeight& w) {
  const ir::Tensor& t = *w.tensor;
  if (!isParameterDtype(t.dtype()) || t.byteSize() < ir::storageBytes(t.dtype(), t.numel())) return 0;
  const ir::Tensor* zp = w.zeroPoint;
  if (zp != nullptr && (zp->numel() == 0 || !isParameterDtype(zp->dtype()))) zp = nullptr;
  if (zp == nullptr && ir::isFloatingPoint(t.dtype())) {
    int64_t zeros = 0;
    for (int64_t i = 0; i < t.numel(); ++i) zeros += t.valueAsDouble(i) == 0.0 ? 1 : 0;
    return zeros;
  }
  int64_t inner = 1, channels = 1;
  if (zp != nullptr && zp->numel() > 1) {
    if (w.zeroPointAxis < 0 || w.zeroPointAxis >= t.rank() || t.dims()[w.zeroPointAxis] != zp->numel()) return 0;
    inner = product(t.dims(), static_cast<size_t>(w.zeroPointAxis) + 1);
    channels = zp->numel();
  }
  int64_t zeros = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t z = zp == nullptr ? 0 : integerElement(*zp, channels > 1 ? (i / inner) % channels : 0);
    zeros += integerElement(t, i) == z ? 1 : 0;
  }
  return zeros;
}

std::string nodeLabel(const ir::Node& n) {
  return n.name().empty() ? n.describe() : n.name();
}

SparsityStats computeSparsity(const ir::Graph& g) {
  SparsityStats stats;
  std::unordered_set<const ir::Value*> counted;
  for (const ir::Node* n : g.nodes()) {
    auto found = computeWeight(*n);
    if (!found) continue;
    const TracedWeight& w = found->first;
    LayerSparsity layer{nodeLabel(*n), qualifiedOpType(*n), w.source->name(), w.tensor->numel(), countZeros(w)};
    if (counted.insert(w.source).second) {
      stats.weightElements += layer.elements;
      stats.zeroElements += layer.zeros;
    }
    stats.layers.push_back(std::move(layer));
  }
  return stats;
}

// ---------------------------------------------------------------- quantization

QuantStats computeQuantization(const ir::Graph& g) {
  QuantStats q;
  bool quantizesActivations = false, dequantizesConstants = false, integerOps = false, dynamicOps = false;
  auto addWeight = [&q](const ir::Tensor& weight, const ir::Tensor* scale) {
    ++q.weightDtypes[std::string(ir::dataTypeName(weight.dtype()))];
    ++(scale != nullptr && scale->numel() > 1 ? q.perChannelWeights : q.perTensorWeights);
  };
  for (const ir::Node* n : g.nodes()) {
    const std::string& op = n->opType();
    if (op == "QuantizeLinear") {
      ++q.quantizeLinear;
      if (constantTensor(n->input(0)) == nullptr) quantizesActivations = true;
    } else if (op == "DequantizeLinear") {
      ++q.dequantizeLinear;
      const ir::Tensor* t = constantTensor(n->input(0));
      if (t == nullptr || n->output(0) == nullptr) continue;
      dequantizesConstants = true;
      std::vector<ir::Value::Use> uses;
      std::unordered_set<const ir::Value*> seen;
      finalUses(n->output(0), uses, seen);
      bool isWeight = std::any_of(uses.begin(), uses.end(), [](const ir::Value::Use& u) {
        auto a = mainWeightSlot(*u.user), b = mainWeightSlot(*u.user, true);
        return (a && a->weight == u.index) || (b && b->weight == u.index);
      });
      if (isWeight) addWeight(*t, constantTensor(n->input(1)));
    } else if (op == "DynamicQuantizeLinear") {
      ++q.dynamicQuantizeLinear;
    }
    bool qlinear = op.rfind("QLinear", 0) == 0 || op == "ConvInteger" || op == "MatMulInteger" || op == "QGemm";
    if (qlinear) {
      ++q.qlinearOps;
      integerOps = true;
    }
    if (op == "DynamicQuantizeMatMul" || op == "DynamicQuantizeLSTM") dynamicOps = true;
    if (op == "QGemm" && n->domain() == "com.microsoft") {
      if (const ir::Tensor* b = constantTensor(n->input(3))) addWeight(*b, constantTensor(n->input(4)));
    } else if (auto slot = mainWeightSlot(*n); slot && slot->zeroPoint >= 0) {
      if (auto found = computeWeight(*n)) {
        const ir::Tensor* scale = found->first.scale;
        // ConvInteger/MatMulInteger have no scale: per-channel when the zero point is.
        if (found->second.scale < 0) scale = found->first.zeroPoint;
        addWeight(*found->first.tensor, scale);
      }
    }
    for (const ir::Value* in : n->inputs()) {
      if (in == nullptr || in->producer() == nullptr || in->producer()->opType() != "DynamicQuantizeLinear") continue;
      if (op == "MatMulInteger" || op == "ConvInteger") dynamicOps = true;
    }
  }
  if (dynamicOps)
    q.form = QuantForm::kDynamic;
  else if (integerOps)
    q.form = QuantForm::kQOperator;
  else if (quantizesActivations && q.dequantizeLinear > 0)
    q.form = QuantForm::kQdq;
  else if (dequantizesConstants)
    q.form = QuantForm::kWeightOnly;
  return q;
}

// ---------------------------------------------------------------- MACs

/// Multiply-accumulates of one node from the propagated shapes; nullopt when the node is
/// not a MAC op, -1 when its shapes are unknown.
std::optional<int64_t> nodeMacs(const ir::Node& n, const ShapePropagator& shapes) {
  if (!isDefaultDomain(n)) return std::nullopt;
  const std::string& op = n.opType();
  auto dims = [&](size_t i) { return shapes.shape(n.input(i)); };
  const Dims* y = shapes.shape(n.output(0));
  if (op == "Conv" || op == "QLinearConv" || op == "ConvInteger") {
    // Every output element: (C_in / group) x kernel multiply-accumulates.
    const Dims* w = dims(op == "QLinearConv" ? 3 : 1);
    if (w == nullptr || y == nullptr || w->size() < 3 || y->size() != w->size()) return -1;
    return product({(*y)[0], (*w)[0], product(*y, 2), product(*w, 1)});
  }
  if (op == "ConvTranspose") {
    // Every input element is scattered into (C_out / group) x kernel outputs.
    const Dims* x = dims(0);
    const Dims* w = dims(1);
    if (x == nullptr || w == nullptr || w->size() < 3 || x->size() != w->size()) return -1;
    return product({product(*x), product(*w, 1)});
  }
  if (op == "Gemm") {
    const Dims* a = dims(0);
    const Dims* b = dims(1);
    if (a == nullptr || b == nullptr || a->size() != 2 || b->size() != 2) return -1;
    int64_t m = n.attrInt("transA", 0) ? (*a)[1] : (*a)[0];
    int64_t k = n.attrInt("transA", 0) ? (*a)[0] : (*a)[1];
    int64_t cols = n.attrInt("transB", 0) ? (*b)[0] : (*b)[1];
    return product({m, k, cols});
  }
  if (op == "MatMul" || op == "QLinearMatMul" || op == "MatMulInteger") {
    const Dims* a = dims(0);
    const Dims* b = dims(op == "QLinearMatMul" ? 3 : 1);
    if (a == nullptr || b == nullptr || a->empty() || b->empty()) return -1;
    Dims a2 = a->size() == 1 ? Dims{1, (*a)[0]} : *a;
    Dims b2 = b->size() == 1 ? Dims{(*b)[0], 1} : *b;
    Dims batch = broadcastDims(Dims(a2.begin(), a2.end() - 2), Dims(b2.begin(), b2.end() - 2));
    return product({product(batch), a2[a2.size() - 2], a2.back(), b2.back()});
  }
  return std::nullopt;
}

/// MACs at batch 1; fills `valueShapes` with every value's shape when it is given.
MacStats computeMacs(const ir::Model& model, std::vector<ValueShape>* valueShapes) {
  MacStats stats;
  ir::Model clone = model.clone();
  ir::Graph& g = *clone.graph;
  // Batch 1: the first dim of every graph input; other unknown dims are taken as 1 too.
  for (ir::Value* v : g.inputs()) {
    if (v->isInitializer() || !v->type().opaqueTypeProto.empty()) continue;
    auto& shape = v->mutableType().shape;
    if (!shape) {
      stats.notes.push_back("input '" + v->name() + "' has no declared shape");
      continue;
    }
    for (size_t i = 0; i < shape->size(); ++i) {
      ir::Dim& d = (*shape)[i];
      if (d.isKnown()) continue;
      if (i > 0) {
        stats.approximate = true;
        stats.notes.push_back("input '" + v->name() + "': dim " + std::to_string(i) + " ('" +
                              (d.param.empty() ? "?" : d.param) + "') taken as 1");
      }
      d = ir::Dim::known(1);
    }
  }
  // Declared shapes with symbolic dims would pin the inference to them: keep them aside as a
  // last resort (symbolic dims taken as 1) and let inference work from the concrete inputs.
  std::unordered_map<const ir::Value*, Dims> declared;
  for (ir::Value* v : g.values()) {
    if (v->isGraphInput() || v->isInitializer() || !v->type().shape || v->type().hasStaticShape()) continue;
    Dims d;
    for (const ir::Dim& dim : *v->type().shape) d.push_back(dim.isKnown() ? dim.value : 1);
    declared[v] = std::move(d);
    v->mutableType().shape.reset();
  }
  int64_t opset = clone.opsetVersion("");
  bool libonnxKnowsOpset = opset <= onnx_io::libonnxMaxOpset();
  // libonnx's result is a help, not a requirement: the propagation below covers its gaps.
  auto inferred = onnx_io::inferShapes(clone);
  ShapePropagator shapes(opset, /*libonnxFirst=*/libonnxKnowsOpset && inferred.isOk());
  shapes.run(g, declared);
  if (shapes.declaredFallbacks() > 0) {
    stats.notes.push_back(std::to_string(shapes.declaredFallbacks()) +
                          " value shapes taken from the model's declarations, symbolic dims as 1");
  }
  for (const ir::Node* n : g.nodes()) {
    auto macs = nodeMacs(*n, shapes);
    if (!macs) continue;
    if (*macs < 0 || *macs == kOverflow || stats.total > kOverflow - *macs) {
      stats.uncountedNodes.push_back(nodeLabel(*n));
      continue;
    }
    std::string op = qualifiedOpType(*n);
    stats.nodes.push_back({nodeLabel(*n), op, *macs});
    stats.byOpType[op] += *macs;
    stats.total += *macs;
  }
  if (!stats.uncountedNodes.empty()) {
    stats.approximate = true;
    stats.notes.push_back(std::to_string(stats.uncountedNodes.size()) +
                          " MAC nodes left out: shapes unknown or too large");
  }
  if (valueShapes != nullptr) {
    auto add = [&](const ir::Value* v) {
      const Dims* d = shapes.shape(v);
      valueShapes->push_back({v->name(), v->dtype(), d ? std::optional<Dims>(*d) : std::nullopt});
    };
    for (const ir::Value* v : g.inputs()) {
      if (!v->isInitializer()) add(v);
    }
    for (const ir::Node* n : g.nodes()) {
      for (const ir::Value* v : n->outputs()) {
        if (v != nullptr) add(v);
      }
    }
  }
  return stats;
}

FileStats fileStats(const ir::Graph& g, const std::string& path) {
  FileStats f;
  if (!path.empty()) f.sizeBytes = fileSize(path);
  std::set<std::tuple<std::string, int64_t, int64_t>> seen;
  for (const auto& [v, t] : graphConstants(g)) {
    const ir::ExternalDataRef* ref = t->externalSource();
    if (ref == nullptr || !seen.insert({ref->location, ref->offset, ref->length}).second) continue;
    f.externalDataBytes += ref->length;
    if (std::find(f.externalDataFiles.begin(), f.externalDataFiles.end(), ref->location) == f.externalDataFiles.end()) {
      f.externalDataFiles.push_back(ref->location);
    }
  }
  return f;
}

TensorInfo tensorInfo(const ir::Value& v) {
  return {v.name(), v.dtype(), v.type().shape};
}

}  // namespace

int64_t convOutputSize(int64_t input, int64_t kernel, int64_t stride, int64_t dilation, int64_t padBegin,
                       int64_t padEnd, std::string_view autoPad, bool ceilMode) {
  if (input < 0 || input > kMaxDim) return 0;  // nonsense: no arithmetic on it
  for (int64_t v : {kernel, stride, dilation, padBegin, padEnd}) {
    if (v < -kMaxAttr || v > kMaxAttr) return 0;
  }
  if (stride <= 0 || kernel <= 0 || dilation <= 0) return 0;
  const int64_t effective = (kernel - 1) * dilation + 1;
  if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") return (input + stride - 1) / stride;
  if (autoPad == "VALID") padBegin = padEnd = 0;
  const int64_t span = input + padBegin + padEnd - effective;
  if (span < 0) return 0;
  if (!ceilMode) return span / stride + 1;
  int64_t out = (span + stride - 1) / stride + 1;
  if ((out - 1) * stride >= input + padBegin) --out;  // the last window must start inside the input
  return out;
}

std::string qualifiedOpType(const ir::Node& node) {
  return isDefaultDomain(node) ? node.opType() : node.domain() + "." + node.opType();
}

std::string_view quantFormName(QuantForm form) {
  switch (form) {
    case QuantForm::kNone:
      return "none";
    case QuantForm::kQdq:
      return "qdq";
    case QuantForm::kQOperator:
      return "qoperator";
    case QuantForm::kDynamic:
      return "dynamic";
    case QuantForm::kWeightOnly:
      return "weight-only";
  }
  return "none";
}

std::string QuantStats::weightDtype() const {
  if (weightDtypes.empty()) return "";
  return weightDtypes.size() == 1 ? weightDtypes.begin()->first : "mixed";
}

std::string QuantStats::granularity() const {
  if (perChannelWeights == 0 && perTensorWeights == 0) return "";
  if (perTensorWeights == 0) return "per-channel";
  return perChannelWeights == 0 ? "per-tensor" : "mixed";
}

Expected<ModelStats> computeStats(const ir::Model& model, const std::string& path, const StatsOptions& options) {
  ModelStats s;
  const ir::Graph& g = *model.graph;
  s.path = path;
  s.irVersion = model.irVersion;
  s.producerName = model.producerName;
  s.producerVersion = model.producerVersion;
  for (const ir::OpsetImport& op : model.opsetImports) s.opsets[op.domain.empty() ? "ai.onnx" : op.domain] = op.version;
  for (const ir::Value* v : g.inputs()) {
    if (!v->isInitializer()) s.inputs.push_back(tensorInfo(*v));
  }
  for (const ir::Value* v : g.outputs()) s.outputs.push_back(tensorInfo(*v));

  std::map<std::string, int64_t> histogram;
  for (const ir::Node* n : g.nodes()) {
    ++histogram[qualifiedOpType(*n)];
    if (n->hasSubgraphs()) ++s.nodesWithSubgraphs;
  }
  s.nodeCount = static_cast<int64_t>(g.numNodes());
  s.opHistogram.assign(histogram.begin(), histogram.end());
  std::stable_sort(s.opHistogram.begin(), s.opHistogram.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });

  s.parameters = countParameters(g);
  s.macs = computeMacs(model, options.valueShapes ? &s.valueShapes : nullptr);
  s.sparsity = computeSparsity(g);
  s.quantization = computeQuantization(g);
  s.file = fileStats(g, path);
  return s;
}

}  // namespace whittle::analysis
