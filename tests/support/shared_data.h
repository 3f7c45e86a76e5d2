#pragma once
// Access to ../shared (real models and data, kept beside the checkout, never in the repo).

#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "support/python.h"

namespace whittle::testing {

/// The path of `rel` (e.g. "models/squeezenet1.1.onnx") under ../shared, or nullopt when it
/// is missing. A missing file fails the test when the environment has CI=true; elsewhere it
/// warns, and the caller returns (a skip). Usage:
///   auto path = sharedPath("models/mnist-8.onnx");
///   if (!path) return;
inline std::optional<std::string> sharedPath(const std::string& rel) {
  std::string path = std::string(WHITTLE_SOURCE_DIR) + "/../shared/" + rel;
  if (std::filesystem::exists(path)) return path;
  if (inCi()) {
    FAIL("shared test data missing: " << path << " (CI=true requires ../shared beside the checkout)");
  }
  WARN("skipped: shared test data missing: " << path);
  return std::nullopt;
}

}  // namespace whittle::testing
