#pragma once
// Image decoding shared by the data module (image folders) and the runtime (ImageDecoder):
// the codec module sits on common alone, so that both may use it. Every decoder gives the
// pixels PIL gives for the same bytes.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::codec {

/// An 8-bit image, rows top to bottom, channels interleaved (HWC): 3 (RGB) or 1 (grey).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;

  size_t byteSize() const { return static_cast<size_t>(width) * height * channels; }
};

/// The most pixels an image may have: PIL's decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS,
/// beyond which Image.open raises DecompressionBombError). A few bytes of a header can claim
/// 1,000,000 x 1,000,000 pixels; larger images are an error before anything is allocated.
inline constexpr int64_t kMaxImagePixels = 178956970;

/// Decodes an in-memory image, its format told by its first bytes, to 8-bit RGB as PIL's
/// Image.open(...).convert("RGB") does: JPEG (libjpeg-turbo; CMYK converted as PIL does), PNG
/// (libpng; grey replicated, alpha dropped, 16-bit samples keep their high byte, palettes
/// expanded), BMP (uncompressed 8, 24 and 32 bits per pixel), PNM (binary P5 and P6, maxval up
/// to 255), TIFF (libtiff), WebP (libwebp) and JPEG 2000 (OpenJPEG; .jp2 and raw codestreams).
/// EXIF orientation is not applied (PIL does not either). `label` names the image in errors.
Expected<Image> decodeImageBytes(const std::string& bytes, const std::string& label);

/// Converts RGB to one grey channel with PIL's "L" weights (ITU-R 601-2: 299/587/114,
/// fixed point, rounded); a grey image is returned unchanged.
Image toGrey(const Image& image);
/// Replicates a grey image to RGB; an RGB image is returned unchanged.
Image toRgb(const Image& image);

}  // namespace whittle::codec
