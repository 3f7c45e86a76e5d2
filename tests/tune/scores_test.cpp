#include <catch2/catch.hpp>

#include "whittle/tune/tune.h"

namespace whittle {
namespace {

TEST_CASE("parseScoreSpec reads OUTPUT:CHANNELS:THRESHOLD", "[tune]") {
  auto one = tune::parseScoreSpec("scores:1:0.7");
  REQUIRE(one.isOk());
  CHECK(one->output == "scores");
  CHECK(one->firstChannel == 1);
  CHECK(one->lastChannel == 1);
  CHECK(one->threshold == 0.7);
  CHECK(one->text() == "scores:1:0.7");

  auto range = tune::parseScoreSpec("845:12-14:0.3");
  REQUIRE(range.isOk());
  CHECK(range->firstChannel == 12);
  CHECK(range->lastChannel == 14);
  CHECK(range->text() == "845:12-14:0.3");

  // Every channel; an output name holding ':' (a TensorFlow export) keeps it.
  auto all = tune::parseScoreSpec("serving_default:0:*:-1.5");
  REQUIRE(all.isOk());
  CHECK(all->output == "serving_default:0");
  CHECK(all->firstChannel == 0);
  CHECK(all->lastChannel == -1);
  CHECK(all->threshold == -1.5);
  CHECK(all->text() == "serving_default:0:*:-1.5");

  for (const char* bad : {"scores", "scores:0.7", ":1:0.7", "scores:1:", "scores:1:high", "scores:-1:0.5",
                          "scores:a-b:0.5", "scores:1.5:0.5", "scores:1:0.7x", "scores:1:nan"}) {
    INFO(bad);
    auto r = tune::parseScoreSpec(bad);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().code() == StatusCode::kInvalidInput);
    CHECK_THAT(r.status().message(), Catch::Contains("--scores"));
  }
  auto empty = tune::parseScoreSpec("scores:5-2:0.5");
  REQUIRE_FALSE(empty.isOk());
  CHECK_THAT(empty.status().message(), Catch::Contains("range 5-2 is empty"));
}

TEST_CASE("parseScoreSpec reads a peaks field", "[tune]") {
  auto plain = tune::parseScoreSpec("537:axis=1:0:0.2");
  REQUIRE(plain.isOk());
  CHECK(plain->peakWindow == 0);

  auto peaks = tune::parseScoreSpec("537:axis=1:0:0.2:peaks");
  REQUIRE(peaks.isOk());
  CHECK(peaks->output == "537");
  CHECK(peaks->axis == 1);
  CHECK(peaks->threshold == Approx(0.2));
  CHECK(peaks->peakWindow == 3);
  CHECK(peaks->peakRadius == 1);
  CHECK(peaks->text() == "537:axis=1:0:0.2:peaks");

  auto five = tune::parseScoreSpec("heat:0:0.3:peaks=5");
  REQUIRE(five.isOk());
  CHECK(five->peakWindow == 5);
  CHECK(five->peakRadius == 2);
  CHECK(five->text() == "heat:0:0.3:peaks=5");

  auto radius = tune::parseScoreSpec("heat:axis=-3:*:0.3:peaks=3/2");
  REQUIRE(radius.isOk());
  CHECK(radius->axis == -3);
  CHECK(radius->lastChannel == -1);
  CHECK(radius->peakWindow == 3);
  CHECK(radius->peakRadius == 2);
  CHECK(radius->text() == "heat:axis=-3:*:0.3:peaks=3/2");
  auto exact = tune::parseScoreSpec("heat:0:0.3:peaks=7/0");
  REQUIRE(exact.isOk());
  CHECK(exact->peakRadius == 0);
  CHECK(exact->text() == "heat:0:0.3:peaks=7/0");

  for (const char* bad : {"heat:0:0.3:peaks=4", "heat:0:0.3:peaks=1", "heat:0:0.3:peaks=", "heat:0:0.3:peaks=3/",
                          "heat:0:0.3:peaks=3/-1", "heat:0:0.3:peaksx", "heat:0:0.3:peaks=a"}) {
    INFO(bad);
    auto r = tune::parseScoreSpec(bad);
    REQUIRE_FALSE(r.isOk());
    CHECK_THAT(r.status().message(), Catch::Contains("--scores '" + std::string(bad) + "'") &&
                                         Catch::Contains("peaks=K/R"));
  }
  // The rest of the spec is checked as without the field; the message quotes the whole spec.
  auto noThreshold = tune::parseScoreSpec("heat:0:peaks");
  REQUIRE_FALSE(noThreshold.isOk());
  CHECK_THAT(noThreshold.status().message(), Catch::Contains("--scores 'heat:0:peaks'"));
}

TEST_CASE("parseScoreSpec reads an axis field", "[tune]") {
  auto heat = tune::parseScoreSpec("537:axis=1:0:0.2");
  REQUIRE(heat.isOk());
  CHECK(heat->output == "537");
  CHECK(heat->axis == 1);
  CHECK(heat->firstChannel == 0);
  CHECK(heat->lastChannel == 0);
  CHECK(heat->threshold == 0.2);
  CHECK(heat->text() == "537:axis=1:0:0.2");

  auto yolo = tune::parseScoreSpec("output0:axis=-2:4-21:0.25");
  REQUIRE(yolo.isOk());
  CHECK(yolo->axis == -2);
  CHECK(yolo->text() == "output0:axis=-2:4-21:0.25");

  // The last axis is the default and is not written; a name with ':' keeps it before the axis.
  auto last = tune::parseScoreSpec("a:b:axis=-1:*:0.5");
  REQUIRE(last.isOk());
  CHECK(last->output == "a:b");
  CHECK(last->axis == -1);
  CHECK(last->text() == "a:b:*:0.5");

  for (const char* bad : {"axis=1:0:0.5", "s:axis=:0:0.5", "s:axis=x:0:0.5", "s:axis=1.5:0:0.5", "s:axis=--1:0:0.5"}) {
    INFO(bad);
    auto r = tune::parseScoreSpec(bad);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().code() == StatusCode::kInvalidInput);
    CHECK_THAT(r.status().message(), Catch::Contains(std::string("--scores '") + bad + "'"));
  }
}

}  // namespace
}  // namespace whittle
