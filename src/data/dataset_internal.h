#pragma once
// Shared pieces of the data-set kinds (src/data/dataset_*.cpp); not a public header.

#include <memory>
#include <string>
#include <vector>

#include "whittle/data/dataset.h"
#include "whittle/data/labels.h"

namespace whittle::data::detail {

/// The model input's dims without the batch axis (-1 for unknown dims); nullopt when the
/// rank is unknown.
std::optional<std::vector<int64_t>> modelSampleDims(const InputSpec& input);

/// Checks that samples of `dtype` and `sampleDims` from `source` fit `input`, and returns
/// the slot. The error names the input and gives the expected and found shape or type.
Expected<SampleSlot> fitSlot(const InputSpec& input, ir::DataType dtype, const std::vector<int64_t>& sampleDims,
                             const std::string& source);

/// The input that a single-tensor data set feeds: `wanted` by name, or the only input.
Expected<const InputSpec*> singleInput(const std::vector<InputSpec>& inputs, const std::string& wanted,
                                       const std::string& source);

/// The slot of a --fixed-input: its number fills the input's static shape, or its file holds the
/// whole tensor (type and known dims checked against `input`).
Expected<SampleSlot> fixedInputSlot(const FixedInputSpec& spec, const InputSpec& input);

/// Splits the model's inputs into those the data set feeds (`fed`, in model order) and the
/// slots of `fixedInputs` (in model order). Errors: a name that is no model input, a name
/// given twice, a value that does not fit, every input fixed.
Status splitFixedInputs(const std::vector<FixedInputSpec>& fixedInputs, const std::vector<InputSpec>& modelInputs,
                        std::vector<InputSpec>& fed, std::vector<SampleSlot>& fixedSlots);

/// The batch size the model requires and the input that fixes it: 1 when a slot's sample is
/// a whole input (batchAxis < 0) or every slot is fixed, else the size of the first slot's
/// batch axis that is a number.
std::optional<std::pair<int64_t, std::string>> fixedBatchOf(const std::vector<InputSpec>& inputs,
                                                            const std::vector<SampleSlot>& slots);

/// How a stored array (a .npy, a .npz member, a TensorProto) of `shape` feeds `input`
/// (docs/datasets.md, "Arrays and model inputs").
struct ArrayLayout {
  /// The slot it feeds; slot.fixed is left empty for the caller to fill when `fixed`.
  SampleSlot slot;
  /// The same tensor with every sample (the array is the input's whole static shape, or a
  /// 0-d array for a scalar input).
  bool fixed = false;
  /// The array's axis that indexes samples: 0 for samples stacked along a new first axis,
  /// else the input's batch axis.
  int sampleAxis = 0;
  /// The number of samples (0 when fixed).
  int64_t count = 0;
  /// The input's batch axis (-1: none, or it cannot be told).
  int inputBatchAxis = -1;
};

/// Decides how an array of `dtype` and `shape` from `source` feeds `input`. An array that fits
/// no rule is an error naming the input, the source and its shape, and listing the shapes
/// that would be accepted.
Expected<ArrayLayout> arrayLayout(const InputSpec& input, ir::DataType dtype, const std::vector<int64_t>& shape,
                                  const std::string& source);

/// Copies samples [first, first + count) of an array of `shape` (C order, `elementBytes` per
/// element) whose samples lie along `axis` into `dst`, one sample after the other.
void copySamples(const std::byte* src, const std::vector<int64_t>& shape, int axis, size_t elementBytes, int64_t first,
                 int64_t count, std::byte* dst);

/// Labels of an array-like data set from spec.labels: a list in sample order (file names,
/// if any, are ignored) of at least `count` entries.
Expected<std::vector<int64_t>> labelsInOrder(const std::string& labelPath, int64_t count, const std::string& source);

/// Lower-case extension of a path including the dot (".npy"), or "".
std::string extensionOf(const std::string& path);
bool isImageFile(const std::string& path);

Expected<std::unique_ptr<Dataset>> openNpy(const DatasetSpec& spec, const std::vector<InputSpec>& inputs);
Expected<std::unique_ptr<Dataset>> openNpz(const DatasetSpec& spec, const std::vector<InputSpec>& inputs);
Expected<std::unique_ptr<Dataset>> openTensorProto(const DatasetSpec& spec, const std::vector<InputSpec>& inputs);
Expected<std::unique_ptr<Dataset>> openImages(const DatasetSpec& spec, const std::vector<InputSpec>& inputs);
Expected<std::unique_ptr<Dataset>> openRawBin(const DatasetSpec& spec, const std::vector<InputSpec>& inputs);
Expected<std::unique_ptr<Dataset>> openMnist(const DatasetSpec& spec, const std::vector<InputSpec>& inputs);

}  // namespace whittle::data::detail
