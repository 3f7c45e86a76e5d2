#include <google/protobuf/unknown_field_set.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>

#include <climits>
#include <set>

#include "proto_convert.h"
#include "whittle/common/file_util.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/subgraph.h"

namespace whittle::onnx_io {
namespace detail {

void valueTypeToProto(const ir::ValueType& type, onnx::TypeProto* proto) {
  if (!type.opaqueTypeProto.empty()) {
    proto->ParseFromString(type.opaqueTypeProto);
    return;
  }
  if (type.dtype == ir::DataType::kUndefined && !type.shape) return;
  auto* tensor = proto->mutable_tensor_type();
  tensor->set_elem_type(static_cast<int32_t>(type.dtype));
  if (!type.shape) return;
  auto* shape = tensor->mutable_shape();
  for (const ir::Dim& d : *type.shape) {
    auto* dim = shape->add_dim();
    if (d.isKnown()) {
      dim->set_dim_value(d.value);
    } else if (!d.param.empty()) {
      dim->set_dim_param(d.param);
    }
  }
}

namespace {

void valueInfoToProto(const ir::Value& v, onnx::ValueInfoProto* proto) {
  proto->set_name(v.name());
  if (!v.docString().empty()) proto->set_doc_string(v.docString());
  if (!v.valueInfoUnknownFields().empty()) proto->mutable_unknown_fields()->ParseFromString(v.valueInfoUnknownFields());
  const ir::ValueType& type = v.type();
  // A value_info without a type stays without one (an empty TypeProto would be added).
  if (!type.opaqueTypeProto.empty() || type.dtype != ir::DataType::kUndefined || type.shape) {
    valueTypeToProto(type, proto->mutable_type());
  }
}

void writeTensor(const ir::Tensor& tensor, const std::string& name, onnx::TensorProto* proto, const TensorWriter& writer,
                 bool stripLargeData) {
  if (writer && writer(tensor, name, proto)) return;
  if (stripLargeData && tensor.byteSize() > 1024 && !ir::isInteger(tensor.dtype())) {
    proto->set_name(name);
    proto->set_data_type(static_cast<int32_t>(tensor.dtype()));
    for (int64_t d : tensor.dims()) proto->add_dims(d);
    return;
  }
  tensorToProto(tensor, name, proto);
}

void attributeToProto(const ir::Attribute& a, onnx::AttributeProto* proto, const TensorWriter& writer, bool strip) {
  using K = ir::Attribute::Kind;
  if (a.isOpaque()) {
    proto->ParseFromString(a.opaque);
    return;
  }
  proto->set_name(a.name);
  proto->set_type(static_cast<onnx::AttributeProto::AttributeType>(a.kind));
  if (!a.refAttrName.empty()) proto->set_ref_attr_name(a.refAttrName);
  if (!a.docString.empty()) proto->set_doc_string(a.docString);
  switch (a.kind) {
    case K::kFloat: proto->set_f(a.f); break;
    case K::kInt: proto->set_i(a.i); break;
    case K::kString: proto->set_s(a.s); break;
    case K::kTensor: writeTensor(a.t, a.tensorName, proto->mutable_t(), writer, strip); break;
    case K::kFloats:
      for (float f : a.floats) proto->add_floats(f);
      break;
    case K::kInts:
      for (int64_t i : a.ints) proto->add_ints(i);
      break;
    case K::kStrings:
      for (const auto& s : a.strings) proto->add_strings(s);
      break;
    case K::kTensors:
      for (size_t k = 0; k < a.tensors.size(); ++k) {
        const std::string& name = k < a.tensorNames.size() ? a.tensorNames[k] : std::string();
        writeTensor(a.tensors[k], name, proto->add_tensors(), writer, strip);
      }
      break;
    default: break;
  }
}

}  // namespace

void modelToProto(const ir::Model& model, onnx::ModelProto* proto, const TensorWriter& writer, bool stripLargeData) {
  if (!model.opaqueRest.empty()) proto->ParseFromString(model.opaqueRest);
  proto->set_ir_version(model.irVersion);
  for (const auto& op : model.opsetImports) {
    auto* entry = proto->add_opset_import();
    entry->set_domain(op.domain);
    entry->set_version(op.version);
  }
  if (!model.producerName.empty()) proto->set_producer_name(model.producerName);
  if (!model.producerVersion.empty()) proto->set_producer_version(model.producerVersion);
  if (!model.domain.empty()) proto->set_domain(model.domain);
  if (model.modelVersion != 0) proto->set_model_version(model.modelVersion);
  if (!model.docString.empty()) proto->set_doc_string(model.docString);
  for (const auto& [k, v] : model.metadata) {
    auto* entry = proto->add_metadata_props();
    entry->set_key(k);
    entry->set_value(v);
  }

  const ir::Graph& graph = *model.graph;
  auto* g = proto->mutable_graph();
  g->set_name(graph.name());
  if (!graph.docString().empty()) g->set_doc_string(graph.docString());
  if (!graph.unknownFields().empty()) g->mutable_unknown_fields()->ParseFromString(graph.unknownFields());
  for (const ir::Value* v : graph.inputs()) valueInfoToProto(*v, g->add_input());
  for (const ir::Value* v : graph.initializers()) {
    onnx::TensorProto* t = g->add_initializer();
    writeTensor(*v->constant(), v->name(), t, writer, stripLargeData);
    if (!v->tensorUnknownFields().empty()) t->mutable_unknown_fields()->ParseFromString(v->tensorUnknownFields());
  }
  for (const std::string& s : graph.opaqueSparseInitializers()) g->add_sparse_initializer()->ParseFromString(s);
  for (const ir::Node* n : graph.nodes()) {
    auto* np = g->add_node();
    for (const ir::Value* in : n->inputs()) np->add_input(in ? in->name() : "");
    for (const ir::Value* out : n->outputs()) np->add_output(out ? out->name() : "");
    if (!n->name().empty()) np->set_name(n->name());
    np->set_op_type(n->opType());
    if (!n->domain().empty()) np->set_domain(n->domain());
    if (!n->docString().empty()) np->set_doc_string(n->docString());
    if (!n->unknownFields().empty()) np->mutable_unknown_fields()->ParseFromString(n->unknownFields());
    for (const ir::Attribute& a : n->attributes()) attributeToProto(a, np->add_attribute(), writer, stripLargeData);
  }
  for (const ir::Value* v : graph.outputs()) valueInfoToProto(*v, g->add_output());
  for (const ir::Value* v : graph.values()) {
    if (v->hasValueInfo() && !v->isGraphInput() && !v->isGraphOutput() && (v->producer() || v->isInitializer())) {
      valueInfoToProto(*v, g->add_value_info());
    }
  }
  for (const std::string& s : graph.opaqueQuantAnnotations()) g->add_quantization_annotation()->ParseFromString(s);
}

}  // namespace detail

namespace {

constexpr size_t kExternalAlignment = 64;

std::string baseName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

size_t totalTensorBytes(const ir::Model& model) {
  size_t total = 0;
  for (const ir::Value* v : model.graph->initializers()) total += v->constant()->byteSize();
  for (const ir::Node* n : model.graph->nodes()) {
    for (const ir::Attribute& a : n->attributes()) total += a.t.byteSize();
  }
  return total;
}

}  // namespace

Status storeSubgraph(Subgraph& sub, ir::Attribute& attribute) {
  onnx::AttributeProto proto;
  if (attribute.kind != ir::Attribute::Kind::kGraph || !proto.ParseFromString(attribute.opaque) || !proto.has_g()) {
    return invalidInput("attribute '" + attribute.name + "' is not a graph");
  }
  ir::Model holder;
  holder.graph = std::move(sub.graph);
  onnx::ModelProto model;
  detail::modelToProto(holder, &model);
  sub.graph = std::move(holder.graph);
  onnx::GraphProto* g = model.mutable_graph();
  // The captures were appended after the formal inputs: drop them (a rewrite may have removed
  // those it no longer reads).
  const std::set<std::string> captured(sub.captures.begin(), sub.captures.end());
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> formal;
  for (const onnx::ValueInfoProto& in : g->input()) {
    if (!captured.contains(in.name())) *formal.Add() = in;
  }
  if (formal.size() != static_cast<int>(sub.numFormalInputs)) {
    return internalError("subgraph '" + attribute.name + "': " + std::to_string(formal.size()) + " formal inputs left, expected " +
                         std::to_string(sub.numFormalInputs));
  }
  g->mutable_input()->Swap(&formal);
  proto.mutable_g()->Swap(g);
  attribute.opaque = proto.SerializeAsString();
  return Status::ok();
}

Expected<std::string> serialize(const ir::Model& model) {
  if (totalTensorBytes(model) > size_t{INT_MAX} - (size_t{64} << 20)) {
    return unimplemented("the model is over 2 GB: save it with external data");
  }
  onnx::ModelProto proto;
  detail::modelToProto(model, &proto);
  return proto.SerializeAsString();
}

Status save(const ir::Model& model, const std::string& path, const SaveOptions& options) {
  bool external = options.externalData ||
                  (options.autoExternalAbove2GB && totalTensorBytes(model) > size_t{INT_MAX} - (size_t{64} << 20));
  onnx::ModelProto proto;
  if (!external) {
    detail::modelToProto(model, &proto);
    std::string bytes = proto.SerializeAsString();
    return writeFileAtomic(path, bytes);
  }

  std::string dataName = options.externalFileName.empty() ? baseName(path) + ".data" : options.externalFileName;
  std::string dataPath = parentDirectory(path) + "/" + dataName;
  AtomicFileWriter dataWriter(dataPath);
  WH_RETURN_IF_ERROR(dataWriter.open());
  size_t offset = 0;
  Status writeStatus;
  detail::TensorWriter writer = [&](const ir::Tensor& t, const std::string& name, onnx::TensorProto* tp) {
    if (t.byteSize() < options.externalThreshold || t.dtype() == ir::DataType::kString || !writeStatus.isOk()) return false;
    static const char kZeros[kExternalAlignment] = {};
    size_t padding = (kExternalAlignment - offset % kExternalAlignment) % kExternalAlignment;
    writeStatus = dataWriter.write(kZeros, padding);
    offset += padding;
    if (writeStatus.isOk()) writeStatus = dataWriter.write(t.rawData(), t.byteSize());
    tp->set_name(name);
    tp->set_data_type(static_cast<int32_t>(t.dtype()));
    for (int64_t d : t.dims()) tp->add_dims(d);
    tp->set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&](const std::string& k, const std::string& v) {
      auto* e = tp->add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    add("location", dataName);
    add("offset", std::to_string(offset));
    add("length", std::to_string(t.byteSize()));
    offset += t.byteSize();
    return true;
  };
  detail::modelToProto(model, &proto, writer);
  WH_RETURN_IF_ERROR(writeStatus);
  std::string bytes = proto.SerializeAsString();
  // The data file goes into place first: a model file never points at missing data.
  WH_RETURN_IF_ERROR(dataWriter.commit());
  return writeFileAtomic(path, bytes);
}

int64_t libonnxMaxOpset() {
  const auto& map = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto it = map.find(onnx::ONNX_DOMAIN);
  return it == map.end() ? 0 : it->second.second;
}

CheckResult checkModel(const ir::Model& model) {
  CheckResult result;
  if (model.irVersion > onnx::IR_VERSION) {
    result.skipReason = "IR version " + std::to_string(model.irVersion) + " is newer than the linked ONNX checker knows (" +
                        std::to_string(onnx::IR_VERSION) + ")";
    return result;
  }
  int64_t opset = model.opsetVersion("");
  if (opset > libonnxMaxOpset()) {
    result.skipReason = "opset " + std::to_string(opset) + " is newer than the linked ONNX checker knows (" +
                        std::to_string(libonnxMaxOpset()) + ")";
    return result;
  }
  onnx::ModelProto proto;
  detail::modelToProto(model, &proto);
  result.ran = true;
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    std::string message = e.what();
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    for (char& c : message) {
      if (c == '\n') c = ' ';
    }
    result.status = invalidInput("ONNX checker: " + message);
  }
  return result;
}

}  // namespace whittle::onnx_io
