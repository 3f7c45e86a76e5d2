// --scores OUTPUT:CHANNELS:THRESHOLD: which elements of a detector's output are scores that a
// threshold turns into detections (the --min-score-f1 budget).
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

}  // namespace

std::string ScoreSpec::text() const {
  std::string channels = lastChannel < 0                ? std::string("*")
                         : firstChannel == lastChannel
                             ? std::to_string(firstChannel)
                             : std::to_string(firstChannel) + "-" + std::to_string(lastChannel);
  char t[32];
  std::snprintf(t, sizeof t, "%g", threshold);
  return output + ":" + channels + ":" + t;
}

Expected<ScoreSpec> parseScoreSpec(const std::string& text) {
  const std::string error = "--scores '" + text +
                            "': expected OUTPUT:CHANNELS:THRESHOLD, CHANNELS a last-axis channel C, a range A-B "
                            "or * (e.g. scores:1:0.7)";
  const size_t second = text.rfind(':');
  if (second == std::string::npos || second == 0) return invalidInput(error);
  const size_t first = text.rfind(':', second - 1);
  if (first == std::string::npos || first == 0) return invalidInput(error);
  ScoreSpec spec;
  spec.output = text.substr(0, first);
  const std::string channels = text.substr(first + 1, second - first - 1);
  auto threshold = wholeNumber(text.substr(second + 1));
  if (!threshold || !std::isfinite(*threshold)) return invalidInput(error);
  spec.threshold = *threshold;
  if (channels == "*") return spec;
  const size_t dash = channels.find('-');
  auto a = channelIndex(channels.substr(0, dash));
  auto b = dash == std::string::npos ? a : channelIndex(channels.substr(dash + 1));
  if (!a || !b) return invalidInput(error);
  if (*b < *a) return invalidInput("--scores '" + text + "': the channel range " + channels + " is empty");
  spec.firstChannel = *a;
  spec.lastChannel = *b;
  return spec;
}

}  // namespace whittle::tune
