#include "whittle/data/image.h"

#include <jpeglib.h>
// After jpeglib.h, which it needs.
#include <jerror.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "whittle/common/file_util.h"

namespace whittle::data {
namespace {

// Writes the error for an image over kMaxImagePixels into `message`; leaves it alone otherwise.
void checkPixelCount(uint64_t width, uint64_t height, char* message, size_t size) {
  if (width * height <= static_cast<uint64_t>(kMaxImagePixels)) return;
  std::snprintf(message, size, "%llu x %llu pixels is more than the %lld that PIL decodes (a decompression bomb?)",
                static_cast<unsigned long long>(width), static_cast<unsigned long long>(height),
                static_cast<long long>(kMaxImagePixels));
}

// ---------------------------------------------------------------- JPEG

struct JpegError {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpegQuiet(j_common_ptr) {}  // library code never prints: drop warnings

// Warnings pass, except data that ends early: PIL refuses a truncated file ("image file is
// truncated"), and libjpeg would make up every missing row, however many the header claims.
void jpegEmitMessage(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpegErrorExit(cinfo);
}

// libjpeg reports errors by longjmp, so this function keeps only trivially destructible
// locals alive across the jump; the output vector belongs to the caller.
bool decodeJpegRaw(const unsigned char* data, size_t size, Image* out, bool* cmyk, bool* adobe, char* message) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpegErrorExit;
  err.pub.output_message = jpegQuiet;
  err.pub.emit_message = jpegEmitMessage;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", err.message);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  checkPixelCount(cinfo.image_width, cinfo.image_height, message, JMSG_LENGTH_MAX);
  if (message[0] != '\0') {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  *cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  *adobe = cinfo.saw_Adobe_marker;
  if (*cmyk) {
    cinfo.out_color_space = JCS_CMYK;
  } else if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else {
    cinfo.out_color_space = JCS_RGB;
  }
  jpeg_start_decompress(&cinfo);
  out->width = static_cast<int>(cinfo.output_width);
  out->height = static_cast<int>(cinfo.output_height);
  out->channels = cinfo.output_components;
  out->pixels.resize(static_cast<size_t>(out->width) * out->height * out->channels);
  size_t stride = static_cast<size_t>(out->width) * out->channels;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() + cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

// PIL's cmyk2rgb (Convert.c), after undoing Adobe's inverted storage as PIL's "CMYK;I" does.
void cmykToRgb(Image& image, bool inverted) {
  std::vector<uint8_t> rgb(static_cast<size_t>(image.width) * image.height * 3);
  auto muldiv255 = [](int a, int b) {
    int tmp = a * b + 128;
    return ((tmp >> 8) + tmp) >> 8;
  };
  for (size_t i = 0, n = static_cast<size_t>(image.width) * image.height; i < n; ++i) {
    int c[4];
    for (int k = 0; k < 4; ++k) {
      c[k] = image.pixels[i * 4 + static_cast<size_t>(k)];
      if (inverted) c[k] = 255 - c[k];
    }
    int nk = 255 - c[3];
    for (int k = 0; k < 3; ++k) rgb[i * 3 + static_cast<size_t>(k)] = static_cast<uint8_t>(std::clamp(nk - muldiv255(c[k], nk), 0, 255));
  }
  image.pixels = std::move(rgb);
  image.channels = 3;
}

Expected<Image> decodeJpeg(const std::string& bytes, const std::string& label) {
  Image image;
  bool cmyk = false, adobe = false;
  char message[JMSG_LENGTH_MAX] = {0};
  if (!decodeJpegRaw(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), &image, &cmyk, &adobe,
                     message)) {
    return invalidInput(label + ": cannot decode JPEG: " + message);
  }
  if (cmyk) cmykToRgb(image, adobe);
  return toRgb(image);
}

// ---------------------------------------------------------------- PNG

struct PngReadState {
  const unsigned char* data;
  size_t size;
  size_t pos;
  char message[256];
};

void pngRead(png_structp png, png_bytep out, png_size_t n) {
  auto* state = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > state->size - state->pos) png_error(png, "file is truncated");
  std::memcpy(out, state->data + state->pos, n);
  state->pos += n;
}

void pngError(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngReadState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof(state->message), "%s", message);
  png_longjmp(png, 1);
}

void pngWarning(png_structp, png_const_charp) {}

bool decodePngRaw(const unsigned char* data, size_t size, Image* out, std::vector<png_bytep>* rows,
                  PngReadState* state) {
  state->data = data;
  state->size = size;
  state->pos = 0;
  state->message[0] = '\0';
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, pngError, pngWarning);
  if (png == nullptr) {
    std::snprintf(state->message, sizeof(state->message), "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
    return false;
  }
  png_set_read_fn(png, state, pngRead);
  png_read_info(png, info);
  checkPixelCount(png_get_image_width(png, info), png_get_image_height(png, info), state->message,
                  sizeof(state->message));
  if (state->message[0] != '\0') {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  int colorType = png_get_color_type(png, info);
  int bitDepth = png_get_bit_depth(png, info);
  // Expand palettes, low-bit grey and tRNS; keep the high byte of 16-bit samples (as PIL);
  // make grey RGB; drop alpha (PIL's convert("RGB") drops it, no compositing).
  png_set_expand(png);
  if (bitDepth == 16) png_set_strip_16(png);
  if (colorType == PNG_COLOR_TYPE_GRAY || colorType == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = static_cast<int>(png_get_image_width(png, info));
  out->height = static_cast<int>(png_get_image_height(png, info));
  out->channels = png_get_channels(png, info);
  if (out->channels != 3 || png_get_rowbytes(png, info) != static_cast<size_t>(out->width) * 3) {
    std::snprintf(state->message, sizeof(state->message), "unexpected pixel layout after conversion to RGB");
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  out->pixels.resize(static_cast<size_t>(out->width) * out->height * 3);
  rows->resize(static_cast<size_t>(out->height));
  for (int y = 0; y < out->height; ++y) (*rows)[static_cast<size_t>(y)] = out->pixels.data() + static_cast<size_t>(y) * out->width * 3;
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

Expected<Image> decodePng(const std::string& bytes, const std::string& label) {
  Image image;
  std::vector<png_bytep> rows;
  PngReadState state{};
  if (!decodePngRaw(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), &image, &rows, &state)) {
    return invalidInput(label + ": cannot decode PNG: " + state.message);
  }
  return image;
}

// ---------------------------------------------------------------- resampling (PIL Resample.c)

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coefficients {
  int taps = 0;                 // coefficients per output pixel
  std::vector<int> bounds;      // (first input index, count) per output pixel
  std::vector<int32_t> weights; // fixed point, `taps` per output pixel
};

double bilinearFilter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

Coefficients precompute(int inSize, int outSize) {
  double scale = static_cast<double>(inSize) / outSize;
  double filterScale = std::max(scale, 1.0);
  double support = 1.0 * filterScale;
  Coefficients c;
  c.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(outSize) * 2);
  c.weights.assign(static_cast<size_t>(outSize) * c.taps, 0);
  std::vector<double> k(static_cast<size_t>(c.taps));
  for (int xx = 0; xx < outSize; ++xx) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterScale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    std::fill(k.begin(), k.end(), 0.0);
    for (int x = 0; x < xmax; ++x) {
      double w = bilinearFilter((x + xmin - center + 0.5) * ss);
      k[static_cast<size_t>(x)] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[static_cast<size_t>(x)] /= ww;
    }
    for (int x = 0; x < c.taps; ++x) {
      double v = k[static_cast<size_t>(x)] * (1 << kPrecisionBits);
      c.weights[static_cast<size_t>(xx) * c.taps + x] = static_cast<int32_t>(v < 0 ? -0.5 + v : 0.5 + v);
    }
    c.bounds[static_cast<size_t>(xx) * 2] = xmin;
    c.bounds[static_cast<size_t>(xx) * 2 + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Horizontal pass over input rows [firstRow, firstRow + outHeight).
Image resampleHorizontal(const Image& in, int outWidth, int firstRow, int rows, const Coefficients& c) {
  Image out{outWidth, rows, in.channels, std::vector<uint8_t>(static_cast<size_t>(outWidth) * rows * in.channels)};
  const int ch = in.channels;
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(y + firstRow) * in.width * ch;
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * outWidth * ch;
    for (int xx = 0; xx < outWidth; ++xx) {
      int xmin = c.bounds[static_cast<size_t>(xx) * 2], xmax = c.bounds[static_cast<size_t>(xx) * 2 + 1];
      const int32_t* k = &c.weights[static_cast<size_t>(xx) * c.taps];
      for (int ci = 0; ci < ch; ++ci) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < xmax; ++x) ss += src[(x + xmin) * ch + ci] * k[x];
        dst[xx * ch + ci] = clip8(ss);
      }
    }
  }
  return out;
}

Image resampleVertical(const Image& in, int outHeight, const Coefficients& c, int shift) {
  const int ch = in.channels;
  const size_t stride = static_cast<size_t>(in.width) * ch;
  Image out{in.width, outHeight, ch, std::vector<uint8_t>(stride * outHeight)};
  for (int yy = 0; yy < outHeight; ++yy) {
    int ymin = c.bounds[static_cast<size_t>(yy) * 2] - shift, ymax = c.bounds[static_cast<size_t>(yy) * 2 + 1];
    const int32_t* k = &c.weights[static_cast<size_t>(yy) * c.taps];
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(yy) * stride;
    for (size_t x = 0; x < stride; ++x) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += in.pixels[static_cast<size_t>(y + ymin) * stride + x] * k[y];
      dst[x] = clip8(ss);
    }
  }
  return out;
}

int roundHalfEven(double v) {
  double r = std::nearbyint(v);  // default rounding mode: to nearest, ties to even
  return static_cast<int>(r);
}

}  // namespace

Expected<Image> decodeImageBytes(const std::string& bytes, const std::string& label) {
  auto u = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  if (bytes.size() >= 3 && u(0) == 0xFF && u(1) == 0xD8 && u(2) == 0xFF) return decodeJpeg(bytes, label);
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return decodePng(bytes, label);
  return unimplemented(label + ": not a JPEG or PNG image (unrecognised file signature)");
}

Expected<Image> decodeImage(const std::string& path) {
  WH_ASSIGN_OR_RETURN(std::string bytes, readFile(path));
  return decodeImageBytes(bytes, path);
}

Image toGrey(const Image& image) {
  if (image.channels == 1) return image;
  Image out{image.width, image.height, 1, std::vector<uint8_t>(static_cast<size_t>(image.width) * image.height)};
  for (size_t i = 0; i < out.pixels.size(); ++i) {
    const uint8_t* p = &image.pixels[i * 3];
    out.pixels[i] = static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
  }
  return out;
}

Image toRgb(const Image& image) {
  if (image.channels == 3) return image;
  Image out{image.width, image.height, 3, std::vector<uint8_t>(static_cast<size_t>(image.width) * image.height * 3)};
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    out.pixels[i * 3] = out.pixels[i * 3 + 1] = out.pixels[i * 3 + 2] = image.pixels[i];
  }
  return out;
}

Image resizeBilinear(const Image& image, int width, int height) {
  bool horizontal = width != image.width;
  bool vertical = height != image.height;
  if (!horizontal && !vertical) return image;
  Coefficients cx = precompute(image.width, width);
  Coefficients cy = precompute(image.height, height);
  // Only the input rows that the vertical pass reads go through the horizontal pass.
  int firstRow = cy.bounds[0];
  int lastRow = cy.bounds[static_cast<size_t>(height) * 2 - 2] + cy.bounds[static_cast<size_t>(height) * 2 - 1];
  if (!horizontal) return resampleVertical(image, height, cy, 0);
  Image temp = resampleHorizontal(image, width, firstRow, lastRow - firstRow, cx);
  if (!vertical) return temp;
  return resampleVertical(temp, height, cy, firstRow);
}

void shortSideSize(int width, int height, int shortSide, int* outWidth, int* outHeight) {
  if (width <= height) {
    *outWidth = shortSide;
    *outHeight = static_cast<int>(static_cast<int64_t>(shortSide) * height / width);
  } else {
    *outHeight = shortSide;
    *outWidth = static_cast<int>(static_cast<int64_t>(shortSide) * width / height);
  }
}

Expected<Image> centerCrop(const Image& image, int width, int height) {
  if (width > image.width || height > image.height) {
    return invalidInput("crop " + std::to_string(width) + "x" + std::to_string(height) + " is larger than the " +
                        std::to_string(image.width) + "x" + std::to_string(image.height) +
                        " image; resize it first (resize=N)");
  }
  int top = roundHalfEven((image.height - height) / 2.0);
  int left = roundHalfEven((image.width - width) / 2.0);
  const int ch = image.channels;
  Image out{width, height, ch, std::vector<uint8_t>(static_cast<size_t>(width) * height * ch)};
  for (int y = 0; y < height; ++y) {
    std::memcpy(out.pixels.data() + static_cast<size_t>(y) * width * ch,
                image.pixels.data() + (static_cast<size_t>(y + top) * image.width + left) * ch,
                static_cast<size_t>(width) * ch);
  }
  return out;
}

}  // namespace whittle::data
