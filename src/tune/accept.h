#pragma once
// Whether a fallback to float stays: it must move the budget's own measure by more than that
// measure's noise on the evaluation data. Top-1 (against the labels, or against the float
// model for an agreement budget) is a count of samples; from one trial to the next some samples
// flip each way. Under "no change" the net gain (gained - lost) has mean 0 and standard
// deviation sqrt(gained + lost) (McNemar's paired test on the flipped samples), so a change
// counts only when the net gain exceeds kNoiseSigmas of that. A fallback that raises the SQNR
// but flips as many samples each way is reverted, unless the search lets the smooth rule keep
// it (a class-SQNR gain on every sample, below) within the speed the search lets noise spend.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/tune/tune.h"

namespace whittle::tune {

/// Standard deviations of the no-change flip count a net gain must exceed.
inline constexpr double kNoiseSigmas = 1.0;

/// The class-score SQNR gain on every sample (dB) that keeps a fallback whose top-1 flips are
/// within noise, when the search allows it (`smooth`). On MobileNetV2's 900 images the SQNR (a
/// mean over 900,000 logits) rises steadily with each float node, while top-1 moves by 30-40
/// images each way on any change: the SQNR is the measure that sees a small real gain, and the
/// budget is still checked on top-1.
inline constexpr double kSmoothGainDb = 0.25;

/// Samples that went wrong -> right (`gained`) and right -> wrong (`lost`) between two trials.
struct Flips {
  int64_t gained = 0;
  int64_t lost = 0;
  int64_t net() const { return gained - lost; }
  /// The net gain's standard deviation under no change, in samples.
  double noise() const;
  /// net() > sigmas * noise() (and > 0): a real gain; net() < -sigmas * noise(): a real loss.
  bool gain(double sigmas = kNoiseSigmas) const;
  bool loss(double sigmas = kNoiseSigmas) const;
};

/// The flips from `before` to `after` (per-sample 0/1, the same samples in the same order).
/// Vectors of different lengths (a measure absent in one) give no flips.
Flips flips(const std::vector<uint8_t>& before, const std::vector<uint8_t>& after);

/// The verdict on one fallback, with why (one line).
struct Acceptance {
  bool keep = false;
  std::string why;
  bool smooth = false;  ///< kept on the SQNR alone (the smooth rule)
};

/// Judges `trial` (the fallback, measured on every sample) against `last` (the configuration it
/// extends) under `budget`:
///  - with an accuracy or agreement budget (per-sample vectors in the metrics), it stays when one
///    of those measures gains beyond its noise and none loses beyond it, or when it meets the
///    budget and loses on none beyond noise (the budget is defined on these samples);
///  - with `smooth` (the search can afford the node's speed cost), also when those measures are
///    within noise, agreement with the float model does not fall (net flips >= 0), and
///    `rankGainDb` (the class-score SQNR's change on every sample) is at least kSmoothGainDb;
///  - with only an SQNR budget (or no per-sample vectors), when it meets the budget or raises
///    `rankGainDb` (the ranking SQNR's change) above 0.05 dB: the SQNR is itself the measure.
Acceptance acceptFallback(const Budget& budget, const Metrics& last, const Metrics& trial, bool meetsBudget,
                          double rankGainDb, bool smooth = false);

/// Judges a whole-model repair (one range method for every tensor, bias correction,
/// equalization; `trial` measured on every sample) against `kept`, the configuration it would
/// replace, under an accuracy budget: it stays when agreement with the float model gains beyond
/// its noise and top-1 loses nothing beyond its noise. On MobileNetV2 (900 images) every
/// activation kind adds error (quantized alone each gives 20-25 dB of class-score SQNR) and any
/// change flips 30-40 images each way, so top-1 cannot tell a closer model from a draw; agreement
/// is the measure of being closer. (Meeting the budget or a better slack keeps a repair anyway:
/// the search checks that itself.) Without per-sample vectors of both, or under another budget:
/// not kept by this rule.
Acceptance acceptRepair(const Budget& budget, const Metrics& kept, const Metrics& trial);

}  // namespace whittle::tune
