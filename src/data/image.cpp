#include "whittle/data/image.h"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "whittle/common/file_util.h"

namespace whittle::data {
namespace {

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
  return codec::decodeImageBytes(bytes, label);
}

Expected<Image> decodeImage(const std::string& path) {
  WH_ASSIGN_OR_RETURN(std::string bytes, readFile(path));
  return decodeImageBytes(bytes, path);
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
