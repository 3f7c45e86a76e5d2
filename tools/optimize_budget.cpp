// whittle optimize's accuracy budget: flags onto a tune::TuneRequest, and the result printed.
#include "optimize_budget.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace whittle::tools {

void addBudgetOptions(CLI::App& cmd, BudgetArgs& args) {
  const std::string group = "Accuracy budget";
  cmd.add_option("--max-accuracy-drop", args.budget.maxAccuracyDropPp,
                 "With --quantize int8 and --eval: top-1 may drop at most PP percentage points below the float "
                 "model (needs labels); ranges are tuned and the most harmful layers kept float until it holds")
      ->group(group);
  cmd.add_option("--min-agreement", args.budget.minAgreementPct,
                 "Budget: top-1 agreement with the float model at least PCT percent (no labels needed)")
      ->group(group);
  cmd.add_option("--min-sqnr", args.budget.minSqnrDb,
                 "Budget: SQNR of every output and of every channel of it at least DB dB (detectors, regressors, "
                 "embeddings); the channels lie on each output's last axis unless --channel-axis says otherwise")
      ->group(group);
  cmd.add_option("--min-score-f1", args.budget.minScoreF1Pct,
                 "Budget for detectors: the F1 of the quantized model's thresholded scores against the float model's "
                 "at least PCT percent (a score above the threshold is a detection; needs --scores)")
      ->group(group);
  cmd.add_option("--min-box-f1", args.budget.minBoxF1Pct,
                 "Budget for detectors with their own post-processing: the F1 of the quantized model's decoded boxes "
                 "against the float model's at least PCT percent (IoU >= 0.5, greedy by score, per class when the "
                 "decoder gives classes; needs --detections)")
      ->group(group);
  cmd.add_option("--detections", args.budget.detections,
                 "DECODER.onnx: the detector's decoder as an ONNX graph, run on whittle's runtime on the float and the "
                 "quantized outputs of each --eval sample. Its inputs are model outputs (matched by name; one sample "
                 "each, [1, ...]); its outputs, in order: boxes [N, 4] (x1, y1, x2, y2), scores [N] and optionally "
                 "classes [N]. Thresholds, NMS (NonMaxSuppression), anchors: whatever the detector's project does "
                 "(see benchmarks/decoder_graphs.py)")
      ->group(group);
  cmd.add_option("--scores", args.scores,
                 "OUTPUT[:axis=A]:CHANNELS:THRESHOLD[:peaks[=K[/R]]]: the scores --min-score-f1 checks, channels C, "
                 "B-E or * along axis A of the output (default -1, the last), e.g. scores:1:0.7, heatmap:axis=1:0:0.2 "
                 "for [N, 1, H, W], output0:axis=1:4-21:0.25 for YOLOv8's [1, 4+C, A]; repeat it for scores in "
                 "several outputs (one F1 over all of them). With peaks (a CenterNet-style heatmap: the map on the "
                 "last two axes) a detection is a cell above the threshold that is also the largest of its K x K "
                 "neighbourhood (K odd, default 3), found again when the int8 peak is within R cells (default K/2), "
                 "e.g. heatmap:axis=1:0:0.2:peaks; without, every score above the threshold counts")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group(group);
  cmd.add_option("--channel-axis", args.channelAxes,
                 "The axis of the per-channel SQNR (--min-sqnr, the ranking): AXIS or auto for every output, "
                 "OUTPUT=AXIS or OUTPUT=auto for one (repeatable; negative from the end). Default: the last axis of "
                 "every output. auto: axis 1 of [N, C, H, W] (rank >= 4), of a rank-3 output the shorter of axes 1 "
                 "and 2, else the last")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group(group);
  cmd.add_option("--time-budget", args.timeBudget,
                 "Stop the search after this long (90s, 10m, 1h; default 10m); the best model so far is written")
      ->group(group);
  cmd.add_flag("--sensitivity-only", args.sensitivityOnly,
               "Rank the quantized nodes by their share of the output error and stop (no model written)")
      ->group(group);
  cmd.add_option("--trial-log", args.trialLog, "Write every trial of the search as JSON (schema whittle.tune/1)")
      ->group(group);
  cmd.add_option("--shard", args.shard,
                 "I/N: with --sensitivity-only --trial-log FILE, measure only slice I (0..N-1) of the nodes, so that N "
                 "processes (an array job) share the analysis; then --merge-shards their logs")
      ->group(group);
  cmd.add_option("--merge-shards", args.mergeShards,
                 "Trial logs of --shard runs (comma-separated): their measured gains are used instead of measuring "
                 "again, with a budget (the whole search) or --sensitivity-only (the merged ranking)")
      ->delimiter(',')
      ->group(group);
  cmd.add_option("--fallback-cost", args.fallbackCost,
                 "What orders the float fallback by speed: 'measured' (default: a per-node profile of the float and "
                 "the quantized model) or 'estimate' (from the graph; does not depend on the machine's timing)")
      ->check(CLI::IsMember({"measured", "estimate"}))
      ->group(group);
  cmd.add_option("--min-speedup", args.minSpeedup,
                 "A speed floor against the float model (e.g. 1.5), by the measured per-node profile: float-fallback "
                 "candidates that would bring the estimated speedup under it are not tried. Under an accuracy or "
                 "agreement budget the float nodes also stay within 40 % of the quantized model's profiled time")
      ->check(CLI::PositiveNumber)
      ->group(group);
  cmd.add_option("--eval-workers", args.evalWorkers,
                 "Sessions that measure each trial side by side on the evaluation data, each on --calib-threads "
                 "threads (default 0: one per core); the metrics do not depend on it")
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  cmd.add_option("--eval-cache", args.evalCacheMib,
                 "MiB of evaluation data kept in memory between trials (default 1024): the float model's outputs up "
                 "to a quarter of it (the rest in a temporary file), the decoded inputs when they all fit in the rest "
                 "(else each trial decodes them again); memory then does not grow with the number of samples")
      ->check(CLI::PositiveNumber)
      ->group(group);
  cmd.add_option("--ranking-samples", args.rankingSamples,
                 "Evaluation samples that rank layers and choose ranges (default 100); the budget is checked on all")
      ->check(CLI::PositiveNumber)
      ->group(group);
}

Status runBudget(const BudgetArgs& args, OptimizeRequest optimizeRequest, bool evalGiven, bool json) {
  tune::TuneRequest request;
  request.optimize = std::move(optimizeRequest);
  request.eval = request.optimize.report.eval;
  if (!evalGiven) request.eval.reset();  // the budget is checked on --eval data only
  request.budget = args.budget;
  for (const std::string& text : args.scores) {
    WH_ASSIGN_OR_RETURN(tune::ScoreSpec spec, tune::parseScoreSpec(text));
    request.budget.scores.push_back(std::move(spec));
  }
  for (const std::string& text : args.channelAxes) {
    WH_ASSIGN_OR_RETURN(tune::ChannelAxisRule rule, tune::parseChannelAxis(text));
    request.budget.channelAxes.push_back(std::move(rule));
  }
  if (!args.timeBudget.empty()) {
    WH_ASSIGN_OR_RETURN(request.timeBudgetSeconds, tune::parseDuration(args.timeBudget));
  }
  request.sensitivityOnly = args.sensitivityOnly;
  request.trialLogPath = args.trialLog;
  request.rankingSamples = args.rankingSamples;
  request.measureCost = args.fallbackCost != "estimate";
  request.minSpeedup = args.minSpeedup;
  if (!args.shard.empty()) {
    WH_ASSIGN_OR_RETURN(auto shard, tune::parseShard(args.shard));
    request.shardIndex = shard.first;
    request.shardCount = shard.second;
  }
  request.mergeLogs = args.mergeShards;
  const int threads = request.optimize.calibration.threads;
  request.threads = threads > 0 ? threads : 1;
  request.workers = args.evalWorkers;
  request.evalCacheBytes = args.evalCacheMib << 20;
  if (!json) request.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto result = tune::tune(request);
  if (!result.isOk()) return result.status();
  if (json) {
    std::cout << tune::tuneResultJson(request, *result).dump(2) << "\n";
  } else {
    std::fputs(tune::tuneResultText(request, *result).c_str(), stdout);
  }
  if (!request.sensitivityOnly && !result->met) {
    std::fprintf(stderr, "error: budget not met: %s; wrote the best model found to %s\n", result->shortfall.c_str(),
                 request.optimize.outputPath.c_str());
    setExitCode(3);
  }
  return Status::ok();
}

}  // namespace whittle::tools
