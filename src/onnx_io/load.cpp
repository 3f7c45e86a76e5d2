#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/unknown_field_set.h>
#include <onnx/defs/schema.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_set>

#include "proto_convert.h"
#include "whittle/common/file_util.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/subgraph.h"

namespace whittle::onnx_io {
namespace detail {

Expected<ir::ValueType> valueTypeFromProto(const onnx::TypeProto& proto, const std::string& valueName) {
  ir::ValueType type;
  if (proto.value_case() == onnx::TypeProto::VALUE_NOT_SET) return type;
  if (proto.value_case() != onnx::TypeProto::kTensorType || proto.has_denotation()) {
    type.opaqueTypeProto = proto.SerializeAsString();
    if (proto.value_case() == onnx::TypeProto::kTensorType) {
      type.dtype = static_cast<ir::DataType>(proto.tensor_type().elem_type());
    }
    return type;
  }
  const auto& tensor = proto.tensor_type();
  if (tensor.elem_type() != 0 && !ir::isKnownDataType(tensor.elem_type())) {
    return Status(ir::isNewerOnnxDataType(tensor.elem_type()) ? StatusCode::kUnimplemented : StatusCode::kInvalidInput,
                  "value '" + valueName + "': " + ir::unsupportedDataTypeText(tensor.elem_type()));
  }
  type.dtype = static_cast<ir::DataType>(tensor.elem_type());
  if (tensor.has_shape()) {
    std::vector<ir::Dim> dims;
    for (const auto& d : tensor.shape().dim()) {
      if (d.has_denotation()) {  // rare: keep the whole type verbatim
        type.opaqueTypeProto = proto.SerializeAsString();
      }
      if (d.has_dim_value()) {
        dims.push_back(ir::Dim::known(d.dim_value()));
      } else if (d.has_dim_param()) {
        dims.push_back(ir::Dim::symbolic(d.dim_param()));
      } else {
        dims.push_back(ir::Dim{});
      }
    }
    type.shape = std::move(dims);
  }
  return type;
}

}  // namespace detail

namespace {

using ExternalFiles = std::map<std::string, std::shared_ptr<const MappedFile>>;

// External data at offsets that are a multiple of this is mapped; elsewhere it is copied.
constexpr int64_t kBufferAlignment = 64;

// Names that nodes inside `graph` read from enclosing scopes. `scopes` holds the names
// defined by the enclosing subgraphs (not the main graph).
void collectCaptures(const onnx::GraphProto& graph, std::vector<const std::unordered_set<std::string>*>& scopes,
                     std::vector<std::string>& captures, std::unordered_set<std::string>& seen) {
  std::unordered_set<std::string> local;
  for (const auto& v : graph.input()) local.insert(v.name());
  for (const auto& t : graph.initializer()) local.insert(t.name());
  for (const auto& t : graph.sparse_initializer()) local.insert(t.values().name());
  for (const auto& n : graph.node()) {
    for (const auto& o : n.output()) local.insert(o);
  }
  auto definedInScope = [&](const std::string& name) {
    if (local.contains(name)) return true;
    for (const auto* s : scopes) {
      if (s->contains(name)) return true;
    }
    return false;
  };
  scopes.push_back(&local);
  for (const auto& n : graph.node()) {
    for (const auto& in : n.input()) {
      if (!in.empty() && !definedInScope(in) && seen.insert(in).second) captures.push_back(in);
    }
    for (const auto& a : n.attribute()) {
      if (a.has_g()) collectCaptures(a.g(), scopes, captures, seen);
      for (const auto& g : a.graphs()) collectCaptures(g, scopes, captures, seen);
    }
  }
  // A graph output may name an enclosing scope's value directly, with no node in between.
  for (const auto& out : graph.output()) {
    if (!out.name().empty() && !definedInScope(out.name()) && seen.insert(out.name()).second) captures.push_back(out.name());
  }
  scopes.pop_back();
}

class Loader {
 public:
  Loader(std::string baseDir, std::string label) : baseDir_(std::move(baseDir)), label_(std::move(label)) {}

  Expected<ir::Model> run(onnx::ModelProto& proto, const LoadOptions& options);
  Status convertSubgraph(onnx::GraphProto& proto, ir::Graph& graph) { return convertGraph(proto, graph); }

 private:
  Status fail(const Status& s) const { return s.withContext(label_); }
  Expected<std::shared_ptr<ir::Buffer>> resolveExternal(const ir::ExternalDataRef& ref);
  Expected<ir::Attribute> convertAttribute(onnx::AttributeProto& proto, const std::string& nodeLabel);
  Status convertGraph(onnx::GraphProto& proto, ir::Graph& graph);
  Status checkArity(const onnx::NodeProto& n, const std::string& labelText) const;
  /// checkArity on every node inside `n`'s subgraph attributes, nested bodies included: the IR
  /// keeps bodies serialized, and the runtime decodes them later without the model's opsets.
  Status checkSubgraphNodes(const onnx::NodeProto& n, const std::string& labelText) const;

  std::string baseDir_;
  /// The model's opset imports, by domain ("" for ai.onnx).
  std::map<std::string, int64_t> opsets_;
  std::string label_;
  ExternalFiles externalFiles_;
};

Expected<std::shared_ptr<ir::Buffer>> Loader::resolveExternal(const ir::ExternalDataRef& ref) {
  const std::string& location = ref.location;
  if (baseDir_.empty()) {
    return unimplemented("external data '" + location + "' inside a subgraph cannot be read once the model is loaded");
  }
  if (location.front() == '/' || location.find("..") != std::string::npos) {
    return invalidInput("external data location '" + location + "' must be a relative path inside the model's folder");
  }
  auto it = externalFiles_.find(location);
  if (it == externalFiles_.end()) {
    std::string path = baseDir_ + "/" + location;
    auto mapped = MappedFile::open(path);
    if (!mapped.isOk()) {
      if (mapped.status().code() == StatusCode::kNotFound) {
        return notFound("external data file '" + location + "' not found (looked for " + path + ")");
      }
      return mapped.status();
    }
    it = externalFiles_.emplace(location, std::move(mapped).value()).first;
  }
  const auto& file = it->second;
  // Compared without adding offset and length: a hostile offset must not overflow.
  if (ref.offset < 0 || ref.length < 0 || static_cast<uint64_t>(ref.offset) > file->size() ||
      static_cast<uint64_t>(ref.length) > file->size() - static_cast<uint64_t>(ref.offset)) {
    return invalidInput("external data '" + location + "' holds " + std::to_string(file->size()) +
                        " bytes, the tensor needs bytes " + std::to_string(ref.offset) + ".." +
                        std::to_string(static_cast<uint64_t>(ref.offset) + static_cast<uint64_t>(ref.length)));
  }
  const std::byte* bytes = file->data() + ref.offset;
  if (ref.offset % kBufferAlignment != 0) {
    // Kernels read elements in place: copy what is not aligned (ONNX does not require it;
    // whittle's own files and large tensors from ONNX's writer are aligned and stay mapped).
    auto copy = ir::Buffer::allocate(static_cast<size_t>(ref.length));
    if (ref.length > 0) std::memcpy(copy->mutableData(), bytes, static_cast<size_t>(ref.length));
    return copy;
  }
  return ir::Buffer::view(bytes, static_cast<size_t>(ref.length), file);
}

Expected<ir::Attribute> Loader::convertAttribute(onnx::AttributeProto& proto, const std::string& nodeLabel) {
  using K = ir::Attribute::Kind;
  ir::Attribute a;
  a.name = proto.name();
  a.refAttrName = proto.ref_attr_name();
  a.docString = proto.doc_string();
  auto type = proto.type();
  if (type == onnx::AttributeProto::UNDEFINED) {  // very old exporters leave it out: infer it
    if (proto.has_f()) type = onnx::AttributeProto::FLOAT;
    else if (proto.has_i()) type = onnx::AttributeProto::INT;
    else if (proto.has_s()) type = onnx::AttributeProto::STRING;
    else if (proto.has_t()) type = onnx::AttributeProto::TENSOR;
    else if (proto.has_g()) type = onnx::AttributeProto::GRAPH;
    else if (proto.floats_size()) type = onnx::AttributeProto::FLOATS;
    else if (proto.ints_size()) type = onnx::AttributeProto::INTS;
    else if (proto.strings_size()) type = onnx::AttributeProto::STRINGS;
    else if (proto.tensors_size()) type = onnx::AttributeProto::TENSORS;
    else if (proto.graphs_size()) type = onnx::AttributeProto::GRAPHS;
  }
  a.kind = static_cast<K>(type);
  ExternalResolver resolver = [this](const ir::ExternalDataRef& ref) { return resolveExternal(ref); };
  switch (type) {
    case onnx::AttributeProto::FLOAT: a.f = proto.f(); break;
    case onnx::AttributeProto::INT: a.i = proto.i(); break;
    case onnx::AttributeProto::STRING: a.s = proto.s(); break;
    case onnx::AttributeProto::FLOATS: a.floats.assign(proto.floats().begin(), proto.floats().end()); break;
    case onnx::AttributeProto::INTS: a.ints.assign(proto.ints().begin(), proto.ints().end()); break;
    case onnx::AttributeProto::STRINGS: a.strings.assign(proto.strings().begin(), proto.strings().end()); break;
    case onnx::AttributeProto::TENSOR: {
      a.tensorName = proto.t().name();
      auto t = tensorFromProto(*proto.mutable_t(), resolver);
      if (!t.isOk()) return t.status().withContext(nodeLabel + ": attribute '" + a.name + "'");
      a.t = std::move(t).value();
      break;
    }
    case onnx::AttributeProto::TENSORS:
      for (auto& tp : *proto.mutable_tensors()) {
        auto t = tensorFromProto(tp, resolver);
        if (!t.isOk()) return t.status().withContext(nodeLabel + ": attribute '" + a.name + "'");
        a.tensors.push_back(std::move(t).value());
        a.tensorNames.push_back(tp.name());
      }
      break;
    case onnx::AttributeProto::GRAPH:
    case onnx::AttributeProto::GRAPHS:
    case onnx::AttributeProto::SPARSE_TENSOR:
    case onnx::AttributeProto::SPARSE_TENSORS:
    case onnx::AttributeProto::TYPE_PROTO:
    case onnx::AttributeProto::TYPE_PROTOS: a.opaque = proto.SerializeAsString(); break;
    default:
      return invalidInput(nodeLabel + ": attribute '" + a.name + "' has unknown type " + std::to_string(proto.type()));
  }
  return a;
}

// Fields the linked onnx.proto does not know (newer ONNX versions add some), serialized.
std::string unknownFieldsOf(const google::protobuf::Message& message) {
  std::string out;
  const auto& unknown = message.GetReflection()->GetUnknownFields(message);
  if (!unknown.empty()) unknown.SerializeToString(&out);
  return out;
}

/// A default-domain attribute that became an input at an opset newer than libonnx 1.12 knows
/// (17): every such change from 18 through 28, listed from ONNX 1.23's operator schemas (an
/// attribute in version N-1 that version N lacks). Earlier ones are caught by libonnx's schemas.
struct TurnedInput {
  const char* op;
  int64_t since;
  const char* attribute;
};
constexpr TurnedInput kAttributesTurnedInputs[] = {
    {"ReduceL1", 18, "axes"},       {"ReduceL2", 18, "axes"},   {"ReduceLogSum", 18, "axes"},
    {"ReduceLogSumExp", 18, "axes"}, {"ReduceMax", 18, "axes"},  {"ReduceMean", 18, "axes"},
    {"ReduceMin", 18, "axes"},      {"ReduceProd", 18, "axes"}, {"ReduceSumSquare", 18, "axes"},
    {"DFT", 20, "axis"},
};

/// Refuses a node whose input or output count its ONNX schema does not allow, as ONNX Runtime
/// does when it loads a model: kernels and shape rules index their inputs by position, and a
/// MatMul with one input would otherwise read past its input list. At an opset newer than
/// libonnx knows, only the minimum counts of the newest schema it has are checked (later
/// versions add optional inputs, as ReduceMean-18 did, but do not drop required ones). Ops that
/// libonnx does not know are not checked.
Status Loader::checkArity(const onnx::NodeProto& n, const std::string& labelText) const {
  std::string domain = n.domain() == "ai.onnx" ? "" : n.domain();
  auto opset = opsets_.find(domain);
  if (opset == opsets_.end()) return Status::ok();
  // Attributes that became inputs after the newest opset libonnx knows, from our own table (see
  // kAttributesTurnedInputs): ONNX Runtime refuses them as unrecognized, and whittle's kernels,
  // which read the input, would silently ignore them (ReduceMean over every axis).
  if (domain.empty()) {
    for (const TurnedInput& t : kAttributesTurnedInputs) {
      if (n.op_type() != t.op || opset->second < t.since) continue;
      for (const onnx::AttributeProto& a : n.attribute()) {
        if (a.name() != t.attribute) continue;
        return invalidInput(labelText + ": attribute '" + a.name() + "' is not part of " + n.op_type() +
                            " at opset " + std::to_string(opset->second) + " (an input from " + n.op_type() + "-" +
                            std::to_string(t.since) + " on: the model's opset was raised without converting the node)");
      }
    }
  }
  const auto& ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto range = ranges.find(domain);
  if (range == ranges.end()) return Status::ok();
  const bool newer = opset->second > range->second.second;
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(
      n.op_type(), static_cast<int>(std::min<int64_t>(opset->second, range->second.second)), domain);
  if (schema == nullptr) return Status::ok();
  auto count = [](int k, const char* what) { return std::to_string(k) + " " + what + (k == 1 ? "" : "s"); };
  auto allowed = [](int lo, int hi) {
    if (lo == hi) return std::to_string(lo);
    if (hi == std::numeric_limits<int>::max()) return std::to_string(lo) + " or more";
    return std::to_string(lo) + " to " + std::to_string(hi);
  };
  std::string version = n.op_type() + "-" + std::to_string(schema->SinceVersion());
  // The one op whose required input became optional after libonnx's newest schema:
  // OptionalHasElement-18 takes an empty input (it has no element).
  const bool inputMadeOptional = newer && domain.empty() && n.op_type() == "OptionalHasElement" && opset->second >= 18;
  if ((!inputMadeOptional && n.input_size() < schema->min_input()) || (!newer && n.input_size() > schema->max_input())) {
    return invalidInput(labelText + ": has " + count(n.input_size(), "input") + "; " + version + " takes " +
                        allowed(schema->min_input(), schema->max_input()));
  }
  if (n.output_size() < schema->min_output() || (!newer && n.output_size() > schema->max_output())) {
    return invalidInput(labelText + ": has " + count(n.output_size(), "output") + "; " + version + " gives " +
                        allowed(schema->min_output(), schema->max_output()));
  }
  // An attribute the op's version does not have, as ONNX Runtime and the checker refuse it: often
  // one that became an input (ReduceSum's axes at 13) in a model whose opset was raised without
  // converting it, which kernels would otherwise ignore. Default domain only (ATen takes any), and
  // only at opsets libonnx knows (its schemas end at 17 on Debian 12; past that, only the table
  // above is checked, since libonnx cannot tell a newer version's new attributes from stray ones).
  if (!newer && domain.empty() && n.op_type() != "ATen") {
    for (const onnx::AttributeProto& a : n.attribute()) {
      // Typed or not: an untyped attribute with a value is converted with the type its value has
      // (old exporters leave the type out), and then written with it, so it must be refused here
      // too, or the saved model would not load (found by fuzz_model_load). One with neither type
      // nor value gets its own error when attributes are converted.
      if (schema->attributes().count(a.name()) != 0) continue;
      const bool valueless = !a.has_f() && !a.has_i() && !a.has_s() && !a.has_t() && !a.has_g() && !a.has_sparse_tensor() &&
                             !a.has_tp() && a.floats_size() == 0 && a.ints_size() == 0 && a.strings_size() == 0 &&
                             a.tensors_size() == 0 && a.graphs_size() == 0 && a.sparse_tensors_size() == 0 &&
                             a.type_protos_size() == 0;
      if (a.type() == onnx::AttributeProto::UNDEFINED && valueless) continue;
      bool isInput = false;
      for (const auto& in : schema->inputs()) isInput = isInput || in.GetName() == a.name();
      return invalidInput(labelText + ": attribute '" + a.name() + "' is not part of " + version +
                          (isInput ? " (there it is an input: the model's opset was raised without converting the node)"
                                   : ""));
    }
  }
  return Status::ok();
}

std::string nodeLabel(const onnx::NodeProto& n, int index) {
  std::string op = n.domain().empty() || n.domain() == "ai.onnx" ? n.op_type() : n.domain() + "." + n.op_type();
  return op + (n.name().empty() ? " #" + std::to_string(index) : " '" + n.name() + "'");
}

Status Loader::checkSubgraphNodes(const onnx::NodeProto& n, const std::string& labelText) const {
  auto checkGraph = [&](const onnx::GraphProto& g, const std::string& where) -> Status {
    for (int i = 0; i < g.node_size(); ++i) {
      const onnx::NodeProto& inner = g.node(i);
      std::string innerLabel = where + ": " + nodeLabel(inner, i);
      WH_RETURN_IF_ERROR(checkArity(inner, innerLabel));
      WH_RETURN_IF_ERROR(checkSubgraphNodes(inner, innerLabel));
    }
    return Status::ok();
  };
  for (const onnx::AttributeProto& a : n.attribute()) {
    if (a.has_g()) WH_RETURN_IF_ERROR(checkGraph(a.g(), labelText + " > " + a.name()));
    for (const onnx::GraphProto& g : a.graphs()) WH_RETURN_IF_ERROR(checkGraph(g, labelText + " > " + a.name()));
  }
  return Status::ok();
}

Status Loader::convertGraph(onnx::GraphProto& proto, ir::Graph& graph) {
  graph.setName(proto.name());
  graph.setDocString(proto.doc_string());
  graph.setUnknownFields(unknownFieldsOf(proto));
  ExternalResolver resolver = [this](const ir::ExternalDataRef& ref) { return resolveExternal(ref); };

  for (const auto& in : proto.input()) {
    if (in.name().empty()) return invalidInput("a graph input has an empty name");
    if (graph.findValue(in.name())) return invalidInput("two graph inputs are named '" + in.name() + "'");
    WH_ASSIGN_OR_RETURN(ir::ValueType type, detail::valueTypeFromProto(in.type(), in.name()));
    ir::Value* v = graph.addInput(in.name(), std::move(type));
    v->setDocString(in.doc_string());
    v->setValueInfoUnknownFields(unknownFieldsOf(in));
  }
  for (auto& init : *proto.mutable_initializer()) {
    const std::string name = init.name();
    if (name.empty()) return invalidInput("an initializer has an empty name");
    std::string initUnknown = unknownFieldsOf(init);
    auto tensor = tensorFromProto(init, resolver);
    if (!tensor.isOk()) return tensor.status().withContext("initializer '" + name + "'");
    ir::Value* existing = graph.findValue(name);
    if (existing != nullptr && existing->isInitializer()) return invalidInput("two initializers are named '" + name + "'");
    if (existing != nullptr) {  // listed as a graph input too (IR < 4 style): keep both roles
      existing->setConstant(std::move(tensor).value());
      existing->setTensorUnknownFields(std::move(initUnknown));
    } else {
      graph.addInitializer(name, std::move(tensor).value())->setTensorUnknownFields(std::move(initUnknown));
    }
  }
  for (const auto& sparse : proto.sparse_initializer()) graph.opaqueSparseInitializers().push_back(sparse.SerializeAsString());
  for (const auto& qa : proto.quantization_annotation()) graph.opaqueQuantAnnotations().push_back(qa.SerializeAsString());

  // Pass 1: every node output becomes a value, so that nodes may be listed out of order.
  std::vector<std::vector<ir::Value*>> outputs(static_cast<size_t>(proto.node_size()));
  std::unordered_map<std::string, int> producerOf;
  for (int i = 0; i < proto.node_size(); ++i) {
    const auto& n = proto.node(i);
    for (const auto& name : n.output()) {
      if (name.empty()) {
        outputs[i].push_back(nullptr);
        continue;
      }
      if (ir::Value* existing = graph.findValue(name)) {
        if (auto it = producerOf.find(name); it != producerOf.end()) {
          return invalidInput("tensor '" + name + "' is produced by two nodes: " + nodeLabel(proto.node(it->second), it->second) +
                              " and " + nodeLabel(n, i));
        }
        return invalidInput(nodeLabel(n, i) + ": output '" + name + "' is already a graph input or initializer" +
                            (existing->isInitializer() ? " (initializer)" : ""));
      }
      producerOf.emplace(name, i);
      outputs[i].push_back(graph.addValue(name));
    }
  }
  // Pass 2: nodes with their inputs and attributes.
  for (int i = 0; i < proto.node_size(); ++i) {
    auto& n = *proto.mutable_node(i);
    std::string labelText = nodeLabel(n, i);
    if (n.op_type().empty()) return invalidInput(labelText + ": empty op_type");
    WH_RETURN_IF_ERROR(checkArity(n, labelText));
    WH_RETURN_IF_ERROR(checkSubgraphNodes(n, labelText));
    std::vector<ir::Value*> inputs;
    for (const auto& name : n.input()) {
      if (name.empty()) {
        inputs.push_back(nullptr);
        continue;
      }
      ir::Value* v = graph.findValue(name);
      if (v == nullptr) {
        return invalidInput(labelText + ": input '" + name + "' is produced by no node and is not a graph input or initializer");
      }
      inputs.push_back(v);
    }
    std::vector<ir::Attribute> attributes;
    std::vector<std::string> captures;
    for (auto& ap : *n.mutable_attribute()) {
      if (ap.has_g() || ap.graphs_size() > 0) {
        std::vector<const std::unordered_set<std::string>*> scopes;
        std::unordered_set<std::string> seen(captures.begin(), captures.end());
        if (ap.has_g()) collectCaptures(ap.g(), scopes, captures, seen);
        for (const auto& g : ap.graphs()) collectCaptures(g, scopes, captures, seen);
      }
      WH_ASSIGN_OR_RETURN(ir::Attribute a, convertAttribute(ap, labelText));
      attributes.push_back(std::move(a));
    }
    ir::Node* node = graph.addNodeWithOutputs(n.op_type(), inputs, outputs[i], n.name(), n.domain());
    for (auto& a : attributes) node->setAttribute(std::move(a));
    node->setDocString(n.doc_string());
    node->setUnknownFields(unknownFieldsOf(n));
    for (const std::string& name : captures) {
      ir::Value* v = graph.findValue(name);
      if (v == nullptr) {
        return invalidInput(labelText + ": a subgraph reads '" + name + "', which is defined nowhere");
      }
      node->addImplicitInput(v);
    }
  }
  for (const auto& out : proto.output()) {
    ir::Value* v = graph.findValue(out.name());
    if (v == nullptr) return invalidInput("graph output '" + out.name() + "' is produced by no node and is not a graph input");
    WH_ASSIGN_OR_RETURN(ir::ValueType type, detail::valueTypeFromProto(out.type(), out.name()));
    if (!v->isInitializer() || type.dtype != ir::DataType::kUndefined) v->mutableType() = std::move(type);
    if (!out.doc_string().empty()) v->setDocString(out.doc_string());
    if (!v->isGraphInput()) v->setValueInfoUnknownFields(unknownFieldsOf(out));
    graph.addOutput(v);
  }
  for (const auto& info : proto.value_info()) {
    ir::Value* v = graph.findValue(info.name());
    if (v == nullptr) continue;  // value_info for a name nothing uses: harmless, dropped
    WH_ASSIGN_OR_RETURN(ir::ValueType type, detail::valueTypeFromProto(info.type(), info.name()));
    if (!v->isGraphInput() && !v->isGraphOutput()) v->mutableType() = std::move(type);
    if (!info.doc_string().empty()) v->setDocString(info.doc_string());
    if (!v->isGraphInput() && !v->isGraphOutput()) v->setValueInfoUnknownFields(unknownFieldsOf(info));
    v->setHasValueInfo(true);
  }
  return graph.topologicalSort();
}

Expected<ir::Model> Loader::run(onnx::ModelProto& proto, const LoadOptions& options) {
  if (!proto.has_graph()) return fail(invalidInput("not an ONNX model (no graph)"));
  if (proto.ir_version() <= 0) return fail(invalidInput("not an ONNX model (no ir_version)"));
  if (proto.ir_version() > kMaxIrVersion) {
    return fail(unimplemented("IR version " + std::to_string(proto.ir_version()) + " is newer than the newest whittle "
                              "knows (" + std::to_string(kMaxIrVersion) + ", ONNX 1.20 and later)"));
  }
  ir::Model model;
  model.irVersion = proto.ir_version();
  for (const auto& op : proto.opset_import()) {
    bool isDefault = op.domain().empty() || op.domain() == "ai.onnx";
    if (isDefault && options.strictOpsetRange && (op.version() < kMinOpset || op.version() > kMaxOpset)) {
      return fail(unimplemented("opset " + std::to_string(op.version()) + " is outside the range whittle supports (" +
                                std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")"));
    }
    model.opsetImports.push_back({op.domain(), op.version()});
    opsets_[isDefault ? "" : op.domain()] = op.version();
  }
  model.producerName = proto.producer_name();
  model.producerVersion = proto.producer_version();
  model.domain = proto.domain();
  model.modelVersion = proto.model_version();
  model.docString = proto.doc_string();
  for (const auto& kv : proto.metadata_props()) model.metadata.emplace_back(kv.key(), kv.value());

  Status status = convertGraph(*proto.mutable_graph(), *model.graph);
  if (!status.isOk()) return fail(status);

  onnx::ModelProto rest;
  rest.mutable_training_info()->Swap(proto.mutable_training_info());
  rest.mutable_functions()->Swap(proto.mutable_functions());
  rest.mutable_unknown_fields()->Swap(proto.mutable_unknown_fields());
  if (rest.ByteSizeLong() > 0) model.opaqueRest = rest.SerializeAsString();
  return model;
}

}  // namespace

Expected<ir::Model> loadFromBytes(const std::string& bytes, const std::string& baseDir, const std::string& label,
                                  const LoadOptions& options) {
  onnx::ModelProto proto;
  google::protobuf::io::CodedInputStream stream(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                static_cast<int>(std::min<size_t>(bytes.size(), INT_MAX)));
  stream.SetTotalBytesLimit(INT_MAX);
  if (bytes.empty()) return invalidInput(label + ": empty file, not an ONNX model");
  if (!proto.ParseFromCodedStream(&stream) || !stream.ConsumedEntireMessage()) {
    return invalidInput(label + ": not a valid ONNX model (the protobuf data is malformed or truncated)");
  }
  Loader loader(baseDir, label);
  return loader.run(proto, options);
}

Expected<Subgraph> loadSubgraph(const ir::Attribute& attribute, const std::string& label) {
  onnx::AttributeProto proto;
  if (attribute.kind != ir::Attribute::Kind::kGraph || !proto.ParseFromString(attribute.opaque) || !proto.has_g()) {
    return invalidInput(label + ": attribute '" + attribute.name + "' is not a graph");
  }
  onnx::GraphProto& graphProto = *proto.mutable_g();
  Subgraph sub;
  sub.numFormalInputs = static_cast<size_t>(graphProto.input_size());
  std::vector<const std::unordered_set<std::string>*> scopes;
  std::unordered_set<std::string> seen;
  collectCaptures(graphProto, scopes, sub.captures, seen);
  for (const std::string& name : sub.captures) graphProto.add_input()->set_name(name);
  sub.graph = std::make_unique<ir::Graph>();
  Loader loader("", label);
  Status status = loader.convertSubgraph(graphProto, *sub.graph);
  if (!status.isOk()) return status.withContext(label + ": subgraph '" + attribute.name + "'");
  return sub;
}

Expected<ir::Model> load(const std::string& path, const LoadOptions& options) {
  if (fileSize(path) > INT_MAX) {
    return unimplemented(path + ": model files over 2 GB must keep their weights in external data");
  }
  auto bytes = readFile(path);
  if (!bytes.isOk()) return bytes.status();
  return loadFromBytes(bytes.value(), parentDirectory(path), path, options);
}

}  // namespace whittle::onnx_io
