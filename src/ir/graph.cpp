#include "whittle/ir/graph.h"

#include <algorithm>
#include <deque>
#include <unordered_set>

namespace whittle::ir {

// ---------------------------------------------------------------- ValueType

bool ValueType::hasStaticShape() const { return staticDims().has_value(); }

std::optional<std::vector<int64_t>> ValueType::staticDims() const {
  if (!shape) return std::nullopt;
  std::vector<int64_t> dims;
  dims.reserve(shape->size());
  for (const Dim& d : *shape) {
    if (!d.isKnown()) return std::nullopt;
    dims.push_back(d.value);
  }
  return dims;
}

// ---------------------------------------------------------------- Value

bool Value::hasImplicitUses() const {
  return std::any_of(uses_.begin(), uses_.end(), [](const Use& u) { return u.implicit(); });
}

void Value::setConstant(Tensor tensor) {
  bool wasInitializer = isInitializer();
  constant_ = std::make_shared<const Tensor>(std::move(tensor));
  if (!wasInitializer) graph_->initializers_.push_back(this);
  if (graph_->listener_ != nullptr) graph_->listener_->valueModified(*this);
}

void Value::clearConstant() {
  constant_.reset();
  if (graph_->listener_ != nullptr) graph_->listener_->valueModified(*this);
}

bool Value::isGraphOutput() const {
  const auto& outs = graph_->outputs_;
  return std::find(outs.begin(), outs.end(), this) != outs.end();
}

// ---------------------------------------------------------------- Attribute

Attribute Attribute::makeInt(std::string name, int64_t v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kInt;
  a.i = v;
  return a;
}

Attribute Attribute::makeFloat(std::string name, float v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kFloat;
  a.f = v;
  return a;
}

Attribute Attribute::makeString(std::string name, std::string v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kString;
  a.s = std::move(v);
  return a;
}

Attribute Attribute::makeInts(std::string name, std::vector<int64_t> v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kInts;
  a.ints = std::move(v);
  return a;
}

Attribute Attribute::makeFloats(std::string name, std::vector<float> v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kFloats;
  a.floats = std::move(v);
  return a;
}

Attribute Attribute::makeTensor(std::string name, Tensor v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::kTensor;
  a.t = std::move(v);
  return a;
}

std::string_view attributeKindName(Attribute::Kind kind) {
  using K = Attribute::Kind;
  switch (kind) {
    case K::kFloat: return "float";
    case K::kInt: return "int";
    case K::kString: return "string";
    case K::kTensor: return "tensor";
    case K::kGraph: return "graph";
    case K::kSparseTensor: return "sparse_tensor";
    case K::kTypeProto: return "type_proto";
    case K::kFloats: return "floats";
    case K::kInts: return "ints";
    case K::kStrings: return "strings";
    case K::kTensors: return "tensors";
    case K::kGraphs: return "graphs";
    case K::kSparseTensors: return "sparse_tensors";
    case K::kTypeProtos: return "type_protos";
    case K::kUndefined: break;
  }
  return "undefined";
}

// ---------------------------------------------------------------- Node

std::string Node::describe() const {
  std::string out = domain_.empty() || domain_ == "ai.onnx" ? opType_ : domain_ + "." + opType_;
  if (!name_.empty()) return out + " '" + name_ + "'";
  return out + " #" + std::to_string(serial_);
}

GraphListener* Node::listener() const { return graph_->listener_; }

void Node::removeUse(Value* value, int32_t index) {
  if (value == nullptr) return;
  auto& uses = value->uses_;
  auto it = std::find(uses.begin(), uses.end(), Value::Use{this, index});
  WH_CHECK(it != uses.end(), "use list of '" + value->name() + "' lost a use by " + describe());
  uses.erase(it);
}

void Node::setInput(size_t i, Value* value) {
  if (i >= inputs_.size()) inputs_.resize(i + 1, nullptr);
  Value* old = inputs_[i];
  removeUse(old, static_cast<int32_t>(i));
  inputs_[i] = value;
  if (value != nullptr) value->uses_.push_back({this, static_cast<int32_t>(i)});
  if (GraphListener* l = listener(); l != nullptr && old != value) l->inputChanged(*this, old, value);
}

void Node::addInput(Value* value) { setInput(inputs_.size(), value); }

void Node::truncateInputs(size_t count) {
  while (inputs_.size() > count) {
    Value* old = inputs_.back();
    removeUse(old, static_cast<int32_t>(inputs_.size() - 1));
    inputs_.pop_back();
    if (GraphListener* l = listener(); l != nullptr && old != nullptr) l->inputChanged(*this, old, nullptr);
  }
}

void Node::replaceInput(Value* from, Value* to) {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i] == from) setInput(i, to);
  }
  for (size_t k = 0; k < implicitInputs_.size(); ++k) {
    if (implicitInputs_[k] != from) continue;
    auto index = static_cast<int32_t>(-static_cast<int32_t>(k) - 1);
    removeUse(from, index);
    implicitInputs_[k] = to;
    to->uses_.push_back({this, index});
    if (GraphListener* l = listener(); l != nullptr && from != to) l->inputChanged(*this, from, to);
  }
}

void Node::addImplicitInput(Value* value) {
  auto index = static_cast<int32_t>(-static_cast<int32_t>(implicitInputs_.size()) - 1);
  implicitInputs_.push_back(value);
  value->uses_.push_back({this, index});
  if (GraphListener* l = listener()) l->inputChanged(*this, nullptr, value);
}

void Node::removeImplicitInput(Value* value) {
  if (std::find(implicitInputs_.begin(), implicitInputs_.end(), value) == implicitInputs_.end()) return;
  // Implicit uses are numbered by position: drop them all and number the rest again.
  std::vector<Value*> kept;
  for (size_t k = 0; k < implicitInputs_.size(); ++k) {
    removeUse(implicitInputs_[k], static_cast<int32_t>(-static_cast<int32_t>(k) - 1));
    if (implicitInputs_[k] != value) kept.push_back(implicitInputs_[k]);
  }
  implicitInputs_.clear();
  for (Value* v : kept) {
    implicitInputs_.push_back(v);
    v->uses_.push_back({this, static_cast<int32_t>(-static_cast<int32_t>(implicitInputs_.size()))});
  }
  if (GraphListener* l = listener()) l->inputChanged(*this, value, nullptr);
}

bool Node::hasSubgraphs() const {
  return std::any_of(attributes_.begin(), attributes_.end(), [](const Attribute& a) {
    return a.kind == Attribute::Kind::kGraph || a.kind == Attribute::Kind::kGraphs;
  });
}

const Attribute* Node::findAttribute(std::string_view name) const {
  for (const Attribute& a : attributes_) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

int64_t Node::attrInt(std::string_view name, int64_t fallback) const {
  const Attribute* a = findAttribute(name);
  return a && a->kind == Attribute::Kind::kInt ? a->i : fallback;
}

float Node::attrFloat(std::string_view name, float fallback) const {
  const Attribute* a = findAttribute(name);
  return a && a->kind == Attribute::Kind::kFloat ? a->f : fallback;
}

std::string Node::attrString(std::string_view name, std::string fallback) const {
  const Attribute* a = findAttribute(name);
  return a && a->kind == Attribute::Kind::kString ? a->s : fallback;
}

std::vector<int64_t> Node::attrInts(std::string_view name, std::vector<int64_t> fallback) const {
  const Attribute* a = findAttribute(name);
  return a && a->kind == Attribute::Kind::kInts ? a->ints : fallback;
}

std::vector<float> Node::attrFloats(std::string_view name, std::vector<float> fallback) const {
  const Attribute* a = findAttribute(name);
  return a && a->kind == Attribute::Kind::kFloats ? a->floats : fallback;
}

void Node::setAttribute(Attribute attribute) {
  auto it = std::find_if(attributes_.begin(), attributes_.end(), [&](const Attribute& a) { return a.name == attribute.name; });
  if (it != attributes_.end()) {
    *it = std::move(attribute);
  } else {
    attributes_.push_back(std::move(attribute));
  }
  if (GraphListener* l = listener()) l->nodeModified(*this);
}

void Node::removeAttribute(std::string_view name) {
  if (std::erase_if(attributes_, [&](const Attribute& a) { return a.name == name; }) == 0) return;
  if (GraphListener* l = listener()) l->nodeModified(*this);
}

// ---------------------------------------------------------------- Graph

Value* Graph::addValue(const std::string& name) {
  std::string unique = uniqueValueName(name.empty() ? "v" : name);
  auto value = std::unique_ptr<Value>(new Value(this, unique));
  Value* raw = value.get();
  values_.push_back(std::move(value));
  raw->self_ = std::prev(values_.end());
  valuesByName_.emplace(unique, raw);
  return raw;
}

Value* Graph::addInput(const std::string& name, ValueType type) {
  Value* v = addValue(name);
  v->type_ = std::move(type);
  v->isGraphInput_ = true;
  inputs_.push_back(v);
  if (listener_ != nullptr) listener_->valueModified(*v);
  return v;
}

Value* Graph::addInitializer(const std::string& name, Tensor tensor) {
  Value* v = addValue(name);
  v->type_.dtype = tensor.dtype();
  std::vector<Dim> dims;
  for (int64_t d : tensor.dims()) dims.push_back(Dim::known(d));
  v->type_.shape = std::move(dims);
  v->setConstant(std::move(tensor));
  return v;
}

Value* Graph::findValue(std::string_view name) const {
  auto it = valuesByName_.find(std::string(name));
  return it == valuesByName_.end() ? nullptr : it->second;
}

Status Graph::renameValue(Value* value, const std::string& name) {
  if (value->name_ == name) return Status::ok();
  if (findValue(name) != nullptr) return invalidInput("cannot rename '" + value->name_ + "' to '" + name + "': name in use");
  valuesByName_.erase(value->name_);
  value->name_ = name;
  valuesByName_.emplace(name, value);
  return Status::ok();
}

std::string Graph::uniqueValueName(const std::string& base) const {
  if (!valuesByName_.contains(base)) return base;
  for (int64_t i = 1;; ++i) {
    std::string candidate = base + "_" + std::to_string(i);
    if (!valuesByName_.contains(candidate)) return candidate;
  }
}

void Graph::eraseValue(Value* value) {
  WH_CHECK(value->uses_.empty(), "erasing value '" + value->name_ + "' that still has uses");
  WH_CHECK(value->producer_ == nullptr, "erasing value '" + value->name_ + "' that has a producer");
  WH_CHECK(!value->isGraphOutput(), "erasing graph output '" + value->name_ + "'");
  if (value->isGraphInput_) removeInput(value);
  if (value->isInitializer()) std::erase(initializers_, value);
  valuesByName_.erase(value->name_);
  values_.erase(value->self_);
}

void Graph::eraseValues(const std::vector<Value*>& values) {
  std::unordered_set<const Value*> gone;
  for (Value* value : values) {
    WH_CHECK(value->uses_.empty(), "erasing value '" + value->name_ + "' that still has uses");
    WH_CHECK(value->producer_ == nullptr, "erasing value '" + value->name_ + "' that has a producer");
    WH_CHECK(!value->isGraphOutput(), "erasing graph output '" + value->name_ + "'");
    gone.insert(value);
  }
  if (gone.empty()) return;
  std::erase_if(inputs_, [&](Value* v) { return gone.contains(v); });
  std::erase_if(initializers_, [&](Value* v) { return gone.contains(v); });
  for (Value* value : values) {
    if (gone.erase(value) == 0) continue;  // a repeat, already gone
    valuesByName_.erase(value->name_);
    values_.erase(value->self_);
  }
}

void Graph::addOutput(Value* value) {
  outputs_.push_back(value);
  if (listener_ != nullptr) listener_->valueModified(*value);
}

void Graph::setOutput(size_t i, Value* value) {
  WH_CHECK(i < outputs_.size(), "output index out of range");
  Value* old = outputs_[i];
  outputs_[i] = value;
  if (listener_ != nullptr && old != value) {
    listener_->valueModified(*old);
    listener_->valueModified(*value);
  }
}

void Graph::removeOutput(size_t i) {
  WH_CHECK(i < outputs_.size(), "output index out of range");
  Value* old = outputs_[i];
  outputs_.erase(outputs_.begin() + static_cast<std::ptrdiff_t>(i));
  if (listener_ != nullptr) listener_->valueModified(*old);
}

void Graph::removeInput(Value* value) {
  std::erase(inputs_, value);
  value->isGraphInput_ = false;
  if (listener_ != nullptr) listener_->valueModified(*value);
}

void Graph::removeInitializer(Value* value) {
  std::erase(initializers_, value);
  value->constant_.reset();
  if (listener_ != nullptr) listener_->valueModified(*value);
}

void Graph::replaceAllUsesWith(Value* from, Value* to) {
  WH_CHECK(from != to, "replacing a value with itself");
  // Subgraphs read the values they capture by name, and the node's implicit inputs only
  // mirror that: like a graph output, a captured value's name must keep naming the value.
  const bool captured = from->hasImplicitUses();
  const bool toCaptured = to->hasImplicitUses();
  std::vector<Value::Use> uses = from->uses_;
  for (const Value::Use& use : uses) {
    if (!use.implicit()) use.user->setInput(static_cast<size_t>(use.index), to);
  }
  if (!from->isGraphOutput() && !captured) return;
  // `to` may take over the name unless something reads it by its own name (the interface, a
  // subgraph). An initializer may be renamed when only subgraphs read `from` by name.
  bool canRename = !to->isGraphInput_ && !to->isGraphOutput() && !toCaptured &&
                   (!to->isInitializer() || !from->isGraphOutput());
  Value* named = to;
  const std::string name = from->name_;
  WH_CHECK(renameValue(from, uniqueValueName(name + "_replaced")).isOk());
  if (canRename) {
    WH_CHECK(renameValue(to, name).isOk());
    if (to->type_.dtype == DataType::kUndefined) to->type_ = from->type_;
  } else {
    // `to` keeps its own name: an Identity takes over `from`'s, at the end for a graph
    // output, right after `to`'s producer (before any reader) for a subgraph.
    Node* identity = addNode("Identity", {to}, {name}, uniqueNodeName(name + "_identity"));
    if (captured && to->producer_ != nullptr) {
      moveAfter(identity, to->producer_);
    } else if (captured && nodes_.front().get() != identity) {
      moveBefore(identity, nodes_.front().get());
    }
    identity->output(0)->type_ = from->type_;
    named = identity->output(0);
  }
  for (const Value::Use& use : uses) {
    if (use.implicit()) use.user->replaceInput(from, named);
  }
  for (auto& out : outputs_) {
    if (out == from) out = named;
  }
  if (listener_ != nullptr) {
    listener_->valueModified(*from);
    listener_->valueModified(*named);
  }
}

Node* Graph::insertNode(std::unique_ptr<Node> node, Node* before) {
  node->serial_ = nextNodeSerial_++;
  Node* raw = node.get();
  auto position = before ? before->self_ : nodes_.end();
  raw->self_ = nodes_.insert(position, std::move(node));
  if (!raw->name_.empty()) ++nodeNames_[raw->name_];
  return raw;
}

Node* Graph::addNode(const std::string& opType, const std::vector<Value*>& inputs,
                     const std::vector<std::string>& outputNames, const std::string& name,
                     const std::string& domain, Node* before) {
  std::vector<Value*> outputs;
  outputs.reserve(outputNames.size());
  for (const std::string& outName : outputNames) outputs.push_back(outName.empty() ? nullptr : addValue(outName));
  return addNodeWithOutputs(opType, inputs, outputs, name, domain, before);
}

Node* Graph::addNodeWithOutputs(const std::string& opType, const std::vector<Value*>& inputs,
                                const std::vector<Value*>& outputs, const std::string& name,
                                const std::string& domain, Node* before) {
  Node* node = insertNode(std::unique_ptr<Node>(new Node(this, opType, domain, name)), before);
  for (Value* in : inputs) node->addInput(in);
  for (size_t i = 0; i < outputs.size(); ++i) {
    Value* out = outputs[i];
    node->outputs_.push_back(out);
    if (out == nullptr) continue;
    WH_CHECK(out->producer_ == nullptr, "value '" + out->name_ + "' already has a producer");
    out->producer_ = node;
    out->producerIndex_ = static_cast<int32_t>(i);
  }
  if (listener_ != nullptr) listener_->nodeInserted(*node);
  return node;
}

void Graph::moveBefore(Node* node, Node* position) {
  nodes_.splice(position->self_, nodes_, node->self_);
}

void Graph::moveAfter(Node* node, Node* position) {
  nodes_.splice(std::next(position->self_), nodes_, node->self_);
}

void Graph::eraseNode(Node* node) {
  for (Value* out : node->outputs_) {
    if (out == nullptr) continue;
    WH_CHECK(out->uses_.empty(), node->describe() + ": erasing a node whose output '" + out->name_ + "' is used");
    WH_CHECK(!out->isGraphOutput(), node->describe() + ": erasing the producer of graph output '" + out->name_ + "'");
  }
  if (listener_ != nullptr) listener_->nodeErased(*node);
  // Detach without further notifications: the listener has been told the node goes.
  for (size_t i = node->inputs_.size(); i-- > 0;) node->removeUse(node->inputs_[i], static_cast<int32_t>(i));
  node->inputs_.clear();
  for (size_t k = 0; k < node->implicitInputs_.size(); ++k) {
    node->removeUse(node->implicitInputs_[k], static_cast<int32_t>(-static_cast<int32_t>(k) - 1));
  }
  node->implicitInputs_.clear();
  for (Value* out : node->outputs_) {
    if (out == nullptr) continue;
    out->producer_ = nullptr;
    if (!out->isGraphInput_ && !out->isInitializer()) eraseValue(out);
  }
  if (!node->name_.empty()) {
    auto it = nodeNames_.find(node->name_);
    if (it != nodeNames_.end() && --it->second == 0) nodeNames_.erase(it);
  }
  nodes_.erase(node->self_);
}

std::vector<Node*> Graph::nodes() const {
  std::vector<Node*> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n.get());
  return out;
}

std::vector<Value*> Graph::values() const {
  std::vector<Value*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v.get());
  return out;
}

std::string Graph::uniqueNodeName(const std::string& base) {
  if (!nodeNames_.contains(base)) return base;
  for (int64_t i = 1;; ++i) {
    std::string candidate = base + "_" + std::to_string(i);
    if (!nodeNames_.contains(candidate)) return candidate;
  }
}

Status Graph::topologicalSort() {
  // Kahn's algorithm, taking ready nodes in their current list order so that an already
  // sorted list is left as it is.
  std::unordered_map<const Node*, size_t> pending;
  std::unordered_map<const Node*, size_t> position;
  size_t index = 0;
  for (const auto& n : nodes_) {
    position[n.get()] = index++;
    size_t count = 0;
    auto countInput = [&](const Value* v) {
      if (v != nullptr && v->producer_ != nullptr) ++count;
    };
    for (const Value* in : n->inputs_) countInput(in);
    for (const Value* in : n->implicitInputs_) countInput(in);
    pending[n.get()] = count;
  }
  auto later = [&](const Node* a, const Node* b) { return position[a] > position[b]; };
  std::vector<Node*> ready;  // min-heap by original position
  for (const auto& n : nodes_) {
    if (pending[n.get()] == 0) ready.push_back(n.get());
  }
  std::make_heap(ready.begin(), ready.end(), later);
  std::list<std::unique_ptr<Node>> sorted;
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), later);
    Node* n = ready.back();
    ready.pop_back();
    sorted.splice(sorted.end(), nodes_, n->self_);
    for (const Value* out : n->outputs_) {
      if (out == nullptr) continue;
      for (const Value::Use& use : out->uses_) {
        if (--pending[use.user] == 0) {
          ready.push_back(use.user);
          std::push_heap(ready.begin(), ready.end(), later);
        }
      }
    }
  }
  if (!nodes_.empty()) {
    // Whatever is left lies on or behind a cycle. Name a node that is on one: every node
    // left reads a value that another node left produces, so walking from producer to
    // producer must come back to a node already seen, and that node is on a cycle.
    std::unordered_set<const Node*> seen;
    Node* culprit = nodes_.front().get();
    while (seen.insert(culprit).second) {
      auto pendingProducer = [&](const Value* v) {
        return v != nullptr && v->producer_ != nullptr && pending[v->producer_] > 0;
      };
      auto next = std::find_if(culprit->inputs_.begin(), culprit->inputs_.end(), pendingProducer);
      if (next != culprit->inputs_.end()) {
        culprit = (*next)->producer_;
        continue;
      }
      next = std::find_if(culprit->implicitInputs_.begin(), culprit->implicitInputs_.end(), pendingProducer);
      WH_CHECK(next != culprit->implicitInputs_.end(), culprit->describe() + " is left unsorted but waits for nothing");
      culprit = (*next)->producer_;
    }
    std::string message = "graph has a cycle through " + culprit->describe();
    sorted.splice(sorted.end(), nodes_);
    nodes_.swap(sorted);
    return invalidInput(message);
  }
  nodes_.swap(sorted);
  return Status::ok();
}

std::unique_ptr<Graph> Graph::clone() const {
  auto copy = std::make_unique<Graph>();
  copy->name_ = name_;
  copy->docString_ = docString_;
  copy->unknownFields_ = unknownFields_;
  copy->opaqueSparse_ = opaqueSparse_;
  copy->opaqueQuantAnnotations_ = opaqueQuantAnnotations_;
  std::unordered_map<const Value*, Value*> map;
  for (const auto& v : values_) {
    Value* nv = copy->addValue(v->name_);
    nv->type_ = v->type_;
    nv->constant_ = v->constant_;
    nv->isGraphInput_ = v->isGraphInput_;
    nv->hasValueInfo_ = v->hasValueInfo_;
    nv->docString_ = v->docString_;
    map[v.get()] = nv;
  }
  auto mapped = [&](Value* v) { return v == nullptr ? nullptr : map.at(v); };
  for (Value* v : inputs_) copy->inputs_.push_back(mapped(v));
  for (Value* v : outputs_) copy->outputs_.push_back(mapped(v));
  for (Value* v : initializers_) copy->initializers_.push_back(mapped(v));
  for (const auto& n : nodes_) {
    std::vector<Value*> ins;
    std::vector<Value*> outs;
    for (Value* v : n->inputs_) ins.push_back(mapped(v));
    for (Value* v : n->outputs_) outs.push_back(mapped(v));
    Node* nn = copy->addNodeWithOutputs(n->opType_, ins, outs, n->name_, n->domain_);
    nn->attributes_ = n->attributes_;
    nn->docString_ = n->docString_;
    nn->unknownFields_ = n->unknownFields_;
    for (Value* v : n->implicitInputs_) nn->addImplicitInput(mapped(v));
  }
  return copy;
}

// ---------------------------------------------------------------- Model

int64_t Model::opsetVersion(std::string_view domain) const {
  bool isDefault = domain.empty() || domain == "ai.onnx";
  for (const OpsetImport& o : opsetImports) {
    bool oDefault = o.domain.empty() || o.domain == "ai.onnx";
    if (isDefault ? oDefault : o.domain == domain) return o.version;
  }
  return 0;
}

void Model::setOpsetVersion(const std::string& domain, int64_t version) {
  for (OpsetImport& o : opsetImports) {
    if (o.domain == domain) {
      o.version = version;
      return;
    }
  }
  opsetImports.push_back({domain, version});
}

void Model::setMetadata(const std::string& key, const std::string& value) {
  for (auto& [k, v] : metadata) {
    if (k == key) {
      v = value;
      return;
    }
  }
  metadata.emplace_back(key, value);
}

Model Model::clone() const {
  Model m;
  m.graph = graph->clone();
  m.irVersion = irVersion;
  m.opsetImports = opsetImports;
  m.producerName = producerName;
  m.producerVersion = producerVersion;
  m.domain = domain;
  m.modelVersion = modelVersion;
  m.docString = docString;
  m.metadata = metadata;
  m.opaqueRest = opaqueRest;
  return m;
}

}  // namespace whittle::ir
