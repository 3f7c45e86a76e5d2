#include "support/graph_builder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace whittle::testing {
namespace {

using ir::DataType;

// The inclusive range of integers `dtype` holds, as [lo, hi] clamped to it.
template <typename T>
std::pair<int64_t, int64_t> clampRange(double lo, double hi) {
  auto minV = static_cast<double>(std::numeric_limits<T>::lowest());
  auto maxV = static_cast<double>(std::numeric_limits<T>::max());
  double a = std::clamp(std::ceil(lo), minV, maxV);
  double b = std::clamp(std::floor(hi), minV, maxV);
  if (b < a) b = a;
  // uint64 max does not fit int64: the generator draws from the int64 range then.
  auto toInt = [](double v) {
    return v >= 9.2e18 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(v);
  };
  return {toInt(a), toInt(b)};
}

template <typename T>
void fillIntegers(ir::Tensor& t, std::mt19937_64& rng, double lo, double hi) {
  auto [a, b] = clampRange<T>(lo, hi);
  std::uniform_int_distribution<int64_t> dist(a, b);
  T* out = t.mutableData<T>();
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<T>(dist(rng));
}

}  // namespace

GraphBuilder::GraphBuilder(uint64_t seed) : rng_(seed) {}

ir::Value* GraphBuilder::input(const std::string& name, DataType dtype, std::vector<int64_t> dims) {
  std::vector<ir::Dim> shape;
  shape.reserve(dims.size());
  for (int64_t d : dims) shape.push_back(ir::Dim::known(d));
  return symbolicInput(name, dtype, std::move(shape));
}

ir::Value* GraphBuilder::symbolicInput(const std::string& name, DataType dtype, std::vector<ir::Dim> dims) {
  ir::ValueType type;
  type.dtype = dtype;
  type.shape = std::move(dims);
  return graph().addInput(name, std::move(type));
}

ir::Tensor GraphBuilder::randomTensor(DataType dtype, std::vector<int64_t> dims, double lo, double hi) {
  if (dtype == DataType::kString) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<std::string> values;
    for (int64_t i = 0; i < n; ++i) values.push_back("s" + std::to_string(rng_() % 1000));
    return ir::Tensor::strings(std::move(dims), std::move(values));
  }
  ir::Tensor t(dtype, std::move(dims));
  const int64_t n = t.numel();
  std::uniform_real_distribution<double> real(lo, hi);
  switch (dtype) {
    case DataType::kFloat: {
      auto* out = t.mutableData<float>();
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(real(rng_));
      break;
    }
    case DataType::kDouble: {
      auto* out = t.mutableData<double>();
      for (int64_t i = 0; i < n; ++i) out[i] = real(rng_);
      break;
    }
    case DataType::kFloat16: {
      auto* out = t.mutableData<uint16_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = ir::floatToHalf(static_cast<float>(real(rng_)));
      break;
    }
    case DataType::kBFloat16: {
      auto* out = t.mutableData<uint16_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = ir::floatToBfloat16(static_cast<float>(real(rng_)));
      break;
    }
    case DataType::kInt8: fillIntegers<int8_t>(t, rng_, lo, hi); break;
    case DataType::kUint8: fillIntegers<uint8_t>(t, rng_, lo, hi); break;
    case DataType::kInt16: fillIntegers<int16_t>(t, rng_, lo, hi); break;
    case DataType::kUint16: fillIntegers<uint16_t>(t, rng_, lo, hi); break;
    case DataType::kInt32: fillIntegers<int32_t>(t, rng_, lo, hi); break;
    case DataType::kUint32: fillIntegers<uint32_t>(t, rng_, lo, hi); break;
    case DataType::kInt64: fillIntegers<int64_t>(t, rng_, lo, hi); break;
    case DataType::kUint64: fillIntegers<uint64_t>(t, rng_, lo, hi); break;
    case DataType::kBool: {
      auto* out = t.mutableData<uint8_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(rng_() & 1u);
      break;
    }
    default: {  // complex, 8-bit floats, 4-bit types: random bytes
      std::byte* out = t.mutableRawData();
      for (size_t i = 0; i < t.byteSize(); ++i) out[i] = static_cast<std::byte>(rng_() & 0xffu);
      break;
    }
  }
  return t;
}

ir::Value* GraphBuilder::weight(const std::string& name, std::vector<int64_t> dims, DataType dtype, double lo,
                                double hi) {
  return constant(name, randomTensor(dtype, std::move(dims), lo, hi));
}

ir::Value* GraphBuilder::constant(const std::string& name, ir::Tensor tensor) {
  return graph().addInitializer(name, std::move(tensor));
}

ir::Value* GraphBuilder::constant(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& values) {
  return constant(name, ir::Tensor::fromVector(DataType::kFloat, std::move(dims), values));
}

ir::Value* GraphBuilder::constantInt64(const std::string& name, std::vector<int64_t> dims,
                                       const std::vector<int64_t>& values) {
  return constant(name, ir::Tensor::fromVector(DataType::kInt64, std::move(dims), values));
}

ir::Value* GraphBuilder::node(const std::string& opType, const std::vector<ir::Value*>& inputs,
                              std::vector<ir::Attribute> attributes, const std::string& name,
                              const std::string& domain) {
  return nodeN(opType, inputs, 1, std::move(attributes), name, domain).front();
}

std::vector<ir::Value*> GraphBuilder::nodeN(const std::string& opType, const std::vector<ir::Value*>& inputs,
                                            size_t numOutputs, std::vector<ir::Attribute> attributes,
                                            const std::string& name, const std::string& domain) {
  ir::Graph& g = graph();
  std::string nodeName = name.empty() ? g.uniqueNodeName(opType + "_" + std::to_string(g.numNodes())) : name;
  std::vector<std::string> outputNames;
  for (size_t i = 0; i < numOutputs; ++i) {
    outputNames.push_back(numOutputs == 1 ? nodeName : nodeName + "_out" + std::to_string(i));
  }
  last_ = g.addNode(opType, inputs, outputNames, nodeName, domain);
  for (ir::Attribute& a : attributes) last_->setAttribute(std::move(a));
  return last_->outputs();
}

void GraphBuilder::output(ir::Value* value) { graph().addOutput(value); }

void GraphBuilder::output(ir::Value* value, DataType dtype, std::vector<int64_t> dims) {
  ir::ValueType type;
  type.dtype = dtype;
  std::vector<ir::Dim> shape;
  for (int64_t d : dims) shape.push_back(ir::Dim::known(d));
  type.shape = std::move(shape);
  value->mutableType() = std::move(type);
  output(value);
}

void GraphBuilder::importDomain(const std::string& domain, int64_t version) {
  for (ir::OpsetImport& o : imports_) {
    if (o.domain == domain) {
      o.version = version;
      return;
    }
  }
  imports_.push_back({domain, version});
}

ir::Model GraphBuilder::build(int64_t opset) {
  ir::Model model = std::move(model_);
  model_ = ir::Model{};
  last_ = nullptr;
  model.irVersion = irVersionForOpset(opset);
  model.producerName = "whittle-tests";
  model.opsetImports = {{"", opset}};
  for (const ir::OpsetImport& o : imports_) model.setOpsetVersion(o.domain, o.version);
  imports_.clear();
  for (const ir::Node* n : model.graph->nodes()) {
    if (!n->domain().empty() && n->domain() != "ai.onnx" && model.opsetVersion(n->domain()) == 0) {
      model.setOpsetVersion(n->domain(), 1);
    }
  }
  if (model.graph->name().empty()) model.graph->setName("test_graph");
  return model;
}

int64_t irVersionForOpset(int64_t opset) {
  if (opset <= 8) return 3;
  if (opset == 9) return 4;
  if (opset == 10) return 5;
  if (opset == 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

std::string useListMismatch(const ir::Graph& graph) {
  using Key = std::pair<const ir::Node*, int32_t>;
  std::map<const ir::Value*, std::multiset<Key>> expected;
  for (const ir::Node* n : graph.nodes()) {
    for (size_t i = 0; i < n->numInputs(); ++i) {
      if (n->input(i) != nullptr) expected[n->input(i)].insert({n, static_cast<int32_t>(i)});
    }
    for (size_t k = 0; k < n->implicitInputs().size(); ++k) {
      expected[n->implicitInputs()[k]].insert({n, static_cast<int32_t>(-static_cast<int32_t>(k) - 1)});
    }
  }
  for (const ir::Value* v : graph.values()) {
    std::multiset<Key> actual;
    for (const ir::Value::Use& u : v->uses()) actual.insert({u.user, u.index});
    auto it = expected.find(v);
    const std::multiset<Key> none;
    const std::multiset<Key>& want = it == expected.end() ? none : it->second;
    if (actual != want) {
      return "use list of '" + v->name() + "' has " + std::to_string(actual.size()) + " uses, the nodes read it " +
             std::to_string(want.size()) + " times";
    }
    if (it != expected.end()) expected.erase(it);
  }
  if (!expected.empty()) {
    return "a node reads '" + expected.begin()->first->name() + "', which is not one of the graph's values";
  }
  return "";
}

std::vector<std::string> opTypes(const ir::Graph& graph) {
  std::vector<std::string> out;
  for (const ir::Node* n : graph.nodes()) out.push_back(n->opType());
  return out;
}

}  // namespace whittle::testing
