// Shape rules of the text and ai.onnx.ml ops: StringConcat, StringSplit, StringNormalizer,
// RegexFullMatch, TfIdfVectorizer, ImageDecoder, LabelEncoder, TreeEnsemble,
// ArrayFeatureExtractor, Binarizer, LinearClassifier, LinearRegressor, Normalizer, Scaler,
// SVMClassifier, SVMRegressor, TreeEnsembleClassifier and TreeEnsembleRegressor.
#include <algorithm>

#include "ir/shape_inference_internal.h"

namespace whittle::ir::shape {
namespace {

constexpr std::string_view kMl = "ai.onnx.ml";

std::optional<SymShape> shapeOf(const NodeContext& c, size_t i) {
  return c.shape(i) ? std::optional(*c.shape(i)) : std::nullopt;
}

void stringConcat(NodeContext& c) {
  std::optional<SymShape> y;
  if (c.shape(0) && c.shape(1)) y = broadcast({c.shape(0), c.shape(1)});
  c.set(0, DataType::kString, std::move(y));
}

/// Y: X's shape and one more dim (the most substrings); Z: int64 counts of X's shape.
void stringSplit(NodeContext& c) {
  std::optional<SymShape> y = shapeOf(c, 0);
  if (y) y->push_back(SymInt());
  c.set(0, DataType::kString, std::move(y));
  c.set(1, DataType::kInt64, shapeOf(c, 0));
}

/// [C'] or [1, C']: stop words leave a count not known before running.
void stringNormalizer(NodeContext& c) {
  std::optional<SymShape> y = shapeOf(c, 0);
  if (y && !y->empty()) y->back() = SymInt();
  c.set(0, DataType::kString, std::move(y));
}

void regexFullMatch(NodeContext& c) {
  c.set(0, DataType::kBool, shapeOf(c, 0));
}

/// float [max(ngram_indexes) + 1], or [N, that].
void tfIdf(NodeContext& c) {
  std::vector<int64_t> indexes = c.node().attrInts("ngram_indexes");
  SymInt size = indexes.empty() ? SymInt() : SymInt::of(*std::max_element(indexes.begin(), indexes.end()) + 1);
  std::optional<SymShape> y;
  if (const SymShape* x = c.shape(0)) {
    y = x->size() == 2 ? SymShape{(*x)[0], size} : SymShape{size};
  }
  c.set(0, DataType::kFloat, std::move(y));
}

/// uint8 [H, W, 3] (RGB, BGR) or [H, W, 1] (Grayscale).
void imageDecoder(NodeContext& c) {
  int64_t channels = c.node().attrString("pixel_format", "RGB") == "Grayscale" ? 1 : 3;
  c.set(0, DataType::kUint8, SymShape{SymInt(), SymInt(), SymInt::of(channels)});
}

/// X's shape; the values' dtype.
void labelEncoder(NodeContext& c) {
  const Node& n = c.node();
  DataType dtype = DataType::kUndefined;
  if (n.hasAttribute("values_strings")) dtype = DataType::kString;
  if (n.hasAttribute("values_int64s")) dtype = DataType::kInt64;
  if (n.hasAttribute("values_floats")) dtype = DataType::kFloat;
  if (const Attribute* a = n.findAttribute("values_tensor")) dtype = a->t.dtype();
  c.set(0, dtype, shapeOf(c, 0));
}

SymInt rows(const NodeContext& c) {
  const SymShape* x = c.shape(0);
  if (x == nullptr) return SymInt();
  return x->size() == 2 ? (*x)[0] : SymInt::of(1);
}

/// [N, n_targets] of X's dtype.
void treeEnsemble(NodeContext& c) {
  int64_t targets = c.node().attrInt("n_targets", 0);
  c.set(0, c.dtype(0), SymShape{rows(c), targets > 0 ? SymInt::of(targets) : SymInt()});
}

/// X's shape with the last dim len(Y) ([1, len(Y)] for a 1-D X).
void arrayFeatureExtractor(NodeContext& c) {
  std::optional<SymShape> y = shapeOf(c, 0);
  const SymShape* indices = c.shape(1);
  if (y && !y->empty()) {
    if (y->size() == 1) y->insert(y->begin(), SymInt::of(1));
    y->back() = indices != nullptr ? product(*indices) : SymInt();
  }
  c.set(0, c.dtype(0), std::move(y));
}

void binarizer(NodeContext& c) {
  c.passThrough(0);
}

/// Labels [N] (int64 or string), scores float [N, classes] (2 for one row of coefficients).
void linearClassifier(NodeContext& c) {
  const Node& n = c.node();
  bool strings = n.hasAttribute("classlabels_strings");
  size_t labels =
      strings ? n.findAttribute("classlabels_strings")->strings.size() : n.attrInts("classlabels_ints").size();
  size_t intercepts = n.attrFloats("intercepts").size();
  size_t classes = intercepts == 0 ? labels : intercepts;
  int64_t scores = static_cast<int64_t>(classes == 1 && labels == 2 ? 2 : classes);
  c.set(0, strings ? DataType::kString : DataType::kInt64, SymShape{rows(c)});
  c.set(1, DataType::kFloat, SymShape{rows(c), scores > 0 ? SymInt::of(scores) : SymInt()});
}

/// Labels [N] (int64 or string), scores float [N, labels].
void treeEnsembleClassifier(NodeContext& c) {
  const Node& n = c.node();
  const Attribute* strings = n.findAttribute("classlabels_strings");
  size_t labels = strings != nullptr ? strings->strings.size() : n.attrInts("classlabels_int64s").size();
  c.set(0, strings != nullptr ? DataType::kString : DataType::kInt64, SymShape{rows(c)});
  c.set(1, DataType::kFloat, SymShape{rows(c), labels > 0 ? SymInt::of(static_cast<int64_t>(labels)) : SymInt()});
}

/// float [N, n_targets] whatever X's dtype.
void treeEnsembleRegressor(NodeContext& c) {
  int64_t targets = c.node().attrInt("n_targets", 1);
  c.set(0, DataType::kFloat, SymShape{rows(c), targets > 0 ? SymInt::of(targets) : SymInt()});
}

/// float [N, targets].
void linearRegressor(NodeContext& c) {
  int64_t targets = c.node().attrInt("targets", 1);
  c.set(0, DataType::kFloat, SymShape{rows(c), targets > 0 ? SymInt::of(targets) : SymInt()});
}

/// float [N, 1].
void svmRegressor(NodeContext& c) {
  c.set(0, DataType::kFloat, SymShape{rows(c), SymInt::of(1)});
}

/// Labels [N]; scores float [N, classes] with probabilities or the linear form, else one
/// decision value per pair of classes (2 for two classes).
void svmClassifier(NodeContext& c) {
  const Node& n = c.node();
  const Attribute* strings = n.findAttribute("classlabels_strings");
  auto classes = static_cast<int64_t>(strings != nullptr ? strings->strings.size()
                                                         : n.attrInts("classlabels_ints").size());
  std::vector<int64_t> perClass = n.attrInts("vectors_per_class");
  bool svc = std::any_of(perClass.begin(), perClass.end(), [](int64_t v) { return v > 0; });
  int64_t columns = !svc || n.hasAttribute("prob_a") ? classes : (classes > 2 ? classes * (classes - 1) / 2 : 2);
  c.set(0, strings != nullptr ? DataType::kString : DataType::kInt64, SymShape{rows(c)});
  c.set(1, DataType::kFloat, SymShape{rows(c), columns > 0 ? SymInt::of(columns) : SymInt()});
}

void normalizer(NodeContext& c) {
  c.set(0, DataType::kFloat, shapeOf(c, 0));
}

}  // namespace

void addMlRules(std::vector<RuleEntry>& rules) {
  rules.push_back({"", "StringConcat", stringConcat});
  rules.push_back({"", "StringSplit", stringSplit});
  rules.push_back({"", "StringNormalizer", stringNormalizer});
  rules.push_back({"", "RegexFullMatch", regexFullMatch});
  rules.push_back({"", "TfIdfVectorizer", tfIdf});
  rules.push_back({"", "ImageDecoder", imageDecoder});
  rules.push_back({kMl, "LabelEncoder", labelEncoder});
  rules.push_back({kMl, "TreeEnsemble", treeEnsemble});
  rules.push_back({kMl, "ArrayFeatureExtractor", arrayFeatureExtractor});
  rules.push_back({kMl, "Binarizer", binarizer});
  rules.push_back({kMl, "LinearClassifier", linearClassifier});
  rules.push_back({kMl, "Normalizer", normalizer});
  rules.push_back({kMl, "Scaler", normalizer});  // float, X's shape
  rules.push_back({kMl, "LinearRegressor", linearRegressor});
  rules.push_back({kMl, "SVMRegressor", svmRegressor});
  rules.push_back({kMl, "SVMClassifier", svmClassifier});
  rules.push_back({kMl, "TreeEnsembleClassifier", treeEnsembleClassifier});
  rules.push_back({kMl, "TreeEnsembleRegressor", treeEnsembleRegressor});
}

}  // namespace whittle::ir::shape
