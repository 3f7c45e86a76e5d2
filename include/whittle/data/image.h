#pragma once
// Image decoding (JPEG through libjpeg-turbo, PNG through libpng) and the geometric steps
// of preprocessing: resize and centre crop, written to give the same pixels as PIL.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::data {

/// An 8-bit image, rows top to bottom, channels interleaved (HWC): 3 (RGB) or 1 (grey).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;

  size_t byteSize() const { return static_cast<size_t>(width) * height * channels; }
};

/// The most pixels an image may have: PIL's decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS,
/// beyond which Image.open raises DecompressionBombError). A few bytes of PNG or JPEG header can
/// claim 1,000,000 x 1,000,000 pixels; larger images are an error before anything is allocated.
inline constexpr int64_t kMaxImagePixels = 178956970;

/// Decodes a JPEG or PNG file (chosen by its first bytes) to 8-bit RGB, as PIL's
/// Image.open(path).convert("RGB") does: greyscale is replicated to three channels, alpha is
/// dropped, 16-bit samples keep their high byte, palettes are expanded; CMYK JPEGs are
/// converted as PIL does. EXIF orientation is not applied (PIL does not either).
Expected<Image> decodeImage(const std::string& path);
/// Decodes an in-memory JPEG or PNG; `label` names it in errors.
Expected<Image> decodeImageBytes(const std::string& bytes, const std::string& label);

/// Converts RGB to one grey channel with PIL's "L" weights (ITU-R 601-2: 299/587/114,
/// fixed point, rounded); a grey image is returned unchanged.
Image toGrey(const Image& image);
/// Replicates a grey image to RGB; an RGB image is returned unchanged.
Image toRgb(const Image& image);

/// Resizes with PIL's BILINEAR filter (Image.resize(size, Image.BILINEAR), which torchvision's
/// Resize uses for PIL images): a triangle filter whose support widens with the reduction
/// factor (so it antialiases when shrinking), separable, horizontal pass first, 22-bit fixed
/// point coefficients, each pass rounded and clamped to 8 bits. Same size: a copy.
Image resizeBilinear(const Image& image, int width, int height);

/// The output size of "resize the short side to `shortSide`", as torchvision computes it:
/// the long side becomes floor(shortSide * long / short).
void shortSideSize(int width, int height, int shortSide, int* outWidth, int* outHeight);

/// Cuts the centred `width` x `height` window, offsets rounded as torchvision's CenterCrop
/// (round half to even of (size - crop) / 2). A crop larger than the image is an error.
Expected<Image> centerCrop(const Image& image, int width, int height);

}  // namespace whittle::data
