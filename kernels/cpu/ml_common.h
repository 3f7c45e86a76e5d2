#pragma once
// What the ai.onnx.ml kernels share (kernels/cpu/ml.cpp, kernels/cpu/ml_trees.cpp): the post
// transforms of the classifiers and tree ensembles, the [N, C] reading of X, and the comparison
// of a tree node.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cpu/kernel_util.h"

namespace whittle::runtime::cpu::ml {

inline std::string dtypeName(ir::DataType t) {
  return std::string(ir::dataTypeName(t));
}

enum class PostTransform { kNone, kSoftmax, kLogistic, kSoftmaxZero, kProbit };

inline std::optional<PostTransform> postTransformByName(const std::string& s) {
  if (s == "NONE") return PostTransform::kNone;
  if (s == "SOFTMAX") return PostTransform::kSoftmax;
  if (s == "LOGISTIC") return PostTransform::kLogistic;
  if (s == "SOFTMAX_ZERO") return PostTransform::kSoftmaxZero;
  if (s == "PROBIT") return PostTransform::kProbit;
  return std::nullopt;
}

/// The node's post_transform attribute (default NONE); an unknown name is an error naming the node.
inline Expected<PostTransform> readPostTransform(const KernelCreateInfo& info) {
  std::string name = info.node.attrString("post_transform", "NONE");
  auto post = postTransformByName(name);
  if (!post) return info.error("post_transform '" + name + "' is not known");
  return *post;
}

/// A classifier's labels: the int64 list `intsName` (classlabels_ints, or TreeEnsembleClassifier's
/// classlabels_int64s) or classlabels_strings; exactly one of them is an error naming the node.
inline Status readClassLabels(const KernelCreateInfo& info, const std::string& intsName, std::vector<int64_t>& ints,
                              std::vector<std::string>& strings) {
  ints = info.node.attrInts(intsName);
  if (const ir::Attribute* a = info.node.findAttribute("classlabels_strings")) strings = a->strings;
  if (ints.empty() == strings.empty()) {
    return info.error("exactly one of " + intsName + " and classlabels_strings is required");
  }
  return Status::ok();
}

/// The inverse of the standard normal CDF as ONNX's ml ops define PROBIT: √2 · erfinv(2p - 1),
/// with Winitzki's approximation of erfinv (a = 0.147), as ONNX Runtime computes it.
inline double probit(double p) {
  double x = 2.0 * p - 1.0;
  double sign = x < 0 ? -1.0 : 1.0;
  double t = (1.0 - x) * (1.0 + x);
  if (t == 0) return 0;
  double log = std::log(t);
  double v = 2.0 / (std::numbers::pi * 0.147) + 0.5 * log;
  double v2 = log / 0.147;
  return 1.41421356 * sign * std::sqrt(-v + std::sqrt(v * v - v2));
}

inline double logistic(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

inline void postTransform(PostTransform kind, double* row, int64_t n) {
  switch (kind) {
    case PostTransform::kNone:
      return;
    case PostTransform::kLogistic:
      for (int64_t i = 0; i < n; ++i) row[i] = logistic(row[i]);
      return;
    case PostTransform::kProbit:
      for (int64_t i = 0; i < n; ++i) row[i] = probit(row[i]);
      return;
    case PostTransform::kSoftmax: {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, row[i]);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += row[i] = std::exp(row[i] - mx);
      for (int64_t i = 0; i < n; ++i) row[i] /= sum;
      return;
    }
    case PostTransform::kSoftmaxZero: {
      // Softmax over the non-zero scores; zeros stay (near) zero.
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, row[i]);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        row[i] = std::fabs(row[i]) > 1e-7 ? std::exp(row[i] - mx) : row[i] * std::exp(-mx);
        sum += row[i];
      }
      for (int64_t i = 0; i < n; ++i) row[i] = sum == 0 ? 0.5 : row[i] / sum;
      return;
    }
  }
}

/// How ONNX Runtime widens one score s of a two-label classifier to two columns: `mode` 0 or 1
/// (all weights non-negative: s is a probability) gives [1 - s, s]; 2 or 3 (mixed signs) gives
/// [σ(-s), σ(s)] under LOGISTIC, else [-s, s]. PROBIT transforms s alone, as does mode -1.
inline void widenBinaryScore(PostTransform post, int mode, double s, double* z) {
  z[1] = 0;
  if (post == PostTransform::kProbit) {
    z[0] = probit(s);
  } else if (mode == 0 || mode == 1) {
    z[0] = 1.0 - s;
    z[1] = s;
  } else if ((mode == 2 || mode == 3) && post == PostTransform::kLogistic) {
    z[0] = logistic(-s);
    z[1] = logistic(s);
  } else if (mode == 2 || mode == 3) {
    z[0] = -s;
    z[1] = s;
  } else {
    z[0] = s;
  }
}

/// A classifier's label output (output 0, [rows]): int64 labels written as they come, or
/// string labels gathered and set at the end.
class LabelOutput {
 public:
  LabelOutput(KernelContext& ctx, int64_t rows, const std::vector<int64_t>& ints,
              const std::vector<std::string>& strings)
      : ctx_(ctx), rows_(rows), ints_(ints), strings_(strings) {
    if (strings_.empty()) out_ = ctx.allocateOutput(0, ir::DataType::kInt64, {rows}).mutableData<int64_t>();
  }
  /// Row `row` gets label `index` (of the int64 or string labels).
  void set(int64_t row, size_t index) {
    if (out_ != nullptr) {
      out_[row] = ints_[index];
    } else {
      gathered_.push_back(strings_[index]);
    }
  }
  /// Row `row` gets the int64 value `value` itself (ONNX Runtime's literal 0/1 in places).
  void setValue(int64_t row, int64_t value) { out_[row] = value; }
  void finish() {
    if (out_ == nullptr) ctx_.setOutput(0, ir::Tensor::strings({rows_}, std::move(gathered_)));
  }

 private:
  KernelContext& ctx_;
  int64_t rows_;
  const std::vector<int64_t>& ints_;
  const std::vector<std::string>& strings_;
  int64_t* out_ = nullptr;
  std::vector<std::string> gathered_;
};

/// Rows and columns of a [N, C] or [C] input (a [C] input is one row).
inline Expected<std::pair<int64_t, int64_t>> rowsAndColumns(const KernelContext& ctx, const ir::Tensor& x) {
  if (x.rank() == 1) return std::make_pair(int64_t{1}, x.dims()[0]);
  if (x.rank() == 2) return std::make_pair(x.dims()[0], x.dims()[1]);
  return ctx.error("X must be [N, C] or [C], got " + shapeToString(x.dims()));
}

/// A tree node's test. kMember (TreeEnsemble 5) is a set lookup its caller does; kLeaf (the
/// TreeEnsembleClassifier/Regressor string mode LEAF) never branches.
enum class NodeMode : uint8_t { kLeq = 0, kLt, kGte, kGt, kEq, kNeq, kMember, kLeaf };

/// Whether a value goes to the true branch: a NaN goes there when the node says missing values
/// track true, else it takes the comparison (false for all but NEQ).
inline bool compareSplit(NodeMode mode, double x, double split, bool missingTrue) {
  if (missingTrue && std::isnan(x)) return true;
  switch (mode) {
    case NodeMode::kLeq:
      return x <= split;
    case NodeMode::kLt:
      return x < split;
    case NodeMode::kGte:
      return x >= split;
    case NodeMode::kGt:
      return x > split;
    case NodeMode::kEq:
      return x == split;
    case NodeMode::kNeq:
      return x != split;
    case NodeMode::kMember:
    case NodeMode::kLeaf:
      return false;
  }
  return false;
}

}  // namespace whittle::runtime::cpu::ml
