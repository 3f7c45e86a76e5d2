// --scores OUTPUT[:axis=A]:CHANNELS:THRESHOLD[:peaks[=K[/R]]]: which elements of a detector's output are scores
// that a threshold turns into detections (the --min-score-f1 budget).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>

#include "whittle/tune/tune.h"

namespace whittle::tune {
namespace {

/// The whole of `text` as a number (std::stod accepts a prefix; this does not).
std::optional<double> wholeNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used != text.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<int64_t> channelIndex(const std::string& text) {
  auto v = wholeNumber(text);
  if (!v || *v < 0 || *v != std::floor(*v) || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return static_cast<int64_t>(*v);
}

/// OUTPUT[:axis=A]:CHANNELS:THRESHOLD (parseScoreSpec without the peaks field).
Expected<ScoreSpec> parseCells(const std::string& text, const std::string& full, const std::string& error) {
  const size_t second = text.rfind(':');
  if (second == std::string::npos || second == 0) return invalidInput(error);
  size_t first = text.rfind(':', second - 1);
  if (first == std::string::npos || first == 0) return invalidInput(error);
  ScoreSpec spec;
  // An optional ":axis=A" field before CHANNELS.
  const size_t axisField = text.rfind(':', first - 1);
  const size_t axisStart = axisField == std::string::npos ? 0 : axisField + 1;
  if (text.compare(axisStart, 5, "axis=") == 0) {
    const std::string a = text.substr(axisStart + 5, first - axisStart - 5);
    auto axis = eval::parseAxisNumber(a);
    if (!axis) return invalidInput("--scores '" + full + "': the axis '" + a + "' is not a whole number (axis=1, axis=-1)");
    if (axisField == std::string::npos || axisField == 0) return invalidInput(error);
    spec.axis = *axis;
    spec.output = text.substr(0, axisField);
  } else {
    spec.output = text.substr(0, first);
  }
  const std::string channels = text.substr(first + 1, second - first - 1);
  auto threshold = wholeNumber(text.substr(second + 1));
  if (!threshold || !std::isfinite(*threshold)) return invalidInput(error);
  spec.threshold = *threshold;
  if (channels == "*") return spec;
  const size_t dash = channels.find('-');
  auto a = channelIndex(channels.substr(0, dash));
  auto b = dash == std::string::npos ? a : channelIndex(channels.substr(dash + 1));
  if (!a || !b) return invalidInput(error);
  if (*b < *a) return invalidInput("--scores '" + full + "': the channel range " + channels + " is empty");
  spec.firstChannel = *a;
  spec.lastChannel = *b;
  return spec;
}

}  // namespace

int64_t defaultPeakRadius(int64_t window) { return std::max<int64_t>(1, window / 2); }

std::string ScoreSpec::text() const {
  std::string channels = lastChannel < 0                ? std::string("*")
                         : firstChannel == lastChannel
                             ? std::to_string(firstChannel)
                             : std::to_string(firstChannel) + "-" + std::to_string(lastChannel);
  char t[32];
  std::snprintf(t, sizeof t, "%g", threshold);
  std::string peaks;
  if (peakWindow > 0) {
    peaks = ":peaks";
    if (peakWindow != 3 || peakRadius != 1) peaks += "=" + std::to_string(peakWindow);
    if (peakRadius != defaultPeakRadius(peakWindow)) peaks += "/" + std::to_string(peakRadius);
  }
  return output + (axis == -1 ? std::string() : ":axis=" + std::to_string(axis)) + ":" + channels + ":" + t + peaks;
}

Expected<ScoreSpec> parseScoreSpec(const std::string& full) {
  const std::string error = "--scores '" + full +
                            "': expected OUTPUT[:axis=A]:CHANNELS:THRESHOLD[:peaks[=K[/R]]], CHANNELS a channel C, a "
                            "range B-E or * along axis A (default the last, -1) (e.g. scores:1:0.7, "
                            "heatmap:axis=1:0:0.2:peaks)";
  // An optional ":peaks[=K[/R]]" field last (the threshold before it is a number, never "peaks").
  std::string text = full;
  int64_t peakWindow = 0, peakRadius = 1;
  if (const size_t last = full.rfind(':'); last != std::string::npos && full.compare(last + 1, 5, "peaks") == 0) {
    const std::string field = full.substr(last + 1);
    text = full.substr(0, last);
    peakWindow = 3;
    if (field != "peaks") {
      const std::string bad = "--scores '" + full + "': '" + field +
                              "' is not peaks, peaks=K or peaks=K/R (K an odd window >= 3, R a radius in cells >= 0)";
      if (field[5] != '=') return invalidInput(bad);
      const std::string value = field.substr(6);
      const size_t slash = value.find('/');
      auto k = channelIndex(value.substr(0, slash));
      if (!k || *k < 3 || *k % 2 == 0) return invalidInput(bad);
      peakWindow = *k;
      if (slash != std::string::npos) {
        auto r = channelIndex(value.substr(slash + 1));
        if (!r) return invalidInput(bad);
        peakRadius = *r;
      } else {
        peakRadius = defaultPeakRadius(peakWindow);
      }
    }
  }
  WH_ASSIGN_OR_RETURN(ScoreSpec spec, parseCells(text, full, error));
  spec.peakWindow = peakWindow;
  spec.peakRadius = peakRadius;
  return spec;
}

}  // namespace whittle::tune
