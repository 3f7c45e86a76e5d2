// The module direction (docs/DESIGN.md): common <- ir <- onnx_io <- analysis, data, runtime
// (codec, the image decoders, sits on common alone, below data and runtime)
// <- quant <- passes <- eval <- report <- tools. A file may include the public headers of its
// own module and of modules below it; the two exceptions are include/whittle/eval/metrics.h,
// which depends on nothing beyond common and ir so that passes can use the accumulators, and
// include/whittle/quant/qdq_groups.h, likewise, so that the runtime's QDQ lowering uses the one
// QDQ group selector.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>

namespace whittle {
namespace {

namespace fs = std::filesystem;

const std::map<std::string, int> kRank = {
    {"common", 0}, {"ir", 1},     {"codec", 1},   {"onnx_io", 2}, {"analysis", 3}, {"data", 3},  {"runtime", 3},
    {"quant", 4},  {"passes", 5}, {"eval", 6},    {"report", 7},   {"tune", 8}, {"tools", 9},
};

/// The whittle modules that `path` includes, with the header each include names.
std::vector<std::pair<std::string, std::string>> whittleIncludes(const fs::path& path) {
  static const std::regex kInclude(R"(^\s*#\s*include\s+"whittle/([a-z_]+)/([^"]+)\")");
  std::vector<std::pair<std::string, std::string>> found;
  std::ifstream in(path);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, kInclude)) found.emplace_back(m[1], m[2]);
  }
  return found;
}

/// Every source and header file of `module` under the source tree.
std::vector<fs::path> filesOf(const std::string& module) {
  const fs::path root = WHITTLE_SOURCE_DIR;
  std::vector<fs::path> dirs = {root / "include" / "whittle" / module, root / "src" / module};
  if (module == "passes") dirs = {root / "include" / "whittle" / "passes", root / "passes"};
  if (module == "runtime") dirs.push_back(root / "kernels");
  if (module == "tools") dirs = {root / "tools"};
  std::vector<fs::path> files;
  for (const fs::path& dir : dirs) {
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".h" || ext == ".cpp" || ext == ".cu" || ext == ".cuh")) {
        files.push_back(entry.path());
      }
    }
  }
  return files;
}

TEST_CASE("every module includes only its own and lower modules' headers", "[eval][layering]") {
  int checked = 0;
  for (const auto& [module, rank] : kRank) {
    for (const fs::path& file : filesOf(module)) {
      for (const auto& [included, header] : whittleIncludes(file)) {
        if (included == module) continue;
        auto it = kRank.find(included);
        INFO(file.string() << " includes whittle/" << included << "/" << header);
        REQUIRE(it != kRank.end());
        bool metricsPrimitives = included == "eval" && header == "metrics.h" && rank > kRank.at("ir");
        bool qdqSelector = included == "quant" && header == "qdq_groups.h" && rank > kRank.at("ir");
        CHECK((it->second < rank || metricsPrimitives || qdqSelector));
        ++checked;
      }
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("eval's metric primitives depend on nothing beyond common and ir", "[eval][layering]") {
  const fs::path root = WHITTLE_SOURCE_DIR;
  for (const fs::path& file : {root / "include/whittle/eval/metrics.h", root / "src/eval/metrics.cpp"}) {
    REQUIRE(fs::exists(file));
    for (const auto& [included, header] : whittleIncludes(file)) {
      INFO(file.string() << " includes whittle/" << included << "/" << header);
      CHECK((included == "common" || included == "ir" || (included == "eval" && header == "metrics.h")));
    }
  }
}

TEST_CASE("the QDQ group selector depends on nothing beyond common and ir", "[eval][layering]") {
  const fs::path root = WHITTLE_SOURCE_DIR;
  for (const fs::path& file : {root / "include/whittle/quant/qdq_groups.h", root / "src/quant/qdq_groups.cpp"}) {
    REQUIRE(fs::exists(file));
    for (const auto& [included, header] : whittleIncludes(file)) {
      INFO(file.string() << " includes whittle/" << included << "/" << header);
      CHECK((included == "common" || included == "ir" || (included == "quant" && header == "qdq_groups.h")));
    }
  }
}

}  // namespace
}  // namespace whittle
