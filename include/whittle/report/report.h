#pragma once
// The reports of `whittle compare`: HTML (one self-contained page), JSON (docs/compare-schema.md),
// Markdown (short, for a pull-request comment) and JUnit XML (one test case per gate).

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "whittle/report/compare.h"

namespace whittle::report {

/// The version of the JSON schema (docs/compare-schema.md).
inline constexpr int kCompareSchemaVersion = 1;

/// "PASS" (every gate passed), "FAIL" (a gate failed) or "MEASURED" (no gates were set).
std::string verdict(const CompareResult& result);

/// The first layer whose SQNR is finite and more than `jumpDb` below the lowest SQNR of the
/// layers before it (before the first layer: +infinity), i.e. where the error starts or jumps.
std::optional<size_t> firstErrorJump(const std::vector<LayerMetrics>& layers, double jumpDb = 10.0);

/// `s` with & < > " ' escaped: safe in XML and HTML text and attribute values.
std::string xmlEscape(const std::string& s);

std::string htmlReport(const CompareResult& result);
std::string jsonReport(const CompareResult& result);
std::string markdownReport(const CompareResult& result);
std::string junitReport(const CompareResult& result);

}  // namespace whittle::report
