// The metrics of whittle compare against values computed by hand.
#include "whittle/report/metrics.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

namespace whittle::report {
namespace {

TEST_CASE("ErrorAccumulator gives hand-computed SQNR, cosine and abs errors", "[report][metrics]") {
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

TEST_CASE("ErrorAccumulator streams: chunks give the totals of one pass", "[report][metrics]") {
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

TEST_CASE("ErrorAccumulator edge cases: identical, zero signal, all zero", "[report][metrics]") {
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

TEST_CASE("topK orders by score, ties to the lower index", "[report][metrics]") {
  std::vector<float> s = {0.1f, 0.5f, 0.5f, 0.2f, NAN};
  CHECK(topK(s, 2) == std::vector<int64_t>{1, 2});
  CHECK(topK(s, 4) == std::vector<int64_t>{1, 2, 3, 0});
  CHECK(topK(s, 9).size() == 5);
  CHECK(topK(s, 9).back() == 4);
}

TEST_CASE("ClassificationAccumulator counts top-1, top-5 and agreement", "[report][metrics]") {
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

TEST_CASE("percentile interpolates between ranks like numpy", "[report][metrics]") {
  std::vector<double> v = {4, 1, 3, 2};
  CHECK(percentile(v, 50) == Approx(2.5));
  CHECK(percentile(v, 90) == Approx(3.7));
  CHECK(percentile(v, 0) == 1.0);
  CHECK(percentile(v, 100) == 4.0);
  CHECK(percentile({}, 50) == 0.0);
  CHECK(percentile({7}, 99) == 7.0);
}

}  // namespace
}  // namespace whittle::report
