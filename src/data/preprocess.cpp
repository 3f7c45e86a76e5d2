#include "whittle/data/preprocess.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "whittle/common/file_util.h"
#include "whittle/ir/tensor.h"

namespace whittle::data {
namespace {

using ir::DataType;

constexpr std::string_view kKeys[] = {"resize", "crop", "scale", "mean", "std", "layout", "dtype", "channels",
                                      "rgb",    "bgr",  "grey",  "gray", "nchw", "nhwc"};

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

std::string suggestion(std::string_view key) {
  std::string_view best;
  size_t bestDistance = 3;
  for (std::string_view k : kKeys) {
    size_t d = editDistance(key, k);
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + std::string(best) + "'?)";
}

Status specError(const std::string& message) { return invalidInput("preprocess: " + message); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Expected<double> parseNumber(std::string_view text, const std::string& key) {
  text = trim(text);
  auto plain = [&](std::string_view t) -> Expected<double> {
    t = trim(t);
    double v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size() || !std::isfinite(v)) {
      return specError(key + "=" + std::string(text) + ": '" + std::string(t) + "' is not a number");
    }
    return v;
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return plain(text);
  WH_ASSIGN_OR_RETURN(double num, plain(text.substr(0, slash)));
  WH_ASSIGN_OR_RETURN(double den, plain(text.substr(slash + 1)));
  if (den == 0) return specError(key + "=" + std::string(text) + ": division by zero");
  return num / den;
}

Expected<int> parseSize(std::string_view text, const std::string& key) {
  text = trim(text);
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v <= 0 || v > 1 << 16) {
    return specError(key + ": '" + std::string(text) + "' is not a size (a positive integer up to 65536)");
  }
  return v;
}

// "256" → (256, 0); "320x240" → width 320, height 240.
Status parseGeometry(std::string_view value, const std::string& key, int* single, int* width, int* height) {
  size_t x = value.find_first_of("xX");
  if (x == std::string_view::npos) {
    WH_ASSIGN_OR_RETURN(*single, parseSize(value, key));
    return Status::ok();
  }
  WH_ASSIGN_OR_RETURN(*width, parseSize(value.substr(0, x), key));
  WH_ASSIGN_OR_RETURN(*height, parseSize(value.substr(x + 1), key));
  return Status::ok();
}

Expected<std::vector<double>> parseList(std::string_view value, const std::string& key) {
  std::vector<double> out;
  const std::string where = key + "=" + std::string(value);
  size_t start = 0;
  while (true) {
    size_t colon = value.find(':', start);
    std::string_view part = value.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
    auto v = parseNumber(part, key);
    if (!v.isOk()) {
      return specError(where + ": '" + std::string(trim(part)) + "' is not a number");
    }
    out.push_back(*v);
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return out;
}

Status checkStd(const std::vector<double>& std) {
  for (double s : std) {
    if (s == 0) return specError("std values must not be 0");
  }
  return Status::ok();
}

Expected<Layout> parseLayout(std::string_view v) {
  if (v == "nchw" || v == "NCHW" || v == "chw") return Layout::kNchw;
  if (v == "nhwc" || v == "NHWC" || v == "hwc") return Layout::kNhwc;
  return specError("layout=" + std::string(v) + ": expected nchw or nhwc");
}

Expected<ChannelOrder> parseChannels(std::string_view v) {
  if (v == "rgb" || v == "RGB") return ChannelOrder::kRgb;
  if (v == "bgr" || v == "BGR") return ChannelOrder::kBgr;
  if (v == "grey" || v == "gray" || v == "L") return ChannelOrder::kGrey;
  return specError("channels=" + std::string(v) + ": expected rgb, bgr or grey");
}

Expected<DataType> parseOutputType(std::string_view v) {
  auto type = ir::parseDataType(v);
  if (!type || ir::elementSize(*type) == 0 || *type == DataType::kComplex64 || *type == DataType::kComplex128 ||
      (*type >= DataType::kFloat8E4M3FN)) {
    return specError("dtype=" + std::string(v) +
                     ": expected float32, float16, bfloat16, float64, uint8, int8, uint16, int16, int32 or int64");
  }
  return *type;
}

std::string numberText(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  // Prefer the shortest text that reads back to the same value.
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[64];
    std::snprintf(shorter, sizeof(shorter), "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

std::string listText(const std::vector<double>& values) {
  std::string s;
  for (size_t i = 0; i < values.size(); ++i) s += (i ? ":" : "") + numberText(values[i]);
  return s;
}

Status checkCombination(const PreprocessSpec& spec) {
  if (spec.resizeShort > 0 && spec.resizeWidth > 0) return specError("resize given twice");
  return Status::ok();
}

template <typename Src>
void normalizeTyped(const Src* src, int width, int height, int channels, const ResolvedPreprocess& pre, std::byte* dst) {
  const int outC = pre.outChannels;
  const size_t plane = static_cast<size_t>(width) * height;
  // out = (v * scale - mean) / std = v * a[c] + b[c]
  double a[4], b[4];
  int srcChannel[4];
  for (int c = 0; c < outC; ++c) {
    a[c] = pre.spec.scale / pre.std[static_cast<size_t>(c)];
    b[c] = -pre.mean[static_cast<size_t>(c)] / pre.std[static_cast<size_t>(c)];
    srcChannel[c] = (pre.channels == ChannelOrder::kBgr && channels == 3) ? 2 - c : std::min(c, channels - 1);
  }
  auto store = [&](size_t index, double v) {
    switch (pre.dtype) {
      case DataType::kFloat: reinterpret_cast<float*>(dst)[index] = static_cast<float>(v); break;
      case DataType::kDouble: reinterpret_cast<double*>(dst)[index] = v; break;
      case DataType::kFloat16: reinterpret_cast<uint16_t*>(dst)[index] = ir::floatToHalf(static_cast<float>(v)); break;
      case DataType::kBFloat16: reinterpret_cast<uint16_t*>(dst)[index] = ir::floatToBfloat16(static_cast<float>(v)); break;
      case DataType::kBool: reinterpret_cast<bool*>(dst)[index] = v != 0; break;
#define WH_STORE_INT_(TYPE, CTYPE)                                                                         \
  case DataType::TYPE: {                                                                                   \
    double r = std::nearbyint(v);                                                                          \
    r = std::clamp(r, static_cast<double>(std::numeric_limits<CTYPE>::lowest()),                          \
                   static_cast<double>(std::numeric_limits<CTYPE>::max()));                                \
    reinterpret_cast<CTYPE*>(dst)[index] = static_cast<CTYPE>(r);                                          \
    break;                                                                                                 \
  }
      WH_STORE_INT_(kUint8, uint8_t)
      WH_STORE_INT_(kInt8, int8_t)
      WH_STORE_INT_(kUint16, uint16_t)
      WH_STORE_INT_(kInt16, int16_t)
      WH_STORE_INT_(kInt32, int32_t)
      WH_STORE_INT_(kInt64, int64_t)
      WH_STORE_INT_(kUint32, uint32_t)
      WH_STORE_INT_(kUint64, uint64_t)
#undef WH_STORE_INT_
      default: break;
    }
  };
  for (size_t p = 0; p < plane; ++p) {
    const Src* px = src + p * static_cast<size_t>(channels);
    for (int c = 0; c < outC; ++c) {
      double v = static_cast<double>(px[srcChannel[c]]) * a[c] + b[c];
      size_t index = pre.layout == Layout::kNchw ? static_cast<size_t>(c) * plane + p : p * outC + static_cast<size_t>(c);
      store(index, v);
    }
  }
}

}  // namespace

std::string_view channelOrderName(ChannelOrder order) {
  switch (order) {
    case ChannelOrder::kAuto: return "auto";
    case ChannelOrder::kRgb: return "rgb";
    case ChannelOrder::kBgr: return "bgr";
    case ChannelOrder::kGrey: return "grey";
  }
  return "auto";
}

std::string_view layoutName(Layout layout) {
  switch (layout) {
    case Layout::kAuto: return "auto";
    case Layout::kNchw: return "nchw";
    case Layout::kNhwc: return "nhwc";
  }
  return "auto";
}

std::string PreprocessSpec::toString() const {
  std::vector<std::string> parts;
  if (resizeShort > 0) parts.push_back("resize=" + std::to_string(resizeShort));
  if (resizeWidth > 0) parts.push_back("resize=" + std::to_string(resizeWidth) + "x" + std::to_string(resizeHeight));
  if (cropWidth > 0) {
    parts.push_back(cropWidth == cropHeight ? "crop=" + std::to_string(cropWidth)
                                            : "crop=" + std::to_string(cropWidth) + "x" + std::to_string(cropHeight));
  }
  if (channels != ChannelOrder::kAuto) parts.emplace_back(channelOrderName(channels));
  if (scale != 1.0) parts.push_back("scale=" + numberText(scale));
  if (!mean.empty()) parts.push_back("mean=" + listText(mean));
  if (!std.empty()) parts.push_back("std=" + listText(std));
  if (layout != Layout::kAuto) parts.push_back("layout=" + std::string(layoutName(layout)));
  if (dtype) parts.push_back("dtype=" + std::string(ir::dataTypeName(*dtype)));
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "," : "") + parts[i];
  return s;
}

Expected<PreprocessSpec> parsePreprocessSpec(std::string_view text) {
  PreprocessSpec spec;
  std::vector<std::string> seen;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key(trim(item.substr(0, eq)));
    std::string value(eq == std::string_view::npos ? std::string_view() : trim(item.substr(eq + 1)));
    // Bare flags: rgb, bgr, grey/gray, nchw, nhwc.
    if (eq == std::string_view::npos) {
      if (key == "rgb" || key == "bgr" || key == "grey" || key == "gray") {
        value = key;
        key = "channels";
      } else if (key == "nchw" || key == "nhwc") {
        value = key;
        key = "layout";
      } else if (std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys)) {
        return specError("'" + key + "' needs a value (" + key + "=...)");
      } else {
        return specError("unknown key '" + key + "'" + suggestion(key));
      }
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) return specError("'" + key + "' given twice");
    seen.push_back(key);
    if (value.empty()) return specError("'" + key + "' has an empty value");
    if (key == "resize") {
      WH_RETURN_IF_ERROR(parseGeometry(value, key, &spec.resizeShort, &spec.resizeWidth, &spec.resizeHeight));
    } else if (key == "crop") {
      int single = 0;
      WH_RETURN_IF_ERROR(parseGeometry(value, key, &single, &spec.cropWidth, &spec.cropHeight));
      if (single > 0) spec.cropWidth = spec.cropHeight = single;
    } else if (key == "scale") {
      WH_ASSIGN_OR_RETURN(spec.scale, parseNumber(value, key));
    } else if (key == "mean") {
      WH_ASSIGN_OR_RETURN(spec.mean, parseList(value, key));
    } else if (key == "std") {
      WH_ASSIGN_OR_RETURN(spec.std, parseList(value, key));
      WH_RETURN_IF_ERROR(checkStd(spec.std));
    } else if (key == "layout") {
      WH_ASSIGN_OR_RETURN(spec.layout, parseLayout(value));
    } else if (key == "channels") {
      WH_ASSIGN_OR_RETURN(spec.channels, parseChannels(value));
    } else if (key == "dtype") {
      WH_ASSIGN_OR_RETURN(spec.dtype, parseOutputType(value));
    } else {
      return specError("unknown key '" + key + "'" + suggestion(key));
    }
  }
  WH_RETURN_IF_ERROR(checkCombination(spec));
  return spec;
}

Expected<PreprocessSpec> parsePreprocessJson(const std::string& text, const std::string& label) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return invalidInput(label + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return invalidInput(label + ": expected a JSON object of preprocessing keys");
  PreprocessSpec spec;
  auto fail = [&](const std::string& key, const std::string& what) {
    return invalidInput(label + ": \"" + key + "\": " + what);
  };
  auto geometry = [&](const nlohmann::json& v, const std::string& key, int* single, int* w, int* h) -> Status {
    if (v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() <= 65536) {
      *single = v.get<int>();
      return Status::ok();
    }
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer() && v[0].get<int64_t>() > 0 &&
        v[1].get<int64_t>() > 0 && v[0].get<int64_t>() <= 65536 && v[1].get<int64_t>() <= 65536) {
      *w = v[0].get<int>();
      *h = v[1].get<int>();
      return Status::ok();
    }
    return fail(key, "expected a positive integer or [width, height]");
  };
  auto list = [&](const nlohmann::json& v, const std::string& key) -> Expected<std::vector<double>> {
    if (v.is_number()) return std::vector<double>{v.get<double>()};
    if (!v.is_array() || v.empty()) return fail(key, "expected a number or a list of numbers");
    std::vector<double> out;
    for (const auto& e : v) {
      if (!e.is_number()) return fail(key, "expected a list of numbers");
      out.push_back(e.get<double>());
    }
    return out;
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "resize") {
      WH_RETURN_IF_ERROR(geometry(v, key, &spec.resizeShort, &spec.resizeWidth, &spec.resizeHeight));
    } else if (key == "crop") {
      int single = 0;
      WH_RETURN_IF_ERROR(geometry(v, key, &single, &spec.cropWidth, &spec.cropHeight));
      if (single > 0) spec.cropWidth = spec.cropHeight = single;
    } else if (key == "scale") {
      if (v.is_number()) {
        spec.scale = v.get<double>();
      } else if (v.is_string()) {
        auto s = parseNumber(v.get<std::string>(), key);
        if (!s.isOk()) return s.status().withContext(label);
        spec.scale = *s;
      } else {
        return fail(key, "expected a number or a fraction such as \"1/255\"");
      }
    } else if (key == "mean") {
      WH_ASSIGN_OR_RETURN(spec.mean, list(v, key));
    } else if (key == "std") {
      WH_ASSIGN_OR_RETURN(spec.std, list(v, key));
      Status s = checkStd(spec.std);
      if (!s.isOk()) return s.withContext(label);
    } else if (key == "layout" || key == "channels" || key == "dtype") {
      if (!v.is_string()) return fail(key, "expected a string");
      std::string value = v.get<std::string>();
      Status s;
      if (key == "layout") {
        auto r = parseLayout(value);
        if (r.isOk()) spec.layout = *r;
        s = r.status();
      } else if (key == "channels") {
        auto r = parseChannels(value);
        if (r.isOk()) spec.channels = *r;
        s = r.status();
      } else {
        auto r = parseOutputType(value);
        if (r.isOk()) spec.dtype = *r;
        s = r.status();
      }
      if (!s.isOk()) return s.withContext(label);
    } else {
      return invalidInput(label + ": unknown key \"" + key + "\"" + suggestion(key));
    }
  }
  Status s = checkCombination(spec);
  if (!s.isOk()) return s.withContext(label);
  return spec;
}

Expected<PreprocessSpec> loadPreprocessSpec(const std::string& arg) {
  bool looksLikeFile = arg.size() > 5 && arg.compare(arg.size() - 5, 5, ".json") == 0;
  if (looksLikeFile || (arg.find('=') == std::string::npos && fileExists(arg))) {
    WH_ASSIGN_OR_RETURN(std::string text, readFile(arg));
    return parsePreprocessJson(text, arg);
  }
  return parsePreprocessSpec(arg);
}

std::vector<int64_t> ResolvedPreprocess::sampleDims(int width, int height) const {
  if (layout == Layout::kNhwc) return {height, width, outChannels};
  return {outChannels, height, width};
}

Expected<ResolvedPreprocess> resolvePreprocess(const PreprocessSpec& spec, const std::vector<int64_t>& modelSampleDims,
                                               DataType modelType, int sourceChannels, const std::string& label) {
  ResolvedPreprocess r;
  r.spec = spec;
  auto isChannelCount = [](int64_t d) { return d == 1 || d == 3; };
  r.layout = spec.layout;
  if (r.layout == Layout::kAuto) {
    r.layout = Layout::kNchw;
    if (modelSampleDims.size() == 3 && !isChannelCount(modelSampleDims[0]) && isChannelCount(modelSampleDims[2])) {
      r.layout = Layout::kNhwc;
    }
  }
  r.channels = spec.channels;
  if (r.channels == ChannelOrder::kAuto) {
    int64_t modelChannels = -1;
    if (modelSampleDims.size() == 3) modelChannels = r.layout == Layout::kNchw ? modelSampleDims[0] : modelSampleDims[2];
    if (modelChannels == 1 || (modelChannels != 3 && sourceChannels == 1)) {
      r.channels = ChannelOrder::kGrey;
    } else {
      r.channels = ChannelOrder::kRgb;
    }
  }
  r.outChannels = r.channels == ChannelOrder::kGrey ? 1 : 3;
  r.dtype = spec.dtype ? *spec.dtype : (modelType != DataType::kUndefined ? modelType : DataType::kFloat);
  if (ir::elementSize(r.dtype) == 0 || r.dtype == DataType::kComplex64 || r.dtype == DataType::kComplex128 ||
      r.dtype >= DataType::kFloat8E4M3FN) {
    return invalidInput(label + ": cannot produce " + std::string(ir::dataTypeName(r.dtype)) + " samples");
  }
  auto expand = [&](const std::vector<double>& values, double fallback, const char* key) -> Expected<std::vector<double>> {
    if (values.empty()) return std::vector<double>(static_cast<size_t>(r.outChannels), fallback);
    if (values.size() == 1) return std::vector<double>(static_cast<size_t>(r.outChannels), values[0]);
    if (values.size() == static_cast<size_t>(r.outChannels)) return values;
    return invalidInput(label + ": preprocess " + key + " has " + std::to_string(values.size()) +
                        " values, but the samples have " + std::to_string(r.outChannels) +
                        " channel(s) (give 1 value or 1 per channel)");
  };
  WH_ASSIGN_OR_RETURN(r.mean, expand(spec.mean, 0.0, "mean"));
  WH_ASSIGN_OR_RETURN(r.std, expand(spec.std, 1.0, "std"));
  return r;
}

Expected<Image> applyGeometry(const Image& image, const ResolvedPreprocess& pre) {
  Image out = pre.channels == ChannelOrder::kGrey ? toGrey(image) : toRgb(image);
  const PreprocessSpec& s = pre.spec;
  if (s.resizeShort > 0) {
    int w = 0, h = 0;
    shortSideSize(out.width, out.height, s.resizeShort, &w, &h);
    out = resizeBilinear(out, w, h);
  } else if (s.resizeWidth > 0) {
    out = resizeBilinear(out, s.resizeWidth, s.resizeHeight);
  }
  if (s.cropWidth > 0) {
    WH_ASSIGN_OR_RETURN(out, centerCrop(out, s.cropWidth, s.cropHeight));
  }
  return out;
}

void normalizePixels(const void* src, DataType srcType, int width, int height, int channels,
                     const ResolvedPreprocess& pre, std::byte* dst) {
  if (srcType == DataType::kInt8) {
    normalizeTyped(static_cast<const int8_t*>(src), width, height, channels, pre, dst);
  } else {
    normalizeTyped(static_cast<const uint8_t*>(src), width, height, channels, pre, dst);
  }
}

}  // namespace whittle::data
