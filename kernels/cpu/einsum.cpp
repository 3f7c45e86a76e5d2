// Einsum (opset 12): a general einsum over any number of operands, with ellipses (broadcast
// like numpy), repeated labels within an operand (diagonals), implicit output (the ellipsis
// dims, then the labels used once, in ASCII order) and explicit output.
//
//   1. each operand becomes a strided view with one axis per distinct label (a repeated label's
//      strides add up: the diagonal), without copying;
//   2. labels that no other operand and not the output use are summed out of their operand;
//   3. operands are contracted left to right: the pair is laid out (copyStrided) as
//      A [batch, freeA, k] and B [batch, k, freeB] and multiplied (C = A B per batch), where
//      batch labels are shared and still needed, k shared and no longer needed;
//   4. the result is laid out in the output's label order.
// float32, float64, int32, int64, uint32, uint64.
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "cpu/shape_internal.h"

namespace whittle::runtime::cpu {

namespace {

using KernelPtr = Expected<std::unique_ptr<Kernel>>;

constexpr int kEllipsisBase = 52;  // labels 0..51 are letters, ellipsis dims come after

/// A parsed equation term: letters as labels 0..51, -1 for the ellipsis.
using Term = std::vector<int>;

struct Equation {
  std::vector<Term> inputs;
  bool explicitOutput = false;
  Term output;
};

Expected<Equation> parseEquation(const std::string& text) {
  Equation eq;
  std::string s;
  for (char ch : text) {
    if (std::isspace(static_cast<unsigned char>(ch)) == 0) s += ch;
  }
  std::string lhs = s, rhs;
  size_t arrow = s.find("->");
  if (arrow != std::string::npos) {
    lhs = s.substr(0, arrow);
    rhs = s.substr(arrow + 2);
    eq.explicitOutput = true;
  }
  auto parseTerm = [&](const std::string& t) -> Expected<Term> {
    Term term;
    bool ellipsis = false;
    for (size_t i = 0; i < t.size(); ++i) {
      char ch = t[i];
      if (ch == '.') {
        if (t.compare(i, 3, "...") != 0 || ellipsis)
          return invalidInput("'" + t + "' has a stray '.' (an ellipsis is '...', once per term)");
        ellipsis = true;
        term.push_back(-1);
        i += 2;
      } else if (ch >= 'a' && ch <= 'z') {
        term.push_back(ch - 'a');
      } else if (ch >= 'A' && ch <= 'Z') {
        term.push_back(26 + (ch - 'A'));
      } else {
        return invalidInput("'" + t + "' has the character '" + std::string(1, ch) + "' (labels are letters)");
      }
    }
    return term;
  };
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    std::string part = lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    WH_ASSIGN_OR_RETURN(Term t, parseTerm(part));
    eq.inputs.push_back(std::move(t));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (eq.explicitOutput) {
    if (rhs.find(',') != std::string::npos) return invalidInput("the output term '" + rhs + "' has a ','");
    WH_ASSIGN_OR_RETURN(eq.output, parseTerm(rhs));
  }
  return eq;
}

/// An operand as a strided view (or an owned buffer) with one axis per distinct label.
template <typename T>
struct View {
  const T* data = nullptr;
  std::shared_ptr<const std::vector<T>> owned;  // when the view owns its elements (data points into it)
  std::vector<int> labels;
  std::vector<int64_t> dims;
  std::vector<int64_t> strides;  // in elements
};

template <typename T>
View<T> ownedView(std::vector<T>&& values, std::vector<int> labels, std::vector<int64_t> dims) {
  View<T> v;
  auto owned = std::make_shared<const std::vector<T>>(std::move(values));
  v.data = owned->data();
  v.owned = std::move(owned);
  v.labels = std::move(labels);
  v.dims = std::move(dims);
  v.strides = contiguousStrides(v.dims);
  return v;
}

/// Copies `v` into a contiguous buffer laid out as `labels` with `dims` (broadcasting a label
/// the view lacks or has with size 1).
template <typename T>
std::vector<T> layOut(const View<T>& v, const std::vector<int>& labels, const std::vector<int64_t>& dims) {
  std::vector<int64_t> src(labels.size(), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    for (size_t j = 0; j < v.labels.size(); ++j) {
      if (v.labels[j] == labels[i] && v.dims[j] == dims[i]) src[i] = v.strides[j];
    }
  }
  int64_t n = dimProduct(dims);
  std::vector<T> out(static_cast<size_t>(n));
  if (n == 0) return out;
  copyStrided(reinterpret_cast<std::byte*>(out.data()), reinterpret_cast<const std::byte*>(v.data), dims,
              contiguousStrides(dims), src, sizeof(T));
  return out;
}

/// `v` with every label not in `keep` summed out.
template <typename T>
View<T> sumOut(const View<T>& v, const std::vector<bool>& keep) {
  std::vector<int> labels;
  std::vector<int64_t> dims;
  for (size_t i = 0; i < v.labels.size(); ++i) {
    if (keep[static_cast<size_t>(v.labels[i])]) {
      labels.push_back(v.labels[i]);
      dims.push_back(v.dims[i]);
    }
  }
  if (labels.size() == v.labels.size()) return v;
  // Lay the view out as [kept..., summed...] and add up the rows.
  std::vector<int> order = labels;
  std::vector<int64_t> orderDims = dims;
  int64_t inner = 1;
  for (size_t i = 0; i < v.labels.size(); ++i) {
    if (!keep[static_cast<size_t>(v.labels[i])]) {
      order.push_back(v.labels[i]);
      orderDims.push_back(v.dims[i]);
      inner *= v.dims[i];
    }
  }
  std::vector<T> laid = layOut(v, order, orderDims);
  int64_t outer = dimProduct(dims);
  std::vector<T> out(static_cast<size_t>(outer), T(0));
  for (int64_t o = 0; o < outer; ++o) {
    T acc = T(0);
    const T* row = laid.data() + o * inner;
    for (int64_t i = 0; i < inner; ++i) acc += row[i];
    out[static_cast<size_t>(o)] = acc;
  }
  return ownedView(std::move(out), std::move(labels), std::move(dims));
}

/// C[b, i, j] = sum_k A[b, i, k] B[b, k, j]: oneDNN's sgemm for float32 (one call per batch,
/// threaded inside), a plain loop (vectorised over j) for the other dtypes.
template <typename T>
Status batchedMatMul(const T* a, const T* b, T* c, int64_t batch, int64_t m, int64_t k, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (k > 0) {
      for (int64_t bb = 0; bb < batch; ++bb) {
        dnnl_status_t st = dnnl_sgemm('N', 'N', m, n, k, 1.0F, a + bb * m * k, k, b + bb * k * n, n, 0.0F,
                                      c + bb * m * n, n);
        if (st != dnnl_success) return internalError("dnnl_sgemm failed with status " + std::to_string(st));
      }
      return Status::ok();
    }
  }
  std::fill(c, c + batch * m * n, T(0));
  bool parallel = batch * m > 1 && batch * m * k * n > 32768;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t bi = 0; bi < batch * m; ++bi) {
    int64_t bb = bi / m, i = bi % m;
    const T* arow = a + (bb * m + i) * k;
    T* crow = c + (bb * m + i) * n;
    const T* bmat = b + bb * k * n;
    for (int64_t q = 0; q < k; ++q) {
      T av = arow[q];
      const T* brow = bmat + q * n;
      for (int64_t j = 0; j < n; ++j) crow[j] += av * brow[j];
    }
  }
  return Status::ok();
}

template <typename T>
Expected<View<T>> contract(const View<T>& a, const View<T>& b, const std::vector<bool>& keep,
                           const std::array<int64_t, 128>& labelDim) {
  auto has = [](const View<T>& v, int l) { return std::find(v.labels.begin(), v.labels.end(), l) != v.labels.end(); };
  std::vector<int> batch, freeA, freeB, summed;
  for (int l : a.labels) {
    if (has(b, l)) {
      (keep[static_cast<size_t>(l)] ? batch : summed).push_back(l);
    } else {
      freeA.push_back(l);
    }
  }
  for (int l : b.labels) {
    if (!has(a, l)) freeB.push_back(l);
  }
  auto dimsOf = [&](const std::vector<int>& ls) {
    std::vector<int64_t> d;
    for (int l : ls) d.push_back(labelDim[static_cast<size_t>(l)]);
    return d;
  };
  auto prod = [&](const std::vector<int>& ls) {
    int64_t p = 1;
    for (int l : ls) p *= labelDim[static_cast<size_t>(l)];
    return p;
  };
  std::vector<int> la = batch, lb = batch;
  la.insert(la.end(), freeA.begin(), freeA.end());
  la.insert(la.end(), summed.begin(), summed.end());
  lb.insert(lb.end(), summed.begin(), summed.end());
  lb.insert(lb.end(), freeB.begin(), freeB.end());
  std::vector<T> ma = layOut(a, la, dimsOf(la));
  std::vector<T> mb = layOut(b, lb, dimsOf(lb));
  int64_t nb = prod(batch), m = prod(freeA), k = prod(summed), n = prod(freeB);
  std::vector<T> out(static_cast<size_t>(nb * m * n));
  if (!out.empty()) WH_RETURN_IF_ERROR(batchedMatMul(ma.data(), mb.data(), out.data(), nb, m, k, n));
  std::vector<int> labels = batch;
  labels.insert(labels.end(), freeA.begin(), freeA.end());
  labels.insert(labels.end(), freeB.begin(), freeB.end());
  return ownedView(std::move(out), labels, dimsOf(labels));
}

/// What the kernel plans from the equation and the input ranks.
struct Plan {
  std::vector<std::vector<int>> labels;  // per input, per axis (ellipsis expanded)
  std::vector<int> output;
};

Expected<Plan> planEinsum(const Equation& eq, const std::vector<const ir::Tensor*>& inputs) {
  Plan plan;
  int64_t ellipsisRank = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Term& t = eq.inputs[i];
    int64_t letters = 0;
    bool ellipsis = false;
    for (int l : t) {
      if (l < 0) {
        ellipsis = true;
      } else {
        ++letters;
      }
    }
    int64_t rank = inputs[i]->rank();
    if (ellipsis ? rank < letters : rank != letters)
      return invalidInput("input " + std::to_string(i) + " has rank " + std::to_string(rank) + " but its term has " +
                          std::to_string(letters) + " labels" + (ellipsis ? " and an ellipsis" : ""));
    if (ellipsis) ellipsisRank = std::max(ellipsisRank, rank - letters);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Term& t = eq.inputs[i];
    int64_t letters = 0;
    for (int l : t) letters += l >= 0 ? 1 : 0;
    int64_t e = inputs[i]->rank() - letters;
    std::vector<int> labels;
    for (int l : t) {
      if (l >= 0) {
        labels.push_back(l);
      } else {
        for (int64_t j = 0; j < e; ++j) labels.push_back(kEllipsisBase + static_cast<int>(ellipsisRank - e + j));
      }
    }
    plan.labels.push_back(std::move(labels));
  }
  if (eq.explicitOutput) {
    for (int l : eq.output) {
      if (l >= 0) {
        plan.output.push_back(l);
      } else {
        for (int64_t j = 0; j < ellipsisRank; ++j) plan.output.push_back(kEllipsisBase + static_cast<int>(j));
      }
    }
    std::vector<bool> seen(128, false);
    for (int l : plan.output) {
      if (seen[static_cast<size_t>(l)]) return invalidInput("the output term repeats a label");
      seen[static_cast<size_t>(l)] = true;
      bool found = false;
      for (const auto& ls : plan.labels) found = found || std::find(ls.begin(), ls.end(), l) != ls.end();
      if (!found) return invalidInput("the output term has a label that no input has");
    }
  } else {
    for (int64_t j = 0; j < ellipsisRank; ++j) plan.output.push_back(kEllipsisBase + static_cast<int>(j));
    std::array<int, 52> count{};
    for (const Term& t : eq.inputs) {
      for (int l : t) count[static_cast<size_t>(std::max(l, 0))] += l >= 0 ? 1 : 0;
    }
    // ASCII order: upper case (26..51) before lower case (0..25).
    for (int l = 26; l < 52; ++l) {
      if (count[static_cast<size_t>(l)] == 1) plan.output.push_back(l);
    }
    for (int l = 0; l < 26; ++l) {
      if (count[static_cast<size_t>(l)] == 1) plan.output.push_back(l);
    }
  }
  return plan;
}

template <typename T>
Status runEinsum(KernelContext& ctx, const Plan& plan, const std::vector<const ir::Tensor*>& inputs) {
  // The size of each label: equal across uses, or 1 (broadcast, for ellipsis dims).
  std::array<int64_t, 128> labelDim{};
  labelDim.fill(-1);
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (size_t a = 0; a < plan.labels[i].size(); ++a) {
      int l = plan.labels[i][a];
      int64_t d = inputs[i]->dims()[a];
      int64_t& cur = labelDim[static_cast<size_t>(l)];
      if (cur < 0 || cur == 1) {
        cur = d;
      } else if (d != cur && d != 1) {
        return ctx.error("a label has size " + std::to_string(cur) + " in one place and " + std::to_string(d) +
                         " in input " + std::to_string(i));
      }
    }
  }
  // 1. Strided views with one axis per distinct label.
  std::vector<View<T>> views(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    View<T>& v = views[i];
    v.data = inputs[i]->data<T>();
    std::vector<int64_t> strides = contiguousStrides(inputs[i]->dims());
    for (size_t a = 0; a < plan.labels[i].size(); ++a) {
      int l = plan.labels[i][a];
      int64_t d = inputs[i]->dims()[a];
      auto it = std::find(v.labels.begin(), v.labels.end(), l);
      if (it == v.labels.end()) {
        v.labels.push_back(l);
        v.dims.push_back(d);
        v.strides.push_back(strides[a]);
      } else {
        size_t j = static_cast<size_t>(it - v.labels.begin());
        if (v.dims[j] != d)
          return ctx.error("input " + std::to_string(i) + " repeats a label over axes of sizes " +
                           std::to_string(v.dims[j]) + " and " + std::to_string(d));
        v.strides[j] += strides[a];
      }
    }
  }
  // 2-3. Sum out private labels, contract left to right.
  auto keepAfter = [&](size_t from) {
    std::vector<bool> keep(128, false);
    for (int l : plan.output) keep[static_cast<size_t>(l)] = true;
    for (size_t j = from; j < views.size(); ++j) {
      for (int l : views[j].labels) keep[static_cast<size_t>(l)] = true;
    }
    return keep;
  };
  std::vector<bool> keep0 = keepAfter(1);
  View<T> acc = sumOut(views[0], keep0);
  for (size_t i = 1; i < views.size(); ++i) {
    std::vector<bool> keep = keepAfter(i + 1);
    // Labels of the new operand that nothing else needs are summed out first.
    std::vector<bool> keepB = keep;
    for (int l : acc.labels) keepB[static_cast<size_t>(l)] = true;
    View<T> b = sumOut(views[i], keepB);
    std::vector<bool> keepA = keep;
    for (int l : b.labels) keepA[static_cast<size_t>(l)] = true;
    acc = sumOut(acc, keepA);
    WH_ASSIGN_OR_RETURN(acc, contract(acc, b, keep, labelDim));
  }
  std::vector<bool> keepOut(128, false);
  for (int l : plan.output) keepOut[static_cast<size_t>(l)] = true;
  acc = sumOut(acc, keepOut);
  // 4. The output's label order.
  std::vector<int64_t> outDims;
  for (int l : plan.output) outDims.push_back(labelDim[static_cast<size_t>(l)]);
  ir::Tensor& y = ctx.allocateOutput(0, inputs[0]->dtype(), outDims);
  if (y.numel() == 0) return Status::ok();
  std::vector<T> laid = layOut(acc, plan.output, outDims);
  std::copy(laid.begin(), laid.end(), y.mutableData<T>());
  return Status::ok();
}

KernelPtr makeEinsum(const KernelCreateInfo& info) {
  if (!info.node.hasAttribute("equation")) return info.error("the equation attribute is missing");
  auto parsed = parseEquation(info.node.attrString("equation", ""));
  if (!parsed.isOk()) return info.error("equation " + parsed.status().message());
  Equation eq = std::move(parsed).value();
  if (eq.inputs.size() != info.node.numInputs())
    return info.error("the equation has " + std::to_string(eq.inputs.size()) + " input terms for " +
                      std::to_string(info.node.numInputs()) + " inputs");
  return makeFunctionKernel([=](KernelContext& ctx) -> Status {
    std::vector<const ir::Tensor*> inputs;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      if (!ctx.hasInput(i)) return ctx.error("input " + std::to_string(i) + " is missing");
      inputs.push_back(&ctx.input(i));
      if (inputs.back()->dtype() != inputs[0]->dtype()) return ctx.error("the inputs must share one dtype");
    }
    auto plan = planEinsum(eq, inputs);
    if (!plan.isOk()) return ctx.error(plan.status().message());
    switch (inputs[0]->dtype()) {
      case ir::DataType::kFloat: return runEinsum<float>(ctx, *plan, inputs);
      case ir::DataType::kDouble: return runEinsum<double>(ctx, *plan, inputs);
      case ir::DataType::kInt32: return runEinsum<int32_t>(ctx, *plan, inputs);
      case ir::DataType::kInt64: return runEinsum<int64_t>(ctx, *plan, inputs);
      case ir::DataType::kUint32: return runEinsum<uint32_t>(ctx, *plan, inputs);
      case ir::DataType::kUint64: return runEinsum<uint64_t>(ctx, *plan, inputs);
      default:
        return ctx.unsupported("dtype " + std::string(ir::dataTypeName(inputs[0]->dtype())) + " is not supported");
    }
  });
}

}  // namespace

void registerEinsumKernels(KernelRegistry& registry) {
  registry.add("", "Einsum", 12, makeEinsum);
}

}  // namespace whittle::runtime::cpu
