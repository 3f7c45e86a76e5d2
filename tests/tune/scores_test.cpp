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

}  // namespace
}  // namespace whittle
