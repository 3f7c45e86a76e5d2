// ImageDecoder (kernels/cpu/image_decoder.cpp over the codec module): hand-made BMP and PNM
// files decode to their pixels in RGB, BGR and grey (the node tests cover JPEG, PNG, TIFF, WebP
// and JPEG 2000 against PIL), and bad input is refused naming the node.
#include "kernels/cpu/long_tail_cases.h"
#include "support/kernel_harness.h"

using namespace whittle;
using whittle::testing::failureOf;
using whittle::testing::runDomainNode;

namespace {
ir::Tensor bytesTensor(const std::string& s) {
  std::vector<uint8_t> v(s.begin(), s.end());
  return ir::Tensor::fromVector<uint8_t>(ir::DataType::kUint8, {static_cast<int64_t>(v.size())}, v);
}

/// A 2x2 24-bit BMP, bottom-up: top row red, green; bottom row blue, white.
std::string bmp2x2() {
  std::string b = "BM";
  auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
  };
  auto put16 = [&](uint16_t v) {
    for (int i = 0; i < 2; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
  };
  put32(54 + 16);
  put32(0);
  put32(54);
  put32(40);
  put32(2);
  put32(2);
  put16(1);
  put16(24);
  put32(0);
  put32(16);
  put32(0);
  put32(0);
  put32(0);
  put32(0);
  // Rows are stored bottom first, BGR, padded to 4 bytes.
  b += std::string("\xff\x00\x00\xff\xff\xff\x00\x00", 8);  // blue, white + pad
  b += std::string("\x00\x00\xff\x00\xff\x00\x00\x00", 8);  // red, green + pad
  return b;
}
}  // namespace

TEST_CASE("ImageDecoder decodes BMP and PNM in RGB, BGR and grey", "[kernels][image_decoder]") {
  auto rgb = runDomainNode("", 20, "ImageDecoder", {bytesTensor(bmp2x2())}, {});
  REQUIRE(rgb.isOk());
  REQUIRE((*rgb)[0].dims() == std::vector<int64_t>{2, 2, 3});
  std::vector<uint8_t> expected = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
  CHECK(std::vector<uint8_t>((*rgb)[0].data<uint8_t>(), (*rgb)[0].data<uint8_t>() + 12) == expected);
  auto bgr = runDomainNode("", 20, "ImageDecoder", {bytesTensor(bmp2x2())},
                           {ir::Attribute::makeString("pixel_format", "BGR")});
  REQUIRE(bgr.isOk());
  CHECK((*bgr)[0].data<uint8_t>()[0] == 0);
  CHECK((*bgr)[0].data<uint8_t>()[2] == 255);
  std::string pnm = "P6\n# comment\n2 1\n255\n";
  pnm += std::string("\x0a\x14\x1e\xc8\x64\x00", 6);
  auto grey = runDomainNode("", 20, "ImageDecoder", {bytesTensor(pnm)},
                            {ir::Attribute::makeString("pixel_format", "Grayscale")});
  REQUIRE(grey.isOk());
  REQUIRE((*grey)[0].dims() == std::vector<int64_t>{1, 2, 1});
  // PIL's L in 16-bit fixed point: (19595 R + 38470 G + 7471 B + 2^15) >> 16.
  CHECK((*grey)[0].data<uint8_t>()[0] == 18);
  CHECK((*grey)[0].data<uint8_t>()[1] == 118);
}

TEST_CASE("ImageDecoder refuses bad input naming the node", "[kernels][image_decoder]") {
  CHECK_THAT(failureOf(runDomainNode("", 20, "ImageDecoder", {bytesTensor("GIF89a....")}, {})),
             Catch::Contains("ImageDecoder 'node'") && Catch::Contains("unrecognised file signature"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "ImageDecoder", {bytesTensor(bmp2x2().substr(0, 60))}, {})),
             Catch::Contains("pixel data is truncated"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "ImageDecoder", {bytesTensor(bmp2x2())},
                                     {ir::Attribute::makeString("pixel_format", "RGBA")})),
             Catch::Contains("pixel_format must be RGB, BGR or Grayscale"));
  CHECK_THAT(failureOf(runDomainNode("", 20, "ImageDecoder", {ir::Tensor(ir::DataType::kFloat, {4})}, {})),
             Catch::Contains("1-D uint8"));
}
