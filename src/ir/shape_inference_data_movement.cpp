// Shape rules of data movement: Transpose, Concat (and com.microsoft QLinearConcat), Split
// (split as attribute, as input from opset 13, num_outputs from 18), Slice (attributes before
// opset 10, inputs after), Gather, GatherElements, GatherND, Tile, Pad (pads as input from
// opset 11, axes from 18), Resize and Upsample (scales or sizes, axes and
// keep_aspect_ratio_policy from opset 18), DepthToSpace, SpaceToDepth, OneHot, TopK, Compress.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

constexpr std::string_view kMicrosoft = "com.microsoft";

using Ints = std::vector<int64_t>;

/// Values of input `i` as SymInts: tracked values, or nullopt.
std::optional<std::vector<SymInt>> symValues(const NodeContext& c, size_t i) {
  if (const std::vector<SymInt>* v = c.values(i)) return *v;
  return std::nullopt;
}

std::vector<SymInt> constants(const Ints& v) {
  std::vector<SymInt> out;
  for (int64_t x : v) out.push_back(SymInt::of(x));
  return out;
}

/// A shape of `rank` unknown dims, keeping x's dims except at `axes` (all axes when empty).
SymShape unknownAt(const SymShape& x, const std::set<int64_t>& axes) {
  SymShape y = x;
  for (size_t i = 0; i < y.size(); ++i) {
    if (axes.empty() || axes.contains(static_cast<int64_t>(i))) y[i] = SymInt();
  }
  return y;
}

// ---------------------------------------------------------------- Transpose, Concat, Split

void transpose(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  Ints perm = c.node().attrInts("perm");
  if (perm.empty()) {
    for (size_t i = x->size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  std::vector<bool> seen(x->size(), false);
  SymShape y;
  for (int64_t p : perm) {
    if (perm.size() != x->size() || p < 0 || p >= static_cast<int64_t>(x->size()) || seen[static_cast<size_t>(p)]) {
      c.set(0, c.dtype(0), std::nullopt);
      return;
    }
    seen[static_cast<size_t>(p)] = true;
    y.push_back((*x)[static_cast<size_t>(p)]);
  }
  c.set(0, c.dtype(0), std::move(y));
}

/// Concat of the inputs `first`, `first + stride`, ... along `axis`.
void concatOf(NodeContext& c, size_t first, size_t stride, DataType dtype) {
  std::vector<size_t> parts;
  for (size_t i = first; i < c.numInputs(); i += stride) parts.push_back(i);
  const SymShape* ref = nullptr;
  for (size_t i : parts) {
    if (c.shape(i)) ref = ref ? ref : c.shape(i);
  }
  if (ref == nullptr || parts.empty()) {
    c.set(0, dtype, std::nullopt);
    return;
  }
  c.set(0, dtype, std::nullopt);
  auto axis = normalizeAxis(c.node().attrInt("axis", 0), static_cast<int64_t>(ref->size()));
  if (!axis) return;
  SymShape y(ref->size());
  y[*axis] = SymInt::of(0);
  bool valuesKnown = c.op() == "Concat" && ref->size() == 1;
  std::vector<SymInt> values;
  for (size_t i : parts) {
    const SymShape* s = c.shape(i);
    if (s == nullptr) {
      y[*axis] = SymInt();
      valuesKnown = false;
      continue;
    }
    if (s->size() != ref->size()) {
      c.set(0, dtype, std::nullopt);
      return;
    }
    y[*axis] = y[*axis] + (*s)[*axis];
    for (size_t d = 0; d < y.size(); ++d) {
      // Other dims agree; take a known one.
      if (d != static_cast<size_t>(*axis) && (y[d].isUnknown() || (!y[d].isConst() && (*s)[d].isConst()))) {
        y[d] = (*s)[d];
      }
    }
    if (const std::vector<SymInt>* v = c.values(i); valuesKnown && v != nullptr) {
      values.insert(values.end(), v->begin(), v->end());
    } else {
      valuesKnown = false;
    }
  }
  c.set(0, dtype, std::move(y));
  if (valuesKnown) c.setValues(0, std::move(values));
}

void concat(NodeContext& c) {
  DataType dtype = DataType::kUndefined;
  for (size_t i = 0; i < c.numInputs() && dtype == DataType::kUndefined; ++i) dtype = c.dtype(i);
  concatOf(c, 0, 1, dtype);
}

/// com.microsoft QLinearConcat: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) groups.
void qlinearConcat(NodeContext& c) {
  concatOf(c, 2, 3, c.dtype(1) != DataType::kUndefined ? c.dtype(1) : c.dtype(2));
}

/// Split: sizes from `split` (attribute, or input from opset 13), else equal parts, the last
/// one smaller when the dim does not divide (num_outputs, opset 18).
void split(NodeContext& c) {
  const SymShape* x = c.shape(0);
  size_t parts = c.numOutputs();
  for (size_t i = 0; i < parts; ++i) c.set(i, c.dtype(0), std::nullopt);
  if (x == nullptr || parts == 0) return;
  auto axis = normalizeAxis(c.node().attrInt("axis", 0), static_cast<int64_t>(x->size()));
  if (!axis) return;
  std::vector<SymInt> sizes(parts);
  if (c.node().hasAttribute("split")) {
    Ints s = c.node().attrInts("split");
    if (s.size() == parts) sizes = constants(s);
  } else if (c.has(1)) {
    if (auto v = symValues(c, 1); v && v->size() == parts) sizes = *v;
  } else if (const SymInt& dim = (*x)[*axis]; dim.isConst()) {
    int64_t n = static_cast<int64_t>(parts);
    int64_t chunk = (dim.value() + n - 1) / n;
    for (size_t i = 0; i < parts; ++i) {
      int64_t begin = std::min(dim.value(), chunk * static_cast<int64_t>(i));
      sizes[i] = SymInt::of(std::min(chunk, dim.value() - begin));
    }
  } else {
    for (size_t i = 0; i < parts; ++i) sizes[i] = divExact(dim, SymInt::of(static_cast<int64_t>(parts)));
  }
  for (size_t i = 0; i < parts; ++i) {
    SymShape y = *x;
    y[*axis] = sizes[i];
    c.set(i, c.dtype(0), std::move(y));
  }
}

// ---------------------------------------------------------------- Slice

/// One sliced dim; `first` gets the first index taken when everything is constant.
SymInt sliceDim(const SymInt& dim, const SymInt& start, const SymInt& end, int64_t step, int64_t* first) {
  if (step == 0 || step == std::numeric_limits<int64_t>::min()) return {};
  if (dim.isConst() && start.isConst() && end.isConst()) {
    int64_t d = dim.value(), s = start.value(), e = end.value();
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      *first = s;
      return SymInt::of(e > s ? (e - s - 1) / step + 1 : 0);
    }
    s = std::clamp<int64_t>(s, -1, d - 1);
    e = std::clamp<int64_t>(e, -1, d - 1);
    *first = s;
    return SymInt::of(s > e ? (s - e - 1) / -step + 1 : 0);
  }
  bool startAtZero = start.is(0) || (start.isConst() && start.value() <= -kMaxDim);
  bool endAtTop = (end.isConst() && end.value() >= kMaxDim) || end == dim;
  if (step == 1 && startAtZero) {
    if (endAtTop) return dim;
    // A prefix of symbolic length (a position table sliced to the sequence length).
    if (!end.isConst() && end.isValidDim()) return end;
  }
  if (step == -1 && (start.is(-1) || (start.isConst() && start.value() >= kMaxDim)) && end.isConst() &&
      end.value() <= -kMaxDim) {
    return dim;
  }
  return {};
}

void slice(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const Node& n = c.node();
  DataType dtype = c.dtype(0);
  if (x == nullptr) {
    c.set(0, dtype, std::nullopt);
    return;
  }
  int64_t rank = static_cast<int64_t>(x->size());
  std::optional<std::vector<SymInt>> starts, ends;
  std::optional<Ints> axes, steps;
  bool axesUnknown = false;
  if (c.opset() < 10 || n.hasAttribute("starts")) {
    starts = constants(n.attrInts("starts"));
    ends = constants(n.attrInts("ends"));
    if (n.hasAttribute("axes")) axes = n.attrInts("axes");
  } else {
    starts = symValues(c, 1);
    ends = symValues(c, 2);
    if (c.has(3)) {
      axes = c.ints(3);
      axesUnknown = !axes;
    }
    if (c.has(4)) steps = c.ints(4);
    if (c.has(4) && !steps) {
      starts.reset();  // unknown steps: only the rank and the untouched dims are known
    }
  }
  size_t count = starts ? starts->size() : 0;
  if (!starts) {
    if (auto len = c.shape(1); len && len->size() == 1 && (*len)[0].isConst())
      count = static_cast<size_t>((*len)[0].value());
  }
  if (!axes && !axesUnknown) {
    axes = Ints(std::min<size_t>(count, static_cast<size_t>(rank)));
    std::iota(axes->begin(), axes->end(), 0);
  }
  std::set<int64_t> axisSet;
  if (axes) {
    for (int64_t a : *axes) {
      auto axis = normalizeAxis(a, rank);
      if (!axis) {
        c.set(0, dtype, std::nullopt);
        return;
      }
      axisSet.insert(*axis);
    }
  }
  if (!starts || !ends || !axes || starts->size() != ends->size() || axes->size() != starts->size() ||
      (steps && steps->size() != starts->size())) {
    c.set(0, dtype, unknownAt(*x, axes ? axisSet : std::set<int64_t>{}));
    return;
  }
  SymShape y = *x;
  std::vector<std::array<int64_t, 2>> ranges(x->size(), {0, 1});  // first index and step per axis
  bool exact = true;
  for (size_t i = 0; i < axes->size(); ++i) {
    size_t axis = static_cast<size_t>(*normalizeAxis((*axes)[i], rank));
    int64_t step = steps ? (*steps)[i] : 1;
    int64_t first = 0;
    y[axis] = sliceDim((*x)[axis], (*starts)[i], (*ends)[i], step, &first);
    exact = exact && y[axis].isConst();
    ranges[axis] = {first, step};
  }
  c.set(0, dtype, y);
  const std::vector<SymInt>* v = c.values(0);
  if (v != nullptr && exact && x->size() == 1 && (*x)[0].is(static_cast<int64_t>(v->size()))) {
    std::vector<SymInt> out;
    for (int64_t k = 0; k < y[0].value(); ++k) {
      int64_t at = ranges[0][0] + k * ranges[0][1];
      if (at < 0 || at >= static_cast<int64_t>(v->size())) return;
      out.push_back((*v)[static_cast<size_t>(at)]);
    }
    c.setValues(0, std::move(out));
  }
}

// ---------------------------------------------------------------- Gather

/// Gather: data[:axis] + indices + data[axis+1:]; the values of a gathered shape tensor.
void gather(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* idx = c.shape(1);
  c.set(0, c.dtype(0), std::nullopt);
  if (x == nullptr || idx == nullptr || x->empty()) return;
  auto axis = normalizeAxis(c.node().attrInt("axis", 0), static_cast<int64_t>(x->size()));
  if (!axis) return;
  SymShape y(x->begin(), x->begin() + *axis);
  y.insert(y.end(), idx->begin(), idx->end());
  y.insert(y.end(), x->begin() + *axis + 1, x->end());
  c.set(0, c.dtype(0), std::move(y));
  const std::vector<SymInt>* data = c.values(0);
  auto indices = c.ints(1);
  if (data != nullptr && indices && x->size() == 1) {
    std::vector<SymInt> v;
    for (int64_t i : *indices) {
      auto k = normalizeAxis(i, static_cast<int64_t>(data->size()));
      if (!k) return;
      v.push_back((*data)[static_cast<size_t>(*k)]);
    }
    c.setValues(0, std::move(v));
  }
}

/// com.microsoft GatherBlockQuantized: like Gather along gather_axis, in the scales' type; uint8
/// data with bits = 4 holds two values a byte along its last axis.
void gatherBlockQuantized(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* idx = c.shape(1);
  c.set(0, c.dtype(2), std::nullopt);
  if (x == nullptr || idx == nullptr || x->empty()) return;
  SymShape dims = *x;
  if (c.dtype(0) == DataType::kUint8 && c.node().attrInt("bits", 4) == 4) dims.back() = dims.back() * SymInt::of(2);
  auto axis = normalizeAxis(c.node().attrInt("gather_axis", 0), static_cast<int64_t>(dims.size()));
  if (!axis) return;
  SymShape y(dims.begin(), dims.begin() + *axis);
  y.insert(y.end(), idx->begin(), idx->end());
  y.insert(y.end(), dims.begin() + *axis + 1, dims.end());
  c.set(0, c.dtype(2), std::move(y));
}

/// GatherElements: the indices' shape, the data's type.
void gatherElements(NodeContext& c) {
  c.set(0, c.dtype(0), c.shape(1) ? std::optional(*c.shape(1)) : std::nullopt);
}

/// GatherND: indices[:-1] + data[batch_dims + indices[-1]:].
void gatherNd(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const SymShape* idx = c.shape(1);
  int64_t b = c.node().attrInt("batch_dims", 0);
  c.set(0, c.dtype(0), std::nullopt);
  if (x == nullptr || idx == nullptr || idx->empty() || !idx->back().isConst() || b < 0) return;
  int64_t last = idx->back().value();
  if (b + last > static_cast<int64_t>(x->size())) return;
  SymShape y(idx->begin(), idx->end() - 1);
  y.insert(y.end(), x->begin() + b + last, x->end());
  c.set(0, c.dtype(0), std::move(y));
}

/// Compress: the axis (or the flattened input) gets an unknown length.
void compress(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (!c.node().hasAttribute("axis")) {
    c.set(0, c.dtype(0), SymShape(1));
    return;
  }
  c.set(0, c.dtype(0), std::nullopt);
  if (x == nullptr) return;
  auto axis = normalizeAxis(c.node().attrInt("axis", 0), static_cast<int64_t>(x->size()));
  if (!axis) return;
  c.set(0, c.dtype(0), unknownAt(*x, {*axis}));
}

// ---------------------------------------------------------------- Tile, Pad

void tile(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  auto reps = symValues(c, 1);
  SymShape y(x->size());
  if (reps && reps->size() == x->size()) {
    for (size_t i = 0; i < y.size(); ++i) y[i] = (*x)[i] * (*reps)[i];
  }
  c.set(0, c.dtype(0), std::move(y));
}

/// Pad: each padded dim grows by its begin and end pads (attribute before opset 11, input
/// after; the axes input from 18).
void pad(NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  int64_t rank = static_cast<int64_t>(x->size());
  std::optional<std::vector<SymInt>> pads;
  if (c.node().hasAttribute("pads")) {
    pads = constants(c.node().attrInts("pads"));
  } else {
    pads = symValues(c, 1);
  }
  std::optional<Ints> axes;
  if (c.has(3)) {
    axes = c.ints(3);
  } else {
    axes = Ints(static_cast<size_t>(rank));
    std::iota(axes->begin(), axes->end(), 0);
  }
  if (!pads || !axes || pads->size() != 2 * axes->size()) {
    c.set(0, c.dtype(0), unknownAt(*x, {}));
    return;
  }
  SymShape y = *x;
  for (size_t i = 0; i < axes->size(); ++i) {
    auto a = normalizeAxis((*axes)[i], rank);
    if (!a) {
      c.set(0, c.dtype(0), unknownAt(*x, {}));
      return;
    }
    y[static_cast<size_t>(*a)] = y[static_cast<size_t>(*a)] + (*pads)[i] + (*pads)[i + axes->size()];
  }
  c.set(0, c.dtype(0), std::move(y));
}

// ---------------------------------------------------------------- Resize, Upsample

/// floor(dim * scale); a symbolic dim scaled by a whole number stays symbolic.
SymInt scaled(const SymInt& dim, double scale) {
  if (!(scale >= 0 && scale < 0x1p40)) return {};  // also rejects NaN
  if (dim.isConst()) {
    double size = std::floor(static_cast<double>(dim.value()) * scale);
    return size < static_cast<double>(kMaxDim) ? SymInt::of(static_cast<int64_t>(size)) : SymInt();
  }
  if (scale >= 1 && scale == std::floor(scale)) return dim * SymInt::of(static_cast<int64_t>(scale));
  return {};
}

void resize(NodeContext& c) {
  const SymShape* x = c.shape(0);
  const Node& n = c.node();
  if (x == nullptr) {
    c.set(0, c.dtype(0), std::nullopt);
    return;
  }
  int64_t rank = static_cast<int64_t>(x->size());
  bool upsample = c.op() == "Upsample";
  bool v11 = !upsample && c.opset() >= 11;
  Ints axes = n.attrInts("axes");
  if (axes.empty()) {
    axes.resize(static_cast<size_t>(rank));
    std::iota(axes.begin(), axes.end(), 0);
  }
  for (int64_t& a : axes) {
    auto axis = normalizeAxis(a, rank);
    if (!axis) return c.set(0, c.dtype(0), unknownAt(*x, {}));
    a = *axis;
  }
  SymShape y = *x;
  std::set<int64_t> axisSet(axes.begin(), axes.end());
  // sizes (input 3, opset 11 on), unless empty.
  if (auto sizes = v11 ? symValues(c, 3) : std::nullopt; sizes && !sizes->empty()) {
    if (sizes->size() != axes.size()) return c.set(0, c.dtype(0), unknownAt(*x, axisSet));
    std::string policy = n.attrString("keep_aspect_ratio_policy", "stretch");
    if (policy == "not_larger" || policy == "not_smaller") {
      double scale = policy == "not_larger" ? 1e300 : 0;
      for (size_t i = 0; i < axes.size(); ++i) {
        const SymInt& in = (*x)[static_cast<size_t>(axes[i])];
        if (!in.isConst() || !(*sizes)[i].isConst() || in.value() == 0)
          return c.set(0, c.dtype(0), unknownAt(*x, axisSet));
        double s = static_cast<double>((*sizes)[i].value()) / static_cast<double>(in.value());
        scale = policy == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (int64_t a : axes) {
        y[static_cast<size_t>(a)] =
            SymInt::of(std::llround(scale * static_cast<double>((*x)[static_cast<size_t>(a)].value())));
      }
    } else {
      for (size_t i = 0; i < axes.size(); ++i) y[static_cast<size_t>(axes[i])] = (*sizes)[i];
    }
    c.set(0, c.dtype(0), std::move(y));
    return;
  }
  std::optional<std::vector<double>> scales;
  if (upsample && n.hasAttribute("scales")) {
    std::vector<float> f = n.attrFloats("scales");
    scales = std::vector<double>(f.begin(), f.end());
  } else {
    scales = c.floats(v11 ? 2 : 1);
  }
  if (!scales || scales->size() != axes.size()) return c.set(0, c.dtype(0), unknownAt(*x, axisSet));
  // tf_crop_and_resize scales the region of interest, not the whole input.
  std::optional<std::vector<double>> roi;
  if (v11 && n.attrString("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize") {
    roi = c.floats(1);
    if (!roi || roi->size() != 2 * axes.size()) return c.set(0, c.dtype(0), unknownAt(*x, axisSet));
  }
  for (size_t i = 0; i < axes.size(); ++i) {
    double s = (*scales)[i];
    if (roi) s *= (*roi)[i + axes.size()] - (*roi)[i];
    y[static_cast<size_t>(axes[i])] = scaled((*x)[static_cast<size_t>(axes[i])], s);
  }
  c.set(0, c.dtype(0), std::move(y));
}

// ---------------------------------------------------------------- the rest

/// DepthToSpace: [N, C / b^2, H * b, W * b]; SpaceToDepth the reverse.
void depthSpace(NodeContext& c) {
  const SymShape* x = c.shape(0);
  int64_t b = c.node().attrInt("blocksize", 0);
  if (x == nullptr || x->size() != 4 || b <= 0 || b > kMaxAttr) {
    c.set(0, c.dtype(0), x ? std::optional(SymShape(x->size())) : std::nullopt);
    return;
  }
  SymInt bs = SymInt::of(b), b2 = SymInt::of(b * b);
  const SymShape& s = *x;
  if (c.op() == "DepthToSpace") {
    c.set(0, c.dtype(0), SymShape{s[0], divExact(s[1], b2), s[2] * bs, s[3] * bs});
  } else {
    c.set(0, c.dtype(0), SymShape{s[0], s[1] * b2, divExact(s[2], bs), divExact(s[3], bs)});
  }
}

/// OneHot: the indices' shape with `depth` inserted at `axis`, in the values' type.
void oneHot(NodeContext& c) {
  const SymShape* idx = c.shape(0);
  c.set(0, c.dtype(2), std::nullopt);
  if (idx == nullptr) return;
  auto axis = normalizeAxis(c.node().attrInt("axis", -1), static_cast<int64_t>(idx->size()) + 1);
  if (!axis) return;
  SymInt depth;
  if (auto d = c.floats(1); d && d->size() == 1 && (*d)[0] >= 0 && (*d)[0] < static_cast<double>(kMaxDim)) {
    depth = SymInt::of(static_cast<int64_t>((*d)[0]));
  } else if (const std::vector<SymInt>* v = c.values(1); v && v->size() == 1) {
    depth = (*v)[0];
  }
  SymShape y = *idx;
  y.insert(y.begin() + *axis, depth);
  c.set(0, c.dtype(2), std::move(y));
}

/// TopK: X with `axis` cut to k (attribute before opset 10, input after); values and int64
/// indices.
void topK(NodeContext& c) {
  const SymShape* x = c.shape(0);
  c.set(0, c.dtype(0), std::nullopt);
  c.set(1, DataType::kInt64, std::nullopt);
  if (x == nullptr) return;
  auto axis = normalizeAxis(c.node().attrInt("axis", -1), static_cast<int64_t>(x->size()));
  if (!axis) return;
  SymInt k;
  if (c.node().hasAttribute("k")) {
    k = SymInt::of(c.node().attrInt("k", 0));
  } else if (const std::vector<SymInt>* v = c.values(1); v && v->size() == 1) {
    k = (*v)[0];
  }
  SymShape y = *x;
  y[*axis] = k;
  c.set(0, c.dtype(0), y);
  c.set(1, DataType::kInt64, y);
}

}  // namespace

void addDataMovementRules(std::vector<RuleEntry>& rules) {
  rules.push_back({"", "Transpose", transpose});
  rules.push_back({"", "Concat", concat});
  rules.push_back({kMicrosoft, "QLinearConcat", qlinearConcat});
  rules.push_back({"", "Split", split});
  rules.push_back({"", "Slice", slice});
  rules.push_back({"", "Gather", gather});
  rules.push_back({kMicrosoft, "GatherBlockQuantized", gatherBlockQuantized});
  rules.push_back({"", "GatherElements", gatherElements});
  rules.push_back({"", "GatherND", gatherNd});
  rules.push_back({"", "Compress", compress});
  rules.push_back({"", "Tile", tile});
  rules.push_back({"", "Pad", pad});
  rules.push_back({"", "Resize", resize});
  rules.push_back({"", "Upsample", resize});
  rules.push_back({"", "DepthToSpace", depthSpace});
  rules.push_back({"", "SpaceToDepth", depthSpace});
  rules.push_back({"", "OneHot", oneHot});
  rules.push_back({"", "TopK", topK});
}

}  // namespace whittle::ir::shape
