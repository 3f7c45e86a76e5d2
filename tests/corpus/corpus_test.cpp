// The model corpus: every model of ../shared/models (CI has them) and, when fetched, of the
// corpus folder (.cache/corpus, from scripts/fetch_corpus.sh; never required) goes through
// every stage of benchmarks/corpus.py: inspect, run against ONNX Runtime, optimize -O2, int8 and
// fp16, each emitted model loaded and run by ONNX Runtime and by whittle. The stages that fail
// today are listed, with the reason, in tests/corpus/expected_failures.txt; the test asserts
// exactly that truth: an unlisted failure fails it, and so does a listed one that now passes
// (then the line goes). The fetched corpus takes minutes, so that part is tagged [slow]:
//   ./build/whittle_tests "[corpus]"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "support/python.h"
#include "support/shared_data.h"
#include "support/shell.h"
#include "support/temp_dir.h"

using namespace whittle;
namespace fs = std::filesystem;

namespace {

const char* const kStages = "inspect,run,o2,int8,fp16";

/// (model, stage) -> reason, from tests/corpus/expected_failures.txt (MODEL<TAB>STAGE<TAB>reason).
std::map<std::pair<std::string, std::string>, std::string> readExpectedFailures() {
  std::map<std::pair<std::string, std::string>, std::string> listed;
  std::ifstream in(fs::path(WHITTLE_SOURCE_DIR) / "tests/corpus/expected_failures.txt");
  REQUIRE(in.good());
  std::string line;
  int lineNo = 0;
  while (std::getline(in, line)) {
    ++lineNo;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string model, stage, reason;
    std::getline(fields, model, '\t');
    std::getline(fields, stage, '\t');
    std::getline(fields, reason);
    INFO("expected_failures.txt line " << lineNo << ": " << line);
    REQUIRE_FALSE(model.empty());
    REQUIRE(std::string(kStages).find(stage) != std::string::npos);
    REQUIRE_FALSE(reason.empty());
    listed[{model, stage}] = reason;
  }
  return listed;
}

/// Runs benchmarks/corpus.py over the models of one source (`--shared DIR` or `--corpus DIR`)
/// and checks every stage against the expected failures of those models.
void checkCorpus(const std::string& sharedDir, const std::string& corpusDir) {
  if (!testing::requirePython("numpy, onnx, onnxruntime", "for the corpus driver (benchmarks/corpus.py)")) return;
  testing::TempDir tmp;
  const std::string report = tmp.file("corpus.json");
  std::string out;
  int rc = testing::shell(testing::python() + " " +
                              testing::shellQuote(std::string(WHITTLE_SOURCE_DIR) + "/benchmarks/corpus.py") +
                              " --binary " + testing::shellQuote(WHITTLE_BINARY) + " --shared " +
                              testing::shellQuote(sharedDir) + " --corpus " + testing::shellQuote(corpusDir) +
                              " --stages " + kStages + " --json " + testing::shellQuote(report) + " --quiet",
                          &out);
  INFO(out);
  REQUIRE(rc == 0);
  std::ifstream in(report);
  nlohmann::json records = nlohmann::json::parse(in)["models"];
  REQUIRE_FALSE(records.empty());

  auto expected = readExpectedFailures();
  std::set<std::string> models;
  std::vector<std::string> unexpectedFailures, unexpectedPasses;
  int stagesRun = 0;
  for (const auto& record : records) {
    const std::string model = record["name"];
    models.insert(model);
    for (const auto& [stage, result] : record["stages"].items()) {
      if (std::string(kStages).find(stage) == std::string::npos) continue;
      ++stagesRun;
      const bool passed = result["status"] == "ok";
      const bool listed = expected.contains({model, stage});
      if (!passed && !listed) {
        unexpectedFailures.push_back(model + " " + stage + ": " + result["reason"].get<std::string>() + "\n    " +
                                     result["cmd"].get<std::string>());
      } else if (passed && listed) {
        unexpectedPasses.push_back(model + "\t" + stage + "\t" + expected[{model, stage}]);
      }
    }
  }
  std::printf("corpus: %zu models, %d stages run, %zu unexpected failures, %zu listed failures that pass\n",
              models.size(), stagesRun, unexpectedFailures.size(), unexpectedPasses.size());
  for (const auto& f : unexpectedFailures) UNSCOPED_INFO("unexpected failure: " << f);
  for (const auto& p : unexpectedPasses) {
    UNSCOPED_INFO("listed in tests/corpus/expected_failures.txt but passes now (remove the line): " << p);
  }
  CHECK(unexpectedFailures.empty());
  CHECK(unexpectedPasses.empty());
  CHECK(stagesRun == static_cast<int>(models.size()) * 5);
}

}  // namespace

TEST_CASE("every shared model goes through every stage, or fails as listed", "[corpus]") {
  auto readme = testing::sharedPath("models/README.md");
  if (!readme) return;
  checkCorpus(fs::path(*readme).parent_path().string(), "");
}

TEST_CASE("every fetched corpus model goes through every stage, or fails as listed", "[corpus][slow]") {
  const fs::path dir = fs::path(WHITTLE_SOURCE_DIR) / ".cache/corpus";
  if (!fs::exists(dir)) {
    WARN("skipped: no corpus at " << dir.string() << " (fetch it with: bash scripts/fetch_corpus.sh)");
    return;
  }
  checkCorpus("", dir.string());
}

TEST_CASE("the expected failures of the corpus name known models and stages", "[corpus]") {
  auto expected = readExpectedFailures();
  std::set<std::string> known;
  std::ifstream tsv(fs::path(WHITTLE_SOURCE_DIR) / "corpus/models.tsv");
  std::string line;
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("name\t", 0) == 0) continue;
    known.insert(line.substr(0, line.find('\t')));
  }
  auto readme = testing::sharedPath("models/README.md");
  if (!readme) return;
  for (const auto& entry : fs::directory_iterator(fs::path(*readme).parent_path())) {
    if (entry.path().extension() == ".onnx") known.insert(entry.path().stem().string());
  }
  for (const auto& [key, reason] : expected) {
    INFO("expected_failures.txt names " << key.first << " " << key.second);
    CHECK(known.contains(key.first));
  }
}
