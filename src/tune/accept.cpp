// The fallback's acceptance: a gain of the budget's measure beyond the noise of its flips.
#include "tune/accept.h"

#include <cmath>
#include <cstdio>

namespace whittle::tune {

double Flips::noise() const { return std::sqrt(static_cast<double>(gained + lost)); }

bool Flips::gain(double sigmas) const { return net() > 0 && static_cast<double>(net()) > sigmas * noise(); }

bool Flips::loss(double sigmas) const { return net() < 0 && static_cast<double>(-net()) > sigmas * noise(); }

Flips flips(const std::vector<uint8_t>& before, const std::vector<uint8_t>& after) {
  Flips f;
  if (before.size() != after.size()) return f;
  for (size_t i = 0; i < before.size(); ++i) {
    if (!before[i] && after[i]) ++f.gained;
    if (before[i] && !after[i]) ++f.lost;
  }
  return f;
}

namespace {

std::string flipText(const char* what, const Flips& f) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s %+lld (%lld gained, %lld lost; noise %.1f)", what, static_cast<long long>(f.net()),
                static_cast<long long>(f.gained), static_cast<long long>(f.lost), f.noise());
  return buf;
}

}  // namespace

Acceptance acceptFallback(const Budget& budget, const Metrics& last, const Metrics& trial, bool meetsBudget,
                          double rankGainDb, bool smooth) {
  struct Measure {
    const char* name;
    Flips flips;
  };
  std::vector<Measure> measures;
  if (budget.maxAccuracyDropPp && !trial.correct.empty() && trial.correct.size() == last.correct.size()) {
    measures.push_back({"top-1", flips(last.correct, trial.correct)});
  }
  if (budget.minAgreementPct && !trial.agrees.empty() && trial.agrees.size() == last.agrees.size()) {
    measures.push_back({"agreement", flips(last.agrees, trial.agrees)});
  }
  if (budget.minBoxF1Pct && trial.boxF1Pct && last.boxF1Pct) {
    // The box F1 is the budget's own measure, a count of boxes with no per-sample vector: a
    // fallback that loses boxes goes, one that keeps them stays on a box or SQNR gain.
    char buf[128];
    std::snprintf(buf, sizeof buf, "box F1 %+.2f pp, ranking SQNR %+.2f dB", *trial.boxF1Pct - *last.boxF1Pct, rankGainDb);
    if (meetsBudget) return {true, "meets the budget"};
    if (*trial.boxF1Pct < *last.boxF1Pct) return {false, std::string(buf) + ": loses boxes"};
    return {*trial.boxF1Pct > *last.boxF1Pct || rankGainDb > 0.05, buf};
  }
  if (measures.empty()) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "ranking SQNR %+.2f dB", rankGainDb);
    return {meetsBudget || rankGainDb > 0.05, meetsBudget ? std::string("meets the budget") : std::string(buf)};
  }
  std::string text;
  bool gain = false, loss = false;
  for (const Measure& m : measures) {
    text += (text.empty() ? "" : ", ") + flipText(m.name, m.flips);
    gain = gain || m.flips.gain();
    loss = loss || m.flips.loss();
  }
  if (loss) return {false, text + ": a loss beyond noise"};
  if (gain) return {true, text};
  if (meetsBudget) return {true, text + ": within noise, but meets the budget"};
  if (smooth && rankGainDb >= kSmoothGainDb) {
    const Flips agreement = flips(last.agrees, trial.agrees);
    char buf[64];
    std::snprintf(buf, sizeof buf, "class SQNR %+.2f dB", rankGainDb);
    if (budget.minAgreementPct || agreement.net() >= 0) {  // an agreement budget counted its flips above
      return {true,
              text + ": within noise; " + buf +
                  (budget.minAgreementPct ? std::string() : ", " + flipText("agreement", agreement)) + " (a smooth gain)",
              true};
    }
    return {false, text + ": within noise; " + buf + ", but " + flipText("agreement", agreement) +
                       ": it moves away from the float model's decisions"};
  }
  return {false, text + ": within noise"};
}

Acceptance acceptRepair(const Budget& budget, const Metrics& kept, const Metrics& trial) {
  if (!budget.maxAccuracyDropPp || trial.agrees.empty() || trial.agrees.size() != kept.agrees.size() ||
      trial.correct.size() != kept.correct.size()) {
    return {false, "no per-sample agreement to compare"};
  }
  const Flips agreement = flips(kept.agrees, trial.agrees), top1 = flips(kept.correct, trial.correct);
  const std::string text = flipText("agreement", agreement) + ", " + flipText("top-1", top1);
  if (top1.loss()) return {false, text + ": top-1 loses beyond noise"};
  if (agreement.gain()) return {true, text + ": closer to the float model"};
  return {false, text + ": agreement within noise"};
}

}  // namespace whittle::tune
