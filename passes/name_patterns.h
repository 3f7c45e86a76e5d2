#pragma once
// Node selection by name for the passes' exclude-nodes options.

#include <regex>
#include <string>
#include <vector>

namespace whittle::passes {

/// The exclude-nodes patterns of a pass, compiled once: a name matches when it equals a
/// pattern or matches it as a whole regular expression (a pattern that is not a valid
/// expression matches only by equality).
class NamePatterns {
 public:
  NamePatterns() = default;
  explicit NamePatterns(const std::vector<std::string>& patterns);

  bool matches(const std::string& name) const;
  bool empty() const { return names_.empty(); }

 private:
  std::vector<std::string> names_;
  std::vector<std::regex> regexes_;
};

}  // namespace whittle::passes
