#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/data_type.h"
#include "whittle/ir/tensor.h"

namespace whittle::ir {

class Graph;
class Node;
class Value;

/// Told of every change to a graph's structure while installed with Graph::setListener, so
/// that a rewrite driver can keep its worklist without rescanning the graph (MLIR's
/// RewriterBase::Listener). Each callback runs after the change, except nodeErased, which
/// runs before the node goes (its inputs and outputs are still attached).
class GraphListener {
 public:
  virtual ~GraphListener() = default;
  /// `node` was added, with its inputs and outputs.
  virtual void nodeInserted(Node& node) {}
  /// `node` is about to be erased.
  virtual void nodeErased(Node& node) {}
  /// An input (or implicit input) of `user` changed from `from` to `to`; either may be null.
  virtual void inputChanged(Node& user, Value* from, Value* to) {}
  /// An attribute of `node` was set or removed.
  virtual void nodeModified(Node& node) {}
  /// `value` became or stopped being a graph input, output or initializer, or its constant changed.
  virtual void valueModified(Value& value) {}
};

/// One dimension of a shape: a known size, a symbolic name ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  ///< >= 0 when known.
  std::string param;   ///< The symbolic name when the size is not known.

  static Dim known(int64_t v) { return {v, {}}; }
  static Dim symbolic(std::string name) { return {-1, std::move(name)}; }
  bool isKnown() const { return value >= 0; }
  bool operator==(const Dim&) const = default;
};

/// The type of a value. Tensors carry dtype and (optionally) a shape; any other ONNX type
/// (sequence, map, optional, sparse tensor) is kept as an opaque serialized TypeProto.
struct ValueType {
  DataType dtype = DataType::kUndefined;
  std::optional<std::vector<Dim>> shape;  ///< nullopt: rank unknown.
  std::string opaqueTypeProto;            ///< Non-tensor types, serialized; empty for tensors.

  bool hasStaticShape() const;
  /// The dims when every one is known.
  std::optional<std::vector<int64_t>> staticDims() const;
  bool operator==(const ValueType&) const = default;
};

/// An edge of the graph: produced by one node (or a graph input or initializer) and used by
/// any number of node inputs. Every use is recorded so rewrites run in O(uses).
class Value {
 public:
  /// A use of a value: `index` >= 0 is an explicit input slot of `user`; a negative index
  /// -k-1 marks the k-th implicit input (a capture by one of the user's subgraphs).
  struct Use {
    Node* user;
    int32_t index;
    bool implicit() const { return index < 0; }
    bool operator==(const Use&) const = default;
  };

  const std::string& name() const { return name_; }
  Graph& graph() const { return *graph_; }

  /// The node that produces this value, or nullptr for graph inputs and initializers.
  Node* producer() const { return producer_; }
  int32_t producerOutputIndex() const { return producerIndex_; }
  const std::vector<Use>& uses() const { return uses_; }
  bool hasUses() const { return !uses_.empty(); }
  bool hasImplicitUses() const;

  const ValueType& type() const { return type_; }
  ValueType& mutableType() { return type_; }
  DataType dtype() const { return type_.dtype; }

  /// Initializers are values with a constant tensor.
  bool isInitializer() const { return constant_ != nullptr; }
  const Tensor* constant() const { return constant_.get(); }
  void setConstant(Tensor tensor);
  void clearConstant();

  bool isGraphInput() const { return isGraphInput_; }
  bool isGraphOutput() const;

  /// Whether the model listed a value_info entry for this value (kept on save).
  bool hasValueInfo() const { return hasValueInfo_; }
  void setHasValueInfo(bool v) { hasValueInfo_ = v; }
  const std::string& docString() const { return docString_; }
  void setDocString(std::string s) { docString_ = std::move(s); }
  /// Fields of this value's ValueInfoProto and of its initializer's TensorProto that whittle
  /// does not model (newer IR versions' metadata_props, say), serialized, written back on save.
  const std::string& valueInfoUnknownFields() const { return valueInfoUnknownFields_; }
  void setValueInfoUnknownFields(std::string s) { valueInfoUnknownFields_ = std::move(s); }
  const std::string& tensorUnknownFields() const { return tensorUnknownFields_; }
  void setTensorUnknownFields(std::string s) { tensorUnknownFields_ = std::move(s); }

 private:
  friend class Graph;
  friend class Node;
  Value(Graph* graph, std::string name) : graph_(graph), name_(std::move(name)) {}

  Graph* graph_;
  std::string name_;
  Node* producer_ = nullptr;
  int32_t producerIndex_ = -1;
  std::vector<Use> uses_;
  ValueType type_;
  std::shared_ptr<const Tensor> constant_;
  bool isGraphInput_ = false;
  bool hasValueInfo_ = false;
  std::string docString_;
  std::string valueInfoUnknownFields_;
  std::string tensorUnknownFields_;
  std::list<std::unique_ptr<Value>>::iterator self_;
};

/// A node attribute. Scalars, lists and tensors are held as IR types; subgraphs, sparse
/// tensors and type protos are kept serialized (opaque) and written back unchanged.
struct Attribute {
  enum class Kind : int32_t {
    kUndefined = 0,
    kFloat = 1,
    kInt = 2,
    kString = 3,
    kTensor = 4,
    kGraph = 5,
    kSparseTensor = 11,
    kTypeProto = 13,
    kFloats = 6,
    kInts = 7,
    kStrings = 8,
    kTensors = 9,
    kGraphs = 10,
    kSparseTensors = 12,
    kTypeProtos = 14,
  };

  std::string name;
  Kind kind = Kind::kUndefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::string tensorName;  ///< The name a tensor attribute carried in the model.
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::string> tensorNames;  ///< The names the `tensors` carried in the model ("" when none).
  std::string refAttrName;  ///< Set inside functions: the attribute refers to a caller's.
  std::string docString;
  std::string opaque;  ///< Serialized AttributeProto for graph/sparse/type-proto kinds.

  bool isOpaque() const { return !opaque.empty(); }
  static Attribute makeInt(std::string name, int64_t v);
  static Attribute makeFloat(std::string name, float v);
  static Attribute makeString(std::string name, std::string v);
  static Attribute makeInts(std::string name, std::vector<int64_t> v);
  static Attribute makeFloats(std::string name, std::vector<float> v);
  static Attribute makeTensor(std::string name, Tensor v);
};

std::string_view attributeKindName(Attribute::Kind kind);

/// An operator application. Inputs may be absent (nullptr) where ONNX allows an empty name
/// for an optional input; outputs may be absent the same way.
class Node {
 public:
  const std::string& opType() const { return opType_; }
  /// The operator domain; "" is the default ONNX domain ("ai.onnx").
  const std::string& domain() const { return domain_; }
  const std::string& name() const { return name_; }
  void setName(std::string name) { name_ = std::move(name); }
  Graph& graph() const { return *graph_; }
  /// "Conv 'conv1'" (or "Conv #12" for unnamed nodes), for messages.
  std::string describe() const;

  const std::vector<Value*>& inputs() const { return inputs_; }
  size_t numInputs() const { return inputs_.size(); }
  /// Input `i`, or nullptr when it is absent or past the end.
  Value* input(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }
  void setInput(size_t i, Value* value);
  void addInput(Value* value);
  /// Drops trailing inputs so that `count` remain.
  void truncateInputs(size_t count);
  /// Replaces every explicit and implicit use of `from` by this node with `to`.
  void replaceInput(Value* from, Value* to);

  const std::vector<Value*>& outputs() const { return outputs_; }
  size_t numOutputs() const { return outputs_.size(); }
  Value* output(size_t i) const { return i < outputs_.size() ? outputs_[i] : nullptr; }

  /// Values that subgraph attributes (If/Loop/Scan bodies) read from the enclosing graph.
  const std::vector<Value*>& implicitInputs() const { return implicitInputs_; }
  void addImplicitInput(Value* value);
  /// Drops `value` from the implicit inputs (a rewrite left no subgraph reading it).
  void removeImplicitInput(Value* value);
  bool hasSubgraphs() const;

  const std::vector<Attribute>& attributes() const { return attributes_; }
  const Attribute* findAttribute(std::string_view name) const;
  bool hasAttribute(std::string_view name) const { return findAttribute(name) != nullptr; }
  int64_t attrInt(std::string_view name, int64_t fallback) const;
  float attrFloat(std::string_view name, float fallback) const;
  std::string attrString(std::string_view name, std::string fallback) const;
  std::vector<int64_t> attrInts(std::string_view name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attrFloats(std::string_view name, std::vector<float> fallback = {}) const;
  /// Adds or replaces the attribute with the same name.
  void setAttribute(Attribute attribute);
  void removeAttribute(std::string_view name);

  const std::string& docString() const { return docString_; }
  void setDocString(std::string s) { docString_ = std::move(s); }
  /// NodeProto fields that the linked ONNX does not know (metadata_props from ONNX 1.16 on),
  /// serialized; written back unchanged.
  const std::string& unknownFields() const { return unknownFields_; }
  void setUnknownFields(std::string s) { unknownFields_ = std::move(s); }

 private:
  friend class Graph;
  Node(Graph* graph, std::string opType, std::string domain, std::string name)
      : graph_(graph), opType_(std::move(opType)), domain_(std::move(domain)), name_(std::move(name)) {}
  void removeUse(Value* value, int32_t index);
  GraphListener* listener() const;

  Graph* graph_;
  std::string opType_;
  std::string domain_;
  std::string name_;
  std::string docString_;
  std::string unknownFields_;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
  std::vector<Value*> implicitInputs_;
  std::vector<Attribute> attributes_;
  int64_t serial_ = 0;
  std::list<std::unique_ptr<Node>>::iterator self_;
};

/// A computation graph: nodes in a list kept in topological order, values with use lists,
/// graph inputs, outputs and initializers. All mutation goes through methods that keep the
/// use lists right.
class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  /// A deep copy: new nodes and values, tensors shared (they are copy on write). The copy
  /// has no listener.
  std::unique_ptr<Graph> clone() const;

  /// Installs `listener` (nullptr: none) to be told of every change from now on; returns the
  /// one it replaces. The graph does not own it.
  GraphListener* setListener(GraphListener* listener) {
    GraphListener* previous = listener_;
    listener_ = listener;
    return previous;
  }
  GraphListener* listener() const { return listener_; }

  const std::string& name() const { return name_; }
  void setName(std::string n) { name_ = std::move(n); }
  const std::string& docString() const { return docString_; }
  void setDocString(std::string s) { docString_ = std::move(s); }
  /// GraphProto fields that the linked ONNX does not know, serialized; written back unchanged.
  const std::string& unknownFields() const { return unknownFields_; }
  void setUnknownFields(std::string s) { unknownFields_ = std::move(s); }

  // ---- values ----
  /// A new value with a unique name derived from `name` (unchanged when it is free).
  Value* addValue(const std::string& name);
  /// A graph input. Initializers listed as inputs too (old exporters) have both flags.
  Value* addInput(const std::string& name, ValueType type);
  /// A constant value (an initializer).
  Value* addInitializer(const std::string& name, Tensor tensor);
  /// Looks a value up by name; nullptr when none has it.
  Value* findValue(std::string_view name) const;
  /// Gives `value` a new name; fails when another value has it already.
  Status renameValue(Value* value, const std::string& name);
  /// A name not used by any value, based on `base`.
  std::string uniqueValueName(const std::string& base) const;
  /// Removes a value that has no producer and no uses and is neither input nor output.
  void eraseValue(Value* value);
  /// Removes several such values (repeats allowed) in one pass over the input and
  /// initializer lists: what eraseValue costs once, not once per value.
  void eraseValues(const std::vector<Value*>& values);

  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  void addOutput(Value* value);
  void setOutput(size_t i, Value* value);
  /// Drops graph output `i` from the list (the value stays, with its producer and uses).
  void removeOutput(size_t i);
  void removeInput(Value* value);
  /// Initializers in the order the model listed them, then those added since.
  const std::vector<Value*>& initializers() const { return initializers_; }
  /// Turns an initializer back into a plain value (its producer must be set by the caller).
  void removeInitializer(Value* value);

  /// Redirects every use of `from` (explicit, implicit, graph output) to `to`. When `from`
  /// is a graph output, or is captured by a subgraph (which reads it by name), `to` takes
  /// over its name so the model's interface and the subgraphs stay right; if `to` cannot be
  /// renamed (it is a graph input or output, or itself captured), an Identity that takes the
  /// name is inserted right after `to`'s producer.
  void replaceAllUsesWith(Value* from, Value* to);

  // ---- nodes ----
  /// Creates a node with the given inputs and new output values named `outputNames` (made
  /// unique), inserted before `before` or at the end. An empty output name means absent.
  Node* addNode(const std::string& opType, const std::vector<Value*>& inputs,
                const std::vector<std::string>& outputNames, const std::string& name = "",
                const std::string& domain = "", Node* before = nullptr);
  /// Creates a node whose outputs are existing values without producer.
  Node* addNodeWithOutputs(const std::string& opType, const std::vector<Value*>& inputs,
                           const std::vector<Value*>& outputs, const std::string& name = "",
                           const std::string& domain = "", Node* before = nullptr);
  /// Moves `node` right before `position`.
  void moveBefore(Node* node, Node* position);
  /// Moves `node` right after `position`.
  void moveAfter(Node* node, Node* position);
  /// Removes a node whose outputs have no uses and are not graph outputs; its outputs go too.
  void eraseNode(Node* node);
  size_t numNodes() const { return nodes_.size(); }
  /// Nodes in list order, which is topological after topologicalSort() or any load.
  std::vector<Node*> nodes() const;
  /// Visits nodes in list order; the callback may erase the node it is given.
  template <typename F>
  void forEachNode(F&& f) {
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      Node* n = (it++)->get();
      f(*n);
    }
  }
  /// Reorders the node list topologically (stable); a cycle is an error naming a node on it.
  Status topologicalSort();
  /// A name not used by any node, based on `base`.
  std::string uniqueNodeName(const std::string& base);

  // ---- pass-through data kept for round-trip fidelity ----
  /// Serialized SparseTensorProto entries of GraphProto.sparse_initializer.
  std::vector<std::string>& opaqueSparseInitializers() { return opaqueSparse_; }
  const std::vector<std::string>& opaqueSparseInitializers() const { return opaqueSparse_; }
  /// Serialized TensorAnnotation entries of GraphProto.quantization_annotation.
  std::vector<std::string>& opaqueQuantAnnotations() { return opaqueQuantAnnotations_; }
  const std::vector<std::string>& opaqueQuantAnnotations() const { return opaqueQuantAnnotations_; }

  /// Every value, in creation order.
  std::vector<Value*> values() const;

 private:
  friend class Value;
  friend class Node;
  Node* insertNode(std::unique_ptr<Node> node, Node* before);

  std::string name_;
  std::string docString_;
  std::string unknownFields_;
  std::list<std::unique_ptr<Node>> nodes_;
  std::list<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> valuesByName_;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
  std::vector<Value*> initializers_;
  std::vector<std::string> opaqueSparse_;
  std::vector<std::string> opaqueQuantAnnotations_;
  std::unordered_map<std::string, int> nodeNames_;
  int64_t nextNodeSerial_ = 0;
  GraphListener* listener_ = nullptr;
};

/// One entry of a model's opset_import.
struct OpsetImport {
  std::string domain;
  int64_t version = 0;
  bool operator==(const OpsetImport&) const = default;
};

/// A whole model: the main graph and the ModelProto fields around it. Fields whittle does
/// not model (functions, training info) are kept serialized and written back unchanged.
struct Model {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>();
  int64_t irVersion = 8;
  std::vector<OpsetImport> opsetImports;
  std::string producerName;
  std::string producerVersion;
  std::string domain;
  int64_t modelVersion = 0;
  std::string docString;
  std::vector<std::pair<std::string, std::string>> metadata;
  /// A serialized ModelProto holding only the fields not listed above (functions, training
  /// info, and fields that the linked ONNX does not know).
  std::string opaqueRest;

  /// The opset version imported for `domain` ("" or "ai.onnx" for the default), or 0.
  int64_t opsetVersion(std::string_view domain) const;
  void setOpsetVersion(const std::string& domain, int64_t version);
  /// Adds or replaces a metadata_props entry.
  void setMetadata(const std::string& key, const std::string& value);
  Model clone() const;
};

}  // namespace whittle::ir
