#include "fold_util.h"

#include "whittle/passes/pass.h"

namespace whittle::passes {

bool isDefaultDomainOp(const ir::Node& node, std::initializer_list<std::string_view> ops) {
  if (!node.domain().empty() && node.domain() != "ai.onnx") return false;
  for (std::string_view op : ops) {
    if (node.opType() == op) return true;
  }
  return false;
}

bool hasSingleUse(const ir::Value& v) {
  return v.uses().size() == 1 && !v.uses()[0].implicit() && !v.isGraphOutput();
}

bool isFloatTensor(const ir::Tensor& t) {
  ir::DataType d = t.dtype();
  return d == ir::DataType::kFloat || d == ir::DataType::kFloat16 || d == ir::DataType::kBFloat16 ||
         d == ir::DataType::kDouble;
}

bool isFloatConstant(const ir::Value* v) {
  const ir::Tensor* t = constantOf(v);
  return t != nullptr && isFloatTensor(*t);
}

std::vector<double> toDoubles(const ir::Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[static_cast<size_t>(i)] = t.valueAsDouble(i);
  return out;
}

ir::Tensor fromDoubles(ir::DataType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  ir::Tensor t(dtype, std::move(dims));
  size_t n = values.size();
  switch (dtype) {
    case ir::DataType::kFloat: {
      float* p = t.mutableData<float>();
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(values[i]);
      break;
    }
    case ir::DataType::kDouble: {
      double* p = t.mutableData<double>();
      for (size_t i = 0; i < n; ++i) p[i] = values[i];
      break;
    }
    case ir::DataType::kFloat16: {
      auto* p = t.mutableData<uint16_t>();
      for (size_t i = 0; i < n; ++i) p[i] = ir::floatToHalf(static_cast<float>(values[i]));
      break;
    }
    case ir::DataType::kBFloat16: {
      auto* p = t.mutableData<uint16_t>();
      for (size_t i = 0; i < n; ++i) p[i] = ir::floatToBfloat16(static_cast<float>(values[i]));
      break;
    }
    default: WH_CHECK(false, "fromDoubles: unsupported dtype " + std::string(ir::dataTypeName(dtype)));
  }
  return t;
}

int64_t outputChannels(const ir::Node& conv, const ir::Tensor& weight) {
  if (conv.opType() == "ConvTranspose") return weight.dims()[1] * conv.attrInt("group", 1);
  return weight.dims()[0];
}

ir::Tensor scaleOutputChannels(const ir::Node& conv, const ir::Tensor& weight, const std::vector<double>& factor) {
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

std::vector<double> perChannelValues(const ir::Tensor& t, int64_t channels, int64_t rank) {
  // A constant of higher rank than the Conv output would broadcast it to more dims.
  if (t.rank() > rank) return {};
  if (t.numel() == 1) return std::vector<double>(static_cast<size_t>(channels), t.valueAsDouble(0));
  if (t.numel() != channels) return {};
  // Accept [C,1,...,1] (rank - 1 dims) and [1,C,1,...,1] (rank dims), leading 1s optional.
  const auto& d = t.dims();
  int64_t trailing = rank - 2;  // spatial dims after the channel axis
  if (static_cast<int64_t>(d.size()) < trailing + 1) return {};
  for (int64_t i = 0; i < trailing; ++i) {
    if (d[d.size() - 1 - static_cast<size_t>(i)] != 1) return {};
  }
  if (d[d.size() - 1 - static_cast<size_t>(trailing)] != channels) return {};
  for (size_t i = 0; i + 1 + static_cast<size_t>(trailing) < d.size(); ++i) {
    if (d[i] != 1) return {};
  }
  if (static_cast<int64_t>(d.size()) > rank) return {};
  return toDoubles(t);
}

}  // namespace whittle::passes

namespace whittle::passes {

ConvWithConstant matchConvWithConstant(const ir::Node& root) {
  ConvWithConstant result;
  if (root.numInputs() != 2) return result;
  for (size_t i = 0; i < 2; ++i) {
    const ir::Value* a = root.input(i);
    const ir::Value* b = root.input(1 - i);
    if (a == nullptr || b == nullptr || a->producer() == nullptr) continue;
    ir::Node* conv = a->producer();
    if (!isDefaultDomainOp(*conv, {"Conv"}) || !hasSingleUse(*a)) continue;
    const ir::Tensor* w = constantOf(conv->input(1));
    const ir::Tensor* c = constantOf(b);
    if (w == nullptr || c == nullptr || !isFloatTensor(*w) || c->dtype() != w->dtype() || w->rank() < 3) continue;
    if (conv->input(2) != nullptr && !isFloatConstant(conv->input(2))) continue;
    std::vector<double> values = perChannelValues(*c, w->dims()[0], w->rank());
    if (values.empty()) continue;
    result.conv = conv;
    result.values = std::move(values);
    result.convInput = i;
    return result;
  }
  return result;
}

void replaceConvParameters(ir::Node& conv, ir::Tensor weight, ir::Tensor bias) {
  ir::Graph& graph = conv.graph();
  ir::Value* w = graph.addInitializer(conv.input(1)->name() + "_fused", std::move(weight));
  std::string biasName = conv.input(2) ? conv.input(2)->name() + "_fused" : conv.output(0)->name() + "_bias";
  ir::Value* b = graph.addInitializer(biasName, std::move(bias));
  conv.setInput(1, w);
  if (conv.numInputs() < 3) {
    conv.addInput(b);
  } else {
    conv.setInput(2, b);
  }
}

}  // namespace whittle::passes

#include <cmath>

namespace whittle::passes {

std::optional<std::vector<int64_t>> knownRankDims(const ir::Value* v) {
  if (v == nullptr) return std::nullopt;
  if (const ir::Tensor* t = constantOf(v)) return t->dims();
  if (!v->type().shape) return std::nullopt;
  std::vector<int64_t> dims;
  for (const ir::Dim& d : *v->type().shape) dims.push_back(d.isKnown() ? d.value : -1);
  return dims;
}

bool bnAffine(const ir::Node& bn, int64_t channels, std::vector<double>& factor, std::vector<double>& shift) {
  if (!isDefaultDomainOp(bn, {"BatchNormalization"}) || bn.attrInt("training_mode", 0) != 0) return false;
  if (bn.numOutputs() > 1 && bn.output(1) != nullptr) return false;
  for (size_t i = 1; i <= 4; ++i) {
    if (!isFloatConstant(bn.input(i)) || constantOf(bn.input(i))->numel() != channels) return false;
  }
  std::vector<double> scale = toDoubles(*constantOf(bn.input(1)));
  std::vector<double> beta = toDoubles(*constantOf(bn.input(2)));
  std::vector<double> mean = toDoubles(*constantOf(bn.input(3)));
  std::vector<double> var = toDoubles(*constantOf(bn.input(4)));
  double eps = bn.attrFloat("epsilon", 1e-5f);
  factor.resize(static_cast<size_t>(channels));
  shift.resize(static_cast<size_t>(channels));
  for (size_t c = 0; c < factor.size(); ++c) {
    factor[c] = scale[c] / std::sqrt(var[c] + eps);
    shift[c] = beta[c] - mean[c] * factor[c];
  }
  return true;
}

}  // namespace whittle::passes

namespace whittle::passes {

ir::Node* producerIs(const ir::Value* v, std::string_view op, bool singleUse) {
  if (v == nullptr || v->producer() == nullptr) return nullptr;
  ir::Node* p = v->producer();
  if (!isDefaultDomainOp(*p, {op})) return nullptr;
  if (singleUse && !hasSingleUse(*v)) return nullptr;
  return p;
}

std::optional<double> scalarConstant(const ir::Value* v) {
  const ir::Tensor* t = constantOf(v);
  if (t == nullptr || t->numel() != 1 || t->dtype() == ir::DataType::kString) return std::nullopt;
  return t->valueAsDouble(0);
}

bool isScalarConstant(const ir::Value* v, double expected, double tol) {
  auto s = scalarConstant(v);
  return s && std::fabs(*s - expected) <= tol * std::max(1.0, std::fabs(expected));
}

ir::Value* otherInput(const ir::Node& node, const ir::Value* one) {
  if (node.numInputs() != 2) return nullptr;
  if (node.input(0) == one) return node.input(1);
  if (node.input(1) == one) return node.input(0);
  return nullptr;
}

}  // namespace whittle::passes

namespace whittle::passes {

std::optional<ir::Tensor> constantNodeValue(const ir::Node& node) {
  using K = ir::Attribute::Kind;
  if (node.attributes().size() != 1) return std::nullopt;
  const ir::Attribute& a = node.attributes()[0];
  if (a.name == "value" && a.kind == K::kTensor) return a.t;
  if (a.name == "value_float" && a.kind == K::kFloat) return ir::Tensor::fromVector(ir::DataType::kFloat, {}, std::vector<float>{a.f});
  if (a.name == "value_int" && a.kind == K::kInt) return ir::Tensor::fromVector(ir::DataType::kInt64, {}, std::vector<int64_t>{a.i});
  if (a.name == "value_floats" && a.kind == K::kFloats) {
    return ir::Tensor::fromVector(ir::DataType::kFloat, {static_cast<int64_t>(a.floats.size())}, a.floats);
  }
  if (a.name == "value_ints" && a.kind == K::kInts) {
    return ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(a.ints.size())}, a.ints);
  }
  return std::nullopt;
}

}  // namespace whittle::passes
