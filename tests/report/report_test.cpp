// The reports of whittle compare: JSON against docs/compare-schema.md, Markdown, JUnit XML,
// and the HTML page, which is rendered in headless Chromium when it is installed.
#include "whittle/report/report.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "support/compare_models.h"
#include "support/python.h"
#include "support/shell.h"
#include "support/temp_dir.h"

namespace whittle::report {
namespace {

using nlohmann::json;
using testing::TempDir;

// The original MLP against a copy with a damaged second layer, per layer, with every gate.
CompareResult damagedResult(const TempDir& dir, bool failSqnr) {
  testing::Files f = testing::writeData(dir);
  ir::Model damaged = testing::mlp();
  testing::perturb(damaged, "w2");
  damaged.setMetadata("whittle.pipeline", "perturb{layer=w2}");
  std::string a = testing::save(testing::mlp(), dir, "a.onnx");
  std::string b = testing::save(damaged, dir, "b.onnx");
  data::DatasetSpec spec;
  spec.path = f.data;
  spec.labels = f.labels;
  CompareOptions options;
  options.perLayer = true;
  options.latencyRuns = 3;
  options.warmupRuns = 1;
  Gates gates;
  gates.maxAccuracyDrop = 100;
  gates.minAgreement = 0;
  gates.minSqnr = failSqnr ? 1000 : -1000;
  gates.minSpeedup = 0;
  gates.maxSizeRatio = 10;
  auto r = compareFiles(a, b, spec, options, gates, {});
  REQUIRE(r.isOk());
  // A perplexity as `--metric perplexity` measures it on a causal LM (the MLP has no logits of
  // rank 3), so that every report shows one.
  r->outputs[0].perplexityOriginal = 12.5;
  r->outputs[0].perplexityOptimized = 13.75;
  r->outputs[0].perplexityTokens = 1022;
  return std::move(r).value();
}

// Field paths of a JSON value as docs/compare-schema.md writes them: "a.b", "a[].b", and
// "<which>" for the original/optimized objects. Entries of maps are not descended into.
void collectPaths(const json& j, const std::string& path, const std::set<std::string>& maps,
                  std::set<std::string>& out) {
  // An array element ("a[]") is described by its fields, not by a row of its own.
  bool element = path.size() >= 2 && path.compare(path.size() - 2, 2, "[]") == 0;
  if (!path.empty() && !element) out.insert(path);
  if (maps.count(path) != 0) return;
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      bool which = (path == "models" || path == "latency") && (key == "original" || key == "optimized");
      std::string k = which ? "<which>" : key;
      collectPaths(value, path.empty() ? k : path + "." + k, maps, out);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) {
      if (e.is_object() || e.is_array()) collectPaths(e, path + "[]", maps, out);
    }
  }
}

struct DocField {
  std::string type;
};

// The rows "| `path` | type | meaning |" of the Fields table.
std::map<std::string, DocField> documentedFields() {
  std::ifstream in(std::string(WHITTLE_SOURCE_DIR) + "/docs/compare-schema.md");
  REQUIRE(in);
  std::map<std::string, DocField> fields;
  std::regex row(R"(^\| `([^`]+)` \| ((?:[^|\\]|\\\|)+?) \| .*\|$)");
  std::string line;
  bool inFields = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) inFields = line == "## Fields";
    std::smatch m;
    if (inFields && std::regex_match(line, m, row)) fields[m[1]] = {m[2]};
  }
  return fields;
}

TEST_CASE("JSON report: every field is documented and every documented field is written", "[report][json]") {
  TempDir dir;
  CompareResult r = damagedResult(dir, /*failSqnr=*/true);
  json j = json::parse(jsonReport(r));
  auto doc = documentedFields();
  REQUIRE(doc.size() > 50);
  std::set<std::string> maps;
  for (const auto& [path, f] : doc) {
    if (f.type == "map") maps.insert(path);
  }
  std::set<std::string> written;
  collectPaths(j, "", maps, written);
  for (const auto& p : written) {
    INFO("written but not documented: " << p);
    CHECK(doc.count(p) == 1);
  }
  for (const auto& [p, f] : doc) {
    INFO("documented but not written: " << p);
    CHECK(written.count(p) == 1);
  }
  // Types as documented.
  CHECK(j["schema"] == "whittle.compare");
  CHECK(j["schema_version"] == kCompareSchemaVersion);
  CHECK(j["verdict"] == "FAIL");
  CHECK(j["passed"] == false);
  CHECK(j["dataset"]["samples"] == 12);
  CHECK(j["per_layer"].size() == 4);
  CHECK(j["per_layer"][0]["sqnr_db"] == "inf");  // identical before the damage
  CHECK(j["per_layer"][2]["sqnr_db"].is_number());
  CHECK(j["first_error_jump"] == "h2");
  CHECK(j["models"]["optimized"]["pipeline"] == "perturb{layer=w2}");
  CHECK(j["models"]["original"]["pipeline"].is_null());
  CHECK(j["gates"].size() == 5);
  int failed = 0;
  for (const auto& g : j["gates"]) failed += g["passed"].get<bool>() ? 0 : 1;
  CHECK(failed == 1);
  CHECK(j["outputs"][0]["accuracy"]["top1_drop_pp"].is_number());
  CHECK(j["outputs"][0]["perplexity"]["increase_pct"] == Approx(10.0));
  CHECK(j["outputs"][0]["perplexity"]["positions"] == 1022);
}

TEST_CASE("JSON report: infinite SQNR is the string inf", "[report][json]") {
  CompareResult r;
  OutputMetrics o;
  o.name = "y";
  o.sqnrDb = INFINITY;
  r.outputs.push_back(o);
  json j = json::parse(jsonReport(r));
  CHECK(j["outputs"][0]["sqnr_db"] == "inf");
  CHECK(j["outputs"][0]["accuracy"].is_null());
  CHECK(j["per_layer"].is_null());
  CHECK(j["verdict"] == "MEASURED");
}

TEST_CASE("Markdown report is short and names the failing gate", "[report][markdown]") {
  TempDir dir;
  CompareResult r = damagedResult(dir, /*failSqnr=*/true);
  std::string md = markdownReport(r);
  INFO(md);
  CHECK(md.rfind("### ❌ whittle compare: FAIL", 0) == 0);
  CHECK(md.find("❌ min-sqnr:") != std::string::npos);
  CHECK(md.find("✅ max-size-ratio:") != std::string::npos);
  CHECK(md.find("Error first jumps at `h2`") != std::string::npos);
  CHECK(md.find("Pipeline: `perturb{layer=w2}`") != std::string::npos);
  CHECK(md.find("| 12.5000 | 13.7500 | +10.00 % |") != std::string::npos);
  CHECK(std::count(md.begin(), md.end(), '\n') < 30);
  CHECK(md.size() < 2500);
}

TEST_CASE("JUnit report: one test case per gate, failures marked", "[report][junit]") {
  TempDir dir;
  CompareResult r = damagedResult(dir, /*failSqnr=*/true);
  std::string xml = junitReport(r);
  CHECK(xml.find("<property name=\"perplexity_increase_pct\" value=\"10\"/>") != std::string::npos);
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t p = xml.find(s); p != std::string::npos; p = xml.find(s, p + 1)) ++n;
    return n;
  };
  CHECK(count("<testcase ") == 5);
  CHECK(count("<failure ") == 1);
  CHECK(xml.find("name=\"min-sqnr\">\n      <failure message=\"min-sqnr: output SQNR") != std::string::npos);
  CHECK(xml.find("tests=\"5\" failures=\"1\"") != std::string::npos);
  if (testing::requirePython("xml.etree.ElementTree", "to parse the JUnit XML")) {
    std::string path = dir.file("junit.xml");
    std::ofstream(path) << xml;
    std::string out;
    int rc = testing::shell(testing::python() +
                                " -c \"import sys,xml.etree.ElementTree as E; t=E.parse(sys.argv[1]).getroot(); "
                                "print(len(t.findall('.//testcase')), len(t.findall('.//failure')))\" " +
                                path,
                            &out);
    INFO(out);
    CHECK(rc == 0);
    CHECK(out == "5 1\n");
  }

  CompareResult none;
  std::string empty = junitReport(none);
  CHECK(empty.find("<testcase classname=\"whittle.compare\" name=\"compare\">") != std::string::npos);
  CHECK(empty.find("<failure") == std::string::npos);
}

TEST_CASE("HTML report is one self-contained page with the figures", "[report][html]") {
  TempDir dir;
  CompareResult r = damagedResult(dir, /*failSqnr=*/true);
  std::string html = htmlReport(r);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("name=\"viewport\"") != std::string::npos);
  CHECK(html.find("@media print") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("id=\"verdict\"") < html.find("id=\"accuracy\""));
  CHECK(html.find("class=\"verdict fail\"") != std::string::npos);
  CHECK(html.find("12.500 → 13.750 (+10.0 %)") != std::string::npos);
  CHECK(html.find("id=\"latency-chart\"") != std::string::npos);
  CHECK(html.find("id=\"sqnr-chart\"") != std::string::npos);
  CHECK(html.find("min-sqnr: output SQNR") != std::string::npos);
  CHECK(html.find("first jump: h2") != std::string::npos);
}

// Runs chromium; false (a skip) when it is not installed, a failure under CI=true.
bool haveChromium() {
  if (testing::shell("command -v chromium >/dev/null 2>&1") == 0) return true;
  if (testing::inCi()) FAIL("chromium is missing (scripts/setup.sh installs it); CI=true requires it");
  WARN("skipped: chromium is not installed (scripts/setup.sh installs it)");
  return false;
}

// The width and height of a PNG file (0, 0 when it is not one).
std::pair<uint32_t, uint32_t> pngSize(const std::string& path) {
  std::string bytes = testing::readBytes(path);
  if (bytes.size() < 24 || bytes.compare(1, 3, "PNG") != 0) return {0, 0};
  auto be = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  return {be(16), be(20)};
}

TEST_CASE("HTML report renders in headless Chromium, on a desktop and a phone", "[report][html][chromium]") {
  if (!haveChromium()) return;
  TempDir dir;
  CompareResult r = damagedResult(dir, /*failSqnr=*/true);
  std::string page = dir.file("report.html");
  std::ofstream(page) << htmlReport(r);
  const std::string chromium =
      "chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
      "--user-data-dir=" +
      dir.file("profile") + " ";
  std::string dom;
  int rc = testing::shell(chromium + "--dump-dom file://" + page + " 2>/dev/null", &dom);
  REQUIRE(rc == 0);
  // The DOM after parsing: the verdict, both figures, one dot per layer, the gate table.
  CHECK(dom.find("id=\"verdict\"") != std::string::npos);
  CHECK(dom.find("<svg id=\"sqnr-chart\"") != std::string::npos);
  CHECK(dom.find("<svg id=\"latency-chart\"") != std::string::npos);
  size_t dots = 0;
  for (size_t p = dom.find("class=\"layer-point\""); p != std::string::npos;
       p = dom.find("class=\"layer-point\"", p + 1))
    ++dots;
  CHECK(dots == r.layers.size());
  CHECK(dom.find("<section id=\"gates\">") != std::string::npos);

  for (auto [width, height] : {std::pair{1000, 1600}, std::pair{390, 2400}}) {
    std::string shot = dir.file("shot_" + std::to_string(width) + ".png");
    std::string out;
    rc =
        testing::shell(chromium + "--hide-scrollbars --screenshot=" + shot + " --window-size=" + std::to_string(width) +
                           "," + std::to_string(height) + " file://" + page + " 2>&1",
                       &out);
    INFO(out);
    REQUIRE(rc == 0);
    auto size = pngSize(shot);
    CHECK(size.first == static_cast<uint32_t>(width));
    CHECK(size.second == static_cast<uint32_t>(height));
    // A rendered page is far from blank: a blank PNG of this size compresses to a few KB.
    CHECK(testing::readBytes(shot).size() > 20000);
  }
  // Print: the page becomes a PDF (the @media print rules apply).
  std::string pdf = dir.file("report.pdf");
  std::string out;
  rc = testing::shell(chromium + "--no-pdf-header-footer --print-to-pdf=" + pdf + " file://" + page + " 2>&1", &out);
  INFO(out);
  REQUIRE(rc == 0);
  std::string bytes = testing::readBytes(pdf);
  CHECK(bytes.rfind("%PDF-", 0) == 0);
  CHECK(bytes.size() > 10000);
}

TEST_CASE("reports show the tuning section: ranking chart, trials, what fell back", "[report][tune]") {
  TempDir dir;
  CompareResult r = damagedResult(dir, /*failSqnr=*/false);
  TuningSection t;
  t.budget = "top-1 drop <= 0.50 pp";
  t.met = true;
  t.summary = "Best: trial 2 of 3.";
  t.sensitivity.push_back({1, "conv_hostile", "Conv", 12.5, 9.0});
  t.sensitivity.push_back({2, "conv_ok", "Conv", 0.5, std::nullopt});
  t.trials.push_back({0, "baseline", "every node quantized", true, false, false, 0, 8.0, 90.0, 2.0, 1000, 1.5});
  t.trials.push_back({1, "sensitivity", "'conv_hostile' float", false, false, false, 1, 17.0, 95.0, std::nullopt, 1200, 1.6});
  t.trials.push_back({2, "fallback", "'conv_hostile' (Conv) float", true, true, true, 1, 17.0, 99.0, 0.2, 1200, 1.7});
  t.fellBack.emplace_back("conv_hostile", "rank 1 in sensitivity");
  r.tuning = t;

  std::string html = htmlReport(r);
  CHECK_THAT(html, Catch::Contains("id=\"tuning\"") && Catch::Contains("id=\"sensitivity-chart\""));
  CHECK_THAT(html, Catch::Contains("conv_hostile") && Catch::Contains("+9.00 dB"));
  CHECK_THAT(html, Catch::Contains("fill=\"#cf222e\""));  // the fallen-back node's bar
  CHECK_THAT(html, Catch::Contains("2 ★"));                 // the best trial, among the full-data ones
  std::string md = markdownReport(r);
  CHECK_THAT(md, Catch::Contains("### Accuracy-aware quantization") && Catch::Contains("`conv_hostile`: rank 1"));
  json j = json::parse(jsonReport(r));
  REQUIRE(j.contains("tuning"));
  CHECK(j["tuning"]["met"] == true);
  CHECK(j["tuning"]["sensitivity"][0]["gain_db"] == 9.0);
  CHECK(j["tuning"]["sensitivity"][1]["gain_db"].is_null());
  CHECK(j["tuning"]["trials"].size() == 3);
  CHECK(j["tuning"]["fell_back"][0]["node"] == "conv_hostile");
}

}  // namespace
}  // namespace whittle::report
