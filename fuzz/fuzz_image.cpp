// fuzz_image: image bytes -> data::decodeImageBytes (JPEG through libjpeg-turbo, PNG through
// libpng, chosen by the signature), then the geometric preprocessing that image data sets
// apply to what decodes (images up to 2**20 pixels): resize of the short side, centre crop,
// grey conversion.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "whittle/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace whittle;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto image = data::decodeImageBytes(bytes, "fuzz.img");
  if (!image.isOk()) {
    fuzz::checkNotInternal(image.status(), "decodeImageBytes");
    return 0;
  }
  if (image->width <= 0 || image->height <= 0 || image->channels != 3 || image->pixels.size() != image->byteSize()) {
    fuzz::fail("decoded image has an inconsistent layout: " + std::to_string(image->width) + "x" +
               std::to_string(image->height) + "x" + std::to_string(image->channels));
  }
  // The preprocessing is arithmetic over every pixel (slow under the fuzzer's instrumentation)
  // whose branches do not depend on the size: large images add time, not coverage.
  if (static_cast<int64_t>(image->width) * image->height > (int64_t{1} << 20)) return 0;
  int width = 0, height = 0;
  data::shortSideSize(image->width, image->height, /*shortSide=*/16, &width, &height);
  if (width > 0 && height > 0 && width <= 4096 && height <= 4096) {
    data::Image resized = data::resizeBilinear(*image, width, height);
    auto cropped = data::centerCrop(resized, 16, 16);
    if (!cropped.isOk()) fuzz::fail("centre crop after a short-side resize failed: " + cropped.status().message());
  }
  data::Image grey = data::toGrey(*image);
  if (grey.pixels.size() != static_cast<size_t>(image->width) * image->height) fuzz::fail("grey image has the wrong size");
  return 0;
}
