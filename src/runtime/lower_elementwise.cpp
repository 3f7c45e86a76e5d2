// The CPU lowering's elementwise rewrites (see lowering.h, steps R, A and H): they run before
// the epilogue fusion of lowering.cpp, so that what exporters write as several elementwise
// ops reaches the convolutions as one bias or one activation.
//
// R. Before: y = Reshape(c, s)                 c, s constants
//    After:  y is an initializer: c's buffer, shared, under the new dims (also Squeeze,
//            Unsqueeze and Flatten of a constant, whose axes are constant); and
//            y = Transpose(c) an initializer holding the transposed copy (a weight that
//            jax2tf or TF exporters transpose at run time, which left a Conv unpacked), and
//            y = ConstantOfShape(s) the filled initializer (the onnx package's "light" models
//            make every weight so: alexnet spent 70 ms a run filling them); and
//            y = Slice(c, ...) or Concat(c1, c2, ...) of constants with constant operands the
//            copied initializer (silero-vad slices its LSTM's gates out of one weight and
//            concatenates them again inside an If branch, every run).
// A. Before: y = Add(Conv(x, W, B), c)          c a scalar or one value per output channel
//    After:  y = Conv(x, W, B + c)              (Sub: B - c; Mul: W * c, B * c; Div: W / c, B / c)
//    computed in double and rounded once; repeated down a chain (Paddle's Conv -> Mul -> Add).
// B. Before: y = Add(Mul(BatchNormalization(x, s, beta, mean, var), c), d)   c, d per channel
//    After:  y = BatchNormalization(x, s * c, beta * c + d, mean, var)  (the "light" DenseNet's
//            pre-activation BN -> Mul -> Add -> Relu -> Conv: one pass over memory instead of three)
// H. Before: y = Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)   or Mul(x, Div(Clip(Add(x, 3), 0, 6), 6)),
//            with Mul(., 1/6) in place of Div(., 6)
//    After:  y = HardSwish(x), which the epilogue fusion then takes into a Conv before it.
// I. Before: y = Identity(x)  (or an inference Dropout without mask output)
//    After:  y's readers read x (Paddle2ONNX writes an Identity after most ops: 191 in the
//            PP-OCRv5 recognizer, each between a Conv and its activation, which kept them apart)
// N. Before: y = Relu(BatchNormalization(x, s, beta, mean, var))   inference, after step B
//    After:  y = com.whittle.internal BatchNormRelu(x, s, beta, mean, var)  (DenseNet's
//            pre-activation BN -> Relu -> Conv: one pass over memory instead of two)
// G. Before: y = Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)   GELU written out, in the forms
//            exporters write: Div by sqrt 2 or Mul by 1/sqrt 2, the 0.5 applied to x, to the
//            product or to the Erf term, Mul operands in either order
//    After:  y = Gelu(x) (approximate "none"), which the epilogue fusion takes into a Conv.
// Requires: every value that goes away has one reader and is neither a graph output nor kept;
// float32 tensors.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "whittle/ir/fold.h"
#include "whittle/ir/match.h"
#include "whittle/ir/rewrite.h"
#include "whittle/runtime/lowering.h"
#include "lower_pins.h"

namespace whittle::runtime {
namespace {

constexpr ir::ConstantScope kSession = ir::ConstantScope::kSession;

/// The dims a shape-only op gives its constant input, or nullopt when they are not static.
std::optional<std::vector<int64_t>> reshapedDims(const ir::Node& n, const ir::Tensor& data) {
  const std::string& op = n.opType();
  std::vector<int64_t> in = data.dims();
  if (op == "Reshape") {
    const ir::Tensor* shape = n.numInputs() > 1 ? ir::constantOf(n.input(1), kSession) : nullptr;
    if (shape == nullptr || shape->dtype() != ir::DataType::kInt64 || shape->rank() != 1) return std::nullopt;
    std::vector<int64_t> out(shape->values<int64_t>().begin(), shape->values<int64_t>().end());
    const bool allowZero = n.attrInt("allowzero", 0) != 0;
    int64_t known = 1, inferred = -1;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == 0 && !allowZero) {
        if (i >= in.size()) return std::nullopt;
        out[i] = in[i];
      }
      if (out[i] == -1) {
        if (inferred >= 0) return std::nullopt;
        inferred = static_cast<int64_t>(i);
      } else if (out[i] < 0) {
        return std::nullopt;
      } else {
        known *= out[i];
      }
    }
    if (inferred >= 0) {
      if (known == 0 || data.numel() % known != 0) return std::nullopt;
      out[static_cast<size_t>(inferred)] = data.numel() / known;
    }
    return out;
  }
  if (op == "Squeeze" || op == "Unsqueeze") {
    std::vector<int64_t> axes = n.attrInts("axes");
    if (n.numInputs() > 1 && n.input(1) != nullptr) {
      const ir::Tensor* a = ir::constantOf(n.input(1), kSession);
      if (a == nullptr || a->dtype() != ir::DataType::kInt64) return std::nullopt;
      axes.assign(a->values<int64_t>().begin(), a->values<int64_t>().end());
    }
    const int64_t rank = static_cast<int64_t>(in.size()) + (op == "Unsqueeze" ? static_cast<int64_t>(axes.size()) : 0);
    std::vector<bool> marked(static_cast<size_t>(rank), false);
    for (int64_t a : axes) {
      if (a < -rank || a >= rank) return std::nullopt;
      marked[static_cast<size_t>(a < 0 ? a + rank : a)] = true;
    }
    std::vector<int64_t> out;
    if (op == "Unsqueeze") {
      size_t next = 0;
      for (int64_t i = 0; i < rank; ++i) out.push_back(marked[static_cast<size_t>(i)] ? 1 : in[next++]);
      return out;
    }
    for (size_t i = 0; i < in.size(); ++i) {
      const bool squeeze = axes.empty() ? in[i] == 1 : marked[i];
      if (squeeze && in[i] != 1) return std::nullopt;
      if (!squeeze) out.push_back(in[i]);
    }
    return out;
  }
  if (op == "Flatten") {
    int64_t axis = n.attrInt("axis", 1);
    const int64_t rank = static_cast<int64_t>(in.size());
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank) return std::nullopt;
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= in[static_cast<size_t>(i)];
    return std::vector<int64_t>{outer, outer == 0 ? 0 : data.numel() / outer};
  }
  return std::nullopt;
}

/// One value per output channel of `conv` (`channels` of them), broadcast from constant `c`
/// against the Conv output of rank `rank`; nullopt when c varies along another axis or would
/// change the output's shape.
std::optional<std::vector<double>> perChannel(const ir::Tensor& c, int64_t rank, int64_t channels) {
  if (c.rank() > rank) return std::nullopt;
  const std::vector<int64_t>& dims = c.dims();
  for (int64_t i = 0; i < c.rank(); ++i) {
    const int64_t axis = rank - c.rank() + i;  // the output axis this dim lines up with
    const int64_t d = dims[static_cast<size_t>(i)];
    if (d != 1 && !(axis == 1 && d == channels)) return std::nullopt;
  }
  std::vector<double> values = ir::toDoubles(c);
  if (values.size() == 1) values.assign(static_cast<size_t>(channels), values[0]);
  return values;
}

/// The bounds of a Clip, from its inputs or (before opset 11) its attributes.
std::optional<std::pair<double, double>> clipBounds(const ir::Node& clip) {
  double lo = clip.attrFloat("min", -INFINITY), hi = clip.attrFloat("max", INFINITY);
  if (clip.numInputs() > 1 && clip.input(1) != nullptr) {
    auto v = ir::scalarConstant(clip.input(1), kSession);
    if (!v) return std::nullopt;
    lo = *v;
  }
  if (clip.numInputs() > 2 && clip.input(2) != nullptr) {
    auto v = ir::scalarConstant(clip.input(2), kSession);
    if (!v) return std::nullopt;
    hi = *v;
  }
  return std::make_pair(lo, hi);
}

/// Whether `n` divides `v` by 6 (Div(v, 6) or Mul by 1/6, either order for Mul).
bool dividesBySix(const ir::Node& n, const ir::Value* v) {
  if (n.numInputs() != 2 || n.numOutputs() != 1) return false;
  if (n.opType() == "Div") return n.input(0) == v && ir::isScalarConstant(n.input(1), 6.0, 1e-6, kSession);
  if (n.opType() == "Mul") {
    const ir::Value* other = ir::otherInput(n, v);
    return other != nullptr && other != v && ir::isScalarConstant(other, 1.0 / 6.0, 1e-6, kSession);
  }
  return false;
}

/// Erases, in one pass, the initializers among `values` that nothing reads any more.
void eraseUnread(ir::Graph& graph, const std::vector<ir::Value*>& values, const Pins& pinned) {
  std::vector<ir::Value*> unread;
  std::unordered_set<const ir::Value*> seen;
  for (ir::Value* v : values) {
    if (v->isInitializer() && !v->hasUses() && !v->isGraphInput() && !v->isGraphOutput() && !pinned.kept(v) &&
        seen.insert(v).second) {
      unread.push_back(v);
    }
  }
  graph.eraseValues(unread);
}

/// The transpose of a constant (any element type but strings), or nullopt for a bad perm.
std::optional<ir::Tensor> transposed(const ir::Tensor& t, std::vector<int64_t> perm) {
  const int64_t rank = t.rank();
  if (perm.empty()) {
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int64_t>(perm.size()) != rank) return std::nullopt;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& p : perm) {
    if (p < 0) p += rank;
    if (p < 0 || p >= rank || seen[static_cast<size_t>(p)]) return std::nullopt;
    seen[static_cast<size_t>(p)] = true;
  }
  const size_t elem = ir::storageBytes(t.dtype(), 1);
  if (elem == 0 || ir::storageBytes(t.dtype(), 2) != 2 * elem) return std::nullopt;  // sub-byte types
  std::vector<int64_t> outDims(static_cast<size_t>(rank));
  std::vector<int64_t> inStrides(static_cast<size_t>(rank), 1);
  for (int64_t i = rank - 2; i >= 0; --i) inStrides[i] = inStrides[i + 1] * t.dims()[i + 1];
  for (int64_t i = 0; i < rank; ++i) outDims[i] = t.dims()[perm[i]];
  ir::Tensor out(t.dtype(), outDims);
  const std::byte* src = t.rawData();
  std::byte* dst = out.mutableRawData();
  std::vector<int64_t> index(static_cast<size_t>(rank), 0);  // over the output
  for (int64_t o = 0; o < t.numel(); ++o) {
    int64_t offset = 0;
    for (int64_t i = 0; i < rank; ++i) offset += index[i] * inStrides[perm[i]];
    std::memcpy(dst + o * elem, src + offset * elem, elem);
    for (int64_t i = rank - 1; i >= 0 && ++index[i] == outDims[i]; --i) index[i] = 0;
  }
  return out;
}

/// Bytes per element for the byte copies of the folds, or 0 for strings and sub-byte types.
size_t copyableElementBytes(ir::DataType dtype) {
  if (dtype == ir::DataType::kString) return 0;
  const size_t elem = ir::storageBytes(dtype, 1);
  return elem != 0 && ir::storageBytes(dtype, 2) == 2 * elem ? elem : 0;
}

/// The integer values of a constant int32/int64 operand, or nullopt.
std::optional<std::vector<int64_t>> constantInts(const ir::Value* v) {
  const ir::Tensor* t = ir::constantOf(v, kSession);
  if (t == nullptr) return std::nullopt;
  if (t->dtype() == ir::DataType::kInt64) return std::vector<int64_t>(t->values<int64_t>().begin(), t->values<int64_t>().end());
  if (t->dtype() == ir::DataType::kInt32) return std::vector<int64_t>(t->values<int32_t>().begin(), t->values<int32_t>().end());
  return std::nullopt;
}

/// Slice(data, starts, ends[, axes[, steps]]) of a constant with constant operands (or the
/// opset-1 attributes when the node has one input), as ONNX clamps it; nullopt when an operand
/// is not constant or not valid.
std::optional<ir::Tensor> sliced(const ir::Node& n, const ir::Tensor& data) {
  const int64_t rank = data.rank();
  const size_t elem = copyableElementBytes(data.dtype());
  if (elem == 0 || rank == 0) return std::nullopt;
  std::optional<std::vector<int64_t>> starts, ends, axes, steps;
  if (n.numInputs() == 1) {
    if (n.findAttribute("starts") == nullptr || n.findAttribute("ends") == nullptr) return std::nullopt;
    starts = n.attrInts("starts");
    ends = n.attrInts("ends");
    if (n.findAttribute("axes") != nullptr) axes = n.attrInts("axes");
  } else {
    starts = constantInts(n.input(1));
    ends = constantInts(n.input(2));
    if (n.input(3) != nullptr && !(axes = constantInts(n.input(3)))) return std::nullopt;
    if (n.input(4) != nullptr && !(steps = constantInts(n.input(4)))) return std::nullopt;
  }
  if (!starts || !ends || starts->size() != ends->size()) return std::nullopt;
  const size_t count = starts->size();
  if (!axes) {
    axes.emplace();
    for (size_t i = 0; i < count; ++i) axes->push_back(static_cast<int64_t>(i));
  }
  if (!steps) steps = std::vector<int64_t>(count, 1);
  if (axes->size() != count || steps->size() != count) return std::nullopt;
  std::vector<int64_t> first(static_cast<size_t>(rank), 0), step(static_cast<size_t>(rank), 1), outDims = data.dims();
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < count; ++i) {
    int64_t axis = (*axes)[i] < 0 ? (*axes)[i] + rank : (*axes)[i];
    if (axis < 0 || axis >= rank || seen[static_cast<size_t>(axis)] || (*steps)[i] == 0) return std::nullopt;
    seen[static_cast<size_t>(axis)] = true;
    const int64_t dim = data.dims()[static_cast<size_t>(axis)], st = (*steps)[i];
    int64_t b = (*starts)[i], e = (*ends)[i];
    if (b < 0) b += dim;
    if (e < 0) e += dim;
    if (st > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
    } else {
      b = std::clamp<int64_t>(b, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
    }
    int64_t length = st > 0 ? (e - b + st - 1) / st : (b - e - st - 1) / -st;
    outDims[static_cast<size_t>(axis)] = std::max<int64_t>(length, 0);
    first[static_cast<size_t>(axis)] = b;
    step[static_cast<size_t>(axis)] = st;
  }
  std::vector<int64_t> inStrides(static_cast<size_t>(rank), 1);
  for (int64_t i = rank - 2; i >= 0; --i) inStrides[i] = inStrides[i + 1] * data.dims()[i + 1];
  ir::Tensor out(data.dtype(), outDims);
  int64_t numel = 1;
  for (int64_t d : outDims) numel *= d;
  const std::byte* src = data.rawData();
  std::byte* dst = out.mutableRawData();
  std::vector<int64_t> index(static_cast<size_t>(rank), 0);  // over the output
  for (int64_t o = 0; o < numel; ++o) {
    int64_t offset = 0;
    for (int64_t i = 0; i < rank; ++i) offset += (first[i] + index[i] * step[i]) * inStrides[i];
    std::memcpy(dst + o * static_cast<int64_t>(elem), src + offset * static_cast<int64_t>(elem), elem);
    for (int64_t i = rank - 1; i >= 0 && ++index[i] == outDims[i]; --i) index[i] = 0;
  }
  return out;
}

/// Concat of constants of one dtype and rank along `axis`, or nullopt when they do not fit.
std::optional<ir::Tensor> concatenated(const std::vector<const ir::Tensor*>& parts, int64_t axis) {
  if (parts.empty()) return std::nullopt;
  const ir::Tensor& head = *parts.front();
  const int64_t rank = head.rank();
  const size_t elem = copyableElementBytes(head.dtype());
  if (elem == 0 || rank == 0) return std::nullopt;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return std::nullopt;
  std::vector<int64_t> dims = head.dims();
  dims[static_cast<size_t>(axis)] = 0;
  for (const ir::Tensor* t : parts) {
    if (t->dtype() != head.dtype() || t->rank() != rank) return std::nullopt;
    for (int64_t i = 0; i < rank; ++i) {
      if (i != axis && t->dims()[i] != head.dims()[i]) return std::nullopt;
    }
    dims[static_cast<size_t>(axis)] += t->dims()[static_cast<size_t>(axis)];
  }
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= dims[i];
  ir::Tensor out(head.dtype(), dims);
  std::byte* dst = out.mutableRawData();
  for (int64_t o = 0; o < outer; ++o) {
    for (const ir::Tensor* t : parts) {
      const size_t block = static_cast<size_t>(t->numel() / std::max<int64_t>(outer, 1)) * elem;
      if (block == 0) continue;
      std::memcpy(dst, t->rawData() + static_cast<size_t>(o) * block, block);
      dst += block;
    }
  }
  return out;
}

/// Above this a ConstantOfShape stays a kernel (a session would hold the filled tensor).
constexpr int64_t kMaxFilledBytes = int64_t{512} << 20;

/// The tensor ConstantOfShape(shape) makes, or nullopt.
std::optional<ir::Tensor> filled(const ir::Node& n, const ir::Tensor& shape) {
  if (shape.dtype() != ir::DataType::kInt64 || shape.rank() != 1) return std::nullopt;
  ir::Tensor value = ir::Tensor::fromVector(ir::DataType::kFloat, {1}, std::vector<float>{0.0f});
  if (const ir::Attribute* a = n.findAttribute("value")) {
    if (a->kind != ir::Attribute::Kind::kTensor || a->t.numel() != 1) return std::nullopt;
    value = a->t;
  }
  const size_t elem = ir::storageBytes(value.dtype(), 1);
  if (value.dtype() == ir::DataType::kString || elem == 0 || ir::storageBytes(value.dtype(), 2) != 2 * elem) {
    return std::nullopt;
  }
  std::vector<int64_t> dims(shape.values<int64_t>().begin(), shape.values<int64_t>().end());
  int64_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d > 0 && numel > kMaxFilledBytes / d)) return std::nullopt;
    numel *= d;
  }
  if (numel * static_cast<int64_t>(elem) > kMaxFilledBytes) return std::nullopt;
  ir::Tensor out(value.dtype(), dims);
  std::byte* dst = out.mutableRawData();
  for (int64_t i = 0; i < numel; ++i) std::memcpy(dst + i * static_cast<int64_t>(elem), value.rawData(), elem);
  return out;
}

}  // namespace

int64_t foldConstantReshapes(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  int64_t count = 0;
  std::vector<ir::Value*> sources;  // the constants read, dropped at the end when nothing else reads them
  for (ir::Node* n : graph.nodes()) {
    if (!ir::isDefaultDomainOp(*n, {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "ConstantOfShape", "Slice", "Concat"}) ||
        n->numOutputs() != 1) {
      continue;
    }
    ir::Value* out = n->output(0);
    if (n->opType() == "ConstantOfShape") {
      const ir::Tensor* shape = n->numInputs() > 0 ? ir::constantOf(n->input(0), kSession) : nullptr;
      std::optional<ir::Tensor> t =
          shape != nullptr && out != nullptr && !pinned(out) ? filled(*n, *shape) : std::nullopt;
      if (!t) continue;
      sources.push_back(n->input(0));
      ir::Value* c = graph.addInitializer(graph.uniqueValueName(out->name() + "_const"), std::move(*t));
      graph.replaceAllUsesWith(out, c);
      graph.eraseNode(n);
      ++count;
      continue;
    }
    if (n->opType() == "Concat") {
      std::vector<const ir::Tensor*> parts;
      for (const ir::Value* in : n->inputs()) {
        const ir::Tensor* t = in != nullptr ? ir::constantOf(in, kSession) : nullptr;
        if (t == nullptr) break;
        parts.push_back(t);
      }
      if (out == nullptr || pinned(out) || parts.size() != n->numInputs() || n->findAttribute("axis") == nullptr) continue;
      std::optional<ir::Tensor> t = concatenated(parts, n->attrInt("axis", 0));
      if (!t) continue;
      for (ir::Value* in : n->inputs()) sources.push_back(in);
      ir::Value* c = graph.addInitializer(graph.uniqueValueName(out->name() + "_const"), std::move(*t));
      graph.replaceAllUsesWith(out, c);
      graph.eraseNode(n);
      ++count;
      continue;
    }
    const ir::Tensor* data = n->numInputs() > 0 ? ir::constantOf(n->input(0), kSession) : nullptr;
    if (out == nullptr || data == nullptr || pinned(out) || data->dtype() == ir::DataType::kString) continue;
    if (n->opType() == "Slice") {
      std::optional<ir::Tensor> t = sliced(*n, *data);
      if (!t) continue;
      for (ir::Value* in : n->inputs()) {
        if (in != nullptr && in->isInitializer()) sources.push_back(in);
      }
      ir::Value* c = graph.addInitializer(graph.uniqueValueName(out->name() + "_const"), std::move(*t));
      graph.replaceAllUsesWith(out, c);
      graph.eraseNode(n);
      ++count;
      continue;
    }
    if (n->input(0)->isInitializer()) sources.push_back(n->input(0));
    if (n->opType() == "Transpose") {
      std::optional<ir::Tensor> t = transposed(*data, n->attrInts("perm"));
      if (!t) continue;
      ir::Value* c = graph.addInitializer(graph.uniqueValueName(out->name() + "_const"), std::move(*t));
      graph.replaceAllUsesWith(out, c);
      graph.eraseNode(n);
      ++count;
      continue;
    }
    std::optional<std::vector<int64_t>> dims = reshapedDims(*n, *data);
    if (!dims) continue;
    int64_t numel = 1;
    for (int64_t d : *dims) numel *= d;
    if (numel != data->numel()) continue;
    ir::Value* c = graph.addInitializer(graph.uniqueValueName(out->name() + "_const"),
                                        ir::Tensor(data->dtype(), *dims, data->buffer()));
    graph.replaceAllUsesWith(out, c);
    graph.eraseNode(n);
    ++count;
  }
  eraseUnread(graph, sources, pinned);
  return count;
}

int64_t foldConvAffine(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  std::vector<ir::Value*> replaced;  // weights and biases that folds replaced
  int64_t count = 0;
  for (ir::Node* op : graph.nodes()) {
    if (!ir::isDefaultDomainOp(*op, {"Add", "Sub", "Mul", "Div"}) || op->numInputs() != 2 || op->numOutputs() != 1 ||
        op->output(0) == nullptr || pinned.kept(op->output(0))) {
      continue;
    }
    // The Conv operand (for Sub and Div only the first) and the constant one.
    ir::Node* conv = nullptr;
    size_t convSlot = 0;
    for (size_t i = 0; i < 2 && conv == nullptr; ++i) {
      if ((op->opType() == "Sub" || op->opType() == "Div") && i == 1) break;
      ir::Value* in = op->input(i);
      ir::Node* p = in != nullptr ? in->producer() : nullptr;
      if (p != nullptr && ir::isDefaultDomainOp(*p, {"Conv", "ConvTranspose"}) && soleReader(in, pinned) == op) {
        conv = p;
        convSlot = i;
      }
    }
    if (conv == nullptr || conv->numOutputs() != 1 || conv->input(1) == nullptr) continue;
    const ir::Tensor* w = ir::constantOf(conv->input(1), kSession);
    const ir::Tensor* b =
        conv->numInputs() > 2 && conv->input(2) != nullptr ? ir::constantOf(conv->input(2), kSession) : nullptr;
    const ir::Tensor* c = ir::constantOf(op->input(1 - convSlot), kSession);
    if (w == nullptr || w->dtype() != ir::DataType::kFloat || w->rank() < 3 || c == nullptr ||
        c->dtype() != ir::DataType::kFloat || !isFloat32(op->output(0)) ||
        (conv->numInputs() > 2 && conv->input(2) != nullptr && (b == nullptr || b->dtype() != ir::DataType::kFloat))) {
      continue;
    }
    const int64_t channels = ir::outputChannels(*conv, *w);
    std::optional<std::vector<double>> k = perChannel(*c, w->rank(), channels);
    if (!k) continue;
    std::vector<double> bias =
        b != nullptr ? ir::toDoubles(*b) : std::vector<double>(static_cast<size_t>(channels), 0.0);
    std::vector<double> scale(static_cast<size_t>(channels), 1.0);
    const std::string& kind = op->opType();
    bool finite = true;
    for (size_t ch = 0; ch < bias.size(); ++ch) {
      const double v = (*k)[ch];
      if (kind == "Add") bias[ch] += v;
      if (kind == "Sub") bias[ch] -= v;
      if (kind == "Mul") scale[ch] = v;
      if (kind == "Div") scale[ch] = 1.0 / v;
      finite = finite && std::isfinite(scale[ch]);
      bias[ch] *= scale[ch];
    }
    if (!finite) continue;  // Div by zero stays a Div, with its infinities
    ir::Value* oldW = conv->input(1);
    ir::Value* oldB = b != nullptr ? conv->input(2) : nullptr;
    if (kind == "Mul" || kind == "Div") {
      conv->setInput(1, graph.addInitializer(graph.uniqueValueName(oldW->name() + "_affine"),
                                             ir::scaleOutputChannels(*conv, *w, scale)));
      replaced.push_back(oldW);
    }
    ir::Value* newB = graph.addInitializer(graph.uniqueValueName(op->output(0)->name() + "_bias"),
                                           ir::fromDoubles(ir::DataType::kFloat, {channels}, bias));
    if (conv->numInputs() < 3) {
      conv->addInput(newB);
    } else {
      conv->setInput(2, newB);
    }
    if (oldB != nullptr) replaced.push_back(oldB);
    ir::Value* convOut = conv->output(0);
    convOut->mutableType() = op->output(0)->type();
    graph.replaceAllUsesWith(op->output(0), convOut);
    graph.eraseNode(op);
    ++count;
  }
  eraseUnread(graph, replaced, pinned);
  return count;
}

int64_t foldBatchNormAffine(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  std::vector<ir::Value*> replaced;  // scales and biases that folds replaced
  int64_t count = 0;
  for (ir::Node* op : graph.nodes()) {
    if (!ir::isDefaultDomainOp(*op, {"Add", "Sub", "Mul", "Div"}) || op->numInputs() != 2 || op->numOutputs() != 1 ||
        op->output(0) == nullptr || pinned.kept(op->output(0)) || !isFloat32(op->output(0))) {
      continue;
    }
    ir::Node* bn = nullptr;
    size_t bnSlot = 0;
    for (size_t i = 0; i < 2 && bn == nullptr; ++i) {
      if ((op->opType() == "Sub" || op->opType() == "Div") && i == 1) break;
      ir::Value* in = op->input(i);
      ir::Node* p = in != nullptr ? in->producer() : nullptr;
      if (p != nullptr && ir::isDefaultDomainOp(*p, {"BatchNormalization"}) && soleReader(in, pinned) == op) {
        bn = p;
        bnSlot = i;
      }
    }
    if (bn == nullptr || bn->numInputs() != 5 || bn->attrInt("training_mode", 0) != 0) continue;
    bool extraOutputs = false;
    for (size_t i = 1; i < bn->numOutputs(); ++i) extraOutputs = extraOutputs || bn->output(i) != nullptr;
    const ir::Value* y = bn->output(0);
    if (extraOutputs || !y->type().shape || y->type().shape->size() < 2) continue;
    const ir::Tensor* scale = ir::constantOf(bn->input(1), kSession);
    const ir::Tensor* beta = ir::constantOf(bn->input(2), kSession);
    const ir::Tensor* c = ir::constantOf(op->input(1 - bnSlot), kSession);
    if (scale == nullptr || beta == nullptr || c == nullptr || scale->dtype() != ir::DataType::kFloat ||
        beta->dtype() != ir::DataType::kFloat || c->dtype() != ir::DataType::kFloat ||
        scale->numel() != beta->numel()) {
      continue;
    }
    const int64_t channels = scale->numel();
    std::optional<std::vector<double>> k = perChannel(*c, static_cast<int64_t>(y->type().shape->size()), channels);
    if (!k) continue;
    std::vector<double> s = ir::toDoubles(*scale), b = ir::toDoubles(*beta);
    const std::string& kind = op->opType();
    bool finite = true;
    for (size_t ch = 0; ch < s.size(); ++ch) {
      const double v = (*k)[ch];
      const double f = kind == "Mul" ? v : kind == "Div" ? 1.0 / v : 1.0;
      finite = finite && std::isfinite(f);
      s[ch] *= f;
      b[ch] = b[ch] * f + (kind == "Add" ? v : kind == "Sub" ? -v : 0.0);
    }
    if (!finite) continue;
    const std::string base = op->output(0)->name();
    replaced.push_back(bn->input(1));
    replaced.push_back(bn->input(2));
    bn->setInput(1, graph.addInitializer(graph.uniqueValueName(base + "_scale"),
                                         ir::fromDoubles(ir::DataType::kFloat, scale->dims(), s)));
    bn->setInput(2, graph.addInitializer(graph.uniqueValueName(base + "_beta"),
                                         ir::fromDoubles(ir::DataType::kFloat, beta->dims(), b)));
    ir::Value* bnOut = bn->output(0);
    bnOut->mutableType() = op->output(0)->type();
    graph.replaceAllUsesWith(op->output(0), bnOut);
    graph.eraseNode(op);
    ++count;
  }
  eraseUnread(graph, replaced, pinned);
  return count;
}

int64_t fuseBatchNormRelu(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  std::vector<ir::Node*> bns;  // collected first: each rewrite erases its node
  for (ir::Node* n : graph.nodes()) {
    if (ir::isDefaultDomainOp(*n, {"BatchNormalization"}) && n->numInputs() == 5 && n->attrInt("training_mode", 0) == 0 &&
        n->attrInt("spatial", 1) == 1) {
      bns.push_back(n);
    }
  }
  int64_t count = 0;
  for (ir::Node* bn : bns) {
    bool extraOutputs = false;
    for (size_t i = 1; i < bn->numOutputs(); ++i) extraOutputs = extraOutputs || bn->output(i) != nullptr;
    ir::Value* y = bn->output(0);
    if (extraOutputs || !isFloat32(y)) continue;
    ir::Node* relu = soleReader(y, pinned);
    if (relu == nullptr || !ir::isDefaultDomainOp(*relu, {"Relu"}) || relu->numOutputs() != 1 || relu->output(0) == nullptr ||
        pinned.kept(relu->output(0))) {
      continue;
    }
    std::vector<ir::Value*> inputs;
    for (size_t i = 0; i < 5; ++i) inputs.push_back(bn->input(i));
    ir::replaceChain(graph, {bn, relu}, relu->output(0), "BatchNormRelu", "com.whittle.internal", relu->name(), inputs,
                     {ir::Attribute::makeFloat("epsilon", bn->attrFloat("epsilon", 1e-5f))});
    ++count;
  }
  return count;
}

int64_t fuseHardSwishChains(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  // Each chain holds one Clip and erases no other: the Clips, collected first, stay valid
  // (a rewrite frees the chain's later nodes, which a walk over all nodes would still visit).
  std::vector<ir::Node*> clips;
  for (ir::Node* n : graph.nodes()) {
    if (ir::isDefaultDomainOp(*n, {"Clip"}) && n->numOutputs() == 1) clips.push_back(n);
  }
  int64_t count = 0;
  for (ir::Node* clip : clips) {
    auto bounds = clipBounds(*clip);
    if (!bounds || bounds->first != 0.0 || bounds->second != 6.0) continue;
    // Add(x, 3) before the Clip.
    ir::Value* shifted = clip->input(0);
    ir::Node* add = shifted != nullptr ? shifted->producer() : nullptr;
    if (add == nullptr || !ir::isDefaultDomainOp(*add, {"Add"}) || add->numInputs() != 2 ||
        soleReader(shifted, pinned) != clip) {
      continue;
    }
    ir::Value* x = nullptr;
    for (size_t i = 0; i < 2; ++i) {
      if (ir::isScalarConstant(add->input(1 - i), 3.0, 1e-6, kSession)) x = add->input(i);
    }
    if (!isFloat32(x) || ir::constantOf(x, kSession) != nullptr || !isFloat32(clip->output(0))) continue;
    // Then Mul by x and divide by 6, in either order.
    ir::Node* first = soleReader(clip->output(0), pinned);
    if (first == nullptr || first->numOutputs() != 1 || first->output(0) == nullptr) continue;
    ir::Node* second = nullptr;
    const bool mulFirst =
        first->opType() == "Mul" && first->numInputs() == 2 && ir::otherInput(*first, clip->output(0)) == x;
    if (mulFirst) {
      second = soleReader(first->output(0), pinned);
      if (second == nullptr || !dividesBySix(*second, first->output(0))) continue;
    } else {
      if (!dividesBySix(*first, clip->output(0))) continue;
      second = soleReader(first->output(0), pinned);
      if (second == nullptr || second->opType() != "Mul" || second->numInputs() != 2 ||
          ir::otherInput(*second, first->output(0)) != x) {
        continue;
      }
    }
    if (second->numOutputs() != 1 || second->output(0) == nullptr) continue;
    // The constants must not broadcast x to a higher rank.
    const ir::Value* y = second->output(0);
    if (pinned.kept(y)) continue;  // the lowering's other steps hold kept values by address
    if (!x->type().shape || !y->type().shape || x->type().shape->size() != y->type().shape->size()) continue;
    ir::replaceChain(graph, {add, clip, first, second}, second->output(0), "HardSwish", "", second->name(), {x}, {});
    ++count;
  }
  return count;
}

int64_t bypassIdentities(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  std::vector<ir::Node*> gone;
  for (ir::Node* n : graph.nodes()) {
    if (!ir::isDefaultDomainOp(*n, {"Identity", "Dropout"}) || n->numInputs() < 1 || n->input(0) == nullptr ||
        n->output(0) == nullptr) {
      continue;
    }
    // Dropout is the identity in inference unless it is asked for its mask or told to train.
    if (n->opType() == "Dropout" &&
        ((n->numOutputs() > 1 && n->output(1) != nullptr) || (n->numInputs() > 2 && n->input(2) != nullptr))) {
      continue;
    }
    ir::Value* x = n->input(0);
    ir::Value* y = n->output(0);
    if (pinned(y)) continue;  // a graph output, a kept value or one a subgraph reads by name
    graph.replaceAllUsesWith(y, x);
    gone.push_back(n);
  }
  for (ir::Node* n : gone) graph.eraseNode(n);
  return static_cast<int64_t>(gone.size());
}

namespace {

/// Whether `n` multiplies `v` by 0.5 (Mul by 0.5 in either order, or Div by 2).
bool halves(const ir::Node& n, const ir::Value* v) {
  if (n.numInputs() != 2 || n.numOutputs() != 1 || !n.domain().empty()) return false;
  if (n.opType() == "Div") return n.input(0) == v && ir::isScalarConstant(n.input(1), 2.0, 1e-6, kSession);
  if (n.opType() == "Mul") {
    const ir::Value* other = ir::otherInput(n, v);
    return other != nullptr && other != v && ir::isScalarConstant(other, 0.5, 1e-6, kSession);
  }
  return false;
}

/// The binary Mul node's operand that is not `v`, when `n` is such a Mul, else nullptr.
ir::Value* mulPartner(const ir::Node& n, const ir::Value* v) {
  if (!ir::isDefaultDomainOp(n, {"Mul"}) || n.numInputs() != 2 || n.numOutputs() != 1 || n.output(0) == nullptr) {
    return nullptr;
  }
  ir::Value* other = ir::otherInput(n, v);
  return other == v ? nullptr : other;
}

}  // namespace

int64_t fuseGeluChains(ir::Graph& graph, const std::vector<std::string>& keep) {
  Pins pinned(graph, keep);
  // Exporters round 1/sqrt(2) and sqrt(2) to a few digits (1.4142, 0.7071): 1e-4 relative.
  constexpr double kSqrtTol = 1e-4;
  // Each chain holds one Erf and erases no other: the Erfs, collected first, stay valid.
  std::vector<ir::Node*> erfs;
  for (ir::Node* n : graph.nodes()) {
    if (ir::isDefaultDomainOp(*n, {"Erf"}) && n->numInputs() == 1 && n->numOutputs() == 1) erfs.push_back(n);
  }
  int64_t count = 0;
  for (ir::Node* erf : erfs) {
    // t = x / sqrt(2) or x * (1 / sqrt(2)).
    ir::Value* t = erf->input(0);
    ir::Node* scale = t != nullptr ? t->producer() : nullptr;
    if (scale == nullptr || soleReader(t, pinned) != erf || scale->numInputs() != 2 || !scale->domain().empty()) {
      continue;
    }
    ir::Value* x = nullptr;
    if (scale->opType() == "Div" && ir::isScalarConstant(scale->input(1), std::sqrt(2.0), kSqrtTol, kSession)) {
      x = scale->input(0);
    } else if (scale->opType() == "Mul") {
      for (size_t i = 0; i < 2; ++i) {
        if (ir::isScalarConstant(scale->input(1 - i), 1.0 / std::sqrt(2.0), kSqrtTol, kSession)) x = scale->input(i);
      }
    }
    if (!isFloat32(x) || ir::constantOf(x, kSession) != nullptr) continue;
    // s = 1 + erf(t).
    ir::Node* add = soleReader(erf->output(0), pinned);
    if (add == nullptr || add->opType() != "Add" || add->numInputs() != 2 || add->numOutputs() != 1 ||
        add->output(0) == nullptr || !ir::isScalarConstant(ir::otherInput(*add, erf->output(0)), 1.0, 1e-6, kSession)) {
      continue;
    }
    ir::Value* s = add->output(0);
    ir::Node* m1 = soleReader(s, pinned);
    if (m1 == nullptr) continue;
    ir::Value* partner = mulPartner(*m1, s);
    if (partner == nullptr) continue;
    std::vector<ir::Node*> chain;  // the nodes that go, in graph order
    if (partner == x) {
      // (x * s) * 0.5
      ir::Node* half = soleReader(m1->output(0), pinned);
      if (half == nullptr || !halves(*half, m1->output(0))) continue;
      chain = {scale, erf, add, m1, half};
    } else if (ir::Node* h = partner->producer(); h != nullptr && halves(*h, x) && soleReader(partner, pinned) == m1) {
      // (x * 0.5) * s, the halving of x read only here
      chain = {h, scale, erf, add, m1};
    } else if (halves(*m1, s)) {
      // x * (s * 0.5)
      ir::Node* m2 = soleReader(m1->output(0), pinned);
      if (m2 == nullptr || mulPartner(*m2, m1->output(0)) != x) continue;
      chain = {scale, erf, add, m1, m2};
    } else {
      continue;
    }
    ir::Value* y = chain.back()->output(0);
    if (pinned.kept(y) || y->dtype() != ir::DataType::kFloat) continue;
    // The constants must not broadcast x to a higher rank.
    if (!x->type().shape || !y->type().shape || x->type().shape->size() != y->type().shape->size()) continue;
    ir::replaceChain(graph, chain, y, "Gelu", "", chain.back()->name(),
                     {x}, {ir::Attribute::makeString("approximate", "none")});
    ++count;
  }
  return count;
}

}  // namespace whittle::runtime
