#pragma once
// Which axis of a graph output holds the channels that the per-channel SQNR reads
// (--channel-axis on `compare` and on `optimize` with a budget). A detector that concatenates
// box coordinates with scores hides a collapsed score channel behind the boxes in the output
// SQNR; which axis the channels lie on is the model's layout: the last for [1, A, 4+C] rows,
// axis 1 for [N, C, H, W] maps and YOLOv8's [1, 4+C, A].

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "whittle/common/status.h"

namespace whittle::eval {

/// One --channel-axis rule: `AXIS` or `auto` for every output, `OUTPUT=AXIS` or `OUTPUT=auto`
/// for one (it wins over a rule for every output). Without a rule the axis is the last one.
/// `auto` takes the channel axis from the shape: axis 1 of a rank >= 4 output ([N, C, H, W]);
/// of a rank-3 output the shorter of axes 1 and 2 (the last on a tie: [1, A, C] rows and
/// [1, C, A] maps alike); else the last.
struct ChannelAxisRule {
  std::string output;      ///< empty: every output
  bool automatic = false;  ///< the axis from the shape
  int64_t axis = -1;       ///< when not automatic, negative from the end
  std::string text() const;
};

/// A whole number written in `text` ("2", "-1"), or nothing.
std::optional<int64_t> parseAxisNumber(const std::string& text);

/// Parses one rule; a one-line error naming it when it is none of the forms above.
Expected<ChannelAxisRule> parseChannelAxis(const std::string& text);

/// The channel axis (0 .. rank-1) of output `output` of shape `dims` under `rules`; an error
/// naming the rule when its axis is outside the output's rank. Rank 0 gives 0.
Expected<int64_t> channelAxisOf(const std::vector<ChannelAxisRule>& rules, const std::string& output,
                                const std::vector<int64_t>& dims);

/// The channel count along `axis` of `dims` and the elements per step of it (the product of the
/// dims after it): what ChannelErrorAccumulator::add takes. {1, 1} for rank < 2 or an axis
/// outside the rank.
struct ChannelLayout {
  int64_t channels = 1;
  int64_t inner = 1;
};
ChannelLayout channelLayout(std::span<const int64_t> dims, int64_t axis);

/// An error naming the rule and listing `outputs` unless every rule that names an output names
/// one of them.
Status checkChannelAxisOutputs(const std::vector<ChannelAxisRule>& rules, const std::vector<std::string>& outputs);

}  // namespace whittle::eval
