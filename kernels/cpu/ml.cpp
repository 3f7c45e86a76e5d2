// The ai.onnx.ml operators: LabelEncoder (opsets 1 to 4, keys and values as lists or, from 4,
// tensors), ArrayFeatureExtractor, Binarizer, LinearClassifier and Normalizer, LinearRegressor
// and Scaler (the tree ensembles, TreeEnsemble of opset 5 too, are in ml_trees.cpp). Plain
// reference code in double, checked against ONNX Runtime 1.32 (tests/kernels/cpu/ml_test.cpp).
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numbers>
#include <unordered_map>

#include "cpu/families.h"
#include "cpu/ml_common.h"
#include "cpu/kernel_util.h"
#include "cpu/value_io.h"

namespace whittle::runtime::cpu {
namespace {

using namespace ml;
using KernelPtr = Expected<std::unique_ptr<Kernel>>;
constexpr std::string_view kMl = "ai.onnx.ml";

Status requireNumeric(const KernelContext& ctx, const ir::Tensor& x) {
  ir::DataType t = x.dtype();
  if (t != ir::DataType::kFloat && t != ir::DataType::kDouble && t != ir::DataType::kInt32 &&
      t != ir::DataType::kInt64) {
    return ctx.error("X has dtype " + dtypeName(t) + "; float, double, int32 and int64 are supported");
  }
  return Status::ok();
}

// ---- LabelEncoder ----

/// A key or value list: strings or numbers (as double), with the dtype it came as.
struct Column {
  ir::DataType dtype = ir::DataType::kUndefined;
  std::vector<std::string> strings;
  std::vector<double> numbers;
  size_t size() const { return dtype == ir::DataType::kString ? strings.size() : numbers.size(); }
};

Column columnFromTensor(const ir::Tensor& t) {
  Column c;
  c.dtype = t.dtype();
  if (t.dtype() == ir::DataType::kString) {
    c.strings = t.stringValues();
  } else {
    for (int64_t i = 0; i < t.numel(); ++i) c.numbers.push_back(t.valueAsDouble(i));
  }
  return c;
}

/// The keys or values of a LabelEncoder: `<prefix>_strings`, `_int64s`, `_floats` or `_tensor`.
Expected<Column> readColumn(const KernelCreateInfo& info, const std::string& prefix) {
  const ir::Node& n = info.node;
  std::vector<Column> found;
  if (const ir::Attribute* a = n.findAttribute(prefix + "_strings")) {
    Column c;
    c.dtype = ir::DataType::kString;
    c.strings = a->strings;
    found.push_back(std::move(c));
  }
  if (const ir::Attribute* a = n.findAttribute(prefix + "_int64s")) {
    Column c;
    c.dtype = ir::DataType::kInt64;
    for (int64_t v : a->ints) c.numbers.push_back(static_cast<double>(v));
    found.push_back(std::move(c));
  }
  if (const ir::Attribute* a = n.findAttribute(prefix + "_floats")) {
    Column c;
    c.dtype = ir::DataType::kFloat;
    for (float v : a->floats) c.numbers.push_back(v);
    found.push_back(std::move(c));
  }
  if (const ir::Attribute* a = n.findAttribute(prefix + "_tensor")) {
    if (a->kind != ir::Attribute::Kind::kTensor) return info.error(prefix + "_tensor must be a tensor attribute");
    found.push_back(columnFromTensor(a->t));
  }
  if (found.size() != 1) {
    return info.error("exactly one of " + prefix + "_strings, " + prefix + "_int64s, " + prefix + "_floats and " +
                      prefix + "_tensor is required");
  }
  return found[0];
}

/// Orders doubles so that NaN keys find NaN inputs (every NaN is one key).
struct NumberKeyLess {
  bool operator()(double a, double b) const {
    if (std::isnan(a) || std::isnan(b)) return !std::isnan(a) && std::isnan(b);
    return a < b;
  }
};

struct LabelEncoderConfig {
  Column keys, values;
  std::string defaultString;
  double defaultNumber = 0;
  std::unordered_map<std::string, size_t> stringIndex;
  std::map<double, size_t, NumberKeyLess> numberIndex;
};

KernelPtr makeLabelEncoder(const KernelCreateInfo& info) {
  auto c = std::make_shared<LabelEncoderConfig>();
  WH_ASSIGN_OR_RETURN(c->keys, readColumn(info, "keys"));
  WH_ASSIGN_OR_RETURN(c->values, readColumn(info, "values"));
  if (c->keys.size() != c->values.size()) {
    return info.error("keys and values differ in length (" + std::to_string(c->keys.size()) + " and " +
                      std::to_string(c->values.size()) + ")");
  }
  const ir::Node& n = info.node;
  if (const ir::Attribute* d = n.findAttribute("default_tensor")) {
    if (d->kind != ir::Attribute::Kind::kTensor || d->t.numel() != 1 || d->t.dtype() != c->values.dtype) {
      return info.error("default_tensor must hold one value of the values' dtype " + dtypeName(c->values.dtype));
    }
    Column dc = columnFromTensor(d->t);
    if (dc.dtype == ir::DataType::kString) {
      c->defaultString = dc.strings[0];
    } else {
      c->defaultNumber = dc.numbers[0];
    }
  } else {
    c->defaultString = n.attrString("default_string", "_Unused");
    c->defaultNumber = ir::isFloatingPoint(c->values.dtype) ? static_cast<double>(n.attrFloat("default_float", -0.0f))
                                                            : static_cast<double>(n.attrInt("default_int64", -1));
  }
  if (c->values.dtype != ir::DataType::kString && !isDoubleStorable(c->values.dtype)) {
    return info.unsupported("values of dtype " + dtypeName(c->values.dtype) + " are not supported");
  }
  for (size_t i = 0; i < c->keys.size(); ++i) {
    if (c->keys.dtype == ir::DataType::kString) {
      c->stringIndex.emplace(c->keys.strings[i], i);
    } else {
      c->numberIndex.emplace(c->keys.numbers[i], i);
    }
  }
  return makeFunctionKernel([c](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    bool stringKeys = c->keys.dtype == ir::DataType::kString;
    if ((x.dtype() == ir::DataType::kString) != stringKeys ||
        (!stringKeys && x.dtype() != c->keys.dtype &&
         !(c->keys.dtype == ir::DataType::kInt64 && ir::isInteger(x.dtype())))) {
      return ctx.error("input dtype " + dtypeName(x.dtype()) + " does not match the keys' dtype " +
                       dtypeName(c->keys.dtype));
    }
    auto find = [&](int64_t i) -> std::optional<size_t> {
      if (stringKeys) {
        auto it = c->stringIndex.find(x.stringValues()[static_cast<size_t>(i)]);
        return it == c->stringIndex.end() ? std::nullopt : std::optional(it->second);
      }
      auto it = c->numberIndex.find(x.valueAsDouble(i));
      return it == c->numberIndex.end() ? std::nullopt : std::optional(it->second);
    };
    if (c->values.dtype == ir::DataType::kString) {
      std::vector<std::string> out(static_cast<size_t>(x.numel()));
      for (int64_t i = 0; i < x.numel(); ++i) {
        auto k = find(i);
        out[static_cast<size_t>(i)] = k ? c->values.strings[*k] : c->defaultString;
      }
      ctx.setOutput(0, ir::Tensor::strings(x.dims(), std::move(out)));
      return Status::ok();
    }
    ir::Tensor& y = ctx.allocateOutput(0, c->values.dtype, x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto k = find(i);
      storeDouble(y, i, k ? c->values.numbers[*k] : c->defaultNumber);
    }
    return Status::ok();
  });
}

// ---- ArrayFeatureExtractor ----

KernelPtr makeArrayFeatureExtractor(const KernelCreateInfo&) {
  return makeFunctionKernel([](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    const ir::Tensor& indices = ctx.input(1);
    if (x.rank() < 1) return ctx.error("X must have rank >= 1");
    if (indices.dtype() != ir::DataType::kInt64) return ctx.error("Y must be int64, got " + dtypeName(indices.dtype()));
    if (indices.numel() == 0) return ctx.error("Y must hold at least one index");
    int64_t last = x.dims().back();
    for (int64_t i = 0; i < indices.numel(); ++i) {
      int64_t k = indices.data<int64_t>()[i];
      if (k < 0 || k >= last) {
        return ctx.error("index " + std::to_string(k) + " is out of range for a last dim of " + std::to_string(last));
      }
    }
    // ONNX Runtime gives a [C] input as one row: [1, len(Y)].
    std::vector<int64_t> dims = x.dims();
    if (x.rank() == 1) dims.insert(dims.begin(), 1);
    dims.back() = indices.numel();
    int64_t rows = x.numel() / std::max<int64_t>(last, 1);
    if (x.dtype() == ir::DataType::kString) {
      std::vector<std::string> out;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < indices.numel(); ++i) {
          out.push_back(x.stringValues()[static_cast<size_t>(r * last + indices.data<int64_t>()[i])]);
        }
      }
      ctx.setOutput(0, ir::Tensor::strings(dims, std::move(out)));
      return Status::ok();
    }
    size_t es = ir::elementSize(x.dtype());
    if (es == 0) return ctx.unsupported("dtype " + dtypeName(x.dtype()) + " is not supported");
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), dims);
    std::byte* dst = y.mutableRawData();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < indices.numel(); ++i) {
        std::memcpy(dst, x.rawData() + static_cast<size_t>(r * last + indices.data<int64_t>()[i]) * es, es);
        dst += es;
      }
    }
    return Status::ok();
  });
}

// ---- Binarizer ----

KernelPtr makeBinarizer(const KernelCreateInfo& info) {
  double threshold = info.node.attrFloat("threshold", 0.0f);
  return makeFunctionKernel([threshold](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireNumeric(ctx, x));
    ir::Tensor& y = ctx.allocateOutput(0, x.dtype(), x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = x.valueAsDouble(i);
      storeDouble(y, i, std::isnan(v) ? v : (v > threshold ? 1.0 : 0.0));
    }
    return Status::ok();
  });
}

// ---- LinearClassifier ----

struct LinearClassifierConfig {
  std::vector<double> coefficients, intercepts;
  std::vector<int64_t> intLabels;
  std::vector<std::string> stringLabels;
  int64_t classes = 0;  // rows of coefficients
  PostTransform post = PostTransform::kNone;
};

KernelPtr makeLinearClassifier(const KernelCreateInfo& info) {
  const ir::Node& n = info.node;
  auto c = std::make_shared<LinearClassifierConfig>();
  for (float v : n.attrFloats("coefficients")) c->coefficients.push_back(v);
  for (float v : n.attrFloats("intercepts")) c->intercepts.push_back(v);
  WH_RETURN_IF_ERROR(readClassLabels(info, "classlabels_ints", c->intLabels, c->stringLabels));
  WH_ASSIGN_OR_RETURN(c->post, readPostTransform(info));
  int64_t labels = static_cast<int64_t>(std::max(c->intLabels.size(), c->stringLabels.size()));
  c->classes = c->intercepts.empty() ? labels : static_cast<int64_t>(c->intercepts.size());
  if (c->coefficients.empty() || c->classes < 1 || static_cast<int64_t>(c->coefficients.size()) % c->classes != 0) {
    return info.error("coefficients (" + std::to_string(c->coefficients.size()) + " values) do not split into " +
                      std::to_string(c->classes) + " classes");
  }
  if (!(c->classes == labels || (c->classes == 1 && labels == 2))) {
    return info.error(std::to_string(c->classes) + " rows of coefficients for " + std::to_string(labels) + " labels");
  }
  return makeFunctionKernel([c](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireNumeric(ctx, x));
    WH_ASSIGN_OR_RETURN(auto rc, rowsAndColumns(ctx, x));
    auto [rows, features] = rc;
    // The coefficients are read as [classes, features] with X's feature count. More of them
    // than that is accepted, the first classes x features used, as ONNX Runtime does: the
    // logistic-regression sample it ships (logreg_iris.onnx, in the corpus) has 12 coefficients
    // for 3 classes and declares X as [3, 2]. Fewer is an error.
    if (features * c->classes > static_cast<int64_t>(c->coefficients.size())) {
      return ctx.error("X has " + std::to_string(features) + " features; the coefficients hold " +
                       std::to_string(static_cast<int64_t>(c->coefficients.size()) / c->classes) + " per class");
    }
    // One row of coefficients for two labels: the scores are [-s, s] (ONNX Runtime, the reference).
    bool binary = c->classes == 1;
    int64_t scores = binary ? 2 : c->classes;
    LabelOutput labels(ctx, rows, c->intLabels, c->stringLabels);
    ir::Tensor& z = ctx.allocateOutput(1, ir::DataType::kFloat, {rows, scores});
    auto* zOut = z.mutableData<float>();
    std::vector<double> s(static_cast<size_t>(scores));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < c->classes; ++k) {
        double sum = c->intercepts.empty() ? 0.0 : c->intercepts[static_cast<size_t>(k)];
        for (int64_t f = 0; f < features; ++f) {
          sum += c->coefficients[static_cast<size_t>(k * features + f)] * x.valueAsDouble(r * features + f);
        }
        s[static_cast<size_t>(k)] = sum;
      }
      if (binary) {
        s[1] = s[0];
        s[0] = -s[0];
      }
      postTransform(c->post, s.data(), scores);
      size_t best = 0;
      for (size_t k = 1; k < s.size(); ++k) {
        if (s[k] > s[best]) best = k;
      }
      for (int64_t k = 0; k < scores; ++k) zOut[r * scores + k] = static_cast<float>(s[static_cast<size_t>(k)]);
      labels.set(r, best);
    }
    labels.finish();
    return Status::ok();
  });
}

// ---- LinearRegressor ----

KernelPtr makeLinearRegressor(const KernelCreateInfo& info) {
  const ir::Node& n = info.node;
  std::vector<float> coefficients = n.attrFloats("coefficients");
  std::vector<float> intercepts = n.attrFloats("intercepts");
  int64_t targets = n.attrInt("targets", 1);
  WH_ASSIGN_OR_RETURN(PostTransform post, readPostTransform(info));
  if (targets < 1) return info.error("targets must be positive");
  if (coefficients.empty() || static_cast<int64_t>(coefficients.size()) % targets != 0) {
    return info.error("coefficients (" + std::to_string(coefficients.size()) + " values) do not split into " +
                      std::to_string(targets) + " targets");
  }
  if (!intercepts.empty() && static_cast<int64_t>(intercepts.size()) != targets) {
    return info.error(std::to_string(intercepts.size()) + " intercepts for " + std::to_string(targets) + " targets");
  }
  return makeFunctionKernel([coefficients, intercepts, targets, post](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireNumeric(ctx, x));
    WH_ASSIGN_OR_RETURN(auto rc, rowsAndColumns(ctx, x));
    auto [rows, features] = rc;
    if (features * targets != static_cast<int64_t>(coefficients.size())) {
      return ctx.error("X has " + std::to_string(features) + " features; the coefficients hold " +
                       std::to_string(static_cast<int64_t>(coefficients.size()) / targets) + " per target");
    }
    auto* y = ctx.allocateOutput(0, ir::DataType::kFloat, {rows, targets}).mutableData<float>();
    std::vector<double> row(static_cast<size_t>(targets));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t t = 0; t < targets; ++t) {
        double sum = intercepts.empty() ? 0.0 : intercepts[static_cast<size_t>(t)];
        for (int64_t f = 0; f < features; ++f) {
          sum += static_cast<double>(coefficients[static_cast<size_t>(t * features + f)]) *
                 x.valueAsDouble(r * features + f);
        }
        row[static_cast<size_t>(t)] = sum;
      }
      // One target: ONNX Runtime applies PROBIT and no other transform (as for the tree regressor).
      if (targets > 1 || post == PostTransform::kProbit) postTransform(post, row.data(), targets);
      for (int64_t t = 0; t < targets; ++t) y[r * targets + t] = static_cast<float>(row[static_cast<size_t>(t)]);
    }
    return Status::ok();
  });
}

// ---- Scaler ----

KernelPtr makeScaler(const KernelCreateInfo& info) {
  std::vector<float> offset = info.node.attrFloats("offset"), scale = info.node.attrFloats("scale");
  if (offset.empty() || scale.empty()) return info.error("offset and scale are required");
  if (offset.size() != scale.size()) {
    return info.error("offset and scale differ in length (" + std::to_string(offset.size()) + " and " +
                      std::to_string(scale.size()) + ")");
  }
  return makeFunctionKernel([offset, scale](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireNumeric(ctx, x));
    int64_t columns = x.rank() == 0 ? 1 : x.dims().back();
    // One offset (scale) for every column, or one per column of X's last dim.
    for (const auto* v : {&offset, &scale}) {
      if (v->size() != 1 && static_cast<int64_t>(v->size()) != columns) {
        return ctx.error(std::string(v == &offset ? "offset" : "scale") + " holds " + std::to_string(v->size()) +
                         " values for " + std::to_string(columns) + " columns");
      }
    }
    auto* y = ctx.allocateOutput(0, ir::DataType::kFloat, x.dims()).mutableData<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto c = static_cast<size_t>(columns == 0 ? 0 : i % columns);
      double o = offset.size() == 1 ? offset[0] : offset[c], s = scale.size() == 1 ? scale[0] : scale[c];
      y[i] = static_cast<float>((x.valueAsDouble(i) - o) * s);
    }
    return Status::ok();
  });
}

// ---- Normalizer ----

enum class Norm { kMax, kL1, kL2 };

KernelPtr makeNormalizer(const KernelCreateInfo& info) {
  std::string name = info.node.attrString("norm", "MAX");
  Norm norm = Norm::kMax;
  if (name == "L1") {
    norm = Norm::kL1;
  } else if (name == "L2") {
    norm = Norm::kL2;
  } else if (name != "MAX") {
    return info.error("norm must be MAX, L1 or L2, got '" + name + "'");
  }
  return makeFunctionKernel([norm](KernelContext& ctx) -> Status {
    const ir::Tensor& x = ctx.input(0);
    WH_RETURN_IF_ERROR(requireNumeric(ctx, x));
    WH_ASSIGN_OR_RETURN(auto rc, rowsAndColumns(ctx, x));
    auto [rows, columns] = rc;
    ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kFloat, x.dims());
    auto* out = y.mutableData<float>();
    for (int64_t r = 0; r < rows; ++r) {
      double d = norm == Norm::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      for (int64_t k = 0; k < columns; ++k) {
        double v = x.valueAsDouble(r * columns + k);
        if (norm == Norm::kMax) d = std::max(d, v);
        if (norm == Norm::kL1) d += std::fabs(v);
        if (norm == Norm::kL2) d += v * v;
      }
      if (norm == Norm::kL2) d = std::sqrt(d);
      for (int64_t k = 0; k < columns; ++k) {
        double v = x.valueAsDouble(r * columns + k);
        out[r * columns + k] = static_cast<float>(d != 0 ? v / d : v);
      }
    }
    return Status::ok();
  });
}

}  // namespace

void registerMlKernels(KernelRegistry& r) {
  std::string ml(kMl);
  r.add(ml, "LabelEncoder", 2, makeLabelEncoder);  // version 1 (classes_strings) is not run
  r.add(ml, "ArrayFeatureExtractor", 1, makeArrayFeatureExtractor);
  r.add(ml, "Binarizer", 1, makeBinarizer);
  r.add(ml, "LinearClassifier", 1, makeLinearClassifier);
  r.add(ml, "Normalizer", 1, makeNormalizer);
  r.add(ml, "LinearRegressor", 1, makeLinearRegressor);
  r.add(ml, "Scaler", 1, makeScaler);
}

}  // namespace whittle::runtime::cpu
