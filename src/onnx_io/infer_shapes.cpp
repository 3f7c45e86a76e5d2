// Shape inference for whole models: whittle's own rules (ir/shape_inference.h), with libonnx
// as the fallback for the ops they do not cover, where libonnx knows the model's opset.
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include "proto_convert.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::onnx_io {
namespace {

bool hasRule(const ir::Node& n) {
  return ir::hasShapeRule(n.domain(), n.opType()) && !n.hasSubgraphs();
}

/// Types from libonnx for the outputs of nodes that have no rule and no declared shape.
int64_t libonnxFallback(ir::Model& model) {
  onnx::ModelProto proto;
  detail::modelToProto(model, &proto, {}, /*stripLargeData=*/true);
  try {
    onnx::ShapeInferenceOptions options{/*check_type=*/false, /*error_mode=*/0, /*enable_data_propagation=*/false};
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception&) {
    return 0;  // our own rules still run
  }
  int64_t filled = 0;
  for (const auto& info : proto.graph().value_info()) {
    ir::Value* v = model.graph->findValue(info.name());
    if (v == nullptr || v->type().shape || v->producer() == nullptr || hasRule(*v->producer())) continue;
    auto type = detail::valueTypeFromProto(info.type(), info.name());
    if (!type.isOk() || !type->shape) continue;
    if (v->dtype() != ir::DataType::kUndefined && type->dtype != v->dtype()) continue;
    v->mutableType() = std::move(type).value();
    ++filled;
  }
  return filled;
}

}  // namespace

Expected<int64_t> inferShapes(ir::Model& model, const ir::ShapeInferenceOptions& options) {
  int64_t filled = 0;
  bool gaps = false;
  for (const ir::Node* n : model.graph->nodes()) gaps = gaps || !hasRule(*n);
  if (gaps && model.opsetVersion("") <= libonnxMaxOpset()) filled += libonnxFallback(model);
  filled += ir::inferShapes(model, options).filled;
  return filled;
}

std::vector<ir::DataType> subgraphOutputTypes(const ir::Node& node) {
  if (!node.domain().empty() && node.domain() != "ai.onnx") return {};
  const std::string& op = node.opType();
  const char* attribute = op == "If" ? "then_branch" : (op == "Loop" || op == "Scan") ? "body" : nullptr;
  if (attribute == nullptr) return {};
  std::vector<ir::DataType> types(node.numOutputs(), ir::DataType::kUndefined);
  const ir::Attribute* a = node.findAttribute(attribute);
  onnx::AttributeProto proto;
  if (a == nullptr || a->opaque.empty() || !proto.ParseFromString(a->opaque) || !proto.has_g()) return types;
  const int skip = op == "Loop" ? 1 : 0;  // a Loop body's first output is the condition
  for (size_t i = 0; i < types.size(); ++i) {
    const int k = static_cast<int>(i) + skip;
    if (k >= proto.g().output_size()) break;
    const onnx::TypeProto& type = proto.g().output(k).type();
    if (type.has_tensor_type() && type.tensor_type().elem_type() != 0) {
      types[i] = static_cast<ir::DataType>(type.tensor_type().elem_type());
    }
  }
  return types;
}

}  // namespace whittle::onnx_io
