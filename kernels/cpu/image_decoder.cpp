// ImageDecoder (opset 20): a 1-D uint8 tensor holding an encoded image (JPEG, PNG, BMP, PNM,
// TIFF, WebP, JPEG 2000; the codec module, which the data module's image folders use too)
// to uint8 [H, W, 3] in RGB or BGR order, or [H, W, 1] grey (PIL's "L" weights, from RGB),
// the pixels the ONNX reference gets from PIL.
#include "cpu/families.h"
#include "cpu/kernel_util.h"
#include "whittle/codec/image.h"

namespace whittle::runtime::cpu {
namespace {

enum class PixelFormat { kRgb, kBgr, kGrey };

Expected<std::unique_ptr<Kernel>> makeImageDecoder(const KernelCreateInfo& info) {
  std::string name = info.node.attrString("pixel_format", "RGB");
  PixelFormat format = PixelFormat::kRgb;
  if (name == "BGR") {
    format = PixelFormat::kBgr;
  } else if (name == "Grayscale") {
    format = PixelFormat::kGrey;
  } else if (name != "RGB") {
    return info.error("pixel_format must be RGB, BGR or Grayscale, got '" + name + "'");
  }
  return makeFunctionKernel([format](KernelContext& ctx) -> Status {
    const ir::Tensor& encoded = ctx.input(0);
    if (encoded.dtype() != ir::DataType::kUint8 || encoded.rank() != 1) {
      return ctx.error("encoded_stream must be a 1-D uint8 tensor, got " +
                       std::string(ir::dataTypeName(encoded.dtype())) + " " + shapeToString(encoded.dims()));
    }
    std::string bytes(reinterpret_cast<const char*>(encoded.rawData()), static_cast<size_t>(encoded.numel()));
    auto decoded = codec::decodeImageBytes(bytes, ctx.describe());
    if (!decoded.isOk()) return decoded.status();
    codec::Image image = format == PixelFormat::kGrey ? codec::toGrey(*decoded) : codec::toRgb(*decoded);
    ir::Tensor& y = ctx.allocateOutput(0, ir::DataType::kUint8, {image.height, image.width, image.channels});
    uint8_t* dst = y.mutableData<uint8_t>();
    std::copy(image.pixels.begin(), image.pixels.end(), dst);
    if (format == PixelFormat::kBgr) {
      for (size_t i = 0; i + 2 < image.pixels.size(); i += 3) std::swap(dst[i], dst[i + 2]);
    }
    return Status::ok();
  });
}

}  // namespace

void registerImageDecoderKernels(KernelRegistry& r) {
  r.add("", "ImageDecoder", 20, makeImageDecoder);
}

}  // namespace whittle::runtime::cpu
