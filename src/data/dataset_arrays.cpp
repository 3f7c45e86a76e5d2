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


// ---------------------------------------------------------------- .npy / .npz

// One array of a .npy/.npz data set: rows streamed from the file when samples lie along
// axis 0, the whole array in memory when they lie along a later axis (recurrent states such
// as [2,N,128]: small), nothing for a fixed input (its tensor is in the slot).
struct ArraySource {
  std::unique_ptr<NpyArrayReader> reader;
  std::optional<ir::Tensor> whole;
  int sampleAxis = 0;
};

class ArrayDataset final : public Dataset {
 public:
  ArrayDataset(DatasetKind kind, std::string path, std::vector<ArraySource> sources, std::vector<SampleSlot> slots,
               int64_t size, std::string idLabel, std::vector<int64_t> labels, std::string labelSource)
      : sources_(std::move(sources)), idLabel_(std::move(idLabel)), labels_(std::move(labels)),
        labelSource_(std::move(labelSource)) {
    kind_ = kind;
    path_ = std::move(path);
    slots_ = std::move(slots);
    size_ = size;
    hasLabels_ = !labels_.empty();
  }

 protected:
  Status readSamples(int64_t first, int64_t count, const std::vector<std::byte*>& dst, int64_t* labels) override {
    for (size_t k = 0; k < sources_.size(); ++k) {
      ArraySource& src = sources_[k];
      if (src.whole) {
        copySamples(src.whole->rawData(), src.whole->dims(), src.sampleAxis, ir::storageBytes(src.whole->dtype(), 1),
                    first, count, dst[k]);
      } else if (src.reader) {
        WH_RETURN_IF_ERROR(src.reader->readRows(first, count, dst[k]));
      }
    }
    if (labels != nullptr) std::copy_n(labels_.begin() + first, count, labels);
    return Status::ok();
  }
  std::string sampleId(int64_t i) const override { return idLabel_ + "[" + std::to_string(i) + "]"; }
  std::string details() const override {
    std::string fixed;
    for (const SampleSlot& slot : slots_) {
      if (slot.isFixed()) fixed += (fixed.empty() ? "" : ", ") + slot.input;
    }
    std::string s = fixed.empty() ? "" : "fixed: " + fixed;
    if (!labelSource_.empty()) s += (s.empty() ? "" : "; ") + std::string("labels from ") + labelSource_;
    return s;
  }

 private:
  std::vector<ArraySource> sources_;
  std::string idLabel_;
  std::vector<int64_t> labels_;
  std::string labelSource_;
};

// How `reader`'s array feeds `input`, with its source opened accordingly. `count` gets the
// number of samples (-1 for a fixed input).
Expected<std::pair<SampleSlot, ArraySource>> sourceForArray(const InputSpec& input,
                                                            std::unique_ptr<NpyArrayReader> reader, int64_t* count) {
  WH_ASSIGN_OR_RETURN(ArrayLayout layout,
                      arrayLayout(input, reader->header().dtype, reader->header().shape, reader->label()));
  ArraySource src;
  src.sampleAxis = layout.sampleAxis;
  *count = layout.fixed ? -1 : layout.count;
  if (layout.fixed) {
    WH_ASSIGN_OR_RETURN(ir::Tensor t, reader->readAll());
    layout.slot.fixed = std::move(t);
  } else if (layout.sampleAxis > 0) {
    WH_ASSIGN_OR_RETURN(ir::Tensor t, reader->readAll());
    src.whole = std::move(t);
  } else {
    src.reader = std::move(reader);
  }
  return std::make_pair(std::move(layout.slot), std::move(src));
}

int64_t limited(int64_t size, int64_t limit) { return limit >= 0 ? std::min(size, limit) : size; }

// ---------------------------------------------------------------- .pb folders

class TensorProtoDataset final : public Dataset {
 public:
  TensorProtoDataset(std::string path, std::vector<std::vector<std::string>> files, std::vector<int> slotOfFile,
                     std::vector<int> axisOfFile, std::vector<std::vector<int64_t>> shapeOfFile,
                     std::vector<SampleSlot> slots, int64_t rowsPerSet, int64_t size, std::vector<int64_t> labels)
      : files_(std::move(files)), slotOfFile_(std::move(slotOfFile)), axisOfFile_(std::move(axisOfFile)),
        shapeOfFile_(std::move(shapeOfFile)), rowsPerSet_(rowsPerSet), labels_(std::move(labels)) {
    kind_ = DatasetKind::kTensorProto;
    path_ = std::move(path);
    slots_ = std::move(slots);
    size_ = size;
    hasLabels_ = !labels_.empty();
  }

 protected:
  Status readSamples(int64_t first, int64_t count, const std::vector<std::byte*>& dst, int64_t* labels) override {
    for (int64_t i = first; i < first + count; ++i) {
      int64_t set = i / rowsPerSet_, row = i % rowsPerSet_;
      WH_RETURN_IF_ERROR(load(set));
      for (size_t f = 0; f < loaded_.size(); ++f) {
        auto k = static_cast<size_t>(slotOfFile_[f]);
        const ir::Tensor& t = loaded_[f];
        std::byte* out = dst[k] + static_cast<size_t>(i - first) * slots_[k].sampleBytes;
        if (axisOfFile_[f] < 0) {  // the set's value, the same for each of its samples
          std::memcpy(out, t.rawData(), slots_[k].sampleBytes);
          continue;
        }
        copySamples(t.rawData(), t.dims(), axisOfFile_[f], ir::storageBytes(t.dtype(), 1), row, 1, out);
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
      const std::vector<int64_t>& want = shapeOfFile_[f];
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
  std::vector<int> axisOfFile_;                  // input file index → its sample axis (-1: the set's value)
  std::vector<std::vector<int64_t>> shapeOfFile_;  // input file index → its shape in every set
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
  std::string label = reader->label();
  int64_t count = 0;
  WH_ASSIGN_OR_RETURN(auto fed, sourceForArray(*input, std::move(reader), &count));
  int64_t size = limited(count < 0 ? 1 : count, spec.limit);
  std::vector<int64_t> labels;
  if (!spec.labels.empty()) {
    WH_ASSIGN_OR_RETURN(labels, labelsInOrder(spec.labels, size, spec.path));
  }
  std::vector<ArraySource> sources;
  sources.push_back(std::move(fed.second));
  return std::unique_ptr<Dataset>(new ArrayDataset(DatasetKind::kNpy, spec.path, std::move(sources),
                                                   {std::move(fed.first)}, size, label, std::move(labels), spec.labels));
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
  std::vector<ArraySource> sources;
  std::vector<SampleSlot> slots;
  std::string counted;  // the first array that holds samples
  int64_t samples = -1;
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
    std::string label = reader->label();
    int64_t count = 0;
    WH_ASSIGN_OR_RETURN(auto one, sourceForArray(*in, std::move(reader), &count));
    if (count >= 0) {
      if (samples >= 0 && count != samples) {
        return invalidInput(spec.path + ": arrays hold different numbers of samples: " + counted + " has " +
                            std::to_string(samples) + ", " + label + " has " + std::to_string(count) +
                            " (fixed inputs aside, every array must hold the same number; docs/datasets.md)");
      }
      if (samples < 0) counted = label;
      samples = count;
    }
    sources.push_back(std::move(one.second));
    slots.push_back(std::move(one.first));
  }
  // Only fixed inputs: one sample.
  int64_t size = limited(samples < 0 ? 1 : samples, spec.limit);
  if (counted.empty()) counted = spec.path;
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
  return std::unique_ptr<Dataset>(new ArrayDataset(DatasetKind::kNpz, spec.path, std::move(sources), std::move(slots),
                                                   size, counted, std::move(labels), labelSource));
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
  std::vector<int> slotOfFile(firstSet.size(), -1), axisOfFile(firstSet.size(), 0);
  std::vector<std::vector<int64_t>> shapeOfFile(firstSet.size());
  std::vector<bool> taken(fed.size(), false);
  int64_t rowsPerSet = -1;
  std::string counted;
  for (size_t f = 0; f < firstSet.size(); ++f) {
    std::string name;
    WH_ASSIGN_OR_RETURN(ir::Tensor t, onnx_io::readTensorFile(firstSet[f], &name));
    size_t k = f;
    for (size_t i = 0; i < fed.size(); ++i) {
      if (!name.empty() && fed[i]->name == name) k = i;
    }
    if (taken[k]) return invalidInput(firstSet[f] + ": feeds input '" + fed[k]->name + "', which another file feeds too");
    taken[k] = true;
    WH_ASSIGN_OR_RETURN(ArrayLayout layout, arrayLayout(*fed[k], t.dtype(), t.dims(), firstSet[f]));
    if (!layout.fixed) {
      if (rowsPerSet >= 0 && layout.count != rowsPerSet) {
        return invalidInput(firstSet[f] + ": holds " + std::to_string(layout.count) + " sample(s), " + counted + " holds " +
                            std::to_string(rowsPerSet));
      }
      rowsPerSet = layout.count;
      if (counted.empty()) counted = firstSet[f];
    } else {
      // The ONNX test-data layout: each set holds one run's tensors, so a tensor of the input's
      // whole shape is that set's value, fed with each of the set's samples (not one tensor for
      // the whole data set).
      const int b = layout.inputBatchAxis;
      if (b >= 0 && t.dims()[static_cast<size_t>(b)] == 1) {
        std::vector<int64_t> dims = t.dims();
        dims.erase(dims.begin() + b);
        layout.slot.sampleDims = std::move(dims);
        layout.slot.batchAxis = b;
      } else {
        layout.slot.batchAxis = -1;
      }
      layout.sampleAxis = -1;
    }
    slots[k] = std::move(layout.slot);
    slotOfFile[f] = static_cast<int>(k);
    axisOfFile[f] = layout.sampleAxis;
    shapeOfFile[f] = t.dims();
  }
  if (rowsPerSet < 0) rowsPerSet = 1;  // only fixed inputs: one sample per set
  if (rowsPerSet == 0) return invalidInput(firstSet.front() + ": holds no samples (batch 0)");
  int64_t size = static_cast<int64_t>(sets.size()) * rowsPerSet;
  if (spec.limit >= 0) size = std::min(size, spec.limit);
  std::vector<int64_t> labels;
  if (!spec.labels.empty()) {
    WH_ASSIGN_OR_RETURN(labels, labelsInOrder(spec.labels, size, spec.path));
  }
  return std::unique_ptr<Dataset>(new TensorProtoDataset(spec.path, std::move(sets), std::move(slotOfFile),
                                                         std::move(axisOfFile), std::move(shapeOfFile), std::move(slots),
                                                         rowsPerSet, size, std::move(labels)));
}

}  // namespace whittle::data::detail
