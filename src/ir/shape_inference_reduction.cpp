// Shape rules of reductions: Reduce* with axes as an attribute (every op before opset 18,
// ReduceSum before 13) or as an input (after), keepdims and noop_with_empty_axes; ArgMax and
// ArgMin.
#include <set>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

/// x's shape with `axes` reduced (kept as 1 when keepdims); every axis when `axes` is empty.
std::optional<SymShape> reduced(const SymShape& x, const std::vector<int64_t>& axes, bool keepdims) {
  int64_t rank = static_cast<int64_t>(x.size());
  std::set<int64_t> axisSet;
  for (int64_t a : axes) {
    auto axis = normalizeAxis(a, rank);
    if (!axis) return std::nullopt;
    axisSet.insert(*axis);
  }
  SymShape y;
  for (int64_t i = 0; i < rank; ++i) {
    if (!axisSet.empty() && !axisSet.contains(i)) {
      y.push_back(x[static_cast<size_t>(i)]);
    } else if (keepdims) {
      y.push_back(SymInt::of(1));
    }
  }
  return y;
}

void reduce(NodeContext& c) {
  const Node& n = c.node();
  const SymShape* x = c.shape(0);
  bool keepdims = n.attrInt("keepdims", 1) != 0;
  bool noopWhenEmpty = n.attrInt("noop_with_empty_axes", 0) != 0;
  std::optional<std::vector<int64_t>> axes;
  bool axesUnknown = false;
  if (n.hasAttribute("axes")) {
    axes = n.attrInts("axes");
  } else if (c.has(1)) {
    axes = c.ints(1);
    axesUnknown = !axes;
  } else {
    axes = std::vector<int64_t>{};
  }
  DataType dtype = c.dtype(0);
  if (x == nullptr) {
    c.set(0, dtype, std::nullopt);
    return;
  }
  if (axesUnknown) {
    // Which axes is not known: with keepdims the rank stays (dims of 1 stay 1); without, the
    // rank drops by the number of axes when that is known.
    if (keepdims) {
      SymShape y;
      for (const SymInt& d : *x) y.push_back(d.is(1) ? d : SymInt());
      c.set(0, dtype, std::move(y));
    } else if (const SymShape* a = c.shape(1); a && a->size() == 1 && (*a)[0].isConst() && (*a)[0].value() > 0 &&
                                               (*a)[0].value() <= static_cast<int64_t>(x->size())) {
      c.set(0, dtype, SymShape(x->size() - static_cast<size_t>((*a)[0].value())));
    } else {
      c.set(0, dtype, std::nullopt);
    }
    return;
  }
  if (axes->empty() && noopWhenEmpty) {
    c.passThrough(0, /*values=*/true);
    return;
  }
  c.set(0, dtype, reduced(*x, *axes, keepdims));
  // The product or sum of a shape tensor (ReduceProd(Shape(x)) is the element count).
  const std::vector<SymInt>* v = c.values(0);
  if (v != nullptr && x->size() == 1 && (c.op() == "ReduceProd" || c.op() == "ReduceSum")) {
    SymInt r = SymInt::of(c.op() == "ReduceProd" ? 1 : 0);
    for (const SymInt& e : *v) r = c.op() == "ReduceProd" ? r * e : r + e;
    c.setValues(0, {r});
  }
}

/// ArgMax, ArgMin: int64 over x with `axis` reduced.
void argReduce(NodeContext& c) {
  const SymShape* x = c.shape(0);
  bool keepdims = c.node().attrInt("keepdims", 1) != 0;
  c.set(0, DataType::kInt64, x ? reduced(*x, {c.node().attrInt("axis", 0)}, keepdims) : std::nullopt);
}

}  // namespace

void addReductionRules(std::vector<RuleEntry>& rules) {
  for (std::string_view op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}) {
    rules.push_back({"", op, reduce});
  }
  rules.push_back({"", "ArgMax", argReduce});
  rules.push_back({"", "ArgMin", argReduce});
}

}  // namespace whittle::ir::shape
