// Runs the ONNX backend node tests (unpacked by scripts/setup.sh into .cache/onnx-node-tests)
// for every case whose ops the CPU runtime registers. Failures must be listed, with a
// reason, in tests/runtime/node_expected_failures.txt; a listed case that passes is an error
// too, so the list stays true.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <map>
#include <sstream>

#include <onnx/onnx_pb.h>
// onnx_pb.h first: it defines ONNX_API, which the data protos' header needs.
#include <onnx/onnx-data_pb.h>

#include "support/python.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/subgraph.h"
#include "whittle/onnx_io/tensor_proto.h"
#include "whittle/runtime/kernel.h"
#include "whittle/runtime/session.h"

namespace fs = std::filesystem;
using namespace whittle;

namespace {

struct CaseResult {
  bool supported = false;
  bool passed = false;
  std::string reason;
};

std::string formatValue(const ir::Tensor& t, int64_t i) {
  std::ostringstream s;
  s << t.valueAsDouble(i);
  return s.str();
}

/// The node tests store bfloat16 data as uint16 (numpy has no bfloat16): the same bits, read
/// as the bfloat16 the model declares. Any other mismatch is left for the session to refuse.
ir::Tensor asDeclared(ir::Tensor t, ir::DataType declared) {
  if (declared == ir::DataType::kBFloat16 && t.dtype() == ir::DataType::kUint16) {
    return ir::Tensor(declared, t.dims(), t.buffer());
  }
  return t;
}

// Compares as the ONNX backend test runner does: exact for integers and bools, otherwise
// |a - b| <= atol + rtol * |b| with rtol 1e-3, atol 1e-7 (NaN equals NaN).
std::string compareTensors(const ir::Tensor& expected, const ir::Tensor& actual, const std::string& name) {
  if (expected.dtype() != actual.dtype()) {
    return name + ": dtype " + std::string(ir::dataTypeName(actual.dtype())) + ", expected " +
           std::string(ir::dataTypeName(expected.dtype()));
  }
  if (expected.dims() != actual.dims()) {
    std::string a, e;
    for (auto d : actual.dims()) a += std::to_string(d) + ",";
    for (auto d : expected.dims()) e += std::to_string(d) + ",";
    return name + ": shape [" + a + "], expected [" + e + "]";
  }
  if (expected.dtype() == ir::DataType::kString) {
    return expected.stringValues() == actual.stringValues() ? "" : name + ": strings differ";
  }
  bool exact = !ir::isFloatingPoint(expected.dtype());
  for (int64_t i = 0; i < expected.numel(); ++i) {
    double e = expected.valueAsDouble(i);
    double a = actual.valueAsDouble(i);
    if (std::isnan(e) && std::isnan(a)) continue;
    bool ok = exact ? e == a : (e == a || std::fabs(a - e) <= 1e-7 + 1e-3 * std::fabs(e));
    if (!ok) return name + "[" + std::to_string(i) + "] = " + formatValue(actual, i) + ", expected " + formatValue(expected, i);
  }
  return "";
}

// ---- Sequence, map and optional test data (SequenceProto, MapProto, OptionalProto files)

runtime::Value valueFromProto(onnx::SequenceProto& proto);
runtime::Value valueFromProto(onnx::OptionalProto& proto);
runtime::Value valueFromProto(onnx::MapProto& proto);

runtime::Value tensorFromProto(onnx::TensorProto& proto) {
  auto t = onnx_io::tensorFromProto(proto, {});
  if (!t.isOk()) throw std::runtime_error(t.status().message());
  return runtime::Value(std::move(t).value());
}

runtime::Value valueFromProto(onnx::SequenceProto& proto) {
  std::vector<runtime::Value> elements;
  for (auto& t : *proto.mutable_tensor_values()) elements.push_back(tensorFromProto(t));
  for (auto& s : *proto.mutable_sequence_values()) elements.push_back(valueFromProto(s));
  for (auto& m : *proto.mutable_map_values()) elements.push_back(valueFromProto(m));
  for (auto& o : *proto.mutable_optional_values()) elements.push_back(valueFromProto(o));
  if (proto.sparse_tensor_values_size() > 0) throw std::runtime_error("sparse tensors in a sequence");
  return runtime::Value::sequence(std::move(elements));
}

runtime::Value valueFromProto(onnx::OptionalProto& proto) {
  if (proto.has_tensor_value()) return runtime::Value::optional(tensorFromProto(*proto.mutable_tensor_value()));
  if (proto.has_sequence_value()) return runtime::Value::optional(valueFromProto(*proto.mutable_sequence_value()));
  if (proto.has_map_value()) return runtime::Value::optional(valueFromProto(*proto.mutable_map_value()));
  if (proto.has_optional_value()) return runtime::Value::optional(valueFromProto(*proto.mutable_optional_value()));
  return runtime::Value::none();
}

runtime::Value valueFromProto(onnx::MapProto& proto) {
  ir::Tensor keys;
  if (proto.string_keys_size() > 0) {
    keys = ir::Tensor::strings({proto.string_keys_size()}, {proto.string_keys().begin(), proto.string_keys().end()});
  } else {
    std::vector<int64_t> k(proto.keys().begin(), proto.keys().end());
    keys = ir::Tensor::fromVector(ir::DataType::kInt64, {static_cast<int64_t>(k.size())}, k);
  }
  runtime::Value values = valueFromProto(*proto.mutable_values());
  // One value per key, each a scalar tensor: stored as one 1-D tensor, as ZipMap writes maps.
  std::vector<double> flat;
  ir::DataType dtype = ir::DataType::kFloat;
  for (const runtime::Value& v : values.elements()) {
    dtype = v.tensor().dtype();
    for (int64_t i = 0; i < v.tensor().numel(); ++i) flat.push_back(v.tensor().valueAsDouble(i));
  }
  ir::Tensor t(dtype, {static_cast<int64_t>(flat.size())});
  for (size_t i = 0; i < flat.size(); ++i) {
    if (dtype == ir::DataType::kFloat) t.mutableData<float>()[i] = static_cast<float>(flat[i]);
    else if (dtype == ir::DataType::kDouble) t.mutableData<double>()[i] = flat[i];
    else if (dtype == ir::DataType::kInt64) t.mutableData<int64_t>()[i] = static_cast<int64_t>(flat[i]);
    else throw std::runtime_error("map values of type " + std::string(ir::dataTypeName(dtype)));
  }
  return runtime::Value::map(std::move(keys), std::move(t));
}

enum class FileKind { kTensor, kSequence, kOptional, kMap };

/// What a test-data file holds, from the declared type (serialized TypeProto; empty for a tensor).
FileKind fileKindOf(const std::string& opaqueTypeProto) {
  if (opaqueTypeProto.empty()) return FileKind::kTensor;
  onnx::TypeProto type;
  if (!type.ParseFromString(opaqueTypeProto)) return FileKind::kTensor;
  if (type.has_sequence_type()) return FileKind::kSequence;
  if (type.has_optional_type()) return FileKind::kOptional;
  if (type.has_map_type()) return FileKind::kMap;
  return FileKind::kTensor;
}

FileKind fileKindOf(const runtime::Value& v) {
  switch (v.kind()) {
    case runtime::ValueKind::kSequence: return FileKind::kSequence;
    case runtime::ValueKind::kOptional: return FileKind::kOptional;
    case runtime::ValueKind::kMap: return FileKind::kMap;
    default: return FileKind::kTensor;
  }
}

/// Reads a test-data file of `kind`; an error message on failure.
Expected<runtime::Value> readValueFile(const fs::path& file, FileKind kind) {
  if (kind == FileKind::kTensor) {
    WH_ASSIGN_OR_RETURN(ir::Tensor t, onnx_io::readTensorFile(file.string()));
    return runtime::Value(std::move(t));
  }
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    if (kind == FileKind::kSequence) {
      onnx::SequenceProto p;
      if (p.ParseFromString(bytes)) return valueFromProto(p);
    } else if (kind == FileKind::kOptional) {
      onnx::OptionalProto p;
      if (p.ParseFromString(bytes)) return valueFromProto(p);
    } else {
      onnx::MapProto p;
      if (p.ParseFromString(bytes)) return valueFromProto(p);
    }
  } catch (const std::exception& e) {
    return invalidInput(file.string() + ": " + e.what());
  }
  return invalidInput(file.string() + ": not a serialized sequence, optional or map");
}

std::string compareValues(const runtime::Value& expected, const runtime::Value& actual, const std::string& name) {
  if (expected.kind() != actual.kind()) {
    return name + ": a " + actual.describe() + ", expected a " + expected.describe();
  }
  switch (expected.kind()) {
    case runtime::ValueKind::kTensor: return compareTensors(expected.tensor(), actual.tensor(), name);
    case runtime::ValueKind::kOptional:
      if (expected.hasElement() != actual.hasElement()) return name + ": " + actual.describe() + ", expected " + expected.describe();
      return expected.hasElement() ? compareValues(expected.elements()[0], actual.elements()[0], name + ".value") : "";
    case runtime::ValueKind::kSequence:
      if (expected.elements().size() != actual.elements().size()) {
        return name + ": " + std::to_string(actual.elements().size()) + " elements, expected " +
               std::to_string(expected.elements().size());
      }
      for (size_t i = 0; i < expected.elements().size(); ++i) {
        std::string diff = compareValues(expected.elements()[i], actual.elements()[i], name + "[" + std::to_string(i) + "]");
        if (!diff.empty()) return diff;
      }
      return "";
    case runtime::ValueKind::kMap: {
      std::string diff = compareTensors(expected.mapKeys(), actual.mapKeys(), name + ".keys");
      return diff.empty() ? compareTensors(expected.mapValues(), actual.mapValues(), name + ".values") : diff;
    }
  }
  return "";
}

// Whether every op of `graph` and of its subgraphs has a CPU kernel (If, Loop, Scan and
// SequenceMap are the runtime's own).
bool runsOnCpu(const ir::Graph& graph) {
  const auto& registry = runtime::KernelRegistry::cpu();
  for (const ir::Node* n : graph.nodes()) {
    if (!n->hasSubgraphs()) {
      if (!registry.has(n->domain(), n->opType())) return false;
      continue;
    }
    const std::string& op = n->opType();
    if (!n->domain().empty() || (op != "If" && op != "Loop" && op != "Scan" && op != "SequenceMap")) return false;
    for (const ir::Attribute& a : n->attributes()) {
      if (a.kind != ir::Attribute::Kind::kGraph) continue;
      auto sub = onnx_io::loadSubgraph(a, n->describe());
      if (!sub.isOk() || !runsOnCpu(*sub->graph)) return false;
    }
  }
  return true;
}

CaseResult runCase(const fs::path& dir) {
  CaseResult result;
  auto model = onnx_io::load((dir / "model.onnx").string());
  if (!model.isOk()) {
    result.reason = "load: " + model.status().message();
    return result;
  }
  if (!runsOnCpu(*model->graph)) return result;  // not supported: not counted
  result.supported = true;
  auto session = runtime::Session::create(*model);
  if (!session.isOk()) {
    result.reason = "compile: " + session.status().message();
    return result;
  }
  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(entry.path());
  }
  std::sort(sets.begin(), sets.end());
  for (const fs::path& set : sets) {
    std::vector<runtime::NamedValue> feeds;
    const auto& feedValues = (*session)->inputs();
    for (size_t i = 0; i < feedValues.size(); ++i) {
      fs::path file = set / ("input_" + std::to_string(i) + ".pb");
      if (!fs::exists(file)) break;  // optional inputs left out
      auto v = readValueFile(file, fileKindOf(feedValues[i]->type().opaqueTypeProto));
      if (!v.isOk()) {
        result.reason = v.status().message();
        return result;
      }
      runtime::Value value = std::move(v).value();
      if (value.isTensor()) value = asDeclared(value.tensor(), feedValues[i]->type().dtype);
      feeds.emplace_back(feedValues[i]->name(), std::move(value));
    }
    auto outputs = (*session)->runValues(feeds);
    if (!outputs.isOk()) {
      result.reason = "run: " + outputs.status().message();
      return result;
    }
    const auto& outputValues = (*session)->outputs();
    for (size_t i = 0; i < outputs->size(); ++i) {
      fs::path file = set / ("output_" + std::to_string(i) + ".pb");
      const runtime::Value& actual = (*outputs)[i].second;
      FileKind kind = fileKindOf(outputValues[i]->type().opaqueTypeProto);
      if (kind == FileKind::kTensor) kind = fileKindOf(actual);
      auto expected = readValueFile(file, kind);
      if (!expected.isOk()) {
        result.reason = expected.status().message();
        return result;
      }
      runtime::Value want = std::move(expected).value();
      if (want.isTensor()) want = asDeclared(want.tensor(), actual.tensor().dtype());
      std::string diff = compareValues(want, actual, (*outputs)[i].first);
      if (!diff.empty()) {
        result.reason = set.filename().string() + ": " + diff;
        return result;
      }
    }
  }
  result.passed = true;
  return result;
}

std::map<std::string, std::string> readExpectedFailures(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    // Every listed case says why it fails.
    INFO(path.string() << ": " << line);
    REQUIRE(tab != std::string::npos);
    REQUIRE(tab + 1 < line.size());
    out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("ONNX backend node tests pass on the CPU runtime", "[runtime][conformance]") {
  fs::path root = fs::path(WHITTLE_SOURCE_DIR) / ".cache/onnx-node-tests/node";
  if (!fs::exists(root)) {
    if (testing::inCi()) FAIL("node tests missing at " << root << ": run scripts/setup.sh");
    WARN("skipped: node tests missing at " << root << " (run scripts/setup.sh)");
    return;
  }
  const char* filter = std::getenv("WHITTLE_NODE_TEST_FILTER");
  fs::path expectedFailuresFile = fs::path(WHITTLE_SOURCE_DIR) / "tests/runtime/node_expected_failures.txt";
  REQUIRE(fs::exists(expectedFailuresFile));
  std::map<std::string, std::string> expectedFailures = readExpectedFailures(expectedFailuresFile);
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    if (filter != nullptr && entry.path().filename().string().find(filter) == std::string::npos) continue;
    cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  int supported = 0, passed = 0, failedExpected = 0;
  std::vector<std::string> unexpectedFailures, unexpectedPasses;
  std::ofstream report(fs::path(WHITTLE_SOURCE_DIR) / ".cache/node_test_results.tsv");
  for (const fs::path& dir : cases) {
    std::string name = dir.filename().string();
    CaseResult r = runCase(dir);
    if (!r.supported) continue;
    ++supported;
    report << name << '\t' << (r.passed ? "pass" : "FAIL") << '\t' << r.reason << '\n';
    bool listed = expectedFailures.contains(name);
    if (r.passed) {
      ++passed;
      if (listed) unexpectedPasses.push_back(name);
    } else if (listed) {
      ++failedExpected;
    } else {
      unexpectedFailures.push_back(name + ": " + r.reason);
    }
  }
  std::printf("node tests: %zu cases, %d supported, %d passed, %d failed (%d listed as expected failures)\n",
              cases.size(), supported, passed, supported - passed, failedExpected);
  for (const auto& f : unexpectedFailures) UNSCOPED_INFO("unexpected failure: " << f);
  for (const auto& p : unexpectedPasses) UNSCOPED_INFO("listed as failing but passes: " << p);
  CHECK(unexpectedFailures.empty());
  CHECK(unexpectedPasses.empty());
  if (filter == nullptr) {
    // Every case runs (an op without a kernel is a failure, not a skip), and every failure is a
    // listed one whose reason is the test data (a stored output no runtime reproduces).
    CHECK(static_cast<size_t>(supported) == cases.size());
    CHECK(passed >= 0.985 * static_cast<double>(cases.size()));
  }
}
