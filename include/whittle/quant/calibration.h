#pragma once
// Calibration: observe the float values of the tensors to be quantized over a data set and
// choose a range [lo, hi] for each (Glow's split: profile first, then choose parameters).
//
// An Observer keeps a tensor's running min and max and a histogram of its values over a
// symmetric window [-R, R]. When a batch holds values beyond R, the window doubles until it
// covers them and the old bins are merged into the new ones, as TensorRT and ONNX Runtime
// do, so memory stays one histogram per tensor whatever the number of samples.
//
// A range is chosen from an observation by one of:
//   minmax      the observed min and max
//   percentile  the p-th and (100-p)-th percentiles (p = 99.99 by default)
//   entropy     TensorRT's KL-divergence threshold on |x| (128 quantized bins)
//   mse         the clipping of [min, max] that minimizes the expected quantization error
// Observations, not ranges, are what a CalibrationTable stores, so one calibration run
// serves every method (docs/calibration-schema.md).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/ir/data_type.h"
#include "whittle/ir/tensor.h"

namespace whittle::ir {
struct Model;
}
namespace whittle::data {
class Dataset;
}

namespace whittle::quant {

enum class CalibrationMethod { kMinMax, kPercentile, kEntropy, kMse };

/// "minmax", "percentile", "entropy", "mse".
std::string_view calibrationMethodName(CalibrationMethod method);
std::optional<CalibrationMethod> parseCalibrationMethod(std::string_view name);

/// Bins of an observer's histogram.
inline constexpr int kHistogramBins = 2048;

/// What was seen of one tensor.
struct Observation {
  float min = 0;
  float max = 0;
  /// Half-width R of the histogram window [-R, R]; 0 until a nonzero value was seen.
  float histRange = 0;
  /// kHistogramBins counts over [-R, R] (empty until a nonzero value was seen).
  std::vector<uint64_t> counts;
  int64_t samples = 0;  ///< values observed
  bool operator==(const Observation&) const = default;
};

/// Accumulates the values of one tensor.
class Observer {
 public:
  void observe(std::span<const float> values);
  const Observation& observation() const { return obs_; }

 private:
  void grow(float absMax);
  Observation obs_;
  bool seen_ = false;
};

/// A chosen range.
struct Range {
  float lo = 0;
  float hi = 0;
  bool operator==(const Range&) const = default;
};

/// Chooses [lo, hi] from an observation. `percentile` is used by kPercentile; for kEntropy
/// and kMse, `dtype` (uint8 or int8 activations) decides the number of levels the range is
/// cut into. The result lies within [min, max].
Range chooseRange(const Observation& obs, CalibrationMethod method, double percentile = 99.99,
                  ir::DataType dtype = ir::DataType::kUint8);

/// Observations per tensor, with where they came from; saved and loaded as JSON.
struct CalibrationTable {
  std::string model;    ///< the model file, for the record
  std::string dataset;  ///< Dataset::describe() of the data
  int64_t samples = 0;  ///< samples the observations cover
  std::map<std::string, Observation> tensors;
  /// Ranges chosen when the table was saved, for readers that do not re-choose.
  std::string savedMethod = "minmax";
  double savedPercentile = 99.99;
};

/// The schema name written in "schema" (docs/calibration-schema.md).
inline constexpr std::string_view kCalibrationSchema = "whittle.calibration/1";

/// Writes the table as JSON (atomically). Each tensor's entry carries the range of
/// `method` as well as the observation.
Status saveCalibrationTable(const CalibrationTable& table, const std::string& path,
                            CalibrationMethod method = CalibrationMethod::kMinMax, double percentile = 99.99);
/// Reads a table written by saveCalibrationTable(); errors name the file and the entry.
Expected<CalibrationTable> loadCalibrationTable(const std::string& path);

/// With CalibrationOptions::threads == 0, a model whose sample runs faster than this on one
/// thread is calibrated on one thread: more threads cost more than they save there.
inline constexpr double kAutoThreadsMinSampleMs = 5.0;

/// A recurrent model's state carried from one run to the next: run k+1 feeds input `input`
/// the value that run k gave for `output` (the first run takes it from the data).
struct CarriedState {
  std::string output;
  std::string input;
};

/// Reads "OUTPUT=INPUT" (the text of one --carry-state).
Expected<CarriedState> parseCarriedState(std::string_view text);

/// How calibrate() runs.
struct CalibrationOptions {
  int64_t batchSize = 1;
  /// Samples to use (-1: the whole data set).
  int64_t limit = -1;
  /// Threads for the runtime and the observers; 0: chosen by the work. Auto starts on one
  /// thread, times a sample, and moves to every core only when the model is heavy enough
  /// (at least kAutoThreadsMinSampleMs a sample) and the timed sample is faster there.
  int threads = 1;
  /// Called after each batch with (samples done, samples in all); may be empty.
  std::function<void(int64_t, int64_t)> progress;
  /// States carried between runs, for models that take their previous state as an input
  /// (a voice-activity detector's LSTM state). Non-empty: the samples run one at a time, in
  /// order, as consecutive steps of one stream.
  std::vector<CarriedState> carry;
};

/// Runs `model` (float) over `data` with the runtime, one batch at a time, and observes
/// `tensors`. Memory is the model, one batch and one histogram per tensor. A tensor the
/// model does not have is an error naming it.
Expected<CalibrationTable> calibrate(const ir::Model& model, data::Dataset& data, const std::vector<std::string>& tensors,
                                     const CalibrationOptions& options = {});

/// A pluggable streaming statistic of one tensor, beside the histograms: the calibration run
/// hands it every batch's value of its tensor and forgets the batch, so memory stays what the
/// collector keeps (quant/collectors.h: per-channel mean |x| and X^T X for GPTQ and AWQ).
class TensorCollector {
 public:
  virtual ~TensorCollector() = default;
  /// One batch's value of the tensor (float32); `samples` is the number of real rows along its
  /// first axis (a padded last batch repeats its last sample: only the first `samples` count;
  /// all of them when a sample is a whole fixed-batch input).
  virtual Status collect(const std::string& name, const ir::Tensor& value, int64_t samples) = 0;
};

/// Runs `model` (float) over `data` as calibrate() does and feeds each batch's value of every
/// tensor named in `collectors` to its collector (different tensors in parallel). Returns the
/// number of samples run. A tensor the model does not have is an error naming it.
Expected<int64_t> collectStatistics(const ir::Model& model, data::Dataset& data,
                                    const std::map<std::string, TensorCollector*>& collectors,
                                    const CalibrationOptions& options = {});

/// Where the quantize passes get ranges from (PassContext::calibration). The command line
/// implements it with a data set (calibrating the model as the pass sees it) or a loaded
/// table.
class CalibrationProvider {
 public:
  virtual ~CalibrationProvider() = default;
  /// Observations of `tensors` of `model` (the model as the pass sees it). Every requested
  /// tensor must be in the returned table.
  virtual Expected<CalibrationTable> observe(const ir::Model& model, const std::vector<std::string>& tensors) = 0;
  /// Up to `count` calibration samples as model feeds (one sample per feed set), for passes
  /// that measure outputs themselves (convert-fp16's tolerance). An error when there is no
  /// data set behind the provider.
  virtual Expected<std::vector<std::vector<std::pair<std::string, ir::Tensor>>>> sampleFeeds(int64_t count) {
    (void)count;
    return invalidInput("this calibration source has no samples (a data set is needed: --calib DATA)");
  }
  /// Runs `model` over the calibration data and feeds `collectors` (collectStatistics); returns
  /// the samples run. An error when there is no data set behind the provider.
  virtual Expected<int64_t> collect(const ir::Model& model, const std::map<std::string, TensorCollector*>& collectors) {
    (void)model;
    (void)collectors;
    return invalidInput("this calibration source has no samples (a data set is needed: --calib DATA)");
  }
};

/// The provider behind `whittle optimize --calib/--load-calib`: tensors found in a loaded
/// table are taken from it; the rest are observed by calibrate() over the data set (an error
/// naming them when there is no data set). Everything observed or loaded is kept for
/// --save-calib.
class StandardCalibrationProvider final : public CalibrationProvider {
 public:
  /// `loaded` may be empty, `data` null (not both for useful work); `data` must outlive this.
  StandardCalibrationProvider(std::optional<CalibrationTable> loaded, data::Dataset* data, CalibrationOptions options);
  Expected<CalibrationTable> observe(const ir::Model& model, const std::vector<std::string>& tensors) override;
  Expected<std::vector<std::vector<std::pair<std::string, ir::Tensor>>>> sampleFeeds(int64_t count) override;
  Expected<int64_t> collect(const ir::Model& model, const std::map<std::string, TensorCollector*>& collectors) override;
  /// The loaded observations plus every observation made so far.
  const CalibrationTable& table() const { return table_; }
  /// Whether calibrate() ran (false when the loaded table had every tensor).
  bool ranCalibration() const { return ran_; }

 private:
  CalibrationTable table_;
  data::Dataset* data_;
  CalibrationOptions options_;
  bool ran_ = false;
};

}  // namespace whittle::quant
