#include "whittle/ir/fold.h"

#include <algorithm>
#include <cmath>

namespace whittle::ir {

std::vector<double> toDoubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[static_cast<size_t>(i)] = t.valueAsDouble(i);
  return out;
}

Tensor fromDoubles(DataType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  Tensor t(dtype, std::move(dims));
  size_t n = values.size();
  switch (dtype) {
    case DataType::kFloat: {
      float* p = t.mutableData<float>();
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(values[i]);
      break;
    }
    case DataType::kDouble: {
      double* p = t.mutableData<double>();
      for (size_t i = 0; i < n; ++i) p[i] = values[i];
      break;
    }
    case DataType::kFloat16: {
      auto* p = t.mutableData<uint16_t>();
      for (size_t i = 0; i < n; ++i) p[i] = floatToHalf(static_cast<float>(values[i]));
      break;
    }
    case DataType::kBFloat16: {
      auto* p = t.mutableData<uint16_t>();
      for (size_t i = 0; i < n; ++i) p[i] = floatToBfloat16(static_cast<float>(values[i]));
      break;
    }
    default: WH_CHECK(false, "fromDoubles: unsupported dtype " + std::string(dataTypeName(dtype)));
  }
  return t;
}

int64_t outputChannels(const Node& conv, const Tensor& weight) {
  if (conv.opType() == "ConvTranspose") return weight.dims()[1] * conv.attrInt("group", 1);
  return weight.dims()[0];
}

Tensor scaleOutputChannels(const Node& conv, const Tensor& weight, const std::vector<double>& factor) {
  std::vector<double> w = toDoubles(weight);
  const auto& dims = weight.dims();
  int64_t inner = 1;
  for (size_t i = 2; i < dims.size(); ++i) inner *= dims[i];
  if (conv.opType() == "ConvTranspose") {
    int64_t group = conv.attrInt("group", 1);
    int64_t cin = dims[0], coutPerGroup = dims[1], cinPerGroup = cin / group;
    for (int64_t ci = 0; ci < cin; ++ci) {
      for (int64_t j = 0; j < coutPerGroup; ++j) {
        double f = factor[static_cast<size_t>((ci / cinPerGroup) * coutPerGroup + j)];
        for (int64_t k = 0; k < inner; ++k) w[static_cast<size_t>((ci * coutPerGroup + j) * inner + k)] *= f;
      }
    }
  } else {
    int64_t perChannel = inner * dims[1];
    for (int64_t c = 0; c < dims[0]; ++c) {
      for (int64_t k = 0; k < perChannel; ++k) w[static_cast<size_t>(c * perChannel + k)] *= factor[static_cast<size_t>(c)];
    }
  }
  return fromDoubles(weight.dtype(), dims, w);
}

std::optional<ConvBatchNorm> matchConvBatchNorm(const Node& bn, ConstantScope scope) {
  if (!isDefaultDomainOp(bn, {"BatchNormalization"}) || bn.numInputs() != 5 || bn.output(0) == nullptr) return std::nullopt;
  if (bn.attrInt("training_mode", 0) != 0 || bn.attrInt("spatial", 1) != 1) return std::nullopt;
  for (size_t i = 1; i < bn.numOutputs(); ++i) {
    const Value* extra = bn.output(i);
    if (extra != nullptr && (extra->hasUses() || extra->isGraphOutput())) return std::nullopt;
  }
  const Value* y = bn.input(0);
  Node* conv = y != nullptr ? y->producer() : nullptr;
  if (conv == nullptr || !isDefaultDomainOp(*conv, {"Conv", "ConvTranspose"}) || !hasSingleUse(*y)) return std::nullopt;
  if (conv->input(0) == nullptr) return std::nullopt;
  const Tensor* w = constantOf(conv->input(1), scope);
  if (w == nullptr || !isFloatTensor(*w) || w->rank() < 3) return std::nullopt;
  const int64_t channels = outputChannels(*conv, *w);
  auto perChannel = [&](const Value* v) {
    const Tensor* t = constantOf(v, scope);
    return t != nullptr && isFloatTensor(*t) && t->numel() == channels;
  };
  if (conv->input(2) != nullptr && !perChannel(conv->input(2))) return std::nullopt;
  for (size_t i = 1; i <= 4; ++i) {
    if (!perChannel(bn.input(i))) return std::nullopt;
  }
  return ConvBatchNorm{conv, const_cast<Node*>(&bn)};
}

void foldConvBatchNorm(Graph& graph, const ConvBatchNorm& m, ConstantScope scope) {
  Node& conv = *m.conv;
  const Node& bn = *m.bn;
  const Value* oldW = conv.input(1);
  const Value* oldB = conv.input(2);
  const Tensor& w = *constantOf(oldW, scope);
  const int64_t channels = outputChannels(conv, w);
  std::vector<double> scale = toDoubles(*constantOf(bn.input(1), scope));
  std::vector<double> beta = toDoubles(*constantOf(bn.input(2), scope));
  std::vector<double> mean = toDoubles(*constantOf(bn.input(3), scope));
  std::vector<double> var = toDoubles(*constantOf(bn.input(4), scope));
  std::vector<double> bias = oldB ? toDoubles(*constantOf(oldB, scope)) : std::vector<double>(channels, 0.0);
  const double eps = bn.attrFloat("epsilon", 1e-5f);

  std::vector<double> factor(static_cast<size_t>(channels));
  std::vector<double> newBias(static_cast<size_t>(channels));
  for (size_t c = 0; c < factor.size(); ++c) {
    factor[c] = scale[c] / std::sqrt(var[c] + eps);
    newBias[c] = (bias[c] - mean[c]) * factor[c] + beta[c];
  }
  Value* wValue = graph.addInitializer(oldW->name() + "_bn_fused", scaleOutputChannels(conv, w, factor));
  Value* bValue = graph.addInitializer(bn.output(0)->name() + "_bias_fused", fromDoubles(w.dtype(), {channels}, newBias));
  conv.setInput(1, wValue);
  if (conv.numInputs() < 3) {
    conv.addInput(bValue);
  } else {
    conv.setInput(2, bValue);
  }
  conv.output(0)->mutableType() = bn.output(0)->type();
  graph.replaceAllUsesWith(bn.output(0), conv.output(0));
}

int64_t constantNodesToInitializers(Graph& graph, bool eraseNodes, const std::vector<std::string>& keep) {
  int64_t count = 0;
  graph.forEachNode([&](Node& node) {
    if (!isDefaultDomainOp(node, {"Constant"}) || node.numOutputs() != 1 || node.output(0) == nullptr) return;
    Value* out = node.output(0);
    if (out->isGraphOutput() || out->hasImplicitUses()) return;
    if (std::find(keep.begin(), keep.end(), out->name()) != keep.end()) return;
    std::optional<Tensor> t = constantNodeValue(node);
    if (!t) return;
    Value* c = graph.addInitializer(out->name() + "_const", std::move(*t));
    graph.replaceAllUsesWith(out, c);
    if (eraseNodes) graph.eraseNode(&node);
    ++count;
  });
  return count;
}

bool foldableOp(const Node& node) {
  if (node.hasSubgraphs() || node.numOutputs() == 0) return false;
  const std::string& op = node.opType();
  return op.rfind("Random", 0) != 0 && op != "Multinomial" && op != "Bernoulli" && op != "DequantizeLinear";
}

void replaceOutputsWithConstants(Graph& graph, const Node& node, std::vector<Tensor> values) {
  for (size_t i = 0; i < node.numOutputs() && i < values.size(); ++i) {
    Value* out = node.output(i);
    if (out == nullptr || !out->hasUses()) continue;
    Value* c = graph.addInitializer(out->name() + "_folded", std::move(values[i]));
    graph.replaceAllUsesWith(out, c);
  }
}

}  // namespace whittle::ir
