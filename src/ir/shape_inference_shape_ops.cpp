// Shape rules of the ops that make or change shapes: Constant, Shape, Size, ConstantOfShape,
// Range, Reshape, Flatten, Squeeze, Unsqueeze (axes as attribute before opset 13, as input
// after), Expand, EyeLike, NonZero. Shape tensors carry their values, so the shape arithmetic
// that exporters write into graphs keeps symbolic dims.
#include <algorithm>
#include <cmath>
#include <set>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

std::optional<SymShape> shapeOf(const NodeContext& c, size_t i) {
  return c.shape(i) ? std::optional(*c.shape(i)) : std::nullopt;
}

/// Rank-`n` shape of unknown dims when input `i` is a 1-D tensor of known length n.
std::optional<SymShape> unknownOfLength(const NodeContext& c, size_t i) {
  const SymShape* s = c.shape(i);
  if (s == nullptr || s->size() != 1 || !(*s)[0].isConst() || (*s)[0].value() > kMaxAttr) return std::nullopt;
  return SymShape(static_cast<size_t>((*s)[0].value()));
}

std::vector<SymInt> constants(const std::vector<int64_t>& v) {
  std::vector<SymInt> out;
  for (int64_t x : v) out.push_back(SymInt::of(x));
  return out;
}

// ---------------------------------------------------------------- constants and shapes

/// Constant: the tensor of `value`, or value_int(s) (int64), value_float(s) (float),
/// value_string(s) (string).
void constant(NodeContext& c) {
  const Node& n = c.node();
  if (const Tensor* t = constantTensor(n.output(0))) {
    SymShape dims;
    for (int64_t d : t->dims()) dims.push_back(SymInt::of(d));
    c.set(0, t->dtype(), dims);
    bool intType = t->dtype() == DataType::kInt64 || t->dtype() == DataType::kInt32;
    if (intType && t->rank() <= 1 && t->numel() <= static_cast<int64_t>(kMaxTrackedValues) &&
        t->byteSize() >= storageBytes(t->dtype(), t->numel())) {
      std::vector<SymInt> v;
      for (int64_t i = 0; i < t->numel(); ++i) {
        v.push_back(SymInt::of(t->dtype() == DataType::kInt64 ? t->data<int64_t>()[i] : t->data<int32_t>()[i]));
      }
      c.setValues(0, std::move(v));
    }
  } else if (n.hasAttribute("value_int")) {
    c.set(0, DataType::kInt64, SymShape{});
    c.setValues(0, {SymInt::of(n.attrInt("value_int", 0))});
  } else if (n.hasAttribute("value_ints")) {
    std::vector<int64_t> v = n.attrInts("value_ints");
    c.set(0, DataType::kInt64, SymShape{SymInt::of(static_cast<int64_t>(v.size()))});
    c.setValues(0, constants(v));
  } else if (n.hasAttribute("value_float")) {
    c.set(0, DataType::kFloat, SymShape{});
  } else if (n.hasAttribute("value_floats")) {
    c.set(0, DataType::kFloat, SymShape{SymInt::of(static_cast<int64_t>(n.attrFloats("value_floats").size()))});
  } else if (n.hasAttribute("value_string")) {
    c.set(0, DataType::kString, SymShape{});
  } else if (const Attribute* a = n.findAttribute("value_strings")) {
    c.set(0, DataType::kString, SymShape{SymInt::of(static_cast<int64_t>(a->strings.size()))});
  }
}

/// Shape: int64 [end - start] holding x's dims (start and end from opset 15).
void shapeOp(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) {
    c.set(0, DataType::kInt64, SymShape(1));
    return;
  }
  int64_t r = static_cast<int64_t>(x->size());
  auto clampAxis = [r](int64_t a) { return std::clamp<int64_t>(a < 0 ? a + r : a, 0, r); };
  int64_t start = clampAxis(c.node().attrInt("start", 0));
  int64_t end = clampAxis(c.node().attrInt("end", r));
  std::vector<SymInt> v(x->begin() + start, x->begin() + std::max(start, end));
  c.set(0, DataType::kInt64, SymShape{SymInt::of(static_cast<int64_t>(v.size()))});
  c.setValues(0, std::move(v));
}

/// Size: an int64 scalar, the element count.
void sizeOp(NodeContext& c) {
  c.set(0, DataType::kInt64, SymShape{});
  if (const SymShape* x = c.shape(0)) c.setValues(0, {product(*x)});
}

/// ConstantOfShape: the dims are the input's values; the type is the `value` tensor's (float
/// by default).
void constantOfShape(NodeContext& c) {
  const Attribute* a = c.node().findAttribute("value");
  bool hasValue = a != nullptr && a->kind == Attribute::Kind::kTensor;
  DataType dtype = hasValue ? a->t.dtype() : DataType::kFloat;
  const std::vector<SymInt>* dims = c.values(0);
  if (dims == nullptr) {
    c.set(0, dtype, unknownOfLength(c, 0));
    return;
  }
  SymShape y(dims->begin(), dims->end());
  c.set(0, dtype, y);
  // A small int tensor filled with the value (ConstantOfShape([n]) feeding Expand or Pad).
  bool intType = dtype == DataType::kInt64 || dtype == DataType::kInt32;
  SymInt count = product(y);
  if (intType && y.size() <= 1 && count.isConst() && count.value() <= static_cast<int64_t>(kMaxTrackedValues)) {
    int64_t fill = 0;
    if (hasValue && a->t.numel() == 1 && a->t.byteSize() >= storageBytes(dtype, 1)) {
      fill = dtype == DataType::kInt64 ? a->t.data<int64_t>()[0] : a->t.data<int32_t>()[0];
    }
    c.setValues(0, std::vector<SymInt>(static_cast<size_t>(count.value()), SymInt::of(fill)));
  }
}

/// Range: max(ceil((limit - start) / delta), 0) elements of start's type.
void range(NodeContext& c) {
  DataType dtype = c.dtype(0);
  SymShape y(1);
  auto ints = [&](size_t i) -> std::optional<int64_t> {
    auto v = c.ints(i);
    return v && v->size() == 1 ? std::optional((*v)[0]) : std::nullopt;
  };
  auto start = ints(0), limit = ints(1), delta = ints(2);
  if (start && limit && delta && *delta != 0) {
    // In double: INT64 bounds would overflow the subtraction.
    double n = std::ceil((static_cast<double>(*limit) - static_cast<double>(*start)) / static_cast<double>(*delta));
    int64_t count = n > 0 ? (n < static_cast<double>(kMaxDim) ? static_cast<int64_t>(n) : -1) : 0;
    if (count >= 0) {
      y[0] = SymInt::of(count);
      if (count <= static_cast<int64_t>(kMaxTrackedValues)) {
        std::vector<SymInt> v;
        for (int64_t k = 0; k < count; ++k) v.push_back(SymInt::of(*start + k * *delta));
        c.setValues(0, std::move(v));
      }
    }
  } else if (auto fs = c.floats(0), fl = c.floats(1), fd = c.floats(2);
             fs && fl && fd && fs->size() == 1 && fl->size() == 1 && fd->size() == 1 && (*fd)[0] != 0) {
    double n = std::ceil(((*fl)[0] - (*fs)[0]) / (*fd)[0]);
    if (n <= 0) {
      y[0] = SymInt::of(0);
    } else if (n < static_cast<double>(kMaxDim)) {
      y[0] = SymInt::of(static_cast<int64_t>(n));
    }
  } else if (start == 0 && delta == 1 && c.values(1) != nullptr && c.values(1)->size() == 1) {
    y[0] = (*c.values(1))[0];  // Range(0, seq, 1): seq elements
  }
  c.set(0, dtype, std::move(y));
}

// ---------------------------------------------------------------- reshaping

/// Reshape: the target's values; 0 copies the input dim (unless allowzero, opset 14) and one
/// -1 takes what is left.
void reshape(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const std::vector<SymInt>* target = c.values(1);
  if (target == nullptr) {
    c.set(0, c.dtype(0), unknownOfLength(c, 1));
    return;
  }
  bool allowZero = c.node().attrInt("allowzero", 0) != 0;
  SymShape y;
  std::optional<size_t> inferAt;
  for (size_t i = 0; i < target->size(); ++i) {
    const SymInt& t = (*target)[i];
    if (t.is(0) && !allowZero) {
      y.push_back(x && i < x->size() ? (*x)[i] : SymInt());
    } else if (t.is(-1) && !inferAt) {
      inferAt = i;
      y.emplace_back();
    } else {
      y.push_back(t.isValidDim() ? t : SymInt());
    }
  }
  if (inferAt && x) {
    SymInt rest = SymInt::of(1);
    for (size_t i = 0; i < y.size(); ++i) {
      if (i != *inferAt) rest = rest * y[i];
    }
    y[*inferAt] = divExact(product(*x), rest);
  }
  SymInt count = product(y);
  if (x && product(*x).isConst() && count.isConst() && product(*x).value() != count.value()) {
    c.set(0, c.dtype(0), std::nullopt);  // the element counts differ: a broken model
    return;
  }
  c.set(0, c.dtype(0), y);
  if (c.values(0) != nullptr && y.size() <= 1) c.setValues(0, *c.values(0));
}

/// Flatten: [prod(dims[:axis]), prod(dims[axis:])] (negative axis from opset 11).
void flatten(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) {
    c.set(0, c.dtype(0), SymShape(2));
    return;
  }
  int64_t r = static_cast<int64_t>(x->size());
  int64_t axis = c.node().attrInt("axis", 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r) {
    c.set(0, c.dtype(0), SymShape(2));
    return;
  }
  c.set(0, c.dtype(0), SymShape{product(*x, 0, static_cast<size_t>(axis)), product(*x, static_cast<size_t>(axis))});
}

/// The axes of Squeeze/Unsqueeze normalized for `rank`, without duplicates; nullopt when bad.
std::optional<std::set<int64_t>> axisSet(const std::vector<int64_t>& axes, int64_t rank) {
  std::set<int64_t> s;
  for (int64_t a : axes) {
    auto axis = normalizeAxis(a, rank);
    if (!axis || !s.insert(*axis).second) return std::nullopt;
  }
  return s;
}

/// Squeeze: drops the given axes, or every dim of 1 (then every dim must be known).
void squeeze(NodeContext& c) {
  const SymShape* x = c.shape(0);
  std::optional<std::vector<int64_t>> axes = c.intsAttrOrInput("axes", 1);
  bool axesGiven = c.node().hasAttribute("axes") || c.has(1);
  c.set(0, c.dtype(0), std::nullopt);
  if (x == nullptr || (axesGiven && !axes)) return;
  SymShape y;
  if (axesGiven) {
    auto s = axisSet(*axes, static_cast<int64_t>(x->size()));
    if (!s) return;
    for (size_t i = 0; i < x->size(); ++i) {
      if (!s->contains(static_cast<int64_t>(i))) y.push_back((*x)[i]);
    }
  } else {
    for (const SymInt& d : *x) {
      if (!d.isConst()) return;  // could be 1: the rank is not known
      if (!d.is(1)) y.push_back(d);
    }
  }
  c.set(0, c.dtype(0), std::move(y));
  if (c.values(0) != nullptr) c.setValues(0, *c.values(0));
}

/// Unsqueeze: inserts dims of 1 at the given axes of the output.
void unsqueeze(NodeContext& c) {
  const SymShape* x = c.shape(0);
  std::optional<std::vector<int64_t>> axes = c.intsAttrOrInput("axes", 1);
  c.set(0, c.dtype(0), std::nullopt);
  if (x == nullptr || !axes) return;
  int64_t rank = static_cast<int64_t>(x->size() + axes->size());
  auto s = axisSet(*axes, rank);
  if (!s) return;
  SymShape y;
  for (int64_t i = 0, k = 0; i < rank; ++i) y.push_back(s->contains(i) ? SymInt::of(1) : (*x)[k++]);
  c.set(0, c.dtype(0), std::move(y));
  if (c.values(0) != nullptr) c.setValues(0, *c.values(0));
}

/// Expand: x broadcast with the shape input's values.
void expand(NodeContext& c) {
  const SymShape* x = c.shape(0);
  std::optional<SymShape> target;
  if (const std::vector<SymInt>* v = c.values(1)) {
    target = SymShape();
    for (const SymInt& d : *v) target->push_back(d.isValidDim() ? d : SymInt());
  } else {
    target = unknownOfLength(c, 1);
  }
  if (x == nullptr || !target) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  auto y = broadcast({x, &*target});
  c.set(0, c.dtype(0), y);
  // A scalar or [1] expanded to a small vector.
  const std::vector<SymInt>* v = c.values(0);
  if (v != nullptr && v->size() == 1 && y && y->size() <= 1) {
    SymInt count = product(*y);
    if (count.isConst() && count.value() <= static_cast<int64_t>(kMaxTrackedValues)) {
      c.setValues(0, std::vector<SymInt>(static_cast<size_t>(count.value()), (*v)[0]));
    }
  }
}

/// EyeLike: x's shape, in `dtype` when given.
void eyeLike(NodeContext& c) {
  int64_t t = c.node().attrInt("dtype", 0);
  DataType dtype = t != 0 && isKnownDataType(static_cast<int32_t>(t)) ? static_cast<DataType>(t) : c.dtype(0);
  c.set(0, dtype, shapeOf(c, 0));
}

/// NonZero: int64 [rank, count], the count unknown.
void nonZero(NodeContext& c) {
  SymShape y(2);
  if (c.shape(0)) y[0] = SymInt::of(static_cast<int64_t>(c.shape(0)->size()));
  c.set(0, DataType::kInt64, std::move(y));
}

}  // namespace

void addShapeOpRules(std::vector<RuleEntry>& rules) {
  rules.push_back({"", "Constant", constant});
  rules.push_back({"", "Shape", shapeOp});
  rules.push_back({"", "Size", sizeOp});
  rules.push_back({"", "ConstantOfShape", constantOfShape});
  rules.push_back({"", "Range", range});
  rules.push_back({"", "Reshape", reshape});
  rules.push_back({"", "Flatten", flatten});
  rules.push_back({"", "Squeeze", squeeze});
  rules.push_back({"", "Unsqueeze", unsqueeze});
  rules.push_back({"", "Expand", expand});
  rules.push_back({"", "EyeLike", eyeLike});
  rules.push_back({"", "NonZero", nonZero});
}

}  // namespace whittle::ir::shape
