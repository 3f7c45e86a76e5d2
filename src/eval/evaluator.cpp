// The evaluator: both sessions on the same batches, metrics accumulated as the batches stream.
#include "whittle/eval/evaluator.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "whittle/eval/metrics.h"

namespace whittle::eval {
namespace {

bool isFloatType(ir::DataType t) {
  return t == ir::DataType::kFloat || t == ir::DataType::kFloat16 || t == ir::DataType::kBFloat16 ||
         t == ir::DataType::kDouble;
}

bool isNumeric(ir::DataType t) { return t != ir::DataType::kString && t != ir::DataType::kUndefined; }

/// Elements of the real samples: a tensor whose first dim is the padded batch keeps `count` rows.
int64_t realElements(const ir::Tensor& t, int64_t paddedRows, int64_t count) {
  if (t.rank() >= 1 && t.dims()[0] == paddedRows && count < paddedRows && paddedRows > 0) {
    return t.numel() / paddedRows * count;
  }
  return t.numel();
}

/// C when `dims` is [N, C] or [N, C, 1, ...] with N == rows and C >= 2, else 0.
int64_t classCount(std::span<const int64_t> dims, int64_t rows) {
  if (dims.size() < 2 || dims[0] != rows || dims[1] < 2) return 0;
  for (size_t i = 2; i < dims.size(); ++i) {
    if (dims[i] != 1) return 0;
  }
  return dims[1];
}

}  // namespace

namespace {

/// Output error, with the per-channel SQNR read along `axis` of the output (fixed from its
/// first batch; -1: one channel). A later batch whose channel count differs (a dynamic dim on
/// that axis) ends the per-channel measure: it is not defined then.
class ErrorMetric final : public MetricAccumulator {
 public:
  ErrorMetric(int64_t axis, Status error) : axis_(axis), error_(std::move(error)) {}
  Status add(const OutputBatch& batch) override {
    if (!error_.isOk()) return error_;
    acc_.add(batch.original, batch.optimized);
    const ChannelLayout l = channelLayout(batch.dims, axis_);
    if (!channelsChanged_ && (channels_.channels() == 0 || channels_.channels() == l.channels) &&
        batch.original.size() % static_cast<size_t>(l.channels * l.inner) == 0) {
      channels_.add(batch.original, batch.optimized, l.channels, l.inner);
    } else {
      channelsChanged_ = true;
    }
    return Status::ok();
  }
  void finish(OutputMetrics& m) const override {
    m.elements = acc_.count();
    m.cosine = acc_.cosine();
    m.sqnrDb = acc_.sqnrDb();
    m.maxAbsError = acc_.maxAbsError();
    m.meanAbsError = acc_.meanAbsError();
    m.channels = channelsChanged_ ? 1 : std::max<int64_t>(1, channels_.channels());
    if (m.channels > 1) {
      auto [sqnr, channel] = channels_.minSqnrDb();
      m.minChannelSqnrDb = sqnr;
      m.minChannel = channel;
      m.channelAxis = axis_;
    } else {
      m.minChannelSqnrDb = m.sqnrDb;
      m.minChannel = m.elements > 0 ? 0 : -1;
    }
  }

 private:
  int64_t axis_;
  Status error_;
  ErrorAccumulator acc_;
  ChannelErrorAccumulator channels_;
  bool channelsChanged_ = false;
};

class ClassificationMetric final : public MetricAccumulator {
 public:
  explicit ClassificationMetric(int64_t classes) : classes_(classes) {}
  Status add(const OutputBatch& batch) override {
    // A batch whose output is not one row of C scores per sample (a dynamic shape) is skipped.
    if (classCount(batch.dims, batch.rows) != classes_) return Status::ok();
    const auto c = static_cast<size_t>(classes_);
    for (int64_t s = 0; s < batch.count; ++s) {
      const auto at = static_cast<size_t>(s) * c;
      int64_t label = static_cast<size_t>(s) < batch.labels.size() ? batch.labels[static_cast<size_t>(s)] : -1;
      if (label >= classes_) labelsFit_ = false;
      std::span<const float> optimized = batch.optimized.empty() ? batch.optimized : batch.optimized.subspan(at, c);
      acc_.add(batch.original.subspan(at, c), optimized, label < classes_ ? label : -1);
    }
    return Status::ok();
  }
  void finish(OutputMetrics& m) const override {
    m.classScores = true;
    m.classes = classes_;
    if (acc_.samples() == 0) return;
    if (acc_.pairs() > 0) m.agreement = acc_.agreement();
    m.hasAccuracy = labelsFit_ && acc_.labelled() > 0;
    if (m.hasAccuracy) {
      m.top1Original = acc_.top1Original();
      m.top5Original = acc_.top5Original();
      m.top1Optimized = acc_.top1Optimized();
      m.top5Optimized = acc_.top5Optimized();
    }
  }

 private:
  int64_t classes_;
  bool labelsFit_ = true;
  ClassificationAccumulator acc_;
};

std::string specText(const data::InputSpec& s) {
  return "'" + s.name + "' " + std::string(ir::dataTypeName(s.dtype)) + (s.dims ? " " + data::dimsText(*s.dims) : "");
}

/// The graph outputs among a session's results (every result not named in `layers`) and the
/// layer tensors by name.
struct SplitResults {
  std::vector<const runtime::NamedTensor*> outputs;
  std::unordered_map<std::string, const ir::Tensor*> layers;
};

SplitResults split(const std::vector<runtime::NamedTensor>& results, const std::unordered_set<std::string>& layers) {
  SplitResults s;
  for (const auto& r : results) {
    if (layers.contains(r.first)) {
      s.layers[r.first] = &r.second;
    } else {
      s.outputs.push_back(&r);
    }
  }
  return s;
}

}  // namespace

MetricFactory errorMetric(std::vector<ChannelAxisRule> channelAxes) {
  return [rules = std::move(channelAxes)](const OutputInfo& output) -> std::unique_ptr<MetricAccumulator> {
    if (!output.paired) return nullptr;
    // An axis outside this output's rank is an error at its first batch, naming the rule.
    auto axis = channelAxisOf(rules, output.name, output.dims);
    if (!axis.isOk()) return std::make_unique<ErrorMetric>(-1, axis.status());
    return std::make_unique<ErrorMetric>(output.dims.size() >= 2 ? *axis : -1, Status::ok());
  };
}

MetricFactory classificationMetric() {
  return [](const OutputInfo& output) -> std::unique_ptr<MetricAccumulator> {
    int64_t classes = isNumeric(output.dtype) ? classCount(output.dims, output.rows) : 0;
    if (classes == 0) return nullptr;
    return std::make_unique<ClassificationMetric>(classes);
  };
}

MetricFactory classificationMetric(const std::string& output) {
  return [output, all = classificationMetric()](const OutputInfo& info) -> std::unique_ptr<MetricAccumulator> {
    return info.name == output ? all(info) : nullptr;
  };
}

std::vector<MetricFactory> defaultMetrics() { return {errorMetric(), classificationMetric()}; }

namespace {

class PerplexityMetric final : public MetricAccumulator {
 public:
  PerplexityMetric(std::string name, std::string tokensInput, bool paired)
      : name_(std::move(name)), tokensInput_(std::move(tokensInput)), paired_(paired) {}

  Status add(const OutputBatch& batch) override {
    const ir::Tensor* ids = nullptr;
    if (batch.inputs != nullptr) {
      for (const auto& in : *batch.inputs) {
        if (in.first == tokensInput_) ids = &in.second;
      }
    }
    if (ids == nullptr) {
      return invalidInput("perplexity of output '" + name_ + "': the model has no input '" + tokensInput_ +
                          "' holding the token ids");
    }
    if (batch.dims.size() != 3 || ids->rank() != 2 || ids->dims()[1] != batch.dims[1] ||
        (ids->dtype() != ir::DataType::kInt64 && ids->dtype() != ir::DataType::kInt32)) {
      return invalidInput("perplexity of output '" + name_ + "': expected logits [batch, seq, vocab] and int64 " +
                          tokensInput_ + " [batch, seq], got " + data::dimsText(std::vector<int64_t>(batch.dims.begin(), batch.dims.end())) +
                          " and " + std::string(ir::dataTypeName(ids->dtype())) + " " + data::dimsText(ids->dims()));
    }
    const int64_t seq = batch.dims[1], vocab = batch.dims[2];
    std::vector<int64_t> tokens(static_cast<size_t>(batch.count * seq));
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int64_t>(ids->valueAsDouble(static_cast<int64_t>(i)));
    if (!original_.add(batch.original, tokens, batch.count, seq, vocab) ||
        (paired_ && !optimized_.add(batch.optimized, tokens, batch.count, seq, vocab))) {
      return invalidInput("perplexity of output '" + name_ + "': a token id in '" + tokensInput_ +
                          "' is outside the vocabulary of " + std::to_string(vocab));
    }
    return Status::ok();
  }

  void finish(OutputMetrics& metrics) const override {
    if (original_.count() == 0) return;
    metrics.perplexityOriginal = original_.perplexity();
    if (paired_) metrics.perplexityOptimized = optimized_.perplexity();
    metrics.perplexityTokens = original_.count();
  }

 private:
  std::string name_, tokensInput_;
  bool paired_;
  PerplexityAccumulator original_, optimized_;
};

}  // namespace

MetricFactory perplexityMetric(const std::string& tokensInput, const std::string& output) {
  return [tokensInput, output](const OutputInfo& info) -> std::unique_ptr<MetricAccumulator> {
    if (!output.empty() && info.name != output) return nullptr;
    if (!isNumeric(info.dtype) || info.dims.size() != 3) return nullptr;
    return std::make_unique<PerplexityMetric>(info.name, tokensInput, info.paired);
  };
}

namespace {

/// Runs `session` and returns its tensor outputs (then the extra outputs). An output that is
/// not a tensor (ZipMap's sequence of maps beside a classifier's label) is left out and named in
/// `skipped`, so that the others are still compared.
Expected<std::vector<runtime::NamedTensor>> runTensors(runtime::Session& session,
                                                       const std::vector<runtime::NamedTensor>& inputs,
                                                       std::vector<std::string>& skipped) {
  std::vector<runtime::NamedValue> feeds(inputs.begin(), inputs.end());  // tensors share their bytes
  WH_ASSIGN_OR_RETURN(std::vector<runtime::NamedValue> values, session.runValues(feeds));
  std::vector<runtime::NamedTensor> out;
  for (auto& [name, value] : values) {
    if (value.isTensor()) {
      out.emplace_back(name, value.tensor());
    } else if (std::find(skipped.begin(), skipped.end(), name) == skipped.end()) {
      skipped.push_back(name);
    }
  }
  return out;
}

}  // namespace

Evaluator::Evaluator(runtime::Session& original, runtime::Session* optimized, EvalOptions options)
    : original_(original), optimized_(optimized), options_(std::move(options)) {}

Expected<EvalResult> Evaluator::run(data::Dataset& dataset) {
  if (dataset.size() == 0) return invalidInput(dataset.path() + ": the data set has no samples");
  if (optimized_ == nullptr && !options_.layers.empty()) {
    return invalidInput("a per-layer comparison needs two sessions, an original and an optimized one");
  }
  EvalResult result;
  result.hasLabels = dataset.hasLabels();
  int64_t batch = dataset.fixedBatch() ? *dataset.fixedBatch() : std::max<int64_t>(1, options_.batchSize);
  batch = std::min(batch, dataset.fixedBatch() ? batch : dataset.size());

  // Models whose input declares a free batch dimension but whose graph pins batch 1 (a Reshape
  // to [1,...], common in detector exports) fail at a larger batch: probe the first batch, and
  // on failure run everything at batch 1 if that works, with a note.
  if (batch > 1 && !dataset.fixedBatch()) {
    WH_ASSIGN_OR_RETURN(data::Batch probe, dataset.read(0, batch));
    std::vector<std::string> ignored;
    Status failed = runTensors(original_, probe.inputs, ignored).status();
    if (failed.isOk() && optimized_ != nullptr) failed = runTensors(*optimized_, probe.inputs, ignored).status();
    if (!failed.isOk()) {
      WH_ASSIGN_OR_RETURN(data::Batch one, dataset.read(0, 1));
      if (!runTensors(original_, one.inputs, ignored).isOk() ||
          (optimized_ != nullptr && !runTensors(*optimized_, one.inputs, ignored).isOk())) {
        return failed;
      }
      result.notes.push_back("ran at batch 1: at batch " + std::to_string(batch) + " the model failed (" +
                             failed.message() +
                             "); its graph likely fixes the batch size although its input leaves it free");
      batch = 1;
    }
  }
  result.batch = batch;

  std::unordered_set<std::string> layerNamesA, layerNamesB;
  for (const auto& l : options_.layers) {
    layerNamesA.insert(l.tensor);
    layerNamesB.insert(l.optimizedTensor);
  }
  std::vector<ErrorAccumulator> layerErr(options_.layers.size());
  std::vector<bool> layerFloat(options_.layers.size(), true);
  std::vector<OutputMetrics> outputs;
  std::vector<std::vector<std::unique_ptr<MetricAccumulator>>> metrics;
  const bool paired = optimized_ != nullptr;
  const std::string phase = options_.layers.empty() ? "accuracy" : "accuracy + per-layer";

  dataset.reset();
  int64_t done = 0;
  std::vector<std::string> skipped;  // outputs that are not tensors: not compared
  for (;;) {
    WH_ASSIGN_OR_RETURN(data::Batch b, dataset.next(batch));
    if (b.empty()) break;
    int64_t rows = samplesPerRun(b, dataset.fixedBatch());
    WH_ASSIGN_OR_RETURN(auto resA, runTensors(original_, b.inputs, skipped));
    std::vector<runtime::NamedTensor> resB;
    if (paired) {
      std::vector<std::string> skippedB;
      WH_ASSIGN_OR_RETURN(resB, runTensors(*optimized_, b.inputs, skippedB));
    }
    SplitResults a = split(resA, layerNamesA);
    SplitResults o = split(resB, layerNamesB);
    if (done == 0) {
      if (paired && a.outputs.size() != o.outputs.size()) {
        return invalidInput("the models have different outputs: the original has " + std::to_string(a.outputs.size()) +
                            ", the optimized " + std::to_string(o.outputs.size()));
      }
      outputs.resize(a.outputs.size());
      metrics.resize(a.outputs.size());
      for (size_t k = 0; k < a.outputs.size(); ++k) {
        const ir::Tensor& t = a.outputs[k]->second;
        outputs[k].name = a.outputs[k]->first;
        outputs[k].dims = t.dims();
        OutputInfo info{k, a.outputs[k]->first, t.dtype(), t.dims(), rows, paired};
        for (const MetricFactory& make : options_.metrics) {
          if (auto m = make(info)) metrics[k].push_back(std::move(m));
        }
      }
    } else if (a.outputs.size() != outputs.size() || (paired && o.outputs.size() != outputs.size())) {
      return internalError("the session returned too few outputs");
    }
    std::span<const int64_t> labels(b.labels.data(), std::min(b.labels.size(), static_cast<size_t>(b.count)));
    for (size_t k = 0; k < outputs.size(); ++k) {
      const ir::Tensor& ta = a.outputs[k]->second;
      const ir::Tensor* tb = paired ? &o.outputs[k]->second : nullptr;
      if (!isNumeric(ta.dtype()) || (tb != nullptr && !isNumeric(tb->dtype()))) continue;
      if (tb != nullptr && ta.numel() != tb->numel()) {
        return invalidInput("output '" + outputs[k].name + "': the original gives " + data::dimsText(ta.dims()) +
                            ", the optimized " + data::dimsText(tb->dims()) + " ('" + o.outputs[k]->first + "')");
      }
      int64_t n = realElements(ta, rows, b.count);
      std::vector<float> fa = floatValues(ta, n);
      std::vector<float> fb = tb != nullptr ? floatValues(*tb, n) : std::vector<float>{};
      OutputBatch ob{k, ta.dims(), rows, b.count, fa, fb, labels, &b.inputs};
      for (auto& m : metrics[k]) WH_RETURN_IF_ERROR(m->add(ob));
    }
    for (size_t l = 0; l < options_.layers.size(); ++l) {
      auto ia = a.layers.find(options_.layers[l].tensor);
      auto ib = o.layers.find(options_.layers[l].optimizedTensor);
      if (ia == a.layers.end() || ib == o.layers.end()) {
        return internalError("per-layer: the session did not return '" + options_.layers[l].tensor + "'");
      }
      const ir::Tensor& ta = *ia->second;
      const ir::Tensor& tb = *ib->second;
      if (!isFloatType(ta.dtype()) || !isNumeric(tb.dtype()) || ta.numel() != tb.numel()) {
        layerFloat[l] = false;
        continue;
      }
      int64_t n = realElements(ta, rows, b.count);
      layerErr[l].add(floatValues(ta, n), floatValues(tb, n));
    }
    done += b.count;
    if (options_.progress) options_.progress(phase, done, dataset.size());
  }
  result.samples = done;
  for (const std::string& name : skipped) {
    result.notes.push_back("output '" + name + "' is not a tensor (a sequence or map, as ZipMap writes): not compared");
  }

  for (size_t k = 0; k < outputs.size(); ++k) {
    for (const auto& m : metrics[k]) m->finish(outputs[k]);
  }
  result.outputs = std::move(outputs);
  for (size_t l = 0; l < options_.layers.size(); ++l) {
    if (!layerFloat[l] || layerErr[l].count() == 0) continue;
    LayerMetrics layer = options_.layers[l];
    layer.sqnrDb = layerErr[l].sqnrDb();
    layer.cosine = layerErr[l].cosine();
    layer.maxAbsError = layerErr[l].maxAbsError();
    result.layers.push_back(std::move(layer));
  }
  return result;
}

Status checkSameInputs(const ir::Graph& original, const ir::Graph& optimized) {
  std::vector<data::InputSpec> a = data::inputSpecs(original);
  std::vector<data::InputSpec> b = data::inputSpecs(optimized);
  auto list = [](const std::vector<data::InputSpec>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + specText(x);
    return s;
  };
  bool same = a.size() == b.size();
  for (size_t i = 0; same && i < a.size(); ++i) {
    const data::InputSpec* match = nullptr;
    for (const auto& y : b) {
      if (y.name == a[i].name) match = &y;
    }
    if (match == nullptr || match->dtype != a[i].dtype) {
      same = false;
      break;
    }
    if (a[i].dims && match->dims) {
      same = a[i].dims->size() == match->dims->size();
      for (size_t d = 0; same && d < a[i].dims->size(); ++d) {
        const ir::Dim& x = (*a[i].dims)[d];
        const ir::Dim& y = (*match->dims)[d];
        same = !(x.isKnown() && y.isKnown()) || x.value == y.value;
      }
    }
  }
  if (same) return Status::ok();
  return invalidInput("the models have different inputs: original " + list(a) + "; optimized " + list(b));
}

}  // namespace whittle::eval
