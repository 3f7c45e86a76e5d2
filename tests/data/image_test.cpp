// Image decoding on hostile input: files found by fuzz/fuzz_image, kept in
// tests/fuzz_regressions/ (docs/fuzzing.md). Decoding real images is tested in dataset_test.cpp.
#include "whittle/data/image.h"

#include <catch2/catch.hpp>

#include <string>

namespace whittle {
namespace {

std::string regression(const std::string& name) { return std::string(WHITTLE_SOURCE_DIR) + "/tests/fuzz_regressions/" + name; }

TEST_CASE("image: a header claiming more pixels than PIL decodes is an error before any allocation",
          "[data][image][fuzz]") {
  // 68 bytes of PNG claiming 1,000,000 x 1,000,000 RGB (3 TB), and a 415-byte JPEG whose frame
  // header claims 65,500 x 65,500 (4.3 GB): the pixel buffer was sized from the header.
  struct Case {
    const char* file;
    const char* size;
  };
  for (const Case& c : {Case{"image_png_1000000x1000000.png", "1000000 x 1000000 pixels"},
                        Case{"image_jpeg_65500x65500.jpg", "65500 x 65500 pixels"}}) {
    CAPTURE(c.file);
    std::string path = regression(c.file);
    auto image = data::decodeImage(path);
    REQUIRE_FALSE(image.isOk());
    CHECK(image.status().code() == StatusCode::kInvalidInput);
    const std::string& message = image.status().message();
    CHECK(message.find(path + ": cannot decode ") == 0);
    CHECK(message.find(std::string(c.size) + " is more than the 178956970 that PIL decodes") != std::string::npos);
  }
}

TEST_CASE("image: a truncated JPEG is an error, as in PIL", "[data][image][fuzz]") {
  // 551 bytes claiming 33048 x 369: libjpeg made up every missing row (a timeout under the
  // fuzzer); PIL raises "image file is truncated".
  std::string path = regression("image_jpeg_truncated_33048x369.jpg");
  auto image = data::decodeImage(path);
  REQUIRE_FALSE(image.isOk());
  CHECK(image.status().message() == path + ": cannot decode JPEG: Premature end of JPEG file");
}

}  // namespace
}  // namespace whittle
