// JSON (docs/compare-schema.md), Markdown and JUnit reports, and writing all of them.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "whittle/common/text.h"
#include "whittle/report/report.h"

namespace whittle::report {
namespace {

using nlohmann::json;

/// JSON has no infinity or NaN: those become the strings "inf", "-inf" and "nan".
json number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

json modelJson(const ModelSummary& m) {
  json j;
  j["path"] = m.path;
  j["file_bytes"] = m.fileBytes >= 0 ? json(m.fileBytes) : json(nullptr);
  j["nodes"] = m.nodes;
  j["parameters"] = m.parameters;
  j["parameter_bytes"] = m.parameterBytes;
  j["parameter_bytes_by_dtype"] = m.parameterBytesByDtype;
  j["op_histogram"] = m.opHistogram;
  j["pipeline"] = m.pipeline.empty() ? json(nullptr) : json(m.pipeline);
  j["producer"] = m.producer;
  return j;
}

json latencyJson(const LatencyStats& s) {
  return {{"runs", s.runs},
          {"batch", s.batch},
          {"p50_ms", s.p50Ms},
          {"p90_ms", s.p90Ms},
          {"p99_ms", s.p99Ms},
          {"mean_ms", s.meanMs},
          {"throughput_per_s", s.throughput}};
}

Status writeText(const std::string& path, const std::string& text, const std::string& what) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return Status::ok();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return ioError(path + ": cannot write the " + what + " report");
  out << text;
  out.close();
  if (!out) return ioError(path + ": writing the " + what + " report failed");
  return Status::ok();
}

}  // namespace

std::string xmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\n' || c == '\t') out += c;
    }
  }
  return out;
}

std::string verdict(const CompareResult& result) {
  if (result.gates.empty()) return "MEASURED";
  return result.gatesPassed() ? "PASS" : "FAIL";
}

std::optional<size_t> firstErrorJump(const std::vector<LayerMetrics>& layers, double jumpDb) {
  double lowest = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < layers.size(); ++i) {
    double s = layers[i].sqnrDb;
    if (std::isnan(s)) continue;
    if (std::isfinite(s) && s < lowest - jumpDb) return i;
    lowest = std::min(lowest, s);
  }
  return std::nullopt;
}

std::string jsonReport(const CompareResult& r) {
  json j;
  j["schema"] = "whittle.compare";
  j["schema_version"] = kCompareSchemaVersion;
  j["verdict"] = verdict(r);
  j["passed"] = r.gatesPassed();
  j["dataset"] = {{"description", r.dataset}, {"samples", r.samples}, {"batch", r.batch}, {"labels", r.hasLabels}};
  j["threads"] = r.threads;
  j["notes"] = r.notes;
  j["models"] = {{"original", modelJson(r.original)}, {"optimized", modelJson(r.optimized)}};
  j["op_delta"] = r.opDelta();
  j["size_ratio"] = r.sizeRatio() > 0 ? json(r.sizeRatio()) : json(nullptr);
  json outs = json::array();
  for (const auto& o : r.outputs) {
    json x;
    x["name"] = o.name;
    x["dims"] = o.dims;
    x["elements"] = o.elements;
    x["cosine"] = number(o.cosine);
    x["sqnr_db"] = number(o.sqnrDb);
    x["channels"] = o.channels;
    x["min_channel_sqnr_db"] = number(o.minChannelSqnrDb);
    x["min_channel"] = o.minChannel;
    x["channel_axis"] = o.channelAxis;
    x["max_abs_error"] = number(o.maxAbsError);
    x["mean_abs_error"] = number(o.meanAbsError);
    x["class_scores"] = o.classScores;
    x["classes"] = o.classes;
    x["agreement_pct"] = o.agreement ? json(*o.agreement * 100.0) : json(nullptr);
    if (o.hasAccuracy) {
      x["accuracy"] = {{"top1_original_pct", o.top1Original * 100.0},
                       {"top5_original_pct", o.top5Original * 100.0},
                       {"top1_optimized_pct", o.top1Optimized * 100.0},
                       {"top5_optimized_pct", o.top5Optimized * 100.0},
                       {"top1_drop_pp", (o.top1Original - o.top1Optimized) * 100.0}};
    } else {
      x["accuracy"] = nullptr;
    }
    if (o.perplexityOriginal) {
      x["perplexity"] = {{"original", number(*o.perplexityOriginal)},
                         {"optimized", o.perplexityOptimized ? number(*o.perplexityOptimized) : json(nullptr)},
                         {"increase_pct", o.perplexityOptimized ? json(CompareResult::perplexityIncreasePct(o)) : json(nullptr)},
                         {"positions", o.perplexityTokens}};
    } else {
      x["perplexity"] = nullptr;
    }
    outs.push_back(std::move(x));
  }
  j["outputs"] = std::move(outs);
  j["latency"] = {{"original", latencyJson(r.originalLatency)},
                  {"optimized", latencyJson(r.optimizedLatency)},
                  {"speedup", r.speedup() > 0 ? json(r.speedup()) : json(nullptr)}};
  if (r.perLayer) {
    json layers = json::array();
    for (const auto& l : r.layers) {
      layers.push_back({{"tensor", l.tensor},
                        {"optimized_tensor", l.optimizedTensor},
                        {"match", l.match},
                        {"op_type", l.opType},
                        {"node", l.node},
                        {"sqnr_db", number(l.sqnrDb)},
                        {"cosine", number(l.cosine)},
                        {"max_abs_error", number(l.maxAbsError)}});
    }
    j["per_layer"] = std::move(layers);
    auto jump = firstErrorJump(r.layers);
    j["first_error_jump"] = jump ? json(r.layers[*jump].tensor) : json(nullptr);
  } else {
    j["per_layer"] = nullptr;
    j["first_error_jump"] = nullptr;
  }
  json gates = json::array();
  for (const auto& g : r.gates) {
    gates.push_back({{"name", g.name},
                     {"threshold", g.threshold},
                     {"measured", number(g.measured)},
                     {"passed", g.passed},
                     {"message", g.message}});
  }
  j["gates"] = std::move(gates);
  if (r.tuning) {
    const TuningSection& t = *r.tuning;
    json tj;
    tj["budget"] = t.budget;
    tj["met"] = t.met;
    tj["summary"] = t.summary;
    tj["sensitivity"] = json::array();
    for (const auto& n : t.sensitivity) {
      tj["sensitivity"].push_back({{"rank", n.rank},
                                   {"node", n.node},
                                   {"op_type", n.opType},
                                   {"local_loss_db", number(n.localLossDb)},
                                   {"gain_db", n.gainDb ? number(*n.gainDb) : json(nullptr)}});
    }
    tj["trials"] = json::array();
    for (const auto& x : t.trials) {
      tj["trials"].push_back({{"index", x.index},
                              {"stage", x.stage},
                              {"change", x.change},
                              {"full_data", x.fullData},
                              {"best", x.best},
                              {"meets_budget", x.meets},
                              {"float_nodes", x.floatNodes},
                              {"min_channel_sqnr_db", number(x.sqnrDb)},
                              {"agreement_pct", x.agreementPct ? json(*x.agreementPct) : json(nullptr)},
                              {"accuracy_drop_pp", x.accuracyDropPp ? json(*x.accuracyDropPp) : json(nullptr)},
                              {"parameter_bytes", x.parameterBytes},
                              {"ms_per_sample", x.msPerSample}});
    }
    tj["fell_back"] = json::array();
    for (const auto& [node, why] : t.fellBack) tj["fell_back"].push_back({{"node", node}, {"why", why}});
    j["tuning"] = std::move(tj);
  }
  return j.dump(2) + "\n";
}

std::string markdownReport(const CompareResult& r) {
  std::string v = verdict(r);
  std::string icon = v == "PASS" ? "✅" : v == "FAIL" ? "❌" : "ℹ️";
  std::string md = "### " + icon + " whittle compare: " + v + "\n\n";
  md += "`" + r.original.path + "` → `" + r.optimized.path + "` on " + std::to_string(r.samples) + " samples, " +
        std::to_string(r.threads) + " thread" + (r.threads == 1 ? "" : "s") + "\n\n";
  for (const auto& n : r.notes) md += "> Note: " + n + "\n\n";
  md += "| | original | optimized | change |\n| --- | ---: | ---: | ---: |\n";
  if (const OutputMetrics* c = r.classification()) {
    if (c->hasAccuracy) {
      md += "| top-1 | " + fmt("%.2f %%", c->top1Original * 100) + " | " + fmt("%.2f %%", c->top1Optimized * 100) +
            " | " + fmt("%+.2f pp", (c->top1Optimized - c->top1Original) * 100) + " |\n";
      md += "| top-5 | " + fmt("%.2f %%", c->top5Original * 100) + " | " + fmt("%.2f %%", c->top5Optimized * 100) +
            " | " + fmt("%+.2f pp", (c->top5Optimized - c->top5Original) * 100) + " |\n";
    }
    if (c->agreement) md += "| top-1 agreement | | | " + fmt("%.2f %%", *c->agreement * 100) + " |\n";
  }
  if (const OutputMetrics* p = r.perplexity()) {
    md += "| perplexity (`" + p->name + "`, " + std::to_string(p->perplexityTokens) + " positions) | " +
          fmt("%.4f", *p->perplexityOriginal) + " | " +
          (p->perplexityOptimized ? fmt("%.4f", *p->perplexityOptimized) : std::string("?")) + " | " +
          (p->perplexityOptimized ? fmt("%+.2f %%", CompareResult::perplexityIncreasePct(*p)) : std::string("?")) + " |\n";
  }
  md += "| output SQNR (min) | | | " + formatDb(r.minOutputSqnr()) + " |\n";
  md += "| per-channel SQNR (min over each output's channel axis) | | | " + formatDb(r.minChannelSqnr()) + " |\n";
  if (r.originalLatency.runs > 0) {
    md += "| p50 latency | " + fmt("%.3f ms", r.originalLatency.p50Ms) + " | " +
          fmt("%.3f ms", r.optimizedLatency.p50Ms) + " | " + fmt("%.2fx", r.speedup()) + " |\n";
  }
  md += "| file size | " + bytesText(r.original.fileBytes) + " | " + bytesText(r.optimized.fileBytes) + " | " +
        (r.sizeRatio() > 0 ? fmt("%.3fx", r.sizeRatio()) : std::string("?")) + " |\n";
  if (!r.gates.empty()) {
    md += "\n";
    for (const auto& g : r.gates) md += std::string("- ") + (g.passed ? "✅ " : "❌ ") + g.message + "\n";
  }
  if (r.perLayer && !r.layers.empty()) {
    if (auto jump = firstErrorJump(r.layers)) {
      const LayerMetrics& l = r.layers[*jump];
      md += "\nError first jumps at `" + l.tensor + "` (" + l.opType + ", layer " + std::to_string(*jump + 1) + " of " +
            std::to_string(r.layers.size()) + "): " + formatDb(l.sqnrDb) + "\n";
    }
  }
  if (r.tuning) {
    const TuningSection& t = *r.tuning;
    md += "\n### Accuracy-aware quantization\n\nBudget: " + t.budget + " — " + (t.met ? "met" : "**not met**") + ". " +
          t.summary + "\n";
    if (!t.fellBack.empty()) {
      md += "\nKept float:\n";
      for (const auto& [node, why] : t.fellBack) md += "- `" + node + "`: " + why + "\n";
    }
    if (!t.sensitivity.empty()) {
      md += "\n| rank | node | op | float alone (dB) | per-layer loss (dB) |\n| --- | --- | --- | --- | --- |\n";
      for (size_t i = 0; i < std::min<size_t>(t.sensitivity.size(), 10); ++i) {
        const auto& n = t.sensitivity[i];
        md += "| " + std::to_string(n.rank) + " | `" + n.node + "` | " + n.opType + " | " +
              (n.gainDb ? fmt("%+.2f", *n.gainDb) : std::string("—")) + " | " + fmt("%.2f", n.localLossDb) + " |\n";
      }
    }
  }
  if (!r.optimized.pipeline.empty()) md += "\nPipeline: `" + r.optimized.pipeline + "`\n";
  return md;
}

std::string junitReport(const CompareResult& r) {
  int failures = 0;
  for (const auto& g : r.gates) failures += g.passed ? 0 : 1;
  size_t tests = r.gates.empty() ? 1 : r.gates.size();
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += "<testsuites name=\"whittle compare\" tests=\"" + std::to_string(tests) + "\" failures=\"" +
       std::to_string(failures) + "\">\n";
  x += "  <testsuite name=\"whittle compare " + xmlEscape(r.optimized.path) + "\" tests=\"" + std::to_string(tests) +
       "\" failures=\"" + std::to_string(failures) + "\" errors=\"0\">\n";
  x += "    <properties>\n";
  x += "      <property name=\"original\" value=\"" + xmlEscape(r.original.path) + "\"/>\n";
  x += "      <property name=\"optimized\" value=\"" + xmlEscape(r.optimized.path) + "\"/>\n";
  x += "      <property name=\"samples\" value=\"" + std::to_string(r.samples) + "\"/>\n";
  x += "      <property name=\"output_sqnr_db\" value=\"" + xmlEscape(formatDb(r.minOutputSqnr(), 2)) + "\"/>\n";
  if (const OutputMetrics* p = r.perplexity()) {
    x += "      <property name=\"perplexity_original\" value=\"" + fmt("%.6g", *p->perplexityOriginal) + "\"/>\n";
    if (p->perplexityOptimized) {
      x += "      <property name=\"perplexity_optimized\" value=\"" + fmt("%.6g", *p->perplexityOptimized) + "\"/>\n";
      x += "      <property name=\"perplexity_increase_pct\" value=\"" + fmt("%.4g", CompareResult::perplexityIncreasePct(*p)) + "\"/>\n";
    }
  }
  x += "    </properties>\n";
  if (r.gates.empty()) {
    x += "    <testcase classname=\"whittle.compare\" name=\"compare\">\n";
    x += "      <system-out>no gates were set; the comparison ran</system-out>\n    </testcase>\n";
  }
  for (const auto& g : r.gates) {
    x += "    <testcase classname=\"whittle.compare.gates\" name=\"" + xmlEscape(g.name) + "\">\n";
    if (!g.passed) x += "      <failure message=\"" + xmlEscape(g.message) + "\" type=\"gate\"/>\n";
    x += "      <system-out>" + xmlEscape(g.message) + "</system-out>\n";
    x += "    </testcase>\n";
  }
  x += "  </testsuite>\n</testsuites>\n";
  return x;
}

Status writeReports(const CompareResult& result, const ReportPaths& paths) {
  if (!paths.html.empty()) WH_RETURN_IF_ERROR(writeText(paths.html, htmlReport(result), "HTML"));
  if (!paths.json.empty()) WH_RETURN_IF_ERROR(writeText(paths.json, jsonReport(result), "JSON"));
  if (!paths.markdown.empty()) WH_RETURN_IF_ERROR(writeText(paths.markdown, markdownReport(result), "Markdown"));
  if (!paths.junit.empty()) WH_RETURN_IF_ERROR(writeText(paths.junit, junitReport(result), "JUnit"));
  return Status::ok();
}

}  // namespace whittle::report
