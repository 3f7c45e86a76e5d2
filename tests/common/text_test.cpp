// The shared text helpers of the reports and the command line.
#include "whittle/common/text.h"

#include <catch2/catch.hpp>
#include <cmath>

namespace whittle {
namespace {

TEST_CASE("fmt formats like printf, at any length", "[common][text]") {
  CHECK(fmt("%.2f", 3.14159) == "3.14");
  CHECK(fmt("%s = %d", "n", 42) == "n = 42");
  CHECK(fmt("%+.2f pp", -0.5) == "-0.50 pp");
  std::string wide(300, 'x');
  CHECK(fmt("[%s]", wide.c_str()) == "[" + wide + "]");
  CHECK(fmt("%s", "").empty());
}

TEST_CASE("bytesText picks the unit", "[common][text]") {
  CHECK(bytesText(-1) == "?");
  CHECK(bytesText(0) == "0 B");
  CHECK(bytesText(1023) == "1023 B");
  CHECK(bytesText(1024) == "1.0 KiB");
  CHECK(bytesText(1536) == "1.5 KiB");
  CHECK(bytesText(int64_t{5} << 20) == "5.00 MiB");
  CHECK(bytesText((int64_t{3} << 30) / 2) == "1.50 GiB");
  CHECK(bytesText(int64_t{2} << 40) == "2.00 TiB");
  CHECK(bytesText(int64_t{3000} << 40) == "3000.00 TiB");
}

TEST_CASE("formatDb writes infinities by name", "[common][text]") {
  CHECK(formatDb(INFINITY) == "inf dB");
  CHECK(formatDb(-INFINITY) == "-inf dB");
  CHECK(formatDb(NAN) == "nan dB");
  CHECK(formatDb(12.345, 2) == "12.35 dB");
  CHECK(formatDb(12.345) == "12.3 dB");
}

}  // namespace
}  // namespace whittle
