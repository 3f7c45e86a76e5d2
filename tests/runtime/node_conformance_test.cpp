// Runs the ONNX backend node tests (unpacked by scripts/setup.sh into .cache/onnx-node-tests)
// for every case whose ops the CPU runtime registers. Failures must be listed, with a
// reason, in tests/runtime/node_expected_failures.txt; a listed case that passes is an error
// too, so the list stays true.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

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

// Whether every op of `graph` and of its subgraphs has a CPU kernel (If, Loop and Scan are
// the runtime's own) and every input and output is a tensor (sequences and optionals are not
// runtime values).
bool runsOnCpu(const ir::Graph& graph) {
  const auto& registry = runtime::KernelRegistry::cpu();
  for (const ir::Value* v : graph.inputs()) {
    if (!v->type().opaqueTypeProto.empty()) return false;
  }
  for (const ir::Value* v : graph.outputs()) {
    if (!v->type().opaqueTypeProto.empty()) return false;
  }
  for (const ir::Node* n : graph.nodes()) {
    if (!n->hasSubgraphs()) {
      if (!registry.has(n->domain(), n->opType())) return false;
      continue;
    }
    if (!n->domain().empty() || (n->opType() != "If" && n->opType() != "Loop" && n->opType() != "Scan")) return false;
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
    std::vector<runtime::NamedTensor> feeds;
    const auto& feedValues = (*session)->inputs();
    for (size_t i = 0; i < feedValues.size(); ++i) {
      fs::path file = set / ("input_" + std::to_string(i) + ".pb");
      if (!fs::exists(file)) break;  // optional inputs left out
      auto t = onnx_io::readTensorFile(file.string());
      if (!t.isOk()) {
        result.reason = t.status().message();
        return result;
      }
      feeds.emplace_back(feedValues[i]->name(), asDeclared(std::move(t).value(), feedValues[i]->type().dtype));
    }
    auto outputs = (*session)->run(feeds);
    if (!outputs.isOk()) {
      result.reason = "run: " + outputs.status().message();
      return result;
    }
    for (size_t i = 0; i < outputs->size(); ++i) {
      fs::path file = set / ("output_" + std::to_string(i) + ".pb");
      auto expected = onnx_io::readTensorFile(file.string());
      if (!expected.isOk()) {
        result.reason = expected.status().message();
        return result;
      }
      std::string diff =
          compareTensors(asDeclared(*expected, (*outputs)[i].second.dtype()), (*outputs)[i].second, (*outputs)[i].first);
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
  if (supported > 0 && filter == nullptr) CHECK(passed >= 0.95 * supported);
}
