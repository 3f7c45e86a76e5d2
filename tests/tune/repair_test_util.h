#pragma once
// Shared by the tests of the tuner's repairs (bias correction, equalization): a calibration
// provider over seeded inputs whose ranges can be clipped on purpose, and the output error of a
// quantized model against its float one.

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "passes/calib_test_util.h"

namespace whittle::testing {

/// Runs the model on `samples` seeded inputs uniform in [lo, hi]; observe() returns each
/// tensor's [min, max] with max scaled by `clip` (< 1 clips the top of every range but the
/// graph outputs', whose clipping no bias before them can undo).
class SeededProvider final : public quant::CalibrationProvider {
 public:
  SeededProvider(double lo, double hi, double clip = 1.0, int samples = 16) : lo_(lo), hi_(hi), clip_(clip), samples_(samples) {}
  Expected<quant::CalibrationTable> observe(const ir::Model& model, const std::vector<std::string>& tensors) override {
    std::map<std::string, std::pair<float, float>> range;
    auto visit = [&](const std::string& name, const ir::Tensor& t) {
      auto& r = range.try_emplace(name, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()).first->second;
      for (int64_t i = 0; i < t.numel(); ++i) {
        r.first = std::min(r.first, t.data<float>()[i]);
        r.second = std::max(r.second, t.data<float>()[i]);
      }
    };
    WH_RETURN_IF_ERROR(run(model, tensors, visit));
    quant::CalibrationTable table;
    std::set<std::string> outputs;
    for (const ir::Value* v : model.graph->outputs()) outputs.insert(v->name());
    for (const std::string& name : tensors) {
      auto it = range.find(name);
      if (it == range.end()) return invalidInput("no tensor '" + name + "'");
      quant::Observation o;
      o.min = it->second.first;
      o.max = it->second.second * static_cast<float>(outputs.contains(name) ? 1.0 : clip_);
      o.samples = samples_;
      table.tensors[name] = o;
    }
    return table;
  }
  Expected<int64_t> collect(const ir::Model& model, const std::map<std::string, quant::TensorCollector*>& collectors) override {
    std::vector<std::string> names;
    for (const auto& [name, c] : collectors) names.push_back(name);
    Status failed = Status::ok();
    WH_RETURN_IF_ERROR(run(model, names, [&](const std::string& name, const ir::Tensor& t) {
      if (failed.isOk()) failed = collectors.at(name)->collect(name, t, 1);
    }));
    WH_RETURN_IF_ERROR(failed);
    return samples_;
  }

 private:
  template <typename Visit>
  Status run(const ir::Model& model, const std::vector<std::string>& tensors, Visit visit) {
    runtime::SessionOptions so;
    std::set<std::string> inputs;
    for (const ir::Value* v : model.graph->inputs()) inputs.insert(v->name());
    for (const std::string& t : tensors) {
      if (!inputs.contains(t)) so.extraOutputs.push_back(t);
    }
    WH_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
    for (int s = 0; s < samples_; ++s) {
      auto feeds = randomFeeds(model, 500 + static_cast<uint64_t>(s), lo_, hi_);
      WH_ASSIGN_OR_RETURN(auto outs, session->run(feeds));
      for (const auto& list : {outs, feeds}) {
        for (const auto& [name, t] : list) {
          if (std::find(tensors.begin(), tensors.end(), name) != tensors.end()) visit(name, t);
        }
      }
    }
    return Status::ok();
  }
  double lo_, hi_, clip_;
  int samples_;
};

/// The error of `quantized` against `reference` (first output, [N, C, ...]) on `samples` seeded
/// inputs other than the calibration ones.
struct OutputError {
  double meanShift = 0;  ///< mean over channels of |mean error of the channel|
  double mse = 0;
};

inline OutputError outputError(const ir::Model& reference, const ir::Model& quantized, double lo, double hi,
                               int samples = 8) {
  OutputError e;
  std::vector<double> shift;
  int64_t count = 0, perChannel = 0;
  for (int s = 0; s < samples; ++s) {
    auto feeds = randomFeeds(reference, 900 + static_cast<uint64_t>(s), lo, hi);
    auto want = runModel(reference, feeds);
    auto got = runModel(quantized, feeds);
    const ir::Tensor& a = want[0].second;
    const ir::Tensor& b = got[0].second;
    REQUIRE(a.numel() == b.numel());
    const int64_t c = a.dims()[1], inner = a.numel() / (a.dims()[0] * c);
    shift.resize(static_cast<size_t>(c), 0.0);
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double d = static_cast<double>(b.data<float>()[i]) - a.data<float>()[i];
      shift[static_cast<size_t>((i / inner) % c)] += d;
      e.mse += d * d;
    }
    count += a.numel();
    perChannel += a.numel() / c;
  }
  for (double v : shift) e.meanShift += std::abs(v / static_cast<double>(perChannel)) / static_cast<double>(shift.size());
  e.mse /= static_cast<double>(count);
  return e;
}

}  // namespace whittle::testing
