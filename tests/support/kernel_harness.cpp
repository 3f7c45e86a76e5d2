#include "support/kernel_harness.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "support/python.h"
#include "support/shell.h"
#include "whittle/data/npy.h"
#include "whittle/ir/shape_inference.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::testing {

int64_t numel(const std::vector<int64_t>& dims, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < dims.size(); ++i) n *= dims[i];
  return n;
}

bool nextIndex(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (size_t k = idx.size(); k-- > 0;) {
    if (++idx[k] < dims[k]) return true;
    idx[k] = 0;
  }
  return false;
}

std::vector<int64_t> broadcastDims(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t broadcastIndex(const std::vector<int64_t>& out, const std::vector<int64_t>& in, int64_t o) {
  int64_t index = 0, stride = 1;
  for (size_t k = 0; k < out.size(); ++k) {
    const size_t od = out.size() - 1 - k;
    const int64_t coord = o % out[od];
    o /= out[od];
    if (k < in.size()) {
      const int64_t d = in[in.size() - 1 - k];
      if (d != 1) index += coord * stride;
      stride *= d;
    }
  }
  return index;
}

void setValue(ir::Tensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case ir::DataType::kFloat: t.mutableData<float>()[i] = static_cast<float>(v); break;
    case ir::DataType::kDouble: t.mutableData<double>()[i] = v; break;
    case ir::DataType::kFloat16: t.mutableData<uint16_t>()[i] = ir::floatToHalf(static_cast<float>(v)); break;
    case ir::DataType::kBFloat16: t.mutableData<uint16_t>()[i] = ir::floatToBfloat16(static_cast<float>(v)); break;
    case ir::DataType::kInt8: t.mutableData<int8_t>()[i] = static_cast<int8_t>(v); break;
    case ir::DataType::kInt16: t.mutableData<int16_t>()[i] = static_cast<int16_t>(v); break;
    case ir::DataType::kInt32: t.mutableData<int32_t>()[i] = static_cast<int32_t>(v); break;
    case ir::DataType::kInt64: t.mutableData<int64_t>()[i] = static_cast<int64_t>(v); break;
    case ir::DataType::kUint8: t.mutableData<uint8_t>()[i] = toUnsigned<uint8_t>(v); break;
    case ir::DataType::kUint16: t.mutableData<uint16_t>()[i] = toUnsigned<uint16_t>(v); break;
    case ir::DataType::kUint32: t.mutableData<uint32_t>()[i] = toUnsigned<uint32_t>(v); break;
    case ir::DataType::kUint64: t.mutableData<uint64_t>()[i] = toUnsigned<uint64_t>(v); break;
    case ir::DataType::kBool: t.mutableData<uint8_t>()[i] = v != 0.0 ? 1 : 0; break;
    default: FAIL("setValue: unsupported dtype " << ir::dataTypeName(t.dtype()));
  }
}

ir::Tensor makeTensor(ir::DataType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  ir::Tensor t(dtype, std::move(dims));
  REQUIRE(static_cast<int64_t>(values.size()) == t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) setValue(t, i, values[static_cast<size_t>(i)]);
  return t;
}

ir::Tensor intTensor(ir::DataType type, std::vector<int64_t> dims, const std::vector<int32_t>& values) {
  ir::Tensor t(type, std::move(dims));
  for (size_t i = 0; i < values.size(); ++i) {
    switch (type) {
      case ir::DataType::kUint8: t.mutableData<uint8_t>()[i] = static_cast<uint8_t>(values[i]); break;
      case ir::DataType::kInt8: t.mutableData<int8_t>()[i] = static_cast<int8_t>(values[i]); break;
      case ir::DataType::kUint16: t.mutableData<uint16_t>()[i] = static_cast<uint16_t>(values[i]); break;
      case ir::DataType::kInt16: t.mutableData<int16_t>()[i] = static_cast<int16_t>(values[i]); break;
      default: t.mutableData<int32_t>()[i] = values[i]; break;
    }
  }
  return t;
}

std::vector<double> tensorValues(const ir::Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.valueAsDouble(i);
  return v;
}

std::vector<int32_t> intValues(const ir::Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<int32_t>(t.valueAsDouble(i));
  return v;
}

std::vector<double> roundTo(ir::DataType dtype, std::vector<double> values) {
  if (dtype != ir::DataType::kFloat && dtype != ir::DataType::kFloat16 && dtype != ir::DataType::kBFloat16)
    return values;
  ir::Tensor t(dtype, {static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) {
    setValue(t, static_cast<int64_t>(i), values[i]);
    values[i] = t.valueAsDouble(static_cast<int64_t>(i));
  }
  return values;
}

ir::Model oneNodeModel(const std::string& opType, const std::vector<NodeInput>& inputs,
                       const std::vector<ir::Attribute>& attributes, int64_t opset, size_t numOutputs,
                       std::vector<std::string> outputNames, InputShapes shapes, const std::string& domain,
                       int64_t domainOpset) {
  ir::Model m;
  m.opsetImports = {{"", opset}};
  if (!domain.empty()) m.opsetImports.push_back({domain, domainOpset});
  ir::Graph& g = *m.graph;
  std::vector<ir::Value*> values;
  for (const NodeInput& in : inputs) {
    if (in.name.empty()) {
      values.push_back(nullptr);
    } else if (in.constant) {
      values.push_back(g.addInitializer(in.name, in.tensor));
    } else {
      ir::ValueType type;
      type.dtype = in.tensor.dtype();
      if (shapes == InputShapes::kDeclared) {
        std::vector<ir::Dim> dims;
        for (int64_t d : in.tensor.dims()) dims.push_back(ir::Dim::known(d));
        type.shape = dims;
      }
      values.push_back(g.addInput(in.name, type));
    }
  }
  if (outputNames.empty()) {
    for (size_t i = 0; i < numOutputs; ++i) outputNames.push_back("y" + std::to_string(i));
  }
  ir::Node* node = g.addNode(opType, values, outputNames, "node", domain);
  for (const ir::Attribute& a : attributes) node->setAttribute(a);
  for (ir::Value* out : node->outputs()) {
    if (out != nullptr) g.addOutput(out);
  }
  return m;
}

std::vector<runtime::NamedTensor> feedsOf(const std::vector<NodeInput>& inputs) {
  std::vector<runtime::NamedTensor> feeds;
  for (const NodeInput& in : inputs) {
    if (!in.name.empty() && !in.constant) feeds.emplace_back(in.name, in.tensor);
  }
  return feeds;
}

Expected<std::vector<runtime::NamedTensor>> tryRunModel(const ir::Model& model,
                                                        const std::vector<runtime::NamedTensor>& feeds, int threads) {
  runtime::SessionOptions options;
  options.threads = threads;
  auto session = runtime::Session::create(model, options);
  if (!session.isOk()) return session.status();
  return (*session)->run(feeds);
}

std::vector<runtime::NamedTensor> runModel(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                           int threads) {
  auto outputs = tryRunModel(model, feeds, threads);
  INFO((outputs.isOk() ? std::string() : outputs.status().message()));
  REQUIRE(outputs.isOk());
  return std::move(outputs).value();
}

std::vector<ir::Tensor> runOutputs(const ir::Model& model, const std::vector<runtime::NamedTensor>& feeds,
                                   int threads) {
  std::vector<ir::Tensor> out;
  for (auto& [name, t] : runModel(model, feeds, threads)) out.push_back(std::move(t));
  return out;
}

Expected<std::vector<ir::Tensor>> runNode(const std::string& opType, const std::vector<NodeInput>& inputs,
                                          const std::vector<ir::Attribute>& attributes, int64_t opset, int threads,
                                          size_t numOutputs, InputShapes shapes) {
  ir::Model model = oneNodeModel(opType, inputs, attributes, opset, numOutputs, {}, shapes);
  auto outputs = tryRunModel(model, feedsOf(inputs), threads);
  if (!outputs.isOk()) return outputs.status();
  std::vector<ir::Tensor> result;
  for (auto& [name, t] : *outputs) result.push_back(std::move(t));
  return result;
}

ir::Tensor runOk(const std::string& opType, const std::vector<NodeInput>& inputs,
                 const std::vector<ir::Attribute>& attributes, int64_t opset, int threads) {
  auto out = runNode(opType, inputs, attributes, opset, threads);
  INFO(opType << ": " << (out.isOk() ? std::string() : out.status().message()));
  REQUIRE(out.isOk());
  return std::move((*out)[0]);
}

void checkKernelCase(const KernelCase& c, const std::vector<int>& threads) {
  const std::vector<runtime::NamedTensor> feeds = feedsOf(c.inputs);
  for (int t : threads) {
    const std::string context = c.what + " threads " + std::to_string(t);
    INFO(context);
    auto outputs = tryRunModel(c.model, feeds, t);
    REQUIRE((outputs.isOk() ? std::string() : outputs.status().message()) == "");
    REQUIRE(outputs->size() == c.expected.size());
    for (size_t i = 0; i < c.expected.size(); ++i) {
      const ExpectedOutput& e = c.expected[i];
      const ir::Tensor& actual = (*outputs)[i].second;
      INFO("output " << i);
      if (e.dtype) CHECK(actual.dtype() == *e.dtype);
      if (e.dims) CHECK(actual.dims() == *e.dims);
      checkClose(actual, e.values, e.rtol, e.atol, context + " output " + std::to_string(i));
    }
  }
}

std::vector<ReferenceCase> referenceCases(const std::string& script, const std::string& dir) {
  const std::string path = std::string(WHITTLE_SOURCE_DIR) + "/" + script;
  std::string out;
  REQUIRE(shell(python() + " " + shellQuote(path) + " " + shellQuote(dir), &out) == 0);
  std::vector<ReferenceCase> cases;
  std::istringstream names(out);
  for (std::string name; std::getline(names, name);) {
    if (name.empty()) continue;
    INFO("reference case " << name);
    auto model = onnx_io::load(dir + "/" + name + ".onnx");
    REQUIRE(model.isOk());
    auto arrays = data::readNpz(dir + "/" + name + ".npz");
    REQUIRE(arrays.isOk());
    ReferenceCase c{name, std::move(model).value(), {}};
    for (auto& [key, tensor] : *arrays) c.arrays.emplace(key, std::move(tensor));
    cases.push_back(std::move(c));
  }
  return cases;
}

double relativeError(const ir::Tensor& got, const ir::Tensor& expected) {
  double worst = 0, scale = 1e-6;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const double e = expected.valueAsDouble(i);
    if (!std::isinf(e)) scale = std::max(scale, std::abs(e));
  }
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const double e = expected.valueAsDouble(i), g = got.valueAsDouble(i);
    if (std::isinf(e) && g == e) continue;
    worst = std::max(worst, std::abs(g - e));
  }
  return worst / scale;
}

void checkReferenceCase(const ReferenceCase& c, double tolerance) {
  CAPTURE(c.name);
  std::vector<runtime::NamedTensor> feeds;
  for (const ir::Value* in : c.model.graph->inputs()) feeds.emplace_back(in->name(), c.arrays.at(in->name()));
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    auto outputs = runModel(c.model, feeds, threads);
    REQUIRE(outputs.size() == c.model.graph->outputs().size());
    for (const auto& [name, got] : outputs) {
      CAPTURE(name);
      const ir::Tensor& expected = c.arrays.at("expected_" + name);
      REQUIRE(got.dims() == expected.dims());
      CHECK(relativeError(got, expected) < tolerance);
    }
  }
  // Shape inference gives every output the dims the reference produced.
  ir::Model inferred = c.model.clone();
  ir::inferShapes(inferred);
  for (const ir::Value* out : inferred.graph->outputs()) {
    CAPTURE(out->name());
    auto dims = out->type().staticDims();
    REQUIRE(dims.has_value());
    CHECK(*dims == c.arrays.at("expected_" + out->name()).dims());
  }
}

}  // namespace whittle::testing
