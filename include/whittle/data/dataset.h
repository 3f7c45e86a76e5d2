#pragma once
// Data sets for calibration and evaluation, read one batch at a time.
//
// A data set is a sequence of samples. A sample holds one tensor per model input it feeds,
// without the batch axis; a batch stacks samples along the input's batch axis (its first
// symbolic dim, else axis 0). An input may also be fixed: one tensor fed with every batch
// (a sample rate). How a stored array maps to an input (samples along a new first axis, along
// the input's batch axis, or fixed) is in docs/datasets.md, "Arrays and model inputs".
// Kinds (chosen from the path unless given):
//   npy        a .npy file: feeds the model's only input
//   npz        a .npz file: one array per input (by name; a single array feeds a single input)
//   pb         ONNX test-data folders: test_data_set_N/input_K.pb (TensorProto)
//   images     a folder of JPEG/PNG images with a PreprocessSpec
//   rawbin     a folder of raw .bin samples (MLPerf Tiny: uint8/int8 HWC) with y_labels.csv
//   mnist      MNIST idx files (t10k-images-idx3-ubyte[.gz]) with their labels
// See docs/datasets.md for the options and the rules of each kind.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/data/preprocess.h"
#include "whittle/ir/graph.h"
#include "whittle/ir/tensor.h"

namespace whittle::data {

/// A named tensor (the same type as runtime::NamedTensor).
using NamedTensor = std::pair<std::string, ir::Tensor>;

/// What the model expects on one input.
struct InputSpec {
  std::string name;
  ir::DataType dtype = ir::DataType::kUndefined;
  /// nullopt when the rank is unknown.
  std::optional<std::vector<ir::Dim>> dims;
};

/// The specs of the given graph values (Session::inputs(), or graph inputs that are not
/// initializers).
std::vector<InputSpec> inputSpecs(const std::vector<const ir::Value*>& values);
/// The feed inputs of a model: graph inputs without an initializer.
std::vector<InputSpec> inputSpecs(const ir::Graph& graph);
/// "[batch,3,224,224]" ("?" for unnamed unknown dims).
std::string dimsText(const std::vector<ir::Dim>& dims);
std::string dimsText(const std::vector<int64_t>& dims);

/// One model input as a data set feeds it.
struct SampleSlot {
  std::string input;
  ir::DataType dtype = ir::DataType::kUndefined;
  /// The dims of one sample without the batch axis (batchAxis >= 0); the whole tensor a
  /// sample feeds (batchAxis < 0); the fixed tensor's dims (fixed inputs).
  std::vector<int64_t> sampleDims;
  size_t sampleBytes = 0;
  /// The model input's axis along which a batch stacks samples: 0 for [batch,3,224,224], 1 for
  /// a recurrent state [2,batch,128]. -1: a sample is the whole input (a scalar, or a sample
  /// that fills the batch axis), so a batch holds one sample.
  int batchAxis = 0;
  /// A fixed input: this tensor is fed with every batch and holds no samples (sr = 16000).
  std::optional<ir::Tensor> fixed;

  bool isFixed() const { return fixed.has_value(); }
  /// The dims of this slot's tensor in a batch of `rows` samples.
  std::vector<int64_t> batchDims(int64_t rows) const;
};

/// Consecutive samples stacked along each input's batch axis.
struct Batch {
  /// One tensor per slot, in the data set's slot order (the model's input order); a fixed
  /// input's tensor is the same in every batch.
  std::vector<NamedTensor> inputs;
  /// One class per sample when the data set has labels; empty otherwise.
  std::vector<int64_t> labels;
  /// A name per sample: its file, or "FILE[i]" for rows of an array.
  std::vector<std::string> ids;
  /// Index of the first sample.
  int64_t first = 0;
  /// Real samples in the batch. When the model has a fixed batch size larger than this (the
  /// last batch), the tensors are padded by repeating the last sample.
  int64_t count = 0;

  bool empty() const { return count == 0; }
};

enum class DatasetKind { kAuto, kNpy, kNpz, kTensorProto, kImages, kRawBin, kMnist };

/// "npy", "npz", "pb", "images", "rawbin", "mnist" ("auto" for kAuto).
std::string_view datasetKindName(DatasetKind kind);
std::optional<DatasetKind> parseDatasetKind(std::string_view name);

/// A model input fed the same tensor with every batch, given beside the data set
/// (`--fixed-input sr=16000`): the data set then feeds the other inputs.
struct FixedInputSpec {
  std::string input;
  /// A number (the input's static shape filled with it; a scalar for a rank-0 input) or the
  /// path of a .npy, .pb or .npz file (its array named after the input, or its only array)
  /// holding the whole tensor.
  std::string value;
};

/// Reads "NAME=VALUE" (the text of one --fixed-input).
Expected<FixedInputSpec> parseFixedInput(std::string_view text);

/// Where the data is and how to read it.
struct DatasetSpec {
  std::string path;
  DatasetKind kind = DatasetKind::kAuto;
  /// For images, rawbin and mnist.
  PreprocessSpec preprocess;
  /// A label file; empty: labels.tsv / labels.txt / y_labels.csv beside the data (images,
  /// rawbin), the matching labels idx file (mnist), or none.
  std::string labels;
  /// The model input that a single-tensor data set feeds; empty: the model's only input.
  std::string input;
  /// rawbin: the sample shape in HWC order ([H,W,C] or [H,W] for one channel); empty: the
  /// model input's shape.
  std::vector<int64_t> rawShape;
  /// rawbin: the element type of the files (uint8 or int8).
  ir::DataType rawType = ir::DataType::kUint8;
  /// Use only the first `limit` samples (-1: all).
  int64_t limit = -1;
  /// Accept NaN and infinity in floating-point samples. Off: reading a sample that holds one
  /// is an error naming the file, the sample and the input (calibration and evaluation on
  /// such data give meaningless ranges and metrics).
  bool allowNonfinite = false;
  /// Inputs fed one tensor with every batch instead of from the data (a data set's array of
  /// the same name is not read). Their slots follow the data set's own.
  std::vector<FixedInputSpec> fixedInputs;
};

/// Reads "key=value" options separated by commas into `spec`: kind=, labels=, input=,
/// shape=HxWxC, dtype=uint8|int8 (rawbin), limit=N. The preprocessing spec is separate.
Status parseDatasetOptions(std::string_view text, DatasetSpec& spec);

/// A data set read one batch at a time: only the samples of the batch being read are in
/// memory, so any number of samples can be streamed.
class Dataset {
 public:
  virtual ~Dataset() = default;
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  DatasetKind kind() const { return kind_; }
  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }
  bool hasLabels() const { return hasLabels_; }
  /// The model inputs it feeds, in model order.
  const std::vector<SampleSlot>& slots() const { return slots_; }
  /// The batch size the model requires (a batch axis whose size is a number; 1 when a sample
  /// is a whole input, such as a scalar), or nullopt.
  std::optional<int64_t> fixedBatch() const { return fixedBatch_; }
  /// One line: "images '/data/val' (1000 samples, labels from labels.tsv; resize=256,...)".
  std::string describe() const;

  /// Samples [first, first + count) as one batch. With a fixed model batch size, `count` may
  /// not exceed it, and a shorter batch is padded.
  Expected<Batch> read(int64_t first, int64_t count);
  /// Sample `i` as a batch of one (padded when the model's batch size is fixed).
  Expected<Batch> get(int64_t i) { return read(i, 1); }
  /// The next `batchSize` samples from the cursor: fewer at the end, an empty batch when done.
  Expected<Batch> next(int64_t batchSize);
  void reset() { cursor_ = 0; }
  int64_t position() const { return cursor_; }

 protected:
  Dataset() = default;
  /// Writes samples [first, first + count) into dst[k] (slot k, count * sampleBytes bytes,
  /// one sample after the other; nullptr for fixed slots) and their labels into `labels`
  /// (count entries) when the data set has labels.
  virtual Status readSamples(int64_t first, int64_t count, const std::vector<std::byte*>& dst, int64_t* labels) = 0;
  /// The id of sample `i` for Batch::ids.
  virtual std::string sampleId(int64_t i) const = 0;
  /// Extra text for describe(): label source, preprocessing.
  virtual std::string details() const { return {}; }
  /// An error naming the first NaN or infinity among the `count` real samples in `samples`
  /// (per slot, as readSamples wrote them) and the fixed tensors.
  Status checkFinite(const std::vector<std::byte*>& samples, int64_t first, int64_t count) const;

  DatasetKind kind_ = DatasetKind::kAuto;
  std::string path_;
  int64_t size_ = 0;
  bool hasLabels_ = false;
  std::vector<SampleSlot> slots_;
  std::optional<int64_t> fixedBatch_;
  /// The input whose shape fixes the batch size (for errors).
  std::string fixedBatchInput_;
  bool allowNonfinite_ = false;
  /// "sr [], state [2,1,128]": the inputs --fixed-input fixes, for describe().
  std::string fixedDescription_;

 private:
  friend Expected<std::unique_ptr<Dataset>> openDataset(const DatasetSpec& spec,
                                                        const std::vector<InputSpec>& modelInputs);
  int64_t cursor_ = 0;
};

/// Opens a data set for a model with inputs `modelInputs`. The kind comes from spec.kind or
/// the path; every sample shape and dtype is checked against the inputs it feeds, and a
/// mismatch is an error that names the input and says what was expected and what was found.
Expected<std::unique_ptr<Dataset>> openDataset(const DatasetSpec& spec, const std::vector<InputSpec>& modelInputs);

/// Decides the kind of data at `path` (a file or folder) as openDataset() does.
Expected<DatasetKind> detectDatasetKind(const std::string& path);

/// Reads the tensors of one feed file, for `whittle run`: a .npy (one tensor, unnamed), a
/// .npz (its arrays, by name) or a .pb TensorProto (named as the proto names it, or unnamed).
Expected<std::vector<NamedTensor>> readTensorsFromFile(const std::string& path);

}  // namespace whittle::data
