// Image-like data sets: folders of JPEG/PNG images, MLPerf Tiny raw .bin samples and MNIST
// idx files. All go through the same preprocessing (src/data/preprocess.cpp).
#include <omp.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <mutex>

#include "data/byte_source.h"
#include "data/dataset_internal.h"
#include "whittle/common/file_util.h"
#include "whittle/data/image.h"

namespace whittle::data::detail {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- shared

struct LabelledFiles {
  std::vector<std::string> files;
  std::vector<int64_t> labels;  // empty: none
  std::string labelSource;
};

// The label file beside the data: one of `names` in `folder`.
std::string findLabelFile(const std::string& folder, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    std::string candidate = (fs::path(folder) / name).string();
    if (fs::is_regular_file(candidate)) return candidate;
  }
  return {};
}

// Resolves a file named in a label file: relative to the label file's folder, else to the
// data folder, else by its last component in the data folder.
std::string resolveListed(const std::string& listed, const std::string& labelFolder, const std::string& dataFolder) {
  fs::path p(listed);
  if (p.is_absolute()) return listed;
  std::error_code ec;
  fs::path a = fs::path(labelFolder) / p;
  if (fs::exists(a, ec)) return a.string();
  fs::path b = fs::path(dataFolder) / p;
  if (fs::exists(b, ec)) return b.string();
  return (fs::path(dataFolder) / p.filename()).string();
}

// Files listed by the label file when it lists them; else the scanned files (with labels in
// order when the label file is a plain list).
Expected<LabelledFiles> pairWithLabels(std::vector<std::string> scanned, const std::string& labelPath,
                                       const std::string& dataFolder) {
  LabelledFiles out;
  if (labelPath.empty()) {
    out.files = std::move(scanned);
    return out;
  }
  WH_ASSIGN_OR_RETURN(LabelFile labels, readLabelFile(labelPath));
  out.labelSource = labelPath;
  if (labels.hasFiles()) {
    std::string labelFolder = fs::path(labelPath).parent_path().string();
    std::error_code ec;
    for (size_t i = 0; i < labels.files.size(); ++i) {
      out.files.push_back(resolveListed(labels.files[i], labelFolder.empty() ? "." : labelFolder, dataFolder));
      if (!fs::exists(out.files.back(), ec)) {
        return notFound(labelPath + ": lists '" + labels.files[i] + "', which is not in " +
                        (labelFolder.empty() ? std::string(".") : labelFolder) + " or " + dataFolder);
      }
    }
    out.labels = std::move(labels.labels);
    return out;
  }
  if (labels.size() < scanned.size()) {
    return invalidInput(labelPath + ": has " + std::to_string(labels.size()) + " labels, but " + dataFolder + " has " +
                        std::to_string(scanned.size()) + " samples");
  }
  out.files = std::move(scanned);
  out.labels.assign(labels.labels.begin(), labels.labels.begin() + static_cast<std::ptrdiff_t>(out.files.size()));
  return out;
}

void applyLimit(LabelledFiles& lf, int64_t limit) {
  if (limit < 0 || static_cast<int64_t>(lf.files.size()) <= limit) return;
  lf.files.resize(static_cast<size_t>(limit));
  if (!lf.labels.empty()) lf.labels.resize(static_cast<size_t>(limit));
}

std::string relativeId(const std::string& file, const std::string& base) {
  std::error_code ec;
  fs::path rel = fs::relative(file, base, ec);
  return ec || rel.empty() || rel.string().rfind("..", 0) == 0 ? fs::path(file).filename().string() : rel.string();
}

// The channel, height and width positions of the model's sample dims for a layout.
void modelGeometry(const std::vector<int64_t>& dims, Layout layout, int64_t* h, int64_t* w, int64_t* c) {
  *h = *w = *c = -1;
  if (dims.size() == 3) {
    if (layout == Layout::kNhwc) {
      *h = dims[0], *w = dims[1], *c = dims[2];
    } else {
      *c = dims[0], *h = dims[1], *w = dims[2];
    }
  } else if (dims.size() == 2) {  // [H, W]: one channel without a channel axis
    *h = dims[0], *w = dims[1], *c = 1;
  }
}

// ---------------------------------------------------------------- image folders

class ImageDataset final : public Dataset {
 public:
  ImageDataset(std::string path, LabelledFiles files, SampleSlot slot, ResolvedPreprocess pre, int width, int height,
               const std::vector<InputSpec>& inputs)
      : files_(std::move(files)), pre_(std::move(pre)), width_(width), height_(height) {
    kind_ = DatasetKind::kImages;
    path_ = std::move(path);
    slots_ = {std::move(slot)};
    size_ = static_cast<int64_t>(files_.files.size());
    hasLabels_ = !files_.labels.empty();
    base_ = fs::is_directory(path_) ? path_ : fs::path(path_).parent_path().string();
  }

  /// Decodes and preprocesses one image into `dst`.
  Status render(const std::string& file, std::byte* dst) const {
    WH_ASSIGN_OR_RETURN(Image image, decodeImage(file));
    auto processed = applyGeometry(image, pre_);
    if (!processed.isOk()) return processed.status().withContext(file);
    if (processed->width != width_ || processed->height != height_) {
      return invalidInput(file + ": preprocessed to " + std::to_string(processed->width) + "x" +
                          std::to_string(processed->height) + ", but the samples are " + std::to_string(width_) + "x" +
                          std::to_string(height_) + " (images differ in size: add crop= or resize=WxH)");
    }
    normalizePixels(processed->pixels.data(), ir::DataType::kUint8, width_, height_, processed->channels, pre_, dst);
    return Status::ok();
  }

 protected:
  Status readSamples(int64_t first, int64_t count, const std::vector<std::byte*>& dst, int64_t* labels) override {
    // Decoding dominates: decode the images of a batch in parallel.
    std::vector<Status> status(static_cast<size_t>(count));
    const size_t bytes = slots_[0].sampleBytes;
#pragma omp parallel for schedule(dynamic, 1) if (count > 1)
    for (int64_t i = 0; i < count; ++i) {
      status[static_cast<size_t>(i)] =
          render(files_.files[static_cast<size_t>(first + i)], dst[0] + static_cast<size_t>(i) * bytes);
    }
    for (Status& s : status) WH_RETURN_IF_ERROR(s);
    if (labels != nullptr) std::copy_n(files_.labels.begin() + first, count, labels);
    return Status::ok();
  }
  std::string sampleId(int64_t i) const override { return relativeId(files_.files[static_cast<size_t>(i)], base_); }
  std::string details() const override {
    std::string s = files_.labelSource.empty() ? "no labels" : "labels from " + files_.labelSource;
    std::string spec = pre_.spec.toString();
    s += "; preprocess " + (spec.empty() ? std::string("none") : spec) + " -> " +
         std::string(ir::dataTypeName(pre_.dtype)) + " " + dimsText(slots_[0].sampleDims) + " " +
         std::string(layoutName(pre_.layout)) + " " + std::string(channelOrderName(pre_.channels));
    return s;
  }

 private:
  LabelledFiles files_;
  ResolvedPreprocess pre_;
  int width_;
  int height_;
  std::string base_;
};

// ---------------------------------------------------------------- raw samples (rawbin, mnist)

// Samples of H x W x C raw elements (uint8 or int8), from files or from one idx stream.
class RawImageDataset final : public Dataset {
 public:
  using Fetch = std::function<Status(int64_t index, std::vector<uint8_t>& bytes)>;

  RawImageDataset(DatasetKind kind, std::string path, int64_t size, std::vector<int64_t> labels, std::string labelSource,
                  Fetch fetch, std::function<std::string(int64_t)> id, int rawH, int rawW, int rawC,
                  ir::DataType rawType, SampleSlot slot, ResolvedPreprocess pre, int outW, int outH,
                  const std::vector<InputSpec>& inputs)
      : labels_(std::move(labels)), labelSource_(std::move(labelSource)), fetch_(std::move(fetch)), id_(std::move(id)),
        rawH_(rawH), rawW_(rawW), rawC_(rawC), rawType_(rawType), pre_(std::move(pre)), outW_(outW), outH_(outH) {
    kind_ = kind;
    path_ = std::move(path);
    size_ = size;
    slots_ = {std::move(slot)};
    hasLabels_ = !labels_.empty();
  }

  /// Whether the sample goes through the image steps (channel conversion, resize, crop).
  bool needsGeometry() const {
    return rawType_ == ir::DataType::kUint8 && (pre_.spec.hasGeometry() || pre_.outChannels != rawC_);
  }

 protected:
  Status readSamples(int64_t first, int64_t count, const std::vector<std::byte*>& dst, int64_t* labels) override {
    const size_t bytes = slots_[0].sampleBytes;
    std::vector<uint8_t> raw;
    for (int64_t i = 0; i < count; ++i) {
      WH_RETURN_IF_ERROR(fetch_(first + i, raw));
      std::byte* out = dst[0] + static_cast<size_t>(i) * bytes;
      if (needsGeometry()) {
        Image image{rawW_, rawH_, rawC_, raw};
        auto processed = applyGeometry(image, pre_);
        if (!processed.isOk()) return processed.status().withContext(id_(first + i));
        normalizePixels(processed->pixels.data(), ir::DataType::kUint8, processed->width, processed->height,
                        processed->channels, pre_, out);
      } else {
        normalizePixels(raw.data(), rawType_, rawW_, rawH_, rawC_, pre_, out);
      }
    }
    if (labels != nullptr) std::copy_n(labels_.begin() + first, count, labels);
    return Status::ok();
  }
  std::string sampleId(int64_t i) const override { return id_(i); }
  std::string details() const override {
    std::string s = labelSource_.empty() ? "no labels" : "labels from " + labelSource_;
    std::string spec = pre_.spec.toString();
    s += "; raw " + std::string(ir::dataTypeName(rawType_)) + " " + std::to_string(rawH_) + "x" + std::to_string(rawW_) +
         "x" + std::to_string(rawC_) + " HWC; preprocess " + (spec.empty() ? std::string("none") : spec) + " -> " +
         std::string(ir::dataTypeName(pre_.dtype)) + " " + dimsText(slots_[0].sampleDims);
    return s;
  }

 private:
  std::vector<int64_t> labels_;
  std::string labelSource_;
  Fetch fetch_;
  std::function<std::string(int64_t)> id_;
  int rawH_, rawW_, rawC_;
  ir::DataType rawType_;
  ResolvedPreprocess pre_;
  int outW_, outH_;
};

// Resolves preprocessing for raw H x W x C samples feeding `input` and builds the slot.
struct RawPlan {
  ResolvedPreprocess pre;
  SampleSlot slot;
  int outW = 0, outH = 0;
};

Expected<RawPlan> planRaw(const DatasetSpec& spec, const InputSpec& input, int rawH, int rawW, int rawC,
                          ir::DataType rawType, const std::string& label) {
  std::vector<int64_t> modelDims = modelSampleDims(input).value_or(std::vector<int64_t>{});
  RawPlan plan;
  WH_ASSIGN_OR_RETURN(plan.pre, resolvePreprocess(spec.preprocess, modelDims, input.dtype, rawC, label));
  if (rawC != 1 && rawC != 3) {
    if (spec.preprocess.hasGeometry() || plan.pre.outChannels != rawC) {
      return invalidInput(label + ": samples with " + std::to_string(rawC) +
                          " channels cannot be converted or resized (1 or 3 channels can)");
    }
  }
  if (rawType != ir::DataType::kUint8) {
    if (spec.preprocess.hasGeometry()) {
      return invalidInput(label + ": " + std::string(ir::dataTypeName(rawType)) +
                          " samples cannot be resized or cropped (only uint8 ones can)");
    }
    if (plan.pre.outChannels != rawC) {
      return invalidInput(label + ": " + std::string(ir::dataTypeName(rawType)) + " samples have " +
                          std::to_string(rawC) + " channel(s); cannot convert them to " +
                          std::to_string(plan.pre.outChannels));
    }
  }
  plan.outW = rawW;
  plan.outH = rawH;
  const PreprocessSpec& s = spec.preprocess;
  if (s.resizeShort > 0) shortSideSize(rawW, rawH, s.resizeShort, &plan.outW, &plan.outH);
  if (s.resizeWidth > 0) plan.outW = s.resizeWidth, plan.outH = s.resizeHeight;
  if (s.cropWidth > 0) {
    if (s.cropWidth > plan.outW || s.cropHeight > plan.outH) {
      return invalidInput(label + ": crop " + std::to_string(s.cropWidth) + "x" + std::to_string(s.cropHeight) +
                          " is larger than the " + std::to_string(plan.outW) + "x" + std::to_string(plan.outH) +
                          " samples");
    }
    plan.outW = s.cropWidth, plan.outH = s.cropHeight;
  }
  std::vector<int64_t> dims = plan.pre.sampleDims(plan.outW, plan.outH);
  // A model input of [N, H, W] takes one channel without a channel axis.
  if (modelDims.size() == 2 && plan.pre.outChannels == 1) dims = {plan.outH, plan.outW};
  WH_ASSIGN_OR_RETURN(plan.slot, fitSlot(input, plan.pre.dtype, dims, label));
  return plan;
}

}  // namespace

Expected<std::unique_ptr<Dataset>> openImages(const DatasetSpec& spec, const std::vector<InputSpec>& inputs) {
  WH_ASSIGN_OR_RETURN(const InputSpec* input, singleInput(inputs, spec.input, spec.path));
  std::error_code ec;
  std::vector<std::string> scanned;
  std::string folder = spec.path;
  std::string labelPath = spec.labels;
  if (fs::is_regular_file(spec.path, ec)) {
    scanned.push_back(spec.path);
    folder = fs::path(spec.path).parent_path().string();
  } else {
    for (const auto& e : fs::recursive_directory_iterator(spec.path, fs::directory_options::skip_permission_denied, ec)) {
      if (e.is_regular_file() && isImageFile(e.path().string())) scanned.push_back(e.path().string());
    }
    std::sort(scanned.begin(), scanned.end());
    if (labelPath.empty()) labelPath = findLabelFile(spec.path, {"labels.tsv", "labels.txt", "labels.csv", "y_labels.csv"});
    if (labelPath.empty()) {
      // ImageNet-style: images/ beside a labels.tsv that lists "images/FILE".
      fs::path folderPath(spec.path);
      if (!folderPath.has_filename()) folderPath = folderPath.parent_path();  // "images/"
      std::string parentLabels = findLabelFile(folderPath.parent_path().string(), {"labels.tsv"});
      if (!parentLabels.empty()) {
        auto lf = readLabelFile(parentLabels);
        if (lf.isOk() && lf->hasFiles()) labelPath = parentLabels;
      }
    }
  }
  if (scanned.empty()) return invalidInput(spec.path + ": no JPEG or PNG images (.jpg, .jpeg, .png) found");
  WH_ASSIGN_OR_RETURN(LabelledFiles files, pairWithLabels(std::move(scanned), labelPath, folder));
  applyLimit(files, spec.limit);
  if (files.files.empty()) return invalidInput(spec.path + ": no samples (limit=0?)");

  std::vector<int64_t> modelDims = modelSampleDims(*input).value_or(std::vector<int64_t>{});
  auto resolved = resolvePreprocess(spec.preprocess, modelDims, input->dtype, /*sourceChannels=*/3, spec.path);
  if (!resolved.isOk()) return resolved.status();
  ResolvedPreprocess pre = std::move(resolved).value();
  // The sample size: from the crop or exact resize, else from the first image.
  int width = 0, height = 0;
  const PreprocessSpec& s = spec.preprocess;
  if (s.cropWidth > 0) {
    width = s.cropWidth, height = s.cropHeight;
  } else if (s.resizeWidth > 0) {
    width = s.resizeWidth, height = s.resizeHeight;
  } else {
    WH_ASSIGN_OR_RETURN(Image first, decodeImage(files.files.front()));
    auto processed = applyGeometry(first, pre);
    if (!processed.isOk()) return processed.status().withContext(files.files.front());
    width = processed->width, height = processed->height;
  }
  std::string source = "images in " + spec.path + " (preprocess: " + (s.toString().empty() ? "none" : s.toString()) + ")";
  std::vector<int64_t> dims = pre.sampleDims(width, height);
  // A model input of [N, H, W] takes one channel without a channel axis.
  if (modelDims.size() == 2 && pre.outChannels == 1) dims = {height, width};
  WH_ASSIGN_OR_RETURN(SampleSlot slot, fitSlot(*input, pre.dtype, dims, source));
  auto dataset = std::make_unique<ImageDataset>(spec.path, std::move(files), std::move(slot), std::move(pre), width,
                                                height, inputs);
  return std::unique_ptr<Dataset>(std::move(dataset));
}

Expected<std::unique_ptr<Dataset>> openRawBin(const DatasetSpec& spec, const std::vector<InputSpec>& inputs) {
  WH_ASSIGN_OR_RETURN(const InputSpec* input, singleInput(inputs, spec.input, spec.path));
  if (!fs::is_directory(spec.path)) return invalidInput(spec.path + ": a rawbin data set is a folder of .bin files");
  std::vector<std::string> scanned;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spec.path, ec)) {
    if (e.is_regular_file() && extensionOf(e.path().string()) == ".bin") scanned.push_back(e.path().string());
  }
  std::sort(scanned.begin(), scanned.end());
  if (scanned.empty()) return invalidInput(spec.path + ": no .bin files");
  std::string labelPath = spec.labels.empty() ? findLabelFile(spec.path, {"y_labels.csv", "labels.tsv", "labels.txt"})
                                              : spec.labels;
  WH_ASSIGN_OR_RETURN(LabelledFiles files, pairWithLabels(std::move(scanned), labelPath, spec.path));
  applyLimit(files, spec.limit);
  if (files.files.empty()) return invalidInput(spec.path + ": no samples (limit=0?)");

  // The raw sample shape: given (HxWxC), else the model's.
  int64_t h = -1, w = -1, c = -1;
  if (!spec.rawShape.empty()) {
    h = spec.rawShape[0], w = spec.rawShape[1], c = spec.rawShape.size() == 3 ? spec.rawShape[2] : 1;
  } else {
    std::vector<int64_t> modelDims = modelSampleDims(*input).value_or(std::vector<int64_t>{});
    auto probe = resolvePreprocess(spec.preprocess, modelDims, input->dtype, /*sourceChannels=*/3, spec.path);
    if (!probe.isOk()) return probe.status();
    modelGeometry(modelDims, probe->layout, &h, &w, &c);
    if (h <= 0 || w <= 0 || c <= 0) {
      return invalidInput(spec.path + ": cannot take the raw sample shape from input '" + input->name + "' " +
                          (input->dims ? dimsText(*input->dims) : std::string("(unknown shape)")) +
                          "; give it (shape=HxWxC)");
    }
  }
  const size_t sampleBytes = static_cast<size_t>(h * w * c) * ir::elementSize(spec.rawType);
  const int64_t firstSize = fileSize(files.files.front());
  if (firstSize < 0) return notFound(files.files.front() + ": no such file");
  if (static_cast<size_t>(firstSize) != sampleBytes) {
    return invalidInput(files.files.front() + ": has " + std::to_string(firstSize) + " bytes, but a " +
                        std::string(ir::dataTypeName(spec.rawType)) + " " + std::to_string(h) + "x" + std::to_string(w) +
                        "x" + std::to_string(c) + " sample has " + std::to_string(sampleBytes) +
                        " (give shape=HxWxC and dtype=uint8|int8)");
  }
  auto planned = planRaw(spec, *input, static_cast<int>(h), static_cast<int>(w), static_cast<int>(c), spec.rawType,
                         "raw samples in " + spec.path);
  if (!planned.isOk()) return planned.status();
  RawPlan plan = std::move(planned).value();
  auto fileList = std::make_shared<std::vector<std::string>>(files.files);
  auto fetch = [fileList, sampleBytes](int64_t i, std::vector<uint8_t>& bytes) -> Status {
    const std::string& file = (*fileList)[static_cast<size_t>(i)];
    WH_ASSIGN_OR_RETURN(std::string data, readFile(file));
    if (data.size() != sampleBytes) {
      return invalidInput(file + ": has " + std::to_string(data.size()) + " bytes, expected " +
                          std::to_string(sampleBytes) + " like the other samples");
    }
    bytes.assign(data.begin(), data.end());
    return Status::ok();
  };
  auto id = [fileList](int64_t i) { return fs::path((*fileList)[static_cast<size_t>(i)]).filename().string(); };
  int64_t size = static_cast<int64_t>(files.files.size());
  return std::unique_ptr<Dataset>(new RawImageDataset(
      DatasetKind::kRawBin, spec.path, size, std::move(files.labels), files.labelSource, fetch, id, static_cast<int>(h),
      static_cast<int>(w), static_cast<int>(c), spec.rawType, std::move(plan.slot), std::move(plan.pre), plan.outW,
      plan.outH, inputs));
}

Expected<std::unique_ptr<Dataset>> openMnist(const DatasetSpec& spec, const std::vector<InputSpec>& inputs) {
  WH_ASSIGN_OR_RETURN(const InputSpec* input, singleInput(inputs, spec.input, spec.path));
  std::string imagesPath = spec.path;
  if (fs::is_directory(spec.path)) {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(spec.path, ec)) {
      std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.find("images-idx3") != std::string::npos) found.push_back(e.path().string());
    }
    std::sort(found.begin(), found.end());
    if (found.empty()) return invalidInput(spec.path + ": no *-images-idx3-ubyte[.gz] file");
    if (found.size() > 1) {
      auto t10k = std::find_if(found.begin(), found.end(),
                               [](const std::string& f) { return fs::path(f).filename().string().rfind("t10k", 0) == 0; });
      if (t10k == found.end()) {
        return invalidInput(spec.path + ": has several idx image files; give one of them as the path");
      }
      imagesPath = *t10k;
    } else {
      imagesPath = found.front();
    }
  }
  WH_ASSIGN_OR_RETURN(IdxHeader header, readIdxHeader(imagesPath));
  if (header.typeCode != 0x08 || (header.dims.size() != 3 && header.dims.size() != 4)) {
    return invalidInput(imagesPath + ": expected uint8 images [N,H,W] or [N,H,W,C] (idx magic 0x803), got type 0x" +
                        std::to_string(header.typeCode) + " with " + std::to_string(header.dims.size()) + " dims");
  }
  int64_t n = header.dims[0], h = header.dims[1], w = header.dims[2], c = header.dims.size() == 4 ? header.dims[3] : 1;
  if (h <= 0 || w <= 0 || c <= 0 || h * w * c > (int64_t{1} << 30)) return invalidInput(imagesPath + ": bad image dims");
  int64_t size = spec.limit >= 0 ? std::min(n, spec.limit) : n;

  std::vector<int64_t> labels;
  std::string labelSource = spec.labels;
  if (labelSource.empty()) {
    std::string name = fs::path(imagesPath).filename().string();
    size_t pos = name.find("images-idx3");
    std::string candidate = (fs::path(imagesPath).parent_path() / (name.substr(0, pos) + "labels-idx1" + name.substr(pos + 11))).string();
    if (fs::is_regular_file(candidate)) labelSource = candidate;
  }
  if (!labelSource.empty()) {
    if (labelSource.find("idx1") != std::string::npos) {
      WH_ASSIGN_OR_RETURN(labels, readIdxLabels(labelSource));
      if (static_cast<int64_t>(labels.size()) < size) {
        return invalidInput(labelSource + ": has " + std::to_string(labels.size()) + " labels, but " + imagesPath +
                            " has " + std::to_string(n) + " images");
      }
      labels.resize(static_cast<size_t>(size));
    } else {
      WH_ASSIGN_OR_RETURN(labels, labelsInOrder(labelSource, size, imagesPath));
    }
  }
  auto planned = planRaw(spec, *input, static_cast<int>(h), static_cast<int>(w), static_cast<int>(c),
                         ir::DataType::kUint8, "MNIST images in " + imagesPath);
  if (!planned.isOk()) return planned.status();
  RawPlan plan = std::move(planned).value();
  WH_ASSIGN_OR_RETURN(auto sourcePtr, openByteSource(imagesPath));
  std::shared_ptr<ByteSource> source = std::move(sourcePtr);
  const size_t sampleBytes = static_cast<size_t>(h * w * c);
  const uint64_t offset = header.dataOffset;
  auto fetch = [source, sampleBytes, offset](int64_t i, std::vector<uint8_t>& bytes) -> Status {
    bytes.resize(sampleBytes);
    return source->readAt(offset + static_cast<uint64_t>(i) * sampleBytes, bytes.data(), sampleBytes);
  };
  std::string base = fs::path(imagesPath).filename().string();
  auto id = [base](int64_t i) { return base + "[" + std::to_string(i) + "]"; };
  return std::unique_ptr<Dataset>(new RawImageDataset(DatasetKind::kMnist, imagesPath, size, std::move(labels),
                                                      labelSource, fetch, id, static_cast<int>(h), static_cast<int>(w),
                                                      static_cast<int>(c), ir::DataType::kUint8, std::move(plan.slot),
                                                      std::move(plan.pre), plan.outW, plan.outH, inputs));
}

}  // namespace whittle::data::detail
