// Peaks of a score map and their F1 against a reference (src/tune/peaks.h).
#include "tune/peaks.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "whittle/common/status.h"

namespace whittle::tune {

std::vector<int64_t> findPeaks(std::span<const float> map, int64_t height, int64_t width, double threshold,
                               int64_t window) {
  WH_CHECK(height >= 0 && width >= 0 && static_cast<int64_t>(map.size()) == height * width,
           "findPeaks: the map is not height x width");
  const int64_t half = std::max<int64_t>(window, 1) / 2;
  std::vector<int64_t> peaks;
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      const int64_t i = y * width + x;
      const float v = map[static_cast<size_t>(i)];
      if (!(v > threshold)) continue;  // NaN too
      bool peak = true;
      for (int64_t ny = std::max<int64_t>(0, y - half); peak && ny <= std::min(height - 1, y + half); ++ny) {
        for (int64_t nx = std::max<int64_t>(0, x - half); nx <= std::min(width - 1, x + half); ++nx) {
          const int64_t j = ny * width + nx;
          const float n = map[static_cast<size_t>(j)];
          // Before the cell (row-major) a neighbour must be below it; after it, not above.
          if (j < i ? !(n < v) : n > v) {
            peak = false;
            break;
          }
        }
      }
      if (peak) peaks.push_back(i);
    }
  }
  return peaks;
}

void PeakF1Accumulator::add(std::span<const float> ref, std::span<const float> test, int64_t height, int64_t width,
                            double threshold, int64_t window, int64_t radius) {
  WH_CHECK(ref.size() == test.size(), "PeakF1Accumulator::add: lengths differ");
  const auto cells = static_cast<size_t>(height * width);
  WH_CHECK(cells > 0 && ref.size() % cells == 0, "PeakF1Accumulator::add: not a whole number of maps");
  for (size_t start = 0; start < ref.size(); start += cells) {
    const std::span<const float> r = ref.subspan(start, cells), t = test.subspan(start, cells);
    std::vector<int64_t> rp = findPeaks(r, height, width, threshold, window);
    const std::vector<int64_t> tp = findPeaks(t, height, width, threshold, window);
    ref_ += static_cast<int64_t>(rp.size());
    test_ += static_cast<int64_t>(tp.size());
    std::stable_sort(rp.begin(), rp.end(),
                     [&](int64_t a, int64_t b) { return r[static_cast<size_t>(a)] > r[static_cast<size_t>(b)]; });
    std::vector<bool> used(tp.size(), false);
    for (int64_t p : rp) {
      const int64_t py = p / width, px = p % width;
      int64_t best = -1, bestDistance = radius + 1;
      for (size_t k = 0; k < tp.size(); ++k) {
        if (used[k]) continue;
        const int64_t d = std::max(std::abs(tp[k] / width - py), std::abs(tp[k] % width - px));
        if (d < bestDistance) {
          bestDistance = d;
          best = static_cast<int64_t>(k);
        }
      }
      if (best >= 0) {
        used[static_cast<size_t>(best)] = true;
        ++matched_;
      }
    }
  }
}

}  // namespace whittle::tune
