#include "whittle/quant/qdq.h"

#include <set>
#include <string_view>

namespace whittle::quant {

int64_t weightChannelAxis(const ir::Node& node, size_t inputIndex, int64_t rank) {
  const std::string& op = node.opType();
  if (op == "Conv" && inputIndex == 1) return rank >= 2 ? 0 : -1;
  if (op == "ConvTranspose" && inputIndex == 1) return (rank >= 2 && node.attrInt("group", 1) == 1) ? 1 : -1;
  if (op == "Gemm" && inputIndex == 1 && rank == 2) return node.attrInt("transB", 0) != 0 ? 0 : 1;
  if (op == "MatMul" && inputIndex == 1 && rank == 2) return 1;
  return -1;
}

ir::Value* addScaleInitializer(ir::Graph& graph, const std::string& base, const std::vector<float>& scales,
                               bool scalar) {
  std::vector<int64_t> dims;
  if (!scalar) dims = {static_cast<int64_t>(scales.size())};
  return graph.addInitializer(graph.uniqueValueName(base + "_scale"),
                              ir::Tensor::fromVector(ir::DataType::kFloat, dims, scales));
}

ir::Value* addZeroPointInitializer(ir::Graph& graph, const std::string& base, ir::DataType dtype,
                                   const std::vector<int32_t>& zeroPoints, bool scalar) {
  std::vector<int64_t> dims;
  if (!scalar) dims = {static_cast<int64_t>(zeroPoints.size())};
  ir::Tensor t(dtype, dims);
  for (size_t i = 0; i < zeroPoints.size(); ++i) {
    switch (dtype) {
      case ir::DataType::kUint8: t.mutableData<uint8_t>()[i] = static_cast<uint8_t>(zeroPoints[i]); break;
      case ir::DataType::kInt8: t.mutableData<int8_t>()[i] = static_cast<int8_t>(zeroPoints[i]); break;
      default: t.mutableData<int32_t>()[i] = zeroPoints[i]; break;
    }
  }
  return graph.addInitializer(graph.uniqueValueName(base + "_zero_point"), std::move(t));
}

ir::Value* insertQdqPair(ir::Graph& graph, ir::Value* t, const QuantParams& params) {
  std::vector<ir::Value::Use> uses = t->uses();
  std::string base = t->name();
  ir::Value* scale = addScaleInitializer(graph, base, {params.scale}, /*scalar=*/true);
  ir::Value* zp = addZeroPointInitializer(graph, base, params.dtype, {params.zeroPoint}, /*scalar=*/true);
  ir::Node* q = graph.addNode("QuantizeLinear", {t, scale, zp}, {base + "_quantized"}, graph.uniqueNodeName(base + "_QuantizeLinear"));
  ir::Value* tq = q->output(0);
  tq->mutableType().dtype = params.dtype;
  tq->mutableType().shape = t->type().shape;
  ir::Node* dq = graph.addNode("DequantizeLinear", {tq, scale, zp}, {base + "_dequantized"},
                               graph.uniqueNodeName(base + "_DequantizeLinear"));
  ir::Value* td = dq->output(0);
  td->mutableType() = t->type();
  if (td->dtype() == ir::DataType::kUndefined) td->mutableType().dtype = ir::DataType::kFloat;
  for (const ir::Value::Use& u : uses) {
    if (!u.implicit()) u.user->setInput(static_cast<size_t>(u.index), td);
  }
  const auto& outs = graph.outputs();
  for (size_t i = 0; i < outs.size(); ++i) {
    if (outs[i] != t) continue;
    // The model's interface keeps its names: the dequantized value takes the output's name.
    std::string name = t->name();
    (void)graph.renameValue(t, graph.uniqueValueName(name + "_float"));
    (void)graph.renameValue(td, name);
    td->setHasValueInfo(t->hasValueInfo());
    graph.setOutput(i, td);
  }
  return tq;
}

Expected<ir::Value*> addWeightDq(ir::Graph& graph, const ir::Tensor& weight, const std::string& base, int64_t axis,
                                 bool reduceRange, std::vector<float>* scales) {
  WH_ASSIGN_OR_RETURN(QuantizedWeight qw, quantizeWeight(weight, axis, reduceRange));
  bool scalar = axis < 0;
  ir::Value* q = graph.addInitializer(graph.uniqueValueName(base + "_quantized"), qw.values);
  ir::Value* s = addScaleInitializer(graph, base, qw.scales, scalar);
  ir::Value* zp = addZeroPointInitializer(graph, base, ir::DataType::kInt8, std::vector<int32_t>(qw.scales.size(), 0), scalar);
  ir::Node* dq = graph.addNode("DequantizeLinear", {q, s, zp}, {base + "_dequantized"},
                               graph.uniqueNodeName(base + "_DequantizeLinear"));
  if (!scalar) dq->setAttribute(ir::Attribute::makeInt("axis", axis));
  dq->output(0)->mutableType().dtype = ir::DataType::kFloat;
  std::vector<ir::Dim> dims;
  for (int64_t d : weight.dims()) dims.push_back(ir::Dim::known(d));
  dq->output(0)->mutableType().shape = dims;
  if (scales != nullptr) *scales = std::move(qw.scales);
  return dq->output(0);
}

Expected<ir::Value*> addBiasDq(ir::Graph& graph, const ir::Tensor& bias, const std::string& base, float inputScale,
                               const std::vector<float>& weightScales) {
  std::vector<float> scales;
  WH_ASSIGN_OR_RETURN(ir::Tensor q, quantizeBias(bias, inputScale, weightScales, &scales));
  bool scalar = scales.size() == 1;
  ir::Value* qv = graph.addInitializer(graph.uniqueValueName(base + "_quantized"), std::move(q));
  ir::Value* s = addScaleInitializer(graph, base, scales, scalar);
  ir::Value* zp = addZeroPointInitializer(graph, base, ir::DataType::kInt32, std::vector<int32_t>(scales.size(), 0), scalar);
  ir::Node* dq = graph.addNode("DequantizeLinear", {qv, s, zp}, {base + "_dequantized"},
                               graph.uniqueNodeName(base + "_DequantizeLinear"));
  if (!scalar) dq->setAttribute(ir::Attribute::makeInt("axis", 0));
  dq->output(0)->mutableType().dtype = ir::DataType::kFloat;
  std::vector<ir::Dim> dims;
  for (int64_t d : bias.dims()) dims.push_back(ir::Dim::known(d));
  dq->output(0)->mutableType().shape = dims;
  return dq->output(0);
}

Status ensureOpset(ir::Model& model, int64_t minOpset) {
  int64_t current = model.opsetVersion("");
  if (current >= minOpset) return Status::ok();
  // Ops whose meaning is the same from opset 7 to 13 (checked against the ONNX changelog:
  // only type lists, optional inputs with the old defaults, or attributes with the old
  // defaults were added on the way).
  static const std::set<std::string_view> kStable = {
      "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid",
      "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose",
      "Concat", "Identity", "Constant", "Shape", "Gather", "Sum", "Max", "Min", "Exp", "Log", "Sqrt", "Pow", "Abs",
      "Neg", "Cast", "BatchNormalization", "LRN", "PRelu", "Sign", "Floor", "Ceil", "Tile", "Expand",
      "QuantizeLinear", "DequantizeLinear"};
  if (current < 7) {
    return unimplemented("quantization needs opset >= " + std::to_string(minOpset) + "; the model imports opset " +
                         std::to_string(current) + ", which is older than whittle can upgrade");
  }
  static const std::set<std::string_view> kCoercing = {"Softmax", "LogSoftmax", "Hardmax"};
  for (ir::Node* n : model.graph->nodes()) {
    if (!n->domain().empty() && n->domain() != "ai.onnx") continue;
    if (kCoercing.contains(n->opType())) continue;  // rewritten below
    // Clip takes min/max as inputs from opset 11 on (same meaning up to 13); Squeeze and
    // Unsqueeze take their axes as an input from 13 on (moved below).
    if (n->opType() == "Clip" && current >= 11) continue;
    if (n->opType() == "Squeeze" || n->opType() == "Unsqueeze") continue;
    if (!kStable.contains(n->opType()) || n->hasSubgraphs()) {
      return unimplemented("quantization needs opset >= " + std::to_string(minOpset) + "; the model imports opset " +
                           std::to_string(current) + " and " + n->describe() +
                           " changed meaning since, so whittle does not upgrade it (convert the model to opset " +
                           std::to_string(minOpset) + " first)");
    }
  }
  // Before opset 13, Softmax(axis=a) works on the input flattened to 2-D at a; from 13 on
  // only along a. Where the two can differ, make the old meaning explicit:
  //   Reshape(Softmax(Flatten(x, axis=a), axis=1), Shape(x)).
  ir::Graph& g = *model.graph;
  for (ir::Node* n : g.nodes()) {
    if ((!n->domain().empty() && n->domain() != "ai.onnx") || !kCoercing.contains(n->opType()) || current >= 13) continue;
    int64_t axis = n->attrInt("axis", 1);
    const ir::Value* x = n->input(0);
    if (x->type().shape) {
      int64_t rank = static_cast<int64_t>(x->type().shape->size());
      int64_t a = axis < 0 ? axis + rank : axis;
      bool onlyOnes = true;
      for (int64_t d = a + 1; d < rank; ++d) onlyOnes = onlyOnes && (*x->type().shape)[d].value == 1;
      if (onlyOnes) {
        // The same either way, but the default axis changed from 1 to -1: make it explicit.
        n->setAttribute(ir::Attribute::makeInt("axis", axis));
        continue;
      }
    }
    ir::Value* in = n->input(0);
    ir::Value* out = n->output(0);
    ir::Node* flat = g.addNode("Flatten", {in}, {in->name() + "_2d"}, g.uniqueNodeName(n->name() + "_flatten"), "", n);
    flat->setAttribute(ir::Attribute::makeInt("axis", axis));
    flat->output(0)->mutableType().dtype = in->dtype();
    ir::Node* shape = g.addNode("Shape", {in}, {in->name() + "_shape"}, g.uniqueNodeName(n->name() + "_shape"), "", n);
    shape->output(0)->mutableType().dtype = ir::DataType::kInt64;
    ir::Node* sm = g.addNode(n->opType(), {flat->output(0)}, {out->name() + "_2d"}, g.uniqueNodeName(n->name() + "_2d"), "", n);
    sm->setAttribute(ir::Attribute::makeInt("axis", 1));
    sm->output(0)->mutableType().dtype = in->dtype();
    ir::Node* back = g.addNode("Reshape", {sm->output(0), shape->output(0)}, {out->name() + "_nd"},
                               g.uniqueNodeName(n->name() + "_reshape"), "", n);
    back->output(0)->mutableType() = out->type();
    g.replaceAllUsesWith(out, back->output(0));
    g.eraseNode(n);
  }
  if (current < 13 && minOpset >= 13) {
    for (ir::Node* n : g.nodes()) {
      if ((n->opType() != "Squeeze" && n->opType() != "Unsqueeze") || !n->domain().empty()) continue;
      const ir::Attribute* axes = n->findAttribute("axes");
      if (axes == nullptr) continue;  // Squeeze without axes: all 1-dims, the same in 13
      std::vector<int64_t> values = axes->ints;
      ir::Value* a = g.addInitializer(g.uniqueValueName(n->name() + "_axes"),
                                      ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(values.size())}, values));
      n->removeAttribute("axes");
      if (n->numInputs() < 2) {
        n->addInput(a);
      } else {
        n->setInput(1, a);
      }
    }
  }
  model.setOpsetVersion("", minOpset);
  if (model.irVersion < 7) model.irVersion = 7;
  return Status::ok();
}

}  // namespace whittle::quant
