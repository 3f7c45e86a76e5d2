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

/// The model's fixed batch size: the first dim of the first input when it is a number.
std::optional<int64_t> fixedBatchOf(const std::vector<InputSpec>& inputs, const std::vector<SampleSlot>& slots);

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
