// --channel-axis: which axis of each graph output the per-channel SQNR reads.
#include "whittle/eval/channel_axis.h"

#include <algorithm>
#include <string>

namespace whittle::eval {

std::string ChannelAxisRule::text() const {
  const std::string a = automatic ? std::string("auto") : std::to_string(axis);
  return output.empty() ? a : output + "=" + a;
}

std::optional<int64_t> parseAxisNumber(const std::string& text) {
  const size_t digits = !text.empty() && text[0] == '-' ? 1 : 0;
  if (text.size() == digits || text.size() - digits > 9) return std::nullopt;
  if (text.find_first_not_of("0123456789", digits) != std::string::npos) return std::nullopt;
  const int64_t v = std::stoll(text.substr(digits));
  return digits ? -v : v;
}

Expected<ChannelAxisRule> parseChannelAxis(const std::string& text) {
  ChannelAxisRule rule;
  const size_t eq = text.rfind('=');
  std::string a = text;
  if (eq != std::string::npos) {
    rule.output = text.substr(0, eq);
    a = text.substr(eq + 1);
    if (rule.output.empty()) return invalidInput("--channel-axis '" + text + "': no output name before '='");
  }
  if (a == "auto") {
    rule.automatic = true;
    return rule;
  }
  auto axis = parseAxisNumber(a);
  if (!axis) {
    return invalidInput("--channel-axis '" + text +
                        "': expected AXIS, auto, OUTPUT=AXIS or OUTPUT=auto (AXIS a whole number, negative from the end)");
  }
  rule.axis = *axis;
  return rule;
}

Expected<int64_t> channelAxisOf(const std::vector<ChannelAxisRule>& rules, const std::string& output,
                                const std::vector<int64_t>& dims) {
  const auto rank = static_cast<int64_t>(dims.size());
  const ChannelAxisRule* chosen = nullptr;
  for (const ChannelAxisRule& r : rules) {
    if (r.output == output || (r.output.empty() && (chosen == nullptr || chosen->output.empty()))) chosen = &r;
  }
  if (rank == 0) return int64_t{0};
  if (chosen == nullptr) return rank - 1;
  if (chosen->automatic) {
    if (rank >= 4) return int64_t{1};
    if (rank == 3) return dims[1] < dims[2] ? int64_t{1} : int64_t{2};
    return rank - 1;
  }
  const int64_t axis = chosen->axis < 0 ? chosen->axis + rank : chosen->axis;
  if (axis < 0 || axis >= rank) {
    return invalidInput("--channel-axis " + chosen->text() + ": output '" + output + "' has rank " + std::to_string(rank) +
                        " (" + std::to_string(-rank) + " .. " + std::to_string(rank - 1) + ")");
  }
  return axis;
}

ChannelLayout channelLayout(std::span<const int64_t> dims, int64_t axis) {
  ChannelLayout l;
  if (dims.size() < 2 || axis < 0 || axis >= static_cast<int64_t>(dims.size())) return l;
  l.channels = std::max<int64_t>(dims[static_cast<size_t>(axis)], 1);
  for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) l.inner *= std::max<int64_t>(dims[i], 1);
  return l;
}

Status checkChannelAxisOutputs(const std::vector<ChannelAxisRule>& rules, const std::vector<std::string>& outputs) {
  for (const ChannelAxisRule& r : rules) {
    if (r.output.empty() || std::find(outputs.begin(), outputs.end(), r.output) != outputs.end()) continue;
    std::string list;
    for (const auto& n : outputs) list += (list.empty() ? "'" : ", '") + n + "'";
    return invalidInput("--channel-axis " + r.text() + ": the model has no output '" + r.output + "' (outputs: " + list + ")");
  }
  return Status::ok();
}

}  // namespace whittle::eval
