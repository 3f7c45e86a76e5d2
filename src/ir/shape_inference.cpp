// Shape inference: symbolic integers, the driver that walks the graph and merges what the
// rules infer with what the model declares, and the one explicit list of rule families.
#include "whittle/ir/shape_inference.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "ir/shape_inference_internal.h"

namespace whittle::ir {
namespace shape {
namespace {

// Symbols that inference makes up for dims it cannot name (an unnamed input dim, a Conv output
// of a symbolic size) start with this byte. They relate values within one run (a Reshape back
// to a Shape taken earlier) and are never written to the IR.
constexpr char kHiddenMark = '\x01';
// Products of more symbols than this are not followed.
constexpr size_t kMaxSymbols = 8;

bool isHidden(const std::string& symbol) {
  return !symbol.empty() && symbol[0] == kHiddenMark;
}

}  // namespace

// ---------------------------------------------------------------- SymInt

SymInt SymInt::of(int64_t v) {
  SymInt s;
  s.known_ = true;
  s.coeff_ = v;
  return s;
}

SymInt SymInt::symbol(std::string name) {
  SymInt s;
  s.known_ = true;
  s.coeff_ = 1;
  s.syms_.push_back(std::move(name));
  return s;
}

SymInt SymInt::fromDim(const Dim& d) {
  if (d.isKnown()) return of(d.value);
  return d.param.empty() ? SymInt() : symbol(d.param);
}

bool SymInt::isValidDim() const {
  if (!known_) return false;
  return syms_.empty() ? coeff_ >= 0 && coeff_ <= kMaxDim : coeff_ > 0;
}

Dim SymInt::toDim() const {
  if (isConst() && coeff_ >= 0) return Dim::known(coeff_);
  if (isSymbol() && !isHidden(syms_[0])) return Dim::symbolic(syms_[0]);
  return Dim{};
}

bool operator==(const SymInt& a, const SymInt& b) {
  return a.known_ && b.known_ && a.coeff_ == b.coeff_ && a.syms_ == b.syms_;
}

SymInt operator*(const SymInt& a, const SymInt& b) {
  if (a.is(0) || b.is(0)) return SymInt::of(0);
  if (a.isUnknown() || b.isUnknown()) return {};
  SymInt r;
  if (__builtin_mul_overflow(a.coeff_, b.coeff_, &r.coeff_)) return {};
  if (a.syms_.size() + b.syms_.size() > kMaxSymbols) return {};
  r.known_ = true;
  std::merge(a.syms_.begin(), a.syms_.end(), b.syms_.begin(), b.syms_.end(), std::back_inserter(r.syms_));
  return r;
}

SymInt operator+(const SymInt& a, const SymInt& b) {
  if (a.isUnknown() || b.isUnknown()) return {};
  if (b.is(0)) return a;
  if (a.is(0)) return b;
  if (a.syms_ != b.syms_) return {};
  SymInt r = a;
  if (__builtin_add_overflow(a.coeff_, b.coeff_, &r.coeff_)) return {};
  if (r.coeff_ == 0) return SymInt::of(0);
  return r;
}

SymInt operator-(const SymInt& a, const SymInt& b) {
  if (a.isUnknown() || b.isUnknown()) return {};
  if (b.is(0)) return a;
  if (a.syms_ != b.syms_) return {};
  SymInt r = a;
  if (__builtin_sub_overflow(a.coeff_, b.coeff_, &r.coeff_)) return {};
  if (r.coeff_ == 0) return SymInt::of(0);
  return r;
}

SymInt divExact(const SymInt& a, const SymInt& b) {
  if (a.isUnknown() || b.isUnknown() || b.coeff_ == 0) return {};
  if (b.coeff_ == -1 && a.coeff_ == std::numeric_limits<int64_t>::min()) return {};
  if (a.coeff_ % b.coeff_ != 0) return {};
  if (!std::includes(a.syms_.begin(), a.syms_.end(), b.syms_.begin(), b.syms_.end())) return {};
  SymInt r;
  r.known_ = true;
  r.coeff_ = a.coeff_ / b.coeff_;
  std::set_difference(a.syms_.begin(), a.syms_.end(), b.syms_.begin(), b.syms_.end(), std::back_inserter(r.syms_));
  if (r.coeff_ == 0) r.syms_.clear();
  return r;
}

std::string SymInt::str() const {
  if (!known_) return "?";
  std::string s = syms_.empty() || coeff_ != 1 ? std::to_string(coeff_) : "";
  for (const std::string& sym : syms_) {
    if (!s.empty()) s += "*";
    s += isHidden(sym) ? "?" + sym.substr(1) : sym;
  }
  return s;
}

SymInt product(const SymShape& dims, size_t from, size_t to) {
  SymInt p = SymInt::of(1);
  for (size_t i = from; i < std::min(to, dims.size()); ++i) p = p * dims[i];
  return p;
}

// ---------------------------------------------------------------- helpers for rules

const Tensor* constantTensor(const Value* v) {
  if (v == nullptr) return nullptr;
  if (v->constant() != nullptr) return v->constant();
  const Node* p = v->producer();
  if (p == nullptr || p->opType() != "Constant" || !(p->domain().empty() || p->domain() == "ai.onnx")) return nullptr;
  const Attribute* a = p->findAttribute("value");
  return a != nullptr && a->kind == Attribute::Kind::kTensor ? &a->t : nullptr;
}

std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

std::optional<SymShape> broadcast(const std::vector<const SymShape*>& shapes) {
  size_t rank = 0;
  for (const SymShape* s : shapes) rank = std::max(rank, s->size());
  SymShape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    std::optional<int64_t> known;
    std::vector<const SymInt*> others;  // dims that are not the constant 1
    for (const SymShape* s : shapes) {
      if (i < rank - s->size()) continue;  // a missing leading dim is 1
      const SymInt& d = (*s)[i - (rank - s->size())];
      if (d.is(1)) continue;
      if (d.isConst()) {
        if (known && *known != d.value()) return std::nullopt;
        known = d.value();
      }
      others.push_back(&d);
    }
    if (known) {
      out[i] = SymInt::of(*known);
    } else if (others.empty()) {
      out[i] = SymInt::of(1);
    } else {
      bool same = std::all_of(others.begin(), others.end(), [&](const SymInt* d) { return *d == *others[0]; });
      out[i] = same || others.size() == 1 ? *others[0] : SymInt();
    }
  }
  return out;
}

SymInt windowOutput(const SymInt& input, int64_t kernel, int64_t stride, int64_t dilation, int64_t padBegin,
                    int64_t padEnd, std::string_view autoPad, bool ceilMode) {
  if (input.isConst()) {
    if (!input.isValidDim()) return {};
    return SymInt::of(convOutputSize(input.value(), kernel, stride, dilation, padBegin, padEnd, autoPad, ceilMode));
  }
  if (input.isUnknown()) return {};
  for (int64_t v : {kernel, stride, dilation, padBegin, padEnd}) {
    if (v < -kMaxAttr || v > kMaxAttr) return {};
  }
  if (stride != 1 || kernel <= 0 || dilation <= 0) return {};
  if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") return input;
  if (autoPad == "VALID") padBegin = padEnd = 0;
  return padBegin + padEnd == (kernel - 1) * dilation ? input : SymInt();
}

// ---------------------------------------------------------------- NodeContext

std::optional<int64_t> NodeContext::rank(size_t i) const {
  const SymShape* s = shape(i);
  if (s == nullptr) return std::nullopt;
  return static_cast<int64_t>(s->size());
}

std::optional<std::vector<int64_t>> NodeContext::ints(size_t i) const {
  const std::vector<SymInt>* v = values(i);
  if (v == nullptr) return std::nullopt;
  std::vector<int64_t> out;
  for (const SymInt& x : *v) {
    if (!x.isConst()) return std::nullopt;
    out.push_back(x.value());
  }
  return out;
}

std::optional<std::vector<double>> NodeContext::floats(size_t i) const {
  if (auto v = ints(i)) return std::vector<double>(v->begin(), v->end());
  const Tensor* t = constantTensor(node_.input(i));
  if (t == nullptr || t->dtype() == DataType::kString || t->numel() > (int64_t{1} << 16) ||
      t->byteSize() < storageBytes(t->dtype(), t->numel())) {
    return std::nullopt;
  }
  if (!isFloatingPoint(t->dtype()) && !isInteger(t->dtype())) return std::nullopt;
  std::vector<double> out(static_cast<size_t>(t->numel()));
  for (int64_t k = 0; k < t->numel(); ++k) out[static_cast<size_t>(k)] = t->valueAsDouble(k);
  return out;
}

std::optional<std::vector<int64_t>> NodeContext::intsAttrOrInput(std::string_view attr, size_t input) const {
  if (node_.hasAttribute(attr)) return node_.attrInts(attr);
  return ints(input);
}

void NodeContext::set(size_t i, DataType dtype, std::optional<SymShape> shape) {
  if (i >= outputs_.size()) return;
  outputs_[i].dtype = dtype;
  outputs_[i].shape = std::move(shape);
}

void NodeContext::setValues(size_t i, std::vector<SymInt> values) {
  if (i < outputs_.size() && values.size() <= kMaxTrackedValues) outputs_[i].values = std::move(values);
}

void NodeContext::passThrough(size_t from, bool values) {
  if (outputs_.empty() || !has(from)) return;
  outputs_[0].dtype = inputs_[from]->dtype;
  outputs_[0].shape = inputs_[from]->shape;
  if (values) outputs_[0].values = inputs_[from]->values;
}

// ---------------------------------------------------------------- the rule list

namespace {

const std::unordered_map<std::string, Rule>& ruleTable() {
  static const std::unordered_map<std::string, Rule> table = [] {
    std::vector<RuleEntry> entries;
    addElementwiseRules(entries);
    addNnRules(entries);
    addReductionRules(entries);
    addControlFlowRules(entries);
    addShapeOpRules(entries);
    addDataMovementRules(entries);
    addVisionLossRules(entries);
    addSignalRules(entries);
    addMlRules(entries);
    addTransformerRules(entries);
    addSequenceRules(entries);
    std::unordered_map<std::string, Rule> t;
    for (const RuleEntry& e : entries) t.emplace(std::string(e.domain) + ":" + std::string(e.op), e.rule);
    return t;
  }();
  return table;
}

std::string_view canonicalDomain(std::string_view domain) {
  return domain == "ai.onnx" ? std::string_view() : domain;
}

Rule findRule(std::string_view domain, std::string_view op) {
  const auto& table = ruleTable();
  auto it = table.find(std::string(canonicalDomain(domain)) + ":" + std::string(op));
  return it == table.end() ? nullptr : it->second;
}

std::string shapeText(const std::optional<std::vector<Dim>>& dims) {
  if (!dims) return "rank unknown";
  std::string s = "[";
  for (size_t i = 0; i < dims->size(); ++i) {
    const Dim& d = (*dims)[i];
    s += (i ? ", " : "") + (d.isKnown() ? std::to_string(d.value) : d.param.empty() ? "?" : d.param);
  }
  return s + "]";
}

// ---------------------------------------------------------------- the driver

class Inference {
 public:
  Inference(Graph& graph, const std::vector<OpsetImport>& opsets, const ShapeInferenceOptions& options)
      : graph_(graph), opsets_(opsets), options_(options) {}

  ShapeInferenceResult run() {
    seed();
    for (Node* n : graph_.nodes()) visit(*n);
    return std::move(result_);
  }

 private:
  SymInt fresh() { return SymInt::symbol(std::string(1, kHiddenMark) + std::to_string(nextSymbol_++)); }

  /// Facts from a declared type; unknown dims get fresh hidden symbols.
  Facts declared(const ValueType& t) {
    Facts f;
    if (!t.opaqueTypeProto.empty()) return f;
    f.dtype = t.dtype;
    if (t.shape) {
      f.shape.emplace();
      for (const Dim& d : *t.shape) {
        SymInt s = SymInt::fromDim(d);
        f.shape->push_back(s.isValidDim() ? s : fresh());
      }
    }
    return f;
  }

  static Facts fromTensor(const Tensor& t) {
    Facts f;
    f.dtype = t.dtype();
    f.shape.emplace();
    for (int64_t d : t.dims()) f.shape->push_back(SymInt::of(d));
    bool intType = t.dtype() == DataType::kInt64 || t.dtype() == DataType::kInt32;
    if (intType && t.rank() <= 1 && t.numel() <= static_cast<int64_t>(kMaxTrackedValues) &&
        t.byteSize() >= storageBytes(t.dtype(), t.numel())) {
      f.values.emplace();
      // Not through valueAsDouble: INT64_MAX (a common Slice end) does not survive a double.
      for (int64_t i = 0; i < t.numel(); ++i) {
        f.values->push_back(SymInt::of(t.dtype() == DataType::kInt64 ? t.data<int64_t>()[i] : t.data<int32_t>()[i]));
      }
    }
    return f;
  }

  void seed() {
    for (Value* v : graph_.values()) {
      if (v->constant() != nullptr) {
        facts_[v] = fromTensor(*v->constant());
      } else if (v->producer() == nullptr) {
        facts_[v] = declared(v->type());
      }
    }
  }

  int64_t opsetOf(const std::string& domain) const {
    std::string_view want = canonicalDomain(domain);
    for (const OpsetImport& o : opsets_) {
      if (canonicalDomain(o.domain) == want) return o.version;
    }
    return 0;
  }

  const Facts* factsOf(const Value* v) {
    if (v == nullptr) return nullptr;
    auto it = facts_.find(v);
    if (it != facts_.end()) return &it->second;
    return &(facts_[v] = declared(v->type()));  // read before its producer (not in topological order)
  }

  void visit(Node& n) {
    std::vector<const Facts*> inputs;
    for (const Value* in : n.inputs()) inputs.push_back(factsOf(in));
    NodeContext ctx(n, opsetOf(n.domain()), std::move(inputs));
    Rule rule = findRule(n.domain(), n.opType());
    if (rule != nullptr) {  // control-flow rules read no subgraph
      rule(ctx);
    } else {
      result_.unresolved.push_back(&n);
    }
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      Value* out = n.output(i);
      if (out == nullptr) continue;
      Facts inferred = std::move(ctx.out(i));
      if (!out->type().opaqueTypeProto.empty()) {
        facts_[out] = Facts{};  // a sequence, map or optional: not ours
        continue;
      }
      Facts merged = merge(n, *out, std::move(inferred));
      write(*out, merged);
      if (options_.fallback && !out->type().hasStaticShape()) {
        ValueType before = out->type();
        options_.fallback(*out);
        if (!(out->type() == before)) merged = merge(n, *out, std::move(merged), /*report=*/false);
      }
      facts_[out] = std::move(merged);
    }
  }

  /// The rule's facts merged with the value's declared type (which wins where both are known).
  Facts merge(const Node& n, const Value& v, Facts inferred, bool report = true) {
    const ValueType& decl = v.type();
    Facts m;
    m.dtype = decl.dtype != DataType::kUndefined ? decl.dtype : inferred.dtype;
    bool conflict =
        decl.dtype != DataType::kUndefined && inferred.dtype != DataType::kUndefined && decl.dtype != inferred.dtype;
    if (inferred.shape) {
      for (SymInt& d : *inferred.shape) {
        if (!d.isValidDim()) d = SymInt();
      }
    }
    auto declaredDim = [](const Dim& d) {
      SymInt s = SymInt::fromDim(d);
      return s.isValidDim() ? s : SymInt();
    };
    if (!decl.shape) {
      m.shape = std::move(inferred.shape);
    } else if (!inferred.shape || inferred.shape->size() != decl.shape->size()) {
      conflict |= inferred.shape.has_value();
      m.shape.emplace();
      for (const Dim& d : *decl.shape) m.shape->push_back(declaredDim(d));
    } else {
      m.shape.emplace();
      for (size_t i = 0; i < decl.shape->size(); ++i) {
        SymInt dd = declaredDim((*decl.shape)[i]);
        const SymInt& fd = (*inferred.shape)[i];
        if (dd.isConst()) {
          conflict |= fd.isConst() && !(fd == dd);
          m.shape->push_back(dd);
        } else if (fd.isConst() || dd.isUnknown()) {
          m.shape->push_back(fd);
        } else if (fd.isUnknown()) {
          m.shape->push_back(dd);
        } else {
          // Both symbolic: a made-up symbol gives way to a declared name; a product of real
          // symbols keeps its relation to the other values of the graph.
          bool hidden = std::any_of(fd.symbols().begin(), fd.symbols().end(), isHidden);
          m.shape->push_back(hidden ? dd : fd);
        }
      }
    }
    if (conflict && report) {
      ValueType inferredType;
      inferredType.dtype = inferred.dtype;
      if (inferred.shape) {
        inferredType.shape.emplace();
        for (const SymInt& d : *inferred.shape) inferredType.shape->push_back(d.toDim());
      }
      result_.conflicts.push_back(n.describe() + " output '" + v.name() + "': inferred " +
                                  std::string(dataTypeName(inferred.dtype)) + " " + shapeText(inferredType.shape) +
                                  ", declared " + std::string(dataTypeName(decl.dtype)) + " " + shapeText(decl.shape));
    }
    if (m.shape) {
      for (SymInt& d : *m.shape) {
        if (d.isUnknown()) d = fresh();
      }
    }
    // Values are kept for small int (and bool) tensors of rank 0 or 1 whose size they match.
    bool intType = m.dtype == DataType::kInt64 || m.dtype == DataType::kInt32 || m.dtype == DataType::kBool;
    if (inferred.values && intType && m.shape && m.shape->size() <= 1) {
      SymInt size = product(*m.shape);
      if (size.isConst() && size.value() == static_cast<int64_t>(inferred.values->size())) {
        m.values = std::move(inferred.values);
      }
    }
    return m;
  }

  /// Writes merged facts into the value's type; declared names stay where inference has none.
  void write(Value& v, const Facts& f) {
    ValueType t = v.type();
    t.dtype = f.dtype;
    if (f.shape) {
      std::vector<Dim> dims;
      for (size_t i = 0; i < f.shape->size(); ++i) {
        Dim d = (*f.shape)[i].toDim();
        if (!d.isKnown() && d.param.empty() && v.type().shape && v.type().shape->size() == f.shape->size()) {
          d = (*v.type().shape)[i];
        }
        dims.push_back(std::move(d));
      }
      t.shape = std::move(dims);
    }
    if (t == v.type()) return;
    v.mutableType() = std::move(t);
    ++result_.filled;
  }

  Graph& graph_;
  const std::vector<OpsetImport>& opsets_;
  const ShapeInferenceOptions& options_;
  std::unordered_map<const Value*, Facts> facts_;
  ShapeInferenceResult result_;
  int64_t nextSymbol_ = 0;
};

}  // namespace
}  // namespace shape

ShapeInferenceResult inferShapes(Graph& graph, const std::vector<OpsetImport>& opsets,
                                 const ShapeInferenceOptions& options) {
  return shape::Inference(graph, opsets, options).run();
}

ShapeInferenceResult inferShapes(Model& model, const ShapeInferenceOptions& options) {
  return inferShapes(*model.graph, model.opsetImports, options);
}

bool hasShapeRule(std::string_view domain, std::string_view opType) {
  return shape::findRule(domain, opType) != nullptr;
}

std::vector<std::string> shapeRuleOps() {
  std::vector<std::string> ops;
  for (const auto& [key, rule] : shape::ruleTable()) ops.push_back(key);
  std::sort(ops.begin(), ops.end());
  return ops;
}

int64_t convOutputSize(int64_t input, int64_t kernel, int64_t stride, int64_t dilation, int64_t padBegin,
                       int64_t padEnd, std::string_view autoPad, bool ceilMode) {
  if (input < 0 || input > shape::kMaxDim) return 0;  // nonsense: no arithmetic on it
  for (int64_t v : {kernel, stride, dilation, padBegin, padEnd}) {
    if (v < -shape::kMaxAttr || v > shape::kMaxAttr) return 0;
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

}  // namespace whittle::ir
