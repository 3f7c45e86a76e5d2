// The image decoders (include/whittle/codec/image.h): JPEG and PNG through libjpeg-turbo and
// libpng (moved here from src/data/image.cpp), BMP and PNM read here, TIFF, WebP and JPEG 2000
// through libtiff, libwebp and OpenJPEG. Each gives the pixels PIL gives for the same bytes.
#include "whittle/codec/image.h"

#include <jpeglib.h>
// After jpeglib.h, which it needs.
#include <jerror.h>
#include <openjpeg.h>
#include <png.h>
#include <tiffio.h>
#include <webp/decode.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>

namespace whittle::codec {
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
    for (int k = 0; k < 3; ++k)
      rgb[i * 3 + static_cast<size_t>(k)] = static_cast<uint8_t>(std::clamp(nk - muldiv255(c[k], nk), 0, 255));
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
  for (int y = 0; y < out->height; ++y)
    (*rows)[static_cast<size_t>(y)] = out->pixels.data() + static_cast<size_t>(y) * out->width * 3;
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

// ---------------------------------------------------------------- BMP

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}
uint16_t le16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(b[at]) | static_cast<unsigned char>(b[at + 1]) << 8);
}

/// Uncompressed BMP (BI_RGB) of 8 (palette), 24 or 32 (BGRX) bits per pixel; rows bottom up
/// unless the height is negative, each padded to 4 bytes.
Expected<Image> decodeBmp(const std::string& b, const std::string& label) {
  auto bad = [&](const std::string& why) { return invalidInput(label + ": cannot decode BMP: " + why); };
  if (b.size() < 26) return bad("file is truncated");
  uint32_t offset = le32(b, 10), headerSize = le32(b, 14);
  if (headerSize < 40 || b.size() < 14 + static_cast<size_t>(headerSize)) {
    return unimplemented(label + ": BMP with a " + std::to_string(headerSize) + "-byte header is not supported");
  }
  auto width = static_cast<int32_t>(le32(b, 18)), height = static_cast<int32_t>(le32(b, 22));
  uint16_t bits = le16(b, 28);
  uint32_t compression = le32(b, 30), colors = le32(b, 46);
  if (compression != 0)
    return unimplemented(label + ": compressed BMP (method " + std::to_string(compression) + ") is not supported");
  if (bits != 8 && bits != 24 && bits != 32)
    return unimplemented(label + ": BMP of " + std::to_string(bits) + " bits per pixel is not supported");
  bool topDown = height < 0;
  int64_t h = std::abs(static_cast<int64_t>(height)), w = width;
  if (w <= 0 || h <= 0) return bad("non-positive size");
  if (w * h > kMaxImagePixels) return bad("too many pixels");
  size_t stride = (static_cast<size_t>(w) * bits / 8 + 3) / 4 * 4;
  if (offset > b.size() || b.size() - offset < stride * static_cast<size_t>(h)) return bad("pixel data is truncated");
  std::vector<uint8_t> palette;
  if (bits == 8) {
    size_t entries = colors == 0 ? 256 : colors;
    size_t at = 14 + headerSize;
    if (entries > 256 || at + entries * 4 > offset) return bad("palette does not fit");
    for (size_t i = 0; i < entries; ++i) {
      for (int k = 2; k >= 0; --k) palette.push_back(static_cast<uint8_t>(b[at + i * 4 + static_cast<size_t>(k)]));
    }
    palette.resize(256 * 3, 0);
  }
  Image image{static_cast<int>(w), static_cast<int>(h), 3, std::vector<uint8_t>(static_cast<size_t>(w * h) * 3)};
  for (int64_t y = 0; y < h; ++y) {
    const auto* row =
        reinterpret_cast<const uint8_t*>(b.data()) + offset + stride * static_cast<size_t>(topDown ? y : h - 1 - y);
    uint8_t* dst = image.pixels.data() + static_cast<size_t>(y * w) * 3;
    for (int64_t x = 0; x < w; ++x) {
      if (bits == 8) {
        std::memcpy(dst + x * 3, &palette[static_cast<size_t>(row[x]) * 3], 3);
      } else {
        const uint8_t* p = row + x * (bits / 8);
        dst[x * 3] = p[2];
        dst[x * 3 + 1] = p[1];
        dst[x * 3 + 2] = p[0];
      }
    }
  }
  return image;
}

// ---------------------------------------------------------------- PNM

/// Binary PNM: P5 (grey) and P6 (RGB), maxval up to 255 (scaled to 255 as PIL does).
Expected<Image> decodePnm(const std::string& b, const std::string& label) {
  auto bad = [&](const std::string& why) { return invalidInput(label + ": cannot decode PNM: " + why); };
  char kind = b[1];
  if (kind != '5' && kind != '6')
    return unimplemented(label + ": PNM type P" + std::string(1, kind) + " is not supported (P5 and P6 are)");
  size_t at = 2;
  int64_t fields[3] = {0, 0, 0};
  for (int64_t& field : fields) {
    while (at < b.size() && (std::isspace(static_cast<unsigned char>(b[at])) || b[at] == '#')) {
      if (b[at] == '#') {
        while (at < b.size() && b[at] != '\n') ++at;
      } else {
        ++at;
      }
    }
    if (at == b.size() || !std::isdigit(static_cast<unsigned char>(b[at]))) return bad("malformed header");
    while (at < b.size() && std::isdigit(static_cast<unsigned char>(b[at]))) {
      field = field * 10 + (b[at++] - '0');
      if (field > (int64_t{1} << 31)) return bad("malformed header");
    }
  }
  ++at;  // one whitespace byte ends the header
  int64_t w = fields[0], h = fields[1], maxval = fields[2];
  if (w <= 0 || h <= 0 || maxval <= 0) return bad("non-positive size or maxval");
  if (maxval > 255) return unimplemented(label + ": 16-bit PNM is not supported");
  if (w * h > kMaxImagePixels) return bad("too many pixels");
  int channels = kind == '6' ? 3 : 1;
  size_t bytes = static_cast<size_t>(w * h) * static_cast<size_t>(channels);
  if (at > b.size() || b.size() - at < bytes) return bad("pixel data is truncated");
  Image image{static_cast<int>(w), static_cast<int>(h), channels, std::vector<uint8_t>(bytes)};
  for (size_t i = 0; i < bytes; ++i) {
    auto v = static_cast<uint8_t>(b[at + i]);
    image.pixels[i] =
        maxval == 255 ? v : static_cast<uint8_t>((std::min<int64_t>(v, maxval) * 255 + maxval / 2) / maxval);
  }
  return toRgb(image);
}

// ---------------------------------------------------------------- TIFF

struct MemoryFile {
  const std::string* bytes;
  toff_t pos = 0;
};

tmsize_t tiffRead(thandle_t h, void* buf, tmsize_t n) {
  auto* f = static_cast<MemoryFile*>(h);
  toff_t left = f->pos < f->bytes->size() ? f->bytes->size() - f->pos : 0;
  auto count = static_cast<toff_t>(n) < left ? static_cast<toff_t>(n) : left;
  std::memcpy(buf, f->bytes->data() + f->pos, count);
  f->pos += count;
  return static_cast<tmsize_t>(count);
}
tmsize_t tiffWrite(thandle_t, void*, tmsize_t) {
  return 0;
}
toff_t tiffSeek(thandle_t h, toff_t off, int whence) {
  auto* f = static_cast<MemoryFile*>(h);
  toff_t base = whence == SEEK_CUR ? f->pos : whence == SEEK_END ? f->bytes->size() : 0;
  f->pos = base + off;
  return f->pos;
}
int tiffClose(thandle_t) {
  return 0;
}
toff_t tiffSize(thandle_t h) {
  return static_cast<MemoryFile*>(h)->bytes->size();
}
int tiffMap(thandle_t, void**, toff_t*) {
  return 0;
}
void tiffUnmap(thandle_t, void*, toff_t) {}
void tiffQuiet(const char*, const char*, va_list) {}

/// The first page, through libtiff's RGBA interface (any photometric, bit depth and compression
/// libtiff reads), alpha dropped.
Expected<Image> decodeTiff(const std::string& b, const std::string& label) {
  TIFFSetErrorHandler(tiffQuiet);
  TIFFSetWarningHandler(tiffQuiet);
  MemoryFile file{&b};
  TIFF* tif = TIFFClientOpen(label.c_str(), "rm", &file, tiffRead, tiffWrite, tiffSeek, tiffClose, tiffSize, tiffMap,
                             tiffUnmap);
  if (tif == nullptr) return invalidInput(label + ": cannot decode TIFF: not a readable TIFF file");
  uint32_t w = 0, h = 0;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  if (w == 0 || h == 0 || static_cast<uint64_t>(w) * h > static_cast<uint64_t>(kMaxImagePixels)) {
    TIFFClose(tif);
    return invalidInput(label + ": cannot decode TIFF: bad size " + std::to_string(w) + "x" + std::to_string(h));
  }
  std::vector<uint32_t> rgba(static_cast<size_t>(w) * h);
  int ok = TIFFReadRGBAImageOriented(tif, w, h, rgba.data(), ORIENTATION_TOPLEFT, 0);
  TIFFClose(tif);
  if (ok == 0) return invalidInput(label + ": cannot decode TIFF: libtiff could not read the pixels");
  Image image{static_cast<int>(w), static_cast<int>(h), 3, std::vector<uint8_t>(rgba.size() * 3)};
  for (size_t i = 0; i < rgba.size(); ++i) {
    image.pixels[i * 3] = static_cast<uint8_t>(TIFFGetR(rgba[i]));
    image.pixels[i * 3 + 1] = static_cast<uint8_t>(TIFFGetG(rgba[i]));
    image.pixels[i * 3 + 2] = static_cast<uint8_t>(TIFFGetB(rgba[i]));
  }
  return image;
}

// ---------------------------------------------------------------- WebP

Expected<Image> decodeWebp(const std::string& b, const std::string& label) {
  int w = 0, h = 0;
  const auto* data = reinterpret_cast<const uint8_t*>(b.data());
  if (WebPGetInfo(data, b.size(), &w, &h) == 0) return invalidInput(label + ": cannot decode WebP: bad header");
  if (static_cast<int64_t>(w) * h > kMaxImagePixels)
    return invalidInput(label + ": cannot decode WebP: too many pixels");
  Image image{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  if (WebPDecodeRGBInto(data, b.size(), image.pixels.data(), image.pixels.size(), w * 3) == nullptr) {
    return invalidInput(label + ": cannot decode WebP: libwebp could not read the pixels");
  }
  return image;
}

// ---------------------------------------------------------------- JPEG 2000

struct OpjSource {
  const std::string* bytes;
  OPJ_OFF_T pos = 0;
};

OPJ_SIZE_T opjRead(void* buf, OPJ_SIZE_T n, void* user) {
  auto* s = static_cast<OpjSource*>(user);
  auto size = static_cast<OPJ_OFF_T>(s->bytes->size());
  if (s->pos >= size) return static_cast<OPJ_SIZE_T>(-1);
  OPJ_SIZE_T count = std::min<OPJ_SIZE_T>(n, static_cast<OPJ_SIZE_T>(size - s->pos));
  std::memcpy(buf, s->bytes->data() + s->pos, count);
  s->pos += static_cast<OPJ_OFF_T>(count);
  return count;
}
OPJ_OFF_T opjSkip(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<OpjSource*>(user);
  s->pos += n;
  return n;
}
OPJ_BOOL opjSeek(OPJ_OFF_T at, void* user) {
  auto* s = static_cast<OpjSource*>(user);
  if (at < 0 || at > static_cast<OPJ_OFF_T>(s->bytes->size())) return OPJ_FALSE;
  s->pos = at;
  return OPJ_TRUE;
}
void opjQuiet(const char*, void*) {}

/// 8-bit grey or RGB(A) JPEG 2000 (a .jp2 box file or a raw codestream), full resolution.
Expected<Image> decodeJpeg2000(const std::string& b, const std::string& label, bool codestream) {
  auto bad = [&](const std::string& why) { return invalidInput(label + ": cannot decode JPEG 2000: " + why); };
  OpjSource source{&b};
  opj_stream_t* stream = opj_stream_default_create(OPJ_TRUE);
  opj_stream_set_user_data(stream, &source, nullptr);
  opj_stream_set_user_data_length(stream, b.size());
  opj_stream_set_read_function(stream, opjRead);
  opj_stream_set_skip_function(stream, opjSkip);
  opj_stream_set_seek_function(stream, opjSeek);
  opj_codec_t* codec = opj_create_decompress(codestream ? OPJ_CODEC_J2K : OPJ_CODEC_JP2);
  opj_set_info_handler(codec, opjQuiet, nullptr);
  opj_set_warning_handler(codec, opjQuiet, nullptr);
  opj_set_error_handler(codec, opjQuiet, nullptr);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  opj_image_t* img = nullptr;
  bool ok = opj_setup_decoder(codec, &params) && opj_read_header(stream, codec, &img) &&
            opj_decode(codec, stream, img) && opj_end_decompress(codec, stream);
  opj_stream_destroy(stream);
  opj_destroy_codec(codec);
  if (!ok || img == nullptr) {
    if (img != nullptr) opj_image_destroy(img);
    return bad("OpenJPEG could not read it");
  }
  Expected<Image> result = bad("unsupported component layout");
  uint32_t comps = img->numcomps;
  bool uniform = comps >= 1;
  for (uint32_t c = 0; c < comps; ++c) {
    const opj_image_comp_t& k = img->comps[c];
    uniform =
        uniform && k.prec == 8 && !k.sgnd && k.dx == 1 && k.dy == 1 && k.w == img->comps[0].w && k.h == img->comps[0].h;
  }
  if (uniform && (comps == 1 || comps == 2 || comps == 3 || comps == 4)) {
    int w = static_cast<int>(img->comps[0].w), h = static_cast<int>(img->comps[0].h);
    int channels = comps >= 3 ? 3 : 1;
    Image image{w, h, channels, std::vector<uint8_t>(static_cast<size_t>(w) * h * channels)};
    for (size_t i = 0; i < static_cast<size_t>(w) * h; ++i) {
      for (int c = 0; c < channels; ++c) {
        image.pixels[i * channels + c] = static_cast<uint8_t>(std::clamp(img->comps[c].data[i], 0, 255));
      }
    }
    result = toRgb(image);
  }
  opj_image_destroy(img);
  return result;
}

}  // namespace

Expected<Image> decodeImageBytes(const std::string& bytes, const std::string& label) {
  auto u = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  auto starts = [&](const char* magic, size_t n) {
    return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
  };
  if (bytes.size() >= 3 && u(0) == 0xFF && u(1) == 0xD8 && u(2) == 0xFF) return decodeJpeg(bytes, label);
  if (starts("\x89PNG\r\n\x1a\n", 8)) return decodePng(bytes, label);
  if (starts("BM", 2)) return decodeBmp(bytes, label);
  if (bytes.size() >= 3 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '7' && std::isspace(u(2))) {
    return decodePnm(bytes, label);
  }
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return decodeTiff(bytes, label);
  if (bytes.size() >= 12 && starts("RIFF", 4) && std::memcmp(bytes.data() + 8, "WEBP", 4) == 0)
    return decodeWebp(bytes, label);
  if (starts("\0\0\0\x0cjP  \r\n\x87\n", 12)) return decodeJpeg2000(bytes, label, /*codestream=*/false);
  if (starts("\xff\x4f\xff\x51", 4)) return decodeJpeg2000(bytes, label, /*codestream=*/true);
  return unimplemented(label +
                       ": not a JPEG, PNG, BMP, PNM, TIFF, WebP or JPEG 2000 image (unrecognised file signature)");
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

}  // namespace whittle::codec
