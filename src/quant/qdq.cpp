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

}  // namespace whittle::quant
