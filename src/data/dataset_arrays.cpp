// Data sets of stored tensors: .npy, .npz and ONNX test-data .pb folders.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "data/dataset_internal.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/tensor_proto.h"

namespace whittle::data::detail {
namespace {

namespace fs = std::filesystem;

std::vector<int64_t> tail(const std::vector<int64_t>& dims) { return {dims.begin() + 1, dims.end()}; }

// ---------------------------------------------------------------- .npy / .npz

class ArrayDataset final : public Dataset {
 public:
  ArrayDataset(DatasetKind kind, std::string path, std::vector<std::unique_ptr<NpyArrayReader>> readers,
               std::vector<SampleSlot> slots, int64_t size, std::vector<int64_t> labels, std::string labelSource,
               const std::vector<InputSpec>& inputs)
      : readers_(std::move(readers)), labels_(std::move(labels)), labelSource_(std::move(labelSource)) {
    kind_ = kind;
    path_ = std::move(path);
    slots_ = std::move(slots);
    size_ = size;
    hasLabels_ = !labels_.empty();
    fixedBatch_ = fixedBatchOf(inputs, slots_);
  }

 protected:
  Status readSamples(int64_t first, int64_t count, const std::vector<std::byte*>& dst, int64_t* labels) override {
    for (size_t k = 0; k < readers_.size(); ++k) WH_RETURN_IF_ERROR(readers_[k]->readRows(first, count, dst[k]));
    if (labels != nullptr) std::copy_n(labels_.begin() + first, count, labels);
    return Status::ok();
  }
  std::string sampleId(int64_t i) const override { return readers_.front()->label() + "[" + std::to_string(i) + "]"; }
  std::string details() const override { return labelSource_.empty() ? "" : "labels from " + labelSource_; }

 private:
  std::vector<std::unique_ptr<NpyArrayReader>> readers_;
  std::vector<int64_t> labels_;
  std::string labelSource_;
};

Expected<SampleSlot> slotForArray(const InputSpec& input, const NpyArrayReader& reader) {
  if (reader.header().shape.empty()) {
    return invalidInput("input '" + input.name + "': " + reader.label() +
                        " is a 0-dimensional array; a data set needs samples along axis 0");
  }
  return fitSlot(input, reader.header().dtype, tail(reader.header().shape), reader.label());
}

int64_t limited(int64_t size, int64_t limit) { return limit >= 0 ? std::min(size, limit) : size; }

// ---------------------------------------------------------------- .pb folders

class TensorProtoDataset final : public Dataset {
 public:
  TensorProtoDataset(std::string path, std::vector<std::vector<std::string>> files, std::vector<int> slotOfFile,
                     std::vector<SampleSlot> slots, int64_t rowsPerSet, int64_t size, std::vector<int64_t> labels,
                     const std::vector<InputSpec>& inputs)
      : files_(std::move(files)), slotOfFile_(std::move(slotOfFile)), rowsPerSet_(rowsPerSet), labels_(std::move(labels)) {
    kind_ = DatasetKind::kTensorProto;
    path_ = std::move(path);
    slots_ = std::move(slots);
    size_ = size;
    hasLabels_ = !labels_.empty();
    fixedBatch_ = fixedBatchOf(inputs, slots_);
  }

 protected:
  Status readSamples(int64_t first, int64_t count, const std::vector<std::byte*>& dst, int64_t* labels) override {
    for (int64_t i = first; i < first + count; ++i) {
      int64_t set = i / rowsPerSet_, row = i % rowsPerSet_;
      WH_RETURN_IF_ERROR(load(set));
      for (size_t f = 0; f < loaded_.size(); ++f) {
        auto k = static_cast<size_t>(slotOfFile_[f]);
        size_t bytes = slots_[k].sampleBytes;
        std::memcpy(dst[k] + static_cast<size_t>(i - first) * bytes, loaded_[f].rawData() + static_cast<size_t>(row) * bytes,
                    bytes);
      }
    }
    if (labels != nullptr) std::copy_n(labels_.begin() + first, count, labels);
    return Status::ok();
  }
  std::string sampleId(int64_t i) const override {
    std::string set = fs::path(files_[static_cast<size_t>(i / rowsPerSet_)].front()).parent_path().filename().string();
    return rowsPerSet_ == 1 ? set : set + "[" + std::to_string(i % rowsPerSet_) + "]";
  }
  std::string details() const override {
    return std::to_string(files_.size()) + " test_data_set folder(s), " + std::to_string(rowsPerSet_) + " sample(s) each";
  }

 private:
  // Reads set `set` (one tensor per input file) unless it is the one already held.
  Status load(int64_t set) {
    if (set == loadedSet_) return Status::ok();
    loadedSet_ = -1;
    loaded_.clear();
    const auto& files = files_[static_cast<size_t>(set)];
    for (size_t f = 0; f < files.size(); ++f) {
      WH_ASSIGN_OR_RETURN(ir::Tensor t, onnx_io::readTensorFile(files[f]));
      const SampleSlot& slot = slots_[static_cast<size_t>(slotOfFile_[f])];
      std::vector<int64_t> want{rowsPerSet_};
      want.insert(want.end(), slot.sampleDims.begin(), slot.sampleDims.end());
      if (t.dims() != want || t.dtype() != slot.dtype) {
        return invalidInput("input '" + slot.input + "': " + files[f] + " holds " +
                            std::string(ir::dataTypeName(t.dtype())) + " " + dimsText(t.dims()) +
                            ", but the first test_data_set has " + std::string(ir::dataTypeName(slot.dtype)) + " " +
                            dimsText(want));
      }
      loaded_.push_back(std::move(t));
    }
    loadedSet_ = set;
    return Status::ok();
  }

  std::vector<std::vector<std::string>> files_;  // per set, per input file
  std::vector<int> slotOfFile_;                  // input file index → slot
  int64_t rowsPerSet_;
  std::vector<int64_t> labels_;
  int64_t loadedSet_ = -1;
  std::vector<ir::Tensor> loaded_;
};

// The number in "test_data_set_12" or "input_3.pb" (-1 when there is none), for natural order.
int64_t trailingNumber(const std::string& name) {
  std::string stem = fs::path(name).stem().string();
  size_t end = stem.size(), start = end;
  while (start > 0 && std::isdigit(static_cast<unsigned char>(stem[start - 1]))) --start;
  if (start == end) return -1;
  return std::stoll(stem.substr(start, std::min<size_t>(end - start, 15)));
}

std::vector<std::string> inputFilesOf(const std::string& folder) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("input_", 0) == 0 && e.path().extension() == ".pb") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end(),
            [](const std::string& a, const std::string& b) { return trailingNumber(a) < trailingNumber(b); });
  return files;
}

}  // namespace

Expected<std::unique_ptr<Dataset>> openNpy(const DatasetSpec& spec, const std::vector<InputSpec>& inputs) {
  WH_ASSIGN_OR_RETURN(const InputSpec* input, singleInput(inputs, spec.input, spec.path));
  WH_ASSIGN_OR_RETURN(auto reader, NpyArrayReader::open(spec.path));
  WH_ASSIGN_OR_RETURN(SampleSlot slot, slotForArray(*input, *reader));
  int64_t size = limited(reader->rows(), spec.limit);
  std::vector<int64_t> labels;
  if (!spec.labels.empty()) {
    WH_ASSIGN_OR_RETURN(labels, labelsInOrder(spec.labels, size, spec.path));
  }
  std::vector<std::unique_ptr<NpyArrayReader>> readers;
  readers.push_back(std::move(reader));
  return std::unique_ptr<Dataset>(new ArrayDataset(DatasetKind::kNpy, spec.path, std::move(readers), {std::move(slot)},
                                                   size, std::move(labels), spec.labels, inputs));
}

Expected<std::unique_ptr<Dataset>> openNpz(const DatasetSpec& spec, const std::vector<InputSpec>& inputs) {
  WH_ASSIGN_OR_RETURN(NpzArchive archive, NpzArchive::open(spec.path));
  std::string names;
  for (const auto& n : archive.names()) names += (names.empty() ? "" : ", ") + n;
  std::vector<const InputSpec*> fed;
  if (!spec.input.empty()) {
    WH_ASSIGN_OR_RETURN(const InputSpec* one, singleInput(inputs, spec.input, spec.path));
    fed.push_back(one);
  } else {
    for (const auto& in : inputs) fed.push_back(&in);
  }
  if (fed.empty()) return invalidInput(spec.path + ": the model has no inputs to feed");
  std::vector<std::string> dataArrays;
  for (const auto& n : archive.names()) {
    if (n != "labels") dataArrays.push_back(n);
  }
  std::vector<std::unique_ptr<NpyArrayReader>> readers;
  std::vector<SampleSlot> slots;
  for (const InputSpec* in : fed) {
    std::string array;
    if (archive.contains(in->name)) {
      array = in->name;
    } else if (fed.size() == 1 && dataArrays.size() == 1) {
      array = dataArrays.front();
    } else {
      return invalidInput("input '" + in->name + "': " + spec.path + " has no array of that name (arrays: " +
                          (names.empty() ? "none" : names) + "); name each array after the input it feeds");
    }
    WH_ASSIGN_OR_RETURN(auto reader, archive.openArray(array));
    WH_ASSIGN_OR_RETURN(SampleSlot slot, slotForArray(*in, *reader));
    if (!readers.empty() && reader->rows() != readers.front()->rows()) {
      return invalidInput(spec.path + ": arrays hold different numbers of samples: " + readers.front()->label() + " has " +
                          std::to_string(readers.front()->rows()) + ", " + reader->label() + " has " +
                          std::to_string(reader->rows()));
    }
    readers.push_back(std::move(reader));
    slots.push_back(std::move(slot));
  }
  int64_t size = limited(readers.front()->rows(), spec.limit);
  std::vector<int64_t> labels;
  std::string labelSource;
  if (!spec.labels.empty()) {
    WH_ASSIGN_OR_RETURN(labels, labelsInOrder(spec.labels, size, spec.path));
    labelSource = spec.labels;
  } else if (archive.contains("labels") &&
             std::none_of(fed.begin(), fed.end(), [](const InputSpec* in) { return in->name == "labels"; })) {
    WH_ASSIGN_OR_RETURN(ir::Tensor t, archive.read("labels"));
    if (t.rank() != 1 || !ir::isInteger(t.dtype()) || t.numel() < size) {
      return invalidInput(spec.path + ":labels: expected a 1-dimensional integer array of at least " +
                          std::to_string(size) + " classes, got " + std::string(ir::dataTypeName(t.dtype())) + " " +
                          dimsText(t.dims()));
    }
    for (int64_t i = 0; i < size; ++i) labels.push_back(static_cast<int64_t>(t.valueAsDouble(i)));
    labelSource = spec.path + ":labels";
  }
  return std::unique_ptr<Dataset>(new ArrayDataset(DatasetKind::kNpz, spec.path, std::move(readers), std::move(slots),
                                                   size, std::move(labels), labelSource, inputs));
}

Expected<std::unique_ptr<Dataset>> openTensorProto(const DatasetSpec& spec, const std::vector<InputSpec>& inputs) {
  std::vector<std::vector<std::string>> sets;
  std::error_code ec;
  if (fs::is_regular_file(spec.path, ec)) {
    sets.push_back({spec.path});
  } else {
    std::vector<std::string> here = inputFilesOf(spec.path);
    if (!here.empty()) {
      sets.push_back(here);
    } else {
      std::vector<std::string> folders;
      for (const auto& e : fs::directory_iterator(spec.path, ec)) {
        if (e.is_directory() && e.path().filename().string().rfind("test_data_set", 0) == 0) folders.push_back(e.path().string());
      }
      std::sort(folders.begin(), folders.end(), [](const std::string& a, const std::string& b) {
        int64_t na = trailingNumber(a), nb = trailingNumber(b);
        return na != nb ? na < nb : a < b;
      });
      for (const auto& folder : folders) {
        std::vector<std::string> files = inputFilesOf(folder);
        if (files.empty()) return invalidInput(folder + ": no input_*.pb files");
        sets.push_back(std::move(files));
      }
    }
  }
  if (sets.empty()) return invalidInput(spec.path + ": no test_data_set_*/input_*.pb files");
  if (spec.limit >= 0 && static_cast<int64_t>(sets.size()) > spec.limit) sets.resize(static_cast<size_t>(std::max<int64_t>(spec.limit, 1)));

  // The first set fixes the mapping of files to inputs (by tensor name, else by position)
  // and the shapes.
  const auto& firstSet = sets.front();
  std::vector<const InputSpec*> fed;
  if (!spec.input.empty()) {
    WH_ASSIGN_OR_RETURN(const InputSpec* one, singleInput(inputs, spec.input, spec.path));
    fed.push_back(one);
  } else {
    for (const auto& in : inputs) fed.push_back(&in);
  }
  if (firstSet.size() != fed.size()) {
    std::string names;
    for (const auto* in : fed) names += (names.empty() ? "" : ", ") + in->name;
    return invalidInput(fs::path(firstSet.front()).parent_path().string() + ": has " + std::to_string(firstSet.size()) +
                        " input_*.pb file(s), but the model has " + std::to_string(fed.size()) + " input(s) (" + names +
                        ")");
  }
  std::vector<SampleSlot> slots(fed.size());
  std::vector<int> slotOfFile(firstSet.size(), -1);
  std::vector<bool> taken(fed.size(), false);
  int64_t rowsPerSet = -1;
  for (size_t f = 0; f < firstSet.size(); ++f) {
    std::string name;
    WH_ASSIGN_OR_RETURN(ir::Tensor t, onnx_io::readTensorFile(firstSet[f], &name));
    size_t k = f;
    for (size_t i = 0; i < fed.size(); ++i) {
      if (!name.empty() && fed[i]->name == name) k = i;
    }
    if (taken[k]) return invalidInput(firstSet[f] + ": feeds input '" + fed[k]->name + "', which another file feeds too");
    taken[k] = true;
    if (t.rank() == 0) {
      return invalidInput("input '" + fed[k]->name + "': " + firstSet[f] +
                          " is a 0-dimensional tensor; a data set needs a leading batch axis");
    }
    if (rowsPerSet >= 0 && t.dims()[0] != rowsPerSet) {
      return invalidInput(firstSet[f] + ": has batch " + std::to_string(t.dims()[0]) + ", other inputs have " +
                          std::to_string(rowsPerSet));
    }
    rowsPerSet = t.dims()[0];
    WH_ASSIGN_OR_RETURN(slots[k], fitSlot(*fed[k], t.dtype(), tail(t.dims()), firstSet[f]));
    slotOfFile[f] = static_cast<int>(k);
  }
  if (rowsPerSet == 0) return invalidInput(firstSet.front() + ": holds no samples (batch 0)");
  int64_t size = static_cast<int64_t>(sets.size()) * rowsPerSet;
  if (spec.limit >= 0) size = std::min(size, spec.limit);
  std::vector<int64_t> labels;
  if (!spec.labels.empty()) {
    WH_ASSIGN_OR_RETURN(labels, labelsInOrder(spec.labels, size, spec.path));
  }
  return std::unique_ptr<Dataset>(new TensorProtoDataset(spec.path, std::move(sets), std::move(slotOfFile),
                                                         std::move(slots), rowsPerSet, size, std::move(labels), inputs));
}

}  // namespace whittle::data::detail
