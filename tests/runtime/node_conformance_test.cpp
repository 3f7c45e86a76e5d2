// Runs the ONNX backend node tests (unpacked by scripts/setup.sh into .cache/onnx-node-tests)
// for every case whose ops the CPU runtime registers. A case that fails against its stored
// outputs must be listed, with a reason, in tests/runtime/node_expected_failures.txt, and a
// listed case that passes is an error too, so the list stays true. The listed cases are those
// whose stored outputs are wrong; each is then checked against a reference computed at test
// time from the stored model and inputs (ONNX Runtime or onnx.reference, node_reference.py), or,
// for Bernoulli, against what any draw must satisfy, and fails if that check fails.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>
// onnx_pb.h first: it defines ONNX_API, which the data protos' header needs.
#include <onnx/onnx-data_pb.h>

#include "support/python.h"
#include "support/temp_dir.h"
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

/// Runs the case in `dir` on its stored inputs and compares with the outputs stored beside them,
/// or, when `expectedRoot` is given, with the ones a reference wrote to expectedRoot/SET/.
CaseResult runCase(const fs::path& dir, const fs::path& expectedRoot = {}) {
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
      fs::path file = (expectedRoot.empty() ? set : expectedRoot / set.filename()) / ("output_" + std::to_string(i) + ".pb");
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

/// What a listed case is checked against, since its stored outputs are wrong: a reference that
/// runs the stored model on the stored inputs at test time (ONNX Runtime or onnx.reference, see
/// node_reference.py), or, for Bernoulli, whose stored outputs are one draw no runtime repeats,
/// the distribution of whittle's draws.
struct ListedCase {
  std::string check;  // "ort", "onnx.reference" or "bernoulli"
  std::string reason;
};

std::map<std::string, ListedCase> readExpectedFailures(const fs::path& path) {
  std::map<std::string, ListedCase> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    auto tab2 = tab == std::string::npos ? tab : line.find('\t', tab + 1);
    // Every listed case names its check and says why the stored outputs are wrong.
    INFO(path.string() << ": " << line);
    REQUIRE(tab2 != std::string::npos);
    REQUIRE(tab2 + 1 < line.size());
    ListedCase listed{line.substr(tab + 1, tab2 - tab - 1), line.substr(tab2 + 1)};
    REQUIRE((listed.check == "ort" || listed.check == "onnx.reference" || listed.check == "bernoulli"));
    out[line.substr(0, tab)] = listed;
  }
  return out;
}

/// A tensor like `like` (float or double) holding `values`.
ir::Tensor probabilities(const ir::Tensor& like, const std::vector<double>& values) {
  ir::Tensor t(like.dtype(), like.dims());
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (t.dtype() == ir::DataType::kDouble) t.mutableData<double>()[i] = values[static_cast<size_t>(i)];
    else t.mutableData<float>()[i] = static_cast<float>(values[static_cast<size_t>(i)]);
  }
  return t;
}

/// Checks a Bernoulli case by what a draw must satisfy: the declared output type and the input's
/// shape, values in {0, 1}, p = 0 gives 0 and p = 1 gives 1, and over kDraws runs on the stored
/// p (the session's generator advances every run) each element's frequency of 1 and the mean
/// over the tensor lie within 5 binomial standard deviations of p and of mean(p). The _expanded
/// cases hold ONNX's function body for Bernoulli, Greater(RandomUniformLike(p), p), which is 1
/// with probability 1 - p: their model is checked for what it computes, q = 1 - p (their stored
/// outputs, numpy's binomial(p), contradict their own model). "" when it passes, else why not.
std::string checkBernoulli(const fs::path& dir) {
  constexpr int kDraws = 4000;
  auto model = onnx_io::load((dir / "model.onnx").string());
  if (!model.isOk()) return "load: " + model.status().message();
  auto session = runtime::Session::create(*model);
  if (!session.isOk()) return "compile: " + session.status().message();
  auto stored = onnx_io::readTensorFile((dir / "test_data_set_0/input_0.pb").string());
  if (!stored.isOk()) return stored.status().message();
  const ir::Tensor& p = *stored;
  const std::string inputName = (*session)->inputs()[0]->name();
  const ir::DataType declared = (*session)->outputs()[0]->type().dtype;
  bool inverted = false;  // Greater(uniform, p): 1 with probability 1 - p
  for (const ir::Node* n : model->graph->nodes()) {
    const ir::Node* first = n->opType() == "Greater" && n->input(0) != nullptr ? n->input(0)->producer() : nullptr;
    inverted = inverted || (first != nullptr && first->opType() == "RandomUniformLike");
  }
  auto chance = [&](double pi) { return inverted ? 1.0 - pi : pi; };
  auto draw = [&](const ir::Tensor& probs, ir::Tensor* y) -> std::string {
    auto out = (*session)->runValues({{inputName, runtime::Value(probs)}});
    if (!out.isOk()) return "run: " + out.status().message();
    *y = (*out)[0].second.tensor();
    if (y->dtype() != declared) return "output dtype " + std::string(ir::dataTypeName(y->dtype())) + ", declared " + std::string(ir::dataTypeName(declared));
    if (y->dims() != probs.dims()) return "output shape differs from the input's";
    for (int64_t i = 0; i < y->numel(); ++i) {
      double v = y->valueAsDouble(i);
      if (v != 0.0 && v != 1.0) return "y[" + std::to_string(i) + "] = " + formatValue(*y, i) + ", not 0 or 1";
    }
    return "";
  };
  // p = 0 and p = 1, alternating: the draw is the input itself.
  std::vector<double> ends;
  for (int64_t i = 0; i < p.numel(); ++i) ends.push_back(static_cast<double>(i % 2));
  ir::Tensor y;
  if (std::string why = draw(probabilities(p, ends), &y); !why.empty()) return why;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double pi = ends[static_cast<size_t>(i)];
    if (y.valueAsDouble(i) != chance(pi)) return "p = " + std::to_string(pi) + " gave y[" + std::to_string(i) + "] = " + formatValue(y, i);
  }
  std::vector<double> ones(static_cast<size_t>(p.numel()), 0.0);
  for (int r = 0; r < kDraws; ++r) {
    if (std::string why = draw(p, &y); !why.empty()) return why;
    for (int64_t i = 0; i < y.numel(); ++i) ones[static_cast<size_t>(i)] += y.valueAsDouble(i);
  }
  double meanP = 0, varSum = 0, total = 0;
  for (int64_t i = 0; i < p.numel(); ++i) {
    double pi = chance(p.valueAsDouble(i));
    double sd = std::sqrt(pi * (1 - pi) / kDraws);
    double freq = ones[static_cast<size_t>(i)] / kDraws;
    if (std::fabs(freq - pi) > 5 * sd + 1.0 / kDraws) {
      return "element " + std::to_string(i) + ": 1 in " + std::to_string(freq) + " of " + std::to_string(kDraws) +
             " draws, expected " + std::to_string(pi);
    }
    meanP += pi;
    varSum += pi * (1 - pi);
    total += ones[static_cast<size_t>(i)];
  }
  const double n = static_cast<double>(p.numel()) * kDraws;
  meanP /= static_cast<double>(p.numel());
  double mean = total / n;
  double sdMean = std::sqrt(varSum * kDraws) / n;
  if (std::fabs(mean - meanP) > 5 * sdMean) return "mean " + std::to_string(mean) + ", expected " + std::to_string(meanP);
  return "";
}

/// The lines a reference run over `cases` prints when it fails, or "" when it wrote every case's
/// outputs under `outRoot`.
std::string writeReferenceOutputs(const std::vector<std::pair<fs::path, std::string>>& cases, const std::string& outRoot) {
  std::string command = testing::python() + " " +
                        testing::shellQuote((fs::path(WHITTLE_SOURCE_DIR) / "tests/runtime/node_reference.py").string()) + " " +
                        testing::shellQuote(outRoot);
  for (const auto& [dir, check] : cases) command += " " + testing::shellQuote(check + ":" + dir.string());
  std::string output;
  return testing::shell(command, &output) == 0 ? "" : (output.empty() ? "node_reference.py failed" : output);
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
  std::map<std::string, ListedCase> expectedFailures = readExpectedFailures(expectedFailuresFile);
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    if (filter != nullptr && entry.path().filename().string().find(filter) == std::string::npos) continue;
    cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  int supported = 0, passed = 0;
  std::vector<std::string> unexpectedFailures, unexpectedPasses;
  std::vector<std::pair<fs::path, std::string>> referenceCases, bernoulliCases;  // listed, failing on the stored outputs
  std::ofstream report(fs::path(WHITTLE_SOURCE_DIR) / ".cache/node_test_results.tsv");
  for (const fs::path& dir : cases) {
    std::string name = dir.filename().string();
    CaseResult r = runCase(dir);
    if (!r.supported) continue;
    ++supported;
    report << name << '\t' << (r.passed ? "pass" : "FAIL") << '\t' << r.reason << '\n';
    auto listed = expectedFailures.find(name);
    if (r.passed) {
      ++passed;
      if (listed != expectedFailures.end()) unexpectedPasses.push_back(name);
    } else if (listed == expectedFailures.end()) {
      unexpectedFailures.push_back(name + ": " + r.reason);
    } else if (listed->second.check == "bernoulli") {
      bernoulliCases.emplace_back(dir, listed->second.check);
    } else {
      referenceCases.emplace_back(dir, listed->second.check);
    }
  }
  // The listed cases, each against what a reference computes from the stored model and inputs.
  int passedReference = 0, passedBernoulli = 0;
  std::vector<std::string> failedListed;
  bool referencesRan = referenceCases.empty();
  if (!referenceCases.empty() && testing::requirePython("numpy, onnx, onnxruntime", "for the node-test references")) {
    referencesRan = true;
    testing::TempDir references;
    std::string error = writeReferenceOutputs(referenceCases, references.path());
    INFO(error);
    REQUIRE(error.empty());
    for (const auto& [dir, check] : referenceCases) {
      std::string name = dir.filename().string();
      CaseResult r = runCase(dir, fs::path(references.path()) / name);
      report << name << '\t' << (r.passed ? "pass vs " + check : "FAIL vs " + check) << '\t' << r.reason << '\n';
      if (r.passed) ++passedReference;
      else failedListed.push_back(name + " against " + check + ": " + r.reason);
    }
  }
  for (const auto& [dir, check] : bernoulliCases) {
    std::string name = dir.filename().string();
    std::string why = checkBernoulli(dir);
    report << name << '\t' << (why.empty() ? "pass by distribution" : "FAIL by distribution") << '\t' << why << '\n';
    if (why.empty()) ++passedBernoulli;
    else failedListed.push_back(name + " by distribution: " + why);
  }
  const int failed = static_cast<int>(cases.size()) - passed - passedReference - passedBernoulli;
  std::printf("node tests: %zu cases, %d supported: %d passed against the stored outputs, %d against ORT/onnx.reference "
              "where the stored outputs are wrong, %d Bernoulli cases by the distribution of their draws (no runtime "
              "repeats the stored draw), %d failed (%.2f %% pass)\n",
              cases.size(), supported, passed, passedReference, passedBernoulli, failed,
              cases.empty() ? 0.0 : 100.0 * (cases.size() - failed) / static_cast<double>(cases.size()));
  for (const auto& f : unexpectedFailures) UNSCOPED_INFO("unexpected failure: " << f);
  for (const auto& p : unexpectedPasses) UNSCOPED_INFO("listed as failing but passes: " << p);
  for (const auto& f : failedListed) UNSCOPED_INFO("listed case fails its reference check too: " << f);
  CHECK(unexpectedFailures.empty());
  CHECK(unexpectedPasses.empty());
  CHECK(failedListed.empty());
  if (filter == nullptr) {
    // Every case runs (an op without a kernel is a failure, not a skip), and the figure counts
    // every case: a listed case passes only against its reference check.
    CHECK(static_cast<size_t>(supported) == cases.size());
    if (referencesRan) CHECK(cases.size() - failed >= 0.99 * static_cast<double>(cases.size()));
  }
}

TEST_CASE("ONNX backend model tests (pytorch-converted, pytorch-operator, simple) pass on the CPU runtime",
          "[runtime][conformance]") {
  // Small whole models from the same onnx 1.16 wheel: PyTorch 0.3-era exports at opsets 6-9
  // (PRelu-6's per-channel slope, old Upsample and BatchNormalization forms) and hand-built
  // graphs (string normalization, control flow). Every case must pass against its stored
  // outputs, but for the two below.
  const std::map<std::string, std::string> outOfScope = {
      {"test_gradient_of_add", "ai.onnx.preview.training Gradient differentiates the graph: training, not inference"},
      {"test_gradient_of_add_and_mul", "ai.onnx.preview.training Gradient differentiates the graph: training, not inference"},
  };
  fs::path base = fs::path(WHITTLE_SOURCE_DIR) / ".cache/onnx-node-tests";
  int total = 0, passed = 0;
  std::vector<std::string> failures;
  for (const char* suite : {"pytorch-converted", "pytorch-operator", "simple"}) {
    fs::path root = base / suite;
    if (!fs::exists(root)) {
      if (testing::inCi()) FAIL("model tests missing at " << root << ": run scripts/setup.sh");
      WARN("skipped: model tests missing at " << root << " (run scripts/setup.sh)");
      return;
    }
    std::vector<fs::path> cases;
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.is_directory()) cases.push_back(entry.path());
    }
    std::sort(cases.begin(), cases.end());
    for (const fs::path& dir : cases) {
      std::string name = dir.filename().string();
      if (outOfScope.contains(name)) {
        // Still out of scope only while the runtime cannot run it: then it must fail to compile.
        CaseResult r = runCase(dir);
        CHECK_FALSE(r.passed);
        continue;
      }
      ++total;
      CaseResult r = runCase(dir);
      if (r.supported && r.passed) ++passed;
      else failures.push_back(std::string(suite) + "/" + name + ": " + (r.supported ? r.reason : "an op has no CPU kernel"));
    }
  }
  std::printf("model tests: %d cases (and %zu out of scope), %d passed\n", total, outOfScope.size(), passed);
  for (const auto& f : failures) UNSCOPED_INFO("failure: " << f);
  CHECK(failures.empty());
  CHECK(total == 82 + 35 + 23 - static_cast<int>(outOfScope.size()));
}
