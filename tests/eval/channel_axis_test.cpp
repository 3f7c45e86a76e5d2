// --channel-axis rules: parsing, the axis each output gets, the layout the per-channel SQNR reads.
#include "whittle/eval/channel_axis.h"

#include <catch2/catch.hpp>

namespace whittle::eval {
namespace {

TEST_CASE("parseChannelAxis and channelAxisOf choose each output's channel axis", "[eval]") {
  auto rule = [](const char* text) {
    auto r = parseChannelAxis(text);
    INFO(text);
    REQUIRE(r.isOk());
    return *r;
  };
  CHECK(rule("1").axis == 1);
  CHECK(rule("-2").axis == -2);
  CHECK(rule("auto").automatic);
  CHECK(rule("537=1").output == "537");
  CHECK(rule("a=b=auto").output == "a=b");
  CHECK(rule("a=b=auto").automatic);
  CHECK(rule("537=-1").text() == "537=-1");
  for (const char* bad : {"", "x", "1.5", "=1", "out=", "out=last"}) {
    INFO(bad);
    auto r = parseChannelAxis(bad);
    REQUIRE_FALSE(r.isOk());
    CHECK_THAT(r.status().message(), Catch::Contains("--channel-axis"));
  }

  const std::vector<int64_t> maps = {1, 2, 120, 160}, yolo = {1, 22, 2100}, rows = {1, 4420, 2}, table = {605, 95};
  auto axisOf = [](const std::vector<ChannelAxisRule>& rules, const std::string& out, const std::vector<int64_t>& d) {
    auto a = channelAxisOf(rules, out, d);
    REQUIRE(a.isOk());
    return *a;
  };
  // No rule: the last axis.
  CHECK(axisOf({}, "y", maps) == 3);
  CHECK(axisOf({}, "y", yolo) == 2);
  CHECK(axisOf({}, "y", {7}) == 0);
  // auto: [N, C, H, W] -> 1; rank 3 -> the shorter of axes 1 and 2; rank 2 -> the last.
  const std::vector<ChannelAxisRule> automatic = {rule("auto")};
  CHECK(axisOf(automatic, "y", maps) == 1);
  CHECK(axisOf(automatic, "y", yolo) == 1);
  CHECK(axisOf(automatic, "y", rows) == 2);
  CHECK(axisOf(automatic, "y", table) == 1);
  CHECK(axisOf(automatic, "y", {1, 3, 3}) == 2);
  // A rule naming the output wins over one for every output, whichever comes first.
  CHECK(axisOf({rule("heat=1"), rule("-1")}, "heat", maps) == 1);
  CHECK(axisOf({rule("-1"), rule("heat=1")}, "heat", maps) == 1);
  CHECK(axisOf({rule("-1"), rule("heat=1")}, "boxes", maps) == 3);
  CHECK(axisOf({rule("-3")}, "y", yolo) == 0);
  // An axis outside the rank names the rule and the output.
  auto far = channelAxisOf({rule("3")}, "output0", yolo);
  REQUIRE_FALSE(far.isOk());
  CHECK_THAT(far.status().message(), Catch::Contains("--channel-axis 3: output 'output0' has rank 3 (-3 .. 2)"));
  auto neg = channelAxisOf({rule("output0=-4")}, "output0", yolo);
  REQUIRE_FALSE(neg.isOk());
  CHECK_THAT(neg.status().message(), Catch::Contains("--channel-axis output0=-4"));
}

TEST_CASE("channelLayout and checkChannelAxisOutputs", "[eval]") {
  const ChannelLayout maps = channelLayout(std::vector<int64_t>{1, 2, 120, 160}, 1);
  CHECK(maps.channels == 2);
  CHECK(maps.inner == 120 * 160);
  const ChannelLayout last = channelLayout(std::vector<int64_t>{1, 4420, 2}, 2);
  CHECK(last.channels == 2);
  CHECK(last.inner == 1);
  CHECK(channelLayout(std::vector<int64_t>{7}, 0).channels == 1);       // rank < 2: the output is its own channel
  CHECK(channelLayout(std::vector<int64_t>{1, 3, 4}, 3).channels == 1);  // outside the rank

  auto rules = [](std::vector<const char*> texts) {
    std::vector<ChannelAxisRule> r;
    for (const char* t : texts) r.push_back(*parseChannelAxis(t));
    return r;
  };
  CHECK(checkChannelAxisOutputs(rules({"1", "heat=1"}), {"heat", "boxes"}).isOk());
  auto missing = checkChannelAxisOutputs(rules({"heat=1", "scores=auto"}), {"heat", "boxes"});
  REQUIRE_FALSE(missing.isOk());
  CHECK_THAT(missing.message(),
             Catch::Contains("--channel-axis scores=auto: the model has no output 'scores' (outputs: 'heat', 'boxes')"));
}

}  // namespace
}  // namespace whittle::eval
