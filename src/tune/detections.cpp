// The user's detection decoder run on whittle's runtime (src/tune/detections.h).
#include "tune/detections.h"

#include <algorithm>

#include "whittle/data/dataset.h"
#include "whittle/onnx_io/onnx_io.h"

namespace whittle::tune {
namespace {

const char* const kRoles[] = {"boxes [N, 4]", "scores [N]", "classes [N]"};

/// An error about tensor `name` of the decoder at `path`.
Status decoderError(const std::string& path, const std::string& what) {
  return invalidInput("--detections " + path + ": " + what);
}

/// Checks output `i` (role kRoles[i]) with dims `dims` (-1: unknown), written `text`.
Status checkOutput(const std::string& path, const std::string& name, size_t i, const std::vector<int64_t>& dims,
                   const std::string& text) {
  const size_t want = i == 0 ? 2 : 1;
  if (dims.size() != want || (i == 0 && dims[1] >= 0 && dims[1] != 4)) {
    return decoderError(path, "output '" + name + "' is " + text + ", expected " + kRoles[i] +
                                  " (the outputs are boxes, scores and optionally classes, in that order)");
  }
  return Status::ok();
}

}  // namespace

Expected<std::unique_ptr<DetectionDecoder>> DetectionDecoder::load(const std::string& path,
                                                                   const std::vector<std::string>& outputNames) {
  auto loaded = onnx_io::load(path);
  if (!loaded.isOk()) return loaded.status().withContext("--detections");
  ir::Model model = std::move(loaded).value();
  auto d = std::unique_ptr<DetectionDecoder>(new DetectionDecoder());
  d->path_ = path;
  std::string list;
  for (const auto& n : outputNames) list += (list.empty() ? "'" : ", '") + n + "'";
  for (const ir::Value* in : model.graph->inputs()) {
    if (in->isInitializer()) continue;
    const auto it = std::find(outputNames.begin(), outputNames.end(), in->name());
    if (it == outputNames.end()) {
      return decoderError(path, "input '" + in->name() + "' is not an output of the model (outputs: " + list + ")");
    }
    if (in->dtype() != ir::DataType::kFloat) {
      return decoderError(path, "input '" + in->name() + "' is " + std::string(ir::dataTypeName(in->dtype())) +
                                    "; the model's outputs reach the decoder as float");
    }
    d->reads_.push_back(static_cast<size_t>(it - outputNames.begin()));
    d->inputNames_.push_back(in->name());
  }
  if (d->reads_.empty()) return decoderError(path, "the decoder reads no output of the model (outputs: " + list + ")");
  const auto& outs = model.graph->outputs();
  if (outs.size() < 2 || outs.size() > 3) {
    return decoderError(path, "the decoder has " + std::to_string(outs.size()) +
                                  " output(s); expected boxes [N, 4], scores [N] and optionally classes [N]");
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    d->outputNames_.push_back(outs[i]->name());
    const auto& shape = outs[i]->type().shape;
    if (!shape) continue;  // rank unknown: checked on the first run
    std::vector<int64_t> dims;
    for (const ir::Dim& dim : *shape) dims.push_back(dim.isKnown() ? dim.value : -1);
    WH_RETURN_IF_ERROR(checkOutput(path, outs[i]->name(), i, dims, data::dimsText(*shape)));
  }
  runtime::SessionOptions so;
  so.threads = 1;
  auto session = runtime::Session::create(model, so);
  if (!session.isOk()) return session.status().withContext("--detections " + path);
  d->session_ = std::move(session).value();
  return d;
}

Expected<eval::Detections> DetectionDecoder::decode(const std::vector<std::vector<float>>& outputs,
                                                    const std::vector<std::vector<int64_t>>& dims, int64_t rows,
                                                    int64_t sample) {
  std::vector<runtime::NamedTensor> feeds;
  for (size_t i = 0; i < reads_.size(); ++i) {
    const size_t k = reads_[i];
    const std::vector<float>& all = outputs[k];
    std::vector<int64_t> shape = dims[k];
    size_t begin = 0, count = all.size();
    if (rows > 1) {
      if (shape.empty() || shape[0] != rows) {
        return decoderError(path_, "output '" + inputNames_[i] + "' " + data::dimsText(shape) +
                                       " has no batch axis of " + std::to_string(rows) +
                                       " samples: the decoder runs one sample at a time (evaluate at batch 1)");
      }
      count = all.size() / static_cast<size_t>(std::max<int64_t>(rows, 1));
      begin = count * static_cast<size_t>(sample);
      shape[0] = 1;
    }
    if (begin + count > all.size()) return internalError("DetectionDecoder: sample past the batch");
    std::vector<float> values(all.begin() + static_cast<ptrdiff_t>(begin),
                              all.begin() + static_cast<ptrdiff_t>(begin + count));
    feeds.emplace_back(inputNames_[i], ir::Tensor::fromVector(ir::DataType::kFloat, shape, values));
  }
  auto ran = session_->run(feeds);
  if (!ran.isOk()) return ran.status().withContext("--detections " + path_);
  eval::Detections det;
  for (size_t i = 0; i < ran->size() && i < outputNames_.size(); ++i) {
    const ir::Tensor& t = (*ran)[i].second;
    WH_RETURN_IF_ERROR(checkOutput(path_, outputNames_[i], i, t.dims(), data::dimsText(t.dims())));
    if (t.dtype() == ir::DataType::kString) {
      return decoderError(path_, "output '" + outputNames_[i] + "' is a string tensor, expected " + kRoles[i]);
    }
    std::vector<float> v = eval::floatValues(t);
    if (i == 0) {
      det.boxes = std::move(v);
    } else if (i == 1) {
      det.scores = std::move(v);
    } else {
      det.classes.assign(v.begin(), v.end());
    }
  }
  const size_t n = det.scores.size();
  if (det.boxes.size() != 4 * n || (!det.classes.empty() && det.classes.size() != n) ||
      (outputNames_.size() == 3 && det.classes.size() != n)) {
    return decoderError(path_, "outputs '" + outputNames_[0] + "' (" + std::to_string(det.boxes.size() / 4) +
                                   " boxes) and '" + outputNames_[1] + "' (" + std::to_string(n) +
                                   " scores)" + (outputNames_.size() == 3 ? " and '" + outputNames_[2] + "'" : "") +
                                   " do not hold one entry per detection");
  }
  return det;
}

}  // namespace whittle::tune
