#pragma once
// The optimize driver: what `whittle optimize` does, as one library call that a tuner, a test
// or a language binding can make. A request names the model, the pipeline (level, extra
// passes, a recipe, quantization, half-precision conversion), the calibration data, where to
// write and which report to make; the result holds the optimized graph, per-pass statistics,
// the notes the passes left and the comparison report. The command line only maps its flags
// onto a request and prints the result.
//
//   OptimizeRequest request;
//   request.inputPath = "model.onnx";
//   request.outputPath = "model.int8.onnx";
//   request.quantize.mode = QuantizeMode::kInt8;
//   request.calibration.data = data::DatasetSpec{.path = "calib/"};
//   auto result = optimize(request);

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <nlohmann/json.hpp>

#include "whittle/common/status.h"
#include "whittle/data/dataset.h"
#include "whittle/ir/graph.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/passes/registry.h"
#include "whittle/quant/calibration.h"
#include "whittle/report/compare.h"

namespace whittle {

enum class QuantizeMode {
  kNone,
  kInt8,     ///< quantize-int8: static, calibrated activations
  kDynamic,  ///< quantize-dynamic: weights only, activations quantized at run time
};

/// The quantization step appended after the level's passes. Fields left at their defaults
/// leave the pass's own defaults in place (declared once, in passes/pass_options.h); the
/// values are checked where every pass option is (passes::parseOptions).
struct QuantizeRequest {
  QuantizeMode mode = QuantizeMode::kNone;
  std::string method;          ///< int8: a quantize-int8 method ("" = the pass default)
  bool perTensor = false;      ///< per-tensor weights instead of per-channel
  std::string format;          ///< int8: qdq or qoperator ("" = the pass default)
  std::string activationType;  ///< int8: uint8 or int8 ("" = the pass default)
  bool reduceRange = false;
  std::vector<std::string> opTypes;
  std::vector<std::string> excludeNodes;
  std::vector<std::string> excludeOpTypes;
};

/// Half-precision conversion appended last.
struct ConvertRequest {
  std::string to;         ///< "", "fp16" or "bf16"
  double tolerance = 0;  ///< > 0: automatic mixed precision measured on calibration samples
};

/// Where calibration statistics come from: a data set, a saved table, or both (the table
/// first; tensors it lacks are calibrated on the data).
struct CalibrationRequest {
  std::optional<data::DatasetSpec> data;
  std::string loadTable;  ///< a table written by saveCalibrationTable()
  std::string saveTable;  ///< write the table used to this path
  /// Threads for calibration: 0 picks by the work (quant::CalibrationOptions::threads).
  int threads = 0;
  std::function<void(int64_t done, int64_t total)> progress;
  /// States carried from one calibration sample to the next (quant::CalibrationOptions::carry).
  std::vector<quant::CarriedState> carry;

  bool wanted() const { return data.has_value() || !loadTable.empty(); }
};

/// A comparison of the written model with its input, as `whittle compare` makes it.
struct ReportRequest {
  report::ReportPaths paths;
  /// The data to compare on; empty: the calibration data.
  std::optional<data::DatasetSpec> eval;
  /// Threads for both models (at least 1).
  int threads = 1;
  report::ProgressFn progress;

  bool wanted() const {
    return !paths.html.empty() || !paths.json.empty() || !paths.markdown.empty() || !paths.junit.empty();
  }
};

struct OptimizeRequest {
  std::string inputPath;
  /// Where to write the model; empty: nothing is written (the result holds the model).
  std::string outputPath;
  bool inPlace = false;  ///< allow outputPath to be the input
  bool externalData = false;

  /// -O level: 0 nothing, 1 exact clean-up, 2 exact fusions.
  int level = 2;
  /// Keep weights that old exporters also list as graph inputs (initializers-to-constants{keep}).
  bool keepInitializerInputs = false;
  std::string passes;  ///< pipeline text run after the level's passes
  std::string recipe;  ///< a recipe file run after `passes`
  QuantizeRequest quantize;
  ConvertRequest convert;

  CalibrationRequest calibration;
  passes::PipelineRunOptions run;
  ReportRequest report;
  /// A fallback that costs accuracy (quantize-int8 going per tensor because the model cannot
  /// be converted to opset 13) is an error instead of a warning.
  bool strict = false;
};

struct OptimizeResult {
  ir::Model model;
  /// The pipeline as it ran, in canonical text (also stored in the model's metadata).
  std::string pipeline;
  std::vector<passes::PassStats> passes;
  /// What the passes want the user to know (a skipped node, an upgrade), one sentence each.
  std::vector<std::string> notes;
  /// Fallbacks that cost accuracy or speed, one sentence each (errors under `strict`); also in
  /// the report's notes and the JSON summary.
  std::vector<std::string> warnings;
  /// Present when the request asked for a report.
  std::optional<report::CompareResult> report;
};

/// The pipeline a request runs: the level's passes, then `passes`, the recipe, quantization
/// and conversion. Bad pass names, options and combinations are errors naming the flag.
Expected<std::vector<passes::PipelineEntry>> buildPipeline(const OptimizeRequest& request);

/// The quantize-int8 / quantize-dynamic entry of a quantization request: only the options the
/// request sets, so that the pass's declared defaults stay the single source of defaults.
Expected<passes::PipelineEntry> quantizeEntry(const QuantizeRequest& request);

/// Loads the model, runs the pipeline (calibrating on demand), verifies the result, stamps
/// the pipeline into the model's metadata, writes it atomically (when outputPath is set) and
/// compares it with the input (when a report is asked for). The input file is never modified;
/// on error nothing is written.
Expected<OptimizeResult> optimize(const OptimizeRequest& request);

/// The machine-readable summary of a run (`whittle optimize --json`, schema
/// "whittle.optimize/1"): input, output, pipeline, per-pass statistics, notes and warnings.
/// What `whittle optimize` prints: per-pass statistics as a table, the notes, the written path,
/// and a one-line summary of the report when one was made (warnings are the caller's: stderr).
std::string optimizeResultText(const OptimizeRequest& request, const OptimizeResult& result);

nlohmann::json optimizeResultJson(const OptimizeRequest& request, const OptimizeResult& result);

}  // namespace whittle
