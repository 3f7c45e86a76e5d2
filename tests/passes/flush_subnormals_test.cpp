// flush-subnormals: subnormal weights set to zero, outputs unchanged, part of -O1.
#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>

#include "passes/pass_test_util.h"
#include "whittle/ir/fold.h"
#include "whittle/passes/registry.h"

using namespace whittle;
using ir::DataType;

TEST_CASE("flush-subnormals zeroes subnormal Conv weights and keeps the outputs", "[passes][flush-subnormals]") {
  // A trained weight that decayed: most of a 1x1 Conv's values are subnormal (PP-OCRv6's
  // detector has 63 % of one such weight subnormal).
  testing::GraphBuilder b(71);
  ir::Tensor w = b.randomTensor(DataType::kFloat, {8, 16, 1, 1});
  float* wd = w.mutableData<float>();
  for (int i = 0; i < 128; i += 2) wd[i] *= 1e-39f;
  REQUIRE(ir::countSubnormals(w) > 40);
  ir::Value* x = b.input("x", DataType::kFloat, {1, 16, 5, 5});
  b.output(b.node("Relu", {b.node("Conv", {x, b.constant("w", w), b.weight("b", {8})})}), DataType::kFloat,
           {1, 8, 5, 5});
  ir::Model model = b.build(13);
  int64_t subnormals = ir::countSubnormals(w);

  auto run = testing::runPipelineOn(model, "flush-subnormals");
  CHECK(run.rewrites() == 1);
  CHECK(run.stats[0].counters.at("subnormals-zeroed") == subnormals);
  const ir::Value* wAfter = run.after.graph->nodes()[0]->input(1);
  CHECK(ir::countSubnormals(*wAfter->constant()) == 0);
  CHECK(ir::countSubnormals(*model.graph->nodes()[0]->input(1)->constant()) == subnormals);  // the input model
  testing::requireSameOutputs(model, run.after);
  testing::requireUnchanged(run.after, "flush-subnormals");
}

TEST_CASE("flush-subnormals runs at -O1 and -O2, after the folds that can make subnormals", "[passes][flush-subnormals]") {
  for (int level : {1, 2}) {
    auto pipeline = passes::pipelineForLevel(level);
    auto at = std::find_if(pipeline.begin(), pipeline.end(),
                           [](const passes::PipelineEntry& e) { return e.info->name == "flush-subnormals"; });
    REQUIRE(at != pipeline.end());
    CHECK(at + 1 == pipeline.end());
  }
  auto o0 = passes::pipelineForLevel(0);
  CHECK(std::none_of(o0.begin(), o0.end(),
                     [](const passes::PipelineEntry& e) { return e.info->name == "flush-subnormals"; }));
}
