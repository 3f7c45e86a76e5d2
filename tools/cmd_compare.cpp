// whittle compare: run an original and an optimized model on a data set and report accuracy,
// output and per-layer error, latency and size side by side (measured by src/eval/, written by
// src/report/), with CI gates.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "commands.h"
#include "progress.h"
#include "whittle/common/text.h"
#include "whittle/data/dataset.h"
#include "whittle/report/compare.h"
#include "whittle/report/report.h"

namespace whittle::tools {
namespace {

/// The exit code of a failed gate (0 all pass, 1 internal error, 2 bad input).
constexpr int kGateFailed = 3;

struct CompareArgs {
  std::string original;
  std::string optimized;
  DatasetArgs data;
  // Runs.
  int threads = 1;
  std::string device = "cpu";
  std::string referenceDevice;  // "": the same as device
  int64_t batch = 8;
  bool perLayer = false;
  int latencyRuns = 20;
  int warmup = 3;
  bool noProgress = false;
  std::vector<std::string> metrics;
  std::string tokensInput = "input_ids";
  std::string output;
  std::vector<std::string> channelAxes;
  // Reports and gates.
  report::ReportPaths reports;
  report::Gates gates;
};

void printSummary(const report::CompareResult& r) {
  std::printf("compare: %s -> %s on %lld samples (%d thread%s)\n", r.original.path.c_str(), r.optimized.path.c_str(),
              static_cast<long long>(r.samples), r.threads, r.threads == 1 ? "" : "s");
  for (const auto& o : r.outputs) {
    std::printf("  output %s: SQNR %s, cosine %.6f, max |err| %.4g, mean |err| %.4g", o.name.c_str(),
                formatDb(o.sqnrDb, 2).c_str(), o.cosine, o.maxAbsError, o.meanAbsError);
    if (o.channels > 1) {
      std::printf(", lowest channel SQNR %s (channel %lld of %lld on axis %lld)", formatDb(o.minChannelSqnrDb, 2).c_str(),
                  static_cast<long long>(o.minChannel), static_cast<long long>(o.channels),
                  static_cast<long long>(o.channelAxis));
    }
    if (o.agreement) std::printf(", top-1 agreement %.2f %%", *o.agreement * 100);
    if (o.perplexityOriginal) {
      std::printf(", perplexity %.4f", *o.perplexityOriginal);
      if (o.perplexityOptimized) {
        std::printf(" -> %.4f (%+.2f %%)", *o.perplexityOptimized, (*o.perplexityOptimized / *o.perplexityOriginal - 1) * 100);
      }
      std::printf(" over %lld positions", static_cast<long long>(o.perplexityTokens));
    }
    if (o.hasAccuracy) {
      std::printf(", top-1 %.2f %% -> %.2f %%, top-5 %.2f %% -> %.2f %%", o.top1Original * 100, o.top1Optimized * 100,
                  o.top5Original * 100, o.top5Optimized * 100);
    }
    std::printf("\n");
  }
  if (r.originalLatency.runs > 0) {
    std::printf("  latency p50 %.3f ms -> %.3f ms (%.2fx), p99 %.3f ms -> %.3f ms\n", r.originalLatency.p50Ms,
                r.optimizedLatency.p50Ms, r.speedup(), r.originalLatency.p99Ms, r.optimizedLatency.p99Ms);
  }
  std::printf("  size %lld -> %lld bytes (%.3fx)\n", static_cast<long long>(r.original.fileBytes),
              static_cast<long long>(r.optimized.fileBytes), r.sizeRatio());
  if (r.perLayer) {
    std::printf("  per-layer: %zu matched activations", r.layers.size());
    if (auto jump = report::firstErrorJump(r.layers)) {
      std::printf(", error first jumps at '%s' (%s, %s)", r.layers[*jump].tensor.c_str(),
                  r.layers[*jump].opType.c_str(), formatDb(r.layers[*jump].sqnrDb, 2).c_str());
    }
    std::printf("\n");
  }
  for (const auto& n : r.notes) std::printf("  note: %s\n", n.c_str());
  for (const auto& g : r.gates) std::printf("  gate %s: %s\n", g.passed ? "pass" : "FAIL", g.message.c_str());
  std::printf("verdict: %s\n", report::verdict(r).c_str());
}

int runCompare(const CompareArgs& args) {
  applySpinCount(args.threads);
  auto spec = datasetSpec(args.data, "--data-options", "--data-kind");
  if (!spec.isOk()) return reportError(spec.status());
  bool toStdout =
      args.reports.json == "-" || args.reports.markdown == "-" || args.reports.html == "-" || args.reports.junit == "-";
  ProgressBar bar(!args.noProgress && !toStdout && ::isatty(STDERR_FILENO) != 0);
  report::CompareOptions options;
  options.threads = args.threads;
  auto device = deviceOption(args.device, "--device");
  if (!device.isOk()) return reportError(device.status());
  options.optimizedDevice = *device;
  options.originalDevice = *device;
  if (!args.referenceDevice.empty() && args.referenceDevice != args.device) {
    auto reference = deviceOption(args.referenceDevice, "--reference-device");
    if (!reference.isOk()) return reportError(reference.status());
    options.originalDevice = *reference;
  }
  options.batchSize = args.batch;
  options.perLayer = args.perLayer;
  options.latencyRuns = args.latencyRuns;
  options.warmupRuns = args.warmup;
  options.metrics = args.metrics;
  options.tokensInput = args.tokensInput;
  options.output = args.output;
  for (const std::string& text : args.channelAxes) {
    auto rule = eval::parseChannelAxis(text);
    if (!rule.isOk()) return reportError(rule.status());
    options.channelAxes.push_back(*rule);
  }
  options.progress = [&bar](std::string_view phase, int64_t done, int64_t total) { bar.update(phase, done, total); };
  auto result = report::compareFiles(args.original, args.optimized, *spec, options, args.gates, args.reports);
  bar.finish();
  if (!result.isOk()) return reportError(result.status());
  if (!toStdout) printSummary(*result);
  int failed = 0;
  for (const auto& g : result->gates) {
    if (g.passed) continue;
    std::fprintf(stderr, "whittle: gate failed: %s\n", g.message.c_str());
    ++failed;
  }
  return failed > 0 ? kGateFailed : 0;
}

}  // namespace

void registerCompare(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compare",
      "Compare an original and an optimized model on a data set: accuracy, output and per-layer error, latency, "
      "size; HTML/JSON/Markdown/JUnit reports and CI gates.\n"
      "Exit codes: 0 every gate passed, 3 a gate failed (named on stderr and in every report), 2 bad input "
      "(file, model, data, options), 1 internal error.");
  auto a = std::make_shared<CompareArgs>();
  cmd->add_option("original", a->original, "The original .onnx model")->required();
  cmd->add_option("optimized", a->optimized, "The optimized .onnx model (same inputs)")->required();
  cmd->add_option("--data", a->data.path,
                  "The data set: .npy, .npz, test-data folder, image folder, rawbin folder or MNIST idx "
                  "(docs/datasets.md)")
      ->required();
  cmd->add_option("--labels", a->data.labels, "A label file (default: the one beside the data, if any)");
  cmd->add_option("--data-kind", a->data.kind, "auto, npy, npz, pb, images, rawbin or mnist (default: from the path)");
  cmd->add_option("--data-options", a->data.options, "kind=,labels=,input=,shape=HxWxC,dtype=uint8|int8,limit=N");
  cmd->add_option("--preprocess", a->data.preprocess,
                  "Image preprocessing: resize=256,crop=224,rgb,scale=1/255,mean=A:B:C,std=A:B:C,layout=nchw "
                  "or a JSON file");
  cmd->add_option("--input-name", a->data.input, "The model input a single-tensor data set feeds");
  cmd->add_option("--limit", a->data.limit, "Use only the first N samples")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--allow-nonfinite", a->data.allowNonfinite,
               "Accept NaN and infinity in the data (by default a sample holding one is an error naming it)");
  addFixedInputOption(*cmd, a->data, "--data");
  cmd->add_option("--metric", a->metrics,
                  "Task metric beyond output error and classification: perplexity (causal LMs: next-token NLL from "
                  "logits [batch, seq, vocab] and the token-id input, positions 1..seq-1). Repeatable")
      ->check(CLI::IsMember({"default", "perplexity"}));
  cmd->add_option("--tokens-input", a->tokensInput, "The input holding the token ids for perplexity (default input_ids)");
  cmd->add_option("--output", a->output,
                  "The graph output that classification and task metrics read (default: every output they fit)");
  cmd->add_option("--threads", a->threads, "Threads for both models (the same for both)")->check(CLI::PositiveNumber);
  cmd->add_option("--device", a->device,
                  "cpu (default) or cuda: where both models run, or the optimized one with --reference-device "
                  "(the GPU path is unverified in this build)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--reference-device", a->referenceDevice,
                  "cpu or cuda: where the original model runs (default: --device); e.g. --device cuda "
                  "--reference-device cpu checks the GPU against the CPU runtime")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--batch", a->batch, "Samples per run when the batch dimension is free (default 8)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--per-layer", a->perLayer,
                "Also measure the SQNR of every activation present in both models (by name or through a QDQ pair)");
  cmd->add_option("--latency-runs", a->latencyRuns, "Timed runs of each model, interleaved (default 20; 0: no timing)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--warmup", a->warmup, "Untimed runs before timing (default 3)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-progress", a->noProgress, "No progress bar (it is off anyway when stderr is not a terminal)");
  cmd->add_option("--report", a->reports.html, "Write the HTML report (one self-contained file)");
  cmd->add_option("--json", a->reports.json, "Write the JSON report (docs/compare-schema.md); '-' for stdout");
  cmd->add_option("--markdown", a->reports.markdown, "Write a short Markdown report (a PR comment); '-' for stdout");
  cmd->add_option("--junit", a->reports.junit, "Write JUnit XML, one test case per gate");
  cmd->add_option("--max-accuracy-drop", a->gates.maxAccuracyDrop,
                  "Gate: top-1 accuracy may drop at most PP percentage points (needs labels)");
  cmd->add_option("--min-agreement", a->gates.minAgreement,
                  "Gate: at least PCT % of samples keep the same top-1 class");
  cmd->add_option("--min-sqnr", a->gates.minSqnr, "Gate: every output's SQNR is at least DB dB");
  cmd->add_option("--min-channel-sqnr", a->gates.minChannelSqnr,
                  "Gate: every channel of every output (along --channel-axis) has an SQNR of at least DB dB: a detector's "
                  "collapsed score channel that its box coordinates hide from the output SQNR");
  cmd->add_option("--channel-axis", a->channelAxes,
                  "Which axis holds an output's channels for the per-channel SQNR: AXIS or auto for every output, "
                  "OUTPUT=AXIS for one (repeatable; default the last axis; auto: axis 1 of [N, C, H, W], the shorter of "
                  "axes 1 and 2 of a rank-3 output)");
  cmd->add_option("--min-speedup", a->gates.minSpeedup, "Gate: original p50 / optimized p50 is at least X");
  cmd->add_option("--max-size-ratio", a->gates.maxSizeRatio, "Gate: optimized / original file size is at most R");
  cmd->callback([a] { setExitCode(runCompare(*a)); });
}

}  // namespace whittle::tools
