// The tuner's reference and measurement (src/tune/measure.cpp): per-channel SQNR and scores
// along a chosen axis.
#include "tune/measure.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "support/graph_builder.h"
#include "support/temp_dir.h"
#include "whittle/data/npy.h"

namespace whittle::tune {
namespace {

using testing::GraphBuilder;

/// x[N,3,4,5] (inputs in [0, 1]) + bias [1,3,1,1] = {20, 0, 30}: channels 0 and 2 are sizes in
/// the tens, channel 1 is a heatmap in 0..1, as CenterFace's [N, C, H, W] outputs. With
/// `collapse`, channel 1 is multiplied by 0 first (a planted collapse of that one channel).
ir::Model mapsModel(bool collapse) {
  GraphBuilder b(5);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat,
                                 {ir::Dim::symbolic("N"), ir::Dim::known(3), ir::Dim::known(4), ir::Dim::known(5)});
  ir::Value* h = x;
  if (collapse) h = b.node("Mul", {x, b.constant("mask", {1, 3, 1, 1}, {1.0f, 0.0f, 1.0f})}, {}, "mask");
  ir::Value* y = b.node("Add", {h, b.constant("bias", {1, 3, 1, 1}, {20.0f, 0.0f, 30.0f})}, {}, "add");
  b.output(y, ir::DataType::kFloat, {1, 3, 4, 5});
  ir::Model m = b.build(13);
  m.graph->outputs()[0]->mutableType().shape =
      std::vector<ir::Dim>{ir::Dim::symbolic("N"), ir::Dim::known(3), ir::Dim::known(4), ir::Dim::known(5)};
  return m;
}

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<Reference> ref;
  ir::Model collapsed = mapsModel(true);

  Fixture() {
    GraphBuilder data(9);
    REQUIRE(data::writeNpy(data.randomTensor(ir::DataType::kFloat, {12, 3, 4, 5}, 0, 1), dir.file("eval.npy")).isOk());
    data::DatasetSpec spec;
    spec.path = dir.file("eval.npy");
    auto built = Reference::build(mapsModel(false), spec, 1, int64_t{1} << 20);
    INFO(built.status().message());
    REQUIRE(built.isOk());
    ref = std::move(built).value();
  }
  /// The metrics with the score specs `texts` (parsed) set; the score F1 is there.
  Metrics measureScores(const std::vector<std::string>& texts) {
    std::vector<ScoreSpec> specs;
    for (const std::string& t : texts) {
      auto spec = parseScoreSpec(t);
      REQUIRE(spec.isOk());
      specs.push_back(*spec);
    }
    REQUIRE(ref->setScores(specs).isOk());
    Metrics m = measure();
    REQUIRE(m.scoreF1Pct.has_value());
    return m;
  }
  Metrics measure() {
    auto m = ref->measure(collapsed, 1000, false, 1);
    INFO(m.status().message());
    REQUIRE(m.isOk());
    return m->full;
  }
};

TEST_CASE("Reference: a collapsed channel of [N, C, H, W] shows on axis 1, not on the last axis", "[tune]") {
  Fixture f;
  // Default: the last axis (5 pixel columns), every column mixing the three maps: the collapse
  // hides behind the sizes.
  const Metrics last = f.measure();
  CHECK(last.minChannelSqnrDb > 25.0);
  CHECK(last.outputSqnrDb > 25.0);

  SECTION("axis 1, by number, from the end, or auto") {
    for (const char* rule : {"1", "-3", "auto", "add=1", "add=auto"}) {
      INFO(rule);
      auto parsed = parseChannelAxis(rule);
      REQUIRE(parsed.isOk());
      REQUIRE(f.ref->setChannelAxes({*parsed}).isOk());
      const Metrics axis1 = f.measure();
      CHECK(axis1.minChannelSqnrDb == Approx(0.0).margin(1e-6));  // channel 1 is all noise
      CHECK(axis1.worstOutput == "add");
      CHECK(axis1.worstChannel == 1);
    }
  }
  SECTION("a rule for another axis of the same output moves it back") {
    REQUIRE(f.ref->setChannelAxes({ChannelAxisRule{"", false, 1}, ChannelAxisRule{"add", false, 2}}).isOk());
    CHECK(f.measure().minChannelSqnrDb > 25.0);  // rows of the maps: the collapse is spread again
  }
  SECTION("bad rules name the output and the axis") {
    auto noOutput = f.ref->setChannelAxes({ChannelAxisRule{"heatmap", false, 1}});
    REQUIRE_FALSE(noOutput.isOk());
    CHECK_THAT(noOutput.message(), Catch::Contains("--channel-axis heatmap=1") && Catch::Contains("no output 'heatmap'") &&
                                       Catch::Contains("'add'"));
    auto tooFar = f.ref->setChannelAxes({ChannelAxisRule{"", false, 4}});
    REQUIRE_FALSE(tooFar.isOk());
    CHECK_THAT(tooFar.message(), Catch::Contains("--channel-axis 4") && Catch::Contains("output 'add' has rank 4"));
  }
}

TEST_CASE("Reference: scores on axis 1 of [N, C, H, W] count the heatmap's detections", "[tune]") {
  Fixture f;
  SECTION("the heatmap channel on axis 1: every float detection is lost") {
    const Metrics m = f.measureScores({"add:axis=1:1:0.5"});
    CHECK(*m.scoreF1Pct == Approx(0.0));
    CHECK(m.scoreSqnrDb == Approx(0.0).margin(1e-6));
  }
  SECTION("column 1 of the last axis mixes in the sizes: the collapse hides") {
    const Metrics m = f.measureScores({"add:1:0.5"});
    CHECK(*m.scoreF1Pct > 80.0);
    CHECK(m.scoreSqnrDb > 25.0);
  }
  SECTION("several specs pool their elements") {
    // The sizes (channels 0 and 2, all above 10) are kept exactly; the heatmap loses all: the
    // pooled F1 is 2 |both| / (|ref| + |test|) over the three channels.
    const Metrics m = f.measureScores({"add:axis=1:0:10", "add:axis=-3:2:10", "add:axis=1:1:0.5"});
    CHECK(*m.scoreF1Pct > 70.0);
    CHECK(*m.scoreF1Pct < 100.0);
  }
  SECTION("bad specs name the output and the axis") {
    auto axis = f.ref->setScores({ScoreSpec{"add", 0, -1, 0.5, 4}});
    REQUIRE_FALSE(axis.isOk());
    CHECK_THAT(axis.message(), Catch::Contains("--scores add:axis=4:*:0.5") && Catch::Contains("rank 4, no axis 4"));
    auto channels = f.ref->setScores({ScoreSpec{"add", 1, 3, 0.5, 1}});
    REQUIRE_FALSE(channels.isOk());
    CHECK_THAT(channels.message(), Catch::Contains("3 channel(s) along axis 1"));
    auto none = f.ref->setScores({ScoreSpec{"add", 1, 1, 2.0, 1}});
    REQUIRE_FALSE(none.isOk());
    CHECK_THAT(none.message(), Catch::Contains("add:axis=1:1:2") && Catch::Contains("no score of the float model"));
    // Pooled with a spec that has float positives, one without any is a note: its int8 positives
    // are false detections.
    REQUIRE(f.ref->setScores({ScoreSpec{"add", 1, 1, 2.0, 1}, ScoreSpec{"add", 0, 0, 10.0, 1}}).isOk());
    CHECK(std::any_of(f.ref->notes.begin(), f.ref->notes.end(), [](const std::string& n) {
      return n.find("add:axis=1:1:2: 0 float scores above the threshold") != std::string::npos;
    }));
    REQUIRE(f.measure().scoreF1Pct.has_value());
    CHECK(*f.measure().scoreF1Pct == Approx(100.0));
  }
}

TEST_CASE("Reference: peaks of the heatmap channel count its local maxima", "[tune]") {
  Fixture f;
  SECTION("the collapsed heatmap loses every float peak") {
    const Metrics m = f.measureScores({"add:axis=1:1:0.5:peaks"});
    CHECK(*m.scoreF1Pct == Approx(0.0));
    CHECK(std::any_of(f.ref->notes.begin(), f.ref->notes.end(), [](const std::string& n) {
      return n.find("add:axis=1:1:0.5:peaks: ") != std::string::npos && n.find(" float peaks above") != std::string::npos;
    }));
  }
  SECTION("the kept channels keep their peaks, pooled with cells into one F1") {
    // Channel 0 (20 + x) is unchanged: every peak found; pooled with the lost heatmap cells the
    // F1 is 2 |peaks| / (|peaks| + |peaks| + |heatmap cells|), strictly between 0 and 100.
    const Metrics kept = f.measureScores({"add:axis=1:0:20.5:peaks=3/0"});
    CHECK(*kept.scoreF1Pct == Approx(100.0));
    const Metrics pooled = f.measureScores({"add:axis=1:0:20.5:peaks", "add:axis=1:1:0.5"});
    CHECK(*pooled.scoreF1Pct > 0.0);
    CHECK(*pooled.scoreF1Pct < 100.0);
  }
  SECTION("peaks need the map on the last two axes") {
    auto last = f.ref->setScores({ScoreSpec{"add", 1, 1, 0.5, -1, 3, 1}});
    REQUIRE_FALSE(last.isOk());
    CHECK_THAT(last.message(), Catch::Contains("--scores add:1:0.5:peaks") && Catch::Contains("last two axes") &&
                                   Catch::Contains("axis 3"));
    auto rows = f.ref->setScores({ScoreSpec{"add", 1, 1, 0.5, 2, 3, 1}});
    REQUIRE_FALSE(rows.isOk());
    CHECK_THAT(rows.message(), Catch::Contains("axis 2"));
  }
}

TEST_CASE("Reference: sessions side by side measure what one session measures, and stop on an error", "[tune]") {
  testing::TempDir dir;
  GraphBuilder data(3);
  // 37 samples: batches of 8, 8, 8, 8, 5.
  REQUIRE(data::writeNpy(data.randomTensor(ir::DataType::kFloat, {37, 3, 4, 5}, 0, 1), dir.file("eval.npy")).isOk());
  data::DatasetSpec spec;
  spec.path = dir.file("eval.npy");
  auto built = Reference::build(mapsModel(false), spec, 1, int64_t{1} << 20);
  REQUIRE(built.isOk());
  Reference& ref = **built;
  REQUIRE(ref.setChannelAxes({ChannelAxisRule{"", false, 1}}).isOk());
  REQUIRE(ref.setScores({*parseScoreSpec("add:axis=1:1:0.5")}).isOk());
  // The quantized stand-in: channel 1 scaled by 0.9 (a small, even error on every sample).
  GraphBuilder b(5);
  ir::Value* x = b.symbolicInput("x", ir::DataType::kFloat,
                                 {ir::Dim::symbolic("N"), ir::Dim::known(3), ir::Dim::known(4), ir::Dim::known(5)});
  ir::Value* h = b.node("Mul", {x, b.constant("scale", {1, 3, 1, 1}, {1.0f, 0.9f, 1.0f})}, {}, "scale");
  b.output(b.node("Add", {h, b.constant("bias", {1, 3, 1, 1}, {20.0f, 0.0f, 30.0f})}, {}, "add"),
           ir::DataType::kFloat, {1, 3, 4, 5});
  ir::Model scaled = b.build(13);
  scaled.graph->outputs()[0]->mutableType().shape =
      std::vector<ir::Dim>{ir::Dim::symbolic("N"), ir::Dim::known(3), ir::Dim::known(4), ir::Dim::known(5)};

  auto one = ref.measure(scaled, 10, false, 1, 1);
  REQUIRE(one.isOk());
  CHECK(one->full.samples == 37);
  CHECK(one->first.samples == 16);  // whole batches: at least 10
  CHECK(one->full.worstChannel == 1);
  for (int workers : {2, 3, 8}) {
    INFO(workers << " workers");
    auto many = ref.measure(scaled, 10, false, 1, workers);
    REQUIRE(many.isOk());
    for (auto [a, c] : {std::pair{&one->full, &many->full}, std::pair{&one->first, &many->first}}) {
      CHECK(c->samples == a->samples);
      CHECK(c->outputSqnrDb == a->outputSqnrDb);
      CHECK(c->minChannelSqnrDb == a->minChannelSqnrDb);
      CHECK(c->worstChannel == a->worstChannel);
      REQUIRE(c->scoreF1Pct.has_value());
      CHECK(*c->scoreF1Pct == *a->scoreF1Pct);
      CHECK(c->scoreSqnrDb == a->scoreSqnrDb);
    }
    auto firstOnly = ref.measure(scaled, 10, true, 1, workers);
    REQUIRE(firstOnly.isOk());
    CHECK(firstOnly->first.samples == 16);
    CHECK(firstOnly->first.minChannelSqnrDb == one->first.minChannelSqnrDb);
  }

  // An evaluation cache of 8 KiB: the first batch's float outputs (1,920 bytes) stay in memory,
  // the other four go to the temporary file, and the inputs (8,880 bytes) are read again each
  // trial; the measurements are the same to the last digit.
  auto small = Reference::build(mapsModel(false), spec, 1, 8192);
  REQUIRE(small.isOk());
  CHECK_THAT((*small)->notes, Catch::VectorContains(std::string(
                                  "the evaluation inputs do not fit the evaluation cache: every trial reads them again")));
  REQUIRE((*small)->setChannelAxes({ChannelAxisRule{"", false, 1}}).isOk());
  REQUIRE((*small)->setScores({*parseScoreSpec("add:axis=1:1:0.5")}).isOk());
  for (int workers : {1, 3}) {
    INFO(workers << " workers, outputs in a file");
    auto spilled = (*small)->measure(scaled, 10, false, 1, workers);
    REQUIRE(spilled.isOk());
    CHECK(spilled->full.samples == 37);
    CHECK(spilled->full.outputSqnrDb == one->full.outputSqnrDb);
    CHECK(spilled->full.minChannelSqnrDb == one->full.minChannelSqnrDb);
    CHECK(*spilled->full.scoreF1Pct == *one->full.scoreF1Pct);
    CHECK(spilled->first.minChannelSqnrDb == one->first.minChannelSqnrDb);
  }

  // A model whose output is smaller than the reference's: an error naming the output, from the
  // first batch, whatever the number of sessions (the others are stopped, not waited for).
  GraphBuilder s(5);
  ir::Value* xs = s.symbolicInput("x", ir::DataType::kFloat,
                                  {ir::Dim::symbolic("N"), ir::Dim::known(3), ir::Dim::known(4), ir::Dim::known(5)});
  s.output(s.node("ReduceMax", {xs}, {ir::Attribute::makeInts("axes", {3})}, "add"), ir::DataType::kFloat, {1, 3, 4, 1});
  ir::Model shrunk = s.build(13);
  for (int workers : {1, 4}) {
    INFO(workers << " workers");
    auto bad = ref.measure(shrunk, 10, false, 1, workers);
    REQUIRE_FALSE(bad.isOk());
    CHECK_THAT(bad.status().message(), Catch::Contains("output 'add': the quantized model gives"));
  }
}

TEST_CASE("spreadOrder: every batch once, the first ones across the data set", "[tune]") {
  CHECK(spreadOrder(0).empty());
  CHECK(spreadOrder(1) == std::vector<int64_t>{0});
  CHECK(spreadOrder(5) == std::vector<int64_t>{0, 3, 1, 4, 2});
  for (int64_t n : {2, 8, 9, 10, 113}) {
    std::vector<int64_t> order = spreadOrder(n);
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    CHECK(sorted == all);
  }
  // 113 batches (900 samples of 8): the first 11 reach the last tenth of the data.
  std::vector<int64_t> order = spreadOrder(113);
  CHECK(*std::max_element(order.begin(), order.begin() + 11) >= 100);
}

TEST_CASE("Reference: the first samples of a measurement come from across the data set", "[tune]") {
  testing::TempDir dir;
  // 64 samples (8 batches of 8): the first 32 are zero, the last 32 in [0.5, 1].
  GraphBuilder data(4);
  ir::Tensor x = data.randomTensor(ir::DataType::kFloat, {64, 3, 4, 5}, 0.5, 1);
  std::fill_n(x.mutableData<float>(), 32 * 60, 0.0f);
  REQUIRE(data::writeNpy(x, dir.file("eval.npy")).isOk());
  data::DatasetSpec spec;
  spec.path = dir.file("eval.npy");
  auto built = Reference::build(mapsModel(false), spec, 1, int64_t{1} << 20);
  REQUIRE(built.isOk());
  REQUIRE((*built)->setChannelAxes({ChannelAxisRule{"", false, 1}}).isOk());
  // The stand-in multiplies channel 1 by 0: an error only where the input is not zero.
  auto m = (*built)->measure(mapsModel(true), 24, true, 1);
  REQUIRE(m.isOk());
  CHECK(m->first.samples == 24);
  // Batches 0, 3 and 6 (spreadOrder(8)): the last holds samples 48..55, whose channel 1 is lost.
  CHECK(m->first.minChannelSqnrDb < 1.0);
}

}  // namespace
}  // namespace whittle::tune
