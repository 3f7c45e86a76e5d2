// The fallback's acceptance (src/tune/accept.cpp): a fallback stays only when it moves the
// budget's own measure beyond the noise of the samples it flips.
#include "tune/accept.h"

#include <catch2/catch.hpp>

#include <cmath>

namespace whittle::tune {
namespace {

/// 900 samples, the first `right` of them correct.
std::vector<uint8_t> firstRight(int64_t right) {
  std::vector<uint8_t> v(900, 0);
  for (int64_t i = 0; i < right; ++i) v[static_cast<size_t>(i)] = 1;
  return v;
}

Metrics withCorrect(std::vector<uint8_t> correct, double classSqnrDb) {
  Metrics m;
  m.samples = static_cast<int64_t>(correct.size());
  m.correct = correct;
  m.agrees = std::move(correct);
  m.classSqnrDb = classSqnrDb;
  return m;
}

TEST_CASE("accept: flips count each way, and the noise is the root of their sum", "[tune][accept]") {
  const std::vector<uint8_t> before = {1, 1, 0, 0, 1, 0};
  const std::vector<uint8_t> after = {1, 0, 1, 1, 1, 0};
  const Flips f = flips(before, after);
  CHECK(f.gained == 2);
  CHECK(f.lost == 1);
  CHECK(f.net() == 1);
  CHECK(f.noise() == Approx(std::sqrt(3.0)));
  CHECK_FALSE(f.gain());  // 1 < 1.73
  CHECK_FALSE(f.loss());
  CHECK(flips(before, {1, 0}).gained == 0);  // different lengths: nothing to count
  CHECK((Flips{.gained = 20, .lost = 4}).gain());  // 16 > sqrt(24)
  CHECK((Flips{.gained = 4, .lost = 20}).loss());
}

TEST_CASE("accept: a fallback that raises the SQNR but does not change decisions is not kept", "[tune][accept]") {
  Budget budget;
  budget.maxAccuracyDropPp = 0.5;
  const Metrics last = withCorrect(firstRight(640), 20.0);

  // +3 dB of class-score SQNR, the same decisions.
  Acceptance same = acceptFallback(budget, last, withCorrect(firstRight(640), 23.0), false, 3.0);
  CHECK_FALSE(same.keep);
  CHECK_THAT(same.why, Catch::Contains("within noise"));

  // +3 dB and a few images each way, a net gain of 2 out of 6 flips (noise 2.4): still noise.
  std::vector<uint8_t> shuffled = firstRight(642);
  shuffled[0] = shuffled[1] = 0;
  shuffled[642] = shuffled[643] = 1;
  Acceptance few = acceptFallback(budget, last, withCorrect(shuffled, 23.0), false, 3.0);
  CHECK_FALSE(few.keep);
  CHECK_THAT(few.why, Catch::Contains("top-1 +2 (4 gained, 2 lost"));

  // A real gain: 12 images right that were wrong, none lost.
  Acceptance real = acceptFallback(budget, last, withCorrect(firstRight(652), 20.5), false, 0.5);
  CHECK(real.keep);

  // A real loss is reverted whatever the SQNR says, even when it meets the budget.
  CHECK_FALSE(acceptFallback(budget, last, withCorrect(firstRight(620), 30.0), true, 10.0).keep);
  // Meeting the budget on these samples keeps a gain within noise (the budget is defined on them).
  Acceptance meets = acceptFallback(budget, last, withCorrect(firstRight(641), 20.0), true, 0.0);
  CHECK(meets.keep);
  CHECK_THAT(meets.why, Catch::Contains("meets the budget"));

}

TEST_CASE("accept: an agreement budget counts agreement flips; an SQNR budget keeps an SQNR gain", "[tune][accept]") {
  Budget agreement;
  agreement.minAgreementPct = 99;
  Metrics last = withCorrect(firstRight(640), 20.0);
  Metrics trial = last;
  trial.agrees = firstRight(700);  // 60 more samples agree with the float model
  CHECK(acceptFallback(agreement, last, trial, false, 0.0).keep);
  trial.agrees = last.agrees;
  CHECK_FALSE(acceptFallback(agreement, last, trial, false, 5.0).keep);

  Budget sqnr;
  sqnr.minSqnrDb = 30;
  CHECK(acceptFallback(sqnr, last, last, false, 0.2).keep);
  CHECK_FALSE(acceptFallback(sqnr, last, last, false, 0.01).keep);
  CHECK(acceptFallback(sqnr, last, last, true, 0.0).keep);
}

TEST_CASE("accept: a box-F1 budget keeps a fallback that loses no box", "[tune][accept]") {
  Budget budget;
  budget.minBoxF1Pct = 97;
  Metrics last, trial;
  last.boxF1Pct = 90.0;
  SECTION("fewer boxes matched: reverted, whatever the SQNR") {
    trial.boxF1Pct = 89.5;
    const Acceptance a = acceptFallback(budget, last, trial, false, 3.0);
    CHECK_FALSE(a.keep);
    CHECK_THAT(a.why, Catch::Contains("box F1 -0.50 pp") && Catch::Contains("loses boxes"));
  }
  SECTION("more boxes matched: kept, even with the SQNR lower") {
    trial.boxF1Pct = 91.0;
    CHECK(acceptFallback(budget, last, trial, false, -1.0).keep);
  }
  SECTION("the same boxes: kept on an SQNR gain only") {
    trial.boxF1Pct = 90.0;
    CHECK(acceptFallback(budget, last, trial, false, 0.5).keep);
    CHECK_FALSE(acceptFallback(budget, last, trial, false, 0.01).keep);
  }
  SECTION("meeting the budget keeps it") {
    trial.boxF1Pct = 97.5;
    CHECK(acceptFallback(budget, last, trial, true, -1.0).why == "meets the budget");
  }
}

}  // namespace
TEST_CASE("accept: with the smooth rule, an SQNR gain within top-1 noise stays unless agreement loses", "[tune][accept]") {
  Budget budget;
  budget.maxAccuracyDropPp = 0.5;
  const Metrics last = withCorrect(firstRight(640), 20.0);

  // The same decisions, +0.5 dB on every sample: kept only where the search allows it.
  CHECK_FALSE(acceptFallback(budget, last, withCorrect(firstRight(640), 20.5), false, 0.5).keep);
  Acceptance smooth = acceptFallback(budget, last, withCorrect(firstRight(640), 20.5), false, 0.5, true);
  CHECK(smooth.keep);
  CHECK(smooth.smooth);
  CHECK_THAT(smooth.why, Catch::Contains("class SQNR +0.50 dB"));
  CHECK_THAT(smooth.why, Catch::Contains("a smooth gain"));

  // Under the threshold: within noise, reverted.
  Acceptance small = acceptFallback(budget, last, withCorrect(firstRight(640), 20.1), false, kSmoothGainDb - 0.05, true);
  CHECK_FALSE(small.keep);
  CHECK_THAT(small.why, Catch::Contains("within noise"));

  // Top-1 within noise, but 2 images leave the float model's decision: not kept.
  Metrics disagrees = withCorrect(firstRight(640), 21.0);
  for (size_t i = 0; i < 2; ++i) disagrees.agrees[i] = 0;
  Acceptance lost = acceptFallback(budget, last, disagrees, false, 1.0, true);
  CHECK_FALSE(lost.keep);
  CHECK_THAT(lost.why, Catch::Contains("agreement -2"));
  CHECK_THAT(lost.why, Catch::Contains("moves away"));

  // A top-1 loss beyond noise is reverted whatever the SQNR.
  CHECK_FALSE(acceptFallback(budget, last, withCorrect(firstRight(620), 25.0), false, 5.0, true).keep);
}

TEST_CASE("accept: a repair stays when agreement gains beyond noise and top-1 loses nothing beyond it", "[tune][accept]") {
  Budget budget;
  budget.maxAccuracyDropPp = 0.5;
  // 900 samples: the kept model agrees with the float one on the first 850, 640 of them right.
  Metrics kept = withCorrect(firstRight(640), 15.0);
  kept.agrees = firstRight(850);
  auto repaired = [&](int64_t agreeing, int64_t right) {
    Metrics m = withCorrect(firstRight(right), 19.0);
    m.agrees = firstRight(agreeing);
    return m;
  };
  // +10 agreeing (10 gained, none lost: noise 3.2), top-1 -4 (6 gained, 10 lost: noise 4):
  // closer, whatever the top-1 draw.
  Metrics drawn = repaired(860, 640);
  for (size_t i = 0; i < 10; ++i) drawn.correct[i] = 0;
  for (size_t i = 640; i < 646; ++i) drawn.correct[i] = 1;
  Acceptance closer = acceptRepair(budget, kept, drawn);
  CHECK(closer.keep);
  CHECK_THAT(closer.why, Catch::Contains("agreement +10 (10 gained, 0 lost"));
  CHECK_THAT(closer.why, Catch::Contains("top-1 -4 (6 gained, 10 lost"));
  // Agreement +2 out of 6 flips (noise 2.4): within noise.
  Metrics shuffled = repaired(850, 640);
  shuffled.agrees[0] = shuffled.agrees[1] = 0;
  shuffled.agrees[850] = shuffled.agrees[851] = shuffled.agrees[852] = shuffled.agrees[853] = 1;
  Acceptance noise = acceptRepair(budget, kept, shuffled);
  CHECK_FALSE(noise.keep);
  CHECK_THAT(noise.why, Catch::Contains("agreement within noise"));
  // Agreement gains, but top-1 loses 12 images outright: not kept.
  Acceptance lost = acceptRepair(budget, kept, repaired(870, 628));
  CHECK_FALSE(lost.keep);
  CHECK_THAT(lost.why, Catch::Contains("top-1 loses beyond noise"));
  // Another budget, or no per-sample vectors: this rule keeps nothing.
  Budget sqnr;
  sqnr.minSqnrDb = 20.0;
  CHECK_FALSE(acceptRepair(sqnr, kept, repaired(870, 640)).keep);
  CHECK_FALSE(acceptRepair(budget, Metrics{}, repaired(870, 640)).keep);
}

}  // namespace whittle::tune
