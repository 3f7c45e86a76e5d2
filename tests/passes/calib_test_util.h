#pragma once
// Shared by the pass tests that need calibration data: a provider that runs the model on
// seeded random inputs (one input channel made loud, as transformer activations have), and a
// pipeline runner with a provider.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "passes/pass_test_util.h"
#include "whittle/quant/calibration.h"
#include "whittle/runtime/session.h"

namespace whittle::testing {

/// randomFeeds with channel `loud` (the last axis; none when < 0) of every float input
/// multiplied by `gain`.
inline std::vector<runtime::NamedTensor> loudFeeds(const ir::Model& model, uint64_t seed, int loud, float gain) {
  auto feeds = randomFeeds(model, seed);
  for (auto& [name, t] : feeds) {
    if (loud < 0 || t.dtype() != ir::DataType::kFloat) continue;
    float* d = t.mutableData<float>();
    const int64_t k = t.dims().back();
    for (int64_t i = loud; i < t.numel(); i += k) d[i] *= gain;
  }
  return feeds;
}

// Feeds every collector the tensors of 24 seeded random runs of the model (loudFeeds); input
// channel `loud` (if >= 0) of every float input is `gain` times louder.
class RandomInputsProvider final : public quant::CalibrationProvider {
 public:
  explicit RandomInputsProvider(int loud = -1, float gain = 30.0f) : loud_(loud), gain_(gain) {}
  Expected<quant::CalibrationTable> observe(const ir::Model&, const std::vector<std::string>&) override {
    return invalidInput("this provider collects statistics only, no ranges");
  }
  Expected<int64_t> collect(const ir::Model& model, const std::map<std::string, quant::TensorCollector*>& collectors) override {
    lastModel_ = &model;
    runtime::SessionOptions so;
    for (const auto& [name, c] : collectors) so.extraOutputs.push_back(name);
    WH_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
    constexpr int kSamples = 24;
    for (int s = 0; s < kSamples; ++s) {
      auto feeds = loudFeeds(model, 100 + static_cast<uint64_t>(s), loud_, gain_);
      WH_ASSIGN_OR_RETURN(auto outs, session->run(feeds));
      for (const auto& [name, t] : outs) {
        auto it = collectors.find(name);
        if (it != collectors.end()) WH_RETURN_IF_ERROR(it->second->collect(name, t, 1));
      }
      for (const auto& [name, t] : feeds) {
        auto it = collectors.find(name);
        if (it != collectors.end()) WH_RETURN_IF_ERROR(it->second->collect(name, t, 1));
      }
    }
    ++calls;
    return kSamples;
  }
  /// The first `count` of the same seeded runs, for the model collect() last ran (passes
  /// collect statistics before they sample feeds).
  Expected<std::vector<std::vector<std::pair<std::string, ir::Tensor>>>> sampleFeeds(int64_t count) override {
    if (lastModel_ == nullptr) return invalidInput("RandomInputsProvider: sampleFeeds before collect");
    std::vector<std::vector<std::pair<std::string, ir::Tensor>>> feeds;
    for (int64_t s = 0; s < std::min<int64_t>(count, 24); ++s) {
      feeds.push_back(loudFeeds(*lastModel_, 100 + static_cast<uint64_t>(s), loud_, gain_));
    }
    return feeds;
  }
  int calls = 0;

 private:
  int loud_;
  float gain_;
  const ir::Model* lastModel_ = nullptr;
};

/// The norm-relative error of `model`'s first output against `reference`'s on 8 seeded
/// feeds (loudFeeds), sqrt(sum (y - r)^2 / sum r^2).
inline double loudOutputError(const ir::Model& reference, const ir::Model& model, int loud, float gain) {
  auto a = runtime::Session::create(reference);
  auto b = runtime::Session::create(model);
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  double num = 0, den = 0;
  for (uint64_t seed = 500; seed < 508; ++seed) {
    auto feeds = loudFeeds(reference, seed, loud, gain);
    auto ya = (*a)->run(feeds);
    auto yb = (*b)->run(feeds);
    REQUIRE(ya.isOk());
    REQUIRE(yb.isOk());
    auto va = ya->front().second.values<float>(), vb = yb->front().second.values<float>();
    for (size_t i = 0; i < va.size(); ++i) {
      num += (va[i] - vb[i]) * (va[i] - vb[i]);
      den += va[i] * va[i];
    }
  }
  return std::sqrt(num / den);
}

inline Expected<std::vector<passes::PassStats>> runWith(ir::Model& model, const std::string& pipeline,
                                                        quant::CalibrationProvider* provider = nullptr) {
  WH_ASSIGN_OR_RETURN(auto p, passes::parsePipeline(pipeline));
  passes::PassContext ctx(model);
  ctx.calibration = provider;
  return passes::runPipeline(model, p, ctx, {});
}

}  // namespace whittle::testing
