// The HTML report: one self-contained page (inline CSS and SVG, no scripts, no network) that
// reads on a phone and prints. Verdict first, then gates, accuracy, latency, per-layer SQNR
// and the models' composition.
#include <algorithm>
#include <cmath>
#include <limits>

#include "whittle/common/text.h"
#include "whittle/report/report.h"

namespace whittle::report {
namespace {

std::string pct(double fraction) {
  return fmt("%.2f %%", fraction * 100.0);
}

std::string fileName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char* kStyle = R"css(
:root{--ok:#1a7f37;--bad:#cf222e;--info:#0969da;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--a:#8250df;--b:#0969da}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#fff}
main{max-width:980px;margin:0 auto;padding:16px}
h1{font-size:1.6em;margin:0}
h2{font-size:1.2em;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
code{font:0.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--bg);padding:1px 4px;border-radius:4px;word-break:break-all}
.verdict{border-radius:10px;padding:16px 20px;color:#fff}
.verdict p{margin:4px 0 0;opacity:.95}
.verdict.pass{background:var(--ok)}.verdict.fail{background:var(--bad)}.verdict.measured{background:var(--info)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin-top:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:var(--bg)}
.card .k{color:var(--muted);font-size:.85em}.card .v{font-size:1.35em;font-weight:600}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
thead th{white-space:normal;vertical-align:bottom}
th:first-child,td:first-child{text-align:left}
thead th{background:var(--bg)}
.pass-t{color:var(--ok);font-weight:600}.fail-t{color:var(--bad);font-weight:600}
figure{margin:8px 0;overflow-x:auto;-webkit-overflow-scrolling:touch}
#models td code{white-space:normal}
figcaption{color:var(--muted);font-size:.85em}
svg{width:100%;height:auto;display:block}
svg text{font:11px system-ui,sans-serif;fill:var(--fg)}
.muted{color:var(--muted)}
details summary{cursor:pointer;margin:6px 0}
@media (max-width:600px){figure svg{min-width:560px}body{font-size:14px}main{padding:10px}h1{font-size:1.3em}.card .v{font-size:1.15em}}
@media print{main{max-width:none;padding:0}.verdict,.card,thead th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
section,figure{break-inside:avoid}details{display:block}details>*{display:block}.scroll{overflow:visible}}
)css";

/// The lowest per-channel SQNR of an output, with the channel, or a dash for one channel.
std::string channelText(const OutputMetrics& o) {
  if (o.channels <= 1) return "—";
  return formatDb(o.minChannelSqnrDb, 2) + " (channel " + std::to_string(o.minChannel) + " of " +
         std::to_string(o.channels) + " on axis " + std::to_string(o.channelAxis) + ")";
}

std::string card(const std::string& key, const std::string& value, const std::string& id) {
  return "<div class=\"card\" id=\"" + id + "\"><div class=\"k\">" + xmlEscape(key) + "</div><div class=\"v\">" + xmlEscape(value) +
         "</div></div>";
}

/// Horizontal bars of p50/p90/p99 for both models.
std::string latencySvg(const CompareResult& r) {
  struct Bar {
    std::string label;
    double ms;
    bool optimized;
  };
  std::vector<Bar> bars = {
      {"original p50", r.originalLatency.p50Ms, false}, {"optimized p50", r.optimizedLatency.p50Ms, true},
      {"original p90", r.originalLatency.p90Ms, false}, {"optimized p90", r.optimizedLatency.p90Ms, true},
      {"original p99", r.originalLatency.p99Ms, false}, {"optimized p99", r.optimizedLatency.p99Ms, true},
  };
  double maxMs = 0;
  for (const auto& b : bars) maxMs = std::max(maxMs, b.ms);
  if (maxMs <= 0) maxMs = 1;
  const int width = 720, left = 110, right = 90, rowH = 22;
  int height = static_cast<int>(bars.size()) * rowH + 10;
  std::string s = "<svg id=\"latency-chart\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
                  "\" role=\"img\" aria-label=\"latency bars\" preserveAspectRatio=\"xMinYMin meet\">";
  for (size_t i = 0; i < bars.size(); ++i) {
    int y = 5 + static_cast<int>(i) * rowH;
    double w = (width - left - right) * bars[i].ms / maxMs;
    s += "<text x=\"0\" y=\"" + std::to_string(y + 16) + "\">" + bars[i].label + "</text>";
    s += "<rect class=\"bar\" x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(y + 3) + "\" width=\"" +
         fmt("%.1f", std::max(w, 1.0)) + "\" height=\"" + std::to_string(rowH - 8) + "\" fill=\"" +
         (bars[i].optimized ? "#0969da" : "#8250df") + "\" rx=\"3\"><title>" + bars[i].label + ": " +
         fmt("%.3f ms", bars[i].ms) + "</title></rect>";
    s += "<text x=\"" + fmt("%.1f", left + std::max(w, 1.0) + 6) + "\" y=\"" + std::to_string(y + 16) + "\">" +
         fmt("%.3f ms", bars[i].ms) + "</text>";
  }
  return s + "</svg>";
}

/// Per-layer SQNR in graph order: a line with a dot per layer; exact layers (+inf) sit on
/// the top edge, the first jump is marked in red.
std::string sqnrSvg(const std::vector<LayerMetrics>& layers) {
  const double width = 800, height = 300, left = 48, right = 16, top = 36, bottom = 40;
  double lo = 0, hi = 0;
  bool anyFinite = false;
  for (const auto& l : layers) {
    if (!std::isfinite(l.sqnrDb)) continue;
    lo = anyFinite ? std::min(lo, l.sqnrDb) : std::min(0.0, l.sqnrDb);
    hi = anyFinite ? std::max(hi, l.sqnrDb) : l.sqnrDb;
    anyFinite = true;
  }
  if (!anyFinite) hi = 60;
  hi = std::ceil((std::max(hi, lo + 10) + 5) / 10) * 10;
  lo = std::floor(lo / 10) * 10;
  double plotW = width - left - right, plotH = height - top - bottom;
  size_t n = layers.size();
  auto xAt = [&](size_t i) {
    return left + (n <= 1 ? plotW / 2 : plotW * static_cast<double>(i) / static_cast<double>(n - 1));
  };
  auto yAt = [&](double db) {
    if (std::isinf(db)) return db > 0 ? top - 22 : top + plotH;
    return top + plotH * (hi - std::clamp(db, lo, hi)) / (hi - lo);
  };
  std::string s =
      "<svg id=\"sqnr-chart\" viewBox=\"0 0 800 300\" role=\"img\" aria-label=\"per-layer SQNR\" "
      "preserveAspectRatio=\"xMinYMin meet\">";
  // Grid and axis labels every 10 dB (at most ~8 lines).
  double step = std::max(10.0, std::ceil((hi - lo) / 8 / 10) * 10);
  for (double v = lo; v <= hi + 1e-9; v += step) {
    double y = yAt(v);
    s += "<line x1=\"" + fmt("%.1f", left) + "\" x2=\"" + fmt("%.1f", width - right) + "\" y1=\"" + fmt("%.1f", y) +
         "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"#d1d9e0\" stroke-width=\"1\"/>";
    s += "<text x=\"" + fmt("%.1f", left - 6) + "\" y=\"" + fmt("%.1f", y + 4) + "\" text-anchor=\"end\">" +
         fmt("%g", v) + "</text>";
  }
  s += "<line x1=\"" + fmt("%.1f", left) + "\" x2=\"" + fmt("%.1f", width - right) + "\" y1=\"" +
       fmt("%.1f", top - 22) + "\" y2=\"" + fmt("%.1f", top - 22) + "\" stroke=\"#d1d9e0\" stroke-dasharray=\"4 3\"/>";
  s += "<text x=\"" + fmt("%.1f", left - 6) + "\" y=\"" + fmt("%.1f", top - 18) + "\" text-anchor=\"end\">∞</text>";
  s += "<text x=\"" + fmt("%.1f", left + plotW / 2) + "\" y=\"" + fmt("%.1f", height - 8) +
       "\" text-anchor=\"middle\">layer (original graph order) → SQNR dB</text>";
  std::string points;
  for (size_t i = 0; i < n; ++i) points += fmt("%.1f,", xAt(i)) + fmt("%.1f ", yAt(layers[i].sqnrDb));
  s += "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" points=\"" + points + "\"/>";
  auto jump = firstErrorJump(layers);
  for (size_t i = 0; i < n; ++i) {
    bool marked = jump && *jump == i;
    s += "<circle class=\"layer-point\" cx=\"" + fmt("%.1f", xAt(i)) + "\" cy=\"" + fmt("%.1f", yAt(layers[i].sqnrDb)) +
         "\" r=\"" + (marked ? "5" : "2.5") + "\" fill=\"" + (marked ? "#cf222e" : "#0969da") + "\"><title>" +
         std::to_string(i + 1) + ". " + xmlEscape(layers[i].tensor) + " (" + xmlEscape(layers[i].opType) +
         "): " + formatDb(layers[i].sqnrDb, 2) + "</title></circle>";
  }
  if (jump) {
    double x = xAt(*jump), y = yAt(layers[*jump].sqnrDb);
    bool leftSide = x > width / 2;
    s += "<text x=\"" + fmt("%.1f", leftSide ? x - 8 : x + 8) + "\" y=\"" + fmt("%.1f", std::min(y + 16, top + plotH)) +
         "\" fill=\"#cf222e\" text-anchor=\"" + (leftSide ? "end" : "start") +
         "\">first jump: " + xmlEscape(layers[*jump].tensor) + " (" + formatDb(layers[*jump].sqnrDb) + ")</text>";
  }
  return s + "</svg>";
}

}  // namespace

/// Sensitivity as horizontal bars: the measured gain of keeping each node float (the most
/// harmful 20), fallen-back nodes in red.
std::string sensitivitySvg(const TuningSection& t) {
  std::vector<const TuningSection::Node*> rows;
  for (const auto& n : t.sensitivity) {
    if (n.gainDb && rows.size() < 20) rows.push_back(&n);
  }
  if (rows.empty()) return "";
  double hi = 0.1;
  for (const auto* n : rows) hi = std::max(hi, *n->gainDb);
  const double left = 260, width = 800, barH = 16, gap = 4, top = 8;
  const double height = top + static_cast<double>(rows.size()) * (barH + gap) + 24;
  std::string s = "<svg id=\"sensitivity-chart\" viewBox=\"0 0 800 " + fmt("%.0f", height) +
                  "\" role=\"img\" aria-label=\"sensitivity\" preserveAspectRatio=\"xMinYMin meet\">";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& n = *rows[i];
    bool fell = std::any_of(t.fellBack.begin(), t.fellBack.end(), [&](const auto& f) { return f.first == n.node; });
    double y = top + static_cast<double>(i) * (barH + gap);
    double w = std::max(0.0, *n.gainDb) / hi * (width - left - 80);
    s += "<text x=\"" + fmt("%.1f", left - 6) + "\" y=\"" + fmt("%.1f", y + barH - 4) + "\" text-anchor=\"end\">" +
         xmlEscape(n.node.size() > 36 ? n.node.substr(0, 35) + "…" : n.node) + "</text>";
    s += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", y) + "\" width=\"" + fmt("%.1f", w) + "\" height=\"" +
         fmt("%.0f", barH) + "\" fill=\"" + (fell ? "#cf222e" : "#0969da") + "\"><title>" + xmlEscape(n.node) + " (" +
         xmlEscape(n.opType) + "): " + fmt("%+.2f dB", *n.gainDb) + "</title></rect>";
    s += "<text x=\"" + fmt("%.1f", left + w + 6) + "\" y=\"" + fmt("%.1f", y + barH - 4) + "\">" + fmt("%+.2f dB", *n.gainDb) +
         "</text>";
  }
  s += "<text x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", height - 6) +
       "\">SQNR gained by keeping the node float (red: kept float in the written model)</text>";
  return s + "</svg>";
}

std::string tuningSection(const TuningSection& t) {
  std::string h = "<section id=\"tuning\"><h2>Accuracy-aware quantization</h2><p>Budget: " + xmlEscape(t.budget) +
                  " — <strong class=\"" + (t.met ? "pass-t\">met" : "fail-t\">not met") + "</strong>. " +
                  xmlEscape(t.summary) + "</p>";
  if (!t.fellBack.empty()) {
    h += "<p>Kept float:</p><ul>";
    for (const auto& [node, why] : t.fellBack) h += "<li><code>" + xmlEscape(node) + "</code>: " + xmlEscape(why) + "</li>";
    h += "</ul>";
  }
  std::string chart = sensitivitySvg(t);
  if (!chart.empty()) {
    h += "<figure>" + chart +
         "<figcaption>Sensitivity: each quantized node kept float alone, measured on the ranking samples.</figcaption>"
         "</figure>";
  }
  if (!t.sensitivity.empty()) {
    h += "<details><summary>" + std::to_string(t.sensitivity.size()) +
         " nodes ranked</summary><div class=\"scroll\"><table><thead><tr><th>rank</th><th>node</th><th>op</th>"
         "<th>float alone</th><th>per-layer loss</th></tr></thead><tbody>";
    for (const auto& n : t.sensitivity) {
      h += "<tr><td>" + std::to_string(n.rank) + "</td><td><code>" + xmlEscape(n.node) + "</code></td><td>" +
           xmlEscape(n.opType) + "</td><td>" + (n.gainDb ? fmt("%+.2f dB", *n.gainDb) : std::string("—")) + "</td><td>" +
           fmt("%.2f dB", n.localLossDb) + "</td></tr>";
    }
    h += "</tbody></table></div></details>";
  }
  h += "<h3>Trials on every evaluation sample: accuracy against size and speed</h3><div class=\"scroll\"><table><thead>"
       "<tr><th>#</th><th>stage</th><th>change</th><th>float nodes</th><th>SQNR (min channel)</th><th>agreement</th>"
       "<th>top-1 drop</th><th>parameter bytes</th><th>ms / sample</th></tr></thead><tbody>";
  for (const auto& x : t.trials) {
    if (!x.fullData) continue;
    h += std::string("<tr") + (x.best ? " class=\"best\"" : "") + "><td>" + std::to_string(x.index) + (x.best ? " ★" : "") +
         "</td><td>" + xmlEscape(x.stage) + "</td><td>" + xmlEscape(x.change) + "</td><td>" +
         std::to_string(x.floatNodes) + "</td><td>" + formatDb(x.sqnrDb, 2) + "</td><td>" +
         (x.agreementPct ? fmt("%.2f %%", *x.agreementPct) : std::string("—")) + "</td><td>" +
         (x.accuracyDropPp ? fmt("%.2f pp", *x.accuracyDropPp) : std::string("—")) + "</td><td>" +
         bytesText(x.parameterBytes) + "</td><td>" + fmt("%.3f", x.msPerSample) + "</td></tr>";
  }
  h += "</tbody></table></div><p class=\"muted\">" +
       std::to_string(std::count_if(t.trials.begin(), t.trials.end(), [](const auto& x) { return !x.fullData; })) +
       " more trials ran on the ranking samples only (sensitivity, range methods): see the trial log.</p></section>\n";
  return h;
}

std::string htmlReport(const CompareResult& r) {
  std::string v = verdict(r);
  std::string cls = v == "PASS" ? "pass" : v == "FAIL" ? "fail" : "measured";
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>whittle compare: " +
      v + " — " + xmlEscape(fileName(r.optimized.path)) + "</title><style>" + kStyle + "</style></head><body><main>\n";

  // Verdict and headline numbers.
  std::string sub = xmlEscape(fileName(r.original.path)) + " → " + xmlEscape(fileName(r.optimized.path)) + " · " +
                    std::to_string(r.samples) + " samples · " + std::to_string(r.threads) + " thread" +
                    (r.threads == 1 ? "" : "s");
  std::string detail;
  if (v == "FAIL") {
    for (const auto& g : r.gates) {
      if (!g.passed) detail += (detail.empty() ? "Failed: " : "; ") + xmlEscape(g.message);
    }
  } else if (v == "PASS") {
    detail = "All " + std::to_string(r.gates.size()) + " gates passed.";
  } else {
    detail = "No gates were set.";
  }
  h += "<header class=\"verdict " + cls + "\" id=\"verdict\"><h1>" + v + "</h1><p>" + sub + "</p><p>" + detail +
       "</p></header>\n<div class=\"cards\">";
  const OutputMetrics* c = r.classification();
  if (c != nullptr && c->hasAccuracy) {
    h += card("top-1 % (original → optimized)",
              fmt("%.1f", c->top1Original * 100) + " → " + fmt("%.1f", c->top1Optimized * 100), "card-top1");
  }
  if (c != nullptr && c->agreement) h += card("top-1 agreement", pct(*c->agreement), "card-agreement");
  if (const OutputMetrics* p = r.perplexity()) {
    std::string value = fmt("%.3f", *p->perplexityOriginal);
    if (p->perplexityOptimized) {
      value += " → " + fmt("%.3f", *p->perplexityOptimized) + " (" + fmt("%+.1f %%", CompareResult::perplexityIncreasePct(*p)) + ")";
    }
    h += card("perplexity (original → optimized)", value, "card-perplexity");
  }
  h += card("output SQNR (min)", formatDb(r.minOutputSqnr()), "card-sqnr");
  if (r.speedup() > 0) h += card("speedup (p50)", fmt("%.2f×", r.speedup()), "card-speedup");
  if (r.sizeRatio() > 0) h += card("size ratio", fmt("%.3f×", r.sizeRatio()), "card-size");
  h += "</div>\n";

  if (!r.gates.empty()) {
    h += "<section id=\"gates\"><h2>Gates</h2><div class=\"scroll\"><table><thead><tr><th>gate</th><th>threshold</th>"
         "<th>measured</th><th>result</th></tr></thead><tbody>";
    for (const auto& g : r.gates) {
      std::string measured = std::isinf(g.measured) ? (g.measured > 0 ? "inf" : "-inf") : fmt("%.4g", g.measured);
      h += "<tr><td>" + xmlEscape(g.name) + "</td><td>" + fmt("%g", g.threshold) + "</td><td>" + measured +
           "</td><td class=\"" + (g.passed ? "pass-t\">pass" : "fail-t\">FAIL") + "</td></tr>";
    }
    h += "</tbody></table></div></section>\n";
  }

  h += "<section id=\"accuracy\"><h2>Accuracy and output error</h2><div class=\"scroll\"><table><thead><tr>"
       "<th>output</th><th>top-1 orig</th><th>top-1 opt</th><th>top-5 orig</th><th>top-5 opt</th><th>agreement</th>"
       "<th>cosine</th><th>SQNR</th><th>min channel SQNR</th><th>max |err|</th><th>mean |err|</th></tr></thead><tbody>";
  for (const auto& o : r.outputs) {
    auto acc = [&](double f) { return o.hasAccuracy ? pct(f) : std::string("—"); };
    h += "<tr><td><code>" + xmlEscape(o.name) + "</code></td><td>" + acc(o.top1Original) + "</td><td>" +
         acc(o.top1Optimized) + "</td><td>" + acc(o.top5Original) + "</td><td>" + acc(o.top5Optimized) + "</td><td>" +
         (o.agreement ? pct(*o.agreement) : std::string("—")) + "</td><td>" + fmt("%.6f", o.cosine) + "</td><td>" +
         formatDb(o.sqnrDb, 2) + "</td><td>" + channelText(o) + "</td><td>" + fmt("%.4g", o.maxAbsError) + "</td><td>" + fmt("%.4g", o.meanAbsError) +
         "</td></tr>";
  }
  h += "</tbody></table></div><p class=\"muted\">" + xmlEscape(r.dataset) +
       (r.hasLabels ? "" : " — no labels: error metrics only") + ".</p>";
  for (const auto& n : r.notes) h += "<p class=\"muted\">Note: " + xmlEscape(n) + "</p>";
  h += "</section>\n";

  if (r.originalLatency.runs > 0) {
    h +=
        "<section id=\"latency\"><h2>Latency</h2><figure>" + latencySvg(r) + "<figcaption>" +
        std::to_string(r.originalLatency.runs) + " timed runs of each model on a batch of " +
        std::to_string(r.originalLatency.batch) + ", interleaved, " + std::to_string(r.threads) +
        " thread(s)</figcaption></figure><div class=\"scroll\"><table><thead><tr><th>model</th><th>p50</th><th>p90</th>"
        "<th>p99</th><th>mean</th><th>throughput</th></tr></thead><tbody>";
    for (int k = 0; k < 2; ++k) {
      const LatencyStats& s = k == 0 ? r.originalLatency : r.optimizedLatency;
      h += std::string("<tr><td>") + (k == 0 ? "original" : "optimized") + "</td><td>" + fmt("%.3f ms", s.p50Ms) +
           "</td><td>" + fmt("%.3f ms", s.p90Ms) + "</td><td>" + fmt("%.3f ms", s.p99Ms) + "</td><td>" +
           fmt("%.3f ms", s.meanMs) + "</td><td>" + fmt("%.1f /s", s.throughput) + "</td></tr>";
    }
    h += "</tbody></table></div></section>\n";
  }

  if (r.perLayer) {
    h += "<section id=\"per-layer\"><h2>Per-layer SQNR</h2>";
    if (r.layers.empty()) {
      h += "<p>No activation of the optimized model matches one of the original (by name or through a QDQ pair).</p>";
    } else {
      h += "<figure>" + sqnrSvg(r.layers) +
           "<figcaption>SQNR of each matched activation of the optimized model against "
           "the original's on the same inputs; exact layers sit on the ∞ line.</figcaption></figure>";
      h += "<details><summary>" + std::to_string(r.layers.size()) +
           " layers</summary><div class=\"scroll\"><table><thead>"
           "<tr><th>#</th><th>tensor</th><th>op</th><th>match</th><th>SQNR</th><th>cosine</th><th>max |err|</th></tr>"
           "</thead><tbody>";
      for (size_t i = 0; i < r.layers.size(); ++i) {
        const auto& l = r.layers[i];
        h += "<tr><td>" + std::to_string(i + 1) + "</td><td><code>" + xmlEscape(l.tensor) + "</code></td><td>" +
             xmlEscape(l.opType) + "</td><td>" + xmlEscape(l.match) + "</td><td>" + formatDb(l.sqnrDb, 2) + "</td><td>" +
             fmt("%.6f", l.cosine) + "</td><td>" + fmt("%.4g", l.maxAbsError) + "</td></tr>";
      }
      h += "</tbody></table></div></details>";
    }
    h += "</section>\n";
  }

  if (r.tuning) h += tuningSection(*r.tuning);

  h += "<section id=\"models\"><h2>Models</h2><div class=\"scroll\"><table><thead><tr><th></th><th>original</th>"
       "<th>optimized</th></tr></thead><tbody>";
  h += "<tr><td>file</td><td><code>" + xmlEscape(r.original.path) + "</code></td><td><code>" + xmlEscape(r.optimized.path) +
       "</code></td></tr>";
  h += "<tr><td>file size</td><td>" + bytesText(r.original.fileBytes) + "</td><td>" + bytesText(r.optimized.fileBytes) +
       "</td></tr>";
  h += "<tr><td>nodes</td><td>" + std::to_string(r.original.nodes) + "</td><td>" + std::to_string(r.optimized.nodes) +
       "</td></tr>";
  h += "<tr><td>parameter bytes</td><td>" + bytesText(r.original.parameterBytes) + "</td><td>" +
       bytesText(r.optimized.parameterBytes) + "</td></tr>";
  std::map<std::string, std::pair<int64_t, int64_t>> dtypes;
  for (const auto& [d, b] : r.original.parameterBytesByDtype) dtypes[d].first = b;
  for (const auto& [d, b] : r.optimized.parameterBytesByDtype) dtypes[d].second = b;
  for (const auto& [d, ab] : dtypes) {
    h += "<tr><td>&nbsp;&nbsp;" + xmlEscape(d) + "</td><td>" + bytesText(ab.first) + "</td><td>" + bytesText(ab.second) +
         "</td></tr>";
  }
  h += "<tr><td>producer</td><td>" + xmlEscape(r.original.producer) + "</td><td>" + xmlEscape(r.optimized.producer) + "</td></tr>";
  h += "</tbody></table></div>";
  h += "<p>Pipeline: " +
       (r.optimized.pipeline.empty()
            ? std::string("<span class=\"muted\">none recorded (no whittle.pipeline metadata)</span>")
            : "<code>" + xmlEscape(r.optimized.pipeline) + "</code>") +
       "</p>";
  std::map<std::string, std::pair<int64_t, int64_t>> ops;
  for (const auto& [op, n] : r.original.opHistogram) ops[op].first = n;
  for (const auto& [op, n] : r.optimized.opHistogram) ops[op].second = n;
  h += "<details open><summary>Op types</summary><div class=\"scroll\"><table id=\"ops\"><thead><tr><th>op</th>"
       "<th>original</th><th>optimized</th><th>change</th></tr></thead><tbody>";
  for (const auto& [op, ab] : ops) {
    int64_t d = ab.second - ab.first;
    h += "<tr><td>" + xmlEscape(op) + "</td><td>" + std::to_string(ab.first) + "</td><td>" + std::to_string(ab.second) +
         "</td><td>" + (d == 0 ? std::string("") : (d > 0 ? "+" : "") + std::to_string(d)) + "</td></tr>";
  }
  h += "</tbody></table></div></details></section>\n";
  h += "<footer><p class=\"muted\">Made by <code>whittle compare</code>; JSON schema version " +
       std::to_string(kCompareSchemaVersion) + ".</p></footer>\n</main></body></html>\n";
  return h;
}

}  // namespace whittle::report
