#include "support/tolerance.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

namespace whittle::testing {
namespace {

// "element 7 [0,1,3] of float32[2,2,4]".
std::string elementText(const ir::Tensor& t, int64_t i) {
  std::vector<int64_t> idx(t.dims().size());
  int64_t rem = i;
  for (size_t k = idx.size(); k-- > 0;) {
    idx[k] = t.dims()[k] == 0 ? 0 : rem % t.dims()[k];
    rem = t.dims()[k] == 0 ? 0 : rem / t.dims()[k];
  }
  return "element " + std::to_string(i) + " " + shapeText(idx) + " of " + std::string(ir::dataTypeName(t.dtype())) +
         shapeText(t.dims());
}

}  // namespace

std::string shapeText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

double singleRoundingTolerance(ir::DataType dtype) {
  switch (dtype) {
    case ir::DataType::kFloat16: return 1e-3;
    case ir::DataType::kBFloat16: return 8e-3;
    case ir::DataType::kFloat: return 2e-6;
    default: return 1e-12;
  }
}

double accumulatedRoundingTolerance(ir::DataType dtype) {
  switch (dtype) {
    case ir::DataType::kFloat16: return 2e-3;
    case ir::DataType::kBFloat16: return 1e-2;
    case ir::DataType::kDouble: return 1e-12;
    default: return 2e-5;
  }
}

double tinyTolerance(ir::DataType dtype) {
  return dtype == ir::DataType::kFloat16 ? 1e-7 : 1e-30;
}

void checkClose(const ir::Tensor& actual, const std::vector<double>& expected, double rtol, double atol,
                const std::string& context) {
  INFO(context);
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  const bool exact = !ir::isFloatingPoint(actual.dtype());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    const double a = actual.valueAsDouble(i);
    const double e = expected[static_cast<size_t>(i)];
    if (std::isnan(e) && std::isnan(a)) continue;
    const bool ok = exact || std::isinf(e) ? a == e : std::fabs(a - e) <= atol + rtol * std::fabs(e);
    if (!ok && bad++ == 0) first = i;
  }
  if (bad > 0) {
    const auto f = static_cast<size_t>(first);
    FAIL_CHECK(elementText(actual, first)
               << ": got " << actual.valueAsDouble(first) << ", expected " << expected[f] << " (rtol " << rtol
               << ", atol " << atol << "); " << bad << " element(s) off");
  }
}

void checkInts(const ir::Tensor& actual, const std::vector<int32_t>& expected, int32_t tolerance,
               const std::string& context) {
  INFO(context);
  REQUIRE(static_cast<size_t>(actual.numel()) == expected.size());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    const auto a = static_cast<int64_t>(actual.valueAsDouble(i));
    if (std::llabs(a - expected[static_cast<size_t>(i)]) > tolerance && bad++ == 0) first = i;
  }
  if (bad > 0) {
    FAIL_CHECK(elementText(actual, first) << ": got " << static_cast<int64_t>(actual.valueAsDouble(first))
                                          << ", expected " << expected[static_cast<size_t>(first)] << " (tolerance "
                                          << tolerance << "); " << bad << " element(s) off");
  }
}

double maxRelativeError(const ir::Tensor& actual, const ir::Tensor& expected) {
  double maxRef = 0, maxDiff = 0;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const double e = expected.valueAsDouble(i), a = actual.valueAsDouble(i);
    maxRef = std::max(maxRef, std::fabs(e));
    maxDiff = std::max(maxDiff, std::isnan(a) != std::isnan(e) ? INFINITY : std::fabs(a - e));
  }
  return maxDiff / std::max(maxRef, 1e-30);
}

double normRelativeError(const ir::Tensor& actual, const ir::Tensor& expected) {
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const double a = actual.valueAsDouble(i), e = expected.valueAsDouble(i);
    if (std::isnan(a) || std::isnan(e)) {
      if (std::isnan(a) != std::isnan(e)) return INFINITY;
      continue;
    }
    diff += (a - e) * (a - e);
    ref += e * e;
  }
  return std::sqrt(diff) / std::max(std::sqrt(ref), 1e-30);
}

}  // namespace whittle::testing
