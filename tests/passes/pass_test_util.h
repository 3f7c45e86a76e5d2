#pragma once
// Shared by the pass tests: run a pipeline on a copy of a model, check the verifier, and
// compare the model before and after on the runtime with seeded random inputs.
//
//   ir::Model model = b.build(17);
//   auto run = testing::runPipelineOn(model, "fuse-conv-bn");
//   CHECK(testing::opTypes(*run.after.graph) == std::vector<std::string>{"Conv"});
//   testing::requireSameOutputs(model, run.after);

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "support/graph_builder.h"
#include "support/kernel_harness.h"
#include "support/tolerance.h"
#include "whittle/ir/verifier.h"
#include "whittle/passes/pass_manager.h"
#include "whittle/runtime/session.h"

namespace whittle::testing {

/// Exact rewrites must match within this norm-relative error (STYLE.md: 1e-5 relative).
constexpr double kExactRelativeTolerance = 1e-5;

/// A model before and after a pipeline, with the pipeline's statistics.
struct PipelineRun {
  ir::Model after;
  std::vector<passes::PassStats> stats;
  /// Rewrites summed over the pipeline's passes.
  int64_t rewrites() const {
    int64_t n = 0;
    for (const auto& s : stats) n += s.rewrites;
    return n;
  }
};

/// Runs the pipeline `text` on a copy of `model`; REQUIREs that it parses, runs and leaves a
/// graph that passes ir::verify.
inline PipelineRun runPipelineOn(const ir::Model& model, const std::string& text) {
  auto pipeline = passes::parsePipeline(text);
  INFO(pipeline.status().message());
  REQUIRE(pipeline.isOk());
  PipelineRun run{model.clone(), {}};
  passes::PassContext ctx(run.after);
  passes::PipelineRunOptions options;
  options.verifyEach = true;
  auto stats = passes::runPipeline(run.after, *pipeline, ctx, options);
  INFO(stats.status().message());
  REQUIRE(stats.isOk());
  run.stats = std::move(stats).value();
  Status verified = ir::verify(*run.after.graph);
  INFO(verified.message());
  REQUIRE(verified.isOk());
  return run;
}

/// Seeded random feeds for every graph input without an initializer: float types uniform in
/// [lo, hi), integer types in [0, 3]. Unknown or symbolic dims become 1.
inline std::vector<runtime::NamedTensor> randomFeeds(const ir::Model& model, uint64_t seed, double lo = -1.0,
                                                     double hi = 1.0) {
  GraphBuilder rng(seed);
  std::vector<runtime::NamedTensor> feeds;
  for (const ir::Value* in : model.graph->inputs()) {
    if (in->isInitializer()) continue;
    std::vector<int64_t> dims;
    if (in->type().shape) {
      for (const ir::Dim& d : *in->type().shape) dims.push_back(d.isKnown() ? d.value : 1);
    }
    bool isFloat = in->dtype() == ir::DataType::kFloat || in->dtype() == ir::DataType::kFloat16 ||
                   in->dtype() == ir::DataType::kDouble;
    feeds.emplace_back(in->name(), rng.randomTensor(in->dtype(), dims, isFloat ? lo : 0, isFloat ? hi : 3));
  }
  return feeds;
}

/// Runs `before` and `after` on the same seeded random inputs and checks that they give the
/// same outputs (same names, dtypes, dims) within `tolerance` norm-relative error.
inline void requireSameOutputs(const ir::Model& before, const ir::Model& after,
                               double tolerance = kExactRelativeTolerance, uint64_t seed = 1234, double lo = -1.0,
                               double hi = 1.0) {
  std::vector<runtime::NamedTensor> feeds = randomFeeds(before, seed, lo, hi);
  auto expected = runModel(before, feeds);
  auto actual = runModel(after, feeds);
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("output " << expected[i].first);
    CHECK(actual[i].first == expected[i].first);
    REQUIRE(actual[i].second.dtype() == expected[i].second.dtype());
    REQUIRE(actual[i].second.dims() == expected[i].second.dims());
    double err = normRelativeError(actual[i].second, expected[i].second);
    CAPTURE(err);
    CHECK(err <= tolerance);
  }
}

/// The graph as text (nodes, inputs, outputs, attributes), for "left unchanged" checks.
inline std::string graphText(const ir::Model& model) {
  return passes::dumpGraph(*model.graph);
}

/// Runs `pipeline` and REQUIREs that it changed nothing: no rewrites, the same graph text.
inline void requireUnchanged(const ir::Model& model, const std::string& pipeline) {
  PipelineRun run = runPipelineOn(model, pipeline);
  CHECK(run.rewrites() == 0);
  CHECK(graphText(run.after) == graphText(model));
}

/// The names of the graph inputs (without initializers) and outputs, for interface checks.
inline std::vector<std::string> interfaceNames(const ir::Model& model) {
  std::vector<std::string> names;
  for (const ir::Value* v : model.graph->inputs()) names.push_back("in:" + v->name());
  for (const ir::Value* v : model.graph->outputs()) names.push_back("out:" + v->name());
  return names;
}

}  // namespace whittle::testing
