#pragma once
// The preprocessing spec of image-like data sets: geometry (resize, centre crop), channel
// order, normalisation, layout and element type. Given on the command line as
//   resize=256,crop=224,rgb,scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,layout=nchw
// or as a JSON file with the same keys (see docs/datasets.md).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "whittle/common/status.h"
#include "whittle/data/image.h"
#include "whittle/ir/data_type.h"

namespace whittle::data {

/// Channel order of the output. kAuto follows the model: 1 channel → grey, else RGB.
enum class ChannelOrder { kAuto, kRgb, kBgr, kGrey };
/// Tensor layout of one sample: CHW (nchw) or HWC (nhwc). kAuto follows the model input's
/// shape: a channel dim of 1 or 3 at position 1 means nchw, at the last position nhwc.
enum class Layout { kAuto, kNchw, kNhwc };

std::string_view channelOrderName(ChannelOrder order);
std::string_view layoutName(Layout layout);

/// What to do to each image before it becomes a tensor. Steps run in this order: channel
/// conversion, resize, centre crop, channel order, then per channel
///   out = (pixel * scale - mean[c]) / std[c]
/// computed in double and stored as `dtype`.
struct PreprocessSpec {
  /// Resize so that the short side is this many pixels (0: no short-side resize).
  int resizeShort = 0;
  /// Resize to exactly this size (0: none). Excludes resizeShort.
  int resizeWidth = 0;
  int resizeHeight = 0;
  /// Centre crop to this size (0: none).
  int cropWidth = 0;
  int cropHeight = 0;
  ChannelOrder channels = ChannelOrder::kAuto;
  double scale = 1.0;
  /// One value per channel, or one for all; empty means 0.
  std::vector<double> mean;
  /// One value per channel, or one for all; empty means 1.
  std::vector<double> std;
  Layout layout = Layout::kAuto;
  /// Element type of the tensor; nullopt: the model input's type.
  std::optional<ir::DataType> dtype;

  bool hasGeometry() const { return resizeShort > 0 || resizeWidth > 0 || cropWidth > 0; }
  bool hasNormalization() const { return scale != 1.0 || !mean.empty() || !std.empty(); }
  /// The canonical text form, which parsePreprocessSpec() reads back to an equal spec.
  std::string toString() const;
  bool operator==(const PreprocessSpec&) const = default;
};

/// Parses the comma-separated form. Keys: resize=N | resize=WxH, crop=N | crop=WxH,
/// rgb | bgr | grey (gray), scale=X (X may be a fraction: 1/255), mean=A[:B:C],
/// std=A[:B:C], layout=nchw|nhwc, dtype=float32|float16|uint8|... Unknown keys are errors
/// that suggest the nearest key.
Expected<PreprocessSpec> parsePreprocessSpec(std::string_view text);
/// Parses the JSON form: {"resize": 256 or [W, H], "crop": 224 or [W, H], "channels": "rgb",
/// "scale": 0.00392 or "1/255", "mean": [..], "std": [..], "layout": "nchw", "dtype": "float32"}.
Expected<PreprocessSpec> parsePreprocessJson(const std::string& text, const std::string& label);
/// Reads `arg` as a JSON file when it names an existing file (or ends in .json), else parses
/// it as the comma-separated form.
Expected<PreprocessSpec> loadPreprocessSpec(const std::string& arg);

/// A spec resolved against one data source and model input: every choice made.
struct ResolvedPreprocess {
  PreprocessSpec spec;
  Layout layout = Layout::kNchw;
  ChannelOrder channels = ChannelOrder::kRgb;
  int outChannels = 3;
  ir::DataType dtype = ir::DataType::kFloat;
  std::vector<double> mean;  ///< outChannels values
  std::vector<double> std;   ///< outChannels values

  /// The dims of one sample for a `width` x `height` image: [C,H,W] or [H,W,C].
  std::vector<int64_t> sampleDims(int width, int height) const;
};

/// Resolves kAuto choices from the model input's sample dims (without the batch axis; empty
/// when unknown) and dtype (kUndefined when unknown), and checks that mean and std have one
/// value or one per channel. `label` names the data source in errors.
Expected<ResolvedPreprocess> resolvePreprocess(const PreprocessSpec& spec, const std::vector<int64_t>& modelSampleDims,
                                               ir::DataType modelType, int sourceChannels, const std::string& label);

/// Runs the geometric steps and channel conversion on a decoded image.
Expected<Image> applyGeometry(const Image& image, const ResolvedPreprocess& pre);

/// Normalises interleaved HWC samples of type `srcType` (uint8 or int8) with `channels`
/// channels into `dst` in the resolved layout and dtype. Integer outputs are rounded to
/// nearest and saturated.
void normalizePixels(const void* src, ir::DataType srcType, int width, int height, int channels,
                     const ResolvedPreprocess& pre, std::byte* dst);

}  // namespace whittle::data
