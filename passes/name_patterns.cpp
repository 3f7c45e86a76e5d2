// Node selection by name (passes/name_patterns.h).
#include "name_patterns.h"

namespace whittle::passes {

NamePatterns::NamePatterns(const std::vector<std::string>& patterns) : names_(patterns) {
  for (const std::string& pattern : patterns) {
    try {
      regexes_.emplace_back(pattern);
    } catch (const std::regex_error&) {
      // Not a regular expression: matched as a plain name only.
    }
  }
}

bool NamePatterns::matches(const std::string& name) const {
  for (const std::string& n : names_) {
    if (name == n) return true;
  }
  for (const std::regex& re : regexes_) {
    if (std::regex_match(name, re)) return true;
  }
  return false;
}

}  // namespace whittle::passes
