#pragma once
// Peaks of a score map (a CenterNet-style heatmap) and their F1 against a reference map: the
// --scores ...:peaks measure of the score-F1 budget (ScoreSpec::peakWindow).

#include <cstdint>
#include <span>
#include <vector>

namespace whittle::tune {

/// The peaks of one height x width map (row-major): the cells above `threshold` that are the
/// largest of their window x window neighbourhood (clipped at the edges), the cells a decoder's
/// max-pool NMS keeps. A plateau of equal cells (common in an int8 output, whose values are
/// steps) gives one peak, its first cell in row-major order: a cell must be above the neighbours
/// before it and not below those after it. NaN is never a peak. In row-major order.
std::vector<int64_t> findPeaks(std::span<const float> map, int64_t height, int64_t width, double threshold,
                               int64_t window);

/// Peaks of tested maps against reference maps: each reference peak (highest first, then
/// row-major) takes the nearest unmatched tested peak within `radius` cells (Chebyshev
/// distance; the first in row-major order on a tie).
///   F1 = 2 |matched| / (|reference peaks| + |tested peaks|)
class PeakF1Accumulator {
 public:
  /// Adds maps of `ref` and `test` (same length, a whole number of height x width maps).
  void add(std::span<const float> ref, std::span<const float> test, int64_t height, int64_t width, double threshold,
           int64_t window, int64_t radius);

  int64_t referencePeaks() const { return ref_; }
  int64_t testPeaks() const { return test_; }
  int64_t matched() const { return matched_; }

 private:
  int64_t ref_ = 0;
  int64_t test_ = 0;
  int64_t matched_ = 0;
};

}  // namespace whittle::tune
