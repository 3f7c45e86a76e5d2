// Peaks of a score map and their F1 against a reference (src/tune/peaks.cpp).
#include "tune/peaks.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

namespace whittle::tune {
namespace {

/// A 6 x 8 map of zeros with `cells` {index, value} set.
std::vector<float> map68(std::initializer_list<std::pair<int64_t, float>> cells) {
  std::vector<float> m(48, 0.0f);
  for (auto [i, v] : cells) m[static_cast<size_t>(i)] = v;
  return m;
}

TEST_CASE("findPeaks: a blob of many cells above the threshold is one peak", "[tune]") {
  // A face: a 3 x 3 blob around (2, 3), every cell above 0.2, the centre highest.
  const std::vector<float> m = map68({{1 * 8 + 2, 0.3f}, {1 * 8 + 3, 0.5f}, {1 * 8 + 4, 0.3f},
                                      {2 * 8 + 2, 0.5f}, {2 * 8 + 3, 0.9f}, {2 * 8 + 4, 0.6f},
                                      {3 * 8 + 2, 0.3f}, {3 * 8 + 3, 0.4f}, {3 * 8 + 4, 0.25f}});
  CHECK(findPeaks(m, 6, 8, 0.2, 3) == std::vector<int64_t>{2 * 8 + 3});
  // Above the threshold only: nothing when the peak itself is not.
  CHECK(findPeaks(m, 6, 8, 0.95, 3).empty());
  // A second face two cells beyond the blob's edge is its own peak; in a 7 x 7 window it is not
  // (the window takes the blob's centre in).
  std::vector<float> two = m;
  two[2 * 8 + 6] = 0.7f;
  CHECK(findPeaks(two, 6, 8, 0.2, 3) == std::vector<int64_t>{2 * 8 + 3, 2 * 8 + 6});
  CHECK(findPeaks(two, 6, 8, 0.2, 7) == std::vector<int64_t>{2 * 8 + 3});
}

TEST_CASE("findPeaks: a plateau is one peak, edges and NaN", "[tune]") {
  // Two equal neighbours (an int8 output's step): the first in row-major order is the peak.
  CHECK(findPeaks(map68({{10, 0.5f}, {11, 0.5f}}), 6, 8, 0.2, 3) == std::vector<int64_t>{10});
  CHECK(findPeaks(map68({{10, 0.5f}, {18, 0.5f}, {19, 0.5f}}), 6, 8, 0.2, 3) == std::vector<int64_t>{10});
  // Corners: the window is clipped.
  CHECK(findPeaks(map68({{0, 0.5f}, {47, 0.6f}}), 6, 8, 0.2, 3) == std::vector<int64_t>{0, 47});
  std::vector<float> nan = map68({{20, 0.5f}});
  nan[20] = std::numeric_limits<float>::quiet_NaN();
  CHECK(findPeaks(nan, 6, 8, 0.2, 3).empty());
}

TEST_CASE("PeakF1Accumulator: a shifted peak matches within the radius, a duplicate does not", "[tune]") {
  const std::vector<float> ref = map68({{2 * 8 + 3, 0.9f}, {2 * 8 + 2, 0.5f}, {4 * 8 + 6, 0.6f}});
  SECTION("the same map: every peak found") {
    PeakF1Accumulator acc;
    acc.add(ref, ref, 6, 8, 0.2, 3, 1);
    CHECK(acc.referencePeaks() == 2);
    CHECK(acc.testPeaks() == 2);
    CHECK(acc.matched() == 2);
  }
  SECTION("one peak shifted by one cell: found at radius 1, lost at radius 0") {
    // Many cells change (the cell F1 would count each); the peaks are the same faces.
    const std::vector<float> test = map68({{2 * 8 + 4, 0.8f}, {2 * 8 + 3, 0.7f}, {4 * 8 + 6, 0.6f}});
    PeakF1Accumulator near, exact;
    near.add(ref, test, 6, 8, 0.2, 3, 1);
    exact.add(ref, test, 6, 8, 0.2, 3, 0);
    CHECK(near.matched() == 2);
    CHECK(exact.matched() == 1);
    CHECK(exact.testPeaks() == 2);
  }
  SECTION("a duplicated peak (two faces where there was one) is one false detection") {
    // Two cells apart: both are peaks; one takes the float peak, the other is unmatched.
    const std::vector<float> test = map68({{2 * 8 + 2, 0.9f}, {2 * 8 + 4, 0.85f}, {4 * 8 + 6, 0.6f}});
    PeakF1Accumulator acc;
    acc.add(ref, test, 6, 8, 0.2, 3, 1);
    CHECK(acc.referencePeaks() == 2);
    CHECK(acc.testPeaks() == 3);
    CHECK(acc.matched() == 2);
  }
  SECTION("greedy: the higher float peak takes the nearest int8 peak, each int8 peak once") {
    // Float peaks at (1, 1) 0.9 and (1, 4) 0.5, one int8 peak at (1, 2): a radius of 3 reaches
    // it from both, and it is matched once, to the higher.
    const std::vector<float> r = map68({{9, 0.9f}, {12, 0.5f}});
    const std::vector<float> t = map68({{10, 0.8f}});
    PeakF1Accumulator acc;
    acc.add(r, t, 6, 8, 0.2, 3, 3);
    CHECK(acc.matched() == 1);
    CHECK(acc.referencePeaks() == 2);
  }
  SECTION("several maps in one span are matched map by map") {
    std::vector<float> refs = ref, tests = map68({});
    refs.insert(refs.end(), ref.begin(), ref.end());
    tests.insert(tests.end(), ref.begin(), ref.end());  // the first map lost, the second kept
    PeakF1Accumulator acc;
    acc.add(refs, tests, 6, 8, 0.2, 3, 1);
    CHECK(acc.referencePeaks() == 4);
    CHECK(acc.testPeaks() == 2);
    CHECK(acc.matched() == 2);
  }
}

}  // namespace
}  // namespace whittle::tune
