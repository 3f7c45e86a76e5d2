// The tuner's reference and measurement (src/tune/measure.h).
#include "tune/measure.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <thread>

#include "whittle/eval/evaluator.h"
#include "whittle/eval/latency.h"
#include "whittle/eval/metrics.h"
#include "whittle/runtime/session.h"
#include "tune/peaks.h"

namespace whittle::tune {
namespace {

using Clock = std::chrono::steady_clock;

bool isNumeric(ir::DataType t) { return t != ir::DataType::kString && t != ir::DataType::kUndefined; }

/// C when `dims` is [rows, C] or [rows, C, 1, ...] with C >= 2, else 0 (the evaluator's rule).
int64_t classCount(const std::vector<int64_t>& dims, int64_t rows) {
  if (dims.size() < 2 || dims[0] != rows || dims[1] < 2) return 0;
  for (size_t i = 2; i < dims.size(); ++i) {
    if (dims[i] != 1) return 0;
  }
  return dims[1];
}

/// Elements of the real samples of a batch padded to `rows`.
int64_t realElements(const ir::Tensor& t, int64_t rows, int64_t count) {
  if (t.rank() >= 1 && t.dims()[0] == rows && count < rows && rows > 0) return t.numel() / rows * count;
  return t.numel();
}

/// The elements of `values` in channels first..last (spec) of `layout`'s axis, in order.
template <typename Layout>
std::vector<float> channelSlice(const std::vector<float>& values, const Layout& layout, const ScoreSpec& spec) {
  const auto c = static_cast<size_t>(std::max<int64_t>(layout.channels, 1));
  const auto inner = static_cast<size_t>(std::max<int64_t>(layout.inner, 1));
  const auto first = static_cast<size_t>(spec.firstChannel);
  const size_t last = spec.lastChannel < 0 ? c - 1 : static_cast<size_t>(spec.lastChannel);
  std::vector<float> out;
  out.reserve(values.size() / c * (last - first + 1));
  for (size_t row = 0; row + c * inner <= values.size(); row += c * inner) {
    out.insert(out.end(), values.begin() + static_cast<ptrdiff_t>(row + first * inner),
               values.begin() + static_cast<ptrdiff_t>(row + (last + 1) * inner));
  }
  return out;
}

/// The accumulators of one measurement.
struct Accumulators {
  std::vector<eval::ErrorAccumulator> error;
  std::vector<eval::ChannelErrorAccumulator> channel;
  eval::ThresholdF1Accumulator scoreF1;  ///< the cell specs
  PeakF1Accumulator scorePeaks;          ///< the peak specs (pooled with the cells into one F1)
  eval::ErrorAccumulator scoreError;
  bool scored = false;
  eval::BoxF1Accumulator boxes;                  ///< --detections
  bool decoded = false;
  std::vector<size_t> decoderReads;  ///< the outputs the decoder reads (decodedSqnrDb)
  eval::ClassificationAccumulator classes;
  int64_t samples = 0;
  double seconds = 0;
  std::vector<uint8_t> correct, agrees;  ///< per sample of the class output

  explicit Accumulators(size_t outputs) : error(outputs), channel(outputs) {}

  Metrics metrics(const std::vector<std::string>& names, bool labels, int classOutput) const {
    Metrics m;
    m.samples = samples;
    m.outputSqnrDb = std::numeric_limits<double>::infinity();
    m.minChannelSqnrDb = std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < error.size(); ++k) {
      if (error[k].count() == 0) continue;
      double s = error[k].sqnrDb();
      if (std::isnan(s)) s = -std::numeric_limits<double>::infinity();
      m.outputSqnrDb = std::min(m.outputSqnrDb, s);
      auto [c, which] = channel[k].channels() > 1 ? channel[k].minSqnrDb() : std::pair<double, int64_t>{s, 0};
      double worst = std::min(c, s);
      if (m.worstOutput.empty() || worst < m.minChannelSqnrDb) {
        m.minChannelSqnrDb = worst;
        m.worstOutput = names[k];
        m.worstChannel = c <= s ? which : -1;
      }
    }
    m.classSqnrDb = m.outputSqnrDb;
    if (classOutput >= 0 && static_cast<size_t>(classOutput) < error.size() && error[static_cast<size_t>(classOutput)].count() > 0) {
      const double s = error[static_cast<size_t>(classOutput)].sqnrDb();
      m.classSqnrDb = std::isnan(s) ? -std::numeric_limits<double>::infinity() : s;
    }
    if (scored) {
      m.scoreF1Pct = eval::f1Pct(scoreF1.bothPositive() + scorePeaks.matched(),
                                 scoreF1.referencePositives() + scorePeaks.referencePeaks(),
                                 scoreF1.testPositives() + scorePeaks.testPeaks());
      const double s = scoreError.sqnrDb();
      m.scoreSqnrDb = std::isnan(s) ? -std::numeric_limits<double>::infinity() : s;
    }
    if (decoded) {
      m.boxF1Pct = boxes.f1Pct();
      m.decodedSqnrDb = std::numeric_limits<double>::infinity();
      for (size_t k : decoderReads) {
        if (k >= error.size() || error[k].count() == 0) continue;
        const double s = error[k].sqnrDb();
        m.decodedSqnrDb = std::min(m.decodedSqnrDb, std::isnan(s) ? -std::numeric_limits<double>::infinity() : s);
      }
    }
    if (classes.pairs() > 0) m.agreementPct = classes.agreement() * 100.0;
    if (labels && classes.labelled() > 0) m.top1Pct = classes.top1Optimized() * 100.0;
    m.msPerSample = samples > 0 ? seconds * 1000.0 / static_cast<double>(samples) : 0.0;
    m.agrees = agrees;
    // Flips are counted sample by sample, so only a label for every sample gives a usable vector.
    if (labels && correct.size() == agrees.size()) m.correct = correct;
    return m;
  }
};

}  // namespace

std::vector<int64_t> spreadOrder(int64_t batches) {
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(std::max<int64_t>(batches, 0)));
  int64_t stride = 1;
  while (stride * stride < batches) ++stride;
  for (int64_t r = 0; r < stride; ++r) {
    for (int64_t b = r; b < batches; b += stride) order.push_back(b);
  }
  return order;
}

Expected<data::Batch> Reference::batch(size_t index) {
  if (index < cached_.size()) return cached_[index];
  const int64_t start = order_.at(index) * batchSize_;
  std::lock_guard<std::mutex> lock(readMutex_);
  return data_->read(start, std::min(batchSize_, samples_ - start));
}

Expected<std::unique_ptr<Reference>> Reference::build(const ir::Model& floatModel, const data::DatasetSpec& spec,
                                                      int threads, int64_t cacheBytes) {
  auto ref = std::unique_ptr<Reference>(new Reference());
  auto opened = data::openDataset(spec, data::inputSpecs(*floatModel.graph));
  if (!opened.isOk()) return opened.status().withContext("--eval");
  ref->data_ = std::move(opened).value();
  data::Dataset& ds = *ref->data_;
  if (ds.size() == 0) return invalidInput("--eval " + ds.path() + ": the data set has no samples");
  ref->samples_ = ds.size();
  ref->hasLabels_ = ds.hasLabels();

  runtime::SessionOptions so;
  so.threads = std::max(1, threads);
  auto created = runtime::Session::create(floatModel, so);
  if (!created.isOk()) return created.status().withContext("the float model");
  runtime::Session& session = **created;

  int64_t batch = ds.fixedBatch() ? *ds.fixedBatch() : std::min<int64_t>(8, ds.size());
  if (batch > 1 && !ds.fixedBatch()) {
    WH_ASSIGN_OR_RETURN(data::Batch probe, ds.read(0, batch));
    if (!session.run(probe.inputs).isOk()) {
      batch = 1;
      ref->notes.push_back("evaluated at batch 1: the model failed at batch 8 (its graph likely fixes the batch)");
    }
  }
  ref->batchSize_ = batch;
  const int64_t batches = (ds.size() + batch - 1) / batch;
  // Batches are kept in spreadOrder(): the first ones (the ranking samples) reach across the data
  // set rather than its first files, which may be one part of it (sorted by class, say).
  ref->order_ = spreadOrder(batches);
  const int64_t outputBytes = cacheBytes / 4, inputBytes = cacheBytes - outputBytes;
  ref->outs_ = std::make_unique<OutputStore>(outputBytes);
  Accumulators own(0);
  // Outputs shaped as class scores ([N, C], [N, C, 1, ...]): with labels, the one whose float
  // top-1 is highest holds the classes (a classifier may also return an embedding of the same
  // shape before its logits); without labels, the first.
  std::vector<std::pair<size_t, int64_t>> candidates;  // output, classes
  std::vector<int64_t> correct;
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = ref->order_[static_cast<size_t>(b)] * batch;
    WH_ASSIGN_OR_RETURN(data::Batch in, ds.read(first, std::min(batch, ds.size() - first)));
    int64_t rows = eval::samplesPerRun(in, ds.fixedBatch());
    auto start = Clock::now();
    auto outs = session.run(in.inputs);
    if (!outs.isOk()) return outs.status().withContext("the float model on --eval sample " + std::to_string(first));
    own.seconds += std::chrono::duration<double>(Clock::now() - start).count();
    own.samples += in.count;
    if (b == 0) {
      for (size_t k = 0; k < outs->size(); ++k) {
        const ir::Tensor& t = (*outs)[k].second;
        ref->outputNames_.push_back((*outs)[k].first);
        ref->dims_.push_back(t.dims());
        ref->channels_.push_back(eval::channelLayout(t.dims(), t.rank() - 1));
        int64_t c = isNumeric(t.dtype()) ? classCount(t.dims(), rows) : 0;
        if (c > 0) candidates.emplace_back(k, c);
      }
      correct.assign(candidates.size(), 0);
    }
    std::vector<std::vector<float>> kept;
    for (size_t k = 0; k < outs->size(); ++k) {
      const ir::Tensor& t = (*outs)[k].second;
      if (!isNumeric(t.dtype())) {
        kept.emplace_back();
        continue;
      }
      kept.push_back(eval::floatValues(t, realElements(t, rows, in.count)));
    }
    std::vector<int64_t> labels(in.labels.begin(), in.labels.begin() + std::min<ptrdiff_t>(in.labels.size(), in.count));
    for (size_t i = 0; i < candidates.size() && ref->hasLabels_; ++i) {
      const auto& scores = kept[candidates[i].first];
      const auto c = static_cast<size_t>(candidates[i].second);
      for (int64_t s = 0; s < in.count && (static_cast<size_t>(s) + 1) * c <= scores.size() &&
                          static_cast<size_t>(s) < labels.size();
           ++s) {
        const float* row = scores.data() + static_cast<size_t>(s) * c;
        correct[i] += std::max_element(row, row + c) - row == labels[static_cast<size_t>(s)];
      }
    }
    WH_RETURN_IF_ERROR(ref->outs_->append(std::move(kept)));
    ref->labels_.push_back(std::move(labels));
    ref->counts_.push_back(in.count);
    ref->rows_.push_back(rows);
    size_t bytes = 0;
    for (const auto& t : in.inputs) bytes += static_cast<size_t>(t.second.numel()) * ir::elementSize(t.second.dtype());
    if (static_cast<int64_t>(bytes) * batches <= inputBytes) ref->cached_.push_back(std::move(in));
  }
  if (!candidates.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < candidates.size(); ++i) {
      if (correct[i] > correct[best]) best = i;
    }
    ref->classOutput_ = static_cast<int>(candidates[best].first);
    ref->classes_ = candidates[best].second;
    if (best != 0) {
      ref->notes.push_back("class scores: output '" + ref->outputNames_[candidates[best].first] +
                           "' (its float top-1 is the highest of the " + std::to_string(candidates.size()) +
                           " outputs shaped [N, C])");
    }
    const auto c = static_cast<size_t>(ref->classes_);
    BatchOutputs scratch;
    for (size_t b = 0; b < ref->outs_->size(); ++b) {
      WH_ASSIGN_OR_RETURN(const BatchOutputs* outs, ref->outs_->get(b, scratch));
      const auto& scores = (*outs)[static_cast<size_t>(ref->classOutput_)];
      const auto& labels = ref->labels_[b];
      for (int64_t s = 0; s < ref->counts_[b] && (static_cast<size_t>(s) + 1) * c <= scores.size(); ++s) {
        int64_t label = static_cast<size_t>(s) < labels.size() ? labels[static_cast<size_t>(s)] : -1;
        if (label >= ref->classes_) ref->labelsFit_ = false;
        std::span<const float> row(scores.data() + static_cast<size_t>(s) * c, c);
        own.classes.add(row, {}, label < ref->classes_ ? label : -1);
      }
    }
  }
  if (static_cast<int64_t>(ref->cached_.size()) != batches) {
    ref->cached_.clear();
    ref->notes.push_back("the evaluation inputs do not fit the evaluation cache: every trial reads them again");
  }
  if (ref->outs_->fileBytes() > 0) {
    ref->notes.push_back("the float outputs past the evaluation cache (" + std::to_string(ref->outs_->fileBytes() >> 20) +
                         " MiB) are kept in a temporary file");
  }
  ref->own_ = own.metrics(ref->outputNames_, ref->hasLabels_, ref->classOutput_);
  if (own.classes.labelled() > 0) ref->own_.top1Pct = own.classes.top1Original() * 100.0;
  ref->own_.agreementPct.reset();
  ref->own_.outputSqnrDb = ref->own_.minChannelSqnrDb = std::numeric_limits<double>::infinity();
  return ref;
}

namespace {

/// The output named `name`, or an error for `flag` listing the outputs.
Expected<size_t> outputIndex(const std::vector<std::string>& names, const std::string& name, const std::string& flag) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return static_cast<size_t>(it - names.begin());
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "'" : ", '") + n + "'";
  return invalidInput(flag + ": the model has no output '" + name + "' (outputs: " + list + ")");
}

}  // namespace

Status Reference::setChannelAxes(const std::vector<ChannelAxisRule>& rules) {
  for (const ChannelAxisRule& r : rules) {
    if (!r.output.empty()) WH_RETURN_IF_ERROR(outputIndex(outputNames_, r.output, "--channel-axis " + r.text()).status());
  }
  for (size_t k = 0; k < outputNames_.size(); ++k) {
    WH_ASSIGN_OR_RETURN(int64_t axis, channelAxisOf(rules, outputNames_[k], dims_[k]));
    channels_[k] = eval::channelLayout(dims_[k], axis);
  }
  return Status::ok();
}

Status Reference::setScores(const std::vector<ScoreSpec>& specs) {
  std::vector<Scored> scored;
  int64_t positives = 0;
  for (const ScoreSpec& spec : specs) {
    WH_ASSIGN_OR_RETURN(size_t k, outputIndex(outputNames_, spec.output, "--scores " + spec.text()));
    const auto rank = static_cast<int64_t>(dims_[k].size());
    const int64_t axis = spec.axis < 0 ? spec.axis + rank : spec.axis;
    if (axis < 0 || axis >= std::max<int64_t>(rank, 1)) {
      return invalidInput("--scores " + spec.text() + ": output '" + spec.output + "' has rank " + std::to_string(rank) +
                          ", no axis " + std::to_string(spec.axis));
    }
    const Layout layout = eval::channelLayout(dims_[k], axis);
    const int64_t last = spec.lastChannel < 0 ? layout.channels - 1 : spec.lastChannel;
    if (last >= layout.channels) {
      return invalidInput("--scores " + spec.text() + ": output '" + spec.output + "' " + data::dimsText(dims_[k]) + " has " +
                          std::to_string(layout.channels) + " channel(s) along axis " + std::to_string(axis));
    }
    // Peaks: the map is the last two axes, the channel axis before them.
    int64_t height = 1, width = 1;
    if (spec.peakWindow > 0) {
      if (rank < 3 || axis >= rank - 2) {
        return invalidInput("--scores " + spec.text() + ": peaks need a map on the last two axes of output '" +
                            spec.output + "' and the channel axis before them; it is " + data::dimsText(dims_[k]) +
                            " with axis " + std::to_string(axis));
      }
      height = dims_[k][static_cast<size_t>(rank - 2)];
      width = dims_[k][static_cast<size_t>(rank - 1)];
    }
    eval::ThresholdF1Accumulator cells;
    PeakF1Accumulator peaks;
    BatchOutputs scratch;
    for (size_t b = 0; b < outs_->size(); ++b) {
      WH_ASSIGN_OR_RETURN(const BatchOutputs* batch, outs_->get(b, scratch));
      const std::vector<float> r = channelSlice((*batch)[k], layout, spec);
      if (spec.peakWindow > 0) {
        peaks.add(r, r, height, width, spec.threshold, spec.peakWindow, spec.peakRadius);
      } else {
        cells.add(r, r, spec.threshold);
      }
    }
    const int64_t own = spec.peakWindow > 0 ? peaks.referencePeaks() : cells.referencePositives();
    const std::string what = spec.peakWindow > 0 ? "peaks" : "scores";
    positives += own;
    notes.push_back("--scores " + spec.text() + ": " + std::to_string(own) + " float " + what +
                    " above the threshold on the --eval data" +
                    (own == 0 ? " (its int8 " + what + " above it count as false detections)" : ""));
    scored.push_back({spec, k, layout, height, width});
  }
  if (positives == 0) {
    std::string texts;
    for (const ScoreSpec& spec : specs) texts += (texts.empty() ? "" : " ") + spec.text();
    return invalidInput("--scores " + texts +
                        ": no score of the float model is above the threshold on the --eval data (an F1 over no "
                        "detection says nothing)");
  }
  scores_ = std::move(scored);
  return Status::ok();
}

std::vector<std::vector<int64_t>> Reference::batchDims(size_t b) const {
  std::vector<std::vector<int64_t>> dims = dims_;
  for (auto& d : dims) {
    if (!d.empty() && !rows_.empty() && d[0] == rows_[0]) d[0] = rows_[b];
  }
  return dims;
}

Status Reference::setDetections(const std::string& path) {
  WH_ASSIGN_OR_RETURN(decoder_, DetectionDecoder::load(path, outputNames_));
  decoded_.clear();
  int64_t boxes = 0;
  BatchOutputs scratch;
  for (size_t b = 0; b < outs_->size(); ++b) {
    WH_ASSIGN_OR_RETURN(const BatchOutputs* batch, outs_->get(b, scratch));
    std::vector<eval::Detections> samples;
    for (int64_t s = 0; s < counts_[b]; ++s) {
      auto det = decoder_->decode(*batch, batchDims(b), rows_[b], s);
      if (!det.isOk()) return det.status().withContext("the float model's outputs of --eval sample " +
                                                       std::to_string(b * static_cast<size_t>(batchSize_) + static_cast<size_t>(s)));
      boxes += static_cast<int64_t>(det->size());
      samples.push_back(std::move(det).value());
    }
    decoded_.push_back(std::move(samples));
  }
  if (boxes == 0) {
    decoder_.reset();
    decoded_.clear();
    return invalidInput("--detections " + path +
                        ": the decoder finds no detection in the float model's outputs on the --eval data (an F1 over "
                        "no box says nothing)");
  }
  notes.push_back("--detections " + path + ": " + std::to_string(boxes) + " float detections on the " +
                  std::to_string(samples_) + " --eval samples");
  return Status::ok();
}

Expected<Reference::Measured> Reference::measure(const ir::Model& model, int64_t firstSamples, bool firstOnly,
                                                 int threads, int workers) {
  runtime::SessionOptions so;
  so.threads = std::max(1, threads);
  const size_t outputs = outputNames_.size();
  // The batches this measurement reads: all, or (firstOnly) those up to firstSamples samples.
  size_t needed = outs_->size();
  if (firstOnly) {
    int64_t seen = 0;
    for (size_t b = 0; b < outs_->size(); ++b) {
      seen += counts_[b];
      if (seen >= firstSamples) {
        needed = b + 1;
        break;
      }
    }
  }
  Accumulators acc(outputs);
  if (decoder_) acc.decoderReads = decoder_->reads();
  Measured result;
  bool firstDone = false;
  BatchOutputs scratch;
  // Adds batch `b`'s outputs of the quantized model.
  auto accumulate = [&](size_t b, const std::vector<runtime::NamedTensor>& outs, double seconds) -> Status {
    acc.seconds += seconds;
    if (outs.size() != outputs) return internalError("the quantized model returned another number of outputs");
    WH_ASSIGN_OR_RETURN(const BatchOutputs* reference, outs_->get(b, scratch));
    for (size_t k = 0; k < outputs; ++k) {
      const std::vector<float>& r = (*reference)[k];
      if (r.empty()) continue;
      const ir::Tensor& t = outs[k].second;
      if (!isNumeric(t.dtype()) || t.numel() < static_cast<int64_t>(r.size())) {
        return invalidInput("output '" + outputNames_[k] + "': the quantized model gives " + data::dimsText(t.dims()));
      }
      std::vector<float> q = eval::floatValues(t, static_cast<int64_t>(r.size()));
      acc.error[k].add(r, q);
      const Layout& layout = channels_[k];
      if (layout.channels > 1 && static_cast<int64_t>(r.size()) % (layout.channels * layout.inner) == 0) {
        acc.channel[k].add(r, q, layout.channels, layout.inner);
      }
      for (const Scored& s : scores_) {
        if (s.output != k) continue;
        const std::vector<float> rs = channelSlice(r, s.layout, s.spec), qs = channelSlice(q, s.layout, s.spec);
        if (s.spec.peakWindow > 0) {
          acc.scorePeaks.add(rs, qs, s.height, s.width, s.spec.threshold, s.spec.peakWindow, s.spec.peakRadius);
        } else {
          acc.scoreF1.add(rs, qs, s.spec.threshold);
        }
        acc.scoreError.add(rs, qs);
        acc.scored = true;
      }
      if (static_cast<int>(k) == classOutput_) {
        const auto c = static_cast<size_t>(classes_);
        for (int64_t s = 0; s < counts_[b] && (static_cast<size_t>(s) + 1) * c <= r.size(); ++s) {
          const auto& labels = labels_[b];
          int64_t label = static_cast<size_t>(s) < labels.size() ? labels[static_cast<size_t>(s)] : -1;
          std::span<const float> rowR(r.data() + static_cast<size_t>(s) * c, c);
          std::span<const float> rowQ(q.data() + static_cast<size_t>(s) * c, c);
          acc.classes.add(rowR, rowQ, label < classes_ ? label : -1);
          const auto topQ = std::max_element(rowQ.begin(), rowQ.end()) - rowQ.begin();
          const auto topR = std::max_element(rowR.begin(), rowR.end()) - rowR.begin();
          acc.agrees.push_back(topQ == topR ? 1 : 0);
          if (label >= 0 && label < classes_) acc.correct.push_back(topQ == label ? 1 : 0);
        }
      }
    }
    if (decoder_) {
      std::vector<std::vector<float>> q(outputs);
      for (size_t k : decoder_->reads()) q[k] = eval::floatValues(outs[k].second, static_cast<int64_t>((*reference)[k].size()));
      for (int64_t s = 0; s < counts_[b]; ++s) {
        WH_ASSIGN_OR_RETURN(eval::Detections det, decoder_->decode(q, batchDims(b), rows_[b], s));
        acc.boxes.add(decoded_[b][static_cast<size_t>(s)], det);
      }
      acc.decoded = true;
    }
    acc.samples += counts_[b];
    if (!firstDone && acc.samples >= firstSamples) {
      result.first = acc.metrics(outputNames_, hasLabels_ && labelsFit_, classOutput_);
      firstDone = true;
    }
    return Status::ok();
  };
  // One batch run: its outputs and time, or what went wrong.
  struct Slot {
    bool ready = false;
    Status status;
    std::vector<runtime::NamedTensor> outs;
    double seconds = 0;
  };
  auto runBatch = [&](runtime::Session& session, size_t b) {
    Slot slot;
    auto in = batch(b);
    if (!in.isOk()) {
      slot.status = in.status();
      return slot;
    }
    auto start = Clock::now();
    auto outs = session.run(in->inputs);
    slot.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (outs.isOk()) {
      slot.outs = std::move(outs).value();
    } else {
      slot.status = outs.status().withContext("the quantized model");
    }
    return slot;
  };

  const size_t team = std::min<size_t>(static_cast<size_t>(std::max(1, workers)), needed);
  if (team <= 1) {
    auto created = runtime::Session::create(model, so);
    if (!created.isOk()) return created.status().withContext("the quantized model");
    for (size_t b = 0; b < needed; ++b) {
      Slot slot = runBatch(**created, b);
      WH_RETURN_IF_ERROR(slot.status);
      WH_RETURN_IF_ERROR(accumulate(b, slot.outs, slot.seconds));
    }
  } else {
    // Worker w runs batches w, w + team, ... on its own session, at most 2 x team batches ahead
    // of the accumulation; this thread takes them in order. An error stops the workers before
    // they are joined.
    std::vector<Slot> slots(needed);
    std::mutex mutex;
    std::condition_variable changed;
    size_t accumulated = 0;
    bool stop = false;
    auto work = [&](size_t w) {
      auto created = runtime::Session::create(model, so);
      for (size_t b = w; b < needed; b += team) {
        {
          std::unique_lock<std::mutex> lock(mutex);
          changed.wait(lock, [&] { return stop || b < accumulated + 2 * team; });
          if (stop) return;
        }
        Slot slot;
        if (created.isOk()) {
          slot = runBatch(**created, b);
        } else {
          slot.status = created.status().withContext("the quantized model");
        }
        const bool ok = slot.status.isOk();
        slot.ready = true;
        {
          std::lock_guard<std::mutex> lock(mutex);
          slots[b] = std::move(slot);
        }
        changed.notify_all();
        if (!ok) return;
      }
    };
    std::vector<std::thread> crew;
    for (size_t w = 0; w < team; ++w) crew.emplace_back(work, w);
    auto halt = [&] {
      {
        std::lock_guard<std::mutex> lock(mutex);
        stop = true;
      }
      changed.notify_all();
      for (auto& t : crew) t.join();
    };
    for (size_t b = 0; b < needed; ++b) {
      Slot slot;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return slots[b].ready; });
        slot = std::move(slots[b]);
      }
      const Status status = slot.status.isOk() ? accumulate(b, slot.outs, slot.seconds) : slot.status;
      {
        std::lock_guard<std::mutex> lock(mutex);
        accumulated = b + 1;
      }
      changed.notify_all();
      if (!status.isOk()) {
        halt();
        return status;
      }
    }
    halt();
  }
  // `needed` stopped at the first samples when that is all that was asked.
  if (firstOnly && firstDone) return result;
  result.full = acc.metrics(outputNames_, hasLabels_ && labelsFit_, classOutput_);
  if (!firstDone) result.first = result.full;
  return result;
}

}  // namespace whittle::tune
