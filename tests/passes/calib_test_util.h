#pragma once
// Shared by the pass tests that need calibration data: a provider that runs the model on
// seeded random inputs (one input channel made loud, as transformer activations have), and a
// pipeline runner with a provider.

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
  int calls = 0;

 private:
  int loud_;
  float gain_;
};

inline Expected<std::vector<passes::PassStats>> runWith(ir::Model& model, const std::string& pipeline,
                                                        quant::CalibrationProvider* provider = nullptr) {
  WH_ASSIGN_OR_RETURN(auto p, passes::parsePipeline(pipeline));
  passes::PassContext ctx(model);
  ctx.calibration = provider;
  return passes::runPipeline(model, p, ctx, {});
}

}  // namespace whittle::testing
