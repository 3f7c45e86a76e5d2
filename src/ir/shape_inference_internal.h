#pragma once
// Internal to src/ir/shape_inference*.cpp: the symbolic integers that dims and shape tensors
// are made of, what inference knows about a value, and the interface one per-op rule sees.
// The rules live in one file per op family; shape_inference.cpp holds the driver and the
// one explicit list of families.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/ir/graph.h"
#include "whittle/ir/shape_inference.h"

namespace whittle::ir::shape {

/// Larger dims and attribute values are not believed (a hostile model may declare anything);
/// within these bounds the arithmetic of the rules cannot overflow.
inline constexpr int64_t kMaxDim = int64_t{1} << 40;
inline constexpr int64_t kMaxAttr = int64_t{1} << 20;
/// Shape tensors (int32/int64, rank 0 or 1) up to this many elements have their values tracked.
inline constexpr size_t kMaxTrackedValues = 64;

/// An integer as inference knows it: a constant (3, -1), coefficient x product of symbols
/// ("batch", 12*batch*seq), or unknown. Dims of shapes and the values of shape tensors
/// (Shape -> Gather -> Concat -> Reshape) are SymInts, so symbolic dims survive the shape
/// arithmetic that exporters write into graphs. Unknown is never equal to anything.
class SymInt {
 public:
  SymInt() = default;  ///< Unknown.
  static SymInt of(int64_t v);
  static SymInt symbol(std::string name);
  /// A known dim as a constant, a named dim as a symbol, an unnamed one as unknown.
  static SymInt fromDim(const Dim& d);

  bool isUnknown() const { return !known_; }
  bool isConst() const { return known_ && syms_.empty(); }
  /// The constant (valid when isConst()).
  int64_t value() const { return coeff_; }
  /// One symbol with coefficient 1.
  bool isSymbol() const { return known_ && coeff_ == 1 && syms_.size() == 1; }
  const std::vector<std::string>& symbols() const { return syms_; }
  int64_t coefficient() const { return coeff_; }
  bool is(int64_t v) const { return isConst() && coeff_ == v; }
  /// A constant in [0, kMaxDim] or an expression with a positive coefficient.
  bool isValidDim() const;

  /// The public form: constants >= 0 are known, a single named symbol is symbolic, anything
  /// else (products, hidden symbols, unknown) is an unknown dim.
  Dim toDim() const;

  friend bool operator==(const SymInt& a, const SymInt& b);
  friend SymInt operator*(const SymInt& a, const SymInt& b);
  /// Sums of constants and of like terms (seq + seq = 2*seq); x + 0 = x; otherwise unknown.
  friend SymInt operator+(const SymInt& a, const SymInt& b);
  friend SymInt operator-(const SymInt& a, const SymInt& b);
  /// a / b when it divides exactly as a monomial (12*seq / 4 = 3*seq); unknown otherwise.
  friend SymInt divExact(const SymInt& a, const SymInt& b);
  /// "3", "batch", "12*batch*seq", "?" for messages and tests.
  std::string str() const;

 private:
  bool known_ = false;
  int64_t coeff_ = 0;
  std::vector<std::string> syms_;  // sorted, repeated for powers
};

using SymShape = std::vector<SymInt>;

/// The product of dims[from, to).
SymInt product(const SymShape& dims, size_t from = 0, size_t to = SIZE_MAX);

/// What inference knows about one tensor value.
struct Facts {
  DataType dtype = DataType::kUndefined;
  std::optional<SymShape> shape;  ///< nullopt: rank unknown.
  /// The elements of a small int32/int64 tensor of rank 0 or 1, row-major; nullopt when not tracked.
  std::optional<std::vector<SymInt>> values;
};

/// The constant tensor behind a value: an initializer or the output of a Constant node with a
/// `value` tensor; nullptr otherwise.
const Tensor* constantTensor(const Value* v);

/// `axis` in [-rank, rank) made non-negative; nullopt when out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Multidirectional (numpy) broadcasting of the given shapes; nullopt when a pair of known
/// dims is incompatible.
std::optional<SymShape> broadcast(const std::vector<const SymShape*>& shapes);

/// A conv or pooling output dim (symbolic where the window keeps the size, e.g. 3x3 with
/// padding 1 and stride 1); unknown when it cannot be told.
SymInt windowOutput(const SymInt& input, int64_t kernel, int64_t stride, int64_t dilation, int64_t padBegin,
                    int64_t padEnd, std::string_view autoPad, bool ceilMode);

/// What a rule sees of one node: its inputs' facts and attributes, the opset of its domain;
/// it writes its outputs' facts. A rule leaves what it cannot tell unknown (dims default to
/// unknown; an output it does not touch stays unknown). Rules never fail: a malformed node
/// gets unknown outputs, and the verifier or the runtime reports it.
class NodeContext {
 public:
  NodeContext(const Node& node, int64_t opset, std::vector<const Facts*> inputs)
      : node_(node), opset_(opset), inputs_(std::move(inputs)), outputs_(node.numOutputs()) {}

  const Node& node() const { return node_; }
  const std::string& op() const { return node_.opType(); }
  int64_t opset() const { return opset_; }

  size_t numInputs() const { return inputs_.size(); }
  /// Whether input `i` is given (present and not an empty name).
  bool has(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  DataType dtype(size_t i) const { return has(i) ? inputs_[i]->dtype : DataType::kUndefined; }
  /// The shape of input `i`; nullptr when absent or of unknown rank.
  const SymShape* shape(size_t i) const { return has(i) && inputs_[i]->shape ? &*inputs_[i]->shape : nullptr; }
  std::optional<int64_t> rank(size_t i) const;
  /// The tracked values of input `i`; nullptr when they are not known.
  const std::vector<SymInt>* values(size_t i) const {
    return has(i) && inputs_[i]->values ? &*inputs_[i]->values : nullptr;
  }
  /// The values of input `i` when every one is a constant.
  std::optional<std::vector<int64_t>> ints(size_t i) const;
  /// The values of a constant floating-point (or integer) input, for Resize scales and Range.
  std::optional<std::vector<double>> floats(size_t i) const;
  /// An int list given as an attribute (older opsets) or as a constant input (newer ones);
  /// nullopt when neither is there or the input's values are not known.
  std::optional<std::vector<int64_t>> intsAttrOrInput(std::string_view attr, size_t input) const;

  size_t numOutputs() const { return outputs_.size(); }
  Facts& out(size_t i) { return outputs_[i]; }
  /// Sets output `i` (ignored past the node's outputs).
  void set(size_t i, DataType dtype, std::optional<SymShape> shape);
  /// Tracks the values of output `i` (kept only for small int32/int64 tensors of rank <= 1).
  void setValues(size_t i, std::vector<SymInt> values);
  /// Output 0 has the type and shape of input `from` (and its values when `values` is set).
  void passThrough(size_t from = 0, bool values = false);
  std::vector<Facts>& outputs() { return outputs_; }

 private:
  const Node& node_;
  int64_t opset_;
  std::vector<const Facts*> inputs_;
  std::vector<Facts> outputs_;
};

using Rule = void (*)(NodeContext&);

/// One entry of the rule list: the op (domain "" is the default one) and its rule.
struct RuleEntry {
  std::string_view domain;
  std::string_view op;
  Rule rule;
};

// The op families, one file each.
void addElementwiseRules(std::vector<RuleEntry>& rules);   // shape_inference_elementwise.cpp
void addNnRules(std::vector<RuleEntry>& rules);            // shape_inference_nn.cpp
void addShapeOpRules(std::vector<RuleEntry>& rules);       // shape_inference_shape_ops.cpp
void addDataMovementRules(std::vector<RuleEntry>& rules);  // shape_inference_data_movement.cpp
void addReductionRules(std::vector<RuleEntry>& rules);     // shape_inference_reduction.cpp
void addControlFlowRules(std::vector<RuleEntry>& rules);   // shape_inference_control_flow.cpp
void addVisionLossRules(std::vector<RuleEntry>& rules);    // shape_inference_vision_loss.cpp
void addSignalRules(std::vector<RuleEntry>& rules);        // shape_inference_signal.cpp
void addMlRules(std::vector<RuleEntry>& rules);            // shape_inference_ml.cpp
void addTransformerRules(std::vector<RuleEntry>& rules);    // shape_inference_transformer.cpp
void addSequenceRules(std::vector<RuleEntry>& rules);      // shape_inference_sequence.cpp

}  // namespace whittle::ir::shape
