#pragma once
// The ONNX Runtime check of the long-tail op families (bitwise, signal, strings, tfidf, ml):
// tests/kernels/cpu/long_tail_ort_cases.py writes one-node models with ONNX Runtime's outputs,
// and checkOrtCases runs each on whittle and compares (dtype and dims exactly, strings and
// integers exactly, floating point within |a - e| <= 1e-5 + 1e-4 |e|).
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <string>

#include "support/python.h"
#include "support/kernel_harness.h"
#include "support/shell.h"
#include "support/temp_dir.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/onnx_io/tensor_proto.h"
#include "whittle/runtime/session.h"

namespace whittle::testing {

/// Runs every case the script writes for `family`; requires at least `minCases` of them.
inline void checkOrtCases(const std::string& family, int minCases) {
  if (!requirePython("numpy, onnx, onnxruntime", "for the ONNX Runtime reference")) return;
  TempDir dir;
  const std::string script = std::string(WHITTLE_SOURCE_DIR) + "/tests/kernels/cpu/long_tail_ort_cases.py";
  std::string output;
  const std::string command = python() + " " + shellQuote(script) + " " + family + " " + shellQuote(dir.path());
  int rc = shell(command, &output);
  INFO(command << "\n" << output);
  REQUIRE(rc == 0);
  std::vector<std::filesystem::path> dirs;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  int cases = 0;
  for (const auto& caseDir : dirs) {
    INFO("case " << caseDir.filename().string());
    auto model = onnx_io::load((caseDir / "model.onnx").string());
    REQUIRE(model.isOk());
    auto session = runtime::Session::create(*model);
    INFO((session.isOk() ? std::string() : session.status().message()));
    REQUIRE(session.isOk());
    std::vector<runtime::NamedTensor> feeds;
    const auto& inputs = (*session)->inputs();
    for (size_t i = 0; i < inputs.size(); ++i) {
      auto t = onnx_io::readTensorFile((caseDir / ("input_" + std::to_string(i) + ".pb")).string());
      REQUIRE(t.isOk());
      feeds.emplace_back(inputs[i]->name(), *t);
    }
    auto outputs = (*session)->run(feeds);
    INFO((outputs.isOk() ? std::string() : outputs.status().message()));
    REQUIRE(outputs.isOk());
    for (size_t i = 0; i < outputs->size(); ++i) {
      auto expected = onnx_io::readTensorFile((caseDir / ("output_" + std::to_string(i) + ".pb")).string());
      REQUIRE(expected.isOk());
      const ir::Tensor& actual = (*outputs)[i].second;
      INFO("output " << i);
      REQUIRE(actual.dtype() == expected->dtype());
      REQUIRE(actual.dims() == expected->dims());
      if (actual.dtype() == ir::DataType::kString) {
        CHECK(actual.stringValues() == expected->stringValues());
        continue;
      }
      bool exact = !ir::isFloatingPoint(actual.dtype());
      int64_t bad = -1;
      for (int64_t k = 0; k < actual.numel() && bad < 0; ++k) {
        double a = actual.valueAsDouble(k), e = expected->valueAsDouble(k);
        if (std::isnan(a) && std::isnan(e)) continue;
        bool ok = exact ? a == e : std::fabs(a - e) <= 1e-5 + 1e-4 * std::fabs(e);
        if (!ok) bad = k;
      }
      INFO("first mismatch at element " << bad << ": " << (bad >= 0 ? actual.valueAsDouble(bad) : 0.0) << ", expected "
                                        << (bad >= 0 ? expected->valueAsDouble(bad) : 0.0));
      CHECK(bad < 0);
    }
    ++cases;
  }
  CHECK(cases >= minCases);
}

}  // namespace whittle::testing

namespace whittle::testing {

/// The inputs x0, x1, ... of a domain node: a default tensor leaves that input absent.
inline std::vector<NodeInput> domainNodeInputs(const std::vector<ir::Tensor>& inputs) {
  std::vector<NodeInput> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    NodeInput in;
    if (inputs[i].dtype() != ir::DataType::kUndefined) {
      in.name = "x" + std::to_string(i);
      in.tensor = inputs[i];
    }
    out.push_back(std::move(in));
  }
  return out;
}

/// A model with one `opType` node of `domain` (imported at `domainOpset`; the default domain at
/// 20) over graph inputs named x0, x1, ... (a default tensor leaves that input absent), with
/// `numOutputs` outputs y0, y1, ...
inline ir::Model domainNodeModel(const std::string& domain, int64_t domainOpset, const std::string& opType,
                                 const std::vector<ir::Tensor>& inputs, const std::vector<ir::Attribute>& attributes,
                                 size_t numOutputs = 1) {
  return oneNodeModel(opType, domainNodeInputs(inputs), attributes, 20, numOutputs, {}, InputShapes::kUndeclared, domain,
                      domainOpset);
}

/// Runs domainNodeModel on `inputs`; the outputs or the failing status (of compile or run).
inline Expected<std::vector<ir::Tensor>> runDomainNode(const std::string& domain, int64_t domainOpset,
                                                       const std::string& opType, const std::vector<ir::Tensor>& inputs,
                                                       const std::vector<ir::Attribute>& attributes,
                                                       size_t numOutputs = 1) {
  WH_ASSIGN_OR_RETURN(auto outputs, tryRunModel(domainNodeModel(domain, domainOpset, opType, inputs, attributes, numOutputs),
                                                feedsOf(domainNodeInputs(inputs))));
  std::vector<ir::Tensor> tensors;
  for (auto& [name, t] : outputs) tensors.push_back(std::move(t));
  return tensors;
}

/// The message of a run that must fail.
inline std::string failureOf(const Expected<std::vector<ir::Tensor>>& r) {
  REQUIRE_FALSE(r.isOk());
  return r.status().message();
}

inline ir::Attribute stringsAttr(std::string name, std::vector<std::string> v) {
  ir::Attribute a;
  a.name = std::move(name);
  a.kind = ir::Attribute::Kind::kStrings;
  a.strings = std::move(v);
  return a;
}

}  // namespace whittle::testing
