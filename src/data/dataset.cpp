#include "whittle/data/dataset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "data/dataset_internal.h"
#include "whittle/data/npy.h"
#include "whittle/onnx_io/tensor_proto.h"

namespace whittle::data {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- helpers

std::vector<InputSpec> inputSpecs(const std::vector<const ir::Value*>& values) {
  std::vector<InputSpec> out;
  for (const ir::Value* v : values) out.push_back({v->name(), v->dtype(), v->type().shape});
  return out;
}

std::vector<InputSpec> inputSpecs(const ir::Graph& graph) {
  std::vector<const ir::Value*> feeds;
  for (const ir::Value* v : graph.inputs()) {
    if (!v->isInitializer()) feeds.push_back(v);
  }
  return inputSpecs(feeds);
}

std::string dimsText(const std::vector<ir::Dim>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    s += i ? "," : "";
    s += dims[i].isKnown() ? std::to_string(dims[i].value) : dims[i].param.empty() ? "?" : dims[i].param;
  }
  return s + "]";
}

std::string dimsText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
  return s + "]";
}

std::string_view datasetKindName(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kAuto: return "auto";
    case DatasetKind::kNpy: return "npy";
    case DatasetKind::kNpz: return "npz";
    case DatasetKind::kTensorProto: return "pb";
    case DatasetKind::kImages: return "images";
    case DatasetKind::kRawBin: return "rawbin";
    case DatasetKind::kMnist: return "mnist";
  }
  return "auto";
}

std::optional<DatasetKind> parseDatasetKind(std::string_view name) {
  for (DatasetKind k : {DatasetKind::kAuto, DatasetKind::kNpy, DatasetKind::kNpz, DatasetKind::kTensorProto,
                        DatasetKind::kImages, DatasetKind::kRawBin, DatasetKind::kMnist}) {
    if (datasetKindName(k) == name) return k;
  }
  if (name == "image") return DatasetKind::kImages;
  if (name == "idx") return DatasetKind::kMnist;
  return std::nullopt;
}

namespace detail {

std::optional<std::vector<int64_t>> modelSampleDims(const InputSpec& input) {
  if (!input.dims || input.dims->empty()) return std::nullopt;
  std::vector<int64_t> dims;
  for (size_t i = 1; i < input.dims->size(); ++i) dims.push_back((*input.dims)[i].isKnown() ? (*input.dims)[i].value : -1);
  return dims;
}

Expected<SampleSlot> fitSlot(const InputSpec& input, ir::DataType dtype, const std::vector<int64_t>& sampleDims,
                             const std::string& source) {
  if (input.dims && input.dims->empty()) {
    return invalidInput("input '" + input.name + "' is a scalar; a data set needs a leading batch axis to feed it");
  }
  if (input.dims) {
    std::vector<ir::Dim> want(input.dims->begin() + 1, input.dims->end());
    bool ok = want.size() == sampleDims.size();
    for (size_t i = 0; ok && i < want.size(); ++i) ok = !want[i].isKnown() || want[i].value == sampleDims[i];
    if (!ok) {
      return invalidInput("input '" + input.name + "': expected samples of shape " + dimsText(want) +
                          " (model input " + dimsText(*input.dims) + "), got " + dimsText(sampleDims) + " from " +
                          source);
    }
  }
  if (input.dtype != ir::DataType::kUndefined && input.dtype != dtype) {
    return invalidInput("input '" + input.name + "': expected " + std::string(ir::dataTypeName(input.dtype)) +
                        ", got " + std::string(ir::dataTypeName(dtype)) + " from " + source);
  }
  int64_t numel = 1;
  for (int64_t d : sampleDims) numel *= d;
  SampleSlot slot;
  slot.input = input.name;
  slot.dtype = dtype;
  slot.sampleDims = sampleDims;
  slot.sampleBytes = ir::storageBytes(dtype, numel);
  return slot;
}

Expected<const InputSpec*> singleInput(const std::vector<InputSpec>& inputs, const std::string& wanted,
                                       const std::string& source) {
  std::string names;
  for (const auto& in : inputs) names += (names.empty() ? "" : ", ") + in.name;
  if (!wanted.empty()) {
    for (const auto& in : inputs) {
      if (in.name == wanted) return &in;
    }
    return notFound(source + ": the model has no input named '" + wanted + "' (inputs: " + names + ")");
  }
  if (inputs.size() == 1) return &inputs[0];
  if (inputs.empty()) return invalidInput(source + ": the model has no inputs to feed");
  return invalidInput(source + ": this data set feeds one input, but the model has " + std::to_string(inputs.size()) +
                      " (" + names + "); use a .npz with one array per input or a .pb folder, name the input (input=), or fix the others "
                      "(--fixed-input NAME=VALUE)");
}

namespace {
std::optional<int> batchAxisOf(const std::vector<ir::Dim>& dims);
}  // namespace

std::optional<std::pair<int64_t, std::string>> fixedBatchOf(const std::vector<InputSpec>& inputs,
                                                            const std::vector<SampleSlot>& slots) {
  bool anySamples = false;
  for (const SampleSlot& slot : slots) {
    if (slot.isFixed()) continue;
    anySamples = true;
    if (slot.batchAxis < 0) return std::make_pair(int64_t{1}, slot.input);
  }
  if (!anySamples) return slots.empty() ? std::nullopt : std::make_optional(std::make_pair(int64_t{1}, slots.front().input));
  for (const SampleSlot& slot : slots) {
    if (slot.isFixed()) continue;
    for (const InputSpec& in : inputs) {
      if (in.name != slot.input || !in.dims || slot.batchAxis >= static_cast<int>(in.dims->size())) continue;
      const ir::Dim& d = (*in.dims)[static_cast<size_t>(slot.batchAxis)];
      if (d.isKnown()) return std::make_pair(d.value, slot.input);
    }
  }
  // A fixed tensor (--fixed-input) whose input has a free batch axis pins the batch to its size
  // there: an initial state [2,1,128] for [2,batch,128] makes every batch one sample.
  for (const SampleSlot& slot : slots) {
    if (!slot.isFixed()) continue;
    for (const InputSpec& in : inputs) {
      if (in.name != slot.input || !in.dims) continue;
      std::optional<int> axis = batchAxisOf(*in.dims);
      if (!axis || *axis < 0 || static_cast<size_t>(*axis) >= slot.fixed->dims().size()) continue;
      if ((*in.dims)[static_cast<size_t>(*axis)].isKnown()) continue;
      return std::make_pair(slot.fixed->dims()[static_cast<size_t>(*axis)], slot.input);
    }
  }
  return std::nullopt;
}

namespace {

bool namesBatch(const ir::Dim& d) {
  std::string p = d.param;
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return !d.isKnown() && p.find("batch") != std::string::npos;
}

// The batch axis of an input of declared dims `dims`: a dim named like "batch"; else the first
// symbolic or unknown dim unless dim 0 is the number 1; else 0 for a static shape. nullopt for
// a scalar; -2 when it cannot be told ([1,seq]: axis 0 or the symbolic one).
std::optional<int> batchAxisOf(const std::vector<ir::Dim>& dims) {
  if (dims.empty()) return std::nullopt;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (namesBatch(dims[i])) return static_cast<int>(i);
  }
  int firstFree = -1;
  for (size_t i = 0; i < dims.size() && firstFree < 0; ++i) {
    if (!dims[i].isKnown()) firstFree = static_cast<int>(i);
  }
  if (firstFree < 0) return 0;
  if (firstFree > 0 && dims[0].value == 1) return -2;
  return firstFree;
}

std::vector<int64_t> without(const std::vector<int64_t>& dims, size_t axis) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i != axis) out.push_back(dims[i]);
  }
  return out;
}

}  // namespace

Expected<ArrayLayout> arrayLayout(const InputSpec& input, ir::DataType dtype, const std::vector<int64_t>& shape,
                                  const std::string& source) {
  if (input.dtype != ir::DataType::kUndefined && input.dtype != dtype) {
    return invalidInput("input '" + input.name + "': expected " + std::string(ir::dataTypeName(input.dtype)) +
                        ", got " + std::string(ir::dataTypeName(dtype)) + " from " + source);
  }
  ArrayLayout out;
  out.slot.input = input.name;
  out.slot.dtype = dtype;
  auto done = [&](std::vector<int64_t> dims, int batchAxis) {
    int64_t numel = 1;
    for (int64_t d : dims) numel *= d;
    out.slot.sampleDims = std::move(dims);
    out.slot.sampleBytes = ir::storageBytes(dtype, numel);
    out.slot.batchAxis = batchAxis;
    return out;
  };
  if (!input.dims) {  // rank unknown: samples along axis 0, as stored
    if (shape.empty()) {
      return invalidInput("input '" + input.name + "': " + source +
                          " is a 0-dimensional array, and the model does not declare the input's rank; give samples "
                          "along axis 0");
    }
    out.count = shape[0];
    return done({shape.begin() + 1, shape.end()}, 0);
  }
  const std::vector<ir::Dim>& want = *input.dims;
  const size_t rank = want.size();
  bool isStatic = std::all_of(want.begin(), want.end(), [](const ir::Dim& d) { return d.isKnown(); });
  std::optional<int> axis = batchAxisOf(want);
  out.inputBatchAxis = axis && *axis >= 0 ? *axis : -1;
  // Does `dims` (the input's rank) fit the declared dims, except at `skip`?
  auto fits = [&](const std::vector<int64_t>& dims, size_t skip) {
    if (dims.size() != rank) return false;
    for (size_t i = 0; i < rank; ++i) {
      if (i != skip && want[i].isKnown() && want[i].value != dims[i]) return false;
    }
    return true;
  };
  const size_t none = rank;
  if (shape.size() == rank + 1) {  // rule 1: samples of the input's whole shape, stacked along a new axis
    std::vector<int64_t> sample(shape.begin() + 1, shape.end());
    if (fits(sample, none)) {
      out.count = shape[0];
      if (axis && *axis >= 0 && sample[static_cast<size_t>(*axis)] == 1) {
        return done(without(sample, static_cast<size_t>(*axis)), *axis);
      }
      return done(sample, -1);
    }
  } else if (shape.size() == rank) {
    if (isStatic && fits(shape, none)) {  // rule 3: the input's whole static shape, fed with every sample
      out.fixed = true;
      return done(shape, -1);
    }
    if (axis && *axis >= 0 && fits(shape, static_cast<size_t>(*axis))) {  // rule 2: samples along the batch axis
      out.count = shape[static_cast<size_t>(*axis)];
      out.sampleAxis = *axis;
      return done(without(shape, static_cast<size_t>(*axis)), *axis);
    }
  }
  // Nothing fits: say what would.
  std::string dims = dimsText(want);
  std::string inner = dims.substr(1, dims.size() - 2);
  std::string accepted = "[N" + std::string(rank ? "," : "") + inner + "] (N samples of the input's shape)";
  if (axis && *axis >= 0) {
    std::vector<ir::Dim> alongAxis = want;
    alongAxis[static_cast<size_t>(*axis)] = ir::Dim::symbolic("N");
    accepted += ", " + dimsText(alongAxis) + " (N samples along its batch axis " + std::to_string(*axis) + ")";
  }
  if (isStatic) accepted += ", " + dims + " (one tensor fed with every sample)";
  std::string why;
  if (axis && *axis == -2 && shape.size() == rank) {
    why = "; its batch axis is ambiguous (axis 0 has size 1, and a later dim is free), so an array of the input's rank "
          "cannot be split into samples";
  }
  return invalidInput("input '" + input.name + "' (model input " + dims + "): " + source + " has shape " +
                      dimsText(shape) + why + "; accepted: " + accepted);
}

void copySamples(const std::byte* src, const std::vector<int64_t>& shape, int axis, size_t elementBytes, int64_t first,
                 int64_t count, std::byte* dst) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= shape[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t n = shape[static_cast<size_t>(axis)];
  const size_t block = static_cast<size_t>(inner) * elementBytes;
  for (int64_t s = 0; s < count; ++s) {
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + static_cast<size_t>(s * outer + o) * block, src + static_cast<size_t>(o * n + first + s) * block,
                  block);
    }
  }
}

Expected<std::vector<int64_t>> labelsInOrder(const std::string& labelPath, int64_t count, const std::string& source) {
  WH_ASSIGN_OR_RETURN(LabelFile file, readLabelFile(labelPath));
  if (static_cast<int64_t>(file.size()) < count) {
    return invalidInput(labelPath + ": has " + std::to_string(file.size()) + " labels, but " + source + " has " +
                        std::to_string(count) + " samples");
  }
  file.labels.resize(static_cast<size_t>(count));
  return file.labels;
}

std::string extensionOf(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

bool isImageFile(const std::string& path) {
  std::string ext = extensionOf(path);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

}  // namespace detail

// ---------------------------------------------------------------- Dataset

std::vector<int64_t> SampleSlot::batchDims(int64_t rows) const {
  std::vector<int64_t> dims = sampleDims;
  if (!isFixed() && batchAxis >= 0) dims.insert(dims.begin() + batchAxis, rows);
  return dims;
}

std::string Dataset::describe() const {
  std::string s = std::string(datasetKindName(kind_)) + " '" + path_ + "' (" + std::to_string(size_) + " samples";
  std::string extra = details();
  if (!extra.empty()) s += "; " + extra;
  if (!fixedDescription_.empty()) s += "; fixed by --fixed-input: " + fixedDescription_;
  s += ")";
  return s;
}

Expected<Batch> Dataset::read(int64_t first, int64_t count) {
  if (first < 0 || count < 0 || first > size_ || count > size_ - first) {
    return invalidInput(path_ + ": samples [" + std::to_string(first) + ", " + std::to_string(first + count) +
                        ") out of range (the data set has " + std::to_string(size_) + ")");
  }
  Batch batch;
  batch.first = first;
  batch.count = count;
  if (count == 0) return batch;
  int64_t rows = count;
  if (fixedBatch_) {
    if (count > *fixedBatch_) {
      return invalidInput("input '" + fixedBatchInput_ + "' has a fixed batch size of " +
                          std::to_string(*fixedBatch_) + " in the model; cannot read batches of " +
                          std::to_string(count));
    }
    rows = *fixedBatch_;
  }
  std::vector<std::shared_ptr<ir::Buffer>> buffers;
  std::vector<std::byte*> dst;
  for (const SampleSlot& slot : slots_) {
    if (slot.isFixed()) {
      buffers.emplace_back();
      dst.push_back(nullptr);
      continue;
    }
    buffers.push_back(ir::Buffer::allocateUninitialized(slot.sampleBytes * static_cast<size_t>(rows)));
    dst.push_back(buffers.back()->mutableData());
  }
  if (hasLabels_) batch.labels.resize(static_cast<size_t>(count));
  WH_RETURN_IF_ERROR(readSamples(first, count, dst, hasLabels_ ? batch.labels.data() : nullptr));
  for (size_t k = 0; k < slots_.size(); ++k) {
    if (dst[k] == nullptr) continue;
    const size_t bytes = slots_[k].sampleBytes;
    for (int64_t r = count; r < rows; ++r) {
      std::memcpy(dst[k] + static_cast<size_t>(r) * bytes, dst[k] + static_cast<size_t>(count - 1) * bytes, bytes);
    }
  }
  for (int64_t i = first; i < first + count; ++i) batch.ids.push_back(sampleId(i));
  if (!allowNonfinite_) WH_RETURN_IF_ERROR(checkFinite(dst, first, count));
  for (size_t k = 0; k < slots_.size(); ++k) {
    const SampleSlot& slot = slots_[k];
    if (slot.isFixed()) {
      batch.inputs.emplace_back(slot.input, *slot.fixed);
      continue;
    }
    std::shared_ptr<ir::Buffer> buffer = std::move(buffers[k]);
    if (slot.batchAxis > 0 && rows > 1) {
      // Samples one after the other ([rows][outer][inner]) to the batch layout [outer][rows][inner].
      int64_t outer = 1, inner = 1;
      for (int i = 0; i < slot.batchAxis; ++i) outer *= slot.sampleDims[static_cast<size_t>(i)];
      for (size_t i = static_cast<size_t>(slot.batchAxis); i < slot.sampleDims.size(); ++i) inner *= slot.sampleDims[i];
      auto stacked = ir::Buffer::allocateUninitialized(buffer->size());
      detail::copySamples(buffer->data(), {rows, outer, inner}, 1, ir::storageBytes(slot.dtype, 1), 0, outer,
                          stacked->mutableData());
      buffer = std::move(stacked);
    }
    batch.inputs.emplace_back(slot.input, ir::Tensor(slot.dtype, slot.batchDims(rows), std::move(buffer)));
  }
  return batch;
}

namespace {

/// The index of the first NaN or infinity among `n` elements of a floating-point type, and
/// whether it is a NaN; nullopt when all are finite or the type is not floating point.
std::optional<std::pair<int64_t, bool>> firstNonfinite(ir::DataType dtype, const std::byte* data, int64_t n) {
  auto halfLike = [&](uint16_t expMask, uint16_t mantissaMask) -> std::optional<std::pair<int64_t, bool>> {
    const auto* bits = reinterpret_cast<const uint16_t*>(data);
    for (int64_t i = 0; i < n; ++i) {
      if ((bits[i] & expMask) == expMask) return std::make_pair(i, (bits[i] & mantissaMask) != 0);
    }
    return std::nullopt;
  };
  auto ieee = [&](auto tag) -> std::optional<std::pair<int64_t, bool>> {
    using T = decltype(tag);
    const auto* v = reinterpret_cast<const T*>(data);
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[i])) return std::make_pair(i, std::isnan(v[i]));
    }
    return std::nullopt;
  };
  switch (dtype) {
    case ir::DataType::kFloat: return ieee(float{});
    case ir::DataType::kDouble: return ieee(double{});
    case ir::DataType::kFloat16: return halfLike(0x7C00, 0x03FF);
    case ir::DataType::kBFloat16: return halfLike(0x7F80, 0x007F);
    default: return std::nullopt;
  }
}

}  // namespace

Status Dataset::checkFinite(const std::vector<std::byte*>& samples, int64_t first, int64_t count) const {
  for (size_t k = 0; k < slots_.size(); ++k) {
    const SampleSlot& slot = slots_[k];
    if (!ir::isFloatingPoint(slot.dtype)) continue;
    const size_t elementBytes = ir::storageBytes(slot.dtype, 1);
    if (slot.isFixed()) {
      if (auto bad = firstNonfinite(slot.dtype, slot.fixed->rawData(), slot.fixed->numel())) {
        return invalidInput(path_ + ": the fixed input '" + slot.input + "': element " + std::to_string(bad->first) +
                            " is " + (bad->second ? "NaN" : "infinite") +
                            "; pass --allow-nonfinite to use data with NaN or infinity");
      }
      continue;
    }
    const int64_t perSample = elementBytes == 0 ? 0 : static_cast<int64_t>(slot.sampleBytes / elementBytes);
    for (int64_t s = 0; s < count; ++s) {
      const std::byte* sample = samples[k] + static_cast<size_t>(s) * slot.sampleBytes;
      if (auto bad = firstNonfinite(slot.dtype, sample, perSample)) {
        return invalidInput(path_ + ": sample " + std::to_string(first + s) + " (" + sampleId(first + s) +
                            "), input '" + slot.input + "': element " + std::to_string(bad->first) + " is " +
                            (bad->second ? "NaN" : "infinite") +
                            "; pass --allow-nonfinite to use data with NaN or infinity");
      }
    }
  }
  return Status::ok();
}

Expected<Batch> Dataset::next(int64_t batchSize) {
  if (batchSize < 1) return invalidInput("batch size must be at least 1, got " + std::to_string(batchSize));
  int64_t count = std::min(batchSize, size_ - cursor_);
  WH_ASSIGN_OR_RETURN(Batch batch, read(cursor_, count));
  cursor_ += count;
  return batch;
}

// ---------------------------------------------------------------- options and factory

Status parseDatasetOptions(std::string_view text, DatasetSpec& spec) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq + 1 == item.size()) {
      return invalidInput("data set options: '" + item + "' needs a value (kind=, labels=, input=, shape=, dtype=, limit=)");
    }
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "kind") {
      auto kind = parseDatasetKind(value);
      if (!kind) return invalidInput("data set options: kind=" + value + ": expected npy, npz, pb, images, rawbin or mnist");
      spec.kind = *kind;
    } else if (key == "labels") {
      spec.labels = value;
    } else if (key == "input") {
      spec.input = value;
    } else if (key == "shape") {
      spec.rawShape.clear();
      size_t pos = 0;
      while (pos <= value.size()) {
        size_t x = value.find_first_of("x,:", pos);
        std::string part = value.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
        int64_t d = 0;
        auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), d);
        if (part.empty() || ec != std::errc() || end != part.data() + part.size() || d <= 0) {
          return invalidInput("data set options: shape=" + value + ": expected HxWxC or HxW with positive sizes");
        }
        spec.rawShape.push_back(d);
        pos = x == std::string::npos ? value.size() + 1 : x + 1;
      }
      if (spec.rawShape.size() < 2 || spec.rawShape.size() > 3) {
        return invalidInput("data set options: shape=" + value + ": expected HxWxC or HxW");
      }
    } else if (key == "dtype") {
      auto type = ir::parseDataType(value);
      if (!type || (*type != ir::DataType::kUint8 && *type != ir::DataType::kInt8)) {
        return invalidInput("data set options: dtype=" + value + ": raw samples are uint8 or int8");
      }
      spec.rawType = *type;
    } else if (key == "limit") {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 0) {
        return invalidInput("data set options: limit=" + value + ": expected a non-negative integer");
      }
      spec.limit = n;
    } else {
      return invalidInput("data set options: unknown key '" + key + "' (kind, labels, input, shape, dtype, limit)");
    }
  }
  return Status::ok();
}

Expected<DatasetKind> detectDatasetKind(const std::string& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return notFound(path + ": no such file or folder");
  if (fs::is_regular_file(status)) {
    std::string ext = detail::extensionOf(path);
    std::string name = fs::path(path).filename().string();
    if (ext == ".npy") return DatasetKind::kNpy;
    if (ext == ".npz") return DatasetKind::kNpz;
    if (ext == ".pb") return DatasetKind::kTensorProto;
    if (detail::isImageFile(path)) return DatasetKind::kImages;
    if (name.find("-idx") != std::string::npos || name.find(".idx") != std::string::npos) return DatasetKind::kMnist;
    return invalidInput(path + ": cannot tell what kind of data set this file is (expected .npy, .npz, .pb, an image or "
                               "an idx file); give the kind (kind=...)");
  }
  if (!fs::is_directory(status)) return invalidInput(path + ": not a file or folder");
  bool pb = false, idx = false, bin = false, images = false;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory()) {
      if (name.rfind("test_data_set", 0) == 0) pb = true;
      continue;
    }
    if (name.rfind("input_", 0) == 0 && detail::extensionOf(name) == ".pb") pb = true;
    if (name.find("images-idx3") != std::string::npos) idx = true;
    if (detail::extensionOf(name) == ".bin") bin = true;
    if (detail::isImageFile(name)) images = true;
  }
  if (pb) return DatasetKind::kTensorProto;
  if (idx) return DatasetKind::kMnist;
  if (bin) return DatasetKind::kRawBin;
  if (images) return DatasetKind::kImages;
  for (const auto& entry : fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec)) {
    if (entry.is_regular_file() && detail::isImageFile(entry.path().string())) return DatasetKind::kImages;
  }
  return invalidInput(path + ": cannot tell what kind of data set this folder is (no test_data_set_*/input_*.pb, idx, "
                             ".bin or image files); give the kind (kind=...)");
}

Expected<std::unique_ptr<Dataset>> openDataset(const DatasetSpec& spec, const std::vector<InputSpec>& modelInputs) {
  DatasetKind kind = spec.kind;
  if (kind == DatasetKind::kAuto) {
    WH_ASSIGN_OR_RETURN(kind, detectDatasetKind(spec.path));
  } else if (!fs::exists(spec.path)) {
    return notFound(spec.path + ": no such file or folder");
  }
  if (spec.preprocess.hasGeometry() || spec.preprocess.hasNormalization() ||
      spec.preprocess.channels != ChannelOrder::kAuto || spec.preprocess.layout != Layout::kAuto ||
      spec.preprocess.dtype) {
    if (kind == DatasetKind::kNpy || kind == DatasetKind::kNpz || kind == DatasetKind::kTensorProto) {
      return invalidInput(spec.path + ": preprocessing applies to images, rawbin and mnist data sets, not to " +
                          std::string(datasetKindName(kind)) + " tensors (they are fed as stored)");
    }
  }
  // Inputs fixed by --fixed-input are not the data set's to feed: it opens against the others,
  // and their slots follow its own.
  std::vector<InputSpec> fedInputs;
  std::vector<SampleSlot> fixedSlots;
  if (!spec.fixedInputs.empty()) {
    WH_RETURN_IF_ERROR(detail::splitFixedInputs(spec.fixedInputs, modelInputs, fedInputs, fixedSlots));
  }
  const std::vector<InputSpec>& inputs = spec.fixedInputs.empty() ? modelInputs : fedInputs;
  auto opened = [&]() -> Expected<std::unique_ptr<Dataset>> {
    switch (kind) {
      case DatasetKind::kNpy: return detail::openNpy(spec, inputs);
      case DatasetKind::kNpz: return detail::openNpz(spec, inputs);
      case DatasetKind::kTensorProto: return detail::openTensorProto(spec, inputs);
      case DatasetKind::kImages: return detail::openImages(spec, inputs);
      case DatasetKind::kRawBin: return detail::openRawBin(spec, inputs);
      case DatasetKind::kMnist: return detail::openMnist(spec, inputs);
      case DatasetKind::kAuto: break;
    }
    return internalError("openDataset: unresolved data set kind");
  }();
  if (opened.isOk()) {
    Dataset& ds = **opened;
    ds.allowNonfinite_ = spec.allowNonfinite;
    for (SampleSlot& slot : fixedSlots) {
      ds.fixedDescription_ += (ds.fixedDescription_.empty() ? "" : ", ") + slot.input + " " + dimsText(slot.sampleDims);
      ds.slots_.push_back(std::move(slot));
    }
    auto fixedBatch = detail::fixedBatchOf(modelInputs, ds.slots_);
    ds.fixedBatch_ = fixedBatch ? std::make_optional(fixedBatch->first) : std::nullopt;
    ds.fixedBatchInput_ = fixedBatch ? fixedBatch->second : "";
  }
  return opened;
}

Expected<std::vector<NamedTensor>> readTensorsFromFile(const std::string& path) {
  std::string ext = detail::extensionOf(path);
  std::error_code ec;
  if (!fs::exists(path, ec)) return notFound(path + ": no such file");
  if (fs::is_directory(path, ec)) return invalidInput(path + ": is a folder, expected a .npy, .npz or .pb file");
  if (ext != ".npy" && ext != ".npz" && ext != ".pb") {
    // Decide by content: the .npy magic, a zip archive, else a TensorProto.
    char magic[6] = {0};
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
      size_t n = std::fread(magic, 1, sizeof(magic), f);
      std::fclose(f);
      if (n == 6 && std::memcmp(magic, "\x93NUMPY", 6) == 0) ext = ".npy";
      else if (n >= 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) ext = ".npz";
      else ext = ".pb";
    }
  }
  std::vector<NamedTensor> out;
  if (ext == ".npy") {
    WH_ASSIGN_OR_RETURN(ir::Tensor t, readNpy(path));
    out.emplace_back("", std::move(t));
  } else if (ext == ".npz") {
    WH_ASSIGN_OR_RETURN(out, readNpz(path));
  } else {
    std::string name;
    auto t = onnx_io::readTensorFile(path, &name);
    if (!t.isOk()) {
      const std::string& m = t.status().message();
      return Status(t.status().code(), m.find(path) == std::string::npos ? path + ": " + m : m);
    }
    out.emplace_back(name, std::move(t).value());
  }
  return out;
}

}  // namespace whittle::data
