// The metric accumulators against values computed by hand.
#include "whittle/eval/metrics.h"

#include <catch2/catch.hpp>
#include <limits>
#include <span>
#include <vector>
#include <cmath>
#include <vector>

namespace whittle::eval {
namespace {

TEST_CASE("ErrorAccumulator gives hand-computed SQNR, cosine and abs errors", "[eval][metrics]") {
  std::vector<float> ref = {1, 2, 3, 4};
  std::vector<float> test = {1, 2, 3, 5};
  ErrorAccumulator acc;
  acc.add(ref, test);
  // signal 1+4+9+16 = 30, noise 1: 10*log10(30).
  CHECK(acc.sqnrDb() == Approx(14.771212547196624));
  // dot 1+4+9+20 = 34; |test|^2 = 1+4+9+25 = 39.
  CHECK(acc.cosine() == Approx(34.0 / std::sqrt(30.0 * 39.0)));
  CHECK(acc.maxAbsError() == 1.0);
  CHECK(acc.meanAbsError() == 0.25);
  CHECK(acc.count() == 4);
}

TEST_CASE("ErrorAccumulator streams: chunks give the totals of one pass", "[eval][metrics]") {
  std::vector<float> ref = {0.5f, -1.0f, 2.0f, 3.0f, -4.0f, 0.25f};
  std::vector<float> test = {0.4f, -1.5f, 2.0f, 2.5f, -4.0f, 0.0f};
  ErrorAccumulator whole, parts;
  whole.add(ref, test);
  parts.add(std::span(ref).first(2), std::span(test).first(2));
  parts.add(std::span(ref).subspan(2), std::span(test).subspan(2));
  CHECK(parts.sqnrDb() == Approx(whole.sqnrDb()));
  CHECK(parts.cosine() == Approx(whole.cosine()));
  CHECK(parts.meanAbsError() == Approx(whole.meanAbsError()));
  CHECK(parts.maxAbsError() == Approx(0.5));
  // noise: 0.01 + 0.25 + 0 + 0.25 + 0 + 0.0625 = 0.5725; signal 0.25+1+4+9+16+0.0625 = 30.3125.
  CHECK(whole.sqnrDb() == Approx(10.0 * std::log10(30.3125 / 0.5725)).epsilon(1e-6));
}

TEST_CASE("ErrorAccumulator edge cases: identical, zero signal, all zero", "[eval][metrics]") {
  std::vector<float> a = {1.5f, -2.0f};
  ErrorAccumulator same;
  same.add(a, a);
  CHECK(std::isinf(same.sqnrDb()));
  CHECK(same.sqnrDb() > 0);
  CHECK(same.cosine() == Approx(1.0));
  CHECK(same.maxAbsError() == 0.0);

  std::vector<float> zero = {0, 0};
  ErrorAccumulator noSignal;
  noSignal.add(zero, a);
  CHECK(std::isinf(noSignal.sqnrDb()));
  CHECK(noSignal.sqnrDb() < 0);
  CHECK(noSignal.cosine() == 0.0);

  ErrorAccumulator bothZero;
  bothZero.add(zero, zero);
  CHECK(bothZero.cosine() == 1.0);
  CHECK(std::isinf(bothZero.sqnrDb()));
}

TEST_CASE("ChannelErrorAccumulator catches a collapsed low-range channel beside a large one", "[eval][metrics]") {
  // Rows of [box (hundreds of pixels), score (0..1)]: the scores collapse to 0, the boxes
  // stay almost exact. The output's SQNR is high; the score channel's is not.
  std::vector<float> ref, test;
  for (int i = 0; i < 64; ++i) {
    float box = 100.0f + 3.0f * static_cast<float>(i);
    float score = static_cast<float>(i % 8) / 8.0f;
    ref.insert(ref.end(), {box, score});
    test.insert(test.end(), {box + 0.1f, 0.0f});
  }
  eval::ErrorAccumulator whole;
  whole.add(ref, test);
  CHECK(whole.sqnrDb() > 30.0);
  eval::ChannelErrorAccumulator channels;
  channels.add(std::span(ref).first(64), std::span(test).first(64), 2);  // streams in chunks
  channels.add(std::span(ref).subspan(64), std::span(test).subspan(64), 2);
  REQUIRE(channels.channels() == 2);
  CHECK(channels.sqnrDb(0) > 60.0);
  CHECK(channels.sqnrDb(1) == Approx(0.0).margin(1e-9));
  auto [worst, which] = channels.minSqnrDb();
  CHECK(which == 1);
  CHECK(worst == Approx(channels.sqnrDb(1)));

  SECTION("a channel with no signal is left out of the minimum; none at all gives +inf") {
    eval::ChannelErrorAccumulator c;
    std::vector<float> r = {0, 1, 0, 2}, t = {0.5f, 1, 0.5f, 2};
    c.add(r, t, 2);
    CHECK(c.sqnrDb(0) == -std::numeric_limits<double>::infinity());
    CHECK(c.minSqnrDb().second == 1);
    eval::ChannelErrorAccumulator empty;
    CHECK(empty.minSqnrDb().first == std::numeric_limits<double>::infinity());
    CHECK(empty.minSqnrDb().second == -1);
  }
}

TEST_CASE("ChannelErrorAccumulator reads channels on an inner axis ([N, C, H, W])", "[eval][metrics]") {
  // [2, 3, 4, 5] maps: channel 1 (a heatmap, 0..1) collapses to zero in the test tensor, channels
  // 0 and 2 (sizes, offsets in the tens) carry a small error. On axis 1 (inner = 4 * 5) the
  // collapse is its own channel at 0 dB; on the last axis (5 pixel columns) every column mixes
  // the three maps and stays far above it.
  const int64_t n = 2, c = 3, h = 4, w = 5;
  std::vector<float> ref, test;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t k = 0; k < c; ++k) {
      for (int64_t i = 0; i < h * w; ++i) {
        const float v = k == 1 ? static_cast<float>(i % 7) / 7.0f : 20.0f + static_cast<float>(k * 10 + i);
        ref.push_back(v);
        test.push_back(k == 1 ? 0.0f : v + 0.05f);
      }
    }
  }
  eval::ChannelErrorAccumulator axis1;
  const size_t half = ref.size() / 2;  // one sample per call: streams in chunks
  axis1.add(std::span(ref).first(half), std::span(test).first(half), c, h * w);
  axis1.add(std::span(ref).subspan(half), std::span(test).subspan(half), c, h * w);
  REQUIRE(axis1.channels() == 3);
  CHECK(axis1.minSqnrDb().second == 1);
  CHECK(axis1.minSqnrDb().first == Approx(0.0).margin(1e-9));
  CHECK(axis1.sqnrDb(0) > 40.0);
  CHECK(axis1.sqnrDb(2) > 40.0);

  eval::ChannelErrorAccumulator last;
  last.add(ref, test, w);
  REQUIRE(last.channels() == 5);
  CHECK(last.minSqnrDb().first > 25.0);  // the collapse hides behind the sizes in every column
}

TEST_CASE("ThresholdF1Accumulator counts the scores that cross the threshold", "[eval][metrics]") {
  // 6 reference positives; the test drops two near the threshold (0.72 -> 0.69, 0.75 -> 0.5) and
  // adds one (0.65 -> 0.71); far-off scores move without effect. NaN is never positive.
  const std::vector<float> ref = {0.9f, 0.72f, 0.75f, 0.8f, 0.95f, 0.99f, 0.65f, 0.1f, 0.0f, 0.3f};
  const std::vector<float> test = {0.85f, 0.69f, 0.5f, 0.81f, 0.9f, 0.97f, 0.71f, 0.4f, 0.2f, std::nanf("")};
  eval::ThresholdF1Accumulator f1;
  f1.add(std::span(ref).first(4), std::span(test).first(4), 0.7);  // streams in chunks
  f1.add(std::span(ref).subspan(4), std::span(test).subspan(4), 0.7);
  CHECK(f1.referencePositives() == 6);
  CHECK(f1.testPositives() == 5);
  CHECK(f1.bothPositive() == 4);
  CHECK(f1.f1Pct() == Approx(200.0 * 4 / 11));

  eval::ThresholdF1Accumulator none;
  none.add(std::vector<float>{0.1f, 0.2f}, std::vector<float>{0.3f, 0.0f}, 0.5);
  CHECK(none.f1Pct() == 100.0);  // nothing detected on either side
  eval::ThresholdF1Accumulator collapsed;
  collapsed.add(ref, std::vector<float>(ref.size(), 0.0f), 0.7);
  CHECK(collapsed.f1Pct() == 0.0);
}

TEST_CASE("topK orders by score, ties to the lower index", "[eval][metrics]") {
  std::vector<float> s = {0.1f, 0.5f, 0.5f, 0.2f, NAN};
  CHECK(topK(s, 2) == std::vector<int64_t>{1, 2});
  CHECK(topK(s, 4) == std::vector<int64_t>{1, 2, 3, 0});
  CHECK(topK(s, 9).size() == 5);
  CHECK(topK(s, 9).back() == 4);
}

TEST_CASE("ClassificationAccumulator counts top-1, top-5 and agreement", "[eval][metrics]") {
  ClassificationAccumulator acc;
  // Sample 1: both pick class 1, the label.
  acc.add(std::vector<float>{0.1f, 0.9f, 0.0f}, std::vector<float>{0.2f, 0.7f, 0.1f}, 1);
  // Sample 2: the original picks 0 (the label), the optimized 1.
  acc.add(std::vector<float>{0.6f, 0.3f, 0.1f}, std::vector<float>{0.2f, 0.5f, 0.3f}, 0);
  // Sample 3: unlabelled, both pick 2.
  acc.add(std::vector<float>{0.0f, 0.1f, 0.9f}, std::vector<float>{0.0f, 0.2f, 0.8f}, -1);
  CHECK(acc.samples() == 3);
  CHECK(acc.labelled() == 2);
  CHECK(acc.agreement() == Approx(2.0 / 3.0));
  CHECK(acc.top1Original() == 1.0);
  CHECK(acc.top1Optimized() == 0.5);
  // Three classes: every label is in the top 5.
  CHECK(acc.top5Original() == 1.0);
  CHECK(acc.top5Optimized() == 1.0);

  ClassificationAccumulator wide;
  std::vector<float> scores = {9, 8, 7, 6, 5, 4};  // class 5 is sixth
  wide.add(scores, scores, 5);
  CHECK(wide.top5Original() == 0.0);
  wide.add(scores, scores, 4);
  CHECK(wide.top5Original() == 0.5);
}

TEST_CASE("ClassificationAccumulator with one model: accuracy without agreement", "[eval][metrics]") {
  ClassificationAccumulator acc;
  acc.add(std::vector<float>{0.1f, 0.9f, 0.0f}, {}, 1);
  acc.add(std::vector<float>{0.6f, 0.3f, 0.1f}, {}, 1);
  CHECK(acc.samples() == 2);
  CHECK(acc.pairs() == 0);
  CHECK(acc.agreement() == 0.0);
  CHECK(acc.top1Original() == 0.5);
  CHECK(acc.top5Original() == 1.0);
  CHECK(acc.top1Optimized() == 0.0);
}

TEST_CASE("RelativeErrorAccumulator: max error over max reference magnitude", "[eval][metrics]") {
  RelativeErrorAccumulator acc;
  acc.add(std::vector<float>{1, -4, 2}, std::vector<float>{1.5f, -4, 2});
  // max |t - r| = 0.5, max |r| = 4.
  CHECK(acc.value() == Approx(0.125));
  // Streams: a later chunk with a larger reference and a larger error.
  acc.add(std::vector<float>{8}, std::vector<float>{9});
  CHECK(acc.value() == Approx(1.0 / 8.0));
  acc.add(std::vector<float>{0}, std::vector<float>{-2});
  CHECK(acc.value() == Approx(2.0 / 8.0));
  CHECK(acc.count() == 5);

  RelativeErrorAccumulator zero;
  CHECK(zero.value() == 0.0);
  zero.add(std::vector<float>{0, 0}, std::vector<float>{0, 1e-12f});
  CHECK(zero.value() == Approx(1e-12f / 1e-12));  // the reference magnitude floors at 1e-12
}

TEST_CASE("RelativeErrorAccumulator: a non-finite reference is skipped, a non-finite test is infinite",
          "[eval][metrics]") {
  RelativeErrorAccumulator skip;
  skip.add(std::vector<float>{INFINITY, 2}, std::vector<float>{0, 2.5f});
  CHECK(skip.value() == Approx(0.25));
  skip.add(std::vector<float>{NAN}, std::vector<float>{NAN});
  CHECK(skip.value() == Approx(0.25));

  RelativeErrorAccumulator overflow;
  overflow.add(std::vector<float>{1, 70000}, std::vector<float>{1, INFINITY});
  CHECK(std::isinf(overflow.value()));
  overflow.add(std::vector<float>{1}, std::vector<float>{1});
  CHECK(std::isinf(overflow.value()));
}

TEST_CASE("relativeError compares tensors of any float type", "[eval][metrics]") {
  ir::Tensor ref = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2}, {2.0f, -1.0f});
  ir::Tensor half(ir::DataType::kFloat16, {2});
  half.mutableData<uint16_t>()[0] = ir::floatToHalf(2.5f);
  half.mutableData<uint16_t>()[1] = ir::floatToHalf(-1.0f);
  CHECK(relativeError(ref, half) == Approx(0.25));
  CHECK(relativeError(ref, ref) == 0.0);
  ir::Tensor three = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {3}, {2.0f, -1.0f, 0.0f});
  CHECK(std::isinf(relativeError(ref, three)));
}

TEST_CASE("floatValues converts the first elements of any numeric tensor", "[eval][metrics]") {
  ir::Tensor ints = ir::Tensor::fromVector<int64_t>(ir::DataType::kInt64, {3}, {1, -2, 3});
  CHECK(floatValues(ints) == std::vector<float>{1, -2, 3});
  CHECK(floatValues(ints, 2) == std::vector<float>{1, -2});
  ir::Tensor f = ir::Tensor::fromVector<float>(ir::DataType::kFloat, {2}, {0.5f, 1.5f});
  CHECK(floatValues(f, 9) == std::vector<float>{0.5f, 1.5f});
}

TEST_CASE("PerplexityAccumulator: uniform logits give the vocabulary size; bad ids are refused", "[eval][metrics][perplexity]") {
  PerplexityAccumulator p;
  const std::vector<float> logits(2 * 3 * 4, 0.5f);
  const std::vector<int64_t> tokens = {0, 1, 2, 3, 2, 1};
  REQUIRE(p.add(logits, tokens, 2, 3, 4));
  CHECK(p.count() == 4);
  CHECK(p.perplexity() == Approx(4.0));
  const std::vector<int64_t> bad = {0, 1, 4, 3, 2, 1};
  CHECK_FALSE(p.add(logits, bad, 2, 3, 4));
  CHECK(p.count() == 4);
}

}  // namespace
}  // namespace whittle::eval

namespace whittle::eval {
namespace {

TEST_CASE("BoxF1Accumulator: greedy matching by score at IoU 0.5", "[eval]") {
  using eval::Detections;
  const Detections ref{{0, 0, 10, 10, 20, 20, 30, 30}, {0.9f, 0.8f}, {}};
  SECTION("the same boxes: 100 %") {
    eval::BoxF1Accumulator acc;
    acc.add(ref, ref);
    CHECK(acc.matched() == 2);
    CHECK(acc.f1Pct() == Approx(100.0));
  }
  SECTION("a duplicate just beside a box counts once: the second is a false detection") {
    // The duplicate (IoU 0.82 with the first box) has the higher score: it takes the box, and
    // the original finds it taken. 2 matched of 2 + 3: F1 = 80 %.
    const Detections test{{0, 0, 10, 10, 1, 0, 11, 10, 20, 20, 30, 30}, {0.5f, 0.95f, 0.8f}, {}};
    eval::BoxF1Accumulator acc;
    acc.add(ref, test);
    CHECK(acc.referenceBoxes() == 2);
    CHECK(acc.testBoxes() == 3);
    CHECK(acc.matched() == 2);
    CHECK(acc.f1Pct() == Approx(80.0));
  }
  SECTION("a box that moved past IoU 0.5 misses; one just within matches") {
    // [0, 0, 10, 10] against [5, 0, 15, 10]: IoU 50 / 150 = 0.33; against [3, 0, 13, 10]: 70 / 130 = 0.54.
    CHECK(eval::boxIou(ref.boxes.data(), std::vector<float>{5, 0, 15, 10}.data()) == Approx(1.0 / 3.0));
    CHECK(eval::matchDetections(ref, Detections{{5, 0, 15, 10}, {0.9f}, {}}) == 0);
    CHECK(eval::matchDetections(ref, Detections{{3, 0, 13, 10}, {0.9f}, {}}) == 1);
  }
  SECTION("empty sides") {
    eval::BoxF1Accumulator none;
    none.add(Detections{}, Detections{});
    CHECK(none.f1Pct() == Approx(100.0));  // nothing to find, nothing found
    eval::BoxF1Accumulator lost;
    lost.add(ref, Detections{});
    CHECK(lost.f1Pct() == Approx(0.0));
    eval::BoxF1Accumulator invented;
    invented.add(Detections{}, ref);
    CHECK(invented.f1Pct() == Approx(0.0));
  }
  SECTION("all miss: every box elsewhere") {
    eval::BoxF1Accumulator acc;
    acc.add(ref, Detections{{100, 100, 110, 110, 200, 200, 210, 210}, {0.9f, 0.8f}, {}});
    CHECK(acc.matched() == 0);
    CHECK(acc.f1Pct() == Approx(0.0));
  }
  SECTION("classes: a box of another class does not match") {
    const Detections classed{ref.boxes, ref.scores, {1, 2}};
    CHECK(eval::matchDetections(classed, Detections{ref.boxes, ref.scores, {1, 2}}) == 2);
    CHECK(eval::matchDetections(classed, Detections{ref.boxes, ref.scores, {2, 1}}) == 0);
  }
  SECTION("the highest-scoring test box chooses first, by IoU") {
    // Two reference boxes; test box A (score 0.9) overlaps both, the second more; test box B
    // (0.5) overlaps only the second. A takes the second, B finds nothing: 1 matched.
    const Detections two{{0, 0, 10, 10, 4, 0, 14, 10}, {0.9f, 0.8f}, {}};
    const Detections test{{3, 0, 13, 10, 5, 0, 15, 10}, {0.9f, 0.5f}, {}};
    CHECK(eval::matchDetections(two, test) == 1);
    // Sums accumulate over samples.
    eval::BoxF1Accumulator acc;
    acc.add(two, test);
    acc.add(ref, ref);
    CHECK(acc.matched() == 3);
    CHECK(acc.f1Pct() == Approx(200.0 * 3 / 8));
  }
}

}  // namespace
}  // namespace whittle::eval
