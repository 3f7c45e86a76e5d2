#pragma once
// Image decoding (the codec module: JPEG through libjpeg-turbo, PNG through libpng, ...) and the
// geometric steps of preprocessing: resize and centre crop, written to give the same pixels as PIL.

#include <cstdint>
#include <string>
#include <vector>

#include "whittle/codec/image.h"
#include "whittle/common/status.h"

namespace whittle::data {

/// An 8-bit image (whittle/codec/image.h, shared with the runtime's ImageDecoder).
using Image = codec::Image;
using codec::kMaxImagePixels;

/// Decodes an image file (chosen by its first bytes; see codec::decodeImageBytes for the formats) to 8-bit RGB, as PIL's
/// Image.open(path).convert("RGB") does: greyscale is replicated to three channels, alpha is
/// dropped, 16-bit samples keep their high byte, palettes are expanded; CMYK JPEGs are
/// converted as PIL does. EXIF orientation is not applied (PIL does not either).
Expected<Image> decodeImage(const std::string& path);
/// Decodes an in-memory image; `label` names it in errors.
Expected<Image> decodeImageBytes(const std::string& bytes, const std::string& label);

/// RGB to PIL's "L" grey, and grey replicated to RGB (codec/image.h).
using codec::toGrey;
using codec::toRgb;

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
